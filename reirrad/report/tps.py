"""`reirrad dvh --compare-tps` output: the planning system's DVHs beside reirrad's, as JSON (schema
``reirrad.tps.v1``), CSV, a Rich table and an HTML table (for the `check` report)."""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import TYPE_CHECKING

from reirrad import __version__
from reirrad.report import rounded
from reirrad.tps import TpsComparison, TpsRow

if TYPE_CHECKING:  # rich is imported by the table functions only
    from rich.console import Console

SCHEMA = "reirrad.tps.v1"
DIGITS = 4  # decimals kept in JSON and CSV, as `reirrad dvh`
QUANTITIES = (("volume_cc", "Volume", "cm3"), ("mean_gy", "Dmean", "Gy"), ("max_gy", "Dmax", "Gy"))
SOURCE = (
    "planning system: DVHSequence bins (DVHData, read by dicompyler-core); DVHMinimum/Maximum/MeanDose "
    "are not used (some systems store them in per cent of the prescription)"
)


def row_dict(row: TpsRow) -> dict:
    """One structure as the JSON ``structures`` entry: each quantity with ``tps``, ``reirrad``,
    ``difference`` (reirrad minus planning system) and ``difference_percent``."""
    differences = row.differences()
    entry: dict = {"name": row.name, "roi_number": row.roi_number}
    for key, _, _ in QUANTITIES:
        percent = f"{key.rsplit('_', 1)[0]}_percent"
        entry[key] = {
            "tps": rounded(getattr(row, f"tps_{key}"), DIGITS),
            "reirrad": rounded(getattr(row, key), DIGITS),
            "difference": rounded(differences[key], DIGITS),
            "difference_percent": rounded(differences[percent], 2),
        }
    entry["note"] = row.note
    return entry


def to_json(comparison: TpsComparison) -> str:
    """The comparison as indented JSON text."""
    document = {
        "schema": SCHEMA,
        "reirrad_version": __version__,
        "dose_file": comparison.dose_file,
        "structure_file": comparison.structure_file,
        "end_caps": comparison.end_caps,
        "source": SOURCE,
        "structures": [row_dict(row) for row in comparison.rows],
        "notes": list(comparison.notes),
    }
    return json.dumps(document, indent=2) + "\n"


def to_csv(comparison: TpsComparison) -> str:
    """Long format: one row per structure and quantity; an empty cell is not evaluated."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["structure", "roi_number", "quantity", "unit", "tps", "reirrad", "difference", "difference_percent", "note"]
    )
    for row in comparison.rows:
        entry = row_dict(row)
        for key, label, unit in QUANTITIES:
            values = entry[key]
            writer.writerow(
                [
                    row.name,
                    row.roi_number,
                    label,
                    unit,
                    *(
                        "" if values[k] is None else values[k]
                        for k in ("tps", "reirrad", "difference", "difference_percent")
                    ),
                    row.note,
                ]
            )
    return out.getvalue()


def cells(row: TpsRow) -> list[str]:
    """A table row's texts: per quantity the planning system's value, reirrad's, and the signed
    difference in per cent (two decimals for values, one for per cent; "n/e" when not evaluated)."""
    differences = row.differences()
    out = [row.name]
    for key, _, _ in QUANTITIES:
        ours, percent = getattr(row, key), differences[f"{key.rsplit('_', 1)[0]}_percent"]
        out += [
            f"{getattr(row, f'tps_{key}'):.2f}",
            "n/e" if ours is None else f"{ours:.2f}",
            "-" if percent is None else f"{percent:+.1f} %",
        ]
    return out


HEADERS = (
    "Structure",
    "TPS volume [cm3]",
    "reirrad volume [cm3]",
    "diff",
    "TPS Dmean (Gy)",
    "reirrad Dmean (Gy)",
    "diff",
    "TPS Dmax (Gy)",
    "reirrad Dmax (Gy)",
    "diff",
)


def _footer(comparison: TpsComparison) -> list[str]:
    caps = "half a contour spacing" if comparison.end_caps == "half" else "none"
    return [
        f"reirrad end caps: {caps}; {SOURCE}",
        *(f"{row.name}: {row.note}" for row in comparison.rows if row.note),
        *comparison.notes,
    ]


def render_table(comparison: TpsComparison, console: Console) -> None:
    """Print the comparison as a Rich table, then the notes."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=f"Planning system's DVHs vs reirrad - {comparison.dose_file}")
    for index, head in enumerate(HEADERS):
        grid.add_column(Text(head), justify="left" if index == 0 else "right", no_wrap=index == 0)
    for row in comparison.rows:
        grid.add_row(*cells(row))
    console.print(grid)
    for line in _footer(comparison):
        console.print(Text(line))


def to_text(comparison: TpsComparison, width: int = 160) -> str:
    """The Rich table as plain text (for ``--output`` with the table format)."""
    from rich.console import Console

    buffer = io.StringIO()
    render_table(comparison, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return buffer.getvalue()


NUM = ' class="num"'


def to_html(comparison: TpsComparison) -> str:
    """The comparison as an HTML section (heading, table, notes) for the `check` report."""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td{'' if i == 0 else NUM}>{escape(c)}</td>" for i, c in enumerate(cells(row))) + "</tr>"
        for row in comparison.rows
    )
    notes = "".join(f"<li>{escape(line)}</li>" for line in _footer(comparison))
    return (
        f"<h2>Check against the planning system</h2><p>{escape(comparison.dose_file)}: the planning system's "
        f"own DVHs beside reirrad's of the same dose (difference: reirrad minus planning system).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><ul>{notes}</ul>"
    )
