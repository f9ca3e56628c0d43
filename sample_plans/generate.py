"""Deterministic head-and-neck re-irradiation phantom cases as DICOM RT (RTPLAN, RTDOSE, RTSTRUCT, REG).

Run ``python sample_plans/generate.py [--out DIR]`` (default: the folder of this script). Running it
twice gives byte-identical files: UIDs come from fixed entropy, dates are fixed, nothing is random.

Everything is analytic, so tests can compute the truth independently of reirrad's pipeline:

- organs are implicit shapes (ellipsoids, tubes, extruded 2-D profiles) defined in frame A (the
  first CT) in DICOM patient coordinates (mm, HFS: +x patient left, +y posterior, +z superior);
  a shape in another frame is the frame-A shape moved by a :class:`Rigid` transform;
- each course's physical dose (Gy) is a smooth function of the coordinates of its own frame;
- ``CASES`` holds both cases: their shapes, dose functions, fractions, dates and transforms.

Case ``hn_sbrt_reirradiation``: 70 Gy / 35 fx bilateral neck IMRT with a cord notch (frame A), then
35 Gy / 5 fx SBRT to a left neck recurrence beside the left carotid, planned on a second CT (frame
B, rotated by a few degrees and shifted); ``course2/reg.dcm`` maps frame A into frame B.
Case ``hn_conventional_reirradiation``: 70 Gy / 35 fx nasopharynx IMRT, then 60 Gy / 30 fx to a
right nasopharyngeal recurrence, both in the same frame of reference (no REG).
"""

from __future__ import annotations

import argparse
import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Protocol

import contourpy
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RTDoseStorage, RTPlanStorage, RTStructureSetStorage, SpatialRegistrationStorage

from reirrad.dicom.write import (
    Roi,
    fraction_group,
    item,
    plan_references,
    registration_sequence,
    rt_dataset,
    save_atomic,
    set_dose_pixels,
    set_file_meta,
    set_grid_geometry,
    set_structure_sets,
    structure_set_reference,
)
from reirrad.grid import Grid
from reirrad.outputs import write_text

HERE = Path(__file__).resolve().parent
ENTROPY_ROOT = "reirrad sample_plans v1"
REG_SOP_CLASS = SpatialRegistrationStorage
VOXEL_MM = 3.0  # dose grid spacing and CT slice spacing (contour planes)
MIN_CONTOUR_AREA_MM2 = 1.0  # slivers where a plane grazes a shape are not contoured


def uid(*parts: str) -> str:
    """A fixed UID derived from ``parts``: a name-based UUID as "2.25.<integer>" (PS3.5 B.2).

    (pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and is random.)
    """
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join([ENTROPY_ROOT, *parts])).int}"


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _rotation(axis: int, degrees: float) -> np.ndarray:
    """Right-handed rotation matrix about patient axis 0 (x), 1 (y) or 2 (z)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    out = np.eye(3)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


@dataclass(frozen=True)
class Rigid:
    """Rigid transform p' = R p + t between two frames of reference (mm)."""

    rotation: tuple[tuple[float, float, float], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def from_angles(cls, degrees_xyz: tuple[float, float, float], translation_mm: tuple[float, float, float]) -> Rigid:
        """Rotate about x, then y, then z (degrees), then translate (mm)."""
        r = _rotation(2, degrees_xyz[2]) @ _rotation(1, degrees_xyz[1]) @ _rotation(0, degrees_xyz[0])
        return cls(tuple(map(tuple, r.tolist())), translation_mm)

    @property
    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3] = self.rotation
        out[:3, 3] = self.translation_mm
        return out

    def apply(self, points_mm: np.ndarray) -> np.ndarray:
        """Map points (N, 3) in mm."""
        return np.asarray(points_mm, dtype=float) @ np.asarray(self.rotation).T + np.asarray(self.translation_mm)

    def inverse(self) -> Rigid:
        """The transform that undoes this one."""
        r = np.asarray(self.rotation)
        return Rigid(tuple(map(tuple, r.T.tolist())), tuple((-r.T @ np.asarray(self.translation_mm)).tolist()))


IDENTITY = Rigid()


# --------------------------------------------------------------------------------------------
# Shapes: implicit functions, negative inside, zero on the surface, roughly in mm
# --------------------------------------------------------------------------------------------


class Shape(Protocol):
    def sdf(self, points_mm: np.ndarray) -> np.ndarray: ...

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]: ...


