"""`reirrad check`: cumulative EQD2 verdicts for a case file or a prior/new folder pair."""

from __future__ import annotations

import io
from datetime import date
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from reirrad.cli import app, emit, fail_input, stdout_console
from reirrad.outputs import STDOUT, check_output, say
from reirrad.verdicts import FailOn

if TYPE_CHECKING:  # the library is imported by the functions that use it (start-up stays light)
    from reirrad.check import BatchResult, CheckOptions
    from reirrad.results import CheckReport


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    junit = "junit"
    html = "html"


def render(report: CheckReport, fmt: Format, options: CheckOptions) -> str:
    """The report as text in the chosen format (the table as plain text, for files)."""
    from rich.console import Console

    from reirrad.report.console import print_report
    from reirrad.report.html import to_html
    from reirrad.report.junit import to_junit
    from reirrad.report.machine import to_csv, to_json

    if fmt is Format.json:
        return to_json(report)
    if fmt is Format.csv:
        return to_csv(report)
    if fmt is Format.junit:
        return to_junit(report, options.fail_on, options.allow_missing)
    if fmt is Format.html:
        return to_html(report)
    console = Console(file=io.StringIO(), width=160, record=True)
    print_report(report, console)
    return console.export_text()


def render_batch(batch: BatchResult, fmt: Format, options: CheckOptions) -> str:
    """Several cases in one document (HTML takes one case)."""
    from rich.console import Console

    from reirrad.report.console import print_batch
    from reirrad.report.junit import to_junit_batch
    from reirrad.report.machine import to_csv_batch, to_json_batch

    reports, errors = list(batch.reports), list(batch.errors)
    if fmt is Format.json:
        return to_json_batch(reports, errors, batch.exit_code)
    if fmt is Format.csv:
        return to_csv_batch(reports)
    if fmt is Format.junit:
        return to_junit_batch(reports, errors, options.fail_on, options.allow_missing)
    console = Console(file=io.StringIO(), width=160, record=True)
    print_batch(reports, errors, console)
    return console.export_text()


def run_many(case_files: list[Path], fmt: Format, options: CheckOptions, output: str) -> int:
    """Batch audit: every case checked, errors recorded per case; the highest exit code."""
    from reirrad.check import batch_inputs, run_batch
    from reirrad.report.console import print_batch

    if fmt is Format.html:
        fail_input("--format html takes one case file; use json, csv, junit or table for a batch")
    check_output(output, batch_inputs(case_files, options))
    batch = run_batch(case_files, options)
    for path, message in batch.errors:
        say(f"reirrad: error: {message}")
    if output == STDOUT and fmt is Format.table:
        print_batch(list(batch.reports), list(batch.errors), stdout_console())
    else:
        emit(render_batch(batch, fmt, options), output)
    return batch.exit_code


def _parse_date(text: Optional[str], option: str) -> Optional[date]:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail_input(f"{option} {text!r} is not a date (YYYY-MM-DD)")
    return None


@app.command("check")
def check(
    case: Optional[list[Path]] = typer.Argument(
        None, help="Case file(s) (TOML); several make a batch audit. Omit when using --prior/--new."
    ),
    prior: Optional[Path] = typer.Option(None, help="Folder of the prior course's DICOM files."),
    new: Optional[Path] = typer.Option(None, help="Folder of the new course's DICOM files."),
    prior_end_date: Optional[str] = typer.Option(None, help="Last treatment day of the prior course (YYYY-MM-DD)."),
    new_start_date: Optional[str] = typer.Option(None, help="First treatment day of the new course (YYYY-MM-DD)."),
    registration: Optional[Path] = typer.Option(None, help="REG file mapping the prior frame into the new one."),
    prior_fractions: Optional[int] = typer.Option(
        None, help="Fractions of the prior course when its plan is absent (a count that disagrees with the plan is refused)."
    ),
    new_fractions: Optional[int] = typer.Option(
        None, help="Fractions of the new course when its plan is absent (a count that disagrees with the plan is refused)."
    ),
    override_fractions: bool = typer.Option(
        False, help="Use --prior-fractions / --new-fractions even where the plan says otherwise (flagged)."
    ),
    constraints: Optional[str] = typer.Option(None, help="Constraint set: built-in name or TOML path."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    output: str = typer.Option(STDOUT, "--output", "-o", help="Write to this file (atomically) instead of stdout (-)."),
    fail_on: FailOn = typer.Option(FailOn.FAIL, help="Exit 1 on 'fail' only, or on 'warn' too."),
    allow_missing: bool = typer.Option(False, help="Constraints that could not be evaluated do not fail the run."),
    recovery_model: Optional[str] = typer.Option(None, help="Recovery model name (see `reirrad constraints show`; README: Radiobiology)."),
    conservative: bool = typer.Option(
        False, help="Courses in different frames with no registration: add per-course upper bounds per organ."
    ),
    lql_transition_gy: Optional[float] = typer.Option(
        None, help="LQ-L above this dose per fraction (Gy) for every course; default: pure LQ."
    ),
    accept_dose_scale: bool = typer.Option(
        False, help="Use a dose whose maximum is below 0.3x or above 3x its plan's prescription (flagged)."
    ),
    accept_other_patient: bool = typer.Option(
        False, help="Use a prior course of another PatientID than the reference course (flagged)."
    ),
    accept_partial_coverage: bool = typer.Option(
        False, help="Judge organs partly outside a course's dose grid, taking 0 Gy from it there (noted)."
    ),
) -> None:
    """Check the cumulative EQD2 of all courses against consensus limits; exit 0 pass, 1 fail, 2 bad input."""
    from reirrad.case import case_from_folders, load_case
    from reirrad.check import CheckOptions, check_inputs, run_check
    from reirrad.report.console import print_report

    if case and (prior or new):
        fail_input("give either case files or --prior/--new, not both")
    options = CheckOptions(
        constraints=constraints, fail_on=fail_on, allow_missing=allow_missing,
        recovery_model=recovery_model, conservative=conservative, lql_transition_gy=lql_transition_gy,
        accept_dose_scale=accept_dose_scale, accept_other_patient=accept_other_patient,
        accept_partial_coverage=accept_partial_coverage,
    )
    if case and len(case) > 1:
        raise typer.Exit(run_many(case, format, options, output))
    if case:
        spec = load_case(case[0])
    elif prior is None or new is None:
        fail_input("give a case file, or both --prior and --new")
    else:
        spec = case_from_folders(
            prior, new, _parse_date(prior_end_date, "--prior-end-date"),
            _parse_date(new_start_date, "--new-start-date"), registration, prior_fractions, new_fractions,
            override_fractions,
        )
    check_output(output, check_inputs(spec, options))
    report = run_check(spec, options)
    if output == STDOUT and format is Format.table:
        print_report(report, stdout_console())
    else:
        emit(render(report, format, options), output)
    raise typer.Exit(report.summary.exit_code)
