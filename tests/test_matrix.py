"""Plan -> matrix entries and the GitHub/GitLab/JSON writers, on plans built in memory."""

from __future__ import annotations

import io
import json
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from helpers import check_jsonschema

from ci_nix import inputs as inputs_mod
from ci_nix import matrix, pipeline
from ci_nix.cli import build_parser
from ci_nix.config import Config
from ci_nix.errors import ConfigError
from ci_nix.inputs import Checkout
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    Failure,
    FailureType,
    Flake,
    Job,
    Repo,
    Status,
    parse_attr,
)
from ci_nix.plan import Plan
from ci_nix.report import matrix as writers
from ci_nix.workspace import Workspace

X86, ARM = "x86_64-linux", "aarch64-linux"


def job(flake: str, attr: str, system: str = X86, drv: str | None = None) -> Job:
    drv = drv or f"/nix/store/{abs(hash((flake, attr))):032d}-{attr}.drv"
    return Job(flake, parse_attr(attr), system, drv, (("out", drv[:-4]),))


def failure(flake: str, attr: str) -> Case:
    return Case(flake, attr, Status.FAILED, failure=Failure(FailureType.EVAL, f"{attr} broke"))


def make_plan(jobs: list[Job], cases: Sequence[Case] = (), buildable: tuple[str, ...] = (X86,),
              runners: dict[str, tuple[str, ...]] | None = None) -> Plan:
    repo = Repo("r", Path("/tmp/r"))
    flakes = tuple(dict.fromkeys(j.flake for j in jobs))
    ws = Workspace(Path("/tmp"), Config(runners=runners or {}), (repo,), repo,
                   tuple(Flake(Repo(f, Path("/tmp") / f), "") for f in flakes))
    return Plan(workspace=ws, suites=flakes, systems=(X86,), current_system=X86,
                buildable=frozenset(buildable), evals=(), jobs=tuple(jobs), cases=tuple(cases))


def only_pairs(entries: tuple[matrix.Entry, ...]) -> list[tuple[str, str]]:
    return [pair for entry in entries for pair in entry.only]


def test_one_entry_per_derivation_and_aliases_share_one() -> None:
    shared = "/nix/store/" + "1" * 32 + "-hello.drv"
    tool = job("b", f"packages.{ARM}.tool", system=ARM)
    jobs = [job("a", f"packages.{X86}.hello", drv=shared),
            job("a", f"packages.{X86}.default", drv=shared),
            job("b", f"packages.{X86}.hello", drv=shared),  # re-exported by another flake
            tool]
    entries = matrix.entries(make_plan(jobs), {ARM: ("arm64", "nix")})
    assert [e.only for e in entries] == [
        (("a", f"packages.{X86}.hello"), ("a", f"packages.{X86}.default"),
         ("b", f"packages.{X86}.hello")),
        (("b", f"packages.{ARM}.tool"),),
    ]
    assert [(e.system, e.runner) for e in entries] == [(X86, ("ubuntu-latest",)),
                                                       (ARM, ("arm64", "nix"))]
    assert entries[1].args() == ("--system", ARM, f"--only=b#packages.{ARM}.tool",
                                 f"--expect-drv=b#packages.{ARM}.tool={tool.drv_path}")
    assert [e[2] for e in entries[0].expect] == [shared] * 3


def test_eval_failures_become_entries_on_their_system() -> None:
    plan = make_plan([job("a", f"packages.{X86}.ok")],
                     [failure("a", f"packages.{ARM}.bad"), failure("h", "nixosConfigurations.web"),
                      failure("z", FLAKE_CASE),
                      Case("u", FLAKE_CASE, Status.SKIPPED, skip_reason="unaffected")])
    entries = matrix.entries(plan, {}, {})
    assert [(e.system, e.only) for e in entries] == [
        (X86, (("a", f"packages.{X86}.ok"),)),
        (ARM, (("a", f"packages.{ARM}.bad"),)),
        (X86, (("h", "nixosConfigurations.web"),)),
        (X86, (("z", FLAKE_CASE),)),
    ]
    assert all(e.runner == () for e in entries)  # no defaults given: any runner


