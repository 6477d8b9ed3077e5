"""Jobs -> build results: one `nix build --keep-going`, each outcome traced to its attribute."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ci_nix import logtext
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.tools import machines, nixlog, proc
from ci_nix.tools.nix import (
    Nix,
    NixCommandError,
    drv_closure,
    last_error_line,
    read_input_graph,
)
from ci_nix.tools.nix import closure as graph_closure
from ci_nix.words import count

if TYPE_CHECKING:  # imported where a failure is read: a run without one never loads it
    from ci_nix import diagnose

log = logging.getLogger(__name__)

_MAX_LINE = 4000
BUILD_CLASSNAME = "ci-nix.build"  # README "JUnit": nix build failing though every output is valid
_CANNOT_BUILD_ON = re.compile(r"^cannot build on '([^']+)': (?:error: )?(.*)", re.DOTALL)


@dataclass
class BuildLog:
    """Folds Nix's internal-json events into per-derivation log tails, errors and timings."""

    tail_lines: int = logtext.TAIL_LINES
    parser: nixlog.LogParser = field(default_factory=nixlog.LogParser)
    logs: dict[str, deque[str]] = field(default_factory=dict)
    errors: dict[str, diagnose.BuildError] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    other: deque[str] = field(default_factory=lambda: deque(maxlen=logtext.TAIL_LINES))
    machines: dict[str, str] = field(default_factory=dict)  # drv -> remote builder that built it
    builder_errors: dict[str, str] = field(default_factory=dict)  # builder URI -> why it failed
    # Nix's failed downloads (retry warnings too): what a substitution failure was about
    downloads: deque[str] = field(default_factory=lambda: deque(maxlen=logtext.TAIL_LINES))
    on_event: Callable[[nixlog.Event], None] | None = None  # progress display (report/progress)
    # errors Nix reported without naming a derivation (2.34+ timeouts), in order: those Nix
    # attested, and (a builder can print such a record too) the others, the first of each type
    attested_unattributed: list[diagnose.Diagnosis] = field(default_factory=list)
    unattested_unattributed: list[diagnose.Diagnosis] = field(default_factory=list)
    # output path -> derivation: a message naming only an output path (a remote
    # `nix-store --serve` build) is about that derivation
    outputs: dict[str, str] = field(default_factory=dict)
    # every error taken for a derivation, in order (`errors` holds the one that speaks for it:
    # see `_claim`)
    claims: dict[str, list[_Claim]] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        event = self.parser.parse(line)
        if self.on_event is not None and event is not None:
            self.on_event(event)
        if isinstance(event, nixlog.PlainLine | nixlog.Unreadable):
            if event.text.strip():
                self.other.append(event.text[:_MAX_LINE])
        elif isinstance(event, nixlog.ActivityStart) and event.drv is not None:
            self.logs.setdefault(event.drv, deque(maxlen=self.tail_lines))
            self.started[event.drv] = time.monotonic()
            self._withdraw(event.drv, ran=False)
            if event.machine is not None:  # "building '…' on 'ssh://…'"
                self.machines[event.drv] = event.machine
        elif isinstance(event, nixlog.ActivityStop) and event.drv is not None:
            self.durations[event.drv] = (time.monotonic()
                                         - self.started.get(event.drv, time.monotonic()))
        elif (isinstance(event, nixlog.BuildLogLine) and event.drv is not None
              and not event.post_build):
            text = event.text[:_MAX_LINE] + (" [line cut]" if event.cut else "")
            self.logs.setdefault(event.drv, deque(maxlen=self.tail_lines)).append(text)
            self._withdraw(event.drv, ran=True)
        elif isinstance(event, nixlog.Message) and not event.is_error:
            text = logtext.clean(event.text)
            if "unable to download" in text:
                self.downloads.append(text[:_MAX_LINE])
        elif isinstance(event, nixlog.Message) and event.is_error:
            self._error(event)

    def _error(self, event: nixlog.Message) -> None:
        """An error Nix reported: whose it is, and what it says."""
        from ci_nix import diagnose  # the classifier: loaded where Nix reports an error

        cannot = _CANNOT_BUILD_ON.match(logtext.clean(event.text))
        if cannot:
            self.builder_errors[cannot[1]] = " ".join(cannot[2].split())[:_MAX_LINE]
        error = diagnose.build_error(event.text)
        if error is not None and error.diagnosis is not None:
            # a fetcher's builder failing on its download: its log (already here) says so
            fetch = diagnose.explained_by_log(error.diagnosis,
                                             self.logs.get(error.drv, ()))
            fetch = diagnose.with_failed_download(fetch, self.downloads)
            if fetch is not error.diagnosis:
                error = replace(error, type=fetch.type, message=fetch.message,
                                diagnosis=fetch)
        if error is None:
            self.other.append(logtext.clean(event.text)[:_MAX_LINE])
            unattributed = diagnose.unattributed_error(event.text)
            if unattributed is not None and event.attested:
                self.attested_unattributed.append(unattributed)
            elif unattributed is not None and all(
                    had.type is not unattributed.type
                    for had in self.unattested_unattributed):
                # only the first of a type is ever read (_unnamed_failure): a builder
                # repeating a record must not grow the list
                self.unattested_unattributed.append(unattributed)
        else:
            self._claim(_Claim(error, event.attested, error.ran))

    @property
    def unattributed(self) -> list[diagnose.Diagnosis]:
        """The errors naming no derivation, those Nix attested first."""
        return [*self.attested_unattributed, *self.unattested_unattributed]

    def _claim(self, claim: _Claim) -> None:
        """Take an error Nix reported for a derivation, unless it cannot be Nix's report.

        A builder can print an error record of its own (`@nix {"action":"msg","level":0,…}`),
        which Nix relays like its own: without the `raw_msg` Nix's own error records carry
        (`Message.attested`), and without anything that says which build printed it. So a
        failing build could speak for another failing derivation. An unattested error is kept
        only where Nix itself could have said it at that point: that a derivation's build ran
        and failed (builder, hash mismatch, timeout, output checks) only after its build
        started and until it prints again (Nix reports a build's end after its last output
        line); that it never ran (a dependency failed, no machine for its platform) only until
        it starts. An attested error speaks before any unattested one (a daemon forwards its
        errors unattested, so those stay possible), then a derivation's own failure before a
        dependency's, then one taken after its build stopped (where Nix writes a build's error)
        before one taken while it ran, then the first."""
        drv = self.outputs.get(claim.error.drv, claim.error.drv)
        if not claim.attested and claim.ran is not None and (drv in self.started) != claim.ran:
            log.debug("not taken as Nix's error for %s (its build %s started): %s", drv,
                      "has" if drv in self.started else "has not", claim.error.message)
            return
        claim = replace(claim, late=drv in self.durations)
        claims = self.claims.setdefault(drv, [])
        if any(_twins(kept, claim) for kept in claims):
            return  # the earlier twin speaks first and is withdrawn with it: this one never speaks
        claims.append(claim)
        self._settle(drv)

    def _settle(self, drv: str) -> None:
        claims = self.claims.get(drv, [])
        if not claims:
            self.errors.pop(drv, None)
            return
        best = max(claims, key=lambda claim: (
            claim.attested, claim.error.type is not FailureType.DEPENDENCY, claim.late))
        self.errors[drv] = best.error

    def _withdraw(self, drv: str, ran: bool) -> None:
        """drv's build started (ran=False) or printed (ran=True): an unattested report that it
        never ran (or that its build ended) was no report of Nix's."""
        claims = self.claims.get(drv, [])
        kept = [claim for claim in claims if claim.attested or claim.ran is not ran]
        if len(kept) != len(claims):
            log.debug("an unattested error for %s withdrawn: its build went on", drv)
            self.claims[drv] = kept
            self._settle(drv)

    def tail(self, drv: str) -> str:
        return logtext.tail(self.logs.get(drv, ()))

    def forget(self, drv: str) -> None:
        """drv's build was killed, not failed: it is built again from scratch."""
        for seen in (self.logs, self.started, self.durations, self.machines):
            seen.pop(drv, None)


