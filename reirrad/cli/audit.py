"""`reirrad audit summary | export | report STORE`: questions to a batch results store."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from reirrad.audit import cohort, stored_batch, summarize
from reirrad.check import CheckOptions
from reirrad.cli import app, fail_input
from reirrad.outputs import write_text_atomic
from reirrad.report.batch import render_batch
from reirrad.report.cohort import summary_tables, to_cohort_html
from reirrad.store import Store

audit_app = typer.Typer(help="Summarise, export and chart a results store (reirrad check --store).",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        print(f"reirrad: wrote {output}", file=sys.stderr)


@audit_app.command("summary")
def summary(store: Path = typer.Argument(..., help="Results store (SQLite).")) -> None:
    """Counts per case state, result status, organ and constraint set; the failing cases."""
    with Store(store, create=False) as opened:
        tables = summary_tables(summarize(opened))
    console = Console()
    for table in tables:
        console.print(table)


@audit_app.command("export")
def export(
    store: Path = typer.Argument(..., help="Results store (SQLite)."),
    format: ExportFormat = typer.Option(ExportFormat.csv, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Every stored case in the batch format of `reirrad check` (reirrad.batch.v1 JSON or CSV)."""
    if output is not None and output.absolute() == store.absolute():
        fail_input(f"{output}: is the results store; give another --output")
    with Store(store, create=False) as opened:
        text = render_batch(stored_batch(opened), format.value, CheckOptions())
    _write(text, output)


@audit_app.command("report")
def report(
    store: Path = typer.Argument(..., help="Results store (SQLite)."),
    output: Path = typer.Option(..., "--output", "-o", help="The cohort page to write (HTML)."),
) -> None:
    """A self-contained cohort page: values per constraint against its levels, intervals, flags."""
    if output.absolute() == store.absolute():
        fail_input(f"{output}: is the results store; give another --output")
    with Store(store, create=False) as opened:
        page = to_cohort_html(cohort(opened), store.name)
    _write(page, output)
