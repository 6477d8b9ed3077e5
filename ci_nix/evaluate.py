"""Flakes -> jobs (attr, system, drvPath, outputs), with every failing attribute isolated.

A pool of `workers` Nix evaluation processes serves all flakes at once. The first worker on a
flake lists its attributes and goes on to evaluate them one after another, reporting each as it
finishes (ci_nix/nix/eval.nix); an idle worker takes over the back half of what a busy one has
not begun, so one flake of many hosts uses every core. A worker that dies of an error names the
attribute it was on: that attribute fails with the error (and its position), a fresh worker goes
on with the rest, so k failures among n attributes cost n + k attribute evaluations, never a
re-evaluation of the others. A worker that has grown past `memory_mib` is replaced before its next
attribute; one that spends more than `timeout` seconds on one attribute is killed with its whole
process group, and that attribute fails as `timeout`. All workers together, with the commands
ci-nix runs beside them (a run's `nix build` and the builders it forks), stay within
`memory_total_mib`: a new worker starts only where one more of the largest size seen fits, a
worker that has finished an attribute is replaced while the sum is past it, and past it mid-way
the worker whose attribute began last is stopped and its attributes wait for room. An attribute
whose worker something else killed (SIGKILL: the kernel's out-of-memory killer) is tried once
more alone before it fails as out of memory.
"""

from __future__ import annotations

import collections
import fnmatch
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ci_nix import lockfile
from ci_nix.config import DEFAULT_EVAL_MEMORY_MIB, EvalConfig
from ci_nix.errors import Cancelled, ConfigError, ToolError
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    EvalCost,
    Failure,
    FailureType,
    FlakeEval,
    Job,
    SourceTree,
    Status,
    Target,
    attr_display,
)
from ci_nix.tools import proc
from ci_nix.tools.nix import (
    AttrPath,
    Begin,
    CommitRead,
    Done,
    HelperResult,
    Listed,
    ListingDone,
    Nix,
    SourceRead,
    WorkerEvent,
    parse_worker_line,
)
from ci_nix.words import count

log = logging.getLogger(__name__)

_TICK = 0.1  # seconds between checks of the workers' memory and time
# Memory is read every _TICK, and a worker grows meanwhile: the pool acts before the total.
# A new worker starts, and workers go on between two tasks, within _SOFT_TOTAL of it; past
# _HARD_TOTAL of it the worker whose task began last is stopped mid-way. Past _NEAR of the total
# (or a worker past _NEAR of --eval-memory) memory is read every _FAST_TICK: a worker on an
# idle core grows by some 60 MiB in a _TICK, two of them past the little that is left.
_NEAR = 0.8
_FAST_TICK = 0.02
_SOFT_TOTAL = 0.9
_HARD_TOTAL = 0.97
_STDERR_LINES = 2000  # Nix's own lines kept per worker, for the error of the task it dies on
_MIB = 1024 * 1024
# SIGKILL, as the worker's exit or as a wrapper script's (128 + 9) whose Nix was killed
_KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)
_OOM_TEXT = ("out of memory", "std::bad_alloc", "Cannot allocate memory")


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
    """One evaluation worker per CPU."""
    return max(1, os.cpu_count() or 1)


