"""The `skopeo` wrapper: registry credentials go in a private auth file, never argv or logs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_nix.tools import proc

_TOOL_HINT = "install skopeo (Debian: apt-get install skopeo) or set CI_NIX_SKOPEO to its path"
PUSH_TIMEOUT = 900.0  # seconds one push may take: a large image on a slow link
INSPECT_TIMEOUT = 120.0  # seconds asking for one manifest may take (a registry that hangs)


def auth_json(host: str, credentials: str | None) -> str:
    """containers-auth.json for one registry host: `USER:PASSWORD`, or a bare token (sent as
    the password of user `ci-nix`, which GHCR, GitLab and most token registries accept)."""
    if not credentials:
        return json.dumps({"auths": {}})
    pair = credentials if ":" in credentials else f"ci-nix:{credentials}"
    return json.dumps({"auths": {host: {"auth": base64.b64encode(pair.encode()).decode()}}})


@contextmanager
def auth_file(host: str, credentials: str | None) -> Iterator[Path]:
    """The auth file in a fresh 0700 directory (the file 0600), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ci-nix-skopeo-") as home:
        path = Path(home) / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(auth_json(host, credentials))
        yield path


@dataclass(frozen=True)
class Manifest:
    """What ci-nix reads from an image manifest: its digest, and the image's config digest (the
    image id: it names the layers' uncompressed contents, so it survives a push recompressing
    them, where the manifest digest does not)."""

    digest: str
    config: str | None

    @classmethod
    def parse(cls, raw: str) -> Manifest:
        """`skopeo inspect --raw` output; a manifest list or a broken document has no config."""
        digest = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
        try:
            data: Any = json.loads(raw)
        except (ValueError, RecursionError):  # a registry's '[[[[…': no manifest either
            return cls(digest, None)
        config = data.get("config") if isinstance(data, dict) else None
        found = config.get("digest") if isinstance(config, dict) else None
        return cls(digest, found if isinstance(found, str) else None)


@dataclass(frozen=True)
class Skopeo:
    """A skopeo binary (CI_NIX_SKOPEO, default `skopeo`)."""

    argv0: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Skopeo:
        return cls(proc.command_from_env(environ, "CI_NIX_SKOPEO", "skopeo"))

    def _env(self, home: Path) -> dict[str, str]:
        # skopeo reads no user's registry config or credentials but the auth file given
        return {"HOME": str(home), "XDG_RUNTIME_DIR": str(home),
                "REGISTRY_AUTH_FILE": str(home / "auth.json"),
                "XDG_CONFIG_HOME": str(home / "config")}

    def inspect_raw(self, image: str, authfile: Path | None = None, *, tls_verify: bool = True,
                    timeout: float | None = None) -> proc.Result:
        """`skopeo inspect --raw IMAGE`: the manifest as stored."""
        argv = [*self.argv0, "inspect", "--raw", "--retry-times", "2"]
        if authfile is not None:
            argv += ["--authfile", str(authfile)]
        if not tls_verify:
            argv.append("--tls-verify=false")
        home = authfile.parent if authfile is not None else Path(tempfile.gettempdir())
        return proc.run([*argv, image], env=self._env(home),
                        timeout=INSPECT_TIMEOUT if timeout is None else timeout,
                        tool_hint=_TOOL_HINT)

    def copy(self, source: str, dest: str, authfile: Path, digestfile: Path, *,
             tls_verify: bool = True, timeout: float = PUSH_TIMEOUT) -> proc.Result:
        """`skopeo copy SOURCE DEST`, the pushed manifest's digest written to digestfile."""
        argv = [*self.argv0, "copy", "--retry-times", "2", "--authfile", str(authfile),
                "--digestfile", str(digestfile)]
        if not tls_verify:
            argv.append("--dest-tls-verify=false")
        return proc.run([*argv, source, dest], env=self._env(authfile.parent), timeout=timeout,
                        tool_hint=_TOOL_HINT)
