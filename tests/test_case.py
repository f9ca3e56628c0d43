"""Case file loading: fields, resolved paths, and errors that name the file and the field."""

from __future__ import annotations

import re
from datetime import date

import pytest

from reirrad.case import load_case
from reirrad.errors import InputError, Interface

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
    assert "course 'prior'" in prior.fractions_hint.text(Interface.CLI)


def test_minimal_case_defaults(tmp_path):
    case = load_case(make_case(tmp_path, 'id = "x"\n[[courses]]\nname = "only"\npath = "course1"\n'))
    assert case.recovery_model is None and case.constraints is None and case.structures == {}
    assert case.clinical.resection is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("fractions = 35", "fractions = 0"), r"courses\[0\]\.fractions: must be a positive integer"),
        (("fractions = 35", 'fractions = "35"'), r"courses\[0\]\.fractions: must be int"),
        (('schedule = "bid"', 'schedule = "weekly"'), r"courses\[1\]\.schedule: must be one of"),
        (('path = "course1"', 'path = "missing"'), r"courses\[0\]\.path: folder .*missing does not exist"),
        (('registration = "course2/reg.dcm"', 'registration = "nope.dcm"'), r"courses\[1\]\.registration"),
        (('"course2/rs.dcm"', '"course2/rs2.dcm"'), r"courses\[1\]\.structure_set: file .*rs2\.dcm does not exist"),
        (('name = "new"', 'name = "prior"'), r"courses\[1\]\.name: 'prior' is used by more than one"),
        (('start_date = "2025-01-14"', 'start_date = "14/01/2025"'), r"courses\[1\]\.start_date: must be a date"),
        (("end_date = 2022-11-02", "end_date = 2022-09-01"), r"courses\[0\]\.end_date: .* before start_date"),
        (('start_date = "2025-01-14"', "start_date = 2021-01-14"), r"oldest first"),
        (('id = "HN-demo-01"', ""), r"id: required"),
        (('recovery_model = "simple-25-50"', 'recovery_model = "magic"'), r"recovery_model: no recovery model 'magic'"),
        (('schedule = "bid"', 'schedual = "bid"'), r"courses\[1\]\.schedual: unknown field"),
        (("resection = true", 'resection = "yes"'), r"clinical\.resection: must be bool"),
        (('"Cord" = "SpinalCord"', '"Cord" = 3'), r"structures: must map"),
    ],
)
def test_errors_name_file_and_field(tmp_path, change, message):
    path = make_case(tmp_path, GOOD.replace(*change))
    with pytest.raises(InputError, match=message) as info:
        load_case(path)
    assert str(info.value).startswith(str(path))


