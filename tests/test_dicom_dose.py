"""RTDOSE loading: geometry of every transverse orientation and offset form, encodings, refusals."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest

import reirrad
from reirrad.dicom.dose import dose_from_dataset, read_dose
from reirrad.dicom.io import read_dataset
from reirrad.errors import InputError
from tests import dicom_synthetic as syn

# The eight axis-aligned transverse orientations (ImageOrientationPatient).
ORIENTATIONS = {
    "HFS": (1, 0, 0, 0, 1, 0),
    "HFP": (-1, 0, 0, 0, -1, 0),
    "FFS": (-1, 0, 0, 0, 1, 0),
    "FFP": (1, 0, 0, 0, -1, 0),
    "HFDR": (0, -1, 0, 1, 0, 0),
    "HFDL": (0, 1, 0, -1, 0, 0),
    "FFDR": (0, 1, 0, 1, 0, 0),
    "FFDL": (0, -1, 0, -1, 0, 0),
}
IPP = np.array([-10.0, -20.0, 30.0])
ROW_SPACING, COL_SPACING = 2.0, 3.0  # PixelSpacing order: between rows, then between columns
SHAPE = (4, 5, 6)  # frames, rows, columns: all different so a swapped axis cannot pass
HOT = (2, 1, 3)  # (k, j, i) of the one marked voxel
SCALING = 1e-3


def _marked_pixels(dtype=np.uint32) -> np.ndarray:
    pixels = np.arange(np.prod(SHAPE), dtype=dtype).reshape(SHAPE)
    pixels[HOT] = 50000
    return pixels


def _expected_position(iop, offsets, absolute: bool) -> np.ndarray:
    """Patient position of voxel HOT straight from the DICOM definitions (PS3.3 C.7.6.2.1.1, C.8.8.3.2)."""
    row_dir, col_dir = np.array(iop[:3], float), np.array(iop[3:], float)
    k, j, i = HOT
    in_plane = IPP + i * COL_SPACING * row_dir + j * ROW_SPACING * col_dir
    if absolute:
        return np.array([in_plane[0], in_plane[1], offsets[k]])
    return in_plane + offsets[k] * np.cross(row_dir, col_dir)


OFFSET_FORMS = {
    "relative_increasing": (np.arange(4) * 2.5, False),
    "relative_decreasing": (-np.arange(4) * 2.5, False),
    "absolute_increasing": (IPP[2] + np.arange(4) * 2.5, True),
    "absolute_decreasing": (IPP[2] - np.arange(4) * 2.5, True),
}


@pytest.mark.parametrize("form", OFFSET_FORMS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_known_voxel_lands_at_known_patient_position(tmp_path, orientation, form):
    offsets, absolute = OFFSET_FORMS[form]
    iop = ORIENTATIONS[orientation]
    ds = syn.rtdose(
        _marked_pixels(), iop=iop, ipp=IPP, offsets=offsets, pixel_spacing=(ROW_SPACING, COL_SPACING), scaling=SCALING
    )
    dose = read_dose(syn.write(ds, tmp_path / "d.dcm"))
    expected = _expected_position(iop, offsets, absolute)

    np.testing.assert_allclose(dose.grid.to_patient(np.array([HOT]))[0], expected, atol=1e-9)
    index = np.rint(dose.grid.to_index(expected[None])[0]).astype(int)
    assert tuple(index) == HOT
    assert dose.dose_gy[tuple(index)] == pytest.approx(50.0)
    assert dose.grid.spacing_mm == (2.5, ROW_SPACING, COL_SPACING)
    assert dose.grid.shape == SHAPE
    assert dose.grid.is_axial


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint32, np.int32])
@pytest.mark.parametrize("big_endian", [False, True])
def test_bit_depths_and_endianness_give_the_same_dose(tmp_path, dtype, big_endian):
    pixels = np.arange(np.prod(SHAPE), dtype=dtype).reshape(SHAPE) * 97 % 30000
    ds = syn.rtdose(pixels.astype(dtype), scaling=2.5e-4)
    dose = read_dose(syn.write(ds, tmp_path / "d.dcm", big_endian=big_endian))
    np.testing.assert_array_equal(dose.dose_gy, pixels.astype(np.float64) * 2.5e-4)
    assert dose.dose_gy.dtype == np.float64


def test_missing_number_of_frames_reads_every_frame_of_the_pixel_data(tmp_path):
    pixels = _marked_pixels()
    dose = read_dose(syn.write(syn.rtdose(pixels, number_of_frames=False), tmp_path / "d.dcm"))
    assert dose.grid.shape == SHAPE
    np.testing.assert_array_equal(dose.dose_gy, pixels * 1e-3)


def test_a_dataset_pydicom_decodes_without_number_of_frames_is_not_modified():
    """BitsStored 24 of 32 sends the pixels through pydicom's decoder, which needs NumberOfFrames to
    decode every frame; the caller's in-memory dataset is left as it was (inputs are never modified),
    by the reader and by the API."""
    pixels = _marked_pixels()  # at most 50000: fits 24 bits
    ds = syn.rtdose(pixels, number_of_frames=False)
    ds.BitsStored, ds.HighBit = 24, 23
    before = copy.deepcopy(ds)
    np.testing.assert_array_equal(dose_from_dataset(ds, "memory").dose_gy, pixels * 1e-3)
    dose_gy = pixels * 1e-3
    np.testing.assert_allclose(reirrad.eqd2(ds, 1, 2.0), dose_gy * (dose_gy + 2.0) / 4.0, rtol=1e-12)
    assert "NumberOfFrames" not in ds
    assert ds == before


def test_missing_number_of_frames_with_fewer_frames_than_offsets_is_refused(tmp_path):
    # The shape of pydicom's rtdose_1frame.dcm, with GY units so that the frame check is reached.
    ds = syn.rtdose(_marked_pixels()[:1], offsets=np.arange(15) * 5.0, number_of_frames=False)
    with pytest.raises(InputError, match="GridFrameOffsetVector has 15 values but the pixel data holds 1 frame"):
        read_dose(syn.write(ds, tmp_path / "d.dcm"))


def test_single_frame_uses_slice_thickness(tmp_path):
    ds = syn.rtdose(_marked_pixels()[:1], offsets=[0.0])
    ds.SliceThickness = 4.0
    dose = read_dose(syn.write(ds, tmp_path / "d.dcm"))
    assert dose.grid.shape == (1, 5, 6)
    assert dose.grid.spacing_mm[0] == 4.0


def test_references_and_summation_type_are_kept(tmp_path):
    ds = syn.rtdose(_marked_pixels(), summation="BEAM", plan_uid="1.2.9", fraction_group=2, beams=(3, 4))
    dose = read_dose(syn.write(ds, tmp_path / "d.dcm"))
    assert (dose.summation_type, dose.referenced_plan_uid, dose.referenced_fraction_group) == ("BEAM", "1.2.9", 2)
    assert dose.referenced_beam_numbers == (3, 4) and dose.referenced_beam_number == 3
    assert dose.grid.frame_of_reference_uid == "1.2.3.4"


def _refused(tmp_path, message: str, **changes):
    ds = syn.rtdose(_marked_pixels())
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = syn.write(ds, tmp_path / "d.dcm")
    with pytest.raises(InputError, match=message) as err:
        read_dose(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"DoseUnits": "RELATIVE"}, "DoseUnits is RELATIVE"),
        ({"DoseUnits": "CGY"}, "DoseUnits is CGY"),
        ({"DoseType": "ERROR"}, "DoseType is ERROR"),
        ({"ImageOrientationPatient": [0.9848, 0.1736, 0, -0.1736, 0.9848, 0]}, "oblique"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0, -1]}, "not transverse"),
        ({"GridFrameOffsetVector": [0, 2.5, 5.5, 7.5]}, "not monotonic and evenly spaced"),
        ({"GridFrameOffsetVector": [0, 2.5, 0, 2.5]}, "not monotonic and evenly spaced"),
        ({"GridFrameOffsetVector": [12.0, 14.5, 17.0, 19.5]}, "neither relative"),
        ({"NumberOfFrames": 5}, "PixelData holds 480 bytes but Rows 5 x Columns 6 x 5 frame"),
        ({"PixelSpacing": [0.0, 3.0]}, "PixelSpacing"),
        ({"DoseGridScaling": None}, "DoseGridScaling"),
        ({"PixelData": None}, "no pixel data"),
        ({"ImagePositionPatient": [1.0, 2.0]}, r"ImagePositionPatient has 2 value\(s\), expected 3"),
    ],
)
def test_bad_rtdose_is_refused_in_one_line(tmp_path, changes, message):
    _refused(tmp_path, message, **changes)


def test_negative_dose_values_are_refused(tmp_path):
    pixels = _marked_pixels(np.int32)
    pixels[0, 0, 0] = -5
    with pytest.raises(InputError, match="negative dose"):
        read_dose(syn.write(syn.rtdose(pixels), tmp_path / "d.dcm"))


def test_truncated_pixel_data_is_refused(tmp_path):
    ds = syn.rtdose(_marked_pixels())
    ds.PixelData = ds.PixelData[:100]
    with pytest.raises(InputError, match="PixelData holds 100 bytes but Rows 5 x Columns 6 x 4 frame"):
        read_dose(syn.write(ds, tmp_path / "d.dcm"))


def test_eclipse_dose_matches_dicompyler_core(testdata):
    from dicompylercore import dicomparser

    path = testdata / "dicompyler-core" / "rtdose.dcm"
    dose = read_dose(path)
    parser = dicomparser.DicomParser(str(path))
    reference = parser.ds.pixel_array * float(parser.ds.DoseGridScaling)
    data = parser.GetDoseData()
    assert dose.grid.shape == (98, 129, 194) == reference.shape
    np.testing.assert_array_equal(dose.dose_gy, reference)
    assert dose.max_gy == pytest.approx(14.68, abs=0.005)
    # dicompyler's patient-to-pixel LUT: x of each column, y of each row.
    x, y = parser.GetPatientToPixelLUT()
    k, j, i = np.meshgrid([0, 40, 97], [3, 64, 128], [0, 100, 193], indexing="ij")
    kji = np.column_stack([k.ravel(), j.ravel(), i.ravel()])
    points = dose.grid.to_patient(kji)
    np.testing.assert_allclose(points[:, 0], np.asarray(x)[kji[:, 2]], atol=1e-6)
    np.testing.assert_allclose(points[:, 1], np.asarray(y)[kji[:, 1]], atol=1e-6)
    # dicompyler's dose plane at each of our frame positions is our frame.
    for frame in (0, 40, 97):
        z = dose.grid.to_patient(np.array([[frame, 0, 0]]))[0, 2]
        np.testing.assert_array_equal(dose.dose_gy[frame], parser.GetDoseGrid(z) * float(data["dosegridscaling"]))
    assert dose.summation_type == "PLAN" and dose.dose_type == "PHYSICAL"


def test_reading_holds_the_dose_and_one_chunk_of_pixels(tmp_path, monkeypatch):
    """Pixel data that end the file are read a chunk at a time (64 KiB here) into the Gy array: the
    traced peak of reading a 32-bit dose is its float64 Gy (8 bytes per voxel) and a chunk, not the
    file's pixel bytes and a decoded copy besides (16 on main); the dose is the stored integers
    times DoseGridScaling exactly. A dataset in memory (the API's) has its pixel bytes viewed in
    place, not decoded into a copy: the Gy array is all that is added."""
    from sum_helpers import axial_grid, write_dose

    from reirrad.dicom import dose as dose_module
    from reirrad.dicom.dose import dose_from_dataset

    grid = axial_grid((-100.0, -80.0, -50.0), (2.0, 2.0, 2.0), (40, 100, 120), "1.2.826.0.1.3680043.8.498.31")
    values = np.linspace(0.0, 70.0, grid.size).reshape(grid.shape)
    path = write_dose(tmp_path / "rd.dcm", grid, values)
    stored = read_dataset(path)
    expected = stored.pixel_array.astype(np.float64) * float(stored.DoseGridScaling)
    monkeypatch.setattr(dose_module, "READ_CHUNK_BYTES", 1 << 16)
    for read, low, high in ((lambda: read_dose(path), 8.0, 8.5), (lambda: dose_from_dataset(stored, path), 8.0, 8.5)):
        tracemalloc.start()
        try:
            dose = read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(dose.dose_gy, expected)
        assert low <= peak / grid.size < high
