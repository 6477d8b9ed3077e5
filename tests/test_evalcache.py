"""The evaluation cache (ci_nix/evalcache.py): keys, entries, and a run that remembers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ONE_NIX, Cli
from fakeproc import Call, FakeProc, Reply
from helpers import git, json_cases, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_nix import evalcache, inputs, lockfile, pipeline
from ci_nix.evaluate import EvalFlags, Selection
from ci_nix.models import (
    Case,
    Failure,
    FailureType,
    Flake,
    FlakeEval,
    Job,
    Override,
    Repo,
    Status,
    Target,
)
from ci_nix.tools.git import Git
from ci_nix.tools.nix import WORKER_LINE, CommitRead, Nix, parse_worker_line
from ci_nix.workspace import load

SETTINGS = {"pure-eval": {"value": True}, "max-jobs": {"value": 4},
            "allow-import-from-derivation": {"value": True}}


def _repo(path: Path, text: str = "{ outputs = _: { }; }") -> Path:
    write(path / "flake.nix", text)
    write(path / "flake.lock", '{"nodes": {"root": {}}, "root": "root", "version": 7}')
    git(path.parent, "init", "-q", str(path))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "init")
    return path


def _fake_nix(fake_proc: FakeProc, settings: dict[str, object] = SETTINGS,
              version: str = "2.8.0") -> None:
    fake_proc._rules.clear()
    fake_proc.on("nix", "--version", stdout=f"nix (Nix) {version}\n")
    fake_proc.on("nix", "show-config", stdout=json.dumps(settings))
    fake_proc.on("nix", "config", "show", stdout=json.dumps(settings))
    fake_proc.on("nix", "eval", stdout="x86_64-linux")


def _keys(selection: Selection | None = None, nix: Nix | None = None) -> evalcache.Keys:
    return evalcache.Keys(nix or Nix(("nix",)), Git(("git",)),
                          selection or Selection(("x86_64-linux",), ("packages",)))


def test_a_file_written_back_unchanged_keys_as_the_commit(tmp_path: Path,
                                                        fake_proc: FakeProc) -> None:
    # update --verify writes the current lock back; a checkout step may touch files: git's
    # `stash create` failed silently on such a file (stat changed, content not) -> not cached
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    clean = _keys().of(target)
    lock = repo / "flake.lock"
    lock.write_text(lock.read_text())
    os.utime(lock, (time.time() + 10, time.time() + 10))
    assert clean is not None and _keys().of(target) == clean


def test_the_key_changes_with_what_decides_the_evaluation(tmp_path: Path,
                                                          fake_proc: FakeProc) -> None:
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    dep = _repo(tmp_path / "dep")
    target = Target(Flake(Repo("a", repo), ""))
    first = _keys().of(target)
    assert first is not None and first == _keys().of(target)  # stable
    # untracked files: Nix does not see them, neither does the key
    write(repo / "notes.txt", "scratch")
    assert _keys().of(target) == first
    # an uncommitted change to a tracked file
    write(repo / "flake.nix", "{ outputs = _: { x = 1; }; }")
    dirty = _keys().of(target)
    assert dirty not in (None, first)
    git(repo, "checkout", "flake.nix")
    assert _keys().of(target) == first
    # a commit that changes flake.lock
    write(repo / "flake.lock", '{"nodes": {"root": {}}, "root": "root", "version": 7} ')
    assert _keys().of(target) not in (None, first)
    git(repo, "commit", "-qam", "lock")
    locked = _keys().of(target)
    assert locked not in (None, first)
    # an override, and a change to the override's source
    overridden = replace(target, overrides=(Override("dep", Flake(Repo("d", dep), "").ref),))
    with_dep = _keys().of(overridden)
    assert with_dep not in (None, locked)
    write(dep / "flake.nix", "{ outputs = _: { y = 1; }; }")
    assert _keys().of(overridden) not in (None, with_dep)
    # the systems and the selection
    assert _keys(Selection(("aarch64-linux",), ("packages",))).of(target) != locked
    assert _keys(Selection(("x86_64-linux",), ("checks",))).of(target) != locked
    assert _keys(Selection(("x86_64-linux",), ("packages",), include=("*.x",))).of(
        target) != locked
    only = frozenset({("a", "packages.x86_64-linux.x")})
    assert _keys(Selection(("x86_64-linux",), ("packages",), only=only)).of(target) != locked
    # --only of another flake does not concern this one
    other = frozenset({("b", "packages.x86_64-linux.x")})
    assert _keys(Selection(("x86_64-linux",), ("packages",), only=other)).of(target) == _keys(
        Selection(("x86_64-linux",), ("packages",), only=frozenset({("b", "y")}))).of(target)
    # a Nix option that changes evaluation misses; one that only concerns building does not
    nix = Nix(("nix",))
    assert _keys(nix=nix.with_options([("max-jobs", "8")])).of(target) == locked
    assert _keys(nix=nix.with_options([("allow-import-from-derivation", "false")])).of(
        target) != locked
    # a plugin adds builtins: what the flake evaluates to may change
    assert _keys(nix=nix.with_options([("plugin-files", "/opt/plugin.so")])).of(
        target) != locked


def test_the_key_follows_nix_settings_and_version(tmp_path: Path, fake_proc: FakeProc) -> None:
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    _fake_nix(fake_proc)
    before = _keys().of(target)
    _fake_nix(fake_proc, {**SETTINGS, "pure-eval": {"value": False}})
    assert _keys().of(target) != before
    _fake_nix(fake_proc, {**SETTINGS, "cores": {"value": 64}})  # build-only
    assert _keys().of(target) == before
    _fake_nix(fake_proc, version="2.26.3")
    assert _keys().of(target) != before


def test_an_unlocked_reference_is_never_cached(tmp_path: Path, fake_proc: FakeProc) -> None:
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""), overrides=(Override("x", "path:/srv/x"),))
    assert _keys().of(target) is None
    locked = replace(target, overrides=(Override("x", "github:o/r/" + "a" * 40 + "?rev=" +
                                                 "a" * 40),))
    assert _keys().of(locked) is not None


def _eval(tmp_path: Path, cases: tuple[Case, ...] = ()) -> FlakeEval:
    target = Target(Flake(Repo("a", tmp_path), ""))
    job = Job("a", ("packages", "x86_64-linux", "hello"), "x86_64-linux",
              "/nix/store/" + "a" * 32 + "-hello.drv",
              (("out", "/nix/store/" + "b" * 32 + "-hello"),))
    return FlakeEval(target, (job,), cases, 1, 0.5, 1, ("packages.x86_64-linux.hello",))


def test_an_entry_remembers_jobs_and_deterministic_errors(tmp_path: Path) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    error = Case("a", "packages.x86_64-linux.broken", Status.FAILED, failure=Failure(
        FailureType.EVAL, "attribute 'nope' missing", file="flake.nix", line=3))
    flake_eval = _eval(tmp_path, (error,))
    assert cache.store("k" * 64, flake_eval, {flake_eval.jobs[0].drv_path: ["x-dep-1.0.drv"]})
    hit = cache.load("k" * 64, flake_eval.target)
    assert hit is not None and hit.cached and hit.evaluations == 0
    assert hit.jobs == flake_eval.jobs and hit.cases == flake_eval.cases
    assert hit.listed == flake_eval.listed
    assert hit.closures == ((flake_eval.jobs[0].drv_path, ("x-dep-1.0.drv",)),)
    assert cache.load("j" * 64, flake_eval.target) is None


@pytest.mark.parametrize("failure", [
    Failure(FailureType.TIMEOUT, "evaluation of x took longer than --eval-timeout 5s"),
    Failure(FailureType.EVAL, "evaluation ran out of memory: x alone took a fresh worker"),
    Failure(FailureType.OTHER, "cannot connect to socket at '/nix/var/nix/daemon-socket'"),
    Failure(FailureType.EVAL, "unable to download 'https://example.org/x': HTTP error 503"),
])
def test_failures_that_may_not_recur_are_not_stored(tmp_path: Path, failure: Failure) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path, (Case("a", "x", Status.FAILED, failure=failure),))
    assert not cache.store("k" * 64, flake_eval)
    assert cache.load("k" * 64, flake_eval.target) is None


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[]", b'{"format": 1}', b"",
    b'{"format": 99, "key": "KEY", "jobs": [], "failures": [], "listed": []}',
])
def test_a_corrupt_or_foreign_entry_is_ignored_and_removed(
        tmp_path: Path, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    key = "c" * 64
    assert cache.store(key, flake_eval)
    entry = next((tmp_path / "cache").rglob("*.json"))
    entry.write_bytes(body.replace(b"KEY", key.encode()))
    with caplog.at_level(logging.WARNING, "ci_nix.evalcache"):
        assert cache.load(key, flake_eval.target) is None
    assert "evaluation cache: ignoring" in caplog.text
    assert not entry.exists()


def test_an_entry_under_another_name_is_ignored(tmp_path: Path) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    assert cache.store("a" * 64, flake_eval)
    entry = next((tmp_path / "cache").rglob("*.json"))
    moved = entry.parent.parent / "bb" / ("b" * 64 + ".json")
    moved.parent.mkdir()
    entry.rename(moved)
    assert cache.load("b" * 64, flake_eval.target) is None


def test_concurrent_writers_and_readers_see_whole_entries(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    job = _eval(tmp_path).jobs[0]
    # a big entry (~250 kB): a write in place would be seen half done
    flake_eval = replace(_eval(tmp_path), jobs=tuple(
        replace(job, attr=("packages", "x86_64-linux", f"p{i}")) for i in range(1000)))
    key = "d" * 64
    seen: list[FlakeEval | None] = []
    written = threading.Event()

    def write_many() -> None:
        for _ in range(10):
            cache.store(key, flake_eval)

    def read_many() -> None:
        while not written.is_set():  # for as long as the writers write
            seen.append(cache.load(key, flake_eval.target))

    writers = [threading.Thread(target=write_many) for _ in range(2)]
    readers = [threading.Thread(target=read_many) for _ in range(2)]
    with caplog.at_level(logging.WARNING, "ci_nix.evalcache"):
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        written.set()
        for thread in readers:
            thread.join()
    # every read is a miss (not yet written) or the whole entry, never a torn one (which
    # would be logged as corrupt and removed)
    assert "ignoring" not in caplog.text
    assert all(hit is None or hit.jobs == flake_eval.jobs for hit in seen)
    assert cache.load(key, flake_eval.target) is not None
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_an_entry_that_is_no_regular_file_is_neither_followed_nor_waited_for(
        tmp_path: Path) -> None:
    """A restored cache is data: an entry that is a named pipe (reading it would block for
    good) or a symlink (to a file elsewhere, which a store would overwrite) is a miss, removed,
    and a store replaces it rather than writing through it."""
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    outside = tmp_path / "outside.json"
    for key, make in (("e" * 64, lambda path: os.mkfifo(path)),
                      ("f" * 64, lambda path: path.symlink_to(outside))):
        assert cache.store(key, flake_eval)
        entry = next((tmp_path / "cache").rglob(f"{key}.json"))
        outside.write_bytes(entry.read_bytes())  # a sound entry behind the link
        entry.unlink()
        make(entry)
        assert cache.load(key, flake_eval.target) is None
        assert not entry.exists() and not entry.is_symlink()
        make(entry)
        assert cache.store(key, flake_eval) and entry.is_file() and not entry.is_symlink()
        assert cache.load(key, flake_eval.target) is not None
    assert json.loads(outside.read_text())["key"] == "f" * 64  # never written through


@pytest.mark.parametrize("linked", ["v1", "v1/zz"])
def test_a_symlinked_directory_in_the_cache_is_never_followed(tmp_path: Path,
                                                              linked: str) -> None:
    """A restored cache (or a checkout) whose v1 or v1/<shard> is a symlink to a directory
    elsewhere: evict deleted that directory's files once the bound was passed, and a store
    wrote into it. Now the link is a miss, removed; the directory behind it is untouched."""
    outside = tmp_path / "outside"
    precious = outside / "zz" / "precious.json" if linked == "v1" else outside / "precious.json"
    write(precious, "x" * 5000)
    cache = evalcache.EvalCache(tmp_path / "cache", max_bytes=100)
    (tmp_path / "cache" / linked).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / linked).symlink_to(outside)
    cache.evict()
    assert precious.exists()
    flake_eval = _eval(tmp_path)
    key = "zz" + "0" * 62  # its shard is v1/zz
    assert cache.load(key, flake_eval.target) is None
    assert not (tmp_path / "cache" / linked).is_symlink()
    (tmp_path / "cache" / linked).symlink_to(outside)
    assert cache.store(key, flake_eval)
    assert cache.load(key, flake_eval.target) is not None
    assert sorted(p.name for p in outside.rglob("*") if p.is_file()) == ["precious.json"]


@pytest.mark.parametrize("change", ["chown", "chmod"])
def test_a_cache_directory_others_can_write_is_not_used(
        tmp_path: Path, fake_proc: FakeProc, change: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """`eval.cache: /tmp/x` that another user (an unsandboxed builder's nixbld user) created
    first, or that every user may write: its entries are not read, nothing is written."""
    _fake_nix(fake_proc)
    target = Target(Flake(Repo("a", _repo(tmp_path / "a")), ""))
    evaluated: list[Target] = []

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        evaluated.extend(targets)
        return [replace(_eval(tmp_path), target=t) for t in targets]

    def run() -> FlakeEval:
        (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                       evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                       Git(("git",)), evaluator)
        return result

    run()
    assert run().cached  # an entry, written by this user
    directory = tmp_path / "cache" / "v1" if change == "chown" else tmp_path / "cache"
    if change == "chown":
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(directory, 12345, 12345)
    else:
        directory.chmod(0o777)
    with caplog.at_level(logging.WARNING, "ci_nix.evalcache"):
        assert not run().cached
    assert "not used" in caplog.text and str(directory) in caplog.text
    assert len(evaluated) == 2


def test_an_entry_too_large_to_load_is_not_written(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry past MAX_ENTRY_BYTES was written and then refused (and removed) by every
    load: each run evaluated and wrote its megabytes again."""
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    monkeypatch.setattr(evalcache, "MAX_ENTRY_BYTES", 100)
    assert not cache.store("a" * 64, flake_eval)
    assert not (tmp_path / "cache").exists()


def test_a_temporary_file_of_a_killed_run_goes_after_an_hour(tmp_path: Path) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    assert cache.store("a" * 64, _eval(tmp_path))
    directory = next((tmp_path / "cache").rglob("*.json")).parent
    old, new = directory / ".x.json.1.tmp", directory / ".x.json.2.tmp"
    for path in (old, new):
        path.write_text("{")
    os.utime(old, (0, 0))
    cache.evict()
    assert not old.exists() and new.exists()  # another run may be writing the new one


def test_the_directory_stays_within_its_bound(tmp_path: Path) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    for index in range(10):
        assert cache.store(f"{index:064d}", flake_eval)
    size = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.json"))
    cache.load(f"{0:064d}", flake_eval.target)  # recently used: kept
    small = evalcache.EvalCache(tmp_path / "cache", max_bytes=size // 2)
    assert small.evict() >= 5
    assert small.load(f"{0:064d}", flake_eval.target) is not None


def test_a_run_looks_at_the_bound_unless_one_did_lately(tmp_path: Path) -> None:
    """A look at the bound reads every file's size: a run leaves it to the last one that
    looked within EVICT_EVERY seconds (the directory grows meanwhile only by what runs write).
    The marker is never written through a symlink, and one from the future does not count."""
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    for index in range(4):
        assert cache.store(f"{index:064d}", flake_eval)
    marker = tmp_path / "cache" / "v1" / evalcache.LOOKED
    assert cache.evict(every=evalcache.EVICT_EVERY) == 0 and marker.is_file()  # looked
    small = evalcache.EvalCache(tmp_path / "cache", max_bytes=1)
    assert small.evict(every=evalcache.EVICT_EVERY) == 0  # one looked just now
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 4
    later = time.time() + evalcache.EVICT_EVERY + 1
    os.utime(marker, (later, later))  # from the future: no look at all
    assert small.evict(every=evalcache.EVICT_EVERY) == 4
    for index in range(2):
        assert cache.store(f"{index:064d}", flake_eval)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("x")
    os.utime(elsewhere, (0, 0))
    marker.unlink()
    marker.symlink_to(elsewhere)
    assert small.evict(every=evalcache.EVICT_EVERY) == 2  # a symlink says nothing
    assert elsewhere.stat().st_mtime == 0 and marker.is_file() and not marker.is_symlink()
    os.utime(marker, (time.time() - evalcache.EVICT_EVERY - 1,) * 2)  # looked long ago
    assert cache.store(f"{0:064d}", flake_eval)
    assert small.evict(every=evalcache.EVICT_EVERY) == 1


def test_settings_follow_flags_config_and_xdg(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "HOME": "/home/u"}
    resolve = evalcache.Settings.resolve
    assert resolve(None, True, False, env).directory == tmp_path / "ci-nix" / "eval"
    assert resolve(None, True, False, {"HOME": "/home/u"}).directory == Path(
        "/home/u/.cache/ci-nix/eval")
    assert resolve(False, True, False, env).directory is None
    assert resolve(None, False, False, env).directory is None
    assert resolve(None, tmp_path / "x", True, env) == evalcache.Settings(tmp_path / "x", True)


@pytest.mark.parametrize("committed", ["entry", "symlink", "loop", None])
def test_a_cache_directory_the_repo_tracks_files_in_is_not_used(
        tmp_path: Path, committed: str | None, caplog: pytest.LogCaptureFixture) -> None:
    """The GitLab template keeps the cache in the checkout (.ci-nix-cache), as may
    `eval.cache: DIR`: a pull request could commit entries there (a forged base side makes
    --skip-unchanged skip what it changed) or commit the directory as a symlink. Untracked,
    as CI's cache restores it, the directory is used."""
    repo = _repo(tmp_path / "a")
    cache = repo / ".ci-nix-cache"
    if committed == "entry":
        write(cache / "ci-nix" / "eval" / "v1" / "ab" / ("ab" * 32 + ".json"), "{}")
    elif committed == "symlink":
        (tmp_path / "elsewhere").mkdir()
        cache.symlink_to(tmp_path / "elsewhere")
    elif committed == "loop":  # raised RuntimeError (a traceback) from Path.resolve
        cache.symlink_to(cache.name)
    if committed is not None:
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "a cache of my own")
    else:
        write(cache / "ci-nix" / "eval" / "v1" / "ab" / ("ab" * 32 + ".json"), "{}")
    ws = load(repo, Git(("git",)))
    with caplog.at_level(logging.WARNING):
        settings = pipeline.eval_cache(EvalFlags(), ws, {"XDG_CACHE_HOME": str(cache)})
    if committed is None:
        assert settings.directory == cache / "ci-nix" / "eval" and not caplog.text
    else:
        assert settings.directory is None
        assert "not used" in caplog.text and ".ci-nix-cache" in caplog.text


def test_eval_cache_in_ci_nix_yaml(tmp_path: Path) -> None:
    from ci_nix import config
    from ci_nix.errors import ConfigError

    file = write(tmp_path / "ci-nix.yaml", "eval:\n  cache: .eval-cache\n")
    assert config.load(file).eval.cache == tmp_path / ".eval-cache"
    write(file, "eval:\n  cache: false\n")
    assert config.load(file).eval.cache is False
    write(file, "eval:\n  cache: [1]\n")
    with pytest.raises(ConfigError, match="eval.cache' must be a directory or false"):
        config.load(file)


# --- real Nix: a run that remembers ------------------------------------------------------


def _workers(fake_proc: FakeProc, nix_bin: str) -> list[str]:
    """The flake each evaluation worker started on (its --override-input flake REF)."""
    name = Path(nix_bin).name
    refs = []
    for call in fake_proc.ran(name, "eval", "--show-trace"):
        argv = list(call.argv)
        at = argv.index("flake", argv.index("--override-input"))
        refs.append(argv[at + 1])
    return refs


# One Nix: what a run remembers and when it evaluates again (a hit, a file left untracked, a
# tracked change, forged and corrupt entries, --no-eval-cache) is ci-nix's own reading of the
# checkout and the cache, the same on any Nix. Each Nix version's part is proven on both:
# the entry its workers' answers make, found at the next run and missed where the commit is
# read, by test_a_new_commit_of_the_same_tree_evaluates_only_what_reads_its_commit; the red
# run's failures (an attribute missing, a broken build) by test_run_fixtures'
# test_run_all_reports_every_attribute.
@ONE_NIX
def test_a_second_run_starts_no_evaluation_worker(fixture_ws: Path, nix_bin: str, cli: Cli,
                                                  fake_proc: FakeProc, tmp_path: Path) -> None:
    args = ("run", "--all", str(fixture_ws), "--system", "x86_64-linux")
    first = cli(*args, "--json", tmp_path / "1.json")
    assert first.returncode == 1, first.stderr  # hosts#packages.x86_64-linux.missing
    assert _workers(fake_proc, nix_bin)
    cold = json_cases(tmp_path / "1.json")

    fake_proc.calls.clear()
    second = cli(*args, "--json", tmp_path / "2.json")
    assert second.returncode == 1, second.stderr
    assert _workers(fake_proc, nix_bin) == [], second.stderr
    assert "with 0 Nix evaluations" in second.stderr
    warm = json_cases(tmp_path / "2.json")
    assert {k: (c["status"], c.get("drvPath")) for k, c in warm.items()} == {
        k: (c["status"], c.get("drvPath")) for k, c in cold.items()}

    # an untracked file: still a hit; an uncommitted change to a tracked file: hosts misses
    hosts = fixture_ws / "hosts"
    write(hosts / "scratch.nix", "throw \"untracked\"")
    fake_proc.calls.clear()
    assert cli(*args).returncode == 1
    assert _workers(fake_proc, nix_bin) == []
    flake_nix = hosts / "flake.nix"
    flake_nix.write_text(flake_nix.read_text() + "\n# touched\n")
    fake_proc.calls.clear()
    assert cli(*args).returncode == 1
    assert [ref for ref in _workers(fake_proc, nix_bin) if "hosts" in ref]
    assert not [ref for ref in _workers(fake_proc, nix_bin) if "modules" in ref]

    # forged: the red attribute turned into a job whose outputs no cache has -> evaluated
    # again, and it fails as it should
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "ci-nix" / "eval"
    forged = 0
    for entry in cache.rglob("*.json"):
        data = json.loads(entry.read_text())
        if data["flake"] != "hosts":
            continue
        for failure in data["failures"]:
            data["jobs"].append({"attr": failure["name"].split("."), "system": "x86_64-linux",
                                 "drvPath": "/nix/store/" + "0" * 32 + "-forged.drv",
                                 "outputs": [["out", "/nix/store/" + "1" * 32 + "-forged"]],
                                 "closure": []})
        data["failures"] = []
        entry.write_text(json.dumps(data))
        forged += 1
    assert forged
    fake_proc.calls.clear()
    third = cli(*args, "--json", tmp_path / "3.json")
    assert third.returncode == 1, third.stderr
    assert [ref for ref in _workers(fake_proc, nix_bin) if "hosts" in ref]
    assert json_cases(tmp_path / "3.json")["hosts#packages.x86_64-linux.missing"]["status"] == \
        "failed"

    # forged with a derivation that is in the local store and whose outputs no cache has (the
    # broken package's): it is built, not passed on the entry's word, and fails as that build
    broken = cold["modules#packages.x86_64-linux.broken"]["drvPath"]
    for entry in cache.rglob("*.json"):
        data = json.loads(entry.read_text())
        if data["flake"] == "hosts":
            data["jobs"] += [{"attr": f["name"].split("."), "system": "x86_64-linux",
                              "drvPath": broken, "outputs": [["out", "/nix/store/" + "2" * 32
                                                              + "-forged"]], "closure": []}
                             for f in data["failures"]]
            data["failures"] = []
            entry.write_text(json.dumps(data))
    fake_proc.calls.clear()
    built = cli(*args, "--json", tmp_path / "built.json")
    assert built.returncode == 1, built.stderr
    assert not [ref for ref in _workers(fake_proc, nix_bin) if "hosts" in ref], built.stderr
    missing = json_cases(tmp_path / "built.json")["hosts#packages.x86_64-linux.missing"]
    assert missing["status"] == "failed" and missing["failure"]["type"] == "build", missing

    # a corrupt entry: ignored, evaluated again, no traceback
    for entry in cache.rglob("*.json"):
        entry.write_bytes(b"\x00garbage")
    fake_proc.calls.clear()
    fourth = cli(*args)
    assert fourth.returncode == 1 and "Traceback" not in fourth.stderr
    assert "evaluation cache: ignoring" in fourth.stderr
    assert _workers(fake_proc, nix_bin)

    # --no-eval-cache evaluates everything
    fake_proc.calls.clear()
    assert cli(*args, "--no-eval-cache").returncode == 1
    assert len(_workers(fake_proc, nix_bin)) >= 2


def test_verify_eval_cache_fails_a_flake_whose_entry_differs(tmp_path: Path,
                                                             fake_proc: FakeProc) -> None:
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    honest = replace(_eval(tmp_path), target=target)
    selection = Selection(("x86_64-linux",), ("packages",))
    settings = evalcache.Settings(tmp_path / "cache")
    evaluated: list[Target] = []

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        evaluated.extend(targets)
        return [honest for _ in targets]

    def run(settings: evalcache.Settings) -> FlakeEval:
        (result,) = evalcache.evaluate([target], selection, settings, Nix(("nix",)),
                                       Git(("git",)), evaluator)
        return result

    assert not run(settings).cached and evaluated == [target]  # a miss, remembered
    evaluated.clear()
    assert run(settings).cached and evaluated == []  # a hit: nothing evaluated
    assert run(replace(settings, verify=True)).cases == ()  # verified: the same
    assert evaluated == [target]
    # forge the entry: another drvPath for the attribute
    entry = next((tmp_path / "cache").rglob("*.json"))
    data = json.loads(entry.read_text())
    data["jobs"][0]["drvPath"] = "/nix/store/" + "f" * 32 + "-forged.drv"
    entry.write_text(json.dumps(data))
    assert run(settings).jobs[0].drv_path.endswith("-forged.drv")  # what --verify is for
    checked = run(replace(settings, verify=True))
    assert checked.jobs == honest.jobs and not checked.cached
    (failure,) = [c.failure for c in checked.cases if c.failure is not None]
    assert failure.type is FailureType.OTHER and "forged.drv" in failure.message
    assert not entry.exists()  # removed: the next run evaluates and remembers afresh


@pytest.mark.parametrize("setting, value", [
    ("pure-eval", False), ("allow-unsafe-native-code-during-evaluation", True),
    ("plugin-files", ["/nix/store/x-nix-plugins/lib/nix/plugins"])])
def test_an_impure_evaluation_is_never_cached(tmp_path: Path, fake_proc: FakeProc,
                                              setting: str, value: object) -> None:
    """pure-eval = false (nix-options, NIX_CONFIG, --option): a flake may read its checkout's
    HEAD by fetchGit, the environment or the clock; with unsafe native code, by
    builtins.exec (pure-eval does not stop it). An entry was found at the next commit of the
    same tree with the old commit's drvPath (both Nix versions, by hand)."""
    _fake_nix(fake_proc, {**SETTINGS, setting: {"value": value}})
    target = Target(Flake(Repo("a", _repo(tmp_path / "a")), ""))
    evaluated: list[Target] = []

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        evaluated.extend(targets)
        return [replace(_eval(tmp_path), target=t, commit_read=()) for t in targets]

    for _ in range(2):
        (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                       evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                       Git(("git",)), evaluator)
        assert not result.cached
    assert evaluated == [target, target]
    assert not list((tmp_path / "cache").rglob("*.json"))


OLDER = "/nix/store/" + "c" * 32 + "-hello-0.9"  # an older build of the attribute, cached


@pytest.mark.parametrize("field, value, shown", [
    ("outputs", [["out", OLDER]], OLDER), ("system", "aarch64-linux", "aarch64-linux")])
def test_verify_eval_cache_checks_what_decides_cached(tmp_path: Path, fake_proc: FakeProc,
                                                      field: str, value: object,
                                                      shown: str) -> None:
    """An entry with the attribute's true drvPath but another build's outputs: `cached` asks
    the binary cache for the outputs, so it would pass green; --verify-eval-cache said
    "verified" (it compared drvPaths only)."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    target = Target(Flake(Repo("a", _repo(tmp_path / "a")), ""))
    honest = replace(_eval(tmp_path), target=target)

    def run(verify: bool) -> FlakeEval:
        (result,) = evalcache.evaluate(
            [target], Selection(("x86_64-linux",), ("packages",)),
            evalcache.Settings(tmp_path / "cache", verify), Nix(("nix",)), Git(("git",)),
            lambda targets: [honest for _ in targets])
        return result

    run(False)
    entry = next((tmp_path / "cache").rglob("*.json"))
    data = json.loads(entry.read_text())
    data["jobs"][0][field] = value
    entry.write_text(json.dumps(data))
    checked = run(True)
    (failure,) = [c.failure for c in checked.cases if c.failure is not None]
    assert "--verify-eval-cache" in failure.message and shown in failure.message
    assert checked.jobs == honest.jobs and not entry.exists()


def test_verify_eval_cache_blames_no_entry_for_a_timeout(tmp_path: Path,
                                                         fake_proc: FakeProc) -> None:
    """The evaluation that verifies an entry times out: the run reports that timeout, but the
    entry is neither called forged (an `other` failure) nor removed."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    target = Target(Flake(Repo("a", _repo(tmp_path / "a")), ""))
    honest = replace(_eval(tmp_path), target=target)
    timeout = Case("a", "packages.x86_64-linux.hello", Status.FAILED, failure=Failure(
        FailureType.TIMEOUT, "evaluation took longer than --eval-timeout 5s"))
    results = [honest, replace(honest, jobs=(), cases=(timeout,))]

    def run(verify: bool) -> FlakeEval:
        (result,) = evalcache.evaluate(
            [target], Selection(("x86_64-linux",), ("packages",)),
            evalcache.Settings(tmp_path / "cache", verify), Nix(("nix",)), Git(("git",)),
            lambda targets: [results.pop(0) for _ in targets])
        return result

    run(False)
    checked = run(True)
    assert [c.failure.type for c in checked.cases if c.failure] == [FailureType.TIMEOUT]
    assert list((tmp_path / "cache").rglob("*.json"))  # kept


def test_a_checkout_that_changes_during_evaluation_is_not_remembered(
        tmp_path: Path, fake_proc: FakeProc) -> None:
    """Two runs in one checkout (or a branch switched while ci-nix evaluates): Nix may read
    the new state, and its result was remembered under the old state's key, so going back to
    the old state found the new state's drvPaths."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        write(repo / "flake.nix", "{ outputs = _: { changed = true; }; }")  # meanwhile
        git(repo, "commit", "-qam", "meanwhile")
        return [replace(_eval(tmp_path), target=t, commit_read=()) for t in targets]

    (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                   evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                   Git(("git",)), evaluator)
    assert not result.cached
    assert not list((tmp_path / "cache").rglob("*.json"))


@pytest.mark.parametrize("said", [None, "keyed", "other"])
@pytest.mark.parametrize("change", ["commit", "edit", "staged", "none"])
def test_a_known_checkout_is_read_again_in_one_git_call(
        tmp_path: Path, fake_proc: FakeProc, change: str, said: str | None) -> None:
    """The pipeline hands over each repo's commit, tree and dirtiness (inputs.checkouts);
    after the evaluation one `git status` per repo says whether it is still that state,
    unless every Nix process said it read the keyed commit (eval.nix's "source": then what
    changed afterwards does not matter), and nothing is remembered when one read another."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    state = Git(("git",)).head_state(repo)
    assert state is not None
    rev, tree, dirty = state
    assert Git(("git",)).head_status(repo) == (rev, dirty)
    git(tmp_path, "init", "-q", str(tmp_path / "empty"))
    assert Git(("git",)).head_status(tmp_path / "empty") is None  # nothing committed

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        fake_proc.calls.clear()
        text = (repo / "flake.nix").read_text()
        if change != "none":  # meanwhile
            write(repo / "flake.nix", "{ outputs = _: { changed = true; }; }")
        if change == "commit":
            git(repo, "commit", "-qam", "meanwhile")
        elif change == "staged":  # staged, then undone in the work tree: dirty to Nix 2.26
            git(repo, "add", "flake.nix")
            write(repo / "flake.nix", text)
        revs = None if said is None else (rev, rev if said == "keyed" else "f" * 40)
        return [replace(_eval(tmp_path), target=t, commit_read=(), source_revs=revs)
                for t in targets]

    (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                   evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                   Git(("git",)), evaluator, {str(repo): (rev, dirty)},
                                   {rev: tree})
    assert not result.cached
    stored = list((tmp_path / "cache").rglob("*.json"))
    assert bool(stored) is (said == "keyed" or said is None and change == "none")
    if said == "keyed":  # what Nix read is the keyed commit, whatever came after
        assert not fake_proc.ran("git", "status"), fake_proc.calls
        assert json.loads(stored[0].read_text())["key"] == evalcache.Keys(
            Nix(("nix",)), Git(("git",)), Selection(("x86_64-linux",), ("packages",)),
            {str(repo): (rev, dirty)}, {rev: tree}).by_tree(target)
    elif said is None and change in ("commit", "none"):  # one call (a dirty repo: read whole)
        assert len(fake_proc.ran("git", "status")) == 1, fake_proc.calls
        assert not fake_proc.ran("git", "rev-parse"), fake_proc.calls


def test_a_pinned_commit_keys_as_a_clean_checkout_of_it(tmp_path: Path,
                                                         fake_proc: FakeProc) -> None:
    """A --pin (rev=) of a commit reads what a clean checkout of it gave, as a base worktree
    finds what the base's own run remembered; a dirty checkout is another source."""
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    head = git(repo, "rev-parse", "HEAD")
    clean = _keys().of(Target(Flake(Repo("a", repo), "")))
    pinned = _keys().of(Target(Flake(Repo("a", repo, rev=head), "")))
    assert clean is not None and pinned == clean
    # what the plan read (HEAD, clean) spares the git calls, and gives the same key
    calls = len(fake_proc.calls)
    known = evalcache.Keys(Nix(("nix",)), Git(("git",)), Selection(("x86_64-linux",),
                           ("packages",)), {str(repo.resolve()): (head, False)})
    assert known.of(Target(Flake(Repo("a", repo), ""))) == clean
    assert not [c for c in fake_proc.calls[calls:] if c.argv[0] == "git"]
    write(repo / "flake.nix", "{ outputs = _: { z = 1; }; }")
    assert _keys().of(Target(Flake(Repo("a", repo), ""))) != pinned


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=30)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["jobs", "failures", "listed", "format", "key",
                                               "evaluator", "flake"]), _JSON),
       job=st.dictionaries(st.sampled_from(["attr", "system", "drvPath", "outputs", "closure"]),
                           _JSON))
