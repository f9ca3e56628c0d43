"""The report's DVH figures: cumulative EQD2 DVHs per alpha/beta, and per organ the prior, new and
cumulative EQD2 DVHs overlaid (matplotlib, object-oriented API, PNG data URIs for a self-contained page)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

from reirrad.report import number_text
from reirrad.results import CheckReport, ConstraintResult, DvhCurve

if TYPE_CHECKING:
    from matplotlib.typing import LineStyleType

SIDES = {"_L": "-", "_R": "--"}  # line style of a left / right organ; others dash-dot
OTHER_SIDE = "-."
COURSE_STYLES: tuple[LineStyleType, ...] = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))  # the courses', oldest first
PANEL_COLUMNS = 4  # organs side by side in the per-course figure


def cumulative_curves(report: CheckReport, alpha_beta_gy: float) -> list[DvhCurve]:
    """The cumulative EQD2 curves of one alpha/beta (not the per-course ones)."""
    return [c for c in report.curves if c.alpha_beta_gy == alpha_beta_gy and not c.course]


def _organ_of(report: CheckReport) -> dict[str, str]:
    """The organ each evaluated structure stands for (the structure itself when unmatched)."""
    return {r.structure: r.organ for r in report.results if r.structure}


def curve_styles(report: CheckReport, alpha_beta_gy: float) -> dict[str, tuple[tuple, str, str]]:
    """Colour, line style and legend label of each curve of one figure: the two sides of an organ
    take the dark and light shade of one tab20 colour pair and a solid / dashed line."""
    from matplotlib import colormaps

    colours = colormaps["tab20"].colors  # type: ignore[attr-defined]  # a ListedColormap
    organs = _organ_of(report)
    styles = {}
    bases: list[str] = []
    for curve in cumulative_curves(report, alpha_beta_gy):
        organ = organs.get(curve.structure, curve.structure)
        side = organ[-2:] if organ[-2:] in SIDES else ""
        base = organ[: len(organ) - len(side)]
        bases.extend([] if base in bases else [base])
        index = (2 * bases.index(base) + (side == "_R")) % len(colours)
        label = organ if organ == curve.structure else f"{organ} ({curve.structure})"
        styles[curve.structure] = (colours[index], SIDES.get(side, OTHER_SIDE), label)
    return styles


def limit_marks(report: CheckReport, alpha_beta_gy: float) -> list[tuple[float, str, str]]:
    """Warn and limit levels (Gy) of one figure's dose constraints, each dose level once (coinciding
    lines are one line with one label): (dose, "limit" when any organ's limit lies there else
    "warn", label naming the organs per kind)."""
    marks: dict[float, dict[str, list[str]]] = {}
    for r in report.results:
        if r.alpha_beta_gy != alpha_beta_gy or r.unit != "Gy" or r.structure is None:
            continue
        for kind, level in (("warn", r.warn_gy if r.warn_gy != r.limit_gy else None), ("limit", r.limit_gy)):
            if level is None:
                continue
            organs = marks.setdefault(level, {}).setdefault(kind, [])
            organs.extend([] if r.organ in organs else [r.organ])
    return [
        (
            level,
            "limit" if "limit" in kinds else "warn",
            f"{number_text(level)} Gy: "
            + "; ".join(f"{kind} {', '.join(organs)}" for kind, organs in sorted(kinds.items())),
        )
        for level, kinds in sorted(marks.items())
    ]


def dvh_figures(report: CheckReport) -> list[tuple[float, str]]:
    """One cumulative EQD2 DVH figure per alpha/beta (PNG as a data URI): each organ and side its
    own colour and line style, the legend beside the axes, each warn (dotted) and limit (dashed)
    level drawn and labelled once with the organs it applies to."""
    from matplotlib.figure import Figure  # object-oriented API: no pyplot, no global backend

    figures = []
    for alpha_beta in sorted({c.alpha_beta_gy for c in report.curves if not c.course}):
        figure = Figure(figsize=(11, 4.8), dpi=100)
        axes = figure.add_subplot()
        styles = curve_styles(report, alpha_beta)
        for curve in cumulative_curves(report, alpha_beta):
            colour, linestyle, label = styles[curve.structure]
            axes.plot(curve.dose_gy, curve.volume_percent, color=colour, linestyle=linestyle, label=label)
        for level, kind, label in limit_marks(report, alpha_beta):
            axes.axvline(
                level,
                color="#b00" if kind == "limit" else "#a60",
                linestyle="--" if kind == "limit" else ":",
                linewidth=1,
            )
            axes.annotate(
                label,
                (level, 0.99),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize="x-small",
                va="top",
                ha="right",
                color="#444",
                backgroundcolor=(1, 1, 1, 0.7),
            )
        axes.set_xlabel(f"cumulative EQD2 (Gy, alpha/beta {alpha_beta:g} Gy)")
        axes.set_ylabel("volume (%)")
        axes.set_ylim(0, 100)
        axes.set_xlim(left=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        figure.tight_layout()
        figures.append((alpha_beta, png_data_uri(figure)))
    return figures


def png_data_uri(figure) -> str:
    """A matplotlib figure as a PNG data URI, to embed in a self-contained page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def course_styles(report: CheckReport) -> dict[str, tuple[tuple, LineStyleType, float, str]]:
    """Colour, line style, width and legend label of each course's own curve and the cumulative
    one (key ""): courses oldest first in distinct tab10 colours and broken lines, the cumulative
    curve solid black and thicker."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors  # type: ignore[attr-defined]  # a ListedColormap
    styles: dict[str, tuple[tuple, LineStyleType, float, str]] = {
        c.name: (
            colours[i % len(colours)],
            COURSE_STYLES[i % len(COURSE_STYLES)],
            1.5,
            f"course '{c.name}' (own EQD2)" + (", reference" if c.name == report.reference_course else ""),
        )
        for i, c in enumerate(report.courses)
    }
    styles[""] = ((0.0, 0.0, 0.0), "-", 2.2, "cumulative EQD2 (no recovery)")
    return styles


def constrained(report: CheckReport) -> list[ConstraintResult]:
    """One result per constrained structure and alpha/beta that has curves (the first constraint
    of each), in the constraint set's order."""
    drawn = {(c.structure, c.alpha_beta_gy) for c in report.curves}
    first: dict[tuple[str, float], ConstraintResult] = {}
    for r in report.results:
        if r.has_threshold and r.structure is not None and (r.structure, r.alpha_beta_gy) in drawn:
            first.setdefault((r.structure, r.alpha_beta_gy), r)
    return list(first.values())


