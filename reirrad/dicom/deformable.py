"""DICOM Deformable Spatial Registration -> a point map from the registered frame into a source frame.

DICOM PS3.3 C.20.3 (Deformable Spatial Registration Module, SOP Class 1.2.840.10008.5.1.4.1.1.66.3).
The instance's own FrameOfReferenceUID is the Registered RCS. Each item of
DeformableRegistrationSequence names a Source RCS (SourceFrameOfReferenceUID) and, per C.20.3.1.1,
is applied to Registered RCS coordinates in this order: the Pre Deformation Matrix, then the
deformation offset of the grid point, then the Post Deformation Matrix; "the resulting coordinate
addresses the sample point within the Source RCS":

    p_source = M_post @ (M_pre @ p_registered + D(p_registered))        (homogeneous, D with w = 0)

The deformation grid (DeformableRegistrationGridSequence) is placed in the Registered RCS by
ImagePositionPatient (the first vector's centre), ImageOrientationPatient (row and column direction
cosines; the third axis is their cross product), GridResolution (mm, X\\Y\\Z) and GridDimensions
(X\\Y\\Z). VectorGridData holds float32 (dx, dy, dz) triplets in mm, row by row left to right, top to
bottom, plane after plane (C.20.3.1.3); (NaN, NaN, NaN) means undefined there. Between vector centres
the standard leaves interpolation to the implementation: trilinear here.

So the map reads registered (reference-course) points and returns the source (prior-course) points
whose dose belongs there: the :class:`reirrad.mapping.PointMap` direction, with the REG's own frame
the reference course's and the item's source frame the prior course's. A point outside the field
(beyond half a grid spacing past the outer vectors) or on an undefined vector is refused, with how
much of the mapped points that is.

Field checks (AAPM TG-132, Brock et al. Med Phys 2017, recommends the Jacobian determinant of a
deformation as a check of its physical plausibility): :meth:`DeformableMap.jacobian_over` computes the
determinant of the whole map (matrices and field; central differences of the vectors, one-sided next
to undefined vectors and at the field's edges, mm/mm) at every field vector the given points are
interpolated from. A determinant <= 0 means the map folds
(turns a neighbourhood inside out, two places onto one): no anatomy does that, and the dose mapped
there is meaningless, so such a field is refused over the evaluated structures
(:meth:`FieldPointMap.refuse_folding`). How large a local volume change is flagged (not refused) is
a flag rule's parameter (``deformation_volume_change`` in constraints/flags.toml).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import DeformableSpatialRegistrationStorage as DEFORMABLE_REGISTRATION_SOP_CLASS

from reirrad.dicom.io import numbers, read_dataset, require, uid
from reirrad.dvh import trilinear
from reirrad.errors import InputError
from reirrad.grid import Grid, corner_centres_mm

MATRIX_TYPES = ("RIGID", "RIGID_SCALE", "AFFINE")  # DICOM C.20.2.1.2
_ORTHONORMAL = 1e-4
# A Jacobian determinant at or below this folds the map (orientation reversed or volume collapsed to
# nothing): mathematics, not a clinical tolerance. The flagged volume-change range is in flags.toml.
FOLDING_DETERMINANT = 0.0
_POINT_CHUNK = 200_000  # points per step of the Jacobian region (bounds its index arrays)
_SLAB_VECTORS = 131_072  # field vectors per step of the determinant (bounds its memory to a slab's 3x3 gradients)


@dataclass(frozen=True)
class JacobianRange:
    """The Jacobian determinant of a deformable map (source volume per registered volume, mm3/mm3)
    at the field vectors a region's points are interpolated from."""

    minimum: float
    maximum: float
    folded: int  # vectors where the determinant is <= FOLDING_DETERMINANT
    vectors: int  # defined vectors looked at (those with no defined neighbour along an axis have no determinant)

    @property
    def folded_share(self) -> float:
        """The share of the vectors looked at where the map folds."""
        return self.folded / self.vectors if self.vectors else 0.0


