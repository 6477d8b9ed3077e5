"""Building while evaluating (README "How `run` works"): build.Feed's batches, what the
evaluation hands over (pipeline._Handover), and real-Nix runs where one attribute cannot finish
evaluating before another one's build has run."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from conftest import Cli, flake_repo
from fakeproc import Call, FakeProc, Reply
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import evaluate, pipeline
from ci_nix.build import Feed
from ci_nix.models import Case, FailureType, Flake, FlakeEval, Job, Repo, Status, Target
from ci_nix.plan import Plan
from ci_nix.tools.nix import Nix, input_drvs, read_input_drvs
from ci_nix.tools.nix import closure as graph_closure
from ci_nix.workspace import Workspace


def _job(flake: str, name: str) -> Job:
    return Job(flake, ("packages", "x86_64-linux", name), "x86_64-linux",
               f"/nix/store/{'a' * 32}-{flake}-{name}.drv",
               (("out", f"/nix/store/{'b' * 32}-{flake}-{name}"),))


class Builder:
    """A batch function that records its batches and holds each until the test lets it go."""

    def __init__(self, hold: bool = True) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Semaphore(0)
        self.go = threading.Event()
        if not hold:
            self.go.set()
        self.fail: BaseException | None = None

    def __call__(self, jobs: Sequence[Job]) -> list[Case]:
        self.batches.append([f"{j.flake}#{j.attr[-1]}" for j in jobs])
        self.started.release()
        assert self.go.wait(10), "the test did not let the batch finish"
        if self.fail is not None:
            raise self.fail
        return [Case(j.flake, j.name, Status.PASSED, drv_path=j.drv_path) for j in jobs]


def test_jobs_that_arrive_during_a_build_are_the_next_build() -> None:
    builder = Builder()
    feed = Feed(builder)
    assert not feed.started  # no thread before there is something to build
    feed.submit([_job("a", "x")])
    assert builder.started.acquire(timeout=10)
    feed.submit([_job("b", "y")])  # while the first build runs
    feed.submit([_job("c", "z")])
    builder.go.set()
    fed = feed.wait()
    assert builder.batches == [["a#x"], ["b#y", "c#z"]]  # one build at a time, never more
    assert fed.batches == 2 and fed.unbuilt == () and fed.error is None
    assert [(c.flake, c.status) for c in fed.cases] == [("a", Status.PASSED), ("b", Status.PASSED),
                                                        ("c", Status.PASSED)]


def test_wait_builds_what_is_queued_and_a_feed_with_nothing_starts_no_builder() -> None:
    assert Feed(Builder(hold=False)).wait().batches == 0
    builder = Builder(hold=False)
    feed = Feed(builder)
    feed.submit([])
    assert not feed.started
    feed.submit([_job("a", "x"), _job("a", "y")])
    fed = feed.wait()
    assert len(fed.cases) == 2 and fed.error is None
    with pytest.raises(RuntimeError):
        feed.submit([_job("b", "z")])  # after wait: a job would be lost, not built


def test_a_failed_build_stops_the_feed_and_leaves_its_jobs_unbuilt() -> None:
    builder = Builder()
    builder.fail = OSError("no space left on device")
    feed = Feed(builder)
    feed.submit([_job("a", "x")])
    assert builder.started.acquire(timeout=10)
    feed.submit([_job("b", "y")])
    builder.go.set()
    fed = feed.wait()
    assert fed.error is builder.fail and fed.cases == ()
    # the run reports these as not built (pipeline.Progress.pending), none is lost
    assert [j.flake for j in fed.unbuilt] == ["a", "b"]
    assert builder.batches == [["a#x"]]


class Taken:
    """pipeline.EarlyBuild's `take`, recording what was handed over."""

    def __init__(self) -> None:
        self.parts: list[Plan] = []

    def take(self, part: Plan) -> None:
        self.parts.append(part)


def _eval(flake: str, *jobs: Job, cases: tuple[Case, ...] = ()) -> FlakeEval:
    repo = Repo(flake, Path("/nonexistent") / flake)
    return FlakeEval(Target(Flake(repo, "")), tuple(jobs), cases, 1, 0.1)


def _skeleton() -> Plan:
    return Plan(workspace=Workspace(Path("/nonexistent"), None, (), None, ()),  # type: ignore[arg-type]
                suites=("a", "b"), systems=("x86_64-linux",), current_system="x86_64-linux",
                buildable=frozenset({"x86_64-linux"}), evals=(), jobs=(), cases=(),
                nix=Nix(("nix",)))


