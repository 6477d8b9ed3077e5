"""Jobs -> build results: one `nix build --keep-going`, each outcome traced to its attribute."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ci_nix import diagnose
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.tools import machines, nixlog
from ci_nix.tools.nix import Nix

log = logging.getLogger(__name__)

_MAX_LINE = 4000
_CANNOT_BUILD_ON = re.compile(r"^cannot build on '([^']+)': (?:error: )?(.*)", re.DOTALL)


@dataclass
class BuildLog:
    """Folds Nix's internal-json events into per-derivation log tails, errors and timings."""

    tail_lines: int = diagnose.TAIL_LINES
    parser: nixlog.LogParser = field(default_factory=nixlog.LogParser)
    logs: dict[str, deque[str]] = field(default_factory=dict)
    errors: dict[str, diagnose.BuildError] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    other: deque[str] = field(default_factory=lambda: deque(maxlen=diagnose.TAIL_LINES))
    machines: dict[str, str] = field(default_factory=dict)  # drv -> remote builder that built it
    builder_errors: dict[str, str] = field(default_factory=dict)  # builder URI -> why it failed

    def feed(self, line: str) -> None:
        event = self.parser.parse(line)
        if isinstance(event, nixlog.PlainLine | nixlog.Unreadable):
            if event.text.strip():
                self.other.append(event.text[:_MAX_LINE])
        elif isinstance(event, nixlog.ActivityStart) and event.drv is not None:
            self.logs.setdefault(event.drv, deque(maxlen=self.tail_lines))
            self.started[event.drv] = time.monotonic()
            if event.machine is not None:  # "building '…' on 'ssh://…'"
                self.machines[event.drv] = event.machine
        elif isinstance(event, nixlog.ActivityStop) and event.drv is not None:
            self.durations[event.drv] = (time.monotonic()
                                         - self.started.get(event.drv, time.monotonic()))
        elif (isinstance(event, nixlog.BuildLogLine) and event.drv is not None
              and not event.post_build):
            text = event.text[:_MAX_LINE] + (" [line cut]" if event.cut else "")
            self.logs.setdefault(event.drv, deque(maxlen=self.tail_lines)).append(text)
        elif isinstance(event, nixlog.Message) and event.is_error:
            cannot = _CANNOT_BUILD_ON.match(diagnose.clean(event.text))
            if cannot:
                self.builder_errors[cannot[1]] = " ".join(cannot[2].split())[:_MAX_LINE]
            error = diagnose.build_error(event.text)
            if error is None:
                self.other.append(diagnose.clean(event.text)[:_MAX_LINE])
            elif (error.drv not in self.errors
                  or self.errors[error.drv].type is FailureType.DEPENDENCY):
                self.errors[error.drv] = error

    def tail(self, drv: str) -> str:
        return diagnose.tail(self.logs.get(drv, ()))


def _hint(error: diagnose.BuildError) -> str | None:
    return error.diagnosis.hint if error.diagnosis is not None else None


def _name_builders(failure: Failure, system: str, builders: tuple[machines.Machine, ...],
                   errors: dict[str, str]) -> Failure:
    """A build that needed a remote builder and did not get one says which builder failed."""
    serving = machines.serving(builders, system)
    if not serving or failure.type not in (FailureType.PLATFORM, FailureType.OTHER):
        return failure
    said = "; ".join(f"{m.uri}: {errors[m.uri]}" if m.uri in errors
                     else f"{m.uri} did not take it (busy, or lacks a required feature)"
                     for m in serving)
    uris = ", ".join(m.uri for m in serving)
    return replace(failure, message=f"remote builder for {system} failed: {said}",
                   log="\n".join(filter(None, (f"Nix: {failure.message}", failure.log))),
                   hint=f"check that {uris} is up and reachable from this machine "
                        f"(`nix store ping --store {serving[0].uri}`), or leave {system} out "
                        "of `systems:`")


@dataclass(frozen=True)
class BuildOutcome:
    cases: tuple[Case, ...]
    built: tuple[str, ...]  # derivations Nix actually ran a builder for


def build(nix: Nix, jobs: Sequence[Job], *,
          cancelled: Callable[[], bool] = lambda: False) -> BuildOutcome:
    """Build all jobs in one Nix invocation; a job's result is the validity of its outputs."""
    buildlog = BuildLog()
    if not jobs:
        return BuildOutcome((), ())
    drvs = sorted({job.drv_path for job in jobs})  # same drvPath: built once, reported under each
    result = nix.build([nix.drv_installable(drv) for drv in drvs], buildlog.feed)
    valid = nix.valid_paths(path for job in jobs for path in job.out_paths)
    failed_builders = {drv for drv, err in buildlog.errors.items()
                       if err.type is not FailureType.DEPENDENCY}
    closures: dict[str, set[str]] = {}
    cases = []
    for job in jobs:
        elapsed = buildlog.durations.get(job.drv_path, 0.0)
        base = dict(flake=job.flake, name=job.name, system=job.system, drv_path=job.drv_path,
                    time=elapsed, machine=buildlog.machines.get(job.drv_path))
        if all(path in valid for path in job.out_paths):
            cases.append(Case(status=Status.PASSED, **base))  # type: ignore[arg-type]
            continue
        own = buildlog.errors.get(job.drv_path)
        failure: Failure | None = None
        if own is not None and own.type is not FailureType.DEPENDENCY:
            failure = Failure(type=own.type, message=own.message, log=buildlog.tail(own.drv),
                              drv=job.drv_path, hint=_hint(own))
        else:
            if job.drv_path not in closures:
                closures[job.drv_path] = (set(nix.closure(job.drv_path)) if failed_builders
                                          else set())
            culprits = sorted(closures[job.drv_path] & failed_builders)
            if culprits:
                first = buildlog.errors[culprits[0]]
                names = ", ".join(diagnose._short(drv) for drv in culprits)
                failure = Failure(type=FailureType.DEPENDENCY,
                                  message=f"dependency failed: {names} ({first.message})",
                                  log=buildlog.tail(culprits[0]), drv=job.drv_path,
                                  hint=_hint(first))
        if failure is None and cancelled():
            cases.append(Case(status=Status.SKIPPED, skip_reason="cancelled", **base))  # type: ignore[arg-type]
            continue
        if failure is None:
            failure = Failure(type=FailureType.OTHER,
                              message=f"not built: nix build exited {result.returncode} without "
                                      "naming this derivation",
                              log=diagnose.tail(buildlog.other), drv=job.drv_path)
        failure = _name_builders(failure, job.system, nix.builders, buildlog.builder_errors)
        cases.append(Case(status=Status.FAILED, failure=failure, **base))  # type: ignore[arg-type]
    built = tuple(sorted(buildlog.durations))
    log.info("built %d derivations; %d of %d jobs failed", len(built),
             sum(c.status is Status.FAILED for c in cases), len(jobs))
    return BuildOutcome(tuple(cases), built)