def contains(shape: Shape, points_mm: np.ndarray) -> np.ndarray:
    """Boolean mask of the points (N, 3) inside ``shape``."""
    return shape.sdf(np.asarray(points_mm, dtype=float)) <= 0.0


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid: centre and semi-axes (mm)."""

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        scaled = (points_mm - np.asarray(self.centre_mm)) / np.asarray(self.semi_axes_mm)
        return (np.linalg.norm(scaled, axis=-1) - 1.0) * min(self.semi_axes_mm)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        c, a = np.asarray(self.centre_mm), np.asarray(self.semi_axes_mm)
        return c - a, c + a


@dataclass(frozen=True)
class Tube:
    """Points within ``radius_mm`` of a polyline (round ends)."""

    path_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        path = np.asarray(self.path_mm, dtype=float)
        best = np.full(points_mm.shape[:-1], np.inf)
        for a, b in itertools.pairwise(path):
            ab = b - a
            t = np.clip(((points_mm - a) @ ab) / (ab @ ab), 0.0, 1.0)
            best = np.minimum(best, np.linalg.norm(points_mm - a - t[..., None] * ab, axis=-1))
        return best - self.radius_mm

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        path = np.asarray(self.path_mm, dtype=float)
        return path.min(axis=0) - self.radius_mm, path.max(axis=0) + self.radius_mm


@dataclass(frozen=True)
class ArcBand:
    """Extruded band of half-width ``half_width_mm`` around a circular arc in the transverse plane.

    The arc has centre ``centre_xy_mm`` and radius ``radius_mm`` and spans polar angles
    ``angles_deg`` measured from the +y (posterior) direction towards +x; z in ``z_range_mm``.
    """

    centre_xy_mm: tuple[float, float]
    radius_mm: float
    half_width_mm: float
    angles_deg: tuple[float, float]
    z_range_mm: tuple[float, float]

    def _arc_points(self, n: int = 181) -> np.ndarray:
        theta = np.radians(np.linspace(*self.angles_deg, n))
        return np.column_stack(
            [
                self.centre_xy_mm[0] + self.radius_mm * np.sin(theta),
                self.centre_xy_mm[1] + self.radius_mm * np.cos(theta),
            ]
        )

    def _distance_to_arc(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = x - self.centre_xy_mm[0], y - self.centre_xy_mm[1]
        lo, hi = np.radians(self.angles_deg)
        mid = (lo + hi) / 2
        angle = np.angle(np.exp(1j * (np.arctan2(dx, dy) - mid)))  # relative to the arc's middle, in (-pi, pi]
        on_arc = np.abs(np.hypot(dx, dy) - self.radius_mm)
        ends = self._arc_points(2)
        to_end = np.minimum(np.hypot(x - ends[0, 0], y - ends[0, 1]), np.hypot(x - ends[1, 0], y - ends[1, 1]))
        return np.where(np.abs(angle) <= (hi - lo) / 2, on_arc, to_end)

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        in_plane = self._distance_to_arc(points_mm[..., 0], points_mm[..., 1]) - self.half_width_mm
        z_lo, z_hi = self.z_range_mm
        along_z = np.abs(points_mm[..., 2] - (z_lo + z_hi) / 2) - (z_hi - z_lo) / 2
        return np.maximum(in_plane, along_z)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        arc = self._arc_points()
        lo = np.append(arc.min(axis=0) - self.half_width_mm, self.z_range_mm[0])
        hi = np.append(arc.max(axis=0) + self.half_width_mm, self.z_range_mm[1])
        return lo, hi


@dataclass(frozen=True)
class LoftedEllipse:
    """Elliptic cylinder whose centre (x, y) and semi-axes (mm) vary linearly between z keyframes."""

    z_mm: tuple[float, ...]
    centre_y_mm: tuple[float, ...]
    semi_x_mm: tuple[float, ...]
    semi_y_mm: tuple[float, ...]

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        z = points_mm[..., 2]
        cy, ax, ay = (np.interp(z, self.z_mm, v) for v in (self.centre_y_mm, self.semi_x_mm, self.semi_y_mm))
        radial = (np.hypot(points_mm[..., 0] / ax, (points_mm[..., 1] - cy) / ay) - 1.0) * np.minimum(ax, ay)
        along_z = np.abs(z - (self.z_mm[0] + self.z_mm[-1]) / 2) - (self.z_mm[-1] - self.z_mm[0]) / 2
        return np.maximum(radial, along_z)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        cy, ax, ay = (np.asarray(v) for v in (self.centre_y_mm, self.semi_x_mm, self.semi_y_mm))
        lo = np.array([-ax.max(), (cy - ay).min(), self.z_mm[0]])
        hi = np.array([ax.max(), (cy + ay).max(), self.z_mm[-1]])
        return lo, hi


@dataclass(frozen=True)
class Union:
    """Points inside any of ``parts``."""

    parts: tuple[Shape, ...]

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        return np.min([p.sdf(points_mm) for p in self.parts], axis=0)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        lows, highs = zip(*(p.bounds_mm() for p in self.parts))
        return np.min(lows, axis=0), np.max(highs, axis=0)


@dataclass(frozen=True)
class Difference:
    """Points inside ``keep`` and outside ``remove``."""

    keep: Shape
    remove: Shape

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        return np.maximum(self.keep.sdf(points_mm), -self.remove.sdf(points_mm))

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        return self.keep.bounds_mm()


@dataclass(frozen=True)
class Moved:
    """``shape`` carried by ``transform`` into another frame."""

    shape: Shape
    transform: Rigid

    def sdf(self, points_mm: np.ndarray) -> np.ndarray:
        back = self.transform.inverse().apply(points_mm.reshape(-1, 3)).reshape(points_mm.shape)
        return self.shape.sdf(back)

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.shape.bounds_mm()
        corners = np.array([[(lo, hi)[a][0], (lo, hi)[b][1], (lo, hi)[c][2]] for a, b, c in np.ndindex(2, 2, 2)])
        moved = self.transform.apply(corners)
        return moved.min(axis=0), moved.max(axis=0)


def sphere(centre_mm: tuple[float, float, float], radius_mm: float) -> Ellipsoid:
    """A sphere as an ellipsoid with equal semi-axes."""
    return Ellipsoid(centre_mm, (radius_mm,) * 3)


def _mirror(path: tuple[tuple[float, float, float], ...]) -> tuple[tuple[float, float, float], ...]:
    return tuple((-x, y, z) for x, y, z in path)


# Frame-A anatomy of the phantom patient (mm). Cervical cord follows a gentle lordosis.
CORD_PATH = ((0.0, 36.0, -96.0), (0.0, 32.0, -40.0), (0.0, 34.0, 10.0), (0.0, 30.0, 38.0))
CAROTID_L_PATH = ((22.0, -2.0, -92.0), (23.9, 0.3, -30.0), (26.0, 4.0, 0.0), (28.0, 10.0, 30.0), (30.0, 14.0, 45.0))
PLEXUS_L_PATH = ((20.0, 30.0, -60.0), (38.0, 25.0, -75.0), (50.0, 15.0, -88.0))
OPTIC_NERVE_L_PATH = ((7.0, -16.0, 92.0), (18.0, -50.0, 88.0))

ORGANS_A: dict[str, Shape] = {
    "body": LoftedEllipse(
        z_mm=(-99.0, -30.0, -5.0, 30.0, 102.0),
        centre_y_mm=(14.0, 10.0, 2.0, 2.0, 4.0),
        semi_x_mm=(62.0, 60.0, 64.0, 74.0, 72.0),
        semi_y_mm=(60.0, 64.0, 74.0, 84.0, 84.0),
    ),
    "cord": Tube(CORD_PATH, 5.0),
    "cord_prv5": Tube(CORD_PATH, 10.0),
    "brainstem": Ellipsoid((0.0, 26.0, 62.0), (14.0, 14.0, 22.0)),
    "chiasm": Ellipsoid((0.0, -12.0, 92.0), (9.0, 5.0, 3.0)),
    "optic_nerve_l": Tube(OPTIC_NERVE_L_PATH, 2.5),
    "optic_nerve_r": Tube(_mirror(OPTIC_NERVE_L_PATH), 2.5),
    "temporal_lobe_l": Ellipsoid((42.0, 0.0, 72.0), (17.0, 32.0, 22.0)),
    "temporal_lobe_r": Ellipsoid((-42.0, 0.0, 72.0), (17.0, 32.0, 22.0)),
    "cochlea_l": sphere((30.0, 24.0, 54.0), 3.0),
    "cochlea_r": sphere((-30.0, 24.0, 54.0), 3.0),
    "parotid_l": Ellipsoid((46.0, 0.0, 22.0), (12.0, 20.0, 20.0)),
    "parotid_r": Ellipsoid((-46.0, 0.0, 22.0), (12.0, 20.0, 20.0)),
    "mandible": Union(
        (
            ArcBand((0.0, -8.0), 48.0, 5.0, (95.0, 265.0), (-14.0, -2.0)),
            Tube(((47.8, -4.0, -8.0), (44.0, 8.0, 28.0)), 5.0),
            Tube(((-47.8, -4.0, -8.0), (-44.0, 8.0, 28.0)), 5.0),
        )
    ),
    "carotid_l": Tube(CAROTID_L_PATH, 3.5),
    "carotid_r": Tube(_mirror(CAROTID_L_PATH), 3.5),
    "larynx": Ellipsoid((0.0, -30.0, -50.0), (16.0, 14.0, 18.0)),
    "pharynx": ArcBand((0.0, -6.0), 12.0, 2.5, (-120.0, 120.0), (-60.0, 25.0)),
    "plexus_l": Tube(PLEXUS_L_PATH, 4.0),
    "plexus_r": Tube(_mirror(PLEXUS_L_PATH), 4.0),
}


# --------------------------------------------------------------------------------------------
# Planning CT phantom (Hounsfield units as a function of frame-A coordinates)
# --------------------------------------------------------------------------------------------

HU_AIR, HU_FAT, HU_SOFT, HU_BONE, HU_CORTEX = -1000.0, -90.0, 35.0, 450.0, 1200.0
_SPINE_SHIFT_Y_MM = -20.0  # vertebral bodies lie anterior (-y) of the cord
_DISC_Z_MM = (-88.0, -71.0, -55.0, -37.0, -21.0, -4.0, 13.0)  # uneven on purpose: no z-periodic optimum
CT_ANATOMY_A: dict[str, Shape] = {
    "vertebrae": Tube(tuple((x, y + _SPINE_SHIFT_Y_MM, z) for x, y, z in CORD_PATH[:3]), 9.0),
    "spinal_canal_wall": Tube(CORD_PATH[:3], 12.0),
    "skull": Ellipsoid((0.0, 6.0, 74.0), (66.0, 76.0, 52.0)),
    "brain": Ellipsoid((0.0, 6.0, 74.0), (59.0, 69.0, 45.0)),
    "airway": Union(
        (
            Tube(((0.0, -6.0, -60.0), (0.0, -6.0, 25.0)), 8.0),
            Tube(((0.0, -28.0, -99.0), (0.0, -26.0, -42.0), (0.0, -8.0, -58.0)), 6.5),
            Ellipsoid((0.0, -30.0, 38.0), (22.0, 18.0, 9.0)),  # nasal cavity / maxillary sinuses
        )
    ),
}


CT_EDGE_MM = 0.8  # width of the blurred edges (a scanner's point spread): no sharper than the voxels


def _inside(sdf_mm: np.ndarray) -> np.ndarray:
    """Smooth inside fraction (0..1) across a surface given by its signed distance (mm)."""
    return 0.5 * (1.0 - np.tanh(sdf_mm / CT_EDGE_MM))


def ct_hu(points_a_mm: np.ndarray) -> np.ndarray:
    """Hounsfield units of the phantom patient at points (..., 3) of frame A (mm).

    Air outside the body, a fat layer under the skin, soft tissue, a bony skull around the brain,
    the mandible (cortical bone), vertebral bodies with intervertebral discs at uneven heights, a
    ring of bone around the spinal canal, and air in the pharynx, trachea and nasal cavity. Edges
    are blurred over about ``CT_EDGE_MM`` so that the image does not depend on where voxels fall.
    """
    p = np.asarray(points_a_mm, dtype=float)
    body = ORGANS_A["body"].sdf(p)
    discs = np.min(np.abs(p[..., 2, None] - np.asarray(_DISC_Z_MM)), axis=-1) - 2.5
    layers = (  # (signed distance of the region, HU), painted in this order
        (-(body + 6.0), HU_SOFT),
        (np.maximum(CT_ANATOMY_A["spinal_canal_wall"].sdf(p), -(ORGANS_A["cord_prv5"].sdf(p) + 3.0)), HU_BONE),
        (np.maximum(CT_ANATOMY_A["vertebrae"].sdf(p), -discs), HU_BONE),
        (np.maximum.reduce([CT_ANATOMY_A["skull"].sdf(p), -CT_ANATOMY_A["brain"].sdf(p), 40.0 - p[..., 2]]), HU_CORTEX),
        (ORGANS_A["mandible"].sdf(p), HU_CORTEX),
        (CT_ANATOMY_A["airway"].sdf(p), HU_AIR),
        (-body, HU_AIR),
    )
    hu = np.full(p.shape[:-1], HU_FAT)
    for sdf, value in layers:
        hu += (value - hu) * _inside(sdf)
    return hu


# --------------------------------------------------------------------------------------------
# Dose models (physical dose in Gy as a function of the coordinates of the course's own frame)
# --------------------------------------------------------------------------------------------


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))


@dataclass(frozen=True)
class NeckImrtDose:
    """Smooth IMRT-like dose: an elliptic-cylinder high-dose region with a notch around the cord.

    The dose is ``peak_gy * notch * (core + halo) / norm``: ``core`` falls off over ``edge_mm``
    at the elliptic boundary and the z limits, ``halo`` (a broad, low component) over
    ``halo_edge_mm``; ``notch`` lowers the dose by ``notch_depth`` around the cord axis.
    """

    peak_gy: float
    centre_xy_mm: tuple[float, float]
    semi_xy_mm: tuple[float, float]
    z_range_mm: tuple[float, float]
    notch_depth: float
    notch_radius_mm: float = 11.0
    edge_mm: float = 6.0
    halo_fraction: float = 0.14
    halo_edge_mm: float = 22.0

    def _falloff(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, width_mm: float) -> np.ndarray:
        radius = np.hypot(
            (x - self.centre_xy_mm[0]) / self.semi_xy_mm[0], (y - self.centre_xy_mm[1]) / self.semi_xy_mm[1]
        )
        lateral = _sigmoid((1.0 - radius) * min(self.semi_xy_mm) / width_mm)
        z_lo, z_hi = self.z_range_mm
        return lateral * _sigmoid((z_hi - z) / width_mm) * _sigmoid((z - z_lo) / width_mm)

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z)))
        cord_y = np.interp(z, [p[2] for p in CORD_PATH], [p[1] for p in CORD_PATH])
        rho = np.hypot(x, y - cord_y)
        notch = 1.0 - self.notch_depth * np.exp(-((rho / self.notch_radius_mm) ** 4))
        core = self._falloff(x, y, z, self.edge_mm)
        halo = self._falloff(x, y, z, self.halo_edge_mm)
        norm = (
            1.0
            - self.halo_fraction
            + self.halo_fraction
            * self._falloff(
                np.asarray(self.centre_xy_mm[0]),
                np.asarray(self.centre_xy_mm[1]),
                np.asarray(np.mean(self.z_range_mm)),
                self.halo_edge_mm,
            )
        )
        return self.peak_gy * notch * ((1.0 - self.halo_fraction) * core + self.halo_fraction * halo) / norm


@dataclass(frozen=True)
class FocalDose:
    """Spherically symmetric dose around ``centre_mm``: peak / (1 + (r / r50)^k) (log-logistic fall-off)."""

    centre_mm: tuple[float, float, float]
    peak_gy: float
    r50_mm: float
    steepness: float

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z)))
        r = np.sqrt((x - self.centre_mm[0]) ** 2 + (y - self.centre_mm[1]) ** 2 + (z - self.centre_mm[2]) ** 2)
        return self.peak_gy / (1.0 + (r / self.r50_mm) ** self.steepness)


# --------------------------------------------------------------------------------------------
# Case specifications
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoiSpec:
    """One ROI of a structure set: the name a clinic would type, its type, colour and frame-A shape."""

    name: str
    interpreted_type: str
    color: tuple[int, int, int]
    shape: Shape
    contoured: bool = True


@dataclass(frozen=True)
class BeamSpec:
    """A treatment beam: name, gantry start and stop angles (equal for a static field), dose per fraction (Gy)."""

    name: str
    gantry_deg: float
    gantry_stop_deg: float
    dose_gy: float


@dataclass(frozen=True)
class CourseSpec:
    """One course: folder, plan facts, its frame (as a transform from frame A) and its dose model."""

    folder: str
    label: str
    prescription_gy: float
    fractions: int
    target_roi: str
    dose_gy: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # in this course's frame
    from_frame_a: Rigid
    frame_key: str
    rois: tuple[RoiSpec, ...]
    beams: tuple[BeamSpec, ...]
    isocentre_a_mm: tuple[float, float, float]
    start: date
    end: date
    technique: str
    grid_shift_xy_mm: tuple[float, float] = (0.0, 0.0)  # moves the dose grid off the default lattice

    def shape(self, name: str) -> Shape:
        """The ROI's shape in this course's own frame."""
        roi = next(r for r in self.rois if r.name == name)
        return roi.shape if self.from_frame_a == IDENTITY else Moved(roi.shape, self.from_frame_a)


@dataclass(frozen=True)
class CaseSpec:
    """A case: patient, courses (prior first) and the case-file extras."""

    folder: str
    case_id: str
    patient_name: str
    patient_id: str
    courses: tuple[CourseSpec, ...]
    new_schedule: str | None = None  # case-file ``schedule`` of the new course, e.g. "daily"


# Case 1: frame B is the second CT: a few degrees of rotation and a couch shift.
FRAME_A_TO_B = Rigid.from_angles((-2.5, 1.5, 3.0), (4.2, -18.6, 37.5))
GTV_REC_A = (18.1, 15.5, -28.0)  # left paravertebral recurrence beside the left carotid (frame A)
GTV_NPC_A = (-14.0, -4.0, 56.0)  # right nasopharyngeal recurrence (case 2, frame A)

COLORS = {
    "ORGAN": (0, 200, 255),
    "PTV": (255, 0, 0),
    "GTV": (255, 128, 0),
    "EXTERNAL": (0, 255, 0),
    "AVOIDANCE": (255, 255, 0),
    "CONTROL": (128, 128, 128),
}


def _roi(name: str, kind: str, shape: Shape, contoured: bool = True) -> RoiSpec:
    return RoiSpec(name, kind, COLORS[kind], shape, contoured)


def _organ_rois(chiasm_contoured: bool) -> tuple[RoiSpec, ...]:
    o = ORGANS_A
    return (
        _roi("BODY", "EXTERNAL", o["body"]),
        _roi("SpinalCord", "ORGAN", o["cord"]),
        _roi("SpinalCord_PRV5", "AVOIDANCE", o["cord_prv5"]),
        _roi("Brainstem", "ORGAN", o["brainstem"]),
        _roi("OpticChiasm", "ORGAN", o["chiasm"], chiasm_contoured),
        _roi("OpticNrv_L", "ORGAN", o["optic_nerve_l"]),
        _roi("OpticNrv_R", "ORGAN", o["optic_nerve_r"]),
        _roi("Lt Temporal Lobe", "ORGAN", o["temporal_lobe_l"]),
        _roi("TemporalLobe_R", "ORGAN", o["temporal_lobe_r"]),
        _roi("A_Carotid_L", "ORGAN", o["carotid_l"]),
        _roi("Carotid_R", "ORGAN", o["carotid_r"]),
        _roi("Mandible", "ORGAN", o["mandible"]),
        _roi("Parotid_L", "ORGAN", o["parotid_l"]),
        _roi("Parotid_R", "ORGAN", o["parotid_r"]),
        _roi("Larynx", "ORGAN", o["larynx"]),
        _roi("PharConst", "ORGAN", o["pharynx"]),
        _roi("Cochlea_L", "ORGAN", o["cochlea_l"]),
        _roi("Cochlea_R", "ORGAN", o["cochlea_r"]),
        _roi("BrachialPlex_L", "ORGAN", o["plexus_l"]),
        _roi("BrachialPlex_R", "ORGAN", o["plexus_r"]),
    )


def _focal_target_rois(
    gtv_name: str, ptv_name: str, centre: tuple[float, float, float], gtv_mm: float, margin_mm: float
) -> tuple[RoiSpec, ...]:
    ptv_mm = gtv_mm + margin_mm
    ring = Difference(sphere(centre, ptv_mm + 20.0), sphere(centre, ptv_mm + 5.0))
    return (
        _roi(gtv_name, "GTV", sphere(centre, gtv_mm)),
        _roi(ptv_name, "PTV", sphere(centre, ptv_mm)),
        _roi("z_ring", "CONTROL", ring),
    )


def _neck_ptv(semi_xy: tuple[float, float], centre_xy: tuple[float, float], z_range: tuple[float, float]) -> Shape:
    """Elliptic-cylinder PTV carved around the cord (the U shape of a bilateral neck plan)."""
    z_lo, z_hi = z_range
    ellipse = LoftedEllipse((z_lo, z_hi), (centre_xy[1],) * 2, (semi_xy[0],) * 2, (semi_xy[1],) * 2)
    return Difference(ellipse, Tube(CORD_PATH, 12.0))


def _imrt_beams(dose_per_fraction_gy: float, n: int = 7) -> tuple[BeamSpec, ...]:
    angles = [round(i * 360.0 / n) % 360 for i in range(n)]
    return tuple(
        BeamSpec(f"IMRT{i + 1}_G{a:03d}", float(a), float(a), round(dose_per_fraction_gy / n, 4))
        for i, a in enumerate(angles)
    )


def _arc_beams(dose_per_fraction_gy: float) -> tuple[BeamSpec, ...]:
    half = round(dose_per_fraction_gy / 2, 4)
    return (BeamSpec("ARC1_CW", 181.0, 179.0, half), BeamSpec("ARC2_CCW", 179.0, 181.0, half))


NECK_PRIOR_DOSE = NeckImrtDose(
    peak_gy=71.4, centre_xy_mm=(0.0, 2.0), semi_xy_mm=(58.0, 46.0), z_range_mm=(-72.0, 30.0), notch_depth=0.30
)
SBRT_NEW_DOSE = FocalDose(
    tuple(FRAME_A_TO_B.apply(np.array(GTV_REC_A)).tolist()), peak_gy=40.25, r50_mm=18.5, steepness=3.65
)
NPC_PRIOR_DOSE = NeckImrtDose(
    peak_gy=71.4, centre_xy_mm=(0.0, -2.0), semi_xy_mm=(60.0, 44.0), z_range_mm=(-70.0, 62.0), notch_depth=0.36
)
NPC_NEW_DOSE = FocalDose(GTV_NPC_A, peak_gy=63.0, r50_mm=30.0, steepness=6.0)

CASES: dict[str, CaseSpec] = {
    "hn_sbrt_reirradiation": CaseSpec(
        folder="hn_sbrt_reirradiation",
        case_id="HN-SBRT-REIRR-01",
        patient_name="Phantom^HN SBRT Reirradiation",
        patient_id="REIRRAD-PHANTOM-01",
        courses=(
            CourseSpec(
                folder="course1",
                label="BilatNeck70",
                prescription_gy=70.0,
                fractions=35,
                target_roi="PTV_70",
                dose_gy=NECK_PRIOR_DOSE,
                from_frame_a=IDENTITY,
                frame_key="A",
                rois=(_roi("PTV_70", "PTV", _neck_ptv((55.0, 42.0), (0.0, 2.0), (-68.0, 26.0))), *_organ_rois(True)),
                beams=_imrt_beams(2.0),
                isocentre_a_mm=(0.0, 0.0, -20.0),
                start=date(2022, 3, 21),
                end=date(2022, 5, 6),
                technique="IMRT",
            ),
            CourseSpec(
                folder="course2",
                label="SBRT_LtNeck",
                prescription_gy=35.0,
                fractions=5,
                target_roi="PTV_35",
                dose_gy=SBRT_NEW_DOSE,
                from_frame_a=FRAME_A_TO_B,
                frame_key="B",
                rois=(*_focal_target_rois("GTV_rec", "PTV_35", GTV_REC_A, 8.0, 3.0), *_organ_rois(False)),
                beams=_arc_beams(7.0),
                isocentre_a_mm=GTV_REC_A,
                start=date(2024, 1, 15),
                end=date(2024, 1, 19),
                technique="VMAT",
            ),
        ),
        new_schedule="daily",
    ),
    "hn_conventional_reirradiation": CaseSpec(
        folder="hn_conventional_reirradiation",
        case_id="HN-CONV-REIRR-02",
        patient_name="Phantom^HN Conventional Reirradiation",
        patient_id="REIRRAD-PHANTOM-02",
        courses=(
            CourseSpec(
                folder="course1",
                label="NPC70",
                prescription_gy=70.0,
                fractions=35,
                target_roi="PTV_70",
                dose_gy=NPC_PRIOR_DOSE,
                from_frame_a=IDENTITY,
                frame_key="A",
                rois=(_roi("PTV_70", "PTV", _neck_ptv((57.0, 40.0), (0.0, -2.0), (-66.0, 58.0))), *_organ_rois(True)),
                beams=_imrt_beams(2.0, 9),
                isocentre_a_mm=(0.0, -2.0, 0.0),
                start=date(2021, 5, 3),
                end=date(2021, 6, 18),
                technique="IMRT",
            ),
            CourseSpec(
                folder="course2",
                label="ReRT_NPC60",
                prescription_gy=60.0,
                fractions=30,
                target_roi="PTV_60",
                dose_gy=NPC_NEW_DOSE,
                from_frame_a=IDENTITY,
                frame_key="A",
                rois=(*_focal_target_rois("GTV_rec", "PTV_60", GTV_NPC_A, 15.0, 5.0), *_organ_rois(True)),
                beams=_imrt_beams(2.0, 9),
                isocentre_a_mm=GTV_NPC_A,
                start=date(2023, 9, 4),
                end=date(2023, 10, 13),
                technique="IMRT",
                grid_shift_xy_mm=(1.5, 1.5),
            ),
        ),
    ),
}


def prior_dose_gy(x: np.ndarray, y: np.ndarray, z: np.ndarray, case: str = "hn_sbrt_reirradiation") -> np.ndarray:
    """Physical dose (Gy) of the prior course at points of its own frame (frame A)."""
    return CASES[case].courses[0].dose_gy(x, y, z)


def new_dose_gy(x: np.ndarray, y: np.ndarray, z: np.ndarray, case: str = "hn_sbrt_reirradiation") -> np.ndarray:
    """Physical dose (Gy) of the new course at points of its own frame (frame B for the SBRT case)."""
    return CASES[case].courses[-1].dose_gy(x, y, z)


# --------------------------------------------------------------------------------------------
# Grids and contours
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisGrid:
    """Axis-aligned voxel grid of one frame: first voxel centre (mm), shape (frames, rows, columns)."""

    origin_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    spacing_mm: float = VOXEL_MM

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along x (columns), y (rows) and z (frames)."""
        nz, ny, nx = self.shape
        return tuple(o + self.spacing_mm * np.arange(n) for o, n in zip(self.origin_mm, (nx, ny, nz)))  # type: ignore[return-value]

    def as_grid(self, frame_of_reference_uid: str) -> Grid:
        """The same grid as reirrad's :class:`Grid` (HFS axes: rows along +x, columns along +y)."""
        return Grid(
            self.origin_mm,
            (1.0, 0.0, 0.0),
            (0.0, 1.0, 0.0),
            (0.0, 0.0, 1.0),
            (self.spacing_mm,) * 3,
            self.shape,
            frame_of_reference_uid,
        )


