"""How the contours of a plane combine into the area that was drawn.

The contours of each plane are classified pairwise; only contours whose bounding boxes meet are
compared (boxes hashed into cells), and all planes are handled in one vectorised pass, so
thousands of contours on a plane, or a hundred thousand in a structure, cost little:

* nested: one contour lies inside another (boundaries may touch): a hole, an island in a hole,
  and so on, combined by the even-odd rule;
* disjoint: separate islands (boundaries may touch);
* duplicate: the same outline (every vertex and edge midpoint of each lies on the other's
  boundary, within ``ON_EDGE_TOLERANCE``): counted once;
* overlapping: the boundaries cross, or one has boundary points strictly inside and strictly
  outside the other: the contours merge into one region, the union of what was drawn.

A contour that crosses itself covers the union of its lobes (every point with a non-zero winding
number). Overlapping contours and self-crossing contours form *regions*; regions do not cross and
combine by the even-odd rule of their nesting depth. Areas are exact (shoelace for a simple
contour, a slab sweep between vertex and crossing abscissae for a merged region).

Coordinates are the continuous in-plane grid indices ``(j, i)`` (called ``(u, w)`` here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

ON_EDGE_TOLERANCE = 1e-4  # a point this close to a contour (index units) lies on its boundary
PAIR_CHUNK = 1 << 20  # candidate pairs examined per step (bounds temporary memory)


class Kind(Enum):
    """What was found on a plane beyond nested and disjoint contours (closed set, for notes)."""

    DUPLICATE = "duplicate contours"
    OVERLAP = "overlapping contours"
    SELF_CROSSING = "self-intersecting contours"


@dataclass(frozen=True)
class Region:
    """Contours that fill one region: one simple contour, or a union (overlaps, self-crossing)."""

    polygons: tuple[np.ndarray, ...]  # (M, 2) arrays of (u, w)
    is_union: bool  # True: union of the members' non-zero-winding interiors
    depth: int  # number of other regions of the plane that contain this one
    area: float  # index units squared


@dataclass(frozen=True)
class PlaneShape:
    """The regions of one plane, the drawn area (index units squared) and what was resolved."""

    regions: tuple[Region, ...]
    area: float
    found: frozenset[Kind]

    @property
    def simple_polygons(self) -> tuple[np.ndarray, ...]:
        """Contours of the single-contour regions (rasterised by the even-odd rule)."""
        return tuple(r.polygons[0] for r in self.regions if not r.is_union)

    @property
    def union_regions(self) -> tuple[Region, ...]:
        """Regions rasterised as unions of non-zero-winding interiors."""
        return tuple(r for r in self.regions if r.is_union)


def _unique(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """The sorted unique values (rows with ``axis=0``) of ``values``, as ``np.unique`` gives them,
    without the import of ``numpy.ma`` (~15 ms) that numpy 2's plain ``np.unique`` costs."""
    return np.unique(values, return_index=True, axis=axis)[0]


