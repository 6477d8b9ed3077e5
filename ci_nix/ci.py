"""Which CI ci-nix runs in, decided in one place from the environment it is given.

GitHub Actions sets `GITHUB_ACTIONS=true`, GitLab CI `GITLAB_CI=true`; any other value (an
empty one left by a wrapper, a copied `GITLAB_CI=1`) is not that CI. Most CIs also set `CI=true`:
then ci-nix draws no live terminal status, though it knows no log commands for that CI.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class Ci(enum.StrEnum):
    """A CI system whose log commands and files ci-nix writes."""

    GITHUB = "github"
    GITLAB = "gitlab"


@dataclass(frozen=True)
class CiEnv:
    """The CI this run is in (None: a terminal, or a CI ci-nix has no commands for) and the
    files that CI reads back."""

    kind: Ci | None = None
    ci: bool = False  # in some CI (CI=true or a known one): no live status line
    step_summary: Path | None = None  # GitHub: $GITHUB_STEP_SUMMARY, markdown shown on the run
    output: Path | None = None  # GitHub: $GITHUB_OUTPUT, the step's `key=value` outputs
    workspace: str | None = None  # GitHub: $GITHUB_WORKSPACE, symlinks resolved (annotations)
    branch: str | None = None  # the branch the pipeline runs for (not a tag, not a PR's merge)
    # the project's default branch where CI names it in a variable (GitLab); on GitHub it is in
    # the event payload: trust.github_default_branch
    default_branch: str | None = None

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> CiEnv:
        if environ.get("GITHUB_ACTIONS") == "true":
            root = environ.get("GITHUB_WORKSPACE")
            ref = environ.get("GITHUB_REF") or ""
            return cls(Ci.GITHUB, True, _path(environ.get("GITHUB_STEP_SUMMARY")),
                       _path(environ.get("GITHUB_OUTPUT")),
                       os.path.realpath(root) if root else None,
                       ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None)
        if environ.get("GITLAB_CI") == "true":
            return cls(Ci.GITLAB, True, branch=environ.get("CI_COMMIT_BRANCH") or None,
                       default_branch=environ.get("CI_DEFAULT_BRANCH") or None)
        return cls(None, environ.get("CI") == "true")

    @property
    def github(self) -> bool:
        return self.kind is Ci.GITHUB

    @property
    def gitlab(self) -> bool:
        return self.kind is Ci.GITLAB


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
