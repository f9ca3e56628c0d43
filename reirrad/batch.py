"""Batch audits: many case files checked in one run, locally in a process pool or on a Dask cluster.

Each case is one task (:func:`check_case`, which never raises): a worker holds one case at a time,
results come back as cases finish and are put back into input order. With a results store
(:class:`reirrad.store.Store`) every finished case is written by this (the submitting) process in
one transaction, and a case whose inputs, options and reirrad version are unchanged since it was
stored is taken from the store instead of being checked again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Generator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from reirrad import __version__
from reirrad.accumulate import sha256_file
from reirrad.case import load_case
from reirrad.check import CheckOptions, batch_inputs, run_check
from reirrad.constraints import CONSTRAINTS_DIR
from reirrad.errors import InputError, ReirradError
from reirrad.results import CheckReport
from reirrad.verdicts import ExitCode, batch_exit_code
from reirrad.worker import init_worker

if TYPE_CHECKING:
    from reirrad.store import Store


class CaseState(str, Enum):
    """How a case of a batch ended."""

    CHECKED = "checked"
    INPUT_ERROR = "input_error"  # bad input: exit 2
    INTERNAL_ERROR = "internal_error"  # a bug or a dead worker: exit 3
    NOT_RUN = "not_run"  # --fail-fast stopped the batch before this case finished


@dataclass(frozen=True)
class CaseOutcome:
    """One case of a batch: its report, or the one-line error, and the time the check took."""

    path: str
    state: CaseState
    report: CheckReport | None = None
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False  # taken from the results store, not checked in this run

    @property
    def exit_code(self) -> int | None:
        """The case's own exit code (None when it was not run)."""
        if self.report is not None:
            return self.report.summary.exit_code
        code = {CaseState.INPUT_ERROR: ExitCode.INPUT, CaseState.INTERNAL_ERROR: ExitCode.INTERNAL}.get(self.state)
        return None if code is None else int(code)

    @property
    def label(self) -> str:
        """The case id, or the case file when the case could not be read."""
        return self.path if self.report is None else self.report.case_id


@dataclass(frozen=True)
class BatchResult:
    """Every case of a batch in input order."""

    outcomes: tuple[CaseOutcome, ...]
    stopped_by: int | None = None  # index of the failing case that stopped a --fail-fast run

    @property
    def reports(self) -> tuple[CheckReport, ...]:
        return tuple(o.report for o in self.outcomes if o.report is not None)

    @property
    def errors(self) -> tuple[tuple[str, str], ...]:
        """(case file, one-line error) of the cases that could not be checked."""
        return tuple((o.path, o.error) for o in self.outcomes if o.error is not None)

    @property
    def not_run(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outcomes if o.state is CaseState.NOT_RUN)

    @property
    def exit_code(self) -> int:
        """--fail-fast: the stopping case's code. Else :func:`reirrad.verdicts.batch_exit_code` of the cases."""
        if self.stopped_by is not None:
            code = self.outcomes[self.stopped_by].exit_code
            if code is None:  # only a finished case stops a run
                raise ValueError(f"case {self.stopped_by} stopped the batch but was not run")
            return code
        return batch_exit_code(o.exit_code for o in self.outcomes)


def check_case(path: str, options: CheckOptions) -> CaseOutcome:
    """Check one case file; the task every worker runs. Never raises: bad input and internal errors
    become the outcome, so one case cannot end the others. DVH curves and hot-spot planes are not
    computed (a batch draws none)."""
    start = time.perf_counter()
    try:
        report = run_check(load_case(path), dataclasses.replace(options, figures=False))
    except ReirradError as exc:
        return CaseOutcome(path, CaseState.INPUT_ERROR, error=str(exc), seconds=time.perf_counter() - start)
    except Exception as exc:  # reported per case with exit code 3
        return CaseOutcome(
            path,
            CaseState.INTERNAL_ERROR,
            error=f"{path}: internal error: {type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )
    return CaseOutcome(
        path,
        CaseState.CHECKED,
        report=report,
        seconds=time.perf_counter() - start,
    )


# ------------------------------------------------------------------ what a stored case was computed from


@dataclass(frozen=True)
class CaseKey:
    """A case file, the hashes of every file its result depends on, the options and the version."""

    path: str  # absolute
    inputs: dict[str, str] = field(hash=False)  # file -> sha256
    options: str  # canonical JSON of CheckOptions
    reirrad_version: str = __version__

    @property
    def inputs_sha256(self) -> str:
        """One digest over all input files and their hashes."""
        return hashlib.sha256(json.dumps(self.inputs, sort_keys=True).encode()).hexdigest()


def input_files(path: Path, options: CheckOptions) -> list[Path]:
    """The files a case's result depends on, as far as they can be read: every file the check reads
    (:func:`reirrad.check.check_inputs`) and the bundled data tables (organ names, flag rules,
    recovery models)."""
    # a case file that cannot be read stands for itself: its check fails too, and errors are
    # never taken from the store
    return [*batch_inputs([path], options), *sorted(CONSTRAINTS_DIR.glob("*.toml"))]


def case_key(path: str | Path, options: CheckOptions) -> CaseKey:
    """The key under which a case's result is stored (hashes every input file)."""
    path = Path(path).absolute()
    files = dict.fromkeys(str(Path(p).absolute()) for p in input_files(path, options))
    return CaseKey(
        path=str(path),
        inputs={f: sha256_file(Path(f)) for f in files if Path(f).is_file()},
        options=json.dumps(options.judging(), sort_keys=True),
    )


# ------------------------------------------------------------------ engines: (index, outcome) as cases finish

Task = tuple[int, str]  # (input position, absolute case file)


def _serial(tasks: list[Task], options: CheckOptions) -> Generator[tuple[int, CaseOutcome]]:
    for index, path in tasks:
        yield index, check_case(path, options)


def _pool(tasks: list[Task], options: CheckOptions, jobs: int) -> Generator[tuple[int, CaseOutcome]]:
    """A process pool (spawn: a fresh interpreter per worker, safe with threads and BLAS)."""
    executor = ProcessPoolExecutor(
        min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"), initializer=init_worker
    )
    futures = {executor.submit(check_case, path, options): (index, path) for index, path in tasks}
    try:
        for future in as_completed(futures):
            index, path = futures[future]
            yield index, _finished(future, path)
    except BaseException:  # stopped early (--fail-fast, interrupt): cases in flight are abandoned
        workers = list((executor._processes or {}).values())  # Python >= 3.14: executor.terminate_workers()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        raise
    executor.shutdown()


def _dask(tasks: list[Task], options: CheckOptions, address: str) -> Generator[tuple[int, CaseOutcome]]:
    """The same tasks on a Dask distributed cluster; the results come back to this process."""
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address, set_as_default=False) as client:
        futures = {client.submit(check_case, path, options, pure=False): (index, path) for index, path in tasks}
        try:
            for future in dask_completed(list(futures), loop=client.loop):
                index, path = futures[future]
                yield index, _finished(future, path)
        finally:
            client.cancel(list(futures))


