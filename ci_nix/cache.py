"""The binary cache: which outputs it already has (narinfo queries), and pushing what is new.

Backends: attic (`attic push`), cachix (`cachix push`) and nix (`nix copy --to URL`). Transient
trouble (timeouts, 5xx, dropped connections, their equivalents in the clients' error texts) is
retried with exponential backoff and jitter; a push that still fails becomes a JUnit case under
classname `ci-nix.cache` that fails the run only with `cache.required: true`.
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import tenacity

from ci_nix import narinfo
from ci_nix.config import CacheConfig, CacheType, Push
from ci_nix.errors import Cancelled, ConfigError, ToolError
from ci_nix.mask import add_secret, mask, secret_from_env
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.plan import Plan
from ci_nix.tools import proc
from ci_nix.tools.attic import Attic
from ci_nix.tools.cachix import Cachix
from ci_nix.tools.nix import Nix, last_error_line
from ci_nix.words import count

log = logging.getLogger(__name__)

CACHE_CLASSNAME = "ci-nix.cache"  # README "Binary cache": cache push problems
CACHED = "cached"  # skip reason of an attribute whose outputs are all in the cache
QUERY_WORKERS = 8  # narinfo requests in flight at once
_T = TypeVar("_T")


class TransientError(Exception):
    """Worth another try: the network or the server, not the request."""


class PushError(Exception):
    """A push attempt failed; `transient` says whether retrying can help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for cache traffic; CI_NIX_CACHE_RETRY_{ATTEMPTS,BASE,TOTAL}, CI_NIX_CACHE_TIMEOUT
    and CI_NIX_CACHE_PUSH_TIMEOUT (seconds) tune it, e.g. to make tests wait milliseconds."""

    attempts: int = 4
    base: float = 2.0  # first wait, doubled each retry, with full jitter
    max_wait: float = 60.0
    total: float = 1800.0  # bound on one push or query batch, waits and attempts included
    timeout: float = 30.0  # one narinfo request
    # One push attempt: big closures take a while, but a cache that stopped answering must not
    # use up the whole budget in the first attempt.
    push_timeout: float = 600.0
    # How to wait between attempts: proc.sleep ends at once on cancellation; tests record.
    sleep: Callable[[float], None] = field(default=proc.sleep, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RetryPolicy:
        default = cls()

        def number(name: str, value: float) -> float:
            text = environ.get(name)
            if not text:
                return value
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            # inf, nan or a negative timeout would fail deep inside the socket or the retry loop
            if not math.isfinite(number) or number < 0 or (number == 0 and "TIMEOUT" in name):
                raise ConfigError(f"{name}={text!r}: expected a positive number, e.g. {value:g}"
                                  ) from None
            return number

        return cls(attempts=max(1, int(number("CI_NIX_CACHE_RETRY_ATTEMPTS", default.attempts))),
                   base=number("CI_NIX_CACHE_RETRY_BASE", default.base),
                   max_wait=default.max_wait,
                   total=number("CI_NIX_CACHE_RETRY_TOTAL", default.total),
                   timeout=number("CI_NIX_CACHE_TIMEOUT", default.timeout),
                   push_timeout=number("CI_NIX_CACHE_PUSH_TIMEOUT", default.push_timeout))

    def call(self, what: str, attempt: Callable[[float], _T],
             transient: Callable[[BaseException], bool]) -> _T:
        """Run attempt(seconds left) until it succeeds, fails for good, or the budget is spent."""
        start = time.monotonic()

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1fs", what,
                        state.attempt_number, self.attempts, mask(str(error))[:300],
                        state.upcoming_sleep)

        # A cancelled run does not retry, and its waits end at once (proc.sleep raises).
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.total),
            wait=tenacity.wait_random_exponential(multiplier=self.base, max=self.max_wait),
            retry=tenacity.retry_if_exception(
                lambda err: transient(err) and proc.cancelled() is None),
            before_sleep=log_retry, sleep=self.sleep, reraise=True)
        return retrying(lambda: attempt(max(1.0, self.total - (time.monotonic() - start))))


# --- which outputs the cache has -------------------------------------------------------------

def narinfo_name(store_path: str) -> str:
    """`/nix/store/<hash>-name` -> `<hash>.narinfo`."""
    return os.path.basename(store_path).split("-", 1)[0] + ".narinfo"


def display_url(url: str) -> str:
    """A URL fit for logs: no credentials, no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Query:
    """What the cache said about a batch of store paths."""

    cached: frozenset[str]
    error: str | None = None  # the cache could not be asked; nothing is taken as cached


