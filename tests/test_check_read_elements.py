"""The readers on `check`'s path decode only the elements they use (PLAN_ELEMENTS,
REGISTRATION_ELEMENTS, PATIENT_ELEMENTS, discovery's SCAN_ELEMENTS): a damaged element a reader
uses is still refused in one line naming the file (exit 2), a damaged one nobody uses (in a CT
slice of a course folder, in a plan's tolerance table, the contours of a prior course's structure set
a registered check does not use) no longer stops the check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from reirrad.dicom import identity
from reirrad.dicom.discover import discover_course
from reirrad.dicom.identity import read_identity
from reirrad.dicom.io import Used, read_dataset
from reirrad.dicom.plan import PLAN_ELEMENTS, plan_from_dataset, read_plan
from reirrad.dicom.registration import REGISTRATION_ELEMENTS, read_registration, registration_from_dataset
from reirrad.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SBRT = REPO / "sample_plans" / "hn_sbrt_reirradiation"
CONVENTIONAL = REPO / "sample_plans" / "hn_conventional_reirradiation"
ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) item tag, little endian
FRACTION_GROUP_SEQUENCE = b"\x0a\x30\x70\x00"  # (300A,0070), used by the plan reader
# (300A,0048) BeamLimitingDeviceToleranceSequence, inside ToleranceTableSequence: not used by reirrad
# (an unused sequence's item headers are walked, the sequences inside its items are not read)
TOLERANCE_SEQUENCE = b"\x0a\x30\x48\x00"
REGISTRATION_SEQUENCE = b"\x70\x00\x08\x03"  # (0070,0308), used by the REG reader
CONTOUR_SEQUENCE = b"\x06\x30\x40\x00"  # (3006,0040): the contours, read when the structure set is used
ROWS_US = b"\x28\x00\x10\x00US\x02\x00"  # (0028,0010) Rows, explicit VR US, 2 bytes


def damaged_item(path: Path, sequence_tag: bytes) -> Path:
    """``path`` rewritten so that the first item of its first ``sequence_tag`` has a wrong item tag."""
    data = path.read_bytes()
    item = data.index(ITEM, data.index(sequence_tag))
    path.write_bytes(data[:item] + b"\xfe\xff\x01\xe0" + data[item + 4 :])
    return path


def undecodable_rows(path: Path) -> Path:
    """``path`` rewritten with Rows (2 bytes) declared UL, which pydicom cannot decode."""
    data = path.read_bytes()
    at = data.index(ROWS_US)
    path.write_bytes(data[:at] + ROWS_US[:4] + b"UL" + data[at + 6 :])
    return path


def cut(path: Path, size: int) -> Path:
    """``path`` cut to its first ``size`` bytes."""
    path.write_bytes(path.read_bytes()[:size])
    return path


def decoded_outside(ds: pydicom.Dataset, used: Used) -> list[str]:
    """The elements of ``ds`` that are decoded (no longer raw) though ``used`` does not name them
    (pydicom itself decodes a few while parsing, e.g. empty values in sequence items)."""
    found = []
    for tag in list(ds.keys()):  # iterating the dataset would decode every element
        element = ds.get_item(tag)
        if isinstance(element, RawDataElement):
            continue
        if tag not in used:
            found.append(keyword_for_tag(tag) or str(tag))
        elif element.VR == "SQ" and used[tag] is not None:
            for item in element.value:
                found += decoded_outside(item, used[tag])
    return found


def reirrad(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def sbrt_copy(tmp_path) -> Path:
    return Path(shutil.copytree(SBRT, tmp_path / "case"))


def plan_paths(testdata: Path) -> list[Path]:
    return [SBRT / "course1/plan.dcm", SBRT / "course2/plan.dcm", CONVENTIONAL / "course1/plan.dcm"] + [
        testdata / "dicompyler-core" / "rtplan.dcm"
    ]


def assert_same_check_as_the_sample(sbrt_copy: Path) -> dict:
    """The copy's JSON check equals the untouched sample's (results, flags, warnings, summary and
    assumptions; "courses" holds the files' digests)."""
    result = reirrad("check", sbrt_copy / "case.toml", "-f", "json", "-o", sbrt_copy / "x.json")
    assert result.returncode == 1, result.stderr  # the sample's own verdict: a limit fails
    mine = json.loads((sbrt_copy / "x.json").read_text().replace(str(sbrt_copy), str(SBRT)))
    reference = reirrad("check", SBRT / "case.toml", "-f", "json", "-o", sbrt_copy / "reference.json")
    assert reference.returncode == 1, reference.stderr
    theirs = json.loads((sbrt_copy / "reference.json").read_text())
    for key in ("results", "flags", "warnings", "summary", "assumptions"):
        assert mine[key] == theirs[key], key
    return mine


def test_the_plan_reader_uses_only_plan_elements_and_reads_the_same_plan(testdata):
    for path in plan_paths(testdata):
        ds = read_dataset(path, used=PLAN_ELEMENTS)
        decoded = decoded_outside(ds, PLAN_ELEMENTS)
        plan = plan_from_dataset(ds, path)
        assert decoded_outside(ds, PLAN_ELEMENTS) == decoded, path  # the reader decoded nothing else
        assert plan == plan_from_dataset(read_dataset(path), path)
        assert read_plan(path) == plan
    assert read_plan(SBRT / "course2/plan.dcm").fraction_groups[0].fractions_planned == 5


def test_the_registration_reader_uses_only_its_elements():
    path = SBRT / "course2/reg.dcm"
    ds = read_dataset(path, used=REGISTRATION_ELEMENTS)
    decoded = decoded_outside(ds, REGISTRATION_ELEMENTS)
    registration = registration_from_dataset(ds, path)
    assert decoded_outside(ds, REGISTRATION_ELEMENTS) == decoded
    whole = registration_from_dataset(read_dataset(path), path)
    assert registration.to_own_frame.keys() == whole.to_own_frame.keys()
    for frame, matrix in whole.to_own_frame.items():
        assert (registration.to_own_frame[frame] == matrix).all()
    assert read_registration(path).sop_instance_uid == whole.sop_instance_uid


def test_a_damaged_sequence_the_plan_does_not_use_is_not_read(testdata, tmp_path):
    source = testdata / "dicompyler-core" / "rtplan.dcm"
    damaged = damaged_item(Path(shutil.copy(source, tmp_path / "rtplan.dcm")), TOLERANCE_SEQUENCE)
    with pytest.raises(InputError, match="truncated or corrupt: Expected sequence item"):
        read_dataset(damaged)  # decoded whole
    original = read_plan(source)
    assert read_plan(damaged) == replace(original, path=damaged)


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("course2/plan.dcm", lambda p: damaged_item(p, FRACTION_GROUP_SEQUENCE), "truncated or corrupt: Expected"),
        ("course2/reg.dcm", lambda p: damaged_item(p, REGISTRATION_SEQUENCE), "truncated or corrupt: Expected"),
        ("course1/plan.dcm", lambda p: damaged_item(p, FRACTION_GROUP_SEQUENCE), "truncated or corrupt: Expected"),
        ("course2/structures.dcm", lambda p: damaged_item(p, CONTOUR_SEQUENCE), "truncated or corrupt: Expected"),
        ("course2/ct/ct_001.dcm", lambda p: cut(p, 300), "truncated"),  # what a cut file was: unknown
    ],
)
def test_check_refuses_a_damaged_element_a_reader_uses_in_one_line(sbrt_copy, name, damage, problem):
    damaged = damage(sbrt_copy / name)
    result = reirrad("check", sbrt_copy / "case.toml", "-f", "json", "-o", sbrt_copy / "x.json")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"reirrad: error: {damaged}: {problem}")
    assert not (sbrt_copy / "x.json").exists()


