"""`reirrad check`: cumulative EQD2 verdicts for a case file or a prior/new folder pair."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reirrad.cli import app, fail_input, stdout_console
from reirrad.formats import OutputFormat
from reirrad.outputs import STDOUT
from reirrad.verdicts import FailOn

if TYPE_CHECKING:  # the library is imported by the functions that use it (start-up stays light)
    from reirrad.robust import Uncertainty


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail_input(f"{option} {text!r} is not a date (YYYY-MM-DD)")
    return None


def _uncertainty_options(uncertainty: Uncertainty) -> dict[str, float | None]:
    """CheckOptions fields of a parsed --registration-uncertainty."""
    return {
        "registration_uncertainty_mm": uncertainty.radius_mm,
        "registration_uncertainty_deg": uncertainty.degrees or None,
    }


def _case_file_said(path: Path) -> Path:
    """The case file of a case argument (a folder stands for its case.toml, said on stderr)."""
    from reirrad.case import case_file
    from reirrad.outputs import say

    found = case_file(path)
    if found != path:
        say(f"reirrad: case file {found} (folder {path} given)")
    return found


@app.command("check")
def check(
    case: list[Path] | None = typer.Argument(
        None, help="Case file(s) (TOML); several make a batch audit. Omit when using --prior/--new."
    ),
    prior: Path | None = typer.Option(None, help="Folder of the prior course's DICOM files."),
    new: Path | None = typer.Option(None, help="Folder of the new course's DICOM files."),
    prior_end_date: str | None = typer.Option(None, help="Last treatment day of the prior course (YYYY-MM-DD)."),
    new_start_date: str | None = typer.Option(None, help="First treatment day of the new course (YYYY-MM-DD)."),
    registration: Path | None = typer.Option(None, help="REG file mapping the prior frame into the new one."),
    prior_fractions: int | None = typer.Option(
        None,
        help="Fractions of the prior course when its plan is absent (a count that disagrees with the plan is refused).",
    ),
    new_fractions: int | None = typer.Option(
        None,
        help="Fractions of the new course when its plan is absent (a count that disagrees with the plan is refused).",
    ),
    override_fractions: bool = typer.Option(
        False, help="Use --prior-fractions / --new-fractions even where the plan says otherwise (flagged)."
    ),
    constraints: str | None = typer.Option(None, help="Constraint set: built-in name or TOML path."),
    format: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", "-f", help="Output format."),
    output: str = typer.Option(STDOUT, "--output", "-o", help="Write to this file (atomically) instead of stdout (-)."),
    fail_on: FailOn = typer.Option(FailOn.FAIL, help="Exit 1 on 'fail' only, or on 'warn' too."),
    allow_missing: bool = typer.Option(False, help="Constraints that could not be evaluated do not fail the run."),
    recovery_model: str | None = typer.Option(
        None, help="Recovery model name (see `reirrad constraints show`; README: Radiobiology)."
    ),
    conservative: bool = typer.Option(
        False, help="Courses in different frames with no registration: add per-course upper bounds per organ."
    ),
    lql_transition_gy: float | None = typer.Option(
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
    registration_uncertainty: str | None = typer.Option(
        None,
        metavar="MM[,DEG]",
        help="Also show each result's worst case with the prior courses shifted up to MM mm "
        "(and rotated up to DEG degrees) around the registered position.",
    ),
    robust: bool = typer.Option(False, help="Judge on the worst case within the registration uncertainty."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Batch: worker processes (default: cores)."),
    store: Path | None = typer.Option(
        None, help="Batch: SQLite results store; finished cases are written to it and unchanged ones resumed."
    ),
    recompute: bool = typer.Option(False, help="Batch with --store: check every case again."),
    scheduler: str | None = typer.Option(
        None, help="Batch: run the cases on this Dask scheduler (tcp://host:8786; pip install reirrad[cluster])."
    ),
    fail_fast: bool = typer.Option(False, help="Batch: stop at the first case that does not exit 0."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Batch: no progress on stderr."),
    deidentify: bool = typer.Option(
        False,
        help="Replace the patient's identity by a stable pseudonym in every output (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
    auto_register: bool = typer.Option(
        False,
        help="Courses in another frame with no REG: register their planning CTs automatically (not reviewed; flagged).",
    ),
) -> None:
    """Check the cumulative EQD2 of all courses against consensus limits; exit 0 pass, 1 fail, 2 bad input."""
    from reirrad.case import case_from_folders, load_case
    from reirrad.check import CheckOptions, check_inputs, run_check
    from reirrad.report.emit import check_batch, check_target, emit_report
    from reirrad.robust import parse_uncertainty

    if case and (prior or new):
        fail_input("give either case files or --prior/--new, not both")
    if case:
        case = [_case_file_said(path) for path in case]
    options = CheckOptions(
        constraints=constraints,
        fail_on=fail_on,
        allow_missing=allow_missing,
        recovery_model=recovery_model,
        conservative=conservative,
        lql_transition_gy=lql_transition_gy,
        accept_dose_scale=accept_dose_scale,
        accept_other_patient=accept_other_patient,
        accept_partial_coverage=accept_partial_coverage,
        robust=robust,
        figures=format in (OutputFormat.HTML, OutputFormat.PDF),  # the formats that draw them
        **(
            {}
            if registration_uncertainty is None
            else _uncertainty_options(parse_uncertainty(registration_uncertainty))
        ),
    )
    if case and (len(case) > 1 or store is not None or scheduler is not None):
        from reirrad.batch import default_jobs  # a batch's engines (multiprocessing) load only for a batch

        if auto_register:
            fail_input('--auto-register applies to one case; batches take registration = "auto" in their case files')
        if not format.batch:
            fail_input(f"--format {format.value} takes one case file; use json, csv, junit or table for a batch")
        if store is not None and Path(output).absolute() == store.absolute():
            fail_input(f"{output}: is the results store (--store); give another --output")
        raise typer.Exit(
            check_batch(
                case,
                format,
                options,
                output,
                stdout_console,
                quiet=quiet,
                store_path=store,
                jobs=jobs or default_jobs(),
                scheduler=scheduler,
                recompute=recompute,
                fail_fast=fail_fast,
                deidentify=deidentify,
            )
        )
    if case:
        spec = load_case(case[0])
    elif prior is None or new is None:
        fail_input("give a case file, or both --prior and --new")
    else:
        spec = case_from_folders(
            prior,
            new,
            _parse_date(prior_end_date, "--prior-end-date"),
            _parse_date(new_start_date, "--new-start-date"),
            registration,
            prior_fractions,
            new_fractions,
            override_fractions,
        )
    if auto_register:  # autoreg: automatic registration only when asked
        from reirrad.autoreg import with_auto_registration

        spec = with_auto_registration(spec)
    if format is OutputFormat.PDF and output == STDOUT:
        fail_input("--format pdf writes a file: give --output FILE.pdf")
    check_target(format, output, check_inputs(spec, options))
    report = run_check(spec, options)
    if deidentify:  # --deidentify: one pseudonymised report for every format
        from reirrad.deidentify import deidentify_report

        report = deidentify_report(report)
    emit_report(report, format, output, options, stdout_console)
    raise typer.Exit(report.summary.exit_code)
