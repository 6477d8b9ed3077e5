"""One plan, carried whole (issue #23): a three-repo workspace on feature branches gives the same
derivations and verdicts from `run --all`, `run --base main`, every matrix entry run with no CI
variables, and `diff`; a GitLab child pipeline that gets no merge-request variables builds what
its parent planned. Real Nix (both versions), real git; one workspace per Nix, reused.

    modules  lib.pgVersion 15 -> 16 on its feature branch; lib.mkHost
    pkgs     postgresql-${pgVersion}, exporter (broken on its feature branch); locks modules@main
    hosts    db1 (postgresql), monitor (exporter), web (new on feature); locks pkgs and modules@main

Each repo is checked out on `feature`; every flake.lock still has the `main` commits, so only
evaluating against the workspace's checkouts builds what the workspace holds.
"""

from __future__ import annotations

import json
import shlex
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import make_workspace
import pytest
import yaml
from conftest import NIX_CONFIG, NIX_PARAMS, NIXES, Cli, xml_attr
from helpers import commit, git

pytestmark = pytest.mark.nix

SYSTEM = "x86_64-linux"
# A job with none of GitHub's or GitLab's variables: what a laptop, or a child pipeline that was
# not handed the merge request's variables, has.
NO_CI = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "CI_MERGE_REQUEST_DIFF_BASE_SHA": "",
         "CI_MERGE_REQUEST_IID": "", "CI_COMMIT_BEFORE_SHA": "", "GITHUB_EVENT_PATH": ""}

MKDRV = """
      sh = name: text: extra: derivation ({
        inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" text ];
        PATH = "/usr/bin:/bin"; NONCE = "@NONCE@";
      } // extra);"""

MODULES = """{
  outputs = { self }:
    let""" + MKDRV + """
    in {
      lib.pgVersion = "15";
      lib.mkHost = { name, packages ? [ ] }: {
        type = "configuration";
        config = {
          networking.hostName = name;
          nixpkgs.hostPlatform = "x86_64-linux";
          system.build.toplevel = sh "nixos-system-${name}"
            "mkdir -p $out; for p in $packages; do echo $p >> $out/packages; done"
            { inherit packages; };
        };
        pkgs.stdenv.hostPlatform.system = "x86_64-linux";
        options = { };
      };
      checks.x86_64-linux.lib = sh "modules-lib-check" "echo ok > $out" { };
    };
}
"""

PKGS = """{
  inputs.modules.url = "@MODULES@";
  outputs = { self, modules }:
    let""" + MKDRV + """
    in {
      packages.x86_64-linux.postgresql =
        sh "postgresql-${modules.lib.pgVersion}" "echo postgres > $out" { };
      packages.x86_64-linux.exporter = sh "exporter-1.0" "echo exporter > $out" { };
    };
}
"""

HOSTS = """{
  inputs.pkgs.url = "@PKGS@";
  inputs.modules.url = "@MODULES@";
  outputs = { self, pkgs, modules }:
    let p = pkgs.packages.x86_64-linux; in {
      nixosConfigurations.db1 = modules.lib.mkHost { name = "db1"; packages = [ p.postgresql ]; };
      nixosConfigurations.monitor =
        modules.lib.mkHost { name = "monitor"; packages = [ p.exporter ]; };
    };
}
"""

BROKEN_EXPORTER = ('"echo \'exporter.c:3: error: expected expression\' >&2; exit 1"')

DB1 = "hosts#nixosConfigurations.db1"
MONITOR = "hosts#nixosConfigurations.monitor"
WEB = "hosts#nixosConfigurations.web"
POSTGRESQL = f"pkgs#packages.{SYSTEM}.postgresql"
EXPORTER = f"pkgs#packages.{SYSTEM}.exporter"
CHECK = f"modules#checks.{SYSTEM}.lib"
# what the workspace as checked out gives
VERDICTS = {CHECK: "passed", POSTGRESQL: "passed", EXPORTER: "failed:build", DB1: "passed",
            MONITOR: "failed:dependency", WEB: "passed"}


