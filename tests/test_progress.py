"""Progress while Nix builds: lines in a CI log during a long build, -L, and a terminal's status.

The real-Nix tests build a derivation that blocks until the test has seen what it waits for
(the status line a silent build must bring, on stderr or on a terminal's screen) and then
lets it finish: event-driven, never a fixed sleep or a stopwatch. How often the status line
comes is a fake-clock test below.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import ghrunner
import pytest
from conftest import flake_repo
from helpers import wait_for

from ci_nix.errors import ConfigError
from ci_nix.models import Case, Flake, Job, Repo, Status, Target
from ci_nix.report import progress
from ci_nix.tools import nixlog

# The builder waits (polling a file the test creates) instead of sleeping a fixed time.
FLAKE = """{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; PATH = "/usr/bin:/bin"; };
  in {
    packages.x86_64-linux.slow = sh "slow" ''
      echo "starting @NONCE@"; while [ ! -e @GO@ ]; do sleep 0.1; done
      echo "halfway"; echo done > $out'';
    packages.x86_64-linux.quick = sh "quick" "echo '::warning::not a command'; echo @NONCE@ > $out";
  };
}
"""


@pytest.fixture
def slow_flake(tmp_path: Path, nix_bin: str) -> Path:
    text = FLAKE.replace("@NONCE@", uuid.uuid4().hex).replace("@GO@", str(tmp_path / "go"))
    return flake_repo(tmp_path / "slow", text)


def release(flake: Path) -> None:
    """Let the slow builder finish."""
    (flake.parent / "go").touch()


@contextmanager
def released_at_exit(flake: Path) -> Iterator[None]:
    try:
        yield
    finally:
        release(flake)  # a failed assertion must not leave the builder waiting forever


def run_until(args: list[str | Path], env: dict[str, str],
              then: Callable[[str], bool]) -> tuple[int, list[str]]:
    """Run the CLI as a process; call `then` with each stderr line as it arrives (the line that
    makes it return True releases the builder). Returns the exit code and stderr + stdout."""
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    assert proc.stderr is not None and proc.stdout is not None
    stdout = proc.stdout
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
    reader.start()
    lines = []
    for line in proc.stderr:
        lines.append(line.rstrip("\n"))
        then(lines[-1])
    proc.wait(timeout=300)
    reader.join()
    return proc.returncode, lines + ["stdout: " + line for line in out[0].splitlines()]


CI_PLAIN = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "CI": "true"}
SLOW = "slow#packages.x86_64-linux.slow"


@pytest.mark.slow
@pytest.mark.nix
def test_a_silent_build_brings_status_lines_and_l_streams_the_builder(slow_flake: Path) -> None:
    # GitHub Actions, -L: the builder prints one line, then stays silent until the test has seen
    # the status line that silence must bring, then prints another. So the status line came
    # while the build ran, and so did the builder's lines (it could not finish before).
    seen: list[str] = []

    def on_line(line: str) -> bool:
        if line.startswith("ci-nix: [") and f"building {SLOW} (" in line:
            seen.append(line)
            release(slow_flake)
        return bool(seen)

    # a 1 s status interval (CI_NIX_STATUS_INTERVAL) instead of the default 8 s of waiting
    with released_at_exit(slow_flake):
        code, texts = run_until(["run", "--all", slow_flake, "-L"], dict(
            CI_PLAIN, GITHUB_ACTIONS="true", CI_NIX_STATUS_INTERVAL="1"), on_line)
    assert code == 0, "\n".join(texts)
    assert seen, texts
    starting = texts.index(next(t for t in texts if "slow> starting" in t))
    assert texts[starting].startswith(f"{SLOW}> starting ")
    assert texts[starting - 2] == f"::group::{SLOW}: builder output"
    assert texts[starting - 1].startswith("::stop-commands::ci-nix-")
    status, halfway = texts.index(seen[0]), texts.index(f"{SLOW}> halfway")
    assert starting < status < halfway
    # the group was closed before the status line, so it is not hidden in a collapsed group
    assert texts[status - 1] == "::endgroup::"
    # a builder's line that looks like a workflow command is shown, and not run as one
    assert "slow#packages.x86_64-linux.quick> ::warning::not a command" in texts
    runner = ghrunner.Runner()
    runner.feed("\n".join(t.removeprefix("stdout: ") for t in texts))
    groups = texts.count("::endgroup::")
    assert groups and runner.names() == ["group", "stop-commands", "resume", "endgroup"] * groups
    assert any(t.startswith(f"PASS {SLOW} (") for t in texts)
    assert not any("\r" in t or "\x1b[" in t for t in texts)  # nothing rewrites a line


@pytest.mark.slow
@pytest.mark.nix
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_terminal_shows_a_live_status(slow_flake: Path, nix_bin: str, tmp_path: Path) -> None:
    session = f"ci-nix-{uuid.uuid4().hex[:8]}"
    env = [f"{k}={v}" for k, v in {
        "CI_NIX_NIX": nix_bin, "NIX_CONFIG": os.environ["NIX_CONFIG"], "TERM": "xterm",
        "PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parent.parent)}.items()]
    command = ["env", "-i", *env, sys.executable, "-m", "ci_nix", "run", "--all",
               str(slow_flake)]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "20",
                    *command, ";", "set-option", "remain-on-exit", "on"], check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    def status(text: str) -> str | None:
        """The status line while the slow attribute builds (before: evaluation, the quick one)"""
        return next((line for line in text.splitlines() if line.startswith("ci-nix: [")
                     and f"building {SLOW} (" in line), None)

    try:
        with released_at_exit(slow_flake):
            # the status line, then the same line redrawn with a later time: a live status
            first = wait_for(lambda: status(screen()), 120, "a status line on the terminal")

            def redrawn() -> str | None:
                text = screen()
                return text if status(text) not in (None, first) else None

            last = wait_for(redrawn, 60, "the status line redrawn")
        assert last.count("ci-nix: [") == 1  # redrawn in place, not a line per second
        (tmp_path / "screen.txt").write_text(last)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_the_status_interval_is_a_positive_number_of_seconds() -> None:
    assert progress.interval_of({}) == progress.INTERVAL == 8
    assert progress.interval_of({"CI_NIX_STATUS_INTERVAL": "0.5"}) == 0.5
    for bad in ("abc", "0", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match=f"CI_NIX_STATUS_INTERVAL='{bad}': expected a "
                                              "positive number of seconds, e.g. 8"):
            progress.interval_of({"CI_NIX_STATUS_INTERVAL": bad})


def test_a_silent_build_brings_a_status_line_at_least_every_interval() -> None:
    # 30 s of silence from Nix, the ticker's half-second beat on a fake clock: status lines come
    # after `interval` of silence each, so a CI log never goes 10 s without a line.
    now = [0.0]
    out = io.StringIO()
    stamps: list[float] = []

    class Stamped(io.StringIO):
        def write(self, text: str) -> int:
            stamps.append(now[0])
            return out.write(text)

    display = progress.Display(Stamped(), live=False, clock=lambda: now[0])
    monitor = progress.BuildMonitor([_job("a", "/nix/store/aaa-a.drv")], display,
                                    clock=lambda: now[0])
    feed(monitor, nixlog.LogParser(), '@nix {"action":"start","id":2,"type":105,"fields":'
         '["/nix/store/aaa-a.drv","",1,1],"text":"building","level":3}')
    while now[0] < 30:
        now[0] += 0.5
        monitor.tick()
    # the build's start, then a status line after each 8 s of silence
    assert stamps == [0.0, 8.0, 16.0, 24.0], out.getvalue()
    assert max(b - a for a, b in zip(stamps, [*stamps[1:], 30.0], strict=True)) < 10
    assert progress.INTERVAL + 0.5 < 10  # the beat's lateness included
    assert out.getvalue().splitlines()[-1] == (
        "ci-nix: [24 s] building f#packages.x86_64-linux.a (24 s); 0 of 1 derivation built; "
        "1 to go")


def test_a_silent_build_in_a_github_group_gets_its_status_line_at_once_after_the_group() -> None:
    # -L on GitHub: a builder line opened a group; after `interval` of silence the group is
    # closed (a status line must not hide in a collapsed group) and the status line follows at
    # once: the end marker is no line a reader sees, so it must not restart the interval.
    now = [0.0]
    out = io.StringIO()
    display = progress.Display(out, live=False, ci="github", clock=lambda: now[0])
    monitor = progress.BuildMonitor([_job("a", "/nix/store/aaa-a.drv")], display,
                                    clock=lambda: now[0], print_logs=True)
    parser = nixlog.LogParser()
    feed(monitor, parser, '@nix {"action":"start","id":2,"type":105,"fields":'
         '["/nix/store/aaa-a.drv","",1,1],"text":"building","level":3}')
    feed(monitor, parser, '@nix {"action":"result","id":2,"type":101,"fields":["starting"]}')
    while now[0] < 9:
        now[0] += 0.5
        monitor.tick()
    lines = out.getvalue().splitlines()
    assert lines[-2:] == [
        "::endgroup::",
        "ci-nix: [8 s] building f#packages.x86_64-linux.a (8 s); 0 of 1 derivation built; 1 to go"]
    assert "f#packages.x86_64-linux.a> starting" in lines


def _job(name: str, drv: str) -> Job:
    return Job("f", ("packages", "x86_64-linux", name), "x86_64-linux", drv, (("out", "/o"),))


def feed(monitor: progress.BuildMonitor, parser: nixlog.LogParser, line: str) -> None:
    """One internal-json line to the monitor, as build.py hands it over (events only)."""
    event = parser.parse(line)
    if event is not None:
        monitor.event(event)


def test_counters_name_the_build_that_finished() -> None:
    now = [0.0]
    out = io.StringIO()
    monitor = progress.BuildMonitor([_job("a", "/nix/store/aaa-a.drv")],
                                    progress.Display(out, live=False), clock=lambda: now[0])
    parser = nixlog.LogParser()
    for line in [
        '@nix {"action":"start","id":1,"type":104,"text":"","level":0}',
        '@nix {"action":"start","id":2,"type":105,"fields":["/nix/store/aaa-a.drv","",1,1],'
        '"text":"building","level":3}',
        '@nix {"action":"result","id":1,"type":105,"fields":[0,1,1,0]}',
    ]:
        feed(monitor, parser, line)
    now[0] = 75.0
    assert monitor.status_text() == ("ci-nix: [1 min 15 s] building f#packages.x86_64-linux.a "
                                     "(1 min 15 s); 0 of 1 derivation built; 1 to go")
    feed(monitor, parser, '@nix {"action":"result","id":1,"type":105,"fields":[0,1,0,1]}')
    assert out.getvalue().splitlines()[-1] == "FAIL f#packages.x86_64-linux.a (1 min 15 s)"


def test_print_build_logs_in_gitlab_sections_per_turn() -> None:
    out = io.StringIO()
    monitor = progress.BuildMonitor(
        [_job("a", "/nix/store/aaa-a.drv")], progress.Display(out, live=False, ci="gitlab"),
        print_logs=True)
    parser = nixlog.LogParser()
    for line in [
        '@nix {"action":"start","id":2,"type":105,"fields":["/nix/store/aaa-a.drv","",1,1],'
        '"text":"building","level":3}',
        '@nix {"action":"start","id":3,"type":105,"fields":["/nix/store/bbb-dep-1.0.drv","",1,1],'
        '"text":"building","level":3}',
        '@nix {"action":"result","id":2,"type":101,"fields":["one"]}',
        '@nix {"action":"result","id":2,"type":101,"fields":["two"]}',
        '@nix {"action":"result","id":3,"type":101,"fields":["dep says"]}',
    ]:
        feed(monitor, parser, line)
    monitor._close_group()
    lines = out.getvalue().splitlines()
    assert [line for line in lines if "> " in line] == [
        "f#packages.x86_64-linux.a> one", "f#packages.x86_64-linux.a> two", "dep-1.0> dep says"]
    starts = [line for line in lines if "section_start:" in line]
    ends = [line for line in lines if "section_end:" in line]
    assert len(starts) == len(ends) == 2
    assert "ci_nix_build_1_f_packages.x86_64-linux.a[collapsed=true]" in starts[0]


def test_a_long_evaluation_gets_status_lines_too() -> None:
    now = [0.0]
    out = io.StringIO()
    display = progress.Display(out, live=False)
    display.last_output = 0.0
    monitor = progress.EvalMonitor(3, display, clock=lambda: now[0])
    monitor.flake_started(Target(Flake(Repo("hosts", Path("/w/hosts")), "")))
    now[0] = 5.0
    monitor.tick()
    assert out.getvalue() == ""  # quiet for less than the interval: nothing to add
    now[0] = 12.0
    monitor.tick()
    assert out.getvalue() == "ci-nix: [12 s] evaluating hosts (12 s); 0 of 3 flakes evaluated\n"


def test_builds_that_overlap_the_evaluation_share_its_status_line() -> None:
    # run builds while it evaluates: one status line says both, the evaluation's clock first
    now = [0.0]
    out = io.StringIO()
    display = progress.Display(out, live=False, clock=lambda: now[0])
    builds = progress.BuildMonitor([], display, clock=lambda: now[0])
    builds.add([_job("a", "/nix/store/aaa-a.drv")])  # handed over as it was evaluated
    started = [""]
    monitor = progress.EvalMonitor(3, display, clock=lambda: now[0],
                                   beside=lambda: started[0] and builds.doing())
    monitor.flake_started(Target(Flake(Repo("hosts", Path("/w/hosts")), "")))
    now[0] = 12.0
    monitor.tick()  # no build yet: the evaluation alone
    assert out.getvalue() == "ci-nix: [12 s] evaluating hosts (12 s); 0 of 3 flakes evaluated\n"
    started[0] = "yes"
    feed(builds, nixlog.LogParser(),
         '@nix {"action":"start","id":2,"type":105,"fields":["/nix/store/aaa-a.drv","",1,1],'
         '"text":"building","level":3}')
    assert out.getvalue().splitlines()[-1] == "ci-nix: building f#packages.x86_64-linux.a"
    now[0] = 30.0
    monitor.tick()
    assert out.getvalue().splitlines()[-1] == (
        "ci-nix: [30 s] evaluating hosts (30 s); 0 of 3 flakes evaluated; building "
        "f#packages.x86_64-linux.a (18 s); 0 of 1 derivation built; 1 to go")


def test_cases_get_the_build_time_the_counters_measured() -> None:
    now = [0.0]
    job = _job("a", "/nix/store/aaa-a.drv")
    monitor = progress.BuildMonitor([job], progress.Display(io.StringIO(), live=False),
                                    clock=lambda: now[0])
    parser = nixlog.LogParser()
    feed(monitor, parser, '@nix {"action":"start","id":1,"type":104,"text":"","level":0}')
    feed(monitor, parser, '@nix {"action":"start","id":2,"type":105,'
         '"fields":["/nix/store/aaa-a.drv","",1,1],"text":"building","level":3}')
    now[0] = 7.5
    feed(monitor, parser, '@nix {"action":"result","id":1,"type":105,"fields":[1,1,0,0]}')
    case = Case("f", job.name, Status.PASSED, drv_path=job.drv_path, time=99.0)
    assert [c.time for c in monitor.timed([case])] == [7.5]


def test_status_counts_downloads_while_they_run() -> None:
    out = io.StringIO()
    monitor = progress.BuildMonitor([], progress.Display(out, live=False), clock=lambda: 3.0)
    parser = nixlog.LogParser()
    for line in [
        '@nix {"action":"start","id":5,"type":108,"fields":["/nix/store/aaa-x","https://c"],'
        '"text":"copying path","level":3}',
        '@nix {"action":"start","id":6,"type":101,"fields":["https://c/nar/x.nar.xz"],'
        '"text":"downloading","level":4}',
    ]:
        feed(monitor, parser, line)
    assert monitor.status_text() == "ci-nix: [0 s] waiting for Nix; downloading 2 paths"
    feed(monitor, parser, '@nix {"action":"stop","id":6}')
    assert monitor.status_text().endswith("; downloading 1 path")
