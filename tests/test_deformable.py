"""DICOM Deformable Spatial Registration (reirrad.dicom.deformable): synthetic fields written with
pydicom and read back, matching the rigid answer where the field is rigid, in the standard's
direction (registered frame -> source frame), and refusing points the field does not cover."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sum_helpers import rigid as sum_rigid
from sum_helpers import write_reg

from reirrad.case import load_case
from reirrad.check import run_check
from reirrad.cli import main
from reirrad.dicom.deformable import DeformableMap, FieldPointMap, read_deformable_registration
from reirrad.dicom.dose import read_dose
from reirrad.errors import InputError
from reirrad.grid import Grid, corner_centres_mm
from reirrad.mapping import RigidMap
from tests import dicom_synthetic as syn

DEFORMABLE = "1.2.840.10008.5.1.4.1.1.66.3"
REFERENCE_FRAME, PRIOR_FRAME = "1.2.3.4", "1.2.3.5"
ORIGIN = np.array([-40.0, -30.0, -20.0])  # first vector's centre, mm
RESOLUTION = np.array([4.0, 5.0, 2.5])  # X, Y, Z spacing, mm
DIMENSIONS = (21, 13, 17)  # X, Y, Z vectors


def grid_points() -> np.ndarray:
    """Every vector centre (Z, Y, X, 3) in mm (axis-aligned grid)."""
    z, y, x = np.meshgrid(
        *(ORIGIN[a] + RESOLUTION[a] * np.arange(DIMENSIONS[a]) for a in (2, 1, 0)),
        indexing="ij",
    )
    return np.stack([x, y, z], axis=-1)


def _matrix_item(matrix: np.ndarray) -> Sequence:
    item = Dataset()
    item.FrameOfReferenceTransformationMatrixType = "RIGID"
    item.FrameOfReferenceTransformationMatrix = [float(v) for v in matrix.reshape(-1)]
    return Sequence([item])


def write_deformable(
    path: Path,
    vectors: np.ndarray | None,
    *,
    pre: np.ndarray | None = None,
    post: np.ndarray | None = None,
    own_frame: str = REFERENCE_FRAME,
    source_frame: str = PRIOR_FRAME,
    origin: np.ndarray = ORIGIN,
    resolution: np.ndarray = RESOLUTION,
    dimensions: tuple[int, int, int] = DIMENSIONS,
    patient_id: str | None = None,
) -> Path:
    """A Deformable Spatial Registration: own frame ``own_frame``, one item for ``source_frame`` with
    the vectors (Z, Y, X, 3) as its grid (``origin``, ``resolution`` and ``dimensions`` X, Y, Z) and
    optional pre/post matrices."""
    ds = syn.other(DEFORMABLE, "REG", own_frame)
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.ContentCreatorName = "Tester^Deform"
    ds.SeriesDescription = "synthetic field"
    item = Dataset()
    item.SourceFrameOfReferenceUID = source_frame
    if pre is not None:
        item.PreDeformationMatrixRegistrationSequence = _matrix_item(pre)
    if post is not None:
        item.PostDeformationMatrixRegistrationSequence = _matrix_item(post)
    if vectors is not None:
        grid = Dataset()
        grid.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        grid.ImagePositionPatient = [float(v) for v in origin]
        grid.GridDimensions = [int(v) for v in dimensions]
        grid.GridResolution = [float(v) for v in resolution]
        grid.VectorGridData = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        item.DeformableRegistrationGridSequence = Sequence([grid])
    ds.DeformableRegistrationSequence = Sequence([item])
    return syn.write(ds, path)


def rigid(angle_deg: float, centre: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """4x4: rotation about z by ``angle_deg`` about ``centre``, then ``shift``."""
    a = math.radians(angle_deg)
    rotation = np.array(
        [
            [math.cos(a), -math.sin(a), 0.0],
            [math.sin(a), math.cos(a), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = centre - rotation @ centre + shift
    return out


def inside_points(n: int = 200, margin_mm: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    low = ORIGIN + margin_mm
    high = ORIGIN + RESOLUTION * (np.array(DIMENSIONS) - 1) - margin_mm
    return rng.uniform(low, high, size=(n, 3))


def test_uniform_shift_field_matches_the_rigid_shift(tmp_path):
    shift = np.array([2.0, -3.0, 1.5])
    path = write_deformable(tmp_path / "dreg.dcm", np.broadcast_to(shift, (*DIMENSIONS[::-1], 3)))
    mapped = read_deformable_registration(path).map_to(REFERENCE_FRAME, PRIOR_FRAME)
    points = inside_points()
    expected = RigidMap(rigid(0.0, np.zeros(3), shift), "REG")(points)
    np.testing.assert_allclose(mapped(points), expected, atol=1e-5)
    assert mapped.label.startswith("deformable registration (Tester^Deform / synthetic field) REG ")


def test_rotation_written_as_a_field_matches_the_rigid_rotation(tmp_path):
    """D(x) = M x - x on the grid: linear in x, so trilinear interpolation is exact everywhere."""
    matrix = rigid(10.0, np.array([5.0, -2.0, 0.0]), np.array([1.0, 0.5, -2.0]))
    points = grid_points()
    field = RigidMap(matrix, "REG")(points.reshape(-1, 3)).reshape(points.shape) - points
    mapped = read_deformable_registration(write_deformable(tmp_path / "dreg.dcm", field)).map_to(
        REFERENCE_FRAME, PRIOR_FRAME
    )
    sample = inside_points()
    np.testing.assert_allclose(mapped(sample), RigidMap(matrix, "REG")(sample), atol=1e-4)
    # the direction: registered (reference) -> source (prior); the inverse misses by millimetres
    inverse = RigidMap(np.linalg.inv(matrix), "inverse")(sample)
    assert np.abs(mapped(sample) - inverse).max() > 3.0


def test_pre_and_post_matrices_are_applied_around_the_offset(tmp_path):
    """p_source = M_post (M_pre p + D): a zero field leaves M_post M_pre; a uniform field D adds M_post D."""
    pre = rigid(0.0, np.zeros(3), np.array([1.0, 2.0, 3.0]))
    post = rigid(90.0, np.zeros(3), np.zeros(3))
    offset = np.array([0.5, 0.0, 0.0])
    path = write_deformable(
        tmp_path / "dreg.dcm",
        np.broadcast_to(offset, (*DIMENSIONS[::-1], 3)),
        pre=pre,
        post=post,
    )
    mapped = read_deformable_registration(path).map_to(REFERENCE_FRAME, PRIOR_FRAME)
    points = inside_points(20)
    expected = (post @ (np.c_[points, np.ones(len(points))] @ pre.T + np.r_[offset, 0.0]).T).T[:, :3]
    np.testing.assert_allclose(mapped(points), expected, atol=1e-5)


def test_points_outside_the_field_are_refused_with_how_much(tmp_path):
    mapped = read_deformable_registration(
        write_deformable(tmp_path / "dreg.dcm", np.zeros((*DIMENSIONS[::-1], 3)))
    ).map_to(REFERENCE_FRAME, PRIOR_FRAME)
    points = np.vstack([inside_points(9), [[ORIGIN[0] - 2.0 - 10.0, 0.0, 0.0]]])  # 10 mm beyond the half spacing
    with pytest.raises(
        InputError,
        match=r"1 of 10 mapped points \(10.00 %\) lie outside .*up to 10.0 mm",
    ):
        mapped(points)
    assert mapped.outside_field(points).tolist() == [False] * 9 + [True]


def test_undefined_vectors_are_refused_where_they_weigh_in(tmp_path):
    vectors = np.zeros((*DIMENSIONS[::-1], 3), dtype=np.float32)
    vectors[5, 6, 10] = np.nan
    mapped = read_deformable_registration(write_deformable(tmp_path / "dreg.dcm", vectors)).map_to(
        REFERENCE_FRAME, PRIOR_FRAME
    )
    centre = ORIGIN + RESOLUTION * np.array([10, 6, 5])
    with pytest.raises(InputError, match="undefined vectors"):
        mapped(centre[None, :] + 0.3)
    far = centre + RESOLUTION * 3
    np.testing.assert_allclose(mapped(far[None, :]), far[None, :])


def test_a_field_stored_from_the_prior_frame_is_refused(tmp_path):
    """Direction control: a file whose registered frame is the prior's is not inverted silently."""
    registration = read_deformable_registration(
        write_deformable(tmp_path / "dreg.dcm", np.zeros((*DIMENSIONS[::-1], 3)), own_frame="1.2.3.9")
    )
    with pytest.raises(InputError, match="not the reference course's frame"):
        registration.map_to(REFERENCE_FRAME, PRIOR_FRAME)
    assert registration.map_to(REFERENCE_FRAME, "1.2.3.77") is None


