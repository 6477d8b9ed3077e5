"""--option / nix-options / --builders / --store / --eval-store reach every Nix call."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo

from ci_nix import config
from ci_nix.errors import ConfigError
from ci_nix.tools.nix import Nix

FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.hello = derivation {
      name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo NONCE > $out" ];
    };
  };
}
"""


def test_argv_puts_options_first_and_eval_store_after_the_subcommand() -> None:
    nix = Nix(("nix",)).with_options([("max-jobs", "0"), ("store", "ssh-ng://box")], "auto")
    assert nix.argv(["flake", "update", "nixpkgs"]) == [
        "nix", "--extra-experimental-features", "nix-command flakes",
        "--option", "max-jobs", "0", "--option", "store", "ssh-ng://box",
        "flake", "update", "--eval-store", "auto", "nixpkgs"]
    assert nix.argv(["build", "x"])[-4:] == ["build", "--eval-store", "auto", "x"]
    # `show-config` has no --eval-store flag
    assert "--eval-store" not in nix.argv(["show-config", "--json"])


def test_later_options_win_and_keep_one_flag_per_name() -> None:
    nix = Nix(("nix",)).with_options([("max-jobs", "0"), ("cores", "2")])
    nix = nix.with_options([("max-jobs", "4")])
    assert nix.options == (("cores", "2"), ("max-jobs", "4"))


def test_access_tokens_are_masked() -> None:
    from ci_nix.mask import mask
    Nix(("nix",)).with_options([("access-tokens", "github.com=ghp_secretvalue1")])
    assert "ghp_secretvalue1" not in mask("--option access-tokens github.com=ghp_secretvalue1")


def test_config_nix_options(tmp_path: Path) -> None:
    file = tmp_path / "ci-nix.yaml"
    file.write_text("nix-options:\n  max-jobs: 0\n  keep-going: true\n"
                    "  extra-platforms: [aarch64-linux, i686-linux]\n"
                    "  builders: '@/etc/nix/machines'\n  netrc-file: ''\n")
    assert config.load(file).nix_options == (
        ("max-jobs", "0"), ("keep-going", "true"),
        ("extra-platforms", "aarch64-linux i686-linux"), ("builders", "@/etc/nix/machines"),
        ("netrc-file", ""))


@pytest.mark.parametrize(("text", "message"), [
    ("nix-options: [max-jobs]\n", ":1: 'nix-options' must map a Nix setting"),
    ("nix-options:\n  cores: {a: 1}\n", ":2: 'nix-options.cores' must be a string"),
    ("nix-options:\n  cores: 1\n  cores: 2\n", ":3: key 'nix-options.cores' appears twice"),
])
def test_config_nix_options_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "ci-nix.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(file)


def _nix_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith("ci-nix: $ ") and " --extra-experimental-features " in line]


@pytest.mark.nix
def test_option_reaches_every_nix_call(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("NONCE", uuid.uuid4().hex))
    junit = tmp_path / "junit.xml"
    # max-jobs 0 and no builders: Nix refuses to build, which shows the option took effect
    result = cli("run", "-v", "--all", repo, "--junit", junit, "--option", "max-jobs", "0")
    assert result.returncode == 1, result.stderr
    lines = _nix_lines(result.stderr)
    assert len(lines) >= 3, result.stderr  # settings, evaluation, build, path-info
    assert all("--option max-jobs 0" in line for line in lines), lines
    failure = ET.parse(junit).find(".//failure")
    assert failure is not None
    assert "max-jobs" in (failure.get("message") or "") + (failure.text or "")

    # nix-options in ci-nix.yaml apply too, and --option overrides them
    (repo / "ci-nix.yaml").write_text("nix-options:\n  max-jobs: 0\n  max-silent-time: 77\n")
    result = cli("run", "-v", "--all", repo, "--option", "max-jobs", "1")
    assert result.returncode == 0, result.stderr
    lines = _nix_lines(result.stderr)
    assert all("--option max-silent-time 77 --option max-jobs 1" in line for line in lines), lines


@pytest.mark.nix
def test_option_reaches_the_update_commands(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    import make_workspace

    up = flake_repo(tmp_path / "up", "{ outputs = { self }: { }; }\n")
    url = f"git+file://{up}?ref=main"
    down = flake_repo(tmp_path / "down",
                      f'{{ inputs.up.url = "{url}";\n  outputs = {{ self, up }}: {{ }}; }}\n')
    make_workspace.lock(down, {"up": up})
    make_workspace.git(down, "add", "flake.lock")
    make_workspace.git(down, "commit", "-qm", "lock")
    make_workspace.git(down, "remote", "add", "origin", str(up))  # any URL: --dry-run pushes none
    result = cli("update", down, "--dry-run", "-v", "--option", "max-silent-time", "77")
    assert result.returncode == 0, result.stderr
    updates = [line for line in _nix_lines(result.stderr) if " flake " in line]
    assert updates and all("--option max-silent-time 77" in line for line in updates), \
        result.stderr
