"""The cheap tests normalising makes before a costly search read every line as the search does."""

from __future__ import annotations

import re

import pytest

from ci_nix import logshape

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
