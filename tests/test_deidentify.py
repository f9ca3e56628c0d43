"""`--deidentify`: the sample patient's name, ID and birth date appear in no output of check (console,
JSON, CSV, JUnit, HTML, PDF, batch), dvh, eqd2 or sum; the pseudonym is HMAC-SHA256 of the
PatientID (stable across runs, keyed by REIRRAD_DEIDENTIFY_SALT); folders named MRN_Name are
replaced in the paths reports quote."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from rich.console import Console
from typer.testing import CliRunner

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.cli import _register, app
from reirrad.deidentify import DEFAULT_SALT, Deidentifier, Identity, deidentify_report, pseudonym
from reirrad.report.console import print_report
from reirrad.report.html import to_html
from reirrad.report.junit import to_junit
from reirrad.report.machine import to_csv, to_json

_register()
RUNNER = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
PATIENT_ID, BIRTH_DATE = "REIRRAD-PHANTOM-01", "19580704"
# what must never appear: the ID, the name and its distinctive component, the birth date both ways
IDENTITY = re.compile(r"REIRRAD-PHANTOM-0\d|Phantom|19580704|1958-07-04", re.IGNORECASE)
REG_UID = pydicom.dcmread(SAMPLES / "hn_sbrt_reirradiation" / "course2" / "reg.dcm").SOPInstanceUID
EXPECTED = "ANON-" + hmac.new(DEFAULT_SALT.encode(), PATIENT_ID.encode(), hashlib.sha256).hexdigest().upper()[:12]


@pytest.fixture(autouse=True)
def default_salt(monkeypatch):
    monkeypatch.delenv("REIRRAD_DEIDENTIFY_SALT", raising=False)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    """The SBRT sample in a folder named as clinics do: MRN_Name."""
    root = tmp_path_factory.mktemp("clinic")
    shutil.copytree(SAMPLES / "hn_sbrt_reirradiation", root / f"{PATIENT_ID}_Phantom")
    return root / f"{PATIENT_ID}_Phantom" / "case.toml"


@pytest.fixture(scope="module")
def report(clinic):
    return run_check(load_case(clinic))


def test_the_pseudonym_is_the_hmac_of_the_patient_id_and_follows_the_salt(monkeypatch):
    assert pseudonym(PATIENT_ID) == EXPECTED == pseudonym(PATIENT_ID, "Phantom^HN SBRT Reirradiation")
    monkeypatch.setenv("REIRRAD_DEIDENTIFY_SALT", "site secret")
    salted = pseudonym(PATIENT_ID)
    assert salted != EXPECTED and salted == pseudonym(PATIENT_ID) and re.fullmatch(r"ANON-[0-9A-F]{12}", salted)


def test_text_and_paths():
    hide = Deidentifier([Identity("12345", "DOE^JANE", "19600101")], key="k")
    anon = pseudonym("12345", key="k")
    assert hide.path("/data/12345_Doe/prior/dose.dcm") == f"/data/{anon}/prior/dose.dcm"
    assert hide.path("/data/DOEJANE/x") == f"/data/{anon}/x"
    assert hide.text("Jane DOE (12345) born 19600101: Dmax 123450.5 Gy, 12345.5 Gy") == (
        f"{anon} {anon} ({anon}) born {anon}: Dmax 123450.5 Gy, 12345.5 Gy"
    )  # numbers are not the ID
    uid = "1.2.840.113619.2.55.3.12345"
    assert hide.text(f"REG {uid}") == f"REG {hide.uid(uid)}" and hide.uid(uid).startswith("2.25.")
    assert hide.uid(uid) == Deidentifier([], key="k").uid(uid) != Deidentifier([], key="other").uid(uid)


def every_format(report) -> dict[str, str]:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    print_report(report, console)
    return {
        "console": console.file.getvalue(),
        "json": to_json(report),
        "csv": to_csv(report),
        "junit": to_junit(report),
        "html": to_html(report),
    }


def test_no_format_of_check_names_the_patient(report):
    identified = every_format(report)
    assert all(IDENTITY.search(text) for name, text in identified.items() if name != "csv")  # they did before
    assert REG_UID in identified["json"]
    hidden = deidentify_report(report)
    for name, text in every_format(hidden).items():
        assert not IDENTITY.search(text), (name, IDENTITY.search(text))
        assert REG_UID not in text and EXPECTED in text, name
    html = every_format(hidden)["html"]
    assert f"{EXPECTED} (ID {EXPECTED})" in html and f"/{EXPECTED}/case.toml" in html
    assert [r.value_gy for r in hidden.results] == [r.value_gy for r in report.results]
    assert hidden.results[0].status is report.results[0].status


def test_check_deidentify_on_the_command_line(clinic, report):
    """The pseudonym is the HMAC of the ID (EXPECTED, computed here): the same in every run."""
    done = RUNNER.invoke(app, ["check", str(clinic), "--deidentify", "-f", "json"])
    assert done.exit_code == 1, done.output
    assert not IDENTITY.search(done.stdout)
    document = json.loads(done.stdout)
    assert (
        document["case"]["path"].endswith(f"/{EXPECTED}/case.toml")
        and EXPECTED in document["assumptions"]["deidentified"]
    )
    assert document["courses"] == json.loads(to_json(deidentify_report(report)))["courses"]


def test_pdf(report, tmp_path):
    from reirrad.report.pdf import to_pdf

    if not (shutil.which("chromium") and shutil.which("pdftotext")):
        pytest.skip("needs chromium and pdftotext")
    out = tmp_path / "report.pdf"
    out.write_bytes(to_pdf(deidentify_report(report)))
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert f"{EXPECTED} (ID {EXPECTED})" in text and not IDENTITY.search(text)
    assert not IDENTITY.search(out.read_bytes().decode("latin-1"))


def test_batch(clinic, tmp_path):
    other = tmp_path / "REIRRAD-PHANTOM-02_Phantom"
    shutil.copytree(SAMPLES / "hn_conventional_reirradiation", other)
    (tmp_path / "REIRRAD-PHANTOM-03_Phantom.toml").write_text("not a case")
    store = tmp_path / "results.sqlite"
    done = RUNNER.invoke(
        app,
        [
            "check",
            str(clinic),
            str(other / "case.toml"),
            str(tmp_path / "REIRRAD-PHANTOM-03_Phantom.toml"),
            "--deidentify",
            "-q",
            "-f",
            "json",
            "-j",
            "1",
            "--store",
            str(store),
        ],
    )
    assert done.exit_code == 2, done.output
    assert not IDENTITY.search(done.stdout), IDENTITY.search(done.stdout)
    document = json.loads(done.stdout)
    assert {c["courses"][-1]["files"][0]["path"].split("/")[-3] for c in document["cases"]} == {
        EXPECTED,
        pseudonym("REIRRAD-PHANTOM-02"),
    }
    assert document["errors"][0]["case"].startswith("unread case ANON-")
    # the results store keeps what was checked; the audit outputs hide it on request
    for command in (["summary"], ["export", "-f", "json"], ["export", "-f", "csv"], ["report", "-o", "-"]):
        shown = RUNNER.invoke(app, ["audit", *command, str(store)], env={"COLUMNS": "400"})
        assert shown.exit_code == 0 and (IDENTITY.search(shown.stdout) or "csv" in command), (command, shown.output)
        hidden = RUNNER.invoke(app, ["audit", *command, str(store), "--deidentify"], env={"COLUMNS": "400"})
        assert hidden.exit_code == 0 and not IDENTITY.search(hidden.stdout), (command, IDENTITY.search(hidden.stdout))


def identity_bytes(path: Path) -> list[str]:
    data = path.read_bytes()
    return [w for w in (PATIENT_ID, "Phantom", BIRTH_DATE) if w.encode() in data]


def test_rtdose_written_by_sum_and_eqd2_names_no_patient(clinic, tmp_path):
    folder = clinic.parent
    source = pydicom.dcmread(folder / "course2" / "dose.dcm", stop_before_pixels=True)
    done = RUNNER.invoke(
        app, ["sum", str(clinic), "--alpha-beta", "3", "-o", str(tmp_path / "sum.dcm"), "--deidentify"]
    )
    assert done.exit_code == 0, done.output
    assert not IDENTITY.search(done.output)
    done = RUNNER.invoke(
        app,
        [
            "eqd2",
            str(folder / "course2" / "dose.dcm"),
            "--plan",
            str(folder / "course2" / "plan.dcm"),
            "--alpha-beta",
            "3",
            "-o",
            str(tmp_path / "eqd2.dcm"),
            "--deidentify",
        ],
    )
    assert done.exit_code == 0, done.output
    summed, single = (pydicom.dcmread(tmp_path / f) for f in ("sum.dcm", "eqd2.dcm"))
    for ds, path in ((summed, tmp_path / "sum.dcm"), (single, tmp_path / "eqd2.dcm")):
        assert identity_bytes(path) == []
        assert (ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == (EXPECTED, EXPECTED, "", "")
        assert ds.PatientIdentityRemoved == "YES" and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.StudyInstanceUID != source.StudyInstanceUID and ds.FrameOfReferenceUID != source.FrameOfReferenceUID
        assert "EQD2 a/b 3 Gy" in ds.ImageComments  # what `dvh` reads the alpha/beta from
    assert (summed.StudyInstanceUID, summed.FrameOfReferenceUID) == (
        single.StudyInstanceUID,
        single.FrameOfReferenceUID,
    )
    assert (
        summed.ReferencedRTPlanSequence[-1].ReferencedSOPInstanceUID
        == single.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
    )
    plain = RUNNER.invoke(app, ["sum", str(clinic), "--alpha-beta", "3", "-o", str(tmp_path / "plain.dcm")])
    assert plain.exit_code == 0 and identity_bytes(tmp_path / "plain.dcm") == [PATIENT_ID, "Phantom", BIRTH_DATE]


def test_dvh_deidentify(clinic):
    course = clinic.parent / "course2"
    done = RUNNER.invoke(
        app,
        [
            "dvh",
            str(course / "dose.dcm"),
            str(course / "structures.dcm"),
            "-s",
            "SpinalCord",
            "-m",
            "Dmax",
            "-f",
            "json",
            "--deidentify",
        ],
    )
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["dose_file"].endswith(f"/{EXPECTED}/course2/dose.dcm") and not IDENTITY.search(done.stdout)
