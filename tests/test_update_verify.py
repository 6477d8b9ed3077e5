"""update --verify on real Nix: the update that breaks a package is held back, the rest proposed."""

from __future__ import annotations

import platform
import re
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import make_workspace
import pytest
from conftest import NIX_PARAMS, ONE_NIX, Cli, xml_attr, xml_find

SYSTEM = f"{platform.machine()}-linux"
EVALUATED = re.compile(r"evaluated \d+ flakes? with (\d+) Nix evaluations?")


def commit_file(repo: Path, name: str, text: str, message: str) -> None:
    (repo / name).write_text(text)
    make_workspace.git(repo, "add", name)
    make_workspace.git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def app(tmp_path: Path, nix_bin: str) -> Path:
    """`app` locks two plain repos: `dep` (which `pkg` reads) and `other` (which `info` reads).
    Then `dep` gets a commit that breaks `pkg`, and `other` a harmless one."""
    nonce = uuid.uuid4().hex[:12]
    dep, other, app = tmp_path / "dep", tmp_path / "other", tmp_path / "app"
    for repo, name, text in ((dep, "value.txt", "good\n"), (other, "note.txt", "v1\n")):
        repo.mkdir()
        (repo / name).write_text(text)
        make_workspace.init_repo(repo, "first")
    app.mkdir()
    (app / "flake.nix").write_text(f"""{{
  inputs.dep = {{ url = "git+file://{dep}?ref=main"; flake = false; }};
  inputs.other = {{ url = "git+file://{other}?ref=main"; flake = false; }};
  outputs = {{ self, dep, other }}:
    let
      sh = name: text: derivation {{
        inherit name;
        system = "{SYSTEM}";
        builder = "/bin/sh";
        args = [ "-c" text ];
        PATH = "/usr/bin:/bin";
        NONCE = "{nonce}";
      }};
    in {{
      packages.{SYSTEM} = {{
        pkg = sh "pkg" ''
          read v < ${{dep}}/value.txt
          if [ "$v" != good ]; then echo "dep says $v" >&2; exit 1; fi
          echo ok > $out
        '';
        info = sh "info" "cat ${{other}}/note.txt > $out";
      }};
    }};
}}
""")
    make_workspace.init_repo(app, "app")
    locked = make_workspace.nix("flake", "lock", f"git+file://{app}")
    assert locked.returncode == 0, locked.stderr
    make_workspace.git(app, "add", "flake.lock")
    make_workspace.git(app, "commit", "-q", "-m", "lock")
    commit_file(dep, "value.txt", "bad\n", "dep: break pkg")
    commit_file(other, "note.txt", "v2\n", "other: harmless")
    return app


@pytest.fixture
def spaced_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR with a space, where ci-nix copies its evaluation helper flake and update puts
    its private checkout (set as tempfile reads it: the CLI runs in this process)."""
    from ci_nix.tools import nix as nix_mod

    spaced = tmp_path / "tmp dir"
    spaced.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spaced))
    nix_mod._helper_flake.cache_clear()
    yield spaced
    nix_mod._helper_flake.cache_clear()


@pytest.mark.nix
def test_verify_holds_back_the_input_that_breaks_a_package(
        app: Path, tmp_path: Path, nix_bin: str, cli: Cli, spaced_tmpdir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a TMPDIR holding a space: Nix 2.26 reads the helper and the checkout there (the
    helper's `path:` was not encoded: every flake failed to evaluate on both sides, so
    nothing was held back); Nix 2.8 cannot, and says so with the fix before any work."""
    from ci_nix.tools import nix as nix_mod

    lock_before = (app / "flake.lock").read_text()
    junit = tmp_path / "r.xml"
    if nix_bin == NIX_PARAMS[0]:
        # a '+' too: Nix 2.8 updates the locks there, but a checkout whose flake URL is
        # encoded is read at its last commit: the old locks were verified (dep passed)
        for place in (spaced_tmpdir, tmp_path / "tmp+dir"):
            place.mkdir(exist_ok=True)
            monkeypatch.setattr(tempfile, "tempdir", str(place))
            refused = cli("update", app, "--dry-run", "--verify", "--junit", junit)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert refused.stderr.strip().splitlines()[-1] == (
                f"ci-nix: error: temporary directory {place}: Nix 2.8 cannot read a flake "
                "there (the update's private checkout goes there), as its path holds a "
                "character a flake URL encodes (a space, unicode, +, @, ...); set TMPDIR to a "
                "plain directory (e.g. TMPDIR=/tmp), or use Nix 2.10 or later")
        monkeypatch.setattr(tempfile, "tempdir", None)  # the rest with the plain one
        nix_mod._helper_flake.cache_clear()
    result = cli("update", app, "--dry-run", "--verify", "--junit", junit)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # something was held back
    assert EVALUATED.findall(result.stderr) and "0" not in EVALUATED.findall(result.stderr)
    if nix_bin == NIX_PARAMS[0]:  # one Nix: nix-modern's slow start-up makes a rerun ~6 s
        # the nightly bot again, nothing new upstream: every evaluation (each lock tried, the
        # current one included) comes from the evaluation cache, and the verdicts are the same
        again = cli("update", app, "--dry-run", "--verify", "--junit", junit)
        assert again.returncode == 1, again.stdout + again.stderr
        assert set(EVALUATED.findall(again.stderr)) == {"0"}, again.stderr
        assert again.stdout == out
    assert "flake.lock: update other (branch ci-nix/flake-update, dry run)" in out, out
    assert "| `other` |" in out and "| `dep` |" not in out  # the table: other only
    pkg = f"app#packages.{SYSTEM}.pkg"
    assert f"- `dep` breaks `{pkg}` (build:" in out
    assert f"| `{pkg}` | passed |" in out  # with `other` alone it builds
    assert f"| `app#packages.{SYSTEM}.info` | passed |" in out
    # #16's "What changes": the current locks against the proposed ones
    assert "### What changes" in out and f"| `app#packages.{SYSTEM}.info` | changed |" in out
    # the user's checkout is untouched
    assert (app / "flake.lock").read_text() == lock_before
    assert make_workspace.git(app, "status", "--porcelain").strip() == ""

    suites = {suite.get("name"): suite for suite in ET.parse(junit).iter("testsuite")}
    verified = suites["ci-nix update --verify"]
    failures = [case for case in verified.iter("testcase") if case.find("failure") is not None]
    (held,) = failures
    assert held.get("name") == f"packages.{SYSTEM}.pkg (with dep updated)"
    message = xml_attr(xml_find(held, "failure"), "message")
    assert message.startswith(f"held back dep: its update breaks {pkg}")


