"""A dose and a structure set used together (``reirrad dvh``): one patient, one frame of reference.

Both files must name the same patient (PatientID, see :mod:`reirrad.dicom.identity`) unless the
user accepts another one, and the same frame of reference: a missing frame is refused, never
taken as "the same". A dose in another frame is refused unless a rigid REG relating the two
frames is given; the dose is then resampled (trilinear) into the structure set's frame. The
target lattice is the dose's own, moved by the registration (its axes snapped to the patient
axes they end up nearest), cut to the largest box whose voxel centres all lie inside the moved
dose grid: structure parts beyond it count as outside the dose grid, exactly as for an unmoved
dose. A pure translation moves the lattice exactly, so no value changes.

A Deformable Spatial Registration (by its SOP class) whose registered frame is the structure set's
is used the same way, through its field (:mod:`reirrad.dicom.deformable`): the lattice is the dose's
moved by the inverse of the field's matrices and its median offset (so a uniform field moves it
exactly, as a translation), every lattice voxel centre is mapped through the field into the dose,
and the box is cut, face by face, until every voxel centre has a field offset and lies inside the
dose grid. Structure parts beyond the box (outside the field or the dose) count as outside it, and
their notes say so (:attr:`DosePair.extent`). An item of matrices only (no deformation grid) moves
the dose as a rigid REG does. A field folding within the structures' boxes is refused; a volume
change beyond the flag rule's range is noted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reirrad.dicom.deformable import FieldPointMap
from reirrad.dicom.discover import require_frame
from reirrad.dicom.dose import DoseGrid, read_dose
from reirrad.dicom.identity import read_identity
from reirrad.dicom.registration import Registration, course_point_map, read_any_registration, reference_to_moving
from reirrad.dicom.structures import StructureSet, read_structures
from reirrad.dvh import trilinear
from reirrad.errors import Hint, InputError, Remedy
from reirrad.grid import Grid, Vec3, corner_centres_mm, inside_grid, resample, shape3, transform_points, vec3
from reirrad.masks import DOSE_GRID

_SNAP_TOLERANCE = 0.7  # a moved axis must be within ~45 degrees of one patient axis (cos 45 = 0.707)
_MAX_TRIM_VOXELS = 3  # the inscribed box is shrunk at most this often before giving up
_SLAB_VOXELS = 1_000_000  # lattice voxels mapped through a deformation field per step


@dataclass(frozen=True, eq=False)
class DosePair:
    """A dose on the structure set's frame of reference, the structure set, and what was done.
    ``extent`` names what the dose grid is, for the notes on structure parts outside it (the part a
    deformation field covers when the dose was mapped through one)."""

    dose: DoseGrid
    structures: StructureSet
    notes: tuple[str, ...] = ()
    extent: str = DOSE_GRID


def load_pair(
    rtdose: str | Path,
    rtstruct: str | Path,
    registration: str | Path | None = None,
    accept_other_patient: bool = False,
) -> DosePair:
    """Read an RTDOSE and an RTSTRUCT and put the dose on the structure set's frame.

    Refused (InputError): files of two patients (unless ``accept_other_patient``), a missing
    frame of reference, different frames without a ``registration`` relating them.
    """
    dose, structures = read_dose(rtdose), read_structures(rtstruct)
    notes = _patient_notes(Path(rtdose), structures, accept_other_patient)
    dose_frame, frame = dose.grid.frame_of_reference_uid, structures.frame_of_reference_uid
    for path, uid in ((dose.path, dose_frame), (structures.path, frame)):
        require_frame(uid, path)
    if dose_frame == frame:
        if registration is not None:
            notes += (f"{dose.path} and {structures.path} share frame of reference {frame}; registration not used",)
        return DosePair(dose, structures, notes)
    if registration is None:
        raise InputError(
            dose.path,
            f"frame of reference {dose_frame} differs from {frame} of {structures.path}",
            Hint(Remedy.REGISTRATION, option="--registration"),
            how=": {} relating them, or use the structure set drawn on this dose's planning CT",
        )
    found, extent = read_any_registration(registration), DOSE_GRID
    if isinstance(found, Registration):
        matrix, label = reference_to_moving(frame, dose_frame, [found], Path(registration))
        moved = dose_in_frame(dose, frame, matrix, Path(registration))
        how = "trilinear"
    else:
        point_map = course_point_map(frame, dose_frame, [], [found], Path(registration))
        assert isinstance(point_map, FieldPointMap)
        label, how = point_map.label, "trilinear through its item's matrices (no deformation field)"
        if point_map.field.grid is not None:
            how = "trilinear through its deformation field"
            extent = f"the part of the dose grid covered by the deformation field of {label}"
        notes += _field_notes(point_map, structures)
        moved = dose_through_field(dose, frame, point_map)
    notes += (
        (
            f"dose mapped from frame {dose_frame} into {frame} through {label} ({registration}); "
            f"{how} on a {moved.grid.shape[::-1]} voxel grid (columns, rows, frames)"
        ),
    )
    return DosePair(moved, structures, notes, extent)


def _field_notes(point_map: FieldPointMap, structures: StructureSet) -> tuple[str, ...]:
    """Refuse a field folding within the structures' boxes; a note on a volume change beyond the
    flag rule's range (:meth:`FieldPointMap.checked_notes`)."""
    boxes = []
    for roi in structures.rois:
        if not roi.is_empty:
            points = np.concatenate([c.points_mm for c in roi.closed_contours])
            boxes.append((points.min(axis=0), points.max(axis=0)))
    return point_map.checked_notes(boxes, "the structures' boxes")


