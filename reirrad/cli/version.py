"""`reirrad version`: print the version."""

from __future__ import annotations

import typer

from reirrad import __version__
from reirrad.cli import app


@app.command()
def version() -> None:
    """Print the reirrad version."""
    typer.echo(__version__)
