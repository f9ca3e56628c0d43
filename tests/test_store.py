"""The results store: schema and version, lossless reports, rows per constraint and flag, and the
`reirrad audit` questions (summary, export, cohort page) answered from it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from batch_helpers import make_cases

from reirrad.audit import cohort, summarize
from reirrad.batch import BatchResult, CaseOutcome, CaseState, case_key, check_case
from reirrad.check import CheckOptions
from reirrad.errors import InputError
from reirrad.report.batch import render_batch
from reirrad.report.cohort import to_cohort_html
from reirrad.store import SCHEMA, SCHEMA_VERSION, Store, report_from_json, report_to_json

CLI = [sys.executable, "-c", "from reirrad.cli import main; main()"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, list[CaseOutcome]]:
    """A store holding the two sample cases (conventional passes, SBRT fails) and one bad case."""
    folder = tmp_path_factory.mktemp("store")
    cases = make_cases(folder, 2)
    broken = folder / "broken.toml"
    broken.write_text("courses = 3\n")
    outcomes = [check_case(str(p.absolute()), CheckOptions()) for p in (*cases, broken)]
    with Store(folder / "audit.sqlite") as store:
        for outcome in outcomes:
            store.record(case_key(outcome.path, CheckOptions()), outcome)
    return folder / "audit.sqlite", outcomes


def test_schema_is_versioned_and_other_files_are_refused(tmp_path):
    path = tmp_path / "a.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == SCHEMA == "reirrad.store.v1"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"meta", "cases", "results", "flags", "errors"}
        db.execute("PRAGMA user_version = 2")
    with pytest.raises(InputError, match="schema version 2; this reirrad reads version 1"):
        Store(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    with pytest.raises(InputError, match="not a results store"):
        Store(junk)
    with pytest.raises(InputError, match="no such results store"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_reports_come_back_from_the_store_unchanged(stored):
    path, outcomes = stored
    for outcome in outcomes[:2]:
        assert report_from_json(report_to_json(outcome.report)) == outcome.report
    with Store(path) as store:
        back = store.outcomes()
        assert store.lookup(case_key(outcomes[0].path, CheckOptions())).report == outcomes[0].report
        # an error is stored but never taken from the store: the case is checked again
        assert store.lookup(case_key(outcomes[2].path, CheckOptions())) is None
    assert [o.report for o in back] == [o.report for o in outcomes]  # ordered by case id, errors last
    assert back[2].state is CaseState.INPUT_ERROR and back[2].error == outcomes[2].error


def test_one_row_per_constraint_and_flag_with_the_report_values(stored):
    path, outcomes = stored
    sbrt = outcomes[1].report
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT constraint_id, value_gy, per_course, status FROM results WHERE case_path = ? ORDER BY position",
            (outcomes[1].path,),
        ).fetchall()
        flags = db.execute(
            "SELECT flag_id FROM flags WHERE case_path = ? ORDER BY position", (outcomes[1].path,)
        ).fetchall()
        case = db.execute(
            "SELECT id, state, exit_code, constraint_set, inputs FROM cases WHERE path = ?", (outcomes[1].path,)
        ).fetchone()
        error = db.execute("SELECT kind, message FROM errors").fetchall()
    assert [(r.constraint_id, r.value_gy, r.per_course, r.status) for r in sbrt.results] == [
        (cid, value, json.loads(per_course), status) for cid, value, per_course, status in rows
    ]
    assert [f.id for f in sbrt.flags] == [f for (f,) in flags]
    assert case[:4] == ("HN-SBRT-REIRR-01-001", "checked", 1, "hn-reirradiation")
    inputs = json.loads(case[4])
    assert str(Path(outcomes[1].path).parent / "course2" / "dose.dcm") in inputs
    assert error == [("input_error", outcomes[2].error)]


def test_audit_summary_export_and_cohort_page(stored, tmp_path):
    path, outcomes = stored
    conventional, sbrt = outcomes[0].report, outcomes[1].report
    with Store(path) as store:
        summary = summarize(store)
        page = cohort(store)
    assert summary.cases_by_state == {"checked": 2, "input_error": 1}
    assert summary.results_by_status == {
        s: conventional.summary.counts[s] + sbrt.summary.counts[s] for s in conventional.summary.counts
    }
    assert [(f.case_id, f.exit_code) for f in summary.failing] == [(None, 2), ("HN-SBRT-REIRR-01-001", 1)]
    assert "carotid-dmax[A_Carotid_L] fail" in summary.failing[1].why
    assert summary.constraint_sets == (("hn-reirradiation", sbrt.constraint_set_version, 2, 1),)
    carotid = next(c for c in page.constraints if c.constraint_id == "carotid-dmax[A_Carotid_L]")
    expected = next(r for r in sbrt.results if r.constraint_id == carotid.constraint_id)
    assert ("HN-SBRT-REIRR-01-001", expected.value_gy, "fail") in carotid.points
    assert carotid.limit_levels == (expected.limit_gy,)
    assert sorted(m for _, m in page.intervals_months) == sorted(
        r.courses[0].interval_months for r in (conventional, sbrt)
    )
    assert {f: n for f, _, n in page.flags}[sbrt.flags[0].id] >= 1

    export = subprocess.run([*CLI, "audit", "export", str(path), "-f", "json"], capture_output=True, text=True)
    assert export.returncode == 0
    assert export.stdout == render_batch(BatchResult(tuple(outcomes)), "json", CheckOptions())
    html = tmp_path / "cohort.html"
    made = subprocess.run([*CLI, "audit", "report", str(path), "-o", str(html)], capture_output=True, text=True)
    assert made.returncode == 0 and html.read_text() == to_cohort_html(page, path.name)
    assert html.read_text().count('src="data:image/png;base64,') == 3
    refused = subprocess.run([*CLI, "audit", "report", str(path), "-o", str(path)], capture_output=True, text=True)
    assert refused.returncode == 2 and "output would overwrite an input file" in refused.stderr
    shown = subprocess.run(
        [*CLI, "audit", "summary", str(path)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"}
    )
    assert shown.returncode == 0 and "HN-SBRT-REIRR-01-001" in shown.stdout and "broken.toml" in shown.stdout
