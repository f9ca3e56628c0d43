"""Robust evaluation under registration uncertainty (reirrad.robust): the search, the displaced map's
direction, a closed-form worst case through `reirrad check`, and the sample SBRT case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from check_helpers import constraint_set_header
from typer.testing import CliRunner

from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from reirrad.cli import _register, app
from reirrad.eqd2 import eqd2_gy
from reirrad.errors import InputError, OptionError
from reirrad.mapping import RigidMap
from reirrad.robust import (
    ShiftedMap,
    Uncertainty,
    cube_directions,
    parse_uncertainty,
    worst_case,
)
from tests import dicom_synthetic as syn
from tests.uniform_case import cylinder, write_case

_register()
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"

# The analytic case: a prior dose rising linearly along the in-plane direction U (GRADIENT Gy/mm),
# a uniform new dose, and a cord-like cylinder (radius 5 mm along z) at x = CORD_X on the slope.
U = np.array([math.cos(math.radians(30.0)), math.sin(math.radians(30.0)), 0.0])  # between cube directions
GRADIENT, BASE_GY, PRIOR_FX = 0.5, 50.0, 30
NEW_GY, NEW_FX = 20.0, 5
CORD_X, CORD_RADIUS = 10.0, 5.0
ALPHA_BETA = 2.0


def prior_physical_max_gy(shift_mm: np.ndarray) -> float:
    """Closed form: the prior dose's maximum over the cylinder, read at p + shift. The contour has a
    vertex every 10 degrees, so one lies exactly in direction U (30 degrees)."""
    return BASE_GY + GRADIENT * (U @ np.array([CORD_X, 0.0, 0.0]) + CORD_RADIUS + U @ shift_mm)


def cumulative_dmax_gy(shift_mm: np.ndarray) -> float:
    """Closed form of the cumulative EQD2 Dmax (the new dose is uniform, EQD2 is monotone)."""
    prior = float(eqd2_gy(np.array(prior_physical_max_gy(shift_mm)), PRIOR_FX, ALPHA_BETA))
    return prior + float(eqd2_gy(np.array(NEW_GY), NEW_FX, ALPHA_BETA))


def write_course(folder: Path, dose_gy: np.ndarray, fractions: int, prescription_gy: float) -> None:
    """RTSTRUCT (the cord), RTPLAN and a PLAN RTDOSE of ``dose_gy`` (z, y, x) on a 2 mm grid from
    (-40, -40, -20) mm."""
    rtstruct = syn.rtstruct({"SpinalCord": cylinder(x_mm=CORD_X, radius_mm=CORD_RADIUS)})
    rtplan = syn.rtplan(
        [(fractions, [(1, prescription_gy / fractions, 100.0)])],
        prescription_gy=prescription_gy,
        structure_set_uid=rtstruct.SOPInstanceUID,
    )
    frames = dose_gy.shape[0]
    rtdose = syn.rtdose(
        np.rint(dose_gy / 1e-4).astype(np.uint32),
        ipp=(-40.0, -40.0, -20.0),
        offsets=np.arange(frames) * 2.0,
        pixel_spacing=(2.0, 2.0),
        scaling=1e-4,
        plan_uid=rtplan.SOPInstanceUID,
    )
    for ds, name in ((rtstruct, "rs.dcm"), (rtplan, "rp.dcm"), (rtdose, "rd.dcm")):
        syn.write(ds, folder / name)


@pytest.fixture(scope="module")
def slope_case(tmp_path_factory) -> Path:
    """The analytic case, judged against a cord Dmax limit between the registered and the worst
    value at 3 mm."""
    root = tmp_path_factory.mktemp("slope")
    _, y, x = np.meshgrid(
        np.arange(21) * 2.0 - 20,
        np.arange(41) * 2.0 - 40,
        np.arange(41) * 2.0 - 40,
        indexing="ij",
    )
    write_course(root / "prior", BASE_GY + GRADIENT * (U[0] * x + U[1] * y), PRIOR_FX, 60.0)
    write_course(root / "new", np.full((21, 41, 41), NEW_GY), NEW_FX, NEW_GY)
    limit = (cumulative_dmax_gy(np.zeros(3)) + cumulative_dmax_gy(3.0 * U)) / 2
    (root / "set.toml").write_text(
        constraint_set_header("slope", "cord on a slope", ALPHA_BETA)
        + f"""
