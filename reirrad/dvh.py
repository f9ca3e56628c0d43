"""Dose-volume histograms from weighted dose samples, and the metrics on them.

A :class:`Dvh` holds the dose (Gy) at every sample of a :class:`reirrad.masks.RoiSampling` and
the sample volumes (cm3). Metrics are computed from the samples themselves, not from a binned
curve, and every dose metric is a linear combination of sample doses
(``value == sum(coefficients * doses_gy[indices])``), so a cumulative value can be split into
each course's contribution at the same samples.

Definitions: Dx% and Dxcc = lowest dose in the hottest x % (of the in-grid volume) or x cm3;
Dmax / Dmin = highest / lowest dose at any sample, surface samples included; Dmean = volume
weighted mean; VxGy = volume (cm3) receiving at least x Gy, VxGy[%] relative to the in-grid volume.
Metrics that cannot be evaluated return ``None`` with a reason, never 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reirrad.dicom.dose import DoseGrid
from reirrad.dicom.structures import Roi, StructureSet
from reirrad.dicom.summation import WHOLE_DELIVERY
from reirrad.errors import InputError
from reirrad.grid import Grid
from reirrad.masks import DOSE_GRID, RoiSampling, sample_roi
from reirrad.metrics import DoseAtVolume, Metric, MetricKind, VolumeAtDose, VolumeUnit, parse_metric

CHUNK = 1 << 16  # samples interpolated per step, bounds temporary memory


@dataclass(frozen=True, eq=False)
class Dvh:
    """Dose samples of one structure: ``doses_gy`` (N,) and ``weights_cc`` (N,), plus volumes.

    Zero-weight samples lie on the structure surface and only count for Dmin and Dmax.
    ``volume_cc`` is the full contour volume, ``in_grid_volume_cc`` the part inside the dose grid;
    ``extent`` names that grid in the reasons (:func:`reirrad.masks.sample_roi`).
    """

    doses_gy: np.ndarray
    weights_cc: np.ndarray
    volume_cc: float
    in_grid_volume_cc: float
    notes: tuple[str, ...] = field(default=())
    extent: str = DOSE_GRID
    # filled lazily: "weighted" -> (weight > 0 mask, smallest weight, count), ("tail", coldest?) ->
    # (sorted sample indices from that end, their volume midpoints)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def weighted(self) -> tuple[np.ndarray, float, int]:
        """Mask of the weighted (non-surface) samples, the smallest weight (cm3, 0 when none) and
        their count; computed once."""
        cached = self._cache.get("weighted")
        if cached is None:
            mask = self.weights_cc > 0
            count = int(np.count_nonzero(mask))
            smallest = float(self.weights_cc[mask].min()) if count else 0.0
            cached = self._cache["weighted"] = (mask, smallest, count)
        return cached


@dataclass(frozen=True, eq=False)
class MetricValue:
    """A metric's value (Gy, cm3 or %), or ``None`` with the reason it could not be evaluated.

    For dose metrics, ``value == sum(coefficients * dvh.doses_gy[indices])``; volume metrics
    have ``indices`` and ``coefficients`` None.
    """

    value: float | None
    reason: str | None = None
    indices: np.ndarray | None = None
    coefficients: np.ndarray | None = None


def trilinear(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a 3-D array at continuous indices (N, 3), in float64.

    Positions up to half a voxel beyond the outer voxel centres take the edge value along that
    axis (the dose of the outer voxel); callers pass only positions within the grid's voxels.
    Interpolation runs along i, then j, then k; an axis along which every position of a chunk
    sits on voxel centres (a sampling lattice of one sample per voxel, a one-voxel axis) is not
    interpolated at all, which gives the same value with half the gathers.
    """
    shape = array.shape
    flat = array.reshape(-1)
    strides = (shape[1] * shape[2], shape[2], 1)
    columns = positions.T  # one axis at a time: contiguous arrays, not strided columns of (N, 3)
    out = np.empty(len(positions), dtype=np.float64)
    for start in range(0, len(positions), CHUNK):
        base = np.zeros(len(columns[0, start : start + CHUNK]), dtype=np.int64)
        axes = []
        for axis in range(3):
            fraction = columns[axis, start : start + CHUNK].astype(np.float64)
            np.maximum(fraction, 0.0, out=fraction)  # clipped into [0, n - 1]
            np.minimum(fraction, shape[axis] - 1, out=fraction)
            low = fraction.astype(np.int64)
            np.minimum(low, max(shape[axis] - 2, 0), out=low)
            fraction -= low
            low *= strides[axis]
            base += low
            if shape[axis] > 1 and np.any(fraction):
                axes.append((strides[axis], fraction))
        out[start : start + CHUNK] = _interpolate(flat, base, axes)
    return out


