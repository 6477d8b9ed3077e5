"""Bad input: a one-line error naming the thing and the fix, the right exit code, no traceback,
and the JUnit file still written."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import make_workspace
import pytest
from conftest import FIRST_NIX, NIX_CONFIG, NIX_PARAMS, ONE_NIX, Cli, flake_repo
from fakeproc import FakeProc
from helpers import git, processes_with, wait_for, write

from ci_nix import config, pipeline
from ci_nix.errors import ConfigError
from ci_nix.schema import Record


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change", "--allow-empty")


def derivation(name: str, script: str) -> str:
    # JSON strings without ${ are Nix strings too
    return (f'derivation {{ name = "{name}"; system = "x86_64-linux"; builder = "/bin/sh"; '
            f'args = [ "-c" {json.dumps(script)} ]; PATH = "/usr/bin:/bin"; }}')


@dataclass
class Case:
    """prepare(workspace dir, tmp dir) -> (argv after `ci-nix`, extra env)."""

    prepare: Callable[[Path, Path], tuple[list[str], dict[str, str]]]
    code: int
    # must appear in the last stderr line (exit 2) or in a JUnit failure message (exit 1)
    expect: str
    fix: str = ""  # a word of the advice that must be in the same line


def in_ws(*extra: str) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    return lambda ws, tmp: (["run", "--all", str(ws), *extra], {})


def edit(relative: str, transform: Callable[[str], str], *argv: str,
         commit: bool = False) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def prepare(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        target = ws / relative
        target.write_text(transform(target.read_text() if target.exists() else ""))
        if commit:
            commit_all(target.parent)
        return ["run", *(argv or ("--all",)), str(ws)], {}
    return prepare


def fake_nix(version_output: str) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def prepare(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        script = write(tmp / "bin" / "nix", f"#!/bin/sh\necho '{version_output}'\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return ["run", "--all", str(ws)], {"CI_NIX_NIX": str(script)}
    return prepare


def plain_dir(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    (tmp / "plain").mkdir()
    return ["run", "--all", str(tmp / "plain")], {}


def newline_in_path(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    repo = flake_repo(tmp / "a\nb", '{ outputs = { self }: { }; }')
    return ["run", "--all", str(repo)], {}


def repo_without_flake(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    repo = tmp / "noflake"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "README.md", "hi")
    commit_all(repo)
    return ["run", "--all", str(repo)], {}


def untracked_flake(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    repo = tmp / "untracked"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "flake.nix", "{ outputs = _: { }; }")
    return ["run", "--all", str(repo)], {}


def empty_repo(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    repo = tmp / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    return ["run", "--all", str(repo)], {}


def config_file(text: str, *argv: str) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def prepare(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        (ws / "ci-nix.yaml").write_text(text)
        return ["run", "--all", *argv, str(ws)], {}
    return prepare


def config_bytes(data: bytes) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def prepare(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        (ws / "ci-nix.yaml").write_bytes(data)
        return ["run", "--all", str(ws)], {}
    return prepare


def with_env(prepare: Callable[[Path, Path], tuple[list[str], dict[str, str]]],
             **env: str) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def with_it(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        argv, more = prepare(ws, tmp)
        return argv, {**more, **env}
    return with_it


def edit_bytes(relative: str, transform: Callable[[bytes], bytes]
               ) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def prepare(ws: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
        (ws / relative).write_bytes(transform((ws / relative).read_bytes()))
        return ["run", "--all", str(ws)], {}
    return prepare


GOOD_REPOS = "repos:\n  - path: modules\n  - path: hosts\n"

CASES: dict[str, Case] = {
    # ci-nix.yaml
    "yaml-syntax": Case(config_file("repos:\n  - path: modules\n   bad: [\n"), 2,
                        "ci-nix.yaml:", "YAML"),
    "yaml-list-as-key": Case(config_file(GOOD_REPOS + "? [a, b]\n: 1\n"), 2,
                             "ci-nix.yaml:4: not valid YAML: a key must be a plain string", ""),
    "yaml-not-utf8": Case(config_bytes(GOOD_REPOS.encode() + b"systems: [x86_64-linux] # \xe9\n"),
                          2, "ci-nix.yaml:4: not UTF-8 text (byte 0xe9)", "UTF-8"),
    "yaml-python-tag": Case(config_file(GOOD_REPOS + "cache:\n  required: !!python/object:os."
                                        "system echo\n"), 2, "ci-nix.yaml:5: not valid YAML", ""),
    "yaml-bad-int-tag": Case(config_file(GOOD_REPOS + "systems: [!!int abc]\n"), 2,
                             "not valid YAML: invalid literal", ""),
    "yaml-nested-too-deep": Case(config_file("[" * 5000), 2, "nested too deeply", ""),
    "unknown-key": Case(config_file(GOOD_REPOS + "sytems: [x86_64-linux]\n"), 2,
                        "ci-nix.yaml:4: unknown key 'sytems'", "known keys"),
    "unknown-nested-key": Case(config_file(GOOD_REPOS + "cache:\n  type: nix\n  srever: x\n"), 2,
                               "ci-nix.yaml:6: unknown key 'cache.srever'", "known keys"),
    "wrong-type": Case(config_file(GOOD_REPOS + "systems: x86_64-linux\n"), 2,
                       "ci-nix.yaml:4: 'systems' must be a list", ""),
    "bad-enum": Case(config_file(GOOD_REPOS + "outputs: [packages, legacyPackages]\n"), 2,
                     "'outputs' is 'legacyPackages'", "expected one of"),
    "bad-bool": Case(config_file(GOOD_REPOS + "cache:\n  required: maybe\n"), 2,
                     "'cache.required' must be true or false", ""),
    "repo-missing": Case(config_file("repos:\n  - path: nowhere\n"), 2,
                         "nowhere does not exist", "url:"),
    "repo-not-git-root": Case(config_file("repos:\n  - path: modules/sub\n"), 2,
                              "does not exist", ""),
    "duplicate-repo-names": Case(config_file("repos:\n  - path: modules\n    name: x\n"
                                             "  - path: hosts\n    name: x\n"), 2,
                                 "repo name 'x' is used twice", "distinct"),
    "cache-port-out-of-range": Case(config_file(
        GOOD_REPOS + "cache:\n  type: nix\n  server: file:///srv/cache\n"
        "  substituter: http://127.0.0.1:99999\n"), 2,
        "cache.substituter: not a valid URL (Port out of range", "e.g."),
    "cache-token-control-char": Case(lambda ws, tmp: config_file(
        GOOD_REPOS + "cache:\n  type: nix\n  server: file:///srv/cache\n  token-env: TOK\n"
    )(ws, tmp)[:1] + ({"TOK": "SENTINEL\x1b[2Jtoken"},), 2,
        "$TOK holds a control or non-ASCII character", "token alone"),
    "cache-token-inner-newline": Case(lambda ws, tmp: config_file(
        GOOD_REPOS + "cache:\n  type: nix\n  server: file:///srv/cache\n  token-env: TOK\n"
    )(ws, tmp)[:1] + ({"TOK": "SENTINEL-first\nSENTINEL-second"},), 2,
        "$TOK holds a control or non-ASCII character", "token alone"),
    "cache-timeout-nan": Case(lambda ws, tmp: config_file(
        GOOD_REPOS + "cache:\n  type: nix\n  server: file:///srv/cache\n"
    )(ws, tmp)[:1] + ({"CI_NIX_CACHE_TIMEOUT": "nan"},), 2,
        "CI_NIX_CACHE_TIMEOUT='nan': expected a positive number", "e.g."),
    "cache-attempts-inf": Case(lambda ws, tmp: config_file(
        GOOD_REPOS + "cache:\n  type: nix\n  server: file:///srv/cache\n"
    )(ws, tmp)[:1] + ({"CI_NIX_CACHE_RETRY_ATTEMPTS": "inf"},), 2,
        "CI_NIX_CACHE_RETRY_ATTEMPTS='inf': expected a positive number", "e.g."),
    "config-missing": Case(lambda ws, tmp: (["run", "--all", "--config", str(tmp / "nope.yaml"),
                                             str(ws)], {}), 2, "config file not found", "--config"),
    # workspace
    "non-git-dir": Case(plain_dir, 2, "not inside a git repository", "git init"),
    "newline-in-path": Case(newline_in_path, 2, "a\\nb: the checkout's path holds a newline",
                            "move"),
    "no-flake": Case(repo_without_flake, 2, "no tracked flake.nix", "git add"),
    "untracked-flake": Case(untracked_flake, 2, "no tracked flake.nix", "git add"),
    "empty-repo": Case(empty_repo, 2, "no tracked flake.nix", "git add"),
    # selection
    "only-unknown-flake": Case(in_ws("--only", "nope#packages.x86_64-linux.a"), 2,
                               "no flake 'nope'", "flakes:"),
    "only-unknown-attr": Case(lambda ws, tmp: (["run", str(ws), "--only",
                                                "hosts#packages.x86_64-linux.nope"], {}), 2,
                              "hosts#packages.x86_64-linux.nope: no such attribute", "matrix"),
    # with an attribute that exists beside the typo: nothing is built before exit 2
    "only-misspelt-attr": Case(lambda ws, tmp: (["run", str(ws), "--only",
                                                 "hosts#packages.x86_64-linux.mtod", "--only",
                                                 "hosts#packages.x86_64-linux.motd"], {}), 2,
                               "hosts#packages.x86_64-linux.mtod: no such attribute",
                               "did you mean hosts#packages.x86_64-linux.motd?"),
    "only-malformed": Case(lambda ws, tmp: (["run", str(ws), "--only", "hosts"], {}), 2,
                           "expected FLAKE#ATTR", ""),
    # tools
    "nix-missing": Case(lambda ws, tmp: (["run", "--all", str(ws)],
                                         {"CI_NIX_NIX": str(tmp / "no-nix")}), 2,
                        "not found", "CI_NIX_NIX"),
    "nix-too-old": Case(fake_nix("nix (Nix) 2.3.16"), 2, "2.3.16 is too old", "upgrade"),
    "nix-not-nix": Case(fake_nix("hello"), 2, "nix --version printed 'hello'", "CI_NIX_NIX"),
    "unwritable-report": Case(in_ws("--junit", "/proc/ci-nix-report.xml"), 2,
                              "cannot write report /proc/ci-nix-report.xml", "writable"),
    # flakes and locks (flake failures: exit 1, the flake's JUnit case says why)
    # under --only: the flake is broken, not the attribute missing (flake-without-outputs and
    # the lock cases take --all)
    "flake-syntax-error": Case(edit("modules/flake.nix",
                                    lambda t: t.replace("outputs =", "outputs = = "),
                                    "--only", "modules#packages.x86_64-linux.greeting"),
                               1, "syntax error", ""),
    "flake-without-outputs": Case(edit("modules/flake.nix", lambda t: "{ description = \"x\"; }"),
                                  1, "outputs", ""),
    "lock-corrupt": Case(edit("hosts/flake.lock", lambda t: "{ this is not json"), 1,
                         "flake.lock: not valid JSON", "nix flake lock"),
    "lock-truncated": Case(edit("hosts/flake.lock", lambda t: t[: len(t) // 2]), 1,
                           "flake.lock: not valid JSON", "nix flake lock"),
    "lock-not-utf8": Case(edit_bytes("hosts/flake.lock", lambda b: b.replace(b'"version"',
                                                                           b'"v\xe9rsion"')),
                          1, "flake.lock: not UTF-8 text", "nix flake lock"),
    "lock-wrong-version": Case(edit("hosts/flake.lock", lambda t: t.replace('"version": 7',
                                                                           '"version": 99')),
                               1, "lock file version 99 is not supported", "nix flake lock"),
    "lock-out-of-date": Case(edit("hosts/flake.nix", lambda t: re.sub(
        r'(inputs.modules.url = ("[^"]*");)', r"\1\n  inputs.extra.url = \2;", t
    ).replace("{ self, modules }", "{ self, modules, ... }"), commit=True), 1,
        "hosts flake.lock is out of date with flake.nix: input 'extra' is not locked",
        "nix flake lock"),
    "bad-base-ref": Case(lambda ws, tmp: (["run", str(ws / "hosts"), "--base", "no-such-ref"], {}),
                         2, "no-such-ref", ""),
    # one download attempt: Nix's default retries an unreachable host with back-off (~5 s)
    "input-offline": Case(with_env(edit("hosts/flake.nix", lambda t: t.replace(
        "inputs.modules.url", 'inputs.extra.url = "github:NixOS/nixpkgs";\n  inputs.modules.url'
    ).replace("{ self, modules }", "{ self, modules, ... }")),
        NIX_CONFIG=NIX_CONFIG + "download-attempts = 1\n"), 1, "github", ""),
}

# The cases ci-nix refuses before it starts the Nix under test (ci-nix.yaml, the workspace, the
# command line, a CI_NIX_NIX of the case's own): what they report cannot depend on which Nix made
# the fixture, so they run on one Nix (the other's run repeated it), and their test checks that
# the Nix under test never ran.
BEFORE_NIX = {"yaml-syntax", "yaml-list-as-key", "yaml-not-utf8", "yaml-python-tag",
              "yaml-bad-int-tag", "yaml-nested-too-deep", "unknown-key", "unknown-nested-key",
              "wrong-type", "bad-enum", "bad-bool", "repo-missing", "repo-not-git-root",
              "duplicate-repo-names", "cache-port-out-of-range", "cache-token-control-char",
              "cache-token-inner-newline", "cache-timeout-nan", "cache-attempts-inf",
              "config-missing", "non-git-dir", "newline-in-path", "nix-missing", "nix-too-old",
              "nix-not-nix", "unwritable-report"}


# The cases ci-nix refuses once it has asked the Nix under test only what it asks on every run
# (its version, its settings: `nix --version`, `nix show-config`), before Nix reads a flake:
# the workspace's repos and the selection. How each Nix version answers those questions is
# proved by every run on both; so they run on one Nix, and their test checks that Nix was asked
# nothing else.
PROBED_ONLY = {"no-flake", "untracked-flake", "empty-repo", "only-unknown-flake",
               "only-malformed", "bad-base-ref"}


# A selection naming an attribute the flake lacks is refused against the attributes Nix listed,
# as every run lists them (on both Nixes): ci-nix's check, on the first Nix only
ON_THE_LISTING = {"only-unknown-attr", "only-misspelt-attr"}

# A flake.lock ci-nix cannot read (not JSON, cut short, not UTF-8, a version it does not read) is
# refused by ci-nix's own reading of it (lockfile.read) before a worker starts for that flake:
# its message is ci-nix's, whichever Nix made the lock; the other flake's evaluation and build
# beside it are every run's (test_run_fixtures', on both). On the first Nix only. (An out-of-date
# lock is found against the inputs Nix listed: on both.)
UNREADABLE_LOCK = {"lock-corrupt", "lock-truncated", "lock-not-utf8", "lock-wrong-version"}


@pytest.mark.nix
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=FIRST_NIX) if name in ON_THE_LISTING | UNREADABLE_LOCK else name
    for name in sorted(set(CASES) - BEFORE_NIX - PROBED_ONLY)])
def test_bad_input(name: str, fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    check_bad_input(name, fixture_ws, tmp_path, cli)


@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("name", sorted(PROBED_ONLY))
def test_bad_input_refused_before_nix_reads_a_flake(name: str, nix_bin: str, fixture_ws: Path,
                                                    tmp_path: Path, cli: Cli,
                                                    fake_proc: FakeProc) -> None:
    check_bad_input(name, fixture_ws, tmp_path, cli)
    asked = [call.argv for call in fake_proc.calls if call.argv[0] == nix_bin]
    assert asked and all("--version" in argv or "show-config" in argv for argv in asked), asked


@pytest.fixture(scope="module")
def built_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture workspace made once (git repos, hosts' lock by the first Nix) for the cases
    refused before Nix runs, each of which gets a copy: nothing in it is built or evaluated."""
    if NIX_PARAMS[0] is None:
        pytest.skip("no Nix on this machine")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI_NIX_NIX", NIX_PARAMS[0])
        return make_workspace.make(tmp_path_factory.mktemp("built") / "ws")


