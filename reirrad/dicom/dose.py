"""RTDOSE -> :class:`DoseGrid`: dose in Gy on a :class:`reirrad.grid.Grid`.

Accepted: every axis-aligned transverse orientation (HFS, HFP, FFS, FFP and the decubitus ones),
relative or absolute GridFrameOffsetVector, increasing or decreasing, 16 or 32 bit, signed or
unsigned, either endianness, single or multi-frame. When NumberOfFrames is absent the pixel data
decides the frame count, and it must then match GridFrameOffsetVector (pydicom's
rtdose_1frame.dcm: 1 frame of pixel data, 15 offsets -> InputError).
Refused with an InputError: RELATIVE or CGY units, DoseType ERROR, oblique or non-transverse
planes, unevenly spaced frames, missing, truncated or over-long pixel data, negative dose values,
a missing FrameOfReferenceUID, a DoseGridScaling that is not a positive finite number, non-numeric
or non-finite geometry, and grids whose float64 dose would exceed
:data:`reirrad.grid.MEMORY_BOUND_BYTES` (refused before anything is allocated).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RTDoseStorage

from reirrad.dicom.io import (
    check_sop_class,
    integer,
    number,
    numbers,
    optional_integer,
    optional_number,
    optional_uid,
    quiet_pydicom,
    read_dataset,
    uid,
)
from reirrad.errors import InputError
from reirrad.grid import Grid, require_memory, vec3

RTDOSE_SOP_CLASS = RTDoseStorage
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
    description: str = ""  # ImageComments (reirrad writes its EQD2 parameters there), else DoseComment

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
    iop = numbers(ds, "ImageOrientationPatient", path, 6)
    ipp = numbers(ds, "ImagePositionPatient", path, 3)
    spacing = numbers(ds, "PixelSpacing", path, 2)
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
        origin_mm=vec3(ipp + offsets[0] * normal),
        row_direction=vec3(row_dir),
        column_direction=vec3(col_dir),
        frame_direction=vec3(normal if step > 0 else -normal),
        spacing_mm=(abs(step), float(spacing[0]), float(spacing[1])),
        shape=(n_frames, integer(ds, "Rows", path), integer(ds, "Columns", path)),
        frame_of_reference_uid=_frame_of_reference(ds, path),
    )


def _frame_of_reference(ds: pydicom.Dataset, path: Path) -> str:
    """FrameOfReferenceUID, required: without it nothing says which anatomy the dose belongs to."""
    frame = optional_uid(ds, "FrameOfReferenceUID", path)
    if frame is None:
        raise InputError(path, "FrameOfReferenceUID missing (required in an RTDOSE)")
    return frame


def _frame_offsets(ds: pydicom.Dataset, path: Path, n_frames: int, ipp: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Frame positions along the plane normal (row x column), relative to ImagePositionPatient (mm).

    DICOM PS3.3 C.8.8.3.2: first value 0 -> offsets along the normal (type a); first value equal
    to ImagePositionPatient z -> patient z coordinates of the planes (type b).
    """
    if not ds.get("GridFrameOffsetVector"):
        if n_frames > 1:
            raise InputError(path, f"{n_frames} frames but no GridFrameOffsetVector")
        return np.zeros(1)
    offsets = numbers(ds, "GridFrameOffsetVector", path)
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
        thickness = optional_number(ds, "SliceThickness", path) or 0.0
        if thickness < 0:
            raise InputError(path, f"SliceThickness {thickness:g} is negative")
        return thickness or float(spacing.min())
    steps = np.diff(offsets)
    if np.any(steps == 0) or np.ptp(steps) > _EVEN_SPACING_TOL_MM * max(1.0, abs(steps[0])):
        raise InputError(path, "GridFrameOffsetVector is not monotonic and evenly spaced; unsupported")
    return float(steps.mean())