class _HttpCache:
    """GET `<substituter>/<hash>.narinfo` with one keep-alive connection per worker thread."""

    def __init__(self, url: str, token: str | None, policy: RetryPolicy) -> None:
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.prefix = parts.path.rstrip("/")
        self.headers = {"User-Agent": "ci-nix"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.policy = policy
        self.local = threading.local()
        self.lock = threading.Lock()
        self.connections: list[http.client.HTTPConnection] = []
        # The socket timeout bounds each recv, not a request: a server that drips a byte now
        # and then would hold a request forever. A watchdog cuts requests past their deadline.
        self.deadlines: dict[http.client.HTTPConnection, float] = {}
        self.expired: set[http.client.HTTPConnection] = set()
        self.closed = threading.Event()
        threading.Thread(target=self._watchdog, daemon=True, name="ci-nix-cache-watchdog").start()

    def _watchdog(self) -> None:
        while not self.closed.wait(min(0.5, self.policy.timeout / 4)):
            now = time.monotonic()
            with self.lock:
                late = [conn for conn, deadline in self.deadlines.items() if now > deadline]
                self.expired.update(late)
            for conn in late:
                _shutdown(conn)

    def connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.policy.timeout)
            self.local.conn = conn
            with self.lock:
                self.connections.append(conn)
        return conn

    def once(self, path: str) -> bool:
        conn = self.connection()
        with self.lock:
            self.deadlines[conn] = time.monotonic() + self.policy.timeout
        error: str | None = None
        try:
            conn.request("GET", f"{self.prefix}/{narinfo_name(path)}", headers=self.headers)
            response = conn.getresponse()
            body = response.read(narinfo.MAX_SIZE + 1)  # a server that never stops is cut off
            if len(body) > narinfo.MAX_SIZE:
                conn.close()  # the rest is unread: the connection cannot be reused
        except (OSError, http.client.HTTPException) as err:
            conn.close()  # reconnects on the next request
            error = f"{type(err).__name__}: {err}"
        with self.lock:
            self.deadlines.pop(conn, None)
            late = conn in self.expired
            self.expired.discard(conn)
        if late:  # whatever was read before the cut is not an answer
            conn.close()
            raise TransientError(f"no complete answer within {self.policy.timeout:g}s")
        if error is not None:
            raise TransientError(error)
        if response.status == 200:
            if narinfo.describes(body, path):
                return True
            # An error page, a login form, another path's narinfo: the cache does not have it.
            log.warning("cache: %s answered %s with something that is not its narinfo; "
                        "building it", self.host, narinfo_name(path))
            return False
        if response.status in (404, 403, 410):  # S3-style stores answer 403 for a missing key
            return False
        if response.status >= 500 or response.status == 429:
            raise TransientError(f"HTTP {response.status}")
        raise CacheQueryError(f"HTTP {response.status} for {narinfo_name(path)}")

    def has(self, path: str) -> bool:
        return self.policy.call(f"asking {self.host} for {narinfo_name(path)}",
                                lambda _left: self.once(path),
                                lambda err: isinstance(err, TransientError))

    def abort(self) -> None:
        """Cut every request in flight short (from another thread: on cancellation)."""
        with self.lock:
            connections = list(self.connections)
        for conn in connections:
            _shutdown(conn)

    def close(self) -> None:
        self.closed.set()
        for conn in self.connections:
            conn.close()


