"""How `check`, `dvh` and `sum` grow with the dose grid, as whole commands (see commands.py).

Synthetic two-course head-and-neck-plus-thorax cases of 2.5, 10, 20 and 40 M voxels (the same
anatomy, finer grids): each course has an RTDOSE (the prior one shifted by a fraction of a voxel,
so that it is resampled) and an RTSTRUCT of 40 structures (BODY, targets, head-and-neck and thorax
organs as ellipsoids and tubes) contoured on every 2 mm plane. Per size and command: median CPU s,
wall s and peak RSS (MB); the floor (a process that reads both RTDOSE files' bytes with pydicom and
takes a histogram of the dose) and the command over the floor; and the growth exponent between
sizes (log CPU ratio / log voxel ratio; 1 = linear). Default sizes take a few minutes.
Usage: .venv/bin/python benchmarks/scale.py [--sizes 2.5 10 20 40] [--rounds 1]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import commands
from commands import Usage, medians, print_load, reirrad_command, run_one

FRAME = "1.2.826.0.1.3680043.8.498.77"
EXTENT_MM = (480.0, 300.0, 500.0)  # x (columns), y (rows), z (frames): head, neck and thorax
CONTOUR_STEP_MM = 2.0
FLOOR = """
import sys
import numpy as np
import pydicom
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    dose = ds.pixel_array * float(ds.DoseGridScaling)
    np.histogram(dose, bins=1000)
