"""Which verdicts fail a run, and the exit codes: kept free of numpy so the command line can build
its options cheaply. The one exit-code policy of ``check`` (the report's summary), its JUnit output
and a batch of cases."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum, IntEnum
from typing import Protocol


class FailOn(str, Enum):
    """Which verdicts fail a run (exit code 1)."""

    FAIL = "fail"  # a limit fails
    WARN = "warn"  # a limit fails or warns


class ExitCode(IntEnum):
    """The exit codes of every command."""

    OK = 0  # every evaluated limit passes
    FAIL = 1  # a limit fails (or warns with fail_on warn), is not evaluated, or nothing was judged
    INPUT = 2  # bad input or usage
    INTERNAL = 3  # a bug or a dead worker
    INTERRUPTED = 130  # 128 + SIGINT


class Judged(Protocol):
    """What the policy reads of a result (:class:`reirrad.results.ConstraintResult`)."""

    @property
    def status(self) -> str: ...

    @property
    def has_threshold(self) -> bool: ...


def failure(result: Judged, fail_on: FailOn | str = FailOn.FAIL, allow_missing: bool = False) -> str | None:
    """Why ``result`` fails the run: "fail", "warn" (with ``fail_on`` warn) or "not_evaluated" (a
    limit or warn level that could not be evaluated, unless ``allow_missing``); None when it does
    not. Report-only results never fail a run."""
    failing = ("fail", "warn") if FailOn(fail_on) is FailOn.WARN else ("fail",)
    if result.status in failing:
        return str(result.status)
    if result.status == "not_evaluated" and result.has_threshold and not allow_missing:
        return "not_evaluated"
    return None


def nothing_judged(results: Iterable[Judged]) -> bool:
    """True when no constraint with a limit or warning level reached a verdict (pass, warn or
    fail): such a run checked nothing, whatever was allowed to be missing."""
    return not any(r.has_threshold and r.status in ("pass", "warn", "fail") for r in results)


def exit_code(results: Iterable[Judged], fail_on: FailOn | str = FailOn.FAIL, allow_missing: bool = False) -> ExitCode:
    """OK when every evaluated limit passes; FAIL when a result fails the run (:func:`failure`) or
    no limit was judged at all (whatever the options: a run that checked nothing does not pass)."""
    results = tuple(results)
    if nothing_judged(results) or any(failure(r, fail_on, allow_missing) for r in results):
        return ExitCode.FAIL
    return ExitCode.OK


def batch_exit_code(codes: Iterable[int | None]) -> int:
    """A batch's exit code from its cases' (None: not run): INTERNAL when a case hit an internal
    error, else INPUT when a case was bad input, otherwise the highest exit code of the cases."""
    known = [int(c) for c in codes if c is not None]
    for code in (ExitCode.INTERNAL, ExitCode.INPUT):
        if code in known:
            return int(code)
    return max(known, default=int(ExitCode.OK))
