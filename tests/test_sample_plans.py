"""Sample plans: valid, reproducible DICOM whose designed verdicts hold in the analytic truth.

The truth (organ shapes, dose functions, the frame A -> B transform) comes from
``sample_plans/generate.py``; the files are read back with reirrad's readers, pydicom and
dicompyler-core. Cumulative EQD2 is computed here by hand, independently of reirrad's pipeline.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest

from reirrad.constraints import load_constraint_set
from reirrad.dicom.dose import read_dose
from reirrad.dicom.structures import read_structures

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
SBRT, CONVENTIONAL = "hn_sbrt_reirradiation", "hn_conventional_reirradiation"

# Clinical design targets of the demo cases: the default constraint set's cumulative EQD2 levels
# (Gy), read from constraints/hn-reirradiation.toml where they are cited.
_LIMITS = {c.id: c for c in load_constraint_set("hn-reirradiation").constraints}
CORD_WARN_GY, CORD_FAIL_GY = _LIMITS["spinalcord-dmax"].warn_gy, _LIMITS["spinalcord-dmax"].limit_gy
CAROTID_DMAX_GY = _LIMITS["carotid-dmax[A_Carotid_L]"].limit_gy
MANDIBLE_NEAR_MAX_GY = _LIMITS["mandible-dmax"].warn_gy
TEMPORAL_LOBE_D1_5CC_GY = _LIMITS["temporal-lobe-d1.5cc[Lobe_Temporal_L]"].warn_gy
MARGIN_GY = 1.0  # designed values stay at least this far from every boundary


def _load_generator():
    spec = importlib.util.spec_from_file_location("sample_plans_generate", SAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
COURSES = [(case, i) for case in gen.CASES for i in range(2)]


def _course(case: str, index: int):
    return gen.CASES[case].courses[index]


def _folder(case: str, index: int) -> Path:
    return SAMPLES / case / _course(case, index).folder


def eqd2(dose_gy: np.ndarray, fractions: int, alpha_beta_gy: float) -> np.ndarray:
    """EQD2 = D (D/n + a/b) / (2 + a/b), written out here so the check does not use reirrad.eqd2."""
    return dose_gy * (dose_gy / fractions + alpha_beta_gy) / (2.0 + alpha_beta_gy)


def lattice_inside(shape, step_mm: float) -> np.ndarray:
    """Points (N, 3) of a regular lattice with ``step_mm`` spacing that lie inside ``shape``."""
    lo, hi = shape.bounds_mm()
    axes = [np.arange(a, b + step_mm, step_mm) for a, b in zip(lo, hi)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return points[gen.contains(shape, points)]


def cumulative_eqd2_at_frame_a_points(case: str, points_a: np.ndarray, alpha_beta_gy: float) -> np.ndarray:
    """Prior EQD2 at the frame-A points plus new EQD2 at the same anatomy in the new frame (Gy)."""
    prior, new = gen.CASES[case].courses
    points_new = new.from_frame_a.apply(points_a)
    return eqd2(prior.dose_gy(*points_a.T), prior.fractions, alpha_beta_gy) + eqd2(
        new.dose_gy(*points_new.T), new.fractions, alpha_beta_gy
    )


def dense_eqd2(case: str, organ: str, alpha_beta_gy: float, step_mm: float = 0.5) -> np.ndarray:
    """Cumulative EQD2 (Gy) on a fine lattice inside the analytic organ."""
    return cumulative_eqd2_at_frame_a_points(case, lattice_inside(gen.ORGANS_A[organ], step_mm), alpha_beta_gy)


def reference_voxel_eqd2(case: str, organ: str, alpha_beta_gy: float) -> np.ndarray:
    """Cumulative EQD2 (Gy) at the new course's dose-grid voxel centres inside the organ (what a grid sees)."""
    new = gen.CASES[case].courses[-1]
    grid = read_dose(_folder(case, 1) / "dose.dcm").grid
    centres = grid.to_patient(np.stack(np.indices(grid.shape), axis=-1).reshape(-1, 3))
    inside = centres[gen.contains(gen.Moved(gen.ORGANS_A[organ], new.from_frame_a), centres)]
    return cumulative_eqd2_at_frame_a_points(case, new.from_frame_a.inverse().apply(inside), alpha_beta_gy)


def d_cc(values_gy: np.ndarray, volume_cc: float, step_mm: float) -> float:
    """Lowest dose in the hottest ``volume_cc`` of lattice samples each worth ``step_mm``^3."""
    hottest = round(volume_cc * 1000.0 / step_mm**3)
    return float(np.sort(values_gy)[::-1][hottest - 1])


