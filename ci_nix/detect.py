"""Changed files -> affected flakes (+ why), across repos.

1. Base and head: --base/--head, else the CI environment (GitHub event payload, GitLab
   variables). No base, or a new branch's all-zero sha: everything.
2. Changed files: `git diff` from merge-base(base, head) to head (head not given: the work
   tree, which is what Nix evaluates), in the primary repo; with no primary repo (PATH is the
   workspace root) in every repo that has the base revision. `ignore:` globs drop files first.
3. Files -> flakes: a file belongs to the innermost flake directory containing it; a file
   outside every flake directory affects every flake of its repo.
4. flake.lock graph: an input locked to a workspace flake (by path, git+file URL or a URL
   matching the repo's remote) makes its flake a dependent; dependents are affected
   transitively. Which inputs are evaluated from the local checkouts (--override-input) is
   ci_nix/inputs.py's business, the same with a base or without.
5. Path rules only prune: Nix copies a flake's whole git repo into the store, so any changed
   file of a repo (ignored or in another flake's directory) can be read by every flake of that
   repo and by its dependents. Those flakes that steps 2-4 leave out are `pruned`: the pipeline
   evaluates them at head and at the base and builds every attribute whose drvPath differs.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from ci_nix import lockfile, source, trust
from ci_nix.ci import CiEnv
from ci_nix.errors import SelectionError
from ci_nix.models import Flake, Repo, Target
from ci_nix.tools.git import Git
from ci_nix.words import count
from ci_nix.workspace import Workspace

log = logging.getLogger(__name__)

ZERO_SHA = re.compile(r"^0+$")
# what a flake that path rules leave out is told in the summary, and its unchanged attributes
PRUNED = ("path rules leave it out, but a changed file is in its source: evaluated at the "
          "base too, built where its derivation differs")
PRUNED_SAME = "path rules leave it out and its derivation is the one at the base"
MAX_FILE_REASONS = 10
# Deepen a shallow clone step by step before giving up on its history being cut short.
DEEPEN_STEPS = (("--deepen=50",), ("--deepen=500",), ("--unshallow",))


@dataclass(frozen=True)
class Detection:
    targets: tuple[Target, ...]
    unaffected: tuple[tuple[Flake, str], ...]  # (flake, why no change can reach it)
    base: str | None = None
    head: str | None = None  # None: the work tree
    notes: tuple[str, ...] = field(default=())  # warnings worth a line in the summary
    # Flakes that can read a changed file but that path rules (`ignore:`, flake directories)
    # leave out: only evaluation can tell whether the change reaches them (compare drvPaths).
    pruned: tuple[Target, ...] = ()
    # (repo name, merge-base commit) of each repo whose files were compared; the others are
    # taken as checked out
    merge_bases: tuple[tuple[str, str], ...] = ()

    def compared(self, workspace: Workspace) -> str | None:
        """What was compared, per repo: `modules: changes from abc… (merge-base with main) to
        the work tree; hosts, pkgs: as checked out`."""
        if self.base is None:
            return None
        head = self.head or "the work tree"
        parts = [f"{name}: changes from {sha[:12]} (merge-base with {self.base}) to {head}"
                 for name, sha in self.merge_bases]
        if not parts:
            return f"changes from the merge-base with {self.base} to {head}"
        done = {name for name, _ in self.merge_bases}
        others = [repo.name for repo in workspace.repos if repo.name not in done]
        if others:
            parts.append(f"{', '.join(others)}: as checked out")
        return "; ".join(parts)


@dataclass(frozen=True)
class Revisions:
    """Where base and head came from; base None means "no base: build everything"."""

    base: str | None
    head: str | None
    source: str  # "--base", "GitHub pull_request event", ...
    explicit: bool = False  # base came from --base: a wrong one is the user's error


def everything(workspace: Workspace, reason: str = "--all") -> Detection:
    return Detection(tuple(Target(flake, (reason,)) for flake in workspace.flakes), ())


def detect(workspace: Workspace, git: Git, base: str | None, head: str | None,
           environ: Mapping[str, str] = os.environ) -> Detection:
    """Which flakes the change from base to head affects, and why."""
    revs = revisions(base, head, environ)
    if revs.base is None:
        log.info("change detection: %s; building every flake", revs.source)
        return everything(workspace, revs.source)
    log.info("change detection: base %s (%s), head %s", revs.base, revs.source,
             revs.head or "the work tree")
    if workspace.primary is not None:
        repos = [workspace.primary]
    else:
        repos = list(workspace.repos)

    changed: dict[Repo, list[str]] = {}
    notes: list[str] = []
    merge_bases: dict[str, str] = {}
    for repo in repos:
        files = _changed_files(git, repo, revs, notes, primary=workspace.primary is not None,
                               merge_bases=merge_bases)
        if files is None:
            continue
        changed[repo] = files
    if not changed:
        if revs.explicit and workspace.primary is None:
            raise SelectionError(f"--base {revs.base}: no such revision in "
                                 + ", ".join(str(r.path) for r in repos)
                                 + "; pass a commit, branch or tag that exists there")
        why = notes[-1] if notes else f"base {revs.base} ({revs.source}) is in no workspace repo"
        log.warning("%s: building every flake", why)
        return replace(everything(workspace, f"{why}: building everything"),
                       notes=tuple(notes) or (why,))
    for note in notes:  # repos left out of a multi-repo diff
        log.info("%s: taken as unchanged", note)

    ignore = workspace.config.ignore
    direct: dict[Flake, list[str]] = {}
    readers: dict[Flake, list[str]] = {}  # every flake of a changed repo: Nix copies it whole
    for repo, files in changed.items():
        kept = [name for name in files if not ignored(name, ignore)]
        if len(kept) < len(files):
            notes.append(_ignored_note(repo, [name for name in files if name not in kept]))
        for flake, reason in files_to_flakes(repo, workspace.flakes, kept):
            direct.setdefault(flake, []).append(reason)
        for flake in workspace.flakes:
            if flake.repo == repo and files:
                readers[flake] = _unread(flake, workspace.flakes, files, kept)
        log.debug("%s: %d changed files, %d after ignore globs", repo.name, len(files), len(kept))

    edges = lock_edges(workspace, git)
    affected = affected_by(direct, edges)
    reading = affected_by(readers, edges)
    since = ", ".join(f"{name} since {sha[:12]}" for name, sha in merge_bases.items())
    targets: list[Target] = []
    pruned: list[Target] = []
    unaffected = []
    for flake in workspace.flakes:
        if flake not in reading:
            unaffected.append((flake, f"no change in {since} can reach it"))
            continue
        picked = flake in affected
        reasons = _cap(direct.get(flake, []) if picked else readers.get(flake, []))
        for edge in edges:
            # a picked flake names the dependencies that picked it; a pruned one, every one
            # that can read the change
            if edge.dependent == flake and edge.dependency in (affected if picked else reading):
                reasons.append(f"depends on {edge.dependency.id} (input '{edge.input_name}')")
        # which inputs come from the workspace's checkouts: ci_nix/inputs.py, base or not
        (targets if picked else pruned).append(Target(flake, tuple(dict.fromkeys(reasons))))
    return Detection(tuple(targets), tuple(unaffected), base=revs.base, head=revs.head,
                     notes=tuple(notes), pruned=tuple(pruned),
                     merge_bases=tuple(merge_bases.items()))


def select(workspace: Workspace, git: Git, *, all: bool, base: str | None, head: str | None,
           only: Collection[str] = (), environ: Mapping[str, str] = os.environ) -> Detection:
    """The flakes to evaluate for the selection flags: --all, else change detection; --only
    narrows to the flakes it names, which keep detection's reasons and are built even when
    detection left them out."""
    detection = everything(workspace) if all else detect(workspace, git, base, head, environ)
    if not only:
        return detection
    # asked for by name: built as evaluated, not pruned
    picked = {t.flake: t for t in (*detection.targets, *detection.pruned)}
    targets = tuple(picked.get(flake, Target(flake, ("--only",))) for flake in workspace.flakes
                    if flake.id in only)
    return Detection(targets, (), detection.base, detection.head, detection.notes,
                     merge_bases=detection.merge_bases)


# --- base and head ----------------------------------------------------------------------------

def revisions(base: str | None, head: str | None, environ: Mapping[str, str]) -> Revisions:
    """Base and head from the flags, else from GitHub Actions or GitLab CI."""
    if base is not None:
        return _zero_is_everything(Revisions(base, head, "--base", explicit=True))
    if CiEnv.detect(environ).github:
        found = _github_base(environ)
        if found is not None:
            return _zero_is_everything(Revisions(found[0], head, found[1]))
    if CiEnv.detect(environ).gitlab:
        for name in ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_COMMIT_BEFORE_SHA"):
            if environ.get(name):
                return _zero_is_everything(Revisions(environ[name], head, name))
    return Revisions(None, head, "no base revision (pass --base REV, or run in GitHub Actions "
                     "or GitLab CI)")


def _github_base(environ: Mapping[str, str]) -> tuple[str, str] | None:
    event = environ.get("GITHUB_EVENT_NAME", "")
    payload = trust.github_event(environ)
    if payload is None:
        return None
    found = trust.github_pull_base(payload)
    if found is not None:
        default = "merge_group" if found[1].startswith("merge_group") else "pull_request"
        return found[0], f"GitHub {event or default} event: {found[1]}"
    before = payload.get("before")
    if isinstance(before, str) and before:
        return before, f"GitHub {event or 'push'} event: before"
    return None


def _zero_is_everything(revs: Revisions) -> Revisions:
    if revs.base is not None and ZERO_SHA.match(revs.base):
        return Revisions(None, revs.head, f"new branch ({revs.source} is the all-zero sha)")
    return revs


def _changed_files(git: Git, repo: Repo, revs: Revisions, notes: list[str],
                   primary: bool, merge_bases: dict[str, str]) -> list[str] | None:
    """The files the change touched in repo, or None (with a note) when it cannot tell; the
    merge-base it compared from goes in merge_bases."""
    assert revs.base is not None
    head = git.commit(repo.path, revs.head or "HEAD")
    if head is None:
        if revs.head is not None:
            raise SelectionError(f"--head {revs.head}: no such revision in {repo.path}; pass a "
                                 "commit, branch or tag that exists there")
        notes.append(f"{repo.name} has no commit yet")
        return None
    base = git.commit(repo.path, revs.base)
    merge_base = git.merge_base(repo.path, base, head) if base else None
    if merge_base is None and primary and git.is_shallow(repo.path):
        merge_base = _deepen(git, repo, revs.base, head)
        if merge_base is None:
            notes.append(f"shallow clone of {repo.name}: could not fetch enough history to "
                         f"find where {revs.base[:12]} ({revs.source}) and {head[:12]} meet "
                         "(fetch with more depth, e.g. fetch-depth: 0)")
            return None
    if merge_base is None:
        if base is None and revs.explicit and primary:
            raise SelectionError(f"--base {revs.base}: no such revision in {repo.path}; pass a "
                                 "commit, branch or tag that exists there")
        if base is None:
            notes.append(f"{revs.base} ({revs.source}) is not a commit in {repo.name}")
        else:
            notes.append(f"{revs.base[:12]} ({revs.source}) shares no history with "
                         f"{head[:12]} in {repo.name}")
        return None
    merge_bases[repo.name] = merge_base
    return git.changed_files(repo.path, merge_base, None if revs.head is None else head)


def _deepen(git: Git, repo: Repo, base: str, head: str) -> str | None:
    """Fetch the base and deepen a shallow clone until base and head meet."""
    remotes = git.remotes(repo.path)
    if not remotes:
        return None
    remote = "origin" if "origin" in remotes else remotes[0]
    if git.commit(repo.path, base) is None:
        log.info("%s is a shallow clone without %s: fetching it from %s", repo.name, base, remote)
        result = git.fetch(repo.path, ["--depth=50", remote, base])
        if not result.ok:
            lines = result.stderr.strip().splitlines()
            why = next((line for line in lines if line.startswith("fatal:")),
                       lines[0] if lines else f"exit {result.returncode}")
            log.warning("fetching %s from %s failed: %s", base, remote, why)
            return None
    base_sha = git.commit(repo.path, base)
    if base_sha is None:
        return None
    for step in DEEPEN_STEPS:
        found = git.merge_base(repo.path, base_sha, head)
        if found is not None:
            return found
        if not git.is_shallow(repo.path):
            return None
        log.info("deepening the shallow clone of %s (%s)", repo.name, " ".join(step))
        if not git.fetch(repo.path, [*step, remote, head, base_sha]).ok:
            return None
    return git.merge_base(repo.path, base_sha, head)


# --- files -> flakes --------------------------------------------------------------------------

def glob_regex(pattern: str) -> re.Pattern[str]:
    """A gitignore-like glob: `**` spans directories, `*` and `?` stay within one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def ignored(name: str, globs: Iterable[str]) -> bool:
    """Whether a repo-relative path matches an `ignore:` glob; a glob without `/` matches the
    file name at any depth, as in .gitignore."""
    for glob in globs:
        pattern = glob.lstrip("/")
        target = name if "/" in pattern else PurePosixPath(name).name
        if glob_regex(pattern).match(target):
            return True
    return False


