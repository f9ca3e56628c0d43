"""`reirrad dvh` output: JSON (schema ``reirrad.dvh.v1``), CSV and a Rich table."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from reirrad import __version__
from reirrad.dicom.summation import SummationType
from reirrad.dvh import DvhTable, StructureMetrics
from reirrad.masks import GAP_FACTOR, MAX_FACTOR, SAMPLE_BUDGET
from reirrad.metrics import parse_metric
from reirrad.report import rounded

if TYPE_CHECKING:  # rich is imported by the table functions only (JSON and CSV do not load it)
    from rich.console import Console

SCHEMA = "reirrad.dvh.v1"
DIGITS = 4  # decimals kept in JSON and CSV (0.1 mGy, 0.1 mm3)
NOT_EVALUATED = "n/e"


def _round(value: float | None) -> float | None:
    return rounded(value, DIGITS)


def assumptions(table: DvhTable) -> dict:
    """How the numbers were obtained (reported with every DVH)."""
    return {
        "end_caps": "each contour plane extends half way to its neighbours; the first and last "
        + ("extend half a contour spacing" if table.end_caps == "half" else "do not extend (no end caps)")
        + f"; gaps wider than {GAP_FACTOR:g} x the spacing hold no volume; a single plane is one "
        "dose frame thick",
        "in_plane": "even-odd rule over all contours of a plane (holes, islands)",
        "sampling": f"lattice aligned to the dose grid, up to {MAX_FACTOR} x {MAX_FACTOR} samples "
        f"per voxel in-plane, chosen per structure for about {SAMPLE_BUDGET} samples; slabs split "
        "into sub-planes of the same pitch; plane areas scaled to the exact polygon areas",
        "dose": "trilinear interpolation; contour vertices are extra zero-volume samples for Dmin/Dmax",
        "outside_grid": "volume from the full contours; dose metrics from the part inside the dose grid, with a note",
        "relative_volume": "Dx% and VxGy[%] are relative to the volume inside the dose grid",
        "dose_summation_type": table.dose_summation_type,
        "eqd2": table.eqd2,
    }


def structure_dict(row: StructureMetrics) -> dict:
    """One structure as the JSON ``structures`` entry."""
    return {
        "name": row.name,
        "roi_number": row.roi_number,
        "evaluated": row.evaluated,
        "volume_cc": _round(row.volume_cc),
        "in_grid_volume_cc": _round(row.in_grid_volume_cc),
        "metrics": {name: _round(value) for name, value in row.values.items()},
        "notes": list(row.notes),
    }


def to_json(table: DvhTable) -> str:
    """The whole table as indented JSON text."""
    document = {
        "schema": SCHEMA,
        "reirrad_version": __version__,
        "dose_file": table.dose_file,
        "structure_file": table.structure_file,
        "dose_quantity": table.quantity.name,
        "dose_alpha_beta_gy": table.quantity.alpha_beta_gy,
        "dose_alpha_beta_source": table.quantity.source,
        "units": {name: parse_metric(name).unit for name in table.metrics},
        "assumptions": assumptions(table),
        "structures": [structure_dict(row) for row in table.structures],
    }
    return json.dumps(document, indent=2) + "\n"


def to_csv(table: DvhTable) -> str:
    """Long format: one row per structure and metric (``Volume`` first); empty value = n/e."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["structure", "roi_number", "metric", "value", "unit", "note"])
    for row in table.structures:
        notes = "; ".join(row.notes)
        writer.writerow(
            [row.name, row.roi_number, "Volume", _round(row.volume_cc) if row.evaluated else "", "cc", notes]
        )
        for name, value in row.values.items():
            reason = next((n for n in row.notes if n.startswith(f"{name} not evaluated")), "")
            value_text = "" if value is None else _round(value)
            writer.writerow([row.name, row.roi_number, name, value_text, parse_metric(name).unit, reason])
    return out.getvalue()


def quantity_text(table: DvhTable) -> str:
    """The dose quantity for people: "physical dose", "EQD2, a/b 3 Gy (RTDOSE description)", ..."""
    quantity = table.quantity
    if quantity.alpha_beta_gy is None:
        return "physical dose" if quantity.name == "physical" else quantity.name
    return f"{quantity.name}, a/b {quantity.alpha_beta_gy:g} Gy ({quantity.source})"


def column_head(metric: str) -> str:
    """A metric's column head with its unit once: D95% (Gy), V20Gy [cc], V20Gy[%] (already in %)."""
    unit = parse_metric(metric).unit
    return metric if unit == "Gy" or metric.endswith(f"[{unit}]") else f"{metric} [{unit}]"


def _cell(value: float | None) -> str:
    return NOT_EVALUATED if value is None else f"{value:.2f}"


def render_table(table: DvhTable, console: Console) -> None:
    """Print the metrics as a Rich table, then every structure's notes."""
    from rich.table import Table
    from rich.text import Text

    title = f"DVH metrics ({quantity_text(table)}, Gy) - {table.dose_file}"
    if table.eqd2:
        title += f" - {table.eqd2['fractions']} fx"
    grid = Table(title=title)
    grid.add_column("Structure", no_wrap=True)
    grid.add_column(Text("Volume [cc]"), justify="right")  # Text: "[cc]" is no markup tag
    for name in table.metrics:
        grid.add_column(Text(column_head(name)), justify="right")
    for row in table.structures:
        grid.add_row(row.name, _cell(row.volume_cc), *(_cell(v) for v in row.values.values()))
    console.print(grid)
    for row in table.structures:
        for note in row.notes:
            console.print(f"[bold]{row.name}[/bold]: {note}", highlight=False)
    if table.dose_summation_type in (SummationType.FRACTION, SummationType.BEAM):
        console.print(f"DoseSummationType is {table.dose_summation_type}: doses are not course totals")


def to_text(table: DvhTable, width: int = 160) -> str:
    """The Rich table as plain text (for ``--output`` with the table format)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    render_table(table, console)
    return buffer.getvalue()
