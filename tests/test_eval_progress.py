"""Evaluation progress counts attributes: `evaluating: 3 of 6 attributes (slow: 3/6), 1 worker`.

Real Nix evaluates a flake whose attributes each take a moment (a fold over a long list), and the
count is read as the pool reports each attribute; the monitor itself is tested on a fake clock.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ONE_NIX, Cli, flake_repo

from ci_nix import evaluate
from ci_nix.models import Flake, FlakeEval, Repo, Target
from ci_nix.report import progress
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.workspace import load

X86 = "x86_64-linux"
N = 6
COUNT = re.compile(r"ci-nix: evaluat(?:ing|ed): (\d+) of (\d+) attributes \(slow: (\d+)/(\d+)\)"
                   r", 1 worker, \d+ s")


def slow_flake(nonce: str, size: int = 2000000) -> str:
    """N packages, each a fold over `size` numbers before its derivation exists."""
    return f"""{{
  outputs = {{ self }}: {{
    packages.{X86} = builtins.listToAttrs (builtins.genList (n: {{
      name = "p${{toString n}}";
      value = derivation {{
        name = "p${{toString n}}"; system = "{X86}"; builder = "/bin/sh";
        args = [ "-c" "echo > $out" ]; nonce = "{nonce}";
        sum = toString (builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x + n) {size}));
      }};
    }}) {N});
  }};
}}
"""


@pytest.mark.nix
def test_the_count_rises_with_each_attribute_to_n_of_n(tmp_path: Path, nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "slow", slow_flake(os.urandom(4).hex(), size=1000))
    ws = load(repo, Git.from_env())
    out = io.StringIO()
    # Each attribute real Nix reports "takes" a second on the monitor's fake clock, one
    # interval, and the ticker's beat comes right after it: a status line per attribute.
    now = [0.0]
    monitor = progress.EvalMonitor(1, progress.Display(out, live=False, clock=lambda: now[0]),
                                   interval=1.0, workers=1, clock=lambda: now[0])
    calls: list[tuple[str, int, int]] = []

    def on_attr(target: Target, done: int, total: int) -> None:
        calls.append((target.flake.id, done, total))
        monitor.attr_progress(target, done, total)
        now[0] += 1
        monitor.tick()

    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    with monitor.running(tick=3600):  # the beats are on_attr's; running() ends with the count
        [result] = evaluate.evaluate(Nix.from_env(), [Target(ws.flakes[0])], selection,
                                     evaluate.Limits(workers=1), on_flake=monitor.flake_done,
                                     on_start=monitor.flake_started, on_attr=on_attr)
    assert len(result.jobs) == N and not result.cases

    # the total is known from the listing on, and each result adds one
    assert calls[0] == ("slow", 0, N)
    assert [done for _, done, _ in calls] == list(range(N + 1))
    assert all(total == N for _, _, total in calls)

    counts = [tuple(map(int, m.groups())) for m in map(COUNT.match, out.getvalue().splitlines())
              if m]
    assert any(done < N for done, *_ in counts), out.getvalue()  # seen while it ran
    assert counts == sorted(counts)  # never goes back
    assert all(total == N and flake_done == done and flake_total == N
               for done, total, flake_done, flake_total in counts)
    last = out.getvalue().splitlines()[-1]
    assert COUNT.match(last) and last.startswith(f"ci-nix: evaluated: {N} of {N} attributes")


@pytest.mark.nix
def test_a_ci_log_ends_evaluation_with_the_count(tmp_path: Path, nix_bin: str,
                                                 cli: Cli) -> None:
    repo = flake_repo(tmp_path / "slow", slow_flake(os.urandom(4).hex(), size=1000))
    result = cli("matrix", "--all", repo, "--format", "json", "--workers", "1",
                 env={"CI": "true"}, timeout=300)
    assert result.returncode == 0, result.stderr
    counts = [m.groups() for m in map(COUNT.match, result.stderr.splitlines()) if m]
    assert counts and counts[-1] == (str(N), str(N), str(N), str(N)), result.stderr
    assert "\r" not in result.stderr  # a CI log: no line is rewritten


# One Nix: this proves the terminal's status line (one line redrawn in place, gone at the end);
# the count it shows is read from each Nix version by test_the_count_rises_with_each_attribute_
# to_n_of_n and test_a_ci_log_ends_evaluation_with_the_count, on both. (Its evaluation is slow on
# purpose, some seconds of CPU in tmux's process, which the suite's own accounting never saw.)
@pytest.mark.slow
@pytest.mark.nix
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
@ONE_NIX
def test_a_terminal_shows_the_count_on_its_status_line(tmp_path: Path, nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "slow", slow_flake(os.urandom(4).hex(), size=2000000))
    session = f"ci-nix-{os.urandom(4).hex()}"
    env = [f"{k}={v}" for k, v in {
        "CI_NIX_NIX": nix_bin, "NIX_CONFIG": os.environ["NIX_CONFIG"], "TERM": "xterm",
        "PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parent.parent)}.items()]
    command = ["env", "-i", *env, sys.executable, "-m", "ci_nix", "matrix", "--all", str(repo),
               "--workers", "1"]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "20",
                    *command, ";", "set-option", "remain-on-exit", "on"], check=True)
    try:
        screens = []  # with the scrollback: the JSON on stdout comes after the status
        for _ in range(300):
            time.sleep(0.2)
            # ended: ask tmux (before capturing, so the last screen is the final one) rather
            # than look for its "Pane is dead" text, which tmux 3.3 does not put into the
            # captured pane (the loop then ran its full minute)
            dead = subprocess.run(["tmux", "display-message", "-p", "-t", session,
                                   "#{pane_dead}"], capture_output=True, text=True).stdout
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-S", "-", "-t", session],
                                    capture_output=True, text=True).stdout
            screens.append(screen)
            if "Pane is dead" in screen or dead.strip() == "1":
                break
        live = [s for s in screens if "ci-nix: evaluating: " in s]
        assert live, screens[-1]
        # one status line, redrawn in place with the count
        assert all(s.count("ci-nix: evaluating: ") == 1 for s in live)
        assert re.search(rf"ci-nix: evaluating: [0-{N - 1}] of {N} attributes \(slow: ", live[0])
        assert f"ci-nix: evaluated: {N} of {N} attributes (slow: {N}/{N}), 1 worker" in screens[-1]
        assert "ci-nix: evaluating: " not in screens[-1]  # the status line is gone at the end
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _eval(target: Target) -> FlakeEval:
    return FlakeEval(target, (), (), 1, 1.0)


def test_the_monitor_counts_attributes_across_flakes() -> None:
    now = [0.0]
    out = io.StringIO()
    display = progress.Display(out, live=False)
    display.last_output = 0.0
    monitor = progress.EvalMonitor(2, display, clock=lambda: now[0], workers=2)
    hosts = Target(Flake(Repo("hosts", Path("/w/hosts")), ""))
    pkgs = Target(Flake(Repo("pkgs", Path("/w/pkgs")), ""))
    monitor.flake_started(hosts)
    monitor.flake_started(pkgs)
    monitor.attr_progress(hosts, 0, 32)
    now[0] = 41.0
    monitor.attr_progress(hosts, 12, 32)
    monitor.tick()
    assert out.getvalue().splitlines() == [
        "ci-nix: evaluating: 12 of 32 attributes (hosts: 12/32, pkgs: listing), 2 workers, "
        "41 s; 0 of 2 flakes evaluated"]
    display.last_output = 41.0  # the display keeps real time; the line was printed at 41 s
    now[0] = 45.0
    monitor.tick()  # 4 s after the last line: quiet
    assert len(out.getvalue().splitlines()) == 1
    monitor.attr_progress(pkgs, 1, 5)
    now[0] = 50.0
    monitor.tick()
    assert out.getvalue().splitlines()[-1] == (
        "ci-nix: evaluating: 13 of 37 attributes (hosts: 12/32, pkgs: 1/5), 2 workers, 50 s; "
        "0 of 2 flakes evaluated")
    # a flake that ends counts all its attributes (some may have ended with their worker)
    monitor.flake_done(_eval(hosts))
    monitor.flake_done(_eval(pkgs))
    assert monitor.final_text() == (
        "ci-nix: evaluated: 37 of 37 attributes (hosts: 32/32, pkgs: 5/5), 2 workers, 50 s; "
        "2 of 2 flakes evaluated")


def test_before_any_listing_the_status_names_the_flakes() -> None:
    monitor = progress.EvalMonitor(1, progress.Display(io.StringIO(), live=False),
                                   clock=lambda: 3.0)
    monitor.flake_started(Target(Flake(Repo("hosts", Path("/w/hosts")), "")))
    assert monitor.status_text() == "ci-nix: [0 s] evaluating hosts (0 s); 0 of 1 flake evaluated"
    assert monitor.final_text() is None
