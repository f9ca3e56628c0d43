"""A given fraction count never silently beats the plan (issue 10, defect 3).

Prior: 50 Gy in 25 fractions to a uniform cord (EQD2(2) 50 Gy); new: 20 Gy in 10 fractions
(EQD2(2) 20 Gy). Given as 20 fractions, the prior course would be 50 (2.5 + 2) / 4 = 56.25 Gy.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner
from uniform_case import write_case, write_course

from reirrad.case import case_from_folders, load_case
from reirrad.check import run_check
from reirrad.cli import _register, app
from reirrad.errors import InputError

_register()
RUNNER = CliRunner()


def run(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def run_main(*args) -> subprocess.CompletedProcess:
    """The installed entry point (input errors become exit 2 there)."""
    return subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture()
def folders(tmp_path):
    write_course(tmp_path / "prior", 50.0, 25)
    write_course(tmp_path / "new", 20.0, 10)
    return tmp_path


def cord(report):
    return next(r for r in report.results if r.constraint_id == "spinalcord-dmax")


def test_case_file_count_that_disagrees_with_the_plan_is_refused(folders):
    case = load_case(write_case(folders / "case.toml", prior_extra="fractions = 20\n"))
    with pytest.raises(InputError) as error:
        run_check(case)
    message = str(error.value)
    assert "fractions = 20 for course 'prior' in the case file gives 20 fractions" in message
    assert "rd.dcm" in message and "says 25" in message
    assert "override_fractions = true for course 'prior'" in message


def test_confirmed_override_is_used_and_flagged_with_both_numbers(folders):
    case = load_case(write_case(folders / "case.toml", prior_extra="fractions = 20\noverride_fractions = true\n"))
    report = run_check(case)
    (phase,) = report.courses[0].phases
    assert (phase.fractions, phase.fraction_source, phase.plan_fractions) == (20, "override", 25)
    assert cord(report).per_course["prior"] == pytest.approx(56.25, abs=1e-3)
    (flag,) = [f for f in report.flags if f.id == "fractions_from_override"]
    assert "20 fractions" in flag.message and "the plan says 25" in flag.message
    assert "prior: 20 (override; plan 25)" in report.assumptions["fractions"]


def test_a_count_that_agrees_with_the_plan_is_no_override(folders):
    report = run_check(load_case(write_case(folders / "case.toml", prior_extra="fractions = 25\n")))
    (phase,) = report.courses[0].phases
    assert (phase.fractions, phase.fraction_source, phase.plan_fractions) == (25, "plan", 25)
    assert cord(report).per_course["prior"] == pytest.approx(50.0, abs=1e-3)
    assert "fractions_from_override" not in {f.id for f in report.flags}


def test_override_fractions_needs_a_count(folders):
    with pytest.raises(InputError, match="override_fractions: only with fractions = N"):
        load_case(write_case(folders / "case.toml", prior_extra="override_fractions = true\n"))


def test_quick_form_refuses_then_accepts_with_override_fractions(folders):
    args = (
        "check",
        "--prior",
        folders / "prior",
        "--new",
        folders / "new",
        "--prior-end-date",
        "2023-01-01",
        "--new-start-date",
        "2024-07-01",
        "--prior-fractions",
        20,
        "-f",
        "json",
    )
    refused = run_main(*args)
    assert refused.returncode == 2
    assert "--prior-fractions 20 gives 20 fractions" in refused.stderr and "says 25" in refused.stderr
    assert "--override-fractions" in refused.stderr
    accepted = run_main(*args, "--override-fractions")
    data = json.loads(accepted.stdout)
    phase = data["courses"][0]["phases"][0]
    assert (phase["fractions"], phase["fraction_source"], phase["plan_fractions"]) == (20, "override", 25)
    with pytest.raises(InputError, match="--override-fractions needs --prior-fractions or --new-fractions"):
        case_from_folders(folders / "prior", folders / "new", override_fractions=True)


def test_eqd2_fractions_meeting_a_plan(folders, tmp_path):
    dose, plan = folders / "prior" / "rd.dcm", folders / "prior" / "rp.dcm"
    out = tmp_path / "eqd2.dcm"
    refused = run("eqd2", dose, "--alpha-beta", 2, "--fractions", 20, "--plan", plan, "-o", out)
    assert refused.exit_code == 2 and "--fractions 20 gives 20 fractions" in refused.stderr
    assert "says 25" in refused.stderr and not out.exists()
    agreed = run("eqd2", dose, "--alpha-beta", 2, "--fractions", 25, "--plan", plan, "-o", out)
    assert agreed.exit_code == 0 and "max EQD2: 50.00 Gy" in agreed.stdout and "25 (plan)" in agreed.stdout
    out.unlink()
    forced = run("eqd2", dose, "--alpha-beta", 2, "--fractions", 20, "--plan", plan, "--override-fractions", "-o", out)
    assert forced.exit_code == 0 and "max EQD2: 56.25 Gy" in forced.stdout
    assert "20 (override; plan 25)" in forced.stdout
