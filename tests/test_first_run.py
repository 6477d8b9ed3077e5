"""What a new user sees first: counted nouns, help texts, the demo, and the summary totals."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import Cli

from ci_nix import diagnose
from ci_nix.cli import build_parser
from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import text
from ci_nix.words import count, plural

ROOT = Path(__file__).resolve().parent.parent


def test_counted_nouns_are_singular_for_one() -> None:
    assert count(1, "job") == "1 job" and count(2, "job") == "2 jobs"
    assert count(0, "attribute") == "0 attributes"
    assert count(1, "dependency") == "1 dependency" and count(3, "dependency") == "3 dependencies"
    assert count(2, "matrix entry") == "2 matrix entries" and plural("repo") == "repos"
    assert count(2, "Nix evaluation") == "2 Nix evaluations" and plural("day") == "days"


def test_nix_plural_slip_is_not_repeated() -> None:
    drv = "/nix/store/j2yc6n1b2n9lx16kkgj44fmfz83s0c4x-uses-broken-1.0.drv"
    error = diagnose.build_error(f"error: 1 dependencies of derivation '{drv}' failed to build")
    assert error is not None and error.message.startswith("1 dependency of uses-broken-1.0.drv")


def summary(report: RunReport) -> str:
    out = io.StringIO()
    text.write(report, out)
    return out.getvalue()


def test_totals_say_one_attribute_in_one_flake() -> None:
    report = RunReport(("hosts",), (Case("hosts", "packages.x86_64-linux.a", Status.PASSED),))
    assert summary(report) == "ci-nix: 1 attribute in 1 flake: 1 passed, 0 failed, 0 skipped\n"


def test_totals_break_failures_down_by_type() -> None:
    report = RunReport(("m",), (
        Case("m", "a", Status.FAILED, failure=Failure(FailureType.EVAL, "x")),
        Case("m", "b", Status.FAILED, failure=Failure(FailureType.BUILD, "y")),
        Case("m", "c", Status.SKIPPED, skip_reason="cached"),
    ))
    assert summary(report).endswith(
        "ci-nix: 3 attributes in 1 flake: 0 passed, 2 failed (1 build, 1 eval), "
        "1 skipped (1 cached)\n")


def test_a_tool_error_prints_no_empty_totals() -> None:
    assert summary(RunReport((), (), error="no ci-nix.yaml")) == ""


def test_tool_error_run_says_only_the_error(tmp_path: Path, cli: Cli) -> None:
    result = cli("run", tmp_path)  # not a git repo, no ci-nix.yaml
    assert result.returncode == 2
    assert "attributes in" not in result.stdout + result.stderr
    assert result.stderr.count("ci-nix: error:") == 1


def _help(command: str) -> str:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(action, argparse._SubParsersAction), action
    return " ".join(action.choices[command].format_help().split())


def _exit_codes(command: str) -> list[int]:
    epilog = _help(command).split("exit codes:")[1]
    return [int(code) for code in re.findall(r"(?:^| )(\d+) ", epilog)
            if int(code) in (0, 1, 2, 130)]


def test_help_head_default_is_the_work_tree() -> None:
    for command in ("run", "detect", "matrix"):
        assert "--head REV the revision under test (default: the work tree" in _help(command)
        assert "default: HEAD" not in _help(command)


def test_help_lists_the_exit_codes_each_command_can_return() -> None:
    assert _exit_codes("run") == [0, 1, 2, 130]
    assert _exit_codes("detect") == [0, 2, 130]
    assert _exit_codes("matrix") == [0, 2, 130]
    assert _exit_codes("junit") == [0, 1, 2, 130]
    assert _exit_codes("update") == [0, 1, 2, 130]


def test_detect_help_says_what_system_and_only_mean_there() -> None:
    detect = _help("detect")
    assert "does not depend on the system" in detect
    assert "list only the flake FLAKE" in detect


_BUILT = re.compile(r"built \d+ derivations? for \d+ attributes?: (\d+) passed, (\d+) failed")
_TOTALS = re.compile(r"ci-nix: \d+ attributes? in \d+ flakes?: (\d+) passed, (\d+) failed"
                     r"(?: \(([^)]*)\))?")


@pytest.mark.nix
@pytest.mark.slow
def test_demo_explains_itself_and_its_counts_agree(nix_bin: str) -> None:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "CI_NIX_NIX": nix_bin})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("demo: installing what ci-nix needs")
    reports = re.findall(r"/tmp/ci-nix-demo\.\w+/report\.(?:xml|json)", out + result.stderr)
    assert sorted(reports) == sorted(set(reports)) and len(reports) == 2  # each path once

    # the run's build line is the last: with builds begun while evaluating, each batch has its
    # own before it (README "How `run` works")
    lines = [*_BUILT.finditer(result.stderr)]
    totals = _TOTALS.search(out)
    assert lines and totals is not None, (out, result.stderr)
    built = lines[-1]
    kinds = {kind: count for count, kind in
             (part.split(" ") for part in (totals[3] or "").split(", ") if part)}
    # the build line counts the attributes that reached the build, the totals every attribute
    assert built[1] == totals[1]
    assert int(built[2]) == int(totals[2]) - int(kinds.get("eval", 0))
    # broken fails once, whichever batch needs it later (uses-broken): never built again
    assert result.stderr.count("FAIL modules#packages.x86_64-linux.broken ") == 1, result.stderr
    assert result.stderr.count("building modules#packages.x86_64-linux.broken\n") == 1
