"""flake.lock (versions 5 to 7) as typed values: nodes, locked/original references, follows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci_nix.errors import CiNixError
from ci_nix.flakeref import FlakeRef
from ci_nix.tools import files

# nixpkgs-sized workspaces lock in kilobytes; past this it is no lock (a link to /dev/zero)
MAX_BYTES = 64 * 1024 * 1024

SUPPORTED_VERSIONS = (5, 6, 7)


class LockError(CiNixError):
    """A flake.lock that cannot be read."""



@dataclass(frozen=True)
class Node:
    """One node of the lock graph. `inputs` maps an input name to a node key, or to a follows
    path (a tuple of input names starting at the root)."""

    key: str
    locked: FlakeRef
    original: FlakeRef
    inputs: dict[str, str | tuple[str, ...]]
    flake: bool = True

    @property
    def rev(self) -> str | None:
        return self.locked.rev

    @property
    def last_modified(self) -> int | None:
        return self.locked.last_modified


@dataclass(frozen=True)
class Lock:
    version: int
    root: str
    nodes: dict[str, Node]

    def resolve(self, target: str | tuple[str, ...]) -> Node | None:
        """The node an input points at, following `follows` paths from the root."""
        return self._resolve(target, 0)

    def _resolve(self, target: str | tuple[str, ...], depth: int) -> Node | None:
        if isinstance(target, str):
            return self.nodes.get(target)
        if depth > len(self.nodes):  # follows cycles in a hand-edited lock
            return None
        node: Node | None = self.nodes[self.root]
        for name in target:
            if node is None or name not in node.inputs:
                return None
            node = self._resolve(node.inputs[name], depth + 1)
        return node

    def root_inputs(self) -> dict[str, Node]:
        """The flake's direct inputs, follows resolved."""
        result = {}
        for name, target in self.nodes[self.root].inputs.items():
            node = self.resolve(target)
            if node is not None:
                result[name] = node
        return result

    def walk(self) -> Iterator[tuple[tuple[str, ...], Node]]:
        """Every (input path from the root, node) reached without following `follows`."""
        seen: set[str] = set()
        stack: list[tuple[tuple[str, ...], str]] = [((), self.root)]
        while stack:
            path, key = stack.pop()
            node = self.nodes[key]
            if path:
                yield path, node
            if key in seen:
                continue
            seen.add(key)
            for name, target in sorted(node.inputs.items(), reverse=True):
                if isinstance(target, str) and target in self.nodes:
                    stack.append(((*path, name), target))


def parse(text: str, source: str = "flake.lock") -> Lock:
    """Parse flake.lock text; LockError names the file and what to do."""
    fix = "run `nix flake lock` to regenerate it"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LockError(f"{source}: not valid JSON (line {err.lineno}: {err.msg}); {fix}") from None
    except RecursionError:
        raise LockError(f"{source}: not valid JSON (nested too deeply); {fix}") from None
    if not isinstance(data, dict):
        raise LockError(f"{source}: not a JSON object; {fix}")
    version = data.get("version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        # Versions 1-3 (Nix 2.3 era) have no `nodes` graph at all: say so before anything else.
        raise LockError(f"{source}: lock file version {version!r} is not supported (ci-nix reads "
                        f"versions {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}); run "
                        "nix flake lock with a current Nix to regenerate it")
    if not isinstance(data.get("nodes"), dict):
        raise LockError(f"{source}: no 'nodes' object; {fix}")
    root = data.get("root", "root")
    if not isinstance(root, str):
        raise LockError(f"{source}: 'root' is not a node name; {fix}")
    nodes = {}
    for key, raw in data["nodes"].items():
        if not isinstance(raw, dict):
            raise LockError(f"{source}: node {key!r} is not an object; {fix}")
        raw_inputs = raw.get("inputs") or {}
        if not isinstance(raw_inputs, dict):
            raise LockError(f"{source}: node {key!r}: 'inputs' is not an object; {fix}")
        inputs: dict[str, str | tuple[str, ...]] = {}
        for name, target in raw_inputs.items():
            if isinstance(target, list) and all(isinstance(part, str) for part in target):
                inputs[name] = tuple(target)
            elif isinstance(target, str):
                inputs[name] = target
            else:
                raise LockError(f"{source}: node {key!r}: input {name!r} is neither a node name "
                                f"nor a follows path; {fix}")
        nodes[key] = Node(key=key, locked=FlakeRef.from_json(raw.get("locked")),
                          original=FlakeRef.from_json(raw.get("original")), inputs=inputs,
                          flake=raw.get("flake", True) is not False)
    if root not in nodes:
        raise LockError(f"{source}: root node {root!r} is missing; {fix}")
    return Lock(version=version, root=root, nodes=nodes)


def read(path: Path) -> Lock | None:
    """The lock next to a flake.nix, or None when the flake has none."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return None
    return parse(text, str(path))


def read_text(path: Path) -> str:
    """A flake.lock's text, read as read_bytes reads it; LockError naming the file when it
    cannot be had (FileNotFoundError as it is)."""
    try:
        return read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise LockError(f"{path}: not UTF-8 text; run `nix flake lock` to regenerate it") from None
    except OSError as err:
        raise LockError(f"{path}: cannot read: {err.strerror}") from None
    except ValueError as err:
        raise LockError(f"{path}: {err}; a flake.lock is a file `nix flake lock` writes") from None


def read_bytes(path: Path) -> bytes:
    """A flake.lock's bytes: a pull request decides the file, a symlink too (git keeps them),
    so only a regular file is read, and at most MAX_BYTES (OSError, ValueError otherwise)."""
    return files.read_linked(path, MAX_BYTES)
