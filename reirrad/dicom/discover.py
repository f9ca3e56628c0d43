"""A folder of DICOM files -> a :class:`Course`: its dose phases, plans, structures and registrations.

Every file under the folder is looked at once (headers only; RTDOSE pixel data is read once), and
only the elements that tell what it is, those the plan and registration readers use and those that
identify a structure set are decoded (:data:`SCAN_ELEMENTS`): a value that cannot be decoded there
is refused, one elsewhere (in a CT image, say) does not stop the course. A structure set's contours
are read when they are used. Non-DICOM files and images (CT, MR, ...)
are skipped and counted in the notes. RTDOSE is linked
to RTPLAN by ReferencedRTPlanSequence and the plans to the RTSTRUCT by
ReferencedStructureSetSequence. Each :class:`Phase` is one dose of known fractionation:

* a PLAN dose: one phase for the whole plan (``fraction_group`` set only when the plan has one);
* FRACTION doses (DICOM: the whole delivery of one fraction group): one phase per fraction group;
* BEAM doses (the whole delivery of some beams): summed per fraction group, one phase each; every
  beam of the group with a meterset must have its dose.

When a plan has both, the PLAN dose wins, then FRACTION over BEAM; the unused files are noted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.uid import DeformableSpatialRegistrationStorage, SpatialRegistrationStorage

from reirrad.dicom.dose import RTDOSE_SOP_CLASS, DoseGrid, dose_from_dataset, read_dose
from reirrad.dicom.identity import PATIENT_ELEMENTS, PatientIdentity, common_identity, identity_of
from reirrad.dicom.io import NotDicomError, Used, decode_dataset, read_dataset, used_elements
from reirrad.dicom.plan import (
    PLAN_ELEMENTS,
    RT_ION_PLAN_SOP_CLASS,
    RTPLAN_SOP_CLASS,
    FractionGroup,
    Plan,
    plan_from_dataset,
)
from reirrad.dicom.registration import REGISTRATION_ELEMENTS, Registration, any_registration_from_dataset
from reirrad.dicom.structures import (
    RTSTRUCT_SOP_CLASS,
    STRUCTURE_IDENTITY_ELEMENTS,
    StructureSet,
    read_structures,
    structure_set_identity,
    structures_from_dataset,
)
from reirrad.dicom.summation import DISCOVERABLE, SummationType
from reirrad.errors import InputError

if TYPE_CHECKING:
    from reirrad.dicom.deformable import DeformableRegistration

REGISTRATION_SOP_CLASSES = {SpatialRegistrationStorage, DeformableSpatialRegistrationStorage}
PLAN_SOP_CLASSES = {RTPLAN_SOP_CLASS, RT_ION_PLAN_SOP_CLASS}


def _union(a: Used, b: Used) -> Used:
    """The elements ``a`` or ``b`` names (a sequence one of them decodes whole is decoded whole)."""
    merged: dict = dict(a)
    for tag, inner in b.items():
        mine = merged.get(tag, inner)
        merged[tag] = None if mine is None or inner is None else _union(mine, inner)
    return merged


# The elements every file of a course folder is read with: what tells its kind and patient, and what
# the plan and registration readers use and what identifies a structure set (the kind is known only
# once read; the RTDOSE is read again by read_dose, a structure set's contours when used). A CT image's other elements are left alone: the check does not use
# them, and the hot-spot figure reads the slices it draws in full.
SCAN_ELEMENTS = reduce(
    _union,
    (
        used_elements({"SOPClassUID": None, "SOPInstanceUID": None, "Modality": None}),
        PATIENT_ELEMENTS,
        PLAN_ELEMENTS,
        STRUCTURE_IDENTITY_ELEMENTS,
        REGISTRATION_ELEMENTS,
    ),
)


@dataclass(frozen=True, eq=False)
class Phase:
    """The dose of one plan (or of one of its fraction groups) and the fractionation it was given in."""

    plan: Plan | None
    doses: tuple[DoseGrid, ...]  # one PLAN or FRACTION dose, or the BEAM doses to add up
    fraction_group: FractionGroup | None = None

    @property
    def summation_type(self) -> str:
        """DoseSummationType shared by the doses (PLAN, FRACTION or BEAM)."""
        return self.doses[0].summation_type

    @property
    def fractions(self) -> int | None:
        """Number of fractions this phase's dose was delivered in, or None when unknown."""
        if self.fraction_group is not None:
            return self.fraction_group.fractions_planned
        return self.plan.fractions if self.plan is not None else None

    @property
    def dose_gy(self) -> np.ndarray:
        """Total physical dose of the phase (Gy) on the grid of its first dose."""
        if len(self.doses) == 1:
            return self.doses[0].dose_gy
        return np.sum([d.dose_gy for d in self.doses], axis=0)


