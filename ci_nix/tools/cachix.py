"""The `cachix` client wrapper: the token travels in CACHIX_AUTH_TOKEN, never argv."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci_nix.tools import proc

_TOOL_HINT = "install cachix or set CI_NIX_CACHIX to its path"


@dataclass(frozen=True)
class Cachix:
    """A cachix binary (CI_NIX_CACHIX, default `cachix`)."""

    argv0: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Cachix:
        return cls(proc.command_from_env(environ, "CI_NIX_CACHIX", "cachix"))

    def push(self, name: str, token: str | None, paths: Sequence[str], *,
             timeout: float | None = None) -> proc.Result:
        """`cachix push NAME PATHS` (always the closure: cachix has no outputs-only mode)."""
        argv = [*self.argv0, "push", name]
        stdin = proc.paths_stdin(paths)  # `cachix push NAME` reads stdin when no path is given
        if stdin is None:
            argv += paths
        env = {"CACHIX_AUTH_TOKEN": token} if token else None
        return proc.run(argv, env=env, input=stdin, timeout=timeout, tool_hint=_TOOL_HINT)
