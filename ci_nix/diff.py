"""The base side of a diff: the head's targets evaluated at the merge-base, in temporary git
worktrees (the user's checkout is never touched), and package changes from derivation closures.

Which repos get a base: the primary repo (where --base/--head point), or with no primary repo
every repo that has the base revision, as change detection does. A dependent flake in another
repo is evaluated as checked out, with its override re-pointed at the base worktree, so the
base side of `hosts` is "hosts with the old modules".
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ci_nix import changes, closure
from ci_nix.changes import WORKTREE, Change, Comparison, RepoRevisions
from ci_nix.errors import SelectionError
from ci_nix.inputs import Checkout
from ci_nix.models import Flake, FlakeEval, Override, Repo, Target
from ci_nix.tools.git import Git, GitError
from ci_nix.tools.nix import Derivation, Nix, NixCommandError, drv_closure
from ci_nix.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Base:
    """The commit each repo is compared at (merge-base of base and head)."""

    rev: str  # as given (--base or the CI environment)
    source: str  # where it came from
    commits: tuple[tuple[Repo, str], ...]  # (repo, merge-base sha)

    @property
    def sha(self) -> str:
        return self.commits[0][1]

    def describe(self) -> str:
        """`abc123456789`, or per repo where several have a base: `modules abc…, hosts def…`."""
        if len(self.commits) == 1:
            return self.sha[:12]
        return ", ".join(f"{repo.name} {sha[:12]}" for repo, sha in self.commits)


def repo_revisions(workspace: Workspace, git: Git, base: Base, head: str | None,
                   checkouts: Sequence[Checkout]) -> tuple[RepoRevisions, ...]:
    """Each workspace repo's base and head: a repo with a base checkout from its merge-base to
    the head; the others as checked out, on both sides."""
    states = {state.repo: state for state in checkouts}
    at_base = {repo.name: sha for repo, sha in base.commits}
    result = []
    for repo in workspace.repos:
        state = states.get(repo.name)
        now = (state.rev if state is not None and state.rev is not None and not state.dirty
               else WORKTREE)
        if repo.name in at_base and head is not None:
            now = git.commit(repo.path, head) or now
        result.append(RepoRevisions(repo.name, at_base.get(repo.name, now), now))
    return tuple(result)


def find_base(workspace: Workspace, git: Git, base: str, head: str | None,
              source: str) -> Base:
    """The merge-base of base and head in the primary repo (else in each repo that has it)."""
    repos = [workspace.primary] if workspace.primary is not None else list(workspace.repos)
    commits = []
    for repo in repos:
        head_sha = git.commit(repo.path, head or "HEAD")
        base_sha = git.commit(repo.path, base)
        merge_base = (git.merge_base(repo.path, base_sha, head_sha)
                      if base_sha and head_sha else None)
        if merge_base is not None:
            commits.append((repo, merge_base))
    if not commits:
        shallow = [r for r in repos if git.is_shallow(r.path)]
        if shallow:  # the history is there, but not in this clone (detection tried fetching it)
            raise SelectionError(
                f"base {base} ({source}): {shallow[0].path} is a shallow clone without the "
                "history where base and head meet, and fetching it failed; fetch more (e.g. "
                "actions/checkout fetch-depth: 0, GIT_DEPTH: 0 on GitLab)")
        where = ", ".join(str(r.path) for r in repos)
        raise SelectionError(f"base {base} ({source}): no common history with the head in "
                             f"{where}; pass --base with a commit the head descends from")
    return Base(base, source, tuple(commits))


@contextmanager
def worktrees(git: Git, base: Base) -> Iterator[dict[Repo, Path]]:
    """A detached worktree of each repo at its base commit, removed afterwards."""
    made: dict[Repo, Path] = {}
    top = Path(tempfile.mkdtemp(prefix="ci-nix-base-"))
    try:
        for index, (repo, sha) in enumerate(base.commits):
            # a plain name: Nix 2.8 reads a percent-encoded path only at a named ref
            path = top / f"repo{index}"
            # no hooks (post-checkout) and no LFS downloads: only Nix reads this checkout
            git.check(repo.path, ["-c", "core.hooksPath=/dev/null", "worktree", "add",
                                  "--detach", "--quiet", str(path), sha],
                      env={"GIT_LFS_SKIP_SMUDGE": "1"})
            made[repo] = path
        yield made
    finally:
        for repo, path in made.items():
            try:
                git.check(repo.path, ["worktree", "remove", "--force", str(path)])
            except GitError as err:
                log.warning("could not remove the base worktree %s: %s", path, err)
        shutil.rmtree(top, ignore_errors=True)
        for repo in made:
            git.run(repo.path, ["worktree", "prune"])


def base_targets(workspace: Workspace, targets: Sequence[Target],
                 trees: Mapping[Repo, Path],
                 commits: Mapping[Repo, str] | None = None) -> list[Target]:
    """The head's targets as the base has them: flakes of a repo with a base worktree read
    from it; overrides that point at such a flake point at its base copy, unless that copy is
    at the commit flake.lock pins (`commits`: each worktree's commit): then the lock alone
    says it, as it did when the base was evaluated on its own (its evaluation cache entry)."""

    def moved(flake: Flake) -> Flake:
        tree = trees.get(flake.repo)
        # the base worktree's own commit, whatever --pin said about the head
        return flake if tree is None else Flake(replace(flake.repo, path=tree, rev=None),
                                                flake.subdir)

    def present(flake: Flake) -> bool:
        if (flake.path / "flake.nix").is_file():
            return True
        log.info("%s has no flake.nix at the base: every attribute is new", flake.id)
        return False

    return _at_base(workspace, targets, moved, present, commits or {})


def pinned_base_targets(workspace: Workspace, git: Git, targets: Sequence[Target],
                        commits: Mapping[Repo, str]) -> list[Target]:
    """base_targets without a worktree: each repo with a base read at its base commit (`rev=`,
    which the evaluation cache keys as a clean checkout of it), to find the base's entries."""

    def moved(flake: Flake) -> Flake:
        sha = commits.get(flake.repo)
        return flake if sha is None else Flake(replace(flake.repo, rev=sha), flake.subdir)

    def present(flake: Flake) -> bool:
        if flake.repo.rev is None:
            return (flake.path / "flake.nix").is_file()
        name = f"{flake.subdir}/flake.nix" if flake.subdir else "flake.nix"
        return git.run(flake.repo.path, ["cat-file", "-e", f"{flake.repo.rev}:{name}"]).ok

    return _at_base(workspace, targets, moved, present, commits)


def _at_base(workspace: Workspace, targets: Sequence[Target], moved: Callable[[Flake], Flake],
             present: Callable[[Flake], bool], commits: Mapping[Repo, str]) -> list[Target]:
    refs = {flake.ref: moved(flake).ref for flake in workspace.flakes}
    at = {flake.ref: commits.get(flake.repo) for flake in workspace.flakes}
    result = []
    for target in targets:
        flake = moved(target.flake)
        if not present(flake):
            continue
        overrides = tuple(Override(o.input, refs.get(o.ref, o.ref), submodules=o.submodules)
                          for o in target.overrides
                          if o.locked is None or at.get(o.ref) != o.locked)
        result.append(Target(flake, target.reasons, overrides))
    return result


Remembered = Mapping[str, tuple[Sequence[str] | None, tuple[str, ...]]]


def remembered(*evals: FlakeEval, closures: Mapping[str, Sequence[str]] | None = None
               ) -> dict[str, tuple[Sequence[str] | None, tuple[str, ...]]]:
    """drvPath -> (its closure's .drv base names where the evaluations know it (the evaluation
    cache keeps it) or `closures` does, else None; its outputs), for every job: with_packages
    need not read those .drv files, nor ask their outputs."""
    known: dict[str, Sequence[str]] = {drv: closure for e in evals for drv, closure in e.closures}
    known.update(closures or {})
    return {job.drv_path: (known.get(job.drv_path), job.out_paths) for e in evals
            for job in e.jobs}


def closure_sizes(nix: Nix, comparison: Comparison, remembered: Remembered,
                  nowhere: Collection[tuple[str, ...]] = ()
                  ) -> dict[tuple[str, ...], closure.Closure]:
    """The runtime closures of the changed attributes' outputs on both sides, as with_packages
    would ask them (one `path-info` per store), for outputs `remembered` knows. nowhere: base
    outputs known to be in no store (closure.nowhere): such an attribute gets no size, so
    neither side of it is asked; with all of them so, Nix is not started."""
    pairs = [(remembered[base][1], remembered[head][1])
             for base, head in ((a.base_drv, a.head_drv) for a in comparison.of(Change.CHANGED))
             if base is not None and head is not None and base in remembered
             and head in remembered]
    return closure.sizes(nix, [group for pair in pairs if pair[0] not in nowhere
                               for group in pair])


def with_packages(nix: Nix, comparison: Comparison, remembered: Remembered | None = None,
                  sizes: Mapping[tuple[str, ...], closure.Closure] | None = None) -> Comparison:
    """Package changes for each changed attribute, from the two derivation closures, and the
    runtime closure's size change where both sides' outputs are valid. Three Nix calls in all,
    however many attributes changed. remembered: see remembered(); a derivation whose closure
    it holds is not read from the store. sizes: closure_sizes(), asked already."""
    remembered = remembered or {}
    changed = comparison.of(Change.CHANGED)
    if not changed:
        return comparison
    pairs = [(a.base_drv, a.head_drv) for a in changed]
    drvs = {drv for pair in pairs for drv in pair if drv is not None}
    try:
        graph = nix.derivations({d for d in drvs if remembered.get(d, (None,))[0] is None},
                                recursive=True)
    except NixCommandError as err:
        log.warning("cannot read the derivation closures: %s", err)
        return comparison

    def outputs(drv: str) -> tuple[str, ...]:
        return remembered[drv][1] if drv in remembered else graph.get(drv, _NONE).outputs

    def drvs_of(drv: str) -> set[str]:
        names = remembered.get(drv, (None,))[0]
        if names is None:
            return drv_closure(graph, drv)
        store = drv.rsplit("/", 1)[0]
        return {f"{store}/{name}" for name in names}

    found = sizes if sizes is not None else closure.sizes(
        nix, [outputs(d) for pair in pairs for d in pair if d is not None])
    described = {}
    for attr in changed:
        assert attr.base_drv is not None and attr.head_drv is not None
        before, after = found.get(outputs(attr.base_drv)), found.get(outputs(attr.head_drv))
        sizes_of = (before.size, after.size) if before and after else None
        packages = changes.package_changes(drvs_of(attr.base_drv), drvs_of(attr.head_drv),
                                           sizes_of)
        described[attr] = replace(attr, packages=packages)
    return replace(comparison,
                   attributes=tuple(described.get(a, a) for a in comparison.attributes))


_NONE = Derivation((), ())


def head_commit(workspace: Workspace, git: Git, head: str | None,
                checkouts: Sequence[Checkout] = ()) -> str | None:
    """The head's sha, or None when Nix evaluates a work tree with uncommitted changes.
    checkouts: the repos as the plan read them for Nix (inputs.checkouts), so that a repo read
    there (not pinned) needs no git call, and the head named is the one evaluated."""
    repos = [workspace.primary] if workspace.primary is not None else list(workspace.repos)
    if head is not None:
        return git.commit(repos[0].path, head)
    read = {state.repo: state for state in checkouts}

    def state(repo: Repo) -> Checkout:
        found = read.get(repo.name)
        if found is not None and repo.rev is None:
            return found
        return Checkout(repo.name, git.commit(repo.path, "HEAD"), git.uncommitted(repo.path))

    states = [state(repo) for repo in repos]
    if any(found.dirty for found in states):
        return None
    return states[0].rev
