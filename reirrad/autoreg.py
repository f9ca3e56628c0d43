"""Automatic rigid CT-to-CT registration (SimpleITK, optional extra ``register``).

The new course's planning CT is the fixed image, the prior course's the moving one. SimpleITK
finds the transform T taking fixed (new-frame) points to moving (prior-frame) points: the
direction reirrad samples a prior dose in (:class:`reirrad.mapping.RigidMap`). A DICOM Spatial
Registration states the opposite direction (its matrix maps the registered prior frame into the
REG's own, new frame), so :attr:`AutoRegistration.matrix` is ``inv(T)``.

Method: rigid 6-degree-of-freedom Euler transform, Mattes mutual information (50 bins). Started
at the image centres, a grid search over shifts (every 10 mm, reaching 40 mm plus half the
difference of the scanned extents) on the coarsest level finds the anatomy when the scans cover
different lengths; then regular step gradient descent with steps scaled to physical shifts, over
three resolution levels (shrink 4, 2, 1; smoothing 2, 1, 0 mm; metric on a random 25, 50, 25 % of
the voxels). From a given matrix the search is
skipped. With ``bone`` the result is refined at the two finer levels on bone of the new CT only
(HU above :data:`BONE_HU`, dilated by one voxel), which keeps soft-tissue changes of the head and
neck out of the metric. The final metric is evaluated again on every voxel of the full-resolution
images, unmasked (deterministic, comparable with one threshold). A registration whose optimiser
stopped on its iteration limit, or whose final metric is above ``max_metric``, is refused; so is one
with a second optimum about as good along the cranio-caudal axis (:func:`second_optimum`: e.g. one
vertebra off, which the metric threshold does not catch).

Automatic registration is not a reviewed clinical registration: reports name it as such.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom import Dataset
from pydicom.uid import CTImageStorage

from reirrad.case import CaseSpec
from reirrad.dicom.io import NotDicomError, numbers, optional_number, read_dataset, uid
from reirrad.dicom.registration import Registration
from reirrad.errors import InputError
from reirrad.grid import Grid
from reirrad.mapping import RigidMap

if TYPE_CHECKING:  # SimpleITK is imported by the functions that need it (start-up stays light)
    import SimpleITK as sitk

    from reirrad.accumulate import LoadedCourse
    from reirrad.dicom.structures import Roi, StructureSet
    from reirrad.report.regqa import QaViews
    from reirrad.results import CheckReport

BONE_HU = 200.0  # Hounsfield units above which a voxel counts as bone for --bone
# Mattes MI as ITK reports it is the negative mutual information (nats, whole image): lower is
# better. Calibrated on the sample phantom only (not on patient CTs; set your own with --max-metric):
# registered within 1 mm it ends at -1.0 to -1.25; a body outline matched to a water cylinder (no
# anatomy in common) does not converge. The metric does NOT catch every wrong answer: a neck-only scan settled on
# the wrong vertebra (8 mm off) ends at -0.78; the second-optimum check below catches that one. Review (the QA
# picture) remains the check.
DEFAULT_MAX_METRIC = -0.5
# Initial shift search around the centres' alignment: along each axis +/- (margin + half the
# difference of the scanned extents), in steps of SEARCH_STEP_MM.
SEARCH_MARGIN_MM, SEARCH_STEP_MM = 40.0, 10.0
# Second-optimum (ambiguity) check, see second_optimum(): z shifts within +/- range in steps; a local minimum
# further than EXCLUDE from the result with a metric at least FRACTION of the result's refuses it. Calibrated
# on the phantom set: the five correct registrations show no other local minimum within 40 mm; one started a
# vertebra off (8 mm wrong, MI -0.78) shows one 8 mm away at MI -0.85 against -0.75.
AMBIGUITY_RANGE_MM, AMBIGUITY_STEP_MM, AMBIGUITY_EXCLUDE_MM, AMBIGUITY_FRACTION = 40.0, 2.0, 5.0, 0.9
SHRINK_FACTORS = (4, 2, 1)
SMOOTHING_SIGMAS_MM = (2.0, 1.0, 0.0)
MAX_ITERATIONS_PER_LEVEL = 300
_HISTOGRAM_BINS = 50
# of the voxels per level, coarse to fine (random, fixed seed). A quarter at full resolution instead of every
# voxel: the phantom set registers in 2/3 of the CPU time, errors within 0.08 mm of every-voxel sampling (README)
_SAMPLING_FRACTIONS = (0.25, 0.5, 0.25)
_SEED = 20261126
_MIN_STEP = 1e-3  # mm (steps are scaled to physical shifts)
_SEARCH_STEP_MM = 4.0  # first step of the whole-image search
# First step of the bone refinement: it starts near the optimum, and the bone-only metric is narrow
# (a 4 mm first step jumped to another vertebra on the partial-overlap phantom).
_REFINE_STEP_MM = 0.5
_SLICE_TOLERANCE_MM = 0.01
_LABEL = "automatic rigid registration, not reviewed"
CT_CENTRE = "the new CT's centre"  # where the QA views go through without a target


@dataclass(frozen=True, eq=False)
class CtSeries:
    """One CT series read from a folder: Hounsfield units on a regular grid."""

    hu: np.ndarray  # (frames, rows, columns), float32, HU
    grid: Grid
    series_instance_uid: str
    files: tuple[Path, ...]
    headers: tuple[Dataset, ...]  # the slices' datasets without pixel data, in grid order

    @property
    def frame_of_reference_uid(self) -> str:
        return self.grid.frame_of_reference_uid

    @property
    def centre_mm(self) -> np.ndarray:
        """Patient position (mm) of the image centre."""
        return self.grid.to_patient((np.asarray(self.grid.shape, dtype=float)[None] - 1.0) / 2.0)[0]


@dataclass(frozen=True)
class SecondOptimum:
    """Another local minimum of the metric along the cranio-caudal axis about as good as the result's
    (both at half resolution, see :func:`second_optimum`): ``shift_mm`` from the result (new frame, z)."""

    shift_mm: float
    metric_value: float
    metric_at_result: float


@dataclass(frozen=True, eq=False)
class AutoRegistration:
    """The result of :func:`register_ct`.

    ``matrix`` is the 4x4 rigid transform in a REG's direction: it maps prior-frame points (mm)
    into the new frame (mm). ``metric_value`` is the Mattes MI at the end, on every voxel (lower
    is better); ``iterations`` the optimiser iterations over all levels; ``converged`` False when
    the last level stopped on its iteration limit.
    """

    matrix: np.ndarray
    prior_frame_uid: str
    new_frame_uid: str
    metric_value: float
    iterations: int
    converged: bool
    stop_condition: str
    bone_mask: bool
    second_optimum: SecondOptimum | None = None  # see :func:`second_optimum`
    # the z shifts (mm) that check reached: less than +/- AMBIGUITY_RANGE_MM where the scans overlap too little
    ambiguity_scan_mm: tuple[float, float] = (-AMBIGUITY_RANGE_MM, AMBIGUITY_RANGE_MM)

    @property
    def label(self) -> str:
        """How results and reports name this registration."""
        return f"{_LABEL} (Mattes MI {self.metric_value:.3f})"

    @property
    def ambiguity_text(self) -> str:
        """How far the second-optimum check along z reached (see :func:`second_optimum`)."""
        low, high = self.ambiguity_scan_mm
        limited = low > -AMBIGUITY_RANGE_MM or high < AMBIGUITY_RANGE_MM
        return f"second optimum searched along z from {low:+g} to {high:+g} mm" + (
            f" only (of +/-{AMBIGUITY_RANGE_MM:g} mm: the scans overlap too little beyond)" if limited else ""
        )

    @property
    def new_to_prior(self) -> np.ndarray:
        """4x4 taking new-frame points (mm) to prior-frame points (mm): the sampling direction."""
        return np.linalg.inv(self.matrix)

    def point_map(self) -> RigidMap:
        """The map from the new (reference) frame into the prior course's frame."""
        return RigidMap(self.new_to_prior, self.label)


