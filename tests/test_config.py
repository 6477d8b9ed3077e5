from __future__ import annotations

from pathlib import Path

import pytest

from ci_nix import bots as bots_mod
from ci_nix import config
from ci_nix.errors import ConfigError


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "ci-nix.yaml"
    path.write_text(text)
    return config.load(path)


def test_full_config_becomes_frozen_values(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
repos:
  - path: modules
  - {path: hosts, name: hosts, url: https://example.com/hosts.git}
systems: [x86_64-linux, aarch64-linux]
outputs: [packages, nixosConfigurations]
exclude: ["checks.*"]
runners: {aarch64-linux: [self-hosted, arm64], x86_64-linux: ubuntu-latest}
cache: {type: attic, server: "https://c.example", name: infra, token-env: ATTIC_TOKEN,
        push: outputs, required: true}
update: {branch: bot/update, group: false, labels: [deps], auto-merge: true}
forge: {type: gitlab, url: "https://gitlab.example", project: infra/hosts}
""")
    assert [r.path for r in cfg.repos] == [tmp_path / "modules", tmp_path / "hosts"]
    url = cfg.repos[1].url
    assert cfg.repos[1].name == "hosts" and url is not None and url.endswith("hosts.git")
    assert cfg.systems == ("x86_64-linux", "aarch64-linux")
    assert cfg.runners == {"aarch64-linux": ("self-hosted", "arm64"),
                           "x86_64-linux": ("ubuntu-latest",)}
    assert cfg.cache.type == "attic" and cfg.cache.token_env == "ATTIC_TOKEN"
    assert cfg.cache.push == "outputs" and cfg.cache.required is True
    assert cfg.update.group is False and cfg.update.labels == ("deps",)
    assert cfg.update.auto_merge is True and cfg.forge.project == "infra/hosts"
    assert cfg.ignore == config.DEFAULT_IGNORE


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "# nothing yet\n")
    assert cfg.repos == () and cfg.outputs == config.OUTPUT_KINDS


@pytest.mark.parametrize("text, message", [
    ("cache:\n  type: nix\ncache:\n  push: none\n",
     "ci-nix.yaml:3: key 'cache' appears twice (first on line 1); merge them"),
    ("cache:\n  type: nix\n  type: attic\n",
     "ci-nix.yaml:3: key 'cache.type' appears twice (first on line 2)"),
    ("repos:\n  - name: x\n", "needs a 'path:'"),
    ("- just a list\n", "must be a mapping"),
    ("runners: [a]\n", "'runners' must map a system"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load(tmp_path, text)
    assert message in str(err.value)


def test_kinds_are_enums(tmp_path: Path) -> None:
    cfg = load(tmp_path, "cache: {type: cachix, push: none}\nforge: {type: github}\n")
    assert cfg.cache.type is config.CacheType.CACHIX and cfg.cache.push is config.Push.NONE
    assert cfg.forge.type is config.ForgeType.GITHUB
    assert config.Config().cache.push is config.Push.CLOSURE


@pytest.mark.parametrize("text, message", [
    ("repos:\n  - name: x\n", "ci-nix.yaml:2: every entry of 'repos' needs a 'path:'"),
    ("cache:\n  srever: x\n", "ci-nix.yaml:2: unknown key 'cache.srever'; known keys: type, "
     "server, name, token-env, push, substituter, required, secret-key-file"),
    ("cache: {push: all}\n", "ci-nix.yaml:1: 'cache.push' is 'all'; expected one of closure, "
     "outputs, none"),
    ("cache: {required: maybe}\n", "ci-nix.yaml:1: 'cache.required' must be true or false"),
    ("update: {labels: deps}\n", "ci-nix.yaml:1: 'update.labels' must be a list"),
    ("systems: [[x]]\n", "ci-nix.yaml:1: 'systems' must be a string"),
    ("cache:\n", "ci-nix.yaml:1: 'cache' must be a mapping"),
    ("- just a list\n", "ci-nix.yaml:1: the file must be a mapping of settings"),
    ("repos: [{path: a, path: b}]\n", "ci-nix.yaml:1: key 'repos.path' appears twice"),
    ("systems: [a\n", "ci-nix.yaml:2: not valid YAML"),
])
def test_error_messages(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert str(err.value).startswith(f"{tmp_path}/{message}")


def bots(tmp_path: Path, text: str) -> tuple[bots_mod.BotRepo, ...]:
    path = tmp_path / "bots.yaml"
    path.write_text(text)
    return bots_mod.load(path)


BOTS = """\
forges:
  gh: {type: github}
  gl: {type: gitlab, url: "https://gitlab.example/", web-url: "https://web.example"}
update: {labels: [deps], branch: bot/all}
repos:
  - {name: a, forge: gh, project: o/a, clone: "https://example.invalid/a.git"}
  - name: b
    forge: gl
    project: g/b
    clone: "https://example.invalid/b.git"
    branch: bot/b
    inputs: [nixpkgs]
    update: {group: false, labels: [nix]}
"""


def test_bots_yaml_layers_update_settings(tmp_path: Path) -> None:
    a, b = bots(tmp_path, BOTS)
    assert a.update == config.UpdateConfig(labels=("deps",), branch="bot/all")
    assert b.update == config.UpdateConfig(labels=("nix",), branch="bot/b", group=False)
    assert (a.web_url, b.web_url) == ("https://github.com/o/a", "https://web.example/g/b")
    assert b.inputs == ("nixpkgs",) and b.forge.kind == "gitlab"


@pytest.mark.parametrize("text, message", [
    ("", "bots.yaml: expected a mapping with 'repos:'"),
    ("forges: {}\n", "bots.yaml: no repos; list them under 'repos:'"),
    ("forges:\n  gh: {url: x}\n", "bots.yaml:2: 'forges.gh' needs a 'type:'"),
    ("forges: [gh]\n", "bots.yaml:1: 'forges' must map a name to a forge"),
    ("repos:\n  - {name: a, forge: gh, project: p}\n",
     "bots.yaml:2: every entry of 'repos' needs a 'clone:'"),
    ("repos:\n  - {name: a, update: {colour: red}}\n",
     "bots.yaml:2: unknown key 'repos.update.colour'"),
    ("colour: red\n", "bots.yaml:1: unknown key 'colour'; known keys: forges, update, repos"),
])
def test_bots_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        bots(tmp_path, text)
    assert str(err.value).startswith(f"{tmp_path}/{message}")


def test_eval_settings(tmp_path: Path) -> None:
    cfg = load(tmp_path, "eval: {workers: 2, timeout: 1.5}\n")
    assert cfg.eval == config.EvalConfig(workers=2, memory=4096, timeout=1.5)
    for text, message in (("eval: {workers: 0}\n", "'eval.workers' must be a whole number"),
                          ("eval: {timeout: -1}\n", "'eval.timeout' must be a number of sec"),
                          ("eval: {memory: true}\n", "'eval.memory' must be a whole number")):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, text)


def test_a_config_linked_to_a_fifo_or_device_is_refused_not_read_for_good(
        tmp_path: Path) -> None:
    """A pull request's ci-nix.yaml may be a symlink: to a FIFO config.load waited for good, to
    /dev/zero it read until memory ran out. Only a regular file is read (a link to one is)."""
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / "ci-nix.yaml"
    for target in (fifo, Path("/dev/zero")):
        path.unlink(missing_ok=True)
        path.symlink_to(target)
        outcome: list[object] = []

        def run(outcome: list[object] = outcome) -> None:
            try:
                outcome.append(config.load(path))
            except ConfigError as err:
                outcome.append(err)
        thread = threading.Thread(target=run, daemon=True)
        if target == fifo:  # /dev/zero on the old code: memory, not a hang; not run there
            thread.start()
            thread.join(10)
            if thread.is_alive():
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                thread.join(10)
                pytest.fail("reading a config that links to a FIFO blocked")
        else:
            run()
        [found] = outcome
        assert isinstance(found, ConfigError) and "ci-nix.yaml" in str(found), found
    path.unlink()
    (tmp_path / "real.yaml").write_text("systems: [x86_64-linux]\n")
    path.symlink_to("real.yaml")
    assert config.load(path).systems == ("x86_64-linux",)
