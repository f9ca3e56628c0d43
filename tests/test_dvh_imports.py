"""What `reirrad dvh` loads: a physical-dose DVH written as CSV needs numpy and pydicom, never scipy,
matplotlib, rich, numpy.ma (numpy 2's plain np.unique imports it) or numpy.typing (reirrad.eqd2)."""

from __future__ import annotations

from pathlib import Path

from import_probe import loaded_of, run_listing_modules

COURSE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_conventional_reirradiation" / "course1"
NOT_LOADED = ("scipy", "matplotlib", "rich", "numpy.ma", "numpy.typing", "reirrad.eqd2")


def test_a_physical_dvh_loads_no_module_it_does_not_use(tmp_path):
    output = tmp_path / "dvh.csv"
    args = ["dvh", str(COURSE / "dose.dcm"), str(COURSE / "structures.dcm"), "-f", "csv", "-o", str(output)]
    code, modules = run_listing_modules(args)
    assert code == 0 and output.read_text().count("\n") > 5
    assert "numpy" in modules and "pydicom" in modules
    assert loaded_of(modules, NOT_LOADED) == []
