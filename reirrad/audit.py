"""Questions to a results store (:mod:`reirrad.store`): cohort counts, failing cases, the cohort's
values per constraint, intervals and flag frequencies. Everything is read with SQL from the
documented tables, so the same questions can be asked with any SQLite client."""

from __future__ import annotations

from dataclasses import dataclass

from reirrad.batch import BatchResult
from reirrad.results import STATUSES
from reirrad.store import Store


@dataclass(frozen=True)
class FailingCase:
    """A stored case whose exit code is not 0, and why."""

    case_id: str | None  # None when the case file could not be read
    path: str
    exit_code: int
    why: str  # the failing / not evaluated constraint ids, or the error


@dataclass(frozen=True)
class AuditSummary:
    """Counts over every stored case."""

    cases_by_state: dict[str, int]  # checked | input_error | internal_error
    results_by_status: dict[str, int]  # pass | warn | fail | not_evaluated | report
    organs: dict[str, dict[str, int]]  # organ -> status -> results
    constraint_sets: tuple[tuple[str, str, int, int], ...]  # (set, version, cases, cases exiting non-zero)
    failing: tuple[FailingCase, ...]


def summarize(store: Store) -> AuditSummary:
    """Counts per case state, per result status, per organ and per constraint set; failing cases."""
    db = store.db
    organs: dict[str, dict[str, int]] = {}
    for organ, status, count in db.execute(
        "SELECT organ, status, count(*) FROM results GROUP BY organ, status ORDER BY organ"
    ):
        organs.setdefault(organ, dict.fromkeys(STATUSES, 0))[status] = count
    statuses = dict.fromkeys(STATUSES, 0) | dict(db.execute("SELECT status, count(*) FROM results GROUP BY status"))
    failing = tuple(
        FailingCase(case_id, path, exit_code, why or "")
        for case_id, path, exit_code, why in db.execute(
            "SELECT c.id, c.path, c.exit_code, coalesce(e.message, (SELECT group_concat(r.constraint_id || ' ' || "
            "r.status, ', ') FROM results r WHERE r.case_path = c.path AND r.status IN ('fail', 'warn', "
            "'not_evaluated'))) FROM cases c LEFT JOIN errors e ON e.case_path = c.path "
            "WHERE c.exit_code != 0 ORDER BY c.exit_code DESC, c.id, c.path"
        )
    )
    return AuditSummary(
        cases_by_state=dict(db.execute("SELECT state, count(*) FROM cases GROUP BY state ORDER BY state")),
        results_by_status=statuses,
        organs=organs,
        constraint_sets=tuple(
            db.execute(
                "SELECT constraint_set, constraint_set_version, count(*), sum(exit_code != 0) FROM cases "
                "WHERE constraint_set IS NOT NULL GROUP BY constraint_set, constraint_set_version ORDER BY 1, 2"
            )
        ),
        failing=failing,
    )


def stored_batch(store: Store) -> BatchResult:
    """Every stored case as a batch result (ordered by case id), for the batch output formats."""
    return BatchResult(tuple(store.outcomes()))


@dataclass(frozen=True)
class CohortConstraint:
    """One constraint (with a limit or warn level) over the cohort: one value per case."""

    constraint_set: str
    constraint_id: str
    organ: str
    metric: str
    unit: str
    warn_levels: tuple[float, ...]  # distinct levels over the cases (one unless set versions differ)
    limit_levels: tuple[float, ...]
    points: tuple[tuple[str, float, str], ...]  # (case id, value, status) of the evaluated cases
    not_evaluated: tuple[str, ...]  # case ids


@dataclass(frozen=True)
class Cohort:
    """What the cohort page shows."""

    cases: int
    constraints: tuple[CohortConstraint, ...]
    intervals_months: tuple[tuple[str, float], ...]  # (case id, shortest interval)
    flags: tuple[tuple[str, str, int], ...]  # (flag id, severity, cases raising it), most frequent first
    summary: AuditSummary


def cohort(store: Store) -> Cohort:
    """The cohort's values per constraint, intervals and flag frequencies."""
    db = store.db
    grouped: dict[tuple[str, str], dict] = {}
    for set_name, cid, organ, metric, unit, warn, limit, case_id, value, status in db.execute(
        "SELECT r.constraint_set, r.constraint_id, r.organ, r.metric, r.unit, r.warn_gy, r.limit_gy, c.id, "
        "r.value_gy, r.status FROM results r JOIN cases c ON c.path = r.case_path "
        "WHERE r.limit_gy IS NOT NULL OR r.warn_gy IS NOT NULL ORDER BY r.constraint_set, r.position, c.id"
    ):
        entry = grouped.setdefault(
            (set_name, cid), {"head": (organ, metric, unit), "warn": {}, "limit": {}, "points": [], "missing": []}
        )
        entry["warn"][warn] = entry["limit"][limit] = None
        if value is None:
            entry["missing"].append(case_id)
        else:
            entry["points"].append((case_id, value, status))
    constraints = tuple(
        CohortConstraint(
            set_name,
            cid,
            e["head"][0],
            e["head"][1],
            e["head"][2],
            tuple(w for w in e["warn"] if w is not None),
            tuple(v for v in e["limit"] if v is not None),
            tuple(e["points"]),
            tuple(e["missing"]),
        )
        for (set_name, cid), e in grouped.items()
    )
    return Cohort(
        cases=db.execute("SELECT count(*) FROM cases").fetchone()[0],
        constraints=constraints,
        intervals_months=tuple(
            db.execute("SELECT id, interval_months FROM cases WHERE interval_months IS NOT NULL ORDER BY id")
        ),
        flags=tuple(
            db.execute(
                "SELECT flag_id, severity, count(DISTINCT case_path) AS n FROM flags GROUP BY flag_id, severity "
                "ORDER BY n DESC, flag_id"
            )
        ),
        summary=summarize(store),
    )
