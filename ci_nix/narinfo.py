"""A binary cache's `<hash>.narinfo` answer, parsed and checked as strictly as Nix reads it.

An answer only says "cached" when it is a narinfo Nix would accept for exactly the store path
asked about: a cache (or a proxy in front of it) that answers 200 with an error page, a login
form or another path's narinfo must not turn an unbuilt attribute green. And Nix substitutes a
path only when, with `require-sigs` on (the default), one of its `Sig:` lines is a valid ed25519
signature over the path's fingerprint by a key in `trusted-public-keys` (Trust.accepts).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ci_nix.errors import CiNixError

MAX_SIZE = 1 << 20  # a narinfo is a few hundred bytes; its References line grows with the closure

_NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
_STORE_PATH = re.compile(rf"/nix/store/[{_NIX_BASE32}]{{32}}-[A-Za-z0-9+\-._?=]+")
_NAR_HASH = re.compile(rf"sha256:(?:[{_NIX_BASE32}]{{52}}|[0-9a-f]{{64}})"
                       r"|sha256-[A-Za-z0-9+/]{43}="
                       rf"|sha512:(?:[{_NIX_BASE32}]{{103}}|[0-9a-f]{{128}})"
                       r"|sha512-[A-Za-z0-9+/]{86}==")


def narinfo_name(store_path: str) -> str:
    """`/nix/store/<hash>-name` -> `<hash>.narinfo`."""
    return os.path.basename(store_path).split("-", 1)[0] + ".narinfo"


class NarInfoError(CiNixError):
    """The body is not a narinfo Nix would accept."""


@dataclass(frozen=True)
class NarInfo:
    store_path: str
    url: str  # of the (compressed) NAR, relative to the cache
    nar_hash: str
    nar_size: int
    references: tuple[str, ...] = ()  # store path names (<hash>-<name>), as the narinfo has them
    sigs: tuple[str, ...] = ()  # `Sig:` lines, `<key name>:<base64 signature>`
    file_size: int | None = None  # of the NAR file at url, when the narinfo says
    compression: str = "bzip2"  # of the file at url (Nix's default when the field is missing)
    file_hash: str | None = None  # of the file at url, when the narinfo says


def is_store_path(text: str) -> bool:
    return _STORE_PATH.fullmatch(text) is not None


def parse(body: bytes) -> NarInfo:
    """The narinfo in body; NarInfoError when it is not one (the message names the field)."""
    if len(body) > MAX_SIZE:
        raise NarInfoError(f"narinfo: {len(body)} bytes, more than a narinfo ever is")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NarInfoError("narinfo: not UTF-8 text") from None
    fields: dict[str, str] = {}
    sigs: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.isascii() or not key.isalnum():
            raise NarInfoError(f"narinfo: line {number} is not 'Key: value'")
        value = value.removeprefix(" ")
        if key == "Sig":
            sigs.append(value)  # one line per signature
        else:
            fields[key] = value  # a repeated field: the last one counts, as in Nix
    store_path = fields.get("StorePath")
    if store_path is None or not is_store_path(store_path):
        raise NarInfoError("narinfo: no StorePath (or not a store path)")
    url = fields.get("URL", "")
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        raise NarInfoError("narinfo: no URL")
    nar_hash = fields.get("NarHash", "")
    if _NAR_HASH.fullmatch(nar_hash) is None:
        raise NarInfoError("narinfo: no NarHash, or not a sha256/sha512 hash")
    size = _positive(fields.get("NarSize", ""), "NarSize")  # Nix rejects a zero size
    file_size = _positive(fields["FileSize"], "FileSize") if "FileSize" in fields else None
    references = tuple(fields.get("References", "").split())
    if any(not _STORE_PATH.fullmatch(f"/nix/store/{ref}") for ref in references):
        raise NarInfoError("narinfo: References holds something that is not a store path name")
    file_hash = fields.get("FileHash")
    if file_hash is not None and _NAR_HASH.fullmatch(file_hash) is None:
        raise NarInfoError("narinfo: FileHash is not a sha256/sha512 hash")
    return NarInfo(store_path, url, nar_hash, size, references, tuple(sigs), file_size,
                   fields.get("Compression") or "bzip2", file_hash)


def _positive(text: str, field: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        raise NarInfoError(f"narinfo: {field} is not a positive number")
    return int(text)


def describes(body: bytes, store_path: str) -> bool:
    """Whether body is a valid narinfo for exactly store_path."""
    try:
        return parse(body).store_path == store_path
    except NarInfoError:
        return False


# --- signatures ---------------------------------------------------------------------------------

_HASH_BYTES = {"sha256": 32, "sha512": 64}
_NIX32_LENGTH = {algo: (size * 8 - 1) // 5 + 1 for algo, size in _HASH_BYTES.items()}
_NIX32_DIGITS = frozenset(_NIX_BASE32)
# the first digit holds the bits past the hash's end, which must be zero
_NIX32_TOP = {algo: 1 << (size * 8 - (_NIX32_LENGTH[algo] - 1) * 5)
              for algo, size in _HASH_BYTES.items()}


def nix32_encode(data: bytes) -> str:
    """Nix's base32 (its own alphabet, least significant digit last), as in store paths."""
    if not data:
        return ""
    out = []
    for n in range((len(data) * 8 - 1) // 5, -1, -1):
        bit, i = n * 5, n * 5 // 8
        j = bit % 8
        c = data[i] >> j | (data[i + 1] << (8 - j) if i + 1 < len(data) else 0)
        out.append(_NIX_BASE32[c & 0x1F])
    return "".join(out)


def nix32_decode(text: str, size: int) -> bytes:
    """The `size` bytes text encodes in Nix's base32; ValueError when it encodes no such bytes."""
    if len(text) != (size * 8 - 1) // 5 + 1:
        raise ValueError(f"{len(text)} base32 digits do not make {size} bytes")
    out = bytearray(size)
    for n, char in enumerate(reversed(text)):
        digit = _NIX_BASE32.find(char)
        if digit < 0:
            raise ValueError(f"{char!r} is not a Nix base32 digit")
        bit = n * 5
        i, j = bit // 8, bit % 8
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if i + 1 < size:
            out[i + 1] |= carry
        elif carry:
            raise ValueError("base32 digits beyond the hash")
    return bytes(out)


def hash_nix32(nar_hash: str) -> str:
    """A NarHash in any form Nix writes (base32, hex, SRI) as `<algo>:<base32>`, the form a
    narinfo's fingerprint uses."""
    algo, sep, digest = nar_hash.partition(":")
    if (sep and len(digest) == _NIX32_LENGTH.get(algo) and not set(digest) - _NIX32_DIGITS
            and _NIX_BASE32.index(digest[0]) < _NIX32_TOP[algo]):
        return nar_hash  # already so (what Nix writes): no need to decode it
    if "-" in nar_hash and ":" not in nar_hash:  # SRI: sha256-<base64>
        algo, _, digest = nar_hash.partition("-")
        raw = base64.b64decode(digest, validate=True)
    else:
        algo, _, digest = nar_hash.partition(":")
        size = _HASH_BYTES.get(algo, 0)
        raw = bytes.fromhex(digest) if len(digest) == 2 * size else nix32_decode(digest, size)
    if len(raw) != _HASH_BYTES.get(algo, -1):
        raise ValueError(f"not a sha256/sha512 hash: {nar_hash!r}")
    return f"{algo}:{nix32_encode(raw)}"


def fingerprint(info: NarInfo) -> str:
    """What a narinfo's signatures sign, as Nix computes it (ValidPathInfo::fingerprint):
    `1;<store path>;<NarHash as sha256:base32>;<NarSize>;<references as store paths, sorted,
    comma-separated>`."""
    store_dir = info.store_path.rsplit("/", 1)[0]
    references = ",".join(f"{store_dir}/{ref}" for ref in sorted(set(info.references)))
    return f"1;{info.store_path};{hash_nix32(info.nar_hash)};{info.nar_size};{references}"


@dataclass(frozen=True)
class PublicKey:
    name: str
    key: bytes  # 32 bytes of ed25519 public key


def _named(text: str, what: str) -> tuple[str, bytes]:
    name, sep, payload = text.strip().partition(":")
    if not sep or not name or not payload:
        raise NarInfoError(f"{what}: expected NAME:BASE64")
    try:
        return name, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise NarInfoError(f"{what} {name}: not base64") from None


def parse_public_key(text: str) -> PublicKey:
    """A public key as `trusted-public-keys` lists it (`name:<base64 of 32 bytes>`)."""
    name, key = _named(text, "public key")
    if len(key) != 32:
        raise NarInfoError(f"public key {name}: {len(key)} bytes, not an ed25519 key's 32")
    return PublicKey(name, key)


def public_key_of_secret(text: str) -> PublicKey:
    """The public half of a Nix secret key (`name:<base64 of seed and public key, 64 bytes>`),
    as Nix trusts the keys of its `secret-key-files`."""
    name, key = _named(text, "secret key")
    if len(key) != 64:
        raise NarInfoError(f"secret key {name}: {len(key)} bytes, not an ed25519 key's 64")
    return PublicKey(name, key[32:])


def signed_by(info: NarInfo, keys: Iterable[PublicKey]) -> PublicKey | None:
    """The trusted key one of the narinfo's signatures verifies with, or None (as Nix's
    verifyDetached: the signature's key name picks the key; a malformed one counts for
    nothing)."""
    return Trust(True, tuple(keys)).signer(info)


@dataclass(frozen=True)
class Trust:
    """What Nix requires of a narinfo before it substitutes the path (its settings)."""

    require_sigs: bool
    keys: tuple[PublicKey, ...] = ()

    def accepts(self, info: NarInfo) -> bool:
        return not self.require_sigs or self.signer(info) is not None

    def signer(self, info: NarInfo) -> PublicKey | None:
        """The key that signed info, among these (see signed_by)."""
        try:
            message = fingerprint(info).encode()
        except ValueError:
            return None
        return self.signer_of(message, info.sigs)

    def signer_of(self, message: bytes, sigs: Iterable[str]) -> PublicKey | None:
        """The key, among these, of one of the `<key name>:<base64>` detached signatures that
        verifies over message (Nix's verifyDetached)."""
        for sig in sigs:
            name, _, payload = sig.partition(":")
            found = self._verifiers.get(name)
            if found is None or not payload:
                continue
            key, verifier = found
            try:
                signature = base64.b64decode(payload, validate=True)
                if len(signature) == 64:
                    verifier.verify(signature, message)
                    return key
            except (binascii.Error, ValueError, InvalidSignature):
                continue
        return None

    @functools.cached_property
    def _verifiers(self) -> dict[str, tuple[PublicKey, Ed25519PublicKey]]:
        # made once: thousands of narinfos are checked against the same few keys
        verifiers: dict[str, tuple[PublicKey, Ed25519PublicKey]] = {}
        for key in self.keys:  # two keys of one name: the first counts, as in Nix
            verifiers.setdefault(key.name, (key, Ed25519PublicKey.from_public_bytes(key.key)))
        return verifiers
