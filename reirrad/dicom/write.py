"""Write a dose array on a :class:`Grid` as an RTDOSE file (under the output policy of
:mod:`reirrad.outputs`: atomically, never over an input).

The patient and study modules are copied from a header dataset (the reference course's RTDOSE);
series, instance and equipment attributes are new. Pixel data are unsigned integers times
DoseGridScaling: 32-bit by default, 16-bit on request (dciodvfy cannot read 32-bit pixel data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def encode_pixels(dose_gy: np.ndarray, bits: int) -> tuple[np.ndarray, str]:
    """Unsigned integer pixels and the DoseGridScaling (DS text) that brings them back to Gy.

    The scaling is rounded up in its 16-character text so that the maximum dose always fits.
    """
    if bits not in (16, 32):
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    if not np.all(np.isfinite(dose_gy)) or dose_gy.min(initial=0.0) < 0:
        raise ValueError("dose must be finite and non-negative")
    top = float(2**bits - 1)
    peak = float(dose_gy.max(initial=0.0))
    scaling_text = _ds_string(peak / top * (1 + 1e-9)) if peak > 0 else "1"
    while peak / float(scaling_text) > top:
        scaling_text = _ds_string(float(scaling_text) * (1 + 1e-9))
    pixels = dose_gy / float(scaling_text)
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, top, out=pixels)
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


# ------------------------------------------------------------------ automatic registration (autoreg)
# CT series and Spatial Registration writers; self-contained (used by reirrad/autoreg.py,
# `reirrad register`, the sample plans' CT phantom and the registration tests).

CT_IMAGE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
SPATIAL_REGISTRATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
_CT_RESCALE_INTERCEPT = -1024  # pixel value 0 = -1024 HU (unsigned 16-bit pixels, 1 HU steps)


def _random_uid(name: str) -> str:
    """A new random UID (``name`` says what it is for; unused)."""
    return generate_uid()


def _new_instance(ds: Dataset, header: Dataset, sop_class: str, modality: str, uid_for: Callable[[str], str]) -> None:
    """Patient and study copied from ``header``; SOP, date and equipment attributes set."""
    now = datetime.now()
    for keyword in PATIENT_STUDY_KEYWORDS:
        setattr(ds, keyword, header.get(keyword, ""))
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = uid_for("study")
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.BodyPartExamined = "HEADNECK"  # unpaired: General Series Laterality (2C) then stays absent
    ds.InstanceCreationDate = str(header.get("InstanceCreationDate", "")) or now.strftime("%Y%m%d")
    ds.InstanceCreationTime = str(header.get("InstanceCreationTime", "")) or now.strftime("%H%M%S")
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.Manufacturer = "reirrad"
    ds.ManufacturerModelName = "reirrad"
    ds.DeviceSerialNumber = "none"
    ds.SoftwareVersions = __version__


def _with_file_meta(ds: Dataset) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def ct_series_datasets(
    hu: np.ndarray, grid: Grid, header: Dataset, *, description: str, uid_for: Callable[[str], str] | None = None
) -> list[Dataset]:
    """One CT Image Storage dataset per frame of ``hu`` (Hounsfield units, shape ``grid.shape``).

    Pixels are unsigned 16-bit, RescaleIntercept -1024, RescaleSlope 1 (HU rounded, clipped to
    [-1024, 64511]). ``uid_for(name)`` makes the UIDs (default: random); give a deterministic one
    for reproducible files.
    """
    if hu.shape != grid.shape:
        raise ValueError(f"CT shape {hu.shape} does not match grid {grid.shape}")
    if uid_for is None:
        uid_for = _random_uid
    series_uid = uid_for("ct series")
    normal = np.asarray(grid.frame_direction) * grid.spacing_mm[0]
    pixels = np.clip(np.rint(hu) - _CT_RESCALE_INTERCEPT, 0, 65535).astype(np.uint16)
    slices = []
    for k in range(grid.shape[0]):
        ds = Dataset()
        _new_instance(ds, header, CT_IMAGE_SOP_CLASS, "CT", uid_for)
        ds.SOPInstanceUID = uid_for(f"ct slice {k}")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 1, k + 1
        ds.SeriesDescription = _short(description)
        ds.OperatorsName = ""
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = grid.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.AcquisitionNumber = 1
        ds.KVP = ""
        position = np.asarray(grid.origin_mm) + k * normal
        ds.ImagePositionPatient = [_ds_string(v) for v in position]
        ds.ImageOrientationPatient = [_ds_string(v) for v in (*grid.row_direction, *grid.column_direction)]
        ds.SliceLocation = _ds_string(float(position @ np.asarray(grid.frame_direction)))
        ds.SliceThickness = _ds_string(grid.spacing_mm[0])
        ds.PixelSpacing = [_ds_string(grid.spacing_mm[1]), _ds_string(grid.spacing_mm[2])]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(_CT_RESCALE_INTERCEPT), "1", "HU"
        ds.PixelData = pixels[k].tobytes()
        slices.append(_with_file_meta(ds))
    return slices


def _image_references(images: Iterable[Dataset]) -> Sequence:
    items = []
    for image in images:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        items.append(item)
    return Sequence(items)


def _registration_item(frame_uid: str, matrix: np.ndarray, images: list[Dataset], comment: str) -> Dataset:
    entry = Dataset()
    entry.FrameOfReferenceTransformationMatrixType = "RIGID"
    entry.FrameOfReferenceTransformationMatrix = [_ds_string(float(v)) for v in np.asarray(matrix).ravel()]
    registration = Dataset()
    registration.FrameOfReferenceTransformationComment = _short(comment)
    registration.RegistrationTypeCodeSequence = Sequence([])
    registration.MatrixSequence = Sequence([entry])
    item = Dataset()
    item.FrameOfReferenceUID = frame_uid
    if images:
        item.ReferencedImageSequence = _image_references(images)
    item.MatrixRegistrationSequence = Sequence([registration])
    return item


def _common_instance_reference(ds: Dataset, image_sets: Iterable[list[Dataset]]) -> None:
    """Common Instance Reference module: every referenced image, by series and study."""
    studies: dict[str, dict[str, list[Dataset]]] = {}
    for images in image_sets:
        for image in images:
            studies.setdefault(str(image.StudyInstanceUID), {}).setdefault(str(image.SeriesInstanceUID), []).append(image)

    def series_items(series: dict[str, list[Dataset]]) -> Sequence:
        items = []
        for series_uid, images in series.items():
            item = Dataset()
            item.SeriesInstanceUID = series_uid
            item.ReferencedInstanceSequence = _image_references(images)
            items.append(item)
        return Sequence(items)

    others = []
    for study_uid, series in studies.items():
        if study_uid == ds.StudyInstanceUID:
            ds.ReferencedSeriesSequence = series_items(series)
        else:
            item = Dataset()
            item.StudyInstanceUID = study_uid
            item.ReferencedSeriesSequence = series_items(series)
            others.append(item)
    if others:
        ds.StudiesContainingOtherReferencedInstancesSequence = Sequence(others)


def registration_dataset(
    matrix: np.ndarray,
    new_frame_uid: str,
    prior_frame_uid: str,
    header: Dataset,
    *,
    description: str,
    new_images: Iterable[Dataset] = (),
    prior_images: Iterable[Dataset] = (),
) -> Dataset:
    """A rigid DICOM Spatial Registration in the standard's direction (PS3.3 C.20.2).

    The REG's own frame is ``new_frame_uid``: item 1 registers it with the identity, item 2
    registers ``prior_frame_uid`` with ``matrix`` (4x4, maps prior-frame points into the new
    frame, mm). Patient and study are copied from ``header`` (the new course's CT);
    ``new_images``/``prior_images`` are the CT datasets (headers suffice) referenced per frame.
    """
    new_images, prior_images = list(new_images), list(prior_images)
    ds = Dataset()
    _new_instance(ds, header, SPATIAL_REGISTRATION_SOP_CLASS, "REG", _random_uid)
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 1, 1
    ds.SeriesDescription = _short(description)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = new_frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ContentLabel = "AUTOREG"
    ds.ContentDescription = _short(description)
    ds.ContentCreatorName = ""
    ds.RegistrationSequence = Sequence([
        _registration_item(new_frame_uid, np.eye(4), new_images, "identity: the REG's own frame"),
        _registration_item(prior_frame_uid, matrix, prior_images, description),
    ])
    _common_instance_reference(ds, (new_images, prior_images))
    return _with_file_meta(ds)
