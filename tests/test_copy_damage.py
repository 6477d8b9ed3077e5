"""Logs as copies damage them: every damage of a spent sample keeps its classification.

test_logshape wraps a sample (a CI system's timestamps, a tool's glyphs, a page's quote): what
was added around Nix's lines, taken off again. A copy also damages the lines themselves, and the
held-out rounds' misses came from that, not from wordings (tests/data/fresh/README.md, the
misses "as measured"): a header's first letters eaten ("rror: builder for …", heldout-307), the
selection started inside the line, a log cut at any line, a builder's tail without its header, a
store path damaged (its opening quote lost and `.dru` for `.drv`, heldout-259; a recognised
space inside the hash, heldout-309; the hash elided), lines wrapped inside a word or joined (a
flattened paste, heldout-capt Lix logs), markdown's list marks and code spans around each line,
a CI timestamp or a quote's `>` glued on. Each DAMAGE is one such copy, deterministic (a crc32
of the sample's name picks where), aimed at the line the plain reading reports the sample's
failure at. A damage keeps a sample when a failure of the sidecar's type is still read, of the
sidecar's derivation where it names one and the damage leaves the derivation's name readable.
"""

from __future__ import annotations

import functools
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_diagnose_corpus import CORPUS, DATA, diagnosis_for, load, misclassified
from test_logshape import says_it_failed

from ci_nix import diagnose, logshape

# the samples' plain readings are test_diagnose_corpus's (parsed_text, shared): one worker
pytestmark = pytest.mark.xdist_group("corpus")

# a damage: (the log's lines, the index of the line the failure is read at, a key for the crc)
# -> the damaged text, or None where it does not apply to that sample
Damage = Callable[[list[str], int, str], "str | None"]

STORE_PATH = re.compile(r"/nix/store/([0-9a-df-np-sv-z]{32})-")
POSITION = re.compile(r"^\s*(?:at |«|\d+\|)")


def pick(key: str, what: str, n: int) -> int:
    """A stable choice among n for a sample and a damage."""
    return zlib.crc32(f"{key}:{what}".encode()) % n


def at_line(f: Callable[[str, str], str | None]) -> Damage:
    """A damage of the failure's line alone."""
    def damage(lines: list[str], at: int, key: str) -> str | None:
        line = f(lines[at], key)
        return None if line is None or line == lines[at] else "\n".join(
            [*lines[:at], line, *lines[at + 1:]])
    return damage


# a line whose first letters a copy can eat and leave Nix's: its head is Nix's "error: " or a
# failure's head before a store path (a line headed by a word Nix prints alone, "Reason:",
# "Failed to find a machine", "For full logs, run", loses its only head: DAMAGE_LIMITS)
EATABLE = re.compile(r"\s*(?:error: |(?:builder for |Cannot build |build of )['‘]/nix/store/)")


def _eaten(line: str, key: str, opens: bool = True) -> str | None:
    """The first letters of the line's text lost (a selection started a little late, a paste
    into a widget that ate them): "rror: ", "ror: ", "or: " (this last only where the line
    opens a paste, `opens`: "or:" is also the start of a usage text's line, "  or:  cp …")."""
    text = line.lstrip()
    k = 1 + pick(key, "eaten", 3 if opens else 2)
    return line[:len(line) - len(text)] + text[k:] if EATABLE.match(text) else None


def _letters_eaten(lines: list[str], at: int, key: str) -> str | None:
    """`_eaten` at the failure's line, which opens a paste where the line before it is blank, a
    fence or a line of Nix's own (its level word first), or there is none."""
    before = lines[at - 1].strip() if at else ""
    line = _eaten(lines[at], key, not before or before.startswith(("```", "~~~", "error:",
                                                                    "warning:", "trace:")))
    return None if line is None or line == lines[at] else "\n".join(
        [*lines[:at], line, *lines[at + 1:]])


def _word_eaten(line: str, key: str) -> str | None:
    """Nix's "error: " and the next letter lost ("uilder for '…'", "annot build '…'")."""
    text = line.lstrip()
    return text[len("error: ") + 1:] if text.startswith("error: ") and len(text) > 20 else None


WHOLE_PATH = re.compile(r"['‘](?=/nix/store/[0-9a-df-np-sv-z]{32}-[^\s'‘’]*['’])")


