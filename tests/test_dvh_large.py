"""Large structures: interior sub-sampling bounds the sample count, keeps volumes exact and Dmean
within 0.5 % of the closed form (a sphere in a radial dose field), and says so in a note."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad import masks
from reirrad.dicom.structures import Contour, Roi
from reirrad.dvh import evaluate, sample_dose
from reirrad.grid import Grid
from reirrad.metrics import parse_metric

RADIUS_MM = 40.0
GRADIENT_GY_PER_MM2 = 0.01  # D = 0.01 Gy/mm2 * r2: 16 Gy at the sphere's surface


def _grid() -> Grid:
    """1 x 1 mm pixels, 2 mm frames, centred on the origin, 6 mm beyond the sphere."""
    half = RADIUS_MM + 6.0
    shape = (int(2 * half / 2.0) + 1, int(2 * half) + 1, int(2 * half) + 1)
    origin = (-half, -half, -half)
    return Grid(origin, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (2.0, 1.0, 1.0), shape)


def _sphere() -> Roi:
    """The sphere contoured every 2 mm (the contour planes lie on the dose frames), 720-gons."""
    angle = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    contours = []
    for z in np.arange(-RADIUS_MM + 1.0, RADIUS_MM, 2.0):  # plane z owns the slab z - 1 .. z + 1 mm
        r = np.sqrt(RADIUS_MM**2 - z**2)
        contours.append(Contour(np.column_stack([r * np.cos(angle), r * np.sin(angle), np.full_like(angle, z)])))
    return Roi(1, "BODY", "EXTERNAL", tuple(contours))


def _radial_dose(grid: Grid) -> np.ndarray:
    k, j, i = np.indices(grid.shape)
    points = grid.to_patient(np.column_stack([k.ravel(), j.ravel(), i.ravel()]).astype(float))
    return (GRADIENT_GY_PER_MM2 * np.sum(points**2, axis=1)).reshape(grid.shape)


@pytest.fixture(scope="module")
def samplings() -> tuple:
    grid, roi = _grid(), _sphere()
    full = masks.sample_roi(roi, grid)
    cap = masks.SAMPLE_CAP
    masks.SAMPLE_CAP = len(full.weights_cc) // 8  # as a 40 M-voxel BODY meets the real cap
    try:
        capped = masks.sample_roi(roi, grid)
    finally:
        masks.SAMPLE_CAP = cap
    return grid, full, capped


def test_interior_sub_sampling_bounds_the_sample_count(samplings):
    _, full, capped = samplings
    assert full.factor == capped.factor == 1
    weighted = (np.count_nonzero(full.weights_cc), np.count_nonzero(capped.weights_cc))
    assert weighted[1] < weighted[0] / 4  # 3 x 3 blocks inside, every sample near the surface
    assert len(full.weights_cc) - weighted[0] == len(capped.weights_cc) - weighted[1]  # surface samples all kept
    assert any("interior is sampled once per 3 x 3" in note for note in capped.notes)
    assert not any("interior" in note for note in full.notes)


def test_sub_sampled_volume_is_exact(samplings):
    _, full, capped = samplings
    assert capped.volume_cc == pytest.approx(full.volume_cc, rel=1e-12)
    assert capped.in_grid_volume_cc == pytest.approx(full.in_grid_volume_cc, rel=1e-9)
    sphere_cc = 4.0 / 3.0 * np.pi * RADIUS_MM**3 / 1000.0
    assert capped.volume_cc == pytest.approx(sphere_cc, rel=0.005)


def test_sub_sampled_dmean_matches_the_closed_form(samplings):
    grid, full, capped = samplings
    dose = _radial_dose(grid)
    mean_gy = GRADIENT_GY_PER_MM2 * 3.0 / 5.0 * RADIUS_MM**2  # mean of r2 over a ball: 3 R2 / 5
    dmean = parse_metric("Dmean")
    assert evaluate(sample_dose(capped, dose), dmean).value == pytest.approx(mean_gy, rel=0.005)
    assert evaluate(sample_dose(full, dose), dmean).value == pytest.approx(mean_gy, rel=0.005)


def test_surface_dmax_is_kept_when_sub_sampled(samplings):
    # the hottest dose of a radial field lies on the surface, whose samples are all kept
    grid, full, capped = samplings
    dose = _radial_dose(grid)
    dmax = parse_metric("Dmax")
    assert evaluate(sample_dose(capped, dose), dmax).value == evaluate(sample_dose(full, dose), dmax).value
