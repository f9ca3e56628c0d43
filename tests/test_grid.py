"""Resampling between grids: linear fields are reproduced exactly by trilinear interpolation."""

from __future__ import annotations

import numpy as np
import pytest

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
