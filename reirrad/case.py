"""Case files (TOML): the courses of one patient, oldest first, and how to read them.

    id = "HN-demo-01"
    constraints = "hn-reirradiation"        # optional: built-in set name or a path
    recovery_model = "none"                 # optional: a model of constraints/recovery.toml
    [[courses]]
    name = "prior"
    path = "course1"                        # folder, relative to the case file
    end_date = 2022-11-02
    fractions = 35                          # optional: when the plan is absent (must agree with a plan)
    override_fractions = true               # optional: use `fractions` although the plan disagrees (flagged)
    [courses.structures]                    # optional: this course's structure names = organ
    "Myelon" = "SpinalCord"                 # (prior sets are read only in conservative mode)
    [[courses]]
    name = "new"
    path = "course2"
    start_date = 2025-01-14
    registration = "course2/reg.dcm"        # optional REG, relative to the case file
    schedule = "bid"                        # optional: daily | alternate_day | bid
    [structures]                            # optional: names of the reference (last) course
    "Cord" = "SpinalCord"
    [clinical]                              # optional facts for toxicity flags
    resection = true
    organ_dysfunction = false
    recurrence_site = "left neck"
    histology = "squamous_cell_carcinoma"   # or "other" (the MIRI class needs it)
    carotid_invasion_deg = 200              # tumour contact around the carotid (degrees, 0-360)

Registration uncertainty (optional, top level; see reirrad/robust.py):

    registration_uncertainty_mm = 3         # worst case with the prior courses shifted up to 3 mm
    registration_uncertainty_deg = 2        # optional: and rotated up to 2 degrees
    robust = true                           # optional: verdicts on the worst case

The last course is the reference: its dose grid and structure set are evaluated.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.constraints import resolve_set_path
from reirrad.eqd2 import recovery_model
from reirrad.errors import Hint, InputError, Remedy
from reirrad.tomlfile import Problems, existing, plain, read_toml, shown

SCHEDULES = ("daily", "alternate_day", "bid")
_CASE_KEYS = {"id", "constraints", "recovery_model", "courses", "structures", "clinical", "accept_partial_coverage"}
_UNCERTAINTY_KEYS = {"registration_uncertainty_mm", "registration_uncertainty_deg", "robust"}  # reirrad.robust
_COURSE_KEYS = {
    "name",
    "path",
    "start_date",
    "end_date",
    "registration",
    "structure_set",
    "fractions",
    "schedule",
    "accept_dose_scale",
    "accept_other_patient",
    "override_fractions",
    "structures",
}
_CLINICAL_KEYS = {"resection", "organ_dysfunction", "recurrence_site", "histology", "carotid_invasion_deg"}
HISTOLOGIES = ("squamous_cell_carcinoma", "other")


@dataclass(frozen=True)
class CourseSpec:
    """One course as the case file describes it (paths resolved against the case file)."""

    name: str
    path: Path
    start_date: date | None = None
    end_date: date | None = None
    registration: Path | None = None
    structure_set: Path | None = None  # the RTSTRUCT to use when the folder holds several
    auto_register: bool = False  # registration = "auto" / --auto-register: CT-to-CT rigid registration (autoreg)
    fractions: int | None = None
    schedule: str | None = None
    case_file: Path | None = None
    accept_dose_scale: bool = False  # a dose maximum implausible against the prescription is used anyway
    accept_other_patient: bool = False  # another PatientID than the reference course's is used anyway
    override_fractions: bool = False  # a given fraction count that disagrees with the plan is used (flagged)
    fractions_option: str | None = None  # the command-line option that gave ``fractions`` (quick form)
    structures: dict[str, str] | None = field(default=None, hash=False)  # this course's structure -> organ map
    # in-memory pydicom datasets read instead of the folder ``path`` (which then only labels the course)
    datasets: tuple[Any, ...] = field(default=(), hash=False, compare=False, repr=False)

    @classmethod
    def from_datasets(cls, name: str, datasets: Any, **options: Any) -> CourseSpec:
        """A course from already-read pydicom datasets (RTPLAN, RTDOSE, RTSTRUCT, REG) instead of a folder.

        Parameters
        ----------
        name : str
            The course's name in messages and reports.
        datasets : iterable of pydicom.Dataset
            The course's objects; each is named by its modality and SOPInstanceUID in messages,
            and reports give that UID instead of a file hash. A REG among them, rigid or deformable,
            relates frames of reference as the same file in a course folder does (a REG file is
            ``registration=``).
        **options
            Other CourseSpec fields: ``start_date``, ``end_date``, ``registration``, ``fractions``,
            ``schedule``, ``override_fractions``, ``accept_dose_scale``, ``accept_other_patient``,
            ``structures``.

        Returns
        -------
        CourseSpec
            ``path`` is ``<datasets of course NAME>``, a label, not a folder.

        Raises
        ------
        reirrad.errors.InputError
            No datasets.

        Examples
        --------
        >>> import pydicom
        >>> from reirrad import CourseSpec, data
        >>> folder = data.sample_case().parent / "course2"
        >>> course = CourseSpec.from_datasets("new", [pydicom.dcmread(folder / "dose.dcm")], fractions=5)
        >>> course.path.name, course.fractions
        ("<datasets of course 'new'>", 5)
        """
        datasets = tuple(datasets)
        if not datasets:
            raise InputError(None, f"course {name!r}: no datasets given")
        return cls(name=name, path=Path(f"<datasets of course {name!r}>"), datasets=datasets, **options)

    @property
    def fractions_hint(self) -> Hint:
        """How the user sets the fraction count of this course."""
        return Hint(Remedy.FRACTIONS, self.name, self.fractions_option)

    @property
    def fractions_given_as(self) -> str:
        """Where the given fraction count came from, for messages."""
        if self.fractions_option:
            return f"{self.fractions_option} {self.fractions}"
        return f"fractions = {self.fractions} for course {self.name!r} in the case file"

    @property
    def override_hint(self) -> Hint:
        """How the user confirms a fraction count that disagrees with the plan."""
        return Hint(Remedy.OVERRIDE_FRACTIONS, self.name, "--override-fractions" if self.fractions_option else None)


@dataclass(frozen=True)
class ClinicalSpec:
    """Clinical facts the toxicity flags use; None when the case file does not say."""

    resection: bool | None = None
    organ_dysfunction: bool | None = None
    recurrence_site: str | None = None
    histology: str | None = None  # one of HISTOLOGIES
    carotid_invasion_deg: float | None = None  # circumference of the carotid in tumour contact (degrees)


@dataclass(frozen=True)
class CaseSpec:
    """A whole case: courses oldest first (the last is the reference), names, clinical facts."""

    path: Path
    id: str
    courses: tuple[CourseSpec, ...]
    constraints: str | None = None
    structures: dict[str, str] = field(default_factory=dict, hash=False)
    clinical: ClinicalSpec = ClinicalSpec()
    recovery_model: str | None = None  # None: not given (the constraint set's default applies)
    accept_partial_coverage: bool = False  # a course's grid missing part of a constrained organ: 0 Gy there
    # registration uncertainty (reirrad.robust): None = not searched; robust = verdicts on the worst case
    registration_uncertainty_mm: float | None = None
    registration_uncertainty_deg: float | None = None
    robust: bool = False

    @property
    def reference(self) -> CourseSpec:
        """The course whose grid and structures are evaluated (the last one)."""
        return self.courses[-1]

    @classmethod
    def from_folders(
        cls,
        prior: str | Path,
        new: str | Path,
        *,
        prior_end_date: date | None = None,
        new_start_date: date | None = None,
        registration: str | Path | None = None,
        prior_fractions: int | None = None,
        new_fractions: int | None = None,
        override_fractions: bool = False,
    ) -> CaseSpec:
        """A two-course case from two folders of DICOM files, as ``reirrad check --prior --new``.

        Parameters
        ----------
        prior, new : str or Path
            Folders of the prior and the new (reference) course's RTPLAN, RTDOSE and RTSTRUCT
            files (searched recursively).
        prior_end_date, new_start_date : datetime.date, optional
            Last day of the prior course and first day of the new one: the interval the recovery
            models and the interval flag use (unknown when missing).
        registration : str or Path, optional
            A rigid REG file mapping the prior course's frame of reference into the new one's.
        prior_fractions, new_fractions : int, optional
            A course's fraction count when no RTPLAN gives it (a count that disagrees with the
            plan is refused unless ``override_fractions``).
        override_fractions : bool
            Use the given counts even where a plan says otherwise (flagged in the report).

        Returns
        -------
        CaseSpec
            Courses ``"prior"`` and ``"new"``; the case id is the name of the folder above ``new``.

        Raises
        ------
        reirrad.errors.InputError
            A folder or the registration file does not exist, a count is not positive.

        Examples
        --------
        >>> from reirrad import Case, data
        >>> sample = data.sample_case().parent
        >>> case = Case.from_folders(prior=sample / "course1", new=sample / "course2",
        ...                          registration=sample / "course2" / "reg.dcm")
        >>> [c.name for c in case.courses], case.reference.name
        (['prior', 'new'], 'new')
        """
        return case_from_folders(
            Path(prior),
            Path(new),
            prior_end_date,
            new_start_date,
            None if registration is None else Path(registration),
            prior_fractions,
            new_fractions,
            override_fractions,
        )

    @classmethod
    def from_datasets(
        cls,
        prior: Any,
        new: Any,
        *,
        prior_end_date: date | None = None,
        new_start_date: date | None = None,
        registration: Any = None,
        id: str = "case",
    ) -> CaseSpec:
        """A two-course case from already-read pydicom datasets, as :meth:`from_folders` from folders.

        Parameters
        ----------
        prior, new : iterable of pydicom.Dataset
            The RTPLAN, RTDOSE, RTSTRUCT (and REG) objects of each course (see :meth:`CourseSpec.from_datasets`).
        prior_end_date, new_start_date : datetime.date, optional
            Last day of the prior course, first day of the new one.
        registration : str, Path or pydicom.Dataset, optional
            A REG relating the prior course's frame to the new one's, rigid or deformable (its
            registered frame the new course's): a file, or a dataset (then one of the new course's
            datasets).
        id : str
            The case id in reports.

        Returns
        -------
        CaseSpec
            Courses ``"prior"`` and ``"new"``; ``path`` is ``<in memory>``, a label.

        Raises
        ------
        reirrad.errors.InputError
            A course without datasets, a registration file that does not exist.

        Examples
        --------
        >>> import pydicom
        >>> from reirrad import Case, data
        >>> sample = data.sample_case().parent
        >>> read = lambda folder: [pydicom.dcmread(sample / folder / f) for f in ("plan.dcm", "dose.dcm", "structures.dcm")]
        >>> case = Case.from_datasets(prior=read("course1"), new=read("course2"),
        ...                           registration=sample / "course2" / "reg.dcm", id="HN-1")
        >>> [(c.name, len(c.datasets)) for c in case.courses]
        [('prior', 3), ('new', 3)]
        """
        in_memory = registration is not None and not isinstance(registration, str | Path)
        if registration is not None and not in_memory and not Path(registration).is_file():
            raise InputError(registration, "registration file does not exist")
        courses = (
            CourseSpec.from_datasets("prior", prior, end_date=prior_end_date),
            CourseSpec.from_datasets(
                "new",
                (*new, registration) if in_memory else new,
                start_date=new_start_date,
                registration=None if registration is None or in_memory else Path(registration),
            ),
        )
        _refuse_bad_courses(courses, courses[-1].path)
        return cls(path=Path("<in memory>"), id=id, courses=courses)

    def structures_of(self, course: CourseSpec) -> dict[str, str]:
        """A course's structure -> organ map: its own ``[courses.structures]``, else the top-level
        ``[structures]`` (written for the reference course; a prior course's own set is read only
        in conservative mode)."""
        return self.structures if course.structures is None else course.structures


CASE_FILE_NAME = "case.toml"  # the case file a folder given as the case stands for


def case_file(path: str | Path) -> Path:
    """The case file a path names: the path itself, or a folder's ``case.toml``.

    A folder without one is refused (InputError): it is no case, and its DICOM files alone do not
    say which course is which.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / CASE_FILE_NAME).is_file():
        return path / CASE_FILE_NAME
    raise InputError(
        path, f"no {CASE_FILE_NAME} in this folder; give the case file, or the course folders with --prior and --new"
    )


