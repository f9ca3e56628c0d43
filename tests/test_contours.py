"""Contours of one plane: nested, duplicate, overlapping, self-intersecting, non-planar, many."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from reirrad.dicom.dose import read_dose
from reirrad.dicom.structures import Contour, Roi, read_structures
from reirrad.dvh import evaluate, sample_dose
from reirrad.errors import InputError
from reirrad.grid import Grid
from reirrad.masks import sample_roi
from reirrad.metrics import parse_metric

SBRT = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "course1"
METRICS = ("Dmin", "Dmax", "Dmean", "D0.03cc", "D95%", "D5%", "Volume")


def make_grid(shape=(20, 60, 60), spacing=(2.0, 1.0, 1.0), origin=(-30.0, -30.0, -20.0)) -> Grid:
    return Grid(origin, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), spacing, shape)


def disc(cx: float, cy: float, r: float, z: float, n: int = 720) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t), np.full(n, z)])


def square(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def roi_of(*polygons: np.ndarray) -> Roi:
    return Roi(1, "R", "ORGAN", tuple(Contour(p) for p in polygons))


def dose_field(grid: Grid) -> np.ndarray:
    """A dose (Gy) rising along x and y, so every metric depends on where the samples are."""
    index = np.indices(grid.shape).reshape(3, -1).T
    xyz = grid.to_patient(index)
    return (30.0 + 0.8 * xyz[:, 0] + 0.3 * xyz[:, 1]).reshape(grid.shape)


def metrics(roi: Roi, grid: Grid) -> dict[str, float]:
    dvh = sample_dose(sample_roi(roi, grid), dose_field(grid))
    return {m: evaluate(dvh, parse_metric(m)).value for m in METRICS}


PLANES = (0.0, 2.0, 4.0, 6.0)


def test_a_duplicated_disc_gives_the_volume_and_metrics_of_one_disc():
    single = roi_of(*(disc(0, 0, 8, z) for z in PLANES))
    reversed_copy = np.roll(disc(0, 0, 8, 4.0), 100, axis=0)[::-1]  # other start and direction
    doubled = roi_of(*(disc(0, 0, 8, z) for z in PLANES), disc(0, 0, 8, 2.0), reversed_copy)
    grid = make_grid()
    one, two = sample_roi(single, grid), sample_roi(doubled, grid)
    assert two.volume_cc == pytest.approx(one.volume_cc, rel=1e-12)
    assert two.volume_cc == pytest.approx(np.pi * 64 * 8 / 1000, rel=1e-4)  # 4 slabs of 2 mm
    assert metrics(doubled, grid) == pytest.approx(metrics(single, grid), rel=1e-9)
    assert two.notes == ("duplicate contours on 2 planes (z = 2, 4 mm): each counted once",)


def lens_area(r: float, d: float) -> float:
    """Area shared by two discs of radius r whose centres are d apart."""
    return 2 * r * r * np.arccos(d / (2 * r)) - d / 2 * np.sqrt(4 * r * r - d * d)


def test_two_overlapping_discs_give_the_area_of_their_union():
    roi = roi_of(*(c for z in PLANES for c in (disc(-4, 0, 8, z), disc(4, 0, 8, z))))
    grid = make_grid()
    s = sample_roi(roi, grid)
    union_mm2 = 2 * np.pi * 64 - lens_area(8, 8)
    assert s.volume_cc == pytest.approx(union_mm2 * 8 / 1000, rel=1e-4)
    assert s.weights_cc.sum() == pytest.approx(s.volume_cc, rel=1e-9)
    # the shared lens is sampled, not cancelled: the box |x| < 2, |y| < 4 mm (inside both discs)
    # holds its 4 x 8 mm2 x 8 mm of volume
    xyz = grid.to_patient(s.positions.astype(float))
    box = (np.abs(xyz[:, 0]) < 2) & (np.abs(xyz[:, 1]) < 4)
    assert s.weights_cc[box].sum() == pytest.approx(4 * 8 * 8 / 1000, rel=0.05)
    assert s.notes == (
        "overlapping contours that are not holes on 4 planes (z = 0, 2, 4, 6 mm): the area of their union is used",
    )


def test_overlapping_squares_sharing_edges_merge_and_holes_inside_the_union_stay_holes():
    # [0, 10] x [0, 10] and [5, 15] x [0, 10] meet along collinear edges (no proper crossing);
    # [6, 9] x [2, 8] is a hole in their union
    roi = roi_of(
        *(c for z in PLANES for c in (square(0, 10, 0, 10, z), square(5, 15, 0, 10, z), square(6, 9, 2, 8, z)))
    )
    s = sample_roi(roi, make_grid())
    assert s.volume_cc == pytest.approx((150 - 18) * 8 / 1000, rel=1e-12)
    assert s.weights_cc.sum() == pytest.approx(s.volume_cc, rel=1e-9)
    from reirrad.contours import Kind, resolve_plane

    shape = resolve_plane(
        [square(0, 10, 0, 10, 0)[:, :2], square(5, 15, 0, 10, 0)[:, :2], square(6, 9, 2, 8, 0)[:, :2]]
    )
    assert shape.found == {Kind.OVERLAP}
    assert sorted((r.depth, r.is_union, r.area) for r in shape.regions) == [(0, True, 150.0), (1, False, 18.0)]


def test_a_figure_eight_counts_both_lobes():
    eight = [np.array([[0, 0, z], [10, 10, z], [10, 0, z], [0, 10, z]], float) for z in PLANES]
    s = sample_roi(roi_of(*eight), make_grid())
    assert s.volume_cc == pytest.approx(2 * 25 * 8 / 1000, rel=1e-12)  # two triangles of 25 mm2
    assert s.weights_cc.sum() == pytest.approx(s.volume_cc, rel=1e-9)
    assert any(n.startswith("self-intersecting contours on 4 planes") for n in s.notes)


def test_a_loop_drawn_twice_around_counts_once():
    # one contour going around a disc twice, the second time shifted by 0.3 mm: most of the disc
    # has winding number 2 (a hole by the even-odd rule); the union of both loops counts
    twice = [np.concatenate([disc(0, 0, 8, z, 360), disc(0.3, 0, 8, z, 360)]) for z in PLANES]
    s = sample_roi(roi_of(*twice), make_grid())
    union_mm2 = 2 * np.pi * 64 - lens_area(8, 0.3)
    assert s.volume_cc == pytest.approx(union_mm2 * 8 / 1000, rel=1e-3)
    assert any("self-intersecting" in n for n in s.notes)


def test_nested_contours_still_alternate_and_a_touching_hole_is_a_hole():
    # the hole touches the outer contour along x = -20; the island sits inside the hole
    planes = [(square(-20, 20, -20, 20, z), square(-20, 5, -5, 5, z), square(-2, 2, -2, 2, z)) for z in PLANES]
    s = sample_roi(roi_of(*(c for plane in planes for c in plane)), make_grid())
    assert s.volume_cc == pytest.approx((1600 - 250 + 16) * 8 / 1000, rel=1e-12)
    assert s.notes == ()


def test_a_thousand_small_contours_on_one_plane():
    rng = np.random.default_rng(7)
    centres = np.stack(np.meshgrid(np.arange(40) * 1.2 - 24, np.arange(25) * 1.2 - 15), -1).reshape(-1, 2)
    halves = rng.uniform(0.1, 0.5, len(centres))
    squares = [square(x - h, x + h, y - h, y + h, 0.0) for (x, y), h in zip(centres, halves)]
    holes = [square(x - h / 2, x + h / 2, y - h / 2, y + h / 2, 0.0) for (x, y), h in zip(centres[::10], halves[::10])]
    copies = [s[::-1].copy() for s in squares[5::50]]
    expected = np.sum((2 * halves) ** 2) - np.sum(halves[::10] ** 2)  # mm2
    grid = make_grid(shape=(5, 80, 80), spacing=(2.0, 1.0, 1.0), origin=(-40.0, -40.0, -4.0))
    s = sample_roi(roi_of(*squares, *holes, *copies), grid)
    assert s.volume_cc == pytest.approx(expected * 2.0 / 1000, rel=1e-12)  # one 2 mm frame
    assert s.weights_cc.sum() == pytest.approx(s.volume_cc, rel=1e-9)
    assert s.notes[-1] == "duplicate contours on 1 plane (z = 0 mm): each counted once"
    from reirrad.contours import resolve_plane

    shape = resolve_plane([p[:, :2] for p in squares + holes + copies])
    assert sorted(r.depth for r in shape.regions) == [0] * len(squares) + [1] * len(holes)


def test_non_planar_contours_get_a_note_and_beyond_their_slab_are_not_evaluated():
    tilted = square(-5, 5, -5, 5, 2.0)
    tilted[:, 2] += [-0.2, -0.2, 0.2, 0.2]  # z varies by 0.4 mm inside its 2 mm slab
    s = sample_roi(roi_of(square(-5, 5, -5, 5, 0.0), tilted, square(-5, 5, -5, 5, 4.0)), make_grid())
    assert s.volume_cc == pytest.approx(100 * 6 / 1000, rel=1e-9)
    assert (
        "non-planar contours on 1 plane (z = 2 mm): z varies by up to 0.4 mm; each is placed on its mean plane"
        in s.notes
    )
    steep = square(-5, 5, -5, 5, 2.0)
    steep[:, 2] += [-3.0, -3.0, 3.0, 3.0]  # reaches into the neighbouring slabs
    s = sample_roi(roi_of(square(-5, 5, -5, 5, 0.0), steep, square(-5, 5, -5, 5, 4.0)), make_grid())
    assert s.is_empty
    assert s.notes[-1] == "a contour is not planar: its z varies by 6 mm, beyond its slab; not evaluated"


def test_a_structure_too_large_for_a_tiny_voxel_lattice_is_refused_before_allocating():
    # 0.0001 mm voxels: a 100 mm square would need 1e12 lattice cells per plane
    grid = make_grid(shape=(3, 10, 10), spacing=(2.0, 1e-4, 1e-4), origin=(0.0, 0.0, 0.0))
    roi = roi_of(*(square(-50, 50, -50, 50, z) for z in (0.0, 2.0)))
    with pytest.raises(
        InputError,
        match=r"structure 'R': 4e\+16 samples at one per dose voxel \(2 x 0.0001 x 0.0001 mm\) "
        r"would need 1.67 EiB, more than the 2 GiB bound",
    ):
        sample_roi(roi, grid)


def test_sample_cord_with_a_duplicated_contour_item_keeps_its_d003cc(tmp_path):
    for name in ("structures.dcm", "dose.dcm"):
        shutil.copy(SBRT / name, tmp_path / name)
    ds = pydicom.dcmread(tmp_path / "structures.dcm")
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "SpinalCord")
    item = next(i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) == number)
    ds.ROIContourSequence.append(copy.deepcopy(item))  # the cord's whole contour item, twice
    ds.save_as(tmp_path / "doubled.dcm")
    dose = read_dose(tmp_path / "dose.dcm")

    def cord(path: Path) -> tuple[float, float, tuple[str, ...]]:
        sampling = sample_roi(read_structures(path).by_name("SpinalCord"), dose.grid)
        dvh = sample_dose(sampling, dose.dose_gy)
        return evaluate(dvh, parse_metric("D0.03cc")).value, sampling.volume_cc, sampling.notes

    d003, volume, notes = cord(tmp_path / "structures.dcm")
    d003_doubled, volume_doubled, notes_doubled = cord(tmp_path / "doubled.dcm")
    assert len(read_structures(tmp_path / "doubled.dcm").by_name("SpinalCord").contours) == 2 * len(
        item.ContourSequence
    )
    assert d003_doubled == pytest.approx(d003, rel=1e-12)
    assert volume_doubled == pytest.approx(volume, rel=1e-12)
    assert notes == ()
    assert len(notes_doubled) == 1 and notes_doubled[0].startswith(
        f"duplicate contours on {len(item.ContourSequence)} planes"
    )


@pytest.mark.parametrize("seed", range(6))
def test_edge_pair_search_by_monotone_pieces_finds_what_the_full_search_finds(seed, monkeypatch):
    from reirrad import contours

    rng = np.random.default_rng(seed)
    polygons, plane = [], []
    for p in range(15):
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(4, 60))
            angle = rng.uniform(0, 2 * np.pi, n)
            angle = np.sort(angle) if rng.random() < 0.6 else angle  # else it crosses itself
            radius = rng.uniform(3, 20, n)
            centre = rng.uniform(0, 30, 2)
            ring = np.column_stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)])
            if rng.random() < 0.3:
                ring = np.round(ring)  # edges along u = constant, shared vertices
            polygons.append(ring)
            plane.append(p)
        if p % 3 == 0:  # two squares sharing an edge touch
            polygons += [np.array([[0.0, 0], [5, 0], [5, 5], [0, 5]]), np.array([[5.0, 1], [9, 1], [9, 4], [5, 4]])]
            plane += [p, p]
    edges = contours._Edges.of(polygons)
    piece, chain = contours._monotone_pieces(edges)
    assert np.all(np.bincount(piece) <= contours.PIECE_EDGES)
    du = np.sign(edges.b[:, 0] - edges.a[:, 0])
    for c in range(chain.max() + 1):  # a chain lies in one contour and never reverses in u
        members = np.flatnonzero(chain[piece] == c)
        assert len(set(edges.owner[members])) == 1 and np.all(np.diff(members) == 1)
        assert not ({1, -1} <= set(du[members]))
    found = contours._crossings(edges, np.array(plane))
    monkeypatch.setattr(
        contours, "_edge_pairs", lambda edges, plane, low, high: contours.box_pairs(low, high, plane[edges.owner])
    )
    reference = contours._crossings(edges, np.array(plane))
    assert len(reference[0]) > 0 and len(reference[3]) > 0  # crossings and touching contours occur
    for mine, theirs in zip(found, reference):  # the same pairs, in any order
        order_mine = np.lexsort((found[1], found[0])) if mine.ndim == 1 else slice(None)
        order_theirs = np.lexsort((reference[1], reference[0])) if theirs.ndim == 1 else slice(None)
        np.testing.assert_array_equal(mine[order_mine], theirs[order_theirs])
