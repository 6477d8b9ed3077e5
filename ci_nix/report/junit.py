"""JUnit XML as the README describes: a testsuite per flake, a testcase per attribute."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TextIO

import junit_xml

from ci_nix.models import Case, RunReport, Status
from ci_nix.report import failures
from ci_nix.report.untrusted import xml, xml_shown

ERROR_SUITE = "ci-nix"


def _case(case: Case, root: Case | None = None) -> junit_xml.TestCase:
    """root: the failure this one is a dependent of; its message points there and the root's
    log is not repeated."""
    # every text is the build's: characters XML cannot hold are escaped, not dropped; what a
    # reader sees (messages, logs) also shows bidi and invisible characters as escapes, while
    # names stay the attribute path and flake id tools match on
    test = junit_xml.TestCase(name=xml(case.name, attribute=True),
                              classname=xml(case.flake, attribute=True),
                              elapsed_sec=case.time, stdout=xml_shown(case.output) or None)
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
        test.add_failure_info(message=xml_shown(failure.message, attribute=True)
                              or failure.type.value,
                              output=xml_shown(text),
                              failure_type=failure.type.value)
    elif case.status is Status.SKIPPED:
        test.add_skipped_info(message=xml_shown(case.skip_reason or "skipped", attribute=True))
    return test


def _properties(case: Case) -> list[tuple[str, str]]:
    props = [("drvPath", case.drv_path), ("system", case.system), ("machine", case.machine),
             ("closureSize", None if case.closure_size is None else str(case.closure_size)),
             ("digest", case.digest), *(("image", ref) for ref in case.images)]
    if case.eval_cost is not None:
        props += [("eval-seconds", f"{case.eval_cost.seconds:.3f}"),
                  ("eval-memory-mib", f"{case.eval_cost.memory_mib:.1f}")]
    failure = case.failure
    if failure is not None and failure.file:
        # a file of another workspace repo than the flake's is named with its repo
        other = failure.repo is not None and failure.repo != case.flake.split("/", 1)[0]
        where = (f"{failure.repo}/" if other else "") + failure.file
        where += f":{failure.line}" if failure.line else ""
        props.append(("file", where))
    return [(name, value) for name, value in props if value]


def _by_flake(report: RunReport) -> list[tuple[str, list[Case]]]:
    """The report's cases as one suite per flake, in the report's order."""
    by_flake: dict[str, list[Case]] = {name: [] for name in report.suites}
    for case in report.cases:
        by_flake.setdefault(case.flake, []).append(case)
    return list(by_flake.items())


def write(report: RunReport, out: TextIO) -> None:
    """A run's report: one suite per flake, with the inputs each was evaluated with."""
    # which inputs the flake was evaluated with, where they were not flake.lock's
    properties = {flake: [("override", override.describe()) for override in overrides]
                  for flake, overrides in report.inputs}
    write_suites(_by_flake(report), out, report.error, properties)


def write_suites(named: Sequence[tuple[str, Sequence[Case]]], out: TextIO,
                 error: str | None = None,
                 suite_properties: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
    """Suites of cases (named; a case's classname is its `flake`), and a `ci-nix` error suite
    when ci-nix could not do its job. Every report ci-nix writes is this one shape."""
    roots = failures.root_of([case for _, cases in named for case in cases])
    suites = [junit_xml.TestSuite(name=xml(name, attribute=True),
                                  test_cases=[_case(c, roots.get((c.flake, c.name)))
                                              for c in cases])
              for name, cases in named]
    if error is not None:
        error_case = junit_xml.TestCase(name="ci-nix", classname=ERROR_SUITE)
        error_case.add_error_info(message=xml_shown(error, attribute=True), error_type="ci-nix")
        suites.append(junit_xml.TestSuite(name=ERROR_SUITE, test_cases=[error_case]))
    # junit-xml has no per-testcase <properties>: add them to the tree it builds, in its order
    root = ET.fromstring(junit_xml.to_xml_report_string(suites, encoding="utf-8"))
    for suite, (name, _) in zip(root.findall("./testsuite"), named, strict=False):
        _add_properties(suite, (suite_properties or {}).get(name, ()))
    elements = root.findall("./testsuite/testcase")
    # not strict: the error suite's test case, if any, comes last and has no Case
    for element, case in zip(elements, [c for _, cases in named for c in cases], strict=False):
        _add_properties(element, _properties(case))
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="utf-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


def _add_properties(element: ET.Element, properties: Sequence[tuple[str, str]]) -> None:
    if properties:
        holder = ET.Element("properties")
        for name, value in properties:
            ET.SubElement(holder, "property", name=name, value=xml(value, attribute=True))
        element.insert(0, holder)
