"""Helpers the tests share: git in a fixture repo, waiting for a condition (never a fixed
sleep), writing files, a free loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from make_workspace import GIT_ENV, git

__all__ = ["GIT_ENV", "blocked", "check_jsonschema", "commit", "free_port", "git", "json_cases",
           "never_answering", "processes_with", "wait_for", "write"]

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


def commit(repo: Path, message: str = "change", files: Mapping[str, str] | None = None) -> str:
    """Write files (name -> text) into repo, commit everything with message; the new HEAD."""
    for name, text in (files or {}).items():
        write(repo / name, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def check_jsonschema(schema: str, *paths: Path) -> tuple[int, str]:
    """`check-jsonschema --builtin-schema SCHEMA PATHS...` (the test extras' validator), run in
    this process: (exit code, output). The same command and schemas as the executable, without
    its ~1 CPU second of imports per call (a dozen calls in the suite)."""
    from check_jsonschema import main  # type: ignore[import-untyped]
    from click.testing import CliRunner

    done = CliRunner().invoke(main, ["--builtin-schema", schema, *map(str, paths)])
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.exit_code, done.output


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def json_cases(report: Path) -> dict[str, dict[str, Any]]:
    """The cases of a `run --json` report by FLAKE#ATTR."""
    return {f"{c['flake']}#{c['attr']}": c for c in json.loads(report.read_text())["cases"]}


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


def nix_processes_with(marker: str) -> list[int]:
    """processes_with(marker) that are Nix itself (not ci-nix, git or a wrapper whose command
    line holds the same path): what "Nix is evaluating it" waits for."""
    found = []
    for pid in processes_with(marker):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "nix":
                found.append(pid)
        except OSError:
            pass  # gone meanwhile
    return found


@contextlib.contextmanager
def never_answering() -> Iterator[str]:
    """An http URL on 127.0.0.1 whose server takes every connection and never answers: a
    listening socket nobody accepts from (the kernel completes each connection into its queue,
    and the request waits there), so a download of it waits with no process working on it, far
    past any test (Nix gives up on a stalled download after 300 s). Closed on leaving, also when
    the test fails: its queued connections are reset."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/never-answered"


def blocked(url: str) -> str:
    """A Nix expression whose evaluation never ends and costs no CPU meanwhile: a fetch (pure
    evaluation allows it: its hash is given) of a URL that never answers (`never_answering`).
    What an evaluation timeout needs to fire; a test about stopping a Nix that computes spins
    one instead (test_eval_pool's FOREVER)."""
    return f'builtins.fetchurl {{ url = "{url}"; sha256 = "{"0" * 52}"; }}'
