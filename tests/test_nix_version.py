"""`nix --version` as Nix and Lix print it, and what else ci-nix asks Nix about itself."""

from __future__ import annotations

import json

import pytest
from fakeproc import FakeProc

from ci_nix.errors import ToolError
from ci_nix.tools.nix import Nix, NixVersion, parse_version


@pytest.mark.parametrize(("output", "expected"), [
    ("nix (Nix) 2.8.0\n", NixVersion(2, 8, 0, "nix", "nix (Nix) 2.8.0")),
    ("nix (Nix) 2.26.3\n", NixVersion(2, 26, 3, "nix", "nix (Nix) 2.26.3")),
    ("nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux\n",
     NixVersion(2, 91, 1, "lix", "nix (Lix, like Nix) 2.91.1")),
    ("nix (Lix, like Nix) 2.93.0-pre20250101\n",
     NixVersion(2, 93, 0, "lix", "nix (Lix, like Nix) 2.93.0-pre20250101")),
    ("nix-env (Nix) 2.3\n", NixVersion(2, 3, 0, "nix", "nix-env (Nix) 2.3")),
])
def test_versions(output: str, expected: NixVersion) -> None:
    found = parse_version(output)
    assert found == expected
    assert found.at_least(2, 4) is (expected.minor >= 4)


def test_not_a_version() -> None:
    with pytest.raises(ToolError, match="is CI_NIX_NIX a nix binary"):
        parse_version("bash: nix: command not found")


@pytest.mark.parametrize(("settings", "expected", "evaluates"), [
    # Nix 2.19+: `eval-system` decides builtins.currentSystem when it is set
    ({"system": {"value": "x86_64-linux"}, "eval-system": {"value": "aarch64-linux"}},
     "aarch64-linux", False),
    ({"system": {"value": "x86_64-linux"}, "eval-system": {"value": ""}}, "x86_64-linux", False),
    ({"system": {"value": "i686-linux"}}, "i686-linux", False),  # Nix 2.8: `system` alone
    ({}, "riscv64-linux", True),  # a Nix whose settings do not say: ask it
])
def test_the_current_system_comes_from_the_settings(fake_proc: FakeProc, settings: object,
                                                    expected: str, evaluates: bool) -> None:
    fake_proc.strict = True
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.0\n")
    fake_proc.on("nix", "config", "show", stdout=json.dumps(settings))
    fake_proc.on("nix", "eval", stdout="riscv64-linux")
    assert Nix(("nix",)).current_system == expected
    assert bool(fake_proc.ran("nix", "eval")) is evaluates
