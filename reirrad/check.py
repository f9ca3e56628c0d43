"""`reirrad check`: judge the cumulative EQD2 of every course against a constraint set.

Data flows one way: load courses -> map onto the reference grid -> sample each phase's physical
dose at each organ's structure samples -> EQD2 per phase (its own fractions) and alpha/beta ->
recovery per organ and course -> cumulative samples -> metric -> verdict -> flags.
Each structure is rasterised once (:func:`reirrad.masks.sample_roi`) and every course is sampled
at the same points, so a cumulative metric splits exactly into course contributions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from reirrad import __version__, robust, verdicts
from reirrad.accumulate import (
    AccumulatedCase,
    CourseOnGrid,
    LoadedCourse,
    accepting,
    fraction_text,
    load_courses,
    map_courses,
    months_between,
    phase_doses_at,
)
from reirrad.case import CaseSpec, CourseSpec, load_case
from reirrad.constraints import (
    UNDISCOUNTED,
    Constraint,
    ConstraintSet,
    Judging,
    judge,
    judging,
    load_constraint_set,
    resolve_set_path,
)
from reirrad.dicom.deformable import FieldPointMap
from reirrad.dicom.identity import PatientIdentity
from reirrad.dicom.structures import StructureSet
from reirrad.dvh import Dvh, MetricValue, cumulative_dvh, evaluate
from reirrad.eqd2 import NO_RECOVERY, RecoveryModel, check_lql_transition_gy, eqd2_gy, recovery_factor, recovery_model
from reirrad.errors import InputError, OptionError, ReirradError
from reirrad.flags import CourseDose, CourseInfo, FlagContext, FlagRules, OrganResult, compute_flags, load_flag_rules
from reirrad.grid import Grid
from reirrad.mapping import PointMap
from reirrad.masks import RoiSampling, sample_roi
from reirrad.metrics import DoseAtVolume, Metric, MetricKind, Statistic, VolumeUnit, parse_metric
from reirrad.organs import OrganMatch, match_organs
from reirrad.outputs import case_inputs
from reirrad.results import (
    STATUSES,
    CheckReport,
    ConstraintResult,
    CourseSummary,
    Discounted,
    DvhCurve,
    Hotspot,
    Patient,
    PhaseSummary,
    Status,
    Summary,
    noting_courses,
)
from reirrad.strategies import Evaluation, Strategy
from reirrad.tps import course_comparisons
from reirrad.verdicts import FailOn

DEFAULT_SET = "hn-reirradiation"
CURVE_BIN_GY = 0.1  # dose resolution of the DVH curves drawn in reports


@dataclass(frozen=True)
class CheckOptions:
    """How a check is run and judged (the command-line switches), validated on creation."""

    constraints: str | None = None  # built-in set name or path; None: the case file's choice
    fail_on: FailOn = FailOn.FAIL  # a FailOn or its exact value ("fail", "warn")
    allow_missing: bool = False  # results that could not be evaluated do not fail the run
    recovery_model: str | None = None  # None: the case file's, else the constraint set's default
    lql_transition_gy: float | None = None
    conservative: bool = False  # no registration: per-organ sum of per-course upper bounds
    accept_dose_scale: bool = False  # every course: a dose maximum implausible against the prescription
    accept_other_patient: bool = False  # every course: another PatientID than the reference course's
    accept_partial_coverage: bool = False  # a course's grid missing part of a constrained organ: 0 Gy there
    # registration uncertainty (reirrad.robust): worst case within this shift (mm) and rotation (degrees);
    # None: the case file's. robust: verdicts on the worst case
    registration_uncertainty_mm: float | None = None
    registration_uncertainty_deg: float | None = None
    robust: bool = False
    # what the HTML and PDF reports draw (report.curves, report.hotspots: DVH curves, hot-spot planes on
    # the planning CT); False leaves both empty and changes no number (JSON, CSV, JUnit, the table, a batch)
    figures: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_on", fail_on_option(self.fail_on))
        check_lql_transition_gy(self.lql_transition_gy)
        robust.check_options(self)

    def judging(self) -> dict[str, object]:
        """The options that shape the results, by name (enums as their values): every field but
        ``figures``. The report shows them; a results store keys its cases on them."""
        return {
            f.name: getattr(getattr(self, f.name), "value", getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "figures"
        }


def fail_on_option(value: str | FailOn) -> FailOn:
    """``value`` as a :class:`FailOn` (its exact value, e.g. "warn"); OptionError for any other."""
    try:
        return FailOn(value)
    except ValueError:
        choices = ", ".join(repr(f.value) for f in FailOn)
        raise OptionError(f"fail_on must be one of {choices}, got {value!r}") from None


def exit_code(results: tuple[ConstraintResult, ...], options: CheckOptions) -> int:
    """The run's exit code under ``options`` (:func:`reirrad.verdicts.exit_code`, the one policy)."""
    return int(verdicts.exit_code(results, options.fail_on, options.allow_missing))


def _not_evaluated(
    constraint: Constraint, structure: str | None, reason: str, courses: list[str], notes: tuple[str, ...] = ()
) -> ConstraintResult:
    return _result(constraint, structure, None, dict.fromkeys(courses), {}, Status.NOT_EVALUATED, reason, notes)


def _result(
    constraint: Constraint,
    structure: str | None,
    value: float | None,
    per_course: dict[str, float | None],
    recovery: dict[str, float],
    status: Status,
    reason: str | None,
    notes: tuple[str, ...],
    levels: Judging | None = None,
    discounted: Discounted | None = None,
) -> ConstraintResult:
    levels = levels or Judging(False, constraint.limit, constraint.warn)
    return ConstraintResult(
        constraint_id=constraint.id,
        organ=constraint.organ,
        structure=structure,
        metric=constraint.metric,
        alpha_beta_gy=constraint.alpha_beta_gy,
        limit_gy=levels.limit,
        warn_gy=levels.warn,
        value_gy=value,
        unit=constraint.unit,
        per_course=per_course,
        recovery=recovery,
        status=status,
        reason=reason,
        priority=constraint.priority,
        source_id=constraint.source_id or "",
        source=constraint.source,
        constraint_set=constraint.set_name,
        mitigation=constraint.mitigation,
        notes=notes,
        dose_basis=constraint.dose_basis,
        discounted=discounted,
    )


Sums = tuple[float | None, dict[str, float | None]]  # a cumulative value and each course's share


