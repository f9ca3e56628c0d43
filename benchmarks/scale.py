"""How `check`, `dvh` and `sum` grow with the dose grid, as whole commands (see commands.py).

Synthetic two-course head-and-neck-plus-thorax cases of 2.5, 10, 20 and 40 M voxels (the same
anatomy, finer grids): each course has an RTDOSE and an RTSTRUCT of 40 structures (BODY, targets,
head-and-neck and thorax organs as ellipsoids and tubes) contoured on every 2 mm plane; the prior
course is in a frame of reference of its own, related to the new one by a rigid REG (a rotation of
1.5 degrees and a shift), so that its dose is sampled through the registration. Per size and
command: median CPU s, wall s and peak RSS (MB); the floor (a process that reads both RTDOSE
files' bytes with pydicom and takes a histogram of the dose) and the command over the floor; and
the growth exponent between sizes (log CPU ratio / log voxel ratio; 1 = linear). Default sizes
take a few minutes. `--make-case FOLDER SIZE` writes one case and stops (for profiling).
Usage: .venv/bin/python benchmarks/scale.py [--sizes 2.5 10 20 40] [--rounds 1] [--commands check ...]
       [--baseline OTHER_REIRRAD]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import commands
from commands import Usage, medians, print_load, reirrad_command, run_one

FRAME = "1.2.826.0.1.3680043.8.498.77"  # the new course's (reference) frame of reference
PRIOR_FRAME = "1.2.826.0.1.3680043.8.498.78"
PRIOR_ROTATION_DEG, PRIOR_SHIFT_MM = 1.5, (2.0, -1.5, 1.0)  # REG: prior frame -> new frame, about z
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
    ("Lobe_Temporal_L", (50, 0, 215), (20, 35, 22)),
    ("Skin", (0, 0, 0), (215, 130, 245)),
    ("Lobe_Temporal_R", (-50, 0, 215), (20, 35, 22)),
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
    """Both courses (RTDOSE + RTSTRUCT; the REG relating the prior frame to the new one in the new
    course's folder) and case.toml (fractions and dates, default constraints).

    Run in a process of its own, so that the measuring process stays small (a child's peak RSS
    counts its parent's at fork)."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from dicom_synthetic import rtstruct, write
    from sum_helpers import axial_grid, rigid, write_dose, write_reg

    shape, spacing = grid_shape(voxels_m)
    origin = np.array([-EXTENT_MM[0] / 2, -EXTENT_MM[1] / 2, -EXTENT_MM[2] / 2 + 1.0])
    prior_to_new = rigid(PRIOR_ROTATION_DEG, 2, PRIOR_SHIFT_MM)  # maps prior-frame points into the new frame
    anatomy = {name: contours(c, a) for name, c, a in ORGANS}  # new frame
    courses = (
        ("prior", PRIOR_FRAME, np.linalg.inv(prior_to_new), 70.0, (0, 10, 60)),
        ("new", FRAME, None, 60.0, (20, 10, 80)),
    )
    for name, frame, new_to_own, peak, centre in courses:
        grid = axial_grid(origin, spacing, shape, frame)  # spacing (frame, row, column) mm
        own = (
            anatomy
            if new_to_own is None
            else {n: [_moved(new_to_own, ring) for ring in rings] for n, rings in anatomy.items()}
        )
        structures = rtstruct(own, frame_of_reference=frame)
        structures.PatientID = "SUM-001"
        dose = np.empty(shape)
        y, x = np.meshgrid(
            grid.origin_mm[1] + np.arange(shape[1]) * spacing[1],
            grid.origin_mm[0] + np.arange(shape[2]) * spacing[2],
            indexing="ij",
        )
        for k in range(shape[0]):  # a frame at a time keeps this process small
            points = np.stack([x, y, np.full_like(x, grid.origin_mm[2] + k * spacing[0])], axis=-1)
            if new_to_own is not None:  # the same dose distribution in the new frame
                points = points @ prior_to_new[:3, :3].T + prior_to_new[:3, 3]
            r2 = np.sum((points - np.array(centre)) ** 2, axis=-1)
            dose[k] = peak * np.exp(-r2 / (2 * 70.0**2))
        (folder / name).mkdir()
        write_dose(folder / name / "rd.dcm", grid, dose, plan_uid=f"1.2.3.{len(name)}")
        write(structures, folder / name / "rs.dcm")
    write_reg(folder / "new" / "reg.dcm", FRAME, {PRIOR_FRAME: prior_to_new})
    (folder / "case.toml").write_text(
        'id = "scale"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 35\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 30\nstart_date = 2025-01-14\n'
        'registration = "new/reg.dcm"\n'
    )


def _moved(matrix, ring: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """A contour's points through a 4x4 rigid transform (mm)."""
    return [tuple(float(v) for v in matrix[:3, :3] @ point + matrix[:3, 3]) for point in ring]


FLOOR_NAME = "floor (read 2 RTDOSE + histogram)"
COMMANDS = ("check", "dvh", "sum")


def measure(
    folder: Path, rounds: int, commands: Sequence[str] = COMMANDS, baseline: str | None = None
) -> dict[str, Usage]:
    """Median usage of the floor and each of ``commands`` on the case in ``folder``; with
    ``baseline`` (another reirrad executable, e.g. an older version) its runs of the same commands
    too, interleaved with the others."""
    case, new = folder / "case.toml", folder / "new"

    def runs(reirrad: list[str], label: str) -> dict[str, Callable[[], Usage]]:
        return {
            f"check{label}": lambda: run_one(
                [*reirrad, "check", str(case), "-f", "json", "-o", str(folder / "report.json")]
            ),
            f"dvh (new course){label}": lambda: run_one(
                [*reirrad, "dvh", str(new / "rd.dcm"), str(new / "rs.dcm"), "-f", "csv", "-o", str(folder / "dvh.csv")]
            ),
            f"sum{label}": lambda: run_one(
                [*reirrad, "sum", str(case), "--alpha-beta", "3", "--output", str(folder / "sum.dcm")]
            ),
        }

    floor = [sys.executable, "-c", FLOOR, str(folder / "prior" / "rd.dcm"), str(new / "rd.dcm")]
    tools = {FLOOR_NAME: lambda: run_one(floor), **runs(reirrad_command(), "")}
    if baseline is not None:
        tools.update(runs([baseline], " (baseline)"))
    chosen = {name: tool for name, tool in tools.items() if name == FLOOR_NAME or name.split()[0] in commands}
    return medians(chosen, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2.5, 10, 20, 40], help="M voxels per grid")
    parser.add_argument("--rounds", type=int, default=1, help="runs per command and size (medians)")
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS), help="commands to time")
    parser.add_argument("--baseline", help="another reirrad executable to time beside this one (rows '(baseline)')")
    args = parser.parse_args()
    commands.ROUNDS = args.rounds
    table: dict[float, dict[str, Usage]] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            subprocess.run([sys.executable, __file__, "--make-case", str(folder), str(size)], check=True)
            table[size] = measure(folder, args.rounds, args.commands, args.baseline)
    print(
        f"two courses (the prior through a rigid REG), {len(ORGANS)} structures contoured every "
        f"{CONTOUR_STEP_MM:g} mm; whole commands"
    )
    print_load()
    print(f"{'M voxels':>9} {'command':<36}{'CPU s':>8}{'wall s':>8}{'peak MB':>9}{'x floor':>9}{'exponent':>10}")
    for n, size in enumerate(args.sizes):
        floor = table[size][FLOOR_NAME]
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