@dataclass(frozen=True)
class _Claim:
    """An error Nix reported for a derivation: whether Nix raised it itself (`attested`), and
    whether it says the build ran (True), never ran (False) or neither (None)."""

    error: diagnose.BuildError
    attested: bool
    ran: bool | None
    # taken after the derivation's build activity stopped: where Nix (2.8, 2.26) writes a
    # build's error, also through a daemon that forwards it unattested; a record saying the
    # build failed while it still ran can only be relayed from a builder
    late: bool = False


def _twins(a: _Claim, b: _Claim) -> bool:
    """Claims that rank alike (`_settle`) and are withdrawn together (`_withdraw`)."""
    return (a.attested, a.ran, a.late, a.error.type is FailureType.DEPENDENCY) == (
        b.attested, b.ran, b.late, b.error.type is FailureType.DEPENDENCY)


def _hint(error: diagnose.BuildError) -> str | None:
    return error.diagnosis.hint if error.diagnosis is not None else None


def _valid_outputs(nix: Nix, paths: Iterable[str]) -> tuple[set[str], str | None]:
    """The valid ones of these outputs; with `--store` on another machine that cannot be
    reached: none, and a message naming that store (each job fails with it, rather than the run
    stopping)."""
    try:
        return nix.valid_paths(paths), None
    except NixCommandError as err:
        if nix.remote_store is None:
            raise
        return set(), f"remote store {nix.remote_store} failed: {last_error_line(err.stderr)}"


