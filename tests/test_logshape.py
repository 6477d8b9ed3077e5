"""Logs as users capture them: every wrapping of a recorded log keeps its classification."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_nix import diagnose, logshape

DATA = Path(__file__).resolve().parent / "data"
# every captured log with a sidecar, both Nix versions' captures among them
SAMPLES = sorted(p for p in DATA.glob("*/*.expected.json")
                 if json.loads(p.read_text())["mode"] != "helper")
# every log (a part of the fresh corpus still held out would be left out: it is for measuring
# with scripts/measure_diagnosis.py only; none is held out now)
ALL_LOGS = sorted(DATA.rglob("*.log"))


def text_of(expected: Path) -> str:
    return Path(str(expected).removesuffix(".expected.json") + ".log").read_bytes().decode()


def is_json(text: str) -> bool:
    return text.lstrip().startswith("@nix ")


def signature(lines: list[str]) -> list[tuple[str, str, str | None, int | None, str]]:
    return [(d.type.value, d.kind.value, d.drv, d.exit_code, d.message)
            for d in diagnose.parse_log(lines)]


Wrap = Callable[[str], str]


def per_line(f: Callable[[int, str], str]) -> Wrap:
    return lambda text: "\n".join(f(i, line) for i, line in enumerate(text.split("\n")))


def github(text: str) -> str:  # the raw log download of GitHub Actions
    step = (f"##[group]Run nix build\n{text}\n##[endgroup]\n"
            "##[error]Process completed with exit code 1.")
    return per_line(lambda i, line: f"2024-05-01T12:00:{i % 60:02d}.{i:07d}Z {line}")(step)


def gitlab(text: str) -> str:  # GitLab's timestamped job log
    return per_line(lambda i, line: f"2024-05-01T12:00:00.{i:06d}Z 01E {line}")(text)


def kubectl(text: str) -> str:  # a CI pod's log as containerd writes it
    return per_line(lambda i, line: f"2024-05-01T12:00:{i % 60:02d}.000000001Z stderr F {line}")(
        text)


def journald(text: str) -> str:
    return per_line(lambda i, line: f"May 01 12:00:{i % 60:02d} web nixos-upgrade[1234]: {line}")(
        text)


def ansi(text: str) -> str:  # colours as a terminal capture keeps them
    return per_line(lambda i, line: re.sub(r"^(\s*)(error:)", "\\1\x1b[31;1m\\2\x1b[0m",
                                           line.replace("'/nix/store/", "'\x1b[35;1m/nix/store/")))(
        text)


def one_space(text: str) -> str:
    return per_line(lambda i, line: " " + line)(text)


def indented(text: str) -> str:  # pasted into a quote or a YAML block
    return per_line(lambda i, line: "    " + line if line else line)(text)


def dedented(text: str) -> str:  # copied without its indentation
    return per_line(lambda i, line: line.lstrip(" "))(text)


def nom(text: str) -> str:  # nix-output-monitor (and nh, which runs it)
    return per_line(lambda i, line: f"┃ {line}")(text) + "\n┗━ ∑ ⚠ Exited with 1 errors"


def miette(text: str) -> str:  # devenv
    lines = text.split("\n")
    return "\n".join(["Error:   × Command `nix build` failed"]
                     + [f"  ╰─▶ {lines[0]}"] + [f"      │ {line}" for line in lines[1:]])


def json_records(text: str) -> str:  # one structured record a line (Stackdriver-style)
    return per_line(lambda i, line: json.dumps({"severity": "ERROR", "message": line}))(text)


def json_record(text: str) -> str:  # devbox: the whole stderr in one record
    return json.dumps({"level": "error", "msg": "nix build failed", "error": text})


def escaped(text: str) -> str:  # logfmt: the stderr with its line ends escaped
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'time=2024-05-01T12:00:00Z level=error msg="{body}"'


def progress_bar(text: str) -> str:  # the message glued to the bar a viewer left behind
    return re.sub(r"^error:", "[1/0/2 built] building hello: make[1]: Leaving directory"
                  "error:", text, count=1, flags=re.MULTILINE)


def colmena(text: str) -> str:  # colmena relaying Nix's stderr
    return "[ERROR] Failed to build host - Last 20 lines of logs:\n" + per_line(
        lambda i, line: f"[ERROR]   stderr) {line}")(text)


def nixos_rebuild_ng(text: str) -> str:  # its own lines around Nix's, and str() of the error
    return ("building the system configuration...\n" + text + "\nCommand '['nix', "
            "'--extra-experimental-features', 'nix-command flakes', 'build', "
            "'.#nixosConfigurations.\"web\".config.system.build.toplevel']' returned non-zero "
            "exit status 1.")


def nh(text: str) -> str:  # nh: its banner, Nix through nom, its color-eyre report
    return ("> Building NixOS configuration\n" + nom(text) + "\nError:\n   0: Failed to build "
            "configuration\n   1: Command exited with status Exited(1)\n\nLocation:\n"
            "   src/commands.rs:57")


def print_build_logs(text: str) -> str:  # `nix build -L` output of another build before it
    return "\n".join(["helper> compiling", "helper> error: not this one", "helper>"]) + "\n" + text


def compose(text: str) -> str:  # docker compose: the service before every line
    return per_line(lambda i, line: f"builder_1  | {line}")(text)


def git_remote(text: str) -> str:  # a build in a git hook: git prefixes what the remote says
    return per_line(lambda i, line: f"remote: {line}")(text)


def bracket_time(text: str) -> str:  # Buildkite, Jenkins' timestamper
    return per_line(lambda i, line: f"[2024-05-01 12:{i // 60 % 60:02d}:{i % 60:02d}] {line}")(
        text)


def line_numbers(text: str) -> str:  # copied from a log viewer with its line numbers
    return per_line(lambda i, line: f"{i + 1:4d} {line}")(text)


def html_escaped(text: str) -> str:  # copied from a page's HTML source
    return text.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&quot;").replace(
        "<", "&lt;").replace(">", "&gt;")


def smart_quotes(text: str) -> str:  # a forum or chat that typesets quotes
    return re.sub(r"'([^'\n]*)'", "\u2018\\1\u2019", text)


TOOL: dict[str, Wrap] = {"ansi": ansi, "one-space": one_space, "indented": indented,
                         "dedented": dedented, "nom": nom, "miette": miette, "colmena": colmena,
                         "nixos-rebuild-ng": nixos_rebuild_ng, "nh": nh,
                         "progress-bar": progress_bar, "build-logs": print_build_logs,
                         "html": html_escaped, "smart-quotes": smart_quotes}
# a prefix on every line, unknown to the normaliser: learnt from the lines, so it takes two
# (on a single line it cannot be told from a sentence around Nix's words)
PREFIX: dict[str, Wrap] = {"compose": compose, "git-remote": git_remote,
                           "bracket-time": bracket_time, "line-numbers": line_numbers}
RECORD: dict[str, Wrap] = {"json-records": json_records, "json-record": json_record,
                           "escaped": escaped}
TRANSPORT: dict[str, Wrap] = {"github": github, "gitlab": gitlab, "journald": journald,
                              "kubectl": kubectl}
# internal-json comes straight from Nix to a file: only records and transport wrap it
FOR_JSON = {"one-space", "indented", "dedented"} | set(RECORD) | set(TRANSPORT)
WRAPPINGS = TOOL | RECORD | TRANSPORT | PREFIX


def applies(name: str, text: str) -> bool:
    if name in PREFIX and sum(1 for line in text.split("\n") if line.strip()) < 2:
        return False
    return name in FOR_JSON or not is_json(text)


@pytest.mark.parametrize("expected", SAMPLES,
                         ids=[f"{p.parent.name}/{p.name.removesuffix('.expected.json')}"
                              for p in SAMPLES])
def test_every_wrapping_keeps_the_classification(expected: Path) -> None:
    """One case per recorded sample (pytest's per-case cost dominates), every wrapping in it."""
    text = text_of(expected)
    plain = signature(text.split("\n"))
    assert plain, "the recorded sample itself is classified"
    changed = {name: got for name, wrap in WRAPPINGS.items() if applies(name, text)
               and (got := signature(wrap(text).split("\n"))) != plain}
    assert not changed, f"plain: {plain}; changed by: {changed}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.sampled_from([None, *TOOL]),
       st.sampled_from([None, *RECORD]), st.sampled_from([None, *TRANSPORT]))
