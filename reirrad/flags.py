"""Toxicity-mitigation and data-quality flags of a re-irradiation check.

Thresholds, texts and sources live in ``constraints/flags.toml``; this module holds one small
function per flag *kind*. :func:`compute_flags` takes a :class:`FlagContext` (what the checker
knows: courses, interval, organ results, structure matches, physical doses on the reference grid,
clinical facts) and returns the flags that fire, in rule order.

Organ doses: an :class:`OrganResult` carries the cumulative value the verdict judged and, per
course, a :class:`CourseDose` taken from the very samples the verdict summed (each phase converted
to EQD2 with its own fractions, before any recovery discount), so flags never recompute EQD2.

Fields each kind supplies to its message template:
interval: interval_months. organ_cumulative: organ, structure, metric, value_gy, alpha_beta_gy,
at_least_gy. course_eqd2: course, organ, structure, metric, value_gy. course_physical: course,
organ, structure, metric, value_gy, at_least_gy. course_share: course, organ, structure, share.
dose_per_fraction: course, organ, structure, metric, per_fraction_gy, above_gy. schedule: course,
per_fraction_gy. stereotactic_schedule: course, per_fraction_gy, organ_doses, at_least_gy.
outside_grid: organ, structure, course, outside. registration_uncertainty: count, uncertainty,
changes (the constraints whose verdict worsens to one of worst_statuses). fraction_override: course, fractions,
plan_fractions (text: "the plan says 5" or "no plan gives a count"). automatic_registration:
course, registration. deformable_registration: course, registration. deformation_volume_change:
course, minimum, maximum (the Jacobian determinant over the evaluated structures), below, above.
missing_structure: count, organs. reirradiation_type: text (from type1 / type2 / repeat / unknown
with overlap_cc, prior, new, prior_min_gy, new_min_gy, organs, organ_min_gy). miri_class: text
(from class_text with miri_class, definition; or not_applicable with reason). carotid_invasion:
invasion_deg, above_deg.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reirrad.case import ClinicalSpec
from reirrad.data import builtin_file
from reirrad.metrics import parse_metric
from reirrad.organs import OrganMatch, load_organ_catalog
from reirrad.tomlfile import Problems, citation_text, plain, read_toml, shown

FLAGS_FILE = builtin_file("flags.toml")

Severity = Literal["high", "caution", "info"]
SEVERITIES: tuple[Severity, ...] = ("high", "caution", "info")


@dataclass(frozen=True)
class Flag:
    """One raised flag: what, how serious, what to do, and on what evidence."""

    id: str
    severity: Severity
    message: str
    mitigation: str
    source: str


@dataclass(frozen=True)
class CourseInfo:
    """What the checker knows about one course (Gy, dates)."""

    name: str
    fractions: float
    fraction_source: Literal["plan", "override"] = "plan"
    plan_fractions: int | None = None  # what the plan(s) say when the fractions are an override
    prescription_gy: float | None = None  # all phases together
    max_dose_per_fraction_gy: float | None = None  # highest physical voxel dose / fractions
    prescribed_per_fraction_gy: float | None = None  # highest phase prescription / its fractions
    start_date: date | None = None
    end_date: date | None = None
    schedule: Literal["daily", "alternate_day", "bid"] | None = None
    registration: str = ""  # how the course reached the reference frame ("identity", "REG ...", automatic)

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """The highest prescribed dose per fraction of a phase, else the course's prescription per
        fraction, else the maximum physical dose per fraction, else None."""
        if self.prescribed_per_fraction_gy is not None:
            return self.prescribed_per_fraction_gy
        if self.prescription_gy is not None:
            return self.prescription_gy / self.fractions
        return self.max_dose_per_fraction_gy

    def is_stereotactic(self, min_gy_per_fraction: float) -> bool:
        """True when the dose per fraction reaches the stereotactic convention (unknown: False)."""
        per_fraction = self.dose_per_fraction_gy
        return per_fraction is not None and per_fraction >= min_gy_per_fraction


@dataclass(frozen=True)
class CourseDose:
    """One course's own value of an organ's dose metric: that course alone, no recovery discount.

    ``eqd2_gy`` is the metric of the course's EQD2 at the result's alpha/beta, every phase converted
    with its own fractions and then added: the samples the verdict sums. ``physical_gy`` is the
    metric of the course's physical dose (phases added). ``per_fraction_gy`` is the highest, over the
    course's phases, of the metric of the phase's physical dose divided by its fractions. All Gy;
    None where unknown (a volume metric, or no samples).
    """

    eqd2_gy: float | None = None
    physical_gy: float | None = None
    per_fraction_gy: float | None = None


@dataclass(frozen=True)
class OrganResult:
    """One evaluated organ metric: cumulative EQD2 (as judged) and each course's own dose.

    ``per_course`` maps course names to :class:`CourseDose`; ``coverage`` the volume fraction of the
    structure inside each course's dose grid.
    """

    organ: str
    structure: str | None
    metric: str
    alpha_beta_gy: float
    cumulative_gy: float | None
    status: str
    per_course: Mapping[str, CourseDose] = field(default_factory=dict)
    coverage: Mapping[str, float] = field(default_factory=dict)

    def course(self, name: str) -> CourseDose:
        """The course's own dose (all None when the course has none recorded)."""
        return self.per_course.get(name, CourseDose())


