"""What an input update is asked to do for one repository, and what it did."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from ci_nix.config import Config, UpdateConfig
from ci_nix.update.verify import Dependent, Verification


class Operation(enum.StrEnum):
    """What happened to an update branch's merge request."""

    CREATED = "created"
    UPDATED = "updated"
    CLOSED = "closed"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class UpdateTarget:
    """One repository to update: its checkout, where to push, and how to name things."""

    name: str
    checkout: Path
    remote: str  # remote name or URL the branch is pushed to
    remote_url: str  # that remote's URL (scopes the credential header)
    update: UpdateConfig
    # The repo's ci-nix.yaml: --verify builds with its systems, outputs, include/exclude and
    # eval limits, as `run` does. No default: a Config() here once made the bots verify with
    # defaults instead of the repo's settings.
    config: Config
    inputs: tuple[str, ...] = ()  # empty: update.inputs, else every input
    base: str | None = None  # target branch; default: the forge's default branch
    hosts: tuple[tuple[str, str], ...] = ()  # extra host -> web flavour, for compare links
    repo_urls: tuple[tuple[str, str], ...] = ()  # clone URL -> web page of known repos
    verify: bool = False  # --verify / update.verify: build with the new locks first
    dependents: tuple[Dependent, ...] = ()  # other workspace flakes that lock this repo


@dataclass(frozen=True)
class Outcome:
    """What happened to one update branch and its merge request."""

    repo: str
    branch: str
    operation: Operation
    number: int | None = None
    url: str | None = None
    title: str = ""
    body: str = ""
    moved: tuple[str, ...] = ()
    verification: Verification | None = None