def files_to_flakes(repo: Repo, flakes: Iterable[Flake],
                    files: Iterable[str]) -> list[tuple[Flake, str]]:
    """(flake, reason) for each changed file: its innermost flake, or every flake of the repo."""
    own = [flake for flake in flakes if flake.repo == repo]
    result = []
    for name in files:
        flake = _innermost(own, name)
        if flake is not None:
            lock = f"{flake.subdir}/flake.lock" if flake.subdir else "flake.lock"
            result.append((flake, "flake.lock changed" if name == lock else f"changed {name}"))
        else:
            result.extend((flake, f"changed {name} (outside every flake directory)")
                          for flake in own)
    return result


def _innermost(own: list[Flake], name: str) -> Flake | None:
    """The innermost of a repo's flakes whose directory holds the file, if any."""
    inside = [f for f in own if not f.subdir or name.startswith(f.subdir + "/")]
    return max(inside, key=lambda f: len(f.subdir)) if inside else None


def _unread(flake: Flake, flakes: Iterable[Flake], files: list[str],
            kept: list[str]) -> list[str]:
    """Why each changed file of flake's repo may reach it although path rules leave it out:
    Nix copies the whole repo into the store, so an ignored file or one in another flake's
    directory is still in its source."""
    own = [f for f in flakes if f.repo == flake.repo]
    why = []
    for name in files:
        if name not in kept:
            why.append(f"changed {name} (matches 'ignore:', but is in its source)")
        elif _innermost(own, name) not in (flake, None):
            why.append(f"changed {name} (in another flake's directory, but in its source)")
    return why