def _frame_count(ds: pydicom.Dataset, path: Path, length: int | None = None) -> int:
    """Frames in the pixel data: NumberOfFrames, checked against (or, when absent, taken from) its length.

    The grid size is bounded (:func:`reirrad.grid.require_memory`) before anything is decoded, and native
    pixel data must hold exactly Rows x Columns x frames values (``length`` bytes: the PixelData
    read from a file apart, :func:`read_dose`; default: ``ds.PixelData``'s).
    """
    declared = optional_integer(ds, "NumberOfFrames", path)
    if (optional_integer(ds, "SamplesPerPixel", path) or 1) != 1:
        raise InputError(path, "RTDOSE must have one sample per pixel")
    rows, columns = integer(ds, "Rows", path), integer(ds, "Columns", path)
    bits = integer(ds, "BitsAllocated", path)
    if rows < 1 or columns < 1 or (declared is not None and declared < 1):
        raise InputError(path, f"Rows {rows}, Columns {columns} and NumberOfFrames {declared} must be positive")
    if bits not in (16, 32):
        raise InputError(path, f"BitsAllocated is {bits}; RTDOSE pixel data has 16 or 32 bits")
    _check_size(rows, columns, declared or 1, path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return declared or 1
    frame_bytes = rows * columns * bits // 8
    length = len(ds.PixelData) if length is None else length
    frames = declared if declared is not None else length // frame_bytes
    if frames == 0:
        raise InputError(path, "pixel data is shorter than one frame")
    expected = frames * frame_bytes
    if length != expected:
        raise InputError(
            path,
            f"PixelData holds {length} bytes but Rows {rows} x Columns {columns} x {frames} frame(s) "
            f"x {bits // 8} bytes = {expected}",
        )
    return frames


def _check_size(rows: int, columns: int, frames: int, path: Path) -> None:
    """Refuse a grid whose float64 dose exceeds the memory bound (before anything is allocated)."""
    try:
        require_memory(8.0 * rows * columns * frames, f"dose grid of {rows} x {columns} x {frames} voxels")
    except InputError as err:
        raise InputError(path, err.problem) from None


def _pixels(ds: pydicom.Dataset, path: Path, n_frames: int) -> np.ndarray:
    """Stored pixel values as a (frames, rows, columns) array.

    Native (not encapsulated) pixel data whose every allocated bit is stored are viewed in place
    (no copy: reading a dose holds its pixel bytes and its Gy array, nothing more); anything else
    is decoded by pydicom."""
    shape = (n_frames, integer(ds, "Rows", path), integer(ds, "Columns", path))
    syntax = ds.file_meta.TransferSyntaxUID
    bits = integer(ds, "BitsAllocated", path)
    if not syntax.is_compressed and optional_integer(ds, "BitsStored", path) in (None, bits):
        order = "<" if syntax.is_little_endian else ">"
        kind = "i" if optional_integer(ds, "PixelRepresentation", path) == 1 else "u"
        return np.frombuffer(ds.PixelData, dtype=f"{order}{kind}{bits // 8}").reshape(shape)
    decoded = ds
    if "NumberOfFrames" not in ds and n_frames > 1:
        # pydicom decodes only the frames NumberOfFrames declares: declare them on a copy (a new
        # element dict, the elements shared), never on the caller's dataset
        decoded = pydicom.Dataset(dict(ds.items()))
        decoded.file_meta, decoded.is_little_endian = ds.file_meta, ds.is_little_endian
        decoded.NumberOfFrames = n_frames
    try:
        with quiet_pydicom():
            pixels = decoded.pixel_array
    except Exception as exc:  # pydicom raises several types for truncated or odd pixel data
        raise InputError(path, f"cannot decode pixel data ({exc.__class__.__name__}: {exc})") from None
    return pixels.reshape(shape)


def _plan_references(ds: pydicom.Dataset, path: Path) -> tuple[str | None, int | None, tuple[int, ...]]:
    """Referenced plan UID, fraction group number and beam numbers (first plan reference)."""
    ref_plan = ds.get("ReferencedRTPlanSequence")
    if not ref_plan:
        return None, None, ()
    item = ref_plan[0]
    plan_uid = optional_uid(item, "ReferencedSOPInstanceUID", path, "ReferencedRTPlanSequence ")
    fg_seq = item.get("ReferencedFractionGroupSequence")
    if not fg_seq:
        return plan_uid, None, ()
    beams = tuple(
        integer(b, "ReferencedBeamNumber", path)
        for b in fg_seq[0].get("ReferencedBeamSequence", [])
        if "ReferencedBeamNumber" in b
    )
    return plan_uid, optional_integer(fg_seq[0], "ReferencedFractionGroupNumber", path), beams


def _check_usable(ds: pydicom.Dataset, path: Path, pixel_data: bool = True) -> float:
    """Refuse RTDOSE objects whose values are not an absolute dose in Gy; returns DoseGridScaling (Gy).
    ``pixel_data`` False: ``ds`` was read without its pixel data (they are checked apart)."""
    check_sop_class(ds, path, RTDOSE_SOP_CLASS, "RTDOSE")
    units = str(ds.get("DoseUnits", "")).upper()
    if units != "GY":
        raise InputError(path, f"DoseUnits is {units or 'missing'}; only absolute dose in GY can be used")
    if str(ds.get("DoseType", "")).upper() == "ERROR":
        raise InputError(path, "DoseType is ERROR (a dose difference), not a dose")
    if pixel_data and "PixelData" not in ds:
        raise InputError(path, "RTDOSE has no pixel data (a DVH-only or point-dose object)")
    scaling = number(ds, "DoseGridScaling", path)
    if scaling <= 0:
        raise InputError(path, f"DoseGridScaling is {scaling:g}; it must be positive")
    return scaling


def dose_from_dataset(ds: pydicom.Dataset, path: str | Path) -> DoseGrid:
    """Turn a read RTDOSE dataset into a :class:`DoseGrid` (Gy); ``path`` is used in messages.

    When NumberOfFrames is absent the frames are counted from the pixel data's length; ``ds`` is
    not modified.
    """
    path = Path(path)
    scaling = _check_usable(ds, path)
    n_frames = _frame_count(ds, path)
    grid = grid_from_dataset(ds, path, n_frames)
    pixels = _pixels(ds, path, n_frames)
    return _dose_grid(ds, path, grid, _to_gy([pixels.reshape(-1)], scaling, path, grid.shape))


def _to_gy(chunks: Iterable[np.ndarray], scaling: float, path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Stored pixel values, given as consecutive flat chunks, times DoseGridScaling: float64 Gy of
    ``shape``. Negative values and a product that overflows are refused."""
    dose_gy = np.empty(shape)
    flat = dose_gy.reshape(-1)
    start = 0
    for chunk in chunks:
        if chunk.dtype.kind == "i" and chunk.min(initial=0) < 0:
            raise InputError(path, "pixel data holds negative dose values")
        if not np.isfinite(float(chunk.max(initial=0)) * scaling):
            raise InputError(path, f"DoseGridScaling {scaling:g} times the pixel values overflows")
        np.multiply(chunk, scaling, out=flat[start : start + len(chunk)], dtype=np.float64)
        start += len(chunk)
    return dose_gy


def _dose_grid(ds: pydicom.Dataset, path: Path, grid: Grid, dose_gy: np.ndarray) -> DoseGrid:
    """The :class:`DoseGrid` of dose ``dose_gy`` (Gy) on ``grid`` with the facts ``ds`` states."""
    plan_uid, fraction_group, beams = _plan_references(ds, path)
    return DoseGrid(
        path=path,
        grid=grid,
        dose_gy=dose_gy,
        summation_type=str(ds.get("DoseSummationType", "")).upper(),
        dose_type=str(ds.get("DoseType", "")).upper(),
        sop_instance_uid=uid(ds, "SOPInstanceUID", path),
        referenced_plan_uid=plan_uid,
        referenced_fraction_group=fraction_group,
        referenced_beam_number=beams[0] if beams else None,
        referenced_beam_numbers=beams,
        description=str(ds.get("ImageComments", "") or ds.get("DoseComment", "")),
    )


def read_dose(path: str | Path) -> DoseGrid:
    """Read an RTDOSE file into a :class:`DoseGrid` (Gy). Refuses RELATIVE dose units.

    Native little-endian pixel data that end the file, of exactly the size NumberOfFrames, Rows,
    Columns and BitsAllocated give, are read from the file :data:`READ_CHUNK_BYTES` at a time into
    the Gy array (reading holds the dose and one chunk); any other file is read whole
    (:func:`dose_from_dataset`), with the same checks and refusals.
    """
    path = Path(path)
    header = read_dataset(path, stop_before_pixels=True)
    located = _pixel_data_at_end(header, path)
    if located is None:  # read whole: the same refusals in the same order as a dataset's
        return dose_from_dataset(read_dataset(path), path)
    offset, dtype, length = located
    scaling = _check_usable(header, path, pixel_data=False)
    n_frames = _frame_count(header, path, length)
    grid = grid_from_dataset(header, path, n_frames)
    return _dose_grid(
        header, path, grid, _to_gy(_file_chunks(path, offset, dtype, grid.size), scaling, path, grid.shape)
    )


READ_CHUNK_BYTES = 1 << 22  # pixel bytes read from a file at once (4 MiB)


def _pixel_data_at_end(header: pydicom.Dataset, path: Path) -> tuple[int, np.dtype, int] | None:
    """Where native little-endian pixel data of the size ``header`` declares end the file: their
    offset, dtype and length in bytes; None when anything else may hold (read the file whole)."""
    syntax = header.file_meta.get("TransferSyntaxUID")
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        return None
    try:
        frames, rows, columns = (optional_integer(header, k, path) for k in ("NumberOfFrames", "Rows", "Columns"))
        bits, stored = optional_integer(header, "BitsAllocated", path), optional_integer(header, "BitsStored", path)
        signed = optional_integer(header, "PixelRepresentation", path) == 1
    except InputError:
        return None
    if not (frames and rows and columns and frames > 0 and rows > 0 and columns > 0 and bits in (16, 32)):
        return None
    if stored not in (None, bits):
        return None
    length = frames * rows * columns * bits // 8
    if length >= 0xFFFFFFFF:  # no 32-bit element length holds it (refused when read whole)
        return None
    if syntax == ExplicitVRLittleEndian:  # tag, VR, reserved, 32-bit length
        expected = [struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr, 0, length) for vr in (b"OW", b"OB")]
    else:  # tag, 32-bit length
        expected = [struct.pack("<HHI", 0x7FE0, 0x0010, length)]
    size = path.stat().st_size
    start = size - length - len(expected[0])
    if start < 0:
        return None
    with open(path, "rb") as handle:
        handle.seek(start)
        found = handle.read(len(expected[0]))
    if found not in expected:
        return None
    return size - length, np.dtype(f"<{'i' if signed else 'u'}{bits // 8}"), length


def _file_chunks(path: Path, offset: int, dtype: np.dtype, count: int) -> Iterator[np.ndarray]:
    """``count`` values of ``dtype`` from ``offset`` of a file, a chunk at a time (InputError if it ends early)."""
    per_chunk = max(1, READ_CHUNK_BYTES // dtype.itemsize)
    with open(path, "rb") as handle:
        handle.seek(offset)
        for start in range(0, count, per_chunk):
            chunk = np.fromfile(handle, dtype=dtype, count=min(per_chunk, count - start))
            if len(chunk) < min(per_chunk, count - start):
                raise InputError(path, "pixel data is shorter than its header says (file changed while read?)")
            yield chunk