def load_case(path: str | Path) -> CaseSpec:
    """Read and validate a case file (or a folder's ``case.toml``, see :func:`case_file`); one
    InputError naming the file and listing every problem (each with its field)."""
    path = case_file(path)
    data = read_toml(path, "case file")
    problems = Problems(path)
    get = problems.attempt
    get(_no_unknown_keys, data, _CASE_KEYS | _UNCERTAINTY_KEYS, "", path)
    courses_data = data.get("courses")
    courses: tuple[CourseSpec, ...] = ()
    if not isinstance(courses_data, list) or not courses_data:
        problems.add("courses", None, "give at least one [[courses]] table")
    else:
        built = [_course(item, i, path, problems) for i, item in enumerate(courses_data)]
        courses = tuple(c for c in built if c is not None)
        if len(courses) == len(built):
            _check_courses(courses, problems)
        else:  # the order checks and the reference course need every course
            courses = ()
    if "structures" in data and courses and courses[-1].structures is not None:
        problems.add(
            "structures",
            None,
            f"the reference course {courses[-1].name!r} has its own "
            "[courses.structures]; give its names in one of the two tables",
        )
    constraints = get(_optional, data, "constraints", str, "", path)
    if constraints is not None:
        get(_named, "constraints", lambda: resolve_set_path(constraints, relative_to=path.parent))
    model = get(_optional, data, "recovery_model", str, "", path)
    if model is not None:
        get(_named, "recovery_model", lambda: recovery_model(model))
    case = CaseSpec(
        path=path,
        id=get(_required, data, "id", str, "", path),
        courses=courses,
        constraints=constraints,
        structures=get(_structures, data.get("structures", {}), path) or {},
        clinical=_clinical(data.get("clinical", {}), path, problems),
        recovery_model=model,
        accept_partial_coverage=bool(get(_optional, data, "accept_partial_coverage", bool, "", path)),
        **(get(_uncertainty, data, path) or {}),
    )
    problems.raise_if_any("case file")
    return case


