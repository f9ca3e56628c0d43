"""RTPLAN -> :class:`Plan`: fraction groups, fractions, beams and the prescription (Gy).

Photon/electron plans (RT Plan) and ion plans (RT Ion Plan) are read alike: only fraction
groups, beam numbers and names, beam doses and metersets, and control point isocentres are used.
Brachytherapy plans are refused. Truncation that pydicom reads silently (a short isocentre, fewer
control points or referenced beams than declared) is refused with an InputError, and so are
non-numeric, non-finite or non-integer values where numbers are read, negative beam doses or
metersets and non-positive prescriptions. FrameOfReferenceUID is required in an RT Ion Plan (its
Frame of Reference module is mandatory) but optional in an RT Plan (PS3.3 A.20.3: module "U");
a plan without one has ``frame_of_reference_uid`` None and its frame comes from its dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import RTIonPlanStorage, RTPlanStorage

from reirrad.dicom.io import (
    check_sop_class,
    integer,
    optional_integer,
    optional_number,
    optional_numbers,
    optional_uid,
    read_dataset,
    uid,
    used_elements,
)
from reirrad.errors import InputError

RTPLAN_SOP_CLASS = RTPlanStorage
RT_ION_PLAN_SOP_CLASS = RTIonPlanStorage
_BEAM = {
    "BeamNumber": None,
    "BeamName": None,
    "NumberOfControlPoints": None,
    "ControlPointSequence": {"IsocenterPosition": None},
    "IonControlPointSequence": {"IsocenterPosition": None},
}
# What plan_from_dataset reads: read_plan decodes only these (a plan's control points also hold
# leaf positions, gantry angles and more, which decoding would cost as much)
PLAN_ELEMENTS = used_elements(
    {
        "SpecificCharacterSet": None,
        "SOPClassUID": None,
        "SOPInstanceUID": None,
        "Modality": None,
        "RTPlanLabel": None,
        "FrameOfReferenceUID": None,
        "BeamSequence": _BEAM,
        "IonBeamSequence": _BEAM,
        "DoseReferenceSequence": {
            "DoseReferenceNumber": None,
            "DoseReferenceType": None,
            "TargetPrescriptionDose": None,
        },
        "FractionGroupSequence": {
            "FractionGroupNumber": None,
            "NumberOfFractionsPlanned": None,
            "NumberOfBrachyApplicationSetups": None,
            "NumberOfBeams": None,
            "ReferencedBeamSequence": {"ReferencedBeamNumber": None, "BeamMeterset": None, "BeamDose": None},
            "ReferencedDoseReferenceSequence": {"ReferencedDoseReferenceNumber": None},
            "FractionPattern": None,
            "NumberOfFractionPatternDigitsPerDay": None,
            "RepeatFractionCycleLength": None,
        },
        "ReferencedStructureSetSequence": {"ReferencedSOPInstanceUID": None},
    }
)


@dataclass(frozen=True)
class Beam:
    """A beam of a fraction group: BeamMeterset (MU) and BeamDose (Gy per fraction) when given."""

    number: int
    name: str
    meterset: float | None
    dose_gy: float | None


@dataclass(frozen=True)
class FractionGroup:
    """One fraction group: its planned fractions, beams and fractionation pattern.

    ``prescription_gy`` is the highest TargetPrescriptionDose (Gy, whole group) of the TARGET
    dose references this group names in its ReferencedDoseReferenceSequence, if any.
    """

    number: int
    fractions_planned: int
    beams: tuple[Beam, ...]
    fraction_pattern: str | None
    fractions_per_day: int | None
    repeat_fraction_cycle_length: int | None
    prescription_gy: float | None = None

    @property
    def beam_numbers(self) -> tuple[int, ...]:
        """The numbers of this group's beams."""
        return tuple(b.number for b in self.beams)


