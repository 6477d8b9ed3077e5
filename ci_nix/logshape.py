"""A captured log as Nix wrote it: undo what CI systems and wrapping tools did to its lines.

Users hand `ci-nix junit` logs the way they got them, not the way Nix printed them:

- downloaded from a CI system: a timestamp on every line (GitHub's raw log,
  `2024-05-01T12:00:00.1234567Z `; GitLab's `2024-05-01T12:00:00.123456Z 00O `), journald's
  `May 01 12:00:00 host unit[123]: `, ANSI colours, carriage returns and a progress bar that
  a message got glued to;
- as structured records: one JSON object a line (devbox, Stackdriver-style loggers,
  `journalctl -o json`) whose message holds Nix's stderr, or text with `\\n` escapes;
- through a wrapper: nix-output-monitor (and nh, which runs it) puts tree and box glyphs in
  front of lines, devenv shows errors in miette boxes, tracing-style loggers prefix a level;
- copied into an issue: every line indented, or dedented, by the same amount;
- with `nix build -L`: each line of a builder's output prefixed `name> `.

`normalise` undoes all of that. Each resulting `Line` keeps the index of the captured line it
came from, so a report can point back into the log the user has.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ci_nix.tools.nix import strip_ansi
from ci_nix.tools.nixlog import PREFIX

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Plain text: no ANSI escapes or control characters (JUnit and XML need this)."""
    return _CONTROL.sub("", strip_ansi(text))


@dataclass(frozen=True)
class Line:
    """One line of Nix's own text."""

    text: str
    origin: int  # index of the captured line it came from
    builder: str | None = None  # `nix build -L`: the name of the derivation whose output it is


# GitHub: "2024-05-01T12:00:00.1234567Z "; GitLab adds a stream tag: "00O ", "01E+"; containerd
# and Kubernetes (`kubectl logs` of a CI pod) add "stderr F "
_TIMESTAMP = re.compile(
    r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)"
    r"(?: \d\d[OE]\+?| (?:stdout|stderr) [FP])?(?: |$)")
# GitHub's log commands as a raw download keeps them: "##[group]Run nix build", "##[error]…"
_GITHUB_COMMAND = re.compile(r"^##\[(?P<command>group|endgroup|error|warning|notice|debug|section|"
                             r"command)\]")
# journald (short and short-iso): "May 01 12:00:00 host nixos-upgrade[1234]: "
_JOURNALD = re.compile(
    r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}) "
    r"\S+ [^\s:\[]+(?:\[\d+\])?: ")
# tracing / log-level prefixes of wrappers (nh's tracing output, Python loggers), and
# colmena's "[ERROR]   stderr) " before each line of the Nix output it relays
_LEVEL = re.compile(r"^\s*(?:ERROR|WARN|INFO|DEBUG|TRACE)\s+(?:[\w:]+: )?(?=\S)|"
                    r"^\[(?:ERROR|WARN|INFO|DEBUG|TRACE) ?\] +(?:(?:stderr|stdout)\) ?)?")
# nix-output-monitor's tree and box glyphs (U+2500-U+257F) and miette's (devenv) arrows and
# crosses. Nix itself never starts a line with them; "…" and "•" (its own) are not among them.
_GLYPHS = re.compile(r"^\s*(?:Error:\s+)?(?:[\u2500-\u257f\u25b6\u25b8\u276f×]+ ?)+")
# `nix build -L` (and nom): "hello> text"; the name is a derivation name (no version)
_BUILDER_PREFIX = re.compile(r"^(?P<name>[A-Za-z0-9+_.?=][A-Za-z0-9+_.?=-]*)>(?: (?P<text>.*))?$")
# a progress bar ("[1/0/3 built, 2 copied (1.5 MiB)] building foo: <its last log line>"). When a
# log viewer drops the carriage return and erase codes Nix draws before a message, the message
# is glued to the bar: it starts at an "error:" right after a non-blank or right after "] ".
BAR = re.compile(r"\[(?:\d+/)*\d+ (?:built|copied)[^\]]*\]")
_GLUED_ERROR = re.compile(r"(?:(?<=\S)|(?<=\] ))error:|(?<= )error: (?=builder for|Cannot build|"
                          r"hash mismatch|build of|\d+ dependenc|$)")