@dataclass(frozen=True, eq=False)
class RegistrationQa:
    """What the QA picture of an automatic registration is drawn from (:mod:`reirrad.report.regqa`):
    the result, the point (new frame, mm) the three views go through, ``through`` naming it (a target
    structure, or the new CT's centre), and the three planes through it (never the whole CTs: a report
    keeps this as long as it lives)."""

    course: str  # the prior course's name
    result: AutoRegistration
    centre_mm: np.ndarray
    through: str
    views: QaViews

    def assumption_text(self) -> str:
        """The registration as a check's assumptions record it: metric, iterations, REG matrix."""
        matrix = ", ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in self.result.matrix)
        return (
            f"{_LABEL}{', bone-refined' if self.result.bone_mask else ''}: Mattes MI "
            f"{self.result.metric_value:.4f} on every voxel (lower is better; refused above {DEFAULT_MAX_METRIC:g}), "
            f"{self.result.iterations} iterations ({self.result.stop_condition}); {self.result.ambiguity_text}; "
            f"matrix prior frame -> new frame (mm, as a REG states it): [{matrix}]"
        )


@dataclass(frozen=True, eq=False)
class AutomaticRegistration(Registration):
    """An :class:`AutoRegistration` fed to the evaluation like a REG file (see ``reference_to_moving``),
    with what its QA picture is drawn from."""

    result: AutoRegistration | None = None
    qa: RegistrationQa | None = None

    @property
    def label(self) -> str:
        return self.result.label if self.result is not None else _LABEL


