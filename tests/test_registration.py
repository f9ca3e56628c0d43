"""Spatial Registration: reading, validation, and the direction of the transform, proven."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from sum_helpers import axial_grid, rigid, voxel_centres, write_dose, write_reg

from reirrad.dicom.dose import read_dose
from reirrad.dicom.registration import (
    DEFORMABLE_REGISTRATION_SOP_CLASS,
    read_registration,
    reference_to_moving,
)
from reirrad.dicom.write import registration_dataset, save_atomic
from reirrad.errors import InputError
from reirrad.grid import resample

REFERENCE, MOVING = "1.2.826.0.1.3680043.8.498.10", "1.2.826.0.1.3680043.8.498.20"


def moving_field(points_mm: np.ndarray) -> np.ndarray:
    """Dose (Gy) defined in the MOVING frame: linear, different along each axis, positive."""
    return 30.0 + 0.25 * points_mm[..., 0] - 0.15 * points_mm[..., 1] + 0.1 * points_mm[..., 2]


def reirrad_reg(path, reference: str, moving: str, to_reference: np.ndarray):
    """The REG as `reirrad register` writes it (reirrad.dicom.write.registration_dataset)."""
    header = Dataset()
    header.PatientID, header.StudyInstanceUID = "SUM-001", "1.2.826.0.1.3680043.8.498.99"
    return save_atomic(registration_dataset(to_reference, reference, moving, header, description="test"), path)


def helper_reg(path, reference: str, moving: str, to_reference: np.ndarray):
    return write_reg(path, reference, {reference: np.eye(4), moving: to_reference})


@pytest.mark.parametrize("writer", [helper_reg, reirrad_reg], ids=["test writer", "reirrad register writer"])
def test_reg_direction_with_known_answer(tmp_path, writer):
    """The REG maps moving-frame points into the reference frame: p_ref = M q_moving.

    A dose written in the moving frame must therefore appear at reference point p with the value
    the field has at q = M^-1 p. Sampling at M p instead (the inverted convention) gives other values.
    """
    to_reference = rigid(30.0, 2, (12.0, -7.0, 4.0)) @ rigid(10.0, 0, (0.0, 0.0, 0.0))
    reg = writer(tmp_path / "reg.dcm", REFERENCE, MOVING, to_reference)
    moving_grid = axial_grid((-60, -60, -50), (2.5, 2.0, 2.0), (41, 61, 61), MOVING)
    moving = read_dose(write_dose(tmp_path / "moving.dcm", moving_grid, moving_field(voxel_centres(moving_grid))))
    reference_grid = axial_grid((-20, -20, -15), (3.0, 2.0, 2.0), (11, 21, 21), REFERENCE)

    matrix, label = reference_to_moving(REFERENCE, MOVING, [read_registration(reg)], tmp_path)
    values, covered = resample(moving.dose_gy, moving.grid, reference_grid, matrix)

    p = voxel_centres(reference_grid)
    q = p @ np.linalg.inv(to_reference)[:3, :3].T + np.linalg.inv(to_reference)[:3, 3]
    assert covered.all()
    # a REG reirrad register wrote stays named an automatic, unreviewed registration when read back
    automatic = writer is reirrad_reg
    assert label.startswith(
        "automatic rigid registration, not reviewed (test); REG 1.2.826.0.1.3680043"
        if automatic
        else "REG 1.2.826.0.1.3680043"
    )
    np.testing.assert_allclose(values, moving_field(q), atol=1e-6)
    wrong = p @ to_reference[:3, :3].T + to_reference[:3, 3]
    assert np.abs(values - moving_field(wrong)).max() > 5.0


def test_reg_in_moving_frame_is_inverted_correctly(tmp_path):
    # the same anatomy, but the REG lives in the moving frame and registers the reference frame
    to_reference = rigid(-20.0, 1, (5.0, 3.0, -2.0))
    reg = read_registration(write_reg(tmp_path / "reg.dcm", MOVING, {REFERENCE: np.linalg.inv(to_reference)}))
    matrix, _ = reference_to_moving(REFERENCE, MOVING, [reg], tmp_path)
    np.testing.assert_allclose(matrix, np.linalg.inv(to_reference), atol=1e-9)


def test_same_frame_is_identity():
    assert reference_to_moving(REFERENCE, REFERENCE, [], None) == (None, "identity")


def test_different_frames_without_reg_refused(tmp_path):
    with pytest.raises(InputError, match="different frames of reference and no registration.*--conservative"):
        reference_to_moving(REFERENCE, MOVING, [], tmp_path)


def test_disagreeing_registrations_refused(tmp_path):
    regs = [
        read_registration(write_reg(tmp_path / f"r{i}.dcm", REFERENCE, {MOVING: rigid(a, 2, (0, 0, 0))}))
        for i, a in enumerate((5.0, 6.0))
    ]
    with pytest.raises(InputError, match="disagree"):
        reference_to_moving(REFERENCE, MOVING, regs, tmp_path)


@pytest.mark.parametrize(
    ("matrix", "kind", "message"),
    [
        (np.diag([1.0, 1.0, -1.0, 1.0]), "RIGID", "reflection"),
        (np.diag([1.1, 1.1, 1.1, 1.0]), "RIGID_SCALE", "scales by"),
        (np.eye(4), "AFFINE", "not rigid"),
        (np.vstack([np.eye(4)[:3], [0.0, 0.0, 0.1, 1.0]]), "RIGID", "last matrix row"),
        (np.array([[1, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "RIGID", "orthonormal|scales"),
    ],
)
def test_invalid_matrices_refused(tmp_path, matrix, kind, message):
    path = write_reg(tmp_path / "reg.dcm", REFERENCE, {MOVING: matrix}, matrix_type=kind)
    with pytest.raises(InputError, match=message):
        read_registration(path)


def test_rigid_scale_with_unit_scale_accepted(tmp_path):
    path = write_reg(tmp_path / "reg.dcm", REFERENCE, {MOVING: rigid(15, 2, (1, 2, 3))}, matrix_type="RIGID_SCALE")
    assert MOVING in read_registration(path).to_own_frame


def test_deformable_refused(tmp_path):
    path = write_reg(tmp_path / "dreg.dcm", REFERENCE, {MOVING: np.eye(4)}, sop_class=DEFORMABLE_REGISTRATION_SOP_CLASS)
    with pytest.raises(InputError, match="deformable registration is not supported"):
        read_registration(path)


def test_not_a_registration(testdata):
    with pytest.raises(InputError, match="not a Spatial Registration"):
        read_registration(testdata / "pydicom" / "CT_small.dcm")
