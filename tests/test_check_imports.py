"""What `reirrad check -f json` loads and reads: a case without registration = "auto" needs neither the
automatic registration (reirrad.autoreg) nor the EQD2 export and what it pulls (reirrad.export,
reirrad.deidentify, reirrad.dicom.write), and a constraint set reads the recovery models once per set
file, not once per constraint."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from import_probe import loaded_of, run_listing_modules

from reirrad.constraints import load_constraint_set

CASE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"
NOT_LOADED = ("scipy", "matplotlib", "reirrad.autoreg", "reirrad.export", "reirrad.deidentify", "reirrad.dicom.write")


def test_a_json_check_loads_no_module_it_does_not_use(tmp_path):
    output = tmp_path / "report.json"
    args = ["check", str(CASE), "-f", "json", "-o", str(output)]
    code, modules = run_listing_modules(args)
    report = json.loads(output.read_text())
    assert code in (0, 1) and report["results"]
    assert "reirrad.check" in modules and "reirrad.accumulate" in modules
    assert loaded_of(modules, NOT_LOADED) == []


def test_a_constraint_set_reads_the_recovery_models_once_per_set_file(monkeypatch):
    reads: list[Path] = []
    eqd2 = importlib.import_module("reirrad.eqd2")  # the module (the package's `eqd2` is its function)
    read_toml = eqd2.read_toml

    def counting(path, what):
        reads.append(Path(path))
        return read_toml(path, what)

    monkeypatch.setattr(eqd2, "read_toml", counting)
    cset = load_constraint_set("hn-reirradiation")
    files = {c.set_path for c in cset.constraints}
    assert len(cset.constraints) > 10 and reads
    assert set(reads) == {eqd2.RECOVERY_FILE} and len(reads) == len(cset.lineage) <= len(files)
