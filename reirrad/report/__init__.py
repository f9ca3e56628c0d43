"""Report formats: terminal tables, machine formats (JSON, CSV, JUnit), HTML."""

from __future__ import annotations

import math

DIGITS = 3  # decimals of every dose (Gy) and volume (cm3, %) a `check` report shows, in every format


def rounded(value: float | None, digits: int = DIGITS) -> float | None:
    """``value`` rounded for output; None and NaN become None (JSON null, empty CSV cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def number_text(value: float | None, digits: int = DIGITS, unit: str = "Gy") -> str:
    """``value`` rounded once (:func:`rounded`) and written as JSON writes it ("-" for None); a
    volume (cm3, %) carries its unit, doses are in Gy like the column heads.

    Every human-readable format (console, HTML) shows the very number the JSON holds.
    """
    number = rounded(value, digits)
    if number is None:
        return "-"
    return repr(number) + ("" if unit == "Gy" else f" {unit}")
