"""diagnose on its own: helper noise, positions mapped to the repo, hints, build messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ci_nix import build, diagnose, logshape, logtext
from ci_nix.diagnose import Kind
from ci_nix.models import FailureType, Flake, Repo

DATA = Path(__file__).resolve().parent / "data"


def test_helper_positions_and_lock_notes_never_reach_the_report() -> None:
    # the evaluation worker's trace runs through ci-nix's helper flake (its flake.nix, eval.nix
    # and the --apply «string»): the position is the user's, the log shows none of the helper
    text = (DATA / "nix-2.26/throw.helper.log").read_text()
    found = diagnose.diagnose_eval(text)
    assert found.message == "the package is marked broken at flake.nix:12:39"
    assert (found.file, found.line) == ("flake.nix", 12)
    for helper in ("eval.nix", "lib.ciNix", "builtins.fromJSON", "not writing modified lock",
                   "Added input", "trace: ci-nix:"):
        assert helper not in found.log, helper


def test_position_maps_into_the_repo_of_the_flake(tmp_path: Path) -> None:
    repo = tmp_path / "hosts"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "flake.nix").write_text("{}\n")
    flake = Flake(Repo("hosts", repo), "sub")
    text = ("error: attribute 'nope' missing\n\n"
            "       at /nix/store/xdvgssw43ssmfv2wxplqcgjyfp0pscfy-source/lib/modules.nix:9:3:\n"
            "error: attribute 'nope' missing\n"
            "       at /nix/store/00000000000000000000000000000000-source/sub/flake.nix:4:37:\n")
    found = diagnose.diagnose_eval(text, flake)
    assert (found.file, found.line, found.column) == ("sub/flake.nix", 4, 37)
    assert found.message == "attribute 'nope' missing at sub/flake.nix:4:37"


def test_position_outside_the_repo_is_not_claimed(tmp_path: Path) -> None:
    flake = Flake(Repo("r", tmp_path), "")
    text = (DATA / "public/nixos-hardware-621-infinite-recursion.text.log").read_text()
    found = diagnose.diagnose_eval(text, flake)
    assert found.kind == "infinite-recursion" and found.file is None
    assert "mkIf" in (found.hint or "") and "imports" in (found.hint or "")


def test_failure_carries_hint_and_position() -> None:
    failure = diagnose.eval_failure((DATA / "nix-2.8/untracked-file.text.log").read_text())
    assert failure.type is FailureType.EVAL and failure.file == "generated.nix"
    assert "git add" in (failure.hint or "")


@pytest.mark.parametrize("before", ["    #   stderr) ", "# ", "web_1  | ", "I got "])
def test_a_nixos_quote_inside_a_line_keeps_its_backtick(before: str) -> None:
    # NixOS quotes option names `like this'; taking the backtick for markdown's left the
    # evaluator's words ("The option `…'") unreadable: `other` for a module system error
    message = "The option `services.x.listeners.\"[definition 1-entry 2]\".resources' is used " \
              "but not defined."
    [found] = diagnose.parse_log([f"{before}error: {message}"])
    assert (found.type, found.message) == (FailureType.EVAL, message)
    # a code span holding a quote of its own is markdown's, taken away as before
    [found] = diagnose.parse_log(
        [f"{before}`error: function 'anonymous lambda' called without required argument 'lib'`"])
    assert found.message.startswith("function 'anonymous lambda'")


def test_a_position_nix_wrote_into_the_message_is_not_added_again() -> None:
    # Nix <= 2.3 ends a message with its position (", at FILE:LINE:COL"); 2.4+ prints it apart
    for nix23 in ("error: syntax error, unexpected ',', expecting $end, at /home/u/shell.nix:6:1",
                  "error: undefined variable 'x' at /etc/nixos/web.nix:287:23"):
        [found] = diagnose.parse_log([nix23])
        assert found.message == nix23.removeprefix("error: ") and found.line in (6, 287)
    [found] = diagnose.parse_log(["error: undefined variable 'x'",
                                  "       at /etc/nixos/web.nix:287:23:"])
    assert found.message == "undefined variable 'x' at /etc/nixos/web.nix:287:23"


@pytest.mark.parametrize("nix", ["nix-2.8", "nix-2.26"])
def test_untracked_file_is_named_by_its_workspace_path(tmp_path: Path, nix: str) -> None:
    """#23: Nix names the store copy; the user needs the file in the checkout."""
    log = (DATA / nix / "untracked-file.text.log").read_text()
    (tmp_path / "generated.nix").write_text("{ }")
    failure = diagnose.eval_failure(log, Flake(Repo("r", tmp_path), ""))
    assert failure.message.startswith(f"{tmp_path}/generated.nix is not tracked by git")
    assert f"`git -C {tmp_path} add generated.nix`" in (failure.hint or "")
    (tmp_path / "generated.nix").unlink()
    failure = diagnose.eval_failure(log, Flake(Repo("r", tmp_path), ""))
    assert failure.message.startswith(f"{tmp_path}/generated.nix does not exist in the workspace")
    assert "git add" not in (failure.hint or "")


def test_build_error_keeps_the_entry_point_build_py_uses() -> None:
    err = diagnose.build_error(
        "\x1b[31;1merror:\x1b[0m building of '/nix/store/rqvki18y6vnm2ibaz1pfdw933ws5nxim-"
        "slow-1.0.drv^out' from .drv file timed out after 2 seconds")
    assert err is not None and err.type is FailureType.TIMEOUT
    assert err.drv == "/nix/store/rqvki18y6vnm2ibaz1pfdw933ws5nxim-slow-1.0.drv"
    assert diagnose.build_error("error: some unrelated message") is None


def test_tail_is_clean_and_bounded() -> None:
    lines = [f"\x1b[1mline {i}\x07\x00" for i in range(1000)]
    text = logtext.tail(lines)
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert text.endswith("line 999") and len(text.splitlines()) == logtext.TAIL_LINES
    assert len(logtext.tail(["x" * 20000])) <= logtext.TAIL_CHARS + 1


# Hydra names a timed-out build by its output path (https://github.com/NixOS/nixpkgs/pull/99119)
HYDRA_SILENCE = ("building of '/nix/store/m2ks0z3wgixmwq0xrjl9nmxinv1l15qn-noto-fonts-emoji-"
                 "unstable-2020-08-20' timed out after 7200 seconds of silence")


def test_timeout_named_by_output_path_inside_internal_json() -> None:
    event = {"action": "msg", "level": 0, "msg": "\x1b[31;1merror:\x1b[0m " + HYDRA_SILENCE}
    found = diagnose.parse_log(["@nix " + json.dumps(event)])
    assert [(d.type, d.kind, d.drv) for d in found] == [
        (FailureType.TIMEOUT, "max-silent-time", None)]
    assert "noto-fonts-emoji-unstable-2020-08-20 printed nothing for 7200 s" in found[0].message


@pytest.mark.parametrize("version", ["2.8", "2.26"])
def test_error_glued_to_the_progress_bar_is_found_and_builder_output_is_not(
        version: str) -> None:
    # A log viewer that drops "\r" and the erase codes glues Nix's message to its progress bar
    # (on 2.8, to the bar that showed the builder's own "error: boom" a moment before).
    capture = (DATA / f"nix-{version}/progress-bar.tty.log").read_bytes().decode()
    glued = logtext.clean(capture).split("\n")
    assert any("built] building slow-broken-1.0: " in line and "error: builder for" in line
               for line in glued)
    found = diagnose.parse_log(glued)
    assert [(d.type, d.exit_code) for d in found] == [(FailureType.BUILD, 2)]
    assert found[0].drv is not None and found[0].drv.endswith("-slow-broken-1.0.drv")
    # the builder's own output on the bar is not an error of Nix's
    bar_only = "[1/0/1 built] building slow-broken-1.0: main.c:1: error: boom"
    assert diagnose.parse_log([bar_only]) == []


@pytest.mark.parametrize("bar", [
    "[0.0/0.1 MiB DL] downloading 'https://example.org/x.tar.gz'",  # 2.x: a download alone
    "[0.0/0.1 MiB DL]", "[2/5 paths verified] checking '/nix/store/x'",
    "[512.0 KiB/1.2 MiB DL] downloading 'https://example.org/x.tar.gz'"])  # 2.2x: units each
def test_a_message_glued_to_a_bar_of_any_first_item_is_read_as_plain(bar: str) -> None:
    # Nix's bar (libmain/progress-bar.cc, getStatus) starts with whichever of its items has
    # activity: builds, copies, downloads ("MiB DL"), verified or optimised paths; a message
    # glued to a bar without builds or copies was read as part of the bar's line
    message = ["error: undefined variable 'foo'", "", "       at /home/u/flake.nix:3:5:", "",
               "            2|   outputs = _: {", "            3|     x = foo;",
               "             |     ^"]
    want = [(d.type, d.kind, d.message) for d in diagnose.parse_log(message)]
    found = diagnose.parse_log(["copying path '/nix/store/x' from 'https://cache.nixos.org'...",
                                bar + message[0], *message[1:]])
    assert [(d.type, d.kind, d.message) for d in found] == want


def test_an_error_glued_to_the_bar_keeps_the_escaped_errors_its_message_carries() -> None:
    # heldout-231's nix-index#297 behind a bar: its error holds nix-env's stderr escaped
    # ("…exit status: 1:\nerror: attribute …"); the message glued to the bar starts at the
    # first "error:" after it, an escaped one inside it is the message's
    message = ('error: QueryPackages { source: Command("nix-env failed with exit status: 1:\\n'
               "error: attribute 'xorg' in selection path 'xorg' not found\\n\") }")
    [found] = diagnose.parse_log(["[1/0/2 built] building hello: make[1]: Leaving directory"
                                  + message])
    assert found.message.startswith("QueryPackages {"), found


@pytest.mark.parametrize("lost", ["rror: ", "ror: ", "r: "])
def test_builder_header_whose_error_prefix_a_copy_ate_still_heads_its_block(lost: str) -> None:
    # heldout-307's nixpkgs#310121: a paste lost the first letters of 2.4+'s header; its ";"
    # at the end is still the header, the builder's last lines under it, not a headerless tail
    drv = "/nix/store/" + "a" * 32 + "-mod-1.0-6.9.drv"
    log = [f"{lost}builder for '{drv}' failed with exit code 2;",
           "       last 3 log lines:",
           "       > make[2]: Leaving directory '/build'",
           "       > make: *** [Makefile:10: all] Error 2",
           f"       For full logs, run 'nix log {drv}'."]
    found = diagnose.parse_log(log)
    assert [(d.type, d.drv, d.exit_code) for d in found] == [(FailureType.BUILD, drv, 2)]


@pytest.mark.parametrize("cut", [1, 3, 9, 14, 19])  # inside a word: "f|ailed", "ex|it"
def test_builder_header_a_paste_wrapped_inside_its_words_is_whole_again(cut: int) -> None:
    # heldout-312's nixpkgs PR#429117: "….drv' f" / "ailed with exit code 1;", a width no other
    # line of the log proves (the issue's prose is longer): joined without a blank
    drv = "/nix/store/" + "c" * 32 + "-python3.12-xformers-0.0.32.post2.drv"
    header = f"error: builder for '{drv}' failed with exit code 1;"
    at = header.index("failed") + cut
    log = ["A sentence of the issue that is longer than any line of the pasted log below it, by far"
           " and away, so no width is learnt from it.", "```", header[:at], header[at:],
           "       last 25 log lines:", "       >   File \"setup.py\", line 3, in <module>", "```"]
    found = diagnose.parse_log(log)
    assert [(d.type, d.drv, d.exit_code) for d in found] == [(FailureType.BUILD, drv, 1)]


@pytest.mark.parametrize("quotes", ["''", "‘’"])
@pytest.mark.parametrize("cut", [0, 4, 9, 14, 19])  # "' |failed", "fail|ed", "ex|it", …
def test_an_unprefixed_builder_header_wrapped_before_its_exit_code_is_whole_again(
        quotes: str, cut: int) -> None:
    # heldout-548's nixpkgs#114854: 1.x-2.3's "builder for '…' fail" / "ed with exit code 1"
    # (no "error:" before it, unlike heldout-312's 2.4+ header), its recap wrapped too
    drv = "/nix/store/" + "z" * 32 + "-MBdistortion-1.1.1-unstable.drv"  # no cut at 80 or 100
    header = f"builder for {quotes[0]}{drv}{quotes[1]} failed with exit code 1"
    at = header.index(" failed") + 1 + cut
    log = ["A sentence of the issue that is longer than any line of the pasted log below it, by far"
           " and away, so no width is learnt from it.", "```",
           "ERROR : path '/MBdistortion/frequency_bands/low/Drive' is already used",
           header[:at], header[at:], f"error: build of {quotes[0]}{drv}{quotes[1]} ", "failed",
           "```"]
    found = diagnose.parse_log(log)
    assert [(d.type, d.drv, d.exit_code) for d in found] == [(FailureType.BUILD, drv, 1)]


def test_platform_of_nix_2_29_is_read_from_build_py_messages() -> None:
    # as build.py receives it: one internal-json message (https://github.com/cpick/nix-rosetta-builder/issues/37)
    err = diagnose.build_error(
        "error: Cannot build '/nix/store/m18awgr4fck6g56lq7zfv9ri1gkq9ida-nixos-25.11.20250814."
        "fbcf476.drv'.\n       Reason: required system or feature not available\n"
        "       Required system: 'aarch64-linux' with features {}\n"
        "       Current system: 'aarch64-darwin' with features {apple-virt, benchmark}")
    assert err is not None and err.type is FailureType.PLATFORM
    assert err.message == ("nixos-25.11.20250814.fbcf476.drv needs aarch64-linux; this machine "
                           "is aarch64-darwin")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8")), max_size=20),
       st.text(alphabet="[]/0123456789 builtcopied:\r\x1b", max_size=40))
def test_any_text_parses_and_an_error_after_the_bar_is_always_found(
        noise: list[str], bar: str) -> None:
    diagnose.parse_log(noise)  # never raises on outside text
    line = bar + "\r\x1b[K\x1b[31;1merror:\x1b[0m builder for '/nix/store/" + "a" * 32 + (
        "-x-1.0.drv' failed with exit code 3;")
    found = diagnose.parse_log([*noise, "", line])
    assert any(d.drv == "/nix/store/" + "a" * 32 + "-x-1.0.drv" and d.exit_code == 3
               for d in found)


def test_substitution_failure_names_the_url_that_failed() -> None:
    # the messages of https://github.com/NixOS/nix/issues/9664, in the order Nix prints them
    log = [
        "warning: error: unable to download 'https://cache.nixos.org/nar/03qi02a3l2c9xi42l61fc1"
        "jqxpk6qczayk5bp4bqp1644p1rq1qy.nar.xz': HTTP error 200 (curl error: Failure when "
        "receiving data from the peer); retrying from offset 9283328 in 274 ms",
        "error: some substitutes for the outputs of derivation '/nix/store/2wb3wxcvl6kl8qiws6"
        "yavn46fsj1srmc-mpv-0.36.0.drv' failed (usually happens due to networking issues); try "
        "'--fallback' to build derivation from source",
    ]
    for lines in (log, ["@nix " + json.dumps({"action": "msg", "level": 1 if i == 0 else 0,
                                              "msg": line})
                        for i, line in enumerate(log)]):
        [found] = diagnose.parse_log(lines)
        assert (found.type, found.kind) == (FailureType.OTHER, "substitution")
        assert found.message == (
            "could not substitute mpv-0.36.0.drv from the binary cache: unable to download "
            "https://cache.nixos.org/nar/03qi02a3l2c9xi42l61fc1jqxpk6qczayk5bp4bqp1644p1rq1qy."
            "nar.xz: HTTP error 200 (curl error: Failure when receiving data from the peer)")
        assert "retrying from offset" in found.log


_CSI = st.builds(lambda params, final: f"\x1b[{params}{final}",
                 st.text(alphabet="0123456789;?", max_size=8), st.sampled_from("mKAJHhlsu"))
_OSC = st.builds(lambda payload, end: f"\x1b]{payload}{end}",
                 st.text(alphabet="8;:/abcdefxyz0123456789.", max_size=20),
                 st.sampled_from(["\x07", "\x1b\\"]))
_SHORT = st.sampled_from(["\x1bM", "\x1b7", "\x1b8", "\x1b="])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=st.characters(blacklist_characters="\x1b"),
                                  max_size=10),
                          st.one_of(_CSI, _OSC, _SHORT)), max_size=8))
def test_clean_removes_every_terminal_escape(pieces: list[tuple[str, str]]) -> None:
    # colours, cursor moves, hyperlinks (OSC 8) and short escapes leave the text alone
    plain = "".join(text for text, _ in pieces)
    drawn = "".join(text + escape for text, escape in pieces)
    assert logtext.clean(drawn) == logtext.clean(plain)


def test_kinds_are_one_enum() -> None:
    assert all(isinstance(kind, diagnose.Kind) for kind in diagnose.HINTS)
    found = diagnose.build_error("error: builder for '/nix/store/rqvki18y6vnm2ibaz1pfdw933ws5nxim-"
                                 "x-1.0.drv' failed with exit code 2")
    assert found is not None and found.diagnosis is not None
    assert found.diagnosis.kind is diagnose.Kind.BUILDER


def test_host_problems_are_the_machines_not_the_flakes() -> None:
    nix28 = ("error: failed to extract archive (Write failed)\n"
             "(use '--show-trace' to show detailed location information)\n")
    problem = diagnose.host_problem(nix28, "/tmp/full")
    assert problem is not None and problem.startswith("failed to extract archive")
    assert "TMPDIR (/tmp/full)" in problem
    written = diagnose.host_problem("error: writing to file: No space left on device", "/tmp")
    assert written is not None and "free space" in written
    read_only = diagnose.host_problem(
        "error: creating directory '/nix/store/x': Read-only file system", "/tmp")
    assert read_only is not None and "writable" in read_only
    assert diagnose.host_problem("error: syntax error, unexpected ';'", "/tmp") is None
    # the words in a trace frame, not in the error itself, do not count
    frame = "… while evaluating 'No space left on device'\nerror: boom"
    assert diagnose.host_problem(frame, "/tmp") is None


# #28: a build that needs the network inside the sandbox (a plain runCommand running
# `skopeo copy docker://…`)
_SKOPEO = (DATA / "sources" / "nix-2.26-skopeo-no-network.text.log").read_text()


def test_a_build_without_network_hints_at_a_fixed_output_derivation_and_pull_image() -> None:
    [found] = diagnose.parse_log(_SKOPEO.split("\n"))
    assert found.type is FailureType.BUILD and found.kind is Kind.NO_NETWORK
    assert found.exit_code == 1
    assert found.hint is not None
    assert "fixed-output derivation" in found.hint and "dockerTools.pullImage" in found.hint


def test_a_compiler_fetching_at_build_time_gets_the_sandbox_hint_without_pull_image() -> None:
    text = (DATA / "fresh" / "heldout" / "zmx-69-cannot-build-dns.text.log").read_text()
    [found] = diagnose.parse_log(text.split("\n"))
    assert found.kind is Kind.NO_NETWORK and found.hint is not None
    assert "outputHash" in found.hint and "pullImage" not in found.hint


def test_a_refused_connection_of_a_test_server_is_no_network_failure() -> None:
    log = _SKOPEO.replace("dial tcp: lookup registry-1.docker.io on [::1]:53: read udp "
                          "[::1]:40135->[::1]:53: read: ", "dial tcp 127.0.0.1:5000: ")
    [found] = diagnose.parse_log(log.split("\n"))
    assert found.kind is Kind.BUILDER and found.hint is None


def test_a_fetcher_that_cannot_resolve_its_host_stays_a_download_failure() -> None:
    text = (DATA / "fresh" / "dev" / "autofirma-743-dns-mirror.text.log").read_text()
    [found] = diagnose.parse_log(text.split("\n"))
    assert found.type is FailureType.OTHER and found.kind is Kind.DOWNLOAD


# An error text is evaluation's only on the evaluator's own evidence: a trace frame, a position
# in Nix code, or words only the evaluator says. Without any, it is Nix's own (its command line,
# store, fetcher, daemon, configuration): `other`, whatever the words.
_UNKNOWN_WORDS = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz '-:/."),
                         min_size=1, max_size=80).filter(
    lambda s: s.strip(" '-:/.") and not diagnose._evaluated(s, []))


@given(_UNKNOWN_WORDS)
def test_an_error_nothing_shows_the_evaluator_said_is_other(words: str) -> None:
    message = f"frobnicating {words}"
    found = diagnose.diagnose_eval(f"error: {message}\n")
    # never evaluation; words that name a failure of Nix's own (a hash mismatch, a download)
    # may make it that failure
    assert found.type is not FailureType.EVAL, found
    assert found.message.startswith("frobnicating")


@given(_UNKNOWN_WORDS, st.sampled_from([
    "       … while evaluating the attribute 'packages.x86_64-linux.default'\n",
    "       … while calling the 'derivationStrict' builtin\n",
    "       at /nix/store/00000000000000000000000000000000-source/flake.nix:4:7:\n",
    "            4|   x = y;\n",
    "while evaluating 'f' at /home/u/default.nix:1:2, called from undefined position:\n",
]))
def test_the_same_error_with_a_frame_of_the_evaluator_is_eval(words: str, frame: str) -> None:
    # words that name a failure of Nix's own (a download, a substituter, Nix crashing) decide it
    # before any frame does: only the words that leave it to the evidence
    assume(diagnose.diagnose_eval(f"error: frobnicating {words}\n").kind is Kind.ERROR)
    found = diagnose.diagnose_eval(f"error:\n{frame}\n       error: frobnicating {words}\n")
    assert found.type is FailureType.EVAL, found


@pytest.mark.parametrize("text", [
    "error: 'config' is not a recognised command\nTry 'nix --help' for more information.",
    "error: installable '/nix/store/g465zjjhbkgn0ni9cqmpcd21b6ss3wbz-profile' does not "
    "correspond to a Nix language value",
    "error: Failed to fetch git repository https://example.org/r.git : error: RPC failed; "
    "HTTP 405 curl 22 The requested URL returned error: 405",
    "error:\n       … while setting up the build environment\n\n       error: getting attributes "
    "of path \"/nix/store/52bwzii258w7dk5qh031ivhb62rsc9hl-remain-0.2.12.tar.gz\": No such file "
    "or directory",
])
def test_nix_own_errors_are_other(text: str) -> None:
    assert diagnose.diagnose_eval(text).type is FailureType.OTHER


@pytest.mark.parametrize(("text", "kind"), [
    ("error: the package is marked broken", Kind.ERROR),  # Nix 2.4-2.12 print a throw bare
    ("error: function 'anonymous lambda' called without required argument 'lib'", Kind.ERROR),
    ("error: The option `gtk.enable' does not exist.", Kind.ERROR),
    ("error: The option definition `services.foo.bar' in `/etc/nixos/configuration.nix' no "
     "longer has any effect; please remove it.", Kind.ERROR),  # NixOS' mkRemovedOptionModule
    ("error: 'nodePackages.foo' was removed because it was unmaintained", Kind.ERROR),
    ("error: cannot write modified lock file of flake 'github:o/r' (use "
     "'--no-write-lock-file' to ignore)", Kind.ERROR),
    ("error: getting status of '/nix/store/rxg7a90h63psxij6qq9hfw7kmwkm3bm3-source/gen.nix': "
     "No such file or directory", Kind.UNTRACKED_FILE),
])
def test_words_only_the_evaluator_says_are_eval_without_a_frame(text: str, kind: Kind) -> None:
    found = diagnose.diagnose_eval(text)
    assert (found.type, found.kind) == (FailureType.EVAL, kind)


def test_frames_of_the_helper_flake_are_no_evidence_of_evaluation() -> None:
    # `run` evaluates through ci-nix's helper flake: its frames surround every error, Nix's too
    text = (DATA / "nix-2.26/throw.helper.log").read_text()
    helper_only = text[:text.index("       … while evaluating the attribute 'default'")]
    nix_own = helper_only + "       error: frobnicating the widget socket failed\n"
    assert diagnose.diagnose_eval(nix_own).type is FailureType.OTHER
    assert diagnose.diagnose_eval(text).type is FailureType.EVAL


