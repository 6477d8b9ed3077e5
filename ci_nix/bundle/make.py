"""Write an airgap bundle: the runtime closures of built attributes as a signed `file://` binary
cache, with manifest.json and DEPLOY.md (README "Bundles")."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_nix import __version__
from ci_nix import closure as closure_mod
from ci_nix.bundle import deploy
from ci_nix.bundle.key import SigningKey
from ci_nix.bundle.manifest import MANIFEST, SIGNATURE, Attribute, Manifest
from ci_nix.errors import CiNixError
from ci_nix.models import Job
from ci_nix.narinfo import hash_nix32, narinfo_name
from ci_nix.tools.nix import Nix, PathInfo

log = logging.getLogger(__name__)

CACHE_INFO = "nix-cache-info"


@dataclass(frozen=True)
class Previous:
    """The bundle a delta follows: its manifest and that manifest's sha256."""

    manifest: Manifest
    digest: str


@dataclass(frozen=True)
class Contents:
    """What goes into a bundle, worked out from the closures (no I/O)."""

    attributes: dict[str, Attribute]
    paths: tuple[str, ...]  # whose NARs the bundle holds
    requires: tuple[str, ...]  # referenced, already on the far side from earlier bundles
    closure: tuple[str, ...]  # every path the attributes need, in this bundle or before

    def nar_size(self, infos: Mapping[str, PathInfo], paths: Sequence[str]) -> int:
        return sum(infos[path].nar_size for path in paths)


def main_output(job: Job) -> str:
    """The output an attribute's manifest entry names: `out`, else its first."""
    outputs = dict(job.outputs)
    return outputs.get("out") or job.outputs[0][1]


def contents(jobs: Sequence[Job], infos: Mapping[str, PathInfo],
             previous: Manifest | None) -> Contents:
    """The attributes' entries and the paths to ship: all of their closures, or for a delta
    only what the previous bundle (with what it required) does not already provide."""
    attributes: dict[str, Attribute] = {}
    closure: set[str] = set()
    for job in jobs:
        found = closure_mod.of(infos, job.out_paths)
        closure |= {path for path, _ in found.paths}
        main = main_output(job)
        attributes[f"{job.flake}#{job.name}"] = Attribute(
            main, hash_nix32(infos[main].nar_hash), found.size)
    have = previous.available if previous is not None else frozenset()
    paths = sorted(closure - have)
    requires = sorted(closure - set(paths))  # all the far side must have from before
    return Contents(attributes, tuple(paths), tuple(requires), tuple(sorted(closure)))


def check_output(directory: Path) -> None:
    """Refuse before any work to write into a directory that holds something (a bundle is a
    whole; mixing two would ship paths no manifest lists), or one that cannot be made."""
    try:
        if directory.exists() and any(directory.iterdir()):
            raise CiNixError(f"--output {directory}: not empty; give a new or empty directory")
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CiNixError(f"--output {directory}: cannot create it ({err.strerror or err}); "
                         "choose a writable path") from None


def write(nix: Nix, jobs: Sequence[Job], directory: Path, key: SigningKey,
          previous: Previous | None) -> tuple[Manifest, Contents, dict[str, PathInfo]]:
    """Copy the jobs' runtime closures (or the delta) into directory, signed with key, and
    write manifest.json and DEPLOY.md. The outputs must be built."""
    roots = [path for job in jobs for _, path in job.outputs]
    infos = nix.path_infos(roots, recursive=True)
    missing = sorted(set(roots) - set(infos))
    if missing:
        raise CiNixError(f"{missing[0]} is not in the Nix store though it was built; "
                         "run again (was it garbage-collected meanwhile?)")
    found = contents(jobs, infos, previous.manifest if previous is not None else None)
    directory = directory.resolve()
    seeded = _seed(directory, found.requires, infos)
    try:
        with key.file() as key_file:
            # xz, as Nix defaults to; the URL names the key's private copy, never the key
            nix.copy_to(found.paths, f"file://{directory}?compression=xz&secret-key={key_file}",
                        recursive=False)
    finally:
        for path in seeded:
            with contextlib.suppress(OSError):
                path.unlink()
    cache_info = directory / CACHE_INFO
    if not cache_info.exists():  # nothing copied (an empty delta): still a binary cache
        cache_info.write_text("StoreDir: /nix/store\n")
    manifest = Manifest(found.attributes, found.paths, key.name,
                        previous.digest if previous is not None else None, __version__,
                        str(nix.version), found.requires)
    dumped = manifest.dump().encode()
    (directory / MANIFEST).write_bytes(dumped)
    (directory / SIGNATURE).write_text(key.sign(dumped) + "\n")
    (directory / deploy.STORE_PATHS).write_text("".join(f"{path}\n" for path in manifest.paths))
    (directory / deploy.DEPLOY).write_text(deploy.text(manifest, key.public))
    return manifest, found, infos


def _seed(directory: Path, requires: Sequence[str],
          infos: Mapping[str, PathInfo]) -> list[Path]:
    """Narinfos (without NARs) for the paths a delta leaves out: Nix adds a path to a binary
    cache only when its references are valid there. Removed again after the copy."""
    written = []
    for path in requires:
        info = infos[path]
        refs = " ".join(os.path.basename(ref) for ref in info.references)
        target = directory / narinfo_name(path)
        target.write_text(f"StorePath: {path}\nURL: nar/not-in-this-bundle.nar\n"
                          f"Compression: none\nNarHash: {hash_nix32(info.nar_hash)}\n"
                          f"NarSize: {info.nar_size}\nReferences: {refs}\n")
        written.append(target)
    return written
