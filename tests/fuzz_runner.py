"""Runs fuzz cases through the real CLI entry point in forked workers and judges each outcome.

Each case runs in its own forked child (no interpreter start-up: the modules are imported once,
before forking) of one of ``workers`` pool workers. The child changes to
the case's folder, sends its stdout and stderr to files, limits its address space
(``RLIMIT_AS``, :data:`MEMORY_BOUND_BYTES` above what it inherited) and calls
:func:`reirrad.cli.main`. The parent records the exit code, whether an exception escaped (a
traceback), the peak resident memory (``wait4``), whether it hung (:data:`TIMEOUT_S`), files left
behind, and whether any input changed (SHA-256 and file type before and after).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import resource
import signal
import stat
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MEMORY_BOUND_BYTES = 1536 * 2**20  # address space a command may add to what it inherits
TIMEOUT_S = 120.0  # a case still running after this is a hang (killed)
ALLOWED_EXIT_CODES = (0, 1, 2)


@dataclass
class Outcome:
    """What one command did on one case."""

    exit_code: int
    stdout: str
    stderr: str
    traceback: str | None  # exception type name when one escaped the entry point
    maxrss_bytes: int
    seconds: float
    cpu_seconds: float
    hung: bool
    leftovers: list[str] = field(default_factory=list)  # files that are neither inputs nor the output
    changed_inputs: list[str] = field(default_factory=list)
    output: str | None = None  # path (relative to the case folder) of the file the command wrote


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``folder``: relative path -> (kind, SHA-256 or link target)."""
    entries = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                entries[rel] = ("dir", "")
            else:
                entries[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def _vm_size_bytes() -> int:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _fresh_diagnostics() -> None:
    """Warnings and log records printed to stderr as in a fresh process, even under pytest
    (which records warnings and captures logging): a warning before a refusal must show."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.resetwarnings()  # the default filters: each warning shown once per place
    warnings.simplefilter("default")
    warnings.showwarning = show
    logging.root.handlers.clear()  # records of level WARNING and above then reach stderr


def _child(folder: Path, argv: list[str], out: Path, err: Path, result: Path) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    escaped = None
    try:
        os.chdir(folder)
        for fd, path in ((1, out), (2, err)):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(handle, fd)
            os.close(handle)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), encoding="utf-8", line_buffering=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), encoding="utf-8", line_buffering=True)
        sys.stdin = io.TextIOWrapper(io.BytesIO(b""))
        _fresh_diagnostics()
        limit = _vm_size_bytes() + MEMORY_BOUND_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        sys.argv = ["reirrad", *argv]
        from reirrad.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # what Python would print before exiting 1
        escaped = type(exc).__name__
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            result.write_text(json.dumps({"exit_code": code, "traceback": escaped}))
        finally:
            os._exit(code if 0 <= code < 256 else 1)


@dataclass
class Job:
    """One command to run in ``folder`` (its own copy of the inputs)."""

    key: str
    folder: Path
    argv: list[str]
    output: str | None  # the file the command is asked to write, relative to ``folder``
    prepare: Callable[[], None] | None = None  # fills ``folder`` just before the run


_JOBS: list[Job] = []  # set before the pool forks; workers receive indexes into it
_FINISH: Callable[[Job, Outcome], object] | None = None
_LOGS = Path()


def run_jobs(
    jobs: list[Job], logs: Path, workers: int = 2, finish: Callable[[Job, Outcome], object] | None = None
) -> list[tuple[Outcome, object]]:
    """Run every job, ``workers`` at a time; (outcome, ``finish(job, outcome)``) per job, in order.

    The workers are forked once from this process and each forks one child per job, so that
    this (large, busy) process is not forked hundreds of times. ``finish`` runs in the worker
    while the job's folder is still there (e.g. to read an exported file)."""
    import multiprocessing

    from reirrad.cli import _register

    global _JOBS, _FINISH, _LOGS
    _register()  # import every command once, before forking
    logs.mkdir(parents=True, exist_ok=True)
    _JOBS, _FINISH, _LOGS = jobs, finish, logs
    results: list = [None] * len(jobs)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for index, outcome, extra in pool.imap_unordered(_work, range(len(jobs)), chunksize=1):
            results[index] = (outcome, extra)
    return results


def _work(index: int) -> tuple[int, Outcome, object]:
    """In a worker: prepare the job's folder, run it in a forked child, judge the files."""
    job = _JOBS[index]
    if job.prepare is not None:
        job.prepare()
    before = snapshot(job.folder)
    paths = [_LOGS / f"{job.key}.{ext}" for ext in ("out", "err", "json")]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job.folder, job.argv, *paths)
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > TIMEOUT_S:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)
    outcome = _outcome(job, _LOGS, status, usage, time.monotonic() - started, before, base_rss)
    return index, outcome, None if _FINISH is None else _FINISH(job, outcome)


