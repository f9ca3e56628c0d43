"""Structure rasterisation with sub-voxel accuracy: how one ROI samples one dose grid.

A :class:`RoiSampling` is computed once per ROI and grid and reused for every dose array on that
grid (physical dose, EQD2 of each course, the cumulative sum).

Geometry rules (the planning-system convention that the Nelms 2015 analytical values also use):

* Each contour plane owns a slab reaching half way to its neighbouring planes; the first and last
  planes get end caps of half the contour spacing (``end_caps="half"``, the default) or none
  (``end_caps="none"``: the structure ends at its outer contours, as some planning systems count). A gap wider than 1.5 times the usual spacing
  separates parts: no volume is assumed inside it. A single-plane ROI is one dose-frame thick.
* Inside a plane, all contours combine by the even-odd rule (holes and islands).
* Samples sit on a lattice aligned to the dose grid: each voxel is split into ``factor x factor``
  sub-pixels in-plane, and each slab into sub-planes of about the same pitch. The factor is chosen
  from the ROI size against a sample budget, so small ROIs are sampled finely and large ones
  coarsely. Sample weights are scaled per plane so that the plane's area equals the exact polygon
  area; the volume is therefore that of the contours, not of the lattice.
* Zero-weight samples on the contour vertices (at the middle and both faces of each slab) carry
  the surface, where a structure's extreme doses lie, for Dmin and Dmax.

Everything is computed in continuous grid index space ``(k, j, i)``, so flipped or permuted
in-plane axes (HFP, FFS, decubitus) need no special case. Only axial dose grids are supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reirrad.dicom.structures import Roi
from reirrad.grid import Grid

SAMPLE_BUDGET = 250_000  # weighted samples aimed for per ROI (a speed/accuracy setting)
MAX_FACTOR = 8  # finest in-plane split of a dose voxel per axis
GAP_FACTOR = 1.5  # a plane spacing this many times the median one is a gap between parts
PLANE_TOLERANCE = 1e-3  # contours whose planes differ by less (in frame index units) share a plane
AREA_AGREEMENT = 0.25  # raster and polygon areas of a plane must agree this well to rescale
END_CAPS = ("half", "none")  # how far the first and last contour planes extend outwards


@dataclass(frozen=True, eq=False)
class RoiSampling:
    """How one ROI samples one grid.

    ``positions`` are continuous grid indices ``(k, j, i)`` (float32, shape (N, 3)) of samples
    inside the dose grid; ``weights_cc`` (N,) their volumes in cm3 (zero for surface samples used
    only for Dmin/Dmax). ``volume_cc`` is the volume of the full contours, including any part
    outside the dose grid; ``in_grid_volume_cc`` is the part the samples cover.
    An empty ROI (no closed contours) gives an empty sampling with ``is_empty`` True.
    """

    roi_name: str
    grid_shape: tuple[int, int, int]
    positions: np.ndarray
    weights_cc: np.ndarray
    volume_cc: float
    in_grid_volume_cc: float
    factor: int
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the ROI encloses no volume."""
        return self.volume_cc <= 0.0

    @property
    def in_grid_fraction(self) -> float:
        """Fraction of the contour volume inside the dose grid (0 for an empty ROI)."""
        return self.in_grid_volume_cc / self.volume_cc if self.volume_cc > 0 else 0.0


@dataclass(frozen=True)
class _Planes:
    """Contour planes of one ROI in index space, sorted by frame index k."""

    k: np.ndarray  # (P,) plane positions
    k_low: np.ndarray  # (P,) slab lower faces
    k_high: np.ndarray  # (P,) slab upper faces
    polygons: tuple[tuple[np.ndarray, ...], ...]  # per plane: (M, 2) arrays of (j, i)
    notes: tuple[str, ...]