def _name_builders(failure: Failure, system: str, builders: tuple[machines.Machine, ...],
                   errors: dict[str, str], local: frozenset[str]) -> Failure:
    """A build that needed a remote builder and did not get one says which builder failed."""
    serving = machines.serving(builders, system)
    if not serving or failure.type not in (FailureType.PLATFORM, FailureType.OTHER):
        return failure
    if failure.type is FailureType.OTHER and not any(m.uri in errors for m in serving):
        return failure  # an `other` failure (a download, say) is a builder's only if one failed
    said = "; ".join(f"{m.uri}: {errors[m.uri]}" if m.uri in errors
                     else f"{m.uri} did not take it (busy, or lacks a required feature)"
                     for m in serving)
    uris = ", ".join(m.uri for m in serving)
    return replace(failure, message=f"remote builder for {system} failed: {said}",
                   log="\n".join(filter(None, (f"Nix: {failure.message}", failure.log))),
                   hint=f"check that {uris} is up and reachable from this machine "
                        f"(`nix store ping --store {serving[0].uri}`)"
                        + ("" if system in local else f", or leave {system} out of `systems:`"))


@dataclass(frozen=True)
class BuildOutcome:
    cases: tuple[Case, ...]
    built: tuple[str, ...]  # derivations Nix actually ran a builder for