def contour_centroid_mm(roi) -> np.ndarray:
    """Volume centroid (mm) of a ROI from its planar contours (shoelace area x centroid per plane)."""
    weights, centres = [], []
    for contour in roi.closed_contours:
        x, y, z = contour.points_mm.T
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y
        area = cross.sum() / 2.0
        weights.append(abs(area))
        centres.append(
            [((x + np.roll(x, -1)) * cross).sum() / (6 * area), ((y + np.roll(y, -1)) * cross).sum() / (6 * area), z[0]]
        )
    return np.average(np.asarray(centres), axis=0, weights=weights)


# ----------------------------------------------------------------------------------------------
# Files: reproducible, small, valid
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_plans")
    for case in gen.CASES.values():
        gen.write_case(case, out)
    return out


def _sample_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in {".dcm", ".toml"})


def test_generator_reproduces_the_committed_files_byte_for_byte(regenerated: Path) -> None:
    committed = _sample_files(SAMPLES)
    assert committed == _sample_files(regenerated)
    assert len([p for p in committed if "ct" not in p.parts]) == 15
    assert len([p for p in committed if "ct" in p.parts]) == 70 + 75  # SBRT case: one CT slice per dose-grid frame
    changed = [str(p) for p in committed if (SAMPLES / p).read_bytes() != (regenerated / p).read_bytes()]
    assert not changed, f"regenerate with `python sample_plans/generate.py`: {changed}"


_LATER_CT_SLICES = {f"ct_{n:03d}.dcm" for n in range(2, 1000)}


def test_all_sample_files_together_are_under_5_mb() -> None:
    assert sum((SAMPLES / p).stat().st_size for p in _sample_files(SAMPLES)) < 5_000_000


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
@pytest.mark.parametrize(  # CT series: their first slice (every slice is written by the same code)
    "relative", [p for p in _sample_files(SAMPLES) if p.suffix == ".dcm" and p.name not in _LATER_CT_SLICES], ids=str
)
def test_dciodvfy_finds_no_errors(relative: Path) -> None:
    run = subprocess.run(["dciodvfy", str(SAMPLES / relative)], capture_output=True, text=True, timeout=60)
    lines = (run.stdout + run.stderr).splitlines()
    assert lines and lines[0].strip() in {"RTDose", "RTPlan", "RTStructureSet", "SpatialRegistration", "CTImage"}
    assert not [line for line in lines if line.startswith("Error")]


# ----------------------------------------------------------------------------------------------
# Content read back: dose, plan, structures, registration
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case,index", COURSES)
def test_stored_dose_equals_the_analytic_function_at_voxel_centres(case: str, index: int) -> None:
    course = _course(case, index)
    path = _folder(case, index) / "dose.dcm"
    dose = read_dose(path)
    scaling = float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)
    centres = dose.grid.to_patient(np.stack(np.indices(dose.grid.shape), axis=-1).reshape(-1, 3))
    expected = course.dose_gy(*centres.T).reshape(dose.grid.shape)
    assert (dose.summation_type, dose.dose_type) == ("PLAN", "PHYSICAL")
    assert np.abs(dose.dose_gy - expected).max() <= scaling / 2 + 1e-9
    assert 0.95 * course.prescription_gy < dose.max_gy < 1.2 * course.prescription_gy


@pytest.mark.parametrize("case,index", COURSES)
def test_plan_fractions_prescription_and_references(case: str, index: int) -> None:
    course = _course(case, index)
    folder = _folder(case, index)
    plan = pydicom.dcmread(folder / "plan.dcm")
    group = plan.FractionGroupSequence[0]
    assert group.NumberOfFractionsPlanned == course.fractions
    assert float(plan.DoseReferenceSequence[0].TargetPrescriptionDose) == course.prescription_gy
    per_fraction = sum(float(b.BeamDose) for b in group.ReferencedBeamSequence)
    assert per_fraction * course.fractions == pytest.approx(course.prescription_gy, abs=0.01)
    assert plan.PatientSetupSequence[0].PatientPosition == "HFS"
    dose = pydicom.dcmread(folder / "dose.dcm", stop_before_pixels=True)
    structures = pydicom.dcmread(folder / "structures.dcm")
    assert dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan.SOPInstanceUID
    assert plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == structures.SOPInstanceUID
    assert dose.FrameOfReferenceUID == plan.FrameOfReferenceUID == structures.FrameOfReferenceUID


