"""Workspace inputs: a flake is evaluated against the workspace's checkout of every workspace
repo it takes as an input, wherever that checkout differs from what its flake.lock has.

What decides a derivation is the flake's source and the source of each of its inputs, never
the base revision change detection compares with; so `run --all`, `run --base`, `matrix`,
a matrix entry's own `run` and `diff`'s head side all evaluate the same thing. `--locked`
(`locked: true`) evaluates every input as flake.lock has it instead.

`--pin REPO=SHA` makes Nix read that commit of a repo's checkout rather than its work tree:
a matrix entry carries the commits its plan evaluated, so its job evaluates exactly them.
`--head REV` pins the repo it refers to (head_pins): the revision under test is what is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ci_nix import detect as detect_mod
from ci_nix import lockfile
from ci_nix.errors import SelectionError, ToolError
from ci_nix.models import Flake, Override, Repo, Target
from ci_nix.tools import proc
from ci_nix.tools.git import Git
from ci_nix.tools.nix import NixVersion, needs_encoding
from ci_nix.workspace import Workspace

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Checkout:
    """What Nix reads from a workspace repo: its commit, and whether tracked files differ."""

    repo: str
    rev: str | None  # None: no commit yet
    dirty: bool  # uncommitted changes to tracked files (Nix evaluates them)
    tree: str | None = None  # rev's tree, where it was read (the evaluation cache keys by it)


def parse_pins(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """--pin REPO=SHA values as (repo name, sha)."""
    pins = []
    for value in values:
        name, sep, sha = value.rpartition("=")
        if not sep or not name or not sha:
            raise SelectionError(f"--pin {value!r}: expected REPO=COMMIT, e.g. pkgs=1a2b3c4")
        pins.append((name, sha))
    return tuple(pins)


def pinned(workspace: Workspace, git: Git, pins: Sequence[tuple[str, str]]) -> Workspace:
    """The workspace with each pinned repo read at its commit (Repo.rev) rather than as the
    work tree; a pin naming no repo or no commit of it is an error before any evaluation."""
    if not pins:
        return workspace
    revs: dict[str, str] = {}
    for name, rev in pins:
        repo = workspace.repo(name)
        if repo is None:
            raise SelectionError(f"--pin {name}={rev}: no repo {name!r} in the workspace; "
                                 "repos: " + ", ".join(r.name for r in workspace.repos))
        sha = git.commit(repo.path, rev) or _fetch(git, repo, rev)
        if sha is None:
            raise SelectionError(f"--pin {name}={rev}: no such commit in {repo.path}, nor on "
                                 f"its remote; fetch it (git -C {repo.path} fetch origin {rev}) "
                                 "or drop the pin")
        revs[name] = sha
    repos = {repo: replace(repo, rev=revs.get(repo.name)) for repo in workspace.repos}
    primary = repos[workspace.primary] if workspace.primary is not None else None
    flakes = tuple(Flake(repos[flake.repo], flake.subdir) for flake in workspace.flakes)
    return replace(workspace, repos=tuple(repos.values()), primary=primary, flakes=flakes)


def _fetch(git: Git, repo: Repo, rev: str) -> str | None:
    """A pinned commit a matrix job's checkout lacks (a shallow clone of a branch that moved
    on since the plan): fetched from the repo's remote, as deep as the clone already is."""
    remotes = git.remotes(repo.path)
    if not remotes or not _FULL_SHA.match(rev):
        return None  # only a commit id is fetched: never a name git could take for an option
    remote = "origin" if "origin" in remotes else remotes[0]
    log.info("%s: fetching the pinned commit %s from %s", repo.name, rev, remote)
    depth = ["--depth=1"] if git.is_shallow(repo.path) else []
    result = git.fetch(repo.path, [*depth, remote, rev])
    if not result.ok:
        lines = result.stderr.strip().splitlines()
        log.warning("%s: fetching %s from %s failed: %s", repo.name, rev, remote,
                    lines[-1] if lines else f"exit {result.returncode}")
        return None
    return git.commit(repo.path, rev)


def as_evaluated(workspace: Workspace, git: Git, head: str | None,
                 pins: Sequence[tuple[str, str]]) -> Workspace:
    """The workspace as Nix will read it: --head's repo at it, then each --pin (which wins)."""
    return pinned(workspace, git, (*head_pins(workspace, git, head), *pins))


