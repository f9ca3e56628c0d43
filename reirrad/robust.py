"""Robust evaluation under registration uncertainty: each result's worst case when the prior courses'
registration is off by up to ``radius_mm`` (and, optionally, rotated by up to ``degrees`` about the
structure's centroid).

Direction. A position is a shift ``s`` (mm) and a rotation ``R`` (a rotation vector in degrees) in
the reference course's patient frame. At that position the prior dose of a reference point ``p`` is
read at ``base(R (p - c) + c + s)``, ``base`` being the course's registered map and ``c`` the
structure's centroid (see :class:`ShiftedMap`): the reference anatomy is displaced by ``+s``
relative to the prior dose (equivalently the prior dose moves by ``-s`` over the organ). A worst
shift of (+3, 0, 0) mm therefore says: "if the organ's true position in the prior dose lies 3 mm
further along +x (patient left) than the registration puts it, the value is the worst case". Only
prior courses move; the reference course's dose and structures stay where they are, and every prior
course moves together (one registration error between the reference anatomy and the prior doses).

Search (:func:`worst_case`). 1. The registered position and the 26 directions of the 3 x 3 x 3 cube
(faces, edges, corners) normalised onto the sphere of radius R: 27 evaluations. 2. Refinement on
the sphere around the worst direction: a compass search in its tangent plane (4 neighbours at
22.5, 11.25, 5.6 and 2.8 degrees, moving to a worse neighbour at each step), then the radii R/3 and
2R/3 along the final direction (a hot spot can lie inside the sphere): 18 evaluations. When the
registered position itself is the worst of step 1, the 26 directions at R/2 are tried instead.
3. With ``degrees`` > 0: at the worst shift, rotations about the structure's centroid by
``degrees`` about the 26 cube directions (26 evaluations). Every metric reirrad judges is an upper
limit, so the worst case is the highest value found. It is the worst of the positions tried, not a
proven maximum: dose structure finer than the search spacing (about 1 mm on a 3 mm sphere after
refinement) can hide a worse position.

Evaluation (:class:`_Objective`). Only the prior courses are sampled again at each position; the
reference course's EQD2 at the samples is the verdict's own. Through a rigid or identity map each
structure's samples are mapped onto each prior dose grid once and a shift only carries them into
the neighbouring cells (:func:`_trilinear_shifted`); any other map (deformable) samples through
:class:`ShiftedMap` at each position. Dmax and hot-end Dx set aside the samples whose bound cannot
reach the registered value, without changing any step of the search (see :class:`_Objective`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from reirrad.constraints import Constraint, judge, judging
from reirrad.dvh import Dvh, evaluate, trilinear
from reirrad.eqd2 import eqd2_gy
from reirrad.errors import InputError, OptionError
from reirrad.flags import StatusChange
from reirrad.grid import inside_grid
from reirrad.mapping import PointMap, RigidMap
from reirrad.metrics import DoseAtVolume, Metric, MetricKind, VolumeUnit, parse_metric
from reirrad.results import ConstraintResult, Status

if TYPE_CHECKING:
    from reirrad.accumulate import CourseOnGrid, PhaseDose
    from reirrad.case import CaseSpec
    from reirrad.check import CheckOptions

MAX_RADIUS_MM = 20.0  # beyond this a "registration uncertainty" is a wrong registration, not an uncertainty
MAX_DEGREES = 10.0
REFINE_STEPS_DEG = (
    22.5,
    11.25,
    5.625,
    2.8125,
)  # compass steps on the sphere, halved each time
INNER_RADII = (
    1.0 / 3.0,
    2.0 / 3.0,
)  # fractions of R tried along the refined worst direction
CENTRE_RADIUS = 0.5  # fraction of R tried in the 26 directions when the registered position is the worst


@dataclass(frozen=True)
class Uncertainty:
    """A registration uncertainty: shifts up to ``radius_mm`` (mm), rotations up to ``degrees``."""

    radius_mm: float
    degrees: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius_mm) and 0.0 < self.radius_mm <= MAX_RADIUS_MM):
            raise OptionError(
                f"registration uncertainty must be more than 0 and at most {MAX_RADIUS_MM:g} mm, "
                f"got {self.radius_mm:g} mm"
            )
        if not (math.isfinite(self.degrees) and 0.0 <= self.degrees <= MAX_DEGREES):
            raise OptionError(
                f"registration uncertainty rotation must be 0 to {MAX_DEGREES:g} degrees, got {self.degrees:g}"
            )

    @property
    def text(self) -> str:
        """ "3 mm" or "3 mm and 2 degrees"."""
        return f"{self.radius_mm:g} mm" + (f" and {self.degrees:g} degrees" if self.degrees else "")


def parse_uncertainty(text: str) -> Uncertainty:
    """``"MM"`` or ``"MM,DEG"`` (the command-line form) as an :class:`Uncertainty` (OptionError when not)."""
    parts = text.split(",")
    try:
        if len(parts) > 2:
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise OptionError(f"--registration-uncertainty takes MM or MM,DEG (e.g. 3 or 3,2), got {text!r}") from None
    return Uncertainty(*values)


def check_options(options: CheckOptions) -> None:
    """Refuse (OptionError) inconsistent registration-uncertainty options of a check."""
    if options.registration_uncertainty_mm is not None:
        Uncertainty(
            options.registration_uncertainty_mm,
            options.registration_uncertainty_deg or 0.0,
        )
    elif options.registration_uncertainty_deg is not None:
        raise OptionError("a registration uncertainty rotation needs the shift too (--registration-uncertainty MM,DEG)")
    if options.conservative and (options.registration_uncertainty_mm is not None or options.robust):
        raise OptionError(
            "--conservative needs no registration uncertainty: its per-course sum is already an upper "
            "bound over every registration; drop --registration-uncertainty / --robust"
        )


def registration_uncertainty(case: CaseSpec, options: CheckOptions) -> tuple[Uncertainty | None, bool]:
    """The uncertainty a check searches (the options', else the case file's; None: none) and whether
    its verdicts use the worst case (``--robust`` or ``robust = true``)."""
    robust = options.robust or case.robust
    if options.registration_uncertainty_mm is not None:
        return Uncertainty(
            options.registration_uncertainty_mm,
            options.registration_uncertainty_deg or 0.0,
        ), robust
    if case.registration_uncertainty_mm is None:
        if robust:
            raise OptionError(
                "--robust needs a registration uncertainty: give --registration-uncertainty MM "
                "or registration_uncertainty_mm in the case file"
            )
        return None, False
    try:
        return Uncertainty(case.registration_uncertainty_mm, case.registration_uncertainty_deg or 0.0), robust
    except OptionError as exc:
        raise InputError(case.path, f"registration_uncertainty_mm / _deg: {exc}") from None


def conservative_note(assumptions: dict[str, object], case: CaseSpec) -> dict[str, object]:
    """A conservative check's assumptions, saying that a registration uncertainty the case file asks
    for is not searched (the per-course sum bounds every registration already)."""
    if case.registration_uncertainty_mm is None:
        return assumptions
    note = (
        "not searched: the conservative per-course sum is already an upper bound over every registration "
        "(the case file's registration_uncertainty_mm is ignored in conservative mode)"
    )
    return {**assumptions, "registration_uncertainty": note}


def rotation_matrix(rotation_deg: np.ndarray) -> np.ndarray:
    """The 3 x 3 rotation about the axis of ``rotation_deg`` (a rotation vector, degrees) by its length."""
    vector = np.radians(np.asarray(rotation_deg, dtype=float))
    angle = float(np.linalg.norm(vector))
    if angle == 0.0:
        return np.eye(3)
    k = vector / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * cross @ cross


@dataclass(frozen=True, eq=False)
class ShiftedMap:
    """A course's map displaced by a registration error: ``p -> base(R (p - c) + c + s)``.

    ``shift_mm`` s and ``rotation_deg`` (rotation vector, degrees; R) act in the reference frame,
    about ``centre_mm`` c (the structure's centroid). See the module docstring for the direction.
    """

    base: PointMap
    shift_mm: np.ndarray
    rotation_deg: np.ndarray = field(default_factory=lambda: np.zeros(3))
    centre_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def label(self) -> str:
        text = f"{self.base.label}, shifted by {_vector_text(self.shift_mm)} mm"
        if np.any(self.rotation_deg):
            text += f", rotated by {_vector_text(self.rotation_deg)} degrees about {_vector_text(self.centre_mm)} mm"
        return text

    @property
    def displacement(self) -> np.ndarray:
        """The 4 x 4 homogeneous matrix of ``p -> R (p - c) + c + s`` (before ``base``)."""
        return displacement_matrix(self.shift_mm, self.rotation_deg, self.centre_mm)

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        return self.base(apply_affine(self.displacement, points_mm))


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A 4 x 4 homogeneous ``matrix`` applied to points (N, 3) (einsum: a (N, 3) @ (3, 3) matmul is
    many times slower on large N)."""
    return np.einsum("ij,nj->ni", matrix[:3, :3], np.asarray(points, dtype=float)) + matrix[:3, 3]


def _vector_text(vector: Sequence[float] | np.ndarray) -> str:
    return "(" + ", ".join(f"{v:+.1f}" for v in np.asarray(vector, dtype=float)) + ")"


def cube_directions() -> np.ndarray:
    """The 26 unit vectors towards the faces, edges and corners of a cube, (26, 3)."""
    steps = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)])
    return steps / np.linalg.norm(steps, axis=1, keepdims=True)


