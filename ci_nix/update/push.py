"""Pushing the update branch: never a default or protected branch, never over commits ci-nix
did not make (the push is leased on ci-nix's own last commit), retried when the ref moved or
the network failed."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

import tenacity

from ci_nix.errors import CiNixError, ConfigError
from ci_nix.forge import Forge
from ci_nix.tools import proc
from ci_nix.tools.git import Git, GitError
from ci_nix.update.credentials import author_env
from ci_nix.update.models import UpdateTarget

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 3
# The ref changed under us, or the network failed: worth another try. Anything else (a hook or
# branch protection saying no, a bad token) will say the same again.
_RETRY_PUSH = re.compile(r"stale info|failed to update ref|cannot lock ref|fetch first|"
                         r"non-fast-forward|unable to access|could not resolve|connection|"
                         r"timed out|early EOF|HTTP 5\d\d|remote end hung up", re.IGNORECASE)


class ForeignCommits(CiNixError):
    """The update branch holds work ci-nix did not make; force-pushing would drop it."""


def check_branch(target: UpdateTarget, git: Git, forge: Forge, branch: str,
                 env: Mapping[str, str]) -> None:
    """ConfigError unless branch is one ci-nix may force-push and delete: not the default
    branch (the forge's, and the remote's HEAD) and not protected."""
    why = None
    if branch == forge.project().default_branch:
        why = f"the default branch of {forge.project().path}"
    elif branch == git.remote_head(target.checkout, target.remote, env):
        why = f"the default branch (HEAD) of the remote {target.remote}"
    elif forge.protected(branch):
        why = f"a protected branch of {forge.project().path}"
    if why is not None:
        raise ConfigError(f"{target.name}: update branch {branch!r} is {why}; ci-nix update "
                          "force-pushes and deletes its branch, so it refuses: set "
                          "update.branch to a branch of its own (default ci-nix/flake-update)")


def ours(git: Git, target: UpdateTarget, sha: str) -> bool:
    """Whether a commit is one ci-nix made: one parent, update.author's, touching flake.lock
    files only."""
    repo = target.checkout
    shown = git.run(repo, ["show", "-s", "--format=%P%x00%an%x00%ae", "--end-of-options", sha])
    parents, _, ident = shown.stdout.strip().partition("\0")
    name, _, email = ident.partition("\0")
    author = author_env(target.update.author)
    if (not shown.ok or len(parents.split()) != 1
            or (name, email) != (author["GIT_AUTHOR_NAME"], author["GIT_AUTHOR_EMAIL"])):
        return False
    files = git.run(repo, ["diff-tree", "--no-commit-id", "--name-only", "-r", "-z", sha])
    return files.ok and all(PurePosixPath(f).name == "flake.lock"
                            for f in files.stdout.split("\0") if f)


def _foreign(target: UpdateTarget, branch: str, sha: str) -> ForeignCommits:
    return ForeignCommits(
        f"{target.name}: {branch} on {target.remote} is at {sha[:12]}, which ci-nix did not "
        f"make (not {target.update.author}'s flake.lock commit): not overwriting others' work; "
        "merge or delete that branch, or set update.branch to another one")


def delete_branch(target: UpdateTarget, git: Git, branch: str, base: str,
                  env: Mapping[str, str]) -> None:
    """Delete the update branch on the remote if that loses nothing: its tip is ci-nix's
    commit or in base's history (the deletion is leased on that tip)."""
    sha = git.remote_branch(target.checkout, target.remote, branch, env)
    if sha is None:
        return
    git.fetch_refs(target.checkout, target.remote, [f"refs/heads/{branch}"], env)
    if not (ours(git, target, sha) or git.is_ancestor(target.checkout, sha, base)):
        log.warning("%s", _foreign(target, branch, sha))
        return
    git.push_refs(target.checkout, target.remote, [f":refs/heads/{branch}"], env,
                  lease=(f"refs/heads/{branch}", sha))


def push_branch(target: UpdateTarget, git: Git, branch: str, commit: str,
                 env: Mapping[str, str]) -> bool:
    """Put commit on the update branch; False when the branch already has the same change.

    The branch is overwritten only when its tip is ci-nix's own commit (ForeignCommits
    otherwise), and the push is leased on that commit: a concurrent push is noticed, the tip
    read again and the push retried.
    """
    repo = target.checkout

    def attempt() -> bool:
        remote_sha = git.remote_branch(repo, target.remote, branch, env)
        if remote_sha is not None:
            git.fetch_refs(repo, target.remote, [f"refs/heads/{branch}"], env)
            # Same tree on the same base: pushing again would only churn CI and notifications.
            if git.tree_and_parents(repo, remote_sha) == git.tree_and_parents(repo, commit):
                return False
            # overwritten only when nothing is lost: ci-nix's own commit, or history the new
            # commit already holds (a branch made at the base)
            if not (ours(git, target, remote_sha) or git.is_ancestor(repo, remote_sha, commit)):
                raise _foreign(target, branch, remote_sha)
        git.push_refs(repo, target.remote, [f"{commit}:refs/heads/{branch}"], env,
                      lease=(f"refs/heads/{branch}", remote_sha))
        return True

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: push of %s rejected (%s); retrying (attempt %d of %d)", target.name,
                    branch, error, state.attempt_number + 1, PUSH_ATTEMPTS)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda err: isinstance(err, GitError) and bool(_RETRY_PUSH.search(err.stderr))),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_attempt(PUSH_ATTEMPTS), before_sleep=log_retry,
        sleep=proc.sleep, reraise=True)  # a cancelled run stops waiting at once
    return retrying(attempt)
