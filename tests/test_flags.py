"""Flags: each kind fires at its threshold and stays quiet below it."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from reirrad.case import ClinicalSpec, load_case
from reirrad.check import CheckOptions, run_check
from reirrad.errors import InputError
from reirrad.flags import CourseDose, CourseInfo, FlagContext, OrganResult, compute_flags, load_flag_rules
from reirrad.organs import OrganMatch
from tests import dicom_synthetic as syn

PRIOR = CourseInfo("prior", 35, prescription_gy=70.0)
CONVENTIONAL = CourseInfo("new", 30, prescription_gy=60.0, schedule="daily")
SBRT = CourseInfo("new", 5, prescription_gy=30.0, schedule="alternate_day")


def ids(ctx):
    return [f.id for f in compute_flags(ctx)]


def organ(name, metric, ab, cumulative, eqd2=None, physical=None, per_fraction=None, status="pass", coverage=None):
    """An organ result with each course's own EQD2, physical dose and dose per fraction (Gy)."""
    eqd2, physical, per_fraction = eqd2 or {}, physical or {}, per_fraction or {}
    per_course = {
        c: CourseDose(eqd2.get(c), physical.get(c), per_fraction.get(c)) for c in {**eqd2, **physical, **per_fraction}
    }
    return OrganResult(name, name + "_s", metric, ab, cumulative, status, per_course, coverage or {})


def fired(flag_id, context):
    return [f for f in compute_flags(context) if f.id == flag_id]


def ctx(**kw):
    base = {"courses": (PRIOR, CONVENTIONAL), "interval_months": 30.0}
    base.update(kw)
    return FlagContext(**base)


def test_quiet_case_raises_only_the_classifications():
    flags = compute_flags(ctx())
    assert [f.id for f in flags] == ["reirradiation_type", "miri_class"]
    assert "not assessed" in flags[0].message and "histology not given" in flags[1].message
    assert {f.severity for f in flags} == {"info"}


