"""Pushing the update branch: leased on the tip just read, retried when the ref moved or the
network failed."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import tenacity

from ci_nix.tools import proc
from ci_nix.tools.git import Git, GitError
from ci_nix.update.models import UpdateTarget

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 3
# The ref changed under us, or the network failed: worth another try. Anything else (a hook or
# branch protection saying no, a bad token) will say the same again.
_RETRY_PUSH = re.compile(r"stale info|failed to update ref|cannot lock ref|fetch first|"
                         r"non-fast-forward|unable to access|could not resolve|connection|"
                         r"timed out|early EOF|HTTP 5\d\d|remote end hung up", re.IGNORECASE)


def push_branch(target: UpdateTarget, git: Git, branch: str, commit: str,
                 env: Mapping[str, str]) -> bool:
    """Put commit on the update branch; False when the branch already has the same change.

    The push is leased on the tip just read, so a concurrent push to the branch is noticed;
    then the tip is read again and the push retried.
    """
    repo = target.checkout

    def attempt() -> bool:
        remote_sha = git.remote_branch(repo, target.remote, branch, env)
        if remote_sha is not None:
            git.fetch_refs(repo, target.remote, [f"refs/heads/{branch}"], env)
            # Same tree on the same base: pushing again would only churn CI and notifications.
            if git.tree_and_parents(repo, remote_sha) == git.tree_and_parents(repo, commit):
                return False
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
