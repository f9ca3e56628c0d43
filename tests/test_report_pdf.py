"""The HTML report printed by headless Chromium (`--format pdf`): everything is on paper."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.cli import _register, app
from reirrad.report.machine import to_json

_register()
SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"
COLUMNS = (
    "Organ",
    "Structure",
    "Metric",
    "a/b (Gy)",
    "Warn",
    "Limit",
    "Cumulative",
    "prior",
    "new",
    "Status",
    "Reason / notes",
    "Source",
)


def need(*programs: str) -> None:
    """Skip without the programs, except in CI (where .ci/run installs them)."""
    if not all(map(shutil.which, programs)):
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"needs {' and '.join(programs)} on PATH")


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> tuple[str, dict]:
    """`reirrad check --format pdf` on the SBRT sample, read back with pdftotext, and its JSON."""
    need("chromium", "pdftotext")
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    result = CliRunner().invoke(app, ["check", str(SBRT_CASE), "--format", "pdf", "--output", str(out)])
    assert result.exit_code == 1, result.output
    assert out.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    return text, json.loads(to_json(run_check(load_case(SBRT_CASE))))


def test_the_banner_every_column_and_every_row_are_on_paper(printed):
    text, data = printed
    words = " ".join(text.split())
    assert "FAIL — 1 fail: A_Carotid_L Dmax" in words
    for column in COLUMNS:
        assert column in words, column
    for r in data["results"]:
        numbers = [json.dumps(v) for v in (r["value_gy"], r["limit_gy"], r["warn_gy"]) if v is not None]
        line = next(
            (
                line
                for line in text.splitlines()
                if re.search(rf"\b{re.escape(r['organ'])}\b", line)
                and r["metric"] in line
                and all(n in line for n in numbers)
            ),
            None,
        )
        assert line is not None, (r["organ"], r["metric"], numbers)


def test_every_page_has_the_patient_a_number_and_the_signature_line(printed):
    text, _ = printed
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert "Phantom^HN SBRT Reirradiation (ID REIRRAD-PHANTOM-01)" in page
        assert f"page {number} of {len(pages)}" in page
    assert "Checked by:" in pages[-1] and "Date:" in pages[-1]


def test_pdf_needs_an_output_file():
    result = CliRunner().invoke(app, ["check", str(SBRT_CASE), "--format", "pdf"])
    assert result.exit_code == 2 and "--format pdf writes a file" in result.output
