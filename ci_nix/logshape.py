"""A captured log as Nix wrote it: undo what CI systems and wrapping tools did to its lines.

Users hand `ci-nix junit` logs the way they got them, not the way Nix printed them:

- downloaded from a CI system: a timestamp on every line (GitHub's raw log,
  `2024-05-01T12:00:00.1234567Z `; GitLab's `2024-05-01T12:00:00.123456Z 00O `), journald's
  `May 01 12:00:00 host unit[123]: `, ANSI colours, carriage returns and a progress bar that
  a message got glued to;
- as structured records: one JSON object a line (devbox, Stackdriver-style loggers,
  `journalctl -o json`, Loki's logcli) whose message holds Nix's stderr, or text with `\\n`
  escapes; a journal's export (`journalctl -o export`);
- through a wrapper: nix-output-monitor (and nh, which runs it) puts tree and box glyphs in
  front of lines, devenv shows errors in miette boxes, tracing-style loggers prefix a level;
- copied into an issue: every line indented, or dedented, by the same amount;
- with `nix build -L`: each line of a builder's output prefixed `name> `;
- damaged by the copy itself: a line's first letters eaten, Nix's lines run together, store
  paths a transcription of a screen broke (`_mended`).

`normalise` undoes all of that. Each resulting `Line` keeps the index of the captured line it
came from, so a report can point back into the log the user has.
"""

from __future__ import annotations

import functools
import html
import inspect
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from itertools import pairwise
from os.path import commonprefix
from typing import Concatenate, ParamSpec, TypeVar, cast

from ci_nix.logtext import clean
from ci_nix.regex_literal import ascii_folded, holds, required_literals
from ci_nix.tools.nix import strip_ansi
from ci_nix.tools.nixlog import PREFIX

_P = ParamSpec("_P")
_R = TypeVar("_R")
# The passes over a log read each of its lines again and again, through the same few functions
# of one line (what a terminal shows of it, without its transport's and wrapper's prefixes):
# 330,000 calls of _transported for 35,000 distinct lines in a sample of test_logshape's
# wrappings. Those functions depend on their arguments alone and give an immutable result, so
# a short line's is kept for the next pass: the last _LINE_MEMO lines' (a log's next pass
# comes soon after; more kept hit no more often over the corpus, and held ~8 MiB on a long
# log, bench P10's), each of up to _MEMO_LENGTH characters (a long line, a hostile one or a
# huge record, is read each time, never kept)
_LINE_MEMO = 512
_MEMO_LENGTH = 300


def per_line(function: Callable[Concatenate[str, _P], _R]
             ) -> Callable[Concatenate[str, _P], _R]:
    """function, its result for a line of up to _MEMO_LENGTH characters (its first argument)
    kept for the next call with the same arguments (logshape's readers of one line, and
    diagnose's)."""
    kept: Callable[..., _R] = functools.lru_cache(maxsize=_LINE_MEMO)(function)

    @functools.wraps(function)
    def read(line: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if len(line) <= _MEMO_LENGTH:
            return kept(line, *args, **kwargs)
        return function(line, *args, **kwargs)

    # (a function of the line alone called without packing the others: millions of calls)
    @functools.wraps(function)
    def read_line(line: str) -> _R:
        return kept(line) if len(line) <= _MEMO_LENGTH else function(line)  # type: ignore[call-arg]
    alone = len(inspect.signature(function).parameters) == 1
    return cast(Callable[Concatenate[str, _P], _R], read_line) if alone else read



# UTF-8 read as Windows-1252 or Latin-1 (a download or viewer that guessed the encoding): each
# character of Nix's beyond ASCII became two to four ("‘" "â€˜", "…" "â€¦", nom's "┃" "â”ƒ"):
# a lead byte's character, then continuation bytes' (0x80-0xBF as Latin-1 or Windows-1252 has
# them). Only a run that decodes as UTF-8 again is taken back: text that is Latin-1 stays
_CONTINUATION = "[\x80-\xbf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]"
_MOJIBAKE = re.compile(f"[\xc2-\xdf]{_CONTINUATION}|[\xe0-\xef]{_CONTINUATION}{{2}}|"
                       f"[\xf0-\xf4]{_CONTINUATION}{{3}}")
_WINDOWS_1252 = {chr(byte).encode("latin-1").decode("cp1252", errors="ignore"): byte
                 for byte in range(0x80, 0xa0)}
# a page's spaces: no-break ones (HTML's &nbsp;, an indentation a rich text editor kept) are
# blanks, zero-width ones and soft hyphens (which a page may put inside a long store path to
# let it break) are nothing; Nix writes none of them
_SPACES = str.maketrans({"\xa0": " ", "\u2007": " ", "\u202f": " ", "\u200b": None,
                         "\u2060": None, "\ufeff": None, "\xad": None})
_ODD_SPACE = re.compile("[\xa0\u2007\u202f\u200b\u2060\ufeff\xad]")  # (an ASCII text: none)
# a colour code whose ESC a copy dropped ("[31;1merror:[0m builder for '[35;1m/nix/store/…"):
# one no text has (several numbers, a colour's, a reset), then any code in that line (a
# builder's "x[1m]" alone stays), and an erase at a line's start. A program's own spelling of
# the ESC before it goes too (Haskell's `show` writes "\\ESC[31;1m")
_SPELT_ESC = r"(?:\\(?:ESC|e|033|x1[bB]|u001[bB]))?(?<!\x1b)\["
_BARE_COLOUR = re.compile(rf"{_SPELT_ESC}(?:(?:\d{{1,3}};){{1,15}}\d{{0,3}}|[349]\d|10\d|0;?)m")
_BARE_SGR = re.compile(rf"{_SPELT_ESC}(?:\d{{0,3}}m|[0-2]?K)|{_BARE_COLOUR.pattern}")
_BARE_ERASE = re.compile(r"^\[[0-2]?K")


def _unmangled(text: str) -> str:
    """A line's characters as Nix wrote them, where a transport re-encoded them."""
    def one(m: re.Match[str]) -> str:
        try:
            return bytes(_WINDOWS_1252.get(char, ord(char)) for char in m[0]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # no UTF-8: Latin-1 text of its own
            return m[0]
    return text if text.isascii() else _MOJIBAKE.sub(one, text)


def _overstruck(text: str) -> str:
    """What a terminal shows of text with backspaces: each takes back the character before it
    (a spinner's "|\b/\b", a pager's bold "e\be"), but never a blank: Nix passes a builder's
    backspaces on, and those after its `name> ` would take the name away on a terminal, making
    the builder's words look like Nix's own line."""
    kept: list[str] = []
    for char in text:
        if char == "\b":
            if kept and kept[-1] != " ":
                kept.pop()
        else:
            kept.append(char)
    return "".join(kept)


@per_line
def _plain(text: str) -> str:
    """A line's plain text (`logtext.clean`) as a terminal showed it where a copy or transport
    changed its characters: overstruck characters taken back, no page's odd spaces, and UTF-8
    a transport read as Windows-1252 decoded again (what a JSON record's source may go through
    too). Colour codes go first: one between two bytes' characters keeps them apart."""
    text = _unmangled(strip_ansi(text))
    if "\b" in text:
        text = _overstruck(text)
    text = clean(text)
    return text.translate(_SPACES) if not text.isascii() and _ODD_SPACE.search(text) else text


def _uncoded(text: str) -> str:
    """A shown line without the colour codes a copy left without their ESC (never a record's
    source, whose escaped ESC is no copy's loss)."""
    if "[" in text and _BARE_COLOUR.search(text):
        return _BARE_SGR.sub("", text)
    return _BARE_ERASE.sub("", text, count=1) if text.startswith("[") else text


@dataclass(frozen=True, slots=True)
class Line:
    """One line of Nix's own text."""

    # (slots: `ci-nix junit` holds several lists of these, a line of the log each; without a
    # __dict__ a 5 M-line log peaks some 450 MB lower)
    text: str
    origin: int  # index of the captured line it came from
    builder: str | None = None  # `nix build -L`: the name of the derivation whose output it is
    # a wrapper's own error mark stood before it (devenv's "Error: ×", colmena's "[ERROR]")
    marked: bool = False
    # read from inside a structured record (a JSON or logfmt field): the captured line's
    # prefixes stood before the record, not before these lines; how deep (2: a record in a
    # record's line), 0 for a captured line's own
    inner: int = 0
    # one of the builder's lines Nix quotes after "last N log lines:" (a failed build's last
    # lines: 2.3's indented, 2.4+'s "> "-marked), the builder's data: it names, and hides, no
    # failure of Nix's. Decided here only (`_unwrapped` counts the quote on the captured lines,
    # `_quote_cut` ends it where a copy cut it); every reader of a quote reads this
    quoted: bool = False


# GitHub: "2024-05-01T12:00:00.1234567Z "; GitLab adds a stream tag: "00O ", "01E+"; containerd
# and Kubernetes (`kubectl logs` of a CI pod) add "stderr F "; Jenkins' Pipeline with
# `timestamps()` writes it in brackets ("[2025-06-25T14:31:12.339Z] "). GitHub's CLI (`gh run
# view --log`, `--log-failed`) puts the job's and the step's names, each before a tab, before
# GitHub's timestamp: "build\tRun nix build\t2024-05-01T12:00:00.1234567Z " ("UNKNOWN STEP"
# where it cannot tell); a name holds no tab, so each is read once (linear)
_ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)"
# (or a copy lost the blank after it: "…Zerror: …", "…Z> error: …", "…Z```": no time goes on
# after its zone)
_STAMP = (rf"(?:{_ISO_TIME}|\[{_ISO_TIME}\])"
          r"(?: \d\d[OE]\+?| (?:stdout|stderr) [FP])?(?: |$|(?=\S))")
# (a job's or step's name starts with no blank (a page's "&nbsp;" either) nor a transport's
# timestamp, and holds no `nix build -L` builder's "name> ", also behind a transport's prefix:
# a builder printing "a\tb\t<timestamp> error: …" is no job's line, and the builder's name
# stays on its line; nor two blanks in a row: a tool's prefix learnt later, compose's
# "web_1  | ", a viewer's line number, then Nix's indentation of a quoted builder's line)
_GH_NAME = r"(?:(?!> |&gt; |\s\s)[^\t\n]){1,300}"
# (a markdown quote's ">" a copy glued to the first line's timestamp, no blank between: never
# Nix's quote of a builder's line, which has one; nixd#53's ">2023-06-02T08:04:05.4886792Z
# error: builder for …")
_STAMP_LEAD = rf"^\ufeff?(?:>(?={_ISO_TIME}))?"
_TIMESTAMP = re.compile(
    rf"{_STAMP_LEAD}(?:(?=[^\s>])(?!&nbsp;|\d{{4}}-\d\d-\d\dT){_GH_NAME}\t{_GH_NAME}\t"
    rf"(?={_ISO_TIME}(?: |$)))?{_STAMP}")
# the same for a line without a tab, where no job's and step's names can end (read so, the
# search tried each of the line's first 300 characters as a name's: most of a line's reading)
_TIMESTAMP_UNNAMED = re.compile(_STAMP_LEAD + _STAMP)
# BuildKit's plain progress (`docker build --progress=plain`, a CI's docker step): the step's
# number and the seconds since it started before each line its command printed ("#11 0.174 "),
# the number alone before BuildKit's own lines of the step ("#11 [7/7] RUN …", "#11 ERROR: …",
# "#11 DONE 0.5s", "#11 CACHED")
_BUILDKIT = re.compile(r"^#\d{1,5} (?:\d{1,6}\.\d{3}(?: |$)|(?=\[|ERROR\b|DONE \d|CACHED\s*$))")
# GitHub's log commands as a raw download keeps them: "##[group]Run nix build", "##[error]…";
# and as a step prints them, which a run outside GitHub (`act`, a script run by hand) shows:
# "::group::nix build", "::error file=flake.nix,line=3::…"
_GITHUB_COMMAND = re.compile(r"^(?:##\[(?P<command>group|endgroup|error|warning|notice|debug|"
                             r"section|command)\]|::(?P<workflow>group|endgroup|error|warning|"
                             r"notice|debug)(?: [^:\n]{0,500})?::)")
# VS Code's own lines around a task's output in its terminal: " *  Executing task: nix build ",
# its verdict " *  The terminal process "/bin/bash '-c', 'nix build'" terminated with exit code:
# 1. " and " *  Terminal will be reused by tasks, press any key to close it. "
_VSCODE_OWN = re.compile(r"^ ?\*  (?:(?P<verdict>The terminal process .{0,4096}terminated with "
                         r"exit code: -?\d{1,9}\.?)|Executing task\b|Terminal will be reused )")
# GitLab's runner writes its own lines of a job log with an erase code, a section marker
# ("section_start:1730000001:step_script\r\e[0K"), or in bold colours: the echo of a script
# line ("\e[32;1m$ nix build\e[0;m") and its verdict ("\e[31;1mERROR: Job failed: …")
# GitLab's section marker: where a section starts or ends, when (a Unix time), then its name
_SECTION_MARK = r"section_(?P<edge>start|end):\d+:"
_GITLAB_OWN = re.compile(rf"\x1b\[0K|{_SECTION_MARK}|\x1b\[3[12];1m(?:\$ |ERROR: Job failed)")
# Buildkite's agent writes its own lines of a job log: groups ("~~~ ", "--- ", "+++ ", "^^^ +++"),
# the echo of a command ("$ nix build") and its verdict ("🚨 Error: The command exited …")
_BUILDKITE_OWN = re.compile(r"(?:~~~|---|\+\+\+|\^\^\^ \+\+\+)(?: |$)|\$ |🚨 ")
# Azure Pipelines' header of a script task, between rulers of "=" (as in
# microsoft/azure-pipelines-tasks#8848): "Task         : Bash", "Generating script.", …
_AZURE_OWN = re.compile(r"={20,}$|(?:Task|Description|Version|Author|Help) +: |"
                        r"Generating script\.$|Script contents:$|\[command\]|"
                        r"=+ Starting Command Output =+$")
# Jenkins' own lines of a Pipeline's console log (`consoleText`): its steps ("[Pipeline] sh"),
# the run's start and end ("Started by user …", "Running on agent-1 in /var/lib/…",
# "Finished: FAILURE") and a failed `sh` step's verdict ("ERROR: script returned exit code 1")
_JENKINS_OWN = re.compile(r"\[Pipeline\] |Started by |Running on \S+ in /|"
                          r"Finished: (?:SUCCESS|FAILURE|UNSTABLE|ABORTED|NOT_BUILT)\s*$|"
                          r"ERROR: script returned exit code \d+\s*$")
_CAST_HEADER = re.compile(r'\s*\{.{0,2000}"version"\s*:\s*[23]\b')
_GITLAB_SECTION = re.compile(rf"^{_SECTION_MARK}[^\s\r]{{0,200}}\r(?:\x1b\[0K)?")
# Nix's own two words before a colon, which a line of its own may start with (a copy may have
# dedented "Required features: {…}")
_NIX_LABEL = r"(?:Required|Available|Current|Output|evaluation|Last) "
# journald in each of journalctl's short formats, then host and unit: short "May 01 12:00:00",
# short-precise "May 01 12:00:00.123456", short-iso(-precise) "2024-05-01T12:00:00(.123456)+0200"
# (rsyslog's RFC 3339 has "+02:00"), short-full "Wed 2024-05-01 12:00:00 CEST", short-unix
# "1714564800.123456", short-monotonic "[ 1234.567890]"; "… host nixos-upgrade[1234]: "
# (host and unit start with a word character: "May 01 12:00:00 - broken: …" is moreutils' `ts`
# before Nix's words; after an RFC 3339 time, which CI systems write before any line too, only
# with the unit's pid; no unit is called "error": "May 01 12:00:00 filesystem error: cannot …"
# is `ts` before a program's "<word> error: ", libstdc++'s filesystem_error Nix relays)
_JOURNALD = re.compile(
    # (the month as the machine's locale abbreviates it: "May", "мая", "déc.", "Mär")
    r"^(?:(?:(?:[A-Z][a-z]{2}|[^\W\d_]{3,4}\.?) [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?"
    r"|[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})? [A-Z][A-Za-z0-9+-]{0,5}"
    r"|\d{9,11}\.\d{1,9}|\[ {0,12}\d{1,12}\.\d{1,9}\]) (?!{_NIX_LABEL})\w[^\s:>]* "
    r"(?!error: )\w[^\s:\[]*(?:\[\d+\])?: "
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d{1,9})?[+-]\d\d:?\d\d "
    r"\w[^\s:>]* \w[^\s:\[]*\[\d+\]: )".replace("{_NIX_LABEL}", _NIX_LABEL))
# Terraform's (and OpenTofu's) provisioners relay what their command printed each line after
# the resource's address and the provisioner ("module.deploy_nixos.null_resource.deploy_nixos
# (local-exec): error: unknown flag …", nix-community/terraform-nixos#48; nixos-anywhere's
# modules run Nix so): an address is names, each maybe with an index ("module.x["a"]"), joined
# by dots, and longer than a prefix learnt from the lines may be
_ADDRESS_PART = r"[A-Za-z_][\w-]{0,200}(?:\[[^\]\n]{0,200}\])?"
_TERRAFORM = re.compile(rf"^(?:{_ADDRESS_PART}\.){{1,32}}{_ADDRESS_PART} "
                        r"\((?:local|remote)-exec\):(?: |$)")
# Google Cloud Build's log of a build (as `gcloud builds submit` streams it, or its log viewer's
# download): "Step #0: " before each line a step printed, with the step's id where it has one
# ('Step #1 - "nix-build": '); its own lines around them ("Starting Step #0", "Finished Step
# #0", the phases "BUILD"/"ERROR", its verdict 'ERROR: build step 0 "nixos/nix" failed: step
# exited with non-zero status: 1')
_CLOUD_BUILD_STEP = r'Step #\d{1,4}(?: - "[^"\n]{0,200}")?'
_CLOUD_BUILD = re.compile(rf"^{_CLOUD_BUILD_STEP}:(?: |$)")
_CLOUD_BUILD_OWN = re.compile(rf"(?:Starting|Finished) {_CLOUD_BUILD_STEP}\s*$|"
                              r"(?:FETCHSOURCE|BUILD|PUSH|DONE|ERROR)\s*$|"
                              r'ERROR: build step \d{1,4} "[^"\n]{0,500}" failed: ')
# Ansible's own lines of a playbook's run: a play's and a task's header ruled with stars to the
# terminal's width ("TASK [build the system] ****…"), a task's result on a host ("fatal: [web]:
# FAILED! => …", "ok: [web] => …", "changed: [web]"), the recap and each host's counts in it
_ANSIBLE_OWN = re.compile(r"(?:PLAY|TASK|RUNNING HANDLER) \[[^\]\n]{0,500}\] \*{3,}\s*$|"
                          r"PLAY RECAP \*{3,}\s*$|"
                          r"(?:fatal|failed|ok|changed|skipping|unreachable|ignoring): "
                          r"\[[^\]\n]{1,300}\]|"
                          r"\S{1,300} +: ok=\d+ +changed=\d+ +unreachable=\d+ +failed=\d+")
# a terminal's string commands carry no text: Buildkite's raw log starts each line with one
# ("ESC _bk;t=1745322209921 BEL"), before whatever else the line has
_MAX_STACK = 8  # prefixes stacked on one line, at most
# (Buildkite's also where a copy dropped its ESC and BEL: "_bk;t=1745322209921", milliseconds
# since 1970 in 13 digits, which a line's own digits may follow)
_STRING_COMMANDS = re.compile(r"^(?:\x1b[P^_X\]][^\x07\x1b]*(?:\x07|\x1b\\)|_bk;t=\d{13}\x07?)+")
# git's relay of the remote side's output (a push-to-deploy hook that runs Nix: "remote: " before
# every line it printed, "remote:" alone for an empty one), as known as a CI's timestamp: a log
# that holds more of the writer's prose than of the hook's lines teaches no prefix
_GIT_REMOTE = re.compile(r"^remote:(?: |$)")