def head_pins(workspace: Workspace, git: Git, head: str | None) -> tuple[tuple[str, str], ...]:
    """--head REV is the revision under test, so it is what Nix reads: a pin of the primary
    repo (no primary repo: of every repo that has REV) to it. A repo without it is left to
    change detection, which names the missing revision."""
    if head is None:
        return ()
    repos = [workspace.primary] if workspace.primary is not None else list(workspace.repos)
    return tuple((repo.name, sha) for repo in repos
                 if (sha := git.commit(repo.path, head)) is not None)


def checkouts(workspace: Workspace, git: Git) -> dict[str, Checkout]:
    """Each repo's state as Nix reads it (a pinned repo: its pinned commit, clean)."""
    # what loading the workspace read needs no second look; the rest beside each other
    states = proc.each(lambda repo: _checkout(repo, git, workspace.states.get(repo.path)),
                       workspace.repos)
    return {repo.name: state for repo, state in zip(workspace.repos, states, strict=True)}


def check_readable(workspace: Workspace, states: Mapping[str, Checkout],
                   version: NixVersion) -> None:
    """Raises ToolError where Nix would not evaluate what a checkout holds: before 2.10, Nix
    reads a checkout whose path is percent-encoded (a space, a non-ASCII character) at its
    last commit, so its uncommitted changes would be left out of a green run unsaid."""
    if version.at_least(2, 10):
        return
    for repo in workspace.repos:
        state = states.get(repo.name)
        if state is not None and state.dirty and needs_encoding(repo.path):
            raise ToolError(
                f"{repo.path}: uncommitted changes in a checkout whose path has a space or a "
                f"non-ASCII character, which Nix {version.major}.{version.minor} cannot read "
                "(it evaluates the last commit); commit them, check out at a plain path, or "
                "use Nix 2.10 or later")


def _checkout(repo: Repo, git: Git, known: tuple[str, str, bool] | None = None) -> Checkout:
    """known: the repo's commit, tree and dirtiness as the workspace's loading read them."""
    if repo.rev is not None:
        return Checkout(repo.name, repo.rev, False)
    if known is not None:
        rev, tree, dirty = known
        return Checkout(repo.name, rev, dirty, tree)
    state = git.head_state(repo.path)
    if state is None:
        return Checkout(repo.name, None, False, None)
    rev, tree, dirty = state
    return Checkout(repo.name, rev, dirty, tree)


def workspace_overrides(workspace: Workspace, git: Git,
                        states: Mapping[str, Checkout]) -> dict[Flake, tuple[Override, ...]]:
    """For each flake, an override for every input (at any depth of its flake.lock) that is a
    workspace flake whose checkout is not the locked revision."""
    result: dict[Flake, list[Override]] = {}
    locks: dict[Flake, lockfile.Lock | None] = {}
    for edge in detect_mod.lock_edges(workspace, git):
        if edge.dependent not in locks:
            try:
                locks[edge.dependent] = lockfile.read(edge.dependent.path / "flake.lock")
            except lockfile.LockError:
                locks[edge.dependent] = None  # lock_edges found it readable a moment ago
        lock = locks[edge.dependent]
        node = lock.resolve(edge.input) if lock is not None else None
        locked = node.locked.rev if node is not None else None
        state = states[edge.dependency.repo.name]
        if state.rev is None:
            continue  # nothing committed: Nix cannot read it as a git input either
        if state.rev == locked and not state.dirty:
            continue  # the checkout is what flake.lock has: the same source either way
        submodules = node is not None and (node.locked.submodules or node.original.submodules)
        result.setdefault(edge.dependent, []).append(
            Override(edge.input_name, edge.dependency.ref, source=edge.dependency.id,
                     rev=state.rev, dirty=state.dirty, locked=locked, submodules=submodules))
    return {flake: tuple(overrides) for flake, overrides in result.items()}


def with_workspace_inputs(workspace: Workspace, git: Git, targets: Sequence[Target],
                          states: Mapping[str, Checkout], *,
                          locked: bool) -> tuple[Target, ...]:
    """The targets with their workspace inputs as overrides (none with --locked)."""
    if locked:
        return tuple(replace(target, overrides=()) for target in targets)
    overrides = workspace_overrides(workspace, git, states)
    result = []
    for target in targets:
        mine = overrides.get(target.flake, ())
        for override in mine:
            log.info("%s: input %s", target.flake.id, override.describe())
        result.append(replace(target, overrides=mine))
    return tuple(result)