def _shutdown(conn: http.client.HTTPConnection) -> None:
    """End a connection's request from another thread (close() would not wake a blocked recv)."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class CacheQueryError(Exception):
    """The cache answered, but not in a way that says cached or not."""


def _file_has(file: Path, path: str) -> bool:
    try:
        with open(file, "rb") as f:
            return narinfo.describes(f.read(narinfo.MAX_SIZE + 1), path)
    except OSError:
        return False


def query(substituter: str, paths: Iterable[str], token: str | None = None,
          policy: RetryPolicy = RetryPolicy()) -> Query:
    """Which of these store paths the binary cache at `substituter` has (one batch)."""
    wanted = sorted(set(paths))
    scheme = urllib.parse.urlsplit(substituter).scheme
    if not wanted:
        return Query(frozenset())
    if scheme == "file":
        root = Path(urllib.parse.unquote(urllib.parse.urlsplit(substituter).path))
        return Query(frozenset(p for p in wanted if _file_has(root / narinfo_name(p), p)))
    if scheme not in ("http", "https"):
        return Query(frozenset(), f"cannot query {display_url(substituter)} (only http(s):// and "
                                  "file:// substituters can be asked); set cache.substituter")
    client = _HttpCache(substituter, token, policy)
    remove_hook = proc.on_cancel(client.abort)
    try:
        answers = _in_threads(client.has, wanted, QUERY_WORKERS)
    except (TransientError, CacheQueryError) as err:
        return Query(frozenset(), f"{display_url(substituter)}: {err}")
    except Cancelled:
        return Query(frozenset(), "cancelled")
    finally:
        remove_hook()
        client.close()
    return Query(frozenset(p for p, has in zip(wanted, answers, strict=True) if has))


def _in_threads(fn: Callable[[str], bool], items: Sequence[str], workers: int) -> list[bool]:
    """fn over items, `workers` at a time; the first exception wins.

    Daemon threads, not a pool: on cancellation the caller returns at once, and a thread still
    stuck connecting to a cache that does not answer cannot hold up the exit.
    """
    results: list[bool | None] = [None] * len(items)
    errors: list[BaseException] = []
    lock = threading.Lock()
    indices = iter(range(len(items)))
    left = [len(items)]
    done = threading.Event()

    def work() -> None:
        while True:
            with lock:
                index = next(indices, None)
                if index is None or errors:
                    return
            try:
                answer = fn(items[index])
            except BaseException as err:  # handed to the caller
                with lock:
                    errors.append(err)
                done.set()
                return
            with lock:
                results[index] = answer
                left[0] -= 1
                if left[0] == 0:
                    done.set()

    for _ in range(min(workers, len(items))):
        threading.Thread(target=work, daemon=True, name="ci-nix-cache-query").start()
    while not done.wait(0.2):
        signum = proc.cancelled()
        if signum is not None:
            raise Cancelled(signum)
    if errors:
        raise errors[0]
    return [bool(result) for result in results]


# --- the configured cache --------------------------------------------------------------------

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
        return _nix_copy(nix, cache.config, paths, timeout)


BACKENDS: Mapping[CacheType, Backend] = {
    CacheType.ATTIC: _Attic(), CacheType.CACHIX: _Cachix(), CacheType.NIX: _NixCopy()}


@dataclass(frozen=True)
class Cache:
    """A configured binary cache with its secret resolved from the environment."""

    config: CacheConfig
    token: str | None
    substituter: str | None
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def backend(self) -> Backend:
        assert self.config.type is not None  # open_cache makes a Cache only for a cache.type
        return BACKENDS[self.config.type]

    @property
    def target(self) -> str:
        """Where pushes go, for messages."""
        return self.backend.target(self.config)


def default_substituter(config: CacheConfig) -> str | None:
    """Where to look for narinfos when `cache.substituter` is not set."""
    if config.substituter:
        return config.substituter
    return BACKENDS[config.type].substituter(config) if config.type is not None else None


def open_cache(config: CacheConfig, environ: Mapping[str, str] = os.environ) -> Cache | None:
    """The workspace's cache, or None when ci-nix.yaml configures none."""
    if config.type is None:
        return None
    for key, what in BACKENDS[config.type].needs:
        if not getattr(config, key):
            raise ConfigError(f"cache.type {config.type} needs cache.{key} ({what})")
    for key, url in (("cache.server", config.server), ("cache.substituter", config.substituter)):
        if url:
            _check_url(key, url)
    token = secret_from_env(environ, config.token_env) if config.token_env else None
    return Cache(config, token or None, default_substituter(config), RetryPolicy.from_env(environ))


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