@pytest.mark.parametrize("signal", ["Bus error", "Segmentation fault", "Killed", "Aborted"])
def test_a_shell_reporting_nix_killed_by_a_signal_is_a_failure_of_nix(signal: str) -> None:
    # bash's job report: "script: line N:  PID <strsignal>   command" - no `error:` anywhere
    [found] = diagnose.parse_log([
        "building '/nix/store/1zmvs5xfj14y44lx6lmnpcrp6ygiz4r0-unit-a.service.drv'...",
        f"/root/.nix-profile/bin/nixos-install: line 226:  5362 {signal}               "
        "nix-build --out-link \"$outLink\" '<nixpkgs/nixos>' -A system"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    assert signal in found.message


def test_a_path_in_a_build_sandbox_is_nix_setting_up_the_build_not_evaluation() -> None:
    found = diagnose.diagnose_eval(
        "error: getting status of '/nix/store/p7nqvdpvmlmhkhlx01awlplvvk1nkmp8-a.drv.chroot/root/"
        "nix/store/ygkr8vyp8l40kzlx75sn5kg7xrcwp7f0-a': No such file or directory")
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


def test_a_red_evaluation_without_an_error_line_names_its_last_line_not_a_warning() -> None:
    found = diagnose.diagnose_eval("Segmentation fault (core dumped)\nwarning: ignoring x\n")
    assert (found.type, found.message) == (FailureType.OTHER, "Segmentation fault (core dumped)")


def test_nix_crashing_with_a_quoted_assertion_is_a_failure_of_nix() -> None:
    # Nix 2.3x: "terminating due to unexpected unrecoverable internal error: Assertion 'x'
    # failed in …" then "Nix crashed. This is a bug."
    [found] = diagnose.parse_log([
        "terminating due to unexpected unrecoverable internal error: Assertion 'maybeOutputPath'"
        " failed in void main_nix_build(int, char**) at ../nix-build/nix-build.cc:730",
        "Nix crashed. This is a bug. Please report this at https://github.com/NixOS/nix/issues"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


def test_an_output_check_names_the_output_run_finds_its_job_by() -> None:
    out = "/nix/store/q9bkzp7lb6hpalflsvy6bjjss6ijkh8s-hello-2.12"
    found = diagnose.build_error(
        f"error: output '{out}' is not allowed to refer to the following paths:\n"
        "         /nix/store/hgmk0ymv2r0w5ygr1bsgmp4wc2x0nzqa-gcc-13.2.0")
    assert found is not None and found.drv == out and found.type is FailureType.BUILD
    assert found.diagnosis is not None and found.diagnosis.kind is Kind.OUTPUT_CHECK
    sized = diagnose.build_error(f"error: path '{out}' is too large at 9 bytes; limit is 8 bytes")
    assert sized is not None and sized.drv == out


def test_a_bare_timeout_that_says_of_silence_is_max_silent_time() -> None:
    """Nix 2.34+ says only "timed out after N seconds"; where the words "of silence" follow (a
    remote builder of an older version relaying its own), the limit is max-silent-time."""
    found = diagnose.parse_log(["error: timed out after 600 seconds of silence"])
    assert [(d.type, d.kind) for d in found] == [(FailureType.TIMEOUT, Kind.MAX_SILENT_TIME)]
    plain = diagnose.parse_log(["error: timed out after 600 seconds"])
    assert [(d.type, d.kind) for d in plain] == [(FailureType.TIMEOUT, Kind.TIMEOUT)]


def test_a_remote_builders_hash_mismatch_is_its_derivations_even_when_the_path_is_broken() -> None:
    """build-remote relays "build of 'X.drv' on 'ssh://…' failed: <reason>": the failure is X's,
    even when the reason's own path was broken by a copy (nixpkgs#419585, a line cut inside it)."""
    drv = "/nix/store/faq4pwsviv51h41w860wycxwi4qa191a-lix-doc-2.91.2-vendor.tar.gz.drv"
    found = diagnose.parse_log([
        f"error: build of '{drv}' on 'ssh://root@builder' failed: hash mismatch in fixed-output "
        "derivation '/nix/store/faq4pwsviv51h41w860wycxwi4qa191a-lix-doc-2",
        "1.2-vendor.tar.gz.drv':",
        "        likely URL: (unknown)",
        "         specified: sha256-F6Ld0HfRvW9r5zn8eMTP6djnV/jvwjYQet4Ghp2T90k=",
        "            got:    sha256-Z5NcBtDRsUGtHsquLYZ933jN6MXJAT2CmU1E/c8S7SU=",
        f"error: builder for '{drv}' failed with exit code 1;"])
    assert [(d.type, d.drv) for d in found] == [(FailureType.HASH_MISMATCH, drv)]
    assert found[0].got == "sha256-Z5NcBtDRsUGtHsquLYZ933jN6MXJAT2CmU1E/c8S7SU="


def test_a_store_path_that_cannot_be_created_is_the_stores_failure_not_evaluation() -> None:
    """Nix's realisation says "path '/nix/store/…' does not exist and cannot be created" (a
    substitution that failed, `nix upgrade-nix`); the evaluator's missing file says only "does not
    exist" (DeterminateSystems/nix-installer#1539)."""
    [found] = diagnose.parse_log([
        "downloading '/nix/store/ap91h6abir7rhm00ypwhyw1qqsmzl2k2-determinate-nix-3.4.1'......",
        "error: path '/nix/store/ap91h6abir7rhm00ypwhyw1qqsmzl2k2-determinate-nix-3.4.1' does not "
        "exist and cannot be created"])
    assert found.type is FailureType.OTHER
    [evaluated] = diagnose.parse_log(["error: path '/home/u/src/flake.nix' does not exist"])
    assert evaluated.type is FailureType.EVAL


def test_a_remote_builders_own_refusal_is_that_derivations_failure_of_nix() -> None:
    """build-remote relays a reason nothing finer fits (garnix-io/issues#93: the remote refuses
    `__noChroot`); the local "builder for X failed with exit code 1" after it is only the relay."""
    drv = "/nix/store/6nky25d60hj1ffhd2nv2i6fhngjmjha2-validate-default.drv"
    found = diagnose.parse_log([
        f"error: build of '{drv}' on 'ssh-ng://nix-ssh@builder' failed: error: derivation "
        f"'{drv}' has '__noChroot' set, but that's not allowed when 'sandbox' is 'true'",
        f"error: builder for '{drv}' failed with exit code 1"])
    assert [(d.type, d.kind, d.drv) for d in found] == [(FailureType.OTHER, Kind.NIX, drv)]
    assert "__noChroot" in found[0].message


@pytest.mark.parametrize("cut", [
    "builder for '/nix/store/sajb4padk9l68dphna18339jdjcblss4-",
    "builder for '/nix/store/sajb4padk9l68dphna18339jdjcblss4-libreoffice-7.6.4.1.drv' fail",
    "Cannot build '/nix/store/sajb4padk9l68dphna18339jdjcblss4-libreoff"])
def test_a_remote_builds_reason_cut_inside_its_builders_failure_is_that_build(cut: str) -> None:
    """build-remote relays the remote builder's failure as its reason ("… failed: builder for
    'X' failed with exit code 1;"); a copy cut inside that line (heldout-252 nixpkgs#288307) still
    says X's builder failed there: X's build, not Nix's own failure."""
    drv = "/nix/store/sajb4padk9l68dphna18339jdjcblss4-libreoffice-7.6.4.1.drv"
    found = diagnose.parse_log([
        "./config.status: line 532: syntax error near unexpected token `newline'",
        f"error: build of '{drv}' on 'ssh://nix-builder@192.168.0.22' failed: {cut}"])
    assert [(d.type, d.kind, d.drv, d.remote) for d in found] == [
        (FailureType.BUILD, Kind.BUILDER, drv, True)]


@pytest.mark.parametrize("cut", ["/nix", "/n", "/nix/st", "/nix/store/", ""])
def test_a_builder_line_cut_at_its_store_prefix_is_the_build_nix_said_it_was_building(
        cut: str) -> None:
    """A copy ending inside the "/nix/store/" of Nix 2.0-2.3's "builder for '…" (heldout-460
    nixpkgs-37294, after nix-build's "note: keeping build directory") is still that builder's
    failure, of the derivation whose "building '…'" line Nix printed last; "Cannot build '/nix"
    likewise a build (heldout-411 robotnix-343); the head quoted mid-line in prose is no build."""
    drv = "/nix/store/nz722nxxn86xhzzyvfnx7j77crjk8r50-python2.7-pyslurm-20171102.drv"
    [found] = diagnose.parse_log([
        "these derivations will be built:", f"  {drv}", f"building '{drv}'...",
        "ERROR:root:Fatal: Build - Incorrect slurm version detected",
        "note: keeping build directory '/tmp/nix-build-python2.7-pyslurm-20171102.drv-3'",
        f"builder for '{cut}"])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, drv)
    [alone] = diagnose.parse_log(["```", f"error: Cannot build '{cut}"])
    assert (alone.type, alone.kind, alone.drv) == (FailureType.BUILD, Kind.BUILDER, None)
    assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(
        [f"the builder for '{cut} is what I meant, not a failure"]))


def test_a_review_summary_copied_from_the_page_source_names_its_first_attribute() -> None:
    """nixpkgs-review's report copied from a page's HTML source (its own tags as entities inside
    <pre>): the recap says what the rendered copy says, its first attribute named (heldout-466
    nixpkgs-pr-419583 under test_logshape's html wrapping)."""
    body = "\n".join(["### `x86_64-linux`", "<details>",
                      "  <summary>:x: 2 packages failed to build:</summary>", "  <ul>",
                      "    <li>micronucleus</li>", "  </ul>", "</details>"])
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for text in (body, f"<details><summary>Build log</summary>\n<pre><code>{escaped}</code></pre>"
                       "\n</details>"):
        [found] = diagnose.parse_log(text.split("\n"))
        assert (found.type, found.kind, found.message) == (
            FailureType.BUILD, Kind.SUMMARY, ":x: 2 packages failed to build: micronucleus")


@pytest.mark.parametrize("end", ["", " ", " s", " sec", " second"])
def test_a_timeout_line_cut_after_its_number_is_still_that_timeout(end: str) -> None:
    """An ofborg partial log cut inside "seconds" (heldout-460 nixpkgs-pr-46019 geant4, "…timed
    out after 1800 s"): the timeout of that derivation all the same."""
    drv = "/nix/store/g57qrm21h1rqwrr43kicvif42g85g9p8-geant4-10.4.1.drv"
    [found] = diagnose.parse_log(
        ["[ 70%] Building CXX object source/processes/G4ParticleHPFission.cc.o",
         f"building of '{drv}' timed out after 1800{end}"])
    assert (found.type, found.kind, found.drv) == (FailureType.TIMEOUT, Kind.TIMEOUT, drv)


def test_a_cannot_build_line_cut_inside_its_path_is_a_build_only_where_nothing_else_is() -> None:
    """A copy ending inside "Cannot build '/nix/store/…" (heldout-266 minegrub-45) names no
    derivation and no Reason: alone, it is the failed build Nix printed first; after other
    failures it is one of their dependents' blocks cut short, no failure of its own."""
    cut = "error: Cannot build '/nix/store/mifavwsr361wn2r5dfav8a2ia7nan4r2-mi"
    [alone] = diagnose.parse_log([
        "building the system configuration...",
        "evaluation warning: The option `hardware.opengl.enable' defined in `/etc/nixos' has been "
        "renamed to `hardware.graphics.enable'.", cut])
    assert (alone.type, alone.kind, alone.drv) == (FailureType.BUILD, Kind.BUILDER, None)
    drv = "/nix/store/y83b8xb9lmni57jym7p69g3pprwch4rb-inir-2.27.0.drv"
    after = diagnose.parse_log([
        f"error: Cannot build '{drv}'.", "       Reason: builder failed with exit code 1.",
        "       Output paths:", "         /nix/store/kz5hq8p49b1mxg61a3apzlgvfd9vy27h-inir-2.27.0",
        "error: Cannot build '/nix/store/cs713mg22mjqdpbfh"])
    assert [(d.type, d.drv) for d in after] == [(FailureType.BUILD, drv)]
    dependent = "/nix/store/a186qswyssa8zhj0pdx4b7maj2pkh8m0-darwin-system-26.11.aabb203.drv"
    dependents = diagnose.parse_log([
        f"error: Cannot build '{dependent}'.", "       Reason: 1 dependency failed.",
        "       Output paths:", "         /nix/store/8h2lsrrzr9bpbdr2mqjyhrdzarmxmwl8-darwin",
        "error: Cannot build '/nix/store/jqayiz9n6rzafq2ddx5f7c5pf0s4bkrz-zed-editor-1.8.0-n"])
    assert [(d.type, d.drv) for d in dependents] == [(FailureType.DEPENDENCY, dependent)]


@pytest.mark.parametrize("cut", [
    "m9mg8cyy03r4lv7dfbnm0402s", "m9mg8cyy03r4lv7dfbnm0402sqrmchgp-od"])
def test_a_builder_line_cut_inside_its_path_names_the_planned_derivation_it_begins(
        cut: str) -> None:
    """A copy ending inside "builder for '/nix/store/…" after nix-build's plan and its
    "building '…'" line (heldout-432 nixpkgs-404986, heldout-439 nixpkgs-123685, heldout-394
    all-hies-19): the one derivation of the log whose path begins with what the cut kept."""
    drv = "/nix/store/m9mg8cyy03r4lv7dfbnm0402sqrmchgp-odin-dev-2025-01.drv"
    other = "/nix/store/ja1z9gb7jbcwhixxzj3zvwa24d5vlh32-ghc-8.4.4.tar.xz.drv"
    [found] = diagnose.parse_log([
        "these 2 derivations will be built:", f"  {other}", f"  {drv}",
        f"building '{other}'...", f"building '{drv}'...",
        "ld: library not found for -lSystem", f"error: builder for '/nix/store/{cut}"])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, drv)
    # too little of the hash kept to say which, or two derivations it could be: none named
    [unsure] = diagnose.parse_log([f"building '{drv}'...", "error: builder for '/nix/store/m9mg"])
    assert (unsure.type, unsure.drv) == (FailureType.BUILD, None)
    twin = "/nix/store/m9mg8cyy03r4lv7dfbnm0402sqrmchgp-odin-dev-2025-02.drv"
    [both] = diagnose.parse_log([f"building '{drv}'...", f"building '{twin}'...",
                                 "error: builder for '/nix/store/m9mg8cyy03r4lv7dfbnm0402s"])
    assert (both.type, both.drv) == (FailureType.BUILD, None)


@pytest.mark.parametrize("message", [
    "this derivation has bad 'meta.outputsToInstall'",
    "derivation does not have output 'man'",
    "building more than one derivation output is not supported, in '/home/u/default.nix'",
    "CA derivations are not yet supported",
    "output 'man' does not exist",
    "element is 42 where a string was expected"])
def test_get_drvs_messages_are_the_evaluators_also_without_a_frame(message: str) -> None:
    """libexpr's get-drvs.cc (the evaluator reading a value as a package) throws these; nix-env
    and nix-build print them with no frame above (heldout-250 nixpkgs#362900: "installing
    'reaper-7.24'" then "error: this derivation has bad 'meta.outputsToInstall'")."""
    [found] = diagnose.parse_log([
        "warning: name collision in input Nix expressions, skipping '/nix/store/rwhmcsxik8q191mbbhz"
        "hgbz5xxygbg62-nixos-24.11/nixos'", "installing 'reaper-7.24'", f"error: {message}"])
    assert found.type is FailureType.EVAL
    # the general words decide only as the message's start
    [other] = diagnose.parse_log(["error: cannot add path '/nix/store/x' to the store: output "
                                  "'man' does not exist"])
    assert other.type is not FailureType.EVAL


def test_a_message_quoted_without_error_keeps_nixs_flag_hint_and_is_no_silent_zero() -> None:
    """Nix ends a message with the flag that avoids or explains it ("(use '--no-write-lock-file'
    to ignore)"); quoted without its "error:" (NixOS/nix#10343) it still says Nix failed."""
    [found] = diagnose.parse_log([
        "Assuming the error is:", "", "```",
        "cannot write modified lock file of flake 'git+https://example.org/x' (use "
        "'--no-write-lock-file' to ignore)", "```"])
    assert found.type is FailureType.EVAL and "lock file" in found.message
    [bare] = diagnose.parse_log(["unexpected thing happened (use '--show-trace' to show detailed "
                                 "location information)"])
    assert bare.message.startswith("unexpected thing happened")
    assert diagnose.parse_log(["warning: x (use '--impure' to allow it)"]) == []


def test_a_fetchurl_log_cut_inside_curls_retries_is_that_download_failing() -> None:
    """A log tail that ends in nixpkgs' fetchurl ("trying URL", then only curl's meter, errors
    and retries) is the download failing, also before "cannot download … from any mirror"."""
    drv = "/nix/store/a69n6rmyasa1f35ax5wxnw7cy1h8m12x-fix.patch.drv"
    [found] = diagnose.parse_log([
        f"error: Cannot build '{drv}'.",
        "       Reason: builder failed with exit code 1.",
        "       Last 6 log lines:",
        "       > trying https://example.org/1944.patch",
        "       >   0      0   0      0   0      0      0      0           00:01              0",
        "       > curl: (22) The requested URL returned error: 404",
        "       > Warning: Problem (retrying all errors). Retrying in 1 second. 3 retries left.",
        "       >   0      0   0      0   0      0      0      0                              0",
        "       > curl: (22) The requested URL returned error: 404"])
    assert (found.type, found.kind, found.drv) == (FailureType.OTHER, Kind.DOWNLOAD, drv)
    assert "https://example.org/1944.patch" in found.message
    built = diagnose.parse_log([
        f"error: builder for '{drv}' failed with exit code 1;",
        "       last 3 log lines:",
        "       > trying https://example.org/x.tar.gz",
        "       > curl: (22) The requested URL returned error: 404",
        "       > make: *** [Makefile:3: all] Error 2"])
    assert built[0].type is FailureType.BUILD
    # heldout-158: no error of curl's, its meter stopped short of the whole transfer (a fetch
    # killed mid-way); a meter at 100 is a transfer that went through, what failed came after
    meter = [f"error: builder for '{drv}' failed with exit code 1;", "       last 3 log lines:",
             "       > trying https://example.org/x.dmg",
             "       >   % Total    % Received % Xferd  Average Speed   Time    Time     Time",
             "       >   0  123M    0 1244k    0     0  41338      0  0:52:16  0:00:29  0:54:05"]
    [cut] = diagnose.parse_log(meter)
    assert (cut.type, cut.kind, cut.drv) == (FailureType.OTHER, Kind.DOWNLOAD, drv)
    # heldout-419 nixpkgs-351314: the tail ends in fetchurl's own "error: cannot download NAME"
    # cut before "from any mirror" (a copy's end), curl's errors above it
    mirrors = [f"error: builder for '{drv}' failed with exit code 1;", "       last 4 log lines:",
               "       > trying https://example.org/x.whl",
               "       > curl: (77) error setting certificate file: /etc/ssl/certs/ca.crt",
               "       > error: cannot download x.w"]
    [fetch] = diagnose.parse_log(mirrors)
    assert (fetch.type, fetch.kind, fetch.drv) == (FailureType.OTHER, Kind.DOWNLOAD, drv)
    assert "https://example.org/x.whl" in fetch.message
    assert "stopped at 0 %" in cut.message
    whole = [*meter[:-1], "       > 100  123M  100  123M    0     0  4133k      0  0:00:29"]
    assert diagnose.parse_log(whole)[0].type is FailureType.BUILD


def test_a_cannot_build_block_under_build_of_or_hard_wrapped_keeps_its_derivation_and_code(
) -> None:
    """heldout-158: `nix flake check`'s "build of '….drv^*' failed" over the 2.29+ Reason lines
    (a copy dropped ": Cannot build '…'.") names the derivation the Reason is about; a Reason a
    text's hard wrap cut inside Nix's words ("Reason: builder" / "failed with exit code 101.")
    reads on with the next line."""
    drv = f"/nix/store/{H}-example-uberjar.drv"
    [found] = diagnose.parse_log([f"error: build of '{drv}^*' failed",
                                  "       Reason: builder failed with exit code 1.",
                                  f"       Output paths: /nix/store/{H}-example-uberjar"])
    assert (found.type, found.drv, found.exit_code) == (FailureType.BUILD, drv, 1)
    [wrapped] = diagnose.parse_log([
        "    The captured output ends with Nix's own conclusive verdict",
        "    (`error: Cannot build '.../codex-0.157.0.drv'. Reason: builder",
        "    failed with exit code 101.` then `error: Cannot build"])
    assert (wrapped.type, wrapped.exit_code) == (FailureType.BUILD, 101)
    for cut in (["       Reason: builder", "       failed with exit code 101."],
                ["Reason: builder", "failed with exit code 101."]):  # (a copy's dedent)
        [block] = diagnose.parse_log([f"error: Cannot build '{drv}'.", *cut])
        assert (block.drv, block.exit_code) == (drv, 101), cut
    # copied dedented (test_logshape's wrapping): the Reason lines at the line start, the flake
    # check's message wrapped after its comma
    [dedented] = diagnose.parse_log([f"error: build of '{drv}^*' failed",
                                     "Reason: builder failed with exit code 1."])
    assert (dedented.type, dedented.drv) == (FailureType.BUILD, drv)
    [check] = diagnose.parse_log(["error: failed to build attribute 'checks.x86_64-linux.fmt',",
                                  "build of '.../nixfmt-check.drv' failed.",
                                  "Reason: builder failed with exit code 123."])
    assert (check.type, check.exit_code) == (FailureType.BUILD, 123)


def test_platform_refusals_cut_or_joined_and_nix_quoted_across_a_wrap_are_read() -> None:
    """heldout-159: Nix 2.x's refusal cut after "required to build" (with or without the
    derivation); flake check's "build of '…' failed:" joined to the Reason's words with the
    Required line under it; Nix's message in a code span a hard wrap broke."""
    [cut] = diagnose.parse_log(
        ["- [x] Fix `error: a 'x86_64-darwin' with features {} is required to build` on m1"])
    assert (cut.type, cut.system) == (FailureType.PLATFORM, "x86_64-darwin")
    drv = f"/nix/store/{H}-x.drv"
    [named] = diagnose.parse_log([f"error: a 'i686-linux' with features {{}} is required to build "
                                  f"'{drv}'"])
    assert (named.type, named.drv) == (FailureType.PLATFORM, drv)
    [joined] = diagnose.parse_log([
        "error: build of '…-10-acme.conf.drv^*' failed: platform mismatch",
        "       Required system: 'x86_64-linux'   Current system: 'aarch64-darwin'"])
    assert (joined.type, joined.system) == (FailureType.PLATFORM, "x86_64-linux")
    [spoken] = diagnose.parse_log([
        "Brief: diagnose why the actor saw `nix flake check -L` report `failed to",
        "start SSH connection to 'prometheus'` and fall back to local."])
    assert (spoken.type, spoken.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize(("words", "type_"), [
    ("\"platform mismatch Required system: 'aarch64-linux' Current system: 'aarch64-darwin'\"",
     FailureType.PLATFORM),
    ("`Build failed due to failed dependency`", FailureType.DEPENDENCY)],
    ids=["platform-double-quoted", "dependency-code-span"])
def test_nixs_quoted_words_outrank_a_writers_earlier_compound_error_label(
        words: str, type_: FailureType) -> None:
    # heldout-246's evidence appendix: a heading's "Agent-error:" (a writer's label, which says
    # only that something failed) came first; the refusal it quotes later says what
    found = diagnose.parse_log([
        "### B7. Agent-error: wrong UTC conversion in the peer broadcast", "",
        f"- **Observed:** `nix develop -c nim c -r t.nim` → {words} — reproduced."])
    assert [d.type for d in found] == [type_]


def test_a_reason_a_writer_quoted_apart_from_its_header_is_that_builds_reason() -> None:
    """heldout-267's plan: Nix 2.29+'s "Cannot build '…'." fenced, its Reason line quoted in the
    sentence after, in a code span ("the wrong line (`Reason: builder failed with exit code
    143` — separate line, no drv path)"): the build's reason, not "the log leaves out why"."""
    drv = "/nix/store/lbb1v37c1dm9dmx0ghcy3zzjwk6kzywd-vm-test-run-rio-lifecycle-recovery.drv"
    [found] = diagnose.parse_log([
        "Actual CI log line:", "", "```", f"error: Cannot build '{drv}'.", "```", "",
        "Single-line top-level nix error. The proposed regex matches the wrong line "
        "(`Reason: builder failed with exit code 143` — separate line, no drv path). Add:"])
    assert (found.type, found.drv, found.exit_code) == (FailureType.BUILD, drv, 143)
    # a builder's output quoted under the header, or another failure's line between, is no
    # reason of it: the failure stays as the log said it
    for between in (["       > Reason: builder failed with exit code 9"],
                     ["foo> Reason: builder failed with exit code 9"],
                     ["error: builder for '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-bar.drv' "
                      "failed with exit code 3", "Reason: builder failed with exit code 9"]):
        found_all = diagnose.parse_log([f"error: Cannot build '{drv}'.", *between])
        assert found_all[0].drv == drv and found_all[0].exit_code is None


def test_the_import_from_derivation_refusal_quoted_without_its_clause_is_evaluation() -> None:
    """heldout-268's fragment: "`.drvPath` fails with `cannot build '…-source.drv^out' during
    evaluation`" — the evaluator's refusal to build while it evaluates, its path elided, cut
    before "because the option 'allow-import-from-derivation' is disabled", no "error:"."""
    [found] = diagnose.parse_log([
        "ever forced. Measured with `--option allow-import-from-derivation false`: `.version` "
        "evaluates clean,",
        "`.drvPath` fails with `cannot build '…-source.drv^out' during evaluation`. That"])
    assert (found.type, found.kind) == (FailureType.EVAL, Kind.IMPORT_FROM_DERIVATION)
    [cut] = diagnose.parse_log(["error: cannot build '/nix/store/kqzbn0bbbbbbbbbbbbbbbbbbbbbbbbbb-"
                                "source.drv^out' during evaluation"])
    assert (cut.type, cut.kind) == (FailureType.EVAL, Kind.IMPORT_FROM_DERIVATION)


def test_lix_remote_builder_failure_with_an_elided_derivation_and_a_double_quoted_line() -> None:
    """heldout-160: Lix's "builder for '…' failed on remote builder" with the derivation elided
    without quotes ("...drv"), and Nix's "Build failed due to failed dependency." quoted in a
    sentence in double quotes (no "error:"): a build's failure and a dependency's, no silent
    zero."""
    [remote] = diagnose.parse_log(
        ['- But client fails with: "builder for ...drv failed on remote builder"'])
    assert (remote.type, remote.kind) == (FailureType.BUILD, Kind.BUILDER)
    [quoted] = diagnose.parse_log(["These crates depend on the 16 above and fail with",
                                   '"Build failed due to failed dependency."'])
    assert quoted.type is FailureType.DEPENDENCY
    # a double-quoted phrase that is no message of Nix's stays none
    assert diagnose.parse_log(['the "build" step is slow']) == []


@pytest.mark.parametrize("line", [
    # heldout-259's nixpkgs#288074: a builder block transcribed from a screen, its opening quote
    # lost and ".drv" read as ".dru"
    "error: builder for /nix/store/1r14knch2zmryp42x5x8mbcfu7y8h6g8-nerdfonts-3.1.1.dru' failed "
    "with exit code 1: last 10 log lines:",
    # both quotes lost and the suffix cut by the transcription
    "error: builder for /nix/store/ph3kzyfmyg7jzqfjxfqkblwqmy8dgvj5-fontconfig-conf.dr failed "
    "with exit code 2;",
    # (a control: a path without its quotes but whole is named as before)
    "error: builder for /nix/store/ph3kzyfmyg7jzqfjxfqkblwqmy8dgvj5-fontconfig-conf.drv failed "
    "with exit code 2",
])
def test_a_builder_line_whose_store_path_a_transcription_damaged_is_still_a_build(
        line: str) -> None:
    """Nix's builder line whose store path a copy damaged (its quote lost, its name no longer
    ending in .drv) is the build's failure with its exit code, not an error of no kind; the
    derivation is named only where the path is still one Nix prints."""
    [found] = diagnose.parse_log([line, "       > tar: Error is not recoverable: exiting now"])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    assert found.exit_code in (1, 2)
    assert found.drv is None or found.drv.endswith(".drv")


@pytest.mark.parametrize("path", [
    "'/nix/store/abcdefghijklmnopqrstuv wxyz012345-linux-config-6.5.drv'",  # a space in the hash
    "/nix/store/abcdefghijklmnopqrstuvwxyz012345-linux-config-6.5.dru'",  # quote and name damaged
])
def test_a_builder_line_whose_hash_a_transcription_broke_with_a_space_leads_the_log(
        path: str) -> None:
    """heldout-309's nixos-hardware#895, a screen retyped by character recognition: a space
    inside the store hash leaves Nix's builder line all the same (build, its exit code, the
    derivation not named); and a build whose derivation is not known stands before the errors
    that name none, as a named one does: above it, nix-build printed the builder's own output
    unprefixed, its "error: …" lines the builder's and not Nix's."""
    found = diagnose.parse_log([
        "error: unused option: SOME_KERNEL_OPTION",
        f"error: builder for {path} failed with exit code 255",
        "error: 1 dependencies of derivation"])
    # (where the damage is one logshape mends, ".dru" for ".drv", the derivation is named)
    mended = "/nix/store/abcdefghijklmnopqrstuvwxyz012345-linux-config-6.5.drv"
    assert [(d.type, d.exit_code) for d in found[:1]] == [(FailureType.BUILD, 255)]
    assert found[0].drv in (None, mended)
    assert "unused option" in found[1].message


def test_nixpkgs_refusal_starting_the_message_is_evaluation() -> None:
    """nixpkgs 25.05+ words it "Refusing to evaluate package '…' in … because it has problems"
    (cachix/devenv-nixpkgs#33)."""
    [found] = diagnose.parse_log([
        "error: Refusing to evaluate package 'lobster-2026.1' in .../lobster/package.nix:42",
        "because it has problems:", "- broken: This package is broken."])
    assert found.type is FailureType.EVAL


@pytest.mark.parametrize("message", [
    "integer '1' is not equal to integer '2'",  # Nix 2.2x assert a == b
    "attribute name 'foo' is missing in 'a', but is contained in 'b'",
    "'builtins.getEnv' is not allowed in pure evaluation mode",
    "integer overflow in adding 9223372036854775807 + 1",
    "expected an integer but found a string: \"1\"",
    "derivation name missing",
    "expression does not evaluate to a derivation (or a set or list of those)",
    "the expression selected by the selection path 'a.b' should be a set but is a list",
    "invalid regular expression '('",
    "'tail' called on an empty list",  # Lix
    "'x' is not an attribute set",  # Lix
])
def test_the_evaluators_own_messages_are_evaluation_also_without_a_trace(message: str) -> None:
    """The evaluator's messages (Nix's and Lix's libexpr) pasted alone, without the frame Nix
    2.13+ prints around them: their words are evidence enough."""
    [found] = diagnose.parse_log([f"error: {message}"])
    assert found.type is FailureType.EVAL


def test_store_words_shared_with_the_evaluator_stay_nixs_own() -> None:
    for message in ("path '/foo/nix/store/x-y' is not in the Nix store",
                    "unknown hash algorithm 'md4'"):
        [found] = diagnose.parse_log([f"error: {message}"])
        assert found.type is FailureType.OTHER


def test_a_hash_mismatch_whose_path_lost_its_quotes_still_names_its_derivation() -> None:
    drv = "/nix/store/88dk30z7d77yx9hs35whnz8dq3r435p8-beads-1.0.0-go-modules.drv"
    [found] = diagnose.parse_log([
        f"error: hash mismatch in fixed-output derivation {drv}:",
        "         specified: sha256-7eb7u47f4/OCnK/T56Zd6b5XUyV6vkBmissryBxANBU=",
        "            got:    sha256-7DJgqJX2HDa9gcGD8fLNHLIXvGAEivYeDYx3snCUyCE="])
    assert (found.type, found.drv) == (FailureType.HASH_MISMATCH, drv)


def test_nix_1x_perl_tools_failing_to_load_their_store_binding_is_nix_broken() -> None:
    # (Nix 1.x's nix-channel/nix-push/nix-prefetch-url are Perl, their Nix::Store an XS module
    # linked to libnixstore: heldout-411 nix-512's install whose libstdc++ is too old)
    so = "/opt/nix/lib/perl5/site_perl/5.10.1/x86_64-linux-thread-multi/auto/Nix/Store/Store.so"
    [found] = diagnose.parse_log([
        "$ nix-channel --add http://nixos.org/channels/nixpkgs-unstable",
        f"Can't load '{so}' for module Nix::Store: /usr/lib64/libstdc++.so.6: version "
        f"`GLIBCXX_3.4.15' not found (required by {so}) at /usr/lib64/perl5/XSLoader.pm line 70.",
        " at /opt/nix/lib/perl5/site_perl/5.10.1/x86_64-linux-thread-multi/Nix/Store.pm line 38",
        "BEGIN failed--compilation aborted at /opt/nix/bin/nix-channel line 8."])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    assert "GLIBCXX_3.4.15" in found.message


def test_a_23_mismatch_a_copy_cut_before_its_got_line_is_still_the_mismatch() -> None:
    # (Nix 2.3's "hash mismatch in fixed-output derivation '<output path>':" and its "wanted:"
    # line, the "got:" line lost to a review's paste: heldout-449 nixpkgs PR#68460's shape)
    path = "/nix/store/2059g3x5gz3df0kmk125h80wpzbzw3fg-lazydocker-0.7.4-go-modules"
    for tail in (["  wanted: sha256:16idjsh0mlh2xra434ywvgy1l9wzhgmbc5kx32b8jzx7"], []):
        [found] = diagnose.parse_log(
            [f"hash mismatch in fixed-output derivation '{path}':", *tail])
        assert (found.type, found.kind, found.drv) == (
            FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH, path)
        assert found.got is None


@pytest.mark.parametrize("cut", ["3 de", "3 d", "3 dependencies couldn",
                                 "3 dependencies couldn't be bu"])
def test_older_nixs_dependents_line_cut_inside_its_words_is_still_a_dependency(cut: str) -> None:
    # ofborg's partial log of one line, Nix <=2.3's "cannot build derivation '…': 3 dependencies
    # couldn't be built" cut inside its words (nixpkgs#36870): the dependent, as whole
    drv = f"/nix/store/{H}-system-units.drv"
    [found] = diagnose.parse_log(["```", f"cannot build derivation '{drv}': {cut}"])
    assert (found.type, found.drv) == (FailureType.DEPENDENCY, drv)
    # (other words after the count are no cut of it)
    [found] = diagnose.parse_log(["```", f"cannot build derivation '{drv}': 3 dx"])
    assert found.type is not FailureType.DEPENDENCY


def test_an_error_line_cut_inside_the_builders_head_is_the_one_started_builds() -> None:
    # nix-build's plan and its one "building '…'" line, the builder's output, then Nix's line
    # cut inside its head by the excerpt's end ("error: builde", nixcrpkgs#19): that build
    drv = f"/nix/store/{H}-qtbase-raw-5.12.12-i686-w64-mingw32.drv"
    lines = ["$ nix-build -A win32.qt", "these 2 derivations will be built:", f"  {drv}",
             f"  /nix/store/{H[:-1]}1-qtbase-5.12.12-i686-w64-mingw32.drv",
             f"building '{drv}'...", "mv: cannot stat 'qtbase-everywhere-src-*': No such file or "
             "directory", "error: builde"]
    [found] = diagnose.parse_log(lines)
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, drv)
    # two builds started: which one failed is not known
    two = [*lines[:5], f"building '/nix/store/{H[:-1]}1-qtbase-5.12.12-i686-w64-mingw32.drv'...",
           *lines[5:]]
    [found] = diagnose.parse_log(two)
    assert found.drv is None and found.type is not FailureType.BUILD


@pytest.mark.parametrize("after", [["```"], []])
def test_a_headless_tail_with_the_full_log_pointer_cut_before_its_command_is_a_build(
        after: list[str]) -> None:
    # Nix's quoted tail without its head, then 2.24+'s "For full logs, run:" whose command the
    # copy lost (raphamorim/rio#1582): a builder failed, as the tail alone says
    tail_ = ["```", "       > error: failed to run custom build command for `sugarloaf v0.4.2`",
             "       > warning: build failed, waiting for other jobs to finish...",
             "       For full logs, run:", *after]
    [found] = diagnose.parse_log(tail_)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)


def test_an_error_opening_a_review_reports_package_log_is_the_builders() -> None:
    # nixpkgs-review-gha's report, one package failed, its log (the builder's, `nix log`'s) in a
    # <pre> opening with CMake's indented "  error: …" (nixpkgs#532953): the report's recap
    report = ["## `nixpkgs-review` result", "", "### `x86_64-linux`", "<details>",
              "  <summary>:x: 1 package failed to build:</summary>", "  <ul>",
              "    <li>shader-slang</li>", "  </ul>", "</details>", "", "---", "<details>",
              "<summary>shader-slang</summary>",
              "<pre>  error: could not find git for clone of dxc_source-populate",
              "Call Stack (most recent call first):", "-- Configuring incomplete, errors occurred!"]
    [found] = diagnose.parse_log(report)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.SUMMARY)
    assert "shader-slang" in found.message


@pytest.mark.parametrize("summary", [
    # nixpkgs-review-checks' hydra-check sort (heldout-471, 478, 494)
    "  <summary>2 packages failed to build and are new build failures:</summary>",
    "  <summary>1 package failed to build and are new build failure:</summary>",
    "  <summary>14 packages failed to build and already failed to build on hydra master:</summary>",
    # nixpkgs-review-gha's one-line <details> (heldout-527)
    "<details><summary>:x: 1 package failed to build:</summary><ul>"])
def test_review_recaps_in_their_tools_other_forms_say_a_build_failed(summary: str) -> None:
    report = ["Result of `nixpkgs-review pr 1` run on x86_64-linux", "<details>", "", summary,
              "  <ul>", "<li>foo: log was empty</li>", "  </ul>", "</details>"]
    [found] = diagnose.parse_log(report)
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.SUMMARY, None)
    assert "foo" in found.message


def test_hydra_checks_row_of_a_failed_build_is_hydras_status_of_it() -> None:
    """heldout-472 nixpkgs-pr-403904: hydra-check's rows ("✖ (STATUS) NAME … URL") say Hydra's
    status of each build of the job, a dependency's failure as such (here under a fence of a
    builder's own lines, no line of Nix's); a row of a success is none."""
    rows = ["```console", "> hydra-check optinix",
            "Build Status for nixpkgs.optinix.x86_64-linux on jobset nixos/trunk-combined",
            "✖ (Dependency failed)  optinix-0.1.4  2025-04-24  "
            "https://hydra.nixos.org/build/295018317",
            "✔                      optinix-0.1.3  2025-02-07  "
            "https://hydra.nixos.org/build/287736653",
            "```"]
    [found] = diagnose.parse_log(["```", "Running phase: buildPhase",
                                  "substitute(): ERROR: file 'a.go' does not exist", "```", "",
                                  *rows])
    assert (found.type, found.kind) == (FailureType.DEPENDENCY, Kind.DEPENDENCY)
    [failed] = diagnose.parse_log(["✖ (Failed) vm-test-run-x from 2020-03-19 - "
                                   "https://hydra.nixos.org/build/113892497"])
    assert (failed.type, failed.kind) == (FailureType.BUILD, Kind.SUMMARY)
    assert diagnose.parse_log(["✔ hello-2.10 https://hydra.nixos.org/build/113804835"]) == []


def test_any_line_of_a_review_reports_package_log_is_the_builders() -> None:
    # not only the line its <pre> opens with: the builder's "error:" at the log's end
    # (heldout-490 nixpkgs-pr-542688) and a line read as Nix's own (heldout-484 nixpkgs-pr-
    # 466399's hatch tests: "… within: /nix/var/nix/builds…") yield to the report's recap
    head = ["### `x86_64-linux`", "<details>",
            "  <summary>:x: 1 package failed to build:</summary>", "  <ul>", "    <li>foo</li>",
            "  </ul>", "</details>", "", "---", "<details>",
            "<summary>foo</summary>"]
    for log in (["<pre>   Compiling foo v0.1.0", "", "error: could not compile `foo` (bin &quot;foo"
                 "&quot;)</pre>"],
                ["<pre>FAILED tests/t.py::test_x - OSError: Unable to locate executables "
                 "directory within: /nix/var/nix/builds...</pre>"]):
        [found] = diagnose.parse_log([*head, *log, "</details>"])
        assert (found.type, found.kind, found.message) == (
            FailureType.BUILD, Kind.SUMMARY, ":x: 1 package failed to build: foo")


def test_a_review_log_whose_report_head_a_copy_cut_is_the_builders() -> None:
    # a continued comment's copy of nixpkgs-review's error logs (heldout-526 nixpkgs-pr-550438):
    # one package's log tail closing, the next package's block after it; no recap left
    tail_ = ["ERROR Backend subprocess exited when trying to invoke build_wheel</pre>",
             "</details>", "<details>", "<summary>vpp</summary>",
             "<pre>[ 90%] Built target acl_plugin",
             "make: *** [Makefile:136: all] Error 2</pre>", "</details>"]
    [found] = diagnose.parse_log(tail_)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    # a line no such chain follows, or a writer's own <details> log ("Build log", no
    # attribute), is no review log's: the builder's own verdict (pypa build's, one of
    # diagnose.BUILDERS_VERDICTS) says a build failed, nothing more (before the general rule
    # of issue #26 these read `other`, the line as its message)
    for text in (tail_[:1], ["<details>", "<summary>Build log</summary>",
                             "<pre>ERROR Backend subprocess exited when trying to invoke "
                             "build_wheel</pre>", "</details>"]):
        [found] = diagnose.parse_log(text)
        assert (found.type, found.drv) == (FailureType.BUILD, None)
        assert "pip's verdict" in found.message


GOT = "0z7mc1l0qhimhsq9sxhf4a3w1i2rn9k75zqc8yj1i62aa6p7nq03"


@pytest.mark.parametrize("cut", ["instead of the expec", "instead of", "instead of the "])
def test_nix_20s_fixed_output_mismatch_cut_before_the_expected_hash_is_still_one(cut: str) -> None:
    # Nix 2.0-2.1's "fixed-output derivation produced path '…' with sha256 hash '…' instead of
    # the expected hash '…'", a comment's copy cut before the expected hash (nixpkgs#51500): the
    # line Nix prints only for a hash that differs, the got hash whole
    out = f"/nix/store/{H}-noto-fonts-extra-2018-11-30"
    got = "0l94aiy1b3qirg2mmbagbr0014vqk32za79pzck1acy2hgy716kq"
    [found] = diagnose.parse_log(["```", f"fixed-output derivation produced path '{out}' with "
                                  f"sha256 hash '{got}' {cut}"])
    assert (found.type, found.got, found.specified) == (
        FailureType.HASH_MISMATCH, f"sha256:{got}", None)
    # whole, as before
    [found] = diagnose.parse_log([f"error: fixed-output derivation produced path '{out}' with "
                                  f"sha256 hash '{got}' instead of the expected hash '{GOT}'"])
    assert (found.type, found.specified) == (FailureType.HASH_MISMATCH, f"sha256:{GOT}")


@pytest.mark.parametrize("line", [
    "fixed-output derivation produced path '{out}' with sha256 hash '{got}' instead of the "
    "expected hash '{want}'",
    "hash mismatch in fixed-output derivation '{out}':\n  wanted: sha256:{want}\n  got:    "
    "sha256:{got}"])
def test_a_mismatch_naming_the_output_path_is_the_derivation_the_log_built(line: str) -> None:
    # Nix 2.0-2.3 name the fixed output's path, not its derivation (heldout-495 nixpkgs-pr-41649,
    # ofborg's log: "building '…-source.drv'...", then "… produced path '…-source' …"): the
    # derivation of that name the log built, the path its output; the dependent still linked
    drv, out = f"/nix/store/{'1' * 32}-source.drv", f"/nix/store/{'2' * 32}-source"
    dependent = f"/nix/store/{'3' * 32}-wireguard-tools-0.0.20180531.drv"
    text = [f"building '{drv}'...", *line.format(out=out, got=GOT, want="0" * 52).split("\n"),
            f"cannot build derivation '{dependent}': 1 dependencies couldn't be built",
            f"error: build of '{dependent}' failed"]
    found = diagnose.parse_log(text)
    assert (found[0].type, found[0].drv, found[0].output) == (FailureType.HASH_MISMATCH, drv, out)
    assert found[1].drv == dependent and "source" in found[1].message
    # no derivation of its name in the log: the output path as before
    [alone] = diagnose.parse_log(text[1:-2])
    assert alone.drv == out


def test_build_remotes_line_alone_after_a_builder_it_could_not_use_is_that_builder() -> None:
    # a journal's copy keeping build-remote's "Failed to find a machine for remote build!" and
    # none of its "derivation: …" lines after (heldout-529 nixpkgs-pr-146626): the remote
    # builder Nix could not use is why, as with the whole lines (tests/data/nix-2.8/builder-down)
    text = ["cannot build on 'ssh://me@builder': error: cannot connect to 'me@builder': error: "
            "unable to execute 'ssh': No such file or directory",
            "Failed to find a machine for remote build!"]
    [found] = diagnose.parse_log(text)
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    assert "ssh://me@builder" in found.message
    # the line alone, no builder named before it: as before
    [alone] = diagnose.parse_log(text[1:])
    assert (alone.type, alone.kind) == (FailureType.OTHER, Kind.ERROR)


def test_a_module_message_a_writer_quoted_with_its_option_in_a_code_span_is_eval() -> None:
    # the module system's "The option `a.b' does not exist", a sentence's double-quoted copy
    # with the option in a markdown code span (heldout-497 nixos-search-847): eval, the message
    # to the writer's closing quote
    [found] = diagnose.parse_log(['results in the error "The option `programs.zsh.foo` does not '
                                  'exist" because the correct option is `programs.zsh.bar`'])
    assert (found.type, found.message) == (
        FailureType.EVAL, "The option `programs.zsh.foo` does not exist")


def test_a_dedented_23_mismatch_whose_got_a_copy_tabbed_keeps_its_hash() -> None:
    # (heldout-123's Nix cheat sheet under test_logshape's dedented wrapping: 2.3's "got:    "
    # written with a tab, its indentation lost, ended the message before the hash it got)
    [found] = diagnose.parse_log([
        "hash mismatch in fixed-output derivation '/nix/store/" + "a" * 32 + "-source':",
        "wanted: sha256:" + "0" * 52, f"got:\tsha256:{GOT}"])
    assert found.type is FailureType.HASH_MISMATCH
    assert found.message.endswith(f"got sha256:{GOT}")


def test_an_error_relaying_the_next_one_takes_its_message() -> None:
    # nix-eval-jobs (buildbot-nix, Hydra): "…: error:", the relayed error's trace, its message
    [found] = diagnose.parse_log([
        "error: derivation 'x86_64-linux.tests' does not have valid outputs: error:",
        "… while calling the 'derivationStrict' builtin",
        "at <nix/derivation-internal.nix>:9:12:",
        "(stack trace truncated; use '--show-trace' to show the full, detailed trace)",
        "error: writing to file: Broken pipe"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    assert found.message == "writing to file: Broken pipe"


@pytest.mark.parametrize(("path", "type_"), [
    ("/Users/u/p/.direnv/flake-profile.73977", FailureType.OTHER),  # nix-direnv's profile
    ("/private/var/folders/jy/T/nh-osYxaNng/result", FailureType.OTHER),  # an out-link
    ("/home/u/p/result-dev", FailureType.OTHER),
    ("/nix/var/nix/profiles/system-42-link", FailureType.OTHER),
    ("/nix/var/nix/gcroots/per-user/u/current-home", FailureType.OTHER),
    # files the evaluation reads, also through a profile or named like one
    ("/home/u/cfg/profile.nix", FailureType.EVAL),
    ("/nix/var/nix/profiles/per-user/root/channels/nixos/default.nix", FailureType.EVAL),
    ("/home/u/dotfiles", FailureType.EVAL),
])
def test_a_missing_profile_or_out_link_is_nixs_not_the_evaluations(
        path: str, type_: FailureType) -> None:
    [found] = diagnose.parse_log([f"error: getting status of '{path}': No such file or directory"])
    assert found.type is type_


def test_a_flake_lock_computation_error_is_evaluation_also_without_its_frame() -> None:
    # libflake's own words; Nix 2.13+ frames them "… while updating the lock file of flake"
    [found] = diagnose.parse_log(
        ["error: input 'emanote/nixpkgs' follows a non-existent input 'ema/nixpkgs'"])
    assert found.type is FailureType.EVAL
    # Nix writing the lock file it updated, refused that file (nix-darwin#1484): a lock file
    # that cannot be written, as "cannot write modified lock file" (round 11's convention); the
    # same refusal of a file of Nix's own under the frame is Nix's
    frame = "       … while updating the lock file of flake 'path:/private/etc/nix-darwin'"
    for path, type_ in (("/private/etc/nix-darwin/flake.lock", FailureType.EVAL),
                        ("/nix/var/nix/gcroots/auto/x", FailureType.OTHER)):
        [found] = diagnose.parse_log(
            ["error:", frame, "", f"       error: opening file '{path}': Permission denied"])
        assert found.type is type_, path


def test_a_cannot_build_whose_reason_a_copy_left_out_is_that_derivations_build_failure() -> None:
    # devenv's output as reported: indented, hashes elided, the root's Reason line left out
    found = diagnose.parse_log([
        "  error: Cannot build '/nix/store/…-always-fails.drv'.",
        "  error: Cannot build '/nix/store/…-tasks.json.drv'.        Reason: 1 dependency failed.",
        "    × Failed to realize shell derivation"])
    assert [(d.type, d.drv) for d in found] == [
        (FailureType.BUILD, "/nix/store/…-always-fails.drv"),
        (FailureType.DEPENDENCY, "/nix/store/…-tasks.json.drv")]
    # with its Reason the reason decides, as before
    [reasoned] = diagnose.parse_log([
        "error: Cannot build '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv'.",
        "       Reason: 1 dependency failed."])
    assert reasoned.type is FailureType.DEPENDENCY


def test_a_cannot_build_block_copied_without_a_quoted_store_path_is_read_by_its_reason() -> None:
    # heldout-117: the 2.29+ block as people copy it -- the derivation's bare name, the path
    # elided and the lines joined, an unquoted path -- and its Reason line under another tool's
    # error line: the Reason says what failed, in Nix's words
    features = ["       Reason: missing system features",
                "       Required features: {kvm, nixos-test}",
                "       Available features: {benchmark, big-parallel}"]
    cases = {
        ("error: Cannot build x-test-run.drv", *features): (FailureType.PLATFORM, None),
        ("error: Cannot build ... Reason: 1 dependency failed.",): (FailureType.DEPENDENCY, None),
        (f"error: Cannot build /nix/store/{H}-x.drv.",
         "       Reason: builder failed with exit code 2."): (FailureType.BUILD,
                                                             f"/nix/store/{H}-x.drv"),
        ("error: failed to build attribute 'checks.x86_64-linux.vm'", *features):
            (FailureType.PLATFORM, None)}
    for log, (type_, drv) in cases.items():
        [found] = diagnose.parse_log(list(log))
        assert (found.type, found.drv) == (type_, drv), log
    # such a block only as the message a text starts with: in a copy that joined a log's lines
    # (heldout-113's agent session) the hash mismatch before it is what failed first
    [joined] = diagnose.parse_log([
        "error: hash mismatch in fixed-output derivation 'REDACTED.drv': specified: "
        "sha256-AAAA= got: REDACTED error: Cannot build 'REDACTED.drv'. Reason: 1 dependency "
        "failed. Output paths: REDACTED"])
    assert joined.type is FailureType.HASH_MISMATCH
    # a reason Nix does not print under such a line leaves the line what it says
    [attribute] = diagnose.parse_log(["error: attribute 'x' missing",
                                      "       Reason: the input was renamed"])
    assert attribute.type is FailureType.EVAL


def test_another_builds_line_inside_a_trace_awaiting_its_message_does_not_end_it() -> None:
    # `nix build -L`: Nix writes an error whole, a terminal may show another build's line
    # inside it; a copy that lost the indentation leaves the message at the line start
    trace = ["error: derivation 'x86_64-linux.tests' does not have valid outputs: error:",
             "… while calling the 'derivationStrict' builtin",
             "at <nix/derivation-internal.nix>:9:12:",
             "error: writing to file: Broken pipe"]
    for log in (trace, [*trace[:3], "other-1.0> compiling 3", trace[3]]):
        [found] = diagnose.parse_log(log)
        assert (found.type, found.kind, found.message) == (
            FailureType.OTHER, Kind.NIX, "writing to file: Broken pipe")


def test_a_builder_that_could_not_be_reached_explains_the_local_refusal_after_it() -> None:
    # build-remote tried the one matching builder, then the local build refused the same
    # derivation: one failure, the builder's, for that derivation
    drv = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv"
    [found] = diagnose.parse_log([
        "cannot build on 'ssh-ng://b': error: failed to start SSH connection to 'b'",
        "Failed to find a machine for remote build!",
        f"derivation: {drv.removeprefix('/nix/store/')}",
        "required (system, features): (aarch64-linux, [])",
        "1 available machines:",
        "(systems, maxjobs, supportedFeatures, mandatoryFeatures)",
        "([aarch64-linux], 1, [], [])",
        f"error: a 'aarch64-linux' with features {{}} is required to build '{drv}', "
        "but I am a 'x86_64-linux' with features {}"])
    assert (found.type, found.kind, found.drv) == (FailureType.OTHER, Kind.NIX, drv)
    assert "ssh-ng://b" in found.message


def test_nixs_own_exec_failure_in_a_builders_output_is_that_builds_failure() -> None:
    # `nix build -L` through nom, the "builder for … failed" line lost: the child's words say
    [found] = diagnose.parse_log(["hello> error: executing '/bin/sh': No such file or directory"])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    assert "hello" in found.message and "/bin/sh" in found.message
    # a builder's own error line is still its output, not a failure
    assert diagnose.parse_log(["hello> error: test 3 failed, retrying"]) == []


def test_a_wrapper_scripts_fatal_shell_error_is_a_failure_not_silence() -> None:
    # nixos-rebuild (a bash script) died on its own syntax error before Nix said anything
    line = ("/nix/store/x-nixos-rebuild/bin/nixos-rebuild: line 868: "
            "syntax error near unexpected token `|'")
    [found] = diagnose.parse_log(["$ cat /proc/sys/kernel/hostname", line])
    assert found.type is FailureType.OTHER and "line 868" in found.message
    [unbound] = diagnose.parse_log(["./run.sh: line 19: input[x]: unbound variable"])
    assert unbound.type is FailureType.OTHER
    # the same words in a builder's output are its own
    assert diagnose.parse_log([f"hello> {line}"]) == []


def test_a_capture_that_ends_on_a_scripts_command_not_found_ended_of_it() -> None:
    line = "/nix/store/x-home-manager-generation/activate: line 149: nix-build: command not found"
    [found] = diagnose.parse_log(["Starting Home Manager activation", line])
    assert found.type is FailureType.OTHER and "nix-build" in found.message
    # configure scripts print it and go on: not where the log goes on
    assert diagnose.parse_log(["./configure: line 9: xyz: command not found",
                               "checking for cc... cc"]) == []


@pytest.mark.parametrize("script", [
    "/nix/store/x-home-manager-generation/activate", "bash", "/home/runner/work/_temp/1a2b.sh",
    "/etc/profiles/per-user/u/bin/rebuild"])
@pytest.mark.parametrize("after", ["Activating checkLinkTargets", "", "Post job cleanup.",
                                   "May 01 12:00:01 web systemd[1]: x.service: Failed."])
def test_a_script_no_build_runs_dies_of_command_not_found_whatever_follows(
        script: str, after: str) -> None:
    # nix-darwin#1412's activation script, system-manager#341's `bash -c` over ssh: exit 127,
    # then the wrapper's or the journal's lines (before: no failure at all, a silent zero)
    line = f"{script}: line 149: nix-build: command not found"
    found = diagnose.parse_log(["Starting Home Manager activation", line, after, "done"])
    assert [(d.type, d.message, d.log_line) for d in found] == [(FailureType.OTHER, line, 2)]


@pytest.mark.parametrize("script", ["./configure", "../libtool", "config.status",
                                    "/build/source/autogen.sh",
                                    "/tmp/nix-build-hello-2.12.drv-0/hello-2.12/configure"])
def test_a_builds_script_not_finding_a_command_goes_on(script: str) -> None:
    # configure checks for programs that way: a build's script (relative to or in the build's
    # directory) is no failure where the log goes on; `-L`'s lines never are
    assert diagnose.parse_log([f"{script}: line 9: xyz: command not found",
                               "checking for cc... cc"]) == []
    assert diagnose.parse_log(["hello> /nix/store/x/activate: line 9: xyz: command not found",
                               "hello> checking for cc... cc"]) == []


def test_an_error_nix_eval_jobs_records_for_an_attribute_is_the_evaluations() -> None:
    # a bare throw (no frame: `other` alone), which nix-eval-jobs' record, cut short by the
    # copy, files under an attribute
    stderr = ["error: please be informed that this pseudo-package is not the only part of",
              "       Nixpkgs that fails to evaluate."]
    assert diagnose.parse_log(stderr)[0].type is FailureType.OTHER
    record = ('{"attr":"AAA","attrPath":["AAA"],"error":"error: please be informed that this '
              'pseudo-package is not the only part of\\n       Nixpkgs that fa')
    [found] = diagnose.parse_log([*stderr, record])
    assert found.type is FailureType.EVAL


# what may stand around a line (a tool's prefix, a sentence, a record), without what makes it a
# builder's `name> ` line, a warning or an internal-json record
AROUND_VALUE = st.text(alphabet="abcXYZ 09.,;=*_`'\"()-/|#\t", max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Z][a-z]{1,8}(?:[A-Z][a-z0-9]{1,8}){0,2}", fullmatch=True),
       st.sampled_from(["Error", "Exception"]), st.sampled_from([" {", "{", " [", "[", ":"]),
       AROUND_VALUE, AROUND_VALUE)
def test_an_error_value_a_program_printed_is_no_silent_zero(name: str, kind: str, opening: str,
                                                            before: str, after: str) -> None:
    """An error value printed as a program died (Garnix's Haskell `DecodeError {message = …}`,
    garnix-io/issues#66; Rust's `Error { kind: … }`, Node's `SystemError [ERR_…]`, Java's
    `java.io.IOException: …`) names its type for what it is: a failure, `other` with that line."""
    line = f"{before} {name}{kind}{opening}{after}"
    found = diagnose.parse_log(["some output", line, ""])
    assert found and found[0].log_line == 2
    assert (found[0].type, found[0].kind) == (FailureType.OTHER, Kind.ERROR)
    assert f"{name}{kind}" in found[0].message


def test_an_error_value_needs_its_type_name_and_contents() -> None:
    # words that merely hold "error": no type name with its contents after it
    for line in ["configure: checking for strerror_r... yes", "ErrorKind is re-exported",
                 "3 errors fixed {see notes}", "handle decodeerror [x]", "TheErrors: 0",
                 "RuntimeError", "class ParseError extends Base"]:
        assert diagnose.parse_log([line]) == [], line
    # a builder's line stays its own output
    assert diagnose.parse_log(["app> DecodeError {message = \"x\"}"]) == []


@pytest.mark.parametrize("stand_in", ["/nix/store/file-name.service.drv", "<drv>", "foo.drv"])
@pytest.mark.parametrize("status", ["failed with exit code 2", "failed due to signal 9",
                                    "failed to produce output path for output 'out' at '/x'"])
def test_a_builder_line_naming_a_stand_in_for_its_derivation_is_a_build_failure(
        stand_in: str, status: str) -> None:
    """A report that put a stand-in where Nix printed the store path (no hash, a placeholder)
    is still a build failure, as a line of its own or quoted in a sentence; no derivation is
    named (the stand-in is none)."""
    line = f"builder for '{stand_in}' {status}"
    for log in ([f"error: {line}"], [f"Builds fail with the error message `{line}`. Help?"]):
        [found] = diagnose.parse_log(log)
        assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, None)
        assert found.message == f"builder for {stand_in} {status.split(' for output')[0]}"
    # a sentence with the words but no wording of Nix's stays the line as it is
    [prose] = diagnose.parse_log([f"builder for '{stand_in}' failed, see the log"])
    assert (prose.type, prose.kind) == (FailureType.OTHER, Kind.ERROR)


