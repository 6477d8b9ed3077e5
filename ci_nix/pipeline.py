"""The only place that chains the stages: detect -> evaluate -> build -> push -> report."""

from __future__ import annotations

import difflib
import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from ci_nix import build as build_mod
from ci_nix import changes as changes_mod
from ci_nix import closure, evalcache, outputs, trust
from ci_nix import detect as detect_mod
from ci_nix import diff as diff_mod
from ci_nix import evaluate as evaluate_mod
from ci_nix import inputs as inputs_mod
from ci_nix import origins as origins_mod
from ci_nix import workspace as workspace_mod
from ci_nix.bundle import key as key_mod
from ci_nix.cache import push as push_mod
from ci_nix.cache.backends import Cache, open_cache
from ci_nix.cache.client import Verdict
from ci_nix.cache.skip import CACHED, refused_note, skip_cached
from ci_nix.ci import CiEnv
from ci_nix.closure import Growth
from ci_nix.config import Config, Push
from ci_nix.errors import Cancelled, CiNixError, SelectionError, internal_error
from ci_nix.evaluate import EvalFlags
from ci_nix.mask import mask
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    EvalCost,
    Failure,
    FailureType,
    FlakeEval,
    Job,
    Override,
    Repo,
    RunReport,
    Status,
    Target,
    attr_display,
    parse_attr,
    split_flake_attr,
)
from ci_nix.plan import Plan
from ci_nix.report import changes as changes_report
from ci_nix.report import github, gitlab, json_report, junit, text
from ci_nix.report import progress as live
from ci_nix.tools import machines, proc
from ci_nix.tools.git import Git
from ci_nix.tools.nix import AttrPath, Nix, NixCommandError
from ci_nix.words import count

# images, sbom (CycloneDX) and comment (a forge client) are imported where they are used: a
# run that delivers no image, writes no SBOM and posts no comment (a no-op run is mostly
# Python's start-up) does not load them.
if TYPE_CHECKING:
    from ci_nix import images as images_mod

log = logging.getLogger(__name__)

SBOM_CLASSNAME = "ci-nix.sbom"  # README "SBOM": SBOMs that could not be written


@dataclass(frozen=True)
class PlanOptions:
    """What `matrix` asks for, and what `run` and `diff` plan with: the selection, the
    evaluation limits and the Nix settings, as given on the command line."""

    path: Path = Path(".")
    config_file: Path | None = None
    all: bool = False
    base: str | None = None
    head: str | None = None
    systems: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    locked: bool = False  # --locked: inputs as flake.lock has them, not the workspace checkouts
    pins: tuple[tuple[str, str], ...] = ()  # --pin REPO=SHA: read that commit, not the work tree
    expect: tuple[str, ...] = ()  # run --expect-drv FLAKE#ATTR=DRV: what the plan evaluated
    eval: EvalFlags = EvalFlags()  # --workers, --eval-memory, --eval-timeout
    nix_options: tuple[tuple[str, str], ...] = ()  # --option/--builders/--store
    eval_store: str | None = None


@dataclass(frozen=True)
class DiffOptions(PlanOptions):
    """`diff`: the plan, and where the comparison goes."""

    json: Path | None = None
    comment: bool = False  # post "What changes" as the one PR/MR comment


@dataclass(frozen=True)
class RunOptions(DiffOptions):
    """`run`: the plan, the comparison (--skip-unchanged, --comment), the build and the reports."""

    junit: Path | None = None
    push: bool | None = None
    skip_unchanged: bool = False  # attributes whose drvPath is the base's are not built
    print_build_logs: bool = False  # -L: builder output as it comes, prefixed per attribute
    sbom: Path | None = None  # --sbom DIR: a CycloneDX SBOM per attribute that passed
    push_images: bool | None = None  # --push-images/--no-push-images over images.push
    # --max-closure-growth as given (over max-closure-growth in ci-nix.yaml); parsed in the run,
    # so a bad value is a reported error (one line, exit 2, the JUnit report still written)
    max_closure_growth: str | None = None


