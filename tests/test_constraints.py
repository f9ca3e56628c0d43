"""Constraint sets: loading, extends/override provenance, validation messages, verdict boundaries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reirrad.constraints import (
    available_sets,
    judge,
    load_constraint_set,
    validate_constraint_file,
)
from reirrad.errors import InputError

HN = "hn-reirradiation"


def by_id(constraint_set, cid):
    return next(c for c in constraint_set.constraints if c.id == cid)


def write(tmp_path: Path, text: str, name: str = "inst.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_sets_listed_and_valid():
    assert {"hn-reirradiation", "sbrt-spine-reirradiation"} <= set(available_sets())
    assert "organs" not in available_sets() and "flags" not in available_sets()
    for name in available_sets():
        assert validate_constraint_file(Path(load_constraint_set(name).path)) == []


def test_default_set_cord_limit_is_nieder_bed_converted():
    cord = by_id(load_constraint_set(HN), "spinalcord-dmax")
    # 135.5 Gy2 and 120 Gy2 BED at alpha/beta 2: EQD2 = BED / (1 + 2/2)
    assert cord.limit_gy == pytest.approx(135.5 / 2) and cord.warn_gy == pytest.approx(120 / 2)
    assert cord.alpha_beta_gy == 2.0 and cord.priority == "hard"
    assert "1446-1449" in cord.source and "17084560" in cord.source


def test_groups_expand_per_side_and_report_only_entries_have_no_limit():
    loaded = load_constraint_set(HN)
    carotids = [c for c in loaded.constraints if c.group == "A_Carotid"]
    assert [c.organ for c in carotids] == ["A_Carotid_L", "A_Carotid_R"]
    assert [c.id for c in carotids] == ["carotid-dmax[A_Carotid_L]", "carotid-dmax[A_Carotid_R]"]
    assert all(c.limit_gy == 119.0 and c.alpha_beta_gy == 3.0 and "Dale" in c.alpha_beta_source for c in carotids)
    brainstem = by_id(loaded, "brainstem-d0.03cc")
    assert brainstem.report_only and judge(brainstem, 80.0) == "report"
    assert loaded.recovery_model == "none"
    # every limit or warning level carries a citation with a DOI or PMID (else the abstract's address)
    for c in loaded.constraints:
        if not c.report_only:
            assert "doi:" in c.source or "PMID" in c.source or "https://" in c.source


@pytest.mark.parametrize(
    "value, expected",
    [(None, "not_evaluated"), (0.0, "pass"), (59.99, "pass"), (60.0, "warn"), (67.75, "warn"), (67.76, "fail")],
)
def test_judge_boundaries(value, expected):
    cord = by_id(load_constraint_set(HN), "spinalcord-dmax")
    assert judge(cord, value) == expected


def test_judge_warn_only_and_limit_only():
    temporal = by_id(load_constraint_set(HN), "temporal-lobe-d1.5cc[Lobe_Temporal_L]")
    assert temporal.limit_gy is None
    assert [judge(temporal, v) for v in (65.25, 65.26, 200.0)] == ["pass", "warn", "warn"]
    thecal = by_id(load_constraint_set("sbrt-spine-reirradiation"), "thecal-sac-pmax")
    assert [judge(thecal, v) for v in (70.0, 70.001)] == ["pass", "fail"]
    no_warn = dataclasses.replace(thecal, warn=None)
    assert judge(no_warn, 69.0) == "pass"


INSTITUTIONAL = """
name = "inst"
version = "2"
title = "Institutional"
extends = "hn-reirradiation"
[sources.local]
citation = "Local protocol 7, 2024."
[[constraints]]
id = "spinalcord-dmax"
organ = "SpinalCord"
metric = "D0.03cc"
priority = "hard"
limit_gy = 50.0
warn_gy = 45.0
alpha_beta_gy = 2.0
source = "local"
[[constraints]]
id = "brainstem-inst"
organ = "Brainstem"
metric = "D0.03cc"
priority = "hard"
limit_gy = 64.0
source = "local"
"""


def test_extends_overrides_by_id_and_records_provenance(tmp_path):
    loaded = load_constraint_set(write(tmp_path, INSTITUTIONAL))
    base = load_constraint_set(HN)
    assert loaded.lineage == ("hn-reirradiation", "inst")
    cord = by_id(loaded, "spinalcord-dmax")
    assert (cord.limit_gy, cord.warn_gy, cord.metric, cord.set_name) == (50.0, 45.0, "D0.03cc", "inst")
    assert cord.source == "Local protocol 7, 2024."
    assert cord.set_path == tmp_path / "inst.toml"
    carotid = by_id(loaded, "carotid-dmax[A_Carotid_L]")
    assert carotid.set_name == HN and carotid.set_path.name == "hn-reirradiation.toml"
    brainstem = by_id(loaded, "brainstem-inst")
    assert brainstem.alpha_beta_gy == 2.0 and brainstem.set_name == "inst"  # default alpha/beta of the parent
    assert len(loaded.constraints) == len(base.constraints) + 1
    assert next(c.id for c in loaded.constraints) == "spinalcord-dmax"  # replaced in place
    assert "nieder2006" in loaded.sources and "local" in loaded.sources


def test_extends_by_relative_path(tmp_path):
    write(tmp_path, INSTITUTIONAL)
    child = write(tmp_path, 'name = "child"\nversion = "1"\ntitle = "c"\nextends = "inst.toml"\n', "child.toml")
    loaded = load_constraint_set(child)
    assert loaded.lineage == ("hn-reirradiation", "inst", "child")
    assert by_id(loaded, "spinalcord-dmax").set_name == "inst"


BROKEN = """
name = "broken"
version = "1"
title = "Broken"
[sources.a]
citation = "A."
[defaults]
[[defaults.alpha_beta]]
organs = ["*"]
gy = 3.0
source = "a"
[[constraints]]
id = "bad-metric"
organ = "SpinalCord"
metric = "D95"
priority = "hard"
limit_gy = 50.0
source = "a"
[[constraints]]
id = "no-priority"
organ = "SpinalCord"
metric = "Dmax"
limit_gy = 50.0
source = "a"
[[constraints]]
id = "bad-source"
organ = "Larynx"
metric = "Dmean"
priority = "soft"
limit_gy = 40.0
source = "nobody"
[[constraints]]
id = "no-level"
organ = "Larynx"
metric = "Dmax"
priority = "hard"
source = "a"
[[constraints]]
id = "warn-above-limit"
organ = "Larynx"
metric = "Dmax"
priority = "hard"
limit_gy = 40.0
warn_gy = 45.0
limit_Gy = 3
source = "a"
"""


def test_validation_lists_every_problem_with_file_entry_and_field(tmp_path):
    path = write(tmp_path, BROKEN)
    problems = validate_constraint_file(path)
    assert all(p.startswith(str(path.resolve())) for p in problems)
    joined = "\n".join(problems)
    assert "constraints[0] (id=bad-metric): field 'metric': unknown DVH metric 'D95'" in joined
    assert "constraints[1] (id=no-priority): field 'priority': missing" in joined
    assert "constraints[2] (id=bad-source): field 'source': unknown source id 'nobody'" in joined
    assert "constraints[3] (id=no-level): field 'limit_gy': missing" in joined
    assert "constraints[4] (id=warn-above-limit): field 'warn_gy': above limit_gy" in joined
    assert "constraints[4] (id=warn-above-limit): field 'limit_Gy': unknown field" in joined
    assert len(problems) == 6
    with pytest.raises(InputError) as err:
        load_constraint_set(path)
    assert "bad-metric" in str(err.value) and str(path.resolve()) in str(err.value)


def test_unknown_extends_and_cycles(tmp_path):
    path = write(tmp_path, 'name = "x"\nversion = "1"\ntitle = "x"\nextends = "no-such-set"\n')
    (problem,) = validate_constraint_file(path)
    assert "field 'extends': unknown set 'no-such-set'" in problem
    a = write(tmp_path, 'name = "a"\nversion = "1"\ntitle = "a"\nextends = "b.toml"\n', "a.toml")
    write(tmp_path, 'name = "b"\nversion = "1"\ntitle = "b"\nextends = "a.toml"\n', "b.toml")
    assert any("cycle" in p for p in validate_constraint_file(a))


def test_volume_metric_gy_levels_and_missing_alpha_beta_are_refused(tmp_path):
    text = """
