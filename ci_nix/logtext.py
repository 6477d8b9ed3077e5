"""A log's text as reports show it: plain (no escapes), its tail bounded, a derivation by its
short name. Apart from diagnose, which classifies failures: a run that has none to diagnose
shows Nix's lines with these and never loads the classifier's patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable

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
