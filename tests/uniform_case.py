"""Synthetic course folders with a uniform physical dose, for closed-form `reirrad check` tests.

Each course holds an RTPLAN (one fraction group), a PLAN RTDOSE of ``dose_gy`` everywhere on a
21 x 21 x 21 grid of 2 mm voxels centred on the origin, and an RTSTRUCT whose structures are
cylinders of radius 5 mm contoured every 2 mm from z = -10 to 10 mm, well inside the grid. Every
dose metric of every structure is then the uniform dose: EQD2 per course is closed form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests import dicom_synthetic as syn

FRAME = "1.2.3.4"


def cylinder(x_mm: float = 0.0, radius_mm: float = 5.0) -> list[list[tuple[float, float, float]]]:
    """Contours (mm) of a cylinder along z centred at (x_mm, 0)."""
    angles = np.linspace(0.0, 2 * np.pi, 36, endpoint=False)
    return [
        [(x_mm + radius_mm * np.cos(a), radius_mm * np.sin(a), z) for a in angles] for z in np.arange(-10.0, 10.5, 2.0)
    ]


def write_course(
    folder: Path,
    dose_gy: float,
    fractions: int,
    structures: tuple[str, ...] = ("SpinalCord",),
    *,
    plan: bool = True,
    structures_file: str = "rs.dcm",
) -> Path:
    """A course folder: RTSTRUCT (``structures`` side by side), RTPLAN of ``fractions`` (unless
    ``plan`` is False) and a uniform RTDOSE of ``dose_gy`` (Gy)."""
    rois = {name: cylinder(x_mm=12.0 * i - 12.0) for i, name in enumerate(structures)}
    rtstruct = syn.rtstruct(rois, frame_of_reference=FRAME)
    rtplan = syn.rtplan(
        [(fractions, [(1, dose_gy / fractions, 100.0)])],
        prescription_gy=dose_gy,
        frame_of_reference=FRAME,
        structure_set_uid=rtstruct.SOPInstanceUID,
    )
    pixels = np.full((21, 21, 21), round(dose_gy / 1e-4), dtype=np.uint32)
    rtdose = syn.rtdose(
        pixels,
        ipp=(-20.0, -20.0, -20.0),
        offsets=np.arange(21) * 2.0,
        pixel_spacing=(2.0, 2.0),
        scaling=1e-4,
        frame_of_reference=FRAME,
        plan_uid=rtplan.SOPInstanceUID if plan else None,
    )
    syn.write(rtstruct, folder / structures_file)
    if plan:
        syn.write(rtplan, folder / "rp.dcm")
    syn.write(rtdose, folder / "rd.dcm")
    return folder


def write_case(
    path: Path,
    case_id: str = "uniform",
    *,
    prior_end: str = "2023-01-01",
    new_start: str = "2024-07-01",
    extra: str = "",
    prior_extra: str = "",
    new_extra: str = "",
    head: str = "",
) -> Path:
    """A two-course case file (courses "prior" and "new" in folders of those names)."""
    path.write_text(
        f'id = "{case_id}"\n{head}'
        f'[[courses]]\nname = "prior"\npath = "prior"\nend_date = {prior_end}\n{prior_extra}'
        f'[[courses]]\nname = "new"\npath = "new"\nstart_date = {new_start}\n{new_extra}{extra}'
    )
    return path