def test_any_entry_loads_as_an_evaluation_or_a_miss(tmp_path: Path, fields: dict[str, object],
                                                    job: dict[str, object]) -> None:
    """A restored cache is outside data: whatever an entry holds, load gives a FlakeEval of
    well-formed jobs or a miss, never an exception."""
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    key = "e" * 64
    assert cache.store(key, flake_eval)
    entry = next((tmp_path / "cache").rglob("*.json"))
    data = json.loads(entry.read_text())
    data["jobs"] = [{**data["jobs"][0], **job}]
    data.update(fields)
    entry.write_text(json.dumps(data))
    loaded = cache.load(key, flake_eval.target)
    if loaded is not None:
        for loaded_job in loaded.jobs:
            assert loaded_job.drv_path.startswith("/") and loaded_job.drv_path.endswith(".drv")
            assert all(path.startswith("/") for path in loaded_job.out_paths)


def test_a_deeply_nested_or_huge_entry_is_a_miss(tmp_path: Path) -> None:
    cache = evalcache.EvalCache(tmp_path / "cache")
    flake_eval = _eval(tmp_path)
    key = "f" * 64
    assert cache.store(key, flake_eval)
    entry = next((tmp_path / "cache").rglob("*.json"))
    entry.write_text("[" * 100_000 + "]" * 100_000)
    assert cache.load(key, flake_eval.target) is None
    assert cache.store(key, flake_eval)
    with entry.open("r+b") as file:
        file.truncate(evalcache.MAX_ENTRY_BYTES + 1)
    assert cache.load(key, flake_eval.target) is None and not entry.exists()