# a message carried with its line ends escaped (logfmt, a Python repr, a JSON string cut out):
# a line that holds an escaped line end and an error, not at its start (where Nix's own lines
# have them; an error message may quote a string with "\n" in it)
_ESCAPED = re.compile(r"\\n")
_QUOTED_FIELD = re.compile(r'\b(?:msg|message|error|err|stderr|output)="((?:[^"\\]|\\.)*)"')
_ERRORISH = re.compile(r"error:|[Cc]annot build|Reason:|builder for|hash mismatch|timed out|"
                       r"fixed-output derivation|Killed|failed|"
                       # what is left of a "Cannot build" block or a hash mismatch cut short
                       r"Required (?:system|features):|specified:", re.IGNORECASE)
_CODE_BULLET = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+`(?P<code>[^`]+)`\s*$")
_MESSAGE_KEYS = ("message", "msg", "MESSAGE", "textPayload", "log", "text", "error", "err")
_NESTED_KEYS = ("jsonPayload", "fields", "payload", "data")
_MAX_DEPTH = 3


def terminal_line(raw: str) -> str:
    """What a terminal shows of one line: the text after the last carriage return, cleaned.

    Nix redraws its progress bar with "\\r\\e[K", so a message printed while the bar is up
    shares the bar's line in a captured log.
    """
    segments = [clean(segment).rstrip() for segment in raw.split("\r")]
    shown = [segment for segment in segments if segment.strip()]
    line = shown[-1] if shown else ""
    bars = list(BAR.finditer(line))
    if bars:
        glued = list(_GLUED_ERROR.finditer(line, bars[-1].end() - 1))
        if glued:
            return line[glued[-1].start():]
    return line


def _record_message(line: str) -> str | None:
    """The message of a structured (JSON) log record, None when the line is not one.

    Of the fields a logger puts messages in, the one holding Nix's text: a record often has
    a short summary beside it ("msg": "nix build failed", "error": <stderr>).
    """
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    holders = [record] + [record[k] for k in _NESTED_KEYS if isinstance(record.get(k), dict)]
    found = [value for holder in holders for key in _MESSAGE_KEYS
             if isinstance(value := holder.get(key), str)]
    return max(found, key=lambda value: ("\n" in value, bool(_ERRORISH.search(value)),
                                         len(value)), default=None)


_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|quot|apos|lt|gt|amp);")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "e": "\x1b"}


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m[1]
        if len(code) > 1:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)
    return _ESCAPE.sub(one, text)


def _unwrap(raw: str, depth: int = 0) -> Iterator[str]:
    """The lines of Nix's text one captured line holds (a JSON record can hold many)."""
    line = raw
    while True:  # prefixes stack: journald inside a CI log, a timestamp inside journald
        stripped = _JOURNALD.sub("", _TIMESTAMP.sub("", line.lstrip("\ufeff"), count=1), count=1)
        if stripped == line:
            break
        line = stripped
    command = _GITHUB_COMMAND.match(line)
    if command is not None:  # shown as GitHub shows it: an error annotation reads "Error: …"
        rest = line[command.end():]
        line = f"Error: {rest}" if command["command"] == "error" else rest
    if line.lstrip().startswith("@nix "):  # internal-json: its reader takes records as they are
        yield line.lstrip()
        return
    if depth < _MAX_DEPTH:
        message = _record_message(clean(line))
        if message is None and _ESCAPED.search(line) and _ERRORISH.search(line) \
                and not _ERRORISH.match(line.lstrip()):
            field = _QUOTED_FIELD.search(line)
            message = _unescape(field[1] if field else line)
        if message is not None:
            for part in message.split("\n"):
                yield from _unwrap(part, depth + 1)
            return
    if _ENTITY.search(line):  # copied from a page's HTML source or an HTML-escaping logger
        line = html.unescape(line)
    # typographic quotes a chat, forum or editor put in (and Nix 1.x's own): as Nix writes now
    shown = terminal_line(line.translate(_QUOTES))
    shown = _GLYPHS.sub("", shown, count=1) if _GLYPHS.match(shown) else shown
    shown = _LEVEL.sub("", shown, count=1)
    bullet = _CODE_BULLET.match(shown)  # "- `error: …`": a line of the log in a markdown list
    shown = bullet["code"] if bullet else shown
    # a line pasted as inline code ("`error: …`"), or the ends of a code span cut by a line break
    if shown.startswith("`") and not shown.startswith("``"):
        shown = shown[1:]
    if shown.endswith("`") and not shown.endswith("``"):
        shown = shown[:-1]
    yield shown


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


