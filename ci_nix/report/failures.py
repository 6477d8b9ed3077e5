"""Failures grouped by their root: a derivation that failed leads, and the attributes that
failed only because they depend on it are listed under it, so its log is shown once.

Pure functions on report values, shared by every writer (text, GitHub, GitLab, JUnit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ci_nix.models import FLAKE_CASE, Case, FailureType, Status


@dataclass(frozen=True)
class Group:
    """One root failure: `lead` is the attribute whose own build failed (else, when the failed
    derivation is no attribute, the first attribute that needed it); `dependents` failed
    because of it."""

    lead: Case
    dependents: tuple[Case, ...] = ()


def label(case: Case) -> str:
    return f"{case.flake}#{case.name}"


def groups(cases: Iterable[Case]) -> list[Group]:
    """The failed cases as groups, in the order their first case comes."""
    failed = [c for c in cases if c.status is Status.FAILED and c.failure is not None]
    # a root is a case that failed for its own derivation: an evaluation error's text may name
    # any derivation (a `throw` quoting Nix's words), which makes it no other case's root
    own = {c.failure.drv: c for c in failed
           if c.failure is not None and c.failure.drv and c.failure.drv == c.drv_path
           and c.failure.type is not FailureType.DEPENDENCY}
    members: dict[object, list[Case]] = {}
    for case in failed:
        assert case.failure is not None
        cause = case.failure.cause if case.failure.type is FailureType.DEPENDENCY else None
        key: object = cause if cause is not None else id(case)
        if cause is None and case.failure.drv in own and own[case.failure.drv] is case:
            key = case.failure.drv  # a root: its dependents join it
        members.setdefault(key, []).append(case)
    result = []
    for key, group in members.items():
        root = own.get(key) if isinstance(key, str) else None
        lead = root if root is not None else group[0]
        result.append(Group(lead, tuple(c for c in group if c is not lead)))
    return result


def root_of(cases: Iterable[Case]) -> dict[tuple[str, str], Case]:
    """{(flake, name) of each dependent: the lead of its group}."""
    return {(d.flake, d.name): g.lead for g in groups(cases) for d in g.dependents}


def attributes(cases: Iterable[Case]) -> list[Case]:
    """The cases that are attributes: not a whole flake skipped (unaffected, not evaluated)."""
    return [c for c in cases if not (c.name == FLAKE_CASE and c.status is Status.SKIPPED)]


def skipped_flakes(cases: Iterable[Case]) -> list[Case]:
    """Whole flakes skipped: change detection left them out or the run stopped first."""
    return [c for c in cases if c.name == FLAKE_CASE and c.status is Status.SKIPPED]


def skip_counts(cases: Iterable[Case]) -> tuple[Counter[str], Counter[str]]:
    """The attributes skipped and the flakes skipped whole, each counted by reason_kind."""
    cases = list(cases)
    skipped = Counter(reason_kind(c.skip_reason) for c in attributes(cases)
                      if c.status is Status.SKIPPED)
    whole = Counter(reason_kind(c.skip_reason) for c in skipped_flakes(cases))
    return skipped, whole


def reason_kind(reason: str | None) -> str:
    """`unaffected`, `cached`, `unsupported system aarch64-linux`, ...: a skip reason without
    its details, to count by."""
    text = reason or "skipped"
    return text.split(":", 1)[0].split(" (", 1)[0]
