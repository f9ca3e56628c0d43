"""Organ matching against the AAPM TG-263 nomenclature worksheet (third-party, never copied here).

Every TG-263 primary and reverse-order name, given as a structure name, must match its own organ
of ``constraints/organs.toml`` or none: never another organ. The worksheet is read from
REIRRAD_TG263 (the CSV or its folder), else ``<testdata>/../reference/tg263/``. Absent, the test
is skipped with the reason, and fails when CI is set.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from reirrad.organs import load_organ_catalog, match_organs

WORKSHEET = "TG263_Nomenclature_Worksheet_20170815.csv"
REPO = Path(__file__).resolve().parents[1]


def _worksheet_path() -> Path:
    given = os.environ.get("REIRRAD_TG263")
    if given:
        path = Path(given)
        return path / WORKSHEET if path.is_dir() else path
    testdata = Path(os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata"))
    return testdata.resolve().parent / "reference" / "tg263" / WORKSHEET


@pytest.fixture(scope="module")
def tg263_names() -> list[tuple[str, str]]:
    """(primary name, name) for every primary and reverse-order name of the worksheet."""
    path = _worksheet_path()
    if not path.is_file():
        reason = f"TG-263 worksheet not found at {path} (set REIRRAD_TG263 or REIRRAD_TESTDATA)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = []
    for row in rows:
        primary = row["TG263-Primary Name"].strip()
        for name in {primary, row["TG-263-Reverse Order Name"].strip()} - {""}:
            names.append((primary, name))
    return names


def test_the_worksheet_is_the_full_list(tg263_names):
    primaries = {p for p, _ in tg263_names}
    assert len(primaries) > 700
    assert {"SpinalCord", "Brainstem", "Larynx_SG", "Ear_Internal_L", "ThecalSac", "Cerebrum"} <= primaries


def test_every_catalogue_organ_is_a_tg263_primary_name(tg263_names):
    catalog = load_organ_catalog()
    primaries = {p for p, _ in tg263_names}
    assert sorted(set(catalog.organ_by_key.values()) - primaries) == []


def _matched(names: list[str], organs: list[str]) -> dict[str, set[str]]:
    """Organ -> the names the matcher takes for it, all names offered at once (a name standing
    for an organ is its single match, or one of the candidates when several are)."""
    matches = match_organs(names, organs)
    return {o: set(m.candidates) for o, m in matches.items() if m.status in ("matched", "ambiguous")}


def test_no_tg263_name_matches_another_organ(tg263_names):
    organs = sorted(set(load_organ_catalog().organ_by_key.values()))
    primaries: dict[str, set[str]] = {}
    for primary, name in tg263_names:
        primaries.setdefault(name, set()).add(primary)
    wrong = [
        f"{name!r} (TG-263 {', '.join(sorted(primaries[name]))}) -> {organ}"
        for organ, names in _matched(sorted(primaries), organs).items()
        for name in sorted(names)
        if organ not in primaries[name]
    ]
    assert wrong == []


def test_own_names_do_match(tg263_names):
    """The check above is not vacuous: TG-263 names of catalogue organs match those organs."""
    own = {"SpinalCord", "Brainstem", "Parotid_L", "A_Carotid_R", "ThecalSac"}
    names = sorted({name for primary, name in tg263_names if primary in own})
    assert set(_matched(names, sorted(own))) == own