def test_malformed_fields_are_refused(tmp_path):
    path = write_deformable(tmp_path / "short.dcm", np.zeros((2, 2, 2, 3)))
    with pytest.raises(InputError, match="VectorGridData holds 24 values"):
        read_deformable_registration(path)
    with pytest.raises(InputError, match="no item has a DeformableRegistrationGridSequence"):
        read_deformable_registration(write_deformable(tmp_path / "none.dcm", None))
    rigid_reg = syn.write(syn.other(syn.REG, "REG"), tmp_path / "rigid.dcm")
    with pytest.raises(InputError, match="not a Deformable Spatial Registration"):
        read_deformable_registration(rigid_reg)


# --- reirrad check through a deformable REG (the SBRT sample, its prior mapped by a field) -----------

SBRT = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation"
# the prior -> new translation used for both the rigid REG and the field (float32-exact, mm)
SBRT_SHIFT = np.array([4.25, -18.5, 37.5])


def _frame(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).FrameOfReferenceUID)


def _structure_box(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest contour point (x, y, z, mm) of an RTSTRUCT."""
    ds = pydicom.dcmread(path)
    points = np.concatenate(
        [
            np.asarray(c.ContourData, dtype=float).reshape(-1, 3)
            for roi in ds.ROIContourSequence
            for c in roi.get("ContourSequence", [])
        ]
    )
    return points.min(axis=0), points.max(axis=0)


def sbrt_case(
    tmp_path: Path,
    kind: str,
    *,
    partial: bool = False,
    extra: Callable | None = None,
    box: Callable[[Path], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """The SBRT sample copied, its course2/reg.dcm replaced: a translation-only rigid REG
    (``kind`` "rigid"), or a deformable REG whose field is the same translation everywhere over the
    reference structures plus 10 mm ("deformable"; ``partial``: the field ends halfway across the
    structures' box along x instead; ``extra``: offsets (Z, Y, X, 3, mm) added to it, from the vector
    centres (Z, Y, X, 3, mm) and the structures' box centre (3,); ``box``: the lowest and highest point,
    mm, reference frame, the field covers (plus 10 mm) instead of the structures, from the copied folder)."""
    folder = shutil.copytree(SBRT, tmp_path / kind)
    reference, prior = _frame(folder / "course2" / "dose.dcm"), _frame(folder / "course1" / "dose.dcm")
    patient = str(pydicom.dcmread(folder / "course2" / "dose.dcm", stop_before_pixels=True).PatientID)
    reg = folder / "course2" / "reg.dcm"
    reg.unlink()
    if kind == "rigid":  # p_new = p_prior + s
        write_reg(reg, reference, {reference: np.eye(4), prior: sum_rigid(0.0, 2, SBRT_SHIFT)}, patient_id=patient)
        return folder / "case.toml"
    low, high = _structure_box(folder / "course2" / "structures.dcm") if box is None else box(folder)
    low, high = low - 10.0, high + 10.0
    if partial:
        high[0] = 0.5 * (low[0] + high[0])
    resolution = np.array([5.0, 5.0, 5.0])
    dimensions = tuple(int(v) for v in np.ceil((high - low) / resolution).astype(int) + 1)
    vectors = np.broadcast_to(-SBRT_SHIFT, (*dimensions[::-1], 3))  # p_prior = p_new + D, D = -s
    if extra is not None:
        axes = [low[a] + resolution[a] * np.arange(dimensions[a]) for a in (2, 1, 0)]
        centres = np.stack(np.meshgrid(*axes, indexing="ij")[::-1], axis=-1)  # (Z, Y, X, (x, y, z))
        vectors = vectors + extra(centres, 0.5 * (low + high))
    write_deformable(
        reg,
        vectors,
        own_frame=reference,
        source_frame=prior,
        origin=low,
        resolution=resolution,
        dimensions=dimensions,
        patient_id=patient,
    )
    return folder / "case.toml"


def test_check_through_a_uniform_field_matches_the_equivalent_rigid_reg(tmp_path):
    rigid_report = run_check(load_case(sbrt_case(tmp_path, "rigid")))
    field_report = run_check(load_case(sbrt_case(tmp_path, "deformable")))
    evaluated = 0
    for found, given in zip(field_report.results, rigid_report.results, strict=True):
        assert (found.constraint_id, found.status) == (given.constraint_id, given.status)
        if given.value_gy is None:
            assert found.value_gy is None
            continue
        evaluated += 1
        assert found.value_gy == pytest.approx(given.value_gy, abs=1e-6)
    assert evaluated >= 10
    prior = field_report.courses[0]
    assert prior.registration.startswith("deformable registration (Tester^Deform / synthetic field) REG ")
    assert rigid_report.courses[0].registration.startswith("REG ")
    flags = [f for f in field_report.flags if f.id == "deformable_registration_uncertainty"]
    assert len(flags) == 1 and "prior" in flags[0].message and "Bornedal" in flags[0].source
    assert not [f for f in rigid_report.flags if f.id == "deformable_registration_uncertainty"]


def test_every_result_through_a_deformable_reg_names_it_in_its_notes(tmp_path):
    """Issue #12 section 3: results say which deformable registration they were computed through
    (the course summary alone did not reach a result's row in JSON, CSV, console or HTML)."""
    report = run_check(load_case(sbrt_case(tmp_path, "deformable")))
    label = report.courses[0].registration
    assert label.startswith("deformable registration (Tester^Deform / synthetic field) REG ")
    valued = [r for r in report.results if r.value_gy is not None]
    assert len(valued) >= 10
    assert all(f"course '{report.courses[0].name}': {label}" in r.notes for r in valued)
    assert not any("deformable" in n for r in report.results if r.value_gy is None for n in r.notes)
    rigid = run_check(load_case(sbrt_case(tmp_path, "rigid")))
    assert not any("deformable" in n for r in rigid.results for n in r.notes)


def test_check_through_the_opposite_field_differs(tmp_path):
    """Direction control: the field written with +s (the inverted convention) moves the cord's value."""
    case_file = sbrt_case(tmp_path, "deformable")
    reg = case_file.parent / "course2" / "reg.dcm"
    ds = pydicom.dcmread(reg)
    item = ds.DeformableRegistrationSequence[0].DeformableRegistrationGridSequence[0]
    item.VectorGridData = (-np.frombuffer(item.VectorGridData, dtype="<f4")).astype("<f4").tobytes()
    ds.save_as(reg)
    flipped = run_check(load_case(case_file))
    given = run_check(load_case(sbrt_case(tmp_path, "rigid")))
    cord = lambda report: next(r for r in report.results if r.constraint_id == "spinalcord-dmax")  # noqa: E731
    assert cord(given).value_gy is not None
    assert cord(flipped).value_gy is None or abs(cord(flipped).value_gy - cord(given).value_gy) > 1.0


def test_a_field_missing_the_structures_is_refused(tmp_path, capsys, monkeypatch):
    case_file = sbrt_case(tmp_path, "deformable", partial=True)
    with pytest.raises(InputError, match=r"deformation field misses part of .* evaluated structures .* %") as error:
        run_check(load_case(case_file))
    assert error.value.path == case_file.parent / "course2" / "reg.dcm"
    assert re.search(r"SpinalCord \d+\.\d+ %", str(error.value))  # a share, not all or nothing
    monkeypatch.setattr(sys, "argv", ["reirrad", "check", str(case_file)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "deformation field misses part of" in capsys.readouterr().err


# --- deformable REGs given as in-memory pydicom datasets (the Python API) ------------------------------


def _course_datasets(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(folder / name) for name in ("plan.dcm", "dose.dcm", "structures.dcm")]


def test_a_deformable_reg_dataset_gives_the_numbers_of_the_file(tmp_path):
    """Case.from_datasets with the field as a pydicom dataset: the numbers of the same field read from
    its file, named by SOPInstanceUID (no file hash), the registration label and caution flag alike."""
    import reirrad

    case_file = sbrt_case(tmp_path, "deformable")
    folder = case_file.parent
    from_file = run_check(load_case(case_file))
    reg = pydicom.dcmread(folder / "course2" / "reg.dcm")
    dates = {c.name: c for c in load_case(case_file).courses}
    case = reirrad.Case.from_datasets(
        prior=_course_datasets(folder / "course1"),
        new=_course_datasets(folder / "course2"),
        registration=reg,
        prior_end_date=dates["prior"].end_date,
        new_start_date=dates["new"].start_date,
    )
    in_memory = reirrad.check(case, constraints=load_case(case_file).constraints)
    values = lambda report: [(r.constraint_id, r.status, r.value_gy) for r in report.results]  # noqa: E731
    assert values(in_memory) == values(from_file)
    assert sum(r.value_gy is not None for r in in_memory.results) >= 10
    label = in_memory.courses[0].registration
    assert (
        label
        == from_file.courses[0].registration
        == (f"deformable registration (Tester^Deform / synthetic field) REG {reg.SOPInstanceUID}")
    )
    assert {"path": f"<REG {reg.SOPInstanceUID}>", "sha256": None} in in_memory.to_dict()["courses"][1]["files"]
    assert [f.id for f in in_memory.flags if f.id.startswith("deform")] == ["deformable_registration_uncertainty"]


def test_a_deformable_reg_dataset_missing_the_structures_is_refused_naming_it(tmp_path):
    import reirrad

    folder = sbrt_case(tmp_path, "deformable", partial=True).parent
    reg = pydicom.dcmread(folder / "course2" / "reg.dcm")
    case = reirrad.Case.from_datasets(
        prior=_course_datasets(folder / "course1"), new=[*_course_datasets(folder / "course2"), reg]
    )
    with pytest.raises(InputError, match=r"deformation field misses part of .*SpinalCord \d+\.\d+ %") as error:
        reirrad.check(case)
    assert error.value.path == Path(f"<REG {reg.SOPInstanceUID}>")


# --- field checks: the Jacobian determinant over the evaluated region ---------------------------------


def _field_map(tmp_path: Path, vectors: np.ndarray):
    return read_deformable_registration(write_deformable(tmp_path / "dreg.dcm", vectors)).map_to(
        REFERENCE_FRAME, PRIOR_FRAME
    )


def test_the_jacobian_of_a_uniform_shift_is_exactly_one(tmp_path):
    field = _field_map(tmp_path, np.broadcast_to([2.0, -3.0, 1.5], (*DIMENSIONS[::-1], 3)))
    found = field.jacobian_over(inside_points())
    assert (found.minimum, found.maximum, found.folded) == (1.0, 1.0, 0)
    assert found.vectors > 8


def test_the_jacobian_of_a_scaling_field_is_its_volume_ratio(tmp_path):
    """x -> 1.1 x written as D(p) = 0.1 p: det = 1.1 ** 3 = 1.331 (linear, so central differences are exact)."""
    field = _field_map(tmp_path, 0.1 * grid_points())
    found = field.jacobian_over(inside_points())
    assert found.minimum == pytest.approx(1.331, abs=1e-5) and found.maximum == pytest.approx(1.331, abs=1e-5)
    # a post-deformation rotation keeps the volume ratio: det(R) = 1
    rotated = read_deformable_registration(
        write_deformable(tmp_path / "rot.dcm", 0.1 * grid_points(), post=rigid(30.0, np.zeros(3), np.zeros(3)))
    ).map_to(REFERENCE_FRAME, PRIOR_FRAME)
    assert rotated.jacobian_over(inside_points()).minimum == pytest.approx(1.331, abs=1e-5)


def test_a_folding_field_is_refused_with_the_share_of_folded_vectors(tmp_path):
    """D_x = -2.5 (x - x0) over x > x0 only: dx'/dx = -1.5 there (folded), 1 elsewhere."""
    points = grid_points()
    vectors = np.zeros_like(points)
    vectors[..., 0] = -2.5 * np.maximum(points[..., 0] - 20.0, 0.0)  # x from 20 mm on folds
    field = FieldPointMap(_field_map(tmp_path, vectors))
    below = inside_points()[inside_points()[:, 0] < 10.0]  # vectors x <= 12 mm: no fold
    assert field.refuse_folding(below).minimum == 1.0
    with pytest.raises(InputError, match=r"folds \(Jacobian determinant <= 0\) at \d+ of the \d+ field vectors .*%"):
        field.refuse_folding(inside_points())
    found = field.field.jacobian_over(points.reshape(-1, 3))  # every vector centre: the whole field
    # folded: x >= 24 mm (5 of the 21 vector columns, -1.5) and x = 20 mm (central difference 1 - 2.5 / 2)
    assert (found.minimum, found.maximum) == (pytest.approx(-1.5), 1.0)
    assert (found.folded, found.vectors) == (6 * 13 * 17, 21 * 13 * 17)


def test_a_fold_at_the_edge_of_the_defined_vectors_is_refused(tmp_path):
    """Vectors undefined (NaN) outside a body (x columns 0-14, y rows 1-11, z planes 1-15); D_x = -6 mm
    at the body's last column only (x = 16 mm, vectors 4 mm apart). There the derivative is one-sided
    (the next column is undefined): dx'/dx = 1 - 6 / 4 = -0.5, a fold; one column in, central:
    1 - 6 / 8 = 0.25. Points between the two columns are mapped through both, so the field is refused
    (vectors next to undefined ones were left out of the check, and it passed)."""
    points = grid_points()
    vectors = np.zeros_like(points)
    vectors[..., 14, 0] = -6.0
    body = np.zeros(points.shape[:3], dtype=bool)
    body[1:16, 1:12, :15] = True
    vectors[~body] = np.nan
    field = FieldPointMap(_field_map(tmp_path, vectors))
    rng = np.random.default_rng(3)
    edge = rng.uniform([12.5, -20.0, -15.0], [15.5, 20.0, 10.0], size=(50, 3))  # between x = 12 and 16 mm
    assert not field.field.outside_field(edge).any()
    found = field.field.jacobian_over(edge)
    assert (found.minimum, found.maximum) == (pytest.approx(-0.5), pytest.approx(0.25))
    with pytest.raises(InputError, match=r"folds \(Jacobian determinant <= 0\) at \d+ of the \d+ field vectors"):
        field.refuse_folding(edge)
    inside = rng.uniform([-38.0, -20.0, -15.0], [3.0, 20.0, 10.0], size=(50, 3))  # x columns 0-11: D = 0
    unfolded = field.refuse_folding(inside)
    assert (unfolded.minimum, unfolded.maximum, unfolded.folded) == (1.0, 1.0, 0)


def test_the_jacobian_over_a_large_region_takes_memory_of_a_slab_not_of_the_region():
    """D_x = 0.01 mm per x index, 2 mm apart: det 1.005 at each of the 128^3 vectors; the determinant
    range over a box holding the whole field allocates less than the field's own vectors (it held an
    index array of every vector in the box and copies gathered from it: 3x)."""
    shape = (128, 128, 128)
    grid = Grid((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (3.0, 2.0, 2.0), shape)
    vectors = np.zeros((*shape, 3))
    vectors[..., 0] = 0.01 * np.arange(shape[2])
    field = DeformableMap("synthetic", Path("field.dcm"), np.eye(4), np.eye(4), grid, vectors, np.zeros(shape))
    corners = corner_centres_mm(grid)
    tracemalloc.start()
    try:
        found = field.jacobian_in_boxes([(corners.min(axis=0), corners.max(axis=0))])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (found.minimum, found.maximum) == (pytest.approx(1.005), pytest.approx(1.005))
    assert (found.folded, found.vectors) == (0, 128**3)
    assert peak < vectors.nbytes


def test_check_refuses_a_field_folding_over_the_structures(tmp_path, capsys, monkeypatch):
    def fold(centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
        offsets = np.zeros_like(centres)
        offsets[..., 0] = -2.5 * np.maximum(centres[..., 0] - centre[0], 0.0)
        return offsets

    case_file = sbrt_case(tmp_path, "deformable", extra=fold)
    monkeypatch.setattr(sys, "argv", ["reirrad", "check", str(case_file)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(case_file.parent / "course2" / "reg.dcm") in err
    assert re.search(r"folds \(Jacobian determinant <= 0\) at \d+ of the \d+ field vectors .*\(\d+\.\d+ %", err)


def test_check_flags_a_field_that_changes_volume_beyond_the_screened_range(tmp_path):
    """x compressed to 0.45 x about the structures' centre, on top of the shift: det 0.45 everywhere,
    below the rule's 0.5 (read from flags.toml), so the flag gives the range; a uniform shift (det 1)
    never flags (test_a_deformable_reg_dataset_gives_the_numbers_of_the_file)."""
    from reirrad.flags import load_flag_rules

    rule = next(r for r in load_flag_rules().rules if r.id == "deformation_volume_change")
    assert (rule.params["below"], rule.params["above"]) == (0.5, 2.0)

    def squeeze(centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
        offsets = np.zeros_like(centres)
        offsets[..., 0] = -0.55 * (centres[..., 0] - centre[0])
        return offsets

    report = run_check(load_case(sbrt_case(tmp_path, "deformable", extra=squeeze)))
    flagged = [f for f in report.flags if f.id == "deformation_volume_change"]
    expected = (
        "Course 'prior': the deformation field changes local volume over the evaluated structures by a Jacobian "
        "determinant of 0.45 to 0.45 (screened range 0.5 to 2): the dose mapped there is compressed or "
        "stretched accordingly."
    )
    assert [f.message for f in flagged] == [expected]
    assert "Brock" in flagged[0].source and flagged[0].severity == "caution"


# --- reirrad sum through a deformable REG (the same course mapping as check) ---------------------------


def _dose_box(course: Path, shift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest voxel centre (mm) of a course's dose grid, moved by ``shift``."""
    corners = corner_centres_mm(read_dose(course / "dose.dcm").grid) + (0.0 if shift is None else shift)
    return corners.min(axis=0), corners.max(axis=0)


def test_sum_through_a_uniform_field_writes_the_rigid_reg_sum(tmp_path):
    """The cumulative EQD2 RTDOSE through a uniform-shift field equals the one through the equivalent
    rigid REG to within one DoseGridScaling step, and says which registration mapped the prior."""
    from reirrad.export import write_cumulative_eqd2

    sums = {}
    for kind in ("rigid", "deformable"):
        case_file = sbrt_case(tmp_path, kind, box=lambda folder: _dose_box(folder / "course2"))
        summary = write_cumulative_eqd2(load_case(case_file), 3.0, tmp_path / f"{kind}.dcm")
        written = pydicom.dcmread(summary.path, stop_before_pixels=True)
        sums[kind] = (read_dose(summary.path).dose_gy, float(written.DoseGridScaling), summary.assumptions)
    (rigid_gy, rigid_step, rigid_notes), (field_gy, field_step, notes) = sums["rigid"], sums["deformable"]
    assert rigid_gy.shape == field_gy.shape and rigid_gy.max() > 20.0
    assert np.abs(field_gy - rigid_gy).max() <= max(rigid_step, field_step)
    assert any("prior: registration deformable registration (Tester^Deform / synthetic field) REG" in n for n in notes)
    outside = lambda texts: [n for n in texts if "outside its dose grid" in n]  # noqa: E731
    assert outside(notes) == outside(rigid_notes)  # the field covers the whole grid: no voxel lost to it


def _squeeze_x(factor: float) -> Callable:
    """Offsets taking x to ``factor`` x about the box centre (det = factor)."""

    def offsets(centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
        out = np.zeros_like(centres)
        out[..., 0] = (factor - 1.0) * (centres[..., 0] - centre[0])
        return out

    return offsets


def test_sum_refuses_a_folding_field_and_notes_a_large_volume_change(tmp_path):
    from reirrad.export import write_cumulative_eqd2

    cover = lambda folder: _dose_box(folder / "course2")  # noqa: E731
    folded = load_case(sbrt_case(tmp_path / "fold", "deformable", box=cover, extra=_squeeze_x(-0.5)))
    with pytest.raises(
        InputError,
        match=r"folds \(Jacobian determinant <= 0\) at \d+ of the \d+ field vectors used for the reference dose grid",
    ):
        write_cumulative_eqd2(folded, 3.0, tmp_path / "folded.dcm")
    assert not (tmp_path / "folded.dcm").exists()
    squeezed = load_case(sbrt_case(tmp_path / "squeeze", "deformable", box=cover, extra=_squeeze_x(0.45)))
    summary = write_cumulative_eqd2(squeezed, 3.0, tmp_path / "squeezed.dcm")
    expected = (
        f"{load_case_label(squeezed)}: the deformation changes local volume within the reference dose grid by a "
        "Jacobian determinant of 0.45 to 0.45 (screened range 0.5 to 2, flag rule deformation_volume_change); "
        "review the deformation there (AAPM TG-132)"
    )
    assert [n for n in summary.assumptions if "Jacobian" in n] == [expected]


def load_case_label(case) -> str:
    """The deformable REG label of the case's prior course (its file's SOPInstanceUID)."""
    reg = pydicom.dcmread(case.courses[-1].path / "reg.dcm", stop_before_pixels=True)
    return f"deformable registration (Tester^Deform / synthetic field) REG {reg.SOPInstanceUID}"


# --- reirrad dvh with a deformable REG (the dose of another frame on the structure set's) ---------------


def test_dvh_through_a_uniform_field_matches_the_rigid_reg(tmp_path, capsys, monkeypatch):
    """The prior dose on the new structure set through a uniform-shift field: the lattice and every
    value of the rigid REG's translation (no interpolation), and the notes name the deformable REG."""
    from reirrad.pairing import load_pair

    cover = lambda folder: _dose_box(folder / "course1", SBRT_SHIFT)  # noqa: E731 (the moved prior dose)
    pairs = {}
    for kind in ("rigid", "deformable"):
        folder = sbrt_case(tmp_path, kind, box=cover).parent
        files = (folder / "course1" / "dose.dcm", folder / "course2" / "structures.dcm", folder / "course2" / "reg.dcm")
        pairs[kind] = (files, load_pair(*files))
    rigid_pair, (files, field_pair) = pairs["rigid"][1], pairs["deformable"]
    assert field_pair.dose.grid.same_geometry(rigid_pair.dose.grid, tol_mm=1e-6)
    np.testing.assert_allclose(field_pair.dose.dose_gy, rigid_pair.dose.dose_gy, rtol=0, atol=1e-9)
    assert field_pair.dose.dose_gy.max() > 20.0
    assert any("through deformable registration (Tester^Deform / synthetic field) REG" in n for n in field_pair.notes)
    argv = ["reirrad", "dvh", *map(str, files[:2]), "--registration", str(files[2]), "--format", "csv"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None) and "deformable registration (Tester^Deform" in out.err
    assert "SpinalCord" in out.out
    # a field ending halfway across the structures along x: the box is cut to it, same lattice and values
    folder = sbrt_case(tmp_path / "small", "deformable", partial=True).parent
    small = load_pair(
        folder / "course1" / "dose.dcm", folder / "course2" / "structures.dcm", folder / "course2" / "reg.dcm"
    )
    offset = rigid_pair.dose.grid.to_index(np.asarray([small.dose.grid.origin_mm]))[0]
    assert np.allclose(offset, np.round(offset), atol=1e-6) and np.all(offset >= 0)
    start = np.round(offset).astype(int)
    inner = rigid_pair.dose.dose_gy[tuple(slice(a, a + n) for a, n in zip(start, small.dose.grid.shape))]
    assert 0 < small.dose.dose_gy.size < rigid_pair.dose.dose_gy.size
    np.testing.assert_allclose(small.dose.dose_gy, inner, rtol=0, atol=1e-9)


def test_dvh_parts_beyond_the_field_are_said_to_lie_outside_it(tmp_path, capsys, monkeypatch):
    """A field ending halfway across the structures: the rows of structures reaching beyond it say they
    lie outside the part of the dose grid the field covers (not outside the dose grid, which covers them)."""

    folder = sbrt_case(tmp_path, "deformable", partial=True).parent
    files = (folder / "course1" / "dose.dcm", folder / "course2" / "structures.dcm", folder / "course2" / "reg.dcm")
    argv = ["reirrad", "dvh", *map(str, files[:2]), "--registration", str(files[2]), "-f", "json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None), out.err
    notes = [n for row in json.loads(out.out)["structures"] for n in row["notes"]]
    field = re.escape(
        "the part of the dose grid covered by the deformation field of deformable registration "
        "(Tester^Deform / synthetic field) REG "
    )
    partly = [
        n for n in notes if re.fullmatch(rf"[0-9.]+ % of the volume lies outside {field}[0-9.]+: dose metrics.*", n)
    ]
    entirely = [
        n for n in notes if re.fullmatch(rf"Dmax not evaluated: structure lies entirely outside {field}[0-9.]+", n)
    ]
    assert partly and entirely and not [n for n in notes if "the dose grid:" in n or n.endswith("the dose grid")]


def _matrices_only_reg(tmp_path, rigid_folder):
    """A deformable REG whose item for the prior frame has the rigid REG's matrix and no field (its
    field item is for another frame): (path, reference frame, prior frame)."""
    dose = rigid_folder / "course1" / "dose.dcm"
    reg = tmp_path / "matrices_only.dcm"
    reference, prior = _frame(rigid_folder / "course2" / "dose.dcm"), _frame(dose)
    patient = str(pydicom.dcmread(dose, stop_before_pixels=True).PatientID)
    write_deformable(
        reg, np.zeros((*DIMENSIONS[::-1], 3)), own_frame=reference, source_frame="1.2.3.999", patient_id=patient
    )
    ds = pydicom.dcmread(reg)
    matrices_only = Dataset()
    matrices_only.SourceFrameOfReferenceUID = prior
    matrices_only.PreDeformationMatrixRegistrationSequence = _matrix_item(sum_rigid(0.0, 2, -SBRT_SHIFT))
    ds.DeformableRegistrationSequence.append(matrices_only)
    ds.save_as(reg)
    return reg, reference, prior


def test_dvh_through_a_matrices_only_item_says_no_field_was_used(tmp_path):
    """A deformable REG whose item for the dose's frame holds matrices but no deformation grid: the note
    says the dose was mapped through the item's matrices, not through a deformation field."""
    from reirrad.pairing import load_pair

    rigid_folder = sbrt_case(tmp_path, "rigid").parent
    files = (rigid_folder / "course1" / "dose.dcm", rigid_folder / "course2" / "structures.dcm")
    reg, reference, prior = _matrices_only_reg(tmp_path, rigid_folder)
    pair = load_pair(*files, reg)
    mapped = [n for n in pair.notes if n.startswith(f"dose mapped from frame {prior} into {reference} through ")]
    assert len(mapped) == 1 and "; trilinear through its item's matrices (no deformation field) on a " in mapped[0]
    assert not [n for n in pair.notes if "deformation field" in n and "no deformation field" not in n]


def test_dvh_through_a_folding_field_is_refused(tmp_path):
    from reirrad.pairing import load_pair

    def fold(centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
        offsets = np.zeros_like(centres)
        offsets[..., 0] = -2.5 * np.maximum(centres[..., 0] - centre[0], 0.0)
        return offsets

    folder = sbrt_case(tmp_path, "deformable", extra=fold).parent
    with pytest.raises(InputError, match=r"folds .* field vectors used for the structures' boxes") as error:
        load_pair(
            folder / "course1" / "dose.dcm", folder / "course2" / "structures.dcm", folder / "course2" / "reg.dcm"
        )
    assert error.value.path == folder / "course2" / "reg.dcm"


def test_dvh_through_a_deformable_item_of_matrices_only_matches_the_rigid_reg(tmp_path, capsys, monkeypatch):
    """A deformable REG whose item for the dose's frame has its pre-deformation matrix but no grid (an
    item for another frame has one): the prior dose is moved as by the equivalent rigid REG, exit 0
    (it ended in an internal error, exit 3)."""
    from reirrad.pairing import load_pair

    rigid_folder = sbrt_case(tmp_path, "rigid").parent
    files = (rigid_folder / "course1" / "dose.dcm", rigid_folder / "course2" / "structures.dcm")
    rigid_pair = load_pair(*files, rigid_folder / "course2" / "reg.dcm")
    reg, _, _ = _matrices_only_reg(tmp_path, rigid_folder)
    pair = load_pair(*files, reg)
    assert pair.dose.grid.same_geometry(rigid_pair.dose.grid, tol_mm=1e-6)
    np.testing.assert_allclose(pair.dose.dose_gy, rigid_pair.dose.dose_gy, rtol=0, atol=1e-9)
    assert pair.dose.dose_gy.max() > 20.0
    monkeypatch.setattr(sys, "argv", ["reirrad", "dvh", *map(str, files), "--registration", str(reg), "-f", "csv"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert "SpinalCord" in capsys.readouterr().out
