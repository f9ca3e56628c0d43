"""DICOM Spatial Registration (REG) -> rigid transforms between frames of reference (mm).

DICOM PS3.3 C.20.2 (Spatial Registration Module): each item of RegistrationSequence names a
FrameOfReferenceUID B and holds a FrameOfReferenceTransformationMatrix M_B that maps a point given
in B into the REG's own frame of reference A (the REG instance's FrameOfReferenceUID):

    p_A = M_B @ p_B            (homogeneous, row-major 4x4)

So a point of frame F maps into frame G through ``inv(M_G) @ M_F`` (M of A itself is the identity).
To sample a moving dose at the voxel centres of a reference grid we need the reference -> moving
direction: ``matrix(reference_frame, moving_frame)``. Export tools disagree on this direction
(SlicerRT #108; plastimatch inverts on export); the standard is followed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.uid import DeformableSpatialRegistrationStorage, SpatialRegistrationStorage

from reirrad.dicom.io import numbers, read_dataset, require, uid, used_elements
from reirrad.errors import InputError

if TYPE_CHECKING:
    from reirrad.dicom.deformable import DeformableRegistration
    from reirrad.mapping import PointMap

SPATIAL_REGISTRATION_SOP_CLASS = SpatialRegistrationStorage
DEFORMABLE_REGISTRATION_SOP_CLASS = DeformableSpatialRegistrationStorage
RIGID_TYPES = ("RIGID", "RIGID_SCALE")
_TOLERANCE = 1e-4  # on rotation orthonormality and determinant
# ContentLabel of the REGs `reirrad register` writes: read back, such a file is named an automatic,
# unreviewed registration wherever it is used (results, header, the review flag), never a plain REG.
AUTOMATIC_REG_LABEL = "AUTOREG"
# What registration_from_dataset reads (RIGID) and, for a deformable file, deformable_from_dataset
# (its DeformableRegistrationSequence decoded whole): the registration readers decode only these
REGISTRATION_ELEMENTS = used_elements(
    {
        "SpecificCharacterSet": None,
        "SOPClassUID": None,
        "SOPInstanceUID": None,
        "Modality": None,
        "FrameOfReferenceUID": None,
        "ContentLabel": None,
        "ContentDescription": None,
        "RegistrationSequence": {
            "FrameOfReferenceUID": None,
            "MatrixRegistrationSequence": {
                "MatrixSequence": {
                    "FrameOfReferenceTransformationMatrixType": None,
                    "FrameOfReferenceTransformationMatrix": None,
                }
            },
        },
        "ContentCreatorName": None,
        "SeriesDescription": None,
        "DeformableRegistrationSequence": None,
    }
)


@dataclass(frozen=True, eq=False)
class Registration:
    """The rigid transforms of one REG file, each mapping its frame into the REG's own frame."""

    path: Path
    sop_instance_uid: str
    frame_of_reference_uid: str
    to_own_frame: dict[str, np.ndarray]  # registered FrameOfReferenceUID -> 4x4 matrix
    automatic: str = ""  # the file's ContentDescription when `reirrad register` wrote it (not reviewed)

    @property
    def label(self) -> str:
        """How reports name this registration."""
        if self.automatic:
            return f"{self.automatic}; REG {self.sop_instance_uid} written by reirrad register"
        return f"REG {self.sop_instance_uid}"

    def _to_own(self, frame: str) -> np.ndarray | None:
        if frame in self.to_own_frame:
            return self.to_own_frame[frame]
        return np.eye(4) if frame == self.frame_of_reference_uid else None

    def matrix(self, from_frame: str, to_frame: str) -> np.ndarray | None:
        """4x4 mapping points of ``from_frame`` into ``to_frame``, or None if not related here."""
        source, target = self._to_own(from_frame), self._to_own(to_frame)
        if source is None or target is None:
            return None
        return np.linalg.solve(target, source)