def _uncertainty(data: dict, path: Path) -> dict[str, Any]:
    """The registration-uncertainty keys (reirrad.robust checks their ranges when the check runs)."""
    values: dict[str, Any] = {}
    for key, positive in (("registration_uncertainty_mm", True), ("registration_uncertainty_deg", False)):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not (value > 0 if positive else value >= 0)
        ):
            raise InputError(
                path, f"{key}: must be a number {'above' if positive else 'of at least'} 0, got {shown(value)}"
            )
        values[key] = None if value is None else float(value)
    values["robust"] = bool(_optional(data, "robust", bool, "", path))
    if values["registration_uncertainty_mm"] is None:
        given = [k for k in ("registration_uncertainty_deg", "robust") if data.get(k)]
        if given:
            raise InputError(path, f"{given[0]}: needs registration_uncertainty_mm (the shift to search, mm)")
    return values


def _named(field: str, resolve: Callable[[], Any]) -> None:
    """Run ``resolve`` (a constraint set or recovery model lookup); its InputError is about ``field``
    of the case file."""
    try:
        resolve()
    except InputError as exc:
        raise InputError(None, f"{field}: {exc.problem}") from None


def _course(item: Any, index: int, case_file: Path, problems: Problems) -> CourseSpec | None:
    """One [[courses]] table, or None with its problems recorded."""
    where = f"courses[{index}]."
    if not isinstance(item, dict):
        problems.add(f"courses[{index}]", None, "must be a table")
        return None
    before = len(problems)
    get = problems.attempt
    get(_no_unknown_keys, item, _COURSE_KEYS, where, case_file)
    auto_register = item.get("registration") == "auto"  # autoreg: automatic registration only when asked
    fractions = get(_optional, item, "fractions", int, where, case_file)
    if fractions is not None and fractions < 1:
        problems.add(f"{where}fractions", None, f"must be a positive integer, got {fractions}")
    override = bool(get(_optional, item, "override_fractions", bool, where, case_file))
    if override and fractions is None and "fractions" not in item:
        problems.add(f"{where}override_fractions", None, "only with fractions = N (the count to use)")
    schedule = get(_optional, item, "schedule", str, where, case_file)
    if schedule is not None and schedule not in SCHEDULES:
        problems.add(f"{where}schedule", None, f"must be one of {', '.join(SCHEDULES)}, got {shown(schedule)}")
    course = CourseSpec(
        name=get(_required, item, "name", str, where, case_file),
        path=get(_existing_path, item, "path", where, case_file, True),
        start_date=get(_date, item, "start_date", where, case_file),
        end_date=get(_date, item, "end_date", where, case_file),
        registration=None if auto_register else get(_optional_file, item, "registration", where, case_file),
        structure_set=get(_optional_file, item, "structure_set", where, case_file),
        auto_register=auto_register,
        fractions=fractions,
        schedule=schedule,
        case_file=case_file,
        accept_dose_scale=bool(get(_optional, item, "accept_dose_scale", bool, where, case_file)),
        accept_other_patient=bool(get(_optional, item, "accept_other_patient", bool, where, case_file)),
        override_fractions=override,
        structures=None
        if "structures" not in item
        else get(_structures, item["structures"], case_file, f"{where}structures"),
    )
    return course if len(problems) == before else None


