"""Where the dose is: axial, coronal and sagittal planes through the hottest cumulative point of
every organ that fails or warns.

The planes are sampled while the check runs (they need the courses related to the reference
frame) and travel on the report as plain arrays (:class:`reirrad.results.Hotspot`, never in the
JSON document); :func:`hotspot_html` draws them into the HTML report. The hottest point is the
check's own structure sample with the highest cumulative EQD2 (where the cumulative Dmax is);
every dose drawn or quoted comes from :func:`reirrad.accumulate.cumulative_eqd2_at`. The planning
CT underneath is optional: a single CT series in the reference course's folder, in the reference
frame of reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom.filereader import read_partial

from reirrad.accumulate import AccumulatedCase, cumulative_eqd2_at
from reirrad.dicom.io import NotDicomError, read_dataset
from reirrad.dicom.structures import Roi, StructureSet
from reirrad.dvh import trilinear
from reirrad.eqd2 import RecoveryModel
from reirrad.errors import InputError
from reirrad.grid import Grid
from reirrad.metrics import VolumeAtDose, parse_metric
from reirrad.report import number_text
from reirrad.results import CheckReport, ConstraintResult, Hotspot, Section, Status, View

if TYPE_CHECKING:
    from matplotlib.typing import LineStyleType
    from pydicom import Dataset

DRAWN = (Status.FAIL, Status.WARN)  # the organs that get a figure
TARGET_KINDS = ("PTV", "CTV", "GTV")  # the target: structures named with the first kind found
FIELD_MM = 120.0  # side of the square field drawn around the hottest point
MAX_STEP_MM = 1.0  # mesh pitch: a third of the finest dose-grid spacing, at most this
# (horizontal, vertical, fixed) patient axes (0 x, 1 y, 2 z) of each view
AXES = {View.AXIAL: (0, 1, 2), View.CORONAL: (0, 2, 1), View.SAGITTAL: (1, 2, 0)}
# edge labels (left, right, bottom, top) as drawn: x to the patient's left, y posterior, z superior
EDGES = {View.AXIAL: ("R", "L", "P", "A"), View.CORONAL: ("R", "L", "I", "S"), View.SAGITTAL: ("A", "P", "I", "S")}
CT_WINDOW_HU = (-160.0, 240.0)  # soft-tissue window (level 40, width 400)
ORGAN_COLOUR, TARGET_COLOUR, ISODOSE_COLOUR = "#39ff14", "#ff5cf4", "#00e5ff"
ISODOSE_STYLES: tuple[LineStyleType, LineStyleType] = ("--", "-")  # warn, fail (solid alone when they coincide)


# ------------------------------------------------------------------ sampling (during the check)


def organ_hotspots(
    acc: AccumulatedCase,
    results: Sequence[ConstraintResult],
    hottest_mm: Callable[[ConstraintResult], np.ndarray],
    model: RecoveryModel,
    lql_transition_gy: float | None = None,
) -> tuple[Hotspot, ...]:
    """The planes through the hottest point of every failing or warning organ (none without a
    reference structure set).

    Parameters
    ----------
    acc : AccumulatedCase
        The courses related to the reference frame.
    results : sequence of ConstraintResult
        The check's verdicts; those that fail or warn on a structure get a hot spot.
    hottest_mm : callable
        A result -> the sample of its structure (reference frame, mm, (3,)) with the highest
        cumulative EQD2 as judged: where its cumulative Dmax is.
    model : RecoveryModel
        The run's recovery model, applied where a result was judged on discounted dose.
    lql_transition_gy : float, optional
        LQ-L transition dose per fraction (Gy), as in the check.
    """
    drawn = [r for r in results if r.status in DRAWN and r.structure is not None]
    if not drawn or acc.structures is None:
        return ()
    targets = target_rois(acc.structures)
    ct = planning_ct(acc)
    return tuple(_hotspot(acc, r, hottest_mm(r), model, lql_transition_gy, targets, ct) for r in drawn)


def _hotspot(
    acc: AccumulatedCase,
    result: ConstraintResult,
    point: np.ndarray,
    model: RecoveryModel,
    lql_transition_gy: float | None,
    targets: tuple[Roi, ...],
    ct: tuple[np.ndarray, Grid, str] | str,
) -> Hotspot:
    """The three planes through one organ's hottest point."""
    assert acc.structures is not None and result.structure is not None
    roi = acc.structures.by_name(result.structure)
    recovery = model if any(result.recovery.values()) else None  # as judged: discounted or not

    def eqd2_at(points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cumulative_eqd2_at(acc, points_mm, result.alpha_beta_gy, recovery, result.organ, lql_transition_gy)

    value = float(eqd2_at(point[None])[0][0])
    step = min(MAX_STEP_MM, min(acc.grid.spacing_mm) / 3.0)
    thickness = acc.grid.spacing_mm[0]
    sections = []
    for view in View:
        u, v, points = plane_points(view, point, FIELD_MM, step)
        shape = (len(v), len(u))
        target = np.zeros(len(points), bool)
        for t in targets:
            target |= enclosed(t, points, thickness)
        eqd2, covered = eqd2_at(points)
        sections.append(
            Section(
                view=view,
                u_mm=u,
                v_mm=v,
                eqd2_gy=np.where(covered, eqd2, np.nan).reshape(shape).astype(np.float32),
                organ=enclosed(roi, points, thickness).reshape(shape),
                target=target.reshape(shape),
                ct_hu=None if isinstance(ct, str) else ct_at(ct[0], ct[1], points).reshape(shape).astype(np.float32),
            )
        )
    notes = () if targets else ("no target (PTV, CTV or GTV) named in the reference structure set",)
    return Hotspot(
        constraint_id=result.constraint_id,
        point_mm=(float(point[0]), float(point[1]), float(point[2])),
        point_eqd2_gy=value,
        sections=tuple(sections),
        target=tuple(t.name for t in targets),
        ct="" if isinstance(ct, str) else ct[2],
        notes=notes + ((ct,) if isinstance(ct, str) and ct else ()),
    )


def plane_points(
    view: View, point_mm: np.ndarray, field_mm: float, step_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square mesh of side ``field_mm`` centred on ``point_mm`` in the plane of ``view``
    through it: horizontal (U,) and vertical (V,) coordinates (mm) and the points (V * U, 3), mm,
    row by row."""
    horizontal, vertical, fixed = AXES[view]
    offsets = np.arange(-field_mm / 2, field_mm / 2 + step_mm / 2, step_mm)
    u, v = point_mm[horizontal] + offsets, point_mm[vertical] + offsets
    points = np.empty((len(v), len(u), 3))
    points[..., horizontal], points[..., vertical] = np.meshgrid(u, v)
    points[..., fixed] = point_mm[fixed]
    return u, v, points.reshape(-1, 3)


def enclosed(roi: Roi, points_mm: np.ndarray, thickness_mm: float) -> np.ndarray:
    """Where the ROI's closed axial contours enclose the points (N,) bool: each point belongs to
    the nearest contour plane within half the contour spacing (half ``thickness_mm`` for a
    single plane), inside by the even-odd rule over that plane's polygons."""
    contours = [c for c in roi.closed_contours if c.is_axial]
    inside = np.zeros(len(points_mm), bool)
    if not contours:
        return inside
    z = np.round([c.z_mm for c in contours], 3)
    planes = np.unique(z)
    half = (float(np.median(np.diff(planes))) if len(planes) > 1 else thickness_mm) / 2
    nearest, distance = _nearest_plane(points_mm[:, 2], planes)
    near = distance <= half + 1e-6
    by_plane: dict[int, list[np.ndarray]] = {}
    for contour, plane in zip(contours, np.searchsorted(planes, z)):
        by_plane.setdefault(int(plane), []).append(contour.points_mm[:, :2])
    chosen = np.flatnonzero(near)
    order = np.argsort(nearest[chosen], kind="stable")
    chosen = chosen[order]
    groups = np.split(chosen, np.flatnonzero(np.diff(nearest[chosen])) + 1) if len(chosen) else []
    for group in groups:
        for polygon in by_plane.get(int(nearest[group[0]]), []):
            inside[group] ^= in_polygon(polygon, points_mm[group, :2])
    return inside


def _nearest_plane(z_mm: np.ndarray, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest of the sorted ``planes`` (mm) to each z (mm), the lower one on a tie,
    and the distance |z - plane| (mm)."""
    upper = np.clip(np.searchsorted(planes, z_mm), 0, len(planes) - 1)
    lower = np.maximum(upper - 1, 0)
    to_lower, to_upper = np.abs(z_mm - planes[lower]), np.abs(z_mm - planes[upper])
    take_lower = to_lower <= to_upper
    return np.where(take_lower, lower, upper), np.where(take_lower, to_lower, to_upper)


def in_polygon(polygon_mm: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Whether each point (N, 2) lies inside the closed polygon (M, 2): an odd number of its edges
    cross the ray from the point towards +x. Only points within the polygon's rows (and not right
    of it) can be inside; the others are not tested."""
    low, high = polygon_mm.min(axis=0), polygon_mm.max(axis=0)
    x, y = points_mm[:, 0], points_mm[:, 1]
    # a point below every vertex, at or above the highest, or right of the polygon crosses no edge
    candidate = np.flatnonzero((y >= low[1]) & (y < high[1]) & (x <= high[0] + 1e-6 * max(1.0, abs(high[0]))))
    inside = np.zeros(len(points_mm), bool)
    if len(candidate):
        inside[candidate] = _crosses_odd(polygon_mm, points_mm[candidate])
    return inside


def _crosses_odd(polygon_mm: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """The even-odd test of :func:`in_polygon` on every point (N, 2)."""
    start, end = polygon_mm, np.roll(polygon_mm, -1, axis=0)
    x, y = points_mm[:, 0, None], points_mm[:, 1, None]
    spans = (start[:, 1] > y) != (end[:, 1] > y)  # (N, M): the edge straddles the point's row
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = start[:, 0] + (y - start[:, 1]) * (end[:, 0] - start[:, 0]) / (end[:, 1] - start[:, 1])
    return np.count_nonzero(spans & (crossing_x > x), axis=1) % 2 == 1


def target_rois(structures: StructureSet) -> tuple[Roi, ...]:
    """The new course's target: the non-empty structures whose names contain PTV, else CTV, else
    GTV (case-insensitive); none when no name does."""
    for kind in TARGET_KINDS:
        found = tuple(r for r in structures.rois if kind in r.name.upper() and not r.is_empty)
        if found:
            return found
    return ()


# ------------------------------------------------------------------ the planning CT (optional)


def planning_ct(acc: AccumulatedCase) -> tuple[np.ndarray, Grid, str] | str:
    """The CT series in the reference course's folder: its volume (HU, float32, (frames, rows,
    columns)), its grid and a description; or why none is drawn ("" when the folder holds no CT)."""
    folder = Path(acc.case.reference.path)
    headers, damaged = _ct_headers(folder) if folder.is_dir() else ([], "")
    if damaged:  # the slices read without it would leave a gap or a shorter CT: none is drawn
        return f"planning CT not drawn: {damaged}"
    if not headers:
        return ""
    frame = acc.reference_grid.frame_of_reference_uid
    headers = [(p, ds) for p, ds in headers if str(ds.get("FrameOfReferenceUID", "")) == frame]
    if not headers:
        return f"planning CT in {folder} not drawn: not in the reference course's frame of reference"
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        return f"planning CT not drawn: {len(series)} CT series in {folder} (one expected)"
    try:
        volume, grid = _ct_volume([(p, read_dataset(p)) for p, _ in headers])
    except (InputError, ValueError, AttributeError, KeyError) as error:
        return f"planning CT not drawn: {error}"
    return volume, grid, f"planning CT: {len(headers)} slices, series {series.pop()}"


def _ct_headers(folder: Path) -> tuple[list, str]:
    """(path, header) of every CT image under ``folder``, and "" or "<file>: <problem>" of the first
    DICOM file that may be a CT image (its first elements name no other modality) but cannot be read."""
    found, damaged = [], ""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if _not_ct(path):  # an RTSTRUCT or RTDOSE is not decoded in full only to be skipped
            continue
        try:
            ds = read_dataset(path, stop_before_pixels=True)
        except NotDicomError:
            continue
        except InputError as error:
            damaged = damaged or str(error)
            continue
        if ds.get("Modality", "") == "CT":
            found.append((path, ds))
    return found, damaged


MODALITY_TAG = 0x00080060


def _not_ct(path: Path) -> bool:
    """Whether the file's first elements (up to Modality) name another modality than CT: a quick look
    that reads no further. False when they cannot be read so (the file is then read in full)."""
    try:
        with path.open("rb") as handle:
            ds = read_partial(handle, stop_when=lambda tag, vr, length: tag > MODALITY_TAG)
    except Exception:  # any problem: the full reading decides, and says why
        return False
    return str(ds.get("Modality", "")) not in ("", "CT")


def _ct_volume(files: list[tuple[Path, Dataset]]) -> tuple[np.ndarray, Grid]:
    """One axial CT series, (path, dataset) of each slice, as a volume (HU) on its grid; ValueError
    when the slices do not form one evenly spaced axis-aligned stack or a slice's pixels cannot be
    decoded (naming its file)."""
    slices = [ds for _, ds in files]
    orientation = np.array([float(v) for v in slices[0].ImageOrientationPatient])
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    if abs(abs(normal[2]) - 1.0) > 1e-4 or any(
        not np.allclose([float(v) for v in s.ImageOrientationPatient], orientation, atol=1e-4) for s in slices
    ):
        raise ValueError("its slices are not all transverse with one orientation")
    positions = np.array([[float(v) for v in s.ImagePositionPatient] for s in slices])
    order = np.argsort(positions @ normal)
    offsets = (positions @ normal)[order]
    steps = np.diff(offsets)
    if len(slices) < 2 or steps.min() <= 0 or np.ptp(steps) > 0.01:
        raise ValueError("its slices are not evenly spaced")
    spacing = [float(v) for v in slices[0].PixelSpacing]
    volume = np.stack([_ct_hu(*files[i]) for i in order])
    grid = Grid(
        origin_mm=_triple(positions[order[0]]),
        row_direction=_triple(row),
        column_direction=_triple(column),
        frame_direction=_triple(normal),
        spacing_mm=(float(steps.mean()), spacing[0], spacing[1]),
        shape=(volume.shape[0], volume.shape[1], volume.shape[2]),
    )
    return volume, grid


def _ct_hu(path: Path, ds: Dataset) -> np.ndarray:
    """One CT slice's pixels in HU (float32); ValueError naming ``path`` when they cannot be decoded."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom and its pixel handlers raise many types for undecodable pixels
        raise ValueError(f"{path}: cannot decode its pixel data ({exc.__class__.__name__}: {exc})") from None
    return pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1.0)) + float(ds.get("RescaleIntercept", 0.0))


def _triple(vector: np.ndarray) -> tuple[float, float, float]:
    return float(vector[0]), float(vector[1]), float(vector[2])


def ct_at(volume: np.ndarray, grid: Grid, points_mm: np.ndarray) -> np.ndarray:
    """CT numbers (HU) at the points, interpolated trilinearly; NaN outside the CT."""
    index = grid.to_index(points_mm)
    inside = np.all((index >= -0.5) & (index <= np.asarray(grid.shape) - 0.5), axis=1)
    out = np.full(len(points_mm), np.nan)
    out[inside] = trilinear(volume, index[inside])
    return out


# ------------------------------------------------------------------ drawing (the HTML report)


def isodose_levels(result: ConstraintResult) -> list[tuple[float, str]]:
    """The dose levels (Gy) to draw as isodose lines, with their names: the warn and fail levels of
    a dose metric (one line when they coincide), the dose parameter of a volume metric."""
    if result.unit != "Gy":
        metric = parse_metric(result.metric)
        if not isinstance(metric, VolumeAtDose):
            return []
        return [(metric.dose_gy, f"{metric.dose_gy:g} Gy ({result.metric})")]
    levels: dict[float, str] = {}
    for level, name in ((result.warn_gy, "warn"), (result.limit_gy, "fail")):
        if level is not None:
            levels[level] = f"{levels[level]} and {name}" if level in levels else name
    return [(level, f"{number_text(level)} Gy ({name})") for level, name in sorted(levels.items())]


def _draw_section(
    axes, section: Section, levels: list[tuple[float, str]], point_mm: tuple[float, float, float], vmax: float
):
    """One plane: CT, dose wash, isodose lines, organ and target outlines, the hottest point."""
    from matplotlib import patheffects

    horizontal, vertical, fixed = AXES[section.view]
    step = float(section.u_mm[1] - section.u_mm[0])
    extent = (
        section.u_mm[0] - step / 2,
        section.u_mm[-1] + step / 2,
        section.v_mm[0] - step / 2,
        section.v_mm[-1] + step / 2,
    )
    axes.set_facecolor("#808080")  # outside every dose grid and the CT
    if section.ct_hu is not None:
        axes.imshow(
            np.ma.masked_invalid(section.ct_hu),
            cmap="gray",
            vmin=CT_WINDOW_HU[0],
            vmax=CT_WINDOW_HU[1],
            extent=extent,
            origin="lower",
            interpolation="bilinear",
        )
    dose = np.ma.masked_invalid(section.eqd2_gy)
    if section.ct_hu is not None:
        dose = np.ma.masked_less(dose, 0.1 * vmax)  # the anatomy shows through the low doses
    image = axes.imshow(
        dose,
        cmap="inferno",
        vmin=0.0,
        vmax=vmax,
        extent=extent,
        origin="lower",
        alpha=0.6 if section.ct_hu is not None else 1.0,
        interpolation="bilinear",
    )
    outline = [patheffects.withStroke(linewidth=3, foreground="black")]
    for (level, _), style in zip(levels, ISODOSE_STYLES):
        if np.nanmax(section.eqd2_gy, initial=-np.inf) >= level:
            lines = axes.contour(
                section.u_mm,
                section.v_mm,
                np.ma.masked_invalid(section.eqd2_gy),
                levels=[level],
                colors=ISODOSE_COLOUR,
                linestyles="-" if len(levels) == 1 else style,
                linewidths=1.4,
            )
            lines.set(path_effects=outline)
    for mask, colour, style in ((section.target, TARGET_COLOUR, ":"), (section.organ, ORGAN_COLOUR, "-")):
        if mask.any():
            axes.contour(
                section.u_mm,
                section.v_mm,
                mask.astype(float),
                levels=[0.5],
                colors=colour,
                linestyles=style,
                linewidths=1.6,
            )
    axes.plot(
        point_mm[horizontal],
        point_mm[vertical],
        marker="X",
        markersize=12,
        color="white",
        markeredgecolor="black",
        markeredgewidth=1.2,
        linestyle="none",
    )
    name = "xyz"
    axes.set_title(f"{section.view.value}, {name[fixed]} = {point_mm[fixed]:.1f} mm", fontsize="medium")
    axes.set_xlabel(f"{name[horizontal]} (mm)", fontsize="small")
    axes.set_ylabel(f"{name[vertical]} (mm)", fontsize="small")
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(*((extent[3], extent[2]) if section.view is View.AXIAL else (extent[2], extent[3])))  # anterior up
    axes.set_aspect("equal")
    axes.tick_params(labelsize="x-small")
    left, right, bottom, top = EDGES[section.view]
    for text, x, y, ha, va in (
        (left, 0.02, 0.5, "left", "center"),
        (right, 0.98, 0.5, "right", "center"),
        (bottom, 0.5, 0.02, "center", "bottom"),
        (top, 0.5, 0.98, "center", "top"),
    ):
        axes.text(
            x, y, text, transform=axes.transAxes, ha=ha, va=va, color="white", fontweight="bold", path_effects=outline
        )
    return image


def hotspot_figure(report: CheckReport, spot: Hotspot) -> str:
    """One organ's three planes as a PNG data URI: colour wash, isodose lines, outlines, the point,
    one colour bar and a legend below the planes."""
    from matplotlib import patheffects
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from reirrad.report.figures import png_data_uri

    result = report.result(spot.constraint_id)
    levels = isodose_levels(result)
    highest = max(float(np.nanmax(s.eqd2_gy, initial=0.0)) for s in spot.sections)
    vmax = max([highest, *(level for level, _ in levels)]) or 1.0
    figure = Figure(figsize=(13.5, 5.4), dpi=80)
    panels = figure.subplots(1, 3)
    images = [_draw_section(axes, section, levels, spot.point_mm, vmax) for axes, section in zip(panels, spot.sections)]
    figure.colorbar(
        images[-1],
        ax=list(panels),
        fraction=0.025,
        pad=0.02,
        label=f"cumulative EQD2 (Gy, alpha/beta {result.alpha_beta_gy:g} Gy)",
    )
    handles = [
        Line2D([], [], color=ORGAN_COLOUR, linewidth=1.6, label=f"{result.organ} ({result.structure})"),
        *(
            [
                Line2D(
                    [], [], color=TARGET_COLOUR, linestyle=":", linewidth=1.6, label="target: " + ", ".join(spot.target)
                )
            ]
            if spot.target
            else []
        ),
        *(
            Line2D(
                [],
                [],
                color=ISODOSE_COLOUR,
                linestyle="-" if len(levels) == 1 else style,
                linewidth=1.4,
                label=f"isodose {label}",
            )
            for (_, label), style in zip(levels, ISODOSE_STYLES)
        ),
    ]
    for handle in handles:  # the light outline colours on the white legend
        handle.set_path_effects([patheffects.withStroke(linewidth=3.5, foreground="#444")])
    handles.append(
        Line2D(
            [],
            [],
            marker="X",
            markersize=10,
            color="white",
            markeredgecolor="black",
            linestyle="none",
            label=f"hottest point: {number_text(spot.point_eqd2_gy)} Gy",
        )
    )
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small", frameon=False)
    figure.suptitle(
        f"{result.organ} {result.metric}: cumulative {number_text(result.value_gy)} {result.unit} "
        f"- {result.status.value.replace('_', ' ').upper()}",
        fontweight="bold",
    )
    figure.subplots_adjust(left=0.05, right=0.9, bottom=0.15, top=0.9, wspace=0.25)
    return png_data_uri(figure)


def hotspot_caption(report: CheckReport, spot: Hotspot) -> str:
    """The figure's caption (plain text): the point, the quantity, the target and the CT."""
    result = report.result(spot.constraint_id)
    x, y, z = spot.point_mm
    recovery = "discounted as judged" if any(result.recovery.values()) else "no recovery discount"
    parts = [
        (
            f"{result.organ} ({result.structure}): hottest cumulative point at x {x:.1f}, y {y:.1f}, z {z:.1f} mm "
            f"(reference frame), cumulative EQD2 {number_text(spot.point_eqd2_gy)} Gy ({recovery})"
        ),
        (
            f"{FIELD_MM:g} mm fields centred on it: axial seen from the feet and coronal from the front (the "
            "patient's right on the left), sagittal from the patient's left (anterior on the left)"
        ),
        "target drawn: " + ", ".join(spot.target) if spot.target else "",
        spot.ct or "no planning CT in the course folder",
        *spot.notes,
    ]
    return "; ".join(p for p in parts if p)


def hotspot_html(report: CheckReport) -> str:
    """The report's "Where the dose is" section (empty when no organ fails or warns)."""
    drawn = [r for r in report.results if r.status in DRAWN and r.structure is not None]
    if not drawn:
        return ""
    figures = "".join(
        f'<figure class="hotspot"><img alt="{escape(report.result(s.constraint_id).organ)}: where the dose is" '
        f'src="{hotspot_figure(report, s)}"><figcaption>{escape(hotspot_caption(report, s))}</figcaption></figure>'
        for s in report.hotspots
    )
    missing = {r.constraint_id for r in drawn} - {s.constraint_id for s in report.hotspots}
    why = (
        "conservative mode relates no course to the reference frame"
        if report.options.get("conservative")
        else "the planes are computed by the check and not kept in a results store"
    )
    note = f"<p>Not drawn ({why}): {escape(', '.join(sorted(missing)))}</p>" if missing else ""
    return f"<h2>Where the dose is</h2>{figures}{note}"
