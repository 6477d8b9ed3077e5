"""Flakes -> jobs (attr, system, drvPath, outputs), with every failing attribute isolated.

One Nix process per flake when everything evaluates. An error builtins.tryEval cannot catch
aborts that process; the attribute list is then bisected, so k failures among n attributes
cost about k*log2(n) evaluations rather than n. Each failing attribute keeps its own error text.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ci_nix import diagnose, lockfile
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    Failure,
    FailureType,
    FlakeEval,
    Job,
    Status,
    Target,
    attr_display,
)
from ci_nix.tools.nix import AttrPath, HelperAnswer, HelperResult, Nix, NixCommandError
from ci_nix.words import count

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Selection:
    """Which attributes to evaluate; applied to every target."""

    systems: tuple[str, ...]
    outputs: tuple[str, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    only: frozenset[tuple[str, str]] | None = None  # (flake id, attr display), from --only

    @property
    def filtered(self) -> bool:
        return bool(self.include or self.exclude or self.only is not None)

    def wants(self, flake_id: str, path: AttrPath) -> bool:
        name = attr_display(path)
        if self.only is not None and (flake_id, name) not in self.only:
            return False
        if self.include and not any(fnmatch.fnmatchcase(name, glob) for glob in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, glob) for glob in self.exclude)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# target -> the store trees its evaluation reads, each with its workspace repo (origins.Origins.of)
SourcesOf = Callable[[Target], Sequence[diagnose.SourceTree]]


def evaluate(nix: Nix, targets: Sequence[Target], selection: Selection,
             workers: int | None = None, sources: SourcesOf | None = None,
             on_flake: Callable[[FlakeEval], None] | None = None,
             on_start: Callable[[Target], None] | None = None) -> list[FlakeEval]:
    """Evaluate all targets in parallel (bounded), in the order given.

    sources: where each target's store trees come from, asked only for an error that points
    into one; it places positions in the right workspace repo. on_start/on_flake: hear of each
    flake as its evaluation starts and ends (progress).
    """
    def one(target: Target) -> FlakeEval:
        if on_start is not None:
            on_start(target)
        result = _FlakeEvaluator(nix, target, selection, sources).run()
        if on_flake is not None:
            on_flake(result)
        return result

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(one, targets))


class _FlakeEvaluator:
    def __init__(self, nix: Nix, target: Target, selection: Selection,
                 sources: SourcesOf | None = None) -> None:
        self.nix, self.target, self.selection = nix, target, selection
        self.sources = sources
        self.flake_id = target.flake.id
        self.evaluations = 0
        self._lock = threading.Lock()

    def call(self, *, show_trace: bool = False, **args: Any) -> HelperAnswer:
        with self._lock:
            self.evaluations += 1
        overrides = [(o.input, o.ref) for o in self.target.overrides]
        return self.nix.eval_helper(
            self.target.flake.ref,
            {"systems": list(self.selection.systems), "outputs": list(self.selection.outputs),
             **args},
            overrides, show_trace=show_trace,
        )

    def run(self) -> FlakeEval:
        started = time.monotonic()
        cases: list[Case] = []
        results: list[HelperResult] = []
        try:
            lock = lockfile.read(self.target.flake.path / "flake.lock")
        except lockfile.LockError as err:
            # ci-nix's own message names the file and the fix; Nix's would be a parser error.
            cases.append(Case(self.flake_id, FLAKE_CASE, Status.FAILED,
                              failure=Failure(FailureType.EVAL, str(err))))
            return FlakeEval(self.target, (), tuple(cases), 0, time.monotonic() - started)
        try:
            if self.selection.filtered:
                listing = self.call(listOnly=True)
                paths = [p for p in listing.attrs if self.selection.wants(self.flake_id, p)]
                results = self.bisect(paths, known_failing=False) if paths else []
            else:
                try:
                    listing = self.call()
                    results = list(listing.results)
                except NixCommandError:
                    listing = self.call(listOnly=True)
                    results = self.bisect(list(listing.attrs), known_failing=True)
        except NixCommandError as err:
            # Not even the attribute names: flake.nix or flake.lock is broken.
            failure = self.failure(err.stderr)
            cases.append(Case(self.flake_id, FLAKE_CASE, Status.FAILED, failure=failure,
                              time=time.monotonic() - started))
            return FlakeEval(self.target, (), tuple(cases), self.evaluations,
                             time.monotonic() - started)

        stale = self.stale_lock(lock, listing.input_names)
        only = self.selection.only
        if stale is not None and (only is None or (self.flake_id, FLAKE_CASE) in only):
            # The attributes are still built: their results say what the change does.
            cases.append(Case(self.flake_id, FLAKE_CASE, Status.FAILED, failure=stale))
        if only is None:  # --only names attributes, not groups
            results += [self.strict(group) for group in listing.group_errors]
        jobs: list[Job] = []
        for result in results:
            if result.catchable:
                result = self.strict(result.path)
            job_or_case = self.to_job(result)
            if isinstance(job_or_case, Job):
                jobs.append(job_or_case)
            else:
                cases.append(job_or_case)
        elapsed = time.monotonic() - started
        log.debug("evaluated %s: %s, %s, %s in %.1fs", self.flake_id, count(len(jobs), "job"),
                 count(len(cases), "failure"), count(self.evaluations, "evaluation"), elapsed)
        return FlakeEval(self.target, tuple(jobs), tuple(cases), self.evaluations, elapsed)

    def stale_lock(self, lock: lockfile.Lock | None, declared: Sequence[str]) -> Failure | None:
        """A failure when flake.nix declares inputs its committed flake.lock does not lock.

        Nix would lock them on the fly, so CI would test whatever they resolve to today rather
        than what the repository pins.
        """
        if not declared:
            return None
        locked = set(lock.nodes[lock.root].inputs) if lock is not None else set()
        missing = sorted(set(declared) - locked)
        if not missing:
            return None
        subdir = self.target.flake.subdir
        where = f"{subdir}/flake.lock" if subdir else "flake.lock"
        names = ", ".join(f"'{name}'" for name in missing)
        what = "has no flake.lock" if lock is None else f"{where} is out of date with flake.nix"
        return Failure(FailureType.EVAL,
                       f"{self.flake_id} {what}: input {names} is not locked; run `nix flake "
                       "lock` and commit flake.lock",
                       hint="CI evaluates the committed lock; an unlocked input would be "
                       "fetched at whatever version it resolves to today", file=where)

    def bisect(self, paths: list[AttrPath], *, known_failing: bool) -> list[HelperResult]:
        """Evaluate paths; where the whole set fails, split it until each failure stands alone."""
        if not paths:
            return []
        if not known_failing or len(paths) == 1:
            try:
                return list(self.call(select=[list(p) for p in paths]).results)
            except NixCommandError as err:
                if len(paths) == 1:
                    if diagnose.diagnose_eval(err.stderr).line is None:
                        # Nix 2.26 gives an uncatchable error (a type error) no position
                        # without the trace: ask again with it
                        return [self.strict(paths[0])]
                    return [HelperResult(paths[0], stderr=err.stderr)]
        middle = len(paths) // 2
        left = self.bisect(paths[:middle], known_failing=False)
        # The whole set failed: when the left half evaluated cleanly the failure is in the
        # right half, so evaluating that half as a whole would only fail again.
        right_fails = not any(result.failed for result in left)
        return left + self.bisect(paths[middle:], known_failing=right_fails)

    def failure(self, stderr: str) -> Failure:
        """The failure an evaluation error is, placed in the workspace repo it points into."""
        trees = self.sources(self.target) if self.sources and "-source/" in stderr else ()
        return diagnose.eval_failure(stderr, self.target.flake, trees)

    def strict(self, path: AttrPath) -> HelperResult:
        """Evaluate one path without tryEval, to get the error text tryEval swallows."""
        try:
            # With the trace: newer Nix cuts a throw's position off inside ci-nix's helper.
            return self.call(select=[list(path)], strict=True, show_trace=True).results[0]
        except NixCommandError as err:
            return HelperResult(path, stderr=err.stderr)

    def to_job(self, result: HelperResult) -> Job | Case:
        name = attr_display(result.path)
        if result.stderr is not None:
            return Case(self.flake_id, name, Status.FAILED,
                        failure=self.failure(result.stderr))
        if result.error is not None or result.drv_path is None:
            return Case(self.flake_id, name, Status.FAILED, failure=diagnose.simple_eval_failure(
                result.error or "evaluated to no derivation path"))
        if not result.system:
            # A guessed system would be skipped as unsupported or routed nowhere: a false green.
            return Case(self.flake_id, name, Status.FAILED, failure=diagnose.simple_eval_failure(
                f"{name}: cannot tell which system it is for: set nixpkgs.hostPlatform in the "
                "configuration (its toplevel derivation names no system either)"))
        return Job(flake=self.flake_id, attr=result.path, system=result.system,
                   drv_path=result.drv_path, outputs=result.outputs)


def count_evaluations(evals: Sequence[FlakeEval]) -> int:
    return sum(e.evaluations for e in evals)