@per_line
def _transported(line: str) -> str:
    """A line without what CI systems and log collectors put before it, stacked in any order
    (journald inside a CI log, a timestamp inside journald); a few deep, not a line of
    thousands of timestamps (each taken away copies the line: quadratic). A page's odd spaces
    are read first: the blank after a timestamp may be a no-break one a copy made."""
    if not line.isascii() and _ODD_SPACE.search(line):
        line = line.translate(_SPACES)
    for _ in range(_MAX_STACK):
        stripped = _STRING_COMMANDS.sub("", line.lstrip("\ufeff"), count=1)
        # journald first: its ISO forms are a timestamp too, and the host and unit follow
        stripped = _JOURNALD.sub("", stripped, count=1)
        stamp = _TIMESTAMP if "\t" in stripped else _TIMESTAMP_UNNAMED
        stripped = _JOURNALD.sub("", stamp.sub("", stripped, count=1), count=1)
        stripped = _BUILDKIT.sub("", stripped, count=1)
        stripped = _GIT_REMOTE.sub("", stripped, count=1)
        if "-exec)" in stripped:
            stripped = _TERRAFORM.sub("", stripped, count=1)
        if stripped.startswith("Step #"):
            stripped = _CLOUD_BUILD.sub("", stripped, count=1)
        if stripped == line:
            break
        line = stripped
    return line
# tracing / log-level prefixes of wrappers (nh's tracing output, Python loggers), and
# colmena's "[ERROR]   stderr) " before each line of the Nix output it relays; a target after
# the level ("INFO nh::commands: ") is the prefix's also where Nix's line is blank or indented
# (what follows it may be blanks or nothing)
_LEVEL = re.compile(r"^\s*(?:ERROR|WARN|INFO|DEBUG|TRACE)\s+(?:[\w:]+:(?: |$)|(?=\S|$))|"
                    r"^\[(?:ERROR|WARN|INFO|DEBUG|TRACE) ?\] +(?:(?:stderr|stdout)\) ?)?")
# nix-output-monitor's tree and box glyphs (U+2500-U+257F) and miette's (devenv) arrows and
# crosses. Nix itself never starts a line with them; "…" and "•" (its own) are not among them.
_GLYPH = "[\u2500-\u257f\u25b6\u25b8\u276f×]"
_GLYPHS = re.compile(rf"^\s*(?:(?:Error:\s+)?(?:{_GLYPH}+ ?)+)+")
# nix-output-monitor's own status line ("┗━ ∑ ⚠ Exited with 1 errors reported by nix at …")
# and its box's headings ("┣━━━ Builds"): no line of Nix's, and one that would end a trace
# whose message it is waiting for, or continue a line a copy cut
# (glyphs and blanks as one class: a repetition of glyph runs, "(?:[─-╿]+\s*)*", tried every way
# to split a run that no "∑ " follows: a rule of 40 glyphs took hours, deaf to SIGTERM)
_NOM_STATUS = re.compile(r"^[\s\u2500-\u257f]*(?:∑ |━━━ ?(?:Builds|Downloads|Uploads)\s*$)")
# `nix build -L` (and nom): "hello> text"; the name is a derivation name (no version)
_DRV_NAME = r"[A-Za-z0-9+_.?=][A-Za-z0-9+_.?=-]*"
_BUILDER_PREFIX = re.compile(rf"^(?P<name>{_DRV_NAME})>(?: (?P<text>.*))?$")
# a progress bar ("[1/0/3 built, 2 copied (1.5 MiB)] building foo: <its last log line>"). When a
# log viewer drops the carriage return and erase codes Nix draws before a message, the message
# is glued to the bar: it starts at an "error:" right after a non-blank or right after "] ".
# (its first item whichever has activity, libmain/progress-bar.cc getStatus: builds, copies,
# downloads, "MiB DL" in 2.x, each size with its own unit where they differ in 2.2x, verified or
# optimised paths)
BAR = re.compile(r"\[(?:(?:\d+/)*\d+ (?:built|copied|paths (?:verified|optimised))|"
                 r"(?:\d+(?:\.\d+)?(?: [KMGTPE]iB)?/)*\d+(?:\.\d+)? [KMGTPE]iB DL)[^\]]*\]")
# (never right after an escaped line end: a message carrying another's stderr escaped, nix-index's
# "QueryPackages { … exit status: 1:\nerror: attribute …", holds it; it is no message of its own)
_GLUED_ERROR = re.compile(r"(?:(?<=\S)(?<!\\n)|(?<=\] ))error:|(?<= )error: (?=builder for|"
                          r"Cannot build|hash mismatch|build of|\d+ dependenc|$)")
# the activities Nix's bar shows a build log's last line after (progress-bar.cc: only build and
# post-build-hook log lines become an activity's lastLine)
_SHOWS_A_BUILDERS_LINE = re.compile(r"(?:building|post-build) ")
_SPACED_ERROR = re.compile(r"(?<= )error: ")
# a message carried with its line ends escaped (logfmt, a Python repr, a JSON string cut out):
# a line that holds an escaped line end and an error, unless it is an error line of Nix's own
# (its message may quote a string with "\n" in it), nor an escape shown as code, alone in its
# backticks: Lix 2.93+'s lexer says "CR (`\r`) and CRLF (`\r\n`) line endings are not supported",
# also behind a prefix that hides its "error:" from that test
_ESCAPED = re.compile(r"(?<!`)(?<!`\\r)\\n|\\n(?!`)")


def _escaped(text: str) -> bool:
    """Whether text holds an escaped line end (_ESCAPED), which needs a backslash and "n"
    (tested first: the search is the costlier)."""
    return "\\n" in text and _ESCAPED.search(text) is not None


# Nix's own error line behind a timestamp prefix learning takes away later (Buildkite's or
# Jenkins' "[2024-05-01 12:00:22] ", moreutils' ts "May 01 12:00:22 ", a chat's "[12:00] <alice> "):
# its message may quote a string holding "\n" as any error line of Nix's ("attempt to call
# something which is not a function but a string: "set -efux\n…"), which is no escaped text
_STAMPED_ERROR = re.compile(r"(?:[A-Z][a-z]{2}\.? )?[\d \[\]().:,/+TZ-]{1,64}"
                            r"(?:<[^<>\s]{1,32}> )?error:")
# text copied from GitHub's log viewer: digits that happen to look like a line number of the
# step became links to it ("x8[6](https://github.com/o/r/actions/runs/1/job/2#step:5:7)_64")
_STEP_LINK = re.compile(r"\[(\d+)\]\(https://github\.com/[^)\s]*#step:\d+:\d+\)")
# a logfmt field a message can be in (also under a namespace: Go's slog writes `cmd.stderr="…"`),
# or a Rust `Debug` struct's (`Output { status: …, stdout: "", stderr: "…" }`, the Determinate
# installer's report of a Nix command it ran), its value up to its closing quote or, where a
# copy cut the record, to the line's end: the record's own `" }` after it is no text of Nix's
_QUOTED_FIELD = re.compile(r'(?<![\w.-])(?:[\w-]+\.)*(?P<key>msg|message|error|err|stderr|output|'
                           r'stdout)(?P<sep>=|(?<=stderr|stdout): )'
                           r'"(?P<value>(?:[^"\\]|\\.)*)(?:"|\\?$)')
# a child's output a tool relays unquoted, its first line (whatever Nix printed first: "error:",
# "building '…'…", "Failed to find a machine …") glued after the field's name: a value with a
# blank in it, unquoted, is no logfmt value (nor one before another field, nor a quoted one,
# its quote escaped by a record around it, as a page's entity or typeset by a forum, nor a
# Python repr's b'…'); or after Go's error of the command ("nix eval …: exit status 1: error:
# …", a Go tool's `fmt.Errorf("%s: %w: %s", cmd, err, stderr)`), where Nix's "error:" or
# "warning:" follows. (The first word a bounded run: each field's name starts a look to the
# next blank, and a line of names without one made that quadratic, 96 kB 0.7 s)
RELAY_KEYS = ("stderr", "stdout", "output")  # (diagnose reads a line ending in one as a relay)
_UNQUOTED_RELAY = re.compile(r"(?<![\w.-])(?:(?:[\w-]+\.)*(?:" + "|".join(RELAY_KEYS) + ")="
                             r"(?=(?:error|warning):|(?![bBrRuU]?(?:\\*['\"“”‘’]|"
                             r"&(?:quot|apos|#3[49]|#[xX]2[27]);))"
                             r"\S{1,300} (?![\w.-]+=))|"
                             r"exit status -?\d{1,9}: (?=(?:error|warning):))")
_MAX_RELAYS = 8  # a tool's relay of a tool's relay…, at most, on one line
# a double quote as a record or a forum's typesetting spells it, not one a string escaped
_DOUBLE_QUOTE = re.compile(r'(?<!\\)["“”]')
# the fields that hold a child process's own output, not the logger's summary of it
_OUTPUT_KEYS = frozenset({"stderr", "error", "err", "output"})
_LOGFMT_KEY = re.compile(r'(?:^|\s)[\w.-]+=')
_ERRORISH = re.compile(r"error:|[Cc]annot build|Reason:|builder for|hash mismatch|timed out|"
                       r"fixed-output derivation|Killed|failed|"
                       # what is left of a "Cannot build" block or a hash mismatch cut short
                       r"Required (?:system|features):|specified:", re.IGNORECASE)
_CODE_BULLET = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+`(?P<code>[^`]+)`\s*$")
# (and a child process's output a record carries: Ansible's task result, `fatal: [host]: FAILED! =>
# {"msg": "non-zero return code", "stderr": …, "stderr_lines": […]}`, holds Nix's stderr there)
_MESSAGE_KEYS = ("message", "msg", "MESSAGE", "textPayload", "log", "line", "text", "error", "err",
                 *RELAY_KEYS)
_NESTED_KEYS = ("jsonPayload", "fields", "payload", "data")
_MAX_DEPTH = 3
# a whole line that is one double-quoted string literal holding an escaped quote (\' or \"),
# a comma after it or not: a tool printed a list of lines as literals (Rust's `Debug`, a repr)
_STRING_LITERAL_LINE = re.compile(r'^\s*"(?P<body>(?:[^"\\\n]|\\.)*)",?\s*$')
_ESCAPED_QUOTE = re.compile(r"\\['\"]")


def terminal_line(raw: str, quoted: bool = False) -> str:
    """What a terminal shows of one line: the text after the last carriage return, cleaned.

    Nix redraws its progress bar with "\\r\\e[K", so a message printed while the bar is up
    shares the bar's line in a captured log (not in a builder's line Nix `quoted` in its error:
    a bar there is the builder's text).
    """
    return _terminal_parts(raw, quoted)[0]


@per_line
def _terminal_parts(raw: str, quoted: bool = False) -> tuple[str, str]:
    """What a terminal shows of one line (`terminal_line`), and what stood before the progress
    bar a message shown so was glued to ("" where none was): a prefix a tool put before the
    line, which the bar took with it."""
    segments = [_uncoded(_plain(segment)).rstrip() for segment in raw.split("\r")]
    shown = [segment for segment in segments if segment.strip()]
    line = shown[-1] if shown else ""
    bars = list(BAR.finditer(line))
    # (never a bar after a `nix build -L` name: Nix draws its bar from a line's start, so that
    # is a builder printing one, "noisy> [1/0/3 built] error: …", whose words stay its own)
    if bars and not quoted and not _BUILDER_NAME.search(line, 0, bars[-1].start()):
        # (right after the bar's counts, the message starts there: the bar showed no build's
        # line, which may hold an "error:" of its own; a message may hold more, a copy that
        # ran Nix's lines together: "…result'.error: Cannot delete path …")
        after = bars[-1].end() + 1
        if line.startswith("error:", after) and line[after - 1] == " ":
            return line[after:], line[:bars[0].start()]
        glued = list(_GLUED_ERROR.finditer(line, bars[-1].end() - 1))
        if not glued and not _SHOWS_A_BUILDERS_LINE.match(line, after):
            # a bar whose activity shows no builder's line (a download, a query: Nix puts only
            # build logs' lines there) holds no "error:" of a builder's: one after a blank is
            # the message (where the terminal cut the bar's line short of its width)
            glued = list(_SPACED_ERROR.finditer(line, bars[-1].end()))
        if glued:
            return line[glued[-1].start():], line[:bars[0].start()]
    return line, ""


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
    except (ValueError, RecursionError):  # nested past the limit: no logger's record
        record = None
        if _TYPESET_QUOTES.search(text):
            # a record a forum or chat typeset: its quotes as “ and ” (no JSON without them)
            try:
                record = json.loads(text.translate(_PLAIN_QUOTES))
            except (ValueError, RecursionError):
                return None
    if not isinstance(record, dict):
        return None
    holders = [record] + [record[k] for k in _NESTED_KEYS if isinstance(record.get(k), dict)]
    found = [value for holder in holders for key in _MESSAGE_KEYS
             if (value := _text_of(holder.get(key))) is not None]
    return max(found, key=lambda value: ("\n" in value, bool(_ERRORISH.search(value)),
                                         len(value)), default=None)


_MAX_FIELD_BYTES = 1 << 20
# a record's key as typesetting quotes it, “message”: (what a JSON record opens with)
_TYPESET_QUOTES = re.compile(r"^\{\s*“[^“”\n]{1,200}”\s*:")
_PLAIN_QUOTES = str.maketrans("“”", '""')


def _text_of(value: object) -> str | None:
    """A record field's text: a string, or the array of bytes `journalctl -o json` writes a
    MESSAGE holding a control character as (an ANSI colour, a carriage return)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) <= _MAX_FIELD_BYTES \
            and all(type(byte) is int and 0 <= byte < 256 for byte in value):
        return bytes(value).decode("utf-8", errors="replace")
    return None


# the markup around a log in a page's HTML source (GitHub issue bodies, forums, mailing list
# archives): `<details><summary>log</summary>`, `<pre><code>`, a `<br>` ending a line; Nix writes
# none of these tags (its `<nixpkgs>` is none). A `<br>` inside a line stays: a builder could
# print one before words of Nix's
_HTML_TAG = re.compile(r"</?(?:pre|code|samp|kbd|tt|details|summary|p|div|span|b|strong|em|i|"
                       r"blockquote)(?:\s[^<>]{0,200})?>", re.IGNORECASE)
_HTML_SUMMARY = re.compile(r"\s*(?:<details(?:\s[^<>]{0,200})?>\s*)?<summary>[^<>]{0,200}"
                           r"</summary>\s*$", re.IGNORECASE)
_HTML_BREAK = re.compile(r"<br\s{0,8}/?>\s*$", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|quot|apos|lt|gt|amp|nbsp|hellip|[lr][sd]quo);")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)")
# `cat -v` (or a pager without -R) shows ESC as "^[", a carriage return as "^M", BEL as "^G".
# A "^M" is dropped, not read as a carriage return: text after one would hide what stands
# before it, and a builder can print "^[" and "^M" after its `name> `. A "^[" is ESC only where
# a terminal's code follows it (a CSI of digits, ";" or "?" and a letter, a charset's "(B", an
# OSC's "]"): a regular expression's "^[0-9]+" or "^[[:alpha:]]" in Nix's message stays as it is
_CARET = re.compile(r"\^\[(?=\[[0-9;?]{0,32}[A-Za-z]|[()][0-9A-Za-z]|\])|\^[MG]")
_CARETS = {"^[": "\x1b", "^M": "", "^G": ""}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "e": "\x1b"}


def _logfmt_message(line: str) -> re.Match[str] | None:
    """Of a logfmt record (`time=… level=… msg="…" cmd.stderr="…"`) or a Rust `Debug` struct's
    `stderr: "…"`, the field holding Nix's text (its `value`, still escaped); None when no field
    holds lines or a child's output, or the line is not such a record.

    A record holds its message on one line with `\\n` escapes; a field holding a child
    process's stderr (devbox logs each Nix command's) is Nix's own text even on one line and
    even cut short, where a logger's `msg=` beside it is its own summary."""
    # (a field's value opens with '="' or ': "': a line without either holds none)
    fields = list(_QUOTED_FIELD.finditer(line)) if '="' in line or ': "' in line else []
    if not fields:
        return None
    best = max(fields, key=lambda f: (_escaped(f["value"]),
                                      bool(_ERRORISH.search(f["value"])),
                                      f["key"] in _OUTPUT_KEYS, len(f["value"])))
    if _escaped(best["value"]):
        return best
    if best["sep"] == "=" and len(_LOGFMT_KEY.findall(line)) >= 2 and best["value"].strip() \
            and (best["key"] in _OUTPUT_KEYS or _ERRORISH.search(best["value"])):
        return best
    return None


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m[1]
        if len(code) > 1:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)
    return _ESCAPE.sub(one, text)


# a character of UTF-8 written byte by byte as backslash-hex escapes, its lead byte (C2-F4) and
# one to three continuation bytes (80-BF): "\E2\80\A6" for Nix's "…" (agenix-rekey#89's
# nixos-rebuild run), "\E2\9D\AF" for a prompt's "❯"
_BYTE_ESCAPES = re.compile(r"(?:\\[C-Fc-f][0-9A-Fa-f](?:\\[89ABab][0-9A-Fa-f]){1,3})+")


def _utf8_of(escaped: re.Match[str]) -> str:
    """The characters a run of byte escapes spells, or the run as it was where its bytes are no
    UTF-8 (a Windows path, a regular expression's own escapes)."""
    try:
        return bytes.fromhex(escaped[0].replace("\\", "")).decode("utf-8")
    except ValueError:
        return escaped[0]


# a markdown fence glued to a line of the capture ("```error: builder for …", "```2024-05-01T…Z
# …", "┃ ```error: …" behind a tool's prefix, "…failed```"): the paste put no line end between the
# fence and the log. At a line's start it is glued where more than its language follows
# ("```console" alone opens the block); after other text, where Nix's own text follows.
_FENCE_OPEN = re.compile(r"`{3,}(?=[^`\s:]*(?:[\s:]\s*\S|:\s*$))")


def _opening_off(line: str) -> str:
    """line without the markdown fence glued to its start."""
    opening = _FENCE_OPEN.match(line)
    return line[opening.end():] if opening else line


def _captured_unfenced(line: str) -> str:
    """A captured line without a markdown fence glued to its start, or to the end of a
    structured record (a JSON object, a recording's event): taken off before anything else
    reads the line (a recording's header, a timestamp, a record may be what it is glued to)."""
    line = _opening_off(line)
    before = line.rstrip("`")
    return before if len(line) - len(before) >= 3 and before.endswith(("}", "]")) else line


def _unfenced(line: str) -> str:
    """A shown line without a markdown fence glued to it (a closing one read only here, after
    a terminal's controls: a fence after a line erase is alone on its line)."""
    line = _opening_off(line)
    if "```" in line:  # (from a run's first backtick only: linear in a run of them)
        line = _FENCE_BEFORE_NIX.sub("", line)
    before = line.rstrip("`")  # (not a pattern: a run of backticks inside would backtrack)
    glued = len(line) - len(before) >= 3 and before[-1:].strip() != ""
    return before if glued else line


# Nix's intro to the last lines of a failed build's log it quotes ("last 10 log lines:", "Last 25
# log lines:" since 2.24): the one spelling every pattern that reads it is built from. (The count
# is Nix's log-lines setting: five digits at most, so `int` never meets a thousand-digit one.)
TAIL_INTRO = r"[Ll]ast \d{1,5} log lines:"
# ... ending its line (2.3: its header's line, "…; last 10 log lines:"; 2.4+: a line of its own)
TAIL_COUNT = re.compile(TAIL_INTRO + r"\s*$")


def quoted_lines(intro: re.Match[str]) -> int:
    """How many of the builder's lines Nix quotes after an intro TAIL_INTRO matched."""
    return int(intro[0].split()[1])


# Nix 2.4+'s mark before each line of a failed build's log it quotes ("       > ", ">" alone
# before an empty line): the one spelling its readers build on (not a markdown quote's,
# _QUOTE_MARKS)
TAIL_MARK = r">(?: |$)"
# ... as a wrapper or a record around the line leaves it
_TAIL_MARK = re.compile(r"(?:^|\s)" + TAIL_MARK)


