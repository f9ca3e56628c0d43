"""Rasterisation: volumes of simple shapes, holes, islands, end caps, grid edges, orientations."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.dicom.structures import Contour, Roi
from reirrad.grid import Grid
from reirrad.masks import sample_roi


def make_grid(
    shape=(20, 40, 40),
    spacing=(2.0, 1.0, 1.0),
    origin=(-20.0, -20.0, -20.0),
    row=(1.0, 0.0, 0.0),
    column=(0.0, 1.0, 0.0),
) -> Grid:
    frame = tuple(float(v) for v in np.cross(row, column))
    return Grid(origin, row, column, frame, spacing, shape)


def rectangle(x0, x1, y0, y1, z) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def roi_of(*polygons: np.ndarray, name="R") -> Roi:
    return Roi(1, name, "ORGAN", tuple(Contour(p) for p in polygons))


def test_box_volume_includes_half_spacing_end_caps():
    # 10 x 6 mm rectangle on planes z = 0, 2, ..., 8 (5 planes): 5 slabs of 2 mm = 10 mm tall
    roi = roi_of(*(rectangle(-5, 5, -3, 3, z) for z in range(0, 10, 2)))
    s = sample_roi(roi, make_grid())
    assert s.volume_cc == pytest.approx(10 * 6 * 10 / 1000, rel=1e-9)
    assert s.in_grid_volume_cc == pytest.approx(s.volume_cc, rel=1e-9)
    assert s.weights_cc.sum() == pytest.approx(s.volume_cc, rel=1e-9)
    assert s.notes == ()
    k = s.positions[s.weights_cc > 0, 0]
    grid = make_grid()
    z = grid.to_patient(np.column_stack([k, np.zeros_like(k), np.zeros_like(k)]))[:, 2]
    assert z.min() > -1.0 and z.max() < 9.0  # sub-planes inside the capped slab -1 .. 9 mm


def test_box_without_end_caps_ends_at_its_outer_contours():
    # the same 5 planes without caps span z = 0 .. 8 mm: 10 x 6 x 8 mm
    roi = roi_of(*(rectangle(-5, 5, -3, 3, z) for z in range(0, 10, 2)))
    s = sample_roi(roi, make_grid(), end_caps="none")
    assert s.volume_cc == pytest.approx(10 * 6 * 8 / 1000, rel=1e-9)
    k = s.positions[s.weights_cc > 0, 0]
    z = make_grid().to_patient(np.column_stack([k, np.zeros_like(k), np.zeros_like(k)]))[:, 2]
    assert z.min() > 0.0 and z.max() < 8.0
    with pytest.raises(ValueError, match="end_caps"):
        sample_roi(roi, make_grid(), end_caps="full")


def test_hole_and_islands_use_even_odd_rule():
    outer, hole = rectangle(-10, 10, -10, 10, 0), rectangle(-5, 5, -5, 5, 0)
    island = rectangle(12, 16, 0, 2, 0)
    planes = [(outer + [0, 0, z], hole + [0, 0, z], island + [0, 0, z]) for z in (0, 2, 4)]
    roi = roi_of(*(p for plane in planes for p in plane))
    s = sample_roi(roi, make_grid())
    assert s.volume_cc == pytest.approx((400 - 100 + 8) * 6 / 1000, rel=1e-9)
    # no weighted sample inside the hole
    grid = make_grid()
    xyz = grid.to_patient(s.positions[s.weights_cc > 0].astype(float))
    in_hole = (np.abs(xyz[:, 0]) < 4.9) & (np.abs(xyz[:, 1]) < 4.9)
    assert not in_hole.any()


def test_single_plane_gets_one_frame_and_a_note():
    s = sample_roi(roi_of(rectangle(-5, 5, -5, 5, 0)), make_grid())
    assert s.volume_cc == pytest.approx(100 * 2.0 / 1000)
    assert any("single contour plane" in n for n in s.notes)


def test_gap_between_planes_holds_no_volume():
    roi = roi_of(*(rectangle(-5, 5, -5, 5, z) for z in (0, 2, 4, 14, 16)))
    s = sample_roi(roi, make_grid())
    assert s.volume_cc == pytest.approx(100 * 10 / 1000)  # 5 planes x 2 mm, none in the gap
    assert any("gap" in n for n in s.notes)


def test_part_outside_the_grid_keeps_contour_volume_and_says_so():
    # grid voxels span x in [-20.5, 19.5]: the rectangle x in [10, 30] is half outside
    roi = roi_of(*(rectangle(10, 30, -5, 5, z) for z in (0, 2)))
    s = sample_roi(roi, make_grid())
    assert s.volume_cc == pytest.approx(20 * 10 * 4 / 1000)
    assert s.in_grid_volume_cc == pytest.approx(9.5 * 10 * 4 / 1000, rel=0.02)
    assert any("outside the dose grid" in n for n in s.notes)


def test_empty_and_point_rois_give_empty_samplings():
    point = Roi(2, "P", "MARKER", (Contour(np.array([[0.0, 0.0, 0.0]]), "POINT"),))
    for roi in (Roi(3, "E", "ORGAN", ()), point):
        s = sample_roi(roi, make_grid())
        assert s.is_empty and len(s.weights_cc) == 0 and s.volume_cc == 0.0
        assert s.notes and "not evaluated" in s.notes[0]


@pytest.mark.parametrize(
    "row, column",
    [((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)), ((0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)), ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))],
    ids=["HFP", "decubitus", "FFS"],
)
def test_flipped_and_permuted_axes_give_the_same_geometry(row, column):
    roi = roi_of(*(np.array([[0, -8, z], [9, 0, z], [0, 7, z], [-6, 1, z]], float) for z in (0, 2, 4)))
    reference = sample_roi(roi, make_grid())
    frame_z = float(np.cross(row, column)[2])
    origin = tuple(-20.0 * np.array(row) - 20.0 * np.array(column) + [0, 0, -20.0 * frame_z])
    grid = make_grid(row=row, column=column, origin=origin)
    flipped = sample_roi(roi, grid)
    assert flipped.volume_cc == pytest.approx(reference.volume_cc, rel=1e-9)
    weighted = flipped.weights_cc > 0
    centre = np.average(
        grid.to_patient(flipped.positions[weighted].astype(float)), axis=0, weights=flipped.weights_cc[weighted]
    )
    ref_w = reference.weights_cc > 0
    ref_centre = np.average(
        make_grid().to_patient(reference.positions[ref_w].astype(float)), axis=0, weights=reference.weights_cc[ref_w]
    )
    np.testing.assert_allclose(centre, ref_centre, atol=0.1)  # lattice-limited, mm


def test_small_structures_are_sampled_finer_than_large_ones():
    small = sample_roi(roi_of(*(rectangle(-1, 1, -1, 1, z) for z in (0, 2))), make_grid())
    large = sample_roi(roi_of(*(rectangle(-19, 19, -19, 19, z) for z in range(-16, 18, 2))), make_grid())
    assert small.factor > large.factor >= 1


def random_planes(seed: int, planes: int = 12) -> list[list[np.ndarray]]:
    """Random star polygons (some self-crossing, some with a hole) in in-plane index units."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(planes):
        contours = []
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(4, 40))
            angle = rng.uniform(0, 2 * np.pi, n)
            angle = np.sort(angle) if rng.random() < 0.7 else angle
            radius = rng.uniform(3, 25, n)
            centre = rng.uniform(-5, 45, 2)
            contours.append(np.column_stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)]))
        result.append(contours)
    return result


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("block", [3, 5])
def test_interior_blocks_of_all_planes_equal_the_per_plane_definition(seed, block):
    from reirrad.contours import resolve_planes
    from reirrad.masks import _Layout, _rasterise

    polygons = random_planes(seed)
    shapes = resolve_planes(polygons)
    points = [np.concatenate(p) for p in polygons]
    bounds = (np.array([p.min(axis=0) for p in points]), np.array([p.max(axis=0) for p in points]))
    factor, lattice_shape = 2, (70, 60)  # parts of the polygons lie outside the lattice
    layout = _Layout.of(bounds, factor)
    all_plane, all_u, all_w, none = _rasterise(shapes, layout, factor)
    assert none is None
    plane, u, w, stands = _rasterise(shapes, layout, factor, block, lattice_shape)
    expected = []  # per plane: full blocks' centres (row-major), then the other samples (row-major)
    for n in range(len(polygons)):
        dense = np.zeros((300, 300), bool)
        at = all_plane == n
        dense[all_u[at] + 100, all_w[at] + 100] = True
        usable = dense[100 : 100 + lattice_shape[0], 100 : 100 + lattice_shape[1]]
        full = [
            (bu, bw)
            for bu in range(0, lattice_shape[0] - block + 1, block)
            for bw in range(0, lattice_shape[1] - block + 1, block)
            if usable[bu : bu + block, bw : bw + block].all()
        ]
        for bu, bw in full:
            dense[100 + bu : 100 + bu + block, 100 + bw : 100 + bw + block] = False
            expected.append((n, bu + block // 2, bw + block // 2, block * block))
        expected += [(n, r - 100, c - 100, 1) for r, c in zip(*np.nonzero(dense))]
    assert any(e[3] > 1 for e in expected) and any(e[3] == 1 for e in expected)
    assert [tuple(int(v) for v in t) for t in zip(plane, u, w, stands)] == expected
    assert all(a.dtype == np.int32 for a in (plane, u, w, stands))
