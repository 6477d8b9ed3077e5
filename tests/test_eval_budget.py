"""The evaluation pool's total memory budget, kernel kills and per-attribute cost, in memory: a
scripted backend stands in for Nix and the test decides what each worker's memory reads."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from helpers import wait_for

from ci_nix import config, evaluate
from ci_nix.errors import ConfigError
from ci_nix.evaluate import Probe, Selection, Task
from ci_nix.models import Flake, FlakeEval, Repo, Status, Target
from ci_nix.tools import proc
from ci_nix.tools.nix import WORKER_LINE, Nix, WorkerEvent, parse_worker_line

X86 = "x86_64-linux"
MIB = 1024 * 1024


def _say(value: object) -> str:
    return WORKER_LINE + json.dumps(value)


class FakeWorker(proc.Running):
    """A worker process that lists its flake's attributes and answers its tasks, holding each
    until the test opens the attribute's gate; killed, it ends with -9 as a SIGKILLed one."""

    def __init__(self, backend: ScriptedNix, pid: int, flake: str, attrs: Sequence[str],
                 tasks: Sequence[Task] | None, list_attrs: bool) -> None:
        self.pid, self.backend, self.flake = pid, backend, flake
        self.attrs, self.tasks, self.list_attrs = list(attrs), tasks, list_attrs
        self.killed = threading.Event()
        self.ended = threading.Event()

    def names(self) -> list[str]:
        return [t.path[-1] for t in self.tasks or ()]

    def lines(self) -> Iterator[str]:
        try:
            paths = [["packages", X86, name] for name in self.attrs]
            if self.list_attrs:
                for path in paths:
                    yield _say({"attr": path})
                yield _say({"listed": {"groupErrors": [], "inputNames": []}})
            tasks = ([list(t.path) for t in self.tasks] if self.tasks is not None else paths)
            for index, path in enumerate(tasks):
                if self.killed.is_set():
                    return
                yield _say({"begin": index})
                self.backend.begun(self, path[-1])
                gate = self.backend.gates.get(path[-1])
                while gate is not None and not gate.wait(0.01):
                    if self.killed.is_set():
                        return
                if self.killed.is_set():
                    return
                self.backend.rss[self.pid] += self.backend.grows.get(path[-1], 0)
                with self.backend.lock:
                    self.backend.history.append(("done", self.pid))
                yield _say({"done": index, "result": {
                    "path": path, "drvPath": f"/nix/store/{'a' * 32}-{path[-1]}.drv",
                    "system": X86, "outputs": {"out": f"/nix/store/{'b' * 32}-{path[-1]}"}}})
        finally:
            self.backend.ended(self)

    def wait(self) -> int:
        self.ended.wait(10)
        return -9 if self.killed.is_set() else 0

    def kill(self) -> None:
        self.killed.set()


