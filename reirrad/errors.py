"""Exceptions that the command line turns into one-line messages and exit code 2.

An :class:`InputError` may carry a :class:`Hint`: what the user can give to resolve it (a
fraction count, a registration, a structure mapping, a confirmation). The hint is named per
interface: the command line names its option (``--accept-dose-scale``), the case file its key
(``accept_dose_scale = true``), the Python API its keyword (``accept_dose_scale=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Remedy(StrEnum):
    """What the user can give to resolve an :class:`InputError`."""

    FRACTIONS = "fractions"  # a course's fraction count
    OVERRIDE_FRACTIONS = "override_fractions"  # confirm a count that disagrees with the plan
    REGISTRATION = "registration"  # a rigid REG relating two frames of reference
    STRUCTURE_MAP = "structures"  # structure name -> organ mapping
    ACCEPT_DOSE_SCALE = "accept_dose_scale"
    ACCEPT_OTHER_PATIENT = "accept_other_patient"
    ACCEPT_PARTIAL_COVERAGE = "accept_partial_coverage"


class Interface(StrEnum):
    """Who reads the message: a command-line user (options and case-file keys) or a Python caller
    (keyword arguments)."""

    CLI = "cli"
    PYTHON = "python"


_BOOLEAN = {
    Remedy.OVERRIDE_FRACTIONS,
    Remedy.ACCEPT_DOSE_SCALE,
    Remedy.ACCEPT_OTHER_PATIENT,
    Remedy.ACCEPT_PARTIAL_COVERAGE,
}
_EVERY_COURSE = {
    Remedy.ACCEPT_DOSE_SCALE,
    Remedy.ACCEPT_OTHER_PATIENT,
    Remedy.ACCEPT_PARTIAL_COVERAGE,
}  # a --flag exists
_CASE_VALUE = {Remedy.FRACTIONS: "N", Remedy.REGISTRATION: '"REG"', Remedy.STRUCTURE_MAP: '{ "NAME" = "ORGAN" }'}
_PYTHON_VALUE = {Remedy.FRACTIONS: "N", Remedy.REGISTRATION: "PATH", Remedy.STRUCTURE_MAP: '{"NAME": "ORGAN"}'}


@dataclass(frozen=True)
class Hint:
    """A structured remedy for an :class:`InputError`, named per interface by :meth:`text`.

    Parameters
    ----------
    remedy : Remedy
        What to give.
    course : str, optional
        The course it concerns (case files and Python name the course).
    option : str, optional
        The command-line option that gives it (``--prior-fractions``); None when the course
        comes from a case file (then the case-file key is named).

    Examples
    --------
    >>> hint = Hint(Remedy.ACCEPT_DOSE_SCALE)
    >>> hint.text(Interface.CLI), hint.text(Interface.PYTHON)
    ('--accept-dose-scale or accept_dose_scale = true', 'accept_dose_scale=True')
    >>> fractions = Hint(Remedy.FRACTIONS, course="prior")
    >>> fractions.text(Interface.CLI)
    "set fractions = N for course 'prior' in the case file"
    >>> fractions.text(Interface.PYTHON)
    "pass fractions=N for course 'prior'"
    >>> Hint(Remedy.FRACTIONS, course="prior", option="--prior-fractions").text(Interface.CLI)
    'pass --prior-fractions N'
    """

    remedy: Remedy
    course: str | None = None
    option: str | None = None

    def text(self, interface: Interface) -> str:
        """The remedy as ``interface`` spells it: an option or case-file key, or a keyword
        (with its verb for a value to give: "set ...", "pass ...")."""
        key = self.remedy.value
        where = "" if self.course is None else f" for course {self.course!r}"
        boolean = self.remedy in _BOOLEAN
        if interface is Interface.PYTHON:
            return f"{key}=True{where}" if boolean else f"pass {key}={_PYTHON_VALUE[self.remedy]}{where}"
        if self.remedy in _EVERY_COURSE:
            return f"--{key.replace('_', '-')} or {key} = true{where}"
        if self.option:
            return self.option if boolean else f"pass {self.option} {_CASE_VALUE[self.remedy].strip(chr(34))}"
        return (
            f"{key} = true{where} in the case file"
            if boolean
            else f"set {key} = {_CASE_VALUE[self.remedy]}{where} in the case file"
        )


class ReirradError(Exception):
    """Base class: bad input or usage that the user can fix. Never a programming error."""


class InputError(ReirradError):
    """A file (or folder) that cannot be used, with the reason.

    ``str(err)`` is one line: ``"<path>: <problem>"``. ``hint`` (optional) says what would
    resolve it; :meth:`for_interface` words the message for that interface.

    Parameters
    ----------
    path : str or Path, optional
        The file or folder concerned (None: no single file).
    problem : str
        What is wrong; with a ``hint``, the message continues with the hint's text in ``how``.
    hint : Hint, optional
        A structured remedy.
    how : str
        How the hint is introduced, with ``{}`` where its text goes (e.g. ``"; accept it with {}"``).
    interface : Interface
        The interface the message names the remedy for (the command line by default).

    Examples
    --------
    >>> err = InputError("dose.dcm", "dose implausible", Hint(Remedy.ACCEPT_DOSE_SCALE), how="; accept it with {}")
    >>> str(err)
    'dose.dcm: dose implausible; accept it with --accept-dose-scale or accept_dose_scale = true'
    >>> str(err.for_interface(Interface.PYTHON))
    'dose.dcm: dose implausible; accept it with accept_dose_scale=True'
    """

    def __init__(
        self,
        path: str | Path | None,
        problem: str,
        hint: Hint | None = None,
        how: str = ": {}",
        interface: Interface = Interface.CLI,
    ):
        self.path = None if path is None else Path(path)
        self.hint = hint
        self.how = how
        self.bare_problem = problem
        self.problem = problem if hint is None else problem + how.format(hint.text(interface))
        super().__init__(self.problem if path is None else f"{path}: {self.problem}")

    def for_interface(self, interface: Interface) -> InputError:
        """The same error worded for ``interface`` (itself when it has no hint)."""
        if self.hint is None:
            return self
        return type(self)(self.path, self.bare_problem, self.hint, self.how, interface)


class OptionError(ReirradError, ValueError):
    """An option outside its domain (a zero dose, an unknown choice), refused alike for the command
    line (exit 2) and Python callers (a ValueError)."""
