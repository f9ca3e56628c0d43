"""The one DICOM writer: builds the RT objects reirrad writes, the sample-plan generator writes and
the tests write, and saves them (product outputs under the policy of :mod:`reirrad.outputs`:
atomically, never over an input).

- :func:`new_dataset`: SOP Common attributes, Modality and file meta (:func:`set_file_meta`: explicit
  VR little endian);
  :func:`rt_dataset` adds the Patient and General Study modules copied from a header dataset and
  new General Series, Frame of Reference and General Equipment attributes.
- Builders of the RT modules: :func:`set_dose_pixels` and :func:`set_grid_geometry` (RTDOSE),
  :func:`plan_references`, :func:`set_structure_sets` with :class:`Roi` (RTSTRUCT),
  :func:`fraction_group` and :func:`structure_set_reference` (RTPLAN), :func:`registration_sequence` (REG).
- :func:`dose_header_dataset` and :func:`save_dose_streamed`: the product's RTDOSE of a dose on a
  :class:`Grid`, its pixels written slab by slab (a cumulative sum), never held whole; the patient and
  study come from the reference course's RTDOSE, series, instance and equipment are new. Pixel data
  are unsigned integers times DoseGridScaling (:func:`encode_pixels`): 32-bit by default, 16-bit on
  request (dciodvfy cannot read 32-bit pixel data).

SOP class UIDs are pydicom's (:mod:`pydicom.uid`), never spelled out here.
"""

from __future__ import annotations

import struct
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    SpatialRegistrationStorage,
    generate_uid,
)

from reirrad import __version__
from reirrad.dicom.registration import AUTOMATIC_REG_LABEL
from reirrad.grid import Grid
from reirrad.outputs import check_output, write_output

GRID_FRAME_OFFSET_VECTOR_TAG = 0x3004000C
_PIXEL_DATA_TAG = 0x7FE00010
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
# General Equipment module (PS3.3 C.7.5.1) of what reirrad writes.
REIRRAD_EQUIPMENT: Mapping[str, str] = {"Manufacturer": "reirrad", "SoftwareVersions": __version__}
_LO_LENGTH = 64  # maximum characters of an LO value (SeriesDescription, DoseComment)
NumberText = Callable[[float], "str | float"]  # how a builder writes a decimal (DS) value


