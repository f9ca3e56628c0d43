"""Command line: parses arguments, calls library functions, prints. No logic lives here.

Each sub-command lives in its own module and registers itself on :data:`app`. Every command runs
under the exit-code contract of :class:`_Commands`: 0 pass, 1 a limit fails (or warns with
``--fail-on warn``, or is not evaluated), 2 bad input or usage (one line on stderr), 3 internal
error (one line; the traceback only with ``--debug`` or ``REIRRAD_DEBUG=1``).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from functools import cache
from typing import TYPE_CHECKING, Any

import typer
import typer.core

from reirrad import __version__
from reirrad.errors import ReirradError
from reirrad.outputs import fall_back_to_ascii, flush_stdout, say, silence_stdout, stdout
from reirrad.verdicts import ExitCode

if TYPE_CHECKING:  # rich is imported by the commands that print with it (start-up stays light)
    from rich.console import Console

EXIT_OK, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = (
    ExitCode.OK,
    ExitCode.INPUT,
    ExitCode.INTERNAL,
    ExitCode.INTERRUPTED,
)
DEBUG_ENV = "REIRRAD_DEBUG"
# Thread counts of the BLAS/OpenMP pools numpy and scipy may start (OpenBLAS reads the first it finds).
THREAD_ENVS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_DEBUG_KEY = "reirrad.debug"
_TYPER_EXITS: tuple[type[Exception], ...]  # the two branches name different exception classes
try:  # the exceptions Typer itself turns into exit codes (usage errors: 2)
    _TYPER_EXITS = (typer.Exit, typer.Abort, typer.TyperException)
except AttributeError:  # older Typer: they come from click
    from click import ClickException

    _TYPER_EXITS = (typer.Exit, typer.Abort, ClickException)


class _Commands(typer.core.TyperGroup):
    """The root group: runs a sub-command and turns whatever escapes it into an honest exit code."""

    # the base declares ctx as click's Context, which newer Typer vendors in a private module
    # (typer._click) and older Typer takes from click: no public name covers both, so the public
    # typer.Context (a subclass, same ``meta``) stands in for it here
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        fall_back_to_ascii(sys.stdout)
        fall_back_to_ascii(sys.stderr)
        try:
            try:
                return super().invoke(ctx)
            finally:
                flush_stdout()  # a closed pipe shows here, not as a message at interpreter exit
        except _TYPER_EXITS:
            raise
        except ReirradError as exc:
            fail_input(str(exc))
        except BrokenPipeError:
            silence_stdout()
            fail_input("standard output was closed before the output was written (broken pipe)")
        except KeyboardInterrupt:
            say("reirrad: interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if ctx.meta.get(_DEBUG_KEY) or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                traceback.print_exc()
            problem = " ".join(f"{type(exc).__name__}: {exc}".splitlines())
            say(
                f"reirrad: internal error: {problem} (a bug in reirrad {__version__}, not a verdict; "
                f"please report it with the command and the output of `reirrad --debug ...`)"
            )
            raise typer.Exit(EXIT_INTERNAL) from None


app = typer.Typer(
    name="reirrad",
    cls=_Commands,
    help="Cumulative EQD2 plan checks for head-and-neck re-irradiation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help text: Typer's rich help alone costs more CPU than all of start-up
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help=f"Print the traceback of an internal error (or set {DEBUG_ENV}=1)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Cumulative EQD2 plan checks for head-and-neck re-irradiation (see README.md)."""
    ctx.meta[_DEBUG_KEY] = debug


def fail_input(message: str) -> None:
    """Print a one-line error to stderr and exit with code 2."""
    say("reirrad: error: " + " ".join(message.splitlines()))
    raise typer.Exit(EXIT_INPUT)


@cache
def _stdout_console_class() -> type[Console]:
    """A rich console class whose broken pipe is reported like any other (rich's own handling exits
    1, which CI would read as a failing plan); defined on first use so start-up does not load rich."""
    from rich.console import Console

    class _StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    return _StdoutConsole


def stdout_console(**options: Any) -> Console:
    """A rich console printing to standard output (InputError when it is closed)."""
    return _stdout_console_class()(file=stdout(), **options)


def emit(text: str, output: str) -> None:
    """Write ``text`` to ``output`` (a file, a device or ``-``) and say on stderr where it went
    (:func:`reirrad.report.emit.emit_text`)."""
    from reirrad.report.emit import emit_text

    emit_text(text, output)


def _register() -> None:
    """Import the sub-command modules so they attach themselves to :data:`app`."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def _usage_error(exc: typer.TyperException) -> None:
    """One line for a usage error (Typer's own would be a multi-line box): exit 2. A group called
    without a command prints its help on stdout instead, and exits 2 too."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # its message is the help (named alike in click)
        typer.echo(exc.format_message())
        raise SystemExit(EXIT_INPUT)
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "reirrad"
    message = " ".join(exc.format_message().split())
    say(f"reirrad: error: {message} (see '{command} --help')")
    raise SystemExit(EXIT_INPUT)


def single_threaded_blas() -> None:
    """One BLAS/OpenMP thread for this process unless the user set any of :data:`THREAD_ENVS`.

    The work is vectorised element-wise numpy, where extra BLAS threads only spin on a shared
    machine; it takes effect because numpy is first imported after this, by the command.
    """
    if not any(name in os.environ for name in THREAD_ENVS):
        for name in THREAD_ENVS:
            os.environ[name] = "1"


def main() -> None:
    """Console-script entry point: usage errors are one line and exit 2; see :class:`_Commands`
    for the rest of the exit-code contract."""
    single_threaded_blas()
    _register()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        _usage_error(exc)
    except typer.Abort:
        say("reirrad: interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    raise SystemExit(code if isinstance(code, int) else EXIT_OK)
