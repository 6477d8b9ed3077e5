"""The update branch push: a push that races ours is noticed and retried; a refusal is final."""

from __future__ import annotations

import stat
from pathlib import Path

import forgefakes
import pytest
from conftest import ONE_NIX, Cli
from helpers import git
from test_update import estate, github_checkout  # noqa: F401 - estate is a fixture

# One Nix: what is raced or refused is the git push, after Nix updated the lock (each Nix
# version's update is test_update's test_nightly_opens_updates_and_closes, on both)
pytestmark = [pytest.mark.nix, ONE_NIX]


def hook(bare: Path, script: str) -> None:
    path = bare / "hooks" / "pre-receive"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_push_that_raced_ours_is_retried(
        estate: tuple[Path, Path], tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    _, remotes = estate
    bare = remotes / "hosts-gh.git"
    checkout, config, github = github_checkout(tmp_path, remotes)
    marker = tmp_path / "raced"
    # The first push finds the branch moved under it (another bot run got there first).
    hook(bare, f"""if [ ! -e {marker} ]; then
  touch {marker}
  # outside the push's quarantine, as a concurrent push would be
  env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \
    git update-ref refs/heads/ci-nix/flake-update refs/heads/main
fi
""")
    try:
        result = cli("update", checkout, "--config", config,
                     env={"GITHUB_TOKEN": forgefakes.TOKEN})
        assert result.returncode == 0, result.stderr
        assert "retrying (attempt 2 of 3)" in result.stderr
        assert "created #1" in result.stdout
        main_lock = git(bare, "show", "main:flake.lock")
        branch_lock = git(bare, "show", "ci-nix/flake-update:flake.lock")
        assert branch_lock != main_lock  # ours landed, over the racer's
    finally:
        github.close()


def test_a_refused_push_is_reported_once(
        estate: tuple[Path, Path], tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    _, remotes = estate
    bare = remotes / "hosts-gh.git"
    checkout, config, github = github_checkout(tmp_path, remotes)
    count = tmp_path / "pushes"
    hook(bare, f'echo x >> {count}\necho "branch is protected" >&2\nexit 1\n')
    try:
        result = cli("update", checkout, "--config", config,
                     env={"GITHUB_TOKEN": forgefakes.TOKEN})
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("ci-nix: error: ") and "pre-receive hook declined" in last
        assert "Traceback" not in result.stderr
        assert count.read_text().count("x") == 1  # no retry: it would say no again
        assert github.pulls == []
    finally:
        github.close()
