"""The `git` wrapper (CI_NIX_GIT, default `git`)."""

from __future__ import annotations

import os
import shlex
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


@dataclass(frozen=True)
class Git:
    argv0: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Git:
        return cls(tuple(shlex.split(environ.get("CI_NIX_GIT", "git")) or ["git"]))

    def run(self, repo: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            input: str | None = None) -> proc.Result:
        return proc.run([*self.argv0, "-C", str(repo), *args], env=env, input=input,
                        tool_hint=_TOOL_HINT)

    def check(self, repo: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              input: str | None = None) -> str:
        result = self.run(repo, args, env=env, input=input)
        if not result.ok:
            detail = result.stderr.strip().splitlines()
            raise GitError(f"git {' '.join(args[:2])} in {repo} failed: "
                           f"{detail[-1] if detail else f'exit {result.returncode}'}",
                           result.stderr)
        return result.stdout

    def toplevel(self, path: Path) -> Path | None:
        """The root of the git work tree containing path, or None."""
        result = self.run(path, ["rev-parse", "--show-toplevel"])
        return Path(result.stdout.strip()) if result.ok else None

    def tracked(self, repo: Path, *pathspecs: str) -> list[str]:
        """Tracked files matching the pathspecs, relative to the repo root."""
        out = self.check(repo, ["ls-files", "-z", "--", *pathspecs])
        return [name for name in out.split("\0") if name]

    def remote_urls(self, repo: Path) -> list[str]:
        result = self.run(repo, ["config", "--get-regexp", r"^remote\..*\.url$"])
        return [line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line]
