"""Whose files these are: the patient identity of DICOM objects, compared across files and courses.

PatientID is the key. PatientBirthDate is compared too when both files give one (the same ID
reused by another hospital or another anonymisation run). PatientName is not compared: its
formatting differs between systems (``DOE^JOHN`` / ``Doe^John``) and anonymisers rewrite it.
An empty value is unknown, never "the same".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom

from reirrad.dicom.io import read_dataset, used_elements
from reirrad.errors import InputError

# What identity_of reads (SpecificCharacterSet: how PatientName is encoded)
PATIENT_ELEMENTS = used_elements(
    {"SpecificCharacterSet": None, "PatientID": None, "PatientBirthDate": None, "PatientName": None}
)


@dataclass(frozen=True)
class PatientIdentity:
    """PatientID, PatientBirthDate and PatientName of a DICOM object ("" when absent or empty).

    Only the ID and the birth date tell patients apart; the name is kept for reports."""

    patient_id: str
    birth_date: str = ""
    name: str = ""  # PatientName as stored (DICOM PN, e.g. DOE^JANE)

    @property
    def known(self) -> bool:
        """True when the object names a patient (a non-empty PatientID)."""
        return bool(self.patient_id)

    def difference(self, other: PatientIdentity) -> str | None:
        """How ``other`` names another patient (PatientID, else birth date), or None."""
        if self.patient_id and other.patient_id and self.patient_id != other.patient_id:
            return f"PatientID {other.patient_id!r} vs {self.patient_id!r}"
        if self.birth_date and other.birth_date and self.birth_date != other.birth_date:
            return f"PatientBirthDate {other.birth_date} vs {self.birth_date} (PatientID {self.patient_id!r})"
        return None


def identity_of(ds: pydicom.Dataset) -> PatientIdentity:
    """The patient identity a dataset (headers are enough) names."""
    return PatientIdentity(
        str(ds.get("PatientID", "") or "").strip(),
        str(ds.get("PatientBirthDate", "") or "").strip(),
        str(ds.get("PatientName", "") or "").strip(),
    )


def read_identity(path: str | Path) -> PatientIdentity:
    """The patient identity of a DICOM file, from its header (only :data:`PATIENT_ELEMENTS` decoded)."""
    return identity_of(read_dataset(path, stop_before_pixels=True, used=PATIENT_ELEMENTS))


def common_identity(named: Sequence[tuple[Path, PatientIdentity]]) -> PatientIdentity | None:
    """The one patient of files that belong together (one course); files of several patients: InputError.

    None when no file names a patient.
    """
    known = [(path, identity) for path, identity in named if identity.known]
    if not known:
        return None
    first_path, first = known[0]
    for path, identity in known[1:]:
        difference = first.difference(identity)
        if difference:
            raise InputError(path, f"belongs to another patient than {first_path} ({difference})")
    birth_dates = [i.birth_date for _, i in known if i.birth_date]
    names = [i.name for _, i in known if i.name]
    return PatientIdentity(first.patient_id, birth_dates[0] if birth_dates else "", names[0] if names else "")