def _unreported(buildlog: BuildLog, valid: set[str], jobs: Sequence[Job],
                others: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Derivations whose build started and whose outputs are not valid, though Nix named none.

    Nix starts a build only once every dependency is built, so such a derivation failed its own
    build. Nix 2.8 with --keep-going prints "builder for … failed" for only one of several
    failing builds; the others are these.
    others: the outputs of the other derivations the build started (_other_outputs), whose
    validity `valid` holds too.
    """
    silent = set(buildlog.started) - set(buildlog.errors)
    if not silent:
        return set()
    outputs = {job.drv_path: job.out_paths for job in jobs if job.drv_path in silent}
    outputs |= others
    return {drv for drv in silent
            if outputs.get(drv) and not all(path in valid for path in outputs[drv])}


def _other_outputs(nix: Nix, buildlog: BuildLog, jobs: Sequence[Job],
                   outputs_of: Callable[[str], tuple[str, ...] | None] | None = None
                   ) -> dict[str, tuple[str, ...]]:
    """The outputs of the derivations the build started besides the jobs' and that reported no
    error (their dependencies: _unreported checks them too), from `outputs_of` (the run's
    other evaluated jobs: a dependency is often an attribute of a later batch) where it knows
    them, else from the .drv files (one Nix call)."""
    others = set(buildlog.started) - set(buildlog.errors) - {job.drv_path for job in jobs}
    found = {drv: paths for drv in others
             if outputs_of is not None and (paths := outputs_of(drv))}
    unknown = others - set(found)
    if unknown:
        found |= {drv: d.outputs for drv, d in nix.derivations(unknown).items()}
    return found


def _unreported_failure(buildlog: BuildLog, drv: str) -> Failure:
    return Failure(type=FailureType.BUILD,
                   message=f"builder for {logtext.short_drv(drv)} failed; Nix did not report "
                           "its exit status",
                   log=buildlog.tail(drv), drv=drv)


def _unnamed_failure(buildlog: BuildLog, returncode: int, drv: str) -> Failure:
    """A job that failed although no error named its derivation: what Nix did say, classified
    where it can be (a 2.34+ timeout names no derivation), else its last error line."""
    own = [d for d in buildlog.unattributed if d.type is not FailureType.DEPENDENCY]
    if own and drv in buildlog.started:
        return Failure(type=own[0].type, message=own[0].message, log=buildlog.tail(drv),
                       drv=drv, hint=own[0].hint)
    said, hint = _best_error_line(list(buildlog.other))
    return Failure(type=FailureType.OTHER,
                   message=f"not built: nix build exited {returncode} without naming this "
                           "derivation" + (f": {said[:300]}" if said
                                           else " and printed nothing about it"),
                   log=logtext.tail(buildlog.other), drv=drv, hint=hint)


def _red_nix_case(buildlog: BuildLog, returncode: int) -> Case:
    """`nix build` failed though every attribute's outputs are valid (a post-build hook, say):
    the attributes pass, and Nix's failure is a case of its own, never a silent green."""
    said, hint = _best_error_line(list(buildlog.other))
    return Case(BUILD_CLASSNAME, "nix build", Status.FAILED, failure=Failure(
        FailureType.OTHER,
        f"nix build exited {returncode} although every attribute's outputs are valid"
        + (f": {said[:300]}" if said else ", and printed nothing about why"),
        log=logtext.tail(buildlog.other),
        hint=hint or "the attributes were built; what failed is Nix's own step around the "
        "builds (a post-build hook, the store, the daemon): see Nix's lines in the log"))


def _best_error_line(lines: list[str]) -> tuple[str | None, str | None]:
    """(line, hint) saying best why a red Nix failed, where no error named a derivation: its
    last `error:` line, else the line the log reader finds that says something failed (a crash,
    `Killed`, a timeout; classified where it can be: Nix's own errors get their hint), else its
    last line. Never nothing while Nix printed anything (no silent zero in `run` either)."""
    from ci_nix import diagnose  # the classifier: loaded where Nix failed (ci_nix.logtext)

    found = diagnose.parse_log(lines)
    hint = found[0].hint if found and found[0].type is FailureType.OTHER else None
    said = next((line for line in reversed(lines) if "error:" in line), None)
    if said is None and found:
        at = found[0].log_line
        said = lines[at - 1] if at is not None and 0 < at <= len(lines) else found[0].message
    if said is None:
        said = next((line for line in reversed(lines) if line.strip()), None)
    return (logtext.clean(said).strip() if said is not None else None), hint


def _failure_of(nix: Nix, buildlog: BuildLog, drv: str) -> Failure:
    """Why a derivation whose builder failed failed, as an attribute that needs it is told."""
    first = buildlog.errors.get(drv)
    if first is None:
        return _unreported_failure(buildlog, drv)
    what = first.message
    needed = first.diagnosis.system if first.diagnosis else None
    if needed is not None:  # it needed a remote builder: name the one that failed
        what = _name_builders(Failure(FailureType.PLATFORM, what), needed, nix.builders,
                              buildlog.builder_errors, nix.platforms).message
    return Failure(first.type, what, log=buildlog.tail(drv), drv=drv, hint=_hint(first))


def _dependency_failure(drv: str, culprits: Sequence[str], first: Failure,
                        earlier: str = "") -> Failure:
    """drv failed (or is not built) because the culprits, its dependencies, failed."""
    names = ", ".join(logtext.short_drv(culprit) for culprit in culprits)
    return Failure(type=FailureType.DEPENDENCY,
                   message=f"dependency failed: {names} ({first.message}{earlier})",
                   log=first.log, drv=drv, hint=first.hint, cause=culprits[0])


@dataclass(frozen=True)
class _Failed:
    failure: Failure  # as an attribute of this derivation is told
    attr: str  # flake#attr: the attribute whose build it failed in


@dataclass
class Earlier:
    """What a run's earlier builds (build.Feed's batches) found that a later one must know.
    Nix keeps no record of a failed build: a later `nix build` needing a derivation that
    failed would build it again (20 minutes again, for a 20-minute failure) and its attribute
    would be reported failing twice. So a job whose closure holds one is not built: it fails
    at once, as `dependency` naming it, as one `nix build` of every job would have said."""

    failed: dict[str, _Failed] = field(default_factory=dict)  # derivation -> its failure
    inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # drv -> input drvs

    def failures(self, nix: Nix, jobs: Sequence[Job]) -> dict[str, Failure]:
        """{drvPath: its failure} for the jobs that need a derivation that failed before."""
        if not self.failed:
            return {}  # a green run reads no derivation
        roots = {job.drv_path for job in jobs}
        self._read(nix, roots)
        found = {}
        for drv in sorted(roots):
            if drv in self.failed:  # another attribute of that very derivation
                found[drv] = self.failed[drv].failure
                continue
            needed = graph_closure([drv], lambda d: self.inputs.get(d, ()))
            culprits = sorted(needed & self.failed.keys())
            if culprits:
                first = self.failed[culprits[0]]
                found[drv] = _dependency_failure(
                    drv, culprits, first.failure,
                    f"; failed earlier in this run, building {first.attr}: not built again")
        return found

    def _read(self, nix: Nix, roots: Iterable[str]) -> None:
        """The closures of roots into `inputs`, each .drv read once per run (read_input_graph)."""
        try:
            read_input_graph(nix, roots, self.inputs)
        except NixCommandError as err:  # then Nix builds them, and says what failed again
            log.debug("cannot read derivations of %s: %s", ", ".join(sorted(roots)), err)

    def remember(self, nix: Nix, buildlog: BuildLog, failed: Iterable[str],
                 cases: Sequence[Case]) -> None:
        """A build's failed derivations, each with the attribute it failed for: its own, or
        the first that needed it."""
        for drv in sorted(failed):
            own = next((c for c in cases if c.drv_path == drv and c.failure is not None
                        and c.failure.type is not FailureType.DEPENDENCY), None)
            needing = own or next((c for c in cases if c.failure is not None
                                   and c.failure.cause == drv), None)
            if needing is None or drv in self.failed:
                continue
            failure = own.failure if own is not None and own.failure is not None \
                else _failure_of(nix, buildlog, drv)
            self.failed[drv] = _Failed(failure, f"{needing.flake}#{needing.name}")


@dataclass(frozen=True)
class _Asked:
    """What _stopped_early asked of Nix, still true when no other pass follows: the valid ones
    among the jobs' outputs and others' (_other_outputs; None: not asked)."""

    valid: set[str]
    others: dict[str, tuple[str, ...]] | None


def _stopped_early(nix: Nix, buildlog: BuildLog, jobs: Sequence[Job], drvs: Sequence[str],
                   closures: dict[str, set[str]],
                   outputs_of: Callable[[str], tuple[str, ...] | None] | None = None
                   ) -> tuple[list[str], _Asked | None]:
    """The derivations of this pass that Nix left unattempted when it stopped, to build again
    without the ones that failed (empty when there is nothing new to try), and what it asked
    of Nix (build() needs it too when no other pass follows).

    `--keep-going` does not keep going past a derivation that needs a system no builder can
    give it (a remote builder that is down): Nix stops the whole build there, killing builds
    in progress (NixOS/nix#8321). What did not need the failed derivations gets another pass.
    """
    named = {drv for drv, err in buildlog.errors.items() if err.type is not FailureType.DEPENDENCY}
    if not named:
        return [], None  # nothing failed by name: another pass would stop at the same place
    outputs = {job.drv_path: job.out_paths for job in jobs}
    # Builds in progress when a builder error stopped Nix were killed, not failed. Without one,
    # a build that started and reported nothing failed on its own (see _unreported).
    builder_error = bool(buildlog.builder_errors) or any(
        buildlog.errors[drv].type is FailureType.PLATFORM for drv in named)
    others = _other_outputs(nix, buildlog, jobs, outputs_of) if builder_error else None
    asked = _Asked(nix.valid_paths([*(path for job in jobs for path in job.out_paths),
                                    *(path for paths in (others or {}).values()
                                      for path in paths)]), others)
    killed = _unreported(buildlog, asked.valid, jobs, others) if others is not None else set()
    unresolved = [drv for drv in drvs
                  if not all(path in asked.valid for path in outputs[drv])
                  and drv not in buildlog.errors
                  and (drv not in buildlog.started or drv in killed)]
    graph = nix.derivations((d for d in unresolved if d not in closures), recursive=True)
    for drv in unresolved:
        if drv not in closures:
            closures[drv] = drv_closure(graph, drv)
    again = [drv for drv in unresolved if not closures[drv] & named]
    if len(again) == len(drvs):
        return [], asked
    for drv in killed:
        buildlog.forget(drv)
    return again, asked


def build(nix: Nix, jobs: Sequence[Job], *,
          cancelled: Callable[[], bool] = lambda: False,
          on_event: Callable[[nixlog.Event], None] | None = None,
          earlier: Earlier | None = None,
          outputs_of: Callable[[str], tuple[str, ...] | None] | None = None) -> BuildOutcome:
    """Build all jobs with `nix build --keep-going` (another pass for what Nix did not attempt
    after a builder error); a job's result is the validity of its outputs. earlier: what the
    run's earlier builds found (a job needing what failed there is not built), and is told
    what failed in this one. outputs_of: a derivation's outputs where the run knows them (its
    other evaluated jobs), for the dependencies this build ran."""
    # a message naming an output path (a remote `nix-store --serve` build) is its job's
    by_output = {path: job.drv_path for job in jobs for path in job.out_paths}
    buildlog = BuildLog(on_event=on_event, outputs=by_output)
    if not jobs:
        return BuildOutcome((), ())
    known = earlier.failures(nix, jobs) if earlier is not None else {}
    # same drvPath: built once, reported under each
    drvs = sorted({job.drv_path for job in jobs} - known.keys())
    closures: dict[str, set[str]] = {}
    result = proc.Result((), 0, "", "")  # nothing to build: every job failed before
    asked: _Asked | None = None  # what the last pass's stop asked of Nix, if it did
    while drvs:
        result = nix.build([nix.drv_installable(drv) for drv in drvs], buildlog.feed)
        for name in [n for n in buildlog.errors if n in by_output]:
            buildlog.errors.setdefault(by_output[name], buildlog.errors.pop(name))
        if result.returncode == 0 or cancelled() or nix.remote_store is not None:
            break
        drvs, asked = _stopped_early(nix, buildlog, jobs, drvs, closures, outputs_of)
        if not drvs:
            break
        asked = None  # another pass builds more
        log.warning("nix build stopped at a failure it does not keep going past; building the "
                    "%s it did not attempt in another pass", count(len(drvs), "derivation"))
    # the other derivations it built (dependencies) are checked too (_unreported): their
    # outputs asked about in the same question as the jobs'
    if cancelled():
        others = None
    elif asked is not None and asked.others is not None:
        others = asked.others
    else:
        others = _other_outputs(nix, buildlog, jobs, outputs_of)
    other_paths = [path for paths in (others or {}).values() for path in paths]
    # fewer questions after a failure: what _stopped_early asked still holds
    if asked is not None:
        valid, store_down = asked.valid | (nix.valid_paths(other_paths) if asked.others is None
                                           else set()), None
    else:
        valid, store_down = _valid_outputs(
            nix, [*(path for job in jobs for path in job.out_paths), *other_paths])
    unreported = set() if others is None else _unreported(buildlog, valid, jobs, others)
    failed_builders = {drv for drv, err in buildlog.errors.items()
                       if err.type is not FailureType.DEPENDENCY} | unreported
    cases = []
    for job in jobs:
        elapsed = buildlog.durations.get(job.drv_path, 0.0)
        passed = Case(flake=job.flake, name=job.name, status=Status.PASSED, system=job.system,
                      drv_path=job.drv_path, time=elapsed,
                      machine=buildlog.machines.get(job.drv_path)
                      or (nix.remote_store if job.drv_path in buildlog.started else None))
        if all(path in valid for path in job.out_paths):
            cases.append(passed)
            continue
        if job.drv_path in known:
            cases.append(replace(passed, status=Status.FAILED, time=0.0,
                                 failure=replace(known[job.drv_path], drv=job.drv_path)))
            continue
        own = buildlog.errors.get(job.drv_path)
        failure: Failure | None = None
        if own is not None and own.type is not FailureType.DEPENDENCY:
            failure = Failure(type=own.type, message=own.message, log=buildlog.tail(own.drv),
                              drv=job.drv_path, hint=_hint(own))
        elif job.drv_path in unreported:
            failure = _unreported_failure(buildlog, job.drv_path)
        else:
            if job.drv_path not in closures:
                closures[job.drv_path] = (set(nix.closure(job.drv_path)) if failed_builders
                                          else set())
            culprits = sorted(closures[job.drv_path] & failed_builders)
            if culprits:
                failure = _dependency_failure(job.drv_path, culprits,
                                              _failure_of(nix, buildlog, culprits[0]))
        if failure is None and cancelled():
            cases.append(replace(passed, status=Status.SKIPPED, skip_reason="cancelled"))
            continue
        if failure is None:
            failure = _unnamed_failure(buildlog, result.returncode, job.drv_path)
        failure = _name_builders(failure, job.system, nix.builders, buildlog.builder_errors,
                                 nix.platforms)
        if store_down is not None:
            failure = replace(failure, type=FailureType.OTHER, message=store_down)
        cases.append(replace(passed, status=Status.FAILED, failure=failure))
    if result.returncode != 0 and not cancelled() and cases \
            and not any(case.status is Status.FAILED for case in cases):
        cases.append(_red_nix_case(buildlog, result.returncode))
    if earlier is not None:
        earlier.remember(nix, buildlog, failed_builders, cases)
    built = tuple(sorted(buildlog.durations))
    # Same words as the summary's totals, so the two lines can be compared.
    status = Counter(case.status for case in cases)
    log.info("built %s for %s: %d passed, %d failed", count(len(built), "derivation"),
             count(len(jobs), "attribute"), status[Status.PASSED], status[Status.FAILED])
    return BuildOutcome(tuple(cases), built)


@dataclass(frozen=True)
class Fed:
    """What a Feed did: the cases of its builds, the jobs it never began (the run stopped
    first) and the error that stopped it, if one did."""

    cases: tuple[Case, ...]
    unbuilt: tuple[Job, ...]
    error: BaseException | None
    batches: int


class Feed:
    """Builds jobs as they are handed over while the caller goes on (evaluating): the jobs that
    arrive while one `nix build` runs become the next one. One build at a time, as `run` always
    did, so Nix's max-jobs and cores bound the builds as before; only the wait for the whole
    evaluation goes. A dependency that failed in an earlier batch is not tried again: the jobs
    of a later one that need it fail as `dependency` without a build (build.Earlier, which
    build_batch keeps).

    build_batch: the jobs of one batch -> their cases (a thread of the Feed's calls it)."""

    def __init__(self, build_batch: Callable[[Sequence[Job]], Sequence[Case]]) -> None:
        self._build_batch = build_batch
        self._queue: list[Job] = []
        self._cases: list[Case] = []
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._batches = 0
        self._thread: threading.Thread | None = None

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue jobs for the next build; the first ones start the builder."""
        if not jobs:
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("Feed.submit after close")
            self._queue.extend(jobs)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ci-nix-builds",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def wait(self) -> Fed:
        """No more jobs: build what is queued, and return everything once it is done."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            unbuilt, self._queue = tuple(self._queue), []
            return Fed(tuple(self._cases), unbuilt, self._error, self._batches)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue or self._error is not None or proc.cancelled() is not None:
                    return  # what is queued stays unbuilt: the run reports it
                batch, self._queue = self._queue, []
                self._batches += 1
            try:
                cases = self._build_batch(batch)
            except BaseException as err:  # noqa: BLE001 - handed to the caller by wait()
                with self._cond:
                    self._queue[:0] = batch
                    self._error = err
                    self._batches -= 1
                return
            with self._cond:
                self._cases.extend(cases)
