"""Constraint sets: cumulative EQD2 organ limits as data (``constraints/*.toml``), and verdicts.

A set file names its sources (full citations), its defaults (alpha/beta per organ, recovery model)
and its ``[[constraints]]`` entries. A set may ``extends`` another one (a built-in name or a path
relative to the file): entries of the child replace parent entries of the same id, whole; new ids
are added. Every loaded :class:`Constraint` records the set and the file it came from. A constraint
on an organ group (``A_Carotid``) becomes one constraint per member (``A_Carotid_L``, ``_R``), with
id ``<id>[<organ>]``. The schema is documented in the header of ``constraints/hn-reirradiation.toml``.

Verdicts (:func:`judge`), on the cumulative value of the entry's metric (EQD2 in Gy for dose
metrics, cm3 or % for volume metrics such as V20Gy): ``not_evaluated`` (no value), ``report`` (no
limit and no warning level), ``fail`` (value > limit, a value equal to the limit passes, as in
"<= 67.75 Gy" or "V20Gy <= 30 cc"), ``warn`` (value >= warn level, a value equal to the warning
level warns), else ``pass``.

Dose basis (:func:`judging`): every entry states the dose its limit was derived on.
``"undiscounted"`` (also the reading of an entry that does not say): judged on the plain
cumulative sum whatever recovery model the run uses; the discounted value may only be shown beside
it. A recovery model's name: the entry belongs to that model and is applied only when the run uses
it, either as a limit on the cumulative dose with prior courses discounted by the model, or
(``single_course_limit_gy``) as the model's own tolerance rule: fail when the undiscounted
cumulative value exceeds the single-course tolerance times (1 + r).

Validation refuses (``reirrad constraints validate`` lists every problem, one line each): a field of
the wrong type, an unknown field anywhere, a limit or warning level that is not a finite number
(> 0 Gy for dose levels, >= 0 for volume levels), a warning level above the limit, an alpha/beta
outside :data:`ALPHA_BETA_RANGE_GY` (a plausibility bound against typing mistakes such as 1e9 or
0.001, not a clinical value), an
``extends`` chain longer than :data:`MAX_EXTENDS_DEPTH` sets or circular, an unknown metric, and a
set that ends up with no constraint at all (it would pass every plan).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reirrad.data import constraints_dir
from reirrad.eqd2 import NO_RECOVERY, load_recovery_models
from reirrad.errors import InputError
from reirrad.metrics import parse_metric
from reirrad.organs import OrganCatalog, load_organ_catalog
from reirrad.tomlfile import Problems, citation_text, existing, plain, read_toml, shown

CONSTRAINTS_DIR = constraints_dir()
NOT_SETS = frozenset({"organs", "flags", "recovery"})  # data files in the folder that are not sets

Status = Literal["pass", "warn", "fail", "not_evaluated", "report"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "not_evaluated", "report")
PRIORITIES = ("hard", "soft", "report")
ALPHA_BETA_RANGE_GY = (0.5, 25.0)  # plausible alpha/beta values (Gy), inclusive
MAX_EXTENDS_DEPTH = 16  # sets in one extends chain, the file itself included

_SET_KEYS = {"name", "version", "title", "description", "extends", "sources", "defaults", "constraints"}
UNDISCOUNTED = "undiscounted"
# the limit and warning fields of each metric unit (Gy: dose metrics; cc, %: volume metrics)
LEVEL_KEYS = {"Gy": ("limit_gy", "warn_gy"), "cc": ("limit_cc", "warn_cc"), "%": ("limit_pct", "warn_pct")}
_LEVEL_KEYS = {key for keys in LEVEL_KEYS.values() for key in keys}
_ENTRY_KEYS = {
    "id",
    "organ",
    "metric",
    "priority",
    "alpha_beta_gy",
    "alpha_beta_source",
    "source",
    "mitigation",
    "note",
    "dose_basis",
    "single_course_limit_gy",
    *_LEVEL_KEYS,
}
_SOURCE_KEYS = {"citation", "doi", "pmid", "url", "evidence"}
_DEFAULTS_KEYS = {"alpha_beta", "recovery_model"}
_ALPHA_BETA_KEYS = {"organs", "gy", "source", "note"}
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class Constraint:
    """One cumulative constraint on one organ: EQD2 (Gy, alpha/beta ``alpha_beta_gy``) for dose
    metrics; for volume metrics (V20Gy) the volume (cm3 or %) at that cumulative EQD2."""

    id: str
    organ: str  # TG-263 organ name (a group member after expansion)
    metric: str  # canonical TG-263 metric text, e.g. "D0.03cc"
    limit: float | None  # fail above this value (in ``unit``); None: no limit
    warn: float | None  # warn at or above this value (in ``unit``); None: no warning level
    alpha_beta_gy: float
    priority: str  # "hard", "soft" or "report"
    source_id: str | None
    source: str  # full citation of source_id ("" for report-only entries without one)
    alpha_beta_source: str  # full citation of the alpha/beta's source
    mitigation: str
    note: str
    set_name: str  # the set (file) that defined this entry
    set_path: Path
    group: str | None = None  # the organ group the entry was written for, if any
    unit: str = "Gy"  # unit of the metric's value and of limit / warn: "Gy", "cc" or "%"
    dose_basis: str = UNDISCOUNTED  # "undiscounted" or the recovery model the limit belongs to
    single_course_limit_gy: float | None = None  # the model's tolerance rule: limit = this x (1 + r)

    @property
    def report_only(self) -> bool:
        """True when the entry has no limit, no warning level and no tolerance rule."""
        return self.limit is None and self.warn is None and self.single_course_limit_gy is None

    @property
    def limit_gy(self) -> float | None:
        """The fail limit of a dose metric (Gy); None for volume metrics and tolerance rules."""
        return self.limit if self.unit == "Gy" else None

    @property
    def warn_gy(self) -> float | None:
        """The warning level of a dose metric (Gy); None for volume metrics."""
        return self.warn if self.unit == "Gy" else None

    def applies_with(self, recovery_model: str) -> bool:
        """True when the entry is judged in a run using ``recovery_model``: undiscounted entries
        always, an entry belonging to a recovery model only with that model."""
        return self.dose_basis in (UNDISCOUNTED, recovery_model)


@dataclass(frozen=True)
class ConstraintSet:
    """A loaded constraint set, its parents merged in."""

    name: str
    version: str
    title: str
    path: Path
    sources: Mapping[str, str]  # id -> full citation with DOI/PMID
    constraints: tuple[Constraint, ...]
    recovery_model: str
    lineage: tuple[str, ...]  # set names from the root parent to this set
    alpha_beta_defaults: tuple[tuple[frozenset[str], float, str], ...] = ()  # (organs, Gy, source id), own first


@dataclass(frozen=True)
class Judging:
    """How one constraint is judged in a run: on which cumulative dose, against which levels."""

    discounted: bool  # True: prior courses discounted by the run's recovery model; False: plain sum
    limit: float | None  # in the constraint's unit
    warn: float | None
    note: str | None = None  # how the levels or the dose were chosen, for the report


def judging(constraint: Constraint, recovery_model: str, prior_r: Mapping[str, float]) -> Judging | str:
    """The dose and levels a constraint is judged on, or the reason it cannot be judged.

    ``prior_r`` is the recovery fraction r of each prior course for the constraint's organ under
    ``recovery_model`` (the model the run uses). See the module docstring for the dose bases.
    """
    if not constraint.applies_with(recovery_model):
        raise ValueError(f"{constraint.id} belongs to recovery model {constraint.dose_basis!r}, not {recovery_model!r}")
    if constraint.dose_basis == UNDISCOUNTED:
        return Judging(False, constraint.limit, constraint.warn)
    if constraint.single_course_limit_gy is None:
        note = f"limit derived on cumulative dose with prior courses discounted by recovery model {recovery_model}"
        return Judging(True, constraint.limit, constraint.warn, note)
    if len(prior_r) > 1:
        return (
            f"the tolerance rule of recovery model {recovery_model} is stated for one prior course; "
            f"this case has {len(prior_r)}"
        )
    course, r = next(iter(prior_r.items()), ("none", 0.0))  # no prior course: the single-course tolerance
    limit = constraint.single_course_limit_gy * (1.0 + r)
    note = (
        f"tolerance rule of recovery model {recovery_model}: single-course tolerance "
        f"{constraint.single_course_limit_gy:g} Gy x (1 + r {r:g} for prior course '{course}') = {limit:g} Gy, "
        "judged on the undiscounted cumulative dose"
    )
    return Judging(False, limit, None, note)


def judge(levels: Constraint | Judging, value: float | None) -> Status:
    """The verdict on a cumulative value against a constraint's (or a judging's) levels (see the
    module docstring for the boundaries)."""
    if value is None:
        return "not_evaluated"
    if isinstance(levels, Constraint) and levels.report_only:
        return "report"
    if levels.limit is not None and value > levels.limit:
        return "fail"
    if levels.warn is not None and value >= levels.warn:
        return "warn"
    return "pass" if levels.limit is not None or levels.warn is not None else "report"


def available_sets(folder: Path = CONSTRAINTS_DIR) -> list[str]:
    """Names of the built-in constraint sets."""
    return sorted(p.stem for p in folder.glob("*.toml") if p.stem not in NOT_SETS)


def resolve_set_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The file of a built-in set name, or a path (relative to ``relative_to`` when given)."""
    text = str(name_or_path)
    if text in available_sets():
        return CONSTRAINTS_DIR / f"{text}.toml"
    path = Path(text)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    try:
        usable = path.suffix == ".toml" and existing(path, folder=False) is not None
    except ValueError:  # missing, a symlink loop, a name too long, a NUL character
        usable = False
    if not usable:
        known = ", ".join(available_sets())
        raise InputError(
            path, f"no such constraint set file and no built-in set named {shown(text)} (built-in: {known})"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Reading and validating one file. Problems are collected, never raised one by one, so that
# `reirrad constraints validate` can list them all.


@dataclass(frozen=True)
class _RawSet:
    """One file's content after field checks, before merging with its parent."""

    name: str
    version: str
    title: str
    path: Path
    extends: str | None
    sources: dict[str, str]
    recovery_model: str | None
    alpha_beta: tuple[tuple[frozenset[str], float, str], ...]  # (organs, Gy, source id)
    entries: tuple[dict[str, Any], ...]


def _number(value: Any, zero_ok: bool = False) -> float | None:
    """A finite float > 0 (>= 0 with ``zero_ok``), or None when the value is anything else (text,
    bool, NaN, infinity, a negative number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if value > 0 or (zero_ok and value == 0) else None


def _alpha_beta_value(value: Any) -> float | None:
    """An alpha/beta (Gy) inside :data:`ALPHA_BETA_RANGE_GY`, else None."""
    low, high = ALPHA_BETA_RANGE_GY
    number = _number(value)
    return number if number is not None and low <= number <= high else None


def _alpha_beta_problem(value: Any) -> str:
    low, high = ALPHA_BETA_RANGE_GY
    return f"must be a number of Gy from {low:g} to {high:g} (a plausibility bound), got {shown(value)}"


def _table(data: Mapping, key: str, kind: type, problems: Problems, where: str = "set") -> Any:
    """``data[key]`` when it has the ``kind`` (dict or list), else an empty one and a problem."""
    value = data.get(key, kind())
    if not isinstance(value, kind):
        what = "a table" if kind is dict else "an array of tables"
        problems.add(where, key, f"must be {what}, got {shown(value)}")
        return kind()
    return value


def _text(data: Mapping, key: str, problems: Problems, where: str) -> str | None:
    """An optional text field; None (and a problem) when it is there but not text."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        problems.add(where, key, f"must be text, got {shown(value)}")
        return None
    return value


def _read_sources(data: Mapping, problems: Problems) -> dict[str, str]:
    sources = {}
    for sid, entry in _table(data, "sources", dict, problems).items():
        where = f"sources.{plain(sid)}"
        if not isinstance(entry, dict) or not isinstance(entry.get("citation"), str) or not entry["citation"]:
            problems.add(where, "citation", "missing: give the full citation text")
            continue
        problems.unknown(entry, _SOURCE_KEYS, where)
        bad = [key for key in ("doi", "url", "evidence") if _text(entry, key, problems, where) is None and key in entry]
        if "pmid" in entry and (isinstance(entry["pmid"], bool) or not isinstance(entry["pmid"], (str, int))):
            problems.add(where, "pmid", f"must be text or a whole number, got {shown(entry['pmid'])}")
            bad.append("pmid")
        if not bad:
            sources[sid] = citation_text(entry)
    return sources


def _read_alpha_beta(defaults: Mapping, problems: Problems) -> tuple[tuple[frozenset[str], float, str], ...]:
    rows = []
    for i, row in enumerate(_table(defaults, "alpha_beta", list, problems, "defaults")):
        where = f"defaults.alpha_beta[{i}]"
        if not isinstance(row, dict):
            problems.add(where, None, f"must be a table ([[defaults.alpha_beta]]), got {shown(row)}")
            continue
        before = len(problems)
        problems.unknown(row, _ALPHA_BETA_KEYS, where)
        value = _alpha_beta_value(row.get("gy"))
        organs = row.get("organs")
        if value is None:
            problems.add(where, "gy", _alpha_beta_problem(row.get("gy")))
        if not isinstance(organs, list) or not organs or not all(isinstance(o, str) and o for o in organs):
            problems.add(where, "organs", 'missing: list the organs as texts (or "*" for every other organ)')
        if not isinstance(row.get("source"), str):
            problems.add(where, "source", "missing: name the source of this alpha/beta")
        _text(row, "note", problems, where)
        if len(problems) == before and value is not None:
            rows.append((frozenset(organs or ()), value, row["source"]))
    return tuple(rows)


def _read_file(path: Path, problems: Problems) -> _RawSet | None:
    try:
        data = read_toml(path, "constraint set")
    except InputError as exc:
        problems.add("file", None, exc.problem)
        return None
    problems.unknown(data, _SET_KEYS, "set")
    for key in ("name", "version", "title"):
        if not isinstance(data.get(key), str) or not data[key]:
            problems.add("set", key, "missing: give a non-empty text")
    defaults = _table(data, "defaults", dict, problems)
    problems.unknown(defaults, _DEFAULTS_KEYS, "defaults")
    entries = data.get("constraints", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.add("set", "constraints", "must be an array of tables ([[constraints]])")
        entries = []
    return _RawSet(
        name=str(data.get("name", path.stem)),
        version=str(data.get("version", "")),
        title=str(data.get("title", "")),
        path=path,
        extends=_text(data, "extends", problems, "set"),
        sources=_read_sources(data, problems),
        recovery_model=_text(defaults, "recovery_model", problems, "defaults"),
        alpha_beta=_read_alpha_beta(defaults, problems),
        entries=tuple(entries),
    )


def _check_levels(entry: Mapping, priority: Any, metric: Any, where: str, problems: Problems) -> None:
    """Levels: numbers in the metric's unit (limit_gy / warn_gy for dose metrics, limit_cc /
    warn_cc or limit_pct / warn_pct for volume metrics), consistent with the priority, warn <= limit."""
    levels = {k: _number(entry[k], zero_ok=k not in LEVEL_KEYS["Gy"]) for k in sorted(_LEVEL_KEYS) if k in entry}
    for key, value in levels.items():
        if value is None:
            bound = "> 0" if key in LEVEL_KEYS["Gy"] else ">= 0"
            problems.add(where, key, f"must be a finite number {bound}, got {shown(entry[key])}")
    rule = "single_course_limit_gy" in entry
    if priority == "report" and (levels or rule):
        problems.add(where, "priority", "a report-only entry cannot have a limit, a warning level or a tolerance rule")
    if priority in ("hard", "soft") and not (levels or rule):
        hint = 'or use priority = "report"'
        problems.add(where, "limit_gy", f"missing: a {priority} entry needs a limit and/or a warning level ({hint})")
    if metric is not None:
        allowed = LEVEL_KEYS.get(metric.unit, ())
        for key in levels:
            if key not in allowed:
                problems.add(where, key, f"{metric} gives {metric.unit}: its levels are {' / '.join(allowed)}")
    for key in ("limit_pct", "warn_pct"):
        if (levels.get(key) or 0.0) > 100:
            problems.add(where, key, "a volume percentage cannot exceed 100")
    for limit_key, warn_key in LEVEL_KEYS.values():
        limit, warn = levels.get(limit_key), levels.get(warn_key)
        if limit is not None and warn is not None and warn > limit:
            problems.add(where, warn_key, f"above {limit_key}: the warning level must not exceed the limit")


def _check_basis(entry: Mapping, metric: Any, where: str, problems: Problems, recovery_models: Collection[str]) -> None:
    """dose_basis: "undiscounted" or one of ``recovery_models`` (names); single_course_limit_gy only with a model."""
    basis = entry.get("dose_basis", UNDISCOUNTED)
    models = set(recovery_models) - {NO_RECOVERY}
    if not isinstance(basis, str) or basis not in models | {UNDISCOUNTED}:
        allowed = ", ".join(repr(m) for m in sorted(models | {UNDISCOUNTED}))
        problems.add(
            where,
            "dose_basis",
            f"{basis!r} is not a dose basis (allowed: {allowed}; "
            'a limit derived without a recovery discount is "undiscounted")',
        )
    if "single_course_limit_gy" not in entry:
        return
    value = _number(entry["single_course_limit_gy"])
    if not value:
        problems.add(where, "single_course_limit_gy", "not a positive number (Gy)")
    if basis == UNDISCOUNTED:
        problems.add(
            where, "single_course_limit_gy", "a tolerance rule belongs to a recovery model: set dose_basis to it"
        )
    if set(entry) & _LEVEL_KEYS:
        problems.add(where, "single_course_limit_gy", "give either a tolerance rule or limit/warning levels, not both")
    if metric is not None and not metric.is_dose:
        problems.add(where, "single_course_limit_gy", f"{metric} is not a dose metric")


def _check_entry(
    entry: Mapping, where: str, sources: Mapping[str, str], problems: Problems, recovery_models: Collection[str]
) -> bool:
    """Field checks of one [[constraints]] entry (``recovery_models``: the model names); True when it can be built."""
    before = len(problems)
    problems.unknown(entry, _ENTRY_KEYS, where)
    for key in ("id", "organ", "metric"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            problems.add(where, key, "missing: give a non-empty text")
    if isinstance(entry.get("id"), str) and not _ID.fullmatch(entry["id"]):
        problems.add(where, "id", "use lower-case letters, digits, '_', '-' and '.'")
    metric = None
    if isinstance(entry.get("metric"), str):
        try:
            metric = parse_metric(entry["metric"])
        except ValueError as exc:
            problems.add(where, "metric", str(exc))
    priority = entry.get("priority")
    if priority not in PRIORITIES:
        kinds = ", ".join(PRIORITIES)
        problems.add(where, "priority", f"missing or not one of {kinds} (says what kind of limit this is)")
    _check_levels(entry, priority, metric, where, problems)
    _check_basis(entry, metric, where, problems, recovery_models)
    if "alpha_beta_gy" in entry and _alpha_beta_value(entry["alpha_beta_gy"]) is None:
        problems.add(where, "alpha_beta_gy", _alpha_beta_problem(entry["alpha_beta_gy"]))
    for key in ("source", "alpha_beta_source"):
        if key in entry and (not isinstance(entry[key], str) or entry[key] not in sources):
            defined = ", ".join(sorted(sources)) or "none"
            problems.add(where, key, f"unknown source id {shown(entry[key])} (defined: {defined})")
    if priority in ("hard", "soft") and "source" not in entry:
        problems.add(where, "source", "missing: every limit needs a source id")
    for key in ("mitigation", "note"):
        if key in entry and not isinstance(entry[key], str):
            problems.add(where, key, "must be text")
    return len(problems) == before


def _alpha_beta(
    entry: Mapping, defaults: tuple, catalog: OrganCatalog, where: str, problems: Problems
) -> tuple[float, str] | None:
    """(alpha/beta Gy, source id) for an entry: its own, else the first default row naming it."""
    if "alpha_beta_gy" in entry:
        return float(entry["alpha_beta_gy"]), entry.get("alpha_beta_source", entry.get("source"))
    organ = entry["organ"]
    names = {organ, *catalog.members(organ)} | {g for g, members in catalog.groups.items() if organ in members}
    for wanted in (names, {"*"}):
        for organs, value, source in defaults:
            if organs & wanted:
                return value, source
    problems.add(where, "alpha_beta_gy", f"missing, and [defaults] gives no alpha/beta for {organ} nor '*'")
    return None


def _build(
    entry: Mapping, where: str, raw: _RawSet, defaults: tuple, sources: Mapping[str, str], problems: Problems
) -> list[Constraint]:
    """The constraint(s) of one checked entry: one per member of an organ group."""
    catalog = load_organ_catalog()
    ab = _alpha_beta(entry, defaults, catalog, where, problems)
    if ab is None:
        return []
    if ab[1] not in sources:
        problems.add(where, "alpha_beta_source", f"no source given for alpha/beta {ab[0]:g} Gy")
        return []
    organ = entry["organ"]
    members = catalog.members(organ)
    group = organ if members != (organ,) else None
    metric = parse_metric(entry["metric"])
    limit_key, warn_key = LEVEL_KEYS[metric.unit]
    return [
        Constraint(
            id=entry["id"] if group is None else f"{entry['id']}[{member}]",
            organ=member,
            metric=str(metric),
            limit=None if limit_key not in entry else float(entry[limit_key]),
            warn=None if warn_key not in entry else float(entry[warn_key]),
            alpha_beta_gy=ab[0],
            priority=entry["priority"],
            source_id=entry.get("source"),
            source=sources.get(entry.get("source") or "", ""),
            alpha_beta_source=sources[ab[1]],
            mitigation=entry.get("mitigation", ""),
            note=entry.get("note", ""),
            set_name=raw.name,
            set_path=raw.path,
            group=group,
            unit=metric.unit,
            dose_basis=entry.get("dose_basis", UNDISCOUNTED),
            single_course_limit_gy=(
                None if "single_course_limit_gy" not in entry else float(entry["single_course_limit_gy"])
            ),
        )
        for member in members
    ]


def _load(path: Path, problems: list[str], seen: tuple[Path, ...]) -> ConstraintSet | None:
    """Load one file and its parents; append every problem found to ``problems``."""
    own = Problems(path)
    raw = _read_file(path, own)
    parent = None
    if raw is not None and raw.extends is not None and len(seen) >= MAX_EXTENDS_DEPTH:
        own.add("set", "extends", f"the extends chain is longer than {MAX_EXTENDS_DEPTH} sets")
    elif raw is not None and raw.extends is not None:
        try:
            parent_path = resolve_set_path(raw.extends, path.parent).resolve()
        except InputError as exc:
            own.add("set", "extends", f"unknown set {shown(raw.extends)}: {exc.problem}")
        else:
            if parent_path in seen:
                own.add("set", "extends", f"cycle: {parent_path} extends itself through {raw.extends!r}")
            else:
                parent = _load(parent_path, problems, seen + (parent_path,))
    if raw is None:
        problems.extend(own)
        return None
    sources = dict(parent.sources) if parent else {}
    for sid, text in raw.sources.items():
        if parent is not None and sources.get(sid, text) != text:
            own.add(f"sources.{sid}", None, f"id already used by parent set {parent.name!r} for another citation")
        sources[sid] = text
    for i, (_, _, source) in enumerate(raw.alpha_beta):
        if source not in sources:
            own.add(f"defaults.alpha_beta[{i}]", "source", f"unknown source id {source!r}")
    recovery = raw.recovery_model or (parent.recovery_model if parent else "none")
    recovery_models = load_recovery_models().keys()  # read once per file, not once per entry
    if recovery not in recovery_models:
        own.add("defaults", "recovery_model", f"unknown recovery model {shown(recovery)}")
    defaults = raw.alpha_beta + (parent.alpha_beta_defaults if parent else ())
    parent_constraints = parent.constraints if parent else ()
    inherited = {c.id.split("[")[0]: None for c in parent_constraints}
    own_ids: set[str] = set()
    built: dict[str, list[Constraint]] = {}
    for i, entry in enumerate(raw.entries):
        where = f"constraints[{i}]" + (f" (id={plain(entry['id'])})" if isinstance(entry.get("id"), str) else "")
        if not _check_entry(entry, where, sources, own, recovery_models):
            continue
        if entry["id"] in own_ids:
            own.add(where, "id", "duplicate id in this file")
            continue
        own_ids.add(entry["id"])
        built[entry["id"]] = _build(entry, where, raw, defaults, sources, own)
    problems.extend(own)
    merged: list[Constraint] = []
    for base_id in inherited:
        merged += built.pop(base_id, []) or [c for c in parent_constraints if c.id.split("[")[0] == base_id]
    for constraints in built.values():
        merged += constraints
    return ConstraintSet(
        name=raw.name,
        version=raw.version,
        title=raw.title,
        path=path,
        sources=sources,
        constraints=tuple(merged),
        recovery_model=recovery,
        lineage=(parent.lineage if parent else ()) + (raw.name,),
        alpha_beta_defaults=defaults,
    )


def _load_top(path: Path, problems: list[str]) -> ConstraintSet | None:
    """The set a user names, loaded with its parents; a set left with no constraint (and no other
    problem to explain why) is refused too."""
    loaded = _load(path, problems, (path,))
    if loaded is not None and not loaded.constraints and not problems:
        empty = Problems(path)
        empty.add("set", "constraints", "no constraint (none given, or none valid): the set would pass every plan")
        problems.extend(empty)
    return loaded


def validate_constraint_file(path: str | Path) -> list[str]:
    """Every problem of a set file and its parents, one line each: "file: entry: field: problem"."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: file: not found"]
    problems: list[str] = []
    _load_top(path.resolve(), problems)
    return problems


def load_constraint_set(name_or_path: str | Path) -> ConstraintSet:
    """A built-in set by name, or a set file; InputError listing every problem when invalid."""
    path = resolve_set_path(name_or_path).resolve()
    problems = Problems(path)
    loaded = _load_top(path, problems)
    problems.raise_if_any("constraint set")
    assert loaded is not None  # a set that cannot be loaded has problems
    return loaded
