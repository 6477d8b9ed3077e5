"""What a change does: two evaluations (base and head) -> per-attribute changes, and two
derivation closures -> package changes. Pure functions on values; the I/O lives in diff.py.

    comparison = changes.compare(base_evals, head_evals)      # statuses, drv paths
    packages = changes.package_changes(base_closure, head_closure)

report/changes.py renders the result (markdown, text, JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ci_nix.models import FLAKE_CASE, FlakeEval, Status, parse_attr


class Change(StrEnum):
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class VersionChange:
    name: str
    before: str  # versions at the base, comma-separated when a closure holds several
    after: str


@dataclass(frozen=True)
class PackageChanges:
    """How two derivation closures differ, by package name (like nvd, without building)."""

    changed: tuple[VersionChange, ...] = ()
    added: tuple[Package, ...] = ()
    removed: tuple[Package, ...] = ()
    rebuilds: int = 0  # derivations in the head closure that the base closure lacks
    # runtime closure sizes in bytes (base, head), when both sides' outputs are valid
    sizes: tuple[int, int] | None = None

    @property
    def size_delta(self) -> int | None:
        """The runtime closure's growth (head minus base), when both sizes are known."""
        return self.sizes[1] - self.sizes[0] if self.sizes is not None else None

    @property
    def empty(self) -> bool:
        return not (self.changed or self.added or self.removed or self.rebuilds)


@dataclass(frozen=True)
class AttrChange:
    """One attribute, compared."""

    flake: str
    attr: str  # as `nix build` takes it
    system: str | None
    status: Change
    base_drv: str | None
    head_drv: str | None
    packages: PackageChanges | None = None  # filled in for `changed` attributes
    error: str | None = None  # why `failed` (head) or why the base could not be compared


@dataclass(frozen=True)
class Compared:
    """A flake that was compared, and why it was selected."""

    flake: str
    reasons: tuple[str, ...]


WORKTREE = "worktree"  # a head (or checked-out side) with uncommitted changes Nix evaluates


@dataclass(frozen=True)
class RepoRevisions:
    """What one workspace repo was compared at: `base` is its merge-base commit when it has a
    base checkout, else what it is checked out at (the same on both sides); `head` is a commit,
    or "worktree" for uncommitted changes Nix evaluates."""

    repo: str
    base: str
    head: str

    @property
    def as_checked_out(self) -> bool:
        return self.base == self.head


@dataclass(frozen=True)
class Comparison:
    base: str  # the commit the head is compared with (merge-base of base and head)
    head: str | None  # None: the work tree
    attributes: tuple[AttrChange, ...]
    flakes: tuple[Compared, ...] = ()
    notes: tuple[str, ...] = field(default=())
    base_source: str = ""  # e.g. "--base origin/main", "GitHub pull_request event: ..."
    repos: tuple[RepoRevisions, ...] = ()  # every workspace repo; base/head are the primary's

    def of(self, status: Change) -> tuple[AttrChange, ...]:
        return tuple(a for a in self.attributes if a.status is status)

    @property
    def unchanged_keys(self) -> frozenset[tuple[str, str]]:
        """(flake, attr) of the attributes whose derivation is the base's."""
        return frozenset((a.flake, a.attr) for a in self.of(Change.UNCHANGED))


_Entry = tuple[str | None, str | None, str | None]  # (system, drvPath, error)


@dataclass(frozen=True)
class _Side:
    """One evaluation, keyed for comparing."""

    found: dict[tuple[str, str], _Entry]  # (flake, attr) -> (system, drv, error)
    broken: dict[str, str]  # flake -> error, for flakes whose attributes could not be listed
    flake_errors: dict[str, str]  # flake -> error of its failed flake.nix case (lock, listing)
    groups: dict[str, list[tuple[tuple[str, ...], str]]]  # flake -> (failed group path, name)


def _side(evals: Sequence[FlakeEval]) -> _Side:
    side = _Side({}, {}, {}, {})
    for flake_eval in evals:
        for job in flake_eval.jobs:
            side.found[(job.flake, job.name)] = (job.system, job.drv_path, None)
        for case in flake_eval.cases:
            if case.status is not Status.FAILED:
                continue
            message = case.failure.message if case.failure else "evaluation failed"
            if case.name == FLAKE_CASE:
                side.flake_errors[case.flake] = message
                if not flake_eval.jobs and not any(c.name != FLAKE_CASE for c in flake_eval.cases):
                    side.broken[case.flake] = message
                continue
            side.found[(case.flake, case.name)] = (case.system, None, message)
            side.groups.setdefault(case.flake, []).append((parse_attr(case.name), case.name))
    return side