def judged_result(
    constraint: Constraint,
    structure: str | None,
    how: Judging,
    model: RecoveryModel,
    recovery: dict[str, float],
    plain: Sums,
    discounted: Sums | None,
    notes: tuple[str, ...],
    reason: str | None = None,
) -> ConstraintResult:
    """The verdict on the dose ``how`` names: the plain (undiscounted) sum, or the sum with prior
    courses discounted by ``model`` (``discounted``, None when the model discounts nothing here).
    A result judged on the plain sum shows the discounted value beside it, labelled."""
    judged = discounted if how.discounted else None  # None: judged on the plain sum
    value, per_course = judged if judged is not None else plain
    notes = notes + ((how.note,) if how.note else ())
    shown = None
    if discounted is not None and constraint.dose_basis == UNDISCOUNTED:
        shown = Discounted(model.name, discounted[0], recovery)
        number = "n/a" if discounted[0] is None else f"{discounted[0]:.2f} {constraint.unit}"
        notes += (
            (
                f"judged on the undiscounted cumulative dose: the limit was derived without a recovery "
                f"discount; recovery model {model.name} would give {number} (shown for information, not judged)"
            ),
        )
    applied = recovery if judged is not None else dict.fromkeys(recovery, 0.0)
    status = Status.NOT_EVALUATED if value is None else Status(judge(how, value))
    return _result(
        constraint, structure, value, per_course, applied, status, reason if value is None else None, notes, how, shown
    )


def _discount(samples: dict[str, Dvh], recovery: dict[str, float]) -> dict[str, Dvh]:
    """Each course's samples times (1 - r)."""
    return {
        name: dataclasses.replace(dvh, doses_gy=dvh.doses_gy * (1.0 - recovery[name])) for name, dvh in samples.items()
    }


