"""Reading a DICOM file with pydicom and turning its failures into :class:`InputError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from reirrad.errors import InputError

# Transfer syntax of a dataset read without file meta, from the encoding pydicom detected.
_SYNTAX_BY_ENCODING = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


class NotDicomError(InputError):
    """The file is not DICOM at all (folder discovery skips such files)."""


def read_dataset(path: str | Path, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """Read a DICOM file, accepting files without preamble or file meta (force=True fallback).

    A file read without file meta gets the transfer syntax pydicom detected while parsing it.
    Raises :class:`NotDicomError` for files that are not DICOM and :class:`InputError` for
    DICOM files that cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass
    except Exception as exc:
        raise InputError(path, f"cannot read DICOM ({exc.__class__.__name__}: {exc})") from None
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels, force=True)
    except Exception as exc:
        raise NotDicomError(path, f"not a readable DICOM file ({exc.__class__.__name__})") from None
    if "SOPClassUID" not in ds:
        raise NotDicomError(path, "not a DICOM file (no SOP Class UID)")
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = _SYNTAX_BY_ENCODING[(ds.is_implicit_VR, ds.is_little_endian)]
    return ds


def require(ds: pydicom.Dataset, keyword: str, path: Path) -> Any:
    """Value of a required attribute, or an InputError naming the attribute."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise InputError(path, f"missing required attribute {keyword}")
    return value


def optional_float(item: pydicom.Dataset, keyword: str) -> float | None:
    """A numeric attribute as float, or None when absent or empty."""
    value = item.get(keyword)
    return None if value is None or value == "" else float(value)


def optional_int(item: pydicom.Dataset, keyword: str) -> int | None:
    """An integer attribute as int, or None when absent or empty."""
    value = item.get(keyword)
    return None if value is None or value == "" else int(value)


def check_sop_class(ds: pydicom.Dataset, path: Path, sop_class_uid: str, modality: str) -> None:
    """Refuse a dataset that is neither of this SOP class nor of this modality."""
    if str(ds.get("SOPClassUID", "")) != sop_class_uid and ds.get("Modality") != modality:
        found = ds.get("Modality") or str(ds.get("SOPClassUID", "unknown SOP class"))
        raise InputError(path, f"not an {modality} file (it is {found})")