@dataclass
class ScriptedNix:
    """evaluate.Backend over FakeWorkers; rss (by pid) is what the pool's Probe reads."""

    attrs: dict[str, list[str]]  # flake id -> attribute names
    size: dict[str, int] = field(default_factory=dict)  # attribute -> worker bytes once begun
    grows: dict[str, int] = field(default_factory=dict)  # attribute -> bytes it adds when done
    gates: dict[str, threading.Event] = field(default_factory=dict)
    die_on: dict[str, int] = field(default_factory=dict)  # attribute -> kernel kills left
    born: int = 10 * MIB  # a worker's bytes from its start
    rss: dict[int, int] = field(default_factory=dict)
    workers: list[FakeWorker] = field(default_factory=list)
    alive: set[int] = field(default_factory=set)
    history: list[tuple[str, int]] = field(default_factory=list)  # ("start"/"done"/"end", pid)
    peak_sum: int = 0
    beside: dict[int, int] = field(default_factory=dict)  # ci-nix's other commands -> bytes
    most_alive: int = 0  # workers alive at once, at most
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, target: Target, selection: Selection, *, list_attrs: bool,
              tasks: Sequence[Task] | None) -> proc.Running:
        with self.lock:
            worker = FakeWorker(self, 5_000_000 + len(self.workers), target.flake.id,
                                self.attrs[target.flake.subdir], tasks, list_attrs)
            self.workers.append(worker)
            self.alive.add(worker.pid)
            self.most_alive = max(self.most_alive, len(self.alive))
            self.rss[worker.pid] = self.born
            self.history.append(("start", worker.pid))
        return worker

    def parse(self, line: str) -> WorkerEvent | None:
        return parse_worker_line(line)

    def begun(self, worker: FakeWorker, name: str) -> None:
        with self.lock:
            self.rss[worker.pid] = max(self.rss[worker.pid], self.size.get(name, 0))
            if self.die_on.get(name, 0) > 0:  # the kernel's OOM killer, as the pool sees it
                self.die_on[name] -= 1
                worker.killed.set()

    def ended(self, worker: FakeWorker) -> None:
        with self.lock:
            self.alive.discard(worker.pid)
            self.history.append(("end", worker.pid))
        worker.ended.set()

    def probe(self) -> Probe:
        def groups(pids: Sequence[int]) -> dict[int, int]:
            with self.lock:
                sizes = {pid: self.rss[pid] if pid in self.alive else 0 for pid in pids}
                self.peak_sum = max(self.peak_sum, sum(self.rss[p] for p in self.alive))
                return sizes

        def beside(workers: Collection[int]) -> int:
            assert set(workers) <= set(self.rss)
            with self.lock:
                return sum(self.beside.values())
        return Probe(groups=groups, process=lambda pid: self.rss.get(pid, 0), beside=beside)


def _targets(tmp_path: Path, ids: Sequence[str]) -> list[Target]:
    repo = Repo("ws", tmp_path)
    for flake_id in ids:
        (tmp_path / flake_id).mkdir(exist_ok=True)
    return [Target(Flake(repo, flake_id)) for flake_id in ids]


def _evaluate(backend: ScriptedNix, targets: Sequence[Target],
              limits: evaluate.Limits) -> list[FlakeEval]:
    selection = Selection(systems=(X86,), outputs=("packages",))
    return evaluate.evaluate(cast(Nix, None), targets, selection, limits, backend=backend,
                             probe=backend.probe())


def _run_in_thread(backend: ScriptedNix, targets: Sequence[Target],
                   limits: evaluate.Limits) -> tuple[threading.Thread, list[FlakeEval]]:
    results: list[FlakeEval] = []
    thread = threading.Thread(target=lambda: results.extend(_evaluate(backend, targets, limits)),
                              daemon=True)
    thread.start()
    return thread, results


def _wait(condition: Callable[[], object], what: str) -> None:
    wait_for(condition, 20, what)


def _all_evaluated(backend: ScriptedNix, thread: threading.Thread,
                   results: list[FlakeEval]) -> None:
    """Let every attribute end: f1, f2 and f3 each evaluated their one, and nothing failed."""
    for gate in backend.gates.values():
        gate.set()
    thread.join(20)
    assert not thread.is_alive()
    assert [sorted(j.attr[-1] for j in e.jobs) for e in results] == [["a"], ["b"], ["c"]]
    assert not [c for e in results for c in e.cases]


def test_workers_past_the_total_make_room_and_nothing_fails(tmp_path: Path) -> None:
    """Three workers grow to 295 MiB under a 900 MiB total (3 x --eval-memory 300 fit, so
    they start at once): past 97% of it the one whose attribute began last is stopped, its
    attribute waits for room, and every attribute still evaluates."""
    names = {"f1": ["a"], "f2": ["b"], "f3": ["c"]}
    backend = ScriptedNix(names, size=dict.fromkeys("abc", 295 * MIB),
                          gates={n: threading.Event() for n in "abc"})
    thread, results = _run_in_thread(backend, _targets(tmp_path, list(names)),
                                     evaluate.Limits(workers=3, memory_mib=300,
                                                     memory_total_mib=900))
    _wait(lambda: any(w.killed.is_set() for w in backend.workers) or None,
          "a worker stopped for room")
    _wait(lambda: len(backend.alive) == 2 or None, "the stopped worker ended")
    [stopped] = [w for w in backend.workers if w.killed.is_set()]
    # two of 295 MiB run: a third does not fit in 90% of 900 MiB, so the attribute waits
    assert len(backend.workers) == 3
    running = next(w for w in backend.workers if w is not stopped)
    backend.gates[running.attrs[0]].set()
    _wait(lambda: len(backend.workers) == 4 or None, "the stopped attribute started again")
    assert backend.workers[3].names() == stopped.attrs  # alone, as the task it was on
    _all_evaluated(backend, thread, results)


