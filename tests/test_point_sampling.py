"""Each course's dose sampled on its own grid at the point map of reference-frame points.

A quadratic dose f(q) = c |q - q0|^2 has an exact trilinear interpolation error on an axis-aligned
grid: c * sum_i h_i^2 t_i (1 - t_i), with h_i the spacing and t_i the fractional index along axis
i. One interpolation on the prior's own grid (through a rotated REG) must give exactly f(q) plus
that error; resampling onto the reference grid and interpolating again (the former way) does not.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from sum_helpers import axial_grid, rigid, write_reg

from reirrad.accumulate import course_from_discovery, cumulative_eqd2_at, map_courses, phase_doses_at
from reirrad.case import CaseSpec, CourseSpec, load_case
from reirrad.check import run_check
from reirrad.dicom.discover import Course, Phase
from reirrad.dicom.dose import DoseGrid
from reirrad.dvh import trilinear
from reirrad.grid import resample
from reirrad.mapping import RigidMap

PRIOR_FRAME = "1.2.826.0.1.3680043.8.498.61"
NEW_FRAME = "1.2.826.0.1.3680043.8.498.62"
PRIOR_GRID = axial_grid((-40.0, -30.0, -25.0), (2.0, 2.5, 3.0), (18, 25, 40), PRIOR_FRAME)  # spacing (k, j, i) mm
NEW_GRID = axial_grid((-30.0, -30.0, -20.0), (3.0, 3.0, 3.0), (14, 20, 20), NEW_FRAME)
CURVATURE = 0.01  # Gy / mm^2
CENTRE_MM = np.array([-5.0, 2.0, 3.0])  # in the prior frame
TO_NEW = rigid(25.0, 2, (3.0, -4.0, 2.0))  # prior-frame points -> new frame (what the REG states)
SAMPLE_PLANS = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


def quadratic_gy(points_mm: np.ndarray) -> np.ndarray:
    return CURVATURE * np.sum((points_mm - CENTRE_MM) ** 2, axis=-1)


def interpolation_error_gy(index_kji: np.ndarray) -> np.ndarray:
    """Exact trilinear error of the quadratic at continuous indices of PRIOR_GRID."""
    t = index_kji - np.floor(index_kji)
    return CURVATURE * np.sum(np.asarray(PRIOR_GRID.spacing_mm) ** 2 * t * (1 - t), axis=-1)


def course(name: str, grid, values: np.ndarray, fractions: int, registrations=()):
    dose = DoseGrid(
        Path(f"/virtual/{name}.dcm"), grid, values, "PLAN", "PHYSICAL", f"1.2.3.{len(name)}", None, None, None
    )
    spec = CourseSpec(name=name, path=Path(f"/virtual/{name}"), fractions=fractions)
    found = Course(
        Path(f"/virtual/{name}"),
        (Phase(None, (dose,)),),
        None,
        tuple(registrations),
        grid.frame_of_reference_uid,
        (),
        (),
    )
    return course_from_discovery(spec, found)


def two_courses(tmp_path):
    centres = PRIOR_GRID.to_patient(np.indices(PRIOR_GRID.shape).reshape(3, -1).T)
    prior = course("prior", PRIOR_GRID, quadratic_gy(centres).reshape(PRIOR_GRID.shape), 25)
    reg = write_reg(tmp_path / "reg.dcm", NEW_FRAME, {PRIOR_FRAME: TO_NEW})
    new = course("new", NEW_GRID, np.full(NEW_GRID.shape, 2.0), 5, (reg,))
    case = CaseSpec(path=Path("/virtual/case.toml"), id="t", courses=(prior.spec, new.spec))
    return map_courses([prior, new], case)


def eqd2(dose_gy, fractions, alpha_beta_gy):
    return dose_gy * (dose_gy / fractions + alpha_beta_gy) / (2 + alpha_beta_gy)


def test_one_interpolation_through_a_rotated_reg_is_exact_to_the_closed_form(tmp_path):
    acc = two_courses(tmp_path)
    prior = acc.courses[0]
    rng = np.random.default_rng(3)
    positions = rng.uniform(0, np.array(NEW_GRID.shape) - 1, size=(5000, 3)).astype(
        np.float32
    )  # as RoiSampling has them
    (dose,), covered = phase_doses_at(prior.phases, acc.grid, positions, prior.point_map, margin_voxels=0.0)
    q = np.linalg.inv(TO_NEW)[:3, :3] @ NEW_GRID.to_patient(positions.astype(float)).T
    q = q.T + np.linalg.inv(TO_NEW)[:3, 3]  # the same anatomy in the prior frame
    index = PRIOR_GRID.to_index(q)
    inside = np.all((index >= 0) & (index <= np.array(PRIOR_GRID.shape) - 1), axis=1)
    assert 0.3 * len(q) < inside.sum() < len(q) and np.array_equal(covered, inside)
    expected = quadratic_gy(q) + interpolation_error_gy(index)
    np.testing.assert_allclose(dose[inside], expected[inside], rtol=1e-9, atol=1e-9)
    assert not dose[~inside].any()  # 0 Gy where the prior's grid does not reach

    # the same through the cumulative EQD2 at reference-frame points (what reports and figures read)
    total, both = cumulative_eqd2_at(acc, NEW_GRID.to_patient(positions.astype(float)), 3.0)
    assert np.array_equal(both, inside)
    np.testing.assert_allclose(total[inside], eqd2(expected, 25, 3.0)[inside] + eqd2(2.0, 5, 3.0), rtol=1e-9)

    # the former way, resampling onto the reference grid and interpolating again, is off by far more
    on_grid, _ = resample(prior.phases[0].dose_gy, PRIOR_GRID, NEW_GRID, prior.point_map.matrix)
    twice = trilinear(on_grid, positions)
    core = inside & np.all((index >= 2) & (index <= np.array(PRIOR_GRID.shape) - 3), axis=1)
    assert np.max(np.abs(twice[core] - expected[core])) > 1e-3


def test_a_course_on_the_evaluation_grid_is_sampled_bit_for_bit(tmp_path):
    """Identity map, same grid or the same lattice shifted by whole voxels (a grown grid): the
    samples are the trilinear interpolation at the very same positions."""
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 70, PRIOR_GRID.shape)
    prior = course("prior", PRIOR_GRID, values, 25)
    positions = rng.uniform(-0.5, np.array(PRIOR_GRID.shape) - 0.5, size=(4000, 3)).astype(np.float32)
    (dose,), covered = phase_doses_at(prior.phases, PRIOR_GRID, positions, RigidMap(None), margin_voxels=0.5)
    assert covered.all() and np.array_equal(dose, trilinear(values, positions))
    grown = replace(
        PRIOR_GRID, origin_mm=tuple(np.asarray(PRIOR_GRID.origin_mm) - (6.0, 5.0, 6.0)), shape=(22, 27, 44)
    )  # 2 columns (x), 2 rows (y) and 3 frames (z) more before the first voxel
    on_grown = positions + np.float32([3, 2, 2])
    (shifted,), _ = phase_doses_at(prior.phases, grown, on_grown, RigidMap(None), 0.5)
    assert np.array_equal(shifted, trilinear(values, on_grown.astype(float) - (3, 2, 2)))  # shifted exactly


def test_the_prior_structure_set_is_not_parsed_in_a_registered_check(monkeypatch):
    """Only the reference course's RTSTRUCT is evaluated; the prior's is parsed with --conservative only."""
    import reirrad.dicom.discover as discover

    parsed = []
    from_dataset, from_file = discover.structures_from_dataset, discover.read_structures

    def recording_dataset(ds, path):
        parsed.append(Path(path).parent.name)
        return from_dataset(ds, path)

    def recording_file(path):
        parsed.append(Path(path).parent.name)
        return from_file(path)

    # a file's contours are read by read_structures, an in-memory dataset's parsed directly
    monkeypatch.setattr(discover, "structures_from_dataset", recording_dataset)
    monkeypatch.setattr(discover, "read_structures", recording_file)
    report = run_check(load_case(SAMPLE_PLANS))
    assert parsed == ["course2"] and report.summary.exit_code == 1
    assert any(
        f.path.endswith("course1/structures.dcm") and f.sha256 for f in report.courses[0].files
    )  # still recorded


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    import hashlib
    import os

    from reirrad.accumulate import sha256_file

    calls = []
    original = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(1) or original(*a))
    path = tmp_path / "dose.dcm"
    path.write_bytes(b"first")
    assert sha256_file(path) == sha256_file(path) == original(b"first").hexdigest() and len(calls) == 1
    path.write_bytes(b"other")
    os.utime(path, ns=(1, 1))  # a new modification time: hashed again
    assert sha256_file(path) == original(b"other").hexdigest() and len(calls) == 2
