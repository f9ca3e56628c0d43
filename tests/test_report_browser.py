"""The HTML report as headless Chromium shows it on screen: a screenshot that is not blank."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_report_pdf import need

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.report.html import to_html
from reirrad.report.pdf import TIMEOUT_S, browser

SBRT_CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"
WIDTH, HEIGHT = 1280, 2000  # pixels of the browser window
FAIL_BORDER = (0xBB, 0x00, 0x00)  # the banner's border colour on a failing run (.banner.fail)


def screenshot(html: str, folder: Path) -> np.ndarray:
    """``html`` rendered by headless Chromium in a WIDTH x HEIGHT window, as RGB (rows, columns, 3) uint8."""
    from matplotlib.image import imread

    page, png = folder / "report.html", folder / "report.png"
    page.write_text(html, encoding="utf-8")
    command = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={folder / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={png}",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=True)
    return np.rint(imread(png)[..., :3] * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> np.ndarray:
    need("chromium")
    return screenshot(to_html(run_check(load_case(SBRT_CASE))), tmp_path_factory.mktemp("screen"))


def banner_rows(image: np.ndarray) -> np.ndarray:
    """Row indices (top down) where the failing banner's red border runs across most of the width."""
    red = np.all(image == FAIL_BORDER, axis=2)
    return np.flatnonzero(red.sum(axis=1) > 0.8 * (image.shape[1] - 64))


def test_the_screenshot_is_the_page_and_not_blank(shot):
    assert shot.shape == (HEIGHT, WIDTH, 3)
    colours = np.unique(shot.reshape(-1, 3), axis=0)
    assert len(colours) > 500  # text, table row colours, the DVH and hot-spot figures
    assert (shot != 255).any(axis=2).mean() > 0.05  # at least 5 % of the pixels are not white


def test_the_verdict_banner_is_at_the_top_and_drawn(shot):
    rows = banner_rows(shot)
    assert len(rows) >= 4 and rows[0] < 100  # its top and bottom border, 3 px each, in the first 100 rows
    inside = shot[rows[0] + 4 : rows[-1] - 3, 40 : WIDTH - 40]
    assert inside.size and len(np.unique(inside.reshape(-1, 3), axis=0)) > 10  # the text is drawn (not uniform)


def test_a_blank_page_fails_the_checks(tmp_path):
    """The checks above can fail: an empty page has one colour and no banner."""
    need("chromium")
    blank = screenshot("<!DOCTYPE html><html><body></body></html>", tmp_path)
    assert len(np.unique(blank.reshape(-1, 3), axis=0)) == 1 and len(banner_rows(blank)) == 0
