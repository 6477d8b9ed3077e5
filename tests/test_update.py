"""ci-nix update end to end: real Nix, real git with bare remotes, forge fakes on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import forgefakes
import make_workspace
import pytest
from conftest import ONE_NIX, Cli
from fakeproc import Call, FakeProc, Reply
from helpers import git

from ci_nix import bots
from ci_nix.update.credentials import credential_env


def new_modules_commit(ws: Path, remotes: Path, text: str) -> str:
    readme = ws / "modules" / "README.md"
    readme.write_text(readme.read_text() + text + "\n")
    git(ws / "modules", "commit", "-qam", text)
    git(ws / "modules", "push", "-q", str(remotes / "modules.git"), "main")
    return git(ws / "modules", "rev-parse", "HEAD")


@pytest.fixture
def estate(tmp_path: Path, nix_bin: str) -> tuple[Path, Path]:
    """The fixture workspace pushed to bare repos, hosts locking modules from its bare repo;
    then modules gets a new commit. Returns (workspace, remotes dir)."""
    ws = make_workspace.make(tmp_path / "ws")
    remotes = tmp_path / "remotes"
    remotes.mkdir()
    git(remotes, "clone", "-q", "--bare", str(ws / "modules"), "modules.git")
    flake = ws / "hosts" / "flake.nix"
    flake.write_text(flake.read_text().replace(f"git+file://{ws / 'modules'}",
                                               # Nix 2.8 takes `master` for a bare repo's HEAD
                                               f"git+file://{remotes / 'modules.git'}?ref=main"))
    make_workspace.nix("flake", "lock", cwd=ws / "hosts")
    git(ws / "hosts", "commit", "-qam", "hosts: modules from its remote")
    for name in ("hosts-gh", "hosts-gl"):
        git(remotes, "clone", "-q", "--bare", str(ws / "hosts"), f"{name}.git")
    new_modules_commit(ws, remotes, "modules: a new commit")
    return ws, remotes


def github_checkout(tmp_path: Path, remotes: Path) -> tuple[Path, Path, forgefakes.FakeForge]:
    """A clone of the estate's hosts-gh remote, a ci-nix.yaml whose forge is a fresh GitHub
    fake for acme/hosts, and that fake (the caller closes it)."""
    github = forgefakes.start("github", "acme/hosts")
    checkout = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout))
    config = tmp_path / "ci-nix.yaml"
    config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts}}\n")
    return checkout, config, github


Fakes = tuple[forgefakes.FakeForge, forgefakes.FakeForge]  # the fakes fixture: (github, gitlab)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    github = forgefakes.start("github", "acme/hosts")
    gitlab = forgefakes.start("gitlab", "infra/hosts", "infra/modules")
    yield github, gitlab
    github.close()
    gitlab.close()


def bots_yaml(path: Path, remotes: Path, github: forgefakes.FakeForge,
              gitlab: forgefakes.FakeForge) -> Path:
    # modules is listed last: ci-nix must still do it first (hosts locks it).
    path.write_text(f"""\
forges:
  gh: {{type: github, url: "{github.url}", token-env: FAKE_GH_TOKEN}}
  gl: {{type: gitlab, url: "{gitlab.url}", token-env: FAKE_GL_TOKEN}}
update:
  labels: [dependencies]
  author: Update Bot <bot@example.com>
repos:
  - name: hosts
    forge: gh
    project: acme/hosts
    clone: file://{remotes / 'hosts-gh.git'}
  - name: hosts-mirror
    forge: gl
    project: infra/hosts
    clone: file://{remotes / 'hosts-gl.git'}
    update: {{auto-merge: true}}
  - name: gone
    forge: gl
    project: infra/gone
    clone: file://{remotes / 'gone.git'}
  - name: modules
    forge: gl
    project: infra/modules
    clone: file://{remotes / 'modules.git'}
