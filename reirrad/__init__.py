"""reirrad: cumulative EQD2 plan checks for head-and-neck re-irradiation."""

__version__ = "0.1.0"
