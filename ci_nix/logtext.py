"""A log's text as reports show it: plain (no escapes), its tail bounded, a derivation by its
short name. Apart from diagnose, which classifies failures: a run that has none to diagnose
shows Nix's lines with these and never loads the classifier's patterns."""

from __future__ import annotations

import re
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import AnyStr, Generic, overload

from ci_nix.tools.nix import strip_ansi

TAIL_LINES = 40
TAIL_CHARS = 8000

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Plain text: no ANSI escapes or control characters (JUnit and XML need this)."""
    return _CONTROL.sub("", strip_ansi(text))


def tail(lines: Iterable[str], max_lines: int = TAIL_LINES, max_chars: int = TAIL_CHARS) -> str:
    """The last lines of a log, cleaned and bounded in size."""
    # (a list sliced, not copied whole: a failure's log is a build's whole output; a deque
    # cannot be sliced)
    last = (lines if isinstance(lines, list | tuple) else list(lines))[-max_lines:]
    kept = [clean(line) for line in last]
    text = "\n".join(kept)
    return text if len(text) <= max_chars else "…" + text[-max_chars:]


def short_drv(drv: str) -> str:
    """hello-1.0.drv for /nix/store/<hash>-hello-1.0.drv."""
    name = drv.rsplit("/", 1)[-1]
    return name.split("-", 1)[1] if "-" in name else name


def drv_name(drv: str) -> str:
    """hello-1.0 for /nix/store/<hash>-hello-1.0.drv: a name stable across Nix versions."""
    return short_drv(drv).removesuffix(".drv")


class CapturedLines(Sequence[str]):
    """A captured log's lines, split at line feeds only, as its bytes and where each line
    starts: a line becomes a str (UTF-8, undecodable bytes replaced) only while it is read.
    A list of millions of short lines is mostly its objects (some 70 bytes a line above the
    line's own); this holds a byte a byte and four a line."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._data = data
        # (4 bytes an offset while they fit: a log ci-nix reads whole is far smaller)
        self._starts = array("I" if len(data) < 1 << 32 else "q", [0])
        find, append = data.find, self._starts.append
        at = find(b"\n")
        while at != -1:
            append(at + 1)
            at = find(b"\n", at + 1)
        # the last line ends the log: a line end after it starts no line
        self._count = len(self._starts) - (1 if data.endswith(b"\n") or not data else 0)

    def __len__(self) -> int:
        return self._count

    def _line(self, index: int) -> str:
        # (a line is decoded alone as the whole log would be: no UTF-8 sequence holds a line
        # feed, and an undecodable byte is replaced the same either way)
        end = self._starts[index + 1] - 1 if index + 1 < len(self._starts) else len(self._data)
        return self._data[self._starts[index]:end].decode("utf-8", errors="replace")

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._line(at) for at in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("line index out of range")
        return self._line(index)

    def __iter__(self) -> Iterator[str]:
        data, starts = self._data, self._starts
        # each line's end: where the next starts, less its line feed (the last: the data's end)
        ends = chain(islice(starts, 1, None), (len(data) + 1,))
        return (data[start:end - 1].decode("utf-8", errors="replace")
                for start, end in zip(islice(starts, self._count), ends, strict=False))


# Condensing: what the classifier reads of a huge log. A log of millions of lines is mostly
# builders' output (`nix build -L`: "hello> …"), which the classifier needs only the end of
# (each builder's last lines are a failure's log; no line of it says what failed); held as
# objects while normalised, every line costs some 200 bytes however short it is. So a run of a
# builder's plain lines (no failure's or Nix's words, no mark any normalising pass reads:
# quotes, colons, equals signs, escapes, fences, markup) is read only at its ends: its first
# CONDENSE_KEPT lines, its last, and each builder's first and last lines in it (and the longest
# one, whose width normalising reads as the log's widest), after the log's first
# CONDENSE_AFTER lines, which are read whole (normalising learns a tool's prefix from a log's
# first 4,000 lines). What is left out counts where normalising weighs how many lines hold a
# shape (`CondensedLog.elided`, and by width, `widths`: a terminal's wrap is told by how many
# lines end near one width), and each line kept keeps the index of the line it was.
CONDENSE_AFTER = 12_000
CONDENSE_KEPT = 64
_CONDENSE_WIDTH = 160  # (shorter than a line normalising splits at nom's or Nix's marks)
_WIDTH_SAMPLES = 3  # texts of a width normalising tells a terminal's hard wrap by
_PLAIN_BUILDER_LINE = r"(?P<name>[A-Za-z0-9_][A-Za-z0-9+_.-]{0,40})> [A-Za-z0-9 .,_+/()%-]*"
_FAILURE_WORDS = (
    r"error|warn|fail|fatal|kill|abort|panic|denied|refus|time|hash|mismatch|nix|store|drv|"
    r"deriv|build|download|mirror|fetch|exec|except|assert|exit|signal|dump|memory|space|fault|"
    r"oom|reason|cannot|unable|while|eval|trace|crash|stack|cause|path|log|last|line|cop|quer|"
    r"these|sandbox|network|connect|resolv|disk|quota|permission|missing|found|such|substit|"
    r"valid|output|platform|system|support|broken|insecure|licen|unfree|depend|attribute|"
    r"undefined|infinite|recurs|interrupt|section")


# Nix's intro to the lines it quotes of a failed build ("last 25 log lines:"), and a writer's
# ("the last 100 lines"): the lines it counts are read each (normalising counts them)
_QUOTE_INTRO = r"last (\d{1,5}) (?:\w+ )?lines"


class _Dialect(Generic[AnyStr]):
    """The condenser's patterns for lines as str or as bytes."""

    def __init__(self, kind: Callable[[str], AnyStr], undigit: Callable[[AnyStr], AnyStr]
                 ) -> None:
        self.plain: re.Pattern[AnyStr] = re.compile(kind(_PLAIN_BUILDER_LINE))
        self.words: re.Pattern[AnyStr] = re.compile(kind(_FAILURE_WORDS), re.IGNORECASE)
        self.section: AnyStr = kind("section_")
        self.lines: tuple[AnyStr, AnyStr] = (kind("ines"), kind("INES"))
        self.intro: re.Pattern[AnyStr] = re.compile(kind(_QUOTE_INTRO), re.IGNORECASE)
        self.newline: AnyStr = kind("\n")
        self.undigit: Callable[[AnyStr], AnyStr] = undigit  # the line without its digits


_NO_DIGITS = str.maketrans("", "", "0123456789")
_STR: _Dialect[str] = _Dialect(str, lambda line: line.translate(_NO_DIGITS))
_BYTES: _Dialect[bytes] = _Dialect(str.encode, lambda line: line.translate(None, b"0123456789"))


class CondensedLog(Sequence[str]):
    """A captured log's lines as the classifier reads them (see CONDENSE_AFTER): the lines
    kept, in order, each with the index of the captured line it is (`captured_index`), and how
    many were left out (`elided`), and of each width how many were left out and up to three
    texts of that width among the lines of the runs (`widths`: normalising weighs them)."""

    def __init__(self, kept: Sequence[str], origins: array[int], elided: int,
                 widths: Mapping[int, tuple[int, frozenset[str]]] | None = None) -> None:
        self._kept, self._origins, self.elided = kept, origins, elided
        self.widths: Mapping[int, tuple[int, frozenset[str]]] = widths or {}

    def __len__(self) -> int:
        return len(self._kept)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._kept[at] for at in range(*index.indices(len(self._kept)))]
        return self._kept[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kept)

    def captured_index(self, index: int) -> int:
        """The index in the captured log of the line kept at index."""
        return self._origins[index] if self.elided else index