def grid_for(course: CourseSpec) -> AxisGrid:
    """A 3 mm grid in the course's frame that covers the moved BODY (and so every organ)."""
    lo, hi = Moved(ORGANS_A["body"], course.from_frame_a).bounds_mm()
    lo = np.floor((lo - 3.0) / VOXEL_MM) * VOXEL_MM
    hi = np.ceil((hi + 3.0) / VOXEL_MM) * VOXEL_MM
    shift = np.array([*course.grid_shift_xy_mm, 0.0])
    lo -= shift
    n = np.round((hi - lo) / VOXEL_MM).astype(int) + 1 + (shift != 0)
    return AxisGrid(tuple(float(v) for v in lo), (int(n[2]), int(n[1]), int(n[0])))


def _resample_closed(line: np.ndarray, step_mm: float = 2.0, min_points: int = 12, max_points: int = 64) -> np.ndarray:
    """Evenly spaced points along a closed 2-D line (first point repeated at the end or not)."""
    closed = np.vstack([line, line[:1]]) if not np.allclose(line[0], line[-1]) else line
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    n = int(np.clip(round(s[-1] / step_mm), min_points, max_points))
    t = np.arange(n) * s[-1] / n
    return np.column_stack([np.interp(t, s, closed[:, 0]), np.interp(t, s, closed[:, 1])])


