"""Credentials for git: the forge token as a host-scoped header, and the commit author."""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Mapping

from ci_nix.errors import ConfigError
from ci_nix.mask import add_secret


def credential_env(remote_url: str, kind: str, token: str | None,
                   environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment for git so it authenticates to an HTTPS remote with the token.

    The header goes through GIT_CONFIG_COUNT/KEY/VALUE: never in argv (visible in `ps`), the
    remote URL, or .git/config, and it is scoped to the remote's host.
    """
    env = {"GIT_TERMINAL_PROMPT": "0"}
    parts = urllib.parse.urlsplit(remote_url)
    if not token or parts.scheme not in ("https", "http") or not parts.hostname:
        return env
    user = "oauth2" if kind == "gitlab" else "x-access-token"
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    add_secret(token)
    add_secret(basic)
    host = parts.netloc.rsplit("@", 1)[-1]
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)  # keep settings already passed
    env.update({
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": f"http.{parts.scheme}://{host}/.extraHeader",
        f"GIT_CONFIG_VALUE_{count}": f"Authorization: Basic {basic}",
    })
    return env


def author_env(author: str) -> dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* from `Name <email>`."""
    name, _, rest = author.partition("<")
    email = rest.rstrip().rstrip(">").strip()
    if not name.strip() or not email:
        raise ConfigError(f"update.author is {author!r}; write it as 'Name <email>'")
    return {"GIT_AUTHOR_NAME": name.strip(), "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name.strip(), "GIT_COMMITTER_EMAIL": email}