@dataclass(frozen=True)
class Plan:
    """An RT (Ion) Plan. ``prescription_gy`` is the highest TARGET TargetPrescriptionDose (Gy)."""

    path: Path
    sop_instance_uid: str
    label: str
    frame_of_reference_uid: str | None  # None when the (non-ion) plan names none
    referenced_structure_set_uid: str | None
    prescription_gy: float | None
    fraction_groups: tuple[FractionGroup, ...]

    @property
    def fractions(self) -> int | None:
        """Planned fractions when the plan has exactly one fraction group, else None."""
        return self.fraction_groups[0].fractions_planned if len(self.fraction_groups) == 1 else None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """Prescription divided by the fractions (Gy), when both are known."""
        if self.prescription_gy is None or self.fractions is None:
            return None
        return self.prescription_gy / self.fractions

    def fraction_group(self, number: int) -> FractionGroup:
        """The fraction group with this number, or an InputError."""
        for group in self.fraction_groups:
            if group.number == number:
                return group
        raise InputError(self.path, f"plan has no fraction group {number}")


def _target_prescriptions(ds: pydicom.Dataset, path: Path) -> dict[int, float]:
    """Dose reference number -> TargetPrescriptionDose (Gy) of the TARGET dose references."""
    prescriptions: dict[int, float] = {}
    for item in ds.get("DoseReferenceSequence", []):
        if str(item.get("DoseReferenceType", "")).upper() != "TARGET":
            continue
        number = optional_integer(item, "DoseReferenceNumber", path, "dose reference ") or 0
        dose_gy = optional_number(item, "TargetPrescriptionDose", path, f"dose reference {number} ")
        if dose_gy is None:
            continue
        if dose_gy <= 0:
            raise InputError(
                path, f"dose reference {number} TargetPrescriptionDose is {dose_gy:g}; it must be positive"
            )
        prescriptions[number] = dose_gy
    return prescriptions


def _beam_items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    return list(ds.get("BeamSequence", [])) + list(ds.get("IonBeamSequence", []))


def _check_control_points(beam: pydicom.Dataset, path: Path) -> None:
    """Refuse a beam whose control points were truncated (short isocentre, missing items)."""
    number = integer(beam, "BeamNumber", path, "a beam's ")
    points = beam.get("ControlPointSequence") or beam.get("IonControlPointSequence") or []
    for index, point in enumerate(points):
        where = f"beam {number} control point {index}: "
        iso = optional_numbers(point, "IsocenterPosition", path, where)
        if iso is not None and iso.size != 3:
            raise InputError(path, f"{where}IsocenterPosition has {iso.size} of 3 coordinates")
    declared = optional_integer(beam, "NumberOfControlPoints", path, f"beam {number} ")
    if declared is not None and declared != len(points):
        raise InputError(path, f"beam {number} declares {declared} control points but holds {len(points)}")


def _beam(ref: pydicom.Dataset, path: Path, group: int, beam_names: dict[int, str]) -> Beam:
    """One ReferencedBeamSequence item of fraction group ``group``: a beam the plan defines."""
    where = f"fraction group {group} "
    beam_number = integer(ref, "ReferencedBeamNumber", path, where)
    if beam_number not in beam_names:
        raise InputError(path, f"fraction group {group} references beam {beam_number}, which the plan lacks")
    where = f"{where}beam {beam_number} "
    meterset = optional_number(ref, "BeamMeterset", path, where)
    dose_gy = optional_number(ref, "BeamDose", path, where)
    if min(meterset or 0.0, dose_gy or 0.0) < 0:
        raise InputError(path, f"{where}has a negative BeamMeterset or BeamDose")
    return Beam(beam_number, beam_names[beam_number], meterset, dose_gy)


