"""Automatic rigid CT registration: known transforms recovered, REG written in the standard's
direction (read back by reirrad, clean under dciodvfy), unusable registrations refused."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sum_helpers import rigid

pytest.importorskip("SimpleITK")

from reirrad import autoreg
from reirrad.autoreg import CtSeries, register_ct, require_usable
from reirrad.dicom.registration import read_registration, reference_to_moving
from reirrad.dicom.write import ct_series_datasets, save_atomic
from reirrad.errors import InputError
from reirrad.grid import Grid, resample

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
PRIOR, NEW = "1.2.826.0.1.3680043.8.498.71", "1.2.826.0.1.3680043.8.498.72"
TARGET_A = np.array([18.1, 15.5, -28.0])  # the sample SBRT recurrence beside the left carotid (prior frame)


def _generator():
    spec = importlib.util.spec_from_file_location("sample_plans_generate", SAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def axial(origin, spacing, shape, frame) -> Grid:
    return Grid(
        tuple(map(float, origin)),
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        tuple(map(float, spacing)),
        tuple(shape),
        frame,
    )


def phantom(grid: Grid, to_prior: np.ndarray) -> CtSeries:
    """The phantom CT on ``grid``; ``to_prior`` maps the grid's frame into the prior (phantom) frame."""
    points = grid.to_patient(np.indices(grid.shape).reshape(3, -1).T)
    points = points @ to_prior[:3, :3].T + to_prior[:3, 3]
    return CtSeries(GEN.ct_hu(points).reshape(grid.shape).astype(np.float32), grid, "", (), ())


PRIOR_GRID = axial((-81, -90, -100), (3, 3, 3), (67, 64, 54), PRIOR)


def errors(result, true_prior_to_new: np.ndarray) -> tuple[float, float]:
    """Distance (mm) at the target and rotation angle (degrees) between found and true transforms."""
    target = np.append(TARGET_A, 1.0)
    distance = float(np.linalg.norm((result.matrix @ target - true_prior_to_new @ target)[:3]))
    residual = result.matrix[:3, :3] @ true_prior_to_new[:3, :3].T
    return distance, float(np.degrees(np.arccos(np.clip((np.trace(residual) - 1) / 2, -1, 1))))