# Where Nix's own text starts in a line; what stands before it on many lines is a prefix some
# tool put there (docker compose's "web_1  | ", Jenkins' or Buildkite's timestamps, git's
# "remote: ", kubectl's "… stderr F ", a viewer's line numbers, a markdown list)
_NIX_START = re.compile(r"(?:error|warning):|building ['‘]|these \d+ |copying path |"
                        r"Cannot build |builder for |hash mismatch|… (?:while|from|in|caused)|"
                        r"evaluating flake|while (?:evaluating|calling) |Killed$|Reason: |"
                        r"Required (?:system|features)|Current system|specified: |got: |"
                        r"Failed to find a machine|required \(system, features\)|"
                        r"Unable to start any build|Unable to build with a primary store",
                        re.IGNORECASE)
# what is no tool's prefix: Nix's own words, a `nix build -L` name, a markdown quote
_NOT_PREFIX = re.compile(r"error|warning|trace|>\s*$|^\s*$", re.IGNORECASE)
_PREFIX_PARTS = re.compile(r"(\d+|\s+)")
_MAX_SHAPES = 16
_RECORD = PREFIX + "{"  # an internal-json record
# words alone are Nix's own sentence ("while evaluating"); a tool's prefix has a mark or digit
_WORDS = re.compile(r"[^\W\d_]+(?:\s+[^\W\d_]+)*\s*")


def _prefix_shape(prefix: str) -> re.Pattern[str]:
    """The lines a tool's prefix stands on: its digits may change (times, counters, line
    numbers), its padding may widen; Nix's own indentation after it is kept."""
    parts = [part for part in _PREFIX_PARTS.split(prefix) if part]
    shape = []
    for index, part in enumerate(parts):
        if part.isdigit():
            shape.append(r"\d+")
        elif part.isspace() and index == len(parts) - 1:
            # the separator (what follows is Nix's indentation), or the end of an empty line
            shape.append(f"(?:{re.escape(part)}|\\s*$)")
        elif part.isspace():
            shape.append(r"\s*" if index == 0 else r"\s+")
        else:
            shape.append(re.escape(part))
    return re.compile("".join(shape))


def _tool_prefix(found: list[Line]) -> re.Pattern[str] | None:
    """The prefix a tool put before most lines, learnt from what stands before Nix's own
    words; None when no such prefix stands on at least half of the lines."""
    texts = [line.text for line in found if line.text.strip()]
    best: tuple[int, re.Pattern[str]] | None = None
    tried: set[str] = set()
    for text in texts:
        m = _NIX_START.search(text)
        # in an internal-json record Nix's words are inside it: what precedes the record is
        # the prefix (a record's own start is not: two error records alike would lose theirs)
        start = min(m.start(), text.find(_RECORD)) if m and _RECORD in text else (
            m.start() if m else 0)
        if start == 0 or _NOT_PREFIX.search(text[:start]) or _WORDS.fullmatch(text[:start]):
            continue
        shape = _prefix_shape(text[:start])
        if shape.pattern in tried:
            continue
        if len(tried) == _MAX_SHAPES:  # each is matched against every line: bound the work
            break
        tried.add(shape.pattern)
        on = sum(1 for other in texts if shape.match(other))
        if on >= 2 and 2 * on >= len(texts) and (best is None or on > best[0]):
            best = (on, shape)
    return best[1] if best else None


