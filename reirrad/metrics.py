"""DVH metric names in the TG-263 style: ``Dmax``, ``Dmin``, ``Dmean``, ``D0.03cc``, ``D95%``,
``V20Gy`` (cm3), ``V20Gy[%]`` and ``Volume`` (cm3).

``parse_metric`` accepts a few harmless variants (any case, an optional ``[Gy]`` after a dose
metric, ``[cc]`` after a volume metric, ``Mean``/``Max``/``Min``); ``str(metric)`` is the
canonical spelling.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class MetricKind(StrEnum):
    """What a metric measures; the value is the canonical text of the named kinds."""

    DMAX = "Dmax"
    DMIN = "Dmin"
    DMEAN = "Dmean"
    VOLUME = "Volume"  # the structure's volume (cm3)
    DX = "Dx"  # dose covering a volume: D0.03cc, D95%
    VX = "Vx"  # volume receiving a dose: V20Gy (cm3), V20Gy[%]


class VolumeUnit(StrEnum):
    """A volume in cm3 or as a percentage of the structure's volume inside the dose grid."""

    CC = "cc"
    PERCENT = "%"


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DOSE_AT_VOLUME = re.compile(rf"^D{_NUMBER}(cc|%)(\[Gy\])?$", re.IGNORECASE)
_VOLUME_AT_DOSE = re.compile(rf"^V{_NUMBER}Gy(\[(?:cc|%)\])?$", re.IGNORECASE)
_NAMED = {
    "dmax": MetricKind.DMAX,
    "max": MetricKind.DMAX,
    "dmin": MetricKind.DMIN,
    "min": MetricKind.DMIN,
    "dmean": MetricKind.DMEAN,
    "mean": MetricKind.DMEAN,
    "volume": MetricKind.VOLUME,
}
_HELP = "use Dmax, Dmin, Dmean, D<x>cc (e.g. D0.03cc), D<x>% (e.g. D95%), V<x>Gy (cm3), V<x>Gy[%] or Volume"


@dataclass(frozen=True)
class Statistic:
    """A metric without a parameter: ``Dmax``, ``Dmin``, ``Dmean`` (Gy) or ``Volume`` (cm3)."""

    kind: MetricKind

    def __post_init__(self) -> None:
        if self.kind in (MetricKind.DX, MetricKind.VX):
            raise ValueError(f"{self.kind} takes a parameter: use DoseAtVolume or VolumeAtDose")

    @property
    def unit(self) -> str:
        """The unit of the metric's value: "cc" for ``Volume``, else "Gy"."""
        return "cc" if self.kind is MetricKind.VOLUME else "Gy"

    @property
    def is_dose(self) -> bool:
        """True when the value is a dose (Gy)."""
        return self.kind is not MetricKind.VOLUME

    def __str__(self) -> str:
        return self.kind.value


@dataclass(frozen=True)
class DoseAtVolume:
    """``D<x>cc`` / ``D<x>%``: the dose (Gy) covering the hottest ``volume`` of the structure."""

    volume: float  # cm3, or % of the structure's volume inside the dose grid
    volume_unit: VolumeUnit
    kind: ClassVar[MetricKind] = MetricKind.DX
    unit: ClassVar[str] = "Gy"
    is_dose: ClassVar[bool] = True

    def __str__(self) -> str:
        return f"D{self.volume:g}{self.volume_unit.value}"


@dataclass(frozen=True)
class VolumeAtDose:
    """``V<x>Gy`` (cm3) / ``V<x>Gy[%]``: the volume of the structure receiving at least ``dose_gy``."""

    dose_gy: float
    volume_unit: VolumeUnit  # the unit of the value
    kind: ClassVar[MetricKind] = MetricKind.VX
    is_dose: ClassVar[bool] = False

    @property
    def unit(self) -> str:
        """The unit of the metric's value: "cc" or "%"."""
        return self.volume_unit.value

    def __str__(self) -> str:
        return f"V{self.dose_gy:g}Gy" + ("[%]" if self.volume_unit is VolumeUnit.PERCENT else "")


Metric = Statistic | DoseAtVolume | VolumeAtDose
"""One DVH metric: tagged by ``kind``; ``unit`` is the unit of its value ("Gy", "cc" or "%")."""


def _number(text: str, metric: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"metric {metric!r}: the number must be finite")
    return value


def parse_metric(text: str) -> Metric:
    """Parse a metric name; raise ``ValueError`` explaining the grammar when it is not one."""
    cleaned = text.strip().replace(" ", "")
    named = _NAMED.get(cleaned.lower())
    if named:
        return Statistic(named)
    match = _DOSE_AT_VOLUME.match(cleaned)
    if match:
        x, unit = _number(match.group(1), text), VolumeUnit(match.group(2).lower())
        if x <= 0 or (unit is VolumeUnit.PERCENT and x > 100):
            raise ValueError(f"metric {text!r}: the volume must be > 0 cc, or in (0, 100] %")
        return DoseAtVolume(x, unit)
    match = _VOLUME_AT_DOSE.match(cleaned)
    if match:
        x = _number(match.group(1), text)
        relative = (match.group(2) or "").lower() == "[%]"
        return VolumeAtDose(x, VolumeUnit.PERCENT if relative else VolumeUnit.CC)
    hint = ""
    if re.fullmatch(rf"[DV]{_NUMBER}", cleaned, re.IGNORECASE):
        hint = " (a unit is required: D95% or D2cc, V20Gy)"
    raise ValueError(f"unknown DVH metric {text!r}{hint}; {_HELP}")
