"""A batch audit as one document (JSON, CSV, JUnit, table) and its progress on stderr."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from reirrad.batch import BatchResult, CaseOutcome
from reirrad.check import CheckOptions
from reirrad.formats import OutputFormat
from reirrad.report.console import print_batch
from reirrad.report.junit import to_junit_batch
from reirrad.report.machine import to_csv_batch, to_json_batch


def render_batch(batch: BatchResult, fmt: OutputFormat | str, options: CheckOptions) -> str:
    """Every case in one document, in input order (JSON, CSV, JUnit, or the table as plain text)."""
    fmt = OutputFormat(fmt)
    if not fmt.batch:
        raise ValueError(f"{fmt.value} holds one case, not a batch")
    reports, errors = list(batch.reports), list(batch.errors)
    if fmt is OutputFormat.JSON:
        return to_json_batch(reports, errors, batch.exit_code, batch.not_run)
    if fmt is OutputFormat.CSV:
        return to_csv_batch(reports)
    if fmt is OutputFormat.JUNIT:
        return to_junit_batch(reports, errors, options.fail_on, options.allow_missing, batch.not_run)
    console = Console(file=io.StringIO(), width=160, record=True)
    print_batch_result(batch, console)
    return console.export_text()


def print_batch_result(batch: BatchResult, console: Console) -> None:
    """Every case's report, then the batch summary table."""
    print_batch(list(batch.reports), list(batch.errors), console, batch.not_run)


class _RateColumn(ProgressColumn):
    """Cases per minute."""

    def render(self, task: Task) -> Text:
        return Text("-" if not task.speed else f"{60 * task.speed:.1f} cases/min")


def outcome_line(outcome: CaseOutcome, done: int, total: int) -> str:
    """One plain line for a finished case."""
    where = "from store" if outcome.resumed else f"{outcome.seconds:.1f} s"
    text = f"reirrad: [{done}/{total}] {outcome.label}: exit {outcome.exit_code} ({where})"
    return text if outcome.error is None else f"{text}: {outcome.error}"


@contextmanager
def progress(total: int, quiet: bool = False, stream=None) -> Iterator[Callable[[CaseOutcome], None]]:
    """A callback to give every finished case: a Rich progress bar (cases done / total, failures,
    rate, time left) when ``stream`` (stderr) is a terminal, one plain line per case otherwise,
    nothing when ``quiet``."""
    stream = sys.stderr if stream is None else stream
    counts = {"done": 0, "failures": 0}

    def count(outcome: CaseOutcome) -> None:
        counts["done"] += 1
        counts["failures"] += outcome.exit_code != 0

    if quiet:
        yield count
        return
    if not stream.isatty():

        def line(outcome: CaseOutcome) -> None:
            count(outcome)
            print(outcome_line(outcome, counts["done"], total), file=stream, flush=True)

        yield line
        return
    columns = (
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failures]} failing"),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=stream), transient=False) as bar:
        task = bar.add_task("cases", total=total, failures=0)

        def advance(outcome: CaseOutcome) -> None:
            count(outcome)
            bar.update(task, advance=1, failures=counts["failures"])

        yield advance
