"""A command that fails because ci-nix is being stopped exits as the signal says (130/143),
not as a tool error (2): CI must see an interrupted run, not a broken workspace."""

from __future__ import annotations

import signal
from pathlib import Path

from conftest import Cli
from fakeproc import Call, FakeProc, Reply

from ci_nix.tools import proc


def test_a_git_killed_by_sigterm_is_an_interrupted_run(tmp_path: Path, fake_proc: FakeProc,
                                                      cli: Cli) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def stopped(call: Call) -> Reply:
        proc.cancel(signal.SIGTERM)  # the signal arrives while git runs; git dies of it
        return Reply(returncode=-signal.SIGTERM)

    fake_proc.on("git", "rev-parse", handler=stopped)
    result = cli("matrix", "--all", repo)
    assert result.returncode == 143, result.stderr
    assert "Traceback" not in result.stderr
