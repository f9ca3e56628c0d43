"""Structure maps per course, exact custom names, batch ids, "nothing evaluated" and volume
limits (issue 10, defect 8). Uniform doses: prior 50 Gy / 25 fx (cord EQD2(2) 50 Gy), new
20 Gy / 10 fx (20 Gy); every structure is a 36-gon cylinder of radius 5 mm over 11 contours 2 mm
apart (22 mm with half-spacing end caps): 18 x 25 sin(10 deg) mm2 x 22 mm = 1.7192 cm3.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from check_helpers import constraint_set_header
from uniform_case import write_case, write_course

from reirrad.batch import run_batch
from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from reirrad.constraints import validate_constraint_file
from reirrad.errors import InputError
from reirrad.report.console import results_table
from reirrad.report.junit import to_junit
from reirrad.report.machine import to_json

CYLINDER_CC = 18 * 25 * math.sin(math.radians(10)) * 22 / 1000


def run_main(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", *map(str, args)], capture_output=True, text=True
    )


def courses(tmp_path, prior=("SpinalCord",), new=("SpinalCord",)):
    write_course(tmp_path / "prior", 50.0, 25, prior)
    write_course(tmp_path / "new", 20.0, 10, new)
    return tmp_path


def cord(report):
    return next(r for r in report.results if r.constraint_id == "spinalcord-dmax")


def test_a_structure_map_per_course(tmp_path):
    """The prior set calls the cord "Struct_A", the new one "Struct_B": each course maps its own."""
    courses(tmp_path, prior=("Struct_A",), new=("Struct_B",))
    case = load_case(
        write_case(
            tmp_path / "case.toml",
            prior_extra='[courses.structures]\n"Struct_A" = "SpinalCord"\n',
            extra='[structures]\n"Struct_B" = "SpinalCord"\n',
        )
    )
    assert case.structures_of(case.courses[0]) == {"Struct_A": "SpinalCord"}
    assert case.structures_of(case.reference) == {"Struct_B": "SpinalCord"}
    conservative = cord(run_check(case, CheckOptions(conservative=True)))
    assert conservative.structure == "Struct_A / Struct_B" and conservative.status == "fail"
    assert conservative.value_gy == pytest.approx(70.0, abs=1e-3)
    registered = run_check(case)
    assert cord(registered).value_gy == pytest.approx(70.0, abs=1e-3)
    assert any("course 'prior': its [courses.structures] map is not used" in w for w in registered.warnings)


def test_reference_names_in_two_tables_are_refused(tmp_path):
    courses(tmp_path)
    path = write_case(
        tmp_path / "case.toml",
        new_extra='[courses.structures]\n"SpinalCord" = "SpinalCord"\n',
        extra='[structures]\n"SpinalCord" = "SpinalCord"\n',
    )
    with pytest.raises(InputError, match="reference course 'new' has its own"):
        load_case(path)


def test_every_matching_message_names_the_structure_set(tmp_path):
    """A prior course's name given in the top-level map: the reference set lacks it, and says so."""
    courses(tmp_path, prior=("Struct_A",), new=("Cord_x", "BrainStem", "Brain Stem"))
    report = run_check(
        load_case(write_case(tmp_path / "case.toml", extra='[structures]\n"Struct_A" = "SpinalCord"\n')),
        CheckOptions(allow_missing=True),
    )
    reference_set = str(tmp_path / "new" / "rs.dcm")
    spinal = cord(report)
    assert spinal.status == "not_evaluated"
    assert (
        f"maps 'Struct_A' to SpinalCord but structure set {reference_set} (course 'new') has no such" in spinal.reason
    )
    stem = next(r for r in report.results if r.organ == "Brainstem")
    assert f"structure set {reference_set} (course 'new') has several structures" in stem.reason
    chiasm = next(r for r in report.results if r.organ == "OpticChiasm")
    assert f"no structure named OpticChiasm or a synonym of it in structure set {reference_set}" in chiasm.reason


def test_custom_organ_with_the_exact_structure_name_is_taken(tmp_path):
    courses(tmp_path, new=("BRAIN - PTV", "Brain-PTV_2"))
    (tmp_path / "set.toml").write_text(
        constraint_set_header("custom", "exact names", 3.0)
        + """
[[constraints]]
id = "brain-minus-ptv"
organ = "BRAIN - PTV"
metric = "Dmax"
priority = "hard"
limit_gy = 100.0
source = "t"
"""
    )
    report = run_check(load_case(write_case(tmp_path / "case.toml", head='constraints = "set.toml"\n')))
    (result,) = report.results
    assert (result.structure, result.status) == ("BRAIN - PTV", "pass")
    # EQD2(3): 50 (2 + 3) / 5 + 20 (2 + 3) / 5 = 70 Gy
    assert result.value_gy == pytest.approx(70.0, abs=1e-3)


