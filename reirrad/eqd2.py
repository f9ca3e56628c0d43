"""Linear-quadratic radiobiology, voxel by voxel: BED, EQD2 and recovery of prior dose (Gy).

BED = D (1 + d / (a/b)) and EQD2 = BED / (1 + 2 / (a/b)) = D (d + a/b) / (2 + a/b), with
d = D / n the dose per fraction of the course (or phase) that delivered D in n fractions.

Optional LQ-L (linear-quadratic-linear): above a transition dose per fraction d_T the survival
curve continues along the LQ tangent at d_T, so for d > d_T

    BED = n [d_T (1 + d_T / (a/b)) + (1 + 2 d_T / (a/b)) (d - d_T)]
        = D + n (d^2 - (d - d_T)^2) / (a/b),

which is the form used here (one expression for every voxel). d_T comes from the caller's data;
it is off (``None``) by default.

Recovery: a prior course's EQD2 is multiplied by (1 - r), r from a named model in
``constraints/recovery.toml`` as a function of organ and interval (months).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from reirrad.data import builtin_file
from reirrad.errors import InputError, OptionError
from reirrad.tomlfile import Problems, read_toml

RECOVERY_FILE = builtin_file("recovery.toml")
NO_RECOVERY = "none"


def _check(fractions: float, alpha_beta_gy: float, lql_transition_gy: float | None) -> None:
    if not fractions > 0:
        raise ValueError(f"number of fractions must be positive, got {fractions}")
    if not alpha_beta_gy > 0:
        raise ValueError(f"alpha/beta must be positive, got {alpha_beta_gy} Gy")
    check_lql_transition_gy(lql_transition_gy)


def check_lql_transition_gy(lql_transition_gy: float | None) -> None:
    """OptionError unless the LQ-L transition dose per fraction is None (pure LQ) or a positive,
    finite dose (Gy)."""
    if lql_transition_gy is not None and not 0 < lql_transition_gy < math.inf:
        raise OptionError(
            f"LQ-L transition dose (lql_transition_gy) must be positive and finite, got {lql_transition_gy} Gy"
        )


def bed_gy(
    dose_gy: ArrayLike,
    fractions: float,
    alpha_beta_gy: float,
    lql_transition_gy: float | None = None,
) -> np.ndarray:
    """Biologically effective dose (Gy) of a total dose given in ``fractions`` equal fractions.

    With ``lql_transition_gy`` (d_T, Gy per fraction), doses per fraction above d_T follow LQ-L.
    """
    _check(fractions, alpha_beta_gy, lql_transition_gy)
    dose = np.asarray(dose_gy, dtype=float)
    per_fraction = dose / fractions
    quadratic = np.square(per_fraction)
    if lql_transition_gy is not None:
        quadratic -= np.square(np.maximum(per_fraction - lql_transition_gy, 0.0))
    quadratic *= fractions / alpha_beta_gy
    quadratic += dose
    return quadratic


def eqd2_gy(
    dose_gy: ArrayLike,
    fractions: float,
    alpha_beta_gy: float,
    lql_transition_gy: float | None = None,
) -> np.ndarray:
    """Equivalent dose in 2 Gy fractions (Gy) of a total dose given in ``fractions`` fractions."""
    bed = bed_gy(dose_gy, fractions, alpha_beta_gy, lql_transition_gy)
    bed *= alpha_beta_gy / (alpha_beta_gy + 2.0)
    return bed


@dataclass(frozen=True)
class RecoveryStep:
    """r for intervals in (above_months, up_to_months]; r None means the source does not define it."""

    above_months: float
    up_to_months: float
    r: float | None
    note: str = ""

    def contains(self, months: float) -> bool:
        """True when ``months`` lies in (above_months, up_to_months]."""
        return self.above_months < months <= self.up_to_months


@dataclass(frozen=True)
class RecoveryModel:
    """A named, cited recovery model: step function of the interval, for some organs."""

    name: str
    title: str
    source: str
    organs: tuple[str, ...] | None  # None: every organ
    steps: tuple[RecoveryStep, ...]

    def applies_to(self, organ: str | None) -> bool:
        """True when the model defines recovery for this organ (case-insensitive)."""
        if self.organs is None:
            return True
        return organ is not None and organ.lower() in {o.lower() for o in self.organs}


@dataclass(frozen=True)
class RecoveryFactor:
    """The recovery applied to one prior course for one organ, with what it rests on."""

    r: float
    model: str
    organ: str | None
    interval_months: float | None
    note: str

    @property
    def keep(self) -> float:
        """The factor (1 - r) that multiplies the prior course's EQD2."""
        return 1.0 - self.r