def _levels(report: CheckReport, structure: str, alpha_beta_gy: float) -> dict[float, str]:
    """The warn and limit doses (Gy) of a structure's dose constraints: "limit" wins a shared level."""
    levels: dict[float, str] = {}
    for r in report.results:
        if r.structure == structure and r.alpha_beta_gy == alpha_beta_gy and r.unit == "Gy":
            for level, kind in ((r.warn_gy, "warn"), (r.limit_gy, "limit")):
                if level is not None and levels.get(level) != "limit":
                    levels[level] = kind
    return levels


def course_dvh_figure(report: CheckReport) -> str | None:
    """Per constrained organ, its DVHs of each course's own EQD2 and of the cumulative EQD2 overlaid
    (one panel per organ and alpha/beta, the warn and limit levels marked, one legend above the
    panels) as a PNG data URI; None when no constrained organ has curves."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    organs = constrained(report)
    if not organs:
        return None
    styles = course_styles(report)
    rows = -(-len(organs) // PANEL_COLUMNS)
    columns = min(PANEL_COLUMNS, len(organs))
    figure = Figure(figsize=(3.4 * columns, 2.7 * rows + 0.8), dpi=80)
    panels = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for axes, result in zip(panels, organs):
        for curve in (
            c for c in report.curves if (c.structure, c.alpha_beta_gy) == (result.structure, result.alpha_beta_gy)
        ):
            colour, linestyle, width, _ = styles.get(curve.course, styles[""])
            axes.plot(curve.dose_gy, curve.volume_percent, color=colour, linestyle=linestyle, linewidth=width)
        for level, kind in _levels(report, result.structure or "", result.alpha_beta_gy).items():
            axes.axvline(
                level,
                color="#b00" if kind == "limit" else "#a60",
                linestyle="--" if kind == "limit" else ":",
                linewidth=1,
            )
        name = result.organ if result.organ == result.structure else f"{result.organ} ({result.structure})"
        axes.set_title(
            f"{name}, a/b {result.alpha_beta_gy:g}: {result.status.value.replace('_', ' ')}",
            fontsize="small",
            color="#b00" if result.status == "fail" else "#222",
        )
        axes.set_ylim(0, 100)
        axes.set_xlim(left=0)
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize="x-small")
        axes.set_xlabel("EQD2 (Gy)", fontsize="x-small")
        axes.set_ylabel("volume (%)", fontsize="x-small")
    for axes in panels[len(organs) :]:
        axes.set_visible(False)
    handles = [Line2D([], [], color=c, linestyle=s, linewidth=w, label=label) for c, s, w, label in styles.values()]
    handles += [
        Line2D([], [], color="#a60", linestyle=":", label="warn level"),
        Line2D([], [], color="#b00", linestyle="--", label="limit"),
    ]
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize="small", frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    return png_data_uri(figure)


def course_dvh_html(report: CheckReport) -> str:
    """The report's per-course DVH section (empty without curves)."""
    uri = course_dvh_figure(report)
    if uri is None:
        return ""
    return (
        '<h2>DVHs per course</h2><figure><img alt="per-course and cumulative EQD2 DVHs of every constrained '
        f'organ" src="{uri}"><figcaption>each course\'s own EQD2 (its phases with their own fractions, no '
        "recovery) and the cumulative EQD2 of every constrained organ, at the organ's alpha/beta; dotted: "
        "warn level, dashed red: limit</figcaption></figure>"
    )
