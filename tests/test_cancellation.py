"""SIGTERM/SIGINT during a build: Nix stops, finished results are kept, the rest is cancelled.
The build runs while the flake's last attribute is still evaluated (README "How `run` works"):
that evaluation stops too, and the report says the flake's evaluation did not end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo
from helpers import processes_with, wait_for

pytestmark = pytest.mark.nix

FLAKE = """{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; PATH = "/usr/bin:/bin"; };
  in {
    packages.x86_64-linux.quick = sh "quick" "echo @NONCE@ > $out";
    packages.x86_64-linux.slow = sh "slow" "echo started; sleep 300 # @NONCE@";
    # evaluated last (name order), and never done: it imports from a derivation that sleeps
    packages.x86_64-linux.zlate = sh (import (sh "wait" "sleep 300 # eval-@NONCE@")) "";
  };
}
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_build_keeps_results(tmp_path: Path, nix_bin: str, signum: int,
                                           code: int) -> None:
    nonce = uuid.uuid4().hex
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("@NONCE@", nonce))
    junit = tmp_path / "report.xml"
    # max-jobs = 1, set (README "Parallel builds": ci-nix keeps it): quick and slow may share a
    # `nix build`, and Nix says which of its builds finished only while one runs at a time, so
    # quick's PASS line comes before the signal only then
    env = {**os.environ, "NIX_CONFIG": os.environ.get("NIX_CONFIG", "") + "\nmax-jobs = 1\n"}
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", "run", "--all", str(repo),
                             "--junit", str(junit)], stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # the quick one built and reported, the slow one still building
        if line.startswith("PASS repo#packages.x86_64-linux.quick"):
            break
    wait_for(lambda: processes_with(f"# {nonce}"), 60, "the slow builder running")
    wait_for(lambda: processes_with(f"eval-{nonce}"), 60, "zlate's evaluation waiting")
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == code
    err = proc.stderr.read()
    assert "Traceback" not in err

    cases = {tc.get("name"): tc for tc in ET.parse(junit).iter("testcase")}
    assert cases["packages.x86_64-linux.quick"].find("failure") is None
    assert cases["packages.x86_64-linux.quick"].find("skipped") is None
    skipped = cases["packages.x86_64-linux.slow"].find("skipped")
    assert skipped is not None and skipped.get("message") == "cancelled"
    cut = cases["flake.nix"].find("skipped")  # zlate: not evaluated, and not a silent gap
    assert cut is not None and cut.get("message") == "cancelled before its evaluation ended"
    wait_for(lambda: not processes_with(nonce), 30, "no builder or evaluation outliving ci-nix")


def test_a_new_run_starts_uncancelled() -> None:
    # In one process (the in-process CLI, a library user) a cancelled run must not cancel the next.
    from ci_nix.pipeline import Cancellation
    from ci_nix.tools import proc

    proc.cancel(signal.SIGTERM, grace=0)
    try:
        assert proc.cancelled() == signal.SIGTERM
        with Cancellation().installed():
            assert proc.cancelled() is None
            proc.sleep(0)  # does not raise Cancelled
    finally:
        proc.reset_cancellation()


def test_pure_work_inside_pure_work_leaves_the_outer_one_stoppable() -> None:
    # a signal ends the main thread's pure work at once (`ci-nix junit` classifying a log):
    # also after a nested pure_work() inside it ended, and only once for all of them
    from ci_nix.errors import Cancelled
    from ci_nix.tools import proc

    with proc.pure_work():
        with proc.pure_work():
            pass
        with pytest.raises(Cancelled):
            proc.stop_pure_work(signal.SIGTERM)
        proc.stop_pure_work(signal.SIGTERM)  # (a second signal meets the report being written)
    with proc.pure_work(), pytest.raises(Cancelled), proc.pure_work():
        proc.stop_pure_work(signal.SIGINT)
    proc.stop_pure_work(signal.SIGTERM)  # outside any: nothing to end


def test_a_cancellation_ends_a_long_wait_at_once() -> None:
    # Retry waits (cache, forge) sleep through proc.sleep: a signal ends an hour's wait at once,
    # so a cancelled run never waits out a Retry-After or a backoff.
    import threading

    from ci_nix.errors import Cancelled
    from ci_nix.tools import proc

    raised: list[int] = []

    def wait_an_hour() -> None:
        try:
            proc.sleep(3600)
        except Cancelled as err:
            raised.append(err.signum)

    sleeper = threading.Thread(target=wait_an_hour, daemon=True)
    sleeper.start()
    try:
        proc.cancel(signal.SIGTERM, grace=0)
        sleeper.join(timeout=60)  # a guard only: without the cancellation it sleeps an hour
        assert raised == [signal.SIGTERM]
    finally:
        proc.reset_cancellation()