@pytest.mark.parametrize("case,index", COURSES)
def test_contour_points_lie_on_the_analytic_organ_surfaces(case: str, index: int) -> None:
    course = _course(case, index)
    structures = read_structures(_folder(case, index) / "structures.dcm")
    assert [r.name for r in structures.rois] == [r.name for r in course.rois]
    for roi in structures.rois:
        if roi.is_empty:
            continue
        points = np.concatenate([c.points_mm for c in roi.closed_contours])
        assert np.abs(course.shape(roi.name).sdf(points)).max() < 0.35, roi.name


def test_clinical_names_derived_structures_and_the_empty_chiasm() -> None:
    prior = read_structures(_folder(SBRT, 0) / "structures.dcm")
    new = read_structures(_folder(SBRT, 1) / "structures.dcm")
    for name in (
        "SpinalCord",
        "Lt Temporal Lobe",
        "TemporalLobe_R",
        "A_Carotid_L",
        "Carotid_R",
        "SpinalCord_PRV5",
        "z_ring",
    ):
        assert not new.by_name(name).is_empty
    assert new.by_name("OpticChiasm").is_empty and not prior.by_name("OpticChiasm").is_empty
    ring_planes = [round(c.z_mm, 1) for c in new.by_name("z_ring").closed_contours]
    assert max(ring_planes.count(z) for z in ring_planes) == 2  # outer and inner contour on a plane


def _registration() -> pydicom.Dataset:
    return pydicom.dcmread(_folder(SBRT, 1) / "reg.dcm")


def _matrix_for(reg: pydicom.Dataset, frame_uid: str) -> np.ndarray:
    item = next(i for i in reg.RegistrationSequence if i.FrameOfReferenceUID == frame_uid)
    matrix = item.MatrixRegistrationSequence[0].MatrixSequence[0]
    assert matrix.FrameOfReferenceTransformationMatrixType == "RIGID"
    return np.asarray(matrix.FrameOfReferenceTransformationMatrix, dtype=float).reshape(4, 4)


def test_registration_maps_frame_a_anatomy_onto_the_same_anatomy_in_frame_b() -> None:
    reg = _registration()
    prior = read_structures(_folder(SBRT, 0) / "structures.dcm")
    new = read_structures(_folder(SBRT, 1) / "structures.dcm")
    assert prior.frame_of_reference_uid != new.frame_of_reference_uid
    assert str(reg.SOPClassUID) == gen.REG_SOP_CLASS and reg.FrameOfReferenceUID == new.frame_of_reference_uid
    np.testing.assert_allclose(_matrix_for(reg, new.frame_of_reference_uid), np.eye(4), atol=1e-12)
    a_to_b = _matrix_for(reg, prior.frame_of_reference_uid)
    np.testing.assert_allclose(a_to_b[:3, :3] @ a_to_b[:3, :3].T, np.eye(3), atol=1e-9)
    for name in ("Brainstem", "Lt Temporal Lobe", "TemporalLobe_R", "Parotid_L", "Larynx"):
        in_a = contour_centroid_mm(prior.by_name(name))
        in_b = contour_centroid_mm(new.by_name(name))
        mapped = a_to_b[:3, :3] @ in_a + a_to_b[:3, 3]
        assert np.linalg.norm(mapped - in_b) < 1.0, name
        wrong_way = np.linalg.inv(a_to_b)[:3, :3] @ in_a + np.linalg.inv(a_to_b)[:3, 3]
        assert np.linalg.norm(wrong_way - in_b) > 20.0, name


def test_registration_holds_the_generator_transform_of_a_few_degrees_and_a_shift() -> None:
    reg = _registration()
    prior_frame = pydicom.dcmread(_folder(SBRT, 0) / "dose.dcm", stop_before_pixels=True).FrameOfReferenceUID
    a_to_b = _matrix_for(reg, prior_frame)
    np.testing.assert_allclose(a_to_b, gen.FRAME_A_TO_B.matrix, atol=1e-8)
    angle_deg = np.degrees(np.arccos((np.trace(a_to_b[:3, :3]) - 1) / 2))
    assert 2.0 < angle_deg < 6.0 and np.linalg.norm(a_to_b[:3, 3]) > 20.0


