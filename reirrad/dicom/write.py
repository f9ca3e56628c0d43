"""Write a dose array on a :class:`Grid` as an RTDOSE file (under the output policy of
:mod:`reirrad.outputs`: atomically, never over an input).

The patient and study modules are copied from a header dataset (the reference course's RTDOSE);
series, instance and equipment attributes are new. Pixel data are unsigned integers times
DoseGridScaling: 32-bit by default, 16-bit on request (dciodvfy cannot read 32-bit pixel data).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from reirrad import __version__
from reirrad.dicom.dose import RTDOSE_SOP_CLASS
from reirrad.grid import Grid
from reirrad.outputs import check_output, write_output

RTPLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
GRID_FRAME_OFFSET_VECTOR_TAG = 0x3004000C
# Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1): copied, or empty when absent (type 2).
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)
_LO_LENGTH = 64  # maximum characters of an LO value (SeriesDescription, DoseComment)


def _ds_string(value: float) -> str:
    """A decimal string of at most 16 characters (VR DS)."""
    for digits in range(12, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot write {value} as DS")


def _short(text: str) -> str:
    """Text cut to the LO length, marked with an ellipsis when cut."""
    return text if len(text) <= _LO_LENGTH else text[: _LO_LENGTH - 3] + "..."


def grid_scaling(peak_gy: float, bits: int = 32) -> str:
    """The DoseGridScaling (DS text) for a dose whose maximum is ``peak_gy``: rounded up in its
    16-character text so that the maximum always fits in ``bits``-bit pixels."""
    if bits not in (16, 32):
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    top = float(2**bits - 1)
    scaling_text = _ds_string(peak_gy / top * (1 + 1e-9)) if peak_gy > 0 else "1"
    while peak_gy / float(scaling_text) > top:
        scaling_text = _ds_string(float(scaling_text) * (1 + 1e-9))
    return scaling_text


def encode_pixels(dose_gy: np.ndarray, bits: int, scaling_text: str | None = None) -> tuple[np.ndarray, str]:
    """Unsigned integer pixels and the DoseGridScaling (DS text) that brings them back to Gy.

    The scaling is :func:`grid_scaling` of the dose's maximum, or ``scaling_text`` when given (a
    part of a larger dose, encoded with the whole dose's scaling).
    """
    if bits not in (16, 32):
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    if not np.all(np.isfinite(dose_gy)) or dose_gy.min(initial=0.0) < 0:
        raise ValueError("dose must be finite and non-negative")
    if scaling_text is None:
        scaling_text = grid_scaling(float(dose_gy.max(initial=0.0)), bits)
    pixels = dose_gy / float(scaling_text)
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, float(2**bits - 1), out=pixels)
    return pixels.astype(np.uint32 if bits == 32 else np.uint16), scaling_text


def _geometry(grid: Grid) -> dict[str, object]:
    """Image Plane and multi-frame attributes of a grid (frame offsets relative, first = 0)."""
    normal = np.cross(grid.row_direction, grid.column_direction)
    step = grid.spacing_mm[0] * float(np.dot(grid.frame_direction, normal))
    return {
        "ImagePositionPatient": [_ds_string(v) for v in grid.origin_mm],
        "ImageOrientationPatient": [_ds_string(v) for v in (*grid.row_direction, *grid.column_direction)],
        "PixelSpacing": [_ds_string(grid.spacing_mm[1]), _ds_string(grid.spacing_mm[2])],
        "SliceThickness": _ds_string(grid.spacing_mm[0]),
        "GridFrameOffsetVector": [_ds_string(k * step) for k in range(grid.shape[0])],
        "NumberOfFrames": grid.shape[0],
        "FrameIncrementPointer": GRID_FRAME_OFFSET_VECTOR_TAG,
        "Rows": grid.shape[1],
        "Columns": grid.shape[2],
    }


def dose_dataset(
    dose_gy: np.ndarray,
    grid: Grid,
    header: Dataset,
    *,
    dose_type: str,
    summation_type: str,
    description: str,
    plan_uids: Iterable[str] = (),
    bits: int = 32,
) -> Dataset:
    """An RTDOSE dataset for ``dose_gy`` on ``grid``, patient and study copied from ``header``.

    ``description`` goes whole into ImageComments and, cut to 64 characters, into
    SeriesDescription and DoseComment. ``plan_uids`` fill ReferencedRTPlanSequence.
    """
    if dose_gy.shape != grid.shape:
        raise ValueError(f"dose shape {dose_gy.shape} does not match grid {grid.shape}")
    pixels, scaling = encode_pixels(dose_gy, bits)
    return encoded_dose_dataset(
        pixels, scaling, grid, header, dose_type=dose_type, summation_type=summation_type, description=description,
        plan_uids=plan_uids,
    )


def encoded_dose_dataset(
    pixels: np.ndarray,
    scaling: str,
    grid: Grid,
    header: Dataset,
    *,
    dose_type: str,
    summation_type: str,
    description: str,
    plan_uids: Iterable[str] = (),
) -> Dataset:
    """:func:`dose_dataset` for pixels already encoded (:func:`encode_pixels`: uint16 or uint32,
    shape ``grid.shape``) with their DoseGridScaling text."""
    if pixels.shape != grid.shape or pixels.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"pixels {pixels.dtype} {pixels.shape} are not uint16/uint32 on grid {grid.shape}")
    bits = pixels.dtype.itemsize * 8
    now = datetime.now()
    ds = Dataset()
    for keyword in PATIENT_STUDY_KEYWORDS:
        setattr(ds, keyword, header.get(keyword, ""))
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid()
    ds.SOPClassUID = RTDOSE_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.OperatorsName = ""
    ds.SeriesDescription = _short(description)
    ds.ImageComments = description
    ds.Manufacturer = "reirrad"
    ds.SoftwareVersions = __version__
    ds.FrameOfReferenceUID = grid.frame_of_reference_uid or header.get("FrameOfReferenceUID", "")
    ds.PositionReferenceIndicator = ""
    for keyword, value in _geometry(grid).items():
        setattr(ds, keyword, value)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = dose_type
    ds.DoseSummationType = summation_type
    ds.DoseComment = _short(description)
    ds.DoseGridScaling = scaling
    references = []
    for uid in dict.fromkeys(plan_uids):
        item = Dataset()
        item.ReferencedSOPClassUID = RTPLAN_SOP_CLASS
        item.ReferencedSOPInstanceUID = uid
        references.append(item)
    if references:
        ds.ReferencedRTPlanSequence = Sequence(references)
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def save_atomic(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` under the output policy (a regular file is replaced atomically)."""
    write_output(path, lambda stream: pydicom.dcmwrite(stream, ds, write_like_original=False))
    return Path(path)


def refuse_input_as_output(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """InputError when ``output`` cannot be written or is one of the input files (same path or
    same file through a link): checked before anything is computed."""
    check_output(output, inputs)