def recovery_factor(
    model: RecoveryModel, organ: str | None, interval_months: float | None, path: Path = RECOVERY_FILE
) -> RecoveryFactor:
    """r for ``organ`` after ``interval_months``; InputError when the model cannot say.

    ``path`` names the model file in errors.
    """

    def factor(r: float, note: str) -> RecoveryFactor:
        return RecoveryFactor(r, model.name, organ, interval_months, note)

    if not model.applies_to(organ):
        return factor(0.0, f"model {model.name!r} defines no recovery for organ {organ!r}: r = 0")
    if interval_months is None:
        if all(step.r == 0.0 for step in model.steps):
            return factor(0.0, model.title)
        raise InputError(
            path,
            f"recovery model {model.name!r} needs the interval: give end_date of the prior course "
            "and start_date of the new course in the case file",
        )
    if interval_months < 0:
        raise InputError(path, f"negative interval {interval_months:.1f} months between courses")
    for step in model.steps:
        if step.contains(interval_months):
            if step.r is None:
                raise InputError(
                    path,
                    f"recovery model {model.name!r} does not define r for an interval of "
                    f"{interval_months:.1f} months ({step.note or 'not given in its source'}); "
                    "choose another recovery model",
                )
            return factor(step.r, step.note or model.title)
    raise InputError(path, f"recovery model {model.name!r} has no step for {interval_months:.1f} months")


def load_recovery_models(path: str | Path = RECOVERY_FILE) -> dict[str, RecoveryModel]:
    """Read every model of a recovery TOML file, keyed by name; one InputError listing every problem
    when the file is not usable."""
    path = Path(path)
    data = read_toml(path, "recovery models")
    problems = Problems(path)
    models: dict[str, RecoveryModel] = {}
    for i, entry in enumerate(data.get("models", [])):
        model = _parse_model(entry, i, problems)
        if model is not None and model.name in models:
            problems.add(f"models[{i}]", "name", f"recovery model {model.name!r} is defined twice")
        elif model is not None:
            models[model.name] = model
    if NO_RECOVERY not in models:
        problems.add("models", None, f"no recovery model named {NO_RECOVERY!r}")
    problems.raise_if_any("recovery models")
    return models


def recovery_model(name: str = NO_RECOVERY, path: str | Path = RECOVERY_FILE) -> RecoveryModel:
    """One named model, or an InputError listing the names available."""
    models = load_recovery_models(path)
    if name not in models:
        raise InputError(path, f"no recovery model {name!r} (has: {', '.join(sorted(models))})")
    return models[name]


def _parse_model(entry: Any, index: int, problems: Problems) -> RecoveryModel | None:
    """One ``[[models]]`` table, or None with its problems recorded."""
    where = f"models[{index}]"
    try:
        name, title, source = str(entry["name"]), str(entry["title"]), str(entry["source"])
        organs = entry.get("organs")
        steps = tuple(
            RecoveryStep(
                above_months=float(step.get("above_months", -math.inf)),
                up_to_months=float(step.get("up_to_months", math.inf)),
                r=None if step.get("r") is None else float(step["r"]),
                note=str(step.get("note", "")),
            )
            for step in entry["steps"]
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problems.add(where, None, f"missing or invalid field ({exc})")
        return None
    before = len(problems)
    for j, step in enumerate(steps):
        if step.r is not None and not 0.0 <= step.r < 1.0:
            problems.add(f"{where} ({name}).steps[{j}]", "r", f"must be in [0, 1), got {step.r}")
        if not step.above_months < step.up_to_months:
            problems.add(f"{where} ({name}).steps[{j}]", None, "empty interval step")
    if len(problems) > before:
        return None
    return RecoveryModel(name, title, source, None if organs is None else tuple(organs), steps)
