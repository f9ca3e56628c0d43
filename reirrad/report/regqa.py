"""The QA picture of an automatic rigid registration: three orthogonal checkerboard views.

The new course's CT and the prior course's CT resampled onto it through the registration alternate
in square tiles, in axial, coronal and sagittal planes through one point (the new course's target,
else the new CT's centre). Each CT voxel is drawn as a block of whole pixels (no interpolation):
a tile's pixels are exactly the grey levels of one CT, so a misregistration shows as edges broken
at the tile borders. ``reirrad register --qa`` writes this picture; the HTML (and PDF) report of a
check that used an automatic registration shows it with the same caption.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from reirrad.autoreg import AutoRegistration, CtSeries, RegistrationQa
    from reirrad.results import CheckReport

WINDOW_HU = (-500.0, 1000.0)  # grey from black to white, HU
TILE_PX = 32  # side of a checkerboard tile, pixels of the picture
PANEL_PX = 360  # the longest side of a panel is about this many pixels (a voxel is at least one)
GAP_PX = 8  # between panels
BAND_PX = 48  # the caption lines above the panels
VIEWS = ("axial", "coronal", "sagittal")


def grey(hu: np.ndarray) -> np.ndarray:
    """HU as 8-bit grey levels over :data:`WINDOW_HU` (clipped)."""
    low, high = WINDOW_HU
    return np.rint(np.clip((np.asarray(hu, dtype=float) - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def centre_index(new: CtSeries, centre_mm: np.ndarray) -> tuple[int, int, int]:
    """The new CT's voxel (frame, row, column) nearest ``centre_mm`` (clipped into the scan)."""
    index = np.rint(new.grid.to_index(np.asarray(centre_mm, dtype=float)[None])[0])
    k, j, i = np.clip(index, 0, np.asarray(new.grid.shape) - 1).astype(int)
    return int(k), int(j), int(i)


