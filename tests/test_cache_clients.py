"""Cache status queries against a real HTTP cache, and pushes through fake attic/cachix binaries."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import tomllib
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import make_workspace
import pytest
from conftest import Cli, xml_attr, xml_find
from fakeproc import Call, FakeProc, Reply
from httpcache import TEST_KEY, BinaryCache, Key, entry, narinfo_for

from ci_nix.cache import backends, push
from ci_nix.cache.client import Verdict, query
from ci_nix.cache.retry import RetryPolicy
from ci_nix.config import CacheConfig, CacheType
from ci_nix.errors import ConfigError
from ci_nix.models import Case, Job, RunReport, Status
from ci_nix.narinfo import Trust, narinfo_name
from ci_nix.tools.nix import Nix


def pushed(config: CacheConfig, override: bool | None, jobs: list[Job], cases: list[Case],
           environ: dict[str, str]) -> push.PushOutcome:
    """What `run` does: open the cache once, then push to it."""
    return push.push(backends.open_cache(config, environ), override, jobs, cases,
                     Nix(("nix",)), environ)


FAKES = Path(__file__).resolve().parent / "fakes"
TOKEN = "s3cr3t-attic-token-0123456789"
OUT = "/nix/store/0c8z0jz5gbp3rl4f9dzvhl8m1f0a8y1v-greeting-1.0"
DEV = "/nix/store/1gk6mq4zf4kj7m4l0ddyqgzjc7r4jdc2-greeting-1.0-dev"
OTHER = "/nix/store/2dq3pw3bkvf9l0b8w3sbsq1j1qvcsbyd-motd"
FAST = {"CI_NIX_CACHE_RETRY_BASE": "0.01", "CI_NIX_CACHE_RETRY_TOTAL": "30",
        "CI_NIX_CACHE_TIMEOUT": "2", "CI_NIX_CACHE_RETRY_ATTEMPTS": "3"}


narinfo = narinfo_for


def jobs_and_cases(*paths: tuple[str, ...], failed: int | None = None
                   ) -> tuple[list[Job], list[Case]]:
    jobs, cases = [], []
    for i, outs in enumerate(paths):
        job = Job("modules", ("packages", "x86_64-linux", f"p{i}"), "x86_64-linux",
                  f"/nix/store/{'a' * 32}-p{i}.drv",
                  tuple((f"o{n}", path) for n, path in enumerate(outs)))
        jobs.append(job)
        status = Status.FAILED if i == failed else Status.PASSED
        cases.append(Case(job.flake, job.name, status, system=job.system))
    return jobs, cases


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CLIENT_RECORD", str(path))
    return path


def calls(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def env() -> dict[str, str]:
    return {**os.environ, "CI_NIX_ATTIC": str(FAKES / "attic"),
            "CI_NIX_CACHIX": str(FAKES / "cachix"), "ATTIC_TOKEN": TOKEN, **FAST}


def fake_fails(monkeypatch: pytest.MonkeyPatch, times: int, stderr: str) -> None:
    """The fake client (a child process: it sees os.environ) fails its first `times` calls."""
    monkeypatch.setenv("FAKE_CLIENT_FAIL_TIMES", str(times))
    monkeypatch.setenv("FAKE_CLIENT_FAIL_STDERR", stderr)


ATTIC = CacheConfig(type=CacheType.ATTIC, server="https://attic.example.com", name="infra",
                    token_env="ATTIC_TOKEN")
CACHIX = CacheConfig(type=CacheType.CACHIX, name="mycache", token_env="ATTIC_TOKEN")


# --- status queries ----------------------------------------------------------------------------

TRUST = TEST_KEY.trust


def test_http_query_reports_each_path_in_one_batch() -> None:
    with BinaryCache() as server:
        server.add(OUT, "/infra")
        # a narinfo for another path under the same hash prefix is not "cached"
        server.files["/infra/" + narinfo_name(DEV)] = narinfo(OTHER)
        answer = query(server.url + "/infra", [OUT, DEV, OTHER, OUT], trust=TRUST)
        assert answer.error is None
        assert answer.cached == {OUT}
        assert server.count("GET", ".narinfo") == 3  # each distinct path asked once
        assert server.count("HEAD", ".nar") == 1  # the NAR of what counts, at <cache>/infra/


def test_only_what_nix_would_substitute_counts() -> None:
    """No Sig, a bogus Sig, a key Nix does not trust, a NAR that is gone or short: each is
    "not cached" (so built), and said so, with require-sigs on; with it off, only the NAR
    counts."""
    paths = [f"/nix/store/{c * 32}-p" for c in "abcdfghijkl"]
    (unsigned, bogus, untrusted, no_nar, short, elsewhere, good, other_host, sub, bad_port,
     bad_host) = paths
    with BinaryCache() as server:
        for path in paths:
            server.add(path)
        server.add(unsigned, key=None)
        server.add(untrusted, key=Key("someone-else-1", bytes(32)))
        name = "/" + narinfo_name(bogus)
        text = server.files[name].decode()
        sig = text.split("Sig: ")[1].split(":")[1].strip()
        forged = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        server.files[name] = text.replace(sig, forged).encode()
        [nar_of] = [k for k in entry(no_nar) if k.startswith("nar/")]
        del server.files["/" + nar_of]
        [nar_of] = [k for k in entry(short) if k.startswith("nar/")]
        server.files["/" + nar_of] = server.files["/" + nar_of][:50]  # truncated
        for path, url in ((elsewhere, "http://cache.invalid/nar/x.nar"),
                          (other_host, "https://127.0.0.1/nar/x.nar"),
                          (sub, f"{server.url}/nar/sub/x.nar"),
                          (bad_port, "http://127.0.0.1:99999/nar/x.nar"),
                          # a bracket left open: urlsplit raises (a traceback, no run)
                          (bad_host, "http://[::1/nar/x.nar")):
            name = "/" + narinfo_name(path)
            old = server.files[name].decode().split("URL: ")[1].split("\n")[0]
            server.files[name] = server.files[name].decode().replace(old, url).encode()
        # absolute, on the cache's own host: fine (the URL is not part of what is signed)
        [nar_of] = [k for k in entry(sub) if k.startswith("nar/")]
        server.files["/nar/sub/x.nar"] = server.files["/" + nar_of]
        answer = query(server.url, paths, policy=RetryPolicy(attempts=1, timeout=2),
                       trust=TRUST)
        assert answer.error is None
        assert answer.cached == {good, sub}
        assert dict(answer.refused) == {
            Verdict.UNSIGNED: 3, Verdict.NO_NAR: 2, Verdict.NAR_ELSEWHERE: 4}
        off = query(server.url, paths, trust=Trust(require_sigs=False))
        assert off.cached == {unsigned, bogus, untrusted, good, sub}


def test_http_query_retries_server_errors_then_answers() -> None:
    waits: list[float] = []
    policy = dataclasses.replace(RetryPolicy(), sleep=waits.append)  # the real backoff
    with BinaryCache() as server:
        server.add(OUT)
        server.fail("500", methods=["GET"], times=2)
        answer = query(server.url, [OUT], policy=policy, trust=TRUST)
        assert answer.cached == {OUT}
        assert [r.status for r in server.requests] == [500, 500, 200, 200]  # then HEAD
    # two waits, with full jitter under base * 2^n, and none of them spent for real
    assert len(waits) == 2 and 0 <= waits[0] <= 2.0 and 0 <= waits[1] <= 4.0


@pytest.mark.parametrize("mode", ["500", "hang", "close"])
def test_http_query_gives_up_and_says_so(mode: str) -> None:
    with BinaryCache() as server:
        server.add(OUT)
        server.fail(mode, methods=["GET"])
        answer = query(server.url, [OUT], policy=RetryPolicy.from_env(
            {**FAST, "CI_NIX_CACHE_TIMEOUT": "0.5"}), trust=TRUST)
        server.heal()
    assert answer.cached == frozenset() and answer.error is not None
    assert server.url.removeprefix("http://") in answer.error
    assert server.count("GET") == 3  # bounded attempts


def write_entry(root: Path, path: str, key: Key | None = TEST_KEY) -> dict[str, bytes]:
    files = entry(path, key)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_file_query_looks_at_narinfo_files_and_nars(tmp_path: Path) -> None:
    paths = [f"/nix/store/{c * 32}-p" for c in "abcdf"]
    good, unsigned, no_nar, short, escapes = paths
    write_entry(tmp_path, good)
    write_entry(tmp_path, unsigned, key=None)
    for path in (no_nar, short):
        [nar] = [tmp_path / k for k in write_entry(tmp_path, path) if k.startswith("nar/")]
        nar.unlink() if path == no_nar else nar.write_bytes(nar.read_bytes()[:-1])
    info = (tmp_path / narinfo_name(escapes))
    write_entry(tmp_path, escapes)
    old = info.read_text().split("URL: ")[1].split("\n")[0]
    info.write_text(info.read_text().replace(old, "../../etc/passwd"))
    answer = query(f"file://{tmp_path}", [*paths, DEV], trust=TRUST)
    assert answer.cached == {good} and answer.error is None
    assert dict(answer.refused) == {Verdict.UNSIGNED: 1, Verdict.NO_NAR: 2,
                                    Verdict.NAR_ELSEWHERE: 1}


def test_default_substituters() -> None:
    assert backends.default_substituter(ATTIC) == "https://attic.example.com/infra"
    assert backends.default_substituter(CACHIX) == "https://mycache.cachix.org"
    zstd = CacheConfig(type=CacheType.NIX, server="file:///srv/c?compression=zstd")
    assert backends.default_substituter(zstd) == "file:///srv/c"
    ssh = CacheConfig(type=CacheType.NIX, server="ssh://builder")
    assert backends.default_substituter(ssh) is None


# --- attic -------------------------------------------------------------------------------------

def test_attic_push_exact_call_token_only_in_private_config(
        record: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    jobs, cases = jobs_and_cases((OUT, DEV), (OTHER,), failed=1)
    outcome = pushed(ATTIC, None, jobs, cases, env())
    assert outcome.cases == () and outcome.paths == (OUT, DEV)
    [call] = calls(record)
    assert call["argv"] == ["push", "ci-nix:infra", OUT, DEV]  # the failed job is not pushed
    config = tomllib.loads(call["config"])
    assert config == {"default-server": "ci-nix",
                      "servers": {"ci-nix": {"endpoint": "https://attic.example.com",
                                             "token": TOKEN}}}
    assert call["config_mode"] == 0o600 and call["config_dir_mode"] == 0o700
    assert not Path(call["config_path"]).exists()  # removed after the push
    assert TOKEN not in json.dumps(call["argv"])
    assert call["env"]["XDG_CONFIG_HOME"] != os.environ.get("XDG_CONFIG_HOME")
    assert "$ " + str(FAKES / "attic") + " push ci-nix:infra" in caplog.text
    assert TOKEN not in caplog.text


def test_attic_outputs_mode_and_long_lists_use_flags(record: Path) -> None:
    many = tuple(f"/nix/store/{i:032d}-p{i}" for i in range(250))
    jobs, cases = jobs_and_cases(many)
    outputs = CacheConfig(**{**ATTIC.__dict__, "push": "outputs"})
    pushed(outputs, None, jobs, cases, env())
    [call] = calls(record)
    assert call["argv"] == ["push", "ci-nix:infra", "--no-closure", "--stdin"]
    assert call["stdin"].splitlines() == sorted(many)


def test_attic_transient_failures_are_retried_and_logged(
        record: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, cases = jobs_and_cases((OUT,))
    fake_fails(monkeypatch, 2, "Error: error sending request for url (https://attic.example.com"
               "/_api/v1/cache-config/infra): connection error: Connection reset by peer")
    outcome = pushed(ATTIC, None, jobs, cases, env())
    assert len(calls(record)) == 3 and outcome.cases == ()
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2 and "attempt 1 of 3" in retries[0].getMessage()
    assert "pushed 1 path " in outcome.notes[0]


def test_attic_gives_up_after_bounded_attempts_and_reports(
        record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, cases = jobs_and_cases((OUT,))
    fake_fails(monkeypatch, 99, "Error: HTTP 502 Bad Gateway")
    outcome = pushed(ATTIC, None, jobs, cases, env())
    assert len(calls(record)) == 3
    [case] = outcome.cases
    assert (case.flake, case.name, case.status) == ("ci-nix.cache", "push", Status.FAILED)
    assert case.failure is not None, "a failed push has a failure"
    assert "502 Bad Gateway" in case.failure.message and not case.required
    report = RunReport(suites=("modules",), cases=(*cases, case))
    assert report.exit_code == 0  # not required: the build results decide

    required = CacheConfig(**{**ATTIC.__dict__, "required": True})
    outcome = pushed(required, None, jobs, cases, env())
    assert RunReport(suites=("modules",), cases=(*cases, *outcome.cases)).exit_code == 1


def test_attic_permanent_failure_is_not_retried(
        record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, cases = jobs_and_cases((OUT,))
    fake_fails(monkeypatch, 99, f"Error: Unauthorized: token {TOKEN} rejected (401)")
    outcome = pushed(ATTIC, None, jobs, cases, env())
    assert len(calls(record)) == 1
    [case] = outcome.cases
    assert case.failure is not None, "a failed push has a failure"
    assert TOKEN not in case.failure.message + case.failure.log  # masked


def test_no_push_and_missing_token(record: Path) -> None:
    jobs, cases = jobs_and_cases((OUT,))
    assert pushed(ATTIC, False, jobs, cases, env()).paths == ()
    none = CacheConfig(**{**ATTIC.__dict__, "push": "none"})
    assert pushed(none, None, jobs, cases, env()).paths == ()
    no_token = {k: v for k, v in env().items() if k != "ATTIC_TOKEN"}
    outcome = pushed(ATTIC, None, jobs, cases, no_token)
    assert outcome.cases == () and "ATTIC_TOKEN is not set" in outcome.notes[0]
    assert calls(record) == []
    assert pushed(none, True, jobs, cases, env()).paths == (OUT,)  # --push
    assert calls(record)[0]["argv"] == ["push", "ci-nix:infra", OUT]


# --- cachix ------------------------------------------------------------------------------------

def test_cachix_push_token_in_environment_and_retry(
        record: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, cases = jobs_and_cases((OUT, DEV))
    fake_fails(monkeypatch, 1, "cachix: HttpExceptionRequest Request "
               "{ host = \"mycache.cachix.org\""
               " } (ConnectionFailure Network.Socket.connect: <socket: 11>: does not exist)")
    outcome = pushed(CACHIX, None, jobs, cases, env())
    _first, second = calls(record)
    # "does not exist" here is a socket error inside a network failure: the retry still happens
    assert second["argv"] == ["push", "mycache", OUT, DEV]
    assert second["env"]["CACHIX_AUTH_TOKEN"] == TOKEN
    assert TOKEN not in json.dumps(second["argv"]) and TOKEN not in caplog.text
    assert outcome.cases == ()


def test_transient_classification() -> None:
    assert push.is_transient("error: unable to upload 'http://c/nar/x': HTTP error 503")
    assert push.is_transient("Couldn't connect to server (7)")
    assert push.is_transient("ci-nix: attic: no answer within 30s")
    # Nix 2.8 when the cache drops the connection mid-upload
    assert push.is_transient("error: unable to download 'http://127.0.0.1:1/x.narinfo': HTTP "
                              "error 100 ('Continue') (curl error: Failure when receiving data "
                              "from the peer)")
    assert not push.is_transient("error: unable to upload 'http://c/nar/x': HTTP error 401")
    assert not push.is_transient("Error: FileNotFound: The requested cache does not exist.")
    assert not push.is_transient("error: path '/nix/store/x' is not valid")


def test_every_cache_type_has_one_backend_and_its_needs_are_checked() -> None:

    assert set(backends.BACKENDS) == set(CacheType)
    for config, message in (
            (CacheConfig(type=CacheType.ATTIC, name="x"),
             "cache.type attic needs cache.server (the attic endpoint)"),
            (CacheConfig(type=CacheType.ATTIC, server="https://a.example"),
             "cache.type attic needs cache.name (the cache to push to)"),
            (CacheConfig(type=CacheType.CACHIX), "cache.type cachix needs cache.name"),
            (CacheConfig(type=CacheType.NIX), "cache.type nix needs cache.server (the store URL)")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            backends.open_cache(config, {})


def test_a_secret_key_file_that_is_a_pipe_does_not_hang_the_cached_check(
        tmp_path: Path) -> None:
    """Nix trusts the public halves of its secret-key-files, so ci-nix reads them to judge
    what is cached: one that is a FIFO (or a device) blocked the run there for good (open()
    then read() to the end); it is now a warning, and the other keys count."""
    import threading

    from ci_nix.cache import skip

    fifo, good = tmp_path / "k.fifo", tmp_path / "k.sec"
    os.mkfifo(fifo)
    good.write_text(TEST_KEY.secret + "\n")
    nix = Nix(("nix",))
    nix.__dict__["_settings"] = {"require-sigs": {"value": True},
                                 "trusted-public-keys": {"value": []},
                                 "secret-key-files": {"value": [str(fifo), str(good)]}}
    found: list[Trust] = []
    thread = threading.Thread(target=lambda: found.append(skip.trust(nix)), daemon=True)
    thread.start()
    thread.join(5)
    hung = thread.is_alive()
    if hung:  # a writer lets a blocked open() go, so the test process ends
        with open(fifo, "w"):
            pass
    assert not hung, "blocked on the FIFO"
    assert [key.name for key in found[0].keys] == [TEST_KEY.name]


def test_a_nix_push_signs_with_a_private_copy_and_never_through_a_link_in_a_checkout(
        tmp_path: Path, fake_proc: FakeProc, caplog: pytest.LogCaptureFixture) -> None:
    """cache.secret-key-file is read by ci-nix, not by Nix (which follows links): a link a pull
    request commits in a checkout, on the file or a directory on the way, would sign its
    outputs with another key the runner can read. Refused when the run starts (pushing runs
    only) and again at the push, where it is a failed push: the build results stand. Nix gets
    a private copy; the key is in no argv and no log line."""
    runner = tmp_path / "etc" / "nix" / "cache.sec"  # the runner's own, more trusted, key
    runner.parent.mkdir(parents=True)
    other = Key("runner-key-1", bytes(range(1, 33)))
    runner.write_text(other.secret)
    checkout = tmp_path / "checkout"
    (checkout / "keys").mkdir(parents=True)
    (checkout / "keys" / "cache.sec").write_text(TEST_KEY.secret)
    seen: list[str] = []
    copies: list[Path] = []

    def given(key_file: str) -> Reply:
        copies.append(Path(key_file))
        seen.append(copies[-1].read_text())
        assert copies[-1].stat().st_mode & 0o077 == 0
        return Reply()

    fake_proc.on("nix", "copy", handler=lambda call: next(
        (given(urllib.parse.unquote(arg.split("secret-key=", 1)[1])) for arg in call.argv
         if "secret-key=" in arg), Reply()))  # ssh:// keeps the signatures `store sign` made
    fake_proc.on("nix", "store", "sign", handler=lambda call: given(
        call.argv[call.argv.index("--key-file") + 1]))
    jobs, cases = jobs_and_cases((OUT,))
    for server in ("file:///srv/cache", "ssh://builder.example"):
        config = CacheConfig(type=CacheType.NIX, server=server,
                             secret_key_file=checkout / "keys" / "cache.sec")
        with caplog.at_level(logging.DEBUG, logger="ci_nix"):
            done = push.push(backends.open_cache(config, {}, [checkout], pushing=True), None,
                             jobs, cases, Nix(("nix",)), {})
        assert not done.cases and done.paths == (OUT,)
    assert seen == [TEST_KEY.secret] * 2  # file:: copy signs; ssh:: store sign first
    argv = [arg for call in fake_proc.calls for arg in call.argv]
    assert not any(str(checkout) in arg or TEST_KEY.secret in arg for arg in argv)
    assert TEST_KEY.secret.partition(":")[2] not in caplog.text
    assert " copy --to 'file:///srv/cache?secret-key=/" in caplog.text
    assert not any(copy.exists() for copy in copies)  # removed after the call

    config = CacheConfig(type=CacheType.NIX, server="file:///srv/cache",
                         secret_key_file=checkout / "keys" / "cache.sec")
    opened = backends.open_cache(config, {}, [checkout], pushing=True)
    shutil.rmtree(checkout / "keys")
    (checkout / "keys").symlink_to(runner.parent)  # the pull request's commit
    with pytest.raises(ConfigError) as raised:
        backends.open_cache(config, {}, [checkout], pushing=True)
    message = str(raised.value)
    assert message.startswith(f"cache.secret-key-file {checkout / 'keys' / 'cache.sec'}: "
                              f"{checkout / 'keys'} is a symbolic link inside a checkout")
    assert "--no-push" in message and "\n" not in message
    assert backends.open_cache(config, {}, [checkout], pushing=False) is not None
    # a link that appears after the start: a failed push, never a signature by the runner's key
    seen.clear()
    late = push.push(opened, None, jobs, cases, Nix(("nix",)), {})
    assert seen == [] and late.paths == (OUT,)
    [case] = late.cases
    assert case.flake == push.CACHE_CLASSNAME and case.failure is not None
    assert "symbolic link inside a checkout" in case.failure.message
    assert other.secret.partition(":")[2] not in repr(late)


def test_a_server_urls_own_key_is_read_by_ci_nix_at_the_push(
        tmp_path: Path, fake_proc: FakeProc, caplog: pytest.LogCaptureFixture) -> None:
    """cache.server `file:///c?secret-key=FILE`: Nix reads FILE when the store opens, at the
    push, long after the start's check; a link a checkout gains meanwhile would be followed.
    ci-nix reads it at the push instead, refused through a link as at the start, and Nix gets
    a private copy in the same place of the URL (the other parameters kept)."""
    runner = tmp_path / "etc" / "nix" / "cache.sec"  # the runner's own, more trusted, key
    runner.parent.mkdir(parents=True)
    runner.write_text(Key("runner-key-1", bytes(range(1, 33))).secret)
    checkout = tmp_path / "checkout"
    (checkout / "keys").mkdir(parents=True)
    (checkout / "keys" / "cache.sec").write_text(TEST_KEY.secret)
    urls: list[str] = []

    def copy(call: Call) -> Reply:
        url = call.argv[call.argv.index("--to") + 1]
        urls.append(url)
        named = urllib.parse.unquote(url.split("secret-key=", 1)[1].split("&")[0])
        urls.append(Path(named).read_text())  # what Nix would sign with
        return Reply()

    fake_proc.on("nix", "copy", handler=copy)
    jobs, cases = jobs_and_cases((OUT,))
    config = CacheConfig(type=CacheType.NIX, server="file:///srv/c?compression=none&secret-key="
                         f"{checkout / 'keys' / 'cache.sec'}&parallel-compression=true")
    opened = backends.open_cache(config, {}, [checkout], pushing=True)
    with caplog.at_level(logging.DEBUG, logger="ci_nix"):
        done = push.push(opened, None, jobs, cases, Nix(("nix",)), {})
    assert not done.cases and done.paths == (OUT,)
    [url, signed_with] = urls
    assert signed_with == TEST_KEY.secret
    assert str(checkout) not in url and url.startswith("file:///srv/c?compression=none&secret-key=")
    assert url.endswith("&parallel-compression=true")
    assert TEST_KEY.secret.partition(":")[2] not in caplog.text
    # the pull request's link, made after the start's check: a failed push, no Nix call
    shutil.rmtree(checkout / "keys")
    (checkout / "keys").symlink_to(runner.parent)
    urls.clear()
    late = push.push(opened, None, jobs, cases, Nix(("nix",)), {})
    assert urls == [] and late.paths == (OUT,)
    [case] = late.cases
    assert case.flake == push.CACHE_CLASSNAME and case.failure is not None
    assert (f"cache.server's secret-key {checkout / 'keys' / 'cache.sec'}: {checkout / 'keys'} "
            "is a symbolic link inside a checkout") in case.failure.message


def test_a_signing_key_linked_from_a_checkout_stops_a_pushing_run_before_nix_runs(
        tmp_path: Path, fake_proc: FakeProc, cli: Cli) -> None:
    """The run's view: exit 2 with one line naming the setting, the JUnit report written,
    nothing evaluated or built; the key the link points to is never shown. A relative
    cache.secret-key-file is ci-nix.yaml's neighbour, wherever ci-nix runs from."""
    runner = tmp_path / "etc" / "nix"
    runner.mkdir(parents=True)
    (runner / "cache.sec").write_text(Key("runner-key-1", bytes(range(1, 33))).secret)
    repo = tmp_path / "hosts"
    repo.mkdir()
    (repo / "flake.nix").write_text("{ outputs = { self }: { }; }\n")
    (repo / "ci-nix.yaml").write_text(
        f"cache:\n  type: nix\n  server: file://{tmp_path / 'cache'}\n"
        "  secret-key-file: keys/cache.sec\n")
    (repo / "keys").symlink_to(runner)
    make_workspace.init_repo(repo, "a pull request's head")
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", repo, "--junit", junit, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "error" in line]
    assert (f"cache.secret-key-file {repo / 'keys' / 'cache.sec'}: {repo / 'keys'} is a "
            "symbolic link inside a checkout") in line
    assert "runner-key-1:" not in result.stderr + result.stdout + junit.read_text()
    assert not fake_proc.ran("nix")
    error = xml_find(ET.parse(junit), ".//testcase[@classname='ci-nix']/error")
    assert "symbolic link inside a checkout" in xml_attr(error, "message")
    # not pushing: the key is not used, so not looked at
    assert "symbolic link" not in cli("run", "--all", repo, "--no-push", "--junit", junit,
                                      cwd=tmp_path).stderr
    # every other key file ci-nix hands to Nix, which reads it itself: nix-options (Nix signs
    # every path it builds with secret-key-files: pushing or not), --option, a store URL
    linked = repo / "keys" / "cache.sec"
    ran = len(fake_proc.ran("nix"))
    for yaml_text, argv, setting in (
            (f"nix-options:\n  extra-secret-key-files: /run/k.sec {linked}\n", ["--no-push"],
             "nix-options.extra-secret-key-files"),
            ("", ["--no-push", "--option", "secret-key-files", str(linked)],
             "--option secret-key-files"),
            (f"cache:\n  type: nix\n  server: file://{tmp_path / 'c'}?secret-key={linked}\n",
             [], "cache.server's secret-key")):
        (repo / "ci-nix.yaml").write_text(yaml_text)
        result = cli("run", "--all", repo, *argv, cwd=tmp_path)
        assert result.returncode == 2, (setting, result.stderr)
        assert (f"{setting} {linked}: {repo / 'keys'} is a symbolic link inside a checkout"
                in result.stderr.splitlines()[-1])
        assert len(fake_proc.ran("nix")) == ran  # stopped before Nix was asked anything