def _handover(taken: Taken, *, expected: dict[tuple[str, str], str] | None = None,
              held: set[str] | None = None) -> pipeline._Handover:
    return pipeline._Handover(taken, _skeleton(), expected or {},  # type: ignore[arg-type]
                              held or set())


def _evaluated(handover: pipeline._Handover, flake_eval: FlakeEval,
               named: pipeline._Named | None = None) -> None:
    """As the pool tells it: each attribute as it evaluates, then the flake (to `named`, which
    tells the handover, where the selection names attributes)."""
    for job in flake_eval.jobs:
        handover.job(flake_eval.target, job)
    (named or handover).flake(flake_eval)


def test_each_evaluated_attribute_is_handed_over_once() -> None:
    taken = Taken()
    handover = _handover(taken, held={"pruned"})
    _evaluated(handover, _eval("a", _job("a", "x"), _job("a", "y")))
    _evaluated(handover, _eval("pruned", _job("pruned", "x")))  # waits for the base's drvPaths
    handover.job(_eval("a").target, _job("a", "x"))  # told twice (a retried worker): once
    _evaluated(handover, _eval("b", _job("b", "z")))
    assert [[j.name for j in p.jobs] for p in taken.parts] == [
        ["packages.x86_64-linux.x"], ["packages.x86_64-linux.y"], ["packages.x86_64-linux.z"]]
    assert handover.jobs == {_job("a", "x"), _job("a", "y"), _job("b", "z")}
    assert all(p.cases == () and p.nix.argv0 == ("nix",) for p in taken.parts)


def test_a_flake_missing_an_only_attribute_stops_the_handing_over() -> None:
    from ci_nix.errors import SelectionError

    taken = Taken()
    only = frozenset({("a", "packages.x86_64-linux.x"), ("b", "packages.x86_64-linux.typo")})
    handover = _handover(taken)
    named = pipeline._Named(only, {}, handover)
    _evaluated(handover, _eval("a", _job("a", "x")), named)
    with pytest.raises(SelectionError, match="typo: no such attribute"):
        _evaluated(handover, _eval("b"), named)  # plan() fails on the typo
    _evaluated(handover, _eval("c", _job("c", "w")))  # a worker's job meanwhile: not built
    assert handover.stopped and handover.jobs == {_job("a", "x")} and len(taken.parts) == 1


@pytest.mark.parametrize("typo", [True, False])
def test_an_only_attribute_no_flake_has_stops_everything_before_it_is_handed_over(
        tmp_path: Path, typo: bool) -> None:
    """--only f#a --only f#typo: a was handed over (and built) as it evaluated, before the
    flake ended without `typo` and the run failed (exit 2). With an attribute named, the pool
    hands nothing over before every flake is listed: a listing without `typo` stops it."""
    from test_eval_budget import ScriptedNix  # a scripted evaluation pool's backend

    backend = ScriptedNix({"f": ["a", "b"], "g": ["c"]})
    targets = [Target(Flake(Repo("ws", tmp_path), name)) for name in ("f", "g")]
    for name in ("f", "g"):
        (tmp_path / name).mkdir()
    last = "typo" if typo else "b"
    only = frozenset({("ws/f", "packages.x86_64-linux.a"), ("ws/g", "packages.x86_64-linux.c"),
                      ("ws/f", f"packages.x86_64-linux.{last}")})
    from ci_nix.errors import SelectionError

    taken = Taken()
    handover = _handover(taken)
    named = pipeline._Named(only, {}, handover)

    def evaluated() -> list[FlakeEval]:
        return evaluate.evaluate(
            cast(Nix, None), targets,
            evaluate.Selection(("x86_64-linux",), ("packages",), only=only),
            evaluate.Limits(workers=2), backend=backend, probe=backend.probe(),
            on_job=handover.job, on_flake=named.flake, on_listed=named.listed)

    if typo:
        with pytest.raises(SelectionError, match="typo: no such attribute"):
            evaluated()
        assert handover.stopped and not taken.parts and not handover.jobs
    else:
        evals = evaluated()
        assert [sorted(j.attr[-1] for j in e.jobs) for e in evals] == [["a", "b"], ["c"]]
        assert not handover.stopped
        assert sorted(j.attr[-1] for p in taken.parts for j in p.jobs) == ["a", "b", "c"]


