"""RTSTRUCT -> :class:`StructureSet` of :class:`Roi` with planar contours (mm)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reirrad.dicom.io import read_dataset
from reirrad.errors import InputError

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass(frozen=True, eq=False)
class Contour:
    """One contour: points (N, 3) in patient mm and its ContourGeometricType."""

    points_mm: np.ndarray
    geometric_type: str = "CLOSED_PLANAR"

    @property
    def z_mm(self) -> float:
        """Plane position (mean z of the points) in mm."""
        return float(self.points_mm[:, 2].mean())


@dataclass(frozen=True, eq=False)
class Roi:
    """A region of interest: number, name, RT ROI Interpreted Type and its contours."""

    number: int
    name: str
    interpreted_type: str
    contours: tuple[Contour, ...]

    @property
    def closed_contours(self) -> tuple[Contour, ...]:
        """The CLOSED_PLANAR contours with at least three points (the ones that enclose volume)."""
        return tuple(
            c for c in self.contours if c.geometric_type == "CLOSED_PLANAR" and len(c.points_mm) >= 3
        )

    @property
    def is_empty(self) -> bool:
        """True when no contour encloses volume (no contours, or only points or lines)."""
        return not self.closed_contours

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

    def by_name(self, name: str) -> Roi:
        """The ROI with exactly this name (case-insensitive), or an InputError listing the names."""
        hits = [r for r in self.rois if r.name.strip().lower() == name.strip().lower()]
        if not hits:
            names = ", ".join(r.name for r in self.rois)
            raise InputError(self.path, f"no structure named {name!r} (has: {names})")
        return hits[0]


def read_structures(path: str | Path) -> StructureSet:
    """Read an RTSTRUCT file. Contours keep file order; several per plane are allowed."""
    path = Path(path)
    ds = read_dataset(path)
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS and ds.get("Modality") != "RTSTRUCT":
        raise InputError(path, "not an RTSTRUCT file")
    names = {
        int(item.ROINumber): (str(item.get("ROIName", "")), str(item.get("ReferencedFrameOfReferenceUID", "")))
        for item in ds.get("StructureSetROISequence", [])
    }
    types = {
        int(item.ReferencedROINumber): str(item.get("RTROIInterpretedType", "") or "")
        for item in ds.get("RTROIObservationsSequence", [])
        if "ReferencedROINumber" in item
    }
    contours: dict[int, list[Contour]] = {number: [] for number in names}
    for item in ds.get("ROIContourSequence", []):
        number = int(item.get("ReferencedROINumber", -1))
        if number not in names:
            raise InputError(path, f"ROIContourSequence refers to ROI {number}, which is not declared")
        for c in item.get("ContourSequence", []):
            data = np.asarray(c.get("ContourData", []), dtype=float)
            if data.size % 3:
                raise InputError(path, f"ROI {number} has ContourData whose length is not a multiple of 3")
            contours[number].append(
                Contour(data.reshape(-1, 3), str(c.get("ContourGeometricType", "CLOSED_PLANAR")).upper())
            )
    frames = {ref for _, ref in names.values() if ref}
    for_uid = str(ds.get("ReferencedFrameOfReferenceSequence", [{}])[0].get("FrameOfReferenceUID", "")) if ds.get(
        "ReferencedFrameOfReferenceSequence"
    ) else (next(iter(frames)) if frames else "")
    rois = tuple(
        Roi(number, name, types.get(number, ""), tuple(contours[number]))
        for number, (name, _) in names.items()
    )
    return StructureSet(path, str(ds.get("SOPInstanceUID", "")), for_uid, rois)
