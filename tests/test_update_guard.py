"""`ci-nix update` never pushes to the default or a protected branch, never overwrites commits it
did not make, and a rerun completes what an interrupted run left on the merge request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import forgefakes
import pytest
from conftest import ONE_NIX, Cli
from helpers import git
from test_update import estate, new_modules_commit  # noqa: F401 - estate is a fixture

from ci_nix.forge.github import GitHubForge
from ci_nix.forge.gitlab import GitLabForge
from ci_nix.update.markdown import MARKER

BRANCH = "ci-nix/flake-update"


@pytest.fixture
def github() -> Iterator[forgefakes.FakeForge]:
    fake = forgefakes.start("github", "acme/hosts")
    yield fake
    fake.close()


def checkout(tmp_path: Path, remotes: Path, github: forgefakes.FakeForge, update: str = ""
             ) -> tuple[Path, Path]:
    repo = tmp_path / "hosts"
    git(tmp_path, "clone", "-q", str(remotes / "hosts-gh.git"), str(repo))
    config = tmp_path / "ci-nix.yaml"
    config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts}}\n"
                      + (f"update: {update}\n" if update else ""))
    return repo, config


def someone_pushes(tmp_path: Path, remotes: Path, branch: str, name: str) -> str:
    """A commit by someone else on branch of hosts-gh.git; returns its sha."""
    other = tmp_path / f"other-{name}"
    git(tmp_path, "clone", "-q", "--branch", branch, str(remotes / "hosts-gh.git"), str(other))
    (other / f"{name}.txt").write_text("work by a person\n")
    git(other, "add", f"{name}.txt")
    git(other, "commit", "-qm", f"{name}: work by a person")
    git(other, "push", "-q", "origin", branch)
    return git(other, "rev-parse", "HEAD").strip()


def tip(remotes: Path, branch: str) -> str:
    return git(remotes / "hosts-gh.git", "rev-parse", f"refs/heads/{branch}").strip()


# One Nix: the branch rules do not depend on the Nix version (each Nix version's update is
# test_update's test_nightly_opens_updates_and_closes, on both)
@pytest.mark.nix
@ONE_NIX
def test_the_default_branch_is_refused_even_one_commit_behind(
        estate: tuple[Path, Path],  # noqa: F811 - the fixture
        github: forgefakes.FakeForge, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    _, remotes = estate
    repo, config = checkout(tmp_path, remotes, github, "{branch: main}")
    merged = someone_pushes(tmp_path, remotes, "main", "merged")  # the checkout is now behind
    # an unrelated pull request whose head is main (e.g. main -> release)
    github.pulls.append({"number": 1, "state": "open", "title": "release", "body": "ship it",
                         "branch": "main", "base": "release", "labels": [], "assignees": [],
                         "reviewers": []})
    result = cli("update", repo, "--config", config, env={"GITHUB_TOKEN": forgefakes.TOKEN})
    assert result.returncode == 2, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error == ("ci-nix: error: hosts: update branch 'main' is the default branch of "
                     "acme/hosts; ci-nix update force-pushes and deletes its branch, so it "
                     "refuses: set update.branch to a branch of its own (default "
                     "ci-nix/flake-update)")
    assert tip(remotes, "main") == merged  # the merged commit is still there
    assert github.pulls[0]["state"] == "open" and github.writes() == []


# One Nix: the branch rules do not depend on the Nix version (each Nix version's update is
# test_update's test_nightly_opens_updates_and_closes, on both)
@pytest.mark.nix
@ONE_NIX
def test_a_protected_branch_and_the_remotes_head_are_refused(
        estate: tuple[Path, Path],  # noqa: F811 - the fixture
        github: forgefakes.FakeForge, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    _, remotes = estate
    github.protected.append("release/*")
    repo, config = checkout(tmp_path, remotes, github, "{branch: release/deps}")
    result = cli("update", repo, "--config", config, env={"GITHUB_TOKEN": forgefakes.TOKEN})
    assert result.returncode == 2
    assert "update branch 'release/deps' is a protected branch of acme/hosts" in result.stderr
    # the remote's HEAD names its default branch even where the forge says otherwise
    bare = remotes / "hosts-gh.git"
    git(bare, "branch", "trunk", "main")
    git(bare, "symbolic-ref", "HEAD", "refs/heads/trunk")
    config.write_text(config.read_text().replace("release/deps", "trunk"))
    result = cli("update", repo, "--config", config, env={"GITHUB_TOKEN": forgefakes.TOKEN})
    assert result.returncode == 2
    assert "update branch 'trunk' is the default branch (HEAD) of the remote origin" in \
        result.stderr
    assert github.writes() == []


# One Nix: the branch rules do not depend on the Nix version (each Nix version's update is
# test_update's test_nightly_opens_updates_and_closes, on both)
@pytest.mark.nix
@ONE_NIX
def test_work_by_others_on_the_update_branch_is_never_dropped(
        estate: tuple[Path, Path],  # noqa: F811 - the fixture
        github: forgefakes.FakeForge, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    ws, remotes = estate
    repo, config = checkout(tmp_path, remotes, github)
    env = {"GITHUB_TOKEN": forgefakes.TOKEN}
    first = cli("update", repo, "--config", config, env=env)
    assert first.returncode == 0 and "created #1" in first.stdout, first.stderr
    fix = someone_pushes(tmp_path, remotes, BRANCH, "fix")  # a person fixes the update up
    new_modules_commit(ws, remotes, "modules: another commit")  # the next update is due
    second = cli("update", repo, "--config", config, env=env)
    assert second.returncode == 2, second.stdout + second.stderr
    error = second.stderr.strip().splitlines()[-1]
    assert error.startswith(f"ci-nix: error: hosts: {BRANCH} on origin is at {fix[:12]}, which "
                            "ci-nix did not make")
    assert tip(remotes, BRANCH) == fix
    # once the person's commit is gone again (merged elsewhere, branch reset), updates go on
    git(remotes / "hosts-gh.git", "update-ref", f"refs/heads/{BRANCH}", f"{fix}~1")
    third = cli("update", repo, "--config", config, env=env)
    assert third.returncode == 0 and "updated #1" in third.stdout, third.stderr
    assert git(remotes / "hosts-gh.git", "rev-parse", f"{BRANCH}~1").strip() == tip(remotes,
                                                                                     "main")


# One Nix: the branch rules do not depend on the Nix version (each Nix version's update is
# test_update's test_nightly_opens_updates_and_closes, on both)
@pytest.mark.nix
@ONE_NIX
def test_a_rerun_completes_an_interrupted_one_and_leaves_others_prs_alone(
        estate: tuple[Path, Path],  # noqa: F811 - the fixture
        github: forgefakes.FakeForge, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    _, remotes = estate
    repo, config = checkout(tmp_path, remotes, github,
                            "{labels: [deps], reviewers: [bob, carol], auto-merge: true}")
    # a run cut off right after opening the pull request: no labels, reviewers, auto-merge
    github.pulls.append({"number": 1, "state": "open", "title": "flake.lock: update modules",
                         "body": f"{MARKER}\nInputs updated", "branch": BRANCH, "base": "main",
                         "labels": [], "assignees": [], "reviewers": [], "reviewed": ["carol"]})
    env = {"GITHUB_TOKEN": forgefakes.TOKEN}
    result = cli("update", repo, "--config", config, env=env)
    assert result.returncode == 0, result.stderr
    pr = github.pulls[0]
    assert pr["labels"] == ["deps"] and pr["auto_merge"] == "SQUASH"
    assert pr["reviewers"] == ["bob"]  # carol reviewed already: not asked again
    again = cli("update", repo, "--config", config, env=env)
    assert again.returncode == 0, again.stderr
    asks = [r for r in github.requests if r.method == "POST" and
            r.path.endswith(("/requested_reviewers", "/labels", "/graphql"))]
    assert len(asks) == 3  # once each, on the first rerun only
    # a pull request from the update branch that ci-nix did not open is not touched
    pr["body"] = "my own work"
    third = cli("update", repo, "--config", config, env=env)
    assert third.returncode == 2
    assert "was not opened by ci-nix" in third.stderr and pr["body"] == "my own work"


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_forge_says_which_branches_are_protected(kind: str) -> None:
    fake = forgefakes.start(kind, "acme/hosts")
    fake.protected += ["main", "release/*"]
    try:
        forge = (GitHubForge(fake.project, forgefakes.TOKEN, fake.url, pace=(0, 0))
                 if kind == "github" else GitLabForge(fake.project, forgefakes.TOKEN, fake.url))
        assert [forge.protected(b) for b in ("main", "release/2.0", BRANCH)] == \
            [True, True, False]
        if kind == "gitlab":  # a role that may not list them: GitLab's own refusal stands
            fake.fail_next("GET", 403, body={"message": "403 Forbidden"})
            assert forge.protected("main") is False
    finally:
        fake.close()

