"""Time whole commands as a user runs them: a fresh process each, start-up included.

CPU seconds (user + system, from the child's resource usage, which is what
``resource.getrusage(RUSAGE_CHILDREN)`` accumulates) are the primary measure on a shared machine;
wall time and peak RSS are printed beside them. Every figure is the median of the rounds, and the
tools compared are interleaved round by round so that they share the machine's load.

reirrad runs from bytecode, as a pip install has it: its sources are compiled once before the first
timed run (:func:`compile_reirrad`), and the children run without PYTHONDONTWRITEBYTECODE (which
would make every run compile every module again, a cost no installed user pays).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

ROUNDS = 3


@dataclass(frozen=True)
class Usage:
    """What one command (or pipeline of commands) cost: seconds and MB (peak RSS of its largest process)."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def child_environment() -> dict[str, str]:
    """The environment of every timed command: this one without PYTHONDONTWRITEBYTECODE, so that
    Python reads (and, where missing, writes) bytecode as it does for a user."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


@cache
def compile_reirrad() -> None:
    """Compile reirrad's sources to bytecode once (``python -m compileall -q``), as pip does on install."""
    spec = find_spec("reirrad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("reirrad is not importable from this interpreter: install it first (pip install -e .)")
    for folder in spec.submodule_search_locations:
        subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True, env=child_environment())


def reirrad_command() -> list[str]:
    """The `reirrad` console script next to this interpreter (what a user of the venv types),
    with reirrad's bytecode compiled (:func:`compile_reirrad`)."""
    compile_reirrad()
    script = Path(sys.executable).with_name("reirrad")
    if script.is_file():
        return [str(script)]
    found = shutil.which("reirrad")
    return [found] if found else [sys.executable, "-c", "from reirrad.cli import main; main()"]


def run_one(argv: Sequence[str], cwd: Path | None = None) -> Usage:
    """Run ``argv`` to completion (output discarded, stderr shown on failure) and measure it."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors, env=child_environment()
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):  # 1: a reirrad verdict, still a complete run
            errors.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {errors.read().decode()[-400:]}")
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def run_pipeline(commands: Sequence[Sequence[str]], cwd: Path | None = None) -> Usage:
    """Several commands one after the other: times add up, the peak RSS is the largest."""
    runs = [run_one(argv, cwd) for argv in commands]
    return Usage(sum(r.wall_s for r in runs), sum(r.cpu_s for r in runs), max(r.peak_rss_mb for r in runs))


def medians(tools: dict[str, Callable[[], Usage]], rounds: int = ROUNDS) -> dict[str, Usage]:
    """Each tool ``rounds`` times, interleaved; the median of each measure per tool."""
    runs: dict[str, list[Usage]] = {name: [] for name in tools}
    for _ in range(rounds):
        for name, tool in tools.items():
            runs[name].append(tool())
    return {
        name: Usage(*(statistics.median(getattr(r, field) for r in rs) for field in ("wall_s", "cpu_s", "peak_rss_mb")))
        for name, rs in runs.items()
    }


def print_table(results: dict[str, Usage], reference: str) -> None:
    """One row per tool with its ratios to ``reference`` (above 1: the reference is faster)."""
    base = results[reference]
    print(f"{'command':<42}{'CPU s':>8}{'wall s':>8}{'peak MB':>9}{'CPU ratio':>11}{'wall ratio':>11}")
    for name, u in results.items():
        print(
            f"{name:<42}{u.cpu_s:>8.2f}{u.wall_s:>8.2f}{u.peak_rss_mb:>9.0f}"
            f"{u.cpu_s / base.cpu_s:>10.2f}x{u.wall_s / base.wall_s:>10.2f}x"
        )
    print(f"ratio: the command's time over {reference}'s (above 1: {reference} is faster)")


def print_load() -> None:
    """The machine's load, so that readers can judge the wall times."""
    one, five, _ = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {one:.1f} (1 min) {five:.1f} (5 min); medians of {ROUNDS} runs")
    print("reirrad runs from bytecode compiled once before timing, as pip installs it (no PYTHONDONTWRITEBYTECODE)")
