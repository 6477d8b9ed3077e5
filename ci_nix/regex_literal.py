"""The characters every match of a regular expression holds: a cheap test before its search.

A text without them cannot match, and `literal in text` costs a fraction of a search that
fails (most do: a log's block is read against dozens of Nix's messages). The run is read off
the pattern's own parse, so a pattern written later has one without anyone stating it; where
none can be read (a pattern of alternatives or classes only, one that ignores case) it is ""
and the pattern is always searched.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# the parser `re` compiles with (private; its parse is read only here, and any surprise in it
# gives "": the pattern is searched as ever)
_sre_parser = importlib.import_module("re._parser")
_constants = importlib.import_module("re._constants")
_SEQUENCES = (_constants.SUBPATTERN, _constants.ATOMIC_GROUP)
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT)


def required_literal(pattern: re.Pattern[str]) -> str:
    """The longest run of characters every match of pattern holds, "" where none is known."""
    try:
        parsed = _sre_parser.parse(pattern.pattern, pattern.flags)
        runs: list[str] = []
        run: list[str] = []
        _read(parsed, bool(parsed.state.flags & re.IGNORECASE), runs, run)
        _end(runs, run)
    except Exception:  # noqa: BLE001 (re's private parser changed: no prefilter, no harm)
        return ""
    return max(runs, key=len, default="")


def _read(items: Any, ignore_case: bool, runs: list[str], run: list[str]) -> None:
    """Each item of a parsed sequence in turn: a literal goes on the run of characters the
    match holds in a row; a group is part of the sequence; anything else (a class, a choice,
    an optional part, an assertion) ends the run, and a part repeated at least once holds the
    runs of its own."""
    for op, av in items:
        if op is _constants.LITERAL and not ignore_case:
            run.append(chr(av))
            continue
        if op in _SEQUENCES:
            body = av[-1] if op is _constants.SUBPATTERN else av
            add, remove = (av[1], av[2]) if op is _constants.SUBPATTERN else (0, 0)
            case = (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            _read(body, case, runs, run)
            continue
        _end(runs, run)
        if op in _REPEATS and av[0] >= 1:
            inner: list[str] = []
            _read(av[2], ignore_case, runs, inner)
            _end(runs, inner)


def _end(runs: list[str], run: list[str]) -> None:
    if run:
        runs.append("".join(run))
        run.clear()
