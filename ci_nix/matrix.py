"""Plan -> matrix entries: one per derivation, grouped per flake and system when over the cap.

Every entry is runnable on its own, with no CI variables: `ci-nix run --system SYS
[--locked] --pin=REPO=SHA... --only=FLAKE#ATTR... --expect-drv=FLAKE#ATTR=DRV...` (Entry.args).
The pins are the commits the plan read from each repo the entry's flakes are read from
(the flake's own and those of its workspace inputs), so the job evaluates what was planned;
the expected drvPaths make any difference a failure naming both paths rather than a pass.
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
    # what decides the entry's derivations, as the plan had it (see the module docstring)
    pins: tuple[tuple[str, str], ...] = ()  # (repo name, commit)
    locked: bool = False
    expect: tuple[tuple[str, str, str], ...] = ()  # (flake id, attribute, drvPath)

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
        # `--flag=value`: a value starting with `-` (a flake id can) stays a value
        args = ["--system", self.system, *(["--locked"] if self.locked else [])]
        args += [f"--pin={repo}={rev}" for repo, rev in self.pins]
        args += [f"--only={flake}#{attr}" for flake, attr in self.only]
        args += [f"--expect-drv={flake}#{attr}={drv}" for flake, attr, drv in self.expect]
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
    drv: str | None = None  # None: an evaluation failure


def _units(jobs: Sequence[Job], failures: Sequence[Case], current_system: str) -> list[_Unit]:
    by_drv: dict[str, list[Job]] = {}
    for job in jobs:
        # same drvPath (an alias, or one package re-exported by several flakes): built once
        by_drv.setdefault(job.drv_path, []).append(job)
    units = [_Unit(same[0].system, tuple((j.flake, j.name) for j in same), drv)
             for drv, same in by_drv.items()]
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
        expect = tuple((flake, attr, unit.drv) for unit in members if unit.drv is not None
                       for flake, attr in unit.only)
        result.append(Entry(system, runner, only, grouped=len(members) > 1,
                            pins=_pins(plan, {flake for flake, _ in only}), locked=plan.locked,
                            expect=expect))
    return tuple(result)


def _pins(plan: Plan, flakes: set[str]) -> tuple[tuple[str, str], ...]:
    """The commit of each repo these flakes are read from: their own repos and those of their
    workspace inputs. A repo with uncommitted changes has no commit to pin (unpinned_repos)."""
    repos = _repos_read(plan, flakes)
    return tuple((c.repo, c.rev) for c in plan.checkouts
                 if c.repo in repos and c.rev is not None and not c.dirty)


def _repos_read(plan: Plan, flakes: set[str]) -> set[str]:
    by_id = {flake.id: flake for flake in plan.workspace.flakes}
    repos = {by_id[flake].repo.name for flake in flakes if flake in by_id}
    for flake_eval in plan.evals:
        if flake_eval.target.flake.id in flakes:
            repos |= {by_id[o.source].repo.name for o in flake_eval.target.overrides
                      if o.source in by_id}
    return repos


def unpinned_repos(plan: Plan) -> tuple[str, ...]:
    """Repos the plan read with uncommitted changes: a matrix job cannot be pinned to them and
    evaluates its own checkout (its expected drvPaths still catch a difference)."""
    repos = _repos_read(plan, {e.target.flake.id for e in plan.evals})
    return tuple(c.repo for c in plan.checkouts if c.repo in repos and c.dirty)


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
