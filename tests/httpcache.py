"""A small real HTTP binary cache on 127.0.0.1 for tests: stores what Nix PUTs, answers GET/HEAD.

Fault switches (for retry tests): `fail(mode, methods, after, times)` makes matching requests
answer 500, hang until the cache is stopped or the fault cleared, or drop the connection.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ci_nix import narinfo


class Server(http.server.ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: when 8 clients connect at once (ci-nix's
    narinfo workers, Nix's substituter threads) while the accepting thread waits for the GIL,
    the connections past the backlog have their SYN dropped and retried a second later (TCP's
    initial retransmission timeout). Real caches (nginx: a backlog of 511) do not stall so."""

    request_queue_size = 128


CACHE_INFO = b"StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n"


def narinfo_for(path: str) -> bytes:
    """A well-formed narinfo for path, unsigned and with no NAR behind it (for the parser)."""
    return (f"StorePath: {path}\nURL: nar/{'1' * 52}.nar\nCompression: none\n"
            f"NarHash: sha256:{'1' * 52}\nNarSize: 120\nReferences: \n").encode()


@dataclass(frozen=True)
class Key:
    """An ed25519 signing key in Nix's `name:base64` form (tests only)."""

    name: str
    seed: bytes

    @property
    def public(self) -> str:
        raw = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
        return f"{self.name}:{base64.b64encode(raw).decode()}"

    @property
    def secret(self) -> str:
        """The secret key file's text, as nix-store --generate-binary-cache-key writes it."""
        raw = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
        return f"{self.name}:{base64.b64encode(self.seed + raw).decode()}"

    @property
    def trust(self) -> narinfo.Trust:
        """Nix's settings with this key in trusted-public-keys and require-sigs on."""
        return narinfo.Trust(True, (narinfo.parse_public_key(self.public),))

    def sign(self, info: narinfo.NarInfo) -> str:
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(
            narinfo.fingerprint(info).encode())
        return f"{self.name}:{base64.b64encode(signature).decode()}"


TEST_KEY = Key("ci-nix-test-1", bytes(range(32)))


def entry(path: str, key: Key | None = TEST_KEY, nar: bytes | None = None,
          references: tuple[str, ...] = ()) -> dict[str, bytes]:
    """What a binary cache holds for path: `<hash>.narinfo` (signed by key) and its NAR file
    (by default one of its own), by file name relative to the cache."""
    nar = f"the NAR of {path}".encode() if nar is None else nar
    digest = narinfo.nix32_encode(hashlib.sha256(nar).digest())
    url = f"nar/{digest}.nar"
    info = narinfo.NarInfo(path, url, f"sha256:{digest}", len(nar), references,
                           file_size=len(nar))
    lines = [f"StorePath: {path}", f"URL: {url}", "Compression: none",
             f"FileHash: sha256:{digest}", f"FileSize: {len(nar)}", f"NarHash: sha256:{digest}",
             f"NarSize: {len(nar)}", f"References: {' '.join(references)}"]
    if key is not None:
        lines.append(f"Sig: {key.sign(info)}")
    return {narinfo.narinfo_name(path): "\n".join(lines + [""]).encode(), url: nar}


@dataclass
class Fault:
    mode: str  # "500" | "hang" | "close"
    methods: frozenset[str]
    after: int = 0  # let this many matching requests through first
    times: int | None = None  # then fault this many (None: every one)
    seen: int = 0


@dataclass
class Request:
    method: str
    path: str
    status: int | None  # None: the connection was dropped or hung


@dataclass
class BinaryCache:
    """`with BinaryCache() as cache: cache.url` is a writable http:// binary cache store."""

    files: dict[str, bytes] = field(default_factory=lambda: {"/nix-cache-info": CACHE_INFO})
    requests: list[Request] = field(default_factory=list)
    fault: Fault | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> BinaryCache:
        cache = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Nix and ci-nix reuse connections
            # headers and body are separate writes: with Nagle on, each answer waits for the
            # client's delayed ACK (~40 ms), which real caches (nginx, S3) do not do
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                cache._serve(self, body=True)

            def do_HEAD(self) -> None:
                cache._serve(self, body=False)

            def do_PUT(self) -> None:
                cache._put(self)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, mode: str, methods: Iterable[str] = ("GET", "HEAD", "PUT"), after: int = 0,
             times: int | None = None) -> None:
        """From now on fault matching requests (after `after` of them went through)."""
        with self._lock:
            self.fault = Fault(mode, frozenset(methods), after, times)
            self._released.clear()

    def heal(self) -> None:
        """Clear the fault and release hanging requests."""
        with self._lock:
            self.fault = None
        self._released.set()

    def add(self, path: str, prefix: str = "", key: Key | None = TEST_KEY) -> None:
        """Hold path as a cache that has it does (see entry()), under prefix."""
        for name, data in entry(path, key).items():
            self.files[f"{prefix}/{name}"] = data

    def narinfos(self) -> set[str]:
        """Store path hashes with a .narinfo in the cache."""
        with self._lock:
            return {name[1:-len(".narinfo")] for name in self.files if name.endswith(".narinfo")}

    def count(self, method: str, suffix: str = "") -> int:
        """Requests seen with this method whose path ends with suffix (answered or not)."""
        with self._lock:
            return sum(r.method == method and r.path.endswith(suffix) for r in self.requests)

    # --- request handling ------------------------------------------------------------------

    def _faulted(self, handler: http.server.BaseHTTPRequestHandler) -> bool:
        """Apply the fault to this request, if it matches; True when it was handled."""
        with self._lock:
            fault = self.fault
            if fault is None or handler.command not in fault.methods:
                return False
            fault.seen += 1
            if fault.seen <= fault.after:
                return False
            if fault.times is not None and fault.seen > fault.after + fault.times:
                return False
        if fault.mode == "500":
            self._drain(handler)
            self._answer(handler, 500, b"injected failure\n")
        elif fault.mode == "hang":
            self._record(handler, None)
            self._released.wait()
            handler.close_connection = True
        elif fault.mode == "close":
            self._record(handler, None)
            handler.close_connection = True
            handler.connection.close()
        else:
            raise AssertionError(fault.mode)
        return True

    def _record(self, handler: http.server.BaseHTTPRequestHandler, status: int | None) -> None:
        with self._lock:
            self.requests.append(Request(handler.command, handler.path.split("?")[0], status))

    def _answer(self, handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
                send_body: bool = True) -> None:
        self._record(handler, status)
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Content-Type", "text/plain" if status != 200
                            else "application/octet-stream")
        handler.end_headers()
        if send_body:
            handler.wfile.write(body)

    def _serve(self, handler: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        if self._faulted(handler):
            return
        path = handler.path.split("?")[0]
        with self._lock:
            data = self.files.get(path)
        if data is None:
            self._answer(handler, 404, b"not found\n", body)
        else:
            self._answer(handler, 200, data, body)

    def _drain(self, handler: http.server.BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _put(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if self._faulted(handler):
            return
        data = self._drain(handler)
        with self._lock:
            self.files[handler.path.split("?")[0]] = data
        self._answer(handler, 200, b"")


@contextmanager
def answering(respond: Callable[[str], tuple[int, bytes]]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 whose every GET is answered by respond(path)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, body = respond(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
