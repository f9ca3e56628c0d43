"""Structure rasterisation with sub-voxel accuracy: how one ROI samples one dose grid.

A :class:`RoiSampling` is computed once per ROI and grid and reused for every dose array on that
grid (physical dose, EQD2 of each course, the cumulative sum).

Geometry rules (the planning-system convention that the Nelms 2015 analytical values also use):

* Each contour plane owns a slab reaching half way to its neighbouring planes; the first and last
  planes get end caps of half the contour spacing (``end_caps="half"``, the default) or none
  (``end_caps="none"``: the structure ends at its outer contours, as some planning systems count). A gap wider than 1.5 times the usual spacing
  separates parts: no volume is assumed inside it. A single-plane ROI is one dose-frame thick.
* Inside a plane, nested contours combine by the even-odd rule (holes and islands); duplicate
  contours count once, overlapping contours and self-intersecting ones count as the union of what
  was drawn (:mod:`reirrad.contours`), and the structure gets a note naming the planes.
* A contour whose points do not share one plane gets a note and is placed on its mean plane; one
  that leaves its slab (spans more than half the contour spacing) makes the structure not
  evaluable.
* Samples sit on a lattice aligned to the dose grid: each voxel is split into ``factor x factor``
  sub-pixels in-plane, and each slab into sub-planes of about the same pitch. The factor is chosen
  from the ROI size against a sample budget, so small ROIs are sampled finely and large ones
  coarsely, and never so finely that the lattice exceeds ``reirrad.grid.MEMORY_BOUND_BYTES``
  (a structure that needs more even at one sample per voxel is refused). Sample weights are
  scaled per plane so that the plane's area equals the area drawn (exact: shoelace, or a sweep for
  unions); the volume is therefore that of the contours, not of the lattice.
* A structure that would need more than ``SAMPLE_CAP`` weighted samples (a BODY on a fine grid)
  is sub-sampled in its interior: the lattice is cut into blocks of ``s x s`` samples in-plane
  (``s`` odd, the smallest that brings the count under the cap); a block wholly inside the
  structure and the dose grid is one sample at its centre weighing ``s * s`` samples, every other
  sample (within a block of the surface) is kept. Volumes stay exact; the dose at a block's centre
  stands for the block's (exact for a dose linear across it), so Dmean, Dx and VxGy become
  approximate, and an interior Dmin/Dmax can be missed by the dose change across half a block. The
  structure gets a note saying so.
* Zero-weight samples on the contour vertices (at the middle and both faces of each slab) carry
  the surface, where a structure's extreme doses lie, for Dmin and Dmax.

Everything is computed in continuous grid index space ``(k, j, i)``, so flipped or permuted
in-plane axes (HFP, FFS, decubitus) need no special case. Only axial dose grids are supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reirrad.contours import Kind, PlaneShape, resolve_planes
from reirrad.dicom.structures import Roi
from reirrad.grid import MEMORY_BOUND_BYTES, Grid, require_memory

SAMPLE_BUDGET = 250_000  # weighted samples aimed for per ROI (a speed/accuracy setting)
MAX_FACTOR = 8  # finest in-plane split of a dose voxel per axis
GAP_FACTOR = 1.5  # a plane spacing this many times the median one is a gap between parts
PLANE_TOLERANCE = 1e-3  # contours whose planes differ by less (in frame index units) share a plane
AREA_AGREEMENT = 0.25  # raster and polygon areas of a plane must agree this well to rescale
END_CAPS = ("half", "none")  # how far the first and last contour planes extend outwards
BYTES_PER_SAMPLE = 48  # memory per weighted sample while rasterising (positions, weights, indices)
SAMPLE_CAP = 2_000_000  # weighted samples of one ROI above which its interior is sub-sampled
DOSE_GRID = "the dose grid"  # what structure parts lie outside of, unless a caller names a smaller extent


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
    extent: str = DOSE_GRID  # what the grid is, for "outside ..." in notes and reasons: see sample_roi

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
    shapes: tuple[PlaneShape, ...]  # per plane: regions of (M, 2) arrays of (j, i), drawn area
    bounds: tuple[np.ndarray, np.ndarray]  # lowest and highest (j, i) of each plane, (P, 2) each
    notes: tuple[str, ...]
    refusal: str | None = None  # why the ROI cannot be evaluated, if it cannot

    @property
    def polygons(self) -> tuple[tuple[np.ndarray, ...], ...]:
        """Per plane, every contour that counts (duplicates dropped)."""
        return tuple(tuple(p for r in shape.regions for p in r.polygons) for shape in self.shapes)


_KIND_NOTES = {
    Kind.DUPLICATE: "duplicate contours on {planes}: each counted once",
    Kind.OVERLAP: "overlapping contours that are not holes on {planes}: the area of their union is used",
    Kind.SELF_CROSSING: "self-intersecting contours on {planes}: the union of their lobes (non-zero winding) is used",
}


def _plane_list(z_mm: np.ndarray) -> str:
    """ "3 planes (z = 1, 2, 3 mm)", listing at most five positions."""
    shown = ", ".join(f"{z:g}" for z in z_mm[:5]) + (", ..." if len(z_mm) > 5 else "")
    return f"{len(z_mm)} plane{'s' if len(z_mm) > 1 else ''} (z = {shown} mm)"


def _planes(roi: Roi, grid: Grid, end_caps: str) -> _Planes:
    """Group the closed contours by plane, resolve each plane's contours and give it its slab."""
    contours = roi.closed_contours
    sizes = np.array([len(c.points_mm) for c in contours], dtype=np.intp)
    index = grid.to_index(np.concatenate([c.points_mm for c in contours]))
    starts = np.cumsum(sizes) - sizes
    k_mean = np.add.reduceat(index[:, 0], starts) / sizes
    k_spread = np.maximum.reduceat(index[:, 0], starts) - np.minimum.reduceat(index[:, 0], starts)
    contour_key = np.rint(k_mean / PLANE_TOLERANCE).astype(np.int64)
    by_plane: dict[int, list[np.ndarray]] = {}
    for key, points in zip(contour_key.tolist(), np.split(index[:, 1:], starts[1:])):
        by_plane.setdefault(key, []).append(points)
    keys = sorted(by_plane)
    plane_of = np.searchsorted(keys, contour_key)
    tilt = np.zeros(len(keys))
    np.maximum.at(tilt, plane_of, k_spread)
    bounds = (np.full((len(keys), 2), np.inf), np.full((len(keys), 2), -np.inf))
    np.minimum.at(bounds[0], plane_of, np.minimum.reduceat(index[:, 1:], starts))
    np.maximum.at(bounds[1], plane_of, np.maximum.reduceat(index[:, 1:], starts))
    k = np.array(keys, dtype=float) * PLANE_TOLERANCE
    notes: list[str] = []
    frame_mm = grid.spacing_mm[0]
    if len(k) == 1:
        below = above = np.array([0.5])
        notes.append(f"single contour plane: thickness set to the dose grid frame spacing ({frame_mm:g} mm)")
    else:
        steps = np.diff(k)
        nominal = _median(steps)
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
    shapes = resolve_planes([by_plane[key] for key in keys])
    z_mm = grid.to_patient(np.column_stack([k, np.zeros((len(k), 2))]))[:, 2]
    for kind, text in _KIND_NOTES.items():
        found = np.array([kind in shape.found for shape in shapes], dtype=bool)
        if found.any():
            notes.append(text.format(planes=_plane_list(z_mm[found])))
    refusal = _non_planar(tilt, np.minimum(below, above), frame_mm, z_mm, notes)
    return _Planes(k, k - below, k + above, shapes, bounds, tuple(notes), refusal)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, without the import of ``numpy.ma`` that np.median costs."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else float((ordered[middle - 1] + ordered[middle]) / 2.0)


