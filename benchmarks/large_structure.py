"""A BODY-sized ellipsoid on a 40 M-voxel dose grid: time, peak memory and accuracy of its DVH.

The ellipsoid (semi-axes 180 x 120 x 300 mm, contours every 2 mm on the 2 mm frames, 1 mm pixels)
lies in a radial dose field D = c r2 (c = 0.0002 Gy/mm2) centred in it, where Dmean and the volume
are known in closed form: Dmean = c (a2 + b2 + h2) / 5 and V = 4/3 pi a b h. Printed: CPU s and the
growth of peak RSS (MB) for rasterising, interpolating and evaluating the default metrics, the
sample count, and the deviations from the closed forms.
Usage: .venv/bin/python benchmarks/large_structure.py [--voxels 40]   (millions of voxels)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from reirrad.dicom.structures import Contour, Roi
from reirrad.dvh import DEFAULT_METRICS, evaluate, sample_dose
from reirrad.grid import Grid
from reirrad.masks import sample_roi
from reirrad.metrics import parse_metric

AXES_MM = (180.0, 120.0, 300.0)  # semi-axes x, y, z
C_GY_PER_MM2 = 0.0002


def grid_of(voxels_m: float) -> Grid:
    """A 1 x 1 x 2 mm grid of about ``voxels_m`` million voxels, centred on the ellipsoid."""
    frames = int(2 * AXES_MM[2] / 2.0) + 11
    side = int(np.sqrt(voxels_m * 1e6 / frames))
    cols, rows = int(side * 1.25), int(side / 1.25)
    origin = (-(cols - 1) / 2.0, -(rows - 1) / 2.0, -(frames - 1))
    return Grid(origin, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (2.0, 1.0, 1.0), (frames, rows, cols))


def ellipsoid() -> Roi:
    a, b, h = AXES_MM
    angle = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
    contours = []
    for z in np.arange(-h + 1.0, h, 2.0):
        scale = np.sqrt(1.0 - (z / h) ** 2)
        ring = np.column_stack([a * scale * np.cos(angle), b * scale * np.sin(angle), np.full_like(angle, z)])
        contours.append(Contour(ring))
    return Roi(1, "BODY", "EXTERNAL", tuple(contours))


def radial_dose(grid: Grid) -> np.ndarray:
    """c r2 on the grid, built one frame at a time (float64, as RTDOSE reading gives)."""
    dose = np.empty(grid.shape)
    _, rows, cols = grid.shape
    y = grid.origin_mm[1] + np.arange(rows)[:, None] * grid.spacing_mm[1]
    x = grid.origin_mm[0] + np.arange(cols)[None, :] * grid.spacing_mm[2]
    for k in range(grid.shape[0]):
        z = grid.origin_mm[2] + k * grid.spacing_mm[0]
        dose[k] = C_GY_PER_MM2 * (x**2 + y**2 + z**2)
    return dose


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=float, default=40.0, help="grid size in millions of voxels")
    args = parser.parse_args()
    grid, roi = grid_of(args.voxels), ellipsoid()
    dose = radial_dose(grid)
    metrics = tuple(parse_metric(m) for m in DEFAULT_METRICS)
    before = peak_mb()
    start = time.process_time()
    sampling = sample_roi(roi, grid)
    rasterised = time.process_time()
    dvh = sample_dose(sampling, dose)
    sampled = time.process_time()
    values = {str(m): evaluate(dvh, m).value for m in metrics}
    done = time.process_time()
    a, b, h = AXES_MM
    dmean = C_GY_PER_MM2 * (a * a + b * b + h * h) / 5.0
    volume = 4.0 / 3.0 * np.pi * a * b * h / 1000.0
    print(
        f"grid {grid.shape[::-1]} (columns, rows, frames) = {np.prod(grid.shape) / 1e6:.1f} M voxels; "
        f"BODY ellipsoid {volume:.0f} cm3, {len(sampling.weights_cc)} samples "
        f"({np.count_nonzero(sampling.weights_cc)} weighted)"
    )
    print(
        f"CPU s: rasterise {rasterised - start:.2f}, interpolate {sampled - rasterised:.2f}, "
        f"metrics {done - sampled:.2f}, total {done - start:.2f}; peak RSS growth {peak_mb() - before:.0f} MB "
        f"(dose array {dose.nbytes / 2**20:.0f} MB not counted)"
    )
    print(
        f"volume {sampling.volume_cc:.1f} cm3 ({100 * (sampling.volume_cc / volume - 1):+.3f} % vs closed form); "
        f"Dmean {values['Dmean']:.4f} Gy ({100 * (values['Dmean'] / dmean - 1):+.3f} % vs {dmean:.4f})"
    )
    print("notes:", *sampling.notes)


if __name__ == "__main__":
    main()