def test_an_evaluators_message_quoted_in_a_sentence_is_evaluation() -> None:
    # NixVirt#66: the abort builtin's words in inline code inside a sentence
    [found] = diagnose.parse_log([
        "When a domain sets cpu.model.name the evaluation is aborted with: `error: evaluation "
        "aborted with the following error message: 'NixVirt: expected set or null'`."])
    assert (found.type, found.message) == (
        FailureType.EVAL, "evaluation aborted with the following error message: "
        "'NixVirt: expected set or null'")
    # nh#229: in double quotes, NixOS' `…' quoting inside; the sentence goes on after the quote
    [option] = diagnose.parse_log([
        'it fails with the error "error: The option `stylix.targets.plymouth\' does not exist.",'
        " but when i rebuild with nixos-rebuild it succeeds"])
    assert (option.type, option.message) == (
        FailureType.EVAL, "The option `stylix.targets.plymouth' does not exist.")
    # words no evaluator says keep the sentence, type other
    [other] = diagnose.parse_log(["I get this error: the disk broke badly."])
    assert (other.type, other.message) == (FailureType.OTHER, "I get this error: the disk broke "
                                            "badly.")


TRACE_CUT = ["error:",
             "       … while evaluating the attribute 'config.system.build.toplevel'",
             "         at /nix/store/bbdy3rh57z41in83s2g0vl8bbdy3rh5x-source/lib/eval-config.nix"
             ":12:3:",
             "           12|   config = x;",
             "             |   ^"]
RETRIES = [f"warning: error: unable to download 'https://github.com/o/r/archive/c.tar.gz': "
           f"Failure when receiving data from the peer (56); retrying in {ms} ms"
           for ms in (292, 690)]


def test_a_trace_cut_before_its_message_is_typed_by_its_innermost_frame() -> None:
    """A copy that ends inside the trace (Nix 2.13+ starts it with a bare "error:"): what the
    innermost frame says Nix was doing, at the frames' position; never a code line as message."""
    [found] = diagnose.parse_log(TRACE_CUT)
    assert (found.type, found.file, found.line) == (FailureType.EVAL, "lib/eval-config.nix", 12)
    assert found.message.startswith("evaluation failed (the log holds only its trace, last: "
                                    "… while evaluating the attribute 'config.system")
    [fetch] = diagnose.parse_log(["error:", "       … while fetching the input 'github:o/r'"])
    assert (fetch.type, fetch.kind) == (FailureType.OTHER, Kind.DOWNLOAD)
    # with its message the message decides, as ever
    [whole] = diagnose.parse_log([*TRACE_CUT, "", "       error: attribute 'x' missing"])
    assert (whole.type, whole.kind) == (FailureType.EVAL, Kind.MISSING_ATTRIBUTE)


def test_a_trace_cut_right_after_nix_retried_a_download_is_that_download_failing() -> None:
    # nix#11352: the retries, then the trace of the evaluation that wanted it, cut off
    [found] = diagnose.parse_log(["building the system configuration...", *RETRIES, *TRACE_CUT])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.DOWNLOAD)
    assert found.message.startswith("unable to download https://github.com/o/r/archive/c.tar.gz"
                                    ": Failure when receiving data from the peer (56)")
    # another build's `-L` line between them is no word of Nix's
    [beside] = diagnose.parse_log([*RETRIES, "other-1.0> compiling 3", *TRACE_CUT])
    assert beside.kind is Kind.DOWNLOAD
    # older Nix: the warning without the inner "error: "
    [old] = diagnose.parse_log([RETRIES[0].replace("warning: error: ", "warning: "), *TRACE_CUT])
    assert old.kind is Kind.DOWNLOAD
    # the retry is not the last thing Nix said (it went on), or the message is there: not it
    for log in ([*RETRIES, "unpacking 'github:o/r' into the Git cache...", *TRACE_CUT],
                [*RETRIES, *TRACE_CUT, "       error: attribute 'x' missing"]):
        assert diagnose.parse_log(log)[0].type is FailureType.EVAL


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[A-Za-z][a-zXYZ .,;`*()-]{0,39}", fullmatch=True),
       st.sampled_from(["error:", "Error:", "**error:**"]),
       st.lists(st.sampled_from(["", "```", "```text", "  "]), max_size=3),
       st.sampled_from(["> ", "", "    ", "`"]),
       st.sampled_from([("cannot coerce a set to a string", FailureType.EVAL),
                        ("attribute 'x' missing", FailureType.EVAL),
                        ("opening lock file '/nix/var/nix/db/big-lock': Permission denied",
                         FailureType.OTHER)]))
def test_a_line_ending_on_error_says_what_on_the_next(sentence: str, mark: str, between: list[str],
                                                      quote: str,
                                                      message: tuple[str, FailureType]) -> None:
    """A sentence ending on "error:" (nixpkgs#97455: "… will produce the very confusing error:")
    announces the message on the next line that holds anything, quoted, fenced or indented:
    that message is the failure, classified as Nix's words say."""
    text, kind = message
    lines = [f"{sentence} {mark}", *between, f"{quote}{text}{'`' if quote == '`' else ''}", ""]
    [found, *_] = diagnose.parse_log(lines)
    assert found.type is kind and text.split("'")[0] in found.message
    assert found.log_line == len(lines) - 1


def test_a_line_ending_on_error_over_nixs_quote_of_a_builders_lines_is_that_build() -> None:
    """heldout-475 caelestia-shell-586: a sentence ending on "error:" over a fence of builder
    lines as Nix quotes them ("       > …", its report cut off above them) announces the build's
    own output, not a message of Nix's: a build failed, as the quoted tail alone reads."""
    tail = ["```sh", "       > FAILED: [code=1] plugin/src/x.cpp.o",
            "       > /nix/store/q7375xm60a582561sq84mxyx13j79cjb-clang-19/bin/clang++ -c x.cpp",
            "```"]
    [found] = diagnose.parse_log(["It is failing on the `buildPhase` of `x` with error:", "",
                                  *tail])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    # a markdown quote under it stays what the sentence announces (the evaluator's message)
    [quoted] = diagnose.parse_log(["It fails with error:", "> attribute 'x' missing"])
    assert quoted.type is FailureType.EVAL


def test_nixs_sandbox_and_namespace_setup_failing_is_nixs_own() -> None:
    # nix-installer#1666: the build's sandbox could not be set up (the machine, not the build)
    # heldout-118: the daemon's own cgroup setup (before the builder's child, so without the
    # "… while setting up the build environment" frame)
    for message in ("getting sandbox mount namespace: No such file or directory",
                    "setting up a private network namespace: Operation not supported",
                    "cannot determine the cgroups file system",
                    'expected cgroup directory "/sys/fs/cgroup/system.slice/nix-daemon.service"'):
        [found] = diagnose.parse_log([f"error: {message}"])
        assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize(("log", "kind"), [
    # heldout-172/173's family, by subsystem: none of these words is listed anywhere, each is
    # another wording of its mark (the samples hold others). A store named by its URI, a store
    # path as the subject the store refuses, the store's database and schema, Nix's own data of
    # another version, the daemon's trust, a system call about no object of the user's, Nix's
    # state under /nix/var/nix, SSH as Nix's connection (ssh's own line no download)
    (["error: querying path info is not supported for 'file:///srv/cache' store"], Kind.NIX),
    (["error: store path 'q7375xm60a582561sq84mxyx13j79cjb-a b' contains illegal character ' '"],
     Kind.NIX),
    (["error: path '/nix/store/q7375xm60a582561sq84mxyx13j79cjb-x.lock' is held by PID 7"],
     Kind.NIX),
    (["error: the database row of path '/nix/store/x' was deleted under us"], Kind.NIX),
    (["error: nario format version 9 is too new"], Kind.NIX),
    (["error: the daemon gave us an unknown trusted status 7"], Kind.NIX),
    (["error: creating anonymous pipe: Invalid argument"], Kind.NIX),
    (["error: cannot stat '/nix/var/nix/temproots/4242'"], Kind.NIX),
    (["ssh: Could not resolve hostname b1: Name or service not known",
      "error: failed to start SSH connection to 'b1'"], Kind.NIX),
    # (heldout-174/175) the GC, NARs, a sandbox's loopback, a cache directory of Nix's
    (["error: the GC refused a root outside the store"], Kind.NIX),
    (["error: NAR ends before its closing parenthesis"], Kind.NIX),
    (["error: configuring the loopback alias failed with exit code 2"], Kind.NIX),
    (["error: reading '/home/u/.cache/nix/fetcher-cache-v3.db-journal' gave 0 bytes"], Kind.NIX),
    # the JSON library's parse error inside Nix's message is no syntax error of the evaluator's
    (["error: cannot parse the structured attributes of '/nix/store/x.drv': "
      "[json.exception.parse_error.101] parse error at line 1, column 1: syntax error while "
      "parsing value - invalid literal"], Kind.ERROR),
    # (heldout-142/143) a key as the subject, a SysError in capitals with another strerror, a
    # derived path, a sandbox's impure paths
    (["error: key 'name' is missing in the JSON object"], Kind.ERROR),
    (["error: key pair generation failed: out of entropy"], Kind.NIX),
    (["error: Failed to open routing socket: Address family not supported by protocol"],
     Kind.NIX),
    (["error: cannot resolve derived path 'x.drv^out' in a read-only store"], Kind.NIX),
    (["error: impure host path '/usr/lib' cannot be shared"], Kind.NIX),
    # (heldout-144/145) a numbered build user, the plugin-files setting; the file transfer's
    # curl sockets and S3 URIs are its own (download)
    (["error: account 'nixbld7' is locked"], Kind.NIX),
    (["error: plugin file '/usr/lib/nix/plugins/x.so' has no init symbol"], Kind.NIX),
    # (heldout-479 nix-plugins-9) a plugin in the store whose file's name holds "builtins."
    # (nix-plugins' libnix-extra-builtins.so): no builtin of the evaluator's by its name
    (["error: could not dynamically open plugin file '/nix/store/q7375xm60a582561sq84mxyx13j79cjb"
      "-nix-plugins-6.0.0/lib/nix/plugins/libnix-extra-builtins.so': /nix/store/q7375xm60a58256"
      "1sq84mxyx13j79cjb-nix-plugins-6.0.0/lib/nix/plugins/libnix-extra-builtins.so: undefined "
      "symbol: _ZN3nix11BaseSetting"], Kind.NIX),
    (["error: polling the curl multi socket: Invalid argument"], Kind.DOWNLOAD),
    (["error: S3 bucket name 'a' is too short"], Kind.DOWNLOAD),
    # a build result a daemon or builder reports back; the file transfer's AWS credentials
    (["error: the remote builder's build result has no status"], Kind.NIX),
    (["error: cannot load AWS credentials for profile 'ci'"], Kind.DOWNLOAD),
    # (heldout-205/206) a serialiser's capitalised "Invalid <what>" naming no value (the
    # worker protocol's refusals); the daemon's active builds, a builder's speed factor; a
    # look-alike that names its value (Lix's completions) or libexpr's fromJSON stays `error`
    (["error: Invalid substitution mode"], Kind.NIX),
    (["error: Invalid output id sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c!dev"], Kind.NIX),
    (["error: the active build record of PID 4242 is unreadable"], Kind.NIX),
    (["error: speed factor of 'ssh://b1' is not a number"], Kind.NIX),
    (["error: Invalid value for environment variable NIX_GET_COMPLETIONS: x"], Kind.ERROR),
    (["error: Invalid JSON Value"], Kind.ERROR),
    # user-caused errors stay `error`: the command line, a registry miss, a fetcher's Git
    # (commit signatures, its object database), a store path the command line misuses, S3's XML
    # schema, a key file not given, a flag the command line names, a program the user runs
    # (a SysError naming its file)
    (["error: unrecognised flag '--impure'"], Kind.ERROR),
    (["error: cannot find flake 'flake:foo' in the flake registries"], Kind.ERROR),
    (["error: Can't fetch from a dirty workdir with commit signature verification enabled."],
     Kind.ERROR),
    # (libfetchers' git-utils.cc, 2.33+: a flake input's publicKeys, for its commits'
    # signatures, hold a key type Nix does not know: the user's input, no connection of Nix's)
    (["error: Invalid SSH key type 'ssh-foo' in publicKeys.", "       Please use one of:",
      "         ssh-ed25519", "         ssh-rsa"], Kind.ERROR),
    (["error: getting Git object database: unexpected EOF"], Kind.ERROR),
    (["error: cannot use output selection ('out') on non-derivation store path "
      "'/nix/store/q7375xm60a582561sq84mxyx13j79cjb-x'"], Kind.ERROR),
    (["error: AWS error uploading 'nix-cache-info': MalformedXML: the XML did not validate "
      "against our published schema"], Kind.ERROR),
    (["error: you must specify a secret key file using '-k'"], Kind.ERROR),
    (["error: a daemon store cannot be used with '--store-dir'"], Kind.ERROR),
    (["error: unable to execute '/nix/store/q7375xm60a582561sq84mxyx13j79cjb-x/bin/x': Exec "
      "format error"], Kind.ERROR),
])
def test_nixs_own_machinery_is_kind_nix_by_what_the_error_is_about(log: list[str],
                                                                    kind: Kind) -> None:
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind) == (FailureType.OTHER, kind)


def test_a_command_the_user_typed_is_refused_and_a_values_type_is_the_evaluators() -> None:
    """heldout-208 (rebuilt from libcmd): the repl refusing a command as typed is the command
    line's, whatever flake reference it names; Lix's type error names the type it found."""
    for message in ("cannot use ':load-flake' with flake reference 'path:/srv/x' here",
                    "cannot use '--profile' with flake reference 'github:a/b'"):
        [found] = diagnose.parse_log([f"error: {message}"])
        assert (found.type, found.kind) == (FailureType.OTHER, Kind.ERROR), message
    [found] = diagnose.parse_log(["error: Expected `repl-overlays` entry /home/u/r.nix to be a "
                                  "function but found an integer: 3"])
    assert (found.type, found.kind) == (FailureType.EVAL, Kind.TYPE)
    # "expected … but got" of Nix's own reading (a size, a record's type tag) stays Nix's
    for message in ("size mismatch while fetching x: expected 42 but got 3",
                    "invalid active build JSON: expected type 'build' but got 'eval'"):
        [found] = diagnose.parse_log([f"error: {message}"])
        assert found.type is FailureType.OTHER, message


def test_nixs_own_error_while_it_built_comes_before_the_build_it_failed() -> None:
    """heldout-206: an error of Nix's own machinery printed above a build's failure, and in none
    of the builds' logs, is Nix's while it built, its first failure; the same line in the
    build's last log lines is the builder's own output, and the build's failure stays first."""
    drv = "/nix/store/b1r9kd7vxq2n0c4mzh6p8ls5wy3gfj0a-rec-1.drv"
    def log(tail: str) -> list[str]:
        return ["error: joining the sandbox's mount namespace: Operation not permitted",
                f"error: builder for '{drv}' failed with exit code 1;", "       last 1 log lines:",
                f"       > {tail}", f"       For full logs, run 'nix log {drv}'."]
    first = diagnose.parse_log(log("error: could not add path '/nix/store/x' to sandbox"))[0]
    assert (first.type, first.kind) == (FailureType.OTHER, Kind.NIX)
    echoed = diagnose.parse_log(
        log("error: joining the sandbox's mount namespace: Operation not permitted"))[0]
    assert (echoed.type, echoed.drv) == (FailureType.BUILD, drv)


def test_a_derivations_malformed_output_checks_fail_its_build() -> None:
    # heldout-176 (2.26's "illegal reference specifier"); here master's other wording of it
    drv = "/nix/store/b1r9kd7vxq2n0c4mzh6p8ls5wy3gfj0a-hello-2.12.2.drv"
    [found] = diagnose.parse_log([f"error: derivation '{drv}' output check for 'out' contains "
                                  "output name 'doc', but this is not a valid output of this "
                                  "derivation"])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.OUTPUT_CHECK, drv)
    # 2.18-2.25 named neither the derivation nor the output (heldout-145)
    [found] = diagnose.parse_log(["error: derivation contains an illegal reference specifier "
                                  "'dev'"])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.OUTPUT_CHECK)


def test_a_platform_nix_refuses_by_its_feature_or_rosetta_is_platform() -> None:
    # heldout-142/143: 2.18's feature refusal, 2.24-2.28's Rosetta advice (other wordings here)
    [found] = diagnose.parse_log(["error: feature 'kvm' is not supported on this platform"])
    assert (found.type, found.kind) == (FailureType.PLATFORM, Kind.SYSTEM_FEATURE)
    [found] = diagnose.parse_log(["error: run `/usr/sbin/softwareupdate --install-rosetta` to "
                                  "enable your aarch64-darwin to run programs for x86_64-darwin"])
    assert (found.type, found.system) == (FailureType.PLATFORM, "x86_64-darwin")
    assert "--install-rosetta" in (found.hint or "")


def test_libstores_frame_over_a_derivation_it_parses_is_not_the_evaluators() -> None:
    drv = "/nix/store/b1r9kd7vxq2n0c4mzh6p8ls5wy3gfj0a-hello-2.12.2.drv"
    [found] = diagnose.parse_log(["error:", f"       … while parsing derivation '{drv}'", "",
                                  "       error: expected string 'Derive(['"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize("frame", [
    # heldout-231 Polar-241: the build hook's nix could not start (derivation-goal.cc, 2.18+)
    "while reading the response from the build hook",
    "while reading the machine name from the build hook",
    "while processing 'sandbox-paths'",  # 2.18-2.24, Lix
    "while processing sandbox path '/etc/ssl'",  # 2.3x
    "while reading key 'outputs'",  # a derivation's or path info's JSON
    "while parsing attribute \"outputChecks\"",  # derivation-options.cc
    "while parsing machine specification at a column #3 in a row: 'x'",
    "while running the post-build-hook /etc/hook for derivation /nix/store/x.drv",  # Lix
    "writing file '/nix/var/nix/gcroots/auto/x'",
    "during download of 'https://cache.example/nar/x.nar.xz'",
])
def test_the_frames_nixs_store_and_utility_libraries_add_are_not_the_evaluators(
        frame: str) -> None:
    # libstore's, libutil's and libfetchers' addTrace frames (read from the sources) say which
    # of Nix's own steps failed; only libexpr's frames are the evaluator's evidence (for a
    # message with no words of its own: libutil's "unexpected EOF reading a line" is Nix's own)
    [found] = diagnose.parse_log(["error:", f"       … {frame}", "",
                                  "       error: no such widget: frobnicator"])
    assert found.type is FailureType.OTHER
    [found] = diagnose.parse_log(["error:", "       … while evaluating the attribute 'x'", "",
                                  "       error: no such widget: frobnicator"])
    assert found.type is FailureType.EVAL


def test_nixs_error_position_with_its_code_frame_is_an_evaluation_error_cut_above() -> None:
    # heldout-239 nix-update-304: a copy starting at the position of Nix's error (its message
    # above the cut) and its code frame, then a tool's traceback: no error line, still a failure
    frame = ["       at /home/u/nixpkgs/pkgs/build-support/fetchgithub/default.nix:4:1:",
             "            3| lib.makeOverridable (", "            4| { owner, repo, rev",
             "             | ^"]
    [found] = diagnose.parse_log([*frame, "Traceback (most recent call last):"])
    assert (found.type, found.log_line) == (FailureType.EVAL, 1)
    assert "fetchgithub/default.nix:4:1" in found.message
    # a warning's position and code frame (Lix's deprecations) is no error; nor a position
    # alone, which a sentence can hold
    assert diagnose.parse_log(["warning: URL literals are deprecated", *frame]) == []
    assert diagnose.parse_log([frame[0], "and then it stopped"]) == []


@pytest.mark.parametrize("root", [
    "/run/user/501", "/run/user/1000/", "/tmp", "/private/tmp", "/var/tmp",
    "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T",
    "/private/var/folders/3k/9w2l_0cn4fd1h1pvq8qdn1v40000gn/T/"])
def test_a_missing_temporary_directory_root_is_nixs_own_not_a_file_the_evaluation_reads(
        root: str) -> None:
    # heldout-240 niv-391: nix-prefetch-url (no evaluation) stopped by its TMPDIR, a login's
    # runtime directory that is not there; Nix resolves its temporary directory first, whatever
    # the command
    [found] = diagnose.parse_log([f"error: getting status of '{root}': No such file or directory"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.ERROR)
    # a file below one is still a file the evaluation may read (an --impure import)
    below = f"{root.rstrip('/')}/flake/default.nix"
    [found] = diagnose.parse_log([f"error: getting status of '{below}': No such file or directory"])
    assert found.type is FailureType.EVAL


def test_an_error_about_nixs_machinery_under_the_evaluators_frames_stays_the_evaluations() -> None:
    # the family is asked only where no sign of the evaluator is: a flake's own throw naming the
    # daemon or the store's schema is the evaluation's
    for message in ("the Nix daemon version is too old for this flake",
                    "this module needs the store schema of Nix 2.30"):
        [found] = diagnose.parse_log([
            "error:", "       … while evaluating the attribute 'packages.x86_64-linux.default'",
            "         at /home/u/proj/flake.nix:5:7:", "", f"       error: {message}"])
        assert found.type is FailureType.EVAL


def test_the_stores_own_state_settings_and_registration_read_as_the_sources_say() -> None:
    """heldout-135..139 (rebuilt from Lix, Determinate, Nix master and 2.18-2.24): libstore's
    own words about its store, settings and registration of outputs, each family in a wording
    of its own (the samples hold others)."""
    drv = "/nix/store/b1r9kd7vxq2n0c4mzh6p8ls5wy3gfj0a-hello-2.12.2.drv"
    out = "/nix/store/7q3xkzv0m2b9h4d1sfn8clyp6wgr5ja0-hello-2.12.2"
    expected = {
        # the store's schema and format, a closure it could not repair
        "current Nix store schema is version 7, but I only support 10":
            (FailureType.OTHER, Kind.NIX),
        "Your Nix store has a database in flat file format,": (FailureType.OTHER, Kind.NIX),
        "need to migrate to content-addressed schema, but this cannot be done in read-only mode":
            (FailureType.OTHER, Kind.NIX),
        f"some paths in the output closure of derivation '{drv}' could not be repaired":
            (FailureType.OTHER, Kind.NIX),
        "Trying to register a realisation of 'sha256:1b4s!out', but we already have another one "
        "locally.": (FailureType.OTHER, Kind.NIX),
        # settings, hooks, the daemon's refusal, the terminal and /proc Nix itself reads
        "'pre-build-hook' setting is empty": (FailureType.OTHER, Kind.NIX),
        "access denied by the Lix daemon (check the `allowed-users` setting in the daemon)":
            (FailureType.OTHER, Kind.NIX),
        "unknown pre-build hook command 'sandbox-paths'": (FailureType.OTHER, Kind.NIX),
        "putting pseudoterminal into raw mode: Inappropriate ioctl for device":
            (FailureType.OTHER, Kind.NIX),
        "failed to parse /proc/self/stat": (FailureType.OTHER, Kind.NIX),
        "cannot add temporary directory to WASI config": (FailureType.OTHER, Kind.NIX),
        # (heldout-146/147) namespaces as Lix names them, Darwin's required system paths, what
        # Nix's build machinery cannot do or needs a setting for, Lix's GC root scan
        "failed to open netns: No such file or directory": (FailureType.OTHER, Kind.NIX),
        "getting attributes of required path '/usr/lib/libc++.1.dylib': No such file or "
        "directory": (FailureType.OTHER, Kind.NIX),
        "feature 'uid-range' requires the setting 'use-cgroups' to be enabled":
            (FailureType.OTHER, Kind.NIX),
        "building using a diverted store is not supported on this platform":
            (FailureType.OTHER, Kind.NIX),
        "overly long symlink starting with '/proc/1/cwd'": (FailureType.OTHER, Kind.NIX),
        # the file transfer's own machinery
        "cannot enqueue download request because the download thread is shutting down":
            (FailureType.OTHER, Kind.DOWNLOAD),
        # registerOutputs' errors of an output, and the trampoline goal's failed .drv
        f"builder for '{drv}' has no initial output for 'dev'":
            (FailureType.BUILD, Kind.OUTPUT_CHECK),
        f"output path {out} without valid stats info": (FailureType.BUILD, Kind.OUTPUT_CHECK),
        f"failed to obtain derivation of '{drv}'": (FailureType.DEPENDENCY, Kind.DEPENDENCY),
        # Determinate's flake schemas: the flake's outputs, the evaluation's
        "flake output 'checks.x86_64-linux' should exist according to its schema, but it doesn't":
            (FailureType.EVAL, Kind.ERROR),
    }
    read = {message: (found.type, found.kind)
            for message in expected for found in diagnose.parse_log([f"error: {message}"])[:1]}
    assert read == expected
    # a lock file refused under a setting is the flake's (libflake), not Nix's own settings
    [flake] = diagnose.parse_log(["error: reference lock file was provided, but the "
                                  "`allow-dirty` setting is set to false"])
    assert flake.type is FailureType.EVAL


def test_a_file_git_does_not_track_is_named_as_the_one_to_add() -> None:
    # Nix 2.29+ (master quotes the repository in double quotes): the file to `git add`
    [found] = diagnose.parse_log([
        'error: Path \'modules/ssh.nix\' in the repository "/home/u/cfg" is not tracked by Git.',
        "",
        "       To make it visible to Nix, run:",
        "",
        '       git -C "/home/u/cfg" add "modules/ssh.nix"'])
    assert (found.type, found.kind, found.file) == (
        FailureType.EVAL, Kind.UNTRACKED_FILE, "modules/ssh.nix")


def test_flake_checks_failed_build_names_its_derivation() -> None:
    """`nix flake check`: "failed to build attribute 'checks.…', build of '….drv^*' failed:"; a
    reason after it that says more decides (deploy-rs#362 printed none)."""
    drv = "/nix/store/6iiidqv9f9fn92g4h09rsk3h3s2km1a2-jsonschema-deploy-system.drv"
    line = (f"error: failed to build attribute 'checks.x86_64-linux.deploy-schema', build of "
            f"'{drv}^*' failed:")
    [found] = diagnose.parse_log([line])
    assert (found.type, found.drv) == (FailureType.BUILD, drv)
    [mismatch] = diagnose.parse_log([
        f"{line} error: hash mismatch in fixed-output derivation '{drv}':",
        "         specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "            got:    sha256-vVzERis1W3QZB/i6SQR9dQR56yDWadKWvFr+nLTQY9Y="])
    assert (mismatch.type, mismatch.drv) == (FailureType.HASH_MISMATCH, drv)


def test_a_builder_line_whose_quotes_a_page_lost_still_names_its_derivation() -> None:
    # home-manager's FAQ as a forge renders it: Nix 1.x's ‘…’ taken for markup
    drv = "/nix/store/b37x3s7pzxbasfqhaca5dqbf3pjjw0ip-user-environment.drv"
    found = diagnose.parse_log([
        "collision between /nix/store/fmwa4axzghz11cnln5absh31nbhs9lq1-a/bin/hello and "
        "/nix/store/c2wyl8b9p4afivpcz8jplc9kis8rj36d-hello-2.10/bin/hello",
        f"builder for {drv} failed with exit code 2",
        f"error: build of {drv} failed"])
    assert [(d.type, d.drv, d.exit_code) for d in found] == [(FailureType.BUILD, drv, 2)]


SENTENCE_WORDS = st.lists(st.sampled_from(["the", "option", "nixpkgs.system", "has", "been", "set",
                                           "not", "found", "any", "render", "for", "flake-parts",
                                           "2", "x86_64-linux", "(see", "docs)", "and"]),
                          min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["Neither", "Did", "Please", "Package", "Unsupported"]), SENTENCE_WORDS,
       st.sampled_from(["", "       ", " "]))
def test_a_bare_sentence_is_a_throw_as_nix_2_4_to_2_12_print_it(first: str, words: list[str],
                                                                indent: str) -> None:
    """Nix 2.4-2.12 print a `throw` as its message alone (morph#228, nix-instantiate:
    "error: Neither nixpkgs.hostPlatform nor the legacy option nixpkgs.system has been set.";
    a flake-parts throw pasted alone): a capitalised sentence naming nothing in quotes, no path
    and no URL is `eval`; no error format string of Nix 2.4-2.12 has that form."""
    message = " ".join([first, *words]) + "."
    [found] = diagnose.parse_log([f"{indent}error: {message}"])
    assert (found.type, found.kind) == (FailureType.EVAL, Kind.THROW), found
    # what Nix's own messages name: a quoted name, a path, a URL (and its lower-case start)
    for own in (f"{message[:-1]} '/nix/var/nix/db'.", f"{message[:-1]} at https://x.org.",
                f"{message[:-1]} in /etc/nix.", message[0].lower() + message[1:],
                f"{message[:-1]} ({first.lower()})?"):
        [found] = diagnose.parse_log([f"error: {own}"])
        assert found.kind is not Kind.THROW, own  # (the evaluator's own words may still say eval)


# ordinary words: none Nix starts a line of its own with ("at …" is a position), none naming
# Nix's machinery (_NIX_SENTENCE); unlike, as lines starting alike are read as a tool's prefix
WORDS = ["package", "option", "value", "please", "enable", "host", "user", "version", "file",
         "set", "the", "only", "part", "fails", "to", "evaluate", "special", "measures", "handle",
         "failing", "packages", "like", "those", "taken", "by", "hydra", "entire", "some"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=4, max_size=20, unique=True),
       st.integers(1, 3), st.sampled_from(["", "       "]))
def test_a_throws_sentence_broken_over_lines_is_read_whole(words: list[str], lines: int,
                                                          indent: str) -> None:
    """Nix indents the lines of a long message under its first (nixpkgs' "Please be informed
    that this pseudo-package is not the only part of" / "Nixpkgs that fails to evaluate. You
    should not …"): the first sentence decides, wherever the lines break it, whatever follows
    it, as in a copy that lost the indentation and ran the lines together (test_logshape's
    `dedented` wrapping of morph-228 and nix-eval-jobs-158)."""
    said = ["Please", *words[:-1], words[-1] + "."]
    cut = [len(said) * k // (lines + 1) for k in range(1, lines + 1)]
    parts = [" ".join(said[a:b]) for a, b in zip([0, *cut], [*cut, len(said)], strict=True)]
    parts[-1] += " You should not evaluate it in /nix/store."
    stderr = [f"{indent}error: {parts[0]}", *(f"{indent}       {part}" for part in parts[1:])]
    for log in (stderr, [" ".join(line.strip() for line in stderr)]):
        [found] = diagnose.parse_log(log)
        assert (found.type, found.kind) == (FailureType.EVAL, Kind.THROW), (log, found)
    # a message that is no sentence (no capital first) stays Nix's own, on one line or more
    [found] = diagnose.parse_log([stderr[0].replace("Please", "please"), *stderr[1:]])
    assert found.kind is not Kind.THROW


# Nix 2.3-2.12's line after an error that went through the evaluator (libmain/shared.cc,
# handleExceptions: printed where the error has a trace and --show-trace is off)
TRACE_HINT = "(use '--show-trace' to show detailed location information)"


def test_a_frameless_throw_naming_a_builders_failure_is_the_throw_nix_2_4_to_2_12_print() -> None:
    """Nix 2.4-2.12 print a `throw` as its message alone (primops.cc's ThrownError, no
    position), later lines indented by seven, then TRACE_HINT: a thrown text that names another
    derivation's builder failure (a test harness quoting what failed) is the evaluation's
    error, not that build's (as `_thrown` reads 2.13+'s framed throw)."""
    drv = "/nix/store/" + "a" * 32 + "-vm-test-run-login.drv"
    failed = f"builder for '{drv}' failed with exit code 1"
    for thrown in ([f"error: integration tests did not pass: {failed}"],
                   ["error: integration tests did not pass; the last run said:",
                    f"       error: {failed}"]):
        [found] = diagnose.parse_log([*thrown, TRACE_HINT])
        assert (found.type, found.kind, found.drv) == (FailureType.EVAL, Kind.THROW, None), (
            thrown, found)
        assert found.message.startswith("integration tests did not pass"), found
        # ci-nix's own evaluation reads it the same
        assert diagnose.diagnose_eval("\n".join([*thrown, TRACE_HINT])).type is FailureType.EVAL
    # the builder's failure itself reached through evaluation (import from derivation), its
    # header first, stays that build's; so does the same line without the hint (a wrapper's
    # "error:" line, which no evaluation printed)
    # (2.4pre's too, its message under a header line: heldout-177's haskell-hacknix)
    for log in ([f"error: {failed};", "       last 1 log lines:", "       > boom", TRACE_HINT],
                ["error: --- Error --- nix-build", f"{failed}; last 1 log lines:", "  boom",
                 TRACE_HINT],
                [f"error: integration tests did not pass: {failed}"]):
        [found] = diagnose.parse_log(log)
        assert (found.type, found.drv) == (FailureType.BUILD, drv), (log, found)


def test_a_bare_sentence_is_nixs_own_where_the_log_shows_a_nix_framing_throws() -> None:
    # Nix 2.13+ and Lix print every throw with its frame: where their traces are in the same
    # log, a sentence without one is no throw
    trace = ["error:", "       … while calling the 'throw' builtin",
             "         at /tmp/f/flake.nix:3:5:", "       error: Something is wrong."]
    found = diagnose.parse_log(["error: Something else is not right.", *trace])
    assert [(d.type, d.kind) for d in found] == [
        (FailureType.OTHER, Kind.ERROR), (FailureType.EVAL, Kind.THROW)]
    # alone, nothing tells the version: read as a throw; `run` evaluates with --show-trace
    # under ci-nix's helper, whose frames are always there
    assert diagnose.diagnose_eval("error: Something else is not right.").kind is Kind.THROW
    helper = ("error:\n       … while evaluating the attribute 'x'\n         at «string»:1:1:\n"
              "       error: Something else is not right.")
    assert diagnose.diagnose_eval(helper).kind is not Kind.THROW


# every error message written as a sentence in Nix 2.13-2.35, Lix 2.9x and Determinate Nix 3.x
# (a scan of their sources' error format strings; none in Nix 2.4-2.12): Nix's own, not a throw
NIX_OWN_SENTENCES = [
    "Building dynamic derivations in one shot is not yet implemented.",
    "Building derivations not yet implemented on windows.", "No packages specified.",
    "Your daemon version is too old to support deleting referrers.",
    "Only derivation format version 3 is currently supported.",
    "Unsupported derivation JSON format version 4, only format version 3 is currently "
    "supported.",
    "The program must call nix::initNix() before calling any libstore library functions.",
    "Running a build with cgroups requires cgroups v2 support on the system.",
    "Running all builds with cgroups requires privilege separation for build users but Lix is "
    "not configured to use build users.",
    "Unexpected exception on the Lix daemon; this is a bug in Lix.",
    "Your Nix store may contain immutable inodes, which is no longer supported. To convert to "
    "the new format please run the original Lix version 2.92 first.",
    "Sandboxing is enabled due to using a diverted store, but this system does not support the "
    "kernel namespaces that are required. Pass --debug for diagnostics on what is broken."]


@pytest.mark.parametrize("sentence", NIX_OWN_SENTENCES)
def test_nixs_own_sentences_are_no_throw(sentence: str) -> None:
    [found] = diagnose.parse_log([f"error: {sentence}"])
    assert found.type is FailureType.OTHER, found


def test_a_bare_sentence_only_on_nixs_own_error_line() -> None:
    # only Nix's own `error: ` line alone: not a wrapper's `Error:`, not a sentence about it
    for line in ["##[error]Process completed with exit code 1.", "Error: Job failed.",
                 "Then I get error: Something went wrong."]:
        assert [d.type for d in diagnose.parse_log([line])] == [FailureType.OTHER], line


def test_a_program_nix_ran_for_its_own_step_failing_is_nixs_also_under_a_frame() -> None:
    # nix#6101: `nix flake lock --commit-lock-file`, git failing under the lock-file frame
    [found] = diagnose.parse_log([
        "error: program 'git' failed with exit code 1",
        "",
        "       … while updating the lock file of flake 'git+file:///home/u/cfg'"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    # the lock computation's own words under that frame stay the evaluation's
    [lock] = diagnose.parse_log([
        "error: input 'a/nixpkgs' follows a non-existent input 'b/nixpkgs'",
        "       … while updating the lock file of flake 'git+file:///home/u/cfg'"])
    assert lock.type is FailureType.EVAL


@pytest.mark.parametrize("prefix", ["", "remote: ", "{n:4d} "])
def test_a_line_announcing_its_error_takes_the_next_line_also_under_an_unlearnt_prefix(
        prefix: str) -> None:
    # nix#7947 as git's `remote: ` or a viewer's line numbers pass it on: a prefix normalising
    # cannot learn from so few lines, and the prefix alone on a blank line is no message
    text = (DATA / "fresh/heldout-26/nix-7947-insecure-prose-no-prefix.text.log").read_text()
    lines = [prefix.format(n=i + 1) + line for i, line in enumerate(text.split("\n"))]
    [found] = diagnose.parse_log(lines)
    assert found.type is FailureType.EVAL
    assert found.message.startswith("Package")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["> ", "", "       > "]),
       st.sampled_from(["ERROR: Missing Cargo.lock from src. Expected to find it at: {}",
                        "{}main.c:3:1: error: expected ';' before '}}' token",
                        "Error: cannot open {}config.json"]),
       st.sampled_from(["/build/source/", "/tmp/nix-build-foo-1.0.drv-0/source/",
                        "/private/tmp/nix-build-bar.drv-3/"]))
def test_an_error_line_about_the_build_directory_is_the_builds_own(quote: str, said: str,
                                                                   where: str) -> None:
    """A build's output whose error line names a file in the directory Nix builds in (its
    sandbox's /build, or nix-build-<name>.drv-<n> under $TMPDIR), Nix's header lost
    (omen-space#236: a text fence of the log tail), is that build failing."""
    [found] = diagnose.parse_log([f"{quote}{said.format(where)}", ""])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER), found


@pytest.mark.parametrize("said", ["meson.build:95:17: ERROR: Dependency \"libfoo-0.4\" not found",
                                  "main.c:3:1: error: expected ';' before '}' token"])
def test_an_error_line_as_nix_quotes_a_builders_is_the_builds_own(said: str) -> None:
    """heldout-312's nixpkgs#297613: the tail of Nix's block without its header, each line as
    Nix quotes a builder's (seven columns, then "> "): its error line is that build failing,
    whatever file it names; the same line quoted at the margin (a writer's) is a builder's
    verdict quoted by a writer (diagnose.BUILDERS_VERDICTS), that build failing too."""
    tail = ["> Run-time dependency zlib found: YES 1.3", "       > Run-time dependency libfoo"
            "-0.4 found: NO (tried pkgconfig)", "       >", f"       > {said}", "       >"]
    [found] = diagnose.parse_log(["```", *tail, "```"])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER), found
    # (before issue #26's general rule, 15bf94e4, this read `other`: the rule reads a builder's
    # verdict in any wrapping, a writer's markdown quote too, where nothing of Nix's is there)
    [found] = diagnose.parse_log([f"> {said}"])
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER), found
    # a wrapper's verdict after it (a CI step's, nh's) says only that the command failed: the
    # build's own line before it says what, as one after a verdict does (devenv, colmena)
    for verdict in ["##[error]Process completed with exit code 1.", "ERROR: Job failed: exit "
                    "code 1", "Error:\n   0: Failed to build configuration"]:
        [found] = diagnose.parse_log(["```", *tail, "```", *verdict.split("\n")])
        assert (found.type, found.kind, found.log_line) == (
            FailureType.BUILD, Kind.BUILDER, 5), (verdict, found)
    # a writer's quote at the margin before a CI runner's verdict: the builder's verdict it
    # quotes says what failed, the runner's only that the job did (`other` before 15bf94e4)
    [found] = diagnose.parse_log([f"> {said}", "ERROR: Job failed: exit code 1"])
    assert (found.type, found.log_line) == (FailureType.BUILD, 1), found


def test_an_error_line_not_about_a_build_directory_stays_what_it_was() -> None:
    for line in ["error: getting status of '/build/x': Permission denied",  # Nix's own
                 "error: creating directory '/tmp/nix-build-x.drv-0/': No such file or directory",
                 "ERROR: cannot open /nix/store/" + "a" * 32 + "-source/build/x",
                 "Error: Process completed with exit code 1."]:
        [found] = diagnose.parse_log([line])
        assert found.type is FailureType.OTHER, line


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["**", "__", "`", "*", "_"]), st.sampled_from(["error", "Error", "ERROR"]),
       st.sampled_from(["inside", "around", "colon"]),
       st.sampled_from(["attribute 'x' missing", "something broke", "opening lock file "
                        "'/nix/var/nix/db/big-lock': Permission denied"]),
       st.text(alphabet="abc XYZ.,", max_size=20))
