"""Acceptance 1: the Nelms 2015 analytical DVH set (every structure x dose grid x gradient).

The shares asserted are the figures README "Validation and performance" publishes, computed over
whatever cases the data folder holds: a change that makes reirrad less accurate than published fails.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from dvh_reference import NELMS_METRICS, reirrad_nelms_results, within

# README "Validation and performance": share within 3 % / within 1 % (per cent, one decimal).
PUBLISHED_ALL = (99.2, 94.2)
PUBLISHED_WEAKEST_METRIC = (93.3, 76.7)  # D99%
PUBLISHED_WEAKEST_SPACING = (95.8, 87.5)  # 3 mm contours
PUBLISHED_VOLUME_WITHIN_3 = 100.0


@pytest.fixture(scope="module")
def results(testdata):
    """(case, {metric: value}, volume_cc) for every case."""
    return reirrad_nelms_results(testdata)


def percent(hits: list[bool]) -> float:
    """Share of True in per cent, rounded as the README prints it."""
    return round(100 * sum(hits) / len(hits), 1)


@pytest.fixture(scope="module")
def shares(results) -> dict[str, tuple[float, float]]:
    """Group ("all", a metric, "<spacing> mm") -> (per cent within 3 %, per cent within 1 %)."""
    hits = defaultdict(list)
    for case, values, _ in results:
        for metric in NELMS_METRICS:
            value, reference = values[metric], case.doses_gy[metric]
            for group in ("all", metric, f"{case.spacing_mm:g} mm"):
                hits[group].append((within(value, reference, 0.03), within(value, reference, 0.01)))
    return {group: (percent([a for a, _ in p]), percent([b for _, b in p])) for group, p in hits.items()}


def test_every_file_of_the_set_is_used(results, testdata):
    folder = testdata / "nelms2015"
    assert {case.structure_file for case, _, _ in results} == set((folder / "structures").glob("*.dcm"))
    assert {case.dose_file for case, _, _ in results} == set((folder / "dose_grids").glob("*.dcm"))
    assert all(value is not None for _, values, _ in results for value in values.values())


def test_dose_metrics_reach_the_published_shares(shares):
    within_3, within_1 = shares["all"]
    assert within_3 >= PUBLISHED_ALL[0] and within_1 >= PUBLISHED_ALL[1]


def test_every_metric_reaches_the_published_weakest_metric(shares):
    for metric in NELMS_METRICS:
        assert shares[metric][0] >= PUBLISHED_WEAKEST_METRIC[0], metric
        assert shares[metric][1] >= PUBLISHED_WEAKEST_METRIC[1], metric


def test_every_contour_spacing_reaches_the_published_weakest_spacing(shares):
    spacings = [group for group in shares if group.endswith(" mm")]
    assert spacings
    for group in spacings:
        assert shares[group][0] >= PUBLISHED_WEAKEST_SPACING[0], group
        assert shares[group][1] >= PUBLISHED_WEAKEST_SPACING[1], group


def test_volumes_reach_the_published_share_within_3_percent(results):
    ok = [abs(volume / case.volume_cc - 1) <= 0.03 for case, _, volume in results]
    assert percent(ok) >= PUBLISHED_VOLUME_WITHIN_3


def test_extreme_doses_include_the_end_caps(results):
    # SupInf grids: Dmin/Dmax sit on the end-cap faces, half a contour spacing beyond the planes
    for case, values, _ in results:
        assert values["Dmin"] == pytest.approx(case.doses_gy["Dmin"], abs=0.02)
        assert values["Dmax"] == pytest.approx(case.doses_gy["Dmax"], abs=0.02)