def test_damaged_elements_nobody_uses_do_not_stop_the_check(sbrt_copy):
    damaged = undecodable_rows(sbrt_copy / "course1" / "ct" / "ct_010.dcm")
    damaged_item(sbrt_copy / "course1" / "structures.dcm", CONTOUR_SEQUENCE)  # prior course: registered
    with pytest.raises(InputError, match="cannot decode Rows"):
        read_dataset(damaged, stop_before_pixels=True)  # decoded whole: the file is damaged
    found = discover_course(sbrt_copy / "course1")
    original = discover_course(SBRT / "course1")
    assert (
        [p.name for p in found.files] == [p.name for p in original.files] == ["dose.dcm", "plan.dcm", "structures.dcm"]
    )
    assert found.notes == original.notes
    assert found.notes[0].startswith("skipped ") and " CT file(s)" in found.notes[0]
    assert read_identity(damaged).patient_id == "REIRRAD-PHANTOM-01"
    mine = assert_same_check_as_the_sample(sbrt_copy)
    assert len(mine["results"]) > 10


def test_a_structure_set_named_outside_the_folder_is_read_once_for_its_patient(tmp_path, monkeypatch):
    folder = Path(shutil.copytree(SBRT / "course1", tmp_path / "course1", ignore=shutil.ignore_patterns("ct")))
    outside = Path(shutil.move(folder / "structures.dcm", tmp_path / "structures.dcm"))

    def no_second_read(*args, **kwargs):
        raise AssertionError("the patient of a file read already was read again")

    monkeypatch.setattr(identity, "read_dataset", no_second_read)
    course = discover_course(folder, structure_set=outside)
    assert course.patient is not None and course.patient.patient_id == "REIRRAD-PHANTOM-01"
    assert outside in course.files


def test_a_structure_set_that_changed_since_it_was_identified_is_refused(tmp_path):
    folder = Path(shutil.copytree(SBRT / "course1", tmp_path / "course1", ignore=shutil.ignore_patterns("ct")))
    course = discover_course(folder)
    shutil.copy(SBRT / "course2" / "structures.dcm", folder / "structures.dcm")
    with pytest.raises(InputError, match="structures.dcm: changed while read: it was structure set 2.25."):
        _ = course.structures


DEVICE_SERIAL_LO = b"\x18\x00\x00\x10LO"  # (0018,1000) DeviceSerialNumber, explicit VR LO: no reader uses it


def test_an_undecodable_element_the_registration_reader_does_not_use_does_not_stop_the_check(sbrt_copy):
    reg = sbrt_copy / "course2" / "reg.dcm"
    data = reg.read_bytes()
    at = data.index(DEVICE_SERIAL_LO)
    reg.write_bytes(data[: at + 4] + b"FD" + data[at + 6 :])  # 4 bytes "0001" declared FD (8 bytes a value)
    with pytest.raises(InputError, match="cannot decode DeviceSerialNumber"):
        read_dataset(reg)  # decoded whole: the file is damaged
    assert Tag(0x0018, 0x1000) not in REGISTRATION_ELEMENTS
    mine = assert_same_check_as_the_sample(sbrt_copy)
    assert mine["assumptions"]["registration"].startswith("prior: REG 2.25.31654845665430476541")
