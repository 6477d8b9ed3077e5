"""How the evaluation pool shares a busy worker's attributes with an idle slot, and how it says
where its time went: in memory, on made-up task times (no Nix, no clock waits)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import cast

import pytest
from test_eval_budget import ScriptedNix, _evaluate, _targets

from ci_nix import evaluate
from ci_nix.evaluate import Selection, Task, free_slots
from ci_nix.models import Flake, Repo, Target
from ci_nix.tools import proc

X86 = "x86_64-linux"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import run as bench  # noqa: E402


def _victim(tmp_path: Path, *, hosts: int, begun: int, first: list[float],
            later: list[float], current_for: float | None) -> tuple[evaluate._Pool,
                                                                    evaluate._Worker]:
    """A pool whose one worker owns `hosts` tasks and has begun `begun` of them (the last one
    running for `current_for` seconds, or none running); the flake's tasks so far took
    `first` (each worker's first) and `later` seconds."""
    pool = evaluate._Pool(cast(evaluate.Backend, None),
                          Selection(systems=(X86,), outputs=("nixosConfigurations",)),
                          workers=2, memory=4096 * 1024 * 1024, timeout=0)
    pool.startup = 0.05
    flake = evaluate._Flake(Target(Flake(Repo("ws", tmp_path), "fleet")), None,
                            first=first, later=later)
    now = time.monotonic()
    tasks = [Task(("nixosConfigurations", f"h{i:02d}")) for i in range(hosts)]
    worker = evaluate._Worker(flake, cast(proc.Running, None), lists=True, tasks=tasks,
                              owned=hosts, spawned=now - 10, phase_start=now)
    worker.next = begun
    worker.done = begun - (current_for is not None)
    if current_for is not None:
        worker.current, worker.task_start = begun - 1, now - current_for
    pool.running.append(worker)
    return pool, worker


def test_the_first_split_is_half_of_the_rest(tmp_path: Path) -> None:
    # nothing is known of later tasks yet: an idle slot takes the back half at once
    pool, worker = _victim(tmp_path, hosts=32, begun=1, first=[], later=[], current_for=0.5)
    assert pool._share(worker, time.monotonic()) == 16


def test_later_splits_balance_a_new_workers_shared_part(tmp_path: Path) -> None:
    # hosts take 0.45 s, a worker's first one 0.9 s (it imports what all hosts share): of 21
    # unbegun hosts a new worker takes fewer than half, as its first one costs it twice
    pool, worker = _victim(tmp_path, hosts=32, begun=11, first=[0.9, 0.9],
                           later=[0.45] * 10, current_for=0.1)
    take = pool._share(worker, time.monotonic())
    assert 8 <= take < 11


@pytest.mark.parametrize("unbegun, current_for", [(1, 0.0), (1, 0.3), (0, 0.0)])
def test_the_last_host_stays_with_the_worker_that_paid_for_the_shared_part(
        tmp_path: Path, unbegun: int, current_for: float) -> None:
    # a fresh worker would end the last host after 0.05 + 0.45 + 0.45 s; the busy one ends
    # its current host and this one sooner
    pool, worker = _victim(tmp_path, hosts=32, begun=32 - unbegun, first=[0.9, 0.9],
                           later=[0.45] * 20, current_for=current_for)
    assert pool._share(worker, time.monotonic()) == 0


def test_cheap_attributes_stay_with_their_worker(tmp_path: Path) -> None:
    # packages of a few milliseconds: a new Nix process costs more than all that is left
    pool, worker = _victim(tmp_path, hosts=300, begun=280, first=[0.01], later=[0.002] * 278,
                           current_for=0.001)
    assert pool._share(worker, time.monotonic()) == 0


def test_free_slots_before_between_and_after_the_last_start() -> None:
    # 2 slots from t=0: one worker at 0.1, a second at 0.3; one ends at 5, a fresh one takes
    # over at 5.2 and ends at 6; the last ends at 9.5
    changes = [(0.1, 1), (0.3, 2), (5.0, 1), (5.2, 2), (6.0, 1), (9.5, 0)]
    before, between, after = free_slots(2, 0.0, changes, 9.5)
    assert before == pytest.approx(2 * 0.1 + 0.2)
    assert between == pytest.approx(0.2)
    assert after == pytest.approx(3.5)
    # never all busy: everything up to the last start counts as before
    assert free_slots(4, 0.0, [(0.0, 1), (1.0, 2), (3.0, 0)], 3.0) == pytest.approx(
        (4 * 0.0 + 3 * 1.0, 0.0, 2 * 2.0))


def test_the_pool_logs_its_timeline_as_bench_p7q_reads_it(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    backend = ScriptedNix({"fleet": ["a", "b", "c"]})
    with caplog.at_level(logging.DEBUG, logger="ci_nix.evaluate"):
        [fleet] = _evaluate(backend, _targets(tmp_path, ["fleet"]),
                            evaluate.Limits(workers=2, memory_total_mib=100_000))
    assert len(fleet.jobs) == 3
    line = bench.TIMELINE.search(caplog.text)
    assert line, caplog.text
    assert all(float(value) >= 0 for value in line.groups())


@pytest.mark.parametrize("sizes, fast", [((100, 100), False), ((500, 400), True),
                                         ((850, 10), True)])
def test_memory_is_read_more_often_near_a_limit(tmp_path: Path, sizes: tuple[int, int],
                                                fast: bool) -> None:
    """Two workers under a 1000 MiB total (--eval-memory 1000): past 80% of the total, or one
    worker past 80% of its own limit, the pool reads their memory every 20 ms, not 100 ms."""
    mib = 1024 * 1024
    read: dict[int, int] = {}
    pool = evaluate._Pool(cast(evaluate.Backend, None),
                          Selection(systems=(X86,), outputs=("packages",)), workers=2,
                          memory=1000 * mib, timeout=0, total=1000 * mib,
                          probe=evaluate.Probe(groups=lambda pids: {p: read[p] for p in pids}))
    flake = evaluate._Flake(Target(Flake(Repo("ws", tmp_path), "f")), None)
    for pid, size in zip((11, 12), sizes, strict=True):
        read[pid] = size * mib
        process = cast(proc.Running, type("P", (), {"pid": pid})())
        pool.running.append(evaluate._Worker(flake, process, lists=False, tasks=[], owned=0,
                                             spawned=0.0, phase_start=time.monotonic()))
    pool._watch()
    assert pool.tick == (0.02 if fast else 0.1)