def _fraction_group(
    item: pydicom.Dataset, path: Path, beam_names: dict[int, str], prescriptions: dict[int, float]
) -> FractionGroup:
    """One FractionGroupSequence item, checked against the beams the plan defines."""
    number = integer(item, "FractionGroupNumber", path)
    where = f"fraction group {number} "
    fractions = optional_integer(item, "NumberOfFractionsPlanned", path, where)
    if fractions is None or fractions < 1:
        raise InputError(path, f"fraction group {number} has no positive NumberOfFractionsPlanned")
    if (optional_integer(item, "NumberOfBrachyApplicationSetups", path, where) or 0) > 0:
        raise InputError(path, f"fraction group {number} is brachytherapy; only external beam plans are supported")
    references = list(item.get("ReferencedBeamSequence", []))
    declared = optional_integer(item, "NumberOfBeams", path, where)
    if declared is not None and declared != len(references):
        raise InputError(path, f"fraction group {number} declares {declared} beams but references {len(references)}")
    beams = [_beam(ref, path, number, beam_names) for ref in references]
    named = [
        prescriptions[n]
        for n in (
            optional_integer(r, "ReferencedDoseReferenceNumber", path, where)
            for r in item.get("ReferencedDoseReferenceSequence", [])
        )
        if n in prescriptions
    ]
    pattern = item.get("FractionPattern")
    return FractionGroup(
        number=number,
        fractions_planned=fractions,
        beams=tuple(beams),
        fraction_pattern=str(pattern) if pattern else None,
        fractions_per_day=optional_integer(item, "NumberOfFractionPatternDigitsPerDay", path, where),
        repeat_fraction_cycle_length=optional_integer(item, "RepeatFractionCycleLength", path, where),
        prescription_gy=max(named) if named else None,
    )


def _frame_of_reference(ds: pydicom.Dataset, path: Path) -> str | None:
    """FrameOfReferenceUID: required in an RT Ion Plan, optional (None when absent) in an RT Plan."""
    frame = optional_uid(ds, "FrameOfReferenceUID", path)
    if frame is None and str(ds.get("SOPClassUID", "")) == RT_ION_PLAN_SOP_CLASS:
        raise InputError(path, "FrameOfReferenceUID missing (required in an RT Ion Plan)")
    return frame


def plan_from_dataset(ds: pydicom.Dataset, path: str | Path) -> Plan:
    """Turn a read RTPLAN (or RT Ion Plan) dataset into a :class:`Plan`; ``path`` is used in messages."""
    path = Path(path)
    if str(ds.get("SOPClassUID", "")) != RT_ION_PLAN_SOP_CLASS:
        check_sop_class(ds, path, RTPLAN_SOP_CLASS, "RTPLAN")
    groups = ds.get("FractionGroupSequence")
    if not groups:
        raise InputError(path, "RTPLAN has no FractionGroupSequence (no fractionation)")
    beam_items = _beam_items(ds)
    for beam in beam_items:
        _check_control_points(beam, path)
    beam_names = {integer(b, "BeamNumber", path, "a beam's "): str(b.get("BeamName", "")) for b in beam_items}
    prescriptions = _target_prescriptions(ds, path)
    fraction_groups = tuple(_fraction_group(item, path, beam_names, prescriptions) for item in groups)
    numbers = [g.number for g in fraction_groups]
    if len(set(numbers)) != len(numbers):
        raise InputError(path, f"fraction group numbers repeat: {numbers}")
    structure_refs = ds.get("ReferencedStructureSetSequence")
    return Plan(
        path=path,
        sop_instance_uid=uid(ds, "SOPInstanceUID", path),
        label=str(ds.get("RTPlanLabel", "")),
        frame_of_reference_uid=_frame_of_reference(ds, path),
        referenced_structure_set_uid=(
            uid(structure_refs[0], "ReferencedSOPInstanceUID", path, "ReferencedStructureSetSequence ")
            if structure_refs
            else None
        ),
        prescription_gy=max(prescriptions.values()) if prescriptions else None,
        fraction_groups=fraction_groups,
    )


def read_plan(path: str | Path) -> Plan:
    """Read an RTPLAN file into a :class:`Plan`.

    Only the elements a plan is read from (:data:`PLAN_ELEMENTS`) are decoded: a value that cannot
    be decoded there is an InputError, one elsewhere in the file is not read.
    """
    return plan_from_dataset(read_dataset(path, used=PLAN_ELEMENTS), path)
