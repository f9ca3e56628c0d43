"""Metric grammar: canonical names, units, helpful errors."""

from __future__ import annotations

import pytest

from reirrad.metrics import (
    DoseAtVolume,
    MetricKind,
    Statistic,
    VolumeAtDose,
    VolumeUnit,
    parse_metric,
)


@pytest.mark.parametrize(
    "text, canonical, kind, parameter, unit",
    [
        ("Dmax", "Dmax", "Dmax", None, "Gy"),
        ("dmin", "Dmin", "Dmin", None, "Gy"),
        ("Mean", "Dmean", "Dmean", None, "Gy"),
        ("D0.03cc", "D0.03cc", "Dx", 0.03, "Gy"),
        ("D0.03cc[Gy]", "D0.03cc", "Dx", 0.03, "Gy"),
        ("d1CC", "D1cc", "Dx", 1.0, "Gy"),
        ("D95%", "D95%", "Dx", 95.0, "Gy"),
        ("D99.5%", "D99.5%", "Dx", 99.5, "Gy"),
        ("V20Gy", "V20Gy", "Vx", 20.0, "cc"),
        ("V20Gy[cc]", "V20Gy", "Vx", 20.0, "cc"),
        ("V20Gy[%]", "V20Gy[%]", "Vx", 20.0, "%"),
        (" V0.5gy[%] ", "V0.5Gy[%]", "Vx", 0.5, "%"),
        ("Volume", "Volume", "Volume", None, "cc"),
    ],
)
def test_parse_and_canonical_text(text, canonical, kind, parameter, unit):
    metric = parse_metric(text)
    assert str(metric) == canonical
    assert (metric.kind, getattr(metric, "volume", getattr(metric, "dose_gy", None)), metric.unit) == (
        kind,
        parameter,
        unit,
    )
    assert parse_metric(str(metric)) == metric


def test_dose_metrics_are_dose():
    assert parse_metric("D2cc").is_dose and parse_metric("Dmean").is_dose
    assert not parse_metric("V20Gy").is_dose and not parse_metric("Volume").is_dose


def test_metric_is_frozen_and_hashable():
    metric = parse_metric("D95%")
    with pytest.raises(AttributeError):
        metric.kind = "Dmax"  # type: ignore[misc]
    assert {metric: 1}[DoseAtVolume(95.0, VolumeUnit.PERCENT)] == 1


def test_metric_types_are_tagged():
    """Each kind has its own type with typed fields; parse_metric and str round-trip exactly."""
    assert parse_metric("D2cc") == DoseAtVolume(2.0, VolumeUnit.CC)
    assert parse_metric("V20Gy[%]") == VolumeAtDose(20.0, VolumeUnit.PERCENT)
    assert parse_metric("Mean") == Statistic(MetricKind.DMEAN)
    assert parse_metric("Volume").unit == "cc" and parse_metric("V20Gy").unit == "cc"
    assert str(VolumeAtDose(0.5, VolumeUnit.PERCENT)) == "V0.5Gy[%]" and str(Statistic(MetricKind.DMIN)) == "Dmin"
    with pytest.raises(ValueError, match="takes a parameter"):
        Statistic(MetricKind.DX)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("D95", "unit is required"),
        ("V20", "unit is required"),
        ("D0cc", "> 0"),
        ("D120%", "(0, 100]"),
        ("Dmedian", "use Dmax"),
        ("", "unknown DVH metric"),
        ("V20Gy[Gy]", "unknown DVH metric"),
    ],
)
def test_bad_metric_explains(text, fragment):
    with pytest.raises(ValueError, match=None) as info:
        parse_metric(text)
    assert fragment in str(info.value)