# an elision mark alone on its line ("...", "…", "[...]", "(…)"): a writer's, where they left out
# lines of what they copied
ELISION = re.compile(r"^\s*(?:\.{3}|…|\[(?:\.{3}|…)\]|\((?:\.{3}|…)\))\s*$")


def _unwrapped(lines: Iterable[str], depth: int = 0
               ) -> Iterator[tuple[int, tuple[str, bool, int, bool, str]]]:
    """(index, _unwrap's line) of each line's, and whether it is one of the lines Nix quotes
    of a failed build after "last N log lines:" (`Line.quoted`). Those are read as a builder's
    own (no record, logfmt field, relay or escaped text of theirs is a line of Nix's: a build
    printing `{"msg":"error: builder for '…-other.drv' failed …"}` as its last lines made that
    another derivation's failure). The quote is counted in captured lines (a record's lines
    within the record), from an intro of Nix's own: not a builder's `-L` line, nor one inside
    a quote, nor one a record's lines go on after (the record's own quote, counted in it)."""
    quoted, nix_marks, mark_seen = 0, False, False
    marked_line = ""  # the quote's last line that held Nix's mark
    message = False  # after an error line of Nix's, while lines go on at its message's indent
    lead: re.Pattern[str] | None = None  # the prefix its error line stood behind, unknown yet
    for index, line in enumerate(lines):
        if quoted and nix_marks and line.strip():
            if _holds_tail_mark(line):
                mark_seen, marked_line = True, line
            elif mark_seen and _elides(line, marked_line):
                pass  # (a writer left out some of the quoted lines: the quote goes on)
            elif mark_seen:
                quoted = 0  # a copy cut the quote short: what follows the cut is no builder's
            else:
                # no line of it marked (a copy took every mark): no cut shows, the count
                # stands, and the quote ends as an unmarked one does (`_quote_cut`)
                nix_marks = False
        tail, quoted = quoted > 0, max(quoted - 1, 0)
        if message and line.strip():
            # (a transport's record of the line: the indentation of the line it holds; any
            # other line's past the prefixes a wrapper puts before it, nom's "┃ ", colmena's
            # level: past the prefixes its error line was read behind, a tool's not learnt yet
            # too, compose's "web_1  | ", a viewer's line numbers)
            held = _held_line(line)
            shown = _transported(line) if held is None else held
            if held is None and lead is None and _indent(shown) < _MESSAGE_INDENT:
                # (and a page's source: its entities, "&nbsp;" for Nix's indentation, read)
                shown = _shown_start(html.unescape(line) if "&" in line
                                     and _ENTITY.search(line) else line)
            elif held is None and lead is not None:
                shown = _after(lead, _shown_start(line))
            # (an empty line of the message's with its prefix alone: as an empty line)
            message = not shown.strip() or _indent(shown) >= _MESSAGE_INDENT
        pieces = _unwrap_line(line, depth, tail or message,
                              (lead, ) if message and not tail else None)
        for at, (text, wrapper_marked, inner, held_quoted, before_bar) in enumerate(pieces, 1):
            # (the intro of the line's last piece, with a page's spaces as blanks: a
            # transport's record of the line ends after it, '…lines:\n"}', a journal's may hold
            # it as bytes; a record's lines before its last have their own quote, counted in
            # it; asked of each piece's own text, not of the captured line again for each line
            # a record in it holds: a record of many escaped line ends read the whole line
            # again for each)
            if not tail and not held_quoted and at == len(pieces) and "lines:" in text \
                    and not _BUILDER_PREFIX.match(text) \
                    and (m := TAIL_COUNT.search(spaced := _spaced(text))) is not None:
                quoted = quoted_lines(m)
                # 2.4+ prints its intro on a line of its own (behind a tool's prefix, too) and
                # marks each line it quotes, before whatever the builder wrote (a "\r" too);
                # 2.3 ends its header's line with it ("…; last 10 log lines:") and marks none
                nix_marks, mark_seen = not spaced[:m.start()].rstrip().endswith(";"), False
            # (a captured line's, or the one line a transport's record of it holds; not one of
            # the lines a record of many holds: what those hold is read as ever)
            if not message and (not inner or depth > 0 or len(pieces) == 1
                                and _held_line(line) is not None):
                lead = None if _NIX_ERROR.match(text) else _error_lead(text)
                message = lead is not None or _NIX_ERROR.match(text) is not None
            yield index, (text, wrapper_marked, inner, tail or held_quoted, before_bar)


def _elides(line: str, marked: str) -> bool:
    """Whether a captured line inside Nix's quote is a writer's elision mark alone, past what
    it shares with the quote's marked line before it (a transport's or tool's prefix, its
    numbers as 0, or Nix's indentation): "...", "…", "[...]" where some lines were left out
    (heldout-123's wbox notes), no cut of the quote."""
    zeroed = numbers_as_zero(line)
    return ELISION.match(zeroed[len(commonprefix([zeroed, numbers_as_zero(marked)])):]) \
        is not None


def _error_lead(text: str) -> re.Pattern[str] | None:
    """The shape of a prefix not learnt yet (a tool's, a viewer's line numbers) that an error
    line of Nix's stands behind ("web_1  |        error: x"), as learning would take it (Nix's
    indentation after it kept); None where no error line of Nix's stands behind one."""
    at = text.find("error:", 0, _MAX_TOOL_PREFIX)
    if at <= 0 or not _NIX_ERROR.match(text, at) or not text[at - 1].isspace():
        return None
    before = text[:at].rstrip()
    before = text[:len(before) + 1]  # (the separator: Nix's indentation stays after it)
    if not before.strip() or _not_prefix(before) or _WORDS.fullmatch(before) \
            or _BUILDER_NAME.search(before) or _QUOTED_AFTER.match(before):
        return None
    return _prefix_shape(before)


def _held_line(line: str) -> str | None:
    """The one line a transport's record of a captured line holds (Docker's json-file log,
    `logcli --output jsonl`, a journal's JSON: a record opening the line, behind a known
    transport's prefix); None for any other line."""
    shown = _transported(line)
    if not shown.startswith("{"):
        return None
    # (copied from a page's HTML source: its quotes as entities, `{&quot;log&quot;: …}`)
    return _one_line(_record_message(_plain(html.unescape(shown) if "&" in shown
                                            and _ENTITY.search(shown) else shown)))


def _one_line(held: str | None) -> str | None:
    """A record's message as the one captured line it holds (its line end off); None where it
    holds none or several."""
    if held is None:
        return None
    held = held.removesuffix("\n")
    return None if "\n" in held else held


def _tail_mark_part(line: str) -> str:
    """Where a captured line of Nix's quote holds its "> " mark: before any carriage return
    (2.4+ marks each line it quotes before what the builder wrote, a "\r" too), its entities
    read (copied from a page's HTML source: "&gt; ", which is no cut of the quote)."""
    part = line[:line.find("\r")] if "\r" in line else line
    return _spaced(html.unescape(part) if "&" in part else part)


def _spaced(line: str) -> str:
    """A captured line with a page's spaces as Nix wrote them (no-break ones blanks, zero-width
    ones nothing): Nix's "last N log lines:" and its quote's "> " copied from a page."""
    return line if line.isascii() else line.translate(_SPACES)


def _holds_tail_mark(line: str) -> bool:
    """Whether a captured line holds Nix's mark of a quoted line (`_tail_mark_part`), also inside
    a transport's record of the line (journald writes a MESSAGE holding colours as its bytes)."""
    if _TAIL_MARK.search(_tail_mark_part(line)):
        return True
    held = _record_message(_plain(line)) if line.startswith("{") else None
    return held is not None and _TAIL_MARK.search(_tail_mark_part(held)) is not None


# Nix's error line, and how deep it indents its message's further lines ("error: " is 7 wide):
# they are the message's text (a flake's `throw "x\n[1/0/3 built] error: builder for '…'"`,
# a logfmt or JSON record line in it), never a line a transport or tool wrapped
# (its message may start on the next line: 2.13+'s "error:" over the trace, and a throw whose
# text starts with a line end, "       error:" under the throw's frame)
_NIX_ERROR = re.compile(r"\s*error:(?: |\s*$)")
_MESSAGE_INDENT = 7
_MESSAGE_BLANKS = " " * _MESSAGE_INDENT


def _vscode_shown(line: str) -> str | None:
    """A line as VS Code's own lines around a task's output are read: its echo of the task and
    its prompt to close the terminal are no lines of Nix's (None), its verdict is read as a CI
    system's ("Error: …"); any other line as it is."""
    vscode = _VSCODE_OWN.match(line) if line.startswith(("*", " *")) else None
    if vscode is None:
        return line
    return None if vscode["verdict"] is None else f"Error: {vscode['verdict']}"


@per_line
def _unwrap_line(raw: str, depth: int, tail: bool,
                 in_message: tuple[re.Pattern[str] | None] | None
                 ) -> tuple[tuple[str, bool, int, bool, str], ...]:
    """All of `_unwrap`'s lines of one captured line (kept for the next pass: `per_line`)."""
    return tuple(_unwrap(raw, depth, tail, in_message=in_message))


def _unwrap(raw: str, depth: int = 0, tail: bool = False, relayed: int = 0,
            in_message: tuple[re.Pattern[str] | None] | None = None
            ) -> Iterator[tuple[str, bool, int, bool, str]]:
    """The lines of Nix's text one captured line holds (a JSON record can hold many), each
    with whether a wrapper marked it as its error, whether it came from inside a record,
    whether that record's own text quotes it as a builder's (`tail`: a builder's line Nix
    quotes, or a line of Nix's message, whose record or escaped text is its text) and what
    stood before a progress bar it was glued to (`_terminal_parts`). `in_message`: the line is
    one of Nix's message's (not quoted), with the prefix not learnt yet its error line stood
    behind, if any."""
    line = _STEP_LINK.sub(r"\1", raw) if "](https://github.com/" in raw else raw
    if "^[" in line:  # `cat -v`'s spelling of a terminal's controls: the controls again
        line = _CARET.sub(lambda m: _CARETS[m[0]], line)
    line = _unmangled(line)  # (before typographic quotes are read: "”" is a byte of "│")
    line = _transported(line)
    if line.startswith("section_"):  # GitLab shows a section's header, never its markers
        line = _GITLAB_SECTION.sub("", line, count=1)
    command = _GITHUB_COMMAND.match(line)
    if command is not None:  # shown as GitHub shows it: an error annotation reads "Error: …"
        rest = line[command.end():]
        line = f"Error: {rest}" if "error" in (command["command"], command["workflow"]) else rest
    elif line.startswith(("*", " *")):
        own = _vscode_shown(line)
        if own is None:
            return
        line = own
    if "<" in line:  # copied from a page's HTML source (its markup before a timestamp, too)
        # the page's caption of the log is no line of it (unless it says something failed:
        # never a silent zero)
        if _HTML_SUMMARY.match(line) and not _ERRORISH.search(line):
            return
        line = _transported(_HTML_BREAK.sub("", _HTML_TAG.sub("", line)))
    # internal-json: its reader takes records as they are (before a relay is split: a builder's
    # build-log record may hold one)
    if line.lstrip().startswith(PREFIX):
        yield line.lstrip(), False, depth, False, ""
        return
    # (nor inside a string a record holds: a Docker or logfmt record of a `-L` line,
    # {"log":"attacker> x stderr=error: …"}, is read as its line first, the builder's)
    if ("=" in line or "exit status " in line) and not tail and relayed < _MAX_RELAYS \
            and (relay := _UNQUOTED_RELAY.search(line)) is not None \
            and not _builders(seen := _as_shown(line[:relay.start()]), len(seen), quoted=True) \
            and len(_DOUBLE_QUOTE.findall(line, 0, relay.start())) % 2 == 0 \
            and not _opens_nix_error(line):
        # a child's stderr a tool's error relays as it is, its first line glued after the
        # field's name (omnix's "… exit_code=Some(1) stderr=error: …", its lines after
        # on lines of their own): the tool's part and Nix's first line, each a line
        # (a tool's line only: never one a builder printed, behind its `-L` name or in the
        # last lines Nix quotes, nor a line of Nix's message, whose text it is: its
        # "stderr=error: builder for '…-other.drv' failed" made that another's failure)
        # (nor on an error line of Nix's own: a flake's `throw "y stderr=error: builder for
        # '…-other.drv' failed"` is its message, 2.8's on the error line, 2.13+'s under the
        # throw's frame; it blamed the other derivation)
        # (a few relays deep: each split reads the rest again, and a line of a thousand, a
        # flake's `throw` of them, ran past Python's recursion limit: `ci-nix junit` died)
        yield from _unwrap(line[:relay.end()], depth, relayed=relayed + 1)
        yield from _unwrap(line[relay.end():], depth, relayed=relayed + 1)
        return
    # a transport's record of one captured line (Docker's json-file log, `logcli --output
    # jsonl`, a journal's JSON; also behind a prefix normalising does not know yet, `kubectl
    # logs --prefix`'s "[pod/x/nix] ") holding a line of Nix's quote: read as that line, a
    # builder's (Nix indents each line it quotes, and marks it since 2.4: a builder's own
    # record of it never starts a line, nor follows a prefix but after Nix's blanks or "> ")
    if tail and depth < _MAX_DEPTH and ((held := _held_line(line)) is not None
                                        or (held := _prefixed_held_line(line)) is not None):
        yield from _unwrap(held, depth + 1, tail)
        return
    # a line printed as a string literal (a tool's list of Nix's lines: lorri 0.1's Rust
    # `Debug`, "\"building \\'/nix/store/….drv\\'...\","): the literal's text, its escapes undone
    if depth < _MAX_DEPTH and not tail and '\\' in line \
            and (literal := _STRING_LITERAL_LINE.match(line)) is not None \
            and _ESCAPED_QUOTE.search(literal["body"]):
        yield from (part for _, part in _unwrapped(
            _unescape(literal["body"]).split("\n"), depth + 1))
        return
    # an internal-json record behind a prefix normalising does not know (`kubectl logs
    # --prefix`'s "[pod/x/nix] ", logcli's labels) is kept whole, as learning the prefix needs
    # it: no logger's record, nor escaped text
    if depth < _MAX_DEPTH and not tail and not _after_prefix_record(line):
        # a record copied from a page's HTML source has its quotes as entities
        source = html.unescape(line) if _ENTITY.search(line) else line
        cleaned = _plain(source)
        message = _record_message(cleaned)
        if message is None:
            message = _prefixed_record_message(cleaned)
        field = _logfmt_message(source) if message is None else None
        if field is not None and _opens_nix_error(line):
            # an error line of Nix's own holds no logger's field: its message may quote one (a
            # flake's `throw "stderr: \"x\\nerror: builder for '…-other.drv' failed\""`, 2.8's
            # on the error line, 2.13+'s under the throw's frame), which is its text
            field = None
        # (a Rust struct's escaped field counts the log tail's "> " before it, as escaped text
        # below does; a logfmt record may follow a markdown quote's)
        # (the builder's name as a terminal shows the line: behind a progress bar Nix redrew,
        # "\r\x1b[K[1/0/3 built] …\r\x1b[Kname> ", it stands after no blank; its escaped
        # "\n" read as a line end made the rest a line of Nix's, "error: builder for
        # '…-other.drv' failed": AUDIT-190 row 7)
        if field is not None and not _builders_either(source, field.start("value"),
                                                      quoted=field["sep"] != "="):
            message = _unescape(field["value"])
        elif message is None and "\\n" in source and (escape := _ESCAPED.search(source)) \
                and _ERRORISH.search(line) \
                and not _builders_either(source, escape.start(), quoted=True) \
                and not _shown_start(line).startswith("error:") \
                and not _STAMPED_ERROR.match(line) \
                and not _quoted_by_error(source, escape.start()):  # Nix's own may quote "\n"
            message = _unescape(line)
        if message is not None:
            # a record of one line of output keeps its line end (Docker's json-file log
            # driver: {"log":"error: …\n","stream":"stderr"}): no empty line after it
            one_line = message.endswith("\n") and message.count("\n") == 1
            parts = (message[:-1] if one_line else message).split("\n")
            yield from (part for _, part in _unwrapped(parts, depth + 1))
            return
    if _ENTITY.search(line):  # copied from a page's HTML source or an HTML-escaping logger
        line = html.unescape(line)
    if "\\" in line:  # a terminal or tool that wrote each byte above ASCII as an escape
        line = _BYTE_ESCAPES.sub(_utf8_of, line)
    # typographic quotes a chat, forum or editor put in (and Nix 1.x's own): as Nix writes now
    # (an ASCII line kept as it is, not copied: a huge log holds millions of these)
    terminal, before_bar = _terminal_parts(line if line.isascii() else line.translate(_QUOTES),
                                           quoted=tail)
    shown = _unprefixed(terminal, quoted=tail)
    if in_message is not None and shown is not None and shown[0] == terminal \
            and terminal.startswith(" ") and not terminal.startswith(_MESSAGE_BLANKS):
        # a line of Nix's message behind a wrapper's prefix that starts with blanks (miette's
        # "      │ "): the prefix goes where the message's indentation stays after it (and
        # after the prefix not learnt yet): the blanks were the wrapper's, not Nix's
        wrapper = _unprefixed(terminal)
        past = None if wrapper is None else wrapper[0] if in_message[0] is None \
            else _after(in_message[0], wrapper[0])
        if past is not None and (not past.strip() or _indent(past) >= _MESSAGE_INDENT):
            shown = wrapper
    if shown is not None:
        yield shown[0], shown[1], depth, False, before_bar


def _as_shown(text: str) -> str:
    """Text as a terminal or a page shows it: after its last carriage return, without colour
    codes, its entities read (a builder's `-L` name behind a progress bar Nix redrew, or in a
    page's HTML source, "noisy&gt; ", is still its name)."""
    text = _plain(text[text.rfind("\r") + 1:])
    return html.unescape(text) if "&" in text else text


def _quoted_by_error(line: str, escape: int) -> bool:
    """Whether an escape stands inside a string an error's message quotes ('error: attempt to
    call something which is not a function but a string: "set -efux\\n…'), behind whatever
    prefix (a bar, a tool's, a logger's labels): Nix's own line. Escaped text escapes the
    quotes its message holds (logfmt's msg="error: …: \\"set -efux\\n…")."""
    start = line.find("error:", 0, escape)
    if start < 0:
        return False
    between = line[start:escape]
    return (between.count('"') - between.count('\\"')) % 2 == 1


_MAX_BRACES = 3
# the arrow before a task's result Ansible writes ("fatal: [web]: FAILED! => {…}", "ok: [web] =>
# {…}", "failed: [web] (item=x) => {…}"): after its "!", "]" or ")", never a builder named "="
# (whose "=> " starts a line or follows a blank, and what stands before it is still looked at)
_RESULT_ARROW = re.compile(r"[!\])] => $")


def _prefixed_record_message(line: str) -> str | None:
    """The message of a structured record behind a prefix normalising does not know
    (`kubectl logs --prefix`'s "[pod/x/nix] ", logcli's "{job=…} " labels): where a short
    prefix without Nix's words stands before a whole record; never after a `nix build -L`
    name (a builder prints what it likes, a forged record too: its output is its own)."""
    text = line.rstrip()
    if not text.endswith("}"):
        return None
    at = -1
    for _ in range(_MAX_BRACES):
        at = text.find("{", at + 1)
        if at < 0 or at > _MAX_TOOL_PREFIX or _NIX_START.search(text, 0, at) \
                or _builders(text, at - 4 if _RESULT_ARROW.match(text, max(at - 5, 0), at) else at):
            return None
        message = _record_message(text[at:])
        if message is not None:
            return message
    return None


