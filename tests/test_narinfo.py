"""What counts as "the cache has it": only a narinfo Nix would accept, for exactly that path."""

from __future__ import annotations

from pathlib import Path

import pytest
from httpcache import TEST_KEY, answering, entry, narinfo_for
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix import narinfo
from ci_nix.cache.client import query
from ci_nix.cache.retry import RetryPolicy
from ci_nix.errors import CiNixError
from ci_nix.narinfo import narinfo_name

DATA = Path(__file__).resolve().parent / "data"
REAL = (DATA / "nix-2.8" / "copy-to-file.narinfo").read_bytes()  # written by `nix copy --to file://`
REAL_PATH = "/nix/store/v7rsgpyb39m65r6x0z52bhj95pifrl14-sample-1.0"
OUT = "/nix/store/0c8z0jz5gbp3rl4f9dzvhl8m1f0a8y1v-greeting-1.0"
OTHER = "/nix/store/2dq3pw3bkvf9l0b8w3sbsq1j1qvcsbyd-motd"
FAST = RetryPolicy(attempts=2, base=0.01, timeout=2)


def test_a_real_narinfo_parses() -> None:
    info = narinfo.parse(REAL)
    assert info.store_path == REAL_PATH and info.nar_size == 120
    assert info.nar_hash == "sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h"
    assert narinfo.describes(REAL, REAL_PATH)
    assert narinfo.describes(narinfo_for(OUT), OUT)


GARBAGE = {
    "html-error-page": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
    "no-store-path": REAL.replace(b"StorePath:", b"Storepath:"),
    "another-path": narinfo_for(OTHER),
    "truncated": REAL[:60],
    "zero-size": REAL.replace(b"NarSize: 120", b"NarSize: 0"),
    "negative-size": REAL.replace(b"NarSize: 120", b"NarSize: -1"),
    "bad-hash": REAL.replace(b"NarHash: sha256:", b"NarHash: md5:"),
    "no-url": REAL.replace(b"URL: ", b"Url: "),
    "not-utf8": REAL.replace(b"Compression: xz", b"Compression: \xff\xfe"),
    "bad-reference": REAL.replace(b"References: ", b"References: ../../etc/passwd"),
    "json": b'{"StorePath": "' + REAL_PATH.encode() + b'"}',
    "huge": REAL + b"X-Padding: " + b"x" * (narinfo.MAX_SIZE + 1) + b"\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_not_a_narinfo(name: str) -> None:
    assert not narinfo.describes(GARBAGE[name], REAL_PATH)


@pytest.mark.parametrize("name", ["html-error-page", "no-store-path", "empty", "huge"])
def test_a_cache_answering_200_with_garbage_has_nothing(name: str) -> None:
    with answering(lambda path: (200, GARBAGE[name])) as url:
        answer = query(url, [REAL_PATH, OUT], policy=FAST, trust=TEST_KEY.trust)
    assert answer.error is None and answer.cached == frozenset()


def test_a_file_cache_with_garbage_has_nothing(tmp_path: Path) -> None:
    (tmp_path / narinfo_name(REAL_PATH)).write_bytes(GARBAGE["no-store-path"])
    for name, data in entry(OUT).items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / narinfo_name(OTHER)).mkdir()  # a directory where a file should be
    answer = query(f"file://{tmp_path}", [REAL_PATH, OUT, OTHER], trust=TEST_KEY.trust)
    assert answer.cached == {OUT}


# --- fuzzing: any bytes give a NarInfo or a NarInfoError, nothing else ------------------------

FIELDS = st.sampled_from(["StorePath", "URL", "NarHash", "NarSize", "References", "Deriver",
                          "Compression", "Sig", "CA", "", "Store Path"])
LINES = st.lists(st.tuples(FIELDS, st.one_of(st.text(max_size=80), st.just(REAL_PATH),
                                             st.just("sha256:" + "1" * 52),
                                             st.integers().map(str))), max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), LINES.map(
    lambda lines: "\n".join(f"{k}: {v}" for k, v in lines).encode("utf-8", "surrogatepass")),
    st.binary(max_size=200).map(lambda tail: REAL + tail)))
def test_fuzz_narinfo(body: bytes) -> None:
    try:
        info = narinfo.parse(body)
    except CiNixError as err:
        assert "\n" not in str(err)
        return
    assert narinfo.is_store_path(info.store_path) and info.nar_size > 0


