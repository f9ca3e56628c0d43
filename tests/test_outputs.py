"""The output policy, end to end through the command line: in process (typer's CliRunner on the
same app `main()` runs) and, where the process itself matters (its stdout, signals, resource
limits), in a subprocess running `main()`.

Every case checks the exit code, the one-line message, that the target and every input are left
as they were, and that no temporary file is left. Inputs are copies of the bundled SBRT sample.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from check_helpers import constraint_set_header
from typer.testing import CliRunner

import reirrad.outputs
from reirrad.cli import _register, app

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_plans" / "hn_sbrt_reirradiation"
DVH = ("-s", "SpinalCord", "-m", "D0.03cc", "-f", "csv")
_register()


class Result:
    """What a run left: exit code, stdout bytes, stderr bytes (in process or not)."""

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args: object) -> Result:
    """``reirrad ARGS`` in this process (the same app the console script runs)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return Result(result.exit_code, result.stdout_bytes, result.stderr_bytes)


def cli(*args: object, prelude: str = "", **kwargs) -> subprocess.CompletedProcess:
    """``reirrad ARGS`` in a fresh interpreter; ``prelude`` runs first (to inject a fault)."""
    code = f"{prelude}\nfrom reirrad.cli import main\nmain()"
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], stderr=subprocess.PIPE, check=False, **kwargs)


