"""Remote builders count as buildable systems, and a builder that is down fails by name."""

from __future__ import annotations

import json
import shlex
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo, xml_attr, xml_find, xml_text

pytestmark = pytest.mark.nix

ARM = "aarch64-linux"
DOWN = "ssh://nobody@builder.invalid"  # .invalid never resolves: the builder is down

FLAKE = """{
  outputs = { self }: let
    hello = system: derivation {
      name = "hello"; inherit system; builder = "/bin/sh";
      args = [ "-c" "echo NONCE > $out" ];
    };
  in {
    packages.x86_64-linux.hello = hello "x86_64-linux";
    packages.aarch64-linux.hello = hello "aarch64-linux";
  };
}
"""


def _repo(tmp_path: Path) -> Path:
    return flake_repo(tmp_path / "repo", FLAKE.replace("NONCE", uuid.uuid4().hex))


def test_matrix_counts_builder_systems_as_buildable(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = _repo(tmp_path)
    args = ("matrix", "--all", repo, "--system", ARM, "--format", "json")
    without = json.loads(cli(*args).stdout)
    assert ARM not in without["buildable"]
    # the @file form, from nix-options in ci-nix.yaml
    machines = tmp_path / "machines"
    machines.write_text(f"# the arm box\n{DOWN} {ARM},armv7l-linux - 2 1 big-parallel\n")
    (repo / "ci-nix.yaml").write_text(f"nix-options:\n  builders: '@{machines}'\n")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    buildable = json.loads(result.stdout)["buildable"]
    assert {ARM, "armv7l-linux"} <= set(buildable)

    # the jobs get the command line's Nix settings, not its tokens
    result = cli(*args, "--builders", f"{DOWN} {ARM}", "--option", "max-jobs", "3",
                 "--option", "access-tokens", "github.com=ghp_notforthematrix")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["entries"]
    assert shlex.split(entry["args"])[1:7] == ["--option", "max-jobs", "3",
                                               "--option", "builders", f"{DOWN} {ARM}"]
    assert "ghp_notforthematrix" not in result.stdout


def test_a_builder_that_is_down_fails_by_name(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo, junit = _repo(tmp_path), tmp_path / "junit.xml"
    skipped = cli("run", "--all", repo, "--system", ARM, "--junit", junit)
    assert skipped.returncode == 0, skipped.stderr
    skipped_case = xml_find(ET.parse(junit), ".//skipped")
    assert "unsupported system aarch64-linux" in xml_attr(skipped_case, "message")

    result = cli("run", "--all", repo, "--system", ARM, "--junit", junit,
                 "--builders", f"{DOWN} {ARM}")
    assert result.returncode == 1, result.stderr
    (case,) = ET.parse(junit).iter("testcase")
    assert case.find("skipped") is None
    failure = xml_find(case, "failure")
    assert xml_attr(failure, "type") in ("platform", "other")
    assert f"remote builder for {ARM} failed: {DOWN}:" in xml_attr(failure, "message")
    assert "builder.invalid" in xml_attr(failure, "message")  # ssh's own reason
    assert f"nix store ping --store {DOWN}" in xml_text(failure)


def test_a_remote_store_that_is_down_fails_each_attribute_by_name(tmp_path: Path, nix_bin: str,
                                                                  cli: Cli) -> None:
    repo, junit = _repo(tmp_path), tmp_path / "junit.xml"
    store = "ssh-ng://nobody@builder.invalid"
    result = cli("run", "--all", repo, "--junit", junit, "--store", store, "--eval-store", "auto")
    assert result.returncode == 1, result.stderr
    (case,) = ET.parse(junit).iter("testcase")
    failure = xml_find(case, "failure")
    assert xml_attr(failure, "type") == "other"
    assert xml_attr(failure, "message").startswith(f"remote store {store} failed: ")
    assert "builder.invalid" in xml_text(failure)  # ssh's own reason, from the log


# x86_64 work that takes a while (b waits for a), and aarch64 work that needs the down builder
# (hello2 through hello; solo on its own: Nix may stop once for each)
MIXED = """{
  outputs = { self }: let
    mk = system: name: cmd: deps: derivation ({
      inherit name system; builder = "/bin/sh";
      args = [ "-c" "${cmd}; echo NONCE ${name} > $out" ];
    } // deps);
  in rec {
    packages.x86_64-linux.a = mk "x86_64-linux" "a" "/bin/sleep 2" { };
    packages.x86_64-linux.b = mk "x86_64-linux" "b" "true" { inherit (packages.x86_64-linux) a; };
    packages.aarch64-linux.hello = mk "aarch64-linux" "hello" "true" { };
    packages.aarch64-linux.hello2 = mk "aarch64-linux" "hello2" "true" {
      inherit (packages.aarch64-linux) hello; };
    packages.aarch64-linux.solo = mk "aarch64-linux" "solo" "true" { };
  };
}
"""


def test_a_builder_that_is_down_fails_only_its_own_work(tmp_path: Path, nix_bin: str,
                                                        cli: Cli) -> None:
    repo = flake_repo(tmp_path / "repo", MIXED.replace("NONCE", uuid.uuid4().hex))
    report = tmp_path / "run.json"
    # Nix stops the whole build at hello, killing a and never starting b (NixOS/nix#8321)
    result = cli("run", "--all", repo, "--system", "x86_64-linux", "--system", ARM,
                 "--builders", f"{DOWN} {ARM}", "--option", "max-jobs", "2", "--json", report)
    assert result.returncode == 1, result.stderr
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    assert cases["packages.x86_64-linux.a"]["status"] == "passed", cases
    assert cases["packages.x86_64-linux.b"]["status"] == "passed", cases
    hello, hello2 = cases[f"packages.{ARM}.hello"], cases[f"packages.{ARM}.hello2"]
    for case in (hello, cases[f"packages.{ARM}.solo"]):
        assert case["failure"]["message"].startswith(f"remote builder for {ARM} failed: {DOWN}:")
    assert hello2["failure"]["type"] == "dependency"
    assert f"remote builder for {ARM} failed: {DOWN}:" in hello2["failure"]["message"]
    assert "in another pass" in result.stderr