@pytest.mark.parametrize(
    "months, expected",
    [
        (0.0, ["interval_short"]),
        (5.99, ["interval_short"]),
        (6.0, ["interval_under_12_months"]),
        (11.99, ["interval_under_12_months"]),
        (12.0, []),
        (None, ["interval_unknown"]),
    ],
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
    # the rule reads each course's own EQD2(2) as evaluated (no conversion of its own)
    at_limit = organ("SpinalCord", "Dmax", 2.0, 60.0, eqd2={"prior": 49.0, "new": 11.0})
    assert "cord_single_course_high" not in ids(ctx(organs=(at_limit,)))
    above = organ("SpinalCord", "Dmax", 2.0, 60.0, eqd2={"prior": 52.0, "new": 8.0}, physical={"prior": 45.0})
    (flag,) = fired("cord_single_course_high", ctx(organs=(above,)))
    assert "'prior'" in flag.message and "52.0 Gy EQD2(2)" in flag.message
    # the rule is for alpha/beta 2: a cord result at alpha/beta 3 is not judged by it
    other_ab = organ("SpinalCord", "Dmax", 3.0, 60.0, eqd2={"prior": 60.0, "new": 10.0})
    assert "cord_single_course_high" not in ids(ctx(organs=(other_ab,)))


def test_sbrt_thecal_sac_course_limit_and_share():
    # course EQD2(2) 43.75 Gy > 25; share 43.75 / 80 = 0.55 > 0.5
    canal = organ("SpinalCanal", "Dmax", 2.0, 80.0, eqd2={"prior": 40.0, "new": 43.75})
    got = ids(ctx(courses=(PRIOR, SBRT), organs=(canal,)))
    assert "thecal_sac_sbrt_course_high" in got and "thecal_sac_sbrt_share_high" in got
    small = organ("SpinalCanal", "Dmax", 2.0, 80.0, eqd2={"prior": 40.0, "new": 14.06})
    got = ids(ctx(courses=(PRIOR, SBRT), organs=(small,)))
    assert "thecal_sac_sbrt_course_high" not in got and "thecal_sac_sbrt_share_high" not in got
    # a conventional new course is not an SBRT course; a ThecalSac structure is judged alike
    assert "thecal_sac_sbrt_course_high" not in ids(ctx(organs=(canal,)))
    sac = dataclasses.replace(canal, organ="ThecalSac")
    assert "thecal_sac_sbrt_course_high" in ids(ctx(courses=(PRIOR, SBRT), organs=(sac,)))


def test_dose_per_fraction_threshold_spares_conventional_hot_spots():
    # 2.06 Gy per fraction (a 70 Gy / 35 fx hot spot) and 2.5 Gy are quiet; 2.51 Gy fires
    for quiet in (2.06, 2.5):
        cord = organ("SpinalCord", "Dmax", 2.0, 50.0, per_fraction={"new": quiet})
        assert "dose_per_fraction_cord" not in ids(ctx(organs=(cord,)))
    cord = organ("SpinalCord", "Dmax", 2.0, 50.0, per_fraction={"new": 2.51})
    (flag,) = fired("dose_per_fraction_cord", ctx(organs=(cord,)))
    assert "2.51 Gy per fraction > 2.5 Gy" in flag.message and "tool convention" in flag.message
    # the prior course is not a re-irradiation course
    prior_only = organ("SpinalCord", "Dmax", 2.0, 50.0, per_fraction={"prior": 3.0})
    assert "dose_per_fraction_cord" not in ids(ctx(organs=(prior_only,)))
    parallel = organ("Parotid_L", "Dmax", 3.0, 60.0, per_fraction={"new": 6.0})
    assert not [i for i in ids(ctx(courses=(PRIOR, SBRT), organs=(parallel,))) if i.startswith("dose_per_fraction")]


def test_dose_per_fraction_once_per_organ_with_its_own_source():
    cord = (
        organ("SpinalCord", "Dmax", 2.0, 50.0, per_fraction={"new": 3.2}),
        organ("SpinalCord", "D0.03cc", 2.0, 49.0, per_fraction={"new": 3.0}),
    )
    stem = organ("Brainstem", "D0.03cc", 2.0, 40.0, per_fraction={"new": 2.8})
    carotid = organ("A_Carotid_L", "Dmax", 3.0, 90.0, per_fraction={"new": 7.0})
    flags = [
        f
        for f in compute_flags(ctx(courses=(PRIOR, SBRT), organs=(*cord, stem, carotid)))
        if f.id.startswith("dose_per_fraction")
    ]
    assert [(f.id, f.message.split(" gives ")[1].split(" (")[0]) for f in flags] == [
        ("dose_per_fraction_cord", "SpinalCord"),
        ("dose_per_fraction_brainstem", "Brainstem"),
        ("dose_per_fraction_serial_organ", "A_Carotid_L"),
    ]
    assert "Dmax 3.20 Gy per fraction" in flags[0].message  # the hotter of the cord's two metrics
    assert "Kirkpatrick" in flags[0].source and "McDonald" not in flags[0].source
    assert "Mayo" in flags[1].source and "McDonald" not in flags[1].source
    assert "Yazici" not in flags[2].source and "reirrad tool convention" in flags[2].source


def carotid(side, gy, course="new"):
    return organ(f"A_Carotid_{side}", "Dmax", 3.0, 100.0, physical={course: gy} if gy is not None else {})


def test_stereotactic_schedule_flags_need_carotid_dose_in_that_course():
    daily = dataclasses.replace(SBRT, schedule="daily")
    near = (carotid("L", 20.0), carotid("R", 3.0))
    (flag,) = fired("stereotactic_consecutive_days", ctx(courses=(PRIOR, daily), organs=near))
    assert "A_Carotid_L (A_Carotid_L_s) Dmax 20.0 Gy" in flag.message and "A_Carotid_R" not in flag.message
    assert flag.severity == "high" and "Yazici" in flag.source
    # both carotids below 17 Gy in the stereotactic course: no carotid near the target, quiet
    far = (carotid("L", 16.9), carotid("R", 3.0))
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, daily), organs=far))
    # the prior course's carotid dose does not count
    prior_hot = (carotid("L", 60.0, "prior"), carotid("R", 60.0, "prior"))
    prior_hot = tuple(
        dataclasses.replace(r, per_course={**r.per_course, "new": CourseDose(physical_gy=2.0)}) for r in prior_hot
    )
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, daily), organs=prior_hot))
    # a carotid whose dose is not known (not evaluated, or no carotid at all) does not keep it quiet
    (flag,) = fired(
        "stereotactic_consecutive_days", ctx(courses=(PRIOR, daily), organs=(carotid("L", 3.0), carotid("R", None)))
    )
    assert "not known for A_Carotid_R" in flag.message
    assert (
        "not known (no A_Carotid result)"
        in fired("stereotactic_consecutive_days", ctx(courses=(PRIOR, daily)))[0].message
    )
    # alternate days, and 2 Gy daily (not stereotactic), are quiet
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, SBRT), organs=near))
    assert "stereotactic_consecutive_days" not in ids(ctx(organs=near))
    unknown = dataclasses.replace(SBRT, schedule=None)
    assert "stereotactic_schedule_unknown" in ids(ctx(courses=(PRIOR, unknown), organs=near))
    assert "stereotactic_schedule_unknown" not in ids(ctx(courses=(PRIOR, unknown), organs=far))
    # without a prescription the maximum dose per fraction decides: 4.9 Gy is below the 5 Gy convention
    no_rx = CourseInfo("new", 5, max_dose_per_fraction_gy=4.9, schedule="daily")
    assert "stereotactic_consecutive_days" not in ids(ctx(courses=(PRIOR, no_rx), organs=near))
    at_five = dataclasses.replace(no_rx, max_dose_per_fraction_gy=5.0)
    assert "stereotactic_consecutive_days" in ids(ctx(courses=(PRIOR, at_five), organs=near))


