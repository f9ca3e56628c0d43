"""``--deidentify``: the patient's identity replaced by a stable pseudonym in reports and written RTDOSEs.

The pseudonym is ``ANON-`` and the first 12 hex digits of HMAC-SHA256 of the PatientID (of the
PatientName when the ID is empty), keyed with a salt: the environment variable
``REIRRAD_DEIDENTIFY_SALT`` when set, else a built-in default. The same patient and salt give the
same pseudonym in every run and every output. With the default salt anyone holding reirrad can
confirm a guessed ID; set the variable to a site secret to prevent that.

What is replaced
----------------
- In a report (every field, every format): the PatientID, the PatientName (whole and each of its
  components of two or more characters, as whole words), the birth date (YYYYMMDD and YYYY-MM-DD)
  and DICOM UIDs (each mapped to a ``2.25.`` UID derived from it with the same key, so equal UIDs
  stay equal).
- In file paths the report quotes: every folder or file name that contains the ID or a name
  component (clinics name folders ``MRN_Name``) is replaced whole by the pseudonym.
- In a written RTDOSE: PatientName and PatientID become the pseudonym; the basic-profile attributes
  (PS3.15 E.1-1) this writer copies are emptied (birth date, sex, study date and time, referring
  physician, study ID, accession number) or removed (study description); every instance, study,
  series, frame-of-reference and referenced UID is mapped as above (consistent within the file and
  across files written with the same salt); PatientIdentityRemoved is YES and
  DeidentificationMethod says how. The description reirrad writes (EQD2 parameters) is kept,
  scrubbed like report text. A deidentified RTDOSE is on a pseudonymised frame of reference: pair
  it with structures deidentified the same way, not with the original RTSTRUCT.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pydicom

    from reirrad.batch import BatchResult
    from reirrad.results import CheckReport

SALT_ENV = "REIRRAD_DEIDENTIFY_SALT"
DEFAULT_SALT = "reirrad-deidentify-v1"  # stable, public: set REIRRAD_DEIDENTIFY_SALT to a site secret
PREFIX = "ANON-"
HEX_DIGITS = 12
METHOD = "reirrad --deidentify: HMAC-SHA256 pseudonym, PS3.15 basic subset"  # LO: <= 64 characters
# a DICOM UID: dotted numeric, 3 parts or more, 10 characters or more (not a version like 1.1.0)
UID_PATTERN = re.compile(r"(?<![\w.])(?=[\d.]{10})[0-2](?:\.(?:0|[1-9]\d*)){2,}(?![\w.])")
PATH_PATTERN = re.compile(r"[^\s'\"(),;<>]*[/\\][^\s'\"(),;<>]*")
# PS3.15 Table E.1-1 attributes the RTDOSE writer copies: Z = emptied, X = removed
EMPTIED = (
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "OperatorsName",
)
REMOVED = (
    "StudyDescription",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientAge",
    "PatientBirthTime",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "PhysiciansOfRecord",
)
# report fields that hold reirrad's own data (constraint sets, citations, metrics), never a patient's
KEPT_FIELDS = frozenset(
    {
        "constraint_set_name",
        "constraint_set_version",
        "constraint_set_title",
        "constraint_set",
        "constraint_id",
        "source",
        "source_id",
        "mitigation",
        "organ",
        "metric",
        "unit",
        "priority",
        "reirrad_version",
        "id",
    }
)
TEXT_LENGTHS = {"LO": 64, "SH": 16, "ST": 1024, "LT": 10240, "UT": 2**32 - 2}  # maximum characters per VR
T = TypeVar("T")


def salt() -> str:
    """The key of the pseudonyms: ``REIRRAD_DEIDENTIFY_SALT`` when set and not empty, else the default."""
    return os.environ.get(SALT_ENV) or DEFAULT_SALT


def _digest(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def pseudonym(patient_id: str, name: str = "", key: str | None = None) -> str:
    """The stable pseudonym of a patient: ``ANON-`` + 12 hex digits of HMAC-SHA256 of the ID
    (of the name when there is no ID), keyed with ``key`` (default :func:`salt`).

    Examples
    --------
    >>> pseudonym("12345", key="site secret")
    'ANON-4E337FB6A702'
    >>> pseudonym("12345", key="site secret") == pseudonym("12345", "DOE^JANE", key="site secret")
    True
    """
    return PREFIX + _digest(salt() if key is None else key, patient_id or name).upper()[:HEX_DIGITS]


@dataclass(frozen=True)
class Identity:
    """What identifies a patient in a file: PatientID, PatientName (DICOM PN), birth date (YYYYMMDD)."""

    patient_id: str = ""
    name: str = ""
    birth_date: str = ""

    @property
    def known(self) -> bool:
        """True when the file names a patient (an ID or a name)."""
        return bool(self.patient_id or self.name)

    def words(self) -> tuple[str, ...]:
        """The texts to replace: ID, whole name, name components of 2+ characters, birth date."""
        parts = [p for p in re.split(r"[\^=\s,]+", self.name) if len(p) >= 2]
        dates = (
            [self.birth_date, f"{self.birth_date[:4]}-{self.birth_date[4:6]}-{self.birth_date[6:]}"]
            if re.fullmatch(r"\d{8}", self.birth_date)
            else [self.birth_date]
        )
        return tuple(w for w in dict.fromkeys([self.patient_id, self.name, *parts, *dates]) if w)


def identity_of(ds: pydicom.Dataset) -> Identity:
    """The identity a DICOM dataset names (headers are enough)."""
    return Identity(*(str(ds.get(k, "") or "").strip() for k in ("PatientID", "PatientName", "PatientBirthDate")))


class Deidentifier:
    """Replaces the identities of some patients by their pseudonyms in text, paths, reports and datasets.

    Parameters
    ----------
    identities : iterable of Identity
        The patients to hide (all the courses of a case may name more than one); unknown ones are ignored.
    key : str, optional
        The salt (default :func:`salt`).

    Examples
    --------
    >>> d = Deidentifier([Identity("12345", "DOE^JANE", "19600101")], key="site secret")
    >>> d.text("patient DOE^JANE (Jane Doe, 12345), born 1960-01-01")
    'patient ANON-4E337FB6A702 (ANON-4E337FB6A702 ANON-4E337FB6A702, ANON-4E337FB6A702), born ANON-4E337FB6A702'
    >>> d.path("/data/12345_DOE_JANE/prior/dose.dcm")
    '/data/ANON-4E337FB6A702/prior/dose.dcm'
    """

    def __init__(self, identities: Iterable[Identity], key: str | None = None) -> None:
        self.key = salt() if key is None else key
        known = [i for i in dict.fromkeys(identities) if i.known]
        self.identities = tuple(known)
        replacements = {w: pseudonym(i.patient_id, i.name, self.key) for i in known for w in i.words()}
        self._replacement = {w.casefold(): p for w, p in replacements.items()}
        words = sorted(replacements, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<![A-Za-z0-9])(?<!\d\.)(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z0-9]|\.\d)",
                re.IGNORECASE,
            )
            if words
            else None
        )
        self._substrings = [w.casefold() for w in words if len(w) >= 3]

    @property
    def pseudonyms(self) -> tuple[str, ...]:
        """The pseudonym of each identity."""
        return tuple(dict.fromkeys(pseudonym(i.patient_id, i.name, self.key) for i in self.identities))

    def uid(self, uid: str) -> str:
        """A UID mapped to ``2.25.<decimal>`` derived from it with the key (equal in, equal out)."""
        return "2.25." + str(int(_digest(self.key, uid)[:30], 16))

    def _component(self, component: str) -> str | None:
        """The pseudonym replacing a whole folder or file name that names the patient, else None."""
        folded = component.casefold()
        hit = next((w for w in self._substrings if w in folded), None)
        if hit is None and self._pattern is not None:
            match = self._pattern.search(component)
            hit = match.group(1).casefold() if match else None
        return None if hit is None else self._replacement[hit]

    def path(self, path: str) -> str:
        """``path`` with every component naming the patient replaced by the pseudonym (UIDs in it mapped)."""
        parts = re.split(r"([/\\])", path)
        return "".join(self._component(p) or p if p not in "/\\" else p for p in parts)

    def text(self, text: str) -> str:
        """``text`` with UIDs mapped, path-like words scrubbed as paths and every other mention of
        the patient (ID, name, name components, birth date; whole words, any case) replaced."""
        text = UID_PATTERN.sub(lambda m: self.uid(m.group(0)), text)
        text = PATH_PATTERN.sub(lambda m: self.path(m.group(0)), text)
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._replacement[m.group(1).casefold()], text)

    def scrub(self, value: T) -> T:
        """A copy of ``value`` (frozen dataclasses, tuples, lists, dicts of them) with every string
        deidentified (:meth:`text`); numbers, arrays, dates, enums and the fields of reirrad's own
        data (:data:`KEPT_FIELDS`: constraint sets, citations, organ and metric names) unchanged."""
        return self._scrub(value)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, Enum) or value is None or isinstance(value, (int, float, date, bytes)):
            return value
        if isinstance(value, str):
            return self.text(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self._scrub(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init and f.name not in KEPT_FIELDS
            }
            return dataclasses.replace(value, **changes)
        if isinstance(value, (tuple, list)):
            return type(value)(self._scrub(v) for v in value)
        if isinstance(value, dict):
            return {self._scrub(k): self._scrub(v) for k, v in value.items()}
        return value  # numpy arrays, paths given as objects are not in reports

    def dataset(self, ds: pydicom.Dataset) -> None:
        """Deidentify an RTDOSE dataset in place (see the module docstring for what changes)."""
        identity = identity_of(ds)
        pseudo = pseudonym(identity.patient_id, identity.name, self.key) if identity.known else ""
        ds.PatientName = ds.PatientID = pseudo
        for keyword in EMPTIED:
            if keyword in ds:
                setattr(ds, keyword, "")
        for keyword in REMOVED:
            if keyword in ds:
                delattr(ds, keyword)
        for element in ds.iterall():
            if element.VR == "UI" and element.value and not element.keyword.endswith("ClassUID"):
                element.value = self.uid(str(element.value))
            elif element.VR in TEXT_LENGTHS and isinstance(element.value, str) and element.keyword != "PatientID":
                element.value = self.text(element.value)[: TEXT_LENGTHS[element.VR]]
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        if getattr(ds, "file_meta", None) is not None and "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def dataset_deidentifier(ds: pydicom.Dataset) -> Deidentifier:
    """The deidentifier of the patient a dataset names."""
    return Deidentifier([identity_of(ds)])


def report_identities(report: CheckReport) -> list[Identity]:
    """The patients a check report names (every course's)."""
    return [Identity(c.patient.patient_id, c.patient.name, c.patient.birth_date) for c in report.courses]


def deidentify_report(report: CheckReport, key: str | None = None) -> CheckReport:
    """A copy of a :class:`reirrad.results.CheckReport` with every course's patient replaced by the
    pseudonym everywhere (names, IDs, birth dates, UIDs, paths and folder names in every field),
    and an ``assumptions["deidentified"]`` entry saying how.

    Examples
    --------
    >>> import reirrad
    >>> report = deidentify_report(reirrad.check(reirrad.data.sample_case()), key="site secret")
    >>> report.courses[-1].patient.name == report.courses[-1].patient.patient_id
    True
    >>> report.courses[-1].patient.patient_id.startswith("ANON-")
    True
    """
    deidentifier = Deidentifier(report_identities(report), key)
    scrubbed = deidentifier.scrub(report)
    how = (
        f"patient identity replaced by {', '.join(deidentifier.pseudonyms) or 'no pseudonym (no patient named)'} "
        f"(HMAC-SHA256 of the PatientID, salt {'from ' + SALT_ENV if os.environ.get(SALT_ENV) else 'default'}); "
        "UIDs mapped; path components naming the patient replaced"
    )
    return dataclasses.replace(scrubbed, assumptions={**scrubbed.assumptions, "deidentified": how})


def deidentify_batch(batch: BatchResult, key: str | None = None) -> BatchResult:
    """A copy of a :class:`reirrad.batch.BatchResult` with every checked case deidentified as by
    :func:`deidentify_report` (its case path too). A case that could not be read names no patient
    reirrad knows: its path becomes ``unread case ANON-...`` (HMAC of the path) and every path in
    its error message ``<path>``, the message scrubbed of every patient of the batch."""
    everyone = batch_deidentifier(batch, key)
    changed = []
    for outcome in batch.outcomes:
        if outcome.report is not None:
            deidentifier = Deidentifier(report_identities(outcome.report), key)
            changed.append(
                dataclasses.replace(
                    outcome, path=deidentifier.path(outcome.path), report=deidentify_report(outcome.report, key)
                )
            )
        else:
            error = None if outcome.error is None else everyone.text(PATH_PATTERN.sub("<path>", outcome.error))
            changed.append(
                dataclasses.replace(
                    outcome, path=f"unread case {pseudonym(outcome.path, key=everyone.key)}", error=error
                )
            )
    return dataclasses.replace(batch, outcomes=tuple(changed))


def files_deidentifier(paths: Iterable[str | Path], key: str | None = None) -> Deidentifier:
    """The deidentifier of the patients the DICOM files at ``paths`` name (headers read only)."""
    from reirrad.dicom.io import read_dataset

    return Deidentifier([identity_of(read_dataset(p, stop_before_pixels=True)) for p in paths], key)


def deidentify_export(ds: pydicom.Dataset, texts: tuple[str, ...], key: str | None = None) -> tuple[str, ...]:
    """Deidentify an RTDOSE dataset about to be written (in place, :meth:`Deidentifier.dataset`)
    and return ``texts`` (its description and assumptions, printed) scrubbed of the same patient."""
    deidentifier = Deidentifier([identity_of(ds)], key)
    deidentifier.dataset(ds)
    return tuple(deidentifier.text(t) for t in texts)


def batch_deidentifier(batch: BatchResult, key: str | None = None) -> Deidentifier:
    """The deidentifier of every patient the checked cases of a batch name."""
    return Deidentifier([i for report in batch.reports for i in report_identities(report)], key)


def deidentify_audit(value: T, batch: BatchResult, key: str | None = None) -> T:
    """An audit of a results store (:class:`reirrad.audit.AuditSummary` or ``Cohort``) with every
    patient of the stored ``batch`` replaced by their pseudonym; a failing case that could not be
    read is named ``unread case ANON-...`` with the paths of its error replaced by ``<path>``."""
    from reirrad.audit import FailingCase

    everyone = batch_deidentifier(batch, key)

    def unread(case: FailingCase) -> FailingCase:
        if case.case_id is not None:
            return case
        return dataclasses.replace(
            case, path=f"unread case {pseudonym(case.path, key=everyone.key)}", why=PATH_PATTERN.sub("<path>", case.why)
        )

    def hide_unread(item: Any) -> Any:
        if isinstance(item, FailingCase):
            return unread(item)
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.replace(
                item, **{f.name: hide_unread(getattr(item, f.name)) for f in dataclasses.fields(item) if f.init}
            )
        if isinstance(item, tuple):
            return tuple(hide_unread(v) for v in item)
        return item

    return everyone.scrub(hide_unread(value))