class _Evaluator:
    """Judges constraints on one accumulated case; caches samplings and per-course sample doses."""

    def __init__(
        self,
        acc: AccumulatedCase,
        model: RecoveryModel,
        lql_transition_gy: float | None,
        accept_partial_coverage: bool = False,
    ):
        if acc.structures is None:  # the callers refuse a reference course without an RTSTRUCT first
            raise InputError(acc.reference.course.spec.path, f"course '{acc.reference.name}' has no RTSTRUCT")
        self.structures: StructureSet = acc.structures
        self.acc = acc
        self.model = model
        self.lql_transition_gy = lql_transition_gy
        self.accept_partial_coverage = accept_partial_coverage
        self._samplings: dict[str, RoiSampling] = {}
        self._course_samples: dict[tuple[str, str], CourseSamples] = {}  # (structure, course) -> samples
        self._coverage: dict[str, dict[str, float]] = {}  # structure -> course -> covered volume fraction
        self._course_eqd2: dict[tuple[str, float], dict[str, Dvh]] = {}  # (structure, a/b) -> per course
        self._cumulative: dict[tuple[str, float], Dvh] = {}  # (structure, a/b) -> summed EQD2, no recovery

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.acc.courses]

    def sampling(self, structure: str) -> RoiSampling:
        """The structure rasterised once on the reference grid."""
        if structure not in self._samplings:
            roi = self.structures.by_name(structure)
            self._samplings[structure] = sample_roi(roi, self.acc.grid)
        return self._samplings[structure]

    def recovery(self, organ: str) -> dict[str, float]:
        """Recovery fraction r per course for this organ (0 for the reference course)."""
        factors = self.acc.recovery_factors(self.model, organ)
        return {name: factors[name].r if name in factors else 0.0 for name in self.names}

    def course_samples(self, structure: str, course: CourseOnGrid, point_map: PointMap | None = None) -> CourseSamples:
        """Physical dose (Gy) of each of ``course``'s phases at the structure's samples, and which
        samples the course's dose grids cover.

        The samples are made once per structure on the evaluation grid (reference frame); each
        phase is interpolated trilinearly on its own dose grid at ``point_map`` of the samples
        (default: the course's own map, identity or REG; the result is then cached). A sample is
        covered when it lies within every phase grid's voxels; an uncovered sample gets 0 Gy.
        This is the one place a course's dose reaches the evaluation: give another ``point_map``
        (a shifted registration, a deformable map) to sample the course through it instead.
        """
        key = (structure, course.name)
        if point_map is None and key in self._course_samples:
            return self._course_samples[key]
        sampling = self.sampling(structure)
        if point_map is not None and point_map is not course.point_map:
            _refuse_outside_field(structure, sampling, self.acc.grid, point_map)
        doses, covered = phase_doses_at(
            course.phases, self.acc.grid, sampling.positions, point_map or course.point_map, margin_voxels=0.5
        )
        samples = CourseSamples(tuple(_dvh(sampling, dose) for dose in doses), covered)
        if point_map is None:
            self._course_samples[key] = samples
        return samples

    def phase_samples(self, structure: str) -> dict[str, tuple[Dvh, ...]]:
        """Physical dose (Gy) of every phase of every course at the structure's samples.

        Sampled once per structure; EQD2 is then computed per sample from the interpolated
        physical dose (interpolating an EQD2 map instead would overestimate, EQD2 being convex).
        """
        return {c.name: self.course_samples(structure, c).phases for c in self.acc.courses}

    def course_eqd2_samples(self, structure: str, alpha_beta_gy: float) -> dict[str, Dvh]:
        """Each course's EQD2 at the structure's samples, its phases converted with their own
        fractions and added; no recovery. The verdicts and the flags both start from these."""
        key = (structure, alpha_beta_gy)
        if key not in self._course_eqd2:
            out = {}
            for course in self.acc.courses:
                samples = self.phase_samples(structure)[course.name]
                doses = [
                    eqd2_gy(dvh.doses_gy, phase.fractions, alpha_beta_gy, self.lql_transition_gy)
                    for dvh, phase in zip(samples, course.phases)
                ]
                total = sum(doses[1:], doses[0])
                out[course.name] = dataclasses.replace(samples[0], doses_gy=total)
            self._course_eqd2[key] = out
        return self._course_eqd2[key]

    def course_doses(self, structure: str, metric: Metric, alpha_beta_gy: float) -> dict[str, CourseDose]:
        """Each course's own value of a dose metric on the structure, for the flags: EQD2 from
        :meth:`course_eqd2_samples` (before recovery), physical (phases added), and the highest
        per-phase physical value per fraction. Volume metrics: no values."""
        if not metric.is_dose:
            return {}
        eqd2 = self.course_eqd2_samples(structure, alpha_beta_gy)
        out = {}
        for course in self.acc.courses:
            samples = self.phase_samples(structure)[course.name]
            values = [evaluate(dvh, metric).value for dvh in samples]
            per_fraction = [v for v in values if v is not None]
            out[course.name] = CourseDose(
                eqd2_gy=evaluate(eqd2[course.name], metric).value,
                physical_gy=values[0] if len(samples) == 1 else evaluate(_add(samples), metric).value,
                per_fraction_gy=None
                if len(per_fraction) < len(values)
                else max(v / phase.fractions for v, phase in zip(per_fraction, course.phases)),
            )
        return out

    def coverage(self, structure: str) -> dict[str, float]:
        """Volume fraction of the structure inside each course's dose grid (computed once per structure)."""
        if structure not in self._coverage:
            weights = self.sampling(structure).weights_cc
            self._coverage[structure] = {
                c.name: covered_fraction(weights, self.course_samples(structure, c).covered) for c in self.acc.courses
            }
        return self._coverage[structure]

    def organ_samples(
        self, constraint: Constraint, match: OrganMatch
    ) -> tuple[str, dict[str, Dvh]] | tuple[str | None, str]:
        """The structure standing for the constraint's organ and every course's EQD2 samples of it,
        or the structure (if any) and the reason there are none."""
        if match.structure is None:
            return None, match.reason or match.status
        roi = self.structures.by_name(match.structure)
        if roi.is_empty:
            return roi.name, f"structure is empty: {roi.empty_reason}"
        if self.sampling(roi.name).in_grid_volume_cc <= 0:
            return roi.name, "structure lies outside every course's dose grid"
        return roi.name, self.course_eqd2_samples(roi.name, constraint.alpha_beta_gy)

    def notes(self, structure: str) -> tuple[str, ...]:
        """Sampling notes, and one note per course whose dose grid misses part of the structure."""
        return tuple(self.sampling(structure).notes) + tuple(
            f"{gap}; that course contributes 0 Gy there" for gap in self.coverage_gaps(structure)
        )

    def coverage_gaps(self, structure: str) -> tuple[str, ...]:
        """One text per course whose dose grid misses part of the structure: how much, which course."""
        return tuple(
            f"{_percent_outside(f)} % of the structure lies outside course '{name}' dose grid"
            for name, f in self.coverage(structure).items()
            if f < 1.0
        )

    def refuse_courses_missing_everything(self, structures: list[str]) -> None:
        """InputError naming a course whose dose grid reaches none of ``structures`` (with volume):
        it would add 0 Gy to every organ."""
        sampled = [s for s in structures if self.sampling(s).in_grid_volume_cc > 0]
        if not sampled:
            return
        for course in self.acc.courses:
            if all(self.coverage(s)[course.name] <= 0.0 for s in sampled):
                raise InputError(
                    course.course.spec.path,
                    f"course '{course.name}': its dose grid ({course.registration_label}) reaches none of the "
                    f"{len(sampled)} evaluated structures; check its registration and geometry",
                )

    def refuse_structures_outside_fields(self, structures: list[str]) -> dict[str, tuple[float, float]]:
        """InputError when a course mapped by a deformable registration has evaluated structures
        (partly) outside its deformation field: which structures, how much of each (by volume).
        Their prior dose there is unknown; it is not summed as 0 Gy. Also refused: a field that folds
        over them (deform2: Jacobian determinant <= 0). Returns each such course's determinant range
        over them (minimum, maximum) for the volume-change flag."""
        ranges: dict[str, tuple[float, float]] = {}
        for course in self.acc.courses:
            if not isinstance(course.point_map, FieldPointMap):
                continue
            gaps = []
            for name in structures:
                sampling = self.sampling(name)
                if not len(sampling.positions):
                    continue
                points = self.acc.grid.to_patient(sampling.positions)
                missing = course.point_map.missing_fraction(points, sampling.weights_cc)
                if missing > 0.0:
                    gaps.append(f"{name} {_percent_outside(1.0 - missing)} %")
            if gaps:
                raise InputError(
                    course.point_map.path,
                    f"course '{course.name}': {course.point_map.label}: its deformation field misses part of "
                    f"{len(gaps)} of the {len(structures)} evaluated structures (volume outside the field or on "
                    f"undefined vectors: {', '.join(gaps)}); the field must cover every evaluated structure",
                )
            region = (self.acc.grid.to_patient(self.sampling(n).positions) for n in structures)  # deform2
            jacobian = course.point_map.refuse_folding(region)
            if jacobian is not None:
                ranges[course.name] = (jacobian.minimum, jacobian.maximum)
        return ranges

    def prior_recovery(self, recovery: dict[str, float]) -> dict[str, float]:
        """r of the prior courses only."""
        return {c.name: recovery[c.name] for c in self.acc.courses if not c.is_reference}

    def evaluate(self, constraint: Constraint, match: OrganMatch) -> ConstraintResult:
        """The verdict on one constraint (never a silent pass: anything missing is not evaluated)."""
        found = self.organ_samples(constraint, match)
        if isinstance(found[1], str):
            return _not_evaluated(constraint, found[0], found[1], self.names)
        structure, samples = found
        gaps = self.coverage_gaps(structure)
        if gaps and not constraint.report_only and not self.accept_partial_coverage:
            reason = "; ".join(gaps) + (
                " (its dose there is unknown; accept the gap as 0 Gy with "
                "--accept-partial-coverage or accept_partial_coverage = true)"
            )
            return _not_evaluated(constraint, structure, reason, self.names, self.notes(structure))
        recovery = self.recovery(constraint.organ)
        notes = self.notes(structure)
        how = judging(constraint, self.model.name, self.prior_recovery(recovery))
        if isinstance(how, str):
            return _not_evaluated(constraint, structure, how, self.names, notes)
        metric = parse_metric(constraint.metric)
        key = (structure, constraint.alpha_beta_gy)
        plain = self._cumulative.setdefault(key, _add(samples.values()))
        discounted = None
        if any(recovery.values()):
            scaled = _discount(samples, recovery)
            discounted = self.sums(_add(scaled.values()), metric, scaled)
        plain_sums = self.sums(plain, metric, samples)
        why = evaluate(plain, metric).reason if plain_sums[0] is None else None
        return judged_result(constraint, structure, how, self.model, recovery, plain_sums, discounted, notes, why)

    @staticmethod
    def sums(cumulative: Dvh, metric: Metric, per_course: dict[str, Dvh]) -> Sums:
        """A metric of the cumulative samples and each course's share of it."""
        value = evaluate(cumulative, metric)
        if value.value is None:
            return None, dict.fromkeys(per_course)
        return value.value, contributions(value, metric, per_course)

    def curves(self, bin_width_gy: float = CURVE_BIN_GY) -> tuple[DvhCurve, ...]:
        """Cumulative EQD2 DVH (no recovery) of every evaluated structure and alpha/beta, in volume %,
        and each course's own EQD2 DVH of it (for the per-course figures)."""
        out = []
        for (structure, alpha_beta), dvh in self._cumulative.items():
            # figures: the cumulative curve (course "") and each course's own (per-course overlays)
            for course, own in {"": dvh, **self._course_eqd2[(structure, alpha_beta)]}.items():
                dose, volume = cumulative_dvh(own, bin_width_gy)
                out.append(DvhCurve(structure, alpha_beta, dose, 100.0 * volume / own.in_grid_volume_cc, course))
        return tuple(out)

    def hottest_sample_mm(self, result: ConstraintResult) -> np.ndarray:
        """figures: the sample of the result's structure with the highest cumulative EQD2 (prior
        courses discounted as the result was judged), reference frame, mm (3,)."""
        assert result.structure is not None
        samples = self.course_eqd2_samples(result.structure, result.alpha_beta_gy)
        total = sum((1.0 - result.recovery.get(name, 0.0)) * dvh.doses_gy for name, dvh in samples.items())
        position = self.sampling(result.structure).positions[int(np.argmax(total))]
        return self.acc.grid.to_patient(position[None].astype(float))[0]

    def organ_result(self, result: ConstraintResult) -> OrganResult:
        """What the flags need to know about one result: its verdict's value and each course's own
        dose from the same samples (before recovery)."""
        per_course: dict[str, CourseDose] = {}
        coverage: dict[str, float] = {}
        if result.structure is not None and not self.structures.by_name(result.structure).is_empty:
            metric = parse_metric(result.metric)
            per_course = self.course_doses(result.structure, metric, result.alpha_beta_gy)
            coverage = self.coverage(result.structure)
        return OrganResult(
            organ=result.organ,
            structure=result.structure,
            metric=result.metric,
            alpha_beta_gy=result.alpha_beta_gy,
            cumulative_gy=result.value_gy,
            status=result.status,
            per_course=per_course,
            coverage=coverage,
        )