def _area_mm2(xy: np.ndarray) -> float:
    """Area of a closed polygon (shoelace formula), mm2."""
    x, y = xy.T
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))) / 2.0


def contour_planes(shape: Shape, z_planes_mm: np.ndarray) -> list[np.ndarray]:
    """CLOSED_PLANAR polygons (each (N, 3), mm) of ``shape`` on transverse planes at ``z_planes_mm``."""
    lo, hi = shape.bounds_mm()
    step = float(np.clip(max(hi[:2] - lo[:2]) / 160.0, 0.4, 1.0))
    xs = np.arange(lo[0] - 2.0, hi[0] + 2.0 + step, step)
    ys = np.arange(lo[1] - 2.0, hi[1] + 2.0 + step, step)
    gx, gy = np.meshgrid(xs, ys)
    polygons = []
    for z in z_planes_mm:
        if not lo[2] - 1.0 <= z <= hi[2] + 1.0:
            continue
        values = shape.sdf(np.stack([gx, gy, np.full_like(gx, z)], axis=-1))
        if values.min() > 0:
            continue
        for line in contourpy.contour_generator(xs, ys, values, line_type="Separate").lines(0.0):
            xy = _resample_closed(np.asarray(line))
            if _area_mm2(xy) < MIN_CONTOUR_AREA_MM2:
                continue
            polygons.append(np.column_stack([xy, np.full(len(xy), z)]))
    return polygons


