"""Reading a DICOM file with pydicom and turning its failures into :class:`InputError`.

:func:`read_dataset` decodes the whole file while reading it, so that nothing pydicom would
raise or warn about later surfaces as a traceback or a stray warning: every sequence is parsed and
every element value decoded, except decimal and integer strings (DS, IS) and the bulk values in
:data:`BULK_TAGS`; every declared length is checked against the bytes present (a truncated file
is refused, also when pydicom itself reads it without complaint), and pydicom's warnings and log
messages are collected instead of printed. A reader that uses only some elements names them
(:func:`used_elements`): only those are decoded (and only the sequences among them parsed), the
lengths of the others at the levels visited are still checked, and an undecodable value of an
element the reader uses is refused as before; one it does not use is left alone, except that the
item headers of an unused sequence are walked: their lengths must add up exactly to the
sequence's (a wrong length would take in the elements after it), and a sequence holding an item
of undefined length is decoded whole. DS and IS values are parsed from their bytes by
:func:`optional_numbers` (fast, silent), and every number a reader uses goes through it or its
wrappers :func:`numbers`, :func:`number`, :func:`integer`, which refuse absent, non-numeric,
non-finite and non-integer values in one line naming the attribute.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag
from pydicom.uid import UID, AllTransferSyntaxes, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from reirrad.errors import InputError

# Transfer syntax of a dataset read without file meta, from the encoding pydicom detected.
_SYNTAX_BY_ENCODING: dict[tuple[bool | None, bool | None], UID] = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}

# Elements whose values their readers convert themselves (large ones, and ContourGeometricType, one
# per contour, whose few distinct values the structure reader decodes once each); only their
# lengths are checked.
BULK_TAGS = frozenset(
    BaseTag(tag)
    for tag in (
        0x7FE00010,  # PixelData
        0x7FE00008,  # FloatPixelData
        0x7FE00009,  # DoubleFloatPixelData
        0x30060050,  # ContourData
        0x30060042,  # ContourGeometricType
        0x30040058,  # DVHData
    )
)
_BULK_KEYS = frozenset(int(tag) for tag in BULK_TAGS)  # the same as plain ints (fast set lookups)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM = (0xFFFE, 0xE000)  # (group, element) of a sequence item's header
_NUMBER_STRINGS = ("DS", "IS")  # left undecoded by read_dataset, parsed by optional_numbers

# pydicom reports these structural problems as warnings or log messages and returns what it
# read so far; any of them makes the file unusable.
_STRUCTURE_PROBLEMS = ("End of file", "Expected sequence item", "after delimiter", "Expected 4 zero bytes")


class NotDicomError(InputError):
    """The file is not DICOM at all (folder discovery skips such files)."""


class _Collect(logging.Handler):
    """Keeps the messages of the 'pydicom' logger instead of printing them."""

    def __init__(self, messages: list[str]):
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def quiet_pydicom() -> Iterator[list[str]]:
    """Collect pydicom's warnings and log messages (warning and above) instead of printing them.

    Yields the list the messages are appended to; it is complete when the block ends.
    """
    messages: list[str] = []
    logger = logging.getLogger("pydicom")
    handler, propagate = _Collect(messages), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        messages.extend(str(w.message) for w in caught)


def _name(tag: BaseTag) -> str:
    """The attribute keyword of ``tag``, or the tag itself for private and unknown ones."""
    return keyword_for_tag(tag) or str(tag)


class _HeaderWatch(io.BufferedReader):
    """A file that notes an element or item header (4 or 8 bytes) cut short by the end of the file.

    pydicom stops silently there and returns the elements read so far.
    """

    cut_header = False

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size in (4, 8) and 0 < len(data) < size:
            self.cut_header = True
        return data


def _dcmread_watched(path: Path, stop_before_pixels: bool, force: bool) -> tuple[pydicom.Dataset, bool]:
    """pydicom's reading of ``path``, and whether the file ends inside an element header."""
    with _HeaderWatch(io.FileIO(path)) as fp:
        return pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels, force=force), fp.cut_header


