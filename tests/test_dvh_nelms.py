"""Acceptance 1: the Nelms 2015 analytical DVH set (every structure x dose grid x gradient)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from dvh_reference import reirrad_nelms_results, within


@pytest.fixture(scope="module")
def results(testdata):
    """(case, {metric: value}, volume_cc) for every case."""
    return reirrad_nelms_results(testdata)


def test_all_files_of_the_set_are_used(results):
    assert len(results) == 30  # 9 structures at their own grid + 2 fine ones on 3 grids, x 2 gradients


def test_dose_metrics_meet_the_acceptance_thresholds(results):
    scores = defaultdict(list)
    for case, values, _ in results:
        for metric, value in values.items():
            reference = case.doses_gy[metric]
            scores[3].append(within(value, reference, 0.03))
            scores[1].append(within(value, reference, 0.01))
    assert len(scores[3]) == 240
    assert sum(scores[3]) / 240 >= 0.95
    assert sum(scores[1]) / 240 >= 0.80


def test_volumes_within_3_percent(results):
    ok = [abs(volume / case.volume_cc - 1) <= 0.03 for case, _, volume in results]
    assert sum(ok) / len(ok) >= 0.95


def test_extreme_doses_include_the_end_caps(results):
    # SupInf grids: Dmin/Dmax sit on the end-cap faces, half a contour spacing beyond the planes
    for case, values, _ in results:
        assert values["Dmin"] == pytest.approx(case.doses_gy["Dmin"], abs=0.02)
        assert values["Dmax"] == pytest.approx(case.doses_gy["Dmax"], abs=0.02)