def _outcome(job: Job, logs: Path, status: int, usage, seconds: float, before: dict, base_rss: int) -> Outcome:
    result_file = logs / f"{job.key}.json"
    hung = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and seconds > TIMEOUT_S
    if result_file.is_file():
        result = json.loads(result_file.read_text())
    else:  # killed, or died in C code
        result = {
            "exit_code": -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status),
            "traceback": "killed" if hung else "crashed",
        }
    after = snapshot(job.folder)
    changed = sorted(k for k, v in before.items() if after.get(k) != v)
    wrote = job.output is not None and result["exit_code"] in (0, 1)
    leftovers = sorted(set(after) - set(before) - ({job.output} if wrote else set()))

    def read(ext: str) -> str:
        return (logs / f"{job.key}.{ext}").read_text(encoding="utf-8", errors="replace")

    return Outcome(
        exit_code=result["exit_code"],
        stdout=read("out"),
        stderr=read("err"),
        traceback=result["traceback"],
        maxrss_bytes=max(0, usage.ru_maxrss * 1024 - base_rss),
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        hung=hung,
        leftovers=leftovers,
        changed_inputs=changed,
        output=job.output if job.output in after else None,
    )


def dose_signature(path: Path) -> np.ndarray:
    """The dose (Gy) an RTDOSE file holds, as float64, for comparing outputs."""
    import pydicom

    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)


# ---------------------------------------------------------------------------------------------
# judging


def numbers(command: str, outcome: Outcome, folder: Path):
    """The numbers a command gave (None when it gave none): per constraint, per structure, or
    the exported dose grid."""
    if outcome.exit_code not in (0, 1):
        return None
    if command in ("check", "dvh"):
        try:
            report = json.loads(outcome.stdout)
        except ValueError:
            return None
        if command == "check":
            return {r["id"]: (r["structure"], r["value_gy"], r["status"]) for r in report["results"]}
        return {
            s["name"]: (s["evaluated"], s["volume_cc"], s["metrics"], tuple(s["notes"])) for s in report["structures"]
        }
    if command in ("eqd2", "sum"):
        if outcome.output is None:
            return None
        try:
            return dose_signature(folder / outcome.output)
        except Exception:  # an unreadable export is a wrong answer, judged by the caller
            return None
    return "valid"  # constraints validate: exit 0


def compare(command: str, got, baseline) -> str:
    """``same``, ``partial`` (some items not evaluated, the others the same) or ``changed``."""
    if got is None or baseline is None:
        return "changed"
    if isinstance(baseline, np.ndarray):
        same = got.shape == baseline.shape and np.allclose(got, baseline, rtol=0, atol=1e-9)
        return "same" if same else "changed"
    if isinstance(baseline, str):
        return "same" if got == baseline else "changed"
    if set(got) != set(baseline):
        return "changed"
    partial = False
    for key, expected in baseline.items():
        value = got[key]
        if value[:3] == expected[:3]:
            continue
        if (command == "check" and value[2] == "not_evaluated") or (
            command == "dvh" and _not_evaluated(value, expected)
        ):
            partial = True
        else:
            return "changed"
    return "partial" if partial else "same"


def _not_evaluated(value, expected) -> bool:
    """A dvh structure that could not be evaluated, whole or for every metric that differs (None)."""
    evaluated, volume, metrics, _ = value
    if not evaluated:
        return True
    differing = [name for name, v in metrics.items() if v != expected[2].get(name)]
    return volume == expected[1] and all(metrics[name] is None for name in differing)


def noted(got, baseline) -> bool:
    """Every dvh structure whose numbers changed carries a note the unmutated run did not have."""
    if not isinstance(got, dict) or not isinstance(baseline, dict) or set(got) != set(baseline):
        return False
    changed = [key for key, value in got.items() if value[:3] != baseline[key][:3]]
    return all(len(got[key]) > 3 and set(got[key][3]) - set(baseline[key][3]) for key in changed)


@dataclass
class Verdict:
    """The judgement of one command on one case: how it ended and what was wrong, if anything."""

    case: str
    family: str
    command: str
    expect: str
    result: str  # refused | same | partial | changed | crashed
    problems: list[str]
    outcome: Outcome