"""
# (name, centre mm, semi-axes mm) ellipsoids; 40 structures with BODY and the targets
ORGANS = [
    ("BODY", (0, 0, 0), (220, 135, 249)),
    ("PTV_High", (20, 10, 80), (30, 30, 40)),
    ("PTV_Low", (0, 10, 60), (60, 50, 90)),
    ("GTV", (20, 10, 80), (15, 15, 20)),
    ("SpinalCord", (0, 40, 0), (6, 6, 240)),
    ("SpinalCord_PRV", (0, 40, 0), (11, 11, 240)),
    ("BrainStem", (0, 30, 200), (12, 12, 25)),
    ("BrainStem_PRV", (0, 30, 200), (16, 16, 29)),
    ("Brain", (0, 0, 230), (70, 80, 18)),
    ("Chiasm", (0, -10, 215), (8, 5, 3)),
    ("OpticNrv_L", (15, -40, 218), (4, 20, 3)),
    ("OpticNrv_R", (-15, -40, 218), (4, 20, 3)),
    ("Eye_L", (30, -60, 220), (12, 12, 12)),
    ("Eye_R", (-30, -60, 220), (12, 12, 12)),
    ("Lens_L", (30, -70, 220), (4, 2, 4)),
    ("Lens_R", (-30, -70, 220), (4, 2, 4)),
    ("Cochlea_L", (45, 10, 200), (4, 4, 4)),
    ("Cochlea_R", (-45, 10, 200), (4, 4, 4)),
    ("Parotid_L", (45, 5, 150), (18, 20, 25)),
    ("Parotid_R", (-45, 5, 150), (18, 20, 25)),
    ("Glnd_Submand_L", (35, -25, 115), (12, 12, 12)),
    ("Glnd_Submand_R", (-35, -25, 115), (12, 12, 12)),
    ("Mandible", (0, -30, 130), (50, 30, 15)),
    ("OralCavity", (0, -35, 145), (30, 25, 15)),
    ("Larynx", (0, -20, 90), (18, 18, 25)),
    ("Pharynx", (0, 0, 110), (15, 12, 45)),
    ("Esophagus", (0, 25, -20), (10, 10, 120)),
    ("Trachea", (0, 0, 0), (10, 10, 90)),
    ("A_Carotid_L", (25, 0, 100), (4, 4, 50)),
    ("A_Carotid_R", (-25, 0, 100), (4, 4, 50)),
    ("BrachialPlex_L", (50, 20, 60), (20, 6, 10)),
    ("BrachialPlex_R", (-50, 20, 60), (20, 6, 10)),
    ("Thyroid", (0, -20, 65), (25, 10, 15)),
    ("Lung_L", (80, 10, -110), (65, 80, 120)),
    ("Lung_R", (-80, 10, -110), (65, 80, 120)),
    ("Heart", (20, -10, -180), (55, 50, 55)),
    ("Bone_Mandible", (0, -30, 130), (45, 27, 12)),
    ("Skin", (0, 0, 0), (215, 130, 245)),
    ("Lips", (0, -60, 145), (15, 6, 6)),
    ("Constrictor", (0, 10, 110), (12, 8, 35)),
]


def grid_shape(voxels_m: float) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """(frames, rows, columns) and spacing (frame, row, column mm) of about ``voxels_m`` M voxels
    over EXTENT_MM: 2 mm frames (the contour planes) and square pixels."""
    frames = int(EXTENT_MM[2] / CONTOUR_STEP_MM)
    pixel = math.sqrt(EXTENT_MM[0] * EXTENT_MM[1] * frames / (voxels_m * 1e6))
    return (frames, int(EXTENT_MM[1] / pixel), int(EXTENT_MM[0] / pixel)), (CONTOUR_STEP_MM, pixel, pixel)


def contours(centre: tuple, axes: tuple) -> list[list[tuple[float, float, float]]]:
    """An ellipsoid contoured on every 2 mm plane (odd planes: z = 1, 3, ... mm), 48 points each."""
    angle = [2 * math.pi * n / 48 for n in range(48)]
    planes = []
    z = math.floor((centre[2] - axes[2]) / CONTOUR_STEP_MM) * CONTOUR_STEP_MM + 1.0
    while z < centre[2] + axes[2]:
        scale = 1.0 - ((z - centre[2]) / axes[2]) ** 2
        if scale > 0.01:
            s = math.sqrt(scale)
            ring = [(centre[0] + s * axes[0] * math.cos(a), centre[1] + s * axes[1] * math.sin(a), z) for a in angle]
            planes.append(ring)
        z += CONTOUR_STEP_MM
    return planes


def make_case(folder: Path, voxels_m: float) -> None:
    """Both courses (RTDOSE + RTSTRUCT) and case.toml (fractions and dates, default constraints).

    Run in a process of its own, so that the measuring process stays small (a child's peak RSS
    counts its parent's at fork)."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from dicom_synthetic import rtstruct, write
    from sum_helpers import axial_grid, write_dose

    shape, spacing = grid_shape(voxels_m)
    origin = np.array([-EXTENT_MM[0] / 2, -EXTENT_MM[1] / 2, -EXTENT_MM[2] / 2 + 1.0])
    structures = rtstruct({name: contours(c, a) for name, c, a in ORGANS}, frame_of_reference=FRAME)
    structures.PatientID = "SUM-001"
    courses = (("prior", (0.4, -0.3, 0.7), 70.0, (0, 10, 60)), ("new", (0, 0, 0), 60.0, (20, 10, 80)))
    for name, shift, peak, centre in courses:
        grid = axial_grid(origin + np.array(shift) * spacing[::-1], spacing[::-1], shape, FRAME)
        dose = np.empty(shape)
        for k in range(shape[0]):  # a frame at a time keeps this process small
            z = grid.origin_mm[2] + k * spacing[0]
            y = grid.origin_mm[1] + np.arange(shape[1])[:, None] * spacing[1]
            x = grid.origin_mm[0] + np.arange(shape[2])[None, :] * spacing[2]
            r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
            dose[k] = peak * np.exp(-r2 / (2 * 70.0**2))
        (folder / name).mkdir()
        write_dose(folder / name / "rd.dcm", grid, dose, plan_uid=f"1.2.3.{len(name)}")
        write(structures, folder / name / "rs.dcm")
    (folder / "case.toml").write_text(
        'id = "scale"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 35\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 30\nstart_date = 2025-01-14\n'
    )


def measure(folder: Path, rounds: int) -> dict[str, Usage]:
    case, new = folder / "case.toml", folder / "new"
    reirrad = reirrad_command()
    tools = {
        "floor (read 2 RTDOSE + histogram)": lambda: run_one(
            [sys.executable, "-c", FLOOR, str(folder / "prior" / "rd.dcm"), str(new / "rd.dcm")]
        ),
        "check": lambda: run_one([*reirrad, "check", str(case), "-o", str(folder / "report.json")]),
        "dvh (new course)": lambda: run_one(
            [*reirrad, "dvh", str(new / "rd.dcm"), str(new / "rs.dcm"), "-f", "csv", "-o", str(folder / "dvh.csv")]
        ),
        "sum": lambda: run_one([*reirrad, "sum", str(case), "--alpha-beta", "3", "--output", str(folder / "sum.dcm")]),
    }
    return medians(tools, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2.5, 10, 20, 40], help="M voxels per grid")
    parser.add_argument("--rounds", type=int, default=1, help="runs per command and size (medians)")
    args = parser.parse_args()
    commands.ROUNDS = args.rounds
    table: dict[float, dict[str, Usage]] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            subprocess.run([sys.executable, __file__, "--make-case", str(folder), str(size)], check=True)
            table[size] = measure(folder, args.rounds)
    print(f"two courses, {len(ORGANS)} structures contoured every {CONTOUR_STEP_MM:g} mm; whole commands")
    print_load()
    print(f"{'M voxels':>9} {'command':<36}{'CPU s':>8}{'wall s':>8}{'peak MB':>9}{'x floor':>9}{'exponent':>10}")
    for n, size in enumerate(args.sizes):
        floor = table[size]["floor (read 2 RTDOSE + histogram)"]
        for name, usage in table[size].items():
            exponent = ""
            if n:
                before = table[args.sizes[n - 1]][name]
                exponent = f"{math.log(usage.cpu_s / before.cpu_s) / math.log(size / args.sizes[n - 1]):.2f}"
            print(
                f"{size:>9g} {name:<36}{usage.cpu_s:>8.2f}{usage.wall_s:>8.2f}{usage.peak_rss_mb:>9.0f}"
                f"{usage.cpu_s / floor.cpu_s:>8.1f}x{exponent:>10}"
            )
    print("exponent: log(CPU ratio) / log(voxel ratio) against the previous size (1 = linear growth)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-case"]:
        make_case(Path(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
