"""Shared fixtures: the third-party test data folder (REIRRAD_TESTDATA, default ../shared/testdata)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("REIRRAD_TESTDATA", REPO.parent / "shared" / "testdata")).resolve()


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The third-party DICOM folder. When it is absent the test skips, or fails when ``CI`` is set:
    the accuracy (truth) tests must never pass in CI by not running."""
    if not (TESTDATA / "MANIFEST.md").is_file():
        reason = f"third-party test data not found at {TESTDATA} (set REIRRAD_TESTDATA)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so tests that need it fail instead of skipping", pytrace=False)
        pytest.skip(reason)
    return TESTDATA