def _planes(roi: Roi, grid: Grid, end_caps: str) -> _Planes:
    """Group the closed contours by plane and give each plane its slab (end caps included)."""
    by_plane: dict[int, list[np.ndarray]] = {}
    for contour in roi.closed_contours:
        index = grid.to_index(contour.points_mm)
        key = int(round(float(index[:, 0].mean()) / PLANE_TOLERANCE))
        by_plane.setdefault(key, []).append(index[:, 1:])
    keys = sorted(by_plane)
    k = np.array(keys, dtype=float) * PLANE_TOLERANCE
    notes: list[str] = []
    frame_mm = grid.spacing_mm[0]
    if len(k) == 1:
        below = above = np.array([0.5])
        notes.append(
            f"single contour plane: thickness set to the dose grid frame spacing ({frame_mm:g} mm)"
        )
    else:
        steps = np.diff(k)
        nominal = float(np.median(steps))
        gaps = steps > GAP_FACTOR * nominal
        half = np.where(gaps, nominal, steps) / 2.0
        cap = nominal / 2.0 if end_caps == "half" else 0.0
        below = np.concatenate([[cap], half])
        above = np.concatenate([half, [cap]])
        if gaps.any():
            notes.append(
                f"{int(gaps.sum())} gap(s) between contour planes wider than {GAP_FACTOR:g} x the "
                f"{nominal * frame_mm:g} mm spacing: no volume assumed inside"
            )
    polygons = tuple(tuple(by_plane[key]) for key in keys)
    return _Planes(k, k - below, k + above, polygons, tuple(notes))


def _polygon_area(points: np.ndarray) -> float:
    """Unsigned shoelace area of a closed polygon given as (M, 2) points."""
    a, b = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(a, np.roll(b, -1)) - np.dot(b, np.roll(a, -1))))


