"""Which workspace repo each `/nix/store/…-source` tree of a flake's evaluation came from.

An evaluation error points into store copies: the flake's own source, each input as locked,
and inputs overridden with workspace checkouts. Store paths are content-addressed, so two repos
can never share one, and a locked input's path follows from its narHash alone; `nix flake
metadata` gives the flake's own path and its lock graph with the overrides applied.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable

from ci_nix import lockfile
from ci_nix.models import Flake, SourceTree, Target
from ci_nix.tools.nix import Nix, NixCommandError

log = logging.getLogger(__name__)

_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"  # Nix's own base-32 alphabet


def _nix_base32(data: bytes) -> str:
    chars = []
    for n in range((len(data) * 8 - 1) // 5, -1, -1):
        bit, index = n * 5 % 8, n * 5 // 8
        value = data[index] >> bit
        if index + 1 < len(data):
            value |= data[index + 1] << (8 - bit)
        chars.append(_BASE32[value & 0x1F])
    return "".join(chars)


def store_path(nar_hash: str, name: str = "source") -> str | None:
    """The store path of a source tree with this NAR hash (`sha256-<base64>`), as Nix makes it.

    None for a hash that is not SRI sha256.
    """
    algo, _, digest = nar_hash.partition("-")
    try:
        raw = base64.b64decode(digest, validate=True)
    except ValueError:
        return None
    if algo != "sha256" or len(raw) != 32:
        return None
    fingerprint = f"source:sha256:{raw.hex()}:/nix/store:{name}"
    full = hashlib.sha256(fingerprint.encode()).digest()
    folded = bytearray(20)
    for i, byte in enumerate(full):
        folded[i % 20] ^= byte
    return f"/nix/store/{_nix_base32(bytes(folded))}-{name}"


class Origins:
    """The source trees of each target, asked of Nix once per target and only when needed."""

    def __init__(self, nix: Nix, workspace_flake: Callable[[lockfile.Node, Flake], Flake | None]):
        self.nix = nix
        self.workspace_flake = workspace_flake  # detect.workspace_flake_of(workspace, git)
        self._cache: dict[Target, tuple[SourceTree, ...]] = {}
        self._lock = threading.Lock()

    def of(self, target: Target) -> tuple[SourceTree, ...]:
        with self._lock:
            if target not in self._cache:
                self._cache[target] = self._ask(target)
            return self._cache[target]

    def _ask(self, target: Target) -> tuple[SourceTree, ...]:
        overrides = [arg for o in target.overrides
                     for arg in ("--override-input", o.input, self.nix.flake_ref(o.url))]
        try:
            out = self.nix.check(["flake", "metadata", "--json", *overrides,
                                  self.nix.flake_ref(target.flake.ref)],
                                 f"reading the inputs of {target.flake.id}")
            data = json.loads(out)
            lock = lockfile.parse(json.dumps(data.get("locks") or {"version": 7, "root": "root",
                                                                   "nodes": {"root": {}}}))
        except (NixCommandError, ValueError, lockfile.LockError) as err:
            # positions then fall back to "a file of this repo at that path"
            log.info("cannot tell where %s's sources come from: %s", target.flake.id, err)
            return ()
        trees = []
        if isinstance(data.get("path"), str):
            trees.append(SourceTree(data["path"], target.flake.repo.name))
        for _, node in lock.walk():
            path = store_path(node.locked.nar_hash) if node.locked.nar_hash else None
            if path is None:
                continue
            found = self.workspace_flake(node, target.flake)
            trees.append(SourceTree(path, found.repo.name if found is not None else None))
        return tuple(dict.fromkeys(trees))
