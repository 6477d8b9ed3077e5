"""GitHub annotations/summary and GitLab sections: the writers, and a red fixture run in CI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import Cli

from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import github, gitlab

EVAL = Failure(FailureType.EVAL, "attribute 'nope' missing at hosts/flake.nix:13:17",
               log="error: attribute 'nope' missing\n::set-output name=x::y", hint="check, typo",
               file="hosts/flake.nix", line=13, column=17)
BUILD = Failure(FailureType.BUILD, "builder for a.drv failed with exit code 2",
                log="50% done\nbroken.c:3: error", drv="/nix/store/aaaa-a.drv")
REPORT = RunReport(("hosts", "modules"), (
    Case("hosts", "packages.x86_64-linux.missing", Status.FAILED, failure=EVAL),
    Case("modules", "packages.x86_64-linux.a", Status.FAILED, failure=BUILD),
    Case("modules", "packages.x86_64-linux.ok", Status.PASSED),
    Case("modules", "packages.aarch64-linux.a", Status.SKIPPED,
         skip_reason="unsupported system aarch64-linux (this machine builds x86_64-linux)"),
))


def test_github_annotations_escape_and_point_at_the_file() -> None:
    out = io.StringIO()
    github.write_annotations(REPORT, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "::error file=hosts/flake.nix,line=13,col=17,title=eval%3A hosts#packages.x86_64-linux."
        "missing::attribute 'nope' missing at hosts/flake.nix:13:17%0A%0Ahint: check, typo")
    assert lines[1].startswith("::error title=build%3A modules#packages.x86_64-linux.a::")
    assert "::group::hosts#packages.x86_64-linux.missing: attribute 'nope'" in lines[2]
    # a log line that looks like a workflow command is not one any more
    assert "\\::set-output name=x::y" in lines and "::endgroup::" in lines
    assert "50%25 done" not in out.getvalue()  # only command data is escaped, not log text


def test_github_summary_has_totals_failures_logs_and_skips() -> None:
    out = io.StringIO()
    github.write_summary(REPORT, out)
    md = out.getvalue()
    assert md.startswith("## ❌ ci-nix: 2 failed, 1 passed, 1 skipped")
    assert "| modules | 1 | 1 | 1 |" in md
    assert "**modules#packages.x86_64-linux.a** `build`" in md
    assert "<details><summary>log tail</summary>" in md and "broken.c:3: error" in md
    assert "- 1 unsupported system aarch64-linux" in md


def test_gitlab_sections_are_collapsed_and_closed() -> None:
    out = io.StringIO()
    gitlab.write(REPORT, out, now=1700000000)
    text = out.getvalue()
    assert text.count("section_start:1700000000:") == 2 == text.count("section_end:1700000000:")
    assert "section_start:1700000000:ci_nix_0_hosts_packages.x86_64-linux.missing" \
           "[collapsed=true]\r\x1b[0KFAIL hosts#packages.x86_64-linux.missing [eval]" in text
    assert "hint: check, typo" in text


@pytest.mark.nix
def test_red_fixture_run_annotates_and_summarises(fixture_ws: Path, tmp_path: Path,
                                                  cli: Cli) -> None:
    summary = tmp_path / "summary.md"
    result = cli("run", "--all", fixture_ws, env={
        "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    missing = [e for e in errors if "hosts#packages.x86_64-linux.missing" in e]
    assert len(missing) == 1
    assert missing[0].startswith("::error file=flake.nix,line=35,col=19,title=eval%3A ")
    assert "attribute 'nope' missing" in missing[0] and "follows" in missing[0]
    assert any(e.startswith("::error title=build%3A modules#packages.x86_64-linux.broken::")
               for e in errors)
    assert len(errors) == 4
    assert "::group::modules#packages.x86_64-linux.broken" in result.stdout
    md = summary.read_text()
    assert md.startswith("## ❌ ci-nix: 4 failed, 6 passed, 0 skipped")
    assert "expected ';' before" in md and "eval.nix" not in md


def test_a_file_of_another_workspace_repo_is_not_annotated_in_the_checked_out_one() -> None:
    cross = Failure(FailureType.EVAL, "cannot coerce an integer to a string at "
                    "modules/flake.nix:9:42", file="flake.nix", line=9, column=42,
                    repo="modules")
    own = Failure(FailureType.EVAL, "attribute 'nope' missing at flake.nix:7:13",
                  file="flake.nix", line=7, column=13, repo="hosts")
    report = RunReport(("hosts",), (
        Case("hosts", "packages.x86_64-linux.db", Status.FAILED, failure=cross),
        Case("hosts", "packages.x86_64-linux.own", Status.FAILED, failure=own),
    ), checkout="hosts")
    out = io.StringIO()
    github.write_annotations(report, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("::error title=eval%3A hosts#packages.x86_64-linux.db::")
    assert "modules/flake.nix:9:42" in lines[0]
    assert lines[1].startswith("::error file=flake.nix,line=7,col=13,title=")
    md = io.StringIO()
    github.write_summary(report, md)
    assert "at `flake.nix:9:42` in repo modules" in md.getvalue()
    assert "modules/flake.nix" not in md.getvalue()  # said once, as a place in a named repo