name = "v"
version = "1"
title = "v"
[sources.a]
citation = "A."
[[constraints]]
id = "v50"
organ = "Larynx"
metric = "V50Gy"
priority = "hard"
limit_gy = 5.0
source = "a"
[[constraints]]
id = "v50-report"
organ = "Larynx"
metric = "V50Gy"
priority = "report"
"""
    problems = validate_constraint_file(write(tmp_path, text))
    assert any("(id=v50): field 'limit_gy': V50Gy gives cc: its levels are limit_cc / warn_cc" in p for p in problems)
    assert any("(id=v50-report): field 'alpha_beta_gy': missing" in p for p in problems)


def test_unknown_name_or_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no built-in set named"):
        load_constraint_set("nonexistent")
    assert validate_constraint_file(tmp_path / "absent.toml") == [f"{tmp_path / 'absent.toml'}: file: not found"]


def test_spine_set_limits_the_thecal_sac_and_takes_a_spinal_canal_only_when_mapped():
    """Sahgal's limit is on the thecal sac; TG-263 lists SpinalCanal as another structure."""
    from reirrad.organs import match_organs

    spine = load_constraint_set("sbrt-spine-reirradiation")
    organs = [c.organ for c in spine.constraints]
    assert by_id(spine, "thecal-sac-pmax").organ == "ThecalSac"
    assert by_id(spine, "thecal-sac-pmax").alpha_beta_gy == 2.0
    assert match_organs(["Thecal Sac", "Cord"], organs)["ThecalSac"].structure == "Thecal Sac"
    assert match_organs(["SpinalCanal", "Cord"], organs)["ThecalSac"].structure is None
    mapped = match_organs(["SpinalCanal", "Cord"], organs, {"SpinalCanal": "ThecalSac"})
    assert mapped["ThecalSac"].structure == "SpinalCanal"