def test_stacked_wrappings_keep_classification(expected: Path, tool: str | None,
                                               record: str | None,
                                               transport: str | None) -> None:
    text = text_of(expected)
    wrapped = text
    for name in (tool, record, transport):
        if name is not None and applies(name, text):
            wrapped = WRAPPINGS[name](wrapped)
    assert signature(wrapped.split("\n")) == signature(text.split("\n"))


def holds_error_line(lines: list[str]) -> bool:
    return any(re.search(r"^\s*error:|^\s*Cannot build |^\s*Reason: |builder for \S+ failed|"
                         r"hash mismatch|timed out after", line.text)
               for line in logshape.normalise(lines) if line.builder is None)


@pytest.mark.parametrize("log", ALL_LOGS, ids=[str(p.relative_to(DATA)) for p in ALL_LOGS])
def test_no_log_with_an_error_line_yields_nothing(log: Path) -> None:
    lines = log.read_bytes().decode("utf-8", errors="replace").split("\n")
    if holds_error_line(lines):
        assert diagnose.parse_log(lines)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ALL_LOGS), st.integers(0, 400), st.integers(1, 60),
       st.sampled_from([None, *WRAPPINGS]))
def test_no_fragment_with_an_error_line_yields_nothing(log: Path, start: int, length: int,
                                                       wrapping: str | None) -> None:
    """Any piece of a recorded log, as pasted into an issue, under any wrapping."""
    lines = log.read_bytes().decode("utf-8", errors="replace").split("\n")
    start = start % len(lines)
    piece = "\n".join(lines[start:start + length])
    if wrapping is not None and applies(wrapping, piece):
        piece = WRAPPINGS[wrapping](piece)
    if holds_error_line(piece.split("\n")):
        assert diagnose.parse_log(piece.split("\n"))


