"""The configured cache: one backend per cache.type (attic, cachix, `nix copy`) behind one
protocol, and the `Cache` that ci-nix.yaml and the environment's token make of it."""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ci_nix.bundle import key as key_mod
from ci_nix.cache.client import display_url
from ci_nix.cache.retry import RetryPolicy
from ci_nix.config import CacheConfig, CacheType, Push
from ci_nix.errors import ConfigError
from ci_nix.mask import add_secret, secret_from_env
from ci_nix.tools import proc
from ci_nix.tools.attic import Attic
from ci_nix.tools.cachix import Cachix
from ci_nix.tools.nix import Nix

log = logging.getLogger(__name__)


class Backend(Protocol):
    """One kind of cache (cache.type): what it needs, how to name it, ask it and push to it."""

    needs: tuple[tuple[str, str], ...]  # (cache.KEY, what it is) the backend cannot do without
    uses_token: bool  # pushes authenticate with cache.token-env's secret

    def target(self, config: CacheConfig) -> str:
        """Where pushes go, for messages."""

    def substituter(self, config: CacheConfig) -> str | None:
        """Where to look for narinfos when `cache.substituter` is not set."""

    def push(self, cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
             environ: Mapping[str, str], timeout: float) -> proc.Result:
        """One push attempt."""


class _Attic:
    needs: tuple[tuple[str, str], ...] = (
        ("server", "the attic endpoint"), ("name", "the cache to push to"))
    uses_token: bool = True

    def target(self, config: CacheConfig) -> str:
        return f"attic {display_url(config.server or '')} cache {config.name}"

    def substituter(self, config: CacheConfig) -> str | None:
        if config.server and config.name:
            return f"{config.server.rstrip('/')}/{config.name}"
        return None

    def push(self, cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
             environ: Mapping[str, str], timeout: float) -> proc.Result:
        config = cache.config
        assert config.server and config.name
        return Attic.from_env(environ).push(config.server, config.name, cache.token, paths,
                                            closure=mode == Push.CLOSURE, timeout=timeout)


class _Cachix:
    needs: tuple[tuple[str, str], ...] = (("name", "the cache to push to"),)
    uses_token: bool = True

    def target(self, config: CacheConfig) -> str:
        return f"cachix {config.name}"

    def substituter(self, config: CacheConfig) -> str | None:
        return f"https://{config.name}.cachix.org" if config.name else None

    def push(self, cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
             environ: Mapping[str, str], timeout: float) -> proc.Result:
        assert cache.config.name
        if mode == Push.OUTPUTS:
            log.info("cachix always pushes the closure (it has no outputs-only mode)")
        return Cachix.from_env(environ).push(cache.config.name, cache.token, paths,
                                             timeout=timeout)


class _NixCopy:
    needs: tuple[tuple[str, str], ...] = (("server", "the store URL"),)
    uses_token: bool = False

    def target(self, config: CacheConfig) -> str:
        return display_url(config.server or "")

    def substituter(self, config: CacheConfig) -> str | None:
        if config.server and urllib.parse.urlsplit(config.server).scheme in (
                "http", "https", "file"):
            return config.server.split("?", 1)[0]
        return None

    def push(self, cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
             environ: Mapping[str, str], timeout: float) -> proc.Result:
        return _nix_copy(nix, cache, paths, timeout)


BACKENDS: Mapping[CacheType, Backend] = {
    CacheType.ATTIC: _Attic(), CacheType.CACHIX: _Cachix(), CacheType.NIX: _NixCopy()}


@dataclass(frozen=True)
class Cache:
    """A configured binary cache with its secret resolved from the environment."""

    config: CacheConfig
    token: str | None
    substituter: str | None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # the workspace's repos: a cache.secret-key-file below one is read without links
    checkouts: tuple[Path, ...] = ()

    @property
    def backend(self) -> Backend:
        assert self.config.type is not None  # open_cache makes a Cache only for a cache.type
        return BACKENDS[self.config.type]

    @property
    def target(self) -> str:
        """Where pushes go, for messages."""
        return self.backend.target(self.config)

    @property
    def query_token(self) -> str | None:
        """The token to send with narinfo queries: only to the origin the cache's own
        substituter has (attic's server, NAME.cachix.org, nix's http(s) store), never to another
        host that cache.substituter names (a public cache, a mirror)."""
        own = self.backend.substituter(self.config)
        if self.token is None or self.substituter is None or own is None:
            return None
        return self.token if _origin(self.substituter) == _origin(own) else None