@dataclass(frozen=True, eq=False)
class DeformableMap:
    """Registered-frame points (N, 3, mm) -> source-frame points (N, 3, mm) through one item of a
    Deformable Spatial Registration (see the module docstring). ``vectors_mm`` (Z, Y, X, 3) on
    ``grid``, undefined vectors stored as 0 with ``undefined`` (Z, Y, X) 1.0 there; both None when
    the item has no deformation grid (its matrices only)."""

    label: str
    path: Path
    pre: np.ndarray
    post: np.ndarray
    grid: Grid | None = None
    vectors_mm: np.ndarray | None = None
    undefined: np.ndarray | None = None

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        points = np.asarray(points_mm, dtype=float).reshape(-1, 3)
        moved = _apply(self.pre, points)
        if self.grid is not None and self.vectors_mm is not None:
            index = self._field_index(points)
            moved += np.column_stack([trilinear(self.vectors_mm[..., axis], index) for axis in range(3)])
        return _apply(self.post, moved)

    def outside_field(self, points_mm: np.ndarray) -> np.ndarray:
        """(N,) bool: where the field gives no offset (beyond its grid, or an undefined vector)."""
        if self.grid is None or self.vectors_mm is None:
            return np.zeros(len(points_mm), dtype=bool)
        index = self.grid.to_index(np.asarray(points_mm, dtype=float).reshape(-1, 3))
        upper = np.asarray(self.grid.shape) - 1
        outside = np.any((index < -0.5) | (index > upper + 0.5), axis=1)
        if self.undefined is not None and self.undefined.any():
            outside[~outside] = trilinear(self.undefined, index[~outside]) > 0.0  # an undefined corner weighs in
        return outside

    def jacobian_over(self, points_mm: np.ndarray | Iterable[np.ndarray]) -> JacobianRange | None:
        """The map's Jacobian determinant at every field vector the points inside the field are
        trilinearly interpolated from (the 8 corners of each point's cell); None without a field or
        without such a vector. ``points_mm``: (N, 3) mm, or several such arrays (read one at a time).
        Derivatives are central differences of the vectors, mm/mm, one-sided where a neighbour is
        undefined or beyond the field's edge (the cell a point is interpolated in has 8 defined corners,
        so each of them has a derivative along every axis)."""
        if self.grid is None or self.vectors_mm is None:
            return None
        used = np.zeros(self.grid.shape, dtype=bool)
        for array in [points_mm] if isinstance(points_mm, np.ndarray) else points_mm:
            points = np.asarray(array, dtype=float).reshape(-1, 3)
            for start in range(0, len(points), _POINT_CHUNK):
                chunk = points[start : start + _POINT_CHUNK]
                self._mark_cells(self.grid.to_index(chunk[~self.outside_field(chunk)]), used)
        return self._jacobian_range(used)

    def jacobian_in_boxes(self, boxes_mm: list[tuple[np.ndarray, np.ndarray]]) -> JacobianRange | None:
        """As :meth:`jacobian_over`, at every field vector a point within any of the boxes (lowest and
        highest corner, mm, registered frame) is interpolated from."""
        if self.grid is None or self.vectors_mm is None:
            return None
        upper = np.asarray(self.grid.shape) - 1
        inside = np.zeros(self.grid.shape, dtype=bool)
        for low_mm, high_mm in boxes_mm:
            corners = np.array(np.meshgrid(*zip(low_mm, high_mm), indexing="ij")).reshape(3, -1).T
            index = self.grid.to_index(corners)
            low = np.clip(np.floor(index.min(axis=0)), 0, upper).astype(int)
            high = np.clip(np.ceil(index.max(axis=0)), 0, upper).astype(int)
            if np.all(index.max(axis=0) >= -0.5) and np.all(index.min(axis=0) <= upper + 0.5):
                inside[low[0] : high[0] + 1, low[1] : high[1] + 1, low[2] : high[2] + 1] = True
        return self._jacobian_range(inside)

    def _jacobian_range(self, marked: np.ndarray) -> JacobianRange | None:
        """The determinant range at the vectors ``marked`` (bool, the field's shape); None without one
        there. Reduced a slab of frames at a time (memory bounded by the slab, not the region)."""
        box = _bounding_box(marked)
        if box is None:
            return None
        minimum, maximum, folded, vectors = np.inf, -np.inf, 0, 0
        for frames, determinant in self._determinant_slabs(box):
            values = determinant[marked[frames, box[1], box[2]]]
            values = values[np.isfinite(values)]
            if len(values):
                minimum, maximum = min(minimum, float(values.min())), max(maximum, float(values.max()))
                folded += int(np.count_nonzero(values <= FOLDING_DETERMINANT))
                vectors += len(values)
        return JacobianRange(minimum, maximum, folded, vectors) if vectors else None

    def _mark_cells(self, index: np.ndarray, used: np.ndarray) -> None:
        """Set ``used`` (the field's shape) at the vectors trilinear interpolation reads at ``index``."""
        assert self.grid is not None
        shape = np.asarray(self.grid.shape)
        low = np.minimum(np.clip(index, 0, shape - 1).astype(np.int64), np.maximum(shape - 2, 0))
        for offset in np.array(np.meshgrid(*[(0, 1)] * 3, indexing="ij")).reshape(3, -1).T:
            corner = np.minimum(low + offset, shape - 1)
            used[corner[:, 0], corner[:, 1], corner[:, 2]] = True

    def _determinant_slabs(self, box: tuple[slice, slice, slice]) -> Iterator[tuple[slice, np.ndarray]]:
        """det(M_post (M_pre + dD/dp)) over ``box`` (a block of the field), a slab of frames at a time:
        (the slab's frames, its determinants; NaN at undefined vectors and where an axis has no
        derivative, see :func:`_derivative`). The differences reach one vector beyond the box."""
        assert self.grid is not None and self.vectors_mm is not None
        vectors, shape = self.vectors_mm, self.grid.shape
        to_index = np.linalg.inv(self.grid.affine[:3, :3])
        area = (box[1].stop - box[1].start) * (box[2].stop - box[2].start)
        step = max(1, _SLAB_VECTORS // area)
        for first in range(box[0].start, box[0].stop, step):
            slab = (slice(first, min(first + step, box[0].stop)), box[1], box[2])
            gradient = np.empty((*_block_shape(slab), 3, 3))  # dD_c / d index_a
            for axis in range(3):
                reach = list(slab)
                reach[axis] = slice(max(slab[axis].start - 1, 0), min(slab[axis].stop + 1, shape[axis]))
                inner = [slice(None)] * 3
                inner[axis] = slice(slab[axis].start - reach[axis].start, slab[axis].stop - reach[axis].start)
                derivative = _derivative(vectors[tuple(reach)], self._defined(tuple(reach)), axis)
                gradient[..., axis] = derivative[tuple(inner)]
            gradient = gradient @ to_index  # dD_c / dp_a
            gradient += self.pre[:3, :3]
            determinant = np.linalg.det(gradient) * np.linalg.det(self.post[:3, :3])
            determinant[~self._defined(slab)] = np.nan
            yield slab[0], determinant

    def _defined(self, block: tuple[slice, ...]) -> np.ndarray:
        """Where the field's vectors are defined, over a block (bool)."""
        if self.undefined is None:
            return np.ones(_block_shape(block), dtype=bool)
        return self.undefined[block] == 0.0

    def _field_index(self, points: np.ndarray) -> np.ndarray:
        """The points' continuous indices in the field; InputError naming how many lie outside it."""
        assert self.grid is not None
        missing = self.outside_field(points)
        if missing.any():
            reach = self._distance_outside_mm(points[missing])
            raise InputError(
                self.path,
                f"{self.label}: {int(missing.sum())} of {len(points)} mapped points "
                f"({100.0 * missing.mean():.2f} %) lie outside its deformation field or on undefined vectors "
                f"(up to {reach:.1f} mm beyond the field); the field must cover every evaluated structure",
            )
        return self.grid.to_index(points)

    def _distance_outside_mm(self, points: np.ndarray) -> float:
        """Largest distance (mm) of ``points`` beyond the field's extent (0 for undefined vectors inside)."""
        assert self.grid is not None
        index = self.grid.to_index(points)
        upper = np.asarray(self.grid.shape) - 0.5
        beyond = np.maximum(np.maximum(-0.5 - index, index - upper), 0.0) * np.asarray(self.grid.spacing_mm)
        return float(np.linalg.norm(beyond, axis=1).max(initial=0.0))


@dataclass(frozen=True, eq=False)
class FieldPointMap:
    """A course's :class:`reirrad.mapping.PointMap` through a deformable registration.

    Where the field gives no offset (outside its grid, or on undefined vectors) the mapped point is
    NaN, which the evaluation counts as outside every dose grid. The evaluated structures are checked
    against the field before anything is evaluated (:meth:`missing_fraction`): a structure the field
    does not cover is refused, not summed with 0 Gy. Whole-grid outputs (export, figures, the overlap
    flag) get no prior dose there.
    """

    field: DeformableMap

    @property
    def label(self) -> str:
        return self.field.label

    @property
    def path(self) -> Path:
        return self.field.path

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        points = np.asarray(points_mm, dtype=float).reshape(-1, 3)
        out = np.full(points.shape, np.nan)
        inside = ~self.field.outside_field(points)
        if inside.any():
            out[inside] = self.field(points[inside])
        return out

    def missing_fraction(self, points_mm: np.ndarray, weights: np.ndarray) -> float:
        """The weighted fraction of ``points_mm`` (reference frame) where the field gives no offset."""
        outside = self.field.outside_field(np.asarray(points_mm, dtype=float).reshape(-1, 3))
        total = float(np.sum(weights))
        if total <= 0.0:
            return float(outside.mean()) if len(outside) else 0.0
        return float(np.sum(np.asarray(weights)[outside]) / total)

    def refuse_folding(self, points_mm: np.ndarray | Iterable[np.ndarray]) -> JacobianRange | None:
        """The Jacobian determinant range over the field vectors ``points_mm`` (reference frame, mm;
        the evaluated structures' samples) are mapped with; InputError naming the file when the map
        folds at any of them (determinant <= 0), with the share of folded vectors."""
        return self._refused_if_folded(self.field.jacobian_over(points_mm), "the evaluated structures")

    def refuse_folding_in(self, boxes_mm: list[tuple[np.ndarray, np.ndarray]], what: str) -> JacobianRange | None:
        """As :meth:`refuse_folding`, over the field vectors within the boxes (lowest and highest corner,
        mm, reference frame) of ``what`` (named in the message)."""
        return self._refused_if_folded(self.field.jacobian_in_boxes(boxes_mm), what)

    def checked_notes(self, boxes_mm: list[tuple[np.ndarray, np.ndarray]], what: str) -> tuple[str, ...]:
        """For outputs without flags (``reirrad dvh``, ``reirrad sum``): refuse a field folding within the
        boxes (:meth:`refuse_folding_in`); a note when its volume change there leaves the range of the
        ``deformation_volume_change`` flag rule (constraints/flags.toml), else none."""
        from reirrad.flags import load_flag_rules

        found = self.refuse_folding_in(boxes_mm, what)
        rule = next(r for r in load_flag_rules().rules if r.kind == "deformation_volume_change")
        below, above = float(rule.params["below"]), float(rule.params["above"])
        if found is None or below <= found.minimum <= found.maximum <= above:
            return ()
        note = (
            f"{self.label}: the deformation changes local volume within {what} by a Jacobian determinant of "
            f"{found.minimum:.2f} to {found.maximum:.2f} (screened range {below:g} to {above:g}, flag rule "
            f"{rule.id}); review the deformation there (AAPM TG-132)"
        )
        return (note,)

    def _refused_if_folded(self, found: JacobianRange | None, what: str) -> JacobianRange | None:
        if found is not None and found.folded:
            raise InputError(
                self.path,
                f"{self.label}: the deformation folds (Jacobian determinant <= {FOLDING_DETERMINANT:g}) at "
                f"{found.folded} of the {found.vectors} field vectors used for {what} "
                f"({100.0 * found.folded_share:.2f} %; determinant {found.minimum:.3g} to {found.maximum:.3g}): "
                "a folding field maps two places onto one, and the dose mapped there means nothing",
            )
        return found

    def approximate_inverse(self) -> tuple[np.ndarray, float]:
        """Course frame -> reference frame as the inverse of the matrices alone, and a bound (mm) on
        how far the field's offsets move a point from it (for boxes only, never for dose)."""
        vectors = self.field.vectors_mm
        largest = 0.0 if vectors is None else float(np.linalg.norm(vectors, axis=-1).max(initial=0.0))
        spread = float(np.linalg.norm(np.linalg.inv(self.field.pre[:3, :3]), ord=2))
        return np.linalg.inv(self.field.post @ self.field.pre), largest * spread


def grid_field_notes(point_maps: Sequence[object], grid: Grid) -> tuple[str, ...]:
    """:meth:`FieldPointMap.checked_notes` of every deformation field among ``point_maps`` over the box
    of ``grid`` (reference frame): for whole-grid outputs (``reirrad sum``)."""
    corners = corner_centres_mm(grid)
    box = [(corners.min(axis=0), corners.max(axis=0))]
    fields = [m for m in point_maps if isinstance(m, FieldPointMap)]
    return tuple(note for m in fields for note in m.checked_notes(box, "the reference dose grid"))


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The smallest block (3 slices) holding every True of ``mask`` (3-D); None without one."""
    box = []
    for axis in range(3):
        along = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if not len(along):
            return None
        box.append(slice(int(along[0]), int(along[-1]) + 1))
    return box[0], box[1], box[2]


def _block_shape(block: tuple[slice, ...]) -> tuple[int, ...]:
    return tuple(int(s.stop - s.start) for s in block)


def _derivative(vectors: np.ndarray, defined: np.ndarray, axis: int) -> np.ndarray:
    """d ``vectors`` (Z, Y, X, 3) / d index along ``axis``: the central difference where both neighbours
    are defined, one-sided where one is (as at the block's ends), NaN where neither is; 0 along an axis
    of one vector (a planar field)."""
    count = vectors.shape[axis]
    if count == 1:
        return np.zeros_like(vectors)
    low, high = [slice(None)] * 3, [slice(None)] * 3
    low[axis], high[axis] = slice(0, count - 1), slice(1, count)
    both = defined[tuple(low)] & defined[tuple(high)]  # the step from each vector to the next is known
    step = np.diff(vectors, axis=axis)
    step[~both] = 0.0
    total, steps = np.zeros_like(vectors), np.zeros(defined.shape)
    for end in (low, high):
        total[tuple(end)] += step
        steps[tuple(end)] += both
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / steps[..., None]


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.einsum("ij,nj->ni", matrix[:3, :3], points) + matrix[:3, 3]


@dataclass(frozen=True, eq=False)
class DeformableRegistration:
    """One Deformable Spatial Registration file: its own (registered) frame and a map per source frame."""

    path: Path
    sop_instance_uid: str
    frame_of_reference_uid: str
    maps: dict[str, DeformableMap]  # SourceFrameOfReferenceUID -> registered -> source map

    def relates(self, reference_frame: str, source_frame: str) -> bool:
        """True when this file maps ``reference_frame`` (its own frame) into ``source_frame``."""
        return reference_frame == self.frame_of_reference_uid and source_frame in self.maps

    def map_to(self, reference_frame: str, source_frame: str) -> DeformableMap | None:
        """The map from ``reference_frame`` into ``source_frame``; None when this file does not relate
        them. A file whose own frame is not the reference frame is refused: a deformation is used
        only in the direction it is stored (inverting a field is not exact)."""
        if source_frame not in self.maps:
            return None
        if reference_frame != self.frame_of_reference_uid:
            raise InputError(
                self.path,
                f"deformable registration maps frame {self.frame_of_reference_uid} into {source_frame}, not the "
                f"reference course's frame {reference_frame}: export it with the reference (newest) course's CT "
                "as the registered frame",
            )
        return self.maps[source_frame]


def read_deformable_registration(path: str | Path) -> DeformableRegistration:
    """Read a Deformable Spatial Registration file (pydicom) into one map per source frame."""
    return deformable_from_dataset(read_dataset(path), path)


def deformable_from_dataset(ds: pydicom.Dataset, path: str | Path) -> DeformableRegistration:
    """The maps of a read Deformable Spatial Registration dataset (``path`` names it in messages)."""
    path = Path(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class != DEFORMABLE_REGISTRATION_SOP_CLASS:
        raise InputError(
            path,
            f"not a Deformable Spatial Registration file (SOP Class {sop_class or 'missing'})",
        )
    own_frame = uid(ds, "FrameOfReferenceUID", path)
    sop_uid = uid(ds, "SOPInstanceUID", path)
    label = "deformable registration" + _origin(ds) + f" REG {sop_uid}"
    maps: dict[str, DeformableMap] = {}
    items = require(ds, "DeformableRegistrationSequence", path)
    for number, item in enumerate(items, start=1):
        where = f"deformable registration item {number}: "
        source = uid(item, "SourceFrameOfReferenceUID", path, where)
        if source in maps:
            raise InputError(path, f"{where}source frame {source} is registered twice")
        grid, vectors = _field(item, path, where, little_endian=ds.is_little_endian is not False)
        undefined = None if vectors is None else np.isnan(vectors).any(axis=-1).astype(float)
        maps[source] = DeformableMap(
            label=label,
            path=path,
            pre=_matrix(item, "PreDeformationMatrixRegistrationSequence", path, where),
            post=_matrix(item, "PostDeformationMatrixRegistrationSequence", path, where),
            grid=grid,
            vectors_mm=None if vectors is None else np.nan_to_num(vectors, nan=0.0),
            undefined=undefined,
        )
    if not any(m.vectors_mm is not None for m in maps.values()):
        raise InputError(
            path,
            "no item has a DeformableRegistrationGridSequence; a rigid registration is a REG",
        )
    return DeformableRegistration(path, sop_uid, own_frame, maps)


def _origin(ds) -> str:
    """ " (ContentCreatorName / SeriesDescription)" as far as the file names them."""
    parts = [str(ds.get(k) or "").strip() for k in ("ContentCreatorName", "SeriesDescription")]
    parts = [p for p in parts if p]
    return f" ({' / '.join(parts)})" if parts else ""


def _matrix(item, keyword: str, path: Path, where: str) -> np.ndarray:
    """The 4x4 matrix of a Pre/Post Deformation Matrix Registration Sequence (identity when absent)."""
    sequence = item.get(keyword)
    if not sequence:
        return np.eye(4)
    if len(sequence) != 1:
        raise InputError(path, f"{where}{keyword} must hold one item, has {len(sequence)}")
    entry = sequence[0]
    kind = str(entry.get("FrameOfReferenceTransformationMatrixType", "")).upper()
    if kind not in MATRIX_TYPES:
        raise InputError(
            path,
            f"{where}{keyword}: matrix type {kind or 'missing'} is not one of {', '.join(MATRIX_TYPES)}",
        )
    matrix = numbers(entry, "FrameOfReferenceTransformationMatrix", path, 16, f"{where}{keyword} ").reshape(4, 4)
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9) or abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
        raise InputError(
            path,
            f"{where}{keyword}: not an invertible affine matrix (last row {matrix[3].tolist()})",
        )
    return matrix


def _field(item, path: Path, where: str, little_endian: bool) -> tuple[Grid | None, np.ndarray | None]:
    """The deformation grid of an item and its vectors (Z, Y, X, 3) in mm; (None, None) without one."""
    grids = item.get("DeformableRegistrationGridSequence")
    if not grids:
        return None, None
    if len(grids) != 1:
        raise InputError(
            path,
            f"{where}DeformableRegistrationGridSequence must hold one item, has {len(grids)}",
        )
    entry = grids[0]
    iop = numbers(entry, "ImageOrientationPatient", path, 6, where)
    row, column = iop[:3], iop[3:]
    if not (
        np.isclose(np.linalg.norm(row), 1.0, atol=_ORTHONORMAL)
        and np.isclose(np.linalg.norm(column), 1.0, atol=_ORTHONORMAL)
        and abs(row @ column) < _ORTHONORMAL
    ):
        raise InputError(
            path,
            f"{where}ImageOrientationPatient {iop.tolist()} is not two orthonormal directions",
        )
    origin = numbers(entry, "ImagePositionPatient", path, 3, where)
    dimensions = numbers(entry, "GridDimensions", path, 3, where)
    resolution = numbers(entry, "GridResolution", path, 3, where)
    if np.any(dimensions < 1) or np.any(dimensions != np.round(dimensions)) or np.any(resolution <= 0):
        raise InputError(
            path,
            f"{where}GridDimensions {dimensions.tolist()} / GridResolution {resolution.tolist()} "
            "must be positive (integer dimensions)",
        )
    columns, rows, planes = (int(v) for v in dimensions)
    raw = require(entry, "VectorGridData", path)
    dtype = np.dtype("<f4" if little_endian else ">f4")
    vectors = np.frombuffer(raw, dtype=dtype) if isinstance(raw, bytes | bytearray) else np.asarray(raw, dtype=float)
    expected = columns * rows * planes * 3
    if vectors.size != expected:
        raise InputError(
            path,
            f"{where}VectorGridData holds {vectors.size} values; GridDimensions "
            f"{columns}x{rows}x{planes} need {expected}",
        )
    if np.isinf(vectors).any():
        raise InputError(path, f"{where}VectorGridData holds infinite offsets")
    grid = Grid(
        origin_mm=_triple(origin),
        row_direction=_triple(row),
        column_direction=_triple(column),
        frame_direction=_triple(np.cross(row, column)),
        spacing_mm=(float(resolution[2]), float(resolution[1]), float(resolution[0])),
        shape=(planes, rows, columns),
    )
    return grid, vectors.astype(float).reshape(planes, rows, columns, 3)


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    return float(values[0]), float(values[1]), float(values[2])
