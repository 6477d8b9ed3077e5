"""Evaluation on real Nix: per-attribute error isolation by bisection, selection, systems, dedup."""

from __future__ import annotations

import collections
import json
import logging
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ONE_NIX, Cli, flake_repo, xml_attr

from ci_nix import evaluate
from ci_nix.models import Target
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.workspace import load

pytestmark = pytest.mark.nix
ROOT = Path(__file__).resolve().parent.parent
X86, ARM = "x86_64-linux", "aarch64-linux"


sys.path.insert(0, str(ROOT))
from bench import generate  # noqa: E402

TAKE_OVER = "%s: a new worker takes %d of %d unbegun attributes"  # evaluate._Pool._steal's log


def test_every_failing_attribute_is_isolated_with_its_own_error(
        tmp_path: Path, nix_bin: str, caplog: pytest.LogCaptureFixture) -> None:
    kinds = ("missing", "type", "recursion", "throw", "assert")
    gen = generate.generate(tmp_path / "ws", flakes=1, attrs=40, broken=kinds)
    ws = load(gen.root, Git.from_env())
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    caplog.set_level(logging.DEBUG, logger="ci_nix.evaluate")
    [result] = evaluate.evaluate(Nix.from_env(), [Target(ws.flakes[0])], selection)

    assert sorted(j.name for j in result.jobs) == sorted(a.path for a in gen.good)
    failures = {case.name: case.failure for case in result.cases}
    assert set(failures) == {a.path for a in gen.broken}
    for attr in gen.broken:
        failure = failures[attr.path]
        assert failure is not None and failure.type.value == "eval"
        text = failure.message + failure.log
        assert attr.broken is not None, f"{attr} is one of the broken attributes"
        assert generate.ERROR_TEXT[attr.broken] in text, (attr, failure)
        # each keeps its own text, not a neighbour's
        others = [generate.ERROR_TEXT[k] for k in kinds if k != attr.broken
                  and k not in ("assert",)]
        assert not any(other in failure.message for other in others), (attr, failure)

        # the position comes from the worker's own error (it runs with --show-trace)
        assert failure.file == "flake.nix" and failure.line, (attr, failure)

    # no re-evaluation: each attribute is begun once; a failing one ends its worker and a fresh
    # one takes the rest, plus one per take-over the pool logged (how many depends on how fast
    # each worker goes: a slow start saw five, and a fixed `+ 4` failed)
    assert result.attr_evaluations == 40
    took_over = sum(1 for record in caplog.records if record.msg == TAKE_OVER)
    assert 1 + took_over <= result.evaluations <= 1 + len(kinds) + took_over, took_over