def _amend(repo: Path, message: str) -> str:
    """Another commit of the same tree (as a merge commit whose tree a pull request tested)."""
    git(repo, "commit", "-q", "--amend", "--allow-empty", "-m", message,
        "--date", "2001-01-01T00:00:00")
    return git(repo, "rev-parse", "HEAD")


def test_a_change_staged_and_undone_is_uncommitted(tmp_path: Path) -> None:
    """Nix 2.26 reads a checkout whose index differs from HEAD (a change staged, then undone
    in the work tree) as dirty: no self.rev (by hand: `self.shortRev or "dirty"` gave
    "dirty"). `git diff HEAD` called it clean, so that evaluation was remembered under the
    clean commit's keys. A touched file with unchanged content stays clean."""
    repo = _repo(tmp_path / "a")
    checkout = inputs.checkouts(load(repo, Git(("git",))), Git(("git",)))["a"]
    assert checkout.rev and not checkout.dirty
    os.utime(repo / "flake.nix", (0, 0))
    assert not inputs.checkouts(load(repo, Git(("git",))), Git(("git",)))["a"].dirty
    text = (repo / "flake.nix").read_text()
    write(repo / "flake.nix", text + "\n")
    git(repo, "add", "flake.nix")
    write(repo / "flake.nix", text)
    assert inputs.checkouts(load(repo, Git(("git",))), Git(("git",)))["a"].dirty


