"""Per-course DVH overlays: each course's own EQD2 DVH beside the cumulative one, per constrained organ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.report.figures import constrained, course_dvh_html, course_styles, cumulative_curves
from reirrad.report.html import to_html

SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"


@pytest.fixture(scope="module")
def sbrt_report():
    return run_check(load_case(SBRT_CASE))


def curve(report, structure: str, course: str):
    return next(c for c in report.curves if c.structure == structure and c.course == course)


def mean_from_curve(c) -> float:
    """Dmean (Gy) from a cumulative DVH in volume %: the area under it, less half a bin."""
    width = float(c.dose_gy[1] - c.dose_gy[0])
    return float(np.sum(c.volume_percent) / 100.0 * width) - width / 2


def test_every_evaluated_structure_has_a_cumulative_and_one_curve_per_course(sbrt_report):
    keys = {(c.structure, c.alpha_beta_gy) for c in sbrt_report.curves}
    for key in keys:
        courses = sorted(c.course for c in sbrt_report.curves if (c.structure, c.alpha_beta_gy) == key)
        assert courses == ["", "new", "prior"], key
    assert len(cumulative_curves(sbrt_report, 3.0)) == len({k for k in keys if k[1] == 3.0})


@pytest.mark.parametrize(("structure", "organ"), [("Larynx", "Larynx"), ("Parotid_L", "Parotid_L")])
def test_each_course_curve_is_that_course_own_eqd2(sbrt_report, structure, organ):
    """A course's share of a cumulative Dmean is that course's own Dmean: the area under its curve."""
    result = next(r for r in sbrt_report.results if r.organ == organ and r.metric == "Dmean")
    for course, share in result.per_course.items():
        assert mean_from_curve(curve(sbrt_report, structure, course)) == pytest.approx(share, abs=0.05)
    assert mean_from_curve(curve(sbrt_report, structure, "")) == pytest.approx(result.value_gy, abs=0.05)


def test_every_constrained_organ_gets_a_panel_once(sbrt_report):
    assert [(r.organ, r.alpha_beta_gy) for r in constrained(sbrt_report)] == [
        ("SpinalCord", 2.0),
        ("A_Carotid_L", 3.0),
        ("A_Carotid_R", 3.0),
        ("Bone_Mandible", 3.0),
        ("Lobe_Temporal_L", 3.0),
        ("Lobe_Temporal_R", 3.0),
        ("BrachialPlex_L", 2.0),
        ("BrachialPlex_R", 2.0),
    ]  # OpticChiasm is empty (no curve); report-only organs have no limit


def test_courses_and_the_sum_are_told_apart(sbrt_report):
    styles = course_styles(sbrt_report)
    assert list(styles) == ["prior", "new", ""]
    assert len({s[0] for s in styles.values()}) == 3 and len({str(s[1]) for s in styles.values()}) == 3
    assert styles["new"][3] == "course 'new' (own EQD2), reference"
    assert styles[""][3] == "cumulative EQD2 (no recovery)"


def test_the_html_report_has_the_per_course_figure(sbrt_report):
    html = to_html(sbrt_report)
    section = course_dvh_html(sbrt_report)
    assert section.startswith("<h2>DVHs per course</h2>") and section in html
    assert 'src="data:image/png;base64,' in section
    assert (
        html.index("<h2>Where the dose is</h2>")
        < html.index("<h2>Cumulative EQD2 DVHs</h2>")
        < html.index("<h2>DVHs per course</h2>")
    )