@dataclass(frozen=True)
class StatusChange:
    """A constraint whose verdict differs between the registered position and the worst case within
    the registration uncertainty (see :mod:`reirrad.robust`); ``text`` says both values and where."""

    constraint_id: str
    nominal_status: str
    worst_status: str
    text: str


@dataclass(frozen=True, eq=False)
class FlagContext:
    """Everything the flags look at. ``courses`` in time order; the last one is the new course."""

    courses: tuple[CourseInfo, ...]
    interval_months: float | None = None  # end of the latest prior course to start of the new one
    organs: tuple[OrganResult, ...] = ()
    matches: tuple[OrganMatch, ...] = ()
    # per course, physical dose (Gy) at the evaluation-grid voxels where the new course reaches the lowest
    # new_min_gy of the reirradiation_type rules, one order for all courses (reirrad.check.overlap_doses_gy)
    physical_dose_gy: Mapping[str, np.ndarray] | None = None
    voxel_volume_cc: float | None = None
    clinical: ClinicalSpec = ClinicalSpec()
    registration_uncertainty: str | None = None  # "3 mm" when the worst case was searched (reirrad.robust)
    status_changes: tuple[StatusChange, ...] = ()  # verdicts that change within that uncertainty
    # per course mapped by a deformation field: its Jacobian determinant (minimum, maximum) over the
    # evaluated structures (reirrad.dicom.deformable)
    deformation_jacobians: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Conventions:
    """The tool conventions of ``flags.toml`` (``[conventions]``) that several kinds share."""

    stereotactic_min_gy: float  # a course is stereotactic from this dose per fraction (Gy)
    meaningful_course_dose_gy: float  # EQD2 (Gy) from each course that makes an organ a concern


@dataclass(frozen=True)
class FlagRule:
    """One rule of ``flags.toml``: kind, severity, texts, cited sources and the kind's parameters."""

    id: str
    kind: str
    severity: Severity
    message: str
    mitigation: str
    source: str
    params: Mapping[str, Any]
    conventions: Conventions

    def flag(self, **fields: Any) -> Flag:
        """The flag with the message and mitigation templates filled in from ``fields``."""
        message, mitigation = self.message.format(**fields), self.mitigation.format(**fields)
        return Flag(self.id, self.severity, message, mitigation, self.source)


@dataclass(frozen=True)
class FlagRules:
    """All rules, and the tool conventions they share."""

    rules: tuple[FlagRule, ...]
    conventions: Conventions
    path: Path


# ------------------------------------------------------------------------------ helpers


