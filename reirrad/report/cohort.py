"""`reirrad audit`: the summary tables and the cohort page of a results store: one self-contained HTML file (figures embedded as PNG).

Per constraint with a warn or fail level: every case's cumulative value against those levels
(failing cases named); the distribution of the intervals between courses; how often each flag
was raised; the failing cases.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
from rich.table import Table
from rich.text import Text

from reirrad.audit import AuditSummary, Cohort, CohortConstraint
from reirrad.report.console import STATUS_STYLE
from reirrad.report.figures import png_data_uri
from reirrad.report.html import STYLE, _cell, _table
from reirrad.results import STATUSES

STATUS_COLOUR = {"pass": "#2e8b57", "warn": "#e0a000", "fail": "#c0392b"}
PANEL_COLUMNS = 3
NAMED_PER_PANEL = 8  # failing cases named in a panel (the highest); the table below lists them all


def _strip(axes, c: CohortConstraint) -> None:
    """One point per case (spread sideways by rank), warn (dotted) and fail (dashed) levels."""
    values = np.array([v for _, v, _ in c.points], dtype=float)
    x = np.linspace(-0.3, 0.3, len(values)) if len(values) > 1 else np.zeros(len(values))
    order = np.argsort(values, kind="stable")
    x_of = dict(zip(order, x))
    for i, (_, value, status) in enumerate(c.points):
        axes.plot(x_of[i], value, "o", color=STATUS_COLOUR.get(status, "#777"), markersize=5, alpha=0.8)
    failing = sorted((i for i, p in enumerate(c.points) if p[2] == "fail"), key=lambda i: -c.points[i][1])
    for k, i in enumerate(failing[:NAMED_PER_PANEL]):  # labels staggered so that neighbours stay legible
        axes.annotate(
            c.points[i][0],
            (x_of[i], c.points[i][1]),
            xytext=(6, -2 - 8 * (k % 3)),
            va="top",
            textcoords="offset points",
            fontsize=6,
            color=STATUS_COLOUR["fail"],
        )
    if len(failing) > NAMED_PER_PANEL:
        axes.text(0.02, 0.02, f"+{len(failing) - NAMED_PER_PANEL} more failing", transform=axes.transAxes, fontsize=6)
    for level in c.warn_levels:
        axes.axhline(level, color=STATUS_COLOUR["warn"], linestyle=":", linewidth=1.2)
    for level in c.limit_levels:
        axes.axhline(level, color=STATUS_COLOUR["fail"], linestyle="--", linewidth=1.2)
    missing = f"; {len(c.not_evaluated)} not evaluated" if c.not_evaluated else ""
    axes.set_title(f"{c.organ} {c.metric}{missing}", fontsize=8)
    axes.set_ylabel(f"cumulative EQD2 ({c.unit})" if c.unit == "Gy" else c.unit, fontsize=7)
    axes.set_xlim(-0.6, 0.6)
    axes.set_xticks([])
    axes.tick_params(labelsize=7)
    axes.grid(axis="y", alpha=0.3)


def constraints_figure(cohort: Cohort):
    """Small multiples, one panel per constraint (matplotlib Figure, or None without constraints)."""
    from matplotlib.figure import Figure

    shown = [c for c in cohort.constraints if c.points or c.not_evaluated]
    if not shown:
        return None
    rows = math.ceil(len(shown) / PANEL_COLUMNS)
    figure = Figure(figsize=(3.2 * PANEL_COLUMNS, 2.6 * rows), dpi=90)
    for i, c in enumerate(shown):
        _strip(figure.add_subplot(rows, PANEL_COLUMNS, i + 1), c)
    figure.tight_layout()
    return figure


def intervals_figure(cohort: Cohort):
    """Histogram of the shortest interval between courses per case (months)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 2.8), dpi=90)
    axes = figure.add_subplot()
    axes.hist([m for _, m in cohort.intervals_months], bins="auto", color="#4a7ab0")
    axes.set_xlabel("interval from prior course end to re-irradiation start (months)")
    axes.set_ylabel("cases")
    figure.tight_layout()
    return figure


