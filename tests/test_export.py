"""EQD2 exports: the cumulative sum written in slabs of frames equals the whole-grid sum."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from sum_helpers import axial_grid, rigid, voxel_centres, write_dose, write_reg

from reirrad import export
from reirrad.accumulate import cumulative_eqd2_at, cumulative_eqd2_gy, load_courses, map_courses
from reirrad.case import load_case
from reirrad.dicom import dose as dose_module
from reirrad.dicom.dose import read_dose
from reirrad.dicom.io import read_dataset
from reirrad.dicom.write import encode_pixels
from reirrad.eqd2 import eqd2_gy, recovery_model
from reirrad.export import write_cumulative_eqd2
from reirrad.grid import Grid

PRIOR_FRAME = "1.2.826.0.1.3680043.8.498.71"
NEW_FRAME = "1.2.826.0.1.3680043.8.498.72"
SAMPLE_PLANS = Path(__file__).resolve().parents[1] / "sample_plans"


@pytest.fixture()
def two_course_case(tmp_path):
    """Prior course (25 fx) on a coarse grid in its own frame, related by a REG (rotation + shift) to
    the new course (5 fx) on a finer grid of 23 frames; part of the new grid lies outside the prior one."""
    (tmp_path / "prior").mkdir()
    (tmp_path / "new").mkdir()
    prior_grid = axial_grid((-40, -40, -30), (3, 3, 3), (21, 27, 27), PRIOR_FRAME)
    p = voxel_centres(prior_grid)
    write_dose(tmp_path / "prior" / "dose.dcm", prior_grid, 40 + 0.5 * p[..., 0] - 0.3 * p[..., 1] + 0.2 * p[..., 2])
    new_grid = axial_grid((-30, -25, -20), (2.5, 2.0, 2.0), (23, 20, 18), NEW_FRAME)
    q = voxel_centres(new_grid)
    write_dose(tmp_path / "new" / "dose.dcm", new_grid, 30 * np.exp(-np.sum(q**2, axis=-1) / 400.0))
    write_reg(tmp_path / "new" / "reg.dcm", NEW_FRAME, {PRIOR_FRAME: rigid(20.0, 2, (6.0, -3.0, 15.0))})
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "slabs"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 25\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 5\nstart_date = 2025-01-14\nregistration = "new/reg.dcm"\n'
    )
    return path


@pytest.mark.parametrize("bits", [32, 16])
def test_slabbed_sum_writes_the_whole_grid_encoding(two_course_case, tmp_path, monkeypatch, bits):
    """Slabs of 5 frames (the last one 3) give the DoseGridScaling and pixels of encoding the
    whole-grid cumulative EQD2 at once, to one count (2.3e-10 of the maximum at 32 bits)."""
    case = load_case(two_course_case)
    monkeypatch.setattr(export, "SLAB_VOXELS", 5 * 20 * 18 + 7)
    out = tmp_path / "sum.dcm"
    summary = write_cumulative_eqd2(case, 3.0, out, recovery_model_name="simple-25-50", organ="SpinalCord", bits=bits)

    acc = map_courses(load_courses(case), case)
    whole = cumulative_eqd2_gy(acc, 3.0, recovery_model("simple-25-50"), "SpinalCord")
    pixels, scaling = encode_pixels(whole, bits)
    written = read_dataset(out)
    assert str(written.DoseGridScaling) == scaling and written.BitsAllocated == bits
    assert summary.max_eqd2_gy == pytest.approx(float(whole.max()), rel=1e-12)
    difference = np.abs(written.pixel_array.astype(np.int64) - pixels.astype(np.int64))
    assert difference.max() <= 1 and np.count_nonzero(difference) < 0.001 * difference.size
    # the prior course's grid misses part of the reference grid: counted as before
    outside = int(np.count_nonzero(~acc.courses[0].coverage))
    assert 0 < outside < acc.grid.size
    assert (
        f"prior: {outside} of {acc.grid.size} reference voxels lie outside its dose grid (0 Gy there)"
        in summary.assumptions
    )


# ---------------------------------------------------------------- slab sampling against cumulative_eqd2_at


def _reference_encoding(case, bits=32, **kwargs):
    """What the sum wrote on main: the cumulative EQD2 of :func:`cumulative_eqd2_at` at every voxel
    centre of the reference grid, encoded at once."""
    acc = map_courses(load_courses(case), case)
    index = np.indices(acc.grid.shape).reshape(3, -1).T.astype(float)
    total, _ = cumulative_eqd2_at(acc, acc.grid.to_patient(index), 3.0, **kwargs)
    return encode_pixels(total.reshape(acc.grid.shape), bits)


def _assert_within_one_step(out, reference):
    pixels, scaling = reference
    written = read_dataset(out)
    assert str(written.DoseGridScaling) == scaling
    difference = np.abs(written.pixel_array.astype(np.int64) - pixels.astype(np.int64))
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 0.001 * difference.size


def _grid(origin, spacing, shape, frame, rows=(1.0, 0.0, 0.0), columns=(0.0, 1.0, 0.0), frames=(0.0, 0.0, 1.0)):
    return Grid(origin, rows, columns, frames, spacing, shape, frame)


# prior grids in the new course's frame (or related by a translation-only REG): every axis-aligned
# way one grid's index follows another's (fractional shifts, other spacing, flipped axes, the very
# same grid), and a rotated REG (sampled at the voxel centres, not axis by axis)
PRIORS = {
    "shifted, other spacing": (_grid((-31.3, -24.6, -21.7), (3.0, 2.7, 3.1), (16, 18, 17), NEW_FRAME), None),
    "same grid": (_grid((-30, -25, -20), (2.5, 2.0, 2.0), (23, 20, 18), NEW_FRAME), None),
    "HFP, feet first (flipped axes)": (
        _grid((22.1, 16.3, 38.9), (2.5, 2.2, 1.9), (25, 21, 20), NEW_FRAME, (-1, 0, 0), (0, -1, 0), (0, 0, -1)),
        None,
    ),
    "translation REG": (
        _grid((-28.6, -22.0, -14.3), (3.0, 3.0, 3.0), (14, 15, 15), PRIOR_FRAME),
        rigid(0.0, 2, (1.7, -2.4, 5.1)),
    ),
    "rotation REG": (_grid((-40, -40, -30), (3, 3, 3), (21, 27, 27), PRIOR_FRAME), rigid(20.0, 2, (6.0, -3.0, 15.0))),
}


@pytest.fixture(params=list(PRIORS))
def prior_case(request, tmp_path):
    """A prior course on one of :data:`PRIORS`' grids (part of the new grid outside it) and the new course."""
    prior_grid, matrix = PRIORS[request.param]
    (tmp_path / "prior").mkdir()
    (tmp_path / "new").mkdir()
    p = voxel_centres(prior_grid)
    write_dose(tmp_path / "prior" / "dose.dcm", prior_grid, 40 + 0.5 * p[..., 0] - 0.3 * p[..., 1] + 0.2 * p[..., 2])
    new_grid = axial_grid((-30, -25, -20), (2.5, 2.0, 2.0), (23, 20, 18), NEW_FRAME)
    q = voxel_centres(new_grid)
    write_dose(tmp_path / "new" / "dose.dcm", new_grid, 30 * np.exp(-np.sum(q**2, axis=-1) / 400.0))
    registration = ""
    if matrix is not None:
        write_reg(tmp_path / "new" / "reg.dcm", NEW_FRAME, {PRIOR_FRAME: matrix})
        registration = 'registration = "new/reg.dcm"\n'
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "axes"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 25\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 5\nstart_date = 2025-01-14\n' + registration
    )
    return path


