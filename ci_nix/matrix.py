"""Plan -> matrix entries: one per derivation, grouped per flake and system when over the cap.

Every entry is runnable on its own: `ci-nix run --system SYS --only FLAKE#ATTR...` (Entry.args).
Attributes that failed to evaluate get entries too, so the job that runs them reports the
failure in its JUnit, next to the builds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci_nix.errors import ConfigError
from ci_nix.models import FLAKE_CASE, Case, Job, parse_attr
from ci_nix.plan import Plan
from ci_nix.words import count

log = logging.getLogger(__name__)

GITHUB_CAP = 256  # GitHub's limit on the jobs one matrix may generate

# GitHub-hosted runners, for systems `runners:` in ci-nix.yaml does not name.
GITHUB_RUNNERS: Mapping[str, tuple[str, ...]] = {
    "x86_64-linux": ("ubuntu-latest",),
    "aarch64-linux": ("ubuntu-24.04-arm",),
    "x86_64-darwin": ("macos-13",),
    "aarch64-darwin": ("macos-latest",),
}

_PER_SYSTEM = ("packages", "devShells", "checks")


@dataclass(frozen=True)
class Entry:
    """One matrix job: the attributes it runs, on which system, on which runner."""

    system: str
    runner: tuple[str, ...]  # runner labels (GitHub runs-on, GitLab tags); () = any runner
    only: tuple[tuple[str, str], ...]  # (flake id, attribute), in plan order
    grouped: bool = False  # several derivations: grouped to stay under the cap

    @property
    def flake(self) -> str:
        return self.only[0][0]

    @property
    def flakes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(flake for flake, _ in self.only))

    @property
    def attrs(self) -> tuple[str, ...]:
        return tuple(attr for _, attr in self.only)

    @property
    def attr(self) -> str:
        """The attribute, or a summary when the entry runs several."""
        return self.only[0][1] if len(self.only) == 1 else f"{len(self.only)} attributes"

    @property
    def name(self) -> str:
        if len(self.only) == 1:
            return f"{self.flake} {self.attr}"
        extra = f" +{count(len(self.flakes) - 1, 'flake')}" if len(self.flakes) > 1 else ""
        return f"{self.flake}{extra} {self.system} ({self.attr})"

    def args(self) -> tuple[str, ...]:
        """What `ci-nix run` needs to run exactly this entry (after any PATH/--config)."""
        args = ["--system", self.system]
        for flake, attr in self.only:
            args += ["--only", f"{flake}#{attr}"]
        return tuple(args)


def case_system(case: Case, current_system: str) -> str:
    """The system a failed attribute belongs to (per-system outputs name it in their path)."""
    if case.system:
        return case.system
    path = parse_attr(case.name)
    if case.name != FLAKE_CASE and len(path) >= 2 and path[0] in _PER_SYSTEM:
        return path[1]
    return current_system


def runner_for(system: str, runners: Mapping[str, Sequence[str]],
               defaults: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(runners.get(system) or defaults.get(system, ()))


@dataclass(frozen=True)
class _Unit:
    """What one ungrouped entry holds: the attributes sharing a derivation, or one failure."""

    system: str
    only: tuple[tuple[str, str], ...]


def _units(jobs: Sequence[Job], failures: Sequence[Case], current_system: str) -> list[_Unit]:
    by_drv: dict[str, list[Job]] = {}
    for job in jobs:
        # same drvPath (an alias, or one package re-exported by several flakes): built once
        by_drv.setdefault(job.drv_path, []).append(job)
    units = [_Unit(same[0].system, tuple((j.flake, j.name) for j in same))
             for same in by_drv.values()]
    units += [_Unit(case_system(case, current_system), ((case.flake, case.name),))
              for case in failures]
    return units


def entries(plan: Plan, runners: Mapping[str, Sequence[str]],
            defaults: Mapping[str, tuple[str, ...]] = GITHUB_RUNNERS,
            cap: int | None = GITHUB_CAP, *, require_runner: bool = False) -> tuple[Entry, ...]:
    """The plan's jobs and eval failures as at most `cap` entries."""
    units = _units(plan.jobs, plan.failures, plan.current_system)
    groups: list[tuple[str, list[_Unit]]] = [(u.system, [u]) for u in units]
    if cap is not None and len(groups) > cap:
        groups = _by_flake_system(units)
        if len(groups) > cap:
            groups = _squeeze(groups, cap)
        log.info("matrix: %s in %s (cap %d)", count(len(units), "derivation"),
                 count(len(groups), "grouped entry"), cap)
    result = []
    for system, members in groups:
        # A system only the remote builders build goes to a runner like this one, which reaches
        # them, unless 'runners:' names one for it.
        via_builder = system in plan.remote_systems and system not in runners
        runner = runner_for(plan.current_system if via_builder else system, runners, defaults)
        if require_runner and not runner:
            raise ConfigError(f"no runner for system {system}: map it to a runner label under "
                              "'runners:' in ci-nix.yaml")
        only = tuple(pair for unit in members for pair in unit.only)
        result.append(Entry(system, runner, only, grouped=len(members) > 1))
    return tuple(result)


def _by_flake_system(units: Sequence[_Unit]) -> list[tuple[str, list[_Unit]]]:
    grouped: dict[tuple[str, str], list[_Unit]] = {}
    for unit in units:
        grouped.setdefault((unit.only[0][0], unit.system), []).append(unit)
    return [(system, members) for (_, system), members in grouped.items()]


def _squeeze(groups: Sequence[tuple[str, list[_Unit]]],
             cap: int) -> list[tuple[str, list[_Unit]]]:
    """More flake/system groups than the cap: merge groups of one system into fewer buckets."""
    per_system: dict[str, list[list[_Unit]]] = {}
    for system, members in groups:
        per_system.setdefault(system, []).append(members)
    if len(per_system) > cap:
        raise ConfigError(f"{len(per_system)} systems do not fit in a matrix of "
                          f"{count(cap, 'job')}; narrow 'systems:' in ci-nix.yaml or pass --system")
    total = len(groups)
    result: list[tuple[str, list[_Unit]]] = []
    budget = cap
    for index, (system, system_groups) in enumerate(per_system.items()):
        left = len(per_system) - index - 1  # systems still to place need a bucket each
        buckets = max(1, min(len(system_groups), cap * len(system_groups) // total,
                             budget - left))
        budget -= buckets
        merged: list[list[_Unit]] = [[] for _ in range(buckets)]
        for i, members in enumerate(system_groups):
            merged[i * buckets // len(system_groups)] += members  # neighbours stay together
        result += [(system, members) for members in merged]
    return result