def read_registration(path: str | Path) -> Registration:
    """Read a rigid Spatial Registration file; refuses deformable and non-rigid matrices.

    Only :data:`REGISTRATION_ELEMENTS` are decoded: a value that cannot be decoded there is an
    InputError, one elsewhere in the file is not read.
    """
    return registration_from_dataset(read_dataset(path, used=REGISTRATION_ELEMENTS), path)


def registration_from_dataset(ds: pydicom.Dataset, path: str | Path) -> Registration:
    """The rigid transforms of a read Spatial Registration dataset (``path`` names it in messages);
    refuses deformable and non-rigid matrices."""
    path = Path(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == DEFORMABLE_REGISTRATION_SOP_CLASS:
        raise InputError(path, "a deformable registration is not supported where a rigid REG is needed")
    if sop_class != SPATIAL_REGISTRATION_SOP_CLASS:
        raise InputError(path, f"not a Spatial Registration file (SOP Class {sop_class or 'missing'})")
    own_frame = uid(ds, "FrameOfReferenceUID", path)
    matrices: dict[str, np.ndarray] = {}
    for number, item in enumerate(require(ds, "RegistrationSequence", path), start=1):
        frame = uid(item, "FrameOfReferenceUID", path, f"registration item {number}: ")
        matrix = _item_matrix(item, path, number)
        if frame in matrices and not np.allclose(matrices[frame], matrix):
            raise InputError(path, f"frame {frame} is registered twice with different matrices")
        matrices[frame] = matrix
    own_matrix = matrices.get(own_frame)
    if own_matrix is not None and not np.allclose(own_matrix, np.eye(4), atol=_TOLERANCE):
        raise InputError(path, "the REG's own frame of reference has a non-identity matrix")
    automatic = ""
    if str(ds.get("ContentLabel", "")) == AUTOMATIC_REG_LABEL:
        automatic = str(ds.get("ContentDescription", "")) or "automatic rigid registration, not reviewed"
        if not automatic.startswith("automatic rigid registration"):
            automatic = f"automatic rigid registration, not reviewed ({automatic})"
    return Registration(path, uid(ds, "SOPInstanceUID", path), own_frame, matrices, automatic)


def read_any_registration(path: str | Path) -> Registration | DeformableRegistration:
    """Read a rigid or (by its SOP class) deformable registration file (only
    :data:`REGISTRATION_ELEMENTS` decoded, as :func:`read_registration`)."""
    return any_registration_from_dataset(read_dataset(path, used=REGISTRATION_ELEMENTS), path)


def any_registration_from_dataset(ds: pydicom.Dataset, path: str | Path) -> Registration | DeformableRegistration:
    """A read REG dataset as a rigid :class:`Registration` or, by its SOP class, a
    :class:`~reirrad.dicom.deformable.DeformableRegistration` (``path`` names it in messages)."""
    if str(ds.get("SOPClassUID", "")) == DEFORMABLE_REGISTRATION_SOP_CLASS:
        from reirrad.dicom.deformable import deformable_from_dataset

        return deformable_from_dataset(ds, path)
    return registration_from_dataset(ds, path)


def split_registrations(
    registrations: Sequence[Registration | DeformableRegistration],
) -> tuple[list[Registration], list[DeformableRegistration]]:
    """The rigid and the deformable registrations apart, each in the given order."""
    rigid = [r for r in registrations if isinstance(r, Registration)]
    return rigid, [r for r in registrations if not isinstance(r, Registration)]


def _item_matrix(item, path: Path, number: int) -> np.ndarray:
    """The validated rigid 4x4 matrix of one RegistrationSequence item."""
    where = f"registration item {number}"
    registrations = require(item, "MatrixRegistrationSequence", path)
    if len(registrations) != 1 or len(registrations[0].get("MatrixSequence") or []) != 1:
        raise InputError(path, f"{where}: only one matrix per registered frame is supported")
    entry = registrations[0].MatrixSequence[0]
    kind = str(entry.get("FrameOfReferenceTransformationMatrixType", "")).upper()
    if kind not in RIGID_TYPES:
        raise InputError(path, f"{where}: matrix type {kind or 'missing'} is not rigid; only RIGID is supported")
    matrix = numbers(entry, "FrameOfReferenceTransformationMatrix", path, 16, f"{where}: ").reshape(4, 4)
    _check_rigid(matrix, path, where)
    return matrix


def _check_rigid(matrix: np.ndarray, path: Path, where: str) -> None:
    """Refuse anything but a proper rotation plus translation."""
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
        raise InputError(path, f"{where}: last matrix row is {matrix[3].tolist()}, not [0, 0, 0, 1]")
    rotation = matrix[:3, :3]
    scales = np.linalg.norm(rotation, axis=0)
    if not np.allclose(scales, 1.0, atol=_TOLERANCE):
        raise InputError(path, f"{where}: matrix scales by {np.round(scales, 5).tolist()}; only scale 1 is supported")
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=_TOLERANCE):
        raise InputError(path, f"{where}: matrix rotation part is not orthonormal")
    if abs(np.linalg.det(rotation) - 1.0) > _TOLERANCE:
        raise InputError(path, f"{where}: matrix is a reflection (determinant {np.linalg.det(rotation):.4f})")


