"""A check against the planning system: the Eclipse breast case's own DVHs (DVHSequence) beside
reirrad's, in the library and in `reirrad dvh --compare-tps`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from reirrad.cli import _register, app
from reirrad.tps import compare_tps

_register()
RUNNER = CliRunner()
SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "course2"

# MANIFEST.md: planning-system references from the bins (volume cm3 / max Gy / mean Gy)
MANIFEST = {
    "Heart": (437.46, 3.11, 0.643),
    "Lt Lung": (2008.95, 12.74, 0.904),
    "Scar": (0.34, 11.56, 6.32),
    "Tumor Bed": (12.81, 14.58, 14.29),
}
# README "Validation and performance", Eclipse's own DVHs with end caps none: volume, Dmean, Dmax
# deviation from the planning system in per cent (one decimal); Scar Dmax +7.5 % from the notes.
README = {
    "Breast": (-0.1, 0.2, -0.3),
    "Heart": (-0.8, 0.8, -1.2),
    "Lt Lung": (-0.3, 0.4, 1.0),
    "Tumor Bed": (-0.6, 0.0, -0.1),
    "Tumor Bed Block": (-0.4, 0.0, -0.2),
}


@pytest.fixture(scope="module")
def breast(testdata):
    return testdata / "dicompyler-core"


@pytest.fixture(scope="module")
def comparison(breast):
    return compare_tps(breast / "rtdose.dcm", breast / "rtss.dcm", end_caps="none")


def rows_by_name(comparison):
    return {row.name: row for row in comparison.rows}


def test_planning_system_figures_come_from_the_bins(comparison, breast):
    rows = rows_by_name(comparison)
    assert len(rows) == 9 and "Areola" not in rows  # 9 DVHs for ROIs 1, 3-10
    for name, (volume, dmax, dmean) in MANIFEST.items():
        row = rows[name]
        assert (round(row.tps_volume_cc, 2), round(row.tps_max_gy, 2)) == (volume, dmax), name
        assert round(row.tps_mean_gy, 3 if dmean < 1 else 2) == dmean, name
    # the trap: the attribute says 22.2 (per cent of the 14 Gy prescription), the bins 3.11 Gy
    heart = pydicom.dcmread(breast / "rtdose.dcm", stop_before_pixels=True).DVHSequence[3]
    assert int(heart.DVHReferencedROISequence[0].ReferencedROINumber) == rows["Heart"].roi_number
    assert float(heart.DVHMaximumDose) == pytest.approx(100 * 3.11 / 14, abs=0.2)  # 22.11, not 3.1


def test_reirrad_side_matches_the_published_table(comparison):
    rows = rows_by_name(comparison)
    for name, published in README.items():
        differences = rows[name].differences()
        measured = tuple(round(differences[k], 1) for k in ("volume_percent", "mean_percent", "max_percent"))
        assert measured == pytest.approx(published, abs=1e-9), name
    scar = rows["Scar"].differences()
    assert round(scar["max_percent"], 1) == 7.5
    assert rows["Heart"].volume_cc - rows["Heart"].tps_volume_cc == pytest.approx(
        rows["Heart"].differences()["volume_cc"]
    )


def test_cli_json_csv_and_table(breast):
    files = [str(breast / "rtdose.dcm"), str(breast / "rtss.dcm"), "--compare-tps", "--end-caps", "none"]
    done = RUNNER.invoke(app, ["dvh", *files, "-f", "json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["schema"] == "reirrad.tps.v1" and document["end_caps"] == "none"
    heart = next(s for s in document["structures"] if s["name"] == "Heart")
    assert (heart["volume_cc"]["tps"], heart["max_gy"]["tps"]) == (437.4623, 3.11)
    assert heart["max_gy"]["difference_percent"] == pytest.approx(-1.2, abs=0.05)

    done = RUNNER.invoke(app, ["dvh", *files, "-f", "csv", "-s", "Tumor Bed"])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["structure"], r["quantity"]) for r in rows] == [("Tumor Bed", q) for q in ("Volume", "Dmean", "Dmax")]
    assert float(rows[2]["tps"]) == 14.58 and float(rows[0]["tps"]) == pytest.approx(12.81, abs=0.005)

    done = RUNNER.invoke(app, ["dvh", *files])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.stdout.splitlines() if "Lt Lung" in line)
    assert all(text in line for text in ("2008.95", "12.74", "+1.0 %", "-0.3 %", "+0.4 %"))


def test_cli_refuses_a_dose_without_dvhs_and_metrics(breast):
    done = RUNNER.invoke(app, ["dvh", str(SAMPLE / "dose.dcm"), str(SAMPLE / "structures.dcm"), "--compare-tps"])
    assert done.exit_code == 2 and "has no DVHSequence" in done.output
    done = RUNNER.invoke(
        app, ["dvh", str(breast / "rtdose.dcm"), str(breast / "rtss.dcm"), "--compare-tps", "-m", "D95%"]
    )
    assert done.exit_code == 2 and "--compare-tps" in done.output
    done = RUNNER.invoke(
        app, ["dvh", str(breast / "rtdose.dcm"), str(breast / "rtss.dcm"), "--compare-tps", "-s", "Areola"]
    )
    assert done.exit_code == 2 and "no planning-system DVH of 'Areola'" in done.output


def test_check_html_report_holds_the_planning_system_check(breast, tmp_path):
    """`check` on a course whose RTDOSE carries DVHs: the HTML report has the comparison table, with
    reirrad's default half end caps (README volume column "half": Heart +0.5 %, Tumor Bed +2.7 %)."""
    import re

    from reirrad.case import load_case
    from reirrad.check import run_check
    from reirrad.report.html import to_html

    case = tmp_path / "case.toml"
    case.write_text(f'id = "breast"\n[[courses]]\nname = "boost"\npath = "{breast.as_posix()}"\n')
    report = run_check(load_case(case))
    assert len(report.tps) == 1 and report.tps[0].end_caps == "half"
    from reirrad.store import report_from_json, report_to_json

    assert report_from_json(report_to_json(report)).tps == report.tps  # a batch's results store keeps it
    html = to_html(report)
    section = html[html.index("<h2>Check against the planning system</h2>") :]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td>([^<]+)</td>.*?</tr>", section)}
    assert len(rows) == 9
    for name, volume_percent in (
        ("Heart", "+0.5 %"),
        ("Lt Lung", "-0.2 %"),
        ("Tumor Bed", "+2.7 %"),
        ("Breast", "+1.0 %"),
        ("Tumor Bed Block", "+1.5 %"),
    ):
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows[name])
        assert cells[3] == volume_percent, (name, cells)
    heart = re.findall(r"<td[^>]*>([^<]*)</td>", rows["Heart"])
    assert (heart[1], heart[4], heart[7]) == ("437.46", "0.64", "3.11")
    assert "<h2>Check against the planning system</h2>" not in to_html(
        run_check(load_case(SAMPLE.parent / "case.toml"))
    )