def _quote_lost(line: str, key: str) -> str | None:
    """The opening quote before a store path lost (a transcription; of a whole path: one cut
    or elided already is another damage)."""
    return WHOLE_PATH.sub("", line, count=1)


def _ocr_space(line: str, key: str) -> str | None:
    """A space inside the first store path's hash (character recognition of a screen)."""
    m = STORE_PATH.search(line)
    if m is None:
        return None
    cut = m.start(1) + 4 + pick(key, "ocr", 24)
    return line[:cut] + " " + line[cut:]


def _dru(line: str, key: str) -> str | None:
    """".drv" recognised as ".dru" (a screen's v read as u)."""
    return re.sub(r"(?<=/nix/store/[0-9a-df-np-sv-z]{32}-)([^\s'’]*)\.drv(?=['’])", r"\1.dru",
                  line, count=1)


def _glued_gt(line: str, key: str) -> str | None:
    """A quote's ">" glued before the line's text."""
    return ">" + line.lstrip()


def selection_late(lines: list[str], at: int, key: str) -> str | None:
    """The copy starts inside the failure's line: what was above it lost, and its first
    letters (and indentation)."""
    text = lines[at].lstrip()
    k = 1 + pick(key, "late", 3)
    return "\n".join([text[k:], *lines[at + 1:]]) if EATABLE.match(text) else None


def head_cut(lines: list[str], at: int, key: str) -> str | None:
    """The log's head lost at a line above the failure's (a selection, a `tail`)."""
    return "\n".join(lines[1 + pick(key, "head", at):]) if at > 0 else None


def tail_cut(lines: list[str], at: int, key: str) -> str | None:
    """The log's tail lost at a line below the failure's."""
    rest = len(lines) - at - 1
    return "\n".join(lines[:at + 1 + pick(key, "tail", rest)]) if rest > 0 else None