@dataclass(frozen=True, eq=False)
class WorstCase:
    """The highest value found and where: ``shift_mm`` (3,), ``rotation_deg`` (3,); every position
    tried (M, 6: shift mm, rotation vector degrees) with its value (M,)."""

    value: float
    shift_mm: np.ndarray
    rotation_deg: np.ndarray
    positions: np.ndarray
    values: np.ndarray


class _Search:
    """Evaluations of ``value_at`` at positions (6,), each position once."""

    def __init__(self, value_at: Callable[[np.ndarray], float]):
        self.value_at = value_at
        self.seen: dict[tuple[float, ...], float] = {}

    def value(self, position: np.ndarray) -> float:
        key = tuple(np.round(np.asarray(position, dtype=float), 9).tolist())
        if key not in self.seen:
            self.seen[key] = float(self.value_at(np.array(key)))
        return self.seen[key]

    def best(self, positions: Sequence[np.ndarray]) -> tuple[np.ndarray, float]:
        """The position of highest value among ``positions`` (the first of equals)."""
        values = [self.value(p) for p in positions]
        index = int(np.argmax(values))
        return np.asarray(positions[index], dtype=float), values[index]


def _position(shift_mm: np.ndarray, rotation_deg: np.ndarray | None = None) -> np.ndarray:
    return np.concatenate([shift_mm, np.zeros(3) if rotation_deg is None else rotation_deg])