def test_batch_cases_sharing_an_id_are_refused(tmp_path):
    courses(tmp_path)
    first = write_case(tmp_path / "a.toml", case_id="same")
    second = write_case(tmp_path / "b.toml", case_id="same")
    batch = run_batch([first, second])
    assert [r.case_id for r in batch.reports] == ["same"] and batch.exit_code == 2
    ((path, message),) = batch.errors
    assert path == str(second) and str(first) in message and str(second) in message
    cli = run_main("check", first, second, "-f", "json")
    assert cli.returncode == 2 and json.loads(cli.stdout)["errors"][0]["case"] == str(second)


def test_nothing_evaluated_is_exit_1_whatever_the_options(tmp_path):
    courses(tmp_path, prior=("Foo",), new=("Bar",))
    case = load_case(write_case(tmp_path / "case.toml"))
    for options in (CheckOptions(), CheckOptions(allow_missing=True), CheckOptions(allow_missing=True, fail_on="warn")):
        report = run_check(case, options)
        assert report.summary.counts["pass"] + report.summary.counts["warn"] + report.summary.counts["fail"] == 0
        assert report.summary.exit_code == 1
    suite = ET.fromstring(to_junit(report, allow_missing=True))
    assert suite.find(".//testcase[@name='any limit judged']/failure") is not None
    assert run_main("check", tmp_path / "case.toml", "--allow-missing", "-f", "json").returncode == 1


VOLUME_SET = (
    constraint_set_header("volumes", "volume limits at cumulative EQD2(2)", 2.0)
    + """
[[constraints]]
id = "v30-cc-fail"
organ = "SpinalCord"
metric = "V30Gy"
priority = "hard"
limit_cc = 1.5
source = "t"
[[constraints]]
id = "v30-cc-pass"
organ = "SpinalCord"
metric = "V30Gy"
priority = "hard"
warn_cc = 1.8
limit_cc = 2.0
source = "t"
[[constraints]]
id = "v30-pct-warn"
organ = "SpinalCord"
metric = "V30Gy[%]"
priority = "soft"
warn_pct = 90.0
limit_pct = 100.0
source = "t"
[[constraints]]
id = "v80-cc-zero"
organ = "SpinalCord"
metric = "V80Gy"
priority = "hard"
limit_cc = 0.5
source = "t"
"""
)


def test_volume_constraints_are_judged_with_their_unit(tmp_path):
    """Cumulative EQD2(2) is 70 Gy throughout the cord: V30Gy is the whole cord, V80Gy nothing."""
    courses(tmp_path)
    (tmp_path / "set.toml").write_text(VOLUME_SET)
    report = run_check(load_case(write_case(tmp_path / "case.toml", head='constraints = "set.toml"\n')))
    got = {r.constraint_id: r for r in report.results}
    assert got["v30-cc-fail"].value_gy == pytest.approx(CYLINDER_CC, rel=2e-3)
    assert [got[i].status for i in ("v30-cc-fail", "v30-cc-pass", "v30-pct-warn", "v80-cc-zero")] == [
        "fail",
        "pass",
        "warn",
        "pass",
    ]
    assert got["v30-pct-warn"].value_gy == pytest.approx(100.0) and got["v30-pct-warn"].unit == "%"
    assert got["v80-cc-zero"].value_gy == pytest.approx(0.0, abs=1e-9)
    row = next(r for r in json.loads(to_json(report))["results"] if r["id"] == "v30-cc-fail")
    assert (row["unit"], row["limit_gy"]) == ("cc", 1.5)
    assert "limit 1.5 cc" in to_junit(report)  # rounded once, as the JSON holds it
    table, _ = results_table(report)
    limits = list(table.columns[5].cells)
    assert limits[0] == "1.5 cc" and limits[2] == "100.0 %"  # as the JSON writes them


def test_volume_levels_are_validated(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        VOLUME_SET.replace("limit_cc = 1.5", "limit_gy = 1.5")
        .replace("limit_pct = 100.0", "limit_pct = 120.0")
        .replace('metric = "V80Gy"', 'metric = "Dmax"')
    )
    problems = "\n".join(validate_constraint_file(path))
    assert "(id=v30-cc-fail): field 'limit_gy': V30Gy gives cc: its levels are limit_cc / warn_cc" in problems
    assert "(id=v30-pct-warn): field 'limit_pct': a volume percentage cannot exceed 100" in problems
    assert "(id=v80-cc-zero): field 'limit_cc': Dmax gives Gy: its levels are limit_gy / warn_gy" in problems
