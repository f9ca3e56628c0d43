"""RTDOSE -> :class:`DoseGrid`: dose in Gy on a :class:`reirrad.grid.Grid`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from reirrad.dicom.io import read_dataset, require
from reirrad.errors import InputError
from reirrad.grid import Grid

RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"


@dataclass(frozen=True, eq=False)
class DoseGrid:
    """A dose distribution in Gy with its geometry and the DICOM facts that qualify it."""

    path: Path
    grid: Grid
    dose_gy: np.ndarray  # float64, shape grid.shape, (frame, row, column)
    summation_type: str  # PLAN, MULTI_PLAN, FRACTION, BEAM, BRACHY, FRACTION_SESSION, ...
    dose_type: str  # PHYSICAL, EFFECTIVE or ERROR
    sop_instance_uid: str
    referenced_plan_uid: str | None = None
    referenced_fraction_group: int | None = None
    referenced_beam_number: int | None = None

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
    """Geometry of an RTDOSE dataset (every axis-aligned transverse orientation)."""
    iop = np.asarray(require(ds, "ImageOrientationPatient", path), dtype=float)
    ipp = np.asarray(require(ds, "ImagePositionPatient", path), dtype=float)
    row_spacing, col_spacing = (float(v) for v in require(ds, "PixelSpacing", path))
    if iop.size != 6 or ipp.size != 3:
        raise InputError(path, "ImageOrientationPatient or ImagePositionPatient has the wrong length")
    row_dir = _axis_aligned(iop[:3], path, "ImageOrientationPatient row direction")
    col_dir = _axis_aligned(iop[3:], path, "ImageOrientationPatient column direction")
    normal = np.cross(row_dir, col_dir)
    if abs(abs(normal[2]) - 1.0) > 1e-6:
        raise InputError(path, "dose planes are not transverse; only axial dose grids are supported")
    offsets = _frame_offsets(ds, path, n_frames, ipp, normal)
    if n_frames > 1:
        steps = np.diff(offsets)
        if np.any(steps == 0) or np.ptp(steps) > 1e-3 * max(1.0, abs(steps[0])) + 1e-4:
            raise InputError(path, "GridFrameOffsetVector is not evenly spaced; unsupported")
        step = float(np.mean(steps))
    else:
        step = float(ds.get("SliceThickness") or 0.0) or min(row_spacing, col_spacing)
    frame_dir = normal if step > 0 else -normal
    origin = ipp + offsets[0] * normal
    if min(row_spacing, col_spacing) <= 0:
        raise InputError(path, "PixelSpacing must be positive")
    return Grid(
        origin_mm=tuple(float(v) for v in origin),
        row_direction=tuple(float(v) for v in row_dir),
        column_direction=tuple(float(v) for v in col_dir),
        frame_direction=tuple(float(v) for v in frame_dir),
        spacing_mm=(abs(step), row_spacing, col_spacing),
        shape=(n_frames, int(ds.Rows), int(ds.Columns)),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
    )


def _frame_offsets(
    ds: pydicom.Dataset, path: Path, n_frames: int, ipp: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """Frame positions along the plane normal relative to ImagePositionPatient (mm).

    GridFrameOffsetVector is relative when its first value is 0 (DICOM PS3.3 C.8.8.3.2, type a);
    otherwise it holds absolute positions along the normal (type b).
    """
    raw = ds.get("GridFrameOffsetVector")
    if raw is None or len(raw) == 0:
        if n_frames > 1:
            raise InputError(path, f"{n_frames} frames but no GridFrameOffsetVector")
        return np.zeros(1)
    offsets = np.asarray(raw, dtype=float).ravel()
    if offsets.size != n_frames:
        raise InputError(
            path, f"GridFrameOffsetVector has {offsets.size} values but the pixel data holds {n_frames} frame(s)"
        )
    if offsets[0] != 0.0:
        offsets = offsets - float(ipp @ normal)
        if abs(offsets[0]) > 1e-3:
            raise InputError(
                path, "GridFrameOffsetVector is neither relative (first value 0) nor absolute (first value = position)"
            )
    return offsets


def read_dose(path: str | Path) -> DoseGrid:
    """Read an RTDOSE file into a :class:`DoseGrid` (Gy). Refuses RELATIVE dose units."""
    path = Path(path)
    ds = read_dataset(path)
    if str(ds.get("SOPClassUID", "")) != RTDOSE_SOP_CLASS and ds.get("Modality") != "RTDOSE":
        raise InputError(path, "not an RTDOSE file")
    units = str(ds.get("DoseUnits", "")).upper()
    if units != "GY":
        raise InputError(path, f"DoseUnits is {units or 'missing'}; only absolute dose in GY can be used")
    if "PixelData" not in ds:
        raise InputError(path, "RTDOSE has no pixel data (a DVH-only or point-dose object)")
    declared_frames = int(ds.get("NumberOfFrames") or 1)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for truncated or odd pixel data
        raise InputError(path, f"cannot decode pixel data ({exc.__class__.__name__}: {exc})") from None
    pixels = pixels.reshape(declared_frames, int(ds.Rows), int(ds.Columns))
    scaling = float(ds.get("DoseGridScaling") or 1.0)
    grid = grid_from_dataset(ds, path, declared_frames)
    dose = pixels.astype(np.float64)
    dose *= scaling
    ref_plan = ds.get("ReferencedRTPlanSequence")
    plan_uid = fraction_group = beam = None
    if ref_plan:
        item = ref_plan[0]
        plan_uid = str(item.get("ReferencedSOPInstanceUID", "")) or None
        fg_seq = item.get("ReferencedFractionGroupSequence")
        if fg_seq:
            fraction_group = int(fg_seq[0].get("ReferencedFractionGroupNumber", 0)) or None
            beam_seq = fg_seq[0].get("ReferencedBeamSequence")
            if beam_seq:
                beam = int(beam_seq[0].get("ReferencedBeamNumber", 0)) or None
    return DoseGrid(
        path=path,
        grid=grid,
        dose_gy=dose,
        summation_type=str(ds.get("DoseSummationType", "")).upper(),
        dose_type=str(ds.get("DoseType", "")).upper(),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        referenced_plan_uid=plan_uid,
        referenced_fraction_group=fraction_group,
        referenced_beam_number=beam,
    )
