"""How a course's dose is reached from the reference course's frame: point maps.

A point map takes points in the reference course's patient frame (mm) to the same anatomical
points in another course's patient frame (mm), in the direction a DICOM Spatial Registration
states it (the REG's matrix maps the moving frame into the registered one, so the map from the
reference frame is its inverse; see :mod:`reirrad.dicom.registration`). Every way of relating two
courses (identity, a rigid REG, an automatic rigid registration, a deformable REG, a shifted
position for the registration-uncertainty search) is one :class:`PointMap`, so the evaluation
samples each course's own dose grid at ``point_map(points)`` and never needs to know which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from reirrad.grid import transform_points


@runtime_checkable
class PointMap(Protocol):
    """Reference-frame points (N, 3) in mm -> the course's frame (N, 3) in mm."""

    @property
    def label(self) -> str:
        """How the report names this mapping ("identity", "REG <SOPInstanceUID>", ...)."""
        ...

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        """Map points (N, 3), mm, reference frame, to points (N, 3), mm, the course's frame."""
        ...


@dataclass(frozen=True, eq=False)
class RigidMap:
    """A rigid (or identity) map given by a 4x4 homogeneous matrix, reference -> course frame.

    ``matrix`` None is the identity (both courses in one frame of reference).
    """

    matrix: np.ndarray | None
    label: str = "identity"

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        points = np.asarray(points_mm, dtype=float)
        return points if self.matrix is None else transform_points(self.matrix, points)

    @property
    def is_identity(self) -> bool:
        """True when no transform is applied."""
        return self.matrix is None
