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

DOSE_KINDS = ("Dmax", "Dmin", "Dmean", "Dx")
VOLUME_KINDS = ("Vx", "Volume")

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DOSE_AT_VOLUME = re.compile(rf"^D{_NUMBER}(cc|%)(\[Gy\])?$", re.IGNORECASE)
_VOLUME_AT_DOSE = re.compile(rf"^V{_NUMBER}Gy(\[(?:cc|%)\])?$", re.IGNORECASE)
_NAMED = {
    "dmax": "Dmax",
    "max": "Dmax",
    "dmin": "Dmin",
    "min": "Dmin",
    "dmean": "Dmean",
    "mean": "Dmean",
    "volume": "Volume",
}
_HELP = (
    "use Dmax, Dmin, Dmean, D<x>cc (e.g. D0.03cc), D<x>% (e.g. D95%), "
    "V<x>Gy (cm3), V<x>Gy[%] or Volume"
)


@dataclass(frozen=True)
class Metric:
    """One DVH metric.

    ``kind`` is ``Dmax``, ``Dmin``, ``Dmean``, ``Dx`` (dose covering a volume), ``Vx`` (volume
    receiving a dose) or ``Volume``. ``parameter`` is x: a volume in cm3 or % for ``Dx``, a dose
    in Gy for ``Vx``; ``parameter_unit`` says which. ``unit`` is the unit of the result.
    """

    kind: str
    parameter: float | None = None
    parameter_unit: str | None = None
    unit: str = "Gy"

    @property
    def is_dose(self) -> bool:
        """True when the result is a dose (Gy)."""
        return self.kind in DOSE_KINDS

    def __str__(self) -> str:
        if self.kind == "Dx":
            return f"D{self.parameter:g}{self.parameter_unit}"
        if self.kind == "Vx":
            return f"V{self.parameter:g}Gy" + ("[%]" if self.unit == "%" else "")
        return self.kind


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
        return Metric(named, unit="cc" if named == "Volume" else "Gy")
    match = _DOSE_AT_VOLUME.match(cleaned)
    if match:
        x, unit = _number(match.group(1), text), match.group(2).lower()
        if x <= 0 or (unit == "%" and x > 100):
            raise ValueError(f"metric {text!r}: the volume must be > 0 cc, or in (0, 100] %")
        return Metric("Dx", x, unit, "Gy")
    match = _VOLUME_AT_DOSE.match(cleaned)
    if match:
        x = _number(match.group(1), text)
        relative = (match.group(2) or "").lower() == "[%]"
        return Metric("Vx", x, "Gy", "%" if relative else "cc")
    hint = ""
    if re.fullmatch(rf"[DV]{_NUMBER}", cleaned, re.IGNORECASE):
        hint = " (a unit is required: D95% or D2cc, V20Gy)"
    raise ValueError(f"unknown DVH metric {text!r}{hint}; {_HELP}")
