"""Reference data for the DVH acceptance tests and benchmarks, read from the third-party files.

Nelms 2015 analytical answers come from the authors' xlsx (cGy and cc); planning-system DVHs from
the Eclipse RTDOSE DVHSequence bins (the DVHMin/Max/Mean fields are in percent: ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NELMS_METRICS = ("Dmin", "Dmax", "Dmean", "D99%", "D95%", "D5%", "D1%", "D0.03cc")
GRADIENTS = {"Z(AP)": "AntPost", "Y(SI)": "SupInf"}


@dataclass(frozen=True)
class NelmsCase:
    structure_file: Path
    dose_file: Path
    spacing_mm: float  # contour spacing
    volume_cc: float
    doses_gy: dict[str, float]


def nelms_cases(testdata: Path) -> list[NelmsCase]:
    """Every xlsx row whose structure file and 1/2/3 mm dose grid are present."""
    import openpyxl

    base = testdata / "nelms2015"
    book = openpyxl.load_workbook(
        base / "analytical" / "Extracted Analytical D points.xlsx", read_only=True, data_only=True
    )
    cases = []
    for row in book["Analytical"].iter_rows(min_row=4, values_only=True):
        name, spacing, _, voxel, gradient = row[:5]
        if not name or voxel not in (1, 2, 3):
            continue
        structure = base / "structures" / f"{name.replace('__', '_')}.dcm"
        if not structure.is_file():
            continue
        dose = base / "dose_grids" / f"Linear_{GRADIENTS[gradient]}_{voxel}mm_Aligned.dcm"
        values = row[18:27]
        cases.append(
            NelmsCase(
                structure,
                dose,
                float(str(spacing).removesuffix("mm")),
                float(values[0]),
                {m: float(v) / 100.0 for m, v in zip(NELMS_METRICS, values[1:])},
            )
        )
    return cases


def reirrad_nelms_results(testdata: Path) -> list[tuple[NelmsCase, dict[str, float | None], float]]:
    """reirrad on every Nelms case: (case, {metric: value}, volume_cc); one sampling per
    structure file and grid spacing, reused for both gradients."""
    from reirrad.dicom.dose import read_dose
    from reirrad.dicom.structures import read_structures
    from reirrad.dvh import evaluate, sample_dose
    from reirrad.masks import sample_roi
    from reirrad.metrics import parse_metric

    samplings, out = {}, []
    for case in nelms_cases(testdata):
        dose = read_dose(case.dose_file)
        key = (case.structure_file, dose.grid.spacing_mm)
        if key not in samplings:
            samplings[key] = sample_roi(read_structures(case.structure_file).rois[1], dose.grid)
        dvh = sample_dose(samplings[key], dose.dose_gy)
        values = {m: evaluate(dvh, parse_metric(m)).value for m in NELMS_METRICS}
        out.append((case, values, samplings[key].volume_cc))
    return out


def within(value: float, reference: float, relative: float, absolute_gy: float = 0.1) -> bool:
    """Nelms' criterion: within ``relative`` of the reference, or within 0.1 Gy."""
    return abs(value - reference) <= max(relative * abs(reference), absolute_gy)


def eclipse_dvhs(testdata: Path) -> dict:
    """ROI number -> dicompyler-core DVH built from the planning system's DVHSequence bins."""
    import pydicom
    from dicompylercore.dvh import DVH

    path = testdata / "dicompyler-core" / "rtdose.dcm"
    ds = pydicom.dcmread(str(path))
    return {
        int(item.DVHReferencedROISequence[0].ReferencedROINumber): DVH.from_dicom_dvh(
            ds, int(item.DVHReferencedROISequence[0].ReferencedROINumber)
        )
        for item in ds.DVHSequence
    }