@pytest.mark.parametrize("case,index", COURSES)
def test_dicompyler_core_reads_plan_dose_and_structures(case: str, index: int) -> None:
    dicomparser = pytest.importorskip("dicompylercore.dicomparser")
    course = _course(case, index)
    folder = _folder(case, index)
    assert dicomparser.DicomParser(str(folder / "plan.dcm")).GetPlan()["rxdose"] == pytest.approx(
        course.prescription_gy * 100
    )
    names = {s["name"] for s in dicomparser.DicomParser(str(folder / "structures.dcm")).GetStructures().values()}
    assert names == {r.name for r in course.rois}
    dose = dicomparser.DicomParser(str(folder / "dose.dcm")).GetDoseData()
    assert dose["dosemax"] * dose["dosegridscaling"] == pytest.approx(read_dose(folder / "dose.dcm").max_gy)


# ----------------------------------------------------------------------------------------------
# Designed verdicts, from the analytic truth
# ----------------------------------------------------------------------------------------------


def _interval_months(case: str) -> float:
    courses = tomllib.loads((SAMPLES / case / "case.toml").read_text())["courses"]
    end, start = courses[0]["end_date"], courses[1]["start_date"]
    assert isinstance(end, date) and isinstance(start, date)
    return (start - end).days / (365.25 / 12)


def _max_both_ways(case: str, organ: str, alpha_beta_gy: float) -> tuple[float, float]:
    return float(dense_eqd2(case, organ, alpha_beta_gy).max()), float(
        reference_voxel_eqd2(case, organ, alpha_beta_gy).max()
    )


@pytest.mark.parametrize("case", [SBRT, CONVENTIONAL])
def test_case_file_courses_and_interval(case: str) -> None:
    data = tomllib.loads((SAMPLES / case / "case.toml").read_text())
    assert data["constraints"] == "hn-reirradiation"
    assert [c["name"] for c in data["courses"]] == ["prior", "new"]
    for course in data["courses"]:
        assert (SAMPLES / case / course["path"]).is_dir()
    assert ("registration" in data["courses"][1]) == (case == SBRT)
    assert 14.0 < _interval_months(case) < 30.0


def test_sbrt_case_left_carotid_fails_and_right_carotid_passes() -> None:
    for value in _max_both_ways(SBRT, "carotid_l", 3.0):
        assert CAROTID_DMAX_GY + 5.0 < value < 136.0
    for value in _max_both_ways(SBRT, "carotid_r", 3.0):
        assert value < CAROTID_DMAX_GY - 20.0


def test_sbrt_case_cord_max_lands_in_the_warn_band() -> None:
    for value in _max_both_ways(SBRT, "cord", 2.0):
        assert CORD_WARN_GY + MARGIN_GY < value < CORD_FAIL_GY - MARGIN_GY


def test_sbrt_case_mandible_and_temporal_lobes_pass() -> None:
    assert max(_max_both_ways(SBRT, "mandible", 3.0)) < MANDIBLE_NEAR_MAX_GY - 20.0
    for lobe in ("temporal_lobe_l", "temporal_lobe_r"):
        assert d_cc(dense_eqd2(SBRT, lobe, 3.0, step_mm=1.0), 1.5, 1.0) < TEMPORAL_LOBE_D1_5CC_GY - 20.0


def test_sbrt_case_new_course_covers_the_ptv_and_spares_the_right_neck() -> None:
    new = _course(SBRT, 1)
    ptv = lattice_inside(new.shape("PTV_35"), 0.5)
    assert np.mean(new.dose_gy(*ptv.T) >= new.prescription_gy) > 0.95
    assert new.dose_gy(*new.from_frame_a.apply(lattice_inside(gen.ORGANS_A["parotid_r"], 1.0)).T).max() < 3.0


def test_conventional_case_warns_on_the_right_temporal_lobe_only() -> None:
    right = d_cc(dense_eqd2(CONVENTIONAL, "temporal_lobe_r", 3.0, step_mm=1.0), 1.5, 1.0)
    left = d_cc(dense_eqd2(CONVENTIONAL, "temporal_lobe_l", 3.0, step_mm=1.0), 1.5, 1.0)
    assert right > TEMPORAL_LOBE_D1_5CC_GY + 10.0
    assert left < TEMPORAL_LOBE_D1_5CC_GY - 10.0
    assert max(_max_both_ways(CONVENTIONAL, "cord", 2.0)) < CORD_WARN_GY - 10.0
    for carotid in ("carotid_l", "carotid_r"):
        assert max(_max_both_ways(CONVENTIONAL, carotid, 3.0)) < CAROTID_DMAX_GY - 5.0
    assert max(_max_both_ways(CONVENTIONAL, "mandible", 3.0)) < MANDIBLE_NEAR_MAX_GY - 20.0


# ---------------------------------------------------------------- the product's verdicts, pinned


@pytest.fixture(scope="module")
def sbrt_report():
    from reirrad.case import load_case
    from reirrad.check import run_check

    return run_check(load_case(SAMPLES / SBRT / "case.toml"))


