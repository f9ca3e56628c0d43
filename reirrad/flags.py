"""Toxicity-mitigation and data-quality flags of a re-irradiation check.

Thresholds, texts and sources live in ``constraints/flags.toml``; this module holds one small
function per flag *kind*. :func:`compute_flags` takes a :class:`FlagContext` (what the checker
knows: courses, interval, organ results, structure matches, physical doses on the reference grid,
clinical facts) and returns the flags that fire, in rule order.

Fields each kind supplies to its message template:
interval: interval_months. organ_cumulative: organ, structure, metric, value_gy, alpha_beta_gy,
at_least_gy. course_eqd2: course, organ, structure, metric, value_gy. course_share: course, organ,
structure, share. dose_per_fraction: course, organ, structure, metric, dose_gy, fractions,
per_fraction_gy, above_gy. schedule: course, per_fraction_gy. outside_grid: organ, structure,
course, outside. fraction_override: course, fractions. missing_structure: count, organs.
reirradiation_type: text (from type1 / type2 / repeat / unknown with overlap_cc, prior, new,
prior_min_gy, new_min_gy, concern). miri_class: miri_class, text.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reirrad.data import builtin_file
from reirrad.eqd2 import eqd2_gy
from reirrad.errors import InputError
from reirrad.metrics import parse_metric
from reirrad.organs import OrganMatch, load_organ_catalog

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
    prescription_gy: float | None = None
    max_dose_per_fraction_gy: float | None = None  # highest physical voxel dose / fractions
    start_date: date | None = None
    end_date: date | None = None
    schedule: Literal["daily", "alternate_day", "bid"] | None = None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """Prescribed dose per fraction, else the maximum physical dose per fraction, else None."""
        if self.prescription_gy is not None:
            return self.prescription_gy / self.fractions
        return self.max_dose_per_fraction_gy

    def is_stereotactic(self, min_gy_per_fraction: float) -> bool:
        """True when the dose per fraction reaches the stereotactic convention (unknown: False)."""
        per_fraction = self.dose_per_fraction_gy
        return per_fraction is not None and per_fraction >= min_gy_per_fraction


@dataclass(frozen=True)
class OrganResult:
    """One evaluated organ metric: cumulative EQD2 (as judged) and each course's physical value.

    ``per_course_physical_gy`` is the metric on each course's physical dose alone (Gy; None where
    not available); ``coverage`` the volume fraction of the structure inside each course's dose grid.
    """

    organ: str
    structure: str | None
    metric: str
    alpha_beta_gy: float
    cumulative_gy: float | None
    status: str
    per_course_physical_gy: Mapping[str, float | None] = field(default_factory=dict)
    coverage: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class FlagContext:
    """Everything the flags look at. ``courses`` in time order; the last one is the new course."""

    courses: tuple[CourseInfo, ...]
    interval_months: float | None = None  # end of the latest prior course to start of the new one
    organs: tuple[OrganResult, ...] = ()
    matches: tuple[OrganMatch, ...] = ()
    physical_dose_gy: Mapping[str, np.ndarray] | None = None  # per course, on the reference grid
    voxel_volume_cc: float | None = None
    resection: bool | None = None  # salvage resection before re-irradiation
    organ_dysfunction: bool | None = None  # feeding-tube or tracheostomy dependence


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

    def flag(self, **fields: Any) -> Flag:
        """The flag with the message and mitigation templates filled in from ``fields``."""
        message, mitigation = self.message.format(**fields), self.mitigation.format(**fields)
        return Flag(self.id, self.severity, message, mitigation, self.source)


@dataclass(frozen=True)
class FlagRules:
    """All rules, and the tool conventions they share."""

    rules: tuple[FlagRule, ...]
    conventions: Mapping[str, Any]
    path: Path

    @property
    def stereotactic_min_gy(self) -> float:
        return float(self.conventions["stereotactic_min_gy_per_fraction"])


# ------------------------------------------------------------------------------ helpers


def _results(rule: FlagRule, ctx: FlagContext) -> Iterator[OrganResult]:
    """Organ results on the rule's organs and metrics (and alpha/beta, when the rule names one)."""
    catalog = load_organ_catalog()
    organs = {m for o in rule.params["organs"] for m in catalog.members(o)}
    metrics = {str(parse_metric(m)) for m in rule.params.get("metrics", ())}
    wanted_ab = rule.params.get("alpha_beta_gy")
    for r in ctx.organs:
        if r.organ in organs and (not metrics or r.metric in metrics):
            if wanted_ab is None or math.isclose(r.alpha_beta_gy, wanted_ab):
                yield r


def _reirradiation_courses(ctx: FlagContext) -> tuple[CourseInfo, ...]:
    return ctx.courses[1:]


def _course_eqd2(r: OrganResult, course: CourseInfo) -> float | None:
    """The course's own EQD2 of a max-type metric, from its physical value (no recovery)."""
    dose = r.per_course_physical_gy.get(course.name)
    return None if dose is None else float(eqd2_gy(dose, course.fractions, r.alpha_beta_gy))


