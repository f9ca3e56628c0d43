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

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from reirrad.errors import InputError

# Largest single array (bytes) that reirrad allocates for one grid or one structure's sample
# lattice: a float64 array over 268 M voxels. Anything larger is refused before allocation.
# Peak memory is a small multiple of this (several courses and EQD2 arrays live at once).
MEMORY_BOUND_BYTES = 2 * 1024**3


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in binary units with three significant digits, e.g. "3.65 TiB"."""
    exponent = 0
    while n_bytes >= 1024 and exponent < len(_BYTE_UNITS) - 1:
        n_bytes /= 1024
        exponent += 1
    return f"{n_bytes:.3g} {_BYTE_UNITS[exponent]}"


def require_grid_memory(shape: Sequence[float], spacing_mm: Sequence[float], what: str) -> None:
    """Refuse a float64 array of ``shape`` voxels above the bound, naming ``what`` and the grid."""
    voxels = " x ".join(f"{n:.0f}" for n in shape)
    spacing = " x ".join(f"{s:g}" for s in spacing_mm)
    require_memory(8 * float(np.prod(np.asarray(shape, float))), f"{what} ({voxels} voxels of {spacing} mm)")


def require_memory(n_bytes: float, what: str) -> None:
    """Refuse (InputError, before anything is allocated) an array of ``n_bytes`` above the bound.

    ``what`` names the array and its size, e.g. "evaluation grid (400 x 500 x 500 voxels of 1 mm)".
    """
    if n_bytes > MEMORY_BOUND_BYTES:
        raise InputError(
            None,
            f"{what} would need {format_bytes(n_bytes)}, more than the "
            f"{format_bytes(MEMORY_BOUND_BYTES)} bound (reirrad.grid.MEMORY_BOUND_BYTES)",
        )


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous ``matrix`` to points (N, 3)."""
    points = np.asarray(points, dtype=float)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


Vec3 = tuple[float, float, float]
Shape3 = tuple[int, int, int]


def vec3(values: Sequence[float] | np.ndarray) -> Vec3:
    """Three numbers as a tuple of Python floats (a position or direction in mm)."""
    x, y, z = (float(v) for v in values)
    return x, y, z


def shape3(values: Sequence[float] | np.ndarray) -> Shape3:
    """Three counts as a tuple of Python ints (a grid shape)."""
    k, j, i = (int(v) for v in values)
    return k, j, i


@dataclass(frozen=True)
class Grid:
    """Geometry of a regular grid: voxel centres, spacing (mm) and orientation."""

    origin_mm: Vec3
    row_direction: Vec3
    column_direction: Vec3
    frame_direction: Vec3
    spacing_mm: Vec3  # (frame, row, column) = (dk, dj, di)
    shape: Shape3  # (frames, rows, columns)
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

    def require_memory(self, what: str) -> None:
        """Refuse (InputError) a float64 array over this grid larger than MEMORY_BOUND_BYTES."""
        require_grid_memory(self.shape, self.spacing_mm, what)

    def to_patient(self, index_kji: np.ndarray) -> np.ndarray:
        """Continuous array indices (N, 3) in (k, j, i) order -> patient points (N, 3) in mm."""
        return transform_points(self.affine, index_kji)

    def to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Patient points (N, 3) in mm -> continuous array indices (N, 3) in (k, j, i) order."""
        return transform_points(np.linalg.inv(self.affine), points_mm)

    @property
    def is_axial(self) -> bool:
        """True when frames are transverse planes (frame direction along patient +/-z)."""
        return abs(abs(self.frame_direction[2]) - 1.0) < 1e-6

    def same_geometry(self, other: Grid, tol_mm: float = 1e-3) -> bool:
        """True when both grids have the same voxel centres (frame of reference not compared)."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=tol_mm))


# Index positions this close outside a source grid's first or last voxel centre (in voxels) still
# count as inside: they come from rounding in the geometry, not from a point really outside.
_EDGE_TOLERANCE = 1e-6


def inside_grid(index_kji: np.ndarray, shape: Sequence[int], margin_voxels: float = 0.0) -> np.ndarray:
    """Which continuous indices (N, 3) lie within a grid of ``shape``: within the hull of its voxel
    centres (``margin_voxels`` 0, as :func:`resample` counts coverage) or that hull grown by
    ``margin_voxels`` (0.5: within the grid's voxels), up to the same edge tolerance."""
    low = -margin_voxels - _EDGE_TOLERANCE
    inside = np.ones(len(index_kji), dtype=bool)
    for axis, n in enumerate(shape):
        column = index_kji[:, axis]
        inside &= (column >= low) & (column <= n - 1 + margin_voxels + _EDGE_TOLERANCE)
    return inside