@dataclass(frozen=True)
class Feature:
    root: Path
    nix: str

    def env(self, **extra: str) -> dict[str, str]:
        return {**NO_CI, "CI_NIX_NIX": self.nix, "NIX_CONFIG": NIX_CONFIG, **extra}


def make(root: Path) -> Path:
    nonce = uuid.uuid4().hex[:12]
    modules, pkgs, hosts = root / "modules", root / "pkgs", root / "hosts"
    urls = {"@MODULES@": make_workspace.git_url(modules), "@PKGS@": make_workspace.git_url(pkgs),
            "@NONCE@": nonce}

    def text(template: str) -> str:
        for key, value in urls.items():
            template = template.replace(key, value)
        return template

    root.mkdir(parents=True)
    (root / "ci-nix.yaml").write_text("repos:\n  - path: modules\n  - path: pkgs\n"
                                      "  - path: hosts\nsystems: [x86_64-linux]\n")
    for repo, flake in ((modules, MODULES), (pkgs, PKGS), (hosts, HOSTS)):
        repo.mkdir()
        (repo / "flake.nix").write_text(text(flake))
        make_workspace.init_repo(repo, f"{repo.name}: initial")
        if repo is not modules:
            make_workspace.lock(repo, {})
            commit(repo, f"{repo.name}: lock")
    # the feature branches: a module change, one broken package, a new host
    for repo in (modules, pkgs, hosts):
        git(repo, "checkout", "-q", "-b", "feature")
    commit(modules, "PostgreSQL 16", files={"flake.nix": text(MODULES).replace('"15"', '"16"')})
    commit(pkgs, "exporter: new parser", files={
        "flake.nix": text(PKGS).replace('"echo exporter > $out"', BROKEN_EXPORTER)})
    commit(hosts, "web host", files={"flake.nix": text(HOSTS).replace(
        "    };\n}", '      nixosConfigurations.web = modules.lib.mkHost { name = "web"; };\n'
        "    };\n}")})
    return root


@pytest.fixture(scope="module", params=NIX_PARAMS, ids=[label for label, _ in NIXES] or ["none"])
def feature(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feature]:
    nix = request.param
    if nix is None:
        pytest.skip("no Nix on this machine")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI_NIX_NIX", nix)
        patch.setenv("NIX_CONFIG", NIX_CONFIG)
        yield Feature(make(tmp_path_factory.mktemp("feature") / "ws"), nix)


def results(report: Path) -> dict[str, tuple[str, str | None]]:
    """`flake#attr` -> (verdict, drvPath) from a --json report."""
    found = {}
    for case in json.loads(report.read_text())["cases"]:
        failure = case.get("failure")
        verdict = (f"failed:{failure['type']}" if case["status"] == "failed" and failure
                   else case["status"])
        found[f"{case['flake']}#{case['attr']}"] = (verdict, case["drvPath"])
    return found


def run_json(cli: Cli, feature: Feature, tmp: Path, name: str, *args: str | Path,
             code: int = 1) -> dict[str, tuple[str, str | None]]:
    report = tmp / f"{name}.json"
    result = cli("run", *args, "--json", report, cwd=feature.root, env=feature.env())
    assert result.returncode == code, result.stdout + result.stderr
    return results(report)


def drv_name(path: str | None) -> str:
    assert path is not None
    return path.split("-", 1)[1]


