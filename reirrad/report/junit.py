"""`reirrad check` as JUnit XML: one test case per constraint, failures carry the numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reirrad.report import number_text
from reirrad.results import CheckReport, ConstraintResult
from reirrad.verdicts import failure, nothing_judged


def _with_unit(value: float | None, unit: str, absent: str) -> str:
    """``value`` rounded once, as the JSON holds it, with its unit (``absent`` for None)."""
    if value is None:
        return absent
    return number_text(value, unit=unit) + (" Gy" if unit == "Gy" else "")


def _describe(r: ConstraintResult) -> str:
    value = _with_unit(r.value_gy, r.unit, "n/a")
    limit = _with_unit(r.limit_gy, r.unit, "none")
    parts = [
        f"{r.organ} ({r.structure or 'no structure'}) {r.metric} = {value}, limit {limit}",
        f"alpha/beta {r.alpha_beta_gy:g} Gy",
        f"dose basis: {r.dose_basis}",
        "per course: "
        + ", ".join(f"{k} {'n/a' if v is None else number_text(v, unit=r.unit)}" for k, v in r.per_course.items()),
        f"source: {r.source}",
    ]
    if r.discounted is not None:
        shown = _with_unit(r.discounted.value, r.unit, "n/a")
        parts.append(f"discounted by {r.discounted.recovery_model}: {shown}, not judged")
    if r.reason:
        parts.append(f"reason: {r.reason}")
    return "; ".join(parts)


def test_suite(report: CheckReport, fail_on: str = "fail", allow_missing: bool = False) -> ET.Element:
    """One <testsuite> for a case. ``fail`` (and ``warn`` with fail_on='warn') become <failure>;
    results that could not be evaluated become <failure type="not_evaluated"> unless
    allow_missing, then <skipped>; report-only results pass with the value in system-out."""
    suite = ET.Element(
        "testsuite",
        name=f"reirrad.check.{report.case_id}",
        tests=str(len(report.results)),
    )
    failures = skipped = 0
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", classname=f"reirrad.{report.case_id}.{r.organ}", name=f"{r.constraint_id}: {r.metric}"
        )
        text = _describe(r)
        why = failure(r, fail_on, allow_missing)
        if why is not None:
            failures += 1
            detail = r.reason if why == "not_evaluated" else r.mitigation
            ET.SubElement(case, "failure", type=why, message=text).text = detail or text
        elif r.status == "not_evaluated":
            skipped += 1
            ET.SubElement(case, "skipped", message=text)
        ET.SubElement(case, "system-out").text = f"{r.status}: {text}"
    if nothing_judged(report.results):
        failures += 1
        case = ET.SubElement(suite, "testcase", classname=f"reirrad.{report.case_id}", name="any limit judged")
        ET.SubElement(
            case,
            "failure",
            type="nothing_evaluated",
            message="no limit was judged: every constraint with a limit was not evaluated",
        )
        suite.set("tests", str(len(report.results) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    flags = ET.SubElement(suite, "system-out")
    flags.text = "\n".join(f"[{f.severity}] {f.id}: {f.message} Mitigation: {f.mitigation}" for f in report.flags)
    return suite


def error_suite(case_path: str, message: str) -> ET.Element:
    """A <testsuite> for a case that could not be read: one test case with an <error>."""
    suite = ET.Element("testsuite", name=f"reirrad.check.{case_path}", tests="1", failures="0", errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="reirrad.input", name=case_path)
    ET.SubElement(case, "error", type="input", message=message)
    return suite


def not_run_suite(case_path: str) -> ET.Element:
    """A <testsuite> for a case a --fail-fast batch stopped before: one skipped test case."""
    suite = ET.Element("testsuite", name=f"reirrad.check.{case_path}", tests="1", failures="0", errors="0", skipped="1")
    case = ET.SubElement(suite, "testcase", classname="reirrad.not_run", name=case_path)
    ET.SubElement(case, "skipped", message="not run: --fail-fast stopped the batch at a failing case")
    return suite


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_junit(report: CheckReport, fail_on: str = "fail", allow_missing: bool = False) -> str:
    """JUnit XML text of one case."""
    return _document(test_suite(report, fail_on, allow_missing))


def to_junit_batch(
    reports: list[CheckReport],
    errors: list[tuple[str, str]],
    fail_on: str = "fail",
    allow_missing: bool = False,
    not_run: tuple[str, ...] = (),
) -> str:
    """JUnit XML text of a batch: <testsuites> with one <testsuite> per case."""
    root = ET.Element("testsuites", name="reirrad.check")
    root.extend(test_suite(r, fail_on, allow_missing) for r in reports)
    root.extend(error_suite(path, message) for path, message in errors)
    root.extend(not_run_suite(path) for path in not_run)
    return _document(root)