def _ignored_note(repo: Repo, names: list[str]) -> str:
    """Which changed files `ignore:` dropped, so a docs-only change that builds nothing says why."""
    shown = ", ".join(names[:MAX_FILE_REASONS])
    more = f" and {len(names) - MAX_FILE_REASONS} more" if len(names) > MAX_FILE_REASONS else ""
    return f"{repo.name}: ignored {count(len(names), 'changed file')} matching 'ignore:': " \
           f"{shown}{more}"


def _cap(reasons: list[str]) -> list[str]:
    unique = list(dict.fromkeys(reasons))
    if len(unique) <= MAX_FILE_REASONS:
        return unique
    return [*unique[:MAX_FILE_REASONS], f"... and {len(unique) - MAX_FILE_REASONS} more changed "
            "files"]


# --- the flake.lock graph ---------------------------------------------------------------------

@dataclass(frozen=True)
class Edge:
    """`dependent` locks `dependency` as the input at `input` (a path of input names)."""

    dependent: Flake
    dependency: Flake
    input: tuple[str, ...]

    @property
    def input_name(self) -> str:
        return "/".join(self.input)


def normalise_url(url: str) -> tuple[str, str] | None:
    """A repository URL as (identity key, subdir from `?dir=`); None when it names no repository.

    Kept for callers that want the pair; the identity itself lives in `ci_nix.source`.
    """
    found = source.parse_url(url)
    if found is None or found.repository is None:
        return None
    return found.repository.key, found.subdir


