"""RTDOSE -> :class:`DoseGrid`: dose in Gy on a :class:`reirrad.grid.Grid`.

Accepted: every axis-aligned transverse orientation (HFS, HFP, FFS, FFP and the decubitus ones),
relative or absolute GridFrameOffsetVector, increasing or decreasing, 16 or 32 bit, signed or
unsigned, either endianness, single or multi-frame. When NumberOfFrames is absent the pixel data
decides the frame count, and it must then match GridFrameOffsetVector (pydicom's
rtdose_1frame.dcm: 1 frame of pixel data, 15 offsets -> InputError).
Refused with an InputError: RELATIVE or CGY units, DoseType ERROR, oblique or non-transverse
planes, unevenly spaced frames, missing or truncated pixel data, negative dose values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from reirrad.dicom.io import check_sop_class, optional_int, read_dataset, require
from reirrad.errors import InputError
from reirrad.grid import Grid

RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
_ABSOLUTE_OFFSET_TOL_MM = 0.01  # absolute GridFrameOffsetVector: first value = IPP z (DS rounding)
_EVEN_SPACING_TOL_MM = 1e-3


@dataclass(frozen=True, eq=False)
class DoseGrid:
    """A dose distribution in Gy with its geometry and the DICOM facts that qualify it."""

    path: Path
    grid: Grid
    dose_gy: np.ndarray  # float64, shape grid.shape, (frame, row, column)
    summation_type: str  # PLAN, MULTI_PLAN, FRACTION, BEAM, BRACHY, FRACTION_SESSION, ...
    dose_type: str  # PHYSICAL or EFFECTIVE
    sop_instance_uid: str
    referenced_plan_uid: str | None = None
    referenced_fraction_group: int | None = None
    referenced_beam_number: int | None = None
    referenced_beam_numbers: tuple[int, ...] = ()  # every beam a BEAM dose covers

    @property
    def max_gy(self) -> float:
        """Highest voxel dose in Gy."""
        return float(self.dose_gy.max()) if self.dose_gy.size else 0.0


def _axis_aligned(vector: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Snap a direction cosine vector to the nearest patient axis, refusing oblique ones."""
    rounded = np.round(vector)
    if np.count_nonzero(rounded) != 1 or not np.allclose(vector, rounded, atol=1e-4):
        raise InputError(
            path, f"{what} {np.round(vector, 4).tolist()} is oblique; only axis-aligned grids are supported"
        )
    return rounded


def grid_from_dataset(ds: pydicom.Dataset, path: Path, n_frames: int) -> Grid:
    """Geometry of an RTDOSE dataset (every axis-aligned transverse orientation).

    PixelSpacing is (row spacing, column spacing): the distance between adjacent rows (along
    the column direction, array axis j) first, between adjacent columns (axis i) second.
    """
    iop = np.asarray(require(ds, "ImageOrientationPatient", path), dtype=float)
    ipp = np.asarray(require(ds, "ImagePositionPatient", path), dtype=float)
    spacing = np.asarray(require(ds, "PixelSpacing", path), dtype=float)
    if iop.size != 6 or ipp.size != 3 or spacing.size != 2:
        raise InputError(
            path, "ImageOrientationPatient, ImagePositionPatient or PixelSpacing has the wrong number of values"
        )
    if np.any(spacing <= 0):
        raise InputError(path, f"PixelSpacing {spacing.tolist()} must be positive")
    row_dir = _axis_aligned(iop[:3], path, "ImageOrientationPatient row direction")
    col_dir = _axis_aligned(iop[3:], path, "ImageOrientationPatient column direction")
    normal = np.cross(row_dir, col_dir)
    if abs(abs(normal[2]) - 1.0) > 1e-6:
        raise InputError(path, "dose planes are not transverse; only axial dose grids are supported")
    offsets = _frame_offsets(ds, path, n_frames, ipp, normal)
    step = _frame_step(ds, path, offsets, spacing)
    return Grid(
        origin_mm=tuple(float(v) for v in ipp + offsets[0] * normal),
        row_direction=tuple(float(v) for v in row_dir),
        column_direction=tuple(float(v) for v in col_dir),
        frame_direction=tuple(float(v) for v in (normal if step > 0 else -normal)),
        spacing_mm=(abs(step), float(spacing[0]), float(spacing[1])),
        shape=(n_frames, int(ds.Rows), int(ds.Columns)),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
    )


