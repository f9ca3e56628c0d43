"""A structure reaching beyond the new course's dose grid still counts the prior course's dose there.

Stereotactic re-irradiation plans often have a dose grid cropped around the target. The prior
course's dose outside that grid must still be summed: the evaluation grid grows by whole voxels
over the evaluated structures wherever another course has dose, and the new course gives 0 Gy
beyond its own grid. That gap is accepted only explicitly (``accept_partial_coverage``; each
affected result then says so); without it a constrained organ partly outside a course's grid is
not evaluated.

Closed form: the prior dose is 30 + 0.5 z Gy (25 fractions) on a grid spanning z -40..40 mm,
the new dose 10 Gy (5 fractions) on a grid spanning z -10..10 mm. The cord is a cylinder of
radius 5 mm contoured every 2 mm from z = -30 to 30 mm, so with half-spacing end caps it reaches
z = 31 mm, where the prior dose is 45.5 Gy and the new course gives nothing: cumulative
Dmax = EQD2(45.5 Gy, 25 fx) at alpha/beta 2 = 43.4525 Gy. Summed on the new course's grid alone
it would be about 40 Gy and pass the 42 Gy limit used here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from check_helpers import constraint_set_header
from sum_helpers import rigid, write_reg

from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from tests import dicom_synthetic as syn

ALPHA_BETA = 2.0
LIMIT_GY = 42.0
EXPECTED_DMAX = 45.5 * (45.5 / 25 + ALPHA_BETA) / (2 + ALPHA_BETA)
SHIFT_MM = np.array([100.0, 0.0, 0.0])  # prior frame = reference frame + this, in the REG variant

CONSTRAINTS = (
    constraint_set_header("coverage-test", "one cord limit below the closed-form answer", ALPHA_BETA)
    + f"""
[[constraints]]
id = "cord"
organ = "SpinalCord"
metric = "Dmax"
priority = "hard"
limit_gy = {LIMIT_GY}
source = "t"
"""
)


def _dose(z_mm: np.ndarray, dose_gy, ipp, frame: str, plan) -> object:
    """An RTDOSE of 21 x 21 voxels of 2 mm per plane, planes at ``z_mm``, dose a function of z."""
    pixels = np.broadcast_to(np.asarray(dose_gy(z_mm))[:, None, None], (len(z_mm), 21, 21))
    return syn.rtdose(
        np.rint(pixels / 1e-4).astype(np.uint32),
        ipp=ipp,
        offsets=z_mm - z_mm[0],
        pixel_spacing=(2.0, 2.0),
        scaling=1e-4,
        frame_of_reference=frame,
        plan_uid=plan.SOPInstanceUID,
    )


def _course(
    folder, fractions: int, z_mm: np.ndarray, dose_gy, offset_mm: np.ndarray, frame: str, prescription_gy: float
) -> None:
    angles = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
    cord = [
        [(5 * np.cos(a) + offset_mm[0], 5 * np.sin(a) + offset_mm[1], z + offset_mm[2]) for a in angles]
        for z in np.arange(-30.0, 30.5, 2.0)
    ]
    structures = syn.rtstruct({"Cord": cord}, frame_of_reference=frame)
    plan = syn.rtplan(
        [(fractions, [(1, 1.0, 100.0)])],
        frame_of_reference=frame,
        structure_set_uid=structures.SOPInstanceUID,
        prescription_gy=prescription_gy,
    )
    ipp = (-20.0 + offset_mm[0], -20.0 + offset_mm[1], z_mm[0] + offset_mm[2])
    syn.write(structures, folder / "rs.dcm")
    syn.write(plan, folder / "rp.dcm")
    syn.write(_dose(z_mm, dose_gy, ipp, frame, plan), folder / "rd.dcm")


@pytest.fixture(params=["same frame", "registered"])
def case_file(tmp_path, request):
    registered = request.param == "registered"
    prior_frame = "9.9.9" if registered else "1.2.3.4"
    _course(
        tmp_path / "prior",
        25,
        np.arange(-40.0, 40.5, 2.0),
        lambda z: 30 + 0.5 * z,
        SHIFT_MM if registered else np.zeros(3),
        prior_frame,
        50.0,
    )
    _course(
        tmp_path / "new", 5, np.arange(-10.0, 10.5, 2.0), lambda z: np.full_like(z, 10.0), np.zeros(3), "1.2.3.4", 10.0
    )
    if registered:  # the REG maps prior-frame points into the new (reference) frame
        write_reg(
            tmp_path / "new" / "reg.dcm", "1.2.3.4", {prior_frame: rigid(0.0, 2, -SHIFT_MM)}, patient_id="synthetic"
        )
    (tmp_path / "set.toml").write_text(CONSTRAINTS)
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "cropped-grid"\nconstraints = "set.toml"\n'
        '[[courses]]\nname = "prior"\npath = "prior"\nend_date = 2023-01-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nstart_date = 2024-03-04\n'
    )
    return path


ACCEPT_GAP = CheckOptions(accept_partial_coverage=True)


def test_prior_dose_beyond_the_new_grid_is_counted(case_file):
    report = run_check(load_case(case_file), ACCEPT_GAP)
    (result,) = report.results
    assert result.structure == "Cord"
    assert result.value_gy == pytest.approx(EXPECTED_DMAX, rel=1e-3)
    assert result.per_course["prior"] == pytest.approx(EXPECTED_DMAX, rel=1e-3)
    assert result.per_course["new"] == pytest.approx(0.0, abs=1e-9)
    assert result.status == "fail" and report.summary.exit_code == 1


def test_the_cropped_grid_is_reported(case_file):
    report = run_check(load_case(case_file), ACCEPT_GAP)
    (result,) = report.results
    (note,) = [n for n in result.notes if "course 'new' dose grid" in n]
    # the new grid's voxel centres span z -10..10 mm: samples nearest to them cover z -11..11 of -31..31
    outside = float(re.match(r"([\d.]+) %", note).group(1))
    assert outside == pytest.approx(100 * (1 - 22 / 62), abs=0.5)
    assert not any("course 'prior'" in n for n in result.notes)
    assert "grown by whole voxels" in report.assumptions["reference_grid"]
    assert "organ_outside_dose_grid" in {flag.id for flag in report.flags}


def test_the_gap_makes_the_limit_not_evaluated_unless_accepted(case_file):
    # the new course's dose over 64.5 % of the cord is unknown: no verdict, exit 1
    report = run_check(load_case(case_file), CheckOptions())
    (result,) = report.results
    assert (result.status, result.value_gy, report.summary.exit_code) == ("not_evaluated", None, 1)
    outside = re.match(r"([\d.]+) % of the structure lies outside course 'new' dose grid", result.reason)
    assert float(outside.group(1)) == pytest.approx(100 * (1 - 22 / 62), abs=0.5)
    assert "--accept-partial-coverage" in result.reason and "course 'prior'" not in result.reason
    # the case file's key accepts it like the option does
    case_file.write_text(
        case_file.read_text().replace(
            'constraints = "set.toml"\n', 'constraints = "set.toml"\naccept_partial_coverage = true\n'
        )
    )
    accepted = run_check(load_case(case_file), CheckOptions())
    assert accepted.results[0].value_gy == pytest.approx(EXPECTED_DMAX, rel=1e-3)