def test_carotid_physical_dose_of_the_stereotactic_course_yazici():
    hot = (carotid("L", 34.0), carotid("R", 33.9))
    (flag,) = fired("carotid_sbrt_course_dose", ctx(courses=(PRIOR, SBRT), organs=hot))
    assert flag.severity == "caution" and "A_Carotid_L" in flag.message and "34.0 Gy physical" in flag.message
    assert "p = 0.15" in flag.message and "10.1186/1748-717X-8-242" in flag.source
    # a conventional course is not judged by it, nor the prior course's dose
    assert "carotid_sbrt_course_dose" not in ids(ctx(organs=hot))
    assert "carotid_sbrt_course_dose" not in ids(ctx(courses=(PRIOR, SBRT), organs=(carotid("L", 60.0, "prior"),)))


def test_carotid_invasion_over_180_degrees():
    def invasion(deg):
        return ctx(clinical=ClinicalSpec(carotid_invasion_deg=deg))

    (flag,) = fired("carotid_invasion", invasion(181.0))
    assert flag.severity == "high" and "12/50" in flag.message and "Radiother Oncol 2015;115:67-71" in flag.source
    assert "Yamazaki 2013" in flag.mitigation
    assert fired("carotid_invasion", invasion(180.0)) == [] and fired("carotid_invasion", invasion(None)) == []


def test_carotid_blowout_mitigation_cites_yamazaki_beside_embring():
    (flag,) = fired("carotid_blowout_risk", ctx(organs=(organ("A_Carotid_L", "Dmax", 3.0, 125.0),)))
    assert "Embring 2021" in flag.mitigation and "Yamazaki 2015" in flag.mitigation
    assert "Yamazaki 2013" in flag.mitigation and "predict" not in flag.mitigation.split("Yamazaki 2013")[0][-80:]
    assert "10.3390/cancers13133173" in flag.source and "Radiother Oncol 2015;115:67-71" in flag.source


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
    overridden = dataclasses.replace(PRIOR, fraction_source="override", plan_fractions=30)
    (flag,) = [f for f in compute_flags(ctx(courses=(overridden, CONVENTIONAL))) if f.id == "fractions_from_override"]
    assert "'prior'" in flag.message and "35 fractions" in flag.message and "the plan says 30" in flag.message
    matches = (
        OrganMatch("SpinalCord", "Cord", "matched"),
        OrganMatch("Brainstem", None, "missing", "no structure"),
        OrganMatch("Larynx", None, "ambiguous", "two"),
    )
    (flag,) = [f for f in compute_flags(ctx(matches=matches)) if f.id == "missing_structures"]
    assert (
        flag.message.startswith("Organs not evaluated (2): Brainstem (missing") and "Larynx (ambiguous" in flag.message
    )
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
    assert "type 2" in flag.message and "SpinalCord (cumulative Dmax warn)" in flag.message
    repeat = compute_flags(ctx(physical_dose_gy=_doses(60.0, 19.0), voxel_volume_cc=0.125))
    assert "repeat (organ) irradiation" in next(f for f in repeat if f.id == "reirradiation_type").message
    # 1 cm3 threshold: 8 voxels x 0.125 = 1.0 cm3 is not more than 1 cm3
    small = _doses(0.0, 0.0)
    small["prior"][1, :2, :4] = 60.0
    small["new"][1, :2, :4] = 30.0
    edge = compute_flags(ctx(physical_dose_gy=small, voxel_volume_cc=0.125))
    assert "type 1" not in next(f for f in edge if f.id == "reirradiation_type").message