def judge(case, command: str, outcome: Outcome, got, baseline) -> Verdict:
    """Every safety property, then the numbers against the unmutated run."""
    problems = []
    escaped = outcome.traceback or "Traceback (most recent call last)" in outcome.stderr
    if escaped:
        problems.append(f"traceback ({outcome.traceback or 'printed'})")
    if outcome.hung:
        problems.append("hang")
    if outcome.exit_code not in ALLOWED_EXIT_CODES:
        said = " | ".join(line for line in outcome.stderr.splitlines() if line.strip())[:300]
        problems.append(f"exit code {outcome.exit_code}: {said}")
    if outcome.traceback == "MemoryError" or outcome.maxrss_bytes > MEMORY_BOUND_BYTES:
        problems.append(f"memory (peak {outcome.maxrss_bytes >> 20} MiB more than the parent)")
    if outcome.leftovers:
        problems.append(f"files left: {', '.join(outcome.leftovers[:3])}")
    if outcome.changed_inputs:
        problems.append(f"inputs modified: {', '.join(outcome.changed_inputs[:3])}")
    if escaped or outcome.hung or outcome.exit_code not in ALLOWED_EXIT_CODES:
        result = "crashed"
    elif outcome.exit_code == 2:
        result = "refused"
        lines = [line for line in outcome.stderr.splitlines() if line.strip()]
        # `constraints validate` lists every problem, one "file: entry: field: problem" line each
        listed = command == "validate" and lines and all(re.match(r"\S.*?\.toml: \S.*: ", line) for line in lines)
        if len(lines) != 1 and not listed:
            problems.append(f"refusal on {len(lines)} lines: {' | '.join(lines)[:300]}")
    else:
        result = compare(command, got, baseline)
        expect = case.expectation(command)
        if expect == "refuse":
            problems.append(f"accepted with exit {outcome.exit_code} (numbers {result}); expected a refusal")
        elif expect == "same" and result != "same":
            problems.append(f"numbers {result}; expected the unmutated numbers")
        elif expect == "same_or_refuse" and result == "changed":
            problems.append(
                f"accepted with exit {outcome.exit_code} and changed numbers; expected the same or a refusal"
            )
        elif expect == "same_or_noted" and result == "changed" and not noted(got, baseline):
            problems.append(f"accepted with exit {outcome.exit_code} and changed numbers without a note")
    return Verdict(case.name, case.family, command, case.expectation(command), result, problems, outcome)


def summary(verdicts: list[Verdict], cases: list, header: str, known: Callable[[Verdict], str | None]) -> str:
    """The table the lead quotes: cases per family, and per command how each run ended."""
    lines = [header, "", "cases per family (expectation):"]
    families: dict[str, list] = {}
    for case in cases:
        families.setdefault(case.family, []).append(case)
    for family, members in families.items():
        expects = ", ".join(f"{e} {sum(c.expect == e for c in members)}" for e in sorted({c.expect for c in members}))
        lines.append(f"  {family:<15} {len(members):>4}  ({expects})")
    lines.append(f"  {'total':<15} {len(cases):>4}")
    columns = (
        "runs",
        "cpu s",
        "refused",
        "same",
        "partial",
        "changed",
        "traceback",
        "hang",
        "memory",
        "leftover",
        "modified",
        "multiline",
        "wrong",
    )
    lines += [
        "",
        "runs per command: refused = exit 2 in one line; same = exit 0/1 with the unmutated numbers;",
        "partial = same numbers, some items not evaluated; changed = other numbers (asserted only for",
        "expectations other than 'safe'); wrong = any property violated (known failures included):",
        "  " + f"{'command':<9}" + "".join(f"{c:>10}" for c in columns),
    ]
    for command in sorted({v.command for v in verdicts}):
        runs = [v for v in verdicts if v.command == command]
        counts = {
            "runs": len(runs),
            "cpu s": round(sum(v.outcome.cpu_seconds for v in runs)),
            "refused": sum(v.result == "refused" for v in runs),
            "same": sum(v.result == "same" for v in runs),
            "partial": sum(v.result == "partial" for v in runs),
            "changed": sum(v.result == "changed" for v in runs),
            "traceback": sum(any(p.startswith("traceback") for p in v.problems) for v in runs),
            "hang": sum("hang" in v.problems for v in runs),
            "memory": sum(any(p.startswith("memory") for p in v.problems) for v in runs),
            "leftover": sum(any(p.startswith("files left") for p in v.problems) for v in runs),
            "modified": sum(any(p.startswith("inputs modified") for p in v.problems) for v in runs),
            "multiline": sum(any(p.startswith("refusal on") for p in v.problems) for v in runs),
            "wrong": sum(bool(v.problems) for v in runs),
        }
        lines.append("  " + f"{command:<9}" + "".join(f"{counts[c]:>10}" for c in columns))
    safe = [v for v in verdicts if v.expect == "safe" and v.result in ("same", "partial", "changed")]
    lines.append(
        f"\nbytes-any runs that loaded: {len(safe)} ({sum(v.result == 'same' for v in safe)} with the "
        f"unmutated numbers, {sum(v.result == 'changed' for v in safe)} with other numbers: not asserted)"
    )
    wrong = [v for v in verdicts if v.problems]
    unknown = [v for v in wrong if known(v) is None]
    lines.append(
        f"\nwrong runs: {len(wrong)} ({len(wrong) - len(unknown)} known, fixed on other branches; "
        f"{len(unknown)} unexpected)"
    )
    for v in sorted(wrong, key=lambda v: (known(v) or "", v.family, v.case, v.command)):
        owner = known(v) or "UNEXPECTED"
        lines.append(f"  [{owner}] {v.case} {v.command}: exit {v.outcome.exit_code}: {'; '.join(v.problems)[:240]}")
    slowest = max(verdicts, key=lambda v: v.outcome.seconds)
    peak = max(verdicts, key=lambda v: v.outcome.maxrss_bytes)
    lines.append(
        f"\nslowest run {slowest.outcome.seconds:.1f} s ({slowest.case} {slowest.command}); peak memory "
        f"{peak.outcome.maxrss_bytes >> 20} MiB above the parent ({peak.case} {peak.command}); "
        f"bound {MEMORY_BOUND_BYTES >> 20} MiB"
    )
    return "\n".join(lines) + "\n"
