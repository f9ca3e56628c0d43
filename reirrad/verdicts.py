"""Which verdicts fail a run: kept free of numpy so the command line can build its options cheaply."""

from __future__ import annotations

from enum import Enum


class FailOn(str, Enum):
    """Which verdicts fail a run (exit code 1)."""

    FAIL = "fail"  # a limit fails
    WARN = "warn"  # a limit fails or warns
