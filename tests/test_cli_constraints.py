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
        [sys.executable, "-c", code, "constraints", *args], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"}, cwd=REPO,
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