_MAX_SHAPES = 4096


class _Condenser(Generic[AnyStr]):
    """Folds a log's lines, in order, into the lines a CondensedLog keeps (`keep`)."""

    def __init__(self, dialect: _Dialect[AnyStr], keep: Callable[[AnyStr], object]) -> None:
        self._dialect: _Dialect[AnyStr] = dialect
        self._keep: Callable[[AnyStr], object] = keep
        # whether a line's words (its digits aside: a counter, a line number) say anything
        self._says: dict[AnyStr, bool] = {}
        self.origins = array("I")  # (a log ci-nix reads holds fewer than 2**32 lines)
        self.elided = 0
        self.condensing = True
        self.counted_to = 0  # the lines before it that a quote's intro counts are read each
        self._run = 0  # lines of the current run of a builder's plain lines
        # the run's lines past its first CONDENSE_KEPT, by index: its last, each builder's
        # first and last, the longest
        self._last: deque[tuple[int, AnyStr]] = deque(maxlen=CONDENSE_KEPT)
        self._first_of: dict[AnyStr, tuple[int, AnyStr]] = {}
        self._last_of: dict[AnyStr, deque[tuple[int, AnyStr]]] = {}
        self._longest: tuple[int, AnyStr] | None = None
        self._run_widths: Counter[int] = Counter()  # of the run's lines past its first
        self._widths: Counter[int] = Counter()  # of the lines left out
        self._samples: dict[int, set[AnyStr]] = {}  # (up to _WIDTH_SAMPLES texts a width)

    def line(self, index: int, line: AnyStr, plain: re.Match[AnyStr] | None) -> None:
        """Read the line at index (plain: its match of the dialect's plain line, if any)."""
        if plain is not None and self.condensing and index >= CONDENSE_AFTER \
                and index >= self.counted_to and len(line) < _CONDENSE_WIDTH:
            shape = self._dialect.undigit(line)
            says = self._says.get(shape)
            if says is None:
                if len(self._says) >= _MAX_SHAPES:
                    self._says.clear()
                says = self._says[shape] = self._dialect.words.search(line) is not None
            if not says:
                self._plain_line(index, line, plain["name"])
                return
        self.end_run()
        self.notice(line, index, 0, len(line), whole=True)
        self.origins.append(index)
        self._keep(line)

    def notice(self, lines: AnyStr, index: int, start: int, end: int, whole: bool = False
               ) -> None:
        """Note what the lines of lines[start:end] (the first at index, a line end between
        each; whole: one line, whatever it holds) say of the lines after them, none a plain
        line of a builder's: a GitLab section (normalising weighs its runner's own lines apart:
        no line is left out after it), a quote's intro."""
        dialect = self._dialect
        if self.condensing and lines.find(dialect.section, start, end) != -1:
            self.condensing = False
        if any(lines.find(word, start, end) != -1 for word in dialect.lines):
            for intro in dialect.intro.finditer(lines, start, end):
                at = index if whole else index + lines.count(dialect.newline, start,
                                                              intro.start())
                self.counted_to = max(self.counted_to, at + 1 + int(intro[1]))

    def _plain_line(self, index: int, line: AnyStr, name: AnyStr) -> None:
        self._run += 1
        if self._run <= CONDENSE_KEPT:
            self.origins.append(index)
            self._keep(line)
            return
        self._last.append((index, line))
        self._first_of.setdefault(name, (index, line))
        self._last_of.setdefault(name, deque(maxlen=CONDENSE_KEPT)).append((index, line))
        if self._longest is None or len(line) > len(self._longest[1]):
            self._longest = (index, line)
        self._run_widths[len(line)] += 1
        samples = self._samples.setdefault(len(line), set())
        if len(samples) < _WIDTH_SAMPLES:
            samples.add(line)

    def end_run(self) -> None:
        """Keep what is kept of the run read last, if any."""
        if not self._run:
            return
        if self._run > CONDENSE_KEPT:
            kept = dict(self._last)
            kept.update(self._first_of.values())
            for lines in self._last_of.values():
                kept.update(lines)
            if self._longest is not None:
                kept.update((self._longest,))
            self.elided += self._run - CONDENSE_KEPT - len(kept)
            self._run_widths.subtract(len(line) for line in kept.values())
            self._widths.update(self._run_widths)
            for index in sorted(kept):
                self.origins.append(index)
                self._keep(kept[index])
        self._run = 0
        self._last.clear()
        self._first_of.clear()
        self._last_of.clear()
        self._longest = None
        self._run_widths.clear()

    def widths(self, text: Callable[[AnyStr], str]) -> dict[int, tuple[int, frozenset[str]]]:
        """How many lines of each width were left out, and texts of that width (see
        CondensedLog.widths)."""
        return {width: (count, frozenset(map(text, self._samples[width])))
                for width, count in self._widths.items() if count > 0}


