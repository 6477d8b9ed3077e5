"""flake.lock (version 7) as typed values: nodes, inputs, follows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_nix.errors import CiNixError

SUPPORTED_VERSIONS = (5, 6, 7)


class LockError(CiNixError):
    """A flake.lock that cannot be read."""


@dataclass(frozen=True)
class Node:
    """One node of the lock graph. `inputs` maps an input name to a node key, or to a follows
    path (a tuple of input names starting at the root)."""

    key: str
    locked: dict[str, Any]
    original: dict[str, Any]
    inputs: dict[str, str | tuple[str, ...]]
    flake: bool = True

    @property
    def rev(self) -> str | None:
        return self.locked.get("rev")

    @property
    def last_modified(self) -> int | None:
        value = self.locked.get("lastModified")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Lock:
    version: int
    root: str
    nodes: dict[str, Node]

    def resolve(self, target: str | tuple[str, ...]) -> Node | None:
        """The node an input points at, following `follows` paths from the root."""
        if isinstance(target, str):
            return self.nodes.get(target)
        node: Node | None = self.nodes[self.root]
        for name in target:
            if node is None or name not in node.inputs:
                return None
            node = self.resolve(node.inputs[name])
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
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        raise LockError(f"{source}: no 'nodes' object; {fix}")
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise LockError(f"{source}: lock file version {version!r} is not supported (expected 7); "
                        f"{fix} with a current Nix")
    root = data.get("root", "root")
    nodes = {}
    for key, raw in data["nodes"].items():
        if not isinstance(raw, dict):
            raise LockError(f"{source}: node {key!r} is not an object; {fix}")
        inputs: dict[str, str | tuple[str, ...]] = {}
        for name, target in (raw.get("inputs") or {}).items():
            inputs[name] = tuple(target) if isinstance(target, list) else str(target)
        nodes[key] = Node(key=key, locked=dict(raw.get("locked") or {}),
                          original=dict(raw.get("original") or {}), inputs=inputs,
                          flake=bool(raw.get("flake", True)))
    if root not in nodes:
        raise LockError(f"{source}: root node {root!r} is missing; {fix}")
    return Lock(version=int(version), root=root, nodes=nodes)


def read(path: Path) -> Lock | None:
    """The lock next to a flake.nix, or None when the flake has none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LockError(f"{path}: cannot read: {err.strerror}") from None
    return parse(text, str(path))
