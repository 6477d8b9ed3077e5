"""Evaluation errors are placed in the workspace repo they are really in (Nix 2.8 and 2.26)."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import make_workspace
from conftest import Cli, flake_repo
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import origins

# line 9 coerces the port to a string: an integer there is a type error, which tryEval cannot
# catch and which Nix 2.26 reports without any position unless asked for the trace
MODULES = """{
  description = "services for the hosts";
  outputs = { self }: {
    lib.mkService = { name, port }:
      derivation {
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo listening on ${port} > $out" ];
        PATH = "/usr/bin:/bin";
      };
    # the shape of nixpkgs.lib.nixosSystem that CI reads
    lib.mkHost = { name, port }: {
      type = "configuration";
      config = {
        networking.hostName = name;
        nixpkgs.hostPlatform = "x86_64-linux";
        system.build.toplevel = self.lib.mkService { inherit name port; };
      };
      pkgs.stdenv.hostPlatform.system = "x86_64-linux";
      options = { };
    };
  };
}
"""

HOSTS = """{
  inputs.modules.url = "@MODULES@";
  outputs = { self, modules }: {
    packages.x86_64-linux = {
      db = modules.lib.mkService { name = "db"; port = 5432; };
      web = modules.lib.mkService { name = "web"; port = "80"; };
      own = self.packages.x86_64-linux.nope;
    };
    nixosConfigurations.db = modules.lib.mkHost { name = "db"; port = 5432; };
  };
}
"""


def workspace(root: Path) -> Path:
    modules = flake_repo(root / "modules", MODULES)
    hosts = flake_repo(root / "hosts", HOSTS.replace("@MODULES@", make_workspace.git_url(modules)))
    make_workspace.lock(hosts, {"modules": modules})
    make_workspace.git(hosts, "add", "flake.lock")
    make_workspace.git(hosts, "commit", "-q", "-m", "lock")
    (root / "ci-nix.yaml").write_text("repos:\n  - path: modules\n  - path: hosts\n")
    return hosts


def test_error_in_another_workspace_repo_is_located_there(tmp_path: Path, nix_bin: str,
                                                          cli: Cli) -> None:
    hosts = workspace(tmp_path / "ws")
    junit = tmp_path / "junit.xml"
    # a one-repo job: GITHUB_WORKSPACE is the hosts checkout, modules is elsewhere
    result = cli("run", "--all", "--no-push", "--junit", junit, cwd=hosts,
                 env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "",
                      "GITHUB_WORKSPACE": str(hosts)})
    assert result.returncode == 1, result.stderr
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert "packages.x86_64-linux.db" in cases, (result.stdout, result.stderr[-3000:])
    db = cases["packages.x86_64-linux.db"]
    failure = db.find("failure")
    assert failure is not None and failure.get("type") == "eval"
    message = failure.get("message") or ""
    assert "cannot coerce an integer to a string" in message, message
    assert " at modules/flake.nix:9:" in message, message
    props = {p.get("name"): p.get("value") for p in db.iter("property")}
    assert props.get("file") == "modules/flake.nix:9"
    # the annotation: modules is outside GITHUB_WORKSPACE, so hosts' flake.nix:9 must not be
    # marked
    db_note = next(line for line in result.stdout.splitlines()
                   if line.startswith("::error") and "#packages.x86_64-linux.db" in line)
    assert "file=" not in db_note.split("::")[1], db_note
    # an error in hosts' own flake.nix is annotated there
    own_note = next(line for line in result.stdout.splitlines()
                    if line.startswith("::error") and "#packages.x86_64-linux.own" in line)
    assert "file=flake.nix,line=7" in own_note, own_note
    # the same error met while evaluating a NixOS host of hosts
    host = cases["nixosConfigurations.db"].find("failure")
    assert host is not None and " at modules/flake.nix:9:" in (host.get("message") or ""), (
        host.get("message") if host is not None else None)
    web = cases["packages.x86_64-linux.web"]
    assert web.find("failure") is None and web.find("skipped") is None


def test_store_path_of_a_locked_input_is_the_one_nix_makes() -> None:
    # narHash and path of the same tree, as `nix flake metadata --json` printed them
    assert origins.store_path("sha256-2VJ/wxSOkOmtMWeSzbu3IEiH71FAkmCxBFoZ4mB9/n0=") == (
        "/nix/store/3v2ap5w3ljjjggmwiipmb9v5ijyhsk0r-source")
    assert origins.store_path("sha256-short") is None
    assert origins.store_path("sha512-" + "A" * 88) is None


@given(st.text(max_size=80))
def test_store_path_of_any_nar_hash_is_none_or_a_store_path(nar_hash: str) -> None:
    found = origins.store_path(nar_hash)
    assert found is None or re.fullmatch(r"/nix/store/[0-9a-df-np-sv-z]{32}-source", found)


@given(st.binary(min_size=32, max_size=32))
def test_store_path_of_every_sha256_is_one(digest: bytes) -> None:
    found = origins.store_path("sha256-" + base64.b64encode(digest).decode())
    assert found is not None and re.fullmatch(r"/nix/store/[0-9a-df-np-sv-z]{32}-source", found)
