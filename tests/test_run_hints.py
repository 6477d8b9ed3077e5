"""`ci-nix run` carries diagnose's type and hint into the JUnit report for build failures."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo

pytestmark = pytest.mark.nix

FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.fod = derivation {
      name = "fod-@NONCE@"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo @NONCE@ > $out" ];
      outputHashMode = "flat"; outputHashAlgo = "sha256";
      outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    };
  };
}
"""


def test_hash_mismatch_is_typed_with_a_hint(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("@NONCE@", uuid.uuid4().hex[:8]))
    junit = tmp_path / "r.xml"
    result = cli("run", "--all", repo, "--junit", junit)
    assert result.returncode == 1, result.stderr
    failure = next(ET.parse(junit).iter("failure"))
    assert failure.get("type") == "hash-mismatch"
    assert (failure.text or "").startswith("hint: ")
    assert "sha256-" in (failure.text or "").splitlines()[0]
    assert "hint:" in result.stdout
