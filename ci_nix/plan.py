"""What a run would build, after detection, selection, systems and evaluation: shared by `run`
(which builds the jobs this machine can build) and `matrix` (which fans them out over runners).

pipeline.plan() makes a Plan; later steps narrow it with Plan.skip() (e.g. the cache step:
`plan.skip(cached_jobs, "cached")`), so run and matrix agree on what is left.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from ci_nix.cache.backends import Cache
from ci_nix.evaluate import Limits
from ci_nix.inputs import Checkout
from ci_nix.models import Case, FlakeEval, Job, Status
from ci_nix.tools.nix import Nix
from ci_nix.workspace import Workspace


@dataclass(frozen=True)
class Plan:
    """Jobs still to build, and every case already decided (eval failures, skips)."""

    workspace: Workspace
    suites: tuple[str, ...]  # flake ids, in report order
    systems: tuple[str, ...]  # evaluated for
    current_system: str
    buildable: frozenset[str]  # `system`, `extra-platforms` and the remote builders' systems
    evals: tuple[FlakeEval, ...]
    jobs: tuple[Job, ...]
    cases: tuple[Case, ...]
    nix: Nix = field(default_factory=Nix.from_env)  # with the run's Nix options: build with it
    cache: Cache | None = None  # ci-nix.yaml's binary cache, opened once for the whole run
    limits: Limits = Limits()  # the evaluation's, worked out once: the base side uses them too
    remote_systems: frozenset[str] = frozenset()  # buildable only on Nix's remote builders
    # what Nix read from each repo, and whether inputs came from flake.lock only (--locked):
    # with the overrides in `evals`, what decides every derivation (a matrix entry pins it)
    checkouts: tuple[Checkout, ...] = ()
    locked: bool = False
    # flakes already evaluated at the base (to confirm path rules), reused by a comparison
    base_evals: tuple[FlakeEval, ...] = ()
    # (repo name, merge-base) change detection compared from: a comparison's base
    merge_bases: tuple[tuple[str, str], ...] = ()

    @property
    def evaluations(self) -> int:
        """Nix evaluations spent (one per flake, plus bisection where something broke)."""
        return sum(e.evaluations for e in self.evals)

    @property
    def failures(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.status is Status.FAILED)

    @property
    def local(self) -> tuple[Job, ...]:
        """Jobs this machine can build (itself or on one of its remote builders)."""
        return tuple(job for job in self.jobs if job.system in self.buildable)

    @property
    def foreign(self) -> tuple[Job, ...]:
        """Jobs for systems this machine cannot build: a matrix routes them to other runners."""
        return tuple(job for job in self.jobs if job.system not in self.buildable)

    def unsupported(self) -> tuple[Case, ...]:
        """The foreign jobs as skipped cases, for a run that cannot hand them elsewhere."""
        machine = ", ".join(sorted(self.buildable))
        return tuple(Case(job.flake, job.name, Status.SKIPPED, system=job.system,
                          drv_path=job.drv_path,
                          skip_reason=f"unsupported system {job.system} (this machine builds "
                                      f"{machine}; set 'extra-platforms' in nix.conf, add a "
                                      "remote builder for it or use a matrix runner)")
                     for job in self.foreign)

    def skip(self, jobs: Collection[Job], reason: str) -> Plan:
        """Take these jobs out of the build and report them as skipped with reason."""
        dropped = set(jobs)
        skipped = tuple(Case(job.flake, job.name, Status.SKIPPED, system=job.system,
                             drv_path=job.drv_path, skip_reason=reason)
                        for job in self.jobs if job in dropped)
        return replace(self, jobs=tuple(job for job in self.jobs if job not in dropped),
                       cases=self.cases + skipped)