VALID = """
name = "small"
version = "1"
title = "Small"
[sources.a]
citation = "A. Journal 2020."
doi = "10.1/a"
[defaults]
recovery_model = "none"
[[defaults.alpha_beta]]
organs = ["*"]
gy = 3.0
source = "a"
[[constraints]]
id = "cord"
organ = "SpinalCord"
metric = "Dmax"
priority = "hard"
limit_gy = 50.0
warn_gy = 45.0
alpha_beta_gy = 2.0
alpha_beta_source = "a"
source = "a"
"""


AB_ROW = '[[defaults.alpha_beta]]\norgans = ["*"]\ngy = 3.0\nsource = "a"\n'


def test_small_valid_set_loads(tmp_path):
    (cord,) = load_constraint_set(write(tmp_path, VALID)).constraints
    assert (cord.limit_gy, cord.warn_gy, cord.alpha_beta_gy, cord.source) == (
        50.0,
        45.0,
        2.0,
        "A. Journal 2020. doi:10.1/a.",
    )


def _problems(tmp_path, text):
    path = write(tmp_path, text)
    problems = validate_constraint_file(path)
    assert problems and all(p.startswith(f"{path.resolve()}: ") and "\n" not in p for p in problems)
    with pytest.raises(InputError) as err:
        load_constraint_set(path)
    assert "\n" not in str(err.value)
    return "\n".join(problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("[sources.a]", "sources = 3\n[other]"), "set: field 'sources': must be a table, got 3"),
        (
            (
                ('title = "Small"', 'title = "Small"\ndefaults = "q"'),
                ('[defaults]\nrecovery_model = "none"\n' + AB_ROW, ""),
            ),
            "set: field 'defaults': must be a table, got 'q'",
        ),
        (('[sources.a]\ncitation = "A. Journal 2020."', "[sources]\na = 3"), "sources.a: field 'citation': missing"),
        (('citation = "A. Journal 2020."', "citation = 3"), "sources.a: field 'citation': missing"),
        (('doi = "10.1/a"', "doi = [1]"), "sources.a: field 'doi': must be text, got [1]"),
        (('doi = "10.1/a"', "pmid = 1.5"), "sources.a: field 'pmid': must be text or a whole number"),
        (('recovery_model = "none"', 'recovery_model = ["none"]'), "defaults: field 'recovery_model': must be text"),
        (('recovery_model = "none"', 'recovery_model = "magic"'), "unknown recovery model 'magic'"),
        ((AB_ROW, "alpha_beta = 3\n"), "defaults: field 'alpha_beta': must be an array of tables"),
        ((AB_ROW, "alpha_beta = [3]\n"), "defaults.alpha_beta[0]: must be a table ([[defaults.alpha_beta]]), got 3"),
        (
            ('organs = ["*"]', "organs = [[1]]"),
            "defaults.alpha_beta[0]: field 'organs': missing: list the organs as texts",
        ),
        (("gy = 3.0", 'gy = "3"'), "defaults.alpha_beta[0]: field 'gy': must be a number of Gy from 0.5 to 25"),
        (("gy = 3.0", "gy = 1e9"), "defaults.alpha_beta[0]: field 'gy': must be a number of Gy from 0.5 to 25"),
        (("gy = 3.0", "gy = 1e-9"), "defaults.alpha_beta[0]: field 'gy': must be a number of Gy from 0.5 to 25"),
        (
            ('source = "a"\n[[constraints]]', "source = 3\n[[constraints]]"),
            "defaults.alpha_beta[0]: field 'source': missing",
        ),
        (
            ('source = "a"\n[[constraints]]', 'source = "a"\nsoruce = "a"\n[[constraints]]'),
            "defaults.alpha_beta[0]: field 'soruce': unknown field",
        ),
        (('title = "Small"', 'title = "Small"\nextends = ["hn-reirradiation"]'), "set: field 'extends': must be text"),
        (('\nsource = "a"\n', '\nsource = ["a"]\n'), "(id=cord): field 'source': unknown source id ['a']"),
        (('alpha_beta_source = "a"', "alpha_beta_source = {x = 1}"), "field 'alpha_beta_source': unknown source id"),
        (("limit_gy = 50.0", 'limit_gy = "50"'), "(id=cord): field 'limit_gy': must be a finite number > 0"),
        (("limit_gy = 50.0", "limit_gy = nan"), "(id=cord): field 'limit_gy': must be a finite number > 0, got nan"),
        (("limit_gy = 50.0", "limit_gy = inf"), "(id=cord): field 'limit_gy': must be a finite number > 0"),
        (("limit_gy = 50.0", "limit_gy = 0"), "(id=cord): field 'limit_gy': must be a finite number > 0"),
        (("warn_gy = 45.0", "warn_gy = -1.0"), "(id=cord): field 'warn_gy': must be a finite number > 0"),
        (("warn_gy = 45.0", "warn_gy = 55.0"), "(id=cord): field 'warn_gy': above limit_gy"),
        (
            ("alpha_beta_gy = 2.0", "alpha_beta_gy = 1e9"),
            "(id=cord): field 'alpha_beta_gy': must be a number of Gy from 0.5",
        ),
        (
            ("alpha_beta_gy = 2.0", "alpha_beta_gy = 0"),
            "(id=cord): field 'alpha_beta_gy': must be a number of Gy from 0.5",
        ),
        (
            ("alpha_beta_gy = 2.0", "alpha_beta_gy = 1e-9"),
            "(id=cord): field 'alpha_beta_gy': must be a number of Gy from 0.5",
        ),
        (('metric = "Dmax"', 'metric = "Dfoo"'), "(id=cord): field 'metric': unknown DVH metric 'Dfoo'"),
        (('metric = "Dmax"', "metric = 3"), "(id=cord): field 'metric': missing"),
        (('id = "cord"', 'id = "cord\\n"'), "(id='cord\\n'): field 'id': use lower-case letters"),
        (('name = "small"', "name = 3"), "set: field 'name': missing: give a non-empty text"),
        (("[[constraints]]", "[[constraint]]"), "set: field 'constraint': unknown field"),
    ],
)
def test_wrong_values_are_listed_never_raised(tmp_path, change, expected):
    text = VALID
    for old, new in change if isinstance(change[0], tuple) else (change,):
        assert old in text
        text = text.replace(old, new)
    assert expected in _problems(tmp_path, text)


