#!/usr/bin/env python3
"""ci-nix benchmarks: every figure measured against its baseline in the same run, as ratios.

    python3 bench/run.py                 # the full bench (a few minutes on 2 cores)
    python3 bench/run.py --smoke         # tiny sizes: checks the bench works and its counts

Prints a table and writes bench/results/latest.json. Every repetition uses freshly generated
workspaces (a nonce in every derivation), so no run is a no-op by accident.

  P1 cold `ci-nix run --all` vs a bare `nix build --keep-going` of the same installables
  P1j the same with `max-jobs = auto` on both sides (CI installers' setting; Nix's default is 1)
  P1s the same with `max-jobs = 1` set on both sides (ci-nix keeps a max-jobs that is set)
  P2 a per-attribute `nix build` loop vs `ci-nix run`
  P3 one of N flakes changed (change detection) vs the full run
  P4 warm cache: builds and uploads of a second run, and 5,000 narinfo checks on a local HTTP cache
  P5 Nix processes and attribute evaluations for k broken attributes among n
  P6 ci-nix's own peak RSS while builds stream a large log
  P7 heavy NixOS-like hosts: `matrix` vs bare per-host `nix eval`, `xargs -P cores`
  P7s P7 at fleet size only (32 hosts), with CPU seconds and the load average
  P7q P7s for a quiet machine: several repetitions, the load and CPU pressure around each run,
      and where ci-nix's time goes (outside the pool, free worker slots, its own CPU)
  P7t the same hosts under one memory budget (--eval-memory-total): peak summed RSS of all Nix
      processes, vs the same evaluation without a budget
  P8 `ci-nix diff` with the base in the evaluation cache vs one head evaluation
  P9 no-op: a second `run --all` of an unchanged fleet (outputs in a local HTTP cache,
     evaluation cache warm) vs the first run's evaluation; P9c the same with the evaluation
     cache restored into a fresh XDG_CACHE_HOME and a fresh store (a new runner)
  P10 `ci-nix junit`'s peak RSS per MiB of a log of a million short `-L` lines (no Nix)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench import generate  # noqa: E402

NIX = shlex.split(os.environ.get("CI_NIX_NIX", "nix"))
NIX_FLAGS = ["--extra-experimental-features", "nix-command flakes"]
ENV = {**os.environ, "NIX_CONFIG": "substituters =\nsandbox = false\nbuild-users-group =\n"
                                   "compress-build-log = false\n"}
BUILT = re.compile(r"built (\d+) derivations")
EVALUATIONS = re.compile(r"evaluated \d+ flakes? with (\d+) Nix evaluations?")
EVAL_SECONDS = re.compile(r"evaluation: \d+ workers, .*, ([\d.]+)s$", re.M)


@dataclass
class Figure:
    key: str
    title: str
    ours: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    unit: str = "s"
    target: str = ""
    counts: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.baseline:
            return None
        return statistics.median(self.ours) / statistics.median(self.baseline)

    def met(self) -> bool | None:
        if "met" in self.counts:  # an absolute target, judged by the figure itself
            return bool(self.counts["met"])
        ratio = self.ratio
        if self.target.startswith("<=") and ratio is not None:
            return ratio <= float(self.target[2:])
        if self.target.startswith(">=") and ratio is not None:
            return 1 / ratio >= float(self.target[2:].rstrip("x"))
        return None


@dataclass
class Timed:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the command and its children


def timed(argv: Sequence[str], cwd: Path | None = None,
          env: Mapping[str, str] | None = None) -> Timed:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env or ENV), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timed(seconds, proc.returncode, proc.stdout, proc.stderr, cpu)


def ci_nix(*args: str | Path, env: Mapping[str, str] | None = None) -> Timed:
    return timed([sys.executable, "-m", "ci_nix", *map(str, args)], cwd=ROOT, env=env)


def installed_bytecode(tmp: Path) -> None:
    """ci-nix runs as installed: its modules compiled to bytecode, as pip does at install time
    (and Python does on first import, unless PYTHONDONTWRITEBYTECODE is set, as in some
    development shells: then every start compiles all of ci-nix again, about 0.1 s of CPU that
    no installed ci-nix pays). The bytecode goes to the bench's own directory."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(tmp / "bytecode")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ci_nix")], env=ENV,
                   check=True)
    # the dependencies too (the prefix holds all bytecode): import every module once
    subprocess.run([sys.executable, "-c", "import importlib, pkgutil, ci_nix\n"
                    "for m in pkgutil.walk_packages(ci_nix.__path__, 'ci_nix.'):\n"
                    "    if not m.name.endswith('__main__'): importlib.import_module(m.name)"],
                   env=ENV, cwd=ROOT, check=True)


def fresh(tmp: Path, label: str, *, flakes: int, attrs: int, broken: Sequence[str],
          config: Mapping[str, object] | None = None) -> generate.Generated:
    return generate.generate(tmp / f"{label}-{uuid.uuid4().hex[:6]}", flakes, attrs, broken,
                             config=config, nix=NIX)


def installables(ws: generate.Generated, attrs: Sequence[generate.Attr]) -> list[str]:
    return [f"git+file://{ws.root / a.flake}#{a.path}" for a in attrs]


def early_builds(stderr: str) -> int:
    """Attributes in builds a run began before its evaluation stage ended (its log's
    `building N attributes` lines before `evaluated N flakes with ...`)."""
    ended = EVALUATIONS.search(stderr)
    before = stderr[:ended.start()] if ended else ""
    return sum(int(n) for n in re.findall(r"ci-nix: building (\d+) attributes?$", before, re.M))