[[constraints]]
id = "cord-dmax"
organ = "SpinalCord"
metric = "Dmax"
priority = "hard"
limit_gy = {limit}
source = "t"
"""
    )
    return write_case(root / "case.toml", "slope", head='constraints = "set.toml"\n')


# ------------------------------------------------------------------ the search alone


def test_cube_directions_are_the_26_unit_vectors_of_the_cube():
    directions = cube_directions()
    assert directions.shape == (26, 3)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0)
    assert len({tuple(np.sign(d).astype(int)) for d in directions}) == 26


def test_worst_case_of_a_linear_field_is_along_its_gradient():
    gradient = 2.0 * np.array([0.8, -0.5, 0.33])
    found = worst_case(lambda p: 10.0 + gradient @ p[:3], 3.0)
    exact = 10.0 + 3.0 * np.linalg.norm(gradient)
    assert found.value == pytest.approx(exact, rel=2e-4)
    angle = math.degrees(math.acos(found.shift_mm @ gradient / (3.0 * np.linalg.norm(gradient))))
    assert angle < 3.0
    assert np.linalg.norm(found.shift_mm) == pytest.approx(3.0)
    assert len(found.values) == len(found.positions) == 27 + 16 + 2  # coarse, compass, inner radii (one shared)


def test_worst_case_finds_a_hot_spot_inside_the_sphere():
    """A peak 2 mm from the registered position along x (a hot spot the sphere overshoots): the
    inner radii along the worst direction catch it."""
    found = worst_case(lambda p: -np.sum((p[:3] - [2.0, 0.0, 0.0]) ** 2), 3.0)
    np.testing.assert_allclose(found.shift_mm, [2.0, 0.0, 0.0], atol=1e-9)
    assert found.value == pytest.approx(0.0)


def test_registered_position_worst_tries_half_the_radius():
    found = worst_case(lambda p: -abs(np.linalg.norm(p[:3]) - 1.5), 3.0)
    assert np.linalg.norm(found.shift_mm) == pytest.approx(1.5)
    assert found.value == pytest.approx(0.0)


def test_rotations_are_searched_at_the_worst_shift():
    found = worst_case(lambda p: p[0] + p[5], 2.0, degrees=4.0)
    assert found.shift_mm == pytest.approx([2.0, 0.0, 0.0], abs=1e-6)
    assert found.rotation_deg == pytest.approx([0.0, 0.0, 4.0])
    assert found.value == pytest.approx(6.0)


def test_refinement_changes_the_cord_worst_case_by_less_than_one_percent():
    """(b) the analytic cord's closed form: 27 positions find the worst case within 1 % (the
    nearest cube direction is 15 degrees off the gradient), the refinement within 0.01 %."""

    def value_at(p):
        return cumulative_dmax_gy(p[:3])

    exact = cumulative_dmax_gy(3.0 * U)
    coarse, refined = worst_case(value_at, 3.0, refine=False), worst_case(value_at, 3.0)
    assert len(coarse.values) == 27
    assert coarse.value < refined.value <= exact + 1e-9
    assert (refined.value - coarse.value) / refined.value < 0.01
    assert (exact - refined.value) / exact < 1e-4
    assert exact - coarse.value > 10 * (exact - refined.value)


# ------------------------------------------------------------------ the displaced map


def test_shifted_map_reads_the_prior_dose_at_p_plus_s():
    """A position s maps the reference point p to base(p + s): the anatomy is displaced by +s over
    the prior dose."""
    base = RigidMap(np.array([[1, 0, 0, 5.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "REG")
    shifted = ShiftedMap(base, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(shifted(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])), [[6, 2, 3], [7, 3, 4]])
    assert "shifted by (+1.0, +2.0, +3.0) mm" in shifted.label


def test_shifted_map_rotates_about_the_centroid():
    centre = np.array([10.0, 0.0, 0.0])
    turned = ShiftedMap(RigidMap(None), np.zeros(3), np.array([0.0, 0.0, 90.0]), centre)
    np.testing.assert_allclose(
        turned(np.array([centre, centre + [1.0, 0.0, 0.0]])),
        [centre, centre + [0, 1.0, 0]],
        atol=1e-12,
    )


# ------------------------------------------------------------------ options and case file


def test_uncertainty_options_are_parsed_and_refused():
    assert parse_uncertainty("3") == Uncertainty(3.0)
    assert parse_uncertainty("3,2").text == "3 mm and 2 degrees"
    for bad in ("3,a", "", "1,2,3", "0", "-1", "25", "3,20", "nan"):
        with pytest.raises(OptionError):
            parse_uncertainty(bad)
    with pytest.raises(OptionError, match="already an upper bound"):
        CheckOptions(conservative=True, registration_uncertainty_mm=3.0)


def test_case_file_keys(tmp_path):
    path = tmp_path / "case.toml"
    (tmp_path / "prior").mkdir()
    (tmp_path / "new").mkdir()
    write_case(
        path,
        head="registration_uncertainty_mm = 2\nregistration_uncertainty_deg = 1\nrobust = true\n",
    )
    case = load_case(path)
    assert (
        case.registration_uncertainty_mm,
        case.registration_uncertainty_deg,
        case.robust,
    ) == (2.0, 1.0, True)
    write_case(path, head="robust = true\n")
    with pytest.raises(InputError, match="robust: needs registration_uncertainty_mm"):
        load_case(path)
    write_case(path, head="registration_uncertainty_mm = -2\n")
    with pytest.raises(InputError, match="registration_uncertainty_mm: must be a number above 0"):
        load_case(path)


# ------------------------------------------------------------------ the closed-form worst case through a check


def test_cord_on_a_slope_matches_the_closed_form(slope_case):
    """(a) registered and worst-case Dmax and the worst shift's direction against the closed form."""
    nominal = run_check(load_case(slope_case)).result("cord-dmax")
    assert nominal.worst_case_gy is None and nominal.worst_shift_mm is None
    report = run_check(load_case(slope_case), CheckOptions(registration_uncertainty_mm=3.0))
    result = report.result("cord-dmax")
    assert result.value_gy == pytest.approx(cumulative_dmax_gy(np.zeros(3)), abs=2e-3)
    assert result.value_gy == nominal.value_gy
    assert result.worst_case_gy == pytest.approx(cumulative_dmax_gy(3.0 * U), abs=3e-3)
    shift = np.array(result.worst_shift_mm)
    assert np.linalg.norm(shift) == pytest.approx(3.0)
    assert math.degrees(math.acos(shift @ U / 3.0)) < 3.0
    assert result.status == "pass"  # judged as registered
    flags = [f for f in report.flags if f.id == "registration_uncertainty_fail"]
    assert len(flags) == 1 and "SpinalCord (SpinalCord) Dmax" in flags[0].message and "(fail)" in flags[0].message
    assert "registration_uncertainty" in report.assumptions