def dose_through_field(dose: DoseGrid, frame: str, point_map: FieldPointMap) -> DoseGrid:
    """``dose`` sampled (trilinear) into frame ``frame`` through a deformation field ``point_map``
    (frame ``frame`` -> the dose's frame), on the dose's lattice moved by the field's approximate
    inverse and cut to a box whose every voxel centre the field and the dose grid cover. An item of
    matrices only (no deformation grid) is an affine map: the dose is resampled as through a rigid REG."""
    where = point_map.path
    if point_map.field.grid is None:
        return dose_in_frame(dose, frame, point_map.field.post @ point_map.field.pre, where)
    inverse, _ = point_map.approximate_inverse()
    to_frame = _offset_removed(inverse, point_map)
    lattice = _moved_lattice(dose.grid, to_frame, frame, where)
    target = _field_box(lattice, point_map, where)
    target.require_memory("the deformed dose grid")
    values, covered = np.zeros(target.shape), np.zeros(target.shape, dtype=bool)
    step = max(1, _SLAB_VOXELS // (target.shape[1] * target.shape[2]))
    for first in range(0, target.shape[0], step):  # a slab of frames at a time: bounded index arrays
        frames = slice(first, min(first + step, target.shape[0]))
        slab = np.indices((frames.stop - frames.start, *target.shape[1:])).reshape(3, -1).T + [first, 0, 0]
        index = dose.grid.to_index(point_map(target.to_patient(slab.astype(float))))
        inside = np.isfinite(index).all(axis=1)
        inside[inside] = inside_grid(index[inside], dose.grid.shape)
        sampled = np.zeros(len(index))
        sampled[inside] = trilinear(dose.dose_gy, index[inside])
        values[frames], covered[frames] = sampled.reshape(values[frames].shape), inside.reshape(values[frames].shape)
    start, stop = _covered_box(covered, where)
    box = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    origin = vec3(target.to_patient(start[None, :].astype(float))[0])
    return replace(dose, grid=replace(target, origin_mm=origin, shape=shape3(stop - start)), dose_gy=values[box].copy())


def _offset_removed(inverse: np.ndarray, point_map: FieldPointMap) -> np.ndarray:
    """``inverse`` (course -> reference frame, the field's matrices inverted) after taking off the
    field's median offset, carried through the post-deformation matrix: exact for a uniform field."""
    field = point_map.field
    if field.vectors_mm is None:
        return inverse
    defined = field.vectors_mm.reshape(-1, 3)
    if field.undefined is not None:
        defined = defined[field.undefined.reshape(-1) == 0.0]
    shift = np.eye(4)
    if len(defined):
        shift[:3, 3] = -(field.post[:3, :3] @ np.median(defined, axis=0))
    return inverse @ shift


def _field_box(lattice: Grid, point_map: FieldPointMap, where: Path) -> Grid:
    """``lattice`` cut to the box of its voxels within the field's extent (by its corners)."""
    field = point_map.field.grid
    assert field is not None
    corners = lattice.to_index(corner_centres_mm(field))
    half = 0.5 * np.asarray(field.spacing_mm) / np.asarray(lattice.spacing_mm)  # the field reaches half a vector on
    start = np.maximum(np.ceil(corners.min(axis=0) - half.max() + 1e-6), 0)
    stop = np.minimum(np.floor(corners.max(axis=0) + half.max() - 1e-6), np.asarray(lattice.shape) - 1)
    if np.any(stop < start):
        raise InputError(where, "the deformation field covers none of the dose grid in the structure set's frame")
    origin = lattice.to_patient(start[None, :])[0]
    return replace(lattice, origin_mm=vec3(origin), shape=shape3(stop - start + 1))


def _covered_box(covered: np.ndarray, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """The start and stop (exclusive) indices of a box of ``covered`` voxels only: the face with the
    largest uncovered share is cut off until none is left."""
    start, stop = np.zeros(3, dtype=int), np.asarray(covered.shape)
    while np.all(stop > start):
        box = covered[tuple(slice(int(a), int(b)) for a, b in zip(start, stop))]
        if box.all():
            return start, stop
        faces = [(np.mean(~np.take(box, end, axis=axis)), axis, end) for axis in range(3) for end in (0, -1)]
        _, axis, end = max(faces)
        if end == 0:
            start[axis] += 1
        else:
            stop[axis] -= 1
    raise InputError(where, "the deformed dose grid holds no box of whole voxels in the structure set's frame")


def _patient_notes(rtdose: Path, structures: StructureSet, accept: bool) -> tuple[str, ...]:
    """Refuse a structure set of another patient than the dose's, unless accepted (then noted)."""
    rtstruct = structures.path
    dose_patient = read_identity(rtdose)
    structure_patient = structures.patient or read_identity(rtstruct)  # read with the structures: no second read
    if not (dose_patient.known and structure_patient.known):
        return ("a file names no patient (empty PatientID): whether both are one patient's is not checked",)
    difference = dose_patient.difference(structure_patient)
    if difference is None:
        return ()
    problem = f"{rtstruct} belongs to another patient than {rtdose} ({difference})"
    if not accept:
        raise InputError(rtstruct, f"{problem}; if that is intended, give --accept-other-patient")
    return (f"{problem}: accepted (--accept-other-patient)",)


def dose_in_frame(dose: DoseGrid, frame: str, reference_to_moving_mm: np.ndarray | None, where: Path) -> DoseGrid:
    """``dose`` resampled into frame ``frame``, whose points map into the dose's frame through
    ``reference_to_moving_mm`` (4x4, mm; None: the same frame, nothing to do). ``where`` (the
    registration) is named when the transform cannot be handled."""
    if reference_to_moving_mm is None:
        return dose
    to_frame = np.linalg.inv(reference_to_moving_mm)
    lattice = _moved_lattice(dose.grid, to_frame, frame, where)
    target = _inscribed(lattice, dose.grid, to_frame, where)
    for _ in range(_MAX_TRIM_VOXELS + 1):
        values, covered = resample(dose.dose_gy, dose.grid, target, reference_to_moving_mm)
        if covered.all():
            return replace(dose, grid=target, dose_gy=values)
        target = _trimmed(target)
    raise InputError(where, "the registered dose grid holds no box of whole voxels in the structure set's frame")


def _moved_lattice(grid: Grid, to_frame: np.ndarray, frame: str, where: Path) -> Grid:
    """The dose lattice moved by ``to_frame`` with its axes snapped to the nearest patient axes."""
    directions: list[Vec3] = []
    for direction in (grid.row_direction, grid.column_direction, grid.frame_direction):
        moved = to_frame[:3, :3] @ np.asarray(direction)
        axis = int(np.argmax(np.abs(moved)))
        if abs(moved[axis]) < _SNAP_TOLERANCE:
            raise InputError(where, "rotates the dose grid by about 45 degrees; not supported")
        snapped = np.zeros(3)
        snapped[axis] = np.sign(moved[axis])
        directions.append(vec3(snapped))
    if abs(directions[2][2]) != 1.0 or len({np.argmax(np.abs(d)) for d in directions}) != 3:
        raise InputError(where, "turns the dose planes away from transverse; not supported")
    origin = transform_points(to_frame, np.asarray([grid.origin_mm]))[0]
    row, column, normal = directions
    return Grid(vec3(origin), row, column, normal, grid.spacing_mm, grid.shape, frame)


def _inscribed(lattice: Grid, source: Grid, to_frame: np.ndarray, where: Path) -> Grid:
    """The largest box of ``lattice`` voxels inside the moved ``source`` grid (by its corners).

    Along each axis the box starts after every corner of the moved source's low face and ends
    before every corner of its high face (the axes correspond, as :func:`_moved_lattice` snaps them).
    """
    corners = lattice.to_index(transform_points(to_frame, corner_centres_mm(source)))
    high_face = np.array(np.meshgrid(*[(False, True)] * 3, indexing="ij")).reshape(3, -1).T
    low = np.array([corners[~high_face[:, a], a].max() for a in range(3)])
    high = np.array([corners[high_face[:, a], a].min() for a in range(3)])
    start, stop = np.ceil(low - 1e-6), np.floor(high + 1e-6)
    shape = (stop - start + 1).astype(int)
    if np.any(shape < 1):
        raise InputError(where, "the registered dose grid holds no box of whole voxels in the structure set's frame")
    origin = lattice.to_patient(start[None, :])[0]
    return replace(lattice, origin_mm=vec3(origin), shape=shape3(shape))


def _trimmed(grid: Grid) -> Grid:
    """``grid`` less one voxel on each side of every axis longer than two voxels."""
    cut = np.array([1 if n > 2 else 0 for n in grid.shape])
    origin = grid.to_patient(cut[None, :].astype(float))[0]
    return replace(grid, origin_mm=vec3(origin), shape=shape3(np.array(grid.shape) - 2 * cut))
