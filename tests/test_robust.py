"""Robust evaluation under registration uncertainty (reirrad.robust): the search, the displaced map's
direction, a closed-form worst case through `reirrad check`, and the sample SBRT case."""

from __future__ import annotations

import dataclasses
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


# ------------------------------------------------------------------ the fast search gives the search's answer


def test_shifted_interpolation_matches_trilinear():
    """The lattice interpolation of shifted samples (each sample's cell carried along by the shift)
    gives reirrad.dvh.trilinear's values, shifts of either sign and across cells included."""
    from reirrad.dvh import trilinear
    from reirrad.robust import _trilinear_shifted

    rng = np.random.default_rng(3)
    dose = rng.random((12, 14, 16)) * 70.0
    registered = rng.random((5000, 3)) * [6.0, 8.0, 10.0] + 3.0
    cell = np.floor(registered)
    base = cell.astype(np.int64) @ np.array([14 * 16, 16, 1])
    for delta in ([0.0, 0.0, 0.0], [0.7, -0.4, 0.93], [-1.6, 1.2, -0.05], [1.0, -1.0, 0.5]):
        fraction = np.ascontiguousarray((registered - cell).T)
        found = _trilinear_shifted(dose, base, fraction, np.array(delta), np.empty(len(base)))
        np.testing.assert_allclose(found, trilinear(dose, registered + delta), rtol=0, atol=1e-12)


def test_dose_bound_holds_at_every_shift_within_the_radius():
    """The dilated-dose bound of a phase is at least the interpolated dose of every sample at any
    shift within the radius (random shifts, samples up to the grid's edges)."""
    from reirrad.accumulate import PhaseDose
    from reirrad.grid import Grid
    from reirrad.robust import _AffinePhase, _dose_at

    rng = np.random.default_rng(4)
    grid = Grid((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (2.5, 3.0, 2.0), (9, 10, 11))
    dose = rng.random(grid.shape) * 60.0
    phase = PhaseDose("p", grid, dose, 30, "plan", None, float(dose.max()), (), None)
    points = rng.random((3000, 3)) * [20.0, 27.0, 20.0]
    to_index = np.linalg.inv(grid.affine)
    registered = apply(to_index, points)
    bounded = _AffinePhase.of(phase, to_index, registered, np.ones(len(points), dtype=bool))
    upper = bounded.upper_gy(3.0, {})
    for _ in range(40):
        direction = rng.normal(size=3)
        shift = 3.0 * rng.random() ** (1 / 3) * direction / np.linalg.norm(direction)
        covered = np.ones(len(points), dtype=bool)
        assert np.all(_dose_at(dose, registered + to_index[:3, :3] @ shift, covered) <= upper)
    assert np.mean(upper < dose.max()) > 0.1  # a bound, not the grid's maximum everywhere


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def test_samples_set_aside_change_no_worst_case(slope_case, monkeypatch):
    """Dmax and Dx searched on the samples that can reach the registered value give every result the
    worst case (value and shift) of the search over every sample, and do set samples aside."""
    import reirrad.robust as robust

    constraints = slope_case.parent / "hot.toml"
    constraints.write_text(
        constraint_set_header("hot", "cord hot end", ALPHA_BETA)
        + "".join(
            f'\n[[constraints]]\nid = "cord-{m.lower().replace("%", "pct")}"\norgan = "SpinalCord"\nmetric = "{m}"\n'
            f'priority = "hard"\nlimit_gy = 90.0\nsource = "t"\n'
            for m in ("Dmax", "D0.03cc", "D0.5cc", "D2%", "Dmean")
        )
    )
    case = load_case(slope_case)
    options = CheckOptions(
        constraints=str(constraints), registration_uncertainty_mm=3.0, registration_uncertainty_deg=2.0
    )
    kept: list[float] = []
    pruned = robust._Objective.pruned

    def spy(self, uncertainty, registered_gy):
        out = pruned(self, uncertainty, registered_gy)
        if out.kept is not None:
            kept.append(len(out.kept.points_mm) / len(self.moved.points_mm))
        return out

    monkeypatch.setattr(robust._Objective, "pruned", lambda self, uncertainty, registered_gy: self)
    every = run_check(case, options)
    monkeypatch.setattr(robust._Objective, "pruned", spy)
    for margin in (robust.PRUNE_MARGIN, 0.0, -0.02):  # narrower margins set more aside: each branch of the proof
        kept.clear()
        monkeypatch.setattr(robust, "PRUNE_MARGIN", margin)
        fast = run_check(case, options)
        assert len(kept) >= 3 and max(kept) < 1.0  # Dmax and hot-end Dx; Dmean searches every sample
        for found, expected in zip(fast.results, every.results, strict=True):
            assert found.worst_case_gy is not None and expected.worst_case_gy is not None
            assert found.worst_case_gy == pytest.approx(expected.worst_case_gy, rel=1e-12)
            assert found.worst_shift_mm == pytest.approx(expected.worst_shift_mm, abs=1e-9)
            assert found.worst_rotation_deg == pytest.approx(expected.worst_rotation_deg, abs=1e-9)
            assert found.notes == expected.notes
    assert min(kept) < 0.7


# ------------------------------------------------------------------ through a deformable registration


def _dmax_set(tmp_path: Path, organs: dict[str, str]) -> str:
    """A constraint set of Dmax limits (119 Gy) on ``organs`` (id -> organ), its path as text."""
    path = tmp_path / "set.toml"
    path.write_text(
        constraint_set_header("sbrt", "Dmax", 2.0)
        + "".join(
            f'\n[[constraints]]\nid = "{name}"\norgan = "{organ}"\nmetric = "Dmax"\npriority = "hard"\n'
            f'limit_gy = 119.0\nsource = "t"\n'
            for name, organ in organs.items()
        )
    )
    return str(path)


def test_uncertainty_through_a_deformable_registration(tmp_path):
    """A deformable REG that is one uniform shift gives the worst cases of the equivalent rigid REG
    (the search composes each shift with the field); a search that leaves the field is refused."""
    from tests.test_deformable import sbrt_case

    constraints = _dmax_set(tmp_path, {"cord": "SpinalCord", "carotid": "A_Carotid_L"})
    options = CheckOptions(constraints=constraints, registration_uncertainty_mm=3.0, accept_partial_coverage=True)
    rigid = run_check(load_case(sbrt_case(tmp_path, "rigid")), options)
    field = run_check(load_case(sbrt_case(tmp_path, "deformable")), options)
    for found, expected in zip(field.results, rigid.results, strict=True):
        assert found.value_gy == pytest.approx(expected.value_gy, abs=1e-6)
        assert found.worst_case_gy == pytest.approx(expected.worst_case_gy, abs=1e-6)
        assert (found.worst_case_gy or 0.0) > (found.value_gy or math.inf)
        assert found.worst_shift_mm == pytest.approx(expected.worst_shift_mm, abs=1e-6)
    # a field ending at x = +3 mm covers the right optic nerve (x -16 to -2 mm), not its 10 mm search
    case = load_case(sbrt_case(tmp_path / "partial", "deformable", partial=True))
    nerve = CheckOptions(constraints=_dmax_set(tmp_path, {"nerve": "OpticNrv_R"}))
    assert run_check(case, nerve).result("nerve").value_gy is not None
    with pytest.raises(InputError, match=r"shifted by \(\+10\.0, .* of OpticNrv_R .* outside the deformation field"):
        run_check(case, dataclasses.replace(nerve, registration_uncertainty_mm=10.0))
