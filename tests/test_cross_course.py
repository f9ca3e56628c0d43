"""Cross-file and cross-course semantics: inputs that load but do not belong together are refused.

Each case here was accepted with changed numbers before (issue 9, "Bad input"; issue 10, defect 4):
a dose 100x off, a missing frame of reference read as "the same frame", another patient's course,
one course listed twice, a course whose dose reaches none of the anatomy, and `reirrad dvh` with
a dose and structure set of different frames. The sample cases are copied and modified with pydicom.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sum_helpers import axial_grid, rigid, voxel_centres, write_dose, write_reg

from reirrad.accumulate import _refuse_repeated, course_from_discovery, map_courses
from reirrad.case import CaseSpec, CourseSpec, load_case
from reirrad.check import CheckOptions, run_check
from reirrad.cli import main
from reirrad.dicom.discover import Course, Phase
from reirrad.dicom.dose import DoseGrid, read_dose
from reirrad.dvh import dvh_table
from reirrad.errors import InputError
from reirrad.metrics import parse_metric
from reirrad.pairing import load_pair
from tests import dicom_synthetic as syn

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
SBRT, CONVENTIONAL = "hn_sbrt_reirradiation", "hn_conventional_reirradiation"
CAROTID_L, CORD = "carotid-dmax[A_Carotid_L]", "spinalcord-dmax"


def copy_case(tmp_path: Path, name: str = SBRT) -> Path:
    """The sample case copied into ``tmp_path``; returns its case file."""
    return shutil.copytree(SAMPLES / name, tmp_path / name) / "case.toml"


def edit(path: Path, change) -> None:
    """Apply ``change(dataset)`` to a DICOM file in place (a copy in tmp_path)."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def add_course_key(case_file: Path, course: str, line: str) -> None:
    """Insert ``line`` into the [[courses]] entry named ``course``."""
    text = case_file.read_text()
    anchor = f'name = "{course}"\n'
    assert anchor in text
    case_file.write_text(text.replace(anchor, anchor + line + "\n"))


def result(report, constraint_id):
    return next(r for r in report.results if r.constraint_id == constraint_id)