def test_sum_writes_cumulative_eqd2_at_the_voxel_centres(prior_case, tmp_path, monkeypatch):
    """Whatever the prior grid's geometry, the streamed slabs (4 frames each) hold the cumulative
    EQD2 of cumulative_eqd2_at at the voxel centres, encoded with the same DoseGridScaling, to one
    count; the prior's coverage is counted as before."""
    case = load_case(prior_case)
    monkeypatch.setattr(export, "SLAB_VOXELS", 4 * 20 * 18)
    out = tmp_path / "sum.dcm"
    summary = write_cumulative_eqd2(case, 3.0, out, recovery_model_name="simple-25-50", organ="SpinalCord")
    _assert_within_one_step(out, _reference_encoding(case, recovery=recovery_model("simple-25-50"), organ="SpinalCord"))
    acc = map_courses(load_courses(case), case)
    outside = int(np.count_nonzero(~acc.courses[0].coverage))
    if outside:
        assert f"prior: {outside} of {acc.grid.size} reference voxels lie outside its dose grid (0 Gy there)" in (
            summary.assumptions
        )


def test_same_grid_course_is_copied_voxel_for_voxel(tmp_path):
    """A course on the reference grid is its voxels: one course summed with itself (two phases of
    a plan would be refused, so two courses on one grid) gives twice the EQD2 of each voxel."""
    grid = axial_grid((-30, -25, -20), (2.5, 2.0, 2.0), (23, 20, 18), NEW_FRAME)
    q = voxel_centres(grid)
    dose = 30 * np.exp(-np.sum(q**2, axis=-1) / 400.0)
    for name in ("prior", "new"):
        (tmp_path / name).mkdir()
        write_dose(tmp_path / name / "dose.dcm", grid, dose * (1.0 if name == "new" else 1.5))
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "copy"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 25\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 5\nstart_date = 2025-01-14\n'
    )
    case = load_case(path)
    out = tmp_path / "sum.dcm"
    write_cumulative_eqd2(case, 3.0, out)
    stored = [read_dose(tmp_path / name / "dose.dcm").dose_gy for name in ("prior", "new")]
    expected = eqd2_gy(stored[0], 25, 3.0) + eqd2_gy(stored[1], 5, 3.0)
    pixels, scaling = encode_pixels(expected, 32)
    written = read_dataset(out)
    assert str(written.DoseGridScaling) == scaling
    np.testing.assert_array_equal(written.pixel_array, pixels)


