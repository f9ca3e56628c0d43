"""One rounding for every format: JUnit quotes each number exactly as the JSON holds it (130.663,
not 130.66)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.report.junit import to_junit
from reirrad.report.machine import to_json

SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


@pytest.fixture(scope="module")
def sbrt_report():
    return run_check(load_case(SBRT_CASE))


def test_junit_numbers_are_the_json_numbers(sbrt_report):
    results = {r["id"]: r for r in json.loads(to_json(sbrt_report))["results"]}
    cases = ET.fromstring(to_junit(sbrt_report)).iter("testcase")
    messages = {case.get("name").split(":")[0]: case.find("system-out").text for case in cases}
    carotid = next(r for r in results.values() if r["organ"] == "A_Carotid_L" and r["metric"] == "Dmax")
    assert carotid["value_gy"] == 130.663
    assert "A_Carotid_L (A_Carotid_L) Dmax = 130.663 Gy" in messages[carotid["id"]]
    for constraint_id, r in results.items():
        message = messages[constraint_id]
        unit = "Gy" if r["unit"] == "Gy" else r["unit"]
        if r["value_gy"] is not None:
            assert f"{r['metric']} = {json.dumps(r['value_gy'])} {unit}" in message, message
        if r["limit_gy"] is not None:
            assert f"limit {json.dumps(r['limit_gy'])} {unit}" in message, message
        for course, share in r["per_course_gy"].items():
            shown = "n/a" if share is None else json.dumps(share) + ("" if unit == "Gy" else f" {unit}")
            assert f"{course} {shown}" in message, message
