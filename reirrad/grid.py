"""Regular voxel grids in DICOM patient coordinates (mm).

Array axes are ``(frame, row, column)`` = ``(k, j, i)``, the order in which pydicom returns a
multi-frame RTDOSE pixel array. The patient position of voxel centre ``(k, j, i)`` is::

    origin_mm + i * spacing_mm[2] * row_direction      # along a row: increasing column index
              + j * spacing_mm[1] * column_direction   # down a column: increasing row index
              + k * spacing_mm[0] * frame_direction

``row_direction`` and ``column_direction`` are ImageOrientationPatient[0:3] and [3:6].
``frame_direction`` is their cross product, negated when the frame offsets decrease, so every
spacing is positive and frames stay in file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Geometry of a regular grid: voxel centres, spacing (mm) and orientation."""

    origin_mm: tuple[float, float, float]
    row_direction: tuple[float, float, float]
    column_direction: tuple[float, float, float]
    frame_direction: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]  # (frame, row, column) = (dk, dj, di)
    shape: tuple[int, int, int]  # (frames, rows, columns)
    frame_of_reference_uid: str = ""

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit vectors of the k, j and i axes (patient frame)."""
        return np.column_stack([self.frame_direction, self.column_direction, self.row_direction])

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping array index ``(k, j, i, 1)`` to patient ``(x, y, z, 1)`` in mm."""
        out = np.eye(4)
        out[:3, :3] = self.direction * np.asarray(self.spacing_mm)
        out[:3, 3] = self.origin_mm
        return out

    @property
    def voxel_volume_cc(self) -> float:
        """Volume of one voxel in cm3."""
        return float(np.prod(self.spacing_mm)) / 1000.0

    @property
    def size(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape))

    def to_patient(self, index_kji: np.ndarray) -> np.ndarray:
        """Continuous array indices (N, 3) in (k, j, i) order -> patient points (N, 3) in mm."""
        index_kji = np.asarray(index_kji, dtype=float)
        return index_kji @ self.affine[:3, :3].T + self.affine[:3, 3]

    def to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Patient points (N, 3) in mm -> continuous array indices (N, 3) in (k, j, i) order."""
        points_mm = np.asarray(points_mm, dtype=float)
        inverse = np.linalg.inv(self.affine)
        return points_mm @ inverse[:3, :3].T + inverse[:3, 3]

    def axis_coordinates_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of voxel centres along k, j, i, projected on each axis' own direction (mm).

        For an axial grid whose frame direction is +z these are z, and the in-plane coordinates
        along the row and column directions.
        """
        origin = np.asarray(self.origin_mm)
        return tuple(  # type: ignore[return-value]
            float(origin @ np.asarray(d)) + np.arange(n) * s
            for d, n, s in zip(
                (self.frame_direction, self.column_direction, self.row_direction),
                self.shape,
                self.spacing_mm,
            )
        )

    @property
    def is_axial(self) -> bool:
        """True when frames are transverse planes (frame direction along patient +/-z)."""
        return abs(abs(self.frame_direction[2]) - 1.0) < 1e-6

    def same_geometry(self, other: "Grid", tol_mm: float = 1e-3) -> bool:
        """True when both grids have the same voxel centres (frame of reference not compared)."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=tol_mm)
        )