def _tangents(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``direction`` and to each other."""
    helper = np.eye(3)[int(np.argmin(np.abs(direction)))]
    first = np.cross(direction, helper)
    first /= np.linalg.norm(first)
    return first, np.cross(direction, first)


def _refine_direction(search: _Search, direction: np.ndarray, radius_mm: float) -> np.ndarray:
    """Compass search on the sphere of ``radius_mm`` around ``direction`` (unit): the worst direction."""
    best = direction
    best_value = search.value(_position(radius_mm * best))
    for step in np.radians(REFINE_STEPS_DEG):
        first, second = _tangents(best)
        candidates = [math.cos(step) * best + math.sin(step) * t for t in (first, -first, second, -second)]
        candidate, value = search.best([_position(radius_mm * c) for c in candidates])
        if value > best_value:
            best, best_value = candidate[:3] / radius_mm, value
    return best


def worst_case(
    value_at: Callable[[np.ndarray], float],
    radius_mm: float,
    degrees: float = 0.0,
    refine: bool = True,
) -> WorstCase:
    """The highest value of ``value_at`` over shifts within ``radius_mm`` (and rotations within
    ``degrees``), searched as the module docstring states.

    Parameters
    ----------
    value_at : callable
        A position (6,): shift (mm, reference frame) and rotation vector (degrees) -> the value.
    radius_mm : float
        Largest shift, mm.
    degrees : float
        Largest rotation, degrees (0: shifts only).
    refine : bool
        False: only the 27 positions of step 1 (and the rotations), for comparison.

    Returns
    -------
    WorstCase
    """
    search = _Search(value_at)
    centre = np.zeros(3)
    directions = cube_directions()
    worst, _ = search.best([_position(centre)] + [_position(radius_mm * d) for d in directions])
    shift = worst[:3]
    if refine and not np.any(shift):
        shift, _ = search.best([_position(centre)] + [_position(CENTRE_RADIUS * radius_mm * d) for d in directions])
        shift = shift[:3]
    elif refine:
        direction = _refine_direction(search, shift / radius_mm, radius_mm)
        shift, _ = search.best([_position(f * radius_mm * direction) for f in (1.0, *INNER_RADII)])
        shift = shift[:3]
    rotation = np.zeros(3)
    if degrees > 0:
        rotation = search.best([_position(shift)] + [_position(shift, degrees * d) for d in directions])[0][3:]
    keys = list(search.seen)
    return WorstCase(
        value=search.value(_position(shift, rotation)),
        shift_mm=np.asarray(shift, dtype=float),
        rotation_deg=np.asarray(rotation, dtype=float),
        positions=np.array(keys),
        values=np.array([search.seen[k] for k in keys]),
    )


# ------------------------------------------------------------------ sampling displaced prior courses


COVERED_MARGIN_VOXELS = 0.5  # a sample is covered within a phase grid's voxels, as the evaluation counts it
PRUNE_MARGIN = 0.005  # samples whose bound stays this share below the registered value are set aside
SHIFT_CHUNK = 1 << 14  # samples per step of the shifted interpolation (temporaries stay in cache)
BOUND_TOLERANCE = 1e-9  # relative: rounding allowance on the bound of the samples set aside


def displacement_matrix(shift_mm: np.ndarray, rotation_deg: np.ndarray, centre_mm: np.ndarray) -> np.ndarray:
    """The 4 x 4 homogeneous matrix of ``p -> R (p - c) + c + s`` (mm; ``rotation_deg`` a rotation vector)."""
    rotation = rotation_matrix(rotation_deg)
    centre = np.asarray(centre_mm, dtype=float)
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = centre - rotation @ centre + np.asarray(shift_mm, dtype=float)
    return out


def _affine(point_map: PointMap) -> np.ndarray | None:
    """The 4 x 4 matrix of a rigid (or identity) map, reference -> course frame; None for any other map."""
    if not isinstance(point_map, RigidMap):
        return None
    return np.eye(4) if point_map.matrix is None else np.asarray(point_map.matrix, dtype=float)


def _dose_at(dose_gy: np.ndarray, index: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Trilinear dose (Gy) at continuous indices (n, 3), 0 Gy where they lie outside the grid's voxels;
    ``covered`` (n,) is cleared there, in place."""
    inside = inside_grid(index, dose_gy.shape, COVERED_MARGIN_VOXELS)
    covered &= inside
    if inside.all():
        return trilinear(dose_gy, index)
    out = np.zeros(len(index))
    out[inside] = trilinear(dose_gy, index[inside])
    return out


def _trilinear_shifted(
    dose_gy: np.ndarray, base: np.ndarray, fraction: np.ndarray, delta: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Trilinear dose (Gy, into ``out``) at continuous indices ``cell + fraction + delta`` of ``dose_gy``,
    for samples given by their cells' flat indices ``base`` (n,) and ``fraction`` (3, n: k, j, i rows)
    in [0, 1), that keep a cell to spare on every side after the shift ``delta`` (3,, index units): a
    shift only carries each axis into the next cell, so nothing is floored or clipped, and the eight
    corners are read through views of the dose offset by each corner. Interpolates along i, then j,
    then k, as :func:`reirrad.dvh.trilinear` does (same values to rounding)."""
    flat = dose_gy.reshape(-1)
    frame, row = dose_gy.shape[1] * dose_gy.shape[2], dose_gy.shape[2]
    whole = np.floor(delta)
    part = delta - whole
    offset = int(whole @ np.array([frame, row, 1]))
    corners = [flat[o:] for o in (0, 1, row, row + 1, frame, frame + 1, frame + row, frame + row + 1)]
    for start in range(0, len(base), SHIFT_CHUNK):
        cell = base[start : start + SHIFT_CHUNK] + offset
        t = []
        for axis, stride in enumerate((frame, row, 1)):
            along = fraction[axis, start : start + SHIFT_CHUNK] + part[axis]
            carry = along >= 1.0
            along -= carry
            cell += carry * stride
            t.append(along)
        k, j, i = t
        values = [corner[cell] for corner in corners]
        near = _lerp(_lerp(values[0], values[1], i), _lerp(values[2], values[3], i), j)
        far = _lerp(_lerp(values[4], values[5], i), _lerp(values[6], values[7], i), j)
        out[start : start + SHIFT_CHUNK] = _lerp(near, far, k)
    return out


def _lerp(low: np.ndarray, high: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``low + (high - low) t``, in ``high``'s memory."""
    high -= low
    high *= t
    high += low
    return high


@dataclass(frozen=True, eq=False)
class _AffinePhase:
    """One phase of a prior course reached through an affine map: ``to_index`` (4 x 4) takes reference
    points (mm) to continuous indices of the phase's grid, ``registered`` (N, 3) are the samples there
    as registered, and ``low``, ``high`` (3,) the index box of the structure's samples that every phase
    covers as registered (of the whole structure, also when :meth:`restricted` to some samples)."""

    phase: PhaseDose
    to_index: np.ndarray
    registered: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, phase: PhaseDose, to_index: np.ndarray, registered: np.ndarray, covered: np.ndarray) -> _AffinePhase:
        box = registered[covered] if covered.any() else np.zeros((1, 3))
        return cls(phase, to_index, registered, box.min(axis=0), box.max(axis=0))

    def restricted(self, rows: np.ndarray) -> _AffinePhase:
        """The same phase over the samples ``rows`` only."""
        return dataclasses.replace(self, registered=self.registered[rows])

    @functools.cached_property
    def lattice(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For shifts: the flat index of each sample's cell (N,), its place in the cell (3, N) and how
        many whole cells it can move along any axis and keep a cell to spare (N,)."""
        cell = np.floor(self.registered)
        shape = np.array(self.phase.dose_gy.shape)
        room = np.minimum(cell, shape - 2 - cell).min(axis=1, initial=np.inf) - 1
        base = np.clip(cell, 0, shape - 1).astype(np.int64) @ np.array([shape[1] * shape[2], shape[2], 1])
        return base, np.ascontiguousarray((self.registered - cell).T), room

    def indices(self, points_mm: np.ndarray, position: np.ndarray, displacement: np.ndarray | None) -> np.ndarray:
        """The samples displaced to ``position`` as indices of the phase's grid: a shift only offsets
        the registered indices; a rotation (``displacement``, 4 x 4) maps the points again."""
        if displacement is None:
            return self.registered + self.to_index[:3, :3] @ position[:3]
        return apply_affine(self.to_index @ displacement, points_mm)

    def shifted_dose_gy(self, shift_mm: np.ndarray, covered: np.ndarray) -> np.ndarray:
        """Dose (Gy) at every sample shifted by ``shift_mm`` (:func:`_trilinear_shifted` where the sample
        keeps a cell to spare, :func:`_dose_at` elsewhere, clearing ``covered`` there)."""
        base, fraction, room = self.lattice
        delta = self.to_index[:3, :3] @ shift_mm
        fast = room >= float(np.max(np.ceil(np.abs(delta))))
        out = np.empty(len(fast))
        if fast.all():
            return _trilinear_shifted(self.phase.dose_gy, base, fraction, delta, out)
        out[fast] = _trilinear_shifted(self.phase.dose_gy, base[fast], fraction[:, fast], delta, out[fast])
        slow = np.flatnonzero(~fast)
        reached = covered[slow]
        out[slow] = _dose_at(self.phase.dose_gy, self.registered[slow] + delta, reached)
        covered[slow] = reached
        return out

    def upper_gy(self, radius_mm: float, dilations: dict) -> np.ndarray:
        """An upper bound (N,) of the phase's trilinear dose (Gy) at each sample displaced by up to
        ``radius_mm``: the highest voxel of the index box that holds every interpolation corner (the
        samples' nearest voxels, dilated by the box's half-width along each axis; the dilated doses
        are kept in ``dilations`` for the other structures)."""
        reach = radius_mm * np.linalg.norm(self.to_index[:3, :3], axis=1)  # index units per axis
        size = tuple(int(2 * (np.floor(r + 0.5) + 1) + 1) for r in reach)
        key = (id(self.phase.dose_gy), size)
        if key not in dilations:
            from scipy.ndimage import maximum_filter

            dilations[key] = maximum_filter(self.phase.dose_gy, size=size, mode="nearest")
        dilated = dilations[key]
        shape = np.array(dilated.shape)
        nearest = np.clip(np.rint(self.registered), 0, shape - 1).astype(np.intp)
        return dilated.reshape(-1)[nearest @ np.array([shape[1] * shape[2], shape[2], 1])]


@dataclass(frozen=True, eq=False)
class _Prior:
    """A prior course over one structure's samples. Affine maps (identity, rigid REG): ``phases`` hold
    the samples' indices on each phase grid, computed once; any other map (deformable): ``phases``
    None, each position goes through the evaluator's :meth:`course_samples` with a :class:`ShiftedMap`
    (which refuses a displaced structure that leaves a deformation field)."""

    course: CourseOnGrid
    phases: tuple[_AffinePhase, ...] | None
    covered: np.ndarray | None = None  # (N,) every phase grid covers the sample as registered (affine maps)

    @classmethod
    def of(cls, course: CourseOnGrid, points_mm: np.ndarray) -> _Prior:
        matrix = _affine(course.point_map)
        if matrix is None:
            return cls(course, None)
        to_index = [np.linalg.inv(phase.grid.affine) @ matrix for phase in course.phases]
        registered = [apply_affine(m, points_mm) for m in to_index]
        covered = np.ones(len(points_mm), dtype=bool)
        for index, phase in zip(registered, course.phases):
            covered &= inside_grid(index, phase.grid.shape, COVERED_MARGIN_VOXELS)
        phases = tuple(_AffinePhase.of(*args, covered) for args in zip(course.phases, to_index, registered))
        return cls(course, phases, covered)

    def restricted(self, rows: np.ndarray) -> _Prior:
        """The same course over the samples ``rows`` only (affine maps)."""
        assert self.phases is not None and self.covered is not None
        return _Prior(self.course, tuple(p.restricted(rows) for p in self.phases), self.covered[rows])


@dataclass(frozen=True, eq=False)
class _Displaced:
    """One structure's samples (reference points, mm, and the structure's centroid) and the prior
    courses displaced over them (through a map that is not affine, their physical dose at the samples
    is cached per position while the structure is evaluated). ``dilations`` holds the dilated prior doses of the bounds (shared by all
    structures)."""

    evaluator: Any
    structure: str
    points_mm: np.ndarray
    centre_mm: np.ndarray
    priors: tuple[_Prior, ...]
    dilations: dict
    cache: dict = field(default_factory=dict)

    @classmethod
    def of(cls, evaluator: Any, structure: str, dilations: dict) -> _Displaced:
        sampling = evaluator.sampling(structure)
        points = evaluator.acc.grid.to_patient(sampling.positions)
        weights = sampling.weights_cc
        centre = (weights @ points) / weights.sum() if weights.sum() > 0 else points.mean(axis=0)
        priors = tuple(_Prior.of(c, points) for c in evaluator.acc.courses if not c.is_reference)
        return cls(evaluator, structure, points, centre, priors, dilations)

    def restricted(self, rows: np.ndarray) -> _Displaced:
        """The same structure over the samples ``rows`` only (every prior course's map affine)."""
        priors = tuple(p.restricted(rows) for p in self.priors)
        return dataclasses.replace(self, points_mm=self.points_mm[rows], priors=priors, cache={})

    def physical(self, prior: _Prior, position: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Physical dose (Gy) of each phase of ``prior`` at the samples displaced to ``position`` (6,:
        shift mm, rotation vector degrees, about the centroid), and which samples every phase grid
        covers (0 Gy where not). Cached for maps that are not affine (their coverage is read again);
        an affine map's samples are cheaper to compute again than to keep for every position."""
        key = (prior.course.name, tuple(position.tolist()))
        if key in self.cache:
            return self.cache[key]
        if prior.phases is None:
            point_map = ShiftedMap(prior.course.point_map, position[:3], position[3:], self.centre_mm)
            samples = self.evaluator.course_samples(self.structure, prior.course, point_map)
            self.cache[key] = tuple(d.doses_gy for d in samples.phases), np.asarray(samples.covered, dtype=bool)
            return self.cache[key]
        covered = np.ones(len(self.points_mm), dtype=bool)
        if not np.any(position[3:]):
            return tuple(p.shifted_dose_gy(position[:3], covered) for p in prior.phases), covered
        displacement = displacement_matrix(position[:3], position[3:], self.centre_mm)
        indices = [p.indices(self.points_mm, position, displacement) for p in prior.phases]
        return tuple(_dose_at(p.phase.dose_gy, index, covered) for p, index in zip(prior.phases, indices)), covered

    def loses(self, prior: _Prior, position: np.ndarray) -> bool:
        """True when a sample ``prior`` covers as registered leaves its grids at ``position``."""
        if prior.phases is None or prior.covered is None:
            registered = self.physical(prior, np.zeros(6))[1]
            return bool(np.any(registered & ~self.physical(prior, position)[1]))
        if np.any(position[3:]):
            displacement = displacement_matrix(position[:3], position[3:], self.centre_mm)
            points = self.points_mm[prior.covered]
            indices = [apply_affine(p.to_index @ displacement, points) for p in prior.phases]
        else:  # a shift offsets every index alike: the box of the covered samples decides
            indices = [np.array([p.low, p.high]) + p.to_index[:3, :3] @ position[:3] for p in prior.phases]
        return not all(
            inside_grid(index, p.phase.dose_gy.shape, COVERED_MARGIN_VOXELS).all()
            for index, p in zip(indices, prior.phases)
        )

    def prior_upper_gy(self, prior: _Prior, alpha_beta_gy: float, radius_mm: float) -> np.ndarray | None:
        """An upper bound (N,) of ``prior``'s EQD2 (Gy, phases added) at each sample displaced by up
        to ``radius_mm`` (EQD2 rises with the physical dose); None when its map is not affine."""
        if prior.phases is None:
            return None
        lql = self.evaluator.lql_transition_gy
        upper = np.zeros(len(self.points_mm))
        for p in prior.phases:
            upper += eqd2_gy(p.upper_gy(radius_mm, self.dilations), p.phase.fractions, alpha_beta_gy, lql)
        return upper

    def reach_mm(self, uncertainty: Uncertainty) -> float:
        """How far (mm) any sample moves at any searched position: the shift, plus the rotation's
        arc at the sample farthest from the centroid."""
        farthest = (
            float(np.max(np.linalg.norm(self.points_mm - self.centre_mm, axis=1))) if len(self.points_mm) else 0.0
        )
        return uncertainty.radius_mm + math.radians(uncertainty.degrees) * farthest


def _hot_end_volume_cc(metric: Metric, dvh: Dvh) -> float | None:
    """The volume (cm3) of a metric set by the hottest samples alone (Dmax: 0; Dx in cm3 or % from the
    hot end, as :func:`reirrad.dvh.evaluate` takes it); None for any other metric."""
    if metric.kind is MetricKind.DMAX:
        return 0.0
    if not isinstance(metric, DoseAtVolume):
        return None
    volume = metric.volume if metric.volume_unit is VolumeUnit.CC else metric.volume / 100.0 * dvh.in_grid_volume_cc
    return volume if volume <= dvh.in_grid_volume_cc / 2.0 else None


@dataclass(frozen=True, eq=False)
class _Objective:
    """A constraint's metric of the cumulative EQD2 (Gy) at one structure's samples, the prior courses
    displaced to a position (6,): :func:`worst_case`'s ``value_at``. ``fixed`` is the reference
    course's EQD2 (it does not move), ``keep`` each prior course's weight (1 - r when discounted);
    ``lost`` collects the prior courses whose grids lose a sample they cover as registered.

    Metrics of the hottest samples (Dmax, Dx from the hot end) may set aside (:meth:`pruned`) the
    samples whose bound at every searched position stays below the registered value: the value from
    the samples kept (``kept``, their reference EQD2 ``kept_fixed``) is taken when it provably equals
    the value from every sample (the samples it uses are hotter than the bound ``set_aside_gy`` of
    those set aside) or when both lie below the registered value ``registered_gy`` (no step of the
    search goes there); otherwise every sample is evaluated. The search therefore takes the same
    steps and finds the same worst case.
    """

    moved: _Displaced
    metric: Metric
    alpha_beta_gy: float
    fixed: Dvh
    keep: dict[str, float]
    lost: set[str] = field(default_factory=set)
    kept: _Displaced | None = None
    kept_fixed: Dvh | None = None
    set_aside_gy: float = -math.inf
    registered_gy: float = math.inf

    def __call__(self, position: np.ndarray) -> float:
        for prior in self.moved.priors:
            if self.moved.loses(prior, position):
                self.lost.add(prior.course.name)
        if self.kept is not None:
            value, bound = self._from_kept(position)
            if value is not None and bound < self.registered_gy:
                return value
        return self.full(position)

    def total(self, moved: _Displaced, fixed: Dvh, position: np.ndarray) -> np.ndarray:
        """Cumulative EQD2 (Gy) at the samples of ``moved`` (reference course EQD2 ``fixed``) at ``position``."""
        total = fixed.doses_gy.copy()
        lql = self.moved.evaluator.lql_transition_gy
        for prior in moved.priors:
            doses, _ = moved.physical(prior, position)
            eqd2 = np.zeros(len(total))
            for dose, phase in zip(doses, prior.course.phases):
                eqd2 += eqd2_gy(dose, phase.fractions, self.alpha_beta_gy, lql)
            total += self.keep[prior.course.name] * eqd2
        return total

    def full(self, position: np.ndarray) -> float:
        """The metric from every sample at ``position`` (-inf when it cannot be evaluated)."""
        total = self.total(self.moved, self.fixed, position)
        value = evaluate(dataclasses.replace(self.fixed, doses_gy=total), self.metric).value
        return -math.inf if value is None else value

    def _from_kept(self, position: np.ndarray) -> tuple[float | None, float]:
        """The metric from the samples kept, and an upper bound of the metric from every sample where
        the two may differ (-inf: they are equal; inf: no bound)."""
        assert self.kept is not None and self.kept_fixed is not None
        total = self.total(self.kept, self.kept_fixed, position)
        found = evaluate(dataclasses.replace(self.kept_fixed, doses_gy=total), self.metric)
        if found.value is None or found.indices is None:
            return None, math.inf
        used = total[found.indices]  # hottest first: Dmax's sample, or the two a Dx interpolates between
        if used.min() > self.set_aside_gy:
            return found.value, -math.inf  # every sample set aside is colder than those the value uses
        # else the value from every sample is at most the larger of the set-aside bound and the hotter
        # sample used; or, when that one is below the bound too, the coldest weighted sample above it
        # (every sample above the bound then lies before the target volume in both orders)
        hotter = float(used[0])
        if len(used) > 1 and hotter <= self.set_aside_gy:
            above = total[(total > self.set_aside_gy) & (self.kept_fixed.weights_cc > 0)]
            hotter = float(above.min()) if len(above) else self.set_aside_gy
        return found.value, max(hotter, self.set_aside_gy)

    def pruned(self, uncertainty: Uncertainty, registered_gy: float) -> _Objective:
        """This objective with the samples set aside whose bound stays ``PRUNE_MARGIN`` below
        ``registered_gy`` (the value as registered; see the class), or itself."""
        volume_cc = _hot_end_volume_cc(self.metric, self.fixed)
        if volume_cc is None or not math.isfinite(registered_gy):
            return self
        upper = self.fixed.doses_gy.copy()
        reach_mm = self.moved.reach_mm(uncertainty)
        for prior in self.moved.priors:
            bound = self.moved.prior_upper_gy(prior, self.alpha_beta_gy, reach_mm)
            if bound is None:
                return self
            upper += self.keep[prior.course.name] * bound
        kept = upper >= registered_gy - PRUNE_MARGIN * abs(registered_gy)
        rows = np.flatnonzero(kept)
        weights = self.fixed.weights_cc[rows]
        if kept.all() or (volume_cc > 0 and float(weights.sum()) <= volume_cc + float(weights.max(initial=0.0))):
            return self  # nothing to set aside, or too little kept for a Dx to stay within the samples kept
        set_aside = float(upper[~kept].max())
        kept_fixed = Dvh(
            weights_cc=weights,
            doses_gy=self.fixed.doses_gy[rows],
            volume_cc=self.fixed.volume_cc,
            in_grid_volume_cc=self.fixed.in_grid_volume_cc,
        )
        out = dataclasses.replace(
            self,
            kept=self.moved.restricted(rows),
            kept_fixed=kept_fixed,
            set_aside_gy=set_aside + BOUND_TOLERANCE * (1.0 + abs(set_aside)),
        )
        value, differs_below = out._from_kept(np.zeros(6))  # the search's threshold: the exact value as registered
        registered = value if value is not None and differs_below == -math.inf else self.full(np.zeros(6))
        return dataclasses.replace(out, registered_gy=registered)


# ------------------------------------------------------------------ the evaluation's worst cases


@dataclass(frozen=True)
class RobustOutcome:
    """A result with its worst case, and the status change the flag reports (None: no change)."""

    result: ConstraintResult
    change: StatusChange | None


def _three(vector: np.ndarray) -> tuple[float, float, float]:
    return float(vector[0]), float(vector[1]), float(vector[2])


def _value_text(result: ConstraintResult, value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} {result.unit}"


def _where_text(found: WorstCase, uncertainty: Uncertainty) -> str:
    text = f"shift {_vector_text(found.shift_mm)} mm"
    return text + (f", rotation {_vector_text(found.rotation_deg)} degrees" if uncertainty.degrees else "")


def robust_result(
    evaluator,
    constraint: Constraint,
    result: ConstraintResult,
    moved: _Displaced,
    uncertainty: Uncertainty,
    robust: bool,
) -> RobustOutcome:
    """``result`` with its worst case under ``uncertainty``, judged on it when ``robust``.

    ``evaluator`` is the check's evaluator: its ``course_eqd2_samples``, ``recovery``,
    ``prior_recovery``, ``model`` and ``accept_partial_coverage`` give the nominal samples and how
    the verdict weighs each course; the worst case is searched on the same dose basis as the verdict.
    """
    if result.value_gy is None or result.structure is None:
        return RobustOutcome(result, None)
    recovery = evaluator.recovery(constraint.organ)
    how = judging(constraint, evaluator.model.name, evaluator.prior_recovery(recovery))
    if isinstance(how, str):
        return RobustOutcome(result, None)
    nominal = evaluator.course_eqd2_samples(result.structure, constraint.alpha_beta_gy)
    keep = {name: 1.0 - r if how.discounted else 1.0 for name, r in recovery.items()}
    reference = next(c for c in evaluator.acc.courses if c.is_reference)
    objective = _Objective(
        moved, parse_metric(constraint.metric), constraint.alpha_beta_gy, nominal[reference.name], keep
    )
    objective = objective.pruned(uncertainty, result.value_gy)
    found = worst_case(objective, uncertainty.radius_mm, uncertainty.degrees)
    lost = objective.lost
    worst = max(found.value, result.value_gy)  # the registered position is one of those searched
    notes: tuple[str, ...] = (
        f"worst case within a registration uncertainty of {uncertainty.text}: {_value_text(result, worst)} "
        f"at {_where_text(found, uncertainty)} ({len(found.values)} positions searched; "
        + ("judged on the worst case)" if robust else "judged as registered)"),
    )
    if lost:
        courses = ", ".join(repr(n) for n in sorted(lost))
        lost_note = (
            f"at some searched positions part of the structure moves outside the dose grid of course(s) {courses}, "
            "which count 0 Gy there: the worst case may be underestimated"
        )
        notes += (lost_note,)
    updated = dataclasses.replace(
        result,
        worst_case_gy=worst,
        worst_shift_mm=_three(found.shift_mm),
        worst_rotation_deg=_three(found.rotation_deg) if uncertainty.degrees else None,
        notes=result.notes + notes,
    )
    if result.status in (Status.REPORT, Status.NOT_EVALUATED):
        return RobustOutcome(updated, None)
    if robust and lost and not evaluator.accept_partial_coverage:
        reason = notes[-1] + (
            " (its dose there is unknown; accept the gap as 0 Gy with --accept-partial-coverage "
            "or accept_partial_coverage = true)"
        )
        return RobustOutcome(
            dataclasses.replace(updated, status=Status.NOT_EVALUATED, reason=reason),
            None,
        )
    worst_status = Status(judge(how, worst))
    if robust:
        updated = dataclasses.replace(updated, status=worst_status)
    if worst_status == result.status:
        return RobustOutcome(updated, None)
    change = StatusChange(
        constraint_id=result.constraint_id,
        nominal_status=str(result.status),
        worst_status=str(worst_status),
        text=f"{result.organ} ({result.structure}) {result.metric} {_value_text(result, result.value_gy)} as "
        f"registered ({result.status}), {_value_text(result, worst)} at {_where_text(found, uncertainty)} "
        f"({worst_status})",
    )
    return RobustOutcome(updated, change)


def robust_results(
    evaluator,
    constraints: Sequence[Constraint],
    results: Sequence[ConstraintResult],
    uncertainty: Uncertainty,
    robust: bool,
) -> tuple[tuple[ConstraintResult, ...], tuple[StatusChange, ...]]:
    """Every result (``results[i]`` of ``constraints[i]``) with its worst case (:func:`robust_result`),
    and the status changes in result order. Results are taken structure by structure, so each
    structure's displaced samples are computed once and dropped before the next."""
    out = list(results)
    changes: dict[int, StatusChange] = {}
    moved: _Displaced | None = None
    dilations: dict = {}  # the dilated prior doses of the bounds, shared by every structure
    for i in sorted(range(len(results)), key=lambda i: results[i].structure or ""):
        result = results[i]
        if result.structure is None or result.value_gy is None:
            continue
        if moved is None or moved.structure != result.structure:
            moved = _Displaced.of(evaluator, result.structure, dilations)
        outcome = robust_result(evaluator, constraints[i], result, moved, uncertainty, robust)
        out[i] = outcome.result
        if outcome.change is not None:
            changes[i] = outcome.change
    return tuple(out), tuple(changes[i] for i in sorted(changes))


def assumption_text(uncertainty: Uncertainty, robust: bool) -> str:
    """The assumptions entry of a check with a registration uncertainty."""
    return (
        f"prior courses displaced together by up to {uncertainty.text} (rotations about each structure's "
        "centroid); searched: the registered position and 26 directions on the sphere, refined around the "
        "worst (compass search down to 2.8 degrees, then radii R/3 and 2R/3)"
        + (", then 26 rotations at the worst shift" if uncertainty.degrees else "")
        + "; the reference course does not move; "
        + ("verdicts on the worst case (robust)" if robust else "verdicts as registered, worst case shown")
    )