@dataclass(frozen=True, eq=False)
class CourseSamples:
    """One course's physical dose at one structure's samples: a :class:`Dvh` per phase, and which
    samples (N,) the course's dose grids cover."""

    phases: tuple[Dvh, ...]
    covered: np.ndarray


def _dvh(sampling: RoiSampling, doses_gy: np.ndarray) -> Dvh:
    """Doses (Gy) at the samples of ``sampling``, with its weights and volumes."""
    return Dvh(
        doses_gy=doses_gy,
        weights_cc=sampling.weights_cc,
        volume_cc=sampling.volume_cc,
        in_grid_volume_cc=sampling.in_grid_volume_cc,
        notes=sampling.notes,
    )


def _add(dvhs) -> Dvh:
    """Samples of the same structure from several courses, added sample by sample."""
    dvhs = list(dvhs)
    return dataclasses.replace(dvhs[0], doses_gy=np.sum([d.doses_gy for d in dvhs], axis=0))


def contributions(value, metric: Metric, per_course: dict[str, Dvh]) -> dict[str, float | None]:
    """Each course's share of a cumulative metric.

    Dose metrics: each course's dose at the very samples (and weights) that set the cumulative
    value, so the shares add up to it exactly. Volume metrics do not split: each course's own value.
    """
    if value.indices is None:
        return {name: evaluate(dvh, metric).value for name, dvh in per_course.items()}
    return {name: float(np.dot(value.coefficients, dvh.doses_gy[value.indices])) for name, dvh in per_course.items()}


def overlap_doses_gy(acc: AccumulatedCase, new_min_gy: float) -> dict[str, np.ndarray]:
    """Each course's physical dose (Gy, phases added) at the voxels of the evaluation grid where the
    reference course's reaches ``new_min_gy`` (M,), in one order, for the overlap question of the
    re-irradiation type flag (volume at >= x Gy in a prior course and >= y Gy in the new one, y at
    least ``new_min_gy``: no other voxel can count). A prior course's dose is sampled directly on
    its own grids through its point map (0 Gy outside them)."""
    reference = acc.reference
    new_dose = _add_arrays([p.dose_gy for p in reference.on_grid_phases]).reshape(-1)
    hot = np.flatnonzero(new_dose >= new_min_gy)
    positions = np.column_stack(np.unravel_index(hot, acc.grid.shape)).astype(float)  # (M, 3) (k, j, i)
    out = {reference.name: new_dose[hot]}
    for course in acc.courses[:-1]:
        doses, _ = phase_doses_at(course.phases, acc.grid, positions, course.point_map)
        out[course.name] = _add_arrays(list(doses))
    return out


def _refuse_outside_field(structure: str, sampling: RoiSampling, grid: Grid, point_map: PointMap) -> None:
    """InputError when ``point_map`` (a course's map displaced, e.g. by the registration-uncertainty
    search) leads a structure's samples out of a deformation field (the map gives NaN there)."""
    base = point_map
    while not isinstance(base, FieldPointMap) and hasattr(base, "base"):
        base = base.base
    if not isinstance(base, FieldPointMap) or not len(sampling.positions):
        return
    missing = np.isnan(point_map(grid.to_patient(sampling.positions))).any(axis=1)
    if missing.any():
        share = float(np.sum(sampling.weights_cc[missing]) / max(float(np.sum(sampling.weights_cc)), 1e-12))
        raise InputError(
            base.path,
            f"{point_map.label}: {100.0 * share:.2f} % of {structure} (by volume) lies outside the deformation "
            "field there; the field must cover every evaluated structure",
        )


def _add_arrays(arrays: list[np.ndarray]) -> np.ndarray:
    """One array, or the element-wise sum of several."""
    return arrays[0] if len(arrays) == 1 else np.sum(arrays, axis=0)


def _percent_outside(covered: float) -> str:
    """The uncovered percentage, never rounded to 0 or 100 when it is not."""
    percent = 100.0 * (1.0 - covered)
    return f"{min(max(percent, 0.01), 99.99):.2f}" if 0.0 < percent < 100.0 else f"{percent:.0f}"


def covered_fraction(weights_cc: np.ndarray, covered: np.ndarray) -> float:
    """Volume fraction of the samples (weights in cm3) that are ``covered``; 0 without volume."""
    total = float(weights_cc.sum())
    return float(weights_cc[covered].sum()) / total if total > 0 else 0.0


