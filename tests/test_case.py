"""Case file loading: fields, resolved paths, and errors that name the file and the field."""

from __future__ import annotations

from datetime import date

import pytest

from reirrad.case import load_case
from reirrad.errors import InputError

GOOD = """
id = "HN-demo-01"
constraints = "hn-reirradiation"
recovery_model = "simple-25-50"
[[courses]]
name = "prior"
path = "course1"
start_date = 2022-09-20
end_date = 2022-11-02
fractions = 35
[[courses]]
name = "new"
path = "course2"
start_date = "2025-01-14"
registration = "course2/reg.dcm"
structure_set = "course2/rs.dcm"
schedule = "bid"
[structures]
"Cord" = "SpinalCord"
"Parotid L" = "Parotid_L"
[clinical]
resection = true
organ_dysfunction = false
recurrence_site = "left neck"
"""


def make_case(tmp_path, text=GOOD):
    for folder in ("course1", "course2"):
        (tmp_path / folder).mkdir(exist_ok=True)
    for name in ("reg.dcm", "rs.dcm"):
        (tmp_path / "course2" / name).write_bytes(b"")
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def test_good_case(tmp_path):
    case = load_case(make_case(tmp_path))
    assert case.id == "HN-demo-01" and case.constraints == "hn-reirradiation"
    assert case.recovery_model == "simple-25-50"
    prior, new = case.courses
    assert case.reference is new
    assert prior.path == tmp_path / "course1" and prior.fractions == 35
    assert (prior.start_date, prior.end_date) == (date(2022, 9, 20), date(2022, 11, 2))
    assert new.start_date == date(2025, 1, 14) and new.end_date is None
    assert new.registration == tmp_path / "course2" / "reg.dcm" and new.schedule == "bid"
    assert new.structure_set == tmp_path / "course2" / "rs.dcm" and prior.structure_set is None
    assert new.fractions is None and prior.registration is None
    assert case.structures == {"Cord": "SpinalCord", "Parotid L": "Parotid_L"}
    assert (case.clinical.resection, case.clinical.organ_dysfunction) == (True, False)
    assert case.clinical.recurrence_site == "left neck"
    assert "course 'prior'" in prior.fractions_hint


def test_minimal_case_defaults(tmp_path):
    case = load_case(make_case(tmp_path, 'id = "x"\n[[courses]]\nname = "only"\npath = "course1"\n'))
    assert case.recovery_model is None and case.constraints is None and case.structures == {}
    assert case.clinical.resection is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('fractions = 35', 'fractions = 0'), r"courses\[0\]\.fractions: must be a positive integer"),
        (('fractions = 35', 'fractions = "35"'), r"courses\[0\]\.fractions: must be int"),
        (('schedule = "bid"', 'schedule = "weekly"'), r"courses\[1\]\.schedule: must be one of"),
        (('path = "course1"', 'path = "missing"'), r"courses\[0\]\.path: folder .*missing does not exist"),
        (('registration = "course2/reg.dcm"', 'registration = "nope.dcm"'), r"courses\[1\]\.registration"),
        (('"course2/rs.dcm"', '"course2/rs2.dcm"'), r"courses\[1\]\.structure_set: file .*rs2\.dcm does not exist"),
        (('name = "new"', 'name = "prior"'), r"courses\[1\]\.name: 'prior' is used by more than one"),
        (('start_date = "2025-01-14"', 'start_date = "14/01/2025"'), r"courses\[1\]\.start_date: must be a date"),
        (('end_date = 2022-11-02', 'end_date = 2022-09-01'), r"courses\[0\]\.end_date: .* before start_date"),
        (('start_date = "2025-01-14"', 'start_date = 2021-01-14'), r"oldest first"),
        (('id = "HN-demo-01"', ''), r"id: required"),
        (('recovery_model = "simple-25-50"', 'recovery_model = "magic"'), r"recovery_model: no recovery model 'magic'"),
        (('schedule = "bid"', 'schedual = "bid"'), r"courses\[1\]\.schedual: unknown field"),
        (('resection = true', 'resection = "yes"'), r"clinical\.resection: must be bool"),
        (('"Cord" = "SpinalCord"', '"Cord" = 3'), r"structures: must map"),
    ],
)
def test_errors_name_file_and_field(tmp_path, change, message):
    path = make_case(tmp_path, GOOD.replace(*change))
    with pytest.raises(InputError, match=message) as info:
        load_case(path)
    assert str(info.value).startswith(str(path))


def test_not_toml_and_missing(tmp_path):
    with pytest.raises(InputError, match="not valid TOML"):
        load_case(make_case(tmp_path, "id = "))
    with pytest.raises(InputError, match="cannot read case file"):
        load_case(tmp_path / "absent.toml")
    with pytest.raises(InputError, match="courses: give at least one"):
        load_case(make_case(tmp_path, 'id = "x"\n'))
