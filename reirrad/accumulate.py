"""Courses -> physical dose per phase -> one reference grid -> EQD2 per course -> cumulative EQD2.

The reference is the last course: its (first phase's) dose grid and its structure set. Every
course is mapped onto that grid through the identity (same frame of reference) or a rigid REG;
points outside a course's dose grid get 0 Gy and are marked in that course's coverage mask.
For checking, the grid may grow by whole voxels over evaluated structures that reach beyond the
reference dose grid into another course's (see :func:`map_courses`).
EQD2 is computed per phase with the phase's own fraction count, after resampling the physical
dose (interpolating physical dose keeps linear fields exact; EQD2 is not linear in dose).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np

from reirrad.case import CaseSpec, CourseSpec
from reirrad.dicom.deformable import DeformableRegistration, FieldPointMap
from reirrad.dicom.discover import Course, StructureSource, course_from_datasets, discover_course
from reirrad.dicom.dose import DoseGrid
from reirrad.dicom.identity import PatientIdentity
from reirrad.dicom.plan import Plan
from reirrad.dicom.registration import (
    Registration,
    course_point_map,
    read_any_registration,
    split_registrations,
)
from reirrad.dicom.structures import Roi, StructureSet
from reirrad.dicom.summation import PHASE_TOTAL, SummationType
from reirrad.eqd2 import NO_RECOVERY, RecoveryFactor, RecoveryModel, eqd2_gy, recovery_factor
from reirrad.errors import Hint, InputError, Remedy
from reirrad.grid import Grid, corner_centres_mm, grown_to_cover, index_map, inside_grid, resample, transform_points
from reirrad.mapping import PointMap, RigidMap
from reirrad.results import FileRecord

DAYS_PER_MONTH = 365.25 / 12.0
# A phase's maximum physical dose outside this range of its prescription is a unit or scaling
# error far more often than a plan (a Gy/cGy mix-up is a factor 100): refused unless accepted.
# A technical plausibility range, not a clinical limit: real maxima lie near 1.0-1.5 x.
DOSE_SCALE_RANGE = (0.3, 3.0)


@dataclass(frozen=True, eq=False)
class PhaseDose:
    """One phase (plan) of a course: total physical dose (Gy) on ``grid`` and its fractions."""

    label: str
    grid: Grid
    dose_gy: np.ndarray
    fractions: int
    fraction_source: str  # "plan" or "override"
    prescription_gy: float | None
    max_dose_gy: float  # highest physical voxel dose on the phase's own grid
    files: tuple[Path, ...]
    plan_uid: str | None  # the RTPLAN's UID, else the one the dose references
    notes: tuple[str, ...] = ()  # how the dose scale was checked (or why it could not be)
    dose_uids: tuple[str, ...] = ()  # SOPInstanceUID of each RTDOSE, in the order of ``files``
    plan_fractions: int | None = None  # the plan's own count (None: no plan, or its groups disagree)

    @property
    def dose_files(self) -> tuple[Path, ...]:
        """The RTDOSE files of the phase (``files`` without the plan)."""
        return self.files[: len(self.dose_uids)]


def fraction_source_text(phase: PhaseDose) -> str:
    """Where a phase's fraction count came from: "plan", "override; plan 5", "override; no plan count"."""
    if phase.fraction_source != "override":
        return phase.fraction_source
    return "override; " + ("no plan count" if phase.plan_fractions is None else f"plan {phase.plan_fractions}")


def fraction_text(phase: PhaseDose) -> str:
    """ "25 (plan)" or "3 (override; plan 5)"."""
    return f"{phase.fractions} ({fraction_source_text(phase)})"


