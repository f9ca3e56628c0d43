"""The fuzzed bad-input corpus: every case through every command that reads the changed file.

For each run: exit code 0, 1 or 2 (never 3, never a traceback), one stderr line for exit 2, no
partial or temporary file, every input byte-identical afterwards, memory under a bound, and right
numbers when it exits 0 or 1 (see tests/fuzz_corpus.py for what "right" means per expectation).

Default: every targeted case and 80 random ones (REIRRAD_FUZZ_CASES=N for N random cases,
REIRRAD_FUZZ_SEED to change the seed). The summary is written to ``fuzz_summary.txt`` in the pytest
temporary folder and printed (``pytest -s tests/test_fuzz.py``); ``python tests/test_fuzz.py
--summary [--cases N] [--seed S]`` prints it without pytest.

Failures in areas other branches fix are listed in :data:`KNOWN` (the test of a family holding
one is an expected failure, not strict); any other failure fails its family's test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_corpus as corpus
import fuzz_runner as runner

DEFAULT_RANDOM_CASES = 40
DEFAULT_SEED = 20261126
WORKERS = min(2, os.cpu_count() or 1)

# Failures that another branch fixes: (case-name pattern, command pattern, problem pattern, owner).
# A wrong run is "known" when its name and command match and every one of its problems matches.
KNOWN: list[tuple[str, str, str, str]] = []


def known(verdict: runner.Verdict) -> str | None:
    """The branch expected to fix a wrong run, or None."""
    for case, command, problem, owner in KNOWN:
        if (
            re.search(case, verdict.case)
            and re.fullmatch(command, verdict.command)
            and all(re.fullmatch(problem, p) for p in verdict.problems)
        ):
            return owner
    return None


def _fill(case: corpus.FuzzCase, base: Path, folder: Path) -> None:
    """The case's folder: the base hard-linked (read-only use), changed files written anew."""
    shutil.copytree(base, folder, copy_function=os.link)
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(content() if callable(content) else content)
    for rel, target in case.links.items():
        (folder / rel).symlink_to(target)


def warm_up(bases: dict[str, Path], scratch: Path) -> None:
    """Run every command once in this process on unmutated inputs, so that the forked runs
    start with the caches of built-in data (organs, recovery models, lazy imports) filled."""
    from reirrad.cli import main

    for base, commands in corpus.COMMANDS.items():
        if base not in bases:
            continue
        folder = scratch / base
        shutil.copytree(bases[base], folder)
        cwd, argv = os.getcwd(), sys.argv
        try:
            os.chdir(folder)
            for args in commands.values():
                sys.argv = ["reirrad", *args]
                with (
                    open(os.devnull, "w") as sink,
                    contextlib.redirect_stdout(sink),
                    contextlib.redirect_stderr(sink),
                    contextlib.suppress(SystemExit),
                ):
                    main()
        finally:
            os.chdir(cwd)
            sys.argv = argv
    shutil.rmtree(scratch)


def run_corpus(workdir: Path, testdata: Path | None, random_cases: int, seed: int):
    """Build the bases and the corpus under ``workdir``, run every job; (verdicts, cases, summary)."""
    started = time.monotonic()
    bases = corpus.make_bases(workdir / "bases", testdata)
    pristine = {name: runner.snapshot(path) for name, path in bases.items()}
    warm_up(bases, workdir / "warm-up")
    cases = corpus.build_corpus(bases, seed, random_cases)
    baselines = [corpus.FuzzCase("baseline", f"{b}:unmutated", b, {}, tuple(corpus.COMMANDS[b]), "same") for b in bases]
    jobs, owners = [], {}
    for i, case in enumerate(baselines + cases):
        for command in case.commands:
            key = f"{i:04d}-{command}"
            folder = workdir / "runs" / key
            argv = corpus.COMMANDS[case.base][command]
            output = corpus.OUT if corpus.OUT in argv else None
            jobs.append(runner.Job(key, folder, argv, output, partial(_fill, case, bases[case.base], folder)))
            owners[key] = (case, command)

    def finish(job: runner.Job, outcome: runner.Outcome):
        _case, command = owners[job.key]
        numbers = runner.numbers(command, outcome, job.folder)
        shutil.rmtree(job.folder)
        return numbers

    results = dict(zip(owners, runner.run_jobs(jobs, workdir / "logs", WORKERS, finish)))
    base_numbers = {(c.base, cmd): results[k][1] for k, (c, cmd) in owners.items() if c.family == "baseline"}
    verdicts = [
        runner.judge(case, command, *results[key], base_numbers[case.base, command])
        for key, (case, command) in owners.items()
    ]
    for name, path in bases.items():
        if runner.snapshot(path) != pristine[name]:
            verdicts[0].problems.append(f"inputs modified: the pristine base {name}")
    header = (
        f"reirrad fuzz corpus: seed {seed}, {len(cases)} cases ({random_cases} random) from "
        f"{', '.join(bases)}, {len(jobs)} runs on {WORKERS} workers in {time.monotonic() - started:.0f} s"
    )
    return verdicts, cases, runner.summary(verdicts, cases, header, known)


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory, request):
    from conftest import TESTDATA

    testdata = TESTDATA if (TESTDATA / "MANIFEST.md").is_file() else None
    random_cases = int(os.environ.get("REIRRAD_FUZZ_CASES", DEFAULT_RANDOM_CASES))
    seed = int(os.environ.get("REIRRAD_FUZZ_SEED", DEFAULT_SEED))
    workdir = tmp_path_factory.mktemp("fuzz")
    verdicts, _cases, text = run_corpus(workdir, testdata, random_cases, seed)
    (workdir / "fuzz_summary.txt").write_text(text)
    print(f"\n{text}(written to {workdir / 'fuzz_summary.txt'})")
    return verdicts


FAMILIES = (
    "baseline",
    "truncate",
    "bytes-inert",
    "bytes-any",
    "missing-tags",
    "scaling",
    "huge-grid",
    "contours",
    "reg",
    "case-file",
    "constraint-set",
)


@pytest.mark.parametrize("family", FAMILIES)
def test_family(fuzz_run, family):
    runs = [v for v in fuzz_run if v.family == family]
    if not runs:
        pytest.skip(f"no {family} cases (third-party data absent?)")
    unexpected = [f"{v.case} {v.command}: {'; '.join(v.problems)}" for v in runs if v.problems and known(v) is None]
    assert not unexpected, "\n".join(unexpected)
    expected = sorted({known(v) for v in runs if v.problems})
    if expected:
        pytest.xfail(f"{sum(bool(v.problems) for v in runs)} known failures: {'; '.join(expected)}")


def test_baselines_give_numbers(fuzz_run):
    """The unmutated runs exit 0 or 1 with numbers, so the comparisons above compare something."""
    baselines = [v for v in fuzz_run if v.family == "baseline"]
    assert baselines and all(v.result == "same" and v.outcome.exit_code in (0, 1) for v in baselines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fuzzed bad-input corpus and print its summary.")
    parser.add_argument("--summary", action="store_true", help="print the summary (the only mode)")
    parser.add_argument("--cases", type=int, default=int(os.environ.get("REIRRAD_FUZZ_CASES", DEFAULT_RANDOM_CASES)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("REIRRAD_FUZZ_SEED", DEFAULT_SEED)))
    args = parser.parse_args()
    from conftest import TESTDATA

    testdata = TESTDATA if (TESTDATA / "MANIFEST.md").is_file() else None
    with tempfile.TemporaryDirectory(prefix="reirrad-fuzz-") as tmp:
        _, _, text = run_corpus(Path(tmp), testdata, args.cases, args.seed)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
