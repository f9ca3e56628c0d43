"""Course discovery: classification, plan/dose/structure linking, phases and inconsistencies."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.dicom.discover import discover_course
from reirrad.errors import InputError
from tests import dicom_synthetic as syn

PIXELS = np.arange(24, dtype=np.uint32).reshape(2, 3, 4) * 1000
SQUARE = [(-10, -10, 0), (10, -10, 0), (10, 10, 0)]


def _course(folder, *, beams=((1, 1.0, 100.0), (2, 1.0, 100.0)), groups=None):
    """A plan (30 fractions unless ``groups``), its structure set, and returns (plan, structures) datasets."""
    structures = syn.rtstruct({"Cord": [SQUARE]})
    plan = syn.rtplan(groups or [(30, list(beams))], structure_set_uid=structures.SOPInstanceUID)
    syn.write(structures, folder / "rs.dcm")
    syn.write(plan, folder / "plan" / "rp.dcm")
    return plan, structures


def test_plan_dose_links_into_one_phase_and_skips_other_files(tmp_path):
    plan, structures = _course(tmp_path)
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "deep" / "rd.dcm")
    syn.write(syn.other(syn.CT, "CT"), tmp_path / "ct1.dcm")
    syn.write(syn.other(syn.REG, "REG"), tmp_path / "reg.dcm")
    (tmp_path / "notes.txt").write_text("not dicom")
    course = discover_course(tmp_path)
    (phase,) = course.phases
    assert phase.plan.sop_instance_uid == plan.SOPInstanceUID and phase.fractions == 30
    assert phase.summation_type == "PLAN" and phase.fraction_group.number == 1
    np.testing.assert_array_equal(phase.dose_gy, PIXELS * 1e-3)
    assert course.structures.sop_instance_uid == structures.SOPInstanceUID
    assert course.registration_paths == (tmp_path / "reg.dcm",)
    assert course.frame_of_reference_uid == "1.2.3.4"
    assert course.notes == ("skipped 1 CT file(s)", "skipped 1 non-DICOM file(s)")
    assert {p.name for p in course.files} == {"rd.dcm", "rp.dcm", "rs.dcm", "reg.dcm"}


def test_beam_doses_add_up_per_fraction_group(tmp_path):
    plan, _ = _course(tmp_path)
    for beam in (2, 1):
        ds = syn.rtdose(PIXELS * beam, summation="BEAM", plan_uid=plan.SOPInstanceUID, fraction_group=1, beams=(beam,))
        syn.write(ds, tmp_path / f"rd{beam}.dcm")
    (phase,) = discover_course(tmp_path).phases
    assert [d.referenced_beam_number for d in phase.doses] == [1, 2]
    np.testing.assert_allclose(phase.dose_gy, PIXELS * 3e-3)
    assert phase.summation_type == "BEAM" and phase.fractions == 30


def test_missing_beam_dose_is_refused(tmp_path):
    plan, _ = _course(tmp_path)
    ds = syn.rtdose(PIXELS, summation="BEAM", plan_uid=plan.SOPInstanceUID, fraction_group=1, beams=(1,))
    syn.write(ds, tmp_path / "rd1.dcm")
    with pytest.raises(InputError, match=r"no BEAM dose for beam\(s\) \[2\] of fraction group 1"):
        discover_course(tmp_path)


def test_fraction_doses_give_one_phase_per_fraction_group(tmp_path):
    plan, _ = _course(tmp_path, groups=[(13, [(1, 2.0, 100.0)]), (25, [(2, 2.0, 100.0)])])
    for group in (1, 2):
        ds = syn.rtdose(PIXELS * group, summation="FRACTION", plan_uid=plan.SOPInstanceUID, fraction_group=group)
        syn.write(ds, tmp_path / f"rd{group}.dcm")
    phases = discover_course(tmp_path).phases
    assert [(p.fraction_group.number, p.fractions) for p in phases] == [(1, 13), (2, 25)]
    np.testing.assert_array_equal(phases[1].dose_gy, PIXELS * 2e-3)


def test_missing_fraction_group_dose_is_refused(tmp_path):
    plan, _ = _course(tmp_path, groups=[(13, [(1, 2.0, 100.0)]), (25, [(2, 2.0, 100.0)])])
    ds = syn.rtdose(PIXELS, summation="FRACTION", plan_uid=plan.SOPInstanceUID, fraction_group=1)
    syn.write(ds, tmp_path / "rd1.dcm")
    with pytest.raises(InputError, match="no dose in the folder for fraction group 2"):
        discover_course(tmp_path)


def test_plan_dose_of_a_multi_group_plan_has_unknown_fractions(tmp_path):
    plan, _ = _course(tmp_path, groups=[(13, [(1, 2.0, 100.0)]), (25, [(2, 2.0, 100.0)])])
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "rd.dcm")
    course = discover_course(tmp_path)
    assert course.phases[0].fractions is None
    assert any("sums 2 fraction groups" in n for n in course.notes)


def test_plan_dose_wins_over_beam_doses_with_a_note(tmp_path):
    plan, _ = _course(tmp_path)
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "rd.dcm")
    ds = syn.rtdose(PIXELS, summation="BEAM", plan_uid=plan.SOPInstanceUID, fraction_group=1, beams=(1,))
    syn.write(ds, tmp_path / "rd_beam1.dcm")
    course = discover_course(tmp_path)
    assert [p.doses[0].path.name for p in course.phases] == ["rd.dcm"]
    assert any("ignored 1 FRACTION/BEAM dose" in n for n in course.notes)


def test_dose_of_a_plan_not_in_the_folder_is_a_phase_without_plan(tmp_path):
    _course(tmp_path)
    syn.write(syn.rtdose(PIXELS, plan_uid="9.9.9"), tmp_path / "rd.dcm")
    course = discover_course(tmp_path)
    assert course.phases[0].plan is None and course.phases[0].fractions is None
    assert any("references plan 9.9.9, which is not in the folder" in n for n in course.notes)
    assert any("rp.dcm has no dose in the folder" in n for n in course.notes)


def test_plan_referencing_another_structure_set_is_noted(tmp_path):
    plan = syn.rtplan([(30, [(1, 1.0, 100.0)])], structure_set_uid="7.7.7")
    syn.write(plan, tmp_path / "rp.dcm")
    syn.write(syn.rtstruct({"Cord": [SQUARE]}), tmp_path / "rs.dcm")
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "rd.dcm")
    notes = discover_course(tmp_path).notes
    assert any("references structure set 7.7.7" in n for n in notes)


def test_frames_of_reference_that_disagree_are_refused_naming_both_files(tmp_path):
    plan, _ = _course(tmp_path)
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID, frame_of_reference="5.5.5"), tmp_path / "rd.dcm")
    with pytest.raises(InputError, match=r"frame of reference 1\.2\.3\.4 differs from 5\.5\.5 of .*rd\.dcm") as err:
        discover_course(tmp_path)
    assert err.value.path.name in {"rp.dcm", "rs.dcm"}


def test_two_structure_sets_are_refused_unless_one_is_referenced(tmp_path):
    plan, _ = _course(tmp_path)
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "rd.dcm")
    syn.write(syn.rtstruct({"Other": [SQUARE]}), tmp_path / "rs_other.dcm")
    course = discover_course(tmp_path)
    assert course.structures.path.name == "rs.dcm"
    assert any("ignored RTSTRUCT not referenced" in n and "rs_other.dcm" in n for n in course.notes)
    syn.write(syn.rtplan([(30, [(1, 1.0, 100.0)])], structure_set_uid="1.1"), tmp_path / "plan" / "rp.dcm")
    with pytest.raises(InputError, match="two RTSTRUCT candidates.*rs_other.dcm"):
        discover_course(tmp_path)


def test_named_structure_set_resolves_two_candidates(tmp_path):
    plan, _ = _course(tmp_path)
    syn.write(syn.rtplan([(30, [(1, 1.0, 100.0)])], structure_set_uid="1.1"), tmp_path / "plan" / "rp.dcm")
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), tmp_path / "rd.dcm")
    syn.write(syn.rtstruct({"Other": [SQUARE]}), tmp_path / "rs_other.dcm")
    with pytest.raises(InputError, match="structure_set ="):
        discover_course(tmp_path)
    course = discover_course(tmp_path, tmp_path / "rs_other.dcm")
    assert [roi.name for roi in course.structures.rois] == ["Other"]
    assert any("chosen in the case file; ignored" in n and n.endswith("rs.dcm") for n in course.notes)
    assert any("references structure set 1.1" in n for n in course.notes)
    assert tmp_path / "rs_other.dcm" in course.files and tmp_path / "rs.dcm" not in course.files


def test_named_structure_set_may_lie_outside_the_folder(tmp_path):
    folder = tmp_path / "course"
    plan, _ = _course(folder)
    syn.write(syn.rtdose(PIXELS, plan_uid=plan.SOPInstanceUID), folder / "rd.dcm")
    syn.write(syn.rtstruct({"Elsewhere": [SQUARE]}), tmp_path / "rs_elsewhere.dcm")
    course = discover_course(folder, tmp_path / "rs_elsewhere.dcm")
    assert [roi.name for roi in course.structures.rois] == ["Elsewhere"]
    with pytest.raises(InputError, match="not an RTSTRUCT|SOP Class"):
        discover_course(folder, folder / "rd.dcm")


def test_folder_without_dose_is_refused(tmp_path):
    _course(tmp_path)
    with pytest.raises(InputError, match="no RTDOSE file in folder"):
        discover_course(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        discover_course(tmp_path / "missing")


def test_unsupported_summation_type_is_refused(tmp_path):
    syn.write(syn.rtdose(PIXELS, summation="MULTI_PLAN"), tmp_path / "rd.dcm")
    with pytest.raises(InputError, match="DoseSummationType MULTI_PLAN is not supported"):
        discover_course(tmp_path)


def test_eclipse_course(testdata):
    course = discover_course(testdata / "dicompyler-core")
    (phase,) = course.phases
    assert phase.fractions == 7 and phase.plan.prescription_gy == 14.0 and phase.plan.dose_per_fraction_gy == 2.0
    assert phase.doses[0].path.name == "rtdose.dcm" and course.structures.path.name == "rtss.dcm"
    assert course.frame_of_reference_uid == "2.16.840.1.113662.2.12.0.3057.1241703565.36"
    assert course.notes == ("skipped 1 CT file(s)",)
    assert [p.name for p in course.files] == ["rtdose.dcm", "rtplan.dcm", "rtss.dcm"]
