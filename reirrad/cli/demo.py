"""`reirrad demo`: check the bundled sample re-irradiation case and write every report format."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from reirrad.cli import app
from reirrad.cli.check import Format, render
from reirrad.data import sample_case
from reirrad.outputs import write_text_atomic
from reirrad.report.console import print_report

SAMPLE_CASE = sample_case()


@app.command("demo")
def demo(
    output_dir: Path = typer.Option(Path("out/demo"), help="Folder for the JSON, HTML, CSV and JUnit reports."),
    case: Path = typer.Option(SAMPLE_CASE, help="Case file to run (default: the SBRT re-irradiation sample)."),
) -> None:
    """Run `reirrad check` on the sample case, print the verdict table and write the reports.

    Exits 0 when the demo ran: the sample plan fails its carotid limit on purpose.
    """
    options = CheckOptions()
    report = run_check(load_case(case), options)
    console = Console()
    print_report(report, console)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_text_atomic(output_dir / f"report.{suffix}", render(report, fmt, options))
        for fmt, suffix in ((Format.json, "json"), (Format.html, "html"), (Format.csv, "csv"), (Format.junit, "xml"))
    ]
    console.print(f"\nReports written to {output_dir}/: " + ", ".join(p.name for p in written))
    console.print(
        f"`reirrad check {case}` would exit {report.summary.exit_code} "
        "(0 pass, 1 a limit fails or could not be evaluated, 2 bad input)."
    )
