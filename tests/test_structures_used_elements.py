"""read_structures decodes only the elements a structure set is made of (STRUCTURE_ELEMENTS): a
damaged element it uses is still refused in one line (exit 2 through `reirrad dvh`), a damaged one
it does not use (an Eclipse contour's ContourImageSequence) no longer stops the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reirrad.dicom.io import read_dataset, used_elements
from reirrad.dicom.structures import read_structures
from reirrad.errors import InputError

ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) item tag, little endian
CONTOUR_SEQUENCE = b"\x06\x30\x40\x00"  # (3006,0040), used: the contours
CONTOUR_IMAGE_SEQUENCE = b"\x06\x30\x16\x00"  # (3006,0016), not used by reirrad


def damaged_item(source: Path, sequence_tag: bytes, target: Path) -> Path:
    """A copy of ``source`` whose first item of the first ``sequence_tag`` has a wrong item tag."""
    data = source.read_bytes()
    item = data.index(ITEM, data.index(sequence_tag))
    target.write_bytes(data[:item] + b"\xfe\xff\x01\xe0" + data[item + 4 :])
    return target


@pytest.fixture
def eclipse(testdata: Path) -> tuple[Path, Path]:
    return testdata / "dicompyler-core" / "rtdose.dcm", testdata / "dicompyler-core" / "rtss.dcm"


def test_a_damaged_sequence_the_structures_do_not_use_is_not_read(eclipse, tmp_path):
    _, rtss = eclipse
    damaged = damaged_item(rtss, CONTOUR_IMAGE_SEQUENCE, tmp_path / "rtss.dcm")
    with pytest.raises(InputError, match="truncated or corrupt: Expected sequence item"):
        read_dataset(damaged)  # decoded whole, as every other reader does
    original, read = read_structures(rtss), read_structures(damaged)
    assert [(r.number, r.name, r.interpreted_type) for r in read.rois] == [
        (r.number, r.name, r.interpreted_type) for r in original.rois
    ]
    assert sum(len(r.contours) for r in read.rois) > 400
    for mine, theirs in zip(read.rois, original.rois):
        assert len(mine.contours) == len(theirs.contours)
        for a, b in zip(mine.contours, theirs.contours):
            np.testing.assert_array_equal(a.points_mm, b.points_mm)


def test_dvh_refuses_a_damaged_sequence_it_uses_in_one_line(eclipse, tmp_path):
    rtdose, rtss = eclipse
    damaged = damaged_item(rtss, CONTOUR_SEQUENCE, tmp_path / "rtss.dcm")
    result = subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "dvh", str(rtdose), str(damaged)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"reirrad: error: {damaged}: truncated or corrupt: Expected sequence item")


def test_used_elements_refuses_an_unknown_keyword():
    with pytest.raises(ValueError, match="unknown DICOM keyword 'ContourDatum'"):
        used_elements({"ROIContourSequence": {"ContourDatum": None}})
