"""JUnit XML as the README describes: a testsuite per flake, a testcase per attribute."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import TextIO

import junit_xml

from ci_nix.models import Case, RunReport, Status
from ci_nix.report import failures
from ci_nix.report.untrusted import xml

ERROR_SUITE = "ci-nix"


def _case(case: Case, root: Case | None = None) -> junit_xml.TestCase:
    """root: the failure this one is a dependent of; its message points there and the root's
    log is not repeated."""
    # every text is the build's: characters XML cannot hold are escaped, not dropped
    test = junit_xml.TestCase(name=xml(case.name, attribute=True),
                              classname=xml(case.flake, attribute=True),
                              elapsed_sec=case.time)
    if case.status is Status.FAILED and case.failure is not None:
        failure = case.failure
        text = failure.log
        if root is not None:
            failure = replace(failure, message=f"{failure.message}; root failure: "
                                               f"{failures.label(root)}")
            text = f"the log is on {failures.label(root)}"
        if failure.hint:
            text = f"hint: {failure.hint}\n\n{text}" if text else f"hint: {failure.hint}"
        # junit-xml writes no <failure> for an empty message and output: a pass
        test.add_failure_info(message=xml(failure.message, attribute=True) or failure.type.value,
                              output=xml(text),
                              failure_type=failure.type.value)
    elif case.status is Status.SKIPPED:
        test.add_skipped_info(message=xml(case.skip_reason or "skipped", attribute=True))
    return test


def _properties(case: Case) -> list[tuple[str, str]]:
    props = [("drvPath", case.drv_path), ("system", case.system), ("machine", case.machine)]
    failure = case.failure
    if failure is not None and failure.file:
        # a file of another workspace repo than the flake's is named with its repo
        other = failure.repo is not None and failure.repo != case.flake.split("/", 1)[0]
        where = (f"{failure.repo}/" if other else "") + failure.file
        where += f":{failure.line}" if failure.line else ""
        props.append(("file", where))
    return [(name, xml(value, attribute=True)) for name, value in props if value]


def suites(report: RunReport) -> list[junit_xml.TestSuite]:
    by_flake: dict[str, list[Case]] = {name: [] for name in report.suites}
    for case in report.cases:
        by_flake.setdefault(case.flake, []).append(case)
    roots = failures.root_of(report.cases)
    result = [junit_xml.TestSuite(name=xml(name, attribute=True),
                                  test_cases=[_case(c, roots.get((c.flake, c.name)))
                                              for c in cases])
              for name, cases in by_flake.items()]
    if report.error is not None:
        error_case = junit_xml.TestCase(name="ci-nix", classname=ERROR_SUITE)
        error_case.add_error_info(message=xml(report.error, attribute=True), error_type="ci-nix")
        result.append(junit_xml.TestSuite(name=ERROR_SUITE, test_cases=[error_case]))
    return result


def _ordered_cases(report: RunReport) -> list[Case]:
    """Cases in the order suites() writes them."""
    by_flake: dict[str, list[Case]] = {name: [] for name in report.suites}
    for case in report.cases:
        by_flake.setdefault(case.flake, []).append(case)
    return [case for cases in by_flake.values() for case in cases]


def write(report: RunReport, out: TextIO) -> None:
    # junit-xml has no per-testcase <properties>: add them to the tree it builds, in its order
    root = ET.fromstring(junit_xml.to_xml_report_string(suites(report), encoding="utf-8"))
    for suite in root.findall("./testsuite"):
        # which inputs the flake was evaluated with, where they were not flake.lock's
        overrides = dict(report.inputs).get(suite.get("name", ""), ())
        if overrides:
            holder = ET.Element("properties")
            for override in overrides:
                ET.SubElement(holder, "property", name="override", value=override.describe())
            suite.insert(0, holder)
    elements = root.findall("./testsuite/testcase")
    # not strict: the error suite's test case, if any, comes last and has no Case
    for element, case in zip(elements, _ordered_cases(report), strict=False):
        props = _properties(case)
        if props:
            holder = ET.Element("properties")
            for name, value in props:
                ET.SubElement(holder, "property", name=name, value=value)
            element.insert(0, holder)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="utf-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