def dose_on_grid(course: CourseSpec, grid: AxisGrid) -> np.ndarray:
    """The course's analytic dose (Gy) at the voxel centres, shape (frames, rows, columns)."""
    x, y, z = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return course.dose_gy(xx, yy, zz)


def dose_scaling(max_gy: float) -> float:
    """DoseGridScaling (Gy per pixel unit) with 4 significant digits that keeps pixels below 65535."""
    return float(f"{max_gy / 65000.0:.4g}")


# --------------------------------------------------------------------------------------------
# DICOM construction
# --------------------------------------------------------------------------------------------


def _ds_text(value: float, digits: int = 10) -> str:
    """A DS string of at most 16 characters."""
    value = 0.0 if abs(value) < 1e-12 else float(value)
    text = f"{value:.{digits}g}"
    return text if len(text) <= 16 else f"{value:.6g}"


def _da(d: date) -> str:
    return d.strftime("%Y%m%d")


def course_uid(case: CaseSpec, course: CourseSpec, what: str) -> str:
    """The fixed UID of one object (``what``: plan, dose, structures, ...) of a course."""
    return uid(case.case_id, course.folder, what)


def _frame_uid(case: CaseSpec, course: CourseSpec) -> str:
    return uid(case.case_id, "frame", course.frame_key)


