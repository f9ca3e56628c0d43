"""Speed and memory of `reirrad sum` on two 2.5-million-voxel courses (synthetic RTDOSE files),
as a whole command (a fresh process, start-up included; see commands.py).

The prior course's grid is shifted by a fraction of a voxel, so it really is resampled. The command
reads the case, finds and reads both RTDOSE files (with SHA-256), maps the prior onto the new grid,
converts to EQD2, adds, and writes the result. Printed: median CPU s, wall s, peak RSS and bytes per
voxel of the reference grid; dicompyler-core's DoseGrid sum (physical dose, trilinear) of the same
two files, run as a Python process with its import, for reference.
Usage: .venv/bin/python benchmarks/sum_speed.py [--voxels 41] [--no-dicompyler]
(``--voxels``: millions of voxels per grid, the same anatomy on finer grids; default 2.56.)
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from commands import medians, print_load, print_table, reirrad_command, run_one

SHAPE = (100, 160, 160)  # 2.56 million voxels at 2.5 mm
SPACING_MM = 2.5
FRAME = "1.2.826.0.1.3680043.8.498.99"

DICOMPYLER = """
import sys
from dicompylercore.dose import DoseGrid
total = DoseGrid(sys.argv[1])
total.add(DoseGrid(sys.argv[2]))
"""


def scaled(voxels_m: float) -> tuple[tuple[int, int, int], float]:
    """The grid shape and spacing (mm) of about ``voxels_m`` million voxels over the same extent."""
    factor = (voxels_m * 1e6 / math.prod(SHAPE)) ** (1 / 3)
    shape = (round(SHAPE[0] * factor), round(SHAPE[1] * factor), round(SHAPE[2] * factor))
    return shape, SPACING_MM * SHAPE[1] / shape[1]


def make_case(folder: Path, voxels_m: float) -> None:
    """Two courses as RTDOSE files (PLAN doses, fractions in the case file) and ``case.toml``.

    Run in a process of its own: a child's peak RSS counts its parent's at fork (Linux keeps the
    high-water mark across exec), so the measuring process must stay small.
    """
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sum_helpers import axial_grid, write_dose

    shape, spacing = scaled(voxels_m)
    new_grid = axial_grid((-200.0, -200.0, -125.0), (spacing,) * 3, shape, FRAME)
    prior_grid = axial_grid((-198.9, -200.7, -124.6), (spacing,) * 3, shape, FRAME)
    for name, grid, peak in (("prior", prior_grid, 70.0), ("new", new_grid, 60.0)):
        (folder / name).mkdir()
        x, y, z = (grid.origin_mm[a] + spacing * np.arange(n) for a, n in zip((0, 1, 2), shape[::-1]))
        r2_xy = x[None, :] ** 2 + y[:, None] ** 2  # rows along +y, columns along +x
        dose = np.empty(shape)
        for k, z_mm in enumerate(z):  # frame by frame: no whole-grid coordinate arrays
            np.multiply(peak, np.exp(-(r2_xy + z_mm**2) / (2 * 60.0**2)), out=dose[k])
        write_dose(folder / name / "rd.dcm", grid, dose, plan_uid=f"1.2.3.{len(name)}")
    (folder / "case.toml").write_text(
        'id = "bench"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 35\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 30\nstart_date = 2025-01-14\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=float, default=math.prod(SHAPE) / 1e6, help="M voxels per grid")
    parser.add_argument("--no-dicompyler", action="store_true", help="time reirrad sum alone")
    args = parser.parse_args()
    shape, spacing = scaled(args.voxels)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, __file__, "--make-case", str(folder), str(args.voxels)], check=True)
        case = folder / "case.toml"
        tools = {
            "reirrad sum": lambda: run_one(
                [*reirrad_command(), "sum", str(case), "--alpha-beta", "3", "--output", str(folder / "sum.dcm")]
            ),
        }
        if not args.no_dicompyler:
            tools["dicompyler-core DoseGrid sum (+import)"] = lambda: run_one(
                [sys.executable, "-c", DICOMPYLER, str(folder / "new" / "rd.dcm"), str(folder / "prior" / "rd.dcm")]
            )
        results = medians(tools)
    voxels = math.prod(shape)
    print(
        f"reirrad sum, 2 courses x {voxels / 1e6:.2f} M voxels ({spacing:.2f} mm, prior resampled), EQD2 a/b 3, "
        "32-bit RTDOSE out"
    )
    print_load()
    print_table(results, "reirrad sum")
    peak = results["reirrad sum"].peak_rss_mb
    print(f"reirrad sum peak RSS {peak:.0f} MB = {peak * 2**20 / voxels:.0f} bytes per voxel of the reference grid")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-case"]:
        make_case(Path(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
