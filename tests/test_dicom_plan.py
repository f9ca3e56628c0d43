"""RTPLAN loading: fractions, fraction groups, beams, prescription, truncation and refusals."""

from __future__ import annotations

import pytest
from pydicom.sequence import Sequence

from reirrad.dicom.plan import RT_ION_PLAN_SOP_CLASS, Beam, read_plan
from reirrad.errors import InputError
from tests import dicom_synthetic as syn


def test_single_fraction_group_plan(tmp_path):
    ds = syn.rtplan([(30, [(1, 1.1, 120.0), (2, 0.9, 95.5)])], prescription_gy=60.0, structure_set_uid="5.6.7")
    plan = read_plan(syn.write(ds, tmp_path / "rp.dcm"))
    assert (plan.fractions, plan.prescription_gy, plan.dose_per_fraction_gy) == (30, 60.0, 2.0)
    assert plan.fraction_groups[0].beams == (Beam(1, "B1", 120.0, 1.1), Beam(2, "B2", 95.5, 0.9))
    assert plan.referenced_structure_set_uid == "5.6.7" and plan.frame_of_reference_uid == "1.2.3.4"
    assert plan.sop_instance_uid == ds.SOPInstanceUID and plan.label == "synthetic"


def test_no_target_prescription_gives_none(tmp_path):
    plan = read_plan(syn.write(syn.rtplan([(5, [(1, 2.0, 100.0)])], prescription_gy=None), tmp_path / "rp.dcm"))
    assert plan.prescription_gy is None and plan.dose_per_fraction_gy is None and plan.fractions == 5


def test_ion_plan_is_read_like_a_photon_plan(tmp_path):
    ds = syn.rtplan([(10, [(1, 3.0, 50.0)])], prescription_gy=30.0)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = RT_ION_PLAN_SOP_CLASS
    ds.Modality = "RTPLAN"
    for beam in ds.BeamSequence:
        beam.IonControlPointSequence = beam.ControlPointSequence
        del beam.ControlPointSequence
    ds.IonBeamSequence = Sequence(list(ds.BeamSequence))
    del ds.BeamSequence
    plan = read_plan(syn.write(ds, tmp_path / "rp.dcm"))
    assert plan.fractions == 10 and plan.fraction_groups[0].beams[0].name == "B1"


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda ds: setattr(ds.BeamSequence[0].ControlPointSequence[0], "IsocenterPosition", [1.0, 2.0]),
            "IsocenterPosition has 2 of 3 coordinates",
        ),
        (lambda ds: setattr(ds.BeamSequence[0], "NumberOfControlPoints", 2), "declares 2 control points but holds 1"),
        (lambda ds: setattr(ds.FractionGroupSequence[0], "NumberOfBeams", 3), "declares 3 beams but references 2"),
        (
            lambda ds: setattr(ds.FractionGroupSequence[0].ReferencedBeamSequence[1], "ReferencedBeamNumber", 9),
            "references beam 9, which the plan lacks",
        ),
        (lambda ds: setattr(ds.FractionGroupSequence[0], "NumberOfFractionsPlanned", 0), "no positive"),
        (lambda ds: setattr(ds.FractionGroupSequence[0], "NumberOfBrachyApplicationSetups", 1), "brachytherapy"),
        (lambda ds: delattr(ds, "FractionGroupSequence"), "no FractionGroupSequence"),
    ],
)
def test_damaged_plans_are_refused(tmp_path, damage, message):
    ds = syn.rtplan([(30, [(1, 1.0, 100.0), (2, 1.0, 100.0)])])
    damage(ds)
    path = syn.write(ds, tmp_path / "rp.dcm")
    with pytest.raises(InputError, match=message) as err:
        read_plan(path)
    assert str(err.value).startswith(str(path))


def test_eclipse_plan(testdata):
    plan = read_plan(testdata / "dicompyler-core" / "rtplan.dcm")
    assert (plan.fractions, plan.prescription_gy, plan.dose_per_fraction_gy) == (7, 14.0, 2.0)
    assert [(b.number, b.meterset, b.dose_gy) for b in plan.fraction_groups[0].beams] == [
        (1, 97.0, 0.5),
        (2, 87.0, 0.5),
        (3, 89.0, 0.5),
        (4, 94.0, 0.5),
    ]
    assert plan.frame_of_reference_uid == "2.16.840.1.113662.2.12.0.3057.1241703565.36"


def test_prescription_is_in_gy_unlike_dicompyler_core(testdata):
    from dicompylercore import dicomparser

    path = testdata / "edge_cases" / "RP.dcm"
    plan = read_plan(path)
    assert plan.prescription_gy == 70.0 and plan.fractions == 35
    assert float(dicomparser.DicomParser(str(path)).GetPlan()["rxdose"]) == pytest.approx(7000.0)  # cGy there


def test_monaco_plan_with_three_fraction_groups(testdata):
    plan = read_plan(testdata / "edge_cases" / "2018CompLTCWC2_t2.dcm")
    assert [(g.number, g.fractions_planned, g.prescription_gy, g.beam_numbers) for g in plan.fraction_groups] == [
        (1, 13, 26.0, (1, 2)),
        (2, 12, 24.0, (3, 4)),
        (3, 25, 50.0, (5, 6)),
    ]
    assert plan.fractions is None and plan.dose_per_fraction_gy is None
    assert plan.prescription_gy == 50.0  # the highest TARGET prescription
    assert plan.fraction_group(3).beams[0] == Beam(5, "AP", pytest.approx(184.529007), pytest.approx(1.052))
    with pytest.raises(InputError, match="no fraction group 4"):
        plan.fraction_group(4)
