"""`reirrad eqd2 RTDOSE --alpha-beta X --output OUT.dcm`: one course's dose converted to EQD2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reirrad.cli import app, fail_input
from reirrad.outputs import TargetKind, resolve_target, say

if TYPE_CHECKING:  # the library is imported by the functions that use it (start-up stays light)
    from reirrad.export import ExportSummary


def print_summary(summary: ExportSummary) -> None:
    """Maximum EQD2 and assumptions on stdout (on stderr when the dose went to stdout); where the
    file went on stderr."""
    to_stream = resolve_target(summary.path).kind is TargetKind.STREAM
    stream = sys.stderr if to_stream else sys.stdout
    print(f"max EQD2: {summary.max_eqd2_gy:.2f} Gy", file=stream)
    for line in summary.assumptions:
        print(f"  {line}", file=stream)
    if not to_stream:
        say(f"reirrad: wrote {summary.path}")


def check_export_options(alpha_beta: float, lql_transition_gy: float | None, bits: int) -> None:
    """Positive alpha/beta and LQ-L transition dose; 16- or 32-bit pixel data only."""
    from reirrad.eqd2 import check_lql_transition_gy

    if not alpha_beta > 0:
        fail_input("--alpha-beta must be positive")
    check_lql_transition_gy(lql_transition_gy)
    if bits not in (16, 32):
        fail_input(f"--bits must be 16 or 32, got {bits}")


@app.command("eqd2")
def eqd2(
    rtdose: Path = typer.Argument(..., help="RTDOSE file (physical dose in Gy)."),
    alpha_beta: float = typer.Option(..., "--alpha-beta", help="alpha/beta in Gy."),
    output: str = typer.Option(..., "--output", "-o", help="EQD2 RTDOSE to write (atomically; - for stdout)."),
    fractions: int | None = typer.Option(
        None, "--fractions", help="Number of fractions of this dose (with --plan: must agree with it)."
    ),
    plan: Path | None = typer.Option(None, "--plan", help="RTPLAN giving the number of fractions."),
    override_fractions: bool = typer.Option(
        False, "--override-fractions", help="Use --fractions even where the --plan says otherwise."
    ),
    lql_transition_gy: float | None = typer.Option(
        None, "--lql-transition-gy", help="LQ-L transition dose per fraction (Gy); default: pure LQ."
    ),
    bits: int = typer.Option(32, "--bits", help="Pixel data bits: 32 (default) or 16 (for validators)."),
    accept_dose_scale: bool = typer.Option(
        False, "--accept-dose-scale", help="Use a dose whose maximum is below 0.3x or above 3x the plan's prescription."
    ),
    deidentify: bool = typer.Option(
        False,
        "--deidentify",
        help="Write a pseudonym for the patient and map the UIDs (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
) -> None:
    """Convert a dose to EQD2 voxel by voxel and write it as an EFFECTIVE RTDOSE."""
    from reirrad.export import write_eqd2_dose

    if fractions is None and plan is None:
        fail_input("give --fractions N or --plan RTPLAN")
    if override_fractions and (fractions is None or plan is None):
        fail_input("--override-fractions only with both --fractions N and --plan RTPLAN")
    if fractions is not None and fractions < 1:
        fail_input(f"--fractions must be positive, got {fractions}")
    check_export_options(alpha_beta, lql_transition_gy, bits)
    summary = write_eqd2_dose(
        rtdose,
        alpha_beta,
        output,
        fractions=fractions,
        plan_path=plan,
        lql_transition_gy=lql_transition_gy,
        bits=bits,
        accept_dose_scale=accept_dose_scale,
        override_fractions=override_fractions,
        deidentify=deidentify,
    )
    print_summary(summary)