def _inside(point: np.ndarray, polygon: np.ndarray) -> bool:
    """Even-odd (crossing number) test of one point against one polygon."""
    a, b = polygon[:, 0], polygon[:, 1]
    a2, b2 = np.roll(a, -1), np.roll(b, -1)
    crosses = (a <= point[0]) != (a2 <= point[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        at = b + (point[0] - a) * (b2 - b) / (a2 - a)
    return bool(np.count_nonzero(crosses & (at > point[1])) % 2)


def _even_odd_area(polygons: tuple[np.ndarray, ...]) -> float:
    """Area (index units) of the even-odd union of one plane's polygons, assuming they nest."""
    area = 0.0
    for n, polygon in enumerate(polygons):
        depth = sum(_inside(polygon[0], other) for m, other in enumerate(polygons) if m != n)
        area += (-1) ** depth * _polygon_area(polygon)
    return max(area, 0.0)


def _edges(polygons_lattice: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """All polygon edges as arrays (plane, u1, w1, u2, w2) in lattice units."""
    parts = []
    for plane, polygons in enumerate(polygons_lattice):
        for poly in polygons:
            nxt = np.roll(poly, -1, axis=0)
            parts.append(np.column_stack([np.full(len(poly), plane), poly, nxt]))
    edges = np.concatenate(parts)
    return edges[:, 0].astype(np.int64), edges[:, 1], edges[:, 2], edges[:, 3], edges[:, 4]


def _rasterise(polygons_lattice: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Even-odd scan-line rasterisation of every plane at once.

    Polygons are in lattice units, where samples sit at integer ``(u, w)``. Each plane gets a
    buffer covering its bounding box plus one spare column per row; every edge crossing of a row
    toggles the first sample to its right; a running XOR then marks the inside. Every row crosses
    closed polygons an even number of times, so the parity returns to zero at each row end and one
    XOR-accumulate can run over all planes' buffers together.

    Returns ``(plane, u, w)`` of the inside samples (int32 arrays).
    """
    lows = np.array([np.min(np.concatenate(p), axis=0) for p in polygons_lattice])
    highs = np.array([np.max(np.concatenate(p), axis=0) for p in polygons_lattice])
    u0 = np.ceil(lows[:, 0]).astype(np.int64)
    w0 = np.ceil(lows[:, 1]).astype(np.int64)
    rows_of = np.maximum(np.ceil(highs[:, 0]).astype(np.int64) - u0, 0)
    stride = np.maximum(np.floor(highs[:, 1]).astype(np.int64) - w0 + 1, 0) + 1
    offsets = np.concatenate([[0], np.cumsum(rows_of * stride)])

    plane, u1, w1, u2, w2 = _edges(polygons_lattice)
    first = np.ceil(np.minimum(u1, u2)).astype(np.int64)
    count = np.maximum(np.ceil(np.maximum(u1, u2)).astype(np.int64) - first, 0)
    edge = np.repeat(np.arange(len(first)), count)
    u = first[edge] + (np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count))
    w = w1[edge] + (u - u1[edge]) * (w2[edge] - w1[edge]) / (u2[edge] - u1[edge])
    p = plane[edge]
    column = np.clip(np.ceil(w).astype(np.int64) - w0[p], 0, stride[p] - 1)

    toggles = np.zeros(int(offsets[-1]), dtype=np.uint8)
    np.bitwise_xor.at(toggles, offsets[p] + (u - u0[p]) * stride[p] + column, 1)
    inside = np.bitwise_xor.accumulate(toggles).view(bool)
    planes, rows, columns = [], [], []
    for n in range(len(polygons_lattice)):
        r, c = np.nonzero(inside[offsets[n] : offsets[n + 1]].reshape(rows_of[n], stride[n]))
        planes.append(np.full(len(r), n, dtype=np.int32))
        rows.append((r + u0[n]).astype(np.int32))
        columns.append((c + w0[n]).astype(np.int32))
    return np.concatenate(planes), np.concatenate(rows), np.concatenate(columns)


def _choose_factor(volume_mm3: float, grid: Grid) -> int:
    """In-plane split per axis (1 or even) so that about SAMPLE_BUDGET samples cover the ROI."""
    _, dj, di = grid.spacing_mm
    voxel_mm3 = dj * di * min(dj, di)
    factor = int(np.clip(np.cbrt(SAMPLE_BUDGET * voxel_mm3 / max(volume_mm3, 1e-9)), 1, MAX_FACTOR))
    # an even split keeps samples off integer and half-integer indices, where contours often lie
    return factor if factor == 1 else factor - factor % 2


def _surface(planes: _Planes) -> np.ndarray:
    """Contour vertices at the middle and both faces of every slab (N, 3) in index space."""
    vertices = [np.concatenate(polygons) for polygons in planes.polygons]
    plane = np.repeat(np.arange(len(vertices)), [len(v) for v in vertices])
    in_plane = np.concatenate(vertices)
    levels = [planes.k_low[plane], planes.k[plane], planes.k_high[plane]]
    return np.column_stack([np.concatenate(levels), np.tile(in_plane, (3, 1))])


def _within(values: np.ndarray, size: int) -> np.ndarray:
    """Mask of continuous indices inside a grid axis of ``size`` voxels (edges included)."""
    return (values >= -0.5) & (values <= size - 0.5)


def _lattice_index(lattice: np.ndarray, factor: int) -> np.ndarray:
    """Continuous grid index (float32) of integer lattice coordinates."""
    index = lattice.astype(np.float32)
    index += np.float32(0.5)
    index /= np.float32(factor)
    index -= np.float32(0.5)
    return index


def _select(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``array[mask]`` for each array, without copying when the mask keeps everything."""
    return arrays if mask.all() else tuple(a[mask] for a in arrays)


def _empty(roi: Roi, grid: Grid, note: str) -> RoiSampling:
    return RoiSampling(
        roi.name, grid.shape, np.zeros((0, 3), np.float32), np.zeros(0), 0.0, 0.0, 0, (note,)
    )


def sample_roi(roi: Roi, grid: Grid, end_caps: str = "half") -> RoiSampling:
    """Rasterise ``roi`` on the supersampled lattice of ``grid``.

    ``end_caps`` is "half" (half a contour spacing beyond the first and last contour) or "none".
    Returns an explicit empty sampling (``is_empty`` True, a note saying why) for an ROI without
    closed contours, e.g. a point or marker; callers report such ROIs as not evaluated.
    """
    if not grid.is_axial:
        raise ValueError("only axial dose grids are supported")
    if end_caps not in END_CAPS:
        raise ValueError(f"end_caps must be one of {', '.join(END_CAPS)}, got {end_caps!r}")
    if roi.is_empty:
        kind = "a point ROI" if roi.is_point else "no closed contours"
        return _empty(roi, grid, f"{kind}: not evaluated")
    planes = _planes(roi, grid, end_caps)
    _, dj, di = grid.spacing_mm
    thickness = planes.k_high - planes.k_low  # frame index units
    areas = np.array([_even_odd_area(p) for p in planes.polygons])  # index units
    volume_mm3 = float(np.sum(areas * thickness)) * float(np.prod(grid.spacing_mm))
    if volume_mm3 <= 0.0:
        return _empty(roi, grid, "contours enclose no area: not evaluated")

    factor = _choose_factor(volume_mm3, grid)
    pitch_mm = min(dj, di) / factor
    sub_planes = np.maximum(np.rint(thickness * grid.spacing_mm[0] / pitch_mm), 1).astype(np.int64)
    lattice = [tuple((poly + 0.5) * factor - 0.5 for poly in polys) for polys in planes.polygons]
    plane, u, w = _rasterise(lattice)
    counts = np.bincount(plane, minlength=len(planes.k))
    raster_area = counts / float(factor * factor)
    agree = np.abs(raster_area - areas) <= AREA_AGREEMENT * np.maximum(areas, raster_area)
    areas = np.where(agree | (counts == 0), areas, raster_area)
    volume_cc = float(np.sum(areas * thickness)) * grid.voxel_volume_cc

    # lattice rows/columns 0 .. n*factor-1 are exactly the ones inside the grid's voxels
    keep = (u >= 0) & (u < grid.shape[1] * factor) & (w >= 0) & (w < grid.shape[2] * factor)
    plane, u, w = _select(keep, plane, u, w)
    del keep
    j, i = _lattice_index(u, factor), _lattice_index(w, factor)
    del u, w
    # a plane too thin for any lattice sample keeps its area as one sample at its vertex mean
    missed = np.flatnonzero((counts == 0) & (areas > 0))
    if len(missed):
        centres = np.array([np.concatenate(planes.polygons[p]).mean(axis=0) for p in missed])
        ok = _within(centres[:, 0], grid.shape[1]) & _within(centres[:, 1], grid.shape[2])
        plane = np.concatenate([plane, missed[ok].astype(np.int32)])
        j = np.concatenate([j, centres[ok, 0].astype(np.float32)])
        i = np.concatenate([i, centres[ok, 1].astype(np.float32)])
    counts = np.maximum(counts, 1)

    if np.all(sub_planes == 1):
        sample, p = slice(None), plane
        k = planes.k.astype(np.float32)[plane]
    else:
        repeat = sub_planes[plane]
        sample = np.repeat(np.arange(len(plane), dtype=np.int32), repeat)
        level = np.arange(len(sample)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        p = plane[sample]
        k = (planes.k_low[p] + (level + 0.5) * thickness[p] / sub_planes[p]).astype(np.float32)
        del level
    plane_weight = areas * thickness * grid.voxel_volume_cc / (counts * sub_planes)
    inside = _within(k, grid.shape[0])
    surface = _surface(planes)
    surface = surface[np.all([_within(surface[:, a], n) for a, n in enumerate(grid.shape)], axis=0)]
    n_volume = int(np.count_nonzero(inside))
    positions = np.empty((n_volume + len(surface), 3), dtype=np.float32)
    positions[:n_volume, 0], = _select(inside, k)
    del k
    positions[:n_volume, 1], = _select(inside, j[sample])
    positions[:n_volume, 2], = _select(inside, i[sample])
    positions[n_volume:] = surface
    del j, i
    weights = np.zeros(len(positions))
    weights[:n_volume] = plane_weight[_select(inside, p)[0]]
    in_grid_cc = float(weights.sum())

    notes = list(planes.notes)
    if in_grid_cc < volume_cc * (1 - 1e-6):
        outside = 100.0 * (1.0 - in_grid_cc / volume_cc)
        notes.append(
            f"{outside:.3g} % of the volume lies outside the dose grid: dose metrics use the "
            "part inside"
        )
    return RoiSampling(
        roi_name=roi.name,
        grid_shape=grid.shape,
        positions=positions,
        weights_cc=weights,
        volume_cc=volume_cc,
        in_grid_volume_cc=in_grid_cc,
        factor=factor,
        notes=tuple(notes),
    )