def default_memory_total_mib() -> int | None:
    """Half the machine's memory (None where /proc/meminfo cannot tell: no total budget)."""
    total = proc.machine_memory()
    return None if total is None else max(1, total // 2 // _MIB)


@dataclass(frozen=True)
class Limits:
    """The pool's settings (--workers, --eval-memory, --eval-timeout): carried whole from the
    command line and ci-nix.yaml to the pool, the same for every command that evaluates."""

    workers: int | None = None  # None: one per CPU
    memory_mib: int = DEFAULT_EVAL_MEMORY_MIB
    timeout: float = 0  # seconds per attribute; 0: none
    memory_total_mib: int | None = None  # all workers together; None: half the machine's


@dataclass(frozen=True)
class EvalFlags:
    """--workers, --eval-memory, --eval-timeout, --no-eval-cache, --verify-eval-cache and
    --eval-memory-total as given; None where not given."""

    workers: int | None = None
    memory_mib: int | None = None
    timeout: float | None = None
    cache: bool | None = None  # False: --no-eval-cache
    verify_cache: bool = False  # --verify-eval-cache
    memory_total_mib: int | None = None

    def limits(self, config: EvalConfig) -> Limits:
        """The pool's settings: these flags over 'eval:' in ci-nix.yaml (over its defaults)."""
        workers = self.workers if self.workers is not None else config.workers
        memory = self.memory_mib if self.memory_mib is not None else config.memory
        timeout = self.timeout if self.timeout is not None else config.timeout
        total = (self.memory_total_mib if self.memory_total_mib is not None
                 else config.memory_total)
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers {workers}: give at least 1")
        if memory < 1:
            raise ConfigError(f"--eval-memory {memory}: give the MiB a worker may use, at least 1")
        if not 0 <= timeout < float("inf"):
            raise ConfigError(f"--eval-timeout {timeout:g}: give seconds, or 0 for no limit")
        if total is not None and total < 1:
            raise ConfigError(f"--eval-memory-total {total}: give the MiB all workers together "
                              "may use, at least 1")
        return Limits(workers, memory, timeout, total)


@dataclass(frozen=True)
class Task:
    """One thing a worker evaluates: an attribute, or a group that threw while being listed
    (evaluated again on its own for the error text)."""

    path: AttrPath
    group: bool = False


class Backend(Protocol):
    """How evaluation workers start and speak. eval.nix on `nix eval` is the one there is; a
    nix-eval-jobs backend would start its process here and translate its JSON lines."""

    def start(self, target: Target, selection: Selection, *, list_attrs: bool,
              tasks: Sequence[Task] | None) -> proc.Running:
        """A worker on target: with list_attrs, it lists first; tasks None means every listed
        attribute, in order."""
        ...

    def parse(self, line: str) -> WorkerEvent | None:
        ...


@dataclass(frozen=True)
class NixBackend:
    """Workers are `nix eval` over ci-nix's eval.nix, answering through builtins.trace."""

    nix: Nix

    def start(self, target: Target, selection: Selection, *, list_attrs: bool,
              tasks: Sequence[Task] | None) -> proc.Running:
        args: dict[str, Any] = {
            "systems": list(selection.systems), "outputs": list(selection.outputs),
            "subdir": target.flake.subdir, "list": list_attrs,
            "tasks": None if tasks is None else [{"path": list(t.path), "group": t.group}
                                                 for t in tasks]}
        overrides = [(o.input, o.url) for o in target.overrides]
        return self.nix.eval_worker(target.flake.ref, args, overrides)

    def parse(self, line: str) -> WorkerEvent | None:
        return parse_worker_line(line)


@dataclass(frozen=True)
class Probe:
    """How the pool reads its workers' memory: every process group's resident bytes (sampled
    every _TICK), and one process's (read as each attribute begins and ends). beside: the
    resident bytes of all else ci-nix's commands started meanwhile (a run's `nix build` while
    it evaluates and its builders, a worker's import-from-derivation builders), given the
    workers' groups to leave out; they count against the total too."""

    groups: Callable[[Sequence[int]], dict[int, int]] = field(default_factory=proc.GroupSampler)
    process: Callable[[int], int] = proc.rss
    beside: Callable[[Collection[int]], int] = field(default_factory=proc.TreeSampler)

    @classmethod
    def of_proc(cls) -> Probe:
        """Read from /proc, the groups and what runs beside them from one scan a tick."""
        scan = proc.ProcScan()
        return cls(groups=proc.GroupSampler(scan=scan), beside=proc.TreeSampler(scan=scan))


# target -> the store trees its evaluation reads, each with its workspace repo (origins.Origins.of)
SourcesOf = Callable[[Target], Sequence[SourceTree]]
# (target, attributes evaluated, attributes to evaluate) for a flake, once its listing is known
OnAttr = Callable[[Target, int, int], None]
# an attribute that evaluated to a derivation, as its result comes (run builds it meanwhile)
OnJob = Callable[[Target, Job], None]
# a flake's listed attributes, as its listing ends
OnListed = Callable[[Target, Sequence[AttrPath]], None]


def evaluate(nix: Nix, targets: Sequence[Target], selection: Selection,
             limits: Limits = Limits(), sources: SourcesOf | None = None,
             on_flake: Callable[[FlakeEval], None] | None = None,
             on_start: Callable[[Target], None] | None = None, *,
             backend: Backend | None = None, on_attr: OnAttr | None = None,
             on_job: OnJob | None = None, probe: Probe | None = None,
             on_listed: OnListed | None = None) -> list[FlakeEval]:
    """Evaluate all targets with a pool of `limits.workers` Nix processes (default: one per
    CPU); one FlakeEval per target, in the order given.

    sources: where each target's store trees come from, asked only for an error that points
    into one; it places positions in the right workspace repo. on_start/on_flake: hear of each
    flake as its evaluation starts and ends (progress). limits.memory_mib: a worker past it is
    replaced before its next attribute, and an attribute that alone takes a fresh worker past
    it fails as out of memory. limits.timeout: seconds one attribute may take (0: no limit);
    past it the attribute fails as `timeout`. on_attr: hears a flake's (target, done, total)
    attribute counts when its listing ends and as each attribute's result comes back (progress).
    on_job: hears of each attribute that evaluated to a derivation, as its result comes back
    (the same Job its FlakeEval will hold). on_listed: hears each flake's attribute names as
    its listing ends (and, without --only, the groups that failed to list: each will be a
    case); given, on_job hears of nothing before every flake has been listed (or has failed),
    so that a selection naming an attribute no flake has (--only) stops the caller before it
    acts on any (run builds nothing); an exception it raises stops every worker and is raised.
    limits.memory_total_mib: what all workers together may use (None: half the machine's).
    """
    given = limits.memory_total_mib is not None
    total = limits.memory_total_mib if given else default_memory_total_mib()
    workers = limits.workers or default_workers()
    # The default total leaves the machine its other half: where every worker at --eval-memory
    # fits in what the machine has free, a second worker need not wait for the first one's
    # size (the total is kept by replacing and stopping workers as they grow).
    free = None if given else proc.machine_memory(key="MemAvailable")
    pool = _Pool(backend or NixBackend(nix), selection, workers,
                 limits.memory_mib * _MIB, limits.timeout, sources, on_flake, on_start,
                 total=None if total is None else total * _MIB, probe=probe or Probe.of_proc(),
                 learn_size=free is None or workers * limits.memory_mib * _MIB > free)
    pool.on_attr, pool.on_job, pool.on_listed = on_attr, on_job, on_listed
    return pool.run(targets)


def count_evaluations(evals: Sequence[FlakeEval]) -> int:
    return sum(e.evaluations for e in evals)


@dataclass(eq=False)
class _Flake:
    """What is known about one target while the pool works on it."""

    target: Target
    lock: lockfile.Lock | None
    attrs: list[AttrPath] = field(default_factory=list)
    listing: ListingDone | None = None
    results: dict[Task, HelperResult] = field(default_factory=dict)
    stopped: dict[Task, Failure] = field(default_factory=dict)  # past --eval-timeout/-memory
    costs: dict[Task, EvalCost] = field(default_factory=dict)
    commit_read: set[str] = field(default_factory=set)  # CommitRead names, from every worker
    sources: list[str | None] = field(default_factory=list)  # SourceRead revs, one per worker
    retried: set[Task] = field(default_factory=set)  # killed once, tried again alone
    failure: Failure | None = None  # the flake as a whole: not even its attributes
    evaluations: int = 0  # Nix processes started for it
    attr_evaluations: int = 0  # tasks begun, retries included
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0
    outstanding: int = 0  # units of work queued or running
    total: int = 0  # attributes to evaluate, once listed
    counted: int = -1  # attributes evaluated, as on_attr last heard
    result: FlakeEval | None = None
    # seconds each task took: a worker's first (which pays what the flake's tasks share, such as
    # nixpkgs or a shared module, once per process), and its later ones
    first: list[float] = field(default_factory=list)
    later: list[float] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.target.flake.id


@dataclass(eq=False)
class _Worker:
    flake: _Flake
    process: proc.Running
    lists: bool  # lists the flake's attributes first
    tasks: list[Task]  # filled from the listing when it evaluates what it lists
    owned: int  # tasks[:owned] are this worker's; the rest went to another worker
    spawned: float
    phase_start: float  # when the current task (or the start-up) began
    alone: bool = False  # one task killed by something else, tried again: no worker joins it
    task_rss: int = 0  # the process's resident bytes as the current task began
    task_start: float = 0.0  # when its begin was read
    next: int = 0  # tasks begun so far
    current: int | None = None  # begun, not done
    done: int = 0
    # why ci-nix stopped it: stolen, replace (past --eval-memory or the total, between two
    # tasks), budget (past the total mid-task: its tasks wait for room), timeout, memory
    stop: str | None = None
    rss: int = 0  # resident bytes of its process group, sampled every _TICK
    peak_rss: int = 0
    stderr: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_STDERR_LINES))
    reader: threading.Thread | None = None

    def culprit(self) -> int | None:
        """The task to blame when the worker ends early: the one it was on, else the next."""
        if self.current is not None:
            return self.current
        return self.next if self.next < self.owned else None


