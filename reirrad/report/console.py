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
    "not_evaluated": ("NOT EVALUATED", "bold magenta"),
    "report": ("report", "dim"),
}
SEVERITY_STYLE = {"high": "bold red", "caution": "yellow", "info": "cyan"}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def courses_table(report: CheckReport) -> Table:
    """Header table: one row per course with fractions, dates, interval, registration, recovery."""
    table = Table(title=f"Case {report.case_id}: courses (reference: {report.reference_course})", title_justify="left")
    for column in ("Course", "Fractions", "Rx (Gy)", "Dates", "Interval (mo)", "Registration", "Recovery"):
        table.add_column(column)
    for c in report.courses:
        fractions = " + ".join(
            f"{p.fractions}{'*' if p.fraction_source == 'override' else ''}" for p in c.phases
        )
        dates = " to ".join(d.isoformat() for d in (c.start_date, c.end_date) if d) or "-"
        table.add_row(
            c.name, fractions, _fmt(c.prescription_gy, 1), dates, _fmt(c.interval_months, 1),
            c.registration, c.recovery_model,
        )
    return table


def results_table(report: CheckReport) -> Table:
    """Verdict table: cumulative EQD2 per constraint with each course's contribution."""
    names = [c.name for c in report.courses]
    table = Table(
        title=f"Cumulative EQD2 against {report.constraint_set_name} v{report.constraint_set_version}",
        title_justify="left",
    )
    for column in ("Organ", "Structure", "Metric", "a/b", "Limit", "Cumulative", *names, "Status", "Source"):
        table.add_column(column, justify="right" if column in {"a/b", "Limit", "Cumulative", *names} else "left")
    for r in report.results:
        label, style = STATUS_STYLE[r.status]
        status = Text(label, style=style)
        if r.reason:
            status.append(f"\n{r.reason}", style="dim")
        table.add_row(
            r.organ, r.structure or "-", r.metric, f"{r.alpha_beta_gy:g}",
            "-" if r.limit_gy is None else f"{r.limit_gy:.2f}",
            _fmt(r.value_gy), *(_fmt(r.per_course.get(n)) for n in names), status, r.source,
        )
    return table


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


def print_report(report: CheckReport, console: Console) -> None:
    """Print the whole report."""
    console.print(Group(courses_table(report), results_table(report), flags_panel(report),
                        assumptions_panel(report), summary_line(report)))
