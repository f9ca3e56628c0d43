"""The one output policy: where a report or a dose file may be written, and how.

Every command and format checks its output before computing (:func:`check_output`) and writes
through :func:`write_output` (text: :func:`write_text`):

- ``-`` is standard output; ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and
  ``/proc/self/fd/N`` are those open streams, written where they point (never replaced);
- a character or block device, a FIFO or a socket is opened and written in place, never replaced;
- a regular file, or a new file in an existing folder, is replaced atomically: a temporary file in
  the same folder is written, fsynced and renamed over the target. A new file gets the permissions
  any new file gets under the umask (0666 less the umask); an existing file keeps its mode. A
  symlink is followed and stays a link: its target is replaced;
- a path that is an input of the run (the same path, or the same file through a link) is refused;
- an empty path, a folder, a missing folder, a name too long, a read-only location or a full disk
  is an :class:`~reirrad.errors.InputError` (one line, exit code 2); no temporary file is left and
  an existing target is left as it was. SIGTERM and SIGHUP during a write remove the temporary
  file and exit with 128 + the signal number.

Text written to a terminal or pipe falls back to ASCII look-alikes when the stream's encoding
cannot hold a character (:func:`fall_back_to_ascii`); files are always UTF-8.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import secrets
import signal
import stat
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from reirrad.errors import InputError

if TYPE_CHECKING:
    from reirrad.case import CaseSpec

STDOUT = "-"
_STREAM_PATH = re.compile(r"/dev/(?:(?P<name>stdout|stderr)|fd/(?P<fd>\d+))|/proc/self/fd/(?P<proc_fd>\d+)")
_STANDARD_FDS = {"stdout": 1, "stderr": 2}
_INTERRUPTING = (signal.SIGTERM, signal.SIGHUP)


class TargetKind(Enum):
    """How an output is written."""

    STREAM = "stream"  # an open file descriptor (standard output, /dev/fd/N): written where it points
    SPECIAL = "special"  # a device, FIFO or socket: opened and written in place
    REGULAR = "regular"  # a regular file (or a new one): replaced atomically


@dataclass(frozen=True)
class Target:
    """An output path resolved: what is written and how."""

    given: str  # the path as given
    kind: TargetKind
    path: Path | None = None  # the file written, symlinks followed (None for a stream)
    fd: int | None = None  # the stream's file descriptor
    mode: int | None = None  # permission bits of the existing regular file; None: a new file

    def __str__(self) -> str:
        return "standard output" if self.given == STDOUT else self.given

    @property
    def file(self) -> Path:
        """The file written (special and regular targets; a stream has none)."""
        if self.path is None:
            raise ValueError(f"{self} is a stream, not a file")
        return self.path

    @property
    def descriptor(self) -> int:
        """The file descriptor of a stream target."""
        if self.fd is None:
            raise ValueError(f"{self} is not a stream")
        return self.fd


class Interrupted(SystemExit):
    """SIGTERM or SIGHUP arrived during a write; the exit status is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


# ------------------------------------------------------------------------------------ resolving


def resolve_target(output: str | Path) -> Target:
    """Where ``output`` points and how it will be written; InputError when it cannot be written."""
    given = os.fspath(output)
    if not given:
        raise InputError(None, "output path is empty: give a file name, or - for standard output")
    if given == STDOUT:
        return _stream(given, 1)
    match = _STREAM_PATH.fullmatch(os.path.normpath(given))
    if match:
        fd = _STANDARD_FDS.get(match["name"] or "") or int(match["fd"] or match["proc_fd"])
        return _stream(given, fd)
    if given.endswith(os.sep):
        raise InputError(given, "names a folder; give a file name")
    try:
        status = os.stat(given)
    except FileNotFoundError:
        return _new_file(given)
    except OSError as exc:
        raise _cannot_write(given, exc) from None
    if stat.S_ISDIR(status.st_mode):
        raise InputError(given, "is a folder; give a file name")
    if stat.S_ISREG(status.st_mode):
        return Target(given, TargetKind.REGULAR, Path(os.path.realpath(given)), mode=stat.S_IMODE(status.st_mode))
    return Target(given, TargetKind.SPECIAL, Path(given))