def _not_evaluated(head: _Side, flake: str, attr: str) -> str | None:
    """Why an attribute of the base has no result at head although it may still exist: its
    flake, or an attribute set above it, failed to evaluate there."""
    if flake in head.broken:
        return f"not evaluated: {FLAKE_CASE} does not evaluate at head"
    path = parse_attr(attr)
    for group, name in head.groups.get(flake, ()):
        if path[:len(group)] == group:
            return f"not evaluated: {name} does not evaluate at head"
    return None


def compare(base: Sequence[FlakeEval], head: Sequence[FlakeEval], base_rev: str,
            head_rev: str | None, notes: Sequence[str] = ()) -> Comparison:
    """Each attribute of either side: changed, added, removed, unchanged, or failed (at head).

    An attribute that evaluates at head but not at the base (or whose flake does not evaluate
    there) is `added`: there is nothing to compare it with. One the base has and the head
    cannot say (its flake or an attribute set above it fails at head) is `failed`, never
    `removed`; a flake whose flake.nix fails at head (it does not evaluate, or its lock is
    stale) has a `failed` entry of its own named flake.nix.
    """
    before, after = _side(base), _side(head)
    order = [e.target.flake.id for e in head] + [e.target.flake.id for e in base]
    rank = {flake: i for i, flake in enumerate(dict.fromkeys(order))}
    keys = set(before.found) | set(after.found) | {(f, FLAKE_CASE) for f in after.flake_errors}
    result = []
    for key in sorted(keys, key=lambda k: (rank.get(k[0], len(rank)), k[1] != FLAKE_CASE,
                                           k[1])):
        flake, attr = key
        base_system, base_drv, base_error = before.found.get(key, (None, None, None))
        if attr == FLAKE_CASE:
            result.append(AttrChange(flake, attr, None, Change.FAILED, None, None,
                                     error=after.flake_errors[flake]))
            continue
        if key not in after.found:
            if base_drv is None:
                continue  # failed at the base and gone at head: nothing to say
            why = _not_evaluated(after, flake, attr)
            result.append(AttrChange(flake, attr, base_system,
                                     Change.REMOVED if why is None else Change.FAILED,
                                     base_drv, None, error=why))
            continue
        system, drv, error = after.found[key]
        if drv is None:
            status = Change.FAILED
        elif base_drv is None:
            status = Change.ADDED
            error = base_error or before.broken.get(flake)
            if error is not None:
                error = f"the base did not evaluate: {error}"
        else:
            status = Change.UNCHANGED if base_drv == drv else Change.CHANGED
        result.append(AttrChange(flake, attr, system or base_system, status, base_drv, drv,
                                 error=error))
    flakes = tuple(Compared(e.target.flake.id, e.target.reasons) for e in head)
    return Comparison(base_rev, head_rev, tuple(result), flakes, tuple(notes))


# --- packages -----------------------------------------------------------------------------------

def parse_drv_name(name: str) -> tuple[str, str]:
    """(name, version) as builtins.parseDrvName splits it: at the first `-` followed by
    anything but an ASCII letter (Nix's isalpha in the C locale)."""
    for i, char in enumerate(name[:-1]):
        after = name[i + 1]
        if char == "-" and not (after.isascii() and after.isalpha()):
            return name[:i], name[i + 1:]
    return name, ""


def store_name(path: str) -> str:
    """The name part of a store path: /nix/store/<hash>-hello-2.12.drv -> hello-2.12."""
    base = path.rsplit("/", 1)[-1]
    base = base.split("-", 1)[1] if "-" in base else base
    return base.removesuffix(".drv")


def _versions(closure: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in closure:
        if not path.endswith(".drv"):
            continue  # sources and fixed files: not packages
        name, version = parse_drv_name(store_name(path))
        found.setdefault(name, set()).add(version)
    return found


def _join(versions: set[str]) -> str:
    return ", ".join(sorted(versions, key=_version_key))


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for piece in version.replace("-", ".").split("."):
        parts.append((0, int(piece)) if piece.isdigit() else (1, piece))
    return tuple(parts)


def package_changes(base_closure: Iterable[str], head_closure: Iterable[str],
                    sizes: tuple[int, int] | None = None) -> PackageChanges:
    """Version changes, added and removed packages, and how many derivations differ.

    A derivation that changes only because a dependency did (same name and version) is
    counted in `rebuilds`, not listed.
    """
    base_set, head_set = set(base_closure), set(head_closure)
    before, after = _versions(base_set), _versions(head_set)
    changed = tuple(VersionChange(name, _join(before[name]), _join(after[name]))
                    for name in sorted(set(before) & set(after)) if before[name] != after[name])
    added = tuple(Package(name, _join(after[name])) for name in sorted(set(after) - set(before)))
    removed = tuple(Package(name, _join(before[name]))
                    for name in sorted(set(before) - set(after)))
    rebuilds = sum(1 for path in head_set - base_set if path.endswith(".drv"))
    return PackageChanges(changed, added, removed, rebuilds, sizes)