@dataclass(frozen=True)
class _Exit:
    returncode: int


@dataclass(frozen=True)
class _Line:
    """A line a worker wrote, parsed by its reader thread; an attribute's begin and end carry
    when they were read and the process's memory then (the loop may take them up later)."""

    text: str
    event: WorkerEvent | None
    at: float = 0.0
    rss: int = 0


@dataclass
class _Timeline:
    """Where the pool's time goes, logged with -v (bench P7q reads it): how many workers ran
    when, so the slots left free show — before every slot had a worker, between, and after
    the last worker started (the tail, one worker finishing while the other has nothing left)."""

    slots: int
    begun: float = field(default_factory=time.monotonic)
    cpu: float = field(default_factory=time.process_time)  # ci-nix's own, the pool loop's
    changes: list[tuple[float, int]] = field(default_factory=list)  # (when, workers running)
    startups: list[float] = field(default_factory=list)  # each worker: spawn to first task

    def running(self, count: int) -> None:
        self.changes.append((time.monotonic(), count))

    def summary(self) -> str:
        end = time.monotonic()
        free = free_slots(self.slots, self.begun, self.changes, end)
        startup = (f"{min(self.startups):.2f}–{max(self.startups):.2f}s" if self.startups
                   else "none")
        return (f"evaluation timeline: {self.slots} slots, {end - self.begun:.2f}s; free "
                f"slot-seconds {free[0]:.2f} until all started, {free[1]:.2f} between, "
                f"{free[2]:.2f} after the last start; workers' start-up {startup}; "
                f"ci-nix's own CPU {time.process_time() - self.cpu:.2f}s")


def free_slots(slots: int, begun: float, changes: Sequence[tuple[float, int]],
               end: float) -> tuple[float, float, float]:
    """Slot-seconds without a worker, from (when, workers running) changes: until every slot
    first had one (or the last start, if they never all did), between, and after the last
    start (the tail)."""
    steps = [(begun, 0), *changes, (end, 0)]
    starts = [t for (t, n), (_, before) in zip(steps[1:], steps, strict=False) if n > before]
    last = starts[-1] if starts else end
    full = next((t for t, n in steps if n >= slots), last)
    free = [0.0, 0.0, 0.0]
    for (t, n), (t_next, _) in zip(steps, steps[1:], strict=False):
        idle = max(0, slots - n)
        for phase, (lo, hi) in enumerate(((t, min(t_next, full)),
                                          (max(t, full), min(t_next, last)),
                                          (max(t, last), t_next))):
            free[phase] += idle * max(0.0, hi - lo)
    return free[0], free[1], free[2]


