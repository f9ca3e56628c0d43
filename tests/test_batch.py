"""Batch audits: process pool and Dask give the serial results in input order; the results store
resumes without recomputing; interrupted runs (SIGTERM, SIGKILL) lose only the cases in flight."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from batch_helpers import make_cases

import reirrad.batch
from reirrad.batch import BatchResult, CaseOutcome, CaseState, run_batch
from reirrad.check import CheckOptions
from reirrad.report.batch import progress, render_batch
from reirrad.store import Store
from reirrad.worker import THREAD_VARIABLES, init_worker

CASES = 6
FORMATS = ("json", "csv", "junit", "table")
CLI = [sys.executable, "-c", "from reirrad.cli import main; main()"]


@pytest.fixture(scope="module")
def audit(tmp_path_factory) -> tuple[list[Path], BatchResult]:
    """Six case files and their serial batch result (computed once for the module)."""
    cases = make_cases(tmp_path_factory.mktemp("audit"), CASES)
    return cases, run_batch(cases)


def rendered(batch: BatchResult, fmt: str = "json") -> str:
    return render_batch(batch, fmt, CheckOptions())


def subset(batch: BatchResult, order: list[int]) -> BatchResult:
    return BatchResult(tuple(batch.outcomes[i] for i in order))


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """The case files checked in this process (serial engine) from now on."""
    checked: list[str] = []
    original = reirrad.batch.check_case

    def counting(path, options):
        checked.append(path)
        return original(path, options)

    monkeypatch.setattr(reirrad.batch, "check_case", counting)
    return checked


def test_serial_batch_checks_every_case_with_its_own_values(audit):
    _cases, serial = audit
    assert [o.state for o in serial.outcomes] == [CaseState.CHECKED] * CASES
    ids = [o.report.case_id for o in serial.outcomes]
    assert ids == [f"HN-{'CONV-REIRR-02' if i % 2 == 0 else 'SBRT-REIRR-01'}-{i:03d}" for i in range(CASES)]
    # prior courses 60 days earlier per copy: the interval to the new course grows by 60 days each time
    intervals = [o.report.courses[0].interval_months for o in serial.outcomes]
    assert intervals[2] - intervals[0] == pytest.approx(120 / 30.4375, abs=0.05)
    # the SBRT sample fails its carotid limit, the conventional one passes: highest exit code 1
    assert [o.exit_code for o in serial.outcomes] == [0, 1] * (CASES // 2)
    assert serial.exit_code == 1


def test_process_pool_gives_the_serial_results_in_input_order(audit):
    cases, serial = audit
    order = [3, 0, 2, 1]
    pooled = run_batch([cases[i] for i in order], jobs=2)
    expected = subset(serial, order)
    for fmt in FORMATS:
        assert rendered(pooled, fmt) == rendered(expected, fmt)
    data = json.loads(rendered(pooled))
    assert [c["case"]["id"] for c in data["cases"]] == [serial.outcomes[i].report.case_id for i in order]


def test_pool_workers_run_with_one_blas_thread():
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=init_worker) as pool:
        assert list(pool.map(os.getenv, THREAD_VARIABLES)) == ["1"] * len(THREAD_VARIABLES)
    assert THREAD_VARIABLES == ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def test_dask_cluster_gives_the_serial_results(audit):
    try:
        import distributed
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("dask distributed not installed (pip install reirrad[cluster])")
    cases, serial = audit
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = run_batch(cases[:2], scheduler=cluster.scheduler_address)
    assert rendered(remote) == rendered(subset(serial, [0, 1]))


def test_bad_case_is_reported_and_the_others_go_on(audit, tmp_path, monkeypatch):
    cases, serial = audit
    broken = tmp_path / "broken.toml"
    broken.write_text("id = \n")
    batch = run_batch([broken, cases[0]])
    assert [o.state for o in batch.outcomes] == [CaseState.INPUT_ERROR, CaseState.CHECKED]
    assert batch.errors[0][0] == str(broken) and batch.errors[0][1].startswith(f"{broken}: not valid TOML")
    assert batch.exit_code == 2
    assert rendered(BatchResult(batch.outcomes[1:])) == rendered(subset(serial, [0]))

    # an unexpected exception in one case (a bug) is that case's internal error, exit 3 over exit 2
    def buggy(case, options):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(reirrad.batch, "run_check", buggy)
    batch = run_batch([broken, cases[0]])
    assert [o.exit_code for o in batch.outcomes] == [2, 3]
    assert batch.errors[1][1] == f"{cases[0]}: internal error: ZeroDivisionError: division by zero"
    assert batch.exit_code == 3


def test_fail_fast_stops_at_the_first_failing_case(audit, counted):
    cases, _serial = audit
    batch = run_batch([cases[1], cases[0], cases[2]], fail_fast=True)
    assert counted == [str(cases[1])]
    assert [o.state for o in batch.outcomes] == [CaseState.CHECKED, CaseState.NOT_RUN, CaseState.NOT_RUN]
    assert batch.exit_code == 1 and batch.stopped_by == 0
    data = json.loads(rendered(batch))
    assert data["not_run"] == [str(cases[0]), str(cases[2])] and data["summary"]["cases"] == 3
    assert "not run: --fail-fast" in rendered(batch, "junit")


def test_store_resumes_without_recomputing_and_outputs_cover_every_case(audit, tmp_path, counted):
    cases, serial = audit
    store_path = tmp_path / "audit.sqlite"
    with Store(store_path) as store:
        run_batch(cases[:2], store=store)
    assert len(counted) == 2
    with Store(store_path) as store:
        resumed = run_batch(cases[:3], store=store)
    assert counted[2:] == [str(cases[2])]
    assert [o.resumed for o in resumed.outcomes] == [True, True, False]
    for fmt in FORMATS:
        assert rendered(resumed, fmt) == rendered(subset(serial, [0, 1, 2]), fmt)
    with Store(store_path) as store:  # --recompute, a changed input file, other options: checked again
        run_batch(cases[:2], store=store, recompute=True)
        cases[1].write_text(cases[1].read_text() + "# edited\n")
        run_batch(cases[:2], store=store)
        run_batch(cases[:1], store=store, options=CheckOptions(fail_on="warn"))
    assert counted[3:] == [str(cases[0]), str(cases[1]), str(cases[1]), str(cases[0])]
    cases[1].write_text(cases[1].read_text().removesuffix("# edited\n"))


def test_progress_plain_lines_rich_bar_and_quiet(audit):
    _, serial = audit
    outcomes = list(serial.outcomes[:2]) + [
        CaseOutcome("/x/case.toml", CaseState.INPUT_ERROR, error="/x/case.toml: bad")
    ]
    plain = io.StringIO()
    with progress(3, stream=plain) as advance:
        for outcome in outcomes:
            advance(outcome)
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("reirrad: [1/3] HN-CONV-REIRR-02-000: exit 0 (")
    assert lines[2] == "reirrad: [3/3] /x/case.toml: exit 2 (0.0 s): /x/case.toml: bad"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    with progress(3, stream=terminal) as advance:
        for outcome in outcomes:
            advance(outcome)
    assert "3/3" in terminal.getvalue() and "2 failing" in terminal.getvalue()
    quiet = Terminal()
    with progress(3, quiet=True, stream=quiet) as advance:
        advance(outcomes[0])
    assert quiet.getvalue() == ""


def _stored(store: Path) -> dict[str, tuple]:
    """Every stored case: path -> (state, finished_at, seconds, report); {} while there is no table."""
    try:
        with sqlite3.connect(store) as db:
            return {
                row[0]: row[1:] for row in db.execute("SELECT path, state, finished_at, seconds, report FROM cases")
            }
    except sqlite3.Error:
        return {}


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _poll(condition, what: str) -> None:
    """Wait for ``condition()``; a bound so that a broken run cannot hang the suite (not a timing assert)."""
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def _interrupt(args: list[str], store: Path, stored_at_least: int, sig: signal.Signals) -> str:
    """Start the batch, send ``sig`` once ``stored_at_least`` cases are in the store; its stderr.
    The pool's workers end with it (even after SIGKILL: they watch their parent)."""
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _poll(lambda: len(_stored(store)) >= stored_at_least or run.poll() is not None, "stored cases")
    workers = _children(run.pid)
    assert len(workers) >= 2  # the two pool workers (and the pool's resource tracker)
    run.send_signal(sig)
    _, err = run.communicate()
    assert run.returncode == (128 + signal.SIGTERM if sig == signal.SIGTERM else -signal.SIGKILL)
    _poll(lambda: not any(_alive(pid) for pid in workers), "the workers to end")
    return err