def _ds_string(value: float) -> str:
    """A decimal string of at most 16 characters (VR DS), with as many digits as fit (at most 12)."""
    for digits in range(12, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot write {value} as DS")


def _short(text: str) -> str:
    """Text cut to the LO length, marked with an ellipsis when cut."""
    return text if len(text) <= _LO_LENGTH else text[: _LO_LENGTH - 3] + "..."


def item(**attributes: Any) -> Dataset:
    """A dataset (typically a sequence item) with ``attributes`` (DICOM keyword = value)."""
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def file_meta(ds: Dataset, implementation: tuple[str, str] | None = None) -> FileMetaDataset:
    """File meta information of ``ds`` for explicit VR little endian.

    ``implementation`` is (ImplementationClassUID, ImplementationVersionName); default: pydicom's,
    filled in when the file is written.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if implementation is not None:
        meta.ImplementationClassUID = UID(implementation[0])
        meta.ImplementationVersionName = implementation[1]
    return meta


def set_file_meta(ds: Dataset, implementation: tuple[str, str] | None = None) -> Dataset:
    """Give ``ds`` its file meta (:func:`file_meta`) and the explicit VR little endian encoding; returns ``ds``."""
    ds.file_meta = file_meta(ds, implementation)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def new_dataset(
    sop_class_uid: str,
    modality: str,
    *,
    sop_instance_uid: str | None = None,
    **attributes: Any,
) -> Dataset:
    """A dataset of ``sop_class_uid`` with a new (or the given) SOPInstanceUID, its Modality, the
    further ``attributes`` and its file meta (:func:`set_file_meta`)."""
    ds = item(SOPClassUID=sop_class_uid, SOPInstanceUID=sop_instance_uid or generate_uid(), Modality=modality)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return set_file_meta(ds)


def rt_dataset(
    sop_class_uid: str,
    modality: str,
    header: Dataset,
    *,
    description: str,
    frame_of_reference_uid: str,
    created: datetime,
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    series_number: int = 1,
    operators_name: str = "",
    equipment: Mapping[str, str] = REIRRAD_EQUIPMENT,
) -> Dataset:
    """A new object of a patient's study: the modules every RT object written here shares.

    Patient and General Study (:data:`PATIENT_STUDY_KEYWORDS` and SpecificCharacterSet) are copied
    from ``header`` (empty when absent; a new StudyInstanceUID when it has none); General Series
    (new SeriesInstanceUID unless given, ``description`` cut to 64 characters), Frame of Reference,
    General Equipment (``equipment``: keyword -> value) and SOP Common (InstanceCreationDate and
    Time from ``created``) are new.
    """
    ds = new_dataset(
        sop_class_uid,
        modality,
        sop_instance_uid=sop_instance_uid,
        InstanceCreationDate=created.strftime("%Y%m%d"),
        InstanceCreationTime=created.strftime("%H%M%S"),
        SeriesInstanceUID=series_instance_uid or generate_uid(),
        SeriesNumber=series_number,
        SeriesDescription=_short(description),
        InstanceNumber=1,
        OperatorsName=operators_name,
        FrameOfReferenceUID=frame_of_reference_uid,
        PositionReferenceIndicator="",
        **equipment,
    )
    copy_patient_study(ds, header, generate_uid)
    return ds


def copy_patient_study(ds: Dataset, header: Dataset, new_uid: Callable[[], str]) -> None:
    """Patient and General Study (:data:`PATIENT_STUDY_KEYWORDS`, SpecificCharacterSet) copied from
    ``header`` (empty when absent); ``new_uid()`` makes the StudyInstanceUID when it has none."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        setattr(ds, keyword, header.get(keyword, ""))
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = new_uid()


# ------------------------------------------------------------------ RTDOSE


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


def set_dose_pixels(
    ds: Dataset, pixels: np.ndarray, scaling: str | float, *, dose_type: str, summation_type: str, units: str = "GY"
) -> None:
    """Image Pixel and RT Dose attributes of ``pixels`` (frames, rows, columns): integers of their own
    dtype (signed or not), stored little endian, times ``scaling`` (DoseGridScaling) in ``units``."""
    set_dose_attributes(ds, pixels.dtype, scaling, dose_type=dose_type, summation_type=summation_type, units=units)
    ds.PixelData = np.asarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()  # one copy, the bytes


def set_dose_attributes(
    ds: Dataset, dtype: np.dtype, scaling: str | float, *, dose_type: str, summation_type: str, units: str = "GY"
) -> None:
    """:func:`set_dose_pixels` without the pixel data: the attributes of integer pixels of ``dtype``."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(dtype.kind == "i")
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = units, dose_type, summation_type
    ds.DoseGridScaling = scaling


def set_grid_geometry(ds: Dataset, grid: Grid) -> None:
    """Image Plane and multi-frame attributes of ``grid`` (frame offsets relative, first = 0)."""
    normal = np.cross(grid.row_direction, grid.column_direction)
    step = grid.spacing_mm[0] * float(np.dot(grid.frame_direction, normal))
    ds.ImagePositionPatient = [_ds_string(v) for v in grid.origin_mm]
    ds.ImageOrientationPatient = [_ds_string(v) for v in (*grid.row_direction, *grid.column_direction)]
    ds.PixelSpacing = [_ds_string(grid.spacing_mm[1]), _ds_string(grid.spacing_mm[2])]
    ds.SliceThickness = _ds_string(grid.spacing_mm[0])
    ds.GridFrameOffsetVector = [_ds_string(k * step) for k in range(grid.shape[0])]
    ds.NumberOfFrames = grid.shape[0]
    ds.FrameIncrementPointer = GRID_FRAME_OFFSET_VECTOR_TAG
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]


def plan_references(
    plan_uids: Iterable[str], fraction_group: int | None = None, beams: abc.Sequence[int] = ()
) -> Sequence:
    """ReferencedRTPlanSequence of an RTDOSE: one item per distinct plan UID, optionally naming a
    fraction group (and its beams) of the plan."""
    references = []
    for uid in dict.fromkeys(plan_uids):
        reference = item(ReferencedSOPClassUID=RTPlanStorage, ReferencedSOPInstanceUID=uid)
        if fraction_group is not None:
            group = item(ReferencedFractionGroupNumber=fraction_group)
            if beams:
                group.ReferencedBeamSequence = Sequence([item(ReferencedBeamNumber=b) for b in beams])
            reference.ReferencedFractionGroupSequence = Sequence([group])
        references.append(reference)
    return Sequence(references)


def dose_header_dataset(
    dtype: np.dtype | type,
    scaling: str,
    grid: Grid,
    header: Dataset,
    *,
    dose_type: str,
    summation_type: str,
    description: str,
    plan_uids: Iterable[str] = (),
) -> Dataset:
    """An RTDOSE dataset without its pixel data, for pixels of ``dtype`` (uint16 or uint32) with the
    DoseGridScaling text ``scaling`` (:func:`encode_pixels`), written later by :func:`save_dose_streamed`;
    patient and study copied from ``header``.

    ``description`` goes whole into ImageComments and, cut to 64 characters, into SeriesDescription
    and DoseComment. ``plan_uids`` fill ReferencedRTPlanSequence.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.uint16, np.uint32):
        raise ValueError(f"pixels {dtype} are not uint16/uint32")
    ds = rt_dataset(
        RTDoseStorage,
        "RTDOSE",
        header,
        description=description,
        frame_of_reference_uid=grid.frame_of_reference_uid or header.get("FrameOfReferenceUID", ""),
        created=datetime.now(),
    )
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.ImageComments = description
    set_grid_geometry(ds, grid)
    set_dose_attributes(ds, dtype, scaling, dose_type=dose_type, summation_type=summation_type)
    ds.DoseComment = _short(description)
    references = plan_references(plan_uids)
    if references:
        ds.ReferencedRTPlanSequence = references
    return ds


