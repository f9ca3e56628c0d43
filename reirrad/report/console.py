"""`reirrad check` as Rich tables for the console."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reirrad.report import number_text
from reirrad.results import CheckReport, ConstraintResult, CourseSummary

STATUS_STYLE = {
    "pass": ("PASS", "bold green"),
    "warn": ("WARN", "bold yellow"),
    "fail": ("FAIL", "bold white on red"),
    "not_evaluated": ("NOT EVAL", "bold magenta"),
    "report": ("report", "dim"),
}
UNBOUNDED = 10_000  # characters: a width no table reaches, to measure a table's natural width
SEVERITY_STYLE = {"high": "bold red", "caution": "yellow", "info": "cyan"}


def fits(console: Console, renderable: RenderableType) -> bool:
    """True when ``renderable`` fits the console's width without shrinking (hence truncating) a cell."""
    unbounded = console.options.update_width(UNBOUNDED)
    return Measurement.get(console, unbounded, renderable).maximum <= console.options.max_width


def _fractions(course: CourseSummary) -> str:
    return " + ".join(
        f"{p.fractions}* (plan {'-' if p.plan_fractions is None else p.plan_fractions})"
        if p.fraction_source == "override"
        else str(p.fractions)
        for p in course.phases
    )


def _dates(course: CourseSummary) -> str:
    return " to ".join(d.isoformat() for d in (course.start_date, course.end_date) if d) or "-"


def _courses_title(report: CheckReport) -> str:
    return f"Case {report.case_id}: courses (reference: {report.reference_course})"


def courses_table(report: CheckReport) -> Table:
    """Header table: one row per course with fractions, dates, interval, registration, recovery."""
    table = Table(title=_courses_title(report), title_justify="left")
    for column in ("Course", "Fractions", "Rx (Gy)", "Dates", "Interval (mo)", "Registration", "Recovery"):
        table.add_column(column)
    for c in report.courses:
        table.add_row(
            c.name,
            _fractions(c),
            number_text(c.prescription_gy, 1),
            _dates(c),
            number_text(c.interval_months, 1),
            c.registration,
            c.recovery_model,
        )
    return table


def courses_stacked(report: CheckReport) -> Text:
    """The courses table as one paragraph per course, for consoles too narrow for the table."""
    text = Text(_courses_title(report) + "\n", style="italic")
    for c in report.courses:
        text.append(c.name, style="bold")
        interval = "" if c.interval_months is None else f", interval {number_text(c.interval_months, 1)} months"
        text.append(
            f": {_fractions(c)} fx, Rx {number_text(c.prescription_gy, 1)} Gy, {_dates(c)}{interval}, "
            f"registration {c.registration}, recovery {c.recovery_model}\n"
        )
    return text


def courses_view(report: CheckReport, console: Console) -> RenderableType:
    """The courses table when it fits the console, else one paragraph per course."""
    table = courses_table(report)
    return table if fits(console, table) else courses_stacked(report)


def _results_title(report: CheckReport) -> str:
    return f"Cumulative EQD2 against {report.constraint_set_name} v{report.constraint_set_version}"


def footnote_marks(report: CheckReport) -> tuple[list[str], list[str]]:
    """The numbered notes of the results (reasons and notes, each once) and each result's marks."""
    footnotes: list[str] = []
    marks = []
    for r in report.results:
        texts = ([r.reason] if r.reason else []) + list(r.notes)
        footnotes.extend(t for t in dict.fromkeys(texts) if t not in footnotes)
        marks.append(",".join(str(footnotes.index(t) + 1) for t in texts))
    return footnotes, marks


def has_worst_case(report: CheckReport) -> bool:
    """True when the run searched a registration uncertainty (results carry a worst case)."""
    return any(r.worst_case_gy is not None for r in report.results)


