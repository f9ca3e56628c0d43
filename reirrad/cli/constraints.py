"""`reirrad constraints list | show NAME | validate PATH`: browse and check constraint sets."""

from __future__ import annotations

import typer

from reirrad.cli import EXIT_INPUT, app, stdout_console
from reirrad.errors import InputError

constraints_app = typer.Typer(help="List, show and validate constraint sets.", no_args_is_help=True)
app.add_typer(constraints_app, name="constraints")


def _level(value: float | None, unit: str) -> str:
    """A limit or warning level with its unit (Gy, cc or %)."""
    return "-" if value is None else f"{value:g} {unit}"


@constraints_app.command("list")
def list_sets() -> None:
    """Table of the built-in constraint sets: name, version, title, number of constraints.

    No set found means a broken installation: exit 2, never an empty table.
    """
    from rich.table import Table

    from reirrad.constraints import CONSTRAINTS_DIR, available_sets, load_constraint_set

    names = available_sets()
    if not names:
        problem = "no built-in constraint sets found: the installation is incomplete, reinstall reirrad"
        raise InputError(CONSTRAINTS_DIR, problem)
    table = Table("name", "version", "title", "constraints")
    for name in names:
        loaded = load_constraint_set(name)
        table.add_row(loaded.name, loaded.version, loaded.title, str(len(loaded.constraints)))
    stdout_console().print(table)


@constraints_app.command("show")
def show(name: str = typer.Argument(..., help="Built-in set name or path of a set file.")) -> None:
    """Every constraint of a set with its limit, warning level, alpha/beta, priority and source."""
    from rich.table import Table

    from reirrad.constraints import load_constraint_set

    loaded = load_constraint_set(name)
    title = f"{loaded.name} {loaded.version}: {loaded.title} (recovery model: {loaded.recovery_model})"
    table = Table(title=title)
    for column in ("id", "organ", "metric", "limit", "warn", "a/b Gy", "dose basis", "priority", "source", "set"):
        table.add_column(column, overflow="fold")
    for c in loaded.constraints:
        limit = _level(c.limit, c.unit)
        if c.single_course_limit_gy is not None:
            limit = f"{c.single_course_limit_gy:g} Gy x (1 + r)"
        table.add_row(
            c.id,
            c.organ,
            c.metric,
            limit,
            _level(c.warn, c.unit),
            f"{c.alpha_beta_gy:g}",
            c.dose_basis,
            c.priority,
            c.source_id or "-",
            c.set_name,
        )
    screen = stdout_console()
    screen.print(table)
    for sid, citation in loaded.sources.items():
        screen.print(f"[bold]{sid}[/bold]: {citation}", highlight=False)


@constraints_app.command("validate")
def validate(path: str = typer.Argument(..., help="Constraint set file (TOML).")) -> None:
    """Check a set file (and the sets it extends); exit 0 when valid, 2 with one problem per line."""
    from reirrad.constraints import validate_constraint_file

    problems = validate_constraint_file(path)
    if problems:
        for problem in problems:
            typer.echo(problem, err=True)
        raise typer.Exit(EXIT_INPUT)
    typer.echo(f"{path}: valid")
