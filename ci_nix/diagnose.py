"""Nix output -> typed failures with a one-line message, the log tail and a hint."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ci_nix.models import Failure, FailureType, Flake
from ci_nix.tools.nix import strip_ansi

TAIL_LINES = 40
TAIL_CHARS = 8000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Plain text: no ANSI escapes or control characters (JUnit and XML need this)."""
    return _CONTROL.sub("", strip_ansi(text))


def tail(lines: Iterable[str], max_lines: int = TAIL_LINES, max_chars: int = TAIL_CHARS) -> str:
    """The last lines of a log, cleaned and bounded in size."""
    kept = [clean(line) for line in list(lines)[-max_lines:]]
    text = "\n".join(kept)
    return text if len(text) <= max_chars else "…" + text[-max_chars:]


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_ERROR_LINE = re.compile(r"^\s*error:\s*(.*)$")
_STORE_POS = re.compile(r"(/nix/store/[a-z0-9]{32}-source)(/[^:\s]*)?:(\d+):(\d+)")
_AT_POS = re.compile(r"\bat (?:«[^»]*»|(/[^:\s]+)):(\d+):(\d+)")


def eval_failure(stderr: str, flake: Flake | None = None) -> Failure:
    """An evaluation error from a failed `nix eval`."""
    text = clean(stderr)
    lines = [line for line in text.splitlines() if line.strip()]
    messages = [m.group(1) for m in map(_ERROR_LINE.match, lines) if m and m.group(1).strip()]
    # Nix 2.8+ put the real message after a bare "error:" plus the trace; take the last one.
    message = messages[-1] if messages else (lines[-1] if lines else "evaluation failed")
    if not messages:
        bare = [i for i, line in enumerate(lines) if line.strip() == "error:"]
        if bare and bare[-1] + 1 < len(lines):
            message = lines[bare[-1] + 1].strip()
    file = line_no = column = None
    for match in _STORE_POS.finditer(text):
        file, line_no, column = (match.group(2) or "/").lstrip("/"), int(match.group(3)), int(
            match.group(4))
    if file is not None and flake is not None and flake.subdir:
        file = f"{flake.subdir}/{file}" if not file.startswith(flake.subdir + "/") else file
    where = f" at {file}:{line_no}:{column}" if file is not None else ""
    return Failure(type=FailureType.EVAL, message=_one_line(message + where),
                   log=tail(lines), file=file, line=line_no, column=column)


def simple_eval_failure(message: str) -> Failure:
    return Failure(type=FailureType.EVAL, message=_one_line(message), log=message)


@dataclass(frozen=True)
class BuildError:
    """One error Nix reported while building, tied to the derivation it names."""

    drv: str
    type: FailureType
    message: str
    dependencies: int | None = None


_BUILDER_FAILED = re.compile(
    r"builder for '(?P<drv>/nix/store/[^']+\.drv)' failed with exit code (?P<code>\d+)")
_CANNOT_BUILD = re.compile(
    r"Cannot build '(?P<drv>/nix/store/[^']+\.drv)'\.?\s*Reason:\s*(?P<reason>[^\n]*)", re.S)
_DEPS_FAILED = re.compile(
    r"(?P<n>\d+) dependenc(?:y|ies) of derivation '(?P<drv>/nix/store/[^']+\.drv)' failed to build")


def build_error(message: str) -> BuildError | None:
    """Classify one Nix error message from a build; None when it names no derivation."""
    text = clean(message)
    if m := _BUILDER_FAILED.search(text):
        return BuildError(m["drv"], FailureType.BUILD,
                          f"builder for {_short(m['drv'])} failed with exit code {m['code']}")
    if m := _CANNOT_BUILD.search(text):
        reason = m["reason"].strip().rstrip(".")
        if re.search(r"dependenc", reason):
            return BuildError(m["drv"], FailureType.DEPENDENCY,
                              f"{_short(m['drv'])}: {reason}")
        return BuildError(m["drv"], FailureType.BUILD, f"{_short(m['drv'])}: {reason}")
    if m := _DEPS_FAILED.search(text):
        return BuildError(m["drv"], FailureType.DEPENDENCY,
                          f"{m['n']} dependencies of {_short(m['drv'])} failed to build",
                          int(m["n"]))
    return None


def _short(drv: str) -> str:
    """hello-1.0.drv for /nix/store/<hash>-hello-1.0.drv."""
    name = drv.rsplit("/", 1)[-1]
    return name.split("-", 1)[1] if "-" in name else name