def _header(case: CaseSpec, course: CourseSpec) -> Dataset:
    """Patient and General Study modules of a course's objects (one study per course)."""
    return item(
        SpecificCharacterSet="ISO_IR 100",
        PatientName=case.patient_name,
        PatientID=case.patient_id,
        PatientBirthDate="19580704",
        PatientSex="M",
        StudyInstanceUID=uid(case.case_id, course.folder, "study"),
        StudyDate=_da(course.start),
        StudyTime="083000",
        ReferringPhysicianName="",
        StudyID=course.folder.upper(),
        AccessionNumber="",
        StudyDescription=f"{course.label} ({course.technique})",
    )


EQUIPMENT = {
    "Manufacturer": "reirrad sample_plans",
    "StationName": "PHANTOM",
    "ManufacturerModelName": "generate.py",
    "DeviceSerialNumber": "0001",
    "SoftwareVersions": "1",
}


def _base(
    case: CaseSpec,
    course: CourseSpec,
    sop_class: str,
    sop_uid: str,
    modality: str,
    series_number: int,
    description: str,
) -> Dataset:
    """Patient, General Study, Series, Frame of Reference, General Equipment and SOP Common modules."""
    return rt_dataset(
        sop_class,
        modality,
        _header(case, course),
        description=description,
        frame_of_reference_uid=_frame_uid(case, course),
        created=datetime.combine(course.start, time(9, 0)),
        sop_instance_uid=sop_uid,
        series_instance_uid=uid(case.case_id, course.folder, "series", modality),
        series_number=series_number,
        operators_name="Physicist^Phantom",
        equipment=EQUIPMENT,
    )


