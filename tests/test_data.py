"""The built-in data is part of the package: found through importlib.resources, never next to the source.

The slow end-to-end check (build the wheel, install it into a fresh virtual environment, run the
commands from outside the repository) is `make wheel-check`, run by `.ci/run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from reirrad import constraints, flags, organs
from reirrad.case import load_case
from reirrad.cli import demo
from reirrad.data import CONSTRAINTS_PACKAGE, SAMPLE_PACKAGE, builtin_file, constraints_dir, sample_case
from reirrad.eqd2 import RECOVERY_FILE  # `from reirrad import eqd2` is the function reirrad.eqd2

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _data_files(folder: Path) -> set[Path]:
    """Every file of a data folder but the package marker and byte-code."""
    return {
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and p.name != "__init__.py" and "__pycache__" not in p.parts
    }


def test_each_data_table_is_read_from_the_installed_data_package():
    folder = Path(resources.files(CONSTRAINTS_PACKAGE))
    assert constraints_dir() == constraints.CONSTRAINTS_DIR == folder
    for path, name in (
        (flags.FLAGS_FILE, "flags.toml"),
        (RECOVERY_FILE, "recovery.toml"),
        (organs.ORGANS_FILE, "organs.toml"),
    ):
        assert path == builtin_file(name) == folder / name
        assert tomllib.loads(path.read_text(encoding="utf-8"))  # a non-empty table
    assert constraints.available_sets() == ["hn-reirradiation", "sbrt-spine-reirradiation"]
    assert (
        len(constraints.load_constraint_set("hn-reirradiation").constraints) == 20
    )  # 19 + the simple-25-50 tolerance rule


def test_the_demo_case_is_read_from_the_installed_sample_package():
    case_file = Path(resources.files(SAMPLE_PACKAGE)) / "case.toml"
    assert demo.SAMPLE_CASE == sample_case() == case_file
    case = load_case(case_file)
    assert case.id == "HN-SBRT-REIRR-01" and [c.name for c in case.courses] == ["prior", "new"]


def test_packages_list_every_python_package_of_the_source_tree():
    """`packages` is an explicit list (the data packages are mapped): a new subpackage must be added."""
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "reirrad").rglob("__init__.py")}
    assert found | {CONSTRAINTS_PACKAGE, SAMPLE_PACKAGE} == set(SETUPTOOLS["packages"])


def test_package_data_patterns_take_every_data_file():
    """Each file of constraints/ and of the sample case matches a package-data pattern (so the wheel holds it)."""
    for package in (CONSTRAINTS_PACKAGE, SAMPLE_PACKAGE):
        folder = REPO / SETUPTOOLS["package-dir"][package]
        taken = {p.relative_to(folder) for pattern in SETUPTOOLS["package-data"][package] for p in folder.glob(pattern)}
        assert _data_files(folder) and taken == _data_files(folder), package


def test_list_without_sets_is_an_error_not_an_empty_table(tmp_path: Path):
    """An installation whose data package lost its files (what a wheel without package data gave)."""
    shutil.copytree(REPO / "reirrad", tmp_path / "reirrad", ignore=shutil.ignore_patterns("__pycache__"))
    empty = tmp_path / "reirrad" / "builtin_constraints"
    empty.mkdir()
    shutil.copy(REPO / "constraints" / "__init__.py", empty)
    out = subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "constraints", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        f"reirrad: error: {empty}: no built-in constraint sets found: the installation is incomplete, "
        "reinstall reirrad\n"
    )


def test_tests_needing_third_party_data_fail_in_ci_when_it_is_missing(tmp_path: Path):
    """The `testdata` fixture skips without the data, except under CI, where the test fails."""
    (tmp_path / "test_needs_data.py").write_text("def test_needs_data(testdata):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(REIRRAD_TESTDATA=str(tmp_path / "absent"), PYTHONPATH=str(REPO / "tests"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", "test_needs_data.py"]
    skipped = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    failed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**env, "CI": "1"})
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert failed.returncode == 1 and "CI is set, so tests that need it fail instead of skipping" in failed.stdout