# One Nix: a branch per input is ci-nix's split of the update that
# test_verify_holds_back_the_input_that_breaks_a_package verifies on both Nixes (the same `app`,
# the same inputs and verdicts)
@pytest.mark.nix
@ONE_NIX
def test_verify_per_input_says_each_result(app: Path, tmp_path: Path, cli: Cli) -> None:
    config = tmp_path / "ci-nix.yaml"
    config.write_text("update: {group: false, verify: true}\n")
    result = cli("update", app, "--config", config, "--dry-run")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    dep, other = out.split("# app: ")[1:3] if "flake-update-dep" in out.split("# app: ")[1] \
        else reversed(out.split("# app: ")[1:3])
    assert dep.startswith("nothing to update (branch ci-nix/flake-update-dep")
    assert "- `dep` breaks" in dep
    assert other.startswith("flake.lock: update other (branch ci-nix/flake-update-other")
    assert "Built with the updated locks" in other and "0 failed" in other


@pytest.mark.nix
def test_verify_builds_workspace_dependents_against_the_new_locks(tmp_path: Path,
                                                                  nix_bin: str, cli: Cli) -> None:
    """ws/lib locks `dep`; ws/app (another repo of the workspace) locks lib and re-exports its
    package. Updating lib's `dep` breaks lib's package and, through it, app's."""
    nonce = uuid.uuid4().hex[:12]
    ws = tmp_path / "ws"
    dep, lib, app = tmp_path / "dep", ws / "lib", ws / "app"
    dep.mkdir()
    (dep / "value.txt").write_text("good\n")
    make_workspace.init_repo(dep, "first")
    lib.mkdir(parents=True)
    (lib / "flake.nix").write_text(f"""{{
  inputs.dep = {{ url = "git+file://{dep}?ref=main"; flake = false; }};
  outputs = {{ self, dep }}: {{
    packages.{SYSTEM}.pkg = derivation {{
      name = "pkg";
      system = "{SYSTEM}";
      builder = "/bin/sh";
      args = [ "-c" ''read v < ${{dep}}/value.txt; [ "$v" = good ] && echo ok > $out'' ];
      PATH = "/usr/bin:/bin";
      NONCE = "{nonce}";
    }};
  }};
}}
""")
    make_workspace.init_repo(lib, "lib")
    assert make_workspace.nix("flake", "lock", f"git+file://{lib}").returncode == 0
    make_workspace.git(lib, "add", "flake.lock")
    make_workspace.git(lib, "commit", "-q", "-m", "lock")
    app.mkdir()
    (app / "flake.nix").write_text(f"""{{
  inputs.lib.url = "git+file://{lib}?ref=main";
  outputs = {{ self, lib }}: {{
    packages.{SYSTEM}.uses = lib.packages.{SYSTEM}.pkg;
  }};
}}
""")
    make_workspace.init_repo(app, "app")
    assert make_workspace.nix("flake", "lock", f"git+file://{app}").returncode == 0
    make_workspace.git(app, "add", "flake.lock")
    make_workspace.git(app, "commit", "-q", "-m", "lock")
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: lib\n  - path: app\n")
    commit_file(dep, "value.txt", "bad\n", "dep: break pkg")
    # lib's checkout is not what app locks: `run` would build app against it (workspace
    # inputs), but verification builds the updated lock, never the checkout that undoes it
    (lib / "flake.nix").write_text((lib / "flake.nix").read_text() + "# uncommitted\n")

    result = cli("update", lib, "--dry-run", "--verify")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "# lib: nothing to update" in out  # its only input is held back
    assert f"- `dep` breaks `lib#packages.{SYSTEM}.pkg`" in out
    assert f"- `dep` breaks `app#packages.{SYSTEM}.uses`" in out  # the dependent, built too
    assert f"| `app#packages.{SYSTEM}.uses` | passed |" in out  # on the current locks