def _where(r: OrganResult) -> dict[str, Any]:
    return {"organ": r.organ, "structure": r.structure, "metric": r.metric}


# ------------------------------------------------------------------------------ kinds


def _interval(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    months = ctx.interval_months
    if months is None or not rule.params["from_months"] <= months < rule.params["below_months"]:
        return []
    return [rule.flag(interval_months=months)]


def _interval_unknown(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    return [rule.flag()] if ctx.interval_months is None and len(ctx.courses) > 1 else []


def _organ_cumulative(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    at_least = rule.params["at_least_gy"]
    return [
        rule.flag(**_where(r), value_gy=r.cumulative_gy, alpha_beta_gy=r.alpha_beta_gy, at_least_gy=at_least)
        for r in _results(rule, ctx)
        if r.cumulative_gy is not None and r.cumulative_gy >= at_least
    ]


def _courses_for(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[CourseInfo]:
    if rule.params["stereotactic_only"]:
        return [c for c in _reirradiation_courses(ctx) if c.is_stereotactic(rules.stereotactic_min_gy)]
    return list(ctx.courses)


def _course_eqd2_kind(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    flags = []
    for r in _results(rule, ctx):
        for course in _courses_for(rule, ctx, rules):
            value = _course_eqd2(r, course)
            if value is not None and value > rule.params["above_gy"]:
                flags.append(rule.flag(**_where(r), course=course.name, value_gy=value))
    return flags


def _course_share(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    flags = []
    for r in _results(rule, ctx):
        if not r.cumulative_gy:
            continue
        for course in _courses_for(rule, ctx, rules):
            value = _course_eqd2(r, course)
            if value is not None and value / r.cumulative_gy > rule.params["above_share"]:
                flags.append(rule.flag(**_where(r), course=course.name, share=value / r.cumulative_gy))
    return flags


def _dose_per_fraction(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    flags = []
    for r in _results(rule, ctx):
        for course in _reirradiation_courses(ctx):
            dose = r.per_course_physical_gy.get(course.name)
            if dose is not None and dose / course.fractions > rule.params["above_gy"]:
                flags.append(rule.flag(
                    **_where(r), course=course.name, dose_gy=dose, fractions=course.fractions,
                    per_fraction_gy=dose / course.fractions, above_gy=rule.params["above_gy"],
                ))
    return flags


def _schedule(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    flags = []
    for course in _reirradiation_courses(ctx):
        if (course.schedule or "unknown") != rule.params["schedule"]:
            continue
        if rule.params["stereotactic"] and not course.is_stereotactic(rules.stereotactic_min_gy):
            continue
        per_fraction = course.dose_per_fraction_gy
        flags.append(rule.flag(course=course.name, per_fraction_gy=math.nan if per_fraction is None else per_fraction))
    return flags


def _outside_grid(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    seen: dict[tuple[str | None, str], Flag] = {}
    for r in ctx.organs:
        for course, covered in r.coverage.items():
            if covered < rule.params["min_coverage"] and (r.structure, course) not in seen:
                outside = 1.0 - covered
                seen[(r.structure, course)] = rule.flag(**_where(r), course=course, outside=outside)
    return list(seen.values())


def _fraction_override(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    return [rule.flag(course=c.name, fractions=c.fractions) for c in ctx.courses if c.fraction_source == "override"]


def _missing_structure(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    missing = [m for m in ctx.matches if m.status != "matched"]
    if not missing:
        return []
    organs = "; ".join(f"{m.organ} ({m.status}: {m.reason})" for m in missing)
    return [rule.flag(count=len(missing), organs=organs)]


def _overlap_cc(ctx: FlagContext, prior_min_gy: float, new_min_gy: float) -> tuple[float, str]:
    """Largest volume (cm3) at >= prior_min_gy in a prior course and >= new_min_gy in the new one."""
    doses = ctx.physical_dose_gy
    new_name = ctx.courses[-1].name
    new_hot = doses[new_name] >= new_min_gy
    best = (0.0, ctx.courses[0].name)
    for course in ctx.courses[:-1]:
        volume = float(np.count_nonzero(new_hot & (doses[course.name] >= prior_min_gy))) * ctx.voxel_volume_cc
        best = max(best, (volume, course.name))
    return best


def _reirradiation_type(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    if len(ctx.courses) < 2:
        return []
    p = rule.params
    fields: dict[str, Any] = {
        "prior_min_gy": p["prior_min_gy"], "new_min_gy": p["new_min_gy"], "new": ctx.courses[-1].name,
    }
    if ctx.physical_dose_gy is None or ctx.voxel_volume_cc is None:
        return [rule.flag(text=p["unknown"].format(**fields))]
    fields["overlap_cc"], fields["prior"] = _overlap_cc(ctx, p["prior_min_gy"], p["new_min_gy"])
    concern = [f"{r.organ} {r.metric} {r.status}" for r in ctx.organs if r.status in ("warn", "fail")]
    fields["concern"] = ", ".join(concern)
    if fields["overlap_cc"] > p["min_overlap_cc"]:
        template = p["type1"]
    else:
        template = p["type2"] if concern else p["repeat"]
    return [rule.flag(text=template.format(**fields))]


def _miri_class(rule: FlagRule, ctx: FlagContext, rules: FlagRules) -> list[Flag]:
    months = ctx.interval_months
    if months is None:
        return []
    if months > rule.params["split_months"]:
        known, yes, no = ctx.resection, "I", "II"
    else:
        known, yes, no = ctx.organ_dysfunction, "III", "II"
    if known is None:
        return []
    miri = yes if known else no
    return [rule.flag(miri_class=miri, text=rule.params[f"class_{miri}"])]


Kind = Callable[[FlagRule, FlagContext, FlagRules], list[Flag]]

KINDS: dict[str, tuple[Kind, tuple[str, ...]]] = {
    "interval": (_interval, ("from_months", "below_months")),
    "interval_unknown": (_interval_unknown, ()),
    "organ_cumulative": (_organ_cumulative, ("organs", "metrics", "at_least_gy")),
    "course_eqd2": (_course_eqd2_kind, ("organs", "metrics", "alpha_beta_gy", "above_gy", "stereotactic_only")),
    "course_share": (_course_share, ("organs", "metrics", "alpha_beta_gy", "above_share", "stereotactic_only")),
    "dose_per_fraction": (_dose_per_fraction, ("organs", "metrics", "above_gy")),
    "schedule": (_schedule, ("schedule", "stereotactic")),
    "outside_grid": (_outside_grid, ("min_coverage",)),
    "fraction_override": (_fraction_override, ()),
    "missing_structure": (_missing_structure, ()),
    "reirradiation_type": (
        _reirradiation_type, ("prior_min_gy", "new_min_gy", "min_overlap_cc", "type1", "type2", "repeat", "unknown"),
    ),
    "miri_class": (_miri_class, ("split_months", "class_I", "class_II", "class_III")),
}

_RULE_KEYS = {"id", "kind", "severity", "message", "mitigation", "source"}


# ------------------------------------------------------------------------------ loading


def _citations(data: Mapping, path: Path) -> dict[str, str]:
    sources = {}
    for sid, entry in data.get("sources", {}).items():
        if not isinstance(entry.get("citation"), str):
            raise InputError(path, f"sources.{sid}: field 'citation' missing")
        ident = f" doi:{entry['doi']}." if "doi" in entry else f" PMID {entry['pmid']}." if "pmid" in entry else ""
        sources[sid] = entry["citation"] + ident
    return sources


def _parse_rule(entry: Mapping, index: int, sources: Mapping[str, str], path: Path) -> FlagRule:
    where = f"flags[{index}] (id={entry.get('id')})"
    missing = [k for k in _RULE_KEYS if k not in entry]
    if missing:
        raise InputError(path, f"{where}: missing field(s) {', '.join(sorted(missing))}")
    if entry["kind"] not in KINDS:
        raise InputError(path, f"{where}: field 'kind': unknown kind {entry['kind']!r} (known: {', '.join(KINDS)})")
    if entry["severity"] not in SEVERITIES:
        raise InputError(path, f"{where}: field 'severity': not one of {', '.join(SEVERITIES)}")
    unknown = [s for s in entry["source"] if s not in sources]
    if unknown:
        raise InputError(path, f"{where}: field 'source': unknown source id(s) {', '.join(unknown)}")
    params = {k: v for k, v in entry.items() if k not in _RULE_KEYS}
    absent = [k for k in KINDS[entry["kind"]][1] if k not in params]
    if absent:
        raise InputError(path, f"{where}: kind {entry['kind']!r} needs field(s) {', '.join(absent)}")
    return FlagRule(
        id=entry["id"],
        kind=entry["kind"],
        severity=entry["severity"],
        message=entry["message"],
        mitigation=entry["mitigation"],
        source="; ".join(sources[s] for s in entry["source"]),
        params=params,
    )


@lru_cache(maxsize=4)
def load_flag_rules(path: Path = FLAGS_FILE) -> FlagRules:
    """Read and check ``constraints/flags.toml`` (or a file of the same shape)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(path, f"cannot read flag rules ({exc})") from None
    sources = _citations(data, path)
    rules = tuple(_parse_rule(entry, i, sources, path) for i, entry in enumerate(data.get("flags", [])))
    if len({r.id for r in rules}) != len(rules):
        raise InputError(path, "duplicate flag id")
    if "stereotactic_min_gy_per_fraction" not in data.get("conventions", {}):
        raise InputError(path, "conventions: field 'stereotactic_min_gy_per_fraction' missing")
    return FlagRules(rules, data["conventions"], Path(path))


def compute_flags(ctx: FlagContext, rules: FlagRules | None = None) -> list[Flag]:
    """Every flag that fires for this context, in the order of the rules."""
    rules = rules or load_flag_rules()
    return [flag for rule in rules.rules for flag in KINDS[rule.kind][0](rule, ctx, rules)]