def course_summary(
    course: CourseOnGrid, registration: str, interval_months: float | None, recovery: str
) -> CourseSummary:
    """The report header of one course."""
    return CourseSummary(
        name=course.name,
        fractions=course.fractions,
        prescription_gy=course.prescription_gy,
        phases=tuple(
            PhaseSummary(p.label, p.fractions, p.fraction_source, p.prescription_gy, p.max_dose_gy, p.plan_fractions)
            for p in course.course.phases
        ),
        files=course.course.files,
        frame_of_reference=course.course.frame_of_reference_uid,
        registration=registration,
        start_date=course.course.spec.start_date,
        end_date=course.course.spec.end_date,
        interval_months=interval_months,
        recovery_model=recovery,
        patient=_patient(course.course.patient),
    )


def _patient(identity: PatientIdentity | None) -> Patient:
    """Whose course this is, for the report header (empty when no file names a patient)."""
    return Patient() if identity is None else Patient(identity.name, identity.patient_id, identity.birth_date)


def course_summaries(acc: AccumulatedCase) -> tuple[CourseSummary, ...]:
    """Report headers of the courses of an accumulated case."""
    return tuple(
        course_summary(c, "reference", None, "none (reference course)")
        if c.is_reference
        else course_summary(c, c.registration_label, c.interval_months, c.recovery_model)
        for c in acc.courses
    )


def course_info(course: CourseOnGrid) -> CourseInfo:
    """What the flags need to know about one course."""
    phases = course.course.phases
    prescribed = [p.prescription_gy / p.fractions for p in phases if p.prescription_gy is not None]
    planned = [p.plan_fractions for p in phases if p.plan_fractions is not None]
    return CourseInfo(
        name=course.name,
        fractions=course.fractions,
        fraction_source="override" if any(p.fraction_source == "override" for p in phases) else "plan",
        plan_fractions=sum(planned) if len(planned) == len(phases) else None,
        prescription_gy=course.prescription_gy,
        max_dose_per_fraction_gy=max(p.max_dose_gy / p.fractions for p in phases),
        prescribed_per_fraction_gy=max(prescribed) if len(prescribed) == len(phases) else None,
        start_date=course.course.spec.start_date,
        end_date=course.course.spec.end_date,
        schedule=_schedule(course.course.spec),
        registration=course.registration_label,
    )


def _schedule(spec: CourseSpec) -> Literal["daily", "alternate_day", "bid"] | None:
    """The course's schedule as the flags take it (a case file's is checked on reading)."""
    match spec.schedule:
        case None:
            return None
        case "daily" | "alternate_day" | "bid" as schedule:
            return schedule
        case other:
            raise InputError(spec.path, f"schedule must be one of daily, alternate_day, bid, got {other!r}")


def flag_context(
    acc: AccumulatedCase,
    case: CaseSpec,
    organs: tuple[OrganResult, ...],
    matches: tuple[OrganMatch, ...],
    rules: FlagRules,
) -> FlagContext:
    """Facts for the toxicity-mitigation flags (``rules``: the overlap threshold of the new course)."""
    intervals = [c.interval_months for c in acc.courses if not c.is_reference and c.interval_months is not None]
    thresholds = [r.params["new_min_gy"] for r in rules.rules if r.kind == "reirradiation_type"]
    return FlagContext(
        courses=tuple(course_info(c) for c in acc.courses),
        interval_months=min(intervals) if intervals else None,
        organs=organs,
        matches=matches,
        physical_dose_gy=overlap_doses_gy(acc, min(thresholds)) if thresholds and len(acc.courses) > 1 else None,
        voxel_volume_cc=acc.grid.voxel_volume_cc,
        clinical=case.clinical,
    )


def for_recovery_model(cset: ConstraintSet, model: RecoveryModel) -> ConstraintSet:
    """The set's entries that apply in a run using ``model``: every undiscounted entry and those
    belonging to ``model`` (entries of other recovery models are left out, and said so)."""
    return dataclasses.replace(cset, constraints=tuple(c for c in cset.constraints if c.applies_with(model.name)))


def dose_basis_text(cset: ConstraintSet, model: RecoveryModel) -> str:
    """How the recovery model meets the limits, for the assumptions."""
    full = load_constraint_set(cset.path)
    other = sorted(
        {f"{c.id.split('[')[0]} ({c.dose_basis})" for c in full.constraints if not c.applies_with(model.name)}
    )
    own = sorted({c.id.split("[")[0] for c in full.constraints if c.dose_basis == model.name})
    text = (
        "limits derived on undiscounted dose are judged on the undiscounted cumulative sum whatever the recovery model"
    )
    if model.name != NO_RECOVERY:
        text += f"; the value discounted by {model.name} is shown beside them, not judged"
    if own:
        text += f"; entries of recovery model {model.name} applied: {', '.join(own)}"
    if other:
        text += f"; entries of other recovery models not applied: {', '.join(other)}"
    return text


def _shared_assumptions(
    cset: ConstraintSet, model: RecoveryModel, options: CheckOptions, courses: Sequence[LoadedCourse]
) -> dict[str, object]:
    """The assumptions both strategies rest on: fractions, alpha/beta, model, recovery, dose basis."""
    return {
        "fractions": "; ".join(f"{c.name}: " + " + ".join(fraction_text(p) for p in c.phases) for c in courses),
        "alpha_beta": "per constraint, from the constraint set (see each result)",
        "radiobiological_model": "LQ"
        if options.lql_transition_gy is None
        else f"LQ-L above {options.lql_transition_gy:g} Gy per fraction",
        "recovery_model": f"{model.name}: {model.title} ({model.source})",
        "dose_basis": dose_basis_text(cset, model),
    }


def _set_text(cset: ConstraintSet) -> str:
    return f"{cset.name} v{cset.version} ({' > '.join(cset.lineage)})"


def assumptions(
    acc: AccumulatedCase, cset: ConstraintSet, model: RecoveryModel, options: CheckOptions
) -> dict[str, object]:
    """The assumptions every result rests on, as the ESTRO-EORTC consensus asks them reported."""
    return {
        "method": "each course's phases sampled on their own dose grids (trilinear) at every structure "
        "sample mapped into the course's frame (identity or registration), converted there to EQD2 with "
        "their own fractions, then summed sample by sample; organ metrics on the summed EQD2",
        "reference_grid": _grid_text(acc),
        **_shared_assumptions(cset, model, options, [c.course for c in acc.courses]),
        "registration": "; ".join(
            f"{c.name}: {'reference' if c.is_reference else c.registration_label}" for c in acc.courses
        ),
        "outside_grid": "a course contributes 0 Gy where its dose grid does not reach; every affected "
        "result says how much of the structure that is; a result with a limit or warn level is "
        + (
            "judged with that gap (accepted: accept_partial_coverage)"
            if acc.case.accept_partial_coverage
            else "not evaluated when such a gap exists (accept_partial_coverage not given)"
        ),
        "dvh": "structures supersampled on the reference grid with dose interpolated trilinearly; "
        "end caps of half the contour spacing beyond the first and last contour",
        "constraint_set": _set_text(cset),
    }


