"""Nix's internal-json log read into typed events, on logs recorded from real Nix and Lix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix import build, diagnose
from ci_nix.models import FailureType
from ci_nix.tools import nixlog, proc
from ci_nix.tools.nixlog import (
    ActivityStart,
    ActivityStop,
    ActivityType,
    BuildLogLine,
    Message,
    PhaseChange,
    PlainLine,
    Progress,
    SetExpected,
    Unreadable,
)

DATA = Path(__file__).resolve().parent / "data"
RECORDED = sorted((DATA / "internal-json").glob("nix-*.jsonl"))
CORPUS = sorted((DATA / "nix-2.8").glob("*.json.log")) + sorted(
    (DATA / "nix-2.26").glob("*.json.log"))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _as_streamed(path: Path) -> list[str]:
    """The lines as `proc.stream` hands them to the build: each cut at its byte limit."""
    return [line.encode()[:proc.MAX_LINE].decode(errors="replace") for line in _lines(path)]


def _drv(events: list[nixlog.Event], name: str) -> str:
    return next(e.drv for e in events if isinstance(e, ActivityStart) and e.drv is not None
                and name in e.drv)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_build_reads_as_typed_events(path: Path) -> None:
    events = list(nixlog.parse_lines(_lines(path)))
    dep, top = _drv(events, "log-dep-1.0"), _drv(events, "log-top-1.0")
    builds = [e for e in events if isinstance(e, ActivityStart) and e.type is ActivityType.BUILD]
    assert [b.drv for b in builds] == [dep, top]
    assert all(b.machine is None for b in builds)  # built locally
    assert {e.drv for e in events if isinstance(e, ActivityStop) and e.drv} == {dep, top}
    lines = [(e.drv, e.text) for e in events if isinstance(e, BuildLogLine)]
    assert (dep, "first line of dep") in lines
    assert (dep, "after the long line") in lines
    assert (top, "top fails") in lines
    assert (dep, "x" * 70_000) in lines  # read whole when nothing cuts the line
    assert [(e.drv, e.phase) for e in events if isinstance(e, PhaseChange)] == [
        (dep, "buildPhase")]
    progress = [e for e in events if isinstance(e, Progress) and e.activity is ActivityType.BUILDS]
    assert (progress[-1].done, progress[-1].failed) == (1, 1)
    assert any(isinstance(e, SetExpected) and e.type is ActivityType.FILE_TRANSFER
               for e in events)
    errors = [e for e in events if isinstance(e, Message) and e.is_error]
    assert len(errors) == 1 and "failed with exit code 4" in errors[0].text
    assert not any(isinstance(e, Unreadable | PlainLine) for e in events)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recorded_corpus_log_parses(path: Path) -> None:
    parser = nixlog.LogParser()
    events = list(parser.events(_lines(path)))
    assert not any(isinstance(e, Unreadable) for e in events)
    for event in events:
        if isinstance(event, BuildLogLine):
            assert event.drv is not None and event.drv.endswith(".drv")
    # a crashed Nix (Nix 2.8 asserts on a fixed-output derivation with references)
    # prints its assertion plain, not as a record, and stops no activity
    if any(isinstance(e, PlainLine) and "Assertion" in e.text for e in events):
        assert not any(isinstance(e, Message) and e.is_error for e in events)
        return
    assert any(isinstance(e, Message) and e.is_error for e in events)
    assert parser.builds() == []  # every build activity stopped


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_buildlog_recovers_a_line_cut_at_the_limit(path: Path) -> None:
    buildlog = build.BuildLog()
    for line in _as_streamed(path):
        buildlog.feed(line)
    dep = next(d for d in buildlog.logs if "log-dep" in d)
    top = next(d for d in buildlog.logs if "log-top" in d)
    cut = [line for line in buildlog.logs[dep] if line.endswith(" [line cut]")]
    assert len(cut) == 1 and cut[0].startswith("xxxx")
    assert list(buildlog.logs[dep])[-1] == "after the long line"  # the stream goes on
    assert buildlog.errors[top].type is FailureType.BUILD
    assert set(buildlog.durations) == {dep, top}
    assert not buildlog.other


def test_a_cut_line_with_two_builds_running_is_kept_apart() -> None:
    parser = nixlog.LogParser()
    for ident, name in ((1, "a"), (2, "b")):
        parser.parse('@nix ' + json.dumps({
            "action": "start", "id": ident, "type": 105, "level": 3, "parent": 0,
            "text": "", "fields": [f"/nix/store/{name * 32}-{name}.drv", "", 1, 1]}))
    cut = '@nix {"action":"result","fields":["xxxx'
    assert parser.parse(cut) == Unreadable(cut)
    parser.parse('@nix {"action":"stop","id":2}')
    assert parser.parse(cut) == BuildLogLine(1, "xxxx", f"/nix/store/{'a' * 32}-a.drv", cut=True)


# Lix (2.90+) writes the same records as Nix. No Lix runs on this machine, so lix-remote.jsonl is
# written by hand in the shape of a Lix `nix build -j0 --builders ...` log (a remote build names
# its machine in the second field); the Lix outputs in data/public are plain text.
LIX = (DATA / "internal-json" / "lix-remote.jsonl").read_text()
LIX_DRV = "/nix/store/7fl810qxj70c41adxcc7vvky0cdq6hsg-fail.drv"


def test_lix_remote_build() -> None:
    events = list(nixlog.parse_lines(LIX.splitlines()))
    assert events[0] == PlainLine("warning: unknown experimental feature 'repl-flake'")
    start = next(e for e in events if isinstance(e, ActivityStart) and e.drv)
    assert (start.drv, start.machine) == (LIX_DRV, "ssh-ng://nix@builder")
    assert [e for e in events if isinstance(e, BuildLogLine)] == [
        BuildLogLine(4011499454468, "unpacking sources", LIX_DRV),
        BuildLogLine(4011499454468, "uploaded", LIX_DRV, post_build=True)]
    error = next(e for e in events if isinstance(e, Message) and e.is_error)
    assert error.raw is None
    found = diagnose.parse_log(LIX.splitlines())
    assert [(d.drv, d.exit_code) for d in found] == [(LIX_DRV, 1)]
    assert found[0].log == "unpacking sources"


@pytest.mark.parametrize("path", sorted((DATA / "public").glob("*lix*.log")),
                         ids=lambda p: p.stem)
def test_lix_plain_text_logs_pass_through(path: Path) -> None:
    events = list(nixlog.parse_lines(_lines(path)))
    assert all(isinstance(e, PlainLine) for e in events)
    assert [e.text for e in events if isinstance(e, PlainLine)] == _lines(path)


@pytest.mark.parametrize(("line", "expected"), [
    ('@nix {"action":"start","id":1,"type":999,"fields":null}',
     ActivityStart(1, 999, "", 0, 0, ())),  # a type from a newer Nix stays a number
    ('@nix {"action":"result","id":1,"type":101,"fields":[]}', None),
    ('@nix {"action":"result","id":"x","type":101,"fields":["a"]}', None),
    ('@nix {"action":"stop"}', None),
    ('@nix {"action":"bogus"}', None),
    ("@nix [1, 2]", Unreadable("@nix [1, 2]")),
    ("@nix {", Unreadable("@nix {")),
    ('@nix {"action":"msg","msg":"hi"}', Message(nixlog.Verbosity.VOMIT, "hi")),
    # a message record a copy cut inside its text: what is left of the text, at its level
    ('@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\\u001b[31;1m'
     'error:\\u001b[0m builder for \'/nix/store/x-a.drv',
     Message(nixlog.Verbosity.ERROR, "\x1b[31;1merror:\x1b[0m builder for '/nix/store/x-a.drv")),
    ('@nix {"action":"msg","level":0,"msg":"cut inside \\u00', Message(nixlog.Verbosity.ERROR,
                                                                    "cut inside ")),
    ("plain\r\n", PlainLine("plain")),
])
def test_malformed_records_are_tolerated(line: str, expected: nixlog.Event | None) -> None:
    assert nixlog.LogParser().parse(line) == expected


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=4),
    max_leaves=10)
_RECORD = st.fixed_dictionaries(
    {"action": st.sampled_from(["start", "stop", "result", "msg", "other"])},
    optional={"id": _JSON | st.integers(0, 3), "type": _JSON | st.sampled_from([101, 104, 105,
                                                                                106, 107]),
              "fields": _JSON, "level": _JSON, "msg": _JSON, "raw_msg": _JSON, "text": _JSON})


@settings(deadline=None)
@given(st.lists(_RECORD.map(lambda r: "@nix " + json.dumps(r)) | st.text(max_size=40),
                max_size=12))
def test_any_input_parses_without_raising(lines: list[str]) -> None:
    parser = nixlog.LogParser()
    for line in lines:
        parser.parse(line)
        parser.parse(line[: len(line) // 2])


def test_a_cut_after_an_escaped_backslash_keeps_the_backslash() -> None:
    # what Hypothesis found: the text's last characters looked like a cut escape
    for text, cut_after in (("00000000\r\\", '\\\\'), ("a\\u12", "u12"), ("a\\u", "u")):
        line = "@nix " + json.dumps({"action": "msg", "level": 0, "msg": text},
                                    separators=(",", ":"))
        event = nixlog.LogParser().parse(line[:line.rindex(cut_after) + len(cut_after)])
        assert isinstance(event, Message) and event.text == text, (text, event)
    half = '@nix {"action":"msg","level":0,"msg":"a\\u00'  # a \u escape cut in its digits
    cut = nixlog.LogParser().parse(half)
    assert isinstance(cut, Message) and (cut.level, cut.text) == (nixlog.Verbosity.ERROR, "a")


@settings(deadline=None)
@given(st.text(max_size=30), st.integers(0, 7), st.booleans(), st.data())
def test_a_message_record_cut_inside_its_text_keeps_what_is_left(
        text: str, level: int, ascii_only: bool, data: st.DataObject) -> None:
    # as Nix writes it: keys sorted, no blanks; cut anywhere inside the message's string
    line = "@nix " + json.dumps({"action": "msg", "column": None, "file": None, "level": level,
                                 "line": None, "msg": text, "raw_msg": text},
                                separators=(",", ":"), ensure_ascii=ascii_only)
    start = line.index(',"msg":"') + len(',"msg":"')
    end = start + len(json.dumps(text, ensure_ascii=ascii_only)) - 2
    event = nixlog.LogParser().parse(line[:data.draw(st.integers(start, end))])
    assert isinstance(event, Message) and event.level == level
    assert text.startswith(event.text)
