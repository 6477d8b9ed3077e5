"""Clean faults at the trust boundary: a workspace path that leaves the workspace, a shallow
checkout, a read-only checkout — each a one-line error naming the cause, or made to work."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import forgefakes
import make_workspace
import pytest
from conftest import ONE_NIX, Cli, flake_repo
from httpcache import TEST_KEY, BinaryCache

from ci_nix import config as config_mod
from ci_nix.cache.client import query
from ci_nix.cache.retry import RetryPolicy
from ci_nix.config import DEFAULT_TIMEOUT
from ci_nix.errors import ConfigError, ForgeError
from ci_nix.forge import resolve
from ci_nix.forge.github import GitHubForge
from ci_nix.forge.gitlab import GitLabForge
from ci_nix.tools.git import Git, GitError


def test_a_repo_path_may_not_leave_the_workspace(tmp_path: Path, cli: Cli) -> None:
    ws = tmp_path / "a" / "b" / "ws"
    ws.mkdir(parents=True)
    source = flake_repo(tmp_path / "source", "{ outputs = { self }: { }; }")
    for path in ("../../..", "/tmp", "inner/../../elsewhere"):
        (ws / "ci-nix.yaml").write_text(
            f"systems: [x86_64-linux]\nrepos:\n  - path: {path}\n    url: file://{source}\n")
        with pytest.raises(ConfigError, match=f"ci-nix.yaml:3: 'repos.path' is '{path}', which "
                           f"leaves {ws}; give a directory in it"):
            config_mod.load(ws / "ci-nix.yaml")
        result = cli("detect", ws)
        assert result.returncode == 2 and "leaves" in result.stderr.strip().splitlines()[-1]
    (ws / "out").symlink_to(tmp_path)  # a symlink out counts as leaving
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: out/source\n")
    with pytest.raises(ConfigError, match="'repos.path' is 'out/source', which leaves"):
        config_mod.load(ws / "ci-nix.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "source"]  # nothing was cloned
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: .\n  - path: sub/dir\n")
    assert [s.path for s in config_mod.load(ws / "ci-nix.yaml").repos] == [ws, ws / "sub/dir"]


SHALLOW_FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.hello = derivation {
      name = "shallow-@NONCE@"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo hi > $out" ];
    };
  };
}
"""


@pytest.mark.nix
def test_a_depth_one_checkout_is_built(tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    source = flake_repo(tmp_path / "source",
                        SHALLOW_FLAKE.replace("@NONCE@", uuid.uuid4().hex[:10]))
    (source / "README").write_text("second commit\n")
    make_workspace.git(source, "add", "README")
    make_workspace.git(source, "commit", "-qm", "second")
    clone = tmp_path / "clone"
    make_workspace.git(tmp_path, "clone", "-q", "--depth=1", f"file://{source}", str(clone))
    assert make_workspace.git(clone, "rev-parse", "--is-shallow-repository").strip() == "true"
    result = cli("run", "--all", clone, "--junit", tmp_path / "r.xml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stderr + result.stdout


def test_a_read_only_checkout_is_named_as_the_cause(tmp_path: Path) -> None:
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { }; }")
    view = tmp_path / "view"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(repo), str(view)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {mounted.stderr!r}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        git = Git.from_env()
        with pytest.raises(GitError) as raised:
            git.check(view, ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach",
                             str(tmp_path / "tree"), "HEAD"])
    finally:
        subprocess.run(["umount", str(view)], check=True)
    message = str(raised.value)
    assert message.startswith(f"git worktree add in {view} failed: {view} is on a read-only file "
                              "system and git must write there; run on a writable checkout (")
    assert "\n" not in message


