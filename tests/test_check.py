"""`reirrad check` end to end on real grids with a closed-form answer.

Two courses share the Nelms 2015 frame of reference: the prior is Linear_AntPost_3mm
(D = 10 - y Gy, given in 25 fractions), the new is Linear_SupInf_1mm (D = 10 + z Gy, 5 fractions).
The organ is the Nelms sphere (centre (0, -6, 6) mm, radius 12 mm, 1 mm contours). Cumulative
EQD2 anywhere is EQD2(10 - y; 25) + EQD2(10 + z; 5), so the expected metrics are computed here
from that formula over the analytic sphere, independently of the product's pipeline.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from check_helpers import constraint_set_header
from hypothesis import given, settings
from hypothesis import strategies as st

from reirrad.case import load_case
from reirrad.check import CheckOptions, conservative_value, exit_code, run_check
from reirrad.dvh import Dvh, evaluate
from reirrad.metrics import parse_metric
from reirrad.results import ConstraintResult

ALPHA_BETA = 2.0
CENTRE = np.array([0.0, -6.0, 6.0])
RADIUS = 12.0


def cumulative_eqd2(points: np.ndarray) -> np.ndarray:
    """The closed-form cumulative EQD2 (Gy, alpha/beta 2) at patient points (N, 3) in mm."""
    prior = np.maximum(0.0, 10.0 - points[:, 1])
    new = np.maximum(0.0, 10.0 + points[:, 2])
    return (prior * (prior / 25 + ALPHA_BETA) + new * (new / 5 + ALPHA_BETA)) / (2 + ALPHA_BETA)


# The structure is the stack of its 1 mm contours, each a slab of +-0.5 mm (half-slice end caps
# at the first and last contour, the planning-system and Nelms convention): plane z_k carries a
# disc of radius sqrt(R^2 - (z_k - 6)^2).
PLANES_MM = np.arange(-6.0, 18.5, 1.0)
PLANE_RADII_MM = np.sqrt(np.maximum(0.0, RADIUS**2 - (PLANES_MM - CENTRE[2]) ** 2))


def slab_samples(per_mm: int = 8) -> np.ndarray:
    """Points filling the stacked-slab structure evenly (mm)."""
    step = 1.0 / per_mm
    offsets = np.arange(-0.5 + step / 2, 0.5, step)
    axis = np.arange(-RADIUS + step / 2, RADIUS, step)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    points = []
    for z, radius in zip(PLANES_MM, PLANE_RADII_MM):
        inside = x**2 + y**2 <= radius**2
        disc = np.column_stack([x[inside], y[inside] + CENTRE[1]])
        for dz in offsets:
            points.append(np.column_stack([disc, np.full(len(disc), z + dz)]))
    return np.vstack(points)


# Cumulative EQD2 grows towards -y and +z: its maximum is on the top face of a slab, at the rim.
EXPECTED_DMAX = float(
    cumulative_eqd2(np.column_stack([np.zeros_like(PLANES_MM), CENTRE[1] - PLANE_RADII_MM, PLANES_MM + 0.5])).max()
)
SLAB_SAMPLES = slab_samples()
EXPECTED_DMEAN = float(cumulative_eqd2(SLAB_SAMPLES).mean())


CONSTRAINTS = (
    constraint_set_header("test-set", "limits placed around the closed-form answer", ALPHA_BETA)
    + """
