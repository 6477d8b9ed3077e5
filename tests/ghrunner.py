"""The GitHub Actions runner's workflow-command parser, emulated as its source reads.

actions/runner `src/Runner.Worker/ActionCommandManager.cs` (TryProcessCommand) and
`src/Runner.Common/ActionCommand.cs` (TryParseV2, TryParse):

- a step's output is read line by line (.NET `ReadLine`: a line ends at `\\n`, `\\r\\n` or a
  lone `\\r`);
- TryParseV2: the line with leading whitespace trimmed starts with `::`; the command info runs
  to the next `::`; its name (up to a space) must be registered (case-insensitive); properties
  `k=v` split at `,`; data after the `::`, with %25/%0D/%0A unescaped (properties also %3A/%2C);
- TryParse (the old form): `##[` anywhere in the line, the name up to `]`;
- `stop-commands` with data TOKEN: no command runs until one named TOKEN (`::TOKEN::`).

Where the real runner may match more than an ordinal reading (.NET's culture-aware
`StartsWith`/`IndexOf` skip zero-width and other ignorable characters), the emulation matches
more: it removes those characters before parsing. Whitespace is Python's `str.isspace`, a
superset of .NET's `char.IsWhiteSpace`. So a text this emulation runs nothing for is safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The command extensions the runner registers (plus stop-commands).
REGISTERED = frozenset({
    "add-mask", "add-matcher", "add-path", "debug", "echo", "endgroup", "error", "group",
    "notice", "remove-matcher", "save-state", "set-env", "set-output", "stop-commands",
    "warning"})

_IGNORABLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\ufff0-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    data: str


def _unescape(value: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for token, replacement in mappings:
        value = value.replace(replacement, token)
    return value


_DATA = (("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
_PROPERTY = (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))
_OLD = ((";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D"), ("%", "%25"))


def parse_v2(line: str, registered: set[str]) -> Command | None:
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name = info.split(" ", 1)[0]
    if name.lower() not in registered:
        return None
    properties = {}
    if " " in info:
        for prop in info.split(" ", 1)[1].strip().split(","):
            pair = prop.split("=", 1)
            if len(pair) == 2 and pair[0] and pair[1]:
                properties[pair[0]] = _unescape(pair[1], _PROPERTY)
    return Command(name.lower(), properties, _unescape(message[end + 2:], _DATA))


def parse_v1(line: str, registered: set[str]) -> Command | None:
    start = line.find("##[")
    if start < 0:
        return None
    end = line.find("]", start)
    if end < 0:
        return None
    info = line[start + 3:end]
    name = info.split(" ", 1)[0]
    if name.lower() not in registered:
        return None
    properties = {}
    if " " in info:
        for prop in info.split(" ", 1)[1].split(";"):
            pair = prop.split("=", 1)
            if len(pair) == 2 and pair[0] and pair[1]:
                properties[pair[0]] = _unescape(pair[1], _OLD)
    return Command(name.lower(), properties, _unescape(line[end + 1:], _OLD))


@dataclass
class Runner:
    """Feed it a step's output; `executed` lists the commands the runner would have run
    (stop-commands and the resume token included), `stopped` whether commands are paused."""

    registered: set[str] = field(default_factory=lambda: set(REGISTERED))
    executed: list[Command] = field(default_factory=list)
    token: str | None = None
    stopped: bool = False

    def feed(self, output: str) -> list[Command]:
        for line in re.split(r"\r\n|\r|\n", output):
            self.line(line)
        return self.executed

    def line(self, line: str) -> None:
        line = _IGNORABLE.sub("", line)
        command = parse_v2(line, self.registered) or parse_v1(line, self.registered)
        if command is None:
            return
        if self.stopped:
            if self.token and command.name == self.token.lower():
                self.executed.append(command)
                self.registered.discard(self.token.lower())
                self.stopped, self.token = False, None
            return
        self.executed.append(command)
        if command.name == "stop-commands":
            self.stopped, self.token = True, command.data
            self.registered.add(command.data.lower())

    def names(self) -> list[str]:
        """The commands run, a stop-commands token shown as `resume`."""
        return ["resume" if c.name.startswith("ci-nix-") else c.name for c in self.executed]
