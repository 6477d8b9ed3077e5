"""The human summary printed at the end of a run."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from ci_nix.models import RunReport, Status
from ci_nix.report import failures
from ci_nix.report.untrusted import log_line
from ci_nix.words import count


def write(report: RunReport, out: TextIO) -> None:
    for group in failures.groups(report.cases):
        case = group.lead
        assert case.failure is not None
        # names and messages come from the build: never a terminal control or CI command
        out.write(log_line(f"FAIL {case.flake}#{case.name} [{case.failure.type.value}] "
                           f"{case.failure.message}") + "\n")
        if case.failure.hint:
            out.write(f"     hint: {log_line(case.failure.hint)}\n")
        if group.dependents:
            out.write(f"     {count(len(group.dependents), 'attribute')} failed because of it:\n")
        for dependent in group.dependents:
            out.write(log_line(f"     FAIL {failures.label(dependent)} [dependency]") + "\n")
    for flake, overrides in report.inputs:
        out.write(log_line(f"inputs of {flake} from the workspace: "
                           + "; ".join(o.describe() for o in overrides)) + "\n")
    if report.locked:
        out.write("inputs as flake.lock has them (--locked): workspace checkouts not used\n")
    if report.compared is not None:  # per repo: which base, or taken as checked out
        out.write(f"compared: {log_line(report.compared)}\n")
    for note in report.notes:
        out.write(f"note: {log_line(note)}\n")
    if report.error is not None and not report.cases:
        return  # the error line says it all; "0 attributes in 0 flakes" would only mislead
    out.write(f"ci-nix: {log_line(totals(report))}\n")


def totals(report: RunReport) -> str:
    """`10 attributes in 2 flakes: 6 passed, 4 failed (2 eval, 2 build), 0 skipped`, then the
    flakes skipped whole (`; 1 flake unaffected`): those are no attributes."""
    cases = failures.attributes(report.cases)
    counts = Counter(case.status for case in cases)
    kinds = Counter(case.failure.type.value for case in cases
                    if case.status is Status.FAILED and case.failure is not None)
    skipped, whole = failures.skip_counts(report.cases)
    flakes = "".join(f"; {count(n, 'flake')} {why}" for why, n in sorted(whole.items()))
    return (f"{count(len(cases), 'attribute')} in {count(len(report.suites), 'flake')}: "
            f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed{_breakdown(kinds)}, "
            f"{counts[Status.SKIPPED]} skipped{_breakdown(skipped)}{flakes}")


def _breakdown(counter: Counter[str]) -> str:
    return (" (" + ", ".join(f"{n} {what}" for what, n in sorted(counter.items())) + ")"
            if counter else "")