def test_dvhs_that_cannot_be_compared_are_noted_not_guessed(breast):
    from reirrad.tps import planning_system_dvhs

    dataset = pydicom.dcmread(breast / "rtdose.dcm", stop_before_pixels=True)
    del dataset.DVHSequence[2].DVHData
    dataset.DVHSequence[4].DVHVolumeUnits = "PERCENT"
    dataset.DVHSequence[5].DoseUnits = "RELATIVE"
    dvhs, notes = planning_system_dvhs(dataset)
    assert sorted(dvhs) == [1, 3, 5, 8, 9, 10]
    assert notes == (
        "planning-system DVH 3 not compared: unreadable (AttributeError: 'Dataset' object has no attribute 'DVHData')",
        "planning-system DVH 5 not compared: volume units PERCENT (not CM3)",
        "planning-system DVH 6 not compared: dose units RELATIVE (not GY)",
    )


def _with_dvh_sequence(dose_file: Path, roi_numbers: list[int]) -> None:
    """Give ``dose_file`` a one-bin cumulative DVH (1 cm3 at 1 Gy) per ROI number, in Gy and cm3."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(dose_file)
    items = []
    for number in roi_numbers:
        referenced = Dataset()
        referenced.ReferencedROINumber = number
        referenced.DVHROIContributionType = "INCLUDED"
        item = Dataset()
        item.DVHReferencedROISequence = Sequence([referenced])
        item.DVHType, item.DoseUnits, item.DoseType, item.DVHVolumeUnits = "CUMULATIVE", "GY", "PHYSICAL", "CM3"
        item.DVHDoseScaling, item.DVHNumberOfBins, item.DVHData = 1.0, 1, [1.0, 1.0]
        items.append(item)
    ds.DVHSequence = Sequence(items)
    ds.save_as(dose_file)


def test_compare_tps_through_a_deformable_reg_says_what_the_field_covers(tmp_path, capsys, monkeypatch):
    """--compare-tps through a deformable REG whose field ends halfway across the structures: rows of
    structures beyond the field say they lie outside the part of the dose grid the field covers, as
    `reirrad dvh` says, not outside the dose grid (which covers them)."""
    import re
    import sys

    from reirrad.cli import main
    from tests.test_deformable import sbrt_case

    folder = sbrt_case(tmp_path, "deformable", partial=True).parent
    dose, reg = folder / "course1" / "dose.dcm", folder / "course2" / "reg.dcm"
    structures = folder / "course2" / "structures.dcm"
    _with_dvh_sequence(dose, [int(roi.ROINumber) for roi in pydicom.dcmread(structures).StructureSetROISequence])
    argv = ["reirrad", "dvh", str(dose), str(structures), "--registration", str(reg), "--compare-tps", "-f", "json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None), out.err
    notes = [row["note"] for row in json.loads(out.out)["structures"]]
    field = re.escape(
        "the part of the dose grid covered by the deformation field of deformable registration "
        "(Tester^Deform / synthetic field) REG "
    )
    partly = [n for n in notes if re.match(rf"[0-9.]+ % of the volume lies outside {field}[0-9.]+: dose metrics", n)]
    entirely = [n for n in notes if re.search(rf"structure lies entirely outside {field}[0-9.]+", n)]
    assert partly and entirely and not [n for n in notes if "the dose grid:" in n or n.endswith("the dose grid")]
