"""The public Python API, used as a notebook would: ``import reirrad`` and nothing private.

A case built in Python from the sample plans' two folders gives exactly the JSON document the
command line writes for the same folders; the same case from in-memory pydicom datasets gives the
same numbers; errors name keywords, not command-line options; DVHs convert to dicompyler-core.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest

import reirrad
from reirrad.dvh import CURVE_BIN_GY

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation"
PRIOR, NEW, REG = SAMPLE / "course1", SAMPLE / "course2", SAMPLE / "course2" / "reg.dcm"
DATES = {"prior_end_date": date(2022, 5, 6), "new_start_date": date(2024, 1, 15)}  # as in its case.toml


@pytest.fixture(scope="module")
def from_folders() -> reirrad.CheckReport:
    case = reirrad.Case.from_folders(prior=PRIOR, new=NEW, registration=REG, **DATES)
    return reirrad.check(case)


@pytest.fixture(scope="module")
def from_datasets() -> reirrad.CheckReport:
    def read(folder: Path) -> list[pydicom.Dataset]:
        return [pydicom.dcmread(folder / name) for name in ("plan.dcm", "dose.dcm", "structures.dcm")]

    case = reirrad.Case.from_datasets(prior=read(PRIOR), new=read(NEW), registration=REG, id="in-memory", **DATES)
    return reirrad.check(case)


def test_import_is_light_and_every_public_name_resolves() -> None:
    heavy = ("numpy", "scipy", "pydicom", "matplotlib")
    code = f"import sys, reirrad; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    for name in reirrad.__all__:
        assert getattr(reirrad, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        reirrad.nonsense  # noqa: B018
    # importing the submodules of the same names leaves the functions in place
    from reirrad.check import run_check  # noqa: F401
    from reirrad.dvh import dvh_table  # noqa: F401
    from reirrad.eqd2 import eqd2_gy  # noqa: F401

    assert all(callable(getattr(reirrad, name)) for name in ("check", "dvh", "eqd2"))
    assert reirrad.check.__module__ == "reirrad.api"


def test_per_course_values_add_up_to_the_cumulative_value(from_folders) -> None:
    cord = from_folders.result("spinalcord-dmax")
    assert cord.status is reirrad.Status.WARN and cord.status == "warn"
    assert set(cord.per_course) == {"prior", "new"}
    # no recovery model: the cumulative Dmax is the sum of each course's EQD2 at the same sample
    assert cord.per_course["prior"] + cord.per_course["new"] == pytest.approx(cord.value_gy, abs=1e-9)
    assert [c.name for c in from_folders.courses] == ["prior", "new"]
    assert (
        from_folders.courses[0].registration.startswith("REG ") and from_folders.courses[1].registration == "reference"
    )
    with pytest.raises(KeyError, match="spinalcord-dmax"):
        from_folders.result("no-such-id")


def test_to_dict_is_the_document_the_command_line_writes(from_folders) -> None:
    command = [
        sys.executable,
        "-c",
        "from reirrad.cli import main; main()",
        "check",
        "--prior",
        str(PRIOR),
        "--new",
        str(NEW),
        "--registration",
        str(REG),
        "--prior-end-date",
        "2022-05-06",
        "--new-start-date",
        "2024-01-15",
        "--format",
        "json",
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == from_folders.summary.exit_code == 1, run.stderr
    document = from_folders.to_dict()
    assert document["schema"] == "reirrad.check.v1"
    assert json.loads(run.stdout) == json.loads(json.dumps(document)) == json.loads(from_folders.to_json())


def test_in_memory_datasets_give_the_same_numbers(from_folders, from_datasets) -> None:
    def numbers(report):
        return [(r.constraint_id, r.status, r.value_gy, r.per_course, r.reason) for r in report.results]

    assert numbers(from_datasets) == numbers(from_folders)
    assert [f.id for f in from_datasets.flags] == [f.id for f in from_folders.flags]
    files = from_datasets.to_dict()["courses"][1]["files"]
    uid = str(pydicom.dcmread(NEW / "dose.dcm", stop_before_pixels=True).SOPInstanceUID)
    assert {"path": f"<RTDOSE {uid}>", "sha256": None} in files
    assert any("in-memory datasets" in w and "SOPInstanceUID" in w for w in from_datasets.warnings)


def test_errors_name_keywords_for_python_and_options_for_the_command_line(tmp_path) -> None:
    dose = pydicom.dcmread(NEW / "dose.dcm")  # without its plan: the fraction count is unknown
    with pytest.raises(reirrad.InputError) as raised:
        reirrad.load_course(datasets=[dose], name="new")
    assert raised.value.hint == reirrad.Hint(reirrad.errors.Remedy.FRACTIONS, "new")
    assert "pass fractions=N for course 'new'" in str(raised.value) and "case file" not in str(raised.value)
    assert reirrad.load_course(datasets=[dose], name="new", fractions=5).fractions == 5
    for name in ("dose.dcm", "structures.dcm"):
        (tmp_path / name).write_bytes((NEW / name).read_bytes())
    command = [
        sys.executable,
        "-c",
        "from reirrad.cli import main; main()",
        "check",
        "--prior",
        str(PRIOR),
        "--new",
        str(tmp_path),
        "--registration",
        str(REG),
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 2 and "pass --new-fractions N" in run.stderr and "fractions=N" not in run.stderr


def test_dvh_from_paths_and_datasets_agree_and_convert_to_dicompyler() -> None:
    metrics = ["Dmax", "Dmean", "D95%", "D2cc", "V20Gy", "V5Gy"]
    names = ["SpinalCord", "PTV_35", "PharConst", "A_Carotid_L"]
    on_paths = reirrad.dvh(NEW / "dose.dcm", NEW / "structures.dcm", metrics, names=names)
    in_memory = reirrad.dvh(
        pydicom.dcmread(NEW / "dose.dcm"), pydicom.dcmread(NEW / "structures.dcm"), metrics, names=names
    )
    assert [r.values for r in in_memory.structures] == [r.values for r in on_paths.structures]
    bin_gy = CURVE_BIN_GY  # 0.01 Gy
    for row in on_paths.structures:
        curve = row.to_dicompyler()
        assert (curve.dvh_type, curve.dose_units, curve.volume_units, curve.name) == (
            "cumulative",
            "Gy",
            "cm3",
            row.name,
        )
        assert float(curve.volume) == pytest.approx(row.in_grid_volume_cc, rel=1e-9)
        assert float(curve.mean) == pytest.approx(row.values["Dmean"], abs=bin_gy / 2)
        assert float(curve.statistic("D95").value) == pytest.approx(row.values["D95%"], abs=bin_gy)
        assert float(curve.statistic("D2cc").value) == pytest.approx(row.values["D2cc"], abs=bin_gy)
        for level in ("V20Gy", "V5Gy"):
            assert float(curve.statistic(level).value) == pytest.approx(row.values[level], rel=1e-9, abs=1e-9)
        # interior samples only: at most reirrad's Dmax (which includes the surface), within a bin
        assert float(curve.max) <= row.values["Dmax"] + bin_gy
    assert on_paths.structures[0].values["V20Gy"] == 0.0


def test_dvh_refuses_objects_of_different_frames_naming_the_registration_keyword() -> None:
    with pytest.raises(reirrad.InputError, match="frame of reference .* differs"):
        reirrad.dvh(pydicom.dcmread(PRIOR / "dose.dcm"), pydicom.dcmread(NEW / "structures.dcm"))
    with pytest.raises(reirrad.InputError) as raised:
        reirrad.dvh(PRIOR / "dose.dcm", NEW / "structures.dcm")
    assert raised.value.hint.remedy is reirrad.Remedy.REGISTRATION
    assert "pass registration=PATH relating them" in str(raised.value) and "--registration" not in str(raised.value)
    command = [
        sys.executable,
        "-c",
        "from reirrad.cli import main; main()",
        "dvh",
        str(PRIOR / "dose.dcm"),
        str(NEW / "structures.dcm"),
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 2 and "pass --registration REG relating them" in run.stderr
    moved = reirrad.dvh(PRIOR / "dose.dcm", NEW / "structures.dcm", ["Dmax"], names=["SpinalCord"], registration=REG)
    assert moved.structures[0].values["Dmax"] > 0


def test_dvh_refuses_in_memory_objects_of_two_patients_unless_accepted() -> None:
    dose, structures = pydicom.dcmread(NEW / "dose.dcm"), pydicom.dcmread(NEW / "structures.dcm")
    structures.PatientID = "SOMEONE-ELSE"
    with pytest.raises(reirrad.InputError, match="another patient .* accept it with accept_other_patient=True"):
        reirrad.dvh(dose, structures, ["Dmax"], names=["SpinalCord"])
    accepted = reirrad.dvh(dose, structures, ["Dmax"], names=["SpinalCord"], accept_other_patient=True)
    assert accepted.structures[0].values["Dmax"] > 0


def test_eqd2_of_numbers_arrays_and_an_rtdose() -> None:
    assert float(reirrad.eqd2(30.0, 5, 2.0)) == pytest.approx(30.0 * (6.0 + 2.0) / 4.0)
    assert reirrad.eqd2(np.array([[70.0]]), 35, 10.0).shape == (1, 1)
    dose = pydicom.dcmread(NEW / "dose.dcm")
    eqd2 = reirrad.eqd2(dose, 5, 3.0)
    physical = dose.pixel_array * float(dose.DoseGridScaling)
    assert eqd2.max() == pytest.approx(physical.max() * (physical.max() / 5 + 3.0) / 5.0, rel=1e-9)


def test_check_refuses_what_it_cannot_read() -> None:
    with pytest.raises(TypeError, match="case-file path or a reirrad.Case"):
        reirrad.check(42)
    with pytest.raises(reirrad.OptionError, match="fail_on"):
        reirrad.check(SAMPLE / "case.toml", fail_on="sometimes")