def test_a_new_worker_starts_only_where_one_more_of_the_largest_fits(tmp_path: Path) -> None:
    """Workers of 600 MiB under a 1500 MiB total: of 4 allowed, 2 run at a time."""
    names = [f"a{i}" for i in range(6)]
    backend = ScriptedNix({"fleet": names}, born=600 * MIB,
                          gates={n: threading.Event() for n in names[1:]})
    thread, results = _run_in_thread(backend, _targets(tmp_path, ["fleet"]),
                                     evaluate.Limits(workers=4, memory_total_mib=1500))
    _wait(lambda: len(backend.workers) >= 2 or None, "a second worker")
    for gate in backend.gates.values():
        gate.set()
    thread.join(20)
    assert not thread.is_alive()
    assert sorted(j.attr[-1] for e in results for j in e.jobs) == names
    assert not [c for e in results for c in e.cases]
    assert backend.most_alive == 2
    assert backend.peak_sum <= 1500 * MIB
    # 4 x --eval-memory 4096 could pass the total: the second started after the first was done
    starts = [i for i, (what, _) in enumerate(backend.history) if what == "start"]
    assert starts[1] > backend.history.index(("done", backend.workers[0].pid))


def test_workers_that_fit_anyway_start_at_once(tmp_path: Path) -> None:
    """--workers 3 x --eval-memory 300 fit in 1000 MiB: no waiting for a first size."""
    names = {"f1": ["a"], "f2": ["b"], "f3": ["c"]}
    backend = ScriptedNix(names, gates={n: threading.Event() for n in "abc"})
    thread, results = _run_in_thread(backend, _targets(tmp_path, list(names)),
                                     evaluate.Limits(workers=3, memory_mib=300,
                                                     memory_total_mib=1000))
    _wait(lambda: len(backend.alive) == 3 or None, "three workers before any attribute is done")
    for gate in backend.gates.values():
        gate.set()
    thread.join(20)
    assert [sorted(j.attr[-1] for j in e.jobs) for e in results] == [["a"], ["b"], ["c"]]


