"""What `reirrad dvh` loads: a physical-dose DVH written as CSV needs numpy and pydicom, never scipy,
matplotlib, rich, numpy.ma (numpy 2's plain np.unique imports it) or numpy.typing (reirrad.eqd2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_conventional_reirradiation" / "course1"
NOT_LOADED = ("scipy", "matplotlib", "rich", "numpy.ma", "numpy.typing", "reirrad.eqd2")

PROBE = """
import json, sys
from reirrad.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_a_physical_dvh_loads_no_module_it_does_not_use(tmp_path):
    output = tmp_path / "dvh.csv"
    args = ["dvh", str(COURSE / "dose.dcm"), str(COURSE / "structures.dcm"), "-f", "csv", "-o", str(output)]
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["code"] == 0 and output.read_text().count("\n") > 5
    assert "numpy" in probe["modules"] and "pydicom" in probe["modules"]
    loaded = [m for m in probe["modules"] if m in NOT_LOADED or m.startswith(tuple(f"{n}." for n in NOT_LOADED))]
    assert loaded == []