def _result(report, constraint_id: str):
    return next(r for r in report.results if r.constraint_id == constraint_id)


def test_check_verdicts_on_the_sbrt_demo_case(sbrt_report) -> None:
    """`reirrad check` against the generator's analytic truth (dense 0.5 mm lattice inside each
    organ). Maxima read at most 3 % high: trilinear interpolation across the steep SBRT fall-off on
    the 3 mm grid and slab-stacked contours both err upwards, never downwards."""
    carotid = _result(sbrt_report, "carotid-dmax[A_Carotid_L]")
    truth = float(dense_eqd2(SBRT, "carotid_l", 3.0).max())
    assert carotid.status == "fail" and truth * 0.99 < carotid.value_gy < truth * 1.02
    assert sum(carotid.per_course.values()) == pytest.approx(carotid.value_gy, rel=1e-9)
    cord = _result(sbrt_report, "spinalcord-dmax")
    truth = float(dense_eqd2(SBRT, "cord", 2.0).max())
    assert cord.status == "warn" and truth * 0.995 < cord.value_gy < truth * 1.03
    assert _result(sbrt_report, "carotid-dmax[A_Carotid_R]").status == "pass"
    assert _result(sbrt_report, "mandible-dmax").status == "pass"
    chiasm = _result(sbrt_report, "chiasm-d0.03cc")
    assert chiasm.status == "not_evaluated" and "empty" in chiasm.reason
    # brachial plexus Dmax (both sides) is judged against the Chen 2017 warning level: pass
    assert _result(sbrt_report, "brachial-plexus-dmax[BrachialPlex_L]").status == "pass"
    assert sbrt_report.summary.counts == {"pass": 6, "warn": 1, "fail": 1, "not_evaluated": 1, "report": 10}
    assert sbrt_report.summary.exit_code == 1
    assert sbrt_report.courses[0].registration.startswith("REG ")


def test_check_flags_on_the_sbrt_demo_case(sbrt_report) -> None:
    flags = {f.id: f for f in sbrt_report.flags}
    assert {
        "carotid_blowout_risk",
        "stereotactic_consecutive_days",
        "missing_structures",
        "reirradiation_type",
        "miri_class",
    } <= set(flags)
    assert "type 1" in flags["reirradiation_type"].message
    assert all(f.mitigation and f.source for f in sbrt_report.flags)
    # the consecutive-day flag names the carotid dose of the stereotactic course (physical, > 17 Gy)
    assert "A_Carotid_L (A_Carotid_L) Dmax 32.3 Gy" in flags["stereotactic_consecutive_days"].message
    # one dose-per-fraction caution per organ (the cord's Dmax and D0.1cc gave two before)
    per_fraction = [f for f in sbrt_report.flags if f.id.startswith("dose_per_fraction")]
    assert [f.id for f in per_fraction] == ["dose_per_fraction_cord", "dose_per_fraction_serial_organ"]
    # 35 Gy / 5 fx stereotactic and no histology: the MIRI class does not apply and says why
    assert flags["miri_class"].message.startswith("MIRI prognostic class not given: histology not given")


def test_check_verdicts_on_the_conventional_case() -> None:
    from reirrad.case import load_case
    from reirrad.check import run_check

    report = run_check(load_case(SAMPLES / CONVENTIONAL / "case.toml"))
    lobe = _result(report, "temporal-lobe-d1.5cc[Lobe_Temporal_R]")
    truth = d_cc(dense_eqd2(CONVENTIONAL, "temporal_lobe_r", 3.0, step_mm=1.0), 1.5, 1.0)
    assert lobe.status == "warn" and lobe.value_gy == pytest.approx(truth, rel=0.02)
    assert report.summary.counts["fail"] == 0 and report.summary.counts["warn"] == 1
    assert report.summary.exit_code == 0
    assert report.courses[0].registration == "identity"


def test_demo_command_writes_every_report(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "demo", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "A_Carotid_L" in result.stdout and "FAIL" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "report.html", "report.json", "report.xml"]
    html = (tmp_path / "report.html").read_text()
    # one cumulative DVH figure per alpha/beta of the evaluated constraints (2 and 3 Gy), a hot-spot
    # figure per failing or warning organ (carotid, cord) and the per-course DVHs
    assert html.count('<img alt="cumulative EQD2 DVH, alpha/beta ') == 2 and "alpha/beta 2 Gy" in html
    assert html.count('src="data:image/png;base64,') == 2 + 2 + 1
