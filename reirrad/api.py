"""The documented Python API: what ``import reirrad`` offers (see ``reirrad.__all__``).

The functions here are thin and stable: they take paths, already-read pydicom datasets or
objects built in Python, and call the library the command line uses, so a check from a notebook
gives exactly the numbers and the ``reirrad.check.v1`` document of ``reirrad check``. Heavy
modules (numpy, pydicom, scipy) are imported inside the functions, so ``import reirrad`` stays light.

Examples
--------
>>> import reirrad
>>> report = reirrad.check(reirrad.data.sample_case())
>>> report.summary.exit_code in (0, 1)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pydicom

    from reirrad.accumulate import LoadedCourse
    from reirrad.case import CaseSpec
    from reirrad.dicom.dose import DoseGrid
    from reirrad.dicom.structures import StructureSet
    from reirrad.dvh import DvhTable
    from reirrad.results import CheckReport

PathLike = str | Path


def check(
    case: PathLike | CaseSpec,
    *,
    constraints: str | None = None,
    recovery_model: str | None = None,
    fail_on: str = "fail",
    allow_missing: bool = False,
    lql_transition_gy: float | None = None,
    conservative: bool = False,
    accept_dose_scale: bool = False,
    accept_other_patient: bool = False,
    accept_partial_coverage: bool = False,
    registration_uncertainty_mm: float | None = None,
    registration_uncertainty_deg: float | None = None,
    robust: bool = False,
    figures: bool = True,
) -> CheckReport:
    """Judge the cumulative EQD2 of every course of a case against a constraint set.

    The same check as ``reirrad check``: nothing silently passes (a constraint whose organ is
    missing, empty or outside the dose grid is ``Status.NOT_EVALUATED`` with the reason), and
    ambiguous input is refused with an :class:`~reirrad.errors.InputError`, never guessed.

    Parameters
    ----------
    case : str, Path or Case
        A case file (TOML, see the README), or a :class:`Case` built in Python, e.g. with
        :meth:`Case.from_folders`. The last course is the reference (its grid and structures).
    constraints : str, optional
        A built-in constraint set name (``reirrad constraints list``) or a TOML path; default:
        the case's choice, else ``"hn-reirradiation"``.
    recovery_model : str, optional
        A recovery model name (e.g. ``"none"``); default: the case's, else the set's default.
    fail_on : {"fail", "warn"}
        Which verdicts make ``report.summary.exit_code`` 1.
    allow_missing : bool
        Constraints that could not be evaluated do not fail the run.
    lql_transition_gy : float, optional
        Dose per fraction (Gy) above which LQ-L replaces the LQ model; default: pure LQ.
    conservative : bool
        Courses in different frames with no registration: per-organ sum of per-course upper bounds.
    accept_dose_scale, accept_other_patient, accept_partial_coverage : bool
        Confirm, for every course, a dose maximum implausible against the plan prescription, a
        course of another PatientID, an organ partly outside a course's dose grid (0 Gy there).
        Each is flagged or noted in the report.
    registration_uncertainty_mm, registration_uncertainty_deg : float, optional
        Also find each result's worst case with the prior courses shifted up to this distance
        (mm) and rotated up to this angle (degrees) about the structure's centroid around the
        registered position (``ConstraintResult.worst_case_gy``); default: the case's.
    robust : bool
        Judge on the worst case instead of the registered value (needs an uncertainty).
    figures : bool
        Also compute what the HTML and PDF reports draw: the DVH curves (``report.curves``) and
        the planes through each failing or warning organ's hottest point, on the planning CT
        (``report.hotspots``). False leaves both empty and is faster; every number and the
        ``reirrad.check.v1`` document are the same (``reirrad check`` computes them only for
        ``--format html`` and ``pdf``).

    Returns
    -------
    CheckReport
        The verdicts (``report.results``), courses, flags, assumptions and summary;
        ``report.to_dict()`` is the ``reirrad.check.v1`` document.

    Raises
    ------
    reirrad.errors.InputError
        Input that cannot be used (names the file and the problem; ``err.hint`` says which
        keyword would resolve it, when one would).
    reirrad.errors.OptionError
        An option outside its domain (also a ``ValueError``).
    TypeError
        ``case`` is neither a path nor a :class:`Case`.

    Examples
    --------
    >>> import reirrad
    >>> report = reirrad.check(reirrad.data.sample_case(), recovery_model="none")
    >>> first = report.results[0]
    >>> first.status in set(reirrad.Status), sorted(first.per_course)
    (True, ['new', 'prior'])
    """
    from reirrad.case import CaseSpec, load_case
    from reirrad.check import CheckOptions, fail_on_option, run_check
    from reirrad.errors import InputError, Interface

    if isinstance(case, str | Path):
        case = load_case(case)
    elif not isinstance(case, CaseSpec):
        raise TypeError(f"case must be a case-file path or a reirrad.Case, got {type(case).__name__}")
    options = CheckOptions(
        constraints=constraints,
        fail_on=fail_on_option(fail_on),
        allow_missing=allow_missing,
        recovery_model=recovery_model,
        lql_transition_gy=lql_transition_gy,
        conservative=conservative,
        accept_dose_scale=accept_dose_scale,
        accept_other_patient=accept_other_patient,
        accept_partial_coverage=accept_partial_coverage,
        registration_uncertainty_mm=registration_uncertainty_mm,
        registration_uncertainty_deg=registration_uncertainty_deg,
        robust=robust,
        figures=figures,
    )
    try:
        return run_check(case, options)
    except InputError as exc:
        raise exc.for_interface(Interface.PYTHON) from None


def _is_dataset(value: Any) -> bool:
    import pydicom

    return isinstance(value, pydicom.Dataset)


def _loaded(value: Any, kind: type, from_dataset: Callable[[Any, PathLike], Any], read: Callable[[Any], Any]) -> Any:
    """``value`` when it is already a ``kind``, else read from its pydicom dataset (decoded first, as
    a file is) or its file."""
    from reirrad.dicom.discover import dataset_label
    from reirrad.dicom.io import decode_dataset

    if isinstance(value, kind):
        return value
    if _is_dataset(value):
        label = dataset_label(value)
        return from_dataset(decode_dataset(value, label), label)
    return read(value)


def _dose(dose: PathLike | pydicom.Dataset | DoseGrid) -> DoseGrid:
    from reirrad.dicom.dose import DoseGrid, dose_from_dataset, read_dose

    return _loaded(dose, DoseGrid, dose_from_dataset, read_dose)


def _structure_set(structures: PathLike | pydicom.Dataset | StructureSet) -> StructureSet:
    from reirrad.dicom.structures import StructureSet, read_structures, structures_from_dataset

    return _loaded(structures, StructureSet, structures_from_dataset, read_structures)


def dvh(
    dose: PathLike | pydicom.Dataset | DoseGrid,
    structures: PathLike | pydicom.Dataset | StructureSet,
    metrics: Sequence[str] | None = None,
    *,
    names: Sequence[str] = (),
    end_caps: str = "half",
    fractions: int | None = None,
    alpha_beta_gy: float | None = None,
    registration: PathLike | None = None,
    accept_other_patient: bool = False,
) -> DvhTable:
    """DVH metrics of each structure on a dose, as ``reirrad dvh`` reports them.

    Parameters
    ----------
    dose : str, Path, pydicom.Dataset or DoseGrid
        An RTDOSE (absolute dose in Gy): a file, or a dataset already read with pydicom.
    structures : str, Path, pydicom.Dataset or StructureSet
        An RTSTRUCT on the dose's frame of reference (else give ``registration``).
    metrics : sequence of str, optional
        Metrics such as ``"Dmax"``, ``"D0.03cc"``, ``"D95%"``, ``"V20Gy"`` (cm3) or
        ``"V20Gy[%]"``; default: Dmin, Dmax, Dmean, D0.03cc, D1cc, D99%, D95%, D5%, D1%.
    names : sequence of str
        Structures to evaluate (default: all).
    end_caps : {"half", "none"}
        Extend the first and last contour by half the contour spacing, or not.
    fractions, alpha_beta_gy : optional
        Both together: report EQD2 (Gy) with this fraction count and alpha/beta (Gy).
    registration : str or Path, optional
        A rigid REG file relating the dose's frame to the structure set's (files only).
    accept_other_patient : bool
        Use a structure set of another PatientID than the dose's (noted).

    Returns
    -------
    DvhTable
        ``table.structures[i].values`` maps each metric to its value (Gy, cm3 or %), None when
        not evaluated (the reason is in ``notes``); ``table.structures[i].to_dicompyler()`` gives
        a ``dicompylercore.dvh.DVH``.

    Raises
    ------
    reirrad.errors.InputError
        Unreadable or unusable files, an unknown structure, different frames or patients.
    ValueError
        An unknown metric (the message explains the grammar).

    Examples
    --------
    >>> import pydicom, reirrad
    >>> course = reirrad.data.sample_case().parent / "course2"
    >>> table = reirrad.dvh(course / "dose.dcm", pydicom.dcmread(course / "structures.dcm"),
    ...                     ["Dmax", "V20Gy"], names=["SpinalCord"])
    >>> row = table.structures[0]
    >>> row.name, row.values["Dmax"] > 0
    ('SpinalCord', True)
    """
    from reirrad.dvh import dvh_table
    from reirrad.errors import InputError, Interface
    from reirrad.masks import DOSE_GRID
    from reirrad.metrics import parse_metric
    from reirrad.pairing import load_pair

    parsed = tuple(parse_metric(m) for m in metrics or ())
    plain = all(isinstance(x, str | Path) for x in (dose, structures))
    if plain:
        try:
            pair = load_pair(dose, structures, registration, accept_other_patient)  # type: ignore[arg-type]
        except InputError as exc:
            raise exc.for_interface(Interface.PYTHON) from None
        dose_grid, structure_set, extent = pair.dose, pair.structures, pair.extent
    else:
        dose_grid, structure_set, extent = _dose(dose), _structure_set(structures), DOSE_GRID
        _same_frame(dose_grid, structure_set, registration)
        _same_patient(dose, structures, accept_other_patient)
    return dvh_table(dose_grid, structure_set, tuple(names), parsed, fractions, alpha_beta_gy, end_caps, extent)


def _same_frame(dose: DoseGrid, structures: StructureSet, registration: PathLike | None) -> None:
    """Refuse in-memory objects of different (or missing) frames of reference."""
    from reirrad.dicom.discover import require_frame
    from reirrad.errors import InputError

    require_frame(dose.grid.frame_of_reference_uid, dose.path)
    require_frame(structures.frame_of_reference_uid, structures.path)
    if registration is not None:
        raise InputError(
            registration, "a registration is applied to files only: give the dose and the structure set as paths too"
        )
    if dose.grid.frame_of_reference_uid != structures.frame_of_reference_uid:
        raise InputError(
            dose.path,
            f"frame of reference {dose.grid.frame_of_reference_uid} differs from "
            f"{structures.frame_of_reference_uid} of {structures.path}: give the files as paths with "
            "registration=",
        )


def _same_patient(dose: Any, structures: Any, accept: bool) -> None:
    """Refuse a dose and a structure set (datasets or files) of two patients unless ``accept``."""
    from reirrad.dicom.discover import dataset_label
    from reirrad.dicom.identity import PatientIdentity, identity_of, read_identity
    from reirrad.errors import Hint, InputError, Interface, Remedy

    def identity(value: Any) -> tuple[Path, PatientIdentity]:
        if _is_dataset(value):
            return dataset_label(value), identity_of(value)
        if isinstance(value, str | Path):
            return Path(value), read_identity(value)
        return value.path, PatientIdentity("")  # an object already read: its patient is not known here

    (dose_path, of_dose), (structures_path, of_structures) = identity(dose), identity(structures)
    difference = of_dose.difference(of_structures)
    if difference and not accept:
        raise InputError(
            structures_path,
            f"belongs to another patient than {dose_path} ({difference}); if that is intended, accept it",
            Hint(Remedy.ACCEPT_OTHER_PATIENT),
            " with {}",
            Interface.PYTHON,
        )


def eqd2(
    dose: Any,
    fractions: float,
    alpha_beta_gy: float,
    *,
    lql_transition_gy: float | None = None,
) -> np.ndarray:
    """Equivalent dose in 2 Gy fractions (Gy) of a total physical dose given in ``fractions``.

    ``EQD2 = D (d + a/b) / (2 + a/b)`` with ``d = D / n`` (LQ); with ``lql_transition_gy`` the
    quadratic term grows linearly above that dose per fraction (LQ-L).

    Parameters
    ----------
    dose : float, array_like, str, Path, pydicom.Dataset or DoseGrid
        Total physical dose in Gy (any shape), or an RTDOSE (file or dataset) whose whole
        delivery (DoseSummationType PLAN or FRACTION) is converted voxel by voxel.
    fractions : float
        Number of fractions the dose was given in (> 0).
    alpha_beta_gy : float
        alpha/beta in Gy (> 0).
    lql_transition_gy : float, optional
        LQ-L transition dose per fraction (Gy); default: pure LQ.

    Returns
    -------
    numpy.ndarray
        EQD2 in Gy, the shape of ``dose`` (an RTDOSE: (frames, rows, columns)).

    Raises
    ------
    ValueError
        A non-positive fraction count, alpha/beta or transition dose.
    reirrad.errors.InputError
        An RTDOSE that is not a whole delivery (BEAM, FRACTION_SESSION, ...) or not physical dose.

    Examples
    --------
    >>> import reirrad
    >>> float(reirrad.eqd2(30.0, fractions=5, alpha_beta_gy=2.0))
    60.0
    >>> reirrad.eqd2([50.0, 70.0], 35, 3.0).round(2).tolist()
    [44.29, 70.0]
    """
    from reirrad.dicom.dose import DoseGrid
    from reirrad.dicom.summation import WHOLE_DELIVERY
    from reirrad.eqd2 import eqd2_gy
    from reirrad.errors import InputError

    if isinstance(dose, str | Path | DoseGrid) or _is_dataset(dose):
        grid = _dose(dose)
        if grid.summation_type not in WHOLE_DELIVERY or grid.dose_type != "PHYSICAL":
            raise InputError(
                grid.path,
                f"a {grid.dose_type} {grid.summation_type} dose is not the physical dose of "
                "a whole delivery (PLAN or FRACTION): its EQD2 is unknown",
            )
        dose = grid.dose_gy
    return eqd2_gy(dose, fractions, alpha_beta_gy, lql_transition_gy)


def load_course(
    folder: PathLike | None = None,
    *,
    datasets: Sequence[pydicom.Dataset] | None = None,
    name: str = "course",
    fractions: int | None = None,
    override_fractions: bool = False,
    structure_set: PathLike | None = None,
    accept_dose_scale: bool = False,
) -> LoadedCourse:
    """Read one course: its phases resolved to physical dose (Gy) with their fractions.

    Parameters
    ----------
    folder : str or Path, optional
        A folder of the course's RTPLAN, RTDOSE, RTSTRUCT (and REG) files, searched recursively.
    datasets : sequence of pydicom.Dataset, optional
        The same objects already read or built in Python (instead of ``folder``), a rigid REG
        among them too; provenance is then each object's SOPInstanceUID instead of a file hash.
    name : str
        The course's name in messages and reports.
    fractions : int, optional
        The fraction count when no RTPLAN gives it (refused when it disagrees with a plan,
        unless ``override_fractions``).
    override_fractions : bool
        Use ``fractions`` although a plan says otherwise (flagged).
    structure_set : str or Path, optional
        The RTSTRUCT to use when the folder holds several.
    accept_dose_scale : bool
        Use a dose whose maximum is implausible against its plan's prescription (noted).

    Returns
    -------
    reirrad.accumulate.LoadedCourse
        ``course.phases[i].dose_gy`` (frames, rows, columns) in Gy on ``course.phases[i].grid``,
        ``.fractions``, ``.prescription_gy``; ``course.structures``; ``course.files`` (provenance).

    Raises
    ------
    reirrad.errors.InputError
        No RTDOSE, ambiguous or inconsistent objects (two structure sets, frames, patients, ...).

    Examples
    --------
    >>> import reirrad
    >>> course = reirrad.load_course(reirrad.data.sample_case().parent / "course2", name="new")
    >>> course.fractions, round(course.prescription_gy, 1)
    (5, 35.0)
    """
    from reirrad.accumulate import load_course as load
    from reirrad.errors import InputError, Interface

    spec = course_spec(
        name,
        folder,
        datasets=datasets,
        fractions=fractions,
        override_fractions=override_fractions,
        structure_set=structure_set,
        accept_dose_scale=accept_dose_scale,
    )
    try:
        return load(spec)
    except InputError as exc:
        raise exc.for_interface(Interface.PYTHON) from None


def course_spec(
    name: str,
    folder: PathLike | None = None,
    *,
    datasets: Sequence[pydicom.Dataset] | None = None,
    **options: Any,
) -> Any:
    """A :class:`CourseSpec` for a folder or for in-memory datasets (exactly one of them).

    ``options`` are CourseSpec fields (``start_date``, ``end_date``, ``registration``,
    ``fractions``, ``schedule``, ``override_fractions``, ``accept_*``, ``structures``).
    """
    from reirrad.case import CourseSpec
    from reirrad.errors import OptionError

    if (folder is None) == (datasets is None):
        raise OptionError("give exactly one of folder= and datasets=")
    for key in ("registration", "structure_set"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    if folder is not None:
        return CourseSpec(name=name, path=Path(folder), **options)
    return CourseSpec.from_datasets(name, datasets, **options)
