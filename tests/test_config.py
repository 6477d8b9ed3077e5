from __future__ import annotations

from pathlib import Path

import pytest

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
    assert cfg.repos[1].name == "hosts" and cfg.repos[1].url.endswith("hosts.git")
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
