"""Recovery is never a discount on a limit derived without one (issue 10, defect 1).

Uniform doses make every cord metric closed form: a course of D Gy in n fractions gives the
cord EQD2(2) = D (D/n + 2) / 4; at 2 Gy per fraction that is D itself.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from uniform_case import write_case, write_course

from reirrad import constraints
from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from reirrad.constraints import load_constraint_set, validate_constraint_file
from reirrad.report.console import results_table
from reirrad.report.junit import to_junit
from reirrad.report.machine import to_csv, to_json

REPO = Path(__file__).resolve().parents[1]
SBRT_CASE = REPO / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


def cord_case(tmp_path: Path, prior_gy: float, new_gy: float, prior_end: str, new_start: str) -> Path:
    """Prior and new course at 2 Gy per fraction to a uniform cord: EQD2(2) = the physical dose."""
    write_course(tmp_path / "prior", prior_gy, int(prior_gy / 2))
    write_course(tmp_path / "new", new_gy, int(new_gy / 2))
    return write_case(tmp_path / "case.toml", prior_end=prior_end, new_start=new_start)


def result(report, constraint_id: str):
    return next(r for r in report.results if r.constraint_id == constraint_id)


def test_issue_example_nieder_is_judged_on_the_undiscounted_sum(tmp_path):
    """Prior cord 50 Gy EQD2(2), new 40 Gy, 18 months later, simple-25-50 (r = 0.5): the discount
    gives 25 + 40 = 65 Gy, which would pass Nieder's 67.75 Gy; Nieder's limit was derived on
    undiscounted dose, so 90 Gy is judged and fails. The model's own rule (Doi 2021: 150 % of a
    50 Gy single-course tolerance = 75 Gy) fails too."""
    case = load_case(cord_case(tmp_path, 50.0, 40.0, "2023-01-01", "2024-07-01"))
    report = run_check(case, CheckOptions(recovery_model="simple-25-50"))
    nieder = result(report, "spinalcord-dmax")
    assert nieder.value_gy == pytest.approx(90.0, abs=1e-3) and nieder.status == "fail"
    assert nieder.per_course == pytest.approx({"prior": 50.0, "new": 40.0}, abs=1e-3)
    assert nieder.recovery == {"prior": 0.0, "new": 0.0} and nieder.dose_basis == "undiscounted"
    assert nieder.discounted.value == pytest.approx(65.0, abs=1e-3) and nieder.discounted.recovery["prior"] == 0.5
    assert any("not judged" in n and "65.00 Gy" in n for n in nieder.notes)
    doi = result(report, "spinalcord-dmax-simple-25-50")
    assert (doi.limit_gy, doi.status) == (pytest.approx(75.0), "fail")
    assert doi.value_gy == pytest.approx(90.0, abs=1e-3) and doi.dose_basis == "simple-25-50"
    assert doi.discounted is None  # the model's own rule: nothing discounted to show beside it
    assert report.summary.exit_code == 1


@pytest.mark.parametrize(
    ("prior_end", "limit_gy", "status"),
    [
        ("2024-04-01", 50.0, "fail"),  # 3 months: no recovery, the single-course tolerance
        ("2023-11-01", 62.5, "pass"),  # 8 months: 125 %
        ("2023-01-01", 75.0, "pass"),  # 18 months: 150 %
    ],
)
def test_simple_25_50_is_its_own_tolerance_rule_on_undiscounted_dose(tmp_path, prior_end, limit_gy, status):
    """30 + 26 = 56 Gy cumulative, always judged undiscounted: under Nieder (warn 60) it passes;
    the simple method's limit is 50 Gy x (1 + r)."""
    case = load_case(cord_case(tmp_path, 30.0, 26.0, prior_end, "2024-07-01"))
    report = run_check(case, CheckOptions(recovery_model="simple-25-50"))
    doi = result(report, "spinalcord-dmax-simple-25-50")
    assert doi.value_gy == pytest.approx(56.0, abs=1e-3) and doi.recovery == {"prior": 0.0, "new": 0.0}
    assert doi.limit_gy == pytest.approx(limit_gy) and doi.status == status
    assert any("tolerance rule of recovery model simple-25-50" in n for n in doi.notes)
    assert result(report, "spinalcord-dmax").status == "pass"


def test_entries_of_another_model_are_not_applied_and_said_so(tmp_path):
    case = load_case(cord_case(tmp_path, 30.0, 26.0, "2023-01-01", "2024-07-01"))
    for model in ("none", "price-2021"):
        report = run_check(case, CheckOptions(recovery_model=model))
        assert "spinalcord-dmax-simple-25-50" not in {r.constraint_id for r in report.results}
        assert "spinalcord-dmax-simple-25-50 (simple-25-50)" in report.assumptions["dose_basis"]
    price = run_check(case, CheckOptions(recovery_model="price-2021"))
    assert result(price, "spinalcord-dmax").value_gy == pytest.approx(56.0, abs=1e-3)
    assert result(price, "spinalcord-dmax").discounted.value == pytest.approx(41.0, abs=1e-3)