def _finished(future, path: str) -> CaseOutcome:
    """A future's outcome; a worker that died (killed, out of memory) is an internal error of its case."""
    try:
        return future.result()
    except Exception as exc:  # the case is reported, the batch goes on
        return CaseOutcome(
            path, CaseState.INTERNAL_ERROR, error=f"{path}: internal error: worker failed ({type(exc).__name__}: {exc})"
        )


def duplicate_ids(paths: list[str]) -> dict[int, str]:
    """The one-line refusal of every case file whose id an earlier case file of the batch already
    uses, by position (reports are keyed by case id: never merged or overwritten). Case files that
    cannot be read are left to the check, which reports them."""
    first_with: dict[str, str] = {}
    refused = {}
    for index, path in enumerate(paths):
        try:
            case_id = load_case(path).id
        except ReirradError:
            continue
        if case_id in first_with:
            refused[index] = str(
                InputError(
                    path,
                    f"case id {case_id!r} is already the id of {first_with[case_id]} "
                    "in this batch; give each case its own id",
                )
            )
        else:
            first_with[case_id] = path
    return refused


def default_jobs() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ------------------------------------------------------------------ the batch


def run_batch(
    case_files: list[str | Path],
    options: CheckOptions = CheckOptions(),
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    store: Store | None = None,
    recompute: bool = False,
    fail_fast: bool = False,
    on_outcome: Callable[[CaseOutcome], None] | None = None,
) -> BatchResult:
    """Check every case file; a case that fails is recorded and the others go on.

    Parameters
    ----------
    case_files
        Case files (TOML), reported under their absolute paths, in this order.
    jobs
        Worker processes; 1 checks the cases in this process. Ignored with ``scheduler``.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``) to run the cases on.
    store
        Results store: finished cases are written to it, unchanged checked cases taken from it.
    recompute
        Check every case even when the store holds it unchanged.
    fail_fast
        Stop at the first case (in finishing order) whose exit code is not 0; the cases not
        finished by then are reported as not run.
    on_outcome
        Called with every case as it finishes (or is taken from the store), for progress.
    """
    paths = [str(Path(p).absolute()) for p in case_files]
    outcomes: list[CaseOutcome | None] = [None] * len(paths)
    keys = {i: case_key(p, options) for i, p in enumerate(paths)} if store is not None else {}
    stopped_by = None

    def finish(index: int, outcome: CaseOutcome, new: bool = True) -> bool:
        """Take one case (``new``: write it to the store); True when --fail-fast stops the batch here."""
        nonlocal stopped_by
        if new and store is not None:
            store.record(keys[index], outcome)
        outcomes[index] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
        if fail_fast and outcome.exit_code != 0:
            stopped_by = index
        return stopped_by is not None

    refused = duplicate_ids(paths)
    for index, path in enumerate(paths):  # refused and stored cases first, in input order
        if index in refused:
            stop = finish(index, CaseOutcome(path, CaseState.INPUT_ERROR, error=refused[index]))
        else:
            stored = None if store is None or recompute else store.lookup(keys[index])
            stop = stored is not None and finish(index, stored, new=False)
        if stop:
            break
    tasks = [(i, p) for i, p in enumerate(paths) if outcomes[i] is None]
    if tasks and stopped_by is None:
        engine = (
            _dask(tasks, options, scheduler)
            if scheduler
            else _pool(tasks, options, jobs)
            if jobs > 1
            else _serial(tasks, options)
        )
        with closing(engine):
            for index, outcome in engine:
                if finish(index, outcome):
                    break
    return BatchResult(tuple(o or CaseOutcome(p, CaseState.NOT_RUN) for o, p in zip(outcomes, paths)), stopped_by)
