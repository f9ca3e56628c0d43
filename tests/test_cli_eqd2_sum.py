"""`reirrad eqd2` and `reirrad sum` end to end on the Nelms phantoms (folders of symlinks)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from sum_helpers import voxel_centres
from typer.testing import CliRunner

from reirrad.cli import _register, app
from reirrad.dicom.dose import read_dose
from reirrad.dicom.io import read_dataset

_register()
RUNNER = CliRunner()
AP, SI = "Linear_AntPost_3mm_Aligned.dcm", "Linear_SupInf_1mm_Aligned.dcm"


def run(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


@pytest.fixture()
def case(testdata, tmp_path):
    """Prior: AntPost 3 mm in 25 fx; new: SupInf 1 mm in 5 fx; same frame of reference."""
    for folder, name in (("prior", AP), ("new", SI)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).symlink_to(testdata / "nelms2015" / "dose_grids" / name)
    path = tmp_path / "case.toml"
    path.write_text(
        'id = "nelms"\n[[courses]]\nname = "prior"\npath = "prior"\nfractions = 25\nend_date = 2022-11-02\n'
        '[[courses]]\nname = "new"\npath = "new"\nfractions = 5\nstart_date = 2025-01-14\n'
    )
    return path


def test_eqd2_command_writes_hand_computed_values(case, tmp_path):
    out = tmp_path / "eqd2.dcm"
    result = run("eqd2", case.parent / "new" / SI, "--alpha-beta", 2, "--fractions", 5, "--output", out)
    assert result.exit_code == 0, result.output
    # maximum 34 Gy in 5 fx: 34 (6.8 + 2) / 4 = 74.8 Gy
    assert "max EQD2: 74.80 Gy" in result.stdout
    written = read_dose(out)
    d = np.maximum(0, 10 + voxel_centres(written.grid)[..., 2])
    np.testing.assert_allclose(written.dose_gy, d * (d / 5 + 2) / 4, rtol=1e-5, atol=1e-6)
    ds = read_dataset(out, stop_before_pixels=True)
    assert (ds.DoseType, ds.DoseSummationType) == ("EFFECTIVE", "PLAN") and "a/b 2 Gy" in ds.DoseComment


def test_sum_command_closed_form_and_recovery(case, tmp_path):
    out = tmp_path / "sum.dcm"
    result = run(
        "sum",
        case,
        "--alpha-beta",
        2,
        "--output",
        out,
        "--recovery-model",
        "simple-25-50",
        "--recovery-organ",
        "SpinalCord",
    )
    assert result.exit_code == 0, result.output
    assert "recovery model simple-25-50: r = 0.5" in result.stdout and "26.4 months" in result.stdout
    written = read_dose(out)
    p = voxel_centres(written.grid)
    prior, new = np.maximum(0, 10 - p[..., 1]), np.maximum(0, 10 + p[..., 2])
    expected = 0.5 * prior * (prior / 25 + 2) / 4 + new * (new / 5 + 2) / 4
    away_from_kink = ~((p[..., 1] > 9) & (p[..., 1] < 12))
    np.testing.assert_allclose(written.dose_gy[away_from_kink], expected[away_from_kink], rtol=5e-3, atol=1e-3)
    ds = read_dataset(out, stop_before_pixels=True)
    assert ds.DoseSummationType == "MULTI_PLAN" and "prior: " in ds.ImageComments


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_sum_output_validates(case, tmp_path):
    out = tmp_path / "sum16.dcm"
    assert run("sum", case, "--alpha-beta", 3, "--output", out, "--bits", 16).exit_code == 0
    report = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, check=False)
    assert [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha-beta", 3], "give --fractions N or --plan RTPLAN"),
        (["--alpha-beta", 3, "--fractions", 5, "--override-fractions"], "--override-fractions only with both"),
        (["--alpha-beta", 0, "--fractions", 5], "must be positive"),
        (["--alpha-beta", 3, "--fractions", 5, "--bits", 8], "--bits must be 16 or 32"),
    ],
)
def test_eqd2_bad_usage_exits_2(case, tmp_path, args, message):
    result = run("eqd2", case.parent / "new" / SI, "--output", tmp_path / "o.dcm", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "o.dcm").exists()


def test_sum_without_fractions_names_the_fix(case, tmp_path):
    case.write_text(case.read_text().replace("fractions = 25\n", ""))
    result = run("sum", case, "--alpha-beta", 3, "--output", tmp_path / "o.dcm")
    assert result.exit_code == 2
    assert "set fractions = N for course 'prior' in the case file" in result.stderr
    assert not (tmp_path / "o.dcm").exists()


def test_recovery_model_needs_organ(case, tmp_path):
    result = run("sum", case, "--alpha-beta", 3, "--output", tmp_path / "o.dcm", "--recovery-model", "price-2021")
    assert result.exit_code == 2 and "give --recovery-organ" in result.stderr


def test_output_must_not_overwrite_input(case):
    target = case.parent / "new" / SI
    before = target.resolve().read_bytes()[:256]
    result = run("eqd2", target, "--alpha-beta", 3, "--fractions", 5, "--output", target)
    assert result.exit_code == 2 and "overwrite an input" in result.stderr
    assert target.resolve().read_bytes()[:256] == before


def test_sum_refuses_a_prior_course_whose_grid_covers_none_of_the_reference(tmp_path):
    """A valid REG with an absurd shift: the prior course would add 0 Gy everywhere (was a note)."""
    import pydicom

    from reirrad.data import sample_case

    case_dir = shutil.copytree(sample_case().parent, tmp_path / "case")
    reg_path = case_dir / "course2" / "reg.dcm"
    reg = pydicom.dcmread(str(reg_path))
    for item in reg.RegistrationSequence:
        for matrix in item.MatrixRegistrationSequence[0].MatrixSequence:
            values = [float(v) for v in matrix.FrameOfReferenceTransformationMatrix]
            if values != [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]:
                values[3] += 1e5
                matrix.FrameOfReferenceTransformationMatrix = values
    reg.save_as(str(reg_path), write_like_original=True)
    result = run("sum", case_dir / "case.toml", "--alpha-beta", 3, "--output", tmp_path / "sum.dcm")
    assert result.exit_code == 2, result.output
    assert "course 'prior'" in result.stderr and "covers none of the reference" in result.stderr
    assert not (tmp_path / "sum.dcm").exists()
