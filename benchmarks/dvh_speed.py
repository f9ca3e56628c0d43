"""`reirrad dvh` on the Eclipse breast case against plastimatch and dicompyler-core, whole commands.

Every tool runs as a user runs it, in a fresh process with its start-up, on all structures:
- reirrad: `reirrad dvh rtdose.dcm rtss.dcm -f csv -o dvh.csv` (DVH and default metrics);
- plastimatch on the dose grid: `plastimatch convert --input rtss.dcm --input-dose-img rtdose.dcm
  --fixed rtdose.dcm --output-ss-img ss.mha --output-ss-list ss.txt --output-dose-img dose.mha`,
  then `plastimatch dvh --input-ss-img ss.mha --input-ss-list ss.txt --input-dose dose.mha
  --output-csv dvh.csv` (the two processes added up);
- dicompyler-core: a Python process importing it and calling `dvhcalc.get_dvh` for every ROI.
Two floors are timed in the same run: `python -c "import numpy, pydicom"` (what any Python DVH
tool reading DICOM pays before its first byte of work) and the same plus typer with the pydantic
it loads to coerce a command's arguments (the CLI framework reirrad runs in); both with one BLAS
thread, as reirrad sets.
Printed: median CPU s, wall s, peak RSS and the ratios of the same run (see commands.py).
Usage: .venv/bin/python benchmarks/dvh_speed.py [TESTDATA]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

from commands import Usage, medians, print_load, print_table, reirrad_command, run_one, run_pipeline

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(
    sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata")
)
CASE = TESTDATA / "dicompyler-core"
DOSE, STRUCTURES = CASE / "rtdose.dcm", CASE / "rtss.dcm"

DICOMPYLER = """
import sys
from dicompylercore import dicomparser, dvhcalc
rtss, rtdose = sys.argv[1:3]
for number in dicomparser.DicomParser(rtss).GetStructures():
    dvhcalc.get_dvh(rtss, rtdose, number)
"""


FLOORS = {
    "floor: import numpy, pydicom": "import numpy, pydicom",
    "floor: + typer and its pydantic": "import numpy, pydicom, typer._adapters",
}


def floor(code: str) -> Usage:
    """A Python process that only imports (one BLAS thread, as reirrad runs)."""
    return run_one(["env", "OPENBLAS_NUM_THREADS=1", sys.executable, "-c", code])


def reirrad_dvh(folder: Path) -> Usage:
    return run_one(
        [*reirrad_command(), "dvh", str(DOSE), str(STRUCTURES), "-f", "csv", "-o", str(folder / "reirrad.csv")]
    )


def plastimatch_dvh(exe: str, folder: Path) -> Usage:
    convert = [
        exe,
        "convert",
        "--input",
        str(STRUCTURES),
        "--input-dose-img",
        str(DOSE),
        "--fixed",
        str(DOSE),
        "--output-ss-img",
        "ss.mha",
        "--output-ss-list",
        "ss.txt",
        "--output-dose-img",
        "dose.mha",
    ]
    dvh = [
        exe,
        "dvh",
        "--input-ss-img",
        "ss.mha",
        "--input-ss-list",
        "ss.txt",
        "--input-dose",
        "dose.mha",
        "--output-csv",
        "plastimatch.csv",
    ]
    return run_pipeline([convert, dvh], cwd=folder)


def main() -> None:
    if not DOSE.is_file():
        sys.exit(f"test data not found at {CASE}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tools = {
            "reirrad dvh": lambda: reirrad_dvh(folder),
            "reirrad --version (start-up)": lambda: run_one([*reirrad_command(), "--version"]),
            "dicompyler-core get_dvh (+import)": lambda: run_one(
                [sys.executable, "-c", DICOMPYLER, str(STRUCTURES), str(DOSE)]
            ),
        }
        exe = shutil.which("plastimatch")
        if exe:
            tools["plastimatch convert + dvh"] = lambda: plastimatch_dvh(exe, folder)
        for name, code in FLOORS.items():
            tools[name] = partial(floor, code)
        results = medians(tools)
    print("breast case (Eclipse, dicompyler-core test data): 10 ROIs, dose grid 194 x 129 x 98")
    print_load()
    print_table(results, "reirrad dvh")
    floors = " and ".join(f"{results[name].cpu_s:.2f}" for name in FLOORS)
    targets = [("dicompyler-core get_dvh (+import)", 15)] + ([("plastimatch convert + dvh", 3)] if exe else [])
    for name, factor in targets:
        print(f"{factor}x faster than {name} needs <= {results[name].cpu_s / factor:.2f} CPU s (floors: {floors})")
    if not exe:
        print("plastimatch not installed (apt-get install plastimatch): skipped")


if __name__ == "__main__":
    main()