def as_registration(result: AutoRegistration, where: Path, qa: RegistrationQa | None = None) -> AutomaticRegistration:
    """``result`` as a :class:`Registration` in the new frame registering the prior frame."""
    return AutomaticRegistration(
        path=where,
        sop_instance_uid="",
        frame_of_reference_uid=result.new_frame_uid,
        to_own_frame={result.prior_frame_uid: result.matrix},
        result=result,
        qa=qa,
    )


# ------------------------------------------------------------------ reading the CT series


def read_ct_series(folder: str | Path) -> CtSeries:
    """The one CT image series under ``folder`` (searched recursively), in Hounsfield units.

    Raises
    ------
    InputError
        No CT image, several series or frames of reference, slices of differing orientation,
        pixel spacing or size, missing or uneven slice spacing, oblique (non-axial) images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    slices = _ct_slices(folder)
    if not slices:
        raise InputError(
            folder, "no CT image (CT Image Storage) in the folder: automatic registration needs the planning CT"
        )
    series = {str(ds.SeriesInstanceUID) for _, ds in slices}
    if len(series) > 1:
        raise InputError(folder, f"{len(series)} CT series in the folder; keep only the planning CT")
    frames = {uid(ds, "FrameOfReferenceUID", path) for path, ds in slices}
    if len(frames) > 1:
        raise InputError(folder, "the CT slices name different frames of reference")
    grid, order = _ct_grid(slices, frames.pop())
    hu = np.stack([_hounsfield(slices[i][0]) for i in order])
    return CtSeries(hu, grid, series.pop(), tuple(slices[i][0] for i in order), tuple(slices[i][1] for i in order))


def _ct_slices(folder: Path) -> list[tuple[Path, Dataset]]:
    """(path, dataset) of every CT Image Storage file under ``folder``; other files are skipped."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = read_dataset(path, stop_before_pixels=True)
        except NotDicomError:
            continue
        if str(ds.get("SOPClassUID", "")) == CTImageStorage:
            found.append((path, ds))
    return found


def _ct_grid(slices: Sequence[tuple[Path, Dataset]], frame: str) -> tuple[Grid, list[int]]:
    """The regular grid of the slices and their order along it (refusing anything irregular)."""
    path0, ds0 = slices[0]
    orientation = numbers(ds0, "ImageOrientationPatient", path0, 6)
    spacing = numbers(ds0, "PixelSpacing", path0, 2)
    shape = (int(ds0.Rows), int(ds0.Columns))
    for path, ds in slices[1:]:
        if not np.allclose(numbers(ds, "ImageOrientationPatient", path, 6), orientation, atol=1e-4):
            raise InputError(path, "CT slices of differing ImageOrientationPatient")
        if not np.allclose(numbers(ds, "PixelSpacing", path, 2), spacing, atol=1e-4):
            raise InputError(path, "CT slices of differing PixelSpacing")
        if (int(ds.Rows), int(ds.Columns)) != shape:
            raise InputError(path, "CT slices of differing size")
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    if abs(abs(normal[2]) - 1.0) > 1e-4:
        raise InputError(path0, "CT slices are not transverse; only axial CT is supported")
    positions = np.array([numbers(ds, "ImagePositionPatient", p, 3) for p, ds in slices])
    along = positions @ normal
    order = [int(i) for i in np.argsort(along)]
    steps = np.diff(along[order])
    if len(slices) < 2 or np.any(steps <= _SLICE_TOLERANCE_MM):
        raise InputError(path0, "the CT series needs at least two slices at distinct positions")
    if np.ptp(steps) > _SLICE_TOLERANCE_MM + 1e-3 * steps.mean():
        raise InputError(
            path0, f"uneven CT slice spacing ({steps.min():g} to {steps.max():g} mm); resample the CT first"
        )
    grid = Grid(
        origin_mm=_triple(positions[order[0]]),
        row_direction=_triple(row),
        column_direction=_triple(column),
        frame_direction=_triple(normal),
        spacing_mm=(float(steps.mean()), float(spacing[0]), float(spacing[1])),
        shape=(len(slices), *shape),
        frame_of_reference_uid=frame,
    )
    return grid, order


def _triple(vector: np.ndarray) -> tuple[float, float, float]:
    return float(vector[0]), float(vector[1]), float(vector[2])


def _hounsfield(path: Path) -> np.ndarray:
    """One slice's pixels in HU (RescaleSlope/Intercept applied), float32."""
    ds = read_dataset(path)
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise InputError(path, f"CT pixel data cannot be decoded: {exc}") from None
    slope = optional_number(ds, "RescaleSlope", path) or 1.0
    intercept = optional_number(ds, "RescaleIntercept", path) or 0.0
    return (pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)


