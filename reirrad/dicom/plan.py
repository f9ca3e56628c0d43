"""RTPLAN -> :class:`Plan`: fraction groups, fractions, beams and the prescription (Gy).

Photon/electron plans (RT Plan) and ion plans (RT Ion Plan) are read alike: only fraction
groups, beam numbers and names, beam doses and metersets, and control point isocentres are used.
Brachytherapy plans are refused. Truncation that pydicom reads silently (a short isocentre, fewer
control points or referenced beams than declared) is refused with an InputError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom

from reirrad.dicom.io import check_sop_class, optional_float, optional_int, read_dataset, require
from reirrad.errors import InputError

RTPLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.8"


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
    frame_of_reference_uid: str  # "" when the plan names none
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


def _target_prescriptions(ds: pydicom.Dataset) -> dict[int, float]:
    """Dose reference number -> TargetPrescriptionDose (Gy) of the TARGET dose references."""
    return {
        int(item.get("DoseReferenceNumber", 0) or 0): float(item.TargetPrescriptionDose)
        for item in ds.get("DoseReferenceSequence", [])
        if str(item.get("DoseReferenceType", "")).upper() == "TARGET"
        and item.get("TargetPrescriptionDose") not in (None, "")
    }


def _beam_items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    return list(ds.get("BeamSequence", [])) + list(ds.get("IonBeamSequence", []))


def _check_control_points(beam: pydicom.Dataset, path: Path) -> None:
    """Refuse a beam whose control points were truncated (short isocentre, missing items)."""
    number = beam.get("BeamNumber")
    points = beam.get("ControlPointSequence") or beam.get("IonControlPointSequence") or []
    for index, point in enumerate(points):
        iso = point.get("IsocenterPosition")
        if iso is not None and iso != "" and len(iso) != 3:
            raise InputError(
                path, f"beam {number} control point {index}: IsocenterPosition has {len(iso)} of 3 coordinates"
            )
    declared = optional_int(beam, "NumberOfControlPoints")
    if declared is not None and declared != len(points):
        raise InputError(path, f"beam {number} declares {declared} control points but holds {len(points)}")


def _fraction_group(
    item: pydicom.Dataset, path: Path, beam_names: dict[int, str], prescriptions: dict[int, float]
) -> FractionGroup:
    """One FractionGroupSequence item, checked against the beams the plan defines."""
    number = int(require(item, "FractionGroupNumber", path))
    fractions = optional_int(item, "NumberOfFractionsPlanned")
    if fractions is None or fractions < 1:
        raise InputError(path, f"fraction group {number} has no positive NumberOfFractionsPlanned")
    if (optional_int(item, "NumberOfBrachyApplicationSetups") or 0) > 0:
        raise InputError(path, f"fraction group {number} is brachytherapy; only external beam plans are supported")
    references = list(item.get("ReferencedBeamSequence", []))
    declared = optional_int(item, "NumberOfBeams")
    if declared is not None and declared != len(references):
        raise InputError(path, f"fraction group {number} declares {declared} beams but references {len(references)}")
    beams = []
    for ref in references:
        beam_number = int(require(ref, "ReferencedBeamNumber", path))
        if beam_number not in beam_names:
            raise InputError(path, f"fraction group {number} references beam {beam_number}, which the plan lacks")
        beams.append(
            Beam(beam_number, beam_names[beam_number], optional_float(ref, "BeamMeterset"), optional_float(ref, "BeamDose"))
        )
    named = [
        prescriptions[n]
        for n in (optional_int(r, "ReferencedDoseReferenceNumber") for r in item.get("ReferencedDoseReferenceSequence", []))
        if n in prescriptions
    ]
    pattern = item.get("FractionPattern")
    return FractionGroup(
        number=number,
        fractions_planned=fractions,
        beams=tuple(beams),
        fraction_pattern=str(pattern) if pattern else None,
        fractions_per_day=optional_int(item, "NumberOfFractionPatternDigitsPerDay"),
        repeat_fraction_cycle_length=optional_int(item, "RepeatFractionCycleLength"),
        prescription_gy=max(named) if named else None,
    )


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
    beam_names = {int(b.BeamNumber): str(b.get("BeamName", "")) for b in beam_items if "BeamNumber" in b}
    prescriptions = _target_prescriptions(ds)
    fraction_groups = tuple(_fraction_group(item, path, beam_names, prescriptions) for item in groups)
    numbers = [g.number for g in fraction_groups]
    if len(set(numbers)) != len(numbers):
        raise InputError(path, f"fraction group numbers repeat: {numbers}")
    structure_refs = ds.get("ReferencedStructureSetSequence")
    return Plan(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        label=str(ds.get("RTPlanLabel", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        referenced_structure_set_uid=str(structure_refs[0].ReferencedSOPInstanceUID) if structure_refs else None,
        prescription_gy=max(prescriptions.values()) if prescriptions else None,
        fraction_groups=fraction_groups,
    )


def read_plan(path: str | Path) -> Plan:
    """Read an RTPLAN file into a :class:`Plan`."""
    return plan_from_dataset(read_dataset(path), path)
