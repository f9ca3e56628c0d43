"""Bad DICOM input: every reader refuses it in one line (InputError -> exit 2), never a traceback
and never a changed number. The bad files are copies of the sample plans, edited in tmp_path."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from reirrad import grid as grid_module
from reirrad.dicom.dose import read_dose
from reirrad.dicom.plan import RT_ION_PLAN_SOP_CLASS, read_plan
from reirrad.dicom.registration import read_registration
from reirrad.dicom.structures import read_structures
from reirrad.errors import InputError
from tests import dicom_synthetic as syn

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "sample_plans" / "hn_conventional_reirradiation" / "course1"
DOSE, PLAN, STRUCTURES = COURSE / "dose.dcm", COURSE / "plan.dcm", COURSE / "structures.dcm"
REG = REPO / "sample_plans" / "hn_sbrt_reirradiation" / "course2" / "reg.dcm"


def raw(item: pydicom.Dataset, keyword: str, text: str) -> None:
    """Store ``text`` as the undecoded value of ``keyword`` (so it can be anything, e.g. "abc")."""
    tag = Tag(tag_for_keyword(keyword))
    value = text.encode() + b" " * (len(text) % 2)
    item[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)


def edited(source: Path, tmp_path: Path, edit: Callable[[pydicom.Dataset], None]) -> Path:
    """A copy of ``source`` in tmp_path with ``edit`` applied to its dataset."""
    ds = pydicom.dcmread(str(source))
    target = tmp_path / source.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values set on purpose
        edit(ds)
        ds.save_as(str(target), write_like_original=True)
    return target


def truncated(source: Path, tmp_path: Path, keep: int) -> Path:
    """The first ``keep`` bytes of ``source`` (negative: all but the last ``-keep``)."""
    target = tmp_path / f"cut_{source.name}"
    target.write_bytes(source.read_bytes()[:keep])
    return target


def refused(reader, path: Path, message: str) -> InputError:
    """Assert that ``reader(path)`` raises one line naming the file and matching ``message``."""
    with pytest.raises(InputError, match=message) as err:
        reader(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    return err.value


def _rtroi(ds, number: int = 0):
    return ds.ROIContourSequence[number]


def _matrix_entry(ds):
    return ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]


# --- RTDOSE -----------------------------------------------------------------------------------

DOSE_CASES = {
    "scaling not numeric": (lambda ds: raw(ds, "DoseGridScaling", "abc"), r"DoseGridScaling is not numeric \('abc'\)"),
    "scaling NaN": (lambda ds: raw(ds, "DoseGridScaling", "nan"), "DoseGridScaling is not finite"),
    "scaling infinite": (lambda ds: raw(ds, "DoseGridScaling", "inf"), "DoseGridScaling is not finite"),
    "scaling zero": (lambda ds: raw(ds, "DoseGridScaling", "0"), "DoseGridScaling is 0; it must be positive"),
    "scaling negative": (lambda ds: raw(ds, "DoseGridScaling", "-0.001"), "DoseGridScaling is -0.001; it must be"),
    "scaling overflows": (lambda ds: raw(ds, "DoseGridScaling", "1e305"), "DoseGridScaling 1e\\+305 times the pixel"),
    "position NaN": (lambda ds: raw(ds, "ImagePositionPatient", "nan\\0\\0"), "ImagePositionPatient is not finite"),
    "spacing NaN": (lambda ds: raw(ds, "PixelSpacing", "nan\\3"), "PixelSpacing is not finite"),
    "orientation NaN": (
        lambda ds: raw(ds, "ImageOrientationPatient", "1\\0\\0\\0\\nan\\0"),
        "ImageOrientationPatient is not finite",
    ),
    "offsets NaN": (
        lambda ds: raw(ds, "GridFrameOffsetVector", "\\".join(["0", "nan"] + ["3"] * 68)),
        "GridFrameOffsetVector is not finite",
    ),
    "offsets not numeric": (
        lambda ds: raw(ds, "GridFrameOffsetVector", "\\".join(["abc"] * 70)),
        "GridFrameOffsetVector is not numeric",
    ),
    "frames not numeric": (lambda ds: raw(ds, "NumberOfFrames", "x"), r"NumberOfFrames is not numeric \('x'\)"),
    "no frame of reference": (
        lambda ds: delattr(ds, "FrameOfReferenceUID"),
        r"FrameOfReferenceUID missing \(required in an RTDOSE\)",
    ),
    "damaged frame of reference": (
        lambda ds: raw(ds, "FrameOfReferenceUID", "2.25.2939*35387"),
        "FrameOfReferenceUID '2.25.2939\\*35387' is not a valid UID",
    ),
    "excess pixel data": (
        lambda ds: setattr(ds, "PixelData", ds.PixelData + b"\0\0"),
        "PixelData holds 452622 bytes but Rows 61 x Columns 53 x 70 frame",
    ),
    "huge grid": (
        lambda ds: [setattr(ds, k, v) for k, v in (("Rows", 65535), ("Columns", 65535), ("NumberOfFrames", 1000))],
        r"dose grid of 65535 x 65535 x 1000 voxels would need 31.2 TiB, more than the 2 GiB bound",
    ),
    # refused before this change too, kept so that the required tags stay required
    "no pixel data": (lambda ds: delattr(ds, "PixelData"), "no pixel data"),
    "no scaling": (lambda ds: delattr(ds, "DoseGridScaling"), "missing required attribute DoseGridScaling"),
    "no offsets": (lambda ds: delattr(ds, "GridFrameOffsetVector"), "70 frames but no GridFrameOffsetVector"),
    "no position": (lambda ds: delattr(ds, "ImagePositionPatient"), "missing required attribute ImagePositionPatient"),
}


@pytest.mark.parametrize("case", DOSE_CASES)
def test_bad_rtdose_is_refused(tmp_path, case):
    edit, message = DOSE_CASES[case]
    refused(read_dose, edited(DOSE, tmp_path, edit), message)


def test_grid_bound_is_checked_before_decoding(tmp_path, monkeypatch):
    """A grid over the bound is refused by its size, before pydicom decodes (allocates) anything."""
    monkeypatch.setattr(grid_module, "MEMORY_BOUND_BYTES", 8 * 61 * 53 * 70 - 1)
    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(lambda ds: pytest.fail("decoded")))
    refused(read_dose, DOSE, r"dose grid of 61 x 53 x 70 voxels would need 1.73 MiB, more than the 1.73 MiB bound")


def test_single_frame_dose_with_nan_slice_thickness_is_refused(tmp_path):
    ds = syn.rtdose(np.ones((1, 4, 5), np.uint16))
    raw(ds, "SliceThickness", "nan")
    refused(read_dose, syn.write(ds, tmp_path / "d.dcm"), "SliceThickness is not finite")


# --- RTSTRUCT ---------------------------------------------------------------------------------


def _short_contour(points: int):
    def edit(ds):
        contour = _rtroi(ds, 2).ContourSequence[5]
        contour.ContourData = list(contour.ContourData)[: 3 * points]
        contour.NumberOfContourPoints = points

    return edit


STRUCTURE_CASES = {
    "ROI number not numeric": (
        lambda ds: raw(ds.StructureSetROISequence[1], "ROINumber", "x"),
        r"ROINumber is not numeric \('x'\)",
    ),
    "referenced ROI not numeric": (
        lambda ds: raw(_rtroi(ds), "ReferencedROINumber", "x"),
        "ROIContourSequence ReferencedROINumber is not numeric",
    ),
    "point count not an integer": (
        lambda ds: raw(_rtroi(ds).ContourSequence[0], "NumberOfContourPoints", "2.5"),
        "ROI 1 NumberOfContourPoints is 2.5, not an integer",
    ),
    "no contour data": (
        lambda ds: delattr(_rtroi(ds).ContourSequence[0], "ContourData"),
        "ROI 1 has a contour without ContourData",
    ),
    "ROI without frame": (
        lambda ds: delattr(ds.StructureSetROISequence[2], "ReferencedFrameOfReferenceUID"),
        r"ROI 3 has no ReferencedFrameOfReferenceUID \(required\)",
    ),
    "damaged ROI frame": (
        lambda ds: raw(ds.StructureSetROISequence[0], "ReferencedFrameOfReferenceUID", "2.25.x"),
        "ROI 1 ReferencedFrameOfReferenceUID '2.25.x' is not a valid UID",
    ),
    "frame item without frame": (
        lambda ds: delattr(ds.ReferencedFrameOfReferenceSequence[0], "FrameOfReferenceUID"),
        "missing required attribute ReferencedFrameOfReferenceSequence item 1 FrameOfReferenceUID",
    ),
    "no observations": (
        lambda ds: delattr(ds, "RTROIObservationsSequence"),
        "missing required attribute RTROIObservationsSequence",
    ),
    "no contours": (lambda ds: delattr(ds, "ROIContourSequence"), "missing required attribute ROIContourSequence"),
    "no ROIs": (
        lambda ds: delattr(ds, "StructureSetROISequence"),
        "missing required attribute StructureSetROISequence",
    ),
    # refused before this change too
    "contour NaN": (
        lambda ds: raw(
            _rtroi(ds).ContourSequence[0],
            "ContourData",
            "\\".join(["nan"] + ["1"] * (len(_rtroi(ds).ContourSequence[0].ContourData) - 1)),
        ),
        r"ROI 1 ContourData is not finite \(nan\)",
    ),
}


@pytest.mark.parametrize("case", STRUCTURE_CASES)
def test_bad_rtstruct_is_refused(tmp_path, case):
    edit, message = STRUCTURE_CASES[case]
    refused(read_structures, edited(STRUCTURES, tmp_path, edit), message)


@pytest.mark.parametrize("points", [1, 2])
def test_closed_contour_of_one_or_two_points_makes_its_roi_not_evaluable(tmp_path, points):
    original = read_structures(STRUCTURES)
    structures = read_structures(edited(STRUCTURES, tmp_path, _short_contour(points)))
    roi = structures.by_number(3)
    assert roi.name == "SpinalCord" and roi.is_empty and roi.closed_contours == ()
    assert (
        roi.empty_reason
        == roi.problem
        == (
            f"1 CLOSED_PLANAR contour(s) with fewer than 3 points (contour 6 has {points} at z = "
            f"{original.by_number(3).contours[5].z_mm:g} mm)"
        )
    )
    for before, after in zip(original.rois, structures.rois):
        if after.number != 3:
            assert (after.problem, len(after.closed_contours)) == ("", len(before.closed_contours))


def test_empty_reason_of_point_and_contourless_rois(tmp_path):
    rtstruct = syn.rtstruct({"Iso": [[(1.0, 2.0, 3.0)]], "Empty": []}, types={"Iso": "ISOCENTER"})
    path = syn.write(rtstruct, tmp_path / "s.dcm")
    structures = read_structures(path)
    assert [r.empty_reason for r in structures.rois] == ["a point ROI", "no closed contours"]


def test_odd_but_exact_values_read_silently_with_the_same_numbers(tmp_path):
    """pydicom warns about IS "3." (not a valid IS); the reader keeps quiet and reads 3."""
    path = edited(STRUCTURES, tmp_path, lambda ds: raw(ds.StructureSetROISequence[2], "ROINumber", "3."))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structures = read_structures(path)
    assert [str(w.message) for w in caught] == []
    assert [r.number for r in structures.rois] == [r.number for r in read_structures(STRUCTURES).rois]


def test_excess_pixel_data_without_number_of_frames_is_refused(tmp_path):
    ds = syn.rtdose(np.ones((2, 4, 5), np.uint16), number_of_frames=False)
    ds.PixelData += ds.PixelData[:20]  # half a frame more
    refused(read_dose, syn.write(ds, tmp_path / "d.dcm"), "PixelData holds 100 bytes but Rows 4 x Columns 5 x 2 frame")
    ds.PixelData = ds.PixelData[:20]
    refused(read_dose, syn.write(ds, tmp_path / "d.dcm"), "pixel data is shorter than one frame")


def test_uids_with_leading_zeros_are_accepted(tmp_path):
    """Invalid by the letter of PS3.5 9.1 but common in old exports; only damaged UIDs are refused."""
    path = edited(
        STRUCTURES,
        tmp_path,
        lambda ds: [
            setattr(item, "ReferencedFrameOfReferenceUID", "1.2.0840.01") for item in ds.StructureSetROISequence
        ],
    )
    assert {r.frame_of_reference_uid for r in read_structures(path).rois} == {"1.2.0840.01"}


# --- RTPLAN -----------------------------------------------------------------------------------


def _group(ds):
    return ds.FractionGroupSequence[0]


PLAN_CASES = {
    "fractions not numeric": (
        lambda ds: raw(_group(ds), "NumberOfFractionsPlanned", "x"),
        "fraction group 1 NumberOfFractionsPlanned is not numeric",
    ),
    "fractions not an integer": (
        lambda ds: raw(_group(ds), "NumberOfFractionsPlanned", "2.5"),
        "fraction group 1 NumberOfFractionsPlanned is 2.5, not an integer",
    ),
    "prescription not numeric": (
        lambda ds: raw(ds.DoseReferenceSequence[0], "TargetPrescriptionDose", "abc"),
        "dose reference 1 TargetPrescriptionDose is not numeric",
    ),
    "prescription NaN": (
        lambda ds: raw(ds.DoseReferenceSequence[0], "TargetPrescriptionDose", "nan"),
        "dose reference 1 TargetPrescriptionDose is not finite",
    ),
    "prescription negative": (
        lambda ds: raw(ds.DoseReferenceSequence[0], "TargetPrescriptionDose", "-70"),
        "dose reference 1 TargetPrescriptionDose is -70; it must be positive",
    ),
    "meterset NaN": (
        lambda ds: raw(_group(ds).ReferencedBeamSequence[0], "BeamMeterset", "nan"),
        "fraction group 1 beam 1 BeamMeterset is not finite",
    ),
    "beam dose negative": (
        lambda ds: raw(_group(ds).ReferencedBeamSequence[0], "BeamDose", "-0.2"),
        "fraction group 1 beam 1 has a negative BeamMeterset or BeamDose",
    ),
    "beam number not numeric": (
        lambda ds: raw(ds.BeamSequence[0], "BeamNumber", "x"),
        "a beam's BeamNumber is not numeric",
    ),
    "isocentre NaN": (
        lambda ds: raw(ds.BeamSequence[0].ControlPointSequence[0], "IsocenterPosition", "nan\\0\\0"),
        "beam 1 control point 0: IsocenterPosition is not finite",
    ),
}


@pytest.mark.parametrize("case", PLAN_CASES)
def test_bad_rtplan_is_refused(tmp_path, case):
    edit, message = PLAN_CASES[case]
    refused(read_plan, edited(PLAN, tmp_path, edit), message)


def test_frame_of_reference_required_in_ion_plans_only(tmp_path):
    """RT Ion Plan: Frame of Reference module M; RT Plan: U (PS3.3 A.49 and A.20)."""
    photon = syn.rtplan([(30, [(1, 2.0, 100.0)])], frame_of_reference=None)
    assert read_plan(syn.write(photon, tmp_path / "photon.dcm")).frame_of_reference_uid is None
    ion = syn.rtplan([(30, [(1, 2.0, 100.0)])], frame_of_reference=None)
    ion.SOPClassUID = ion.file_meta.MediaStorageSOPClassUID = RT_ION_PLAN_SOP_CLASS
    refused(
        read_plan, syn.write(ion, tmp_path / "ion.dcm"), r"FrameOfReferenceUID missing \(required in an RT Ion Plan\)"
    )


# --- REG --------------------------------------------------------------------------------------

IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]


def _matrix(values) -> Callable[[pydicom.Dataset], None]:
    return lambda ds: raw(_matrix_entry(ds), "FrameOfReferenceTransformationMatrix", "\\".join(str(v) for v in values))


REG_CASES = {
    "not numeric": (
        _matrix(["abc"] + IDENTITY[1:]),
        "registration item 2: FrameOfReferenceTransformationMatrix is not numeric",
    ),
    "NaN": (
        _matrix(IDENTITY[:3] + ["nan"] + IDENTITY[4:]),
        "registration item 2: FrameOfReferenceTransformationMatrix is not finite",
    ),
    "15 values": (_matrix(IDENTITY[:15]), r"FrameOfReferenceTransformationMatrix has 15 value\(s\), expected 16"),
    "singular": (_matrix([0] * 15 + [1]), r"matrix scales by \[0.0, 0.0, 0.0\]"),
    "scaled": (_matrix([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]), r"matrix scales by \[2.0, 2.0, 2.0\]"),
    "sheared": (_matrix([1, 0.6, 0, 0, 0, 0.8, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), "rotation part is not orthonormal"),
}


@pytest.mark.parametrize("case", REG_CASES)
def test_bad_registration_is_refused(tmp_path, case):
    edit, message = REG_CASES[case]
    refused(read_registration, edited(REG, tmp_path, edit), message)


# --- truncated files --------------------------------------------------------------------------

TRUNCATIONS = [
    (read_structures, STRUCTURES, 1373, "truncated: StructureSetROISequence declares"),  # dvh: exit 0, empty table
    (read_structures, STRUCTURES, -500, "truncated: RTROIObservationsSequence declares"),
    (read_structures, STRUCTURES, 200_000, "truncated: ROIContourSequence declares"),
    (read_structures, STRUCTURES, -3, "truncated: ReviewerName declares 18 bytes but the file holds 15"),
    (read_structures, STRUCTURES, -23, "truncated: the file ends inside a data element header"),
    (read_plan, PLAN, -666, "truncated: BeamSequence declares 5394 bytes but the file holds 4970"),
    (read_plan, PLAN, -100, "truncated: ReferencedStructureSetSequence declares"),
    (read_registration, REG, -411, "truncated: RegistrationSequence declares"),
    (read_registration, REG, -70, "truncated: RegistrationSequence declares"),
    (read_dose, DOSE, -1000, "truncated: PixelData declares"),
]


@pytest.mark.parametrize(
    "reader, source, keep, message", TRUNCATIONS, ids=[f"{s.name}{k}" for _, s, k, _ in TRUNCATIONS]
)
def test_truncated_files_are_refused(tmp_path, reader, source, keep, message):
    refused(reader, truncated(source, tmp_path, keep), message)


def test_corrupt_sequence_item_is_refused(testdata, tmp_path):
    """pydicom logs a damaged item tag in an undefined-length sequence and reads on."""
    data = (testdata / "pydicom" / "rtstruct.dcm").read_bytes()
    item = data.index(b"\xfe\xff\x00\xe0", 700)
    path = tmp_path / "rs.dcm"
    path.write_bytes(data[:item] + b"\xfe\xff\x01\xe0" + data[item + 4 :])
    refused(read_structures, path, r"truncated or corrupt: Expected sequence item with tag \(fffe, e000\)")


# --- through the command line -----------------------------------------------------------------


def dvh_cli(*args: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "dvh", *map(str, args)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: (DOSE, truncated(STRUCTURES, tmp, 1373)), "truncated: StructureSetROISequence declares"),
        (
            lambda tmp: (DOSE, edited(STRUCTURES, tmp, STRUCTURE_CASES["ROI number not numeric"][0])),
            "ROINumber is not numeric",
        ),
        (
            lambda tmp: (edited(DOSE, tmp, DOSE_CASES["scaling not numeric"][0]), STRUCTURES),
            "DoseGridScaling is not numeric",
        ),
        (
            lambda tmp: (edited(DOSE, tmp, DOSE_CASES["no frame of reference"][0]), STRUCTURES),
            "FrameOfReferenceUID missing",
        ),
    ],
    ids=["truncated RTSTRUCT", "ROINumber x", "DoseGridScaling abc", "no frame of reference"],
)
def test_dvh_refuses_bad_files_in_one_stderr_line(tmp_path, make, message):
    dose, structures = make(tmp_path)
    result = dvh_cli(dose, structures)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0] and result.stdout == ""


def test_a_roi_with_a_problem_is_not_evaluated_with_that_reason(tmp_path):
    """The verdict names what is wrong with the ROI, not a generic "no closed contours"."""
    import shutil

    from reirrad.case import load_case
    from reirrad.check import run_check

    case_dir = shutil.copytree(COURSE.parent, tmp_path / "case")
    course2 = case_dir / "course2" / "structures.dcm"
    ds = pydicom.dcmread(str(course2))
    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "SpinalCord")
    item = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == number)
    item.ContourSequence[0].ContourData = list(item.ContourSequence[0].ContourData)[:6]
    item.ContourSequence[0].NumberOfContourPoints = 2
    ds.save_as(str(course2), write_like_original=True)
    report = run_check(load_case(case_dir / "case.toml"))
    cord = next(r for r in report.results if r.constraint_id == "spinalcord-dmax")
    assert cord.status == "not_evaluated" and cord.structure == "SpinalCord"
    assert cord.reason.startswith("structure is empty: 1 CLOSED_PLANAR contour(s) with fewer than 3 points")