# ------------------------------------------------------------------ registration


def to_sitk(series: CtSeries) -> sitk.Image:
    """A SimpleITK image of the series (ITK and DICOM share the LPS patient frame in mm)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(series.hu)  # array (k, j, i) -> image index (i, j, k)
    grid = series.grid
    image.SetOrigin(grid.origin_mm)
    image.SetSpacing((grid.spacing_mm[2], grid.spacing_mm[1], grid.spacing_mm[0]))
    axes = np.column_stack([grid.row_direction, grid.column_direction, grid.frame_direction])
    image.SetDirection(tuple(float(v) for v in axes.ravel()))
    return image


def affine(new_to_prior: np.ndarray) -> sitk.AffineTransform:
    """An ITK transform of the 4x4 ``new_to_prior`` (fixed-image points to moving-image points, mm)."""
    import SimpleITK as sitk

    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple(float(v) for v in new_to_prior[:3, :3].ravel()))
    transform.SetTranslation(tuple(float(v) for v in new_to_prior[:3, 3]))
    return transform


def _matrix(transform: sitk.Euler3DTransform) -> np.ndarray:
    """4x4 of an ITK rigid transform: x -> R (x - c) + c + t."""
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre, translation = np.asarray(transform.GetCenter()), np.asarray(transform.GetTranslation())
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = centre + translation - rotation @ centre
    return out


def _initial_transform(
    fixed: sitk.Image, moving: sitk.Image, initial_new_to_prior: np.ndarray | None
) -> sitk.Euler3DTransform:
    """Centres aligned (CenteredTransformInitializer, GEOMETRY), or the given new -> prior matrix."""
    import SimpleITK as sitk

    if initial_new_to_prior is None:
        return sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    transform = sitk.Euler3DTransform()
    size = np.asarray(fixed.GetSize(), dtype=float)
    transform.SetCenter(fixed.TransformContinuousIndexToPhysicalPoint(tuple((size - 1.0) / 2.0)))
    rotation = initial_new_to_prior[:3, :3]
    centre = np.asarray(transform.GetCenter())
    transform.SetMatrix(tuple(float(v) for v in rotation.ravel()))
    transform.SetTranslation(tuple(float(v) for v in initial_new_to_prior[:3, 3] + rotation @ centre - centre))
    return transform


def _bone_mask(fixed: sitk.Image) -> sitk.Image:
    """Voxels above :data:`BONE_HU`, dilated by one voxel so that bone edges count."""
    import SimpleITK as sitk

    return sitk.BinaryDilate(sitk.BinaryThreshold(fixed, BONE_HU, 1e9, 1, 0), [1, 1, 1])


def _method(bone: sitk.Image | None) -> sitk.ImageRegistrationMethod:
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=_HISTOGRAM_BINS)
    method.SetInterpolator(sitk.sitkLinear)
    if bone is not None:
        method.SetMetricFixedMask(bone)
    return method


def _folder(series: CtSeries) -> Path:
    """Where messages about ``series`` point: its folder (or "CT" for an in-memory series)."""
    return series.files[0].parent if series.files else Path("CT")


def _optimise(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Euler3DTransform,
    mask: sitk.Image | None,
    shrink: Sequence[int],
    sigmas_mm: Sequence[float],
    new: CtSeries,
    first_step_mm: float,
) -> tuple[int, str]:
    """Optimise ``transform`` in place over the resolution levels; (iterations, stop condition).

    ``first_step_mm``: the optimiser's first step (largest shift of a point of the image, mm).
    """
    import SimpleITK as sitk

    method = _method(mask)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentagePerLevel(list(_SAMPLING_FRACTIONS[-len(shrink) :]), _SEED)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=first_step_mm,
        minStep=_MIN_STEP,
        numberOfIterations=MAX_ITERATIONS_PER_LEVEL,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel(list(sigmas_mm))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(transform, inPlace=True)
    iterations = [0]
    method.AddCommand(sitk.sitkIterationEvent, lambda: iterations.__setitem__(0, iterations[0] + 1))
    try:
        method.Execute(fixed, moving)
    except RuntimeError as exc:  # ITK: e.g. too few samples in the overlap
        problem = " ".join(str(exc).split())[-200:]
        raise InputError(_folder(new), f"automatic registration failed: {problem}") from None
    return iterations[0], " ".join(method.GetOptimizerStopConditionDescription().split())


def _axes(image: sitk.Image) -> np.ndarray:
    """3x3 whose columns are the image's axis directions (patient frame)."""
    return np.asarray(image.GetDirection()).reshape(3, 3)


