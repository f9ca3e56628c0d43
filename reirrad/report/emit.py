"""Writing a check report, or a batch of them, in the chosen :class:`~reirrad.formats.OutputFormat`.

One place dispatches on the format (:func:`render`) and writes under the output policy of
:mod:`reirrad.outputs` (:func:`emit_text`, :func:`emit_report`, :func:`check_batch`), so the
command line only parses its options and prints: ``reirrad check`` and ``reirrad demo`` both
come here.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reirrad.formats import OutputFormat
from reirrad.outputs import (
    STDOUT,
    Interrupted,
    TargetKind,
    check_output,
    interrupts_raise,
    say,
    write_output,
    write_text,
)

if TYPE_CHECKING:  # the report libraries load with the formats that need them (emit_text stays light)
    from rich.console import Console

    from reirrad.check import CheckOptions
    from reirrad.results import CheckReport

ConsoleFactory = Callable[[], "Console"]  # the console standard output is printed with, made when needed


def render(report: CheckReport, fmt: OutputFormat, options: CheckOptions) -> str:
    """``report`` as text in ``fmt`` (the table as plain text, for files); PDF is binary: :func:`emit_report`.

    ``options`` give the JUnit verdicts their ``fail_on`` and ``allow_missing``.
    """
    if fmt is OutputFormat.JSON:  # each format loads its own renderer (checkfast: a JSON check loads no other)
        from reirrad.report.machine import to_json

        return to_json(report)
    if fmt is OutputFormat.CSV:
        from reirrad.report.machine import to_csv

        return to_csv(report)
    if fmt is OutputFormat.JUNIT:
        from reirrad.report.junit import to_junit

        return to_junit(report, options.fail_on, options.allow_missing)
    if fmt is OutputFormat.HTML:
        from reirrad.report.html import to_html

        return to_html(report)
    if fmt is OutputFormat.PDF:
        raise ValueError("a PDF is not text: write it with emit_report")
    from rich.console import Console

    from reirrad.report.console import print_report

    console = Console(file=io.StringIO(), width=160, record=True)
    print_report(report, console)
    return console.export_text()


def emit_text(text: str, output: str | Path) -> None:
    """Write ``text`` to ``output`` (a file, a device or ``-``) and say on stderr where it went."""
    target = write_text(output, text)
    if target.kind is not TargetKind.STREAM:
        say(f"reirrad: wrote {target}")


def check_target(fmt: OutputFormat, output: str | Path, inputs: Sequence[str | Path]) -> None:
    """Refuse, before anything is computed, an ``output`` that cannot be written or is an input, and a
    PDF when no Chromium can print it."""
    if fmt is OutputFormat.PDF:
        from reirrad.report.pdf import browser

        browser()
    check_output(output, inputs)


def emit_report(
    report: CheckReport, fmt: OutputFormat, output: str | Path, options: CheckOptions, console: ConsoleFactory
) -> None:
    """Write ``report`` in ``fmt`` to ``output``: the table to standard output through ``console()``
    (rich, in colour on a terminal), every other format as text or (PDF) bytes."""
    if output == STDOUT and fmt is OutputFormat.TABLE:
        from reirrad.report.console import print_report

        print_report(report, console())
    elif fmt is OutputFormat.PDF:
        from reirrad.report.pdf import to_pdf

        pdf = to_pdf(report)
        say(f"reirrad: wrote {write_output(output, lambda stream: stream.write(pdf))}")
    else:
        emit_text(render(report, fmt, options), output)


def check_batch(
    case_files: Sequence[Path],
    fmt: OutputFormat,
    options: CheckOptions,
    output: str | Path,
    console: ConsoleFactory,
    *,
    quiet: bool = False,
    store_path: Path | None = None,
    deidentify: bool = False,
    **batch: Any,
) -> int:
    """Check every case file (see :func:`reirrad.batch.run_batch` for ``batch``), show progress on
    stderr unless ``quiet``, say each case's error, write all reports as one document in ``fmt``;
    return the batch exit code.

    With ``store_path`` finished cases go into (and unchanged ones are resumed from) a results
    store; an interrupted run says where the finished cases are. With ``deidentify`` every report
    and quoted path of the batch carries a pseudonym instead of the patient's identity.
    """
    from reirrad.batch import run_batch
    from reirrad.check import batch_inputs
    from reirrad.report.batch import print_batch_result, progress, render_batch
    from reirrad.store import Store

    check_output(output, batch_inputs(list(case_files), options))
    store = None if store_path is None else Store(store_path)
    try:
        with interrupts_raise(), progress(len(case_files), quiet) as on_outcome:
            result = run_batch(list(case_files), options, on_outcome=on_outcome, store=store, **batch)
    except (KeyboardInterrupt, Interrupted) as exc:
        if isinstance(exc, Interrupted):
            say(f"reirrad: interrupted by {exc.signal_name}")
        if store is not None:
            say(f"reirrad: finished cases are in {store.path}; run the same command to check the rest")
        raise
    finally:
        if store is not None:
            store.close()
    if deidentify:
        from reirrad.deidentify import deidentify_batch

        result = deidentify_batch(result)
    for _, message in result.errors:
        say(f"reirrad: error: {message}")
    if output == STDOUT and fmt is OutputFormat.TABLE:
        print_batch_result(result, console())
    else:
        emit_text(render_batch(result, fmt, options), output)
    return result.exit_code
