"""Output formats of a check report: a closed set, kept free of heavy imports so the command line
can offer them as choices without loading any report library (see :mod:`reirrad.report.emit`)."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    """A format ``reirrad check`` writes a report (or a batch of reports) in."""

    TABLE = "table"  # the verdict tables (rich on a terminal, plain text in files)
    JSON = "json"  # the reirrad.check.v1 document
    CSV = "csv"
    JUNIT = "junit"  # JUnit XML for CI
    HTML = "html"  # one case only
    PDF = "pdf"  # one case only, a file only (needs Chromium)

    @property
    def suffix(self) -> str:
        """The usual file name suffix of the format (without the dot)."""
        return {OutputFormat.TABLE: "txt", OutputFormat.JUNIT: "xml"}.get(self, self.value)

    @property
    def batch(self) -> bool:
        """Whether several cases can go into one document of this format."""
        return self not in (OutputFormat.HTML, OutputFormat.PDF)