def build_structures(case: CaseSpec, course: CourseSpec, grid: AxisGrid) -> Dataset:
    """RTSTRUCT of the course's frame: every ROI contoured on the CT planes (the dose grid's z)."""
    ds = _base(
        case, course, RTStructureSetStorage, course_uid(case, course, "structures"), "RTSTRUCT", 2, "Structure set"
    )
    ds.StructureSetLabel = f"{course.label}_SS"
    ds.StructureSetName = course.label
    ds.StructureSetDate = _da(course.start)
    ds.StructureSetTime = "100000"
    z_planes = grid.axes_mm()[2]
    rois = [
        Roi(
            spec.name,
            contour_planes(course.shape(spec.name), z_planes) if spec.contoured else None,
            spec.interpreted_type,
            spec.color,
            "MANUAL" if spec.interpreted_type != "CONTROL" else "SEMIAUTOMATIC",
        )
        for spec in course.rois
    ]
    set_structure_sets(ds, rois, ds.FrameOfReferenceUID, number_text=lambda v: f"{v:.2f}")
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = _da(course.start)
    ds.ReviewTime = "110000"
    ds.ReviewerName = "Oncologist^Phantom"
    return ds


def build_plan(case: CaseSpec, course: CourseSpec) -> Dataset:
    """RTPLAN: prescription, one fraction group (fractions, beams with BeamDose), HFS setup, beams."""
    ds = _base(case, course, RTPlanStorage, course_uid(case, course, "plan"), "RTPLAN", 3, "Treatment plan")
    ds.RTPlanLabel = course.label
    ds.RTPlanName = course.label
    ds.RTPlanDate = _da(course.start)
    ds.RTPlanTime = "120000"
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = "CURATIVE"
    ds.ReferencedStructureSetSequence = structure_set_reference(course_uid(case, course, "structures"))
    target_number = next(i for i, r in enumerate(course.rois, start=1) if r.name == course.target_roi)
    dose_ref = item(
        DoseReferenceNumber=1,
        DoseReferenceUID=course_uid(case, course, "dose_reference"),
        DoseReferenceStructureType="VOLUME",
        DoseReferenceDescription=course.target_roi,
        ReferencedROINumber=target_number,
        DoseReferenceType="TARGET",
        DeliveryMaximumDose=_ds_text(course.prescription_gy * 1.15),
        TargetPrescriptionDose=_ds_text(course.prescription_gy),
    )
    ds.DoseReferenceSequence = Sequence([dose_ref])
    beams = [
        (n, _ds_text(b.dose_gy), _ds_text(round(b.dose_gy * 120.0, 1))) for n, b in enumerate(course.beams, start=1)
    ]
    ds.FractionGroupSequence = Sequence([fraction_group(1, course.fractions, beams, dose_reference_number=1)])
    ds.PatientSetupSequence = Sequence([item(PatientPosition="HFS", PatientSetupNumber=1, SetupTechnique="ISOCENTRIC")])
    isocentre = course.from_frame_a.apply(np.array(course.isocentre_a_mm))
    ds.BeamSequence = Sequence([_beam(i, b, isocentre) for i, b in enumerate(course.beams, start=1)])
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = _da(course.start)
    ds.ReviewTime = "130000"
    ds.ReviewerName = "Oncologist^Phantom"
    return ds


def _beam(number: int, beam: BeamSpec, isocentre_mm: np.ndarray) -> Dataset:
    rotating = beam.gantry_deg != beam.gantry_stop_deg
    jaws = (("ASYMX", ("-40", "40")), ("ASYMY", ("-50", "50")))
    first = item(
        ControlPointIndex=0,
        NominalBeamEnergy="6",
        DoseRateSet="600",
        BeamLimitingDevicePositionSequence=Sequence(
            item(RTBeamLimitingDeviceType=kind, LeafJawPositions=list(values)) for kind, values in jaws
        ),
        GantryAngle=_ds_text(beam.gantry_deg),
        GantryRotationDirection=("CW" if beam.name.endswith("_CW") else "CC") if rotating else "NONE",
        BeamLimitingDeviceAngle="0",
        BeamLimitingDeviceRotationDirection="NONE",
        PatientSupportAngle="0",
        PatientSupportRotationDirection="NONE",
        TableTopEccentricAngle="0",
        TableTopEccentricRotationDirection="NONE",
        TableTopVerticalPosition="",
        TableTopLongitudinalPosition="",
        TableTopLateralPosition="",
        IsocenterPosition=[_ds_text(round(v, 2)) for v in isocentre_mm],
        CumulativeMetersetWeight="0",
    )
    last = item(ControlPointIndex=1, CumulativeMetersetWeight="1")
    if rotating:
        last.GantryAngle = _ds_text(beam.gantry_stop_deg)
        last.GantryRotationDirection = "NONE"
    return item(
        Manufacturer="reirrad sample_plans",
        TreatmentMachineName="PhantomLinac",
        PrimaryDosimeterUnit="MU",
        SourceAxisDistance="1000",
        BeamLimitingDeviceSequence=Sequence(
            item(RTBeamLimitingDeviceType=kind, NumberOfLeafJawPairs=1) for kind, _ in jaws
        ),
        BeamNumber=number,
        BeamName=beam.name,
        BeamType="DYNAMIC" if rotating else "STATIC",
        RadiationType="PHOTON",
        TreatmentDeliveryType="TREATMENT",
        NumberOfWedges=0,
        NumberOfCompensators=0,
        NumberOfBoli=0,
        NumberOfBlocks=0,
        FinalCumulativeMetersetWeight="1",
        NumberOfControlPoints=2,
        ControlPointSequence=Sequence([first, last]),
        ReferencedPatientSetupNumber=1,
    )


def build_dose(case: CaseSpec, course: CourseSpec, grid: AxisGrid) -> Dataset:
    """RTDOSE: the analytic dose on the course grid, 16-bit unsigned, DoseSummationType PLAN."""
    ds = _base(case, course, RTDoseStorage, course_uid(case, course, "dose"), "RTDOSE", 4, "Plan dose")
    dose = dose_on_grid(course, grid)
    scaling = dose_scaling(float(dose.max()))
    ds.ContentDate = _da(course.start)
    ds.ContentTime = "140000"
    set_grid_geometry(ds, grid.as_grid(ds.FrameOfReferenceUID))
    set_dose_pixels(
        ds, np.round(dose / scaling).astype("<u2"), _ds_text(scaling), dose_type="PHYSICAL", summation_type="PLAN"
    )
    ds.DoseComment = f"{course.prescription_gy:g} Gy in {course.fractions} fractions"
    ds.ReferencedRTPlanSequence = plan_references([course_uid(case, course, "plan")])
    ds.TissueHeterogeneityCorrection = "IMAGE"
    return ds