def _refuse_bad_courses(courses: tuple[CourseSpec, ...], path: Path) -> None:
    """One InputError naming ``path`` and every problem of :func:`_check_courses` (courses given
    without a case file)."""
    problems = Problems(path)
    _check_courses(courses, problems)
    problems.raise_if_any("courses")


def _check_courses(courses: tuple[CourseSpec, ...], problems: Problems) -> None:
    """Unique names, consistent dates, oldest course first, no course starting before the end of
    the one before it."""
    names = [c.name for c in courses]
    for i, course in enumerate(courses):
        if not course.name.strip():
            problems.add(f"courses[{i}].name", None, "must not be empty")
        if course.name in names[:i]:
            problems.add(f"courses[{i}].name", None, f"{shown(course.name)} is used by more than one course")
        if course.start_date and course.end_date and course.end_date < course.start_date:
            problems.add(f"courses[{i}].end_date", None, f"{course.end_date} is before start_date {course.start_date}")
    for i, (earlier, later) in enumerate(itertools.pairwise(courses), start=1):
        first = earlier.start_date or earlier.end_date
        second = later.start_date or later.end_date
        if first and second and second < first:
            problems.add(f"courses[{i}]", None, "courses must be listed oldest first (the last is the reference)")
            continue
        earlier_end = earlier.end_date or earlier.start_date
        if earlier_end and second and second < earlier_end:
            problems.add(
                f"courses[{i}]",
                None,
                f"starts {second}, before courses[{i - 1}] ended ({earlier_end}): courses overlap",
            )