def test_markdown_marks_inside_an_error_line_are_no_silent_zero(mark: str, word: str, where: str,
                                                                message: str,
                                                                before: str) -> None:
    """A page's copy puts markdown's marks inside Nix's words ("**error**: …", "`error`: …"):
    the line still says something failed."""
    said = {"inside": f"{mark}{word}{mark}: {message}", "around": f"{mark}{word}:{mark} {message}",
            "colon": f"{word} {mark}:{mark} {message}"}[where]
    found = diagnose.parse_log([f"{before} {said}".strip(), ""])
    assert found and found[0].log_line == 1
    # a warning so marked stays none
    assert diagnose.parse_log([f"{mark}warning{mark}: {word}: {message}"]) == []

H = "0" * 32


@pytest.mark.parametrize("banner", [
    "terminating due to unexpected unrecoverable internal error",
    "Assertion `x' failed. terminating due to unexpected unrecoverable internal error"])
def test_a_crash_banner_before_error_is_nixs_own_whatever_its_message_names(banner: str) -> None:
    # Determinate Nix / Nix 2.24+ dying: the message names a position in Nix's own source,
    # which is no evaluation's position (nix-src#553)
    [found] = diagnose.parse_log([
        f"{banner}: Unexpected condition in T nix::Value::getStorage() const at "
        f"/nix/store/{H}-nix-expr-dev/include/nix/expr/value.hh:1205",
        "Stack trace:", f" 0# nix::onTerminate() in /nix/store/{H}-nix/bin/nix"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    # an evaluator's message that merely says "unrecoverable" stays the evaluation's
    [evaluated] = diagnose.parse_log([
        "error: unrecoverable state", f"       at /nix/store/{H}-source/flake.nix:3:5:"])
    assert evaluated.type is FailureType.EVAL


def test_nix_crashing_is_a_failure_of_its_own_beside_an_error_block() -> None:
    # a report's crash, then the output the reporter expected (nix#13448): both are failures,
    # the crash first; a crash right before the exception it died of is that one failure
    crash = ("terminating due to unexpected unrecoverable internal error: Unexpected condition "
             "in getStorage at ../include/nix/expr/value.hh:844")
    expected = ["error:", "       … from call site", "         at «string»:1:1:", "",
                "       error: function 'anonymous lambda' called with unexpected argument 'b'"]
    found = diagnose.parse_log(["```", crash, "zsh: IOT instruction (core dumped)  nix run", "```",
                                "Expected:", "```", *expected, "```"])
    assert [(d.type, d.kind) for d in found] == [(FailureType.OTHER, Kind.NIX),
                                                 (FailureType.EVAL, Kind.ERROR)]
    assert found[0].message.startswith("terminating due to") and found[0].log_line == 2
    assert [d.type for d in diagnose.parse_log(expected)] == [FailureType.EVAL]
    # a builder's own crash in its output is its build's, not Nix's
    built = diagnose.parse_log([
        "hello> terminate called after throwing an instance of 'nix::Error'",
        f"error: builder for '/nix/store/{H}-hello-1.0.drv' failed with exit code 134"])
    drv = f"/nix/store/{H}-hello-1.0.drv"
    assert [(d.type, d.drv) for d in built] == [(FailureType.BUILD, drv)]
    # Nix's crash handler before the exception it died of: one failure
    [one] = diagnose.parse_log([
        "Nix crashed. This is a bug. Please report this at https://github.com/NixOS/nix/issues",
        "error: unexpected end-of-file", "warning: x"])
    assert one.kind is Kind.NIX


def test_a_program_dying_of_nixs_error_is_that_error() -> None:
    # a tool linking libnix (nix-inspect#23) dies of an uncaught nix::Error: C++ prints
    # "what():" and the error, here the evaluation's (so no second failure for the crash)
    [found] = diagnose.parse_log([
        "terminate called after throwing an instance of 'nix::Error'", "what():  error:",
        "… while calling the 'getFlake' builtin", "            at «string»:1:1:",
        " error: unexpected flake input attribute 'submodules', at "
        f"/nix/store/{H}-source/flake.nix:18:5"])
    assert found.type is FailureType.EVAL
    # an error of Nix's store or settings nothing finer fits (nixpkgs#429791: nix-serve in a
    # journal, a prefix kept on its lines or not): Nix's own failure, its message Nix's error
    for prefix in ("", "nix-serve-start[1100421]: "):
        [found] = diagnose.parse_log([
            f"{prefix}terminate called after throwing an instance of 'nix::Error'",
            f"{prefix}  what():  error: cannot determine user's home directory", ""])
        assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
        assert found.message == "cannot determine user's home directory"
    # the same words a program of its own prints about no exception of Nix's stay its own
    [found] = diagnose.parse_log(["terminate called after throwing an instance of "
                                  "'std::runtime_error'", "  what():  error: no home"])
    assert found.kind is Kind.ERROR


@pytest.mark.parametrize("report", [
    # Determinate Nix 3.x on macOS (nix-src#361; nix#14300 pasted it without the header)
    ["Determinate Nix crashed. This is a bug. Please report this at https://github.com/"
     "DeterminateSystems/nix-src/issues with the following information included:", "",
     "Exception: std::__1::system_error: mutex lock failed: Invalid argument", "Stack trace:"],
    ["Exception: std::__1::system_error: mutex lock failed: Invalid argument", "Stack trace:",
     " 0# nix::(anonymous namespace)::onTerminate() in /nix/store/x-nix-3.8.2/bin/nix"],
    # Lix 2.96's own header (nix-serve-ng#66), Nix 2.35's libstore exception (nix#6070)
    ["Lix crashed. This is a bug. We would appreciate if you report it along with what caused it "
     "at https://git.lix.systems/lix-project/lix/issues with the following information included:",
     "", "Exception: std::__exception_ptr::exception_ptr:", "Stack trace:"],
    ["Nix crashed. This is a bug. Please report this at https://github.com/NixOS/nix/issues with "
     "the following information included:", "",
     "Exception: nix::Unsupported: error: operation 'queryRealisation' is not supported by store "
     "'ssh://localhost'", "Stack trace:"],
])
def test_nixs_crash_report_of_any_exception_is_nixs_own_failure(report: list[str]) -> None:
    # (heldout-82/-83: the crash handler names what Nix died of by its C++ type)
    [found] = diagnose.parse_log(report)
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)
    assert found.message.startswith("Exception: ")


def test_an_error_nixs_crash_handler_says_it_died_of_is_nixs_own_failure() -> None:
    # (heldout-83 nix-src-426: Determinate Nix prints the error, then its crash report of it;
    # the header starts a line of its own, never the rest of the error's)
    [found] = diagnose.parse_log([
        "error: interrupted by the user",
        "Determinate Nix crashed. This is a bug. Please report this at https://github.com/"
        "DeterminateSystems/nix-src/issues with the following information included:", "",
        "Exception: nix::Interrupted: error: interrupted by the user", "Stack trace:",
        " 0# nix::(anonymous namespace)::onTerminate() in /nix/store/x-determinate-nix/bin/nix"])
    assert (found.type, found.kind, found.message) == (
        FailureType.OTHER, Kind.NIX, "interrupted by the user")


@pytest.mark.parametrize("indent", ["", " " * 7, "> "])
def test_a_trace_cut_above_its_frames_is_still_the_evaluators(indent: str) -> None:
    # (heldout-85 nix-16212: flake-compat#95 quoted from its first frame on, "error:" lost)
    trace = ["… while evaluating the attribute 'revCount'", "",
             "… while calling the '__forceLazyFetcherAttr' builtin", "",
             "error: '/src' is a shallow Git repository, so 'revCount' is not available"]
    [found] = diagnose.parse_log([indent + line for line in trace])
    assert (found.type, found.message) == (
        FailureType.EVAL, "'/src' is a shallow Git repository, so 'revCount' is not available")
    # the innermost frame still says what Nix was doing: a fetch is no evaluation
    [found] = diagnose.parse_log([
        indent + "… while fetching the input 'github:o/r/abc'", "",
        indent + "error: failed to extract archive (truncated gzip input)"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.DOWNLOAD)
    # cut at an error that says only where (devenv's Nix 2.21): the next error line, as deep
    # as it, is its message (heldout-34 devenv-shopware-94, dedented)
    [found] = diagnose.parse_log([indent + line if line else line for line in [
        "error: at /nix/store/" + H + "-source/modules/php.nix:39:36:",
        "   39|   package = inputs.phps.packages.${builtins.currentSystem};",
        "     |                                    ^", "",
        "error: attribute 'currentSystem' missing"]])
    assert (found.type, found.kind, found.message) == (
        FailureType.EVAL, Kind.MISSING_ATTRIBUTE,
        "attribute 'currentSystem' missing at modules/php.nix:39:36")


@pytest.mark.parametrize("indent", ["", " " * 7])
def test_a_trace_cut_down_to_its_last_position_is_still_the_evaluators(indent: str) -> None:
    # (heldout-121 l-lin blog: a copy kept a trace from its last frame's position on, the
    # code frame's indentation lost; the message is a nixpkgs throw in its own words)
    [found] = diagnose.parse_log([
        "Unfortunately, it's not working either:",
        indent + "at /nix/store/" + "a" * 32 + "-source/pkgs/stdenv/make-derivation.nix:376:7:",
        indent + "376| nativeBuildInputs = elemAt (elemAt dependencies 0) 1;",
        indent + "| ^",
        indent + "(stack trace truncated; use '--show-trace' to show the full trace)",
        "error: Python version mismatch in 'python3.12-x-0.2.3':"])
    assert found.type is FailureType.EVAL
    assert found.message.startswith("Python version mismatch in 'python3.12-x-0.2.3':")
    # a sentence that ends in a place is no position of Nix's
    [found] = diagnose.parse_log(["it broke at /home/me/x.nix:1:2: again",
                                  "error: Python version mismatch in 'python3.12-x-0.2.3':"])
    assert found.type is FailureType.OTHER


def test_another_builds_line_inside_a_cut_trace_leaves_it_the_evaluators() -> None:
    # (heldout-121 l-lin blog under test_logshape's parallel-builds wrapping: `-L` output of
    # another build between the cut trace and its message, as inside a whole trace, is where a
    # terminal interleaved them; the trace still awaits its message)
    [found] = diagnose.parse_log([
        "at /nix/store/" + "a" * 32 + "-source/pkgs/stdenv/make-derivation.nix:376:7:",
        "376| nativeBuildInputs = elemAt (elemAt dependencies 0) 1;", "| ^",
        "(stack trace truncated; use '--show-trace' to show the full trace)",
        "other-1.0> compiling 5",
        "error: Python version mismatch in 'python3.12-x-0.2.3':"])
    assert found.type is FailureType.EVAL
    # a builder's failure after them stays the builder's (as right after frames)
    [found] = diagnose.parse_log([
        "       … while evaluating derivation 'x'",
        "         at /nix/store/" + "a" * 32 + "-source/default.nix:3:5:",
        "            3|   x = 1;", "             |     ^",
        "foo> make: *** [all] Error 2",
        f"error: builder for '/nix/store/{H}-foo.drv' failed with exit code 2"])
    assert (found.type, found.exit_code) == (FailureType.BUILD, 2)


def test_a_builders_frames_are_no_trace_of_nixs_next_error() -> None:
    # a nested Nix in a build printed frames; Nix's own error after them is the build's
    [found] = diagnose.parse_log([
        "nix-tests> … while evaluating the attribute 'x'",
        f"error: builder for '/nix/store/{H}-nix-tests.drv' failed with exit code 1"])
    assert (found.type, found.exit_code) == (FailureType.BUILD, 1)


def test_an_exception_a_builder_or_a_script_prints_is_not_nixs_crash() -> None:
    # Python's own base class, unqualified: no crash of Nix's
    [found] = diagnose.parse_log(["Traceback (most recent call last):",
                                  "Exception: the test VM did not come up"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.ERROR)


def test_a_message_a_copy_wrapped_after_its_colon_is_read_as_nix_printed_it() -> None:
    # a gist broke Nix's one line before the quoted derivation (its hash elided)
    [found] = diagnose.parse_log([
        "error: fixed-output derivations must not reference store paths:",
        "  '/nix/store/...-haskell-csmt-80e41c8.drv' references 1 distinct paths,",
        f"  e.g. '/nix/store/{H}-bash-5.3p3'"])
    assert (found.type, found.kind) == (FailureType.HASH_MISMATCH, Kind.FOD_REFERENCES)
    assert found.drv == "/nix/store/...-haskell-csmt-80e41c8.drv"


def test_an_output_check_naming_its_output_is_the_culprit_of_the_dependency_failure() -> None:
    # Nix names the output an output check refused, not its derivation (nixpkgs#473559): that
    # build comes first, and the dependency failure after it says which
    out = f"/nix/store/{H}-coreboot"
    found = diagnose.parse_log([
        f"error: output '{out}' is not allowed to refer to the following paths:",
        f"         {out}",
        f"error: Cannot build '/nix/store/{H}-coreboot-toolchain-25.09.drv'.",
        "       Reason: 1 dependency failed.", "       Output paths:",
        f"         /nix/store/{H}-coreboot-toolchain-25.09"])
    assert [(d.type, d.kind) for d in found] == [(FailureType.BUILD, Kind.OUTPUT_CHECK),
                                                 (FailureType.DEPENDENCY, Kind.DEPENDENCY)]
    assert found[0].output == out and "coreboot (the output coreboot" in found[1].message


def test_a_fetcher_refusing_an_inputs_attribute_is_nixs_not_the_evaluators() -> None:
    # libfetchers on a lock file a newer Nix wrote (toolchain-nix#18, garnix issues#76): the
    # words "attribute '…'" are no evaluator's here
    for scheme in ("tarball", "Git", "GitHub"):
        [found] = diagnose.parse_log([
            f"error: unsupported {scheme} input attribute 'lastModified'",
            "       … while updating the lock file of flake 'github:o/r/0e13b65a'"])
        assert found.type is FailureType.OTHER, scheme
    # a flake's own input spec with its position stays the evaluation's
    [flake] = diagnose.parse_log([
        f"error: unexpected flake input attribute 'submodules', at /nix/store/{H}-source/"
        "flake.nix:18:5"])
    assert flake.type is FailureType.EVAL
    # a flake reference whose directory holds no flake.nix is the flake's (as its path's
    # "flake.nix does not exist")
    [none] = diagnose.parse_log(["error: could not find a flake.nix file"])
    assert none.type is FailureType.EVAL


@pytest.mark.parametrize("line", [
    "we get the error `in pure evaluation mode, 'fetchTarball' requires a 'sha256' argument`.",
    "error: in pure evaluation mode, 'fetchTarball' requires a 'sha256' argument",
    "fails with the error `access to canonical path '[path]' is forbidden in restricted mode`",
    "access to URI 'https://example.org/x.tar.gz' is forbidden in restricted mode"])
def test_the_evaluators_refusal_by_its_mode_is_an_evaluation_failure(line: str) -> None:
    # also pasted without "error:" (opam-nix#35, home-manager#3960): no silent zero
    [found] = diagnose.parse_log(["Since the update:", line])
    assert found.type is FailureType.EVAL and found.log_line == 2
    assert found.message.startswith(("in pure", "access to")) and "`" not in found.message


@pytest.mark.parametrize("line", [
    "error: Nix daemon disconnected unexpectedly (maybe it crashed?)",
    "error: cannot bind to socket at '/nix/var/nix/daemon-socket/socket': Address already in use"])
def test_the_daemon_going_away_is_nixs_own(line: str) -> None:
    [found] = diagnose.parse_log(["$ nix-shell -p hello", line])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize("line", [
    "error: executing SQLite statement 'pragma synchronous = normal': unable to open database "
    "file, unable to open database file (in '/nix/var/nix/db/db.sqlite')",
    "unexpected Nix daemon error: error: SQLite database '/nix/var/nix/db/db.sqlite' is busy"])
def test_the_stores_database_failing_is_nixs_own(line: str) -> None:
    [found] = diagnose.parse_log([line])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize("line", [
    "A definition for option `services.k3s.role' is not of type `one of \"server\", \"agent\"'.",
    "A definition for option 'module.acm.source' is not of type 'bool, int, float or str'",
    "nix build fails with `The option `wsl.extraBin.*.src' is used but not defined.`",
    "The option `x.y' was accessed but has no value defined. Try setting the option.",
    "    The option `a.b' is read-only, but it's set multiple times. Definition values:",
    "The option `fileSystems' defined in `/etc/nixos/configuration.nix' does not exist.",
    # lib/types.nix's nullOr (the option in code marks both sides), and the module system
    # before 2020 naming the value ("The option value `…' in `…' is not a list.")
    "The option `home-manager.users.m.home.file.\"/x\".text` is defined both null and not "
    "null, in `/nix/store/6zxkqbrcw5r5yi6hmk3xf17y6wqiqs0h-source/modules/misc/xdg.nix'.",
    "The option value `services.foo.port' in `/etc/nixos/configuration.nix' is not a list.",
    # (a sentence's code span holding it: the span alone is the message)
    "After the upgrade I get `The option 'services.foo' does not exist.` and nothing else"])
def test_the_module_systems_message_without_error_is_an_evaluation_failure(line: str) -> None:
    # nixpkgs' lib/modules.nix throws them; a paste without "error:" is no silent zero
    [found] = diagnose.parse_log(["I get:", "", line, "", "Any idea?"])
    assert found.type is FailureType.EVAL and found.log_line == 3
    assert found.message.startswith(("A definition", "The option"))
    assert not found.message.endswith(("and nothing else", "`"))
    # prose about an option, its name quoted as markdown quotes it, says nothing failed
    assert diagnose.parse_log(["The option `x.y` does not exist in 24.05, use `x.z`."]) == []


@pytest.mark.parametrize("opening", [[], ["### Issue description", "```nix"]])
def test_home_managers_failed_assertions_pasted_without_their_header_are_evaluation_failures(
        opening: list[str]) -> None:
    # home-manager's NixOS module lists a user's failed assertions as "- <user> profile: …"
    # under "Failed assertions:"; a paste of the list alone (home-manager#7410) opens with it
    bullets = ["- alice profile: Must have exactly one default Firefox profile but found 2",
               "- alice profile: Using 'programs.firefox.profiles.a.extensions.settings' will "
               "override all previous extensions settings.",
               "Enable 'programs.firefox.profiles.a.extensions.force' to acknowledge this."]
    [found] = diagnose.parse_log([*opening, *bullets, *(["```"] if opening else [])])
    assert (found.type, found.log_line) == (FailureType.EVAL, len(opening) + 1)
    assert "Must have exactly one" in found.message and "to acknowledge" in found.log
    # the same bullet in a markdown list of prose (after a paragraph, a heading, a closed
    # fence, another item) says nothing failed
    for before in (["Profiles I tried:"], ["## Setup", ""], ["```", "x", "```"],
                   ["- bob profile: ok"]):
        assert diagnose.parse_log([*before, "- work profile: Firefox 128, no extensions"]) == []


@pytest.mark.parametrize("opening", [["Otherwise we run into errors like:", "```"],
                                     ["~~~console", "~~~"]])
def test_any_failed_assertion_pasted_alone_at_nixs_message_indentation_is_the_evaluators(
        opening: list[str]) -> None:
    # Nix 2.4+ indents an error's message under "error: " (7 columns), the module system's
    # "Failed assertions:" list too; a paste of a NixOS assertion's bullet alone
    # (TUM-DSE/doctor-cluster-config#863, heldout-125) is the evaluator's failure, also after a
    # fence that reads as a closing one (a paste between tilde fences holding its own); a log
    # of nothing but such lines is a whole paste indented, which normalising dedents
    bullet = ["       - 25.05.20251202.cdff0c1 is an invalid value for 'system.stateVersion'; "
              'it must be in the format "YY.MM",',
              "       which corresponds to a prior release of NixOS."]
    [found] = diagnose.parse_log([*opening, *bullet, "```"])
    assert (found.type, found.log_line) == (FailureType.EVAL, len(opening) + 1)
    assert "invalid value for 'system.stateVersion'" in found.message
    assert "prior release of NixOS" in found.message
    # a bullet of a markdown or YAML list (0-4 columns), in a fence or after prose, is nobody's
    for text in ("- 25.05 is an invalid value", "    - name: build"):
        assert diagnose.parse_log(["```", text, "```"]) == []
    assert diagnose.parse_log(["Steps:", "       - run the switch"]) == []


@pytest.mark.parametrize("box", ["", "┃ ", "       "])
def test_the_module_systems_message_cut_to_its_tail_is_an_evaluation_failure(box: str) -> None:
    # lib/modules.nix ends "has conflicting definition values" with its advice and lists a
    # "not of type" error's values under "Definition values:": a copy that kept only the end of
    # the message (nom's box, expert-lsp/expert#95) still says the evaluation failed
    tail = [f"{box}Definition values:", f"{box}- In `/nix/store/{H}-source/flake.nix':",
            f"{box}    {{", f"{box}      mkExpert = <function, args: {{erlang}}>;", f"{box}    }}",
            f"{box}Use `lib.mkForce value` or `lib.mkDefault value` to change the priority on "
            "any of these definitions."]
    for lines in (tail, tail[:-1]):
        [found] = diagnose.parse_log(lines)
        assert found.type is FailureType.EVAL
    # the words in prose are no failure
    assert diagnose.parse_log(["Definition values: see the manual for mkForce."]) == []


@pytest.mark.parametrize("message", [
    f"lib.fileset.unions: Element 10 (/nix/store/{H}-source/LICENSE.md) is a path that does "
    "not exist.",
    "lib.customisation.callPackageWith: Function called without required argument \"boost173\" "
    f"at /nix/store/{H}-source/yuzu/base.nix:10",
    "lib.strings.toInt: Could not convert \"x\" to int."])
def test_a_nixpkgs_library_functions_throw_is_the_evaluations(message: str) -> None:
    # nixpkgs' lib names the function that threw ("lib.<set>.<function>: …"), framed or bare
    # (yt-dlp-web-ui#208's indented copy): the evaluation failed
    [found] = diagnose.parse_log(["       error: " + message,
                                  "           To create a file set from a path that may not "
                                  "exist, use `lib.fileset.maybeMissing`."])
    assert found.type is FailureType.EVAL


@pytest.mark.parametrize("message", [
    # nixpkgs' throws for attributes it no longer provides (pkgs/top-level/aliases.nix), in that
    # file's verbs beyond "has been removed/renamed": openconnect-sso#180's poetry2nix, and others
    "poetry2nix is now maintained out-of-tree. Please use https://github.com/nix-community/"
    "poetry2nix/",
    "cargo-embed is now part of the probe-rs package",
    "cawbird has been abandoned upstream and is broken anyways due to Twitter closing its API",
    "gometalinter was abandoned by upstream. Consider switching to golangci-lint instead",
    "alertmanager-bot is broken and has been archived by upstream",
    "jbidwatcher was discontinued in march 2021",
    "Ansible 2.13 goes end of life in 2023/11",
    "mbedtls_1_3 is end of life, see https://tls.mbed.org/kb/how-to/upgrade-2.0",
    "kbdKeymaps is not needed anymore since dvp and neo are now part of kbd"])
def test_nixpkgs_throw_for_an_attribute_it_no_longer_provides_is_the_evaluations(
        message: str) -> None:
    # printed bare, without a trace (Nix 2.4-2.12, or a copy of the message alone)
    [found] = diagnose.parse_log([f"error: {message}"])
    assert found.type is FailureType.EVAL
    # Nix's and Lix's own about their flags and operations stay theirs
    for own in ["`nix flake lock --update-input nixpkgs` has been replaced by `nix flake update "
                "nixpkgs`", "ExportPath is not supported in Lix, client usage were removed in 2017",
                "CA derivations are no longer supported"]:
        assert [d.type for d in diagnose.parse_log([f"error: {own}"])] == [FailureType.OTHER]


@pytest.mark.parametrize("cut", ["has an unfree lic", "is marked as broken", "is marked as ins",
                                 "has an invalid meta attrset:"])
def test_nixpkgs_meta_checks_refusal_cut_before_refusing_is_the_evaluations(cut: str) -> None:
    # nixpkgs before 25.05: "Package ‘…’ in <pos> has an unfree license (‘…’), refusing to
    # evaluate." (check-meta.nix); nixinate#48's copy ends inside "license"
    [found] = diagnose.parse_log([
        "building the system configuration...",
        f"error: Package ‘tetrio-desktop-8.0.0’ in /nix/store/{H}-source/pkgs/games/"
        f"tetrio-desktop/default.nix:86 {cut}"])
    assert found.type is FailureType.EVAL


@pytest.mark.parametrize("path", [
    "/home/hexa/git/nixos/master/pkgs/applications/networking/browse",
    f"/nix/store/{H}-source/pkgs/applications/networking/browsers/chromium/defau"])
def test_nixpkgs_meta_checks_refusal_cut_inside_its_path_is_the_evaluations(path: str) -> None:
    # nixpkgs PR#118246 (heldout-567): a copy of `nix-build`'s "error: Package ‘…’ in <pos> is
    # marked as …, refusing to evaluate." ending inside the position's path, the reason cut off:
    # nixpkgs' refusal all the same, after "error:" as bare (_REFUSAL_CUT)
    [found] = diagnose.parse_log(["❯ nix-build -j1 nixos/tests/chromium.nix",
                                  f"error: Package ‘chromium-beta-90.0.4430.51’ in {path}"])
    assert found.type is FailureType.EVAL
    # the 25.05+ warning with that head cut the same way decides nothing about the error after it
    [found] = diagnose.parse_log([
        f"evaluation warning: Package 'foo-1.0' in {path}",
        "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': "
        "Connection refused"])
    assert found.type is FailureType.OTHER


def test_the_meta_checks_warning_with_the_same_head_leaves_another_error_alone() -> None:
    # 25.05+ prints "Package '…' in <pos> …" as an evaluation warning: it says nothing about the
    # daemon's error after it
    [found] = diagnose.parse_log([
        f"evaluation warning: Package 'foo-1.0' in /nix/store/{H}-source/pkgs/foo/default.nix:5 "
        "is marked as insecure",
        "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': "
        "Connection refused"])
    assert found.type is FailureType.OTHER


@pytest.mark.parametrize(("field", "expected"), [("narHash", FailureType.HASH_MISMATCH),
                                               ("lastModified", FailureType.OTHER)])
def test_a_final_inputs_field_mismatch_is_a_hash_mismatch_only_for_its_nar_hash(
        field: str, expected: FailureType) -> None:
    # libfetchers' checkLocks (Nix 2.29+) of a final input: "mismatch in field '<f>' of input
    # '{…}', got '{…}'" (nix#15350, narHash of a git+lfs input)
    [found] = diagnose.parse_log([
        f"error: mismatch in field '{field}' of input '{{\"__final\":true,\"{field}\":\"a\"}}', "
        f"got '{{\"__final\":true,\"{field}\":\"b\"}}'"])
    assert found.type is expected


def test_nix_builds_recap_cut_inside_its_list_is_still_the_recap() -> None:
    # nixpkgs#378797 quotes two recaps, the second cut inside its list of derivations: no
    # error of its own beside the first, which names the builds that failed
    lines = [f"> error: build of '/nix/store/{H}-vm-test-run-a.drv', '/nix/store/{H}-vm-test-run-"
             "b.drv' failed", "", "but every run since then:", "",
             f"> error: build of '/nix/store/{H}-vm-test-run-c.drv', '/nix/store/5"]
    found = diagnose.parse_log(lines)
    assert [(d.type, d.drv) for d in found] == [
        (FailureType.BUILD, f"/nix/store/{H}-vm-test-run-a.drv")]
    # alone, the cut recap names the build it names
    [alone] = diagnose.parse_log(lines[-1:])
    assert (alone.type, alone.drv) == (FailureType.BUILD, f"/nix/store/{H}-vm-test-run-c.drv")


@pytest.mark.parametrize("advice", [
    "       You can install it anyway by allowing this package, using the",
    "    a) To temporarily allow unfree packages, you can use an environment variable"])
def test_nixpkgs_advice_after_a_refused_package_is_the_evaluations_failure(advice: str) -> None:
    # nixpkgs#320362 pasted nixos-rebuild's output from "Known issues:" on: the refusal's own
    # line lost, its advice (remediations.nix) is no silent zero
    found = diagnose.parse_log(["       Known issues:", "        - Electron version 27.3.11 is EOL",
                                "", advice, "       following methods:"])
    assert [d.type for d in found] == [FailureType.EVAL]
    assert "refused" in found[0].message


@pytest.mark.parametrize("advice", [
    ["a) For `nixos-rebuild` you can set", "  { nixpkgs.config.allowUnfree = true; }",
     "in configuration.ni"],
    ["", "a) For `nixos-rebuild` you can set",
     "  { nixpkgs.config.allowUnsupportedSystem = true; }",
     "in configuration.nix to override this.", "",
     "b) For `nix-env`, `nix-build`, `nix-shell` or any other Nix command you can add",
     "  { allowUnsupportedSystem = true; }", "to ~/.config/nixpkgs/config.nix."]])
def test_the_older_meta_checks_advice_alone_is_the_evaluations_failure(advice: list[str]) -> None:
    # nixpkgs PR#47412, PR#49806 (heldout-306): ofborg's "No attempt" logs kept only the advice
    # check-meta.nix printed before 2021 under its refusal ("a) For `nixos-rebuild` you can set
    # { nixpkgs.config.allowX = true; } in configuration.nix to override this. b) For `nix-env`,
    # … you can add"), the refusal's own line cut off above: no silent zero
    found = diagnose.parse_log(advice)
    assert [d.type for d in found] == [FailureType.EVAL]
    assert "refused" in found[0].message
    # a configuration setting the same option is no advice (a module list's inline attrset)
    assert diagnose.parse_log(["  modules = [", "    { nixpkgs.config.allowUnfree = true; }",
                               "  ];"]) == []


_OLD_ADVICE = ["a) For `nixos-rebuild` you can set", "  { nixpkgs.config.allowBroken = true; }",
               "in configuration.nix to override this.", "",
               "b) For `nix-env`, `nix-build`, `nix-shell` or any other Nix command you can add",
               "  { allowBroken = true; }", "to ~/.config/nixpkgs/config.nix."]


def test_an_error_less_refusal_above_a_builds_failure_is_the_first_failure() -> None:
    # nixpkgs PR#33835 (heldout-302): ofborg's comment holds a darwin log with only the older
    # advice (its refusal cut off above), then a linux log's builder line: the refusal came first
    found = diagnose.parse_log(["```", "", *_OLD_ADVICE, "", "```", "", "```",
                                "make: *** [Makefile:141: all] Error 2",
                                f"builder for '/nix/store/{H}-maxscale-2.1.14.drv' failed with "
                                "exit code 2"])
    assert [d.type for d in found] == [FailureType.EVAL, FailureType.BUILD]
    # ofborg's bare refusal line the same (PR#33292's, "error:" never printed)
    [refused, built] = diagnose.parse_log([
        "```", "Package ‘mgba-0.6.1’ in /x/pkgs/mgba/default.nix:34 is not supported on "
        "‘x86_64-darwin’, refusing to evaluate.", "", *_OLD_ADVICE, "```",
        f"builder for '/nix/store/{H}-mgba-0.6.1.drv' failed with exit code 2"])
    assert (refused.type, built.type) == (FailureType.EVAL, FailureType.BUILD)
    assert "mgba-0.6.1" in refused.message


def test_a_refusal_printed_whole_is_one_failure_and_its_own_line_says_it() -> None:
    # Nix before 2.4 printed the advice unindented after "error: Package …": one failure; and
    # nixpkgs#66468 (heldout-8): the frames' "error:" cut, the refusal's line under them says
    # what failed, not the advice after it
    whole = diagnose.parse_log([
        "error: Package ‘hpack-0.31.2’ in /x/hackage-packages.nix:119517 is marked as broken, "
        "refusing to evaluate.", "", *_OLD_ADVICE])
    assert [d.type for d in whole] == [FailureType.EVAL]
    [cut] = diagnose.parse_log([
        "...", "while evaluating 'handleEvalIssue' at <nixpkgs>/pkgs/stdenv/generic/check-meta"
        ".nix:146:38, called from <nixpkgs>/pkgs/stdenv/generic/check-meta.nix:251:14:",
        "Package ‘hpack-0.31.2’ in /x/hackage-packages.nix:119517 is marked as broken, refusing "
        "to evaluate.", "", *_OLD_ADVICE])
    assert cut.type is FailureType.EVAL
    assert "hpack-0.31.2" in cut.message


@pytest.mark.parametrize(("path", "expected"), [
    (f"/nix/store/{H}-source/snowfall-lib", FailureType.EVAL),
    ("/nix/var/nix/profiles/per-user/alice", FailureType.OTHER),
    (f"/nix/store/{H}-nautilus-42.0-dev", FailureType.OTHER)])
def test_a_missing_directory_inside_a_store_tree_is_one_the_evaluation_reads(
        path: str, expected: FailureType) -> None:
    # Solaar-Flake#9: a directory inside an input's source (readDir, an import); a profile's
    # directory or a store path itself stays Nix's own
    [found] = diagnose.parse_log([f"error: opening directory '{path}': No such file or directory"])
    assert found.type is expected


def test_a_full_log_pointer_on_two_lines_names_the_failed_build() -> None:
    # Nix 2.24+ prints "For full logs, run:" and the command on the next line; a copy that cut
    # the builder's "builder for"/"Cannot build" header (uv2nix#238's "...") keeps the pointer
    lines = ["...", "       >   x Failed to build `/build/source`",
             "       >       environment.", "       For full logs, run:",
             f"         nix log /nix/store/{H}-hello-world-0.1.0.drv",
             f"error: 1 dependencies of derivation '/nix/store/{H}-hello-env.drv' failed to build"]
    found = diagnose.parse_log(lines)
    built = [d for d in found if d.drv and d.drv.endswith("-hello-world-0.1.0.drv")]
    assert [(d.type, d.log_line) for d in built] == [(FailureType.BUILD, 4)]


@pytest.mark.parametrize("cut", ["", "         specified: sha256-AAAA"])
def test_a_hash_mismatch_under_a_trace_names_its_derivation(cut: str) -> None:
    # import from derivation: a fixed-output derivation built while evaluating, its hash lines
    # cut by a copy (todomvc-nix#54)
    [found] = diagnose.parse_log([
        "error:", "       … while evaluating the option `packages':", "",
        f"       error: hash mismatch in fixed-output derivation '/nix/store/{H}-src.toml.drv':",
        cut])
    assert found.type is FailureType.HASH_MISMATCH
    assert found.drv == f"/nix/store/{H}-src.toml.drv"


@pytest.mark.parametrize("joined", [True, False])
def test_nixs_pointer_to_a_full_log_names_the_failed_build_its_lines_lost(joined: bool) -> None:
    # Nix prints "For full logs, run 'nix log X'" only under X's builder failure: where a copy
    # joined the report's lines (or cut its header), X failed and the dependencies after it
    # failed for it (nixpkgs#442859)
    a, b = f"/nix/store/{H}-lib-1.0.drv", f"/nix/store/{'1' * 32}-system-path.drv"
    lines = ["> ninja: build stopped: subcommand failed.",
             f"For full logs, run 'nix log {a}'.",
             f"error: 1 dependencies of derivation '{b}' failed to build"]
    found = diagnose.parse_log([" ".join(lines)] if joined else lines)
    built = [d for d in found if d.drv == a]
    assert built and built[0].type is FailureType.BUILD
    # a builder printing the pointer names nothing: Nix's own lines only
    quoted = diagnose.parse_log([f"lib> For full logs, run 'nix log {a}'.",
                                 f"error: 1 dependencies of derivation '{b}' failed to build"])
    assert all(d.drv != a for d in quoted)
    # where Nix's failure line names the build, the pointer adds nothing
    named = diagnose.parse_log([f"error: builder for '{a}' failed with exit code 2;",
                                f"       For full logs, run 'nix log {a}'."])
    assert [(d.drv, d.exit_code) for d in named] == [(a, 2)]


@pytest.mark.parametrize("value", ["WARN SelfTest([ShellFailed { shell: Sh, output: Output {",
                                   "error value: CommandFailed(ExitStatus(1))",
                                   "BuildFailure {reason = \"x\"}"])
def test_a_failed_steps_value_printed_as_a_program_died_is_no_silent_zero(value: str) -> None:
    [found] = diagnose.parse_log([value])
    assert found.type is FailureType.OTHER


def test_a_test_summarys_failed_count_is_no_failure() -> None:
    assert diagnose.parse_log(["Passed: 10 Failed: 0", "TestsFailed: 0"]) == []


@pytest.mark.parametrize("after", ["...", "…", "[...]", 'ERROR: process "/bin/sh -c nix run" did '
                                   "not complete successfully: exit code: 1", "------"])
def test_an_elision_or_a_tools_verdict_after_an_error_is_no_part_of_its_message(after: str) -> None:
    # journalctl's "..." between records (nix#2794), BuildKit's verdict and rule (nix-installer
    # #1066): lines of their own, not the rest of Nix's unindented error line
    [found] = diagnose.parse_log(["error: interrupted by the user", after])
    assert found.message.endswith("interrupted by the user"), found.message


@pytest.mark.parametrize("quote", ["", ">", "> "])
def test_error_lines_padded_to_one_width_are_not_a_terminals_wrap(quote: str) -> None:
    # devenv pads "Reason:" into a column, so its lines fill one width as a terminal's would;
    # a quote's mark taken off leaves one blank before each (devenv#3155): four failures
    text = (DATA / "fresh/heldout-capt-2/devenv-3155-indented-cannot-build.text.log").read_text()
    found = diagnose.parse_log([f"{quote}{line}" for line in text.split("\n")])
    assert len([d for d in found if d.drv]) == 4
    assert not any("realize" in d.message for d in found)


@pytest.mark.parametrize("verdict", [
    "Command '['nix', 'build', '.#x']' returned non-zero exit status 1.",
    "┣━━━ Builds", "┗━ ∑ ⚠ Exited with 1 errors reported by nix at 12:00:00 after 3s"])
def test_a_capture_ending_on_command_not_found_before_a_wrappers_verdict(verdict: str) -> None:
    # nix-darwin#1412 under nixos-rebuild-ng or nom: the activation script died of it
    found = diagnose.parse_log(["Starting Home Manager activation",
                                "/nix/store/x-hm/activate: line 149: nix-build: command not found",
                                "", verdict])
    assert [d.type for d in found] == [FailureType.OTHER]
    assert "command not found" in found[0].message


@pytest.mark.parametrize("heading", ["┣━━━ Builds", "┣━━━ Downloads", "┃ ┣━━━ Uploads"],
                         ids=["builds", "downloads", "uploads"])
def test_noms_box_heading_continues_no_line_a_copy_cut(heading: str) -> None:
    # heldout-41's nixpkgs#253872 under nom's tree: its last line cut mid-path is no terminal's
    # wrap that the heading after it continues ("…'/nix/store/h Builds")
    found = diagnose.parse_log(["┣━ error: builder for '/nix/store/h", heading,
                                "┗━ ∑ ⚠ Exited with 1 errors reported by nix at 12:00:00 after 3s"])
    assert [d.type for d in found] == [FailureType.BUILD]
    assert "Builds" not in found[0].message


@pytest.mark.parametrize(("line", "type_", "code"), [
    ("`⚠ deno-2.3.5 failed with exit code 101 after ⏱ 21m33s in checkPhase`",
     FailureType.BUILD, 101),
    ("┃    │  ┌─ ⚠ hello-2.12 on ssh://builder failed with exit code 2 after ⏱ 3s",
     FailureType.BUILD, 2),
    ("┃ ┌─ ⚠ source failed with hash mismatch after ⏱ 1s", FailureType.HASH_MISMATCH, None),
    # heldout-200's niri-flake#1501: a sentence quotes it without the glyph
    ("but then aborts with the message `niri-25.08 failed with exit code 2 after ⏱ 11m32s in "
     "installPhase`.", FailureType.BUILD, 2),
    ('it ends with "source failed with hash mismatch after ⏱ 1s" every time',
     FailureType.HASH_MISMATCH, None),
    # heldout-399's mold#81: an older nom's table, padded with runs of spaces, timed after "⏲"
    ("┃ ⚠            valgrind-3.16.1 on ssh://builder1   failed with exit code 2 after ⏲ 00:01:03",
     FailureType.BUILD, 2)],
    ids=["in-backticks", "remote-in-tree", "hash-mismatch", "glyph-left-out-in-a-code-span",
         "glyph-left-out-double-quoted", "older-table-padded"])
def test_noms_failed_build_line_alone_is_that_builds_failure(line: str, type_: FailureType,
                                                             code: int | None) -> None:
    # heldout-74's nvf#952: nom's line for a failed build is all a copy kept of the failure
    [found] = diagnose.parse_log(["It just won't build, stopping with the error code:", line])
    assert (found.type, found.exit_code) == (type_, code)


@pytest.mark.parametrize("stand_in", ["<hash>", "...", "…", "xyz...", "w1v41…"])
def test_a_flake_source_path_with_a_stand_in_hash_is_still_a_flakes_file(stand_in: str) -> None:
    # heldout-76's hackmd nix-ux note: "getting status of '/nix/store/<hash>-source/flake.nix'"
    [found] = diagnose.parse_log([
        f"error: getting status of '/nix/store/{stand_in}-source/flake.nix': No such file or "
        "directory"])
    assert (found.type, found.kind) == (FailureType.EVAL, diagnose.Kind.UNTRACKED_FILE)


@pytest.mark.parametrize(("before", "type_"), [
    (["fatal: '/nixpkgs' does not appear to be a git repository",
      "fatal: Could not read from remote repository."], FailureType.OTHER),
    ([], FailureType.EVAL)], ids=["after-git-fatal", "alone"])
def test_a_lock_update_trace_cut_after_gits_failure_is_the_fetchs(before: list[str],
                                                                  type_: FailureType) -> None:
    # heldout-76's nix#9708: git's "fatal:" lines, then a trace cut in the lock update's frame
    [found] = diagnose.parse_log([*before, "error:",
                                  "       … while updating the lock file of flake 'git+fil"])
    assert found.type is type_
    assert ("does not appear" in found.message) is bool(before)


@pytest.mark.parametrize("path", ["/nix/store/", "/nix/store/…", "<drv>"])
def test_a_platform_refusal_with_an_elided_derivation_is_still_platform(path: str) -> None:
    # heldout-77's discourse#12062: Nix 2.4pre's box around "… is required to build
    # '/nix/store/', but I am a …", the poster having cut the derivation's path
    [found] = diagnose.parse_log([
        "error: --- Error ----------------------------------------------------- nix",
        f"a 'aarch64-linux' with features {{}} is required to build '{path}', but I am a "
        "'x86_64-linux' with features {benchmark, big-parallel, kvm, nixos-test}"])
    assert (found.type, found.drv) == (FailureType.PLATFORM, None)
    assert "aarch64-linux" in found.message


@pytest.mark.parametrize("path", ["/nix/store/...kryxd-0.2.1-env.drv", "/nix/store/…-env.drv",
                                  "<drv>"])
def test_a_cannot_build_block_with_an_elided_derivation_keeps_its_reason(path: str) -> None:
    # heldout-123's kryxd baseline report: 2.29+'s block, its indentation lost and its store
    # paths elided by the writer, read other
    [found] = diagnose.parse_log([f"error: Cannot build '{path}'.", "Reason: 1 dependency failed.",
                                  "", "Output paths:", "  /nix/store/...kryxd-0.2.1-env"])
    assert found.type is FailureType.DEPENDENCY


@pytest.mark.parametrize("line", [
    "> 'wrapGAppsHook' has been renamed to/replaced by 'wrapGAppsHook3'",
    "'wrapGAppsHook' has been renamed to/replaced by 'wrapGAppsHook3'"], ids=["quoted", "bare"])
def test_nixpkgs_alias_throw_without_error_prefix_is_an_evaluation_error(line: str) -> None:
    # heldout-77's rags#8: the alias throw quoted in a PR without "error:" was a silent zero
    [found] = diagnose.parse_log(["fixes the build error on nixos-unstable", "", line, "",
                                  "also bumps flake inputs"])
    assert found.type is FailureType.EVAL
    assert "wrapGAppsHook3" in found.message


@pytest.mark.parametrize("paragraph", [
    # heldout-77's ofborg#717: the darwin stub's throw bare in a PR's prose, wrapped by it
    ["darwin.apple_sdk_11_0 has been removed as", "it was a legacy compatibility stub; see",
     "<https://nixos.org/manual/nixpkgs/stable/#sec-darwin-legacy-frameworks> for migration"],
    ["nix_2_25 has been removed. use nix_2_28."], ["nixUnstable was dropped"],
    ["> 'foo' has been removed from nixpkgs as it was broken"],
    ["    python3Packages.bar is now maintained out-of-tree"]])
def test_a_removal_throw_without_error_opening_a_paragraph_is_an_evaluation_error(
        paragraph: list[str]) -> None:
    found = diagnose.parse_log(["Accessing it on nixpkgs-25.11 and newer fails", "",
                                *paragraph, "", "Any idea?"])
    assert [(d.type, d.message) for d in found] == [
        (FailureType.EVAL, " ".join(line.strip() for line in paragraph).removeprefix("> "))]


@pytest.mark.parametrize("prose", [
    ["It has been removed upstream, so the build fails."], ["it was removed in #1234"],
    ["The package was dropped."], ["`foo.bar` has been removed"], ["- foo_bar has been removed"],
    ["bitwarden has been removed"],  # (a plain word: a sentence's subject as well)
    # (inside a paragraph the line goes on with its sentence)
    ["Since the last release the old", "darwin.apple_sdk_11_0 has been removed as a stub"],
    # (a builder's own line)
    ["foo> config.h has been removed"]])
def test_removal_wording_in_prose_is_no_failure(prose: list[str]) -> None:
    assert diagnose.parse_log(["Some context:", "", *prose, "", "Thanks!"]) == []


def test_a_build_named_only_by_its_pointer_beside_other_builders_failures() -> None:
    # heldout-78's nixpkgs#164420: a tail cut above its builder's line, its pointer, then
    # another builder's whole report: both builds failed
    found = diagnose.parse_log([
        "       > or",
        "       For full logs, run 'nix log /nix/store/p5zr70sglisvh6yy1fz7n8zwmcxwb37h-a-1.drv'.",
        "error: builder for '/nix/store/d1yxy8jjf9pkh8l8xfkvxi6aqh7mxwrs-b-1.drv' failed with "
        "exit code 1;",
        "       last 1 log lines:",
        "       > boom",
        "       For full logs, run 'nix log /nix/store/d1yxy8jjf9pkh8l8xfkvxi6aqh7mxwrs-b-1.drv'."])
    assert sorted((d.drv or "")[-7:] for d in found if d.type is FailureType.BUILD) == [
        "a-1.drv", "b-1.drv"]


def test_an_indented_errors_message_broken_at_its_indentation_is_one_message() -> None:
    # heldout-76's nixos-anywhere#499: a markdown block indented by four, the message broken
    # mid-sentence at that indentation, then the reporter's prose; Nix's own next line is not
    # the rest of it
    found = diagnose.parse_log([
        "Then it results in", "",
        "    error: Trying to retrieve system-dependent attributes for input nixpkgs, but this",
        "    input is not a flake. Perhaps flake = false was added by",
        "    mistake.", "", "I'm on a Debian machine."])
    assert [(d.type, d.message[-31:]) for d in found] == [
        (FailureType.EVAL, "is not a flake. Perhaps flake = false was added by mistake."[-31:])]
    # (a message that ended its sentence: what follows at its indentation is not its rest)
    [ended] = diagnose.parse_log(["Then:", "", "    error: cannot connect to socket.",
                                  "    it worked yesterday", "", "Why?"])
    assert ended.message == "cannot connect to socket."


def test_nixos_rebuild_ngs_verdict_continues_no_line_a_copy_cut() -> None:
    # heldout-43's home-manager#6100 under nixos-rebuild-ng: its last line, cut mid-URL in a log
    # whose lines fill a width, is no terminal's wrap that the verdict after it continues
    text = (DATA / "fresh/heldout-43/home-manager-6100-vm-test-machine-prefix-download.text.log"
            ).read_text()
    [found] = diagnose.parse_log([*text.split("\n"), "Command '['nix', 'build', '.#x']' returned "
                                  "non-zero exit status 1."])
    assert (found.type, found.kind) == (FailureType.OTHER, diagnose.Kind.DOWNLOAD)
    assert "Command" not in found.message, found.message


def test_a_builds_own_error_under_a_wrappers_verdict_is_that_builds() -> None:
    # omen-space#236 relayed by devenv (miette) or colmena: the verdict says only that it failed
    for verdict in ["Error:   × Command `nix build` failed", "[ERROR] Failed to build host - "
                    "Last 20 lines of logs:"]:
        [found] = diagnose.parse_log([
            verdict, "  ╰─▶ > ERROR: Missing Cargo.lock from src. Expected to find it at: "
            "/build/source/Cargo.lock"])
        assert found.type is FailureType.BUILD, verdict


def test_a_nix_eval_jobs_record_after_a_prefix_is_still_its_record() -> None:
    record = ('{"attr":"pkg","attrPath":["pkg"],"error":"error: Please be informed that this '
              'pseudo-package is not the only part of\\n       Nixpkgs"}')
    for prefix in ["", "builder_1  | ", "remote: "]:
        found = diagnose.parse_log(["error: Please be informed that this pseudo-package is not "
                                    "the only part of", f"{prefix}{record}"])
        assert found[0].type is FailureType.EVAL, prefix


def test_nix_1x_user_thrown_exception_is_a_throw() -> None:
    for message in ["The unique option `time.timeZone' is defined multiple times, in `/a.nix' "
                    "and `/b.nix'.", "Multiple definitions of string. Only one is allowed."]:
        [found] = diagnose.parse_log([f"error: user-thrown exception: {message}"])
        assert (found.type, found.kind) == (FailureType.EVAL, Kind.THROW), message


@pytest.mark.parametrize("quote", [("`", "'"), ("‘", "’"), ("", "'"), ("", "")])
@pytest.mark.parametrize("word", ["collision", "collission"])
def test_a_user_environments_collision_however_quoted_is_its_builds(
        quote: tuple[str, str], word: str) -> None:
    # Nix 0.x-1.x's builder.pl ("collission between `…' and `…'"), a page that took its
    # backquotes for markdown's, home-manager's docs printing it unquoted
    o, c = quote
    [found] = diagnose.parse_log([
        f"you get an error message such as {word} between {o}/nix/store/{H}-a-1/bin/x{c} and "
        f"{o}/nix/store/{'1' * 32}-b-2/bin/x{c} at /nix/store/...-builder.pl line 62."])
    assert found.type is FailureType.BUILD


def test_a_sentence_starting_with_while_is_no_trace_frame() -> None:
    # Nix's old frames are "while <verb>ing …"; prose between two quoted errors ("while
    # previously you got:") starts a line of its own
    found = diagnose.parse_log(["error: user-thrown exception: A is set twice.",
                                "while previously you got:",
                                "error: user-thrown exception: B is set twice."])
    assert [d.message.split(": ", 1)[1] for d in found] == ["A is set twice.", "B is set twice."]


def test_a_trace_cut_while_nix_waited_for_the_build_environment_is_nixs_own() -> None:
    # Nix 2.18-2.35's frame on the error that ended the build child's setup: no evaluation
    frame = ("       … while waiting for the build environment for '/nix/store/"
             "9kc1fnxqy8ryh2bjaflf0fmzp4hyry10-hello-2.12.drv' to initialize (exit code 1, "
             "previous messages: mounting /proc)")
    [found] = diagnose.parse_log(["error:", frame])
    assert (found.type, found.kind) == (FailureType.OTHER, diagnose.Kind.NIX)


@pytest.mark.parametrize("cut", ["d", "does", "does not e"])
def test_a_message_about_a_store_trees_file_cut_in_its_next_word_reads_as_nix_worded_it(
        cut: str) -> None:
    # nix#13035 (struck through in markdown): "path '…-source/flake.nix' d" can only be the
    # evaluator's "does not exist" (the store's own wordings name a store path, never a file in it)
    path = "/nix/store/0ccnxa25whszw7mgbgyzdm4nqc0zwnm8-source/flake.nix"
    for line in (f"error: path '{path}' {cut}", f"~~error: path '{path}' {cut}"):
        [found] = diagnose.parse_log([line])
        assert (found.type, found.kind) == (FailureType.EVAL, diagnose.Kind.UNTRACKED_FILE)
        assert found.message.endswith(f"(the log is cut after '{cut}')")
    # a store path itself, another word, or a whole message: as they are
    for line in ["error: path '/nix/store/0ccnxa25whszw7mgbgyzdm4nqc0zwnm8-source' d",
                 f"error: path '{path}' i", f"error: path '{path}' dx"]:
        assert diagnose.parse_log([line])[0].type is FailureType.OTHER


@pytest.mark.parametrize("report", ["Segmentation fault (core dumped)", "Segmentation Fault: 11"])
def test_a_sentence_naming_a_crash_is_no_report_of_one(report: str) -> None:
    # (heldout-88 nix-src-216) the description names the crash before the log that reports it;
    # macOS's "Segmentation Fault: 11" is a report in its own case
    [found] = diagnose.parse_log([
        "Using `builtins.parallel` will yield a segmentation fault for some values:",
        "$ nix eval --json --eval-cores 0 .#legacyPackages.x86_64-linux", "[]", report])
    assert (found.type, found.kind, found.message) == (FailureType.OTHER, Kind.NIX, report)


@pytest.mark.parametrize("report", [
    "{ a = { a = ..... { a = zsh: segmentation fault",
    "zsh: bus error  nix repl",
    "fish: Job 1, 'nix repl' terminated by signal SIGSEGV (Address boundary error)"])
def test_an_interactive_shells_report_of_a_killed_job_is_nix_dying(report: str) -> None:
    # nix#8281: the repl's output cut by zsh's job report, then a comment quoting another
    # machine's error: Nix dying comes first (it came out as only the quoted stack overflow)
    found = diagnose.parse_log(["nix-repl> :p let a = _: { a = a a; }; in a {}", report, "```",
                                "I get", "{ a = { a = error: stack overflow (possible infinite "
                                "recursion)"])
    assert [(d.type, d.kind) for d in found] == [
        (FailureType.OTHER, diagnose.Kind.NIX), (FailureType.EVAL, diagnose.Kind.ERROR)]
    assert report.split(":")[0].split()[-1] + ":" in found[0].message
    # a builder's shell is bash: its own report stays its own (`-L`)
    assert diagnose.parse_log([f"hello> {report}"]) == []


@pytest.mark.parametrize("verdict", ["status: Failure", "Finished: FAILURE"])
def test_a_ci_systems_own_verdict_that_the_run_failed_is_no_silent_zero(verdict: str) -> None:
    # garnix's build page ("status: Failure", "No logs available": garnix-io/issues#7),
    # Jenkins' console end: nothing of Nix's in the log, the run failed all the same
    [found] = diagnose.parse_log(["package: alejandra-x86_64-apple-darwin", verdict,
                                  "No logs available"])
    assert (found.type, found.message) == (FailureType.OTHER, verdict)
    assert diagnose.parse_log(["status: Success", "Finished: SUCCESS"]) == []


def test_a_cannot_build_header_after_a_copys_opening_names_its_derivation() -> None:
    # heldout-capt-13's spindrift: Nix's header after a Go test table's "{`" (or a code span's
    # backtick, a list's bullet); its Reason lines follow as Nix printed them
    for opening in ("\t\t{`", "`", "- ", "* `"):
        [found] = diagnose.parse_log([
            f"{opening}error: Cannot build '/nix/store/{H}-base.json.drv'.",
            "       Reason: platform mismatch", "       Required system: 'aarch64-linux'",
            "       Current system: 'aarch64-darwin'`, true},"])
        assert (found.type, found.drv) == (FailureType.PLATFORM,
                                           f"/nix/store/{H}-base.json.drv"), opening
    # a line naming such a header inside other words starts no block (only the fallback's
    # line of text, read by the general reader: Nix's head with its subject, the build that
    # could not be built, its Reason left out)
    [other] = diagnose.parse_log([f"see Cannot build '/nix/store/{H}-x.drv' in the docs"])
    assert (other.type, other.drv, other.log_line) == (FailureType.BUILD,
                                                       f"/nix/store/{H}-x.drv", 1)


def test_a_builder_failure_header_after_a_copys_words_keeps_its_exit_code() -> None:
    # heldout-42's nixpkgs#333213: Nix's "error: builder for … failed with exit code 2;" in a
    # numbered list item's code span, its last lines and full-log pointer after it: one
    # failure with its exit code, not the build the pointer alone names
    drv = f"/nix/store/{H}-julia-1.10.4.drv"
    for opening in ("2. Build failed with message `", "Build failed with message: ", "- `"):
        [found] = diagnose.parse_log([
            f"{opening}error: builder for '{drv}' failed with exit code 2;",
            "       last 1 log lines:", "       > make: *** [Makefile:79: julia-deps] Error 2",
            f"       For full logs, run 'nix log {drv}'.`"])
        assert (found.type, found.drv, found.exit_code) == (FailureType.BUILD, drv, 2), opening
    # a sentence naming such a line inside other words starts no block of its own
    [other] = diagnose.parse_log([f"see error: builder for '{drv}' failed with exit code 2; "
                                  "in the docs"])
    assert other.exit_code == 2
    # nor does a builder's line Nix quotes ("  > …") after a line that ended the block (a
    # terminal's wrap ending in ":"): what a builder prints names no failure of Nix's
    attacker, victim = f"/nix/store/{H}-attacker.drv", f"/nix/store/{'v' * 32}-victim.drv"
    for forged in (f"x error: Cannot build '{victim}'.",
                   f"x error: builder for '{victim}' failed with exit code 9;"):
        failures = diagnose.parse_log([
            f"error: builder for '{attacker}' failed with exit code 1;", "       last 3 log lines:",
            "       > " + "x" * 72, "Error output:", f"       > {forged}",
            "       >   Reason: builder failed with exit code 9.",
            f"       For full logs, run 'nix log {attacker}'."])
        assert [d.drv for d in failures] == [attacker], forged


def test_nixs_words_about_a_full_disk_without_error_are_still_a_failure() -> None:
    # heldout-43's silent zeros: Nix's note after a builder's failure, alone in a markdown quote
    # (jovian#468), and the store optimiser's SysError whose "error: " a log viewer dropped
    # (nix-community/infra#1322)
    for quote in ("", "> "):
        [found] = diagnose.parse_log([
            f"{quote}note: build failure may have been caused by lack of free disk space", "",
            "I expected that."])
        assert (found.type, found.drv) == (FailureType.BUILD, None), quote
        assert found.hint is not None and "disk" in found.hint
    [found] = diagnose.parse_log([
        f"cannot link '/nix/store/.links/{'0' * 52}' to '/nix/store/{H}-source/default.nix': "
        "No space left on device"])
    assert (found.type, found.kind) == (FailureType.OTHER, diagnose.Kind.NIX)
    # a builder's own "cannot link" of other paths is no report of Nix's
    assert diagnose.parse_log(["ln: cannot link '/build/a' to '/build/b': No space left on "
                               "device"]) == []


def test_an_error_line_shallower_than_the_block_before_starts_a_failure_of_its_own() -> None:
    # heldout-capt-20's aagl-213: the paste glued its first line to a fence and indented every
    # other line by one: the second builder failure, at one space after the first's lines at
    # eight, is a failure of its own (it was read as a line of the first's block)
    def failed(name: str, indent: str) -> list[str]:
        drv = f"/nix/store/{H}-{name}.drv"
        return [f"{indent}error: builder for '{drv}' failed with exit code 1;",
                f"{indent}       last 1 log lines:", f"{indent}       > no source",
                f"{indent}       For full logs, run 'nix log {drv}'."]
    log = [*failed("cargo-1.90", ""), *failed("rust-docs-1.90", " ")]
    assert [logtext.drv_name(d.drv or "") for d in diagnose.parse_log(log)] == [
        "cargo-1.90", "rust-docs-1.90"]
    # also where the copy cut the first's quote of the builder's last lines short (1 of its 3
    # kept): the quote ends at the first line without Nix's "> ", which no builder's line lacks
    # (it was read as a quoted line, the second failure lost)
    cut = [failed("cargo-1.90", "")[0], "       last 3 log lines:", "       > no source"]
    assert [logtext.drv_name(d.drv or "")
            for d in diagnose.parse_log([*cut, *failed("rust-docs-1.90", " ")[:3]])] == [
        "cargo-1.90", "rust-docs-1.90"]
    # a trace's message stands as deep as its frames: still the trace's
    # (an import from a derivation: a frame of Nix's work, not a `throw`, whose message is the
    # flake's own text whatever it names)
    trace = ["error:", "       … while calling the 'import' builtin", "         at /x.nix:1:1:",
             "       error: builder for '/nix/store/" + H + "-ifd.drv' failed with exit code 1"]
    [found] = diagnose.parse_log(trace)
    assert found.type is FailureType.BUILD


def test_a_program_nix_runs_missing_and_a_derivation_looked_for_as_a_file_are_nixs_own() -> None:
    # heldout-capt-23's comin journals: Nix could not find the ssh it needs for its remote
    # builder (libutil's ExecutableLookupError), and `nix build` was handed a derivation's path
    # without its store directory: neither is a file an evaluation reads
    [ssh] = diagnose.parse_log(["error: Could not find executable 'ssh'"])
    assert (ssh.type, ssh.kind) == (FailureType.OTHER, Kind.NIX)
    for drv in (f"/{H}-nixos-system-x-26.05.drv", f"/{H}-nixos-system-x-26.05.drv^*"):
        [found] = diagnose.parse_log(
            [f"error: getting status of '{drv}': No such file or directory"])
        assert found.type is FailureType.OTHER, drv
    # a Nix file the evaluation looked for is still the evaluation's
    [nix_file] = diagnose.parse_log(
        ["error: getting status of '/home/u/default.nix': No such file or directory"])
    assert nix_file.type is FailureType.EVAL


def test_an_error_line_in_the_build_log_hydra_shows_is_that_builds_failure() -> None:
    # Hydra's log page (src/root/log.tt) names the derivation, then shows its own build log:
    # a compiler's error line there is that build failing, not an error of Nix's (read `other`)
    drv = "/nix/store/9kc1fnxqy8ryh2bjaflf0fmzp4hyry10-hello-2.12.1.drv"
    log = [f"Below is the build log (raw) of derivation {drv}.", "gcc -c src/hello.c",
           "src/hello.c:42:1: error: expected ';' before '}' token"]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.drv, found.log_line) == (FailureType.BUILD, drv, 3)
    # the same lines without Hydra's intro (or before it) name no derivation: the compiler's
    # verdict says a build failed, not which (`other` before issue #26's general rule, 15bf94e4)
    for lines in (log[1:], [*log[1:], f"Below is the build log of derivation {drv}."]):
        [found] = diagnose.parse_log(lines)
        assert (found.type, found.drv, found.log_line) == (FailureType.BUILD, None, 2), found


def test_the_daemons_own_log_of_a_connection_it_gave_up_is_nix_itself() -> None:
    # heldout-capt-14: Nix <= 2.3's daemon printed "error processing connection: …" without
    # "error: " into its journal; what follows is its own refusal, not the expression's
    for message in ("user 'nixbld1' is not allowed to connect to the Nix daemon",
                    "writing to file: Broken pipe"):
        [found] = diagnose.parse_log([
            f"Jun 17 15:42:59 x1 nix-daemon[6810]: error processing connection: {message}"])
        assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX), message


# Error wordings of Nix's libstore, libfetchers, libflake and command line, as the sources put
# them (tests/data/sources/wordings/README.md): each read the other way round before
@pytest.mark.parametrize(("message", "expected"), [
    # a store path missing from the store, its database, a NAR or a Git repository: the store's
    # or a fetcher's own lookup, not a file the evaluation reads
    ("path '/nix/store/5c0pz7nmqbyxvzsd0lf6sxmxwqm1bq7w-hello-2.12' does not exist in the store",
     FailureType.OTHER),
    ("path '/nix/store/5c0pz7nmqbyxvzsd0lf6sxmxwqm1bq7w-hello-2.12' does not exist in the Lix "
     "database", FailureType.OTHER),
    ("path '/nix/store/g2ysyzdx76m4z7lnmyddcwdz25lx7kn1-source' does not exist in Git repository "
     "'https://github.com/acme/infra.git'", FailureType.OTHER),
    # a fetcher's reading of an input's attributes and of a repository's history
    ("input attribute 'rev' is not a string", FailureType.OTHER),
    ("'narHash' attribute mismatch in input 'github:acme/infra', expected 'sha256-A='",
     FailureType.OTHER),
    ("'type' attribute to specify input scheme is required but not provided", FailureType.OTHER),
    ("cannot convert 'main' to a Git OID", FailureType.OTHER),
    ("Failed to retrieve the parent of Git commit 'a1bf3a613f451af7fc0a59411c56abc47fe8e8e1': "
     "object not found. This may be due to an incomplete repository history. To resolve this, "
     "either enable the shallow parameter in your flake URL (?shallow=1) or add set the shallow "
     "parameter to true in builtins.fetchGit, or fetch the complete history for this branch.",
     FailureType.OTHER),
    # the store, its garbage collector, nix.conf, a removed flag
    ("cannot add path '/nix/store/5c0pz7nmqbyxvzsd0lf6sxmxwqm1bq7w-hello-2.12' to the Nix store "
     "because it claims to be content-addressed but isn't", FailureType.OTHER),
    ("Cannot delete some of the given paths because they are still alive. Paths not deleted:",
     FailureType.OTHER),
    ("syntax error in configuration line 'max-jobs 4' in '/etc/nix/nix.conf'", FailureType.OTHER),
    ("--write-to has been removed because it was insecure and broken, please use structured "
     "output formats", FailureType.OTHER),
    # libflake: a flake reference, its flake.nix, its lock file; Git not tracking a file
    ("flake URL 'git+https://example.org/infra?dir=a' has an inconsistent 'dir' parameter",
     FailureType.EVAL),
    ("invalid flakeref 'github:'", FailureType.EVAL),
    ("'self' input attribute not allowed at /nix/store/g2ysyzdx76m4z7lnmyddcwdz25lx7kn1-source/"
     "flake.nix", FailureType.EVAL),
    ("Could not parse '/home/ci/infra/flake.lock': [json.exception.parse_error.101] parse error",
     FailureType.EVAL),
    ("path '/home/ci' is not part of a flake (neither it nor its parent directories contain a "
     "'flake.nix' file)", FailureType.EVAL),
    ("follow cycle detected: [nixpkgs/nixpkgs]", FailureType.EVAL),
    ("Path 'modules/x.nix' in the repository \"/home/ci/infra\" is not tracked by Git.",
     FailureType.EVAL),
])
def test_the_sources_wordings_of_nixs_own_parts_read_as_whose_they_are(
        message: str, expected: FailureType) -> None:
    [found] = diagnose.parse_log([f"error: {message}"])
    assert found.type == expected, found


@pytest.mark.parametrize("line", [
    # cachix#547: a Haskell binding's `show` of libstore's exception, its C++ type in a Maybe
    f'CppStdException "path \'/nix/store/{H}-libidn2-2.3.4\' is not valid" '
    '(Just "nix::InvalidPath")',
    # lazy-lsp.nvim#27: an editor's log joining "error" to Nix's SysError with a blank
    "error getting status of /nix/var/nix/daemon-socket/socket: Permission denied.",
    # nix#7704, attic#22: libstore's abort of a program that links it uninitialised
    "The program must call nix::initNix() before calling any libstore library functions.",
])
def test_nixs_error_relayed_without_its_error_prefix_is_a_failure(line: str) -> None:
    # a tool relaying Nix's words drops the "error: " Nix prints before them: still no silent
    # zero (heldout-60's three)
    found = diagnose.parse_log(["some tool's line", line, "the tool's next line"])
    assert [(d.type, d.log_line) for d in found] == [(FailureType.OTHER, 2)]


@pytest.mark.parametrize("line", [
    # heldout-122's nix-vscode-extensions#150: a PR's sentence quoting it in a code span, the
    # hash elided and the closing quote lost with it
    "This change prevents downstream consumers from hitting `path '/nix/store/...-nix-dev is "
    "not valid` during flake evaluation.",
    f"path '/nix/store/{H}-nix-dev' is not valid",
    f"> path ‘/nix/store/{H}-nix-dev’ is not valid, so the copy failed",
])
def test_the_stores_invalid_path_quoted_without_error_is_nixs_failure(line: str) -> None:
    # libstore's InvalidPath whose "error: " a copy left out: no silent zero, Nix's words alone
    found = diagnose.parse_log(["Use a proper flake input declaration.", "", line, "",
                                "Fixes #149"])
    assert [(d.type, d.kind, d.log_line) for d in found] == [(FailureType.OTHER, Kind.NIX, 3)]
    assert found[0].message.startswith("path ") and found[0].message.endswith("is not valid")


@pytest.mark.parametrize(("line", "kind", "message"), [
    # heldout-162's engineering note: Nix's remote builder failure quoted in a sentence
    ("Nix reported `failed to start SSH connection to 'aspen1.local'`. The job", Kind.NIX,
     "failed to start SSH connection to 'aspen1.local'"),
    ("then `cannot open connection to remote store 'ssh-ng://b': failed to start SSH connection"
     " to 'b'` again", Kind.NIX,
     "cannot open connection to remote store 'ssh-ng://b': failed to start SSH connection to 'b'"),
])
def test_nixs_message_in_a_sentences_code_span_without_error_is_nixs_failure(
        line: str, kind: Kind, message: str) -> None:
    # a writer quoting Nix's message in a code span, its "error: " left out: no silent zero,
    # the span alone read as Nix printed it
    [found] = diagnose.parse_log(["## Follow-up", "", line, "", "(no exit code)"])
    assert (found.type, found.kind, found.message, found.log_line) == (
        FailureType.OTHER, kind, message, 3)
    # a code span of anything else is no failure
    assert diagnose.parse_log(["run `nix build .#x` and `failed` builds go `here`"]) == []


def test_a_line_opening_with_nixs_line_in_a_code_span_ends_the_message_at_the_span() -> None:
    # heldout-117 and heldout-80: "`error: …` in the stage-tree phase." opens a list item's line,
    # the prose after the span (and the line a hard wrap joined to it) the writer's
    [found] = diagnose.parse_log([
        "   `error: Nix daemon disconnected unexpectedly (maybe it crashed?)` in the stage phase.",
        "   **THE FULL PREFIX CANNOT COMPLETE ON THIS BOX. The kernel OOM-killed nix-daemon,",
        "   and LOWER parallelism made it worse:**"])
    assert (found.type, found.kind, found.message) == (
        FailureType.OTHER, Kind.NIX, "Nix daemon disconnected unexpectedly (maybe it crashed?)")
    # and between fences, whose lines then all start with a backtick: no prefix of a tool's
    line = "`error: cannot connect to socket at '/x/socket': Connection refused`."
    for fence in ("```", "~~~"):
        [found] = diagnose.parse_log([f"{fence}console", line, fence])
        assert found.message == "cannot connect to socket at '/x/socket': Connection refused"
    # a backtick before a word inside opens NixOS' own quote: the line is read as before
    [found] = diagnose.parse_log(["`error: The option `a.b' does not exist`. Options show none."])
    assert found.type is FailureType.EVAL and found.message.startswith("The option `a.b' does")


def test_what_a_copy_cut_or_elided_of_a_platform_refusal_or_a_check_still_says() -> None:
    # heldout-164: a comment keeping the refusal cut before ", but I am a …" (the lines after it
    # joined to it as a wrapped message's are); the platform it wants is known, this machine's not
    drv = "/nix/store/" + "q" * 32 + "-nvidia-vaapi-driver-0.0.5.drv"
    [found] = diagnose.parse_log([
        f"      # error: a 'i686-linux' with features {{}} is required to build '{drv}'",
        "      #libva # vaapiVdpau should install this", "      libva-utils"])
    assert (found.type, found.kind, found.drv, found.system) == (
        FailureType.PLATFORM, Kind.PLATFORM, drv, "i686-linux")
    # --check's refusal with the store directory and hash elided ('.../name.drv'), wrapped
    [found] = diagnose.parse_log([
        "error: derivation '.../nixos-disk-image.drv' may not be deterministic: output",
        '".../nixos-disk-image" differs'])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.OUTPUT_CHECK, None)
    assert found.message.startswith("nixos-disk-image.drv is not reproducible")


