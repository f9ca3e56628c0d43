"""RTSTRUCT -> :class:`StructureSet` of :class:`Roi` with planar contours (mm).

Every contour is kept in file order: several contours on one plane and holes are left to the
rasteriser (even-odd rule). POINT and empty ROIs are kept and marked (:attr:`Roi.is_point`,
:attr:`Roi.is_empty`). A CLOSED_PLANAR contour of one or two points makes its ROI unusable
(:attr:`Roi.problem`, the ROI counts as empty: not evaluated), not the whole file.
Refused with an InputError (the file): the required sequences (StructureSetROISequence,
ROIContourSequence, RTROIObservationsSequence) missing, an ROI without ROINumber or
ReferencedFrameOfReferenceUID, a contour without ContourData, non-numeric, non-finite or
incomplete coordinates, and a structure set that names no frame of reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from pydicom.uid import RTStructureSetStorage

from reirrad.dicom.identity import PatientIdentity, identity_of
from reirrad.dicom.io import (
    UsedSpec,
    check_sop_class,
    decoded,
    integer,
    optional_integer,
    optional_numbers,
    optional_uid,
    quiet_pydicom,
    read_dataset,
    uid,
    used_elements,
)
from reirrad.errors import InputError

RTSTRUCT_SOP_CLASS = RTStructureSetStorage
_PLANAR_TOL_MM = 1e-3
# tags of the elements read from every contour item (looked up by tag: no keyword search per contour)
_CONTOUR_DATA, _POINT_COUNT, _GEOMETRIC_TYPE = BaseTag(0x30060050), BaseTag(0x30060046), BaseTag(0x30060042)
# What structure_set_identity reads: a structure set found or named is identified with these (its
# contours are read when used, reirrad.dicom.discover.StructureSource.structures)
_IDENTITY: UsedSpec = {
    "SpecificCharacterSet": None,
    "SOPClassUID": None,
    "SOPInstanceUID": None,
    "Modality": None,
    "PatientID": None,
    "PatientBirthDate": None,
    "PatientName": None,
    "ReferencedFrameOfReferenceSequence": {"FrameOfReferenceUID": None},
    "StructureSetROISequence": {"ROINumber": None, "ROIName": None, "ReferencedFrameOfReferenceUID": None},
}
STRUCTURE_IDENTITY_ELEMENTS = used_elements(_IDENTITY)
# What structures_from_dataset reads: read_structures decodes only these (an RTSTRUCT's contour
# items also hold ContourImageSequence and more, which parsing and decoding would cost as much)
STRUCTURE_ELEMENTS = used_elements(
    {
        **_IDENTITY,
        "RTROIObservationsSequence": {"ReferencedROINumber": None, "RTROIInterpretedType": None},
        "ROIContourSequence": {
            "ReferencedROINumber": None,
            "ContourSequence": {"ContourData": None, "NumberOfContourPoints": None, "ContourGeometricType": None},
        },
    }
)


@dataclass(frozen=True, eq=False)
class Contour:
    """One contour: points (N, 3) in patient mm and its ContourGeometricType."""

    points_mm: np.ndarray
    geometric_type: str = "CLOSED_PLANAR"

    @property
    def z_mm(self) -> float:
        """Plane position (mean z of the points) in mm."""
        return float(self.points_mm[:, 2].mean())

    @property
    def is_axial(self) -> bool:
        """True when every point lies on one transverse plane (z constant within 1 micrometre)."""
        return bool(np.ptp(self.points_mm[:, 2]) <= _PLANAR_TOL_MM) if len(self.points_mm) else False


@dataclass(frozen=True, eq=False)
class Roi:
    """A region of interest: number, name, RT ROI Interpreted Type and its contours."""

    number: int
    name: str
    interpreted_type: str
    contours: tuple[Contour, ...]
    frame_of_reference_uid: str = ""  # the ROI's ReferencedFrameOfReferenceUID
    problem: str = ""  # why the ROI cannot be used (then it has no closed contours), "" when usable

    @property
    def closed_contours(self) -> tuple[Contour, ...]:
        """The CLOSED_PLANAR contours with at least three points (the ones that enclose volume);
        none when the ROI has a problem."""
        if self.problem:
            return ()
        return tuple(c for c in self.contours if c.geometric_type == "CLOSED_PLANAR" and len(c.points_mm) >= 3)

    @property
    def is_empty(self) -> bool:
        """True when no contour encloses volume (no contours, only points or lines, or a problem)."""
        return not self.closed_contours

    @property
    def empty_reason(self) -> str:
        """Why the ROI is empty ("" when it is not): its problem, a point ROI, or no closed contours."""
        if not self.is_empty:
            return ""
        return self.problem or ("a point ROI" if self.is_point else "no closed contours")

    @property
    def is_point(self) -> bool:
        """True for POINT / MARKER ROIs."""
        return self.interpreted_type in {"MARKER", "ISOCENTER", "REGISTRATION"} or (
            bool(self.contours) and all(c.geometric_type == "POINT" for c in self.contours)
        )


@dataclass(frozen=True, eq=False)
class StructureSet:
    """The ROIs of one RTSTRUCT file."""

    path: Path
    sop_instance_uid: str
    frame_of_reference_uid: str
    rois: tuple[Roi, ...]
    # the patient the file names (read with it, so that pairing needs no second read); None: not known
    patient: PatientIdentity | None = field(default=None, compare=False)

    def by_name(self, name: str) -> Roi:
        """The ROI with exactly this name (case-insensitive), or an InputError listing the names."""
        hits = [r for r in self.rois if r.name.strip().lower() == name.strip().lower()]
        if not hits:
            names = ", ".join(r.name for r in self.rois)
            raise InputError(self.path, f"no structure named {name!r} (has: {names})")
        return hits[0]

    def by_number(self, number: int) -> Roi:
        """The ROI with this ROI Number, or an InputError."""
        for roi in self.rois:
            if roi.number == number:
                return roi
        raise InputError(self.path, f"no ROI number {number}")


def _raw_numbers(item: pydicom.Dataset) -> bytes | None:
    """The still-undecoded DS value of the item's ContourData (backslash-separated decimal strings,
    as pydicom hands it over) without its padding, or None when it is absent, empty, decoded already
    or not DS (then :func:`_contour_data` decodes it and names any problem)."""
    raw = item.get_item(_CONTOUR_DATA)
    if not isinstance(raw, RawDataElement) or not raw.value or raw.VR not in ("DS", None):  # None: implicit VR, DS
        return None
    return raw.value.strip(b" \0") or None


def _finite_numbers(text: bytes) -> np.ndarray | None:
    """The backslash-separated decimal strings of ``text`` as floats, converted by numpy in one call
    (each as Python's ``float`` reads it), or None when one is not a number or not finite."""
    try:
        array = np.array(text.split(b"\\"), dtype=np.float64)
    except ValueError:
        return None
    return array if np.all(np.isfinite(array)) else None


def _contour_data(item: pydicom.Dataset, path: Path, roi_number: int) -> np.ndarray | None:
    """ContourData as floats: the undecoded DS value through :func:`_finite_numbers`; any value that
    this does not turn into finite numbers goes through :func:`optional_numbers`, which names the problem."""
    value = _raw_numbers(item)
    array = None if value is None else _finite_numbers(value)
    return array if array is not None else optional_numbers(item, "ContourData", path, f"ROI {roi_number} ")


def _declares(item: pydicom.Dataset, points: int) -> bool:
    """True when the still-undecoded NumberOfContourPoints reads exactly ``points`` (the common case,
    checked without decoding); anything else is decoded and checked by the caller."""
    raw = item.get_item(_POINT_COUNT)
    return isinstance(raw, RawDataElement) and raw.value is not None and raw.value.strip(b" \0") == b"%d" % points


def _checked_points(item: pydicom.Dataset, data: np.ndarray, path: Path, roi_number: int) -> np.ndarray:
    """A contour's coordinates as (N, 3) mm, checked for complete points and the declared count."""
    if data.size % 3:
        raise InputError(path, f"ROI {roi_number} has ContourData whose length is not a multiple of 3")
    if not _declares(item, data.size // 3):
        declared = optional_integer(item, "NumberOfContourPoints", path, f"ROI {roi_number} ")
        if declared is not None and declared != data.size // 3:
            raise InputError(
                path, f"ROI {roi_number} has a contour of {data.size // 3} points but NumberOfContourPoints {declared}"
            )
    return data.reshape(-1, 3)


def _geometric_type(item: pydicom.Dataset, path: Path, known: dict[bytes, str]) -> str:
    """The item's ContourGeometricType in upper case (CLOSED_PLANAR when absent).

    :func:`read_dataset` leaves it undecoded (one per contour): pydicom decodes each distinct CS
    value once, remembered in ``known`` (undecoded bytes -> type); a value of another VR is decoded
    where it stands, and one pydicom cannot decode is refused.
    """
    element = item.get_item(_GEOMETRIC_TYPE)
    if element is None:
        return "CLOSED_PLANAR"
    repeated = isinstance(element, RawDataElement) and element.VR in ("CS", None)  # None: implicit VR, CS
    if repeated and element.value in known:
        return known[element.value]
    with quiet_pydicom():
        text = str(decoded(item, _GEOMETRIC_TYPE, path).value).upper()
    if repeated:
        known[element.value] = text
    return text


def _contour(item: pydicom.Dataset, path: Path, roi_number: int, known: dict[bytes, str]) -> Contour:
    """One ContourSequence item, checked for complete, finite coordinates (``known``: see
    :func:`_geometric_type`)."""
    data = _contour_data(item, path, roi_number)
    if data is None:
        raise InputError(path, f"ROI {roi_number} has a contour without ContourData")
    return Contour(_checked_points(item, data, path, roi_number), _geometric_type(item, path, known))


def _contours(items: pydicom.Sequence, path: Path, roi_number: int) -> list[Contour]:
    """The contours of one ROI's ContourSequence, in file order.

    The ContourData values of all items are joined and converted by numpy in one call (the same
    values, read the same way, as item by item), then split by their lengths; when one of them is
    not undecoded DS or does not give finite numbers, the items are read one by one
    (:func:`_contour`), which refuses the first bad one with the message naming its problem.
    """
    known: dict[bytes, str] = {}
    texts = [text for text in map(_raw_numbers, items) if text is not None]
    data = _finite_numbers(b"\\".join(texts)) if texts and len(texts) == len(items) else None
    if data is None:
        return [_contour(item, path, roi_number, known) for item in items]
    ends = np.cumsum([text.count(b"\\") + 1 for text in texts])
    return [
        Contour(_checked_points(item, part, path, roi_number), _geometric_type(item, path, known))
        for item, part in zip(items, np.split(data, ends[:-1]), strict=True)
    ]


def _closed_too_short(contours: list[Contour]) -> str:
    """The problem of an ROI with a CLOSED_PLANAR contour of fewer than three points, else ""."""
    short = [(i, c) for i, c in enumerate(contours, 1) if c.geometric_type == "CLOSED_PLANAR" and len(c.points_mm) < 3]
    if not short:
        return ""
    index, contour = short[0]
    return (
        f"{len(short)} CLOSED_PLANAR contour(s) with fewer than 3 points (contour {index} has "
        f"{len(contour.points_mm)} at z = {contour.z_mm:g} mm)"
    )


def _required_sequence(ds: pydicom.Dataset, keyword: str, path: Path) -> pydicom.Sequence:
    """A sequence the RT Structure Set and ROI Contour modules require (Type 1)."""
    if keyword not in ds:
        raise InputError(path, f"missing required attribute {keyword} (an incomplete or truncated RTSTRUCT)")
    return ds[keyword].value


def _declared_rois(ds: pydicom.Dataset, path: Path) -> dict[int, tuple[str, str]]:
    """ROI number -> (name, referenced frame of reference) from StructureSetROISequence."""
    declared: dict[int, tuple[str, str]] = {}
    for item in _required_sequence(ds, "StructureSetROISequence", path):
        number = optional_integer(item, "ROINumber", path)
        if number is None:
            raise InputError(path, "a StructureSetROISequence item has no ROI Number")
        if number in declared:
            raise InputError(path, f"ROI number {number} is declared twice")
        frame = optional_uid(item, "ReferencedFrameOfReferenceUID", path, f"ROI {number} ")
        if frame is None:
            raise InputError(path, f"ROI {number} has no ReferencedFrameOfReferenceUID (required)")
        declared[number] = (str(item.get("ROIName", "")), frame)
    if not declared:
        raise InputError(path, "StructureSetROISequence declares no ROI")
    return declared


def _structure_frame_of_reference(ds: pydicom.Dataset, path: Path, declared: dict[int, tuple[str, str]]) -> str:
    """The structure set's frame of reference: ReferencedFrameOfReferenceSequence, else (the sequence
    is optional) the first ROI's ReferencedFrameOfReferenceUID (required in every ROI)."""
    sequence = ds.get("ReferencedFrameOfReferenceSequence")
    if not sequence:
        return next(ref for _, ref in declared.values())
    return uid(sequence[0], "FrameOfReferenceUID", path, "ReferencedFrameOfReferenceSequence item 1 ")


def structures_from_dataset(ds: pydicom.Dataset, path: str | Path) -> StructureSet:
    """Turn a read RTSTRUCT dataset into a :class:`StructureSet`; ``path`` is used in messages."""
    path = Path(path)
    check_sop_class(ds, path, RTSTRUCT_SOP_CLASS, "RTSTRUCT")
    declared = _declared_rois(ds, path)
    types = {
        integer(item, "ReferencedROINumber", path, "RTROIObservationsSequence "): str(
            item.get("RTROIInterpretedType", "") or ""
        ).upper()
        for item in _required_sequence(ds, "RTROIObservationsSequence", path)
    }
    contours: dict[int, list[Contour]] = {number: [] for number in declared}
    for item in _required_sequence(ds, "ROIContourSequence", path):
        number = integer(item, "ReferencedROINumber", path, "ROIContourSequence ")
        if number not in declared:
            raise InputError(path, f"ROIContourSequence refers to ROI {number}, which is not declared")
        contours[number].extend(_contours(item.get("ContourSequence", []), path, number))
    rois = tuple(
        Roi(number, name, types.get(number, ""), tuple(contours[number]), frame, _closed_too_short(contours[number]))
        for number, (name, frame) in declared.items()
    )
    frame = _structure_frame_of_reference(ds, path, declared)
    return StructureSet(path, uid(ds, "SOPInstanceUID", path), frame, rois, identity_of(ds))


def read_structures(path: str | Path) -> StructureSet:
    """Read an RTSTRUCT file. Contours keep file order; several per plane are allowed.

    Only the elements the structure set is made of (:data:`STRUCTURE_ELEMENTS`) are decoded: a
    value that cannot be decoded there is an InputError, one elsewhere in the file is not read.
    """
    return structures_from_dataset(read_dataset(path, used=STRUCTURE_ELEMENTS), path)


def structure_set_identity(ds: pydicom.Dataset, path: str | Path) -> tuple[str, str]:
    """SOPInstanceUID and frame of reference of a read RTSTRUCT dataset, without parsing its
    contours (what linking a course needs; :func:`structures_from_dataset` parses the rest)."""
    path = Path(path)
    check_sop_class(ds, path, RTSTRUCT_SOP_CLASS, "RTSTRUCT")
    return uid(ds, "SOPInstanceUID", path), _structure_frame_of_reference(ds, path, _declared_rois(ds, path))
