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

from ci_nix.models import FLAKE_CASE, FlakeEval, Status


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
    size_delta: int | None = None  # runtime closure size, head minus base, when both are valid

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


@dataclass(frozen=True)
class Comparison:
    base: str  # the commit the head is compared with (merge-base of base and head)
    head: str | None  # None: the work tree
    attributes: tuple[AttrChange, ...]
    flakes: tuple[Compared, ...] = ()
    notes: tuple[str, ...] = field(default=())
    base_source: str = ""  # e.g. "--base origin/main", "GitHub pull_request event: ..."

    def of(self, status: Change) -> tuple[AttrChange, ...]:
        return tuple(a for a in self.attributes if a.status is status)

    @property
    def unchanged_keys(self) -> frozenset[tuple[str, str]]:
        """(flake, attr) of the attributes whose derivation is the base's."""
        return frozenset((a.flake, a.attr) for a in self.of(Change.UNCHANGED))


_Entry = tuple[str | None, str | None, str | None]  # (system, drvPath, error)


def _entries(evals: Sequence[FlakeEval]) -> tuple[dict[tuple[str, str], _Entry], dict[str, str]]:
    """{(flake, attr): (system, drv, error)} and {flake: error} for flakes that did not list."""
    found: dict[tuple[str, str], _Entry] = {}
    broken: dict[str, str] = {}
    for flake_eval in evals:
        for job in flake_eval.jobs:
            found[(job.flake, job.name)] = (job.system, job.drv_path, None)
        for case in flake_eval.cases:
            if case.status is not Status.FAILED:
                continue
            message = case.failure.message if case.failure else "evaluation failed"
            if case.name == FLAKE_CASE:
                if not flake_eval.jobs and not any(c.name != FLAKE_CASE for c in flake_eval.cases):
                    broken[case.flake] = message
                continue
            found[(case.flake, case.name)] = (case.system, None, message)
    return found, broken


def compare(base: Sequence[FlakeEval], head: Sequence[FlakeEval], base_rev: str,
            head_rev: str | None, notes: Sequence[str] = ()) -> Comparison:
    """Each attribute of either side: changed, added, removed, unchanged, or failed (at head).

    An attribute that evaluates at head but not at the base (or whose flake does not evaluate
    there) is `added`: there is nothing to compare it with.
    """
    before, base_broken = _entries(base)
    after, _ = _entries(head)
    order = [e.target.flake.id for e in head] + [e.target.flake.id for e in base]
    rank = {flake: i for i, flake in enumerate(dict.fromkeys(order))}
    result = []
    for key in sorted(set(before) | set(after), key=lambda k: (rank.get(k[0], len(rank)), k[1])):
        flake, attr = key
        base_system, base_drv, base_error = before.get(key, (None, None, None))
        if key not in after:
            if base_drv is not None:
                result.append(AttrChange(flake, attr, base_system, Change.REMOVED, base_drv,
                                         None))
            continue  # failed at the base and gone at head: nothing to say
        system, drv, error = after[key]
        if drv is None:
            status = Change.FAILED
        elif base_drv is None:
            status = Change.ADDED
            error = base_error or base_broken.get(flake)
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
                    size_delta: int | None = None) -> PackageChanges:
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
    return PackageChanges(changed, added, removed, rebuilds, size_delta)
