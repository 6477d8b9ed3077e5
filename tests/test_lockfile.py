from __future__ import annotations

import json

import pytest

from ci_nix import lockfile

LOCK = {
    "nodes": {
        "modules": {"inputs": {"nixpkgs": ["nixpkgs"]},
                    "locked": {"type": "git", "url": "file:///w/modules", "rev": "a" * 40,
                               "lastModified": 1700000000},
                    "original": {"type": "git", "url": "file:///w/modules"}},
        "nixpkgs": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs",
                               "rev": "b" * 40, "lastModified": 1700000001},
                    "original": {"type": "github", "owner": "NixOS", "repo": "nixpkgs"}},
        "root": {"inputs": {"modules": "modules", "nixpkgs": "nixpkgs"}},
    },
    "root": "root", "version": 7,
}


def test_follows_resolve_to_the_followed_node() -> None:
    lock = lockfile.parse(json.dumps(LOCK))
    assert set(lock.root_inputs()) == {"modules", "nixpkgs"}
    assert lock.resolve(("nixpkgs",)).key == "nixpkgs"
    assert lock.resolve(lock.nodes["modules"].inputs["nixpkgs"]).rev == "b" * 40
    assert [path for path, _ in lock.walk()] == [("modules",), ("nixpkgs",)]


@pytest.mark.parametrize("text, expected", [
    ("{", "not valid JSON"),
    ('{"nodes": {}, "root": "root", "version": 99}', "version 99 is not supported"),
    ('{"version": 7}', "no 'nodes'"),
    ('{"nodes": {"x": {}}, "root": "root", "version": 7}', "root node 'root' is missing"),
])
def test_bad_locks_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(lockfile.LockError, match=expected) as err:
        lockfile.parse(text, "hosts/flake.lock")
    assert "hosts/flake.lock" in str(err.value) and "nix flake lock" in str(err.value)
