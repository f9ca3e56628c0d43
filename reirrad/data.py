"""The built-in data, found in the installed package through :mod:`importlib.resources`.

The repository's ``constraints/`` folder (constraint sets, organ names, flag rules, recovery models)
is installed as the package ``reirrad.builtin_constraints``, and the sample case ``reirrad demo``
runs (``sample_plans/hn_sbrt_reirradiation``) as ``reirrad.builtin_sample`` (see ``package-dir`` in
``pyproject.toml``). Each folder holds an ``__init__.py`` so that editable installs map it too.
Regular and editable installs alike therefore read the data from where the package put it, never
from a path relative to the source tree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CONSTRAINTS_PACKAGE = "reirrad.builtin_constraints"
SAMPLE_PACKAGE = "reirrad.builtin_sample"


def _folder(package: str) -> Path:
    """The folder of an installed data package (packages are installed as files, not zipped)."""
    return Path(str(resources.files(package)))


def constraints_dir() -> Path:
    """The folder of the built-in constraint sets and data tables (``constraints/`` in the repository)."""
    return _folder(CONSTRAINTS_PACKAGE)


def builtin_file(name: str) -> Path:
    """A built-in data table by file name, e.g. ``builtin_file("recovery.toml")``."""
    return constraints_dir() / name


def sample_case() -> Path:
    """The case file of the bundled SBRT re-irradiation sample (``sample_plans/hn_sbrt_reirradiation``)."""
    return _folder(SAMPLE_PACKAGE) / "case.toml"