def _origin(url: str) -> tuple[str, str, int | None]:
    """scheme, host and port of a URL, as a browser compares origins."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def default_substituter(config: CacheConfig) -> str | None:
    """Where to look for narinfos when `cache.substituter` is not set."""
    if config.substituter:
        return config.substituter
    return BACKENDS[config.type].substituter(config) if config.type is not None else None


def open_cache(config: CacheConfig, environ: Mapping[str, str] = os.environ,
               checkouts: Sequence[Path] = (), *, pushing: bool = False) -> Cache | None:
    """The workspace's cache, or None when ci-nix.yaml configures none. `pushing`: this run
    will push, so a signing key a pull request could redirect stops it here (ConfigError),
    before anything is evaluated or built."""
    if config.type is None:
        return None
    for key, what in BACKENDS[config.type].needs:
        if not getattr(config, key):
            raise ConfigError(f"cache.type {config.type} needs cache.{key} ({what})")
    for key, url in (("cache.server", config.server), ("cache.substituter", config.substituter)):
        if url:
            _check_url(key, url)
    if pushing and config.type is CacheType.NIX:
        if config.secret_key_file:
            key_mod.check_setting(config.secret_key_file, checkouts, _INSTEAD)
        for named in key_mod.store_key_files(config.server or ""):  # file:///c?secret-key=…
            key_mod.check_setting(named, checkouts, _INSTEAD, "cache.server's secret-key")
    token = secret_from_env(environ, config.token_env) if config.token_env else None
    return Cache(config, token or None, default_substituter(config), RetryPolicy.from_env(environ),
                 tuple(checkouts))


_INSTEAD = "or run with --no-push"


def _check_url(key: str, url: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range
        # https://user:secret@host/ goes into `nix copy --to` argv: never into a log line
        add_secret(parts.password and urllib.parse.unquote(parts.password))
        add_secret(parts.password)
    except ValueError as err:
        # The URL itself may hold credentials: only the key and the problem are named.
        raise ConfigError(f"{key}: not a valid URL ({err}); e.g. https://cache.example.com:8443"
                          ) from None



def _signs_on_upload(server: str) -> bool:
    """Binary cache stores sign what they receive with their `secret-key` setting; other
    stores (ssh://, local) keep the signatures the paths carry."""
    return urllib.parse.urlsplit(server).scheme in ("http", "https", "file", "s3")


def _nix_copy(nix: Nix, cache: Cache, paths: Sequence[str], timeout: float) -> proc.Result:
    config = cache.config
    assert config.server
    # Key files are read here, not by Nix: Nix follows links, and a pull request decides the
    # checkouts' files (ConfigError: the push fails, the build results stand). Nix gets private
    # copies: of cache.secret-key-file, and of the server URL's own secret-key= (checked when
    # the run started too, but a link made since would be followed).
    with key_mod.private_store_url(config.server, cache.checkouts, _INSTEAD,
                                   "cache.server's secret-key") as server:
        if not config.secret_key_file:
            return nix.run(["copy", "--to", server, *paths], timeout=timeout)
        signing = key_mod.from_setting(config.secret_key_file, cache.checkouts, _INSTEAD)
        with signing.file() as key_file:
            if _signs_on_upload(server):  # the store signs what it receives with secret-key=
                sep = "&" if "?" in server else "?"
                server += f"{sep}secret-key={urllib.parse.quote(str(key_file))}"
            else:
                nix.check(["store", "sign", "--key-file", str(key_file), "--recursive", *paths],
                          "signing the paths to push")
            return nix.run(["copy", "--to", server, *paths], timeout=timeout)
