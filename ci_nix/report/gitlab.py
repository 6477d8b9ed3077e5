"""GitLab CI: each failure's log tail in a collapsed job-log section."""

from __future__ import annotations

import re
from typing import TextIO

from ci_nix.models import RunReport

_ESC = "\x1b[0K"  # GitLab's "erase line": hides the section markers in the rendered log


def _section_name(text: str, index: int) -> str:
    # section names: letters, digits, `_`, `.`, `-` only
    return f"ci_nix_{index}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def write(report: RunReport, out: TextIO, now: int) -> None:
    """Collapsed `section_start`/`section_end` blocks; `now` is the Unix time stamped on them."""
    for index, case in enumerate(report.failed):
        assert case.failure is not None
        name = _section_name(f"{case.flake}_{case.name}", index)
        header = (f"FAIL {case.flake}#{case.name} [{case.failure.type.value}] "
                  f"{case.failure.message}")
        out.write(f"{_ESC}section_start:{now}:{name}[collapsed=true]\r{_ESC}{header}\n")
        if case.failure.hint:
            out.write(f"hint: {case.failure.hint}\n")
        if case.failure.log:
            out.write(case.failure.log + "\n")
        out.write(f"{_ESC}section_end:{now}:{name}\r{_ESC}\n")
