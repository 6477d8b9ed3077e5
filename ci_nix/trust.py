"""Which settings a pull request may not choose, and the trusted side they are read from.

ci-nix runs with secrets beside pull requests, and a pull request controls its own ci-nix.yaml.
Settings that decide where a secret goes or what runs with privileges — the fields declared
`trusted=True` in ci_nix/config.py (forge, cache hosts/name/token-env/signing key,
update.branch) and the privileged `nix-options` (all but PR_SETTABLE_NIX_OPTIONS) — are read
from the trusted side:

- **A pull request** (a base revision exists: `--base REV`, a GitHub event with
  `pull_request.base.sha` or `merge_group.base_sha`, a GitLab merge request pipeline's
  `CI_MERGE_REQUEST_DIFF_BASE_SHA`): the base revision's ci-nix.yaml (`git show BASE:PATH`).
  The head may not change them: ci-nix stops with one line naming the key (exit 2).
- **A default-branch workflow about a pull request** (`workflow_run` of a run a pull request
  triggered, `issue_comment` on a pull request: jobs that often check out its head): the
  ci-nix.yaml of `GITHUB_SHA`, the commit whose workflow runs, compared the same way.
- **No pull request** (a push, a schedule, a local run without --base): whoever could change the
  working tree's ci-nix.yaml could change the CI definition too, so it is trusted.

Command-line flags and CI variables come from the CI definition and are always trusted. A
ci-nix.yaml outside the checked-out repo (a workspace file the pull request cannot touch,
`--config` pointing elsewhere) is trusted as well.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ci_nix import config as config_mod
from ci_nix.ci import CiEnv
from ci_nix.config import Config
from ci_nix.errors import ConfigError
from ci_nix.models import Repo
from ci_nix.schema import compose, settings_of
from ci_nix.tools.git import Git

log = logging.getLogger(__name__)

# Nix settings a pull request may set in nix-options: how much and how long, never where from,
# where to, or what else runs. The first four are what nix-daemon lets an untrusted user set;
# the rest only size, pace or word the work. Every other setting — post-build-hook,
# allow-import-from-derivation (it runs builders while evaluating: a base that turns it off
# for an evaluate-only job, `diff --comment` under pull_request_target, keeps it off),
# substituters, trusted-public-keys, require-sigs, builders, sandbox, extra-sandbox-paths,
# allow-unsafe-native-code-during-evaluation, pure-eval, netrc-file, access-tokens,
# plugin-files, secret-key-files, store, accept-flake-config, experimental-features, unknown
# names and spellings — is privileged. `extra-NAME` counts as NAME.
PR_SETTABLE_NIX_OPTIONS = frozenset({
    "build-timeout", "max-silent-time", "poll-interval", "connect-timeout",
    "timeout", "build-max-silent-time", "max-jobs", "build-max-jobs", "cores", "build-cores",
    "keep-going", "keep-failed", "fallback", "log-lines", "show-trace",
    "max-build-log-size", "build-max-log-size", "download-attempts", "http-connections",
    "stalled-download-timeout", "min-free", "max-free", "tarball-ttl",
    "narinfo-cache-negative-ttl", "narinfo-cache-positive-ttl", "warn-dirty", "eval-cache",
    "keep-outputs", "keep-derivations", "print-missing",
})


def privileged(name: str) -> bool:
    """Whether a Nix setting may only come from the trusted side."""
    return name.removeprefix("extra-") not in PR_SETTABLE_NIX_OPTIONS


@dataclass(frozen=True)
class Side:
    """Where trusted settings come from: `base` None means the working tree's config."""

    base: str | None
    why: str  # "--base", "GitHub pull_request_target event", ...
    pull_request: bool = False  # a pull request, even when its base could not be read

    @property
    def trusts_worktree(self) -> bool:
        return self.base is None and not self.pull_request


def side(base: str | None, environ: Mapping[str, str]) -> Side:
    """The trusted side for `--base` (None: not given) in this CI environment."""
    if base is not None:
        return Side(base, f"--base {base}", pull_request=True)
    if CiEnv.detect(environ).github:
        event = environ.get("GITHUB_EVENT_NAME") or "unknown"
        found = github_pull_base(github_event(environ) or {})
        if found is not None:
            return Side(found[0], f"GitHub {event} event: {found[1]}", pull_request=True)
        if event.startswith("pull_request") or event == "merge_group":
            return Side(None, f"GitHub {event} event without a readable base sha",
                        pull_request=True)
        about = github_pull_request_trigger(event, github_event(environ) or {})
        if about is not None:
            # The default branch's workflow runs, often on a checkout of the pull request's
            # head: the trusted side is the commit whose workflow runs.
            sha = environ.get("GITHUB_SHA") or None
            return Side(sha, f"GitHub {event} event {about}: "
                        + ("GITHUB_SHA, the commit whose workflow runs" if sha
                           else "without GITHUB_SHA"), pull_request=True)
        return Side(None, f"GitHub {event} event: not a pull request")
    if CiEnv.detect(environ).gitlab and environ.get("CI_MERGE_REQUEST_IID"):
        for name in ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_MERGE_REQUEST_TARGET_BRANCH_SHA"):
            if environ.get(name):
                return Side(environ[name], f"GitLab merge request pipeline: {name}",
                            pull_request=True)
        return Side(None, "GitLab merge request pipeline without CI_MERGE_REQUEST_DIFF_BASE_SHA",
                    pull_request=True)
    if CiEnv.detect(environ).gitlab:
        return Side(None, "GitLab pipeline: not a merge request")
    return Side(None, "no pull request: a local run without --base")


