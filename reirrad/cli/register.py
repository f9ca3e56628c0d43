"""`reirrad register PRIOR_DIR NEW_DIR --output reg.dcm`: automatic rigid CT-to-CT registration."""

from __future__ import annotations

from pathlib import Path

import typer

from reirrad.cli import app


@app.command("register")
def register(
    prior_dir: Path = typer.Argument(..., help="Prior course folder holding its planning CT."),
    new_dir: Path = typer.Argument(..., help="New course folder holding its planning CT (the REG's own frame)."),
    output: Path = typer.Option(..., "--output", "-o", help="Spatial Registration (REG) file to write (atomically)."),
    bone: bool = typer.Option(False, "--bone", help="Refine on bone of the new CT (HU > 200), for head and neck."),
    qa: Path | None = typer.Option(None, "--qa", help="QA picture (PNG): three checkerboard views."),
    target: str | None = typer.Option(
        None, "--target", help="ROI of the new course's RTSTRUCT the QA views go through (default: the CT centre)."
    ),
    initial: Path | None = typer.Option(None, "--initial", help="Start from this REG's matrix (default: CT centres)."),
    max_metric: float | None = typer.Option(
        None, "--max-metric", help="Refuse a final Mattes MI above this (lower is better; default -0.5)."
    ),
) -> None:
    """Register the prior course's planning CT onto the new course's (rigid, Mattes mutual information).

    Writes a DICOM Spatial Registration in the new course's frame. An automatic registration is
    not a reviewed clinical registration: review the REG (and the QA picture) before using it.
    """
    from reirrad.autoreg import DEFAULT_MAX_METRIC, initial_matrix_from, qa_centre_mm, register_and_write

    result = register_and_write(
        prior_dir,
        new_dir,
        output,
        bone=bone,
        qa=qa,
        initial_matrix=None if initial is None else initial_matrix_from(initial, prior_dir, new_dir),
        max_metric=DEFAULT_MAX_METRIC if max_metric is None else max_metric,
        qa_centre=(lambda new: qa_centre_mm(new, new_dir, target)),
    )
    typer.echo(
        f"{result.label}: {result.iterations} iterations, {result.stop_condition}; {result.ambiguity_text}\n"
        f"REG matrix (prior frame -> new frame, mm):\n"
        + "\n".join("  " + " ".join(f"{v:10.4f}" for v in row) for row in result.matrix)
    )
    typer.echo(f"wrote {output}" + (f" and {qa}" if qa else ""), err=True)