def _non_planar(tilt: np.ndarray, reach: np.ndarray, frame_mm: float, z_mm: np.ndarray, notes: list[str]) -> str | None:
    """Note planes whose contours are not planar (``tilt``: largest k spread per plane, index
    units); return the refusal when a contour reaches beyond its slab (``reach`` either way)."""
    tilted = tilt > PLANE_TOLERANCE
    if not tilted.any():
        return None
    worst_mm = float(tilt.max()) * frame_mm
    notes.append(
        f"non-planar contours on {_plane_list(z_mm[tilted])}: z varies by up to {worst_mm:.3g} mm; "
        "each is placed on its mean plane"
    )
    if np.any(tilt / 2 > reach + PLANE_TOLERANCE):
        return f"a contour is not planar: its z varies by {worst_mm:.3g} mm, beyond its slab; not evaluated"
    return None


def _edges(polygons_lattice: Sequence[Sequence[np.ndarray]]) -> tuple[np.ndarray, ...]:
    """All polygon edges as arrays (plane, u1, w1, u2, w2) in lattice units."""
    polygons = [poly for polys in polygons_lattice for poly in polys]
    if not polygons:
        return (np.zeros(0, np.int64),) + tuple(np.zeros(0) for _ in range(4))
    sizes = np.array([len(poly) for poly in polygons])
    plane = np.repeat(np.arange(len(polygons_lattice)), [len(polys) for polys in polygons_lattice])
    start = np.concatenate(polygons)
    offsets = np.cumsum(sizes) - sizes
    following = np.arange(len(start)) + 1
    following[offsets + sizes - 1] = offsets  # each polygon's last vertex closes on its first
    end = start[following]
    return np.repeat(plane, sizes), start[:, 0], start[:, 1], end[:, 0], end[:, 1]


