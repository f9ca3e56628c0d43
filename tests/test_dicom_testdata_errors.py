"""Every third-party file in pydicom/ and edge_cases/ through every loader: accepted or refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.dicom.dose import read_dose
from reirrad.dicom.io import NotDicomError, read_dataset
from reirrad.dicom.plan import read_plan
from reirrad.dicom.structures import read_structures
from reirrad.errors import InputError

LOADERS = {"dose": read_dose, "structures": read_structures, "plan": read_plan}
NOT = {"dose": "not an RTDOSE file", "structures": "not an RTSTRUCT file", "plan": "not an RTPLAN file"}
OK = None


def _refusals(modality: str, **own):
    """Expected messages: the other loaders say what the file is; ``own`` overrides per loader."""
    return {kind: own.get(kind, f"{NOT[kind]} \\(it is {modality}\\)") for kind in LOADERS}


EXPECTED = {
    "pydicom/CT_small.dcm": _refusals("CT"),
    "pydicom/MR_truncated.dcm": dict.fromkeys(
        LOADERS, "truncated: PixelData declares 8192 bytes but the file holds 8130"
    ),
    "pydicom/no_meta.dcm": dict.fromkeys(LOADERS, "not a DICOM file"),
    "pydicom/rtdose.dcm": _refusals("RTDOSE", dose="DoseUnits is RELATIVE; only absolute dose in GY"),
    "pydicom/rtdose_expb.dcm": _refusals("RTDOSE", dose="DoseUnits is RELATIVE; only absolute dose in GY"),
    "pydicom/rtdose_1frame.dcm": _refusals("RTDOSE", dose="DoseUnits is RELATIVE; only absolute dose in GY"),
    "pydicom/rtplan.dcm": _refusals("RTPLAN", plan=OK),
    "pydicom/rtplan_truncated.dcm": dict.fromkeys(
        LOADERS, "truncated: BeamSequence declares 976 bytes but the file holds 711"
    ),
    "pydicom/rtstruct.dcm": _refusals("RTSTRUCT", structures=OK),
    "edge_cases/RP.dcm": _refusals("RTPLAN", plan=OK),
    "edge_cases/2018CompLTCWC2_t2.dcm": _refusals("RTPLAN", plan=OK),
}
CASES = [(name, kind) for name in EXPECTED for kind in LOADERS]


def test_every_file_is_covered(testdata):
    present = {
        f"{p.parent.name}/{p.name}" for folder in ("pydicom", "edge_cases") for p in (testdata / folder).iterdir()
    }
    assert present == set(EXPECTED)


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_loader_accepts_or_refuses_in_one_line(testdata, name, kind):
    path = testdata / name
    message = EXPECTED[name][kind]
    if message is OK:
        assert LOADERS[kind](path).path == path
        return
    with pytest.raises(InputError, match=message) as err:
        LOADERS[kind](path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_no_meta_is_not_dicom_for_discovery(testdata):
    with pytest.raises(NotDicomError):
        read_dataset(testdata / "pydicom" / "no_meta.dcm")


def _as_gy_copy(source, tmp_path):
    """A copy of a RELATIVE-unit RTDOSE relabelled GY, keeping its encoding (endianness)."""
    ds = read_dataset(source)
    ds.DoseUnits = "GY"
    target = tmp_path / source.name
    ds.save_as(str(target), write_like_original=True)
    return target


def test_big_endian_file_reads_the_same_dose_as_little_endian(testdata, tmp_path):
    little = read_dose(_as_gy_copy(testdata / "pydicom" / "rtdose.dcm", tmp_path))
    big = read_dose(_as_gy_copy(testdata / "pydicom" / "rtdose_expb.dcm", tmp_path))
    assert read_dataset(big.path).is_little_endian is False
    assert little.grid == big.grid and little.grid.shape == (15, 10, 10)
    np.testing.assert_array_equal(little.dose_gy, big.dose_gy)
    assert little.max_gy > 0 and little.summation_type == "BEAM" and little.referenced_beam_number == 1


def test_one_frame_of_pixels_with_fifteen_offsets_is_refused(testdata, tmp_path):
    with pytest.raises(InputError, match="GridFrameOffsetVector has 15 values but the pixel data holds 1 frame"):
        read_dose(_as_gy_copy(testdata / "pydicom" / "rtdose_1frame.dcm", tmp_path))


def test_pydicom_plan_values(testdata):
    plan = read_plan(testdata / "pydicom" / "rtplan.dcm")
    assert (plan.fractions, plan.prescription_gy, plan.label) == (30, pytest.approx(30.826203), "Plan1")
    assert [(b.number, b.name, b.dose_gy, b.meterset) for b in plan.fraction_groups[0].beams] == [
        (1, "Field 1", pytest.approx(1.0275401), pytest.approx(116.0036697))
    ]
    assert plan.referenced_structure_set_uid == "1.2.333.444.55.6.7777.88888" and plan.frame_of_reference_uid is None