def _dcmread(path: Path, stop_before_pixels: bool) -> pydicom.Dataset:
    """pydicom's reading, with the force=True fallback for files without preamble or file meta."""
    try:
        ds, cut_header = _dcmread_watched(path, stop_before_pixels, force=False)
    except InvalidDicomError:
        try:
            ds, cut_header = _dcmread_watched(path, stop_before_pixels, force=True)
        except Exception as exc:
            raise NotDicomError(path, f"not a readable DICOM file ({exc.__class__.__name__})") from None
        if "SOPClassUID" not in ds:
            raise NotDicomError(path, "not a DICOM file (no SOP Class UID)") from None
    except Exception as exc:
        raise InputError(path, f"cannot read DICOM ({exc.__class__.__name__}: {exc})") from None
    if cut_header:
        raise InputError(path, "truncated: the file ends inside a data element header")
    return ds


def _vr(element: RawDataElement | pydicom.DataElement) -> str | None:
    """The element's VR, from the dictionary when the file does not say (implicit VR)."""
    if element.VR:
        return element.VR
    try:
        return dictionary_VR(element.tag)
    except KeyError:  # private or unknown tag
        return None


# The elements a reader uses: tag -> None (a value, or a sequence decoded whole) or, for a
# sequence, the elements its items use (see used_elements).
Used = Mapping[int, "Used | None"]  # keys: tags as plain ints (a BaseTag finds them too)
UsedSpec = Mapping[str, "UsedSpec | None"]


def used_elements(spec: UsedSpec) -> Used:
    """The elements a reader uses, from keywords: ``{"ROIContourSequence": {"ContourData": None}}``.

    A keyword maps to None (a value, or a sequence decoded whole) or, for a sequence, to the
    keywords its items use. Raises ValueError for a keyword pydicom does not know.
    """
    used: dict[int, Used | None] = {}
    for keyword, inner in spec.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"unknown DICOM keyword {keyword!r}")
        used[tag] = None if inner is None else used_elements(inner)  # plain int keys: fast lookups
    return used


def _items_end_where_declared(raw: RawDataElement | pydicom.DataElement, path: Path) -> bool:
    """Whether an element a reader does not use can be left unread: True unless it is a sequence of
    defined length holding an item of undefined length (it is then parsed and decoded whole).

    The item headers of such a sequence are walked (not their contents): each must be an item tag
    (FFFE,E000) and their defined lengths must add up to exactly the sequence's length, otherwise
    a wrong length would have taken the elements after it into the sequence (or cut it short),
    and the file is refused.
    """
    if not isinstance(raw, RawDataElement) or not raw.value or raw.length == _UNDEFINED_LENGTH or _vr(raw) != "SQ":
        return True
    value, order = raw.value, "<HHI" if raw.is_little_endian else ">HHI"
    end, offset = len(value), 0
    while offset + 8 <= end:
        group, element, length = struct.unpack_from(order, value, offset)
        if (group, element) != _ITEM:
            break
        if length == _UNDEFINED_LENGTH:
            return False
        offset += 8 + length
    if offset != end:
        raise InputError(
            path, f"truncated or corrupt: {_name(raw.tag)} declares {raw.length} bytes, not what its items hold"
        )
    return True


def decoded(ds: pydicom.Dataset, tag: BaseTag, path: Path) -> pydicom.DataElement:
    """The element ``tag`` of ``ds`` decoded by pydicom, or an InputError when it cannot be (call it
    inside :func:`quiet_pydicom`)."""
    try:
        return ds[tag]
    except Exception as exc:  # pydicom raises many types for undecodable values
        raise InputError(path, f"cannot decode {_name(tag)} ({exc.__class__.__name__}: {exc})") from None


