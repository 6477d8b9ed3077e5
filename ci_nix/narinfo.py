"""A binary cache's `<hash>.narinfo` answer, parsed and checked as strictly as Nix reads it.

An answer only says "cached" when it is a narinfo Nix would accept for exactly the store path
asked about: a cache (or a proxy in front of it) that answers 200 with an error page, a login
form or another path's narinfo must not turn an unbuilt attribute green.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

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
    url: str
    nar_hash: str
    nar_size: int
    references: tuple[str, ...] = ()


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
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.isascii() or not key.isalnum():
            raise NarInfoError(f"narinfo: line {number} is not 'Key: value'")
        fields.setdefault(key, value.removeprefix(" "))
    store_path = fields.get("StorePath")
    if store_path is None or not is_store_path(store_path):
        raise NarInfoError("narinfo: no StorePath (or not a store path)")
    url = fields.get("URL", "")
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        raise NarInfoError("narinfo: no URL")
    nar_hash = fields.get("NarHash", "")
    if _NAR_HASH.fullmatch(nar_hash) is None:
        raise NarInfoError("narinfo: no NarHash, or not a sha256/sha512 hash")
    size = fields.get("NarSize", "")
    if not (size.isascii() and size.isdigit()) or int(size) == 0:  # Nix rejects a zero size
        raise NarInfoError("narinfo: NarSize is not a positive number")
    references = tuple(fields.get("References", "").split())
    if any(not _STORE_PATH.fullmatch(f"/nix/store/{ref}") for ref in references):
        raise NarInfoError("narinfo: References holds something that is not a store path name")
    return NarInfo(store_path, url, nar_hash, int(size), references)


def describes(body: bytes, store_path: str) -> bool:
    """Whether body is a valid narinfo for exactly store_path."""
    try:
        return parse(body).store_path == store_path
    except NarInfoError:
        return False
