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
