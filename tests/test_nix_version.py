"""`nix --version` as Nix and Lix print it."""

from __future__ import annotations

import pytest

from ci_nix.errors import ToolError
from ci_nix.tools.nix import NixVersion, parse_version


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