@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("name", sorted(BEFORE_NIX))
def test_bad_input_refused_before_nix(name: str, nix_bin: str, built_ws: Path, tmp_path: Path,
                                      cli: Cli, fake_proc: FakeProc) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(built_ws, ws, symlinks=True)
    check_bad_input(name, ws, tmp_path, cli)
    assert not [call for call in fake_proc.calls if call.argv[0] == nix_bin], fake_proc.calls


def check_bad_input(name: str, fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    case = CASES[name]
    argv, env = case.prepare(fixture_ws, tmp_path)
    junit = tmp_path / "report.xml"
    if "--junit" not in argv:
        argv = [*argv, "--junit", str(junit)]
    result = cli(*argv, env=env, timeout=120)
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr
    report = junit.read_text() if junit.exists() else ""
    assert "SENTINEL" not in result.stderr + result.stdout + report
    if case.code == 2 and name not in ("only-unknown-attr", "only-misspelt-attr", "nix-too-old",
                                       "nix-not-nix"):
        assert "evaluating" not in result.stderr, "bad input is found before evaluating"
    if name.startswith("only-"):
        assert not re.search(r"^ci-nix: building \d", result.stderr, re.M), \
            "an unknown selection builds nothing"
        # nor evaluates the rest: the listing (or a cache entry) without it stops there
        assert "evaluated 1 flake with" not in result.stderr
    if case.code == 2:
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("ci-nix: error: ")
        assert case.expect in last and case.fix in last
    else:
        messages = [f.get("message", "") for f in ET.parse(junit).iter("failure")]
        assert any(case.expect in m and case.fix in m for m in messages), messages
    if name == "flake-syntax-error":
        assert "no such attribute" not in result.stderr + result.stdout
        assert ("note: --only modules#packages.x86_64-linux.greeting: not evaluated: the flake "
                "modules is broken (syntax error, unexpected") in result.stderr + result.stdout
    if name != "unwritable-report":
        errors = ET.parse(junit).findall(".//error") + ET.parse(junit).findall(".//failure")
        assert errors, "the JUnit report names the problem"


def _settings_of(record: Record[Any], prefix: str = "") -> list[str]:
    keys = []
    for key, (_, spec) in record.settings.items():
        keys.append(prefix + key)
        if isinstance(spec.schema, Record):
            keys += _settings_of(spec.schema, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize("key", _settings_of(Record(config.Config)))
def test_every_setting_rejects_a_value_of_the_wrong_shape(tmp_path: Path, key: str) -> None:
    # Read from the schema, so a key added tomorrow is covered too: a nested list where each
    # setting wants a scalar, a list of scalars or a mapping is a one-line error naming it.
    *outer, last = key.split(".")
    text = "".join(f"{'  ' * i}{part}:\n" for i, part in enumerate(outer))
    text += f"{'  ' * len(outer)}{last}: [[[]]]\n"
    file = tmp_path / "ci-nix.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(file)
    message = str(err.value)
    assert message.startswith(f"{file}:{len(outer) + 1}: '{key}") and "\n" not in message


# Cases that need their own flakes rather than the fixture workspace.
SHELL_NAME = "a b;$(touch pwned)'\""
EXTRA_CASES = ("space-and-unicode-path", "shell-metacharacter-attr", "detached-head",
               "huge-log-line")


@pytest.mark.nix
def test_workspace_path_with_spaces_and_unicode(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    import make_workspace

    ws = make_workspace.make(tmp_path / "my wörk space ✓")
    junit = tmp_path / "r.xml"
    report = tmp_path / "r.json"
    result = cli("run", ws, "--only", "hosts#nixosConfigurations.web", "--junit", junit,
                 "--json", report)
    assert result.returncode == 0, result.stderr
    assert [tc.get("name") for tc in ET.parse(junit).iter("testcase")] == [
        "nixosConfigurations.web"]
    [case] = json.loads(report.read_text())["cases"]
    # An uncommitted change there is what Nix 2.10+ evaluates (ci-nix named HEAD, so the last
    # commit was built green); Nix 2.8 can only read the commit: exit 2 says so.
    flake = ws / "hosts" / "flake.nix"
    flake.write_text(flake.read_text().replace('name = "web";', 'name = "web-uncommitted";'))
    result = cli("run", ws, "--only", "hosts#nixosConfigurations.web", "--json", report)
    if "nix-modern" in nix_bin:
        assert result.returncode == 0, result.stderr
        [changed] = json.loads(report.read_text())["cases"]
        assert "web-uncommitted" in changed["drvPath"] and changed["status"] == "passed"
        assert case["drvPath"] != changed["drvPath"]
    else:
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert "uncommitted changes in a checkout whose path has a space" in last
        assert str(ws / "hosts") in last and "Nix 2.10 or later" in last


@pytest.mark.nix
def test_attribute_names_never_reach_a_shell(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    flake = ("{ outputs = { self }: { packages.x86_64-linux = { "
             + '"a b;$(touch pwned)\'\\"" = ' + derivation("odd", "echo ok > $out")
             + "; }; }; }")
    repo = flake_repo(tmp_path / "repo", flake)
    junit = tmp_path / "r.xml"
    attr = 'packages.x86_64-linux."a b;$(touch pwned)\'\\""'
    result = cli("run", repo, "--only", f"repo#{attr}", "--junit", junit, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [tc.get("name") for tc in ET.parse(junit).iter("testcase")]
    assert names == [attr]
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


@pytest.mark.nix
def test_detached_head_builds(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.a = "
                          + derivation("a", "echo a > $out") + "; }; }")
    git(repo, "checkout", "-q", "--detach")
    result = cli("run", "--all", repo)
    assert result.returncode == 0, result.stderr


@pytest.mark.nix
def test_huge_log_line_is_bounded(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    script = "dd if=/dev/zero bs=1M count=20 2>/dev/null | tr -c x x; echo; exit 1"
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.big = "
                          + derivation("big", script) + "; }; }")
    junit = tmp_path / "r.xml"
    result = cli("run", "--all", repo, "--junit", junit)
    assert result.returncode == 1, result.stderr
    failure = next(ET.parse(junit).iter("failure"))
    assert failure.get("type") == "build"
    assert 0 < len(failure.text or "") < 20000


# A stand-in for a NixOS configuration whose nixpkgs.hostPlatform is not set (legacy
# `nixpkgs.system`, or a hand-made configuration): only the toplevel derivation knows its system.
HOST_WITHOUT_PLATFORM = """{ outputs = { self }: {
  nixosConfigurations.plain = { type = "configuration"; options = { };
    config.system.build.toplevel = %s; };
  nixosConfigurations.nowhere = { type = "configuration"; options = { };
    config.system.build.toplevel = (%s) // { system = null; }; };
}; }"""


@pytest.mark.nix
def test_host_system_comes_from_its_toplevel(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    flake = HOST_WITHOUT_PLATFORM % (derivation("plain", "mkdir $out"),
                                     derivation("nowhere", "mkdir $out"))
    repo = flake_repo(tmp_path / "repo", flake)
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    result = cli("run", "--all", repo, "--junit", junit, "--json", report)
    # never a skip: built where the derivation says, or failed with the reason
    assert result.returncode == 1, result.stderr
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    assert cases["nixosConfigurations.plain"]["status"] == "passed"
    assert cases["nixosConfigurations.plain"]["system"] == "x86_64-linux"
    nowhere = cases["nixosConfigurations.nowhere"]
    assert nowhere["status"] == "failed", nowhere
    message = nowhere["failure"]["message"]
    assert "which system" in message and "hostPlatform" in message
    matrix = cli("matrix", "--all", repo, "--format", "gitlab")
    assert "unknown" not in matrix.stdout


# --- a server that lies or stalls ------------------------------------------------------------

def cached_repo(tmp_path: Path, url: str, *extra_cache_keys: str) -> Path:
    """One flake with one package, and a ci-nix.yaml whose substituter is url."""
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.a = "
                      + derivation("a", f"echo {tmp_path.name} > $out") + "; }; }")
    write(repo / "ci-nix.yaml", "cache:\n  type: nix\n  server: file:///nonexistent\n"
          f"  substituter: {url}\n  push: none\n" + "".join(f"  {k}\n" for k in extra_cache_keys))
    return repo


@pytest.mark.nix
@pytest.mark.parametrize("body", [b"<html>Welcome to nginx!</html>", b"StorePath: \n", b""])
def test_a_cache_answering_garbage_is_not_a_cache_hit(tmp_path: Path, nix_bin: str, cli: Cli,
                                                       body: bytes) -> None:
    from httpcache import answering

    with answering(lambda path: (200, body)) as url:
        repo = cached_repo(tmp_path, url)
        junit, report = tmp_path / "r.xml", tmp_path / "r.json"
        result = cli("run", "--all", repo, "--junit", junit, "--json", report)
    assert result.returncode == 0, result.stderr
    [case] = json.loads(report.read_text())["cases"]
    assert case["status"] == "passed", case  # built, not "skipped (cached)"
    assert "not its narinfo" in result.stderr


@pytest.mark.nix
def test_a_pasted_token_with_a_trailing_newline_works_and_never_shows(
        tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    from httpcache import answering

    seen: list[str] = []

    def respond(path: str) -> tuple[int, bytes]:
        seen.append(path)
        return 404, b"not found"

    with answering(respond) as url:
        repo = cached_repo(tmp_path, url, "token-env: TOK")
        result = cli("run", "--all", "-v", repo, "--junit", tmp_path / "r.xml",
                     env={"TOK": "  SENTINEL-pasted-token\r\n"})
    assert result.returncode == 0, result.stderr
    assert seen, "the cache was asked, with the token in the header"
    assert "SENTINEL" not in result.stdout + result.stderr + (tmp_path / "r.xml").read_text()


# --- a signal in the middle ------------------------------------------------------------------

# One Nix: what the signal cuts short is ci-nix's own query of the cache (a hung request, a retry
# wait), after Nix evaluated; each Nix version's part of such a run (evaluating the flake, then
# building what the cache does not hold) is test_a_cache_answering_garbage_is_not_a_cache_hit's,
# on both
@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("fault", ["hang", "500"])
def test_sigterm_while_the_cache_stalls_stops_the_run(tmp_path: Path, nix_bin: str,
                                                      fault: str) -> None:
    """A hung request (here: up to 600 s) and retry waits (here: a budget of 3000 s) would keep
    a run alive for minutes; cancellation reaches them."""
    import signal
    import sys

    from httpcache import BinaryCache

    with BinaryCache() as server:
        server.fail(fault, methods=["GET"])
        repo = cached_repo(tmp_path, server.url, "timeout: 3000")
        junit = tmp_path / "r.xml"
        proc = subprocess.Popen([sys.executable, "-m", "ci_nix", "run", "--all", str(repo),
                                 "--junit", str(junit)], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "CI_NIX_CACHE_RETRY_BASE": "60",
                                     "CI_NIX_CACHE_RETRY_ATTEMPTS": "1000",
                                     "CI_NIX_CACHE_TIMEOUT": "600"})
        assert proc.stderr is not None
        if fault == "hang":  # the request is in the server, which does not answer
            wait_for(lambda: server.count("GET"), 60, "the cache request")
        else:  # the first answer was a 500: waiting before the next attempt
            for line in proc.stderr:
                if "retrying in" in line:
                    break
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)  # a guard only: uncancelled, this takes many minutes
        server.heal()
    err = proc.stderr.read()
    assert code == 143, err
    assert "Traceback" not in err
    cases = {tc.get("name"): tc for tc in ET.parse(junit).iter("testcase")}
    skipped = cases["packages.x86_64-linux.a"].find("skipped")
    assert skipped is not None and skipped.get("message") == "cancelled"



# One Nix: what fails is ci-nix's write of its report, after Nix built
@pytest.mark.nix
@ONE_NIX
def test_a_full_disk_under_the_report_is_one_line_and_the_rest_is_written(
        fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    # /dev/full opens for writing (so the up-front check passes) and every write fails ENOSPC
    result = cli("run", fixture_ws, "--only", "modules#packages.x86_64-linux.greeting",
                 "--junit", "/dev/full", "--json", tmp_path / "r.json")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "ci-nix: error: cannot write report /dev/full: No space left on device; free some space "
        "or choose another path")
    [case] = json.loads((tmp_path / "r.json").read_text())["cases"]
    assert case["status"] == "passed"  # built, and said so where it could be written
    assert "1 passed" in result.stdout


def test_a_bug_still_writes_the_report_and_never_shows_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ci_nix import cli, pipeline
    from ci_nix.mask import add_secret

    secret = "SENTINEL-in-a-bug-0042"
    add_secret(secret)

    def broken(*args: object) -> None:
        raise ValueError(f"Invalid header value b'Bearer {secret}\\n'")

    monkeypatch.setattr(pipeline, "_run", broken)
    # in-process: leave logging as pytest set it up (caplog in later tests relies on it)
    monkeypatch.setattr(cli, "_setup_logging", lambda verbosity: None)
    junit = tmp_path / "r.xml"
    code = cli.main(["run", str(tmp_path), "--junit", str(junit)])
    out, err = capsys.readouterr()
    assert code == 2
    assert secret not in out + err + junit.read_text()
    assert err.strip().splitlines()[-1].startswith(
        "ci-nix: error: internal error (ValueError: Invalid header value b'Bearer ***")
    assert "internal error" in junit.read_text()


def test_a_closed_stdout_is_not_a_crash(tmp_path: Path) -> None:
    import sys

    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { }; }")
    result = subprocess.run([sys.executable, "-m", "ci_nix", "detect", "--all", str(repo)],
                            preexec_fn=lambda: os.close(1), stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.nix
def test_sigterm_during_evaluation_stops_and_says_what_was_not_done(
        tmp_path: Path, nix_bin: str) -> None:
    import signal
    import sys

    slow = ("builtins.seq (builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 50000000)) ("
            + derivation("slow", "echo > $out") + ")")
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.slow = "
                      + slow + "; }; }")
    junit = tmp_path / "r.xml"
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", "run", "--all", str(repo),
                             "--junit", str(junit)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "evaluating" in line:
            break
    wait_for(lambda: processes_with(str(repo)), 60, "Nix evaluating the flake")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert "Traceback" not in proc.stderr.read()
    cases = {(tc.get("classname"), tc.get("name")): tc for tc in ET.parse(junit).iter("testcase")}
    skipped = cases[("repo", "flake.nix")].find("skipped")
    assert skipped is not None and skipped.get("message") == "cancelled before it was evaluated"


# --- two runs at once ------------------------------------------------------------------------

def test_a_report_is_replaced_whole_never_rewritten_in_place(tmp_path: Path, cli: Cli) -> None:
    """Two runs writing one --junit path (or CI reading it meanwhile) must never see a mix of
    two reports: the file is replaced by a complete copy, so an open reader keeps the old one."""
    junit = tmp_path / "r.xml"
    junit.write_text("<old-report/>")
    (tmp_path / "plain").mkdir()
    with open(junit) as reader:
        result = cli("run", "--all", tmp_path / "plain", "--junit", junit)
        assert result.returncode == 2, result.stderr
        assert reader.read() == "<old-report/>"
    assert ET.parse(junit).find(".//testcase") is not None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert stat.S_IMODE(junit.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# One Nix, as test_sigterm_while_the_cache_stalls_stops_the_run: the signal cuts short ci-nix's
# wait between its cache client's attempts (a fake attic), after Nix built
@pytest.mark.nix
@ONE_NIX
def test_sigterm_while_a_push_waits_to_retry_stops_the_run(tmp_path: Path, nix_bin: str) -> None:
    import signal
    import sys

    from httpcache import BinaryCache

    fakes = Path(__file__).resolve().parent / "fakes"
    with BinaryCache() as server:
        repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.a = "
                          + derivation("a", f"echo {tmp_path.name} > $out") + "; }; }")
        write(repo / "ci-nix.yaml", f"cache:\n  type: attic\n  server: {server.url}\n"
              "  name: infra\n  token-env: ATTIC_TOKEN\n  push: outputs\n")
        junit = tmp_path / "r.xml"
        proc = subprocess.Popen(
            [sys.executable, "-m", "ci_nix", "run", "--all", str(repo), "--junit", str(junit)],
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CI_NIX_ATTIC": str(fakes / "attic"), "ATTIC_TOKEN": "t0k3n-x",
                 "FAKE_CLIENT_RECORD": str(tmp_path / "calls.jsonl"),
                 "FAKE_CLIENT_FAIL_TIMES": "99", "FAKE_CLIENT_FAIL_STDERR": "connection reset",
                 "CI_NIX_CACHE_RETRY_BASE": "120", "CI_NIX_CACHE_RETRY_TOTAL": "3000"})
        assert proc.stderr is not None
        for line in proc.stderr:
            if "retrying in" in line:
                break
        proc.send_signal(signal.SIGTERM)
        # a guard only: the wait itself ends at once (test_cancellation's hour-long wait)
        code = proc.wait(timeout=200)
    assert code == 143
    assert "Traceback" not in proc.stderr.read()
    cases = {tc.get("name"): tc for tc in ET.parse(junit).iter("testcase")}
    assert cases["packages.x86_64-linux.a"].find("failure") is None  # the build result stands
    assert cases["packages.x86_64-linux.a"].find("skipped") is None


def test_a_logged_traceback_is_masked_too() -> None:
    import io
    import logging

    from ci_nix.mask import MaskingFilter, add_secret

    add_secret("SENTINEL-logged-4711")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("ci_nix.test-mask")
    logger.addHandler(handler)
    try:
        raise ValueError("Invalid header value b'Bearer SENTINEL-logged-4711\\n'")
    except ValueError:
        logger.exception("querying the cache failed")
    finally:
        logger.removeHandler(handler)
    assert "SENTINEL" not in out.getvalue()
    assert "Bearer ***" in out.getvalue() and "Traceback" in out.getvalue()


@pytest.mark.nix
def test_a_password_in_the_cache_url_never_shows(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    from httpcache import BinaryCache

    with BinaryCache() as server:
        url = server.url.replace("http://", "http://ci:SENTINEL-url-pass@")
        repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { packages.x86_64-linux.a = "
                          + derivation("a", f"echo {tmp_path.name} > $out") + "; }; }")
        write(repo / "ci-nix.yaml", f"cache:\n  type: nix\n  server: {url}\n  push: closure\n")
        result = cli("run", "-v", "--all", repo, "--junit", tmp_path / "r.xml",
                     "--json", tmp_path / "r.json")
    assert "nix copy --to" in result.stderr or "copy --to" in result.stderr  # the argv is logged
    observed = result.stdout + result.stderr + (tmp_path / "r.xml").read_text() + (
        tmp_path / "r.json").read_text()
    assert "SENTINEL" not in observed


@pytest.mark.parametrize("payload", ["[" * 100_000, "\udcff", "null", '{"pull_request": 7}'])
def test_a_strange_github_event_payload_means_no_base(tmp_path: Path, cli: Cli,
                                                      payload: str) -> None:
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { }; }")
    event = tmp_path / "event.json"
    event.write_bytes(payload.encode("utf-8", "surrogateescape"))
    result = cli("detect", repo, env={"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME":
                                      "pull_request", "GITHUB_EVENT_PATH": str(event)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_nearest_attrs_compares_siblings_by_their_own_name() -> None:
    names = ["packages.x86_64-linux.motd", "packages.x86_64-linux.missing",
             "nixosConfigurations.web"]
    assert pipeline.nearest_attrs("packages.x86_64-linux.mtod", names) == [
        "packages.x86_64-linux.motd"]
    assert pipeline.nearest_attrs("packages.x86_64-linux.nope", names) == []
    assert pipeline.nearest_attrs("packages.x86_64-linx.motd", names)[0] == (
        "packages.x86_64-linux.motd")  # best first
    assert pipeline.nearest_attrs("nixosConfigurations.webb", names) == [
        "nixosConfigurations.web"]


@pytest.mark.parametrize(("argv", "expect"), [
    (["run", "--workers", "abc", "--junit", "REPORT"],
     "argument --workers: invalid int value: 'abc'"),
    (["run", "--junit=REPORT", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["bundle", "--junit", "REPORT", "--since"], "argument --since: expected one argument"),
])
def test_a_rejected_command_line_still_writes_the_junit_report(argv: list[str], expect: str,
                                                               tmp_path: Path, cli: Cli) -> None:
    report = tmp_path / "report.xml"
    result = cli(*[arg.replace("REPORT", str(report)) for arg in argv], cwd=tmp_path)
    assert result.returncode == 2
    assert expect in result.stderr and "usage: ci-nix" in result.stderr
    assert "Traceback" not in result.stderr
    errors = ET.parse(report).findall(".//error")
    messages = [e.get("message") or "" for e in errors]
    assert len(messages) == 1, messages
    assert messages[0].startswith("bad command line: ci-nix") and messages[0].endswith(expect)
    assert f"JUnit report: {report}" in result.stdout


def test_a_rejected_command_line_without_junit_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    result = cli("run", "--workers", "abc", cwd=tmp_path)
    assert result.returncode == 2 and "invalid int value" in result.stderr
    assert list(tmp_path.iterdir()) == []
    unwritable = cli("run", "--workers", "abc", "--junit", str(tmp_path / "no" / "r.xml"),
                     cwd=tmp_path)
    assert unwritable.returncode == 2
    assert f"cannot write report {tmp_path / 'no' / 'r.xml'}" in unwritable.stderr
