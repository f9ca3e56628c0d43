"""Linear-quadratic radiobiology, voxel by voxel: BED and EQD2 (Gy).

BED = D (1 + d / (a/b)) and EQD2 = D (d + a/b) / (2 + a/b), with d = D / n the dose per
fraction of the course (or phase) that delivered D in n fractions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _check(fractions: float, alpha_beta_gy: float) -> None:
    if not fractions > 0:
        raise ValueError(f"number of fractions must be positive, got {fractions}")
    if not alpha_beta_gy > 0:
        raise ValueError(f"alpha/beta must be positive, got {alpha_beta_gy} Gy")


def bed_gy(dose_gy: ArrayLike, fractions: float, alpha_beta_gy: float) -> np.ndarray:
    """Biologically effective dose (Gy) of a total dose given in ``fractions`` equal fractions."""
    _check(fractions, alpha_beta_gy)
    dose = np.asarray(dose_gy, dtype=float)
    return dose * (1.0 + dose / (fractions * alpha_beta_gy))


def eqd2_gy(dose_gy: ArrayLike, fractions: float, alpha_beta_gy: float) -> np.ndarray:
    """Equivalent dose in 2 Gy fractions (Gy) of a total dose given in ``fractions`` fractions."""
    _check(fractions, alpha_beta_gy)
    dose = np.asarray(dose_gy, dtype=float)
    return dose * (dose / fractions + alpha_beta_gy) / (2.0 + alpha_beta_gy)
