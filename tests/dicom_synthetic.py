"""Small synthetic DICOM RT objects written with pydicom, for the DICOM loading tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    SpatialRegistrationStorage,
)

from reirrad.dicom.write import (
    Roi,
    fraction_group,
    item,
    new_dataset,
    plan_references,
    save_atomic,
    set_dose_pixels,
    set_structure_sets,
    structure_set_reference,
)

CT, REG = CTImageStorage, SpatialRegistrationStorage


def _base(sop_class: str, modality: str, frame_of_reference: str | None) -> Dataset:
    """A header-only object of the synthetic patient (no study, series or equipment attributes)."""
    ds = new_dataset(sop_class, modality, PatientID="synthetic")
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
    ds = _base(RTDoseStorage, "RTDOSE", frame_of_reference)
    frames, rows, cols = pixels.shape
    ds.ImageOrientationPatient = list(iop)
    ds.ImagePositionPatient = list(ipp)
    ds.PixelSpacing = list(pixel_spacing)
    ds.Rows, ds.Columns = rows, cols
    if number_of_frames:
        ds.NumberOfFrames = frames
    ds.GridFrameOffsetVector = list(offsets if offsets is not None else np.arange(frames) * 2.5)
    set_dose_pixels(ds, pixels, scaling, dose_type="PHYSICAL", summation_type=summation, units=units)
    if plan_uid is not None:
        ds.ReferencedRTPlanSequence = plan_references([plan_uid], fraction_group, beams)
    return ds


def rtstruct(
    rois: dict[str, list[list[tuple[float, float, float]]]],
    *,
    frame_of_reference: str = "1.2.3.4",
    types: dict[str, str] | None = None,
    geometric_type: str = "CLOSED_PLANAR",
) -> Dataset:
    """An RTSTRUCT whose ROIs (numbered from 1 in dict order) hold the given contours (mm)."""
    ds = _base(RTStructureSetStorage, "RTSTRUCT", None)
    types = types or {}
    rois_ = [Roi(name, contours, types.get(name, "ORGAN")) for name, contours in rois.items()]
    set_structure_sets(ds, rois_, frame_of_reference, geometric_type=geometric_type)
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
    ds = _base(RTPlanStorage, "RTPLAN", frame_of_reference)
    ds.RTPlanLabel = "synthetic"
    if prescription_gy is not None:
        ds.DoseReferenceSequence = Sequence(
            [
                item(
                    DoseReferenceNumber=1,
                    DoseReferenceStructureType="SITE",
                    DoseReferenceType="TARGET",
                    TargetPrescriptionDose=prescription_gy,
                )
            ]
        )
    ds.FractionGroupSequence = Sequence(
        fraction_group(number, fractions, beams) for number, (fractions, beams) in enumerate(fraction_groups, 1)
    )
    beam_numbers = [b for _, beams in fraction_groups for b, _, _ in beams]
    ds.BeamSequence = Sequence(
        [
            item(
                BeamNumber=b,
                BeamName=f"B{b}",
                RadiationType="PHOTON",
                TreatmentDeliveryType="TREATMENT",
                NumberOfControlPoints=1,
                ControlPointSequence=Sequence([item(ControlPointIndex=0, IsocenterPosition=list(isocenter))]),
            )
            for b in beam_numbers
        ]
    )
    if structure_set_uid is not None:
        ds.ReferencedStructureSetSequence = structure_set_reference(structure_set_uid)
    return ds


def other(sop_class: str, modality: str, frame_of_reference: str = "1.2.3.4") -> Dataset:
    """A header-only object of another SOP class (CT image, registration)."""
    return _base(sop_class, modality, frame_of_reference)


def write(ds: Dataset, path: Path, *, big_endian: bool = False) -> Path:
    """Write a copy of ``ds`` as a DICOM file (explicit VR; big endian swaps the pixel data bytes to match)
    with reirrad's writer."""
    ds = copy.deepcopy(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian if big_endian else ExplicitVRLittleEndian
    ds.is_implicit_VR, ds.is_little_endian = False, not big_endian
    if big_endian and "PixelData" in ds:
        dtype = np.dtype(f"{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
        ds.PixelData = np.frombuffer(ds.PixelData, dtype.newbyteorder("<")).astype(dtype.newbyteorder(">")).tobytes()
    return save_atomic(ds, path)