[[constraints]]
id = "cord-fail"
organ = "SpinalCord"
metric = "Dmax"
priority = "hard"
limit_gy = {fail}
source = "t"
[[constraints]]
id = "cord-warn"
organ = "SpinalCord"
metric = "D0.03cc"
priority = "hard"
warn_gy = {warn}
limit_gy = {above}
source = "t"
[[constraints]]
id = "cord-pass"
organ = "SpinalCord"
metric = "Dmean"
priority = "soft"
limit_gy = {above}
source = "t"
[[constraints]]
id = "cord-too-big"
organ = "SpinalCord"
metric = "D2000cc"
priority = "soft"
limit_gy = {above}
source = "t"
[[constraints]]
id = "stem-report"
organ = "Brainstem"
metric = "Dmax"
priority = "report"
"""
)


@pytest.fixture(scope="module")
def nelms_case(tmp_path_factory, request) -> Path:
    """A two-course case folder linking (not copying) the third-party Nelms files."""
    testdata = request.getfixturevalue("testdata")
    root = tmp_path_factory.mktemp("nelms_case")
    grids, structures = testdata / "nelms2015" / "dose_grids", testdata / "nelms2015" / "structures"
    for course, dose in (("prior", "Linear_AntPost_3mm_Aligned.dcm"), ("new", "Linear_SupInf_1mm_Aligned.dcm")):
        (root / course).mkdir()
        (root / course / "dose.dcm").symlink_to(grids / dose)
        (root / course / "rs.dcm").symlink_to(structures / "Sphere_10_0.dcm")
    (root / "set.toml").write_text(
        CONSTRAINTS.format(
            fail=round(EXPECTED_DMAX - 5, 2), warn=round(EXPECTED_DMAX - 5, 2), above=round(EXPECTED_DMAX + 5, 2)
        )
    )
    (root / "case.toml").write_text(
        'id = "nelms"\nconstraints = "set.toml"\n'
        '[[courses]]\nname = "prior"\npath = "prior"\nend_date = 2023-01-02\nfractions = 25\n'
        '[[courses]]\nname = "new"\npath = "new"\nstart_date = 2024-03-04\nfractions = 5\n'
        '[structures]\n"Sphere_10_0" = "SpinalCord"\n'
    )
    return root


@pytest.fixture(scope="module")
def report(nelms_case):
    case = load_case(nelms_case / "case.toml")
    return run_check(case, CheckOptions(constraints=str(nelms_case / "set.toml")))


def by_id(report, constraint_id: str) -> ConstraintResult:
    return next(r for r in report.results if r.constraint_id == constraint_id)


def test_cumulative_dmax_matches_closed_form(report):
    result = by_id(report, "cord-fail")
    assert result.value_gy == pytest.approx(EXPECTED_DMAX, rel=0.002)
    assert result.status == "fail"


def test_cumulative_dmean_matches_closed_form(report):
    result = by_id(report, "cord-pass")
    assert result.value_gy == pytest.approx(EXPECTED_DMEAN, rel=0.002)
    assert result.status == "pass"


def test_course_contributions_add_up_and_follow_each_course(report):
    for constraint_id in ("cord-fail", "cord-warn", "cord-pass"):
        result = by_id(report, constraint_id)
        assert sum(result.per_course.values()) == pytest.approx(result.value_gy, rel=1e-9)
    # Dmean splits into each course's own mean EQD2 over the sphere.
    prior = np.maximum(0.0, 10.0 - SLAB_SAMPLES[:, 1])
    mean_prior = float(np.mean(prior * (prior / 25 + 2) / 4))
    assert by_id(report, "cord-pass").per_course["prior"] == pytest.approx(mean_prior, rel=0.01)


def test_warn_band_and_not_evaluable_metrics(report):
    assert by_id(report, "cord-warn").status == "warn"
    too_big = by_id(report, "cord-too-big")
    assert too_big.status == "not_evaluated" and too_big.value_gy is None
    assert "2000 cm3" in too_big.reason
    missing = by_id(report, "stem-report")
    assert missing.status == "not_evaluated" and missing.structure is None


def test_summary_and_exit_code(report):
    assert report.summary.counts == {"pass": 1, "warn": 1, "fail": 1, "not_evaluated": 2, "report": 0}
    assert report.summary.exit_code == 1


def test_header_reports_assumptions(report):
    prior, new = report.courses
    assert (prior.fractions, new.fractions) == (25, 5)
    assert prior.phases[0].fraction_source == "override"
    assert prior.registration == "identity" and new.registration == "reference"
    assert prior.interval_months == pytest.approx((2024 - 2023) * 12 + 2 + 2 / 30.44, abs=0.1)
    assert "none" in report.assumptions["recovery_model"]
    assert {f.id for f in report.flags} >= {"fractions_from_override"}


def test_conservative_mode_bounds_the_registered_sum(nelms_case, report):
    conservative = run_check(
        load_case(nelms_case / "case.toml"), CheckOptions(constraints=str(nelms_case / "set.toml"), conservative=True)
    )
    for constraint_id in ("cord-fail", "cord-warn"):
        registered, bound = by_id(report, constraint_id), by_id(conservative, constraint_id)
        assert bound.value_gy >= registered.value_gy - 1e-6
        assert any("conservative" in note for note in bound.notes)
    assert all(c.registration != "identity" for c in conservative.courses)


def _result(status: str, limit: float | None = 50.0) -> ConstraintResult:
    return ConstraintResult(
        "x",
        "SpinalCord",
        "Cord",
        "Dmax",
        2.0,
        limit,
        None,
        1.0,
        "Gy",
        {},
        {},
        status,
        None,
        "hard",
        "s",
        "source",
        "set",
    )


@pytest.mark.parametrize(
    ("statuses", "options", "expected"),
    [
        (("pass", "report"), CheckOptions(), 0),
        (("pass", "fail"), CheckOptions(), 1),
        (("pass", "warn"), CheckOptions(), 0),
        (("pass", "warn"), CheckOptions(fail_on="warn"), 1),
        (("pass", "not_evaluated"), CheckOptions(), 1),
        (("pass", "not_evaluated"), CheckOptions(allow_missing=True), 0),
    ],
)
def test_exit_code_rules(statuses, options, expected):
    assert exit_code(tuple(_result(s) for s in statuses), options) == expected


def test_report_only_entry_that_cannot_be_evaluated_does_not_fail_the_run():
    report_only = dataclasses.replace(_result("not_evaluated", limit=None), priority="report")
    assert exit_code((_result("pass"), report_only), CheckOptions()) == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 80), st.floats(0, 80), st.floats(0.01, 2)), min_size=1, max_size=40),
    st.floats(0.01, 0.999),
)
def test_conservative_dx_bound_holds_for_any_two_dose_distributions(voxels, fraction):
    """The conservative per-course shares of D<x> add up to at least D<x> of the summed dose."""
    a, b, w = (np.array(column) for column in zip(*voxels))
    metric = parse_metric(f"D{fraction * w.sum():.9f}cc")

    def dvh(doses):
        return Dvh(doses, w, float(w.sum()), float(w.sum()))

    total = evaluate(dvh(a + b), metric).value
    bound = conservative_value(dvh(a), metric, 2).value + conservative_value(dvh(b), metric, 2).value
    assert total <= bound + 1e-9


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_cli_json_junit_csv_and_exit_codes(nelms_case, tmp_path):
    case = str(nelms_case / "case.toml")
    result = run_cli("check", case, "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["schema"] == "reirrad.check.v1"
    assert data["summary"]["exit_code"] == 1 and data["summary"]["fail"] == 1
    assert {c["name"] for c in data["courses"]} == {"prior", "new"}
    assert all(len(f["sha256"]) == 64 for c in data["courses"] for f in c["files"])

    junit = run_cli("check", case, "--format", "junit", "--allow-missing")
    suite = ET.fromstring(junit.stdout)
    assert suite.tag == "testsuite" and suite.get("tests") == "5"
    assert suite.get("failures") == "1" and suite.get("skipped") == "2"
    failure = suite.find(".//testcase[@name='cord-fail: Dmax']/failure")
    assert failure is not None and "SpinalCord" in failure.get("message")

    rows = list(csv.DictReader(io.StringIO(run_cli("check", case, "--format", "csv").stdout)))
    assert [r["id"] for r in rows] == ["cord-fail", "cord-warn", "cord-pass", "cord-too-big", "stem-report"]
    assert float(rows[0]["prior_gy"]) + float(rows[0]["new_gy"]) == pytest.approx(float(rows[0]["value_gy"]), abs=0.01)

    output = tmp_path / "report.html"
    written = run_cli("check", case, "--format", "html", "--output", str(output))
    assert written.stdout == "" and written.returncode == 1
    assert "Cumulative EQD2 constraints" in output.read_text()


def test_cli_fail_on_warn_and_allow_missing(nelms_case, tmp_path):
    lenient = tmp_path / "set.toml"
    text = (nelms_case / "set.toml").read_text()
    lenient.write_text(
        text.replace(f"limit_gy = {round(EXPECTED_DMAX - 5, 2)}", f"limit_gy = {round(EXPECTED_DMAX + 5, 2)}")
    )
    case = str(nelms_case / "case.toml")
    assert run_cli("check", case, "--constraints", str(lenient)).returncode == 1  # D2000cc not evaluated
    assert run_cli("check", case, "--constraints", str(lenient), "--allow-missing").returncode == 0
    assert run_cli("check", case, "--constraints", str(lenient), "--allow-missing", "--fail-on", "warn").returncode == 1


def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "case.toml"
    bad.write_text('id = "x"\n[[courses]]\nname = "new"\npath = "missing"\n')
    output = tmp_path / "out.json"
    result = run_cli("check", str(bad), "--format", "json", "--output", str(output))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "case.toml" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()
    assert run_cli("check", "--prior", str(tmp_path)).returncode == 2


def test_cli_batch_audit_json_junit_csv_and_exit_codes(nelms_case, tmp_path):
    case = str(nelms_case / "case.toml")
    twin = nelms_case / "case-2.toml"  # another case id: a batch refuses two cases with one id
    twin.write_text((nelms_case / "case.toml").read_text().replace('id = "nelms"', 'id = "nelms-2"'))
    broken = tmp_path / "broken.toml"
    broken.write_text("id = \n")
    batch = run_cli("check", case, str(twin), "--format", "json")
    data = json.loads(batch.stdout)
    assert data["schema"] == "reirrad.batch.v1" and len(data["cases"]) == 2
    assert data["summary"]["exit_code"] == batch.returncode == 1

    with_error = run_cli("check", case, str(broken), "--format", "junit")
    assert with_error.returncode == 2 and "broken.toml" in with_error.stderr
    suites = ET.fromstring(with_error.stdout)
    assert suites.tag == "testsuites" and len(suites) == 2
    assert suites[1].get("errors") == "1" and suites[1].find(".//error") is not None

    rows = list(csv.DictReader(io.StringIO(run_cli("check", case, str(twin), "--format", "csv").stdout)))
    assert len(rows) == 10 and {r["case"] for r in rows} == {"nelms", "nelms-2"}
    assert run_cli("check", case, str(twin), "--format", "html").returncode == 2


def test_constraint_set_default_recovery_model_is_shown_beside_undiscounted_limits(nelms_case, report, tmp_path):
    """simple-25-50 (Doi 2021) gives the spinal cord r = 0.5 after 12 months (the interval here is
    14 months). The test set's limits state no dose basis, so they are judged on the undiscounted
    sum; the value with the prior course's share halved (Dmean adds linearly) is shown beside it.
    An entry belonging to the model is judged on that discounted value."""
    recovering = tmp_path / "set.toml"
    recovering.write_text(
        (nelms_case / "set.toml").read_text().replace('recovery_model = "none"', 'recovery_model = "simple-25-50"')
    )
    discounted = run_check(load_case(nelms_case / "case.toml"), CheckOptions(constraints=str(recovering)))
    before, after = by_id(report, "cord-pass"), by_id(discounted, "cord-pass")
    assert after.value_gy == pytest.approx(before.value_gy, rel=1e-12) and after.recovery["prior"] == 0.0
    expected = 0.5 * before.per_course["prior"] + before.per_course["new"]
    assert after.discounted.recovery_model == "simple-25-50" and after.discounted.recovery["prior"] == 0.5
    assert after.discounted.value == pytest.approx(expected, rel=1e-9)
    assert "simple-25-50" in discounted.assumptions["recovery_model"]

    own = tmp_path / "own.toml"
    own.write_text(
        recovering.read_text().replace('id = "cord-pass"\n', 'id = "cord-pass"\ndose_basis = "simple-25-50"\n')
    )
    judged = by_id(run_check(load_case(nelms_case / "case.toml"), CheckOptions(constraints=str(own))), "cord-pass")
    assert judged.recovery["prior"] == 0.5 and judged.discounted is None and judged.dose_basis == "simple-25-50"
    assert judged.value_gy == pytest.approx(expected, rel=1e-9)
    assert judged.per_course["prior"] == pytest.approx(0.5 * before.per_course["prior"], rel=1e-9)
