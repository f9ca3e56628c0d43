"""Speed and memory of `reirrad sum` on two 2.5-million-voxel courses (synthetic RTDOSE files).

The prior course's grid is shifted by a fraction of a voxel, so it really is resampled. The timed
part is the whole command: read the case, find and read both RTDOSE files (with SHA-256), map the
prior onto the new grid, convert to EQD2, add, and write the result. It runs in a fresh process so
that its peak RSS is its own. dicompyler-core's DoseGrid sum (physical dose, trilinear) of the same
two files is timed for reference. Target: < 1.5 s and < 2 GB on a 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sum_helpers import axial_grid, voxel_centres, write_dose  # noqa: E402

SHAPE = (100, 160, 160)  # 2.56 million voxels
FRAME = "1.2.826.0.1.3680043.8.498.99"

CHILD = r"""
import resource, sys, time, tracemalloc
from pathlib import Path
from reirrad.accumulate import write_cumulative_eqd2
case, out, traced = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
if traced:
    tracemalloc.start()
start = time.perf_counter()
summary = write_cumulative_eqd2(case, 3.0, out)
elapsed = time.perf_counter() - start
peak_traced = tracemalloc.get_traced_memory()[1] if traced else 0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {rss_mb:.0f} {peak_traced / 2**20:.0f} {summary.max_eqd2_gy:.3f}")
"""


def make_case(folder: Path) -> Path:
    """Two courses as RTDOSE files (PLAN doses, fractions in the case file) and a case file."""
    new_grid = axial_grid((-200.0, -200.0, -125.0), (2.5, 2.5, 2.5), SHAPE, FRAME)
    prior_grid = axial_grid((-198.9, -200.7, -124.6), (2.5, 2.5, 2.5), SHAPE, FRAME)
    for name, grid, peak in (("prior", prior_grid, 70.0), ("new", new_grid, 60.0)):
        (folder / name).mkdir()
        r2 = np.sum(np.square(voxel_centres(grid)), axis=-1)
        write_dose(folder / name / "rd.dcm", grid, peak * np.exp(-r2 / (2 * 60.0**2)), plan_uid=f"1.2.3.{len(name)}")
    case = folder / "case.toml"
    case.write_text(
        'id = "bench"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 35\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 30\nstart_date = 2025-01-14\n'
    )
    return case


def run_child(case: Path, out: Path, traced: bool) -> tuple[float, float, float, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(case), str(out), "1" if traced else "0"],
        capture_output=True, text=True, check=True,
    )
    return tuple(float(v) for v in result.stdout.split())  # type: ignore[return-value]


def dicompyler_sum_seconds(case: Path) -> float:
    from dicompylercore.dose import DoseGrid

    start = time.perf_counter()
    total = DoseGrid(str(case.parent / "new" / "rd.dcm"))
    total.add(DoseGrid(str(case.parent / "prior" / "rd.dcm")))
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        case = make_case(Path(tmp))
        runs = [run_child(case, Path(tmp) / f"sum{i}.dcm", traced=False) for i in range(3)]
        best = min(runs, key=lambda r: r[0])
        traced = run_child(case, Path(tmp) / "traced.dcm", traced=True)
        reference = dicompyler_sum_seconds(case)
    voxels = int(np.prod(SHAPE))
    print(f"reirrad sum, 2 courses x {voxels / 1e6:.2f} M voxels (prior resampled), EQD2 a/b 3, 32-bit RTDOSE out")
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'wall time, best of 3 (s)':<44}{best[0]:>12.3f}")
    print(f"{'wall time, all runs (s)':<44}{', '.join(f'{r[0]:.3f}' for r in runs):>12}")
    print(f"{'peak RSS of the process (MB)':<44}{best[1]:>12.0f}")
    print(f"{'peak traced Python/numpy allocations (MB)':<44}{traced[2]:>12.0f}")
    print(f"{'max cumulative EQD2 (Gy)':<44}{best[3]:>12.2f}")
    print(f"{'dicompyler-core DoseGrid physical sum (s)':<44}{reference:>12.3f}")
    print(f"{'ratio dicompyler / reirrad (whole command)':<44}{reference / best[0]:>12.2f}")
    print(f"target: < 1.5 s and < 2048 MB -> {'met' if best[0] < 1.5 and best[1] < 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
