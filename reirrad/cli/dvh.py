"""`reirrad dvh RTDOSE RTSTRUCT`: DVH metrics of each structure (physical dose or EQD2)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reirrad.cli import app, emit, fail_input, stdout_console
from reirrad.outputs import STDOUT, check_output, say, stdout

if TYPE_CHECKING:  # the library is imported by the functions that use it (start-up stays light)
    from reirrad.deidentify import Deidentifier


class DvhFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class EndCaps(str, Enum):
    half = "half"
    none = "none"


@app.command("dvh")
def dvh(
    rtdose: Path = typer.Argument(..., help="RTDOSE file (absolute dose in Gy)."),
    rtstruct: Path = typer.Argument(
        ..., help="RTSTRUCT file on the same frame of reference (else give --registration)."
    ),
    structure: list[str] = typer.Option([], "--structure", "-s", help="Structure name (repeatable; default: all)."),
    metric: list[str] = typer.Option(
        [], "--metric", "-m", help="Metric, e.g. D0.03cc, D95%, V20Gy, V20Gy[%] (repeatable)."
    ),
    output_format: DvhFormat = typer.Option(DvhFormat.table, "--format", "-f", help="Output format."),
    output: str = typer.Option(STDOUT, "--output", "-o", help="Write to this file (atomically) instead of stdout (-)."),
    fractions: int | None = typer.Option(
        None, "--fractions", help="Fractions of the course: report EQD2 (with --alpha-beta)."
    ),
    alpha_beta: float | None = typer.Option(None, "--alpha-beta", help="alpha/beta in Gy for EQD2 (with --fractions)."),
    end_caps: EndCaps = typer.Option(
        EndCaps.half, "--end-caps", help="Extend the first and last contour by half a spacing, or not."
    ),
    registration: Path | None = typer.Option(
        None,
        "--registration",
        help="REG relating the dose's frame to the structure set's: the dose is mapped through it.",
    ),
    accept_other_patient: bool = typer.Option(
        False, "--accept-other-patient", help="Use a structure set of another PatientID than the dose's (warned)."
    ),
    compare_tps: bool = typer.Option(
        False,
        "--compare-tps",
        help="Compare with the planning system's own DVHs in the RTDOSE (DVHSequence): volume, Dmean, Dmax.",
    ),
    deidentify: bool = typer.Option(
        False, "--deidentify", help="Replace the patient's identity (paths, names, UIDs) by a stable pseudonym."
    ),
) -> None:
    """DVH metrics of each structure in RTSTRUCT on the dose of RTDOSE."""
    from reirrad.deidentify import Deidentifier, files_deidentifier
    from reirrad.dvh import dvh_table
    from reirrad.metrics import parse_metric
    from reirrad.pairing import load_pair
    from reirrad.report.dvh import render_table, to_csv, to_json, to_text

    if (fractions is None) != (alpha_beta is None):
        fail_input("--fractions and --alpha-beta must be given together")
    try:
        metrics = tuple(parse_metric(m) for m in metric)
    except ValueError as exc:
        fail_input(str(exc))
    check_output(output, [p for p in (rtdose, rtstruct, registration) if p is not None])
    hide = files_deidentifier([rtdose, rtstruct]) if deidentify else Deidentifier([])
    if compare_tps:
        if metric or fractions is not None:
            fail_input("--compare-tps compares volume, Dmean and Dmax of the physical dose: no --metric, --fractions")
        run_compare_tps(
            rtdose,
            rtstruct,
            registration,
            tuple(structure),
            end_caps.value,
            accept_other_patient,
            output_format,
            output,
            hide,
        )
        return
    pair = load_pair(rtdose, rtstruct, registration, accept_other_patient)
    for note in pair.notes:
        say(f"reirrad: warning: {hide.text(note)}")
    table = hide.scrub(
        dvh_table(
            pair.dose, pair.structures, tuple(structure), metrics, fractions, alpha_beta, end_caps.value, pair.extent
        )
    )
    if output == STDOUT and output_format is DvhFormat.table:
        render_table(table, stdout_console() if stdout().isatty() else stdout_console(width=200))
    else:
        render = {DvhFormat.json: to_json, DvhFormat.csv: to_csv, DvhFormat.table: to_text}[output_format]
        emit(render(table), output)


def run_compare_tps(
    rtdose: Path,
    rtstruct: Path,
    registration: Path | None,
    names: tuple[str, ...],
    end_caps: str,
    accept_other_patient: bool,
    output_format: DvhFormat,
    output: str,
    hide: Deidentifier,
) -> None:
    """`dvh --compare-tps`: the planning system's DVHs beside reirrad's, in the chosen format."""
    import dataclasses

    from reirrad.errors import InputError
    from reirrad.report.tps import render_table, to_csv, to_json, to_text
    from reirrad.tps import compare_tps, has_tps_dvhs

    if not has_tps_dvhs(rtdose):
        raise InputError(rtdose, "has no DVHSequence: no planning-system DVHs to compare with (--compare-tps)")
    comparison = compare_tps(rtdose, rtstruct, registration, end_caps, accept_other_patient)
    if names:
        known = {row.name for row in comparison.rows}
        missing = [n for n in names if n not in known]
        if missing:
            raise InputError(
                rtdose, f"no planning-system DVH of {', '.join(map(repr, missing))} (has: {', '.join(sorted(known))})"
            )
        comparison = dataclasses.replace(comparison, rows=tuple(r for r in comparison.rows if r.name in names))
    comparison = hide.scrub(comparison)
    if output == STDOUT and output_format is DvhFormat.table:
        render_table(comparison, stdout_console() if stdout().isatty() else stdout_console(width=200))
    else:
        render = {DvhFormat.json: to_json, DvhFormat.csv: to_csv, DvhFormat.table: to_text}[output_format]
        emit(render(comparison), output)
