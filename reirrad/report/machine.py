"""`reirrad check` as JSON (schema ``reirrad.check.v1``) and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import date

from reirrad.report import DIGITS, rounded
from reirrad.results import CheckReport, ConstraintResult, CourseSummary

SCHEMA = "reirrad.check.v1"


def _number(value: float | None, digits: int = DIGITS) -> float | None:
    return rounded(value, digits)


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def course_dict(course: CourseSummary) -> dict:
    """One course as the JSON ``courses`` entry."""
    return {
        "name": course.name,
        "fractions": course.fractions,
        "prescription_gy": _number(course.prescription_gy),
        "phases": [
            {
                "plan": p.plan_label,
                "fractions": p.fractions,
                "fraction_source": p.fraction_source,
                "plan_fractions": p.plan_fractions,
                "prescription_gy": _number(p.prescription_gy),
                "max_dose_gy": _number(p.max_dose_gy),
            }
            for p in course.phases
        ],
        "files": [{"path": f.path, "sha256": f.sha256} for f in course.files],
        "frame_of_reference": course.frame_of_reference,
        "registration": course.registration,
        "start_date": _iso(course.start_date),
        "end_date": _iso(course.end_date),
        "interval_months": _number(course.interval_months, 1),
        "recovery_model": course.recovery_model,
    }


def result_dict(result: ConstraintResult) -> dict:
    """One constraint verdict as the JSON ``results`` entry."""
    return {
        "id": result.constraint_id,
        "organ": result.organ,
        "structure": result.structure,
        "metric": result.metric,
        "unit": result.unit,
        "alpha_beta_gy": _number(result.alpha_beta_gy),
        "limit_gy": _number(result.limit_gy),
        "warn_gy": _number(result.warn_gy),
        "value_gy": _number(result.value_gy),
        "per_course_gy": {k: _number(v) for k, v in result.per_course.items()},
        "recovery_fraction": {k: _number(v) for k, v in result.recovery.items()},
        "status": result.status,
        "reason": result.reason,
        "priority": result.priority,
        "source_id": result.source_id or None,
        "source": result.source,
        "constraint_set": result.constraint_set,
        "mitigation": result.mitigation or None,
        "notes": list(result.notes),
        "dose_basis": result.dose_basis,
        "discounted": None
        if result.discounted is None
        else {
            "recovery_model": result.discounted.recovery_model,
            "value": _number(result.discounted.value),
            "recovery_fraction": {k: _number(v) for k, v in result.discounted.recovery.items()},
            "judged": False,
        },
        # registration uncertainty (reirrad.robust); None when not requested
        "worst_case_gy": _number(result.worst_case_gy),
        "worst_shift_mm": None if result.worst_shift_mm is None else [_number(v, 2) for v in result.worst_shift_mm],
        "worst_rotation_deg": None
        if result.worst_rotation_deg is None
        else [_number(v, 2) for v in result.worst_rotation_deg],
    }


def report_dict(report: CheckReport) -> dict:
    """The whole report as a JSON-ready dict (design.md's documented shape, plus assumptions)."""
    return {
        "schema": SCHEMA,
        "reirrad_version": report.reirrad_version,
        "case": {
            "id": report.case_id,
            "path": report.case_path,
            "reference_course": report.reference_course,
        },
        "courses": [course_dict(c) for c in report.courses],
        "constraint_set": {
            "name": report.constraint_set_name,
            "version": report.constraint_set_version,
            "title": report.constraint_set_title,
        },
        "assumptions": report.assumptions,
        "results": [result_dict(r) for r in report.results],
        "flags": [dataclasses.asdict(f) for f in report.flags],
        "warnings": list(report.warnings),
        "summary": {**report.summary.counts, "exit_code": report.summary.exit_code},
    }


def to_json(report: CheckReport) -> str:
    """JSON text of the report."""
    return json.dumps(report_dict(report), indent=2, default=str) + "\n"


BATCH_SCHEMA = "reirrad.batch.v1"


def to_json_batch(
    reports: list[CheckReport], errors: list[tuple[str, str]], exit_code: int, not_run: tuple[str, ...] = ()
) -> str:
    """JSON text of a batch: every case's report, the cases that could not be read, the cases a
    --fail-fast run did not reach, the exit code."""
    data = {
        "schema": BATCH_SCHEMA,
        "cases": [report_dict(r) for r in reports],
        "errors": [{"case": path, "error": message} for path, message in errors],
        "not_run": list(not_run),
        "summary": {
            "cases": len(reports) + len(errors) + len(not_run),
            "exit_codes": {r.case_id: r.summary.exit_code for r in reports},
            "exit_code": exit_code,
        },
    }
    return json.dumps(data, indent=2, default=str) + "\n"


CSV_COLUMNS = (
    "case",
    "id",
    "organ",
    "structure",
    "metric",
    "unit",
    "alpha_beta_gy",
    "limit_gy",
    "warn_gy",
    "value_gy",
    "status",
    "reason",
    "priority",
    "source",
    "constraint_set",
    "dose_basis",
    "discounted_value",
    "worst_case_gy",
)


def to_csv(report: CheckReport) -> str:
    """CSV text: one row per result, one column per course contribution after the fixed ones, then
    the result's notes joined by " | " (``notes``)."""
    return to_csv_batch([report])


def to_csv_batch(reports: list[CheckReport]) -> str:
    """CSV text of one or more cases under one header; course columns are the union of names, the
    ``notes`` column last."""
    courses = list(dict.fromkeys(c.name for report in reports for c in report.courses))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"{name}_gy" for name in courses), "notes"])
    for report in reports:
        for r in report.results:
            row = result_dict(r)
            row["discounted_value"] = None if row["discounted"] is None else row["discounted"]["value"]
            fixed = [report.case_id, *(row[c] for c in CSV_COLUMNS[1:])]
            writer.writerow(
                ["" if v is None else v for v in fixed]
                + ["" if row["per_course_gy"].get(n) is None else row["per_course_gy"][n] for n in courses]
                + [" | ".join(r.notes)]
            )
    return buffer.getvalue()
