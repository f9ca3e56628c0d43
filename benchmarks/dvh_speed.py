"""`reirrad dvh` on the Eclipse breast case against plastimatch and dicompyler-core, whole commands.

Every tool runs as a user runs it, in a fresh process with its start-up, on all structures:
- reirrad: `reirrad dvh rtdose.dcm rtss.dcm -f csv -o dvh.csv` (DVH and default metrics);
- plastimatch on the dose grid: `plastimatch convert --input rtss.dcm --input-dose-img rtdose.dcm
  --fixed rtdose.dcm --output-ss-img ss.mha --output-ss-list ss.txt --output-dose-img dose.mha`,
  then `plastimatch dvh --input-ss-img ss.mha --input-ss-list ss.txt --input-dose dose.mha
  --output-csv dvh.csv` (the two processes added up);
- dicompyler-core: a Python process importing it and calling `dvhcalc.get_dvh` for every ROI.
Printed: median CPU s, wall s, peak RSS and the ratios of the same run (see commands.py).
Usage: .venv/bin/python benchmarks/dvh_speed.py [TESTDATA]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
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
        results = medians(tools)
    print("breast case (Eclipse, dicompyler-core test data): 10 ROIs, dose grid 194 x 129 x 98")
    print_load()
    print_table(results, "reirrad dvh")
    if not exe:
        print("plastimatch not installed (apt-get install plastimatch): skipped")


if __name__ == "__main__":
    main()