def test_the_full_log_pointers_second_line_under_a_quoted_tail_names_the_failed_build() -> None:
    # heldout-164: a comment kept the builder's lines as Nix quotes them and "nix log DRV", the
    # line 2.24+ puts under "For full logs, run:", without that line
    drv = "/nix/store/" + "w" * 32 + "-vkquake-1.32.3.1.drv"
    found = diagnose.parse_log([
        "  #  > meson.build:51:14: ERROR: Program 'spirv-remap' not found or not executable",
        f"  #  nix log {drv}", "  #"])
    assert [(d.type, d.drv) for d in found] == [(FailureType.BUILD, drv)]
    # the command alone, not under a quoted line, names no failure
    assert diagnose.parse_log(["to see why, run:", f"nix log {drv}"]) == []


def test_an_evaluation_error_above_every_builds_failure_is_the_logs_first() -> None:
    # heldout-162/-164: a README or blog pasting one run's evaluation error, then a later run's
    # build failure; Nix evaluates before it builds, so the evaluation error came first
    drv = "/nix/store/" + "d" * 32 + "-healthcheck-commands.txt.drv"
    kernel = "/nix/store/" + "z" * 32 + "-nixpkgs/pkgs/os-specific/linux/kernel/generic.nix"
    found = diagnose.parse_log([
        "```bash", "error: assertion '(stdenv).isLinux' failed", "",
        f"       at {kernel}:70:1:", "", "           69|",
        "           70| assert stdenv.isLinux;", "             | ^", "```", "",
        "Now the build fails with:", "", "```",
        f"error: a 'aarch64-linux' with features {{}} is required to build '{drv}', but I am a "
        "'aarch64-darwin' with features {benchmark}", "```"])
    assert [d.type for d in found] == [FailureType.EVAL, FailureType.PLATFORM]
    # one printed after a build failed stays after it (a build's failure, then Nix's own trace)
    found = diagnose.parse_log([
        "```", f"error: a 'aarch64-linux' with features {{}} is required to build '{drv}', but "
        "I am a 'aarch64-darwin' with features {benchmark}", "```", "", "```bash",
        "error: assertion '(stdenv).isLinux' failed", "", f"       at {kernel}:70:1:", "```"])
    assert [d.type for d in found] == [FailureType.PLATFORM, FailureType.EVAL]


