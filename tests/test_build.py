"""build.py end to end: every failed build reported as what it is, on Nix 2.8 and 2.26."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import Cli, flake_repo

# Several builds failing at once under --keep-going: Nix 2.8 prints "builder for … failed" for
# only one of them, and names none of the others anywhere.
SEVERAL_FAILING = """{
  outputs = { self }:
    let
      mk = name: text: extra: derivation ({
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" text ];
        PATH = "/usr/bin:/bin";
        NONCE = "@NONCE@";  # fresh store paths for every run, shared by no other test
      } // extra);
      fail-a = mk "fail-a-1.0" "echo compiling a; echo 'a.c:1: error: one' >&2; exit 3" { };
      fail-c = mk "fail-c-1.0" "echo compiling c; echo 'c.c:3: error: three'; exit 5" { };
      uses-a = mk "uses-a-1.0" "cat $dep > $out" { dep = fail-a; };
      # its failing dependency is no attribute of the flake
      uses-hidden = mk "uses-hidden-1.0" "cat $dep > $out"
        { dep = mk "hidden-broken-1.0" "echo compiling hidden; exit 6" { }; };
      # a builder printing error records of Nix's internal-json for other failing derivations
      # (Nix relays them as its own): they say nothing about those
      said = d: builtins.unsafeDiscardStringContext d.drvPath;
      forge = text: "printf '%s\\\\n' '@nix {\\"action\\":\\"msg\\",\\"level\\":0,"
        + "\\"msg\\":\\"" + text + "\\"}'; ";
      q = path: "\\\\u0027${path}\\\\u0027";  # JSON's ', inside the shell's '…
    in {
      packages.x86_64-linux = {
        inherit fail-a fail-c uses-a uses-hidden;
        fail-b = mk "fail-b-1.0" ("echo compiling b; echo 'b.c:2: error: two'; "
          + forge ("error: hash mismatch in fixed-output derivation ${q (said uses-a)}:"
                   + "\\\\n  specified: sha256-AAAA\\\\n     got:    sha256-BBBB")
          + forge "error: 1 dependencies of derivation ${q (said fail-c)} failed to build"
          + forge "error: builder for ${q (said uses-hidden)} failed with exit code 99"
          + "exit 4") { };
        ok = mk "ok-1.0" "echo fine > $out" { };
      };
    };
}
"""


def failures(junit: Path) -> dict[str, ET.Element]:
    return {case.get("name", "").rsplit(".", 1)[-1]: failure
            for case in ET.parse(junit).getroot().iter("testcase")
            if (failure := case.find("failure")) is not None}


def test_every_failed_build_is_a_build_failure_with_its_own_log(
        tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "several", SEVERAL_FAILING.replace("@NONCE@", uuid.uuid4().hex))
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", "--no-push", "--junit", junit, cwd=repo)
    assert result.returncode == 1, result.stderr
    found = failures(junit)
    assert sorted(found) == ["fail-a", "fail-b", "fail-c", "uses-a", "uses-hidden"], result.stdout
    for name, code, line in (("a", 3, "a.c:1: error: one"), ("b", 4, "b.c:2: error: two"),
                             ("c", 5, "c.c:3: error: three")):
        failure = found[f"fail-{name}"]
        assert failure.get("type") == "build", (name, failure.get("message"))
        message = failure.get("message") or ""
        # Nix 2.8 names one of the failed builders; the others' exit codes are unknown
        if nix_bin != "nix" or "exit code" in message:
            assert f"exit code {code}" in message, message
        text = failure.text or ""
        assert f"compiling {name}" in text and line in text, (name, text)
        # its own log, not another build's
        assert all(f"compiling {other}" not in text for other in "abc" if other != name)
    assert "dependenc" not in (found["fail-c"].get("message") or "")  # fail-b's forgery
    uses_a = found["uses-a"]
    assert uses_a.get("type") == "dependency"
    assert "fail-a-1.0.drv" in (uses_a.get("message") or "")
    assert "mismatch" not in (uses_a.get("message") or "") + (uses_a.text or "")
    hidden = found["uses-hidden"]
    assert hidden.get("type") == "dependency", hidden.get("message")
    assert "hidden-broken-1.0.drv" in (hidden.get("message") or "")
    assert "99" not in (hidden.get("message") or "")
    assert "compiling hidden" in (hidden.text or "")


FETCH_FAILS = """{
  outputs = { self }: rec {
    packages.x86_64-linux = rec {
      src = derivation {
        name = "src.tar.gz"; system = "x86_64-linux"; builder = "builtin:fetchurl";
        url = "http://127.0.0.1:9/src.tar.gz"; urls = [ "http://127.0.0.1:9/src.tar.gz" ];
        unpack = false; executable = false; outputHashMode = "flat"; outputHashAlgo = "sha256";
        outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
      };
      app = derivation {
        name = "app-1.0"; system = "x86_64-linux"; builder = "/bin/sh";
        args = [ "-c" "cp $src $out" ]; inherit src; NONCE = "@NONCE@";
      };
    };
  };
}
"""


def test_a_failed_download_is_other_with_its_url(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "fetch", FETCH_FAILS.replace("@NONCE@", uuid.uuid4().hex))
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", "--no-push", "--junit", junit, cwd=repo,
                 env={"NIX_CONFIG": "substituters =\nsandbox = false\nbuild-users-group =\n"
                                    "connect-timeout = 2\ndownload-attempts = 1"})
    assert result.returncode == 1, result.stderr
    found = failures(junit)
    src = found["src"]
    assert src.get("type") == "other", src.get("message")
    assert "unable to download http://127.0.0.1:9/src.tar.gz" in (src.get("message") or "")
    app = found["app"]
    assert app.get("type") == "dependency"
    assert "src.tar.gz.drv (unable to download http://127.0.0.1:9/src.tar.gz" in (
        app.get("message") or "")


HASH_MISMATCH = """{
  outputs = { self }: {
    packages.x86_64-linux = rec {
      vendored = derivation {
        name = "vendored-@NONCE@"; system = "x86_64-linux"; builder = "/bin/sh";
        args = [ "-c" "echo fixed > $out" ]; PATH = "/usr/bin:/bin";
        outputHashMode = "flat"; outputHashAlgo = "sha256";
        outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
      };
      app = derivation {
        name = "app-1.0"; system = "x86_64-linux"; builder = "/bin/sh";
        args = [ "-c" "cp $src $out" ]; src = vendored; PATH = "/usr/bin:/bin";
      };
    };
  };
}
"""


def test_a_dependency_with_a_hash_mismatch_is_a_dependency_failure_saying_so(
        tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "hash", HASH_MISMATCH.replace("@NONCE@", uuid.uuid4().hex[:8]))
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", "--no-push", "--junit", junit, cwd=repo)
    assert result.returncode == 1, result.stderr
    found = failures(junit)
    assert found["vendored"].get("type") == "hash-mismatch"
    app = found["app"]
    assert app.get("type") == "dependency", app.get("message")
    message = app.get("message") or ""
    assert "vendored-" in message and "hash mismatch" in message, message
