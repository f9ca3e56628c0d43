"""The HTML report for the chart: verdict first, provenance, numbers as in the JSON, told-apart DVHs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.report.html import to_html
from reirrad.report.machine import to_json

SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


@pytest.fixture(scope="module")
def sbrt_report():
    return run_check(load_case(SBRT_CASE))


@pytest.fixture(scope="module")
def html(sbrt_report):
    return to_html(sbrt_report)


def result_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="(?:pass|warn|fail|not_evaluated|report)">.*?</tr>', html)


def test_the_verdict_banner_comes_first_and_names_the_failing_organ(html):
    banner = re.search(r'<div class="banner (\w+)">(.*?)</div>', html)
    assert banner.group(1) == "fail" and banner.start() < html.index("<h1>")
    assert "<b>FAIL</b>" in banner.group(2) and "1 fail: A_Carotid_L Dmax" in banner.group(2)
    assert "1 warn: SpinalCord Dmax" in banner.group(2) and "1 not evaluated: OpticChiasm" in banner.group(2)
    assert "6 pass" in banner.group(2) and "exit code 1" in banner.group(2)


def test_failing_and_warning_rows_come_first(html):
    classes = [re.match(r'<tr class="(\w+)"', row).group(1) for row in result_rows(html)]
    assert classes[:3] == ["fail", "warn", "not_evaluated"] and set(classes[3:]) <= {"pass", "report"}
    assert classes.index("report") > max(i for i, c in enumerate(classes) if c == "pass")


def test_every_number_is_the_json_number(sbrt_report, html):
    """One rounding: the prior brainstem share is 5.054 Gy in the JSON and the HTML (5.05 before)."""
    rows = {re.search(r"<td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", row).groups(): row for row in result_rows(html)}
    for r in json.loads(to_json(sbrt_report))["results"]:
        row = rows[(r["organ"], r["structure"], r["metric"])]
        for value in (r["warn_gy"], r["limit_gy"], r["value_gy"], *r["per_course_gy"].values()):
            if value is not None:
                assert f'<td class="num">{json.dumps(value)}</td>' in row, (r["organ"], value)
    assert '<td class="num">5.054</td>' in rows[("Brainstem", "Brainstem", "D0.03cc")]


def test_the_header_gives_patient_and_provenance(sbrt_report, html):
    head = html[: html.index("<h2>")]
    assert "Phantom^HN SBRT Reirradiation (ID REIRRAD-PHANTOM-01)" in head
    assert f"by reirrad {sbrt_report.reirrad_version}" in head and "hn-reirradiation v1.1.0" in head
    assert re.search(r"Checked</dt><dd>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", head)
    assert "fail-on=fail" in head and "allow-missing=False" in head
    files = [f for c in sbrt_report.courses for f in c.files]
    assert len(files) == 7 and all(f"sha256 {f.sha256}" in head for f in files)


def test_left_and_right_carotids_differ_in_colour_and_line_style(sbrt_report):
    from reirrad.report.figures import curve_styles

    styles = curve_styles(sbrt_report, 3.0)
    left, right = styles["A_Carotid_L"], styles["Carotid_R"]
    assert left[0] != right[0] and (left[1], right[1]) == ("-", "--")
    assert right[2] == "A_Carotid_R (Carotid_R)"
    assert len({s[:2] for s in styles.values()}) == len(styles)  # no two curves look alike


def test_coinciding_limit_lines_are_labelled_once(sbrt_report):
    from reirrad.report.figures import limit_marks

    marks = limit_marks(sbrt_report, 3.0)
    assert [m[0] for m in marks] == [65.26, 119.0]
    assert marks[1] == (119.0, "limit", "119.0 Gy: limit A_Carotid_L, A_Carotid_R; warn Bone_Mandible")


def test_the_verdict_never_passes_a_run_that_judged_nothing(sbrt_report):
    from reirrad.report.html import verdict

    def with_statuses(status: str):
        return dataclasses.replace(
            sbrt_report,
            results=tuple(
                dataclasses.replace(r, status=status if r.has_threshold else "report") for r in sbrt_report.results
            ),
        )

    assert verdict(sbrt_report) == "fail"
    assert verdict(with_statuses("pass")) == "pass"
    assert verdict(with_statuses("warn")) == "warn"
    assert verdict(with_statuses("not_evaluated")) == "not_evaluated"


def test_print_stylesheet_is_a4_landscape_with_wrapping_cells(html):
    style = html[html.index("@media print") : html.index("</style>")]
    assert "@page{size:A4 landscape" in style and "overflow-wrap:anywhere" in style
