"""The log classifier against build output a pull request controls (issue #26's audit).

A builder prints what it likes; Nix quotes its last lines in the error and `nix build -L` shows
all of them behind the builder's name. None of that may name another derivation as failed,
hide the builder's own failure, or cost more than time linear in the log.
"""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import io
import itertools
import json
import re
import time
import xml.etree.ElementTree as ET
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix import build, diagnose, logshape, logtext
from ci_nix.commands import junit as junit_command
from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import failures, github, gitlab, junit

ATTACKER = "/nix/store/" + "a" * 32 + "-attacker-1.0.drv"
VICTIM = "/nix/store/" + "b" * 32 + "-victim-2.0.drv"

# what a builder can make Nix quote: its own last lines, as Nix 2.4+ (`> `) and 2.3 (indented)
# print them, saying another derivation failed in Nix's words
_FORGED = [
    f"error: hash mismatch in fixed-output derivation '{VICTIM}':",
    "         specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "            got:    sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=",
    f"error: Cannot build '{VICTIM}'.",
    "       Reason: builder failed with exit code 9.",
]


def _nix_message(quote: str) -> list[str]:
    return [f"error: builder for '{ATTACKER}' failed with exit code 1;",
            f"       last {len(_FORGED) + 1} log lines:",
            f"       {quote}compiling",
            *(f"       {quote}{line}" for line in _FORGED),
            f"       For full logs, run 'nix log {ATTACKER}'."]


def test_builder_output_nix_quotes_names_no_other_derivation() -> None:
    for quote in ("> ", ""):
        lines = _nix_message(quote)
        # `ci-nix junit`: the whole captured log
        [found] = diagnose.parse_log([f"building '{ATTACKER}'...", *lines])
        assert (found.drv, found.type, found.exit_code) == (ATTACKER, FailureType.BUILD, 1)
        # `ci-nix run`: Nix's error message, one internal-json record
        record = "@nix " + json.dumps({"action": "msg", "level": 0, "msg": "\n".join(lines)})
        [found] = diagnose.parse_log([record])
        assert found.drv == ATTACKER
        error = diagnose.build_error("\n".join(lines))
        assert error is not None and (error.drv, error.type) == (ATTACKER, FailureType.BUILD)
    # nor when every quoted line starts alike before Nix's words (learnt as a tool's prefix:
    # the rest was Nix's own), or holds a logger's record or field saying them
    forged = f"error: builder for '{VICTIM}' failed with exit code 42"
    for said in (f"x: {forged}", f"[test] {forged}", json.dumps({"msg": forged}),
                 f'level=error msg="{forged}"', f"For full logs, run 'nix log {VICTIM}'.",
                 f"tool: exit_code=Some(1) stderr={forged}",
                 # GitHub CLI's job and step before a timestamp: the builder's text too; a
                 # frame of Nix's no throw of a flake's
                 f"job\tstep\t2024-05-01T12:00:00.1234567Z {forged}",
                 "… while calling the 'throw' builtin",
                 # a logger's level or nom's glyph, no prefix of a line Nix indented (2.3)
                 f"INFO {forged}", f"┃ {forged}", f"━For full logs, run 'nix log {VICTIM}'.",
                 # Nix's pointer's words before another's report: none of Nix's after the quote
                 f"For full logs, run Cannot build '{VICTIM}'. Reason: builder failed"):
        for quote, intro in (("> ", "       last 3 log lines:"), ("", "; last 3 log lines:")):
            header = f"error: builder for '{ATTACKER}' failed with exit code 1"
            head = [f"{header};", intro] if quote else [header + intro]
            log = [f"building '{ATTACKER}'...", *head, *[f"       {quote}{said}"] * 3,
                   f"       For full logs, run 'nix log {ATTACKER}'."]
            assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER], (said, quote)
    # nor Nix 2.3's quote (indented, no "> ") of a builder's error line after a deeper one (an
    # error line shallower than its block's lines starts a failure of its own elsewhere)
    log = [f"building '{ATTACKER}'...",
           f"builder for '{ATTACKER}' failed with exit code 1; last 2 log lines:",
           "     at deeper", f"  {forged}", f"error: build of '{ATTACKER}' failed"]
    assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER]
    # nor behind a transport's timestamp or a tool's prefix on every line (2.3's quote: what
    # is taken off leaves the quote's indentation, and what follows it is the builder's)
    for wrap, said in (("2025-01-01T01:00:00.000+01:00 ",
                        f"job\tstep\t2024-05-01T12:00:00.1234567Z {forged}"),
                       ("builder_1  | ", f"INFO {forged}")):
        log = [f"building '{ATTACKER}'...",
               f"builder for '{ATTACKER}' failed with exit code 1; last 2 log lines:",
               f"  For full logs, run 'nix log {VICTIM}'.", f"  {said}",
               f"error: build of '{ATTACKER}' failed"]
        assert [d.drv for d in diagnose.parse_log([wrap + line for line in log])] == [ATTACKER]
    # nor a tool's report printed by the builder, whose indentation is taken off around Nix's
    # output (a YAML block scalar, Ansible's; a Rust error's causes, anyhow's and color-eyre's),
    # nor a markdown list's code span: dedented, the quoted line ended 2.3's quote, and the
    # builder's next line read as Nix's own
    for report in (["fatal: [h]: FAILED! => changed=true", "  stderr: |-", f"    {forged}"],
                   ["Error: x", "", "Caused by:", "    0: y", f"    1: {forged}"],
                   ["Error:", "   0: y", f"   1: {forged}"], ["- `-`", forged],
                   # (a line ending in ":" before a deeper "> ": a tool's intro to its quote of
                   # Nix's output elsewhere, AUDIT-190 row 6)
                   ["x:", f"     > {forged}"]):
        log = [f"building '{ATTACKER}'...",
               f"builder for '{ATTACKER}' failed with exit code 1; last {len(report)} log lines:",
               *(f"  {line}" for line in report), f"error: build of '{ATTACKER}' failed"]
        assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER], report
    # nor as copied from a page's HTML source ("&gt; " marks the quote there too): a builder's
    # comment or list marks after it were taken off with it, and the quote's line read as Nix's
    for said in (f"# {forged}", f"* {forged}", f"x.y (local-exec): {forged}"):
        log = [f"building '{ATTACKER}'...",
               f"error: builder for '{ATTACKER}' failed with exit code 1;",
               "       last 3 log lines:", *[f"       > {said}"] * 3,
               f"       For full logs, run 'nix log {ATTACKER}'."]
        page = ["<pre><code>", *map(html.escape, log), "</code></pre>"]
        assert [d.drv for d in diagnose.parse_log(page)] == [ATTACKER], said
        # (or from a page's text, its blanks no-break spaces: the intro was not read)
        spaced = [line.replace(" ", "\xa0") for line in log]
        assert [d.drv for d in diagnose.parse_log(spaced)] == [ATTACKER], said
    # nor in a log of one transport record a line (Docker's json-file, logcli's jsonl): the
    # quote is Nix's inside the records too (its intro was not read, nor a record in it)
    for head in ([f"error: builder for '{ATTACKER}' failed with exit code 1;",
                  f"       last {len(_NOISY)} log lines:"],
                 [f"builder for '{ATTACKER}' failed with exit code 1; last {len(_NOISY)} log "
                  "lines:"]):
        quote = "       > " if len(head) == 2 else "  "
        log = [f"building '{ATTACKER}'...", *head, *(quote + line for line in _NOISY),
               f"       For full logs, run 'nix log {ATTACKER}'."]
        docker = [json.dumps({"log": f"{line}\n", "stream": "stderr"}) for line in log]
        assert [d.drv for d in diagnose.parse_log(docker)] == [ATTACKER], head
    # nor a builder's line in nix-fast-build's verdict's shape (read as a CI system's verdict,
    # it ended 2.3's quote: a quoted pointer after it named victim, an "error:" failed anew)
    log = [f"building '{ATTACKER}'...",
           f"builder for '{ATTACKER}' failed with exit code 1; last 4 log lines:", "  ",
           "  x failed after 1s (rc=1)", f"  For full logs, run 'nix log {VICTIM}'.", "  error:",
           f"error: build of '{ATTACKER}' failed"]
    assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER]
    # nor a bar after a carriage return in a quoted line (the quote's "> " is before it: a quote
    # a copy cut short ends only at a line without the mark)
    log = [f"building '{ATTACKER}'...", f"error: builder for '{ATTACKER}' failed with exit code 1;",
           "       last 2 log lines:", "       > \r[1/0/3 built] x",
           f"       > [1/0/3 built] {forged}", f"       For full logs, run 'nix log {ATTACKER}'."]
    assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER]


# what a failing build can print as its last lines, which Nix quotes in its error
_TAIL_PARTS = st.sampled_from([
    f"error: builder for '{VICTIM}' failed with exit code 42", f"error: Cannot build '{VICTIM}'.",
    "Reason: builder failed with exit code 9.", *_FORGED[:3], "x: ", "[t] ", "web_1  | ", "> ",
    "  ", "   at deeper", '{"msg": "', '"}', 'level=error msg="', "\\n", "↵", "\\", "~~~",
    "::error::", "^[[31m", "last 3 log lines:", "For full logs, run 'nix log x'.", "victim> ",
    "… while evaluating", "2024-05-01T12:00:00.1234567Z ", "[1/0/3 built] ", "`", "'",
    "stderr=", "exit status 1: ", "\t", "… while calling the 'throw' builtin", "INFO ", "┃ "])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_TAIL_PARTS, min_size=1, max_size=5).map("".join), min_size=1,
                max_size=6), st.sampled_from(["2.3", "2.8", "2.29"]))
def test_no_last_lines_of_a_build_name_another_derivation(lines: list[str], nix: str) -> None:
    # a deeper line and then "error: builder for '…victim.drv'" in 2.3's quote forged victim's
    # failure (an error line shallower than its block's lines starts a failure of its own)
    quoted = [f"  {line}" if nix == "2.3" else f"       > {line}" for line in lines]
    head = {"2.3": [f"builder for '{ATTACKER}' failed with exit code 1; last {len(lines)} log "
                    "lines:"],
            "2.8": [f"error: builder for '{ATTACKER}' failed with exit code 1;",
                    f"       last {len(lines)} log lines:"],
            "2.29": [f"error: Cannot build '{ATTACKER}'.",
                     "       Reason: builder failed with exit code 1.",
                     f"       Last {len(lines)} log lines:"]}[nix]
    log = [f"building '{ATTACKER}'...", *head, *quoted,
           f"       For full logs, run 'nix log {ATTACKER}'."]
    assert [(d.drv, d.type) for d in diagnose.parse_log(log)] == [(ATTACKER, FailureType.BUILD)]


def test_a_builders_escaped_line_end_starts_no_line_of_nix() -> None:
    # `nix build -L` puts the builder's name before each of its lines: a "\n" it prints (as
    # text, or in a logfmt field) is no line end of Nix's log
    forged = f"error: builder for '{VICTIM}' failed with exit code 2"
    for said in (f"note\\n{forged}", f'level=info msg="x\\n{forged}"',
                 f"{{\"msg\": \"x\\n{forged}\"}}"):
        passed = [f"building '{ATTACKER}'...", f"attacker> {said}", "attacker> done"]
        assert diagnose.parse_log(passed) == []
        failed = [*passed, f"error: builder for '{ATTACKER}' failed with exit code 1"]
        assert [d.drv for d in diagnose.parse_log(failed)] == [ATTACKER]
    # nor is a prefix learnt past a builder's name: a builder prints the same start on most
    # lines of the log, and what follows it is still its own
    for start in ("foo ", "12 ", "[x] | "):
        passed = [f"building '{ATTACKER}'...", *[f"attacker> {start}{forged}"] * 30,
                  "attacker> done"]
        assert diagnose.parse_log(passed) == [], start
    # nor one in a failed build's log tail, where Nix quotes each of its lines with "> " (also
    # inside a logger's record)
    tail = [f"error: builder for '{ATTACKER}' failed with exit code 1;",
            "       last 1 log lines:", f"       > note\\n{forged}"]
    for log in (tail, [json.dumps({"line": line}) for line in tail]):
        assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER]
    # a logger's record with escaped line ends is still read (no builder's name before them)
    record = f'time=1 level=error msg="nix build failed:\\n{forged}"'
    assert [d.drv for d in diagnose.parse_log([record])] == [VICTIM]