def test_over_the_cap_groups_per_flake_and_system() -> None:
    jobs = [job(f"f{i:02d}", f"packages.{system}.p{j:02d}", system)
            for i in range(20) for system in (X86, ARM) for j in range(15)]
    entries = matrix.entries(make_plan(jobs), {})
    assert len(entries) == 40
    assert all(e.grouped and len(e.flakes) == 1 for e in entries)
    assert only_pairs(entries) == [(j.flake, j.name) for j in jobs]
    assert {(e.flake, e.system) for e in entries} == {(f"f{i:02d}", s) for i in range(20)
                                                      for s in (X86, ARM)}


@pytest.mark.parametrize("cap", [1, 2, 3, 7, 39])
def test_squeezing_below_flake_groups_keeps_every_attribute_once(cap: int) -> None:
    jobs = [job(f"f{i:02d}", f"packages.{system}.p{j}", system)
            for i in range(20) for system in (X86, ARM) for j in range(3)]
    if cap == 1:
        with pytest.raises(ConfigError, match="2 systems do not fit"):
            matrix.entries(make_plan(jobs), {}, cap=cap)
        return
    entries = matrix.entries(make_plan(jobs), {}, cap=cap)
    assert len(entries) <= cap
    assert sorted(only_pairs(entries)) == sorted((j.flake, j.name) for j in jobs)
    for entry in entries:  # one system per entry, or the job could not run it
        assert {name.split(".")[1] for name in entry.attrs} == {entry.system}


def test_github_needs_a_runner_for_every_system() -> None:
    plan = make_plan([job("a", "packages.riscv64-linux.x", "riscv64-linux")])
    with pytest.raises(ConfigError, match="no runner for system riscv64-linux.*'runners:'"):
        matrix.entries(plan, {}, require_runner=True)
    entries = matrix.entries(plan, {"riscv64-linux": ("rv",)}, require_runner=True)
    assert entries[0].runner == ("rv",)


def test_github_matrix_args_survive_the_shell() -> None:
    odd = f'packages.{X86}."odd name; $(rm -rf /)"'
    plan = make_plan([job("my repo/sub", odd), job("a", "nixosConfigurations.web")])
    entries = matrix.entries(plan, {X86: ("self-hosted", "nix")})
    out = io.StringIO()
    writers.write_github(entries, out, prefix=["ws dir"])
    data = json.loads(out.getvalue())
    first = data["include"][0]
    assert first["flake"] == "my repo/sub" and first["attr"] == odd
    assert first["system"] == X86 and first["runner"] == ["self-hosted", "nix"]
    # what `ci-nix run ${{ matrix.args }}` hands to ci-nix after bash word-splitting
    assert shlex.split(first["args"]) == [
        "ws dir", "--system", X86, f"--only=my repo/sub#{odd}",
        f"--expect-drv=my repo/sub#{odd}={plan.jobs[0].drv_path}"]
    value = writers.github_output_value(entries, ["ws dir"])
    assert "\n" not in value and json.loads(value) == data  # one $GITHUB_OUTPUT line


@pytest.mark.parametrize("flake", ["-dash", "has#hash", "a=b/-x"])
def test_entry_args_parse_back_for_any_flake_id(flake: str) -> None:
    """What `ci-nix run` makes of an entry's args: the same flakes, attributes and drvPaths,
    even for a flake id argparse would take for an option or that holds a `#`."""
    attr = f'packages.{X86}."x=/y#z"'
    drv = "/nix/store/" + "2" * 32 + "-x=y.drv"  # a store path name may hold a `=`
    plan = replace(make_plan([job(flake, attr, drv=drv), job("plain", f"packages.{X86}.p")]),
                   checkouts=(Checkout(flake, "a" * 40, False),
                              Checkout("plain", "b" * 40, True)),
                   locked=True)
    entry = matrix.entries(plan, {}, {})[0]
    assert entry.pins == ((flake, "a" * 40),)  # its own repo; not the dirty one it never reads
    args = build_parser().parse_args(["run", *shlex.split(shlex.join(entry.args()))])
    ids = {flake, "plain"}
    assert args.locked and inputs_mod.parse_pins(args.pins) == ((flake, "a" * 40),)
    assert pipeline.parse_only(tuple(args.only), ids) == frozenset({(flake, attr)})
    assert pipeline.parse_expect(tuple(args.expect_drv), ids) == {(flake, attr): drv}
    assert matrix.unpinned_repos(plan) == ()  # no evals: no repo was read




