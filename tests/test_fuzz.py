"""Parsers of outside data, fuzzed: whatever the bytes, a typed result or a one-line CiNixError.

ci-nix.yaml, bots.yaml, flake.lock, narinfo (tests/test_narinfo.py), Nix's internal-json lines
(also tests/test_nixlog.py), and the forge answers ci-nix parses itself (Retry-After). Examples
are bounded so the suite stays fast; the strategies lean towards almost-valid input, where
parsers break.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ci_nix import bots, config, lockfile
from ci_nix.errors import CiNixError
from ci_nix.forge import retry_after
from ci_nix.tools import nixlog

# CI_NIX_FUZZ_EXAMPLES=5000 for a longer hunt by hand
SETTINGS = settings(max_examples=int(os.environ.get("CI_NIX_FUZZ_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def one_line_error(err: CiNixError) -> None:
    message = str(err)
    assert message and "\n" not in message, repr(message)


# --- YAML: ci-nix.yaml and bots.yaml ---------------------------------------------------------

KEYS = ["repos", "systems", "outputs", "include", "exclude", "ignore", "runners", "cache",
        "update", "forge", "eval", "nix-options", "path", "name", "url", "type", "server",
        "token-env", "push", "substituter", "required", "inputs", "labels", "auto-merge",
        "forges", "project", "clone", "base", "branch", "workers", "memory", "timeout", "x"]
SCALARS = st.one_of(
    st.sampled_from(["true", "no", "null", "~", "0", "-1", "1e999", "0x1f", "x86_64-linux",
                     "packages", "nix", "attic", "closure", "''", '""', "!!int abc",
                     "!!python/object:os.system x", "!!binary ===", "!!timestamp 2020-13-45",
                     "*undefined", "&a 1", "<<", "? [a]", "|", ">-", "[", "{", "'", '"',
                     "\t", "%YAML 1.1", "---", "...", "\u00e9", "\ufeff", "\x85"]),
    st.text(max_size=12))


def yaml_doc(depth: int = 3) -> st.SearchStrategy[str]:
    """YAML-looking text: mappings and lists of the schema's keys, odd scalars and tags."""
    value: st.SearchStrategy[str] = SCALARS
    for _ in range(depth):
        inner = value
        value = st.one_of(
            SCALARS,
            st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
            st.dictionaries(st.sampled_from(KEYS), inner, max_size=3).map(
                lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
        )
    block = st.lists(st.tuples(st.sampled_from(KEYS + ["? [a, b]", "&x k", "*x", "- a"]),
                               st.sampled_from(["", "  ", "\t"]), value), max_size=6).map(
        lambda entries: "\n".join(f"{indent}{key}: {val}" for key, indent, val in entries))
    return st.one_of(block, value)


YAML_BYTES = st.one_of(
    yaml_doc().map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.tuples(yaml_doc(), st.binary(min_size=1, max_size=4)).map(
        lambda pair: pair[0].encode("utf-8", "surrogatepass") + pair[1]),
    st.integers(min_value=1, max_value=40).map(lambda n: b"[" * n + b"]" * n),
)  # deeper nesting (RecursionError) is one explicit case in tests/test_bad_input.py


@pytest.fixture(scope="module")
def scratch() -> Any:
    with tempfile.TemporaryDirectory(prefix="ci-nix-fuzz-") as directory:
        yield Path(directory)


@SETTINGS
@given(data=YAML_BYTES)
def test_fuzz_ci_nix_yaml(scratch: Path, data: bytes) -> None:
    file = scratch / "ci-nix.yaml"
    file.write_bytes(data)
    try:
        loaded = config.load(file)
    except CiNixError as err:
        one_line_error(err)
        return
    assert isinstance(loaded, config.Config)
    assert all(isinstance(s, str) for s in loaded.systems)


@SETTINGS
@given(data=YAML_BYTES)
@example(data=b"!!timestamp")  # found by this test: AttributeError inside PyYAML
@example(data=b"\x1f")  # and this one: the reader rejects it before parsing starts
def test_fuzz_bots_yaml(scratch: Path, data: bytes) -> None:
    file = scratch / "bots.yaml"
    file.write_bytes(data)
    try:
        repos = bots.load(file)
    except CiNixError as err:
        one_line_error(err)
        return
    assert isinstance(repos, tuple)


# --- flake.lock ------------------------------------------------------------------------------

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2, max_value=2**64),
                      st.floats(allow_nan=True), st.text(max_size=8),
                      st.sampled_from(["root", "nixpkgs", "github", "git", "path", "tarball",
                                       "indirect", "a", "b"]))
