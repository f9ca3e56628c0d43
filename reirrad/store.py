"""The results store of a batch audit: one SQLite file, one transaction per finished case.

Schema version 1 (``PRAGMA user_version = 1``; table ``meta`` holds ``schema = reirrad.store.v1``,
the reirrad version that created the file and the time):

``cases``   one row per case file (``path`` absolute, the key): ``id``, ``inputs`` (JSON
            ``{file: sha256}`` of the case file, every file of its course folders, its registration
            and structure-set files, the constraint files used), ``inputs_sha256`` (digest of that
            JSON), ``reirrad_version``, ``constraint_set`` and ``constraint_set_version``,
            ``options`` (JSON of :class:`reirrad.check.CheckOptions`), ``state`` (checked |
            input_error | internal_error), ``exit_code``, ``seconds`` (time the check took),
            ``interval_months`` (shortest interval from a prior course's end to the reference
            course's start), ``finished_at`` (UTC), ``report`` (the whole report as lossless JSON,
            see :func:`report_to_json`; NULL for errors).
``results`` one row per constraint of a checked case (``case_path``, ``position`` in the set):
            ``constraint_id``, ``organ``, ``structure``, ``metric``, ``unit``, ``alpha_beta_gy``,
            ``limit_gy``, ``warn_gy``, ``value_gy``, ``per_course`` (JSON ``{course: Gy}``),
            ``recovery`` (JSON ``{course: r}``), ``status``, ``reason``, ``priority``,
            ``source_id``, ``constraint_set``.
``flags``   one row per raised flag (``case_path``, ``position``, ``flag_id``, ``severity``,
            ``message``, ``mitigation``, ``source``).
``errors``  one row per case that could not be checked (``case_path``, ``kind`` = the state,
            ``message``).

A case is written in one transaction (the old rows of its path deleted first) in WAL mode, so a
run killed at any moment leaves every case either complete or absent. A checked case whose inputs,
options and reirrad version are unchanged is not recomputed; cases that ended in an error always
are (the error may lie in something outside the hashed files).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import types
import typing
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path

from reirrad import __version__
from reirrad.batch import CaseKey, CaseOutcome, CaseState
from reirrad.errors import InputError
from reirrad.flags import Flag
from reirrad.results import CheckReport

SCHEMA = "reirrad.store.v1"
SCHEMA_VERSION = 1
REPORT_SCHEMA = "reirrad.store.report.v1"

_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cases (
    path TEXT PRIMARY KEY, id TEXT, inputs TEXT NOT NULL, inputs_sha256 TEXT NOT NULL,
    reirrad_version TEXT NOT NULL, constraint_set TEXT, constraint_set_version TEXT, options TEXT NOT NULL,
    state TEXT NOT NULL, exit_code INTEGER NOT NULL, seconds REAL NOT NULL, interval_months REAL,
    finished_at TEXT NOT NULL, report TEXT
);
CREATE TABLE results (
    case_path TEXT NOT NULL REFERENCES cases(path) ON DELETE CASCADE, position INTEGER NOT NULL,
    constraint_id TEXT NOT NULL, organ TEXT NOT NULL, structure TEXT, metric TEXT NOT NULL, unit TEXT NOT NULL,
    alpha_beta_gy REAL NOT NULL, limit_gy REAL, warn_gy REAL, value_gy REAL, per_course TEXT NOT NULL,
    recovery TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, priority TEXT, source_id TEXT, constraint_set TEXT,
    PRIMARY KEY (case_path, position)
);
CREATE TABLE flags (
    case_path TEXT NOT NULL REFERENCES cases(path) ON DELETE CASCADE, position INTEGER NOT NULL,
    flag_id TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL, mitigation TEXT, source TEXT,
    PRIMARY KEY (case_path, position)
);
CREATE TABLE errors (
    case_path TEXT PRIMARY KEY REFERENCES cases(path) ON DELETE CASCADE, kind TEXT NOT NULL, message TEXT NOT NULL
);
"""


# ------------------------------------------------------------------ the report, losslessly


def report_to_json(report: CheckReport) -> str:
    """The report as JSON with every number at full precision (``reirrad.check.v1`` rounds them),
    so outputs rebuilt from the store equal those of a fresh run. DVH curves, hot-spot planes and
    automatic-registration QA pictures are not kept."""
    return json.dumps(
        {
            "schema": REPORT_SCHEMA,
            "report": _encode(dataclasses.replace(report, curves=(), hotspots=(), registration_pictures=())),
        }
    )


