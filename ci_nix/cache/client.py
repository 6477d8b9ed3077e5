"""Which outputs a binary cache has: `<hash>.narinfo` queries over HTTP(S) or file://.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
          policy: RetryPolicy | None = None, budget: float = DEFAULT_TIMEOUT) -> Query:
    """Which of these store paths the binary cache at `substituter` has (one batch, all of it
    within `budget` seconds, retries included: cache.timeout)."""
    policy = policy or RetryPolicy()
    # one request may not outlast the whole batch's budget
    policy = dataclasses.replace(policy, timeout=max(0.1, min(policy.timeout, budget)))
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
    return Query(frozenset(p for p, has in zip(wanted, answers, strict=True) if has))


def _in_threads(fn: Callable[[str], bool], items: Sequence[str], workers: int,
                deadline: float = math.inf) -> list[bool]:
    """fn over items, `workers` at a time; the first exception wins; TimeoutError past the
    deadline (time.monotonic()).

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
    return [bool(result) for result in results]