def _frame_offsets(
    ds: pydicom.Dataset, path: Path, n_frames: int, ipp: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """Frame positions along the plane normal (row x column), relative to ImagePositionPatient (mm).

    DICOM PS3.3 C.8.8.3.2: first value 0 -> offsets along the normal (type a); first value equal
    to ImagePositionPatient z -> patient z coordinates of the planes (type b).
    """
    raw = ds.get("GridFrameOffsetVector")
    if raw is None or raw == "":
        if n_frames > 1:
            raise InputError(path, f"{n_frames} frames but no GridFrameOffsetVector")
        return np.zeros(1)
    offsets = np.atleast_1d(np.asarray(raw, dtype=float))
    if offsets.size != n_frames:
        raise InputError(
            path, f"GridFrameOffsetVector has {offsets.size} values but the pixel data holds {n_frames} frame(s)"
        )
    if offsets[0] == 0.0:
        return offsets
    if abs(offsets[0] - ipp[2]) > _ABSOLUTE_OFFSET_TOL_MM:
        raise InputError(
            path,
            f"GridFrameOffsetVector starts at {offsets[0]:g}: neither relative (0) nor absolute "
            f"(ImagePositionPatient z = {ipp[2]:g})",
        )
    return (offsets - ipp[2]) * normal[2]


def _frame_step(ds: pydicom.Dataset, path: Path, offsets: np.ndarray, spacing: np.ndarray) -> float:
    """Signed distance between frames in mm (SliceThickness, else the finer pixel spacing, for one frame)."""
    if offsets.size == 1:
        return float(ds.get("SliceThickness") or 0.0) or float(spacing.min())
    steps = np.diff(offsets)
    if np.any(steps == 0) or np.ptp(steps) > _EVEN_SPACING_TOL_MM * max(1.0, abs(steps[0])):
        raise InputError(path, "GridFrameOffsetVector is not monotonic and evenly spaced; unsupported")
    return float(steps.mean())


def _frame_count(ds: pydicom.Dataset, path: Path) -> int:
    """Frames in the pixel data: NumberOfFrames, checked against (or, when absent, taken from) its length."""
    declared = optional_int(ds, "NumberOfFrames")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputError(path, "RTDOSE must have one sample per pixel")
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return declared or 1
    frame_bytes = int(require(ds, "Rows", path)) * int(require(ds, "Columns", path))
    frame_bytes *= int(require(ds, "BitsAllocated", path)) // 8
    stored = len(ds.PixelData) // frame_bytes if frame_bytes else 0
    if stored == 0:
        raise InputError(path, "pixel data is shorter than one frame")
    if declared is not None and declared != stored:
        raise InputError(path, f"NumberOfFrames is {declared} but the pixel data holds {stored} frame(s)")
    return stored


def _pixels(ds: pydicom.Dataset, path: Path, n_frames: int) -> np.ndarray:
    """Stored pixel values as a (frames, rows, columns) array (decoded by pydicom)."""
    if optional_int(ds, "NumberOfFrames") is None and n_frames > 1:
        ds.NumberOfFrames = n_frames  # in memory only: pydicom reads frames from this attribute
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for truncated or odd pixel data
        raise InputError(path, f"cannot decode pixel data ({exc.__class__.__name__}: {exc})") from None
    return pixels.reshape(n_frames, int(ds.Rows), int(ds.Columns))


def _plan_references(ds: pydicom.Dataset) -> tuple[str | None, int | None, tuple[int, ...]]:
    """Referenced plan UID, fraction group number and beam numbers (first plan reference)."""
    ref_plan = ds.get("ReferencedRTPlanSequence")
    if not ref_plan:
        return None, None, ()
    item = ref_plan[0]
    plan_uid = str(item.get("ReferencedSOPInstanceUID", "")) or None
    fg_seq = item.get("ReferencedFractionGroupSequence")
    if not fg_seq:
        return plan_uid, None, ()
    beams = tuple(
        int(b.ReferencedBeamNumber) for b in fg_seq[0].get("ReferencedBeamSequence", []) if "ReferencedBeamNumber" in b
    )
    return plan_uid, optional_int(fg_seq[0], "ReferencedFractionGroupNumber"), beams


def _check_usable(ds: pydicom.Dataset, path: Path) -> None:
    """Refuse RTDOSE objects whose values are not an absolute dose in Gy."""
    check_sop_class(ds, path, RTDOSE_SOP_CLASS, "RTDOSE")
    units = str(ds.get("DoseUnits", "")).upper()
    if units != "GY":
        raise InputError(path, f"DoseUnits is {units or 'missing'}; only absolute dose in GY can be used")
    if str(ds.get("DoseType", "")).upper() == "ERROR":
        raise InputError(path, "DoseType is ERROR (a dose difference), not a dose")
    if "PixelData" not in ds:
        raise InputError(path, "RTDOSE has no pixel data (a DVH-only or point-dose object)")
    if float(require(ds, "DoseGridScaling", path)) <= 0:
        raise InputError(path, "DoseGridScaling must be positive")


def dose_from_dataset(ds: pydicom.Dataset, path: str | Path) -> DoseGrid:
    """Turn a read RTDOSE dataset into a :class:`DoseGrid` (Gy); ``path`` is used in messages.

    When NumberOfFrames is absent and the pixel data holds several frames, NumberOfFrames is set
    on ``ds`` (in memory) so that pydicom decodes every frame.
    """
    path = Path(path)
    _check_usable(ds, path)
    n_frames = _frame_count(ds, path)
    grid = grid_from_dataset(ds, path, n_frames)
    pixels = _pixels(ds, path, n_frames)
    if pixels.dtype.kind == "i" and pixels.min() < 0:
        raise InputError(path, "pixel data holds negative dose values")
    plan_uid, fraction_group, beams = _plan_references(ds)
    return DoseGrid(
        path=path,
        grid=grid,
        dose_gy=np.multiply(pixels, float(ds.DoseGridScaling), dtype=np.float64),
        summation_type=str(ds.get("DoseSummationType", "")).upper(),
        dose_type=str(ds.get("DoseType", "")).upper(),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        referenced_plan_uid=plan_uid,
        referenced_fraction_group=fraction_group,
        referenced_beam_number=beams[0] if beams else None,
        referenced_beam_numbers=beams,
    )


def read_dose(path: str | Path) -> DoseGrid:
    """Read an RTDOSE file into a :class:`DoseGrid` (Gy). Refuses RELATIVE dose units."""
    return dose_from_dataset(read_dataset(path), path)
