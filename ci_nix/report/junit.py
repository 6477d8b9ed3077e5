"""JUnit XML per CONTRACT.md: a testsuite per flake, a testcase per attribute."""

from __future__ import annotations

from typing import TextIO

import junit_xml

from ci_nix.models import Case, RunReport, Status

ERROR_SUITE = "ci-nix"


def _case(case: Case) -> junit_xml.TestCase:
    test = junit_xml.TestCase(name=case.name, classname=case.flake, elapsed_sec=case.time)
    if case.status is Status.FAILED and case.failure is not None:
        failure = case.failure
        text = failure.log
        if failure.hint:
            text = f"hint: {failure.hint}\n\n{text}" if text else f"hint: {failure.hint}"
        test.add_failure_info(message=failure.message, output=text,
                              failure_type=failure.type.value)
    elif case.status is Status.SKIPPED:
        test.add_skipped_info(message=case.skip_reason or "skipped")
    return test


def suites(report: RunReport) -> list[junit_xml.TestSuite]:
    by_flake: dict[str, list[Case]] = {name: [] for name in report.suites}
    for case in report.cases:
        by_flake.setdefault(case.flake, []).append(case)
    result = [junit_xml.TestSuite(name=name, test_cases=[_case(c) for c in cases])
              for name, cases in by_flake.items()]
    if report.error is not None:
        error_case = junit_xml.TestCase(name="ci-nix", classname=ERROR_SUITE)
        error_case.add_error_info(message=report.error, error_type="ci-nix")
        result.append(junit_xml.TestSuite(name=ERROR_SUITE, test_cases=[error_case]))
    return result


def write(report: RunReport, out: TextIO) -> None:
    junit_xml.to_xml_report_file(out, suites(report), prettyprint=True, encoding="utf-8")