def _results(rule: FlagRule, ctx: FlagContext) -> Iterator[OrganResult]:
    """Organ results on the rule's organs and metrics (and alpha/beta, when the rule names one)."""
    catalog = load_organ_catalog()
    organs = {m for o in rule.params["organs"] for m in catalog.members(o)}
    metrics = {str(parse_metric(m)) for m in rule.params.get("metrics", ())}
    wanted_ab = rule.params.get("alpha_beta_gy")
    for r in ctx.organs:
        chosen = r.organ in organs and (not metrics or r.metric in metrics)
        if chosen and (wanted_ab is None or math.isclose(r.alpha_beta_gy, wanted_ab)):
            yield r


def _reirradiation_courses(ctx: FlagContext) -> tuple[CourseInfo, ...]:
    return ctx.courses[1:]


def _where(r: OrganResult) -> dict[str, Any]:
    return {"organ": r.organ, "structure": r.structure, "metric": r.metric}


def _per_fraction(course: CourseInfo) -> float:
    """The course's dose per fraction for a message (NaN when unknown)."""
    per_fraction = course.dose_per_fraction_gy
    return math.nan if per_fraction is None else per_fraction


# ------------------------------------------------------------------------------ kinds


def _interval(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    months = ctx.interval_months
    if months is None or not rule.params["from_months"] <= months < rule.params["below_months"]:
        return []
    return [rule.flag(interval_months=months)]


def _interval_unknown(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    return [rule.flag()] if ctx.interval_months is None and len(ctx.courses) > 1 else []


def _organ_cumulative(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    at_least = rule.params["at_least_gy"]
    return [
        rule.flag(**_where(r), value_gy=r.cumulative_gy, alpha_beta_gy=r.alpha_beta_gy, at_least_gy=at_least)
        for r in _results(rule, ctx)
        if r.cumulative_gy is not None and r.cumulative_gy >= at_least
    ]


def _courses_for(rule: FlagRule, ctx: FlagContext) -> list[CourseInfo]:
    if rule.params["stereotactic_only"]:
        return [c for c in _reirradiation_courses(ctx) if c.is_stereotactic(rule.conventions.stereotactic_min_gy)]
    return list(ctx.courses)


def _course_eqd2_kind(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    flags = []
    for r in _results(rule, ctx):
        for course in _courses_for(rule, ctx):
            value = r.course(course.name).eqd2_gy
            if value is not None and value > rule.params["above_gy"]:
                flags.append(rule.flag(**_where(r), course=course.name, value_gy=value))
    return flags


def _course_physical(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    at_least = rule.params["at_least_gy"]
    flags = []
    for r in _results(rule, ctx):
        for course in _courses_for(rule, ctx):
            value = r.course(course.name).physical_gy
            if value is not None and value >= at_least:
                flags.append(rule.flag(**_where(r), course=course.name, value_gy=value, at_least_gy=at_least))
    return flags


def _course_share(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    flags = []
    for r in _results(rule, ctx):
        if not r.cumulative_gy:
            continue
        for course in _courses_for(rule, ctx):
            value = r.course(course.name).eqd2_gy
            if value is not None and value / r.cumulative_gy > rule.params["above_share"]:
                flags.append(rule.flag(**_where(r), course=course.name, share=value / r.cumulative_gy))
    return flags


def _dose_per_fraction(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    """One flag per organ and re-irradiation course: its highest dose per fraction over the metrics."""
    above = rule.params["above_gy"]
    hottest: dict[tuple[str, str], tuple[float, OrganResult]] = {}
    for r in _results(rule, ctx):
        for course in _reirradiation_courses(ctx):
            value = r.course(course.name).per_fraction_gy
            key = (r.organ, course.name)
            if value is not None and value > above and value > hottest.get(key, (-math.inf,))[0]:
                hottest[key] = (value, r)
    return [
        rule.flag(**_where(r), course=course, per_fraction_gy=value, above_gy=above)
        for (_, course), (value, r) in hottest.items()
    ]


def _schedule(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    flags = []
    for course in _reirradiation_courses(ctx):
        if (course.schedule or "unknown") != rule.params["schedule"]:
            continue
        if rule.params["stereotactic"] and not course.is_stereotactic(rule.conventions.stereotactic_min_gy):
            continue
        flags.append(rule.flag(course=course.name, per_fraction_gy=_per_fraction(course)))
    return flags


def _stereotactic_schedule(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    """A stereotactic course on the rule's schedule whose organs (the carotids) get at least
    ``at_least_gy`` physical in that course, or whose dose there is not known for every result."""
    at_least = rule.params["at_least_gy"]
    flags = []
    for course in _reirradiation_courses(ctx):
        if (course.schedule or "unknown") != rule.params["schedule"]:
            continue
        if not course.is_stereotactic(rule.conventions.stereotactic_min_gy):
            continue
        doses = [(r, r.course(course.name).physical_gy) for r in _results(rule, ctx)]
        hot = [
            f"{r.organ} ({r.structure}) {r.metric} {gy:.1f} Gy" for r, gy in doses if gy is not None and gy >= at_least
        ]
        unknown = [r.organ for r, gy in doses if gy is None]
        if not hot and doses and not unknown:
            continue
        parts = hot + ([f"not known for {', '.join(dict.fromkeys(unknown))}"] if unknown else [])
        text = "; ".join(parts) or f"not known (no {', '.join(rule.params['organs'])} result)"
        flags.append(
            rule.flag(course=course.name, per_fraction_gy=_per_fraction(course), organ_doses=text, at_least_gy=at_least)
        )
    return flags


def _outside_grid(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    seen: dict[tuple[str | None, str], Flag] = {}
    for r in ctx.organs:
        for course, covered in r.coverage.items():
            if covered < rule.params["min_coverage"] and (r.structure, course) not in seen:
                outside = 1.0 - covered
                seen[(r.structure, course)] = rule.flag(**_where(r), course=course, outside=outside)
    return list(seen.values())


def _fraction_override(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    return [
        rule.flag(
            course=c.name,
            fractions=c.fractions,
            plan_fractions="no plan gives a count" if c.plan_fractions is None else f"the plan says {c.plan_fractions}",
        )
        for c in ctx.courses
        if c.fraction_source == "override"
    ]


def _automatic_registration(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    return [
        rule.flag(course=c.name, registration=c.registration)
        for c in ctx.courses
        if c.registration.startswith("automatic rigid registration")
    ]


def _deformable_registration(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    return [
        rule.flag(course=c.name, registration=c.registration)
        for c in ctx.courses
        if c.registration.startswith("deformable registration")
    ]


def _deformation_volume_change(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    below, above = float(rule.params["below"]), float(rule.params["above"])
    return [
        rule.flag(course=course, minimum=low, maximum=high, below=below, above=above)
        for course, (low, high) in ctx.deformation_jacobians.items()
        if low < below or high > above
    ]


def _missing_structure(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    missing = [m for m in ctx.matches if m.status != "matched"]
    if not missing:
        return []
    organs = "; ".join(f"{m.organ} ({m.status}: {m.reason})" for m in missing)
    return [rule.flag(count=len(missing), organs=organs)]


def _overlap_cc(
    ctx: FlagContext, doses: Mapping[str, np.ndarray], voxel_volume_cc: float, prior_min_gy: float, new_min_gy: float
) -> tuple[float, str]:
    """Largest volume (cm3) at >= prior_min_gy in a prior course and >= new_min_gy in the new one
    (``doses``: each course's physical dose at the same voxels, only those where the new course reaches
    the rules' lowest new_min_gy: see :attr:`FlagContext.physical_dose_gy`; no other voxel can count)."""
    new_name = ctx.courses[-1].name
    new_hot = doses[new_name] >= new_min_gy
    best = (0.0, ctx.courses[0].name)
    for course in ctx.courses[:-1]:
        volume = float(np.count_nonzero(new_hot & (doses[course.name] >= prior_min_gy))) * voxel_volume_cc
        best = max(best, (volume, course.name))
    return best


def _both_courses(r: OrganResult, ctx: FlagContext, min_gy: float) -> str | None:
    """How a prior course and the new course each gave the organ at least ``min_gy`` EQD2 (its own
    metric and alpha/beta, no recovery), or None."""
    new = ctx.courses[-1].name
    new_gy = r.course(new).eqd2_gy
    priors = [(r.course(c.name).eqd2_gy, c.name) for c in ctx.courses[:-1]]
    prior_gy, prior = max(((gy, name) for gy, name in priors if gy is not None), default=(None, ""))
    if new_gy is None or prior_gy is None or min(prior_gy, new_gy) < min_gy:
        return None
    return f"{r.metric} EQD2({r.alpha_beta_gy:g}) {prior_gy:.1f} Gy in '{prior}' and {new_gy:.1f} Gy in '{new}'"


def _concern_organs(ctx: FlagContext, min_gy: float) -> list[str]:
    """Organs at risk with a cumulative-dose concern, once each, saying why: meaningful dose from
    both courses (:func:`_both_courses`) or a cumulative warn / fail. Report-only entries count."""
    dosed: dict[str, str] = {}
    judged: dict[str, list[str]] = {}
    for r in ctx.organs:
        both = _both_courses(r, ctx, min_gy)
        if both is not None:
            dosed.setdefault(r.organ, both)
        if r.status in ("warn", "fail"):
            judged.setdefault(r.organ, []).append(f"cumulative {r.metric} {r.status}")
    organs = dict.fromkeys(r.organ for r in ctx.organs if r.organ in dosed or r.organ in judged)
    return [f"{o} ({'; '.join(([dosed[o]] if o in dosed else []) + judged.get(o, []))})" for o in organs]


def _reirradiation_type(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    if len(ctx.courses) < 2:
        return []
    p = rule.params
    concern = _concern_organs(ctx, rule.conventions.meaningful_course_dose_gy)
    fields: dict[str, Any] = {
        "prior_min_gy": p["prior_min_gy"],
        "new_min_gy": p["new_min_gy"],
        "new": ctx.courses[-1].name,
        "organs": ", ".join(concern) or "none",
        "organ_min_gy": rule.conventions.meaningful_course_dose_gy,
    }
    if ctx.physical_dose_gy is None or ctx.voxel_volume_cc is None:
        return [rule.flag(text=p["unknown"].format(**fields))]
    fields["overlap_cc"], fields["prior"] = _overlap_cc(
        ctx, ctx.physical_dose_gy, ctx.voxel_volume_cc, p["prior_min_gy"], p["new_min_gy"]
    )
    if fields["overlap_cc"] > p["min_overlap_cc"]:
        template = p["type1"]
    else:
        template = p["type2"] if concern else p["repeat"]
    return [rule.flag(text=template.format(**fields))]


def _miri_not_applicable(rule: FlagRule, ctx: FlagContext) -> list[str]:
    """Why the MIRI classes (squamous cell carcinoma, prior RT and re-IMRT >= 40 Gy) do not apply."""
    p = rule.params
    histology = ctx.clinical.histology
    reasons = []
    if histology is None:
        reasons.append("histology not given ([clinical] histology in the case file)")
    elif histology != p["histology"]:
        reasons.append(f"histology is {histology!r}, not {p['histology']!r}")
    new = ctx.courses[-1]
    if new.is_stereotactic(rule.conventions.stereotactic_min_gy):
        reasons.append(f"course '{new.name}' is stereotactic, not IMRT")
    if new.prescription_gy is None:
        reasons.append(f"prescription of course '{new.name}' not known")
    elif new.prescription_gy < p["min_course_gy"]:
        reasons.append(f"course '{new.name}' prescribes {new.prescription_gy:g} Gy < {p['min_course_gy']:g} Gy")
    prior = [c.prescription_gy for c in ctx.courses[:-1] if c.prescription_gy is not None]
    if not prior:
        reasons.append("prior prescription not known")
    elif max(prior) < p["min_course_gy"]:
        reasons.append(f"prior prescription {max(prior):g} Gy < {p['min_course_gy']:g} Gy")
    return reasons


def _miri_fact(ctx: FlagContext, split_months: float) -> tuple[str, bool | None, str, str]:
    """The clinical fact the MIRI split needs at this interval: (name, value, class if yes, if no)."""
    if ctx.interval_months is not None and ctx.interval_months > split_months:
        return "resection", ctx.clinical.resection, "I", "II"
    return "organ_dysfunction", ctx.clinical.organ_dysfunction, "III", "II"


def _miri_class(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    if len(ctx.courses) < 2:
        return []
    p = rule.params
    reasons = _miri_not_applicable(rule, ctx)
    fact, known, yes, no = _miri_fact(ctx, p["split_months"])
    if ctx.interval_months is None:
        reasons.append("interval not known")
    elif known is None:
        reasons.append(f"[clinical] {fact} not given")
    if reasons:
        return [rule.flag(text=p["not_applicable"].format(reason="; ".join(reasons)))]
    miri = yes if known else no
    return [rule.flag(text=p["class_text"].format(miri_class=miri, definition=p[f"class_{miri}"]))]


def _carotid_invasion(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    degrees = ctx.clinical.carotid_invasion_deg
    if len(ctx.courses) < 2 or degrees is None or degrees <= rule.params["above_deg"]:
        return []
    return [rule.flag(invasion_deg=degrees, above_deg=rule.params["above_deg"])]


def _registration_uncertainty(rule: FlagRule, ctx: FlagContext) -> list[Flag]:
    changes = [c for c in ctx.status_changes if c.worst_status in rule.params["worst_statuses"]]
    if not changes:
        return []
    return [
        rule.flag(
            count=len(changes), uncertainty=ctx.registration_uncertainty, changes="; ".join(c.text for c in changes)
        )
    ]


Kind = Callable[[FlagRule, FlagContext], list[Flag]]

KINDS: dict[str, tuple[Kind, tuple[str, ...]]] = {
    "interval": (_interval, ("from_months", "below_months")),
    "interval_unknown": (_interval_unknown, ()),
    "organ_cumulative": (_organ_cumulative, ("organs", "metrics", "at_least_gy")),
    "course_eqd2": (_course_eqd2_kind, ("organs", "metrics", "alpha_beta_gy", "above_gy", "stereotactic_only")),
    "course_physical": (_course_physical, ("organs", "metrics", "at_least_gy", "stereotactic_only")),
    "course_share": (_course_share, ("organs", "metrics", "alpha_beta_gy", "above_share", "stereotactic_only")),
    "dose_per_fraction": (_dose_per_fraction, ("organs", "metrics", "above_gy")),
    "schedule": (_schedule, ("schedule", "stereotactic")),
    "stereotactic_schedule": (_stereotactic_schedule, ("schedule", "organs", "metrics", "at_least_gy")),
    "outside_grid": (_outside_grid, ("min_coverage",)),
    "fraction_override": (_fraction_override, ()),
    "automatic_registration": (_automatic_registration, ()),
    "deformable_registration": (_deformable_registration, ()),
    "deformation_volume_change": (_deformation_volume_change, ("below", "above")),
    "missing_structure": (_missing_structure, ()),
    "reirradiation_type": (
        _reirradiation_type,
        ("prior_min_gy", "new_min_gy", "min_overlap_cc", "type1", "type2", "repeat", "unknown"),
    ),
    "miri_class": (
        _miri_class,
        (
            "split_months",
            "histology",
            "min_course_gy",
            "class_text",
            "not_applicable",
            "class_I",
            "class_II",
            "class_III",
        ),
    ),
    "carotid_invasion": (_carotid_invasion, ("above_deg",)),
    "registration_uncertainty": (_registration_uncertainty, ("worst_statuses",)),
}

_RULE_KEYS = {"id", "kind", "severity", "message", "mitigation", "source"}


# ------------------------------------------------------------------------------ loading


_CONVENTIONS = {
    "stereotactic_min_gy_per_fraction": "stereotactic_min_gy",
    "meaningful_course_dose_eqd2_gy": "meaningful_course_dose_gy",
}


def _citations(data: Mapping, problems: Problems) -> dict[str, str]:
    sources = {}
    for sid, entry in data.get("sources", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("citation"), str):
            problems.add(f"sources.{plain(sid)}", "citation", "missing: give the full citation text")
            continue
        sources[sid] = citation_text(entry)
    return sources


def _conventions(data: Mapping, problems: Problems) -> Conventions | None:
    table = data.get("conventions", {})
    values = {name: table.get(key) for key, name in _CONVENTIONS.items()}
    for key, name in _CONVENTIONS.items():
        if isinstance(values[name], bool) or not isinstance(values[name], (int, float)) or not values[name] > 0:
            problems.add("conventions", key, f"missing or not a positive number, got {shown(values[name])}")
    return None if len(problems) else Conventions(**{name: float(v) for name, v in values.items()})


def _parse_rule(
    entry: Any, index: int, sources: Mapping[str, str], conventions: Conventions | None, problems: Problems
) -> FlagRule | None:
    """One rule, or None when it cannot be built (its problems recorded; ``conventions`` None: the
    file's conventions are unusable, a problem already recorded)."""
    if not isinstance(entry, dict):
        problems.add(f"flags[{index}]", None, f"must be a table ([[flags]]), got {shown(entry)}")
        return None
    where = f"flags[{index}] (id={plain(str(entry.get('id')))})"
    before = len(problems)
    missing = [k for k in _RULE_KEYS if k not in entry]
    if missing:
        problems.add(where, None, f"missing field(s) {', '.join(sorted(missing))}")
    if "kind" in entry and entry["kind"] not in KINDS:
        problems.add(where, "kind", f"unknown kind {shown(entry['kind'])} (known: {', '.join(KINDS)})")
    if "severity" in entry and entry["severity"] not in SEVERITIES:
        problems.add(where, "severity", f"not one of {', '.join(SEVERITIES)}")
    unknown = [str(s) for s in entry.get("source", ()) if s not in sources]
    if unknown:
        problems.add(where, "source", f"unknown source id(s) {', '.join(unknown)}")
    params = {k: v for k, v in entry.items() if k not in _RULE_KEYS}
    needed = KINDS[entry["kind"]][1] if entry.get("kind") in KINDS else ()
    absent = [k for k in needed if k not in params]
    if absent:
        problems.add(where, None, f"kind {entry['kind']!r} needs field(s) {', '.join(absent)}")
    if len(problems) > before or conventions is None:
        return None
    return FlagRule(
        id=entry["id"],
        kind=entry["kind"],
        severity=entry["severity"],
        message=entry["message"],
        mitigation=entry["mitigation"],
        source="; ".join(sources[s] for s in entry["source"]),
        params=params,
        conventions=conventions,
    )


@lru_cache(maxsize=4)
def load_flag_rules(path: Path = FLAGS_FILE) -> FlagRules:
    """Read and check ``constraints/flags.toml`` (or a file of the same shape); one InputError listing
    every problem when it is not usable."""
    path = Path(path)
    data = read_toml(path, "flag rules")
    problems = Problems(path)
    conventions = _conventions(data, problems)
    sources = _citations(data, problems)
    rules = tuple(
        rule
        for i, entry in enumerate(data.get("flags", []))
        if (rule := _parse_rule(entry, i, sources, conventions, problems)) is not None
    )
    ids = [r.id for r in rules]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        problems.add("flags", "id", f"duplicate flag id {shown(duplicate)}")
    problems.raise_if_any("flag rules")
    assert conventions is not None  # absent or invalid conventions are recorded problems
    return FlagRules(rules, conventions, path)


def compute_flags(ctx: FlagContext, rules: FlagRules | None = None) -> list[Flag]:
    """Every flag that fires for this context, in the order of the rules."""
    rules = rules or load_flag_rules()
    return [flag for rule in rules.rules for flag in KINDS[rule.kind][0](rule, ctx)]
