"""Reading a DICOM file with pydicom and turning its failures into :class:`InputError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from reirrad.errors import InputError


def read_dataset(path: str | Path, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """Read a DICOM file, accepting files without preamble or file meta (force=True fallback)."""
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
        raise InputError(path, f"not a readable DICOM file ({exc.__class__.__name__})") from None
    if "SOPClassUID" not in ds:
        raise InputError(path, "not a DICOM file (no SOP Class UID)")
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.is_implicit_VR, ds.is_little_endian = True, True
    return ds


def require(ds: pydicom.Dataset, keyword: str, path: Path) -> Any:
    """Value of a required attribute, or an InputError naming the attribute."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise InputError(path, f"missing required attribute {keyword}")
    return value