@dataclass(frozen=True)
class Cli:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``reirrad ARGS`` through the console-script entry point (its error handling included)."""

    def run(*args) -> Cli:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["reirrad", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Cli(code, out, err)

    return run


def one_line_error(cli_result: Cli) -> str:
    lines = cli_result.stderr.strip().splitlines()
    assert cli_result.exit_code == 2 and len(lines) == 1, cli_result
    return lines[0]


# --- 1. dose scale against the prescription -------------------------------------------------------


def scale_dose(factor: float):
    def change(ds):
        ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * factor:.10g}"

    return change


def test_unmodified_sample_fails_the_left_carotid(tmp_path):
    report = run_check(load_case(copy_case(tmp_path)))
    carotid = result(report, CAROTID_L)
    assert (carotid.status, round(carotid.value_gy, 1)) == ("fail", 130.7)
    assert not any("dose scale" in w for w in report.warnings)  # both plans give a prescription


@pytest.mark.parametrize(("factor", "likely"), [(0.01, "100x too low"), (100.0, "cGy values stored as Gy")])
def test_prior_dose_100x_off_is_refused(tmp_path, cli, factor, likely):
    # main: DoseGridScaling / 100 turned the carotid's 130.6 Gy FAIL into 70.2 Gy PASS, exit 0
    case_file = copy_case(tmp_path)
    dose = case_file.parent / "course1" / "dose.dcm"
    edit(dose, scale_dose(factor))
    with pytest.raises(InputError, match=f"x the prescription .* likely .*{likely}") as error:
        run_check(load_case(case_file))
    assert error.value.path == dose
    message = one_line_error(cli("check", case_file))
    assert str(dose) in message and "--accept-dose-scale" in message


def test_accepted_dose_scale_is_used_and_said(tmp_path, cli):
    # the example: the new course's DoseGridScaling / 100 gives the carotid 70.2 Gy, a pass
    case_file = copy_case(tmp_path)
    edit(case_file.parent / "course2" / "dose.dcm", scale_dose(0.01))
    with pytest.raises(InputError, match="100x too low"):
        run_check(load_case(case_file))
    add_course_key(case_file, "new", "accept_dose_scale = true")
    report = run_check(load_case(case_file))
    carotid = result(report, CAROTID_L)
    assert (carotid.status, round(carotid.value_gy, 1)) == ("pass", 70.2)
    (warning,) = [w for w in report.warnings if "dose scale accepted" in w]
    assert warning.startswith("course 'new'") and "100x too low" in warning
    # the command-line switch accepts it for every course
    options = CheckOptions(accept_dose_scale=True)
    assert result(run_check(load_case(copy_case(tmp_path / "b")), options), CAROTID_L).status == "fail"
    cli = cli("check", case_file.with_name("case.toml"), "--format", "json")
    assert cli.exit_code == 0, cli.output


def test_all_zero_dose_is_refused_even_when_the_scale_is_accepted(tmp_path):
    case_file = copy_case(tmp_path)
    dose = case_file.parent / "course2" / "dose.dcm"
    edit(dose, lambda ds: setattr(ds, "PixelData", bytes(len(ds.PixelData))))
    add_course_key(case_file, "new", "accept_dose_scale = true")
    with pytest.raises(InputError, match="zero everywhere") as error:
        run_check(load_case(case_file), CheckOptions(accept_dose_scale=True))
    assert error.value.path == dose


def test_without_a_prescription_the_scale_check_is_said_to_be_impossible(tmp_path):
    case_file = copy_case(tmp_path)
    edit(case_file.parent / "course1" / "plan.dcm", lambda ds: delattr(ds, "DoseReferenceSequence"))
    report = run_check(load_case(case_file))
    (warning,) = [w for w in report.warnings if "dose scale" in w]
    assert warning.startswith("course 'prior'") and "gives no target prescription dose" in warning
    assert result(report, CAROTID_L).value_gy == pytest.approx(130.7, abs=0.05)


def test_eqd2_and_sum_check_the_scale_too(tmp_path, cli):
    case_file = copy_case(tmp_path)
    course = case_file.parent / "course1"
    edit(course / "dose.dcm", scale_dose(100.0))
    eqd2 = [
        "eqd2",
        str(course / "dose.dcm"),
        "--alpha-beta",
        "3",
        "--plan",
        str(course / "plan.dcm"),
        "-o",
        str(tmp_path / "eqd2.dcm"),
    ]
    assert "cGy values stored as Gy" in one_line_error(cli(*eqd2))
    accepted = cli(*eqd2, "--accept-dose-scale")
    assert accepted.exit_code == 0 and "dose scale accepted" in accepted.stdout
    without_plan = cli(*eqd2[:4], "--fractions", "35", "-o", tmp_path / "e2.dcm")
    assert without_plan.exit_code == 0 and "no RTPLAN, so its dose scale" in without_plan.stdout
    summed = ["sum", str(case_file), "--alpha-beta", "3", "-o", str(tmp_path / "sum.dcm")]
    assert "cGy values stored as Gy" in one_line_error(cli(*summed))
    assert cli(*summed, "--accept-dose-scale").exit_code == 0


# --- 2. a missing frame of reference is never "the same frame" -------------------------------------


def drop_frame(ds):
    for keyword in ("FrameOfReferenceUID",):
        if keyword in ds:
            delattr(ds, keyword)
    for item in ds.get("ReferencedFrameOfReferenceSequence", []):
        del item.FrameOfReferenceUID
    for item in ds.get("StructureSetROISequence", []):
        del item.ReferencedFrameOfReferenceUID


def test_missing_frames_in_both_courses_are_refused(tmp_path, cli):
    # main: both courses counted as one frame, the REG silently ignored: cord 65.5 -> 92.2 Gy
    case_file = copy_case(tmp_path)
    assert result(run_check(load_case(case_file)), CORD).value_gy == pytest.approx(65.5, abs=0.05)
    for course in ("course1", "course2"):
        for name in ("dose.dcm", "plan.dcm", "structures.dcm"):
            edit(case_file.parent / course / name, drop_frame)
    # the RTDOSE reader refuses it (FrameOfReferenceUID is required in an RTDOSE)
    with pytest.raises(InputError, match="FrameOfReferenceUID missing"):
        run_check(load_case(case_file))
    assert "FrameOfReferenceUID missing" in one_line_error(cli("check", case_file))


def test_a_plan_without_frame_is_noted_not_compared(tmp_path):
    case_file = copy_case(tmp_path)
    edit(case_file.parent / "course1" / "plan.dcm", drop_frame)
    report = run_check(load_case(case_file))
    assert result(report, CORD).value_gy == pytest.approx(65.5, abs=0.05)
    assert any("plan.dcm names no frame of reference" in w for w in report.warnings)


# --- 3. another patient's course ------------------------------------------------------------------


def set_patient(patient_id: str):
    def change(ds):
        ds.PatientID = patient_id

    return change


def relabel_course(folder: Path, patient_id: str) -> None:
    for path in folder.glob("*.dcm"):
        edit(path, set_patient(patient_id))


def test_a_prior_course_of_another_patient_is_refused_unless_accepted(tmp_path, cli):
    # main: summed without a word (here the same frame; --conservative too)
    case_file = copy_case(tmp_path, CONVENTIONAL)
    relabel_course(case_file.parent / "course1", "SOMEONE-ELSE")
    for options in (CheckOptions(), CheckOptions(conservative=True)):
        with pytest.raises(InputError, match="'SOMEONE-ELSE' vs 'REIRRAD-PHANTOM-02'.*accept_other_patient"):
            run_check(load_case(case_file), options)
    assert "another patient" in one_line_error(cli("check", case_file))
    prior, new = case_file.parent / "course1", case_file.parent / "course2"
    assert cli("check", "--prior", prior, "--new", new).exit_code == 2
    accepted = cli("check", "--prior", prior, "--new", new, "--accept-other-patient", "-f", "json")
    assert accepted.exit_code in (0, 1) and "SOMEONE-ELSE" in accepted.stdout
    add_course_key(case_file, "prior", "accept_other_patient = true")
    report = run_check(load_case(case_file))
    (warning,) = [w for w in report.warnings if "another patient" in w]
    assert "course 'prior'" in warning and "'SOMEONE-ELSE' vs 'REIRRAD-PHANTOM-02'" in warning


def test_files_of_two_patients_in_one_course_are_refused(tmp_path):
    case_file = copy_case(tmp_path, CONVENTIONAL)
    structures = case_file.parent / "course2" / "structures.dcm"
    edit(structures, set_patient("SOMEONE-ELSE"))
    with pytest.raises(InputError, match="belongs to another patient than") as error:
        run_check(load_case(case_file), CheckOptions(accept_other_patient=True))
    assert error.value.path == structures


def test_same_id_other_birth_date_is_another_patient(tmp_path):
    case_file = copy_case(tmp_path, CONVENTIONAL)
    for path in (case_file.parent / "course1").glob("*.dcm"):
        edit(path, lambda ds: setattr(ds, "PatientBirthDate", "19700101"))
    with pytest.raises(InputError, match="PatientBirthDate 19700101 vs 19580704"):
        run_check(load_case(case_file))


# --- 4. one course twice ----------------------------------------------------------------------------


def test_the_same_folder_twice_is_refused(tmp_path, cli):
    # main: counted twice
    case_file = copy_case(tmp_path, CONVENTIONAL)
    case_file.write_text(case_file.read_text().replace('path = "course2"', 'path = "course1"'))
    with pytest.raises(InputError, match="courses 'prior' and 'new' are one course \\(the same folder\\)"):
        run_check(load_case(case_file))
    course = case_file.parent / "course1"
    assert "counted twice" in one_line_error(cli("check", "--prior", course, "--new", f"{course}/."))


def test_a_copied_course_folder_is_refused(tmp_path):
    case_file = copy_case(tmp_path, CONVENTIONAL)
    shutil.rmtree(case_file.parent / "course2")
    shutil.copytree(case_file.parent / "course1", case_file.parent / "course2")
    with pytest.raises(InputError, match="one course \\(the same RTDOSE SOPInstanceUID\\)"):
        run_check(load_case(case_file))


# --- 5. a course whose dose grid misses the anatomy ------------------------------------------------


def test_a_prior_course_reaching_no_structure_is_refused(tmp_path):
    # main: a valid REG with an absurd translation added 0 Gy everywhere and the carotid passed
    case_file = copy_case(tmp_path)

    def shift(ds):
        matrix = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
        values = [float(v) for v in matrix.FrameOfReferenceTransformationMatrix]
        values[3] += 2000.0
        matrix.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in values]

    reg = case_file.parent / "course2" / "reg.dcm"
    assert pydicom.dcmread(reg).RegistrationSequence[1].FrameOfReferenceUID != pydicom.dcmread(reg).FrameOfReferenceUID
    edit(reg, shift)
    with pytest.raises(InputError, match="course 'prior': its dose grid \\(REG .*\\) reaches none of the") as error:
        run_check(load_case(case_file), CheckOptions(accept_partial_coverage=True))
    assert error.value.path == case_file.parent / "course1"


def test_report_only_entries_keep_the_note(tmp_path):
    # a prior course moved 60 mm: organs it reaches in part lose their verdict if they have a limit
    # or warn level; report-only entries keep their value and the note
    case_file = copy_case(tmp_path)

    def shift(ds):
        matrix = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
        values = [float(v) for v in matrix.FrameOfReferenceTransformationMatrix]
        values[11] += 60.0  # prior anatomy appears 60 mm further superior
        matrix.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in values]

    edit(case_file.parent / "course2" / "reg.dcm", shift)
    report = run_check(load_case(case_file))
    partial = [
        r
        for r in report.results
        if r.status == "not_evaluated" and r.reason and "outside course 'prior' dose grid" in r.reason
    ]
    assert partial and all(r.has_threshold for r in partial)
    noted = [
        r
        for r in report.results
        if not r.has_threshold
        and r.value_gy is not None
        and any("outside course 'prior' dose grid" in n for n in r.notes)
    ]
    assert noted
    assert report.summary.exit_code == 1
    accepted = run_check(load_case(case_file), CheckOptions(accept_partial_coverage=True))
    judged = {p.constraint_id for p in partial}
    assert all(r.status != "not_evaluated" for r in accepted.results if r.constraint_id in judged)


# --- 6. reirrad dvh: one patient, one frame --------------------------------------------------------


def test_dvh_refuses_structures_of_another_frame_and_maps_through_a_reg(tmp_path, cli):
    # main: course 1's dose with course 2's structures gave cord Dmax 71.05 Gy (48.71 with its own), exit 0
    case = SAMPLES / SBRT
    dose, structures = case / "course1" / "dose.dcm", case / "course2" / "structures.dcm"
    reg = case / "course2" / "reg.dcm"
    refused = one_line_error(cli("dvh", dose, structures, "-s", "SpinalCord", "-m", "Dmax"))
    assert "differs from" in refused and "--registration" in refused
    mapped = cli("dvh", dose, structures, "-s", "SpinalCord", "-m", "Dmax", "-f", "csv", "--registration", reg)
    assert mapped.exit_code == 0, mapped.output
    dmax = float(next(line for line in mapped.stdout.splitlines() if ",Dmax," in line).split(",")[3])
    # `reirrad check` maps the same prior dose onto the same cord at 49.48 Gy (one interpolation less)
    assert dmax == pytest.approx(49.48, abs=0.1)
    assert "mapped from frame" in mapped.stderr


def test_dvh_registration_direction_with_a_known_shift(tmp_path):
    """The dose is written in frame B; the REG says p_A = p_B + s. A cube drawn at c in frame A is
    the anatomy at c - s in frame B, so its mean dose is D_B(c - s). Sampling at c + s (the
    inverted convention) would differ by 2 s . grad D."""
    frame_a, frame_b = "1.2.826.0.1.3680043.8.498.71", "1.2.826.0.1.3680043.8.498.72"
    shift_mm = np.array([7.0, -5.0, 6.0])
    grid_b = axial_grid((-50, -50, -40), (2.0, 2.0, 2.0), (41, 51, 51), frame_b)
    field = lambda p: 40.0 + 0.2 * p[..., 0] - 0.1 * p[..., 1] + 0.15 * p[..., 2]  # noqa: E731
    dose = write_dose(tmp_path / "dose.dcm", grid_b, field(voxel_centres(grid_b)))
    centre = np.array([4.0, 3.0, 2.0])
    square = [(-6, -6), (6, -6), (6, 6), (-6, 6)]
    cube = [[(centre[0] + x, centre[1] + y, centre[2] + z) for x, y in square] for z in np.arange(-6.0, 6.5, 2.0)]
    rs = syn.rtstruct({"Cube": cube}, frame_of_reference=frame_a)
    rs.PatientID = "SUM-001"
    structures = syn.write(rs, tmp_path / "rs.dcm")
    reg = write_reg(tmp_path / "reg.dcm", frame_a, {frame_b: rigid(0.0, 2, shift_mm)})

    pair = load_pair(dose, structures, reg)
    (row,) = dvh_table(pair.dose, pair.structures, ("Cube",), (parse_metric("Dmean"),)).structures
    assert row.values["Dmean"] == pytest.approx(float(field(centre - shift_mm)), abs=1e-6)
    assert abs(row.values["Dmean"] - float(field(centre + shift_mm))) > 2.0
    # a pure translation moves the lattice: the values are the file's own, not re-interpolated
    np.testing.assert_array_equal(pair.dose.dose_gy, read_dose(dose).dose_gy)
    np.testing.assert_allclose(pair.dose.grid.origin_mm, np.asarray(grid_b.origin_mm) + shift_mm)
    assert pair.dose.grid.frame_of_reference_uid == frame_a
    # without the REG: refused
    with pytest.raises(InputError, match=f"frame of reference {frame_b} differs from {frame_a}"):
        load_pair(dose, structures)


def test_dvh_rotated_registration_keeps_the_field(tmp_path):
    # a rotated REG (as the sample's): a linear field is reproduced exactly by trilinear resampling
    frame_a, frame_b = "1.2.826.0.1.3680043.8.498.81", "1.2.826.0.1.3680043.8.498.82"
    grid_b = axial_grid((-40, -40, -30), (2.0, 2.0, 2.0), (31, 41, 41), frame_b)
    field = lambda p: 40.0 + 0.2 * p[..., 0] - 0.1 * p[..., 1] + 0.15 * p[..., 2]  # noqa: E731
    dose = write_dose(tmp_path / "dose.dcm", grid_b, field(voxel_centres(grid_b)))
    rs = syn.rtstruct({"Dot": [[(0, 0, 0), (4, 0, 0), (4, 4, 0), (0, 4, 0)]]}, frame_of_reference=frame_a)
    rs.PatientID = "SUM-001"
    structures = syn.write(rs, tmp_path / "rs.dcm")
    to_a = rigid(5.0, 2, (3.0, 1.0, -2.0)) @ rigid(3.0, 0, (0.0, 0.0, 0.0))
    reg = write_reg(tmp_path / "reg.dcm", frame_a, {frame_b: to_a})
    moved = load_pair(dose, structures, reg).dose
    points_a = voxel_centres(moved.grid)
    points_b = points_a @ np.linalg.inv(to_a)[:3, :3].T + np.linalg.inv(to_a)[:3, 3]
    np.testing.assert_allclose(moved.dose_gy, field(points_b), atol=1e-6)
    assert moved.grid.size < grid_b.size  # only whole voxels inside the rotated grid


def test_dvh_refuses_another_patients_structures_unless_accepted(tmp_path, cli):
    folder = shutil.copytree(SAMPLES / CONVENTIONAL / "course1", tmp_path / "c1")
    edit(folder / "structures.dcm", set_patient("SOMEONE-ELSE"))
    args = (folder / "dose.dcm", folder / "structures.dcm", "-s", "SpinalCord", "-m", "Dmax")
    assert "'SOMEONE-ELSE' vs 'REIRRAD-PHANTOM-02'" in one_line_error(cli("dvh", *args))
    accepted = cli("dvh", *args, "--accept-other-patient")
    assert accepted.exit_code == 0 and "accepted (--accept-other-patient)" in accepted.stderr


def test_dvh_refuses_a_missing_frame(tmp_path):
    folder = shutil.copytree(SAMPLES / CONVENTIONAL / "course1", tmp_path / "c1")
    edit(folder / "structures.dcm", drop_frame)
    # the RTSTRUCT reader refuses it (each ROI's ReferencedFrameOfReferenceUID is required)
    with pytest.raises(InputError, match="ROI 1 has no ReferencedFrameOfReferenceUID"):
        load_pair(folder / "dose.dcm", folder / "structures.dcm")


# --- library guards behind the readers ----------------------------------------------------------------


def virtual_course(tmp_path: Path, name: str, frame: str, content: bytes = b"dose", uid: str = "1.2.3.100"):
    """A course discovered from one synthetic PLAN dose written as ``content`` in its own folder."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "rd.dcm").write_bytes(content)
    grid = axial_grid((0, 0, 0), (2.0, 2.0, 2.0), (2, 2, 2), frame)
    dose = DoseGrid(folder / "rd.dcm", grid, np.full(grid.shape, 2.0), "PLAN", "PHYSICAL", uid)
    discovered = Course(folder, (Phase(None, (dose,)),), None, (), frame, (), (folder / "rd.dcm",))
    return course_from_discovery(CourseSpec(name=name, path=folder, fractions=1), discovered)