def _prefixed_held_line(line: str) -> str | None:
    """The one line a transport's record holds behind a prefix not learnt yet (`kubectl logs
    --prefix`'s "[pod/x/nix] "): one that starts with no blank, ends with one blank (Nix's
    indentation of its quote stands before a builder's own record: "web_1  |   {…}" is 2.3's)
    and holds no builder's or Nix's "> "; None for any other line."""
    at = line.find("{")
    if at <= 0 or line[:1].isspace() or line[:at].endswith("  ") \
            or _builders(line, at, quoted=True):
        return None
    return _one_line(_prefixed_record_message(_plain(line)))


def _after_prefix_record(line: str) -> bool:
    """Whether a line is an internal-json record (a whole JSON object) behind some prefix; not
    one quoted inside another record's string (Docker's `{"log":"@nix {\\"action\\"…`)."""
    at = line.find(_RECORD)
    if at <= 0:
        return False
    try:
        record = json.loads(line[at + len(PREFIX):])
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict)


# a `nix build -L` name ("hello> ") at a word's start: what follows it is a builder's output
_BUILDER_NAME = re.compile(rf"(?:^|\s){_DRV_NAME}> ")
# or the bare "> " Nix quotes each line of a failed build's log tail with
_BUILDER_QUOTED = re.compile(rf"(?:^|\s)(?:{_DRV_NAME})?> ")


def _builders(line: str, end: int, quoted: bool = False) -> bool:
    """Whether escaped text that starts at `end` is a builder's own: a `nix build -L` name, or
    the "> " of a failed build's log tail Nix quotes, stands before it. Nix puts either before
    every line of a builder's it prints, so a builder can print "\\n" but never start a line of
    Nix's; read as a line end, its "\\nerror: builder for '…-other.drv' failed" would be
    another derivation's failure (heldout-capt-12's cumulus: cargo's escaped stderr in the log
    tail, inside a JSON record, read as an error of Nix's). The log tail's "> " counts only with
    `quoted` (a record a tool prefixed may follow a markdown quote's "> ")."""
    return (_BUILDER_QUOTED if quoted else _BUILDER_NAME).search(line, 0, end) is not None


def _builders_either(line: str, end: int, quoted: bool = False) -> bool:
    """`_builders`, on the line as captured or as a terminal shows it (`_as_shown`: the name
    behind a progress bar Nix redrew stands after its "\x1b[K", no blank)."""
    return _builders(line, end, quoted) or _builders(seen := _as_shown(line[:end]), len(seen),
                                                     quoted)


def _shown_start(line: str) -> str:
    """How a line starts past the prefixes of wrappers (whose own lines may hold an error)."""
    unprefixed = _unprefixed(_plain(line))
    return unprefixed[0] if unprefixed else ""


def _opens_nix_error(line: str) -> bool:
    """Whether a captured line is an error line of Nix's own past the wrappers' prefixes (also
    indented: 2.13+'s message under a throw's frame): what it holds after "error:" is Nix's
    message, never a tool's relay nor a logger's field it quotes."""
    return _shown_start(line).lstrip().startswith("error:")


_SPAN_CLOSED = re.compile(r"`[^`]*`(?=[^\w`])")


def _code(shown: str) -> str:
    """A line pasted as inline code or a markdown list of it, as the log had it."""
    bullet = _CODE_BULLET.match(shown)  # "- `error: …`": a line of the log in a markdown list
    shown = bullet["code"] if bullet else shown
    shown = _unfenced(shown) if "```" in shown else shown  # (behind a prefix, in a record)
    # a line pasted as inline code ("`error: …`"), or the ends of a code span cut by a line break
    # (not a span that the line's next backtick closes, prose after it: "`error: …` in the
    # stage-tree phase"; one before a word may open Nix's own quote, "`services.foo'", and a
    # line holding one is read as before)
    if shown.startswith("`") and not shown.startswith("``"):
        if _SPAN_CLOSED.match(shown):
            return shown
        shown = shown[1:]
    if shown.endswith("`") and not shown.endswith("``"):
        shown = shown[:-1]
    return shown


_MARK = re.compile(r"Error:|×|ERROR")


@per_line
def _unprefixed(shown: str, quoted: bool = False) -> tuple[str, bool] | None:
    """A shown line without the prefixes wrappers and transports put before it, in any order
    (nom around journald, a level inside a timestamp) and without markdown code marks, and
    whether one of them marked it as an error; None for a wrapper's own status line. A
    builder's line Nix `quoted` under its own indentation (2.3's, no "> ") keeps what the
    builder printed: its "INFO " or "┃ " taken away with the indentation made the rest a line
    of Nix's ("INFO error: builder for '…-other.drv' failed": another's failure). (A wrapper's
    prefix stands before Nix's indentation, which is left after it.)"""
    # (a line that starts with Nix's indentation keeps it whole, as before any prefix went;
    # one behind a wrapper's prefix keeps what each step leaves of it)
    indented, original = quoted and shown.startswith("  "), shown
    marked = False
    for _ in range(_MAX_STACK):
        if _NOM_STATUS.match(shown):
            return None
        glyphs = _GLYPHS.match(shown)
        after_glyphs = shown[glyphs.end():] if glyphs else shown
        level = _LEVEL.match(after_glyphs)
        after_level = after_glyphs[level.end():] if level else after_glyphs
        steps = (shown, after_glyphs, after_level, _transported(after_level))
        # (each prefix alone: nom's "┃ " leaves Nix's indentation, "INFO " after it must not
        # take it; a transport's prefix likewise)
        done = next((at for at in range(1, len(steps)) if quoted and not indented
                     and steps[at - 1].startswith("  ") and not steps[at].startswith(" ")),
                    len(steps))
        marked = marked or bool(done > 1 and glyphs and _MARK.search(glyphs[0])) \
            or bool(done > 2 and level and _MARK.search(level[0]))
        stripped = steps[done - 1]
        if stripped == shown:
            break
        shown = stripped
        if done < len(steps):
            break
    # (a prefix alone, on an empty line of the quote or message, goes)
    if indented and shown.strip() and not shown.startswith(" "):
        shown, marked = original, False
    if quoted and shown.startswith("  ") and _CODE_BULLET.match(shown):
        # (a list's code marks go, its indentation stays: "  - `x`" lost the quote's
        # indentation too, and ended the quote there)
        return shown[:_indent(shown)] + _code(shown.lstrip(" ")), marked
    return _code(shown), marked


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


# Where Nix's own text starts in a line; what stands before it on many lines is a prefix some
# tool put there (docker compose's "web_1  | ", Jenkins' or Buildkite's timestamps, git's
# "remote: ", kubectl's "… stderr F ", a viewer's line numbers, a markdown list)
_NIX_START = re.compile(r"(?:error|warning):|building ['‘]|these \d+ |"
                        r"copying (?:path |\d+ paths)|Cannot build |builder for |hash mismatch|"
                        r"… (?:while|from|in|caused)|"
                        r"evaluating flake|while (?:evaluating|calling) |Killed$|Reason: |"
                        r"Required (?:system|features)|Current system|specified: |got: |"
                        r"Failed to find a machine|required \(system, features\)|"
                        r"Unable to start any build|Unable to build with a primary store",
                        re.IGNORECASE)
_FENCE_BEFORE_NIX = re.compile(rf"(?<!`)`{{3,}}(?=(?i:{_NIX_START.pattern}))")
_NIX_START_FOLDED = ascii_folded(_NIX_START)  # (an ASCII line read lowercased)
# what is no tool's prefix: Nix's own words or another program's level word (git's "fatal: "
# on its two lines before a cut error: learnt and taken off, the fetch's failure was lost), a
# `nix build -L` name, a markdown quote, the mark of an internal-json record or of a frame of
# Nix's traces, a shell's prompt (a session pasted with more commands than lines of output:
# each "$ " starts a command, which ends the output before it), markdown's backticks alone (a
# fence's and a code span's: "```console" over "`error: …` in prose" over "```")
_NOT_PREFIX = re.compile(r"error|warning|fatal|trace|>\s*$|^\s*$|^@nix |…|^\s*\$\s+$|^\s*`+\s*$",
                         re.IGNORECASE)
_NOT_PREFIX_FOLDED = ascii_folded(_NOT_PREFIX)
# a chat log's speaker ("[12:00] <alice> "), whose ">" is no markdown quote
_NICK = re.compile(r"<[^<>\s]{1,32}>\s*$")


@per_line
def _not_prefix(before: str) -> bool:
    before = _NICK.sub("", before) if ">" in before else before
    if before.isascii():
        return _NOT_PREFIX_FOLDED.search(before.lower()) is not None
    return _NOT_PREFIX.search(before) is not None


@per_line
def _nix_start_at(text: str) -> int:
    """Where Nix's own words (_NIX_START) first start in a line, -1 where nowhere: learning a
    prefix reads the same lines again (each pass, each learner), and this search is its
    costliest."""
    m = _NIX_START_FOLDED.search(text.lower()) if text.isascii() else _NIX_START.search(text)
    return m.start() if m else -1


_PREFIX_PARTS = re.compile(r"(\d+|\s+)")
# a level a tool relayed after its own prefix ("web_1  | [ERROR] …")
_LEVEL_INSIDE = re.compile(r"(?<=\s)\[(?:ERROR|WARN|INFO|DEBUG|TRACE) ?\]")
# a markdown quote, code span or `nix build -L` name after a tool's prefix (a line that starts
# with a `-L` name has no blank before its ">", and is not taken for a tool's prefix)
_QUOTED_AFTER = re.compile(rf"^(.*[\s|:\]])(?:>\s*|`|{_DRV_NAME}> )$")
_MAX_SHAPES = 16
_MAX_TOOL_PREFIX = 200
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
            # the separator (what follows it is Nix's indentation, which the line it was
            # learnt from may have had too), or the end of an empty line
            shape.append(r"(?:[ \t]|\s*$)")
        elif part.isspace():
            shape.append(r"\s*" if index == 0 else r"\s+")
        else:
            shape.append(re.escape(part))
    if len(parts) >= 3 and parts[-2] in _COPY_MARKS and parts[-3].isspace():
        # a copy's mark (a comment's, a quote's) behind a tool's prefix: an empty line of the
        # capture may have the tool's part alone ("[12:04] <alice> " for an empty "# " line)
        shape[-3:] = [rf"(?:\s+{re.escape(parts[-2])}(?:[ \t]|\s*$)|\s*$)"]
    # padding before it may differ from line to line (right-aligned line numbers)
    return re.compile(("" if shape[0] == r"\s*" else r"\s*") + "".join(shape))


_COPY_MARKS = frozenset({"#", "//", ">"})


def _tool_prefix(texts: list[str]) -> re.Pattern[str] | None:
    """The prefix a tool put before many lines, learnt from what stands before Nix's own
    words; None when no such prefix stands on at least a third of the lines."""
    best: tuple[int, re.Pattern[str]] | None = None
    tried: set[str] = set()
    for text in texts:
        words = _nix_start_at(text)
        # in an internal-json record Nix's words are inside it: what precedes the record is
        # the prefix (a record's own start is not: two error records alike would lose theirs)
        record = text.find(_RECORD)
        start = min(words, record) if words >= 0 and record >= 0 else (
            words if words >= 0 else max(record, 0))
        # (no tool's prefix is longer than a few fields: what stands before Nix's words in a
        # long line is text, and compiling its shape costs more than linear time)
        if start == 0 or start > _MAX_TOOL_PREFIX:
            continue
        before = text[:start]
        # "web_1  | > …", "remote: `error: …": the tool's, then a markdown quote or code span
        quoted = _QUOTED_AFTER.match(before)
        before = quoted[1] if quoted else before
        # "web_1  | [ERROR] …": a level the tool relayed, which goes with what follows
        before = before[:level.start()] if (level := _LEVEL_INSIDE.search(before)) else before
        if _not_prefix(before) or _WORDS.fullmatch(before) or _BUILDER_NAME.search(before) \
                or _NIX_QUOTE_START.match(before):  # (a builder's words Nix quoted: no tool's)
            continue
        shape = _prefix_shape(before)
        if shape.pattern in tried:
            continue
        if len(tried) == _MAX_SHAPES:  # each is matched against every line: bound the work
            break
        tried.add(shape.pattern)
        on = sum(1 for other in texts if shape.match(other))
        if on >= 2 and 3 * on >= len(texts) and (best is None or on > best[0]):
            best = (on, shape)
    return best[1] if best else None


_MAX_PREFIX = 48
_LEARN_FROM = 4000
# prefixes normalising knows, which go with what follows a tool's prefix (compose around nom)
# (a timestamp without the CLI's job and step: searched for at every place of a line, their
# names would be tried at each)
# (each holds a colon, its time's or journald's after the unit, or a glyph beyond ASCII, or the
# record's mark: _known_inside_at searches no line without one; an alternative added without
# one must change that test too)
_KNOWN_OTHER = f"(?:\ufeff?{_STAMP})|{_GLYPH}|" + re.escape(_RECORD)
_KNOWN_INSIDE = re.compile(f"{_KNOWN_OTHER}|(?:{_JOURNALD.pattern.removeprefix('^')})")
# where one starts within a line's first _MAX_PREFIX characters (all _common_prefix asks: the
# search went on to a long line's end); and those but journald's, which need the ": " after
# their unit (a line without it is searched for the others alone, at a fifth of the cost)
_KNOWN_NEAR = re.compile(rf"(?s:.){{0,{_MAX_PREFIX - 1}}}?(?={_KNOWN_INSIDE.pattern})")
_KNOWN_NOT_JOURNALD = re.compile(_KNOWN_OTHER)
_JOURNALD_NEEDS = required_literals(_JOURNALD)


@per_line
def _known_inside_at(text: str) -> int:
    """Where a prefix normalising knows (_KNOWN_INSIDE) first starts in a line's first
    _MAX_PREFIX characters, -1 where none does (the same first lines are read by each pass)."""
    if ":" not in text and _RECORD not in text and text.isascii():
        return -1
    if holds(text, _JOURNALD_NEEDS):
        near = _KNOWN_NEAR.match(text)
        return -1 if near is None else near.end()
    m = _KNOWN_NOT_JOURNALD.search(text)
    return m.start() if m is not None and m.start() < _MAX_PREFIX else -1


@per_line
def _head(text: str) -> str:
    """A line's first word, each run of digits in it as one 0 (each learner reads each line's)."""
    words = text.split(maxsplit=1)
    return numbers_as_zero(words[0][:_MAX_PREFIX]) if words else ""


_DIGIT_RUNS = re.compile(r"\d+")
_BLANKS = re.compile(r"\s+")


def numbers_as_zero(text: str) -> str:
    """text with each run of digits as one 0: words that differ only in their numbers (a
    timestamp, a counter, a line number) read alike."""
    return _DIGIT_RUNS.sub("0", text)


def _common_prefix(texts: list[str]) -> re.Pattern[str] | None:
    """A prefix most lines have, also where too few lines hold Nix's known words to learn it
    from them (a short log, Nix's lesser-known messages): the longest start of one of the first
    lines, up to a blank, that two in three lines have in the same shape (not all: a message
    glued to a progress bar lost it, a CI system added its own lines)."""
    if len(set(texts)) < 2:
        return None
    candidates: dict[str, None] = {}
    for first in texts[:8]:
        # where Nix's own words or a prefix normalising knows start, the prefix ends
        words = _nix_start_at(first)
        known = _known_inside_at(first)
        end = min(_MAX_PREFIX, known if known >= 0 else _MAX_PREFIX)
        for blank in _BLANKS.finditer(first, 0, end):
            if 0 <= words < blank.end():
                break  # (and every later blank's start reaches past Nix's words)
            before = first[:blank.end()]
            # (never past a `nix build -L` name: what follows it is the builder's, which a
            # build can print on most lines of a log, "error: …" and all)
            if not (before.isspace() or _not_prefix(before) or _WORDS.fullmatch(before)
                    or _BUILDER_NAME.search(before)):
                candidates[before] = None
    if not candidates:
        return None
    # what each line starts with, its digits aside (a chat's or viewer's "[12:00] ", a
    # timestamp, a line number change from line to line)
    heads = Counter(_head(text) for text in texts)
    # the longest first: a short line's only blank may stand inside the prefix
    ordered = sorted(candidates, key=len, reverse=True)
    starts: list[tuple[str, ...]] | None = None
    if len(ordered) > 2 * _MAX_SHAPES:
        # more than are tried: only those whose words (digits as 0) start enough lines, which
        # each one's shape needs (a viewer's line numbers before an issue's prose were crowded
        # out by the longer starts of its sentences, and never tried)
        starts = [tuple(numbers_as_zero(text).split()[:_MAX_PREFIX]) for text in texts]
        ordered = [before for before in ordered
                   if 3 * _starting(before, starts) >= 2 * len(texts)]
    for before in ordered[:2 * _MAX_SHAPES]:
        # on enough lines, before its shape is compiled and tried on every line
        if 3 * heads[_head(before)] < 2 * len(texts):
            continue
        # (and enough lines start with its words, as each line its shape matches does: counted
        # before the shape is compiled, which costs more than the count; of an ASCII prefix
        # only, whose digits are all its shape's \d reads as digits)
        if before.isascii():
            if starts is None:
                starts = [tuple(numbers_as_zero(text).split()[:_MAX_PREFIX]) for text in texts]
            if 3 * _starting(before, starts) < 2 * len(texts):
                continue
        shape = _prefix_shape(before)
        count = sum(1 for text in texts if shape.match(text))
        if 3 * count >= 2 * len(texts):
            # a list's bullet at its end that fewer lines have than the rest of it: Nix's own
            # list ("- CONFIG_NET is not enabled!" on most lines of a long message, not on its
            # first ones), which the tool's prefix alone stands before on every line
            bare = _BULLET_END.sub("", before)
            if bare != before and bare in candidates:
                bare_shape = _prefix_shape(bare)
                if count < sum(1 for text in texts if bare_shape.match(text)):
                    continue
            return shape
    return None


_BULLET_END = re.compile(r"(?<=\s)[-*]\s+$")


def _starting(before: str, starts: list[tuple[str, ...]]) -> int:
    """How many lines (their words, digits as 0) start with the words of a prefix: a line its
    shape matches does (an empty line of a capture may lack a copy's mark at its end)."""
    words = tuple(numbers_as_zero(before).split())
    bare = words[:-1] if words and words[-1] in _COPY_MARKS else None
    return sum(1 for start in starts if start[:len(words)] == words or start == bare)


# a markdown fence of tildes alone on its line ("~~~", "~~~console"), at most three blanks in
# as markdown allows: a compiler's "~~~^~~~" under a quoted line is never one
_TILDE_FENCE = re.compile(r"^( {0,3})~{3,}([\w+-]*\s*)$")


def _backtick_fence(line: str) -> str:
    return _TILDE_FENCE.sub(r"\1```\2", line) if "~~~" in line else line


# a documentation tool's mark for a code block's hidden lines, glued before each line of the
# block in the page's source (mdBook's `output.html.code.hidelines`: a command's output kept
# hidden until the reader expands it; "~" is usual for shell and Nix blocks, "#" is Rust's);
# Nix starts no line with either right before its own words
_HIDDEN_MARKS = frozenset("~#")
_FENCE = re.compile(r"\s{0,3}`{3,}")


def _hidden_marks_off(raw: list[str]) -> list[str] | None:
    """The lines without the hidden-line mark glued before the lines of a code block (or of the
    whole capture, unfenced) where one of them holds Nix's words right after it ("~error: …";
    then "~       at …", "~" alone for an empty line; the command the block shows before the
    hidden output has none); None where no block has it."""
    if not any(line[:1] in _HIDDEN_MARKS for line in raw):
        return None
    # the lines between one fence and the next (a block, or prose between two; fences are not
    # paired: a capture pasted between fences of its own holds more), and before the first
    fences = [-1, *(index for index, line in enumerate(raw) if _FENCE.match(line)), len(raw)]
    blocks = pairwise(fences)
    result = None
    for opening, closing in blocks:
        glued = next((line for line in raw[opening + 1:closing]
                      if line[:1] in _HIDDEN_MARKS and _NIX_START.match(line, 1)), None)
        if glued is None:
            continue
        mark = glued[0]
        result = result if result is not None else list(raw)
        result[opening + 1:closing] = [line[1:] if line.startswith(mark) else line
                                       for line in raw[opening + 1:closing]]
    return result


