"""What `reirrad check` found, as plain frozen data: the input to every report format."""

from __future__ import annotations

from collections.abc import Callable  # at run time: the store resolves the report's type hints
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

import numpy as np

from reirrad.flags import Flag  # at run time: the results store rebuilds reports from these type hints
from reirrad.tps import TpsComparison  # likewise
from reirrad.verdicts import nothing_judged  # noqa: F401  (re-exported; the one exit-code policy)


class Status(StrEnum):
    """The verdict on one result. A ``str``: ``Status.PASS == "pass"`` and JSON holds the value.

    Examples
    --------
    >>> Status("fail") is Status.FAIL, Status.NOT_EVALUATED == "not_evaluated"
    (True, True)
    """

    PASS = "pass"  # within its limit (and below its warn level)
    WARN = "warn"  # above its warn level, within its limit
    FAIL = "fail"  # above its limit
    NOT_EVALUATED = "not_evaluated"  # could not be evaluated (the reason says why): never a pass
    REPORT = "report"  # report-only metric, no threshold


STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class FileRecord:
    """An input file and its SHA-256, so a report pins exactly what was checked.

    An object given in memory (a pydicom dataset, no file) has ``sha256`` None and a ``path``
    naming its modality and SOPInstanceUID, e.g. ``<RTDOSE 1.2.3...>``.
    """

    path: str
    sha256: str | None


@dataclass(frozen=True)
class PhaseSummary:
    """One plan (phase) of a course: how its dose was converted to EQD2."""

    plan_label: str
    fractions: int
    fraction_source: str  # "plan" or "override"
    prescription_gy: float | None
    max_dose_gy: float  # highest physical voxel dose of the phase on its own grid
    plan_fractions: int | None = None  # the plan's own count (differs from fractions when overridden)


@dataclass(frozen=True)
class Patient:
    """Whose plans these are, as the course's DICOM names them ("" when absent)."""

    name: str = ""  # PatientName as stored (DICOM PN, e.g. DOE^JANE)
    patient_id: str = ""
    birth_date: str = ""  # PatientBirthDate (YYYYMMDD): not shown, known so that --deidentify can hide it


@dataclass(frozen=True)
class CourseSummary:
    """A course as the report header shows it."""

    name: str
    fractions: int  # over all phases
    prescription_gy: float | None  # sum of the phase prescriptions, None when one has none
    phases: tuple[PhaseSummary, ...]
    files: tuple[FileRecord, ...]
    frame_of_reference: str
    registration: str  # "identity", "REG <SOPInstanceUID>", "reference" or "none (conservative)"
    start_date: date | None
    end_date: date | None
    interval_months: float | None  # from this course's end to the reference course's start
    recovery_model: str
    patient: Patient = Patient()


@dataclass(frozen=True, eq=False)
class RegistrationPicture:
    """The QA picture of an automatic registration a check used (figures only: never in the JSON
    document or the results store). ``caption`` says what it shows (the registration, not reviewed,
    its metric and transform); ``png()`` draws it (PNG bytes), only for the formats that show figures."""

    course: str  # the prior course registered
    caption: str
    png: Callable[[], bytes]


@dataclass(frozen=True)
class Discounted:
    """A cumulative value with prior courses discounted by a recovery model, shown beside a result
    judged on the undiscounted sum (its limit was derived without a discount): never judged."""

    recovery_model: str
    value: float | None  # in the result's unit
    recovery: dict[str, float]  # r of each course under that model


@dataclass(frozen=True)
class ConstraintResult:
    """The verdict on one constraint (or one report-only metric) for one organ."""

    constraint_id: str
    organ: str
    structure: str | None
    metric: str
    alpha_beta_gy: float
    limit_gy: float | None  # in ``unit`` (Gy for dose metrics; cm3 / % for volume metrics), as judged
    warn_gy: float | None  # in ``unit``
    value_gy: float | None  # cumulative EQD2 (Gy), or cm3 / % for volume metrics
    unit: str
    per_course: dict[str, float | None]
    recovery: dict[str, float]  # recovery fraction r applied to each course in value_gy
    status: Status  # a plain string given on creation is converted (ValueError for an unknown one)
    reason: str | None
    priority: str
    source_id: str  # short key of the source in the constraint set ("" when none)
    source: str  # full citation
    constraint_set: str
    mitigation: str = ""
    notes: tuple[str, ...] = ()
    dose_basis: str = "undiscounted"  # the dose the limit was derived on (a recovery model's name, or not)
    discounted: Discounted | None = None  # the run's recovery model applied, for information only
    # registration uncertainty (reirrad.robust; None when not requested): the highest value found with the
    # prior courses displaced within the uncertainty, in ``unit``, and the displacement that gave it
    worst_case_gy: float | None = None
    worst_shift_mm: tuple[float, float, float] | None = None  # reference frame (x, y, z), mm
    worst_rotation_deg: tuple[float, float, float] | None = None  # rotation vector, degrees (None: shifts only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def has_threshold(self) -> bool:
        """True for a real constraint (hard or soft: a limit, a warn level or a tolerance rule),
        False for report-only."""
        return self.priority != "report"


def noting_courses(results: tuple[ConstraintResult, ...], notes: tuple[str, ...]) -> tuple[ConstraintResult, ...]:
    """``results`` with ``notes`` (what the courses were mapped through: "course 'prior': ...") added
    to each result that has a value, since every one of them was computed through it."""
    if not notes:
        return results
    return tuple(replace(r, notes=(*r.notes, *notes)) if r.value_gy is not None else r for r in results)