def test_reirradiation_type_counts_report_only_organs_dosed_in_both_courses():
    no_overlap = {"physical_dose_gy": _doses(60.0, 19.0), "voxel_volume_cc": 0.125}
    # a report-only brainstem (no limit, so no warn) with 45 Gy EQD2 before and 12 Gy now: type 2
    stem = organ("Brainstem", "D0.03cc", 2.0, 57.0, eqd2={"prior": 45.0, "new": 12.0}, status="report")
    chiasm = organ("OpticChiasm", "D0.03cc", 2.0, 50.0, eqd2={"prior": 45.0, "new": 5.0}, status="report")
    (flag,) = fired("reirradiation_type", ctx(organs=(stem, chiasm), **no_overlap))
    assert "type 2" in flag.message
    assert "Brainstem (D0.03cc EQD2(2) 45.0 Gy in 'prior' and 12.0 Gy in 'new')" in flag.message
    assert "OpticChiasm" not in flag.message  # 5 Gy in the new course is below the 10 Gy convention
    assert ">= 10 Gy EQD2" in flag.message and load_flag_rules().conventions.meaningful_course_dose_gy == 10.0
    # one entry per organ, its metrics' reasons together
    twice = (stem, dataclasses.replace(stem, metric="Dmax", status="warn"))
    (flag,) = fired("reirradiation_type", ctx(organs=twice, **no_overlap))
    assert flag.message.count("Brainstem") == 1 and "cumulative Dmax warn" in flag.message
    # below the convention in one course: repeat irradiation
    low = organ("Brainstem", "D0.03cc", 2.0, 50.0, eqd2={"prior": 45.0, "new": 9.99}, status="report")
    assert "repeat (organ) irradiation" in fired("reirradiation_type", ctx(organs=(low,), **no_overlap))[0].message
    # without the courses on one grid (conservative mode) the organs are still named
    (flag,) = fired("reirradiation_type", ctx(organs=(stem,)))
    assert "not assessed" in flag.message and "Brainstem (D0.03cc" in flag.message


SCC = ClinicalSpec(histology="squamous_cell_carcinoma")


@pytest.mark.parametrize(
    "months, resection, dysfunction, expected",
    [(30.0, True, None, "I"), (30.0, False, True, "II"), (24.0, True, False, "II"), (12.0, None, True, "III")],
)
def test_miri_class(months, resection, dysfunction, expected):
    clinical = dataclasses.replace(SCC, resection=resection, organ_dysfunction=dysfunction)
    (flag,) = fired("miri_class", ctx(interval_months=months, clinical=clinical))
    assert flag.message.startswith(f"MIRI prognostic class {expected} ") and "[S]" in flag.message
    assert flag.severity == "info" and "IMRT" in flag.message


@pytest.mark.parametrize(
    "clinical, courses, months, reason",
    [
        (ClinicalSpec(resection=True), None, 30.0, "histology not given"),
        (ClinicalSpec(histology="other", resection=True), None, 30.0, "histology is 'other'"),
        (dataclasses.replace(SCC, resection=True), (PRIOR, SBRT), 30.0, "course 'new' is stereotactic, not IMRT"),
        (
            dataclasses.replace(SCC, resection=True),
            (PRIOR, CourseInfo("new", 20, prescription_gy=36.0)),
            30.0,
            "course 'new' prescribes 36 Gy < 40 Gy",
        ),
        (
            dataclasses.replace(SCC, resection=True),
            (CourseInfo("prior", 15, prescription_gy=30.0), CONVENTIONAL),
            30.0,
            "prior prescription 30 Gy < 40 Gy",
        ),
        (dataclasses.replace(SCC, organ_dysfunction=True), None, 30.0, "[clinical] resection not given"),
        (dataclasses.replace(SCC, resection=True), None, None, "interval not known"),
    ],
)
def test_miri_class_says_when_it_does_not_apply(clinical, courses, months, reason):
    context = ctx(interval_months=months, clinical=clinical, **({"courses": courses} if courses else {}))
    (flag,) = fired("miri_class", context)
    assert flag.message.startswith("MIRI prognostic class not given: ") and reason in flag.message
    assert "squamous cell carcinoma re-irradiated with IMRT >= 40 Gy" in flag.message


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
    bad.write_text(bad.read_text().replace('source = ["b"]', 'source = ["a"]\nfrom_months = 0\nbelow_months = 6'))
    with pytest.raises(InputError, match="meaningful_course_dose_eqd2_gy"):
        load_flag_rules(bad)


