"""The one exit-code policy (reirrad.verdicts): a check's summary, its JUnit output and a batch agree."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reirrad.verdicts import ExitCode, FailOn, batch_exit_code, exit_code, failure, nothing_judged


@dataclass(frozen=True)
class Result:
    status: str
    has_threshold: bool = True


@pytest.mark.parametrize(
    ("statuses", "fail_on", "allow_missing", "expected"),
    [
        (("pass", "warn"), FailOn.FAIL, False, ExitCode.OK),
        (("pass", "warn"), FailOn.WARN, False, ExitCode.FAIL),
        (("pass", "fail"), "fail", False, ExitCode.FAIL),
        (("pass", "not_evaluated"), FailOn.FAIL, False, ExitCode.FAIL),
        (("pass", "not_evaluated"), FailOn.FAIL, True, ExitCode.OK),
        (("not_evaluated",), FailOn.FAIL, True, ExitCode.FAIL),  # nothing judged never passes
    ],
)
def test_exit_code(statuses, fail_on, allow_missing, expected):
    assert exit_code([Result(s) for s in statuses], fail_on, allow_missing) is expected


def test_report_only_results_never_fail_and_never_count_as_judged():
    report_only = Result("not_evaluated", has_threshold=False)
    assert failure(report_only) is None and failure(Result("fail", has_threshold=False)) == "fail"
    assert nothing_judged([report_only, Result("pass", has_threshold=False)])
    assert failure(Result("warn"), "warn") == "warn" and failure(Result("warn")) is None


def test_batch_exit_code_prefers_internal_then_input_errors():
    assert batch_exit_code([0, 1, None]) == 1
    assert batch_exit_code([1, 2, 0]) == ExitCode.INPUT
    assert batch_exit_code([2, 3, 1]) == ExitCode.INTERNAL
    assert batch_exit_code([None]) == ExitCode.OK


def test_junit_failures_follow_the_same_policy():
    from pathlib import Path

    from reirrad.case import load_case
    from reirrad.check import CheckOptions, run_check
    from reirrad.report.junit import test_suite

    case = Path(__file__).resolve().parents[1] / "sample_plans" / "hn_sbrt_reirradiation" / "case.toml"
    report = run_check(load_case(case))
    for fail_on in FailOn:
        for allow_missing in (False, True):
            suite = test_suite(report, fail_on, allow_missing)
            expected = sum(failure(r, fail_on, allow_missing) is not None for r in report.results)
            assert int(suite.get("failures")) == expected > 0
            assert exit_code(report.results, fail_on, allow_missing) == ExitCode.FAIL
    assert report.summary.exit_code == exit_code(report.results, CheckOptions().fail_on, False)