def _row_crossings(u1: np.ndarray, w1: np.ndarray, u2: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every crossing of an edge with a lattice row u (``min(u1, u2) <= u < max(u1, u2)``).

    Returns ``(edge, u, w)``: the edge index, the row and the crossing's w.
    """
    first = np.ceil(np.minimum(u1, u2)).astype(np.int64)
    count = np.maximum(np.ceil(np.maximum(u1, u2)).astype(np.int64) - first, 0)
    edge = np.repeat(np.arange(len(first)), count)
    u = first[edge] + (np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count))
    w = w1[edge] + (u - u1[edge]) * (w2[edge] - w1[edge]) / (u2[edge] - u1[edge])
    return edge, u, w


@dataclass(frozen=True)
class _Layout:
    """Per-plane buffers of the lattice: bounding box rows, first row/column, row stride."""

    u0: np.ndarray
    w0: np.ndarray
    rows: np.ndarray
    stride: np.ndarray  # columns per row, plus one spare column that closes every row
    offsets: np.ndarray  # (P + 1,) start of each plane's buffer

    @classmethod
    def of(cls, bounds: tuple[np.ndarray, np.ndarray], factor: int) -> _Layout:
        """Layout at ``factor`` for the planes' bounding boxes ``(lows, highs)`` (P, 2) in index units."""
        lows, highs = (_to_lattice(b, factor) for b in bounds)
        u0 = np.ceil(lows[:, 0]).astype(np.int64)
        w0 = np.ceil(lows[:, 1]).astype(np.int64)
        rows = np.maximum(np.ceil(highs[:, 0]).astype(np.int64) - u0, 0)
        stride = np.maximum(np.floor(highs[:, 1]).astype(np.int64) - w0 + 1, 0) + 1
        return cls(u0, w0, rows, stride, np.concatenate([[0], np.cumsum(rows * stride)]))

    @property
    def cells(self) -> int:
        return int(self.offsets[-1])


def _to_lattice(index: np.ndarray, factor: int) -> np.ndarray:
    """In-plane grid indices -> lattice units, where the samples sit at integer coordinates."""
    return (index + 0.5) * factor - 0.5


def _rasterise(
    shapes: Sequence[PlaneShape], layout: _Layout, factor: int, block: int = 1, lattice_shape: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Scan-line rasterisation of every plane at once, at ``factor`` samples per voxel and axis.

    Samples sit at integer ``(u, w)``. Each plane gets a buffer covering its bounding box plus one
    spare column per row; every crossing of a row by a simple contour toggles the first sample to
    its right, each union region toggles its own outline (:func:`_toggle_union`); a running XOR
    then marks the inside. The parity returns to zero at each row end, so one XOR-accumulate runs
    over all planes' buffers together. Nested regions alternate (even-odd), as their areas do.

    With ``block`` > 1, every ``block x block`` block of samples wholly inside the structure and
    the lattice of the grid's voxels (``lattice_shape``: rows, columns) becomes one sample at its
    centre (:func:`_interior_blocks`).

    Returns ``(plane, u, w)`` of the inside samples (int32 arrays), and with ``block`` > 1 the
    number of lattice samples each one stands for (int32), else None.
    """
    plane, *ends = _edges([shape.simple_polygons for shape in shapes])
    edge, u, w = _row_crossings(*(_to_lattice(v, factor) for v in ends))
    p = plane[edge]
    column = np.clip(np.ceil(w).astype(np.int64) - layout.w0[p], 0, layout.stride[p] - 1)
    toggles = np.zeros(layout.cells, dtype=np.uint8)
    np.bitwise_xor.at(toggles, layout.offsets[p] + (u - layout.u0[p]) * layout.stride[p] + column, 1)
    del edge, u, w, p, column
    for n, shape in enumerate(shapes):
        for region in shape.union_regions:
            _toggle_union(toggles, [_to_lattice(p, factor) for p in region.polygons], layout, n)
    inside = np.bitwise_xor.accumulate(toggles).view(bool)
    del toggles
    if block == 1:
        plane, u, w = _inside_samples(inside, layout)
        return plane, u, w, None
    blocks = [_interior_blocks(inside, layout, n, block, lattice_shape) for n in range(len(shapes))]
    block_u = np.concatenate([b[0] for b in blocks])
    block_w = np.concatenate([b[1] for b in blocks])
    per_plane = np.array([len(b[0]) for b in blocks], dtype=np.int64)
    rest_plane, rest_u, rest_w = _inside_samples(inside, layout)  # full blocks were cleared
    rest_per_plane = np.bincount(rest_plane, minlength=len(shapes))
    # per plane: its full blocks' centres, then its other samples (row-major), as planes follow
    size = int(per_plane.sum()) + len(rest_plane)
    where_block = np.arange(len(block_u)) + np.repeat(np.cumsum(rest_per_plane) - rest_per_plane, per_plane)
    where_rest = np.arange(len(rest_plane)) + np.cumsum(per_plane)[rest_plane]
    block_plane = np.repeat(np.arange(len(shapes), dtype=np.int32), per_plane)
    out = []
    for at_blocks, at_rest in ((block_plane, rest_plane), (block_u, rest_u), (block_w, rest_w)):
        array = np.empty(size, np.int32)
        array[where_block], array[where_rest] = at_blocks, at_rest
        out.append(array)
    stands = np.ones(size, np.int32)
    stands[where_block] = block * block
    out.append(stands)
    return out[0], out[1], out[2], out[3]


def _inside_samples(inside: np.ndarray, layout: _Layout, chunk: int = 1 << 20) -> tuple[np.ndarray, ...]:
    """``(plane, u, w)`` (int32) of the set cells of all planes' buffers ``inside``, in buffer order
    (plane, then row-major), converted ``chunk`` cells at a time to bound temporary memory."""
    index = np.flatnonzero(inside)
    out = [np.empty(len(index), np.int32) for _ in range(3)]
    for start in range(0, len(index), chunk):
        at = index[start : start + chunk]
        p = np.searchsorted(layout.offsets, at, side="right") - 1  # empty planes share an offset
        row, column = np.divmod(at - layout.offsets[p], layout.stride[p])
        out[0][start : start + chunk] = p
        out[1][start : start + chunk] = row + layout.u0[p]
        out[2][start : start + chunk] = column + layout.w0[p]
    return out[0], out[1], out[2]


def _interior_blocks(
    inside: np.ndarray, layout: _Layout, n: int, block: int, lattice_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The ``block x block`` blocks of plane ``n``'s part of the ``inside`` buffers that lie
    wholly inside the structure and the grid's ``lattice_shape`` (rows, columns); clears their
    samples in ``inside``.

    Blocks are aligned on the whole lattice (multiples of ``block``). Returns the lattice ``(u, w)``
    of the full blocks' centres (int32; ``block`` is odd, so a centre is a lattice sample), in
    row-major order.
    """
    buffer = inside[layout.offsets[n] : layout.offsets[n + 1]].reshape(layout.rows[n], layout.stride[n])
    origin = (int(layout.u0[n]), int(layout.w0[n]))
    span = (buffer.shape[0], buffer.shape[1] - 1)  # the spare column is never inside
    first, count = [], []
    for axis in (0, 1):  # whole blocks within both the buffer and the lattice
        low = max(origin[axis], 0)
        high = min(origin[axis] + span[axis], lattice_shape[axis])
        start = -(-low // block) * block
        first.append(start)
        count.append(max((high - start) // block, 0))
    if not count[0] or not count[1]:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    view = buffer[
        first[0] - origin[0] : first[0] - origin[0] + count[0] * block,
        first[1] - origin[1] : first[1] - origin[1] + count[1] * block,
    ].reshape(count[0], block, count[1], block)
    rows_full = np.logical_and.reduce(view, axis=1)  # (blocks down, blocks across, block)
    full = rows_full[:, :, 0].copy()
    for column in range(1, block):
        full &= rows_full[:, :, column]
    view &= ~full[:, None, :, None]
    block_u, block_w = np.nonzero(full)
    centre = (block - 1) // 2
    block_u = (first[0] + block_u * block + centre).astype(np.int32)
    return block_u, (first[1] + block_w * block + centre).astype(np.int32)


def _block_size(samples: float) -> int:
    """Odd in-plane block size (1: none) that brings ``samples`` lattice samples under SAMPLE_CAP."""
    if samples <= SAMPLE_CAP:
        return 1
    block = int(np.ceil(np.sqrt(samples / SAMPLE_CAP)))
    return block + 1 - block % 2


def _toggle_union(toggles: np.ndarray, polygons: Sequence[np.ndarray], layout: _Layout, n: int) -> None:
    """Toggle the outline of a union region (``polygons`` in lattice units) into plane ``n``'s buffer.

    Each member's samples with a non-zero winding number are found by a signed running sum along
    the rows; their union toggles where a row enters or leaves it.
    """
    points = np.concatenate(polygons)
    u_first = int(np.ceil(points[:, 0].min()))
    w_first = int(np.ceil(points[:, 1].min()))
    rows = int(np.ceil(points[:, 0].max())) - u_first
    columns = int(np.floor(points[:, 1].max())) - w_first + 1
    if rows <= 0 or columns <= 0:
        return
    covered = np.zeros((rows, columns + 1), dtype=bool)
    for polygon in polygons:
        _, u1, w1, u2, w2 = _edges([(polygon,)])
        edge, u, w = _row_crossings(u1, w1, u2, w2)
        winding = np.zeros((rows, columns + 1), dtype=np.int32)
        column = np.clip(np.ceil(w).astype(np.int64) - w_first, 0, columns)
        np.add.at(winding, (u - u_first, column), np.sign(u2 - u1)[edge].astype(np.int32))
        covered |= np.cumsum(winding, axis=1) != 0
    covered[:, -1] = False
    change = covered.copy()
    change[:, 1:] ^= covered[:, :-1]
    r, c = np.nonzero(change)
    start = layout.offsets[n] + (u_first - layout.u0[n]) * layout.stride[n] + (w_first - layout.w0[n])
    toggles[start + r * layout.stride[n] + c] ^= 1


def _choose_factor(volume_mm3: float, grid: Grid) -> int:
    """In-plane split per axis (1 or even) so that about SAMPLE_BUDGET samples cover the ROI."""
    _, dj, di = grid.spacing_mm
    voxel_mm3 = dj * di * min(dj, di)
    factor = int(np.clip(np.cbrt(SAMPLE_BUDGET * voxel_mm3 / max(volume_mm3, 1e-9)), 1, MAX_FACTOR))
    # an even split keeps samples off integer and half-integer indices, where contours often lie
    return factor if factor == 1 else factor - factor % 2


def _sub_planes(thickness: np.ndarray, grid: Grid, factor: int) -> np.ndarray:
    """Sub-planes per slab, about as far apart as the in-plane samples (``thickness``: frames)."""
    pitch_mm = min(grid.spacing_mm[1:]) / factor
    return np.maximum(np.rint(thickness * grid.spacing_mm[0] / pitch_mm), 1).astype(np.int64)


def _affordable_lattice(
    roi: Roi, grid: Grid, planes: _Planes, areas: np.ndarray, factor: int
) -> tuple[int, np.ndarray, _Layout]:
    """The finest factor (at most ``factor``) whose lattice fits MEMORY_BOUND_BYTES, its
    sub-planes and layout, or an InputError naming the memory even one sample per voxel needs.

    Counts the row buffers (1 byte a cell) and the weighted samples (BYTES_PER_SAMPLE each).
    """
    thickness = planes.k_high - planes.k_low
    for candidate in [factor, *range(factor - 2, 1, -2), 1] if factor > 1 else [1]:
        sub_planes = _sub_planes(thickness, grid, candidate)
        layout = _Layout.of(planes.bounds, candidate)
        samples = float(np.sum(areas * candidate**2 * sub_planes))
        needed = layout.cells + BYTES_PER_SAMPLE * samples
        if needed <= MEMORY_BOUND_BYTES:
            break
    voxels = " x ".join(f"{v:g}" for v in grid.spacing_mm)
    require_memory(needed, f"structure {roi.name!r}: {samples:.3g} samples at one per dose voxel ({voxels} mm)")
    return candidate, sub_planes, layout


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


def _empty(roi: Roi, grid: Grid, *notes: str) -> RoiSampling:
    return RoiSampling(roi.name, grid.shape, np.zeros((0, 3), np.float32), np.zeros(0), 0.0, 0.0, 0, notes)


def _sub_sampling_note(block: int, grid: Grid, factor: int, samples: int) -> str:
    """The note of a structure whose interior was sub-sampled in ``block x block`` blocks."""
    half_mm = (block - 1) / 2 * max(grid.spacing_mm[1:]) / factor
    return (
        f"large structure: its interior is sampled once per {block} x {block} samples in-plane "
        f"({samples} weighted samples); volume exact, Dmean, Dx and VxGy approximate (dose at block "
        f"centres), an interior Dmin/Dmax may be missed by the dose change over {half_mm:.3g} mm"
    )


def sample_roi(roi: Roi, grid: Grid, end_caps: str = "half", extent: str = DOSE_GRID) -> RoiSampling:
    """Rasterise ``roi`` on the supersampled lattice of ``grid``.

    ``end_caps`` is "half" (half a contour spacing beyond the first and last contour) or "none".
    Returns an explicit empty sampling (``is_empty`` True, a note saying why) for an ROI without
    closed contours, e.g. a point or marker; callers report such ROIs as not evaluated.
    ``extent`` names what ``grid`` is where it is less than the whole dose grid (e.g. the part a
    deformation field covers), for the note on the volume outside it.
    """
    if not grid.is_axial:
        raise ValueError("only axial dose grids are supported")
    if end_caps not in END_CAPS:
        raise ValueError(f"end_caps must be one of {', '.join(END_CAPS)}, got {end_caps!r}")
    if roi.is_empty:
        return _empty(roi, grid, f"{roi.empty_reason}: not evaluated")
    planes = _planes(roi, grid, end_caps)
    if planes.refusal is not None:
        return _empty(roi, grid, *planes.notes, planes.refusal)
    thickness = planes.k_high - planes.k_low  # frame index units
    areas = np.array([shape.area for shape in planes.shapes])  # drawn areas, index units
    volume_mm3 = float(np.sum(areas * thickness)) * float(np.prod(grid.spacing_mm))
    if volume_mm3 <= 0.0:
        return _empty(roi, grid, *planes.notes, "contours enclose no area: not evaluated")

    factor, sub_planes, layout = _affordable_lattice(roi, grid, planes, areas, _choose_factor(volume_mm3, grid))
    block = _block_size(float(np.sum(areas * factor**2 * sub_planes)))
    lattice_shape = (grid.shape[1] * factor, grid.shape[2] * factor)
    plane, u, w, multiplicity = _rasterise(planes.shapes, layout, factor, block, lattice_shape)
    counts = np.bincount(plane, minlength=len(planes.k), weights=multiplicity)
    if multiplicity is not None:
        counts = np.rint(counts).astype(np.int64)
    raster_area = counts / float(factor * factor)
    agree = np.abs(raster_area - areas) <= AREA_AGREEMENT * np.maximum(areas, raster_area)
    areas = np.where(agree | (counts == 0), areas, raster_area)
    volume_cc = float(np.sum(areas * thickness)) * grid.voxel_volume_cc

    # lattice rows/columns 0 .. n*factor-1 are exactly the ones inside the grid's voxels
    keep = (u >= 0) & (u < lattice_shape[0]) & (w >= 0) & (w < lattice_shape[1])
    plane, u, w = _select(keep, plane, u, w)
    if multiplicity is not None:
        (multiplicity,) = _select(keep, multiplicity)
    del keep
    j, i = _lattice_index(u, factor), _lattice_index(w, factor)
    del u, w
    # a plane too thin for any lattice sample keeps its area as one sample at its vertex mean
    missed = np.flatnonzero((counts == 0) & (areas > 0))
    if len(missed):
        centres = np.array([np.concatenate(planes.polygons[p]).mean(axis=0) for p in missed])
        ok = _within(centres[:, 0], grid.shape[1]) & _within(centres[:, 1], grid.shape[2])
        plane = np.concatenate([plane, missed[ok].astype(np.int32)])
        if multiplicity is not None:
            multiplicity = np.concatenate([multiplicity, np.ones(int(ok.sum()), np.int32)])
        j = np.concatenate([j, centres[ok, 0].astype(np.float32)])
        i = np.concatenate([i, centres[ok, 1].astype(np.float32)])
    counts = np.maximum(counts, 1)

    sample: slice | np.ndarray  # every sample once, or the index of each sub-plane's sample
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
    (positions[:n_volume, 0],) = _select(inside, k)
    del k
    (positions[:n_volume, 1],) = _select(inside, j[sample])
    (positions[:n_volume, 2],) = _select(inside, i[sample])
    positions[n_volume:] = surface
    del j, i
    weights = np.zeros(len(positions))
    weights[:n_volume] = plane_weight[_select(inside, p)[0]]
    notes = list(planes.notes)
    if multiplicity is not None:
        weights[:n_volume] *= _select(inside, multiplicity[sample])[0]
        notes.append(_sub_sampling_note(block, grid, factor, n_volume))
    in_grid_cc = float(weights.sum())

    if in_grid_cc < volume_cc * (1 - 1e-6):
        outside = 100.0 * (1.0 - in_grid_cc / volume_cc)
        notes.append(f"{outside:.3g} % of the volume lies outside {extent}: dose metrics use the part inside")
    return RoiSampling(
        roi_name=roi.name,
        grid_shape=grid.shape,
        positions=positions,
        weights_cc=weights,
        volume_cc=volume_cc,
        in_grid_volume_cc=in_grid_cc,
        factor=factor,
        notes=tuple(notes),
        extent=extent,
    )
