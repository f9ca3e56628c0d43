"""Exit codes that never lie: 3 for internal errors (one line; traceback only with --debug or
REIRRAD_DEBUG=1), options refused alike from Python and the command line, ASCII fallback,
--version."""

from __future__ import annotations

import importlib
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reirrad import __version__
from reirrad.check import CheckOptions, FailOn
from reirrad.cli import _register, app
from reirrad.errors import OptionError
from reirrad.outputs import fall_back_to_ascii

# the module (reirrad.dvh as an attribute of the package is the public function of that name)
DVH_MODULE = importlib.import_module("reirrad.dvh")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_plans" / "hn_sbrt_reirradiation"
DOSE, STRUCTURES = SAMPLE / "course2" / "dose.dcm", SAMPLE / "course2" / "structures.dcm"
DVH = ["dvh", str(DOSE), str(STRUCTURES), "-s", "SpinalCord", "-m", "D0.03cc", "-f", "csv"]
_register()


def run(*args: object, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(app, [str(a) for a in args])


def cli(*args: object, prelude: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The console script's `main()` in a fresh interpreter; ``prelude`` runs first."""
    code = f"{prelude}\nfrom reirrad.cli import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def bug(*args, **kwargs):
    raise ZeroDivisionError("float division by zero")


# ------------------------------------------------------------------------------------ exit 3


def test_an_internal_error_exits_3_with_one_line_and_no_traceback(monkeypatch):
    monkeypatch.setattr(DVH_MODULE, "dvh_table", bug)
    result = run(*DVH, env={"REIRRAD_DEBUG": ""})
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("reirrad: internal error: ZeroDivisionError: float division by zero")
    assert "report it" in result.stderr and "--debug" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("args", "env"), [(["--debug"], {}), ([], {"REIRRAD_DEBUG": "1"})])
def test_debug_shows_the_traceback_and_still_exits_3(monkeypatch, args, env):
    monkeypatch.setattr(DVH_MODULE, "dvh_table", bug)
    result = run(*args, *DVH, env=env)
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr and 'raise ZeroDivisionError("float' in result.stderr
    assert result.stderr.splitlines()[-1].startswith("reirrad: internal error: ZeroDivisionError")


def test_the_console_script_exits_3_on_an_internal_error():
    result = cli(
        *DVH,
        prelude="import importlib; m = importlib.import_module('reirrad.dvh')\ndef bug(*a, **k): raise RuntimeError('bug')\nm.dvh_table = bug",
    )
    assert result.returncode == 3 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("reirrad: internal error: RuntimeError: bug")


def test_ctrl_c_is_not_a_failing_plan(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DVH_MODULE, "dvh_table", interrupted)
    result = run(*DVH)
    assert result.exit_code == 130 and result.stderr == "reirrad: interrupted\n"


# ------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("value", ["warning", "WARN", "Fail", "", None])
def test_fail_on_accepts_only_the_enum_or_its_exact_value(value):
    with pytest.raises(OptionError, match="fail_on must be one of 'fail', 'warn'"):
        CheckOptions(fail_on=value)
    with pytest.raises(ValueError):  # Python callers catch it as a ValueError
        CheckOptions(fail_on=value)


@pytest.mark.parametrize(
    ("value", "expected"), [("warn", FailOn.WARN), (FailOn.WARN, FailOn.WARN), ("fail", FailOn.FAIL)]
)
def test_fail_on_is_stored_as_the_enum(value, expected):
    assert CheckOptions(fail_on=value).fail_on is expected


@pytest.mark.parametrize("value", [0.0, -2.0, math.inf, math.nan])
def test_lql_transition_dose_must_be_positive_and_finite(value):
    with pytest.raises(OptionError, match="lql_transition_gy"):
        CheckOptions(lql_transition_gy=value)
    assert CheckOptions(lql_transition_gy=6.0).lql_transition_gy == 6.0


@pytest.mark.parametrize("value", ["0", "inf", "nan"])
@pytest.mark.parametrize("command", ["check", "eqd2", "sum"])
def test_lql_transition_dose_is_refused_alike_by_every_command(tmp_path, command, value):
    args = {
        "check": ["check", SAMPLE / "case.toml"],
        "eqd2": ["eqd2", DOSE, "--alpha-beta", 3, "--fractions", 5, "-o", tmp_path / "o.dcm"],
        "sum": ["sum", SAMPLE / "case.toml", "--alpha-beta", 3, "-o", tmp_path / "o.dcm"],
    }[command]
    result = run(*args, "--lql-transition-gy", value)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "reirrad: error: LQ-L transition dose (lql_transition_gy) must be positive and finite"
    )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ streams, version


def test_an_ascii_terminal_gets_the_table_in_plain_ascii():
    result = cli("check", SAMPLE / "case.toml", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 1, result.stderr  # the sample fails its carotid limit on purpose
    assert result.stdout.isascii() and "Traceback" not in result.stderr
    assert "A_Carotid_L" in result.stdout and "FAIL: 1" in result.stdout and "+--" in result.stdout


def test_ascii_fallback_keeps_names_readable_and_columns_aligned():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    fall_back_to_ascii(stream)
    stream.write("│ Müller┃Parotid… ─┼─\n")
    stream.flush()
    assert raw.getvalue() == b"| Muller|Parotid~ -+-\n"


def test_version_option_and_command():
    for args in (["--version"], ["version"]):
        result = run(*args)
        assert result.exit_code == 0 and result.stdout == f"{__version__}\n"


# ------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check", "--format", "xml", "case.toml"], "'xml' is not one of"),
        (["check", "--fail-on", "maybe"], "'maybe' is not one of"),
        (["nope"], "No such command 'nope'"),
        (["dvh"], "Missing argument"),
    ],
)
def test_a_usage_error_is_one_line_with_exit_2(args, expected):
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("reirrad: error: ") and expected in result.stderr
    assert "--help" in result.stderr and result.stdout == ""


def test_a_group_without_a_command_prints_its_help_and_exits_2():
    result = cli("constraints")
    assert result.returncode == 2 and "list" in result.stdout and result.stderr == ""


# ------------------------------------------------------------------- a folder as the case argument


def test_check_of_a_case_folder_reads_its_case_toml_and_says_so(tmp_path):
    """`reirrad check FOLDER` with FOLDER/case.toml checks that case file (the sample fails its left-carotid
    limit on purpose: exit 1), names it on stderr and in the report; a folder without one exits 2 saying
    what was expected."""
    import json

    out = tmp_path / "report.json"
    done = run("check", SAMPLE, "-f", "json", "-o", out)
    assert done.exit_code == 1, done.output
    assert f"reirrad: case file {SAMPLE / 'case.toml'} (folder {SAMPLE} given)" in done.stderr
    assert json.loads(out.read_text())["case"]["path"] == str(SAMPLE / "case.toml")
    (tmp_path / "course1").mkdir()
    done = run("check", tmp_path)
    assert done.exit_code == 2
    assert done.stderr == (
        f"reirrad: error: {tmp_path}: no case.toml in this folder; give the case file, "
        "or the course folders with --prior and --new\n"
    )
