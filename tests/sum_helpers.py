"""Helpers for the accumulation tests: synthetic RTDOSE and Spatial Registration files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from reirrad.dicom.registration import SPATIAL_REGISTRATION_SOP_CLASS
from reirrad.dicom.write import dose_dataset, save_atomic
from reirrad.grid import Grid


def header(frame_of_reference_uid: str = "", patient_id: str = "SUM-001") -> Dataset:
    """Patient and study attributes of a synthetic phantom."""
    ds = Dataset()
    ds.PatientName = "Phantom^Sum"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyDate = "20250114"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.FrameOfReferenceUID = frame_of_reference_uid
    return ds


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


def write_dose(
    path: Path, grid: Grid, dose_gy: np.ndarray, summation_type: str = "PLAN", plan_uid: str | None = None
) -> Path:
    """A PHYSICAL RTDOSE file of ``dose_gy`` on ``grid``."""
    ds = dose_dataset(
        dose_gy,
        grid,
        header(grid.frame_of_reference_uid),
        dose_type="PHYSICAL",
        summation_type=summation_type,
        description="synthetic test dose",
        plan_uids=[plan_uid] if plan_uid else [],
    )
    return save_atomic(ds, path)


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
    sop_class: str = SPATIAL_REGISTRATION_SOP_CLASS,
    patient_id: str = "SUM-001",
) -> Path:
    """A Spatial Registration file: each matrix maps its frame's points into ``own_frame``."""
    ds = header(own_frame, patient_id)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "REG"
    items = []
    for frame, matrix in registered.items():
        entry = Dataset()
        entry.FrameOfReferenceTransformationMatrixType = matrix_type
        entry.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in np.asarray(matrix).ravel()]
        registration = Dataset()
        registration.MatrixSequence = Sequence([entry])
        item = Dataset()
        item.FrameOfReferenceUID = frame
        item.MatrixRegistrationSequence = Sequence([registration])
        items.append(item)
    ds.RegistrationSequence = Sequence(items)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return save_atomic(ds, path)