def test_clean_flake_costs_one_evaluation(tmp_path: Path, nix_bin: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    gen = generate.generate(tmp_path / "ws", flakes=3, attrs=6, broken=())
    ws = load(gen.root, Git.from_env())
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    caplog.set_level(logging.DEBUG, logger="ci_nix.evaluate")
    results = evaluate.evaluate(Nix.from_env(), [Target(f) for f in ws.flakes], selection,
                                evaluate.Limits(workers=2))
    assert [r.target.flake.id for r in results] == ["f00", "f01", "f02"]  # order kept
    # each attribute evaluated once; an idle worker may take over the tail of a busy one
    assert [r.attr_evaluations for r in results] == [6, 6, 6]
    # one Nix evaluation per flake, plus one per take-over: how many happen depends on how
    # fast each worker goes (on a loaded machine a flake saw two, and `<= 2` failed)
    took_over = collections.Counter(record.args[0] for record in caplog.records
                                    if record.msg == TAKE_OVER and isinstance(record.args, tuple))
    assert [r.evaluations for r in results] == [1 + took_over[r.target.flake.id]
                                                for r in results], took_over
    assert all(len(r.jobs) == 6 and not r.cases for r in results)


# One Nix: the selection by outputs, include, exclude, systems and runners is ci-nix's, over the
# listing each Nix version gives (test_clean_flake_costs_one_evaluation's and the others', on
# both)
@ONE_NIX
def test_outputs_include_exclude_and_systems_from_config(tmp_path: Path, nix_bin: str,
                                                         cli: Cli) -> None:
    gen = generate.generate(
        tmp_path / "ws", flakes=2, attrs=10, broken=(), systems=(X86, ARM),
        config={"systems": [X86, ARM], "outputs": ["packages", "devShells"],
                "include": ["packages.*", "checks.*"], "exclude": ["*.pkg01"],
                "runners": {ARM: ["arm64", "nix"]}})
    result = cli("matrix", "--all", gen.root, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    got = {(j["flake"], j["attr"]) for j in data["jobs"]}
    want = {(a.flake, a.path) for a in gen.attrs
            if a.kind == "packages" and not a.name.endswith("01")}  # checks: not an output
    assert got == want
    assert {j["system"] for j in data["jobs"]} == {X86, ARM}
    assert data["systems"] == [X86, ARM]
    # a listing and a worker on what it selected, per flake (+ a worker taking over a tail)
    assert 4 <= data["evaluations"] <= 8
    assert {e["system"]: e["runner"] for e in data["entries"]} == {X86: None,  # not in runners:
                                                                  ARM: ["arm64", "nix"]}

    # --system narrows the config's systems
    result = cli("matrix", "--all", gen.root, "--format", "json", "--system", ARM)
    assert {j["system"] for j in json.loads(result.stdout)["jobs"]} == {ARM}


def test_run_skips_systems_this_machine_cannot_build(tmp_path: Path, nix_bin: str,
                                                     cli: Cli) -> None:
    gen = generate.generate(tmp_path / "ws", flakes=1, attrs=3, broken=(), systems=(X86, ARM),
                            config={"systems": [X86, ARM]})
    junit = tmp_path / "r.xml"
    result = cli("run", "--all", gen.root, "--junit", junit)
    assert result.returncode == 0, result.stderr
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        skipped = case.find("skipped")
        outcomes[xml_attr(case, "name")] = ("passed" if skipped is None
                                            else xml_attr(skipped, "message"))
    assert {name for name, o in outcomes.items() if o == "passed"} == {
        a.path for a in gen.attrs if a.system == X86}
    for attr in (a for a in gen.attrs if a.system == ARM):
        assert "unsupported system aarch64-linux" in outcomes[attr.path]

    # extra-platforms (e.g. with qemu-user binfmt) makes aarch64-linux buildable here
    env = {"NIX_CONFIG": os.environ["NIX_CONFIG"] + "extra-platforms = aarch64-linux\n"}
    result = cli("matrix", "--all", gen.root, "--format", "json", env=env)
    assert json.loads(result.stdout)["buildable"] == [ARM, X86]


ALIASES = """{
  outputs = { self }: let
    mk = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo @NONCE@ > $out" ]; PATH = "/usr/bin:/bin"; };
  in {
    packages.x86_64-linux = rec { hello = mk "hello"; default = hello; other = mk "other"; };
    checks.x86_64-linux.hello = self.packages.x86_64-linux.hello;
  };
}
"""


# One Nix: one build per derivation path, reported under each name, is ci-nix's grouping of the
# paths each Nix version's evaluation gives (the other tests here, on both)
@ONE_NIX
def test_same_derivation_is_built_once_and_reported_under_each_name(tmp_path: Path,
                                                                    nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "aliases", ALIASES.replace("@NONCE@", os.urandom(6).hex()))

    report = tmp_path / "r.json"
    result = cli("run", "--all", repo, "--json", report)
    assert result.returncode == 0, result.stderr
    assert "built 2 derivations" in result.stderr  # hello (x3 names) and other
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    names = ["packages.x86_64-linux.hello", "packages.x86_64-linux.default",
             "checks.x86_64-linux.hello"]
    assert {cases[n]["status"] for n in names} == {"passed"}
    assert len({cases[n]["drvPath"] for n in names}) == 1

    matrix = cli("matrix", "--all", repo, "--format", "json")
    entries = json.loads(matrix.stdout)["entries"]
    assert sorted(len(e["attrs"]) for e in entries) == [1, 3]


def test_a_flake_broken_as_a_whole_gets_a_runnable_matrix_entry(tmp_path: Path, nix_bin: str,
                                                                cli: Cli) -> None:
    gen = generate.generate(tmp_path / "ws", flakes=2, attrs=2, broken=())
    broken = gen.root / "f01"
    (broken / "flake.nix").write_text("{ outputs = { self }: { packages = ; }; }\n")
    subprocess.run(["git", "-C", str(broken), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qam", "break"], check=True)
    result = cli("matrix", "--all", gen.root, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(f["flake"], f["attr"]) for f in data["failures"]] == [("f01", "flake.nix")]
    [entry] = [e for e in data["entries"] if e["flake"] == "f01"]
    junit = tmp_path / "job.xml"
    result = cli("run", *shlex.split(entry["args"]), "--junit", junit)
    assert result.returncode == 1, result.stderr
    [case] = list(ET.parse(junit).iter("testcase"))
    assert (case.get("classname"), case.get("name")) == ("f01", "flake.nix")
    assert case.find("failure") is not None


def test_what_an_aborting_workers_trace_runs_through_stands_first_in_eval_nix() -> None:
    """Nix 2.8 with --show-trace (every worker's) prints each frame of an error's trace with its
    code lines, reading the file up to the frame's line a byte a read: for eval.nix's frames of
    a task that aborts its worker (the task loop, the task, the attribute and its path) that was
    ~130,000 reads, ~0.04 CPU-s of each such worker, with the file's notes and the rest of its
    definitions before them. They stand in its first lines now (~30,000 reads)."""
    text = (ROOT / "ci_nix" / "nix" / "eval.nix").read_text()
    for name in ("evaluateAll", "run", "info", "getPath", "emit"):
        assert 0 < text.find(f"\n  {name} = ") < 2000, name
    assert text.index("# What ci-nix asks of a flake") > text.index("\nin\n")  # (the notes last)