def test_a_cache_that_drips_its_answer_is_cut_off() -> None:
    """One byte every 0.2 s never trips a 1 s socket timeout; the request deadline does."""
    import http.server
    import threading
    import time

    class Dripping(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = narinfo_for(OUT)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = query(f"http://127.0.0.1:{server.server_address[1]}", [OUT],
                       policy=RetryPolicy(attempts=2, base=0.01, timeout=1),
                       trust=TEST_KEY.trust)
    finally:
        server.shutdown()
        server.server_close()
    # the whole answer would take a minute and be a hit: the deadline cut it off, both attempts
    assert answer.cached == frozenset()
    assert answer.error is not None and "no complete answer within 1s" in answer.error


# --- signatures: Nix's fingerprint, ed25519 over it, and only trusted keys ------------------

SIGNED = [(DATA / f"nix-{v}" / f"{name}.narinfo", DATA / f"nix-{v}" / f"{name}.pub")
          for v, name in (("2.8", "signed"), ("2.26", "signed-self"))]


@pytest.mark.parametrize("files", SIGNED, ids=["nix-2.8-reference", "nix-2.26-self-reference"])
def test_narinfos_nix_signed_verify_and_any_change_breaks_them(
        files: tuple[Path, Path]) -> None:
    body, key = files[0].read_bytes(), narinfo.parse_public_key(files[1].read_text())
    info = narinfo.parse(body)
    assert narinfo.signed_by(info, [key]) == key
    assert narinfo.Trust(True, (key,)).accepts(info)
    assert not narinfo.Trust(True, ()).accepts(info)  # signed, but by no trusted key
    assert narinfo.Trust(False, ()).accepts(info)  # require-sigs = false
    impostor = narinfo.PublicKey(key.name, TEST_KEY.trust.keys[0].key)  # same name, other key
    assert narinfo.signed_by(info, [impostor]) is None
    for old, new in ((b"NarSize: ", b"NarSize: 1"), (b"-sig-", b"-siG-"),
                     (b"References: ", b"References: 0000000000000000000000000000000a-x ")):
        assert old in body
        assert narinfo.signed_by(narinfo.parse(body.replace(old, new, 1)), [key]) is None


def test_the_fingerprint_takes_the_nar_hash_in_any_form(nix_bin: str) -> None:
    """Nix writes NarHash as base32, hex or SRI; it signs the base32 form (checked with Nix's
    own conversion)."""
    import shlex
    import subprocess

    body = SIGNED[0][0].read_bytes()
    key = narinfo.parse_public_key(SIGNED[0][1].read_text())
    nar_hash = narinfo.parse(body).nar_hash
    for form in ("to-base16", "to-sri"):
        other = subprocess.run([*shlex.split(nix_bin), "--extra-experimental-features",
                                "nix-command", "hash", form, nar_hash], check=True,
                               capture_output=True, text=True).stdout.strip()
        other = other if other.startswith("sha256") else f"sha256:{other}"  # base16: bare
        info = narinfo.parse(body.replace(nar_hash.encode(), other.encode()))
        assert info.nar_hash == other and narinfo.signed_by(info, [key]) == key


def test_nix_secret_keys_trust_their_public_half() -> None:
    secret = "ci-nix-test-1:" + __import__("base64").b64encode(
        TEST_KEY.seed + TEST_KEY.trust.keys[0].key).decode()
    assert narinfo.public_key_of_secret(secret) == TEST_KEY.trust.keys[0]
    with pytest.raises(CiNixError):
        narinfo.public_key_of_secret(TEST_KEY.public)  # a public key is not a secret one


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.binary(min_size=32, max_size=32),
                 st.binary(min_size=64, max_size=64)))
def test_nix32_round_trips(data: bytes) -> None:
    encoded = narinfo.nix32_encode(data)
    assert set(encoded) <= set("0123456789abcdfghijklmnpqrsvwxyz")
    assert narinfo.nix32_decode(encoded, len(data)) == data
    if len(data) in (32, 64):
        algo = "sha256" if len(data) == 32 else "sha512"
        assert narinfo.hash_nix32(f"{algo}:{encoded}") == f"{algo}:{encoded}"
        with pytest.raises(ValueError):  # digits for bits past the hash's end
            narinfo.hash_nix32(f"{algo}:z{encoded[1:]}")


SIG_TEXT = st.one_of(st.text(max_size=120), st.binary(max_size=80).map(
    lambda raw: "ci-nix-test-1:" + __import__("base64").b64encode(raw).decode()))


@settings(max_examples=300, deadline=None)
@given(sigs=st.lists(SIG_TEXT, max_size=4), key=SIG_TEXT, nar_hash=st.text(max_size=80))
def test_fuzz_signatures_and_keys(sigs: list[str], key: str, nar_hash: str) -> None:
    """Whatever a cache or a config says in Sig, NarHash or a key: an answer, never a crash,
    and never "signed" without the key's signature."""
    try:
        public = narinfo.parse_public_key(key)
    except CiNixError as err:
        assert "\n" not in str(err)
        public = TEST_KEY.trust.keys[0]
    assert len(public.key) == 32
    real = narinfo.parse(REAL)
    for candidate in (real, narinfo.NarInfo(REAL_PATH, "nar/x", nar_hash, 1, (), tuple(sigs))):
        info = narinfo.NarInfo(candidate.store_path, candidate.url, candidate.nar_hash,
                               candidate.nar_size, candidate.references, tuple(sigs))
        assert narinfo.signed_by(info, [public]) is None  # nobody signed these bytes
    try:
        narinfo.hash_nix32(nar_hash)
    except ValueError:
        pass