def test_every_problem_is_listed(tmp_path):
    """One error names the file and lists each problem of the case file, not only the first."""
    text = GOOD
    for change in (
        ("end_date = 2022-11-02", "end_date = 2022-09-01"),
        ('id = "HN-demo-01"', ""),
        ('schedule = "bid"', 'schedual = "bid"'),
        ("resection = true", 'resection = "yes"'),
        ('recovery_model = "simple-25-50"', 'recovery_model = "magic"'),
    ):
        text = text.replace(*change)
    path = make_case(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_case(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid case file: ") and "\n" not in message
    for fragment in (
        "courses[1].schedual: unknown field",
        "clinical.resection: must be bool",
        "id: required",
        "recovery_model: no recovery model 'magic'",
    ):
        assert fragment in message


def test_not_toml_and_missing(tmp_path):
    with pytest.raises(InputError, match="not valid TOML"):
        load_case(make_case(tmp_path, "id = "))
    with pytest.raises(InputError, match="cannot read case file"):
        load_case(tmp_path / "absent.toml")
    with pytest.raises(InputError, match="courses: give at least one"):
        load_case(make_case(tmp_path, 'id = "x"\n'))


def _one_line_error(path):
    with pytest.raises(InputError) as info:
        load_case(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and len(message) < 400
    return message


def test_not_utf8_and_deep_nesting_are_input_errors(tmp_path):
    path = make_case(tmp_path)
    path.write_bytes(GOOD.replace("left neck", "Lyon").encode() + b'\nnote = "caf\xe9"\n')
    assert "case file is not UTF-8 text" in _one_line_error(path)
    path.write_text("id = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in _one_line_error(path)


def test_byte_order_mark_is_accepted(tmp_path):
    path = make_case(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_case(path).id == "HN-demo-01"


def test_overlapping_courses_are_refused(tmp_path):
    # the new course starts before the prior one ended: the interval would be negative
    text = GOOD.replace('start_date = "2025-01-14"', "start_date = 2022-10-01")
    assert "courses[1]: starts 2022-10-01, before courses[0] ended (2022-11-02): courses overlap" in _one_line_error(
        make_case(tmp_path, text)
    )


def test_parent_folders_are_allowed_and_must_exist(tmp_path):
    case_dir = tmp_path / "cases"
    case_dir.mkdir()
    (tmp_path / "data").mkdir()
    text = 'id = "x"\n[[courses]]\nname = "only"\npath = "../data"\n'
    (case_dir / "case.toml").write_text(text)
    assert load_case(case_dir / "case.toml").courses[0].path.resolve() == (tmp_path / "data").resolve()
    (case_dir / "case.toml").write_text(text.replace("../data", "../../nowhere/data"))
    assert "courses[0].path: folder" in _one_line_error(case_dir / "case.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('path = "course1"', 'path = "loop"'), r"courses\[0\]\.path: folder .*loop is a symlink loop"),
        (('"course2/reg.dcm"', '"loop"'), r"courses\[1\]\.registration: file .*loop is a symlink loop"),
        (
            ('path = "course1"', 'path = "' + "n" * 300 + '"'),
            r"courses\[0\]\.path: folder .* cannot be used \(File name too long\)",
        ),
        (
            ('path = "course1"', 'path = "course\\u0000"'),
            r"courses\[0\]\.path: folder .* cannot be used \(embedded null byte\)",
        ),
        (('"course2/reg.dcm"', '"course1"'), r"courses\[1\]\.registration: file .*course1 is not a regular file"),
        (('path = "course1"', 'path = "course2/rs.dcm"'), r"courses\[0\]\.path: folder .*rs\.dcm is not a folder"),
        (('path = "course1"', 'path = ""'), r"courses\[0\]\.path: required"),
        (('id = "HN-demo-01"', "id = [" + "1, " * 5000 + "]"), r"id: must be str, got \[1, 1,.*\.\.\.$"),
        (('schedule = "bid"', 'schedule = "b\\nid"'), r"courses\[1\]\.schedule: must be one of .*got 'b\\nid'"),
        (('schedule = "bid"', '"sched\\nule" = "bid"'), r"courses\[1\]\.'sched\\nule': unknown field"),
        (("fractions = 35", "fractions = 1.5"), r"courses\[0\]\.fractions: must be int, got 1\.5"),
        (("fractions = 35", "fractions = true"), r"courses\[0\]\.fractions: must be int, got True"),
        (("fractions = 35", "fractions = -3"), r"courses\[0\]\.fractions: must be a positive integer, got -3"),
        (("end_date = 2022-11-02", "end_date = 2022-11-02T08:00:00"), r"courses\[0\]\.end_date: must be a date"),
        (("end_date = 2022-11-02", "end_date = 08:00:00"), r"courses\[0\]\.end_date: must be a date"),
    ],
)
def test_paths_and_values_refused_in_one_short_line(tmp_path, change, message):
    path = make_case(tmp_path, GOOD.replace(*change))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert re.search(message, _one_line_error(path))


def test_batch_records_unreadable_case_files_and_goes_on(tmp_path):
    from reirrad.batch import run_batch

    latin1 = make_case(tmp_path)
    latin1.write_bytes(b'id = "caf\xe9"\n')
    nested = tmp_path / "nested.toml"
    nested.write_text("id = " + "[" * 5000 + "]" * 5000 + "\n")
    batch = run_batch([latin1, nested])
    assert batch.reports == ()
    assert [path for path, _ in batch.errors] == [str(latin1.absolute()), str(nested.absolute())]
    assert "not UTF-8" in batch.errors[0][1] and "nested too deeply" in batch.errors[1][1]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"no-such-set"', r"constraints: no such constraint set file and no built-in set named 'no-such-set'"),
        ('"sets/mine.toml"', r"constraints: no such constraint set file .*'sets/mine\.toml'"),
        ('"' + "s" * 300 + '.toml"', r"constraints: no such constraint set file"),
    ],
)
def test_constraint_set_must_exist_when_the_case_is_read(tmp_path, value, message):
    # `reirrad sum` never loads the set: a case naming a missing one must still be refused
    path = make_case(tmp_path, GOOD.replace('"hn-reirradiation"', value))
    assert re.search(message, _one_line_error(path))


def test_constraint_set_relative_to_the_case_file(tmp_path):
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "mine.toml").write_text("")
    assert (
        load_case(make_case(tmp_path, GOOD.replace('"hn-reirradiation"', '"sets/mine.toml"'))).constraints
        == "sets/mine.toml"
    )


def test_a_case_folder_stands_for_its_case_toml(tmp_path):
    """load_case(FOLDER) reads FOLDER/case.toml; a folder without one is refused, naming what was expected."""
    case = load_case(make_case(tmp_path).parent)
    assert case.path == tmp_path / "case.toml" and case.id == "HN-demo-01"
    with pytest.raises(InputError, match=r"course1: no case\.toml in this folder; give the case file"):
        load_case(tmp_path / "course1")
