"""EQD2 exports: one RTDOSE converted to EQD2 (``reirrad eqd2``) and the cumulative EQD2 of a
case on the reference grid (``reirrad sum``), written as RTDOSE files.

The cumulative sum is computed in slabs of whole frames of the reference grid (at most
:data:`SLAB_VOXELS` voxels each), as :func:`reirrad.accumulate.cumulative_eqd2_at` computes it at
the slab's voxel centres: each phase's physical dose trilinear on its own grid, converted with its
own fractions, prior courses times (1 - r). A course whose map onto the reference grid is
axis-aligned (same frame or a translation, any transverse orientation) is interpolated axis by axis
(a course on the reference grid itself is copied, not interpolated); any other map samples the
voxel centres through :func:`reirrad.accumulate.phase_doses_at`. A first pass finds the maximum (it
sets DoseGridScaling, :func:`reirrad.dicom.write.grid_scaling`) and each course's coverage; a second
pass encodes each slab and writes it to the file (:func:`reirrad.dicom.write.save_dose_streamed`):
neither the sum nor its pixels are ever held for the whole grid. The written values are those of
encoding the whole-grid sum at once.

The functions take loaded objects (a :class:`~reirrad.case.CaseSpec`, not a case file): the
command line and the Python API load the case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reirrad.accumulate import (
    AccumulatedCase,
    CourseOnGrid,
    LoadedCourse,
    PhaseDose,
    fraction_source_text,
    fraction_text,
    load_courses,
    map_courses,
    phase_doses_at,
    resolve_phase,
)
from reirrad.case import CaseSpec
from reirrad.deidentify import deidentify_export
from reirrad.dicom.deformable import grid_field_notes
from reirrad.dicom.dose import read_dose
from reirrad.dicom.io import read_dataset
from reirrad.dicom.plan import read_plan
from reirrad.dicom.summation import SummationType
from reirrad.dicom.write import (
    dose_header_dataset,
    encode_pixels,
    grid_scaling,
    refuse_input_as_output,
    save_dose_streamed,
)
from reirrad.eqd2 import NO_RECOVERY, RecoveryModel, eqd2_gy, recovery_model
from reirrad.errors import Hint, InputError, Remedy
from reirrad.grid import Grid, index_map, inside_grid
from reirrad.mapping import RigidMap
from reirrad.outputs import case_inputs

SLAB_VOXELS = 1 << 16  # reference-grid voxels computed at once (whole frames; at least one frame)
_AXIS_ALIGNED_TOL = 1e-12  # index-map cross terms below this are zero (1e-9 voxel over 1000 voxels)


@dataclass(frozen=True)
class ExportSummary:
    """What an exported EQD2 file holds: where, its maximum, and the assumptions behind it."""

    path: str | Path  # as given (the CLI quotes it back)
    max_eqd2_gy: float
    description: str
    assumptions: tuple[str, ...]


def _phase_text(phase: PhaseDose) -> str:
    return f"{phase.label} {phase.fractions} fx ({fraction_source_text(phase)})"


def _model_text(lql_transition_gy: float | None) -> str:
    return "LQ" if lql_transition_gy is None else f"LQ-L above {lql_transition_gy:g} Gy/fx"


def write_eqd2_dose(
    rtdose: Path,
    alpha_beta_gy: float,
    output: str | Path,
    *,
    fractions: int | None = None,
    plan_path: Path | None = None,
    lql_transition_gy: float | None = None,
    bits: int = 32,
    accept_dose_scale: bool = False,
    override_fractions: bool = False,
    deidentify: bool = False,
) -> ExportSummary:
    """EQD2 of one RTDOSE (fractions from ``plan_path`` or ``fractions``) written as EFFECTIVE dose.

    With a plan, the dose's maximum is checked against its prescription (``accept_dose_scale``
    accepts an implausible one); ``fractions`` that disagree with the plan are refused unless
    ``override_fractions``. ``deidentify``: the file and the summary name a pseudonym
    (:mod:`reirrad.deidentify`)."""
    refuse_input_as_output(output, [rtdose] + ([plan_path] if plan_path else []))
    dose = read_dose(rtdose)
    plan = read_plan(plan_path) if plan_path is not None else None
    phase = resolve_phase(
        plan,
        [dose],
        fractions,
        Hint(Remedy.FRACTIONS, option="--fractions"),
        accept_dose_scale=accept_dose_scale,
        confirmed=override_fractions,
        given_as=f"--fractions {fractions}",
    )
    model = _model_text(lql_transition_gy)
    description = f"EQD2 a/b {alpha_beta_gy:g} Gy {model}; {_phase_text(phase)}"

    def slabs() -> Iterator[np.ndarray]:  # EQD2 of whole frames: never a second whole-grid array
        for frames in _frame_slabs(phase.grid):
            yield eqd2_gy(phase.dose_gy[frames], phase.fractions, alpha_beta_gy, lql_transition_gy)

    # EQD2 rises with the dose (one fraction count and alpha/beta for the whole grid): the EQD2 of
    # the highest dose is the highest EQD2, computed by the same operations (no first pass)
    hottest = np.asarray(phase.dose_gy.max(initial=0.0), dtype=phase.dose_gy.dtype).reshape(1)
    peak_gy = float(eqd2_gy(hottest, phase.fractions, alpha_beta_gy, lql_transition_gy)[0])
    scaling = grid_scaling(peak_gy, bits)
    header = read_dataset(rtdose, stop_before_pixels=True)
    ds = dose_header_dataset(
        np.uint32 if bits == 32 else np.uint16,
        scaling,
        phase.grid,
        header,
        dose_type="EFFECTIVE",
        summation_type=SummationType.PLAN,
        description=description,
        plan_uids=[phase.plan_uid] if phase.plan_uid else [],
    )
    assumptions = (f"alpha/beta {alpha_beta_gy:g} Gy", model, f"fractions: {fraction_text(phase)}") + phase.notes
    if deidentify:  # the file and the summary name a pseudonym (reirrad.deidentify)
        description, *notes = deidentify_export(ds, (description, *assumptions))
        assumptions = tuple(notes)
    save_dose_streamed(ds, (encode_pixels(eqd2, bits, scaling)[0] for eqd2 in slabs()), output)
    return ExportSummary(output, peak_gy, description, assumptions)


def write_cumulative_eqd2(
    case: CaseSpec,
    alpha_beta_gy: float,
    output: str | Path,
    *,
    recovery_model_name: str | None = None,
    organ: str | None = None,
    lql_transition_gy: float | None = None,
    bits: int = 32,
    deidentify: bool = False,
) -> ExportSummary:
    """Sum every course's EQD2 of a loaded case on the reference grid and write it as MULTI_PLAN.

    Parameters
    ----------
    case : CaseSpec
        The case, with its acceptances (:func:`reirrad.accumulate.accepting`).
    alpha_beta_gy : float
        alpha/beta (Gy) of every voxel.
    output : str or Path
        The RTDOSE to write (never one of the case's inputs).
    recovery_model_name : str, optional
        The recovery model discounting prior courses (default: the case's, else none).
    organ : str, optional
        The organ whose recovery applies (models defined per organ need one).
    lql_transition_gy : float, optional
        LQ-L transition dose per fraction (Gy); None: pure LQ.
    bits : {32, 16}
        Pixel data bits.
    deidentify : bool
        Write a pseudonym for the patient and map the UIDs (:mod:`reirrad.deidentify`); the
        summary's texts name the pseudonym too.

    Returns
    -------
    ExportSummary
        The file, its maximum EQD2 (Gy) and the assumptions.

    Raises
    ------
    InputError
        A model that needs an organ without one, unusable courses, or a course whose dose grid
        covers none of the reference grid.
    """
    refuse_input_as_output(output, case_inputs(case))
    model = recovery_model(recovery_model_name or case.recovery_model or NO_RECOVERY)
    if model.organs is not None and organ is None:
        raise InputError(
            case.path,
            f"recovery model {model.name!r} is defined for {', '.join(model.organs)}: give --recovery-organ",
        )
    courses = load_courses(case)
    acc = map_courses(courses, case)
    field_notes = grid_field_notes([c.point_map for c in acc.courses], acc.grid)  # deform2: folding refused
    peak_gy, outside = _first_pass(acc, alpha_beta_gy, model, organ, lql_transition_gy)
    description, assumptions = _sum_texts(acc, courses, alpha_beta_gy, model, organ, lql_transition_gy, outside)
    assumptions += field_notes  # deform2: a large volume change of a deformation field noted
    scaling = grid_scaling(peak_gy, bits)
    header = read_dataset(acc.reference_dose_path, stop_before_pixels=True)
    plan_uids = [p.plan_uid for c in acc.courses for p in c.phases if p.plan_uid]
    ds = dose_header_dataset(
        np.uint32 if bits == 32 else np.uint16,
        scaling,
        acc.grid,
        header,
        dose_type="EFFECTIVE",
        summation_type=SummationType.MULTI_PLAN,
        description=description,
        plan_uids=plan_uids,
    )
    if deidentify:  # the file and the summary name a pseudonym (reirrad.deidentify)
        description, *notes = deidentify_export(ds, (description, *assumptions))
        assumptions = tuple(notes)
    slabs = _slab_sums(acc, alpha_beta_gy, model, organ, lql_transition_gy)
    save_dose_streamed(ds, (encode_pixels(total, bits, scaling)[0] for _, total, _ in slabs), output)
    return ExportSummary(output, peak_gy, description, assumptions)


def _frame_slabs(grid: Grid) -> Iterator[slice]:
    """Slabs of whole frames of ``grid``, in order: at most :data:`SLAB_VOXELS` voxels each (at least one frame)."""
    step = max(1, SLAB_VOXELS // (grid.shape[1] * grid.shape[2]))
    for start in range(0, grid.shape[0], step):
        yield slice(start, min(start + step, grid.shape[0]))


def _frame_positions(grid: Grid, frames: slice) -> np.ndarray:
    """Continuous indices (N, 3), (k, j, i), of the voxel centres of the frames ``frames`` of ``grid``, in C order."""
    k, j, i = np.meshgrid(
        np.arange(frames.start, frames.stop), np.arange(grid.shape[1]), np.arange(grid.shape[2]), indexing="ij"
    )
    return np.column_stack([k.ravel(), j.ravel(), i.ravel()]).astype(np.float64)


def _axis_aligned_map(phase: PhaseDose, grid: Grid, course: CourseOnGrid) -> tuple[np.ndarray, np.ndarray] | None:
    """Scale and offset (3,) each, (k, j, i), with which the phase grid's continuous index along
    each axis follows from the same axis of ``grid``'s index, when the course's map is rigid and
    keeps the axes apart (same frame or a translation; any transverse orientation of either grid);
    else None. A whole-voxel shift of the same lattice is exact, as
    :func:`reirrad.accumulate.phase_indices` makes it."""
    if not isinstance(course.point_map, RigidMap):
        return None
    mapping = index_map(phase.grid, grid, course.point_map.matrix)
    linear, shift = mapping[:3, :3], mapping[:3, 3]
    scale = np.diag(linear).copy()
    if not np.allclose(linear, np.diag(scale), rtol=0.0, atol=_AXIS_ALIGNED_TOL):
        return None
    if np.allclose(scale, 1.0, rtol=0.0, atol=1e-9) and np.allclose(shift, np.rint(shift), rtol=0.0, atol=1e-9):
        return np.ones(3), np.rint(shift)
    return scale, shift


@dataclass(frozen=True)
class _Axis:
    """Where one axis of the reference grid falls on a phase grid's axis: the reference indices
    ``start`` to ``stop`` (exclusive) lie within the hull of its voxel centres
    (:func:`reirrad.grid.inside_grid`), and at those its lower neighbour and the fraction towards
    the next (None: every one on a voxel centre)."""

    start: int
    stop: int
    low: np.ndarray
    fraction: np.ndarray | None


def _axis(reference_size: int, size: int, scale: float, shift: float) -> _Axis:
    """:class:`_Axis` of a phase grid axis of ``size`` voxels whose index is ``scale * index + shift``
    of a reference axis of ``reference_size`` voxels."""
    position = np.arange(reference_size) * scale + shift
    point = np.zeros((reference_size, 3))
    point[:, 0] = position
    covered = np.flatnonzero(inside_grid(point, (size, 1, 1)))  # one run: the position is monotonic
    if not len(covered):
        return _Axis(0, 0, np.zeros(0, dtype=np.int64), None)
    start, stop = int(covered[0]), int(covered[-1]) + 1
    clipped = np.clip(position[start:stop], 0, size - 1)
    low = clipped.astype(np.int64)
    fraction = clipped - low
    return _Axis(start, stop, low, fraction if np.any(fraction) else None)


def _pick(values: np.ndarray, axis: int, index: np.ndarray) -> np.ndarray:
    """``values`` at ``index`` along ``axis``: a view when the indices run one by one, else a copy."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
        return values[(slice(None),) * axis + (slice(int(index[0]), int(index[-1]) + 1),)]
    return np.take(values, index, axis=axis)


def _interpolate_axis(values: np.ndarray, axis: int, low: np.ndarray, fraction: np.ndarray | None) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` between ``low`` and the next index, as
    :func:`reirrad.dvh.trilinear` interpolates along one axis (``values`` itself is never written)."""
    below = _pick(values, axis, low)
    if fraction is None:
        return below
    result = _pick(values, axis, np.minimum(low + 1, values.shape[axis] - 1)) - below
    shape = [1, 1, 1]
    shape[axis] = -1
    result *= fraction.reshape(shape)
    result += below
    return result


def _separable_dose(
    dose_gy: np.ndarray, axes: tuple[_Axis, _Axis, _Axis], frames: slice, plane: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Physical dose (Gy, flat) of a phase at the voxel centres of ``frames`` of the reference grid,
    interpolated along k, j, then i (:class:`_Axis` each), and where its grid covers them (0 Gy
    elsewhere): the covered part is a box."""
    shape = (frames.stop - frames.start, *plane)
    dose, inside = np.zeros(shape), np.zeros(shape, dtype=bool)
    k, j, i = axes
    start, stop = max(k.start, frames.start), min(k.stop, frames.stop)
    if start < stop and j.stop > j.start and i.stop > i.start:
        part = slice(start - k.start, stop - k.start)
        values = _interpolate_axis(dose_gy, 0, k.low[part], None if k.fraction is None else k.fraction[part])
        values = _interpolate_axis(values, 1, j.low, j.fraction)
        values = _interpolate_axis(values, 2, i.low, i.fraction)
        box = (slice(start - frames.start, stop - frames.start), slice(j.start, j.stop), slice(i.start, i.stop))
        dose[box] = values
        inside[box] = True
    return dose.reshape(-1), inside.reshape(-1)


def _course_axes(course: CourseOnGrid, grid: Grid) -> list[tuple[_Axis, _Axis, _Axis]] | None:
    """Each phase's :class:`_Axis` along k, j and i of ``grid`` when every phase's map is axis-aligned, else None."""
    axes = []
    for phase in course.phases:
        aligned = _axis_aligned_map(phase, grid, course)
        if aligned is None:
            return None
        scale, shift = aligned
        k, j, i = (_axis(grid.shape[a], phase.grid.shape[a], scale[a], shift[a]) for a in range(3))
        axes.append((k, j, i))
    return axes


def _course_doses(
    course: CourseOnGrid, axes: list[tuple[_Axis, _Axis, _Axis]] | None, grid: Grid, frames: slice
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Each phase's physical dose (Gy, flat) at the voxel centres of ``frames`` of ``grid`` and where
    every phase's grid covers them, as :func:`reirrad.accumulate.phase_doses_at` gives them:
    axis by axis along ``axes`` (:func:`_course_axes`), else sampled at the voxel centres."""
    if axes is None:
        return phase_doses_at(course.phases, grid, _frame_positions(grid, frames), course.point_map)
    plane = (grid.shape[1], grid.shape[2])
    sampled = [_separable_dose(phase.dose_gy, a, frames, plane) for phase, a in zip(course.phases, axes)]
    return tuple(dose for dose, _ in sampled), np.logical_and.reduce([inside for _, inside in sampled])


def _slab_sums(
    acc: AccumulatedCase,
    alpha_beta_gy: float,
    model: RecoveryModel,
    organ: str | None,
    lql_transition_gy: float | None,
) -> Iterator[tuple[slice, np.ndarray, list[np.ndarray]]]:
    """Per slab of whole frames: its frames, the cumulative EQD2 (Gy, shape (frames, rows, columns),
    prior courses times (1 - r)) and each course's coverage (bool, flat)."""
    factors = acc.recovery_factors(model, organ)
    axes = [_course_axes(course, acc.grid) for course in acc.courses]
    rows_columns = acc.grid.shape[1] * acc.grid.shape[2]
    for frames in _frame_slabs(acc.grid):
        total = np.zeros((frames.stop - frames.start) * rows_columns)
        covered = []
        for course, course_axes in zip(acc.courses, axes):  # one course at a time: its coverage, its (1 - r)
            keep = factors[course.name].keep if course.name in factors else 1.0
            doses, course_covered = _course_doses(course, course_axes, acc.grid, frames)
            for phase, dose in zip(course.phases, doses):
                eqd2 = eqd2_gy(dose, phase.fractions, alpha_beta_gy, lql_transition_gy)
                if keep != 1.0:
                    eqd2 *= keep
                total += eqd2
            covered.append(course_covered)
        yield frames, total.reshape(-1, *acc.grid.shape[1:]), covered


def _first_pass(
    acc: AccumulatedCase,
    alpha_beta_gy: float,
    model: RecoveryModel,
    organ: str | None,
    lql_transition_gy: float | None,
) -> tuple[float, list[int]]:
    """The maximum cumulative EQD2 (Gy) and, per course, the reference voxels its dose grid does not cover."""
    peak_gy = 0.0
    outside = [0] * len(acc.courses)
    for _, total, covered in _slab_sums(acc, alpha_beta_gy, model, organ, lql_transition_gy):
        peak_gy = max(peak_gy, float(total.max(initial=0.0)))
        outside = [n + int(np.count_nonzero(~c)) for n, c in zip(outside, covered)]
    return peak_gy, outside


def _sum_texts(
    acc: AccumulatedCase,
    courses: list[LoadedCourse],
    alpha_beta_gy: float,
    model: RecoveryModel,
    organ: str | None,
    lql_transition_gy: float | None,
    outside: list[int],
) -> tuple[str, tuple[str, ...]]:
    """The description and the assumptions of a cumulative export; InputError for a course that
    covers none of the reference grid (it would add nothing)."""
    factors = acc.recovery_factors(model, organ)
    parts = []
    assumptions = [f"alpha/beta {alpha_beta_gy:g} Gy", _model_text(lql_transition_gy)]
    assumptions += [note for c in courses for note in c.notes]
    size = acc.grid.size
    for course, not_covered in zip(acc.courses, outside):
        phases = " + ".join(_phase_text(p) for p in course.phases)
        factor = factors.get(course.name)
        recovery = "" if factor is None else f", r {factor.r:g} ({factor.model})"
        parts.append(f"{course.name}: {phases}{recovery}")
        if factor is not None:
            interval = "unknown" if factor.interval_months is None else f"{factor.interval_months:.1f} months"
            assumptions.append(
                f"{course.name}: registration {course.registration_label}; interval {interval}; "
                f"recovery model {factor.model}: r = {factor.r:g} ({factor.note})"
            )
        if not_covered == size:
            raise InputError(
                course.course.spec.path,
                f"course {course.name!r}: its dose grid ({course.registration_label}) covers none of the reference "
                "course's dose grid, so it would add nothing: check the registration or the course",
            )
        if not_covered:
            assumptions.append(
                f"{course.name}: {not_covered} of {size} reference voxels lie outside its dose grid (0 Gy there)"
            )
    description = f"EQD2 a/b {alpha_beta_gy:g} Gy; " + "; ".join(parts)
    return description, tuple(assumptions)
