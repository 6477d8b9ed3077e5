"""The evaluation cache: what a flake evaluated to, remembered under everything that decides it.

A key covers the flake's source as Nix reads it (the tree of its tracked files, uncommitted changes
included, and whether there are any; untracked files do not count, as Nix does not see them; the
commit too where the evaluation read it, FlakeEval.commit_read, or a lock may hand it on),
its flake.lock, each --override-input and that input's source, the systems and the selection,
the Nix version and every Nix setting but those that only concern building or fetching
(`_BUILD_ONLY`), and ci-nix's own evaluator (its .nix files and version). An entry holds what
the evaluation gave per attribute: drvPath, outputs and system, or a deterministic evaluation
error. Timeouts, out-of-memory kills and failures of Nix itself are never stored.

Entries are JSON files `DIR/v1/ab/<key>.json`, each written whole (a temporary file renamed
over it), so concurrent runs and a cache restored mid-write see a complete entry or none. A
corrupt entry, one of another format or one whose key is not its name is ignored (logged) and
removed. The directory is kept under `MAX_BYTES`: the least recently used entries go first.

What an entry is trusted with is decided by the pipeline (README "Evaluation cache"): an
attribute counts as `cached` only when the binary cache has its outputs signed by a trusted
key; otherwise its cached drvPath is built only when the .drv is in the local store, and the
flake is evaluated again when it is not.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import json
import logging
import os
import random
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ci_nix
from ci_nix import flakeref, lockfile, outputs
from ci_nix.evaluate import Selection
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    Failure,
    FailureType,
    Flake,
    FlakeEval,
    Job,
    Status,
    Target,
)
from ci_nix.tools import proc
from ci_nix.tools.files import read_regular
from ci_nix.tools.git import OBJECT_NAME, Git
from ci_nix.tools.nix import Nix, NixCommandError, closure, read_input_graph

log = logging.getLogger(__name__)

FORMAT = 1  # the entry layout; another one is ignored
MAX_BYTES = 512 * 1024 * 1024  # the directory's bound: past it, the oldest entries go
MAX_ENTRY_BYTES = 64 * 1024 * 1024  # an entry past it is not read (a restored cache is data)
# A run looks whether the directory is past MAX_BYTES unless one did within this many seconds
# (the file LOOKED in DIR/v1 says when): between looks it grows only by what runs write.
EVICT_EVERY = 10 * 60
LOOKED = "looked"
_HELPER = Path(ci_nix.__file__).parent / "nix"

# Nix settings that decide how derivations are built or fetched, never what a pure flake
# evaluation gives; every other setting is part of the key (an unknown one misses rather than
# risk a wrong hit). Fetching settings may stay out: a flake evaluation reads locked inputs.
_BUILD_ONLY = frozenset({
    "access-tokens", "auto-optimise-store", "build-dir", "build-hook", "build-poll-interval",
    "build-users-group", "builders", "builders-use-substitutes", "connect-timeout", "cores",
    "diff-hook", "download-attempts", "download-buffer-size", "download-speed", "fallback",
    "fsync-metadata", "gc-reserved-space", "http-connections", "http2", "keep-build-log",
    "keep-derivations", "keep-env-derivations", "keep-failed", "keep-going", "keep-outputs",
    "log-lines", "max-build-log-size", "max-free", "max-jobs", "max-silent-time",
    "max-substitution-jobs", "min-free", "min-free-check-interval", "narinfo-cache-negative-ttl",
    "narinfo-cache-positive-ttl", "netrc-file", "post-build-hook", "pre-build-hook",
    "print-missing", "require-sigs", "run-diff-hook", "sandbox", "sandbox-build-dir",
    "sandbox-dev-shm-size", "sandbox-fallback", "sandbox-paths", "ssl-cert-file",
    "stalled-download-timeout", "substitute", "substituters", "extra-substituters",
    "timeout", "trusted-public-keys", "extra-trusted-public-keys", "trusted-substituters",
    "trusted-users", "allowed-users", "user-agent-suffix", "upgrade-nix-store-path-url",
    "use-cgroups", "show-trace", "warn-dirty", "log-format", "print-build-logs",
    "system-features", "extra-platforms", "tarball-ttl",
    # where builds happen; the store directory (/nix/store) is in every drvPath a hit gives,
    # and a hit whose paths this store does not have is evaluated again
    "store",
})
# plugin-files: a plugin adds builtins (nix-plugins' exec): no cache at all (Keys.impure)
# An evaluation error that says this may go away on its own: never stored.
_TRANSIENT = ("out of memory", "bad_alloc", "cannot allocate memory", "unable to download",
              "download", "substitut", "connect", "network", "timed out", "timeout",
              "resolve host", "no space left", "too many open files", "killed", "signal")


@dataclass(frozen=True)
class Settings:
    """Where the cache lives (None: off) and whether to check a sample of its hits."""

    directory: Path | None
    verify: bool = False
    max_bytes: int = MAX_BYTES
    read: bool = True  # False: evaluate everything, only remember the results

    @classmethod
    def resolve(cls, enabled: bool | None, configured: Path | bool, verify: bool,
                environ: Mapping[str, str]) -> Settings:
        """--no-eval-cache (enabled False) or `eval.cache: false` turn it off; `eval.cache: DIR`
        moves it; the default is $XDG_CACHE_HOME/ci-nix/eval (~/.cache when unset)."""
        if enabled is False or configured is False:
            return cls(None, verify)
        if isinstance(configured, Path):
            return cls(configured, verify)
        return cls(default_directory(environ), verify)


def tracked(directory: Path, repos: Iterable[Path], git: Git) -> str | None:
    """Why a cache directory inside a workspace repo is not ci-nix's own, or None: the repo
    tracks files in it (a pull request can commit entries there, e.g. a forged base side that
    --skip-unchanged takes as unchanged), or a symlink in the repo on the way (a pull request
    can commit one), or git cannot look.
    One git call for each repo the directory lies in, none for one outside them all."""
    # realpath, not resolve(): a committed symlink loop must not raise
    places = {Path(os.path.abspath(directory)), Path(os.path.realpath(directory))}
    for repo in repos:
        for place in sorted(p for p in places if p.is_relative_to(repo)):
            relative = str(place.relative_to(repo))
            linked = next((p for p in (place, *place.parents) if p.is_relative_to(repo)
                           and p != repo and p.is_symlink()), None)
            if linked is not None:  # git answers nothing for a path beyond a symlink
                return f"{linked} is a symlink in {repo}"
            result = git.run(repo, ["ls-files", "-z", "--", relative])
            if not result.ok:
                return (f"git cannot list {relative} in {repo}: "
                        f"{(result.stderr.strip().splitlines() or ['failed'])[-1]}")
            if result.stdout:
                first = result.stdout.split("\0", 1)[0]
                return f"{repo} tracks files in it ({first[:200]})"
    return None


def default_directory(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or "~").expanduser()
                                                 / ".cache")
    return Path(base) / "ci-nix" / "eval"


@functools.cache  # read once: every entry written or read checks it
def evaluator_version() -> str:
    """ci-nix's evaluator: its version and the .nix files the workers run."""
    digest = hashlib.sha256(ci_nix.__version__.encode())
    for name in ("eval.nix", "flake.nix"):
        digest.update(name.encode() + b"\0" + (_HELPER / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Keys:
    """Computes entry keys; each repo's state is read once per run."""

    nix: Nix
    git: Git
    selection: Selection
    # what the caller already knows: repo directory -> (HEAD commit, uncommitted changes to
    # tracked files); a clean one needs no git call here
    known: Mapping[str, tuple[str | None, bool]] = field(default_factory=dict)
    trees: Mapping[str, str] = field(default_factory=dict)  # commit -> its tree, where known
    _repos: dict[str, tuple[str, str | None] | None] = field(default_factory=dict)
    _trees: dict[str, str | None] = field(default_factory=dict)
    _substs: dict[str, bool] = field(default_factory=dict)
    _submods: dict[str, list[list[str]] | None] = field(default_factory=dict)
    _locks: dict[str, bytes | None] = field(default_factory=dict)
    # a reference's source and a repo's info/attributes, as read once by this reading of the
    # repos (a key by commit and one by tree both ask them; so do the dependents of one input)
    _sources: dict[str, str | None] = field(default_factory=dict)
    _infos: dict[str, bool] = field(default_factory=dict)
    _common: str | None = None
    # where trees found free of export-subst are remembered across runs
    cache: EvalCache | None = None

    def of(self, target: Target) -> str | None:
        """The target's key by its commit, or None when ci-nix cannot tell what Nix would read
        (not cached)."""
        return self._key(target, by_tree=False)

    def by_tree(self, target: Target, *, to_read: bool = False) -> str | None:
        """The key for an evaluation that read nothing of its flake's commit (rev, lastModified,
        ...: FlakeEval.commit_read is empty): the tree of the source instead of its commit, so
        another commit of the same tree (a merge commit whose tree a pull request tested, an
        amended message) finds it. None where the key by commit is the only one.
        to_read: the key to look an entry up by, which skips the check whether the tree's
        files get their commit (`_substitutes`, a git call per tree) where a writer alone can
        settle it: an entry is only written under a tree's key after that check found the tree
        clean (see _tree_source)."""
        return self._key(target, by_tree=True, to_read=to_read)

    def reread(self, only: Collection[str] | None = None) -> Keys:
        """Keys for the repos as they are now, read the way the caller read them: each repo the
        caller knew gets its commit and dirtiness again (one git call; a dirty one is read
        whole, as before); the rest is read afresh. A commit's tree is the commit's for good,
        and whether a tree substitutes its commit depends on the tree alone: both are kept.
        only: the known repos to read again (see unconfirmed); the others keep their state."""
        known: dict[str, tuple[str | None, bool]] = {}
        for path in self.known:
            if only is not None and path not in only:
                known[path] = self.known[path]
                continue
            state = self.git.head_status(Path(path))
            if state is None:
                continue  # no commit now (or no answer): read afresh below
            known[path] = state
        trees = {rev: self.trees[rev] for rev, _ in known.values()
                 if rev is not None and rev in self.trees}
        return Keys(self.nix, self.git, self.selection, known, trees,
                    _substs=dict(self._substs), cache=self.cache)

    def unconfirmed(self, target: Target, revs: Sequence[str | None] | None) -> set[str] | None:
        """The repos whose state target's key read that must be read again to know the
        evaluation read that state, given revs (FlakeEval.source_revs: the commit each Nix
        process that evaluated it read the flake's source at); None when revs say a process
        read another state than the key's. The flake's own repo needs no second look when
        the key read it clean at commit C and every process said it read C: Nix names a
        commit only for a clean checkout (not for uncommitted changes) and then reads that
        commit's files, so it read what the key says. Override inputs' repos are not said, and
        a checkout with submodules is always read again (Nix reads their work trees, which
        the superproject's commit does not name)."""
        paths: set[str] = set()
        for position, ref in enumerate([target.flake.ref, *(o.ref for o in target.overrides)]):
            checkout = flakeref.read_checkout(ref)
            if checkout is None or checkout.rev is not None:
                continue  # a locked reference: no checkout state in the key
            path = str(Path(checkout.path))  # as _read_state looks it up
            rev, dirty = self.known.get(path, (None, True))
            if (position == 0 and revs and rev is not None and not dirty
                    and not (Path(path) / ".gitmodules").exists()):
                if any(read != rev for read in revs):
                    return None
                continue
            paths.add(path)
        return paths

    def impure(self) -> bool:
        """Whether Nix evaluates impurely: `pure-eval = false` (builtins.getEnv, currentTime,
        its own checkout by fetchGit) or `allow-unsafe-native-code-during-evaluation`
        (builtins.exec runs any command, pure or not), or plugins (builtins of their own). A
        flake may then read what no key can hold, and nothing is cached."""
        values = self.nix.setting_values()
        return (values.get("pure-eval") is False
                or values.get("allow-unsafe-native-code-during-evaluation") is True
                or bool(values.get("plugin-files")))  # builtins of their own, e.g. exec

    def _key(self, target: Target, *, by_tree: bool, to_read: bool = False) -> str | None:
        source = (self._tree_source(target.flake.ref, to_read) if by_tree
                  else self._source(target.flake.ref))
        if source is None:
            return None
        overrides = []
        for override in target.overrides:
            # by commit even in a key by tree: the flake may read the input's rev
            found = self._source(override.url)
            if found is None:
                return None
            overrides.append([override.input, found])
        text = self._lock(target.flake)
        lock = hashlib.sha256(text).hexdigest() if text is not None else None
        if by_tree and text is not None and _lock_reaches_root(text):
            return None
        selection = self.selection
        only = (None if selection.only is None
                else sorted(attr for flake, attr in selection.only if flake == target.flake.id))
        document = {"common": self._settings(), "flake": target.flake.id, "source": source,
                    "lock": lock, "overrides": overrides, "systems": list(selection.systems),
                    "outputs": list(selection.outputs), "include": list(selection.include),
                    "exclude": list(selection.exclude), "only": only}
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def _lock(self, flake: Flake) -> bytes | None:
        """The flake.lock Nix reads: the pinned commit's (`rev=`, e.g. `diff`'s base looked up
        without a worktree) or the work tree's; None: none (a flake without inputs), or Nix
        cannot read it either."""
        if flake.repo.rev is None:
            here = f"{flake.path}\0"
            if here not in self._locks:
                try:
                    self._locks[here] = lockfile.read_bytes(flake.path / "flake.lock")
                except (OSError, ValueError):
                    self._locks[here] = None
            return self._locks[here]
        name = f"{flake.subdir}/flake.lock" if flake.subdir else "flake.lock"
        memo = f"{flake.repo.path}\0{flake.repo.rev}:{name}"
        if memo not in self._locks:
            found = self.git.run(flake.repo.path,
                                 ["cat-file", "blob", f"{flake.repo.rev}:{name}"])
            self._locks[memo] = found.stdout.encode() if found.ok else None
        return self._locks[memo]

    def _settings(self) -> str:
        """Nix's version and evaluation settings, and ci-nix's evaluator, as one digest."""
        if self._common is None:
            settings = {name: value for name, value in self.nix.setting_values().items()
                        if name not in _BUILD_ONLY}
            options = {name: value for name, value in self.nix.options
                       if name not in _BUILD_ONLY}
            document = {"format": FORMAT, "evaluator": evaluator_version(),
                        "nix": str(self.nix.version), "system": self.nix.current_system,
                        "settings": settings, "options": options,
                        "eval-store": self.nix.eval_store}
            self._common = hashlib.sha256(
                json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
        return self._common

    def _source(self, ref: str) -> str | None:
        """What Nix reads for a flake reference: a git checkout's commit (and its tracked
        files' tree when they have uncommitted changes), independent of where it is checked
        out; a locked reference as it is. None: an unlocked reference ci-nix cannot pin."""
        if ref not in self._sources:
            self._sources[ref] = self._read_source(ref)
        return self._sources[ref]

    def _read_source(self, ref: str) -> str | None:
        checkout = flakeref.read_checkout(ref)
        if checkout is None:
            return ref if flakeref.pinned(ref) else None
        # a commit named by rev= reads as a clean checkout at that commit does (Nix gives the
        # flake the same source, rev and revCount): a base worktree finds its own run's entry
        params = _params(checkout.query)
        if checkout.rev is not None:
            return json.dumps(["git", checkout.rev, params])
        path, work_tree = checkout.path, checkout.work_tree  # ref=HEAD: the commit
        state = self._repo_state(path, work_tree=work_tree)
        submodules = self._submodules(path) if work_tree else ()
        if state is None or submodules is None:
            return None
        head, dirty = state
        return json.dumps(["git", head if dirty is None else f"{head}+{dirty}", params,
                           *([submodules] if submodules else [])])

    def _tree_source(self, ref: str, to_read: bool = False) -> str | None:
        """What Nix reads for a git checkout (or a rev= of one) without its commit: the
        tracked files' tree and whether they are uncommitted (a dirty tree's self has no rev:
        `self ? rev` tells them apart without reading it). None for anything else.
        to_read: without asking git whether the tree's .gitattributes name export-subst. That
        answer depends on the tree alone, and the tree (its hash, so every .gitattributes in
        it) and the Nix version and flavor are all in the key: an entry under this key was
        written by a run that asked git about the very same tree and found it clean. The
        repo's own info/attributes is outside the tree, so it is read (a file) either way."""
        checkout = flakeref.read_checkout(ref)
        if checkout is None:
            return None
        path = checkout.path
        submodules: list[list[str]] | None = []
        if checkout.rev is not None:
            tree, dirty = self._tree(path, checkout.rev), False
        else:
            work_tree = checkout.work_tree
            state = self._repo_state(path, work_tree=work_tree)
            submodules = self._submodules(path) if work_tree else []
            if state is None or submodules is None:
                return None
            head, uncommitted = state
            tree = uncommitted if uncommitted is not None else self._tree(path, head)
            dirty = uncommitted is not None
        if tree is None or (self._local_substitutes(path) if to_read
                            else self._substitutes(path, tree)):
            return None
        # "checked": keys written before the tree was checked (ci-nix 0.1.0 had tree keys
        # for trees with export-subst) are never read as checked ones
        return json.dumps(["git-tree", tree, dirty, _params(checkout.query), "checked",
                           *([submodules] if submodules else [])])

    def _substitutes(self, path: str, tree: str) -> bool:
        """Whether Nix's source of this tree may hold its commit: a `.gitattributes` in it (or
        the repo's info/attributes) names `export-subst`, which `git archive` (how Nix before
        2.20, and Lix, read a clean checkout) expands to the commit's hash in the files, read
        by no `self` attribute. Such a tree is keyed by commit only; so is one git cannot look
        into."""
        if not self._archived():
            return False
        memo = f"{path}\0{tree}"
        if memo not in self._substs:
            self._substs[memo] = (not self._clean_tree(path, tree)
                                  or self._local_substitutes(path))
        return self._substs[memo]

    def _clean_tree(self, path: str, tree: str) -> bool:
        """Whether no .gitattributes in the tree names export-subst: a fact of the tree alone,
        so an earlier run's answer (in the cache directory) holds in any repo and at any
        commit with this tree; else git is asked, and a clean tree remembered."""
        if self.cache is not None and self.cache.known_clean(tree):
            return True
        found = self.git.run(Path(path), ["grep", "-q", "-F", "export-subst", tree, "--",
                                          ":(glob)**/.gitattributes"])
        if found.returncode != 1:  # 0: a match; anything else: git could not look
            return False
        if self.cache is not None:
            self.cache.remember_clean(tree)
        return True

    def _archived(self) -> bool:
        """Whether Nix reads a clean checkout with `git archive`, which applies export-subst:
        Nix before 2.20, and Lix. Since 2.20 Nix reads it with libgit2 (NixOS/nix#9240)."""
        version = self.nix.version
        return not (version.flavor == "nix" and version.at_least(2, 20))

    def _local_substitutes(self, path: str) -> bool:
        """Whether the repo's own info/attributes (not in any tree) names export-subst."""
        if not self._archived():
            return False
        if path not in self._infos:
            info = Path(path) / ".git" / "info" / "attributes"
            try:
                self._infos[path] = b"export-subst" in info.read_bytes()
            except OSError:
                self._infos[path] = False  # none (or a linked worktree's, not read: rare)
        return self._infos[path]

    def _submodules(self, path: str) -> list[list[str]] | None:
        """The checkout's submodules as Nix reads them from its work tree (`submodules=1`, or
        a flake's `self.submodules`): each one's path, commit and whether it is checked out,
        nested ones too; [] without a .gitmodules (no git call). None where one has
        uncommitted changes to tracked files: Nix reads them, but `git stash create` of the
        superproject holds none of them, so no key can (not cached)."""
        memo = f"{path}\0submodules"
        if memo not in self._submods:
            self._submods[memo] = (self._read_submodules(Path(path))
                                   if (Path(path) / ".gitmodules").is_file() else [])
        return self._submods[memo]

    def _read_submodules(self, repo: Path) -> list[list[str]] | None:
        listed = self.git.run(repo, ["submodule", "status", "--recursive"])
        if not listed.ok:
            log.info("evaluation cache: cannot read the submodules of %s; not cached", repo)
            return None
        found = []
        for line in listed.stdout.splitlines():
            # "<state><commit> <path>[ (<describe>)]"; state: ' ', '-' (not checked out), '+'
            # (checked out at another commit than the superproject records), 'U' (conflict)
            # the commit is 40 or 64 digits (a SHA-256 repository's): cut at the space
            state, (commit, _, rest) = line[:1], line[1:].partition(" ")
            where = rest.rsplit(" (", 1)[0] if rest.endswith(")") else rest
            if state in ("+", " "):
                status = self.git.run(repo / where, ["--no-optional-locks", "status",
                                                     "--porcelain", "--untracked-files=no"])
                if not status.ok:  # what Nix reads there is not known: no key
                    log.info("evaluation cache: cannot read the submodule %s of %s; not "
                             "cached", where, repo)
                    return None
                if status.stdout.strip():
                    log.info("evaluation cache: %s has uncommitted changes in its submodule "
                             "%s, which Nix reads and no key holds; not cached", repo, where)
                    return None
            found.append([state, commit, where])
        return found

    def _tree(self, path: str, commit: str) -> str | None:
        if commit in self.trees:
            return self.trees[commit]
        memo = f"{path}\0tree\0{commit}"
        if memo not in self._trees:
            result = self.git.run(Path(path), ["rev-parse", "--verify", "--quiet",
                                               f"{commit}^{{tree}}"])
            self._trees[memo] = result.stdout.strip() if result.ok else None
        return self._trees[memo]

    def _repo_state(self, path: str, *, work_tree: bool) -> tuple[str, str | None] | None:
        """(HEAD commit, the tracked files' tree when they differ from it) or None."""
        memo = f"{path}\0{work_tree}"
        if memo not in self._repos:
            self._repos[memo] = self._read_state(Path(path), work_tree)
        return self._repos[memo]

    def _read_state(self, repo: Path, work_tree: bool) -> tuple[str, str | None] | None:
        rev, dirty = self.known.get(str(repo), (None, True))
        if rev is not None and not dirty:
            return rev, None
        head = self.git.commit(repo, "HEAD")
        if head is None:
            return None
        if not work_tree:
            return head, None
        # `git stash create` writes the tracked files' work-tree state as a commit object (no
        # ref moves, untracked files are left out, as Nix leaves them out); nothing: clean.
        result = self.git.run(repo, ["stash", "create"], env=_IDENTITY)
        if not result.ok:
            # git (2.39) fails silently on a file whose stat changed but content did not (a
            # lock written back, a touched file); refreshed as `git status` would, it answers
            self.git.run(repo, ["update-index", "-q", "--refresh"])
            result = self.git.run(repo, ["stash", "create"], env=_IDENTITY)
        if not result.ok:
            log.info("evaluation cache: cannot read the state of %s (%s); not cached", repo,
                     result.stderr.strip().splitlines()[-1:] or result.returncode)
            return None
        stash = result.stdout.strip()
        if not stash:
            return head, None
        tree = self.git.run(repo, ["rev-parse", f"{stash}^{{tree}}"])
        return (head, tree.stdout.strip()) if tree.ok else None


def _params(query: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """A git+file reference's parameters but rev= (dir, ref, shallow, submodules, ...)."""
    return sorted((k, v) for k, values in query.items() for v in values if k != "rev")


def _lock_reaches_root(text: bytes) -> bool:
    """Whether a flake.lock gives an input the flake's own commit, which eval.nix cannot see
    being read: a relative path input (Nix >= 2.25 hands it the parent's sourceInfo, rev
    included) or an input that follows the root. An unreadable lock counts as one."""
    try:
        nodes = json.loads(text)["nodes"]
        for node in nodes.values():
            if "parent" in node:
                return True
            locked = node.get("locked") or {}
            if locked.get("type") == "path" and not str(locked.get("path", "/")).startswith("/"):
                return True
            if any(spec == [] for spec in (node.get("inputs") or {}).values()):
                return True
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return True
    return False


# `git stash create` makes a commit object; CI runners often have no git identity configured.
_IDENTITY = {"GIT_AUTHOR_NAME": "ci-nix", "GIT_AUTHOR_EMAIL": "ci-nix@localhost",
             "GIT_COMMITTER_NAME": "ci-nix", "GIT_COMMITTER_EMAIL": "ci-nix@localhost"}


def storable(flake_eval: FlakeEval) -> bool:
    """Whether an evaluation may be remembered: every failure in it is a deterministic
    evaluation error (not a timeout, an out-of-memory kill or a failure of Nix itself)."""
    for case in flake_eval.cases:
        failure = case.failure
        if failure is None or case.status is not Status.FAILED:
            return False
        if failure.type is not FailureType.EVAL:
            return False
        text = f"{failure.message}\n{failure.log}".lower()
        if any(word in text for word in _TRANSIENT):
            return False
    return True


class EvalCache:
    """The entries in one directory."""

    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.root = directory / f"v{FORMAT}"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def foreign(self) -> str | None:
        """Why the directory may hold entries another user wrote, or None: it (or its v1) is
        owned by another user, or anyone may write it (an unsandboxed builder of another
        user, e.g. a pull request's, could create `eval.cache: /tmp/...` first or add entries).
        What is inside is only as trusted as who can write there."""
        for directory in (self.directory, self.root):
            try:
                info = directory.stat()
            except OSError:
                continue  # not there yet: this run creates it
            if info.st_uid != os.geteuid():
                return f"{directory} belongs to uid {info.st_uid}, not to this user"
            if info.st_mode & stat.S_IWOTH:
                return f"{directory} is writable by every user"
        return None

    def _linked(self, path: Path) -> bool:
        """Whether a directory between the cache's own directory and an entry is a symlink (a
        restored cache or a checkout can hold one): then it is removed, never followed, as
        reading, writing or evicting through it would reach files elsewhere."""
        found = False
        for directory in (self.root, path.parent):
            if directory.is_symlink():
                log.warning("evaluation cache: removing %s: a symlink, not a directory",
                            directory)
                with contextlib.suppress(OSError):
                    directory.unlink()
                found = True
        return found

    def load(self, key: str, target: Target) -> FlakeEval | None:
        """The remembered evaluation of target under key, or None (a miss)."""
        path = self._path(key)
        if self._linked(path):
            return None
        try:
            data = json.loads(_read_entry(path))
            flake_eval = _decode(data, key, target)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, RecursionError) as err:
            log.warning("evaluation cache: ignoring %s: %s", path, str(err)[:200] or
                        type(err).__name__)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return flake_eval

    def store(self, key: str, flake_eval: FlakeEval,
              packages: Mapping[str, Sequence[str]] | None = None) -> bool:
        """Remember an evaluation (False when it may not be or cannot be written)."""
        if not storable(flake_eval):
            log.debug("evaluation cache: not storing %s (a failure that may not recur)",
                      flake_eval.target.flake.id)
            return False
        text = json.dumps(_encode(flake_eval, key, packages or {}), separators=(",", ":"))
        if len(text) > MAX_ENTRY_BYTES:  # load() would refuse it: every run would write it
            log.info("evaluation cache: not storing %s: %d MiB is past the %d MiB an entry may "
                     "have", flake_eval.target.flake.id, len(text) // (1024 * 1024),
                     MAX_ENTRY_BYTES // (1024 * 1024))
            return False
        path = self._path(key)
        return self._write(path, text)

    def _write(self, path: Path, text: str) -> bool:
        try:
            self._linked(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or (path.exists() and not path.is_file()):
                path.unlink()  # replaced, never written through (a restored cache is data)
        except OSError as err:
            log.warning("evaluation cache: cannot write %s: %s", path, err.strerror or err)
            return False
        # masked and whole: a reader (another run) never sees half an entry
        problem = outputs.write_file(path, text)
        if problem is not None:
            log.warning("evaluation cache: cannot write %s: %s", path, problem)
            return False
        return True

    def _checked_path(self, tree: str) -> Path | None:
        # beside the entries (bounded and evicted with them: _files), named apart from them
        if not OBJECT_NAME.fullmatch(tree):
            return None
        return self._path(tree).with_suffix(".clean")

    def known_clean(self, tree: str) -> bool:
        """Whether a run found the git tree's .gitattributes free of export-subst
        (remember_clean). As trusted as an entry: whoever can write one can write the other."""
        path = self._checked_path(tree)
        if path is None or self._linked(path):
            return False
        try:
            data = json.loads(_read_entry(path))
        except (OSError, ValueError, RecursionError):
            return False
        return isinstance(data, dict) and data.get("format") == FORMAT and data.get(
            "clean-tree") == tree

    def remember_clean(self, tree: str) -> None:
        """Remember that the tree's .gitattributes name no export-subst."""
        path = self._checked_path(tree)
        if path is not None:
            self._write(path, json.dumps({"format": FORMAT, "clean-tree": tree}))

    def remove(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._path(key).unlink()

    def evict(self, every: float = 0) -> int:
        """Remove the least recently used entries (and stale temporary files) until the
        directory is within its bound; how many entries went. every: not when a run looked
        within that many seconds (EVICT_EVERY: a look reads every file's size, a few thousand
        system calls, which most runs on one machine can leave to the last one that looked)."""
        now = time.time()
        if every > 0 and self._looked_within(every, now):
            return 0
        entries: list[tuple[float, int, Path]] = []
        for path in _files(self.directory):
            try:
                info = path.lstat()
            except OSError:
                continue  # another run removed it
            if path.name.endswith(".tmp"):
                if now - info.st_mtime > 3600:  # left by a killed run
                    with contextlib.suppress(OSError):
                        path.unlink()
                continue
            entries.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
            total -= size
        if removed:
            log.info("evaluation cache: removed %d least recently used entries (bound %d MiB)",
                     removed, self.max_bytes // (1024 * 1024))
        self._looked()
        return removed

    def _looked_within(self, seconds: float, now: float) -> bool:
        """Whether a run looked at the bound within `seconds` (LOOKED's mtime; a marker from the
        future, or anything but a regular file, says it did not)."""
        try:
            info = (self.root / LOOKED).lstat()
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and now - seconds < info.st_mtime <= now + 1

    def _looked(self) -> None:
        """Mark the look (LOOKED's mtime), as an entry is written (_write: never through a
        symlink; a restored cache is data)."""
        try:
            if not stat.S_ISDIR(self.root.lstat().st_mode):
                return  # nothing stored yet, or a symlink (_linked removes it)
        except OSError:
            return
        self._write(self.root / LOOKED, "")


def _files(directory: Path) -> Iterator[Path]:
    """The entries, clean trees and temporary files in DIR/v*/??/, no symlink followed on the
    way (Path.glob follows them: an evict deleted the files of any directory a restored cache
    linked to)."""
    def dirs(path: Path, pattern: str) -> Iterator[Path]:
        with contextlib.suppress(OSError), os.scandir(path) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False) and fnmatch.fnmatchcase(entry.name,
                                                                               pattern):
                    yield Path(entry.path)

    for version in dirs(directory, "v*"):
        for shard in dirs(version, "*"):
            with contextlib.suppress(OSError), os.scandir(shard) as found:
                for entry in found:
                    if entry.name.endswith((".json", ".clean", ".tmp")) and not entry.is_dir(
                            follow_symlinks=False):
                        yield Path(entry.path)


def _read_entry(path: Path) -> bytes:
    """An entry's bytes: a regular file (not through a symlink) of at most MAX_ENTRY_BYTES;
    ValueError for anything else (a pipe or device would block or never end)."""
    return read_regular(path, MAX_ENTRY_BYTES)


def closures_of(nix: Nix, jobs: Iterable[Job]) -> dict[str, list[str]]:
    """Each job's derivation closure (the .drv names, `<hash>-name-version.drv`), so `diff`
    can compare a cached side without reading its .drv files (read_input_graph: from the files
    in /nix/store where they are, from Nix otherwise). Empty when Nix cannot say."""
    jobs = list(jobs)
    if not jobs:
        return {}
    inputs: dict[str, tuple[str, ...]] = {}
    try:
        read_input_graph(nix, {job.drv_path for job in jobs}, inputs)
    except NixCommandError as err:
        log.debug("evaluation cache: no package lists: %s", err)
        return {}
    return {job.drv_path: sorted(path.rsplit("/", 1)[-1] for path in
                                 closure([job.drv_path], lambda drv: inputs.get(drv, ())))
            for job in jobs}


def _encode(flake_eval: FlakeEval, key: str,
            packages: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    return {
        "format": FORMAT, "key": key, "ciNix": ci_nix.__version__, "evaluator": evaluator_version(),
        "flake": flake_eval.target.flake.id, "created": int(time.time()),
        "listed": list(flake_eval.listed),
        "jobs": [{"attr": list(job.attr), "system": job.system, "drvPath": job.drv_path,
                  "outputs": [list(pair) for pair in job.outputs],
                  "closure": list(packages.get(job.drv_path, ()))}
                 for job in flake_eval.jobs],
        "failures": [{"name": case.name, "system": case.system, "drvPath": case.drv_path,
                      **_failure(case.failure)}
                     for case in flake_eval.cases if case.failure is not None],
    }


def _failure(failure: Failure) -> dict[str, Any]:
    return {"type": failure.type.value, "message": failure.message, "log": failure.log,
            "drv": failure.drv, "hint": failure.hint, "file": failure.file, "line": failure.line,
            "column": failure.column, "repo": failure.repo}


def _str(value: Any, what: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def _store_path(value: Any, what: str) -> str:
    path = _str(value, what)
    if not path.startswith("/") or "\n" in path or "/../" in path:
        raise ValueError(f"{what} {path[:80]!r} is not a store path")
    return str(path)


def _int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(f"{what} is not a number")
    return value


def _decode(data: Any, key: str, target: Target) -> FlakeEval:
    """An entry as the FlakeEval it remembers; ValueError when it is not a sound entry."""
    if not isinstance(data, dict):
        raise ValueError("not an entry")
    if data.get("format") != FORMAT or data.get("evaluator") != evaluator_version():
        raise ValueError(f"written by another ci-nix (format {data.get('format')!r}, evaluator "
                         f"{data.get('evaluator')!r})")
    if data.get("key") != key:
        raise ValueError("its key is not its name")
    flake = target.flake.id
    jobs = []
    for item in _list(data["jobs"], "jobs"):
        attr = tuple(_str(part, "attr") for part in _list(item["attr"], "attr"))
        outputs = tuple((_str(pair[0], "output"), _store_path(pair[1], "output path"))
                        for pair in _list(item["outputs"], "outputs")
                        if len(_list(pair, "output")) == 2)
        drv = _store_path(item["drvPath"], "drvPath")
        if not drv.endswith(".drv") or not attr or len(outputs) != len(item["outputs"]):
            raise ValueError(f"bad job {drv[:80]!r}")
        jobs.append(Job(flake, attr, _str(item["system"], "system"), drv, outputs))
    cases = []
    for item in _list(data["failures"], "failures"):
        failure = Failure(FailureType(item["type"]), _str(item["message"], "message"),
                          _str(item["log"], "log"), _str(item["drv"], "drv", True),
                          _str(item["hint"], "hint", True), _str(item["file"], "file", True),
                          _int(item["line"], "line"), _int(item["column"], "column"),
                          _str(item["repo"], "repo", True))
        cases.append(Case(flake, _str(item["name"], "name"), Status.FAILED,
                          system=_str(item["system"], "system", True),
                          drv_path=_str(item["drvPath"], "drvPath", True), failure=failure))
    listed = tuple(_str(name, "listed") for name in _list(data["listed"], "listed"))
    closures = tuple((job.drv_path, tuple(_str(name, "closure")
                                          for name in _list(item["closure"], "closure")))
                     for job, item in zip(jobs, data["jobs"], strict=True) if item["closure"])
    return FlakeEval(target, tuple(jobs), tuple(cases), 0, 0.0, 0, listed, cached=True,
                     closures=closures)



VERIFY_SAMPLE = 3  # --verify-eval-cache: flakes evaluated again, chosen at random among the hits

Evaluator = Callable[[Sequence[Target]], list[FlakeEval]]


class Pending:
    """Entries to write later (evaluate's `later`): `diff` writes the head's while Nix reads
    the closure sizes, rather than before it can compare. run() writes them, once."""

    def __init__(self) -> None:
        self._writes: list[Callable[[], None]] = []
        # the derivation closures (.drv names) read for the entries, once run() has run: the
        # evaluations returned do not carry them (diff.remembered takes them from here)
        self.closures: dict[str, tuple[str, ...]] = {}

    def add(self, write: Callable[[], None]) -> None:
        self._writes.append(write)

    def run(self) -> None:
        while self._writes:
            self._writes.pop(0)()


def evaluate(targets: Sequence[Target], selection: Selection, settings: Settings | None,
             nix: Nix, git: Git, evaluator: Evaluator,
             known: Mapping[str, tuple[str | None, bool]] | None = None,
             trees: Mapping[str, str] | None = None,
             on_hit: Callable[[FlakeEval], None] | None = None,
             later: Pending | None = None) -> list[FlakeEval]:
    """What each target evaluates to: from the cache where it has an entry, else from
    `evaluator` (which then is remembered, with its derivation closures); one FlakeEval per
    target, in order. With settings.verify, up to VERIFY_SAMPLE hits are evaluated again: an
    entry that differs is removed and its flake fails (`other`), the fresh evaluation is used.
    known: repo directory (resolved) -> (HEAD commit, dirty), as the caller read them; trees:
    commit -> its tree, where the caller read it. on_hit: hears of each entry found and used
    (not one evaluated again to verify it), before `evaluator` runs. later: the fresh
    evaluations are remembered when it runs, not before this returns (their checkouts are read
    again then: still after the evaluation), and their closures are in later.closures then."""
    if settings is None or settings.directory is None or not targets:
        return evaluator(targets)
    cache = EvalCache(settings.directory, settings.max_bytes)
    keys = Keys(nix, git, selection, dict(known or {}), dict(trees or {}), cache=cache)
    if keys.impure():
        log.info("evaluation cache: not used: Nix evaluates impurely (pure-eval false, "
                 "allow-unsafe-native-code-during-evaluation or plugin-files): a flake may "
                 "read the environment, the clock or its checkout's .git, which no key holds")
        return evaluator(targets)
    foreign = cache.foreign()
    if foreign is not None:
        log.warning("evaluation cache %s not used: %s", settings.directory, foreign)
        return evaluator(targets)
    key_of = [keys.of(target) for target in targets]
    tree_keys: dict[int, str | None] = {}

    def tree_key(index: int) -> str | None:  # a git call per repo: only where needed
        if index not in tree_keys:
            tree_keys[index] = keys.by_tree(targets[index]) if key_of[index] else None
        return tree_keys[index]

    def tree_key_to_read(index: int) -> str | None:  # no git call (Keys.by_tree)
        return (tree_keys.get(index) if index in tree_keys
                else keys.by_tree(targets[index], to_read=True) if key_of[index] else None)

    found: dict[int, FlakeEval] = {}
    hit_key: dict[int, str] = {}
    for index, target in enumerate(targets):
        if not settings.read or key_of[index] is None:
            continue
        for key in (key_of[index], tree_key_to_read(index)):
            hit = cache.load(key, target) if key is not None else None
            if hit is not None:
                found[index], hit_key[index] = hit, str(key)
                break
    sample = (random.SystemRandom().sample(sorted(found), min(VERIFY_SAMPLE, len(found)))
              if settings.verify and found else [])
    if found:
        log.info("evaluation cache %s: %d of %d flakes%s", settings.directory, len(found),
                 len(targets), f"; evaluating {len(sample)} again to verify" if sample else "")
    todo = [i for i in range(len(targets)) if i not in found or i in sample]
    if on_hit is not None:  # a sampled entry's flake is evaluated: that result is told
        for index in sorted(set(found) - set(sample)):
            on_hit(found[index])
    fresh = dict(zip(todo, evaluator([targets[i] for i in todo]), strict=True)) if todo else {}
    for index in sample:
        cached, evaluated = found.pop(index), fresh[index]
        difference = _difference(cached, evaluated)
        if difference is None:
            log.info("evaluation cache: %s verified", evaluated.target.flake.id)
            continue
        if not storable(evaluated):
            # a timeout or out-of-memory kill says nothing about the entry: the evaluation
            # (with that failure) is used, and the entry is not called forged
            log.warning("evaluation cache: %s not verified: its evaluation failed in a way "
                        "that may not recur", evaluated.target.flake.id)
            continue
        cache.remove(hit_key[index])
        flake = evaluated.target.flake.id
        log.error("evaluation cache: the entry for %s differs from its evaluation: %s", flake,
                  difference)
        fresh[index] = replace(evaluated, cases=(*evaluated.cases, Case(
            flake, FLAKE_CASE, Status.FAILED, failure=Failure(
                FailureType.OTHER,
                f"--verify-eval-cache: the evaluation cache's entry differs from a fresh "
                f"evaluation ({difference}); the entry is removed and the fresh result used",
                hint="the cache directory holds an entry ci-nix did not write for this "
                "source: find who writes to it (README: Evaluation cache)"))))
    keyed = [i for i in fresh if key_of[i] is not None and i not in sample]

    def checked() -> dict[int, str]:
        """The keys to remember the fresh evaluations under, after git's second look."""
        # an evaluation that read nothing of its commit is remembered by its tree
        store_key = {i: (tree_key(i) if fresh[i].commit_read == () else None) or key_of[i]
                     for i in keyed}
        # The checkouts as they are now, read afresh: one that changed while Nix read it (a
        # branch switched, a file saved, another run's `git checkout`) may have given Nix the
        # new state, which must not be remembered under the old state's key.
        # Nix said which commit it read each flake at (eval.nix): only the repos it did not
        # vouch for are read again (P8: 1 git call instead of one per repo).
        again: set[str] = set()
        for index in list(store_key):
            needed = keys.unconfirmed(targets[index], fresh[index].source_revs)
            if needed is None:
                log.warning("evaluation cache: %s was read at another commit than the one it "
                            "was keyed by (it changed while it was evaluated); not remembered",
                            targets[index].flake.id)
                del store_key[index]
                continue
            again |= needed
        after = keys.reread(again) if store_key else None
        for index in list(store_key):
            if after is not None and after.of(targets[index]) != key_of[index]:
                log.warning("evaluation cache: %s changed while it was evaluated; not "
                            "remembered", targets[index].flake.id)
                del store_key[index]
        return {i: key for i, key in store_key.items() if key is not None}

    def remember() -> None:
        # git's look (a new tree's export-subst, the checkouts again) runs while the .drv
        # files are read here; a failure there is met again below, where it always came
        if not keyed:
            cache.evict(every=EVICT_EVERY)
            return
        keyed_by: list[dict[int, str]] = []
        done = proc.ahead(lambda: keyed_by.append(checked()))
        closures = closures_of(nix, [job for i in keyed for job in fresh[i].jobs])
        if later is not None:
            later.closures.update((drv, tuple(names)) for drv, names in closures.items())
        else:  # known now: a diff of this evaluation need not read the .drv files again
            for index in keyed:
                fresh[index] = replace(fresh[index], closures=tuple(
                    (job.drv_path, tuple(closures[job.drv_path])) for job in fresh[index].jobs
                    if job.drv_path in closures))
        done()
        for index, key in (keyed_by[0] if keyed_by else checked()).items():
            read = fresh[index].commit_read
            if read:
                log.debug("evaluation cache: %s reads its commit (%s): remembered by commit",
                          fresh[index].target.flake.id, ", ".join(read))
            cache.store(key, fresh[index], closures)
        cache.evict(every=EVICT_EVERY)

    if later is None:
        remember()
    else:
        later.add(remember)
    return [found.get(i) or fresh[i] for i in range(len(targets))]


def _difference(cached: FlakeEval, evaluated: FlakeEval) -> str | None:
    """How a cache entry differs from a fresh evaluation of the same flake, or None."""
    # the outputs too: they decide `cached`, so an entry with the true drvPath and another
    # derivation's (cached) outputs would pass the binary cache step green
    def shown(job: Job) -> str:
        return " ".join([job.drv_path, *(f"{name}={path}" for name, path in job.outputs),
                         f"({job.system})"])

    before = {job.name: shown(job) for job in cached.jobs}
    after = {job.name: shown(job) for job in evaluated.jobs}
    before.update({c.name: "a failure" for c in cached.cases if c.status is Status.FAILED})
    after.update({c.name: "a failure" for c in evaluated.cases if c.status is Status.FAILED})
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            return (f"{name}: cached {before.get(name, 'nothing')}, evaluated "
                    f"{after.get(name, 'nothing')}")
    return None