@pytest.mark.parametrize("plan", ["hn_sbrt_reirradiation", "hn_conventional_reirradiation"])
def test_sample_plans_sum_to_cumulative_eqd2_at_the_voxel_centres(plan, tmp_path):
    case = load_case(SAMPLE_PLANS / plan / "case.toml")
    out = tmp_path / "sum.dcm"
    write_cumulative_eqd2(case, 3.0, out)
    _assert_within_one_step(out, _reference_encoding(case))


def test_sum_peak_memory_is_the_two_doses_and_a_slab(tmp_path, monkeypatch):
    """Traced peak (numpy and Python allocations, tracemalloc) of the whole export of two courses of
    1.1 M voxels, reading included: both float64 doses (16 bytes per voxel; the pixels are read from
    the files a chunk at a time) and slabs of 32 k voxels, the written pixels streamed; under 19 bytes
    per voxel of the reference grid (28 when the whole grid's pixels were held, and copied twice, to
    be written, and each file's pixels decoded into a copy)."""
    shape = (60, 140, 130)
    new_grid = axial_grid((-160, -175, -75), (2.5, 2.5, 2.5), shape, NEW_FRAME)
    prior_grid = axial_grid((-158.9, -175.7, -74.6), (2.5, 2.5, 2.5), shape, NEW_FRAME)
    for name, grid in (("prior", prior_grid), ("new", new_grid)):
        (tmp_path / name).mkdir()
        q = voxel_centres(grid)
        write_dose(tmp_path / name / "dose.dcm", grid, 60 * np.exp(-np.sum(q**2, axis=-1) / 7200.0))
        del q
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "memory"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 35\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 30\nstart_date = 2025-01-14\n'
    )
    case = load_case(path)
    monkeypatch.setattr(export, "SLAB_VOXELS", 1 << 15)
    monkeypatch.setattr(dose_module, "READ_CHUNK_BYTES", 1 << 16)
    tracemalloc.start()
    try:
        write_cumulative_eqd2(case, 3.0, tmp_path / "sum.dcm")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 16 < peak / np.prod(shape) < 19


def test_eqd2_export_is_streamed_with_the_whole_grid_encoding(tmp_path, monkeypatch):
    """The eqd2 export converts and encodes slabs of frames (3 frames each here): its pixels and
    DoseGridScaling are exactly those of encoding the whole grid's EQD2 at once (elementwise, so
    bit for bit), and its traced peak, reading included, is the float64 dose (8 bytes per voxel)
    and a slab's temporaries, under 11.5 bytes per voxel (28 when the EQD2 was held whole)."""
    grid = axial_grid((-150, -140, -50), (2.5, 2.5, 2.5), (40, 110, 120), NEW_FRAME)
    q = voxel_centres(grid)
    write_dose(tmp_path / "rd.dcm", grid, 30 * np.exp(-np.sum(q**2, axis=-1) / 2000.0))
    del q
    monkeypatch.setattr(export, "SLAB_VOXELS", 3 * 110 * 120 + 5)
    monkeypatch.setattr(dose_module, "READ_CHUNK_BYTES", 1 << 16)
    tracemalloc.start()
    try:
        summary = export.write_eqd2_dose(tmp_path / "rd.dcm", 3.0, tmp_path / "eqd2.dcm", fractions=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = eqd2_gy(read_dose(tmp_path / "rd.dcm").dose_gy, 5, 3.0)
    pixels, scaling = encode_pixels(expected, 32)
    written = read_dataset(tmp_path / "eqd2.dcm")
    assert str(written.DoseGridScaling) == scaling and summary.max_eqd2_gy == float(expected.max())
    np.testing.assert_array_equal(written.pixel_array, pixels)
    assert 8 < peak / grid.size < 11.5