@dataclass(frozen=True, eq=False)
class StructureSource:
    """A course's RTSTRUCT: identified at once (what linking needs, :data:`STRUCTURE_IDENTITY_ELEMENTS`
    read from a file), its contours read and parsed only when :attr:`structures` is first asked for
    (a prior course's structure set is not used by a registered check: its contours are not read)."""

    path: Path
    sop_instance_uid: str
    frame_of_reference_uid: str
    dataset: pydicom.Dataset  # a file's header (identity only), or a whole dataset given in memory
    in_memory: bool = False  # ``dataset`` is the whole structure set (``path`` a label, no file to read)
    _parsed: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, ds: pydicom.Dataset, path: Path, in_memory: bool = False) -> StructureSource:
        """The source of a read RTSTRUCT dataset (InputError: not an RTSTRUCT, or no frame of reference)."""
        return cls(path, *structure_set_identity(ds, path), ds, in_memory)

    @property
    def structures(self) -> StructureSet:
        """The parsed structure set (read and parsed once; InputError: the file has become another
        structure set since it was identified)."""
        if "set" not in self._parsed:
            if self.in_memory:
                parsed = structures_from_dataset(self.dataset, self.path)
            else:
                parsed = read_structures(self.path)
                if parsed.sop_instance_uid != self.sop_instance_uid:
                    raise InputError(self.path, f"changed while read: it was structure set {self.sop_instance_uid}")
            self._parsed["set"] = parsed
        return self._parsed["set"]


@dataclass(frozen=True, eq=False)
class Course:
    """Everything found in one course folder."""

    folder: Path
    phases: tuple[Phase, ...]
    structure_source: StructureSource | None
    registration_paths: tuple[Path, ...]
    frame_of_reference_uid: str  # never empty
    notes: tuple[str, ...]
    files: tuple[Path, ...]  # the DICOM files used: doses, plans, structure set, registrations
    patient: PatientIdentity | None = None  # None when no file used names a patient
    in_memory: bool = False  # read from pydicom datasets: ``files`` are labels, not files to hash
    # REG datasets given in memory (read already): rigid, or deformable by their SOP class
    registrations: tuple[Registration | DeformableRegistration, ...] = ()

    @property
    def structures(self) -> StructureSet | None:
        """The course's structure set, parsed when first asked for."""
        return None if self.structure_source is None else self.structure_source.structures


def _kind(ds: pydicom.Dataset) -> str | None:
    """ "dose", "plan", "structures" or "registration" by SOP class; None for other objects."""
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == RTDOSE_SOP_CLASS:
        return "dose"
    if sop_class in PLAN_SOP_CLASSES:
        return "plan"
    if sop_class == RTSTRUCT_SOP_CLASS:
        return "structures"
    return "registration" if sop_class in REGISTRATION_SOP_CLASSES else None


def _other_kind(ds: pydicom.Dataset) -> str:
    return str(ds.get("Modality", "") or ds.get("SOPClassUID", ""))


def _scan(folder: Path) -> tuple[dict[str, list[tuple[Path, pydicom.Dataset]]], list[str]]:
    """Headers of every DICOM file under ``folder``, grouped by kind, and notes on skipped files."""
    found: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    not_dicom, others = 0, Counter[str]()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = read_dataset(path, stop_before_pixels=True, used=SCAN_ELEMENTS)
        except NotDicomError:
            not_dicom += 1
            continue
        kind = _kind(ds)
        if kind is None:
            others[_other_kind(ds)] += 1
        else:
            found[kind].append((path, ds))
    notes = [f"skipped {n} {kind} file(s)" for kind, n in sorted(others.items())]
    if not_dicom:
        notes.append(f"skipped {not_dicom} non-DICOM file(s)")
    return found, notes


def _choose_structures(
    candidates: list[StructureSource], plans: list[Plan], notes: list[str]
) -> StructureSource | None:
    """The course's structure set: the only one, or the only one the plans reference."""
    if not candidates:
        notes.append("no RTSTRUCT in folder")
        return None
    if len(candidates) > 1:
        referenced = {p.referenced_structure_set_uid for p in plans}
        chosen = [s for s in candidates if s.sop_instance_uid in referenced]
        if len(chosen) != 1:
            a, b = (chosen or candidates)[:2]
            raise InputError(
                a.path,
                f"two RTSTRUCT candidates in one course (also {b.path}); name the one to use with "
                'structure_set = "..." in the course\'s entry of the case file',
            )
        ignored = ", ".join(str(s.path) for s in candidates if s is not chosen[0])
        notes.append(f"ignored RTSTRUCT not referenced by the plans: {ignored}")
        candidates = chosen
    return candidates[0]


