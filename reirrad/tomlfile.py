"""Reading TOML files (case files, constraint sets, the organ, flag and recovery tables) and
resolving the paths they name.

Every way a file can be unusable becomes one :class:`InputError` line naming the file: unreadable,
not UTF-8, not TOML, nested too deeply for the parser, a path that does not resolve (missing, a
symlink loop, a name too long, a NUL character). A file that reads but says something wrong is
checked whole: its loader collects every problem in a :class:`Problems` list and raises them
together (:meth:`Problems.raise_if_any`), one error naming the file and listing each problem.
Sources (``[sources.<id>]`` tables) become full citations through :func:`citation_text`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reirrad.errors import InputError

SHOWN_CHARS = 60  # longest value quoted in a message; longer values are cut with "..."


def shown(value: Any) -> str:
    """``repr(value)`` cut to :data:`SHOWN_CHARS` characters: one short line for any value."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The table of a TOML file (UTF-8, a byte-order mark allowed); InputError when unusable.

    ``what`` names the kind of file in the message, e.g. ``"case file"``.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(path, f"cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML ({exc})") from None
    except RecursionError:
        raise InputError(path, "not valid TOML (arrays or tables nested too deeply)") from None


class Problems(list[str]):
    """Every problem found in one file, one line each: ``"<file>: <where>: [field '<key>': ]<problem>"``.

    Lines of another file (a parent constraint set) may be added as they are; they keep their file.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def add(self, where: str, field: str | None, problem: str) -> None:
        """Record ``problem`` at ``where`` (e.g. ``"constraints[2]"``), about ``field`` when given."""
        parts = [str(self.path), where] + ([f"field {field!r}"] if field else []) + [problem]
        self.append(": ".join(parts).replace("\n", "\\n"))

    def unknown(self, table: Mapping, allowed: set[str], where: str) -> None:
        """One problem per key of ``table`` not in ``allowed``."""
        for key in sorted(set(table) - allowed):
            self.add(where, plain(key), f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def attempt(self, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)``, or None with its InputError's problem recorded (a field reader that
        raises on its first problem then leaves the other fields to be checked too)."""
        try:
            return read(*args)
        except InputError as exc:
            self.append(f"{self.path}: {exc.problem}")
            return None

    def raise_if_any(self, what: str) -> None:
        """Raise one InputError naming the file and listing every problem (``what``: "case file" ...)."""
        if self:
            listed = "; ".join(p.removeprefix(f"{self.path}: ") for p in self)
            raise InputError(self.path, f"invalid {what}: {listed}")


def citation_text(entry: Mapping[str, Any]) -> str:
    """The full citation of a ``[sources.<id>]`` table: its ``citation``, then ``doi:...`` and
    ``PMID ...`` when given.

    >>> citation_text({"citation": "A. J 2020.", "doi": "10.1/a", "pmid": 1})
    'A. J 2020. doi:10.1/a. PMID 1.'
    """
    ids = [f"doi:{entry['doi']}" if "doi" in entry else None, f"PMID {entry['pmid']}" if "pmid" in entry else None]
    tail = ". ".join(x for x in ids if x)
    return f"{entry['citation']}" + (f" {tail}." if tail else "")


def plain(text: str | Path) -> str:
    """A name or path for a message: as is when printable and not too long, else quoted and cut."""
    text = str(text)
    return text if text.isprintable() and len(text) <= 4 * SHOWN_CHARS else shown(text)


def existing(path: Path, folder: bool) -> Path:
    """``path`` resolved (symlinks followed); ValueError naming the problem when it is not an
    existing folder (``folder=True``) or regular file."""
    where = f"{'folder' if folder else 'file'} {plain(path)}"
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist") from None
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise ValueError(f"{where} is a symlink loop") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where} cannot be used ({getattr(exc, 'strerror', None) or exc})") from None
    if resolved.is_dir() != folder or not (folder or resolved.is_file()):
        raise ValueError(f"{where} is not a {'folder' if folder else 'regular file'}")
    return resolved
