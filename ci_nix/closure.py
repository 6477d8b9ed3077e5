"""Runtime closures and their sizes: the one place that asks Nix how big an output's closure is
(`nix path-info --json --recursive`, parsed into PathInfo in tools/nix.py) and the size limits
that gate growth (`--max-closure-growth 10%|50MiB`).

    found = closure.sizes(nix, [job.out_paths for job in jobs])   # {outputs: Closure}
    found[outputs].size, found[outputs].new_paths(base_closure)[:3]

`diff`, `run` (closure sizes, the growth gate) and `bundle` (manifest closureSize) read it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ci_nix.errors import ConfigError
from ci_nix.tools.nix import Nix, NixCommandError, PathInfo
from ci_nix.tools.nix import closure as graph_closure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Closure:
    """The runtime closure of some store paths (an attribute's outputs): every path in it with
    its NAR size, largest first."""

    roots: tuple[str, ...]
    paths: tuple[tuple[str, int], ...]  # (store path, NAR size in bytes)

    @property
    def size(self) -> int:
        return sum(size for _, size in self.paths)

    def new_paths(self, base: Closure) -> list[tuple[str, int]]:
        """The paths this closure has and `base` lacks, largest first."""
        old = {path for path, _ in base.paths}
        return [(path, size) for path, size in self.paths if path not in old]


def of(infos: Mapping[str, PathInfo], roots: Sequence[str]) -> Closure:
    """The closure of roots from path infos that hold it (`path_infos(..., recursive=True)`)."""
    seen = graph_closure(roots, lambda path: infos[path].references if path in infos else ())
    paths = sorted(((p, infos[p].nar_size) for p in seen if p in infos),
                   key=lambda item: (-item[1], item[0]))
    return Closure(tuple(roots), tuple(paths))


def sizes(nix: Nix, groups: Iterable[Sequence[str]], *, substituters: bool = True,
          built: bool = False) -> dict[tuple[str, ...], Closure]:
    """The runtime closure of each group of store paths (an attribute's outputs) that is valid
    in the local store or, with `substituters`, in one of Nix's substituters (a binary cache
    answers with narinfos: nothing is built or downloaded to find out). Groups found nowhere
    are left out. One `path-info` call per store asked, however many groups, and one more to
    learn which are there first (`built`: the groups were just found valid in the local store,
    so that is asked only when asking their closures fails)."""
    remaining = list(dict.fromkeys(tuple(group) for group in groups if group))
    found: dict[tuple[str, ...], Closure] = {}
    for store in (None, *(nix.substituters if substituters else ())):
        if not remaining:
            break
        try:
            ready, infos = remaining, None
            if built and store is None:
                try:
                    infos = nix.path_infos({p for group in ready for p in group},
                                           recursive=True)
                except NixCommandError:  # one was collected meanwhile: ask which are there
                    infos = None
                if infos is not None and any(p not in infos for group in ready for p in group):
                    infos = None  # newer Nix leaves an invalid path out instead
            if infos is None:
                present = nix.valid_paths({p for group in remaining for p in group}, store=store)
                ready = [group for group in remaining if set(group) <= present]
                infos = nix.path_infos({p for group in ready for p in group}, recursive=True,
                                       store=store)
        except (NixCommandError, ValueError, KeyError, TypeError) as err:  # or odd JSON
            log.debug("no closure sizes from %s: %s", store or "the local store", err)
            continue
        for group in ready:
            found[group] = of(infos, group)
        remaining = [group for group in remaining if group not in ready]
    return found


def nowhere(nix: Nix, groups: Iterable[Sequence[str]], *,
            substituters: bool = True) -> frozenset[tuple[str, ...]]:
    """The groups of store paths that are valid neither whole in the local store nor whole in
    one of Nix's substituters (as sizes() asks: its query would leave them out), asked without
    reading any closure. A store that cannot be asked rules nothing out."""
    remaining = list(dict.fromkeys(tuple(group) for group in groups if group))
    for store in (None, *(nix.substituters if substituters else ())):
        if not remaining:
            break
        try:
            present = nix.valid_paths({p for group in remaining for p in group}, store=store)
        except (NixCommandError, ValueError, KeyError, TypeError) as err:  # or odd JSON
            log.debug("cannot tell which outputs %s has: %s", store or "the local store", err)
            return frozenset()
        remaining = [group for group in remaining if not set(group) <= present]
    return frozenset(remaining)


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[a-zA-Z]*)\s*$", re.ASCII)  # ASCII: no ٣%


@dataclass(frozen=True)
class Growth:
    """How much a closure may grow: a percentage of the base's size, or a number of bytes."""

    text: str  # as the user wrote it, for messages
    percent: float | None = None
    bytes: int | None = None

    @classmethod
    def parse(cls, text: str, where: str = "--max-closure-growth") -> Growth:
        """`10%`, `50MiB`, `1.5 GiB`, `200000` (bytes); ConfigError naming `where` otherwise."""
        match = _LIMIT.match(text)
        unit = match.group(2).lower() if match else ""
        if match is None or (unit != "%" and unit not in _UNITS):
            raise ConfigError(f"{where} {text!r}: give a percentage or a size, e.g. 10% or "
                              "50MiB")
        number = float(match.group(1))
        if unit == "%":
            return cls(text.strip(), percent=number)
        return cls(text.strip(), bytes=int(number * _UNITS[unit]))

    def exceeded(self, base: int, head: int) -> bool:
        """Whether growing from base to head bytes is past this limit."""
        grown = head - base
        if self.percent is not None:
            return grown > base * self.percent / 100
        assert self.bytes is not None
        return grown > self.bytes


def human(size: int) -> str:
    """1536 -> `1.5 KiB`."""
    value = float(abs(size))
    sign = "-" if size < 0 else ""
    if value < 1024:
        return f"{sign}{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.1f} {unit}"
    raise AssertionError("unreachable")


def signed(delta: int) -> str:
    """A size change: `+1.5 KiB`, `-3 B`."""
    return ("+" if delta >= 0 else "") + human(delta)


def growth_message(limit: Growth, base: Closure, head: Closure) -> str | None:
    """Why head's closure has grown past the limit against base's, or None when it has not:
    both sizes, the change, and the three largest paths the base closure lacks."""
    if not limit.exceeded(base.size, head.size):
        return None
    grown = head.size - base.size
    percent = f", {grown * 100 / base.size:+.1f}%" if base.size else ""
    new = head.new_paths(base)[:3]
    largest = ("; largest new paths: " + ", ".join(f"{path} ({human(size)})"
                                                    for path, size in new)) if new else ""
    return (f"runtime closure grew from {human(base.size)} to {human(head.size)} "
            f"({signed(grown)}{percent}), past max-closure-growth {limit.text}{largest}")


def gate(nix: Nix, limit: Growth, changed: Sequence[tuple[str, tuple[str, ...]]]
         ) -> tuple[dict[str, str], list[str]]:
    """The growth gate for attributes whose derivation changed: (base drvPath, head outputs)
    pairs. Returns {base drvPath: failure message} for those grown past the limit, and the base
    drvPaths whose closure could not be sized (their outputs are in no store or cache Nix
    reads: the base was never built), which the gate cannot vouch for."""
    try:
        drvs = nix.derivations({base for base, _ in changed})
    except NixCommandError as err:
        log.warning("max-closure-growth: cannot read the base derivations: %s", err)
        return {}, [base for base, _ in changed]
    base_outputs = {base: drvs[base].outputs if base in drvs else () for base, _ in changed}
    found = sizes(nix, [*base_outputs.values(), *(head for _, head in changed)])
    failed: dict[str, str] = {}
    unknown = []
    for base, head in changed:
        before, after = found.get(base_outputs[base]), found.get(tuple(head))
        if before is None or after is None:
            unknown.append(base)
            continue
        message = growth_message(limit, before, after)
        if message is not None:
            failed[base] = message
    return failed, unknown