def test_the_checkouts_read_tree_needs_no_git_call(tmp_path: Path, fake_proc: FakeProc,
                                                   ) -> None:
    # run/diff read each repo's commit and tree once (inputs.checkouts): the key by tree asks
    # git nothing more (a diff of 20 repos ran 40 `rev-parse TREE` before) on a Nix that reads
    # sources with libgit2 (before 2.20, `git archive`: one `git grep` for export-subst,
    # test_a_tree_whose_files_get_their_commit_keys_by_commit)
    _fake_nix(fake_proc, version="2.26.3")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    state = Git(("git",)).commit_and_tree(repo, "HEAD")
    assert state is not None and state[1] == git(repo, "rev-parse", "HEAD^{tree}")
    expected = _keys().by_tree(target)
    fake_proc.calls.clear()
    keys = evalcache.Keys(Nix(("nix",)), Git(("git",)), Selection(("x86_64-linux",),
                          ("packages",)), {str(repo): (state[0], False)}, {state[0]: state[1]})
    assert keys.by_tree(target) == expected
    assert not fake_proc.ran("git"), fake_proc.calls


def test_the_key_by_tree_is_the_same_at_every_commit_of_a_tree(tmp_path: Path,
                                                                fake_proc: FakeProc) -> None:
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    by_commit, by_tree = _keys().of(target), _keys().by_tree(target)
    assert None not in (by_commit, by_tree) and by_commit != by_tree
    head = _amend(repo, "the same tree")
    assert _keys().of(target) != by_commit and _keys().by_tree(target) == by_tree
    # a rev= pin of the commit: what a clean checkout of it gives
    assert _keys().by_tree(Target(Flake(Repo("a", repo, rev=head), ""))) == by_tree
    # the same files uncommitted on another commit: a dirty tree (no self.rev) is another key
    write(repo / "flake.nix", "{ outputs = _: { x = 1; }; }")
    dirty = _keys().by_tree(target)
    git(repo, "commit", "-qam", "x")
    assert dirty not in (None, by_tree, _keys().by_tree(target))
    git(repo, "reset", "-q", "--soft", "HEAD^")
    assert _keys().by_tree(target) == dirty
    # a lock that hands an input the flake's own commit (a relative path input, Nix >= 2.25,
    # or one that follows the root): keyed by commit only
    nodes: list[dict[str, object]] = [
        {"locked": {"type": "path", "path": "./sub"}, "parent": []}, {"inputs": {"me": []}}]
    for node in nodes:
        write(repo / "flake.lock", json.dumps({"nodes": {"root": {"inputs": {"x": "x"}},
                                                         "x": node}, "root": "root"}))
        assert _keys().of(target) is not None and _keys().by_tree(target) is None


