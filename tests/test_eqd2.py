"""BED, EQD2, LQ-L and recovery models against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reirrad.eqd2 import (
    RECOVERY_FILE,
    bed_gy,
    eqd2_gy,
    load_recovery_models,
    recovery_factor,
    recovery_model,
)
from reirrad.errors import InputError


@pytest.mark.parametrize(
    ("dose", "fractions", "alpha_beta", "expected"),
    [
        # 35/5: d = 7; EQD2 = 35 (7 + 2)/4 = 78.75 and 35 (7 + 3)/5 = 70
        (35.0, 5, 2.0, 78.75),
        (35.0, 5, 3.0, 70.0),
        (70.0, 35, 3.0, 70.0),
        # 65/54: 65 (1.2037 + 3)/5 = 54.648; 65 (1.2037 + 10)/12 = 60.687
        (65.0, 54, 3.0, 54.65),
        (65.0, 54, 10.0, 60.69),
        # 60/27: 60 (2.2222 + 3)/5 = 62.667; 60 (2.2222 + 10)/12 = 61.111
        (60.0, 27, 3.0, 62.67),
        (60.0, 27, 10.0, 61.11),
        # 30/5: 30 (6 + 3)/5 = 54; 30 (6 + 2)/4 = 60
        (30.0, 5, 3.0, 54.0),
        (30.0, 5, 2.0, 60.0),
    ],
)
def test_eqd2_hand_computed(dose, fractions, alpha_beta, expected):
    assert float(eqd2_gy(dose, fractions, alpha_beta)) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize(("alpha_beta", "expected"), [(2.0, 100.0), (4.0, 75.0)])
def test_bed_50_in_25(alpha_beta, expected):
    assert float(bed_gy(50.0, 25, alpha_beta)) == pytest.approx(expected)


def test_vectorised_per_voxel_and_input_untouched():
    dose = np.array([[0.0, 35.0], [70.0, 30.0]])
    before = dose.copy()
    out = eqd2_gy(dose, 5, 3.0)
    np.testing.assert_allclose(out, [[0.0, 70.0], [70 * (14 + 3) / 5, 54.0]])
    np.testing.assert_array_equal(dose, before)


def test_lql_hand_computed_and_continuous():
    # 3 x 10 Gy, a/b 3, d_T 6: 3 [6 (1 + 2) + (1 + 4) (10 - 6)] = 3 (18 + 20) = 114 (LQ: 130)
    assert float(bed_gy(30.0, 3, 3.0, lql_transition_gy=6.0)) == pytest.approx(114.0)
    assert float(bed_gy(30.0, 3, 3.0)) == pytest.approx(130.0)
    assert float(eqd2_gy(30.0, 3, 3.0, lql_transition_gy=6.0)) == pytest.approx(114.0 * 3 / 5)
    # below d_T nothing changes; at d_T both forms agree
    dose = np.linspace(0.0, 18.0, 37)
    np.testing.assert_allclose(bed_gy(dose, 3, 3.0, 6.0), bed_gy(dose, 3, 3.0))
    # slope above d_T is the LQ slope at d_T: n (1 + 2 d_T / (a/b)) per Gy per fraction
    d = np.array([7.0, 8.0])
    bed = bed_gy(d * 3, 3, 3.0, 6.0)
    assert bed[1] - bed[0] == pytest.approx(3 * (1 + 2 * 6 / 3))


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        eqd2_gy(1.0, 0, 3.0)
    with pytest.raises(ValueError):
        eqd2_gy(1.0, 5, 0.0)
    with pytest.raises(ValueError):
        bed_gy(1.0, 5, 3.0, lql_transition_gy=0.0)


def test_recovery_file_models_are_cited():
    models = load_recovery_models()
    assert {"none", "simple-25-50", "price-2021"} <= set(models)
    assert "10.1007/s00066-021-01772-7" in models["simple-25-50"].source
    assert "10.1016/j.adro.2020.09.027" in models["price-2021"].source


@pytest.mark.parametrize(("months", "expected_r"), [(3.0, 0.0), (6.0, 0.0), (6.5, 0.25), (12.0, 0.25), (26.1, 0.5)])
def test_simple_25_50(months, expected_r):
    factor = recovery_factor(recovery_model("simple-25-50"), "SpinalCord", months)
    assert factor.r == expected_r
    assert factor.keep == 1.0 - expected_r
    assert (factor.model, factor.interval_months) == ("simple-25-50", months)


def test_simple_model_does_not_apply_to_other_organs():
    factor = recovery_factor(recovery_model("simple-25-50"), "Parotid_L", 30.0)
    assert factor.r == 0.0
    assert "no recovery" in factor.note


def test_price_refuses_six_to_twelve_months():
    model = recovery_model("price-2021")
    assert recovery_factor(model, "spinalcord", 5.0).r == 0.0
    assert recovery_factor(model, "SpinalCord", 13.0).r == 0.5
    with pytest.raises(InputError, match="does not define r for an interval of 8.0 months"):
        recovery_factor(model, "SpinalCord", 8.0)


def test_none_model_needs_no_dates_but_others_do():
    assert recovery_factor(recovery_model(), "SpinalCord", None).r == 0.0
    with pytest.raises(InputError, match="end_date"):
        recovery_factor(recovery_model("simple-25-50"), "SpinalCord", None)


def test_unknown_model_lists_names():
    with pytest.raises(InputError, match="simple-25-50"):
        recovery_model("nope")


def test_invalid_recovery_file(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text('[[models]]\nname = "none"\ntitle = "t"\nsource = "s"\nsteps = [{ r = 1.5 }]\n')
    with pytest.raises(
        InputError, match=r"models\[0\] \(none\)\.steps\[0\]: field 'r': must be in \[0, 1\)"
    ) as refused:
        load_recovery_models(bad)
    assert refused.value.path == bad


def test_recovery_file_lists_every_problem(tmp_path):
    """One error names the file and lists each problem, not only the first one found."""
    bad = tmp_path / "r.toml"
    bad.write_text(
        '[[models]]\nname = "a"\ntitle = "t"\nsource = "s"\nsteps = [{ r = 1.5 }, { above_months = 3, '
        'up_to_months = 1 }]\n[[models]]\nname = "b"\n'
    )
    with pytest.raises(InputError) as refused:
        load_recovery_models(bad)
    assert str(refused.value) == (
        f"{bad}: invalid recovery models: models[0] (a).steps[0]: field 'r': must be in [0, 1), got 1.5; "
        "models[0] (a).steps[1]: empty interval step; models[1]: missing or invalid field ('title'); "
        "models: no recovery model named 'none'"
    )


def test_builtin_models_cover_every_interval_exactly_once():
    """Steps cover (above_months, up_to_months]: from -inf to +inf without gap or overlap, so every
    interval gets one answer (a value or a refusal from the source), never "no step"."""
    for model in load_recovery_models(RECOVERY_FILE).values():
        steps = sorted(model.steps, key=lambda step: step.above_months)
        assert steps[0].above_months == -np.inf and steps[-1].up_to_months == np.inf, model.name
        assert all(a.up_to_months == b.above_months for a, b in itertools.pairwise(steps)), model.name
