"""Text a build or a pull request controls, made inert for each channel it reaches.

Attribute, derivation and flake names, `system` strings, builder output, Nix's error messages and
configuration values are data. Printed raw, a builder line runs as a GitHub workflow command
(`::add-mask::`, `##[error]`), a name with ESC and a carriage return opens a GitLab log section,
a backtick ends a markdown code span, `@org/admins` pings a team from ci-nix's PR comment, and a
lone surrogate makes the JUnit report unreadable. One function per channel, used by every writer:

- `name` / `text`: control, bidi and zero-width characters as escapes (pieces of a line);
- `log_line` / `log_lines` / `LogFormatter`: whole lines for terminals and the GitHub and GitLab
  logs; `json_for_log` / `xml_for_log`: a JSON or XML document printed into such a log;
- `github_command`, `stop_commands`, `github_block`: GitHub workflow commands around them;
- `gitlab_section_start` / `gitlab_section_end`: a collapsed GitLab job-log section;
- `xml` (names) / `xml_shown` (messages, logs): JUnit;
- `md_text`, `md_code`, `md_html`, `md_fence`: markdown (step summary, PR/MR comment).
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from collections.abc import Iterable

# Characters that move a terminal's cursor, split a line for a CI log parser, reorder text
# (bidi overrides: "Trojan Source") or vanish (zero-width and other default-ignorable code
# points, which .NET's culture-aware string search used by the GitHub runner skips, so
# "#\u200b#[" could still read as "##["), and lone surrogates (no encoding can write them).
_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\ud800-\udfff\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else
                                f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def name(value: str) -> str:
    """One line, shown as it is: line breaks, ESC, other controls, bidi overrides and invisible
    characters become visible escapes (`\\n`, `\\e`, `\\x07`, `\\u202e`). Tabs stay."""
    return _UNSAFE.sub(_escape, value)


def text(value: str) -> str:
    """Several lines (a log, an error message): each line as `name` makes it; `\\n` stays
    the only line break (a lone `\\r` would start a line that a CI log parser reads anew)."""
    return "\n".join(name(line) for line in value.replace("\r\n", "\n").split("\n"))


# --- logs: terminals, GitHub Actions, GitLab CI -------------------------------------------------
# The GitHub runner (actions/runner ActionCommandManager/ActionCommand) splits output into lines
# at \n, \r\n and a lone \r, trims leading whitespace and runs `::cmd props::data` at a line's
# start, and `##[cmd props]data` anywhere in a line. GitLab opens and closes log sections at
# `section_start:TIME:NAME` followed by `\r\e[0K`, which needs control characters.

def log_line(value: str) -> str:
    """One line for a terminal or a CI log, shown as it is, never read as a command: controls
    escaped (no line break, cursor move or GitLab section marker), `##[` as `##\\[` and a
    leading `::` as `\\::` (no GitHub workflow command)."""
    line = name(value).replace("##[", "##\\[")
    stripped = line.lstrip()
    if stripped.startswith("::"):
        line = line[:len(line) - len(stripped)] + "\\" + stripped
    return line


def log_lines(value: str) -> list[str]:
    """Lines of untrusted text (a log tail, a build's output), each made inert."""
    return [log_line(line) for line in value.replace("\r\n", "\n").split("\n")]


def json_for_log(serialized: str) -> str:
    """JSON (as json.dumps wrote it) that a CI log shows without running a command, same value:
    `##[` can only stand inside a string, where `#\\u0023[` means the same; no line of it
    starts with `::` (json.dumps escapes line breaks inside strings)."""
    return serialized.replace("##[", "#\\u0023[")


def xml_for_log(serialized: str) -> str:
    """XML (as ElementTree wrote it) that a CI log shows without running a command, same
    document: `##[` as `#&#35;[`; a text line starting with `::` as `&#58;:` (attribute values
    hold no line break, ElementTree writes them as `&#10;`)."""
    lines = serialized.replace("##[", "#&#35;[").split("\n")
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("::"):
            lines[index] = line[:len(line) - len(stripped)] + "&#58;" + stripped[1:]
    return "\n".join(lines)


class LogFormatter(logging.Formatter):
    """ci-nix's log records as lines that stay text: the message's arguments (names, Nix's
    and a forge's texts) on one line each, every line of the result as `log_line` makes it."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and args:
            record = logging.makeLogRecord(record.__dict__)
            record.args = tuple(arg if isinstance(arg, int | float) else name(str(arg))
                                for arg in args)
        return "\n".join(log_line(line) for line in super().format(record).split("\n"))


def stop_commands() -> tuple[str, str]:
    """(start, end): lines that make the runner ignore every workflow command between them.

    The token is random, so text printed in between cannot guess it to resume commands early.
    Between them no command of ci-nix's runs either: a group opens before, annotations come
    after, and secrets are registered (`::add-mask::`) when the workspace is loaded or when a
    forge is called after the builds, never while builder output is being printed.
    """
    token = f"ci-nix-{secrets.token_hex(16)}"
    return f"::stop-commands::{token}", f"::{token}::"


def github_block(lines: Iterable[str]) -> str:
    """Untrusted lines for the GitHub log: each made inert and all inside stop-commands."""
    start, end = stop_commands()
    body = "".join(f"{log_line(line)}\n" for line in lines)
    return f"{start}\n{body}{end}\n"


def _command_data(value: str) -> str:
    # The runner unescapes %25, %0D and %0A in the data after it found the command's end.
    return text(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _command_property(value: str) -> str:
    return _command_data(value).replace(":", "%3A").replace(",", "%2C")


def github_command(command: str, data: str, **properties: str) -> str:
    """`::command key=value,…::data` with untrusted values escaped as the runner unescapes
    them (actions/toolkit `command.ts`), so data and properties stay what ci-nix meant."""
    props = ",".join(f"{key}={_command_property(value)}" for key, value in properties.items())
    return f"::{command}{' ' + props if props else ''}::{_command_data(data)}"


# --- GitLab job log ----------------------------------------------------------------------------

_ERASE = "\x1b[0K"  # GitLab's "erase line": hides the markers in the rendered log


def gitlab_section_name(value: str) -> str:
    """A section name from any text: GitLab allows letters, digits, `_`, `.` and `-`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", value)[:80]


def gitlab_section_start(name: str, header: str, now: int) -> str:
    """The line that opens a collapsed job-log section under `header` (both any text) at the
    Unix time `now`."""
    return (f"{_ERASE}section_start:{now}:{gitlab_section_name(name)}[collapsed=true]\r"
            f"{_ERASE}{log_line(header)}")


def gitlab_section_end(name: str, now: int) -> str:
    """The line that closes the section `name` at the Unix time `now` (GitLab shows the
    section's duration)."""
    return f"{_ERASE}section_end:{now}:{gitlab_section_name(name)}\r{_ERASE}"


# --- XML (JUnit) -------------------------------------------------------------------------------

# XML 1.0's forbidden and discouraged characters (junit-xml drops the latter, and \r, silently)
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
                      + "".join(f"{chr(plane + 0xfffe)}{chr(plane + 0xffff)}"
                                for plane in range(0x10000, 0x110000, 0x10000)) + "]")


