"""DVH accuracy of reirrad beside dicompyler-core 0.5.6, against two kinds of truth.

1. Nelms 2015 analytical set: share of values within 3 % and 1 % (or 0.1 Gy) per metric and per
   contour spacing, and volumes within 3 %.
2. The Eclipse breast case: volume, Dmean and Dmax against the planning system's DVHSequence bins.
Usage: .venv/bin/python benchmarks/dvh_accuracy.py [TESTDATA]
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
TESTDATA = Path(
    sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata")
)

from dvh_reference import NELMS_METRICS, eclipse_dvhs, reirrad_nelms_results, within  # noqa: E402

from reirrad.dicom.dose import read_dose  # noqa: E402
from reirrad.dicom.structures import read_structures  # noqa: E402
from reirrad.dvh import evaluate, sample_dose  # noqa: E402
from reirrad.masks import sample_roi  # noqa: E402
from reirrad.metrics import parse_metric  # noqa: E402


def dicompyler_values(dvh) -> dict[str, float]:
    """dicompyler-core's own accessors for the Nelms metrics (its nearest-bin Dx, as users get it)."""
    return {
        "Dmin": dvh.min,
        "Dmax": dvh.max,
        "Dmean": dvh.mean,
        "D99%": dvh.statistic("D99").value,
        "D95%": dvh.statistic("D95").value,
        "D5%": dvh.statistic("D5").value,
        "D1%": dvh.statistic("D1").value,
        "D0.03cc": dvh.statistic("D0.03cc").value,
    }


def nelms() -> None:
    from dicompylercore import dvhcalc

    hits = {tool: defaultdict(list) for tool in ("reirrad", "dicompyler")}
    volumes = {tool: [] for tool in hits}
    for case, ours, our_volume in reirrad_nelms_results(TESTDATA):
        theirs_dvh = dvhcalc.get_dvh(str(case.structure_file), str(case.dose_file), 2)
        theirs = dicompyler_values(theirs_dvh)
        for tool, values, volume in (("reirrad", ours, our_volume), ("dicompyler", theirs, theirs_dvh.volume)):
            volumes[tool].append(abs(volume / case.volume_cc - 1) <= 0.03)
            for metric in NELMS_METRICS:
                reference = case.doses_gy[metric]
                for group in (metric, f"{case.spacing_mm:g} mm contours", "all"):
                    hits[tool][group].append(
                        (within(values[metric], reference, 0.03), within(values[metric], reference, 0.01))
                    )
    print("Nelms 2015 analytical set: share within 3 % / within 1 % (an error <= 0.1 Gy counts as within)")
    print(f"{'group':<20}{'n':>5}{'reirrad 3%':>12}{'1%':>7}{'dicompyler 3%':>15}{'1%':>7}")
    spacings = sorted((g for g in hits["reirrad"] if g.endswith("contours")), key=lambda g: float(g.split()[0]))
    for group in (*NELMS_METRICS, *spacings, "all"):
        row = [f"{group:<20}{len(hits['reirrad'][group]):>5}"]
        for tool, width in (("reirrad", 12), ("dicompyler", 15)):
            pairs = hits[tool][group]
            row.append(
                f"{100 * sum(p[0] for p in pairs) / len(pairs):>{width}.1f}{100 * sum(p[1] for p in pairs) / len(pairs):>7.1f}"
            )
        print("".join(row))
    print(
        f"volume within 3 %: reirrad {100 * sum(volumes['reirrad']) / len(volumes['reirrad']):.1f} %, "
        f"dicompyler {100 * sum(volumes['dicompyler']) / len(volumes['dicompyler']):.1f} % "
        f"of {len(volumes['reirrad'])} cases  (acceptance: >= 95 % within 3 %, >= 80 % within 1 %)"
    )


def eclipse() -> None:
    from dicompylercore import dvhcalc

    folder = TESTDATA / "dicompyler-core"
    dose = read_dose(folder / "rtdose.dcm")
    structures = {roi.number: roi for roi in read_structures(folder / "rtss.dcm").rois}
    for end_caps in ("half", "none"):
        print(
            f"\nEclipse breast case, reirrad end caps '{end_caps}': planning system (DVHSequence bins) | "
            "reirrad | dicompyler-core; deviation %"
        )
        print(f"{'structure':<16}{'volume cm3':>30}{'Dmean Gy':>44}{'Dmax Gy':>44}")
        for number, tps in eclipse_dvhs(TESTDATA).items():
            sampling = sample_roi(structures[number], dose.grid, end_caps)
            dvh = sample_dose(sampling, dose.dose_gy)
            ours = (
                sampling.volume_cc,
                evaluate(dvh, parse_metric("Dmean")).value,
                evaluate(dvh, parse_metric("Dmax")).value,
            )
            dc = dvhcalc.get_dvh(str(folder / "rtss.dcm"), str(folder / "rtdose.dcm"), number)
            cells = []
            for reference, mine, other in zip((tps.volume, tps.mean, tps.max), ours, (dc.volume, dc.mean, dc.max)):
                cells.append(
                    f"{reference:>10.3f}{mine:>10.3f}{other:>10.3f} {100 * (mine / reference - 1):+5.1f}/{100 * (other / reference - 1):+5.1f}"
                )
            print(f"{structures[number].name:<16}" + " ".join(cells))
    print(
        "acceptance for structures >= 1 cm3 inside the grid (Breast, Heart, Lt Lung, Tumor Bed, Tumor Bed "
        "Block): volume 2 %, Dmean 1 %, Dmax 2 %"
    )


if __name__ == "__main__":
    nelms()
    eclipse()
