"""`ci-nix diff` and `run --skip-unchanged` on the fixture workspace, on every available Nix."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ONE_NIX, Cli, flake_repo
from fakeproc import FakeProc
from helpers import git

pytestmark = pytest.mark.nix

OLD_GREETING = 'greeting = script system "greeting-1.0" "echo hello from modules > $out" { };'
# greeting 1.1 links a new library: a version change and an added package for the web host
NEW_GREETING = ('greeting = script system "greeting-1.1" "cat $dep > $out" '
                '{ dep = script system "libgreet-0.1" "echo hi > $out" { }; };')


def commit_edit(repo: Path, old: str, new: str, message: str) -> None:
    flake = repo / "flake.nix"
    text = flake.read_text()
    assert old in text
    flake.write_text(text.replace(old, new))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", message)


def attributes(report: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(report.read_text())
    return {f"{a['flake']}#{a['attr']}": a for a in data["attributes"]}


def test_library_bump_changes_one_host(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    modules = fixture_ws / "modules"
    commit_edit(modules, OLD_GREETING, NEW_GREETING, "greeting 1.1")
    report = tmp_path / "diff.json"
    result = cli("diff", modules, "--base", "HEAD~1", "--json", report, "-v")
    assert result.returncode == 1, result.stderr  # thrower and missing fail at head
    # the closures read for both sides' evaluation cache entries (the head's are written
    # while Nix reads closure sizes) give the package changes: no .drv is read again (Nix
    # reads them for the entries where its store is not this machine's /nix/store: nix-modern)
    reads = [line for line in result.stderr.splitlines()
             if " show-derivation " in line or " derivation show " in line]
    assert len(reads) <= 2 and all("nixos-system-db.drv" in line for line in reads), reads
    found = attributes(report)
    web = found["hosts#nixosConfigurations.web"]
    assert web["status"] == "changed"
    assert web["packages"] == {"changed": [{"name": "greeting", "from": "1.0", "to": "1.1"}],
                               "added": [{"name": "libgreet", "version": "0.1"}],
                               "removed": []}
    assert web["baseDrv"] != web["headDrv"] and web["headDrv"].endswith("-nixos-system-web.drv")
    db = found["hosts#nixosConfigurations.db"]
    assert db["status"] == "unchanged" and db["baseDrv"] == db["headDrv"]
    assert db["packages"] == {"changed": [], "added": [], "removed": []}
    assert found["modules#packages.x86_64-linux.broken"]["status"] == "unchanged"
    assert found["hosts#packages.x86_64-linux.missing"]["status"] == "failed"
    data = json.loads(report.read_text())
    assert data["base"] == git(modules, "rev-parse", "HEAD~1").strip()
    assert data["head"] == git(modules, "rev-parse", "HEAD").strip()
    # every repo says what it was compared at: hosts is taken as checked out, both sides (#23)
    hosts_sha = git(fixture_ws / "hosts", "rev-parse", "HEAD").strip()
    assert data["repos"] == {"modules": {"base": data["base"], "head": data["head"]},
                             "hosts": {"base": hosts_sha, "head": hosts_sha}}
    assert f"  hosts: as checked out ({hosts_sha[:12]}) on both sides\n" in result.stdout
    assert "changed   hosts#nixosConfigurations.web" in result.stdout
    assert "greeting: 1.0 -> 1.1" in result.stdout
    # the base was read from a temporary worktree, gone now; the checkout is untouched
    assert len(git(modules, "worktree", "list").splitlines()) == 1
    assert git(modules, "status", "--porcelain") == ""


def test_skip_unchanged_builds_only_what_changed(fixture_ws: Path, tmp_path: Path,
                                                 cli: Cli) -> None:
    modules = fixture_ws / "modules"
    web = "hosts#nixosConfigurations.web"
    assert cli("run", modules, "--only", web).returncode == 0  # the base's web, built
    commit_edit(modules, OLD_GREETING, NEW_GREETING, "greeting 1.1")
    report = tmp_path / "run.json"
    result = cli("run", modules, "--base", "HEAD~1", "--skip-unchanged", "--json", report,
                 "--only", "hosts#nixosConfigurations.web",
                 "--only", "hosts#nixosConfigurations.db")
    assert result.returncode == 0, result.stderr
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    assert cases["nixosConfigurations.web"]["status"] == "passed"
    assert cases["nixosConfigurations.db"]["status"] == "skipped"
    assert cases["nixosConfigurations.db"]["skipped"].startswith("unchanged")
    assert "What changes" in result.stdout
    # both webs are in the store now: the runtime closure's size delta is known (greeting's
    # output shrinks from "hello from modules" to libgreet's "hi")
    again = cli("diff", modules, "--base", "HEAD~1", "--only", web)
    assert "3 derivations to rebuild, closure " in again.stdout, again.stdout
    assert "(-16 B)" in again.stdout, again.stdout  # both sizes, and the change
    before = cli("diff", modules, "--base", "HEAD~1", "--only", "hosts#packages.x86_64-linux.motd")
    assert "closure" not in before.stdout  # neither motd was built: no size to compare


def test_a_base_that_no_longer_evaluates(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    hosts = fixture_ws / "hosts"
    commit_edit(hosts, "outputs = { self, modules }:", "outputs = { self, modules }: ((",
                "break the flake")
    commit_edit(hosts, "outputs = { self, modules }: ((", "outputs = { self, modules }:",
                "fix the flake")
    # an uncommitted change at head: compared as the work tree, and left alone
    (hosts / "notes.txt").write_text("scratch\n")
    # the repo's own hooks do not run when ci-nix checks the base out
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "post-checkout").write_text(f"#!/bin/sh\ntouch {tmp_path / 'hook-ran'}\n")
    (hooks / "post-checkout").chmod(0o755)
    git(hosts, "config", "core.hooksPath", str(hooks))
    report = tmp_path / "diff.json"
    result = cli("diff", hosts, "--base", "HEAD~1", "--json", report)
    assert not (tmp_path / "hook-ran").exists()
    assert result.returncode == 1, result.stderr
    found = attributes(report)
    assert found["hosts#nixosConfigurations.web"]["status"] == "added"
    assert found["hosts#nixosConfigurations.web"]["baseDrv"] is None
    assert found["hosts#packages.x86_64-linux.missing"]["status"] == "failed"
    assert (hosts / "notes.txt").read_text() == "scratch\n"


def test_a_head_that_no_longer_parses_fails(fixture_ws: Path, tmp_path: Path,
                                           cli: Cli) -> None:
    hosts = fixture_ws / "hosts"
    commit_edit(hosts, "outputs = { self, modules }:", "outputs = { self, modules }: ((",
                "break the flake")
    report = tmp_path / "diff.json"
    result = cli("diff", hosts, "--base", "HEAD~1", "--json", report)
    assert result.returncode == 1, result.stdout + result.stderr
    found = attributes(report)
    assert found["hosts#flake.nix"]["status"] == "failed"
    web = found["hosts#nixosConfigurations.web"]
    assert web["status"] == "failed" and web["baseDrv"] and web["headDrv"] is None
    assert {a["status"] for a in found.values()} == {"failed"}  # nothing "removed"
    assert "syntax error" in result.stdout


@pytest.fixture
def full_tmpdir(tmp_path: Path, nix_bin: str) -> Iterator[Path]:
    """A TMPDIR on a tmpfs with no space left (root only)."""
    if nix_bin != "nix":
        pytest.skip("only the system Nix (2.8) writes a flake's source to TMPDIR")
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        with open(full / "fill", "wb") as out, contextlib.suppress(OSError):
            out.write(b"\0" * 65536)
        yield full
    finally:
        subprocess.run(["umount", "-l", str(full)], check=True)


# One Nix, the first (Debian's 2.8): nix-modern's chroot binds /tmp without its submounts, and
# Nix 2.26 reads a git flake without unpacking it into TMPDIR, so only the system Nix meets the
# full disk (its copy for 2.26 was skipped inside the fixture, after the workspace was made);
# Nix 2.26's wording of a full disk is test_no_space_is_a_tool_failure_on_any_nix's
@ONE_NIX
def test_a_full_tmpdir_is_a_tool_failure(fixture_ws: Path, full_tmpdir: Path,
                                         cli: Cli) -> None:
    hosts = fixture_ws / "hosts"
    commit_edit(hosts, "outputs = { self, modules }:", "outputs = { self, modules }: ",
                "touch the flake")
    result = cli("diff", hosts, "--base", "HEAD~1", env={"TMPDIR": str(full_tmpdir)})
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Nix could not evaluate hosts on this machine" in errors[0]
    assert f"TMPDIR ({full_tmpdir})" in errors[0] and "Traceback" not in result.stderr
    assert "nothing evaluated" not in result.stdout


# One Nix: the evaluation that fails is answered by the fake (each wording as a Nix says it),
# the same on any Nix; what is tested is ci-nix's reading of it
@ONE_NIX
def test_no_space_is_a_tool_failure_on_any_nix(fixture_ws: Path, nix_bin: str, cli: Cli,
                                               fake_proc: FakeProc) -> None:
    """The other wordings of a full disk, as Nix 2.26 (or a full store) would say them."""
    hosts = fixture_ws / "hosts"
    commit_edit(hosts, "outputs = { self, modules }:", "outputs = { self, modules }: ",
                "touch the flake")
    fake_proc.on(Path(nix_bin).name, "eval", "--apply", returncode=1,
                 stderr="error: writing to file: No space left on device\n")
    result = cli("diff", hosts, "--base", "HEAD~1", env={"TMPDIR": "/tmp"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Nix could not evaluate hosts on this machine: writing to file: No space left on " \
           "device: free space on the disk of TMPDIR (/tmp)" in result.stderr
    assert fake_proc.ran(Path(nix_bin).name, "eval", "--apply")


def test_no_base_is_a_one_line_error(tmp_path: Path, cli: Cli, fake_proc: FakeProc) -> None:
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { }; }\n")
    result = cli("diff", repo, env={"GITHUB_ACTIONS": "", "GITLAB_CI": ""})
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ci-nix: error: nothing to compare with") and "--base REV" in last
    assert "Traceback" not in result.stderr
    # said before evaluating anything (#23): no Nix evaluation ran
    assert not fake_proc.ran("nix", "eval") and "evaluating" not in result.stderr


# One Nix: the forge side does not depend on the Nix version
@ONE_NIX
def test_comment_once_then_edited_and_step_summary(fixture_ws: Path, tmp_path: Path,
                                                   cli: Cli, nix_bin: str) -> None:
    import forgefakes

    modules = fixture_ws / "modules"
    base = git(modules, "rev-parse", "HEAD").strip()
    commit_edit(modules, OLD_GREETING, NEW_GREETING, "greeting 1.1")
    fake = forgefakes.start("github", "acme/modules")
    fake.pulls.append({"number": 7, "state": "open", "title": "greeting 1.1", "body": "",
                       "branch": "bump", "base": "main", "labels": [], "assignees": [],
                       "reviewers": []})
    event, summary = tmp_path / "event.json", tmp_path / "summary.md"
    event.write_text(json.dumps({"pull_request": {
        "number": 7, "base": {"sha": base, "repo": {"full_name": "acme/modules"}},
        "head": {"sha": "0" * 40, "repo": {"full_name": "acme/modules"}}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/modules",
           "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": forgefakes.TOKEN,
           "GITHUB_STEP_SUMMARY": str(summary), "GITLAB_CI": ""}
    try:
        first = cli("diff", modules, "--comment", "--only", "hosts#nixosConfigurations.web",
                    env=env)
        assert "commented on pull request 7" in first.stdout, first.stderr
        commit_edit(modules, "greeting-1.1", "greeting-1.2", "greeting 1.2")
        second = cli("diff", modules, "--comment", "--only", "hosts#nixosConfigurations.web",
                     env=env)
        assert "updated comment" in second.stdout, second.stderr
    finally:
        fake.close()
    assert len(fake.comments) == 1
    body = fake.comments[0]["body"]
    assert "greeting: 1.0 -> 1.2" in body and "`hosts#nixosConfigurations.web` | changed" in body
    text = summary.read_text()
    assert text.count("## What changes") == 2
    assert f"Compared `{base[:12]}` (base, the merge-base with {base} from GitHub" in text
    assert "**hosts**: --only" in text or "**hosts**: depends on modules" in text


# One Nix: the forge side does not depend on the Nix version
@ONE_NIX
def test_run_comment_on_a_gitlab_merge_request(fixture_ws: Path, tmp_path: Path, cli: Cli,
                                               nix_bin: str) -> None:
    import forgefakes

    modules = fixture_ws / "modules"
    base = git(modules, "rev-parse", "HEAD").strip()
    commit_edit(modules, OLD_GREETING, NEW_GREETING, "greeting 1.1")
    fake = forgefakes.start("gitlab", "infra/modules")
    fake.pulls.append({"iid": 3, "state": "opened", "title": "greeting 1.1", "description": "",
                       "source_branch": "bump", "target_branch": "main", "labels": [],
                       "assignee_ids": [], "reviewer_ids": [],
                       "merge_when_pipeline_succeeds": False})
    env = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "3",
           "CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_PROJECT_PATH": "infra/modules",
           "CI_SERVER_URL": fake.url, "GITLAB_TOKEN": forgefakes.TOKEN, "GITHUB_ACTIONS": ""}
    try:
        result = cli("run", modules, "--comment", "--only", "hosts#nixosConfigurations.db",
                     env=env)
    finally:
        fake.close()
    assert result.returncode == 0, result.stderr
    assert "commented on merge request 3" in result.stdout
    # the job log has the collapsed section; db was built (no --skip-unchanged)
    assert "section_start:" in result.stdout and "What changes:" in result.stdout
    assert "0 changed" not in result.stdout and "1 unchanged" in result.stdout
    assert len(fake.comments) == 1 and "Unchanged: `hosts#nixosConfigurations.db`" in \
        fake.comments[0]["body"]


def nix_cli(nix_bin: str, *args: str) -> str:
    import shlex

    done = subprocess.run([*shlex.split(nix_bin), "--extra-experimental-features",
                           "nix-command flakes", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"nix {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_closure_size_from_a_binary_cache(fixture_ws: Path, tmp_path: Path, cli: Cli,
                                          nix_bin: str) -> None:
    modules, hosts = fixture_ws / "modules", fixture_ws / "hosts"
    web = "hosts#nixosConfigurations.web"
    first = cli("run", modules, "--only", web)
    assert first.returncode == 0, first.stderr
    toplevel = f"git+file://{hosts}#nixosConfigurations.web.config.system.build.toplevel"
    base_out = nix_cli(nix_bin, "eval", "--raw", f"{toplevel}.outPath")
    # the base's web is only in a binary cache now, not in the local store
    cache = f"file://{tmp_path / 'cache'}"
    nix_cli(nix_bin, "copy", "--to", cache, base_out)
    nix_cli(nix_bin, "store", "delete", base_out)
    commit_edit(modules, OLD_GREETING, NEW_GREETING, "greeting 1.1")
    # with a base, hosts is built against the changed modules: the head's web
    second = cli("run", modules, "--base", "HEAD~1", "--only", web)
    assert second.returncode == 0, second.stderr
    without = cli("diff", modules, "--base", "HEAD~1", "--only", web)
    assert "closure" not in without.stdout, without.stdout + without.stderr
    found = cli("diff", modules, "--base", "HEAD~1", "--only", web,
                "--option", "substituters", cache, "-v")
    assert "3 derivations to rebuild, closure " in found.stdout, found.stdout + found.stderr
    # the base evaluated by the diff before (substituters only concern building): all of it
    # from the evaluation cache, looked up at the base commit with no worktree checked out
    assert "from the evaluation cache (no worktree)" in found.stderr, found.stderr
    assert "worktree add" not in found.stderr
    # looked up beside the head's evaluation (P8), not after it, and not again
    assert "entries were looked up while the head was evaluated" in found.stderr
    assert found.stderr.count(" of 1 flake") == 2, found.stderr  # the head's, the base's
    # the merge-base change detection found is the base's; the head's commit and state are
    # the checkouts the plan read (modules, hosts): git is asked each once
    assert found.stderr.count(" merge-base ") == 1, found.stderr
    assert found.stderr.count(" status --porcelain") == 2, found.stderr
    assert "(-16 B)" in found.stdout, found.stdout


# One Nix: "nothing to compare with" is ci-nix's decision before any evaluation of a base; the
# build after it is every run's (test_skip_unchanged_builds_only_what_changed, on both Nixes)
@ONE_NIX
def test_skip_unchanged_without_a_base_builds_everything(fixture_ws: Path, tmp_path: Path,
                                                         cli: Cli) -> None:
    report = tmp_path / "run.json"
    result = cli("run", fixture_ws / "hosts", "--skip-unchanged", "--json", report,
                 "--only", "hosts#nixosConfigurations.db",
                 env={"GITHUB_ACTIONS": "", "GITLAB_CI": ""})
    assert result.returncode == 0, result.stderr
    assert "--skip-unchanged: nothing to compare with" in result.stdout
    cases = json.loads(report.read_text())["cases"]
    assert [(c["attr"], c["status"]) for c in cases] == [("nixosConfigurations.db", "passed")]