""")
    return path


TOKENS = {"FAKE_GH_TOKEN": forgefakes.TOKEN, "FAKE_GL_TOKEN": forgefakes.TOKEN}


@pytest.mark.slow
@pytest.mark.nix
def test_nightly_opens_updates_and_closes(estate: tuple[Path, Path], fakes: Fakes, tmp_path: Path,
                                          cli: Cli) -> None:
    ws, remotes = estate
    github, gitlab = fakes
    old = git(ws / "modules", "rev-parse", "HEAD~1")
    new = git(ws / "modules", "rev-parse", "HEAD")
    config, junit = bots_yaml(tmp_path / "bots.yaml", remotes, github, gitlab), tmp_path / "j.xml"

    result = cli("update", "--config", config, "--junit", junit, env=TOKENS)
    assert result.returncode == 1, result.stdout + result.stderr  # `gone` fails; the others go on
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    order = [line.split(":")[0] for line in lines if line.split(":")[0] != "4 repos"]
    assert order == ["modules", "hosts", "hosts-mirror", "gone"]  # upstream first
    assert "modules: ci-nix/flake-update: unchanged" in result.stdout
    assert "hosts: ci-nix/flake-update: created #1" in result.stdout
    assert "hosts-mirror: ci-nix/flake-update: created #1" in result.stdout
    assert "4 repos: 3 ok, 1 failed" in result.stdout
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    assert set(cases) == {"modules", "hosts", "hosts-mirror", "gone"}
    assert cases["gone"].find("failure") is not None and cases["hosts"].find("failure") is None

    (pr,) = github.pulls
    (mr,) = gitlab.pulls
    assert pr["title"] == mr["title"] == "flake.lock: update modules"
    for body in (pr["body"], mr["description"]):
        assert f"`{old[:7]}` → `{new[:7]}`" in body
        assert f"[compare]({gitlab.url}/infra/modules/-/compare/{old}...{new})" in body
        assert "| `modules` |" in body and " → 20" in body  # dates
    assert pr["labels"] == ["dependencies"] and mr["labels"] == ["dependencies"]
    assert mr["merge_when_pipeline_succeeds"] is True and "auto_merge" not in pr
    # the branch carries the new lock, the base branch is untouched
    branch_lock = git(remotes / "hosts-gh.git", "show", "ci-nix/flake-update:flake.lock")
    assert new in branch_lock and old not in branch_lock
    assert old in git(remotes / "hosts-gh.git", "show", "main:flake.lock")
    assert git(remotes / "hosts-gh.git", "log", "-1", "--format=%an <%ae>",
               "ci-nix/flake-update") == "Update Bot <bot@example.com>"

    # Again with nothing new: same PR/MR, no writes, no push.
    writes = (len(github.writes()), len(gitlab.writes()))
    tip = git(remotes / "hosts-gh.git", "rev-parse", "ci-nix/flake-update")
    result = cli("update", "--config", config, env=TOKENS)
    assert "hosts: ci-nix/flake-update: unchanged #1" in result.stdout, result.stderr
    assert (len(github.writes()), len(gitlab.writes())) == writes
    assert git(remotes / "hosts-gh.git", "rev-parse", "ci-nix/flake-update") == tip

    # Upstream moves again: the same PR/MR is updated, not duplicated.
    newer = new_modules_commit(ws, remotes, "modules: another commit")
    result = cli("update", "--config", config, env=TOKENS)
    assert "hosts: ci-nix/flake-update: updated #1" in result.stdout, result.stderr
    assert "hosts-mirror: ci-nix/flake-update: updated #1" in result.stdout
    assert len(github.pulls) == 1 and len(gitlab.pulls) == 1
    assert f"`{old[:7]}` → `{newer[:7]}`" in github.pulls[0]["body"]
    assert f"`{old[:7]}` → `{newer[:7]}`" in gitlab.pulls[0]["description"]

    # The update lands on main (merged by hand): nothing left, so the PR closes, branch goes.
    for name in ("hosts-gh", "hosts-gl"):
        git(remotes / f"{name}.git", "update-ref", "refs/heads/main",
            "refs/heads/ci-nix/flake-update")
    result = cli("update", "--config", config, env=TOKENS)
    assert "hosts: ci-nix/flake-update: closed #1" in result.stdout, result.stderr
    assert "hosts-mirror: ci-nix/flake-update: closed #1" in result.stdout
    assert github.pulls[0]["state"] == "closed" and gitlab.pulls[0]["state"] == "closed"
    assert git(remotes / "hosts-gh.git", "branch", "--list", "ci-nix/flake-update") == ""


@pytest.mark.nix
def test_single_repo_dry_run_then_github_outputs(estate: tuple[Path, Path], fakes: Fakes,
                                                 tmp_path: Path, cli: Cli) -> None:
    _, remotes = estate
    github, _ = fakes
    checkout = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout))
    config = tmp_path / "ci-nix.yaml"
    config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts}}\n"
                      "update: {branch: bot/lock, reviewers: [carol]}\n")
    head = git(checkout, "rev-parse", "HEAD")

    result = cli("update", checkout, "--config", config, "--input", "modules", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "flake.lock: update modules" in result.stdout and "| `modules` |" in result.stdout
    assert github.requests == []  # no forge call at all
    assert git(remotes / "hosts-gh.git", "branch", "--list", "bot/lock") == ""
    assert git(checkout, "rev-parse", "HEAD") == head
    assert git(checkout, "status", "--porcelain") == ""

    outputs = tmp_path / "gh-output"
    env = {"GITHUB_TOKEN": forgefakes.TOKEN, "GITHUB_ACTIONS": "true",
           "GITHUB_OUTPUT": str(outputs)}
    result = cli("update", checkout, "--config", config, env=env)
    assert result.returncode == 0, result.stderr
    assert outputs.read_text() == (f"pull-request-number=1\npull-request-url={github.url}/"
                                   "acme/hosts/pull/1\npull-request-operation=created\n")
    assert github.pulls[0]["branch"] == "bot/lock" and github.pulls[0]["reviewers"] == ["carol"]
    assert git(checkout, "status", "--porcelain") == ""  # the lock went to the branch only
    assert forgefakes.TOKEN not in (checkout / ".git" / "config").read_text()

    per_input = tmp_path / "per-input.yaml"
    per_input.write_text("update: {group: false}\n")
    result = cli("update", checkout, "--config", per_input, "--dry-run")
    assert "(branch ci-nix/flake-update-modules, dry run)" in result.stdout, result.stderr

    result = cli("update", checkout, "--config", config, "--input", "nope", "--dry-run")
    assert result.returncode == 2 and "no flake has an input named 'nope'" in result.stderr


def test_missing_token_is_a_one_line_error(tmp_path: Path, cli: Cli) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "flake.nix").write_text("{ outputs = _: { }; }\n")
    git(repo, "add", "flake.nix")
    config = tmp_path / "c.yaml"
    config.write_text("forge: {type: gitlab, project: g/p, token-env: NO_SUCH_TOKEN_VAR}\n")
    result = cli("update", repo, "--config", config, env={"NO_SUCH_TOKEN_VAR": ""})
    assert result.returncode == 2
    assert "NO_SUCH_TOKEN_VAR is not set" in result.stderr and "Traceback" not in result.stderr


def _bare_remote(tmp_path: Path, name: str, files: dict[str, str],
                 links: dict[str, Path] | None = None) -> Path:
    """A repo holding these files (and symlinks) committed on main, cloned bare to
    tmp_path/remotes/NAME.git: a bots.yaml `clone:`."""
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    for rel, text in files.items():
        (src / rel).write_text(text)
    for rel, target in (links or {}).items():
        (src / rel).symlink_to(target)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "a bots fixture")
    remote = tmp_path / "remotes" / f"{name}.git"
    git(tmp_path, "clone", "-q", "--bare", str(src), str(remote))
    return remote


def test_a_bots_repo_whose_nix_options_key_is_reached_through_a_link_in_a_clone_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_proc: FakeProc) -> None:
    """bots.yaml: a repo's ci-nix.yaml nix-options (and --option) reach Nix, which reads
    secret-key-files itself and follows links. As in `run`, a key named through a symlink
    inside a clone (a directory the repo committed as a link to the runner's keys) is refused
    for that repo, one line naming the setting, before any Nix call; the other repos go on."""
    import contextlib
    import shutil
    import tempfile

    from ci_nix.tools.git import Git
    from ci_nix.tools.nix import Nix

    runner = tmp_path / "etc" / "nix"  # the runner's own signing key
    runner.mkdir(parents=True)
    (runner / "cache.sec").write_text("runner-key-1:c2VjcmV0\n")
    clones = tmp_path / "clones"  # where bots clones: a random name, fixed here
    clones.mkdir()
    monkeypatch.setattr(tempfile, "TemporaryDirectory",
                        lambda **_: contextlib.nullcontext(str(clones)))
    linked = clones / "app" / "keys" / "cache.sec"
    remotes = tmp_path / "remotes"
    for name, options in (("app", f"nix-options:\n  secret-key-files: /run/k.sec {linked}\n"),
                          ("lib", "nix-options:\n  max-jobs: 3\n")):
        _bare_remote(tmp_path, name, {"flake.nix": "{ outputs = _: { }; }\n",
                                      "ci-nix.yaml": options}, {"keys": runner})
    config = tmp_path / "bots.yaml"
    config.write_text("forges:\n  gl: {type: gitlab, url: 'http://127.0.0.1:9'}\nrepos:\n"
                      + "".join(f"  - {{name: {n}, forge: gl, project: g/{n}, "
                                f"clone: 'file://{remotes / n}.git'}}\n" for n in ("app", "lib")))
    fake_proc.on("nix", returncode=1, stderr="error: no Nix in this test\n")
    results = {r.repo: r for r in bots.run(config, Nix(("nix",)), Git.from_env(), dry_run=True,
                                           environ={})}
    error = results["app"].error or ""
    # a repo's own privileged setting is not taken at all on the platform's runner (before its
    # link is looked at); what a pull request may set still is
    assert error.startswith("ci-nix.yaml: nix-options.secret-key-files is a privileged Nix "
                            "setting, which a bots run does not take"), error
    assert "runner-key-1" not in error and "\n" not in error
    assert "privileged" not in (results["lib"].error or "")
    assert not any("app" in arg or "secret-key" in arg
                   for call in fake_proc.ran("nix") for arg in call.argv)
    # the command line's --option is checked against the clones too
    shutil.rmtree(clones)
    clones.mkdir()
    results = {r.repo: r for r in bots.run(
        config, Nix(("nix",)), Git.from_env(), dry_run=True, environ={},
        nix_options=(("extra-secret-key-files", str(clones / "lib" / "keys" / "k.sec")),))}
    assert (results["lib"].error or "").startswith(
        f"--option extra-secret-key-files {clones / 'lib' / 'keys' / 'k.sec'}: ")


def test_no_forges_token_reaches_a_repos_nix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             fake_proc: FakeProc) -> None:
    """bots.yaml: each repo's Nix runs with that repo's own nix-options (from its default
    branch: `pure-eval: false` lets its flake read the environment, and a fixed-output build
    has the network). No forge's token may be in that environment: the first repo's Nix saw
    every token not yet used (in a dry run: all of them)."""
    import os

    from ci_nix import mask
    from ci_nix.tools.git import Git
    from ci_nix.tools.nix import Nix

    tokens = {"BOTS_GH_TOKEN": "ghp_" + "a" * 36, "BOTS_GL_TOKEN": "glpat-" + "b" * 20}
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    remotes = tmp_path / "remotes"
    for name in ("a", "b"):
        _bare_remote(tmp_path, name, {
            "flake.nix": "{ outputs = _: { }; }\n",
            "flake.lock": '{"nodes": {"root": {}}, "root": "root", "version": 7}\n'})
    config = tmp_path / "bots.yaml"
    config.write_text("forges:\n"
                      "  gl: {type: gitlab, url: 'http://127.0.0.1:9', token-env: BOTS_GL_TOKEN}\n"
                      "  gh: {type: github, url: 'http://127.0.0.1:9', token-env: BOTS_GH_TOKEN}\n"
                      "repos:\n"
                      + "".join(f"  - {{name: {n}, forge: {f}, project: g/{n}, "
                                f"clone: 'file://{remotes / n}.git'}}\n"
                                for n, f in (("a", "gl"), ("b", "gh"))))
    seen: list[set[str]] = []

    def nix(call: Call) -> Reply:  # the environment the real spawn gives Nix
        seen.append({name for name in tokens if name in mask.child_environ(os.environ)})
        return Reply(returncode=1, stderr="error: no Nix in this test\n")

    fake_proc.on("nix", handler=nix)
    bots.run(config, Nix(("nix",)), Git.from_env(), dry_run=True, environ=dict(os.environ))
    assert seen and all(not names for names in seen), seen


def test_bots_yaml_errors_name_the_line(tmp_path: Path, cli: Cli) -> None:
    config = tmp_path / "bots.yaml"
    config.write_text("forges:\n  gl: {type: gitlab}\nrepos:\n  - name: a\n    forge: gh\n"
                      "    project: g/a\n    clone: https://example.invalid/a.git\n")
    result = cli("update", "--config", config)
    assert result.returncode == 2
    assert f"{config}:4: forge 'gh' is not defined under 'forges:'" in result.stderr
    config.write_text("repos:\n  - name: a\n    clone: x\n    colour: red\n")
    result = cli("update", "--config", config)
    assert f"{config}:4: unknown key 'repos.colour'" in result.stderr


def test_bots_yaml_targets_come_from_the_file_not_the_ci_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the nightly job runs in some repo's CI: its variables name that repo, not the listed ones
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/bots")
    config = tmp_path / "bots.yaml"
    config.write_text("forges:\n  gh: {type: github}\nrepos:\n  - name: a\n    forge: gh\n"
                      "    project: acme/a\n    clone: https://github.com/acme/a.git\n")
    (repo,) = bots.load(config)
    assert (repo.forge.kind, repo.forge.project, repo.forge.url) == ("github", "acme/a", None)
    assert repo.forge.token_env == "GITHUB_TOKEN" and repo.web_url == "https://github.com/acme/a"


# --- credentials: what git is given ------------------------------------------------------------

def test_credential_env_keeps_the_token_out_of_argv_and_config() -> None:
    env = credential_env("https://gitlab.example.com/g/p.git", "gitlab", "glpat-secret",
                         environ={"GIT_CONFIG_COUNT": "2"})
    assert env["GIT_CONFIG_COUNT"] == "3"
    assert env["GIT_CONFIG_KEY_2"] == "http.https://gitlab.example.com/.extraHeader"
    expected = base64.b64encode(b"oauth2:glpat-secret").decode()
    assert env["GIT_CONFIG_VALUE_2"] == f"Authorization: Basic {expected}"
    gh = credential_env("https://github.com/o/r", "github", "ghs_x1234", environ={})
    assert base64.b64decode(gh["GIT_CONFIG_VALUE_0"].split()[-1]) == b"x-access-token:ghs_x1234"
    assert "GIT_CONFIG_COUNT" not in credential_env("file:///srv/r.git", "github", "t0ken", {})


def test_git_sends_the_header_from_the_environment(tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/g/p.git"
        env = credential_env(url, "gitlab", "tok-12345", environ={})
        repo = tmp_path / "r"
        repo.mkdir()
        git(repo, "init", "-q")
        proc = subprocess.run(["git", "-C", str(repo), "ls-remote", url], check=False,
                              capture_output=True,
                              text=True, env={**os.environ, **env})
        assert proc.returncode != 0  # the fake has no repository; we only want the request
        basic = base64.b64encode(b"oauth2:tok-12345").decode()
        assert seen and seen[0] == f"Basic {basic}"
        assert "tok-12345" not in (repo / ".git" / "config").read_text()
    finally:
        server.shutdown()
        server.server_close()


# --- failures as a tool, and runs at once ------------------------------------------------------

def failure_of(junit: Path) -> str:
    (case,) = ET.parse(junit).iter("testcase")
    failure = case.find("failure")
    assert failure is not None
    return str(failure.get("message"))


def test_junit_is_written_when_the_path_is_not_a_git_repo(tmp_path: Path, cli: Cli) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    junit = tmp_path / "r.xml"
    result = cli("update", plain, "--dry-run", "--junit", junit)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "git" in failure_of(junit)


# One Nix: what fails is the forge's answer, after Nix updated the lock (each Nix version's
# update is test_nightly_opens_updates_and_closes', on both)
@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("status", [500, 429, 401])
def test_forge_errors_keep_the_status_and_write_the_junit(estate: tuple[Path, Path], fakes: Fakes,
                                                         tmp_path: Path, cli: Cli,
                                                         status: int) -> None:
    _, remotes = estate
    github, _ = fakes
    checkout = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout))
    config = tmp_path / "ci-nix.yaml"
    config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts}}\n")
    for _ in range(6):  # more than the retries: the forge never recovers
        github.fail_next("GET", status, {"Retry-After": "0"}, {"message": "injected"})
    junit = tmp_path / "r.xml"
    result = cli("update", checkout, "--config", config, "--junit", junit,
                 env={"GITHUB_TOKEN": forgefakes.TOKEN})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = failure_of(junit)
    assert f"HTTP {status}" in message and f"HTTP {status}" in result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    if status == 401:
        assert retries == []  # a bad token says the same again
    else:
        assert len(retries) == 4 and "gave up after 5 attempts" in message
        assert "attempt 5 of 5" in retries[-1]  # no retry announced before giving up


# One Nix: what is proven is that three runs at once each update in a worktree of their own
# and leave the shared checkout as committed (ci-nix's); each Nix version's update in such a
# private worktree is test_nightly_opens_updates_and_closes', on both
@pytest.mark.nix
@ONE_NIX
def test_concurrent_updates_of_one_checkout_each_see_the_committed_lock(
        estate: tuple[Path, Path], tmp_path: Path) -> None:
    _, remotes = estate
    checkout = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout))
    lock_before = (checkout / "flake.lock").read_text()
    written_before = (checkout / "flake.lock").stat().st_mtime_ns
    runs = [subprocess.Popen([sys.executable, "-m", "ci_nix", "update", str(checkout),
                              "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        # every run saw HEAD's lock as "before": the modules row is there in each
        assert "flake.lock: update modules" in out and "| `modules` |" in out, out + err
    assert (checkout / "flake.lock").read_text() == lock_before
    # never written at all, not even put back: another run could have read it meanwhile
    assert (checkout / "flake.lock").stat().st_mtime_ns == written_before
    assert git(checkout, "status", "--porcelain") == ""
    assert git(checkout, "worktree", "list").count("\n") == 0  # private worktrees removed


# One Nix: what is cut short is ci-nix's wait for the forge; Nix only updated the lock before it
# (which each Nix version's update does is test_nightly_opens_updates_and_closes', on both)
@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("status", [502, 429])
def test_sigterm_ends_a_forge_retry_wait(
        estate: tuple[Path, Path], fakes: Fakes,
        tmp_path: Path, status: int) -> None:
    """A forge that asks to come back in minutes does not hold a cancelled update (#14)."""
    _, remotes = estate
    github, _ = fakes
    checkout = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout))
    config = tmp_path / "ci-nix.yaml"
    # a budget that lets it wait (the default, 60 s, would give up at once: test_faults.py)
    config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts, "
                      "timeout: 1000}\n")
    for _ in range(6):
        github.fail_next("GET", status, {"Retry-After": "600"}, {"message": "injected"})
    junit = tmp_path / "r.xml"
    run = subprocess.Popen([sys.executable, "-m", "ci_nix", "update", str(checkout), "--config",
                            str(config), "--junit", str(junit)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "GITHUB_TOKEN": forgefakes.TOKEN,
                                "PYTHONFAULTHANDLER": "1"})
    try:
        assert run.stderr is not None
        seen = []
        for line in run.stderr:  # Nix updates the lock first; the forge is asked after
            seen.append(line)
            if "retrying in" in line:
                break  # now waiting out the Retry-After
        assert run.poll() is None, "".join(seen)
        run.send_signal(signal.SIGTERM)
        # a guard only: the wait is 120 s, so ending before it means the signal cut it short
        try:
            out, err = run.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # seen hanging in 2 of 4 full suites (session 12), never alone: the child's threads
            # as faulthandler dumps them on SIGABRT say where a cancelled update waits
            run.send_signal(signal.SIGABRT)
            _, dump = run.communicate(timeout=30)
            pytest.fail("ci-nix update still ran 60 s after SIGTERM; its threads:\n"
                        + "".join(seen)[-2000:] + dump[-8000:])
        err = "".join(seen) + err
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 143, out + err
    assert "Traceback" not in err
    assert "retrying in 120s" in err  # it was waiting (Retry-After capped at forge.MAX_WAIT)
    assert "cancelled by signal 15" in failure_of(junit)