@pytest.mark.parametrize("flag", ["only", "expect"])
def test_a_listing_without_a_named_attribute_stops_the_evaluation_there(
        tmp_path: Path, flag: str) -> None:
    """--only f#typo (or --expect-drv): f's listing lacks it, so plan()'s error is raised from
    the listing: every worker stops, g is never listed and no attribute is evaluated (before,
    the rest was evaluated and the run then failed the same way)."""
    from test_eval_budget import ScriptedNix

    from ci_nix.errors import SelectionError

    # unopened gates: an attribute begun is never done, whenever the pool hears of the listing
    backend = ScriptedNix({"f": ["a", "b"], "g": ["c"]},
                          gates={name: threading.Event() for name in "abc"})
    targets = [Target(Flake(Repo("ws", tmp_path), name)) for name in ("f", "g")]
    for name in ("f", "g"):
        (tmp_path / name).mkdir()
    typo, real = ("ws/f", "packages.x86_64-linux.typo"), ("ws/g", "packages.x86_64-linux.c")
    only = frozenset({typo, real}) if flag == "only" else None
    expected = {typo: "/nix/store/x-typo.drv"} if flag == "expect" else {}
    taken = Taken()
    named = pipeline._Named(only, expected, _handover(taken, expected=expected))
    with pytest.raises(SelectionError) as raised:
        evaluate.evaluate(
            cast(Nix, None), targets,
            evaluate.Selection(("x86_64-linux",), ("packages",), only=only),
            evaluate.Limits(workers=1), backend=backend, probe=backend.probe(),
            on_listed=named.listed, on_flake=named.flake)
    assert str(raised.value).startswith(
        "--only ws/f#packages.x86_64-linux.typo: no such attribute" if flag == "only" else
        "--expect-drv ws/f#packages.x86_64-linux.typo: not evaluated")
    assert [w.flake for w in backend.workers] == ["ws/f"] and not backend.alive
    assert not any(event == "done" for event, _ in backend.history)  # nothing evaluated
    assert not taken.parts
    # a cached flake (on_flake, before any worker) without it stops everything the same way
    with pytest.raises(SelectionError):
        named.flake(_eval("ws/f", _job("ws/f", "a")))


def test_an_attribute_not_as_planned_is_not_handed_over() -> None:
    taken = Taken()
    good, moved = _job("a", "x"), _job("a", "y")
    expected = {("a", good.name): good.drv_path,
                ("a", moved.name): "/nix/store/" + "c" * 32 + "-other.drv"}
    handover = _handover(taken, expected=expected)
    _evaluated(handover, _eval("a", good, moved))
    assert [p.jobs for p in taken.parts] == [(good,)]  # check_planned fails the other
    _evaluated(handover, _eval("b", _job("b", "z")))  # expected names none of b's
    assert handover.jobs == {good, _job("b", "z")} and not handover.stopped


def test_the_builder_builds_each_batch_with_one_nix_build(fake_proc: FakeProc) -> None:
    """EarlyBuild with Nix answered at the spawn point: what arrives during a `nix build` is the
    next one; a job for a system this machine cannot build is skipped, never built; the plan's
    own jobs come last; every case is there once."""
    a, b, c, e = (_job("f", name) for name in ("a", "b", "c", "e"))
    foreign = replace(_job("f", "d"), system="aarch64-darwin")
    first_build, go = threading.Event(), threading.Event()

    def build(call: Call) -> Reply:
        if not first_build.is_set():
            first_build.set()
            assert go.wait(10), "the test did not let the first build finish"
        return Reply()

    fake_proc.strict = True
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    fake_proc.on("nix", "build", handler=build)
    fake_proc.on("nix", "path-info", stdout=json.dumps(
        {p: {"narSize": 1} for j in (a, b, c, e) for p in j.out_paths}))
    nix = Nix.from_env({"CI_NIX_NIX": "nix"})
    skeleton = replace(_skeleton(), nix=nix)
    early = pipeline.EarlyBuild({}, lambda: False)
    early.take(replace(skeleton, jobs=(a,)))
    assert first_build.wait(10)
    for job in (b, foreign, c):  # while `a` builds
        early.take(replace(skeleton, jobs=(job,)))
    go.set()
    fed = early.finish(replace(skeleton, jobs=(e,)))  # the plan's own: after the rest
    built = [[d for d in (j.drv_path for j in (a, b, c, e)) if f"{d}^*" in call.argv]
             for call in fake_proc.ran("nix", "build")]
    assert built in ([[a.drv_path], [b.drv_path, c.drv_path], [e.drv_path]],
                     [[a.drv_path], [b.drv_path, c.drv_path, e.drv_path]])
    assert sorted(case.name for case in fed.cases) == [j.name for j in (a, b, c, e)]
    assert {case.status for case in fed.cases} == {Status.PASSED}
    assert fed.error is None and fed.unbuilt == ()
    [skipped] = early.skipped
    assert skipped.name == foreign.name and "unsupported system" in (skipped.skip_reason or "")
    assert set(early.jobs) == {a, b, c, e}