def test_every_command_plans_and_builds_the_same_derivations(feature: Feature, tmp_path: Path,
                                                             cli: Cli) -> None:
    every = run_json(cli, feature, tmp_path, "all", "--all")
    assert {key: verdict for key, (verdict, _) in every.items()} == VERDICTS
    assert drv_name(every[POSTGRESQL][1]) == "postgresql-16.drv"  # the module change is in
    assert run_json(cli, feature, tmp_path, "base", "--base", "main") == every

    matrix = cli("matrix", "--base", "main", "--format", "json", cwd=feature.root,
                 env=feature.env())
    assert matrix.returncode == 0, matrix.stderr
    plan = json.loads(matrix.stdout)
    assert sorted(plan["inputs"]) == ["hosts", "pkgs"]  # the plan says what it overrode, too
    planned = {f"{job['flake']}#{job['attr']}": job["drvPath"] for job in plan["jobs"]}
    assert planned == {key: drv for key, (_, drv) in every.items()}
    fanned: dict[str, tuple[str, str | None]] = {}
    for index, entry in enumerate(plan["entries"]):
        args = shlex.split(entry["args"])
        assert any(arg.startswith("--expect-drv=") for arg in args), args
        assert "--base" not in args  # what decides a derivation is pinned, not a base
        fanned |= run_json(cli, feature, tmp_path, f"entry{index}", *args,
                           code=int(any(k in attr for attr in entry["attrs"]
                                        for k in ("exporter", "monitor"))))
    assert fanned == every

    report = tmp_path / "diff.json"
    diff = cli("diff", "--base", "main", "--json", report, cwd=feature.root, env=feature.env())
    assert diff.returncode == 0, diff.stdout + diff.stderr
    head = {f"{a['flake']}#{a['attr']}": a["headDrv"]
            for a in json.loads(report.read_text())["attributes"]}
    assert head == {key: drv for key, (_, drv) in every.items()}

    # every report names the inputs taken from the workspace, and what flake.lock had
    data = json.loads((tmp_path / "all.json").read_text())
    main = {repo: git(feature.root / repo, "rev-parse", "main") for repo in ("modules", "pkgs")}
    hosts = {i["input"]: (i["flake"], i["rev"], i["locked"]) for i in data["inputs"]["hosts"]}
    assert hosts == {
        "modules": ("modules", git(feature.root / "modules", "rev-parse", "HEAD"),
                    main["modules"]),
        "pkgs": ("pkgs", git(feature.root / "pkgs", "rev-parse", "HEAD"), main["pkgs"]),
        "pkgs/modules": ("modules", git(feature.root / "modules", "rev-parse", "HEAD"),
                         main["modules"]),
    }
    assert data["locked"] is False and "modules" not in data["inputs"]


def test_locked_builds_flake_lock_and_says_so(feature: Feature, tmp_path: Path,
                                              cli: Cli) -> None:
    junit = tmp_path / "locked.xml"
    locked = run_json(cli, feature, tmp_path, "locked", "--all", "--locked", "--junit", junit)
    # hosts as its flake.lock has it: the old exporter and PostgreSQL 15 (green, not the branch)
    assert locked[MONITOR][0] == "passed" and locked[DB1][0] == "passed"
    assert locked[EXPORTER][0] == "failed:build"  # pkgs' own checkout is still built
    checked_out = run_json(cli, feature, tmp_path, "checked-out", "--all", "--junit", junit)
    assert locked[DB1][1] != checked_out[DB1][1]
    assert json.loads((tmp_path / "locked.json").read_text())["locked"] is True
    suites = {xml_attr(s, "name"): s for s in ET.parse(junit).iter("testsuite")}
    props = [xml_attr(p, "value") for p in suites["hosts"].iter("property")
             if p.get("name") == "override"]
    assert len(props) == 3 and any(p.startswith("pkgs: the workspace's pkgs at ") for p in props)