def resolve_phase(
    plan: Plan | None,
    doses: Sequence[DoseGrid],
    fractions_override: int | None,
    hint: Hint,
    fraction_group: int | None = None,
    *,
    accept_dose_scale: bool = False,
    confirmed: bool = False,
    given_as: str = "the given fraction count",
    confirm_hint: Hint = Hint(Remedy.OVERRIDE_FRACTIONS, option="--override-fractions"),
) -> PhaseDose:
    """Total physical dose of one plan (or fraction group) and its fraction count.

    PLAN and FRACTION (whole fraction group) doses are used as they are, BEAM doses are added
    (they must cover every beam with a meterset), a FRACTION_SESSION dose (one session) is
    multiplied by the fractions. ``fraction_group`` names the group the doses belong to when the
    caller knows it. Anything ambiguous raises an InputError; ``hint`` tells the user how to give
    the fraction count (case file field or command-line option). The total's maximum is checked
    against the prescription (:func:`dose_scale_notes`); ``accept_dose_scale`` accepts an
    implausible one.

    A given count (``fractions_override``, described by ``given_as``) that agrees with the plan
    changes nothing (source "plan"). One that disagrees is refused unless ``confirmed`` (the user
    said so with ``confirm_hint``); it is then used with source "override" and the plan's count
    kept in ``plan_fractions``. Without a plan a given count is used as an override.
    """
    if not doses:
        raise InputError(None if plan is None else plan.path, "plan has no dose file")
    first = doses[0]
    for dose in doses:
        _check_dose(dose, plan)
    kinds = {d.summation_type for d in doses}
    if len(kinds) > 1:
        raise InputError(first.path, f"one plan has doses of several summation types ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    group = fraction_group if fraction_group is not None else _fraction_group_number(doses, kind)
    planned = _planned_fractions(plan, group, kind, hint, first.path, required=fractions_override is None)
    fractions: int
    if fractions_override is None or fractions_override == planned:
        if planned is None:  # _planned_fractions raises instead when no count is given
            raise AssertionError("no fraction count for the phase")
        fractions, source = planned, "plan"
    else:
        if planned is not None and plan is not None and not confirmed:
            raise InputError(
                first.path,
                f"{given_as} gives {fractions_override} fractions but plan {plan.path.name} says {planned}: "
                "remove the given count, or confirm it",
                confirm_hint,
                how=" with {} (it is then used and flagged)",
            )
        fractions, source = fractions_override, "override"
    if kind == SummationType.BEAM:
        total = _sum_beams(doses, plan, group)
    elif len(doses) > 1:
        raise InputError(first.path, f"{len(doses)} {kind} doses for one plan; keep one per plan")
    else:
        total = first.dose_gy * fractions if kind == SummationType.FRACTION_SESSION else first.dose_gy
    prescription = None if plan is None else plan.prescription_gy
    label = plan.label if plan is not None and plan.label else first.path.name
    max_dose_gy = float(total.max(initial=0.0))
    return PhaseDose(
        label=label,
        grid=first.grid,
        dose_gy=total,
        fractions=fractions,
        fraction_source=source,
        prescription_gy=prescription,
        max_dose_gy=max_dose_gy,
        files=tuple(d.path for d in doses) + (() if plan is None else (plan.path,)),
        plan_uid=first.referenced_plan_uid if plan is None else plan.sop_instance_uid,
        dose_uids=tuple(d.sop_instance_uid for d in doses),
        notes=dose_scale_notes(
            max_dose_gy, _scale_prescription_gy(plan, group, kind), plan, first.path, label, accept_dose_scale
        ),
        plan_fractions=planned,
    )


def _scale_prescription_gy(plan: Plan | None, group: int | None, kind: str) -> float | None:
    """The prescription (Gy) a phase's dose answers to: its fraction group's when the dose is one
    group of a multi-group plan, else the plan's highest TARGET prescription."""
    if plan is None:
        return None
    if kind != "PLAN" and group is not None and len(plan.fraction_groups) > 1:
        return plan.fraction_group(group).prescription_gy
    return plan.prescription_gy


def dose_scale_notes(
    max_dose_gy: float, prescription_gy: float | None, plan: Plan | None, path: Path, label: str, accept: bool
) -> tuple[str, ...]:
    """Check a phase's maximum physical dose (Gy) against its prescription (Gy).

    An all-zero dose is always refused. A maximum outside :data:`DOSE_SCALE_RANGE` times the
    prescription is refused as a likely unit error unless ``accept``; then, and when no
    prescription is known, the returned note says so. InputError names ``path`` (the dose).
    """
    if not max_dose_gy > 0:
        raise InputError(path, "the dose is zero everywhere: an empty or wrongly scaled RTDOSE")
    if plan is None or prescription_gy is None or not prescription_gy > 0:
        source = "no RTPLAN" if plan is None else f"{plan.path.name} gives no target prescription dose"
        return (f"{label}: {source}, so its dose scale (Gy vs cGy) could not be checked",)
    ratio = max_dose_gy / prescription_gy
    low, high = DOSE_SCALE_RANGE
    if low <= ratio <= high:
        return ()
    likely = "cGy values stored as Gy (x100)" if ratio > high else "a dose scaled 100x too low (Gy read as cGy, /100)"
    problem = (
        f"maximum dose {max_dose_gy:.4g} Gy is {ratio:.3g} x the prescription {prescription_gy:g} Gy of "
        f"{plan.path.name} (plausible: {low:g} to {high:g} x): likely {likely}; check DoseGridScaling"
    )
    if not accept:
        raise InputError(
            path, f"{problem}; if the dose is right, accept it", Hint(Remedy.ACCEPT_DOSE_SCALE), how=" with {}"
        )
    return (f"{label}: {problem}; used as it is (dose scale accepted)",)


def _check_dose(dose: DoseGrid, plan: Plan | None) -> None:
    if dose.dose_type != "PHYSICAL":
        raise InputError(dose.path, f"DoseType is {dose.dose_type or 'missing'}; only PHYSICAL dose can be converted")
    if dose.summation_type not in PHASE_TOTAL:
        raise InputError(
            dose.path,
            f"DoseSummationType {dose.summation_type or 'missing'} cannot be resolved to one plan's dose; "
            f"export a PLAN dose per plan",
        )
    if plan is not None and dose.referenced_plan_uid not in (None, plan.sop_instance_uid):
        raise InputError(dose.path, f"dose references plan {dose.referenced_plan_uid}, not {plan.path.name}")


def _fraction_group_number(doses: Sequence[DoseGrid], kind: str) -> int | None:
    """The fraction group the doses name (PLAN doses cover the whole plan)."""
    groups = {d.referenced_fraction_group for d in doses} if kind != SummationType.PLAN else {None}
    if len(groups) > 1:
        raise InputError(doses[0].path, "doses of one phase reference different fraction groups")
    return groups.pop()


def _planned_fractions(
    plan: Plan | None, group: int | None, kind: str, hint: Hint, path: Path, required: bool
) -> int | None:
    """The plan's fraction count for this dose; None when it gives none and none is ``required``
    (no plan, or fraction groups with different counts), else an InputError naming ``hint``."""
    if plan is None:
        if required:
            raise InputError(path, f"no plan gives the number of fractions of this {kind} dose", hint)
        return None
    if group is not None and len(plan.fraction_groups) > 1:
        return plan.fraction_group(group).fractions_planned
    counts = {g.fractions_planned for g in plan.fraction_groups}
    if len(counts) != 1:
        if not required:
            return None
        raise InputError(
            path,
            f"plan {plan.path.name} has fraction groups with different fraction counts "
            f"({', '.join(str(c) for c in sorted(counts))}); export one dose per fraction group",
            hint,
            how=" or {}",
        )
    return counts.pop()


def _sum_beams(doses: Sequence[DoseGrid], plan: Plan | None, group: int | None) -> np.ndarray:
    """Dose of a fraction group from its BEAM doses: each beam with a meterset once, one grid."""
    first = doses[0]
    if plan is None:
        raise InputError(
            first.path, "BEAM doses without their RTPLAN: cannot check that every beam is there; add the plan"
        )
    fraction_group = plan.fraction_group(group) if group is not None else None
    if fraction_group is None and len(plan.fraction_groups) != 1:
        raise InputError(first.path, "BEAM doses name no fraction group of a multi-group plan")
    beams = (fraction_group or plan.fraction_groups[0]).beams
    needed = sorted(b.number for b in beams if b.meterset is None or b.meterset > 0)
    covered = [_beams_of(d) for d in doses]
    found = sorted(b for numbers in covered for b in numbers)
    if not all(covered) or len(set(found)) != len(found) or not set(needed) <= set(found) <= {b.number for b in beams}:
        raise InputError(
            first.path,
            f"BEAM doses cover beams {found or 'unnamed'} but the plan's beams with a meterset are "
            f"{needed}; export each beam's dose once, or the PLAN dose",
        )
    if not all(d.grid.same_geometry(first.grid) for d in doses):
        raise InputError(first.path, "BEAM doses of one plan are on different grids")
    total = first.dose_gy.copy()
    for dose in doses[1:]:
        total += dose.dose_gy
    return total


def _beams_of(dose: DoseGrid) -> tuple[int, ...]:
    """The beam numbers a BEAM dose covers."""
    if dose.referenced_beam_numbers:
        return tuple(dose.referenced_beam_numbers)
    return () if dose.referenced_beam_number is None else (dose.referenced_beam_number,)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks; each file is hashed once per process while its
    size and modification time stay the same (a batch's store key and its check share the digests)."""
    stat = os.stat(path)
    return _sha256_of(os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=4096)
def _sha256_of(real_path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(real_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class LoadedCourse:
    """A course read from its folder: phases resolved to physical dose, structures, provenance."""

    spec: CourseSpec
    phases: tuple[PhaseDose, ...]
    structure_source: StructureSource | None  # parsed when :attr:`structures` is first asked for
    frame_of_reference_uid: str
    registration_paths: tuple[Path, ...]
    files: tuple[FileRecord, ...]
    notes: tuple[str, ...] = ()
    patient: PatientIdentity | None = None  # None when no file names a patient
    registrations: tuple[Registration | DeformableRegistration, ...] = ()  # in-memory REGs (read already)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def structures(self) -> StructureSet | None:
        """The course's structure set (its contours parsed once, when first asked for)."""
        return None if self.structure_source is None else self.structure_source.structures

    @property
    def fractions(self) -> int:
        """Fractions over all phases."""
        return sum(p.fractions for p in self.phases)

    @property
    def prescription_gy(self) -> float | None:
        """Sum of the phases' prescriptions (Gy), when every phase has one."""
        values = [p.prescription_gy for p in self.phases if p.prescription_gy is not None]
        return float(sum(values)) if len(values) == len(self.phases) else None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """Prescription per fraction (Gy) of a single-phase course."""
        if len(self.phases) != 1 or self.prescription_gy is None:
            return None
        return self.prescription_gy / self.fractions


def course_from_discovery(spec: CourseSpec, course: Course) -> LoadedCourse:
    """Resolve a discovered :class:`reirrad.dicom.discover.Course` against its case-file entry."""
    if spec.fractions is not None and len(course.phases) > 1:
        raise InputError(
            spec.case_file,
            f"fractions = {spec.fractions} for course {spec.name!r} is ambiguous: the course has "
            f"{len(course.phases)} plans; remove it and keep each plan's RTPLAN in the folder",
        )
    phases = tuple(
        resolve_phase(
            phase.plan,
            phase.doses,
            spec.fractions,
            spec.fractions_hint,
            None if phase.fraction_group is None else phase.fraction_group.number,
            accept_dose_scale=spec.accept_dose_scale,
            confirmed=spec.override_fractions,
            given_as=spec.fractions_given_as,
            confirm_hint=spec.override_hint,
        )
        for phase in course.phases
    )
    if not phases:
        raise InputError(spec.path, f"course {spec.name!r}: no RTDOSE found")
    if not course.frame_of_reference_uid:
        raise InputError(
            spec.path, f"course {spec.name!r}: no frame of reference; a missing frame is never the same frame"
        )
    registrations = tuple(course.registration_paths) + (() if spec.registration is None else (spec.registration,))
    phase_notes = tuple(f"course {spec.name!r}, {note}" for phase in phases for note in phase.notes)
    return LoadedCourse(
        spec=spec,
        phases=phases,
        structure_source=course.structure_source,
        frame_of_reference_uid=course.frame_of_reference_uid,
        registration_paths=tuple(dict.fromkeys(registrations)),
        files=tuple(FileRecord(str(p), None if course.in_memory else sha256_file(Path(p))) for p in course.files),
        notes=tuple(course.notes) + phase_notes,
        patient=course.patient,
        registrations=course.registrations,
    )


def load_course(spec: CourseSpec) -> LoadedCourse:
    """Read a course folder (RTPLAN, RTDOSE, RTSTRUCT, REG), or its in-memory datasets, and resolve its phases."""
    if spec.datasets:
        return course_from_discovery(spec, course_from_datasets(spec.datasets, spec.path))
    return course_from_discovery(spec, discover_course(spec.path, spec.structure_set))


def accepting(
    case: CaseSpec, *, dose_scale: bool = False, other_patient: bool = False, partial_coverage: bool = False
) -> CaseSpec:
    """``case`` with the command line's acceptances added to the case file's (never removed)."""
    courses = tuple(
        replace(
            c,
            accept_dose_scale=c.accept_dose_scale or dose_scale,
            accept_other_patient=c.accept_other_patient or other_patient,
        )
        for c in case.courses
    )
    return replace(case, courses=courses, accept_partial_coverage=case.accept_partial_coverage or partial_coverage)


def load_courses(case: CaseSpec) -> list[LoadedCourse]:
    """Every course of the case, refused when one is listed twice or belongs to another patient
    than the reference course (unless its entry accepts that; then a note names both IDs)."""
    courses: list[LoadedCourse] = []
    for spec in case.courses:
        course = load_course(spec)
        _refuse_repeated(course, courses, case.path)
        courses.append(course)
    return [_same_patient(course, courses[-1]) for course in courses]


def _refuse_repeated(course: LoadedCourse, earlier: Sequence[LoadedCourse], case_path: Path) -> None:
    """Refuse a course that is an earlier one again: same folder, same RTDOSE instance or content."""
    folder = course.spec.path.resolve()
    uids, hashes = _dose_identities(course)
    for other in earlier:
        other_uids, other_hashes = _dose_identities(other)
        same = (
            "the same folder"
            if other.spec.path.resolve() == folder
            else "the same RTDOSE SOPInstanceUID"
            if uids & other_uids
            else "an RTDOSE file with identical content"
            if hashes & other_hashes
            else None
        )
        if same:
            raise InputError(
                case_path,
                f"courses {other.name!r} and {course.name!r} are one course ({same}): it would be counted twice",
            )


def _dose_identities(course: LoadedCourse) -> tuple[set[str], set[str]]:
    """The SOPInstanceUIDs and SHA-256 digests of a course's RTDOSE files."""
    uids = {uid for phase in course.phases for uid in phase.dose_uids if uid}
    paths = {str(path) for phase in course.phases for path in phase.dose_files}
    return uids, {f.sha256 for f in course.files if f.path in paths and f.sha256 is not None}


def _same_patient(course: LoadedCourse, reference: LoadedCourse) -> LoadedCourse:
    """``course`` when it is the reference course's patient; accepted other patients get a note."""
    if course is reference:
        return course
    if course.patient is None or reference.patient is None:
        unnamed = course.name if course.patient is None else reference.name
        note = (
            f"course {unnamed!r} names no patient (empty PatientID): whether all courses are one "
            "patient's is not checked"
        )
        return replace(course, notes=course.notes + (note,))
    difference = reference.patient.difference(course.patient)
    if difference is None:
        return course
    problem = (
        f"course {course.name!r} belongs to another patient than the reference course {reference.name!r} ({difference})"
    )
    if not course.spec.accept_other_patient:
        raise InputError(
            course.spec.path,
            f"{problem}; if that is intended, accept it",
            Hint(Remedy.ACCEPT_OTHER_PATIENT, course.name),
            how=" with {}",
        )
    return replace(course, notes=course.notes + (f"{problem}: accepted (accept_other_patient)",))


def months_between(earlier: date | None, later: date | None) -> float | None:
    """Interval in months (days / 30.44), None when a date is missing."""
    if earlier is None or later is None:
        return None
    return (later - earlier).days / DAYS_PER_MONTH


@dataclass(frozen=True, eq=False)
class CourseOnGrid:
    """A course related to the evaluation grid (reference frame) through its point map.

    Its phases stay on their own dose grids: evaluation samples them at ``point_map(points)``
    (:func:`phase_doses_at`). The course's dose resampled onto the whole evaluation grid
    (:attr:`on_grid_phases`, :attr:`coverage`, :meth:`eqd2_gy`) is computed only when asked for,
    by whole-grid outputs (export, the overlap flag), and cached.
    """

    course: LoadedCourse
    grid: Grid  # the evaluation grid, reference frame
    point_map: PointMap  # reference-frame points (mm) -> this course's frame (mm)
    interval_months: float | None  # from this course's end to the reference course's start
    recovery_model: str
    is_reference: bool
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.course.name

    @property
    def phases(self) -> tuple[PhaseDose, ...]:
        """The course's phases, physical dose on their own grids."""
        return self.course.phases

    @property
    def registration_label(self) -> str:
        """ "identity" or "REG <SOPInstanceUID>" (the point map's label)."""
        return self.point_map.label

    @property
    def fractions(self) -> int:
        return self.course.fractions

    @property
    def prescription_gy(self) -> float | None:
        return self.course.prescription_gy

    @property
    def dose_per_fraction_gy(self) -> float | None:
        return self.course.dose_per_fraction_gy

    @property
    def on_grid_phases(self) -> tuple[PhaseDose, ...]:
        """Each phase resampled (trilinear) onto the evaluation grid. Computed once, when first asked for."""
        return self._on_grid()[0]

    @property
    def coverage(self) -> np.ndarray:
        """True where every phase's own grid covers the evaluation grid's voxel centre. Computed once."""
        return self._on_grid()[1]

    def _on_grid(self) -> tuple[tuple[PhaseDose, ...], np.ndarray]:
        if "on_grid" not in self._cache:
            self._cache["on_grid"] = _phases_on_grid(self.phases, self.grid, self.point_map)
        return self._cache["on_grid"]

    def eqd2_gy(self, alpha_beta_gy: float, lql_transition_gy: float | None = None) -> np.ndarray:
        """EQD2 (Gy) on the evaluation grid: each phase with its own fractions, then added. Cached."""
        key = ("eqd2", float(alpha_beta_gy), lql_transition_gy)
        if key not in self._cache:
            phases = self.on_grid_phases
            total = eqd2_gy(phases[0].dose_gy, phases[0].fractions, alpha_beta_gy, lql_transition_gy)
            for phase in phases[1:]:
                total += eqd2_gy(phase.dose_gy, phase.fractions, alpha_beta_gy, lql_transition_gy)
            total.flags.writeable = False
            self._cache[key] = total
        return self._cache[key]


@dataclass(frozen=True, eq=False)
class AccumulatedCase:
    """Every course related to one evaluation grid (reference frame), with the reference structures.

    ``grid`` is the reference course's own dose grid (``reference_grid``), or that grid grown by
    whole voxels to cover the evaluated structures where another course has dose.
    """

    case: CaseSpec
    grid: Grid
    courses: tuple[CourseOnGrid, ...]
    reference_dose_path: Path  # header source for exported doses
    reference_grid: Grid

    @property
    def structures(self) -> StructureSet | None:
        """The reference course's structure set (read when first asked for)."""
        return self.reference.course.structures

    @property
    def grid_is_grown(self) -> bool:
        """True when ``grid`` reaches beyond the reference course's own dose grid."""
        return self.grid.shape != self.reference_grid.shape

    @property
    def reference(self) -> CourseOnGrid:
        return self.courses[-1]

    def recovery_factors(self, model: RecoveryModel, organ: str | None) -> dict[str, RecoveryFactor]:
        """r of every prior course for ``organ`` under ``model`` (the reference course gets none)."""
        return {c.name: recovery_factor(model, organ, c.interval_months) for c in self.courses if not c.is_reference}


def map_courses(courses: Sequence[LoadedCourse], case: CaseSpec, cover: Sequence[Roi] = ()) -> AccumulatedCase:
    """Relate every course to the reference frame (the last course's) by a point map.

    The evaluation grid is the reference course's first phase's grid. With ``cover`` (reference
    structures to be evaluated), it grows by whole voxels over the part of them that lies outside
    the reference dose grid but inside another course's, so that a prior course's dose there is
    counted (the reference course gives 0 Gy outside its grid). No dose is resampled here.
    """
    if not courses:
        raise InputError(case.path, "no courses")
    reference = courses[-1]
    reference_grid = reference.phases[0].grid
    frame = reference.frame_of_reference_uid
    for course in courses:
        if not course.frame_of_reference_uid:  # never "the same frame" as another missing one
            raise InputError(course.spec.path, f"course {course.name!r} has no frame of reference")
    registrations, deformables = _read_registrations(courses)
    # autoreg hook: courses asking for it (registration = "auto" / --auto-register) and related to the
    # reference by no REG get an automatic rigid CT registration, used exactly like a REG file.
    if any(c.spec.auto_register for c in courses):
        from reirrad.autoreg import automatic_registrations

        registrations += automatic_registrations(courses, registrations)
    maps = [
        course_point_map(frame, course.frame_of_reference_uid, registrations, deformables, course.spec.path)
        for course in courses
    ]
    dose_grids = [(phase.grid, *_grid_to_reference(m)) for course, m in zip(courses, maps) for phase in course.phases]
    grid = _covering_grid(reference_grid, cover, dose_grids) if cover else reference_grid
    mapped = tuple(
        CourseOnGrid(
            course=course,
            grid=grid,
            point_map=point_map,
            interval_months=None
            if course is reference
            else months_between(course.spec.end_date, reference.spec.start_date),
            recovery_model=case.recovery_model or NO_RECOVERY,
            is_reference=course is reference,
        )
        for course, point_map in zip(courses, maps)
    )
    if any(c.interval_months is not None and c.interval_months < 0 for c in mapped):
        raise InputError(case.path, "a prior course ends after the reference course starts")
    return AccumulatedCase(case, grid, mapped, reference.phases[0].files[0], reference_grid)


def _grid_to_reference(point_map: PointMap) -> tuple[np.ndarray | None, float]:
    """The reference -> course transform a course's dose box is placed by, and a margin (mm) to grow
    that box by: a rigid map's matrix exactly; a deformable field's matrices, grown by its largest
    offset (the box only decides how far the evaluation grid may grow; dose is sampled through the
    field itself)."""
    if isinstance(point_map, FieldPointMap):
        inverse, margin_mm = point_map.approximate_inverse()
        return np.linalg.inv(inverse), margin_mm
    assert isinstance(point_map, RigidMap)
    return point_map.matrix, 0.0


def _covering_grid(
    reference: Grid, rois: Sequence[Roi], dose_grids: Sequence[tuple[Grid, np.ndarray | None, float]]
) -> Grid:
    """``reference`` grown to cover ``rois`` (one voxel of margin) within the courses' dose grids.

    ``dose_grids`` gives each phase's grid with its reference -> moving transform (None: same frame)
    and a margin in mm. Index boxes are taken in ``reference`` index space; a rotated grid counts by
    its bounding box.
    """
    points = [c.points_mm for roi in rois for c in roi.closed_contours]
    if not points:
        return reference
    index = reference.to_index(np.concatenate(points))
    low, high = index.min(axis=0) - 1.0, index.max(axis=0) + 1.0
    boxes = []
    for grid, reference_to_moving_mm, margin_mm in dose_grids:
        corners = corner_centres_mm(grid)
        if reference_to_moving_mm is not None:
            corners = transform_points(np.linalg.inv(reference_to_moving_mm), corners)
        corners = reference.to_index(corners)
        grow = 0.5 + margin_mm / np.asarray(reference.spacing_mm)
        boxes.append((corners.min(axis=0) - grow, corners.max(axis=0) + grow))
    low = np.maximum(low, np.min([b[0] for b in boxes], axis=0))
    high = np.minimum(high, np.max([b[1] for b in boxes], axis=0))
    return reference if np.any(low > high) else grown_to_cover(reference, low, high)


def _read_registrations(courses: Sequence[LoadedCourse]) -> tuple[list[Registration], list[DeformableRegistration]]:
    """The courses' REG files and in-memory REGs, rigid and deformable apart (by SOP class)."""
    # deform2: in-memory deformable REGs (course_from_datasets) are split off like REG files
    paths = dict.fromkeys(p for c in courses for p in c.registration_paths)
    read = [read_any_registration(path) for path in paths]
    return split_registrations(read + [r for c in courses for r in c.registrations])


def phase_indices(grid: Grid, positions: np.ndarray, phase_grid: Grid, point_map: PointMap) -> np.ndarray:
    """Continuous indices (N, 3) on ``phase_grid`` of the points at continuous indices ``positions``
    (N, 3, (k, j, i)) of ``grid`` (reference frame), mapped into the course's frame by ``point_map``.

    A rigid map is composed into one index-to-index affine; when that is a whole-voxel shift (one
    frame, the same lattice) the indices are shifted exactly, so a course on the evaluation grid
    is sampled at the very same positions, bit for bit (``positions`` itself is returned, not a
    copy, when the shift is zero). Any other map goes through mm.
    """
    if isinstance(point_map, RigidMap):
        mapping = index_map(phase_grid, grid, point_map.matrix)
        linear, shift = mapping[:3, :3], mapping[:3, 3]
        if np.allclose(linear, np.eye(3), rtol=0.0, atol=1e-9) and np.allclose(
            shift, np.rint(shift), rtol=0.0, atol=1e-9
        ):
            shift = np.rint(shift)
            return positions if not shift.any() else positions + shift  # the same lattice: no copy
        return positions @ linear.T + shift
    return phase_grid.to_index(point_map(grid.to_patient(positions)))


def phase_doses_at(
    phases: Sequence[PhaseDose], grid: Grid, positions: np.ndarray, point_map: PointMap, margin_voxels: float = 0.0
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Physical dose (Gy) of each phase at points given as continuous indices of ``grid``.

    Parameters
    ----------
    phases : sequence of PhaseDose
        A course's phases, each on its own dose grid.
    grid : Grid
        The grid (reference frame) whose continuous indices ``positions`` are.
    positions : ndarray, shape (N, 3)
        Points as continuous (k, j, i) indices of ``grid``.
    point_map : PointMap
        Reference frame -> the course's frame.
    margin_voxels : float
        How far beyond the hull of a phase grid's voxel centres a point still counts as covered,
        in voxels of that grid: 0 (the hull, as :func:`reirrad.grid.resample`), or 0.5 (within the
        grid's voxels, the outer half voxel taking the edge voxel's dose, as structure samples
        are taken on a dose grid by :func:`reirrad.masks.sample_roi` and :mod:`reirrad.dvh`).

    Returns
    -------
    doses_gy : tuple of ndarray, shape (N,) each
        Each phase's dose interpolated trilinearly on its own grid at ``point_map`` of the point;
        0 Gy where the point is not covered by that grid.
    covered : ndarray of bool, shape (N,)
        True where every phase's grid covers the point (:func:`reirrad.grid.inside_grid`).
    """
    from reirrad.dvh import trilinear

    covered = np.ones(len(positions), dtype=bool)
    doses = []
    for phase in phases:
        index = phase_indices(grid, positions, phase.grid, point_map)
        inside = inside_grid(index, phase.grid.shape, margin_voxels)
        covered &= inside
        if inside.all():
            doses.append(trilinear(phase.dose_gy, index))
            continue
        dose = np.zeros(len(positions))
        dose[inside] = trilinear(phase.dose_gy, index[inside])
        doses.append(dose)
    return tuple(doses), covered


def _phases_on_grid(
    phases: Sequence[PhaseDose], grid: Grid, point_map: PointMap
) -> tuple[tuple[PhaseDose, ...], np.ndarray]:
    """Each phase resampled onto ``grid``, and where all of them cover it."""
    if not isinstance(point_map, RigidMap):
        return _phases_on_grid_by_points(phases, grid, point_map)
    coverage = np.ones(grid.shape, dtype=bool)
    mapped = []
    for phase in phases:
        dose, covered = resample(phase.dose_gy, phase.grid, grid, point_map.matrix)
        coverage &= covered
        mapped.append(replace(phase, grid=grid, dose_gy=dose))
    return tuple(mapped), coverage


def _phases_on_grid_by_points(
    phases: Sequence[PhaseDose], grid: Grid, point_map: PointMap
) -> tuple[tuple[PhaseDose, ...], np.ndarray]:
    """:func:`_phases_on_grid` for any point map: every voxel centre sampled, one frame at a time."""
    grid.require_memory("resampled dose grid")
    doses = [np.zeros(grid.shape) for _ in phases]
    coverage = np.zeros(grid.shape, dtype=bool)
    jj, ii = np.meshgrid(np.arange(grid.shape[1]), np.arange(grid.shape[2]), indexing="ij")
    plane = np.column_stack([np.zeros(jj.size), jj.ravel(), ii.ravel()])
    for k in range(grid.shape[0]):
        plane[:, 0] = k
        values, covered = phase_doses_at(phases, grid, plane, point_map)
        coverage[k] = covered.reshape(grid.shape[1:])
        for dose, value in zip(doses, values):
            dose[k] = value.reshape(grid.shape[1:])
    return tuple(replace(p, grid=grid, dose_gy=d) for p, d in zip(phases, doses)), coverage


def cumulative_eqd2_gy(
    acc: AccumulatedCase,
    alpha_beta_gy: float,
    recovery: RecoveryModel | None = None,
    organ: str | None = None,
    lql_transition_gy: float | None = None,
) -> np.ndarray:
    """Sum of every course's EQD2 (Gy) on the reference grid, prior courses times (1 - r)."""
    factors = acc.recovery_factors(recovery, organ) if recovery is not None else {}
    total = np.zeros(acc.grid.shape)
    for course in acc.courses:
        eqd2 = course.eqd2_gy(alpha_beta_gy, lql_transition_gy)
        keep = factors[course.name].keep if course.name in factors else 1.0
        if keep == 1.0:
            total += eqd2
        else:
            total += keep * eqd2
    return total


def cumulative_eqd2_at(
    acc: AccumulatedCase,
    points_mm: np.ndarray,
    alpha_beta_gy: float,
    recovery: RecoveryModel | None = None,
    organ: str | None = None,
    lql_transition_gy: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative EQD2 (Gy) at reference-frame points, and where every course's dose grid covers them.

    Parameters
    ----------
    acc : AccumulatedCase
        The courses related to the reference frame.
    points_mm : ndarray, shape (N, 3)
        Points in the reference course's patient frame, mm.
    alpha_beta_gy, recovery, organ, lql_transition_gy
        As for :func:`cumulative_eqd2_gy`.

    Returns
    -------
    eqd2_gy : ndarray, shape (N,)
        Sum over courses of each course's EQD2 (each phase's physical dose interpolated
        trilinearly on its own grid at the course's point map of the point, then converted with
        its own fractions), prior courses times (1 - r). A course contributes 0 Gy where its grid
        does not reach.
    covered : ndarray of bool, shape (N,)
        True where every course's dose grid reaches the point.
    """
    positions = acc.grid.to_index(np.asarray(points_mm, dtype=float).reshape(-1, 3))
    factors = acc.recovery_factors(recovery, organ) if recovery is not None else {}
    total = np.zeros(len(positions))
    covered = np.ones(len(positions), dtype=bool)
    for course in acc.courses:
        keep = factors[course.name].keep if course.name in factors else 1.0
        doses, course_covered = phase_doses_at(course.phases, acc.grid, positions, course.point_map)
        covered &= course_covered
        for phase, dose in zip(course.phases, doses):
            total += keep * eqd2_gy(dose, phase.fractions, alpha_beta_gy, lql_transition_gy)
    return total, covered