def normalise(lines: Iterable[str], elided: int = 0,
              widths: Mapping[int, tuple[int, AbstractSet[str]]] | None = None) -> list[Line]:
    """Nix's own lines of a captured log, each with the index of the line it came from.
    elided: how many lines of the log condensing left out (`logtext.CondensedLog`: a builder's
    plain lines, which no pass here changes), weighed where a pass weighs how many lines hold a
    shape; widths: of each width, how many of them and some of their texts (_rejoined's)."""
    # a whole capture indented (a one-space paste) or quoted (a reply, an email: "> ", "> > ",
    # ">> "): before any prefix a line's text starts with
    # (a markdown fence glued to a line taken off first: a recording's header may be that line)
    # (a fence of tildes, markdown's other spelling, read as one of backticks)
    # (a mail archive's quoted-printable body decoded first: each line then points at the
    # captured line it starts on)
    captured = lines if isinstance(lines, list) else list(lines)
    printable = _quoted_printable(captured)
    pasted = [_captured_unfenced(line) if "```" in line else line
              for line in map(_backtick_fence, captured if printable is None else printable[0])]
    # a viewer's wrap marks joined first: the viewer wrapped the lines as shown, marks of a
    # comment or quote and all, so the rest of a wrapped line stands without them (a comment's
    # run of lines, a quote of the whole capture, is whole again only once the pieces are)
    viewed = _marked_wraps(pasted) if any(line.rstrip("\r").endswith(_WRAP_MARKS)
                                          for line in pasted) else None
    raw = _whole_quote_off(pasted if viewed is None else viewed[0], elided)
    # a viewer's or editor's mark at the end of each piece of a line it wrapped: one line again
    # (whatever the lines hold: a recording's events, a journal's export)
    # a log double-spaced by a copy (a blank after every line): each line of its own again
    spaced = _double_spaced(raw)
    raw = raw if spaced is None else spaced[0]
    wraps = _marked_wraps(raw)
    if spaced is not None:  # each line points at the captured line it starts on
        wraps = spaced if wraps is None else (wraps[0], [spaced[1][start] for start in wraps[1]])
    raw = raw if wraps is None else wraps[0]
    # a terminal recording (asciinema): what the terminal was sent, cut into its own lines; or
    # a journal's export: the messages of its entries
    cast = _cast_lines(raw) or _export_lines(raw)
    raw = raw if cast is None else _whole_quote_off(cast[0], elided)
    if wraps is not None:  # each line points at the captured line it starts on
        cast = (raw, wraps[1] if cast is None else [wraps[1][origin] for origin in cast[1]])
    # a message glued to a progress bar is learnt from with what stood before the bar (by
    # its captured line and text: a record's lines share one captured line), of the lines a
    # prefix is learnt from: the bar took the tool's prefix with it (terminal_line), so that
    # the prefix stood on too few of a short log's lines to be learnt, and the lines that kept
    # it were read as broken at a width and joined; inside a record too, where a viewer's line
    # numbers stood before the bar and the trace under it was read as the message
    found: list[Line] = []
    before_bar: dict[tuple[int, str], str] = {}
    for index, (text, marked, inner, quoted, before) in _unwrapped(raw):
        if before and len(found) < _LEARN_FROM:
            before_bar[index, text] = before
        found.append(Line(text, index, marked=marked, inner=inner, quoted=quoted))
    # (a nom box whose line ends were made spaces: its lines again)
    found = _unflattened(found)
    # prefixes are learnt not from the CI system's own lines (GitHub's `##[group]`,
    # `##[error]`, GitLab's runner lines: what a tool in the step printed has the prefix)
    ci_own = _ci_own_lines(raw)
    # (the captured lines, and every list of them, let go once each is read: `found` holds what
    # is left of each line; what a line came from is kept, each line's index)
    origins = None if cast is None else cast[1]
    printed = None if printable is None else printable[1]
    joined_at = None if viewed is None else viewed[1]
    del raw, spaced, wraps, cast, captured, printable, pasted, viewed
    # (a Rust error's causes read first: their numbers, on a few lines before Nix's words, are
    # no tool's prefix; behind a tool's prefix they are read once it is taken off)
    found, chained = _causes_unindented(found)
    # and the lines a record held apart from the captured lines: a prefix of these (a
    # viewer's line numbers) never stood before those, and a record's may have its own
    # (and those a record in a record's line held apart from that record's own: a viewer's
    # line numbers before a logger's record never stood before what a field in it holds)
    held = [line for line in found if line.inner]
    for depth in sorted({line.inner for line in held}):
        held = _without_prefix(held, ci_own, before_bar, depth)
    found = sorted(_without_prefix([line for line in found if not line.inner], ci_own,
                                   before_bar) + held, key=lambda line: line.origin)
    # (behind whatever a transport or tool put before them: the page's source was wrapped)
    unmarked = _hidden_marks_off([line.text for line in found])
    if unmarked is not None:
        found = [replace(line, text=text) for line, text in zip(found, unmarked, strict=True)]
    # (and a failure kept in comments among code, behind a prefix: its marks stood after it;
    # the lines copied only where a run was found: a huge log holds no comment run)
    texts = [line.text for line in found]
    uncommented = _comment_runs_off(texts, elided)
    if uncommented is not texts:
        found = [replace(line, text=text) for line, text in zip(found, uncommented, strict=True)]
    # a whole log indented (copied from a quote, a YAML block, a one-space paste) is dedented,
    # before and after taking away the marks of a markdown quote, level by level (a reply
    # quoting a quote: "> > error: …", an email's ">> ")
    pointed = _pointed_quote(found)
    # (not Nix's own quote of a builder's lines, all a copy kept: see _whole_quote_off)
    quoted_by_nix = _nix_quoted_throughout([line.text for line in found])
    found, keys = _block_scalars(found if quoted_by_nix else _dedented(found))
    for _ in range(_MAX_QUOTES):
        unquoted = found if quoted_by_nix else _dedented(_unquoted(found))
        if unquoted == found:
            break
        found = unquoted
    # (a copy's damage to Nix's lines mended first: a line whose head it ate is no wrapped
    # line's rest, and Nix's lines it ran together are lines again)
    found = _mended(found)
    result = _rejoined(found if chained else _causes_unindented(found)[0], ci_own | keys, elided,
                       widths)
    _quote_cut(result)
    if pointed:  # (after the cut: their marks are off now, taken as a markdown quote's)
        result = [replace(line, quoted=True) if line.origin in pointed else line
                  for line in result]
    # (each line given its builder in place, the one before it let go, and each builder's
    # name held once: a huge log of `-L` lines would otherwise hold both lines for a moment,
    # and a name for every line; the captured lines let go too, each with its line: a caller
    # may hold the log compactly, as `ci-nix junit` does)
    del found, unquoted, texts, uncommented
    for at, line in enumerate(result):
        m = _BUILDER_PREFIX.match(line.text)
        if m:
            result[at] = Line(m["text"] or "", line.origin, sys.intern(m["name"]), line.marked,
                              line.inner, line.quoted)
    _fast_build_reports(result)
    if origins is not None:  # each line points at the event that brought its end (or its start)
        result = [replace(line, origin=origins[line.origin]) for line in result]
    if joined_at is not None:  # (and at the captured line it starts on)
        result = [replace(line, origin=joined_at[line.origin]) for line in result]
    if printed is not None:
        result = [replace(line, origin=printed[line.origin]) for line in result]
    return result


# A copy's damage to a line of Nix's (tests/test_copy_damage.py's DAMAGES): a selection that
# started a little late, a paste into a widget, ate the first letters of the line it starts
# on. No line starts with what is left of "error:" ("rror:", "ror:", "or:": no word a line of
# prose or a config starts with, lowercase and glued to its colon; "r:", a key, only before
# Nix's quote of a name or a store path), nor with what is left of a failure's head before its
# store path ("uilder for '/nix/store/…", "nnot build '/nix/store/…"; cut inside a word: Nix
# 2.3's and 2.4pre's own "builder for '…' failed" has no "error: "): that line is Nix's, its
# head whole again (before lines broken at a width are joined: it is no broken line's rest).
_HEADS = ("error: builder for ", "error: Cannot build ", "error: build of ",
          "error: hash mismatch in fixed-output derivation ")
_EATEN = re.compile(r"(?P<indent>\s*)(?:(?P<error>r?r?or:|r:(?=\s.*?['‘\"]))(?=\s|$)|"
                    r"(?P<head>" + "|".join(sorted({re.escape(head[k:]) for head in _HEADS
                                                    for k in range(1, len(head) - 4)
                                                    if " " not in head[k - 1:k + 1]},
                                                   key=len, reverse=True))
                    + r")(?=['‘\"]?/nix/store/))")


# and a copy that lost the line ends of Nix's lines (a page, a chat, a summary run them together
# with single blanks, the indentation gone): Nix starts each of its messages on a line of its
# own, so where a line that is Nix's own (its start is a message's or the repl's prompt) goes on
# with another message of Nix's after a blank, or any unindented line goes on with a failure's
# head before its quoted store path, the rest is a line again. Never inside a code span, a
# record's or an escaped stream's line, nor in a builder's line (`nix build -L`'s `name> `, Nix's
# quote of a builder's lines): a builder's "error: " is its own.
_FLAT_OWN = re.compile(rf"\s*(?:nix-repl> |(?:{_NIX_START.pattern}))", re.IGNORECASE)
# (Nix nests a cause's "error: " inside its message, "…: error: …", "(curl error: …)", "AWS
# authentication error: …", "Lzma library error: …": another message starts after what ends a
# line of Nix's, a quote, a period, a bracket, a warning's "is dirty"; after the repl's prompt
# and what was typed at it, at its first "error: ")
_FLAT_NEXT = re.compile(r"(?:(?<=['’\".)\]])|(?<= dirty)) (?=(?:error|warning|trace): )|"
                        r"(?<=[^\s:]) (?=… (?:while|from call site) )")
_REPL_NEXT = re.compile(r"(?<=\S) (?=error: )")
_FLAT_HEAD = re.compile(r"(?<=[^\s>]) (?=error: (?:builder for |Cannot build |build of |"
                        r"hash mismatch in fixed-output derivation )?['‘]/nix/store/)")


def _unjoined(line: Line) -> list[Line] | None:
    """A line run together of Nix's lines as its lines (None: one line)."""
    text = line.text
    if "error: " not in text and "… " not in text or line.quoted or "`" in text \
            or "\\n" in text or _RECORD_INSIDE.search(text) \
            or _BUILDER_PREFIX.match(text) and not text.startswith("nix-repl> "):
        return None
    # (up to a builder's line Nix quotes in it: its "error: " is the builder's)
    quote = _QUOTE_MARK.search(text)
    end = len(text) if quote is None else quote.start()
    own = _FLAT_OWN.match(text)
    if own is None and text[:1].isspace():  # (a run of lines has no indentation: a message's
        return None  # own indented line is its text, a thrown message's "error: builder …")
    flat = _FLAT_HEAD if own is None else _REPL_NEXT if "nix-repl>" in own[0] else _FLAT_NEXT
    cuts = [m.start() for m in flat.finditer(text, 0, end)]
    if flat is _REPL_NEXT:
        cuts = cuts[:1]
    if not cuts:
        return None
    # (each cut at the blank before the next message, which goes with no piece)
    return [replace(line, text=text[start:cut]) for start, cut in pairwise(
        [0, *(cut + 1 for cut in cuts), len(text) + 1])]


# and the store paths in Nix's own lines that a transcription of a screen damaged: a space that
# character recognition put inside a hash (its 32 characters, split in two), the opening
# quote lost before a path whose closing one stands ("builder for /nix/store/…drv' failed"),
# a derivation's ".drv" read ".dru" (or ".drw", ".dnv") before the quote that ends the path.
# (Not in a builder's line: its words are the builder's.)
_BASE32 = "[0-9a-df-np-sv-z]"  # Nix's base-32 digits (no e, o, t, u)
_SPLIT_HASH = re.compile(rf"(?<=/nix/store/)({_BASE32}{{1,31}}) ({_BASE32}{{1,31}})(?=-)")
_UNOPENED = re.compile(rf"(?<=\s)(?=/nix/store/{_BASE32}{{32}}-[^\s'‘’\"]*(?P<close>['’])"
                       r"(?:[\s:;,.]|$))")
_OCR_DRV = re.compile(r"(?<=[\w+-])\.d[rn][uwy](?=['’`])")


def _opening(text: str, m: re.Match[str]) -> str:
    """The opening quote a path lost (none where a quote before it is open: it closes that)."""
    if m["close"] == "’":
        return "" if text.count("‘", 0, m.start()) > text.count("’", 0, m.start()) else "‘"
    return "" if text.count("'", 0, m.start()) % 2 else "'"


def _mended_paths(text: str) -> str:
    """A line of Nix's with each store path a transcription damaged mended."""
    if "/nix/store/" not in text:
        return text
    if " " in text:
        text = _SPLIT_HASH.sub(lambda m: m[1] + m[2] if len(m[1]) + len(m[2]) == 32 else m[0],
                               text)
    text = _UNOPENED.sub(lambda m: _opening(text, m), text)
    return _OCR_DRV.sub(".drv", text)


# (what a copy ate to "or:" or "r:", words and keys a line of a usage text or of prose starts
# with, "Usage: cp …" / "  or:  cp [OPTION]… DIRECTORY": only the first line of a paste, where
# a selection starts: the log's first line, or one after a blank or a fence; or right under a
# line of Nix's own, its level word first)
_LEVEL_FIRST = re.compile(r"\s*(?:error|warning|trace):")


def _opens_a_paste(found: list[Line], at: int) -> bool:
    before = found[at - 1].text if at else ""
    return not before.strip() or _FENCE.match(before) is not None \
        or _TILDE_FENCE.match(before) is not None or _LEVEL_FIRST.match(before) is not None


def _mended(found: list[Line]) -> list[Line]:
    """The lines, each whose head a copy ate whole again, each a copy ran Nix's lines together
    in split again (never a builder's line: its words are the builder's)."""
    if any("error: " in line.text or "… " in line.text for line in found):
        split: list[Line] = []
        for line in found:
            pieces = _unjoined(line)
            if pieces is None:
                split.append(line)
            else:
                split.extend(pieces)
        found = split
    result = found
    for at, line in enumerate(found):
        if line.quoted:
            continue
        text = line.text
        start = text.lstrip()[:64]  # (a cheap look first: a huge log's every line)
        m = _EATEN.match(text) if ":" in start[:5] or "/nix/store/" in start else None
        if m is not None and m["error"] in ("or:", "r:") and not _opens_a_paste(found, at):
            m = None  # (a usage text's "  or: cp [OPTION]…", git's "   or: git stash show …")
        if m is not None:
            head = "error:" if m["error"] else next(h for h in _HEADS if h.endswith(m["head"]))
            text = m["indent"] + head + text[m.end():]
        if "/nix/store/" in text and not _BUILDER_PREFIX.match(text):
            text = _mended_paths(text)
        if text != line.text:
            if result is found:
                result = list(found)
            result[at] = replace(line, text=text)
    return result


# nix-output-monitor's box mark on a line whose captured line ends were made spaces (an issue's
# body run together by a summary, an export or a chat: "… ┃        > error: … ┃        For full
# logs, run: ┃          nix log /nix/store/…drv"): nom starts each of its lines with it, so
# where it stands after a blank three times or more on one line, and a piece after it starts
# with Nix's words, each piece is a line of its own again (a table's "┃" columns hold no Nix)
_NOM_BAR = "┃"
_FLAT_BAR = re.compile(r"\s(?=┃(?:\s|$))")
_MIN_FLAT_BARS = 3
_FULL_LOG = re.compile(r"For full logs, run|nix log /nix/store/")
# and Nix's own indented lines run together the same way: the blank that stood for the line's end
# before the indentation Nix starts each continuing line with (a quote's "> ", a trace's "… while",
# a position "at «…»" or "at /…", a code frame's "12| ", the tail's and pointer's lines)
_FLAT_NIX = re.compile(r"(?<=\S)\s(?=\s{2,}(?:> |>$|last \d+ log lines:|For full logs, run|"
                       r"nix log /nix/store/|… |at «|at /|Reason: |Output paths:|specified: |"
                       r"got: |Required (?:system|features)|Current system|error: |\d+\| ))")
_MIN_FLAT_LENGTH = 160
_QUOTE_MARK = re.compile(r"(?:^|\s)>(?:\s|$)")
_RECORD_INSIDE = re.compile(r'\{\s*"')


def _unflattened(found: list[Line]) -> list[Line]:
    """The lines, each run-together nom box, and each long line of Nix's lines run together,
    split at its marks again (every piece keeps the captured line it came from)."""
    if not any(line.text.count(_NOM_BAR) >= _MIN_FLAT_BARS or len(line.text) >= _MIN_FLAT_LENGTH
               for line in found):
        return found
    result: list[Line] = []
    for at, line in enumerate(found):
        # (a line of neither shape left as it is at once: a long log holds many long lines; a
        # line end made a blank before Nix's indentation leaves three blanks at least)
        nom = line.text.count(_NOM_BAR) >= _MIN_FLAT_BARS
        if not nom and (len(line.text) < _MIN_FLAT_LENGTH or "   " not in line.text):
            result.append(line)
            continue
        # (never a builder's line: in Nix's or nom's quote "> ", or behind `-L`'s "name> ",
        # a builder's "┃ error: …" is its own text, and split off it would be Nix's; so the
        # box must follow text of the capture's own, longer than any tool's prefix beyond what
        # the lines beside it start with too: a nom line starts with its mark, also behind a
        # prefix not yet taken off)
        start = _MARKS_BEFORE.sub("", line.text)
        # (nor a record's or an escaped stream's line, behind a prefix too: its escaped line
        # ends are read by the record's reading, and a blank inside its string is no line end)
        builders = line.quoted or start.startswith(">") or "\\n" in line.text \
            or _RECORD_INSIDE.search(line.text) is not None
        pieces = _FLAT_BAR.split(line.text) if nom and not builders else []
        # (Nix's lines run together: where no quote's "> " stands before the first, a
        # builder's line in a quote behind a prefix not yet taken off; a record is read by its
        # own fields)
        if len(pieces) <= _MIN_FLAT_BARS and len(line.text) >= _MIN_FLAT_LENGTH \
                and "   " in line.text and not builders and not _RECORD_OPEN.match(start):
            pieces = _FLAT_NIX.split(line.text)
            pieces = pieces if not _QUOTE_MARK.search(pieces[0]) else []
        # (a `nix build -L` name ending the first piece is a builder's line: the split took the
        # blank after its "> ", which the name is found with)
        if len(pieces) > _MIN_FLAT_BARS and len(_own_start(found, at, pieces[0])) > _MAX_PREFIX \
                and not _BUILDER_NAME.search(line.text, 0, len(pieces[0]) + 1) and any(
                _NIX_START.match(rest := _MARKS_BEFORE.sub("", piece)) or _FULL_LOG.match(rest)
                for piece in pieces[1:]):
            result.extend(replace(line, text=piece) for piece in pieces)
        else:
            result.append(line)
    return result


def quoted_in(message: Sequence[str]) -> frozenset[int]:
    """Which lines of one message of Nix's are a failed build's lines it quotes after "last N
    log lines:", decided as `Line.quoted` is for a captured log (the same count and cut), for
    text that was never a captured log's lines: an internal-json record's message, `ci-nix
    run`'s reading of Nix's stderr. So `run` and `junit` read one quote alike."""
    # (a message's readers ask about the same lines in turn, four in five asks over the
    # corpus: whether a `throw` is innermost, then its build's report; the last few short
    # messages' answers kept)
    if len(message) <= _MEMO_MESSAGE:
        return _quoted_in_kept(tuple(message))
    return _quoted_in(message)


_MEMO_MESSAGE = 100


