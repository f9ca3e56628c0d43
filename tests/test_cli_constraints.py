"""`reirrad constraints list | show | validate` through the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    code = "from reirrad.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "constraints", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=REPO,
    )


def test_list_shows_every_builtin_set_with_its_count():
    out = run("list")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "hn-reirradiation" in line)
    assert "1.1.0" in row and "20" in row.split()[-2:]
    assert "sbrt-spine-reirradiation" in out.stdout


def test_show_lists_limits_alpha_beta_and_sources():
    out = run("show", "hn-reirradiation")
    assert out.returncode == 0, out.stderr
    cord = next(line for line in out.stdout.splitlines() if "spinalcord-dmax" in line)
    for cell in ("SpinalCord", "Dmax", "67.75", "60", "2", "hard", "nieder2006"):
        assert cell in cord
    assert "10.3390/cancers13133173" in out.stdout  # the Embring citation is printed


def test_show_unknown_set_exits_2_without_traceback():
    out = run("show", "nope")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "no built-in set named 'nope'" in out.stderr


def test_validate_valid_and_invalid(tmp_path: Path):
    ok = run("validate", str(REPO / "constraints" / "hn-reirradiation.toml"))
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\nversion = "1"\ntitle = "b"\nextends = "hn-reirradiation"\n'
        '[[constraints]]\nid = "x"\norgan = "Larynx"\nmetric = "Dfoo"\npriority = "hard"\nlimit_gy = 40.0\nsource = "nieder2006"\n'
        '[[constraints]]\nid = "y"\norgan = "Larynx"\nmetric = "Dmax"\npriority = "soft"\nlimit_gy = 40.0\nsource = "zz"\n'
    )
    out = run("validate", str(bad))
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}: constraints[0] (id=x): field 'metric': unknown DVH metric 'Dfoo'")
    assert lines[1].startswith(f"{bad}: constraints[1] (id=y): field 'source': unknown source id 'zz'")


def test_validate_lists_wrong_types_one_per_line_and_exits_2(tmp_path: Path):
    bad = tmp_path / "types.toml"
    bad.write_text(
        'name = "t"\nversion = "1"\ntitle = "t"\nsources = 3\n[defaults]\nrecovery_model = 3\n'
        '[[defaults.alpha_beta]]\norgans = ["*"]\ngy = 1e9\nsource = "a"\ncolour = "red"\n'
        '[[constraints]]\nid = "x"\norgan = "Larynx"\nmetric = "Dmax"\npriority = "hard"\nlimit_gy = "40"\nsource = ["a"]\n'
    )
    out = run("validate", str(bad))
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert [line.split(": ")[1:3] for line in lines] == [
        ["set", "field 'sources'"],
        ["defaults", "field 'recovery_model'"],
        ["defaults.alpha_beta[0]", "field 'colour'"],
        ["defaults.alpha_beta[0]", "field 'gy'"],
        ["constraints[0] (id=x)", "field 'limit_gy'"],
        ["constraints[0] (id=x)", "field 'source'"],
    ]


def test_validate_refuses_an_empty_set(tmp_path: Path):
    empty = tmp_path / "empty.toml"
    empty.write_text('name = "e"\nversion = "1"\ntitle = "e"\n')
    out = run("validate", str(empty))
    assert out.returncode == 2 and out.stdout == ""
    assert (
        out.stderr
        == f"{empty}: set: field 'constraints': no constraint (none given, or none valid): the set would pass every plan\n"
    )
