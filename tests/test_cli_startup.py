"""Start-up of the command line: the version and the help load no numerical or report library, and
the process runs one BLAS/OpenMP thread unless the user chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

THREAD_ENVS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
HEAVY = ("numpy", "scipy", "matplotlib", "pydicom", "rich", "reirrad.report")

# The console script's `main()` in a fresh interpreter; afterwards, what it imported and set.
PROBE = f"""
import json, os, sys
from reirrad.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps({{"modules": sorted(sys.modules), "env": {{k: os.environ.get(k) for k in {THREAD_ENVS!r}}}}}))
"""


def probe(*args: str, env: dict[str, str] | None = None) -> dict:
    """Run the CLI with ``args`` in a subprocess (thread variables unset unless given in ``env``)."""
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_ENVS}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True, env={**clean, **(env or {})}
    )
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("version",),
        ("constraints", "--help"),
        ("dvh", "--help"),
        ("check", "--help"),
        ("audit", "--help"),
    ],
)
def test_version_and_help_import_no_heavy_module(args):
    modules = probe(*args)["modules"]
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert loaded == []


def test_the_command_line_runs_one_blas_thread_by_default():
    assert probe("--version")["env"] == dict.fromkeys(THREAD_ENVS, "1")


def test_a_thread_count_the_user_set_is_kept():
    env = probe("--version", env={"OMP_NUM_THREADS": "3"})["env"]
    assert env == {"OPENBLAS_NUM_THREADS": None, "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": None}
