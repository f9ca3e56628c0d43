"""A check against the planning system: its own DVHs (the RTDOSE's DVHSequence) beside reirrad's.

An independent DVH check is what a physicist does before trusting a number. When an RTDOSE carries
the planning system's DVHs, they are read with dicompyler-core's parser
(``dicompylercore.dvh.DVH.from_dicom_dvh``) and each referenced structure's volume, Dmean and Dmax
are computed from the DVHData bins. The attributes DVHMinimumDose, DVHMaximumDose and DVHMeanDose
are not used: Eclipse has been seen to store them in per cent of the prescription while DoseUnits
says GY (the breast case of dicompyler-core's test data).

reirrad's side is its own DVH of the same physical dose and structure (``reirrad dvh``: volume from
the contours, Dmean and Dmax from the part inside the dose grid).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy, pydicom and the DVH code are imported by the functions that use them
    import pydicom

    from reirrad.dicom.dose import DoseGrid
    from reirrad.dicom.structures import StructureSet


@dataclass(frozen=True)
class TpsRow:
    """One structure: the planning system's and reirrad's volume (cm3), Dmean and Dmax (Gy).

    reirrad's values are None when it could not evaluate the structure (``note`` says why).
    """

    roi_number: int
    name: str
    tps_volume_cc: float
    tps_mean_gy: float
    tps_max_gy: float
    volume_cc: float | None
    mean_gy: float | None
    max_gy: float | None
    note: str = ""

    def differences(self) -> dict[str, float | None]:
        """reirrad minus the planning system: ``volume_cc``, ``mean_gy``, ``max_gy`` and the same
        in per cent of the planning system's value (``*_percent``; None where that value is 0)."""
        out: dict[str, float | None] = {}
        for key, tps in (("volume_cc", self.tps_volume_cc), ("mean_gy", self.tps_mean_gy), ("max_gy", self.tps_max_gy)):
            ours = getattr(self, key)
            out[key] = None if ours is None else ours - tps
            out[f"{key.rsplit('_', 1)[0]}_percent"] = None if ours is None or tps == 0 else 100.0 * (ours / tps - 1.0)
        return out


@dataclass(frozen=True)
class TpsComparison:
    """The planning system's DVHs of an RTDOSE against reirrad's DVHs of the same dose.

    ``rows`` is empty when the RTDOSE carries no DVHSequence; ``notes`` name DVHs that could not be
    compared at all (relative doses or volumes, an unknown DVH type).
    """

    dose_file: str
    structure_file: str
    end_caps: str
    rows: tuple[TpsRow, ...]
    notes: tuple[str, ...] = ()


def has_tps_dvhs(path: str | Path) -> bool:
    """True when the RTDOSE file at ``path`` carries a non-empty DVHSequence (header read only)."""
    from reirrad.dicom.io import read_dataset

    return bool(read_dataset(path, stop_before_pixels=True).get("DVHSequence"))


def _refusal(item: pydicom.Dataset, dataset: pydicom.Dataset) -> str | None:
    """Why one DVHSequence item cannot be compared in Gy and cm3, or None."""
    units = str(item.get("DoseUnits", dataset.get("DoseUnits", ""))).upper()
    if units != "GY":
        return f"dose units {units or 'missing'} (not GY)"
    volume_units = str(item.get("DVHVolumeUnits", "")).upper()
    if volume_units != "CM3":
        return f"volume units {volume_units or 'missing'} (not CM3)"
    kind = str(item.get("DVHType", "")).upper()
    if kind not in ("CUMULATIVE", "DIFFERENTIAL"):
        return f"DVHType {kind or 'missing'}"
    if not item.get("DVHReferencedROISequence"):
        return "no referenced ROI"
    return None


def planning_system_dvhs(dataset: pydicom.Dataset) -> tuple[dict[int, object], tuple[str, ...]]:
    """The RTDOSE's own DVHs by ROI number (``dicompylercore.dvh.DVH``, Gy and cm3, from the bins),
    and a note for each DVH that cannot be compared."""
    from dicompylercore.dvh import DVH

    dvhs: dict[int, object] = {}
    notes = []
    for index, item in enumerate(dataset.get("DVHSequence") or (), start=1):
        try:
            refusal = _refusal(item, dataset)
            if refusal is None:
                number = int(item.DVHReferencedROISequence[0].ReferencedROINumber)
                dvhs[number] = DVH.from_dicom_dvh(dataset, number)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # a malformed item
            refusal = f"unreadable ({type(exc).__name__}: {exc})"
        if refusal is not None:
            notes.append(f"planning-system DVH {index} not compared: {refusal}")
    return dvhs, tuple(notes)