def _stream(given: str, fd: int) -> Target:
    """Standard output or error (closed when Python started without them), or another open fd."""
    target = Target(given, TargetKind.STREAM, fd=fd)
    if fd in (1, 2):
        if _standard_stream(target) is None:
            name = "standard output" if fd == 1 else "standard error"
            raise InputError(None, f"{name} is closed; give an output file")
        return target
    try:
        os.fstat(fd)
    except OSError:
        raise InputError(given, f"file descriptor {fd} is not open") from None
    return target


def _new_file(given: str) -> Target:
    """A file that does not exist yet (or a dangling symlink, whose target is created)."""
    path = Path(os.path.realpath(given))
    try:
        folder = os.stat(path.parent)
    except FileNotFoundError:
        raise InputError(given, f"output folder {path.parent} does not exist") from None
    except OSError as exc:
        raise _cannot_write(given, exc) from None
    if not stat.S_ISDIR(folder.st_mode):
        raise InputError(given, f"{path.parent} is not a folder")
    return Target(given, TargetKind.REGULAR, path)


def _cannot_write(where: object, exc: OSError) -> InputError:
    return InputError(str(where), f"cannot write output ({exc.strerror or exc})")


# ------------------------------------------------------------------------------------ inputs


def case_inputs(case: CaseSpec) -> tuple[Path, ...]:
    """Every file a run over ``case`` may read: the case file, every file in each course folder
    (searched recursively, as course discovery does) and the registrations and structure sets
    named in the case, which may lie outside the folders."""
    files = [case.path]
    for course in case.courses:
        files += sorted(p for p in course.path.rglob("*") if p.is_file())
        files += [p for p in (course.registration, course.structure_set) if p is not None]
    return tuple(files)


def check_output(output: str | Path, inputs: Iterable[str | Path] = ()) -> Target:
    """Check, before anything is computed, that ``output`` can be written and is none of ``inputs``.

    An input is matched by path and by file identity (device and inode), so a symlink or a hard
    link to an input is refused too. Raises InputError; returns the resolved target.
    """
    target = resolve_target(output)
    if target.kind is TargetKind.REGULAR and target.mode is not None:  # an existing regular file
        identity = _identity(target.file)
        for item in inputs:
            if Path(os.path.realpath(item)) == target.path or (identity and _identity(item) == identity):
                raise InputError(target.given, "output would overwrite an input file; choose another output")
    return target


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def ensure_folder(path: str | Path) -> Path:
    """Create the output folder ``path`` (and its parents) if needed; InputError when impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(path, "is not a folder") from None
    except OSError as exc:
        raise InputError(path, f"cannot create output folder ({exc.strerror or exc})") from None
    return path


# ------------------------------------------------------------------------------------ writing


def write_output(output: str | Path, write: Callable[[BinaryIO], object]) -> Target:
    """Write an output with ``write(stream)`` (a binary stream) under the output policy.

    Returns the resolved target; an OSError while writing becomes an InputError naming the path.
    """
    return _write(resolve_target(output), write)


def write_text(output: str | Path, text: str) -> Target:
    """Write text: UTF-8 to files, the stream's own encoding (ASCII fallback) to streams."""
    target = resolve_target(output)
    encoding = getattr(_standard_stream(target), "encoding", None) or "utf-8"
    data = text.encode(encoding, errors=_ASCII_FALLBACK)
    return _write(target, lambda stream: stream.write(data))


def _write(target: Target, write: Callable[[BinaryIO], object]) -> Target:
    try:
        if target.kind is TargetKind.REGULAR:
            _replace(target, write)
        else:
            buffer = io.BytesIO()
            write(buffer)
            _write_in_place(target, buffer.getvalue())
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and target.fd == 1:
            raise  # the reader of standard output went away: the command line reports it
        raise _cannot_write(target, exc) from None
    return target


