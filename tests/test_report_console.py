"""The console report never truncates a number, a status or an organ name, whatever the width."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.report.console import STATUS_STYLE, print_report
from reirrad.report.machine import to_json

SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


@pytest.fixture(scope="module")
def sbrt_report():
    return run_check(load_case(SBRT_CASE))


def rendered(report, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    print_report(report, console)
    return console.file.getvalue()


def whole(token: str, text: str) -> bool:
    """True when ``token`` appears in ``text`` neither cut (…) nor glued to a longer word or number."""
    return re.search(rf"(?<![\w.]){re.escape(token)}(?![\w…]|\.\d)", text) is not None


@pytest.mark.parametrize("width", [60, 80, 120])
def test_organs_values_and_statuses_appear_whole(sbrt_report, width):
    text = rendered(sbrt_report, width)
    results = json.loads(to_json(sbrt_report))["results"]
    assert {"A_Carotid_L", "A_Carotid_R"} <= {r["organ"] for r in results}
    for r in results:
        assert whole(r["organ"], text), r["organ"]
        assert whole(STATUS_STYLE[r["status"]][0], text), r["status"]
        for value in (r["warn_gy"], r["limit_gy"], r["value_gy"], *r["per_course_gy"].values()):
            if value is not None:
                assert whole(json.dumps(value), text), (r["organ"], value)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text


def test_the_cli_honours_columns_when_piped(tmp_path):
    env = {**os.environ, "COLUMNS": "60"}
    done = subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "check", str(SBRT_CASE)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert max(len(line) for line in done.stdout.splitlines()) <= 60
    assert whole("A_Carotid_L", done.stdout) and whole("130.663", done.stdout) and whole("FAIL", done.stdout)
