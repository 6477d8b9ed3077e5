"""The cheap tests normalising makes before a costly search read every line as the search does."""

from __future__ import annotations

import re

import pytest

from ci_nix import diagnose, logshape
from ci_nix.regex_literal import ascii_folded

LINES = [
    "2024-05-01T12:00:00.1234567Z error: builder for '/nix/store/x.drv' failed",
    "\ufeff>2023-06-02T08:04:05.4886792Z error: x",
    "[2025-06-25T14:31:12.339Z] building '/nix/store/y.drv'...",
    "2025-01-01T01:00:00.000+01:00 00O+ stderr F x",
    "2024-05-01T12:00:00Zerror: glued",
    "build\tRun nix build\t2024-05-01T12:00:00.1234567Z error: x",
    "a\tb\t2024-05-01T12:00:00Z",
    "web_1  | error: x",
    "",
    "x" * 400,
]


@pytest.mark.parametrize("line", LINES)
def test_a_line_without_a_tab_loses_the_timestamp_the_full_pattern_takes(line: str) -> None:
    if "\t" not in line:
        assert logshape._TIMESTAMP_UNNAMED.sub("", line, count=1) == \
            logshape._TIMESTAMP.sub("", line, count=1)


def test_a_jobs_and_steps_names_before_a_timestamp_are_still_taken_off() -> None:
    assert logshape._transported(LINES[5]) == "error: x"


# _CI_HINT as it was spelt before its alternatives each opened with a character
_CI_HINT_AS_WAS = re.compile(r"##\[|::|\*  |"
                             r"\x1b\[(?:0K|3[12];1m)|={20}|\[command\]|~~~|---|\+\+\+|\^\^\^|\$ |"
                             r"🚨|\[Pipeline\] |"
                             r"Started by |Running on |Finished: |ERROR: script |"
                             r"(?:Task|Description|Version|Author|Help) +: |Generating script|"
                             r"Script contents|Starting Command Output|"
                             r"Step #|FETCHSOURCE|BUILD|PUSH|DONE|ERROR|\*\*\*|: \[| : ok=")


@pytest.mark.parametrize("line", [
    *LINES, "localhost : ok=1    changed=0", "localhost: ok=1", "Task         : Bash", "=" * 19,
    "=" * 78, "Help:", "##[group]Run nix build", "::error file=x::y", "\x1b[0K", "\x1b[33;1m"])
def test_the_ci_systems_hint_is_found_where_it_was(line: str) -> None:
    assert bool(logshape._CI_HINT.search(line)) == bool(_CI_HINT_AS_WAS.search(line))


@pytest.mark.parametrize(("line", "value"), [
    ('time=1 level=error msg="x" stderr="error: y\\nz"', "error: y\\nz"),
    ('Output { status: 1, stdout: "", stderr: "error: x\\n" }', "error: x\\n"),
    ("time=1 level=error msg=x stderr=y", None),
    ("stderr: error: x", None),
])
def test_a_line_without_a_quoted_fields_opening_holds_no_field(line: str,
                                                               value: str | None) -> None:
    field = logshape._logfmt_message(line)
    assert (field["value"] if field else None) == value


FOLDED_LINES = [*LINES, "ERROR: x", "Error: builder for x", "these 3 derivations will be built:",
                "COPYING 2 PATHS", "web_1  | Killed", "killed", "x killed\n", "Reason: x",
                "REQUIRED (SYSTEM, FEATURES)", "unable to START any build", "  trace: x",
                "@nix {", "@NIX {", "  $  ", " ``` ", "fatal: x", "… while evaluating",
                "warning:", "got: x", "web_1  | > ", "[12:00] <alice> ", "x\u212ailled",
                "\u017fpecified: "]


@pytest.mark.parametrize("line", FOLDED_LINES)
def test_an_ascii_line_lowercased_reads_as_case_ignored(line: str) -> None:
    full = logshape._NIX_START.search(line)
    assert logshape._nix_start_at(line) == (full.start() if full else -1)
    assert logshape._not_prefix(line) == (logshape._NOT_PREFIX.search(
        logshape._NICK.sub("", line) if ">" in line else line) is not None)


@pytest.mark.parametrize("source", [r"[A-z]", r"[0-Z]", "\u212a", r"(?-i:Error)", r"x(?i:y)"])
def test_a_pattern_whose_case_is_meaning_is_not_folded(source: str) -> None:
    with pytest.raises(ValueError, match="no ASCII fold"):
        ascii_folded(re.compile(source, re.IGNORECASE if "(?" not in source else 0))


@pytest.mark.parametrize(("source", "folded"), [
    (r"Error\S+\BX", r"error\S+\Bx"),
    (r"[A-Z][a-z]\N{LATIN SMALL LETTER A}", r"[a-z][a-z]\N{LATIN SMALL LETTER A}"),
    (r"[!-/]… (?:While)", r"[!-/]… (?:while)")])
def test_a_patterns_letters_are_folded_but_an_escapes(source: str, folded: str) -> None:
    assert ascii_folded(re.compile(source, re.IGNORECASE)).pattern == folded


@pytest.mark.parametrize("line", FOLDED_LINES)
def test_a_failure_mark_is_found_where_the_case_ignoring_search_finds_it(line: str) -> None:
    full = diagnose.FAILURE_MARK.search(line)
    found = diagnose._says_a_failure_at(line)
    if full is not None:
        assert found is not None and (found.span(), found[0]) == (full.span(), full[0])


