"""The lock update itself: Nix updates the inputs in a private worktree; the new lock files
travel as text, with a changelog of what moved."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ci_nix import changelog, lockfile
from ci_nix.changelog import FlakeChangelog
from ci_nix.errors import ForgeError
from ci_nix.forge import Forge
from ci_nix.source import Repository
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.update.models import UpdateTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockUpdate:
    """The lock files one update produced (path relative to the repo -> text) and what moved."""

    files: tuple[tuple[str, str], ...]
    logs: tuple[FlakeChangelog, ...]

    @property
    def moved(self) -> tuple[str, ...]:
        return tuple(changelog.moved_names(self.logs))


def flake_dirs(git: Git, repo: Path) -> list[str]:
    """Directories (relative, "" for the root) of tracked flakes that have a flake.lock."""
    dirs = []
    for name in git.tracked(repo, "flake.nix", ":(glob)**/flake.nix"):
        subdir = str(PurePosixPath(name).parent)
        subdir = "" if subdir == "." else subdir
        if (repo / subdir / "flake.lock").is_file():
            dirs.append(subdir)
        else:
            log.debug("%s: no flake.lock next to %s; skipped (run `nix flake lock` and commit it)",
                     repo.name, name)
    return sorted(dirs)


def input_names(repo: Path, dirs: list[str]) -> list[str]:
    """Every direct input of the repo's flakes, in first-seen order."""
    names: list[str] = []
    for subdir in dirs:
        lock = lockfile.read(repo / subdir / "flake.lock")
        for name in lock.nodes[lock.root].inputs if lock else ():
            if name not in names:
                names.append(name)
    return names


@contextmanager
def private_checkout(git: Git, repo: Path, nix: Nix) -> Iterator[tuple[Path, str]]:
    """A detached worktree of the repo's HEAD in a temporary directory: (its path, HEAD).

    Nix updates the locks there, so the user's tree is never written and two runs on one
    checkout cannot read each other's half-updated flake.lock. ToolError, before anything is
    done, where `nix` could not update a flake there (Nix before 2.10 and a temporary
    directory whose path has a space or a non-ASCII character: it takes the path for no URL,
    and would read `--verify`'s new locks at the last commit).
    """
    # its new locks are uncommitted: a Nix that reads the last commit there would verify the
    # old ones (a breaking update built green)
    nix.check_temp_dir("the update's private checkout goes", work_tree=True)
    head = git.check(repo, ["rev-parse", "--verify", "HEAD^{commit}"]).strip()
    # ignore_cleanup_errors: a Nix that runs in its own mount namespace (a chroot store) can
    # keep the directory busy for a moment after it exits; a leftover temp dir is harmless.
    with tempfile.TemporaryDirectory(prefix="ci-nix-update-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp) / "checkout"
        git.check(repo, ["worktree", "add", "--quiet", "--detach", str(work), head])
        try:
            yield work, head
        finally:
            if not git.run(repo, ["worktree", "remove", "--force", str(work)]).ok:
                shutil.rmtree(work, ignore_errors=True)
                git.run(repo, ["worktree", "prune"])


def local_commits(git: Git) -> changelog.CommitLister:
    """Commit subjects between two revisions of a repository on this machine (git+file)."""

    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        path = Path(repo.path)
        if not repo.local or not path.is_dir():
            return None
        count = git.run(path, ["rev-list", "--count", f"{old}..{new}"])
        listed = git.run(path, ["log", f"--max-count={changelog.MAX_COMMITS}", "--format=%s",
                                f"{old}..{new}"])
        if not (count.ok and listed.ok):
            return None  # a revision this clone does not have
        return tuple(listed.stdout.splitlines()), int(count.stdout.strip() or 0)

    return subjects


def forge_commits(forge: Forge) -> changelog.CommitLister:
    """Commit subjects from the forge's compare API, for repositories on that forge's host."""
    host: list[str] = []

    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        if repo.local:
            return None
        try:
            if not host:
                host.append(urllib.parse.urlsplit(forge.project().web_url).hostname or "")
            if repo.host != host[0]:
                return None
            return forge.commits(repo.path, old, new, changelog.MAX_COMMITS)
        except ForgeError as err:  # a table cell, not worth failing the update for
            log.info("no commit list for %s: %s", repo, err)
            return None

    return subjects


def _first_of(*listers: changelog.CommitLister | None) -> changelog.CommitLister:
    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        for lister in listers:
            found = lister(repo, old, new) if lister is not None else None
            if found is not None:
                return found
        return None

    return subjects


def update_locks(nix: Nix, git: Git, target: UpdateTarget, work: Path, dirs: list[str],
                 inputs: tuple[str, ...], forge: Forge | None = None) -> LockUpdate:
    """Run the Nix update in each flake of the private worktree, read the new locks, and put
    the old ones back there (the next branch starts from HEAD again).

    The result travels as file contents to a commit.
    """
    files, logs = [], []
    hosts, repo_urls = dict(target.hosts), dict(target.repo_urls)
    for subdir in dirs:
        flake_dir = work / subdir if subdir else work
        lock_path = flake_dir / "flake.lock"
        before_text = lockfile.read_text(lock_path)
        before = lockfile.parse(before_text, str(lock_path))
        names = [name for name in inputs if name in before.nodes[before.root].inputs]
        if inputs and not names:
            continue
        flake_id = target.name if not subdir else f"{target.name}/{subdir}"
        try:
            nix.flake_update(flake_dir, names)
            after_text = lockfile.read_text(lock_path)
        finally:
            lock_path.write_text(before_text, encoding="utf-8")
        after = lockfile.parse(after_text, str(lock_path))
        commits = _first_of(local_commits(git), forge_commits(forge) if forge else None)
        logs.append(changelog.changelog(flake_id, before, after, hosts, repo_urls, commits))
        if after_text != before_text:
            rel = str(PurePosixPath(subdir) / "flake.lock") if subdir else "flake.lock"
            files.append((rel, after_text))
    return LockUpdate(tuple(files), tuple(logs))