class Cancellation:
    """SIGINT/SIGTERM during a run: stop Nix, remember the signal, let the run report."""

    def __call__(self) -> bool:
        return proc.cancelled() is not None

    @property
    def signum(self) -> int | None:
        return proc.cancelled()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # The handler runs in the main thread between two of its bytecodes, which may hold any
        # lock at that moment (the masking lock while it logs a line, a thread being started):
        # taking one here can deadlock the run for good. So the handler only writes the signal
        # to a pipe, a syscall; the watcher thread logs and cancels.
        os.write(self._pipe[1], bytes([signum]))
        # work that holds no lock (reading a captured log) stops here and now, as it asked
        proc.stop_pure_work(signum)

    def _watch(self) -> None:
        while (signum := os.read(self._pipe[0], 1)[0]) != 0:
            if proc.cancelled() is None:
                log.warning("received %s: stopping Nix and writing the report",
                            signal.Signals(signum).name)
                proc.cancel(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        proc.reset_cancellation()  # an earlier run in this process may have been cancelled
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._pipe = os.pipe()
        watcher = threading.Thread(target=self._watch, name="ci-nix-signals", daemon=True)
        watcher.start()
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            # a signal that came meanwhile is handled (the run's exit code) before 0 ends it
            os.write(self._pipe[1], b"\0")
            watcher.join()
            for fd in self._pipe:
                os.close(fd)


@dataclass
class Progress:
    """What a run has established so far; it survives a later stage failing or a signal."""

    suites: list[str] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pending: list[Job] = field(default_factory=list)  # evaluated, not yet decided
    comparison: changes_mod.Comparison | None = None  # with --skip-unchanged: vs the base
    compared: str | None = None
    selected: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    checkout: str | None = None  # the primary repo's name
    repo_dirs: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[tuple[str, tuple[Override, ...]]] = field(default_factory=list)
    locked: bool = False
    # (flake id, attribute) -> what evaluating it cost, for every report of its case
    costs: dict[tuple[str, str], EvalCost] = field(default_factory=dict)
    # flakes with attributes handed to the builder while their evaluation went on, until it
    # ends: stopped meanwhile, the report says the rest of the flake was not evaluated
    unfinished: set[str] = field(default_factory=set)

    def evaluated(self, evals: Sequence[FlakeEval]) -> None:
        """Remember what evaluating each attribute cost (a cached flake evaluated nothing)."""
        self.costs.update({(e.target.flake.id, name): cost for e in evals
                           for name, cost in e.costs})

    def report(self, error: str | None = None) -> RunReport:
        why = "cancelled" if proc.cancelled() else "not built: ci-nix stopped before building"
        cases = self.cases + [Case(j.flake, j.name, Status.SKIPPED, system=j.system,
                                   drv_path=j.drv_path, skip_reason=why)
                              for j in self.pending]
        if error is not None:
            # A flake the run never got to says so, rather than being an empty (green) suite;
            # one whose evaluation was cut short after some attributes were built, too.
            reached = {case.flake for case in cases} - self.unfinished
            why = ("cancelled before it was evaluated" if proc.cancelled()
                   else "not evaluated: ci-nix stopped first")
            cut = ("cancelled before its evaluation ended" if proc.cancelled()
                   else "evaluation not finished: ci-nix stopped first")
            cases += [Case(flake, FLAKE_CASE, Status.SKIPPED,
                           skip_reason=cut if flake in self.unfinished else why)
                      for flake in dict.fromkeys(self.suites) if flake not in reached]
        cases = [replace(c, eval_cost=self.costs.get((c.flake, c.name), c.eval_cost))
                 for c in cases]
        rank = {flake: i for i, flake in enumerate(self.suites)}
        cases.sort(key=lambda c: (rank.get(c.flake, len(rank)), c.name))
        return RunReport(suites=tuple(dict.fromkeys(self.suites)), cases=tuple(cases),
                         error=error, notes=tuple(self.notes), compared=self.compared,
                         selected=tuple(self.selected), checkout=self.checkout,
                         repo_dirs=tuple(self.repo_dirs),
                         inputs=tuple(self.inputs), locked=self.locked)


def parse_only(values: tuple[str, ...],
               flake_ids: Collection[str] = ()) -> frozenset[tuple[str, str]] | None:
    """--only FLAKE#ATTR values as (flake id, normalised attribute)."""
    if not values:
        return None
    return frozenset(_flake_attr("--only", value, flake_ids) for value in values)


def _flake_attr(flag: str, value: str, flake_ids: Collection[str]) -> tuple[str, str]:
    found = split_flake_attr(value, flake_ids)
    if found is None or not found[0] or not found[1]:
        raise SelectionError(f"{flag} {value!r}: expected FLAKE#ATTR, e.g. "
                             "hosts#nixosConfigurations.web")
    return found[0], attr_display(parse_attr(found[1]))


def parse_expect(values: tuple[str, ...],
                 flake_ids: Collection[str] = ()) -> dict[tuple[str, str], str]:
    """--expect-drv FLAKE#ATTR=DRVPATH values: (flake id, attribute) -> the planned drvPath.
    The path is absolute, so the cut is at the last `=/` (an attribute name may hold a `=`)."""
    expected = {}
    for value in values:
        cut = value.rfind("=/")
        if cut <= 0 or not value.endswith(".drv"):
            raise SelectionError(f"--expect-drv {value!r}: expected FLAKE#ATTR=DRVPATH, e.g. "
                                 "hosts#nixosConfigurations.web=/nix/store/…-nixos-system.drv")
        expected[_flake_attr("--expect-drv", value[:cut], flake_ids)] = value[cut + 1:]
    return expected


def check_planned(evals: Sequence[FlakeEval],
                  expected: Mapping[tuple[str, str], str]) -> list[FlakeEval]:
    """Each expected attribute must evaluate to its planned drvPath: one that does not is a
    failure naming both paths and is not built (it is not what the plan vouched for)."""
    if not expected:
        return list(evals)
    missing = _missing(expected, evals)
    if missing:
        flake, attr = missing[0]
        raise SelectionError(f"--expect-drv {flake}#{attr}: not evaluated; select it with "
                             f"--only {flake}#{attr}")
    result = []
    for flake_eval in evals:
        keep, differ = [], []
        for job in flake_eval.jobs:
            planned = expected.get((job.flake, job.name))
            if planned is None or planned == job.drv_path:
                keep.append(job)
                continue
            log.warning("%s#%s: evaluated %s, planned %s", job.flake, job.name, job.drv_path,
                        planned)
            differ.append(Case(job.flake, job.name, Status.FAILED, system=job.system,
                               drv_path=job.drv_path, failure=Failure(
                                   FailureType.OTHER,
                                   f"evaluated {job.drv_path}, but the plan has {planned}",
                                   drv=job.drv_path,
                                   hint="this job's checkouts or inputs differ from the ones "
                                   "`ci-nix matrix` evaluated (another commit, uncommitted "
                                   "changes, or --locked); run the matrix again, or run this "
                                   "entry where its --pin commits exist")))
        result.append(replace(flake_eval, jobs=tuple(keep),
                              cases=(*flake_eval.cases, *differ)))
    return result


def _missing(wanted: Collection[tuple[str, str]],
             evals: Sequence[FlakeEval]) -> list[tuple[str, str]]:
    """The (flake id, attribute) pairs wanted that these evaluations have no result for; a
    broken flake's (_broken) are not missing: nobody can tell whether they exist."""
    seen = {(e.target.flake.id, name) for e in evals
            for name in [j.name for j in e.jobs] + [c.name for c in e.cases]}
    broken = _broken(evals)
    return sorted(pair for pair in set(wanted) - seen if pair[0] not in broken)


def _broken(evals: Sequence[FlakeEval]) -> dict[str, str]:
    """Flake id -> the first line of why, for the flakes that did not even list their
    attributes (flake.nix or flake.lock does not evaluate, an input cannot be had, the listing
    ran out of time or memory): their failed flake.nix case says so."""
    return {e.target.flake.id: (c.failure.message.splitlines() or [""])[0]
            for e in evals if not e.jobs and not e.listed
            for c in e.cases if c.name == FLAKE_CASE and c.failure is not None}


def run(options: RunOptions, environ: Mapping[str, str] = os.environ) -> RunReport:
    """Run the whole job and write the requested reports, whatever happens."""
    cancellation = Cancellation()
    _check_writable(options)
    progress = Progress()
    with cancellation.installed():
        try:
            _run(options, environ, cancellation, progress)
            report = progress.report()
        except CiNixError as err:
            report = progress.report(error=str(err))
        except Exception as err:  # a bug: still report what finished, never show a secret
            log.error("%s", mask(traceback.format_exc()).rstrip())
            report = progress.report(error=mask(internal_error(err)))
    if cancellation.signum is not None:
        # the stop first: a step whose command it killed fails as if its input were bad (git
        # answering nothing reads as "not the root of a git checkout; point 'path:' at …")
        stopped = f"cancelled by signal {cancellation.signum}"
        report = replace(report, error=stopped if report.error in (None, stopped) else
                         f"{stopped} (the step it stopped then failed: {report.error})")
    write_reports(report, options, environ, progress.comparison)
    if cancellation.signum is not None:
        raise Cancelled(cancellation.signum)
    return report


def _run(options: RunOptions, environ: Mapping[str, str], cancelled: Cancellation,
         progress: Progress) -> None:
    given = (Growth.parse(options.max_closure_growth)  # before any work
             if options.max_closure_growth is not None else None)
    nix = Nix.from_env(environ)  # one instance: it remembers the version and the system
    # Builds start as flakes are evaluated, unless what is built waits for the base's drvPaths.
    early = (None if options.skip_unchanged else
             EarlyBuild(environ, cancelled, print_logs=options.print_build_logs))
    try:
        planned = plan(options, environ, progress, nix, early)
        config = planned.workspace.config
        growth = given or config.max_closure_growth
        if options.skip_unchanged or options.comment or growth:
            planned = _skip_unchanged(planned, options, environ, progress)
    except BaseException:
        if early is not None:  # what was handed over is built (or cancelled) and reported
            _settle_early(early, None, progress)
        raise
    progress.cases = [*planned.cases, *planned.unsupported()]
    nix = planned.nix  # with the workspace's and the command line's Nix options
    if early is None:
        progress.pending += planned.local
        if cancelled():
            return
        built = build_jobs(nix, progress.pending, environ, print_logs=options.print_build_logs,
                           cancelled=cancelled)
        progress.pending = []
    else:
        built = _settle_early(early, planned, progress)
        # from here on the plan holds what was handed over too: pushed, SBOMs, images
        known = set(planned.jobs)
        planned = replace(planned, jobs=(*planned.jobs, *(j for j in early.jobs
                                                         if j not in known)),
                          cases=(*planned.cases, *early.skipped))
    built = _with_closure_sizes(nix, planned.local, built)
    progress.cases += built
    evaluated = [job for e in planned.evals for job in e.jobs]
    if growth is not None and progress.comparison is not None:
        progress.cases = _gate_growth(nix, growth, progress.comparison, evaluated,
                                      progress.cases, progress)
    if cancelled():
        return
    if options.sbom is not None:
        progress.cases += write_sboms(nix, planned, built, options.sbom, progress.notes)
    pushed = push_mod.push(planned.cache, options.push, planned.local,
                           built, nix, environ)
    progress.cases += pushed.cases
    progress.notes += pushed.notes
    if cancelled():
        return
    if not config.images.attrs:
        return  # no images: no registry code loaded, no git call for tags
    from ci_nix import images as images_mod

    delivered = images_mod.deliver(
        config.images, options.push_images, evaluated, progress.cases, nix,
        _revision(planned, options, environ),
        pull_request=trust.side(options.base, environ).pull_request, environ=environ)
    progress.cases = [*delivered.cases, *delivered.failures]
    progress.notes += delivered.notes


def _settle_early(early: EarlyBuild, planned: Plan | None, progress: Progress) -> list[Case]:
    """Build the plan's jobs after the handed-over ones and wait for all: the build cases.
    What was handed over and skipped (cached) goes into `progress`, and what was never built
    (cancelled, or the builder failed: raised here) into its pending jobs."""
    fed = early.finish(planned)
    progress.notes += early.notes
    progress.cases += early.skipped
    progress.pending += fed.unbuilt
    if planned is not None and fed.error is None:
        return list(fed.cases)
    progress.cases += fed.cases
    if planned is not None and fed.error is not None:
        raise fed.error
    return []


def _with_closure_sizes(nix: Nix, jobs: Sequence[Job], cases: Sequence[Case]) -> list[Case]:
    """Each built attribute's runtime closure size (one `path-info` call for all)."""
    outputs: dict[tuple[str, str, str | None], tuple[str, ...]] = {
        (j.flake, j.name, j.system): j.out_paths for j in jobs}
    passed = [outputs[key] for c in cases if c.status is Status.PASSED
              and (key := (c.flake, c.name, c.system)) in outputs]
    found = closure.sizes(nix, passed, substituters=False, built=True)
    sized = []
    for case in cases:
        got = found.get(tuple(outputs.get((case.flake, case.name, case.system), ())))
        sized.append(replace(case, closure_size=got.size) if got is not None
                     and case.status is Status.PASSED else case)
    return sized


def _gate_growth(nix: Nix, limit: Growth, comparison: changes_mod.Comparison,
                 jobs: Sequence[Job], cases: Sequence[Case], progress: Progress) -> list[Case]:
    """--max-closure-growth: an attribute built (or found in the cache) whose runtime closure
    grew past the limit against the base's fails (type other), naming both sizes and the
    largest new paths. A cached one is checked too: a re-run must not turn the gate green."""
    base_of = {(a.flake, a.attr): a.base_drv for a in comparison.of(changes_mod.Change.CHANGED)
               if a.base_drv is not None}
    outputs = {(j.flake, j.name): j.out_paths for j in jobs}
    checked = {(c.flake, c.name): base_of[(c.flake, c.name)] for c in cases
               if (c.status is Status.PASSED or c.status is Status.SKIPPED
                   and (c.skip_reason or "").startswith(CACHED))
               and (c.flake, c.name) in base_of
               and (c.flake, c.name) in outputs}
    if not checked:
        return list(cases)
    failed, unknown = closure.gate(nix, limit, [(base, outputs[key])
                                                for key, base in checked.items()])
    if unknown:
        names = sorted(f"{flake}#{attr}" for (flake, attr), base in checked.items()
                       if base in unknown)
        progress.notes.append(f"max-closure-growth: not checked for {', '.join(names)}: the "
                              "base's outputs are in no store or binary cache ci-nix can read "
                              "(build the base once, or push it to the cache)")
    result = []
    for case in cases:
        base = checked.get((case.flake, case.name))
        message = failed.get(base) if base is not None else None
        result.append(case if message is None else replace(
            case, status=Status.FAILED, skip_reason=None, failure=Failure(
                FailureType.OTHER, message, drv=case.drv_path,
                hint=f"the outputs were built; raise max-closure-growth ({limit.text}) if the "
                "growth is intended, or drop what pulled these paths in")))
    return result


def _revision(planned: Plan, options: RunOptions, environ: Mapping[str, str]
              ) -> images_mod.Revision:
    """The commit and branch image tags are made of."""
    from ci_nix import images as images_mod

    primary = planned.workspace.primary or planned.workspace.repos[0]
    git = Git.from_env(environ)
    branch = CiEnv.detect(environ).branch
    if branch is None and options.head is None:
        found = git.run(primary.path, ["symbolic-ref", "--quiet", "--short", "HEAD"])
        branch = found.stdout.strip() if found.ok else None
    return images_mod.Revision(git.commit(primary.path, options.head or "HEAD"), branch)


def build_jobs(nix: Nix, jobs: Sequence[Job], environ: Mapping[str, str] = os.environ, *,
               print_logs: bool = False, cancelled: Callable[[], bool] = lambda: False
               ) -> list[Case]:
    """The build stage, as `run` and `update --verify` do it: one `nix build` of the jobs, with
    live progress; one case per job, timed."""
    log.info("building %s", count(len(jobs), "attribute"))
    monitor = live.BuildMonitor(list(jobs), live.Display.for_stream(sys.stderr, environ),
                                print_logs=print_logs, interval=live.interval_of(environ))
    with monitor.running():
        outcome = build_mod.build(nix, jobs, cancelled=cancelled, on_event=monitor.event)
    monitor.finish(outcome.cases)
    return monitor.timed(outcome.cases)


def write_sboms(nix: Nix, planned: Plan, built: Sequence[Case], directory: Path,
                notes: list[str]) -> list[Case]:
    """`run --sbom DIR`: an SBOM of each attribute that passed, and of each cached one whose
    outputs happen to be in this machine's store (the others are named in a note); a failed
    `ci-nix.sbom` case when they could not be written."""
    passed = {(case.flake, case.name) for case in built if case.status is Status.PASSED}
    jobs = [job for e in planned.evals for job in e.jobs]
    ready = [job for job in jobs if (job.flake, job.name) in passed]
    cached = {(case.flake, case.name) for case in planned.cases
              if case.status is Status.SKIPPED and case.skip_reason == CACHED}
    others = [job for job in jobs if (job.flake, job.name) in cached]
    try:
        valid = nix.valid_paths([p for job in others for p in job.out_paths])
        here = [job for job in others if set(job.out_paths) <= valid]
        missing = [job for job in others if job not in here]
        if missing:
            notes.append(f"--sbom: no SBOM for {count(len(missing), 'cached attribute')} "
                         f"(e.g. {missing[0].flake}#{missing[0].name}): its outputs are in "
                         "the binary cache, not in this machine's store")
        from ci_nix import sbom as sbom_mod  # CycloneDX: loaded only for --sbom

        sbom_mod.write(nix, [*ready, *here], directory,
                       images=planned.workspace.config.images)
    except (CiNixError, OSError) as err:
        problem = err.strerror if isinstance(err, OSError) else str(err)
        return [Case(SBOM_CLASSNAME, "sbom", Status.FAILED, failure=Failure(
            FailureType.OTHER, f"SBOMs not written to {directory}: {problem}"))]
    return []


def _skip_unchanged(planned: Plan, options: RunOptions, environ: Mapping[str, str],
                    progress: Progress) -> Plan:
    """Jobs whose derivation is the base's are skipped `unchanged`: the precise rebuild set."""
    try:
        comparison = compare_with_base(planned, options, environ)
    except Cancelled:
        raise
    except CiNixError as err:
        # the comparison only narrows the build: without it, everything is built as usual
        if not (options.skip_unchanged or options.comment):
            progress.notes.append(f"max-closure-growth: not checked: {err}")
            return planned
        flag = "--skip-unchanged" if options.skip_unchanged else "--comment"
        progress.notes.append(f"{flag}: {err}; building everything")
        return planned
    progress.comparison = comparison
    if not options.skip_unchanged:
        return planned
    unchanged = comparison.unchanged_keys
    return planned.skip([job for job in planned.jobs if (job.flake, job.name) in unchanged],
                        "unchanged: same derivation as at the base "
                        + comparison_base(comparison))


def plan(options: PlanOptions, environ: Mapping[str, str] = os.environ,
         progress: Progress | None = None, nix: Nix | None = None,
         early: EarlyBuild | None = None, later: evalcache.Pending | None = None,
         beside: Callable[[Plan, Sequence[Target]], None] | None = None) -> Plan:
    """Detection, selection, systems and evaluation: what `run` builds and `matrix` fans out.
    With `early`, each attribute goes to its builder as its evaluation returns a derivation
    (see _Handover); the Plan returned then holds only the jobs it was not given. later: the
    evaluation cache's new entries wait for it (evalcache.evaluate). beside: told the plan so
    far (no evaluations) and the targets once their workers report (after the evaluation
    where none runs)."""
    progress = Progress() if progress is None else progress
    nix = binary = nix or Nix.from_env(environ)
    git = Git.from_env(environ)
    opened: list[Cache | None] = []
    waits: list[Callable[[], None]] = []

    def settled(config: Config, repos: tuple[Repo, ...]) -> None:
        # Before any Nix runs (it would see a pull request's key file or program) and before
        # evaluating, so that a bad cache URL or token costs nothing and loses nothing.
        paths = [repo.path for repo in repos]
        opened.append(open_cache(config.cache, environ, paths,
                                 pushing=isinstance(options, RunOptions)
                                 and push_mod.push_mode(config.cache, options.push) != Push.NONE))
        key_mod.check_nix_settings(config.nix_options, options.nix_options, options.eval_store,
                                   paths)
        # Nix's answers that the plan needs come while git reads the repos (proc.ahead): its
        # version, and its settings as they are without options (those of a workspace with no
        # nix-options and no --option; with them, asked again with them)
        waits.append(proc.ahead(lambda: binary.version if config.nix_options
                                or options.nix_options or options.eval_store
                                else binary.current_system))

    loaded = workspace_mod.load(options.path, git, options.config_file,
                                trust.side(options.base, environ), settled)
    ws = inputs_mod.as_evaluated(loaded, git, options.head, options.pins)
    flake_ids = {flake.id for flake in ws.flakes}
    only = parse_only(options.only, flake_ids)
    expected = parse_expect(options.expect, flake_ids)
    progress.checkout = ws.primary.name if ws.primary is not None else None
    progress.repo_dirs = [(repo.name, str(repo.path.resolve())) for repo in ws.repos]
    if only is not None:
        unknown = sorted({flake for flake, _ in only} - {f.id for f in ws.flakes})
        if unknown:
            raise SelectionError(f"--only: no flake {unknown[0]!r} in the workspace; flakes: "
                                 + ", ".join(f.id for f in ws.flakes))
    [cache] = opened
    # ci-nix.yaml's nix-options first, so the command line's --option overrides them.
    for wait in waits:
        wait()  # with_options hands the version on when it is known
    nix = nix.with_options((*ws.config.nix_options, *options.nix_options), options.eval_store)
    configured_nix = nix
    configured = proc.ahead(lambda: configured_nix.current_system)  # Nix's settings
    log.info("workspace %s: %s, %s (%s)", ws.root, count(len(ws.repos), "repo"),
             count(len(ws.flakes), "flake"), nix.version)
    # --only narrows detection rather than replacing it: a matrix job still builds a dependent
    # against the changed checkout (its overrides come from detection).
    detection = detect_mod.select(ws, git, all=options.all, base=options.base, head=options.head,
                                  only={flake for flake, _ in only or ()}, environ=environ)
    progress.notes += detection.notes
    progress.compared = detection.compared(ws)
    progress.selected += [(t.flake.id, t.reasons) for t in detection.targets]
    progress.selected += [(t.flake.id, (*t.reasons, detect_mod.PRUNED)) for t in detection.pruned]
    # What decides a derivation: the checkouts (and --locked), never the base.
    locked = options.locked or ws.config.locked
    states = inputs_mod.checkouts(ws, git)
    inputs_mod.check_readable(ws, states, nix.version)
    # flakes path rules leave out are evaluated too: their drvPaths decide (_confirm_pruned)
    targets = inputs_mod.with_workspace_inputs(ws, git, (*detection.targets, *detection.pruned),
                                               states, locked=locked)
    progress.locked = locked
    progress.inputs += [(t.flake.id, t.overrides) for t in targets if t.overrides]
    progress.suites += [t.flake.id for t in targets]
    progress.suites += [f.id for f, _ in detection.unaffected]
    progress.cases += [Case(flake.id, FLAKE_CASE, Status.SKIPPED, skip_reason=f"unaffected: {why}")
                       for flake, why in detection.unaffected]

    configured()
    systems = options.systems or ws.config.systems or (nix.current_system,)
    limits = options.eval.limits(ws.config.eval)
    remembered = eval_cache(options.eval, ws, environ)
    skeleton = replace(plan_of(ws, nix, tuple(systems), (), progress.suites, ()),
                       checkouts=tuple(states.values()), locked=locked, limits=limits,
                       cache=cache, merge_bases=detection.merge_bases)
    # flakes path rules left out wait for their comparison with the base
    handover = (None if early is None else
                _Handover(early, skeleton, expected, {t.flake.id for t in detection.pruned},
                          progress.unfinished))
    named = _Named(only, expected, handover) if only or expected else None
    # beside's work waits until the workers run: before that, this thread's own Python work
    # (the head's cache lookup, the workers' start) is what they wait for
    told: list[Callable[[], None]] = [] if beside is None else [
        lambda: beside(skeleton, targets)]
    evals = evaluate_targets(ws, nix, git, targets, tuple(systems), only, limits, environ,
                             remembered, tuple(states.values()), later=later,
                             on_started=lambda: _first(told),
                             display=early.display if early is not None else None,
                             on_flake=(named.flake if named is not None else
                                       handover.flake if handover is not None else None),
                             on_job=handover.job if handover is not None else None,
                             on_listed=named.listed if named is not None else None,
                             beside=early.doing if early is not None else None)
    _first(told)  # no worker ran (every flake from the evaluation cache): now
    if only is not None:
        broken = _broken(evals)
        progress.notes += [f"--only {flake}#{attr}: not evaluated: the flake {flake} is broken "
                           f"({broken[flake]}); fix it first (the {flake}#{FLAKE_CASE} failure "
                           "has Nix's error)" for flake, attr in sorted(only) if flake in broken]
        missing = _missing(only, evals)
        if missing:
            flake, attr = missing[0]
            raise _no_such_attribute(flake, attr, [name for e in evals
                                                   if e.target.flake.id == flake
                                                   for name in e.listed])

    evals = check_planned(evals, expected)
    progress.evaluated(evals)
    for flake_eval in evals:
        progress.cases += flake_eval.cases
    handed = handover.jobs if handover is not None else set()
    planned = replace(skeleton, evals=tuple(evals), cases=tuple(progress.cases),
                      jobs=tuple(job for e in evals for job in e.jobs if job not in handed))
    if detection.pruned:
        planned = _confirm_pruned(planned, {t.flake.id for t in detection.pruned}, options,
                                  environ, progress)
    # What the binary cache already has is reported as skipped ("cached"), not built.
    planned, notes = skip_cached(planned)
    progress.notes += notes
    if any(e.cached for e in planned.evals):
        planned = _settle_cached(planned, git, only, options, environ, remembered, progress)
    return planned


def _no_such_attribute(flake: str, attr: str, listed: Sequence[str]) -> SelectionError:
    """--only FLAKE#ATTR naming an attribute the flake does not list, with the nearest ones."""
    near = nearest_attrs(attr, listed)
    guess = ("did you mean " + " or ".join(f"{flake}#{name}" for name in near) + "? "
             if near else "")
    return SelectionError(f"--only {flake}#{attr}: no such attribute; {guess}"
                          f"`ci-nix matrix --format json` lists what can be built")


class _Named:
    """The attributes --only and --expect-drv name, checked as each flake's names become known
    (its listing, its evaluation cache entry, or its evaluation's end): one that a flake does
    not have stops the evaluation there with plan()'s own error (exit 2), before the other
    flakes' attributes are evaluated; nothing is built: the handover holds every job until all
    flakes are listed, and is stopped here first. Names a listing cannot settle (flake.nix's
    own case) wait for the end, and stop the handover meanwhile."""

    def __init__(self, only: frozenset[tuple[str, str]] | None,
                 expected: Mapping[tuple[str, str], str], handover: _Handover | None) -> None:
        self.only, self.expected, self.handover = only or frozenset(), expected, handover

    def _wanted(self, flake: str) -> list[tuple[str, str]]:
        return sorted(key for key in {*self.only, *self.expected} if key[0] == flake)

    def _stop(self) -> None:
        if self.handover is not None:
            self.handover.stopped = True

    def _fail(self, flake: str, attr: str, listed: Sequence[str]) -> SelectionError:
        self._stop()
        if (flake, attr) in self.only:
            return _no_such_attribute(flake, attr, listed)
        return SelectionError(f"--expect-drv {flake}#{attr}: not evaluated; select it with "
                              f"--only {flake}#{attr}")

    def listed(self, target: Target, attrs: Sequence[AttrPath]) -> None:
        flake = target.flake.id
        names = [attr_display(path) for path in attrs]
        for key in self._wanted(flake):
            if key[1] == FLAKE_CASE:
                self._stop()
            elif key[1] not in names:
                log.info("%s: its attributes are listed without %s: the evaluation stops",
                         flake, key[1])
                raise self._fail(flake, key[1], names)

    def flake(self, flake_eval: FlakeEval) -> None:
        if self.handover is not None:
            self.handover.flake(flake_eval)
        flake = flake_eval.target.flake.id
        missing = _missing(self._wanted(flake), [flake_eval])
        if missing:
            self._stop()
        attr = next((attr for _, attr in missing if attr != FLAKE_CASE), None)
        if attr is not None:
            raise self._fail(flake, attr, flake_eval.listed)


def _first(calls: list[Callable[[], None]]) -> None:
    """Call what calls holds, the first time only (from any thread: pop is atomic)."""
    try:
        call = calls.pop()
    except IndexError:
        return
    call()


class _Handover:
    """What a run that builds while it evaluates hands to `early`: each attribute as its
    evaluation returns a derivation (evaluate's on_job), unless --expect-drv plans another one
    (check_planned then fails it). Where --only or --expect-drv name attributes, nothing is
    handed over before every flake's attributes are listed (evaluate's on_listed): a flake
    without one of those attributes stops the handing over (_Named, which checks the names),
    and plan() then fails (exit 2) with nothing built. Flakes in `held` are not handed over."""

    def __init__(self, early: EarlyBuild, skeleton: Plan,
                 expected: Mapping[tuple[str, str], str], held: Collection[str],
                 unfinished: set[str] | None = None) -> None:
        self.early, self.skeleton, self.expected, self.held = early, skeleton, expected, held
        self.jobs: set[Job] = set()  # handed over: the plan leaves them out
        self.stopped = False  # by _Named: a flake lacks a name the selection gives
        # flakes with jobs handed over whose evaluation has not ended (Progress.unfinished)
        self.unfinished = unfinished if unfinished is not None else set()

    def job(self, target: Target, job: Job) -> None:
        planned = self.expected.get((job.flake, job.name))
        if (self.stopped or target.flake.id in self.held or job in self.jobs
                or planned is not None and planned != job.drv_path):
            return
        self.jobs.add(job)
        self.unfinished.add(target.flake.id)
        self.early.take(replace(self.skeleton, jobs=(job,)))

    def flake(self, flake_eval: FlakeEval) -> None:
        self.unfinished.discard(flake_eval.target.flake.id)


class EarlyBuild:
    """A run's builds while it evaluates (README "How `run` works"): each attribute, as its
    evaluation returns a derivation, is checked against the binary cache and handed to one
    builder (build.Feed), while the others are still evaluated; what the plan keeps (flakes
    from the evaluation cache, ones path rules left out) follows when the plan is done."""

    def __init__(self, environ: Mapping[str, str], cancelled: Callable[[], bool], *,
                 print_logs: bool = False) -> None:
        self.display = live.Display.for_stream(sys.stderr, environ)
        self.monitor = live.BuildMonitor([], self.display, print_logs=print_logs,
                                         interval=live.interval_of(environ))
        self.cancelled = cancelled
        self.feed = build_mod.Feed(self._batch)
        self._lock = threading.Lock()
        self._skeleton: Plan | None = None
        self._checked: set[Job] = set()  # asked of the binary cache already (by plan())
        self.jobs: list[Job] = []  # handed over and not cached: built, or to be built
        self.skipped: list[Case] = []  # handed over and not built: cached, unsupported system
        self.notes: list[str] = []
        self._built = 0  # derivations Nix ran a builder for
        self._earlier = build_mod.Earlier()  # what failed in a batch is not built again
        self._refused: Counter[Verdict] = Counter()  # outputs the cache has, Nix would not take
        # each evaluated job's outputs: a batch that builds one as a dependency checks them
        # without reading its .drv (build.build's outputs_of)
        self._outputs: dict[str, tuple[str, ...]] = {}

    def doing(self) -> str:
        """The builds, for the evaluation's status line while they overlap it ("" before)."""
        return self.monitor.doing() if self.feed.started else ""

    def take(self, part: Plan) -> None:
        """Evaluated jobs, as a Plan (for the run's Nix and binary cache)."""
        with self._lock:
            self._skeleton = part
            self._outputs.update((job.drv_path, job.out_paths) for job in part.jobs)
        self.feed.submit(part.jobs)

    def _outputs_of(self, drv: str) -> tuple[str, ...] | None:
        with self._lock:
            return self._outputs.get(drv)

    def finish(self, planned: Plan | None) -> build_mod.Fed:
        """The plan's own jobs (their cache already asked) after the handed-over ones; once
        everything is built, every case. None: nothing more (the plan failed)."""
        if planned is not None:
            with self._lock:
                self._skeleton = self._skeleton or planned
                self._checked.update(planned.local)
            self.feed.submit(planned.local)
        with self.monitor.running():
            fed = self.feed.wait()
        asked = self._skeleton or planned
        cache = asked.cache if asked is not None else None
        if self._refused and cache is not None and cache.substituter is not None:
            self.notes.append(refused_note(cache.substituter, self._refused))
        if fed.batches > 1:  # the totals, in build.build's words
            status = Counter(case.status for case in fed.cases)
            log.info("built %s for %s: %d passed, %d failed", count(self._built, "derivation"),
                     count(len(fed.cases), "attribute"), status[Status.PASSED],
                     status[Status.FAILED])
        return fed

    def _batch(self, jobs: Sequence[Job]) -> list[Case]:
        with self._lock:
            skeleton = self._skeleton
            checked = [job for job in jobs if job in self._checked]
        assert skeleton is not None
        todo = tuple(job for job in jobs if job not in checked)
        sub, notes = skip_cached(replace(skeleton, jobs=todo, cases=()), self._refused) \
            if todo else (replace(skeleton, jobs=(), cases=()), [])
        ready = [*sub.local, *checked]
        with self._lock:
            self.notes += [note for note in notes if note not in self.notes]
            self.skipped += [*sub.cases, *sub.unsupported()]
            self.jobs += ready
        if not ready:
            return []
        log.info("building %s", count(len(ready), "attribute"))
        self.monitor.add(ready)
        outcome = build_mod.build(skeleton.nix, ready, cancelled=self.cancelled,
                                  on_event=self.monitor.event, earlier=self._earlier,
                                  outputs_of=self._outputs_of)
        self.monitor.finish(outcome.cases)
        with self._lock:
            self._built += len(outcome.built)
        return self.monitor.timed(outcome.cases)


def eval_cache(flags: EvalFlags, ws: workspace_mod.Workspace,
               environ: Mapping[str, str]) -> evalcache.Settings:
    """The evaluation cache a command uses: --no-eval-cache / --verify-eval-cache over
    'eval.cache' in ci-nix.yaml."""
    settings = evalcache.Settings.resolve(flags.cache, ws.config.eval.cache,
                                          flags.verify_cache, environ)
    if settings.directory is not None:
        problem = evalcache.tracked(settings.directory, [repo.path for repo in ws.repos],
                                    Git.from_env(environ))
        if problem is not None:
            log.warning("evaluation cache %s not used: %s; keep it out of the repositories "
                        "(README: Evaluation cache)", settings.directory, problem)
            return replace(settings, directory=None)
    return settings


def _settle_cached(planned: Plan, git: Git, only: frozenset[tuple[str, str]] | None,
                   options: PlanOptions, environ: Mapping[str, str], cache: evalcache.Settings,
                   progress: Progress) -> Plan:
    """Attributes from the evaluation cache: `cached` ones say where they came from; ones to
    build keep their cached drvPaths when the .drv files are in the local store, and their
    flakes are evaluated again when not (an entry alone never decides what is built)."""
    hits = {e.target.flake.id for e in planned.evals if e.cached}
    note = f"{CACHED} (from the evaluation cache)"
    cases = tuple(replace(c, skip_reason=note) if c.flake in hits and c.skip_reason == CACHED
                  else c for c in planned.cases)
    planned = replace(planned, cases=cases)
    pending = [job for job in planned.jobs if job.flake in hits]
    if not pending:
        return planned
    again = without_derivations(planned.nix, pending)
    if not again:
        return planned
    evals = [e for e in planned.evals if e.target.flake.id in again]
    fresh = evaluate_targets(planned.workspace, planned.nix, git, [e.target for e in evals],
                             planned.systems, only, planned.limits, environ,
                             replace(cache, read=False, verify=False), planned.checkouts)
    fresh = check_planned(fresh, parse_expect(options.expect,
                                              {f.id for f in planned.workspace.flakes}))
    new_cases = [c for e in fresh for c in e.cases]
    progress.evaluated(fresh)
    progress.cases = [c for c in progress.cases if c.flake not in again] + new_cases
    sub, notes = skip_cached(replace(planned, evals=tuple(fresh),
                                     jobs=tuple(j for e in fresh for j in e.jobs), cases=()))
    progress.notes += notes
    return replace(planned,
                   evals=tuple(next((f for f in fresh if f.target == e.target), e)
                               for e in planned.evals),
                   jobs=tuple(j for j in planned.jobs if j.flake not in again) + sub.jobs,
                   cases=tuple(c for c in planned.cases if c.flake not in again)
                   + tuple(new_cases) + sub.cases)


def without_derivations(nix: Nix, jobs: Sequence[Job]) -> set[str]:
    """The flakes of these jobs (from the evaluation cache, to be built) with a .drv file not
    in the local store: a build needs it, so they are evaluated again."""
    drvs = {job.drv_path for job in jobs}
    try:
        present = nix.valid_paths(drvs, derivations=True)
    except NixCommandError:
        present = set()  # Nix 2.8 fails on a missing path rather than saying so
    again = {job.flake for job in jobs if job.drv_path not in present}
    if again:
        log.info("evaluation cache: %s not in the local store; evaluating %s again",
                 count(len(drvs - present), "derivation"), ", ".join(sorted(again)))
    elif jobs:
        log.info("evaluation cache: building %s from cached derivations",
                 count(len(jobs), "attribute"))
    return again


def evaluate_to_build(ws: workspace_mod.Workspace, nix: Nix, git: Git,
                      targets: Sequence[Target], systems: tuple[str, ...],
                      only: frozenset[tuple[str, str]] | None, limits: evaluate_mod.Limits,
                      environ: Mapping[str, str], cache: evalcache.Settings
                      ) -> list[FlakeEval]:
    """evaluate_targets for a build of every job (`update --verify`): a flake from the
    evaluation cache whose .drv files are not all in the local store is evaluated again."""
    evals = evaluate_targets(ws, nix, git, targets, systems, only, limits, environ, cache)
    again = without_derivations(nix, [job for e in evals if e.cached for job in e.jobs])
    if not again:
        return evals
    fresh = {e.target: e for e in evaluate_targets(
        ws, nix, git, [e.target for e in evals if e.target.flake.id in again], systems, only,
        limits, environ, replace(cache, read=False, verify=False))}
    return [fresh.get(e.target, e) for e in evals]


def evaluate_targets(ws: workspace_mod.Workspace, nix: Nix, git: Git,
                     targets: Sequence[Target], systems: tuple[str, ...],
                     only: frozenset[tuple[str, str]] | None, limits: evaluate_mod.Limits,
                     environ: Mapping[str, str] = os.environ,
                     cache: evalcache.Settings | None = None,
                     checkouts: Sequence[inputs_mod.Checkout] = (), *,
                     later: evalcache.Pending | None = None,
                     on_started: Callable[[], None] | None = None,
                     display: live.Display | None = None,
                     on_flake: Callable[[FlakeEval], None] | None = None,
                     on_job: evaluate_mod.OnJob | None = None,
                     on_listed: evaluate_mod.OnListed | None = None,
                     beside: Callable[[], str] | None = None) -> list[FlakeEval]:
    """The evaluation stage, as `run`, `matrix`, `diff` and `update --verify` do it: the
    workspace config's selection and the given limits, with live progress (on `display`, which
    a run's builds share); flakes the evaluation cache has (`cache`, when given) start no
    evaluation worker. on_flake hears of each flake evaluated, as its evaluation ends; on_job
    of each attribute that evaluated to a derivation, as it did (not of cached flakes); given
    on_listed (each evaluated flake's attribute names as they are listed), on_job hears of none
    before every flake is listed and on_flake hears of the cached flakes first; beside: what
    else runs meanwhile (a run's builds), for the status line; later: see evalcache.evaluate;
    on_started: called as the workers report progress (on each report: it must be cheap)."""
    log.info("evaluating %s for %s", count(len(targets), "flake"), ", ".join(systems))
    selection = _selection(ws, systems, only)

    def evaluate(todo: Sequence[Target]) -> list[FlakeEval]:
        # an evaluation error's position belongs to the repo its store tree came from
        origins = origins_mod.Origins(nix, detect_mod.workspace_flake_of(ws, git))
        monitor = live.EvalMonitor(len(todo),
                                   display or live.Display.for_stream(sys.stderr, environ),
                                   interval=live.interval_of(environ), beside=beside)
        monitor.workers = limits.workers or evaluate_mod.default_workers()

        def done(result: FlakeEval) -> None:
            monitor.flake_done(result)
            if on_flake is not None:
                on_flake(result)

        def progress(target: Target, done: int, total: int) -> None:
            monitor.attr_progress(target, done, total)
            if on_started is not None:
                on_started()

        with monitor.running():
            return evaluate_mod.evaluate(nix, todo, selection, limits, sources=origins.of,
                                         on_flake=done,
                                         on_start=monitor.flake_started,
                                         on_attr=progress, on_job=on_job,
                                         on_listed=on_listed)

    # the repos' states as the plan read them: the cache's keys need no second look
    known, trees = _known_states(ws, checkouts)
    evals = evalcache.evaluate(targets, selection, cache, nix, git, evaluate, known, trees,
                               on_hit=on_flake if on_listed is not None else None, later=later)
    # tests and benchmarks read this line: "evaluated N flakes with M Nix evaluations"
    log.info("evaluated %s with %s", count(len(evals), "flake"),
             count(evaluate_mod.count_evaluations(evals), "Nix evaluation"))
    return evals


def _known_states(ws: workspace_mod.Workspace, checkouts: Sequence[inputs_mod.Checkout]
                  ) -> tuple[dict[str, tuple[str | None, bool]], dict[str, str]]:
    """The repos' states as the plan read them, for the evaluation cache's keys (no second
    look): repo directory -> (commit, dirty), and commit -> tree."""
    paths = {repo.name: str(repo.path.resolve()) for repo in ws.repos}
    known = {paths[c.repo]: (c.rev, c.dirty) for c in checkouts if c.repo in paths}
    trees = {c.rev: c.tree for c in checkouts if c.rev is not None and c.tree is not None}
    return known, trees


def plan_of(ws: workspace_mod.Workspace, nix: Nix, systems: tuple[str, ...],
            evals: Sequence[FlakeEval], suites: Sequence[str], cases: Sequence[Case]) -> Plan:
    """The evaluated jobs as a Plan: what this machine (and its remote builders) can build."""
    if machines.systems(nix.builders):
        log.info("remote builders: %s", "; ".join(
            f"{m.uri} ({','.join(m.systems)})" for m in nix.builders if m.enabled))
    return Plan(workspace=ws, nix=nix, suites=tuple(dict.fromkeys(suites)), systems=systems,
                current_system=nix.current_system, buildable=nix.buildable,
                remote_systems=nix.buildable - nix.platforms - {nix.current_system},
                evals=tuple(evals), jobs=tuple(job for e in evals for job in e.jobs),
                cases=tuple(cases))


def nearest_attrs(attr: str, names: Sequence[str]) -> list[str]:
    """The listed attributes closest to a misspelt one: its siblings by their last name (the
    shared `packages.x86_64-linux.` would make every sibling look close); with no sibling (a
    misspelt system or output), whole names."""
    parent, _, leaf = attr.rpartition(".")
    siblings = {name.rpartition(".")[2]: name for name in names
                if name.rpartition(".")[0] == parent}
    if siblings:
        return [siblings[name] for name in difflib.get_close_matches(leaf, list(siblings), n=3)]
    return difflib.get_close_matches(attr, list(names), n=3, cutoff=0.8)


def _selection(ws: workspace_mod.Workspace, systems: tuple[str, ...],
               only: frozenset[tuple[str, str]] | None) -> evaluate_mod.Selection:
    return evaluate_mod.Selection(systems=systems, outputs=ws.config.outputs,
                                  include=ws.config.include, exclude=ws.config.exclude, only=only)


def _confirm_pruned(planned: Plan, pruned: set[str], options: PlanOptions,
                    environ: Mapping[str, str], progress: Progress) -> Plan:
    """Path rules left these flakes out, yet a changed file is in their source: skip only the
    attributes whose derivation is the base's; the rest are built like any selected one."""
    evals = [e for e in planned.evals if e.target.flake.id in pruned]
    try:
        base, base_evals = _evaluate_base(planned, evals, options, environ)
    except Cancelled:
        raise
    except CiNixError as err:
        names = ", ".join(sorted(pruned))
        progress.notes.append(f"cannot evaluate {names} at the base to confirm that path rules "
                              f"may leave them out ({err}); building them")
        return planned
    same = changes_mod.compare(base_evals, evals, base.sha, None).unchanged_keys
    planned = replace(planned, base_evals=planned.base_evals + tuple(base_evals))
    return planned.skip([job for job in planned.jobs if (job.flake, job.name) in same],
                        f"unaffected: {detect_mod.PRUNED_SAME} {base.describe()}")


def comparison_base(comparison: changes_mod.Comparison) -> str:
    """The base a comparison was made at: the primary repo's commit, or per repo where
    several repos have a base checkout."""
    at_base = [r for r in comparison.repos if not r.as_checked_out]
    if len(at_base) < 2:
        return comparison.base[:12]
    return ", ".join(f"{r.repo} {r.base[:12]}" for r in at_base)


def _evaluate_base(planned: Plan, evals: Sequence[FlakeEval], options: PlanOptions,
                   environ: Mapping[str, str], looked_up: BaseLookup | None = None
                   ) -> tuple[diff_mod.Base, list[FlakeEval]]:
    """The head's flakes evals evaluated at the merge-base, with the run's selection and limits;
    flakes the plan already evaluated there are not evaluated again. Raises SelectionError when
    there is no base. looked_up: the evaluation cache asked while the head evaluated."""
    git = Git.from_env(environ)
    revs = detect_mod.revisions(options.base, options.head, environ)
    if revs.base is None:
        raise SelectionError(f"nothing to compare with: {revs.source}")
    ws = planned.workspace
    wanted = {e.target.flake.id for e in evals}
    done = [e for e in planned.base_evals if e.target.flake.id in wanted]
    todo = [e for e in evals if e.target.flake.id not in {d.target.flake.id for d in done}]
    took = looked_up.take([e.target for e in todo]) if looked_up is not None and todo else None
    if took is not None:
        log.debug("the base's evaluation cache entries were looked up while the head was "
                  "evaluated")
        _told_cached(*took)
        return took[0], [*done, *took[1]]
    base = _base_of(planned, git, revs)
    fresh: list[FlakeEval] = []
    if todo:
        only = parse_only(options.only, {flake.id for flake in ws.flakes})
        cache = eval_cache(options.eval, ws, environ)
        cached = _cached_base(planned, git, base, [e.target for e in todo], only, cache)
        if cached is not None:
            _told_cached(base, cached)
            return base, [*done, *cached]
        with diff_mod.worktrees(git, base) as trees:
            # the same evaluation stage as the head's: selection, limits, positions, progress
            targets = diff_mod.base_targets(ws, [e.target for e in todo], trees,
                                            dict(base.commits))
            log.info("at the base %s:", base.sha[:12])
            # a base CI evaluated before (when it was pushed) comes from the evaluation cache
            fresh = evaluate_targets(ws, planned.nix, git, targets, planned.systems, only,
                                     planned.limits, environ, cache, planned.checkouts)
    return base, [*done, *fresh]


def _base_of(planned: Plan, git: Git, revs: detect_mod.Revisions) -> diff_mod.Base:
    """The merge-bases change detection compared from (the same revisions, the same repos, a
    shallow clone already deepened), else found now (--all detects nothing)."""
    assert revs.base is not None
    ws = planned.workspace
    repos = {repo.name: repo for repo in ws.repos}
    if planned.merge_bases and all(name in repos for name, _ in planned.merge_bases):
        return diff_mod.Base(revs.base, revs.source, tuple(
            (repos[name], sha) for name, sha in planned.merge_bases))
    return diff_mod.find_base(ws, git, revs.base, revs.head, revs.source)


class _NotCached(Exception):
    """A base flake the evaluation cache does not have: the base needs its worktree."""


def _cached_base(planned: Plan, git: Git, base: diff_mod.Base, targets: Sequence[Target],
                 only: frozenset[tuple[str, str]] | None, cache: evalcache.Settings
                 ) -> list[FlakeEval] | None:
    """The base's evaluations when the evaluation cache has every one of them, looked up at
    the base commits (`rev=`) with no worktree checked out; None (nothing evaluated) when one
    is missing, or --verify-eval-cache wants some evaluated again."""
    if cache.directory is None or not cache.read or cache.verify:
        return None

    def evaluate(todo: Sequence[Target]) -> list[FlakeEval]:
        raise _NotCached

    ws = planned.workspace
    pinned = diff_mod.pinned_base_targets(ws, git, targets, dict(base.commits))
    known, trees = _known_states(ws, planned.checkouts)
    try:
        found = evalcache.evaluate(pinned, _selection(ws, planned.systems, only), cache,
                                   planned.nix, git, evaluate, known, trees)
    except _NotCached:
        return None
    return found


def _told_cached(base: diff_mod.Base, found: Sequence[FlakeEval]) -> None:
    log.info("at the base %s: %s from the evaluation cache (no worktree)", base.sha[:12],
             count(len(found), "flake"))
    log.info("evaluated %s with 0 Nix evaluations", count(len(found), "flake"))


class BaseLookup:
    """`diff`'s base looked up in the evaluation cache while the head evaluates (plan's
    `beside`): git and file reads in a thread while Nix's workers evaluate, rather than after
    them. Only a base the cache has whole is taken; anything else (a flake not cached, an
    error) is done again after the head's evaluation, as without it, and reported there."""

    def __init__(self, options: PlanOptions, environ: Mapping[str, str]) -> None:
        self.options, self.environ = options, environ
        self._done: Callable[[], None] | None = None
        self._found: tuple[diff_mod.Base, frozenset[Target], list[FlakeEval]] | None = None
        # the base's outputs in no store (closure.nowhere), asked beside the evaluation too:
        # once the base is taken, the diff asks no closure size of those attributes
        self.nowhere: frozenset[tuple[str, ...]] = frozenset()
        self._nowhere: frozenset[tuple[str, ...]] = frozenset()

    def start(self, skeleton: Plan, targets: Sequence[Target]) -> None:
        """Look the targets' base up (plan's `beside`)."""
        self._done = proc.ahead(lambda: self._look(skeleton, tuple(targets)))

    def _look(self, skeleton: Plan, targets: tuple[Target, ...]) -> None:
        git = Git.from_env(self.environ)
        revs = detect_mod.revisions(self.options.base, self.options.head, self.environ)
        if revs.base is None or not targets:
            return
        ws = skeleton.workspace
        base = _base_of(skeleton, git, revs)
        found = _cached_base(skeleton, git, base, targets,
                             parse_only(self.options.only, {f.id for f in ws.flakes}),
                             eval_cache(self.options.eval, ws, self.environ))
        if found is not None:
            self._nowhere = closure.nowhere(skeleton.nix, [job.out_paths for e in found
                                                           for job in e.jobs])
            self._found = (base, frozenset(targets), found)

    def take(self, targets: Sequence[Target]) -> tuple[diff_mod.Base, list[FlakeEval]] | None:
        """The base's evaluations of these targets, when the lookup found them all."""
        if self._done is None:
            return None
        self._done()
        if self._found is None:
            return None
        base, looked, found = self._found
        if not set(targets) <= looked:
            return None
        ids = {target.flake.id for target in targets}
        self.nowhere = self._nowhere
        return base, [e for e in found if e.target.flake.id in ids]


def compare_with_base(planned: Plan, options: DiffOptions,
                      environ: Mapping[str, str] = os.environ,
                      later: evalcache.Pending | None = None,
                      looked_up: BaseLookup | None = None) -> changes_mod.Comparison:
    """The planned (head) evaluation against the same attributes at the merge-base, with
    package changes for what changed. Raises SelectionError when there is no base. later: the
    head's evaluation cache entries, written while Nix reads the closure sizes; looked_up: the
    base as the evaluation cache had it while the head evaluated."""
    nix = planned.nix
    git = Git.from_env(environ)
    ws = planned.workspace
    base, base_evals = _evaluate_base(planned, planned.evals, options, environ, looked_up)
    head = diff_mod.head_commit(ws, git, options.head, planned.checkouts)
    comparison = replace(changes_mod.compare(base_evals, planned.evals, base.sha, head),
                         base_source=f"{base.rev} from {base.source}",
                         repos=diff_mod.repo_revisions(ws, git, base, options.head,
                                                       planned.checkouts))
    # closures the evaluation cache remembers need no .drv read (nor the .drv files)
    sizes: list[dict[tuple[str, ...], closure.Closure]] = []
    if later is not None:  # the head's entries (and closures) are read while Nix reads sizes
        outputs = diff_mod.remembered(*base_evals, *planned.evals)
        nowhere = looked_up.nowhere if looked_up is not None else frozenset()
        done = proc.ahead(lambda: sizes.append(diff_mod.closure_sizes(nix, comparison,
                                                                       outputs, nowhere)))
        later.run()
        done()
    remembered = diff_mod.remembered(*base_evals, *planned.evals,
                                     closures=later.closures if later is not None else None)
    comparison = diff_mod.with_packages(nix, comparison, remembered,
                                        sizes[0] if sizes else None)
    if options.comment:
        from ci_nix import comment as comment_mod  # a forge client: loaded only for --comment

        posted = comment_mod.post(comparison, ws.config.forge, environ)
        log.info("%s", posted)
        comparison = replace(comparison, notes=(*comparison.notes, posted))
    return comparison


def diff(options: DiffOptions, environ: Mapping[str, str] = os.environ) -> changes_mod.Comparison:
    """`ci-nix diff`: plan (detect, evaluate the head) and compare with the base."""
    revs = detect_mod.revisions(options.base, options.head, environ)
    if revs.base is None:  # before evaluating anything: the comparison is the whole point
        raise SelectionError(f"nothing to compare with: {revs.source}")
    later = evalcache.Pending()
    looked_up = BaseLookup(options, environ)
    try:
        planned = plan(options, environ, later=later, beside=looked_up.start)
        return compare_with_base(planned, options, environ, later, looked_up)
    finally:
        later.run()  # the head's entries, whatever the comparison did (done: nothing)



def _check_writable(options: RunOptions) -> None:
    for path in (options.junit, options.json):
        if path is not None:
            outputs.check_writable(path)
    if options.sbom is not None:
        try:
            options.sbom.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CiNixError(f"--sbom {options.sbom}: cannot create it ({err.strerror}); "
                             "choose a writable directory") from None


def _render(writer: Callable[[RunReport, TextIO], None], report: RunReport) -> str:
    out = io.StringIO()
    writer(report, out)
    return out.getvalue()


def write_reports(report: RunReport, options: RunOptions, environ: Mapping[str, str],
                  comparison: changes_mod.Comparison | None = None) -> None:
    """The report files, then the summary on stdout; CiNixError (after writing everything else)
    when a report file could not be written, e.g. the disk is full."""
    files = [(label, path, _render(writer, report)) for label, path, writer in (
        ("JUnit report", options.junit, junit.write), ("JSON report", options.json,
                                                        json_report.write)) if path is not None]
    if comparison is not None:
        changes_report.write_text(comparison, sys.stdout)
    text.write(report, sys.stdout)
    failed = outputs.write_files(files, sys.stdout)  # announced only where written
    write_ci_reports(CiEnv.detect(environ), report, comparison)
    if failed:
        raise CiNixError(f"{failed[0]}; free some space or choose another path")


def write_ci_reports(ci: CiEnv, report: RunReport | None,
                     comparison: changes_mod.Comparison | None = None) -> None:
    """Annotations and summaries for the CI system ci-nix runs in: a run's report and what the
    change does (`run --skip-unchanged`/`--comment`, `diff`)."""
    if ci.github:
        summary = io.StringIO()
        if report is not None:
            github.write_annotations(report, sys.stdout, ci.workspace)
            github.write_summary(report, summary)
        if comparison is not None:
            heading = "###" if report is not None else "##"
            summary.write(("\n" if report is not None else "")
                          + changes_report.markdown(comparison, heading) + "\n")
        outputs.step_summary(ci, summary.getvalue())
    if ci.gitlab:
        if report is not None:
            gitlab.write(report, sys.stdout, now=int(time.time()))
        if comparison is not None:
            changes_report.write_gitlab(comparison, sys.stdout, now=int(time.time()))