def test_robust_judges_the_worst_case_and_sets_the_exit_code(slope_case):
    runner = CliRunner()
    plain = runner.invoke(app, ["check", str(slope_case), "--registration-uncertainty", "3", "-f", "json"])
    robust = runner.invoke(
        app,
        [
            "check",
            str(slope_case),
            "--registration-uncertainty",
            "3",
            "--robust",
            "-f",
            "json",
        ],
    )
    assert (plain.exit_code, robust.exit_code) == (0, 1), plain.output + robust.output
    plain_row, robust_row = (json.loads(r.stdout)["results"][0] for r in (plain, robust))
    assert (plain_row["status"], robust_row["status"]) == ("pass", "fail")
    assert plain_row["value_gy"] == robust_row["value_gy"]
    assert robust_row["worst_case_gy"] == pytest.approx(cumulative_dmax_gy(3.0 * U), abs=3e-3)
    assert len(robust_row["worst_shift_mm"]) == 3 and robust_row["worst_rotation_deg"] is None


def test_robust_from_the_case_file(slope_case):
    case = slope_case.parent / "robust.toml"
    case.write_text("registration_uncertainty_mm = 3\nrobust = true\n" + slope_case.read_text())
    assert run_check(load_case(case)).result("cord-dmax").status == "fail"


