"""Nix's `--log-format internal-json` as typed events: the one reader of that format.

Nix (2.4 and later) and Lix write the same shape on stderr, one record a line:

    @nix {"action":"start","id":7,"type":105,"fields":["/nix/store/…-x.drv","",1,1],…}
    @nix {"action":"result","id":7,"type":101,"fields":["a line of build output"]}
    @nix {"action":"stop","id":7}
    @nix {"action":"msg","level":0,"msg":"error: builder for '…' failed with exit code 1"}

Lines without the `@nix ` prefix (a remote builder's banner, a wrapper's output, plain-text
logs) come out as `PlainLine`. The numbers are Nix's `ActivityType`/`ResultType` enums from
libutil/logging.hh. One `LogParser` reads one Nix process's stderr: it remembers the running
activities, so each build log line, phase and progress event says which derivation it is for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

PREFIX = "@nix "


class ActivityType(IntEnum):
    """What a started activity does (Nix's `ActivityType`)."""

    UNKNOWN = 0
    COPY_PATH = 100
    FILE_TRANSFER = 101
    REALISE = 102
    COPY_PATHS = 103
    BUILDS = 104
    BUILD = 105  # fields: [drv path, machine ("" = this one), round, number of rounds]
    OPTIMISE_STORE = 106
    VERIFY_PATHS = 107
    SUBSTITUTE = 108
    QUERY_PATH_INFO = 109
    POST_BUILD_HOOK = 110
    BUILD_WAITING = 111
    FETCH_TREE = 112  # Nix 2.19+; Lix does not send it


class ResultType(IntEnum):
    """What a result record reports about its activity (Nix's `ResultType`)."""

    FILE_LINKED = 100
    BUILD_LOG_LINE = 101
    UNTRUSTED_PATH = 102
    CORRUPTED_PATH = 103
    SET_PHASE = 104
    PROGRESS = 105  # fields: [done, expected, running, failed]
    SET_EXPECTED = 106  # fields: [activity type, expected]
    POST_BUILD_LOG_LINE = 107
    FETCH_STATUS = 108  # Nix 2.24+


class Verbosity(IntEnum):
    """A message's level; ERROR messages are the errors Nix reports."""

    ERROR = 0
    WARN = 1
    NOTICE = 2
    INFO = 3
    TALKATIVE = 4
    CHATTY = 5
    DEBUG = 6
    VOMIT = 7


_E = TypeVar("_E", bound=IntEnum)


def _known(enum: type[_E], value: int) -> _E | int:
    """The enum member for value, or the plain int for numbers a newer Nix added."""
    try:
        return enum(value)
    except ValueError:
        return value


Field = str | int


@dataclass(frozen=True)
class ActivityStart:
    id: int
    type: ActivityType | int
    text: str  # "building '/nix/store/…-x.drv' on 'ssh://builder'"
    parent: int
    level: int
    fields: tuple[Field, ...] = ()

    @property
    def drv(self) -> str | None:
        """The derivation a BUILD activity builds (None for other activities)."""
        if self.type is ActivityType.BUILD and self.fields and isinstance(self.fields[0], str):
            return self.fields[0]
        return None

    @property
    def machine(self) -> str | None:
        """The remote machine a BUILD activity runs on; None when it builds locally."""
        if self.type is ActivityType.BUILD and len(self.fields) > 1 and self.fields[1]:
            return str(self.fields[1])
        return None


@dataclass(frozen=True)
class ActivityStop:
    id: int
    start: ActivityStart | None  # None when the start was never seen

    @property
    def drv(self) -> str | None:
        return self.start.drv if self.start is not None else None


@dataclass(frozen=True)
class BuildLogLine:
    """A line of a builder's (or a post-build hook's) output."""

    id: int
    text: str
    drv: str | None  # the derivation being built, when the activity is a build
    post_build: bool = False
    cut: bool = False  # recovered from a record cut short: text is its raw, still-escaped start


@dataclass(frozen=True)
class PhaseChange:
    id: int
    phase: str  # "unpackPhase", "buildPhase", …
    drv: str | None


@dataclass(frozen=True)
class Progress:
    """How far an activity (BUILDS, COPY_PATHS, REALISE, a download, …) has got."""

    id: int
    activity: ActivityType | int | None  # the type of the activity it reports on, if seen
    done: int
    expected: int
    running: int
    failed: int


@dataclass(frozen=True)
class SetExpected:
    """How many activities of one type an activity expects to run (e.g. builds to do)."""

    id: int
    type: ActivityType | int
    expected: int


@dataclass(frozen=True)
class OtherResult:
    """A result this module does not model further (file linked, untrusted path, …)."""

    id: int
    type: ResultType | int
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Message:
    """A message Nix printed; level ERROR carries build and evaluation errors."""

    level: Verbosity | int
    text: str  # with Nix's ANSI colours, as Nix wrote it
    raw: str | None = None  # Nix 2.x's `raw_msg`: the text without the `error:` prefix
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.level == Verbosity.ERROR

    @property
    def attested(self) -> bool:
        """Whether Nix wrote this record of an error it raised itself: its JSON logger's `logEI`
        adds `raw_msg` (Nix 2.4+, 2.8 and 2.26 read). A message Nix only relays has none: a
        builder's own `@nix {"action":"msg",…}` output line (libutil `handleJSONLogMessage`
        passes its text to `log()`), a remote build hook's lines, a daemon's text."""
        return self.raw is not None


@dataclass(frozen=True)
class PlainLine:
    """A stderr line that is not internal-json."""

    text: str


@dataclass(frozen=True)
class Unreadable:
    """An `@nix` line that is not a record (cut short by a line limit, or garbled)."""

    text: str


Event = (ActivityStart | ActivityStop | BuildLogLine | PhaseChange | Progress | SetExpected
         | OtherResult | Message | PlainLine | Unreadable)

# A result record cut short by a line limit (a huge build log line): its id comes after the
# text, so it is lost. What is left is the start of the (JSON-escaped) text.
_CUT_LOG_LINE = re.compile(
    r'^@nix \{"action":"result","fields":\["(.*)')
# A message record a copy (or a line limit) cut inside its text: Nix writes its keys sorted, so
# the level comes before the text, and what is left of the text is still the message's start
# ("error: builder for '…-x.drv" of a build failure).
# The text is whole escapes only; what a cut left of the last one (a lone backslash, `\u` and
# up to three hex digits) is outside it. Read escape by escape, never by the text's last
# characters: `\\` then `u12` ends like a cut `\u12` but is a backslash and "u12".
_CUT_MESSAGE = re.compile(r'^@nix \{"action":"msg",(?P<before>(?:[^"]|"[^"]*")*?)"msg":"'
                          r'(?P<text>(?:[^"\\]|\\[^u]|\\u[0-9a-fA-F]{4})*)'
                          r'(?:\\u[0-9a-fA-F]{0,3}|\\)?$')
_LEVEL = re.compile(r'"level":(\d+)')
_HIGH_SURROGATES = "".join(map(chr, range(0xD800, 0xDC00)))


class _Malformed(Exception):
    pass


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed
    return value


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _fields(value: object) -> tuple[Field, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v if isinstance(v, str | int) and not isinstance(v, bool) else str(v)
                 for v in value)


class LogParser:
    """Reads one Nix process's internal-json stderr, line by line, into events."""

    def __init__(self) -> None:
        self.running: dict[int, ActivityStart] = {}

    def builds(self) -> list[ActivityStart]:
        """The BUILD activities started and not yet stopped, oldest first."""
        return [a for a in self.running.values() if a.drv is not None]

    def parse(self, line: str) -> Event | None:
        """One line -> its event; None for a record that carries nothing ci-nix reads."""
        line = line.rstrip("\r\n")
        if not line.startswith(PREFIX):
            return PlainLine(line)
        try:
            record = json.loads(line[len(PREFIX):])
        except json.JSONDecodeError:
            return self._cut(line)
        except RecursionError:  # `@nix [[[[…`: no record Nix writes is nested like that
            return Unreadable(line)
        if not isinstance(record, dict):
            return Unreadable(line)
        try:
            return self._record(record)
        except _Malformed:
            return None

    def events(self, lines: Iterable[str]) -> Iterator[Event]:
        for line in lines:
            event = self.parse(line)
            if event is not None:
                yield event

    def _cut(self, line: str) -> Event:
        message = _CUT_MESSAGE.match(line)
        level = _LEVEL.search(message["before"]) if message is not None else None
        if message is not None and level is not None:
            try:
                text = json.loads(f'"{message["text"]}"')
            except json.JSONDecodeError:  # an escape the JSON decoder does not take
                return Unreadable(line)
            # a cut between the two halves of an escaped surrogate pair leaves half a character
            return Message(_known(Verbosity, int(level[1])), text.rstrip(_HIGH_SURROGATES))
        # While a single build runs, a cut-off log line can only be that build's.
        match = _CUT_LOG_LINE.match(line)
        drvs = {a.drv for a in self.builds()}
        if match is not None and len(drvs) == 1:
            build = self.builds()[0]
            return BuildLogLine(build.id, match[1], build.drv, cut=True)
        return Unreadable(line)

    def _record(self, record: dict[str, object]) -> Event | None:
        action = record.get("action")
        if action == "start":
            start = ActivityStart(
                _int(record.get("id")), _known(ActivityType, _opt_int(record.get("type")) or 0),
                _str(record.get("text")), _opt_int(record.get("parent")) or 0,
                _opt_int(record.get("level")) or 0, _fields(record.get("fields")))
            self.running[start.id] = start
            return start
        if action == "stop":
            ident = _int(record.get("id"))
            return ActivityStop(ident, self.running.pop(ident, None))
        if action == "result":
            return self._result(record)
        if action == "msg":
            level = _opt_int(record.get("level"))
            raw = record.get("raw_msg")
            return Message(Verbosity.VOMIT if level is None else _known(Verbosity, level),
                           _str(record.get("msg")), raw if isinstance(raw, str) else None,
                           file if isinstance(file := record.get("file"), str) else None,
                           _opt_int(record.get("line")), _opt_int(record.get("column")))
        return None

    def _result(self, record: dict[str, object]) -> Event | None:
        ident = _int(record.get("id"))
        kind = _known(ResultType, _int(record.get("type")))
        fields = _fields(record.get("fields"))
        activity = self.running.get(ident)
        drv = activity.drv if activity is not None else None
        if kind in (ResultType.BUILD_LOG_LINE, ResultType.POST_BUILD_LOG_LINE):
            if not fields:
                raise _Malformed
            return BuildLogLine(ident, str(fields[0]), drv,
                                post_build=kind is ResultType.POST_BUILD_LOG_LINE)
        if kind is ResultType.SET_PHASE:
            if not fields:
                raise _Malformed
            return PhaseChange(ident, str(fields[0]), drv)
        if kind is ResultType.PROGRESS:
            done, expected, running, failed = (_int(f) for f in (*fields, 0, 0, 0, 0)[:4])
            return Progress(ident, activity.type if activity is not None else None,
                            done, expected, running, failed)
        if kind is ResultType.SET_EXPECTED:
            if len(fields) < 2:
                raise _Malformed
            return SetExpected(ident, _known(ActivityType, _int(fields[0])), _int(fields[1]))
        return OtherResult(ident, kind, fields)


def parse_lines(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a whole captured stderr (one parser, in order)."""
    return LogParser().events(lines)
