"""`reirrad demo`: check the bundled sample re-irradiation case and write every report format."""

from __future__ import annotations

from pathlib import Path

import typer

from reirrad.cli import app, stdout_console
from reirrad.data import sample_case
from reirrad.formats import OutputFormat
from reirrad.outputs import check_output, ensure_folder, write_text

_FORMATS = (OutputFormat.JSON, OutputFormat.HTML, OutputFormat.CSV, OutputFormat.JUNIT)
SAMPLE_CASE = sample_case()


@app.command("demo")
def demo(
    output_dir: Path = typer.Option(Path("out/demo"), help="Folder for the JSON, HTML, CSV and JUnit reports."),
    case: Path = typer.Option(SAMPLE_CASE, help="Case file to run (default: the SBRT re-irradiation sample)."),
) -> None:
    """Run `reirrad check` on the sample case, print the verdict table and write the reports.

    Exits 0 when the demo ran: the sample plan fails its carotid limit on purpose.
    """
    from reirrad.case import load_case
    from reirrad.check import CheckOptions, check_inputs, run_check
    from reirrad.report.console import print_report
    from reirrad.report.emit import render

    options = CheckOptions()
    spec = load_case(case)
    inputs = check_inputs(spec, options)
    ensure_folder(output_dir)
    reports = {output_dir / f"report.{fmt.suffix}": fmt for fmt in _FORMATS}
    for path in reports:
        check_output(path, inputs)
    screen = stdout_console()
    report = run_check(spec, options)
    print_report(report, screen)
    for path, fmt in reports.items():
        write_text(path, render(report, fmt, options))
    screen.print(f"\nReports written to {output_dir}/: " + ", ".join(p.name for p in reports))
    screen.print(
        f"`reirrad check {case}` would exit {report.summary.exit_code} "
        "(0 pass, 1 a limit fails or could not be evaluated, 2 bad input, 3 internal error)."
    )
