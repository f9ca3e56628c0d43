"""`reirrad check --format pdf`: the HTML report printed to PDF by headless Chromium.

Chromium rather than WeasyPrint: the HTML report is checked in a real browser anyway (the tests
print it with Chromium), so the PDF is exactly what a browser prints, with CSS page margin boxes
(page numbers, the patient on every page) since Chromium 131; WeasyPrint (a PyPI package) needs
Pango and its own CSS engine, a second renderer to keep in step with the first. Chromium is a
system program (Debian package ``chromium``), found on PATH at run time; without it the format is
refused with a one-line message (exit 2).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from reirrad.errors import OptionError
from reirrad.report.html import to_html
from reirrad.results import CheckReport

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120  # seconds: Chromium prints a report in a few; more means it hangs


def browser() -> str:
    """The headless browser's executable (OptionError when none is installed)."""
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        raise OptionError("--format pdf needs Chromium on PATH (Debian: apt-get install chromium)")
    return found


def html_to_pdf(html: str) -> bytes:
    """``html`` printed to PDF by headless Chromium (the page's own @page rules: size, margins,
    page numbers; no browser header or footer)."""
    executable = browser()
    with tempfile.TemporaryDirectory(prefix="reirrad-pdf-") as folder:
        page, pdf = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(folder) / 'profile'}",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        if done.returncode != 0 or not pdf.is_file():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"Chromium could not print the report (exit {done.returncode}): {last}")
        return pdf.read_bytes()


def to_pdf(report: CheckReport) -> bytes:
    """The HTML report as PDF bytes."""
    return html_to_pdf(to_html(report))