def test_a_builders_backspaces_or_spelt_controls_never_take_its_name_away() -> None:
    # Nix passes a builder's backspaces on (only its carriage returns it reads): on a terminal
    # they erase the `name> ` before them. The normaliser reads backspaces and `cat -v`'s "^[",
    # "^M" as a terminal would, but never past a blank, nor a "^M" as a carriage return
    forged = f"error: builder for '{VICTIM}' failed with exit code 2"
    for erase in ("\b" * 12, "x\b\b\b\b\b\b\b\b\b\b", "^[[K^M", "^[[2K^M^G", "^[^H" * 12):
        passed = [f"building '{ATTACKER}'...", f"attacker> {erase}{forged}", "attacker> done"]
        assert diagnose.parse_log(passed) == [], erase
        assert [line.builder for line in logshape.normalise(passed)][1] == "attacker", erase


def test_a_builders_wrap_mark_takes_no_line_of_nix_in() -> None:
    # a viewer's mark at the end of a wrapped line's piece ("↵", "⏎") joins the next line to it;
    # a builder printing one at its line's end made Nix's next line (also behind a transport's
    # timestamp) the rest of the builder's: 2.29+'s failure named no derivation, 2.26's lost
    # its exit code
    said = {"2.26": [f"error: builder for '{VICTIM}' failed with exit code 1;",
                     f"       For full logs, run 'nix log {VICTIM}'."],
            "2.29": [f"error: Cannot build '{VICTIM}'.",
                     "       Reason: builder failed with exit code 1."]}
    for mark, stamp, (version, nix) in itertools.product(
            ("↵", "⏎"), ("", "2024-05-01T12:00:00.1234567Z "), said.items()):
        log = [f"building '{ATTACKER}'...", f"building '{VICTIM}'...", f"attacker> x{mark}",
               *nix, f"attacker> y{mark}", "attacker> done"]
        found = diagnose.parse_log([stamp + line for line in log])
        assert [(d.drv, d.exit_code) for d in found] == [(VICTIM, 1)], (mark, stamp, version)
        # and a builder's line stays as it printed it, mark and all
        assert [line.text for line in logshape.normalise(log)][-2] == f"y{mark}"
    # a quoted-printable soft break (a mail archive's: "=" ending a line, "=3D" showing the
    # encoding, every line short) at a builder's line's end took Nix's next line in alike
    short = "/nix/store/" + "b" * 32 + "-v.drv"
    report = [f"error: Cannot build '{short}'.", "       Reason: builder failed with exit code 1."]
    padded = "v> " + "x" * 70 + "="  # (at an encoder's width)
    for forged in (["v> x=3D="], ["v> x=3D", padded]):
        log = [f"building '{short}'...", *forged, *report]
        assert [(d.drv, d.exit_code) for d in diagnose.parse_log(log)] == [(short, 1)], forged
    # nor its next line, its own "error: …": a green log's failure
    assert diagnose.parse_log([f"building '{short}'...", padded, "v> error: expected"]) == []
    # nor is a log with an "=" that starts no escape quoted-printable (the encoding writes each
    # "=" as "=3D"): a builder's "=3D" beside its flags made Nix's "=C3=A9" a character
    log = ["v> CFLAGS=-O2 x=3D", "error: the value 'K=C3=A9' is bad"]
    assert [line.text for line in logshape.normalise(log)] == [
        "CFLAGS=-O2 x=3D", "error: the value 'K=C3=A9' is bad"]


def _cpu(call: Callable[[], object], under: float = 0.0) -> float:
    """The least CPU time of three runs (another process's time slice is not ours), or of
    fewer: the runs stop at the first below `under`, where the least of three is too."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
        if best < under:
            break
    return best


def _costs(small: Callable[[], object], big: Callable[[], object]) -> tuple[float, float]:
    """CPU time of a call and of one on a bigger input (mostly eight times); the second's runs
    stop at the first within 24 times the first's, the tests' bound: the verdict is the least
    of three runs', at a third of the cost where it passes."""
    least = _cpu(small)
    return least, _cpu(big, under=24 * max(least, 1e-3))