def test_a_path_said_to_be_not_valid_without_a_store_path_is_no_failure() -> None:
    assert diagnose.parse_log(["the path ./foo is not valid as an input here, use path:./foo"]) \
        == []


@pytest.mark.parametrize("line", [
    "Build succeeded.    0 Warning(s)    0 Error(s)",
    "using the profile /nix/var/nix/profiles/default: installing packages",
])
def test_an_error_count_or_a_state_path_alone_is_no_failure(line: str) -> None:
    assert diagnose.parse_log([line]) == []


def test_nix_develops_bash_variable_is_nixs_and_a_path_outside_the_store_is_whose_frames_say(
        ) -> None:
    # nix develop reading its shell's variables (src/nix/develop.cc): no named thing of the
    # expression "is not a string"
    [found] = diagnose.parse_log(["error: bash variable is not a string"])
    assert found.type == FailureType.OTHER
    [found] = diagnose.parse_log(["error: 'foo' is not a string"])
    assert found.type == FailureType.EVAL
    # libstore's toStorePath: Nix's own for `nix copy ./x`, the expression's under its frames
    refusal = "error: path '/home/ci/infra/result' is not in the Nix store"
    [found] = diagnose.parse_log([refusal])
    assert found.type == FailureType.OTHER
    [found] = diagnose.parse_log([
        "error:", "       … while calling the 'storePath' builtin",
        "         at /nix/store/g2ysyzdx76m4z7lnmyddcwdz25lx7kn1-source/flake.nix:12:7:", "",
        "       " + refusal])
    assert found.type == FailureType.EVAL


_RULER = "-" * 68


@pytest.mark.parametrize("reason, said", [
    # nix#12721/nix#9969: only the failed step's own line before the header says what failed
    (["Oh no, something went wrong. If you can take all the output and open",
      "an issue, we'd love to fix the problem so nobody else has this issue."],
     'Could not kickstart service "org.nixos.nix-daemon": 1: Operation not permitted'),
    # nix#4915: the script's own reason after its header, a paragraph it wrapped by hand
    # (heldout-89 nix-13874: read whole, up to the blank line after it)
    (["It seems the build group nixbld already exists, but", "with the UID 967."],
     "It seems the build group nixbld already exists, but with the UID 967."),
])
def test_nixs_install_script_giving_up_is_a_failure(reason: list[str], said: str) -> None:
    # scripts/install-multi-user.sh's "---- oh no! ----…" header, ruled to 80 columns, ends its
    # line (a terminal's wrap at 80 joins nothing to it) and says the script gave up
    lines = ["---- sudo execution " + "-" * 60, "I am executing:", "",
             "    $ sudo launchctl kickstart -k system/org.nixos.nix-daemon", "",
             "to start the nix-daemon", "",
             'Could not kickstart service "org.nixos.nix-daemon": 1: Operation not permitted', "",
             f"---- oh no! {_RULER}", *reason, "", ":(", ""]
    [found] = diagnose.parse_log(lines)
    assert (found.type, found.message) == (FailureType.OTHER, said)


# the third batch of the sources' wordings (tests/data/sources/wordings/README.md): libstore's
# checks of a derivation's attributes as it builds, Nix's command line and its startup
@pytest.mark.parametrize("message", [
    "attribute 'allowedReferences' of derivation '/nix/store/9kc1fnxqy8ryh2bjaflf0fmzp4hyry10-"
    "hello-2.12.drv' must be a list of strings",
    "attribute 'preferLocalBuild' must be a Boolean",
    "'from-url' argument must be an indirect flakeref like 'nixpkgs' or 'flake:nixpkgs'",
    "cannot convert time",
    "C++ exception handling is broken. This would appear to be a problem with the way Nix was "
    "compiled and/or linked and/or loaded.",
    "Stack size hard limit is 8388608, which is less than the desired 67108864. If possible, "
    "increase the hard limit, e.g. with 'ulimit -Hs 65536'.",
])
def test_nixs_own_checks_worded_like_the_evaluators_are_nixs(message: str) -> None:
    [found] = diagnose.parse_log([f"error: {message}"])
    assert found.type == FailureType.OTHER, found


@pytest.mark.parametrize("line", [
    "attribute 'https://github.com/well-typed/plutonomy.git' missing",
    "> undefined variable 'pkgs'",
    "**infinite recursion encountered**",
    "value is a set while a string was expected",
    "cannot coerce a function to a string",
    "syntax error, unexpected '}', expecting ';'",
    f"attribute 'ghc' missing, at /nix/store/{H}-source/shell.nix:9:5",
    # (a call's argument missing or extra, older Nix's position inside the message: nixos-
    # rocm#30)
    f"anonymous function at /nix/store/{H}-source/pkgs/rocm-opencl-runtime.nix:1:1 called "
    "without required argument 'rocm-cmake'",
    "anonymous function at /home/u/pkgs/foo.nix:1:1 called with unexpected argument 'sha256', "
    "at /home/u/default.nix:3:9",
    "`function 'mkDerivation' called with unexpected argument 'src'`"])
def test_the_evaluators_message_alone_on_its_line_is_an_evaluation_failure(line: str) -> None:
    # a reporter typing Nix's message from a screenshot (nixpkgs#219638), a tool dropping the
    # "error:" before it: the line that is wholly libexpr's message says the evaluation failed
    [found] = diagnose.parse_log(["When run `nix-shell` I have got below error", "", line])
    assert found.type is FailureType.EVAL
    # the same words inside a writer's sentence, unquoted, name the error and are none
    assert diagnose.parse_log([f"I keep seeing {line.strip('>*` ')} in the docs"]) == []


@pytest.mark.parametrize("line, message", [
    # (opening a line, whatever follows: 2.20+'s and Lix's value after the type error, an
    # indentation a relay kept, a writer's words after it)
    ("       expected a set but found null: null", "expected a set but found null: null"),
    ("cannot coerce a set to a string: { outPath = «thunk»; }",
     "cannot coerce a set to a string: { outPath = «thunk»; }"),
    ("assertion '(stdenv.isLinux)' failed", "assertion '(stdenv.isLinux)' failed"),
    ("- attribute 'nodejs-14_x' missing (after the update)",
     "attribute 'nodejs-14_x' missing (after the update)"),
    ("evaluation aborted with the following error message: 'unsupported platform'",
     "evaluation aborted with the following error message: 'unsupported platform'"),
    ("attribute 'hello' in selection path 'pkgs.hello' not found",
     "attribute 'hello' in selection path 'pkgs.hello' not found"),
    ("file 'nixpkgs' was not found in the Nix search path (add it using $NIX_PATH or -I)",
     "file 'nixpkgs' was not found in the Nix search path (add it using $NIX_PATH or -I)"),
    ("function 'anonymous lambda' called without required arguments 'lib' and 'pkgs'",
     "function 'anonymous lambda' called without required arguments 'lib' and 'pkgs'"),
    # (Nix <= 2.3's wordings with their positions, 1.x's quotes)
    ("division by zero, at /home/u/default.nix:4:8",
     "division by zero, at /home/u/default.nix:4:8"),
    ("assertion (stdenv.isLinux) failed at /home/u/default.nix:4:8",
     "assertion (stdenv.isLinux) failed at /home/u/default.nix:4:8"),
    ("attribute ‘buildInputs’ at /home/u/a.nix:9:3 already defined at /home/u/a.nix:6:3",
     "attribute 'buildInputs' at /home/u/a.nix:9:3 already defined at /home/u/a.nix:6:3"),
    ("cannot auto-call a function that has an argument without a default value ('stdenv')",
     "cannot auto-call a function that has an argument without a default value ('stdenv')"),
    # (the rest of libexpr's that name a type or a builtin, and a source tree's file missing)
    ("cannot compare a set with a set", "cannot compare a set with a set"),
    ("  'tail' called on an empty list", "'tail' called on an empty list"),
    ("stack overflow; max-call-depth exceeded", "stack overflow; max-call-depth exceeded"),
    ("expression does not evaluate to a derivation (or a set or list of those)",
     "expression does not evaluate to a derivation (or a set or list of those)"),
    (f"       path '/nix/store/{H}-source/hosts/hardware.nix' does not exist",
     f"path '/nix/store/{H}-source/hosts/hardware.nix' does not exist"),
    (f"getting status of '/nix/store/{H}-source/overlay.nix': No such file or directory",
     f"getting status of '/nix/store/{H}-source/overlay.nix': No such file or directory"),
    # (after "error:" a copy ate to its last letters)
    ("r: value is a set while a string was expected",
     "value is a set while a string was expected"),
    ("       : attribute 'x' missing", "attribute 'x' missing"),
    # (libflake's lock file and the command line's checks of a flake's outputs)
    ("flake 'git+file:///src' requires lock file changes but they're not allowed due to "
     "'--no-update-lock-file'", "flake 'git+file:///src' requires lock file changes"),
    ("input 'home-manager/nixpkgs' follows a non-existent input 'nixpkgs-unstable'",
     "input 'home-manager/nixpkgs' follows a non-existent input 'nixpkgs-unstable'"),
    ("Then `path '/home/u/src' is not part of a flake (neither it nor its parent directories "
     "contain a 'flake.nix' file)`", "path '/home/u/src' is not part of a flake"),
    ("# flake attribute 'packages.x86_64-linux.hello' is not a derivation",
     "flake attribute 'packages.x86_64-linux.hello' is not a derivation"),
    # (its first word eaten into by a copy: a terminal's selection, a viewer's left edge)
    ("ttribute 'nodejs' missing", "attribute 'nodejs' missing"),
    ("       lue is null while a set was expected", "value is null while a set was expected"),
    ("ing status of '/nix/store/" + H + "-source/a.nix': No such file or directory",
     "getting status of '/nix/store/" + H + "-source/a.nix': No such file or directory"),
    # (quoted whole in a writer's sentence: a code span, double quotes)
    ("After the update I get `attribute 'src' missing` from nix build.",
     "attribute 'src' missing"),
    ('nix-shell says "undefined variable \'pkgs\'" on 24.05', "undefined variable 'pkgs'"),
    ("Then `value is null while a set was expected`, at the same line.",
     "value is null while a set was expected"),
    ("It fails with `flake 'git+file:///src' does not provide attribute "
     "'packages.x86_64-linux.default'`", "flake 'git+file:///src' does not provide attribute "
     "'packages.x86_64-linux.default'"),
    # (a report's title, a markdown heading holding it anywhere)
    ("# nixos-rebuild: function 'mkDerivation' called without required argument 'name'",
     "function 'mkDerivation' called without required argument 'name'"),
])
def test_the_evaluators_named_message_without_error_is_an_evaluation_failure(
        line: str, message: str) -> None:
    # libexpr's and libflake's messages that name what they are about (diagnose._EVALUATOR_SAYS,
    # from Nix's and Lix's sources), "error:" lost: opening a line, quoted, a title
    [found] = diagnose.parse_log(["nix-foo · issue #12 · open · Nix", "", line, "", "Thanks"])
    # (the message as Nix printed it: 1.x's quotes made plain, as with "error:", a position it
    # names kept after it)
    assert found.type is FailureType.EVAL and found.message.startswith(message), found


@pytest.mark.parametrize("message", [
    "function 'mkDerivation' called without required arg",
    "value is a set while a str",
    "expected a set but fo",
    "assertion '(stdenv.isLinux)' fai",
    "list index 3 is out of bo",
    "file 'nixpkgs' was not found in the Ni",
    "flake 'git+file:///x' does not provide attri",
    "attempt to call something which is not a fun",
    "cannot evaluate a function that has an argument without a val",
    "the string '/nix/store/abc-bash/bin/bash' is not allowed to ref",
    "'tail' called on an empty li",
    "expression does not evaluate to a deriv",
])
def test_the_evaluators_named_message_cut_at_the_texts_end_is_the_evaluations(
        message: str) -> None:
    # a copy's end (the search tool's excerpt) cut the message after a head that is the
    # evaluator's alone (diagnose._EVAL_MESSAGE): the evaluation failed, as the whole message says
    [found] = diagnose.parse_log(["$ nix build .#default", f"error: {message}"])
    assert found.type is FailureType.EVAL, found


def test_a_reports_title_that_is_a_calls_message_with_its_position_is_evaluation() -> None:
    # an issue's title is Nix's message, "error:" dropped, as a markdown heading
    # (foo-dogsquared/nix-overlay-guix#10): the function's position says a run printed it
    title = (f"# anonymous function at /nix/store/{H}-source/pkgs/development/libraries/gnutls/"
             "default.nix:1:1 called with unexpected argument 'guile'")
    [found] = diagnose.parse_log(["foo/bar · issue #10 · closed · Nix", title, "", "me · x"])
    assert found.type is FailureType.EVAL
    assert found.message.startswith("anonymous function at /nix/store/"), found
    # a heading naming the call's argument reads alike (the name is the call's, as
    # _EVALUATOR_SAYS reads it), and one that is wholly the call's words (nixpkgs' "Function
    # called without required argument" as a report's title); a placeholder says none
    for heading in ("## anonymous function called with unexpected argument 'guile'",
                    "## anonymous function called with unexpected argument",
                    "# Function called without required argument",
                    '# Function called without required argument "boost"',
                    "# **infinite recursion encountered**"):
        [found] = diagnose.parse_log([heading])
        assert found.type is FailureType.EVAL, heading
    assert diagnose.parse_log(["## function '%1%' called with unexpected argument '%2%'"]) == []
    # with "error:" (a title as a writer put it), the call's words alone are the evaluation's
    [found] = diagnose.parse_log(["# error: Function called without required argument"])
    assert found.type is FailureType.EVAL
    # (no function's: build-remote's usage error, Nix's own)
    [found] = diagnose.parse_log(["error: called without required arguments"])
    assert found.type is FailureType.OTHER


def test_a_flake_reference_stated_as_a_relative_path_is_nixs_command_line_not_eval() -> None:
    # devbox passes Nix "nixpkgs/<rev>", which Nix stat'ed as a path under the current directory
    # (jetify-com/devbox#2765): no file of the evaluation, Nix's own
    rev = "bde09022887110deb780067364a0818e89258968"
    [found] = diagnose.parse_log([
        "Ensuring nixpkgs registry is downloaded.",
        f"error: getting status of '/my/current/path/nixpkgs/{rev}': No such file or directory",
        "Ensuring nixpkgs registry is downloaded: Fail"])
    assert found.type is FailureType.OTHER
    # a Nix file the evaluation reads stays the evaluation's
    [found] = diagnose.parse_log(
        ["error: getting status of '/tmp/test/default.nix': No such file or directory"])
    assert found.type is FailureType.EVAL


def test_a_signing_key_nix_could_not_decode_is_nixs_own_failure_not_eval() -> None:
    # nix#15106: an empty `secret-key-files` file; libutil's frame over its key check
    [found] = diagnose.parse_log([
        "error:",
        "       … while decoding key named ''",
        "",
        "       error: key is corrupt"])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


def test_a_name_nix_prefetch_url_took_from_a_url_is_its_own_failure_not_eval() -> None:
    # nix#16232: prefetch.cc's own frame over libstore's store path name check; no evaluation
    [found, _] = diagnose.parse_log([
        "$ nix-prefetch-url file://x_1.sh",
        "error:",
        "       … file name 'x_1.sh' was extracted from URL 'file://x_1.sh'",
        "",
        "       error: name 'x_1.sh' contains illegal character ''",
        "",
        "error: unable to download 'file:///x_1.sh': URL using bad/illegal format (3)"])
    assert found.type is FailureType.OTHER
    # the same name check under an evaluator's frame stays the evaluation's
    [found] = diagnose.parse_log([
        "error:",
        "       … while evaluating the attribute 'name'",
        "",
        "       error: name 'a b' contains illegal character ' '"])
    assert found.type is FailureType.EVAL


@pytest.mark.parametrize("line", [
    # nix#8727: `nix nar ls` on what `nix-store --export` wrote (libutil's archive.cc)
    "error: bad archive: input doesn't look like a Nix archive",
    "error: bad archive: expected open tag",
])
def test_nixs_archive_reader_refusing_its_input_is_nixs_own_failure(line: str) -> None:
    [found] = diagnose.parse_log(["$ nix nar ls out /", line])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


@pytest.mark.parametrize("line", [
    # comma#62: Nix creating its cache directory under a read-only store path (a SysError)
    f"error: creating directory '/nix/store/{H}-comma-with-db-1.6.0/share/cache/nix': "
    "Read-only file system",
    # nix#12343: libstore's build users group with no members (the install script's nix-env)
    "error: the build users group 'nixbld' has no members",
    # nix#15904: libstdc++'s filesystem_error from the optimiser's hard link, relayed bare
    "filesystem error: cannot create hard link: No such file or directory "
    f"[/nix/store/.links/{H}] [/nix/store/.tmp-link-1196778-845337060]",
    # nix#11134: the GC removing a path (ENOTEMPTY); nix#15858: the GC lock (EBADF)
    f"error: cannot unlink '/nix/store/{H}-steam-usr-target/share/man/man3': "
    "Directory not empty",
    "error: acquiring/releasing lock: Bad file descriptor",
    # nixpkgs#339808: the optimiser linking a store path's temporary link into .links (EEXIST)
    f"error: cannot link '/nix/store/.tmp-link-1-2' to '/nix/store/.links/{H}': File exists",
])
def test_nixs_own_system_errors_on_its_store_and_build_users_are_kind_nix(line: str) -> None:
    [found] = diagnose.parse_log(["$ nix store optimise", line])
    assert (found.type, found.kind) == (FailureType.OTHER, Kind.NIX)


def test_an_error_a_sentence_quotes_is_what_the_quote_holds() -> None:
    # (nixpkgs#339808) the sentence around an inline quote is no part of Nix's message
    [found] = diagnose.parse_log([
        "Abbreviated from the linked issue: `error: cannot link '/nix/store/.tmp-link-1' to "
        "'/nix/store/.links/2': File exists` vs above"])
    assert (found.kind, found.message) == (
        Kind.NIX, "cannot link '/nix/store/.tmp-link-1' to '/nix/store/.links/2': File exists")
    # a line that goes on to another error after the quote keeps it all (strace's cut copy)
    [found] = diagnose.parse_log([
        'write(2, "error: setting up a private moun"..., 69error: setting up a private mount '
        'namespace: Operation not permitted'])
    assert found.message.endswith("namespace: Operation not permitted")


def test_a_builders_read_only_file_system_stays_the_builds() -> None:
    [found] = diagnose.parse_log([
        f"error: builder for '/nix/store/{H}-foo.drv' failed with exit code 1;",
        "       last 1 log lines:",
        "       > mkdir: cannot create directory '/homeless-shelter': Read-only file system"])
    assert (found.type, found.drv) == (FailureType.BUILD, f"/nix/store/{H}-foo.drv")


@pytest.mark.parametrize("quoted", [
    # Nix 2.3's build hook: the remote daemon's refusal as the "builder's" last log line
    "  error: you are not privileged to build derivations",
    # 2.4+'s `> ` and newer daemons' wording; an unsigned input the remote store refused
    "       > error: you are not privileged to build input-addressed derivations",
    f"       > error: cannot add path '/nix/store/{H}-src' because it lacks a valid signature",
])
def test_a_builder_whose_whole_log_is_the_daemon_refusing_is_nixs_failure(quoted: str) -> None:
    # (ianthehenry's remote build: no builder ran; the Nix daemon that was to run it refused)
    header = f"builder for '/nix/store/{H}-foo.drv' failed with exit code 1; last %d log lines:"
    [found] = diagnose.parse_log([header % 1, quoted])
    assert (found.type, found.kind, found.drv) == (
        FailureType.OTHER, Kind.NIX, f"/nix/store/{H}-foo.drv")
    # a builder that printed its own error (and then Nix's words) is still the builder's
    [found] = diagnose.parse_log([header % 2, quoted, "       > error: could not compile `foo`"])
    assert (found.type, found.exit_code) == (FailureType.BUILD, 1)


def _run_and_junit(captured: list[str], message: list[str], drv: str) -> list[tuple[object, ...]]:
    """What `ci-nix run` (Nix's error record, read by build.BuildLog) and `ci-nix junit` (the
    captured text, and the record) say of drv's failure: (type, kind, exit code) each."""
    said = "\n".join(message)
    record = "@nix " + json.dumps({"action": "msg", "level": 0, "msg": said,
                                   "raw_msg": said.removeprefix("error: ")})
    # (as `run` gets them: the build's start, its lines, its end, then Nix's error)
    built = [line.strip().removeprefix(">").strip() for line in message if "> " in line]
    buildlog = build.BuildLog()
    for line in ["@nix " + json.dumps({"action": "start", "id": 1, "level": 3, "type": 105,
                                       "text": f"building '{drv}'", "fields": [drv, "", 1, 1]}),
                 *("@nix " + json.dumps({"action": "result", "id": 1, "type": 101,
                                         "fields": [text]}) for text in built),
                 '@nix {"action":"stop","id":1}', record]:
        buildlog.feed(line)
    run = buildlog.errors[drv].diagnosis
    assert run is not None
    return [(found.type, found.kind, found.exit_code) for found in (
        run, *(next(d for d in diagnose.parse_log(log) if d.drv == drv)
               for log in (captured, [record])))]


@pytest.mark.parametrize("nix", ["nix-2.8", "nix-2.26"])
def test_run_and_junit_read_one_quote_of_a_failed_builds_last_lines(nix: str) -> None:
    """The builder's lines Nix quotes after "last N log lines:" are decided once
    (`logshape.Line.quoted`): `run`, which reads Nix's message and no captured log, asks the
    same count (`logshape.quoted_in`), on the recorded captures of both Nix versions."""
    for case in ("builder-exit", "signal", "dependency", "fetchurl"):
        captured = (DATA / nix / f"{case}.text.log").read_text().split("\n")
        start = next(at for at, line in enumerate(captured) if line.startswith("error: builder"))
        end = next(at for at in range(start + 1, len(captured))
                   if not captured[at].startswith(" "))
        message = captured[start:end]
        assert logshape.quoted_in(message) == {
            line.origin - start for line in logshape.normalise(captured) if line.quoted}, case
        drv = diagnose.parse_log(captured)[0].drv
        assert drv is not None
        [run, *junit] = _run_and_junit(captured, message, drv)
        assert junit == [run, run], case
    # a build whose quoted lines are all the Nix daemon refusing it (a remote's refusal the
    # build hook relays as the "builder's" log) is Nix's failure, by either reading; also
    # after 2.24+'s pointer of two lines (everything after the intro was read: the pointer's
    # `nix log …` line was no refusal, so the builder was blamed)
    captured = (DATA / nix / "builder-exit.text.log").read_text().split("\n")
    quote = next(at for at, line in enumerate(captured) if "log lines:" in line)
    refused = [*captured[:quote], "       last 1 log lines:",
               "       > error: you are not privileged to build input-addressed derivations",
               *captured[quote + 3:]]
    drv = diagnose.parse_log(captured)[0].drv
    assert drv is not None
    said = _run_and_junit(refused, [line for line in refused[quote - 1:] if line], drv)
    assert said == [(FailureType.OTHER, Kind.NIX, None)] * 3, said


@pytest.mark.parametrize(("prefix", "indent", "message", "expected"), [
    # nixos-anywhere#588: terraform's box relays a configuration's `throw`, its frames cut
    ("│ ", " " * 7, "Have you forgotten to run nixos-anywhere with `--generate-hardware-config "
     "nixos-generate-config ./hardware-configuration.nix`?", FailureType.EVAL),
    ("", " " * 7, "Have you forgotten to run nixos-anywhere with `--generate-hardware-config "
     "nixos-generate-config ./hardware-configuration.nix`?", FailureType.EVAL),
    # not indented as a trace's message: Nix's own line or a bare one, as before
    ("", "", "Have you forgotten to run nixos-anywhere with `--generate-hardware-config "
     "nixos-generate-config ./hardware-configuration.nix`?", FailureType.OTHER),
    # what names Nix's own machinery stays Nix's, also under a trace's indentation
    ("", " " * 7, "cannot connect to the daemon's socket: connection refused by the store",
     FailureType.OTHER),
])
def test_a_traces_message_whose_frames_a_copy_cut_is_the_evaluations(
        prefix: str, indent: str, message: str, expected: FailureType) -> None:
    # Nix 2.13+ prints a trace's message after its frames, indented as they are; an error
    # without frames starts at the line's start (a log of that line alone loses its indentation
    # as a copy's margin)
    [found] = diagnose.parse_log([f"{prefix}$ nix build .#nixosConfigurations.web.config",
                                  f"{prefix}{indent}error: {message}", f"{prefix}",
                                  f"{prefix}State: exit status 1"])
    assert found.type == expected, found


@pytest.mark.parametrize(("frames", "expected"), [
    # divnix/digga#501: a lock file with a merge's conflict markers, as Nix reads it itself
    ([], FailureType.OTHER),
    # builtins.fromJSON: the same library's words under the evaluator's frames
    (["error:", "       … while calling the 'fromJSON' builtin",
      "         at /nix/store/" + "0" * 32 + "-source/flake.nix:3:9:", ""], FailureType.EVAL),
])
def test_the_json_librarys_syntax_error_is_no_nix_syntax_error(frames: list[str],
                                                                 expected: FailureType) -> None:
    said = ("[json.exception.parse_error.101] parse error at line 154, column 1: syntax error "
            "while parsing object key - invalid literal; last read: '\"nixlib\"<U+000A>        "
            "],<U+000A><'; expected string literal")
    lines = [*frames, f"{'       ' if frames else ''}error: {said}"]
    [found] = diagnose.parse_log(lines)
    assert found.type == expected, found


def test_a_missing_store_derivation_is_the_stores_not_the_evaluators() -> None:
    # nixpkgs#329604: `nix-collect-garbage -d` and `nix-store --optimise` opening a .drv the
    # store lost; the evaluator reads files of source trees (those stay `eval`)
    drv = f"/nix/store/{H}-webcord-vencord-4.9.1.drv"
    [found] = diagnose.parse_log([f"error: opening file '{drv}': No such file or directory"])
    assert found.type is FailureType.OTHER
    [found] = diagnose.parse_log(
        [f"error: opening file '/nix/store/{H}-source/default.nix': No such file or directory"])
    assert found.type is FailureType.EVAL


def test_a_pure_mode_search_path_refusal_without_its_code_frame_is_the_evaluations() -> None:
    # libexpr's findFile refuses "<nixgl>" in pure mode (ublue-os/fleek#195, copied without
    # its position and code frame): the evaluator's refusal, as its "in pure evaluation mode, …"
    # ones are
    [found] = diagnose.parse_log(["leads to this:", "```",
                                  "       error: cannot look up '<nixgl>' in pure evaluation mode "
                                  "(use '--impure' to override)", "```"])
    assert found.type is FailureType.EVAL


@pytest.mark.parametrize(("frame", "expected"), [
    # Arcanyx-org/NiXium#150: a trace a copy cut right after its first frame's "…"
    ("       …", FailureType.EVAL),
    # what a frame of Nix's own steps says stays Nix's, as before
    ("       … while fetching the input 'github:acme/infra'", FailureType.OTHER),
])
def test_a_frame_cut_right_after_its_ellipsis_is_still_a_frame(frame: str,
                                                               expected: FailureType) -> None:
    [found] = diagnose.parse_log(["$ nixos-rebuild build-vm --flake .#ignucius", "error:", frame])
    assert found.type == expected, found



def test_a_builders_line_after_a_line_ending_in_a_colon_does_not_end_the_error() -> None:
    """heldout-62 (a changelog page, no indentation): an error, prose ending in a colon, then
    another error line, which the colon makes the rest of the first (as in a copy that lost
    Nix's indentation: "… failed with exit code 1:" then "error: executing 'git'"); a `-L`
    line of another build between them is a terminal's interleaving, as inside a trace."""
    page = ["error: cannot find flake 'flake:bar' in the flake registries",
            "With this release, Nix no longer creates a parent override.",
            "Here's some example error output:",
            "error: Cannot delete path '/nix/store/6fcrjgfjip2ww3sx51rrmmghfsf60jvi-patchelf' "
            "because it's referenced by the GC root '/home/u/result'."]
    plain = diagnose.parse_log(page)
    interleaved = diagnose.parse_log([*page[:3], "other-1.0> compiling 3", page[3]])
    assert len(plain) == 1
    assert [(d.type, d.kind, d.message, d.log_line) for d in interleaved] == \
        [(d.type, d.kind, d.message, d.log_line) for d in plain]
    # a line of Nix's own after its error's last line ends it, `-L` lines between or not
    done = ["error: attribute 'x' missing", "other-1.0> compiling 3", "error: another one"]
    assert len(diagnose.parse_log(done)) == 2


@pytest.mark.parametrize("lines", [
    ["outPath = «error: fetcher called without `hash`»"],
    ["Without this, I get the following error:", "outPath = «error: fetcher called without hash»"],
    ["{ a = 1; b = «error: Custom failure»; }"]])
def test_the_value_printers_error_is_the_evaluators(lines: list[str]) -> None:
    # heldout-102's npins#201: Nix's value printer shows a value whose evaluation threw as
    # «error: MSG», the evaluator's failure whatever MSG says (a frameless throw reads `other`)
    [found] = diagnose.parse_log(lines)
    assert found.type is FailureType.EVAL
    assert found.message.startswith(("fetcher called without", "Custom failure"))


@pytest.mark.parametrize("entry", [
    "      - In `/nix/store/rylbwfijn3hlys53yq6gai3rvsdq4rff-source/nix/home/packages.nix':",
    "┃        - In `<unknown-file>': true"])
def test_a_module_errors_values_list_alone_is_the_evaluators(entry: str) -> None:
    # heldout-103's nixpkgs#392297: a copy kept only the values list lib/options.nix's showDefs
    # prints under the module system's message ("- In `FILE': VALUE"), a silent zero before
    [found] = diagnose.parse_log(["I came across a similar error message:", "", entry,
                                  "           {", "             CN = 1;", "           }"])
    assert found.type is FailureType.EVAL
    # a markdown list naming a file in code is no such entry
    assert diagnose.parse_log(["- In `flake.nix`: the inputs", "- In `/etc/nixos`: the host"]) == []


@pytest.mark.parametrize("line", [
    " ❌ [deploy] [ERROR] Failed to build profile system on node XYZ: Build exited with status 1",
    "🚀 ❌ [deploy] [ERROR] Failed to build profile system on node XYZ: Build exited with status 1",
    "[deploy] [ERROR] Failed to build profile system on node XYZ: Build exited with status 1"])
def test_a_deploy_tools_error_level_after_its_own_name_is_no_silent_zero(line: str) -> None:
    # deploy-rs' verdict ("🚀 ❌ [deploy] [ERROR] …", serokell/deploy-rs#398, heldout-126; a
    # copy may drop its first glyph) is a wrapper's error line: the build it ran failed
    [found] = diagnose.parse_log(["all I see is just:", "```", line, "```"])
    assert found.type is FailureType.OTHER and "Failed to build profile system" in found.message
    # its other levels, and a sentence naming the tag, say nothing failed
    for text in ("[deploy] [INFO] Evaluating flake in .",
                 "This [ERROR] tag marks deploy-rs' verdict"):
        assert diagnose.parse_log(["```", text, "```"]) == []


@pytest.mark.parametrize("tail", [
    "result ```home-manager.users.usn.gtk.catppuccin.flavor' does not exist```",
    "       services.foo.\"bar\".enable' is used but not defined."])
def test_a_module_message_cut_before_its_options_name_is_the_evaluators(tail: str) -> None:
    # lib/modules.nix quotes the option as `NAME'; a copy that cut "The option `" (and the
    # name's start) keeps a dotted name closed by that quote (catppuccin/nix#173, heldout-129)
    [found] = diagnose.parse_log(["I get:", tail])
    assert found.type is FailureType.EVAL and "' " in found.message
    # a name quoted whole, as prose quotes one, or a path in quotes, is nobody's error
    for text in ("the option `gtk.catppuccin.flavor` does not exist yet",
                 "the file 'home.nix' does not exist", "see foo.bar's docs, it does not exist"):
        assert diagnose.parse_log([text]) == []


@pytest.mark.parametrize("opening", [["I get", "```"], ["I get"], ["```console", "> nix build"]])
def test_the_module_systems_failed_assertions_header_without_error_is_the_evaluators(
        opening: list[str]) -> None:
    # NixOS' "Failed assertions:" and its bullets, pasted without the "error:" before them
    # (nix-community/nix-on-droid#342, heldout-141)
    assertions = ["Failed assertions:", "- In a flake setup, the options nixpkgs.* should not be",
                  " used. Instead, rely on the provided flake outputs"]
    [found] = diagnose.parse_log([*opening, *assertions, "```"])
    assert (found.type, found.log_line) == (FailureType.EVAL, len(opening) + 1)
    assert "In a flake setup" in found.message and "flake outputs" in found.message
    # the header with no bullet after it, or a sentence naming it, says nothing failed
    assert diagnose.parse_log(["Failed assertions:", "", "none today"]) == []
    assert diagnose.parse_log(["It printed Failed assertions: and a list", "- a"]) == []


@pytest.mark.parametrize("line", [
    " The option `boot.loader.raspberryPi' in module `/nix/store/1dwky0bis4bkl3qngsc6pmq902swa9b6"
    "-source/nixos/modules/rename.nix' would be a parent of the following options, but its type "
    "`<no description>' does not support nested options.",
    "- The option definition `services.foo.bar' in `/etc/nixos/foo.nix' no longer has any "
    "effect; please remove it.",
    # the throws about a module itself (lib/modules.nix), read from the source
    "Module `/etc/nixos/foo.nix' has an unsupported attribute `boot'. This is caused by "
    "introducing a top-level `config' or `options' attribute.",
    "Module imports can't be nested lists. Perhaps you meant to remove one level of lists?",
    "You're trying to declare a value of type `string'",
    "The module /etc/nixos/hm.nix was imported into nixos instead of homeManager."])
def test_any_module_system_throw_opening_a_line_without_error_is_the_evaluators(line: str) -> None:
    # lib/modules.nix names the option first, quoted `NAME'; a paste that lost "error:" keeps
    # that opening (NixOS/nixpkgs#398456, heldout-167)
    [found] = diagnose.parse_log(["results in the following errors:", "```", line, "```"])
    assert (found.type, found.log_line) == (FailureType.EVAL, 3)
    # mkRenamedOptionModule's warning, its "evaluation warning:" lost, says nothing failed; nor
    # does prose quoting an option as markdown does
    assert diagnose.parse_log([
        "The option `services.foo' defined in `/etc/nixos/x.nix' has been renamed to "
        "`services.bar'.",
        "The option `services.foo` would be a parent of things"]) == []


def test_a_wrappers_verdict_on_a_nix_command_alone_is_no_silent_zero() -> None:
    # nixos-rebuild-ng's CalledProcessError where the copy kept nothing of Nix's own output
    verdict = ("Command 'nix --extra-experimental-features 'nix-command flakes' build "
               "--print-out-paths '.#nixosConfigurations.\"x\".config.system.build.toplevel' "
               "--no-link' returned non-zero exit status 1.")
    [found] = diagnose.parse_log(["building the system configuration...", verdict])
    assert (found.type, found.log_line) == (FailureType.OTHER, 2)
    # with Nix's error in the log, that error is the failure, not the verdict after it
    [nix] = diagnose.parse_log(["error: attribute 'x' missing", verdict])
    assert nix.type is FailureType.EVAL and nix.log_line == 1
    # a verdict on a command not of Nix's is another tool's business
    assert diagnose.parse_log(["Command 'ls -l' returned non-zero exit status 2."]) == []


def test_a_bare_error_line_of_color_eyre_says_its_causes() -> None:
    # nh's and nix-installer's color-eyre report: "Error:" alone, then numbered causes
    # (heldout-capt-6's nh-562): the message says what failed, not "Error:"
    [found] = diagnose.parse_log(["> Copying closure to remote host 'kharon'", "Error: ",
                                  "   0: Closure validation failed on remote host 'kharon'.", "",
                                  "Location:", "   src/commands.rs:57"])
    assert found.type is FailureType.OTHER
    assert found.message == "Closure validation failed on remote host 'kharon'."


def test_an_error_line_nothing_types_over_the_evaluators_frames_is_theirs() -> None:
    # a report's title holding nixpkgs' throw, above a pasted trace cut before its message
    # (divnix/digga#383, heldout-167): the frames are that error's, the evaluator's
    lines = ["# error: brotlicffi-1.0.9.2 not supported for interpreter python2.7", "", "```",
             "       … while evaluating the option `environment.etc.dbus-1.source':", "",
             "       … while evaluating anonymous lambda", "```"]
    [found] = diagnose.parse_log(lines)
    assert (found.type, found.log_line) == (FailureType.EVAL, 1)
    assert "not supported for interpreter" in found.message
    # without frames below it (none, or only above it) a line of no known wording stays Nix's
    # own; nixpkgs' "not supported for interpreter" is the evaluator's also alone (the 20:16
    # convention: nixpkgs' own throws are `eval` with or without frames)
    unknown = ["# error: brotlicffi-1.0.9.2 cannot be used here", *lines[1:]]
    assert diagnose.parse_log(unknown[:3])[0].type is FailureType.OTHER
    assert diagnose.parse_log([*unknown[2:], "", unknown[0]])[0].type is FailureType.OTHER
    assert diagnose.parse_log(lines[:3])[0].type is FailureType.EVAL


def test_noms_error_box_whose_messages_were_cut_is_no_silent_zero() -> None:
    # heldout-104's nix-darwin#1451: nom's "┏━ 1 Errors:" box kept, after nom's "⋮", only the
    # body of an assertion; nom's heading says Nix failed, the first kept line what it said
    box = ["```", "┏━ 1 Errors: ", " ⋮ ", "┃        * `system.defaults.dock.tilesize`", "┃ ",
           "┃        To continue using these options, set `system.primaryUser` to the name", "```"]
    [found] = diagnose.parse_log(box)
    assert (found.type, found.log_line) == (FailureType.OTHER, 2)
    assert found.message == ("nix-output-monitor reported 1 error of Nix's; its box kept: "
                             "system.defaults.dock.tilesize")  # (one error: "1 Errors:" is nom's)
    # the same words without nom's box are no failure
    assert diagnose.parse_log(["1 Errors:", "* `system.defaults.dock.tilesize`"]) == []