# `slow` imports from a derivation that waits until `fast` has been built (its builder writes
# a marker): its evaluation cannot end before a build has begun. One flake, as a fleet is: the
# builds start per attribute, not per flake. Then `zfull` aborts with a full disk's words. Nix
# 2.13+ marks an abort as the flake's (a frame of the abort builtin): that attribute fails and
# the rest goes on. Nix 2.8 prints no such frame, so ci-nix takes the words for the machine's
# full disk and stops the whole evaluation (exit 2): what was evaluated before is built all the
# same. One worker evaluates the attributes in name order.
FLAKE = """{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; PATH = "/usr/bin:/bin"; };
    wait = sh "wait-@NONCE@" ''
      i=0; while [ ! -e @MARK@ ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done
      [ -e @MARK@ ] || { echo "fast was not built meanwhile" >&2; exit 1; }
      sleep 1.2  # past a TreeSampler rescan: found beside the worker, in the total
      echo '"slow-@NONCE@"' > $out'';
  in {
    packages.x86_64-linux.fast = sh "fast-@NONCE@" "echo built > @MARK@; echo ok > $out";
    packages.x86_64-linux.slow = sh (import wait) "echo ok > $out";
    packages.x86_64-linux.zfull = abort "writing to file: No space left on device";
  };
}
"""


@pytest.mark.nix
def test_a_build_runs_while_the_flake_is_still_evaluated(tmp_path: Path, nix_bin: str,
                                                         cli: Cli) -> None:
    mark = tmp_path / "fast-was-built"
    flake = flake_repo(tmp_path / "fleet", FLAKE.replace("@NONCE@", uuid.uuid4().hex[:12])
                       .replace("@MARK@", str(mark)))
    report = tmp_path / "report.json"
    result = cli("run", "--all", "--workers", "1", "--json", report, flake)
    assert "No space left on device" in result.stdout + result.stderr
    data = json.loads(report.read_text())
    cases = {c["attr"]: (c["status"], c.get("skipped")) for c in data["cases"]}
    built = {"packages.x86_64-linux.fast": ("passed", None),
             "packages.x86_64-linux.slow": ("passed", None)}
    if "nix-modern" in nix_bin:  # the abort is the flake's: its attribute fails
        assert result.returncode == 1, result.stdout + result.stderr
        assert cases == {**built, "packages.x86_64-linux.zfull": ("failed", None)}
        # `slow`'s import-from-derivation builder (in a session of its own, under the worker)
        # and the build counted in --eval-memory-total (2.8 stops before the summary)
        assert re.search(r"with the builds beside them \(those at most \d+ MiB\)",
                         result.stderr), result.stderr
    else:  # taken for the machine's full disk: the evaluation stops
        assert result.returncode == 2, result.stdout + result.stderr
        # the rest of the flake is said to be unevaluated, not left out silently
        assert cases == {**built, "flake.nix": (
            "skipped", "evaluation not finished: ci-nix stopped first")}
    # and the log says so in order: the build began before the evaluation ended
    lines = result.stderr.splitlines()
    began = next(i for i, line in enumerate(lines)
                 if line.startswith("ci-nix: building fleet#packages.x86_64-linux.fast"))
    ended = next(i for i, line in enumerate(lines) if "No space left on device" in line
                 or line.startswith("ci-nix: evaluated 1/1 flake:"))
    assert began < ended, result.stderr
    assert mark.exists()


def _nix_json(**record: object) -> str:
    return "@nix " + json.dumps(record) + "\n"


