"""DVH metrics on synthetic doses with analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
from test_masks import make_grid, rectangle, roi_of

from reirrad.dicom.structures import Roi
from reirrad.dvh import Dvh, cumulative_dvh, evaluate, sample_dose, trilinear
from reirrad.masks import sample_roi
from reirrad.metrics import parse_metric


def linear_dose(grid, gx=1.0, offset=30.0) -> np.ndarray:
    """D = offset + gx * x (Gy, x in mm) at every voxel centre."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    xyz = grid.to_patient(np.column_stack([k.ravel(), j.ravel(), i.ravel()]))
    return (offset + gx * xyz[:, 0]).reshape(grid.shape)


@pytest.fixture(scope="module")
def box_dvh() -> Dvh:
    """Box x in [-5, 5], y in [-3, 3], z in [-1, 9] mm on D = 30 + x: uniform 25..35 Gy."""
    grid = make_grid()
    roi = roi_of(*(rectangle(-5, 5, -3, 3, z) for z in range(0, 10, 2)))
    return sample_dose(sample_roi(roi, grid), linear_dose(grid))


@pytest.mark.parametrize(
    "metric, expected, tolerance",
    [
        ("Dmax", 35.0, 1e-6),
        ("Dmin", 25.0, 1e-6),
        ("Dmean", 30.0, 1e-6),
        ("D50%", 30.0, 0.05),
        ("D95%", 25.5, 0.05),
        ("D5%", 34.5, 0.05),
        ("D0.06cc", 34.0, 0.05),  # hottest 0.06 of 0.6 cc = top 1 mm of x
        ("V30Gy", 0.3, 0.01),
        ("V30Gy[%]", 50.0, 1.0),
        ("Volume", 0.6, 1e-9),
    ],
)
def test_box_on_linear_gradient(box_dvh, metric, expected, tolerance):
    assert evaluate(box_dvh, parse_metric(metric)).value == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("metric", ["Dmax", "Dmin", "Dmean", "D95%", "D0.03cc", "D0.1cc", "D100%"])
def test_dose_metrics_are_linear_combinations_of_samples(box_dvh, metric):
    result = evaluate(box_dvh, parse_metric(metric))
    assert result.indices is not None and result.coefficients.sum() == pytest.approx(1.0)
    assert result.value == pytest.approx(float(result.coefficients @ box_dvh.doses_gy[result.indices]))


def test_linear_combination_splits_a_sum_of_courses():
    grid = make_grid()
    sampling = sample_roi(roi_of(*(rectangle(-5, 5, -3, 3, z) for z in (0, 2, 4))), grid)
    prior, new = linear_dose(grid, 1.0, 30.0), linear_dose(grid, -0.5, 10.0)
    total = sample_dose(sampling, prior + new)
    result = evaluate(total, parse_metric("D0.03cc"))
    parts = [result.coefficients @ sample_dose(sampling, d).doses_gy[result.indices] for d in (prior, new)]
    assert sum(parts) == pytest.approx(result.value)


def test_volume_metrics_have_no_indices(box_dvh):
    assert evaluate(box_dvh, parse_metric("V20Gy")).indices is None


def test_not_evaluable_metrics_are_none_with_a_reason_never_zero(box_dvh):
    too_big = evaluate(box_dvh, parse_metric("D2cc"))
    assert too_big.value is None and "2 cm3" in too_big.reason
    grid = make_grid()
    empty = sample_roi(Roi(9, "E", "ORGAN", ()), grid)
    for metric in ("Dmax", "Dmean", "D95%", "V10Gy", "Volume"):
        result = evaluate(sample_dose(empty, linear_dose(grid)), parse_metric(metric))
        assert result.value is None and result.reason
    outside = sample_roi(roi_of(*(rectangle(50, 60, 0, 5, z) for z in (0, 2))), grid)
    dvh = sample_dose(outside, linear_dose(grid))
    assert evaluate(dvh, parse_metric("Dmax")).value is None
    assert "outside the dose grid" in evaluate(dvh, parse_metric("Dmean")).reason
    assert evaluate(dvh, parse_metric("Volume")).value == pytest.approx(0.2)


def test_small_structure_dmax_uses_the_surface():
    # a 1 x 1 mm square on a 1 Gy/mm gradient: Dmax is the dose at x = 0.5 mm exactly
    grid = make_grid()
    dvh = sample_dose(sample_roi(roi_of(*(rectangle(-0.5, 0.5, 0, 1, z) for z in (0, 2))), grid), linear_dose(grid))
    assert evaluate(dvh, parse_metric("Dmax")).value == pytest.approx(30.5, abs=1e-6)
    assert evaluate(dvh, parse_metric("Dmin")).value == pytest.approx(29.5, abs=1e-6)


def test_sample_dose_refuses_another_grid(box_dvh):
    grid = make_grid()
    sampling = sample_roi(roi_of(rectangle(-5, 5, -3, 3, 0)), grid)
    with pytest.raises(ValueError, match="differs"):
        sample_dose(sampling, np.zeros((3, 3, 3)))


def test_trilinear_is_exact_for_linear_fields_and_clamps_at_edges():
    k, j, i = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    field = 1.0 + 2.0 * k + 3.0 * j + 5.0 * i
    points = np.array([[0.5, 1.25, 3.75], [2.0, 3.0, 4.0], [2.4, -0.4, 0.0]], np.float32)
    np.testing.assert_allclose(trilinear(field, points), [1 + 1 + 3.75 + 18.75, 1 + 4 + 9 + 20, 1 + 4 + 0 + 0])


def test_cumulative_dvh_matches_the_samples(box_dvh):
    dose, volume = cumulative_dvh(box_dvh, bin_width_gy=0.5)
    assert dose[0] == 0.0 and volume[0] == pytest.approx(box_dvh.in_grid_volume_cc)
    assert np.all(np.diff(volume) <= 1e-12)
    at_30 = volume[np.searchsorted(dose, 30.0)]
    assert at_30 == pytest.approx(evaluate(box_dvh, parse_metric("V30Gy")).value)


def test_a_curve_of_an_absurd_dose_range_stays_small_and_consistent():
    """A dose scaled 10^5 x too high (1.47e6 Gy) asked for 124 M bins at 0.01 Gy (948 MiB, exit 3
    under a 1.5 GiB limit); the bins now widen so a curve has at most MAX_CURVE_BINS levels."""
    from reirrad.dvh import MAX_CURVE_BINS, curve_bin_gy

    doses = np.array([0.0, 1.0e6, 1.468e6, 1.468e6])
    dvh = Dvh(doses, np.array([0.0, 1.0, 2.0, 1.0]), 4.0, 4.0)
    width = curve_bin_gy(dvh, 0.01)
    levels, volume = cumulative_dvh(dvh, 0.01)
    assert width == pytest.approx(14.68) and len(levels) <= MAX_CURVE_BINS + 2
    assert levels[1] - levels[0] == pytest.approx(width)
    assert volume[0] == pytest.approx(4.0) and volume[np.searchsorted(levels, 1.0e6 + width)] == pytest.approx(3.0)
    ordinary = Dvh(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 2.0, 2.0)
    assert curve_bin_gy(ordinary, 0.01) == 0.01 and len(cumulative_dvh(ordinary, 0.01)[0]) == 201
