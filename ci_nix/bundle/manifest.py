"""A bundle's manifest.json: what it holds, for whom, signed by which key (README "Bundles").

`requires` is ci-nix's addition to the contract's shape: the store paths of the attributes'
closures that a delta bundle leaves out, because the bundle named by `since` (or one before it)
carries them. A full bundle requires nothing; the closure of a bundle is complete when every
reference of its paths, and every attribute's store path, is in `paths` or `requires`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_nix.errors import CiNixError
from ci_nix.narinfo import is_store_path
from ci_nix.tools.files import read_given, read_regular

MANIFEST = "manifest.json"
# the signing key's detached signature over manifest.json's bytes: the attributes' store paths,
# `since` and `requires` are vouched for like the NARs
SIGNATURE = "manifest.json.sig"
MAX_SIZE = 256 << 20  # a manifest lists store paths: even a fleet's is a few MiB


class ManifestError(CiNixError):
    """A manifest.json that cannot be read or is not one ci-nix wrote."""


@dataclass(frozen=True)
class Attribute:
    store_path: str  # the attribute's main output
    nar_hash: str
    closure_size: int  # NAR bytes of its whole runtime closure


@dataclass(frozen=True)
class Manifest:
    attributes: Mapping[str, Attribute]  # "<flake>#<attr>" -> its output
    paths: tuple[str, ...]  # store paths whose NARs are in the bundle, sorted
    key: str  # the signing key's name
    since: str | None  # sha256 of the previous bundle's manifest.json (a delta), else None
    ci_nix: str
    nix: str
    requires: tuple[str, ...] = ()  # referenced, but in an earlier bundle (see module doc)

    def dump(self) -> str:
        return json.dumps({
            "attributes": {name: {"storePath": a.store_path, "narHash": a.nar_hash,
                                  "closureSize": a.closure_size}
                           for name, a in sorted(self.attributes.items())},
            "paths": list(self.paths), "key": self.key, "since": self.since,
            "ciNix": self.ci_nix, "nix": self.nix, "requires": list(self.requires),
        }, indent=2) + "\n"

    @property
    def available(self) -> frozenset[str]:
        """What the far side has once this bundle (and those it requires) are imported."""
        return frozenset(self.paths) | frozenset(self.requires)


def digest(data: bytes) -> str:
    """How `since` names a manifest: the sha256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def read(path: Path) -> tuple[Manifest, str]:
    """The manifest at path (a manifest.json or the bundle directory holding one) and its
    digest; ManifestError naming the file and what is wrong. A file named directly is the
    operator's (a symlink followed, a pipe such as `<(curl …)` read); one in a bundle directory
    is the bundle's, outside data: a regular file, never a symlink out of it or a FIFO."""
    inside = path.is_dir()
    if inside:
        path = path / MANIFEST
    try:
        data = read_regular(path, MAX_SIZE) if inside else read_given(path, MAX_SIZE)
    except OSError as err:
        raise ManifestError(f"{path}: cannot read the manifest ({err.strerror or err}); "
                            "give the manifest.json of a bundle ci-nix wrote") from None
    except ValueError as err:
        raise ManifestError(f"{path}: {err}, not a bundle manifest") from None
    try:
        return parse(json.loads(data)), digest(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # '[[[[…': no manifest
        raise ManifestError(f"{path}: not a bundle manifest: {err}") from None


def parse(data: Any) -> Manifest:
    """A manifest from its JSON value; ValueError naming the first field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise ValueError("'attributes' is not an object")
    parsed: dict[str, Attribute] = {}
    for name, entry in attributes.items():
        if not isinstance(entry, dict) or not is_store_path(str(entry.get("storePath"))) \
                or not isinstance(entry.get("narHash"), str) \
                or not isinstance(entry.get("closureSize"), int):
            raise ValueError(f"attribute {name!r}: needs storePath, narHash and closureSize")
        parsed[name] = Attribute(entry["storePath"], entry["narHash"], entry["closureSize"])
    paths = _store_paths(data, "paths")
    requires = _store_paths(data, "requires") if "requires" in data else ()
    key, since = data.get("key"), data.get("since")
    if not isinstance(key, str) or not key:
        raise ValueError("'key' is not a key name")
    if since is not None and not (isinstance(since, str) and len(since) == 64
                                  and all(c in "0123456789abcdef" for c in since)):
        raise ValueError("'since' is neither null nor a sha256 digest")
    return Manifest(parsed, paths, key, since, str(data.get("ciNix", "")),
                    str(data.get("nix", "")), requires)


def _store_paths(data: dict[str, Any], field: str) -> tuple[str, ...]:
    value = data.get(field)
    if not isinstance(value, list) or not all(isinstance(p, str) and is_store_path(p)
                                              for p in value):
        raise ValueError(f"'{field}' is not a list of store paths")
    return tuple(value)