def test_cli_refuses_inconsistent_uncertainty_options(slope_case):
    runner = CliRunner()
    for args in (
        ["--robust"],
        ["--registration-uncertainty", "3,x"],
        ["--registration-uncertainty", "3", "--conservative"],
    ):
        result = runner.invoke(app, ["check", str(slope_case), *args])
        assert result.exit_code == 2, (args, result.output)


def test_sample_sbrt_case_round_trip(tmp_path):
    """(c) the sample SBRT case (cord and left carotid): nominal values unchanged, worst case >= nominal,
    verdicts as registered without --robust and on the worst case with it."""
    constraints = tmp_path / "set.toml"
    constraints.write_text(
        constraint_set_header("sbrt", "cord and carotid", 2.0)
        + """
[[constraints]]
id = "cord"
organ = "SpinalCord"
metric = "Dmax"
priority = "hard"
warn_gy = 60.0
limit_gy = 67.75
source = "t"
[[constraints]]
id = "carotid"
organ = "A_Carotid_L"
metric = "Dmax"
priority = "hard"
limit_gy = 119.0
source = "t"
"""
    )
    runner = CliRunner()
    common = ["check", str(SAMPLE), "--constraints", str(constraints), "-f", "json"]
    plain = runner.invoke(app, common)
    searched = runner.invoke(
        app,
        [
            *common,
            "--registration-uncertainty",
            "3",
            "--robust",
            "--accept-partial-coverage",
        ],
    )
    assert (plain.exit_code, searched.exit_code) == (
        1,
        1,
    )  # the carotid fails as registered already
    before = {r["id"]: r for r in json.loads(plain.stdout)["results"]}
    after = {r["id"]: r for r in json.loads(searched.stdout)["results"]}
    for key in ("cord", "carotid"):
        assert after[key]["value_gy"] == before[key]["value_gy"]
        assert before[key]["worst_case_gy"] is None
        assert after[key]["worst_case_gy"] > after[key]["value_gy"]
    assert (before["cord"]["status"], after["cord"]["status"]) == ("warn", "fail")
    assert after["carotid"]["status"] == "fail"


def test_worst_case_column_in_table_csv_and_html(slope_case):
    import io

    from rich.console import Console

    from reirrad.report import number_text
    from reirrad.report.console import print_report
    from reirrad.report.html import to_html
    from reirrad.report.machine import to_csv

    plain = run_check(load_case(slope_case))
    searched = run_check(load_case(slope_case), CheckOptions(registration_uncertainty_mm=3.0))
    worst = number_text(searched.result("cord-dmax").worst_case_gy)
    for report, shown in ((plain, False), (searched, True)):
        console = Console(file=io.StringIO(), width=200, record=True)
        print_report(report, console)
        text, html = console.export_text(), to_html(report)
        assert ("Worst case" in text, "<th>Worst case</th>" in html) == (shown, shown)
        assert (worst in text, worst in html) == (shown, shown)
    header, row = to_csv(searched).splitlines()[:2]
    assert dict(zip(header.split(","), row.split(",")))["worst_case_gy"] == worst


def test_the_python_api_takes_the_uncertainty_and_robust(slope_case):
    """reirrad.check(..., registration_uncertainty_mm=, robust=) gives what CheckOptions gives
    (a TypeError for unknown keywords before)."""
    import reirrad

    expected = run_check(load_case(slope_case), CheckOptions(registration_uncertainty_mm=3.0, robust=True))
    found = reirrad.check(slope_case, registration_uncertainty_mm=3.0, robust=True)
    assert [(r.constraint_id, r.status, r.value_gy, r.worst_case_gy) for r in found.results] == [
        (r.constraint_id, r.status, r.value_gy, r.worst_case_gy) for r in expected.results
    ]
    assert any(r.worst_case_gy is not None and r.worst_case_gy > r.value_gy for r in found.results)
