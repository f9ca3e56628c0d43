"""RTDOSE export: validates with dciodvfy, reads back through reirrad and dicompyler-core."""

from __future__ import annotations

import copy
import errno
import shutil
import subprocess

import numpy as np
import pytest
from dicompylercore import dicomparser
from dicompylercore import dose as dicompyler_dose
from sum_helpers import axial_grid, header, save_dose, voxel_centres

from reirrad.dicom.dose import read_dose
from reirrad.dicom.io import read_dataset
from reirrad.dicom.write import dose_header_dataset, encode_pixels, refuse_input_as_output, save_atomic
from reirrad.errors import InputError

FRAME = "1.2.826.0.1.3680043.8.498.30"
GRID = axial_grid((-30.5, -20.25, -12.0), (2.5, 2.0, 3.0), (7, 12, 9), FRAME)


def eqd2_like(grid) -> np.ndarray:
    p = voxel_centres(grid)
    return np.maximum(0.0, 60.0 + 1.1 * p[..., 0] - 0.7 * p[..., 1] + 0.4 * p[..., 2])


def write(tmp_path, bits=32, summation="MULTI_PLAN", name="eqd2.dcm"):
    dose = eqd2_like(GRID)
    path = save_dose(
        tmp_path / name,
        dose,
        GRID,
        header(FRAME),
        dose_type="EFFECTIVE",
        summation_type=summation,
        description="EQD2 a/b 3 Gy; prior 35 fx (r 0, none) + new 30 fx; " + "x" * 40,
        plan_uids=["1.2.3.4", "1.2.3.5"],
        bits=bits,
    )
    return path, dose


@pytest.mark.parametrize("bits", [16, 32])
def test_round_trip_through_reirrad(tmp_path, bits):
    path, dose = write(tmp_path, bits)
    back = read_dose(path)
    scaling = float(read_dataset(path, stop_before_pixels=True).DoseGridScaling)
    assert back.grid == GRID
    assert (back.dose_type, back.summation_type) == ("EFFECTIVE", "MULTI_PLAN")
    assert np.abs(back.dose_gy - dose).max() <= 0.5 * scaling * (1 + 1e-9)
    assert scaling <= dose.max() / (2**bits - 1) * (1 + 1e-6)


def test_header_copied_and_new_uids(tmp_path):
    path, _ = write(tmp_path)
    ds = read_dataset(path, stop_before_pixels=True)
    assert (str(ds.PatientName), ds.PatientID, ds.StudyInstanceUID) == (
        "Phantom^Sum",
        "SUM-001",
        header().StudyInstanceUID,
    )
    assert ds.FrameOfReferenceUID == FRAME
    again = read_dataset(write(tmp_path, name="again.dcm")[0], stop_before_pixels=True)
    assert ds.SOPInstanceUID.is_valid and ds.SeriesInstanceUID.is_valid
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID != again.SOPInstanceUID and ds.SeriesInstanceUID != again.SeriesInstanceUID
    assert len(ds.SeriesDescription) <= 64 and ds.SeriesDescription.endswith("...")
    assert "a/b 3 Gy" in ds.DoseComment and ds.ImageComments.endswith("x" * 40)
    assert [i.ReferencedSOPInstanceUID for i in ds.ReferencedRTPlanSequence] == ["1.2.3.4", "1.2.3.5"]
    for element in ds.iterall():
        if element.VR == "DS":
            values = element.value if element.VM > 1 else [element.value]
            assert all(len(str(v)) <= 16 for v in values), element.keyword


def test_dicompyler_reads_it(tmp_path):
    # square pixels: dicompyler-core's DoseGrid swaps PixelSpacing (peers.md 1.x, issue #274)
    grid = axial_grid((-30.5, -20.25, -12.0), (2.5, 2.0, 2.0), (7, 12, 9), FRAME)
    dose = eqd2_like(grid)
    path = save_dose(
        tmp_path / "eqd2.dcm",
        dose,
        grid,
        header(FRAME),
        dose_type="EFFECTIVE",
        summation_type="PLAN",
        description="EQD2",
        plan_uids=["1.2.3.4"],
    )
    data = dicomparser.DicomParser(str(path)).GetDoseData()
    assert (data["dosetype"], data["dosesummationtype"]) == ("EFFECTIVE", "PLAN")
    theirs = dicompyler_dose.DoseGrid(str(path))
    np.testing.assert_allclose(np.swapaxes(theirs.dose_grid, 0, 2), dose, atol=1e-6)
    np.testing.assert_allclose(theirs.x_axis, -30.5 + 2.0 * np.arange(9))
    np.testing.assert_allclose(theirs.y_axis, -20.25 + 2.0 * np.arange(12))
    np.testing.assert_allclose(theirs.z_axis, -12.0 + 2.5 * np.arange(7))


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_has_no_errors(tmp_path):
    path, _ = write(tmp_path, bits=16)
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    assert "RTDose" in report
    assert [line for line in report.splitlines() if line.startswith("Error")] == []


def test_scaling_fits_maximum():
    dose = np.array([[[0.0, 77.123456789, 12.0]]])
    pixels, scaling = encode_pixels(dose, 16)
    assert pixels.max() == 65535 and len(scaling) <= 16
    assert pixels.max() * float(scaling) == pytest.approx(77.123456789, rel=1e-6)
    zero, _ = encode_pixels(np.zeros((1, 1, 2)), 32)
    assert zero.dtype == np.uint32 and not zero.any()
    with pytest.raises(ValueError):
        encode_pixels(-dose, 32)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    ds = dose_header_dataset(
        np.uint32, "0.001", GRID, header(FRAME), dose_type="EFFECTIVE", summation_type="PLAN", description="d"
    )

    def fail_midway(stream, dataset, **kwargs):
        stream.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("reirrad.dicom.write.pydicom.dcmwrite", fail_midway)
    with pytest.raises(InputError, match="No space left on device"):
        save_atomic(ds, tmp_path / "out.dcm")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_an_input(tmp_path):
    source = tmp_path / "in.dcm"
    source.write_bytes(b"x")
    with pytest.raises(InputError, match="overwrite an input"):
        refuse_input_as_output(tmp_path / "." / "in.dcm", [source])


def test_streamed_pixel_data_writes_the_same_file(tmp_path):
    """Pixels given slab by slab (uneven slabs of whole frames) make the very file save_atomic
    writes for the dataset with the joined pixels; slabs that do not fill the grid write nothing."""
    from reirrad.dicom.write import dose_header_dataset, save_dose_streamed

    pixels, scaling = encode_pixels(eqd2_like(GRID), 32)
    ds = dose_header_dataset(
        np.uint32, scaling, GRID, header(FRAME), dose_type="EFFECTIVE", summation_type="MULTI_PLAN", description="x"
    )
    whole = copy.deepcopy(ds)
    whole.PixelData = pixels.tobytes()
    save_atomic(whole, tmp_path / "whole.dcm")
    save_dose_streamed(ds, (pixels[:3], pixels[3:4], pixels[4:]), tmp_path / "streamed.dcm")
    assert (tmp_path / "streamed.dcm").read_bytes() == (tmp_path / "whole.dcm").read_bytes()
    for slabs in ((pixels[:3],), (pixels, pixels[:1])):
        with pytest.raises(ValueError, match="streamed pixel data"):
            save_dose_streamed(ds, slabs, tmp_path / "short.dcm")
        assert not (tmp_path / "short.dcm").exists()
