"""The `git` wrapper (CI_NIX_GIT, default `git`)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_nix.errors import ToolError
from ci_nix.tools import proc

_TOOL_HINT = "install git (`apt-get install -y git`) or set CI_NIX_GIT"


class GitError(ToolError):
    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def _named(args: Sequence[str]) -> str:
    """`git worktree add` for ["-c", "core.hooksPath=/dev/null", "worktree", "add", ...]."""
    words = list(args)
    while len(words) >= 2 and words[0] == "-c":
        words = words[2:]
    return " ".join(words[:2])


def _telling_line(stderr: str) -> str:
    """The line of git's stderr that says why: a rejection or fatal error, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "rejected]" in line or line.startswith("fatal:"):
            return line
    return lines[-1] if lines else ""


OBJECT_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # sha1 or sha256 object names


@dataclass(frozen=True)
class WorkTree:
    """A checkout as one git call tells it (Git.work_tree)."""

    root: Path
    shallow: bool
    head: tuple[str, str] | None  # HEAD's commit and its tree; None: nothing committed


@dataclass(frozen=True)
class Git:
    argv0: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Git:
        return cls(proc.command_from_env(environ, "CI_NIX_GIT", "git"))

    def run(self, repo: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            input: str | None = None) -> proc.Result:
        return proc.run([*self.argv0, "-C", str(repo), *args], env=env, input=input,
                        tool_hint=_TOOL_HINT)

    def check(self, repo: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              input: str | None = None) -> str:
        result = self.run(repo, args, env=env, input=input)
        if not result.ok:
            why = _telling_line(result.stderr) or f"exit {result.returncode}"
            if "Read-only file system" in result.stderr:
                why = (f"{repo} is on a read-only file system and git must write there; run "
                       f"on a writable checkout ({why})")
            raise GitError(f"git {_named(args)} in {repo} failed: {why}", result.stderr)
        return result.stdout

    def toplevel(self, path: Path) -> Path | None:
        """The root of the git work tree containing path, or None."""
        result = self.run(path, ["rev-parse", "--show-toplevel"])
        return Path(result.stdout.strip()) if result.ok else None

    def work_tree(self, path: Path) -> WorkTree | None:
        """The git work tree containing path: its root, whether the clone is shallow and HEAD's
        commit and tree, in one git call (for each repo of a workspace); None outside a work
        tree."""
        result = self.run(path, ["rev-parse", "--show-toplevel", "--is-shallow-repository",
                                 "HEAD^{commit}", "HEAD^{tree}"])
        # Nothing committed: git prints the root and the shallowness, then fails on HEAD.
        # Lines as git ends them, nothing stripped: a root may end in a space (or hold a \r).
        lines = result.stdout.split("\n")[:-1]
        shallow = next((at for at, line in enumerate(lines) if line in ("true", "false")), None)
        if shallow is not None and shallow > 1:
            # git prints the root as it is, so a newline in it splits it into lines
            shown = "\\n".join(lines[:shallow])
            raise GitError(f"{shown}: the checkout's path holds a newline, which git's "
                           "answers (a path a line) cannot carry; move the checkout to a path "
                           "without one")
        if len(lines) < 2 or lines[1] not in ("true", "false"):
            return None
        head = ((lines[2], lines[3]) if result.ok and len(lines) == 4
                and all(OBJECT_NAME.fullmatch(name) for name in lines[2:]) else None)
        return WorkTree(Path(lines[0]), lines[1] == "true", head)

    def tracked(self, repo: Path, *pathspecs: str) -> list[str]:
        """Tracked files matching the pathspecs, relative to the repo root."""
        out = self.check(repo, ["ls-files", "-z", "--", *pathspecs])
        return [name for name in out.split("\0") if name]

    def remote_urls(self, repo: Path) -> list[str]:
        result = self.run(repo, ["config", "--get-regexp", r"^remote\..*\.url$"])
        return [line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line]

    # --- change detection ------------------------------------------------------------------

    def commit(self, repo: Path, rev: str) -> str | None:
        """The full sha of the commit rev names, or None when this clone does not have it."""
        result = self.run(repo, ["rev-parse", "--verify", "--quiet", "--end-of-options",
                                 f"{rev}^{{commit}}"])
        return result.stdout.strip() if result.ok and result.stdout.strip() else None

    def commit_and_tree(self, repo: Path, rev: str) -> tuple[str, str] | None:
        """The full sha of the commit rev names and of its tree (one git call), or None."""
        if rev.startswith("-"):  # without --verify, rev-parse takes no --end-of-options
            return None
        result = self.run(repo, ["rev-parse", f"{rev}^{{commit}}", f"{rev}^{{tree}}"])
        found = result.stdout.split() if result.ok else []
        return (found[0], found[1]) if len(found) == 2 else None

    def head_state(self, repo: Path) -> tuple[str, str, bool] | None:
        """HEAD's commit, its tree, and whether tracked files differ from it (uncommitted), as
        Nix reads a checkout; None when nothing is committed."""
        found = self.commit_and_tree(repo, "HEAD")
        return None if found is None else (*found, self.uncommitted(repo))

    def head_status(self, repo: Path) -> tuple[str, bool] | None:
        """HEAD's commit and whether tracked files differ from it (as `uncommitted` tells), in
        one git call; None when nothing is committed or git cannot say."""
        result = self.run(repo, ["--no-optional-locks", "status", "--porcelain=v2", "--branch",
                                 "--no-ahead-behind", "--untracked-files=no"])
        if not result.ok:
            return None
        head, dirty = None, False
        for line in result.stdout.splitlines():
            if line.startswith("# branch.oid "):
                head = line.removeprefix("# branch.oid ").strip()
            elif line and not line.startswith("#"):  # a changed entry ("1 ", "2 ", "u ")
                dirty = True
        if head is None or not OBJECT_NAME.fullmatch(head):
            return None  # "(initial)": nothing committed
        return head, dirty

    def uncommitted(self, repo: Path) -> bool:
        """Whether a tracked file differs from HEAD in the work tree or in the index, as Nix
        (>= 2.20) tells a dirty checkout (no rev): a change staged and then undone in the work
        tree counts, which `git diff HEAD` missed. status refreshes stat data first: a file
        touched with its content unchanged does not count. A failure counts."""
        result = self.run(repo, ["--no-optional-locks", "status", "--porcelain",
                                 "--untracked-files=no"])
        return not result.ok or bool(result.stdout.strip())

    def merge_base(self, repo: Path, a: str, b: str) -> str | None:
        """The best common ancestor of two commits, or None (unrelated, or history cut short)."""
        result = self.run(repo, ["merge-base", "--end-of-options", a, b])
        return result.stdout.strip() if result.ok and result.stdout.strip() else None

    def is_ancestor(self, repo: Path, a: str, b: str) -> bool:
        """Whether commit a is b or one of b's ancestors (b's history holds all of a)."""
        return self.run(repo, ["merge-base", "--is-ancestor", "--end-of-options", a, b]).ok

    def is_shallow(self, repo: Path) -> bool:
        result = self.run(repo, ["rev-parse", "--is-shallow-repository"])
        return result.ok and result.stdout.strip() == "true"

    def remotes(self, repo: Path) -> list[str]:
        """Remote names, in git's order."""
        result = self.run(repo, ["remote"])
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def fetch(self, repo: Path, args: Sequence[str]) -> proc.Result:
        """`git fetch --no-tags ARGS`; the caller decides what a failure means."""
        return self.run(repo, ["fetch", "--no-tags", "--quiet", *args])

    def changed_files(self, repo: Path, base: str, head: str | None) -> list[str]:
        """Files that differ between base and head (None: the work tree, tracked files only).

        Renames count as a deletion plus an addition, so both names are reported.
        """
        args = ["diff", "--name-only", "--no-renames", "--no-ext-diff", "-z", base]
        if head is not None:
            args.append(head)
        out = self.check(repo, [*args, "--"])
        return [name for name in out.split("\0") if name]

    # --- input-update branches (ci-nix update) -----------------------------------------------

    def tree_and_parents(self, repo: Path, rev: str) -> tuple[str, tuple[str, ...]] | None:
        """(tree sha, parent shas) of a commit, or None when this clone does not have it."""
        result = self.run(repo, ["show", "-s", "--format=%T %P", "--end-of-options", rev])
        if not result.ok or not result.stdout.strip():
            return None
        tree, *parents = result.stdout.split()
        return tree, tuple(parents)

    def commit_files(self, repo: Path, parent: str, files: Mapping[str, str], message: str,
                     env: Mapping[str, str]) -> str:
        """A new commit on parent with files (path -> text) replaced; work tree and index
        untouched."""
        with tempfile.TemporaryDirectory(prefix="ci-nix-index-") as tmp:
            # A private index, so the user's staging area and checkout stay as they are.
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.check(repo, ["read-tree", parent], env=index)
            for path, text in files.items():
                blob = self.check(repo, ["hash-object", "-w", "--stdin"], input=text).strip()
                self.check(repo, ["update-index", "--add", "--cacheinfo",
                                  f"100644,{blob},{path}"], env=index)
            tree = self.check(repo, ["write-tree"], env=index).strip()
        return self.check(repo, ["commit-tree", tree, "-p", parent, "-F", "-"],
                          env=env, input=message).strip()

    def remote_branch(self, repo: Path, remote: str, branch: str,
                      env: Mapping[str, str] | None = None) -> str | None:
        """The sha a branch has on the remote, or None when it has no such branch."""
        out = self.check(repo, ["ls-remote", "--heads", remote, f"refs/heads/{branch}"], env=env)
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def remote_head(self, repo: Path, remote: str,
                    env: Mapping[str, str] | None = None) -> str | None:
        """The branch the remote's HEAD points at (its default branch), or None."""
        out = self.check(repo, ["ls-remote", "--symref", remote, "HEAD"], env=env)
        for line in out.splitlines():
            target, _, ref = line.partition("\t")
            if ref == "HEAD" and target.startswith("ref: refs/heads/"):
                return target.removeprefix("ref: refs/heads/")
        return None

    def fetch_refs(self, repo: Path, remote: str, refspecs: Sequence[str],
                   env: Mapping[str, str] | None = None) -> None:
        self.check(repo, ["fetch", "--quiet", "--no-tags", remote, *refspecs], env=env)

    def push_refs(self, repo: Path, remote: str, refspecs: Sequence[str],
                  env: Mapping[str, str] | None = None,
                  lease: tuple[str, str | None] | None = None) -> None:
        """Push refspecs (`+sha:refs/heads/x` forces, `:refs/heads/x` deletes).

        `lease` (ref, sha we saw or None for "absent") overwrites the ref only if it still
        has that value, so a push that raced ours is not lost silently.
        """
        extra = [f"--force-with-lease={lease[0]}:{lease[1] or ''}"] if lease else []
        self.check(repo, ["push", "--quiet", *extra, remote, *refspecs], env=env)