def _structures(table: Any, case_file: Path, where: str = "structures") -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InputError(case_file, f"{where}: must map structure names to organ names (strings)")
    return dict(table)


def _clinical(table: Any, case_file: Path, problems: Problems) -> ClinicalSpec:
    if not isinstance(table, dict):
        problems.add("clinical", None, "must be a table")
        return ClinicalSpec()
    get = problems.attempt
    get(_no_unknown_keys, table, _CLINICAL_KEYS, "clinical.", case_file)
    return ClinicalSpec(
        resection=get(_optional, table, "resection", bool, "clinical.", case_file),
        organ_dysfunction=get(_optional, table, "organ_dysfunction", bool, "clinical.", case_file),
        recurrence_site=get(_optional, table, "recurrence_site", str, "clinical.", case_file),
        histology=get(_histology, table, case_file),
        carotid_invasion_deg=get(_degrees, table, "carotid_invasion_deg", "clinical.", case_file),
    )


def _histology(table: dict, case_file: Path) -> str | None:
    value = _optional(table, "histology", str, "clinical.", case_file)
    if value is not None and value not in HISTOLOGIES:
        raise InputError(case_file, f"clinical.histology: must be one of {', '.join(HISTOLOGIES)}, got {value!r}")
    return value


def _degrees(table: dict, key: str, where: str, case_file: Path) -> float | None:
    """An optional angle in degrees, 0 to 360."""
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 360:
        raise InputError(case_file, f"{where}{key}: must be a number of degrees from 0 to 360, got {value!r}")
    return float(value)


