"""The one writer of ci-nix's files: reports (--junit, --json, matrix --output), the GitHub step
summary and $GITHUB_OUTPUT.

Everything written is masked (mask.mask). A report is written whole or not at all: a regular
file is replaced by renaming a complete copy over it, and a report that could not be written
(a full disk) leaves no file behind, not even an earlier run's, and is not announced. The CI's
own files are appended to (other steps write them too) in one write, taken back if it fails.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ci_nix.ci import CiEnv
from ci_nix.errors import CiNixError
from ci_nix.mask import mask
from ci_nix.report.untrusted import log_line

log = logging.getLogger(__name__)


def check_writable(path: Path, what: str = "report") -> None:
    """Fail now, before any work, when path could not be written; creates nothing."""
    existed = path.exists() or path.is_symlink()
    try:
        with open(path, "a"):
            pass
    except OSError as err:
        raise CiNixError(f"cannot write {what} {path}: {err.strerror}; choose a writable "
                         "path") from None
    if not existed:  # an empty file would pass for a report if the run never writes it
        with contextlib.suppress(OSError):
            path.unlink()


def write_file(path: Path, text: str) -> str | None:
    """Write text (masked) to path, whole; the reason it could not be, or None."""
    try:
        _replace(path, mask(text).encode("utf-8"))
    except OSError as err:
        if path.is_file() and not path.is_symlink():
            # An earlier run's report would pass for this run's: none at all is honest.
            with contextlib.suppress(OSError):
                path.unlink()
        return err.strerror or str(err)
    return None


def write_files(files: Sequence[tuple[str, Path, str]], announce: TextIO) -> list[str]:
    """Write each (label, path, text); announce the ones written (`JUnit report: PATH`); the
    problems, one line each, for those that were not."""
    problems = []
    for label, path, text in files:
        problem = write_file(path, text)
        if problem is None:
            # (a path's line break or `::` would start a line the CI runs as a command)
            announce.write(f"{label}: {log_line(str(path))}\n")
        else:
            problems.append(f"cannot write report {path}: {problem}")
    return problems


def _replace(path: Path, data: bytes) -> None:
    """A regular file is replaced by renaming a complete temporary copy over it, so a reader (or
    a second run writing the same report) never sees half; anything else (a symlink,
    /dev/stdout, a pipe) is written in place."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with open(path, "wb") as file:
            file.write(data)
        return
    fd, temporary = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside path (a name no other run or thread takes) with the mode open() gives
    (0666 less the umask, applied by the kernel): the umask is never read by setting it, as it
    is the whole process's and other threads start Nix and git meanwhile (a child started while
    it was 0 would create world-writable files)."""
    for _ in range(100):
        temporary = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def append(path: Path, text: str, what: str) -> bool:
    """Append text (masked) to a file other steps write too, in one write; on failure the file
    is cut back to where it was and a warning names `what`. Whether it was written."""
    data = mask(text).encode("utf-8")
    try:
        with open(path, "ab") as file:
            start = file.tell()
            try:
                file.write(data)
                file.flush()
            except OSError:
                with contextlib.suppress(OSError):
                    file.truncate(start)
                raise
    except OSError as err:
        log.warning("cannot write the %s %s: %s", what, path, err.strerror or err)
        return False
    return True


def step_summary(ci: CiEnv, markdown: str) -> None:
    """Markdown for the GitHub run's summary page, when there is one."""
    if ci.github and ci.step_summary is not None:
        append(ci.step_summary, markdown, "step summary")


def step_outputs(ci: CiEnv, values: dict[str, str]) -> None:
    """`key=value` step outputs for later GitHub steps; values must be one line each."""
    if not (ci.github and ci.output is not None):
        return
    for key, value in values.items():
        if "\n" in value or "\r" in value or "=" in key:
            raise ValueError(f"step output {key!r}: one line, a key without '='")
    append(ci.output, "".join(f"{key}={value}\n" for key, value in values.items()),
           "step outputs file")
