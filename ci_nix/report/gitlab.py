"""GitLab CI: each failure's log tail in a collapsed job-log section."""

from __future__ import annotations

from typing import TextIO

from ci_nix.models import RunReport
from ci_nix.report import failures, untrusted


def write(report: RunReport, out: TextIO, now: int) -> None:
    """Collapsed `section_start`/`section_end` blocks; `now` is the Unix time stamped on them."""
    for index, group in enumerate(failures.groups(report.cases)):
        case = group.lead  # a root failure's log once, its dependents named in its section
        assert case.failure is not None
        # names, messages and the log are the build's text: none of it may forge a marker
        name = f"ci_nix_{index}_{case.flake}_{case.name}"
        out.write(untrusted.gitlab_section_start(
            name, f"FAIL {case.flake}#{case.name} [{case.failure.type.value}] "
            f"{case.failure.message}", now) + "\n")
        if case.failure.hint:
            out.write(f"hint: {untrusted.log_line(case.failure.hint)}\n")
        for dependent in group.dependents:
            out.write(untrusted.log_line(f"failed because of it: {failures.label(dependent)}")
                      + "\n")
        if case.failure.log:
            out.write("\n".join(untrusted.log_lines(case.failure.log)) + "\n")
        out.write(untrusted.gitlab_section_end(name, now) + "\n")