def _note_other_references(structures: StructureSource | None, plans: list[Plan], notes: list[str]) -> None:
    """Note every plan that references another structure set than the one used."""
    if structures is None:
        return
    for plan in plans:
        if plan.referenced_structure_set_uid not in (None, structures.sop_instance_uid):
            notes.append(
                f"{plan.path} references structure set {plan.referenced_structure_set_uid}, "
                f"not {structures.path} ({structures.sop_instance_uid})"
            )


def require_frame(uid: str, path: Path) -> None:
    """Refuse an object without a frame of reference (it is never "the same frame" as another)."""
    if not uid:
        raise InputError(path, "no FrameOfReferenceUID: cannot tell which frame of reference its coordinates are in")


def _common_frame_of_reference(
    doses: list[DoseGrid], plans: list[Plan], structures: StructureSource | None, notes: list[str]
) -> str:
    """The one frame of reference of the doses, plans and structures.

    A dose or structure set without one is refused: a missing frame never counts as "the same
    frame". A plan without one (its Frame of Reference module is optional) is noted and not compared.
    """
    named = [(d.path, d.grid.frame_of_reference_uid) for d in doses]
    if structures is not None:
        named.append((structures.path, structures.frame_of_reference_uid))
    for path, uid in named:
        require_frame(uid, path)
    for plan in plans:
        if plan.frame_of_reference_uid:
            named.append((plan.path, plan.frame_of_reference_uid))
        else:
            notes.append(f"{plan.path} names no frame of reference; not compared with the doses'")
    for path, uid in named[1:]:
        if uid != named[0][1]:
            raise InputError(path, f"frame of reference {uid} differs from {named[0][1]} of {named[0][0]}")
    return named[0][1]


def _same_grid(doses: list[DoseGrid]) -> None:
    """Refuse doses to be added up that are not on one grid."""
    for dose in doses[1:]:
        if not dose.grid.same_geometry(doses[0].grid):
            raise InputError(dose.path, f"BEAM dose is on another grid than {doses[0].path}; cannot add them")


def _group_number(dose: DoseGrid, plan: Plan) -> int:
    """Fraction group a FRACTION or BEAM dose belongs to (the plan's only one when it names none)."""
    if dose.referenced_fraction_group is not None:
        return plan.fraction_group(dose.referenced_fraction_group).number
    if len(plan.fraction_groups) == 1:
        return plan.fraction_groups[0].number
    raise InputError(dose.path, f"{dose.summation_type} dose names no fraction group of {plan.path}")


def _beam_phase(plan: Plan, group: FractionGroup, doses: list[DoseGrid]) -> Phase:
    """The BEAM doses of one fraction group, checked to cover each beam with a meterset exactly once."""
    covered = Counter(b for d in doses for b in d.referenced_beam_numbers)
    twice = sorted(b for b, n in covered.items() if n > 1)
    if twice:
        raise InputError(doses[0].path, f"beam(s) {twice} of fraction group {group.number} have several BEAM doses")
    needed = {b.number for b in group.beams if b.meterset is None or b.meterset > 0}
    missing = sorted(needed - set(covered))
    if missing:
        raise InputError(plan.path, f"no BEAM dose for beam(s) {missing} of fraction group {group.number}")
    _same_grid(doses)
    return Phase(plan, tuple(sorted(doses, key=lambda d: d.referenced_beam_numbers)), group)


