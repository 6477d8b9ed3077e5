"""Which outputs a binary cache has, as Nix would substitute them: `<hash>.narinfo` queries over
HTTP(S) or file://, each narinfo checked against Nix's signature settings (narinfo.Trust) and
its NAR looked for (HTTP HEAD; for file://, the file and its size).

HTTP requests run in daemon threads over keep-alive connections, retried per the RetryPolicy;
a watchdog cuts requests that outlive their deadline (a server that drips bytes).
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import math
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ci_nix import narinfo
from ci_nix.cache.retry import RetryPolicy, TransientError
from ci_nix.config import DEFAULT_TIMEOUT
from ci_nix.errors import Cancelled
from ci_nix.narinfo import narinfo_name
from ci_nix.tools import proc

log = logging.getLogger(__name__)

QUERY_WORKERS = 8  # narinfo requests in flight at once


def display_url(url: str) -> str:
    """A URL fit for logs: no credentials, no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class Verdict(StrEnum):
    """What the cache's answer about one store path comes to."""

    CACHED = "cached"
    ABSENT = "absent"  # no narinfo
    NOT_NARINFO = "no narinfo for exactly that path"
    UNSIGNED = "no valid signature by a key in trusted-public-keys"
    NO_NAR = "its NAR file is missing or short"
    NAR_ELSEWHERE = "its NAR is on another host"


@dataclass(frozen=True)
class Query:
    """What the cache said about a batch of store paths."""

    cached: frozenset[str]
    error: str | None = None  # the cache could not be asked; nothing is taken as cached
    # paths with a narinfo that Nix would not substitute from, counted by why
    refused: tuple[tuple[Verdict, int], ...] = ()


def judge(body: bytes, path: str, trust: narinfo.Trust) -> narinfo.NarInfo | Verdict:
    """The narinfo in a cache's answer for path when Nix would take it (its NAR still to be
    found), else why not."""
    try:
        info = narinfo.parse(body)
    except narinfo.NarInfoError:
        return Verdict.NOT_NARINFO
    if info.store_path != path:
        return Verdict.NOT_NARINFO
    return info if trust.accepts(info) else Verdict.UNSIGNED


@dataclass(frozen=True)
class _Reply:
    status: int
    length: str | None  # Content-Length
    body: bytes


class _HttpCache:
    """GET `<substituter>/<hash>.narinfo` with one keep-alive connection per worker thread."""

    def __init__(self, url: str, token: str | None, policy: RetryPolicy,
                 trust: narinfo.Trust) -> None:
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.prefix = parts.path.rstrip("/")
        self.headers = {"User-Agent": "ci-nix"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.policy, self.trust = policy, trust
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

    def _request(self, method: str, target: str, limit: int,
                 headers: dict[str, str] | None = None) -> _Reply:
        """One request on this thread's connection, within the deadline; at most `limit`
        bytes of the body are read."""
        conn = self.connection()
        with self.lock:
            self.deadlines[conn] = time.monotonic() + self.policy.timeout
        error: str | None = None
        try:
            conn.request(method, target, headers={**self.headers, **(headers or {})})
            response = conn.getresponse()
            body = response.read(limit + 1)  # a server that never stops is cut off
            if len(body) > limit:
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
        return _Reply(response.status, response.getheader("Content-Length"), body)

    def once(self, path: str) -> Verdict:
        response = self._request("GET", f"{self.prefix}/{narinfo_name(path)}", narinfo.MAX_SIZE)
        if response.status == 200:
            found = judge(response.body, path, self.trust)
            if found is Verdict.NOT_NARINFO:
                # An error page, a login form, another path's narinfo: not the path's narinfo.
                log.warning("cache: %s answered %s with something that is not its narinfo; "
                            "building it", self.host, narinfo_name(path))
            return found if isinstance(found, Verdict) else self._nar(found)
        _check_status(response.status, narinfo_name(path))
        return Verdict.ABSENT

    def _nar(self, info: narinfo.NarInfo) -> Verdict:
        """Whether the NAR the narinfo points at can be fetched (HEAD, of the right size)."""
        target = self._same_origin(info.url)
        if target is None:
            return Verdict.NAR_ELSEWHERE
        response = self._request("HEAD", target, 0)
        if response.status in (405, 501):  # no HEAD here: the first byte tells as much
            response = self._request("GET", target, 0, {"Range": "bytes=0-0"})
        if response.status in (200, 206):
            length = response.length
            if (response.status == 200 and info.file_size is not None and length is not None
                    and length.strip() != str(info.file_size)):
                return Verdict.NO_NAR  # truncated (or another file)
            return Verdict.CACHED
        _check_status(response.status, info.url)
        return Verdict.NO_NAR

    def _same_origin(self, url: str) -> str | None:
        """The request target of a narinfo's URL: relative to the cache, as Nix takes it; an
        absolute URL only on the cache's own host (the token goes nowhere else)."""
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:  # "Invalid IPv6 URL": the URL is not signed, a server may say anything
            return None
        if not parts.scheme:
            return f"{self.prefix}/{urllib.parse.quote(url.lstrip('/'), safe='/@:+=,;~!$&()*')}"
        scheme = "https" if self.https else "http"
        default = 443 if self.https else 80
        try:
            origin = (parts.scheme, parts.hostname, parts.port or default)
        except ValueError:  # a port out of range
            return None
        if origin != (scheme, self.host, self.port or default):
            return None
        return urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))

    def has(self, path: str) -> Verdict:
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