# --- bounded waits -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_huge_retry_after_gives_up_within_forge_timeout(kind: str) -> None:
    fake = forgefakes.start(kind, "acme/hosts" if kind == "github" else "infra/hosts")
    try:
        sleeps: list[float] = []

        def forge(budget: float) -> GitHubForge | GitLabForge:
            if kind == "github":
                return GitHubForge(fake.project, forgefakes.TOKEN, fake.url, sleeps.append,
                                   pace=(0, 0), budget=budget)
            return GitLabForge(fake.project, forgefakes.TOKEN, fake.url, sleeps.append,
                               budget=budget)

        for _ in range(5):
            fake.fail_next("GET", 429, {"Retry-After": "480"}, {"message": "slow down"})
        with pytest.raises(ForgeError) as raised:
            forge(DEFAULT_TIMEOUT).project()
        assert sleeps == []  # not a second of the 480 (nor 4 x 120) was waited
        assert "gave up rather than wait 480s more, past forge.timeout (60s in all)" in \
            str(raised.value)
        assert len(fake.requests) == 1
        fake.failures.clear()
        # backoff that fits the budget is waited out; a budget that allows it, a capped wait
        fake.requests.clear()
        for _ in range(3):
            fake.fail_next("GET", 502)
        assert forge(DEFAULT_TIMEOUT).project().path == fake.project
        assert sleeps == [1.0, 2.0, 4.0]
        sleeps.clear()
        fake.fail_next("GET", 429, {"Retry-After": "480"}, {"message": "slow down"})
        assert forge(1000).project().path == fake.project and sleeps == [120.0]
    finally:
        fake.close()


def test_forge_timeout_is_read_from_ci_nix_yaml(tmp_path: Path) -> None:
    (tmp_path / "ci-nix.yaml").write_text("forge: {timeout: 5}\ncache: {timeout: 2.5}\n")
    loaded = config_mod.load(tmp_path / "ci-nix.yaml")
    assert (loaded.forge.timeout, loaded.cache.timeout) == (5, 2.5)
    assert resolve("github", "a/b", None, None, {}, loaded.forge.timeout).timeout == 5
    assert config_mod.Config().forge.timeout == config_mod.Config().cache.timeout == 60
    (tmp_path / "ci-nix.yaml").write_text("forge: {timeout: forever}\n")
    with pytest.raises(ConfigError, match="ci-nix.yaml:1: 'forge.timeout' must be a number"):
        config_mod.load(tmp_path / "ci-nix.yaml")


def test_a_cache_that_hangs_is_given_up_within_cache_timeout() -> None:
    paths = [f"/nix/store/{str(i) * 32}-p{i}" for i in range(1, 5)]
    with BinaryCache() as server:
        server.fail("hang", methods=("GET",))
        # each request alone could wait 30 s and be retried 4 times; the batch gets 1 s
        answer = query(server.url, paths, "tok", RetryPolicy(timeout=30, sleep=lambda _: None),
                       budget=1.0, trust=TEST_KEY.trust)
        server.heal()
    assert answer.cached == frozenset()
    assert answer.error is not None and answer.error.endswith(
        "no complete answer within 1s in all (cache.timeout)")


# One Nix: the git side does not depend on the Nix version
@pytest.mark.nix
@ONE_NIX
def test_a_shallow_clone_without_the_base_is_named_as_the_cause(tmp_path: Path, cli: Cli,
                                                                nix_bin: str) -> None:
    source = flake_repo(tmp_path / "source",
                        SHALLOW_FLAKE.replace("@NONCE@", uuid.uuid4().hex[:10]))
    base = make_workspace.git(source, "rev-parse", "HEAD").strip()
    (source / "README").write_text("second commit\n")
    make_workspace.git(source, "add", "README")
    make_workspace.git(source, "commit", "-qm", "second")
    clone = tmp_path / "clone"
    make_workspace.git(tmp_path, "clone", "-q", "--depth=1", f"file://{source}", str(clone))
    make_workspace.git(clone, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    result = cli("diff", clone, "--base", base)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"ci-nix: error: base {base} (--base): {clone} is a shallow clone without the history "
        "where base and head meet, and fetching it failed; fetch more (e.g. actions/checkout "
        "fetch-depth: 0, GIT_DEPTH: 0 on GitLab)")
