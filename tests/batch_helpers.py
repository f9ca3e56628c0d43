"""Batch test cases: copies of the two sample cases with their own ids and prior-course dates."""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
SAMPLE_NAMES = ("hn_conventional_reirradiation", "hn_sbrt_reirradiation")


def _shift_prior_dates(text: str, days: int) -> str:
    """The case file with the first (prior) course's dates moved ``days`` earlier."""
    first, marker, rest = text.partition("[[courses]]")
    prior, second, later = rest.partition("[[courses]]")
    prior = re.sub(
        r"\d{4}-\d{2}-\d{2}", lambda m: (date.fromisoformat(m.group()) - timedelta(days=days)).isoformat(), prior
    )
    return first + marker + prior + second + later


def make_cases(folder: Path, count: int) -> list[Path]:
    """``count`` case files under ``folder``, alternating the two samples; case i has id
    ``<sample id>-<i>`` and its prior course 60*i days earlier (so intervals differ)."""
    cases = []
    for i in range(count):
        sample = SAMPLES / SAMPLE_NAMES[i % 2]
        target = folder / f"case{i:03d}"
        shutil.copytree(sample, target)
        text = (sample / "case.toml").read_text()
        text = re.sub(r'^id = "(.*)"$', rf'id = "\1-{i:03d}"', text, count=1, flags=re.MULTILINE)
        (target / "case.toml").write_text(_shift_prior_dates(text, 60 * i))
        cases.append(target / "case.toml")
    return cases