@pytest.mark.parametrize("line", [
    "> > Cannot build '/nix/store/lghszxcp38ydvdlmcmkk7w1fsszyp7cp-swift-5.10.1.drv",
    "error: Cannot build '/nix/store/lghszxcp38ydvdlmcmkk7w1fsszyp7cp-swift-5.10.1.drv'."])
def test_a_cannot_build_line_cut_at_its_paths_end_still_names_it(line: str) -> None:
    # heldout-110's flox#4004: a reply quoting a CI failure, the line cut before its closing
    # quote; as a cut "builder for '…" line, it names the derivation whose build failed
    [found] = diagnose.parse_log([line])
    assert (found.type, found.kind, found.drv) == (
        FailureType.BUILD, Kind.BUILDER,
        "/nix/store/lghszxcp38ydvdlmcmkk7w1fsszyp7cp-swift-5.10.1.drv")


def test_a_cannot_build_without_reason_after_an_error_of_nixs_own_is_that_error() -> None:
    # heldout-113's incident report (Nix 2.34.8): the remote store could not be opened, then
    # "Cannot build '…'." with no Reason: one failure, Nix's own, for that derivation
    drv = "/nix/store/8pcxdrymg4hl191c0jr8xxdj7c4h0y7p-linux-rpi-6.18.34-stable_20260609.drv"
    store = ("error: cannot open connection to remote store 'ssh-ng://build@10.88.127.43': "
             "protocol mismatch, got 'started'")
    [found] = diagnose.parse_log([store, f"error: Cannot build '{drv}'."])
    assert (found.type, found.kind, found.drv) == (FailureType.OTHER, Kind.NIX, drv)
    assert found.message.startswith("cannot open connection to remote store")
    # with its Reason, or after an error that is not Nix's own, the build failure stands
    reasoned = diagnose.parse_log([store, f"error: Cannot build '{drv}'.",
                                   "       Reason: builder failed with exit code 2."])
    assert (reasoned[0].type, reasoned[0].drv, len(reasoned)) == (FailureType.BUILD, drv, 2)
    other = diagnose.parse_log(["error: the user's own words", f"error: Cannot build '{drv}'."])
    assert (other[0].type, other[0].drv, len(other)) == (FailureType.BUILD, drv, 2)


def test_a_bare_error_word_gives_way_to_a_failure_that_says_what() -> None:
    # heldout-153's rst notes: prose wrapped its last word onto a line of its own ("… to
    # introduce the syntax" / "error:"), above the syntax error nixos-rebuild printed
    syntax = ["  error: syntax error, unexpected ';', expecting end of file",
              "  at /nix/store/5lld1qw2m272giszwpx588fn0ml03jdw-source/configuration.nix:8:2:"]
    found = diagnose.parse_log(["Let's add a semicolon to introduce the syntax", "error:", "",
                                ".. code-block:: nix", "", *syntax])
    assert [(d.type, d.kind) for d in found] == [(FailureType.EVAL, Kind.SYNTAX)]
    # alone, the bare word is still a failure (never a silent zero)
    [alone] = diagnose.parse_log(["the log ends on", "error:"])
    assert (alone.type, alone.message) == (FailureType.OTHER, "error:")


def test_a_remote_builds_2_4pre_header_ending_its_line_reads_the_builders_failure_after() -> None:
    # heldout-177's haskell-hacknix README (Nix 2.4pre): the remote daemon's message stands on
    # the line after "… failed: error: --- Error --- nix-daemon"; the header is no reason
    drv = "/nix/store/66jc2bi1k3a6xhllq5hfaj2bsm6m3sfm-hhp-plan-to-nix-pkgs.drv"
    [found] = diagnose.parse_log([
        f"build of '{drv}' on 'ssh://remote-builder@builder-b' failed: error: --- Error --- "
        "nix-daemon",
        f"builder for '{drv}' failed with exit code 1; last 1 log lines:",
        "  Materialized nix used for hhp-plan-to-nix-pkgs is missing."])
    assert (found.type, found.drv, found.exit_code, found.remote) == (
        FailureType.BUILD, drv, 1, True)


def test_a_builders_tail_without_its_header_is_the_build_its_dependents_name() -> None:
    # heldout-177's migration record: `nix build … | tail -8` cut Nix's "error: builder for"
    # header; the builder's tail, then a dependent's line whose path the writer elided
    tail = ["       last 6 log lines:", "       > seahorse ships GSettings schemas but no "
            "wrapped binary.", "       >   Expected a .<name>-wrapped sibling in bin/."]
    found = diagnose.parse_log(
        [*tail, "error: 1 dependencies of derivation '.../gui-apps-guard.drv' failed to build"])
    assert [(d.type, d.kind) for d in found] == [
        (FailureType.BUILD, Kind.BUILDER), (FailureType.DEPENDENCY, Kind.DEPENDENCY)]
    # a dependent named in full gives way to the tail alike; a build failure named by Nix
    # keeps its place and the tail stays out
    dependent = "/nix/store/" + "a" * 32 + "-gui-apps-guard.drv"
    named = diagnose.parse_log([*tail, f"error: 1 dependencies of derivation '{dependent}' "
                                       "failed to build"])
    assert [d.type for d in named] == [FailureType.BUILD, FailureType.DEPENDENCY]
    culprit = "/nix/store/" + "b" * 32 + "-seahorse-wrapped.drv"
    builds = diagnose.parse_log([
        *tail, f"error: builder for '{culprit}' failed with exit code 1",
        f"error: 1 dependencies of derivation '{dependent}' failed to build"])
    assert [(d.type, d.drv) for d in builds][0] == (FailureType.BUILD, culprit)


def test_nix_2_3s_own_setup_failure_in_a_builds_log_is_nixs_not_the_builders() -> None:
    # heldout-178's P4 SDE README (Nix 2.3): Nix wrote "while setting up the build environment:
    # …" into the build's log before the builder ran; the builder's exit code 1 follows from it
    drv = "/nix/store/fbycbaqb8l502pdwidjhipmd6b6ym6n1-bf-reference-bsp-9.2.0.tar.drv"
    setup = "while setting up the build environment: executing 'none': No such file or directory"
    found = diagnose.parse_log([f"building '{drv}'...", setup,
                                f"builder for '{drv}' failed with exit code 1"])
    assert [(d.type, d.kind, d.drv) for d in found] == [(FailureType.OTHER, Kind.NIX, drv)]
    # a builder's own last line that only mentions the environment stays the builder's
    own = diagnose.parse_log([f"building '{drv}'...", "> setting up the build environment...",
                              f"builder for '{drv}' failed with exit code 1"])
    assert [(d.type, d.kind) for d in own] == [(FailureType.BUILD, Kind.BUILDER)]
    # another build's `-L` lines between (parallel builds) are that build's, not this one's:
    # however many, they push Nix's line out of no window of this build's log
    for others in (3, 60):
        interleaved = diagnose.parse_log([
            f"building '{drv}'...", setup,
            *(f"other-1.0> compiling {i}" for i in range(others)),
            f"builder for '{drv}' failed with exit code 1"])
        assert [(d.type, d.kind, d.drv) for d in interleaved] == [
            (FailureType.OTHER, Kind.NIX, drv)], others


def test_nix_2_2s_unframed_setup_failure_on_an_error_line_is_nixs_own() -> None:
    # Nix 2.0-2.3 printed a build's setup failure as one error line, the frame's words and the
    # reason joined by a colon ("error: while setting up the build environment: getting
    # attributes of path '': No such file or directory", Nix 2.2.1 stated): Nix preparing the
    # sandbox, as the framed 2.4+ wording and the unframed line in a build's log already read
    for why in ("getting attributes of path '': No such file or directory",
                "executing 'none': No such file or directory"):
        found = diagnose.parse_log([f"error: while setting up the build environment: {why}"])
        assert [(d.type, d.kind) for d in found] == [(FailureType.OTHER, Kind.NIX)], why


def test_an_error_line_of_a_frames_words_alone_gives_way_to_the_error_after_it() -> None:
    # heldout-178's container doc: "error: while setting up the build environment", then the
    # message on an error line of its own; the frame's words are where, not what, failed
    found = diagnose.parse_log(["error: while setting up the build environment",
                                "error: cannot set host name: Operation not permitted"])
    assert [(d.type, d.kind, d.message) for d in found] == [
        (FailureType.OTHER, Kind.NIX, "cannot set host name: Operation not permitted")]


def test_a_position_line_ending_an_error_with_its_message_takes_no_error_line_after_it() -> None:
    # Nix 2.4+ (libutil/error.cc) ends the position line with a colon, "at /path:3:5:", and
    # prints the code frame after it: a copy that left the frame out, then the next error
    # (a build's, at the margin), has two failures, not the build's alone
    drv = "/nix/store/" + "a" * 32 + "-foo-1.0.drv"
    for blank in ([], [""]):
        found = diagnose.parse_log([
            "error: undefined variable 'x'", *blank, "       at /home/u/flake.nix:3:5:",
            f"error: builder for '{drv}' failed with exit code 2"])
        assert [(d.type, d.kind, d.drv) for d in found] == [
            (FailureType.EVAL, Kind.UNDEFINED_VARIABLE, None),
            (FailureType.BUILD, Kind.BUILDER, drv)], (blank, found)
    # a trace still awaiting its message takes it after the position (a copy without indents)
    [trace] = diagnose.parse_log(["error:", "… while evaluating the attribute 'x'",
                                  "at /home/u/flake.nix:3:5:", "error: undefined variable 'y'"])
    assert (trace.type, trace.kind) == (FailureType.EVAL, Kind.UNDEFINED_VARIABLE), trace


def test_nix_2_3s_trace_has_its_message_on_the_line_after_its_last_frame() -> None:
    # heldout-179's wiki dump: Nix <= 2.3 put the first frame on the "error:" line and the
    # message, without "error:", after the frames, each frame a line ending in a colon
    found = diagnose.parse_log([
        "error: while evaluating the attribute 'buildInputs' of the derivation 'nix-shell' at "
        "/nix/store/b93cq865x6qxpn4dw9ivrk3yjcsm8r97-nixos-19.09/pkgs/build-support/mkshell/"
        "default.nix:28:3:",
        "while evaluating 'getOutput' at /nix/store/b93cq865x6qxpn4dw9ivrk3yjcsm8r97-nixos-19.09/"
        "lib/attrsets.nix:464:23, called from undefined position:",
        "program 'git' failed with exit code 128"])
    assert [(d.type, d.kind) for d in found] == [(FailureType.OTHER, Kind.NIX)]
    assert found[0].message.startswith("program 'git' failed with exit code 128")
    # cut before its message: still only its trace
    cut = diagnose.parse_log([
        "error: while evaluating 'getOutput' at /nix/store/b93cq865x6qxpn4dw9ivrk3yjcsm8r97-"
        "nixos-19.09/lib/attrsets.nix:464:23, called from undefined position:",
        "while evaluating 'flip' a"])
    assert [d.type for d in cut] == [FailureType.EVAL]


def test_a_writers_elision_right_after_a_bare_error_is_no_message() -> None:
    # heldout-189's nixpkgs#342717: Nix's bare "error:" (its message comes after the trace),
    # the writer's "..." for lines left out, then nom's error box with one evaluator frame
    boxed = diagnose.parse_log([
        "error:", "...", "┏━ 1 Errors: ", " ⋮ ",
        "┃        … while evaluating the option `home-manager.users.u.programs.waybar.style"])
    assert [d.type for d in boxed] == [FailureType.EVAL]
    [framed] = diagnose.parse_log([
        "error:", "…", "       … while evaluating the option `services.x.style'"])
    assert framed.type is FailureType.EVAL and "…" != framed.message != "..."
    assert "services.x.style" in framed.message


def test_a_writers_elision_lines_inside_a_trace_keep_it_whole() -> None:
    # heldout-179's NUR notes: "..." lines put for frames left out of a 2.4+ trace; the trace
    # goes on to its message
    found = diagnose.parse_log([
        "error:",
        "       … while evaluating the attribute 'buildInputs' of the derivation 'x-1.0'",
        "",
        "...",
        "",
        "       … while calling 'node_modules'",
        "",
        "...",
        "",
        "       error: path '/nix/store/683zi3g8a2qd490lyvgrbz94yccmsbkb-source.drv' is not valid"])
    assert [(d.type, d.kind, d.message) for d in found] == [
        (FailureType.OTHER, Kind.NIX,
         "path '/nix/store/683zi3g8a2qd490lyvgrbz94yccmsbkb-source.drv' is not valid")]


@pytest.mark.parametrize("message", [
    # heldout-190's purs-nix#64 (Nix 2.2x, the trace truncated before any fetching frame)
    "Cannot find Git revision '53410dd57e9b350d6c233f48f7aa46317c4faa21' in ref "
    "'refs/heads/master' of repository 'https://example.org/x.git'! Please make sure that the "
    "rev exists on the ref you've specified or add allRefs = true; to fetchGit.",
    "Failed to fetch git repository 'https://example.org/x.git'",
    "resolving Git reference 'refs/heads/main': reference not found",
    "No commits returned by GitLab API -- does the git ref really exist?",
    "in 'https://example.org/x.git', couldn't find ref 'v1'",  # Lix
])
def test_the_git_fetchers_own_failure_decides_over_the_evaluators_frames(message: str) -> None:
    trace = [
        "error:",
        "       … while calling the 'derivationStrict' builtin",
        "",
        "         at /builtin/derivation.nix:9:12: (source not available)",
        "",
        "       … while evaluating attribute 'nativeBuildInputs' of derivation 'nix-shell'",
        "",
        "       (stack trace truncated; use '--show-trace' to show the full trace)",
        "",
        f"       error: {message}"]
    assert [d.type for d in diagnose.parse_log(trace)] == [FailureType.OTHER]
    # a file the evaluation reads, named inside the fetched tree, stays the evaluation's
    [looked_up] = diagnose.parse_log([*trace[:-1], "       error: looking up file "
                                      "'«git+https://example.org/x»/src/a.c': object not found"])
    assert looked_up.type is FailureType.EVAL


def test_a_markdown_quote_glued_to_a_ci_timestamp_is_the_copys() -> None:
    # nixd#53 (heldout-316): a paste of a CI's timestamped lines whose first line a markdown
    # quote's ">" was glued to, no blank between (never Nix's quote of a builder's line)
    [found] = diagnose.parse_log([
        f">2023-06-02T08:04:05.4886792Z error: builder for '/nix/store/{H}-nixd-0.0.1.drv' "
        "failed with exit code 1;",
        "2023-06-02T08:04:05.4893892Z        last 10 log lines:",
        "2023-06-02T08:04:05.4934995Z        > ninja: build stopped: subcommand failed.",
        f"2023-06-02T08:04:05.4935446Z        For full logs, run 'nix log /nix/store/{H}-nixd"])
    assert (found.type, found.drv, found.exit_code) == (
        FailureType.BUILD, f"/nix/store/{H}-nixd-0.0.1.drv", 1)


def test_gits_remote_prefix_is_a_transports_even_under_much_prose() -> None:
    # nixpkgs#130932 (heldout-316): a push-to-deploy hook's Nix output relayed by git, "remote: "
    # before each line, in an issue with more of the writer's lines than of the hook's Nix
    # reads itself (its quoted builder's lines teach no prefix): the header was not read
    sample = (Path(__file__).parent / "data/fresh/heldout-316"
              / "nixpkgs-130932-prometheus-remote-prefixed-go-test-fail.text.log")
    found = diagnose.parse_log(sample.read_text().splitlines())
    assert [(d.type, d.exit_code) for d in found] == [(FailureType.BUILD, 1)]
    assert found[0].drv is not None and found[0].drv.endswith("-prometheus-2.27.1.drv")


def test_a_code_span_holding_a_build_recap_in_a_sentence_is_that_build() -> None:
    # neuron#504 (heldout-317): "this error: `build of '…' failed` when running `…`": the span
    # holds Nix's recap whole, the sentence around it is the writer's
    [found] = diagnose.parse_log([
        f"I'm getting this error: `build of '/nix/store/{H}-neuron-1.9.1.5.drv' failed` when "
        "running `nix-env -if https://example.org/master.tar.gz`. It looks like x isn't "
        "compiling."])
    assert (found.type, found.drv) == (FailureType.BUILD, f"/nix/store/{H}-neuron-1.9.1.5.drv")


# the general reader of Nix's words (issue #26): Nix's heads anywhere in a line, as a copy
# damaged them, read as Nix printed them (each line a log of its own; the old reader found
# nothing in most, or only the line as `other`)
_READ_DRV = f"/nix/store/{H}-foo-1.0.drv"


@pytest.mark.parametrize(("line", "expected"), [
    # a header's first letters eaten, at a line's start or after a writer's words
    (f"ilder for '{_READ_DRV}' failed with exit code 1;", (FailureType.BUILD, _READ_DRV, 1)),
    (f"the log says: uilder for '{_READ_DRV}' failed with exit code 3",
     (FailureType.BUILD, _READ_DRV, 3)),
    (f"annot build '{_READ_DRV}'.", (FailureType.BUILD, _READ_DRV, None)),
    (f"it says Cannot build '{_READ_DRV}'. and stops", (FailureType.BUILD, _READ_DRV, None)),
    (f"ash mismatch in fixed-output derivation '{_READ_DRV}':",
     (FailureType.HASH_MISMATCH, _READ_DRV, None)),
    # inside a writer's sentence, a table cell, a list item: no "error:" before them
    (f"nix says 1 dependencies of derivation '{_READ_DRV}' failed to build",
     (FailureType.DEPENDENCY, _READ_DRV, None)),
    (f"| x86_64 | a 'aarch64-linux' with features {{}} is required to build '{_READ_DRV}', but "
     "I am a 'x86_64-linux' with features {} |", (FailureType.PLATFORM, _READ_DRV, None)),
    (f"then build of '{_READ_DRV}' failed and it stops", (FailureType.BUILD, _READ_DRV, None)),
    ("I get Package ‘foo-1.0’ in /x/default.nix:5 is not available on the requested "
     "hostPlatform:", (FailureType.EVAL, None, None)),
    # Nix's "error:" eaten into, the evaluator's message after it
    ("rror: undefined variable 'pkgs'", (FailureType.EVAL, None, None)),
    ("> ror: attribute 'x' missing", (FailureType.EVAL, None, None)),
])
def test_nixs_words_anywhere_in_a_line_are_read_as_nix_printed_them(
        line: str, expected: tuple[FailureType, str | None, int | None]) -> None:
    [found] = diagnose.parse_log(["Some context.", "", line, "", "Thanks!"])
    assert (found.type, found.drv, found.exit_code) == expected, found
    assert found.log_line == 3 and (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR)


@pytest.mark.parametrize("line", [
    # the same words with no subject a run printed (a manual's, a writer's explanation, Nix's
    # own format strings) stay no failure of their own
    "Nix says `dependencies of derivation` when a build of a dependency fails first.",
    "the build of a derivation can fail; Nix then prints which one failed",
    "will crash with an `infinite recursion encountered` error message.",
    "I keep seeing undefined variable 'pkgs' in the docs",
    "        \"%d dependencies of derivation '%s' failed to build\",",
    "a mirror of the old build of nixpkgs (rebuild of '/nix/store' done)",
])
def test_nixs_words_without_their_subject_are_no_failure(line: str) -> None:
    assert diagnose.parse_log(["Some context.", "", line, "", "Thanks!"]) == []


_READ_DEPENDENT = f"/nix/store/{'b' * 32}-bar-1.0.drv"


@pytest.mark.parametrize("head", [
    # a writer's sentence around the header (its trailing words ending in ":" took Nix's next
    # line in), a header eaten into over its builder's last lines, a 2.29+ header in a list item
    # with its Reason under it
    [f"The build fails, I get builder for '{_READ_DRV}' failed with exit code 2 when running "
     "nix build:"],
    [f"ilder for '{_READ_DRV}' failed with exit code 2;", "       last 1 log lines:",
     "       > make: *** [all] Error 2", f"       For full logs, run 'nix log {_READ_DRV}'."],
    [f"- it says Cannot build '{_READ_DRV}'. when I run it",
     "  Reason: builder failed with exit code 2."],
])
def test_nixs_words_in_a_writers_line_open_the_error_block_they_head(head: list[str]) -> None:
    # what Nix printed under them is theirs, and the build they name is the culprit its
    # dependents' lines after them name
    found = diagnose.parse_log(
        [*head, f"error: 1 dependencies of derivation '{_READ_DEPENDENT}' failed to build"])
    assert [(d.type, d.drv, d.exit_code) for d in found] == [
        (FailureType.BUILD, _READ_DRV, 2), (FailureType.DEPENDENCY, _READ_DEPENDENT, 2)]


@pytest.mark.parametrize("line", [
    # a store path a transcription damaged (".dru"), a writer's stand-in, an elision: Nix's
    # exit code is stated all the same (measure_diagnosis compares it where a label states it)
    f"error: builder for '/nix/store/{H}-foo-1.0.dru' failed with exit code 2",
    "I see builder for '/nix/store/foo-1.0.drv' failed with exit code 2 here",
    "error: builder for ...-foo-1.0.drv failed with exit code 2",
])
def test_a_builder_line_naming_no_derivation_keeps_its_exit_code(line: str) -> None:
    [found] = diagnose.parse_log([line])
    # (logshape mends ".dru" back to ".drv": that derivation is named again)
    drv = _READ_DRV if ".dru" in line else None
    assert (found.type, found.drv, found.exit_code) == (FailureType.BUILD, drv, 2), found


@pytest.mark.parametrize(("text", "expected"), [
    # a dependent's line whose path a copy damaged: its quotes lost (the derivation still one),
    # a space a recognition put in its hash (logshape mends it: named), a hash one character
    # short (none named)
    (f"error: 1 dependencies of derivation {_READ_DRV}' failed to build",
     (FailureType.DEPENDENCY, _READ_DRV, None)),
    (f"error: 1 dependencies of derivation '/nix/store/{H[:12]} {H[12:]}-foo-1.0.drv' failed to "
     "build", (FailureType.DEPENDENCY, _READ_DRV, None)),
    (f"error: 1 dependencies of derivation '/nix/store/{H[1:]}-etc.drv' failed to build",
     (FailureType.DEPENDENCY, None, None)),
    # 2.29+'s Reason eaten into by a copy, before one of Nix's reasons
    ("eason: builder failed with exit code 2.", (FailureType.BUILD, None, 2)),
])
def test_a_damaged_dependency_line_or_eaten_reason_is_read_as_nix_printed_it(
        text: str, expected: tuple[FailureType, str | None, int | None]) -> None:
    [found] = diagnose.parse_log([text])
    assert (found.type, found.drv, found.exit_code) == expected, found


def test_a_red_nixs_own_case_names_the_line_holding_nixs_words_mid_line() -> None:
    # `ci-nix run`: Nix exited non-zero with every attribute built; its own case says why with
    # the line the reader finds Nix's words in (before: the log's last line, "done")
    line = f"nix says 1 dependencies of derivation '{_READ_DRV}' failed to build"
    assert build._best_error_line(["copying path x", line, "done"]) == (line, None)


@pytest.mark.parametrize("lines", [
    # a writer's line a hard wrap broke inside Nix's words: the head at its end, or its subject
    ["When I run nix build I get builder for",
     f"'{_READ_DRV}' failed with exit code 1 and then it stops."],
    [f"When I run nix build I get builder for '{_READ_DRV}'",
     "failed with exit code 1 and then it stops."],
])
def test_nixs_words_a_hard_wrap_broke_in_a_writers_line_are_read_on(lines: list[str]) -> None:
    [found] = diagnose.parse_log(lines)
    assert (found.type, found.drv, found.exit_code, found.log_line) == (
        FailureType.BUILD, _READ_DRV, 1, 1)


_READ_OUT = f"/nix/store/{H}-foo-1.0"


@pytest.mark.parametrize(("line", "expected"), [
    # Nix's other messages about a store path it names, in a writer's sentence (no "error:")
    (f"it says some substitutes for the outputs of derivation '{_READ_DRV}' failed (usually "
     "happens due to networking issues)", (FailureType.OTHER, Kind.SUBSTITUTION)),
    (f"then path '{_READ_OUT}' is required, but there is no substituter that can build it",
     (FailureType.OTHER, Kind.SUBSTITUTION)),
    (f"I get derivation '{_READ_DRV}' may not be deterministic: output '{_READ_OUT}' differs",
     (FailureType.BUILD, Kind.OUTPUT_CHECK)),
    (f"and output '{_READ_OUT}' is not allowed to refer to the following paths:",
     (FailureType.BUILD, Kind.OUTPUT_CHECK)),
])
def test_nixs_messages_about_a_store_path_in_a_writers_line_are_read(
        line: str, expected: tuple[FailureType, Kind]) -> None:
    [found] = diagnose.parse_log(["Some context.", "", line])
    assert (found.type, found.kind, found.log_line) == (*expected, 3), found


_TARBALL = f"/nix/store/{H}-mpc-1.0.1.tar.gz"
_TARBALL_DRV = f"/nix/store/{'a' * 32}-mpc-1.0.1.tar.gz.drv"
_DEPENDENT = f"/nix/store/{'d' * 32}-gcc-4.9.drv"


@pytest.mark.parametrize("lines", [
    # Nix 1.x's fixed-output check (to 1.11), named by the output path, its derivation in the plan
    ["these derivations will be built:", f"  {_TARBALL_DRV}", f"  {_DEPENDENT}",
     f"building path(s) ‘{_TARBALL}’",
     f"output path ‘{_TARBALL}’ should have r:sha256 hash ‘{'0' * 52}’, instead has ‘{'1' * 52}’",
     f"cannot build derivation ‘{_DEPENDENT}’: 1 dependencies couldn't be built",
     f"error: build of ‘{_DEPENDENT}’ failed"],
    # glued to the end of the builder's last line (no newline before it)
    ["these derivations will be built:", f"  {_TARBALL_DRV}", f"  {_DEPENDENT}",
     f'{{"name":"mpc"}}output path ‘{_TARBALL}’ should have sha256 hash ‘{"0" * 52}’, '
     f"instead has ‘{'1' * 52}’",
     f"cannot build derivation ‘{_DEPENDENT}’: 1 dependencies couldn't be built"],
    # 1.12pre's wording
    ["these derivations will be built:", f"  {_TARBALL_DRV}",
     f"output path ‘{_TARBALL}’ has sha256 hash ‘{'1' * 52}’ when ‘{'0' * 52}’ was expected"],
])
def test_nix_1x_hash_mismatch_of_an_output_path_is_its_derivations(lines: list[str]) -> None:
    found = diagnose.parse_log(lines)
    [mismatch] = [d for d in found if d.type is FailureType.HASH_MISMATCH]
    assert (mismatch.drv, mismatch.got) == (_TARBALL_DRV, f"sha256:{'1' * 52}"), found


@pytest.mark.parametrize("line", [
    # nixpkgs#177508 (heldout-370): Nix's quoted builder lines in a fence, their indentation lost
    f"> /nix/store/{H}-lua/src/ngx_http_lua_common.h:27:10: fatal error: pcre.h: No such file or "
    "directory",
    "> src/main.c:12:5: error: implicit declaration of function 'foo'",
])
def test_a_compilers_error_behind_a_quote_mark_is_the_builds(line: str) -> None:
    [found] = diagnose.parse_log(["fails with:", "", "```", line, ">    27 | #include <pcre.h>",
                                  "> compilation terminated.", "```"])
    assert (found.type, found.kind, found.log_line) == (FailureType.BUILD, Kind.BUILDER, 4), found
    # outside a fence, "> " at the margin is a writer's markdown quote (heldout-312's rule): of
    # a compiler's error, the builder's verdict quoted, a build failing all the same where
    # nothing of Nix's is there (issue #26's general rule, 15bf94e4; `other` before)
    [found] = diagnose.parse_log(["fails with:", "", line])
    assert (found.type, found.kind, found.log_line) == (FailureType.BUILD, Kind.BUILDER, 3)


def test_nix_1x_hash_mismatch_in_a_store_outside_nix_store_is_read() -> None:
    store = "/home/james/nix/store"
    [first, *_] = diagnose.parse_log([
        f"> output path ‘{store}/{H}-mpc-1.0.1.tar.gz’ should have sha1 hash ‘{'0' * 32}’, "
        f"instead has ‘{'1' * 32}’",
        f"> cannot build derivation ‘{store}/{H}-mpc-1.0.1.drv’: 1 dependencies couldn't be built"])
    assert (first.type, first.got) == (FailureType.HASH_MISMATCH, f"sha1:{'1' * 32}"), first


def test_nixs_error_glued_after_a_progress_line_onto_a_trace_is_read() -> None:
    # heldout-325's cardano-explorer-278: a code span holding a whole run on one line, a
    # haskell.nix trace first, then "building '…drv'..." and Nix's own error: before, no failure
    # (the line starts as a trace), so nothing at all
    line = ("`trace: Using index-state: 2020-01-31T00:00:00Z for proxy "
            f"building '{_READ_DRV}'... error: moving build output '{_READ_OUT}' from "
            "the sandbox to the Nix store: Permission denied`")
    [found] = diagnose.parse_log(["When I build I get:", "", line])
    assert (found.type, found.kind, found.log_line) == (FailureType.OTHER, Kind.NIX, 3), found
    assert found.message.startswith("moving build output"), found


def test_a_warnings_own_error_after_no_progress_line_stays_no_failure() -> None:
    # a retried download's warning holds an "error:" of its own, after no progress line of Nix's
    assert diagnose.parse_log([
        "warning: error: unable to download 'https://cache.example/x.narinfo': HTTP error 500; "
        "retrying in 256 ms"]) == []


@pytest.mark.parametrize(("message", "expected"), [
    # heldout-324's obelisk-197: Nix 2.0's frames without their "error: " head, then Nix's own
    # message (before: eval, "the log holds only its trace", the message unread)
    ("unexpected EOF reading a line", (FailureType.OTHER, Kind.NIX)),
    # an evaluator's message under them stays evaluation, read as the message it is
    ("undefined variable 'foo'", (FailureType.EVAL, Kind.UNDEFINED_VARIABLE)),
    # a `throw`'s text under them: the evaluator's frames decide (its words are no one's)
    ("Unsupported system: aarch64-darwin", (FailureType.EVAL, Kind.ERROR)),
])
def test_a_message_under_old_frames_without_their_head_decides(
        message: str, expected: tuple[FailureType, Kind]) -> None:
    frames = ["while evaluating 'callPackageWithScope' at /nix/store/"
              f"{H}-source/make-package-set.nix:74:37, called from /nix/store/{H}-source/x.nix:"
              "97:8:",
              f"while evaluating 'drvScope' at /nix/store/{H}-source/make-package-set.nix:87:18, "
              f"called from /nix/store/{H}-source/lib/customisation.nix:74:12:"]
    [found] = diagnose.parse_log(["```", *frames, message, "```"])
    assert (found.type, found.kind) == expected, found
    # the same trace with its "error: " head reads alike (Nix <= 2.3 put the head before the
    # first frame; before, its frames made any message the evaluator's)
    [headed] = diagnose.parse_log(["```", f"error: {frames[0]}", *frames[1:], message, "```"])
    assert (headed.type, headed.kind) == expected, headed


@pytest.mark.parametrize("lines", [
    # a thread's later turn keeping only the builder's lines Nix quoted, its report above the
    # excerpt (one line of them, or many)
    ["[turn 0 by someone, continued]", "```log", "n=/build/src/target/release/build/out` "
     "(exit status: 101)", "       > warning: build failed, waiting for other jobs to finish..."],
    ["```console", "       > Running phase: buildPhase", "       > ninja: Entering directory "
     "`/build/source/build'", "       > FAILED: kernel_all.c", "       >", "```"],
])
def test_nixs_quoted_builder_lines_alone_are_a_failed_build(lines: list[str]) -> None:
    [found] = diagnose.parse_log(lines)
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, None), found


@pytest.mark.parametrize("lines", [
    ["> a markdown quote of someone's words", "> over two lines"],  # (no Nix indentation)
    ["  > indented a little: a list item's quote"],
])
def test_a_markdown_quote_is_no_quoted_builder_line(lines: list[str]) -> None:
    assert diagnose.parse_log(lines) == []

def test_nix_2_3s_unprefixed_substitution_failure_is_the_culprit_of_its_dependents() -> None:
    # Nix 2.0-2.3 printed a substitution goal's failure without "error: " (SubstitutionGoal's
    # printError(e.what())) after its "copying path … from …" line; the derivations needing the
    # path then fail as dependents ("cannot build derivation …: 1 dependencies couldn't be
    # built"): the substitution is what failed, first
    h, h2 = "a" * 32, "b" * 32
    dependents = [f"cannot build derivation '/nix/store/{h2}-bar-1.0.drv': 1 dependencies "
                  "couldn't be built", f"error: build of '/nix/store/{h2}-bar-1.0.drv' failed"]
    for failure in ("bad archive: input doesn't look like a Nix archive",
                    "error 9 while decompressing xz file"):
        for between in ([], [f"warning: unable to download 'https://cache.example.org/nar/{h}"
                             ".nar.xz': HTTP error 200; retrying in 265 ms"]):
            found = diagnose.parse_log([
                f"copying path '/nix/store/{h}-foo-1.0' from 'https://cache.example.org'...",
                *between, failure, *dependents])
            assert [(d.type, d.kind) for d in found[:2]] == [
                (FailureType.OTHER, Kind.SUBSTITUTION), (FailureType.DEPENDENCY,
                                                         Kind.DEPENDENCY)], (failure, between)
            assert failure in found[0].message
        # without a path being copied before it, the line is nobody's: the dependents stand
        alone = diagnose.parse_log([f"building '/nix/store/{h}-foo-1.0.drv'...", failure,
                                    *dependents])
        assert alone[0].type is not FailureType.OTHER or alone[0].kind is not Kind.SUBSTITUTION


def test_a_builder_line_cut_above_its_path_keeps_its_exit_code_over_the_log_tail() -> None:
    # Nix 2.4+'s "error: builder for '/nix/store/…-x.drv' failed with exit code 1;" then "last
    # N log lines:": a copy (an excerpt's "…", a relay that cut the line's head) left only the
    # line's end, "…cert-3.98.drv' failed with exit code 1;", over the builder's quoted tail:
    # the build failed with that exit code, whichever derivation it was
    for end in ("/nix/store/4…cert-3.98.drv' failed with exit code 1;",
                "cert-3.98.drv' failed with exit code 1;"):
        found = diagnose.parse_log([f"/nix/store/{'a' * 32}-nix.conf.drv", end,
                                    "last 10 log lines:", "> Traceback (most recent call last):",
                                    ">   File \"/nix/st"])
        assert [(d.type, d.kind, d.exit_code) for d in found[:1]] == [
            (FailureType.BUILD, Kind.BUILDER, 1)], end
    # a line over the tail that says no exit code leaves it unknown
    plain = diagnose.parse_log(["some output", "last 10 log lines:", "> boom"])
    assert [d.exit_code for d in plain[:1]] == [None]



def test_an_alias_throw_in_the_present_tense_is_nixpkgs_evaluated() -> None:
    # aliases.nix's "is deprecated, please use … instead", no frame (Nix 2.4-2.12, a CI's line)
    [found] = diagnose.parse_log(["In the CI:",
                                  "`error: fcitx-engines is deprecated, please use fcitx5 "
                                  "instead.`"])
    assert found.type is FailureType.EVAL, found


_HIDDEN_TRACE = "(use '--show-trace' to show detailed location information)"


@pytest.mark.parametrize(("message", "expected"), [
    # an expression's throw, its frames hidden behind 2.3-2.12's hint
    ("Missing suitable source/wheel file entry for pyside2", FailureType.EVAL),
    # a fetcher's own failure under the evaluator, and Nix's own sentence: not the expression's
    ("failed to extract archive (truncated gzip input)", FailureType.OTHER),
    ("Build failed.", FailureType.OTHER),
])
def test_a_message_under_the_trace_hint_opening_as_a_writer_does_is_evaluated(
        message: str, expected: FailureType) -> None:
    [found] = diagnose.parse_log(["$ pynixify numpy", f"error: {message}", _HIDDEN_TRACE,
                                  "Traceback (most recent call last):"])
    assert found.type is expected, found
    # (without the hint nothing says the evaluator was there)
    [alone] = diagnose.parse_log([f"error: {message}"])
    assert alone.type is FailureType.OTHER, alone


def test_a_packages_unsupported_system_throw_is_evaluated_with_or_without_the_hint() -> None:
    # nixpkgs' binary packages choosing their source by system (`throw "Unsupported system:
    # ${system}"`): its words are no message of Nix's, so also alone (the 20:16 convention)
    for message in ("Unsupported system", "Unsupported system: aarch64-darwin",
                    "unsupported platform x86_64-darwin", "Unsupported architecture"):
        for lines in ([f"error: {message}", _HIDDEN_TRACE], [f"error: {message}"]):
            [found] = diagnose.parse_log(lines)
            assert found.type is FailureType.EVAL, (lines, found)
    # (not a message that only starts so, a tool's own about its argument)
    [other] = diagnose.parse_log(["error: unsupported platform-specific flag --foo given"])
    assert other.type is FailureType.OTHER, other


@pytest.mark.parametrize("message", [
    # nixpkgs' python and lua package sets refusing a package for the interpreter (`disabled`)
    "cqueues not supported for interpreter lua",
    "brotlicffi-1.0.9.2 not supported for interpreter python2.7",
    # an alias naming the attribute to use instead (python-aliases.nix)
    "Please use pkgs.mailman",
    "Please use pkgs.mailmanPackages.hyperkitty",
    # the rest of aliases.nix's verbs, the message opening with the attribute it names
    "ankisyncd is dead, use anki-sync-server instead",
    "apacheKafka_2_8 through _3_6 have been removed from nixpkgs as outdated",
    "fish-foreign-env has been replaced with fishPlugins.foreign-env",
    "azureus is now known as vuze and the version in nixpkgs was really outdated",
    "'lxappearance' has been moved to top-level. Use 'lxappearance' directly",
    "maple-mono-NF had been moved to maple-mono.NF.",
    "mono-SC-NF had been superseded by maple-mono.NF-CN.",
    "quagga is no longer maintained upstream",
    # nixpkgs' lib (asserts.nix, trivial.nix, modules.nix, systems/parse.nix) and fetchurl
    'sslLibrary must be one of [ "openssl" "bearssl" ], but is: "libressl"',
    "color variants: bright, black unexpected; valid ones: standard, light, dark",
    "‘mkIf’ called with a non-Boolean condition",
    "Target specification with 3 components is ambiguous",
    "system string has invalid number of hyphen-separated components",
    "fetchurl requires a hash for fixed-output derivation: https://example.org/x-1.0.tar.gz",
    # nixpkgs' builders refusing their arguments (go/module.nix, build-rust-package)
    "buildGoModule: vendorHash is missing",
    "buildGoModule: Expect vendorHash instead of vendorSha256",
    "cargoSha256, cargoHash, cargoVendorDir, or cargoLock must be set",
    "either `vendorHash` or `vendorSha256` is required",
    "`goPackagePath` is not needed with `buildGoModule`",
    "fetchFromGitHub requires one of either `rev` or `tag` to be provided (not both).",
    # callPackageWith's abort words without their position (a wrapper cut the line)
    'Function called without required argument "PCSC"',
    # the OCaml and Coq package sets refusing a package for the compiler's version
    "dune 3 is not available for OCaml 4.05.0",
    "bignums is not available for Coq 8.4",
    # a package's throwSystem naming the system as Nix spells one
    "envoy-bin is not available for x86_64-darwin.",
])
def test_nixpkgs_own_throws_without_frames_are_evaluation_errors(message: str) -> None:
    [found] = diagnose.parse_log(["$ nix-build -A knot-resolver", f"error: {message}"])
    assert found.type is FailureType.EVAL, found


