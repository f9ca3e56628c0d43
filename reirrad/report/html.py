"""`reirrad check` as one self-contained HTML page (no external assets), for the chart."""

from __future__ import annotations

from html import escape

from reirrad.report import number_text
from reirrad.report.figures import course_dvh_html, dvh_figures
from reirrad.report.hotspot import hotspot_html
from reirrad.report.machine import report_dict
from reirrad.report.regqa import regqa_html
from reirrad.report.tps import to_html as tps_html
from reirrad.results import CheckReport, CourseSummary, Status, nothing_judged

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{background:#e4f6e4}.warn{background:#fff4cc}.fail{background:#f8d0d0;font-weight:bold}
.not_evaluated{background:#ecdcf4}.report{color:#666}
.high{color:#b00;font-weight:bold}.caution{color:#a60}.info{color:#06a}
.banner{border:3px solid #444;padding:0.6em 1em;font-size:1.2em;margin:0 0 1em}
.banner.fail{border-color:#b00}.banner.warn{border-color:#c90}.banner.pass{border-color:#282}
.banner.not_evaluated{border-color:#849}
dl.provenance{display:grid;grid-template-columns:max-content auto;gap:2px 1em;margin:0}
.signature{margin-top:3em;break-inside:avoid}
dl.provenance dt{font-weight:bold}dl.provenance dd{margin:0;overflow-wrap:anywhere}
figure img{max-width:100%}
@media print{
 @page{size:A4 landscape;margin:10mm}
 body{margin:0;font-size:8pt}
 table{width:100%;table-layout:auto}td,th{padding:1px 3px;overflow-wrap:anywhere}
 tr,figure,.banner{break-inside:avoid}h2{break-after:avoid}
}
"""

VERDICT_ORDER = ("fail", "not_evaluated", "warn", "pass")  # the first status present is the verdict
ROW_ORDER = ("fail", "warn", "not_evaluated", "pass", "report")  # failing and warning rows first


def verdict(report: CheckReport) -> str:
    """The run's verdict: FAIL, NOT EVALUATED, WARN or PASS (a check that judged nothing is NOT
    EVALUATED: nothing silently passes)."""
    statuses: set[Status] = {r.status for r in report.results if r.has_threshold}
    if nothing_judged(report.results):
        statuses.add(Status.NOT_EVALUATED)
    return next((s for s in VERDICT_ORDER if s in statuses), "not_evaluated")


def banner(report: CheckReport) -> str:
    """The verdict banner: verdict, counts per status, and the organs that fail, warn or are not evaluated."""
    status = verdict(report)
    parts = []
    for s in ROW_ORDER:
        rows = [r for r in report.results if r.status == s]
        if not rows:
            continue
        organs = (
            "" if s in ("pass", "report") else ": " + ", ".join(dict.fromkeys(f"{r.organ} {r.metric}" for r in rows))
        )
        parts.append(f"{len(rows)} {s.replace('_', ' ')}{organs}")
    counts = escape("; ".join(parts))
    return (
        f'<div class="banner {status}"><b>{status.replace("_", " ").upper()}</b> &mdash; {counts} '
        f"(exit code {report.summary.exit_code})</div>"
    )


def provenance(report: CheckReport) -> str:
    """Whose plans, what checked them and when, which files (SHA-256) and options."""
    reference = _reference(report)
    files = "<br>".join(
        f"{escape(c.name)}: {escape(f.path)}"
        # an object given in memory has no file and no digest (its path names it)
        + (f" <small>sha256 {escape(f.sha256)}</small>" if f.sha256 is not None else "")
        for c in report.courses
        for f in c.files
    )
    options = ", ".join(f"{k.replace('_', '-')}={v}" for k, v in report.options.items()) or "-"
    items = [
        ("Patient", f"{reference.patient.name or '-'} (ID {reference.patient.patient_id or '-'})"),
        ("Case", f"{report.case_id} ({report.case_path or '-'}), reference course {report.reference_course}"),
        ("Checked", f"{report.run_at or '-'} by reirrad {report.reirrad_version}"),
        (
            "Constraint set",
            f"{report.constraint_set_name} v{report.constraint_set_version} ({report.constraint_set_title})",
        ),
        ("Options", options),
    ]
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f'<dl class="provenance">{rows}<dt>Input files</dt><dd>{files}</dd></dl>'


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal that cannot end the string or the <style> element."""
    return '"' + "".join(c if c.isalnum() or c in " ^-_.,:()/" else f"\\{ord(c):x} " for c in text) + '"'


def page_style(report: CheckReport) -> str:
    """Printed pages: the patient and case on every page's top, page numbers at the bottom
    (CSS page margin boxes, as Chromium prints them)."""
    patient = _reference(report).patient
    who = f"{patient.name or '-'} (ID {patient.patient_id or '-'}), case {report.case_id}"
    return (
        "@media print{@page{"
        f"@top-left{{content:{_css_string(who)};font-size:8pt}}"
        f"@top-right{{content:{_css_string('reirrad check ' + report.run_at)};font-size:8pt}}"
        '@bottom-right{content:"page " counter(page) " of " counter(pages);font-size:8pt}}}'
    )


def _reference(report: CheckReport) -> CourseSummary:
    return next((c for c in report.courses if c.name == report.reference_course), report.courses[-1])


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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"  # thead: repeated per printed page


def to_html(report: CheckReport) -> str:
    """The report as an HTML document."""
    data = report_dict(report)
    names = [c["name"] for c in data["courses"]]
    worst = ["worst_case_gy"] if any(r["worst_case_gy"] is not None for r in data["results"]) else []  # reirrad.robust
    course_rows = [
        "<tr>"
        + "".join(
            [
                _cell(c["name"]),
                _cell(c["fractions"], "num"),
                _cell(c["prescription_gy"], "num"),
                _cell(c["start_date"]),
                _cell(c["end_date"]),
                _cell(c["interval_months"], "num"),
                _cell(c["registration"]),
                _cell(c["recovery_model"]),
            ]
        )
        + "</tr>"
        for c in data["courses"]
    ]
    result_rows = [
        f'<tr class="{r["status"]}">'
        + "".join(
            [
                _cell(r["organ"]),
                _cell(r["structure"]),
                _cell(r["metric"]),
                _cell(r["alpha_beta_gy"], "num"),
                *(_cell(_in_unit(r[key], r["unit"]), "num") for key in ("warn_gy", "limit_gy", "value_gy", *worst)),
                *(_cell(_in_unit(r["per_course_gy"].get(n), r["unit"]), "num") for n in names),
                _cell(r["status"].replace("_", " ")),
                _cell("; ".join(filter(None, [r["reason"], *r["notes"]]))),
                _cell(r["source_id"]),
            ]
        )
        + "</tr>"
        for r in sorted(data["results"], key=lambda r: ROW_ORDER.index(r["status"]))
    ]
    flag_items = (
        "".join(
            f'<li><span class="{escape(f["severity"])}">[{escape(f["severity"])}]</span> {escape(f["message"])}'
            f"<br><i>Mitigation:</i> {escape(f['mitigation'])}<br><small>{escape(f['source'])}</small></li>"
            for f in data["flags"]
        )
        or "<li>none</li>"
    )
    assumptions = "".join(
        f"<li><b>{escape(k.replace('_', ' '))}</b>: {escape(str(v))}</li>" for k, v in data["assumptions"].items()
    )
    references = "".join(
        f"<li><b>{escape(key)}</b>: {escape(citation)}</li>"
        for key, citation in dict.fromkeys((r["source_id"], r["source"]) for r in data["results"] if r["source_id"])
    )
    summary = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in data["summary"].items())
    figures = (
        "".join(
            f'<figure><img alt="cumulative EQD2 DVH, alpha/beta {ab:g} Gy" src="{uri}">'
            f"<figcaption>alpha/beta {ab:g} Gy; left organs solid, right dashed; dotted: warn level, dashed red: limit</figcaption></figure>"
            for ab, uri in dvh_figures(report)
        )
        or "<p>no structure could be evaluated</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reirrad check: {escape(report.case_id)}</title>
<style>{STYLE}{page_style(report)}</style></head><body>
{banner(report)}
<h1>Re-irradiation check: {escape(report.case_id)}</h1>
{provenance(report)}
<h2>Courses</h2>
{_table(["Course", "Fractions", "Rx (Gy)", "Start", "End", "Interval (months)", "Registration", "Recovery"], course_rows)}{regqa_html(report)}
<h2>Cumulative EQD2 constraints</h2>
{_table(["Organ", "Structure", "Metric", "a/b (Gy)", "Warn", "Limit", "Cumulative", *(["Worst case"] if worst else []), *names, "Status", "Reason / notes", "Source"], result_rows)}
<h3>References</h3><ul>{references}</ul>
{hotspot_html(report)}
<h2>Cumulative EQD2 DVHs</h2>
{figures}
{course_dvh_html(report)}
{"".join(tps_html(c) for c in report.tps)}
<h2>Toxicity-mitigation flags</h2><ul>{flag_items}</ul>
<h2>Assumptions</h2><ul>{assumptions}</ul>
<p><b>Summary</b>: {escape(summary)}</p>
<p class="signature">Checked by: ______________________________ &nbsp; Date: ________________</p>
</body></html>
"""
