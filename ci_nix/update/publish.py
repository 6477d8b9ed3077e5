"""Bringing the update branch and its merge request in line with a lock update."""

from __future__ import annotations

import logging

from ci_nix.errors import ForgeError
from ci_nix.forge import Forge
from ci_nix.tools.git import Git
from ci_nix.update.credentials import author_env, credential_env
from ci_nix.update.locks import LockUpdate
from ci_nix.update.markdown import MARKER, commit_message
from ci_nix.update.models import Operation, Outcome, UpdateTarget
from ci_nix.update.push import check_branch, delete_branch, push_branch

log = logging.getLogger(__name__)


def publish(target: UpdateTarget, git: Git, forge: Forge, token: str | None, branch: str,
             base_rev: str, result: LockUpdate, title: str, body: str) -> Outcome:
    repo = target.checkout
    env = credential_env(target.remote_url, forge.kind, token)
    check_branch(target, git, forge, branch, env)
    existing = forge.find_open(branch)
    if existing is not None and MARKER not in existing.body:
        raise ForgeError(f"{target.name}: the open merge request {existing.url} from {branch} "
                         "was not opened by ci-nix (its body lacks ci-nix's marker): not "
                         "editing or closing it; set update.branch to a branch of its own")
    if not result.files:
        if existing is None:
            return Outcome(target.name, branch, Operation.UNCHANGED)
        closed = forge.close(existing)
        delete_branch(target, git, branch, base_rev, env)
        log.info("%s: nothing to update; closed %s", target.name, closed.url)
        return Outcome(target.name, branch, Operation.CLOSED, closed.number, closed.url)

    commit = git.commit_files(repo, base_rev, dict(result.files), commit_message(result),
                              author_env(target.update.author))
    pushed = push_branch(target, git, branch, commit, env)

    if existing is None:
        base = target.base or forge.project().default_branch
        mr = forge.create(branch, base, title, body)
        operation = Operation.CREATED
    elif (existing.title, existing.body.strip()) != (title, body.strip()):
        mr = forge.edit(existing, title, body)
        operation = Operation.UPDATED
    else:
        mr, operation = existing, Operation.UPDATED if pushed else Operation.UNCHANGED
    # on every run, not only at creation: a run cut off after creating the merge request left
    # these undone (the forge adds only what is missing)
    update = target.update
    forge.decorate(mr, update.labels, update.assignees, update.reviewers)
    if update.auto_merge:
        try:
            forge.auto_merge(mr)
        except ForgeError as err:  # the MR is still useful without it
            log.warning("%s: auto-merge not enabled: %s", target.name, err)
    return Outcome(target.name, branch, operation, mr.number, mr.url, title, body, result.moved)