def condensed(lines: Iterable[str]) -> CondensedLog:
    """A log's lines as the classifier reads them (see CONDENSE_AFTER)."""
    if isinstance(lines, Sequence) and len(lines) <= CONDENSE_AFTER:
        return CondensedLog(lines, array("I"), 0)  # (all of them read whole, as they are)
    kept: list[str] = []
    condenser = _Condenser(_STR, kept.append)
    fullmatch = _STR.plain.fullmatch
    for index, line in enumerate(lines):
        condenser.line(index, line, fullmatch(line) if index >= CONDENSE_AFTER else None)
    condenser.end_run()
    return CondensedLog(kept, condenser.origins, condenser.elided, condenser.widths(str))


def condensed_bytes(chunks: Iterable[bytes]) -> CondensedLog:
    """condensed() of a log read as its bytes, in pieces (split at line feeds only, each line
    decoded as read: see CapturedLines), the lines kept held as CapturedLines holds a log. The
    lines between a builder's plain ones are taken in bulk: a log of few is read at the speed
    of its bytes."""
    kept = bytearray()

    def keep(line: bytes) -> None:
        kept.extend(line)
        kept.extend(b"\n")

    condenser = _Condenser(_BYTES, keep)
    index = 0  # of the first line of the lines read next
    pending: list[bytes] = []  # the start of a line a piece ended inside (a line may span many)

    def read(lines: bytes, stop: int) -> int:
        """Read the lines of lines[:stop] (a line end between each, none after the last): how
        many there are. (A piece read up to a point, not a copy of it: a huge log is read a
        piece at a time, each held once.)"""
        at, start = index, 0
        for plain in _PLAIN_LINES.finditer(lines, 0, stop):
            if plain.start() > start:  # (the lines before it, no plain one among them)
                condenser.end_run()
                taken = lines.count(b"\n", start, plain.start())
                condenser.notice(lines, at, start, plain.start())
                condenser.origins.extend(range(at, at + taken))
                kept.extend(memoryview(lines)[start:plain.start()])
                at += taken
            condenser.line(at, plain[0], plain)
            at, start = at + 1, plain.end() + 1
        if start <= stop:  # (the lines after the last plain one)
            condenser.end_run()
            taken = lines.count(b"\n", start, stop) + 1
            condenser.notice(lines, at, start, stop)
            condenser.origins.extend(range(at, at + taken))
            kept.extend(memoryview(lines)[start:stop])
            kept.extend(b"\n")
            at += taken
        return at - index

    for chunk in chunks:
        end = chunk.rfind(b"\n")
        if end == -1:
            pending += [chunk] if chunk else []
            continue
        if pending:
            lines = b"".join([*pending, chunk])
            index += read(lines, len(lines) - (len(chunk) - end))
        else:
            index += read(chunk, end)
        pending = [chunk[end + 1:]] if end + 1 < len(chunk) else []
    if pending:  # (a line feed ends a line: after the last one, no line starts)
        lines = b"".join(pending)
        index += read(lines, len(lines))
    condenser.end_run()
    return CondensedLog(CapturedLines(kept), condenser.origins, condenser.elided,
                        condenser.widths(bytes.decode))


_PLAIN_LINES = re.compile(b"(?m)^" + _PLAIN_BUILDER_LINE.encode() + b"$")