@functools.lru_cache(maxsize=8)
def _quoted_in_kept(message: tuple[str, ...]) -> frozenset[int]:
    return _quoted_in(message)


def _quoted_in(message: Sequence[str]) -> frozenset[int]:
    found = [Line(text, index, quoted=quoted)
             for index, (text, _, _, quoted, _) in _unwrapped(message)]
    _quote_cut(found)
    return frozenset(line.origin for line in found if line.quoted)


def _own_start(found: list[Line], at: int, first: str) -> str:
    """What a line's first piece holds beyond what it shares with the lines beside it (a tool's
    prefix, not yet taken off, stands on them all)."""
    shared = max((len(commonprefix([found[at].text, other.text]))
                  for other in (*found[max(at - 1, 0):at], *found[at + 1:at + 2])), default=0)
    return first[shared:].strip()


def _quote_cut(result: list[Line]) -> None:
    """The builder's lines Nix quotes (`Line.quoted`, counted on the captured lines) ending, in
    place, at the first line Nix did not indent, nor mark as quoted: a copy cut the quote short
    there, and what follows is Nix's (Nix indents each line it quotes, 2.3 by two, 2.4+ before
    its "> "; a builder's line cannot start further left). Only now, with the prefixes of tools
    and transports gone: before, they hid a line's indentation. Not in a copy that kept no
    line's indentation at all (a page or a log collector that dedented every line): there no
    line shows it, and Nix's count of the lines it quotes stands (2.3 marks none)."""
    if not any(line.text[:1].isspace() for line in result):
        return
    cut = False
    for at, line in enumerate(result):
        if not line.quoted:
            cut = False
        elif cut or (line.text.strip() and not line.text[:1].isspace()
                     and not line.text.startswith(">")):
            cut = True
            result[at] = replace(line, quoted=False)


def _pointed_quote(result: list[Line]) -> frozenset[int]:
    """The "> " lines right above Nix's "For full logs, run" pointer (their captured lines): the
    builder's lines Nix quotes (`Line.quoted`), where a copy cut the block's header and its
    "last N log lines:" intro above them and lost Nix's indentation: the pointer ends Nix's
    quote and nothing else, so they are no markdown quote of a line of Nix's (heldout-181's
    and -193's abbreviated logs read their "> error: could not compile …" as a failure). A
    writer's elision among them ("...") is no end of them."""
    pointed: set[int] = set()
    for at, line in enumerate(result):
        if not line.text.startswith("For full logs, run") or line.quoted:
            continue
        start = at
        while start > 0 and (result[start - 1].text.startswith(">")
                             or ELISION.match(result[start - 1].text)):
            start -= 1
        if not any(result[k].quoted for k in range(start, at)):
            pointed.update(result[k].origin for k in range(start, at)
                           if result[k].text.startswith(">"))
    if not pointed:
        return frozenset()
    # (only a captured line that is one line: a record's lines, a nom box's pieces share theirs)
    shared = Counter(line.origin for line in result)
    return frozenset(origin for origin in pointed if shared[origin] == 1)


# nix-fast-build's CI output (its renderer since 2026, in place of nom): a failed build's log
# as one block of "ATTR> " lines — what its builders printed and, last, Nix's own report of the
# failure, under the same prefix — between its "✘  ATTR failed after 3s (rc=1)" and "✘ end of
# log for ATTR · nix log /nix/store/….drv", or ended by the verdict where the lines were
# streamed live
# (its "✘" may be gone: a prefix learnt from few lines, or a copy that dropped the glyph)
_FAST_BUILD_END = re.compile(r"^(?:✘)? ?end of log for (?P<attr>\S{1,300}) · nix log "
                             r"(?P<drv>/nix/store/[^\s'\"]{1,300}\.drv)\s*$")
_FAST_BUILD_VERDICT = re.compile(
    r"^(?:✘)? {0,2}(?P<attr>\S{1,300}) failed after \S{1,40} \(rc=\d{1,5}\)")
_STORE_DRV = re.compile(r"/nix/store/[^\s'\"‘’`]{1,300}?\.drv(?![\w.+-])")


def _fast_build_reports(result: list[Line]) -> None:
    """Nix's report at the end of each nix-fast-build block read as Nix's own text, in place,
    and its verdict as a CI system's. Nix prints the report after the builds stopped, so what
    runs from the block's last "error:" (Nix indents the rest of a message) to the block's end
    is no builder's, where Nix printed one: so it must also name no derivation but the one the
    block's end names ("nix log …"). A block streamed live has no such end: its lines stay the
    builder's and its verdict says what failed (a builder's last lines, where Nix's report is
    missing, never speak for another derivation)."""
    for end, line in enumerate(result):
        # (never a builder's line Nix quotes: 2.3's "  x failed after 1s (rc=1)" read as a
        # verdict ended the quote, and a quoted "For full logs … other.drv" named that)
        if line.builder is not None or line.quoted or (
                "end of log" not in line.text and " failed after " not in line.text):
            continue
        frame = _FAST_BUILD_END.match(line.text)
        if frame is None:
            verdict = _FAST_BUILD_VERDICT.match(line.text)
            if verdict is not None:  # read as a CI system's verdict ("Error: …")
                result[end] = replace(line, text=f"Error: {line.text[verdict.start('attr'):]}")
            continue
        attr, drv = frame["attr"], frame["drv"]
        start = end
        while start > 0 and result[start - 1].builder == attr:
            start -= 1
        report = next((at for at in range(end - 1, start - 1, -1)
                       if result[at].text.startswith("error:")), None)
        if report is None or any(result[at].text[:1] not in ("", " ")
                                 for at in range(report + 1, end)):
            continue
        if set(_STORE_DRV.findall(result[report].text)) - {drv}:
            continue
        for at in range(report, end):
            result[at] = replace(result[at], builder=None)


# quoted-printable (RFC 2045, a mail archive's copy of a message): "=XX" for a byte, "=" ending a
# line that goes on in the next (a soft break), no line longer than 76 characters. Told by what
# no log holds: "=3D" (an "=", which SRI hashes and options hold), a UTF-8 character in escapes
# ("=E2=80=98", older Nix's ‘), a soft break where an encoder breaks (at 73-76 characters; an
# SRI hash's padding ending a line is none, however long the line)
_QP_LINE = 76
_QP_ESCAPES = re.compile(r"(?:=[0-9A-F]{2})+")
_QP_EVIDENCE = re.compile(r"=3D|=[C-F][0-9A-F]=[89AB][0-9A-F]")
# and what none holds: an "=" that starts no escape and ends no line (the encoding writes each
# "=" of the text as "=3D"), which any log of a build's configure flags or an SRI hash in quotes
# has: one "=3D" a builder printed turned the whole log's "=XX" into bytes
_QP_BARE = re.compile(r"=(?![0-9A-F]{2}|$)")
# an SRI hash's base64 (sha1's 27 characters, sha256's 43, sha512's 86) and its padding; not
# a store path cut after its hash ("/nix/store/" and 32 characters are 43 too)
_BASE64_END = re.compile(r"(?<![A-Za-z0-9+/])(?!/)(?:[A-Za-z0-9+/]{27}=|[A-Za-z0-9+/]{43}=|"
                         r"[A-Za-z0-9+/]{86}==)$")


def _quoted_printable(captured: list[str]) -> tuple[list[str], list[int]] | None:
    """A quoted-printable body decoded: its soft breaks joined, its escapes as the characters
    their UTF-8 bytes make, with the index of the captured line each line starts on; None for
    a capture that is none (a line too long for it, no sign of its encoding)."""
    # (no copy of the lines before it is one: a huge log's every line is held already)
    if any(len(line) > _QP_LINE + 1 for line in captured) or not any(
            _QP_EVIDENCE.search(end) or (end.endswith("=") and len(end) >= _QP_LINE - 3
                                         and not _BASE64_END.search(end))
            for end in (line.rstrip("\r") for line in captured)):
        return None
    ends = [line.rstrip("\r") for line in captured]
    if any(len(end) > _QP_LINE or ("=" in end and _QP_BARE.search(end)) for end in ends):
        return None
    lines: list[str] = []
    origins: list[int] = []
    pieces: list[str] = []
    for index, end in enumerate(ends):
        if not pieces:
            origins.append(index)
        # (an encoder breaks a line only at its width: a builder printing "=3D" and a short line
        # ending in "=" took Nix's next line into its own; nor a `nix build -L` line before a
        # line of Nix's or of a builder's, which a builder ends in "=" as it likes: its line took
        # the next in, Nix's report or its own "error: …", a green log's failure)
        if end.endswith("=") and len(end) >= _QP_LINE - 3 and not (
                index + 1 < len(ends) and _BUILDER_PREFIX.match(pieces[0] if pieces else end)
                and (_BUILDER_PREFIX.match(ends[index + 1])
                     or _own_after_mark(pieces[0] if pieces else end, ends[index + 1]))):
            pieces.append(end[:-1])
            continue
        lines.append(_QP_ESCAPES.sub(_qp_bytes, "".join([*pieces, end])))
        pieces = []
    if pieces:
        lines.append(_QP_ESCAPES.sub(_qp_bytes, "".join(pieces)))
    return lines, origins


def _qp_bytes(escaped: re.Match[str]) -> str:
    return bytes.fromhex(escaped[0].replace("=", "")).decode("utf-8", errors="replace")


_MARKS_BEFORE = re.compile(r"^[\s`┃│]+")  # inline code's, nom's marks before Nix's words
_SENTENCE = re.compile(r"\s*[A-Z][a-z]+ [a-z]")  # prose: a paragraph of its own
_MIN_SPACED = 4  # lines holding text: fewer may alternate with Nix's own blank lines by chance


def _double_spaced(raw: list[str]) -> tuple[list[str], list[int]] | None:
    """The lines of a log a copy double-spaced (a rich-text editor, a chat, a page that made
    each line a paragraph), with the index of each captured line; None unless EVERY other
    line is blank, across the whole log. Nix's own blank lines (between a trace's frames, after
    its code) are never every other line of a log: its frames hold lines one after another.
    Prose between markdown paragraphs is, so it takes a line of Nix's that the next goes on
    from: another of Nix's, or one indented deeper (Nix indents what continues a message)."""
    if any(line.strip() for line in raw[1::2]) \
            or sum(1 for line in raw[::2] if line.strip()) < _MIN_SPACED:
        return None
    lines = raw[::2]
    shown = [terminal_line(line) for line in lines]  # (a progress bar redrawn before text)
    if not any(following.strip() and _indent(following) >= _indent(line)
               and (_OWN_LINE.match(line) or _OWN_LINE.match(start := _MARKS_BEFORE.sub("", line))
                    or _NIX_START.match(start))
               and (_indent(following) > _indent(line) or not _SENTENCE.match(following))
               for line, following in pairwise(shown)):
        return None
    return lines, list(range(0, len(raw), 2))


# the mark a viewer or editor puts where it wrapped a line ("↵", "⏎"), and terminal Emacs' "\"
# in a window's last column (the mark also ends shell commands and C macros: only where lines
# end in it at one width, the longest, three of them or at a terminal's usual width, and never
# before a line that starts with Nix's words)
_WRAP_MARKS = ("↵", "⏎")
_MIN_MARKED = 3


def _marked_wraps(raw: list[str]) -> tuple[list[str], list[int]] | None:
    """The lines a viewer wrapped and marked, each joined again, with the index of the captured
    line each starts on; None when no line ends in a wrap's mark."""
    ends = [line.rstrip("\r") for line in raw]
    marked = [end.endswith(_WRAP_MARKS) for end in ends]
    if not any(marked):
        width = max((len(end) for end in ends), default=0)
        marked = [end.endswith("\\") and len(end) == width
                  and not _NIX_START.match(ends[index + 1].lstrip() if index + 1 < len(ends)
                                           else "")
                  for index, end in enumerate(ends)]
        if not (sum(marked) >= _MIN_MARKED or (any(marked) and width in _TERMINAL_WIDTHS)):
            return None
    lines: list[str] = []
    origins: list[int] = []
    pieces: list[str] = []
    # of the line being joined: whether it opens a structured record, the quotes of its pieces
    # so far, whether the last ended in an escape's backslash (see _record_quotes)
    record, quotes, carry = False, 0, False
    # (a piece the viewer cut fills its width: a builder's short line ending in a mark, its
    # record's string left open, takes no line of Nix's in)
    width = max((len(end) for end, cut in zip(ends, marked, strict=True) if cut), default=0)
    for index, (end, cut) in enumerate(zip(ends, marked, strict=True)):
        if not pieces:
            origins.append(index)
            record, quotes, carry = _RECORD_OPEN.match(_transported(end).lstrip()) is not None, \
                0, False
        if cut and record:
            more, carry = _record_quotes(end[:-1], carry)
            quotes += more
        if cut and index + 1 < len(ends) and _own_after_mark(pieces[0] if pieces else end,
                                                             ends[index + 1]) \
                and not (record and quotes % 2 == 1 and len(end) == width):
            cut = False  # (the mark is the line's own: a builder printed it, say)
        if cut:
            pieces.append(end[:-1])
            continue
        lines.append("".join([*pieces, raw[index]]))
        pieces = []
    if pieces:  # a mark on the last line: nothing follows it
        lines.append("".join(pieces))
    return lines, origins


# a structured record's start (a logger's JSON line, Nix's internal-json, a logfmt line's first
# field), and what counts a string's quotes in it (an escaped one is none)
_RECORD_OPEN = re.compile(r"(?:@nix )?\{\s*\"|[\w.-]{1,64}=")
_QUOTE_OR_ESCAPE = re.compile(r'\\.|"')


def _record_quotes(piece: str, carry: bool) -> tuple[int, bool]:
    """The double quotes of a piece of a structured record that open or close a string (an
    escaped one is none; `carry`: the piece before ended in an escape's backslash), and whether
    this piece ends in one. A line a viewer cut inside a record's string goes on with the
    string whatever words its next piece starts with ('{"message": "…\\n↵' and then 'error: …'
    is one record a viewer cut, as a logging agent wrote Nix's stderr; no line of Nix's own
    starts inside a record's string)."""
    text = "\\" + piece if carry else piece
    count = sum(1 for m in _QUOTE_OR_ESCAPE.finditer(text) if m[0] == '"')
    return count, (len(text) - len(text.rstrip("\\"))) % 2 == 1


def _own_after_mark(first: str, following: str) -> bool:
    """Whether the line after one ending in a wrap's mark is a line of its own: it starts with
    Nix's words, or with the marked line's first words (digits as 0: a timestamp, a transport's
    prefix) and then Nix's words or a builder's name or Nix's "> " quote of a builder's line. The
    rest of a line cut at a width starts with neither. A builder prints what it likes, a mark
    at its line's end too: its line never takes Nix's next one in ("attacker> x↵" and then
    "error: Cannot build '…-victim.drv'."), nor another line of a builder's."""
    if _NIX_START.match(following):
        return True
    if _indent(first) != _indent(following):
        return False
    shared = 0
    for mine, theirs in zip(_WORD.finditer(first, 0, _MAX_TOOL_PREFIX),
                            _WORD.finditer(following, 0, _MAX_TOOL_PREFIX), strict=False):
        if numbers_as_zero(mine[0]) != numbers_as_zero(theirs[0]):
            break
        if mine[0].endswith(">"):  # both a builder's lines (`-L`'s name, Nix's quote)
            return True
        shared = theirs.end()
    return shared > 0 and _NIX_START.match(following[shared:].lstrip()) is not None


_WORD = re.compile(r"\S+")


# `journalctl -o export` (systemd's Journal Export Format, systemd.io/JOURNAL_EXPORT_FORMATS):
# an entry is `FIELD=value` lines, entries apart by an empty line; a field holding a control
# character (Nix's colours) or a line end is its name alone on a line, then its size (8 bytes,
# little-endian), its bytes and a line end. An export from journal files starts with its cursor.
_EXPORT_START = re.compile(r"__(?:CURSOR|REALTIME_TIMESTAMP)=")
_EXPORT_FIELD = re.compile(r"[A-Z_][A-Z0-9_]{0,63}(?:=|$)")
_EXPORT_SIZE = 8


def _export_lines(captured: list[str]) -> tuple[list[str], list[int]] | None:
    """The MESSAGE of each entry of a journal export, each line with the index of the captured
    line it starts on; None when the capture is no export. The size before a binary field is
    not read (a byte of it may have been a line end, or no UTF-8): its value ends at the line
    end before the next field or entry."""
    first = next((index for index, line in enumerate(captured) if line.strip()), None)
    if first is None or not _EXPORT_START.match(captured[first]):
        return None
    lines: list[str] = []
    origins: list[int] = []
    index = first
    while index < len(captured):
        line = captured[index]
        if line.startswith("MESSAGE="):
            lines.append(line[len("MESSAGE="):])
            origins.append(index)
        elif line == "MESSAGE":
            # its size: 8 bytes, each one character (a line end among them split the line)
            at, skip = index + 1, _EXPORT_SIZE
            while at < len(captured) and skip > len(captured[at]):
                skip -= len(captured[at]) + 1
                at += 1
            start = at
            parts = [captured[at][skip:]] if at < len(captured) else []
            at += 1
            while at < len(captured) and captured[at] and not _EXPORT_FIELD.match(captured[at]):
                parts.append(captured[at])
                at += 1
            lines += parts
            origins += range(start, start + len(parts))
            index = at
            continue
        index += 1
    return (lines, origins) if lines else None


def recording_header(captured: Sequence[str]) -> int | None:
    """The index of a terminal recording's header (asciinema's asciicast v2 or v3), None when
    the capture does not start with one."""
    first = next((index for index, line in enumerate(captured) if line.strip()), None)
    if first is None or not _CAST_HEADER.match(captured[first]):
        return None
    try:
        header = json.loads(captured[first])
    except (ValueError, RecursionError):
        return None
    if not (isinstance(header, dict) and (header.get("version"), "width" in header or "term"
                                          in header) in ((2, True), (3, True))):
        return None
    return first


def _cast_lines(captured: list[str]) -> tuple[list[str], list[int]] | None:
    """The lines a terminal recording (asciinema's asciicast v2 or v3: a JSON header, then an
    event a line, `[time, "o", "what the terminal was sent"]`) shows, each with the index of
    the event line its end came in; None when the capture is no recording."""
    first = recording_header(captured)
    if first is None:
        return None
    lines: list[str] = []
    origins: list[int] = []
    pending: list[str] = []  # what came of the line not yet ended
    for index in range(first + 1, len(captured)):
        event = captured[index].strip()
        if not event or event.startswith("#"):  # v3's comments
            continue
        try:
            parsed = json.loads(event)
        except (ValueError, RecursionError):
            parsed = None
        if not (isinstance(parsed, list) and len(parsed) == 3):
            return None  # a line no recording has: a log that only starts like one
        if parsed[1] != "o" or not isinstance(parsed[2], str):
            continue  # input, markers, resizes, the exit status
        *ended, rest = parsed[2].split("\n")
        for part in ended:
            lines.append("".join([*pending, part]))
            origins.append(index)
            pending = []
        pending.append(rest)
    if any(pending):
        lines.append("".join(pending))
        origins.append(len(captured) - 1)
    return lines, origins


# the sections GitLab's runner opens for its own work (what it prints there is its own, plain
# lines too: "Running on runner-… via …", "Fetching changes with git depth set to 20…")
_GITLAB_RUNNER_SECTIONS = frozenset({
    "resolve_secrets", "prepare_executor", "prepare_script", "get_sources", "restore_cache",
    "download_artifacts", "archive_cache", "archive_cache_on_failure",
    "upload_artifacts_on_success", "upload_artifacts_on_failure", "cleanup_file_variables"})
_GITLAB_SECTION_NAME = re.compile(rf"{_SECTION_MARK}(?P<name>[A-Za-z0-9_.-]{{1,100}})")


