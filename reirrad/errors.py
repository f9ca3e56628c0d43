"""Exceptions that the command line turns into one-line messages and exit code 2."""

from __future__ import annotations

from pathlib import Path


class ReirradError(Exception):
    """Base class: bad input or usage that the user can fix. Never a programming error."""


class InputError(ReirradError):
    """A file (or folder) that cannot be used, with the reason.

    ``str(err)`` is one line: ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class OptionError(ReirradError, ValueError):
    """An option outside its domain (a zero dose, an unknown choice), refused alike for the command
    line (exit 2) and Python callers (a ValueError)."""