def compare_dvhs(
    dataset: pydicom.Dataset,
    dose: DoseGrid,
    structures: StructureSet,
    end_caps: str = "half",
    extent: str | None = None,
) -> TpsComparison:
    """The planning system's DVHs of ``dataset`` (an RTDOSE) against reirrad's of ``dose`` (the
    same RTDOSE, read and put on the structure set's frame) for the structures of ``structures``.

    Parameters
    ----------
    dataset : pydicom.Dataset
        The RTDOSE as read (a header without pixel data is enough): its DVHSequence.
    dose : DoseGrid
        The dose of that RTDOSE in Gy (physical), on the frame of ``structures``.
    structures : StructureSet
        The structure set whose ROI numbers the DVHSequence references.
    end_caps : {"half", "none"}
        reirrad's end caps (``reirrad dvh --end-caps``); Eclipse's volumes end at the outer contours.
    extent : str, optional
        What ``dose``'s grid is, for the notes on structure parts outside it, when it is less than the
        planning system's dose grid (:attr:`reirrad.pairing.DosePair.extent`); default: the dose grid.

    Returns
    -------
    TpsComparison
        One row per DVH of the sequence, in its order.
    """
    from reirrad.dvh import evaluate, sample_dose
    from reirrad.masks import DOSE_GRID, sample_roi
    from reirrad.metrics import parse_metric

    dvhs, notes = planning_system_dvhs(dataset)
    names = {roi.number: roi for roi in structures.rois}
    rows = []
    for number, tps in dvhs.items():
        reference = (float(tps.volume), float(tps.mean), float(tps.max))  # type: ignore[attr-defined]
        roi = names.get(number)
        if roi is None:
            rows.append(
                TpsRow(
                    number, f"ROI {number}", *reference, None, None, None, f"ROI {number} is not in {structures.path}"
                )
            )
            continue
        sampling = sample_roi(roi, dose.grid, end_caps, extent or DOSE_GRID)
        if sampling.is_empty:
            rows.append(TpsRow(number, roi.name, *reference, None, None, None, "; ".join(sampling.notes) or "empty"))
            continue
        dvh = sample_dose(sampling, dose.dose_gy)
        mean, peak = (evaluate(dvh, parse_metric(m)) for m in ("Dmean", "Dmax"))
        rows.append(
            TpsRow(
                number,
                roi.name,
                *reference,
                dvh.volume_cc,
                mean.value,
                peak.value,
                "; ".join(filter(None, [*dvh.notes, mean.reason or "", peak.reason or ""])),
            )
        )
    return TpsComparison(str(dose.path), str(structures.path), end_caps, tuple(rows), notes)


def compare_tps(
    rtdose: str | Path,
    rtstruct: str | Path,
    registration: str | Path | None = None,
    end_caps: str = "half",
    accept_other_patient: bool = False,
) -> TpsComparison:
    """Compare the planning system's own DVHs in ``rtdose`` (its DVHSequence) with reirrad's DVHs
    of the same dose and the structures of ``rtstruct``: volume (cm3), Dmean and Dmax (Gy).

    The planning system's figures come from the DVHData bins (read by dicompyler-core), never
    from DVHMinimum/Maximum/MeanDose, which some systems store in per cent of the prescription.
    The files are paired as by ``reirrad dvh`` (same patient, same frame or a ``registration``).

    Parameters
    ----------
    rtdose, rtstruct : str or Path
        The RTDOSE (physical dose in Gy) and the structure set its DVHs reference.
    registration : str or Path, optional
        A REG relating the dose's frame to the structure set's.
    end_caps : {"half", "none"}
        reirrad's end caps; ``"none"`` counts volumes as Eclipse does.
    accept_other_patient : bool
        Pair files that name different patients.

    Returns
    -------
    TpsComparison
        One :class:`TpsRow` per planning-system DVH (none when the RTDOSE has no DVHSequence);
        ``row.differences()`` gives reirrad minus the planning system.

    Examples
    --------
    >>> import reirrad
    >>> from reirrad.tps import compare_tps
    >>> course = reirrad.data.sample_case().parent / "course2"
    >>> compare_tps(course / "dose.dcm", course / "structures.dcm").rows   # no DVHSequence in it
    ()
    """
    from reirrad.dicom.io import read_dataset
    from reirrad.pairing import load_pair

    pair = load_pair(rtdose, rtstruct, registration, accept_other_patient)
    dataset = read_dataset(rtdose, stop_before_pixels=True)
    comparison = compare_dvhs(dataset, pair.dose, pair.structures, end_caps, pair.extent)
    return TpsComparison(
        comparison.dose_file, comparison.structure_file, end_caps, comparison.rows, pair.notes + comparison.notes
    )


def course_comparisons(
    dose_files: Iterable[Path], structures: StructureSet | None, end_caps: str = "half"
) -> tuple[TpsComparison, ...]:
    """The planning-system check of a course (for the `check` report): one comparison for each
    RTDOSE file that carries a DVHSequence and shares the structure set's frame of reference.

    Files given in memory (no file on disk), doses without DVHs and a course without structures
    give none. A dose on another frame is noted in a comparison without rows.
    """
    from reirrad.dicom.dose import read_dose
    from reirrad.dicom.io import read_dataset

    if structures is None:
        return ()
    out = []
    for path in dict.fromkeys(Path(p) for p in dose_files):
        if not path.is_file():
            continue
        dataset = read_dataset(path, stop_before_pixels=True)
        if not dataset.get("DVHSequence"):
            continue
        if str(dataset.get("FrameOfReferenceUID", "")) != structures.frame_of_reference_uid:
            note = f"not compared: its frame of reference differs from {structures.path}'s"
            out.append(TpsComparison(str(path), str(structures.path), end_caps, (), (note,)))
            continue
        out.append(compare_dvhs(dataset, read_dose(path), structures, end_caps))
    return tuple(out)