def _grid_text(acc: AccumulatedCase) -> str:
    """Which grid the evaluation ran on, and how it relates to the reference course's dose grid."""
    own = acc.reference_grid
    text = (
        f"course '{acc.reference.name}' dose grid {own.shape[::-1]} voxels (columns, rows, frames) "
        f"at {own.spacing_mm[::-1]} mm"
    )
    if acc.grid_is_grown:
        text += (
            f", grown by whole voxels to {acc.grid.shape[::-1]} to cover the evaluated structures where "
            f"another course has dose (course '{acc.reference.name}' gives 0 Gy outside its own grid)"
        )
    return text


def _match(structures: StructureSet, cset: ConstraintSet, case: CaseSpec, course: CourseSpec) -> dict[str, OrganMatch]:
    """The constraint organs matched in one course's structure set, with that course's map."""
    return match_organs(
        [r.name for r in structures.rois],
        [c.organ for c in cset.constraints],
        case.structures_of(course),
        empty=[r.name for r in structures.rois if r.is_empty],
        structure_set=f"structure set {structures.path} (course '{course.name}')",
    )


def unused_maps(case: CaseSpec) -> tuple[str, ...]:
    """Warnings for prior courses' structure maps, which only conservative mode reads."""
    return tuple(
        f"course '{c.name}': its [courses.structures] map is not used: only the reference course's "
        "structures are evaluated (prior structure sets are read with --conservative)"
        for c in case.courses[:-1]
        if c.structures is not None
    )