def _check_status(status: int, what: str) -> None:
    """Raise unless status says plainly that the cache does not have it."""
    if status in (404, 403, 410):  # S3-style stores answer 403 for a missing key
        return
    if status >= 500 or status == 429:
        raise TransientError(f"HTTP {status}")
    raise CacheQueryError(f"HTTP {status} for {what}")


def _file_has(root: Path, path: str, trust: narinfo.Trust) -> Verdict:
    try:
        with open(root / narinfo_name(path), "rb") as f:
            found = judge(f.read(narinfo.MAX_SIZE + 1), path, trust)
    except OSError:
        return Verdict.ABSENT
    if isinstance(found, Verdict):
        return found
    if urllib.parse.urlsplit(found.url).scheme:
        return Verdict.NAR_ELSEWHERE
    nar = root / found.url
    try:
        if not nar.resolve().is_relative_to(root.resolve()):
            return Verdict.NAR_ELSEWHERE
        size = nar.stat().st_size
    except OSError:
        return Verdict.NO_NAR
    if not nar.is_file() or (found.file_size is not None and size != found.file_size):
        return Verdict.NO_NAR
    return Verdict.CACHED


def query(substituter: str, paths: Iterable[str], token: str | None = None,
          policy: RetryPolicy | None = None, budget: float = DEFAULT_TIMEOUT, *,
          trust: narinfo.Trust) -> Query:
    """Which of these store paths the binary cache at `substituter` has (one batch, all of it
    within `budget` seconds, retries included: cache.timeout), as Nix would substitute them
    under `trust` (its signature settings)."""
    policy = policy or RetryPolicy()
    # one request may not outlast the whole batch's budget
    policy = dataclasses.replace(policy, timeout=max(0.1, min(policy.timeout, budget)))
    wanted = sorted(set(paths))
    scheme = urllib.parse.urlsplit(substituter).scheme
    if not wanted:
        return Query(frozenset())
    if scheme == "file":
        root = Path(urllib.parse.unquote(urllib.parse.urlsplit(substituter).path))
        return _tally(wanted, [_file_has(root, p, trust) for p in wanted])
    if scheme not in ("http", "https"):
        return Query(frozenset(), f"cannot query {display_url(substituter)} (only http(s):// and "
                                  "file:// substituters can be asked); set cache.substituter")
    client = _HttpCache(substituter, token, policy, trust)
    remove_hook = proc.on_cancel(client.abort)
    try:
        answers = _in_threads(client.has, wanted, QUERY_WORKERS,
                              deadline=time.monotonic() + budget)
    except TimeoutError:
        client.abort()
        return Query(frozenset(), f"{display_url(substituter)}: no complete answer within "
                                  f"{budget:g}s in all (cache.timeout)")
    except (TransientError, CacheQueryError) as err:
        return Query(frozenset(), f"{display_url(substituter)}: {err}")
    except Cancelled:
        return Query(frozenset(), "cancelled")
    finally:
        remove_hook()
        client.close()
    return _tally(wanted, answers)


def _tally(paths: Sequence[str], verdicts: Sequence[Verdict]) -> Query:
    refused = Counter(v for v in verdicts if v not in (Verdict.CACHED, Verdict.ABSENT))
    return Query(frozenset(p for p, v in zip(paths, verdicts, strict=True)
                           if v is Verdict.CACHED),
                 refused=tuple(sorted(refused.items())))


def _in_threads(fn: Callable[[str], Verdict], items: Sequence[str], workers: int,
                deadline: float = math.inf) -> list[Verdict]:
    """fn over items, `workers` at a time; the first exception wins; TimeoutError past the
    deadline (time.monotonic()).

    Daemon threads, not a pool: on cancellation the caller returns at once, and a thread still
    stuck connecting to a cache that does not answer cannot hold up the exit.
    """
    results: list[Verdict] = [Verdict.ABSENT] * len(items)
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
    while not done.wait(max(0.0, min(0.2, deadline - time.monotonic()))):
        signum = proc.cancelled()
        if signum is not None:
            raise Cancelled(signum)
        if time.monotonic() >= deadline:
            with lock:
                errors.append(TimeoutError())  # the workers take no more paths
            raise TimeoutError()
    if errors:
        raise errors[0]
    return results

