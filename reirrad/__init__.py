"""reirrad: cumulative EQD2 plan checks for head-and-neck re-irradiation.

The public API (stable, versioned with the ``reirrad.check.v1`` JSON schema):

- :func:`check` judges a case (a case file, or a :class:`Case` built in Python) -> :class:`CheckReport`;
- :func:`dvh` gives DVH metrics of a dose and a structure set (files or pydicom datasets);
- :func:`eqd2` converts a physical dose to EQD2; :func:`load_course` reads one course;
- :func:`compare_tps` puts the planning system's own DVHs (an RTDOSE's DVHSequence) beside reirrad's;
- :func:`deidentify_report` replaces the patient's identity in a report by a stable pseudonym;
- :class:`Case` / :class:`CourseSpec` describe a case (``Case.from_folders``, ``Case.from_datasets``);
- :class:`Status`, :class:`ConstraintResult`, :class:`CheckReport`, :class:`DvhTable` are the results;
- :class:`InputError`, :class:`OptionError`, :class:`ReirradError` are the errors; an
  ``InputError``'s :class:`Hint` names the :class:`Remedy` (the keyword to give).

``import reirrad`` is light: numpy, pydicom and scipy are imported when a function or class
needing them is first used (module-level ``__getattr__``).

Examples
--------
>>> import reirrad
>>> report = reirrad.check(reirrad.data.sample_case())
>>> report.to_dict()["case"]["id"]
'HN-SBRT-REIRR-01'
"""

import sys
import types
from importlib import import_module

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CheckReport",
    "ConstraintResult",
    "CourseSpec",
    "DvhTable",
    "Hint",
    "InputError",
    "OptionError",
    "ReirradError",
    "Remedy",
    "Status",
    "__version__",
    "check",
    "compare_tps",
    "data",
    "deidentify_report",
    "dvh",
    "eqd2",
    "load_case",
    "load_course",
]

# public name -> (module, attribute in it); imported on first use
_LAZY = {
    "Case": ("reirrad.case", "CaseSpec"),
    "CourseSpec": ("reirrad.case", "CourseSpec"),
    "load_case": ("reirrad.case", "load_case"),
    "CheckReport": ("reirrad.results", "CheckReport"),
    "ConstraintResult": ("reirrad.results", "ConstraintResult"),
    "Status": ("reirrad.results", "Status"),
    "DvhTable": ("reirrad.dvh", "DvhTable"),
    "Hint": ("reirrad.errors", "Hint"),
    "Remedy": ("reirrad.errors", "Remedy"),
    "InputError": ("reirrad.errors", "InputError"),
    "OptionError": ("reirrad.errors", "OptionError"),
    "ReirradError": ("reirrad.errors", "ReirradError"),
    "check": ("reirrad.api", "check"),
    "dvh": ("reirrad.api", "dvh"),
    "eqd2": ("reirrad.api", "eqd2"),
    "load_course": ("reirrad.api", "load_course"),
    "data": ("reirrad.data", None),
    "compare_tps": ("reirrad.tps", "compare_tps"),
    "deidentify_report": ("reirrad.deidentify", "deidentify_report"),
}


def __getattr__(name: str):
    """Import a public name's module when the name is first used (keeps ``import reirrad`` light)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'reirrad' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# The functions check, dvh and eqd2 share their names with the submodules that hold the logic
# (reirrad/check.py, dvh.py, eqd2.py). Importing a submodule makes Python bind it as an attribute
# of this package, which would replace the function: the package refuses that binding, so
# ``reirrad.check`` stays the function. Import from the submodules by their full name
# (``from reirrad.eqd2 import eqd2_gy``; ``import reirrad.eqd2 as m`` would give the function).
_SHADOWED = frozenset({"check", "dvh", "eqd2"})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
