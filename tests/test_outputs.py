"""One CI environment and one output writer: masked, whole or not at all, announced only when
written; the bots' JUnit in report/junit.py's shape."""

from __future__ import annotations

import errno
import io
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, xml_attr, xml_find

from ci_nix import bots, forge, mask, outputs
from ci_nix.ci import Ci, CiEnv
from ci_nix.errors import CiNixError, ForgeError
from ci_nix.models import Case, Failure, FailureType, Status
from ci_nix.update.models import Operation, Outcome
from ci_nix.update.verify import HeldBack, Verification

SECRET = "s3cr3t-output-token-9f8e"


@pytest.mark.parametrize(("environ", "kind", "ci"), [
    ({"GITHUB_ACTIONS": "true"}, Ci.GITHUB, True),
    ({"GITLAB_CI": "true", "CI": "true"}, Ci.GITLAB, True),
    ({"GITLAB_CI": "1"}, None, False),  # GitLab always sets "true": anything else is not it
    ({"GITHUB_ACTIONS": "", "GITLAB_CI": ""}, None, False),
    ({"CI": "true"}, None, True),  # some CI: no live status line, no log commands
    ({}, None, False),
])
def test_the_ci_is_told_from_the_environ_given(environ: dict[str, str], kind: Ci | None,
                                                ci: bool) -> None:
    found = CiEnv.detect(environ)
    assert (found.kind, found.ci) == (kind, ci)


def test_every_reader_agrees_on_gitlab(monkeypatch: pytest.MonkeyPatch) -> None:
    """forge.resolve fills a forge from the same detection: GITLAB_CI=1 is no GitLab."""
    with pytest.raises(ForgeError, match="no forge configured"):
        forge.resolve(None, None, None, None, {"GITLAB_CI": "1", "CI_PROJECT_PATH": "g/p"})
    target = forge.resolve(None, None, None, None,
                           {"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p",
                            "CI_SERVER_URL": "https://gitlab.example"})
    assert target.kind == "gitlab"