def test_a_command_starting_as_the_signal_comes_is_stopped_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker thread may be starting a Nix process at the moment SIGINT/SIGTERM arrives: the
    cancellation must refuse it or stop it with the rest. One the cancellation missed kept
    evaluating and its thread kept waiting: ci-nix hung (test_eval_pool's signal test, now and
    then). Here the start is held until the cancellation is through (or 1 s)."""
    import threading

    from ci_nix.errors import Cancelled
    from ci_nix.tools import proc

    nonce = uuid.uuid4().hex
    starting, cancelled = threading.Event(), threading.Event()
    real_popen = subprocess.Popen

    def slow_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        starting.set()
        cancelled.wait(1)  # the cancellation goes first if nothing holds it up
        return real_popen(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "Popen", slow_popen)  # what proc._spawn calls
    outcome: list[object] = []

    def start() -> None:
        try:
            outcome.append(proc.run(["sh", "-c", f"sleep 60 # {nonce}"]).returncode)
        except Cancelled as err:
            outcome.append(err)

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    try:
        assert starting.wait(60)
        proc.cancel(signal.SIGTERM, grace=5)
        cancelled.set()
        worker.join(timeout=30)  # a guard: a missed command keeps it for 60 s
        assert not worker.is_alive(), "the command that started as the signal came still runs"
        assert outcome and outcome[0] != 0, outcome
    finally:
        cancelled.set()
        proc.reset_cancellation()
        for pid in processes_with(nonce):
            os.kill(pid, signal.SIGKILL)
    assert not processes_with(nonce)


def test_each_runs_the_items_side_by_side_and_answers_as_a_loop_would() -> None:
    """proc.each (a workspace's per-repo git calls): the items run at once (each waits here
    until all four have begun: one after another, the first would wait in vain), the results
    come in the items' order, and of two failures the first item's is raised."""
    import threading

    from ci_nix.tools import proc

    together = threading.Barrier(4, timeout=60)

    def work(item: int) -> int:
        together.wait()
        return item * 10

    assert proc.each(work, [1, 2, 3, 4], threads=4) == [10, 20, 30, 40]

    def failing(item: int) -> int:
        if item in (2, 3):
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match="item 2"):
        proc.each(failing, [1, 2, 3, 4], threads=4)


def test_a_query_asked_ahead_leaves_its_failure_to_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """proc.ahead (Nix's version while git reads the repos): the caller waits for it to end,
    and a failure stays on its thread unsaid: the caller asks again where it needs the answer
    and meets the error there."""
    import threading

    from ci_nix.tools import proc

    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    asked, done = threading.Event(), []

    def query() -> None:
        asked.wait(60)
        done.append("asked")
        raise RuntimeError("no nix")

    wait = proc.ahead(query)
    asked.set()
    wait()
    assert done == ["asked"] and raised == []


def test_a_query_asked_ahead_that_ran_out_of_time_is_not_asked_again() -> None:
    """A query that timed out (a Nix that never says its version: QUERY_TIMEOUT) raises from
    the wait: the caller asking again would wait as long a second time."""
    from ci_nix.errors import ToolTimeout
    from ci_nix.tools import proc

    asked: list[str] = []

    def query() -> None:
        asked.append("asked")
        raise ToolTimeout("nix: no answer within 120s")

    wait = proc.ahead(query)
    with pytest.raises(ToolTimeout, match="no answer"):
        wait()
    assert asked == ["asked"]


@pytest.mark.parametrize("killed_step", [True, False])
def test_an_error_the_stop_caused_is_reported_as_the_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_step: bool) -> None:
    """A git call killed by SIGTERM (workspace loading: 'rev-parse' answers nothing) makes the
    step fail with a workspace error ("… is not the root of a git checkout; point 'path:' at
    …"): the JUnit report must say the run was cancelled, first, not send the user to fix a
    ci-nix.yaml that is fine. A step that stopped for the stop itself (Cancelled) says it once."""
    from ci_nix import pipeline
    from ci_nix.errors import Cancelled, WorkspaceError
    from ci_nix.tools import proc

    def interrupted(*args: object) -> None:
        proc.cancel(signal.SIGTERM, grace=0)  # what the signal watcher does
        if not killed_step:
            raise Cancelled(signal.SIGTERM)
        raise WorkspaceError("repo 'a': /w/a is not the root of a git checkout; point 'path:' "
                             "at the repository's top directory")

    monkeypatch.setattr(pipeline, "_run", interrupted)
    junit = tmp_path / "report.xml"
    try:
        with pytest.raises(Cancelled):
            pipeline.run(pipeline.RunOptions(path=tmp_path, junit=junit))
    finally:
        proc.reset_cancellation()
    error = ET.parse(junit).find(".//error")
    assert error is not None
    message = error.get("message", "")
    if not killed_step:
        assert message == "cancelled by signal 15"
        return
    assert message.startswith("cancelled by signal 15 ("), message
    assert "not the root of a git checkout" in message  # what the stopped step said, after it


def test_a_command_without_a_report_names_the_stop_first(tmp_path: Path, cli: Cli,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`matrix` (no JUnit report): the error line a step the stop cut short raised is printed
    after the stop, not as the run's own error (CI's log showed "ci-nix: error: repo 'a': … is
    not the root of a git checkout; point 'path:' at …" under exit 143)."""
    from ci_nix import pipeline
    from ci_nix.errors import WorkspaceError
    from ci_nix.tools import proc

    def interrupted(*args: object, **kwargs: object) -> None:
        proc.cancel(signal.SIGTERM, grace=0)  # what the signal watcher does
        raise WorkspaceError("repo 'a': /w/a is not the root of a git checkout")

    monkeypatch.setattr(pipeline, "plan", interrupted)
    try:
        result = cli("matrix", "--all", str(tmp_path))
    finally:
        proc.reset_cancellation()
    assert result.returncode == 143
    assert "ci-nix: error: repo 'a'" not in result.stderr
    assert ("ci-nix: cancelled by signal 15 (the step it stopped then failed: repo 'a': /w/a is "
            "not the root of a git checkout)") in result.stderr
