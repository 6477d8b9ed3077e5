"""Progress while Nix builds: lines in a CI log during a long build, -L, and a terminal's status.

Real Nix builds a derivation that sleeps 24 s; stderr is read as it comes, each line stamped,
and the longest silence is measured.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import ghrunner
import pytest
from conftest import flake_repo

from ci_nix.models import Case, Flake, Job, Repo, Status, Target
from ci_nix.report import progress
from ci_nix.tools import nixlog

FLAKE = """{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; PATH = "/usr/bin:/bin"; };
  in {
    packages.x86_64-linux.slow = sh "slow" ''
      echo "starting @NONCE@"; sleep 12; echo "halfway"; sleep 12; echo done > $out'';
    packages.x86_64-linux.quick = sh "quick" "echo '::warning::not a command'; echo @NONCE@ > $out";
  };
}
"""


def stamped_run(args: list[str | Path], env: dict[str, str]) -> tuple[int, list[tuple[float, str]]]:
    """Run the CLI and stamp each stderr line with the time it arrived."""
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    lines: list[tuple[float, str]] = []
    assert proc.stderr is not None and proc.stdout is not None
    stdout = proc.stdout
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
    reader.start()
    for line in proc.stderr:
        lines.append((time.monotonic(), line.rstrip("\n")))
    proc.wait(timeout=300)
    reader.join()
    lines += [(time.monotonic(), "stdout: " + line) for line in out[0].splitlines()]
    return proc.returncode, lines


def longest_silence_while_building(lines: list[tuple[float, str]]) -> float:
    start = next(t for t, text in lines if text.startswith("ci-nix: building 2 attributes"))
    end = next(t for t, text in lines if text.startswith("ci-nix: built "))
    stamps = [t for t, _ in lines if start <= t <= end]
    assert end - start >= 24
    return max(b - a for a, b in zip(stamps, stamps[1:], strict=False))


@pytest.fixture
def slow_flake(tmp_path: Path, nix_bin: str) -> Path:
    return flake_repo(tmp_path / "slow", FLAKE.replace("@NONCE@", uuid.uuid4().hex))


CI_PLAIN = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "CI": "true"}


@pytest.mark.nix
@pytest.mark.slow
@pytest.mark.parametrize("ci", ["plain", "github"])
def test_a_ci_log_never_goes_quiet_for_12_seconds(slow_flake: Path, ci: str) -> None:
    env = dict(CI_PLAIN, GITHUB_ACTIONS="true") if ci == "github" else CI_PLAIN
    code, lines = stamped_run(["run", "--all", slow_flake], env)
    texts = [text for _, text in lines]
    assert code == 0, "\n".join(texts)
    # the issue asks for a line at least every 10 s; 12 s is the bar it is judged by
    assert longest_silence_while_building(lines) < 10, texts
    status = [t for t in texts if t.startswith("ci-nix: [")]
    assert status and "building slow#packages.x86_64-linux.slow (" in status[-1]
    assert any(t.startswith("PASS slow#packages.x86_64-linux.slow (2") for t in texts)
    assert not any("\r" in t or "\x1b[" in t for t in texts)  # nothing rewrites a line


@pytest.mark.nix
@pytest.mark.slow
def test_print_build_logs_prefixes_lines_and_groups_them_on_github(slow_flake: Path) -> None:
    env = dict(CI_PLAIN, GITHUB_ACTIONS="true")
    code, lines = stamped_run(["run", "--all", slow_flake, "-L"], env)
    texts = [text for _, text in lines]
    assert code == 0, "\n".join(texts)
    starting = texts.index(next(t for t in texts if "slow> starting" in t))
    assert texts[starting].startswith("slow#packages.x86_64-linux.slow> starting ")
    assert texts[starting - 2] == "::group::slow#packages.x86_64-linux.slow: builder output"
    assert texts[starting - 1].startswith("::stop-commands::ci-nix-")
    assert "slow#packages.x86_64-linux.slow> halfway" in texts
    # a builder's line that looks like a workflow command is shown, and not run as one
    assert "slow#packages.x86_64-linux.quick> ::warning::not a command" in texts
    runner = ghrunner.Runner()
    runner.feed("\n".join(t.removeprefix("stdout: ") for t in texts))
    groups = texts.count("::endgroup::")
    assert groups and runner.names() == ["group", "stop-commands", "resume", "endgroup"] * groups
    # the halfway line came while the build ran, not at its end
    halfway = next(s for s, t in lines if t.endswith("> halfway"))
    built = next(s for s, t in lines if t.startswith("ci-nix: built "))
    assert built - halfway > 8


@pytest.mark.nix
@pytest.mark.slow
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
    try:
        screens = []
        for _ in range(40):
            time.sleep(1)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            screens.append(screen)
            if "ci-nix: [1" in screen:  # the status line, redrawn in place, past 10 s
                break
        live = [s for s in screens if "ci-nix: [" in s]
        assert live, screens[-1]
        last = live[-1]
        assert "building slow#packages.x86_64-linux.slow (" in last
        assert last.count("ci-nix: [") == 1  # redrawn in place, not a line per second
        (tmp_path / "screen.txt").write_text(last)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


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