class _Pool:
    def __init__(self, backend: Backend, selection: Selection, workers: int, memory: int,
                 timeout: float, sources: SourcesOf | None = None,
                 on_flake: Callable[[FlakeEval], None] | None = None,
                 on_start: Callable[[Target], None] | None = None, *,
                 total: int | None = None, probe: Probe | None = None,
                 learn_size: bool = True) -> None:
        self.backend, self.selection = backend, selection
        # a worker alone past the total is past the limit too
        memory = min(memory, total) if total is not None else memory
        self.total, self.probe = total, probe or Probe.of_proc()
        self.sources, self.on_flake, self.on_start = sources, on_flake, on_start
        self.size, self.memory, self.timeout = max(1, workers), memory, timeout
        self.events: queue.Queue[tuple[_Worker, _Line | _Exit]] = queue.Queue()
        # (flake, its tasks or None to list it, whether the worker runs them alone)
        self.pending: collections.deque[tuple[_Flake, list[Task] | None, bool]] = \
            collections.deque()
        self.running: list[_Worker] = []
        self.startup: float | None = None  # shortest start-up seen: spawn to first task
        self.peak_rss = 0  # the largest worker seen: what a new one is expected to grow to
        self.peak_sum = 0  # all workers together (and what runs beside them), at most
        # ci-nix's other commands meanwhile (a run's builds while it evaluates): their bytes
        # as last read count against the total as the workers' do, and their most
        self.beside = 0
        self.peak_beside = 0
        self.held = 0  # times a worker did not start for want of memory
        # Workers x --eval-memory could pass the total: the first worker's size is learnt (an
        # attribute done) before a second starts — unless the machine clearly has room for all
        # of them at --eval-memory (learn_size False; evaluate() decides).
        self.careful = learn_size and total is not None and self.size * self.memory > total
        self.fresh = 0  # the largest worker seen just after its first attribute
        self.spawned = 0
        self.watched = 0.0  # when _watch last looked
        self.tick = _TICK  # how often it looks: more often near a limit
        self.on_attr: OnAttr | None = None
        self.on_job: OnJob | None = None
        self.on_listed: OnListed | None = None
        # with on_listed: the flakes not yet listed (nor failed), and the jobs on_job has not
        # heard of meanwhile
        self.unlisted: set[_Flake] = set()
        self.held_jobs: list[tuple[Target, Job]] = []
        self.timeline = _Timeline(self.size)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, targets: Sequence[Target]) -> list[FlakeEval]:
        started = time.monotonic()
        self.timeline = _Timeline(self.size)
        flakes = [self._prepare(target) for target in targets]
        self.unlisted = {f for f in flakes if f.failure is None} if self.on_listed else set()
        for flake in flakes:
            if flake.failure is None:
                self._queue(flake, None)
            else:
                self._finish(flake)
        try:
            while self.pending or self.running:
                signum = proc.cancelled()
                if signum is not None:
                    raise Cancelled(signum)
                self._fill()
                try:
                    worker, item = self.events.get(timeout=self.tick)
                except queue.Empty:
                    pass
                else:
                    self._handle(worker, item)
                self._watch()
        finally:
            self._stop_all()
        evals = [f.result or self._result(f) for f in flakes]
        budget = (f", all workers at most {self.peak_sum // _MIB} of {self.total // _MIB} MiB"
                  if self.total is not None else "")
        if self.total is not None and self.peak_beside:
            budget += f" with the builds beside them (those at most {self.peak_beside // _MIB} MiB)"
        log.info("evaluation: %d workers, %d Nix processes, %d attribute evaluations, "
                 "largest worker %d MiB%s, %.1fs", self.size, self.spawned,
                 sum(f.attr_evaluations for f in flakes), self.peak_rss // _MIB, budget,
                 time.monotonic() - started)
        log.debug("%s", self.timeline.summary())
        return evals

    def _prepare(self, target: Target) -> _Flake:
        try:
            lock = lockfile.read(target.flake.path / "flake.lock")
        except lockfile.LockError as err:
            # ci-nix's own message names the file and the fix; Nix's would be a parser error.
            flake = _Flake(target, None, failure=Failure(FailureType.EVAL, str(err)))
            flake.finished = time.monotonic()
            return flake
        return _Flake(target, lock)

    def _fill(self) -> None:
        while len(self.running) < self.size and self.pending and self._room():
            flake, tasks, alone = self.pending.popleft()
            if tasks is None:
                if self.on_start is not None:
                    self.on_start(flake.target)
                # Unfiltered, the worker that lists goes straight on to evaluate everything.
                self._spawn(flake, lists=True,
                            tasks=[] if self.selection.filtered else None)
            else:
                self._spawn(flake, lists=False, tasks=tasks).alone = alone
        while len(self.running) < self.size and self._room() and self._steal():
            pass

    def _room(self) -> bool:
        """Whether one more worker fits: none runs alone, and the workers' memory (each at least
        the size a worker has after its first attribute, as a young one will grow to that)
        plus one more of that size stays within _SOFT_TOTAL of the total. The first worker
        always starts."""
        if not self.running:
            return True
        if any(w.alone and w.stop is None for w in self.running):
            return False
        if self.total is None:
            return True
        if self.careful and not self.fresh:
            return False  # how big a worker grows is not known before one has done a task
        size = self.fresh or self.peak_rss
        used = self.beside + sum(w.rss if w.stop is not None else max(w.rss, size)
                                 for w in self.running)
        if used + size <= self.total * _SOFT_TOTAL:
            return True
        self.held += 1
        return False

    def _queue(self, flake: _Flake, tasks: list[Task] | None, *, front: bool = False,
               alone: bool = False) -> None:
        """Work for a free worker: listing the flake (tasks None), or these tasks."""
        flake.outstanding += 1
        if front:
            self.pending.appendleft((flake, tasks, alone))
        else:
            self.pending.append((flake, tasks, alone))

    def _finish(self, flake: _Flake) -> None:
        """The flake's last unit of work is done: its result, and progress hears of it."""
        flake.result = self._result(flake)
        if self.on_flake is not None:
            self.on_flake(flake.result)
        self._listed(flake)

    def _listed(self, flake: _Flake) -> None:
        """The flake's attributes are known (or it has failed): on_listed hears of them, and
        once every flake's are, on_job of the jobs held meanwhile."""
        if flake not in self.unlisted:
            return
        self.unlisted.discard(flake)
        if self.on_listed is not None and flake.listing is not None:
            # what can have a result: without --only, a group that failed to list is a case
            groups = flake.listing.group_errors if self.selection.only is None else ()
            self.on_listed(flake.target, (*flake.attrs, *groups))
        if not self.unlisted and self.on_job is not None:
            held, self.held_jobs = self.held_jobs, []
            for target, job in held:
                self.on_job(target, job)

    def _spawn(self, flake: _Flake, *, lists: bool, tasks: list[Task] | None) -> _Worker:
        """Start a worker on a unit of work taken from `pending` (or split off a busy one's)."""
        process = self.backend.start(flake.target, self.selection, list_attrs=lists,
                                     tasks=tasks)
        now = time.monotonic()
        worker = _Worker(flake, process, lists, list(tasks or []),
                         owned=len(tasks or []), spawned=now, phase_start=now)
        flake.evaluations += 1
        self.spawned += 1
        self.running.append(worker)
        self.timeline.running(len(self.running))
        worker.reader = threading.Thread(target=self._read, args=(worker,), daemon=True)
        worker.reader.start()
        return worker

    def _read(self, worker: _Worker) -> None:
        for line in worker.process.lines():
            event = self.backend.parse(line)
            if isinstance(event, Begin | Done):
                self.events.put((worker, _Line(line, event, time.monotonic(),
                                               self.probe.process(worker.process.pid))))
            else:
                self.events.put((worker, _Line(line, event)))
        self.events.put((worker, _Exit(worker.process.wait())))

    def _steal(self) -> bool:
        """Give an idle worker the back of what a busy one has not begun, where that ends the
        flake sooner."""
        now = time.monotonic()
        best: tuple[int, _Worker] | None = None
        for worker in self.running:
            unbegun = worker.owned - worker.next
            if (worker.stop is not None or worker.alone or unbegun < 1
                    or (worker.lists and worker.flake.listing is None)):
                continue
            take = self._share(worker, now)
            if take >= 1 and (best is None or take > best[0]):
                best = (take, worker)
        if best is None:
            return False
        take, victim = best
        victim.owned -= take
        stolen = victim.tasks[victim.owned:victim.owned + take]
        log.debug("%s: a new worker takes %d of %d unbegun attributes", victim.flake.id, take,
                  take + victim.owned - victim.next)
        victim.flake.outstanding += 1
        self._spawn(victim.flake, lists=False, tasks=stolen)
        return True

    def _share(self, victim: _Worker, now: float) -> int:
        """How many of the victim's unbegun tasks a new worker should take (0: none).

        A new worker pays its start-up and, in its first task, what the flake's tasks share (a
        fresh Nix imports nixpkgs or a fleet's shared modules again): it takes k tasks only
        where it ends them before the victim would have ended all it has left, and k balances
        the two. Judged from the flake's tasks so far, so cheap attributes (packages that take
        milliseconds) stay with their worker, expensive ones (hosts) are shared within a
        fraction of the first one's time, and the last host or two at the tail are left to the
        worker that already paid for the shared part.
        """
        if self.startup is None or victim.next == 0:
            return 0  # nothing seen yet
        flake, unbegun = victim.flake, victim.owned - victim.next
        if not flake.later:
            # No worker has ended a second task: half of the rest (the current one counts as
            # half), where it likely outlasts a new worker's start-up at the victim's pace.
            take = (unbegun + 1) // 2 if victim.current is not None else unbegun // 2
            pace = (now - victim.spawned - self.startup) / victim.next  # the current one too
            return take if take >= 1 and pace * take >= self.startup else 0
        per_task = sum(flake.later) / len(flake.later)
        extra = max(0.0, sum(flake.first) / len(flake.first) - per_task) if flake.first else 0
        left = unbegun * per_task  # the victim's work still to do
        if victim.current is not None:
            expected = per_task + (extra if victim.done == 0 else 0.0)
            left += max(0.0, expected - (now - victim.task_start))
        fresh = self.startup + extra  # what a new worker pays before its share's own work
        take = min(unbegun, int((left - fresh) / (2 * per_task) + 0.5)) if per_task > 0 else 0
        return take if take >= 1 and fresh + take * per_task < left else 0

    def _stop_all(self) -> None:
        for worker in self.running:
            worker.process.kill()
        for worker in self.running:
            if worker.reader is not None:
                worker.reader.join(timeout=10)
        self.running.clear()

    # --- what workers say -------------------------------------------------------------------

    def _handle(self, worker: _Worker, item: _Line | _Exit) -> None:
        if isinstance(item, _Exit):
            self._exited(worker, item.returncode)
            return
        event = item.event
        if event is None:
            worker.stderr.append(item.text)
            return
        flake, now = worker.flake, time.monotonic()
        if isinstance(event, CommitRead):
            flake.commit_read.add(event.name)
        elif isinstance(event, SourceRead):
            flake.sources.append(event.rev)
        elif isinstance(event, Listed) and worker.lists:
            flake.attrs.append(event.path)
            if not self.selection.filtered:
                worker.tasks.append(Task(event.path))
        elif isinstance(event, ListingDone) and worker.lists:
            flake.listing = event
            if self.selection.filtered:
                wanted = [Task(p) for p in flake.attrs if self.selection.wants(flake.id, p)]
                if wanted:
                    self._queue(flake, wanted)
            else:
                worker.owned = len(worker.tasks)
            if self.selection.only is None and event.group_errors:  # --only names attributes
                self._queue(flake, [Task(g, group=True) for g in event.group_errors])
            flake.total = (sum(1 for p in flake.attrs if not self.selection.filtered
                               or self.selection.wants(flake.id, p))
                           + (len(event.group_errors) if self.selection.only is None else 0))
            self._counted(flake)
            self._listed(flake)
        elif isinstance(event, Begin) and worker.stop is None:
            if event.index >= worker.owned:
                worker.stop = "stolen"  # another worker has the rest
                worker.process.kill()
                return
            if self.startup is None or worker.next == 0:
                took = now - worker.spawned
                self.startup = took if self.startup is None else min(self.startup, took)
                self.timeline.startups.append(took)
            if worker.done and (worker.rss > self.memory
                                or self._over_total() and worker.rss > self.fresh):
                # grown past the limit (or all workers past the total, and this one past what
                # a fresh worker grows to: replacing one no bigger frees nothing, as where a
                # build beside them holds the memory): the rest on a fresh worker, before this
                # task runs
                worker.stop = "replace"
                worker.process.kill()
                self._queue(flake, worker.tasks[event.index:worker.owned], front=True)
                return
            worker.current, worker.next, worker.phase_start = event.index, event.index + 1, now
            worker.task_rss, worker.task_start = item.rss, item.at
            flake.attr_evaluations += 1
        elif isinstance(event, Done) and event.index < len(worker.tasks):
            task = worker.tasks[event.index]
            flake.results[task] = event.result
            self._job_done(flake, task, event.result)
            if worker.current == event.index:
                took = max(0.0, item.at - worker.task_start)
                flake.costs[task] = EvalCost(took, max(0, item.rss - worker.task_rss) / _MIB)
                (flake.later if worker.done else flake.first).append(took)
            worker.current, worker.phase_start = None, now
            worker.done += 1
            worker.rss = max(worker.rss, item.rss)
            self.peak_rss = max(self.peak_rss, worker.rss)
            if worker.done == 1:
                self.fresh = max(self.fresh, worker.rss)
            self._counted(flake)

    def _exited(self, worker: _Worker, returncode: int) -> None:
        self.running.remove(worker)
        self.timeline.running(len(self.running))
        flake = worker.flake
        flake.finished = time.monotonic()
        cancelled = proc.cancelled()
        if cancelled is not None:
            raise Cancelled(cancelled)
        self._blame(worker, returncode)
        self._counted(flake)
        flake.outstanding -= 1
        if flake.outstanding == 0:
            self._finish(flake)

    def _job_done(self, flake: _Flake, task: Task, result: HelperResult) -> None:
        """on_job hears of an attribute that evaluated to a derivation (as _result will have
        it); an error waits for the flake's end, where it is placed and reported."""
        if (self.on_job is None or task.group or result.stderr is not None
                or self.selection.filtered and not self.selection.wants(flake.id, task.path)):
            return
        found = _to_job(flake, result, _simple_failure)
        if isinstance(found, Job) and self.unlisted:
            self.held_jobs.append((flake.target, found))
        elif isinstance(found, Job):
            self.on_job(flake.target, found)

    def _counted(self, flake: _Flake) -> None:
        """on_attr hears of a new count (listed, or an attribute's result or failure)."""
        done = len(flake.results) + len(flake.stopped)
        if self.on_attr is not None and flake.listing is not None and done != flake.counted:
            flake.counted = done
            self.on_attr(flake.target, done, flake.total)

    def _blame(self, worker: _Worker, returncode: int) -> None:
        """Account for a worker that ended: the task it was on, and what it did not begin."""
        flake = worker.flake
        text = "\n".join(worker.stderr)
        if worker.lists and flake.listing is None:
            # Not even the attribute names: flake.nix or flake.lock is broken (or too big/slow).
            flake.failure = (self._limit_failure(worker.stop, FLAKE_CASE)
                             or self._failure(flake, text))
            return
        if worker.stop in ("stolen", "replace", "budget"):
            return  # the rest is already someone else's
        culprit = worker.culprit()
        if culprit is None:
            return  # finished everything it owned
        task = worker.tasks[culprit]
        rest = worker.tasks[culprit + 1:worker.owned]
        if worker.current is not None:
            grown = worker.peak_rss - worker.task_rss
            flake.costs[task] = EvalCost(max(0.0, time.monotonic() - worker.task_start),
                                         max(0, grown) / _MIB)
        # Killed by something else (the kernel's OOM killer sends SIGKILL), or Nix out of memory
        killed = worker.stop is None and (returncode in _KILLED
                                          or any(t in text for t in _OOM_TEXT))
        if worker.stop == "memory" and worker.done:
            # Grown by earlier tasks: this one gets a fresh worker before it is blamed.
            rest = worker.tasks[culprit:worker.owned]
        elif killed and task not in flake.retried:
            # Perhaps the other workers' memory, not its own: once more, on a worker of its
            # own that no other worker joins until it is done.
            flake.retried.add(task)
            log.info("%s: the worker on %s was killed (%s); trying it again alone", flake.id,
                     attr_display(task.path), "SIGKILL" if returncode in _KILLED
                     else "out of memory")
            if rest:
                self._queue(flake, rest, front=True)
            self._queue(flake, [task], front=True, alone=True)
            return
        elif killed or worker.stop in ("memory", "timeout"):
            why = worker.stop or "oom"  # oom: the kernel or Nix itself, not --eval-memory
            failure = self._limit_failure(why, attr_display(task.path))
            assert failure is not None
            flake.stopped[task] = failure
        elif returncode == 0:
            rest = worker.tasks[culprit:worker.owned]  # ended early without an error: go on
            if worker.next == culprit and not worker.done:
                # it never began them; do not loop on a worker that cannot start
                flake.results[task] = HelperResult(task.path, stderr=text or
                                                   "the evaluation worker ended early")
                rest = rest[1:]
        else:
            flake.results[task] = HelperResult(task.path, stderr=text)
        if rest:
            self._queue(flake, rest, front=True)

    def _limit_failure(self, stop: str | None, name: str) -> Failure | None:
        if stop == "memory":
            limit = self.memory // _MIB
            if self.total is not None and self.memory == self.total:  # the total binds
                return Failure(
                    FailureType.EVAL,
                    f"evaluation ran out of memory: {name} alone took a fresh worker past "
                    f"--eval-memory-total {limit} MiB",
                    hint="raise --eval-memory-total (eval.memory-total in ci-nix.yaml) if "
                    "the machine has the memory")
            return Failure(
                FailureType.EVAL,
                f"evaluation ran out of memory: {name} alone took a fresh worker past "
                f"--eval-memory {limit} MiB",
                hint="raise --eval-memory (eval.memory in ci-nix.yaml) if the machine has the "
                "memory, with fewer --workers so they fit together")
        if stop == "oom":
            return Failure(
                FailureType.EVAL,
                f"evaluation ran out of memory: the worker evaluating {name} was killed (signal "
                "9, usually the kernel's out-of-memory killer) or Nix ran out of memory, again "
                "when tried alone",
                hint="give the runner more memory, or set --eval-memory-total (eval.memory-total"
                " in ci-nix.yaml) below what the machine has free, so ci-nix runs fewer workers "
                "and replaces them before the kernel acts")
        if stop == "timeout":
            return Failure(
                FailureType.TIMEOUT,
                f"evaluation of {name} took longer than --eval-timeout {self.timeout:g}s; "
                "stopped",
                hint="raise --eval-timeout (eval.timeout in ci-nix.yaml) if it is only slow; "
                "an evaluation that never ends is usually a loop in the Nix code")
        return None

    def _failure(self, flake: _Flake, stderr: str) -> Failure:
        """The failure an evaluation error is, placed in the workspace repo it points into.

        Raises ToolError when the error is the machine's (a full disk): blaming the flake would
        be wrong, and a comparison that lost both sides to it would look green.
        """
        from ci_nix import diagnose  # the classifier: loaded where an evaluation failed

        problem = diagnose.host_problem(stderr, os.environ.get("TMPDIR") or "/tmp")
        if problem is not None:
            raise ToolError(f"Nix could not evaluate {flake.id} on this machine: {problem}")
        trees = self.sources(flake.target) if self.sources and "-source/" in stderr else ()
        return diagnose.eval_failure(stderr, flake.target.flake, trees)

    # --- limits -----------------------------------------------------------------------------

    def _watch(self) -> None:
        now = time.monotonic()
        if now - self.watched < self.tick:
            return  # a /proc scan per event would cost more than the events
        self.watched = now
        live = [w for w in self.running if w.stop is None]
        if not live:
            return
        sizes = self.probe.groups([w.process.pid for w in live])
        self.beside = self.probe.beside({w.process.pid for w in self.running})
        self.peak_beside = max(self.peak_beside, self.beside)
        for worker in live:
            rss = worker.rss = sizes.get(worker.process.pid, 0)
            worker.peak_rss = max(worker.peak_rss, rss)
            self.peak_rss = max(self.peak_rss, rss)
            if self.timeout and now - worker.phase_start > self.timeout:
                worker.stop = "timeout"
            elif rss > self.memory:
                worker.stop = "memory"
            else:
                continue
            log.info("%s: stopping a worker (%s) on %s", worker.flake.id, worker.stop,
                     self._describe(worker))
            worker.process.kill()
        # a stopped worker holds its memory until it ends
        used = self.beside + sum(w.rss for w in self.running)
        self.peak_sum = max(self.peak_sum, used)
        near = ((self.total is not None and used > self.total * _NEAR)
                or any(w.rss > self.memory * _NEAR for w in live))
        self.tick = _FAST_TICK if near else _TICK
        if self.total is not None and used > self.total * _HARD_TOTAL:
            self._make_room(used)

    def _over_total(self) -> bool:
        """Whether the workers are near the total: a worker between two attributes is then
        replaced (a fresh one is smaller than one grown over many), before the sum gets
        past it and one has to be stopped mid-way."""
        return (self.total is not None
                and self.beside + sum(w.rss for w in self.running) > self.total * _SOFT_TOTAL)

    def _make_room(self, used: int) -> None:
        """All workers (with the builds beside them) are past the total: stop the one whose
        attribute began last (the least work lost); its attributes go back to the front of the
        queue and wait for room. One that lists, runs alone or is the last one running is left
        to --eval-memory: a build alone past the total slows evaluation to one worker, never
        stops it (the build is bounded by Nix's max-jobs and cores)."""
        if any(w.stop is not None for w in self.running):
            return  # one is already ending, which frees its memory
        live = [w for w in self.running if not w.alone
                and not (w.lists and w.flake.listing is None)]
        if len(self.running) < 2 or not live:
            return
        victim = max(live, key=lambda w: w.phase_start)
        start = victim.current if victim.current is not None else victim.next
        victim.stop = "budget"
        log.info("%s: all workers at %d MiB%s, past --eval-memory-total %d MiB: stopping the "
                 "worker on %s until there is room", victim.flake.id, used // _MIB,
                 f" with the builds beside them ({self.beside // _MIB} MiB)" if self.beside
                 else "", (self.total or 0) // _MIB, self._describe(victim))
        victim.process.kill()
        if start < victim.owned:
            self._queue(victim.flake, victim.tasks[start:victim.owned], front=True)

    def _describe(self, worker: _Worker) -> str:
        culprit = worker.culprit()
        if worker.lists and worker.flake.listing is None or culprit is None:
            return "its attribute list"
        return attr_display(worker.tasks[culprit].path)

    # --- results ----------------------------------------------------------------------------

    def _result(self, flake: _Flake) -> FlakeEval:
        elapsed = max(0.0, (flake.finished or time.monotonic()) - flake.started)
        flake_id = flake.id
        if flake.failure is not None:
            case = Case(flake_id, FLAKE_CASE, Status.FAILED, failure=flake.failure, time=elapsed)
            return FlakeEval(flake.target, (), (case,), flake.evaluations, elapsed)
        assert flake.listing is not None
        cases: list[Case] = []
        stale = _stale_lock(flake, flake.lock, flake.listing.input_names)
        only = self.selection.only
        if stale is not None and (only is None or (flake_id, FLAKE_CASE) in only):
            # The attributes are still built: their results say what the change does.
            cases.append(Case(flake_id, FLAKE_CASE, Status.FAILED, failure=stale))
        tasks = [Task(p) for p in flake.attrs
                 if not self.selection.filtered or self.selection.wants(flake_id, p)]
        if only is None:
            tasks += [Task(g, group=True) for g in flake.listing.group_errors]
        jobs: list[Job] = []
        for task in tasks:
            if task in flake.stopped:
                cases.append(Case(flake_id, attr_display(task.path), Status.FAILED,
                                  failure=flake.stopped[task]))
                continue
            result = flake.results.get(task) or HelperResult(
                task.path, stderr="ci-nix lost track of this attribute's evaluation")
            job_or_case = _to_job(flake, result, lambda text: self._failure(flake, text))
            if isinstance(job_or_case, Job):
                jobs.append(job_or_case)
            else:
                cases.append(job_or_case)
        log.debug("evaluated %s: %s, %s, %s in %.1fs", flake_id, count(len(jobs), "job"),
                 count(len(cases), "failure"), count(flake.evaluations, "evaluation"), elapsed)
        costs = tuple((attr_display(t.path), flake.costs[t]) for t in tasks
                      if not t.group and t in flake.costs)
        return FlakeEval(flake.target, tuple(jobs), tuple(cases), flake.evaluations, elapsed,
                         flake.attr_evaluations, tuple(attr_display(p) for p in flake.attrs),
                         costs=costs, commit_read=tuple(sorted(flake.commit_read)),
                         # known only when every Nix process started for it said
                         source_revs=(tuple(flake.sources)
                                      if len(flake.sources) == flake.evaluations else None))


def _stale_lock(flake: _Flake, lock: lockfile.Lock | None,
                declared: Sequence[str]) -> Failure | None:
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
    subdir = flake.target.flake.subdir
    where = f"{subdir}/flake.lock" if subdir else "flake.lock"
    names = ", ".join(f"'{name}'" for name in missing)
    what = "has no flake.lock" if lock is None else f"{where} is out of date with flake.nix"
    return Failure(FailureType.EVAL,
                   f"{flake.id} {what}: input {names} is not locked; run `nix flake "
                   "lock` and commit flake.lock",
                   hint="CI evaluates the committed lock; an unlocked input would be "
                   "fetched at whatever version it resolves to today", file=where)


def _simple_failure(text: str) -> Failure:
    from ci_nix import diagnose  # the classifier: loaded where an evaluation failed

    return diagnose.simple_eval_failure(text)


def _to_job(flake: _Flake, result: HelperResult,
            failure: Callable[[str], Failure]) -> Job | Case:
    name = attr_display(result.path)
    if result.stderr is not None:
        return Case(flake.id, name, Status.FAILED, failure=failure(result.stderr))
    if result.error is not None or result.drv_path is None:
        return Case(flake.id, name, Status.FAILED, failure=_simple_failure(
            result.error or "evaluated to no derivation path"))
    if not result.system:
        # A guessed system would be skipped as unsupported or routed nowhere: a false green.
        return Case(flake.id, name, Status.FAILED, failure=_simple_failure(
            f"{name}: cannot tell which system it is for: set nixpkgs.hostPlatform in the "
            "configuration (its toplevel derivation names no system either)"))
    return Job(flake=flake.id, attr=result.path, system=result.system,
               drv_path=result.drv_path, outputs=result.outputs)