def _no_unknown_keys(table: dict, allowed: set[str], where: str, case_file: Path) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        listed = ", ".join(plain(key) for key in unknown)
        raise InputError(case_file, f"{where}{listed}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _optional(table: dict, key: str, kind: type, where: str, case_file: Path) -> Any:
    value = table.get(key)
    if value is None:
        return None
    # bool is an int in Python; a fraction count of `true` is still a mistake
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(case_file, f"{where}{key}: must be {kind.__name__}, got {shown(value)}")
    return value


def _optional_file(table: dict, key: str, where: str, case_file: Path) -> Path | None:
    """An optional file path relative to the case file, which must exist."""
    if table.get(key) is None:
        return None
    return _existing_path(table, key, where, case_file, folder=False)


def _existing_path(table: dict, key: str, where: str, case_file: Path, folder: bool) -> Path:
    """A required path relative to the case file (``..`` allowed: the user's own files) that
    resolves to an existing folder or regular file; symlink loops are refused."""
    path = case_file.parent / _required(table, key, str, where, case_file)
    try:
        existing(path, folder)
    except ValueError as exc:
        raise InputError(case_file, f"{where}{key}: {exc}") from None
    return path


def _required(table: dict, key: str, kind: type, where: str, case_file: Path) -> Any:
    value = _optional(table, key, kind, where, case_file)
    if value is None or value == "":
        raise InputError(case_file, f"{where}{key}: required")
    return value


def _date(table: dict, key: str, where: str, case_file: Path) -> date | None:
    value = table.get(key)
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(case_file, f"{where}{key}: must be a date like 2025-01-14, got {shown(value)}")


def case_from_folders(
    prior: Path,
    new: Path,
    prior_end_date: date | None = None,
    new_start_date: date | None = None,
    registration: Path | None = None,
    prior_fractions: int | None = None,
    new_fractions: int | None = None,
    override_fractions: bool = False,
) -> CaseSpec:
    """The quick two-course case of ``reirrad check --prior DIR --new DIR`` (no case file).

    ``override_fractions`` (--override-fractions) confirms given counts that disagree with a plan."""
    for folder in (prior, new):
        if not Path(folder).is_dir():
            raise InputError(folder, "course folder does not exist")
    if registration is not None and not Path(registration).is_file():
        raise InputError(registration, "registration file does not exist")
    for fractions, option in ((prior_fractions, "--prior-fractions"), (new_fractions, "--new-fractions")):
        if fractions is not None and fractions < 1:
            raise InputError(None, f"{option} must be a positive integer, got {fractions}")
    if override_fractions and prior_fractions is None and new_fractions is None:
        raise InputError(None, "--override-fractions needs --prior-fractions or --new-fractions (the count to use)")
    courses = (
        CourseSpec(
            name="prior",
            path=Path(prior),
            end_date=prior_end_date,
            fractions=prior_fractions,
            override_fractions=override_fractions,
            fractions_option="--prior-fractions",
        ),
        CourseSpec(
            name="new",
            path=Path(new),
            start_date=new_start_date,
            fractions=new_fractions,
            registration=None if registration is None else Path(registration),
            override_fractions=override_fractions,
            fractions_option="--new-fractions",
        ),
    )
    _refuse_bad_courses(courses, Path(new))
    return CaseSpec(path=Path(new), id=Path(new).resolve().parent.name or "case", courses=courses)
