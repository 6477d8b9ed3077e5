"""The human summary printed at the end of a run."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from ci_nix.models import RunReport, Status


def write(report: RunReport, out: TextIO) -> None:
    counts = Counter(case.status for case in report.cases)
    for case in report.cases:
        if case.status is Status.FAILED and case.failure is not None:
            out.write(f"FAIL {case.flake}#{case.name} [{case.failure.type.value}] "
                      f"{case.failure.message}\n")
            if case.failure.hint:
                out.write(f"     hint: {case.failure.hint}\n")
    skipped = Counter(case.skip_reason or "skipped" for case in report.cases
                      if case.status is Status.SKIPPED)
    for note in report.notes:
        out.write(f"note: {note}\n")
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    out.write(f"ci-nix: {len(report.cases)} attributes in {len(report.suites)} flakes: "
              f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
              f"{counts[Status.SKIPPED]} skipped" + (f" ({reasons})" if reasons else "") + "\n")