def skip_cached(plan: Plan, environ: Mapping[str, str] = os.environ) -> tuple[Plan, list[str]]:
    """Take the jobs whose outputs are all in the cache out of the plan (skipped: "cached")."""
    cache = open_cache(plan.workspace.config.cache, environ)
    if cache is None or not plan.jobs:
        return plan, []
    if cache.substituter is None:
        note = (f"cache: no substituter to ask for {cache.target}; building everything (set "
                "cache.substituter)")
        return plan, [note]
    paths = [path for job in plan.jobs for path in job.out_paths]
    log.info("asking %s for %s of %s", display_url(cache.substituter),
             count(len(set(paths)), "output"), count(len(plan.jobs), "attribute"))
    answer = query(cache.substituter, paths, cache.token, cache.policy)
    if proc.cancelled() is not None:
        return plan, []  # the run reports every job as cancelled
    if answer.error is not None:
        log.warning("cache: %s; building everything", answer.error)
        return plan, [f"cache: could not query {answer.error}; built everything"]
    cached = [job for job in plan.jobs
              if job.out_paths and all(path in answer.cached for path in job.out_paths)]
    log.info("cached: %d of %s", len(cached), count(len(plan.jobs), "attribute"))
    return plan.skip(cached, CACHED), []


# --- pushing ---------------------------------------------------------------------------------

# Checked first: the server understood and said no; asking again cannot help.
_PERMANENT = re.compile(r"HTTP error 40[0-4]\b|\b40[13]\b|unauthori[sz]ed|forbidden|"
                        r"permission denied|no such cache|cache does not exist", re.IGNORECASE)
_TRANSIENT = re.compile(
    r"HTTP error (5\d\d|408|429)|\b5(00|02|03|04)\b|couldn't connect|could not connect|"
    r"connection (refused|reset|closed|aborted)|reset by peer|timed? ?out|timeout|broken pipe|"
    r"send failed|recv failure|failed to open/read local data|server returned nothing|"
    r"failure when receiving data|empty reply from server|"
    r"error sending request|dns error|resolve host|name resolution|network is unreachable|"
    r"ConnectionFailure|ResponseTimeout|ConnectionTimeout|HttpExceptionRequest|"
    r"unexpected eof|too many requests|no answer within", re.IGNORECASE)


def is_transient(text: str) -> bool:
    """Whether a push client's error text means network or server trouble."""
    if _PERMANENT.search(text):
        return False
    return bool(_TRANSIENT.search(text))


def push_mode(config: CacheConfig, override: bool | None) -> Push:
    """cache.push after --push/--no-push."""
    if override is False:
        return Push.NONE
    if override is True and config.push == Push.NONE:
        return Push.CLOSURE
    return config.push


@dataclass(frozen=True)
class PushOutcome:
    paths: tuple[str, ...]  # what was handed to the backend
    cases: tuple[Case, ...] = ()  # a failed push, under ci-nix.cache
    notes: tuple[str, ...] = ()