class FailingNix:
    """Nix answered at the spawn point for jobs whose derivations' inputs are `graph` (none of
    these .drv files is in a store: their inputs are asked of Nix): the builder of `failing`
    fails, and the jobs in `unbuilt` have no valid outputs after. The first build waits for
    `go`, so that what is handed over meanwhile is the next batch."""

    def __init__(self, fake_proc: FakeProc, failing: str, unbuilt: Sequence[Job],
                 graph: dict[str, Sequence[str]]) -> None:
        self.first_build, self.go = threading.Event(), threading.Event()
        self.failing = failing
        self.needs = {drv for drv in graph
                      if failing in graph_closure([drv], lambda d: graph.get(d, ()))}
        invalid = {path for job in unbuilt for path in job.out_paths}
        fake_proc.strict = True
        fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
        fake_proc.on("nix", "config", "show", stdout="{}")
        fake_proc.on("nix", "build", handler=self.build)
        fake_proc.on("nix", "path-info", handler=lambda call: Reply(stdout=json.dumps(
            {p: None if p in invalid else {"narSize": 1}
             for p in call.argv if p.startswith("/nix/store/")})))
        fake_proc.on("nix", "path-info", "--derivation", "--recursive", handler=lambda call: Reply(
            stdout="\n".join(graph_closure([call.argv[-1]], lambda d: graph.get(d, ())))))
        fake_proc.on("nix", "eval", "builtins.currentSystem", stdout="x86_64-linux")
        fake_proc.on("nix", "derivation", "show", "--recursive", stdout=json.dumps({
            drv: {"inputDrvs": {i: {"outputs": ["out"]} for i in inputs}, "env": {}}
            for drv, inputs in graph.items()}))
        self.skeleton = replace(_skeleton(), nix=Nix.from_env({"CI_NIX_NIX": "nix"}))

    def build(self, call: Call) -> Reply:
        if not self.first_build.is_set():
            self.first_build.set()
            assert self.go.wait(10), "the test did not let the first build finish"
        if not self.needs & {arg.removesuffix("^*") for arg in call.argv}:
            return Reply()
        return Reply(returncode=1, stderr="".join((
            _nix_json(action="start", id=7, level=3, type=105, text="building",
                      fields=[self.failing, "", 1, 1]),
            _nix_json(action="stop", id=7),
            _nix_json(action="msg", level=0, msg=f"error: builder for '{self.failing}' "
                                                 "failed with exit code 1"))))

    def run(self, first: Job, *meanwhile: Job) -> pipeline.EarlyBuild:
        """Hand `first` over, the others while it builds: the EarlyBuild, finished."""
        early = pipeline.EarlyBuild({}, lambda: False)
        early.take(replace(self.skeleton, jobs=(first,)))
        assert self.first_build.wait(10)
        for job in meanwhile:
            early.take(replace(self.skeleton, jobs=(job,)))
        self.go.set()
        self.fed = early.finish(None)
        return early


def test_a_derivation_that_failed_in_a_batch_is_not_built_by_a_later_one(
        fake_proc: FakeProc, caplog: pytest.LogCaptureFixture) -> None:
    """Nix keeps no record of a failed build: batch 2's `uses` needs `broken`, which failed in
    batch 1, and would be built again. It fails as `dependency` naming it without a build; an
    attribute of the very derivation that failed fails as it did; `fine` is built."""
    broken, uses, fine = (_job("f", name) for name in ("broken", "uses", "fine"))
    alias = replace(_job("f", "alias"), drv_path=broken.drv_path, outputs=broken.outputs)
    nix = FailingNix(fake_proc, broken.drv_path, [broken, uses], {
        uses.drv_path: [broken.drv_path], broken.drv_path: [], fine.drv_path: []})
    with caplog.at_level(logging.INFO, logger="ci_nix"):
        nix.run(broken, uses, alias, fine)
    fed = nix.fed
    builds = [[j.attr[-1] for j in (broken, uses, fine) if f"{j.drv_path}^*" in call.argv]
              for call in fake_proc.ran("nix", "build")]
    assert builds == [["broken"], ["fine"]]  # broken once, and nothing that needs it
    cases = {case.name.rsplit(".", 1)[-1]: case for case in fed.cases}
    assert sorted(cases) == ["alias", "broken", "fine", "uses"]
    assert cases["fine"].status is Status.PASSED
    failed = {name: c.failure for name, c in cases.items() if c.failure is not None}
    assert failed.keys() == {"alias", "broken", "uses"}
    assert failed["broken"].type is failed["alias"].type is FailureType.BUILD
    assert failed["alias"].message == failed["broken"].message
    dep = failed["uses"]
    assert dep.type is FailureType.DEPENDENCY and dep.cause == broken.drv_path
    assert dep.drv == uses.drv_path
    assert dep.message.startswith("dependency failed: f-broken.drv (builder for f-broken.drv "
                                  "failed with exit code 1; ")
    assert "failed earlier in this run, building f#packages.x86_64-linux.broken" in dep.message
    assert len(fake_proc.ran("nix", "derivation", "show")) == 1
    # one question per batch of which outputs are valid, the failed batch's too (the answer
    # build._stopped_early got is the one build() needs: no other pass followed)
    asked = [c for c in fake_proc.ran("nix", "path-info") if "--derivation" not in c.argv]
    assert len(asked) == 2, [c.argv for c in asked]
    # the run's total counts broken's build once (Nix ran no other builder here)
    assert caplog.messages[-1] == "built 1 derivation for 4 attributes: 1 passed, 3 failed"
    assert fed.error is None and fed.unbuilt == ()