def test_an_empty_frame_never_maps_as_the_same_frame(tmp_path):
    # main: two courses without a frame were mapped through the identity
    with pytest.raises(InputError, match="no frame of reference"):
        virtual_course(tmp_path, "prior", "")
    prior, new = virtual_course(tmp_path, "prior", "1.2.3"), virtual_course(tmp_path, "new", "1.2.3")
    blank = [replace(c, frame_of_reference_uid="") for c in (prior, new)]
    with pytest.raises(InputError, match="course 'prior' has no frame of reference"):
        map_courses(blank, CaseSpec(tmp_path / "case.toml", "t", (prior.spec, new.spec)))


def test_an_rtdose_of_identical_content_is_one_course(tmp_path):
    prior = virtual_course(tmp_path, "prior", "1.2.3", uid="")
    with pytest.raises(
        InputError, match="'prior' and 'new' are one course \\(an RTDOSE file with identical content\\)"
    ):
        _refuse_repeated(virtual_course(tmp_path, "new", "1.2.3", uid=""), [prior], tmp_path / "case.toml")
    _refuse_repeated(virtual_course(tmp_path, "other", "1.2.3", b"other dose", uid=""), [prior], tmp_path)


def test_a_course_without_patient_id_is_noted(tmp_path):
    case_file = copy_case(tmp_path, CONVENTIONAL)
    relabel_course(case_file.parent / "course1", "")
    report = run_check(load_case(case_file))
    assert any(w.startswith("course 'prior' names no patient (empty PatientID)") for w in report.warnings)