def test_killed_runs_resume_with_every_case_once_and_nothing_recomputed(audit, tmp_path):
    """SIGTERM after one stored case, SIGKILL after one more, then a run to the end: every case
    once, the finished ones untouched, outputs identical to the uninterrupted serial run."""
    cases, serial = audit
    store = tmp_path / "audit.sqlite"
    args = [*CLI, "check", *map(str, cases), "--store", str(store), "--jobs", "2", "--format", "json"]
    err = _interrupt(args, store, 1, signal.SIGTERM)
    assert "reirrad: interrupted by SIGTERM\nreirrad: finished cases are in" in err
    first = _stored(store)
    assert 1 <= len(first) < CASES and {row[0] for row in first.values()} == {"checked"}
    _interrupt(args, store, len(first) + 1, signal.SIGKILL)
    second = _stored(store)
    assert len(first) < len(second) < CASES and {row[0] for row in second.values()} == {"checked"}
    assert {p: second[p] for p in first} == first

    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 1
    assert rerun.stdout == rendered(serial)
    final = _stored(store)
    assert sorted(final) == sorted(str(c) for c in cases)  # every case once
    assert {p: final[p] for p in second} == second  # none of the finished ones recomputed
    assert rerun.stderr.count("(from store)") == len(second)

    quiet = subprocess.run([*args[:-1], "csv", "--quiet"], capture_output=True, text=True)
    assert quiet.stderr == "" and quiet.stdout == rendered(serial, "csv")