LOCK_KEYS = st.sampled_from(["version", "root", "nodes", "inputs", "locked", "original", "flake",
                             "type", "owner", "repo", "rev", "ref", "url", "narHash",
                             "lastModified", "dir", "path", "root", "nixpkgs", "a", "b"])
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(LOCK_KEYS, inner, max_size=4)), max_leaves=20)


def lock_like() -> st.SearchStrategy[Any]:
    """A version-7 lock whose nodes, inputs and refs are anything."""
    node = st.fixed_dictionaries({}, optional={
        "inputs": st.one_of(JSON_VALUE, st.dictionaries(LOCK_KEYS, st.one_of(
            st.sampled_from(["root", "a", "b", "nixpkgs"]),
            st.lists(st.sampled_from(["a", "b", "nixpkgs", "root"]), max_size=3)), max_size=3)),
        "locked": JSON_VALUE, "original": JSON_VALUE, "flake": JSON_VALUE})
    return st.fixed_dictionaries(
        {"version": st.one_of(st.just(7), st.just(5), JSON_LEAF),
         "root": st.one_of(st.just("root"), JSON_LEAF),
         "nodes": st.one_of(st.dictionaries(st.sampled_from(["root", "a", "b", "nixpkgs"]), node,
                                            max_size=4), JSON_VALUE)})


@SETTINGS
@given(text=st.one_of(lock_like().map(json.dumps), JSON_VALUE.map(json.dumps),
                      st.text(max_size=60),
                      st.sampled_from(["[" * 100_000, "{" * 5000 + "}"])))
def test_fuzz_flake_lock(text: str) -> None:
    try:
        lock = lockfile.parse(text)
    except CiNixError as err:
        one_line_error(err)
        return
    # what detect, changelog and update do with a lock must hold on whatever parsed
    assert lock.root in lock.nodes
    list(lock.walk())
    lock.root_inputs()
    for node in lock.nodes.values():
        for target in node.inputs.values():
            lock.resolve(target)


# --- Nix internal-json lines -----------------------------------------------------------------

@SETTINGS
@given(lines=st.lists(st.one_of(
    JSON_VALUE.map(lambda v: "@nix " + json.dumps(v)),
    st.dictionaries(st.sampled_from(["action", "id", "type", "fields", "text", "level", "msg",
                                     "parent", "raw_msg", "file", "line", "column"]),
                    st.one_of(JSON_VALUE, st.sampled_from(["start", "stop", "result", "msg"]),
                              st.integers(min_value=0, max_value=110)), max_size=6)
    .map(lambda v: "@nix " + json.dumps(v)),
    st.sampled_from(["@nix " + "[" * 100_000, "@nix " + '{"a":' * 5000]),
    st.text(max_size=40)), max_size=8))
def test_fuzz_internal_json_lines(lines: list[str]) -> None:
    for event in nixlog.parse_lines(lines):
        assert event is not None


# --- forge answers ---------------------------------------------------------------------------

@SETTINGS
@given(headers=st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                     "x-ratelimit-reset"]),
    st.one_of(st.text(max_size=30), st.sampled_from(
        ["0", "soon", "", "-1", "nan", "inf", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT",
         "Wed, 99 Oct 2015 07:28:00 GMT", "Mon, 01 Jan 0001 00:00:00 GMT"]))))
def test_fuzz_retry_after(headers: dict[str, str]) -> None:
    wait = retry_after(headers)
    assert wait is None or wait >= 0


@SETTINGS
@given(status=st.one_of(st.none(), st.integers(min_value=-1, max_value=999)),
       data=st.one_of(JSON_VALUE, st.dictionaries(st.sampled_from(["message", "errors", "x"]),
                                                  JSON_VALUE, max_size=3)),
       headers=st.one_of(st.none(), st.dictionaries(st.text(max_size=20), st.text(max_size=30),
                                                    max_size=3)))
def test_fuzz_github_error_answers(status: int | None, data: Any,
                                   headers: dict[str, str] | None) -> None:
    """What GitHub answers in an error (status, JSON body, headers) becomes a typed Failure."""
    from github import GithubException

    from ci_nix.forge import Failure
    from ci_nix.forge.github import _classify

    failure = _classify(GithubException(status, data, headers))  # type: ignore[arg-type]
    assert isinstance(failure, Failure) and isinstance(failure.message, str)
    assert failure.retry_after is None or failure.retry_after >= 0