def _decode_all(ds: pydicom.Dataset, path: Path, used: Used | None = None) -> None:
    """Decode every element value but DS, IS and bulk ones (recursing into sequences) and check
    every declared length; with ``used``, decode only the elements it names (see :data:`Used`)."""
    for tag, element in list(ds.items()):  # the elements as stored: no tag conversion per element
        key = int(tag)  # looked up as a plain int: no Python-level BaseTag comparison per lookup
        try:
            # a deferred value (None) is read by get_item, which pydicom decodes already
            raw = ds.get_item(tag) if isinstance(element, RawDataElement) and element.value is None else element
        except Exception as exc:
            raise InputError(path, f"cannot decode {_name(tag)} ({exc.__class__.__name__}: {exc})") from None
        if (
            isinstance(raw, RawDataElement)
            and raw.value is not None
            and raw.length != _UNDEFINED_LENGTH
            and len(raw.value) != raw.length
        ):
            raise InputError(
                path, f"truncated: {_name(tag)} declares {raw.length} bytes but the file holds {len(raw.value)}"
            )
        inner = None if used is None else used.get(key)
        if key in _BULK_KEYS or (used is not None and key not in used and _items_end_where_declared(raw, path)):
            continue
        if isinstance(raw, RawDataElement) and _vr(raw) in _NUMBER_STRINGS:
            continue
        element = decoded(ds, tag, path)
        if element.VR == "SQ":
            for item in element.value:
                _decode_all(item, path, inner)


def read_dataset(path: str | Path, stop_before_pixels: bool = False, used: Used | None = None) -> pydicom.Dataset:
    """Read and decode a DICOM file (all of it, or the ``used`` elements), accepting files without
    preamble or file meta.

    A file read without file meta gets the transfer syntax pydicom detected while parsing it.
    Raises :class:`NotDicomError` for files that are not DICOM and :class:`InputError` for
    DICOM files that cannot be read, are truncated or hold values pydicom cannot decode (of the
    ``used`` elements when given: see :func:`used_elements`). pydicom's warnings are never printed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    with quiet_pydicom() as messages:
        ds = _dcmread(path, stop_before_pixels)
        _decode_all(ds.file_meta, path)
        _decode_all(ds, path, used)
    problems = [m for m in messages if any(p in m for p in _STRUCTURE_PROBLEMS)]
    if problems:
        raise InputError(path, f"truncated or corrupt: {problems[0].splitlines()[0]}")
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = _SYNTAX_BY_ENCODING[(ds.is_implicit_VR, ds.is_little_endian)]
    if ds.file_meta.TransferSyntaxUID not in AllTransferSyntaxes:
        raise InputError(path, f"TransferSyntaxUID {ds.file_meta.TransferSyntaxUID} is not a known transfer syntax")
    return ds


def decode_dataset(ds: pydicom.Dataset, label: str | Path) -> pydicom.Dataset:
    """Decode every element of an already-read dataset, as :func:`read_dataset` decodes a file.

    For datasets given in memory (the Python API): a value pydicom cannot decode is an
    :class:`InputError` naming ``label`` (what the dataset goes by in messages) instead of a
    pydicom exception later, and pydicom's warnings are not printed. Returns ``ds``.
    """
    with quiet_pydicom():
        _decode_all(ds, Path(label))
    return ds


def require(ds: pydicom.Dataset, keyword: str, path: Path) -> Any:
    """Value of a required attribute, or an InputError naming the attribute."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise InputError(path, f"missing required attribute {keyword}")
    return value


def _is_absent(value: Any) -> bool:
    return value is None or (isinstance(value, (str, bytes, list, tuple)) and len(value) == 0)


def _value(ds: pydicom.Dataset, keyword: str) -> Any:
    """The value of ``keyword``: still-undecoded DS and IS bytes as a list of strings, else pydicom's."""
    if keyword not in ds:
        return None
    element = ds.get_item(keyword)
    if isinstance(element, RawDataElement) and _vr(element) in _NUMBER_STRINGS:
        text = (element.value or b"").decode("latin-1").strip(" \0")
        return [part.strip(" \0") for part in text.split("\\")] if text else None
    with quiet_pydicom():
        return ds[keyword].value