def tail_cut_mid_line(lines: list[str], at: int, key: str) -> str | None:
    """The log's tail lost inside a line below the failure's (a paste's size limit)."""
    rest = len(lines) - at - 1
    if rest <= 0:
        return None
    end = at + 1 + pick(key, "tail-mid", rest)
    last = lines[end]
    return "\n".join([*lines[:end], last[:len(last) // 2]]) if last.strip() else None


def frame_cut(lines: list[str], at: int, key: str) -> str | None:
    """The copy ends above Nix's position and code frame below the failure's line."""
    for i in range(at + 1, len(lines)):
        if POSITION.match(lines[i]):
            return "\n".join(lines[:i])
    return None


HEADER = re.compile(r"builder for |Cannot build |build of ")


def headerless(lines: list[str], at: int, key: str) -> str | None:
    """A builder's tail copied without Nix's header above it (nor what came before)."""
    if not HEADER.search(lines[at]) or not any(line.strip() for line in lines[at + 1:]):
        return None
    return "\n".join(lines[at + 1:])


def hash_elided(lines: list[str], at: int, key: str) -> str | None:
    """Every store path's hash elided by the writer ("/nix/store/...-NAME", "…-NAME")."""
    text = "\n".join(lines)
    mark = ("...", "…")[pick(key, "elided", 2)]
    return STORE_PATH.sub(f"/nix/store/{mark}-", text)


WORD = re.compile(r"\w{4,}")


def word_wrapped(lines: list[str], at: int, key: str) -> str | None:
    """The failure's line broken inside a word (a paste's or a narrow terminal's wrap)."""
    words = list(WORD.finditer(lines[at]))
    if not words:
        return None
    word = words[pick(key, "word", len(words))]
    cut = word.start() + 2
    line = lines[at]
    return "\n".join([*lines[:at], line[:cut], line[cut:], *lines[at + 1:]])


def narrow_terminal(lines: list[str], at: int, key: str) -> str | None:
    """Every line hard-broken at a narrow terminal's width (40 to 71 columns), as copied."""
    width = 40 + pick(key, "width", 32)
    broken = [line[k:k + width] for line in lines for k in range(0, max(len(line), 1), width)]
    return "\n".join(broken)


def flattened(lines: list[str], at: int, key: str) -> str | None:
    """Every line end lost: the log one line, its lines joined by a blank."""
    return " ".join(line.strip() for line in lines if line.strip())


def pairs_joined(lines: list[str], at: int, key: str) -> str | None:
    """Every other line end lost: two of Nix's lines on each line."""
    kept = [line for line in lines if line.strip()]
    return "\n".join(" ".join(kept[k:k + 2]) for k in range(0, len(kept), 2))


def md_list(lines: list[str], at: int, key: str) -> str | None:
    """Each line a markdown list item."""
    return "\n".join(f"- {line.strip()}" if line.strip() else line for line in lines)


def code_spans(lines: list[str], at: int, key: str) -> str | None:
    """Each line a markdown code span (a chat that lost the fence)."""
    return "\n".join(f"`{line.strip()}`" if line.strip() else line for line in lines)


def stamp_glued(lines: list[str], at: int, key: str) -> str | None:
    """A CI timestamp glued on each line without its blank."""
    return "\n".join(f"2024-05-01T12:00:{i % 60:02d}.{i:07d}Z{line}"
                     for i, line in enumerate(lines))


DAMAGES: dict[str, Damage] = {
    "letters-eaten": _letters_eaten, "word-eaten": at_line(_word_eaten),
    "selection-late": selection_late, "head-cut": head_cut, "tail-cut": tail_cut,
    "tail-cut-mid-line": tail_cut_mid_line, "frame-cut": frame_cut, "headerless": headerless,
    "quote-lost": at_line(_quote_lost), "ocr-space": at_line(_ocr_space), "dru": at_line(_dru),
    "hash-elided": hash_elided, "word-wrapped": word_wrapped, "narrow-terminal": narrow_terminal,
    "flattened": flattened, "pairs-joined": pairs_joined, "md-list": md_list,
    "code-spans": code_spans, "stamp-glued": stamp_glued, "gt-glued": at_line(_glued_gt)}
# damages after which the derivation's name can no longer be read whole: the type is kept
DRV_LOST = frozenset({"ocr-space", "dru", "headerless", "word-wrapped", "narrow-terminal"})


@functools.cache
def target(expected: Path) -> tuple[list[str], int] | None:
    """A sample's lines and the index of the line its labelled failure is read at (None: a
    sample not for damage: internal-json, the helper's output, or misread plain)."""
    text, sidecar = load(expected)
    if sidecar["mode"] in ("json", "helper") or text.lstrip().startswith("@nix ") \
            or misclassified(expected):
        return None
    found, _, _ = diagnosis_for(expected)
    lines = text.split("\n")
    if found.log_line is None or not 0 < found.log_line <= len(lines):
        return None
    return lines, found.log_line - 1


def kept(expected: Path, name: str, found: list[diagnose.Diagnosis]) -> str:
    """"kept", "zero" (nothing found: a silent zero) or "changed"."""
    if not found:
        return "zero"
    sidecar = load(expected)[1]
    drv = sidecar.get("drv")
    if drv and name not in DRV_LOST:
        named = [d for d in found if d.drv and d.drv.endswith("-" + drv)]
        return "kept" if named and named[0].type.value == sidecar["type"] else "changed"
    ok = found[0].type.value == sidecar["type"] or (drv is not None and any(
        d.type.value == sidecar["type"] and (d.drv is None or d.drv.endswith("-" + drv))
        for d in found))
    return "kept" if ok else "changed"


def damaged(expected: Path, name: str) -> str | None:
    aim = target(expected)
    if aim is None:
        return None
    key = f"{expected.parent.name}/{expected.name}"
    return DAMAGES[name](*aim, key)


@functools.cache
def found_in(expected: Path, name: str) -> list[diagnose.Diagnosis] | None:
    """What is read in a sample's damaged copy (None: the damage does not apply), once."""
    text = damaged(expected, name)
    return None if text is None else diagnose.parse_log(text.split("\n"))


def outcome(expected: Path, name: str) -> str | None:
    found = found_in(expected, name)
    return None if found is None else kept(expected, name, found)


def table(samples: list[Path], names: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per damage: the samples kept, changed, silent zeros."""
    out: dict[str, dict[str, list[str]]] = {}
    for name in names:
        row: dict[str, list[str]] = {"kept": [], "changed": [], "zero": []}
        for p in samples:
            result = outcome(p, name)
            if result is not None:
                row[result].append(str(p.relative_to(DATA)).removesuffix(".expected.json"))
        out[name] = row
    return out


# damages measured, not held per sample (tests/data/fresh/README.md, "Copy damage as a
# wrapping"): each destroys what the classification needs, or is left to the reader of Nix's
# words inside a line (diagnose, reader300's), and is held only to never reading a log that
# still holds an error line as green where it says so
DAMAGE_LIMITS = {
    "word-eaten": "Nix's whole \"error: \" and a letter of the message eaten: what is left "
                  "(\"nable to download …\") is no line of Nix's any more, only its failure heads "
                  "before a store path come back (\"uilder for '/nix/store/…\")",
    "tail-cut": "the lines below the failure's carried its kind (a Reason, a hash's got:, a "
                "frame's error)",
    "tail-cut-mid-line": "as tail-cut, the last line cut inside",
    "frame-cut": "an evaluation error's message stands below its frames (2.4+): the frames alone "
                 "are the trace",
    "headerless": "a builder's tail without Nix's header names no derivation and no exit code; "
                  "where the tail holds no \"> \" quote nor pointer it is any program's output",
    "word-wrapped": "a line broken inside a word at an arbitrary place: read as two lines",
    "narrow-terminal": "every line broken under 72 columns: the wraps are joined only at the "
                       "log's longest line's width (logshape._rejoined)",
    "flattened": "a whole log one line: only Nix's own line runs (a message's start, the repl's "
                 "prompt) and failure heads before a store path are split again; Nix's words "
                 "after prose in one line are the line reader's",
    "pairs-joined": "as flattened, two lines a line",
    "code-spans": "a code span around each line: a span holding a failure whole is read, a span "
                  "around a part of Nix's block (its frames, a box's line) is not",
    "gt-glued": "a \">\" glued to a line inside Nix's block reads as Nix's quote of a builder's "
                "line (what it is without the blank)",
}
HELD = [name for name in DAMAGES if name not in DAMAGE_LIMITS]
# a sample a held damage still changes, and why (it meets every other)
SAMPLE_LIMITS = {
    # a copy holding one line of a builder's tail as Nix quotes it ("       > …", its report left
    # out), read as a failed build by that seven-column quote alone (session 9's b097f2fe): a
    # list mark or a stamp glued on takes the column away, and nothing else says a build failed
    *((damage, f"fresh/{sample}.text") for damage in ("md-list", "stamp-glued") for sample in (
        "heldout-363/nixos-rockchip-46-uboot-radxa-defconfig-one-tail-line",
        # (its tail only, the first line's "       " eaten by the copy: g390's)
        "heldout-399/nixpkgs-375616-clisp-darwin-comment-headerless-quoted-clang-tail")),
    # Nix's message whose rest on the line below carried its kind: the selection that starts on
    # the line's text drops Nix's indentation too, so the next line is no longer the message's
    *(("selection-late", f"fresh/{sample}") for sample in (
        "heldout-121/l-lin-blog-python-version-mismatch-frame-tail.text",
        "heldout-181/flox-3675-lock-flake-installable-looking-up-file.text",
        "heldout-4/nix-4322-no-ssh-binary.text")),
    # nix-build 2.3's header, its builder's lines above it (not its tail below it): without
    # the lines above, the builder's own "error" lines the header follows are lost
    *(("selection-late", f"fresh/{sample}") for sample in (
        "heldout-178/bf-sde-readme-requirefile-executing-none-nix-2-3.text",
        "heldout-305/nixpkgs-58240-exec-format-error-primus-lib-exit-1.text")),
    # a timeout read from the "building '…'" line above it (2.34's bare "timed out")
    ("selection-late", "sources/nix-2.34-timeout.text"),
    # a cut above the failure's line took a line that decides its kind: the remote builder's
    # refusal ("cannot build on 'ssh://…': error: failed to start SSH connection") above
    # "Failed to find a machine" (then platform, as the rest says), a builder's output above
    # 2.3's header, the message above a frame, the timeout's "building '…'" line
    *(("head-cut", sample) for sample in (
        "nix-2.26/builder-down.text", "nix-2.8/builder-down.text",
        "fresh/heldout-capt-3/infra-1416-buildbot-builder-down.text",
        "fresh/heldout-capt-3/nix-rosetta-builder-15-vm-not-up.text",
        "fresh/heldout-121/l-lin-blog-python-version-mismatch-frame-tail.text",
        "fresh/heldout-305/nixpkgs-58240-exec-format-error-primus-lib-exit-1.text",
        "fresh/heldout-39/nixified-ai-17-truncated-gzip-input.text",
        "fresh/heldout-85/nix-16212-shallow-revcount-flake-compat-quote.text",
        "public/hydra-log-page-builder-error.text", "sources/nix-2.34-timeout.text")),
    # a failure read from Nix's words inside a writer's text (a code comment's "# FIX: error:
    # Cannot build …", a strike-through, a progress line glued before the header), where the
    # reader takes them only with the store path as Nix printed it, hash and all (against false
    # reds); and a source whose name is a hash itself ("…-vxk2…-source"), elided to its name
    *(("hash-elided", f"fresh/{sample}") for sample in (
        "heldout-117/index-55222167139-nix-comment-fix-required-system-not-available.text",
        "heldout-26/nix-13035-struck-through-flake-nix.text",
        "heldout-292/nixpkgs-357693-xpadneo-rebuild-evaluating-progress-glued-to-builder-line"
        ".text",
        "heldout-54/Solaar-Flake-9-opening-directory-in-input-source.text")),
    # a timestamp glued before an indented line takes its first blank (as a stamp's own): Nix's
    # seven columns before a NixOS assertion's bullet read six (what test_logshape's
    # WRAPPING_LIMITS says of it under dedented)
    *(("stamp-glued", f"fresh/{sample}") for sample in (
        "heldout-125/doctor-cluster-config-pr-863-stateversion-assertion-line-alone.text",)),
    # a list's mark before a line whose start carried its reading: 2.3's message without
    # "error: " ("unable to start any build; …"), a progress bar a message is glued to, a
    # bullet of NixOS's assertion list, a sentence
    *(("md-list", f"fresh/{sample}") for sample in (
        "heldout/nix-2238-max-jobs.text", "heldout-19/yazelix-448-option-in-prose.text",
        "heldout-42/autofirma-nix-4-bar-glued-maven-deps-hash-mismatch.text",
        "heldout-capt-3/nocodb-12278-bar-glued-hash.text",
        "heldout-125/doctor-cluster-config-pr-863-stateversion-assertion-line-alone.text")),
}
# every sample of the spent corpus under every damage is CI_NIX_FULL_CORPUS=1's (some 50,000
# readings, a minute or two); the suite reads the samples whose crc32 falls in one of SHARE
# parts, the same ones whatever joins the corpus (~75 samples, each damage's reading once)
FULL_CORPUS = os.environ.get("CI_NIX_FULL_CORPUS") == "1"
SHARE = 32


def read_here(expected: Path) -> bool:
    name = str(expected.relative_to(DATA))
    return FULL_CORPUS or zlib.crc32(name.encode()) % SHARE == 0


def sample_name(expected: Path) -> str:
    return str(expected.relative_to(DATA)).removesuffix(".expected.json")


@pytest.mark.parametrize("name", HELD)
def test_a_damage_keeps_every_samples_classification(name: str) -> None:
    """Every spent sample (a 32nd in the suite) under one copy damage keeps its type, and
    its derivation where the sidecar names one, except the limits listed."""
    changed = []
    for expected in CORPUS:
        if read_here(expected) and (name, sample_name(expected)) not in SAMPLE_LIMITS:
            result = outcome(expected, name)
            if result not in (None, "kept"):
                changed.append(f"{sample_name(expected)}: {result}")
    assert not changed, f"{len(changed)} changed:\n" + "\n".join(changed)


def test_each_sample_limit_is_still_one() -> None:
    for name, sample in SAMPLE_LIMITS:
        assert outcome(DATA / f"{sample}.expected.json", name) not in (None, "kept"), sample


def says_error(text: str) -> bool:
    """Whether a damaged copy still holds a line of Nix's saying a failure (test_logshape's
    reading of a captured line without the normaliser: no warning's, trace's or builder's)."""
    return any(says_it_failed(line) for line in text.split("\n"))


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_log_still_saying_error_is_never_green(name: str) -> None:
    """A silent zero is the worst reading: under every damage, held or not, a sample whose
    damaged copy still holds Nix's "error: " at a line's start or after a blank yields a
    failure (a 32nd of the samples in the suite)."""
    zeros = []
    for expected in CORPUS:
        if read_here(expected) and (text := damaged(expected, name)) is not None \
                and says_error(text) and not found_in(expected, name):
            zeros.append(sample_name(expected))
    assert not zeros, f"{len(zeros)} silent zeros:\n" + "\n".join(zeros)


SAMPLES = [p for p in CORPUS if zlib.crc32(sample_name(p).encode()) % SHARE == 1]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.sampled_from(list(DAMAGES)), st.integers(0, 10 ** 6))
def test_a_damage_anywhere_never_reads_a_log_saying_error_as_green(expected: Path, name: str,
                                                                   seed: int) -> None:
    """Any damage, at any of its places (the key its crc picks by drawn), of any sample: where
    the copy still says "error: " a failure is read."""
    aim = target(expected)
    if aim is None:
        return
    text = DAMAGES[name](*aim, f"{sample_name(expected)}#{seed}")
    if text is not None and says_error(text):
        assert diagnose.parse_log(text.split("\n")), (name, seed)


VICTIM = "/nix/store/" + "v" * 32 + "-victim-2.0.drv"


def read(line: str) -> list[tuple[str, str]]:
    return [(d.type.value, d.kind.value) for d in diagnose.parse_log([line])]


@pytest.mark.parametrize("eaten", ["rror: ", "ror: ", "or: "])
def test_a_line_whose_head_a_copy_ate_is_nixs_line(eaten: str) -> None:
    assert read(f"{eaten}attribute 'foo' missing") == [("eval", "missing-attribute")]
    # (also under the line it was copied after: no terminal's wrap of that line)
    found = diagnose.parse_log(["warning: Git tree '/x' is dirty",
                                f"{eaten}undefined variable 'x'"])
    assert [(d.type.value, d.kind.value) for d in found] == [("eval", "undefined-variable")]
    for head in ("uilder for ", "ilder for ", "r for "):
        found = diagnose.parse_log([f"{head}'{VICTIM}' failed with exit code 2;"])
        assert [(d.type.value, d.drv, d.exit_code) for d in found] == [("build", VICTIM, 2)]
    # never a sentence's: "r:" only before a quote, and no prose word is left of Nix's heads
    assert read("r: 4.3.1") == read("For: the record") == read("ilder for the win") == []


def test_nixs_lines_a_copy_ran_together_are_lines_again() -> None:
    assert read("warning: Git tree '/x' is dirty error: attribute 'foo' missing") == [
        ("eval", "missing-attribute")]
    assert read("nix-repl> :lf error: cannot use ':load-flake' without a path specified.") == [
        ("other", "error")]
    assert read(f"tailcat-go-modules> done Running phase: x error: hash mismatch in fixed-output "
                f"derivation '{VICTIM}': specified: sha256-A got: sha256-B") == []  # a builder's
    assert read(f"see the log error: builder for '{VICTIM}' failed with exit code 2;") == [
        ("build", "builder")]
    # an error Nix nests inside its message is the message's: one failure, or a warning's none
    assert read("error: cannot open connection to remote store 'daemon': error: unexpected "
                "end-of-file") == [("other", "nix")]
    assert read("warning: AWS authentication failed: AWS authentication error: 'aws-c-auth: "
                "x' (6153)") == []


def test_store_paths_a_transcription_broke_are_whole_again() -> None:
    whole = [("build", VICTIM, 2)]
    hashed = VICTIM.removesuffix("-victim-2.0.drv")
    for damaged_path in (f"{hashed[:20]} {hashed[20:]}-victim-2.0.drv'",  # a space in the hash
                         f"{VICTIM[:-1]}u'",  # .dru
                         ):
        found = diagnose.parse_log([f"error: builder for '{damaged_path} failed with exit code 2"])
        assert [(d.type.value, d.drv, d.exit_code) for d in found] == whole, damaged_path
    found = diagnose.parse_log([f"error: builder for {VICTIM}' failed with exit code 2"])
    assert [(d.type.value, d.drv, d.exit_code) for d in found] == whole  # its quote lost
    # a path inside another quote keeps it: "run 'nix log /nix/store/…drv'"
    line = f"For full logs, run 'nix log {VICTIM}'."
    assert [line.text for line in logshape.normalise([line])] == [line]


if __name__ == "__main__":
    import json
    import sys
    every = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rows = table(CORPUS[::every], sys.argv[3:] or list(DAMAGES))
    print("| damage | applies | kept | changed | silent zeros |\n|---|---|---|---|---|")
    for name, row in rows.items():
        n = sum(len(v) for v in row.values())
        print(f"| {name} | {n} | {len(row['kept'])} | {len(row['changed'])} | "
              f"{len(row['zero'])} |")
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(json.dumps(rows, indent=1))