def _runner_16gb(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16 GB runner: MemTotal 15.6 GiB (the default total, 7.8 GiB, is below 2 x 4096 MiB),
    14 GiB of it free."""
    sizes = {"MemTotal": 15_600 * MIB, "MemAvailable": 14_000 * MIB}
    monkeypatch.setattr(proc, "machine_memory",
                        lambda meminfo=None, key="MemTotal": sizes[key])


def test_with_the_default_total_two_workers_start_at_once_where_the_machine_has_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _runner_16gb(monkeypatch)
    names = {"f1": ["a"], "f2": ["b"]}
    backend = ScriptedNix(names, gates={n: threading.Event() for n in "ab"})
    thread, results = _run_in_thread(backend, _targets(tmp_path, list(names)),
                                     evaluate.Limits(workers=2))
    # 2 x 4096 MiB fit in the 14 GiB free: no waiting for the first one's size
    _wait(lambda: len(backend.alive) == 2 or None, "two workers before any attribute is done")
    for gate in backend.gates.values():
        gate.set()
    thread.join(20)
    assert [sorted(j.attr[-1] for j in e.jobs) for e in results] == [["a"], ["b"]]


def test_with_the_default_total_a_second_worker_waits_where_all_could_pass_what_is_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _runner_16gb(monkeypatch)
    names = {f"f{i}": [f"a{i}"] for i in range(4)}
    backend = ScriptedNix(names)
    results = _evaluate(backend, _targets(tmp_path, list(names)), evaluate.Limits(workers=4))
    assert [len(e.jobs) for e in results] == [1, 1, 1, 1]
    # 4 x 4096 MiB could pass the 14 GiB free: the second started after the first was done
    starts = [i for i, (what, _) in enumerate(backend.history) if what == "start"]
    assert starts[1] > backend.history.index(("done", backend.workers[0].pid))


def test_a_kernel_killed_attribute_is_retried_alone_once_then_fails_out_of_memory(
        tmp_path: Path) -> None:
    backend = ScriptedNix({"fleet": ["a", "hog", "z"], "other": ["o"]},
                          die_on={"hog": 2})
    [fleet, other] = _evaluate(backend, _targets(tmp_path, ["fleet", "other"]),
                               evaluate.Limits(workers=2, memory_total_mib=100_000))
    assert sorted(j.attr[-1] for j in fleet.jobs) == ["a", "z"]
    assert [j.attr[-1] for j in other.jobs] == ["o"]
    [case] = fleet.cases
    assert case.name == f"packages.{X86}.hog" and case.status is Status.FAILED
    assert case.failure is not None and case.failure.type.value == "eval"
    assert "out of memory" in case.failure.message and "again when tried alone" in \
        case.failure.message
    assert case.failure.hint and "--eval-memory-total" in case.failure.hint
    [retry] = [w for w in backend.workers if w.names() == ["hog"]]
    # alone: no other worker started while it ran
    began = backend.history.index(("start", retry.pid))
    ended = backend.history.index(("end", retry.pid))
    assert not [e for e in backend.history[began + 1:ended] if e[0] == "start"]


def test_one_kernel_kill_costs_one_retry_and_the_attribute_passes(tmp_path: Path) -> None:
    backend = ScriptedNix({"fleet": ["a", "hog", "z"]}, die_on={"hog": 1})
    [fleet] = _evaluate(backend, _targets(tmp_path, ["fleet"]),
                        evaluate.Limits(workers=1, memory_total_mib=100_000))
    assert sorted(j.attr[-1] for j in fleet.jobs) == ["a", "hog", "z"]
    assert not fleet.cases
    assert fleet.attr_evaluations == 4  # a, hog, hog again, z


def test_each_attribute_has_its_evaluation_time_and_memory_growth(tmp_path: Path) -> None:
    backend = ScriptedNix({"fleet": ["a", "b"]}, born=100 * MIB,
                          grows={"a": 250 * MIB, "b": 30 * MIB})
    [fleet] = _evaluate(backend, _targets(tmp_path, ["fleet"]), evaluate.Limits(workers=1))
    costs = dict(fleet.costs)
    assert set(costs) == {f"packages.{X86}.a", f"packages.{X86}.b"}
    assert costs[f"packages.{X86}.a"].memory_mib == 250
    assert costs[f"packages.{X86}.b"].memory_mib == 30
    assert all(cost.seconds >= 0 for cost in costs.values())


def test_memory_total_flag_and_key(tmp_path: Path) -> None:
    file = tmp_path / "ci-nix.yaml"
    file.write_text("eval:\n  memory-total: 1500\n")
    loaded = config.load(file).eval
    assert loaded.memory_total == 1500
    assert evaluate.EvalFlags().limits(loaded).memory_total_mib == 1500
    assert evaluate.EvalFlags(memory_total_mib=900).limits(loaded).memory_total_mib == 900
    assert evaluate.EvalFlags().limits(config.EvalConfig()).memory_total_mib is None
    with pytest.raises(ConfigError, match="--eval-memory-total 0: give the MiB"):
        evaluate.EvalFlags(memory_total_mib=0).limits(loaded)
    file.write_text("eval:\n  memory-total: 0\n")
    with pytest.raises(ConfigError, match="'eval.memory-total' must be a whole number"):
        config.load(file)


def test_the_default_total_is_half_the_machine(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384000 kB\nMemFree:  100 kB\n")
    assert proc.machine_memory(meminfo) == 16384000 * 1024
    assert proc.machine_memory(tmp_path / "missing") is None
    meminfo.write_text("MemTotal: lots\n")
    assert proc.machine_memory(meminfo) is None
    machine = proc.machine_memory()
    assert machine is not None
    assert evaluate.default_memory_total_mib() == machine // 2 // MIB


def test_an_attribute_past_a_total_below_eval_memory_names_the_total(tmp_path: Path) -> None:
    backend = ScriptedNix({"fleet": ["a", "big"]}, size={"big": 700 * MIB},
                          gates={"big": threading.Event()})
    [fleet] = _evaluate(backend, _targets(tmp_path, ["fleet"]),
                        evaluate.Limits(workers=1, memory_mib=4096, memory_total_mib=600))
    assert [j.attr[-1] for j in fleet.jobs] == ["a"]
    [case] = fleet.cases
    assert case.failure is not None and case.failure.type.value == "eval"
    assert "past --eval-memory-total 600 MiB" in case.failure.message
    assert case.failure.hint and "eval.memory-total" in case.failure.hint


def test_a_build_beside_the_workers_counts_against_the_total(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A run builds while it evaluates: its `nix build` (and, with single-user Nix, the builders
    it forks) is in the total. Three workers of 295 MiB fit 900 MiB alone; beside a build of
    400 MiB, workers are stopped for room until one runs, and the attributes wait instead of
    failing; once the build has ended they go on."""
    caplog.set_level("INFO", logger="ci_nix.evaluate")
    names = {"f1": ["a"], "f2": ["b"], "f3": ["c"]}
    backend = ScriptedNix(names, size=dict.fromkeys("abc", 295 * MIB),
                          gates={n: threading.Event() for n in "abc"},
                          beside={4_000_000: 400 * MIB})
    thread, results = _run_in_thread(backend, _targets(tmp_path, list(names)),
                                     evaluate.Limits(workers=3, memory_mib=300,
                                                     memory_total_mib=900))
    _wait(lambda: sum(w.killed.is_set() for w in backend.workers) == 2 or None,
          "two workers stopped for room beside the build")
    _wait(lambda: len(backend.alive) == 1 or None, "one worker left beside the build")
    assert "with the builds beside them (400 MiB), past --eval-memory-total 900" in caplog.text
    with backend.lock:
        backend.beside.clear()  # the build ended
    _all_evaluated(backend, thread, results)
    assert "with the builds beside them (those at most 400 MiB)" in caplog.text


def test_what_runs_beside_the_workers_is_every_command_and_all_it_started() -> None:
    """What the pool counts beside its workers: every command ci-nix has running and every
    process under it, also one in a session of its own (Nix setsid()s each builder, so the
    builders are not in the `nix build`'s process group, nor an evaluation's import-from-
    derivation builder in its worker's); not a worker's own group, which the pool reads;
    nothing once the command has ended."""
    sampler = proc.TreeSampler()
    builder = "/bin/sleep 30 & echo $!; wait"  # the builder: new session, a child under it
    running = proc.start(["setsid", "-w", "sh", "-c", builder])
    try:
        assert running.pid in proc.child_groups()
        wait_for(lambda: len(sampler.members) >= 3 or (sampler(), None)[1], 10,
                 "the builder and its child found")
        builders = sampler.members - {running.pid}
        assert len(builders) == 2 and running.pid not in {os.getpgid(p) for p in builders}
        assert sampler() > 0
        # as a worker: its own group is the pool's to read, the builder under it is not
        assert sampler(exclude=[running.pid]) > 0 and sampler.members == builders
    finally:
        running.kill()
        running.wait()
    assert running.pid not in proc.child_groups()
    assert sampler() == 0


def _fake_proc(root: Path, name: str = "nix") -> Callable[[int, int, int, int], None]:
    """process(pid, parent, group, pages): a process's stat file in a /proc of root's."""
    def process(pid: int, parent: int, group: int, pages: int) -> None:
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(
            f"{pid} ({name}) S {parent} {group} {group} 0 -1 0 " + " ".join(["0"] * 14)
            + f" {pages} 0")
    return process


def test_tree_sampler_counts_descendants_in_other_sessions_and_scans_now_and_then(
        tmp_path: Path) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    process = _fake_proc(tmp_path, "n ) x")  # a command name may hold parentheses

    now, roots = [0.0], [100, 300]
    process(100, 1, 100, 10)  # nix build
    process(101, 100, 101, 5)  # its builder, setsid()
    process(102, 101, 101, 3)  # the builder's child
    process(103, 1, 100, 1)  # in the command's group, whatever its parent
    process(200, 1, 200, 7)  # something else
    process(300, 1, 300, 2)  # an evaluation worker: excluded
    process(301, 300, 300, 2)  # in its group (a wrapper's Nix): excluded too
    process(302, 301, 302, 4)  # its import-from-derivation builder, setsid(): counted
    process(400, 401, 400, 1)  # a parent loop (pids reused), not under anything
    process(401, 400, 401, 1)
    sampler = proc.TreeSampler(rescan=1.0, proc_dir=tmp_path, clock=lambda: now[0],
                               roots=lambda: roots)
    assert sampler(exclude=[300]) == 23 * page
    now[0] = 0.5
    process(101, 100, 101, 50)  # grown: read between scans
    process(104, 101, 101, 1)  # started since: not seen before the next scan
    assert sampler(exclude=[300]) == 68 * page
    now[0] = 1.0
    assert sampler(exclude=[300]) == 69 * page
    assert sampler() == 73 * page  # nothing excluded now: a scan at once
    roots.clear()
    assert sampler() == 0


def test_the_pools_two_samplers_read_all_of_proc_once_a_tick(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool reads its workers' groups, then what runs beside them, each tick: one scan of
    /proc serves both (it read every process's stat file twice a second and more). A young
    worker's group is scanned each tick for its first second, then once a second; what runs
    beside is read from the same scans, so a builder started meanwhile is found at the next."""
    page = os.sysconf("SC_PAGE_SIZE")
    process = _fake_proc(tmp_path)
    scans = []
    listdir = os.listdir

    def counted(path: Path) -> list[str]:
        scans.append(path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    now = [0.0]
    process(100, 1, 100, 10)  # a worker
    process(200, 1, 200, 4)  # a nix build beside it
    scan = proc.ProcScan(tmp_path, lambda: now[0])
    groups = proc.GroupSampler(scan=scan)
    beside = proc.TreeSampler(scan=scan, roots=lambda: [100, 200])
    for tick in range(25):  # an eighth of a second each
        now[0] = tick / 8
        if tick == 10:
            process(201, 200, 201, 6)  # the build's builder, setsid()
        assert groups([100]) == {100: 10 * page}
        assert beside([100]) == (10 if tick >= 15 else 4) * page
    # the group's first second (8 ticks), then once a second (15, 23): none more for beside
    assert scans == [tmp_path] * 10


@pytest.mark.parametrize("grows", [0, 50])
def test_beside_a_build_a_worker_is_replaced_only_where_a_fresh_one_is_smaller(
        tmp_path: Path, grows: int) -> None:
    """A build beside the workers holds most of the total: the workers are past 90% of it, but
    a worker no bigger than a fresh one frees nothing by being replaced, and replacing it before
    every host costs each host the shared part again (nixpkgs). One that has grown past a
    fresh worker's size is replaced."""
    names = [f"h{i}" for i in range(4)]
    backend = ScriptedNix({"fleet": names}, born=100 * MIB, size=dict.fromkeys(names, 100 * MIB),
                          grows=dict.fromkeys(names[1:], grows * MIB),
                          beside={4_000_000: 750 * MIB})
    [fleet] = _evaluate(backend, _targets(tmp_path, ["fleet"]),
                        evaluate.Limits(workers=1, memory_total_mib=900))
    assert sorted(j.attr[-1] for j in fleet.jobs) == names and not fleet.cases
    # 100 + 750 MiB is past 90% of 900: without growth one worker does all four hosts (it
    # was replaced before each: 4); grown past a fresh one's 100 MiB, it is replaced
    if grows:
        assert fleet.evaluations >= 2
    else:
        assert fleet.evaluations == 1
