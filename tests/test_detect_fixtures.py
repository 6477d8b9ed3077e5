"""Change detection end to end on the fixture workspace, on every available Nix."""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, CliResult, xml_attr
from fakeproc import FakeProc
from helpers import commit, git

pytestmark = pytest.mark.nix

TOPLEVEL = "nixosConfigurations.web.config.system.build.toplevel.drvPath"


def nix_eval(nix_bin: str, ref: str, *extra: str) -> str:
    argv = [*shlex.split(nix_bin), "--extra-experimental-features", "nix-command flakes",
            "eval", "--raw", "--no-write-lock-file", f"{ref}#{TOPLEVEL}", *extra]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def junit_cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    return {(xml_attr(tc, "classname"), xml_attr(tc, "name")): tc
            for tc in ET.parse(path).iter("testcase")}


def test_change_in_modules_rebuilds_hosts_against_it(fixture_ws: Path, nix_bin: str,
                                                     tmp_path: Path, cli: Cli) -> None:
    modules, hosts = fixture_ws / "modules", fixture_ws / "hosts"
    locked = nix_eval(nix_bin, f"git+file://{hosts}")
    flake = modules / "flake.nix"
    flake.write_text(flake.read_text().replace("echo ${name} > $out/hostname",
                                               "echo ${name} patched > $out/hostname"))
    commit(modules, "mkHost: patched hostname")
    expected = nix_eval(nix_bin, f"git+file://{hosts}", "--override-input", "modules",
                        f"git+file://{modules}")
    assert expected != locked

    # In the modules pipeline: the change is modules' last commit.
    result = cli("detect", modules, "--json", env={"GITHUB_ACTIONS": "", "GITLAB_CI": "true",
                                                    "CI_COMMIT_BEFORE_SHA": "HEAD~1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["flakes"] == [
        {"flake": "modules", "path": "modules", "reasons": ["changed flake.nix"],
         "overrides": []},
        {"flake": "hosts", "path": "hosts", "reasons": ["depends on modules (input 'modules')"],
         "overrides": [{"input": "modules", "ref": f"git+file://{modules}", "flake": "modules",
                        "rev": git(modules, "rev-parse", "HEAD"), "dirty": False,
                        "locked": git(modules, "rev-parse", "HEAD~1")}]},
    ]

    report = tmp_path / "r.json"
    run = cli("run", modules, "--base", "HEAD~1", "--json", report)
    assert run.returncode == 1, run.stderr  # the fixture's broken packages still fail
    # what was compared, per repo (#23)
    base = git(modules, "rev-parse", "HEAD~1")
    assert (f"compared: modules: changes from {base[:12]} (merge-base with HEAD~1) to the work "
            "tree; hosts: as checked out\n") in run.stdout
    cases = {(c["flake"], c["attr"]): c for c in json.loads(report.read_text())["cases"]}
    web = cases[("hosts", "nixosConfigurations.web")]
    assert web["status"] == "passed"
    assert web["drvPath"] == expected  # built against the working tree of modules
    assert {flake for flake, _ in cases} == {"modules", "hosts"}


def test_change_in_hosts_affects_only_hosts(fixture_ws: Path, cli: Cli) -> None:
    web = fixture_ws / "hosts" / "web.nix"
    web.write_text("{ }\n")
    subprocess.run(["git", "-C", str(web.parent), "add", "web.nix"], check=True)
    result = cli("detect", fixture_ws, "--base", "HEAD", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["flakes"] == [{"flake": "hosts", "path": "hosts", "reasons": ["changed web.nix"],
                               "overrides": []}]
    assert [u["flake"] for u in data["unaffected"]] == ["modules"]


def test_docs_only_change_builds_nothing(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    modules = fixture_ws / "modules"
    (modules / "README.md").write_text("# modules\n\nBetter docs.\n")
    commit(modules, "docs")
    detect = cli("detect", modules, "--base", "HEAD~1", "--head", "HEAD", "--json")
    assert detect.returncode == 0, detect.stderr
    found = json.loads(detect.stdout)
    assert found["flakes"] == [] and [p["flake"] for p in found["pruned"]] == ["modules", "hosts"]

    junit = tmp_path / "docs.xml"
    run = cli("run", modules, "--base", "HEAD~1", "--junit", junit)
    # README.md is in both flakes' source: both are evaluated at head and base, nothing whose
    # derivation is the base's is built, and what does not evaluate at head still fails
    assert run.returncode == 1, run.stderr
    cases = junit_cases(junit)
    failed = {key for key, case in cases.items() if case.find("failure") is not None}
    assert failed == {("modules", "packages.x86_64-linux.thrower"),
                      ("hosts", "packages.x86_64-linux.missing")}
    for key, case in cases.items():
        if key not in failed:
            skipped = case.find("skipped")
            assert skipped is not None, key
            assert "derivation is the one at the base" in skipped.get("message", ""), key
    assert " 0 passed, 2 failed" in run.stdout
    assert "note: modules: ignored 1 changed file matching 'ignore:': README.md" in run.stdout


ROOT_FLAKE = """{
  outputs = { self }:
    let
      sh = name: text: extra: derivation ({
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" text ];
        PATH = "/usr/bin:/bin";
        NONCE = "@NONCE@";
      } // extra);
    in {
      packages.x86_64-linux = {
        site = sh "site" "cat $page > $out" { page = ./docs/index.txt; };
        tool = sh "tool" "echo tool > $out" { };
      };
    };
}
"""
APP_FLAKE = """{
  outputs = { self }:
    let lib = import ../common/lib.nix; in {
      packages.x86_64-linux.app = derivation {
        name = "app-${lib.version}";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo app > $out" ];
        NONCE = "@NONCE@";
      };
    };
}
"""


def mono_repo(repo: Path) -> Path:
    """A root flake (a site built from docs/) and app/, which imports ../common/lib.nix."""
    nonce = uuid.uuid4().hex[:12]
    for name, text in {"flake.nix": ROOT_FLAKE, "app/flake.nix": APP_FLAKE,
                       "common/lib.nix": '{ version = "1"; }\n',
                       "docs/index.txt": "docs\n"}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text.replace("@NONCE@", nonce))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    commit(repo, "initial")
    return repo


def run_last_commit(cli: Cli, repo: Path, report: Path
                    ) -> tuple[CliResult, dict[tuple[str, str], dict[str, Any]]]:
    """`run --base HEAD~1`: the result and its JSON report's cases by (flake, attr)."""
    result = cli("run", repo, "--base", "HEAD~1", "--json", report)
    return result, {(c["flake"], c["attr"]): c for c in json.loads(report.read_text())["cases"]}


def test_path_rules_only_prune_what_evaluation_confirms(tmp_path: Path, nix_bin: str,
                                                        cli: Cli) -> None:
    """#23: a flake's source is its whole repo, and `ignore:` cannot hide a derivation change."""
    repo = mono_repo(tmp_path / "mono")

    # app/ imports ../common/lib.nix, which path rules give to the root flake
    (repo / "common/lib.nix").write_text('throw "common/lib.nix is broken"\n')
    commit(repo, "break the library")
    broken, cases = run_last_commit(cli, repo, tmp_path / "broken.json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert cases[("mono/app", "packages.x86_64-linux.app")]["status"] == "failed"
    assert "common/lib.nix is broken" in broken.stdout

    (repo / "common/lib.nix").write_text('{ version = "1"; }\n')
    commit(repo, "fix the library")
    # a docs-only change: `ignore:` matches it, but the site is built from docs/
    (repo / "docs/index.txt").write_text("better docs\n")
    commit(repo, "docs")
    docs, cases = run_last_commit(cli, repo, tmp_path / "docs.json")
    assert docs.returncode == 0, docs.stdout + docs.stderr
    assert cases[("mono", "packages.x86_64-linux.site")]["status"] == "passed"
    for key in (("mono", "packages.x86_64-linux.tool"), ("mono/app", "packages.x86_64-linux.app")):
        assert cases[key]["status"] == "skipped", cases[key]
        assert "derivation is the one at the base" in cases[key]["skipped"], cases[key]


def test_pruned_flakes_are_built_when_the_base_cannot_be_evaluated(
        tmp_path: Path, nix_bin: str, cli: Cli, fake_proc: FakeProc) -> None:
    """Path rules may skip only what the base confirms: no base side, no skip (#23)."""
    repo = mono_repo(tmp_path / "mono")
    (repo / "README.md").write_text("# mono\n")
    commit(repo, "docs")
    fake_proc.on("git", "worktree", "add", returncode=128,
                 stderr="fatal: could not create work tree dir: No space left on device\n")
    result, cases = run_last_commit(cli, repo, tmp_path / "r.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {key: c["status"] for key, c in cases.items()} == {
        ("mono", "packages.x86_64-linux.site"): "passed",
        ("mono", "packages.x86_64-linux.tool"): "passed",
        ("mono/app", "packages.x86_64-linux.app"): "passed"}
    assert "note: cannot evaluate mono, mono/app at the base to confirm" in result.stdout
    assert "No space left on device" in result.stdout