def test_gitlab_child_pipeline_validates(tmp_path: Path) -> None:
    plan = make_plan([job("a", f"packages.{X86}.x"), job("a", f"packages.{ARM}.y", ARM),
                      job("b", "nixosConfigurations.image")],
                     [failure("b", "nixosConfigurations.default")])
    entries = matrix.entries(plan, {ARM: ("arm64",)}, {})
    out = io.StringIO()
    writers.write_gitlab(entries, out, [], writers.GitLabJob(
        image="nixos/nix:2.24.9", before_script=("pip install ci-nix",)))
    child = tmp_path / "child.yml"
    child.write_text(out.getvalue())
    code, output = check_jsonschema("vendor.gitlab-ci", child)
    assert code == 0, output

    pipeline = yaml.safe_load(out.getvalue())
    assert pipeline["default"] == {"image": "nixos/nix:2.24.9",
                                   "before_script": ["pip install ci-nix"]}
    jobs = {name: spec for name, spec in pipeline.items() if name.startswith("build ")}
    assert len(jobs) == 4
    arm = jobs[f"build a packages.{ARM}.y"]
    assert arm["tags"] == ["arm64"]
    drv = plan.jobs[1].drv_path
    assert arm["script"] == [f"ci-nix run --system {ARM} '--only=a#packages.{ARM}.y' "
                             f"'--expect-drv=a#packages.{ARM}.y={drv}' --junit junit.xml"]
    assert arm["artifacts"]["reports"] == {"junit": "junit.xml"}
    assert arm["artifacts"]["when"] == "always"
    assert "tags" not in jobs[f"build a packages.{X86}.x"]  # no runner configured: any runner


def test_gitlab_pipeline_without_jobs_is_still_valid(tmp_path: Path) -> None:
    out = io.StringIO()
    writers.write_gitlab((), out)
    child = tmp_path / "empty.yml"
    child.write_text(out.getvalue())
    code, output = check_jsonschema("vendor.gitlab-ci", child)
    assert code == 0, output
    assert "nothing to build" in yaml.safe_load(out.getvalue())


def test_gitlab_job_names_are_unique_and_not_reserved() -> None:
    entries = (matrix.Entry(X86, (), (("a", "x"),)), matrix.Entry(X86, (), (("a", "x"),)))
    names = [n for n in writers.gitlab_pipeline(entries) if n.startswith("build")]
    assert names == ["build a x", "build a x #2"]


def test_json_report_counts_evaluations() -> None:
    plan = make_plan([job("a", f"packages.{X86}.x"), job("a", f"packages.{ARM}.y", ARM)],
                     [failure("a", f"packages.{X86}.bad")])
    out = io.StringIO()
    writers.write_json(plan, matrix.entries(plan, {}, {}), out)
    data = json.loads(out.getvalue())
    assert data["evaluations"] == 0 and data["buildable"] == [X86]
    assert [j["attr"] for j in data["jobs"]] == [f"packages.{X86}.x", f"packages.{ARM}.y"]
    assert data["failures"] == [{"flake": "a", "attr": f"packages.{X86}.bad", "type": "eval",
                                 "message": f"packages.{X86}.bad broke"}]
    assert len(data["entries"]) == 3


def test_plan_splits_local_and_foreign_and_skips() -> None:
    x, y = job("a", f"packages.{X86}.x"), job("a", f"packages.{ARM}.y", ARM)
    plan = make_plan([x, y])
    assert plan.local == (x,) and plan.foreign == (y,)
    [unsupported] = plan.unsupported()
    assert unsupported.status is Status.SKIPPED and "unsupported system aarch64-linux" in (
        unsupported.skip_reason or "")
    assert make_plan([x, y], buildable=(X86, ARM)).foreign == ()
    narrowed = plan.skip([x], "cached in test")
    assert narrowed.jobs == (y,)
    assert narrowed.cases[-1].skip_reason == "cached in test" and narrowed.cases[-1].name == x.name
