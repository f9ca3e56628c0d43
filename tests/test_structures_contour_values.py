"""ContourData values as the file spells them: one ROI's contours are converted together, and every
spelling Python's float reads gives the same numbers; a damaged value in any contour is refused
with the message that names it, the first damaged contour first, in every encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from pydicom.uid import ImplicitVRLittleEndian

from reirrad.dicom.structures import read_structures
from reirrad.errors import InputError
from tests import dicom_synthetic as syn

CONTOUR_DATA, GEOMETRIC_TYPE = BaseTag(0x30060050), BaseTag(0x30060042)
TRIANGLES = [[(0.0, 0.0, z), (10.0, 0.0, z), (0.0, 10.0, z)] for z in (0.0, 2.5, 5.0)]
ENCODINGS = ["explicit little", "explicit big", "implicit little"]


def raw(tag: BaseTag, vr: str, value: bytes) -> RawDataElement:
    """An element holding ``value`` as written (padded to even length with a space)."""
    value += b" " * (len(value) % 2)
    return RawDataElement(tag, vr, len(value), value, 0, False, True)


def write(
    path: Path,
    values: dict[int, bytes],
    encoding: str,
    counts: dict[int, int] | None = None,
    types: dict[int, tuple[str, bytes]] | None = None,
) -> Path:
    """Three triangles of one ROI "Tri", contour ``i``'s ContourData replaced by the bytes ``values[i]``
    (its NumberOfContourPoints by ``counts[i]``, its ContourGeometricType by ``types[i]``: VR and
    bytes), written in the given encoding."""
    ds = syn.rtstruct({"Tri": TRIANGLES})
    contours = ds.ROIContourSequence[0].ContourSequence
    for index, value in values.items():
        contours[index][CONTOUR_DATA] = raw(CONTOUR_DATA, "DS", value)
    for index, (vr, value) in (types or {}).items():
        contours[index][GEOMETRIC_TYPE] = raw(GEOMETRIC_TYPE, vr, value)
    for index, count in (counts or {}).items():
        contours[index].NumberOfContourPoints = count
    if encoding != "implicit little":
        return syn.write(ds, path, big_endian=encoding == "explicit big")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.is_implicit_VR, ds.is_little_endian = True, True
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_spelling_python_reads_gives_its_number(tmp_path, encoding):
    spelled = [b"1e1", b"+2.50", b" .5", b"5. ", b"-0", b"3E-1", b"1_0", b"-1.25e+002", b"0000.125"]
    path = write(tmp_path / "rs.dcm", {1: b"\\".join(spelled)}, encoding)
    (roi,) = read_structures(path).rois
    assert [len(c.points_mm) for c in roi.contours] == [3, 3, 3]
    np.testing.assert_array_equal(roi.contours[0].points_mm, TRIANGLES[0])
    np.testing.assert_array_equal(roi.contours[2].points_mm, TRIANGLES[2])
    expected = np.array([[10.0, 2.5, 0.5], [5.0, -0.0, 0.3], [10.0, -125.0, 0.125]])
    assert roi.contours[1].points_mm.tobytes() == expected.tobytes()  # bit for bit, -0.0 included
    assert roi.contours[1].z_mm == pytest.approx((0.5 + 0.3 + 0.125) / 3)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_contour_keeps_its_own_geometric_type(tmp_path, encoding):
    types = {0: ("CS", b"OPEN_PLANAR"), 1: ("CS", b"closed_planar"), 2: ("CS", b"OPEN_PLANAR")}
    path = write(tmp_path / "rs.dcm", {}, encoding, types=types)
    (roi,) = read_structures(path).rois
    assert [c.geometric_type for c in roi.contours] == ["OPEN_PLANAR", "CLOSED_PLANAR", "OPEN_PLANAR"]
    assert [len(c.points_mm) for c in roi.closed_contours] == [3]


@pytest.mark.parametrize("encoding", ["explicit little", "explicit big"])
def test_a_geometric_type_written_with_another_vr_is_read_as_pydicom_decodes_it(tmp_path, encoding):
    types = {0: ("LO", b"open_planar"), 1: ("CS", b"POINT"), 2: ("LO", b"POINT")}
    path = write(tmp_path / "rs.dcm", {}, encoding, types=types)
    assert [c.geometric_type for c in read_structures(path).rois[0].contours] == ["OPEN_PLANAR", "POINT", "POINT"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("values", "counts", "message"),
    [
        ({2: b"0\\0\\5\\10\\x\\5\\0\\10\\5"}, {}, r"ROI 1 ContourData is not numeric \('0\\\\0\\\\5\\\\10\\\\x"),
        ({2: b"0\\0\\5\\10\\\\5\\0\\10\\5"}, {}, "ROI 1 ContourData is not numeric"),  # an empty value
        ({1: b"0\\0\\2.5\\nan\\0\\2.5\\0\\10\\2.5"}, {}, r"ROI 1 ContourData is not finite \(nan\)"),
        ({1: b"0\\0\\2.5\\1e400\\0\\2.5\\0\\10\\2.5"}, {}, r"ROI 1 ContourData is not finite \(inf\)"),
        ({2: b"  "}, {}, "ROI 1 has a contour without ContourData"),
        ({1: b"0\\0\\2.5\\10\\0\\2.5\\0\\10"}, {}, "ContourData whose length is not a multiple of 3"),
        ({}, {2: 4}, "ROI 1 has a contour of 3 points but NumberOfContourPoints 4"),
        # the first damaged contour is the one named, whatever the later ones hold
        ({2: b"0\\0\\5\\x\\0\\5\\0\\10\\5"}, {1: 2}, "ROI 1 has a contour of 3 points but NumberOfContourPoints 2"),
        ({0: b"0\\0\\0\\x\\0\\0\\0\\10\\0", 1: b"1\\2"}, {}, "ROI 1 ContourData is not numeric"),
    ],
)
def test_a_damaged_value_in_any_contour_is_refused_by_its_name(tmp_path, encoding, values, counts, message):
    path = write(tmp_path / "rs.dcm", values, encoding, counts)
    with pytest.raises(InputError, match=message) as err:
        read_structures(path)
    assert str(err.value).startswith(str(path))