@dataclass(frozen=True, eq=False)
class DvhCurve:
    """Cumulative DVH of a structure's cumulative EQD2, or of one course's own EQD2 (for plots):
    volume % at each dose level."""

    structure: str
    alpha_beta_gy: float
    dose_gy: np.ndarray
    volume_percent: np.ndarray
    course: str = ""  # the course whose own EQD2 this is; "" for the cumulative EQD2


class View(StrEnum):
    """A plane through a hot spot: its fixed patient axis and the two drawn (horizontal, vertical)."""

    AXIAL = "axial"  # z fixed; x horizontal, y vertical
    CORONAL = "coronal"  # y fixed; x horizontal, z vertical
    SAGITTAL = "sagittal"  # x fixed; y horizontal, z vertical


@dataclass(frozen=True, eq=False)
class Section:
    """One plane through a hot spot sampled on a regular mesh (reference frame), for a figure.

    ``u_mm`` (U,) and ``v_mm`` (V,) are the horizontal and vertical patient coordinates (mm) of
    the mesh; the arrays are (V, U): ``eqd2_gy`` the cumulative EQD2 (Gy, NaN where a course's dose
    grid does not reach), ``organ`` and ``target`` where the organ's and the target's contours
    enclose the point, ``ct_hu`` the planning CT (HU) or None when the course has none.
    """

    view: View
    u_mm: np.ndarray
    v_mm: np.ndarray
    eqd2_gy: np.ndarray
    organ: np.ndarray
    target: np.ndarray
    ct_hu: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Hotspot:
    """Where a failing or warning organ's cumulative EQD2 is highest, and the planes through it.

    ``point_mm`` is the organ's sample with the highest cumulative EQD2 (reference frame, mm) and
    ``point_eqd2_gy`` that EQD2 (Gy, the result's alpha/beta, recovery as judged). ``target`` names
    the new course's target structures drawn (empty: none found), ``ct`` describes the CT drawn
    underneath ("" when none), ``notes`` say what could not be drawn.
    """

    constraint_id: str
    point_mm: tuple[float, float, float]
    point_eqd2_gy: float
    sections: tuple[Section, ...]
    target: tuple[str, ...] = ()
    ct: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """Counts per status and the exit code the run ends with."""

    counts: dict[str, int]
    exit_code: int


@dataclass(frozen=True)
class CheckReport:
    """Everything one run of `reirrad check` determined (what :func:`reirrad.check` returns).

    Attributes
    ----------
    results : tuple of ConstraintResult
        One verdict per constraint of the set, in the set's order: ``value_gy`` is the cumulative
        EQD2 (Gy; cm3 or % for volume metrics), ``per_course`` each course's share (same unit),
        ``status`` a :class:`Status`.
    courses : tuple of CourseSummary
        The courses, oldest first (the last is the reference).
    flags : tuple of reirrad.flags.Flag
        Toxicity-mitigation and data-quality flags that fired.
    summary : Summary
        Counts per status and the exit code the command line would end with (0 pass, 1 fail).

    Examples
    --------
    >>> import reirrad
    >>> report = reirrad.check(reirrad.data.sample_case())
    >>> report.to_dict()["schema"]
    'reirrad.check.v1'
    """

    case_id: str
    case_path: str | None
    reference_course: str
    courses: tuple[CourseSummary, ...]
    constraint_set_name: str
    constraint_set_version: str
    constraint_set_title: str
    results: tuple[ConstraintResult, ...]
    flags: tuple[Flag, ...]
    assumptions: dict[str, object]
    summary: Summary
    reirrad_version: str
    warnings: tuple[str, ...] = field(default=())
    curves: tuple[DvhCurve, ...] = field(default=())
    hotspots: tuple[Hotspot, ...] = field(default=())  # figures only: never in the JSON document
    options: dict[str, object] = field(default_factory=dict)  # the run's options (CheckOptions fields)
    run_at: str = ""  # when the check ran, ISO 8601 UTC to the second
    tps: tuple[TpsComparison, ...] = field(default=())  # the planning system's own DVHs vs reirrad's (reference course)
    registration_pictures: tuple[RegistrationPicture, ...] = field(default=())  # figures only (reirrad.autoreg)

    def result(self, constraint_id: str) -> ConstraintResult:
        """The result of one constraint by its id (KeyError naming the ids when there is none).

        Examples
        --------
        >>> import reirrad
        >>> report = reirrad.check(reirrad.data.sample_case())
        >>> cord = report.result("spinalcord-dmax")
        >>> cord.status, sorted(cord.per_course)
        (<Status.WARN: 'warn'>, ['new', 'prior'])
        """
        for r in self.results:
            if r.constraint_id == constraint_id:
                return r
        raise KeyError(f"no result {constraint_id!r} (has: {', '.join(r.constraint_id for r in self.results)})")

    def to_dict(self) -> dict:
        """The report as the ``reirrad.check.v1`` document, exactly what ``reirrad check --format
        json`` writes, as a JSON-ready dict (numbers rounded as there, statuses as strings).

        Returns
        -------
        dict
            Keys ``schema``, ``reirrad_version``, ``case``, ``courses``, ``constraint_set``,
            ``assumptions``, ``results``, ``flags``, ``warnings``, ``summary``.
        """
        from reirrad.report.machine import report_dict

        return report_dict(self)

    def to_json(self) -> str:
        """The ``reirrad.check.v1`` document as JSON text (what ``--format json`` writes).

        Examples
        --------
        >>> import json, reirrad
        >>> report = reirrad.check(reirrad.data.sample_case())
        >>> json.loads(report.to_json()) == json.loads(json.dumps(report.to_dict(), default=str))
        True
        """
        from reirrad.report.machine import to_json

        return to_json(self)
