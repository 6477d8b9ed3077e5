"""Changed files -> affected flakes (+ why), across repos."""

from __future__ import annotations

from dataclasses import dataclass

from ci_nix.models import Flake, Target
from ci_nix.tools.git import Git
from ci_nix.workspace import Workspace


@dataclass(frozen=True)
class Detection:
    targets: tuple[Target, ...]
    unaffected: tuple[tuple[Flake, str], ...]  # (flake, why it was not picked)
    base: str | None = None
    head: str | None = None


def everything(workspace: Workspace, reason: str = "--all") -> Detection:
    return Detection(tuple(Target(flake, (reason,)) for flake in workspace.flakes), ())


def detect(workspace: Workspace, git: Git, base: str | None, head: str | None) -> Detection:
    """Which flakes a change affects. Until change detection lands: every flake."""
    return everything(workspace, "change detection not available yet: building everything")