# One line a build or a `throw` prints, n characters long, that made a regex of the classifier
# try each of its many starts against the rest of the line (time quadratic in its length)
_LINES: dict[str, Callable[[int], str]] = {
    "digits": lambda n: "1" * n,  # "(?P<n>\d+) dependenc…" from every digit
    # a 2.29+ block's subject copied without quotes: from each "Cannot build " a name, then
    # blanks, to a "Reason:" that never comes
    "unquoted cannot-build subjects": lambda n: "Cannot build x" + " \t" * (n // 4) + (
        "Cannot build " + "y" * 250 + ". ") * (n // 530),
    "quoted paths": lambda n: f"'{ATTACKER}' " * (n // 60),  # "'…drv'[^\n]*?timed out"
    "backquoted names": lambda n: ("`/nix/store/" + "a" * 32 + "-x") * (n // 45),
    # "'…(?:[!^][^'’\s]*+)?'": from each "!" after a path to the run's end (no quote closes)
    "outputs after paths": lambda n: ("!`/nix/store/" + "a" * 32 + "-x") * (n // 46),
    "hash mismatches": lambda n: (f"hash mismatch in fixed-output derivation '{VICTIM}':"
                                  * (n // 90)),
    "blank lines": lambda n: "\n" * n,  # "^\s*specified:" from every line start
    # "value is .* while .* was expected": every pair of places (cubic)
    "evaluator words": lambda n: "value is x while " * (n // 17),
    "string commands": lambda n: "\x1b_bk;t=1\x07" * (n // 10) + "\x1b_" * (n // 4),
    "quote marks": lambda n: "> " * (n // 2),
    # what a copy or transport left of a terminal's codes and of UTF-8: colour codes without
    # their ESC (one taken, then any), `cat -v`'s carets, backspaces, Windows-1252 mojibake
    "bare codes": lambda n: "[1;" * (n // 3) + "[31;1m" + "[1;2" * (n // 4),
    "carets": lambda n: "^[[" * (n // 3),
    "backspaces": lambda n: "x\b\b" * (n // 3),
    "mojibake": lambda n: "â€" * (n // 2) + "â”ƒ",
    # "path ‘[^'’]+’": from each opening quote to the line's end (a `throw` of its own text)
    "opened quotes": lambda n: "path ‘" * (n // 6),
    "opened names": lambda n: "a ‘" * (n // 3),
    "opened urls": lambda n: "unable to download `" * (n // 20),
    # a position "at «…»:L:C" (or "at <…>"): from each "at «" to the line's end
    "opened positions": lambda n: "at «" * (n // 4),
    "opened angles": lambda n: "at <" * (n // 4),
    # "…profile(?:[-.][^'’/.]*)*": every way to cut the dashes in two (exponential: 40 dashes
    # held a run for good, deaf to SIGTERM)
    "profile dashes": lambda n: "path ‘profile" + "-" * (n // 1000) + "/",
    # bytes written as escapes: lead bytes each short of its continuations
    "byte escapes": lambda n: "\\E2\\80" * (n // 6),
    # nix-build's recap cut inside its list of derivations: every path of the list
    "recap lists": lambda n: "build of '/nix/store/a" + "', '/nix/store/a" * (n // 15) + "'x",
    # a C assertion's "Assertion `…' failed": from each "Assertion " to the text's end
    "assertions": lambda n: "Assertion `" * (n // 2),
    # "/nix/var/nix/<path>: <strerror>": from each start of Nix's state directory on
    "state paths": lambda n: "/nix/var/nix/" * (n // 13),
    # the store optimiser's "cannot link '/nix/store/.links/…' to '…': …" with no quote closing
    "optimiser links": lambda n: "cannot link '/nix/store/.links/a' to '" * (n // 40),
    # and into its links, from any path: from each "cannot link '" to a quote not closing it
    "links into": lambda n: "cannot link 'a' to 'a" * (n // 21) + "cannot link '" + "a" * n,
    # an option's name closed by NixOS' quote without its opening: from each name after a
    # blank or backtick, along its dots, to a quote that never comes
    "option tails": lambda n: (" `" + "a." * 40) * (n // 82),
    # a builder failure's header ending a line: from each "error: builder for '" to its quote
    "builder headers": lambda n: (f"x error: builder for '{ATTACKER}' failed with exit code 1;"
                                  * (n // 100)),
    # libstore's InvalidPath without "error:": from each "path '/nix/store/" along a name to
    # an " is not valid" that never comes
    "invalid paths": lambda n: ("path '/nix/store/" + "a" * 600 + "' is not") * (n // 630),
    # a copy's lines run together on one line (Nix's indentation after the blank that stood for
    # a line's end, runs of blanks before words that are not Nix's): split into thousands of
    # lines, each read once
    "run together": lambda n: "y " * 80 + ("x" + " " * 8 + "For full logs, run" + " " * 9 + "a")
                              * (n // 37),
    # nom's verdict with its glyph left out (a word starts it): from each word along a name and
    # a host to the "after ⏱" that never comes
    "nom verdicts": lambda n: ("x on " + "y" * 300 + " failed with exit code 1 after ")
                              * (n // 336),
    # Nix's heads in a writer's line, eaten into (the general reader): each read to the line's
    # end, only the first few; and subjects whose quote never closes
    "eaten heads": lambda n: ("x ilder for '/nix/store/" + "a" * 32 + "-x.drv' y ") * (n // 60),
    "open subjects": lambda n: ("1 dependencies of derivation '/nix/store/" + "a" * 40)
                               * (n // 81),
    # a value's type the evaluator names ("Expected `…` to be a lambda but found a set"): from
    # each "Expected " along the line to a " to be a " whose " but found" never comes
    "type expectations": lambda n: "Expected x" + " to be a b" * (n // 10),
    # the evaluator's message alone on a line: a position tried after each " at " in it
    "lone messages": lambda n: ("syntax error, unexpected " + " at x:1" * 60 + "\n"
                                + "attribute '" + "a" * 290 + "' missing at " + "x:1" * 300
                                + "\n") * (n // 1700),
}
# prefixes a transport or wrapper stacks on a line, thousands deep: each taken away copied the
# rest of the line (quadratic, but only visible from some 100 kB on); and a tool's field that
# relays a child's output unquoted ("stderr=building …"), named thousands of times without a
# blank: each name looked to the line's end for one; more names and dots than a Terraform
# provisioner's address has, never ending in its ": "
_STACKED = ("May 01 12:00:00 host unit[1]: ", "┃ ERROR ", "x.stderr=", "a." * 40 + "b (local-exec)",
            # a tool's relay of its child's stderr, again and again (a flake's `throw` of them:
            # each split read the rest again, a thousand ran past Python's recursion limit)
            "a stderr=b c ")


def test_a_line_of_stacked_prefixes_takes_time_linear_in_its_length() -> None:
    def normalise(n: int) -> Callable[[], object]:
        lines = [prefix * (n // len(prefix)) + "error: x" for prefix in _STACKED]
        return lambda: logshape.normalise(lines)
    small, big = _costs(normalise(40_000), normalise(320_000))
    assert big < 24 * max(small, 1e-3), (small, big)


@pytest.mark.parametrize("name", list(_LINES))
def test_classifying_a_line_takes_time_linear_in_its_length(name: str) -> None:
    # in-process, against itself: eight times the text may take eight times as long, and
    # noise some more, but not the 64 times a regex quadratic in it takes
    def classify(n: int) -> Callable[[], object]:
        text = "error: " + _LINES[name](n) + "!"
        return lambda: (diagnose.parse_log(text.split("\n")), diagnose.diagnose_eval(text),
                        diagnose.build_error(text), diagnose.explained_by_log(
                            diagnose.Diagnosis(FailureType.BUILD, diagnose.Kind.BUILDER, "x"),
                            ["trying https://x/y", *text.split("\n")]))
    small, big = _costs(classify(3000), classify(24000))
    assert big < 24 * max(small, 1e-3), (name, small, big)



def test_many_headers_without_their_reason_take_time_linear_in_the_log() -> None:
    # each "Cannot build '…'." whose Reason the log leaves out looks on for a Reason quoted apart
    # from it (heldout-267): only to the next line saying something failed, so thousands of such
    # headers, a sentence after each and one Reason at the end, are read about once
    def classify(n: int) -> Callable[[], object]:
        log = [line for i in range(n) for line in (
            f"error: Cannot build '/nix/store/{i:032d}-x.drv'.", "a sentence about it")]
        return lambda: diagnose.parse_log([*log, "(`Reason: builder failed with exit code 1`)"])
    small, big = _costs(classify(300), classify(2400))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_a_builders_many_verdicts_it_went_on_after_take_time_linear_in_its_lines() -> None:
    # every line of one builder a verdict of diagnose.BUILDERS_VERDICTS, stdenv's next phase at
    # the end (so none is one): each line is looked at about once, not with every line after it
    def classify(n: int) -> Callable[[], object]:
        shaped = logshape.normalise([*(f"hello> make: *** [Makefile:{i}: all] Error 2"
                                       for i in range(n)), "hello> Running phase: installPhase"])
        return lambda: diagnose._builders_verdict(shaped)
    small, big = _costs(classify(3000), classify(24000))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_a_records_many_escaped_line_ends_take_time_linear_in_its_length() -> None:
    # a tool's record of its child's output (Ansible's "stderr", a JSON or logfmt "msg") holding
    # thousands of escaped line ends, as an unprefixed builder (`nix-build`) can print one: the
    # captured line was searched again for Nix's "last N log lines:" for each line the record
    # held (a record of 1 MB: most of an hour)
    def classify(n: int) -> Callable[[], object]:
        log = ['fatal: [h]: FAILED! => {"stderr": "' + "a\\n" * n + 'error: x"}']
        return lambda: diagnose.parse_log(log)
    small, big = _costs(classify(1000), classify(8000))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_a_rule_of_box_glyphs_takes_no_time_exponential_in_its_length() -> None:
    # nom's status line was read as glyph runs repeated: every way to split a rule that no
    # "∑ " follows was tried (26 glyphs: seconds; a rule of 40 at a log's end: hours, deaf to
    # SIGTERM, in normalising every line and in the fallback's look at the last one)
    def classify(n: int) -> Callable[[], object]:
        return lambda: diagnose.parse_log(["built fine", "─" * n, "┣" + "━" * n + " x"])
    small, big = _costs(classify(6), classify(26))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_many_failures_of_one_build_take_time_linear_in_its_log() -> None:
    # the build's whole output was cleaned again for each failure reported of it (in a plain
    # `-L` log a builder's relayed `@nix` error records print as Nix's own lines)
    cut = "/nix/store/" + "a" * 32 + "-x-1.0.drv"

    def classify(n: int) -> Callable[[], object]:
        return lambda: diagnose.parse_log([*["x> output"] * 4, f"error: Cannot build '{cut}'."] * n)
    small, big = _costs(classify(300), classify(2400))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_a_log_of_nix_eval_jobs_records_takes_time_linear_in_its_failures() -> None:
    # each failure was looked for in every record of the log (nixpkgs' evaluation: thousands)
    def classify(n: int) -> Callable[[], object]:
        raw = [json.dumps({"attr": f"p{i}", "error": f"error: the frobnicator {i} gave up"},
                          separators=(",", ":")) for i in range(n)]
        found = [diagnose.Diagnosis(FailureType.OTHER, diagnose.Kind.ERROR,
                                    f"the frobnicator {i} gave up", log_line=i + 1)
                 for i in range(n)]
        return lambda: diagnose._evaluated_per_jobs(found, raw)
    small, big = _costs(classify(500), classify(4000))
    assert big < 24 * max(small, 1e-3), (small, big)
    [retyped] = diagnose.parse_log(['{"attr":"p","error":"error: the frobnicator gave up"}'])
    assert retyped.type is FailureType.EVAL


def test_a_long_error_block_takes_time_linear_in_its_lines() -> None:
    # each line joining a block measured the indentation of all the block's lines again
    def classify(n: int) -> Callable[[], object]:
        return lambda: diagnose.parse_log(["error:"] * n)
    small, big = _costs(classify(1200), classify(9600))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_a_normalised_line_holds_no_dict() -> None:
    # `ci-nix junit` holds several lists of them, one entry a captured line (a 69 MB log of 5 M
    # lines peaked at 2.7 GB; a __dict__ each was some 450 MB of it)
    line = logshape.Line("error: x", 0)
    assert not hasattr(line, "__dict__")
    assert dataclasses.replace(line, builder="x").builder == "x"


def test_a_log_of_lines_broken_at_one_width_takes_time_linear_in_its_lines() -> None:
    # every line as long as the longest: read as a terminal's wrap, all of them continue one
    # line, whose end was searched for a cut store path again at each line joined to it
    line = " ".join(f"/nix/store/{'a' * 32}-p{i}" for i in range(6))

    def classify(n: int) -> Callable[[], object]:
        return lambda: diagnose.parse_log([line] * n)
    small, big = _costs(classify(200), classify(1600))
    assert big < 24 * max(small, 1e-3), (small, big)

# What a build can put into its output: controls, a lone surrogate (a JSON "\ud800" in an
# internal-json record), terminal escapes (CSI, a long one, OSC, DCS), a BOM, bidi overrides,
# DEL and C1, carriage-return storms, CI log commands, and Nix's own words around a derivation
_ODD = st.sampled_from([
    "\x00", "\ud800", "\udfff", "\x1b[31;1m", "\x1b[" + "1;" * 300 + "m", "\x1b]8;;http://x\x07",
    "\x1b]0;title\x1b\\", "\x1bP1$r0m\x1b\\", "\x1b_bk;t=1745322209921\x07", "\ufeff",
    "\u202e", "\u2066", "\x7f", "\x85",
    "\r" * 20, "\r\n", "\x0b", "\x0c", "\u2028", "::error::x", "::stop-commands::t",
    "##[error]x", "##[group]", "section_start:1:x\r\x1b[0K", "`", "]]>", "<![CDATA[", "&#0;",
    "@nix ", '{"msg":"', "\\n", "error: ", "> ", "hello> ", f"'{ATTACKER}'", "failed",
    "builder for ", "with exit code 1", "\t", " ", "a", "\udcff"])
_ODD_LINES = st.lists(st.lists(_ODD, max_size=12).map("".join), max_size=12)


@settings(max_examples=150, deadline=None)
@given(_ODD_LINES)
def test_odd_bytes_never_raise_and_every_report_stays_what_it_is(lines: list[str]) -> None:
    # a failed line of each log at the end, so that every writer has a case to write
    log = [*lines, f"error: builder for '{ATTACKER}' failed with exit code 1;",
           "       last 2 log lines:", *(f"       > {line}" for line in lines[-2:])]
    # `ci-nix run` reads the same text from Nix's internal-json (a JSON "\\ud800" is a lone
    # surrogate once read)
    buildlog = build.BuildLog()
    for line in log:
        buildlog.feed(_nix_error(line))
        buildlog.feed(line)
    assert ATTACKER in buildlog.errors
    cases = junit_command.log_cases("build.log", log)
    assert cases
    report = RunReport(suites=("build.log",), cases=tuple(cases))
    xml = io.StringIO()
    junit.write(report, xml)
    ET.fromstring(xml.getvalue().encode())  # well-formed: no raw control, no lone surrogate
    out = io.StringIO()
    github.write_annotations(report, out)
    # every line the runner reads (it splits at \n, \r\n and a lone \r) is one ci-nix wrote:
    # an annotation, a group, or inside stop-commands whose token the text cannot know
    stopped = None
    for line in re.split(r"\r\n|\r|\n", out.getvalue().rstrip("\n")):
        if stopped is not None:
            stopped = None if line == stopped else stopped
            assert "##[" not in line
            continue
        assert line.startswith(("::error ", "::group::", "::endgroup::", "::stop-commands::"))
        if line.startswith("::stop-commands::"):
            stopped = "::" + line.removeprefix("::stop-commands::") + "::"
    sections = io.StringIO()
    gitlab.write(report, sections, now=1)
    text = sections.getvalue()
    # a marker needs ESC and a carriage return, which the data only has as visible escapes
    sections_written = len(failures.groups(report.cases))
    assert text.count("\x1b[0Ksection_start:") == text.count("\x1b[0Ksection_end:") \
        == sections_written and text.count("\r") == 2 * sections_written
    assert "\ud800" not in text and "\x00" not in text


def test_an_evaluation_error_naming_another_derivation_leads_no_group() -> None:
    # `throw "error: builder for '${victim.drvPath}' failed …"`: the attribute that threw fails,
    # and the victim's real failure still leads what failed because of it
    said = diagnose.eval_failure(f"error: builder for '{VICTIM}' failed with exit code 1")
    thrower = Case("f", "packages.x86_64-linux.attacker", Status.FAILED, failure=said)
    victim = Case("f", "packages.x86_64-linux.victim", Status.FAILED, drv_path=VICTIM,
                  failure=Failure(FailureType.BUILD, "builder for victim-2.0.drv failed with exit "
                                  "code 2", drv=VICTIM))
    needing = Case("f", "packages.x86_64-linux.app", Status.FAILED, drv_path=ATTACKER,
                   failure=Failure(FailureType.DEPENDENCY, "dependency failed: victim-2.0.drv",
                                   drv=ATTACKER, cause=VICTIM))
    for cases in ([victim, needing, thrower], [thrower, victim, needing]):
        leads = {group.lead.name: [d.name for d in group.dependents]
                 for group in failures.groups(cases)}
        assert leads == {"packages.x86_64-linux.victim": ["packages.x86_64-linux.app"],
                         "packages.x86_64-linux.attacker": []}


def test_a_thrown_message_is_no_problem_of_the_machine() -> None:
    # a flake's `throw` in Nix's (2.13+) and Lix's frames: the attribute fails, the run goes on
    full = "error: writing to file: No space left on device"
    assert diagnose.host_problem(full, "/tmp") is not None
    for frame in ("… while calling the 'throw' builtin", "… caused by explicit throw"):
        thrown = (f"error:\n       … while evaluating the attribute 'packages.x86_64-linux.x'\n"
                  f"\n       {frame}\n         at /nix/store/{'a' * 32}-source/flake.nix:5:9:\n"
                  f"\n       {full}")
        assert diagnose.host_problem(thrown, "/tmp") is None


def test_a_thrown_message_naming_nix_or_the_machine_is_the_flakes_throw() -> None:
    # Nix 2.4-2.12 print `throw "No space left on device"` as its message alone; the machine's
    # own errors are Nix's SysError, "<what>: <strerror>"
    assert diagnose.host_problem("error: No space left on device\n", "/tmp") is None
    assert diagnose.host_problem("error: opening file '/x': Too many open files", "/tmp")
    # Nix 2.13+ and Lix frame a throw (and an abort): whatever its text names, the innermost
    # frame says the flake threw it; `eval`, never Nix's own failure, a download or a cache
    frames = ("… while calling the 'throw' builtin", "… caused by explicit throw",
              "… while calling the 'abort' builtin")
    for frame in frames:
        for said in ("No space left on device", "cannot connect to socket at '/nix/var'",
                     "the binary cache is down", "unable to download 'https://x/y': 404",
                     "Permission denied",
                     # a line of the message naming another derivation's build (as Nix 2.26
                     # prints `throw "x\nerror: builder for …"`: indented as the message)
                     f"x\n       error: builder for '{VICTIM}' failed with exit code 42",
                     # and a line of it that looks like a frame of Nix's
                     f"x\n       … while evaluating\n       error: Cannot build '{VICTIM}'.",
                     # or that a transport's or tool's wrapping would say (a glued progress
                     # bar, a logger's record): the message's lines are its text
                     f"x\n       [1/0/3 built] error: builder for '{VICTIM}' failed",
                     f'x\n       level=error msg="error: builder for \'{VICTIM}\' failed"',
                     # or a tool's relay of its child's stderr (also on the error line)
                     f"x\n       y stderr=error: builder for '{VICTIM}' failed with exit code 2",
                     f"y stderr=error: builder for '{VICTIM}' failed with exit code 2",
                     # or Nix's pointer to a build's log (printed under a build's failure only)
                     f"x\n       For full logs, run 'nix log {VICTIM}'.",
                     # or a logger's field quoted on its first line, its line end escaped
                     f'stderr: "x\\nerror: builder for \'{VICTIM}\' failed with exit code 42"',
                     # or a tool's report whose indentation is taken off around Nix's output:
                     # a YAML block scalar (Ansible's), a Rust error's causes (anyhow's); Nix
                     # 2.26 (captured) indents the message's further lines by seven
                     f"x\n         stderr: |-\n           error: builder for '{VICTIM}' failed",
                     f"x\n\n       Caused by:\n           0: y\n           1: error: builder for "
                     f"'{VICTIM}' failed with exit code 42"):
            thrown = (f"error:\n       … while evaluating the attribute 'packages.x86_64-linux.x'"
                      f"\n\n       {frame}\n         at /nix/store/{'a' * 32}-source/flake.nix:5:9:"
                      f"\n\n       error: {said}")
            found = diagnose.diagnose_eval(thrown)
            assert (found.type, found.kind) == (FailureType.EVAL, diagnose.Kind.THROW), said
            assert found.hint is None
            # (`ci-nix junit` on that output: the same)
            [found] = diagnose.parse_log(thrown.split("\n"))
            assert (found.type, found.drv) == (FailureType.EVAL, None), said
    # a message starting with a line end, as Nix 2.26 printed it (captured): "error:" alone,
    # then the flake's text, a progress bar's glued line among it
    thrown = ("error:\n       … while calling the 'throw' builtin\n         at «string»:1:12:\n\n"
              f"       error:\n\n       [1 built]error: builder for '{VICTIM}' failed with exit "
              "code 42")
    assert [(d.type, d.drv) for d in diagnose.parse_log(thrown.split("\n"))] == [
        (FailureType.EVAL, None)]
    # a message of comment lines behind a transport's timestamp (GitHub's): its marks, with the
    # message's indentation, were learnt as a tool's prefix and its text read as Nix's lines
    thrown = ("error:\n       … while calling the 'throw' builtin\n\n       error: ```\n"
              f"       # let x = 1;\n       # error: builder for '{VICTIM}' failed with exit code "
              "42\n       # x\n       ```")
    stamped = [f"2024-05-01T12:00:00.1234567Z {line}" for line in thrown.split("\n")]
    assert [(d.type, d.drv) for d in diagnose.parse_log(stamped)] == [(FailureType.EVAL, None)]
    # nor in a log of one transport record a line (Docker's json-file): a relay in the message
    thrown = ("error:\n       … while calling the 'throw' builtin\n\n       error: x\n       "
              f"y stderr=error: builder for '{VICTIM}' failed with exit code 2")
    docker = [json.dumps({"log": f"{line}\n", "stream": "stderr"}) for line in thrown.split("\n")]
    assert [(d.type, d.drv) for d in diagnose.parse_log(docker)] == [(FailureType.EVAL, None)]
    # nor behind a wrapper's prefix (nom's, known), a tool's or a viewer's not learnt yet
    # (compose's, line numbers), in one record holding the whole stderr (logfmt's, a logging
    # agent's JSON), in a page's HTML source or a quote glued to its lines: the message is
    # followed past them (AUDIT-152 row 13), also on its error line
    # (on the error line itself only what the error line's own guard did not already see)
    for said, wrappings in (("x\n       ", "nom compose numbers logfmt record html quote"),
                            ("", "compose numbers html")):
        lines = ("error:\n       … while calling the 'throw' builtin\n\n       error: "
                 f"{said}y stderr=error: builder for '{VICTIM}' failed with exit code 2"
                 ).split("\n")
        escaped = "\\n".join(lines).replace('"', '\\"')
        wrapped = {
            "nom": [f"┃ {line}" for line in lines],
            "compose": [f"web_1  | {line}" for line in lines],
            "numbers": [f"{at:4d} {line}" for at, line in enumerate(lines, 1)],
            "logfmt": [f'time=2024-05-01T12:00:00Z level=error msg="{escaped}"'],
            "record": [json.dumps({"severity": "ERROR", "message": "\n".join(lines)})],
            "html": ["<pre><code>" + html.escape(lines[0])]
            + [re.sub(r"^ +", lambda m: "&nbsp;" * len(m[0]), html.escape(line))
               for line in lines[1:]],
            "quote": [f">{line}" for line in lines]}
        for name in wrappings.split():
            assert [(d.type, d.drv) for d in diagnose.parse_log(wrapped[name])] == [
                (FailureType.EVAL, None)], (said, name)
    # the throw's message failing to evaluate is an error of its own (its frame is innermost)
    failed = ("error:\n       … while calling the 'throw' builtin\n\n       … while evaluating "
              "the error message passed to builtin.throw\n\n       error: cannot coerce a set to "
              "a string")
    assert diagnose.diagnose_eval(failed).kind is diagnose.Kind.TYPE


def test_the_lines_of_a_warning_after_its_first_say_no_error() -> None:
    # Nix 2.26 (captured: `nix eval --expr 'builtins.warn "deprecated thing\nerror: …" 1'`)
    # indents a warning's further lines to its text; a flake's warning says what it likes
    warned = ["evaluation warning: deprecated thing",
              "                    error: this is part of a warning", "",
              "                    builder for '" + VICTIM + "' failed with exit code 1", "1"]
    assert diagnose.parse_log(warned) == []
    assert junit_command.log_cases("build.log", [f"  {line}" for line in warned]) == []
    said = ["warning: deprecated thing", "         error: this is part of a warning"]
    assert diagnose.parse_log(said) == []
    # what comes after the warning is read as ever; a line less indented ends it
    failed = diagnose.parse_log([*warned, "error: boom", *said, "        error: bang"])
    assert [(d.type, d.message) for d in failed] == [(FailureType.OTHER, "boom"),
                                                     (FailureType.OTHER, "bang")]


# What a builder whose tests pass printed (a test suite's own failures, Nix's words forged)
_NOISY = ["running tests", "error: this is expected test output",
          f"test_hash: hash mismatch in fixed-output derivation '{VICTIM}':",
          "  specified: sha256-AAAA", "  got:       sha256-BBBB",
          "test_timeout ... timed out after 5 seconds (expected)",
          f"error: builder for '{VICTIM}' failed with exit code 1",
          f"Cannot build '{VICTIM}'.", "       Reason: builder failed with exit code 1.",
          "test_crash FAILED", "Killed", "Traceback (most recent call last):",
          '  File "x.py", line 1, in <module>', "ValueError: expected",
          "sh: foo: command not found", "Segmentation fault (core dumped)",
          "[1/0/3 built] error: a progress bar the builder drew",
          # a tool's relay of a child's stderr (omnix's shape), printed by the builder
          f"tool: exit_code=Some(1) stderr=error: builder for '{VICTIM}' failed with exit code 2",
          f"nix build: exit status 1: error: Cannot build '{VICTIM}'.",
          f"job\tstep\t2024-05-01T12:00:00.1234567Z error: Cannot build '{VICTIM}'.",
          # a Nix tool's test suite printing the evaluator's messages it expects
          # (diagnose._EVALUATOR_SAYS reads them without "error:" outside a builder's lines)
          "attribute 'foo' missing", "`undefined variable 'pkgs'`",
          "# function 'f' called without required argument 'x'",
          "value is null while a set was expected", "# infinite recursion encountered",
          "All 12 tests passed"]


def test_a_successful_runs_log_reports_no_failure_from_its_builders_output() -> None:
    # as Nix 2.8 and 2.26 printed a successful `nix build -L` and `nix flake check -L` of that
    # builder, and `--log-format internal-json` (captured; the builder's lines as above)
    drv = "/nix/store/" + "f" * 32 + "-noisy-1.0.drv"
    marked = [f"noisy> {line}" for line in _NOISY]
    record = {"action": "start", "fields": [drv, "", 1, 1], "id": 7, "level": 3,
              "text": f"building '{drv}'", "type": 105}
    logs = {
        "2.8 -L": [f"building '{drv}'...", *marked],
        "2.26 -L": ["this derivation will be built:", f"  {drv}", f"building '{drv}'...",
                    *marked],
        "2.26 flake check": ["evaluating flake...", "checking flake output 'checks'...",
                             "checking derivation checks.x86_64-linux.noisy...",
                             f"derivation evaluated to {drv}", "running 1 flake checks...",
                             f"building '{drv}'...", *marked],
        "internal-json": ["@nix " + json.dumps(record),
                          *(_line(7, line) for line in _NOISY), '@nix {"action":"stop","id":7}'],
    }
    # and a terminal's recording of the -L run (asciinema), its chunks ending anywhere: a line's
    # `noisy> ` may come in an event before its words
    # and Docker's json-file log of it, a record a line (`docker logs` reads them so)
    logs["docker"] = [json.dumps({"log": f"{line}\n", "stream": "stderr"})
                      for line in logs["2.26 -L"]]
    # and behind GitHub's timestamps, in a page's HTML source, under a progress bar Nix redrew
    logs["timestamped"] = [f"2024-05-01T12:00:00.1234567Z {line}" for line in logs["2.26 -L"]]
    logs["page"] = ["<pre><code>", *map(html.escape, logs["2.26 -L"]), "</code></pre>"]
    logs["redrawn"] = [f"\r\x1b[K[1/0/3 built] building\r\x1b[K{line}" for line in logs["2.26 -L"]]
    # and a viewer's wrap of a long line, its rest on a captured line of its own
    logs["wrapped"] = [part for line in logs["2.26 -L"]
                       for part in ([line] if len(line) < 80 else [line[:60] + "↵", line[60:]])]
    shown = "\r\n".join(logs["2.26 -L"]) + "\r\n"
    logs["recorded"] = [json.dumps({"version": 2, "width": 80, "height": 24}),
                        *(json.dumps([0.1 * k, "o", shown[k:k + 23]])
                          for k in range(0, len(shown), 23))]
    for shape, log in logs.items():
        assert diagnose.parse_log(log) == [], shape
        assert junit_command.log_cases("build.log", log) == [], shape
    # nor, where a CI system's verdict fails the job anyway, a builder's line in Hydra's intro
    # to a derivation's log page (that derivation was blamed for the verdict)
    log = [*logs["2.26 -L"], f"noisy> Below is the build log (raw) of derivation {VICTIM}.",
           "##[error]Process completed with exit code 1."]
    assert [d.drv for d in diagnose.parse_log(log)] == [None]
    # nor Nix's pointer in a build-log record (internal-json: Nix's own come in error records),
    # nor a nom box run together on a builder's line behind a prefix longer than a tool's
    # (kubectl's and BuildKit's around GitHub's timestamps): AUDIT-190 rows 1 and 2
    pointer = f"For full logs, run 'nix log {VICTIM}'."
    assert diagnose.parse_log(["@nix " + json.dumps(record), _line(7, pointer)]) == []
    box = "┃ x " * 3 + f"┃        > error: builder for '{VICTIM}' failed ┃        {pointer}"
    log = [f"[pod/ci-7d9f4/nix] 2024-05-01T12:00:0{n}.000000001Z #11 0.{n}74 "
           f"2024-05-01T12:00:00.1234567Z {line}"
           for n, line in enumerate([f"building '{drv}'...", f"noisy> {box}", "All passed"])]
    assert diagnose.parse_log(log) == []
    # nor a code span a builder's two records hold between them (read as one a hard wrap broke),
    # nor its records of one width (read as a terminal's wrap and joined into Nix's text):
    # AUDIT-190 rows 4 and 5
    span = ["`failed to start SSH connection to 'victim'", "` was expected"]
    wide = [f"error: builder for '{VICTIM}' failed with exit code 42 ".ljust(200, "x"),
            *["y" * 200] * 2]
    for lines in (span, wide):
        log = ["@nix " + json.dumps(record), *(_line(7, line) for line in lines)]
        assert diagnose.parse_log(log) == [], lines
    # nor an escaped line end in a builder's line behind the progress bar Nix redrew (its name
    # after the bar's "\x1b[K", no blank): read as a line end, the rest was Nix's (row 7)
    escaped = f"noisy> x\\nerror: builder for '{VICTIM}' failed with exit code 42"
    log = [f"\r\x1b[K[1/0/3 built] building\r\x1b[K{line}"
           for line in (f"building '{drv}'...", escaped)]
    assert diagnose.parse_log(log) == []


# every hostile line at once in a failing build's quoted tail (AUDIT-110 row 14): _NOISY, Nix's
# pointer, a level's, a relay's, an encoder's and a verdict's shapes
_HOSTILE = [*_NOISY, f"For full logs, run 'nix log {VICTIM}'.",
            f"INFO error: builder for '{VICTIM}' failed with exit code 42",
            f"x stderr=error: builder for '{VICTIM}' failed with exit code 42", "x" * 70 + "=",
            "x failed after 1s (rc=1)"]
_HOSTILE_TAILS = {
    "2.3": [f"building '{ATTACKER}'...", f"builder for '{ATTACKER}' failed with exit code 1; "
            f"last {len(_HOSTILE)} log lines:", *(f"  {line}" for line in _HOSTILE),
            f"error: build of '{ATTACKER}' failed"],
    "2.8": [f"building '{ATTACKER}'...",
            f"error: builder for '{ATTACKER}' failed with exit code 1;",
            f"       last {len(_HOSTILE)} log lines:", *(f"       > {line}" for line in _HOSTILE),
            f"       For full logs, run 'nix log {ATTACKER}'."],
    "2.29": [f"building '{ATTACKER}'...", f"error: Cannot build '{ATTACKER}'.",
             "       Reason: builder failed with exit code 1.",
             f"       Last {len(_HOSTILE)} log lines:", *(f"       > {line}" for line in _HOSTILE)]}


@pytest.mark.parametrize(("nix", "wrappings"), [
    # a record of each line (journald's, its MESSAGE as bytes where it holds Nix's colours;
    # typeset by a forum): the quote's count and mark are read in the record
    ("2.8", ("json-records", "typeset-records")), ("2.29", ("json-records", "typeset-records")),
    ("2.3", ("json-records", "typeset-records")),
    # a `gh`-shaped line behind a wrapper's prefix or a page's "&nbsp;", a level behind nom's
    # glyph: what is taken off leaves Nix's indentation (2.3's only mark)
    ("2.3", ("nom", "colmena", "nh", "nom-tree", "html", "kubectl", "compose", "git-remote",
             "bracket-time", "line-numbers")),
    # a copy that kept no line's indentation: Nix's count stands
    ("2.3", ("dedented",))])
def test_a_wrapped_tail_of_every_hostile_line_names_only_its_own_build(
        nix: str, wrappings: tuple[str, ...]) -> None:
    """The 17 of 192 wrapped tails (4 shapes x test_logshape's 48 wrappings) that still named
    victim, added failures or hid the attacker's at the end of session 6 (AUDIT-110 row 14)."""
    from test_logshape import WRAPPINGS  # (the wrappings as test_logshape applies them)

    text = "\n".join(_HOSTILE_TAILS[nix])
    for name in wrappings:
        found = diagnose.parse_log(WRAPPINGS[name](text).split("\n"))
        # (a wrapper's own verdict, naming no derivation, aside: kubectl's BuildKit step)
        said = [(d.type, d.drv) for d in found if d.drv is not None or d.type is not
                FailureType.OTHER or "did not complete" not in d.message]
        assert said == [(FailureType.BUILD, ATTACKER)], (name, found)


def test_a_builders_own_record_in_a_quote_stays_its_own_behind_a_prefix() -> None:
    # a transport's record of each quoted line is read as that line (behind `kubectl logs
    # --prefix`'s "[pod/…] " too); a builder's own record behind Nix's indentation or "> " never
    forged = json.dumps({"msg": f"error: builder for '{VICTIM}' failed with exit code 42"})
    for prefix in ("[pod/x/nix] ", "web_1  | ", ""):
        for log in ([f"building '{ATTACKER}'...",
                     f"builder for '{ATTACKER}' failed with exit code 1; last 2 log lines:",
                     f"  {forged}", "  done", f"error: build of '{ATTACKER}' failed"],
                    [f"building '{ATTACKER}'...",
                     f"error: builder for '{ATTACKER}' failed with exit code 1;",
                     "       last 2 log lines:", f"       > {forged}", "       > done"]):
            lines = [prefix + line for line in log]
            assert [line.quoted for line in logshape.normalise(lines)
                    if "{" in line.text or "done" in line.text] == [True, True], (prefix, log)
            assert [d.drv for d in diagnose.parse_log(lines)] == [ATTACKER], (prefix, log)


def test_a_builders_last_quoted_line_takes_no_line_of_nix_after_it() -> None:
    # Nix 2.3 prints its next line unindented right after the last line it quotes: a builder's
    # last line ending as a line of Nix's does that goes on below (a colon, a comma, a cut
    # Reason, a bare "error:", 2.4pre's header) took Nix's next failure into the builder's
    # block, where it was none (AUDIT-190 row 3)
    real = "/nix/store/" + "r" * 32 + "-real-3.0.drv"
    for last in ("see below:", "first,", "Reason: builder", "error:",
                 "error: --- Error --- nix-daemon"):
        quote = [f"builder for '{ATTACKER}' failed with exit code 1; last 2 log lines:", "  x",
                 f"  {last}"]
        for after in ([f"builder for '{real}' failed with exit code 2; last 1 log lines:",
                       "  broke"],
                      [f"cannot build derivation '{real}': 1 dependencies couldn't be built"]):
            found = diagnose.parse_log([*quote, *after, f"error: build of '{real}' failed"])
            assert {d.drv for d in found} == {ATTACKER, real}, (last, after)


def _nix_error(text: str) -> str:
    """An error record as Nix 2.8 and 2.26 write one of their own (`JSONLogger::logEI`)."""
    return "@nix " + json.dumps({"action": "msg", "column": None, "file": None, "level": 0,
                                 "line": None, "msg": text, "raw_msg": text})


def _relayed(text: str) -> str:
    """What Nix writes for a builder's line `@nix {"action":"msg","level":0,"msg":…}`: the text
    at the level it asked for, nothing else (libutil `handleJSONLogMessage` -> `log()`)."""
    return "@nix " + json.dumps({"action": "msg", "level": 0, "msg": text})


def _start(ident: int, drv: str) -> str:
    return "@nix " + json.dumps({"action": "start", "id": ident, "level": 3, "parent": 0,
                                 "text": f"building '{drv}'", "type": 105,
                                 "fields": [drv, "", 1, 1]})


def _line(ident: int, text: str) -> str:
    return "@nix " + json.dumps({"action": "result", "id": ident, "type": 101, "fields": [text]})


DEPENDENT = "/nix/store/" + "c" * 32 + "-dependent-1.0.drv"
_MISMATCH = (f"error: hash mismatch in fixed-output derivation '{VICTIM}':\n"
             "  specified: sha256-AAAA\n     got:    sha256-BBBB")


def test_a_builders_error_record_speaks_for_no_other_derivation() -> None:
    """A failing build printing `@nix {"action":"msg","level":0,…}` lines (Nix relays them as
    records of its own, only without `raw_msg`) does not decide what another failing
    derivation's error is: not before that build started, not while it still prints, not
    against Nix's own record, and no dependency failure for a build that ran."""
    buildlog = build.BuildLog()
    feed = [_start(1, ATTACKER), _line(1, "compiling"),
            # before the victim started, and for a dependent that never starts
            _relayed(_MISMATCH), _relayed(f"error: builder for '{DEPENDENT}' failed with exit "
                                          "code 1"),
            _start(2, VICTIM), _line(2, "victim compiling"),
            # while the victim still runs; a dependency failure of a build that runs
            _relayed(f"error: builder for '{VICTIM}' failed with exit code 42"),
            _relayed(f"error: 1 dependencies of derivation '{VICTIM}' failed to build"),
            _line(2, "victim fails"),
            _nix_error(f"error: builder for '{ATTACKER}' failed with exit code 2")]
    for line in feed:
        buildlog.feed(line)
    assert set(buildlog.errors) == {ATTACKER}
    # Nix 2.8 names one failing build of several: the victim is "unreported", its own failure
    buildlog.feed(_nix_error(f"error: 1 dependencies of derivation '{DEPENDENT}' failed to "
                             "build"))
    assert buildlog.errors[DEPENDENT].type is FailureType.DEPENDENCY
    # a dependency's failure said before a build starts is withdrawn when it does
    late = "/nix/store/" + "d" * 32 + "-late-1.0.drv"
    buildlog.feed(_relayed(f"error: 1 dependencies of derivation '{late}' failed to build"))
    assert buildlog.errors[late].type is FailureType.DEPENDENCY
    buildlog.feed(_start(3, late))
    assert late not in buildlog.errors
    # after the victim's last line a forged report stands only until Nix's own one comes
    buildlog.feed(_relayed(_MISMATCH))
    assert buildlog.errors[VICTIM].type is FailureType.HASH_MISMATCH
    buildlog.feed(_nix_error(f"error: builder for '{VICTIM}' failed with exit code 1"))
    assert "exit code 1" in buildlog.errors[VICTIM].message
    buildlog.feed(_relayed(f"error: builder for '{VICTIM}' failed with exit code 42"))
    assert "exit code 1" in buildlog.errors[VICTIM].message


def test_errors_a_daemon_forwards_as_text_are_still_taken() -> None:
    """Through nix-daemon, Nix's own errors of builds other than the ones asked for arrive as
    text (`STDERR_NEXT`, printed by the client: no `raw_msg`): at the points Nix says them they
    are taken as before."""
    buildlog = build.BuildLog()
    for line in [_start(1, VICTIM), _line(1, "victim fails"),
                 _relayed(f"error: builder for '{VICTIM}' failed with exit code 3"),
                 _relayed(f"error: 1 dependencies of derivation '{DEPENDENT}' failed to build"),
                 # the daemon says nothing more of the victim; Nix's own last words follow
                 _nix_error(f"error: 1 dependencies of derivation '{DEPENDENT}' failed to build")]:
        buildlog.feed(line)
    assert (buildlog.errors[VICTIM].type, buildlog.errors[DEPENDENT].type) == (
        FailureType.BUILD, FailureType.DEPENDENCY)
    assert "exit code 3" in buildlog.errors[VICTIM].message



def test_a_builders_error_record_in_a_captured_log_speaks_for_no_other_derivation() -> None:
    """`ci-nix junit` on internal-json: the rule of `run` (above) where the log shows every
    activity from its start."""
    forged = _relayed(f"error: builder for '{VICTIM}' failed with exit code 42")
    attacker = [_start(1, ATTACKER), _line(1, "compiling"), forged]
    own = _nix_error(f"error: builder for '{ATTACKER}' failed with exit code 2")
    assert [d.drv for d in diagnose.parse_log([*attacker, own])] == [ATTACKER]
    # a successful build that printed it: nothing failed
    passed = [*attacker, '@nix {"action":"stop","id":1}']
    assert diagnose.parse_log(passed) == []
    assert junit_command.log_cases("build.log", passed) == []
    # that a build never ran, once it started
    started = [_start(2, VICTIM), _line(2, "victim compiling"),
               _relayed(f"error: 1 dependencies of derivation '{VICTIM}' failed to build")]
    assert diagnose.parse_log(started) == []
    # Nix's own errors a daemon forwards (no raw_msg) name builds that started: taken
    daemon = [_start(2, VICTIM), _line(2, "victim fails"),
              _relayed(f"error: builder for '{VICTIM}' failed with exit code 3")]
    assert [(d.drv, d.exit_code) for d in diagnose.parse_log(daemon)] == [(VICTIM, 3)]
    # a piece of a log that begins after activities started (their records without a start)
    # cannot tell: the record is read as Nix's
    piece = [_line(5, "a line of a build begun before"), forged]
    assert [d.drv for d in diagnose.parse_log(piece)] == [VICTIM]


def test_a_remote_builders_relayed_refusal_is_read_alike_by_run_and_junit() -> None:
    """A daemon forwards Nix's relay of a remote builder's refusal (no raw_msg): "build of X on
    host failed: … is required to build X" says X's build ran, there. `run` took it after X's
    start; `ci-nix junit` dropped it as a builder's forgery (its type says "never ran") and
    reported nothing: a silent zero. Both now read it from one rule (BuildError.ran)."""
    relayed = _relayed(f"error: build of '{VICTIM}' on 'ssh://h' failed: error: a "
                       f"'aarch64-linux' with features {{}} is required to build '{VICTIM}', "
                       "but I am a 'x86_64-linux' with features {}")
    lines = [_start(2, VICTIM), relayed, '@nix {"action":"stop","id":2}']
    assert [(d.drv, d.type) for d in diagnose.parse_log(lines)] == [
        (VICTIM, FailureType.PLATFORM)]
    buildlog = build.BuildLog()
    for line in lines:
        buildlog.feed(line)
    assert buildlog.errors[VICTIM].type is FailureType.PLATFORM


_FORGERIES = st.sampled_from([
    _MISMATCH, f"error: builder for '{VICTIM}' failed with exit code 42",
    f"error: 1 dependencies of derivation '{VICTIM}' failed to build",
    f"error: build of '{VICTIM}' on 'ssh://evil' failed: error: no",
    f"error: a 'riscv64-linux' is required to build '{VICTIM}', but I am a 'x86_64-linux'"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), _FORGERIES), max_size=6),
       st.integers(0, 3), st.booleans())
def test_no_interleaving_of_forged_records_decides_a_reported_failure(
        forged: list[tuple[int, str]], victim_lines: int, attested_end: bool) -> None:
    """The attacker's relayed records, at any point of the victim's build (before it starts,
    while it prints, after), never stand for the victim once Nix reports it itself, and never
    say it ran before it started or that it never ran once it did."""
    victim = [_start(2, VICTIM), *(_line(2, f"victim {n}") for n in range(victim_lines))]
    events: list[str] = [_start(1, ATTACKER)]
    steps: list[str | None] = [*victim, None]
    for step, line in enumerate(steps):
        events += [_relayed(text) for at, text in forged if at == step]
        if line is not None:
            events.append(line)
    own = f"error: builder for '{VICTIM}' failed with exit code 1"
    if attested_end:
        events.append(_nix_error(own))
    buildlog = build.BuildLog()
    for event in events:
        buildlog.feed(event)
    said = buildlog.errors.get(VICTIM)
    if attested_end:
        assert said is not None and said.message.endswith("exit code 1"), said
    elif said is not None:
        # only what Nix could have said after the victim's last line: that its build failed
        last = max((n for n, line in enumerate(events) if line in victim), default=-1)
        first_taken = [n for n, line in enumerate(events)
                       if line.startswith("@nix") and '"msg"' in line and n > last]
        assert first_taken and said.type in (FailureType.BUILD, FailureType.HASH_MISMATCH,
                                             FailureType.OTHER), said


@pytest.mark.parametrize("log", [
    # an asciinema recording's header, then an "event" nested past Python's recursion limit
    ['{"version": 2, "width": 80}', "[" * 100_000],
    ['{"version": 2, "width": 80}', '[0.1, "o", "x"]', "[" * 100_000 + "]" * 100_000],
    ['{"version": 2, "width": 80, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"],
    # a logger's JSON record whose fields nest as deep
    ['{"log":' + "[" * 100_000 + "}"],
], ids=["cast event", "cast event closed", "cast header", "record"])
def test_a_log_nested_past_the_recursion_limit_is_read_as_text(log: list[str]) -> None:
    """`nix log X.drv > f; ci-nix junit f`: every line is the builder's. JSON nested deeper than
    Python's recursion limit is no record of a logger, a recording or Nix: read as text, never
    a traceback (json.loads raises RecursionError, not ValueError)."""
    log = [*log, f"error: builder for '{VICTIM}' failed with exit code 1"]
    assert [d.drv for d in diagnose.parse_log(log)] == [VICTIM]
    junit_command.log_cases("build.log", log)


def test_a_builder_repeating_an_error_record_costs_time_linear_in_its_lines() -> None:
    """A builder printing the same relayed error record (about itself, after its start, when
    Nix takes it) over and over: each was kept, and the one that speaks chosen again over all
    of them (2k records 0.25 s, 16k 13 s: quadratic). A later twin of a kept claim (same
    attestation, same ran/never-ran, same dependency-or-not) never speaks before it and is
    withdrawn with it, so it is not kept; likewise an unattributed one of a type already had."""
    record = _relayed(f"error: builder for '{ATTACKER}' failed with exit code 2")
    unnamed = _relayed("error: timed out after 10 seconds")

    def feed(n: int) -> Callable[[], build.BuildLog]:
        def run() -> build.BuildLog:
            buildlog = build.BuildLog()
            buildlog.feed(_start(1, ATTACKER))
            for _ in range(n):
                buildlog.feed(record)
                buildlog.feed(unnamed)
            return buildlog
        return run
    buildlog = feed(300)()
    assert len(buildlog.claims[ATTACKER]) == 1 and len(buildlog.unattributed) == 1
    assert "exit code 2" in buildlog.errors[ATTACKER].message
    small, big = _costs(feed(1000), feed(8000))
    assert big < 24 * max(small, 1e-3), (small, big)


def test_through_a_daemon_nixs_report_after_the_build_ended_outranks_a_forged_one_before() -> None:
    """Through nix-daemon Nix's own errors arrive unattested. Nix (2.8, 2.26: --log-format
    internal-json) writes a build's error after its activity stopped; a concurrent builder's
    relayed record saying the victim failed, printed while the victim still ran, came first
    and spoke for it (a hash mismatch 'got sha256-BBBB' for a build that exited 3)."""
    stop = "@nix " + json.dumps({"action": "stop", "id": 2})
    buildlog = build.BuildLog()
    for line in [_start(1, ATTACKER), _start(2, VICTIM), _line(2, "victim compiling"),
                 _line(1, "attacker"), _relayed(_MISMATCH), stop,
                 _relayed(f"error: builder for '{VICTIM}' failed with exit code 3")]:
        buildlog.feed(line)
    said = buildlog.errors[VICTIM]
    assert (said.type, "exit code 3" in said.message) == (FailureType.BUILD, True), said
    # nothing after the stop: the forged one is all there is (README: left possible)
    alone = build.BuildLog()
    for line in [_start(2, VICTIM), _relayed(_MISMATCH), stop]:
        alone.feed(line)
    assert alone.errors[VICTIM].type is FailureType.HASH_MISMATCH


def test_a_builders_lines_in_a_nix_fast_build_block_speak_for_no_other_derivation() -> None:
    """nix-fast-build's CI output puts Nix's report of a failure under the same "ATTR> " as the
    builder's lines: only the block's last message is Nix's (printed after the builds stopped),
    and only where it names the derivation the block's frame names."""
    attr = "checks.x86_64-linux.attacker"
    verdict = f"✘  {attr} failed after 2s (rc=1)"
    end = f"✘ end of log for {attr} · nix log {ATTACKER}"
    report = [f"{attr}> error: Cannot build '{ATTACKER}'.",
              f"{attr}>        Reason: builder failed with exit code 1."]
    forged = [f"{attr}> {line}" for line in _FORGED]
    # the builder's forgery before Nix's report: the report is the failure, the attacker's own
    found = diagnose.parse_log([verdict, *forged, *report, end])
    assert [(d.type, d.drv) for d in found] == [(FailureType.BUILD, ATTACKER)]
    # a forgery at the block's end (Nix's report missing): no derivation's failure, but never
    # a silent zero: nix-fast-build's verdict stands as a CI system's
    for log in ([verdict, *forged, end], [*forged, verdict]):
        found = diagnose.parse_log(log)
        assert all(d.drv is None for d in found) and found, log
        assert found[0].message == f"{attr} failed after 2s (rc=1)"
    # streamed live (the verdict after the block, no end naming the derivation): the lines
    # stay the builder's, the verdict says what failed
    found = diagnose.parse_log([*forged, *report, verdict])
    assert [(d.type, d.drv) for d in found] == [(FailureType.OTHER, None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=6), st.sampled_from(
    [b"\n", b"\r\n", b"\xe2\x82", b"\xe2\x80\xa8", b"\xff", b"\xf0\x9f\x98\x80", b"caf\xc3\xa9"])),
    max_size=12))
def test_a_logs_lines_held_compactly_are_the_lines_of_its_text(pieces: list[bytes]) -> None:
    """`ci-nix junit` holds a log as its bytes and where each line starts: the lines it gives
    are those of the whole text decoded and split at line feeds (its last line end no line),
    undecodable bytes replaced alike, by index, slice and iteration."""
    data = b"".join(pieces)
    text = data.decode("utf-8", errors="replace")
    lines = text.removesuffix("\n").split("\n") if text else []
    held = logtext.CapturedLines(data)
    assert list(held) == lines and len(held) == len(lines)
    assert [held[at] for at in range(-len(lines), len(lines))] == lines + lines
    assert held[1:-1] == lines[1:-1] and held[::-1] == lines[::-1]
    with pytest.raises(IndexError):
        held[len(lines)]


def test_a_condensed_log_holds_its_own_lines_at_their_indices() -> None:
    """parse_log reads a long run of a builder's short plain `-L` lines only at its ends (after
    the log's first lines, read whole): each line it keeps is the log's line at the index it
    keeps (a failure's line number is the file's), the lines a quote's intro counts are kept,
    and read from a file's bytes the same lines are kept."""
    lines = [f"hello> l {i}" for i in range(logtext.CONDENSE_AFTER + 1000)]
    lines += ["error: builder for 'x' failed; last 200 log lines:",
              *(f"{('hello', 'world')[i % 2]}> l {i}" for i in range(1000)), "done: ok",
              *(f"hello> {'l' * (i % 40)}" for i in range(500))]
    held = logtext.condensed(lines)
    kept = [held.captured_index(at) for at in range(len(held))]
    assert [lines[at] for at in kept] == list(held) and kept == sorted(set(kept))
    assert len(held) + held.elided == len(lines) and held.elided > 1500
    intro = lines.index("error: builder for 'x' failed; last 200 log lines:")
    assert set(range(intro, intro + 202)) <= set(kept)  # (and each builder's last lines)
    world = [at for at in range(intro + 202, lines.index("done: ok")) if at % 2 == 0]
    assert set(world[-logtext.CONDENSE_KEPT:]) <= set(kept)
    assert max(map(len, held)) == max(map(len, lines))  # (its widest line read too)
    read = logtext.condensed_bytes(["\n".join(lines).encode()[at:at + 1000] for at in range(
        0, len("\n".join(lines)), 1000)])
    assert list(read) == list(held) and read.elided == held.elided


def test_a_wrap_the_lines_left_out_decide_is_read_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log is taken as wrapped at a width where a tenth of its lines end near it: where the
    lines a condensed log leaves out are those (a run whose ends are short), they count, and
    a wrapped line is joined as in the whole log (not two lines: the condensed log alone has
    too few lines near the width)."""
    monkeypatch.setattr(logtext, "CONDENSE_AFTER", 0)
    log = ["note: some tool printed a sentence long enough that the terminal wrapped it at",
           "its width and went on here", "done", *(f"pad> cc x{i}.c" for i in range(64)),
           *(f"pad> {'y' * 70} {i}" for i in range(200)), *(f"pad> cc y{i}.c" for i in range(80))]
    held = logtext.condensed(log)
    kept = {held.captured_index(at) for at in range(len(held))}
    assert held.elided > 150
    whole = [(line.origin, line.text, line.builder) for line in logshape.normalise(log)]
    assert [(held.captured_index(line.origin), line.text, line.builder)
            for line in logshape.normalise(list(held), held.elided, held.widths)] == [
        line for line in whole if line[0] in kept]
    assert whole[0][1].endswith("wrapped it at its width and went on here")


def test_a_log_reads_alike_condensed_and_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log read condensed (a long run of a builder's plain lines only at its ends) says what
    the same log read whole says, each failure at the same line: a run inside a sample's report
    and after it (here from the log's start: the first lines, read whole in a real log, are
    where a prefix is learnt, which these samples have none of)."""
    monkeypatch.setattr(logtext, "CONDENSE_AFTER", 0)
    data = Path(__file__).resolve().parent / "data"
    samples = {sample: (data / sample).read_text().split("\n") for sample in (
        "nix-2.26/dependency.text.log", "public/nix-7102-builder-exit.text.log",
        "public/nixpkgs-249710-curl-mirror-quoted.text.log")}
    # (and one a terminal broke at 80 columns, whose lines near that width decide it was: the
    # builder's lines left out count among them)
    samples["80 columns"] = [line[at:at + 80] for line in samples["nix-2.26/dependency.text.log"]
                             for at in range(0, max(len(line), 1), 80)]
    # (the run's ends short, its middle near the width: only the lines left out say it wrapped)
    run = [*(f"pad> cc x{i}.c" for i in range(64)), *(f"pad> {'y' * 70} {i}" for i in range(200)),
           *(f"pad> cc y{i}.c" for i in range(80))]
    for sample, lines in samples.items():
        for at in (len(lines) // 2, len(lines)):
            log = [*lines[:at], *run, *lines[at:]]
            whole = logtext.CondensedLog(log, array("I", range(len(log))), 0)
            assert len(logtext.condensed(log)) < len(log) - 100
            assert diagnose.parse_log(log) == diagnose.parse_log(whole), (sample, at)


def test_an_intro_counting_more_lines_than_nix_can_quote_is_no_intro() -> None:
    # a count Nix's log-lines setting never gives: read as a number it raised (ValueError:
    # Python converts at most 4300 digits), and `ci-nix junit` and `run` died on the log
    log = [f"builder for '{ATTACKER}' failed with exit code 1; last {'9' * 5000} log lines:",
           "  x"]
    assert [d.drv for d in diagnose.parse_log(log)] == [ATTACKER]
    error = diagnose.build_error("\n".join(log))
    assert error is not None and error.drv == ATTACKER


# Texts that only talk about Nix (its manual, release notes, a wiki page, a nixpkgs manual page,
# a forum question, an agent's checklist, Nix's own source with its format strings) and green
# texts users paste around runs that did not fail (warnings, activation output, a passing build's
# test summary, prose about errors): gathered with the search tool, each named in
# tests/data/guard/README.md; tests/data/guard-heldout/ is the green corpus's held-out half
# (measured blind in session 12, then added here; its README). expected.json says, per text,
# the lines that hold output of Nix's the text quotes (a release note's example error: that
# failure the text holds) and the lines read as failures the text does not hold, known when the
# guard set was gathered (false reds; a change may only take from them).
_GUARDS = [Path(__file__).resolve().parent / "data" / name for name in ("guard", "guard-heldout")]


@pytest.mark.parametrize("guard, name", [
    pytest.param(guard, name, id=name if guard.name == "guard" else f"heldout/{name}")
    for guard in _GUARDS for name in sorted(json.loads((guard / "expected.json").read_text()))])
def test_a_text_only_talking_about_nix_gains_no_failure_it_does_not_hold(
        guard: Path, name: str) -> None:
    expected = json.loads((guard / "expected.json").read_text())[name]
    found = diagnose.parse_log((guard / name).read_text().split("\n"))
    allowed = {*expected["holds"], *expected["known_false_red"]}
    assert all(d.log_line in allowed for d in found), [(d.log_line, d.message) for d in found]


def test_the_false_red_count_is_every_failure_at_a_line_a_green_text_does_not_hold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # scripts/measure_false_reds.py, which the lead runs on the held-out green texts: a failure
    # at a held line is the text's own; one anywhere else counts, known or not
    spec = importlib.util.spec_from_file_location(
        "measure_false_reds", Path(__file__).resolve().parent.parent / "scripts"
        / "measure_false_reds.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    failing = f"error: builder for '{VICTIM}' failed with exit code 2"
    (tmp_path / "quoted.txt").write_text(f"It failed once:\n{failing}\nand passed since.")
    (tmp_path / "unheld.txt").write_text(f"Building works.\n{failing}")
    (tmp_path / "expected.json").write_text(json.dumps({
        "quoted.txt": {"holds": [2], "known_false_red": []},
        "unheld.txt": {"holds": [], "known_false_red": [2]}}))
    assert script.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "FALSE RED unheld.txt line 2: build/" in out and "quoted.txt" not in out
    assert out.endswith(": 1 of 2 texts with a false red, 1 false reds\n")
    assert script.main([str(tmp_path / "missing")]) == 1
    assert "expected.json: no such file" in capsys.readouterr().err


# a tool's recap that says nothing failed (diagnose._RECAPS reads the ones that say what did):
# nixpkgs-review's lists of what it skipped or built, ofborg's success with attributes it skipped
# for not evaluating on a platform, Hydra's succeeded steps, nix-fast-build's counts without a
# failure, nom's last line of a run that passed, buildbot-nix's jobs without a cached failure
@pytest.mark.parametrize("recap", [
    ["--------- Report for 'x86_64-linux' ---------", "1 package marked as broken and skipped:",
     "libfoo", "", "2 packages built:", "bar baz"],
    ["<summary>:fast_forward: 1 package present in ofBorg's evaluation, but not found in the "
     "checkout:</summary>", "<summary>:white_check_mark: 1 package built:</summary>"],
    ["Success on x86_64-linux [(full log)](https://logs.nix.ci/?key=nixos/nixpkgs.1)", "",
     "Attempted: foo", "", "The following builds were skipped because they don't evaluate on "
     "x86_64-linux: bar"],
    ["#\tWhat\tDuration\tMachine\tStatus",
     f"1\tBuild of {VICTIM}\t3m 12s\tbuilder-7\tSucceeded (log, raw, tail)"],
    ["Status:\tSuccess", "Build returned a zero exit code, as every build here did"],
    ["# nix-fast-build Results", "## ✅ All Checks Passed (4 successful)"],
    ["┗━ ∑ ⏵ 0 │ ✔ 12 │ ⏸ 0 │ Finished at 14:02:11 after 1m14s"],
    ["\t- not skipping checks.x86_64-linux.unit with cached failure due to rebuild, first failed "
     "at 2026-11-30 09:12:44"],
    ["The status of Hydra job ‘nixpkgs:trunk:libfoo.x86_64-linux’ has changed from \"Failed\" to "
     "\"Success\".  For details, see", "Subject: Success: Hydra job nixpkgs:trunk:libfoo"],
    # prose about the tools' words: no line of theirs
    ["When a package failed to build, nixpkgs-review lists it under its report's failures.",
     "Hydra shows Cached failure or Log limit exceeded in a build step's status column."],
])
def test_a_tools_recap_saying_nothing_failed_is_no_failure(recap: list[str]) -> None:
    assert diagnose.parse_log(recap) == []


@pytest.mark.parametrize("fence", [
    ["```", "> nix build .#foo", "> ls result", "```"],
    ["```console", "> nix-build", "> building", "> installing", "```"],
    ["```", "> configuring", "```"],
])
def test_a_fence_of_prompt_lines_is_no_quoted_builder_tail(fence: list[str]) -> None:
    # (diagnose._fenced_phases: a fence of "> " lines is Nix's quote of a builder's tail only
    # where one of them is stdenv's line about its phases, "Running phase: buildPhase")
    assert diagnose.parse_log(["I ran:", *fence, "and it worked."]) == []


# nix-build (and `nix log`) prints a builder's output unprefixed after Nix's "building '…'": a
# test there echoing Nix's words about another derivation inside its line (audit300: the
# general reader opened an error block at them, read that derivation first and took Nix's own
# header of the build that failed, after a "…:", as their rest: the failure was lost)
@pytest.mark.parametrize("echo", [
    f"FAIL: stderr was: builder for '{VICTIM}' failed with exit code 1; last 10 log lines:",
    f"log: Cannot build '{VICTIM}'. Reason:",
    f"  checking: hash mismatch in fixed-output derivation '{VICTIM}': detected",
    f"assert ilder for '{VICTIM}' failed with exit code 3",
])
def test_a_builders_unprefixed_line_naming_another_derivation_inside_it_speaks_for_none(
        echo: str) -> None:
    found = diagnose.parse_log([f"building '{ATTACKER}'...", echo,
                                f"error: builder for '{ATTACKER}' failed with exit code 2;",
                                "       last 1 log lines:", "       > boom"])
    assert [(d.drv, d.exit_code) for d in found] == [(ATTACKER, 2)]


def test_a_usage_texts_or_lines_are_no_error_a_copy_ate_into() -> None:
    # (coreutils' and git's usage: "Usage: …" and then "or: …" lines, which a test, a CI step or
    # a builder prints; a copy's eaten "error:" is "or:" only where a paste starts)
    usage = ["Usage: cp [OPTION]... [-T] SOURCE DEST", "  or:  cp [OPTION]... SOURCE... DIRECTORY",
             "usage: git stash list [<options>]", "   or: git stash show [<options>] [<stash>]"]
    assert diagnose.parse_log([f"building '{ATTACKER}'...", *usage,
                               ATTACKER.removesuffix(".drv")]) == []
    found = diagnose.parse_log([*usage, f"error: builder for '{ATTACKER}' failed with exit code 2"])
    assert [(d.drv, d.exit_code) for d in found] == [(ATTACKER, 2)]


@pytest.mark.parametrize("line", [
    f"Successful build of '{VICTIM}'",
    f"Finished build of {VICTIM} in 3s",
    f"SKIPPING BUILD OF {VICTIM.removesuffix('.drv')} (cached)",
    f"copying output '/nix/store/{'c' * 32}-victim-2.0' of '{VICTIM}' from 'ssh://b'",
    f"We skip 1 dependencies of derivation '{VICTIM}' when they are cached.",
    # (Nix 1.x's progress, "fetching path ‘…’...", of a path whose name holds a failure's word)
    f"fetching path ‘/nix/store/{'c' * 32}-failing-tests-1.0’...",
    f"fetching path ‘/nix/store/{'c' * 32}-not-found-2.0’ from ‘https://cache.nixos.org’...",
])
def test_nixs_head_without_its_failure_words_says_no_failure(line: str) -> None:
    # (the general reader's heads, found anywhere in a line, say a failure only where it reads
    # one from them: a head alone, a store path its subject, is a tool's or a writer's line)
    assert diagnose.parse_log([line]) == []


@pytest.mark.parametrize("heads", [
    "x build of '/nix/store/" + "a" * 32 + "-x.drv' y ",
    "x 1 dependencies of derivation '/nix/store/" + "a" * 32 + "-x.drv' y ",
    "x ilder for /nix/store/-x.drv failed ",
])
def test_a_line_of_nixs_heads_costs_about_what_a_line_without_them_does(heads: str) -> None:
    # (each of a line's first heads was classified to the line's end, twice: 40 times the
    # CPU of a line as long without them, minutes for a builder's line of a few MB; now to
    # the end of what Nix's own line can hold)
    n = 40_000
    plain = [("x copying path '/nix/store/" + "a" * 32 + "-x' from y ") * (n // 55)]
    line = [heads * (n // len(heads))]
    base = _cpu(lambda: diagnose.parse_log(plain))
    cost = _cpu(lambda: diagnose.parse_log(line), under=8 * max(base, 1e-3))
    assert cost < 8 * max(base, 1e-3), (base, cost)



_P = "'/nix/store/" + "a" * 32 + "-x.drv'"
# one line a head of each of diagnose._HEADS opens (eaten ones too), its words of failure after it
_HEAD_LINES = [
    [f"x builder for {_P} failed with exit code 1", f"x ilder for {_P} failed with exit code 1"],
    [f"x Cannot build {_P}.", f"x nnot build {_P}.", f"x cannot build derivation {_P}: 1 "
     "dependencies couldn't be built"],
    [f"x build of {_P} failed", f"x uild of {_P} failed"],
    [f"x hash mismatch in fixed-output derivation {_P}:", f"x ash mismatch in fixed-output "
     f"derivation {_P}:"],
    [f"x 1 dependencies of derivation {_P} failed to build"],
    [f"x fixed-output derivation produced path {_P} with sha256 hash 'a' instead of 'b'"],
    [f"x building of {_P} timed out after 1 seconds"],
    [f"x a 'aarch64-linux' is required to build {_P}, but I am a 'x86_64-linux'"],
    [f"x cannot substitute path {_P}", f"x some substitutes for the outputs of derivation {_P} "
     "failed", f"x suspicious ownership or permission on {_P}; rejecting this build output",
     f"x hash mismatch in downloaded path {_P}: expected a, got b",
     f"x substitute did not produce path {_P}"],
    [f"x fetching path {_P} failed with exit code 1"],
    [f"x path {_P} is required, but there is no substituter that can build it", f"x output {_P} "
     f"of {_P} differs from {_P} from previous round"],
    ["x Package 'x-1' in /f.nix:3 is not available on the requested hostPlatform:"],
    ["x eason: builder failed with exit code 2."],
    ["rror: attribute 'x' missing", "ror: attribute 'x' missing"],
    ["x Can't load '/p/lib/perl5/site_perl/auto/Nix/Store/Store.so' for module Nix::Store: "
     "libstdc++.so.6: cannot open shared object file: No such file or directory"],
    [f"x output path {_P} should have sha256 hash 'a', instead has 'b'", f"x output path {_P} has "
     "sha256 hash 'b' when 'a' was expected"],
]


@pytest.mark.parametrize("line", [line for lines in _HEAD_LINES for line in lines])
def test_the_heads_cheap_looks_find_every_head(line: str) -> None:
    # (_HEAD_WORDS, a word every head holds, is looked for before _NIX_HEAD's alternation, and a
    # head counts only with one of _HEAD_FAILS after it: a head added without its words there
    # would be a head no line is read for; its line goes into _HEAD_LINES)
    assert len(_HEAD_LINES) == len(diagnose._HEADS)
    head = diagnose._NIX_HEAD.search(line)
    assert head is not None and diagnose._HEAD_WORDS.search(line) is not None
    assert diagnose._HEAD_FAILS.search(line, head.start()) is not None


@pytest.mark.parametrize("line", [
    # a writer's own words about a removal, a deprecation or nixpkgs' functions: a quote of the
    # attribute alone, a pronoun's sentence in double quotes, a format string's placeholders,
    # advice, a reference manual's entry (nixpkgs' throws are read only whole, in a quote or
    # alone on a line: diagnose._quoted_nixpkgs_throw)
    "The `fcitx-engines` package is deprecated, please use `fcitx5` instead.",
    "- `python3Packages.foo-bar` has been removed",
    'He said "it was removed in 2023" and closed the issue.',
    'The "foo was removed" note in the changelog is wrong.',
    "`disabled` throws `${name} not supported for interpreter ${python.executable}`.",
    "Please use pkgs.hello instead of the overlay, it is simpler.",
    "lib.strings.toInt: Parse a string as an int.",
    "Unsupported system",
    "Note that `nixUnstable` is deprecated upstream.",
    "`mkIf` takes a Boolean condition.",
    "This package is not supported for interpreter versions older than 3.8.",
    "`this was removed` in the last release",
    "The step `buildGoModule: use vendorHash = null;` is what I did.",
    "buildGoModule: vendorHash is missing",
    "This is not available for OCaml 5 yet, I think.",
    "The config had been moved to another file.",
    "Our fork is no longer maintained upstream.",
    "This is not available for aarch64-darwin yet.",
    "The package is not supported on x86_64-darwin, sadly.",
    "It is not supported for interpreter lua5.1 yet.",
    "fetchFromGitHub requires a lot of arguments, see the manual.",
    "The doc says `Failed assertions:` is printed first.",
])
def test_a_writers_words_about_a_removal_are_no_nixpkgs_throw(line: str) -> None:
    assert diagnose.parse_log(["Some context:", "", line, "", "Thanks!"]) == []


# prose that talks about the evaluator's messages (diagnose._EVALUATOR_SAYS reads them without
# "error:" only opening a line, quoted whole, or in a title): a writer's sentence naming them
# unquoted, a quote of the message's words without what it names or with a placeholder, a
# manual's or the source's format string, a line opening with the general words
@pytest.mark.parametrize("line", [
    "The attribute 'src' missing from the set is what the builder wanted.",
    "You get an `infinite recursion encountered` error when an overlay refers to itself.",
    "Nix says infinite recursion encountered when a module imports itself.",
    "Why does Nix report undefined variable 'pkgs' here?",
    "Expected a set but found a list of modules, so I wrapped it.",
    "Value is a set while a string was expected here, says the doc.",
    "`attribute '%s' missing`",
    "`undefined variable '...'`",
    "error(\"attribute '%1%' missing\", state.symbols[name])",
    "\"function '%1%' called without required argument '%2%'\",",
    "`called without required argument`",
    "## Called with unexpected argument",
    "Assertion failed in the test suite, see below.",
    "expected 42 but found 3",
    "cannot coerce it to a string, it seems",
    "The string is not allowed to refer to a store path in this context.",
    "list index out of bounds",
    "Division by zero, at least in Python, raises an exception.",
    "cannot add a dependency to an integer field",
    "The expression does not evaluate to a derivation, so I wrapped it in a set.",
    "path `/nix/store/...-source/foo.nix` does not exist until you git add it",
    "Stack overflow; the answer there helped.",
    "### Infinite recursion",
    "## Infinite recursion and stack overflow",
    "# Calling a function without its required arguments",
    "not a set while a string was expected, as I read it",
    "tribute to 'x' is missing from the changelog",
])
def test_prose_about_the_evaluators_messages_is_no_evaluation_failure(line: str) -> None:
    assert diagnose.parse_log(["Some context:", "", line, "", "Thanks!"]) == []


@pytest.mark.parametrize("last", [
    # prose ending in a cut of Nix's words, or in the words alone
    "We then got error: the build", "so I guess it Cannot", "Cannot", "Cannot build",
    "It failed to build", "Build failed du", "error: the build",
    "the builder for '/nix/store/", "I think this is a hash mismatch in fixed-output derivation",
    "I saw a hash mismatch in f", "hash mismatch in", "error: the failing",
    # a green log's last line
    "building", f"building '{VICTIM}'...", "building of",
    f"copying path '{VICTIM[:-4]}' from 'https://cache.nixos.org'...",
    # a builder's own line, cut, as a successful `nix build -L` prints it
    f"victim> error: builder for '{VICTIM[:25]}",
    f"victim> cannot build derivation '{VICTIM}': 3 de",
])
def test_a_text_ending_in_words_a_cut_of_nix_could_be_reports_no_failure(last: str) -> None:
    """A cut of Nix's line reads only where it opens a line of Nix's own and keeps its whole
    head and more ("Cannot build '/nix"): a sentence ending in its words, a green log's last
    progress line, a builder's line are no failure of its type (an "error:" line stays a
    failure nothing finer fits, as ever; main read "the builder for '/nix/store/" a build)."""
    drv = "/nix/store/" + "f" * 32 + "-noisy-1.0.drv"
    for log in (["I tried the flake again.", last],
                [f"building '{drv}'...", "noisy> All 12 tests passed", last]):
        found = diagnose.parse_log(log)
        assert all((d.type, d.kind) == (FailureType.OTHER, diagnose.Kind.ERROR)
                   for d in found), log


@pytest.mark.parametrize("said", ["attribute 'foo' missing (expected)", "undefined variable 'pkgs'",
                                  "infinite recursion encountered"])
def test_a_builders_line_nix_quoted_saying_the_evaluators_words_is_the_builders(said: str) -> None:
    # Nix's quote of a builder's last lines ("       > …"), its head cut off: a test suite
    # printing the evaluator's messages is the build's output, not an evaluation of Nix's
    # (a markdown quote, "> …" at most 3 blanks in, is a writer's quote of Nix: read)
    tail = ["       > running tests", f"       > {said}", "       > FAIL: 1 test failed"]
    assert [d.type for d in diagnose.parse_log(tail)] == [FailureType.BUILD]
    [found] = diagnose.parse_log(["It says:", "", f"> {said}"])
    assert found.type is FailureType.EVAL


# A passing build's own output holding "error" words and summaries that count no failure: no
# builder's verdict (diagnose.BUILDERS_VERDICTS), in whatever wrapping a copy gave it
_PASSING = ["checking for strerror... yes", "checking for error_at_line... yes",
            "gcc -Werror -Wall -c error.c -o error.o", "test_error_handling PASSED",
            "0 errors, 0 warnings", "===== 12 passed, 1 skipped in 0.31s =====",
            "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
            "100% tests passed, 0 tests failed out of 12", "# FAIL:  0", "# XFAIL: 1",
            "Tests:       42 passed, 42 total", "ok  \tgithub.com/foo/bar\t0.123s",
            "make: *** [Makefile:3: clean] Error 1 (ignored)", "OK (skipped=1)",
            "Ran 12 tests in 0.010s", "BUILD SUCCESSFUL in 3s", "npm WARN deprecated x@1.0.0",
            "Finished `release` profile [optimized] target(s) in 1m 02s",
            "    0 Error(s)", "12/183 nix-functional-tests:main / why-depends   OK   0.52s",
            "t/redirect.t .. ok", "All tests successful."]


@pytest.mark.parametrize("wrap", [
    lambda lines: [f"hello> {line}" for line in lines],  # nix build -L
    lambda lines: ["```", *lines, "```"], lambda lines: [f"> {line}" for line in lines],
    lambda lines: [f"    {line}" for line in lines], lambda lines: lines])
def test_a_passing_builds_error_words_are_no_builders_verdict(
        wrap: Callable[[list[str]], list[str]]) -> None:
    assert diagnose.parse_log(["Building it works:", "", *wrap(_PASSING)]) == []


@pytest.mark.parametrize("went_on", [
    # a verdict a build went on after (stdenv's next phase; the tests' summary: all passed)
    ["x.c:1:2: fatal error: y.h: No such file or directory", "Running phase: installPhase"],
    ["Traceback (most recent call last):", '  File "t.py", line 1, in <module>',
     "ValueError: expected", "test_raises PASSED", "test_a PASSED", "test_b PASSED",
     "test_c PASSED", "===== 4 passed in 0.10s ====="],
    ["FAILED: flaky.o", "All 12 tests passed"],
    # stdenv's phases, then words of a failure the builder went on after, or none at its end
    ["Running phase: buildPhase", "sh: foo: command not found", "Running phase: installPhase"],
    ["Running phase: configurePhase", "checking for error.h... yes"],
    ["Running phase: checkPhase", "test_no_such_file_or_directory PASSED"],
])
def test_a_verdict_its_builder_went_on_after_is_no_failure(went_on: list[str]) -> None:
    assert diagnose.parse_log([f"hello> {line}" for line in went_on]) == []


@pytest.mark.parametrize("prose", [
    ["For example, make stops with", "", "    make: *** [Makefile:2: all] Error 2", "",
     "when a recipe fails."],
    ["For instance, if a header is missing you will see", "```",
     "x.c:3:10: fatal error: foo.h: No such file or directory", "```"],
    ["E.g. a failing test suite prints:", "", "> 2 failed, 10 passed in 0.5s",
     "> FAILED tests/test_x.py::test_y"],
    ["The compiler said `error: could not compile` last week, but it is fixed now."],
    ["If you forget the dependency, you'll see:", "```", "make: *** [Makefile:2: all] Error 2",
     "```"],
    ["Without the hook the build would fail with", "", "    FAILED: src/main.c.o",
     "    ninja: build stopped: subcommand failed."],
])
def test_prose_quoting_a_builders_verdict_as_an_example_reads_no_failed_build(
        prose: list[str]) -> None:
    # (an `error:` in prose still says something failed, the rule against a silent zero: never
    # a build failure of a builder's verdict)
    assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(prose))
