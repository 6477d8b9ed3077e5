"""GitHub annotations/summary and GitLab sections: the writers, and a red fixture run in CI."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, xml_attr, xml_find
from hypothesis import given
from hypothesis import strategies as st

from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import failures, github, gitlab, junit, text

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
    assert "- unsupported system aarch64-linux: 1 attribute" in md


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
    # a multi-repo job: each repo checked out into a subdirectory of GITHUB_WORKSPACE
    result = cli("run", "--all", fixture_ws, env={
        "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(fixture_ws)})
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    missing = [e for e in errors if "hosts#packages.x86_64-linux.missing" in e]
    assert len(missing) == 1
    # GitHub resolves file= against GITHUB_WORKSPACE: hosts/flake.nix, not flake.nix (#23)
    assert missing[0].startswith("::error file=hosts/flake.nix,line=35,col=19,title=eval%3A ")
    assert "attribute 'nope' missing" in missing[0] and "follows" in missing[0]
    assert any(e.startswith("::error title=build%3A modules#packages.x86_64-linux.broken::")
               for e in errors)
    assert len(errors) == 4
    assert "::group::modules#packages.x86_64-linux.broken" in result.stdout
    md = summary.read_text()
    assert md.startswith("## ❌ ci-nix: 4 failed, 6 passed, 0 skipped")
    assert "expected ';' before" in md and "eval.nix" not in md
    # the root failure leads, its dependent is listed under it and the log is shown once (#23)
    assert md.count("expected ';' before") == 1, md
    assert ("- failed because of it: **modules#packages.x86_64-linux.uses-broken**" in md), md
    assert "\nFAIL modules#packages.x86_64-linux.uses-broken" not in "\n" + result.stdout
    assert "     FAIL modules#packages.x86_64-linux.uses-broken [dependency]" in result.stdout


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


def test_annotation_files_are_relative_to_the_github_workspace() -> None:
    """Repos checked out with actions/checkout `path:` live in subdirectories of
    GITHUB_WORKSPACE, which is what GitHub resolves `file=` against (#23)."""
    cross = Failure(FailureType.EVAL, "cannot coerce at modules/lib/x.nix:9:42",
                    file="lib/x.nix", line=9, column=42, repo="modules")
    own = Failure(FailureType.EVAL, "missing at app/flake.nix:7:13", file="app/flake.nix",
                  line=7, column=13)
    away = Failure(FailureType.EVAL, "boom at flake.nix:1:1", file="flake.nix", line=1,
                   column=1, repo="elsewhere")
    report = RunReport(("hosts/app",), (
        Case("hosts/app", "packages.x86_64-linux.a", Status.FAILED, failure=cross),
        Case("hosts/app", "packages.x86_64-linux.b", Status.FAILED, failure=own),
        Case("hosts/app", "packages.x86_64-linux.c", Status.FAILED, failure=away),
    ), checkout="hosts", repo_dirs=(("hosts", "/runner/work/ws/ws/src/hosts"),
                                    ("modules", "/runner/work/ws/ws/modules"),
                                    ("elsewhere", "/runner/work/ws/elsewhere")))
    out = io.StringIO()
    github.write_annotations(report, out, "/runner/work/ws/ws")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("::error file=modules/lib/x.nix,line=9,col=42,title=")
    assert lines[1].startswith("::error file=src/hosts/app/flake.nix,line=7,col=13,title=")
    assert lines[2].startswith("::error title=")  # outside the workspace: in the message only
    # the workspace itself is the repo
    root = RunReport(("hosts/app",), report.cases[1:2], checkout="hosts",
                     repo_dirs=(("hosts", "/w"),))
    out = io.StringIO()
    github.write_annotations(root, out, "/w")
    assert out.getvalue().startswith("::error file=app/flake.nix,line=7,")


ROOT_DRV = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-broken-1.0.drv"
# a build failure: its case is the derivation's (a root is a case failing for its own drv)
ROOT = Case("modules", "packages.x86_64-linux.broken", Status.FAILED, drv_path=ROOT_DRV,
            failure=Failure(FailureType.BUILD, "builder for broken-1.0 failed with exit code 2",
                            log="broken.c:3: error: expected ';'", drv=ROOT_DRV))


def dependent(flake: str, name: str) -> Case:
    return Case(flake, name, Status.FAILED, failure=Failure(
        FailureType.DEPENDENCY, "dependency failed: broken-1.0 (builder failed)",
        log="broken.c:3: error: expected ';'", drv=f"/nix/store/{'b' * 32}-{flake}.drv",
        cause=ROOT_DRV))


GROUPED = RunReport(("hosts", "modules", "other"), (
    dependent("hosts", "nixosConfigurations.web"),
    ROOT,
    dependent("modules", "packages.x86_64-linux.uses-broken"),
    Case("modules", "packages.x86_64-linux.ok", Status.SKIPPED, skip_reason="cached"),
    Case("other", "flake.nix", Status.SKIPPED, skip_reason="unaffected: no change since abc "
         "affects it"),
))


def test_the_root_failure_leads_and_its_log_is_shown_once() -> None:
    """#23: a broken package failing five hosts is one failure with five dependents."""
    summary = io.StringIO()
    text.write(GROUPED, summary)
    lines = summary.getvalue().splitlines()
    assert lines[:4] == [
        "FAIL modules#packages.x86_64-linux.broken [build] builder for broken-1.0 failed with "
        "exit code 2",
        "     2 attributes failed because of it:",
        "     FAIL hosts#nixosConfigurations.web [dependency]",
        "     FAIL modules#packages.x86_64-linux.uses-broken [dependency]"]
    md = io.StringIO()
    github.write_summary(GROUPED, md)
    assert md.getvalue().count("broken.c:3") == 1
    assert ("- failed because of it: **hosts#nixosConfigurations.web**, "
            "**modules#packages.x86_64-linux.uses-broken**") in md.getvalue()
    log = io.StringIO()
    github.write_annotations(GROUPED, log)
    assert log.getvalue().count("broken.c:3") == 1 and log.getvalue().count("::error ") == 3
    lab = io.StringIO()
    gitlab.write(GROUPED, lab, now=1)
    assert lab.getvalue().count("broken.c:3") == 1 and lab.getvalue().count("section_start") == 1
    xml_out = io.StringIO()
    junit.write(GROUPED, xml_out)
    found = {(xml_attr(tc, "classname"), xml_attr(tc, "name")): tc
             for tc in ET.fromstring(xml_out.getvalue()).iter("testcase")}
    web = xml_find(found[("hosts", "nixosConfigurations.web")], "failure")
    assert xml_attr(web, "message").endswith(
        "; root failure: modules#packages.x86_64-linux.broken")
    assert "broken.c:3" not in (web.text or "")
    root = xml_find(found[("modules", "packages.x86_64-linux.broken")], "failure")
    assert "broken.c:3" in (root.text or "") and "root failure" not in xml_attr(root, "message")


def test_skip_counts_count_attributes_not_flakes() -> None:
    assert text.totals(GROUPED) == (
        "4 attributes in 3 flakes: 0 passed, 3 failed (1 build, 2 dependency), 1 skipped "
        "(1 cached); 1 flake unaffected")
    md = io.StringIO()
    github.write_summary(GROUPED, md)
    assert md.getvalue().startswith("## ❌ ci-nix: 3 failed, 0 passed, 1 skipped")
    assert "- cached: 1 attribute\n" in md.getvalue()
    assert "- unaffected: 1 flake (not evaluated)\n" in md.getvalue()
    assert "| other | 0 | 0 | 0 |" in md.getvalue()


DRVS = [f"/nix/store/{c * 32}-p.drv" for c in "abcd"]
CASES = st.lists(st.builds(
    lambda flake, name, kind, drv, cause: Case(
        flake, name, Status.FAILED, failure=Failure(
            kind, "m", drv=drv, cause=cause if kind is FailureType.DEPENDENCY else None)),
    st.sampled_from(["a", "b"]), st.sampled_from(["x", "y", "z"]),
    st.sampled_from([FailureType.BUILD, FailureType.DEPENDENCY, FailureType.EVAL]),
    st.sampled_from([None, *DRVS]), st.sampled_from([None, *DRVS])), max_size=12)


@given(CASES)
def test_every_failure_is_in_exactly_one_group(cases: list[Case]) -> None:
    found = failures.groups(cases)
    members = [id(c) for g in found for c in (g.lead, *g.dependents)]
    assert sorted(members) == sorted(id(c) for c in cases)
    for group in found:
        assert group.lead.failure is not None
        for dependent in group.dependents:  # only a dependency failure follows another
            assert dependent.failure is not None
            assert dependent.failure.type is FailureType.DEPENDENCY