def save_dose_streamed(ds: Dataset, slabs: Iterable[np.ndarray], path: str | Path) -> Path:
    """Write ``ds`` (:func:`dose_header_dataset`: explicit VR little endian, no pixel data) to ``path``
    as :func:`save_atomic` does, its pixel data given as ``slabs``: whole frames in order, of the
    dtype BitsAllocated names, written as they come so that the whole grid's pixels are never held.

    The file is the one :func:`save_atomic` writes for ``ds`` with PixelData set to the slabs joined
    (PixelData, (7FE0,0010), is the dataset's last element). ValueError (nothing written) when the
    slabs do not fill Rows x Columns x NumberOfFrames pixels exactly or another element would follow.
    """
    if "PixelData" in ds or ds.file_meta.TransferSyntaxUID != ExplicitVRLittleEndian:
        raise ValueError("streamed pixel data needs an explicit VR little endian dataset without PixelData")
    if any(element.tag > _PIXEL_DATA_TAG for element in ds):
        raise ValueError("an element follows PixelData: the pixel data cannot be streamed")
    dtype = np.dtype(f"<u{int(ds.BitsAllocated) // 8}")
    length = int(ds.Rows) * int(ds.Columns) * int(ds.NumberOfFrames) * dtype.itemsize

    def write(stream: BinaryIO) -> None:
        pydicom.dcmwrite(stream, ds, write_like_original=False)
        stream.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        written = 0
        for slab in slabs:
            data = np.asarray(slab, dtype=dtype).tobytes()
            written += len(data)
            if written > length:
                break
            stream.write(data)
        if written != length:
            raise ValueError(f"streamed pixel data of {written} bytes where the header says {length}")

    write_output(path, write)
    return Path(path)


# ------------------------------------------------------------------ RTSTRUCT


@dataclass(frozen=True)
class Roi:
    """One ROI of a structure set: its name, contours (each (N, 3) in mm, one plane each; None: the
    ROI has no ContourSequence) and the optional attributes some writers give."""

    name: str
    contours_mm: abc.Sequence[Any] | None
    interpreted_type: str = "ORGAN"
    color: tuple[int, int, int] | None = None
    generation_algorithm: str = ""
    interpreter: str = ""


def _contour(number: int, points_mm: Any, geometric_type: str, number_text: NumberText) -> Dataset:
    points = np.asarray(points_mm, dtype=float).reshape(-1, 3)
    return item(
        ContourNumber=number,
        ContourGeometricType="POINT" if len(points) == 1 else geometric_type,
        NumberOfContourPoints=len(points),
        ContourData=[number_text(v) for v in points.ravel()],
    )


def set_structure_sets(
    ds: Dataset,
    rois: abc.Sequence[Roi],
    frame_of_reference_uid: str,
    *,
    geometric_type: str = "CLOSED_PLANAR",
    number_text: NumberText = float,
) -> None:
    """Structure Set (frame and ROI sequences), ROI Contour and RT ROI Observations modules of ``rois``,
    numbered from 1 in order; a single-point contour is a POINT, every other one ``geometric_type``."""
    ds.ReferencedFrameOfReferenceSequence = Sequence([item(FrameOfReferenceUID=frame_of_reference_uid)])
    ds.StructureSetROISequence = Sequence(
        item(
            ROINumber=n,
            ReferencedFrameOfReferenceUID=frame_of_reference_uid,
            ROIName=roi.name,
            ROIGenerationAlgorithm=roi.generation_algorithm,
        )
        for n, roi in enumerate(rois, 1)
    )
    contours = []
    for n, roi in enumerate(rois, 1):
        entry = item() if roi.color is None else item(ROIDisplayColor=list(roi.color))
        if roi.contours_mm is not None:
            entry.ContourSequence = Sequence(
                _contour(i, c, geometric_type, number_text) for i, c in enumerate(roi.contours_mm, 1)
            )
        entry.ReferencedROINumber = n
        contours.append(entry)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(
        item(
            ObservationNumber=n,
            ReferencedROINumber=n,
            RTROIInterpretedType=roi.interpreted_type,
            ROIInterpreter=roi.interpreter,
        )
        for n, roi in enumerate(rois, 1)
    )