# what a line _ci_own takes for a CI system's own holds somewhere (a cheap test first; of
# the escape codes, only GitLab's: any coloured line has one)
# (each alternative opens with a character, no repeat, group or blank: re then tries only the
# places where one of those characters stands, a third of the cost of trying each place)
_CI_HINT = re.compile(r"##\[|::|\*  |"
                      r"\x1b\[(?:0K|3[12];1m)|" + "=" * 20 + r"|\[command\]|~~~|---|\+\+\+|"
                      r"\^\^\^|\$ |🚨|\[Pipeline\] |"
                      r"Started by |Running on |Finished: |ERROR: script |"
                      r"Task +: |Description +: |Version +: |Author +: |Help +: |Generating script|"
                      r"Script contents|Starting Command Output|"
                      r"Step #|FETCHSOURCE|BUILD|PUSH|DONE|ERROR|\*\*\*|: \[|: ok=(?<= : ok=)")


def _ci_own_lines(raw: list[str]) -> set[int]:
    """The captured lines a CI system wrote itself (by their index)."""
    own = set()
    runner = False  # inside a section GitLab's runner opened for its own work
    for index, line in enumerate(raw):
        start = line[:120]
        # (a page's no-break spaces between a timestamp and the CI's own words are blanks, as
        # normalising reads them; colour and escape codes, which some CI systems' own lines
        # carry, are kept)
        start = start.translate(_SPACES) if not start.isascii() and _ODD_SPACE.search(start) \
            else start
        # (a marker where GitLab writes one: at a line's start, behind its timestamp)
        if "section_" in start and (section := _GITLAB_SECTION_NAME.match(_transported(start))):
            runner = section["edge"] == "start" and section["name"] in _GITLAB_RUNNER_SECTIONS
            own.add(index)
        elif runner or (_CI_HINT.search(start) and _ci_own(start)):
            own.add(index)
    return own


# (`{}` when every label is common to all lines)
_STREAM_LABELS = re.compile(r'\{(?:[A-Za-z_]\w{0,100}="[^"\n]{0,200}"(?:, ?[A-Za-z_]\w{0,100}='
                            r'"[^"\n]{0,200}"){0,20})?\} ')


def _ci_own(start: str) -> bool:
    """Whether a captured line (its start) is a CI system's own: GitHub's `##[group]`,
    `##[error]`, GitLab's runner lines, Buildkite's agent lines, Azure Pipelines' task header,
    Cloud Build's step lines (also inside a page's markup)."""
    # (also a copy that dropped the string command's ESC and BEL: "_bk;t=1745322209921~~~ …")
    buildkite = start.startswith(("\x1b_bk;", "_bk;t="))
    start = _transported(_HTML_TAG.sub("", start) if "<" in start else start)
    # a log collector's stream labels after its timestamp (Loki's logcli: `{host="…", job="…"} `),
    # which normalising learns as a prefix: the CI system's line follows them
    labels = _STREAM_LABELS.match(start)
    start = _transported(start[labels.end():]) if labels else start
    return bool(_GITHUB_COMMAND.match(start) or _GITLAB_OWN.match(start) or _AZURE_OWN.match(start)
                or _JENKINS_OWN.match(start) or (buildkite and _BUILDKITE_OWN.match(start))
                or _VSCODE_OWN.match(start) or _CLOUD_BUILD_OWN.match(start)
                or _ANSIBLE_OWN.match(start))


def _margin_off(raw: list[str]) -> list[str]:
    margin = min((_indent(line) for line in raw if line.strip(" ")), default=0)
    return [line[margin:] for line in raw] if margin else raw


# a line as Nix 2.4+ quotes a builder's (its error's indentation, seven blanks, then the mark)
_NIX_QUOTE_START = re.compile(r"^ {7}" + TAIL_MARK)


def _nix_quoted_throughout(texts: list[str]) -> bool:
    """Whether every line holding anything is a builder's line as Nix quotes it: a copy of
    only Nix's quote (its header cut off), no whole log's markdown quote or indentation."""
    shown = [text for text in texts if text.strip()]
    return bool(shown) and all(_NIX_QUOTE_START.match(text) for text in shown)


def _whole_quote_off(raw: list[str], elided: int = 0) -> list[str]:
    """The captured lines without a common indentation and the marks of quotes around the
    whole capture, level by level (Nix quotes a builder's lines only after lines of its own,
    so a capture quoted throughout is a quote of the whole log). What a quote holds is then
    read as any captured line: a CI system's timestamps, journald, nom's glyphs. Not Nix's own
    quote of a builder's lines ("       > …": seven blanks in, where a markdown quote stands at
    most three), which a copy of only its lines keeps throughout, its header cut off: those are
    the builder's lines as Nix quoted them (a quoted "configure: error:" no line of Nix's)."""
    if _nix_quoted_throughout(raw):
        return _comment_runs_off(raw, elided)
    raw = _margin_off(raw)
    for _ in range(_MAX_QUOTES):
        shown = [line for line in raw if line.strip()]
        if shown and all(_COMMENT_MARK.match(line) for line in shown):
            # a capture kept in a code comment ("# " or "// " before every line: a config
            # noting the failure a workaround is for), taken off as a quote's marks are
            raw = _margin_off([_COMMENT_MARK.sub("", line, count=1) for line in raw])
            continue
        diffed = _diff_mark_off(raw, shown)
        if diffed is not None:
            raw = diffed
            continue
        if not shown or not all(line.startswith(">") for line in shown):
            break
        # (a quote marked ">" alone, glued to its lines' text: a blank after it is the line's
        # own, Nix's indentation of its message's lines, as the line ">error:" shows)
        glued = any(line[1:2].strip() and line[1] != ">" for line in shown)
        raw = _margin_off([line[2:] if line.startswith("> ") and not glued else line[1:]
                           for line in raw])
    return _comment_runs_off(raw, elided)


# a comment's mark behind the code's indentation ("  # ", "    // ")
_CODE_COMMENT = re.compile(r"^([ \t]*)(#|//)(?: |$)")


def _comment_runs_off(raw: list[str], elided: int = 0) -> list[str]:
    """The captured lines with the marks blanked in each run of comment lines (one indentation,
    one mark) that holds Nix's words, where such runs are a few lines among code: a failure
    kept in a comment ("  # FIX: error: Cannot build '…'." over "  #      Reason: …"), whose
    lines then read as the block Nix printed. A capture that is mostly comment lines is read
    as it was (its marks are a prefix on most lines, learnt as any tool's); a run without Nix's
    words stays as it is, and so does one line alone: "# error: …" is as often a markdown
    heading (an issue's title) as a comment, and a line reads as well with its mark as without.
    (elided: the lines of the capture condensing left out, none a comment; see normalise.)"""
    runs: list[tuple[int, int, int, int]] = []  # (first line, end, the mark's start and end)
    at = 0
    while at < len(raw):
        first = _CODE_COMMENT.match(raw[at])
        end = at + 1
        if first is not None:
            while end < len(raw) and (m := _CODE_COMMENT.match(raw[end])) is not None \
                    and m[1] == first[1] and m[2] == first[2]:
                end += 1
            if end - at > 1 and any(_NIX_START.search(line) for line in raw[at:end]):
                runs.append((at, end, first.start(2), first.end(2)))
        at = end
    if not runs:
        return raw
    # (the capture's own lines: a CI system's around it are no code, and the comments may be
    # all of what the step printed, a prefix learnt as any tool's)
    own = _ci_own_lines(raw)
    shown = elided + sum(1 for index, line in enumerate(raw) if line.strip() and index not in own)
    if 2 * sum(end - at for at, end, _, _ in runs) >= shown:
        return raw
    out = list(raw)
    for at, end, mark, cut in runs:
        # (the mark becomes blanks: each line keeps its column, so what the comment held is
        # indented as written, and no line of it reads as glued to the one before, as a hard
        # wrap's rest at the line start does)
        out[at:end] = [f"{line[:mark]}{' ' * (cut - mark)}{line[cut:]}" for line in raw[at:end]]
    return out


# a unified diff's own lines around a file it adds or deletes ("diff --git a/x b/x", "new file
# mode 100644", "index 0000000..e69de29", "--- /dev/null", "+++ b/x", "@@ -0,0 +1,12 @@")
_DIFF_OWN = re.compile(r"^(?:diff --git |(?:new|deleted) file mode \d|index [0-9a-f]{7,}\.\.|"
                       r"--- (?:a/|/dev/null)|\+\+\+ (?:b/|/dev/null)|@@ -\d+(?:,\d+)? \+\d)")


def _diff_mark_off(raw: list[str], shown: list[str]) -> list[str] | None:
    """The captured lines without a unified diff's mark glued to each ("+error: …", a log a
    pull request adds, or "-" one it deletes), the diff's own lines blank; None where the
    capture is no such diff. Nix starts no line with "+" or "-"; a markdown list's "- " and a
    shell's `set -x` "+ " are no diff's mark: it is glued to a line's text somewhere, or the
    diff's hunk header stands before the lines."""
    body = [line for line in shown if not _DIFF_OWN.match(line)]
    mark = body[0][0] if body and body[0][0] in "+-" else None
    if mark is None or not all(line.startswith(mark) for line in body) or not (
            any(len(line) > 1 and not line[1].isspace() and line[1] not in "+-" for line in body)
            or any(line.startswith("@@ -") and _DIFF_OWN.match(line) for line in shown)):
        return None
    return [line[1:] if line.startswith(mark) and not _DIFF_OWN.match(line)
            else "" if _DIFF_OWN.match(line) else line for line in raw]


# a comment's mark: "#" or "//" before a blank or the line's end (not BuildKit's "#11 ")
_COMMENT_MARK = re.compile(r"^(?:#|//)(?: |$)")


def _without_prefix(found: list[Line], ci_own: set[int],
                    before_bar: Mapping[tuple[int, str], str], depth: int | None = None
                    ) -> list[Line]:
    """Lines without a prefix on most of them, then one on many (stacked: docker compose
    around buildkit), learnt from the first lines (bounded work on a huge log), not from the
    CI system's own (origins in ci_own); a line glued to a progress bar with what stood
    before the bar (before_bar, by the line's origin and text), which loses each prefix
    learnt as the lines do. With `depth`, learnt from and taken off the lines a record held
    that deep only (the others kept as they are, in place)."""
    learnt = None
    for learn in (_common_prefix, _common_prefix, _tool_prefix):
        if learn is _common_prefix and learnt is False:
            continue  # (the same lines again: no prefix again)
        prefix = _learnt(learn, [line for line in found[:_LEARN_FROM]
                                 if depth is None or line.inner == depth], ci_own, before_bar)
        # a second common prefix only behind a first (two tools' unknown prefixes stacked,
        # `kubectl logs --prefix` around git's "remote: ")
        learnt = prefix is not None if learn is _common_prefix else learnt
        if prefix is not None:  # and what stood behind it (journald, nom, a level, VS Code's
            # own lines, which only their start tells)
            own = _listed_by_error(found) if _a_bullet(prefix) else frozenset()
            unglued = {key: (_unprefixed(_after(prefix, before)) or ("",))[0]
                       for key, before in before_bar.items()}
            kept, before_bar = [], {}
            learnt_on = next((m[0] for line in found if (m := prefix.match(line.text))), "")
            for at, line in enumerate(found):
                if depth is not None and line.inner != depth:
                    kept.append(line)
                    continue
                shown = _vscode_shown(line.text if at in own else _after(prefix, line.text))
                if shown is not None and shown == line.text and _prefix_alone(line.text,
                                                                               learnt_on):
                    shown = ""  # (an empty line the outer of stacked prefixes alone stood on)
                unprefixed = None if shown is None else _unprefixed(shown, quoted=line.quoted)
                if unprefixed is None:
                    continue
                text, marked = unprefixed
                kept.append(replace(line, text=text, marked=line.marked or marked))
                if (key := (line.origin, line.text)) in unglued:
                    before_bar[line.origin, text] = unglued[key]
            found = kept
    return found


def _prefix_alone(text: str, learnt_on: str) -> bool:
    """Whether a line holds nothing but the start of a prefix learnt (as it stood on a line
    that had it, numbers as 0), up to one of its blanks: an empty line that the outer of two
    stacked prefixes alone stood on (docker compose's "web_1  | ", a viewer's line number
    before BuildKit's "#12 101.0 " on the others), which the inner tool never printed. Its
    rest is no text of Nix's: read as the rest of a message cut at the log's end, it ran on
    into the outer prefix (heldout-241's template-nixos-3)."""
    # (a viewer's right-aligned numbers pad each to its width: the padding is no shape)
    stub = numbers_as_zero(text.strip())
    shape = numbers_as_zero(learnt_on.lstrip())
    return bool(stub) and len(stub) < len(shape) and shape.startswith(stub) \
        and shape[len(stub)].isspace() and not _NIX_START.match(text.lstrip())


def _a_bullet(prefix: re.Pattern[str]) -> bool:
    """Whether a prefix learnt is a markdown list's bullet alone (a paste of list items)."""
    return any(prefix.fullmatch(bullet) for bullet in ("- ", "* "))


def _listed_by_error(found: list[Line]) -> frozenset[int]:
    """The lines (their places in found) that go on an error line of Nix's without a blank or
    a fence between: its message's own list (lib/options.nix's values, "- In `FILE': VALUE",
    the bullets under "Failed assertions:"), which a bullet learnt as the prefix of a paste's
    list items is not taken off. (An error line that is itself an item has the bullet.)"""
    own: set[int] = set()
    in_error = False
    for at, line in enumerate(found):
        if not line.text.strip() or line.text.lstrip().startswith("```"):
            in_error = False
        elif _ERROR_START.match(line.text):
            in_error = True
        elif in_error:
            own.add(at)
    return frozenset(own)


def _learnt(learn: Callable[[list[str]], re.Pattern[str] | None], found: list[Line],
            ci_own: AbstractSet[int], before_bar: Mapping[tuple[int, str], str]
            ) -> re.Pattern[str] | None:
    """learn's prefix from the lines that may teach one: not the CI system's own (origins in
    ci_own), nor the builder's lines Nix quotes (`Line.quoted`: a build printing one start
    before "error: builder for '…-other.drv' failed" on its last lines made that start a
    tool's prefix, and the rest of each line Nix's own: another derivation's failure), nor the
    further lines of an error message of Nix's (a flake's `throw` of comment lines, "# error:
    builder for '…-other.drv' failed", made "       # " a tool's prefix: the rest read as
    Nix's own). Failing that, from those further lines too, where the prefix also stands
    before each message's error line, as a tool's prefix does (a viewer's line numbers before
    a bar-glued "error:" and the trace below it: without them too few lines were left to learn
    from, and every frame read as the message) and one inside a message does not."""
    said = _said_by_nix(found)  # (a quoted line is said too)
    glued = [before_bar.get((line.origin, line.text), "") + line.text if before_bar
             else line.text for line in found]
    shown = [(at, glued[at]) for at, line in enumerate(found)
             if line.text.strip() and line.origin not in ci_own and not line.quoted]
    prefix = learn([text for at, text in shown if not said[at]])
    if prefix is not None:
        return prefix
    openers = [glued[at] for at in range(len(found) - 1)
               if not said[at] and said[at + 1] and not found[at + 1].quoted]
    # (an error line Nix's words start, as in most logs, has no prefix any lines could teach)
    if not openers or any(_NIX_ERROR.match(text) for text in openers):
        return None
    wider = learn([text for _, text in shown])
    return wider if wider is not None and all(wider.match(text) for text in openers) else None


def _after(prefix: re.Pattern[str], text: str) -> str:
    m = prefix.match(text)  # at the start only: a line that lost it may have its shape inside
    return text[m.end():] if m else text


# a Rust tool's report of an error and its causes (anyhow's and eyre's `{:?}`: "Error: …", then
# "Caused by:" and each cause numbered "    0: " — a number right-aligned in five — or a cause
# alone indented by four; color-eyre's "Error:" alone, then "   0: …" right-aligned in four),
# where the tool relays Nix's stderr as a cause (attic, nh, mvmctl: "1: nix build failed: …" or
# Nix's lines themselves); each cause's further lines are indented to the text after its number,
# before Nix's own indentation
_CAUSED_BY = re.compile(r"\s*(?:Caused by|(?P<eyre>Error)):\s*$")
_CAUSE_NUMBER = re.compile(r" {0,4}\d{1,3}: ")
_MAX_CAUSE_WIDTH = 8


def _said_by_nix(found: list[Line]) -> list[bool]:
    """Whether each line is a builder's line Nix quotes (`Line.quoted`) or a further line of an
    error message of Nix's (indented deeper than its "error:" line: a flake's `throw` text, a
    trace's frames). What it holds is data, never a tool's report around Nix's output: taking a
    tool's indentation off such a line ended Nix's quote or message there, and the builder's or
    the flake's next line read as an error of Nix's own (a quoted YAML block or Rust cause list
    holding "error: builder for '…-other.drv' failed" blamed another derivation)."""
    said, depth = [], -1  # (how deep Nix's current error line is indented; -1: none)
    for line in found:
        text = line.text
        if depth >= 0 and text.strip() and _indent(text) <= depth:
            depth = -1
        said.append(line.quoted or depth >= 0)
        if depth < 0 and not line.quoted and _NIX_ERROR.match(text):
            depth = _indent(text)
    return said


def _causes_unindented(found: list[Line]) -> tuple[list[Line], bool]:
    """Lines with each cause of a Rust error's "Caused by:" list at Nix's own indentation: its
    number taken off its first line, the indentation to that number's text off the others
    (blank ones kept); and whether there was such a list. The list ends at the first line the
    causes' indentation does not stand before (the report's "Stack backtrace:", a shell's next
    prompt). A list inside Nix's message or quote is the builder's or the flake's text."""
    if not any("Caused by:" in line.text or "Error:" in line.text for line in found):
        return found, False
    result, chained = list(found), False
    nix_said = _said_by_nix(found)
    at = 0
    while at < len(result):
        caused = _CAUSED_BY.match(result[at].text)
        head = _indent(result[at].text)
        at += 1
        # (color-eyre's report has no "Caused by:": its "Error:" alone, then "   0: …")
        if caused is None or nix_said[at - 1] or (caused["eyre"] and not (
                at < len(result) and _CAUSE_NUMBER.match(result[at].text, head))):
            continue
        width = None  # the indentation of the cause being read
        while at < len(result):
            text = result[at].text
            number = _CAUSE_NUMBER.match(text, head)
            if number is not None and number.end() - head <= _MAX_CAUSE_WIDTH:
                width, chained = number.end(), True
                result[at] = replace(result[at], text=text[width:])
            elif width is None and text[:head + 4].isspace() and text[head + 4:head + 5].strip():
                width, chained = head + 4, True  # one cause alone: indented by four, no number
                result[at] = replace(result[at], text=text[width:])
            elif width is not None and (not text.strip() or text[:width].isspace()):
                result[at] = replace(result[at], text=text[width:] if text.strip() else "")
            else:
                break
            at += 1
    return result, chained


# a YAML block scalar's key ("  stderr: |-"): the lines after it indented deeper are its text,
# as deep as its first line (YAML 1.2 §8.1.1.1): Ansible's YAML output of a failed task
# (`stdout_callback = yaml`, or the default callback's `result_format = yaml`) holds Nix's
# stderr so, deeper than the result's other keys, which a whole-log dedent leaves
_BLOCK_KEY = re.compile(r"^(?P<indent> {0,64})(?:- )?[\w.-]{1,200}: [|>][+-]?(?P<width>[1-9])?"
                        r"[+-]?\s*$")
_MAPPING_KEY = re.compile(r"^ {0,64}(?:- )?[\w.-]{1,200}:(?: |$)")