def p1(tmp: Path, reps: int, flakes: int, attrs: int, max_jobs: str | None = None) -> Figure:
    """P1: each side with its own default max-jobs (Nix's is 1; ci-nix's builds take `auto`
    when Nix's configuration sets none, README "Parallel builds"). With max_jobs, both sides
    with that Nix `max-jobs`: P1j (auto), P1s (1: ci-nix keeps a max-jobs that is set)."""
    env = ENV if max_jobs is None else {
        **ENV, "NIX_CONFIG": ENV["NIX_CONFIG"] + f"max-jobs = {max_jobs}\n"}
    key = {None: "P1", "auto": "P1j", "1": "P1s"}.get(max_jobs, f"P1-{max_jobs}")
    fig = Figure(key, "cold ci-nix run --all vs bare nix build --keep-going"
                 + (f", both with max-jobs = {max_jobs}" if max_jobs else
                    ", each with its default max-jobs"),
                 target="<=0.50" if max_jobs is None else "")
    early = []
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        # build failures only: both sides then do exactly the same builds
        ours = fresh(tmp, "p1-ours", flakes=flakes, attrs=attrs, broken=("build",))
        result = ci_nix("run", "--all", ours.root, env=env)
        assert result.returncode == 1, result.stderr
        fig.ours.append(result.seconds)
        built = [int(n) for n in BUILT.findall(result.stderr)]
        fig.counts["built"] = built[-1] if built else 0
        early.append(early_builds(result.stderr))
        fig.counts["attributes in builds begun before the evaluation stage ended"] = (
            f"{min(early)}-{max(early)} of {len(ours.attrs)}")
        # what ci-nix's builds ran with, from its log (README "Parallel builds")
        fig.counts["ci-nix's max-jobs"] = (
            "auto (Nix's configuration sets none)" if "building with max-jobs = auto"
            in result.stderr else f"Nix's ({max_jobs or 1})")
        bare = fresh(tmp, "p1-bare", flakes=flakes, attrs=attrs, broken=("build",))
        base = timed([*NIX, *NIX_FLAGS, "build", "--keep-going", "--no-link",
                      *installables(bare, bare.attrs)], env=env)
        assert base.returncode != 0, "the bare build should see the broken attribute"
        fig.baseline.append(base.seconds)
        fig.counts["bare nix build's max-jobs"] = max_jobs or "1 (Nix's default)"
        # CPU (user + system, children included): what the ratio tends to when other work
        # holds the cores, since each side then gets a share of them
        cpu[0].append(result.cpu)
        cpu[1].append(base.cpu)
        fig.counts["CPU s ours / bare (medians)"] = (
            f"{statistics.median(cpu[0]):.2f} / {statistics.median(cpu[1]):.2f}")
        fig.counts["attributes"] = len(ours.attrs)
    return fig


def p2(tmp: Path, reps: int, flakes: int, attrs: int) -> Figure:
    fig = Figure("P2", "per-attribute nix build loop vs ci-nix run", target=">=3x")
    for _ in range(reps):
        ours = fresh(tmp, "p2-ours", flakes=flakes, attrs=attrs, broken=("build",))
        fig.ours.append(ci_nix("run", "--all", ours.root).seconds)
        loop = fresh(tmp, "p2-loop", flakes=flakes, attrs=attrs, broken=("build",))
        started = time.perf_counter()
        for installable in installables(loop, loop.attrs):
            timed([*NIX, *NIX_FLAGS, "build", "--no-link", installable])
        fig.baseline.append(time.perf_counter() - started)
    # report as "loop is N x slower": ours/baseline < 1
    return fig