def push(config: CacheConfig, override: bool | None, jobs: Sequence[Job],
         cases: Sequence[Case], nix: Nix, environ: Mapping[str, str] = os.environ) -> PushOutcome:
    """Push the outputs of the jobs that passed (and, per cache.push, their closure)."""
    cache = open_cache(config, environ)
    if cache is None:
        return PushOutcome(())
    mode = push_mode(config, override)
    passed = {(c.flake, c.name, c.system) for c in cases if c.status is Status.PASSED}
    paths = tuple(sorted({path for job in jobs if (job.flake, job.name, job.system) in passed
                          for path in job.out_paths}))
    if mode == Push.NONE or not paths:
        why = "push disabled" if mode == Push.NONE else "nothing new to push"
        log.info("cache: %s", why)
        return PushOutcome((), notes=(f"cache: pushed 0 paths ({why})",))
    if config.token_env and cache.token is None and cache.backend.uses_token:
        message = (f"${config.token_env} is not set (as in a pull request from a fork): not "
                   f"pushing to {cache.target}")
        if config.required:
            return PushOutcome((), cases=(_failure_case(cache, message, len(paths)),))
        log.warning("cache: %s", message)
        return PushOutcome((), notes=(f"cache: {message}",))
    log.info("pushing %s (%s) to %s", count(len(paths), "path"), mode, cache.target)
    started = time.monotonic()
    try:
        cache.policy.call(f"pushing to {cache.target}",
                          lambda left: _push_once(cache, mode, paths, nix, environ,
                                                  min(left, cache.policy.push_timeout)),
                          lambda err: isinstance(err, PushError) and err.transient)
    except PushError as err:
        log.error("cache: pushing to %s failed: %s", cache.target, mask(str(err)))
        return PushOutcome(paths, cases=(_failure_case(cache, str(err), len(paths),
                                                       time.monotonic() - started),))
    note = f"cache: pushed {count(len(paths), 'path')} ({mode}) to {cache.target}"
    return PushOutcome(paths, notes=(note,))


def _failure_case(cache: Cache, message: str, paths: int, elapsed: float = 0.0) -> Case:
    text = mask(message)
    return Case(CACHE_CLASSNAME, "push", Status.FAILED, time=elapsed,
                required=cache.config.required,
                failure=Failure(FailureType.OTHER,
                                f"push of {count(paths, 'path')} to {cache.target} failed: "
                                f"{text.splitlines()[0] if text else 'no error text'}",
                                log=text[-4000:],
                                hint=None if cache.config.required else
                                "the build results stand; set cache.required: true to fail the "
                                "run when the cache cannot be filled"))


def _push_once(cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
               environ: Mapping[str, str], timeout: float) -> None:
    try:
        result = cache.backend.push(cache, mode, paths, nix, environ, timeout)
    except ToolError as err:
        if "no answer within" in str(err):
            raise PushError(str(err), transient=True) from None
        raise
    if not result.ok:
        text = result.stderr.strip() or result.stdout.strip()
        line = last_error_line(text) if text else f"exit code {result.returncode}"
        raise PushError(f"{line} (exit code {result.returncode})\n{text}" if text else line,
                        transient=is_transient(text))


def copy_url(config: CacheConfig) -> str:
    """The `nix copy --to` URL: cache.server, signing with secret-key-file where it can."""
    assert config.server
    url = config.server
    scheme = urllib.parse.urlsplit(url).scheme
    if config.secret_key_file and scheme in ("http", "https", "file", "s3"):
        # Binary cache stores sign what they receive with their `secret-key` setting.
        sep = "&" if "?" in url else "?"
        url += f"{sep}secret-key={urllib.parse.quote(config.secret_key_file)}"
    return url


def _nix_copy(nix: Nix, config: CacheConfig, paths: Sequence[str],
              timeout: float) -> proc.Result:
    scheme = urllib.parse.urlsplit(config.server or "").scheme
    if config.secret_key_file and scheme not in ("http", "https", "file", "s3"):
        # Other stores (ssh://, local) keep the signatures the paths carry: sign them here.
        nix.check(["store", "sign", "--key-file", config.secret_key_file, "--recursive", *paths],
                  "signing the paths to push")
    return nix.run(["copy", "--to", copy_url(config), *paths], timeout=timeout)
