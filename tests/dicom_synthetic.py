"""Small synthetic DICOM RT objects written with pydicom, for the DICOM loading tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
CT = "1.2.840.10008.5.1.4.1.1.2"
REG = "1.2.840.10008.5.1.4.1.1.66.1"


def _base(sop_class: str, modality: str, frame_of_reference: str | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    ds.PatientID = "synthetic"
    if frame_of_reference is not None:
        ds.FrameOfReferenceUID = frame_of_reference
    return ds


def rtdose(
    pixels: np.ndarray,
    *,
    iop=(1, 0, 0, 0, 1, 0),
    ipp=(-10.0, -20.0, 30.0),
    offsets=None,
    pixel_spacing=(2.0, 3.0),
    scaling: float = 1e-3,
    units: str = "GY",
    summation: str = "PLAN",
    frame_of_reference: str = "1.2.3.4",
    plan_uid: str | None = None,
    fraction_group: int | None = None,
    beams: tuple[int, ...] = (),
    number_of_frames: bool = True,
) -> Dataset:
    """An RTDOSE dataset holding ``pixels`` (frames, rows, columns), stored in its own dtype."""
    pixels = np.asarray(pixels)
    ds = _base(RTDOSE, "RTDOSE", frame_of_reference)
    frames, rows, cols = pixels.shape
    ds.ImageOrientationPatient = list(iop)
    ds.ImagePositionPatient = list(ipp)
    ds.PixelSpacing = list(pixel_spacing)
    ds.Rows, ds.Columns = rows, cols
    if number_of_frames:
        ds.NumberOfFrames = frames
    ds.GridFrameOffsetVector = list(offsets if offsets is not None else np.arange(frames) * 2.5)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = units, "PHYSICAL", summation
    ds.DoseGridScaling = scaling
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    if plan_uid is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTPLAN
        ref.ReferencedSOPInstanceUID = plan_uid
        if fraction_group is not None:
            fg = Dataset()
            fg.ReferencedFractionGroupNumber = fraction_group
            if beams:
                fg.ReferencedBeamSequence = Sequence(
                    [_item(ReferencedBeamNumber=b) for b in beams]
                )
            ref.ReferencedFractionGroupSequence = Sequence([fg])
        ds.ReferencedRTPlanSequence = Sequence([ref])
    return ds


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def rtstruct(
    rois: dict[str, list[list[tuple[float, float, float]]]],
    *,
    frame_of_reference: str = "1.2.3.4",
    types: dict[str, str] | None = None,
    geometric_type: str = "CLOSED_PLANAR",
) -> Dataset:
    """An RTSTRUCT whose ROIs (numbered from 1 in dict order) hold the given contours (mm)."""
    ds = _base(RTSTRUCT, "RTSTRUCT", None)
    ds.ReferencedFrameOfReferenceSequence = Sequence([_item(FrameOfReferenceUID=frame_of_reference)])
    ds.StructureSetROISequence = Sequence(
        [
            _item(ROINumber=n, ROIName=name, ReferencedFrameOfReferenceUID=frame_of_reference)
            for n, name in enumerate(rois, 1)
        ]
    )
    ds.ROIContourSequence = Sequence(
        [
            _item(
                ReferencedROINumber=n,
                ContourSequence=Sequence(
                    [
                        _item(
                            ContourGeometricType="POINT" if len(c) == 1 else geometric_type,
                            NumberOfContourPoints=len(c),
                            ContourData=[float(v) for point in c for v in point],
                        )
                        for c in contours
                    ]
                ),
            )
            for n, contours in enumerate(rois.values(), 1)
        ]
    )
    ds.RTROIObservationsSequence = Sequence(
        [
            _item(ObservationNumber=n, ReferencedROINumber=n, RTROIInterpretedType=(types or {}).get(name, "ORGAN"))
            for n, name in enumerate(rois, 1)
        ]
    )
    return ds


def rtplan(
    fraction_groups: list[tuple[int, list[tuple[int, float, float]]]],
    *,
    prescription_gy: float | None = 60.0,
    frame_of_reference: str | None = "1.2.3.4",
    structure_set_uid: str | None = None,
    isocenter=(0.0, 0.0, 0.0),
) -> Dataset:
    """An RTPLAN: fraction groups as (fractions, [(beam number, beam dose Gy, meterset MU), ...])."""
    ds = _base(RTPLAN, "RTPLAN", frame_of_reference)
    ds.RTPlanLabel = "synthetic"
    if prescription_gy is not None:
        ds.DoseReferenceSequence = Sequence(
            [_item(DoseReferenceNumber=1, DoseReferenceStructureType="SITE", DoseReferenceType="TARGET",
                   TargetPrescriptionDose=prescription_gy)]
        )
    beam_numbers = []
    groups = []
    for number, (fractions, beams) in enumerate(fraction_groups, 1):
        groups.append(
            _item(
                FractionGroupNumber=number,
                NumberOfFractionsPlanned=fractions,
                NumberOfBeams=len(beams),
                ReferencedBeamSequence=Sequence(
                    [_item(ReferencedBeamNumber=b, BeamDose=d, BeamMeterset=mu) for b, d, mu in beams]
                ),
            )
        )
        beam_numbers += [b for b, _, _ in beams]
    ds.FractionGroupSequence = Sequence(groups)
    ds.BeamSequence = Sequence(
        [
            _item(
                BeamNumber=b,
                BeamName=f"B{b}",
                RadiationType="PHOTON",
                TreatmentDeliveryType="TREATMENT",
                NumberOfControlPoints=1,
                ControlPointSequence=Sequence([_item(ControlPointIndex=0, IsocenterPosition=list(isocenter))]),
            )
            for b in beam_numbers
        ]
    )
    if structure_set_uid is not None:
        ds.ReferencedStructureSetSequence = Sequence(
            [_item(ReferencedSOPClassUID=RTSTRUCT, ReferencedSOPInstanceUID=structure_set_uid)]
        )
    return ds


def other(sop_class: str, modality: str, frame_of_reference: str = "1.2.3.4") -> Dataset:
    """A header-only object of another SOP class (CT image, registration)."""
    return _base(sop_class, modality, frame_of_reference)


def write(ds: Dataset, path: Path, *, big_endian: bool = False) -> Path:
    """Write a copy of ``ds`` as a DICOM file; big endian swaps the pixel data bytes to match."""
    ds = copy.deepcopy(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian if big_endian else ExplicitVRLittleEndian
    ds.is_implicit_VR, ds.is_little_endian = False, not big_endian
    if big_endian and "PixelData" in ds:
        dtype = np.dtype(f"{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
        ds.PixelData = np.frombuffer(ds.PixelData, dtype.newbyteorder("<")).astype(dtype.newbyteorder(">")).tobytes()
    pydicom.dcmwrite(str(path), ds, write_like_original=False)
    return path
