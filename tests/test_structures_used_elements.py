"""read_structures decodes only the elements a structure set is made of (STRUCTURE_ELEMENTS): a
damaged element it uses is still refused in one line (exit 2 through `reirrad dvh`); a sequence it
does not use (an Eclipse contour's ContourImageSequence) is not decoded, but its item headers must
end exactly where its length says (else it has taken in the elements after it, or been cut short)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from reirrad.dicom.io import read_dataset, used_elements
from reirrad.dicom.structures import read_structures
from reirrad.dicom.write import item
from reirrad.errors import InputError
from tests import dicom_synthetic as synthetic

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


def dvh_refusal(rtdose: Path, rtss: Path) -> str:
    """The one stderr line of `reirrad dvh RTDOSE RTSS`, which must exit 2 and print nothing else."""
    result = subprocess.run(
        [sys.executable, "-c", "from reirrad.cli import main; main()", "dvh", str(rtdose), str(rtss)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    return line


def test_a_damaged_sequence_inside_an_item_the_structures_do_not_use_is_not_read(eclipse, tmp_path):
    _, rtss = eclipse
    # the first ContourImageSequence lies in ReferencedFrameOfReferenceSequence > RTReferencedStudySequence
    # (unused: walked as item headers only) > RTReferencedSeriesSequence
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


# (is_implicit_VR, is_little_endian) of the synthetic files
ENCODINGS = [(True, True), (False, True), (False, False)]
SYNTAX = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def open_contours(path: Path, implicit: bool, little: bool, undefined_items: bool = False) -> Path:
    """A two-contour OPEN_PLANAR structure set whose contour items hold a ContourImageSequence
    (one item, of undefined length when ``undefined_items``), written in the given encoding."""
    square = [(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (10.0, 10.0, 0.0), (0.0, 10.0, 0.0)]
    ds = synthetic.rtstruct({"wire": [square, [(x, y, 2.5) for x, y, _ in square]]}, geometric_type="OPEN_PLANAR")
    for contour in ds.ROIContourSequence[0].ContourSequence:
        image = item(ReferencedSOPClassUID=synthetic.CT, ReferencedSOPInstanceUID="1.2.3.4.5.6")
        image.is_undefined_length_sequence_item = undefined_items
        contour.ContourImageSequence = Sequence([image])
    ds.file_meta.TransferSyntaxUID = SYNTAX[implicit, little]
    ds.is_implicit_VR, ds.is_little_endian = implicit, little
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


def swallow_next_element(path: Path, implicit: bool, little: bool) -> Path:
    """Enlarge the first ContourImageSequence's length by the element after it (ContourGeometricType)."""
    data = bytearray(path.read_bytes())
    order = "<" if little else ">"
    start = data.index(struct.pack(f"{order}HH", 0x3006, 0x0016))
    length_at = start + (4 if implicit else 8)
    (length,) = struct.unpack_from(f"{order}I", data, length_at)
    following = length_at + 4 + length
    assert struct.unpack_from(f"{order}HH", data, following) == (0x3006, 0x0042)
    value = (
        struct.unpack_from(f"{order}I", data, following + 4)[0]
        if implicit
        else struct.unpack_from(f"{order}H", data, following + 6)[0]
    )
    struct.pack_into(f"{order}I", data, length_at, length + 8 + value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("implicit", "little"), ENCODINGS)
def test_a_sequence_the_structures_do_not_use_that_takes_in_the_next_element_is_refused(tmp_path, implicit, little):
    path = open_contours(tmp_path / "rtss.dcm", implicit, little)
    assert [c.geometric_type for c in read_structures(path).rois[0].contours] == ["OPEN_PLANAR"] * 2
    swallow_next_element(path, implicit, little)  # its ContourGeometricType would read as the CLOSED_PLANAR default
    with pytest.raises(
        InputError, match="truncated or corrupt: ContourImageSequence declares .* not what its items hold"
    ):
        read_structures(path)


@pytest.mark.parametrize(("implicit", "little"), ENCODINGS)
def test_an_unused_sequence_with_items_of_undefined_length_is_parsed_whole(tmp_path, implicit, little):
    path = open_contours(tmp_path / "rtss.dcm", implicit, little, undefined_items=True)
    assert struct.pack(f"{'<' if little else '>'}HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) in path.read_bytes()
    (roi,) = read_structures(path).rois
    assert [c.geometric_type for c in roi.contours] == ["OPEN_PLANAR"] * 2
    np.testing.assert_array_equal(roi.contours[1].points_mm[:, 2], [2.5] * 4)


def test_dvh_refuses_an_eclipse_contour_whose_image_sequence_takes_in_its_geometric_type(eclipse, tmp_path):
    """The reviewer's case: an inflated ContourImageSequence length hid OPEN_PLANAR, and BODY was
    rasterised as closed (14880.49 cc instead of 14734.98) with exit 0."""
    rtdose, rtss = eclipse
    data = rtss.read_bytes()
    sequence = data.index(CONTOUR_IMAGE_SEQUENCE, data.index(CONTOUR_SEQUENCE))
    (length,) = struct.unpack_from("<I", data, sequence + 4)
    kind = sequence + 8 + length
    assert data[kind : kind + 4] == b"\x06\x30\x42\x00" and data[kind + 8 : kind + 22] == b"CLOSED_PLANAR "
    opened = data[: kind + 8] + b"OPEN_PLANAR   " + data[kind + 22 :]
    damaged = tmp_path / "rtss.dcm"
    damaged.write_bytes(opened[: sequence + 4] + struct.pack("<I", length + 22) + opened[sequence + 8 :])
    line = dvh_refusal(rtdose, damaged)
    assert (
        line
        == f"reirrad: error: {damaged}: truncated or corrupt: ContourImageSequence declares {length + 22} bytes, not what its items hold"
    )


def test_dvh_refuses_a_damaged_sequence_it_uses_in_one_line(eclipse, tmp_path):
    rtdose, rtss = eclipse
    damaged = damaged_item(rtss, CONTOUR_SEQUENCE, tmp_path / "rtss.dcm")
    line = dvh_refusal(rtdose, damaged)
    assert line.startswith(f"reirrad: error: {damaged}: truncated or corrupt: Expected sequence item")


def test_used_elements_refuses_an_unknown_keyword():
    with pytest.raises(ValueError, match="unknown DICOM keyword 'ContourDatum'"):
        used_elements({"ROIContourSequence": {"ContourDatum": None}})
