"""What a run is doing while it runs: build and evaluation progress, and builder output (-L).

Fed with the events of Nix's internal-json log (tools/nixlog.py) through a hook in build.py.
Two ways to show it, chosen by `Display.for_stream`:

- live (a terminal, not NO_COLOR/TERM=dumb, no CI detected): one status line kept at the bottom
  of stderr and redrawn twice a second; log lines are written above it;
- plain (a CI log, a pipe): nothing rewrites a line; a status line whenever nothing else was
  printed for `interval` seconds while builds run, and a PASS/FAIL line per finished attribute.

With -L every builder line is printed prefixed with its attribute (like `nix build -L`); in GitHub
Actions inside a `::group::` per derivation, in GitLab CI inside a collapsed section.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TextIO

from ci_nix import logtext
from ci_nix.ci import CiEnv
from ci_nix.errors import ConfigError
from ci_nix.models import Case, FlakeEval, Job, Status, Target
from ci_nix.report import untrusted
from ci_nix.tools import nixlog
from ci_nix.words import count

log = logging.getLogger(__name__)

# Seconds without output before a plain status line (CI logs). Below 10 with room for the tick
# and a loaded machine's scheduling, so a log never goes 10 s without a line while work runs.
INTERVAL = 8.0
STATUS_INTERVAL_VARIABLE = "CI_NIX_STATUS_INTERVAL"


def interval_of(environ: Mapping[str, str]) -> float:
    """The plain status line's interval: CI_NIX_STATUS_INTERVAL seconds, else INTERVAL."""
    text = environ.get(STATUS_INTERVAL_VARIABLE, "")
    if not text:
        return INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{STATUS_INTERVAL_VARIABLE}={text!r}: expected a positive number of "
                          f"seconds, e.g. {INTERVAL:g}")
    return seconds


def _seconds(elapsed: float) -> str:
    elapsed = int(elapsed)
    return f"{elapsed} s" if elapsed < 60 else f"{elapsed // 60} min {elapsed % 60:02d} s"


class Display:
    """stderr, with (live) or without (plain) a status line redrawn at the bottom."""

    def __init__(self, stream: TextIO, *, live: bool, ci: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.live, self.ci = stream, live, ci
        self.clock = clock  # the monitors' clock, so a test can drive both
        self.lock = threading.RLock()
        self.last_output = clock()
        self._status = ""

    @classmethod
    def for_stream(cls, stream: TextIO, environ: Mapping[str, str]) -> Display:
        ci = CiEnv.detect(environ)
        tty = getattr(stream, "isatty", lambda: False)()
        live = (tty and not ci.ci and "NO_COLOR" not in environ
                and environ.get("TERM", "") not in ("dumb", ""))
        return cls(stream, live=live, ci=ci.kind)

    def write(self, text: str) -> int:
        """Text that stays (a log record, a builder line): above the status line."""
        with self.lock:
            if self.live and self._status:
                self.stream.write("\r\x1b[K")
            self.stream.write(text)
            if self.live and self._status:
                self.stream.write(self._status)
            self.stream.flush()
            self.last_output = self.clock()
        return len(text)

    def line(self, text: str) -> None:
        """A line that may hold names or builder output: never a CI log command."""
        self.write(untrusted.log_line(text) + "\n")

    def command(self, text: str) -> None:
        """A line of ci-nix's own for the CI log (a group or section marker): written as is."""
        self.write(text + "\n")

    def flush(self) -> None:
        with self.lock:
            self.stream.flush()

    def status(self, text: str) -> None:
        """Live: replace the status line. Plain: print it as a line of its own."""
        if not self.live:
            self.line(text)
            return
        # one screen line, or the carriage return would redraw only its last part
        text = untrusted.name(text)[:max(20, shutil.get_terminal_size().columns - 1)]
        with self.lock:
            self._status = text
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()

    def clear(self) -> None:
        with self.lock:
            if self.live and self._status:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self._status = ""

    @contextmanager
    def above_logging(self, logger: logging.Logger) -> Iterator[None]:
        """While live, route the logger's stream handlers through this display."""
        handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                    and h.stream is self.stream] if self.live else []
        for handler in handlers:
            handler.setStream(self)
        try:
            yield
        finally:
            for handler in handlers:
                handler.setStream(self.stream)
            self.clear()