def _standard_stream(target: Target) -> TextIO | None:
    """Python's own stream for standard output or error targets (None for anything else)."""
    return {1: sys.stdout, 2: sys.stderr}.get(target.descriptor) if target.kind is TargetKind.STREAM else None


def _write_in_place(target: Target, data: bytes) -> None:
    """A stream or special file: written where it points, never replaced."""
    stream = _standard_stream(target)
    if stream is not None:
        stream.flush()
        binary = getattr(stream, "buffer", None)
        if binary is None:  # a text-only stand-in for sys.stdout (io.StringIO)
            stream.write(data.decode(stream.encoding or "utf-8", errors="replace"))
        else:
            binary.write(data)
            binary.flush()
        return
    if target.kind is TargetKind.STREAM:
        fd = os.dup(target.descriptor)
    else:
        fd = os.open(target.file, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    with open(fd, "wb") as handle:
        handle.write(data)


def _replace(target: Target, write: Callable[[BinaryIO], object]) -> None:
    """Temporary file beside the target, written, fsynced and renamed over it (removed on any failure)."""
    folder = target.file.parent
    temporary = folder / f".{target.file.name[:40]}.{secrets.token_hex(6)}.tmp"
    with interrupts_raise():
        try:
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666 if target.mode is None else 0o600
            )
            with open(fd, "wb") as stream:
                if target.mode is not None:
                    os.fchmod(stream.fileno(), target.mode)
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target.file)
        except BaseException as exc:
            if not isinstance(exc, FileExistsError):  # never remove a file this run did not create
                temporary.unlink(missing_ok=True)
            if isinstance(exc, Interrupted):
                say(f"reirrad: interrupted by {exc.signal_name}; {target} was not written")
            raise
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """While a temporary file exists, SIGTERM and SIGHUP raise :class:`Interrupted` so that it is
    removed (signals the process ignores stay ignored; only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in _INTERRUPTING if signal.getsignal(s) is signal.SIG_DFL}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------------------------ streams


def stdout() -> TextIO:
    """Standard output for printing; InputError when the process was started with it closed."""
    if sys.stdout is None:
        raise InputError(None, "standard output is closed; give an output file")
    return sys.stdout


def flush_stdout() -> None:
    """Flush standard output (a closed pipe raises BrokenPipeError here, not at exit)."""
    if sys.stdout is not None:
        sys.stdout.flush()


def silence_stdout() -> None:
    """After a broken pipe: point standard output at /dev/null so that nothing fails at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def say(line: str) -> None:
    """One line on stderr; a closed stderr is not an error of its own."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(line, file=sys.stderr, flush=True)


_ASCII_FALLBACK = "reirrad-ascii"  # codec error handler, registered below


def _ascii_char(char: str) -> str:
    """A plain ASCII stand-in for one character (rich's ellipsis and box lines, accented letters
    in names), of the same width where possible so that tables stay aligned; else '?'."""
    if char == "\u2026":
        return "~"
    if "\u2500" <= char <= "\u257f":  # box drawing
        name = unicodedata.name(char)
        return {(True, False): "|", (False, True): "-"}.get(("VERTICAL" in name, "HORIZONTAL" in name), "+")
    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?"


def _transliterate(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "".join(_ascii_char(c) for c in error.object[error.start : error.end]), error.end


codecs.register_error(_ASCII_FALLBACK, _transliterate)


def fall_back_to_ascii(stream: TextIO | None) -> None:
    """Make a text stream write the characters its encoding lacks as ASCII look-alikes instead
    of raising UnicodeEncodeError (``PYTHONIOENCODING=ascii``, a C locale)."""
    if stream is not None and getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
        stream.reconfigure(errors=_ASCII_FALLBACK)