def test_github_files_come_with_github_only(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    github = CiEnv.detect({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
                           "GITHUB_OUTPUT": str(tmp_path / "out")})
    assert (github.step_summary, github.output) == (summary, tmp_path / "out")
    gitlab = CiEnv.detect({"GITLAB_CI": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    outputs.step_summary(gitlab, "# not for GitLab\n")
    assert not summary.exists()


def test_files_are_masked(tmp_path: Path) -> None:
    mask.add_secret(SECRET)
    report = tmp_path / "r.json"
    assert outputs.write_file(report, f'{{"log": "token {SECRET}"}}\n') is None
    assert SECRET not in report.read_text() and "token ***" in report.read_text()
    ci = CiEnv.detect({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s"),
                       "GITHUB_OUTPUT": str(tmp_path / "o")})
    outputs.step_summary(ci, f"used {SECRET}\n")
    outputs.step_outputs(ci, {"url": f"https://x/{SECRET}"})
    for name in ("s", "o"):
        assert SECRET not in (tmp_path / name).read_text()
    with pytest.raises(ValueError, match="one line"):
        outputs.step_outputs(ci, {"body": "two\nlines"})


def test_a_report_that_cannot_be_written_leaves_no_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "r.xml"
    outputs.check_writable(report)
    assert not report.exists()  # checking creates nothing a CI could take for a report
    report.write_text("<testsuites><!-- yesterday's green run --></testsuites>")

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "_replace", full)
    assert outputs.write_file(report, "<testsuites/>") == "No space left on device"
    assert not report.exists()  # not the earlier run's report either


def test_dev_full_report_is_not_announced(tmp_path: Path, cli: Cli) -> None:
    """#24's case: on a full disk the report is not announced, the others are written and
    announced, and the run says which could not be written (exit 2)."""
    json_path = tmp_path / "r.json"
    result = cli("run", tmp_path, "--junit", "/dev/full", "--json", json_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "JUnit report:" not in result.stdout
    assert f"JSON report: {json_path}" in result.stdout and json_path.stat().st_size > 0
    assert "cannot write report /dev/full: No space left on device" in result.stderr


def test_an_append_that_fails_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    ci = CiEnv(Ci.GITHUB, True, step_summary=Path("/dev/full"))
    with caplog.at_level(logging.WARNING, logger="ci_nix"):
        outputs.step_summary(ci, "# summary\n")
    assert "cannot write the step summary /dev/full" in caplog.text


def test_check_writable_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CiNixError, match="cannot write report .*missing/r.xml"):
        outputs.check_writable(tmp_path / "missing" / "r.xml")


def test_bots_junit_keeps_hints_and_properties() -> None:
    built = Case("app", "packages.x86_64-linux.pkg", Status.FAILED, system="x86_64-linux",
                 drv_path="/nix/store/aaaa-pkg.drv",
                 failure=Failure(FailureType.BUILD, "builder failed", log="oops",
                                 hint="read the log"))
    verification = Verification((built,), (HeldBack("dep", built),), kept=())
    results = [bots.RepoResult("app", (Outcome("app", "ci-nix/flake-update",
                                                 Operation.DRY_RUN,
                                                 verification=verification),)),
               bots.RepoResult("gone", error="clone failed")]
    out = io.StringIO()
    bots.junit(results, out)
    root = ET.fromstring(out.getvalue())
    suites = {xml_attr(s, "name"): s for s in root.iter("testsuite")}
    repos = {xml_attr(c, "name"): c for c in suites["ci-nix update"].iter("testcase")}
    assert xml_attr(repos["gone"], "classname") == "ci-nix.update"
    assert xml_attr(xml_find(repos["gone"], "failure"), "message") == "clone failed"
    assert xml_find(repos["app"], "system-out").text == "ci-nix/flake-update: dry-run"
    checked = list(suites["ci-nix update --verify"].iter("testcase"))
    assert [xml_attr(c, "name") for c in checked] == [
        "packages.x86_64-linux.pkg", "packages.x86_64-linux.pkg (with dep updated)"]
    for case in checked:
        assert "hint: read the log" in (xml_find(case, "failure").text or "")
        props = {xml_attr(p, "name"): xml_attr(p, "value") for p in case.iter("property")}
        assert props["drvPath"] == "/nix/store/aaaa-pkg.drv"
    assert xml_attr(xml_find(checked[1], "failure"), "message").startswith(
        "held back dep: its update breaks app#packages.x86_64-linux.pkg: builder failed")


def test_a_write_leaves_the_process_umask_alone(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file is written with the mode open() gives it (0666 less the umask), without setting
    the umask to 0 to read it: the umask is the whole process's, and other threads start Nix
    and git (the evaluation pool, diff's base lookup, a build) and create directories
    meanwhile: a child started then ran with umask 0 (world-writable files in its caches)."""
    import os
    import stat

    old = os.umask(0o027)
    changed: list[int] = []
    real_umask = os.umask

    def umask(mask: int) -> int:
        changed.append(mask)
        return real_umask(mask)

    monkeypatch.setattr(os, "umask", umask)
    try:
        assert outputs.write_file(tmp_path / "report.xml", "<x/>") is None
        (tmp_path / "again.xml").write_text("old")
        assert outputs.write_file(tmp_path / "again.xml", "<y/>") is None
    finally:
        real_umask(old)
    assert changed == []
    for name, text in (("report.xml", "<x/>"), ("again.xml", "<y/>")):
        assert (tmp_path / name).read_text() == text
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.xml", "report.xml"]


def test_a_written_report_is_announced_on_one_line_that_runs_no_command(tmp_path: Path) -> None:
    # a path with a line break and `::` (or `##[`) printed raw starts a workflow command line
    path = tmp_path / "r\n::warning::pwn ##[error]x.xml"
    announce = io.StringIO()
    assert outputs.write_files([("JUnit report", path, "<testsuites/>")], announce) == []
    assert path.read_text() == "<testsuites/>"
    [line] = announce.getvalue().splitlines()
    assert line.startswith("JUnit report: ") and "\\n::warning::" in line and "##[" not in line