def _shown(value: Any) -> str:
    """A value as it would be written in the file (multiple values joined by backslashes), cut to 40 characters."""
    text = str(value) if isinstance(value, (str, bytes)) else "\\".join(str(v) for v in value)
    return repr(text[:40])


def optional_numbers(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> np.ndarray | None:
    """A numeric attribute as a finite float array, or None when absent or empty.

    ``where`` prefixes the attribute in messages (e.g. ``"beam 2 "``).
    """
    label = f"{where}{keyword}"
    try:
        value = _value(ds, keyword)
    except Exception as exc:  # a value pydicom cannot decode (datasets not read by read_dataset)
        raise InputError(path, f"{label} cannot be decoded ({exc.__class__.__name__})") from None
    if _is_absent(value):
        return None
    try:
        array = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise InputError(path, f"{label} is not numeric ({_shown(value)})") from None
    if array.ndim != 1:
        raise InputError(path, f"{label} is not a list of numbers")
    if not np.all(np.isfinite(array)):
        raise InputError(path, f"{label} is not finite ({array[~np.isfinite(array)][0]})")
    return array


def numbers(ds: pydicom.Dataset, keyword: str, path: Path, count: int | None = None, where: str = "") -> np.ndarray:
    """Values of a required numeric attribute as a finite float array (of ``count`` values if given)."""
    array = optional_numbers(ds, keyword, path, where)
    if array is None:
        raise InputError(path, f"missing required attribute {where}{keyword}")
    if count is not None and array.size != count:
        raise InputError(path, f"{where}{keyword} has {array.size} value(s), expected {count}")
    return array


def number(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> float:
    """A required single finite number."""
    return float(numbers(ds, keyword, path, 1, where)[0])


def optional_number(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> float | None:
    """A single finite number, or None when the attribute is absent or empty."""
    array = optional_numbers(ds, keyword, path, where)
    if array is not None and array.size != 1:
        raise InputError(path, f"{where}{keyword} has {array.size} values, expected 1")
    return None if array is None else float(array[0])


def optional_integer(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> int | None:
    """A single integer, or None when absent or empty; "3.5" or "x" is refused, never rounded."""
    value = optional_number(ds, keyword, path, where)
    if value is None:
        return None
    if value != round(value):
        raise InputError(path, f"{where}{keyword} is {value:g}, not an integer")
    return int(value)


def integer(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> int:
    """A required single integer."""
    value = optional_integer(ds, keyword, path, where)
    if value is None:
        raise InputError(path, f"missing required attribute {where}{keyword}")
    return value


def optional_uid(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> str | None:
    """A UID attribute, or None when absent or empty; refuses a value that is not a UID
    (digits and dots, at most 64 characters), such as a damaged byte."""
    value = str(ds.get(keyword) or "").strip(" \0")
    if not value:
        return None
    parts = value.split(".")
    if len(value) > 64 or not all(part.isdigit() and part.isascii() for part in parts):
        raise InputError(path, f"{where}{keyword} {value[:70]!r} is not a valid UID")
    return value


def uid(ds: pydicom.Dataset, keyword: str, path: Path, where: str = "") -> str:
    """A required UID attribute (see :func:`optional_uid`)."""
    value = optional_uid(ds, keyword, path, where)
    if value is None:
        raise InputError(path, f"missing required attribute {where}{keyword}")
    return value


def check_sop_class(ds: pydicom.Dataset, path: Path, sop_class_uid: str, modality: str) -> None:
    """Refuse a dataset that is neither of this SOP class nor of this modality."""
    if str(ds.get("SOPClassUID", "")) != sop_class_uid and ds.get("Modality") != modality:
        found = ds.get("Modality") or str(ds.get("SOPClassUID", "unknown SOP class"))
        raise InputError(path, f"not an {modality} file (it is {found})")