def report_from_json(text: str) -> CheckReport:
    """Inverse of :func:`report_to_json`."""
    data = json.loads(text)
    if data.get("schema") != REPORT_SCHEMA:
        raise InputError(None, f"stored report has schema {data.get('schema')!r}, expected {REPORT_SCHEMA}")
    report = _decode(CheckReport, data["report"])
    return dataclasses.replace(report, flags=tuple(_decode(Flag, f) for f in data["report"]["flags"]))


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(hint, value):
    """``value`` (decoded JSON) as an instance of the type ``hint`` (dataclass, tuple, dict, date)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        return _decode(next(a for a in args if a is not type(None)), value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{k: _decode(hints[k], v) for k, v in value.items()})
    if origin is tuple or hint is tuple:
        return tuple(_decode(args[0], v) for v in value) if args else tuple(value)
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in value.items()}
    if hint is date:
        return date.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


# ------------------------------------------------------------------ the SQLite file


class Store:
    """An open results store. Only the process that submits the cases writes to it."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(self.path, "no such results store")
        try:
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, f"not a results store ({exc})") from None
        if version == 0 and tables == 0:
            self._create()
        elif version != SCHEMA_VERSION:
            raise InputError(
                self.path, f"results store schema version {version}; this reirrad reads version {SCHEMA_VERSION}"
            )

    def _create(self) -> None:
        with self.db:
            self.db.executescript("BEGIN;" + _TABLES + f"PRAGMA user_version = {SCHEMA_VERSION};")
            self.db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema", SCHEMA),
                    ("created_by", f"reirrad {__version__}"),
                    ("created_at", _now()),
                ],
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lookup(self, key: CaseKey) -> CaseOutcome | None:
        """The stored outcome of a checked case with this key, or None (not stored, changed, or an error)."""
        row = self.db.execute(
            "SELECT report, seconds FROM cases WHERE path = ? AND inputs_sha256 = ? AND options = ? "
            "AND reirrad_version = ? AND state = ?",
            (key.path, key.inputs_sha256, key.options, key.reirrad_version, CaseState.CHECKED.value),
        ).fetchone()
        if row is None:
            return None
        return CaseOutcome(key.path, CaseState.CHECKED, report=report_from_json(row[0]), seconds=row[1], resumed=True)

    def record(self, key: CaseKey, outcome: CaseOutcome) -> None:
        """Write one finished case (replacing what its path had) in a single transaction."""
        report = outcome.report
        with self.db:
            self.db.execute("DELETE FROM cases WHERE path = ?", (key.path,))
            self.db.execute(
                "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.path,
                    report and report.case_id,
                    json.dumps(key.inputs, sort_keys=True),
                    key.inputs_sha256,
                    key.reirrad_version,
                    report and report.constraint_set_name,
                    report and report.constraint_set_version,
                    key.options,
                    outcome.state.value,
                    outcome.exit_code,
                    outcome.seconds,
                    report and shortest_interval_months(report),
                    _now(),
                    report and report_to_json(report),
                ),
            )
            if outcome.error is not None:
                self.db.execute("INSERT INTO errors VALUES (?, ?, ?)", (key.path, outcome.state.value, outcome.error))
            if report is None:
                return
            self.db.executemany(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        key.path,
                        i,
                        r.constraint_id,
                        r.organ,
                        r.structure,
                        r.metric,
                        r.unit,
                        r.alpha_beta_gy,
                        r.limit_gy,
                        r.warn_gy,
                        r.value_gy,
                        json.dumps(r.per_course),
                        json.dumps(r.recovery),
                        r.status,
                        r.reason,
                        r.priority,
                        r.source_id,
                        r.constraint_set,
                    )
                    for i, r in enumerate(report.results)
                ],
            )
            self.db.executemany(
                "INSERT INTO flags VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (key.path, i, f.id, f.severity, f.message, f.mitigation, f.source)
                    for i, f in enumerate(report.flags)
                ],
            )

    def outcomes(self) -> list[CaseOutcome]:
        """Every stored case, ordered by case id then path (errors, without an id, last)."""
        rows = self.db.execute(
            "SELECT c.path, c.state, c.report, c.seconds, e.message FROM cases c LEFT JOIN errors e "
            "ON e.case_path = c.path ORDER BY c.id IS NULL, c.id, c.path"
        ).fetchall()
        return [
            CaseOutcome(
                path,
                CaseState(state),
                report=None if report is None else report_from_json(report),
                error=message,
                seconds=seconds,
                resumed=True,
            )
            for path, state, report, seconds, message in rows
        ]


def shortest_interval_months(report: CheckReport) -> float | None:
    """Shortest interval (months) from a prior course's end to the reference course's start."""
    known = [c.interval_months for c in report.courses if c.interval_months is not None]
    return min(known) if known else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
