"""How a check combines the courses: one interface, two strategies, one report.

A strategy takes the loaded courses and the constraint set and returns an :class:`Evaluation`:
the same result types whichever way the courses were combined. :func:`reirrad.check.run_check`
picks the strategy and assembles the one :class:`reirrad.results.CheckReport` from it.

* :class:`reirrad.check.RegisteredSum`: every course related to the reference frame (identity or
  REG), its dose sampled at the reference structures' samples, EQD2 summed sample by sample.
* :class:`reirrad.check.ConservativeBound`: no registration; each course judged on its own grid
  and structure set, per-organ upper bounds of the summed dose added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from reirrad.accumulate import LoadedCourse
    from reirrad.case import CaseSpec
    from reirrad.check import CheckOptions
    from reirrad.constraints import ConstraintSet
    from reirrad.eqd2 import RecoveryModel
    from reirrad.flags import Flag
    from reirrad.results import ConstraintResult, CourseSummary, DvhCurve, Hotspot


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What a strategy found: the parts of a report that depend on how the courses were combined."""

    courses: tuple[CourseSummary, ...]  # one header per course, in case order
    results: tuple[ConstraintResult, ...]  # one per constraint of the set, in set order
    flags: tuple[Flag, ...]
    assumptions: dict[str, object]  # method, fractions, alpha/beta, ... as the consensus asks them reported
    curves: tuple[DvhCurve, ...] = ()  # cumulative DVH curves, when the strategy has a cumulative dose
    warnings: tuple[str, ...] = ()  # the strategy's own warnings (the courses' notes are added by the report)
    hotspots: tuple[Hotspot, ...] = ()  # figure planes through failing or warning organs' hottest points


class Strategy(Protocol):
    """One way of combining the courses of a case and judging the result."""

    def evaluate(
        self,
        case: CaseSpec,
        cset: ConstraintSet,
        model: RecoveryModel,
        courses: Sequence[LoadedCourse],
        options: CheckOptions,
    ) -> Evaluation:
        """Judge every constraint of ``cset`` on the ``courses`` (the last is the reference)."""
        ...
