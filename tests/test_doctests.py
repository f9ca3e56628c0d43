"""The examples in the public API's docstrings run and give what they show (``make test``)."""

from __future__ import annotations

import doctest
import importlib

import pytest

# The modules of the documented API (reirrad.__all__) whose docstrings hold examples.
MODULES = (
    "reirrad",
    "reirrad.api",
    "reirrad.case",
    "reirrad.dvh",
    "reirrad.errors",
    "reirrad.results",
    "reirrad.dicom.discover",
    "reirrad.tps",
    "reirrad.deidentify",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