def _interpolate(flat: np.ndarray, base: np.ndarray, axes: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Linear interpolation of ``flat`` from flat indices ``base`` along ``axes`` ((stride,
    fraction) pairs, outermost first): the innermost axis is interpolated first."""
    if not axes:
        return flat[base].astype(np.float64, copy=False)
    (stride, fraction), inner = axes[0], axes[1:]
    below = _interpolate(flat, base, inner)
    above = _interpolate(flat, base + stride, inner)
    above -= below
    above *= fraction
    above += below
    return above


def sample_dose(sampling: RoiSampling, dose_gy: np.ndarray) -> Dvh:
    """Dose (Gy) at every sample of ``sampling``, interpolated trilinearly in ``dose_gy``.

    ``dose_gy`` must be on the grid the sampling was made for (same shape); samples are not
    re-rasterised. Only samples inside the grid exist; the volume stays that of the contours.
    """
    if tuple(dose_gy.shape) != tuple(sampling.grid_shape):
        raise ValueError(f"dose array shape {tuple(dose_gy.shape)} differs from the sampled grid {sampling.grid_shape}")
    return Dvh(
        doses_gy=trilinear(dose_gy, sampling.positions),
        weights_cc=sampling.weights_cc,
        volume_cc=sampling.volume_cc,
        in_grid_volume_cc=sampling.in_grid_volume_cc,
        notes=sampling.notes,
        extent=sampling.extent,
    )


def _not_evaluable(dvh: Dvh, metric: Metric) -> str | None:
    """Why ``metric`` cannot be evaluated on ``dvh``, or None."""
    if dvh.volume_cc <= 0:
        return "structure encloses no volume"
    if metric.kind is MetricKind.VOLUME:
        return None
    if dvh.in_grid_volume_cc <= 0 or not dvh.weighted()[2]:
        return f"structure lies entirely outside {dvh.extent}"
    if (
        isinstance(metric, DoseAtVolume)
        and metric.volume_unit is VolumeUnit.CC
        and metric.volume > dvh.in_grid_volume_cc
    ):
        if wholly_in_grid(dvh):
            return f"{metric} needs {metric.volume:g} cm3 but the structure holds only {dvh.volume_cc:.3g} cm3"
        return (
            f"{metric} needs {metric.volume:g} cm3 but only {dvh.in_grid_volume_cc:.3g} cm3 "
            f"of the structure lies inside {dvh.extent}"
        )
    return None


IN_GRID_TOLERANCE = 1e-6  # relative: an in-grid volume this close to the contour volume is all of it


def wholly_in_grid(dvh: Dvh) -> bool:
    """True when the whole structure lies inside the dose grid."""
    return dvh.in_grid_volume_cc >= dvh.volume_cc * (1 - IN_GRID_TOLERANCE)


TAIL_SHARE = 0.05  # a selection from one end covers at least this share, so D1%..D5% reuse it


def _hottest(dvh: Dvh, volume_cc: float, coldest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weighted samples that cover at least ``volume_cc`` from the hot (or cold) end, in order,
    and the volume from that end at each sample's midpoint.

    A partial selection, not a full sort, cached per end: zero-weight (surface) samples are pushed
    past the far end so they are never selected. Tied doses keep the order of a stable sort of all
    samples hottest first (by index; from the cold end its exact reverse), so the result depends on
    the DVH only, not on earlier metrics or on the end searched from. Its size is estimated from the
    mean weight (the interior samples of a capped structure weigh many surface samples each, so the
    smallest weight would select most of the structure) and doubled until the last midpoint lies
    beyond ``volume_cc`` or every weighted sample is in.
    """
    weighted, _, n_weighted = dvh.weighted()
    cached = dvh._cache.get(("tail", coldest))
    if cached is not None and _covers(cached, volume_cc, n_weighted):
        return cached
    mean_cc = dvh.in_grid_volume_cc / max(n_weighted, 1)
    take = min(n_weighted, int(2.0 * max(volume_cc, TAIL_SHARE * dvh.in_grid_volume_cc) / mean_cc) + 2)
    keys = np.where(weighted, dvh.doses_gy if coldest else -dvh.doses_gy, np.inf)
    while True:
        chosen = _at_or_below(keys, take)
        if coldest:  # ties in descending index: exactly the reverse of the hottest-first order
            chosen = chosen[::-1]
        order = chosen[np.argsort(keys[chosen], kind="stable")][:take]
        volumes = dvh.weights_cc[order]
        cached = (order, np.cumsum(volumes) - volumes / 2.0)
        if _covers(cached, volume_cc, n_weighted):
            break
        take = min(n_weighted, 2 * take)
    dvh._cache[("tail", coldest)] = cached
    return cached


def _at_or_below(keys: np.ndarray, take: int) -> np.ndarray:
    """Indices, ascending, of every sample whose key is at most the ``take``-th smallest key.

    Every sample that ties with that boundary key is included, so a stable sort of the selection
    is the start of the stable sort of all samples: the order (and so every Dx) does not depend on
    which selection size an earlier metric cached.
    """
    if take >= len(keys):
        return np.arange(len(keys))
    boundary = np.partition(keys, take - 1)[take - 1]
    return np.flatnonzero(keys <= boundary)


def _covers(tail: tuple[np.ndarray, np.ndarray], volume_cc: float, n_weighted: int) -> bool:
    """True when a selection from one end (:func:`_hottest`) holds every weighted sample or its
    last midpoint lies beyond ``volume_cc``."""
    order, midpoints = tail
    return len(order) >= n_weighted or (len(order) > 0 and midpoints[-1] > volume_cc)


def _dose_at_volume(dvh: Dvh, volume_cc: float) -> MetricValue:
    """Lowest dose in the hottest ``volume_cc``: linear between neighbouring sample midpoints.

    Sample n, hottest first, stands for the dose at the middle of its own volume; the search runs
    from whichever end of the dose range is nearer, which gives the same answer.
    """
    coldest = volume_cc > dvh.in_grid_volume_cc / 2.0
    target = dvh.in_grid_volume_cc - volume_cc if coldest else volume_cc
    order, midpoints = _hottest(dvh, target, coldest)
    after = int(np.searchsorted(midpoints, target, side="left"))
    if after == 0 or after == len(order):
        index = order[min(after, len(order) - 1)]
        return MetricValue(float(dvh.doses_gy[index]), None, np.array([index]), np.ones(1))
    span = midpoints[after] - midpoints[after - 1]
    t = (target - midpoints[after - 1]) / span if span > 0 else 0.0
    coefficients = np.array([1.0 - t, t])
    indices = order[after - 1 : after + 1]
    return MetricValue(float(coefficients @ dvh.doses_gy[indices]), None, indices, coefficients)


def _single(dvh: Dvh, index: int) -> MetricValue:
    return MetricValue(float(dvh.doses_gy[index]), None, np.array([index]), np.ones(1))


def evaluate(dvh: Dvh, metric: Metric) -> MetricValue:
    """Value of ``metric`` on ``dvh`` (see the module docstring for the definitions)."""
    reason = _not_evaluable(dvh, metric)
    if reason:
        return MetricValue(None, reason)
    if isinstance(metric, DoseAtVolume):
        volume = metric.volume
        if metric.volume_unit is VolumeUnit.PERCENT:
            volume = metric.volume / 100.0 * dvh.in_grid_volume_cc
        return _dose_at_volume(dvh, volume)
    if isinstance(metric, VolumeAtDose):
        covered = float(dvh.weights_cc[dvh.doses_gy >= metric.dose_gy].sum())
        if metric.volume_unit is VolumeUnit.PERCENT:
            covered *= 100.0 / dvh.in_grid_volume_cc
        return MetricValue(covered)
    if metric.kind is MetricKind.VOLUME:
        return MetricValue(dvh.volume_cc)
    if metric.kind is MetricKind.DMAX:
        return _single(dvh, int(np.argmax(dvh.doses_gy)))
    if metric.kind is MetricKind.DMIN:
        return _single(dvh, int(np.argmin(dvh.doses_gy)))
    if metric.kind is MetricKind.DMEAN:
        total_cc = float(dvh.weights_cc.sum())
        indices = np.flatnonzero(dvh.weights_cc > 0)
        coefficients = dvh.weights_cc[indices]
        coefficients /= total_cc  # in place: a whole-body ROI holds millions of samples
        return MetricValue(float(dvh.weights_cc @ dvh.doses_gy) / total_cc, None, indices, coefficients)
    raise ValueError(f"unknown metric kind {metric.kind!r}")


MAX_CURVE_BINS = 100_000  # dose levels of one curve at most (1,000 Gy at 0.01 Gy)


def curve_bin_gy(dvh: Dvh, bin_width_gy: float) -> float:
    """The bin width of ``dvh``'s curve (Gy): ``bin_width_gy``, widened so that the curve has at
    most :data:`MAX_CURVE_BINS` levels (a dose grid scaled 10^5 x too high must not ask for GiBs)."""
    if not bin_width_gy > 0:
        raise ValueError("bin width must be positive")
    top = float(dvh.doses_gy.max()) if len(dvh.doses_gy) else 0.0
    return max(bin_width_gy, top / MAX_CURVE_BINS)


def cumulative_dvh(dvh: Dvh, bin_width_gy: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative DVH: dose levels (Gy, from 0 in steps of :func:`curve_bin_gy`, normally
    ``bin_width_gy``) and the in-grid volume (cm3) receiving at least each level."""
    width = curve_bin_gy(dvh, bin_width_gy)
    top = float(dvh.doses_gy.max()) if len(dvh.doses_gy) else 0.0
    edges = np.arange(0.0, top + 2 * width, width)
    # bin n holds edges[n] <= dose < edges[n + 1], as in np.histogram but without its sort of every
    # sample: dose / width, corrected by one against the edges themselves (rounding moves it at most
    # one bin); the top edge lies above every dose, doses below 0 fall in no bin
    index = (dvh.doses_gy * (1.0 / width)).astype(np.intp)
    np.clip(index, 0, len(edges) - 2, out=index)
    index -= dvh.doses_gy < edges[index]
    index += dvh.doses_gy >= edges[index + 1]
    inside = index >= 0
    counts = np.bincount(index[inside], weights=dvh.weights_cc[inside], minlength=len(edges) - 1)[: len(edges) - 1]
    volume = np.cumsum(counts[::-1])[::-1]
    return edges[:-1], volume


DEFAULT_METRICS = ("Dmin", "Dmax", "Dmean", "D0.03cc", "D1cc", "D99%", "D95%", "D5%", "D1%")


CURVE_BIN_GY = 0.01  # dose bin of the cumulative curve a table row keeps (for dicompyler-core)


@dataclass(frozen=True)
class StructureMetrics:
    """The metrics of one structure, ready for reporting. ``values`` maps the canonical metric
    text to its value (Gy, cm3 or %), None when not evaluated (the reason is in ``notes``).
    ``cumulative_cc`` (K,) is the in-grid volume (cm3) receiving at least ``k * curve_bin_gy`` Gy,
    None when not evaluated; ``curve_bin_gy`` is :data:`CURVE_BIN_GY` unless the dose range needs
    wider bins (:func:`curve_bin_gy`)."""

    name: str
    roi_number: int
    evaluated: bool
    volume_cc: float | None
    in_grid_volume_cc: float | None
    values: dict[str, float | None]
    notes: tuple[str, ...]
    cumulative_cc: np.ndarray | None = field(default=None, compare=False, repr=False)
    curve_bin_gy: float = CURVE_BIN_GY

    def to_dicompyler(self) -> Any:
        """The structure's cumulative DVH as a ``dicompylercore.dvh.DVH`` (Gy, cm3), so that
        dicompyler-core scripts (statistics, plots) can use reirrad's DVH.

        The curve is binned at :data:`CURVE_BIN_GY` (0.01 Gy) from reirrad's weighted samples
        inside the dose grid, so its statistics agree with ``values`` within a bin: D95%, Dmean,
        V20Gy (cm3) and the in-grid volume. Dmax and Dmin differ up to a bin and may differ
        more where zero-weight surface samples (which count for reirrad's Dmax/Dmin only) are
        hotter or colder than the interior.

        Returns
        -------
        dicompylercore.dvh.DVH
            ``dvh_type="cumulative"``, ``dose_units="Gy"``, ``volume_units="cm3"``, ``name``.

        Raises
        ------
        ValueError
            The structure was not evaluated (outside the grid, empty): there is no curve.

        Examples
        --------
        >>> import reirrad
        >>> course = reirrad.data.sample_case().parent / "course2"
        >>> row = reirrad.dvh(course / "dose.dcm", course / "structures.dcm", ["D95%"], names=["SpinalCord"]).structures[0]
        >>> curve = row.to_dicompyler()
        >>> bool(abs(curve.statistic("D95").value - row.values["D95%"]) <= 0.01)
        True
        """
        from dicompylercore.dvh import DVH

        if self.cumulative_cc is None:
            raise ValueError(f"structure {self.name!r} was not evaluated: no DVH curve")
        edges = np.arange(len(self.cumulative_cc) + 1) * self.curve_bin_gy
        return DVH(
            self.cumulative_cc, edges, dvh_type="cumulative", dose_units="Gy", volume_units="cm3", name=self.name
        )


def _value_and_reason(dvh: Dvh, metric: Metric) -> tuple[float | None, str | None]:
    """``evaluate`` without its per-sample coefficients, so that none outlive the call
    (a whole-body ROI's Dmean coefficients are as large as its samples)."""
    if metric.kind == "Dmean" and _not_evaluable(dvh, metric) is None:  # the value alone, as evaluate computes it
        return float(dvh.weights_cc @ dvh.doses_gy) / float(dvh.weights_cc.sum()), None
    result = evaluate(dvh, metric)
    return result.value, result.reason


def structure_metrics(
    roi: Roi,
    grid: Grid,
    dose_gy: np.ndarray,
    metrics: tuple[Metric, ...],
    end_caps: str = "half",
    extent: str = DOSE_GRID,
) -> StructureMetrics:
    """Rasterise ``roi`` on ``grid``, sample ``dose_gy`` and evaluate ``metrics``; ``extent`` names
    ``grid`` in the notes on parts outside it."""
    sampling = sample_roi(roi, grid, end_caps, extent)
    if sampling.is_empty:
        unevaluated: dict[str, float | None] = {str(m): None for m in metrics}
        return StructureMetrics(roi.name, roi.number, False, None, None, unevaluated, sampling.notes)
    dvh = sample_dose(sampling, dose_gy)
    values: dict[str, float | None] = {}
    notes = list(dvh.notes)
    for metric in metrics:
        values[str(metric)], reason = _value_and_reason(dvh, metric)
        if reason:
            notes.append(f"{metric} not evaluated: {reason}")
    return StructureMetrics(
        roi.name,
        roi.number,
        True,
        dvh.volume_cc,
        dvh.in_grid_volume_cc,
        values,
        tuple(notes),
        cumulative_dvh(dvh, CURVE_BIN_GY)[1],
        curve_bin_gy(dvh, CURVE_BIN_GY),
    )


@dataclass(frozen=True)
class DvhTable:
    """What ``reirrad dvh`` reports: per-structure metrics and the assumptions behind them."""

    dose_file: str
    structure_file: str
    dose_summation_type: str
    metrics: tuple[str, ...]
    structures: tuple[StructureMetrics, ...]
    eqd2: dict[str, float] | None  # {"fractions": n, "alpha_beta_gy": x} when converted
    end_caps: str = "half"
    quantity: DoseQuantity = field(default_factory=lambda: PHYSICAL)


@dataclass(frozen=True)
class DoseQuantity:
    """What the DVH doses are: ``name`` is "physical", "EQD2" or "effective (EQD2?), alpha/beta
    unknown"; ``alpha_beta_gy`` the EQD2's alpha/beta (Gy) when known and ``source`` where it
    comes from ("conversion" by this run, or "RTDOSE description" of a file reirrad wrote)."""

    name: str
    alpha_beta_gy: float | None = None
    source: str | None = None


PHYSICAL: DoseQuantity = DoseQuantity("physical")  # annotated: DvhTable refers to it before it is defined
UNKNOWN_EFFECTIVE = DoseQuantity("effective (EQD2?), alpha/beta unknown")
# the description reirrad.accumulate writes into an EFFECTIVE RTDOSE: "EQD2 a/b 3 Gy ..."
EQD2_DESCRIPTION = re.compile(r"^EQD2 a/b (\d+(?:\.\d+)?) Gy\b")


def dose_quantity(dose: DoseGrid) -> DoseQuantity:
    """The quantity an RTDOSE holds: DoseType EFFECTIVE is an EQD2, whose alpha/beta is read from
    the description reirrad writes (unknown for other writers); anything else is physical dose."""
    if dose.dose_type != "EFFECTIVE":
        return PHYSICAL
    match = EQD2_DESCRIPTION.match(dose.description)
    if match is None:
        return UNKNOWN_EFFECTIVE
    return DoseQuantity("EQD2", float(match.group(1)), "RTDOSE description")


def dvh_table(
    dose: DoseGrid,
    structures: StructureSet,
    names: tuple[str, ...] = (),
    metrics: tuple[Metric, ...] = (),
    fractions: int | None = None,
    alpha_beta_gy: float | None = None,
    end_caps: str = "half",
    extent: str = DOSE_GRID,
) -> DvhTable:
    """Metrics of the named structures (all when ``names`` is empty) on ``dose``.

    ``extent`` names what the dose grid is in the notes on structure parts outside it, when it is
    less than the planning system's dose grid (:attr:`reirrad.pairing.DosePair.extent`).

    With ``fractions`` and ``alpha_beta_gy`` the dose is converted to EQD2 voxel by voxel first.
    Raises :class:`InputError` for an unknown structure name, a lone EQD2 parameter, or an EQD2
    request on a per-fraction or per-beam dose (its total is unknown).
    """
    metrics = metrics or tuple(parse_metric(m) for m in DEFAULT_METRICS)
    rois = tuple(structures.by_name(n) for n in names) if names else structures.rois
    dose_gy = dose.dose_gy
    eqd2: dict[str, float] | None = None
    if (fractions is None) != (alpha_beta_gy is None):
        raise InputError(None, "--fractions and --alpha-beta must be given together")
    quantity = dose_quantity(dose)
    if fractions is not None:
        assert alpha_beta_gy is not None  # given together with fractions (checked above)
        if quantity is not PHYSICAL:
            raise InputError(
                dose.path,
                f"DoseType is EFFECTIVE ({quantity.name}): it is already an EQD2, converting it again is wrong",
            )
        if dose.summation_type not in WHOLE_DELIVERY:
            raise InputError(
                dose.path,
                f"DoseSummationType is {dose.summation_type}: not the whole delivery of a plan or "
                "fraction group, so EQD2 cannot be computed from it",
            )
        from reirrad.eqd2 import eqd2_gy  # here: reirrad.eqd2 loads numpy.typing, which a physical DVH never needs

        try:
            dose_gy = eqd2_gy(dose.dose_gy, fractions, alpha_beta_gy)
        except ValueError as exc:
            raise InputError(None, str(exc)) from None
        eqd2 = {"fractions": fractions, "alpha_beta_gy": alpha_beta_gy}
        quantity = DoseQuantity("EQD2", alpha_beta_gy, "conversion")
    rows = tuple(structure_metrics(roi, dose.grid, dose_gy, metrics, end_caps, extent) for roi in rois)
    return DvhTable(
        str(dose.path),
        str(structures.path),
        dose.summation_type,
        tuple(str(m) for m in metrics),
        rows,
        eqd2,
        end_caps,
        quantity,
    )
