"""Speed and memory of `reirrad dvh` on the Eclipse breast case against dicompyler-core and plastimatch.

Runs every structure through reirrad (load + rasterise + DVH + default metrics) and through
dicompyler-core's get_dvh in the same process, then `plastimatch dvh` when installed, and prints
the ratios and reirrad's peak traced memory against the dose grid's float64 size.
Usage: .venv/bin/python benchmarks/dvh_speed.py [TESTDATA]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata"))
CASE = TESTDATA / "dicompyler-core"


def run_reirrad() -> int:
    from reirrad.dicom.dose import read_dose
    from reirrad.dicom.structures import read_structures
    from reirrad.dvh import dvh_table

    table = dvh_table(read_dose(CASE / "rtdose.dcm"), read_structures(CASE / "rtss.dcm"))
    return sum(row.evaluated for row in table.structures)


def run_dicompyler() -> int:
    from dicompylercore import dicomparser, dvhcalc

    rois = dicomparser.DicomParser(str(CASE / "rtss.dcm")).GetStructures()
    for number in rois:
        dvhcalc.get_dvh(str(CASE / "rtss.dcm"), str(CASE / "rtdose.dcm"), number)
    return len(rois)


def run_plastimatch(exe: str) -> None:
    """`plastimatch dvh --input DIR` on the whole study (it rasterises on the CT slice's grid)."""
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        study.mkdir()
        for name in ("rtdose.dcm", "rtss.dcm", "rtplan.dcm", "ct.0.dcm"):
            (study / name).symlink_to(CASE / name)
        subprocess.run(
            [exe, "dvh", "--input", str(study), "--output-csv", str(Path(tmp) / "dvh.csv")],
            check=True, capture_output=True,
        )


def best_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    if not (CASE / "rtdose.dcm").is_file():
        sys.exit(f"test data not found at {CASE}")
    import numpy as np
    from reirrad.dicom.dose import read_dose

    run_reirrad()  # warm imports and caches
    reirrad_s = best_of(run_reirrad, 5)
    tracemalloc.start()
    run_reirrad()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grid_bytes = int(np.prod(read_dose(CASE / "rtdose.dcm").grid.shape)) * 8
    dicompyler_s = best_of(run_dicompyler, 1)
    print(f"breast case, 10 ROIs, {grid_bytes / 8 / 1e6:.2f} M voxels")
    print(f"{'tool':<18}{'seconds':>10}{'ratio':>10}")
    print(f"{'reirrad':<18}{reirrad_s:>10.3f}{1.0:>10.1f}")
    print(f"{'dicompyler-core':<18}{dicompyler_s:>10.3f}{dicompyler_s / reirrad_s:>10.1f}")
    exe = shutil.which("plastimatch")
    if exe:
        try:
            plastimatch_s = best_of(lambda: run_plastimatch(exe), 1)
            print(f"{'plastimatch dvh':<18}{plastimatch_s:>10.3f}{plastimatch_s / reirrad_s:>10.1f}")
        except subprocess.CalledProcessError as exc:
            print(f"plastimatch dvh failed: {exc.stderr.decode(errors='replace').strip()[-200:]}")
    else:
        print("plastimatch not installed (apt-get install plastimatch): skipped")
    print(f"reirrad peak traced memory {peak / 1e6:.1f} MB = {peak / grid_bytes:.2f} x the float64 dose grid "
          f"({grid_bytes / 1e6:.1f} MB; target < 4)")


if __name__ == "__main__":
    main()