def test_a_github_step_that_failed_without_nix_saying_why_is_other() -> None:
    lines = github("nix build .#hello").split("\n")
    [found] = diagnose.parse_log(lines)
    assert found.type.value == "other" and found.message == "Process completed with exit code 1."
    assert found.log_line == len(lines)


def test_lines_keep_their_origin() -> None:
    text = journald("building '/nix/store/x.drv'...\n" + json_record("error: a\n       b"))
    shaped = logshape.normalise(text.split("\n"))
    assert [(line.text, line.origin) for line in shaped] == [
        ("building '/nix/store/x.drv'...", 0), ("error: a", 1), ("       b", 1)]


def test_build_log_prefix_is_kept_apart() -> None:
    shaped = logshape.normalise(["hello> make: *** [all] Error 1", "       > quoted"])
    assert [(line.builder, line.text) for line in shaped] == [
        ("hello", "make: *** [all] Error 1"), (None, "       > quoted")]


def test_builder_output_saying_error_is_not_a_failure() -> None:
    assert diagnose.parse_log(["hello> error: expected ';' before '}' token"]) == []


def test_internal_json_is_not_unescaped() -> None:
    record = '@nix {"action":"msg","level":0,"msg":"error: a\\n       b"}'
    assert [line.text for line in logshape.normalise([f"2024-05-01T12:00:00Z {record}"])] == [
        record]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8")) | st.sampled_from([
    "@nix {", '{"message": "error: x\\n  y"}', "┃ error:", "hello> error: x", "\r\x1b[K",
    "2024-05-01T12:00:00Z ", "##[error]", "> error: builder for '/nix/store/x", "`error: a`"]),
    max_size=12))
def test_any_text_normalises_and_parses(lines: list[str]) -> None:
    """Odd bytes, half records, glyphs and prefixes in any order: no exception, origins valid."""
    shaped = logshape.normalise(lines)
    assert all(0 <= line.origin < len(lines) for line in shaped)
    for found in diagnose.parse_log(lines):
        assert "\n" not in found.message
        assert found.log_line is None or 1 <= found.log_line <= len(lines)


# what says a build or evaluation failed, as Nix and the tools around it write it
FAILURE_WORDS = ["error: attribute 'x' missing", "error:", "Cannot build '/nix/store/"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv'.", "Reason: builder failed",
                 "builder for '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv' failed with "
                 "exit code 2", "hash mismatch in fixed-output derivation", "timed out",
                 "program 'git' failed with exit code 128", "error: opening lock file 'x': "
                 "Permission denied", "nix-build: derivation-goal.cc:326: void f(): Assertion "
                 "`false' failed."]
CASES: list[Callable[[str], str]] = [str, str.lower, str.upper, str.title, str.swapcase]
# what may stand around those words in a line (a sentence, markdown, a tool's prefix), without
# what makes a line a builder's output (`name> `), a warning, or an internal-json record
AROUND = st.text(alphabet="abcXYZ 09.,;:*_`'()-/|#\t", max_size=24)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=8),
       st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=8),
       AROUND, st.sampled_from(FAILURE_WORDS), st.sampled_from(CASES), AROUND,
       st.sampled_from([None, *WRAPPINGS]))
def test_a_line_saying_it_failed_is_never_a_silent_zero(
        before: list[str], after: list[str], prefix: str, words: str,
        case: Callable[[str], str], suffix: str, wrapping: str | None) -> None:
    """Any text around it, any case, indentation and wrapping: at least one failure."""
    text = "\n".join([*before, prefix + case(words) + suffix, *after])
    if wrapping is not None:
        text = WRAPPINGS[wrapping](text)
    found = diagnose.parse_log(text.split("\n"))
    assert found
    assert all(f.log_line is None or 1 <= f.log_line <= len(text.split("\n")) for f in found)