def one_line_error(result: Result | subprocess.CompletedProcess, *words: str) -> str:
    """The single stderr line of a refusal (exit 2), checked for ``words`` and no traceback."""
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("reirrad: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def snapshot(folder: Path) -> dict[str, tuple[str, bool, str]]:
    """Every entry under ``folder``: its kind (link or not), and the bytes' digest for files."""
    state = {}
    for path in sorted(folder.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        state[str(path.relative_to(folder))] = (stat.filemode(path.lstat().st_mode), path.is_symlink(), digest)
    return state


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture()
def case(tmp_path) -> Path:
    """A copy of the sample case (inputs the tests may try to overwrite)."""
    shutil.copytree(SAMPLE, tmp_path / "case")
    return tmp_path / "case"


def dvh_args(case: Path) -> tuple[object, ...]:
    return ("dvh", case / "course2" / "dose.dcm", case / "course2" / "structures.dcm", *DVH)


@pytest.fixture(scope="module")
def dvh_csv() -> bytes:
    """The DVH table the tests write elsewhere, as the command prints it to stdout."""
    result = run(*dvh_args(SAMPLE))
    assert result.returncode == 0 and b"SpinalCord,5,D0.03cc," in result.stdout
    return result.stdout


def eqd2_args(case: Path, output: object) -> tuple[object, ...]:
    return ("eqd2", case / "course2" / "dose.dcm", "--alpha-beta", 3, "--fractions", 5, "--output", output)


def require_policy() -> None:
    """Tests writing to system paths (/dev/...) must not run where an output could replace them."""
    if not hasattr(reirrad.outputs, "resolve_target"):
        pytest.fail("no output policy in reirrad.outputs: refusing to point an output at a system path")


# ------------------------------------------------------------------------------------ inputs


def _constraint_sets(folder: Path) -> tuple[Path, Path]:
    """A set that extends a parent set by path (both are inputs of a check that uses the child)."""
    parent = folder / "parent.toml"
    parent.write_text(
        constraint_set_header("parent", "test parent", 2.0)
        + '[[constraints]]\nid = "cord"\norgan = "SpinalCord"\nmetric = "Dmax"\npriority = "hard"\n'
        'limit_gy = 50.0\nsource = "t"\n'
    )
    child = folder / "child.toml"
    child.write_text('name = "child"\nversion = "1"\ntitle = "test child"\nextends = "parent.toml"\n')
    return child, parent


INPUT_CASES = {
    "check: the case file": lambda c: (["check", c / "case.toml", "-f", "csv"], c / "case.toml"),
    "check: a course's RTSTRUCT": lambda c: (
        ["check", c / "case.toml", "-f", "json"],
        c / "course2" / "structures.dcm",
    ),
    "check: a non-DICOM file in a course folder": lambda c: (
        ["check", c / "case.toml", "-f", "csv"],
        _file(c / "course1" / "notes.txt"),
    ),
    "check: a hard link to a dose": lambda c: (
        ["check", c / "case.toml", "-f", "csv"],
        _link(c / "course1" / "dose.dcm", c / "hard.dcm"),
    ),
    "check: a symlink to the REG": lambda c: (
        ["check", c / "case.toml", "-f", "csv"],
        _symlink(c / "course2" / "reg.dcm", c / "reg-link.dcm"),
    ),
    "check: the constraint set": lambda c: (
        ["check", c / "case.toml", "-f", "csv", "--constraints", _constraint_sets(c)[0]],
        c / "child.toml",
    ),
    "check: the set it extends": lambda c: (
        ["check", c / "case.toml", "-f", "csv", "--constraints", _constraint_sets(c)[0]],
        c / "parent.toml",
    ),
    "check --prior/--new: a plan": lambda c: (
        ["check", "--prior", c / "course1", "--new", c / "course2", "-f", "csv"],
        c / "course1" / "plan.dcm",
    ),
    "check batch: the second case's RTSTRUCT": lambda c: (
        ["check", c / "case.toml", _second_case(c), "-f", "json"],
        c / "second" / "course2" / "structures.dcm",
    ),
    "dvh: the RTSTRUCT": lambda c: (list(dvh_args(c)), c / "course2" / "structures.dcm"),
    "dvh: a hard link to the RTDOSE": lambda c: (list(dvh_args(c)), _link(c / "course2" / "dose.dcm", c / "hard.dcm")),
    "eqd2: a hard link to the RTDOSE": lambda c: (
        list(eqd2_args(c, "X"))[:-2],
        _link(c / "course2" / "dose.dcm", c / "hard.dcm"),
    ),
    "sum: a hard link to a prior plan": lambda c: (
        ["sum", c / "case.toml", "--alpha-beta", 3],
        _link(c / "course1" / "plan.dcm", c / "hard.dcm"),
    ),
    "demo: a file in the output folder that is a course file": lambda c: (
        ["demo", "--case", c / "case.toml", "--output-dir", c / "course2"],
        _file(c / "course2" / "report.json"),
    ),
}


def _file(path: Path) -> Path:
    path.write_text("kept\n")
    return path


def _link(source: Path, link: Path) -> Path:
    os.link(source, link)
    return link


def _symlink(source: Path, link: Path) -> Path:
    link.symlink_to(source)
    return link


def _second_case(case: Path) -> Path:
    shutil.copytree(SAMPLE, case / "second")
    return case / "second" / "case.toml"


@pytest.mark.parametrize("name", list(INPUT_CASES))
def test_an_input_of_the_run_is_never_an_output(case, name):
    args, target = INPUT_CASES[name](case)
    if args[0] != "demo":
        args += ["--output", target]
    before = snapshot(case)
    one_line_error(run(*args), "output would overwrite an input file", target.name)
    assert snapshot(case) == before and not temporary_files(case)


# ------------------------------------------------------------------------------------ targets


@pytest.mark.parametrize("command", ["check", "dvh", "eqd2", "sum"])
def test_output_dash_is_stdout(case, tmp_path, monkeypatch, command, dvh_csv):
    args = {
        "check": ["check", case / "case.toml", "-f", "json", "-o", "-"],
        "dvh": [*dvh_args(case), "-o", "-"],
        "eqd2": list(eqd2_args(case, "-")),
        "sum": ["sum", case / "case.toml", "--alpha-beta", 3, "-o", "-"],
    }[command]
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.returncode == (1 if command == "check" else 0), result.stderr.decode()
    assert not (tmp_path / "-").exists() and not temporary_files(tmp_path)
    if command == "check":
        assert b'"schema": "reirrad.check.v1"' in result.stdout  # the sample fails its carotid limit
    elif command == "dvh":
        assert result.stdout == dvh_csv
    else:  # the RTDOSE itself on stdout; the summary moved to stderr
        dose = pydicom.dcmread(io.BytesIO(result.stdout))
        assert (dose.Modality, dose.DoseType) == ("RTDOSE", "EFFECTIVE")
        assert b"max EQD2:" in result.stderr and b"reirrad: wrote" not in result.stderr


@pytest.mark.parametrize("command", ["dvh", "eqd2"])
def test_a_symlink_stays_a_link_and_its_target_is_replaced(case, tmp_path, command, dvh_csv):
    target, link = tmp_path / "target.out", tmp_path / "link.out"
    target.write_text("old\n")
    link.symlink_to(target.name)
    args = [*dvh_args(case), "-o", link] if command == "dvh" else eqd2_args(case, link)
    assert run(*args).returncode == 0
    assert link.is_symlink() and os.readlink(link) == target.name
    if command == "dvh":
        assert target.read_bytes() == dvh_csv
    else:
        assert pydicom.dcmread(target).DoseType == "EFFECTIVE"
    assert not temporary_files(tmp_path)


def test_a_new_file_gets_the_umask_permissions_and_an_existing_file_keeps_its_mode(case, tmp_path, dvh_csv):
    new, existing = tmp_path / "new.csv", tmp_path / "existing.csv"
    existing.write_text("old\n")
    existing.chmod(0o604)
    umask = os.umask(0o027)
    try:
        for target in (new, existing):
            assert run(*dvh_args(case), "-o", target).returncode == 0
            assert target.read_bytes() == dvh_csv
    finally:
        os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604


def test_a_fifo_is_written_not_replaced(case, tmp_path, dvh_csv):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so the command's open does not block
    try:
        assert run(*dvh_args(case), "-o", fifo).returncode == 0
        assert os.read(reader, 1 << 16) == dvh_csv
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_character_device_is_written_not_replaced(case, tmp_path):
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        pytest.skip("creating a device node needs root")
    result = run(*dvh_args(case), "-o", device)
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISCHR(device.lstat().st_mode) and os.major(device.lstat().st_rdev) == 1
    assert not temporary_files(tmp_path)


def test_dev_null_stays_a_device(case):
    require_policy()
    result = run(*dvh_args(case), "-o", "/dev/null")
    assert result.returncode == 0 and result.stdout == b""
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.parametrize("path", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_dev_stdout_writes_where_stdout_points(case, tmp_path, path, dvh_csv):
    require_policy()
    kept = tmp_path / "appended.txt"
    kept.write_bytes(b"earlier line\n")
    was_link = os.path.islink(path)
    with kept.open("ab") as stdout:  # opened for appending: replacing or truncating would lose the line
        assert cli(*dvh_args(case), "-o", path, stdout=stdout).returncode == 0
    assert kept.read_bytes() == b"earlier line\n" + dvh_csv
    assert os.path.islink(path) == was_link


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("", ("output path is empty",)),
        ("course2", ("is a folder",)),
        ("missing/out.csv", ("output folder", "does not exist")),
        ("case.toml/out.csv", ("cannot write output",)),
        ("x" * 300 + ".csv", ("File name too long",)),
    ],
)
@pytest.mark.parametrize("command", ["check", "dvh", "eqd2"])
def test_unwritable_paths_are_refused_before_computing(case, command, output, words):
    path = output and case / output
    args = {
        "check": ["check", case / "case.toml", "-f", "json", "-o", path],
        "dvh": [*dvh_args(case), "-o", path],
        "eqd2": list(eqd2_args(case, path)),
    }[command]
    before = snapshot(case)
    one_line_error(run(*args), *words)
    assert snapshot(case) == before and not temporary_files(case)


def test_demo_output_folder_that_is_a_file_is_refused(case, tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a folder\n")
    one_line_error(run("demo", "--case", case / "case.toml", "--output-dir", blocker), "reports: is not a folder")
    assert blocker.read_text() == "a file, not a folder\n"


def test_a_long_name_that_fits_is_written(case, tmp_path, dvh_csv):
    target = tmp_path / ("n" * 250)  # the longest names leave no room for a suffix in the temporary name
    assert run(*dvh_args(case), "-o", target).returncode == 0
    assert target.read_bytes() == dvh_csv and not temporary_files(tmp_path)


def test_a_read_only_folder_leaves_the_target_as_it_was(case, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "report.csv").write_text("earlier report\n")
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", folder], capture_output=True, check=False).returncode != 0:
            pytest.skip("chattr +i (an immutable folder, read-only even for root) is not available here")
    else:
        folder.chmod(0o555)
    try:
        one_line_error(run(*dvh_args(case), "-o", folder / "report.csv"), "report.csv", "cannot write output")
        assert sorted(p.name for p in folder.iterdir()) == ["report.csv"]
        assert (folder / "report.csv").read_text() == "earlier report\n"
    finally:
        subprocess.run(
            ["chattr", "-i", folder], capture_output=True, check=False
        ) if os.geteuid() == 0 else folder.chmod(0o755)


def _small_disk() -> None:
    """In the child: files cannot grow beyond 100 bytes, as on a full disk (EFBIG instead of ENOSPC)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))


@pytest.mark.parametrize("command", ["dvh", "eqd2"])
def test_a_full_disk_leaves_no_temporary_file_and_the_target_as_it_was(case, tmp_path, command):
    target = tmp_path / "out"
    target.write_text("earlier\n")
    args = {
        "dvh": [*dvh_args(case), "-o", target],
        "eqd2": list(eqd2_args(case, target)),
    }[command]
    # the child is not measured by coverage: its data file would meet the same full disk
    unmeasured = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    one_line_error(cli(*args, preexec_fn=_small_disk, env=unmeasured), "cannot write output (File too large)")
    assert target.read_text() == "earlier\n" and not temporary_files(tmp_path)


def _default_signals() -> None:
    """In the child: SIGTERM and SIGHUP with their default dispositions."""
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


SIGNAL_DURING_WRITE = """
import os, signal
_replace = os.replace
def replace(*args):
    os.kill(os.getpid(), signal.{name})  # arrives while the temporary file exists
    return _replace(*args)
os.replace = replace
"""


@pytest.mark.parametrize(("name", "command"), [("SIGTERM", "dvh"), ("SIGHUP", "eqd2"), ("SIGTERM", "eqd2")])
def test_a_signal_during_a_write_removes_the_temporary_file(case, tmp_path, name, command):
    target = tmp_path / "out"
    target.write_text("earlier\n")
    args = [*dvh_args(case), "-o", target] if command == "dvh" else eqd2_args(case, target)
    # default dispositions, as in a terminal session (under nohup SIGHUP is inherited as ignored,
    # and an ignored signal rightly stays ignored)
    result = cli(*args, prelude=SIGNAL_DURING_WRITE.format(name=name), preexec_fn=_default_signals)
    assert result.returncode == 128 + getattr(signal, name)
    assert result.stderr.decode() == f"reirrad: interrupted by {name}; {target} was not written\n"
    assert target.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == ["case", "out"]


# ------------------------------------------------------------------------------------ stdout


def test_closed_stdout_is_refused_in_one_line(case, tmp_path, dvh_csv):
    closed = ["bash", "-c", 'exec "$0" "$@" >&-', sys.executable, "-c", "from reirrad.cli import main; main()"]
    refused = subprocess.run([*closed, *map(str, dvh_args(case))], capture_output=True, check=False)
    one_line_error(refused, "standard output is closed")
    written = subprocess.run(
        [*closed, *map(str, dvh_args(case)), "-o", tmp_path / "out.csv"], capture_output=True, check=False
    )
    assert written.returncode == 0 and (tmp_path / "out.csv").read_bytes() == dvh_csv


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_a_broken_pipe_exits_2_in_one_line(case, fmt):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = cli(*dvh_args(case), "-f", fmt, stdout=write_end)
    finally:
        os.close(write_end)
    one_line_error(result, "standard output was closed", "broken pipe")
