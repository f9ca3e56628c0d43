"""Where the dose is: planes through the hottest cumulative point of every failing or warning organ."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from reirrad.accumulate import cumulative_eqd2_at, load_courses, map_courses
from reirrad.batch import case_key, check_case
from reirrad.case import load_case
from reirrad.check import CheckOptions, run_check
from reirrad.cli import _register, app
from reirrad.dicom.structures import Contour, Roi, StructureSet
from reirrad.eqd2 import recovery_model
from reirrad.report.hotspot import (
    enclosed,
    hotspot_caption,
    hotspot_html,
    in_polygon,
    isodose_levels,
    organ_hotspots,
    target_rois,
)
from reirrad.report.machine import to_json
from reirrad.results import View

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
SBRT_CASE = SAMPLES / "hn_sbrt_reirradiation" / "case.toml"
CAROTID = "carotid-dmax[A_Carotid_L]"


@pytest.fixture(scope="module")
def sbrt_report():
    return run_check(load_case(SBRT_CASE))


def spot_of(report, constraint_id: str):
    return next(s for s in report.hotspots if s.constraint_id == constraint_id)


def square(z_mm: float, half_mm: float, centre=(0.0, 0.0)) -> Contour:
    x, y = centre
    return Contour(
        np.array(
            [
                [x - half_mm, y - half_mm, z_mm],
                [x + half_mm, y - half_mm, z_mm],
                [x + half_mm, y + half_mm, z_mm],
                [x - half_mm, y + half_mm, z_mm],
            ]
        )
    )


def edge_distance_mm(polygon: np.ndarray, point) -> float:
    """Distance (mm) from a point to the nearest edge of a closed polygon (M, 2)."""
    start, end = polygon, np.roll(polygon, -1, axis=0)
    along = np.einsum("ij,ij->i", point - start, end - start) / np.einsum("ij,ij->i", end - start, end - start)
    nearest = start + np.clip(along, 0, 1)[:, None] * (end - start)
    return float(np.min(np.hypot(*(nearest - point).T)))


def winding(polygon: np.ndarray, point) -> int:
    """How often the polygon winds around the point (0: outside)."""
    angles = np.arctan2(polygon[:, 1] - point[1], polygon[:, 0] - point[0])
    turns = (np.diff(np.append(angles, angles[0])) + np.pi) % (2 * np.pi) - np.pi
    return round(float(np.sum(turns)) / (2 * np.pi))


def test_every_failing_or_warning_organ_gets_a_hot_spot_and_no_other(sbrt_report):
    drawn = [r.constraint_id for r in sbrt_report.results if r.status in ("fail", "warn")]
    assert drawn == ["spinalcord-dmax", CAROTID]
    assert [s.constraint_id for s in sbrt_report.hotspots] == drawn
    for spot in sbrt_report.hotspots:
        assert [s.view for s in spot.sections] == [View.AXIAL, View.CORONAL, View.SAGITTAL]
        # the sample's planning CT (reference course folder, the reference frame) lies underneath
        assert spot.target == ("PTV_35",) and spot.ct.startswith("planning CT: 75 slices, series ")


def test_the_marked_carotid_point_is_where_the_cumulative_dmax_is(sbrt_report):
    """The marked point's cumulative EQD2, sampled afresh through cumulative_eqd2_at, is the
    result's Dmax (130.663 Gy), and the point lies in the carotid's contours (its surface counts:
    Dmax includes the contour vertices)."""
    case = load_case(SBRT_CASE)
    acc = map_courses(load_courses(case), case)
    spot = spot_of(sbrt_report, CAROTID)
    result = sbrt_report.result(CAROTID)
    assert result.value_gy == pytest.approx(130.663, abs=5e-4)
    eqd2, covered = cumulative_eqd2_at(acc, np.array([spot.point_mm]), 3.0)
    assert covered[0] and eqd2[0] == pytest.approx(result.value_gy, abs=1e-3)
    assert spot.point_eqd2_gy == pytest.approx(result.value_gy, abs=1e-3)
    # inside the carotid: in the slab of a contour plane (half the 3 mm spacing either side, faces
    # included), in or on that plane's polygon
    carotid = acc.structures.by_name("A_Carotid_L")
    x, y, z = spot.point_mm
    slabs = [c for c in carotid.closed_contours if abs(c.z_mm - z) <= 1.5 + 1e-6]
    assert slabs
    assert any(
        edge_distance_mm(c.points_mm[:, :2], (x, y)) < 1e-3 or winding(c.points_mm[:, :2], (x, y)) != 0 for c in slabs
    )
    # and no sample of the carotid is hotter: the planes through it never exceed it inside the organ
    for section in spot.sections:
        assert np.nanmax(np.where(section.organ, section.eqd2_gy, np.nan)) <= result.value_gy + 1e-3


def test_a_result_judged_on_discounted_dose_is_drawn_discounted(sbrt_report):
    """Where a result was judged with prior courses discounted, the point's EQD2 and the planes are
    discounted alike (the recovery model and organ passed to cumulative_eqd2_at)."""
    case = load_case(SBRT_CASE)
    acc = map_courses(load_courses(case), case)
    model = recovery_model("simple-25-50")
    result = dataclasses.replace(sbrt_report.result("spinalcord-dmax"), recovery={"prior": 0.25, "new": 0.0})
    point = np.array(spot_of(sbrt_report, "spinalcord-dmax").point_mm)
    (spot,) = organ_hotspots(acc, [result], lambda r: point, model)
    plain, _ = cumulative_eqd2_at(acc, point[None], 2.0)
    discounted, _ = cumulative_eqd2_at(acc, point[None], 2.0, model, "SpinalCord")
    assert discounted[0] < plain[0] - 1.0 and spot.point_eqd2_gy == pytest.approx(discounted[0])
    axial = spot.sections[0]
    centre = (np.argmin(np.abs(axial.v_mm - point[1])), np.argmin(np.abs(axial.u_mm - point[0])))
    assert axial.eqd2_gy[centre] == pytest.approx(discounted[0], abs=1e-3)


def test_the_three_planes_cross_at_the_marked_point(sbrt_report):
    spot = spot_of(sbrt_report, CAROTID)
    for section in spot.sections:
        h, v, _ = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}[section.view.value]
        column = int(np.argmin(np.abs(section.u_mm - spot.point_mm[h])))
        row = int(np.argmin(np.abs(section.v_mm - spot.point_mm[v])))
        assert section.u_mm[column] == pytest.approx(spot.point_mm[h]) and section.v_mm[row] == pytest.approx(
            spot.point_mm[v]
        )
        assert section.eqd2_gy[row, column] == pytest.approx(spot.point_eqd2_gy, abs=1e-3)  # float32 storage
        assert section.eqd2_gy.shape == (len(section.v_mm), len(section.u_mm)) == section.organ.shape
        assert section.u_mm[-1] - section.u_mm[0] == pytest.approx(120.0)


def test_enclosed_uses_the_nearest_contour_plane_within_half_the_spacing():
    roi = Roi(1, "box", "ORGAN", (square(0.0, 10.0), square(3.0, 10.0), square(6.0, 5.0)))
    points = np.array(
        [
            [0.0, 0.0, 0.0],  # on a plane, inside
            [9.0, 0.0, 1.4],  # nearest plane 0: inside
            [7.0, 0.0, 4.6],  # nearest plane 6 (half size 5): outside
            [4.0, 0.0, 7.4],  # end cap: half the spacing beyond the last plane
            [4.0, 0.0, 7.6],  # beyond the end cap
            [0.0, 0.0, -1.6],  # beyond the first plane's end cap
            [11.0, 0.0, 3.0],  # beside the box
        ]
    )
    assert enclosed(roi, points, thickness_mm=2.0).tolist() == [True, True, False, True, False, False, False]
    single = Roi(2, "slab", "ORGAN", (square(0.0, 10.0),))
    assert enclosed(single, np.array([[0, 0, 0.9], [0, 0, 1.1]], float), thickness_mm=2.0).tolist() == [True, False]


def test_a_hole_is_outside_by_the_even_odd_rule():
    ring = Roi(1, "ring", "ORGAN", (square(0.0, 10.0), square(0.0, 4.0)))
    points = np.array([[0.0, 0.0, 0.0], [7.0, 0.0, 0.0], [12.0, 0.0, 0.0]])
    assert enclosed(ring, points, thickness_mm=3.0).tolist() == [False, True, False]
    triangle = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert in_polygon(triangle, np.array([[2.0, 2.0], [6.0, 6.0], [-1.0, 1.0]])).tolist() == [True, False, False]


def test_the_target_is_the_ptv_else_ctv_else_gtv_by_name():
    def named(*names: str) -> StructureSet:
        rois = tuple(Roi(i, n, "ORGAN", (square(0.0, 5.0),)) for i, n in enumerate(names, 1))
        return StructureSet(Path("rs.dcm"), "1.2", "1.2.3", rois)

    assert [r.name for r in target_rois(named("GTV_rec", "PTV_35", "zPTV_opt", "Cord"))] == ["PTV_35", "zPTV_opt"]
    assert [r.name for r in target_rois(named("GTV_rec", "CTV_hr", "Cord"))] == ["CTV_hr"]
    assert [r.name for r in target_rois(named("gtv", "Cord"))] == ["gtv"]
    assert target_rois(named("Cord", "Parotid_L")) == ()


def test_a_report_without_a_target_says_so(sbrt_report):
    spot = dataclasses.replace(
        spot_of(sbrt_report, CAROTID),
        target=(),
        notes=("no target (PTV, CTV or GTV) named in the reference structure set",),
    )
    caption = hotspot_caption(sbrt_report, spot)
    assert "no target (PTV, CTV or GTV) named in the reference structure set" in caption
    assert "target drawn" not in caption and "planning CT: 75 slices" in caption


def test_isodose_lines_at_the_warn_and_fail_levels(sbrt_report):
    assert isodose_levels(sbrt_report.result(CAROTID)) == [(119.0, "119.0 Gy (warn and fail)")]
    assert isodose_levels(sbrt_report.result("spinalcord-dmax")) == [
        (60.0, "60.0 Gy (warn)"),
        (67.75, "67.75 Gy (fail)"),
    ]


def test_the_html_shows_the_figures_and_the_json_holds_no_planes(sbrt_report):
    html = hotspot_html(sbrt_report)
    assert html.startswith("<h2>Where the dose is</h2>") and html.count('<figure class="hotspot">') == 2
    assert 'alt="A_Carotid_L: where the dose is" src="data:image/png;base64,' in html
    assert "hottest cumulative point at x 27.8" in html and "cumulative EQD2 130.663 Gy" in html
    assert "sections" not in to_json(sbrt_report) and "hotspot" not in to_json(sbrt_report)
    stored = dataclasses.replace(sbrt_report, hotspots=())  # e.g. rebuilt from a results store
    assert (
        "Not drawn (the planes are computed by the check and not kept in a results store): "
        "carotid-dmax[A_Carotid_L], spinalcord-dmax" in hotspot_html(stored)
    )


def write_ct(folder: Path, frame_uid: str, z_mm: list[float], origin_xy=(-100.0, -120.0), shape=(80, 100)) -> None:
    """An axial CT series whose CT number is the patient x coordinate in mm (rescaled: slope 0.5,
    intercept -1024), so trilinear interpolation must give x back exactly."""
    series = generate_uid()
    rows, columns = shape
    spacing = 2.5
    x = origin_xy[0] + spacing * np.arange(columns)
    stored = np.tile(np.rint((x + 1024.0) / 0.5).astype(np.uint16), (rows, 1))
    folder.mkdir(parents=True, exist_ok=True)
    for n, z in enumerate(z_mm):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"ct{n:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "CT", series, frame_uid
        ds.PatientID, ds.PatientName = "REIRRAD-PHANTOM-01", "Phantom^HN SBRT Reirradiation"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin_xy[0], origin_xy[1], z]
        ds.PixelSpacing = [spacing, spacing]
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, -1024.0
        ds.PixelData = stored.tobytes()
        ds.is_implicit_VR, ds.is_little_endian = False, True
        pydicom.dcmwrite(str(folder / f"ct{n:03d}.dcm"), ds, write_like_original=False)


@pytest.fixture(scope="module")
def with_ct(tmp_path_factory):
    """The SBRT sample with a planning CT (slices written in reverse order) in the new course's folder
    instead of its own."""
    root = tmp_path_factory.mktemp("ct") / "case"
    shutil.copytree(SBRT_CASE.parent, root, ignore=shutil.ignore_patterns("ct"))
    frame = pydicom.dcmread(root / "course2" / "dose.dcm", stop_before_pixels=True).FrameOfReferenceUID
    write_ct(root / "course2" / "ct", frame, [float(z) for z in np.arange(60.0, -60.5, -2.0)])
    return run_check(load_case(root / "case.toml"))


def test_the_planning_ct_lies_underneath_in_its_own_geometry(with_ct):
    spot = spot_of(with_ct, CAROTID)
    assert spot.ct.startswith("planning CT: 61 slices, series ")
    axial, coronal, sagittal = spot.sections
    assert not np.isnan(axial.ct_hu).any()  # the whole axial field lies inside the CT
    assert np.allclose(axial.ct_hu, np.broadcast_to(axial.u_mm, axial.ct_hu.shape), atol=1e-3)  # HU = x (mm)
    valid = ~np.isnan(coronal.ct_hu)
    assert np.allclose(coronal.ct_hu[valid], np.broadcast_to(coronal.u_mm, coronal.ct_hu.shape)[valid], atol=1e-3)
    assert np.allclose(sagittal.ct_hu[~np.isnan(sagittal.ct_hu)], spot.point_mm[0], atol=1e-3)
    above = sagittal.v_mm > 61.0  # beyond the top slice (z 60 mm) and its half spacing
    assert np.isnan(sagittal.ct_hu[above]).all() and not np.isnan(sagittal.ct_hu[~above]).any()
    assert np.array_equal(valid, np.broadcast_to((coronal.v_mm <= 61.0)[:, None], valid.shape))


def test_a_ct_in_another_frame_of_reference_is_not_drawn(tmp_path):
    root = tmp_path / "case"
    shutil.copytree(SBRT_CASE.parent, root, ignore=shutil.ignore_patterns("ct"))
    write_ct(root / "course2" / "ct", generate_uid(), [0.0, 2.0, 4.0])
    spot = spot_of(run_check(load_case(root / "case.toml")), CAROTID)
    assert spot.ct == "" and all(s.ct_hu is None for s in spot.sections)
    assert any(n.endswith("not drawn: not in the reference course's frame of reference") for n in spot.notes)


def test_a_damaged_ct_slice_is_named_and_no_ct_is_drawn(tmp_path):
    """One slice of the planning CT cannot be decoded (its Rows element relabelled FD, 8-byte values, over
    2 bytes): the figure draws no CT and says which file and why (it said "not evenly spaced")."""
    root = tmp_path / "case"
    shutil.copytree(SBRT_CASE.parent, root)
    damaged = sorted((root / "course2" / "ct").iterdir())[30]
    data, rows = damaged.read_bytes(), b"\x28\x00\x10\x00US\x02\x00"
    assert data.count(rows) == 1
    damaged.write_bytes(data.replace(rows, b"\x28\x00\x10\x00FD\x02\x00"))
    report = run_check(load_case(root / "case.toml"))
    spot = spot_of(report, CAROTID)
    assert spot.ct == "" and all(s.ct_hu is None for s in spot.sections)
    expected = f"planning CT not drawn: {damaged}: cannot decode Rows (BytesLengthException: "
    assert [n for n in spot.notes if n.startswith("planning CT")] == [
        next(n for n in spot.notes if n.startswith(expected))
    ]
    html = hotspot_html(report)
    assert f"{damaged}: cannot decode Rows" in html and "not evenly spaced" not in html


def test_conservative_mode_says_why_it_draws_no_planes():
    report = run_check(load_case(SBRT_CASE), CheckOptions(conservative=True))
    drawn = sorted(r.constraint_id for r in report.results if r.status in ("fail", "warn"))
    assert drawn and report.hotspots == ()
    assert (
        f"<p>Not drawn (conservative mode relates no course to the reference frame): {', '.join(drawn)}</p>"
        in hotspot_html(report)
    )


# ------------------------------------------------------------------ figures only for the formats that draw them


def counting_hotspots(monkeypatch) -> list:
    """Calls of organ_hotspots from now on (the real function still runs)."""
    module = importlib.import_module("reirrad.report.hotspot")
    calls: list = []
    real = module.organ_hotspots

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "organ_hotspots", counted)
    return calls


def test_a_check_without_figures_computes_no_planes_or_curves_and_the_same_document(sbrt_report, monkeypatch):
    calls = counting_hotspots(monkeypatch)
    bare = run_check(load_case(SBRT_CASE), CheckOptions(figures=False))
    assert calls == []
    assert bare.hotspots == () and bare.curves == ()
    assert [s.constraint_id for s in sbrt_report.hotspots] == ["spinalcord-dmax", CAROTID] and sbrt_report.curves
    assert "figures" not in bare.options and bare.options == sbrt_report.options  # not a judging option
    assert to_json(dataclasses.replace(bare, run_at=sbrt_report.run_at)) == to_json(sbrt_report)


@pytest.mark.parametrize(("fmt", "drawn"), [("json", False), ("csv", False), ("junit", False), ("html", True)])
def test_the_command_line_computes_the_planes_only_for_a_format_that_draws_them(fmt, drawn, monkeypatch, tmp_path):
    check_module = importlib.import_module("reirrad.check")
    calls = counting_hotspots(monkeypatch)
    reports = []
    real = check_module.run_check

    def checked(case, options):
        reports.append(real(case, options))
        return reports[-1]

    monkeypatch.setattr("reirrad.report.emit.emit_report", lambda *args: None)  # drawing is not the question
    monkeypatch.setattr(check_module, "run_check", checked)
    _register()
    result = CliRunner().invoke(app, ["check", str(SBRT_CASE), "-f", fmt, "-o", str(tmp_path / f"report.{fmt}")])
    assert result.exit_code == 1, result.output  # the sample fails its carotid limit
    assert len(calls) == int(drawn)
    assert [s.constraint_id for s in reports[0].hotspots] == (["spinalcord-dmax", CAROTID] if drawn else [])


def test_a_batch_computes_no_planes_and_keys_its_store_on_the_judging_options(monkeypatch):
    calls = counting_hotspots(monkeypatch)
    outcome = check_case(str(SBRT_CASE), CheckOptions())
    assert calls == [] and outcome.report is not None
    assert outcome.report.hotspots == () and outcome.report.curves == ()
    keys = {case_key(SBRT_CASE, CheckOptions(figures=figures)).options for figures in (True, False)}
    assert len(keys) == 1 and "figures" not in json.loads(keys.pop())


def test_the_planning_ct_search_reads_only_ct_images_in_full(monkeypatch):
    module = importlib.import_module("reirrad.report.hotspot")
    folder = SBRT_CASE.parent / "course2"
    read: list[Path] = []
    real = module.read_dataset

    def recorded(path, *args, **kwargs):
        read.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, "read_dataset", recorded)
    found, damaged = module._ct_headers(folder)
    slices = sorted((folder / "ct").iterdir())
    assert damaged == ""
    assert [path for path, _ in found] == slices and read == slices  # dose, plan, structures, REG: not decoded
    assert {ds.Modality for _, ds in found} == {"CT"}
