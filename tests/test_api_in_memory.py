"""In-memory inputs of the Python API, used as a notebook would: a two-course case whose RTPLAN,
RTDOSE, RTSTRUCT and REG objects are pydicom datasets (read, or built in Python), never files.

The sample SBRT case has an analytic truth checked elsewhere; here the same case from datasets must
give exactly the numbers of the same case from its folders and REG file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import SpatialRegistrationStorage

import reirrad
from reirrad.dicom.write import new_dataset, registration_sequence

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation"
PRIOR, NEW, REG = SAMPLE / "course1", SAMPLE / "course2", SAMPLE / "course2" / "reg.dcm"
DATES = {"prior_end_date": date(2022, 5, 6), "new_start_date": date(2024, 1, 15)}  # as in its case.toml


def read(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(folder / name) for name in ("plan.dcm", "dose.dcm", "structures.dcm")]


def numbers(report: reirrad.CheckReport) -> list[tuple]:
    return [(r.constraint_id, r.status, r.value_gy, r.per_course, r.reason) for r in report.results]


def built_registration() -> pydicom.Dataset:
    """The sample's rigid registration built in Python from its frames and matrix (as a notebook
    would from a transform it computed), in the new course's frame."""
    prior_frame = str(pydicom.dcmread(PRIOR / "dose.dcm", stop_before_pixels=True).FrameOfReferenceUID)
    new_dose = pydicom.dcmread(NEW / "dose.dcm", stop_before_pixels=True)
    matrix = next(
        np.array(entry.MatrixRegistrationSequence[0].MatrixSequence[0].FrameOfReferenceTransformationMatrix, float)
        for entry in pydicom.dcmread(REG).RegistrationSequence
        if entry.FrameOfReferenceUID == prior_frame
    )
    return new_dataset(
        SpatialRegistrationStorage,
        "REG",
        PatientID=new_dose.PatientID,
        PatientName=new_dose.PatientName,
        FrameOfReferenceUID=new_dose.FrameOfReferenceUID,
        RegistrationSequence=registration_sequence({prior_frame: matrix.reshape(4, 4)}),
    )


@pytest.fixture(scope="module")
def from_files() -> reirrad.CheckReport:
    return reirrad.check(reirrad.Case.from_folders(prior=PRIOR, new=NEW, registration=REG, **DATES))


@pytest.fixture(scope="module")
def reg_dataset() -> reirrad.CheckReport:
    case = reirrad.Case.from_datasets(prior=read(PRIOR), new=read(NEW), registration=pydicom.dcmread(REG), **DATES)
    return reirrad.check(case)


def test_a_reg_dataset_gives_the_numbers_of_the_reg_file(from_files, reg_dataset) -> None:
    assert numbers(reg_dataset) == numbers(from_files)
    cord = reg_dataset.result("spinalcord-dmax")
    assert set(cord.per_course) == {"prior", "new"}
    assert cord.per_course["prior"] + cord.per_course["new"] == pytest.approx(cord.value_gy, abs=1e-9)
    uid = str(pydicom.dcmread(REG, stop_before_pixels=True).SOPInstanceUID)
    assert reg_dataset.courses[0].registration == f"REG {uid}" == from_files.courses[0].registration
    document = reg_dataset.to_dict()
    assert document["schema"] == "reirrad.check.v1"
    assert {"path": f"<REG {uid}>", "sha256": None} in document["courses"][1]["files"]


def test_a_registration_built_in_python_among_the_new_datasets(from_files) -> None:
    reg = built_registration()
    case = reirrad.Case.from_datasets(prior=read(PRIOR), new=[*read(NEW), reg], **DATES)
    report = reirrad.check(case)
    assert numbers(report) == numbers(from_files)
    assert report.courses[0].registration == f"REG {reg.SOPInstanceUID}"


def test_a_rigid_matrix_that_scales_is_refused_in_memory_as_in_a_file() -> None:
    reg = built_registration()
    entry = reg.RegistrationSequence[0].MatrixRegistrationSequence[0].MatrixSequence[0]
    entry.FrameOfReferenceTransformationMatrix = [
        "2",
        "0",
        "0",
        "0",
        "0",
        "1",
        "0",
        "0",
        "0",
        "0",
        "1",
        "0",
        "0",
        "0",
        "0",
        "1",
    ]
    with pytest.raises(reirrad.InputError, match="only scale 1 is supported"):
        reirrad.load_course(datasets=[*read(NEW), reg], name="new")


def test_an_undecodable_dataset_value_is_an_input_error_naming_the_dataset() -> None:
    dose = pydicom.dcmread(NEW / "dose.dcm")
    rows = Tag("Rows")
    dose._dict[rows] = RawDataElement(rows, "US", 3, b"\x01\x02\x03", 0, False, True)  # 3 bytes for a 2-byte value
    with pytest.raises(reirrad.InputError, match=rf"<RTDOSE {dose.SOPInstanceUID}>: cannot decode Rows"):
        reirrad.load_course(datasets=[dose, *read(NEW)[:1]], name="new")


def test_the_html_report_of_in_memory_inputs_names_them_without_a_hash(reg_dataset) -> None:
    """Objects given in memory have no file hash (sha256 None): the HTML report names them and
    shows no digest (it raised AttributeError before)."""
    from reirrad.report.html import to_html

    html = to_html(reg_dataset)
    uid = str(pydicom.dcmread(REG, stop_before_pixels=True).SOPInstanceUID)
    assert f"&lt;REG {uid}&gt;" in html
    assert "sha256 None" not in html