def _plan_phases(plan: Plan, doses: list[DoseGrid], notes: list[str]) -> list[Phase]:
    """Phases of one plan from its doses (PLAN, else FRACTION per group, else BEAM per group)."""
    by_type: dict[str, list[DoseGrid]] = defaultdict(list)
    for dose in doses:
        by_type[dose.summation_type].append(dose)
    if by_type[SummationType.PLAN]:
        if len(by_type[SummationType.PLAN]) > 1:
            a, b = by_type[SummationType.PLAN][:2]
            raise InputError(a.path, f"two PLAN doses for one plan (also {b.path})")
        unused = [d for d in doses if d.summation_type != SummationType.PLAN]
        if unused:
            notes.append(f"ignored {len(unused)} FRACTION/BEAM dose(s) of {plan.path}: its PLAN dose covers them")
        single = plan.fraction_groups[0] if len(plan.fraction_groups) == 1 else None
        if single is None:
            notes.append(
                f"{by_type[SummationType.PLAN][0].path} sums {len(plan.fraction_groups)} fraction groups of {plan.path}"
            )
        return [Phase(plan, tuple(by_type[SummationType.PLAN]), single)]
    fraction_doses, beam_doses = defaultdict(list), defaultdict(list)
    for dose in by_type[SummationType.FRACTION]:
        fraction_doses[_group_number(dose, plan)].append(dose)
    for dose in by_type[SummationType.BEAM]:
        beam_doses[_group_number(dose, plan)].append(dose)
    phases = []
    for group in plan.fraction_groups:
        fraction = fraction_doses.get(group.number, [])
        if len(fraction) > 1:
            raise InputError(
                fraction[0].path, f"two FRACTION doses for fraction group {group.number} (also {fraction[1].path})"
            )
        if fraction:
            if group.number in beam_doses:
                notes.append(f"ignored BEAM doses of fraction group {group.number}: {fraction[0].path} covers it")
            phases.append(Phase(plan, tuple(fraction), group))
        elif group.number in beam_doses:
            phases.append(_beam_phase(plan, group, beam_doses[group.number]))
        else:
            raise InputError(plan.path, f"no dose in the folder for fraction group {group.number}")
    return phases


def _orphan_phases(plan_uid: str | None, doses: list[DoseGrid], notes: list[str]) -> list[Phase]:
    """Phases of doses whose plan is not in the folder: fractions unknown, one phase per dose."""
    for dose in doses:
        reason = f"references plan {plan_uid}, which is not in the folder" if plan_uid else "references no plan"
        notes.append(f"{dose.path} {reason}: its fractions are unknown")
    return [Phase(None, (dose,)) for dose in doses]


def _phases(doses: list[DoseGrid], plans: list[Plan], notes: list[str]) -> list[Phase]:
    """Group the doses into phases by the plan they reference."""
    for dose in doses:
        if dose.summation_type not in DISCOVERABLE:
            raise InputError(
                dose.path,
                f"DoseSummationType {dose.summation_type or 'missing'} is not supported (PLAN, FRACTION or BEAM)",
            )
    plans_by_uid = {p.sop_instance_uid: p for p in plans}
    by_plan: dict[str | None, list[DoseGrid]] = defaultdict(list)
    for dose in doses:
        by_plan[dose.referenced_plan_uid].append(dose)
    phases = []
    for plan_uid, plan_doses in by_plan.items():
        plan = plans_by_uid.get(plan_uid or "")
        phases += _plan_phases(plan, plan_doses, notes) if plan else _orphan_phases(plan_uid, plan_doses, notes)
    for plan in plans:
        if plan.sop_instance_uid not in by_plan:
            notes.append(f"{plan.path} has no dose in the folder; ignored")
    return phases


def _given_structures(path: Path, found: list[tuple[Path, pydicom.Dataset]], notes: list[str]) -> StructureSource:
    """The RTSTRUCT the user named (inside the folder or not); the folder's others are noted as ignored."""
    chosen = path.resolve()
    datasets = {p.resolve(): ds for p, ds in found}
    read = datasets[chosen] if chosen in datasets else read_dataset(path, used=STRUCTURE_IDENTITY_ELEMENTS)
    structures = StructureSource.of(read, path)
    ignored = ", ".join(str(p) for p in datasets if p != chosen)
    if ignored:
        notes.append(f"structure set {path} chosen in the case file; ignored: {ignored}")
    return structures


def _patient(
    found: dict[str, list[tuple[Path, pydicom.Dataset]]], structures: StructureSource | None, used: list[Path]
) -> PatientIdentity | None:
    """The one patient of the files used (files of several patients: InputError): the headers read
    with them (a structure set named in the case file may lie outside the folder)."""
    headers = {path.resolve(): ds for kind in found.values() for path, ds in kind}
    if structures is not None:
        headers[structures.path.resolve()] = structures.dataset
    return common_identity([(path, identity_of(headers[path.resolve()])) for path in used])