def xml(value: str, *, attribute: bool = False) -> str:
    """Text XML 1.0 can hold: characters it forbids (most controls, lone surrogates, U+FFFE)
    become visible escapes instead of vanishing or making the report unreadable. An attribute
    value (a name, a message) on one line: a parser turns its line breaks and tabs into spaces."""
    value = _NOT_XML.sub(_escape, value)
    return re.sub("[\t\n]", _escape, value) if attribute else value


def xml_shown(value: str, *, attribute: bool = False) -> str:
    """Text a reader of the JUnit report sees (a failure's message and log, a skip's reason,
    captured output): as `xml` makes it, and what `text` shows as escapes (bidi controls that
    would reorder it, zero-width and other invisible characters, a lone carriage return) shown
    so too, as on every other channel. Names (a test case's attribute path, a flake id) are
    `xml`'s alone: tools match on them, and the contract pins them to what Nix is given."""
    return xml(name(value) if attribute else text(value), attribute=attribute)


# --- Markdown (GitHub/GitLab flavoured) --------------------------------------------------------

# Characters with a meaning inline (escapes, code, emphasis, links and images, HTML and entities,
# table cells, strikethrough, GitHub math); `_` only where it could open or close emphasis
# (not between two letters or digits, as in x86_64).
_INLINE = re.compile(r"[\\`*\[\]<>&|~$]|(?<![^\W_])_|_(?![^\W_])")
# `@name` and `@org/team` mention people; `#12`, `owner/repo#12` (GitHub) and `!12` (GitLab)
# put a "mentioned in" note on another issue or merge request. A zero-width space after the `@`,
# `#` or `!` keeps the text and drops the link (what Dependabot and Renovate do with the
# commit messages they quote).
_REFERENCE = re.compile(r"@|(?<=[#!])(?=\d)")


def _unlinked(text: str) -> str:
    return _REFERENCE.sub(lambda m: m.group() + "\u200b", text)


def md_text(value: str) -> str:
    """Inline markdown that shows `value` literally on one line: what could be markup
    backslash-escaped (no emphasis, link, image, HTML, table cell break; nothing that opens a
    block where the line starts, no GitLab quick action), line breaks and controls as escapes,
    mentions and issue references defused."""
    line = _unlinked(_INLINE.sub(lambda m: "\\" + m.group(), name(value)))
    stripped = line.lstrip()
    lead = line[:len(line) - len(stripped)]
    ordered = re.match(r"\d{1,9}(?=[.)])", stripped)
    if ordered:
        stripped = f"{ordered.group()}\\{stripped[ordered.end():]}"
    elif stripped[:1] in ("#", ">", "-", "+", "=", "/"):  # `/`: a GitLab quick action
        stripped = "\\" + stripped
    # leading spaces would make an indented code block, or be dropped: keep them as entities
    return "".join(f"&#{ord(char)};" for char in lead) + stripped


def md_code(value: str, *, table: bool = False) -> str:
    """An inline code span holding `value` on one line, its backtick fence one longer than
    any run of backticks inside. In a table cell a `|` must be `\\|` even in code."""
    line = name(value)
    if not line:
        return ""  # markdown has no empty code span
    fence = "`" * (max((len(run) for run in re.findall("`+", line)), default=0) + 1)
    if line.strip(" ") and (line[0] in "` " or line[-1] in "` "):
        line = f" {line} "  # one space each side is removed again when rendered (unless
        # the span holds spaces only, which is shown as it is)
    if table:
        line = line.replace("|", "\\|")
    return f"{fence}{line}{fence}"


def md_html(value: str) -> str:
    """Text inside an HTML element of the markdown (`<summary>…</summary>`), where markdown is
    not parsed: HTML-escaped, on one line, mentions and issue references defused."""
    return _unlinked(html.escape(name(value), quote=True))


def md_fence(value: str, info: str = "") -> str:
    """A fenced code block holding `value` (several lines), its fence longer than any run of
    backticks inside, so no line of the text can close it. Ends with a newline."""
    body = text(value)
    fence = "`" * max(3, max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    return f"{fence}{info}\n{body}\n{fence}\n"
