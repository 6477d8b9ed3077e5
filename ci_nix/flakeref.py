"""Flake reference syntax: the one place that writes (and splits) flake URLs.

`type:owner/repo` shorthands, `type+transport://` URLs, the `?dir=`/`?host=`/`?ref=`/`?rev=`
query, and a lock node's `locked`/`original` attribute set as a typed `FlakeRef`. Which
repository a reference names, and its forge links, is source.py's business; it reads URLs with
this module's rules.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# `type:owner/repo` shorthands (their default hosts are in source.py).
SHORTHAND_TYPES = ("github", "gitlab", "sourcehut")
# Lock types whose reference is a URL, written `type+transport://…` in a flake URL.
URL_TYPES = ("git", "hg", "tarball", "file")

_TYPED = re.compile(r"^[\w.-]+\+[\w.-]+:")
_HAS_SCHEME = re.compile(r"^[\w.-]+://")


def typed_url(type_: str, url: str) -> str:
    """A lock's `url` with the flake-URL prefix its type implies: `git` + `https://h/r` ->
    `git+https://h/r` (already prefixed, scp-form and plain paths as they are)."""
    if _TYPED.match(url) or not _HAS_SCHEME.match(url):
        return url
    return f"{type_}+{url}"


def with_query(url: str, params: Mapping[str, str | None]) -> str:
    """url with the parameters that have a value appended to its query."""
    pairs = [f"{key}={value}" for key, value in params.items() if value]
    return url + (("&" if "?" in url else "?") + "&".join(pairs) if pairs else "")


def query_dir(query: str) -> str:
    """The `dir=` of a flake URL's query: the flake's subdirectory, "" for the root."""
    return urllib.parse.parse_qs(query).get("dir", [""])[0].strip("/")


def checkout(path: Path, subdir: str, rev: str | None = None, shallow: bool = False) -> str:
    """The reference Nix evaluates for a flake in a git checkout: tracked files only (with
    rev: that commit of it, not the work tree; shallow: the checkout is a shallow clone). A
    percent-encoded path (a space, a non-ASCII character) is read as any other by Nix 2.10+
    (NixOS/nix#6614); Nix.flake_ref gives older Nix tools.nix.for_old_nix's, which reads the
    last commit (inputs.check_readable refuses uncommitted changes there)."""
    quoted = urllib.parse.quote(str(path.resolve()))
    params = []
    if rev is not None:
        params.append(f"rev={rev}")
    if shallow:
        # Nix 2.8 refuses a shallow clone ("a non-shallow repository is needed") unless told;
        # later versions read it either way. The flake then has no revCount.
        params.append("shallow=1")
    if subdir:
        params.append(f"dir={urllib.parse.quote(subdir)}")
    return f"git+file://{quoted}" + (f"?{'&'.join(params)}" if params else "")


@dataclass(frozen=True)
class Checkout:
    """A `git+file` reference (checkout's, or an override's) as Nix reads it: the checkout's
    path (percent-decoded) and the query's parameters."""

    path: str
    query: dict[str, list[str]]

    @property
    def rev(self) -> str | None:
        """The commit `rev=` pins, read as a clean checkout at it; None: the checkout."""
        return self.query["rev"][0] if "rev" in self.query else None

    @property
    def work_tree(self) -> bool:
        """Whether Nix reads the checkout's work tree (not a rev= nor a ref=HEAD: a commit)."""
        return self.rev is None and self.query.get("ref") != ["HEAD"]


def read_checkout(ref: str) -> Checkout | None:
    """A `git+file` flake reference split; None for any other."""
    parsed = urllib.parse.urlsplit(ref)
    if parsed.scheme != "git+file":
        return None
    return Checkout(urllib.parse.unquote(parsed.path), urllib.parse.parse_qs(parsed.query))


def pinned(ref: str) -> bool:
    """Whether a flake reference pins what it names (a `rev=` or `narHash=`)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(ref).query)
    return "rev" in query or "narHash" in query


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FlakeRef:
    """A node's `locked` or `original` attribute set: the fields ci-nix reads, typed.

    Values of the wrong JSON type are dropped (None) rather than trusted: the lock is outside data.
    """

    type: str = ""
    owner: str | None = None  # github / gitlab / sourcehut
    repo: str | None = None
    host: str | None = None
    url: str | None = None  # git / hg / tarball / file
    path: str | None = None  # path
    id: str | None = None  # indirect (a registry name)
    rev: str | None = None
    ref: str | None = None
    nar_hash: str | None = None
    last_modified: int | None = None
    dir: str | None = None
    submodules: bool = False  # a git input fetched with its submodules

    @classmethod
    def from_json(cls, data: object) -> FlakeRef:
        if not isinstance(data, Mapping):
            return cls()
        modified = data.get("lastModified")
        return cls(type=_str(data.get("type")) or "", owner=_str(data.get("owner")),
                   repo=_str(data.get("repo")), host=_str(data.get("host")),
                   url=_str(data.get("url")), path=_str(data.get("path")),
                   id=_str(data.get("id")), rev=_str(data.get("rev")), ref=_str(data.get("ref")),
                   nar_hash=_str(data.get("narHash")),
                   last_modified=modified if type(modified) is int else None,
                   dir=_str(data.get("dir")), submodules=data.get("submodules") is True)

    def __bool__(self) -> bool:
        return bool(self.type)

    @property
    def display(self) -> str:
        """The reference as a flake URL-ish string, for messages."""
        if self.type in SHORTHAND_TYPES and self.owner and self.repo:
            host = f"?host={self.host}" if self.host else ""
            return f"{self.type}:{self.owner}/{self.repo}{host}"
        if self.type == "indirect" and self.id:
            return f"flake:{self.id}"
        if self.type == "path" and self.path:
            return f"path:{self.path}"
        if self.url:
            return self.url if self.type in ("tarball", "file") else f"{self.type}+{self.url}"
        return self.type

    def locked_url(self) -> str | None:
        """This (locked) reference as a flake URL pinning the same revision, for
        --override-input; None when a URL cannot say it (e.g. an indirect reference)."""
        if self.type in SHORTHAND_TYPES and self.owner and self.repo:
            path = f"{self.type}:{self.owner}/{self.repo}" + (f"/{self.rev}" if self.rev else "")
            return with_query(path, {"host": self.host, "dir": self.dir})
        if self.type in ("git", "hg") and self.url:
            return with_query(typed_url(self.type, self.url),
                              {"ref": self.ref, "rev": self.rev, "dir": self.dir})
        if self.type in ("tarball", "file") and self.url:
            return typed_url(self.type, self.url)
        if self.type == "path" and self.path:
            return f"path:{self.path}"
        return None
