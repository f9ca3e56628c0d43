"""`reirrad dvh` says what its doses are (an EQD2 RTDOSE written by reirrad is no physical dose),
gives each column head its unit once, and says why a Dxcc is missing truthfully."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from reirrad.cli import _register, app
from reirrad.dicom.dose import read_dose
from reirrad.dicom.structures import read_structures
from reirrad.dvh import Dvh, dvh_table, evaluate
from reirrad.metrics import parse_metric
from reirrad.report.dvh import render_table

_register()
RUNNER = CliRunner()
COURSE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "course2"


@pytest.fixture(scope="module")
def eqd2_dose(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eqd2") / "eqd2.dcm"
    result = RUNNER.invoke(
        app,
        [
            "eqd2",
            str(COURSE / "dose.dcm"),
            "--plan",
            str(COURSE / "plan.dcm"),
            "--alpha-beta",
            "3",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_dvh_of_an_eqd2_rtdose_written_by_reirrad_says_eqd2_and_its_alpha_beta(eqd2_dose):
    result = RUNNER.invoke(
        app,
        ["dvh", str(eqd2_dose), str(COURSE / "structures.dcm"), "-s", "A_Carotid_L", "-m", "Dmax", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dose_quantity"] == "EQD2"
    assert (document["dose_alpha_beta_gy"], document["dose_alpha_beta_source"]) == (3.0, "RTDOSE description")


def test_a_foreign_effective_dose_has_an_unknown_alpha_beta(eqd2_dose):
    from reirrad.dvh import dose_quantity

    foreign = dataclasses.replace(read_dose(eqd2_dose), description="Biologically weighted by TPS X")
    quantity = dose_quantity(foreign)
    assert (quantity.name, quantity.alpha_beta_gy) == ("effective (EQD2?), alpha/beta unknown", None)
    assert dose_quantity(read_dose(COURSE / "dose.dcm")).name == "physical"


def test_an_eqd2_rtdose_is_not_converted_again(eqd2_dose):
    result = RUNNER.invoke(
        app,
        [
            "dvh",
            str(eqd2_dose),
            str(COURSE / "structures.dcm"),
            "-s",
            "A_Carotid_L",
            "--fractions",
            "5",
            "--alpha-beta",
            "3",
        ],
    )
    assert result.exit_code == 2
    assert "already an EQD2" in result.output


def test_a_percent_volume_column_head_carries_its_unit_once():
    dose = read_dose(COURSE / "dose.dcm")
    table = dvh_table(
        dose,
        read_structures(COURSE / "structures.dcm"),
        ("A_Carotid_L",),
        (parse_metric("V10Gy[%]"), parse_metric("V10Gy")),
    )
    console = Console(width=200, file=io.StringIO(), color_system=None)
    render_table(table, console)
    text = console.file.getvalue()
    assert "V10Gy[%]" in text and "[%] [%]" not in text and "V10Gy [cc]" in text and "Volume [cc]" in text


def dvh_of(volume_cc: float, in_grid_cc: float) -> Dvh:
    weights = np.full(10, in_grid_cc / 10)
    return Dvh(
        doses_gy=np.linspace(1.0, 10.0, 10), weights_cc=weights, volume_cc=volume_cc, in_grid_volume_cc=in_grid_cc
    )


def test_a_small_structure_wholly_inside_the_grid_is_not_said_to_stick_out():
    reason = evaluate(dvh_of(0.395, 0.395), parse_metric("D1.5cc")).reason
    assert reason == "D1.5cc needs 1.5 cm3 but the structure holds only 0.395 cm3"
    partial = evaluate(dvh_of(2.0, 0.395), parse_metric("D1.5cc")).reason
    assert partial == "D1.5cc needs 1.5 cm3 but only 0.395 cm3 of the structure lies inside the dose grid"