def test_rules_file_lists_every_problem(tmp_path):
    """One error names the file and lists each problem, not only the first one found."""
    bad = tmp_path / "flags.toml"
    bad.write_text(
        '[conventions]\nstereotactic_min_gy_per_fraction = "five"\n[sources.a]\ncitation = "A."\n'
        '[[flags]]\nid = "x"\nkind = "nope"\nseverity = "high"\nsource = ["b"]\nmessage = "m"\nmitigation = "m"\n'
        '[[flags]]\nid = "y"\nkind = "interval"\nseverity = "loud"\nsource = ["a"]\nmessage = "m"\n'
    )
    with pytest.raises(InputError) as info:
        load_flag_rules(bad)
    text = str(info.value)
    assert text.startswith(f"{bad}: invalid flag rules: ")
    for fragment in (
        "stereotactic_min_gy_per_fraction",
        "meaningful_course_dose_eqd2_gy",
        "unknown kind 'nope'",
        "unknown source id(s) b",
        "flags[1] (id=y): missing field(s) mitigation",
        "not one of high",
    ):
        assert fragment in text


# ------------------------------------------------------------------ end to end: flags read the verdicts' EQD2

CUBE = [[(-4.0, -4.0, z), (4.0, -4.0, z), (4.0, 4.0, z), (-4.0, 4.0, z)] for z in np.arange(-4.0, 4.5, 2.0)]


def _course_folder(folder, phases):
    """One course: a cord cube and, per phase (Gy, fractions), a plan with a uniform PLAN dose."""
    structures = syn.rtstruct({"SpinalCord": CUBE})
    syn.write(structures, folder / "rs.dcm")
    for i, (gy, fractions) in enumerate(phases):
        plan = syn.rtplan(
            [(fractions, [(1, gy / fractions, 100.0)])], prescription_gy=gy, structure_set_uid=structures.SOPInstanceUID
        )
        pixels = np.full((9, 9, 9), round(gy / 1e-3), dtype=np.uint32)
        dose = syn.rtdose(
            pixels,
            ipp=(-8.0, -8.0, -8.0),
            offsets=np.arange(9) * 2.0,
            pixel_spacing=(2.0, 2.0),
            plan_uid=plan.SOPInstanceUID,
        )
        syn.write(plan, folder / f"rp{i}.dcm")
        syn.write(dose, folder / f"rd{i}.dcm")


def _two_course_case(root, prior_phases, new_phases):
    _course_folder(root / "prior", prior_phases)
    _course_folder(root / "new", new_phases)
    path = root / "case.toml"
    path.write_text(
        'id = "phases"\n[[courses]]\nname = "prior"\npath = "prior"\nend_date = 2020-01-06\n'
        '[[courses]]\nname = "new"\npath = "new"\nstart_date = 2022-03-07\n'
    )
    return load_case(path)


def _cord_course_eqd2(report) -> float | None:
    """The value the single-course cord flag read for course 'new' (None: the flag is quiet)."""
    flags = [f for f in report.flags if f.id == "cord_single_course_high" and "'new'" in f.message]
    return float(re.search(r"Dmax ([\d.]+) Gy EQD2\(2\)", flags[0].message).group(1)) if flags else None