def _block_scalars(found: list[Line]) -> tuple[list[Line], set[int]]:
    """Each YAML block scalar's text dedented as YAML reads it (from the indentation of its
    first line, the lines after its key indented deeper than the key, and blank ones); the
    mapping's keys, the block's and those after it, taken to the margin and returned (their
    origins) as the tool's own lines: no part of the text's last message, never a line a
    terminal broke."""
    keys: set[int] = set()
    if not any(": |" in line.text or ": >" in line.text for line in found):
        return found, keys
    result = list(found)
    nix_said = _said_by_nix(found)
    at = 0
    while at < len(result):
        key = _BLOCK_KEY.match(result[at].text)
        at += 1
        if key is None or nix_said[at - 1]:
            continue
        # (an indentation indicator where the text's first line starts with a blank: "|2-")
        first = next((result[i] for i in range(at, len(result)) if result[i].text.strip()), None)
        shift = len(key["indent"]) + int(key["width"]) if key["width"] else \
            0 if first is None else _indent(first.text)
        if shift <= len(key["indent"]):
            continue
        keys.add(result[at - 1].origin)
        while at < len(result) and (not result[at].text.strip()
                                    or _indent(result[at].text) >= shift):
            result[at] = replace(result[at], text=result[at].text[shift:])
            at += 1
        while at < len(result) and _MAPPING_KEY.match(result[at].text) \
                and not _BLOCK_KEY.match(result[at].text) \
                and not _NIX_START.match(result[at].text.lstrip(" ")):
            keys.add(result[at].origin)
            result[at] = replace(result[at], text=result[at].text.lstrip(" "))
            at += 1
    return result, keys


def _dedented(found: list[Line]) -> list[Line]:
    shift = min((_indent(line.text) for line in found if line.text.strip()), default=0)
    return [replace(line, text=line.text[shift:]) for line in found] if shift else found


_MAX_QUOTES = 4
# a wrapper saying it shows only the end of a log ("Last 20 lines of logs:")
_CUT_INTRO = re.compile(r"\b(?:last|Last|LAST) \d+ (?:\w+ )?lines\b")
# what only Nix starts a line with, never a builder's output it quotes
_NIX_OWN = re.compile(r"(?:error: )?(?:builder for |Cannot build |build of |\d+ dependenc)|"
                      r"building ['‘]|these \d+ (?:derivations|paths)|this (?:derivation|path) |"
                      r"copying path |… (?:while|from|in|caused)|while evaluating ")
_QUOTE_MARKS = re.compile(r"^[ \t]{0,8}(?:>[ \t]?)+")
# a frame of Nix's trace, which Nix prints only in an error: a quote of one says a failure as
# an error line would (2.3's "while evaluating … at …:" lines alone, 2.4+'s "… while …")
_TRACE_FRAME = re.compile(r"\s*(?:… (?:while|from|in|caused) |while (?:evaluating|calling) )")


def _unquoted(found: list[Line]) -> list[Line]:
    """Markdown quotes ("> " before each line) around Nix's own lines, taken away.

    A quote is a run of lines starting with ">" at one indentation; it holds Nix's lines when
    it is the whole log (Nix quotes a builder's lines only after its own), or says something
    failed, holds a line of Nix's and does not follow Nix's "last N log lines:" (whose quoted
    builder output keeps its marks). An indented one is a tool quoting the output of the Nix
    it ran inside its own report (Bazel's rules_nixpkgs: "    Error output:" and then
    "      > error: builder for …")."""
    texts = [line.text for line in found if line.text.strip()]
    whole = bool(texts) and all(text.startswith(">") for text in texts)
    result = list(found)
    start = 0
    while start < len(found):
        indent = _indent(found[start].text)
        if found[start].text[indent:indent + 1] != ">":
            start += 1
            continue
        end = start
        while end < len(found) and _indent(found[end].text) == indent \
                and found[end].text[indent:indent + 1] == ">":
            end += 1
        body = [text[indent + 2:] if text[indent:].startswith("> ") else text[indent + 1:]
                for text in (line.text for line in found[start:end])]
        before = found[start - 1].text if start else ""
        # an indented run is a tool's quote only right after that tool's intro, less indented
        # ("    Error output:"): Nix's own indented quote of a builder's lines, whose "last N
        # log lines:" a copy or a terminal's wrap cut off, stays the builder's
        # and starts where Nix's output starts, with a line of Nix's own (a wrapper's "Last 20
        # lines of logs:" or nom's "Nix output:" may stand before a cut quote of a builder's,
        # which then starts with a builder's line)
        first = next((text for text in body if text.strip()), "")
        # (never the rest of a quoted line a terminal's wrap broke: that follows a quote)
        prior = found[start - 2].text if start > 1 else ""
        # (nor where the intro or the run is a builder's line Nix quotes: "  x:" then "       >
        # error: builder for '…-other.drv' …" in 2.3's quote are the builder's; the run taken
        # for a tool's quote lost 2.3's indentation, ended the quote and read as Nix's)
        intro = bool(indent) and before.rstrip().endswith(":") and _indent(before) < indent \
            and not _CUT_INTRO.search(before) and prior[indent:indent + 1] != ">" \
            and not TAIL_COUNT.search(before) and not found[start - 1].quoted \
            and not found[start].quoted
        introduced = not indent or (intro and (_NIX_START.match(first.lstrip()) is not None
                                               or any(_NIX_OWN.match(text) for text in body)))
        # a tool's intro and an indented quote from there to the log's end: the tool quoting
        # what the command it ran printed, whole (Bazel's "    Error output:" last in its
        # report), whatever its first line
        to_the_end = intro and not any(line.text.strip() for line in found[end:])
        # (Nix's words under the marks of the quotes inside it)
        if (whole and not indent) or to_the_end or introduced and (
                any(_ERRORISH.search(text) or _TRACE_FRAME.match(_QUOTE_MARKS.sub("", text))
                    for text in body)
                and any(_NIX_START.match(_QUOTE_MARKS.sub("", text).lstrip()) for text in body)
                and not TAIL_COUNT.search(before)):
            if intro:  # a tool's quote of a capture: its lines as any captured line's
                body = [_reshaped(text) for text in body]
            result[start:end] = [replace(line, text=text)
                                 for line, text in zip(found[start:end], body, strict=True)]
        start = end
    return result


def _reshaped(text: str) -> str:
    """A line a tool quoted, without the marks normalising takes off a captured line's start
    (nom's glyphs, a level, inline code); a wrapper's own status line as it is."""
    unprefixed = _unprefixed(text)
    return unprefixed[0] if unprefixed is not None else text


# the header of Nix's crash handler (Nix 2.2x, Lix, Determinate Nix: "Nix crashed. This is a
# bug. …"), at a line's start: the one spelling every reader of it is built from
CRASH_HEADER = r"(?:Determinate )?[NL]ix crashed\. "
# what starts a line of its own in a Nix log (Nix's messages, its status lines, a quoted or
# indented line): never the rest of a line a terminal or pager broke ("this derivation will be
# built:", not any "this": "in\nthis case it must …" of a message that lost its indentation)
_OWN_LINE = re.compile(
    r"^(?:\s|$|(?:error|warning|trace|note|evaluation warning):|error \(ignored\)|"
    r"building|builder for|cannot build|Cannot build|build of|these |this (?:derivation|path) |"
    r"copying |querying |"
    r"fetching |downloading |unpacking |evaluating |installing |replacing |created |"
    r"hash mismatch|fixed-output|some |\d+ dependenc|don't know|path |Killed|\S+> |> |"
    # Nix's progress bar, whose counters a download shows in MiB ("[1/0/3 built, …]", "[0.0/0.1
    # MiB DL, 1/0/1 paths verified]"): it is redrawn from a line's start
    # (a shell's prompt, also bash's "user@host:~$ ", and its `set -x` trace of a command:
    # "+ out=", "++ echo", a "+" a level of nesting)
    r"… |\[\d+(?:\.\d+)?(?:/|\s[KMG]iB)|\$ |# |\++ |Required|Current|For full|"
    # (Nix's "Reason:", also where a copy cut the line right after the word: no line's rest)
    r"Reason(?::|\s*$)|"
    r"[\w.-]{1,64}@[\w.-]{1,255}:[^\s$#]{0,4096}[$#] |Last \d+|"
    r"last \d+|curl: |trying |"
    r"while |\(use |Try |Did you mean|[A-Z][a-z]+(?: [A-Z][a-z]+)*:|at \S|\d+\||\||"
    r"specified: |got: |wanted: |```|"
    # an elision mark alone on its line ("...", "…", "[...]"): the reporter's, or journalctl's
    # between records, never the rest of a line
    r"(?:\.{3}|…|\[(?:\.{3}|…)\])\s*$|"
    # a tool's own verdict ("ERROR: process \"/bin/sh -c nix run\" did not complete …", BuildKit)
    # and a rule of dashes under it: lines of their own after Nix's error
    r"ERROR\b|-{4,}\s*$|={4,}\s*$|"
    # nixos-rebuild-ng's verdict on the command it ran (Python's CalledProcessError), after
    # Nix's last line: never its rest, also where that line was cut short
    r"Command '\[|"
    # build-remote's "Failed to find a machine for remote build!" and the lines it lists
    r"Failed to find|derivation: |required \(system|\d+ available machines|\(systems, |\(\[|"
    # Nix's crash handler's header, after the error it died of ("error: interrupted by the
    # user", then "Determinate Nix crashed. This is a bug. …")
    + CRASH_HEADER + ")")
_ERROR_START = re.compile(r"^\s*error: \S")  # (indented: the continuation is then less so)
# Nix's recap of the builds that failed ("error: build of '…' failed", of one or more: 1.x to
# 2.3, `nix build`): a message whole on its line, which nothing continues (nix-review's URL and
# package lists, nix-shell's "failed to build all dependencies" follow it unindented)
_WHOLE_RECAP = re.compile(r"^\s*error: build of ['‘]/nix/store/[^'’\s]+['’]"
                          r"(?:, ['‘]/nix/store/[^'’\s]+['’])* failed\s*$")
# how a line that ends inside a sentence ends: a word's letter or digit, or a comma
_MID_SENTENCE_ENDS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_,")
_LOWER_START = re.compile(r"[a-z]")
_ONE_BLANK = re.compile(r" \S")
_QUOTED_PATH = re.compile(r"^['‘`]/nix/store/")
_OPEN_PATH = re.compile(r"/nix/store/[0-9a-z]{0,32}(?:-[A-Za-z0-9+._?=-]*)?$")
_PATH_CHARS = 300  # a store path is at most 11 + 32 + 1 + 211 characters: where one can end
_TERMINAL_WIDTHS = frozenset({80, 100, 120, 132})
_RULED = re.compile(r"(?:^|\s)-{4,}$")


def _ruled(piece: str) -> bool:
    """Whether a line ends in a rule (_RULED), which a line can only where it ends in four
    dashes (before a line end or none: what `$` allows): tested first, the search is costly."""
    return piece.endswith(("----", "----\n")) and _RULED.search(piece) is not None


_WRAP_SLACK = 12  # a word wrap leaves at most about a word's width free at a line's end
_WHOLE_RECORD = re.compile(re.escape(_RECORD) + r".*\}\s*$")  # an internal-json record, whole
_MIN_WIDTH = 60


_STORE_HASH = re.compile(r"/nix/store/[0-9a-z]{32}-")
# 2.4+'s builder header whole at a line's end: the words a wrap's cut can fall inside
_HEADER_WHOLE = re.compile(
    r"builder for ['‘]/nix/store/[^'’\s]+['’] failed with exit code \d{1,9};?\s*$")
# 1.x-2.3's builder header, unprefixed ("builder for '…' failed with exit code 1"): what follows
# its path, which a wrap's cut before the exit code leaves a start of (heldout-548
# nixpkgs#114854: "….drv' fail" / "ed with exit code 1")
_HEADER_START = re.compile(r"\s*builder for ['‘]/nix/store/[^'’\s]+['’](.*)$")
_HEADER_WORDS = "failed with exit code"


def _header_open(text: str) -> bool:
    """Whether a line is 1.x-2.3's builder header cut before its exit code: the rest of it is
    on the next line, as an error's is (2.4+'s "error: builder for" is an error line)."""
    start = _HEADER_START.match(text)
    return start is not None and _HEADER_WORDS.startswith(start[1].strip())


def _cut_in_hash(end: str, rest: str) -> bool:
    """Whether a line ending inside a store path's hash (`end`: its last characters) and the
    next line are one path cut in two: together they make a whole hash and its dash (which a
    line ending in a path a copy cut short, and the line after it, do only by chance)."""
    cut = _OPEN_PATH.search(end)
    return cut is not None and "-" not in cut.group(0) \
        and _STORE_HASH.match(cut.group(0) + rest[:44]) is not None


# a store path's name open at a line's end (its hash whole), and the rest of a name that goes on
# at the next line's start, to its closing quote
_OPEN_NAME = re.compile(r"/nix/store/[0-9a-z]{32}-(?P<name>[A-Za-z0-9+._?=-]*)$")
_NAME_REST = re.compile(r"[A-Za-z0-9+._?=-]+(?=['’])")
_MIN_NAME = 8  # a name spelt elsewhere by chance is shorter
_MAX_CUTS = 8


def _cut_in_spelt_name(found: list[Line], width: int) -> bool:
    """Whether a line at the log's longest width ends inside a store path's name whose rest the
    next line starts with, and the name so joined without a blank is one the log spells
    elsewhere ("…-llvm-16." and "0.6.drv'" where a builder's line names "llvm-16.0.6.drv"): a
    terminal cut it inside a word. A copy that lost characters there joins into a name the log
    spells nowhere (nixpkgs#419585's "lix-doc-2." and "1.2-vendor…": a blank stays)."""
    if width < _MIN_WIDTH:
        return False
    cuts = []
    for at, (line, following) in enumerate(pairwise(found)):
        if len(line.text) == width and following.inner == line.inner:
            open_name = _OPEN_NAME.search(line.text, max(0, width - _PATH_CHARS))
            rest = _NAME_REST.match(following.text) if open_name else None
            if open_name is not None and rest is not None \
                    and len(name := open_name["name"] + rest[0]) >= _MIN_NAME:
                cuts.append((at, name))
                if len(cuts) == _MAX_CUTS:
                    break
    return any(name in other.text for at, name in cuts
               for index, other in enumerate(found) if index not in (at, at + 1))


def _rejoined(found: list[Line], ci_own: AbstractSet[int] = frozenset(), elided: int = 0,
              widths: Mapping[int, tuple[int, AbstractSet[str]]] | None = None) -> list[Line]:
    """Lines a terminal, pager or nix-output-monitor broke at a fixed width, joined again.

    A log is taken as broken at width W when no line is longer than W and at least three lines
    (and a tenth of them) end within a word of W; such a line continues on the next one unless
    that starts a line of its own. A cut at exactly W fell inside a word (a terminal's hard
    wrap, which may split a store path); a shorter one at a blank the wrap dropped. A CI
    system's own lines (origins in ci_own: rulers, a task's header) were never broken. (elided,
    widths: the lines condensing left out, none longer than the longest kept; see normalise.)"""
    texts = [line.text for line in found if line.text.strip() and line.origin not in ci_own]
    width = max((len(text) for text in texts), default=0)
    widths = widths or {}
    full = sum(1 for text in texts if len(text) >= width - _WRAP_SLACK) + sum(
        count for at, (count, _) in widths.items() if at >= width - _WRAP_SLACK)
    wrapped = width >= _MIN_WIDTH and full >= 3 and 10 * full >= len(texts) + elided
    # a terminal's hard wrap cuts many lines at exactly the width, inside words
    # (three different ones: a message repeated is no wrap)
    # (or one such cut proven: a store path's hash the next line completes, at a width
    # logshape does not know, 72 or 90 columns, a tmux pane's; then every line cut at that
    # width was cut inside a word, however few of them)
    at_width = {text for text in texts if len(text) == width} | set(widths.get(width, (0, ()))[1])
    hard = (wrapped and len(at_width) >= 3) or (
        width >= _MIN_WIDTH and any(
            len(line.text) == width and following.inner == line.inner
            and _cut_in_hash(line.text[-_PATH_CHARS:], following.text)
            for line, following in pairwise(found)) or _cut_in_spelt_name(found, width))
    joined: list[Line] = []
    # the text of each line joined from several in pieces (by its index in `joined`), joined
    # once at the end (appending to one string each time copies it: quadratic in a long run of
    # continued lines; a list for every line would hold a huge log twice), and its last characters
    pieces: dict[int, list[str]] = {}
    end = ""
    in_error = False  # the last line joined to is (the rest of) an unindented error line
    piece = ""  # the captured line just taken: where it was cut says how it goes on
    for line in found:
        # a line a structured record held and a captured line beside the record were never
        # one line: no terminal broke them apart
        last = joined[-1] if joined and line.inner == joined[-1].inner and not (
            {line.origin, joined[-1].origin} & ci_own) else None
        # a word wrap broke the line before a word that did not fit (a quoted store path is
        # a long one; Nix starts no line with it)
        pushed = width >= _MIN_WIDTH and len(piece) + 1 + len(line.text.split(" ", 1)[0]) > width \
            and (wrapped or _QUOTED_PATH.match(line.text) is not None)
        # a terminal's cut that fell on a blank: the rest starts with it (Nix indents by more)
        cut_at_blank = hard and len(piece) == width and _ONE_BLANK.match(line.text) is not None
        # an indented error's message a copy broke where its indentation goes on (a markdown
        # code block indented by four): the rest at that indentation, in lower case, after a
        # piece that ended mid-sentence (Nix's own lines under an error start otherwise)
        # (only under an error: no work on the lines of a long build log)
        margin = _indent(piece) if in_error and last is not None else 0
        rest = line.text[margin:] if margin else ""
        indented_rest = margin > 0 and _indent(line.text) == margin \
            and piece.rstrip()[-1:] in _MID_SENTENCE_ENDS and _LOWER_START.match(rest) is not None \
            and not _OWN_LINE.match(rest)
        # (never a line of Nix's error, whatever indentation a quote's mark left it: devenv pads
        # "Reason:" into a column, so its lines fill one width as a terminal's would)
        # (never after a header ruled to the width, "---- oh no! -----…" of Nix's install
        # scripts: it ends its line, whatever width it fills)
        if last is not None and indented_rest:
            pieces.setdefault(len(joined) - 1, [last.text]).extend((" ", rest))
            end = (end + " " + rest)[-_PATH_CHARS:]
            piece = line.text
            continue
        # (nor an internal-json record, before or after: Nix writes each whole on a line of
        # its own, and a builder's lines of one width made its build-log records read as a
        # wrap's pieces, joined into text read as Nix's, "error: builder for …-other.drv")
        if last is not None and not _ERROR_START.match(line.text) \
                and not _ruled(piece) and not line.text.startswith(_RECORD) \
                and not _WHOLE_RECORD.match(piece) and (
                cut_at_blank or (not _OWN_LINE.match(line.text) and (
                in_error or pushed or (wrapped and len(piece) >= width - _WRAP_SLACK)
                or (hard and len(piece) == width)))):
            # Nix indents what continues an error; an unindented line right after one that
            # starts no line of its own is the rest of it
            # cut inside a word: at the width many lines fill, or at a terminal's usual width
            # (a word wrap drops the blank it broke at, so its lines end short of the width)
            inside = (hard and len(piece) == width) or len(piece) in _TERMINAL_WIDTHS
            # a store path has no blanks: one a wrap cut went on without any (wherever a
            # copy's indentation or a colour code left the cut)
            gap = "" if inside or cut_at_blank or (wrapped and _OPEN_PATH.search(end)) \
                else " "
            if gap and in_error and _HEADER_WHOLE.search(end + line.text) \
                    and not _HEADER_WHOLE.search(end + gap + line.text):
                # a cut inside one of the header's own words, at a width no other line proves
                # (nixpkgs#429117, heldout-312: "….drv' f" / "ailed with exit code 1;"): the
                # words are whole again only without a blank
                gap = ""
            pieces.setdefault(len(joined) - 1, [last.text]).extend((gap, line.text))
            end = (end + gap + line.text)[-_PATH_CHARS:]
            piece = line.text
            continue
        in_error = (_ERROR_START.match(line.text) is not None
                    and _WHOLE_RECAP.match(line.text) is None) or _header_open(line.text)
        joined.append(line)
        end = line.text[-_PATH_CHARS:]
        piece = line.text
    for at, texts in pieces.items():
        joined[at] = replace(joined[at], text="".join(texts))
    return joined
