"""`reirrad check` as Rich tables for the console."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reirrad.results import CheckReport

STATUS_STYLE = {
    "pass": ("PASS", "bold green"),
    "warn": ("WARN", "bold yellow"),
    "fail": ("FAIL", "bold white on red"),
    "not_evaluated": ("NOT EVAL", "bold magenta"),
    "report": ("report", "dim"),
}
SEVERITY_STYLE = {"high": "bold red", "caution": "yellow", "info": "cyan"}


def _fmt(value: float | None, digits: int = 2, unit: str = "Gy") -> str:
    """A number; a volume (cm3, %) carries its unit, doses are in Gy like the column heads."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + ("" if unit == "Gy" else f" {unit}")


def courses_table(report: CheckReport) -> Table:
    """Header table: one row per course with fractions, dates, interval, registration, recovery."""
    table = Table(title=f"Case {report.case_id}: courses (reference: {report.reference_course})", title_justify="left")
    for column in ("Course", "Fractions", "Rx (Gy)", "Dates", "Interval (mo)", "Registration", "Recovery"):
        table.add_column(column)
    for c in report.courses:
        fractions = " + ".join(
            f"{p.fractions}* (plan {'-' if p.plan_fractions is None else p.plan_fractions})"
            if p.fraction_source == "override" else str(p.fractions)
            for p in c.phases
        )
        dates = " to ".join(d.isoformat() for d in (c.start_date, c.end_date) if d) or "-"
        table.add_row(
            c.name, fractions, _fmt(c.prescription_gy, 1), dates, _fmt(c.interval_months, 1),
            c.registration, c.recovery_model,
        )
    return table


def results_table(report: CheckReport) -> tuple[Table, list[str]]:
    """Verdict table (cumulative EQD2 and each course's share) and its numbered footnotes."""
    names = [c.name for c in report.courses]
    table = Table(
        title=f"Cumulative EQD2 against {report.constraint_set_name} v{report.constraint_set_version}",
        title_justify="left",
    )
    numeric = {"a/b", "Warn", "Limit", "Cumulative", *names}
    for column in ("Organ", "Structure", "Metric", "a/b", "Warn", "Limit", "Cumulative", *names, "Status", "Source", "Note"):
        table.add_column(column, justify="right" if column in numeric else "left")
    footnotes: list[str] = []
    for r in report.results:
        label, style = STATUS_STYLE[r.status]
        texts = ([r.reason] if r.reason else []) + list(r.notes)
        marks = []
        for text in texts:
            if text not in footnotes:
                footnotes.append(text)
            marks.append(str(footnotes.index(text) + 1))
        table.add_row(
            r.organ, r.structure or "-", r.metric, f"{r.alpha_beta_gy:g}", _fmt(r.warn_gy, unit=r.unit),
            _fmt(r.limit_gy, unit=r.unit), _fmt(r.value_gy, unit=r.unit),
            *(_fmt(r.per_course.get(n), unit=r.unit) for n in names), Text(label, style=style),
            r.source_id or "-", ",".join(marks),
        )
    return table, footnotes


def sources_text(report: CheckReport, footnotes: list[str]) -> Text:
    """Numbered notes of the verdict table, then the full citation of every source id used."""
    text = Text()
    for number, note in enumerate(footnotes, start=1):
        text.append(f"{number}. {note}\n", style="dim")
    for source_id, citation in dict.fromkeys((r.source_id, r.source) for r in report.results if r.source_id):
        text.append(f"{source_id}: ", style="bold")
        text.append(f"{citation}\n")
    return text


def flags_panel(report: CheckReport) -> Panel:
    """Toxicity-mitigation flags with their mitigation steps."""
    lines = Text()
    for f in report.flags:
        lines.append(f"[{f.severity.upper()}] ", style=SEVERITY_STYLE.get(f.severity, ""))
        lines.append(f"{f.message}\n")
        lines.append(f"    Mitigation: {f.mitigation}\n", style="dim")
        lines.append(f"    Source: {f.source}\n", style="dim")
    return Panel(lines if report.flags else Text("none"), title="Toxicity-mitigation flags", title_align="left")


def assumptions_panel(report: CheckReport) -> Panel:
    """The assumptions every result depends on (ESTRO-EORTC reporting)."""
    text = Text()
    for key, value in report.assumptions.items():
        text.append(f"{key.replace('_', ' ')}: ", style="bold")
        text.append(f"{value}\n")
    for warning in report.warnings:
        text.append(f"warning: {warning}\n", style="yellow")
    return Panel(text, title="Assumptions", title_align="left")


def summary_line(report: CheckReport) -> Text:
    """One line: counts per status and the exit code."""
    text = Text()
    for status, (label, style) in STATUS_STYLE.items():
        text.append(f"{label}: {report.summary.counts.get(status, 0)}  ", style=style)
    text.append(f"exit code {report.summary.exit_code}")
    return text


def batch_table(reports: list[CheckReport], errors: list[tuple[str, str]], not_run: tuple[str, ...] = ()) -> Table:
    """One row per case of a batch: counts per status and the exit code (bad input: exit 2; a case
    a --fail-fast run did not reach: "not run")."""
    table = Table(title="Batch summary", title_justify="left")
    for column in ("Case", *(label for label, _ in STATUS_STYLE.values()), "Exit"):
        table.add_column(column, justify="left" if column == "Case" else "right")
    for r in reports:
        table.add_row(r.case_id, *(str(r.summary.counts.get(s, 0)) for s in STATUS_STYLE), str(r.summary.exit_code))
    for path, message in errors:
        table.add_row(Text(path, style="red"), *("-" for _ in STATUS_STYLE), Text("2", style="red"))
        table.add_row(Text(message, style="dim red"), *("" for _ in STATUS_STYLE), "")
    for path in not_run:
        table.add_row(Text(path, style="dim"), *("-" for _ in STATUS_STYLE), Text("not run", style="dim"))
    return table


def print_batch(reports: list[CheckReport], errors: list[tuple[str, str]], console: Console,
                not_run: tuple[str, ...] = ()) -> None:
    """Every case's report, then the batch summary."""
    for report in reports:
        print_report(report, console)
    console.print(batch_table(reports, errors, not_run))


def print_report(report: CheckReport, console: Console) -> None:
    """Print the whole report."""
    table, footnotes = results_table(report)
    console.print(Group(courses_table(report), table, sources_text(report, footnotes), flags_panel(report),
                        assumptions_panel(report), summary_line(report)))
