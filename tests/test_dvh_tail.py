"""Dose-at-volume metrics of a structure whose samples weigh very differently (a capped BODY: interior
blocks weigh 25 surface samples each): the partial selection stays small and gives the values of a
full sort."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.dvh import Dvh, evaluate
from reirrad.metrics import parse_metric


def _capped_like(rng: np.random.Generator) -> Dvh:
    """200,000 weighted samples, a fifth of them interior blocks of 25 x the surface weight, and
    some zero-weight surface samples."""
    n = 200_000
    interior = rng.random(n) < 0.2
    weights = np.where(interior, 25.0, 1.0) * 1e-3
    doses = rng.gamma(4.0, 5.0, n)
    surface = rng.random(5_000) * 60.0
    volume = float(weights.sum())
    return Dvh(np.concatenate([doses, surface]), np.concatenate([weights, np.zeros(5_000)]), volume, volume)


def _full_sort(dvh: Dvh, volume_cc: float) -> float:
    """The definition: every weighted sample sorted hottest first stands for the dose at the middle of
    its volume; linear between neighbouring midpoints."""
    weighted = dvh.weights_cc > 0
    order = np.argsort(-dvh.doses_gy[weighted], kind="stable")
    volumes = dvh.weights_cc[weighted][order]
    midpoints = np.cumsum(volumes) - volumes / 2.0
    return float(np.interp(volume_cc, midpoints, dvh.doses_gy[weighted][order]))


@pytest.mark.parametrize("metric", ["D0.03cc", "D1cc", "D99%", "D95%", "D5%", "D1%", "D50%", "D2cc"])
def test_dose_at_volume_equals_a_full_sort_with_a_small_selection(metric):
    dvh = _capped_like(np.random.default_rng(7))
    parsed = parse_metric(metric)
    value = evaluate(dvh, parsed).value
    volume = parsed.volume * (dvh.in_grid_volume_cc / 100.0 if metric.endswith("%") else 1.0)
    assert value == pytest.approx(_full_sort(dvh, volume), rel=1e-9, abs=1e-9)
    # the tail selected from either end holds little more than the volume asked for (at least 5 %):
    # a selection sized by the smallest weight took about two thirds of the samples
    n_weighted = dvh.weighted()[2]
    for order, _ in (v for k, v in dvh._cache.items() if isinstance(k, tuple)):
        share = max(min(volume, dvh.in_grid_volume_cc - volume) / dvh.in_grid_volume_cc, 0.05)
        assert len(order) <= 2.6 * share * n_weighted + 2


def test_tied_doses_across_a_dose_step_hand_computed():
    """Two 20 Gy samples (1 and 3 cm3, indices 2 and 3) and two 10 Gy samples (indices 0 and 1):
    hottest first in index order the midpoints are 0.5, 2.5, 4.5, 6.5 cm3 at 20, 20, 10, 10 Gy, so
    D3.5cc = 15 Gy and D4.2cc (searched from the cold end) = 20 * 0.15 + 10 * 0.85 = 11.5 Gy,
    whichever is evaluated first."""
    for first, second in (("D3.5cc", "D4.2cc"), ("D4.2cc", "D3.5cc")):
        dvh = Dvh(np.array([10.0, 10.0, 20.0, 20.0]), np.array([1.0, 3.0, 1.0, 3.0]), 8.0, 8.0)
        values = {metric: evaluate(dvh, parse_metric(metric)).value for metric in (first, second)}
        assert values == pytest.approx({"D3.5cc": 15.0, "D4.2cc": 11.5}, rel=1e-12)


TIED_METRICS = [f"D{percent:g}%" for percent in np.arange(0.5, 100.0, 0.5)] + ["D0.03cc", "D1cc", "D2cc"]


@pytest.mark.parametrize("metrics", [TIED_METRICS, TIED_METRICS[::-1]], ids=["hot-first", "cold-first"])
def test_tied_doses_give_the_full_sort_in_any_evaluation_order(metrics):
    """Doses rounded to 1 Gy tie in large groups of samples of unequal weight (block and surface
    samples, a 0 Gy plateau): each Dx from either end is the full-sort answer whatever was evaluated
    before it on the same DVH."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(50, 3000))
        weights = rng.choice([1.0, 8.0, 27.0], n) * 1e-3
        doses = np.round(rng.gamma(2.0, 5.0, n), 0)
        doses[rng.random(n) < 0.1] = 0.0
        volume = float(weights.sum())
        dvh = Dvh(doses, weights, volume, volume)
        for metric in metrics:
            parsed = parse_metric(metric)
            volume_cc = parsed.volume * (volume / 100.0 if metric.endswith("%") else 1.0)
            assert evaluate(dvh, parsed).value == pytest.approx(_full_sort(dvh, volume_cc), rel=1e-9, abs=1e-9)