def test_a_part_that_keeps_case_folds_to_a_look_that_finds_more() -> None:
    pattern = re.compile(r"x(?-i:Error)", re.IGNORECASE)
    with pytest.raises(ValueError, match="no ASCII fold"):
        ascii_folded(pattern)
    loose = ascii_folded(pattern, exact=False)
    assert loose.search("XERROR".lower()) and not pattern.search("XERROR")
    assert loose.search("XError".lower()) and pattern.search("XError")


@pytest.mark.parametrize("line", [
    *FOLDED_LINES, "May 01 12:00:00 host nixos-upgrade[1234]: x", "1714564800.123456 host u[1]: x",
    "[ 1234.567890] host unit: x", "┃ error: x", "× x", "[pod/x] @nix {\"action\":\"msg\"}",
    "web_1  | 2024-05-01T12:00:00Z x", "web_1  | May 01 12:00:00 host unit: x",
    "x" * 47 + "May 01 12:00:00 host unit: x", "x" * 48 + "May 01 12:00:00 host unit: x",
    "x: " + "y" * 44 + "2024-05-01T12:00:00Z", "x: " + "y" * 45 + "2024-05-01T12:00:00Z",
    "y" * 47 + "2024-05-01T12:00:00Z x", "y" * 48 + "2024-05-01T12:00:00Z x"])
def test_a_known_prefix_is_found_inside_where_the_search_finds_it(line: str) -> None:
    """(within the first characters a prefix is learnt from: all _common_prefix reads)"""
    full = logshape._KNOWN_INSIDE.search(line)
    near = full is not None and full.start() < logshape._MAX_PREFIX
    assert logshape._known_inside_at(line) == (full.start() if full and near else -1)


@pytest.mark.parametrize("before", [
    "web_1  | ", "[12:00] <alice> ", "  12 ", "web_1  | # ", "a1b  c ", "#11 0.174 ",
    "builder_7   | ", "{host=\"runner-1\", job=\"nix\"} "])
def test_a_line_a_prefixs_shape_matches_starts_with_its_words(before: str) -> None:
    """(what _common_prefix counts before it compiles the shape: never fewer than match)"""
    shape = logshape._prefix_shape(before)
    texts = ["web_12   | error: x", "web_3 |x", "web_4  |", "[09:15] <alice> error: x",
             "[09:15]<alice> x", "  7 error: x", "12", "web_1  | # error: x", "web_1  |",
             "a22b c\tx", "a1b  c\u00a0x", "#3 1.5 x", "builder_10 | x",
             "{host=\"runner-2\", job=\"nix\"} error: x", "\u0663 x"]
    starts = [tuple(logshape.numbers_as_zero(text).split()[:logshape._MAX_PREFIX])
              for text in texts]
    for text, start in zip(texts, starts, strict=True):
        if shape.match(text):
            assert logshape._starting(before, [start]) == 1, (before, text)


_NOISY = [
    "warning: not writing modified lock file of flake 'path:/tmp/ci-nix-helper-x':",
    "warning: Git tree '/src/x' is dirty", "warning: Git tree '/src/x' is dirty!",
    "warning: creating lock file '/x/flake.lock'", "warning: updating lock file '/x'",
    "• Added input 'flake':", "  \u2022 Updated input 'nixpkgs':",
    "    'path:/x' (2024-05-01)", "    'path:/x' (2024-05-01) ", "    → 'path:/x'",
    "    follows 'nixpkgs'", "(use '--show-trace' to show detailed location information)",
    "trace: ci-nix:abc:{}", " trace: ci-nix:abc:{}",
    "       … while updating the lock file of flake 'path:/tmp/ci-nix-helper-1/x'",
    "       … while updating the flake input 'flake'", "error: follows 'x'", *LINES]


@pytest.mark.parametrize("line", _NOISY)
def test_a_line_is_noise_where_one_of_the_helpers_notes_is_at_its_start(line: str) -> None:
    assert (diagnose._NOISE_START.search(line) is not None) is any(
        p.search(line) for p in diagnose._NOISE)


def test_a_messages_quoted_lines_kept_are_read_anew_for_other_lines() -> None:
    """quoted_in keeps its last answers by the lines' texts: the same lines read alike, a list
    changed since is read anew, and a long message is read each time."""
    tail = ["error: builder for '/nix/store/x.drv' failed with exit code 1;", "       last 2 log "
            "lines:", "       > a", "       > error: b", "       For full logs, run 'nix log'"]
    lines = list(tail)
    assert logshape.quoted_in(lines) == logshape.quoted_in(tuple(tail)) == {2, 3}
    lines[1] = "       last 1 log lines:"
    assert logshape.quoted_in(lines) == {2}
    assert logshape.quoted_in(["x"] * 200 + tail) == {202, 203}


@pytest.mark.parametrize("line", [*LINES, *_NOISY, "       at /nix/store/x-source/flake.nix:3:12:",
                                  "at «string»:1:4:", "what at <nix/x.nix>:2:3", "x at C:\\a:1:2",
                                  "while evaluating 'f' at \"/a b/c.nix\":1:2, called from x"])
def test_a_lines_positions_are_found_as_the_search_finds_them(line: str) -> None:
    assert diagnose._POS.pattern.startswith(r"\bat ")  # (a line without "at " holds none)
    assert [m.span() for m in diagnose._positions_of(line)] == [
        m.span() for m in diagnose._POS.finditer(line)]
