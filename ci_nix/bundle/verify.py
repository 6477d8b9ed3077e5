"""`bundle --verify`: a bundle is what its manifest says, signed by the key, and complete.

Every path the manifest lists has a narinfo for exactly that path, signed by the key; its NAR
file is inside the bundle, is the size and hash the narinfo gives (FileHash, FileSize) and
decompresses to the NarSize bytes hashing to NarHash; every reference is in the bundle or in
the manifest's `requires` (a delta: what an earlier bundle carried). With the earlier
manifest at hand (`--since`), its digest must be the delta's `since` and it (or what it
requires) must provide every required path. Nothing in a bundle is trusted until checked:
it may have crossed an air gap on a USB stick.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ci_nix.bundle.deploy import STORE_PATHS
from ci_nix.bundle.make import CACHE_INFO
from ci_nix.bundle.manifest import MANIFEST, SIGNATURE, Manifest
from ci_nix.bundle.manifest import MAX_SIZE as MAX_MANIFEST
from ci_nix.errors import CiNixError
from ci_nix.narinfo import (
    MAX_SIZE,
    NarInfo,
    NarInfoError,
    PublicKey,
    Trust,
    hash_nix32,
    narinfo_name,
    nix32_encode,
)
from ci_nix.narinfo import parse as parse_narinfo
from ci_nix.tools import proc
from ci_nix.tools.files import open_regular, read_regular
from ci_nix.tools.nix import closure

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Verification:
    manifest: Manifest
    problems: dict[str, str]  # store path -> what is wrong with it (the first thing found)
    attributes: dict[str, list[str]]  # "<flake>#<attr>" -> what is wrong with it, [] when good
    general: list[str] = field(default_factory=list)  # wrong with the bundle as a whole

    @property
    def ok(self) -> bool:
        return not self.general and not any(self.attributes.values())


def check_directory(directory: Path) -> None:
    """CiNixError (exit 2) for a DIR that is not a binary cache at all."""
    if not directory.is_dir():
        raise CiNixError(f"--verify {directory}: not a directory; give the bundle's directory")
    if not (directory / CACHE_INFO).is_file():
        raise CiNixError(f"--verify {directory}: no {CACHE_INFO}, so not a bundle (a Nix "
                         "binary cache); give the directory `ci-nix bundle --output` wrote")
    # a named pipe (or device) would block reading it for good, past SIGTERM: a bundle that
    # crossed an air gap holds directories and files, nothing else
    for entry in directory.rglob("*"):
        if not (entry.is_dir() or entry.is_file()) and entry.exists():
            raise CiNixError(f"--verify {directory}: {entry.relative_to(directory)} is neither "
                             "a file nor a directory (a named pipe or a device?): not a bundle "
                             "ci-nix wrote")


def verify(directory: Path, manifest: Manifest, keys: Iterable[PublicKey],
           previous: Manifest | None = None, previous_digest: str | None = None) -> Verification:
    """Check every path of the bundle in directory (see the module docstring)."""
    trust = Trust(True, tuple(keys))
    root = directory.resolve()
    problems: dict[str, str] = {}
    references: dict[str, tuple[str, ...]] = {}
    available = manifest.available
    for path in manifest.paths:
        try:
            info = _narinfo(root, path)
            references[path] = tuple(f"/nix/store/{ref}" for ref in info.references)
            if trust.signer(info) is None:
                names = ", ".join(key.name for key in trust.keys) or "none given"
                raise _Bad(f"no valid signature by a trusted key ({names})")
            _check_nar(root, info)
            absent = [ref for ref in references[path] if ref not in available and ref != path]
            if absent:
                raise _Bad(f"refers to {absent[0]}, which is neither in the bundle nor in the "
                           "manifest's 'requires': the closure is incomplete")
        except _Bad as bad:
            problems[path] = str(bad)
    general = [*_signed(root, trust), *_listed(root, manifest),
               *_chain(manifest, previous, previous_digest)]
    attributes: dict[str, list[str]] = {}
    reached: set[str] = set()
    for name, attr in sorted(manifest.attributes.items()):
        found: list[str] = []
        if attr.store_path not in available:
            found.append(f"{attr.store_path} is not in the bundle")
        elif attr.store_path in references:
            main = _narinfo_or_none(root, attr.store_path)
            if main is not None and _same_hash(main.nar_hash, attr.nar_hash) is False:
                found.append(f"{attr.store_path}: manifest narHash {attr.nar_hash} is not the "
                             f"narinfo's {main.nar_hash}")
        # as far as this bundle holds it
        for path in sorted(closure([attr.store_path], lambda p: references.get(p, ()))):
            if path in problems:
                found.append(f"{path}: {problems[path]}")
        attributes[name] = found
        reached |= closure([attr.store_path], lambda p: references.get(p, ()))
    # a broken path no attribute reaches is still a broken bundle (the import copies it)
    general += [f"{path}: {problems[path]}" for path in sorted(set(problems) - reached)]
    return Verification(manifest, problems, attributes, general)


class _Bad(Exception):
    pass


def _narinfo(root: Path, path: str) -> NarInfo:
    file = root / narinfo_name(path)
    try:
        with open_regular(file) as handle:
            body = handle.read(MAX_SIZE + 1)  # parse() refuses anything larger
    except OSError as err:
        raise _Bad(f"no narinfo ({file.name}: {err.strerror or err})") from None
    except ValueError as err:
        raise _Bad(f"{file.name}: {err}") from None
    try:
        info = parse_narinfo(body)
    except NarInfoError as err:
        raise _Bad(f"{file.name}: {err}") from None
    if info.store_path != path:
        raise _Bad(f"{file.name} describes {info.store_path}, another path")
    return info


def _narinfo_or_none(root: Path, path: str) -> NarInfo | None:
    try:
        return _narinfo(root, path)
    except _Bad:
        return None


def _same_hash(a: str, b: str) -> bool | None:
    try:
        return bool(hash_nix32(a) == hash_nix32(b))
    except ValueError:
        return None


def _check_nar(root: Path, info: NarInfo) -> None:
    nar = Path(os.path.realpath(root / info.url))
    if not nar.is_relative_to(root) or nar == root:
        raise _Bad(f"URL {info.url} points outside the bundle")
    try:
        found = nar.stat()
    except OSError as err:
        raise _Bad(f"NAR {info.url} is missing ({err.strerror or err})") from None
    if not stat.S_ISREG(found.st_mode):  # a FIFO would hang the check (and zstd reading it)
        raise _Bad(f"NAR {info.url} is not a regular file")
    size = found.st_size
    if info.file_size is not None and size != info.file_size:
        raise _Bad(f"NAR {info.url} is {size} bytes, the narinfo says {info.file_size} "
                   "(truncated or replaced)")
    algo = hash_nix32(info.nar_hash).split(":", 1)[0]
    nar_hash = hashlib.new(algo)
    file_hash = hashlib.new(hash_nix32(info.file_hash).split(":", 1)[0]) if info.file_hash \
        else None
    nar_size = 0

    def take(data: bytes) -> None:
        nonlocal nar_size
        nar_hash.update(data)
        nar_size += len(data)
        if nar_size > info.nar_size:  # a decompression bomb is not unpacked to the end
            raise _Bad(f"NAR {info.url} unpacks to more than the narinfo's {info.nar_size} "
                       "bytes")

    try:
        _decompress(nar, info.compression, take, file_hash)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
        raise _Bad(f"NAR {info.url} does not decompress as {info.compression} ({err})") from None
    if file_hash is not None and info.file_hash is not None \
            and f"{file_hash.name}:{nix32_encode(file_hash.digest())}" \
            != hash_nix32(info.file_hash):
        raise _Bad(f"NAR {info.url} does not hash to the narinfo's FileHash")
    if nar_size != info.nar_size:
        raise _Bad(f"NAR {info.url} unpacks to {nar_size} bytes, the narinfo says "
                   f"{info.nar_size} (truncated?)")
    if f"{algo}:{nix32_encode(nar_hash.digest())}" != hash_nix32(info.nar_hash):
        raise _Bad(f"NAR {info.url} does not hash to its NarHash {info.nar_hash}")


def _decompress(file: Path, compression: str, take: Callable[[bytes], None],
                raw_hash: hashlib._Hash | None) -> None:
    """Stream file's decompressed bytes to take (and its raw bytes to raw_hash)."""
    if compression == "zstd":  # no zstd in Python before 3.14: the zstd tool streams it
        if raw_hash is not None:
            _feed(file, raw_hash.update, None)
        result = proc.chunks(["zstd", "-dc", "--", str(file)], take,
                             tool_hint="install zstd (apt-get install zstd)")
        if not result.ok:
            raise ValueError(result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                             else f"zstd exit {result.returncode}")
        return
    decompressors: dict[str, Callable[[], lzma.LZMADecompressor | bz2.BZ2Decompressor]] = {
        "xz": lzma.LZMADecompressor, "bzip2": bz2.BZ2Decompressor}
    if compression == "none":
        _feed(file, take, raw_hash)
        return
    if compression not in decompressors:
        raise ValueError(f"ci-nix cannot decompress {compression!r} (xz, zstd, bzip2, none)")
    unpack = decompressors[compression]()
    _feed(file, lambda data: take(unpack.decompress(data)), raw_hash)
    if not unpack.eof:
        raise EOFError("the compressed stream ends early")


