"""`reirrad sum CASE.toml --alpha-beta X --output OUT.dcm`: cumulative EQD2 of every course."""

from __future__ import annotations

from pathlib import Path

import typer

from reirrad.cli import app
from reirrad.cli.eqd2 import check_export_options, print_summary


@app.command("sum")
def sum_courses(
    case: Path = typer.Argument(..., help="Case file (TOML) listing the courses, oldest first."),
    alpha_beta: float = typer.Option(..., "--alpha-beta", help="alpha/beta in Gy for every voxel."),
    output: str = typer.Option(
        ..., "--output", "-o", help="Cumulative EQD2 RTDOSE to write (atomically; - for stdout)."
    ),
    recovery_model: str | None = typer.Option(
        None,
        "--recovery-model",
        help="Recovery model name (README: Radiobiology; default: the case file's, else none). The export is "
        "then the DISCOUNTED sum: do not judge limits derived on undiscounted dose (Nieder 2006) on it.",
    ),
    recovery_organ: str | None = typer.Option(
        None, "--recovery-organ", help="Organ whose recovery applies to the prior courses (models defined per organ)."
    ),
    lql_transition_gy: float | None = typer.Option(
        None, "--lql-transition-gy", help="LQ-L transition dose per fraction (Gy); default: pure LQ."
    ),
    bits: int = typer.Option(32, "--bits", help="Pixel data bits: 32 (default) or 16 (for validators)."),
    accept_dose_scale: bool = typer.Option(
        False, "--accept-dose-scale", help="Use doses whose maximum is below 0.3x or above 3x their prescription."
    ),
    accept_other_patient: bool = typer.Option(
        False, "--accept-other-patient", help="Use prior courses of another PatientID than the reference course."
    ),
    deidentify: bool = typer.Option(
        False,
        "--deidentify",
        help="Write a pseudonym for the patient and map the UIDs (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
) -> None:
    """Sum the EQD2 of every course on the last course's dose grid and write it as an RTDOSE.

    With --recovery-model the prior courses are discounted by (1 - r) in the exported sum.
    """
    from reirrad.accumulate import accepting
    from reirrad.case import load_case
    from reirrad.export import write_cumulative_eqd2

    check_export_options(alpha_beta, lql_transition_gy, bits)
    spec = accepting(load_case(case), dose_scale=accept_dose_scale, other_patient=accept_other_patient)
    summary = write_cumulative_eqd2(
        spec,
        alpha_beta,
        output,
        recovery_model_name=recovery_model,
        organ=recovery_organ,
        lql_transition_gy=lql_transition_gy,
        bits=bits,
        deidentify=deidentify,
    )
    print_summary(summary)
