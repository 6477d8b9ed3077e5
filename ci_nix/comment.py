"""ci-nix's one pull-request comment (GitHub) / merge-request note (GitLab) saying what a change
does: created on the first run, edited in place on later pushes (found again by a marker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_nix.changes import Comparison
from ci_nix.ci import CiEnv
from ci_nix.config import ForgeConfig
from ci_nix.errors import ForgeError
from ci_nix.forge import Forge, connect, resolve
from ci_nix.mask import mask
from ci_nix.report import changes as writers
from ci_nix.tools import proc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullRequest:
    """The PR/MR this pipeline runs for; `fork`: opened from another repository."""

    number: int
    fork: bool


def pull_request(environ: Mapping[str, str]) -> PullRequest | str:
    """The PR/MR from the CI environment, or why there is none."""
    if CiEnv.detect(environ).github:
        try:
            payload = json.loads(Path(environ.get("GITHUB_EVENT_PATH", "")).read_text())
        except (OSError, ValueError, RecursionError):
            return "no GitHub event payload to read the pull request from"
        pull = payload.get("pull_request") if isinstance(payload, dict) else None
        if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
            return f"not a pull request event ({environ.get('GITHUB_EVENT_NAME') or 'unknown'})"

        def repo(side: str) -> object:
            part = pull.get(side)
            found = part.get("repo") if isinstance(part, dict) else None
            return found.get("full_name") if isinstance(found, dict) else None

        # A fork's pull_request event runs with a read-only token; pull_request_target does not.
        fork = (repo("head") != repo("base")
                and environ.get("GITHUB_EVENT_NAME") != "pull_request_target")
        return PullRequest(pull["number"], fork)
    if CiEnv.detect(environ).gitlab:
        iid = environ.get("CI_MERGE_REQUEST_IID", "")
        if not iid.isdigit():
            return "not a merge request pipeline (no CI_MERGE_REQUEST_IID)"
        source = environ.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID")
        target = environ.get("CI_MERGE_REQUEST_PROJECT_ID")
        return PullRequest(int(iid), bool(source and target and source != target))
    return "not running in GitHub Actions or GitLab CI"


def post(comparison: Comparison, settings: ForgeConfig, environ: Mapping[str, str],
         sleep: Callable[[float], None] = proc.sleep) -> str:
    """Create or edit ci-nix's comment; returns one line saying what happened (or why not).

    A forge that refuses is reported, not raised: the comparison itself is still right.
    """
    found = pull_request(environ)
    if isinstance(found, str):
        return f"--comment: {found}; no comment posted"
    try:
        target = resolve(settings.type, settings.project, settings.url, settings.token_env,
                         environ, settings.timeout)
    except ForgeError as err:
        return f"--comment: {err}; no comment posted"
    kind = "merge request" if target.kind == "gitlab" else "pull request"
    if not environ.get(target.token_env):
        why = f"{target.token_env} is not set"
        if found.fork:
            why = f"a {kind} from a fork gets no token that may comment ({why})"
        return f"--comment: {why}; no comment posted"
    if found.fork and target.kind == "github":
        return ("--comment: a pull request from a fork gets a read-only token on GitHub "
                "(use pull_request_target to comment); no comment posted")
    body = mask(writers.comment(comparison))
    try:
        forge, _ = connect(target, environ, sleep)
        return upsert(forge, found.number, body, kind)
    except ForgeError as err:
        log.warning("%s", err)
        return f"--comment: {err}; no comment posted"


def upsert(forge: Forge, number: int, body: str, kind: str = "pull request") -> str:
    """Edit ci-nix's comment, or create it: one that carries ci-nix's marker AND was written
    by the token's user (anyone can paste the marker into a comment of theirs)."""
    marked = [c for c in forge.comments(number) if c.body.startswith(writers.MARKER)]
    me = forge.me().lower() if marked else ""
    mine = [c for c in marked if c.author.lower() == me]
    if not mine:
        created = forge.add_comment(number, body)
        return f"commented on {kind} {number} (comment {created.id})"
    if mine[0].body == body:
        return f"comment {mine[0].id} on {kind} {number} is up to date"
    forge.edit_comment(number, mine[0], body)
    return f"updated comment {mine[0].id} on {kind} {number}"
