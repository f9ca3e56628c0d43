"""Speed of a batch audit: `reirrad check` on N cases (default 40), serial (--jobs 1) against a
process pool (--jobs 2), as whole commands in fresh processes.

The cases are copies of the two sample cases (sample_plans/) with their own ids and prior-course
dates. Each command writes JSON; the two outputs must be identical. Printed per run: wall and CPU
seconds (the command and its workers), the speed-up of the pool, and the peak RSS of the largest
process of the run (with --jobs 2 that is a worker: each holds one case at a time).
Target (issue 13): speed-up >= 1.7 on an otherwise idle 2-core machine.

    python benchmarks/batch_speed.py [--cases 40] [--jobs 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from batch_helpers import make_cases

CLI = [sys.executable, "-c", "from reirrad.cli import main; main()"]


def timed(cases: list[Path], jobs: int) -> tuple[float, float, float, str]:
    """Wall s, CPU s, peak RSS (MB) of the largest process, and the JSON output of one command.
    Run in a child process of its own so the RSS high-water mark belongs to this run only."""
    probe = f"""
import resource, subprocess, sys, time
start = time.perf_counter()
run = subprocess.run({CLI!r} + sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(run.stderr)
print(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, run.returncode)
sys.stdout.write(run.stdout)
"""
    args = [sys.executable, "-c", probe, "check", *map(str, cases), "--format", "json", "--quiet", "--jobs", str(jobs)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    head, _, body = out.partition("\n")
    wall, cpu, rss, code = head.split()
    if int(code) not in (0, 1):
        raise SystemExit(f"reirrad check --jobs {jobs} exited {code}")
    return float(wall), float(cpu), float(rss), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cases = make_cases(Path(folder), args.cases)
        serial = timed(cases, 1)
        pooled = timed(cases, args.jobs)
    if serial[3] != pooled[3]:
        raise SystemExit("the serial and the pooled run disagree")
    print(f"{args.cases} cases")
    for name, (wall, cpu, rss, _) in (("--jobs 1", serial), (f"--jobs {args.jobs}", pooled)):
        print(f"{name:10s} wall {wall:7.1f} s   cpu {cpu:7.1f} s   peak RSS of the largest process {rss:6.0f} MB")
    print(f"speed-up {serial[0] / pooled[0]:.2f}x (target >= 1.7x with 2 jobs on an idle 2-core machine)")


if __name__ == "__main__":
    main()