@pytest.mark.parametrize("conservative", [False, True], ids=["registered", "conservative"])
@pytest.mark.parametrize(
    "new_phases, expected_gy",
    [
        # 50 Gy/25 fx + 20 Gy/5 fx at alpha/beta 2: 50 + 20 (4 + 2)/4 = 80.0 Gy (lumped 70 Gy/30 fx: 75.8)
        (((50.0, 25), (20.0, 5)), 80.0),
        # 30 Gy/25 fx + 15 Gy/3 fx: 30 (1.2 + 2)/4 + 15 (5 + 2)/4 = 24 + 26.25 = 50.25 Gy > 49
        # (lumped 45 Gy/28 fx: 40.6 Gy, which kept Nieder's single-course flag quiet)
        (((30.0, 25), (15.0, 3)), 50.25),
    ],
    ids=["50/25+20/5", "30/25+15/3"],
)
def test_flags_read_each_phase_with_its_own_fractions(tmp_path, new_phases, expected_gy, conservative):
    case = _two_course_case(tmp_path, [(10.0, 5)], new_phases)
    report = run_check(case, CheckOptions(conservative=conservative))
    cord = next(r for r in report.results if r.constraint_id == "spinalcord-dmax")
    # the verdict: prior 10 Gy / 5 fx = 10 Gy EQD2(2), plus the new course
    assert cord.value_gy == pytest.approx(10.0 + expected_gy, rel=1e-6)
    assert cord.per_course["new"] == pytest.approx(expected_gy, rel=1e-6)
    assert _cord_course_eqd2(report) == pytest.approx(expected_gy, abs=0.05)


def test_dose_per_fraction_is_per_phase(tmp_path):
    # 15 Gy in 3 fractions is 5 Gy per fraction to the cord, although 45 Gy / 28 fx is 1.6 Gy
    report = run_check(_two_course_case(tmp_path, [(10.0, 5)], [(30.0, 25), (15.0, 3)]))
    (flag,) = [f for f in report.flags if f.id == "dose_per_fraction_cord"]
    assert "SpinalCord (SpinalCord) Dmax 5.00 Gy per fraction" in flag.message
    # the 5 Gy-per-fraction phase makes the course stereotactic (schedule not given, carotid unknown)
    (flag,) = [f for f in report.flags if f.id == "stereotactic_schedule_unknown"]
    assert "(5.0 Gy per fraction)" in flag.message and "not known for A_Carotid_L, A_Carotid_R" in flag.message


def _case_with_clinical(tmp_path, clinical: str):
    (tmp_path / "c1").mkdir(exist_ok=True)
    path = tmp_path / "case.toml"
    path.write_text(f'id = "x"\n[[courses]]\nname = "c"\npath = "c1"\n[clinical]\n{clinical}\n')
    return path


def test_clinical_histology_and_carotid_invasion_in_the_case_file(tmp_path):
    case = load_case(_case_with_clinical(tmp_path, 'histology = "squamous_cell_carcinoma"\ncarotid_invasion_deg = 200'))
    assert (case.clinical.histology, case.clinical.carotid_invasion_deg) == ("squamous_cell_carcinoma", 200.0)
    for bad, message in (
        ('histology = "SCC"', "clinical.histology: must be one of squamous_cell_carcinoma, other"),
        ("carotid_invasion_deg = 400", "clinical.carotid_invasion_deg: must be a number of degrees"),
        ("carotid_invasion_deg = true", "clinical.carotid_invasion_deg: must be a number of degrees"),
    ):
        with pytest.raises(InputError, match=message):
            load_case(_case_with_clinical(tmp_path, bad))


# ------------------------------------------------------------------ constraint-set content behind the flags


def test_hn_set_brachial_plexus_warns_at_95_gy_and_never_fails():
    from reirrad.constraints import judge, load_constraint_set

    plexus = [c for c in load_constraint_set("hn-reirradiation").constraints if c.group == "BrachialPlex"]
    assert [c.organ for c in plexus] == ["BrachialPlex_L", "BrachialPlex_R"]
    for c in plexus:
        assert (c.metric, c.warn_gy, c.limit_gy, c.priority) == ("Dmax", 95.0, None, "soft")
        assert (judge(c, 94.99), judge(c, 95.0), judge(c, 200.0)) == ("pass", "warn", "warn")
        assert "Chen AM" in c.source and "does not say whether 95.0 Gy is EQD2 or physical" in c.note


def test_hn_set_texts_follow_their_sources():
    from reirrad.constraints import load_constraint_set

    by_id = {c.id: c for c in load_constraint_set("hn-reirradiation").constraints}
    # Doi 2021 reports D0.1cc, not D0.03cc
    assert by_id["spinalcord-d0.1cc"].metric == "D0.1cc" and "spinalcord-d0.03cc" not in by_id
    # no treatment named without a source
    mandible = by_id["mandible-dmax"].mitigation.lower()
    assert "hyperbaric" not in mandible and "pentoxifylline" not in mandible
    carotid = by_id["carotid-dmax[A_Carotid_L]"].mitigation
    assert "Embring 2021" in carotid and "Radiother Oncol 2015;115:67-71" in carotid and "2013;107:305-309" in carotid
