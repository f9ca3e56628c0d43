"""EQD2 exports: the cumulative sum written in slabs of frames equals the whole-grid sum."""

from __future__ import annotations

import numpy as np
import pytest
from sum_helpers import axial_grid, rigid, voxel_centres, write_dose, write_reg

from reirrad import export
from reirrad.accumulate import cumulative_eqd2_gy, load_courses, map_courses
from reirrad.case import load_case
from reirrad.dicom.io import read_dataset
from reirrad.dicom.write import encode_pixels
from reirrad.eqd2 import recovery_model
from reirrad.export import write_cumulative_eqd2

PRIOR_FRAME = "1.2.826.0.1.3680043.8.498.71"
NEW_FRAME = "1.2.826.0.1.3680043.8.498.72"


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