def grown_to_cover(grid: Grid, low_index: np.ndarray, high_index: np.ndarray) -> Grid:
    """``grid`` grown by whole voxels (same lattice, spacing and orientation) so that its voxel
    centres span the continuous index box ``[low_index, high_index]`` (k, j, i) as well as itself.

    Voxel ``(k, j, i)`` of ``grid`` becomes voxel ``(k, j, i) - min(floor(low_index), 0)``.
    """
    low = np.minimum(np.floor(np.asarray(low_index, float) + _EDGE_TOLERANCE), 0)
    top = np.array(grid.shape) - 1
    high = np.maximum(np.ceil(np.asarray(high_index, float) - _EDGE_TOLERANCE), top)
    if not np.all(np.isfinite(low) & np.isfinite(high)):
        raise InputError(None, "structures or dose grids with non-finite positions: cannot grow the evaluation grid")
    require_grid_memory(high - low + 1, grid.spacing_mm, "evaluation grid grown over the structures")
    low, high = low.astype(np.int64), high.astype(np.int64)
    origin = grid.to_patient(low[None, :].astype(float))[0]
    return replace(grid, origin_mm=vec3(origin), shape=shape3(high - low + 1))


def corner_centres_mm(grid: Grid) -> np.ndarray:
    """Patient positions (8, 3) in mm of the grid's corner voxel centres."""
    corners = np.array(np.meshgrid(*[(0, n - 1) for n in grid.shape], indexing="ij")).reshape(3, -1).T
    return grid.to_patient(corners)


def index_map(source: Grid, target: Grid, target_to_source_mm: np.ndarray | None = None) -> np.ndarray:
    """4x4 matrix taking target array indices (k, j, i, 1) to continuous source array indices.

    ``target_to_source_mm`` maps a point in the target's patient frame to the same anatomical
    point in the source's patient frame (identity when omitted).
    """
    transform = np.eye(4) if target_to_source_mm is None else np.asarray(target_to_source_mm, float)
    return np.linalg.inv(source.affine) @ transform @ target.affine


def resample(
    values: np.ndarray,
    source: Grid,
    target: Grid,
    target_to_source_mm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear interpolation of ``values`` (on ``source``) at the voxel centres of ``target``.

    Returns ``(resampled, covered)``: float64 values with the target's shape, and a boolean mask
    that is False where a target centre falls outside the hull of the source's voxel centres.
    Uncovered points get 0. Orientations (HFS, FFS, HFP, ...) are handled through each grid's
    affine. When both grids have the same geometry and no transform is given, ``values`` itself is
    returned (no copy).
    """
    if values.shape != source.shape:
        raise ValueError(f"values shape {values.shape} does not match the source grid {source.shape}")
    if target_to_source_mm is None and source.same_geometry(target, tol_mm=1e-6):
        return values, np.ones(target.shape, dtype=bool)
    target.require_memory("resampled dose grid")
    mapping = index_map(source, target, target_to_source_mm)
    linear = mapping[:3, :3]
    if np.allclose(linear - np.diag(np.diag(linear)), 0.0, atol=1e-9):
        return _resample_separable(values, mapping, target.shape)
    return _resample_general(values, mapping, target.shape)


def _axis_weights(
    scale: float, offset: float, n_target: int, n_source: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower source index, upper weight and coverage for one axis of an axis-aligned mapping."""
    position = offset + scale * np.arange(n_target)
    covered = (position >= -_EDGE_TOLERANCE) & (position <= n_source - 1 + _EDGE_TOLERANCE)
    lower = np.clip(np.floor(position), 0, max(n_source - 2, 0)).astype(np.intp)
    weight = np.clip(position - lower, 0.0, 1.0) if n_source > 1 else np.zeros(n_target)
    weight[~covered] = 0.0
    return lower, weight, covered


def _resample_separable(
    values: np.ndarray, mapping: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear resampling when each target axis maps onto the same source axis (any sign)."""
    out = values
    masks = []
    for axis in range(3):
        lower, weight, covered = _axis_weights(mapping[axis, axis], mapping[axis, 3], shape[axis], values.shape[axis])
        upper = np.minimum(lower + 1, values.shape[axis] - 1)
        expand: list[slice | None] = [None, None, None]
        expand[axis] = slice(None)
        keep = np.where(covered, 1.0 - weight, 0.0)[tuple(expand)]
        out = np.take(out, lower, axis=axis) * keep + np.take(out, upper, axis=axis) * weight[tuple(expand)]
        masks.append(covered[tuple(expand)])
    return out, masks[0] & masks[1] & masks[2]


def _resample_general(
    values: np.ndarray, mapping: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear resampling for any affine index mapping (rotations), one target frame at a time."""
    from scipy.ndimage import map_coordinates

    out = np.zeros(shape)
    covered = np.zeros(shape, dtype=bool)
    upper = np.asarray(values.shape, float)[:, None] - 1 + _EDGE_TOLERANCE
    jj, ii = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    plane = np.stack([np.zeros(jj.size), jj.ravel(), ii.ravel()])
    for k in range(shape[0]):
        plane[0] = k
        index = mapping[:3, :3] @ plane + mapping[:3, 3:4]
        inside = np.all((index >= -_EDGE_TOLERANCE) & (index <= upper), axis=0)
        sampled = map_coordinates(values, index, order=1, mode="nearest", prefilter=False)
        out[k] = np.where(inside, sampled, 0.0).reshape(shape[1:])
        covered[k] = inside.reshape(shape[1:])
    return out, covered
