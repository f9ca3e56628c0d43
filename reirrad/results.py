"""What `reirrad check` found, as plain frozen data: the input to every report format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

STATUSES = ("pass", "warn", "fail", "not_evaluated", "report")


@dataclass(frozen=True)
class FileRecord:
    """An input file and its SHA-256, so a report pins exactly what was checked."""

    path: str
    sha256: str


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
    status: str
    reason: str | None
    priority: str
    source_id: str  # short key of the source in the constraint set ("" when none)
    source: str  # full citation
    constraint_set: str
    mitigation: str = ""
    notes: tuple[str, ...] = ()
    dose_basis: str = "undiscounted"  # the dose the limit was derived on (a recovery model's name, or not)
    discounted: Discounted | None = None  # the run's recovery model applied, for information only

    @property
    def has_threshold(self) -> bool:
        """True for a real constraint (hard or soft: a limit, a warn level or a tolerance rule),
        False for report-only."""
        return self.priority != "report"


def nothing_judged(results: tuple[ConstraintResult, ...]) -> bool:
    """True when no constraint with a limit or warning level reached a verdict (pass, warn or
    fail): such a run checked nothing, whatever was allowed to be missing."""
    return not any(r.has_threshold and r.status in ("pass", "warn", "fail") for r in results)


@dataclass(frozen=True, eq=False)
class DvhCurve:
    """Cumulative DVH of a structure's cumulative EQD2 (for plots): volume % at each dose level."""

    structure: str
    alpha_beta_gy: float
    dose_gy: np.ndarray
    volume_percent: np.ndarray


@dataclass(frozen=True)
class Summary:
    """Counts per status and the exit code the run ends with."""

    counts: dict[str, int]
    exit_code: int


@dataclass(frozen=True)
class CheckReport:
    """Everything one run of `reirrad check` determined."""

    case_id: str
    case_path: str | None
    reference_course: str
    courses: tuple[CourseSummary, ...]
    constraint_set_name: str
    constraint_set_version: str
    constraint_set_title: str
    results: tuple[ConstraintResult, ...]
    flags: tuple  # tuple[reirrad.flags.Flag, ...]
    assumptions: dict[str, object]
    summary: Summary
    reirrad_version: str
    warnings: tuple[str, ...] = field(default=())
    curves: tuple[DvhCurve, ...] = field(default=())
    options: dict[str, object] = field(default_factory=dict)  # the run's options (CheckOptions fields)
    run_at: str = ""  # when the check ran, ISO 8601 UTC to the second
