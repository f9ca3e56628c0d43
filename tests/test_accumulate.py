"""Phase resolution, mapping onto the reference grid and cumulative EQD2 with closed-form answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sum_helpers import axial_grid, rigid, voxel_centres, write_reg

from reirrad.accumulate import (
    course_from_discovery,
    cumulative_eqd2_at,
    cumulative_eqd2_gy,
    map_courses,
    months_between,
    phase_indices,
    resolve_phase,
)
from reirrad.case import CaseSpec, CourseSpec
from reirrad.dicom.discover import Course, Phase
from reirrad.dicom.dose import DoseGrid, read_dose
from reirrad.dicom.plan import Beam, FractionGroup, Plan
from reirrad.eqd2 import recovery_model
from reirrad.errors import Hint, InputError, Remedy
from reirrad.mapping import RigidMap

FRAME = "1.2.826.0.1.3680043.8.498.40"
GRID = axial_grid((-10, -10, -10), (2.0, 2.0, 2.0), (6, 8, 10), FRAME)
HINT = Hint(Remedy.FRACTIONS, "prior")  # "set fractions = N for course 'prior' in the case file"


def dose(values, summation="PLAN", plan_uid="1.2.3.9", beam=None, group=None, grid=GRID, dose_type="PHYSICAL"):
    array = np.broadcast_to(np.asarray(values, float), grid.shape).copy()
    return DoseGrid(
        Path(f"/virtual/{summation}{beam or ''}.dcm"),
        grid,
        array,
        summation,
        dose_type,
        "1.2.3.100",
        plan_uid,
        group,
        beam,
    )


def plan(*groups, uid="1.2.3.9", prescription=None):
    return Plan(Path("/virtual/rp.dcm"), uid, "PLAN1", FRAME, None, prescription, tuple(groups))


def group(number, fractions, beams=(1, 2)):
    return FractionGroup(number, fractions, tuple(Beam(b, f"B{b}", 100.0, None) for b in beams), None, None, None)


def eqd2_closed_form(total_gy, fractions, alpha_beta):
    return total_gy * (total_gy / fractions + alpha_beta) / (2 + alpha_beta)


# --- phase resolution -------------------------------------------------------------------------


def test_plan_dose_as_is_with_plan_fractions():
    phase = resolve_phase(plan(group(1, 25), prescription=50.0), [dose(50.0)], None, HINT)
    assert (phase.fractions, phase.fraction_source, phase.prescription_gy) == (25, "plan", 50.0)
    assert phase.max_dose_gy == 50.0 and phase.label == "PLAN1"


def test_fraction_dose_is_a_whole_fraction_group_and_override():
    # DICOM FRACTION = dose of a whole fraction group; FRACTION_SESSION = one session
    phase = resolve_phase(None, [dose(60.0, "FRACTION")], 30, HINT)
    assert (phase.fractions, phase.fraction_source) == (30, "override")
    assert np.all(phase.dose_gy == 60.0)
    session = resolve_phase(plan(group(1, 30)), [dose(2.0, "FRACTION_SESSION")], None, HINT)
    assert (session.fractions, session.fraction_source) == (30, "plan")
    assert np.all(session.dose_gy == 60.0)


def test_beam_doses_add_when_they_cover_the_plan():
    phase = resolve_phase(plan(group(1, 5)), [dose(10.0, "BEAM", beam=1), dose(20.0, "BEAM", beam=2)], None, HINT)
    assert np.all(phase.dose_gy == 30.0) and phase.fractions == 5


@pytest.mark.parametrize(
    ("the_plan", "doses", "override", "message"),
    [
        (None, [dose(50.0)], None, "set fractions = N for course 'prior'"),
        (
            plan(group(1, 5)),
            [dose(10.0, "BEAM", beam=1)],
            None,
            r"cover beams \[1\] but the plan's beams with a meterset are \[1, 2\]",
        ),
        (plan(group(1, 5)), [dose(1.0, "BEAM", beam=b) for b in (1, 2, 2)], None, r"each beam's dose once"),
        (None, [dose(10.0, "BEAM", beam=1), dose(10.0, "BEAM", beam=2)], 5, "BEAM doses without their RTPLAN"),
        (plan(group(1, 25), group(2, 5)), [dose(50.0)], None, r"different fraction counts \(5, 25\).*set fractions"),
        (plan(group(1, 25)), [dose(50.0, "MULTI_PLAN")], None, "DoseSummationType MULTI_PLAN"),
        (plan(group(1, 25)), [dose(50.0, "")], None, "DoseSummationType missing"),
        (plan(group(1, 25)), [dose(50.0, dose_type="EFFECTIVE")], None, "only PHYSICAL"),
        (plan(group(1, 25)), [dose(50.0, plan_uid="9.9")], None, "references plan 9.9"),
        (plan(group(1, 25)), [dose(50.0), dose(50.0, "FRACTION")], None, "several summation types"),
        (plan(group(1, 25)), [dose(50.0), dose(50.0)], None, "2 PLAN doses for one plan"),
    ],
)
def test_ambiguous_input_refused(the_plan, doses, override, message):
    with pytest.raises(InputError, match=message):
        resolve_phase(the_plan, doses, override, HINT)


def test_fraction_dose_of_one_group_of_a_multi_group_plan():
    phase = resolve_phase(plan(group(1, 25), group(2, 5)), [dose(20.0, "FRACTION", group=2)], None, HINT)
    assert phase.fractions == 5 and np.all(phase.dose_gy == 20.0)
    told = resolve_phase(plan(group(1, 25), group(2, 5)), [dose(50.0, "FRACTION")], None, HINT, fraction_group=1)
    assert told.fractions == 25


def test_setup_beam_without_meterset_needs_no_dose():
    setup = Beam(3, "SETUP", 0.0, None)
    the_plan = plan(replace(group(1, 5), beams=group(1, 5).beams + (setup,)))
    phase = resolve_phase(the_plan, [dose(10.0, "BEAM", beam=1), dose(20.0, "BEAM", beam=2)], None, HINT)
    assert np.all(phase.dose_gy == 30.0)


# --- courses on one grid ------------------------------------------------------------------------


def discovered(phases, frame=FRAME, registrations=(), files=()):
    return Course(
        Path("/virtual"),
        tuple(Phase(p, tuple(d)) for p, d in phases),
        None,
        tuple(registrations),
        frame,
        (),
        tuple(files),
    )


def spec(name, fractions=None, start=None, end=None, path=Path("/virtual")):
    return CourseSpec(name=name, path=path, start_date=start, end_date=end, fractions=fractions)


def case_of(*specs, recovery="none"):
    return CaseSpec(path=Path("/virtual/case.toml"), id="t", courses=tuple(specs), recovery_model=recovery)


def test_two_phases_convert_separately_then_add():
    # 50 Gy/25 fx + 20 Gy/5 fx boost at a/b 3: 50 (2 + 3)/5 + 20 (4 + 3)/5 = 50 + 28 = 78 Gy
    # (one 70 Gy/30 fx phase would give 74.67 Gy)
    boost = plan(group(1, 5), uid="1.2.3.10", prescription=20.0)
    course = course_from_discovery(
        spec("new"),
        discovered([(plan(group(1, 25), prescription=50.0), [dose(50.0)]), (boost, [dose(20.0, plan_uid="1.2.3.10")])]),
    )
    acc = map_courses([course], case_of(course.spec))
    np.testing.assert_allclose(acc.reference.eqd2_gy(3.0), 78.0)
    assert (course.fractions, course.prescription_gy, course.dose_per_fraction_gy) == (30, 70.0, None)
    assert acc.reference.eqd2_gy(3.0) is acc.reference.eqd2_gy(3.0)  # cached


def test_override_with_several_phases_refused():
    with pytest.raises(InputError, match="ambiguous: the course has 2 plans"):
        course_from_discovery(spec("new", fractions=5), discovered([(None, [dose(1.0)]), (None, [dose(2.0)])]))


def test_recovery_discounts_prior_only_and_is_reported():
    prior = course_from_discovery(spec("prior", 25, end=date(2022, 11, 2)), discovered([(None, [dose(50.0)])]))
    new = course_from_discovery(spec("new", 5, start=date(2025, 1, 14)), discovered([(None, [dose(30.0)])]))
    acc = map_courses([prior, new], case_of(prior.spec, new.spec, recovery="simple-25-50"))
    months = months_between(date(2022, 11, 2), date(2025, 1, 14))
    assert acc.courses[0].interval_months == pytest.approx(months) and months == pytest.approx(26.4, abs=0.1)
    factors = acc.recovery_factors(recovery_model("simple-25-50"), "SpinalCord")
    assert list(factors) == ["prior"] and factors["prior"].r == 0.5
    # a/b 2: prior 50 (2 + 2)/4 = 50 -> 25 after 50 % recovery; new 30 (6 + 2)/4 = 60
    total = cumulative_eqd2_gy(acc, 2.0, recovery_model("simple-25-50"), "SpinalCord")
    np.testing.assert_allclose(total, 85.0)
    np.testing.assert_allclose(cumulative_eqd2_gy(acc, 2.0), 110.0)
    np.testing.assert_allclose(cumulative_eqd2_gy(acc, 2.0, recovery_model("simple-25-50"), "Parotid_L"), 110.0)


def test_different_frames_without_registration_refused():
    prior = course_from_discovery(spec("prior", 25), discovered([(None, [dose(50.0)])], frame="1.2.3.777"))
    new = course_from_discovery(spec("new", 5), discovered([(None, [dose(30.0)])]))
    with pytest.raises(InputError, match="no registration.*give a REG file, or use --conservative"):
        map_courses([prior, new], case_of(prior.spec, new.spec))


# --- the Nelms phantoms: closed-form cumulative EQD2 on real grids ------------------------------


def nelms(testdata, name):
    return testdata / "nelms2015" / "dose_grids" / f"{name}.dcm"


def nelms_course(path, name, fractions, frame=None):
    dose_grid = read_dose(path)
    return course_from_discovery(
        spec(name, fractions), discovered([(None, [dose_grid])], frame=frame or dose_grid.grid.frame_of_reference_uid)
    )


def test_stored_nelms_doses_follow_their_formulas(testdata):
    for name, formula in (
        ("Linear_AntPost_3mm_Aligned", lambda p: 10 - p[..., 1]),
        ("Linear_SupInf_1mm_Aligned", lambda p: 10 + p[..., 2]),
    ):
        stored = read_dose(nelms(testdata, name))
        assert stored.summation_type == "FRACTION"
        np.testing.assert_allclose(
            stored.dose_gy, np.maximum(0, formula(voxel_centres(stored.grid))), rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize("alpha_beta", [2.0, 10.0])
def test_two_nelms_courses_closed_form(testdata, alpha_beta):
    """Prior: max(0, 10 - y) Gy in 25 fx; new: max(0, 10 + z) Gy in 5 fx (the reference).

    The files are FRACTION doses: in DICOM the dose of a whole fraction group, so used as given;
    each course's EQD2 is D (D / n + a/b) / (2 + a/b). Trilinear interpolation is exact for linear fields; the prior's kink at y = 10 mm
    lies between its samples at y = 9 and 12 mm, where interpolation cannot be exact: excluded.
    """
    prior = nelms_course(nelms(testdata, "Linear_AntPost_3mm_Aligned"), "prior", 25)
    new = nelms_course(nelms(testdata, "Linear_SupInf_1mm_Aligned"), "new", 5)
    acc = map_courses([prior, new], case_of(prior.spec, new.spec))
    assert acc.grid == new.phases[0].grid and acc.courses[0].registration_label == "identity"
    p = voxel_centres(acc.grid)
    d_prior, d_new = np.maximum(0, 10 - p[..., 1]), np.maximum(0, 10 + p[..., 2])
    expected = eqd2_closed_form(d_prior, 25, alpha_beta) + eqd2_closed_form(d_new, 5, alpha_beta)
    total = cumulative_eqd2_gy(acc, alpha_beta)
    check = acc.courses[0].coverage & ~((p[..., 1] > 9) & (p[..., 1] < 12))
    assert acc.courses[0].coverage.all() and check.sum() > 0.9 * check.size
    np.testing.assert_allclose(total[check], expected[check], rtol=5e-3, atol=1e-6)
    # in fact the only error left is the files' own storage rounding (relative 3e-7)
    np.testing.assert_allclose(total[check], expected[check], rtol=1e-5, atol=1e-6)


def test_two_nelms_courses_through_a_rigid_reg(testdata, tmp_path):
    """The prior dose re-labelled into its own frame, registered by a REG with rotation + shift."""
    prior_frame = "1.2.826.0.1.3680043.8.498.41"
    moved = pydicom.dcmread(nelms(testdata, "Linear_AntPost_3mm_Aligned"))
    moved.FrameOfReferenceUID = prior_frame
    moved.save_as(tmp_path / "prior.dcm")
    new_path = nelms(testdata, "Linear_SupInf_1mm_Aligned")
    reference_frame = read_dose(new_path).grid.frame_of_reference_uid
    to_reference = rigid(25.0, 2, (3.0, -4.0, 2.0))  # maps prior-frame points into the reference frame
    reg = write_reg(tmp_path / "reg.dcm", reference_frame, {prior_frame: to_reference})

    prior = nelms_course(tmp_path / "prior.dcm", "prior", 25, frame=prior_frame)
    new = nelms_course(new_path, "new", 5)
    new = replace(new, registration_paths=(reg,))
    acc = map_courses([prior, new], case_of(prior.spec, new.spec))
    assert acc.courses[0].registration_label.startswith("REG ")

    p = voxel_centres(acc.grid)
    inverse = np.linalg.inv(to_reference)
    q = p @ inverse[:3, :3].T + inverse[:3, 3]  # the same anatomy in the prior frame
    expected = eqd2_closed_form(np.maximum(0, 10 - q[..., 1]), 25, 3.0) + eqd2_closed_form(
        np.maximum(0, 10 + p[..., 2]), 5, 3.0
    )
    covered = acc.courses[0].coverage
    check = covered & ~((q[..., 1] > 9) & (q[..., 1] < 12))
    assert 0.3 * check.size < check.sum() < check.size  # the rotation moves part of the grid outside
    total = cumulative_eqd2_gy(acc, 3.0)
    np.testing.assert_allclose(total[check], expected[check], rtol=5e-3, atol=1e-6)
    # outside the prior grid only the new course counts
    np.testing.assert_allclose(
        total[~covered], eqd2_closed_form(np.maximum(0, 10 + p[..., 2]), 5, 3.0)[~covered], rtol=1e-5
    )


def test_cumulative_eqd2_at_points_through_a_rigid_reg(testdata, tmp_path):
    """Cumulative EQD2 at arbitrary reference-frame points (not voxel centres) equals the closed
    form through the REG; points outside the prior grid are marked uncovered and get the new
    course only."""
    prior_frame = "1.2.826.0.1.3680043.8.498.41"
    moved = pydicom.dcmread(nelms(testdata, "Linear_AntPost_3mm_Aligned"))
    moved.FrameOfReferenceUID = prior_frame
    moved.save_as(tmp_path / "prior.dcm")
    new_path = nelms(testdata, "Linear_SupInf_1mm_Aligned")
    reference_frame = read_dose(new_path).grid.frame_of_reference_uid
    to_reference = rigid(25.0, 2, (3.0, -4.0, 2.0))
    reg = write_reg(tmp_path / "reg.dcm", reference_frame, {prior_frame: to_reference})
    prior = nelms_course(tmp_path / "prior.dcm", "prior", 25, frame=prior_frame)
    new = replace(nelms_course(new_path, "new", 5), registration_paths=(reg,))
    acc = map_courses([prior, new], case_of(prior.spec, new.spec))

    rng = np.random.default_rng(7)
    corners = acc.grid.to_patient(np.array([[0, 0, 0], np.array(acc.grid.shape) - 1], float))
    p = rng.uniform(corners.min(axis=0), corners.max(axis=0), size=(4000, 3))
    inverse = np.linalg.inv(to_reference)
    q = p @ inverse[:3, :3].T + inverse[:3, 3]
    new_eqd2 = eqd2_closed_form(np.maximum(0, 10 + p[:, 2]), 5, 3.0)
    expected = eqd2_closed_form(np.maximum(0, 10 - q[:, 1]), 25, 3.0) + new_eqd2
    total, covered = cumulative_eqd2_at(acc, p, 3.0)
    assert 0.2 * len(p) < covered.sum() < len(p)
    # the prior's kink (y = 10 mm) and one voxel of the reference grid around it are not linear
    check = covered & ((q[:, 1] < 6) | (q[:, 1] > 15))
    np.testing.assert_allclose(total[check], expected[check], rtol=1e-3, atol=1e-6)
    prior_index = prior.phases[0].grid.to_index(q)
    far = np.any((prior_index < -2) | (prior_index > np.array(prior.phases[0].grid.shape) + 1), axis=1)
    assert far.sum() > 100 and not covered[far].any()
    np.testing.assert_allclose(total[far], new_eqd2[far], rtol=1e-5, atol=1e-9)


def test_phase_indices_on_the_same_lattice_shift_exactly_and_on_the_same_grid_are_the_points_themselves():
    grid = axial_grid((0.0, 0.0, 0.0), (2.0, 3.0, 2.5), (6, 7, 8), "F")  # spacing (dk, dj, di) mm
    moved = axial_grid((-2.5, 3.0, 4.0), (2.0, 3.0, 2.5), (6, 7, 8), "F")  # whole voxels: i + 1, j - 1, k - 2
    positions = np.random.default_rng(3).uniform(0.0, 5.0, (50, 3))
    assert phase_indices(grid, positions, grid, RigidMap(None)) is positions  # no copy
    assert np.array_equal(phase_indices(grid, positions, moved, RigidMap(None)), positions + [-2.0, -1.0, 1.0])
    turn = np.array([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, -2.0], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0]])
    expected = moved.to_index(RigidMap(turn)(grid.to_patient(positions)))
    np.testing.assert_allclose(phase_indices(grid, positions, moved, RigidMap(turn)), expected, atol=1e-12)
