"""Helpers for the accumulation tests: synthetic RTDOSE and Spatial Registration files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import SpatialRegistrationStorage

from reirrad.dicom.write import (
    dose_header_dataset,
    encode_pixels,
    item,
    new_dataset,
    registration_sequence,
    save_atomic,
    save_dose_streamed,
)
from reirrad.grid import Grid


def header(frame_of_reference_uid: str = "", patient_id: str = "SUM-001") -> Dataset:
    """Patient and study attributes of a synthetic phantom."""
    return item(
        PatientName="Phantom^Sum",
        PatientID=patient_id,
        PatientBirthDate="",
        PatientSex="O",
        StudyInstanceUID="1.2.826.0.1.3680043.8.498.1",
        StudyDate="20250114",
        StudyTime="120000",
        StudyID="1",
        FrameOfReferenceUID=frame_of_reference_uid,
    )


def axial_grid(origin, spacing, shape, frame_uid: str) -> Grid:
    """An HFS grid: rows along +x, columns along +y, frames along +z."""
    return Grid(
        origin_mm=tuple(float(v) for v in origin),
        row_direction=(1.0, 0.0, 0.0),
        column_direction=(0.0, 1.0, 0.0),
        frame_direction=(0.0, 0.0, 1.0),
        spacing_mm=tuple(float(v) for v in spacing),
        shape=tuple(shape),
        frame_of_reference_uid=frame_uid,
    )


def voxel_centres(grid: Grid) -> np.ndarray:
    """Patient positions (mm) of every voxel centre, shape grid.shape + (3,)."""
    index = np.indices(grid.shape).reshape(3, -1).T
    return grid.to_patient(index).reshape(*grid.shape, 3)


def save_dose(
    path: Path,
    dose_gy: np.ndarray,
    grid: Grid,
    header: Dataset,
    *,
    dose_type: str,
    summation_type: str,
    description: str,
    plan_uids: tuple[str, ...] | list[str] = (),
    bits: int = 32,
) -> Path:
    """An RTDOSE file of ``dose_gy`` (Gy) on ``grid`` written by the product's writer (encoded to
    ``bits``-bit pixels, one slab), patient and study copied from ``header``."""
    pixels, scaling = encode_pixels(dose_gy, bits)
    ds = dose_header_dataset(
        pixels.dtype,
        scaling,
        grid,
        header,
        dose_type=dose_type,
        summation_type=summation_type,
        description=description,
        plan_uids=plan_uids,
    )
    return save_dose_streamed(ds, [pixels], path)


def write_dose(
    path: Path, grid: Grid, dose_gy: np.ndarray, summation_type: str = "PLAN", plan_uid: str | None = None
) -> Path:
    """A PHYSICAL RTDOSE file of ``dose_gy`` on ``grid``."""
    return save_dose(
        path,
        dose_gy,
        grid,
        header(grid.frame_of_reference_uid),
        dose_type="PHYSICAL",
        summation_type=summation_type,
        description="synthetic test dose",
        plan_uids=[plan_uid] if plan_uid else [],
    )


def rigid(angle_deg: float, axis: int, shift_mm) -> np.ndarray:
    """4x4 rotation by ``angle_deg`` about patient axis ``axis`` (0 x, 1 y, 2 z), then a shift."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [n for n in range(3) if n != axis]
    matrix = np.eye(4)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    matrix[:3, 3] = shift_mm
    return matrix


def write_reg(
    path: Path,
    own_frame: str,
    registered: dict[str, np.ndarray],
    matrix_type: str = "RIGID",
    sop_class: str = SpatialRegistrationStorage,
    patient_id: str = "SUM-001",
) -> Path:
    """A Spatial Registration file: each matrix maps its frame's points into ``own_frame``."""
    ds = new_dataset(sop_class, "REG")
    ds.update(header(own_frame, patient_id))
    ds.RegistrationSequence = registration_sequence(registered, matrix_type=matrix_type)
    return save_atomic(ds, path)