class _Resolver:
    """Finds the workspace flake a flake.lock node refers to."""

    def __init__(self, workspace: Workspace, git: Git) -> None:
        self.flakes = {(f.repo.path.resolve(), f.subdir): f for f in workspace.flakes}
        self.repos = {repo.path.resolve(): repo for repo in workspace.repos}
        self.workspace, self.git = workspace, git

    @functools.cached_property
    def by_key(self) -> dict[str, Repo]:
        """The repos by their remotes' identities: read only for a node that names no
        checkout of the workspace (git calls)."""
        by_key: dict[str, Repo] = {}
        remotes = self.workspace.remote_urls(self.git)
        for repo in self.workspace.repos:
            for url in [*remotes[repo.path], *([repo.url] if repo.url else [])]:
                found = normalise_url(url)
                if found is not None:
                    by_key.setdefault(found[0], repo)
        return by_key

    def flake(self, node: lockfile.Node, dependent: Flake) -> Flake | None:
        ref = node.locked or node.original
        if ref.type == "path" and ref.path is not None and not ref.path.startswith("/"):
            return self._local(dependent.path / ref.path, "")
        found = source.of_ref(ref)
        repo = found.repository
        if repo is None or found.kind not in (source.Kind.GITHUB, source.Kind.GITLAB,
                                              source.Kind.SOURCEHUT, source.Kind.GIT,
                                              source.Kind.MERCURIAL, source.Kind.PATH):
            return None
        if repo.local:
            return self._local(Path(repo.path), found.subdir)
        return self._remote(repo.key, found.subdir)

    def _local(self, path: Path, subdir: str) -> Flake | None:
        full = (path / subdir if subdir else path).resolve()
        for repo_path in self.repos:
            if full == repo_path or repo_path in full.parents:
                rel = full.relative_to(repo_path).as_posix()
                return self.flakes.get((repo_path, "" if rel == "." else rel))
        # not a checkout in the workspace: maybe a bare repo that is some repo's remote
        return self._remote(source.local(str(path)).key, subdir)

    def _remote(self, key: str, subdir: str) -> Flake | None:
        repo = self.by_key.get(key)
        if repo is None:
            return None
        return self.flakes.get((repo.path.resolve(), subdir))