def _report(
    case: CaseSpec, cset: ConstraintSet, options: CheckOptions, courses: Sequence[LoadedCourse], evaluation: Evaluation
) -> CheckReport:
    """The one report of a check, whichever strategy evaluated it."""
    results = evaluation.results
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    return CheckReport(
        case_id=case.id,
        case_path=str(case.path),
        reference_course=courses[-1].name,
        courses=evaluation.courses,
        constraint_set_name=cset.name,
        constraint_set_version=cset.version,
        constraint_set_title=cset.title,
        results=results,
        flags=evaluation.flags,
        assumptions=evaluation.assumptions,
        summary=Summary(counts, exit_code(results, options)),
        reirrad_version=__version__,
        warnings=tuple(dict.fromkeys([note for c in courses for note in c.notes] + list(evaluation.warnings))),
        curves=evaluation.curves,
        hotspots=evaluation.hotspots,
        options=options.judging(),
        run_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def constraint_set_path(case: CaseSpec, options: CheckOptions) -> Path:
    """The constraint set file of a check: the option's (relative to the working folder), else the
    case file's (relative to the case file), else the default set."""
    if options.constraints:
        return resolve_set_path(options.constraints)
    return resolve_set_path(case.constraints or DEFAULT_SET, relative_to=case.path.parent)


def _set_files(path: Path) -> tuple[Path, ...]:
    """A constraint set file and the set files it extends that contribute constraints."""
    return tuple(dict.fromkeys([path] + [c.set_path for c in load_constraint_set(path).constraints]))


def check_inputs(case: CaseSpec, options: CheckOptions) -> tuple[Path, ...]:
    """Every file a check of ``case`` reads (no output may be one of them): the case's files, the
    constraint set file and the set files it extends that contribute constraints."""
    return case_inputs(case) + _set_files(constraint_set_path(case, options))


def run_check(case: CaseSpec, options: CheckOptions = CheckOptions()) -> CheckReport:
    """Judge the case's cumulative EQD2 against its constraint set (:class:`RegisteredSum`, or
    :class:`ConservativeBound` with ``options.conservative``)."""
    cset = load_constraint_set(constraint_set_path(case, options))
    model = recovery_model(options.recovery_model or case.recovery_model or cset.recovery_model)
    cset = for_recovery_model(cset, model)
    case = accepting(
        case,
        dose_scale=options.accept_dose_scale,
        other_patient=options.accept_other_patient,
        partial_coverage=options.accept_partial_coverage,
    )
    courses = load_courses(case)
    # ---- autoreg hook (reirrad/autoreg.py): registration = "auto" computed once, given to the reference course
    # like an in-memory REG; the report records it (assumptions) and keeps its QA picture
    automatic = not options.conservative and any(c.spec.auto_register for c in courses)
    if automatic:  # imported here: only a course with registration = "auto" needs reirrad.autoreg
        from reirrad import autoreg

        courses, registrations = autoreg.register_courses(courses)
    # ---- end of the autoreg hook
    strategy: Strategy = ConservativeBound() if options.conservative else RegisteredSum()
    evaluation = strategy.evaluate(case, cset, model, courses, options)
    if options.conservative:  # registration uncertainty: not searched, said so (reirrad.robust)
        evaluation = dataclasses.replace(evaluation, assumptions=robust.conservative_note(evaluation.assumptions, case))
    report = _report(case, cset, options, courses, evaluation)
    if automatic:  # autoreg hook: the automatic registrations recorded; their QA pictures only when figures are drawn
        report = autoreg.with_registration_qa(report, registrations, options.figures)
    structures = courses[-1].structures
    if structures is None:
        return report
    # the planning system's own DVHs of the reference course beside reirrad's
    dose_files = [path for phase in courses[-1].phases for path in phase.dose_files]
    return dataclasses.replace(report, tps=course_comparisons(dose_files, structures))


class RegisteredSum:
    """Every course related to the reference frame (identity or REG); EQD2 summed sample by sample
    at the reference structures' samples (:class:`_Evaluator`)."""

    def evaluate(
        self,
        case: CaseSpec,
        cset: ConstraintSet,
        model: RecoveryModel,
        courses: Sequence[LoadedCourse],
        options: CheckOptions,
    ) -> Evaluation:
        structures = courses[-1].structures
        if structures is None:
            raise InputError(case.reference.path, f"reference course '{courses[-1].name}' has no RTSTRUCT")
        matches = _match(structures, cset, case, case.reference)
        evaluated = dict.fromkeys(m.structure for m in matches.values() if m.structure is not None)
        cover = [structures.by_name(name) for name in evaluated]
        acc = map_courses(courses, dataclasses.replace(case, recovery_model=model.name), cover)
        evaluator = _Evaluator(acc, model, options.lql_transition_gy, case.accept_partial_coverage)
        jacobians = evaluator.refuse_structures_outside_fields([roi.name for roi in cover if not roi.is_empty])
        evaluator.refuse_courses_missing_everything([roi.name for roi in cover if not roi.is_empty])
        results = tuple(evaluator.evaluate(c, matches[c.organ]) for c in cset.constraints)
        assumed = assumptions(acc, cset, model, options)
        # ---- registration uncertainty hook (reirrad.robust): every result's worst case; verdicts on it when robust
        uncertainty, judge_worst = robust.registration_uncertainty(case, options)
        changes: tuple = ()
        if uncertainty is not None:
            results, changes = robust.robust_results(evaluator, cset.constraints, results, uncertainty, judge_worst)
            assumed["registration_uncertainty"] = robust.assumption_text(uncertainty, judge_worst)
        # ---- end of the registration uncertainty hook
        results = _with_deformable_notes(acc, results)
        # flags read undiscounted values, once per organ metric (a recovery model's own entry repeats one)
        organ_results = tuple(evaluator.organ_result(r) for r in results if r.dose_basis == UNDISCOUNTED)
        rules = load_flag_rules()
        context = flag_context(acc, case, organ_results, tuple(matches.values()), rules)
        context = dataclasses.replace(
            context, status_changes=changes, registration_uncertainty=None if uncertainty is None else uncertainty.text
        )
        context = dataclasses.replace(context, deformation_jacobians=jacobians)  # deform2: volume-change flag
        flags = compute_flags(context, rules)
        curves, hotspots = _figures(acc, evaluator, results, model, options) if options.figures else ((), ())
        return Evaluation(course_summaries(acc), results, tuple(flags), assumed, curves, unused_maps(case), hotspots)


def _with_deformable_notes(acc: AccumulatedCase, results: tuple[ConstraintResult, ...]) -> tuple[ConstraintResult, ...]:
    """``results`` with every course mapped through a deformable registration named in the notes of
    each result that has a value (all were computed through it), as the course summary names it:
    "course 'prior': deformable registration (creator / series) REG <uid>"."""
    notes = tuple(
        f"course '{c.name}': {c.point_map.label}" for c in acc.courses if isinstance(c.point_map, FieldPointMap)
    )
    return noting_courses(results, notes)


def _figures(
    acc: AccumulatedCase,
    evaluator: _Evaluator,
    results: tuple[ConstraintResult, ...],
    model: RecoveryModel,
    options: CheckOptions,
) -> tuple[tuple[DvhCurve, ...], tuple[Hotspot, ...]]:
    """What the HTML and PDF reports draw: every evaluated structure's DVH curves, and the planes
    through each failing or warning organ's hottest sample (reirrad/report/hotspot.py)."""
    from reirrad.report.hotspot import organ_hotspots

    hotspots = organ_hotspots(acc, results, evaluator.hottest_sample_mm, model, options.lql_transition_gy)
    return evaluator.curves(), hotspots


# ------------------------------------------------------------------ conservative mode (no registration)

CONSERVATIVE = "none (conservative per-course sum)"
BOUNDED = (MetricKind.DMAX, MetricKind.DMEAN, MetricKind.DX)  # metric kinds conservative mode can bound


def conservative_value(dvh: Dvh, metric: Metric, courses: int) -> MetricValue | None:
    """One course's share of an upper bound on ``metric`` of the summed dose, when the courses
    cannot be put on one grid (None: the metric has no such bound).

    Dmax: the maximum of a sum is at most the sum of the maxima. D<x>: where the sum exceeds
    t_1 + ... + t_n, at least one course exceeds its own t_c, so D<x>(sum) <= sum of each course's
    dose at x/n. Each course takes the hotter of the two samples around x/n less one sample's
    volume, which covers the linear interpolation between samples. Dmean adds exactly when the
    structures are identical. Dmin and volume metrics have no such bound.
    """
    if metric.kind in (MetricKind.DMAX, MetricKind.DMEAN):
        return evaluate(dvh, metric)
    if not isinstance(metric, DoseAtVolume):
        return None
    volume_cc = metric.volume if metric.volume_unit is VolumeUnit.CC else metric.volume / 100 * dvh.in_grid_volume_cc
    volume_cc = volume_cc / courses - float(dvh.weights_cc.max())
    if volume_cc <= 0:
        return evaluate(dvh, Statistic(MetricKind.DMAX))
    value = evaluate(dvh, DoseAtVolume(volume_cc, VolumeUnit.CC))
    if value.value is None or value.indices is None:
        return value
    hottest = value.indices[np.argmax(dvh.doses_gy[value.indices])]
    return MetricValue(float(dvh.doses_gy[hottest]), None, np.array([hottest]), np.ones(1))


@dataclass(frozen=True, eq=False)
class _Single:
    """One course on its own grid with its own structure set, for the conservative bound."""

    course: LoadedCourse
    evaluator: _Evaluator
    matches: dict[str, OrganMatch]
    interval_months: float | None  # None for the reference course
    is_reference: bool

    @property
    def on_grid(self) -> CourseOnGrid:
        return self.evaluator.acc.courses[0]


@dataclass(frozen=True)
class _Bounds:
    """Each course's bound on one constraint's metric (or why there is none)."""

    per_course: dict[str, float | None]
    recovery: dict[str, float]
    own: dict[str, CourseDose]  # each course's own values, for the flags
    structures: tuple[str, ...]
    reason: str | None


class ConservativeBound:
    """No registration: each course judged on its own grid and structure set, and per organ the
    courses' upper bounds of the summed dose added (:func:`conservative_value`)."""

    def evaluate(
        self,
        case: CaseSpec,
        cset: ConstraintSet,
        model: RecoveryModel,
        courses: Sequence[LoadedCourse],
        options: CheckOptions,
    ) -> Evaluation:
        singles = [_single(case, cset, model, course, courses[-1], options) for course in courses]
        judged = [_bounded_result(constraint, singles, model) for constraint in cset.constraints]
        results = tuple(result for result, _ in judged)
        # flags read undiscounted values, once per organ metric
        organs = tuple(organ for result, organ in judged if result.dose_basis == UNDISCOUNTED)
        summaries = tuple(
            course_summary(
                s.on_grid,
                "reference" if s.is_reference else CONSERVATIVE,
                s.interval_months,
                "none (reference course)" if s.is_reference else model.name,
            )
            for s in singles
        )
        return Evaluation(
            summaries,
            results,
            tuple(compute_flags(_bounded_flag_context(case, singles, organs))),
            _bounded_assumptions(cset, model, options, courses),
        )


def _single(
    case: CaseSpec,
    cset: ConstraintSet,
    model: RecoveryModel,
    course: LoadedCourse,
    reference: LoadedCourse,
    options: CheckOptions,
) -> _Single:
    """``course`` alone on its own grid with its own structure set matched to the constraint organs."""
    acc = map_courses([course], dataclasses.replace(case, courses=(course.spec,)))
    if acc.structures is None:
        raise InputError(
            course.spec.path,
            f"course '{course.name}' has no RTSTRUCT; conservative mode needs every course's own structure set",
        )
    is_reference = course is reference
    return _Single(
        course,
        _Evaluator(acc, model, options.lql_transition_gy),
        _match(acc.structures, cset, case, course.spec),
        None if is_reference else months_between(course.spec.end_date, reference.spec.start_date),
        is_reference,
    )


def _course_bounds(constraint: Constraint, metric: Metric, singles: Sequence[_Single], model: RecoveryModel) -> _Bounds:
    """Each course's bound on the constraint's metric on its own structure, stopping at the first
    course that has none (the reason names it)."""
    per_course: dict[str, float | None] = {s.course.name: None for s in singles}
    recovery: dict[str, float] = {}
    own: dict[str, CourseDose] = {}
    structures: list[str] = []
    if metric.kind not in BOUNDED:
        return _Bounds(per_course, recovery, own, (), f"{metric} has no conservative bound without registration")
    for s in singles:
        name = s.course.name
        found = s.evaluator.organ_samples(constraint, s.matches[constraint.organ])
        structures.append(found[0] or "?")
        if isinstance(found[1], str):
            return _Bounds(per_course, recovery, own, tuple(structures), f"course '{name}': {found[1]}")
        structure, samples = found
        value = conservative_value(samples[name], metric, len(singles))
        if value is None or value.value is None:
            reason = f"course '{name}': {samples if value is None else value.reason}"
            return _Bounds(per_course, recovery, own, tuple(structures), reason)
        recovery[name] = 0.0 if s.is_reference else recovery_factor(model, constraint.organ, s.interval_months).r
        per_course[name] = value.value
        own.update(s.evaluator.course_doses(structure, metric, constraint.alpha_beta_gy))
    return _Bounds(per_course, recovery, own, tuple(structures), None)


def _bounded_result(
    constraint: Constraint, singles: Sequence[_Single], model: RecoveryModel
) -> tuple[ConstraintResult, OrganResult]:
    """The verdict on the sum of the courses' bounds, and what the flags need to know of it."""
    metric = parse_metric(constraint.metric)
    bounds = _course_bounds(constraint, metric, singles, model)
    structure = " / ".join(dict.fromkeys(bounds.structures)) or None
    reference = singles[-1].course.name
    how = bounds.reason or judging(constraint, model.name, {n: r for n, r in bounds.recovery.items() if n != reference})
    if isinstance(how, str):
        result = _not_evaluated(constraint, structure, how, list(bounds.per_course))
    else:
        plain, discounted = _bound_sums(bounds)
        result = judged_result(
            constraint, structure, how, model, bounds.recovery, plain, discounted, (_bound_note(metric),)
        )
    organ = OrganResult(
        organ=result.organ,
        structure=result.structure,
        metric=result.metric,
        alpha_beta_gy=result.alpha_beta_gy,
        cumulative_gy=result.value_gy,
        status=result.status,
        per_course=bounds.own,
    )
    return result, organ


def _bound_sums(bounds: _Bounds) -> tuple[Sums, Sums | None]:
    """The plain sum of the courses' bounds, and the sum with prior courses times (1 - r) (None
    when nothing is discounted); each with its per-course shares."""
    values = {n: float(v) for n, v in bounds.per_course.items() if v is not None}
    kept: dict[str, float | None] = {n: v * (1.0 - bounds.recovery[n]) for n, v in values.items()}
    discounted = (
        (float(sum(v for v in kept.values() if v is not None)), kept) if any(bounds.recovery.values()) else None
    )
    return (float(sum(values.values())), bounds.per_course), discounted


def _bound_note(metric: Metric) -> str:
    if metric.kind is MetricKind.DMEAN:
        return "conservative, no registration: per-course Dmean added (exact only for identical structures)"
    return (
        f"conservative, no registration: sum of each course's own bound on its own structure set "
        f"(an upper bound of {metric} of the summed dose)"
    )


def _bounded_flag_context(case: CaseSpec, singles: Sequence[_Single], organs: tuple[OrganResult, ...]) -> FlagContext:
    """Facts for the flags without a common grid (no overlap volume: the flag says it is unknown)."""
    known = [s.interval_months for s in singles if s.interval_months is not None]
    return FlagContext(
        courses=tuple(course_info(s.on_grid) for s in singles),
        interval_months=min(known) if known else None,
        organs=organs,
        matches=tuple(singles[-1].matches.values()),
        clinical=case.clinical,
    )


def _bounded_assumptions(
    cset: ConstraintSet, model: RecoveryModel, options: CheckOptions, courses: Sequence[LoadedCourse]
) -> dict[str, object]:
    return {
        "method": "CONSERVATIVE per-course sum (no registration): each course's EQD2 metric on its own "
        "grid and structure set, added per organ; Dx from each course's dose at x/n (n courses), "
        "Dmax from each Dmax",
        **_shared_assumptions(cset, model, options, courses),
        "registration": "none: courses were not mapped onto one grid",
        "constraint_set": _set_text(cset),
    }


def batch_inputs(case_files: list[Path], options: CheckOptions) -> tuple[Path, ...]:
    """Every file a batch reads (:func:`check_inputs` of each case, each constraint set loaded
    once); a case file that cannot be read stands for itself alone (its check fails too)."""
    files: list[Path] = []
    set_files: dict[Path, tuple[Path, ...]] = {}
    for path in case_files:
        try:
            case = load_case(path)
            set_path = constraint_set_path(case, options)
            if set_path not in set_files:
                set_files[set_path] = _set_files(set_path)
            files += case_inputs(case) + set_files[set_path]
        except ReirradError:
            files.append(Path(path))
    return tuple(files)
