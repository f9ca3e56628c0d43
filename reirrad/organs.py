"""Organ names: TG-263 organs, their clinical synonyms, and matching them to structure-set ROI names.

Matching is exact on a normalised *key* (words split at separators and case changes, lower-cased,
joined), with a side word ("L", "Lt", "Left", ...) before or after the name of a paired organ.
Derived structures (PRV, ring, optimisation, cropped, expanded ...) are never taken for an organ
unless the case maps them explicitly or the organ is written with exactly the structure's name (a
custom organ "BRAIN - PTV" takes the structure "BRAIN - PTV"); near misses are suggested in the
reason, never applied. Every reason names the structure set it was looked for in.
The synonym table lives in ``constraints/organs.toml``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from reirrad.data import builtin_file
from reirrad.errors import InputError
from reirrad.tomlfile import Problems, plain, read_toml, shown

ORGANS_FILE = builtin_file("organs.toml")

MatchStatus = Literal["matched", "missing", "ambiguous", "empty"]
MatchHow = Literal["mapping", "name", "synonym"]

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_EXPANSION = re.compile(r"\d\s*[cm]m\b|\+")
_SIDES = {"left": "_L", "right": "_R"}


def words(name: str) -> list[str]:
    """Lower-case words of a name: split at non-letters and case changes ("LParotid" -> l, parotid)."""
    return [w.lower() for w in _WORD.findall(name)]


def name_key(name: str) -> str:
    """The key two names must share to match: their words joined ("Brain_Stem" -> "brainstem")."""
    return "".join(words(name))


@dataclass(frozen=True)
class OrganCatalog:
    """The organ synonym table: name keys per organ, organ groups and derived-structure markers."""

    organ_by_key: Mapping[str, str]  # every key naming an organ, sides included ("lca" -> "A_Carotid_L")
    groups: Mapping[str, tuple[str, ...]]  # group -> member organs ("Parotid" -> Parotid_L, Parotid_R)
    derived_words: frozenset[str]
    derived_prefixes: tuple[str, ...]

    def organ_of(self, name: str) -> str | None:
        """The organ a structure name denotes, or None (derived structures are not checked here)."""
        return self.organ_by_key.get(name_key(name))

    def is_derived(self, name: str) -> bool:
        """True for helper structures built from an organ (PRV, ring, opt, -PTV, +3mm, z_ ...)."""
        return (
            name.startswith(self.derived_prefixes)
            or _EXPANSION.search(name.lower()) is not None
            or any(w in self.derived_words for w in words(name))
        )

    def members(self, organ: str) -> tuple[str, ...]:
        """The organs a constraint on ``organ`` applies to: a group's members, else the organ itself."""
        return self.groups.get(organ, (organ,))

    def is_known(self, organ: str) -> bool:
        """True for organs and groups of the table."""
        return organ in self.groups or organ in self.organ_by_key.values()

    def denotes(self, name: str, organ: str) -> bool:
        """True when a structure name denotes ``organ``; an organ not in the table only by its own key."""
        found = self.organ_of(name)
        return found == organ if found is not None or self.is_known(organ) else name_key(name) == name_key(organ)


def _organ_keys(organ: str, entry: Mapping, side_words: Mapping[str, list[str]]) -> dict[str, set[str]]:
    """Keys of one table entry per organ: synonyms, and for paired organs each side word before/after."""
    base = {name_key(organ)} | {name_key(s) for s in entry.get("synonyms", ())}
    if not entry.get("sides", False):
        return {organ: base}
    return {
        organ + suffix: {w + k for w in side_words[side] for k in base}
        | {k + w for w in side_words[side] for k in base}
        | {name_key(extra) for extra in entry.get(side, ())}
        for side, suffix in _SIDES.items()
    }


