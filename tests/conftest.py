"""Shared fixtures: the third-party test data folder (REIRRAD_TESTDATA, default ../shared/testdata)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata")).resolve()


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The third-party DICOM folder; skips the test when it is absent."""
    if not (TESTDATA / "MANIFEST.md").is_file():
        pytest.skip(f"third-party test data not found at {TESTDATA} (set REIRRAD_TESTDATA)")
    return TESTDATA
