"""Report formats: terminal tables, machine formats (JSON, CSV, JUnit), HTML."""

from __future__ import annotations

import math


def rounded(value: float | None, digits: int) -> float | None:
    """``value`` rounded for output; None and NaN become None (JSON null, empty CSV cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)