def build_registration(case: CaseSpec, prior: CourseSpec, new: CourseSpec) -> Dataset:
    """Spatial Registration in the new frame: the prior frame's item maps prior points into it."""
    ds = _base(
        case,
        new,
        SpatialRegistrationStorage,
        course_uid(case, new, "registration"),
        "REG",
        5,
        "Rigid registration CT1 to CT2",
    )
    ds.ContentDate = _da(new.start)
    ds.ContentTime = "080000"
    ds.BodyPartExamined = "HEADNECK"  # not a paired part, so General Series needs no Laterality
    ds.ContentLabel = "CT1_TO_CT2"
    ds.ContentDescription = "Rigid registration of the prior CT onto the re-irradiation CT"
    ds.ContentCreatorName = "Physicist^Phantom"
    to_new_frame = {_frame_uid(case, new): IDENTITY.matrix, _frame_uid(case, prior): new.from_frame_a.matrix}
    ds.RegistrationSequence = registration_sequence(
        to_new_frame, type_code=("125025", "DCM", "Visual Alignment"), number_text=_ds_text
    )
    return ds


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` with the generator's file meta, atomically (reirrad's DICOM writer: temporary file
    in the same folder, then rename)."""
    set_file_meta(ds, (uid("implementation"), "REIRRAD_SAMPLES"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(ds, path)


def case_toml(case: CaseSpec) -> str:
    """The case file (design.md schema) for ``case``."""
    prior, new = case.courses
    lines = [
        f"# Generated by sample_plans/generate.py: {case.patient_name}",
        f'id = "{case.case_id}"',
        'constraints = "hn-reirradiation"',
        "",
        "[[courses]]",
        'name = "prior"',
        f'path = "{prior.folder}"',
        f"start_date = {prior.start.isoformat()}",
        f"end_date = {prior.end.isoformat()}",
        "",
        "[[courses]]",
        'name = "new"',
        f'path = "{new.folder}"',
        f"start_date = {new.start.isoformat()}",
        f"end_date = {new.end.isoformat()}",
    ]
    if new.from_frame_a != prior.from_frame_a:
        lines.append(f'registration = "{new.folder}/reg.dcm"')
    if case.new_schedule:
        lines.append(f'schedule = "{case.new_schedule}"')
    lines += ["", "[clinical]", "resection = false", "organ_dysfunction = false", ""]
    return "\n".join(lines)


@contextmanager
def _values_preformatted() -> Iterator[None]:
    """Skip pydicom's per-value checks while building: every DS here is formatted to <= 16 characters.

    Checking ~10^5 contour coordinates one by one would dominate the run time.
    """
    settings = pydicom.config.settings
    saved = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode = saved


def write_case(case: CaseSpec, out_dir: Path) -> list[Path]:
    """Write every DICOM file and the case.toml of ``case`` under ``out_dir``; return their paths."""
    with _values_preformatted():
        return _write_case(case, out_dir) + (write_ct(case, out_dir) if case.folder in CT_CASES else [])


def _write_case(case: CaseSpec, out_dir: Path) -> list[Path]:
    root = out_dir / case.folder
    written = []
    for course in case.courses:
        grid = grid_for(course)
        folder = root / course.folder
        for name, ds in (
            ("structures.dcm", build_structures(case, course, grid)),
            ("plan.dcm", build_plan(case, course)),
            ("dose.dcm", build_dose(case, course, grid)),
        ):
            _save(ds, folder / name)
            written.append(folder / name)
    prior, new = case.courses
    if new.from_frame_a != prior.from_frame_a:
        _save(build_registration(case, prior, new), root / new.folder / "reg.dcm")
        written.append(root / new.folder / "reg.dcm")
    write_text(root / "case.toml", case_toml(case))
    written.append(root / "case.toml")
    return written


# --------------------------------------------------------------------------------------------
# Planning CTs (autoreg): the phantom of ``ct_hu`` on each course's 3 mm grid, in its own frame
# --------------------------------------------------------------------------------------------

CT_FOLDER = "ct"  # below each course folder: one file per slice
CT_CASES = ("hn_sbrt_reirradiation",)  # the case whose courses lie in different frames
_CT_EQUIPMENT = ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "StationName")


def ct_hu_in_course_frame(course: CourseSpec, points_mm: np.ndarray) -> np.ndarray:
    """Phantom HU at points (..., 3) of the course's own frame (mm)."""
    back = course.from_frame_a.inverse().apply(np.asarray(points_mm, dtype=float).reshape(-1, 3))
    return ct_hu(back).reshape(np.shape(points_mm)[:-1])


def build_ct(case: CaseSpec, course: CourseSpec) -> list[Dataset]:
    """The course's planning CT: one CT Image Storage dataset per 3 mm slice of ``grid_for(course)``."""
    from reirrad.dicom.write import ct_series_datasets
    from reirrad.grid import Grid

    axis_grid = grid_for(course)
    x, y, z = axis_grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = ct_hu_in_course_frame(course, np.stack([xx, yy, zz], axis=-1))
    spacing = axis_grid.spacing_mm
    grid = Grid(
        axis_grid.origin_mm,
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (spacing, spacing, spacing),
        axis_grid.shape,
        _frame_uid(case, course),
    )
    base = _base(case, course, "", "", "CT", 4, "Planning CT (phantom)")
    slices = ct_series_datasets(
        hu, grid, base, description="Planning CT (phantom)", uid_for=lambda name: course_uid(case, course, name)
    )
    for ds in slices:  # fixed equipment texts: the files do not change with reirrad's version
        for keyword in _CT_EQUIPMENT:
            setattr(ds, keyword, base.get(keyword))
    return slices


def write_ct(case: CaseSpec, out_dir: Path) -> list[Path]:
    """Write every course's planning CT under ``<course>/ct/``; return the paths."""
    written = []
    for course in case.courses:
        for ds in build_ct(case, course):
            path = out_dir / case.folder / course.folder / CT_FOLDER / f"ct_{int(ds.InstanceNumber):03d}.dcm"
            _save(ds, path)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    args = parser.parse_args(argv)
    for case in CASES.values():
        for path in write_case(case, args.out):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
