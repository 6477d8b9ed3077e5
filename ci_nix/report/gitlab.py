"""GitLab CI: each failure's log tail in a collapsed job-log section."""

from __future__ import annotations

from typing import TextIO

from ci_nix.models import RunReport
from ci_nix.report import untrusted

_ESC = "\x1b[0K"  # GitLab's "erase line": hides the section markers in the rendered log


def write(report: RunReport, out: TextIO, now: int) -> None:
    """Collapsed `section_start`/`section_end` blocks; `now` is the Unix time stamped on them."""
    for index, case in enumerate(report.failed):
        assert case.failure is not None
        name = f"ci_nix_{index}_" + untrusted.gitlab_section_name(f"{case.flake}_{case.name}")
        header = (f"FAIL {case.flake}#{case.name} [{case.failure.type.value}] "
                  f"{case.failure.message}")
        # names, messages and the log are the build's text: none of it may forge a marker
        out.write(f"{_ESC}section_start:{now}:{name}[collapsed=true]\r{_ESC}"
                  f"{untrusted.log_line(header)}\n")
        if case.failure.hint:
            out.write(f"hint: {untrusted.log_line(case.failure.hint)}\n")
        if case.failure.log:
            out.write(untrusted.text(case.failure.log) + "\n")
        out.write(f"{_ESC}section_end:{now}:{name}\r{_ESC}\n")