def box_pairs(low: np.ndarray, high: np.ndarray, group: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(m, n)``, m != n, of axis-aligned boxes (N, 2) of one ``group`` that overlap
    (closed), in chunks.

    Boxes are hashed into square cells about the mean box size; two boxes are compared only in
    the cell that holds the lower corner of their overlap, so each pair is found once.
    """
    if not len(low):
        return
    origin = low.min(axis=0)
    size = max(1.5 * float(np.mean(np.max(high - low, axis=1))), 1e-9 * (1.0 + float(np.abs(high).max())))
    cell_low = np.floor((low - origin) / size).astype(np.int64)
    cell_high = np.floor((high - origin) / size).astype(np.int64)
    while np.prod(cell_high - cell_low + 1, axis=1, dtype=float).sum() > 4 * len(low) + PAIR_CHUNK:
        size *= 2  # a few huge boxes among small ones: coarser cells keep the table small
        cell_low = np.floor((low - origin) / size).astype(np.int64)
        cell_high = np.floor((high - origin) / size).astype(np.int64)
    columns = int(cell_high[:, 1].max()) + 1
    per_group = (int(cell_high[:, 0].max()) + 1) * columns
    spans = cell_high - cell_low + 1
    count = spans[:, 0] * spans[:, 1]
    box = np.repeat(np.arange(len(low)), count)
    step = np.arange(len(box)) - np.repeat(np.cumsum(count) - count, count)
    cell_u = cell_low[box, 0] + step // spans[box, 1]
    cell_w = cell_low[box, 1] + step % spans[box, 1]
    key = group[box] * per_group + cell_u * columns + cell_w
    order = np.argsort(key, kind="stable")
    key, box = key[order], box[order]
    later = np.searchsorted(key, key, side="right") - np.arange(len(key)) - 1
    total = np.cumsum(later)
    first = 0
    while first < len(key):
        done = int(total[first - 1]) if first else 0
        last = max(int(np.searchsorted(total, done + PAIR_CHUNK, side="right")), first + 1)
        n_later = later[first:last]
        a = np.repeat(np.arange(first, last), n_later)
        b = a + 1 + np.arange(len(a)) - np.repeat(np.cumsum(n_later) - n_later, n_later)
        m, n = box[a], box[b]
        keep = np.all((low[m] <= high[n]) & (low[n] <= high[m]), axis=1)
        corner = np.floor((np.maximum(low[m], low[n]) - origin) / size).astype(np.int64)
        keep &= corner[:, 0] * columns + corner[:, 1] == key[a] - group[m] * per_group
        yield m[keep], n[keep]
        first = last


@dataclass(frozen=True)
class _Edges:
    """All edges of a plane's contours: start ``a`` (E, 2), end ``b`` (E, 2), owner contour."""

    a: np.ndarray
    b: np.ndarray
    owner: np.ndarray
    position: np.ndarray  # index of the edge within its contour
    sizes: np.ndarray  # (C,) vertices per contour

    @classmethod
    def of(cls, polygons: Sequence[np.ndarray]) -> _Edges:
        sizes = np.array([len(p) for p in polygons])
        a = np.concatenate(polygons)
        starts = np.cumsum(sizes) - sizes
        owner = np.repeat(np.arange(len(polygons)), sizes)
        position = np.arange(len(a)) - starts[owner]
        following = np.where(position + 1 == sizes[owner], starts[owner], np.arange(len(a)) + 1)
        return cls(a, a[following], owner, position, sizes)


PIECE_EDGES = 8  # consecutive edges per piece of a monotone chain in the edge pair search


def _monotone_pieces(edges: _Edges) -> tuple[np.ndarray, np.ndarray]:
    """Split every contour into pieces of at most PIECE_EDGES consecutive edges along which u
    never reverses; returns each edge's piece and each piece's chain (the maximal such run).

    Two edges of one chain cannot cross properly: their u ranges meet at most at an end point.
    """
    direction = np.sign(edges.b[:, 0] - edges.a[:, 0])
    first = edges.position == 0
    # the direction of the last edge that moves in u, carried over edges along u = constant
    moving = np.flatnonzero((direction != 0) | first)
    carried = direction[moving[np.searchsorted(moving, np.arange(len(direction)), side="right") - 1]]
    previous = np.concatenate([[0], carried[:-1]])
    chain_start = first | ((direction != 0) & (previous != 0) & (direction != previous))
    chain = np.cumsum(chain_start) - 1
    in_chain = np.arange(len(chain)) - np.flatnonzero(chain_start)[chain]
    piece_start = chain_start | (in_chain % PIECE_EDGES == 0)
    piece = np.cumsum(piece_start) - 1
    return piece, chain[piece_start]


def _edge_pairs(
    edges: _Edges, plane: np.ndarray, low: np.ndarray, high: np.ndarray
) -> Iterator[tuple[np.ndarray, ...]]:
    """Pairs ``(m, n)``, m < n, of edges of one plane whose boxes ``low``/``high`` (E, 2) meet, in
    chunks, leaving out pairs within one monotone chain (they cannot cross; :func:`_crossings`
    ignores any other pair of one contour).

    The boxes of pieces of chains are paired first (:func:`box_pairs`), then their edges.
    """
    piece, chain = _monotone_pieces(edges)
    starts = np.flatnonzero(np.concatenate([[True], piece[1:] != piece[:-1]]))
    sizes = np.diff(np.append(starts, len(piece)))
    piece_plane = plane[edges.owner[starts]]
    for a, b in box_pairs(np.minimum.reduceat(low, starts), np.maximum.reduceat(high, starts), piece_plane):
        keep = chain[a] != chain[b]
        a, b = a[keep], b[keep]
        count = sizes[a] * sizes[b]
        total = np.cumsum(count)
        first = 0
        while first < len(a):  # piece pairs in steps of about PAIR_CHUNK edge pairs
            done = int(total[first - 1]) if first else 0
            last = max(int(np.searchsorted(total, done + PAIR_CHUNK, side="right")), first + 1)
            c = count[first:last]
            pair = np.repeat(np.arange(first, last), c)
            step = np.arange(len(pair)) - np.repeat(np.cumsum(c) - c, c)
            m = starts[a[pair]] + step // sizes[b[pair]]
            n = starts[b[pair]] + step % sizes[b[pair]]
            meet = np.all((low[m] <= high[n]) & (low[n] <= high[m]), axis=1)
            m, n = m[meet], n[meet]
            yield np.minimum(m, n), np.maximum(m, n)
            first = last


def _crossings(edges: _Edges, plane: np.ndarray) -> tuple[np.ndarray, ...]:
    """Proper crossings of edge pairs, and the contour pairs whose boundaries touch.

    Returns ``(m, n, u, touching)``: crossing edges m and n (their interiors cross at one point)
    and the u there; ``touching`` (K, 2) holds contour pairs with edges closer than
    ``ON_EDGE_TOLERANCE`` that do not cross (a shared vertex, an edge along another edge).
    ``plane`` gives each contour's plane. Adjacent edges of one contour never count, and touching
    is no crossing (keyhole contours are not self-intersecting).
    """
    low, high = np.minimum(edges.a, edges.b), np.maximum(edges.a, edges.b)
    low, high = low - ON_EDGE_TOLERANCE, high + ON_EDGE_TOLERANCE
    found_m, found_n, found_u, touching = [], [], [], [np.zeros((0, 2), np.int64)]
    for m, n in _edge_pairs(edges, plane, low, high):
        same = edges.owner[m] == edges.owner[n]
        gap = np.abs(edges.position[m] - edges.position[n])
        adjacent = same & ((gap == 1) | (gap == edges.sizes[edges.owner[m]] - 1))
        m, n, same = m[~adjacent], n[~adjacent], same[~adjacent]
        p, r = edges.a[m], edges.b[m] - edges.a[m]
        q, s = edges.a[n], edges.b[n] - edges.a[n]
        denominator = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denominator
            v = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denominator
        inner = 1e-9  # end points (shared vertices, touching) are not crossings
        proper = (denominator != 0) & (t > inner) & (t < 1 - inner) & (v > inner) & (v < 1 - inner)
        found_m.append(m[proper])
        found_n.append(n[proper])
        found_u.append(p[proper, 0] + t[proper] * r[proper, 0])
        other = ~proper & ~same
        distance = (
            np.min(
                [
                    _segment_distance(edges.a[n[other]], edges.b[n[other]], p[other]),
                    _segment_distance(edges.a[n[other]], edges.b[n[other]], edges.b[m[other]]),
                    _segment_distance(edges.a[m[other]], edges.b[m[other]], q[other]),
                    _segment_distance(edges.a[m[other]], edges.b[m[other]], edges.b[n[other]]),
                ],
                axis=0,
            )
            if other.any()
            else np.zeros(0)
        )
        near = np.flatnonzero(other)[distance <= ON_EDGE_TOLERANCE]
        touching.append(np.sort(np.column_stack([edges.owner[m[near]], edges.owner[n[near]]]), axis=1))
    if not found_m:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros((0, 2), np.int64)
    return (
        np.concatenate(found_m),
        np.concatenate(found_n),
        np.concatenate(found_u),
        _unique(np.concatenate(touching), axis=0),
    )


def _segment_distance(a: np.ndarray, b: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Distance from each point (K, 2) to the segment from a to b (K, 2 each)."""
    d = b - a
    length2 = np.maximum(np.einsum("ij,ij->i", d, d), 1e-300)
    t = np.clip(np.einsum("ij,ij->i", point - a, d) / length2, 0.0, 1.0)
    return np.hypot(*(a + t[:, None] * d - point).T)


def _locate(points: np.ndarray, point_owner: np.ndarray, edges: _Edges, plane: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ray casting of many points against every other contour of their plane at once.

    Returns ``(keys, inside, on)``: for contour pairs ``key = c * n + d``, how many of contour c's
    points lie strictly inside contour d and how many on its boundary. Edges are bucketed by plane
    and u, so a point meets only the edges its ray (along +w) can cross.
    """
    n = len(plane)
    u_low = np.minimum(edges.a[:, 0], edges.b[:, 0]) - ON_EDGE_TOLERANCE
    u_high = np.maximum(edges.a[:, 0], edges.b[:, 0]) + ON_EDGE_TOLERANCE
    bucket = float(np.mean(u_high - u_low))
    origin = float(u_low.min())

    def replicas(size: float) -> float:
        return float(np.sum(np.floor((u_high - origin) / size) - np.floor((u_low - origin) / size) + 1))

    while replicas(bucket) > 4 * len(u_low) + PAIR_CHUNK:
        bucket *= 2  # a few very long edges: coarser buckets keep the table small
    per_plane = int(np.floor((u_high.max() - origin) / bucket)) + 1
    first = np.floor((u_low - origin) / bucket).astype(np.int64)
    count = np.floor((u_high - origin) / bucket).astype(np.int64) - first + 1
    edge = np.repeat(np.arange(len(first)), count)
    key = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    key += plane[edges.owner[edge]] * per_plane
    order = np.argsort(key, kind="stable")
    key, edge = key[order], edge[order]
    point_key = np.floor((points[:, 0] - origin) / bucket).astype(np.int64) + plane[point_owner] * per_plane
    begin = np.searchsorted(key, point_key, side="left")
    hits = np.searchsorted(key, point_key, side="right") - begin
    step = max(1, int(PAIR_CHUNK // max(float(hits.mean()), 1.0)))
    inside_keys, on_keys = [], []
    for start in range(0, len(points), step):
        h, b = hits[start : start + step], begin[start : start + step]
        p = np.repeat(np.arange(start, start + len(h)), h)
        e = edge[np.repeat(b, h) + np.arange(len(p)) - np.repeat(np.cumsum(h) - h, h)]
        other = edges.owner[e] != point_owner[p]
        inside, on = _point_contacts(points, p[other], edges, e[other], n)
        inside_keys.append(point_owner[inside // n] * n + inside % n)
        on_keys.append(point_owner[on // n] * n + on % n)
    inside_pairs, inside_count = np.unique(np.concatenate(inside_keys), return_counts=True)
    on_pairs, on_count = np.unique(np.concatenate(on_keys), return_counts=True)
    keys = _unique(np.concatenate([inside_pairs, on_pairs]))
    inside_all, on_all = np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
    inside_all[np.searchsorted(keys, inside_pairs)] = inside_count
    on_all[np.searchsorted(keys, on_pairs)] = on_count
    return keys, inside_all, on_all


def _point_contacts(points: np.ndarray, p: np.ndarray, edges: _Edges, e: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Keys ``point * n + contour`` of points strictly inside / on the boundary of contours.

    ``(p, e)`` pairs every point with the edges of other contours that span its u.
    """
    xy, a, b = points[p], edges.a[e], edges.b[e]
    d = b - a
    near = _segment_distance(a, b, xy) <= ON_EDGE_TOLERANCE
    crosses = (a[:, 0] <= xy[:, 0]) != (b[:, 0] <= xy[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        w_at = a[:, 1] + (xy[:, 0] - a[:, 0]) * d[:, 1] / d[:, 0]
    pair = p.astype(np.int64) * n + edges.owner[e]
    on = _unique(pair[near])
    crossed, times = np.unique(pair[crosses & (w_at > xy[:, 1])], return_counts=True)
    return crossed[(times % 2 == 1) & ~np.isin(crossed, on)], on


def _union_area(polygons: Sequence[np.ndarray], crossing_u: np.ndarray) -> float:
    """Exact area of the union of the polygons' non-zero-winding interiors.

    Between consecutive vertex or crossing abscissae (u) no edges cross or end, so the covered
    length along w is linear in u and its value at the slab middle times the slab width is exact.
    """
    edges = _Edges.of(polygons)
    ua, ub = edges.a[:, 0], edges.b[:, 0]
    events = _unique(np.concatenate([ua, crossing_u]))
    # abscissae closer than rounding noise make one event, so no slab middle meets an end point
    events = events[np.concatenate([[True], np.diff(events) > 1e-9 * (1.0 + np.abs(events[1:]))])]
    middles, widths = (events[:-1] + events[1:]) / 2, np.diff(events)
    # each edge is active in the slabs whose middle lies strictly inside its u range
    first = np.searchsorted(middles, np.minimum(ua, ub), side="right")
    stop = np.searchsorted(middles, np.maximum(ua, ub), side="left")
    active = np.zeros(len(middles) + 1, np.int64)
    np.add.at(active, first[stop > first], 1)
    np.add.at(active, stop[stop > first], -1)
    per_slab = np.cumsum(active)[:-1]
    area = 0.0
    start = 0
    while start < len(middles):  # slabs in chunks of about PAIR_CHUNK (slab, edge) pairs
        end = max(int(np.searchsorted(np.cumsum(per_slab[start:]), PAIR_CHUNK, side="right")) + start, start + 1)
        e = np.flatnonzero((first < end) & (stop > start))
        count = np.minimum(stop[e], end) - np.maximum(first[e], start)
        slab = np.repeat(np.maximum(first[e], start), count)
        slab += np.arange(len(slab)) - np.repeat(np.cumsum(count) - count, count)
        e = np.repeat(e, count)
        area += _covered_area(edges, e, slab, middles, widths, len(polygons))
        start = end
    return area


def _covered_area(
    edges: _Edges, e: np.ndarray, slab: np.ndarray, middles: np.ndarray, widths: np.ndarray, members: int
) -> float:
    """Area of the slabs covered by any member's non-zero winding, from active (edge, slab) pairs."""
    ua, ub = edges.a[e, 0], edges.b[e, 0]
    w = edges.a[e, 1] + (middles[slab] - ua) * (edges.b[e, 1] - edges.a[e, 1]) / (ub - ua)
    sign = np.sign(ub - ua).astype(np.int64)
    order = np.lexsort((w, edges.owner[e], slab))
    winding = _running_sum(sign[order], slab[order] * members + edges.owner[e][order])
    change = np.empty(len(order), np.int64)
    change[order] = (winding != 0).astype(np.int64) - (winding - sign[order] != 0)
    order = np.lexsort((w, slab))
    covering = _running_sum(change[order], slab[order]) > 0  # after each edge, along w
    length = np.diff(w[order]) * covering[:-1] * (np.diff(slab[order]) == 0)
    return float(np.sum(length * widths[slab[order][:-1]]))


def _running_sum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting wherever the (sorted) ``group`` label changes."""
    total = np.cumsum(values)
    starts = np.concatenate([[True], group[1:] != group[:-1]])
    offset = np.where(starts, total - values, 0)
    return total - offset[np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))]


def _signed_areas(edges: _Edges, n: int) -> np.ndarray:
    """Shoelace area (signed) of every contour."""
    cross = edges.a[:, 0] * edges.b[:, 1] - edges.a[:, 1] * edges.b[:, 0]
    return 0.5 * np.bincount(edges.owner, weights=cross, minlength=n)


def _groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` items linked by ``pairs`` (K, 2)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _relations(
    edges: _Edges, plane: np.ndarray, crossing_pairs: np.ndarray, touching: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Duplicate, overlapping and nested (inner, outer) contour pairs of one plane, each (K, 2).

    ``plane`` gives each contour's plane; ``crossing_pairs`` (K, 2) are the pairs whose
    boundaries cross (overlapping for sure), ``touching`` (K, 2) those whose boundaries touch.
    """
    n = len(plane)
    starts = np.cumsum(edges.sizes) - edges.sizes
    found = [
        np.sort(np.column_stack(p), axis=1)
        for p in box_pairs(np.minimum.reduceat(edges.a, starts), np.maximum.reduceat(edges.a, starts), plane)
    ]
    candidates = _unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), np.int64)
    crossing = np.isin(candidates[:, 0] * n + candidates[:, 1], crossing_pairs[:, 0] * n + crossing_pairs[:, 1])
    candidates = candidates[~crossing]
    if not len(candidates):
        return np.zeros((0, 2), np.int64), crossing_pairs, np.zeros((0, 2), np.int64)
    # contours whose boundaries touch another's are located by all their vertices and edge
    # midpoints; any other one lies wholly inside or outside each neighbour: one vertex decides
    involved = np.zeros(n, bool)
    involved[candidates.ravel()] = True
    full = np.zeros(n, bool)
    touch = np.isin(candidates[:, 0] * n + candidates[:, 1], touching[:, 0] * n + touching[:, 1])
    full[candidates[touch].ravel()] = True
    mine, single = full[edges.owner], starts[involved & ~full]
    points = np.concatenate([edges.a[mine], (edges.a[mine] + edges.b[mine]) / 2, edges.a[single]])
    point_owner = np.concatenate([np.tile(edges.owner[mine], 2), edges.owner[single]])
    tested = np.where(full, 2 * edges.sizes, 1)
    mine = involved[edges.owner]
    subset = _Edges(edges.a[mine], edges.b[mine], edges.owner[mine], edges.position[mine], edges.sizes)
    keys, inside, on = _locate(points, point_owner, subset, plane)
    keys, inside, on = np.append(keys, np.iinfo(np.int64).max), np.append(inside, 0), np.append(on, 0)

    def counts(c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points of c strictly inside d, and strictly outside d."""
        at = np.searchsorted(keys, c * n + d)  # the sentinel key ends the search
        hit = keys[at] == c * n + d
        n_in, n_on = np.where(hit, inside[at], 0), np.where(hit, on[at], 0)
        return n_in, tested[c] - n_in - n_on

    c, d = candidates[:, 0], candidates[:, 1]
    in_cd, out_cd = counts(c, d)
    in_dc, out_dc = counts(d, c)
    duplicate = (out_cd == 0) & (out_dc == 0)
    mixed = ~duplicate & (((in_cd > 0) & (out_cd > 0)) | ((in_dc > 0) & (out_dc > 0)))
    plain = ~duplicate & ~mixed
    nested = np.concatenate([candidates[plain & (out_cd == 0)], candidates[plain & (out_dc == 0)][:, ::-1]])
    return candidates[duplicate], np.concatenate([crossing_pairs, candidates[mixed]]), nested


def resolve_planes(planes: Sequence[Sequence[np.ndarray]]) -> tuple[PlaneShape, ...]:
    """Classify each plane's contours ((M, 2) arrays of (u, w)) and compute its drawn area.

    All planes are examined together (vectorised); only contours whose bounding boxes meet are
    compared.
    """
    polygons = [p for contours in planes for p in contours]
    n = len(polygons)
    plane = np.repeat(np.arange(len(planes)), [len(c) for c in planes])
    edges = _Edges.of(polygons)
    m, k, crossing_u, touching = _crossings(edges, plane)
    first, second = edges.owner[m], edges.owner[k]
    self_crossing = np.zeros(n, bool)
    self_crossing[first[first == second]] = True
    between = first != second
    crossing_pairs = _unique(np.sort(np.column_stack([first[between], second[between]]), axis=1), axis=0)
    duplicate, overlap, nested = _relations(edges, plane, crossing_pairs, touching)

    kept = np.ones(n, bool)
    if len(duplicate):
        label = _groups(n, duplicate)
        kept[:] = False
        kept[np.unique(label, return_index=True)[1]] = True  # the first contour of each group
    overlap = overlap[kept[overlap[:, 0]] & kept[overlap[:, 1]]]
    cluster = _groups(n, overlap) if len(overlap) else np.arange(n)
    union = np.zeros(n, bool)
    union[cluster[kept & self_crossing]] = True
    union |= np.bincount(cluster[kept], minlength=n) > 1
    nested = nested[kept[nested[:, 0]] & kept[nested[:, 1]]]
    nested = _unique(cluster[nested], axis=0) if len(nested) else np.zeros((0, 2), np.int64)
    depth = np.bincount(nested[nested[:, 0] != nested[:, 1], 0], minlength=n)

    area = np.abs(_signed_areas(edges, n))
    kept_index = np.flatnonzero(kept)
    kept_index = kept_index[np.argsort(cluster[kept_index], kind="stable")]
    labels, starts = np.unique(cluster[kept_index], return_index=True)
    regions: list[list[Region]] = [[] for _ in planes]
    for label, member in zip(labels, np.split(kept_index, starts[1:])):
        polys = tuple(polygons[c] for c in member)
        if union[label]:
            region_area = _union_area(polys, crossing_u[np.isin(first, member)])
        else:
            region_area = float(area[member[0]])
        regions[plane[member[0]]].append(Region(polys, bool(union[label]), int(depth[label]), region_area))
    found: list[set[Kind]] = [set() for _ in planes]
    for kind, where in (
        (Kind.DUPLICATE, plane[duplicate[:, 0]]),
        (Kind.OVERLAP, plane[overlap[:, 0]]),
        (Kind.SELF_CROSSING, plane[kept & self_crossing]),
    ):
        for p in _unique(where):
            found[p].add(kind)
    return tuple(
        PlaneShape(tuple(r), max(sum((-1) ** x.depth * x.area for x in r), 0.0), frozenset(f))
        for r, f in zip(regions, found)
    )


def resolve_plane(polygons: Sequence[np.ndarray]) -> PlaneShape:
    """:func:`resolve_planes` for one plane."""
    return resolve_planes([polygons])[0]