def test_a_record_field_normalising_does_not_read_still_counts() -> None:
    record = json.dumps({"level": "info", "msg": "nix finished", "stderr": "error: opening "
                         "lock file '/nix/var/nix/db/big-lock': Permission denied"})
    [found] = diagnose.parse_log([record])
    assert found.log_line == 1 and "big-lock" in found.message


def test_a_trace_of_old_nix_without_its_message_is_eval() -> None:
    [found] = diagnose.parse_log([
        "while evaluating 'fold'' at \"/nix/store/x/lib/lists.nix\":23:15, called from "
        "\"/nix/store/x/lib/lists.nix\":26:34:"] * 3)
    assert found.type.value == "eval"


def test_a_trace_cut_short_inside_a_fetch_is_a_download_not_eval() -> None:
    # the innermost frame says what Nix was doing when the message was cut off
    [found] = diagnose.parse_log([
        "       … while updating the lock file of flake 'git+file:///src/app'",
        "       … while fetching the input 'github:NixOS/nixpkgs/nixos-unstable'"])
    assert (found.type.value, found.kind.value) == ("other", "download")
    [evaluating] = diagnose.parse_log(["       … while evaluating the attribute 'x'"])
    assert evaluating.type.value == "eval"


def test_nixpkgs_refusing_a_package_without_error_prefix_is_eval() -> None:
    [found] = diagnose.parse_log(["Package 'x-1.0' in /p/default.nix:3 is marked as broken, "
                                  "refusing to evaluate."])
    assert found.type.value == "eval" and found.log_line == 1


def test_a_fetch_failing_under_a_trace_is_no_evaluation_error() -> None:
    [found] = diagnose.parse_log([
        "error:", "       … while updating the lock file of flake 'git+file:///w'", "",
        "       … while fetching the input 'git+ssh://git@example.org/b'", "",
        "       error: program 'git' failed with exit code 128"])
    assert (found.type.value, found.kind) == ("other", diagnose.Kind.DOWNLOAD)


def test_a_substituter_failing_is_substitution() -> None:
    [found] = diagnose.parse_log(["error: substituter 'https://cache.example/' is disabled"])
    assert (found.type.value, found.kind) == ("other", diagnose.Kind.SUBSTITUTION)


def test_nix_crashing_is_nix() -> None:
    [found] = diagnose.parse_log([
        "nix-build: ../build/derivation-goal.cc:186: nix::Goal::Co nix::DerivationGoal::"
        "haveDerivation(): Assertion `x > 0' failed."])
    assert (found.type.value, found.kind) == ("other", diagnose.Kind.NIX)


def test_what_is_not_nix_reporting_a_failure_stays_none() -> None:
    """Builder output, Nix's warnings and traces, and errors Nix ignored are no failure."""
    assert diagnose.parse_log([
        "hello> error: expected ';' before '}' token",
        "[1/0/2 built] building hello: test_connect ... timed out",
        "warning: unable to download 'https://cache.example/x.narinfo': Timeout was reached "
        "(28); retrying in 281 ms",
        "trace: error: this is only a trace",
        "error (ignored): error: opening file 'x': No such file or directory",
        '@nix {"action":"msg","level":1,"msg":"warning: hash mismatch is only a warning"}',
    ]) == []


def word_wrapped(text: str, width: int = 80) -> str:  # a pager or nom breaking at blanks
    return "\n".join(piece for line in text.split("\n") for piece in (
        textwrap.wrap(line, width, drop_whitespace=False, break_on_hyphens=False) or [""]))


def hard_wrapped(text: str, width: int = 80) -> str:  # a terminal cutting inside words
    return "\n".join(line[i:i + width] for line in text.split("\n")
                     for i in range(0, max(len(line), 1), width))


CAPTURED = sorted(p for part in ("nix-2.8", "nix-2.26")
                  for p in (DATA / part).glob("*.text.expected.json"))


@pytest.mark.parametrize("expected", CAPTURED, ids=[f"{p.parent.name}/{p.name}" for p in CAPTURED])
def test_lines_broken_at_a_width_keep_type_and_derivation(expected: Path) -> None:
    """Both Nix versions' captures, broken at 80 columns at blanks or inside words."""
    text = text_of(expected)

    def first(lines: str) -> tuple[str, str | None] | None:
        found = diagnose.parse_log(lines.split("\n"))
        return (found[0].type.value, found[0].drv) if found else None

    assert first(word_wrapped(text)) == first(text)
    assert first(hard_wrapped(text)) == first(text)
