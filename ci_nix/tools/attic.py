"""The `attic` client wrapper: a private config file carries the token, never argv."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_nix.tools import proc

_TOOL_HINT = "install the attic client or set CI_NIX_ATTIC to its path"
SERVER_NAME = "ci-nix"  # the name ci-nix gives the server in its private attic config


def _toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is also a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def config_toml(endpoint: str, token: str | None) -> str:
    """attic's client config (`$XDG_CONFIG_HOME/attic/config.toml`) for one server."""
    lines = [f"default-server = {_toml_string(SERVER_NAME)}", "",
             f"[servers.{SERVER_NAME}]", f"endpoint = {_toml_string(endpoint)}"]
    if token:
        lines.append(f"token = {_toml_string(token)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Attic:
    """An attic binary (CI_NIX_ATTIC, default `attic`)."""

    argv0: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Attic:
        return cls(proc.command_from_env(environ, "CI_NIX_ATTIC", "attic"))

    def push(self, endpoint: str, cache: str, token: str | None, paths: Sequence[str], *,
             closure: bool, timeout: float | None = None) -> proc.Result:
        """`attic push ci-nix:CACHE PATHS` against a throwaway config that holds the token."""
        with tempfile.TemporaryDirectory(prefix="ci-nix-attic-") as home:  # mode 0700
            config_dir = Path(home) / "attic"
            config_dir.mkdir(mode=0o700)
            fd = os.open(config_dir / "config.toml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(config_toml(endpoint, token))
            argv = [*self.argv0, "push", f"{SERVER_NAME}:{cache}"]
            if not closure:
                argv.append("--no-closure")
            stdin = proc.paths_stdin(paths)
            argv += ["--stdin"] if stdin is not None else paths
            return proc.run(argv, env={"XDG_CONFIG_HOME": home}, input=stdin, timeout=timeout,
                            tool_hint=_TOOL_HINT)
