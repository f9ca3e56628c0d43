"""Flags: each kind fires at its threshold and stays quiet below it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reirrad.errors import InputError
from reirrad.flags import CourseInfo, FlagContext, OrganResult, compute_flags, load_flag_rules
from reirrad.organs import OrganMatch

PRIOR = CourseInfo("prior", 35, prescription_gy=70.0)
CONVENTIONAL = CourseInfo("new", 30, prescription_gy=60.0, schedule="daily")
SBRT = CourseInfo("new", 5, prescription_gy=30.0, schedule="alternate_day")


def ids(ctx):
    return [f.id for f in compute_flags(ctx)]


def organ(name, metric, ab, cumulative, physical=None, status="pass", coverage=None):
    return OrganResult(name, name + "_s", metric, ab, cumulative, status, physical or {}, coverage or {})


def ctx(**kw):
    base = dict(courses=(PRIOR, CONVENTIONAL), interval_months=30.0)
    base.update(kw)
    return FlagContext(**base)


def test_quiet_case_raises_only_the_classification():
    flags = compute_flags(ctx())
    assert [f.id for f in flags] == ["reirradiation_type"]
    assert "not assessed" in flags[0].message


@pytest.mark.parametrize(
    "months, expected",
    [(0.0, ["interval_short"]), (5.99, ["interval_short"]), (6.0, ["interval_under_12_months"]),
     (11.99, ["interval_under_12_months"]), (12.0, []), (None, ["interval_unknown"])],
)
def test_interval_bands(months, expected):
    got = [i for i in ids(ctx(interval_months=months)) if i.startswith("interval")]
    assert got == expected


def test_interval_message_and_source():
    (flag,) = [f for f in compute_flags(ctx(interval_months=4.25)) if f.id == "interval_short"]
    assert flag.severity == "high" and "4.2 months" in flag.message and "17084560" in flag.source


def test_carotid_blowout_at_119_gy_each_side():
    results = (organ("A_Carotid_L", "Dmax", 3.0, 119.0), organ("A_Carotid_R", "Dmax", 3.0, 118.99))
    flags = [f for f in compute_flags(ctx(organs=results)) if f.id == "carotid_blowout_risk"]
    assert len(flags) == 1 and "A_Carotid_L" in flags[0].message and "119.0 Gy EQD2(3)" in flags[0].message
    assert "10.3390/cancers13133173" in flags[0].source


def test_mandible_orn_flag():
    assert "mandible_orn_risk" in ids(ctx(organs=(organ("Bone_Mandible", "Dmax", 3.0, 120.0),)))
    assert "mandible_orn_risk" not in ids(ctx(organs=(organ("Bone_Mandible", "Dmax", 3.0, 118.0),)))
    # a metric the rule does not name (Dmean) never fires it
    assert "mandible_orn_risk" not in ids(ctx(organs=(organ("Bone_Mandible", "Dmean", 3.0, 130.0),)))


def test_cord_single_course_above_49_gy_eqd2_2():
    # 2 Gy per fraction: EQD2(2) equals the physical dose. 49 Gy in 24.5 fractions is exactly 49 Gy EQD2(2).
    at_limit = CourseInfo("prior", 24.5)
    cord = organ("SpinalCord", "Dmax", 2.0, 60.0, {"prior": 49.0, "new": 10.0})
    assert "cord_single_course_high" not in ids(ctx(courses=(at_limit, CONVENTIONAL), organs=(cord,)))
    # 52 Gy in 26 fractions is 52 Gy EQD2(2) > 49
    above = organ("SpinalCord", "Dmax", 2.0, 60.0, {"prior": 52.0, "new": 10.0})
    prior = CourseInfo("prior", 26, prescription_gy=52.0)
    (flag,) = [f for f in compute_flags(ctx(courses=(prior, CONVENTIONAL), organs=(above,))) if f.id == "cord_single_course_high"]
    assert "'prior'" in flag.message and "52.0 Gy EQD2(2)" in flag.message
    # 45 Gy in 9 fractions (5 Gy each): EQD2(2) = 45 * 7 / 4 = 78.75 Gy, although 45 Gy physical < 49
    hypo = organ("SpinalCord", "Dmax", 2.0, 90.0, {"prior": 45.0, "new": 10.0})
    assert "cord_single_course_high" in ids(ctx(courses=(CourseInfo("prior", 9), CONVENTIONAL), organs=(hypo,)))
    # the rule is for alpha/beta 2: a cord result at alpha/beta 3 is not judged by it
    other_ab = organ("SpinalCord", "Dmax", 3.0, 60.0, {"prior": 60.0, "new": 10.0})
    assert "cord_single_course_high" not in ids(ctx(organs=(other_ab,)))


def test_sbrt_thecal_sac_course_limit_and_share():
    # 5 x 5 Gy: EQD2(2) = 25 * (5 + 2) / 4 = 43.75 Gy > 25; share 43.75 / 80 = 0.55 > 0.5
    canal = organ("SpinalCanal", "Dmax", 2.0, 80.0, {"prior": 40.0, "new": 25.0})
    got = ids(ctx(courses=(PRIOR, SBRT), organs=(canal,)))
    assert "thecal_sac_sbrt_course_high" in got and "thecal_sac_sbrt_share_high" in got
    # 5 x 2.5 Gy = 12.5 Gy: EQD2(2) = 12.5 * 4.5 / 4 = 14.06 Gy; share 14.06 / 80 < 0.5
    small = organ("SpinalCanal", "Dmax", 2.0, 80.0, {"prior": 40.0, "new": 12.5})
    got = ids(ctx(courses=(PRIOR, SBRT), organs=(small,)))
    assert "thecal_sac_sbrt_course_high" not in got and "thecal_sac_sbrt_share_high" not in got
    # a conventional new course is not an SBRT course
    assert "thecal_sac_sbrt_course_high" not in ids(ctx(organs=(canal,)))


def test_high_dose_per_fraction_next_to_serial_organ():
    # 12 Gy in 5 fractions = 2.4 Gy per fraction to the brainstem in the new course
    hot = organ("Brainstem", "D0.03cc", 2.0, 60.0, {"prior": 50.0, "new": 12.0})
    (flag,) = [f for f in compute_flags(ctx(courses=(PRIOR, SBRT), organs=(hot,))) if f.id == "high_dose_per_fraction_serial_organ"]
    assert "2.40 Gy per fraction" in flag.message
    # the prior course (50 Gy / 35 = 1.43 Gy) and 10 Gy / 5 = 2.0 Gy (not above 2) do not fire
    edge = organ("Brainstem", "D0.03cc", 2.0, 60.0, {"prior": 50.0, "new": 10.0})
    assert "high_dose_per_fraction_serial_organ" not in ids(ctx(courses=(PRIOR, SBRT), organs=(edge,)))
    parallel = organ("Parotid_L", "Dmax", 3.0, 60.0, {"prior": 50.0, "new": 30.0})
    assert "high_dose_per_fraction_serial_organ" not in ids(ctx(courses=(PRIOR, SBRT), organs=(parallel,)))


def test_stereotactic_schedule_flags():
    daily = dataclasses.replace(SBRT, schedule="daily")
    assert "stereotactic_consecutive_days" in ids(ctx(courses=(PRIOR, daily)))
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, SBRT)))  # alternate days
    assert "stereotactic_consecutive_days" not in ids(ctx())  # 2 Gy daily is not stereotactic
    unknown = dataclasses.replace(SBRT, schedule=None)
    assert "stereotactic_schedule_unknown" in ids(ctx(courses=(PRIOR, unknown)))
    # without a prescription the maximum dose per fraction decides: 4.9 Gy is below the 5 Gy convention
    no_rx = CourseInfo("new", 5, max_dose_per_fraction_gy=4.9, schedule="daily")
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, no_rx)))
    assert "stereotactic_consecutive_days" in ids(ctx(courses=(PRIOR, dataclasses.replace(no_rx, max_dose_per_fraction_gy=5.0))))


def test_bid_course_info():
    bid = CourseInfo("new", 54, prescription_gy=64.8, schedule="bid")
    assert "bid_interfraction_gap" in ids(ctx(courses=(PRIOR, bid)))


def test_outside_grid_once_per_structure_and_course():
    a = organ("SpinalCord", "Dmax", 2.0, 40.0, coverage={"prior": 0.95, "new": 1.0})
    b = dataclasses.replace(a, metric="D0.03cc")
    flags = [f for f in compute_flags(ctx(organs=(a, b))) if f.id == "organ_outside_dose_grid"]
    assert len(flags) == 1 and "5.0% of SpinalCord" in flags[0].message and "'prior'" in flags[0].message
    full = organ("SpinalCord", "Dmax", 2.0, 40.0, coverage={"prior": 0.999, "new": 1.0})
    assert "organ_outside_dose_grid" not in ids(ctx(organs=(full,)))


def test_fraction_override_and_missing_structures():
    overridden = dataclasses.replace(PRIOR, fraction_source="override")
    (flag,) = [f for f in compute_flags(ctx(courses=(overridden, CONVENTIONAL))) if f.id == "fractions_from_override"]
    assert "'prior'" in flag.message and "(35)" in flag.message
    matches = (
        OrganMatch("SpinalCord", "Cord", "matched"),
        OrganMatch("Brainstem", None, "missing", "no structure"),
        OrganMatch("Larynx", None, "ambiguous", "two"),
    )
    (flag,) = [f for f in compute_flags(ctx(matches=matches)) if f.id == "missing_structures"]
    assert flag.message.startswith("Organs not evaluated (2): Brainstem (missing") and "Larynx (ambiguous" in flag.message
    assert "missing_structures" not in ids(ctx(matches=matches[:1]))


def _doses(prior_gy, new_gy):
    prior = np.zeros((4, 5, 5))
    new = np.zeros((4, 5, 5))
    prior[:2] = prior_gy
    new[1:3] = new_gy
    return {"prior": prior, "new": new}


def test_reirradiation_type():
    # one overlapping slab of 25 voxels x 0.125 cm3 = 3.125 cm3 above 20 Gy in both courses
    type1 = compute_flags(ctx(physical_dose_gy=_doses(60.0, 30.0), voxel_volume_cc=0.125))
    (flag,) = [f for f in type1 if f.id == "reirradiation_type"]
    assert "type 1: 3.1 cm3" in flag.message and "convention" in flag.message
    # the new course gives only 19 Gy there: no overlap; a cumulative warning makes it type 2
    warned = (organ("SpinalCord", "Dmax", 2.0, 61.0, status="warn"),)
    type2 = compute_flags(ctx(physical_dose_gy=_doses(60.0, 19.0), voxel_volume_cc=0.125, organs=warned))
    (flag,) = [f for f in type2 if f.id == "reirradiation_type"]
    assert "type 2" in flag.message and "SpinalCord Dmax warn" in flag.message
    repeat = compute_flags(ctx(physical_dose_gy=_doses(60.0, 19.0), voxel_volume_cc=0.125))
    assert "repeat (organ) irradiation" in [f for f in repeat if f.id == "reirradiation_type"][0].message
    # 1 cm3 threshold: 8 voxels x 0.125 = 1.0 cm3 is not more than 1 cm3
    small = _doses(0.0, 0.0)
    small["prior"][1, :2, :4] = 60.0
    small["new"][1, :2, :4] = 30.0
    edge = compute_flags(ctx(physical_dose_gy=small, voxel_volume_cc=0.125))
    assert "type 1" not in [f for f in edge if f.id == "reirradiation_type"][0].message


@pytest.mark.parametrize(
    "months, resection, dysfunction, expected",
    [(30.0, True, None, "I"), (30.0, False, True, "II"), (24.0, True, False, "II"), (12.0, None, True, "III"),
     (30.0, None, True, None), (12.0, True, None, None), (None, True, True, None)],
)
def test_miri_class(months, resection, dysfunction, expected):
    flags = [f for f in compute_flags(ctx(interval_months=months, resection=resection, organ_dysfunction=dysfunction)) if f.id == "miri_class"]
    if expected is None:
        assert flags == []
    else:
        assert flags[0].message.startswith(f"MIRI prognostic class {expected} ") and "[S]" in flags[0].message
        assert flags[0].severity == "info"


def test_rules_file_problems_are_input_errors(tmp_path):
    bad = tmp_path / "flags.toml"
    bad.write_text(
        '[conventions]\nstereotactic_min_gy_per_fraction = 5.0\n[sources.a]\ncitation = "A."\n'
        '[[flags]]\nid = "x"\nkind = "interval"\nseverity = "high"\nsource = ["a"]\nmessage = "m"\nmitigation = "m"\n'
    )
    with pytest.raises(InputError, match="needs field"):
        load_flag_rules(bad)
    bad.write_text(bad.read_text().replace('source = ["a"]', 'source = ["b"]'))
    with pytest.raises(InputError, match="unknown source id"):
        load_flag_rules(bad)
