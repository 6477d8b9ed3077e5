"""A fake at ci-nix's one spawn point (tools/proc.py's `_spawn`), for the in-process tier.

Tests say which commands to answer and how; every other command still runs for real (git, a
fake attic on PATH, or real Nix), unless the fake is strict. Every command started, answered or
not, is recorded in `calls` (argv as ci-nix built it), so a test can assert on what ran.

    def test_x(fake_proc: FakeProc, cli: Cli) -> None:
        fake_proc.on("nix", "path-info", stdout="/nix/store/...\\n")
        fake_proc.on("attic", "push", returncode=1, stderr="401 Unauthorized\\n")
        result = cli("run", "--all", ws)
        assert fake_proc.ran("attic", "push")

The shape of scriv's tests/faker.py: one patch at the one place processes start, the CLI run
in-process by the `cli` fixture (tests/conftest.py).
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ci_nix.errors import Cancelled
from ci_nix.tools import proc


@dataclass(frozen=True)
class Reply:
    """What a faked command prints and how it exits."""

    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


@dataclass
class Call:
    """One command ci-nix started: its argv, its extra env and cwd, and (for a faked command)
    the stdin it was given."""

    argv: tuple[str, ...]
    stdin: str | None
    env: Mapping[str, str]
    cwd: Path | None
    faked: bool


Handler = Callable[[Call], Reply]

_fake_pids = itertools.count(2**22 + 1)  # above Linux's default pid_max: never a real process


class FakePopen:
    """Enough of subprocess.Popen for proc.run/stream/start: the reply's bytes as pipes."""

    def __init__(self, reply: Reply, call: Call) -> None:
        self.pid = next(_fake_pids)
        self.args = list(call.argv)
        self.returncode: int | None = None
        self._reply = reply
        self._call = call
        self.stdout = io.BytesIO(reply.stdout.encode())
        self.stderr = io.BytesIO(reply.stderr.encode())
        self.stdin = None

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes, bytes]:
        if input is not None:
            self._call.stdin = input.decode(errors="replace")
        self.returncode = self._reply.returncode
        return self.stdout.read(), self.stderr.read()

    def wait(self, timeout: float | None = None) -> int:
        self.returncode = self._reply.returncode
        return self.returncode

    def poll(self) -> int | None:
        return self.wait()


def _matches(argv: Sequence[str], words: Sequence[str]) -> bool:
    """argv[0]'s name is words[0] and the other words appear in argv in this order."""
    if not argv or not words or os.path.basename(argv[0]) != words[0]:
        return False
    rest = iter(argv[1:])
    return all(any(arg == word for arg in rest) for word in words[1:])


@dataclass
class FakeProc:
    """The fake installed at proc._spawn; see the module docstring."""

    strict: bool = False  # True: a command no rule answers fails the test instead of running
    calls: list[Call] = field(default_factory=list)
    _rules: list[tuple[tuple[str, ...], Handler]] = field(default_factory=list)
    unexpected: list[tuple[str, ...]] = field(default_factory=list)

    def on(self, *words: str, stdout: str = "", stderr: str = "", returncode: int = 0,
           handler: Handler | None = None) -> None:
        """Answer commands whose program is words[0] and whose argv holds the other words in
        order (`on("nix", "path-info")`); later rules win. `handler` computes the reply."""
        reply = Reply(stdout, stderr, returncode)
        self._rules.insert(0, (words, handler or (lambda call: reply)))

    def ran(self, *words: str) -> list[Call]:
        """The recorded calls matching words (as in `on`)."""
        return [call for call in self.calls if _matches(call.argv, words)]

    def spawn(self, real: Callable[..., subprocess.Popen[bytes]], argv: Sequence[str],
              **kwargs: Any) -> subprocess.Popen[bytes]:
        env = kwargs.get("env") or {}
        call = Call(tuple(argv), None, dict(env), kwargs.get("cwd"), faked=False)
        for words, handler in self._rules:
            if _matches(argv, words):
                signum = proc.cancelled()
                if signum is not None and not kwargs.get("essential"):
                    raise Cancelled(signum)  # as the real spawn does after SIGINT/SIGTERM
                call.faked = True
                self.calls.append(call)
                proc.log.info("$ %s", proc._describe(argv))
                fake = FakePopen(handler(call), call)
                return cast("subprocess.Popen[bytes]", fake)
        self.calls.append(call)
        if self.strict:
            self.unexpected.append(tuple(argv))
            raise AssertionError(f"fake_proc (strict): nothing answers {list(argv)}")
        return real(argv, **kwargs)


def install(fake: FakeProc, monkeypatch: Any) -> FakeProc:
    """Patch proc's spawn point (and its group kill, which must not signal a fake pid)."""
    real_spawn = proc._spawn
    real_kill = proc._kill_group

    def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return fake.spawn(real_spawn, argv, **kwargs)

    def kill_group(popen: subprocess.Popen[bytes], sig: int) -> None:
        if not isinstance(popen, FakePopen):
            real_kill(popen, sig)

    monkeypatch.setattr(proc, "_spawn", spawn)
    monkeypatch.setattr(proc, "_kill_group", kill_group)
    return fake