@dataclass
class _Build:
    drv: str
    label: str
    started: float
    attribute: bool  # builds a job's derivation (else: a dependency)
    finished: bool = False


@contextmanager
def _ticking(display: Display, tick: Callable[[], None], every: float) -> Iterator[None]:
    """Call tick about every `every` seconds from a daemon thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            tick()

    thread = threading.Thread(target=loop, name="ci-nix-progress", daemon=True)
    with display.above_logging(logging.getLogger("ci_nix")):
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _tick(display: Display, interval: float, clock: Callable[[], float],
          status: Callable[[], str]) -> None:
    """Live: redraw the status. Plain: a status line after `interval` without output."""
    if display.live or clock() - display.last_output >= interval:
        display.status(status())


@dataclass
class BuildMonitor:
    """Folds build events into what runs, what finished and how long each took, and shows it."""

    jobs: Sequence[Job]
    display: Display
    print_logs: bool = False
    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    builds: dict[str, _Build] = field(default_factory=dict)  # drv -> build, in start order
    counts: tuple[int, int, int, int] | None = None  # Nix's (done, expected, running, failed)
    downloads: dict[int, str] = field(default_factory=dict)  # activity id -> what
    reported: set[str] = field(default_factory=set)  # attributes with a PASS/FAIL line
    took: dict[str, float] = field(default_factory=dict)  # drv -> seconds, where it is known
    _group: str | None = None  # the drv whose -L group/section is open
    _resume: str = ""  # GitHub: the line that ends the open group's stop-commands
    _section: str = ""  # GitLab: the open section's name
    _sections: int = 0

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.labels: dict[str, list[str]] = {}
        for job in self.jobs:
            self.labels.setdefault(job.drv_path, []).append(f"{job.flake}#{job.name}")
        self._lock = threading.RLock()

    def add(self, jobs: Sequence[Job]) -> None:
        """More jobs to name (builds that start while evaluation goes on)."""
        with self._lock:
            for job in jobs:
                names = self.labels.setdefault(job.drv_path, [])
                if f"{job.flake}#{job.name}" not in names:
                    names.append(f"{job.flake}#{job.name}")

    def label(self, drv: str) -> str:
        names = self.labels.get(drv)
        if not names:
            return logtext.drv_name(drv)
        return names[0] + (f" (+{len(names) - 1})" if len(names) > 1 else "")

    # --- events (the thread reading Nix's stderr) --------------------------------------------

    def event(self, event: nixlog.Event) -> None:
        with self._lock:
            if isinstance(event, nixlog.ActivityStart):
                self._start(event)
            elif isinstance(event, nixlog.ActivityStop):
                self.downloads.pop(event.id, None)
                if event.drv is not None and event.drv in self.builds:
                    self._finished(self.builds[event.drv], None)
            elif (isinstance(event, nixlog.Progress)
                  and event.activity is nixlog.ActivityType.BUILDS):
                self._progress(event)
            elif isinstance(event, nixlog.BuildLogLine) and self.print_logs and event.drv:
                self._log_line(event.drv, event.text)

    def _start(self, event: nixlog.ActivityStart) -> None:
        if event.drv is not None:
            self.builds[event.drv] = _Build(event.drv, self.label(event.drv), self.clock(),
                                            event.drv in self.labels)
            where = f" on {event.machine}" if event.machine else ""
            self._close_group()
            self.display.line(f"ci-nix: building {self.builds[event.drv].label}{where}")
        elif event.type in (nixlog.ActivityType.SUBSTITUTE, nixlog.ActivityType.FILE_TRANSFER):
            self.downloads[event.id] = event.text

    def _progress(self, event: nixlog.Progress) -> None:
        before = self.counts or (0, 0, 0, 0)
        self.counts = (event.done, event.expected, event.running, event.failed)
        # Nix keeps a requested derivation's activity open until the whole build ends, so a
        # finished build shows only in these counters: it is named when one build was running.
        running = [b for b in self.builds.values() if not b.finished]
        if len(running) == 1:
            if event.done > before[0]:
                self._finished(running[0], True)
            elif event.failed > before[3]:
                self._finished(running[0], False)

    def _finished(self, build: _Build, passed: bool | None) -> None:
        if build.finished:
            return
        build.finished = True
        if passed is None or not build.attribute:
            return
        self.took[build.drv] = self.clock() - build.started
        self._close_group()
        elapsed = _seconds(self.took[build.drv])
        for name in self.labels.get(build.drv, []):
            self.reported.add(name)
            self.display.line(f"{'PASS' if passed else 'FAIL'} {name} ({elapsed})")

    # --- -L ----------------------------------------------------------------------------------

    def _log_line(self, drv: str, text: str) -> None:
        label = self.builds[drv].label if drv in self.builds else self.label(drv)
        text = logtext.clean(text)
        if self.display.ci is not None and self._group != drv:
            self._close_group()
            self._open_group(drv, label)
        self.display.line(f"{label}> {text}")

    def _open_group(self, drv: str, label: str) -> None:
        self._group = drv
        if self.display.ci == "github":
            self.display.command(untrusted.github_command(
                "group", untrusted.name(f"{label}: builder output")))
            # and nothing a builder prints runs, whatever escaping missed, until the group ends
            stop, self._resume = untrusted.stop_commands()
            self.display.command(stop)
        elif self.display.ci == "gitlab":
            self._sections += 1
            self._section = f"ci_nix_build_{self._sections}_{label}"
            self.display.command(untrusted.gitlab_section_start(
                self._section, f"{label}: builder output", int(time.time())))

    def _close_group(self) -> None:
        if self._group is None:
            return
        self._group = None
        if self.display.ci == "github":
            self.display.command(self._resume)
            self.display.command("::endgroup::")
        elif self.display.ci == "gitlab":
            self.display.command(untrusted.gitlab_section_end(self._section, int(time.time())))

    # --- status (a timer thread) -------------------------------------------------------------

    def status_text(self) -> str:
        with self._lock:
            return f"ci-nix: [{_seconds(self.clock() - self.started)}] " + self.doing()

    def doing(self) -> str:
        """`building hosts#web (48 s); 3 of 9 derivations built; 6 to go`: the status line
        without its clock (an evaluation's status line carries it while builds overlap it)."""
        with self._lock:
            now = self.clock()
            running = [b for b in self.builds.values() if not b.finished]
            if self.counts is not None:
                done, expected, nix_running, failed = self.counts
                running = running[-nix_running:] if nix_running else []
            else:
                done = sum(b.finished for b in self.builds.values())
                expected, failed = len(self.builds), 0
            what = ", ".join(f"{b.label} ({_seconds(now - b.started)})" for b in running[:3])
            if len(running) > 3:
                what += f" and {len(running) - 3} more"
            parts = [f"building {what}" if what else "waiting for Nix"]
            if expected:
                parts.append(f"{done} of {count(expected, 'derivation')} built")
            if failed:
                parts.append(f"{failed} failed")
            left = expected - done - failed
            if left > 0:
                parts.append(f"{left} to go")
            if self.downloads:
                parts.append(f"downloading {count(len(self.downloads), 'path')}")
            return "; ".join(parts)

    def tick(self) -> None:
        """Called twice a second: redraw (live), or a line after `interval` of silence."""
        if self.display.live:
            self.display.status(self.status_text())
        elif self.clock() - self.display.last_output >= self.interval:
            with self._lock:
                # Not inside a collapsed group; the group's end marker is no line a reader sees,
                # so the status line follows it now, not another interval later.
                self._close_group()
            self.display.status(self.status_text())

    @contextmanager
    def running(self, tick: float = 0.5) -> Iterator[BuildMonitor]:
        """Ticks in a daemon thread while the block runs."""
        with _ticking(self.display, self.tick, tick):
            try:
                yield self
            finally:
                with self._lock:
                    self._close_group()

    def timed(self, cases: Sequence[Case]) -> list[Case]:
        """The cases with the build times the counters measured (Nix keeps a requested
        derivation's activity open until the whole build ends, so its stop says nothing)."""
        return [replace(case, time=self.took[case.drv_path])
                if case.drv_path in self.took else case for case in cases]

    def finish(self, cases: Sequence[Case]) -> None:
        """A PASS/FAIL line for each built attribute the counters could not name as it ended."""
        for case in cases:
            name = f"{case.flake}#{case.name}"
            if name in self.reported or case.status is Status.SKIPPED:
                continue
            self.reported.add(name)
            verdict = "PASS" if case.status is Status.PASSED else "FAIL"
            took = (f" ({_seconds(case.time)})" if case.drv_path in self.builds
                    else " (already built)" if case.status is Status.PASSED else "")
            self.display.line(f"{verdict} {name}{took}")


@dataclass
class EvalMonitor:
    """`evaluated 12/32 flakes: hosts: …` as each flake's evaluation ends; between them a status
    that counts attributes once flakes are listed (`evaluating: 12 of 32 attributes (hosts:
    12/32), 2 workers, 41 s`), or names the flakes being listed; at the end the final count."""

    total: int
    display: Display
    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    evaluating: dict[str, float] = field(default_factory=dict)  # flake id -> started
    workers: int = 0  # the pool's size, when known
    attrs: dict[str, tuple[int, int]] = field(default_factory=dict)  # flake id -> (done, total)
    # what runs beside the evaluation, for its status line (builds that overlap it), or ""
    beside: Callable[[], str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def flake_started(self, target: Target) -> None:
        with self._lock:
            self.evaluating[target.flake.id] = self.clock()

    def attr_progress(self, target: Target, done: int, total: int) -> None:
        """evaluate.evaluate's on_attr: a flake's attribute counts (its scheduler thread)."""
        with self._lock:
            self.attrs[target.flake.id] = (done, total)

    def flake_done(self, result: FlakeEval) -> None:
        with self._lock:
            self.done += 1
            flake = result.target.flake.id
            self.evaluating.pop(flake, None)
            if flake in self.attrs:  # every attribute has its result now
                self.attrs[flake] = (self.attrs[flake][1], self.attrs[flake][1])
            self.display.line(
                f"ci-nix: evaluated {self.done}/{count(self.total, 'flake')}: "
                f"{flake}: {count(len(result.jobs), 'attribute')} to build, "
                f"{count(len(result.cases), 'failure')}, "
                f"{count(result.evaluations, 'Nix evaluation')} in {result.time:.1f} s")

    def _counts(self, verb: str, flakes: Sequence[str]) -> str:
        """`evaluating: 12 of 32 attributes (hosts: 12/32), 2 workers, 41 s` (under the lock)."""
        done = sum(d for d, _ in self.attrs.values())
        total = sum(t for _, t in self.attrs.values())
        each = [f"{f}: {self.attrs[f][0]}/{self.attrs[f][1]}" if f in self.attrs
                else f"{f}: listing" for f in flakes]
        text = f"ci-nix: {verb}: {done} of {count(total, 'attribute')}"
        if each:
            text += (f" ({', '.join(each[:3])}"
                     + (f" and {len(each) - 3} more" if len(each) > 3 else "") + ")")
        if self.workers:
            text += f", {count(self.workers, 'worker')}"
        text += f", {_seconds(self.clock() - self.started)}"
        if self.total > 1:
            text += f"; {self.done} of {count(self.total, 'flake')} evaluated"
        return text

    def status_text(self) -> str:
        beside = self.beside() if self.beside is not None else ""
        return self._evaluating() + (f"; {beside}" if beside else "")

    def _evaluating(self) -> str:
        with self._lock:
            if self.attrs:
                return self._counts("evaluating", list(self.evaluating))
            now = self.clock()
            names = [f"{flake} ({_seconds(now - since)})"
                     for flake, since in self.evaluating.items()]
            what = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            return (f"ci-nix: [{_seconds(now - self.started)}] evaluating {what or '…'}; "
                    f"{self.done} of {count(self.total, 'flake')} evaluated")

    def final_text(self) -> str | None:
        """`evaluated: 32 of 32 attributes (hosts: 32/32), 2 workers, 41 s`, once counted."""
        with self._lock:
            return self._counts("evaluated", list(self.attrs)) if self.attrs else None

    def tick(self) -> None:
        _tick(self.display, self.interval, self.clock, self.status_text)

    @contextmanager
    def running(self, tick: float = 0.5) -> Iterator[EvalMonitor]:
        """Ticks while the block runs; the final count after it, unless it raised."""
        with _ticking(self.display, self.tick, tick):
            yield self
            final = self.final_text()
            if final is not None:
                self.display.line(final)
