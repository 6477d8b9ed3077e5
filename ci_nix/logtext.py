"""A log's text as reports show it: plain (no escapes), its tail bounded, a derivation by its
short name. Apart from diagnose, which classifies failures: a run that has none to diagnose
shows Nix's lines with these and never loads the classifier's patterns."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import overload

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

    def __init__(self, data: bytes) -> None:
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