def workspace_flake_of(workspace: Workspace,
                       git: Git) -> Callable[[lockfile.Node, Flake], Flake | None]:
    """(lock node, the flake whose lock it is) -> the workspace flake it refers to, or None."""
    return _Resolver(workspace, git).flake


def lock_edges(workspace: Workspace, git: Git) -> list[Edge]:
    """Every input of a workspace flake's flake.lock that is another workspace flake."""
    resolver = _Resolver(workspace, git)
    edges = []
    for flake in workspace.flakes:
        try:
            lock = lockfile.read(flake.path / "flake.lock")
        except lockfile.LockError as err:
            # evaluating that flake reports the broken lock; the rest of the graph still counts
            log.warning("%s; its inputs are left out of change detection", err)
            continue
        if lock is None:
            continue
        for path, node in lock.walk():
            dependency = resolver.flake(node, flake)
            if dependency is not None and dependency != flake:
                edges.append(Edge(flake, dependency, path))
    return edges


def affected_by(direct: Mapping[Flake, object], edges: Iterable[Edge]) -> set[Flake]:
    """The changed flakes and everything that depends on them, transitively."""
    edges = list(edges)
    affected = set(direct)
    grew = True
    while grew:
        grew = False
        for edge in edges:
            if edge.dependency in affected and edge.dependent not in affected:
                affected.add(edge.dependent)
                grew = True
    return affected