def test_a_failed_dependency_that_is_no_attribute_is_named_with_the_first_that_needed_it(
        fake_proc: FakeProc) -> None:
    """`lib` is no attribute: it failed building `app` (batch 1); `tool` (batch 2) needs it
    too, and fails at once naming it and `app`: no `nix build` for batch 2 at all."""
    app, tool = _job("f", "app"), _job("f", "tool")
    lib = f"/nix/store/{'c' * 32}-lib.drv"
    nix = FailingNix(fake_proc, lib, [app, tool], {
        app.drv_path: [lib], tool.drv_path: [lib], lib: []})
    nix.run(app, tool)
    assert len(fake_proc.ran("nix", "build")) == 1
    failures = {case.name: case.failure for case in nix.fed.cases}
    first, later = failures[app.name], failures[tool.name]
    assert first is not None and later is not None
    assert first.type is later.type is FailureType.DEPENDENCY
    assert first.cause == later.cause == lib
    assert later.message == first.message.removesuffix(")") + (
        "; failed earlier in this run, building f#packages.x86_64-linux.app: not built again)")


def _aterm(value: str) -> str:
    """A string as Nix writes it into a .drv (printString)."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _drv_text(inputs: Sequence[str], env: Sequence[tuple[str, str]]) -> str:
    out = _aterm("/nix/store/" + "d" * 32 + "-x")
    inputs_text = ",".join(f'({_aterm(i)},["out","dev"])' for i in inputs)
    env_text = ",".join(f"({_aterm(k)},{_aterm(v)})" for k, v in env)
    return (f'Derive([("out",{out},"","")],[{inputs_text}],["/nix/store/{"s" * 32}-src"],'
            f'"x86_64-linux","/bin/sh",["-c","echo ]) ("],[{env_text}])')


_STORE_DRVS = st.builds(lambda h, n: f"/nix/store/{h}-{n}.drv",
                        st.text("0123456789abcdfghijklmnpqrsvwxyz", min_size=32, max_size=32),
                        st.from_regex(r"[a-zA-Z0-9+._?=-]{1,30}", fullmatch=True))


@given(st.lists(_STORE_DRVS, max_size=5), st.lists(st.tuples(st.text(), st.text()), max_size=4))
def test_a_drv_files_input_derivations_are_read_whatever_its_strings_hold(
        inputs: list[str], env: list[tuple[str, str]]) -> None:
    text = _drv_text(inputs, env)
    assert input_drvs(text) == tuple(inputs)
    # newer Nix's experimental kinds wrap the same fields
    assert input_drvs(f'DrvWithVersion("xp-dyn-drv",{text.removeprefix("Derive(")}') \
        == tuple(inputs)
    cut = text[:text.index("],[\"/nix/store/")]  # the inputs cut off: no answer, not a short one
    with pytest.raises(ValueError):
        input_drvs(cut)


@given(st.text())
def test_any_text_is_a_derivation_or_a_value_error(text: str) -> None:
    try:
        assert isinstance(input_drvs(text), tuple)
    except ValueError:
        pass


def test_a_drv_read_directly_must_be_a_store_derivation(tmp_path: Path) -> None:
    fake = tmp_path / "x.drv"
    fake.write_text(_drv_text([], []))
    assert read_input_drvs(str(fake)) is None  # not in /nix/store: asked of Nix instead
    assert read_input_drvs(f"/nix/store/{'0' * 32}-absent.drv") is None
    with pytest.raises(ValueError, match="no store derivation"):
        input_drvs(_drv_text(["/etc/passwd"], []))