def parse_catalog(data: Mapping, path: Path) -> OrganCatalog:
    """Build the catalog from the parsed organs TOML; one InputError listing every problem (a
    missing table, a key that names two organs)."""
    problems = Problems(path)
    try:
        side_words = {side: [name_key(w) for w in data["sides"][side]] for side in _SIDES}
        organs = dict(data["organs"])
        derived_words, derived_prefixes = frozenset(data["derived"]["words"]), tuple(data["derived"]["prefixes"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            path, f"invalid organ table: missing or invalid [sides], [organs] or [derived] ({exc!r})"
        ) from None
    organ_by_key: dict[str, str] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for organ, entry in organs.items():
        if not isinstance(entry, dict):
            problems.add(f"organs.{plain(organ)}", None, f"must be a table, got {shown(entry)}")
            continue
        if entry.get("sides", False):
            groups[organ] = tuple(organ + suffix for suffix in _SIDES.values())
        for member, keys in _organ_keys(organ, entry, side_words).items():
            for key in sorted(keys):
                if organ_by_key.get(key, member) != member:
                    problems.add(
                        f"organs.{plain(organ)}",
                        None,
                        f"synonym key {key!r} names both {organ_by_key[key]} and {member}",
                    )
                organ_by_key.setdefault(key, member)
    problems.raise_if_any("organ table")
    return OrganCatalog(
        organ_by_key=organ_by_key, groups=groups, derived_words=derived_words, derived_prefixes=derived_prefixes
    )


@lru_cache(maxsize=4)
def load_organ_catalog(path: Path = ORGANS_FILE) -> OrganCatalog:
    """Read ``constraints/organs.toml`` (or another table of the same shape)."""
    return parse_catalog(read_toml(path, "organ table"), path)


@dataclass(frozen=True)
class OrganMatch:
    """Which structure (ROI name) stands for an organ, or why none does."""

    organ: str
    structure: str | None
    status: MatchStatus
    reason: str | None = None
    candidates: tuple[str, ...] = ()
    how: MatchHow | None = None


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _suggestions(organ: str, roi_names: Iterable[str], catalog: OrganCatalog) -> list[str]:
    """Structure names close to any name of the organ (shown to the user, never applied)."""
    targets = {k for k, o in catalog.organ_by_key.items() if o == organ} or {name_key(organ)}
    close = []
    for roi in roi_names:
        key = name_key(roi)
        ratio = max((difflib.SequenceMatcher(None, key, t).ratio() for t in targets), default=0.0)
        if ratio >= 0.8 or (catalog.is_derived(roi) and any(t in key for t in targets if len(t) > 2)):
            close.append(roi)
    return close


MAP_HINT = "in the case file ([structures] for the reference course, [courses.structures] per course)"


def _missing(organ: str, roi_names: list[str], catalog: OrganCatalog, where: str) -> OrganMatch:
    near = _suggestions(organ, roi_names, catalog)
    reason = f"no structure named {organ} or a synonym of it in {where}"
    if near:
        reason += f"; similar names not used (map one {MAP_HINT}): {_quoted(near)}"
    return OrganMatch(organ, None, "missing", reason, tuple(near))


def _single(organ: str, roi: str, how: MatchHow, empty: Collection[str], where: str) -> OrganMatch:
    if roi in empty:
        return OrganMatch(organ, roi, "empty", f"structure {roi!r} of {where} has no contours", (roi,), how)
    return OrganMatch(organ, roi, "matched", None, (roi,), how)


def _ambiguous(organ: str, rois: list[str], by_mapping: bool, where: str) -> OrganMatch:
    found = f"the case file maps several structures of {where}" if by_mapping else f"{where} has several structures"
    reason = f"{found} for {organ}: {_quoted(rois)}; pick one {MAP_HINT}"
    return OrganMatch(organ, None, "ambiguous", reason, tuple(rois))


def same_name(a: str, b: str) -> bool:
    """True when two names are the same text (case and surrounding spaces aside)."""
    return a.strip().lower() == b.strip().lower()


def match_organs(
    roi_names: list[str],
    organs: list[str],
    mapping: Mapping[str, str] | None = None,
    empty: Collection[str] = (),
    catalog: OrganCatalog | None = None,
    structure_set: str = "the structure set",
) -> dict[str, OrganMatch]:
    """Find the structure for each organ.

    ``mapping`` is the case file's structure map of this structure set: ROI name -> organ. A mapped
    structure is used as given (even a derived one); other structures match by synonym, skipping
    derived ones and structures mapped to another organ, or by exactly the organ's name (even a
    derived-looking one). ``empty`` names ROIs without contours (status "empty").
    ``structure_set`` names the set in every reason (e.g. "structure set course2/rs.dcm").
    """
    catalog = catalog or load_organ_catalog()
    mapping = dict(mapping or {})
    present = set(roi_names)
    result: dict[str, OrganMatch] = {}
    for organ in dict.fromkeys(organs):
        mapped = [roi for roi, target in mapping.items() if target == organ]
        if mapped:
            absent = [roi for roi in mapped if roi not in present]
            if absent:
                reason = (
                    f"the case file maps {_quoted(absent)} to {organ} but {structure_set} has no such "
                    f"structure (has: {_quoted(roi_names)})"
                )
                result[organ] = OrganMatch(organ, None, "missing", reason, tuple(mapped), "mapping")
            elif len(mapped) > 1:
                result[organ] = _ambiguous(organ, mapped, True, structure_set)
            else:
                result[organ] = _single(organ, mapped[0], "mapping", empty, structure_set)
            continue
        unmapped = [roi for roi in roi_names if roi not in mapping]
        found = [
            roi
            for roi in unmapped
            if same_name(roi, organ) or (not catalog.is_derived(roi) and catalog.denotes(roi, organ))
        ]
        if not found:
            result[organ] = _missing(organ, unmapped, catalog, structure_set)
        elif len(found) > 1:
            result[organ] = _ambiguous(organ, found, False, structure_set)
        else:
            how: MatchHow = "name" if same_name(found[0], organ) else "synonym"
            result[organ] = _single(organ, found[0], how, empty, structure_set)
    return result