@pytest.mark.parametrize("line", [
    # a writer quoting one of nixpkgs' throws in a sentence's code span or double quotes, Nix's
    # "error:" left out (the shapes of tests/data/sources/wordings/nixpkgs-*)
    "When I rebuild I get `fcitx-engines is deprecated, please use fcitx5 instead.` and stop",
    'it says "fcitx-engines is deprecated, please use fcitx5 instead."',
    "Building knot-resolver fails with `cqueues not supported for interpreter lua` on 23.05",
    "`aesop has been removed from nixpkgs, as it was unmaintained.` after the update",
    "The step fails: `Please use pkgs.mailman`",
    'It errors with "Unsupported system: aarch64-darwin" on my M1',
    "fails with `lib.customisation.callPackageWith: Function called without required argument "
    '"boost" at /nix/store/…/a.nix:3`',
    # ... or alone on its line
    "cqueues not supported for interpreter lua",
    "> Please use pkgs.mailman",
    'sslLibrary must be one of [ "openssl" "bearssl" ], but is: "libressl"',
    "- color variants: bright unexpected; valid ones: standard, light, dark",
    "Neither nixpkgs.hostPlatform nor the legacy option nixpkgs.system has been set.",
    # (a builder's refusal only quoted: alone, its name and a colon open a writer's line too)
    "The build stops at `buildGoModule: vendorHash is missing` now",
    'the error is "cargoHash, cargoVendorDir, or cargoLock must be set"',
    "merlin 4.7 is not available for OCaml 5.1.0",
    "It fails with `manticore is no longer maintained since 2020` now",
    "'lxpanel' has been moved to top-level. Use 'lxpanel' directly",
    # lib's callPackageWith before it named itself (its abort's words alone)
    'the package fails to evaluate with `Function called without required argument "opus"`.',
    'Function called without required argument "boost" at /nix/store/…-source/a.nix:3',
    "envoy-bin is not available for x86_64-darwin.",
    "It fails: `envoy-bin is not available for aarch64-darwin.`",
    # (mk-python-derivation of 2021-2022 quoting both names in code marks)
    "`python3.10-pyqt4-4.12.3` is not supported for interpreter `python3.10`",
    'It says "fetchgit requires one of either `rev` or `tag` to be provided (not both)." now',
    # NixOS' failed assertions on one line in a code span (top-level.nix's header, a bullet)
    "That target fails with `Failed assertions: - The 'fileSystems' option does not specify "
    "your root file system.`",
])
def test_a_nixpkgs_throw_a_writer_quoted_without_error_is_the_evaluations(line: str) -> None:
    found = diagnose.parse_log(["I updated my flake.", "", line, "", "Any idea?"])
    assert [d.type for d in found] == [FailureType.EVAL], found
    assert "Any idea" not in found[0].message and "I updated" not in found[0].message


@pytest.mark.parametrize("message", [
    # Nix's own, about its command line: a subject with blanks, not an attribute
    "`nix flake lock --update-input nixpkgs` has been replaced by `nix flake update nixpkgs`",
    "the daemon is dead, restart it",
    "ExportPath is not supported in Lix, client usage were removed in 2017",
])
def test_nixs_own_messages_in_an_alias_throws_words_stay_nixs(message: str) -> None:
    [found] = diagnose.parse_log([f"error: {message}"])
    assert found.type is FailureType.OTHER, found

@pytest.mark.parametrize("quoted", [
    "When I rebuild I get `Package ‘foo-1.0’ in /nix/store/{h}-source/default.nix:3 is marked as "
    "broken, refusing to evaluate.` on 23.05",
    'it says "Refusing to evaluate package \'foo-1.0\' in /nix/store/{h}-source/package.nix:40 '
    'because it is marked as broken" since the bump'])
def test_a_check_meta_refusal_a_sentence_quotes_is_the_quote_alone(quoted: str) -> None:
    # nixpkgs' refusal in a writer's code span or double quotes, "error:" lost: the evaluation
    # failed, and what it says is the quote, not the sentence around it
    [found] = diagnose.parse_log(["Hi,", "", quoted.format(h="a" * 32), "", "Thanks"])
    assert found.type is FailureType.EVAL, found
    assert found.message.startswith(("Package", "Refusing")), found.message
    assert not any(word in found.message for word in ("rebuild", "says", "since", "on 23.05"))


def test_a_check_meta_refusal_detailing_the_platforms_without_error_reads_from_its_head() -> None:
    # nixpkgs 24.05-24.11 (check-meta.nix): "Package ‘x’ in POS is not available on the
    # requested hostPlatform:", the platforms indented under it, then ", refusing to evaluate.";
    # pasted without "error:", the message is its head, not the block's last detail
    found = diagnose.parse_log([
        "Building on my mac:", "",
        f"Package ‘cudatoolkit-12.2’ in /nix/store/{'a' * 32}-source/pkgs/development/"
        "cuda-modules/cudatoolkit/default.nix:383 is not available on the requested "
        "hostPlatform:",
        '  hostPlatform.config = "aarch64-apple-darwin"', "  package.meta.platforms = [",
        '    "x86_64-linux"', "  ]", "  package.meta.badPlatforms = [ ]",
        ", refusing to evaluate.", "", "Any idea?"])
    assert [d.type for d in found] == [FailureType.EVAL], found
    assert found[0].message.startswith("Package 'cudatoolkit-12.2' in "), found[0].message


@pytest.mark.parametrize("reason", [
    "is not supported on ‘aarch64-linux’, refusing", "is marked as broken",
    "has an unfree license (‘unfree’)", "is marked as insecure,"])
def test_a_check_meta_head_with_its_reason_cut_before_refusing_is_a_refusal(reason: str) -> None:
    # check-meta.nix's "Package ‘x’ in POS <reason>, refusing to evaluate.", a copy (ofborg's
    # partial log in a review, a title) cut after the reason: still nixpkgs' refusal
    line = (f"Package ‘ldcBuild-1.10.0’ in /var/lib/ofborg/checkout/repo/{'a' * 32}/mr-est/pkgs/"
            f"development/compilers/ldc/default.nix:13 {reason}")
    [found] = diagnose.parse_log(["The review says:", "", line])
    assert found.type is FailureType.EVAL, found
    assert found.message.startswith("Package 'ldcBuild-1.10.0' in "), found.message
    # (the head without a reason of check-meta's is a sentence naming a package)
    assert diagnose.parse_log(["The review says:", "",
                               line.removesuffix(reason) + "is what I changed."]) == []


def test_a_check_meta_refusal_the_copy_ends_inside_is_still_a_refusal() -> None:
    # ofborg's "Partial log" of a refusal (nixpkgs' check-meta, printed bare: "Package ‘x-1.0’
    # in …/default.nix:3 is not supported on ‘aarch64-linux’, refusing to evaluate."), the copy
    # ending inside its path: what is left is the refusal's head, the log's last line
    for quote in ("‘’", "''"):
        head = f"Package {quote[0]}jailbreak-cabal-1.3.2{quote[1]} in /var/lib/gc-of-borg/repo/grah"
        found = diagnose.parse_log(["Failure on aarch64-linux [(full log)](https://logs.example)",
                                    "", "<details><summary>Partial log</summary><p>", "",
                                    "```", head])
        assert [(d.type, d.kind) for d in found] == [(FailureType.EVAL, Kind.ERROR)], quote
        # with lines after it, the head is no copy's end (a sentence naming a package)
        assert diagnose.parse_log([head, "and that is where it lives"]) == []



@pytest.mark.parametrize(("url", "expected"), [
    # the substituter's NAR, Nix's own download before the build: not the builder's failure
    ("https://cache.nixos.org/nar/1m6mi9lqicbr35dz9f446xzl371x0qndv1fngky6br4va7gd9gkb.nar.xz",
     FailureType.BUILD),
    # a source's URL (builtin:fetchurl's retries in the build's log): the builder's download
    ("https://example.org/foo-1.0.tar.gz", FailureType.OTHER),
])
def test_a_failed_download_above_a_builders_report_is_its_own_only_for_a_source(
        url: str, expected: FailureType) -> None:
    found = diagnose.parse_log([
        f"warning: unable to download '{url}': HTTP error 200 (curl error: Timeout was "
        "reached); retrying in 340 ms",
        f"builder for '{_READ_DRV}' failed with exit code 1; last 2 log lines:",
        "  building", "  Error: Failed finding Lua library."])
    assert (found[0].type, found[0].drv) == (expected, _READ_DRV), found


@pytest.mark.parametrize("after", [
    # nix-review's own lines after its run's recap (nixpkgs PR#70473, #71711, #74902, heldout-340/
    # 343/350): unindented, none of Nix's
    ["https://github.com/NixOS/nixpkgs/pull/70473", "1 package are marked as broken and were "
     "skipped:", "python37Packages.foo python38Packages.foo"],
    # nix-shell's own line after it (unisonweb/unison#33, heldout-401), Nix 1.x's curly quotes
    ["/Users/u/.nix-profile/bin/nix-shell: failed to build all dependencies"],
])
def test_nixs_one_line_build_recap_is_not_continued_by_the_lines_after_it(
        after: list[str]) -> None:
    # Nix's "error: build of '…' failed" is whole on its line: an unindented line after it is
    # not its rest (which hid the recap: other/eval with the lines after it as its message)
    curly = after[0].startswith("/Users")
    drv = f"/nix/store/{H}-env.drv"
    recap = f"error: build of ‘{drv}’ failed" if curly else f"error: build of '{drv}' failed"
    [found] = diagnose.parse_log(["[63 built (6 failed)]", recap, *after])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.SUMMARY, drv), found


def test_a_writers_elided_hash_in_parentheses_still_names_the_derivation() -> None:
    # hnix#496 (heldout-347): "`error: build of '/nix/store/(...)-cabal2nix-hnix.drv' failed`"
    [found] = diagnose.parse_log(["Info for anyone coming here after `nix-build` fails with ",
                                  "`error: build of '/nix/store/(...)-cabal2nix-hnix.drv' "
                                  "failed`: "])
    assert (found.type, found.drv) == (FailureType.BUILD, "/nix/store/(...)-cabal2nix-hnix.drv")


def test_a_substitution_that_failed_before_only_dependents_failed_comes_first() -> None:
    # SimulaVR/Simula#11 (heldout-347), Nix 1.11: the download of glib's NAR fails, then only
    # dependents' lines: the substitution is the culprit, not weston's dependency failure
    glib = f"/nix/store/{H}-glib-2.54.0"
    weston = f"/nix/store/{H}-weston-2.0.0.drv"
    found = diagnose.parse_log([
        "/nix/store/x-xz-5.2.3-bin/bin/xz: (stdin): File format not recognized",
        "error: unexpected end-of-file",
        f"could not download ‘{glib}’ from any binary cache",
        f"fetching path ‘{glib}’ failed with exit code 1",
        f"cannot build derivation ‘{weston}’: 1 dependencies couldn't be built",
        f"error: build of ‘{weston}’ failed"])
    assert [(d.type, d.kind) for d in found[:2]] == [
        (FailureType.OTHER, Kind.SUBSTITUTION), (FailureType.DEPENDENCY, Kind.DEPENDENCY)]


def test_a_download_nix_gave_up_on_before_the_substitution_it_failed_comes_first() -> None:
    # Ruixi-rebirth/melted-flakes#42 (heldout-557), Nix 2.x: "error: unable to download" of a NAR,
    # then the substitution it failed and only dependents: the download, the first failure Nix
    # printed, comes first (as heldout-521's nix-1254 reads, its substitution line naming no
    # derivation); a download Nix retried (a warning) stays in the substitution's message
    nar = "https://mirror.example.org/nix-channels/store/nar/" + "1" * 52 + ".nar.xz"
    drv = f"/nix/store/{H}-emanote-1.0.2.0.drv"
    found = diagnose.parse_log([
        f"error: unable to download '{nar}': HTTP error 200 (curl error: Transferred a partial "
        "file)",
        f"error: some substitutes for the outputs of derivation '{drv}' failed (usually happens "
        "due to networking issues); try '--fallback' to build derivation from source",
        f"error: 1 dependencies of derivation '/nix/store/{H}-home-manager-path.drv' failed to "
        "build"])
    assert [(d.type, d.kind, d.drv) for d in found[:2]] == [
        (FailureType.OTHER, Kind.DOWNLOAD, None), (FailureType.OTHER, Kind.SUBSTITUTION, drv)]
    assert found[0].message.startswith(f"unable to download {nar}: HTTP error 200")


def test_a_builder_line_of_a_store_at_another_directory_names_its_derivation() -> None:
    # nixpkgs#31369 (heldout-350): Nix 1.11 with a private store under a home directory
    drv = f"/home/u/opt/nix/store/{H}-libuv-1.15.0.drv"
    found = diagnose.parse_log([
        "make: *** [Makefile:4737: check-am] Error 2",
        f"builder for ‘{drv}’ failed with exit code 2",
        f"cannot build derivation ‘/home/u/opt/nix/store/{H}-cmake-3.9.4.drv’: 1 dependencies "
        "couldn't be built"])
    assert (found[0].type, found[0].drv, found[0].exit_code) == (FailureType.BUILD, drv, 2)
    # a reporter's stand-in, no store path, still names none
    [alone] = diagnose.parse_log(["builder for '/nix/store/file-name.drv' failed with exit code 2"])
    assert (alone.type, alone.drv, alone.exit_code) == (FailureType.BUILD, None, 2)


def test_a_log_printed_as_string_literals_is_read_as_its_lines() -> None:
    # a tool printing Nix's output as a list of string literals (lorri 0.1's Rust `Debug` of its
    # lines: each in double quotes, its quotes escaped "\'", a comma after): Nix's lines as the
    # literals hold them
    drv = f"/nix/store/{'a' * 32}-hack-shell.drv"
    out = f"/nix/store/{'b' * 32}-hack-shell"
    found = diagnose.parse_log([
        "```",
        f"\"building \\'{drv}\\'...\",",
        "\"/nix/store/x-patch-shebangs.sh: line 64: syntax error near unexpected token `<\\'\",",
        f"\"builder for \\'{drv}\\' failed to produce output path \\'{out}\\'\",",
        f"\"error: build of \\'{drv}\\' failed\"",
        "```"])
    assert [(d.type, d.drv) for d in found[:1]] == [(FailureType.BUILD, drv)], found
    # a string literal without escaped quotes is left as it is (a list of arguments, a setting)
    assert diagnose.parse_log(['"--option", "sandbox", "false",']) == []


def test_a_relays_line_under_old_frames_at_another_column_is_no_message() -> None:
    # Ansible's YAML result: Nix's stderr a block under "stderr: |-", its next key after it (at
    # the result's column, not the frames'): the trace stays one cut before its message
    frames = [f"    while evaluating 'drvScope' at /nix/store/{H}-source/m.nix:87:18, called from "
              f"/nix/store/{H}-source/lib/customisation.nix:74:12:"] * 2
    [found] = diagnose.parse_log(["fatal: [web]: FAILED! => changed=true ", "  rc: 1",
                                  "  stderr: |-", *frames, "  stderr_lines: <omitted>"])
    assert found.type is FailureType.EVAL, found


@pytest.mark.parametrize("cut", [len("/nix/store/") + 33, len("/nix/store/") + 10])
def test_a_hard_wrap_inside_a_store_path_in_a_writers_line_is_read_on(cut: int) -> None:
    """A writer's line a hard wrap broke inside the store path of Nix's builder line (after the
    hash's dash, inside the hash): read on with the next line, its derivation and exit code are
    Nix's (audit300; the line alone reads a builder cut before it says which)."""
    drv = "/nix/store/0c5l8jn6sx5hfs1mcfkwbgaqnx0lwxxp-victim-1.0.drv"
    [found] = diagnose.parse_log([f"when I run nix build I get builder for '{drv[:cut]}",
                                  f"{drv[cut:]}' failed with exit code 1 and nothing else"])
    assert (found.type, found.drv, found.exit_code) == (FailureType.BUILD, drv, 1)


def test_nix_1x_build_remote_relays_the_remotes_recap_which_is_no_failure_of_its_own() -> None:
    # build-remote.pl's "error: $msg on ‘$hostName’": the remote's own "build of ‘…’ failed"
    # with the host it ran on, after the remote builder's own report: one failure, that one
    drv = f"/nix/store/{H}-hello-2.10.drv"
    found = diagnose.parse_log([f"building ‘{drv}’ on ‘builder.example.org’",
                                f"builder for ‘{drv}’ failed with exit code 2",
                                f"error: build of ‘{drv}’ failed on ‘builder.example.org’",
                                f"builder for ‘{drv}’ failed with exit code 100",
                                f"error: build of ‘{drv}’ failed"])
    assert [(d.type, d.kind, d.drv, d.exit_code) for d in found] == [
        (FailureType.BUILD, Kind.BUILDER, drv, 2)]


# ---------------------------------------------------------------------------------------------
# One cut-tolerant reader: every message _PATTERNS reads, cut at the text's end.

def _example(items: object) -> str:
    """The shortest text the parsed regex `items` matches (`re._parser`'s form), choosing the
    first branch and the fewest repetitions (one where none would leave a part empty)."""
    op = re._constants  # type: ignore[attr-defined]
    out = []
    for code, av in items:  # type: ignore[attr-defined]
        if code is op.LITERAL:
            out.append(chr(av))
        elif code is op.NOT_LITERAL or code is op.ANY:
            out.append("x" if code is op.ANY or av != ord("x") else "y")
        elif code is op.IN:
            negated = any(kind is op.NEGATE for kind, _ in av)
            first = next((value for kind, value in av if kind is not op.NEGATE), None)
            if negated:
                out.append("x")
            elif isinstance(first, tuple):
                out.append(chr(first[0]))
            elif first in (op.CATEGORY_DIGIT,):
                out.append("1")
            elif first in (op.CATEGORY_SPACE,):
                out.append(" ")
            elif first in (op.CATEGORY_NOT_SPACE, op.CATEGORY_WORD, op.CATEGORY_NOT_DIGIT):
                out.append("x")
            else:
                out.append(chr(first))  # type: ignore[arg-type]
        elif code in (op.MAX_REPEAT, op.MIN_REPEAT, op.POSSESSIVE_REPEAT):
            low, _, sub = av
            out.append(_example(sub) * low)
        elif code is op.SUBPATTERN:
            out.append(_example(av[3]))
        elif code is op.BRANCH:
            out.append(_example(av[1][0]))
        elif code is op.ATOMIC_GROUP:
            out.append(_example(av))
    return "".join(out)


def _head_words(items: object) -> str:
    """The fixed words a parsed pattern's messages open with (what may stand before them,
    "error: ", indentation, aside; a count, "3 dependencies of derivation ", and a choice of
    words, its first, counted), as `_example` writes them; "" where they are fewer than two
    (a choice counted by its shortest)."""
    op = re._constants  # type: ignore[attr-defined]
    said, fewest = "", ""
    for code, av in items:  # type: ignore[attr-defined]
        digits = code is op.SUBPATTERN and _example(av[3]).isdigit() or (
            code is op.MAX_REPEAT and av[0] >= 1 and _example(av[2]).isdigit())
        if code is op.LITERAL:
            said, fewest = said + chr(av), fewest + chr(av)
        elif code is op.BRANCH and all(sub and all(c is op.LITERAL for c, _ in sub)
                                       for sub in av[1]):
            said += _example(av[1][0])
            fewest += min((_example(sub) for sub in av[1]), key=len)
        elif digits and not said:
            said, fewest = "1", "1"
        elif said or not (code in (op.AT, op.ASSERT, op.ASSERT_NOT)
                          or code is op.MAX_REPEAT and av[0] == 0):
            break
    return said if re.match(r"\S+ \S", fewest) else ""


def _whole_messages() -> list[tuple[str, str, str]]:
    """Each pattern whose messages open with two fixed words or more: its name, those words and
    the shortest message it reads whole."""
    messages = []
    for name, pattern in diagnose._PATTERNS:
        parsed = re._parser.parse(pattern.pattern, pattern.flags)  # type: ignore[attr-defined]
        head = _head_words(parsed)
        if head:
            said = _example(parsed)
            m = pattern.search(said)
            assert m is not None, (name, said)
            messages.append((name, head, said[m.start():]))
    return messages


def test_every_pattern_says_what_its_cut_reads_as() -> None:
    # a message _PATTERNS gains is read cut too, as its type (`_CUT_TYPES`, DRVLESS), or named
    # in `_CUT_UNREAD` where the words a cut loses decide its type
    assert [name for name, _ in diagnose._PATTERNS
            if diagnose._cut_type(name) is None and name not in diagnose._CUT_UNREAD] == []


@pytest.mark.parametrize(("name", "head", "message"), _whole_messages(),
                         ids=[name for name, _, _ in _whole_messages()])
def test_every_message_nix_prints_cut_at_the_texts_end_reads_as_that_message(
        name: str, head: str, message: str) -> None:
    """Each of `_PATTERNS`' messages (any version's wording) cut anywhere after its fixed head
    ("builder for '", "cannot build derivation '…': 3 de", "timed out after 1800 s") reads as
    that message's type where it ends the text: an excerpt's cut. Cut inside its head (English
    words only, "Build failed du"), or where the cut could be of messages of another type too
    ("output path '…" of a hash mismatch or of an output check), it reads as no such type."""
    if name in diagnose._CUT_UNREAD:  # (its type is what the cut left out: no reading)
        assert diagnose._cut_type(name) is None
        return
    type_, _ = diagnose._cut_type(name)  # type: ignore[misc]
    # (inside the head, past its first word; right after it; in the middle of the rest; a
    # letter before the end)
    # (and, of a head of four words or more, its first three and a letter of the fourth,
    # where the head's words are all letters: no count, no choice)
    three = re.match(r"\S+ \S+ \S+ (?=\S)", diagnose._head(dict(diagnose._PATTERNS)[name])[2])
    inside = len(three[0]) + 1 if three else len(head) + 1
    ends = sorted({message.index(" ") + 2, len(head) + 1, inside,
                   (len(head) + len(message)) // 2, len(message) - 1})
    for end in ends:
        cut = message[:end]
        if any(pattern.search(cut) for _, pattern in diagnose._PATTERNS):
            continue  # (a whole message of its own, read as ever)
        found = diagnose.parse_log(["```", "make: *** [all] Error 2", f"error: {cut}"])
        readings = {diagnose._cut_type(other)[0]  # type: ignore[index]
                    for other, _, _, _ in diagnose._cut_forms()
                    if diagnose._cut_form(other).match(cut)}
        if end >= inside and readings == {type_}:
            assert [d.type for d in found] == [type_], (cut, found)
        else:  # (cut inside its head, English words only; or a cut of either of two types)
            assert all(d.type is FailureType.OTHER for d in found), (cut, found)


@pytest.mark.parametrize(("reason", "type_"), [
    ("required system or feature not available", FailureType.PLATFORM),
    ("platform mismatch", FailureType.PLATFORM),
    ("missing system features", FailureType.PLATFORM),
    ("local builds are disabled", FailureType.PLATFORM),
    ("timed out after 1800 seconds", FailureType.TIMEOUT)])
def test_a_2_29_reason_cut_at_the_texts_end_reads_as_that_reason(
        reason: str, type_: FailureType) -> None:
    """2.29+'s "Cannot build '…'." block whose "Reason:" line a copy cut inside Nix's words
    (heldout-249 home-manager-8156's second block, "Reason: required system or feature no"): the
    reason's type, from its first word whole on; not where the block goes on below it."""
    drv = f"/nix/store/{H}-hello-2.12.drv"
    first = reason.index(" ") + 2
    for end in sorted({first, (first + len(reason)) // 2, len(reason) - 1}):
        block = [f"error: Cannot build '{drv}'.", f"       Reason: {reason[:end]}"]
        [found] = diagnose.parse_log(block)
        assert (found.type, found.drv) == (type_, drv), block
    # (a cut inside the first word says nothing; Nix's block going on under it, no cut)
    [found] = diagnose.parse_log([f"error: Cannot build '{drv}'.", f"       Reason: {reason[:3]}"])
    assert found.type is FailureType.BUILD
    [found] = diagnose.parse_log([f"error: Cannot build '{drv}'.",
                                  f"       Reason: {reason[:first]}", "       Output paths:",
                                  "         /nix/store/x"])
    assert found.type is FailureType.BUILD


@pytest.mark.parametrize("mark", ["…", "...", " [...]"])
def test_a_cut_line_of_nix_marked_with_an_ellipsis_still_reads_as_that_message(mark: str) -> None:
    """A writer, or a tool, marking where it cut Nix's line ("…': 3 dependencies…", "timed out
    after..."): the cut as it would read without the mark."""
    drv = f"/nix/store/{H}-system-units.drv"
    [found] = diagnose.parse_log(["```", f"cannot build derivation '{drv}': 3 dependencies{mark}"])
    assert (found.type, found.drv) == (FailureType.DEPENDENCY, drv)
    [found] = diagnose.parse_log(["```", f"building of '{drv}' timed out after{mark}"])
    assert (found.type, found.drv) == (FailureType.TIMEOUT, drv)


@pytest.mark.parametrize(("fence", "before", "after"), [
    ("```", [], ["```"]),  # a closed fence (nixpkgs#348366)
    ("```console", ["$ nixos-rebuild switch --print-build-logs", "[…]"], ["```"]),  # #420293
    ("~~~", [], None),  # a tilde fence the copy cut off (nixpkgs PR#138616)
    ("```", [], ["gotos", None]),  # the copy cut inside the next line's name (#175626)
    ("```", [], ["...", "```"]),  # the writer's elision after them (quickgui#237)
])
def test_a_fence_holding_only_one_builders_print_build_logs_lines_is_a_failed_build(
        fence: str, before: list[str], after: list[str | None] | None) -> None:
    # a writer's paste of `nix build -L`'s lines of one build and nothing of Nix's (its report
    # left out or cut off): that build failed, as a headerless quoted tail says (the round
    # 480-529 measurement's 12 silent zeros of this shape)
    lines = ["gotosocial> Running phase: buildPhase", "gotosocial> Building subPackage ./cmd",
             "gotosocial> link: codeberg.org/gruf/go-fastcopy: invalid reference to x"]
    # (None: the copy ends there)
    end = [] if after is None else [line for line in after if line is not None] + (
        [] if None in after else ["", "Thanks!"])
    log = ["### Build log", "", fence, *before, *lines, *end]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, None)
    assert "invalid reference" in found.log


@pytest.mark.parametrize("held", [
    # two builders' lines, a writer's own line among them, a command that printed no -L lines
    ["a> one", "b> two"], ["a> one", "and then it stops here", "a> two"],
    ["$ nix build .#a", "a> one"],
])
def test_a_fence_holding_more_than_one_builders_lines_alone_says_no_failure(
        held: list[str]) -> None:
    assert diagnose.parse_log(["```", *held, "```", "", "it works now"]) == []


@pytest.mark.parametrize("where", [", at 0x7fd539d06478", ""])
def test_a_fetchers_unsupported_argument_is_the_evaluators_without_a_file(where: str) -> None:
    # Nix 1.11's fetchTarball refusing 2.x's sha256 (nmattia/snack#31, heldout-513): a primop's
    # error, its position printed as a pointer or not at all, no file to tell it by
    [found] = diagnose.parse_log([f"error: unsupported argument ‘sha256’ to ‘fetchTarball’{where}"])
    assert found.type is FailureType.EVAL


def test_a_hash_mismatch_cut_inside_its_paths_hash_is_the_derivation_the_log_started() -> None:
    # a --print-build-logs paste ending inside the mismatch's path (numtide/llm-agents.nix#1989,
    # heldout-518): the one derivation the log names whose path begins so
    drv = "/nix/store/fla37m1yzkwva8s0kdwjng58wql88psn-gemini-cli-0.24.0-npm-deps.drv"
    log = [f"gemini-cli-0.24.0-npm-deps> building '{drv}'",
           "gemini-cli-0.24.0-npm-deps> Running phase: buildPhase",
           "error: hash mismatch in fixed-output derivation '/nix/store/fla37m1yzkwva"]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.drv) == (FailureType.HASH_MISMATCH, drv)


@pytest.mark.parametrize("elided", ["psa[...]r5kj", "psa…r5kj", "psa...r5kj"])
def test_a_builder_line_whose_path_hash_a_writer_elided_names_its_derivation(elided: str) -> None:
    # nixpkgs#20240 (heldout-518): 1.11's builder line, the hash shortened by hand
    line = f"builder for ‘/nix/store/{elided}-purescript-0.10.1.drv’ failed with exit code 1"
    [found] = diagnose.parse_log([line])
    assert found.type is FailureType.BUILD and found.exit_code == 1
    assert found.drv is not None and found.drv.endswith("-purescript-0.10.1.drv")


@pytest.mark.parametrize("paste", [
    # home-manager#2966 (heldout-498): a fence of one builder's -L lines
    ["```", "neovim> Generating remote plugin manifest", "neovim> Generating rplugin.vim failed!",
     "```"],
    # caelestia-shell#586 (heldout-475): Nix's quote of a builder's lines, its header cut off
    ["```", "       > FAILED: [code=1] plugin/src/x.cpp.o",
     "       > ninja: build stopped: subcommand failed.", "```"],
])
def test_a_writers_line_saying_only_that_something_failed_yields_to_the_kept_build_tail(
        paste: list[str]) -> None:
    # the writer's "I hit the following error:" says no more than that something failed; the
    # build's last lines under it say which: a build (its report left out of the paste)
    log = ["When rebuilding I hit the following error:", *paste,
           "This happens with the following config:", "```nix", "{ enable = true; }", "```"]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, None)


def test_titles_elided_paths_and_cut_heads_of_nixs_failure_lines_read_as_them() -> None:
    """MEASURE-11's (c): an issue's title "error: Cannot build '/nix/store/...'" (its path
    elided, no Reason: a build, heldout-497 shin-27); a recap quoting a writer's stand-in for its
    derivation, "build of `/nix/store/hash-name.drv!out' failed" (a build, heldout-473 nix-76);
    a builder line whose quotes a copy turned into underscores, cut ("builder for
    _/nix/store/…-red-0.6.3.drv_ failed with exit cod", heldout-487); Nix's "error:" itself cut
    ("err") after the one build the log started (heldout-481 nixpkgs-427329)."""
    [found] = diagnose.parse_log(["# error: Cannot build '/nix/store/...'", "",
                                  "After a long time it throws errors:", "![Image](x.png)"])
    assert (found.type, found.kind, found.drv) == (FailureType.BUILD, Kind.BUILDER, None)
    [found] = diagnose.parse_log(["# \"error: build of `/nix/store/hash-name.drv!out' failed\" "
                                  "when using nix-1.2", "", "To reproduce:"])
    assert found.type is FailureType.BUILD
    drv = f"/nix/store/{H}-red-0.6.3.drv"
    [found] = diagnose.parse_log(["building", "setup: line 985: ./rebol: No such file or directory",
                                  f"builder for _{drv}_ failed with exit cod"])
    assert (found.type, found.drv) == (FailureType.BUILD, drv)
    drv = f"/nix/store/{H}-livebook-0.16.4.drv"
    started = [f"building '{drv}'...", "escript: Not an archive file"]
    [found] = diagnose.parse_log([*started, "err"])
    assert (found.type, found.drv) == (FailureType.BUILD, drv)
    assert diagnose.parse_log([*started, "e"]) == []  # (too little of it to say)


@pytest.mark.parametrize("said", ["does not configure a `format`. To build with setuptools as "
                                  "before, set `pyproject = true`", "does not configure a `f"])
def test_mk_python_derivations_throw_for_a_missing_format_is_the_evaluations(said: str) -> None:
    # nixpkgs' "${name} does not configure a `format`" (2024+), also cut inside the option's
    # name by a copy (heldout-502 nixos-06cb-009a-17's blockquote): eval, with or without error:
    for line in (f">  error: python3.13-python-validity-0.14 {said}",
                 f"python3.13-python-validity-0.14 {said}"):
        [found] = diagnose.parse_log(["I run into this error:", "", line])
        assert found.type is FailureType.EVAL, line


def test_fetchurls_last_words_as_a_title_are_that_download_of_the_plans_derivation() -> None:
    # an issue's title, fetchurl's "cannot download NAME from any mirror" without Nix's error:
    # line, over nix-build's plan (heldout-498 vlaci-nix-doom-emacs-264): the download failed,
    # of the plan's one derivation of that name; a sentence holding the words is none
    drv = f"/nix/store/{H}-spinner-1.7.3.el.drv"
    [found] = diagnose.parse_log(["# cannot download spinner-1.7.3.el from any mirror", "",
                                  "```", "these derivations will be built:", f"  {drv}"])
    assert (found.type, found.kind, found.drv) == (FailureType.OTHER, Kind.DOWNLOAD, drv)
    assert diagnose.parse_log(["I cannot download spinner-1.7.3.el from any mirror today"]) == []


def test_a_review_summary_after_the_section_before_it_closed_on_its_line() -> None:
    """Newer nixpkgs-review-gha comments print a section's closing tags and the next one's
    opening on one line ("</ul></details><details><summary>:x: 2 packages failed to build:
    </summary><ul>", heldout-536 nixpkgs-pr-540082): the recap all the same, a build failed."""
    text = ["### `x86_64-linux`",
            "<details><summary>:fast_forward: 2 packages blacklisted:</summary><ul>",
            "<li>nixos-install-tools</li>",
            "</ul></details><details><summary>:x: 2 packages failed to build:</summary><ul>",
            "<li>haskellPackages.xgboost-haskell</li>", "<li>python313Packages.syne-tune</li>",
            "</ul></details><details><summary>:white_check_mark: 20 packages built:</summary><ul>",
            "<li>freqtrade</li>"]
    [found] = diagnose.parse_log(text)
    assert (found.type, found.kind, found.message) == (
        FailureType.BUILD, Kind.SUMMARY,
        ":x: 2 packages failed to build: haskellPackages.xgboost-haskell")


@pytest.mark.parametrize("line", [
    "tr: write error: Broken pipe", "tar: write error: No space left on device",
    "./configure: line 1666: printf: write error: No space left on device"])
def test_a_programs_own_write_error_is_not_nixs(line: str) -> None:
    """A program's "write error" at its exit (gnulib's close_stdout in coreutils and tar, bash's
    builtins) is that program's failure to write, not Nix's store or pipe failing whatever the
    strerror: below a review's verdict (heldout-531 nixpkgs-pr-108164, the builder's make
    install lines in a fence after "1 package failed to build and are new build failure:") the
    verdict says what failed; Nix's own failing write ("error: writing to file: Broken pipe")
    stays Nix's."""
    [alone] = diagnose.parse_log([line])
    assert alone.kind is not Kind.NIX
    report = ["Result of `nixpkgs-review pr 108164` run on x86_64-linux", "<details>",
              "  <summary>1 package failed to build and are new build failure:</summary>",
              "  <ul>", "<li>solanum</li>", "  </ul>", "</details>", "", "```",
              "make[2]: Entering directory '/build/source/help'", line,
              "make[2]: Leaving directory '/build/source/help'"]
    [found] = diagnose.parse_log(report)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.SUMMARY)
    [nixs] = diagnose.parse_log(["error: writing to file: Broken pipe"])
    assert (nixs.type, nixs.kind) == (FailureType.OTHER, Kind.NIX)


# a line of each tool recap diagnose._RECAPS reads from a line's start, and the type it says
_RECAP_LINES = [
    ("<summary>:x: 2 packages failed to build:</summary>", FailureType.BUILD),  # nixpkgs-review
    ("Failure on x86_64-linux (full log)", FailureType.BUILD),  # ofborg
    ("Timed out, unknown build status on aarch64-linux", FailureType.TIMEOUT),
    ("A fixed output derivation's hash was incorrect on x86_64-linux", FailureType.HASH_MISMATCH),
    ("No attempt on x86_64-darwin (full log)", FailureType.EVAL),
    ("Status: Dependency failed", FailureType.DEPENDENCY),  # Hydra's build page
    ("Build returned a non-zero exit code", FailureType.BUILD),
    ("The status of Hydra job ‘nixpkgs:trunk:hello.x86_64-linux’ has changed from \"Success\" "
     "to \"Failed\".", FailureType.BUILD),  # Hydra's mail
    ("ERROR:nix_fast_build:BUILD: 3 successes, 1 failures", FailureType.BUILD),
    ("[1/0/3 built (1 failed)]", FailureType.BUILD),  # Nix's bar
    ("- hello failed eval", FailureType.EVAL),  # buildbot-nix
    ("hello was failed because it depends on a failed build of zlib.", FailureType.DEPENDENCY),
    ("✖ (Dependency failed) hello-2.12 https://hydra.nixos.org/build/1", FailureType.DEPENDENCY),
]


@pytest.mark.parametrize(("line", "type_"), _RECAP_LINES)
def test_a_tools_recap_cut_at_the_texts_end_reads_as_the_recap(line: str,
                                                               type_: FailureType) -> None:
    # a copy (an issue's search excerpt) that ends inside a tool's recap (heldout-539 nixpkgs-pr-
    # 126218's "<summary>1 package failed", heldout-567 nixpkgs-pr-139315's "4 packages failed
    # to"): a cut that keeps the recap's failure word whole reads as the recap's type, or as
    # none where the words kept leave its status open; never another type (a line that says
    # something failed stays `other` where nothing reads it finer, the rule against a silent
    # zero: "Timed out", "ERROR"); a cut before the failure word reads no recap
    [whole] = diagnose.parse_log(["See below.", "", line])
    assert whole.type is type_
    word = diagnose._RECAP_WORDS.search(line)
    assert word is not None
    # (cut inside the failure word, right after it, half-way on and one short of the end)
    for end in sorted({word.end() - 1, word.end(), (word.end() + len(line)) // 2, len(line) - 1}):
        found = [d.type for d in diagnose.parse_log(["See below.", "", line[:end]])]
        allowed = ([], [FailureType.OTHER]) if end < word.end() else (
            [], [FailureType.OTHER], [type_])
        assert found in allowed, (line[:end], found)
    # the longest cut (one character short) reads as the recap
    [cut] = diagnose.parse_log(["See below.", "", line[:-1]])
    assert cut.type is type_, cut


def test_a_fetch_whose_server_answered_then_a_host_failed_is_the_downloads() -> None:
    """nixpkgs' fetchurl in the builder's tail, a server answering one URL with a 404 and
    another "URL" a host curl could not resolve (heldout-592 nixpkgs-pr-325566, its tail cut
    before "cannot download … from any mirror"): the network answered, the download failed —
    `other`/download; with no server answering at all (only "Could not resolve host"), the
    build had no network (heldout-43 nixos-wsl-777): `build`/no-network, as before."""
    head = ["error: builder for '/nix/store/xqx91k2hvv3nr99qz15g8c1j0923gcvf-source.drv' failed "
            "with exit code 1;", "       last 9 log lines:"]
    answered = ["       > trying https://github.com/mydumper/mydumper/archive/refs/tags/v0.16.3-6",
                "       > curl: (22) The requested URL returned error: 404", "       >",
                "       > trying .tar.gz",
                "       > curl: (6) Could not resolve host: .tar.gz",
                "       > Warning: Problem : timeout. Will retry in 1 seconds. 3 retries left."]
    [found] = diagnose.parse_log(head + answered)
    assert (found.type, found.kind, found.exit_code) == (FailureType.OTHER, Kind.DOWNLOAD, 1)
    # (heldout-43 nixos-wsl-777, in SPENT, keeps the other side: build/no-network)
