"""Jobs -> build results: one `nix build --keep-going`, each outcome traced to its attribute."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ci_nix import diagnose
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.tools.nix import Nix

log = logging.getLogger(__name__)

_ACT_BUILD = 105  # Nix's activity type for "building a derivation"
_RES_BUILD_LOG_LINE = 101
_MAX_LINE = 4000
_LOG_TEXT = re.compile(r'^@nix \{"action":"result","fields":\["(.*)')


@dataclass
class BuildLog:
    """Folds Nix's internal-json events into per-derivation log tails, errors and timings."""

    tail_lines: int = diagnose.TAIL_LINES
    activities: dict[int, str] = field(default_factory=dict)  # activity id -> drv
    logs: dict[str, deque[str]] = field(default_factory=dict)
    errors: dict[str, diagnose.BuildError] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    other: deque[str] = field(default_factory=lambda: deque(maxlen=diagnose.TAIL_LINES))

    def feed(self, line: str) -> None:
        if not line.startswith("@nix "):
            if line.strip():
                self.other.append(line[:_MAX_LINE])
            return
        try:
            event = json.loads(line[5:])
        except json.JSONDecodeError:
            self._truncated(line)
            return
        action = event.get("action")
        if action == "start" and event.get("type") == _ACT_BUILD:
            drv = event["fields"][0]
            self.activities[event["id"]] = drv
            self.logs.setdefault(drv, deque(maxlen=self.tail_lines))
            self.started[drv] = time.monotonic()
        elif action == "stop" and event.get("id") in self.activities:
            drv = self.activities.pop(event["id"])
            self.durations[drv] = time.monotonic() - self.started.get(drv, time.monotonic())
        elif action == "result" and event.get("type") == _RES_BUILD_LOG_LINE:
            drv = self.activities.get(event.get("id", -1))
            if drv is not None:
                self.logs[drv].append(str(event["fields"][0])[:_MAX_LINE])
        elif action == "msg" and event.get("level", 9) == 0:
            message = str(event.get("msg", ""))
            error = diagnose.build_error(message)
            if error is None:
                self.other.append(diagnose.clean(message)[:_MAX_LINE])
            elif (error.drv not in self.errors
                  or self.errors[error.drv].type is FailureType.DEPENDENCY):
                self.errors[error.drv] = error

    def _truncated(self, line: str) -> None:
        # An event cut short by the line limit (a huge log line). Its activity id comes after the
        # text, so it is lost; while a single build runs, the line can only be that build's.
        match = _LOG_TEXT.match(line)
        running = set(self.activities.values())
        if match and len(running) == 1:
            self.logs[running.pop()].append(match.group(1)[:_MAX_LINE] + " [line cut]")
        else:
            self.other.append(line[:_MAX_LINE])

    def tail(self, drv: str) -> str:
        return diagnose.tail(self.logs.get(drv, ()))


def _hint(error: diagnose.BuildError) -> str | None:
    return error.diagnosis.hint if error.diagnosis is not None else None


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
                    time=elapsed)
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
        cases.append(Case(status=Status.FAILED, failure=failure, **base))  # type: ignore[arg-type]
    built = tuple(sorted(buildlog.durations))
    log.info("built %d derivations; %d of %d jobs failed", len(built),
             sum(c.status is Status.FAILED for c in cases), len(jobs))
    return BuildOutcome(tuple(cases), built)
