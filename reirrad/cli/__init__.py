"""Command line: parses arguments, calls library functions, prints. No logic lives here.

Each sub-command lives in its own module and registers itself on :data:`app`.
Errors derived from :class:`reirrad.errors.ReirradError` become one line on stderr and exit 2.
"""

from __future__ import annotations

import sys

import typer

from reirrad.errors import ReirradError

app = typer.Typer(
    name="reirrad",
    help="Cumulative EQD2 plan checks for head-and-neck re-irradiation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


@app.callback()
def _root() -> None:
    """Cumulative EQD2 plan checks for head-and-neck re-irradiation (see README.md)."""


def fail_input(message: str) -> None:
    """Print a one-line error to stderr and exit with code 2."""
    print(f"reirrad: error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_INPUT)


def _register() -> None:
    """Import the sub-command modules so they attach themselves to :data:`app`."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def main() -> None:
    """Console-script entry point. Typer's standalone mode exits 2 on usage errors."""
    _register()
    try:
        app()
    except ReirradError as exc:
        print(f"reirrad: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT)