def p3(tmp: Path, reps: int, flakes: int, attrs: int) -> Figure:
    fig = Figure("P3", f"one of {flakes} flakes changed vs the full run", target="<=0.15")
    for _ in range(reps):
        # the cold full run, then one flake changes in the same workspace
        ws = fresh(tmp, "p3", flakes=flakes, attrs=attrs, broken=())
        fig.baseline.append(ci_nix("run", "--all", ws.root).seconds)
        leaf = ws.root / ws.flakes[-1]  # nothing depends on the last flake
        text = (leaf / "flake.nix").read_text().replace(ws.nonce, uuid.uuid4().hex[:12])
        (leaf / "flake.nix").write_text(text)
        subprocess.run(["git", "-C", str(leaf), "commit", "-qam", "change"], check=True,
                       env={**ENV, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e",
                            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"})
        result = ci_nix("run", leaf, "--base", "HEAD~1")
        assert result.returncode == 0, result.stderr
        fig.ours.append(result.seconds)
        built = [int(n) for n in BUILT.findall(result.stderr)]
        fig.counts["built in the changed run"] = built[-1] if built else 0
    return fig


def p5(tmp: Path, sizes: Sequence[tuple[int, int]]) -> Figure:
    fig = Figure("P5", "Nix evaluations for k uncatchable failures among n attributes (target: "
                 "each attribute evaluated once, k + 1 Nix processes plus tail take-overs)",
                 unit="evals")
    rows = []
    met = True
    for k, n in sizes:
        ws = fresh(tmp, f"p5-{k}-{n}", flakes=1, attrs=n, broken=("missing",) * k)
        result = ci_nix("matrix", "--all", "--format", "json", ws.root)
        evaluations = [int(x) for x in EVALUATIONS.findall(result.stderr)]
        count = evaluations[-1] if evaluations else -1
        pool = POOL.search(result.stderr)
        attributes = int(pool[3]) if pool else -1
        bound = k * math.log2(n)  # what bisection cost (about), for comparison
        rows.append({"k": k, "n": n, "evaluations": count, "attribute evaluations": attributes,
                     "k*log2(n)": round(bound, 1)})
        # one worker dies per failure; an idle worker may take over the tail of a busy one
        met = met and attributes == n and 0 < count <= k + 1 + 4
    fig.counts.update({"rows": rows, "met": met})
    return fig


def peak_mb(*args: str | Path) -> tuple[float, Timed]:
    """Run ci-nix in a process that reports its own high-water mark in MiB (not its children's)."""
    probe = ("import sys\nfrom ci_nix.cli import main\ncode = main(sys.argv[1:])\n"
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             "print('VMHWM', int(hwm.split()[1]))\nsys.exit(code)\n")  # (kB)
    result = timed([sys.executable, "-c", probe, *map(str, args)], cwd=ROOT)
    hwm = re.search(r"VMHWM (\d+)", result.stdout)
    assert hwm is not None, f"the probe printed no VMHWM line: {result.stdout[-2000:]}"
    return int(hwm.group(1)) / 1024, result


def p10(tmp: Path, reps: int, lines: int) -> Figure:
    """P10: `ci-nix junit`'s peak RSS on a log of `lines` short `nix build -L` lines (the worst
    case per byte: Python holds each line as objects), above its peak on a one-line log (the
    interpreter and the classifier), per MiB of the log: the baseline is the log's size."""
    fig = Figure("P10", f"ci-nix junit peak RSS above its start, per MiB of a log of {lines} "
                 "short -L lines", unit="MiB", target="<=3")
    drv = f"/nix/store/{'a' * 32}-hello-1.0.drv"
    log, tiny = tmp / "p10.log", tmp / "p10-tiny.log"
    log.write_text(f"building '{drv}'...\n" + "".join(f"hello> l {i}\n" for i in range(lines))
                   + f"error: builder for '{drv}' failed with exit code 1\n")
    tiny.write_text(f"error: builder for '{drv}' failed with exit code 1\n")
    size = log.stat().st_size / (1 << 20)
    seconds = []
    for _ in range(reps):
        start, _timed = peak_mb("junit", tiny, "--output", tmp / "p10-tiny.xml")
        peak, result = peak_mb("junit", log, "--output", tmp / "p10.xml")
        assert result.returncode == 1 and "FAIL" in result.stdout, result.stderr[-2000:]
        fig.ours.append(peak - start)
        fig.baseline.append(size)
        seconds.append(result.seconds)
    fig.counts.update({"lines": lines, "log MiB": round(size, 1),
                       "peak RSS MiB": round(peak), "one-line log's peak MiB": round(start),
                       "bytes per line above start": round(
                           statistics.median(fig.ours) * (1 << 20) / lines),
                       "seconds (median)": round(statistics.median(seconds), 1)})
    return fig


def p6(tmp: Path, megabytes: int) -> Figure:
    fig = Figure("P6", f"ci-nix peak RSS while builds stream {megabytes} MB of logs", unit="MB",
                 target="<=150MB")
    repo = tmp / f"p6-{uuid.uuid4().hex[:6]}"
    repo.mkdir()
    line = "x" * 99
    script = (f"i=0; while [ $i -lt {max(1, megabytes // 10)} ]; do yes {line} | head -n 100000; "
              "i=$((i+1)); done; echo done > $out")
    nonce = uuid.uuid4().hex
    (repo / "flake.nix").write_text(
        "{ outputs = { self }: { packages.x86_64-linux.loud = derivation { name = \"loud\"; "
        "system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
        f"args = [ \"-c\" {json.dumps(script)} ]; "
        f"PATH = \"/usr/bin:/bin\"; NONCE = \"{nonce}\"; }}; }}; }}\n")
    git_env = {**ENV, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e",
               "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "loud"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=git_env)
    peak_mib, result = peak_mb("run", "--all", repo)
    assert result.returncode == 0, result.stderr[-2000:]
    peak = int(peak_mib)
    fig.ours.append(float(peak))
    fig.counts.update({"peak RSS MB": peak, "log MB": megabytes,
                       "seconds": round(result.seconds, 1), "met": peak <= 150})
    return fig


def p8(tmp: Path, reps: int, flakes: int, attrs: int, pairs: int = 3) -> Figure:
    """Each repetition (a fresh workspace) measures `pairs` head evaluations and diffs in
    turn, each diff with the base's entries alone (a fresh copy of the cache), so both sides
    see the same load; CPU seconds (which load stretches less) are in the counts."""
    import shutil

    fig = Figure("P8", "ci-nix diff with the base in the evaluation cache vs one head "
                 "evaluation of the same attributes", target="<=1.10")
    cpu_ours, cpu_base, paired = [], [], []
    for _ in range(reps):
        # the root flake changes: every flake depends on it, so all of them are compared
        ws = fresh(tmp, "p8", flakes=flakes, attrs=attrs, broken=())
        root = ws.root / ws.flakes[0]
        landed_cache = tmp / f"p8-xdg-{uuid.uuid4().hex[:6]}"
        env = {**ENV, "XDG_CACHE_HOME": str(landed_cache)}
        # CI evaluated the base when it landed: its entries are in the evaluation cache
        landed = ci_nix("matrix", root, "--all", "--format", "json", env=env)
        assert landed.returncode == 0, landed.stderr[-2000:]
        text = (root / "flake.nix").read_text().replace("seq 1 3000", "seq 1 3001")
        (root / "flake.nix").write_text(text)
        subprocess.run(["git", "-C", str(root), "commit", "-qam", "change"], check=True,
                       env={**ENV, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e",
                            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"})
        evaluation: list[str | Path] = ["matrix", root, "--base", "HEAD~1", "--format", "json",
                                        "--no-eval-cache"]
        assert ci_nix(*evaluation).returncode == 0  # warm-up: the head's sources are fetched
        for _ in range(pairs):
            head = ci_nix(*evaluation)
            assert head.returncode == 0, head.stderr[-2000:]
            cache = tmp / f"p8-xdg-{uuid.uuid4().hex[:6]}"
            shutil.copytree(landed_cache, cache)  # the base's entries, not the last diff's
            report = tmp / f"p8-{uuid.uuid4().hex[:6]}.json"
            result = ci_nix("diff", root, "--base", "HEAD~1", "--json", report,
                            env={**ENV, "XDG_CACHE_HOME": str(cache)})
            assert result.returncode == 0, result.stderr[-2000:]
            fig.baseline.append(head.seconds)
            fig.ours.append(result.seconds)
            cpu_base.append(head.cpu)
            cpu_ours.append(result.cpu)
            paired.append(result.seconds / head.seconds)
            statuses = [a["status"] for a in json.loads(report.read_text())["attributes"]]
            counts = [int(n) for n in EVALUATIONS.findall(result.stderr)]
            fig.counts.update({"attributes": len(statuses),
                               "changed": statuses.count("changed"),
                               "unchanged": statuses.count("unchanged"),
                               "Nix evaluations (head, base)": counts})
    fig.counts.update({
        "pairs": len(paired),
        "ratio of each pair (median)": round(statistics.median(paired), 2),
        "CPU s (median, diff / head)": f"{statistics.median(cpu_ours):.2f} / "
                                       f"{statistics.median(cpu_base):.2f}"})
    return fig


def p9(tmp: Path, reps: int, hosts: int, host_mb: int, shared: int) -> list[Figure]:
    """P9 and P9c: a no-op second run of a fleet whose outputs are all in a local HTTP cache,
    against the first run's evaluation."""
    import shutil

    from httpcache import BinaryCache  # the tests' real HTTP binary cache

    warm = Figure("P9", f"no-op second run --all of {hosts} hosts (eval cache warm, outputs in "
                  "a local HTTP cache) vs the first run's evaluation", target="<=0.05")
    restored = Figure("P9c", "the same with the eval cache restored into a fresh "
                      "XDG_CACHE_HOME and a fresh store (a new runner)", target="<=0.10")
    secret, public = tmp / "p9-key.sec", tmp / "p9-key.pub"
    subprocess.run(["nix-store", "--generate-binary-cache-key", "ci-nix-bench-9", str(secret),
                    str(public)], check=True)
    trusted = ENV["NIX_CONFIG"] + f"trusted-public-keys = {public.read_text().strip()}\n"
    with BinaryCache() as server:
        for _ in range(reps):
            fleet = generate.generate_fleet(tmp / f"p9-{uuid.uuid4().hex[:6]}", hosts,
                                            host_mb=host_mb, shared=shared)
            (fleet.root / "ci-nix.yaml").write_text(json.dumps({
                "repos": [{"path": "fleet"}],
                "cache": {"type": "nix", "server": server.url,
                          "secret-key-file": str(secret)}}) + "\n")
            xdg = tmp / f"p9-xdg-{uuid.uuid4().hex[:6]}"
            env = {**ENV, "NIX_CONFIG": trusted, "XDG_CACHE_HOME": str(xdg)}
            first = ci_nix("run", "--all", fleet.root, env=env)
            assert first.returncode == 0, first.stderr[-3000:]
            seconds = EVAL_SECONDS.search(first.stderr)
            assert seconds, first.stderr[-3000:]
            for fig in (warm, restored):
                fig.baseline.append(float(seconds[1]))
            report = tmp / "p9.json"
            second = ci_nix("run", "--all", "--json", report, fleet.root, env=env)
            warm.ours.append(second.seconds)
            warm.counts.update(_noop_counts(second, report, hosts))
            # a new runner: the cache directory restored elsewhere, an empty store
            new_xdg = tmp / f"p9c-xdg-{uuid.uuid4().hex[:6]}"
            shutil.copytree(xdg / "ci-nix" / "eval", new_xdg / "ci-nix" / "eval")
            store = tmp / f"p9c-store-{uuid.uuid4().hex[:6]}"
            third = ci_nix("run", "--all", "--json", report, fleet.root, "--store",
                           f"local?root={store}", env={**env, "XDG_CACHE_HOME": str(new_xdg)})
            restored.ours.append(third.seconds)
            restored.counts.update(_noop_counts(third, report, hosts))
    return [warm, restored]


def _noop_counts(run: Timed, report: Path, hosts: int) -> dict[str, object]:
    """What a no-op run must show: nothing evaluated, built or uploaded; every host cached."""
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(report.read_text())
    from_cache = sum("from the evaluation cache" in (c.get("skipped") or "")
                     for c in data["cases"])
    evaluations = [int(n) for n in EVALUATIONS.findall(run.stderr)]
    built = [int(n) for n in BUILT.findall(run.stderr)]
    assert evaluations == [0] and not built and from_cache == hosts, (
        evaluations, built, from_cache, run.stderr[-3000:])
    return {"hosts": hosts, "Nix evaluations": 0, "built": 0,
            "cached (from the evaluation cache)": from_cache}


# Runs commands `parallel` at a time (`xargs -P`) in a process of its own, so that the largest
# resident set of all its descendants (getrusage) belongs to this measurement alone.
_MEASURE = """
import json, resource, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
spec = json.loads(sys.argv[1])
def one(argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, done.stdout[-200000:], done.stderr[-20000:]
started = time.perf_counter()
with ThreadPoolExecutor(spec["parallel"]) as pool:
    results = list(pool.map(one, spec["commands"]))
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
                  "results": results}))
"""


@dataclass
class Measured:
    seconds: float
    rss_mb: float  # the largest process among all that ran
    results: list[tuple[int, str, str]]  # returncode, stdout, stderr of each command
    cpu: float = 0.0  # CPU seconds (user + system) of all of them


def measured(commands: Sequence[Sequence[str]], parallel: int = 1) -> Measured:
    spec = json.dumps({"commands": [list(c) for c in commands], "parallel": parallel})
    done = subprocess.run([sys.executable, "-c", _MEASURE, spec], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    return Measured(data["seconds"], data["rss_mb"], [tuple(r) for r in data["results"]],
                    data["cpu"])


POOL = re.compile(r"evaluation: (\d+) workers, (\d+) Nix processes, (\d+) attribute "
                  r"evaluations, largest worker (\d+) MiB")


def _fleet_run(fleet: generate.Generated, *extra: str) -> tuple[Measured, dict[str, object]]:
    """`ci-nix matrix --all` on a fleet: the measurement, and what its JSON and log say."""
    result = measured([[sys.executable, "-m", "ci_nix", "matrix", "--all", str(fleet.root),
                        "--format", "json", *extra]])
    code, out, err = result.results[0]
    assert code == 0, err[-3000:]
    data = json.loads(out)
    pool = POOL.search(err)
    assert pool, err[-3000:]
    return result, {"jobs": len(data["jobs"]), "failures": len(data["failures"]),
                    "failure types": sorted({f["type"] for f in data["failures"]}),
                    "Nix processes": int(pool[2]), "attribute evaluations": int(pool[3])}


def _bare_hosts(fleet: generate.Generated) -> Measured:
    """Bare `nix eval` of each host's toplevel drvPath, `xargs -P cores`."""
    commands = [[*NIX, *NIX_FLAGS, "eval", "--raw",
                 f"git+file://{fleet.root / 'fleet'}#{a.path}.config.system.build.toplevel"
                 ".drvPath"] for a in fleet.attrs]
    return measured(commands, parallel=os.cpu_count() or 1)


def p7(tmp: Path, reps: int, hosts: int, host_mb: int, host_work: int,
       big_hosts: int | None, shared: int) -> Figure:
    fig = Figure("P7", f"evaluating {hosts} heavy hosts (`matrix --all`) vs bare per-host "
                 "`nix eval`, xargs -P cores", target="<=0.80")
    rss_ratios, broken_ratios = [], []
    for _ in range(reps):
        fleet = generate.generate_fleet(tmp / f"p7-{uuid.uuid4().hex[:6]}", hosts,
                                        host_mb=host_mb, host_work=host_work, shared=shared)
        bare = _bare_hosts(fleet)
        assert all(code == 0 for code, _, _ in bare.results), bare.results[0][2][-2000:]
        ours, counts = _fleet_run(fleet)
        assert counts["jobs"] == hosts and counts["failures"] == 0, counts
        fig.ours.append(ours.seconds)
        fig.baseline.append(bare.seconds)
        rss_ratios.append(ours.rss_mb / bare.rss_mb)
        fig.counts.update({"largest Nix RSS MB ours": round(ours.rss_mb),
                           "one host's (bare) MB": round(bare.rss_mb), **counts})

        broken = generate.generate_fleet(tmp / f"p7b-{uuid.uuid4().hex[:6]}", hosts,
                                         broken="missing", host_mb=host_mb, host_work=host_work,
                                         shared=shared)
        bare_broken = _bare_hosts(broken)
        ours_broken, broken_counts = _fleet_run(broken)
        assert broken_counts["failures"] == 1, broken_counts
        broken_ratios.append(ours_broken.seconds / bare_broken.seconds)
        fig.counts.update({
            "one uncatchable host: ours s": round(ours_broken.seconds, 1),
            "its bare s": round(bare_broken.seconds, 1),
            "its attribute evaluations": broken_counts["attribute evaluations"],
            "its Nix processes": broken_counts["Nix processes"]})
    rss = statistics.median(rss_ratios)
    broken_ratio = statistics.median(broken_ratios)
    fig.counts.update({"RSS ratio": round(rss, 2), "broken-host ratio": round(broken_ratio, 2)})

    # --eval-memory 600 with hosts that fit alone: every worker stays under ~750 MB
    fleet = generate.generate_fleet(tmp / f"p7m-{uuid.uuid4().hex[:6]}", hosts,
                                    host_mb=min(host_mb, 128), host_work=host_work,
                                    shared=shared)
    limited, limited_counts = _fleet_run(fleet, "--eval-memory", "600")
    fig.counts.update({"--eval-memory 600: largest MB": round(limited.rss_mb),
                       "--eval-memory 600: failures": limited_counts["failures"]})
    if big_hosts:
        fleet = generate.generate_fleet(tmp / f"p7l-{uuid.uuid4().hex[:6]}", big_hosts,
                                        host_mb=host_mb, host_work=host_work, shared=shared)
        bare = _bare_hosts(fleet)
        ours, counts = _fleet_run(fleet)
        fig.counts.update({f"{big_hosts} hosts: ours s": round(ours.seconds, 1),
                           f"{big_hosts} hosts: bare s": round(bare.seconds, 1),
                           f"{big_hosts} hosts: ours MB": round(ours.rss_mb),
                           f"{big_hosts} hosts: bare MB": round(bare.rss_mb),
                           f"{big_hosts} hosts: Nix processes": counts["Nix processes"]})
    ratio = fig.ratio
    fig.counts["met"] = (ratio is not None and ratio <= 0.8 and rss <= 1.5
                         and broken_ratio <= 1.0 and limited.rss_mb <= 750
                         and limited_counts["failures"] == 0)
    return fig


def p7s(tmp: Path, reps: int, hosts: int, host_mb: int) -> Figure:
    """P7 at fleet size: only `matrix` of `hosts` heavy hosts vs bare per-host `nix eval`,
    alternating which goes first, with CPU seconds beside wall time (on a loaded machine the
    CPU ratio says more than the wall ratio) and the load average around each repetition."""
    fig = Figure("P7s", f"{hosts} heavy hosts: `matrix --all` vs bare per-host `nix eval`, "
                 "xargs -P cores", target="<=0.85")
    cpu_ours, cpu_bare, loads = [], [], []
    for rep_no in range(reps):
        fleet = generate.generate_fleet(tmp / f"p7s-{uuid.uuid4().hex[:6]}", hosts,
                                        host_mb=host_mb)
        loads.append(os.getloadavg()[0])
        if rep_no % 2:
            bare = _bare_hosts(fleet)
            ours, counts = _fleet_run(fleet, "--no-eval-cache")
        else:
            ours, counts = _fleet_run(fleet, "--no-eval-cache")
            bare = _bare_hosts(fleet)
        loads.append(os.getloadavg()[0])
        assert counts["jobs"] == hosts and counts["failures"] == 0, counts
        assert all(code == 0 for code, _, _ in bare.results), bare.results[0][2][-2000:]
        fig.ours.append(ours.seconds)
        fig.baseline.append(bare.seconds)
        cpu_ours.append(ours.cpu)
        cpu_bare.append(bare.cpu)
        fig.counts.update({"Nix processes": counts["Nix processes"],
                           "largest Nix RSS MB ours": round(ours.rss_mb)})
    fig.counts.update({
        "CPU s ours (median)": round(statistics.median(cpu_ours), 1),
        "CPU s bare (median)": round(statistics.median(cpu_bare), 1),
        "CPU ratio": round(statistics.median(cpu_ours) / statistics.median(cpu_bare), 2),
        "load average (1 min) around the runs": f"{min(loads):.1f}–{max(loads):.1f}"})
    return fig


TIMELINE = re.compile(r"evaluation timeline: \d+ slots, [\d.]+s; free slot-seconds ([\d.]+) "
                      r"until all started, ([\d.]+) between, ([\d.]+) after the last start; "
                      r".*ci-nix's own CPU ([\d.]+)s")


def _cpu_pressure() -> float:
    """Seconds, since boot, in which some runnable task waited for a CPU (Linux PSI; 0 where
    the kernel has none): its growth over a run says how quiet the machine was (the kernel
    updates it every few seconds, so a short run's share is rough and may pass 100%)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return int(line.rsplit("total=", 1)[1]) / 1e6


def p7q(tmp: Path, reps: int, hosts: int, host_mb: int) -> Figure:
    """P7s for the quiet machine the target is set on: `matrix` of `hosts` heavy hosts vs bare
    per-host `nix eval`, alternating which goes first, with what tells a quiet run from a
    loaded one (the load average before each repetition, the share of each run's time in
    which some task waited for a CPU) and where ci-nix's time goes: its run outside the pool
    (Python start, workspace, output), the pool's worker slots left free before every slot had
    a worker, between, and after the last start (the tail), and ci-nix's own CPU in the pool."""
    fig = Figure("P7q", f"{hosts} heavy hosts on a quiet machine: `matrix --all` vs bare "
                 "per-host `nix eval`, xargs -P cores", target="<=0.85")
    cpu: dict[str, list[float]] = {"ours": [], "bare": []}
    waited: dict[str, list[float]] = {"ours": [], "bare": []}
    loads: list[float] = []
    outside: list[float] = []
    free: list[tuple[float, float, float]] = []
    own: list[float] = []
    for rep_no in range(reps):
        fleet = generate.generate_fleet(tmp / f"p7q-{uuid.uuid4().hex[:6]}", hosts,
                                        host_mb=host_mb)
        loads.append(os.getloadavg()[0])
        for side in (("bare", "ours") if rep_no % 2 else ("ours", "bare")):
            pressure = _cpu_pressure()
            if side == "bare":
                bare = _bare_hosts(fleet)
                assert all(code == 0 for code, _, _ in bare.results), bare.results[0][2][-2000:]
                fig.baseline.append(bare.seconds)
                cpu["bare"].append(bare.cpu)
                pressure = (_cpu_pressure() - pressure) / bare.seconds
            else:
                ours, counts = _fleet_run(fleet, "--no-eval-cache", "-v")
                pressure = (_cpu_pressure() - pressure) / ours.seconds
                assert counts["jobs"] == hosts and counts["failures"] == 0, counts
                err = ours.results[0][2]
                pool, line = EVAL_SECONDS.search(err), TIMELINE.search(err)
                assert pool and line, err[-3000:]
                fig.ours.append(ours.seconds)
                cpu["ours"].append(ours.cpu)
                outside.append(ours.seconds - float(pool[1]))
                free.append((float(line[1]), float(line[2]), float(line[3])))
                own.append(float(line[4]))
                fig.counts["Nix processes"] = counts["Nix processes"]
            waited[side].append(pressure)
    loads.append(os.getloadavg()[0])
    med = statistics.median
    fig.counts.update({
        "load average (1 min) before each repetition and after": " ".join(
            f"{load:.1f}" for load in loads),
        "time some task waited for a CPU, ours / bare (median)":
            f"{med(waited['ours']):.0%} / {med(waited['bare']):.0%}",
        "CPU s ours / bare (median)": f"{med(cpu['ours']):.1f} / {med(cpu['bare']):.1f}",
        "CPU ratio": round(med(cpu["ours"]) / med(cpu["bare"]), 2),
        "ours outside the pool s (median)": round(med(outside), 2),
        "free worker slot-seconds until all started / between / after the last start (median)":
            " / ".join(f"{med(f[i] for f in free):.2f}" for i in range(3)),
        "ci-nix's own CPU in the pool s (median)": round(med(own), 2)})
    return fig


def _peak_sum(argv: Sequence[str], marker: str) -> tuple[Timed, int, float]:
    """Run argv, summing every 20 ms the resident memory of all processes (but argv's own)
    whose command line holds marker: (the run, the largest sum in bytes, CPU seconds of argv
    and its children)."""
    import threading

    page = os.sysconf("SC_PAGE_SIZE")
    started = time.perf_counter()
    before = os.times()
    child = subprocess.Popen(list(argv), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            total = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) in (child.pid, os.getpid()):
                    continue
                try:
                    if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                except (OSError, ValueError, IndexError):
                    pass
            peak = max(peak, total)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system
                                                          - before.children_system)
    return Timed(time.perf_counter() - started, child.returncode, out, err), peak, cpu


def p7t(tmp: Path, reps: int, hosts: int, host_mb: int, workers: int, total_mib: int,
        shared: int) -> Figure:
    """P7t: heavy hosts, `--workers N`, `--eval-memory-total`: the Nix processes' summed RSS
    stays within it and nothing fails; vs the same evaluation with no budget to speak of."""
    fig = Figure("P7t", f"{hosts} heavy hosts, --workers {workers}, --eval-memory-total "
                 f"{total_mib} MiB, vs no budget", target="<=budget")
    peaks: list[float] = []
    free_peaks: list[float] = []
    failures: list[int] = []
    for _ in range(reps):
        fleet = generate.generate_fleet(tmp / f"p7t-{uuid.uuid4().hex[:6]}", hosts,
                                        host_mb=host_mb, shared=shared)
        marker = str(fleet.root / "fleet")
        for budget, into in ((total_mib, peaks), (1_000_000, free_peaks)):
            run, peak, cpu = _peak_sum(
                [sys.executable, "-m", "ci_nix", "matrix", "--all", str(fleet.root), "--format",
                 "json", "--no-eval-cache", "--workers", str(workers), "--eval-memory-total",
                 str(budget)], marker)
            assert run.returncode == 0, run.stderr[-3000:]
            data = json.loads(run.stdout)
            pool = POOL.search(run.stderr)
            assert pool, run.stderr[-3000:]
            into.append(peak / 1024 / 1024)
            (fig.ours if budget == total_mib else fig.baseline).append(run.seconds)
            if budget == total_mib:
                failures.append(len(data["failures"]))
                said = re.search(r"all workers at most (\d+) of", run.stderr)
                fig.counts["the pool's own peak MiB"] = int(said[1]) if said else None
                fig.counts["workers stopped for room"] = run.stderr.count("until there is room")
                fig.counts.update({"jobs": len(data["jobs"]),
                                   "Nix processes": int(pool[2]), "CPU s": round(cpu, 1)})
            else:
                fig.counts["no budget: CPU s"] = round(cpu, 1)
    fig.counts.update({"peak summed Nix RSS MiB": round(max(peaks)),
                       "no budget: peak MiB": round(max(free_peaks)),
                       "failures": max(failures)})
    fig.counts["met"] = max(peaks) <= total_mib and max(failures) == 0
    return fig


def describe_machine() -> str:
    nix = timed([*NIX, "--version"]).stdout.strip()
    return (f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {nix}")


def table(figures: Sequence[Figure]) -> str:
    lines = ["| figure | what | ours (min / median) | baseline (min / median) | ratio | target "
             "| met |",
             "|---|---|---|---|---|---|---|"]
    for fig in figures:
        def cell(values: list[float], unit: str = fig.unit) -> str:
            if not values:
                return "–"
            return f"{min(values):.2f} / {statistics.median(values):.2f} {unit}"
        ratio = fig.ratio
        if fig.key == "P2" and ratio:
            ratio_text = f"loop {1 / ratio:.1f}x slower"
        else:
            ratio_text = f"{ratio:.2f}" if ratio is not None else "–"
        met = fig.met()
        extra = "; ".join(f"{k}: {v}" for k, v in fig.counts.items() if k not in ("met", "rows"))
        if "rows" in fig.counts:
            rows = fig.counts["rows"]
            assert isinstance(rows, list), f"{fig.key}: rows is a list of dicts, not {rows!r}"
            extra = ", ".join(f"k={r['k']} n={r['n']}: {r['evaluations']} processes, "
                              f"{r['attribute evaluations']} attribute evaluations"
                              for r in rows)
        title = f"{fig.title}{' — ' + extra if extra else ''}"
        lines.append(f"| {fig.key} | {title} | {cell(fig.ours)} "
                     f"| {cell(fig.baseline)} | {ratio_text} | {fig.target or '–'} | "
                     f"{'yes' if met else 'no' if met is not None else '–'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", action="append", default=[],
                        help="P1..P10, P1j, P1s, P7s, P7q, P7t (repeatable; P9 measures P9c too)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    reps = 1 if args.smoke else args.reps
    flakes, attrs = (3, 4) if args.smoke else (20, 15)
    # the fleets' table every Nix process builds first (nixpkgs' part in a real fleet): the
    # smoke checks the harness and its counts, for which a small one does (~1 s less per
    # Nix process there)
    shared = 1000 if args.smoke else generate.SHARED
    steps: dict[str, Callable[[Path], Figure | list[Figure]]] = {
        "P1": lambda tmp: p1(tmp, reps, flakes, attrs),
        "P1j": lambda tmp: p1(tmp, reps, flakes, attrs, max_jobs="auto"),
        "P1s": lambda tmp: p1(tmp, reps, flakes, attrs, max_jobs="1"),
        "P2": lambda tmp: p2(tmp, reps, 2 if args.smoke else 5, attrs),
        "P3": lambda tmp: p3(tmp, reps, flakes, attrs),
        "P4": lambda tmp: p4(tmp, reps, flakes, attrs, 200 if args.smoke else 5000),
        "P5": lambda tmp: p5(tmp, [(1, 8), (2, 16)] if args.smoke
                             else [(1, 16), (2, 64), (4, 128)]),
        "P6": lambda tmp: p6(tmp, 10 if args.smoke else 1000),
        "P7": lambda tmp: p7(tmp, reps, 3 if args.smoke else 8, 8 if args.smoke else 256,
                             20 if args.smoke else 1000, None if args.smoke else 32, shared),
        "P7s": lambda tmp: p7s(tmp, reps, 3 if args.smoke else 32, 8 if args.smoke else 256),
        "P7q": lambda tmp: p7q(tmp, reps, 3 if args.smoke else 32, 8 if args.smoke else 256),
        "P7t": lambda tmp: p7t(tmp, reps, 3 if args.smoke else 32, 8 if args.smoke else 256,
                               4, 1536, shared),
        "P8": lambda tmp: p8(tmp, reps, flakes, attrs, 1 if args.smoke else 3),
        "P9": lambda tmp: p9(tmp, reps, 4 if args.smoke else 32, 8 if args.smoke else 256, shared),
        "P10": lambda tmp: p10(tmp, reps, 5000 if args.smoke else 1_000_000),
    }
    wanted = args.only or list(steps)
    figures = []
    with tempfile.TemporaryDirectory(prefix="ci-nix-bench-") as tmp:
        if not args.smoke:
            installed_bytecode(Path(tmp))
        for key in wanted:
            print(f"bench: {key} ...", file=sys.stderr, flush=True)
            done = steps[key](Path(tmp))
            figures += done if isinstance(done, list) else [done]
    machine = describe_machine()
    print(f"machine: {machine}\n")
    print(table(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": machine, "smoke": args.smoke,
                                       "figures": [asdict(f) | {"ratio": f.ratio, "met": f.met()}
                                                   for f in figures]}, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
    return 0


def p4(tmp: Path, reps: int, flakes: int, attrs: int, checks: int) -> Figure:
    from httpcache import TEST_KEY, BinaryCache, entry  # the tests' real HTTP binary cache

    from ci_nix.cache.client import query

    fig = Figure("P4", f"warm cache: second run, and {checks} narinfo checks", target="<=2s")
    # what a real cache holds: narinfos signed by a key Nix trusts (require-sigs stays on)
    secret, public = tmp / "p4-key.sec", tmp / "p4-key.pub"
    subprocess.run(["nix-store", "--generate-binary-cache-key", "ci-nix-bench-1", str(secret),
                    str(public)], check=True)
    env = {**ENV, "NIX_CONFIG": ENV["NIX_CONFIG"]
           + f"trusted-public-keys = {public.read_text().strip()}\n"}
    with BinaryCache() as server:
        for _ in range(reps):
            ws = fresh(tmp, "p4", flakes=flakes, attrs=attrs, broken=(),
                       config={"cache": {"type": "nix", "server": server.url,
                                         "secret-key-file": str(secret)}})
            first = ci_nix("run", "--all", ws.root, env=env)
            assert first.returncode == 0, first.stderr[-2000:]
            puts = server.count("PUT")
            second = ci_nix("run", "--all", "--json", tmp / "p4.json", ws.root, env=env)
            assert second.returncode == 0, second.stderr[-2000:]
            report = json.loads((tmp / "p4.json").read_text())
            built = [int(n) for n in BUILT.findall(second.stderr)]
            fig.counts.update({
                "builds in the second run": built[-1] if built else 0,
                "uploads in the second run": server.count("PUT") - puts,
                "cached in the second run": report["totals"]["skipped"],
                "attributes": len(ws.attrs)})
    # narinfo checks: half of the paths are in the cache (a signed narinfo and its NAR, each
    # verified and HEADed), served from another process (a cache server in this one would share
    # the GIL with the client it is measuring)
    paths = [f"/nix/store/{uuid.uuid4().hex[:32].translate(str.maketrans('eou', 'xyz'))}-p{i}"
             for i in range(checks)]
    narinfos = tmp / f"narinfos-{uuid.uuid4().hex[:6]}"
    (narinfos / "nar").mkdir(parents=True)
    for path in paths[::2]:
        for name, data in entry(path).items():
            (narinfos / name).write_bytes(data)
    serve = ("import pathlib, sys\nfrom httpcache import BinaryCache\n"
             "cache = BinaryCache().__enter__()\n"
             "root = pathlib.Path(sys.argv[1])\n"
             "for p in root.rglob('*.nar*'): cache.files['/' + str(p.relative_to(root))] = "
             "p.read_bytes()\nprint(cache.url, flush=True)\nsys.stdin.read()\n")
    server_proc = subprocess.Popen([sys.executable, "-c", serve, str(narinfos)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                   env={**ENV, "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}"})
    try:
        assert server_proc.stdout is not None
        url = server_proc.stdout.readline().strip()
        for _ in range(reps):
            started = time.perf_counter()
            found = query(url, paths, trust=TEST_KEY.trust)
            fig.ours.append(time.perf_counter() - started)
            fig.counts["narinfo hits"] = len(found.cached)
    finally:
        server_proc.kill()
        server_proc.wait()
    fig.counts["met"] = (bool(fig.ours) and statistics.median(fig.ours) <= 2.0
                         and fig.counts["builds in the second run"] == 0
                         and fig.counts["uploads in the second run"] == 0)
    return fig


if __name__ == "__main__":
    sys.exit(main())
