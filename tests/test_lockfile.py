from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix import lockfile
from ci_nix.flakeref import FlakeRef

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
    nixpkgs = lock.resolve(("nixpkgs",))
    followed = lock.resolve(lock.nodes["modules"].inputs["nixpkgs"])
    assert nixpkgs is not None and followed is not None, "both input paths resolve to a node"
    assert nixpkgs.key == "nixpkgs"
    assert followed.rev == "b" * 40
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


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"version": st.sampled_from([1, 3, 5, 7, "7", None]),
                              "root": st.sampled_from(["root", 1, None]),
                              "nodes": st.dictionaries(st.sampled_from(["root", "a", "b"]),
                                                       _json, max_size=3)}))
def test_any_json_is_a_lock_or_a_lock_error(data: dict[str, object]) -> None:
    try:
        lock = lockfile.parse(json.dumps(data))
    except lockfile.LockError as err:
        assert "\n" not in str(err)
        return
    for _, node in lock.walk():
        assert isinstance(node.locked, FlakeRef)
    lock.root_inputs()


def test_locked_refs_as_urls_pin_the_same_revision() -> None:
    ref = FlakeRef.from_json
    assert ref({"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "a" * 40}
               ).locked_url() == f"github:NixOS/nixpkgs/{'a' * 40}"
    assert ref({"type": "gitlab", "owner": "g", "repo": "r", "rev": "b" * 40, "host": "gl.x"}
               ).locked_url() == f"gitlab:g/r/{'b' * 40}?host=gl.x"
    assert ref({"type": "git", "url": "file:///srv/m?dir=x", "rev": "c" * 40, "ref": "main"}
               ).locked_url() == f"git+file:///srv/m?dir=x&ref=main&rev={'c' * 40}"
    assert ref({"type": "tarball", "url": "https://h/a.tar.gz"}).locked_url() == (
        "tarball+https://h/a.tar.gz")
    assert ref({"type": "path", "path": "/srv/p"}).locked_url() == "path:/srv/p"
    assert ref({"type": "indirect", "id": "nixpkgs"}).locked_url() is None


def _read_in_time(read: Callable[[], object], fifo: Path) -> object:
    """read() in a thread; a read blocked on the FIFO (no writer) is let go and fails."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(read())
        except Exception as err:  # noqa: BLE001 - what it raised is the answer
            outcome.append(err)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let it go
        thread.join(10)
        pytest.fail("reading a flake.lock that links to a FIFO blocked")
    [found] = outcome
    return found


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "big"])
def test_a_lock_a_pull_request_links_elsewhere_is_refused_not_read_for_good(
        tmp_path: Path, target: str) -> None:
    """A pull request commits flake.lock as a symlink (git keeps links): to /dev/zero ci-nix
    read until memory ran out (MemoryError, or the runner's OOM killer: no report), to a FIFO
    it waited for good. Only a regular file is read, and only up to lockfile.MAX_BYTES; a link
    inside the repo to its own lock is still followed."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    repo = tmp_path / "repo"
    repo.mkdir()
    if target == "big":
        where = tmp_path / "big.lock"
        where.write_text(" " * (lockfile.MAX_BYTES + 1) + json.dumps(LOCK))
    else:
        where = fifo if target == "fifo" else Path(target)
    (repo / "flake.lock").symlink_to(where)
    found = _read_in_time(lambda: lockfile.read(repo / "flake.lock"), fifo)
    assert isinstance(found, lockfile.LockError), found
    assert "flake.lock" in str(found)
    (repo / "shared.lock").write_text(json.dumps(LOCK))
    (repo / "flake.lock").unlink()
    (repo / "flake.lock").symlink_to("shared.lock")
    lock = lockfile.read(repo / "flake.lock")
    assert lock is not None and lock.root == "root"
