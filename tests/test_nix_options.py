"""--option / nix-options / --builders / --store / --eval-store reach every Nix call."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo
from fakeproc import FakeProc
from hypothesis import given
from hypothesis import strategies as st

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


def test_no_options_more_is_the_same_nix_whose_settings_hold(fake_proc: FakeProc) -> None:
    """A workspace without nix-options and a command line without --option: plan() asks Nix
    for its settings while git reads the repos, and the Nix it runs with is that one (no second
    `show-config`); options more are another Nix, asked again."""
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.8.0\n")
    fake_proc.on("nix", "show-config", stdout=json.dumps({"system": {"value": "x86_64-linux"}}))
    nix = Nix.from_env({"CI_NIX_NIX": "nix"})
    assert nix.current_system == "x86_64-linux"
    same = nix.with_options(())
    assert same is nix and same.current_system == "x86_64-linux"
    assert len(fake_proc.ran("nix", "show-config")) == 1
    other = nix.with_options([("cores", "2")])
    assert other is not nix and other.current_system == "x86_64-linux"
    assert len(fake_proc.ran("nix", "show-config")) == 2
    assert nix.with_options((), eval_store="local?root=/x") is not nix


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
    # max-jobs given (to Nix's default of 1): ci-nix's builds keep it (README "Parallel builds")
    assert not any("max-jobs auto" in line for line in lines), lines


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


# --- max-jobs: ci-nix's builds run one per CPU unless Nix's configuration says otherwise -------

def _max_jobs_nix(fake_proc: FakeProc, tmp_path: Path, *, value: int = 1,
                  options: tuple[tuple[str, str], ...] = ()) -> Nix:
    """A Nix whose settings say max-jobs = value (default 1) and whose configuration files are
    tmp_path/etc/nix.conf and tmp_path/home/nix.conf (`nix -v --version` names them)."""
    fake_proc.on("nix", "show-config", stdout=json.dumps({"max-jobs": {
        "aliases": ["build-max-jobs"], "defaultValue": 1, "value": value}}))
    fake_proc.on("nix", "-v", "--version", stdout=(
        "nix (Nix) 2.8.0\nSystem type: x86_64-linux\n"
        f"System configuration file: {tmp_path}/etc/nix.conf\n"
        f"User configuration files: {tmp_path}/home/nix.conf:{tmp_path}/xdg/nix.conf\n"))
    fake_proc.on("nix", "build", stdout="")
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "nix.conf").write_text("sandbox = false  # max-jobs = 3 in a comment\n")
    return Nix(("nix",)).with_options(options)


def _build_argv(fake_proc: FakeProc, nix: Nix) -> list[str]:
    nix.build(["/nix/store/0d7wjxrvf0r3ikl9imydf6ffrw4hhnmz-hello.drv"], lambda line: None)
    return list(fake_proc.ran("nix", "build")[-1].argv)


def test_builds_run_one_per_cpu_when_nix_leaves_max_jobs_at_its_default(
        fake_proc: FakeProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NIX_CONFIG", "substituters =\nsandbox = false\n")
    nix = _max_jobs_nix(fake_proc, tmp_path)
    with caplog.at_level("INFO"):
        argv = _build_argv(fake_proc, nix)
        _build_argv(fake_proc, nix)
    assert argv[argv.index("build"):][:4] == ["build", "--option", "max-jobs", "auto"]
    said = [r.getMessage() for r in caplog.records if "max-jobs = auto" in r.getMessage()]
    assert len(said) == 1, said  # once per run, not per batch
    assert "does not set max-jobs" in said[0]
    assert len(fake_proc.ran("nix", "--version")) == 1  # the version too


@pytest.mark.parametrize("where", [
    "system file", "linked file", "user file", "included file", "!included file", "NIX_CONFIG",
    "alias", "extra-", "option", "nix-options alias"])
def test_a_max_jobs_set_anywhere_is_kept_even_at_nix_s_default(
        fake_proc: FakeProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """`max-jobs = 1` written down is a choice (a small runner, a memory-hungry build): the value
    Nix shows equals its default, so ci-nix reads where Nix reads it from."""
    monkeypatch.setenv("NIX_CONFIG", "substituters =\n")
    options: tuple[tuple[str, str], ...] = ()
    nix = _max_jobs_nix(fake_proc, tmp_path)
    etc, home = tmp_path / "etc" / "nix.conf", tmp_path / "home" / "nix.conf"
    home.parent.mkdir()
    if where == "system file":
        etc.write_text("sandbox = false\nmax-jobs = 1\n")
    elif where == "linked file":  # NixOS: /etc/nix/nix.conf -> /etc/static/nix/nix.conf
        (tmp_path / "static.conf").write_text("max-jobs = 1\n")
        etc.unlink()
        etc.symlink_to(tmp_path / "static.conf")
    elif where == "user file":
        home.write_text("  max-jobs   =   1   # one at a time\n")
    elif where == "included file":
        (tmp_path / "etc" / "more.conf").write_text("max-jobs = 1\n")
        etc.write_text("include more.conf\n")
    elif where == "!included file":
        (tmp_path / "limits.conf").write_text("max-jobs = 1\n")
        home.write_text(f"!include {tmp_path}/missing.conf\n!include {tmp_path}/limits.conf\n")
    elif where == "NIX_CONFIG":
        monkeypatch.setenv("NIX_CONFIG", "substituters =\nmax-jobs = 1\n")
    elif where == "alias":
        etc.write_text("build-max-jobs = 1\n")
    elif where == "extra-":
        etc.write_text("extra-max-jobs = 1\n")
    elif where == "option":
        options = (("max-jobs", "1"),)
    else:
        options = (("build-max-jobs", "1"),)
    argv = _build_argv(fake_proc, nix.with_options(options))
    assert "max-jobs auto" not in " ".join(argv), argv


@pytest.mark.parametrize("case", ["set to 4", "remote store", "no defaultValue",
                                  "files not said", "unreadable file", "include cycle",
                                  "symlink loop", "settings fail"])
def test_max_jobs_is_left_to_nix_when_ci_nix_cannot_tell_or_it_is_set(
        fake_proc: FakeProc, tmp_path: Path, case: str) -> None:
    nix = _max_jobs_nix(fake_proc, tmp_path, value=4 if case == "set to 4" else 1,
                        options=(("store", "ssh-ng://box"),) if case == "remote store" else ())
    if case == "no defaultValue":  # a Nix whose settings JSON lacks it: no guess
        fake_proc.on("nix", "show-config", stdout='{"max-jobs": {"value": 1}}')
    elif case == "files not said":
        fake_proc.on("nix", "-v", "--version", stdout="nix (Nix) 2.8.0\n")
    elif case == "unreadable file":  # a directory where Nix reads a file: not known
        (tmp_path / "home" / "nix.conf").mkdir(parents=True)
    elif case == "include cycle":
        (tmp_path / "etc" / "nix.conf").write_text("include nix.conf\n")
    elif case == "symlink loop":  # Nix skips a file it cannot read; Path.resolve() raised
        (tmp_path / "etc" / "nix.conf").write_text("include loop.conf\n")
        (tmp_path / "etc" / "loop.conf").symlink_to("loop.conf")
    elif case == "settings fail":
        fake_proc.on("nix", "show-config", stderr="error: bad config\n", returncode=1)
    argv = _build_argv(fake_proc, nix)
    assert "max-jobs" not in " ".join(argv), argv


@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
                max_size=12), st.integers(min_value=0, max_value=12))
def test_nix_conf_reading_never_raises_and_finds_a_setting_among_noise(
        lines: list[str], at: int) -> None:
    """Odd bytes in a nix.conf (or NIX_CONFIG) never stop a run; the one assignment is found."""
    from ci_nix.tools import nixconf

    noise = [line.replace("=", " ").replace("include", "inc") for line in lines]
    assert "max-jobs" not in nixconf.names((), "\n".join(noise))
    noise.insert(min(at, len(noise)), "max-jobs = 1")
    assert "max-jobs" in nixconf.names((), "\n".join(noise))