def normalise(lines: Iterable[str]) -> list[Line]:
    """Nix's own lines of a captured log, each with the index of the line it came from."""
    found = [Line(text, index) for index, raw in enumerate(lines) for text in _unwrap(raw)]
    prefix = _tool_prefix(found)
    if prefix is not None:
        found = [replace(line, text=prefix.sub("", line.text, count=1)) for line in found]
    # a log pasted as a markdown quote: "> " before every line (Nix's own quoted build log
    # lines are indented, so a log never has them at the start of all its lines)
    texts = [line.text for line in found if line.text.strip()]
    if texts and all(text.startswith(">") for text in texts) \
            and any(_ERRORISH.search(text) for text in texts):
        found = [replace(line, text=line.text[2:] if line.text.startswith("> ") else
                         line.text[1:]) for line in found]
    # a whole log indented (copied from a quote, a YAML block, a one-space paste) is dedented
    indents = [_indent(line.text) for line in found if line.text.strip()]
    shift = min(indents, default=0)
    if shift:
        found = [replace(line, text=line.text[shift:]) for line in found]
    result = []
    for line in _rejoined(found):
        m = _BUILDER_PREFIX.match(line.text)
        result.append(replace(line, text=m["text"] or "", builder=m["name"]) if m else line)
    return result


# what starts a line of its own in a Nix log (Nix's messages, its status lines, a quoted or
# indented line): never the rest of a line a terminal or pager broke
_OWN_LINE = re.compile(
    r"^(?:\s|$|(?:error|warning|trace|note|evaluation warning):|error \(ignored\)|"
    r"building|builder for|cannot build|Cannot build|build of|these |this |copying |querying |"
    r"fetching |downloading |unpacking |evaluating |installing |replacing |created |"
    r"hash mismatch|fixed-output|some |\d+ dependenc|don't know|path |Killed|\S+> |> |"
    r"… |\[\d+/|\$ |# |Reason:|Required|Current|For full|Last \d+|last \d+|curl: |trying |"
    r"while |\(use |Try |Did you mean|[A-Z][a-z]+:|at \S|\d+\||\||"
    # build-remote's "Failed to find a machine for remote build!" and the lines it lists
    r"Failed to find|derivation: |required \(system|\d+ available machines|\(systems, |\(\[)")
_ERROR_START = re.compile(r"^error: \S")
_TERMINAL_WIDTHS = frozenset({80, 100, 120, 132})
_WRAP_SLACK = 12  # a word wrap leaves at most about a word's width free at a line's end
_MIN_WIDTH = 60


def _rejoined(found: list[Line]) -> list[Line]:
    """Lines a terminal, pager or nix-output-monitor broke at a fixed width, joined again.

    A log is taken as broken at width W when no line is longer than W and at least three lines
    (and a tenth of them) end within a word of W; such a line continues on the next one unless
    that starts a line of its own. A cut at exactly W fell inside a word (a terminal's hard
    wrap, which may split a store path); a shorter one at a blank the wrap dropped."""
    texts = [line.text for line in found if line.text.strip()]
    width = max((len(text) for text in texts), default=0)
    full = sum(1 for text in texts if len(text) >= width - _WRAP_SLACK)
    wrapped = width >= _MIN_WIDTH and full >= 3 and 10 * full >= len(texts)
    # a terminal's hard wrap cuts many lines at exactly the width, inside words
    hard = wrapped and sum(1 for text in texts if len(text) == width) >= 3
    joined: list[Line] = []
    in_error = False  # the last line joined to is (the rest of) an unindented error line
    for line in found:
        last = joined[-1] if joined else None
        if last is not None and not _OWN_LINE.match(line.text) and (
                in_error or (wrapped and len(last.text) >= width - _WRAP_SLACK)):
            # Nix indents what continues an error; an unindented line right after one that
            # starts no line of its own is the rest of it
            # cut inside a word: at the width many lines fill, or at a terminal's usual width
            # (a word wrap drops the blank it broke at, so its lines end short of the width)
            inside = (hard and len(last.text) == width) or len(last.text) in _TERMINAL_WIDTHS
            gap = "" if inside else " "
            joined[-1] = replace(last, text=last.text + gap + line.text)
            continue
        in_error = _ERROR_START.match(line.text) is not None
        joined.append(line)
    return joined