def _search_translation(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Euler3DTransform, new: CtSeries) -> None:
    """Move ``transform`` to the best of a grid of shifts around the centres' alignment (in place).

    Image centres differ from the anatomy's when the scans cover different lengths; the gradient
    descent alone then finds the wrong vertebra. The grid: along each patient axis, :data:`SEARCH_MARGIN_MM`
    plus half the difference of the two scans' extents, in steps of :data:`SEARCH_STEP_MM`, on the
    coarsest level, every voxel sampled.
    """
    extents = [
        np.abs(_axes(image) @ (np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())))
        for image in (fixed, moving)
    ]
    ranges = SEARCH_MARGIN_MM + np.abs(extents[0] - extents[1]) / 2.0
    steps = [int(np.ceil(r / SEARCH_STEP_MM)) for r in ranges]
    method = _method(None)
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetOptimizerAsExhaustive([0, 0, 0, *steps], stepLength=SEARCH_STEP_MM)
    method.SetOptimizerScales([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    method.SetShrinkFactorsPerLevel([SHRINK_FACTORS[0]])
    method.SetSmoothingSigmasPerLevel([SMOOTHING_SIGMAS_MM[0]])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(transform, inPlace=True)
    try:
        method.Execute(fixed, moving)
    except RuntimeError as exc:
        problem = " ".join(str(exc).split())[-200:]
        raise InputError(_folder(new), f"automatic registration failed: {problem}") from None


def register_ct(
    prior: CtSeries,
    new: CtSeries,
    *,
    bone: bool = False,
    initial_matrix: np.ndarray | None = None,
) -> AutoRegistration:
    """Rigidly register the prior course's CT onto the new course's CT.

    Parameters
    ----------
    prior, new : CtSeries
        Moving (prior course) and fixed (new course) planning CTs.
    bone : bool
        Restrict the metric to bone of the new CT (HU > :data:`BONE_HU`), for head and neck.
    initial_matrix : ndarray (4, 4), optional
        Start from this REG-direction matrix (prior frame -> new frame, mm), e.g. a given REG's;
        default: image centres aligned, no rotation.

    Returns
    -------
    AutoRegistration
        Not checked: :func:`require_usable` refuses a non-converged or poorly matching result.
    """
    import SimpleITK as sitk

    fixed, moving = to_sitk(new), to_sitk(prior)
    mask = _bone_mask(fixed) if bone else None
    if mask is not None and not np.any(sitk.GetArrayViewFromImage(mask)):
        raise InputError(_folder(new), f"--bone: the new CT has no voxel above {BONE_HU:g} HU")
    transform = _initial_transform(fixed, moving, None if initial_matrix is None else np.linalg.inv(initial_matrix))
    if initial_matrix is None:
        _search_translation(fixed, moving, transform, new)
    iterations, stop = _optimise(
        fixed, moving, transform, None, SHRINK_FACTORS, SMOOTHING_SIGMAS_MM, new, _SEARCH_STEP_MM
    )
    if mask is not None:  # refined on bone alone, from the whole-image optimum
        more, stop = _optimise(
            fixed, moving, transform, mask, SHRINK_FACTORS[1:], SMOOTHING_SIGMAS_MM[1:], new, _REFINE_STEP_MM
        )
        iterations += more
    final = _method(None)  # the stated threshold applies to the whole-image metric, masked or not
    final.SetMetricSamplingStrategy(final.NONE)
    final.SetInitialTransform(transform, inPlace=False)
    metric = float(final.MetricEvaluate(fixed, moving))
    new_to_prior = _matrix(transform)
    other, reach = second_optimum(fixed, moving, new_to_prior, new)
    return AutoRegistration(
        matrix=np.linalg.inv(new_to_prior),
        prior_frame_uid=prior.frame_of_reference_uid,
        new_frame_uid=new.frame_of_reference_uid,
        metric_value=metric,
        iterations=iterations,
        converged="Maximum number of iterations" not in stop,
        stop_condition=stop,
        bone_mask=bone,
        second_optimum=other,
        ambiguity_scan_mm=reach,
    )


def second_optimum(
    fixed: sitk.Image, moving: sitk.Image, new_to_prior: np.ndarray, new: CtSeries
) -> tuple[SecondOptimum | None, tuple[float, float]]:
    """The best other local minimum of the whole-image metric along the new frame's z axis, when it is
    at least :data:`AMBIGUITY_FRACTION` as good as the result's (None otherwise), and how far the scan
    reached (lowest and highest shift evaluated, mm).

    Vertebrae repeat along the neck: a registration one vertebra off is a local optimum the metric
    threshold does not catch. The metric is evaluated with the result shifted along z every
    :data:`AMBIGUITY_STEP_MM` within :data:`AMBIGUITY_RANGE_MM`, on both images smoothed (1 mm) and
    shrunk by 2 (about 0.3 CPU s); minima within :data:`AMBIGUITY_EXCLUDE_MM` belong to the result's own basin.
    A shift at which the images overlap too little for the metric (ITK refuses it) is left out, and so
    is a minimum next to one; short scans therefore reach less far (stated in the result).

    Raises
    ------
    InputError
        The metric cannot be evaluated at the result itself (the images overlap too little).
    """
    import SimpleITK as sitk

    fixed, moving = (sitk.Shrink(sitk.SmoothingRecursiveGaussian(image, 1.0), [2, 2, 2]) for image in (fixed, moving))
    shifts = np.arange(-AMBIGUITY_RANGE_MM, AMBIGUITY_RANGE_MM + 1e-6, AMBIGUITY_STEP_MM)
    values = np.array([_shifted_metric(fixed, moving, new_to_prior, float(shift)) for shift in shifts])
    at = int(np.argmin(np.abs(shifts)))
    if not np.isfinite(values[at]):
        raise InputError(
            _folder(new),
            "automatic registration: the CTs overlap too little at the result to check it for a second optimum "
            "along z; not used: check the CTs' extents or register them by hand",
        )
    evaluated = shifts[np.isfinite(values)]
    reach = (float(evaluated.min()), float(evaluated.max()))
    at_result = float(values[at])
    inner = np.arange(1, len(shifts) - 1)
    with np.errstate(invalid="ignore"):  # NaN (not evaluated) neighbours compare False: no minimum there
        minima = inner[
            (values[inner] <= values[inner - 1])
            & (values[inner] <= values[inner + 1])
            & (np.abs(shifts[inner]) > AMBIGUITY_EXCLUDE_MM)
        ]
    if not len(minima):
        return None, reach
    best = int(minima[np.argmin(values[minima])])
    if values[best] > AMBIGUITY_FRACTION * at_result:  # metrics are negative: lower is better
        return None, reach
    return SecondOptimum(float(shifts[best]), float(values[best]), at_result), reach


def _shifted_metric(fixed: sitk.Image, moving: sitk.Image, new_to_prior: np.ndarray, shift_mm: float) -> float:
    """The whole-image metric with the result shifted ``shift_mm`` along the new frame's z axis
    (x -> new_to_prior (x + shift z)); NaN where the images overlap too little for ITK to evaluate it."""
    shifted = new_to_prior.copy()
    shifted[:3, 3] += shift_mm * new_to_prior[:3, 2]
    method = _method(None)
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetInitialTransform(affine(shifted), inPlace=False)
    try:
        return float(method.MetricEvaluate(fixed, moving))
    except RuntimeError:  # ITK: "All samples map outside moving image buffer" (or too few inside)
        return float("nan")


def require_usable(result: AutoRegistration, where: Path, max_metric: float = DEFAULT_MAX_METRIC) -> AutoRegistration:
    """``result``, or InputError when it did not converge, its metric is above ``max_metric``, or a
    second optimum is about as good (:func:`second_optimum`)."""
    if not result.converged:
        raise InputError(where, f"automatic registration did not converge ({result.stop_condition}); not used")
    if not np.isfinite(result.metric_value) or result.metric_value > max_metric:
        raise InputError(
            where,
            f"automatic registration ends with Mattes MI {result.metric_value:.3f}, worse than the threshold "
            f"{max_metric:g} (lower is better); not used: check the CTs or register them by hand",
        )
    if result.second_optimum is not None:
        other = result.second_optimum
        raise InputError(
            where,
            f"automatic registration is ambiguous: shifted {other.shift_mm:+.0f} mm along z the Mattes MI is "
            f"{other.metric_value:.3f} against {other.metric_at_result:.3f} at the result (half resolution), a second "
            "optimum (another vertebra level?); not used: start near the answer (--initial REG) or register by hand",
        )
    return result


def register_folders(
    prior_folder: str | Path,
    new_folder: str | Path,
    *,
    bone: bool = False,
    initial_matrix: np.ndarray | None = None,
    max_metric: float = DEFAULT_MAX_METRIC,
) -> tuple[AutoRegistration, CtSeries, CtSeries]:
    """Read both courses' CTs, register them and refuse an unusable result (see :func:`register_ct`)."""
    prior, new = read_ct_series(prior_folder), read_ct_series(new_folder)
    if prior.frame_of_reference_uid == new.frame_of_reference_uid:
        raise InputError(Path(prior_folder), "both CTs share one frame of reference: the courses need no registration")
    result = register_ct(prior, new, bone=bone, initial_matrix=initial_matrix)
    return require_usable(result, Path(new_folder), max_metric), prior, new


# ------------------------------------------------------------------ QA picture


def prior_on_new_planes(
    prior: CtSeries, new: CtSeries, result: AutoRegistration, voxel: tuple[int, int, int]
) -> list[np.ndarray]:
    """The prior CT (HU) resampled through the registration at the new CT's voxel centres of the
    axial, coronal and sagittal planes through ``voxel`` (frame, row, column) of the new CT (linear;
    -1000 HU outside the prior scan): (rows, columns), (frames, columns) and (frames, rows) arrays."""
    import SimpleITK as sitk

    fixed, moving, transform = to_sitk(new), to_sitk(prior), affine(result.new_to_prior)
    k, j, i = voxel
    planes = (fixed[:, :, k : k + 1], fixed[:, j : j + 1, :], fixed[i : i + 1, :, :])  # ITK index (i, j, k)
    return [
        sitk.GetArrayFromImage(
            sitk.Resample(moving, plane, transform, sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
        ).squeeze(axis)
        for axis, plane in enumerate(planes)
    ]


def write_qa_figure(
    prior: CtSeries, new: CtSeries, result: AutoRegistration, centre_mm: np.ndarray, through: str, output: str | Path
) -> None:
    """The QA picture (:func:`reirrad.report.regqa.qa_png`: three orthogonal checkerboard views of
    the new CT and the registered prior CT through ``centre_mm``, new frame), written under the
    output policy."""
    from reirrad.outputs import write_output
    from reirrad.report.regqa import qa_png

    picture = qa_png(prior, new, result, centre_mm, through)
    write_output(output, lambda stream: stream.write(picture))


# ------------------------------------------------------------------ `reirrad register`


def initial_matrix_from(reg_path: str | Path, prior_folder: str | Path, new_folder: str | Path) -> np.ndarray:
    """The prior -> new matrix a given REG states between the two CTs' frames (InputError if none)."""
    from reirrad.dicom.registration import read_registration

    prior, new = _frame_of(prior_folder), _frame_of(new_folder)
    matrix = read_registration(reg_path).matrix(prior, new)
    if matrix is None:
        raise InputError(reg_path, f"does not relate the CTs' frames of reference {prior} and {new}")
    return matrix


def _frame_of(folder: str | Path) -> str:
    slices = _ct_slices(Path(folder))
    if not slices:
        raise InputError(folder, "no CT image (CT Image Storage) in the folder")
    return uid(slices[0][1], "FrameOfReferenceUID", slices[0][0])


def qa_centre_mm(new: CtSeries, new_folder: str | Path, target: str | None) -> tuple[np.ndarray, str]:
    """Mean contour point (mm) of ROI ``target`` of the new course's RTSTRUCT, or the CT centre,
    and how the QA caption names it."""
    if target is None:
        return new.centre_mm, CT_CENTRE
    from reirrad.dicom.structures import read_structures

    rtstruct = "1.2.840.10008.5.1.4.1.1.481.3"
    for path in sorted(p for p in Path(new_folder).rglob("*") if p.is_file()):
        try:
            is_structures = str(read_dataset(path, stop_before_pixels=True).get("SOPClassUID", "")) == rtstruct
        except NotDicomError:
            continue
        if is_structures:
            for roi in read_structures(path).rois:
                if roi.name == target and roi.contours:
                    return _mean_point([roi]), f"ROI {target}"
    raise InputError(new_folder, f"no RTSTRUCT in the folder has a contoured ROI named {target!r}")


def _mean_point(rois: Sequence[Roi]) -> np.ndarray:
    """The mean of the contour points (mm) of ``rois``."""
    return np.concatenate([c.points_mm for roi in rois for c in roi.contours]).mean(axis=0)


def qa_view_point(new: CtSeries, structures: StructureSet | None) -> tuple[np.ndarray, str]:
    """Where a check's QA views go through: the mean contour point of the new course's target
    structures (PTV, else CTV, else GTV, as the hot-spot figures find them), else the new CT's centre."""
    from reirrad.report.hotspot import target_rois

    targets = () if structures is None else target_rois(structures)
    if not targets:
        return new.centre_mm, CT_CENTRE
    return _mean_point(targets), "target " + ", ".join(t.name for t in targets)


def register_and_write(
    prior_folder: Path,
    new_folder: Path,
    output: Path,
    *,
    bone: bool = False,
    qa: Path | None = None,
    initial_matrix: np.ndarray | None = None,
    max_metric: float = DEFAULT_MAX_METRIC,
    qa_centre: Callable[[CtSeries], tuple[np.ndarray, str]] | None = None,
) -> AutoRegistration:
    """Register the CTs of two course folders and write the REG (and the QA picture).

    Outputs are checked before anything is computed: never an input, written atomically.
    """
    from reirrad.dicom.write import refuse_input_as_output, registration_dataset, save_atomic

    inputs = [p for folder in (prior_folder, new_folder) if Path(folder).is_dir() for p in Path(folder).rglob("*")]
    for target in (output, qa):
        if target is not None:
            refuse_input_as_output(target, inputs)
    if qa is not None and Path(qa).resolve() == Path(output).resolve():
        raise InputError(qa, "the QA picture and the REG would be the same file")
    result, prior, new = register_folders(
        prior_folder, new_folder, bone=bone, initial_matrix=initial_matrix, max_metric=max_metric
    )
    description = result.label + (", bone-refined" if bone else "")
    ds = registration_dataset(
        result.matrix,
        result.new_frame_uid,
        result.prior_frame_uid,
        new.headers[0],
        description=description,
        new_images=new.headers,
        prior_images=prior.headers,
    )
    save_atomic(ds, output)
    if qa is not None:
        centre, through = (new.centre_mm, CT_CENTRE) if qa_centre is None else qa_centre(new)
        write_qa_figure(prior, new, result, centre, through, qa)
    return result


# ------------------------------------------------------------------ `reirrad check --auto-register`


def automatic_registrations(
    courses: Sequence[LoadedCourse], registrations: Sequence[Registration]
) -> list[Registration]:
    """An automatic registration for every prior course in another frame than the reference (last)
    course's that no given REG relates to it, from the CTs in both course folders (refused when
    unusable, see :func:`require_usable`). Called only when the case asks for it."""
    from reirrad.report.regqa import qa_views

    reference = courses[-1]
    frame = reference.frame_of_reference_uid
    found: list[Registration] = []
    for course in courses[:-1]:
        if course.frame_of_reference_uid == frame or any(
            r.matrix(frame, course.frame_of_reference_uid) is not None for r in (*registrations, *found)
        ):
            continue
        if course.spec.datasets or reference.spec.datasets:
            raise InputError(course.spec.path, "automatic registration reads the planning CTs from the course folders")
        result, prior, new = register_folders(course.spec.path, reference.spec.path)
        centre, through = qa_view_point(new, reference.structures)
        qa = RegistrationQa(course.name, result, centre, through, qa_views(prior, new, result, centre))
        found.append(as_registration(result, course.spec.path, qa))
    return found


def register_courses(
    courses: Sequence[LoadedCourse],
) -> tuple[list[LoadedCourse], tuple[AutomaticRegistration, ...]]:
    """The courses, the reference (last) one given the automatic registrations they ask for like
    in-memory REGs (see :func:`automatic_registrations`), and those registrations. Without a
    course asking for one: the courses unchanged and none."""
    if not any(c.spec.auto_register for c in courses):
        return list(courses), ()
    from reirrad.accumulate import _read_registrations

    found = tuple(
        r
        for r in automatic_registrations(courses, _read_registrations(courses)[0])
        if isinstance(r, AutomaticRegistration)
    )
    reference = dataclasses.replace(courses[-1], registrations=(*courses[-1].registrations, *found))
    return [*courses[:-1], reference], found


def with_registration_qa(
    report: CheckReport, automatic: Sequence[AutomaticRegistration], figures: bool = True
) -> CheckReport:
    """``report`` with each automatic registration recorded in its assumptions (metric, iterations,
    matrix), named in the notes of every result with a value (all computed through it: "course 'prior':
    automatic rigid registration, not reviewed (Mattes MI -1.188)"), and, with ``figures``, its QA
    picture (drawn only when a format shows it; without, the report keeps no picture and nothing it is
    drawn from)."""
    qas = [r.qa for r in automatic if r.qa is not None]
    if not qas:
        return report
    from reirrad.report.regqa import caption, qa_figure
    from reirrad.results import RegistrationPicture, noting_courses

    assumed = {
        **report.assumptions,
        "automatic_registration": "; ".join(f"{q.course}: {q.assumption_text()}" for q in qas),
    }
    notes = tuple(f"course '{q.course}': {q.result.label}" for q in qas)
    results = noting_courses(report.results, notes)
    pictures = tuple(
        RegistrationPicture(
            q.course, caption(q.result, q.centre_mm, q.through, q.course), functools.partial(qa_figure, q)
        )
        for q in qas
        if figures
    )
    return dataclasses.replace(report, results=results, assumptions=assumed, registration_pictures=pictures)


def with_auto_registration(case: CaseSpec) -> CaseSpec:
    """``case`` with automatic registration asked for (``--auto-register``)."""
    courses = tuple(dataclasses.replace(c, auto_register=True) for c in case.courses)
    return dataclasses.replace(case, courses=courses)