CASES = {  # prior -> new transform; new grid (origin, spacing, shape): other pixels, slices, scan length
    "small rotations": (
        rigid(5, 2, (10, -8, 12)) @ rigid(-4, 0, (0, 0, 0)),
        ((-85, -95, -70), (4, 2.5, 2.5), (41, 80, 68)),
        False,
    ),
    "10 deg and 30 mm": (
        rigid(10, 0, (30, 20, -25)) @ rigid(8, 1, (0, 0, 0)),
        ((-85, -95, -70), (2, 3.5, 3.5), (70, 56, 48)),
        False,
    ),
    "partial overlap, bone": (
        rigid(-10, 2, (-25, 15, 30)) @ rigid(6, 0, (0, 0, 0)),
        ((-85, -95, -40), (3, 2.5, 2.5), (35, 80, 68)),
        True,
    ),
    "yaw and shift, bone": (
        rigid(-7, 1, (-12, 28, -18)) @ rigid(9, 2, (0, 0, 0)),
        ((-90, -90, -75), (5, 3, 3), (34, 62, 58)),
        True,
    ),
    "neck only, 60 mm from the centres": (  # the scans' centres are 60 mm apart along z
        rigid(5.5, 2, (-16.5, -12, 22.4)) @ rigid(7.9, 1, (0, 0, 0)) @ rigid(2.5, 0, (0, 0, 0)),
        ((-88, -95, -80), (2, 3, 3), (42, 66, 60)),
        False,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_known_transform_is_recovered(name, record_property):
    matrix, (origin, spacing, shape), bone = CASES[name]
    new = phantom(axial(origin, spacing, shape, NEW), np.linalg.inv(matrix))
    prior = phantom(PRIOR_GRID, np.eye(4))
    started = time.process_time()
    result = register_ct(prior, new, bone=bone)
    record_property("cpu_s", time.process_time() - started)
    distance_mm, angle_deg = errors(result, matrix)
    record_property("errors", (distance_mm, angle_deg, result.metric_value))
    assert result.converged, result.stop_condition
    assert distance_mm < 1.0 and angle_deg < 0.5
    assert result.second_optimum is None  # no other optimum along z: not ambiguous
    assert require_usable(result, Path("x")) is result
    assert result.label == f"automatic rigid registration, not reviewed (Mattes MI {result.metric_value:.3f})"
    np.testing.assert_allclose(
        result.point_map()(TARGET_A[None] @ np.eye(3)),
        result.new_to_prior[None, :3, :3] @ TARGET_A + result.new_to_prior[:3, 3],
        atol=1e-9,
    )


def test_a_registration_one_vertebra_off_is_refused_as_ambiguous():
    """Started 8 mm caudal of the answer, the neck-only registration converges a vertebra off (8 mm):
    its metric passes the threshold, but the metric along z has a better optimum 8 mm away: refused."""
    matrix, (origin, spacing, shape), _ = CASES["neck only, 60 mm from the centres"]
    new = phantom(axial(origin, spacing, shape, NEW), np.linalg.inv(matrix))
    result = register_ct(phantom(PRIOR_GRID, np.eye(4)), new, initial_matrix=rigid(0, 2, (0, 0, -8)) @ matrix)
    distance_mm, _ = errors(result, matrix)
    assert result.converged and distance_mm > 5.0 and result.metric_value < autoreg.DEFAULT_MAX_METRIC
    other = result.second_optimum
    assert other is not None and abs(other.shift_mm + 8.0) <= 2.0 and other.metric_value < other.metric_at_result
    with pytest.raises(InputError, match=rf"ambiguous: shifted {other.shift_mm:+.0f} mm along z .* a second optimum"):
        require_usable(result, Path("x"))


def test_start_from_a_given_matrix_finds_the_same_answer():
    matrix = rigid(8, 2, (20, -15, 10))
    new = phantom(axial((-85, -95, -70), (4, 3, 3), (41, 66, 56), NEW), np.linalg.inv(matrix))
    result = register_ct(phantom(PRIOR_GRID, np.eye(4)), new, initial_matrix=rigid(6, 2, (17, -12, 14)))
    distance_mm, angle_deg = errors(result, matrix)
    assert distance_mm < 1.0 and angle_deg < 0.5


# ------------------------------------------------------------------ through DICOM files and the CLI


def write_ct(folder: Path, series: CtSeries, study: str) -> list[Path]:
    header = Dataset()
    header.PatientID, header.PatientName, header.StudyInstanceUID = "AUTOREG-1", "Phantom^Autoreg", study
    header.StudyDate, header.StudyTime, header.StudyID = "20240115", "083000", "AUTOREG"
    folder.mkdir()
    paths = []
    for ds in ct_series_datasets(series.hu, series.grid, header, description="phantom CT"):
        paths.append(save_atomic(ds, folder / f"ct_{ds.InstanceNumber:03d}.dcm"))
    return paths


@pytest.fixture(scope="module")
def course_folders(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    root = tmp_path_factory.mktemp("autoreg")
    matrix = rigid(7, 2, (12, -20, 15)) @ rigid(-5, 0, (0, 0, 0))
    write_ct(root / "prior", phantom(PRIOR_GRID, np.eye(4)), generate_uid())
    write_ct(
        root / "new",
        phantom(axial((-85, -95, -70), (4, 3, 3), (41, 66, 56), NEW), np.linalg.inv(matrix)),
        generate_uid(),
    )
    return root / "prior", root / "new", matrix


def reirrad(*args) -> subprocess.CompletedProcess:
    """The console script in a fresh interpreter."""
    code = "from reirrad.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=False)


def moving_field(points_mm: np.ndarray) -> np.ndarray:
    """A prior-course dose (Gy), linear in the prior frame, different along each axis."""
    return 30.0 + 0.25 * points_mm[..., 0] - 0.15 * points_mm[..., 1] + 0.1 * points_mm[..., 2]


def test_register_writes_a_reg_that_maps_the_prior_dose_in_the_right_direction(course_folders, tmp_path):
    prior_dir, new_dir, matrix = course_folders
    run = reirrad("register", prior_dir, new_dir, "--output", tmp_path / "reg.dcm", "--qa", tmp_path / "qa.png")
    assert run.returncode == 0, run.stderr
    assert "automatic rigid registration, not reviewed (Mattes MI -" in run.stdout
    assert (tmp_path / "qa.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    reg = read_registration(tmp_path / "reg.dcm")
    assert reg.frame_of_reference_uid == NEW
    new_to_prior, _ = reference_to_moving(NEW, PRIOR, [reg], tmp_path)
    # a dose known in the prior frame, sampled at new-frame points through the REG
    new_grid = axial((-20, -20, -40), (3, 3, 3), (11, 11, 11), NEW)
    prior_grid = axial((-90, -90, -100), (2, 2, 2.5), (81, 91, 91), PRIOR)
    index = np.indices(prior_grid.shape).reshape(3, -1).T
    prior_dose = moving_field(prior_grid.to_patient(index)).reshape(prior_grid.shape)
    values, covered = resample(prior_dose, prior_grid, new_grid, new_to_prior)
    points = new_grid.to_patient(np.indices(new_grid.shape).reshape(3, -1).T)
    truth = np.linalg.inv(matrix)
    expected = moving_field(points @ truth[:3, :3].T + truth[:3, 3]).reshape(new_grid.shape)
    wrong = moving_field(points @ matrix[:3, :3].T + matrix[:3, 3]).reshape(new_grid.shape)
    assert covered.all()
    assert np.abs(values - expected).max() < 0.3  # 1 mm x the steepest gradient, 0.3 Gy/mm
    assert np.abs(values - wrong).max() > 5.0


def test_written_reg_is_clean_under_dciodvfy(course_folders, tmp_path):
    if shutil.which("dciodvfy") is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy (dicom3tools) is missing in CI")
        pytest.skip("dciodvfy (dicom3tools) not installed")
    prior_dir, new_dir, _ = course_folders
    assert reirrad("register", prior_dir, new_dir, "--output", tmp_path / "reg.dcm").returncode == 0
    for path in (tmp_path / "reg.dcm", next(new_dir.glob("*.dcm"))):
        run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
        problems = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(("Error", "Warning"))]
        assert not problems, (path, problems)


def test_non_converging_registration_is_refused(course_folders, tmp_path, monkeypatch):
    prior_dir, new_dir, _ = course_folders
    monkeypatch.setattr(autoreg, "MAX_ITERATIONS_PER_LEVEL", 2)
    with pytest.raises(InputError, match="did not converge"):
        autoreg.register_and_write(prior_dir, new_dir, tmp_path / "reg.dcm")
    assert not (tmp_path / "reg.dcm").exists()


def test_bad_metric_is_refused_with_exit_2(course_folders, tmp_path):
    prior_dir, new_dir, _ = course_folders
    run = reirrad("register", prior_dir, new_dir, "--output", tmp_path / "reg.dcm", "--max-metric", "-5")
    assert run.returncode == 2
    assert "worse than the threshold -5" in run.stderr and len(run.stderr.splitlines()) == 1
    assert not (tmp_path / "reg.dcm").exists()


def test_unrelated_anatomy_is_refused(tmp_path):
    """A new CT of other anatomy (a water cylinder) cannot match: refused (its optimiser wanders)."""
    grid = axial((-85, -95, -70), (4, 3, 3), (41, 66, 56), NEW)
    points = grid.to_patient(np.indices(grid.shape).reshape(3, -1).T)
    hu = np.where(np.hypot(points[:, 0], points[:, 1]) < 60, 0.0, -1000.0).reshape(grid.shape).astype(np.float32)
    result = register_ct(phantom(PRIOR_GRID, np.eye(4)), CtSeries(hu, grid, "", (), ()))
    with pytest.raises(InputError, match=r"did not converge|worse than the threshold"):
        require_usable(result, tmp_path)


def test_output_onto_an_input_is_refused(course_folders):
    prior_dir, new_dir, _ = course_folders
    victim = next(new_dir.glob("*.dcm"))
    before = victim.read_bytes()
    run = reirrad("register", prior_dir, new_dir, "--output", victim)
    assert run.returncode == 2
    assert victim.read_bytes() == before


def test_folder_without_ct_is_refused(course_folders, tmp_path):
    prior_dir, _, _ = course_folders
    (tmp_path / "empty").mkdir()
    run = reirrad("register", prior_dir, tmp_path / "empty", "--output", tmp_path / "reg.dcm")
    assert run.returncode == 2 and "no CT image" in run.stderr


def _cropped_ct(source: Path, folder: Path, first: int, count: int) -> Path:
    """``count`` consecutive slices of the CT series in ``source`` (from the ``first``), copied to ``folder``."""
    folder.mkdir()
    for path in sorted(source.glob("*.dcm"))[first : first + count]:
        shutil.copy(path, folder / path.name)
    return folder


def test_short_scans_from_a_given_reg_limit_the_second_optimum_scan_instead_of_crashing(tmp_path):
    """42 mm of the prior CT (14 slices) and 30 mm of the new (10), started from the sample's REG (no
    shift search): the ambiguity scan along z cannot evaluate the metric at +/-40 mm (ITK: all samples
    outside the moving image). Those shifts are left out and the reach is stated (was exit 3)."""
    prior = _cropped_ct(SAMPLES / "hn_sbrt_reirradiation" / "course1" / "ct", tmp_path / "prior", 20, 14)
    new = _cropped_ct(SAMPLES / "hn_sbrt_reirradiation" / "course2" / "ct", tmp_path / "new", 30, 10)
    reg = SAMPLES / "hn_sbrt_reirradiation" / "course2" / "reg.dcm"
    run = reirrad("register", prior, new, "--initial", reg, "--output", tmp_path / "reg.dcm")
    assert run.returncode == 0, run.stderr
    reached = re.search(
        r"second optimum searched along z from ([-+\d.]+) to ([-+\d.]+) mm only \(of \+/-40 mm", run.stdout
    )
    assert reached, run.stdout
    low, high = float(reached.group(1)), float(reached.group(2))
    assert -40.0 <= low < -autoreg.AMBIGUITY_EXCLUDE_MM and autoreg.AMBIGUITY_EXCLUDE_MM < high < 40.0
    assert (low, high) != (-40.0, 40.0)


def test_no_overlap_at_the_result_is_refused_by_the_second_optimum_check():
    """The metric cannot be evaluated even at the result (the prior scan lies 500 mm to the side): an
    InputError naming the new CT, not ITK's RuntimeError."""
    rng = np.random.default_rng(5)
    new = CtSeries(
        rng.normal(0, 300, (8, 16, 16)).astype(np.float32), axial((0, 0, 0), (3, 3, 3), (8, 16, 16), NEW), "", (), ()
    )
    prior = CtSeries(new.hu.copy(), axial((500, 0, 0), (3, 3, 3), (8, 16, 16), PRIOR), "", (), ())
    with pytest.raises(InputError, match="overlap too little at the result"):
        autoreg.second_optimum(autoreg.to_sitk(new), autoreg.to_sitk(prior), np.eye(4), new)


# ------------------------------------------------------------------ reirrad check with an automatic registration

SBRT = SAMPLES / "hn_sbrt_reirradiation"


@pytest.fixture(scope="module")
def sbrt_without_reg(tmp_path_factory) -> Path:
    """The sample SBRT case (courses in two frames, planning CTs included) without its REG."""
    root = tmp_path_factory.mktemp("sbrt")
    for course in ("course1", "course2"):
        shutil.copytree(SBRT / course, root / course, ignore=shutil.ignore_patterns("reg.dcm"))
    lines = (SBRT / "case.toml").read_text().splitlines()
    (root / "case.toml").write_text("\n".join(line for line in lines if not line.startswith("registration")) + "\n")
    return root


def check_json(*args) -> tuple[int, dict]:
    run = reirrad("check", *args, "--format", "json")
    return run.returncode, (json.loads(run.stdout) if run.stdout else {"stderr": run.stderr})


def test_courses_in_two_frames_without_reg_are_still_refused(sbrt_without_reg):
    """Never silently: without --auto-register (or registration = "auto") no registration is computed."""
    run = reirrad("check", sbrt_without_reg / "case.toml")
    assert run.returncode == 2
    assert "no registration relating them" in run.stderr


def test_check_with_automatic_registration_matches_the_reg_and_says_so(sbrt_without_reg):
    code_reg, with_reg = check_json(SBRT / "case.toml")
    case = sbrt_without_reg / "case_auto.toml"
    case.write_text(
        (sbrt_without_reg / "case.toml")
        .read_text()
        .replace('path = "course2"', 'path = "course2"\nregistration = "auto"')
    )
    code_auto, auto = check_json(case)
    assert code_auto == code_reg == 1  # the left carotid fails either way

    label = auto["courses"][0]["registration"]
    assert label.startswith("automatic rigid registration, not reviewed (Mattes MI -")
    assert float(label.rsplit(" ", 1)[1].rstrip(")")) < autoreg.DEFAULT_MAX_METRIC
    assert f"prior: {label}" in auto["assumptions"]["registration"]
    flags = [f for f in auto["flags"] if f["id"] == "automatic_registration_not_reviewed"]
    assert len(flags) == 1 and flags[0]["severity"] == "high" and "prior" in flags[0]["message"]
    assert not [f for f in with_reg["flags"] if f["id"] == "automatic_registration_not_reviewed"]
    for found, given in zip(auto["results"], with_reg["results"]):
        assert (found["organ"], found["status"]) == (given["organ"], given["status"])
        if given["value_gy"] is not None:  # within 1 mm of the REG: at most 1 Gy on these gradients
            assert abs(found["value_gy"] - given["value_gy"]) < 1.0, found["organ"]


def test_auto_register_option_on_course_folders(sbrt_without_reg):
    code, report = check_json(
        "--prior", sbrt_without_reg / "course1", "--new", sbrt_without_reg / "course2", "--auto-register"
    )
    assert code == 1
    assert report["courses"][0]["registration"].startswith("automatic rigid registration, not reviewed")


def test_a_written_reg_placed_in_a_course_folder_stays_unreviewed(sbrt_without_reg, tmp_path):
    """A REG that `reirrad register` wrote, dropped into the course folder, is still named an
    automatic, unreviewed registration and flagged: never a plain "REG <uid>"."""
    run = reirrad(
        "register",
        sbrt_without_reg / "course1" / "ct",
        sbrt_without_reg / "course2" / "ct",
        "--output",
        tmp_path / "auto-reg.dcm",
    )
    assert run.returncode == 0, run.stderr
    assert read_registration(tmp_path / "auto-reg.dcm").label.startswith("automatic rigid registration, not reviewed")
    case = tmp_path / "case"
    shutil.copytree(sbrt_without_reg, case)
    shutil.copy(tmp_path / "auto-reg.dcm", case / "course2" / "auto-reg.dcm")
    code, report = check_json(case / "case.toml")
    assert code == 1, report
    label = report["courses"][0]["registration"]
    assert label.startswith("automatic rigid registration, not reviewed") and "written by reirrad register" in label
    assert [f for f in report["flags"] if f["id"] == "automatic_registration_not_reviewed"]


# ------------------------------------------------------------------ the QA picture in the check report


@pytest.fixture(scope="module")
def auto_report(sbrt_without_reg):
    """The sample SBRT case checked with registration = "auto" (in process: one registration)."""
    from reirrad.case import load_case
    from reirrad.check import run_check

    case = sbrt_without_reg / "case_qa.toml"
    case.write_text(
        (sbrt_without_reg / "case.toml")
        .read_text()
        .replace('path = "course2"', 'path = "course2"\nregistration = "auto"')
    )
    return run_check(load_case(case))


def test_qa_caption_states_the_transform_as_shift_and_rotation():
    """10 degrees about z then 5 mm along x (prior -> new): the view point (10, 0, 0) mm of the new
    frame came from inv(M) (10, 0, 0) of the prior frame."""
    from reirrad.report.regqa import caption

    result = autoreg.AutoRegistration(rigid(10, 2, (5, 0, 0)), PRIOR, NEW, -1.2341, 50, True, "stop", False)
    text = caption(result, np.array([10.0, 0.0, 0.0]), "ROI X", "prior")
    assert text.startswith("course 'prior': automatic rigid registration, not reviewed (Mattes MI -1.234)")
    # by hand: (10, 0, 0) - R(-10 deg) (5, 0, 0) = (10 - 5 cos 10, 5 sin 10, 0) = (5.08, 0.87, 0); 5.15 mm long
    assert "shift (5.1, 0.9, 0.0) mm (5.1 mm) at the view point" in text
    assert "rotation 10.00 degrees about (0.00, 0.00, 1.00)" in text and "through ROI X (10.0, 0.0, 0.0) mm" in text


def _qa_png(html: str) -> np.ndarray:
    """The automatic-registration figure's embedded PNG, decoded to 8-bit grey (rows, columns)."""
    import base64
    import io
    import re

    from matplotlib.image import imread

    section = html.split("<h2>Automatic registration QA (not reviewed)</h2>", 1)[1]
    data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', section).group(1))
    rgba = imread(io.BytesIO(data), format="png")
    assert np.array_equal(rgba[..., 0], rgba[..., 1]) and np.array_equal(rgba[..., 0], rgba[..., 2])
    return np.rint(rgba[..., 0] * 255).astype(int)


def test_check_report_shows_the_registration_qa_checkerboard(auto_report):
    """HTML: the QA picture's axial view alternates tiles of the new CT and of the prior CT resampled
    (independently, trilinear) through the matrix the JSON records, through the new course's target."""
    from reirrad.dicom.structures import read_structures
    from reirrad.report.html import to_html
    from reirrad.report.machine import to_json
    from reirrad.report.regqa import BAND_PX, GAP_PX, TILE_PX, WINDOW_HU, pixels_per_voxel

    assumed = json.loads(to_json(auto_report))["assumptions"]["automatic_registration"]
    assert assumed.startswith("prior: automatic rigid registration, not reviewed: Mattes MI -")
    matrix = np.array(json.loads(assumed.rsplit(": ", 1)[1]))
    new, prior = autoreg.read_ct_series(SBRT / "course2" / "ct"), autoreg.read_ct_series(SBRT / "course1" / "ct")
    reg = read_registration(SBRT / "course2" / "reg.dcm").matrix(
        prior.frame_of_reference_uid, new.frame_of_reference_uid
    )
    target_prior = np.append(TARGET_A, 1.0)
    assert np.linalg.norm((matrix @ target_prior - reg @ target_prior)[:3]) < 1.0  # the sample's own REG, within 1 mm

    html = to_html(auto_report)
    caption = html.split("<figcaption>", 1)[1].split("</figcaption>", 1)[0]
    assert "automatic rigid registration, not reviewed (Mattes MI -" in caption
    assert "through target PTV_35" in caption and " mm) at the view point, rotation " in caption
    picture = _qa_png(html)
    ptv = read_structures(SBRT / "course2" / "structures.dcm").by_name("PTV_35")
    centre = np.concatenate([c.points_mm for c in ptv.contours]).mean(axis=0)
    k = int(np.rint(new.grid.to_index(centre[None])[0][0]))
    origin = tuple(float(v) for v in new.grid.to_patient(np.array([[k, 0, 0]]))[0])
    plane = dataclasses.replace(new.grid, origin_mm=origin, shape=(1, *new.grid.shape[1:]))
    moved, covered = resample(prior.hu, prior.grid, plane, np.linalg.inv(matrix))
    moved = np.where(covered, moved, -1000.0)[0]

    def grey(hu):
        return np.rint(np.clip((hu - WINDOW_HU[0]) / (WINDOW_HU[1] - WINDOW_HU[0]), 0, 1) * 255).astype(int)

    pk, pj, pi = pixels_per_voxel(new)
    frames, rows, columns = np.asarray(new.grid.shape) * (pk, pj, pi)
    assert picture.shape == (BAND_PX + max(rows, frames), max(600, 2 * columns + rows + 2 * GAP_PX))
    axial = picture[BAND_PX : BAND_PX + rows, :columns]
    r, c = np.indices(axial.shape)
    new_tile = (r // TILE_PX + c // TILE_PX) % 2 == 0
    fixed_px, moved_px = (np.repeat(np.repeat(grey(a), pj, axis=0), pi, axis=1) for a in (new.hu[k], moved))
    assert np.array_equal(axial[new_tile], fixed_px[new_tile])  # the new CT's tiles: exactly its grey levels
    assert np.abs(axial[~new_tile] - moved_px[~new_tile]).max() <= 2  # the prior's: the resampled prior CT
    differs = np.abs(fixed_px - moved_px)[~new_tile] > 10  # where the two CTs differ, the prior tiles show the prior
    assert differs.sum() > 100
    assert np.all(
        np.abs(axial[~new_tile] - moved_px[~new_tile])[differs]
        < np.abs(axial[~new_tile] - fixed_px[~new_tile])[differs]
    )


def test_a_check_without_figures_keeps_no_registration_qa_and_a_picture_no_whole_ct(auto_report, sbrt_without_reg):
    """figures=False (batch, JSON, CSV, console): the automatic registration is recorded, but the report
    keeps no QA picture and so neither CT (pickled 2.96 MB, both CT volumes, before). With figures, the
    picture keeps only its three planes (8-bit grey), not the CT volumes (each 2.9 MB as float32 HU)."""
    import pickle

    from reirrad.case import load_case
    from reirrad.check import CheckOptions, run_check

    report = run_check(load_case(sbrt_without_reg / "case_qa.toml"), CheckOptions(figures=False))
    assert report.registration_pictures == ()
    assert report.assumptions["automatic_registration"] == auto_report.assumptions["automatic_registration"]
    assert len(pickle.dumps(report)) < 100_000

    (picture,) = auto_report.registration_pictures
    views = picture.png.args[0].views
    new = autoreg.read_ct_series(SBRT / "course2" / "ct")
    frames, rows, columns = new.grid.shape
    shapes = [(rows, columns), (frames, columns), (frames, rows)]
    assert [tuple(p.shape) for pair in views.planes for p in pair] == [s for s in shapes for _ in (0, 1)]
    assert all(p.dtype == np.uint8 for pair in views.planes for p in pair)
    planes_bytes = sum(p.nbytes for pair in views.planes for p in pair)
    assert len(pickle.dumps(picture)) < planes_bytes + 20_000 < new.hu.nbytes


def test_every_result_computed_through_an_automatic_registration_says_so(auto_report):
    """Issue #12: each result with a value names the automatic registration and its final metric in its
    own notes (JSON, the console's numbered notes, the HTML row); a result without a value does not."""
    from reirrad.report.console import footnote_marks
    from reirrad.report.html import ROW_ORDER, to_html
    from reirrad.report.machine import to_json

    label = json.loads(to_json(auto_report))["courses"][0]["registration"]
    note = f"course 'prior': {label}"
    assert note.startswith("course 'prior': automatic rigid registration, not reviewed (Mattes MI -")
    results = json.loads(to_json(auto_report))["results"]
    valued = [r for r in results if r["value_gy"] is not None]
    assert len(valued) > 5 and all(r["notes"].count(note) == 1 for r in valued)
    assert all(note not in r["notes"] for r in results if r["value_gy"] is None)
    footnotes, marks = footnote_marks(auto_report)
    number = str(footnotes.index(note) + 1)
    assert [number in m.split(",") for m in marks] == [r["value_gy"] is not None for r in results]
    table = to_html(auto_report).split("<th>Reason / notes</th>", 1)[1].split("</tbody>", 1)[0]
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    assert len(rows) == len(results)
    ordered = sorted(results, key=lambda r: ROW_ORDER.index(r["status"]))  # the HTML's row order
    assert [label in row for row in rows] == [r["value_gy"] is not None for r in ordered]


def test_csv_rows_computed_through_an_automatic_registration_say_so(auto_report):
    """The CSV's last column, ``notes``, holds each result's notes joined by " | ": the rows with a value
    name the automatic registration; the columns before it are unchanged (fixed ones, then per course)."""
    import csv
    import io

    from reirrad.report.machine import CSV_COLUMNS, to_csv

    label = auto_report.courses[0].registration
    reader = csv.DictReader(io.StringIO(to_csv(auto_report)))
    assert reader.fieldnames == [*CSV_COLUMNS, "prior_gy", "new_gy", "notes"]
    rows = list(reader)
    assert len(rows) == len(auto_report.results) and len([r for r in rows if r["value_gy"]]) > 5
    for row, result in zip(rows, auto_report.results, strict=True):
        assert row["notes"] == " | ".join(result.notes)
        assert (f"course 'prior': {label}" in row["notes"].split(" | ")) == (row["value_gy"] != "")
