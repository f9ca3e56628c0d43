"""Cost of the registration-uncertainty search (`reirrad check --registration-uncertainty MM`) on the
sample SBRT case (two courses, 19 results on 17 structures), as whole commands (a fresh process each,
start-up included; see commands.py), against the nominal check of the same case.

Printed: median CPU s (user + system), wall s and peak RSS of the nominal check and of the check at
2 and 3 mm, the positions searched per result (from the JSON's notes) and each one's CPU ratio to
the nominal check. reirrad runs from bytecode (commands.py compiles it first); one untimed run of
each command warms the page cache.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from pathlib import Path

from commands import medians, print_load, print_table, reirrad_command, run_one

CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"
RADII_MM = (2, 3)
NOMINAL = "check (nominal)"


def check_command(output: Path, radius_mm: int | None) -> list[str]:
    """`reirrad check` of the sample case, JSON to ``output``, with the uncertainty (None: nominal)."""
    extra = [] if radius_mm is None else ["--registration-uncertainty", str(radius_mm)]
    return [*reirrad_command(), "check", str(CASE), "-f", "json", "-o", str(output), *extra]


def positions_searched(output: Path) -> list[int]:
    """The positions searched of every result with a worst case, from the notes of a JSON report."""
    pattern = re.compile(r"\((\d+) positions searched")
    counts = []
    for result in json.loads(output.read_text())["results"]:
        found = [int(m.group(1)) for note in result.get("notes", []) if (m := pattern.search(note))]
        counts.extend(found[:1])
    return counts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        radii: dict[str, int | None] = {NOMINAL: None, **{f"check --registration-uncertainty {r}": r for r in RADII_MM}}
        commands = {name: check_command(folder / f"{r}.json", r) for name, r in radii.items()}
        for argv in commands.values():
            run_one(argv)  # warm-up: page cache
        results = medians({name: functools.partial(run_one, argv) for name, argv in commands.items()})
        searched = {name: positions_searched(folder / f"{r}.json") for name, r in radii.items() if r is not None}
    print(f"reirrad check, sample SBRT case ({CASE.parent.name}): nominal vs registration-uncertainty search")
    print_load()
    print_table(results, NOMINAL)
    for name, counts in searched.items():
        print(
            f"{name}: {len(counts)} results searched, {min(counts)}-{max(counts)} positions each; "
            f"CPU {results[name].cpu_s / results[NOMINAL].cpu_s:.2f} x the nominal check"
        )


if __name__ == "__main__":
    main()
