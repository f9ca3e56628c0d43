"""`reirrad audit summary | export | report STORE`: questions to a batch results store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reirrad.cli import app, emit, stdout_console
from reirrad.outputs import STDOUT, check_output

audit_app = typer.Typer(
    help="Summarise, export and chart a results store (reirrad check --store).", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


@audit_app.command("summary")
def summary(
    store: Path = typer.Argument(..., help="Results store (SQLite)."),
    deidentify: bool = typer.Option(
        False,
        "--deidentify",
        help="Replace every patient's identity by a stable pseudonym (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
) -> None:
    """Counts per case state, result status, organ and constraint set; the failing cases."""
    from reirrad.audit import stored_batch, summarize
    from reirrad.deidentify import deidentify_audit
    from reirrad.report.cohort import summary_tables
    from reirrad.store import Store

    with Store(store, create=False) as opened:
        found = summarize(opened)
        tables = summary_tables(deidentify_audit(found, stored_batch(opened)) if deidentify else found)
    console = stdout_console()
    for table in tables:
        console.print(table)


@audit_app.command("export")
def export(
    store: Path = typer.Argument(..., help="Results store (SQLite)."),
    format: ExportFormat = typer.Option(ExportFormat.csv, "--format", "-f", help="Output format."),
    output: str = typer.Option(STDOUT, "--output", "-o", help="Write to this file (atomically) instead of stdout (-)."),
    deidentify: bool = typer.Option(
        False,
        "--deidentify",
        help="Replace every patient's identity by a stable pseudonym (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
) -> None:
    """Every stored case in the batch format of `reirrad check` (reirrad.batch.v1 JSON or CSV)."""
    from reirrad.audit import stored_batch
    from reirrad.check import CheckOptions
    from reirrad.deidentify import deidentify_batch
    from reirrad.report.batch import render_batch
    from reirrad.store import Store

    check_output(output, [store])
    with Store(store, create=False) as opened:
        batch = stored_batch(opened)
        text = render_batch(deidentify_batch(batch) if deidentify else batch, format.value, CheckOptions())
    emit(text, output)


@audit_app.command("report")
def report(
    store: Path = typer.Argument(..., help="Results store (SQLite)."),
    output: str = typer.Option(..., "--output", "-o", help="The cohort page to write (HTML; - for stdout)."),
    deidentify: bool = typer.Option(
        False,
        "--deidentify",
        help="Replace every patient's identity by a stable pseudonym (salt: REIRRAD_DEIDENTIFY_SALT).",
    ),
) -> None:
    """A self-contained cohort page: values per constraint against its levels, intervals, flags."""
    from reirrad.audit import cohort, stored_batch
    from reirrad.deidentify import deidentify_audit
    from reirrad.report.cohort import to_cohort_html
    from reirrad.store import Store

    check_output(output, [store])
    with Store(store, create=False) as opened:
        found = cohort(opened)
        page = to_cohort_html(deidentify_audit(found, stored_batch(opened)) if deidentify else found, store.name)
    emit(page, output)