def _feed(file: Path, take: Callable[[bytes], None], raw_hash: hashlib._Hash | None) -> None:
    with open_regular(file) as handle:
        while data := handle.read(_CHUNK):
            if raw_hash is not None:
                raw_hash.update(data)
            take(data)


def _signed(root: Path, trust: Trust) -> list[str]:
    """manifest.json is signed by the key, as the NARs are."""
    try:
        data = read_regular(root / MANIFEST, MAX_MANIFEST)
        sigs = read_regular(root / SIGNATURE, 4096).decode(errors="replace").split()
    except OSError as err:
        return [f"{SIGNATURE}: cannot read it ({err.strerror or err}): the manifest is "
                "unsigned"]
    except ValueError as err:
        return [f"{MANIFEST} or {SIGNATURE}: {err}: the manifest is unsigned"]
    if trust.signer_of(data, sigs) is None:
        return [f"{MANIFEST} is not signed by a trusted key (altered after signing?)"]
    return []


def _listed(root: Path, manifest: Manifest) -> list[str]:
    """store-paths (what the import command copies; unsigned) lists the manifest's paths."""
    try:
        listed = read_regular(root / STORE_PATHS, MAX_MANIFEST).decode(
            errors="replace").splitlines()
    except OSError as err:
        return [f"{STORE_PATHS}: cannot read it ({err.strerror or err}): DEPLOY.md's import "
                "command needs it"]
    except ValueError as err:
        return [f"{STORE_PATHS}: {err}: DEPLOY.md's import command needs a file"]
    if listed != list(manifest.paths):
        extra = sorted(set(listed) - set(manifest.paths))
        left = sorted(set(manifest.paths) - set(listed))
        what = (f"lists {extra[0]!r}, which the manifest does not" if extra else
                f"leaves out {left[0]}" if left else "lists the manifest's paths out of order "
                "or twice")
        return [f"{STORE_PATHS} is not the signed manifest's 'paths': it {what} (altered "
                "after signing?)"]
    return []


def _chain(manifest: Manifest, previous: Manifest | None, digest: str | None) -> list[str]:
    """The delta follows the previous manifest given, which provides what it requires."""
    if previous is None:
        return []
    if manifest.since is None:
        return ["--since was given, but this bundle is not a delta (its 'since' is null)"]
    if digest != manifest.since:
        return [f"the bundle follows the manifest with sha256 {manifest.since}, not the one "
                f"given (sha256 {digest})"]
    lacking = sorted(set(manifest.requires) - previous.available)
    if lacking:
        return [f"requires {lacking[0]} (and {len(lacking) - 1} more), which the previous "
                "bundle does not provide"]
    return []