def github_event(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The GitHub event payload as a mapping, or None (absent or unreadable: logged)."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as err:  # [[[[… too
        log.warning("cannot read the GitHub event payload %s (%s); no base revision", path, err)
        return None
    return payload if isinstance(payload, dict) else None


def github_default_branch(environ: Mapping[str, str]) -> str | None:
    """repository.default_branch of the GitHub event payload (push, pull_request, schedule…)."""
    repo = (github_event(environ) or {}).get("repository")
    found = repo.get("default_branch") if isinstance(repo, dict) else None
    return found if isinstance(found, str) and found else None


def github_pull_base(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(base sha, its key) of the pull request or merge queue entry an event payload is about."""
    pull = payload.get("pull_request")
    if isinstance(pull, dict) and isinstance(pull.get("base"), dict):
        sha = pull["base"].get("sha")
        if isinstance(sha, str) and sha:
            return sha, "pull_request.base.sha"
    group = payload.get("merge_group")
    if isinstance(group, dict) and isinstance(group.get("base_sha"), str) and group["base_sha"]:
        return group["base_sha"], "merge_group.base_sha"
    return None


def github_pull_request_trigger(event: str, payload: Mapping[str, Any]) -> str | None:
    """How an event that runs the default branch's workflow is about a pull request (its job
    may check out the pull request's head), or None: a `workflow_run` of a workflow a pull
    request triggered, an `issue_comment` on a pull request."""
    if event == "workflow_run":
        run = payload.get("workflow_run")
        if isinstance(run, dict):
            trigger = run.get("event")
            if isinstance(trigger, str) and (trigger.startswith("pull_request")
                                             or trigger == "merge_group"):
                return f"of a run triggered by {trigger}"
            if run.get("pull_requests"):
                return "of a run for a pull request"
    if event == "issue_comment":
        issue = payload.get("issue")
        if isinstance(issue, dict) and issue.get("pull_request"):
            return "on a pull request"
    return None


# --- the trusted settings of a config ---------------------------------------------------------

def trusted_values(config: Config) -> dict[str, object]:
    """Dotted key -> value of every setting a pull request may not choose."""
    values: dict[str, object] = {}
    _collect(config, "", values)
    for name, value in config.nix_options:
        if privileged(name):
            values[f"nix-options.{name}"] = value
    return values


def _collect(record: object, prefix: str, values: dict[str, object]) -> None:
    for key, (name, trusted) in settings_of(type(record)).items():
        value = getattr(record, name)
        if trusted:
            values[prefix + key] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            _collect(value, f"{prefix}{key}.", values)


DEFAULTS = trusted_values(Config())


def settle(config: Config, git: Git, primary: Repo | None, trusted: Side,
           start: Path | None = None) -> Config:
    """The config with its trusted settings from the trusted side; ConfigError (one line, exit
    2) when a pull request's head changes one of them. `start`: the directory ci-nix looked for
    ci-nix.yaml from (None: --config named it); the base revision's file is the one the same
    lookup finds there, so a pull request cannot drop the trusted file's settings by deleting it
    or by adding a nearer one."""
    if trusted.trusts_worktree or (config.file is None and (start is None or primary is None)):
        _explain(config, f"the working tree's {config.file or 'defaults'} ({trusted.why})")
        return config
    if config.file is not None:
        top = git.toplevel(config.file.parent)
        if top is None or (primary is not None and top.resolve() != primary.path.resolve()):
            _explain(config, f"{config.file}, outside the repo under test ({trusted.why})")
            return config
        rel: str | None = (config.file.parent.resolve() / config.file.name).relative_to(
            top.resolve()).as_posix()
    else:
        assert primary is not None
        top, rel = primary.path, None
    head = trusted_values(config)
    # A symbolic link lets the pull request choose which file is read: nothing to compare.
    linked = config.file is not None and config.file.is_symlink()
    # With no file at head nothing was set: read the base if this clone has it, never fetch
    # for it (a repo without ci-nix.yaml costs nothing)
    sha = (_base_sha(git, top, trusted, fetch=config.file is not None)
           if trusted.base is not None and not linked else None)
    if sha is None:
        changed = [key for key, value in head.items() if value != DEFAULTS.get(key)]
        if changed:
            assert config.file is not None and rel is not None  # defaults differ from nothing
            where = (f"{rel} is a symbolic link" if linked else
                     f"the base revision {trusted.base[:12]} is not in this clone (fetch it: "
                     "fetch-depth: 0)" if trusted.base is not None else trusted.why)
            raise ConfigError(
                f"{config.file}:{_line(config.file, changed[0])}: '{changed[0]}' is set, but "
                f"the trusted side cannot be read ({where}); settings that decide where "
                "secrets go come from the base revision's ci-nix.yaml (pass --base REV)")
        return config
    assert trusted.base is not None
    base_rel = _nearest_at(git, top, sha, start) if start is not None else rel
    base = _config_at(git, top, sha, base_rel) if base_rel is not None else Config()
    values = trusted_values(base)
    changed = [key for key in dict.fromkeys([*head, *values])
               if head.get(key, DEFAULTS.get(key)) != values.get(key, DEFAULTS.get(key))]
    shown = base_rel or rel or config_mod.CONFIG_NAME
    if changed:
        more = f" (and {', '.join(changed[1:])})" if changed[1:] else ""
        here = (f"{config.file}:{_line(config.file, changed[0])}" if config.file is not None
                else f"{start} has no {config_mod.CONFIG_NAME}")
        raise ConfigError(
            f"{here}: '{changed[0]}'{more} differs from the base revision's {shown} "
            f"({trusted.base[:12]}, {trusted.why}): settings that decide where secrets go or "
            "what runs with privileges are read from the trusted side, never from a pull "
            "request; change them on the base branch first")
    _explain(config, f"{trusted.base[:12]}:{shown}, the base revision ({trusted.why})")
    return config


def _explain(config: Config, origin: str) -> None:
    """-v: where each trusted setting that is set came from."""
    for key, value in trusted_values(config).items():
        if value != DEFAULTS.get(key):
            log.debug("trusted setting %s: from %s", key, origin)


def _base_sha(git: Git, top: Path, trusted: Side, fetch: bool) -> str | None:
    """The base revision's commit in this clone (fetched when missing and `fetch`), or None."""
    assert trusted.base is not None
    sha = git.commit(top, trusted.base)
    remotes = git.remotes(top) if sha is None and fetch else []
    if remotes:
        remote = "origin" if "origin" in remotes else remotes[0]
        log.info("fetching the base revision %s to read its %s", trusted.base[:12],
                 config_mod.CONFIG_NAME)
        # a shallow checkout stays shallow; a full one must not become one
        depth = ["--depth=1"] if git.is_shallow(top) else []
        git.fetch(top, [*depth, remote, trusted.base])
        sha = git.commit(top, trusted.base)
    return sha


def _nearest_at(git: Git, top: Path, sha: str, start: Path) -> str | None:
    """What config.find would have found at the base revision: the nearest ci-nix.yaml from
    start up to the repo's top, as a path in the repo, or None."""
    directory = start.resolve() if start.is_dir() else start.parent.resolve()
    try:
        parts = PurePosixPath(directory.relative_to(top.resolve()).as_posix()).parts
    except ValueError:
        return None
    for depth in range(len(parts), -1, -1):
        rel = PurePosixPath(*parts[:depth], config_mod.CONFIG_NAME).as_posix()
        if git.run(top, ["cat-file", "-e", f"{sha}:{rel}"]).ok:
            return rel
    return None


def _config_at(git: Git, top: Path, sha: str, rel: str) -> Config:
    """The base revision's config at rel (an empty one when the file did not exist there)."""
    found = git.run(top, ["cat-file", "blob", f"{sha}:{rel}"])
    if not found.ok:
        return Config()  # no ci-nix.yaml at the base: nothing trusted was set
    # named like git's REV:PATH, beside the head's file so relative paths resolve alike
    named = top / PurePosixPath(rel).parent / f"{sha[:12]}:{PurePosixPath(rel).name}"
    return config_mod.load(named, found.stdout.encode("utf-8"))


def _line(file: Path, key: str) -> int:
    """The line of a dotted key in a YAML file (of its nearest present parent; 1 if none)."""
    try:
        node = compose(file)
    except ConfigError:
        return 1
    line = 1
    for part in key.split(".", 1 if key.startswith("nix-options.") else -1):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, value) for k, value in node.value if str(k.value) == part), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line
