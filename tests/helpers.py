"""Helpers the tests share: git in a fixture repo, waiting for a condition (never a fixed
sleep), writing files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from make_workspace import GIT_ENV, git

__all__ = ["GIT_ENV", "git", "processes_with", "wait_for", "write"]

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], within: float, what: str,
             poll: float = 0.05) -> T:
    """Poll condition until it returns something truthy and return that; fail naming `what`
    after `within` seconds. The bound is generous: it only ends a test that would hang."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:.0f}s for {what}")
        time.sleep(poll)


def write(path: Path, text: str) -> Path:
    """path with text in it (parent directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def processes_with(marker: str) -> list[int]:
    """Processes (but this one) whose command line mentions marker, e.g. a test's own temporary
    path or nonce: what a test waits for before it signals, and what must be gone after."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass  # gone meanwhile
    return found
