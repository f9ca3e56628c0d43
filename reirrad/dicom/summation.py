"""DICOM DoseSummationType (PS3.3 C.8.8.3) and what each means for reirrad.

PLAN is the whole plan, FRACTION a whole fraction group (all its fractions, not one fraction),
BEAM some beams of the plan (all fractions), FRACTION_SESSION one session; the other values
(MULTI_PLAN, BRACHY, the *_SESSION values, CONTROL_POINT, RECORD) are known but never resolved
to one plan's dose. Three sets say which types each step accepts:

* :data:`WHOLE_DELIVERY`: the dose is the whole delivery of a plan or fraction group, so EQD2 with
  that delivery's fraction count applies to it as it is (``reirrad dvh``, in-memory doses).
* :data:`DISCOVERABLE`: course discovery groups these into phases (BEAM doses added per group).
* :data:`PHASE_TOTAL`: a phase's total can be built from these (BEAM doses added, a
  FRACTION_SESSION dose multiplied by the fractions).
"""

from __future__ import annotations

from enum import StrEnum


class SummationType(StrEnum):
    """A DICOM DoseSummationType value (compares equal to its text)."""

    PLAN = "PLAN"
    MULTI_PLAN = "MULTI_PLAN"
    FRACTION = "FRACTION"
    BEAM = "BEAM"
    BRACHY = "BRACHY"
    FRACTION_SESSION = "FRACTION_SESSION"
    BEAM_SESSION = "BEAM_SESSION"
    BRACHY_SESSION = "BRACHY_SESSION"
    CONTROL_POINT = "CONTROL_POINT"
    RECORD = "RECORD"


WHOLE_DELIVERY = frozenset({SummationType.PLAN, SummationType.FRACTION})
DISCOVERABLE = frozenset({SummationType.PLAN, SummationType.FRACTION, SummationType.BEAM})
PHASE_TOTAL = DISCOVERABLE | {SummationType.FRACTION_SESSION}