def sections(
    prior: CtSeries, new: CtSeries, result: AutoRegistration, centre_mm: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(new CT plane, registered prior plane) in HU per view of :data:`VIEWS` through the voxel nearest
    ``centre_mm``; coronal and sagittal planes with the head (highest z) up."""
    from reirrad.autoreg import prior_on_new_planes

    k, j, i = centre_index(new, centre_mm)
    axial, coronal, sagittal = prior_on_new_planes(prior, new, result, (k, j, i))
    return [(new.hu[k], axial), (new.hu[::-1, j, :], coronal[::-1]), (new.hu[::-1, :, i], sagittal[::-1])]


@dataclass(frozen=True, eq=False)
class QaViews:
    """What the QA picture draws: per view of :data:`VIEWS`, the new CT's and the registered prior
    CT's plane in 8-bit grey (:func:`grey`), and whole pixels per voxel along (frames, rows, columns)."""

    planes: tuple[tuple[np.ndarray, np.ndarray], ...]
    pixels: tuple[int, int, int]


def qa_views(prior: CtSeries, new: CtSeries, result: AutoRegistration, centre_mm: np.ndarray) -> QaViews:
    """The three views of the QA picture through ``centre_mm`` (see :func:`sections`)."""
    planes = tuple((grey(fixed), grey(registered)) for fixed, registered in sections(prior, new, result, centre_mm))
    return QaViews(planes, pixels_per_voxel(new))


def pixels_per_voxel(new: CtSeries) -> tuple[int, int, int]:
    """Whole pixels per voxel along (frames, rows, columns): about :data:`PANEL_PX` pixels on the
    longest side of the scan, at least one per voxel."""
    spacing = np.asarray(new.grid.spacing_mm)
    per_mm = PANEL_PX / float(np.max(spacing * np.asarray(new.grid.shape)))
    k, j, i = np.maximum(1, np.rint(spacing * per_mm)).astype(int)
    return int(k), int(j), int(i)


def checkerboard(first: np.ndarray, second: np.ndarray, tile: int = TILE_PX) -> np.ndarray:
    """``first`` and ``second`` (same 2-D shape) alternating in square tiles of ``tile`` pixels,
    ``first`` in the top-left tile."""
    rows, columns = np.indices(first.shape)
    return np.where((rows // tile + columns // tile) % 2 == 0, first, second)


def panels(views: QaViews) -> list[np.ndarray]:
    """The three views as 8-bit grey checkerboards, each voxel a block of whole pixels."""
    pk, pj, pi = views.pixels
    repeats = ((pj, pi), (pk, pi), (pk, pj))
    out = []
    for (fixed, registered), (along_rows, along_columns) in zip(views.planes, repeats):
        first, second = (
            np.repeat(np.repeat(p, along_rows, axis=0), along_columns, axis=1) for p in (fixed, registered)
        )
        out.append(checkerboard(first, second))
    return out


def composite(views: list[np.ndarray]) -> np.ndarray:
    """The views side by side, top-aligned, :data:`GAP_PX` apart, on black (8-bit grey)."""
    height = max(v.shape[0] for v in views)
    width = sum(v.shape[1] for v in views) + GAP_PX * (len(views) - 1)
    out = np.zeros((height, width), np.uint8)
    column = 0
    for view in views:
        out[: view.shape[0], column : column + view.shape[1]] = view
        column += view.shape[1] + GAP_PX
    return out


def transform_text(result: AutoRegistration, centre_mm: np.ndarray) -> str:
    """The registration as a shift at ``centre_mm`` (mm, new frame) and a rotation (degrees)."""
    rotation = result.matrix[:3, :3]
    centre = np.asarray(centre_mm, dtype=float)
    prior_point = result.new_to_prior[:3, :3] @ centre + result.new_to_prior[:3, 3]
    shift = centre - prior_point
    angle = float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    about = (
        "" if np.linalg.norm(axis) < 1e-12 else " about ({:.2f}, {:.2f}, {:.2f})".format(*axis / np.linalg.norm(axis))
    )
    return (
        f"prior -> new: shift ({shift[0]:.1f}, {shift[1]:.1f}, {shift[2]:.1f}) mm "
        f"({np.linalg.norm(shift):.1f} mm) at the view point, rotation {angle:.2f} degrees{about}"
    )


def caption(result: AutoRegistration, centre_mm: np.ndarray, through: str, course: str = "") -> str:
    """What the picture shows: the registration (not reviewed), its metric and transform, the point."""
    centre = np.asarray(centre_mm, dtype=float)
    whose = f"course '{course}': " if course else ""
    return (
        f"{whose}{result.label}{', bone-refined' if result.bone_mask else ''}; {transform_text(result, centre)}. "
        f"Checkerboard of the new CT (top-left tile) and the prior CT registered onto it, "
        f"{' / '.join(VIEWS)} through {through} ({centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f}) mm; "
        f"window {WINDOW_HU[0]:g} to {WINDOW_HU[1]:g} HU. Review it: edges must run on across the tiles."
    )


def qa_png(prior: CtSeries, new: CtSeries, result: AutoRegistration, centre_mm: np.ndarray, through: str) -> bytes:
    """The QA picture (PNG bytes) of a registration of the two CTs (see :func:`picture`)."""
    return picture(qa_views(prior, new, result, centre_mm), caption(result, centre_mm, through))


def picture(views: QaViews, text: str) -> bytes:
    """PNG bytes: ``text`` (the caption) over the three checkerboard views, each voxel a block of whole
    pixels starting :data:`BAND_PX` rows from the top (no resampling by the plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    from matplotlib.figure import Figure

    image = composite(panels(views))
    height, width = image.shape[0] + BAND_PX, max(image.shape[1], 600)
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="white")
    figure.figimage(np.repeat(image[..., None], 3, axis=2), xo=0, yo=0, origin="upper")  # RGB: drawn as is
    lines = textwrap.wrap(text, width=max(60, int(width / 6.2)))[:3]
    figure.text(4 / width, 1 - 4 / height, "\n".join(lines), va="top", ha="left", fontsize=7.5, family="sans-serif")
    stream = io.BytesIO()
    figure.savefig(stream, format="png", dpi=100)
    return stream.getvalue()


def qa_figure(qa: RegistrationQa) -> bytes:
    """The QA picture of one automatic registration a check used."""
    return picture(qa.views, caption(qa.result, qa.centre_mm, qa.through))


def regqa_html(report: CheckReport) -> str:
    """A section with the QA picture of every automatic registration the check used ("" when none:
    the page of a check without one is unchanged)."""
    import base64

    figures = "".join(
        f'<figure><img alt="automatic registration QA, course {escape(p.course)}" '
        f'src="data:image/png;base64,{base64.b64encode(p.png()).decode("ascii")}">'
        f"<figcaption>{escape(p.caption)}</figcaption></figure>"
        for p in report.registration_pictures
    )
    return f"\n<h2>Automatic registration QA (not reviewed)</h2>\n{figures}" if figures else ""