def reference_to_moving(
    reference_frame: str,
    moving_frame: str,
    registrations: Sequence[Registration],
    where: Path,
) -> tuple[np.ndarray | None, str]:
    """Transform taking reference-frame points to moving-frame points, and its report label.

    Same frame: ``(None, "identity")``. Otherwise the REG that relates both frames; none, or
    several that disagree: InputError naming ``where`` (the moving course).
    """
    if moving_frame == reference_frame:
        return None, "identity"
    found = [
        (matrix, r.label) for r in registrations if (matrix := r.matrix(reference_frame, moving_frame)) is not None
    ]
    if found and all(np.allclose(m, found[0][0], atol=1e-6) for m, _ in found):
        return found[0]
    if found:
        labels = ", ".join(label for _, label in found)
        raise InputError(where, f"registrations disagree on how to map frame {moving_frame}: {labels}")
    given = ", ".join(str(r.path) for r in registrations) or "none given"
    raise InputError(
        where,
        f"frame of reference {moving_frame} differs from the reference course's {reference_frame}: "
        f"different frames of reference and no registration relating them (REG files: {given}): "
        "give a REG file, or use --conservative for a per-organ worst-case sum",
    )


def course_point_map(
    reference_frame: str,
    moving_frame: str,
    registrations: Sequence[Registration],
    deformables: Sequence[DeformableRegistration],
    where: Path,
) -> PointMap:
    """The point map taking reference-frame points into the moving course's frame.

    Same frame: the identity. A deformable registration whose own (registered) frame is the
    reference frame and which has an item for the moving frame: that field (:class:`FieldPointMap`),
    preferred to a rigid REG relating the same frames (a deformable export usually ships its rigid
    pre-registration beside it); two such files: refused. Otherwise the rigid REG, exactly as
    :func:`reference_to_moving`. A deformable file stored in the other direction is refused rather
    than inverted.
    """
    from reirrad.dicom.deformable import FieldPointMap
    from reirrad.mapping import RigidMap

    if moving_frame == reference_frame:
        return RigidMap(None)
    relating = [d for d in deformables if d.relates(reference_frame, moving_frame)]
    if len(relating) > 1:
        names = ", ".join(str(d.path) for d in relating)
        raise InputError(where, f"several deformable registrations map frame {moving_frame}: {names}; give one")
    if relating:
        return FieldPointMap(relating[0].maps[moving_frame])
    try:
        return RigidMap(*reference_to_moving(reference_frame, moving_frame, registrations, where))
    except InputError:
        for deformable in deformables:  # a deformable file for this frame in the other direction: say so
            deformable.map_to(reference_frame, moving_frame)
        raise
