"""`reirrad check` as one self-contained HTML page (no external assets), for the chart."""

from __future__ import annotations

import base64
import io
from html import escape

from reirrad.report import number_text
from reirrad.report.machine import report_dict
from reirrad.results import CheckReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#e4f6e4}.warn{background:#fff4cc}.fail{background:#f8d0d0;font-weight:bold}
.not_evaluated{background:#ecdcf4}.report{color:#666}
.high{color:#b00;font-weight:bold}.caution{color:#a60}.info{color:#06a}
"""


def dvh_figures(report: CheckReport) -> list[tuple[float, str]]:
    """One cumulative EQD2 DVH figure per alpha/beta (PNG as a data URI), with each constraint's
    warn (dotted) and fail (dashed) levels drawn in its structure's colour."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # object-oriented API: no pyplot, no global backend

    figures = []
    for alpha_beta in sorted({c.alpha_beta_gy for c in report.curves}):
        figure = Figure(figsize=(8, 4.5), dpi=100)
        axes = figure.add_subplot()
        axes.set_prop_cycle(color=colormaps["tab20"].colors)
        for curve in (c for c in report.curves if c.alpha_beta_gy == alpha_beta):
            (line,) = axes.plot(curve.dose_gy, curve.volume_percent, label=curve.structure)
            for r in report.results:
                if r.structure == curve.structure and r.alpha_beta_gy == alpha_beta and r.unit == "Gy":
                    if r.warn_gy is not None and r.warn_gy != r.limit_gy:
                        axes.axvline(r.warn_gy, color=line.get_color(), linestyle=":", linewidth=1)
                    if r.limit_gy is not None:
                        axes.axvline(r.limit_gy, color=line.get_color(), linestyle="--", linewidth=1)
        axes.set_xlabel(f"cumulative EQD2 (Gy, alpha/beta {alpha_beta:g} Gy)")
        axes.set_ylabel("volume (%)")
        axes.set_ylim(0, 100)
        axes.set_xlim(left=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", ncol=2)
        figure.tight_layout()
        figures.append((alpha_beta, png_data_uri(figure)))
    return figures


def png_data_uri(figure) -> str:
    """A matplotlib figure as a PNG data URI, to embed in a self-contained page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _cell(value: object, css: str = "") -> str:
    """A table cell; numbers are rounded once and written as the JSON writes them."""
    text = number_text(value) if value is None or isinstance(value, float) else escape(str(value))
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}>{text}</td>"


def _in_unit(value: float | None, unit: str) -> str:
    """Doses as numbers (the columns are in Gy); volumes (cm3, %) with their unit."""
    return number_text(value, unit=unit)


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def to_html(report: CheckReport) -> str:
    """The report as an HTML document."""
    data = report_dict(report)
    names = [c["name"] for c in data["courses"]]
    course_rows = [
        "<tr>" + "".join([
            _cell(c["name"]), _cell(c["fractions"], "num"), _cell(c["prescription_gy"], "num"),
            _cell(c["start_date"]), _cell(c["end_date"]), _cell(c["interval_months"], "num"),
            _cell(c["registration"]), _cell(c["recovery_model"]),
        ]) + "</tr>"
        for c in data["courses"]
    ]
    result_rows = [
        f'<tr class="{r["status"]}">' + "".join([
            _cell(r["organ"]), _cell(r["structure"]), _cell(r["metric"]), _cell(r["alpha_beta_gy"], "num"),
            *(_cell(_in_unit(r[key], r["unit"]), "num") for key in ("warn_gy", "limit_gy", "value_gy")),
            *(_cell(_in_unit(r["per_course_gy"].get(n), r["unit"]), "num") for n in names),
            _cell(r["status"].replace("_", " ")), _cell("; ".join(filter(None, [r["reason"], *r["notes"]]))),
            _cell(r["source_id"]),
        ]) + "</tr>"
        for r in data["results"]
    ]
    flag_items = "".join(
        f'<li><span class="{escape(f["severity"])}">[{escape(f["severity"])}]</span> {escape(f["message"])}'
        f'<br><i>Mitigation:</i> {escape(f["mitigation"])}<br><small>{escape(f["source"])}</small></li>'
        for f in data["flags"]
    ) or "<li>none</li>"
    assumptions = "".join(
        f"<li><b>{escape(k.replace('_', ' '))}</b>: {escape(str(v))}</li>" for k, v in data["assumptions"].items()
    )
    references = "".join(
        f"<li><b>{escape(key)}</b>: {escape(citation)}</li>"
        for key, citation in dict.fromkeys((r["source_id"], r["source"]) for r in data["results"] if r["source_id"])
    )
    summary = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in data["summary"].items())
    figures = "".join(
        f'<figure><img alt="cumulative EQD2 DVH, alpha/beta {ab:g} Gy" src="{uri}">'
        f"<figcaption>alpha/beta {ab:g} Gy; dotted: warn level, dashed: limit</figcaption></figure>"
        for ab, uri in dvh_figures(report)
    ) or "<p>no structure could be evaluated</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reirrad check: {escape(report.case_id)}</title>
<style>{STYLE}</style></head><body>
<h1>Re-irradiation check: {escape(report.case_id)}</h1>
<p>reirrad {escape(report.reirrad_version)}; constraint set {escape(report.constraint_set_name)}
v{escape(report.constraint_set_version)} ({escape(report.constraint_set_title)}); reference course
{escape(report.reference_course)}.</p>
<h2>Courses</h2>
{_table(["Course", "Fractions", "Rx (Gy)", "Start", "End", "Interval (months)", "Registration", "Recovery"], course_rows)}
<h2>Cumulative EQD2 constraints</h2>
{_table(["Organ", "Structure", "Metric", "a/b (Gy)", "Warn", "Limit", "Cumulative", *names, "Status", "Reason / notes", "Source"], result_rows)}
<h3>References</h3><ul>{references}</ul>
<h2>Cumulative EQD2 DVHs</h2>
{figures}
<h2>Toxicity-mitigation flags</h2><ul>{flag_items}</ul>
<h2>Assumptions</h2><ul>{assumptions}</ul>
<p><b>Summary</b>: {escape(summary)}</p>
</body></html>
"""