def test_empty_set_is_refused(tmp_path):
    header = 'name = "e"\nversion = "1"\ntitle = "e"\n'
    for text in (header, header + "constraints = []\n"):
        assert "set: field 'constraints': no constraint (none given, or none valid)" in _problems(tmp_path, text)


def test_extends_chain_is_bounded(tmp_path):
    for i in range(1200):
        parent = f'extends = "s{i + 1}.toml"\n' if i < 1199 else ""
        write(tmp_path, f'name = "s{i}"\nversion = "1"\ntitle = "s"\n{parent}', f"s{i}.toml")
    problems = validate_constraint_file(tmp_path / "s0.toml")
    assert problems == [f"{tmp_path / 's15.toml'}: set: field 'extends': the extends chain is longer than 16 sets"]
    with pytest.raises(InputError, match="longer than 16 sets"):
        load_constraint_set(tmp_path / "s0.toml")


def test_extends_chain_of_sixteen_sets_loads(tmp_path):
    write(tmp_path, VALID, "s15.toml")
    for i in range(15):
        write(tmp_path, f'name = "s{i}"\nversion = "1"\ntitle = "s"\nextends = "s{i + 1}.toml"\n', f"s{i}.toml")
    assert len(load_constraint_set(tmp_path / "s0.toml").lineage) == 16


def test_not_utf8_and_deeply_nested_sets_are_problems(tmp_path):
    latin1 = write(tmp_path, "x")
    text = VALID.replace("A. Journal", "Caf\xe9")
    latin1.write_bytes(text.encode("latin-1"))
    byte = text.index("\xe9")
    assert validate_constraint_file(latin1) == [
        f"{latin1.resolve()}: file: constraint set is not UTF-8 text (byte {byte})"
    ]
    nested = write(tmp_path, VALID + "note = " + "[" * 5000 + "]" * 5000 + "\n", "nested.toml")
    assert "nested too deeply" in _problems(tmp_path, nested.read_text())