def test_sample_sbrt_case_stays_warn_on_the_undiscounted_cord():
    """The sample case went from WARN (65.5 Gy) to PASS (45.0 Gy) with simple-25-50: it stays WARN."""
    plain = result(run_check(load_case(SBRT_CASE)), "spinalcord-dmax")
    report = run_check(load_case(SBRT_CASE), CheckOptions(recovery_model="simple-25-50"))
    cord = result(report, "spinalcord-dmax")
    assert plain.status == cord.status == "warn"
    assert cord.value_gy == pytest.approx(plain.value_gy, rel=1e-12) and cord.value_gy == pytest.approx(65.47, abs=0.01)
    assert cord.discounted.value == pytest.approx(45.00, abs=0.01)
    doi = result(report, "spinalcord-dmax-simple-25-50")  # 20.3 months: 150 % of 50 Gy
    assert (doi.limit_gy, doi.status) == (pytest.approx(75.0), "pass")


def test_discounted_value_is_labelled_in_every_format(tmp_path):
    case = load_case(cord_case(tmp_path, 50.0, 40.0, "2023-01-01", "2024-07-01"))
    report = run_check(case, CheckOptions(recovery_model="simple-25-50"))
    row = next(r for r in json.loads(to_json(report))["results"] if r["id"] == "spinalcord-dmax")
    assert row["value_gy"] == pytest.approx(90.0) and row["dose_basis"] == "undiscounted"
    assert row["discounted"] == {
        "recovery_model": "simple-25-50",
        "value": pytest.approx(65.0),
        "recovery_fraction": {"prior": 0.5, "new": 0.0},
        "judged": False,
    }
    csv_text = to_csv(report)
    assert "dose_basis,discounted_value" in csv_text.splitlines()[0]
    assert "discounted by simple-25-50: 65.0 Gy, not judged" in to_junit(report)  # as the JSON holds it
    _, footnotes = results_table(report)
    assert any("recovery model simple-25-50 would give 65.00 Gy" in f for f in footnotes)


def test_dose_basis_is_validated(tmp_path):
    head = 'name = "b"\nversion = "1"\ntitle = "b"\n[sources.t]\ncitation = "T."\n'
    entry = '[[constraints]]\nid = "{id}"\norgan = "SpinalCord"\nmetric = "Dmax"\npriority = "hard"\nsource = "t"\nalpha_beta_gy = 2.0\n'
    path = tmp_path / "set.toml"
    path.write_text(
        head
        + entry.format(id="unknown")
        + 'limit_gy = 50.0\ndose_basis = "discounted"\n'
        + entry.format(id="none")
        + 'limit_gy = 50.0\ndose_basis = "none"\n'
        + entry.format(id="rule-undiscounted")
        + "single_course_limit_gy = 50.0\n"
        + entry.format(id="rule-and-limit")
        + 'single_course_limit_gy = 50.0\nlimit_gy = 60.0\ndose_basis = "simple-25-50"\n'
        + entry.format(id="fine")
        + 'single_course_limit_gy = 50.0\ndose_basis = "simple-25-50"\n'
    )
    problems = "\n".join(validate_constraint_file(path))
    assert "(id=unknown): field 'dose_basis': 'discounted' is not a dose basis" in problems
    assert "(id=none): field 'dose_basis': 'none' is not a dose basis" in problems
    assert (
        "(id=rule-undiscounted): field 'single_course_limit_gy': a tolerance rule belongs to a recovery model"
        in problems
    )
    assert "(id=rule-and-limit): field 'single_course_limit_gy': give either" in problems
    assert "(id=fine)" not in problems


def test_every_builtin_limit_states_its_dose_basis():
    for path in (REPO / "constraints").glob("*reirradiation.toml"):
        for entry in tomllib.loads(path.read_text())["constraints"]:
            if entry["priority"] != "report":
                assert "dose_basis" in entry, f"{path.name}: {entry['id']}"


def test_tolerance_rule_needs_at_most_one_prior_course():
    rule = next(
        c for c in load_constraint_set("hn-reirradiation").constraints if c.id == "spinalcord-dmax-simple-25-50"
    )
    assert constraints.judging(rule, "simple-25-50", {}).limit == pytest.approx(50.0)
    assert constraints.judging(rule, "simple-25-50", {"prior": 0.25}).limit == pytest.approx(62.5)
    assert "stated for one prior course; this case has 2" in constraints.judging(
        rule, "simple-25-50", {"a": 0.5, "b": 0.5}
    )
    with pytest.raises(ValueError, match="belongs to recovery model 'simple-25-50'"):
        constraints.judging(rule, "price-2021", {"prior": 0.5})