def results_table(report: CheckReport) -> tuple[Table, list[str]]:
    """Verdict table (cumulative EQD2, its worst case under a registration uncertainty when searched,
    and each course's share) and its numbered footnotes."""
    names = [c.name for c in report.courses]
    worst = ["Worst case"] if has_worst_case(report) else []
    table = Table(title=_results_title(report), title_justify="left")
    numeric = {"a/b", "Warn", "Limit", "Cumulative", *worst, *names}
    for column in (
        "Organ",
        "Structure",
        "Metric",
        "a/b",
        "Warn",
        "Limit",
        "Cumulative",
        *worst,
        *names,
        "Status",
        "Source",
        "Note",
    ):
        table.add_column(column, justify="right" if column in numeric else "left", no_wrap=column != "Note")
    footnotes, marks = footnote_marks(report)
    for r, mark in zip(report.results, marks):
        label, style = STATUS_STYLE[r.status]
        table.add_row(
            r.organ,
            r.structure or "-",
            r.metric,
            f"{r.alpha_beta_gy:g}",
            number_text(r.warn_gy, unit=r.unit),
            number_text(r.limit_gy, unit=r.unit),
            number_text(r.value_gy, unit=r.unit),
            *(number_text(r.worst_case_gy, unit=r.unit) for _ in worst),
            *(number_text(r.per_course.get(n), unit=r.unit) for n in names),
            Text(label, style=style),
            r.source_id or "-",
            mark,
        )
    return table, footnotes


def result_stacked(result: ConstraintResult, names: list[str], mark: str) -> Text:
    """One result as a short paragraph: status, organ, metric, then its numbers (narrow consoles)."""
    label, style = STATUS_STYLE[result.status]
    unit = result.unit
    text = Text()
    text.append(label, style=style)
    text.append(" ")
    text.append(result.organ, style="bold")
    structure = "" if result.structure == result.organ else f" (structure {result.structure or '-'})"
    text.append(f"{structure} {result.metric}, a/b {result.alpha_beta_gy:g} Gy\n")
    shares = "".join(f"; {n} {number_text(result.per_course.get(n), unit=unit)}" for n in names)
    if result.worst_case_gy is not None:
        shares = f"; worst case {number_text(result.worst_case_gy, unit=unit)}" + shares
    text.append(
        f"  cumulative {number_text(result.value_gy, unit=unit)}{' Gy' if unit == 'Gy' else ''}; warn "
        f"{number_text(result.warn_gy, unit=unit)}; limit {number_text(result.limit_gy, unit=unit)}{shares}; "
        f"source {result.source_id or '-'}" + (f"; notes {mark}" if mark else "") + "\n"
    )
    return text


def results_stacked(report: CheckReport) -> tuple[Text, list[str]]:
    """The verdict table as one short paragraph per result, and its numbered footnotes."""
    names = [c.name for c in report.courses]
    footnotes, marks = footnote_marks(report)
    text = Text(_results_title(report) + "\n", style="italic")
    for r, mark in zip(report.results, marks):
        text.append_text(result_stacked(r, names, mark))
    return text, footnotes


def results_view(report: CheckReport, console: Console) -> tuple[RenderableType, list[str]]:
    """The verdict table when it fits the console, else one paragraph per result (numbers, statuses
    and organ names are never truncated); and the numbered footnotes."""
    table, footnotes = results_table(report)
    return (table, footnotes) if fits(console, table) else results_stacked(report)


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


def print_batch(
    reports: list[CheckReport], errors: list[tuple[str, str]], console: Console, not_run: tuple[str, ...] = ()
) -> None:
    """Every case's report, then the batch summary."""
    for report in reports:
        print_report(report, console)
    console.print(batch_table(reports, errors, not_run))


def print_report(report: CheckReport, console: Console) -> None:
    """Print the whole report."""
    results, footnotes = results_view(report, console)
    console.print(
        Group(
            courses_view(report, console),
            results,
            sources_text(report, footnotes),
            flags_panel(report),
            assumptions_panel(report),
            summary_line(report),
        )
    )