def discover_course(folder: str | Path, structure_set: str | Path | None = None) -> Course:
    """Find, read and link the DICOM RT objects of one course folder (searched recursively).

    ``structure_set`` names the RTSTRUCT to use when the folder holds several. The files used
    must name one frame of reference and one patient.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    found, notes = _scan(folder)
    if not found["dose"]:
        raise InputError(folder, "no RTDOSE file in folder")
    doses = [read_dose(path) for path, _ in found["dose"]]
    return _linked(folder, found, notes, doses, structure_set)


def dataset_label(ds: pydicom.Dataset) -> Path:
    """The name an in-memory dataset goes by in messages and reports: ``<MODALITY SOPInstanceUID>``.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.Modality, ds.SOPInstanceUID = "RTDOSE", "1.2.3"
    >>> str(dataset_label(ds))
    '<RTDOSE 1.2.3>'
    """
    return Path(f"<{ds.get('Modality', '') or 'DICOM'} {ds.get('SOPInstanceUID', '') or 'without SOPInstanceUID'}>")


def course_from_datasets(datasets: Sequence[pydicom.Dataset], label: str | Path = "<in memory>") -> Course:
    """Link already-read RTPLAN, RTDOSE, RTSTRUCT and REG datasets into a :class:`Course`, exactly as
    :func:`discover_course` links the files of a folder (same refusals and notes).

    Every dataset is decoded first (:func:`reirrad.dicom.io.decode_dataset`): a value pydicom cannot
    decode is refused naming the dataset.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The course's objects, RTDOSE with pixel data; a Spatial Registration (REG) or a Deformable
        Spatial Registration relates this course's frame to another's, as the same file in a course
        folder does. Other objects (CT, ...) are skipped and noted.
    label : str or Path
        What the course is called in messages (``Course.folder``).

    Returns
    -------
    Course
        ``files`` are the datasets' labels (:func:`dataset_label`), ``in_memory`` is True; the REG
        datasets are read into ``registrations`` (``registration_paths`` is empty).

    Raises
    ------
    reirrad.errors.InputError
        No RTDOSE, a registration that cannot be used (non-rigid matrix, malformed field), two datasets with one SOPInstanceUID,
        or anything :func:`discover_course` refuses.
    """
    label = Path(label)
    found: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    others: Counter = Counter()
    for ds in datasets:
        kind = _kind(decode_dataset(ds, dataset_label(ds)))
        if kind is None:
            others[_other_kind(ds)] += 1
        else:
            found[kind].append((dataset_label(ds), ds))
    labels = Counter(path for kind in found.values() for path, _ in kind)
    if any(n > 1 for n in labels.values()):
        raise InputError(labels.most_common(1)[0][0], "given twice (or two datasets share this SOPInstanceUID)")
    if not found["dose"]:
        raise InputError(label, "no RTDOSE among the datasets")
    notes = [f"skipped {n} {kind} dataset(s)" for kind, n in sorted(others.items())]
    notes.append("read from in-memory datasets: files are named by SOPInstanceUID, not by a SHA-256 of a file")
    doses = [dose_from_dataset(ds, path) for path, ds in found["dose"]]
    registrations = tuple(any_registration_from_dataset(ds, path) for path, ds in found["registration"])
    course = _linked(label, found, notes, doses, None, in_memory=True)
    return replace(course, in_memory=True, registration_paths=(), registrations=registrations)


def _linked(
    folder: Path,
    found: dict[str, list[tuple[Path, pydicom.Dataset]]],
    notes: list[str],
    doses: list[DoseGrid],
    structure_set: str | Path | None,
    in_memory: bool = False,
) -> Course:
    """The course of the objects found (headers grouped by kind, or whole datasets ``in_memory``) and
    their read doses."""
    plans = [plan_from_dataset(ds, path) for path, ds in found["plan"]]
    uids = Counter(p.sop_instance_uid for p in plans)
    if any(n > 1 for n in uids.values()):
        raise InputError(folder, f"several RTPLAN files share SOP Instance UID {uids.most_common(1)[0][0]}")
    structures: StructureSource | None
    if structure_set is not None:
        structures = _given_structures(Path(structure_set), found["structures"], notes)
    else:
        candidates = [StructureSource.of(ds, path, in_memory) for path, ds in found["structures"]]
        structures = _choose_structures(candidates, plans, notes)
    _note_other_references(structures, plans, notes)
    frame_of_reference = _common_frame_of_reference(doses, plans, structures, notes)
    phases = _phases(doses, plans, notes)
    registrations = tuple(path for path, _ in found["registration"])
    used = [d.path for d in doses] + [p.path for p in plans] + list(registrations)
    if structures is not None:
        used.append(structures.path)
    return Course(
        folder,
        tuple(phases),
        structures,
        registrations,
        frame_of_reference,
        tuple(notes),
        tuple(sorted(used)),
        _patient(found, structures, used),
    )