def test_a_tree_whose_files_get_their_commit_keys_by_commit(tmp_path: Path,
                                                            fake_proc: FakeProc) -> None:
    """`version.txt export-subst` in .gitattributes: Nix 2.8 reads a clean checkout with git
    archive, which writes the commit's hash into version.txt; a flake that reads the file got
    the previous commit's drvPath at the next commit of the same tree (by hand)."""
    _fake_nix(fake_proc)  # Nix 2.8
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    assert _keys().by_tree(target) is not None
    write(repo / "version.txt", "$Format:%H$")
    write(repo / "nested" / ".gitattributes", "*.txt export-subst\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "stamped")
    assert _keys().of(target) is not None and _keys().by_tree(target) is None
    git(repo, "rm", "-q", "nested/.gitattributes")
    git(repo, "commit", "-qm", "unstamped")
    assert _keys().by_tree(target) is not None
    write(repo / ".git" / "info" / "attributes", "version.txt export-subst\n")
    assert _keys().by_tree(target) is None
    # the repo's own attributes are in no tree, so no writer can have checked them for a reader
    assert _keys().by_tree(target, to_read=True) is None
    _fake_nix(fake_proc, version="2.26.3")  # libgit2: no export-subst
    assert _keys().by_tree(target) is not None


@pytest.mark.parametrize("read, hits", [((), True), (("lastModified",), False),
                                         (None, False)])
def test_an_evaluation_that_reads_no_commit_is_found_at_another_commit(
        tmp_path: Path, fake_proc: FakeProc, read: tuple[str, ...] | None, hits: bool) -> None:
    """The push of a merge commit whose tree was evaluated before hits, unless the evaluation
    read the commit (self.rev, self.lastModified, ...: eval.nix says so) or it is not known."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "derivation", "show", stdout="{}")
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    evaluation = replace(_eval(tmp_path), target=target, commit_read=read)
    evaluated: list[Target] = []

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        evaluated.extend(targets)
        return [evaluation for _ in targets]

    def run() -> FlakeEval:
        (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                       evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                       Git(("git",)), evaluator)
        return result

    assert not run().cached and evaluated == [target]
    # on Nix 2.8 (git archive), whether the tree's files get its commit is asked when the
    # entry is written under the tree, never when it is read (its writer asked)
    assert bool(fake_proc.ran("git", "grep")) is hits
    fake_proc.calls.clear()
    assert run().cached and evaluated == [target]  # the same commit: a hit either way
    _amend(repo, "merged")
    assert run().cached is hits and len(evaluated) == (1 if hits else 2)
    assert not fake_proc.ran("git", "grep")


def test_a_tree_found_clean_is_not_asked_about_again(tmp_path: Path,
                                                     fake_proc: FakeProc) -> None:
    """Whether a tree's .gitattributes name export-subst (Nix 2.8, Lix) is a fact of the tree:
    once found clean, a later evaluation of the same tree (another selection, another run, a
    dependent of a changed flake) is stored by tree without asking git again."""
    _fake_nix(fake_proc)  # Nix 2.8
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))

    def run(system: str, cache: str = "cache") -> FlakeEval:
        (result,) = evalcache.evaluate(
            [target], Selection((system,), ("packages",)), evalcache.Settings(tmp_path / cache),
            Nix(("nix",)), Git(("git",)),
            lambda targets: [replace(_eval(tmp_path), target=t, commit_read=()) for t in targets])
        return result

    def greps() -> int:
        return len(fake_proc.ran("git", "grep"))

    run("x86_64-linux")
    assert greps() == 1
    run("aarch64-linux")  # another key, the same tree: stored by it, git not asked
    assert greps() == 1 and len(list((tmp_path / "cache").rglob("*.json"))) == 2
    run("aarch64-linux", "other")  # another cache directory knows nothing of it
    assert greps() == 2
    (clean,) = (tmp_path / "cache").rglob("*.clean")
    clean.write_text('{"format": 1, "clean-tree": "another tree"}')
    run("riscv64-linux")  # what it says is not this tree: asked again
    assert greps() == 3
    # a tree that names export-subst is never remembered clean, and keys by commit only
    write(repo / ".gitattributes", "*.txt export-subst\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "stamped")
    for system in ("x86_64-linux", "i686-linux"):
        run(system)
    assert greps() == 5
    # bounded with the entries
    evalcache.EvalCache(tmp_path / "cache", max_bytes=0).evict()
    assert not list((tmp_path / "cache").rglob("*.clean"))


def test_a_worker_says_when_the_evaluation_reads_the_commit() -> None:
    assert parse_worker_line(WORKER_LINE + '{"commit":"rev"}') == CommitRead("rev")
    assert parse_worker_line(WORKER_LINE + '{"commit":"rev","x":1}') is None  # not ours


@pytest.mark.nix
def test_a_new_commit_of_the_same_tree_evaluates_only_what_reads_its_commit(
        tmp_path: Path, nix_bin: str, cli: Cli, fake_proc: FakeProc) -> None:
    """Real Nix: a flake naming a package after self.shortRev is evaluated again at another
    commit of the same tree (its drvPath changes with it); one that reads nothing of its
    commit is not."""
    nonce = os.urandom(4).hex()
    drvs: dict[str, list[str]] = {}
    for name, version in (("plain", '"1"'), ("stamped", 'self.shortRev or "dirty"')):
        repo = tmp_path / name
        write(repo / "flake.nix", f"""{{
  outputs = {{ self }}: {{
    packages.x86_64-linux.{name} = derivation {{
      name = "{name}-{nonce}-${{{version}}}"; system = "x86_64-linux";
      builder = "/bin/sh"; args = [ "-c" "echo > $out" ];
    }};
  }};
}}""")
        git(tmp_path, "init", "-q", str(repo))
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "init")
        for message in ("first", "merged"):
            if message == "merged":
                _amend(repo, message)
            fake_proc.calls.clear()
            result = cli("matrix", "--all", repo, "--format", "json")
            assert result.returncode == 0, result.stderr
            (job,) = json.loads(result.stdout)["jobs"]
            drvs.setdefault(name, []).append(job["drvPath"])
            evaluations = int(result.stderr.split("flake with ")[1].split()[0])
            assert evaluations == (0 if (name, message) == ("plain", "merged") else 1), (
                name, message, result.stderr)
    assert drvs["plain"][0] == drvs["plain"][1]
    assert drvs["stamped"][0] != drvs["stamped"][1]


def test_a_hit_is_told_before_anything_is_evaluated(tmp_path: Path, fake_proc: FakeProc) -> None:
    """on_hit hears of each flake the cache has before the evaluator starts: run checks a
    cached flake for an --only attribute it lacks before it builds anything."""
    _fake_nix(fake_proc)
    cached = Target(Flake(Repo("a", _repo(tmp_path / "a")), ""))
    fresh = Target(Flake(Repo("b", _repo(tmp_path / "b")), ""))
    heard: list[str] = []

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        heard.extend(f"evaluate {t.flake.id}" for t in targets)
        return [replace(_eval(tmp_path), target=t) for t in targets]

    def run(targets: list[Target]) -> list[FlakeEval]:
        return evalcache.evaluate(targets, Selection(("x86_64-linux",), ("packages",)),
                                  evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                  Git(("git",)), evaluator,
                                  on_hit=lambda e: heard.append(f"hit {e.target.flake.id}"))

    run([cached])
    heard.clear()
    assert [e.cached for e in run([cached, fresh])] == [True, False]
    assert heard == ["hit a", "evaluate b"]


def _with_submodule(tmp_path: Path, name: str = "a") -> tuple[Path, Path]:
    """A repo whose `s` is a git submodule holding s.txt: (the repo, the submodule's source)."""
    source = tmp_path / "subsrc"
    write(source / "s.txt", "a")
    git(tmp_path, "init", "-q", str(source))
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "s")
    repo = _repo(tmp_path / name)
    git(repo, "-c", "protocol.file.allow=always", "submodule", "-q", "add", str(source), "s")
    git(repo, "commit", "-q", "-m", "submodule")
    return repo, source


def test_a_submodule_git_cannot_look_into_is_not_cached(tmp_path: Path,
                                                       fake_proc: FakeProc) -> None:
    """Whether a submodule has uncommitted changes is asked of git in it: an answer that is
    no answer (git failed there) was taken for "clean", so its work tree, which Nix reads, was
    keyed as its commit. So was every submodule of a SHA-256 repository: its 64-digit commit
    was cut at 40, the rest taken for the path, and git asked in a directory that is none."""
    _fake_nix(fake_proc)
    repo, _ = _with_submodule(tmp_path)
    target = Target(Flake(Repo("a", repo), ""))
    assert _keys().of(target) is not None
    fake_proc.on("git", "status", "--untracked-files=no", returncode=128,
                 stderr="fatal: not a git repository\n")
    assert _keys().of(target) is None
    # a SHA-256 repository's status line, as git 2.39 prints it
    line = f" {'c7' * 32} s (heads/master)\n"
    fake_proc.on("git", "submodule", "status", stdout=line)
    seen: list[str] = []

    def dirty(call: Call) -> Reply:
        seen.append(call.argv[call.argv.index("-C") + 1])
        return Reply(stdout=" M s.txt\n")

    fake_proc.on("git", "status", "--untracked-files=no", handler=dirty)
    assert _keys().of(target) is None and seen == [str(repo / "s")]


@pytest.mark.parametrize("submodules", ["", "?submodules=1"])
def test_a_submodule_change_misses_or_is_not_cached(tmp_path: Path, fake_proc: FakeProc,
                                                    submodules: str) -> None:
    """Nix reads a checkout's submodules from their work trees (`submodules=1`, as a lock that
    fetches an input with its submodules asks; a flake's `self.submodules` since Nix 2.27).
    The superproject's `git stash create` sees none of a change inside one: two contents got
    one key. Now a submodule checked out elsewhere is another key, and one with uncommitted
    changes is not cached; a repo without submodules asks git nothing more."""
    _fake_nix(fake_proc)
    repo, _ = _with_submodule(tmp_path)
    target = Target(Flake(Repo("a", repo), ""),
                    overrides=(Override("dep", "git+file://" + str(repo) + submodules),))
    plain = Target(Flake(Repo("a", repo), ""))
    clean = _keys().of(target)
    assert clean is not None and _keys().of(plain) is not None
    write(repo / "s" / "s.txt", "b")  # inside the submodule, uncommitted
    assert _keys().of(target) is None and _keys().of(plain) is None
    git(repo / "s", "commit", "-q", "-am", "b")  # the submodule at another commit
    moved = _keys().of(target)
    assert moved is not None and moved != clean
    git(repo, "commit", "-q", "-am", "bump")  # the superproject records it
    assert _keys().of(target) not in (None, clean, moved)
    other = _repo(tmp_path / "other")
    fake_proc.calls.clear()
    assert _keys().of(Target(Flake(Repo("other", other), ""))) is not None
    assert not [c for c in fake_proc.ran("git") if "submodule" in c.argv]


def test_a_submodule_moved_during_evaluation_is_not_remembered(tmp_path: Path,
                                                               fake_proc: FakeProc) -> None:
    """Nix saying it read the superproject at the keyed commit says nothing of the submodules'
    work trees it reads too: a checkout with submodules is read again after the evaluation."""
    _fake_nix(fake_proc)
    fake_proc.on("nix", "show-derivation", stdout="{}")
    repo, _ = _with_submodule(tmp_path)
    target = Target(Flake(Repo("a", repo), ""))
    state = Git(("git",)).head_state(repo)
    assert state is not None
    rev, tree, dirty = state

    def evaluator(targets: Sequence[Target]) -> list[FlakeEval]:
        write(repo / "s" / "s.txt", "b")  # meanwhile the submodule moves on
        git(repo / "s", "commit", "-q", "-am", "b")
        return [replace(_eval(tmp_path), target=t, commit_read=(), source_revs=(rev,))
                for t in targets]

    (result,) = evalcache.evaluate([target], Selection(("x86_64-linux",), ("packages",)),
                                   evalcache.Settings(tmp_path / "cache"), Nix(("nix",)),
                                   Git(("git",)), evaluator, {str(repo): (rev, dirty)},
                                   {rev: tree})
    assert not result.cached and not list((tmp_path / "cache").rglob("*.json"))
    assert fake_proc.ran("git", "status", "--porcelain=v2")


@pytest.mark.nix
def test_an_input_fetched_with_its_submodules_is_read_from_the_checkout(
        tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    """Real Nix: a flake.lock fetches the workspace input `dep` with its submodules; its
    checkout differs (uncommitted changes in the submodule), so `dep` comes from it — with its
    submodules (the override dropped them: Nix could not read s/s.txt), and each change there
    is what is evaluated, never an entry from the evaluation cache."""
    nonce = os.urandom(4).hex()
    ws = tmp_path / "ws"
    ws.mkdir()
    dep, _ = _with_submodule(ws, "dep")
    app = ws / "app"
    write(app / "flake.nix", f"""{{
  inputs.dep.url = "git+file://{dep}?submodules=1";
  inputs.dep.flake = false;
  outputs = {{ self, dep }}: {{
    packages.x86_64-linux.p = derivation {{
      name = "p-{nonce}-${{builtins.readFile "${{dep}}/s/s.txt"}}"; system = "x86_64-linux";
      builder = "/bin/sh"; args = [ "-c" "echo > $out" ];
    }};
  }};
}}""")
    git(tmp_path, "init", "-q", str(app))
    git(app, "add", ".")
    locked = subprocess.run([*nix_bin.split(), "--extra-experimental-features",
                             "nix-command flakes", "flake", "lock", f"git+file://{app}"],
                            capture_output=True, text=True, env={
                                **os.environ, "GIT_CONFIG_COUNT": "1",  # a local submodule
                                "GIT_CONFIG_KEY_0": "protocol.file.allow",
                                "GIT_CONFIG_VALUE_0": "always"})
    assert locked.returncode == 0, locked.stderr
    git(app, "add", ".")
    git(app, "commit", "-q", "-m", "init")
    write(ws / "ci-nix.yaml", "repos:\n  - path: dep\n  - path: app\n")
    drvs = []
    for content in ("c", "d"):
        write(dep / "s" / "s.txt", content)
        result = cli("matrix", "--all", ws, "--only", "app#packages.x86_64-linux.p",
                     "--format", "json")
        assert result.returncode == 0, result.stderr
        (job,) = json.loads(result.stdout)["jobs"]
        drvs.append(job["drvPath"])
    assert drvs[0].endswith(f"p-{nonce}-c.drv") and drvs[1].endswith(f"p-{nonce}-d.drv")


def test_entries_can_wait_and_then_remember_the_checkout_as_it_is(
        tmp_path: Path, fake_proc: FakeProc, caplog: pytest.LogCaptureFixture) -> None:
    """`diff` has the head's entries written while Nix reads closure sizes (evaluate's
    `later`): nothing is written before later.run(), the evaluation already carries its
    closures, and the checkout is read at run() (still after the evaluation): a change made
    in between is not remembered under the key of what Nix read."""
    _fake_nix(fake_proc)
    repo = _repo(tmp_path / "a")
    target = Target(Flake(Repo("a", repo), ""))
    entries = tmp_path / "cache" / f"v{evalcache.FORMAT}"

    def run(later: evalcache.Pending | None) -> FlakeEval:
        (result,) = evalcache.evaluate(
            [target], Selection(("x86_64-linux",), ("packages",)),
            evalcache.Settings(tmp_path / "cache"), Nix(("nix",)), Git(("git",)),
            lambda targets: [replace(_eval(tmp_path), target=t) for t in targets],
            later=later)
        return result

    later = evalcache.Pending()
    evaluated = run(later)
    assert not evaluated.cached and not list(entries.glob("*/*.json"))
    # the closures are read with the entries (into later.closures), not before
    assert evaluated.closures == () and later.closures == {}
    later.run()
    later.run()  # once
    assert len(list(entries.glob("*/*.json"))) == 1 and run(None).cached
    # changed between the evaluation and the writing: not remembered
    write(repo / "flake.nix", "{ outputs = _: { x = 1; }; }")
    git(repo, "commit", "-qam", "x")
    later = evalcache.Pending()
    assert not run(later).cached
    write(repo / "flake.nix", "{ outputs = _: { x = 2; }; }")
    with caplog.at_level(logging.WARNING, "ci_nix.evalcache"):
        later.run()
    assert "changed while it was evaluated; not remembered" in caplog.text
    assert len(list(entries.glob("*/*.json"))) == 1


def test_one_reading_of_the_repos_reads_each_lock_and_source_once(
        tmp_path: Path, fake_proc: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's keys by commit and by tree, and the dependents of one input (P8: 19 flakes
    overriding the root), read each flake.lock and each checkout's source once per reading;
    a reading after the evaluation (reread) reads them again."""
    _fake_nix(fake_proc)
    dep = _repo(tmp_path / "dep")
    targets = [Target(Flake(Repo(name, _repo(tmp_path / name)), ""),
                      overrides=(Override("dep", Flake(Repo("dep", dep), "").ref),))
               for name in ("a", "b")]
    locks: list[Path] = []
    real_read = lockfile.read_bytes

    def read_bytes(path: Path, *args: object) -> bytes:
        locks.append(path)
        return real_read(path)

    monkeypatch.setattr(lockfile, "read_bytes", read_bytes)
    keys = _keys()
    first = [(keys.of(t), keys.by_tree(t, to_read=True), keys.by_tree(t)) for t in targets]
    assert all(key is not None for triple in first for key in triple)
    assert sorted(p.parent.name for p in locks) == ["a", "b"]
    assert len(keys._sources) == 3  # a, b and dep, each read once
    locks.clear()
    again = keys.reread()
    assert [(again.of(t), again.by_tree(t, to_read=True), again.by_tree(t))
            for t in targets] == first
    assert sorted(p.parent.name for p in locks) == ["a", "b"]
