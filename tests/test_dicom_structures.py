"""RTSTRUCT loading: ROIs, contours per plane, holes, point and empty ROIs, truncation checks."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from reirrad.dicom.structures import read_structures, structures_from_dataset
from reirrad.errors import InputError
from tests import dicom_synthetic as syn

SQUARE = [(-10, -10, 0), (10, -10, 0), (10, 10, 0), (-10, 10, 0)]
HOLE = [(-2, -2, 0), (2, -2, 0), (2, 2, 0), (-2, 2, 0)]
ISLAND = [(20, 20, 0), (25, 20, 0), (25, 25, 0)]


def _write(tmp_path, **kwargs):
    rois = kwargs.pop("rois", {"Ring": [SQUARE, HOLE, ISLAND], "Iso": [[(1.5, 2.5, 3.5)]], "Empty": []})
    types = kwargs.pop("types", {"Iso": "ISOCENTER"})
    return syn.write(syn.rtstruct(rois, types=types, frame_of_reference="9.8.7", **kwargs), tmp_path / "rs.dcm")


def test_every_contour_on_a_plane_is_kept_in_file_order(tmp_path):
    ring = read_structures(_write(tmp_path)).by_name("ring")
    assert (ring.number, ring.interpreted_type) == (1, "ORGAN")
    assert [len(c.points_mm) for c in ring.contours] == [4, 4, 3]
    np.testing.assert_array_equal(ring.contours[1].points_mm, np.array(HOLE, float))
    assert all(c.z_mm == 0.0 and c.is_axial for c in ring.contours)
    assert not ring.is_empty and not ring.is_point and ring.frame_of_reference_uid == "9.8.7"


def test_point_and_empty_rois_are_kept_and_marked(tmp_path):
    structures = read_structures(_write(tmp_path))
    iso, empty = structures.by_name("Iso"), structures.by_number(3)
    assert iso.is_point and iso.is_empty and iso.contours[0].geometric_type == "POINT"
    np.testing.assert_array_equal(iso.contours[0].points_mm, [[1.5, 2.5, 3.5]])
    assert empty.name == "Empty" and empty.is_empty and not empty.is_point and empty.contours == ()
    assert structures.frame_of_reference_uid == "9.8.7"


def test_open_contours_enclose_no_volume(tmp_path):
    roi = read_structures(_write(tmp_path, rois={"Line": [SQUARE]}, types={}, geometric_type="OPEN_PLANAR")).rois[0]
    assert roi.is_empty and len(roi.contours) == 1


def test_non_axial_contour_is_marked(tmp_path):
    tilted = [(0, 0, 0), (10, 0, 1), (10, 10, 2)]
    roi = read_structures(_write(tmp_path, rois={"Tilt": [tilted]}, types={})).rois[0]
    assert not roi.contours[0].is_axial


def test_unknown_names_and_numbers_list_what_exists(tmp_path):
    structures = read_structures(_write(tmp_path))
    with pytest.raises(InputError, match=r"no structure named 'Cord' \(has: Ring, Iso, Empty\)"):
        structures.by_name("Cord")
    with pytest.raises(InputError, match="no ROI number 7"):
        structures.by_number(7)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda ds: setattr(ds.ROIContourSequence[0].ContourSequence[0], "ContourData", [1.0, 2.0, 3.0, 4.0]),
            "not a multiple of 3",
        ),
        (
            lambda ds: setattr(ds.ROIContourSequence[0].ContourSequence[0], "NumberOfContourPoints", 9),
            "4 points but NumberOfContourPoints 9",
        ),
        (lambda ds: setattr(ds.ROIContourSequence[0], "ReferencedROINumber", 42), "refers to ROI 42"),
        (lambda ds: setattr(ds.StructureSetROISequence[1], "ROINumber", 1), "ROI number 1 is declared twice"),
    ],
)
def test_damaged_structure_sets_are_refused(tmp_path, damage, message):
    ds = syn.rtstruct({"Ring": [SQUARE, HOLE], "Other": [ISLAND]})
    damage(ds)
    path = syn.write(ds, tmp_path / "rs.dcm")
    with pytest.raises(InputError, match=message) as err:
        read_structures(path)
    assert str(err.value).startswith(str(path))


def test_rtstruct_without_preamble_reads(testdata):
    structures = read_structures(testdata / "pydicom" / "rtstruct.dcm")
    assert [(r.number, r.name, r.interpreted_type) for r in structures.rois] == [
        (1, "patient", "EXTERNAL"),
        (2, "Isocenter 1", "ISOCENTER"),
        (3, "Isocenter 2", "ISOCENTER"),
    ]
    assert [len(c.points_mm) for c in structures.rois[0].contours] == [5, 6, 6]
    assert [r.is_point for r in structures.rois] == [False, True, True]
    assert structures.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2"


def test_eclipse_structures_match_dicompyler_core(testdata):
    from dicompylercore import dicomparser

    path = testdata / "dicompyler-core" / "rtss.dcm"
    structures = read_structures(path)
    assert [r.name for r in structures.rois] == [
        "BODY",
        "Areola",
        "Borders",
        "Breast",
        "Heart",
        "Lt Lung",
        "Nodes",
        "Scar",
        "Tumor Bed",
        "Tumor Bed Block",
    ]
    assert structures.by_name("Areola").is_empty
    parser = dicomparser.DicomParser(str(path))
    for number in (5, 8):  # Heart, Scar
        planes = parser.GetStructureCoordinates(number)
        ours = structures.by_number(number).contours
        theirs = [np.asarray(c["data"], float) for plane in planes.values() for c in plane]
        assert len(ours) == len(theirs)
        key = lambda a: (round(float(a[0, 2]), 3), len(a), round(float(a[0, 0]), 3))  # noqa: E731
        for a, b in zip(sorted((c.points_mm for c in ours), key=key), sorted(theirs, key=key)):
            np.testing.assert_array_equal(a, b)


def test_parsed_and_raw_contour_data_agree(testdata):
    path = testdata / "dicompyler-core" / "rtss.dcm"
    ds = pydicom.dcmread(str(path))
    for roi in ds.ROIContourSequence:
        for contour in roi.get("ContourSequence", []):
            _ = contour.ContourData  # forces pydicom's own DS conversion
    parsed, raw = structures_from_dataset(ds, path), read_structures(path)
    for a, b in zip(parsed.rois, raw.rois):
        assert len(a.contours) == len(b.contours)
        for ca, cb in zip(a.contours, b.contours):
            np.testing.assert_array_equal(ca.points_mm, cb.points_mm)


def test_dvh_pairing_reads_the_structure_set_once(testdata, monkeypatch):
    # the structure set carries its patient identity, so the patient check needs no second read
    from reirrad.dicom import identity, structures
    from reirrad.pairing import load_pair

    case = testdata / "dicompyler-core"
    reads: list[str] = []
    for module in (identity, structures):

        def counted(path, *args, _read=module.read_dataset, **kwargs):
            reads.append(str(path))
            return _read(path, *args, **kwargs)

        monkeypatch.setattr(module, "read_dataset", counted)
    pair = load_pair(case / "rtdose.dcm", case / "rtss.dcm")
    assert reads.count(str(case / "rtss.dcm")) == 1
    assert pair.structures.patient is not None and pair.structures.patient.known
    assert pair.structures.patient == identity.read_identity(case / "rtdose.dcm")
