"""closure.py: closures from path infos, sizes, growth limits."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli
from fakeproc import Call, FakeProc, Reply
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import closure, diff
from ci_nix.changes import AttrChange, Change, Comparison
from ci_nix.closure import Growth
from ci_nix.errors import ConfigError
from ci_nix.tools.nix import Nix, PathInfo

A, B, C, D = (f"/nix/store/{c * 32}-{n}"
              for c, n in zip("abcd", ("app", "lib", "glibc", "x"), strict=True))


def test_a_closure_follows_references_and_counts_each_path_once() -> None:
    infos = {A: PathInfo(100, (B, C)), B: PathInfo(50, (C,)), C: PathInfo(1000, ()),
             D: PathInfo(7, ())}
    found = closure.of(infos, [A])
    assert found.size == 1150
    assert [p for p, _ in found.paths] == [C, A, B]  # largest first
    base = closure.of(infos, [B])
    assert found.new_paths(base) == [(A, 100)]


def test_growth_limits_parse_and_compare() -> None:
    assert Growth.parse("10%").exceeded(1000, 1101)
    assert not Growth.parse("10%").exceeded(1000, 1100)
    assert Growth.parse("50MiB").bytes == 50 * 1024**2
    assert Growth.parse("1.5 GiB").bytes == int(1.5 * 1024**3)
    assert Growth.parse("2000").exceeded(0, 2001)
    assert not Growth.parse("0%").exceeded(1000, 900)  # shrinking is never growth
    for bad in ("", "ten%", "10 parsecs", "-5%", "%", "٣%", "1e400"):
        with pytest.raises(ConfigError, match="percentage or a size"):
            Growth.parse(bad)


@given(st.text(max_size=20))
def test_any_limit_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        limit = Growth.parse(text)
    except ConfigError:
        return
    assert (limit.percent is None) != (limit.bytes is None)


@pytest.mark.parametrize("limit", ["ten%", "-5%", ""])
def test_a_bad_limit_flag_is_one_line_exit_2_and_the_junit_report_is_written(
        limit: str, cli: Cli, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = cli("run", "--all", tmp_path, f"--max-closure-growth={limit}", "--junit", junit)
    assert result.returncode == 2
    assert result.stderr == (f"ci-nix: error: --max-closure-growth {limit!r}: give a "
                             "percentage or a size, e.g. 10% or 50MiB\n")
    error = ET.parse(junit).getroot().find(".//error")
    assert error is not None and "--max-closure-growth" in str(error.get("message"))


def test_sizes_read_humanly() -> None:
    assert closure.human(0) == "0 B"
    assert closure.human(1536) == "1.5 KiB"
    assert closure.signed(-16) == "-16 B"
    assert closure.signed(3 * 1024**3) == "+3.0 GiB"


def test_the_growth_message_names_the_three_largest_new_paths() -> None:
    """Five new paths (the head's root among them): the three largest are named, largest
    first; what the base has too is not."""
    new1, new2, new3, new4 = (f"/nix/store/{c * 32}-new{n}" for c, n in zip("fghi", "1234",
                                                                            strict=True))
    infos = {A: PathInfo(100, (C,)), C: PathInfo(1000, ()),
             D: PathInfo(7, (C, new1, new2, new3, new4)), new1: PathInfo(5, ()),
             new2: PathInfo(400, ()), new3: PathInfo(30, ()), new4: PathInfo(2000, ())}
    base, head = closure.of(infos, (A,)), closure.of(infos, (D,))
    message = closure.growth_message(Growth.parse("10%"), base, head)
    assert message is not None and message.endswith(
        f"; largest new paths: {new4} (2.0 KiB), {new2} (400 B), {new3} (30 B)")
    assert new1 not in message and D not in message and C not in message
    assert closure.growth_message(Growth.parse("10%"), head, head) is None


@pytest.mark.parametrize("answer", ["all there", "Nix fails", "Nix leaves one out"])
def test_sizes_of_outputs_just_built_ask_one_path_info_unless_that_goes_wrong(
        fake_proc: FakeProc, answer: str) -> None:
    """`run` sizes what it just found valid: their closures are asked at once; only when that
    fails (2.8, a path collected meanwhile) or leaves a root out (newer Nix) is validity asked
    first, and a group no longer there gets no size rather than a wrong one."""
    infos = {A: {"narSize": 100, "references": [B]}, B: {"narSize": 50, "references": []},
             D: {"narSize": 7, "references": []}}
    gone = D if answer != "all there" else None

    def path_info(call: Call) -> Reply:
        asked = [p for p in call.argv if p.startswith("/nix/store/")]
        if answer == "Nix fails" and gone in asked and "--recursive" in call.argv:
            return Reply(returncode=1, stderr=f"error: path '{gone}' is not valid\n")
        return Reply(stdout=json.dumps([{"path": p, **infos[p]} for p in
                                        ({A, B} | set(asked) if "--recursive" in call.argv
                                         else set(asked)) if p != gone]))

    fake_proc.strict = True
    fake_proc.on("nix", "path-info", handler=path_info)
    found = closure.sizes(Nix(("nix",)), [(A,), (D,)], substituters=False, built=True)
    asked = fake_proc.ran("nix", "path-info")
    if gone is None:
        assert [c.argv[-3:] for c in asked] == [("--recursive", A, D)]
        assert found[(A,)].size == 150 and found[(D,)].size == 7
    else:
        assert len(asked) == 3  # closures, then which are valid, then the valid ones' closures
        assert found.keys() == {(A,)} and found[(A,)].size == 150


def test_outputs_in_no_store_are_told_and_then_not_sized(fake_proc: FakeProc) -> None:
    """`diff` asks, beside the head's evaluation, which base outputs no store has (the local
    one, then each substituter, no closure read); a changed attribute whose base outputs are
    nowhere gets no size, so neither side is asked after the evaluation, and with all of them
    so Nix is not started at all (P8's case: nothing built, no substituters)."""
    cache = "http://127.0.0.1:9/cache"

    def path_info(call: Call) -> Reply:
        asked = [p for p in call.argv if p.startswith("/nix/store/")]
        valid = {A} if "--store" not in call.argv else {B}  # A here, B in the cache
        return Reply(stdout=json.dumps([{"path": p, "valid": p in valid} for p in asked]))

    fake_proc.strict = True
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.8.0\n")
    fake_proc.on("nix", "show-config", stdout=json.dumps({"substituters": {"value": [cache]}}))
    fake_proc.on("nix", "path-info", handler=path_info)
    nix = Nix(("nix",))
    assert nix.substituters == (cache,)
    assert closure.nowhere(nix, [(A,), (B,), (C,), (A, C), ()]) == {(C,), (A, C)}
    assert len(fake_proc.ran("nix", "path-info")) == 2
    assert closure.nowhere(nix, [(A,)], substituters=False) == frozenset()
    fake_proc.on("nix", "path-info", returncode=1, stderr="error: cannot open the store\n")
    assert closure.nowhere(nix, [(C,)]) == frozenset()  # cannot tell: nothing ruled out
    fake_proc.calls.clear()
    base, head = "/nix/store/" + "e" * 32 + "-x.drv", "/nix/store/" + "f" * 32 + "-x.drv"
    comparison = Comparison("b" * 40, "h" * 40, (AttrChange(
        "f", "packages.x86_64-linux.x", "x86_64-linux", Change.CHANGED, base, head),))
    remembered = {base: (None, (C,)), head: (None, (D,))}
    assert diff.closure_sizes(nix, comparison, remembered, frozenset({(C,)})) == {}
    assert fake_proc.calls == []