# ------------------------------------------------------------------ RTPLAN


def structure_set_reference(structure_set_uid: str) -> Sequence:
    """ReferencedStructureSetSequence of an RTPLAN naming one RTSTRUCT."""
    return Sequence([item(ReferencedSOPClassUID=RTStructureSetStorage, ReferencedSOPInstanceUID=structure_set_uid)])


def fraction_group(
    number: int,
    fractions: int,
    beams: abc.Sequence[tuple[int, str | float, str | float]],
    dose_reference_number: int | None = None,
) -> Dataset:
    """One FractionGroupSequence item: ``fractions`` planned, ``beams`` as (beam number, BeamDose in
    Gy per fraction, BeamMeterset), optionally referring to a dose reference."""
    group = item(
        FractionGroupNumber=number,
        NumberOfFractionsPlanned=fractions,
        NumberOfBeams=len(beams),
        NumberOfBrachyApplicationSetups=0,
        ReferencedBeamSequence=Sequence(
            item(BeamDose=dose, BeamMeterset=meterset, ReferencedBeamNumber=beam) for beam, dose, meterset in beams
        ),
    )
    if dose_reference_number is not None:
        group.ReferencedDoseReferenceSequence = Sequence([item(ReferencedDoseReferenceNumber=dose_reference_number)])
    return group


# ------------------------------------------------------------------ REG


def registration_sequence(
    to_own_frame: Mapping[str, np.ndarray],
    *,
    matrix_type: str = "RIGID",
    type_code: tuple[str, str, str] | None = None,
    number_text: NumberText = _ds_string,
) -> Sequence:
    """RegistrationSequence of a Spatial Registration: one item per frame of reference, whose 4x4
    matrix maps that frame's points (mm) into the REG's own frame (PS3.3 C.20.2).

    ``type_code`` is the RegistrationTypeCodeSequence item (CodeValue, CodingSchemeDesignator,
    CodeMeaning), e.g. ("125025", "DCM", "Visual Alignment").
    """
    items = []
    for frame, matrix in to_own_frame.items():
        entry = item(
            FrameOfReferenceTransformationMatrixType=matrix_type,
            FrameOfReferenceTransformationMatrix=[number_text(v) for v in np.asarray(matrix, dtype=float).ravel()],
        )
        registration = item(MatrixSequence=Sequence([entry]))
        if type_code is not None:
            code = item(CodeValue=type_code[0], CodingSchemeDesignator=type_code[1], CodeMeaning=type_code[2])
            registration.RegistrationTypeCodeSequence = Sequence([code])
        items.append(item(FrameOfReferenceUID=frame, MatrixRegistrationSequence=Sequence([registration])))
    return Sequence(items)


# ------------------------------------------------------------------ writing


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

_CT_RESCALE_INTERCEPT = -1024  # pixel value 0 = -1024 HU (unsigned 16-bit pixels, 1 HU steps)


def _random_uid(name: str) -> str:
    """A new random UID (``name`` says what it is for; unused)."""
    return generate_uid()


def _new_instance(ds: Dataset, header: Dataset, sop_class: str, modality: str, uid_for: Callable[[str], str]) -> None:
    """Patient and study copied from ``header``; SOP, date and equipment attributes set."""
    now = datetime.now()
    copy_patient_study(ds, header, lambda: uid_for("study"))
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
        _new_instance(ds, header, CTImageStorage, "CT", uid_for)
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
        slices.append(set_file_meta(ds))
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
            studies.setdefault(str(image.StudyInstanceUID), {}).setdefault(str(image.SeriesInstanceUID), []).append(
                image
            )

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
    _new_instance(ds, header, SpatialRegistrationStorage, "REG", _random_uid)
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 1, 1
    ds.SeriesDescription = _short(description)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = new_frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ContentLabel = AUTOMATIC_REG_LABEL  # read back as "not reviewed" (reirrad.dicom.registration)
    ds.ContentDescription = _short(description)
    ds.ContentCreatorName = ""
    ds.RegistrationSequence = Sequence(
        [
            _registration_item(new_frame_uid, np.eye(4), new_images, "identity: the REG's own frame"),
            _registration_item(prior_frame_uid, matrix, prior_images, description),
        ]
    )
    _common_instance_reference(ds, (new_images, prior_images))
    return set_file_meta(ds)
