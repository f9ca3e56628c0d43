"""Resampling between grids: linear fields are reproduced exactly by trilinear interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.accumulate import _covering_grid
from reirrad.dicom.structures import Contour, Roi
from reirrad.errors import InputError
from reirrad.grid import Grid, corner_centres_mm, grown_to_cover, index_map, resample

HFS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
FFS = ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
HFP = ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))
FFP = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0))


def make_grid(orientation, origin, spacing, shape, frames_decreasing=False) -> Grid:
    row, col = (np.asarray(v) for v in orientation)
    normal = np.cross(row, col)
    frame = -normal if frames_decreasing else normal
    return Grid(
        origin_mm=tuple(origin),
        row_direction=tuple(row),
        column_direction=tuple(col),
        frame_direction=tuple(float(v) for v in frame),
        spacing_mm=tuple(spacing),
        shape=tuple(shape),
    )


def field(points: np.ndarray) -> np.ndarray:
    """A linear dose field (Gy) of patient position (mm), different along every axis."""
    return 20.0 + 0.3 * points[..., 0] - 0.2 * points[..., 1] + 0.1 * points[..., 2]


def centres(grid: Grid) -> np.ndarray:
    index = np.indices(grid.shape).reshape(3, -1).T
    return grid.to_patient(index).reshape(*grid.shape, 3)


def sample(grid: Grid) -> np.ndarray:
    return field(centres(grid))


TARGET = make_grid(HFS, (-20.0, -15.0, -10.0), (2.5, 2.0, 1.5), (9, 14, 20))


@pytest.mark.parametrize("orientation", [HFS, FFS, HFP, FFP])
@pytest.mark.parametrize("frames_decreasing", [False, True])
def test_orientations_reproduce_linear_field(orientation, frames_decreasing):
    # a source grid that contains the target's points whatever its orientation
    row, col = (np.asarray(v) for v in orientation)
    frame = np.cross(row, col) * (-1 if frames_decreasing else 1)
    shape, spacing = (16, 24, 30), (3.0, 2.0, 2.0)
    extent = np.array([(n - 1) * s for n, s in zip(shape, spacing)])
    centre = np.array([-6.0, -2.0, 0.0])
    origin = centre - 0.5 * (extent[2] * row + extent[1] * col + extent[0] * frame)
    source = make_grid(orientation, origin, spacing, shape, frames_decreasing)
    values, covered = resample(sample(source), source, TARGET)
    assert covered.all()
    np.testing.assert_allclose(values, sample(TARGET), atol=1e-9)


def test_same_geometry_returns_input_without_copy():
    values = sample(TARGET)
    out, covered = resample(values, TARGET, TARGET)
    assert out is values and covered.all()


def test_outside_points_are_zero_and_uncovered():
    # source covers only x <= 0 (target x runs -20 .. 8.5 mm)
    source = make_grid(HFS, (-40.0, -30.0, -30.0), (2.0, 2.0, 2.0), (30, 30, 21))
    values, covered = resample(sample(source), source, TARGET)
    x = centres(TARGET)[..., 0]
    np.testing.assert_array_equal(covered, x <= 0.0 + 1e-9)
    np.testing.assert_allclose(values[covered], sample(TARGET)[covered], atol=1e-9)
    assert np.all(values[~covered] == 0.0)


@pytest.mark.parametrize("angle_deg", [90.0, 27.0])
def test_rotation_uses_transform_direction(angle_deg):
    # target point p corresponds to source point R p + t: sample the field there
    a = np.radians(angle_deg)
    transform = np.eye(4)
    transform[:3, :3] = [[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]]
    transform[:3, 3] = [3.0, -4.0, 5.0]
    source = make_grid(HFS, (-60.0, -60.0, -40.0), (2.0, 2.0, 2.0), (50, 60, 60))
    values, covered = resample(sample(source), source, TARGET, transform)
    moved = centres(TARGET) @ transform[:3, :3].T + transform[:3, 3]
    assert covered.all()
    np.testing.assert_allclose(values, field(moved), atol=1e-9)


def test_separable_and_general_paths_agree_on_nonlinear_field():
    rng = np.random.default_rng(1)
    source = make_grid(HFS, (-30.0, -30.0, -20.0), (2.0, 3.0, 2.5), (20, 22, 26))
    values = rng.random(source.shape)
    shift = np.eye(4)
    shift[:3, 3] = [0.7, -1.3, 2.1]
    fast, fast_cover = resample(values, source, TARGET, shift)
    # a rotation by a negligible angle sends the same points down the general path
    tiny = shift.copy()
    tiny[0, 1], tiny[1, 0] = -1e-7, 1e-7
    linear = index_map(source, TARGET, tiny)[:3, :3]
    assert not np.allclose(linear, np.diag(np.diag(linear)), atol=1e-9)
    slow, slow_cover = resample(values, source, TARGET, tiny)
    np.testing.assert_array_equal(fast_cover, slow_cover)
    np.testing.assert_allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("orientation", [HFS, FFS, HFP, FFP])
def test_grown_grid_keeps_the_lattice_and_covers_the_box(orientation):
    grid = make_grid(orientation, (5.0, -3.0, 12.0), (3.0, 2.0, 2.5), (4, 5, 6), frames_decreasing=True)
    grown = grown_to_cover(grid, np.array([-2.3, 1.0, 2.0]), np.array([2.0, 7.2, 5.0]))
    # frames -3..3 (floor -2.3 and the grid's own top 3), rows 0..8, columns 0..5
    assert grown.shape == (7, 9, 6)
    np.testing.assert_allclose(centres(grown)[3:, :5, :], centres(grid), atol=1e-9)
    assert grown.spacing_mm == grid.spacing_mm and grown.direction.tolist() == grid.direction.tolist()
    assert grown_to_cover(grid, np.array([0.5, 0.0, 1.0]), np.array([3.0, 4.0, 5.0])) == grid


def test_corner_centres_are_the_outer_voxel_centres():
    grid = make_grid(HFP, (5.0, -3.0, 12.0), (3.0, 2.0, 2.5), (4, 5, 6))
    corners = corner_centres_mm(grid)
    expected = centres(grid)[[0, 0, 0, 0, -1, -1, -1, -1], [0, 0, -1, -1, 0, 0, -1, -1], [0, -1, 0, -1, 0, -1, 0, -1]]
    np.testing.assert_allclose(corners, expected)


def test_growing_to_a_far_box_on_a_fine_grid_is_refused_before_allocating():
    fine = make_grid(HFS, (0.0, 0.0, 0.0), (0.01, 0.01, 0.01), (10, 10, 10))
    # a box 4 m away in index units: 400 000 voxels of 0.01 mm per axis, about 455 PiB as float64
    with pytest.raises(
        InputError,
        match=r"evaluation grid .*400001 x 400001 x 400001 voxels of 0.01 x 0.01 x 0.01 mm\) "
        r"would need 455 PiB, more than the 2 GiB bound",
    ):
        grown_to_cover(fine, np.zeros(3), np.full(3, 4.0e5))
    with pytest.raises(InputError, match="non-finite"):
        grown_to_cover(fine, np.zeros(3), np.array([1.0, np.nan, 1.0]))


def test_covering_grid_for_a_far_structure_in_a_huge_prior_grid_is_refused():
    # the reference dose has 0.01 mm voxels; the prior grid spans 40 cm and holds a structure 10 cm
    # away, so covering it would need 10 000 x 10 000 x 10 000+ voxels: refused, nothing allocated
    reference = make_grid(HFS, (0.0, 0.0, 0.0), (0.01, 0.01, 0.01), (50, 50, 50))
    prior = make_grid(HFS, (-200.0, -200.0, -200.0), (2.0, 2.0, 2.0), (200, 200, 200))
    square = np.array([[100.0, 100.0, 100.0], [102.0, 100.0, 100.0], [102.0, 102.0, 100.0], [100.0, 102.0, 100.0]])
    roi = Roi(1, "Far", "ORGAN", (Contour(square),))
    with pytest.raises(
        InputError,
        match=r"evaluation grid grown over the structures \(10002 x 10202 x 10202 "
        r"voxels of 0.01 x 0.01 x 0.01 mm\) would need 7.57 TiB",
    ):
        _covering_grid(reference, [roi], [(reference, None, 0.0), (prior, None, 0.0)])


def test_resampling_onto_an_oversized_grid_is_refused_before_allocating():
    source = make_grid(HFS, (0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (4, 4, 4))
    huge = make_grid(HFS, (0.0, 0.0, 0.0), (0.01, 0.01, 0.01), (2000, 2000, 2000))
    with pytest.raises(
        InputError,
        match=r"resampled dose grid \(2000 x 2000 x 2000 voxels of 0.01 x 0.01 x 0.01 mm\) "
        r"would need 59.6 GiB",
    ):
        resample(np.zeros(source.shape), source, huge)