def test_an_entry_evaluates_its_plan_or_fails_naming_both(feature: Feature, tmp_path: Path,
                                                          cli: Cli) -> None:
    matrix = cli("matrix", "--all", "--only", DB1, "--format", "json", cwd=feature.root,
                 env=feature.env())
    assert matrix.returncode == 0, matrix.stderr
    [entry] = json.loads(matrix.stdout)["entries"]
    args = shlex.split(entry["args"])
    modules = feature.root / "modules"
    # the checkout moves on after the plan (PostgreSQL 17), and is left with an uncommitted edit
    commit(modules, "PostgreSQL 17",
           files={"flake.nix": (modules / "flake.nix").read_text().replace('"16"', '"17"')})
    (modules / "flake.nix").write_text((modules / "flake.nix").read_text() + "# edited\n")
    try:
        pinned = run_json(cli, feature, tmp_path, "pinned", *args, code=0)
        assert pinned[DB1] == ("passed", json.loads(matrix.stdout)["jobs"][0]["drvPath"])
        unpinned = [arg for arg in args if not arg.startswith("--pin=")]
        report = tmp_path / "unpinned.json"
        result = cli("run", *unpinned, "--json", report, cwd=feature.root, env=feature.env())
        assert result.returncode == 1, result.stdout + result.stderr
        [case] = json.loads(report.read_text())["cases"]
        planned = pinned[DB1][1]
        assert case["failure"]["type"] == "other" and planned is not None
        assert case["failure"]["message"] == (f"evaluated {case['drvPath']}, but the plan has "
                                              f"{planned}")
        assert case["drvPath"] != planned
    finally:
        git(modules, "checkout", "-q", "--", "flake.nix")
        git(modules, "reset", "-q", "--hard", "HEAD~1")


def drv_paths(junit: Path) -> dict[str, str]:
    """`flake#attr` -> the drvPath property of each test case in a JUnit report."""
    return {f"{case.get('classname')}#{case.get('name')}": xml_attr(prop, "value")
            for case in ET.parse(junit).iter("testcase") for prop in case.iter("property")
            if prop.get("name") == "drvPath"}


@pytest.mark.slow
def test_gitlab_child_pipeline_without_merge_request_variables(feature: Feature, tmp_path: Path,
                                                               cli: Cli) -> None:
    """The template's parent job as a merge-request pipeline, then its child pipeline file as
    a child may get it: without the merge request's variables."""
    from test_ci_definitions import INSTALLED, NOT_INSTALLED, GitLabLocal, cases

    if feature.nix != "nix":
        pytest.skip("gitlab-ci-local runs on the system Nix only (as the template tests do)")
    expected = run_json(cli, feature, tmp_path, "expected", "--base", "main")
    # the workspace directory becomes the GitLab project (the last test on this workspace)
    ws = feature.root
    # one child job for all six attributes; parent and child use the installed ci-nix (the
    # template's `venv` input; test_ci_definitions' fan-out children pip-install it)
    glcl = GitLabLocal(ws, tmp_path / "glcl", {"fan-out": True, "args": "--max-jobs 1",
                                               "venv": INSTALLED, "install": NOT_INSTALLED})
    # the base as a branch name: the project is the workspace directory, not one of its repos
    # from a fork: the parent decides not to push, and its children must keep to that
    merge_request = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
                     "CI_MERGE_REQUEST_DIFF_BASE_SHA": "main",
                     "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "424242"}
    parent = glcl.run("ci-nix-matrix", variables=merge_request)
    assert parent.returncode == 0, parent.stdout + parent.stderr
    child = glcl.child_pipeline()
    pipeline: dict[str, Any] = yaml.safe_load(child.read_text())
    jobs = [name for name in pipeline if name.startswith("build ")]
    assert len(jobs) == 1, jobs
    assert "--base" not in pipeline[jobs[0]]["script"][0]
    assert "--no-push" in shlex.split(pipeline[jobs[0]]["script"][0])
    # what ci-nix-build forwards to the child (CI_NIX_INSTALL and CI_NIX_INSTALLED)
    result = glcl.run("--file", "ci-nix-child.yml", "--concurrency", "1", variables={
        "CI_NIX_INSTALL": NOT_INSTALLED, "CI_NIX_PYTHON": "python3",
        "CI_NIX_INSTALLED": INSTALLED})
    assert result.returncode != 0, result.stdout + result.stderr  # exporter and monitor fail
    [report] = (ws / ".gitlab-ci-local" / "artifacts").glob("*/junit.xml")
    assert cases(report) == VERDICTS
    assert drv_paths(report) == {key: drv for key, (_, drv) in expected.items()}
