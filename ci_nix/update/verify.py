"""`update --verify`: build what an input update touches, and hold back the inputs that break it.

The locks are updated in the update's private worktree. The flakes whose lock moved, and the
flakes of that checkout that lock them, are evaluated and built with the new locks by `run`'s
own stages (pipeline.evaluate_targets, plan_of, build_jobs), with the repo's ci-nix.yaml: its
systems, outputs, include/exclude, `eval:` limits and nix-options. An attribute that fails
with the update is built again on the current locks; if it passes there, the update broke it,
and the inputs responsible are found by updating them alone (bisecting when there are many)
and held back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ci_nix import changes as changes_mod
from ci_nix import detect as detect_mod
from ci_nix import diff as diff_mod
from ci_nix import lockfile, pipeline
from ci_nix.changes import Comparison
from ci_nix.config import Config
from ci_nix.errors import CiNixError
from ci_nix.evaluate import EvalFlags
from ci_nix.models import Case, Flake, FlakeEval, Override, Repo, Status, Target
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.workspace import Workspace

log = logging.getLogger(__name__)

# Inputs tried one by one up to this many; more are bisected.
SEPARATELY = 4


@dataclass(frozen=True)
class HeldBack:
    """An input whose update breaks an attribute that passes on the current lock."""

    input: str
    case: Case  # the attribute's failing result with this input updated


@dataclass(frozen=True)
class Verification:
    """What the proposed update gives, attribute by attribute, and what was held back."""

    cases: tuple[Case, ...]  # with the inputs the merge request carries
    held_back: tuple[HeldBack, ...] = ()
    kept: tuple[str, ...] = ()  # the inputs the merge request carries
    comparison: Comparison | None = None  # "What changes": current locks vs the proposed ones

    @property
    def failed(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.status is Status.FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.held_back


@dataclass(frozen=True)
class Dependent:
    """A flake of another workspace repo that locks a flake of the repo being updated."""

    flake: Flake
    input: str  # the input path, as --override-input takes it
    subdir: str  # which flake of the updated repo it locks


def _key(case: Case) -> tuple[str, str]:
    return case.flake, case.name


class Verifier:
    """Builds flakes of one checkout (the private worktree) with whatever locks it holds."""

    def __init__(self, nix: Nix, git: Git, name: str, work: Path, config: Config, head: str,
                 dependents: Sequence[Dependent] = (),
                 environ: Mapping[str, str] = os.environ) -> None:
        self.nix, self.git, self.config, self.environ = nix, git, config, environ
        self.limits = EvalFlags().limits(config.eval)  # the repo's `eval:`, as `run` reads it
        self.systems = tuple(config.systems or (nix.current_system,))
        self.head, self.dependents = head, tuple(dependents)
        self.last_evals: list[FlakeEval] = []  # of the last build()
        repo = Repo(name=name, path=work, shallow=git.is_shallow(work))
        flakes = []
        for tracked in git.tracked(work, "flake.nix", ":(glob)**/flake.nix"):
            subdir = str(PurePosixPath(tracked).parent)
            flakes.append(Flake(repo=repo, subdir="" if subdir == "." else subdir))
        self.workspace = Workspace(root=work, config=config, repos=(repo,), primary=repo,
                                   flakes=tuple(flakes))
        self.cache = pipeline.eval_cache(EvalFlags(), self.workspace, environ)  # `eval.cache`

    def affected(self, moved_dirs: Sequence[str]) -> list[Target]:
        """The flakes whose lock moved, the flakes of this checkout that lock them, and the
        other workspace repos' flakes that lock any of those (their input overridden with
        this checkout, so they build against the new locks)."""
        moved = {flake for flake in self.workspace.flakes if flake.subdir in moved_dirs}
        edges = detect_mod.lock_edges(self.workspace, self.git)
        found = detect_mod.affected_by(dict.fromkeys(moved), edges)
        targets = [Target(flake, ("update --verify: its lock moved" if flake in moved else
                                  "update --verify: locks a flake whose lock moved",))
                   for flake in self.workspace.flakes if flake in found]
        by_subdir = {flake.subdir: flake for flake in found}
        outside: dict[Flake, list[Dependent]] = {}
        for dependent in self.dependents:
            if dependent.subdir in by_subdir:
                outside.setdefault(dependent.flake, []).append(dependent)
        for flake, dependents in outside.items():
            why = ", ".join(f"'{d.input}'" for d in dependents)
            targets.append(Target(flake, (f"update --verify: locks the updated repo as {why}",)))
        return targets

    def _overrides(self, target: Target) -> Target:
        """An outside dependent gets the updated flake from this checkout, and that flake's
        inputs as this checkout's lock has them now: Nix would keep the dependent's own lock
        entries for them otherwise. Inputs the dependent makes follow its own are left alone."""
        overrides: list[Override] = []
        for dependent in self.dependents:
            if dependent.flake != target.flake:
                continue
            updated = Flake(self.workspace.repos[0], dependent.subdir)
            overrides.append(Override(dependent.input, updated.ref))
            try:
                ours = lockfile.read(updated.path / "flake.lock")
                theirs = lockfile.read(dependent.flake.path / "flake.lock")
            except lockfile.LockError:
                continue
            if ours is None:
                continue
            node = theirs.resolve(tuple(dependent.input.split("/"))) if theirs else None
            for name, node_key in ours.nodes[ours.root].inputs.items():
                if node is not None and isinstance(node.inputs.get(name), tuple):
                    continue  # `follows` in the dependent: its choice stands
                locked = ours.resolve(node_key)
                url = locked.locked.locked_url() if locked is not None else None
                if url is not None and not isinstance(node_key, tuple):
                    overrides.append(Override(f"{dependent.input}/{name}", url))
        return Target(target.flake, target.reasons, (*target.overrides, *overrides))

    def evaluate(self, flakes: Sequence[Target],
                 only: frozenset[tuple[str, str]] | None = None) -> list[FlakeEval]:
        """`run`'s evaluation stage on these flakes, with the repo's config and limits."""
        targets = [self._overrides(target) for target in flakes
                   if only is None or any(target.flake.id == wanted for wanted, _ in only)]
        # the evaluation cache: the current locks' side is often a commit CI evaluated, and a
        # nightly bot re-proposing the same update finds its own entries (the updated locks are
        # uncommitted changes to tracked files: a key of their own)
        return pipeline.evaluate_to_build(self.workspace, self.nix, self.git, targets,
                                          self.systems, only, self.limits, self.environ,
                                          self.cache)

    def build(self, flakes: Sequence[Target],
              only: frozenset[tuple[str, str]] | None = None) -> list[Case]:
        """Evaluate and build as `run` does; one case per attribute (foreign systems skipped)."""
        evals = self.evaluate(flakes, only)
        self.last_evals = evals
        planned = pipeline.plan_of(self.workspace, self.nix, self.systems, evals,
                                   [e.target.flake.id for e in evals],
                                   [case for e in evals for case in e.cases])
        cases = [*planned.cases, *planned.unsupported()]
        if only is not None:
            cases = [case for case in cases if _key(case) in only]
        return cases + pipeline.build_jobs(self.nix, planned.local, self.environ)

    def compare(self, flakes: Sequence[Target], head_evals: Sequence[FlakeEval],
                current: Callable[[], object]) -> Comparison | None:
        """What the proposed locks change against the current ones (the "What changes"
        section); None when that cannot be told. `current()` puts the current locks back."""
        try:
            current()
            base_evals = self.evaluate(flakes)
            # base: HEAD with its committed locks; head: the same tree with the proposed locks
            comparison = changes_mod.compare(base_evals, head_evals, self.head, "update")
            return diff_mod.with_packages(self.nix, comparison,
                                          diff_mod.remembered(*base_evals, *head_evals))
        except CiNixError as err:  # a report section, not worth failing the update for
            log.warning("cannot compare the update with the current locks: %s", err)
            return None


# Applies an update of these inputs to the worktree (from the current locks); returns the flake
# dirs whose lock moved.
Apply = Callable[[tuple[str, ...]], list[str]]


def verify(verifier: Verifier, moved: tuple[str, ...], apply: Apply) -> Verification:
    """Build with every moved input updated; hold back the inputs that break attributes.

    `apply(inputs)` resets the worktree's locks to the current ones and updates those inputs.
    """
    dirs = apply(moved)
    flakes = verifier.affected(dirs)
    log.info("verifying the update of %s: building %s", ", ".join(moved),
             ", ".join(target.flake.id for target in flakes) or "nothing")
    cases = verifier.build(flakes)
    failing = frozenset(_key(case) for case in cases if case.status is Status.FAILED)
    if not failing:
        head_evals = verifier.last_evals
        return Verification(tuple(cases), kept=moved,
                            comparison=verifier.compare(flakes, head_evals, lambda: apply(())))
    apply(())  # the current locks
    baseline = verifier.build(flakes, only=failing)
    regressed = frozenset(_key(case) for case in baseline if case.status is Status.PASSED)
    if not regressed:
        log.info("the failing attributes fail on the current lock too; nothing held back")
        return Verification(tuple(cases), kept=moved)  # head evals are gone: no comparison
    log.warning("%d attributes pass on the current lock and fail with the update; looking for "
                "the inputs responsible", len(regressed))

    def breaks(inputs: tuple[str, ...]) -> list[Case]:
        apply(inputs)
        return [case for case in verifier.build(flakes, only=regressed)
                if case.status is Status.FAILED]

    held = _culprits(moved, breaks)
    kept = tuple(name for name in moved if name not in held)
    held_back = tuple(HeldBack(name, case) for name, found in held.items() for case in found)
    if not kept:
        apply(())
        return Verification(tuple(baseline), held_back, kept)
    dirs = apply(kept)
    flakes = verifier.affected(dirs)
    final = verifier.build(flakes)
    return Verification(tuple(final), held_back, kept,
                        verifier.compare(flakes, verifier.last_evals, lambda: apply(())))


def _culprits(inputs: tuple[str, ...], breaks: Callable[[tuple[str, ...]], list[Case]]
              ) -> dict[str, list[Case]]:
    """Inputs whose update on its own breaks an attribute: one by one when few, else by halves
    (a group that keeps everything green holds no culprit)."""
    if len(inputs) <= SEPARATELY:
        found = {}
        for name in inputs:
            failures = breaks((name,))
            if failures:
                found[name] = failures
        return found
    half = len(inputs) // 2
    found = {}
    for group in (inputs[:half], inputs[half:]):
        if breaks(group):
            found.update(_culprits(group, breaks))
    return found
