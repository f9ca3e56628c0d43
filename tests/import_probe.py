"""Run a `reirrad` command in a fresh interpreter and list the modules it loaded (import-cost tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

PROBE = """
import json, sys
from reirrad.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_listing_modules(args: Sequence[str]) -> tuple[int, list[str]]:
    """(exit code, sorted names of every module loaded) of ``reirrad ARGS`` in a new process."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    probe = json.loads(result.stdout.splitlines()[-1])
    return probe["code"], probe["modules"]


def loaded_of(modules: Sequence[str], names: Sequence[str]) -> list[str]:
    """The modules among ``modules`` that are one of ``names`` or inside one of them."""
    return [m for m in modules if m in names or m.startswith(tuple(f"{n}." for n in names))]