def flags_figure(cohort: Cohort):
    """Horizontal bars: cases raising each flag."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 0.35 * len(cohort.flags) + 1), dpi=90)
    axes = figure.add_subplot()
    names = [f"{flag} ({severity})" for flag, severity, _ in cohort.flags][::-1]
    axes.barh(names, [n for _, _, n in cohort.flags][::-1], color="#8a6bb0")
    axes.set_xlabel(f"cases (of {cohort.cases})")
    axes.tick_params(labelsize=7)
    figure.tight_layout()
    return figure


def _figure(title: str, figure, caption: str) -> str:
    if figure is None:
        return f"<h2>{escape(title)}</h2><p>none</p>"
    return (
        f'<h2>{escape(title)}</h2><figure><img alt="{escape(title)}" src="{png_data_uri(figure)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def to_cohort_html(cohort: Cohort, title: str) -> str:
    """The cohort page as an HTML document."""
    s = cohort.summary
    states = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in s.cases_by_state.items())
    status_rows = [
        "<tr>" + _cell(k.replace("_", " ")) + _cell(v, "num") + "</tr>" for k, v in s.results_by_status.items()
    ]
    set_rows = ["<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in s.constraint_sets]
    failing_rows = [
        f'<tr class="{"fail" if f.exit_code == 1 else "not_evaluated"}">'
        + _cell(f.case_id)
        + _cell(f.exit_code, "num")
        + _cell(f.why)
        + _cell(f.path)
        + "</tr>"
        for f in s.failing
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reirrad cohort: {escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>Re-irradiation audit: {escape(title)}</h1>
<p>{cohort.cases} cases ({escape(states)}).</p>
{_table(["Result status", "Results"], status_rows)}
{_table(["Constraint set", "Version", "Cases", "Cases exiting non-zero"], set_rows)}
{
        _figure(
            "Cumulative EQD2 per constraint",
            constraints_figure(cohort),
            "one point per case (green pass, orange warn, red fail, failing cases named); "
            "dotted: warn level, dashed: fail limit",
        )
    }
{
        _figure(
            "Intervals between courses",
            intervals_figure(cohort) if cohort.intervals_months else None,
            "shortest interval per case from a prior course's end to the reference course's start",
        )
    }
{_figure("Flags", flags_figure(cohort) if cohort.flags else None, "cases raising each toxicity-mitigation flag")}
<h2>Failing cases</h2>
{_table(["Case", "Exit", "Why", "Case file"], failing_rows) if failing_rows else "<p>none</p>"}
</body></html>
"""


def summary_tables(summary: AuditSummary) -> list[Table]:
    """`reirrad audit summary` as Rich tables: cases, results per status and organ, sets, failing cases."""
    cases = Table("Case state", "Cases", title="Cases", title_justify="left")
    for state, count in summary.cases_by_state.items():
        cases.add_row(state.replace("_", " "), str(count))
    organs = Table("Organ", *(STATUS_STYLE[s][0] for s in STATUSES), title="Results per organ", title_justify="left")
    organs.add_row(
        Text("all", style="bold"), *(Text(str(summary.results_by_status[s]), style="bold") for s in STATUSES)
    )
    for organ, counts in summary.organs.items():
        organs.add_row(organ, *(str(counts[s]) for s in STATUSES))
    sets = Table("Constraint set", "Version", "Cases", "Exit non-zero", title="Constraint sets", title_justify="left")
    for row in summary.constraint_sets:
        sets.add_row(*map(str, row))
    failing = Table("Case", "Exit", "Why", "Case file", title="Failing cases", title_justify="left")
    for f in summary.failing:
        failing.add_row(f.case_id or "-", str(f.exit_code), f.why, f.path)
    return [cases, organs, sets, failing]
