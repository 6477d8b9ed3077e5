"""Nix output -> typed failures with a one-line message, the log tail and a hint.

Reads the texts of Nix 2.0 to 2.29+ and Lix: plain `nix build` output (errors are blocks
that start at `error:` and continue on indented lines), `--log-format internal-json` events,
and the stderr of a failed `nix eval` through ci-nix's helper flake.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ci_nix import logshape, logtext, regex_literal
from ci_nix.logtext import TAIL_LINES, CondensedLog, clean, drv_name, short_drv, tail
from ci_nix.models import Failure, FailureType, Flake, SourceTree
from ci_nix.regex_literal import Choice, ascii_folded, holds, required_literal, required_literals
from ci_nix.report import untrusted
from ci_nix.tools import files, nixlog
from ci_nix.words import count


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Kind(StrEnum):
    """What exactly failed: finer than FailureType, and what a hint is chosen by."""

    BUILDER = "builder"
    SIGNAL = "signal"
    OOM = "oom"
    MISSING_ATTRIBUTE = "missing-attribute"
    UNTRACKED_FILE = "untracked-file"
    INFINITE_RECURSION = "infinite-recursion"
    MISSING_FLAKE_OUTPUT = "missing-flake-output"
    MISSING_STORE_PATH = "missing-store-path"
    DOWNLOAD = "download"
    SUBSTITUTION = "substitution"
    NO_OUTPUT = "no-output"
    IMPORT_FROM_DERIVATION = "import-from-derivation"
    HASH_MISMATCH = "hash-mismatch"
    MAX_SILENT_TIME = "max-silent-time"
    TIMEOUT = "timeout"
    SYSTEM_FEATURE = "system-feature"
    PLATFORM = "platform"
    DEPENDENCY = "dependency"
    NIX = "nix"  # Nix itself, its store, daemon or configuration failed, not the expression
    NO_NETWORK = "no-network"  # a builder could not reach the network (the sandbox has none)
    LOG_LIMIT = "log-limit"
    FOD_REFERENCES = "fod-references"
    # an output broke a check its derivation declares: allowed/disallowed references, a size
    # limit, a reference cycle, `--check` finding it not reproducible
    OUTPUT_CHECK = "output-check"
    SUMMARY = "summary"  # "build of ... failed": Nix's recap of failures named before
    ASSERT = "assert"
    UNDEFINED_VARIABLE = "undefined-variable"
    SYNTAX = "syntax"
    TYPE = "type"
    THROW = "throw"
    ERROR = "error"


@dataclass(frozen=True)
class Diagnosis:
    """One failure Nix reported, with every detail the text gives."""

    type: FailureType
    kind: Kind
    message: str  # one line
    drv: str | None = None
    exit_code: int | None = None
    dependency: str | None = None  # the failed dependency, where known
    output: str | None = None  # the output path a message names instead of its derivation
    file: str | None = None  # relative to the flake source (= the repo for git flakes)
    line: int | None = None
    column: int | None = None
    repo: str | None = None  # the workspace repo `file` is in, where known
    specified: str | None = None  # hash mismatch
    got: str | None = None
    hint: str | None = None
    log: str = ""
    log_line: int | None = None  # where in a captured log Nix reported it (1-based)
    system: str | None = None  # the system a platform failure needed
    # Nix relays a remote builder's failure of the build ("build of 'X' on 'host' failed: …"):
    # X's build ran, there
    remote: bool = False

    def failure(self) -> Failure:
        return Failure(type=self.type, message=self.message, log=self.log, drv=self.drv,
                       hint=self.hint, file=self.file, line=self.line, column=self.column,
                       repo=self.repo)


# ---------------------------------------------------------------------------------------------
# Hints: what to do about the errors people hit most.

HINTS = {
    Kind.INFINITE_RECURSION: (
        "a value depends on itself. In NixOS/home-manager modules this is usually `config` used "
        "inside `imports` (imports are resolved before config exists) or a conditional definition "
        "written as `if cfg.enable then { ... } else { }` instead of `lib.mkIf cfg.enable { ... }`;"
        " rerun with --show-trace to see the cycle"),
    Kind.MISSING_ATTRIBUTE: (
        "check the name for a typo (`nix flake show` lists a flake's outputs). If it comes from a "
        "flake input: the input may be named differently in `inputs`, or pinned through `follows` "
        "to a version without it (`nix flake metadata` shows what is locked)"),
    Kind.MISSING_FLAKE_OUTPUT: (
        "the flake has no such output: `nix flake show` lists what it provides; check the "
        "attribute name and the system (x86_64-linux, aarch64-linux, ...)"),
    Kind.UNTRACKED_FILE: (
        "flakes in a git repository see only files git tracks: `git add` the file (or "
        "`git add -N` to track it without staging its content)"),
    Kind.MISSING_STORE_PATH: (
        "the store path is not in the local store: build it first, or configure a binary cache "
        "that has it (`substituters` and `trusted-public-keys`)"),
    Kind.OOM: (
        "killed by signal 9, usually the kernel's out-of-memory killer: lower parallelism "
        "(`cores`, `max-jobs`, enableParallelBuilding; ci-nix builds with `max-jobs = auto` "
        "unless Nix's configuration sets it, e.g. `nix-options: {max-jobs: 1}`), or give the "
        "runner more memory or swap; `dmesg` on the runner confirms"),
    Kind.DOWNLOAD: (
        "a download failed: check the URL and the runner's network or proxy; if a binary cache "
        "is down, `--fallback` builds from source instead"),
    Kind.SUBSTITUTION: (
        "fetching from the binary cache failed: check the substituter is reachable, or pass "
        "`--fallback` to build from source"),
    Kind.NO_OUTPUT: "the builder exited successfully but did not create its output path ($out)",
    Kind.NIX: (
        "Nix itself failed, not the expression or a build: check that the daemon runs and its "
        "socket is reachable, the disk has space, and `substituters` / `trusted-public-keys` "
        "are well-formed and match the caches' signing keys"),
    Kind.NO_NETWORK: (
        "the build could not reach the network. A derivation without a fixed output hash builds "
        "in a sandbox without network: fetch what it needs in a fixed-output derivation (a "
        "fetcher such as fetchurl/fetchgit, or `outputHash` + `outputHashMode`) and pass the "
        "result in; if this is a fetcher, check the runner's DNS and proxy"),
    Kind.IMPORT_FROM_DERIVATION: (
        "the expression builds a derivation during evaluation (import-from-derivation), which "
        "`allow-import-from-derivation = false` forbids: avoid the IFD, or allow it in nix.conf "
        "(`allow-import-from-derivation = true`)"),
}


_PULL_IMAGE = ("; for a container image (`skopeo copy docker://…`), use "
               "`dockerTools.pullImage` (imageName, imageDigest, sha256) instead")


def _hash_hint(specified: str, got: str) -> str:
    return (f"the fixed-output hash is out of date: if the new source is expected, replace "
            f"{specified} with {got} in the derivation")


# what a system name looks like (x86_64-linux, aarch64-darwin, i686-freebsd13, wasm32-wasi)
_SYSTEM_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def _platform_hint(wanted: str, features: str, have: str) -> str:
    if features:
        return (f"the derivation requires the system features {{{features}}}, which this machine "
                f"({have}) does not offer: add them to `system-features` in nix.conf, or use a "
                "remote builder that has them")
    return (f"the derivation is for {wanted} but this machine is {have}: add a builder for "
            f"{wanted} (remote `builders`, or emulation via `boot.binfmt.emulatedSystems`), or "
            "leave that system out of `systems:` in ci-nix.yaml")


# ---------------------------------------------------------------------------------------------
# One error message -> Diagnosis.

# the hash part: Nix's 32 characters, or what people put there when they paste ("<hash>", "...",
# "(...)")
# (and a writer's elision inside it, its head and tail kept: "psa[...]r5kj", "psa…r5kj")
_HASH = (r"(?:[a-z0-9]{32}|<hash>|\.\.\.|…|\((?:\.\.\.|…)\)|x{1,32}|"
         r"[a-z0-9]{1,31}(?:\[(?:\.\.\.|…)\]|\.\.\.|…)[a-z0-9]{1,31})")
_NAME = 255  # a store path's name is at most 211 characters (a name read from a search stops)
# (the outputs after a derivation, "!out", "^out,dev", "^*": output names only; any text up to
# the next quote or blank was scanned from each "!" of a line anew, from each of its many starts)
_OUTPUTS = r"(?:[!^][\w+.?=*,-]{0,1000}+)?"
_DRV = rf"(?P<drv>/nix/store/{_HASH}-[^'’\s]{{1,{_NAME}}}?\.drv){_OUTPUTS}"
# How far apart the parts of one message of Nix's stand, at most (a regex that looks further
# from each of many starts in one line takes time quadratic in the line: a build prints those)
_NEAR = 500
_GAP = r".{0,1000}?"  # from a hash mismatch's first line to its "specified:" (Lix: a URL between)
# a derivation (with an optional !out/^out) or an output path
_DRV_PATH = re.compile(_DRV)
# a derivation in a store at another directory than /nix/store (NIX_STORE_DIR, a private store
# under a home: "/home/u/opt/nix/store/<hash>-x.drv"), as a builder line names it
_OTHER_STORE_DRV = re.compile(r"(?:/[^'’`\s/]+)+/nix/store/[0-9a-z]{32}-[^'’`\s/]+\.drv")
_STORE_PATH = rf"(?P<path>/nix/store/{_HASH}-[^'’\s]{{1,{_NAME}}}?){_OUTPUTS}"
_Q = "['‘`]"  # Nix 1.x/2.0 used curly quotes
_QE = "['’]"
# What is quoted ([^'’‘`]+ between _Q and _QE) holds no opening quote either: from each of a
# line's many "path ‘" a run to the closing quote went on to the line's end (a `throw` of
# "path ‘" * 8000 took 20 s to classify); stopped at the next opening, the runs do not overlap.
# one machine of build-remote's list: "([x86_64-linux, i686-linux], 4, [kvm], [])" (Nix <= 2.17
# without the brackets: "(x86_64-linux, 4, kvm, )")
_MACHINE = re.compile(r"\(\[?(?P<systems>[^\]()]*?)\]?, \d+, \[?(?P<features>[^\]()]*?)\]?, "
                      r"\[?[^\]()]*\]?\)")
# build-remote (a warning, then the local build's own refusal, or nothing more): no machine of
# `builders` has the system and features; it names the derivation without the store dir (its
# lines may come joined: they are short and unindented, like a hard wrap)
_NO_MACHINE = re.compile(
    r"Failed to find a machine for remote build!\s*derivation: (?P<name>\S+)\s*"
    r"required \(system, features\): \((?P<wanted>[^,()]+), \[?(?P<features>[^\]()]*)\]?\)"
    r"(?P<machines>(?:\s*\d+ available machines:\s*\(systems[^)]*\))?"
    r"(?:\s*\(\[?[^\]()]*\]?, \d+, \[?[^\]()]*\]?, \[?[^\]()]*\]?\))*)")
# Nix's pointer to a failed build's whole log, wherever it stands in a line (a copy that joined
# the lines of Nix's report keeps it mid-line)
_FULL_LOG_HINT = re.compile(rf"For full logs, run:?\s*['‘]?(?:\x1b\[[0-9;]*m)?"
                            rf"(?:nix log|nix-store -l) {_DRV}")

# a "Cannot build '…'." line with no "Reason:" after it (the line may be cut at its path's end)
_UNREASONED = re.compile(rf"(?m)^[ \t]*(?:error: )?Cannot build {_Q}{_DRV}(?:{_QE}\.?)?[ \t]*$")
_DISK_SPACE_NOTE = re.compile(r"note: build failure may have been caused by lack of free disk "
                              r"space")
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("hash-mismatch", re.compile(
        rf"hash mismatch in fixed-output derivation {_Q}(?P<drv>/nix/store/[^'’\s]+){_QE}:"
        rf"{_GAP}(?:specified|wanted):\s*(?P<specified>\S+)\s+got:\s*(?P<got>\S+)", re.DOTALL)),
    # the same with the path's quotes lost (a copy through markdown, a tool re-printing it)
    ("hash-mismatch-unquoted", re.compile(
        r"hash mismatch in fixed-output derivation (?P<drv>/nix/store/[^'’\s:]+):"
        rf"{_GAP}(?:specified|wanted):\s*(?P<specified>\S+)\s+got:\s*(?P<got>\S+)", re.DOTALL)),
    ("hash-mismatch-old", re.compile(
        rf"fixed-output derivation produced path {_Q}(?P<drv>/nix/store/[^'’\s]+){_QE} with "
        rf"(?P<algo>\w+) hash {_Q}(?P<got>[^'’‘`]+){_QE} instead of the expected hash "
        rf"{_Q}(?P<specified>[^'’‘`]+){_QE}")),
    # Nix 1.x checking a fixed output, which it names by its output path (no derivation):
    # "output path ‘…’ should have sha256 hash ‘…’, instead has ‘…’" (to 1.11; `…' before 1.8;
    # "r:sha256" for a recursive hash) and 1.12pre's "output path ‘…’ has sha256 hash ‘…’ when
    # ‘…’ was expected" (the path also in a store outside /nix/store, a store under $HOME)
    ("hash-mismatch-1x", re.compile(
        rf"output path {_Q}(?P<path>/[^'’‘`\s]{{1,4096}}){_QE} should have "
        rf"(?P<algo>(?:r:)?\w+) hash {_Q}(?P<specified>[^'’‘`]+){_QE}, instead has "
        rf"{_Q}(?P<got>[^'’‘`]+){_QE}")),
    ("hash-mismatch-1x-when", re.compile(
        rf"output path {_Q}(?P<path>/[^'’‘`\s]{{1,4096}}){_QE} has (?P<algo>(?:r:)?\w+) hash "
        rf"{_Q}(?P<got>[^'’‘`]+){_QE} when {_Q}(?P<specified>[^'’‘`]+){_QE} was expected")),
    # builtins.fetchurl / fetchTarball during evaluation
    ("hash-mismatch-download", re.compile(
        rf"hash mismatch in file downloaded from {_Q}(?P<url>[^'’‘`]+){_QE}:?\s*"
        r"(?:specified|wanted):\s*(?P<specified>\S+)\s+got:\s*(?P<got>\S+)")),
    # (Nix 2.1: "…: got hash '…' instead of the expected hash '…'")
    ("hash-mismatch-download-got", re.compile(
        rf"hash mismatch in file downloaded from {_Q}(?P<url>[^'’‘`]+){_QE}: got hash "
        rf"{_Q}(?P<got>[^'’‘`]+){_QE} instead of the expected hash {_Q}(?P<specified>[^'’‘`]+)"
        rf"{_QE}")),
    ("cannot-build", re.compile(
        rf"Cannot build {_Q}{_DRV}{_QE}\.?\s*Reason:\s*(?P<reason>[^\n]*)")),
    # the same with the derivation's path elided by a copy ("'/nix/store/...name.drv'",
    # "'/nix/store/…-name.drv'", "'<drv>'"): the Reason is Nix's, the derivation is not known
    ("cannot-build-elided", re.compile(
        rf"Cannot build {_Q}(?:/nix/store/(?:\.\.\.|…)[^'’\s]{{0,{_NAME}}}|<[^'’<>\s]{{1,40}}>)"
        rf"{_QE}\.?\s*Reason:\s*(?P<reason>[^\n]*)")),
    # the same block where a copy left no quoted store path to name: a bare name, a path
    # without its quotes, an elision ("Cannot build ... Reason: 1 dependency failed."), and
    # its lines maybe joined; only as the message the text starts with (such a name is weak
    # evidence: in a copy that joined a log's lines it may follow the error that failed first,
    # a hash mismatch of "REDACTED.drv") (the name holds no blank: the run to "Reason:" is one
    # name long)
    ("cannot-build-loose", re.compile(
        rf"\A\s*(?:error:\s*)?Cannot build {_Q}?(?P<subject>[^\s'’‘`]{{1,{_NAME}}}?){_QE}?\.?"
        r"[ \t]*(?:\n[ \t]*)?Reason:[ \t]*(?P<reason>[^\n]*)")),
    # (the path's quotes may be lost: a page's rendering takes ‘…’ or `…' for markup)
    ("builder-exit", re.compile(
        rf"builder for {_Q}?{_DRV}{_QE}? failed with exit code (?P<code>\d+)")),
    ("signal", re.compile(
        rf"builder for {_Q}?{_DRV}{_QE}? failed due to signal (?P<signal>\d+)"
        r"(?: \((?P<name>[^)]*)\))?")),
    ("no-output", re.compile(
        rf"builder for {_Q}?{_DRV}{_QE}? failed to produce output path")),
    # Nix 1.x's cache of failed builds (build-cache-failure): an output path whose build failed
    # before is not built again (build.cc's DerivationGoal)
    ("cached-failure", re.compile(
        rf"builder for {_Q}{_STORE_PATH}{_QE} failed previously \(cached\)")),
    # Named by the derivation (nix build) or by an output path (Hydra, `nix-store --serve`)
    ("timeout", re.compile(
        rf"building of {_Q}{_STORE_PATH}{_QE}(?: from \.drv file)?(?: on {_Q}[^'’‘`]*{_QE})? "
        r"timed out after (?P<secs>\d+) seconds(?P<silence> of silence)?")),
    # the same, reworded or wrapped by a remote builder: "build of '…drv' on '…' failed: …"
    ("timeout-other", re.compile(
        rf"{_Q}{_DRV}{_QE}[^\n]{{0,{_NEAR}}}?\btimed out after (?P<secs>\d+) seconds"
        r"(?P<silence> of silence)?")),
    # Nix 1.x to 2.28, the features part since 2.1; messages get wrapped across lines
    ("platform", re.compile(
        rf"a {_Q}(?P<wanted>[^'’‘`]+){_QE}(?:\s+with features \{{(?P<features>[^}}]*)\}})?\s+is "
        rf"required\s+to\s+build\s+{_Q}{_DRV}{_QE},\s+but\s+I\s+am\s+a\s+"
        rf"{_Q}(?P<have>[^'’‘`]+){_QE}")),
    # the same with the derivation's path elided by a copy ("'/nix/store/'", "'/nix/store/…'",
    # "'<drv>'"): the platforms are what the refusal says, the derivation is not known
    ("platform-elided", re.compile(
        rf"a {_Q}(?P<wanted>[^'’‘`]+){_QE}(?:\s+with features \{{(?P<features>[^}}]*)\}})?\s+is "
        rf"required\s+to\s+build\s+{_Q}(?:/nix/store/(?:\.\.\.|…)?|<[^'’<>\s]{{1,40}}>){_QE},"
        rf"\s+but\s+I\s+am\s+a\s+{_Q}(?P<have>[^'’‘`]+){_QE}")),
    # the same cut by a copy after "required to build" (a task list's quote, a cut line): the
    # system wanted is what it says, the derivation and this machine are not known
    ("platform-cut", re.compile(
        rf"a {_Q}(?P<wanted>[^'’‘`]+){_QE}(?:\s+with features \{{(?P<features>[^}}]*)\}})?\s+is "
        rf"required\s+to\s+build\b(?:\s+{_Q}{_DRV}{_QE})?")),
    # Nix 2.24-2.28's refusal on an aarch64-darwin without Rosetta, in place of the one above
    # (local-derivation-goal.cc): the two systems it names
    ("platform-rosetta", re.compile(
        r"--install-rosetta`? to enable your (?P<have>[\w.-]{1,60}) to run programs for "
        r"(?P<wanted>[\w.-]{1,60})")),
    # a system feature the derivation requires that this platform cannot give (2.18+,
    # local-derivation-goal.cc: "feature 'uid-range' is not supported on this platform")
    ("feature-unsupported", re.compile(
        rf"\bfeature {_Q}(?P<feature>[\w.-]{{1,60}}){_QE} is not supported on this platform")),
    ("dependencies", re.compile(
        rf"(?<!\d)(?P<n>\d+) dependenc(?:y|ies) of derivation {_Q}{_DRV}{_QE} failed to build")),
    ("dependencies-cut", re.compile(
        r"(?<!\d)(?P<n>\d+) dependenc(?:y|ies) of derivation ['‘`]/nix/store/[^'’\s]*$")),
    # the same with the store path elided by a copy ("'.../gui-apps-guard.drv'",
    # "'/nix/store/…-x.drv'"): a dependent's failure, the derivation not known
    ("dependencies-elided", re.compile(
        rf"(?<!\d)(?P<n>\d+) dependenc(?:y|ies) of derivation {_Q}(?:/nix/store/)?(?:\.\.\.|…)"
        rf"[^'’‘`\s]{{0,{_NAME}}}{_QE} failed to build")),
    # the same where a copy damaged the path (its quotes lost, a space a recognition put in its
    # hash): a dependent's failure, of the derivation named where the path is still one
    ("dependencies-damaged", re.compile(
        rf"(?<!\d)(?P<n>\d+) dependenc(?:y|ies) of derivation {_Q}?(?:{_DRV}|/nix/store/"
        rf"(?:[^'’`\s]| (?=[^'’`\s])){{1,{_NAME}}}){_QE}? failed to build")),
    ("dependencies-old", re.compile(
        rf"cannot build derivation {_Q}{_DRV}{_QE}: (?P<n>\d+) dependencies couldn't be built")),
    ("substitution", re.compile(
        rf"some substitutes for the outputs of derivation {_Q}{_DRV}{_QE} failed")),
    ("substitution-path", re.compile(
        rf"could not download {_Q}(?P<path>/nix/store/[^'’\s]+){_QE} from any binary cache|"
        # (Nix 1.x's substituter process failing, or leaving nothing, SubstitutionGoal::finished:
        # "fetching path ‘…’ failed with exit code 1", "substitute did not produce path ‘…’")
        rf"(?:fetching path {_Q}(?=/nix/store/[^'’\s]+{_QE} (?:failed|died))|substitute did "
        rf"not produce path {_Q})(?P<produced>/nix/store/[^'’\s]+){_QE}")),
    # (1.x's build-remote.pl relays the remote's recap with its host: "… failed on ‘host’")
    ("build-summary", re.compile(rf"^(?:error: )?build of {_Q}?/nix/store/.*{_QE}? failed"
                                 rf"(?: on {_Q}[^'’‘`\n]{{1,4096}}{_QE})?$")),
    # the same recap retyped with the derivations' names only, no store path (an issue's title:
    # "error: build of a-1.0.drv, b-2.0.drv failed"): builds failed, none named
    ("build-summary-bare", re.compile(
        rf"^error: build of {_Q}?[\w.+-]{{1,211}}\.drv{_QE}?(?:, {_Q}?[\w.+-]{{1,211}}\.drv{_QE}?)"
        r"{0,50} failed$")),
    # the same recap cut by a copy inside its list of derivations, before its "failed"
    # (nixpkgs#378797's second quote): still the recap, no error of its own
    ("build-summary-cut", re.compile(
        rf"^(?:error: )?build of {_Q}/nix/store/[^'’\s]*(?:{_QE}, {_Q}/nix/store/[^'’\s]*)*"
        rf"{_QE}?$")),
    # `nix flake check`: "failed to build attribute 'checks.…', build of '….drv^*' failed: <why>"
    # (a why the patterns above read comes first; without one, that build failed)
    ("check-build", re.compile(
        rf"failed to build attribute {_Q}[^'’\n]{{1,{_NAME}}}{_QE}, build of {_Q}{_DRV}{_QE} "
        r"failed")),
    # an output the build registered is not what its derivation declares (Nix master, 2.36
    # to be: derivation-check.cc, derivation-builder.cc, BuildResult's OutputRejected): a
    # content address of another method or algorithm, or none for a floating one; another
    # name; an output it does not have, or none submitted (builder-rpc)
    ("output-rejected", re.compile(
        rf"(?:content-addressing derivation|derivation|builder for) {_Q}{_DRV}{_QE} "
        rf"(?:output {_Q}(?P<output>[^'’\s]{{1,{_NAME}}}){_QE} \(at {_Q}{_STORE_PATH}{_QE}\) was "
        r"(?:not content-addressed|hashed with (?:method|algorithm)|named)|submitted unknown "
        # (2.18-2.2x's registerOutputs: an output the builder left that the derivation's
        # initial outputs do not hold, "builder for '….drv' has no initial output for 'out'")
        r"output|failed to submit output path|has no initial output for)")),
    # an output path the build left that Nix rejects (2.18-2.35, derivation-builder.cc and
    # local-derivation-goal.cc; 2.35's PathFmt quotes the path with double quotes): setuid or
    # group-writable files, a text-hashed output referring to itself, a flat fixed output that
    # is no plain file
    ("output-path-rejected", re.compile(
        rf"(?:suspicious ownership or permission on |output path )[\"'‘`]?{_STORE_PATH}[\"'’]?"
        rf"(?:(?: for output {_Q}[^'’\s]{{1,{_NAME}}}{_QE})?; rejecting this build output| has "
        r"illegal content address| should be a non-executable regular file|"
        # (2.18-2.2x's registerOutputs on an output it found no stat of: "output path
        # /nix/store/… without valid stats info", the path unquoted)
        r" without valid stats info)")),
    # the rest name no derivation, or name it in a wording only some versions use
    ("builder-other", re.compile(
        rf"builder for {_Q}{_DRV}{_QE} (?P<status>failed[^;\n]*|died abnormally)")),
    # a "builder for" line whose derivation is no store path Nix prints: a reporter's stand-in
    # for it ("/nix/store/file-name.drv", "<drv>"); a build failure of a derivation not known
    # (Lix words a build that failed on its remote builder "failed on remote builder")
    ("builder-unnamed", re.compile(
        rf"builder for {_Q}(?P<quoted>[^'’`\s]{{1,{_NAME}}}){_QE} "
        rf"(?P<status>failed (?:with exit code \d+|due to signal \d+|to produce output path|on "
        r"remote builder)|died abnormally)")),
    # the same where a copy elided the derivation without its quotes ("builder for ...drv failed
    # on remote builder"): an elision standing for a path, ".drv" its end
    ("builder-elided", re.compile(
        rf"builder for (?P<quoted>(?:\.\.\.|…)[^'’`\s]{{0,{_NAME}}}?(?<=[.…])drv) "
        rf"(?P<status>failed (?:with exit code \d+|due to signal \d+|to produce output path|on "
        r"remote builder)|died abnormally)")),
    # the same where a copy damaged the store path itself (a hand or OCR transcription of a
    # screen: its opening quote lost, its name no longer ending in ".drv", "…-x.dru'"): Nix's
    # builder line all the same, and its exit code; the derivation not named (the name is no
    # longer the one Nix printed); also where a character recognition put a space inside it
    # (one space between two characters of the path, "…-pSsluf40rx9ma5z4jsfaxl 7nph119p13-…")
    ("builder-exit-damaged", re.compile(
        rf"builder for {_Q}?(?P<path>/nix/store/(?:[^'’`\s]| (?=[^'’`\s])){{1,{_NAME}}}){_QE}? "
        r"failed with exit code (?P<code>\d+)")),
    # a "Cannot build" whose Reason line a copy left out: the build of it failed, how is not said
    # (its closing quote may be cut off with the rest of the line, as a "builder for" line's)
    ("cannot-build-unreasoned", _UNREASONED),
    # the same with its path elided by a writer ("Cannot build '/nix/store/...'", an issue's
    # title): a build that failed, which and why not said; as a cut one, the log's failure only
    # where it reports no other
    ("cannot-build-elided-unreasoned", re.compile(
        rf"(?m)^[ \t]*(?:error: )?Cannot build {_Q}(?:/nix/store/(?:\.\.\.|…)[^'’\s]{{0,{_NAME}}}|"
        rf"<[^'’<>\s]{{1,40}}>){_QE}\.?[ \t]*$")),
    ("log-limit", re.compile(rf"{_Q}(?:{_DRV}|{_STORE_PATH}){_QE}[^\n]{{0,{_NEAR}}} killed after "
                             r"writing more "
                             r"than (?P<bytes>\d+) bytes of log output")),
    ("fod-references", re.compile(rf"fixed-output derivations must not reference store paths: "
                                  rf"{_Q}{_DRV}{_QE}")),
    # the same, as Nix 2.18-2.26, 2.20-2.30 (naming only the derivation's name) and Lix 2.93+
    ("fod-references-old", re.compile(
        rf"illegal path references in fixed-output derivation {_Q}{_DRV}{_QE}")),
    ("fod-references-name", re.compile(
        rf"fixed output derivation {_Q}(?P<name>[^'’‘`]+){_QE} is not allowed to refer to other "
        r"store paths")),
    ("fod-references-lix", re.compile(
        rf"the fixed-output derivation {_Q}{_DRV}{_QE} must not reference store paths")),
    # output checks of the build's result (Nix names the output path or the derivation; 1.x
    # each path it refers to: "output ‘…’ is not allowed to refer to path ‘…’")
    ("output-references", re.compile(
        rf"output {_Q}{_STORE_PATH}{_QE} is not allowed to (?P<how>refer to|have direct "
        rf"references to) (?:the following paths|path {_Q})")),
    ("output-cycle", re.compile(rf"cycle detected in build of {_Q}{_DRV}{_QE}")),
    # the derivation's own outputChecks naming what is no store path nor output of its (Nix 2.26+
    # "contains an illegal reference specifier '…'", master "contains output name '…', but …",
    # Lix 2.9x): checked when its outputs are, so its build's failure
    ("output-check-spec", re.compile(
        rf"derivation {_Q}{_DRV}{_QE} output check for {_Q}(?P<output>[^'’\s]{{1,200}}){_QE} "
        r"contains ")),
    # (2.18-2.25 named neither the derivation nor the output)
    ("output-check-spec-old", re.compile(
        rf"\bderivation contains an illegal reference specifier {_Q}")),
    ("output-size", re.compile(
        rf"(?P<closure>closure of )?path {_Q}{_STORE_PATH}{_QE} is too large at (?P<size>\d+) "
        r"bytes; limit is (?P<limit>\d+) bytes")),
    ("not-deterministic", re.compile(
        rf"derivation {_Q}(?P<name>(?:/nix/store/)?[^'’\s/]+\.drv){_QE} may not be "
        r"deterministic")),
    # the same found by `--repeat` (Nix 1.x-2.3): "output ‘…’ of ‘…’ differs [from ‘…’] from
    # previous round"
    ("not-deterministic-round", re.compile(
        rf"output {_Q}{_STORE_PATH}{_QE} of {_Q}{_DRV}{_QE} differs from "
        rf"(?:{_Q}[^'’‘`\n]{{1,{_NAME}}}{_QE} from )?previous round")),
    # the same with the store directory and hash a copy elided ("'.../name.drv'"): the name is
    # what is left, the derivation is not known
    ("not-deterministic-elided", re.compile(
        rf"derivation {_Q}(?:/nix/store/)?(?:\.\.\.|…)/(?P<elided>[^'’\s/]{{1,{_NAME}}}?\.drv)"
        rf"{_QE} may not be deterministic")),
    ("no-substituter", re.compile(
        rf"(?:path|derivation output) {_Q}(?P<path>[^'’\s]+){_QE} is required, but there is no "
        r"substituter that can (?:build|provide) it")),
    ("dependency-missing", re.compile(  # (1.x: "dependency of ‘…’ of ‘…’")
        rf"dependency (?:of )?{_Q}(?P<path>[^'’\s]+){_QE} of {_Q}{_DRV}{_QE} does not exist, and "
        r"substitution is disabled")),
    # Nix 1.x's Perl tools (nix-channel, nix-push, nix-prefetch-url, …) loading their Nix::Store
    # binding (an XS module linked to libnixstore): Perl's XSLoader failing is Nix's own install
    ("perl-store-unloadable", re.compile(
        r"Can't load '[^'\n]*/auto/Nix/Store/Store\.so' for module Nix::Store: "
        r"(?P<reason>[^\n]*?)(?: at \S+ line \d+\.)?$", re.MULTILINE)),
    ("no-write-access", re.compile(rf"cannot substitute path {_Q}(?P<path>[^'’\s]+){_QE} - no "
                                   r"write access to the Nix store")),
    ("references-unrealised", re.compile(
        rf"some references of path {_Q}(?P<path>[^'’\s]+){_QE} could not be realised|"
        rf"reference {_Q}[^'’\s]+{_QE} of path {_Q}(?P<path2>[^'’\s]+){_QE} is not a valid path")),
    # Lix 2.95+: a download resumed after a retry whose ETag or immutable URL differs
    ("transfer-changed", re.compile(
        r"uri (?P<url>\S{1,4096}) changed (?P<how>ETag|immutable url|final destination) from "
        r"[^\n]{0,4096}? to [^\n]{0,4096}? during transfer")),
    ("transfer-interrupted", re.compile(rf"(?:download|upload) of {_Q}(?P<url>[^'’‘`]+){_QE} was "
                                        r"interrupted")),
    # 2.21-2.29 print a raw string literal: a line break and indentation after the semicolon
    ("remote-features", re.compile(r"[Uu]nable to start any build;\s+remote machines may not "
                                   r"have all required system features")),
    ("no-local-builds", re.compile(r"[Uu]nable to start any build;\s+either (?:increase|set) "
                                   r"'--max-jobs'|"
                                   # (2.3, before building: Worker::run's own check)
                                   r"\bneed to be built, but neither local builds \('--max-jobs'\) "
                                   r"nor remote builds")),
    ("store-not-local", re.compile(r"[Uu]nable to build with a primary store that isn't a local "
                                   r"store")),
    ("no-machine", _NO_MACHINE),
    ("resolved", re.compile(rf"build of resolved derivation {_Q}/nix/store/[^'’\s]+{_QE} failed")),
    ("failed-dependency", re.compile(r"Build failed due to failed dependency")),
    ("dependencies-missing", re.compile(rf"some dependencies of {_Q}{_DRV}{_QE} are missing")),
    ("missing-derivation", re.compile(rf"cannot build missing derivation {_Q}{_DRV}{_QE}")),
    # Nix 2.30+'s trampoline goal (derivation-trampoline-goal.cc): the goal that was to build or
    # substitute the .drv itself failed (BuildResult DependencyFailed)
    ("drv-unobtained", re.compile(rf"failed to obtain derivation of {_Q}{_DRV}{_QE}")),
    # a substituted or imported path whose NAR is not what its narinfo (or the import) says
    ("import-mismatch", re.compile(
        rf"(?P<what>(?:ca )?hash|size) mismatch importing path {_Q}(?P<path>[^'’\s]+){_QE};?"
        r"\s*(?:specified|wanted):\s*(?P<specified>\S+)\s+got:\s*(?P<got>\S+)")),
    # the same as Nix 2.0-2.1 word it ("…; expected hash '…', got '…'", a size unquoted), and
    # Nix 1.x's check of what its substituter fetched ("hash mismatch in downloaded path ‘…’:
    # expected …, got …", build.cc's SubstitutionGoal)
    ("import-mismatch-expected", re.compile(
        rf"(?P<what>hash|size) mismatch (?:importing|in downloaded) path {_Q}(?P<path>[^'’\s]+)"
        rf"{_QE}[;:] expected (?:hash )?{_Q}?(?P<specified>[^'’,\s]+){_QE}?, got "
        rf"{_Q}?(?P<got>[^'’\s]+){_QE}?")),
    # nixpkgs' buildEnv (a NixOS system-path, home-manager-path, a user environment) dying on
    # two packages with the same file: a builder's own words, copied without its failure line
    # (Nix 0.x-1.x's buildenv builder.pl spelt it "collission" and quoted `so'; a page may
    # have taken its backquotes for markdown's, and home-manager's docs print it unquoted)
    ("collision", re.compile(rf"collis?sion between {_Q}?(?P<path>/nix/store/[^'’\s]+){_QE}? "
                             rf"and {_Q}?(?P<other>/nix/store/[^'’\s]+){_QE}?")),
    # Nix 2.34+: the derivation is the one it was building (parse_log knows which)
    ("bare-timeout", re.compile(r"^(?:error: )?timed out after (?P<secs>\d+) seconds"
                                r"(?P<silence> of silence)?")),
    # a 2.29+ "Cannot build" block of which only the indented lines survived a copy
    ("reason", re.compile(r"^\s*Reason:\s*(?P<reason>[^\n]*)")),
    # (also under another error line, as "reason-under": a copy that joined flake check's "build
    # of '…' failed:" with the Reason's words and kept the Required line under it)
    ("required", re.compile(r"(?m)(?:\A|(?<=\n))[ \t]*(?:Required system|Required features):")),
    # the block's Reason line under another error line (a tool's own "error: failed to build
    # attribute '…'" in front of what Nix said), indented or where a copy dedented it: why the
    # build failed, in the words Nix 2.29+ and Determinate print after "Reason:"
    # (derivation-building-goal.cc)
    ("reason-under", re.compile(
        r"(?m)(?<=\n)[ \t]*Reason:[ \t]*(?P<reason>(?:builder |\d+ dependenc|required system|"
        r"platform mismatch|missing system features|unmet system|local builds are disabled)"
        r"[^\n]*)")),
    # Nix prints a builder's last log lines, and where to find the rest, only when it failed
    ("log-tail-named", _FULL_LOG_HINT),
    ("log-tail", re.compile(r"^\s*" + logshape.TAIL_INTRO)),
    # (2.24+'s pointer under it, "For full logs, run:", its command on the next line lost to a
    # copy's cut: Nix prints it under a failed builder's block only)
    ("log-tail", re.compile(r"^\s*For full logs, run:[ \t]*(?:\n|$)")),
    # Lix 2.92+ adds it to its platform refusal only
    ("platform-hint", re.compile(r"the failing derivation has \S+ set to \S+, forcing it to be "
                                 r"built rather than substituted")),
    ("hash-bare", re.compile(r"^[ \t]*(?:specified|wanted):\s*(?P<specified>\S+)\s+got:\s*"
                             r"(?P<got>\S+)", re.MULTILINE)),
    # Nix's note after a builder's failure when the store's disk is nearly full
    # (derivation-goal.cc): alone, a copy kept nothing of the failure it follows
    ("disk-space-note", _DISK_SPACE_NOTE),
    # nix-output-monitor's line for a build that failed (NOM.Print: "⚠ NAME [on HOST] failed
    # with exit code N|hash mismatch after ⏱ T [in PHASE]"): in a copy that kept nothing of
    # Nix's own report, it is what says which build failed and how (the name is no store path).
    # A writer quoting it in a sentence often leaves its leading glyph out (an emoji a
    # terminal's selection or a page's font drops): "after ⏱" alone is nom's, so the glyph is
    # optional and the name then starts a word
    # (an older nom drew a table: the name and the host padded with runs of spaces, the
    # time after "⏲": "┃ ⚠      gmp-6.2.1 on ssh://builder1   failed with exit code 2 after ⏲ …")
    ("nom-failed", re.compile(rf"(?:⚠\ufe0f? +|(?<![^\s`'\"(]))(?P<name>[^\s`'’\"⚠]{{1,{_NAME}}})"
                              rf"(?: on [^\s`]{{1,4096}})? +failed "
                              r"with (?:exit code (?P<code>\d+)|(?P<hash>hash mismatch)) after "
                              r"[⏱⏲]")),
]
# a remote builder's failure relayed: "build of '…drv' on 'ssh://…' failed: <its reason>"; the
# derivation is the one named here even when the reason names none (or a copy broke its path)
_REMOTE_FAILED = re.compile(rf"build of {_Q}{_DRV}{_QE} on {_Q}[^'’\n]*{_QE} failed:")
# `nix flake check` 2.29+ (and a recap of one build): "build of '….drv^*' failed: Cannot build
# '…'." with the Reason lines under it; a copy may keep only "build of '…' failed" over them. The
# derivation is the one named here where what Nix said after it names none
_BUILD_OF = re.compile(rf"build of {_Q}{_DRV}{_QE} failed\b")
# Nix's words opening a builder's failure, as a remote build's reason begins with them
_BUILDER_REASON = re.compile(r"(?:builder for|Cannot build) ['‘]")
# Nix's reasons after "Reason:" (derivation-building-goal.cc) cut inside their fixed words by a
# hard wrap ("Reason: builder" / "failed with exit code 101."): the rest is on the next line
_CUT_REASON = re.compile(
    r"Reason:[ \t]*(?:builder(?: failed(?: with(?: exit(?: code)?)?| due(?: to(?: signal)?)?)?)?|"
    r"\d{1,5}(?: dependenc(?:y|ies))?|required(?: system(?: or(?: feature(?: not)?)?)?)?|"
    r"platform|missing(?: system)?|local(?: builds(?: are)?)?)[ \t]*$")


_FOD_REFERENCES = (Kind.FOD_REFERENCES, FailureType.HASH_MISMATCH,
                   "the fixed-output derivation {what} refers to other store paths",
                   "a fixed-output derivation's output must not refer to store paths: remove the "
                   "references (e.g. patchShebangs, wrappers) from its output")
_OUTPUT_CHECK_HINT = ("the build's output broke a check its derivation declares "
                      "(allowedReferences/disallowedReferences, maxSize/maxClosureSize, outputs "
                      "referring to each other, or `--check` finding it not reproducible): change "
                      "the output or the check")
_NO_MACHINE_HINT = ("add a builder with the system and features the derivation needs "
                    "(`builders`, `system-features`), or leave that system out of `systems:` in "
                    "ci-nix.yaml")
_TIMEOUT_HINT = ("the build ran longer than `timeout` allows: raise `timeout` (nix.conf or "
                 "--option timeout N) or speed it up")
_SILENCE_HINT = ("the build printed nothing for too long: raise `max-silent-time`, or make the "
                 "build print progress")
# pattern name -> (kind, type, message (str.format with the match's groups), hint)
DRVLESS: dict[str, tuple[Kind, FailureType, str, str | None]] = {
    "log-limit": (Kind.LOG_LIMIT, FailureType.BUILD,
                  "{what} was killed after writing more than {bytes} bytes of log",
                  "the build printed more than `max-log-size` allows: raise it, or make the "
                  "build quieter"),
    "fod-references": _FOD_REFERENCES,
    "fod-references-old": _FOD_REFERENCES,
    "fod-references-name": _FOD_REFERENCES,
    "fod-references-lix": _FOD_REFERENCES,
    "output-references": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                          "the output {path} refers to paths its derivation forbids",
                          _OUTPUT_CHECK_HINT),
    "output-cycle": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                     "the outputs of {drv} refer to each other in a cycle", _OUTPUT_CHECK_HINT),
    "output-check-spec": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                          "the output checks {drv} declares for its output '{output}' name what "
                          "is neither a store path nor one of its outputs", _OUTPUT_CHECK_HINT),
    "output-check-spec-old": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                              "the output checks a derivation declares name what is neither a "
                              "store path nor one of its outputs", _OUTPUT_CHECK_HINT),
    "output-size": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                    "{closure}{what} is too large ({size} bytes; the derivation allows "
                    "{limit})",
                    _OUTPUT_CHECK_HINT),
    "output-path-rejected": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                             "the output {path} was rejected: its files are not what Nix "
                             "accepts as an output (permissions, content address or file type)",
                             _OUTPUT_CHECK_HINT),
    "output-rejected": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                        "{drv} registered an output its derivation does not declare so "
                        "(its name, output or content address)", _OUTPUT_CHECK_HINT),
    "not-deterministic": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                          "{drv} is not reproducible: a rebuild (--check) gave different output",
                          _OUTPUT_CHECK_HINT),
    "not-deterministic-round": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                                "{drv} is not reproducible: its rounds (--repeat) gave "
                                "different output", _OUTPUT_CHECK_HINT),
    "cached-failure": (Kind.BUILDER, FailureType.BUILD,
                       "the build of {path} failed before, and Nix 1.x cached that failure",
                       "Nix did not build it again: clear its cache of failed builds "
                       "(`nix-store --clear-failed-paths '*'`) and look at that build's log"),
    "not-deterministic-elided": (Kind.OUTPUT_CHECK, FailureType.BUILD,
                                 "{elided} is not reproducible: a rebuild (--check) gave "
                                 "different output", _OUTPUT_CHECK_HINT),
    "no-substituter": (Kind.SUBSTITUTION, FailureType.OTHER,
                       "{path} is required, but no substituter can provide it",
                       HINTS[Kind.SUBSTITUTION]),
    "dependency-missing": (Kind.SUBSTITUTION, FailureType.OTHER,
                           "{path} is missing and substitution is disabled",
                           HINTS[Kind.MISSING_STORE_PATH]),
    "perl-store-unloadable": (Kind.NIX, FailureType.OTHER,
                              "Nix's Perl binding (Nix::Store) does not load: {reason}",
                              "this Nix installation is broken: its library cannot be loaded "
                              "(a C++ runtime older than the one it was built with): reinstall "
                              "Nix, or put the libraries it was built against on its path"),
    "no-write-access": (Kind.NIX, FailureType.OTHER,
                        "cannot substitute {path}: no write access to the Nix store",
                        "the Nix store is read-only to this process: run the build through the "
                        "daemon (`NIX_REMOTE=daemon`) or as the store's owner"),
    "references-unrealised": (Kind.SUBSTITUTION, FailureType.OTHER,
                              "the references of {what} could not be substituted",
                              HINTS[Kind.SUBSTITUTION]),
    "transfer-changed": (Kind.DOWNLOAD, FailureType.OTHER,
                         "{url} changed ({how}) while it was downloaded", HINTS[Kind.DOWNLOAD]),
    "transfer-interrupted": (Kind.DOWNLOAD, FailureType.OTHER,
                             "the download of {url} was interrupted", HINTS[Kind.DOWNLOAD]),
    "remote-features": (Kind.PLATFORM, FailureType.PLATFORM,
                        "no machine can build it: remote builders may lack required features",
                        _NO_MACHINE_HINT),
    "no-local-builds": (Kind.PLATFORM, FailureType.PLATFORM,
                        "no machine can build it: local builds are disabled (max-jobs = 0) and no "
                        "remote builder is configured",
                        "set `max-jobs` above 0, or configure remote `builders`"),
    "store-not-local": (Kind.PLATFORM, FailureType.PLATFORM,
                        "no machine can build it: the store is not a local store and no remote "
                        "builder is configured",
                        "build with a local `--store`, or configure remote `builders`"),
    "dependencies-missing": (Kind.DEPENDENCY, FailureType.DEPENDENCY,
                             "dependencies of {drv} are missing after they were built", None),
    "drv-unobtained": (Kind.DEPENDENCY, FailureType.DEPENDENCY,
                       "{drv} could not be obtained: building or substituting it failed", None),
    "missing-derivation": (Kind.SUBSTITUTION, FailureType.OTHER,
                           "{drv} is not in the store and could not be substituted",
                           HINTS[Kind.MISSING_STORE_PATH]),
    "log-tail-named": (Kind.BUILDER, FailureType.BUILD,
                       "builder for {drv} failed (the log holds only its last lines)", None),
    "platform-hint": (Kind.PLATFORM, FailureType.PLATFORM,
                      "no machine here can build it, and substituting it is not allowed",
                      "the derivation sets allowSubstitutes = false: pass "
                      "--always-allow-substitutes if a substituter has it, or add a builder for "
                      "its system (`builders`)"),
    "log-tail": (Kind.BUILDER, FailureType.BUILD,
                 "a builder failed (the log holds only its last lines)", None),
    # (a "builder for" or "Cannot build" line a copy cut: `_cut_reading`'s words, which
    # parse_log's naming by the log's plan and its `cut` list look for)
    "builder-cut-named": (Kind.BUILDER, FailureType.BUILD,
                          "builder for {drv} failed (the log is cut off before its reason)", None),
    "cannot-build-unreasoned": (Kind.BUILDER, FailureType.BUILD,
                                "{drv} could not be built (the log leaves out why)", None),
    "builder-cut": (Kind.BUILDER, FailureType.BUILD,
                    "a builder failed (the log is cut off before it says which)", None),
    "cannot-build-cut": (Kind.BUILDER, FailureType.BUILD,
                         "a derivation could not be built (the log is cut off before it says "
                         "which)", None),
    "cannot-build-elided-unreasoned": (Kind.BUILDER, FailureType.BUILD,
                                       "a derivation could not be built (its path elided, and "
                                       "why left out)", None),
    "builder-unnamed": (Kind.BUILDER, FailureType.BUILD, "builder for {quoted} {status}", None),
    "builder-elided": (Kind.BUILDER, FailureType.BUILD, "builder for {quoted} {status}", None),
    "disk-space-note": (Kind.BUILDER, FailureType.BUILD,
                        "a builder failed, maybe for lack of free disk space (the log holds only "
                        "Nix's note after it)",
                        "free space on the disk of the Nix store and of the build directory "
                        "(TMPDIR, `build-dir`)"),
    "check-build": (Kind.BUILDER, FailureType.BUILD,
                    "build of {drv} failed (nix flake check leaves out why)", None),
    "resolved": (Kind.DEPENDENCY, FailureType.DEPENDENCY,
                 "the build of its resolved (content-addressed) derivation failed", None),
    "collision": (Kind.BUILDER, FailureType.BUILD,
                  "buildEnv found {path} in two packages (the other: {other})",
                  "two packages in one environment provide the same file: keep one, or give "
                  "one priority (`lib.hiPrio` / `lib.lowPrio`), or set `ignoreCollisions`"),
    "failed-dependency": (Kind.DEPENDENCY, FailureType.DEPENDENCY,
                          "build failed due to a failed dependency", None),
    "bare-timeout": (Kind.TIMEOUT, FailureType.TIMEOUT,
                     "timed out after {secs} s (timeout or max-silent-time)",
                     "the build ran longer than `timeout`, or printed nothing for longer than "
                     "`max-silent-time` (Nix 2.34+ does not say which): raise that limit, or "
                     "speed the build up or make it print progress"),
}
_LOG_LINE = re.compile(r"^\s*> ?(.*)$")


# a line of Nix's broken after its colon, the quoted store path it goes on with indented below
_WRAPPED_AT_COLON = re.compile(r":[ \t]*\n[ \t]+(?=['‘`]/nix/store/)")


def _nix_words(lines: Sequence[str], quoted: AbstractSet[int]) -> str:
    """An error text without the builder output Nix quotes in it (`quoted`: which lines): a
    build prints what it likes there ("error: hash mismatch in fixed-output derivation
    '…-other.drv'", "For full logs, run Cannot build '…-other.drv'"), which must not name
    another derivation as failed, nor hide the builder's own failure."""
    return "\n".join(line for at, line in enumerate(lines) if at not in quoted)


def _build_diagnosis(text: str, quoted: AbstractSet[int] | None = None) -> Diagnosis | None:
    """Classify an error about a derivation; None when the text names none. quoted: which of
    its lines are a failed build's lines Nix quotes (`logshape.Line.quoted`, where the text is
    a captured log's block); else decided on its lines the same way (`logshape.quoted_in`)."""
    said = text.split("\n")
    quoted = logshape.quoted_in(said) if quoted is None else quoted
    text = _nix_words(said, quoted)
    found = _pattern_diagnosis(text)
    if found is None and _WRAPPED_AT_COLON.search(text):
        # a copy (a page, a gist) that wrapped Nix's one-line message after its colon and
        # indented the quoted store path: read as Nix printed it
        found = _pattern_diagnosis(_WRAPPED_AT_COLON.sub(": ", text))
    refused = _refused_by_nix(found, [line for at, line in enumerate(said) if at in quoted])
    if refused is not None:
        return refused
    remote = _REMOTE_FAILED.search(text)
    if remote is None:
        named = _BUILD_OF.search(text) if found is not None and found.drv is None else None
        if found is None or named is None:
            return found
        return replace(found, drv=named["drv"], message=found.message.replace(
            _what(None), short_drv(named["drv"]), 1))
    drv = remote["drv"]
    if found is None:
        reason = _ERROR_LINE.sub(r"\1", text[remote.end():].strip().split("\n")[0].strip())
        if _BUILDER_REASON.match(reason):
            # the reason Nix passes on is its builder's failure ("builder for '…' failed with
            # …", "Cannot build '…'."), which a copy cut before any pattern of it could match
            # ("… failed: builder for '/nix/store/…-"): that derivation's build, there
            return Diagnosis(FailureType.BUILD, Kind.BUILDER,
                             f"{short_drv(drv)} failed on a remote builder: its builder failed "
                             "(the copy ends inside Nix's line)", drv=drv, remote=True)
        # a reason nothing finer fits (the remote Nix refusing, its store failing): still the
        # failure of that derivation, and Nix's own, not its builder's
        return Diagnosis(FailureType.OTHER, Kind.NIX,
                         f"{short_drv(drv)} failed on a remote builder: {_one_line(reason)}",
                         drv=drv, remote=True)
    if found.drv is None:
        message = found.message.replace("a fixed-output derivation", short_drv(drv))
        return replace(found, drv=drv, message=message, remote=True)
    return replace(found, remote=True)


# the Nix daemon that was to run a build refusing it (daemon.cc: an untrusted user's build of a
# derivation; a path without a trusted signature; a user not in allowed-users): Nix 2.3's build
# hook passes the remote daemon's refusal on as the last log line of a "builder" that "failed with
# exit code 1", though no builder ran
_REFUSED_BY_NIX = re.compile(r"^(?:> ?)?error: (?:you are not privileged to build |cannot add path "
                             r"'[^'\n]{1,4096}' because it lacks a (?:valid )?signature|"
                             r"[^\n]{0,4096}is not allowed to connect to the Nix daemon)")


def _refused_by_nix(found: Diagnosis | None, quoted: Sequence[str]) -> Diagnosis | None:
    """A builder's failure whose whole quoted log (`quoted`: the lines Nix quotes) is the Nix
    daemon refusing the build: Nix's own failure (`other`/`nix`) of that derivation, not its
    builder's; None otherwise."""
    if found is None or found.kind is not Kind.BUILDER:
        return None
    said = [line.strip() for line in quoted if line.strip()]
    if not said or not all(_REFUSED_BY_NIX.match(line) for line in said):
        return None
    # (without a progress bar a terminal left glued to the line)
    reason = logshape.BAR.sub("", _ERROR_LINE.sub(r"\1", said[-1].removeprefix(">").strip()))
    return Diagnosis(FailureType.OTHER, Kind.NIX, _one_line(
        f"{short_drv(found.drv or '')}: the Nix daemon that was to build it refused: "
        f"{reason.strip()}"),
        drv=found.drv, hint=HINTS[Kind.NIX])


def _output_name(path: str) -> str:
    """The name of an output path ("tipsy-0.1.7" of "/nix/store/<hash>-tipsy-0.1.7"), as the
    derivation that builds it is named (its ".drv" off)."""
    return path.rsplit("/", 1)[-1].split("-", 1)[-1]


def _output_hash_mismatch(m: re.Match[str], text: str) -> Diagnosis:
    """Nix 1.x's hash mismatch of a fixed output (hash-mismatch-1x): the derivation is the one
    of the output's name where the text names it (nix-build's plan, "these derivations will be
    built:"), else unknown; the output path is the failure's."""
    path, algo = m["path"], m["algo"].removeprefix("r:")
    name = _output_name(path)
    drv = next((d["drv"] for d in _DRV_PATH.finditer(text) if drv_name(d["drv"]) == name), None)
    specified, got = f"{algo}:{m['specified']}", f"{algo}:{m['got']}"
    return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                     f"hash mismatch in {short_drv(drv) if drv else short_drv(path)}: got {got}",
                     drv=drv, output=path, specified=specified, got=got,
                     hint=_hash_hint(specified, got))


@functools.cache
def _patterns_needing() -> tuple[tuple[str, re.Pattern[str], str, tuple[str, ...]], ...]:
    """_PATTERNS, each with the characters every match of it holds (`required_literal`; "" where
    none is known: always searched), read once all of them are defined; or, of a pattern of
    alternatives, one of several runs every match holds (`required_literals`: "" and the
    others)."""
    found = []
    for name, pattern in _PATTERNS:
        needs = required_literal(pattern)
        more = () if needs else required_literals(pattern)
        found.append((name, pattern, more[0], more[1:]) if more else (name, pattern, needs, ()))
    return tuple(found)


def _pattern_diagnosis(text: str) -> Diagnosis | None:
    # (a text without a pattern's literal cannot match it: most searches fail, and `in` is the
    # cheaper way to see that)
    for name, pattern, needs, more in _patterns_needing():
        m = pattern.search(text) if needs in text or more and holds(text, more) else None
        if m is None:
            continue
        groups = m.groupdict()
        drv = groups.get("drv")
        if name.startswith("hash-mismatch"):
            specified, got = m["specified"], m["got"]
            if name == "hash-mismatch-old":
                specified, got = f"{m['algo']}:{specified}", f"{m['algo']}:{got}"
            if name.startswith("hash-mismatch-1x"):
                return _output_hash_mismatch(m, text)
            if name.startswith("hash-mismatch-download"):
                return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                                 f"hash mismatch in the file downloaded from {m['url']}: got "
                                 f"{got}", specified=specified, got=got,
                                 hint=_hash_hint(specified, got).replace(
                                     "in the derivation", "in the fetch call"))
            return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                             f"hash mismatch in {short_drv(drv or '')}: got {got}", drv=drv,
                             specified=specified, got=got, hint=_hash_hint(specified, got))
        if name in ("cannot-build", "cannot-build-elided", "reason", "reason-under"):
            return _reason_diagnosis(groups.get("drv"), _whole_reason(m, text), text)
        if name == "cannot-build-loose":
            drv = m["subject"] if _DRV_PATH.fullmatch(m["subject"]) else None
            return _reason_diagnosis(drv, _whole_reason(m, text), text)
        if name == "required":
            return _platform(None, text)
        if name == "no-machine":
            return _no_machine(m)
        if name.startswith("import-mismatch"):
            what = "size" if m["what"] == "size" else "hash"
            return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                             f"{what} mismatch importing {short_drv(m['path'])}: got {m['got']}",
                             specified=m["specified"], got=m["got"],
                             hint="the path's contents are not what its binary cache (narinfo) "
                             "says: the cache entry is corrupt or was replaced; check the "
                             "substituter, or rebuild with `--option substitute false`")
        if name == "bare-timeout" and m["silence"]:  # a remote's words relayed, or a copy's
            return Diagnosis(FailureType.TIMEOUT, Kind.MAX_SILENT_TIME,
                             f"printed nothing for {m['secs']} s (max-silent-time)",
                             hint=_SILENCE_HINT)
        code = _EXIT_CODE_REASON.search(m["status"]) \
            if name in ("builder-unnamed", "builder-elided") else None
        if code is not None:  # (a stand-in for the derivation, its exit code Nix's all the same)
            # (or a derivation in a store at another directory, 1.x's private store: that one)
            other = _OTHER_STORE_DRV.fullmatch(m["quoted"])
            return _exit_failure(m["quoted"], other[0] if other else None, int(code[1]))
        if name in DRVLESS:
            kind, type_, message, hint = DRVLESS[name]
            if (groups.get("name") or "").endswith(".drv") and not groups.get("drv"):
                groups["drv"] = "/nix/store/" + groups["name"].removeprefix("/nix/store/")
            named = {key: short_drv(value) if key in ("drv", "path") else value
                     for key, value in groups.items() if value is not None}
            named["what"] = (named.get("drv") or named.get("path")
                             or short_drv(groups.get("path2") or "") or named.get("name")
                             or "the build")
            # an output check names the output path: `run` finds its job by it
            output = groups.get("path") if kind is Kind.OUTPUT_CHECK else None
            return Diagnosis(type_, kind, message.format_map(defaultdict(str, named)),
                             drv=groups.get("drv"), output=output, hint=hint)
        if name == "builder-other":
            return Diagnosis(FailureType.BUILD, Kind.BUILDER,
                             f"builder for {short_drv(m['drv'])} {m['status'].strip()}",
                             drv=m["drv"])
        if name == "hash-bare":
            return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                             f"hash mismatch in a fixed-output derivation: got {m['got']}",
                             specified=m["specified"], got=m["got"],
                             hint=_hash_hint(m["specified"], m["got"]))
        if name == "nom-failed":
            if m["hash"]:
                return Diagnosis(FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH,
                                 f"hash mismatch in {m['name']} (the log keeps only "
                                 "nix-output-monitor's line, not the hashes)")
            return _exit_failure(m["name"], None, int(m["code"]))
        if name == "builder-exit-damaged":
            return _exit_failure(m["path"].removeprefix("/nix/store/"), None, int(m["code"]))
        if name == "builder-exit":
            return _exit_failure(short_drv(m["drv"]), m["drv"], int(m["code"]))
        if name == "signal":
            return _signal_or_other(m["drv"], f"killed by signal {m['signal']}"
                                    + (f" ({m['name']})" if m["name"] else ""))
        if name == "no-output":
            return Diagnosis(FailureType.BUILD, Kind.NO_OUTPUT,
                             f"builder for {short_drv(m['drv'])} did not produce its output",
                             drv=m["drv"], hint=HINTS[Kind.NO_OUTPUT])
        if name.startswith("timeout"):
            secs = m["secs"]
            path = groups.get("path") or m["drv"]
            # an output path (Hydra) names no derivation; the message still names the package
            drv = path if path.endswith(".drv") else None
            output = None if drv else path
            if m["silence"]:
                return Diagnosis(FailureType.TIMEOUT, Kind.MAX_SILENT_TIME,
                                 f"{short_drv(path)} printed nothing for {secs} s "
                                 "(max-silent-time)", drv=drv, output=output,
                                 hint=_SILENCE_HINT)
            return Diagnosis(FailureType.TIMEOUT, Kind.TIMEOUT,
                             f"{short_drv(path)} timed out after {secs} s (timeout)",
                             drv=drv, output=output, hint=_TIMEOUT_HINT)
        if name in ("platform", "platform-elided"):
            return _platform_diagnosis(groups.get("drv"), m["wanted"], m["features"] or "",
                                       m["have"])
        if name == "platform-rosetta":  # Nix's own advice is the hint
            return replace(_platform_diagnosis(groups.get("drv"), m["wanted"], "", m["have"]),
                           hint="install Rosetta 2 (`/usr/sbin/softwareupdate --install-rosetta`)"
                           f" so this {m['have']} machine can build for {m['wanted']}, or add a "
                           "builder for it (`builders`)")
        if name == "feature-unsupported":
            return Diagnosis(FailureType.PLATFORM, Kind.SYSTEM_FEATURE,
                             f"{_what(groups.get('drv'))} requires the system feature "
                             f"'{m['feature']}', which this platform does not support",
                             drv=groups.get("drv"), hint="build it on a machine whose platform "
                             "has the feature (remote `builders`), or leave that system out of "
                             "`systems:` in ci-nix.yaml")
        if name == "platform-cut":
            # (whether the system or the features are what this machine lacks, the cut left out)
            features = " ".join((m["features"] or "").split())
            return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                             f"{_what(groups.get('drv'))} needs {m['wanted']}"
                             + (f" with features {{{features}}}" if features else "")
                             + " (the copy cut Nix's line before what this machine is)",
                             drv=groups.get("drv"), hint="add a builder that has them (remote "
                             "`builders`), or leave that system out of `systems:` in ci-nix.yaml",
                             system=m["wanted"])
        if name.startswith("dependencies"):
            return Diagnosis(FailureType.DEPENDENCY, Kind.DEPENDENCY,
                             f"{count(int(m['n']), 'dependency')} of {_what(groups.get('drv'))} "
                             "failed to build",
                             drv=groups.get("drv"))
        if name.startswith("substitution"):
            drv = groups.get("drv")
            what = short_drv(drv) if drv else (m["path"] or m["produced"]).rsplit("/", 1)[-1]
            return Diagnosis(FailureType.OTHER, Kind.SUBSTITUTION,
                             f"could not substitute {what} from the binary cache", drv=drv,
                             hint=HINTS[Kind.SUBSTITUTION])
        if name.startswith("build-summary"):
            # nix-build's recap of what failed, where the log keeps nothing else (parse_log):
            # a derivation's build; output paths (nix-store -r) failed to be substituted
            first = _DRV_PATH.search(text)
            if first is None and (name == "build-summary-bare" or ".drv" in m[0]):
                # (or a recap whose store path is a writer's stand-in, "/nix/store/hash-name.drv":
                # a derivation's build all the same)
                return Diagnosis(FailureType.BUILD, Kind.SUMMARY, _one_line(
                    f"{text.removeprefix('error: ')} (no store path shows which)"))
            if first is None:
                return Diagnosis(FailureType.OTHER, Kind.SUMMARY, _one_line(text))
            return Diagnosis(FailureType.BUILD, Kind.SUMMARY, f"the build of "
                             f"{short_drv(first['drv'])} failed (the log does not say why)",
                             drv=first["drv"])
    return None


_REQUIRED = re.compile(
    rf"Required system:\s*{_Q}(?P<wanted>[^'’‘`]+){_QE}"
    rf"(?:\s+with features \{{(?P<features>[^}}]*)\}})?"
    rf"\s+Current system:\s*{_Q}(?P<have>[^'’‘`]+){_QE}")
# Nix 2.34+: features in lines of their own
_REQUIRED_FEATURES = re.compile(r"Required features:\s*\{(?P<features>[^}]*)\}"
                                r"(?:\s+Available features:\s*\{(?P<have>[^}]*)\})?")


def _what(drv: str | None) -> str:
    return short_drv(drv) if drv else "the derivation"


def _whole_reason(m: re.Match[str], text: str) -> str:
    """The reason a "Reason:" line gives, with its rest from the next line where a hard wrap cut
    it inside Nix's fixed words."""
    reason = m["reason"]
    if not _CUT_REASON.search("Reason: " + reason.strip()):
        return reason
    rest = text[m.end():].lstrip("\n").split("\n", 1)[0]
    return f"{reason.strip()} {rest.strip()}"


# what a "Reason:" line says, in Nix's fixed words (derivation-building-goal.cc)
_PLATFORM_REASON = re.compile(r"required system or feature not available|platform mismatch|"
                              r"unmet system or feature|missing system features")
_TIMED_OUT_REASON = re.compile(r"timed out after (\d+) seconds( of silence)?")
_EXIT_CODE_REASON = re.compile(r"exit code (\d+)")
_SIGNAL_REASON = re.compile(r"signal (\d+)")


def _exit_failure(what: str, drv: str | None, status: int) -> Diagnosis:
    """A builder's failure with its exit code (Nix's "builder for", its 2.29+ Reason, nom's
    line): 137 = 128 + SIGKILL is a shell reporting its child killed, usually by the OOM
    killer."""
    kind, hint = (Kind.OOM, HINTS[Kind.OOM]) if status == 137 else (Kind.BUILDER, None)
    return Diagnosis(FailureType.BUILD, kind, f"builder for {what} failed with exit code {status}",
                     drv=drv, exit_code=status, hint=hint)


def _reason_diagnosis(drv: str | None, reason: str, text: str) -> Diagnosis:
    """Nix 2.29+: "Cannot build '…'." and a "Reason:" line (drv None: only the lines from
    "Reason:" on survived)."""
    reason = reason.strip().rstrip(".")
    if _PLATFORM_REASON.search(reason):
        return _platform(drv, text)
    if "local builds are disabled" in reason:
        return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                         f"{_what(drv)} cannot be built here: {reason}", drv=drv,
                         hint="local builds are disabled (`max-jobs = 0`): configure remote "
                         "`builders`, or set `max-jobs` above 0")
    if late := _TIMED_OUT_REASON.search(reason):
        silent = late[2] is not None
        return Diagnosis(FailureType.TIMEOUT, Kind.MAX_SILENT_TIME if silent else Kind.TIMEOUT,
                         f"{_what(drv)} {reason}", drv=drv,
                         hint=_SILENCE_HINT if silent else _TIMEOUT_HINT)
    if code := _EXIT_CODE_REASON.search(reason):
        return _exit_failure(_what(drv), drv, int(code[1]))
    if "dependenc" in reason:
        return Diagnosis(FailureType.DEPENDENCY, Kind.DEPENDENCY, f"{_what(drv)}: {reason}",
                         drv=drv)
    cut = _cut_reason(reason) if text.rstrip().rstrip(".").endswith(reason) else None
    if cut is FailureType.PLATFORM:
        return _platform(drv, text)
    if cut is FailureType.TIMEOUT:
        return Diagnosis(FailureType.TIMEOUT, Kind.TIMEOUT, f"{_what(drv)} {reason}… (the copy "
                         "ends inside Nix's reason)", drv=drv, hint=_TIMEOUT_HINT)
    return _signal_or_other(drv, reason)


# Nix's reasons whose type the words after "Reason:" decide, as `_reason_diagnosis` reads them
# whole (its platform refusals, "local builds are disabled", a timeout)
_REASONS = ((re.compile(_PLATFORM_REASON.pattern + "|local builds are disabled"),
             FailureType.PLATFORM), (_TIMED_OUT_REASON, FailureType.TIMEOUT))


def _cut_reason(reason: str) -> FailureType | None:
    """The type of Nix's reason a copy cut at the text's end ("required system or feature not
    avai", "timed out after 1800 seco"): a prefix of one of `_REASONS`, keeping its first word
    whole and more (it stands after Nix's own "Reason:": no writer's words); None otherwise."""
    if not re.match(r"\S+ \S", reason):
        return None
    return next((type_ for pattern, type_ in _REASONS
                 if regex_literal.prefix_form(pattern).match(reason)), None)


def _platform(drv: str | None, text: str) -> Diagnosis:
    """Nix 2.29+: "Cannot build '…'. Reason: required system or feature not available" (2.34:
    "platform mismatch", "missing system features"), with the systems and features it names."""
    m = _REQUIRED.search(text)
    features = _REQUIRED_FEATURES.search(text)
    if m is not None:
        return _platform_diagnosis(drv, m["wanted"], m["features"] or (
            features["features"] if features else ""), m["have"])
    if features is not None:
        wanted, available = (" ".join((group or "").split()) for group in features.groups())
        return Diagnosis(FailureType.PLATFORM, Kind.SYSTEM_FEATURE,
                         f"{_what(drv)} needs features {{{wanted}}}; this machine has "
                         f"{{{available}}}", drv=drv,
                         hint=_platform_hint("", wanted, f"with features {{{available}}}"))
    return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                     f"{_what(drv)} needs a system or feature this machine lacks", drv=drv,
                     hint="add a builder that has them (remote `builders`), or leave that "
                     "system out of `systems:` in ci-nix.yaml")


def _platform_diagnosis(drv: str | None, wanted: str, features: str, have: str) -> Diagnosis:
    features = " ".join(features.split())
    if not _SYSTEM_NAME.fullmatch(wanted) or (wanted == have and not features):
        # Nix drops escape sequences and turns a \r into a line break when it prints the
        # system: one that reads like this machine's, or with a break, holds characters that
        # did not print. Saying "needs x86_64-linux; this machine is x86_64-linux" would mislead.
        return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                         f"{_what(drv)} has a system that Nix prints as \"{untrusted.name(wanted)}"
                         f"\", not {have}: it holds control characters that do not print",
                         drv=drv, hint=f"set the derivation's `system` to a plain system name "
                         f"such as {have}")
    # another system is the first thing to fix; features matter once the system matches
    if wanted != have or not features:
        return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                         f"{_what(drv)} needs {wanted}; this machine is {have}", drv=drv,
                         hint=_platform_hint(wanted, "", have), system=wanted)
    return Diagnosis(FailureType.PLATFORM, Kind.SYSTEM_FEATURE,
                     f"{_what(drv)} needs features {{{features}}}; this machine is {have}",
                     drv=drv, hint=_platform_hint(wanted, features, have), system=wanted)


def _no_machine(m: re.Match[str]) -> Diagnosis:
    """build-remote's "Failed to find a machine for remote build!", with the system and features
    the derivation needs and the machines `builders` has."""
    drv = f"/nix/store/{m['name']}" if m["name"].endswith(".drv") else None
    wanted, features = m["wanted"].strip(), " ".join(m["features"].split())
    machines = [(set(filter(None, (s.strip() for s in x["systems"].split(",")))),
                 x["features"]) for x in _MACHINE.finditer(m["machines"] or "")]
    have = ", ".join(sorted({s for systems, _ in machines for s in systems})) or "none"
    # the system is the first thing to fix; features matter once some machine has it
    has_system = any(wanted in systems for systems, _ in machines)
    if features and (has_system or not machines):
        return Diagnosis(FailureType.PLATFORM, Kind.SYSTEM_FEATURE,
                         f"no builder for {_what(drv)}: it needs {wanted} with features "
                         f"{{{features}}} (builders: {have})", drv=drv, system=wanted,
                         hint=_platform_hint(wanted, features, f"builders: {have}"))
    return Diagnosis(FailureType.PLATFORM, Kind.PLATFORM,
                     f"no builder for {_what(drv)}: it needs {wanted} (builders: {have})",
                     drv=drv, system=wanted, hint=_platform_hint(wanted, "", f"builders: {have}"))


def _signal_or_other(drv: str | None, reason: str) -> Diagnosis:
    sig = _SIGNAL_REASON.search(reason)
    if sig:
        number = int(sig[1])
        oom = number == 9
        return Diagnosis(FailureType.BUILD, Kind.OOM if oom else Kind.SIGNAL,
                         f"builder for {_what(drv)} was {reason}", drv=drv,
                         hint=HINTS[Kind.OOM] if oom else None)
    return Diagnosis(FailureType.BUILD, Kind.BUILDER, f"{_what(drv)}: {reason}", drv=drv)


@dataclass(frozen=True)
class BuildError:
    """One error Nix reported while building, tied to the derivation it names."""

    drv: str  # or the output path, when Nix named only that (a build on `nix-store --serve`)
    type: FailureType
    message: str
    diagnosis: Diagnosis | None = None

    @property
    def ran(self) -> bool | None:
        """Whether the error says the build ran (True: Nix says so only after it ran, also when
        it relays a remote builder's failure), never ran (False), or neither (None)."""
        if self.type in _BUILD_RAN or self.diagnosis is not None and self.diagnosis.remote:
            return True
        return False if self.type in _NEVER_RAN else None


_BUILD_RAN = frozenset({FailureType.BUILD, FailureType.HASH_MISMATCH, FailureType.TIMEOUT})
_NEVER_RAN = frozenset({FailureType.DEPENDENCY, FailureType.PLATFORM})


def unattributed_error(message: str) -> Diagnosis | None:
    """A build error that names no derivation (Nix 2.34+'s "timed out after N seconds", 2.33's
    "Build failed due to failed dependency"), classified; None for anything else."""
    found = _build_diagnosis(clean(message))
    if found is None or found.drv is not None or found.output is not None \
            or found.kind == Kind.SUMMARY:
        return None
    return found


def build_error(message: str) -> BuildError | None:
    """Classify one Nix error message from a build; None when it names no derivation."""
    found = _build_diagnosis(clean(message))
    named = (found.drv or found.output) if found is not None else None
    if found is None or named is None or found.kind == Kind.SUMMARY:
        return None
    return BuildError(named, found.type, found.message, found)


# ---------------------------------------------------------------------------------------------
# Evaluation errors.

_ERROR_LINE = re.compile(r"^\s*error:\s?(.*)$")
_POS = re.compile(
    # «…» and <…> hold no opening mark of their own kind: a run from each "at «" to the line's
    # end (no » comes) overlapped all the others (quadratic in a `throw`n text's length)
    r"\bat (?:\"(?P<qpath>[^\"]+)\"|(?P<path>«[^»«]*»|<[^<>]*>|/[^:\s]+|[A-Za-z]:[^:\s]+))"
    r":(?P<line>\d+):(?P<col>\d+)")


def _positions_of(text: str) -> Iterator[re.Match[str]]:
    """_POS's matches in a line (one without its "at " holds none: most lines, read at once)."""
    return _POS.finditer(text) if "at " in text else iter(())


_SOURCE = re.compile(r"^/nix/store/(?P<hash>[a-z0-9]{32})-[^/]*source(?P<rel>/.*)?$")
# the same with a reporter's stand-in for the hash ("<hash>", "...", "…", or a hash cut short
# with an ellipsis: "xyz...", "w1v4…"): what a copy that hid the hash says of the path is
# unchanged (a flake's source tree and a file in it)
_SOURCE_STANDIN = re.compile(r"^/nix/store/(?:<[^/<>\s]{1,40}>|[a-z0-9]{0,31}(?:\.\.\.|…))-?"
                             r"[^/\s]*source(?P<rel>/.*)?$")
# a file the evaluator looked for; not the store's "does not exist and cannot be created" (a path
# it failed to realise or substitute, e.g. `nix upgrade-nix`, `nix-store -r`)
# not a profile or out-link Nix keeps (`nix build`'s result, a profile or a generation of it,
# direnv's flake-profile, a link among the profiles or GC roots): Nix's own bookkeeping, where
# Nix setting or reading one fails (`nix-env --set`, `print-dev-env --profile`)
_PROFILE_LINK = (r"(?![^'’‘`]*/nix/var/nix/(?:profiles|gcroots)/(?:per-user/[^/'’‘`]+/)?"
                 r"[^/'’‘`]+['’])"
                 r"(?!(?:[^'’‘`]*/)?(?:result(?:-[^'’‘`/]*)?|[^'’‘`/.]*profile(?:[-.](?!nix['’])"
                 # possessive: each part takes all up to the next dot (a dash is in it: as
                 # `*`, every way to cut a run of dashes was tried, exponential in them)
                 r"[^'’‘`/.]*+)*|[^'’‘`/]*-\d+-link)['’])")
# nor a flake reference Nix's command line took for a relative path ("nixpkgs/<rev>" stat'ed as
# './nixpkgs/<rev>' when devbox fetches its registry): no file the evaluator reads is named by a
# bare Git revision
_REVISION_PATH = r"(?![^'’‘`]*/[0-9a-f]{40}['’])"
# nor a derivation (`….drv`, with its outputs `^*` or `!out`): an installable Nix's command line
# was given and looked for as a file (comin handing `nix build` a store path without its store
# directory, heldout-capt-23's comin-135), not a file an evaluation reads
_DRV_FILE = r"(?![^'’‘`]*\.drv(?:[\^!][^'’‘`]*)?['’])"
# nor a store derivation itself (`/nix/store/…-x.drv`, nothing under it): Nix writes and reads
# those (the garbage collector, `nix-store --optimise`, a build), the evaluator reads files of
# source trees
_STORE_DERIVATION = r"(?!/nix/store/[0-9a-z]{32}-[^/'’‘`\s]{1,255}\.drv['’])"
# nor a temporary directory's root itself (`/tmp`, `/var/tmp`, macOS's `/private/tmp` and
# `/var/folders/…/T`, a login's runtime directory `/run/user/<uid>`, which nix-shell hands on as
# TMPDIR): Nix resolves its own temporary directory (libutil/libstore's defaultTempDir, TMPDIR or
# the `temp-dir` setting, 2.18-2.35, Lix) before it builds, fetches or prefetches anything, and
# a missing one stops `nix-prefetch-url` as much as an evaluation; no file the evaluator reads
_TEMP_ROOT = (r"(?!(?:/run/user/\d+|/(?:private/)?tmp|/var/tmp"
              r"|(?:/private)?/var/folders/[^/'’‘`]+/[^/'’‘`]+/T)/?['’])")
_MISSING_PATH = re.compile(
    rf"(?:(?:getting status of|opening file|path|reading file|"
    rf"source tree referenced by {_Q}[^'’‘`]*{_QE} does not contain a) {_Q}{_PROFILE_LINK}"
    rf"{_REVISION_PATH}{_STORE_DERIVATION}{_DRV_FILE}{_TEMP_ROOT}"
    # a directory the evaluation reads inside a store tree (an input's source: readDir, an
    # import), as a file there; not one of the store's or the machine's own
    rf"|opening directory {_Q}(?=/nix/store/[0-9a-z]{{32}}-[^/'’\s]+/[^'’\s]))"
    rf"(?P<path>[^'’‘`]+){_QE}"
    # (not "does not exist in the store / in the Lix database / in NAR / in Git repository …":
    # the store's or a fetcher's own lookup, libstore and libfetchers 2.18-2.35, Lix 2.93+)
    r"(?:: No such file or directory| does not exist(?! and cannot be created| in )| file)")
# Nix 2.3-2.12's line after an error that went through the evaluator (libmain/shared.cc's
# handleExceptions prints it where the error has a trace and --show-trace is off)
_TRACE_HINT = re.compile(r"^\s*\(use '--show-trace' to show detailed location information\)\s*$")
_NOISE = (
    re.compile(r"^warning: not writing modified lock file of flake"),
    re.compile(r"^warning: Git tree '.*' is dirty$"),
    re.compile(r"^warning: creating lock file"),
    re.compile(r"^warning: updating lock file"),
    re.compile(r"^\s*(?:•|\u2022) (?:Added|Updated|Removed) input"),
    re.compile(r"^\s+'[^']*' \(\d{4}-\d\d-\d\d\)$"),
    re.compile(r"^\s+(?:→|\u2192) '"),
    re.compile(r"^\s+follows '"),
    _TRACE_HINT,
    re.compile(r"^trace: ci-nix:"),  # the evaluation worker's own answers
    re.compile(r"^\s*… while updating the "
               r"(?:lock file of flake 'path:[^']*ci-nix-helper-|flake input 'flake')"),
)


# (each at a line's start: one search of them all, anchored there)
_NOISE_START = re.compile("^(?:" + "|".join(p.pattern.removeprefix("^") for p in _NOISE) + ")")


def strip_noise(text: str) -> list[str]:
    """Lines of Nix's stderr without what ci-nix's helper flake adds (lock file notes)."""
    return [line for line in clean(text).splitlines() if not _NOISE_START.search(line)]


@dataclass(frozen=True)
class _Pos:
    index: int  # line number in the error text
    path: str
    line: int
    column: int
    store_hash: str | None
    rel: str | None  # path inside a /nix/store/...-source tree
    repo: str | None = None  # the workspace repo that tree is, when the sources say so


def _positions(lines: list[str], sources: Sequence[SourceTree] = ()) -> list[_Pos]:
    repos = {_store_hash(tree.store_path): tree.repo for tree in sources}
    found = []
    for index, text in enumerate(lines):
        for m in _positions_of(text):
            path = m["qpath"] or m["path"]
            if path.startswith(("«", "<")):
                continue  # «string», <nix/derivation-internal.nix>: nowhere a user can go
            source = _SOURCE.match(path)
            found.append(_Pos(index, path, int(m["line"]), int(m["col"]),
                              source["hash"] if source else None,
                              (source["rel"] or "/").lstrip("/") if source else None,
                              repos.get(source["hash"]) if source else None))
    # ci-nix's own helper flake: none of its positions help anyone
    helper = _helper_hashes(lines)
    return [p for p in found if p.store_hash is None or p.store_hash not in helper]


# ci-nix's helper flake (ci_nix/nix): eval.nix, and a flake.nix whose lib.ciNix imports it; the
# --apply expression that passes it its arguments shows as a «string» frame
_HELPER_CODE = re.compile(r"^\s*\d+\|\s*lib\.ciNix = ")
_HELPER_APPLY = "f: f (builtins.fromJSON "


def _helper_hashes(lines: list[str]) -> set[str]:
    """The store hashes of ci-nix's helper flake among the positions of a trace."""
    found = set()
    for index, text in enumerate(lines):
        for m in _positions_of(text):
            source = _SOURCE.match(m["qpath"] or m["path"] or "")
            if source is None:
                continue
            if (source["rel"] or "").lstrip("/") == "eval.nix" or any(
                    _HELPER_CODE.match(line) for line in lines[index + 1:index + 6]):
                found.add(source["hash"])
    return found


# Nix 2.4pre's header before a message on the next line: "--- Error --- nix", "---SysError---"
_PRE_HEADER = re.compile(r"-{3}\s*\w*\s*-{3}")
# the same header ending a line after other words: a remote build's "build of '…' on
# 'ssh://…' failed: error: --- Error --- nix-daemon", the remote daemon's message on the next line
_PRE_HEADER_AFTER = re.compile(r"\berror: -{3}\s*\w*\s*-{3,}\s*\w[\w-]*\s*$")


def _message(lines: list[str]) -> tuple[int, str]:
    """(line index, text) of the innermost error message: the last `error:` with text."""
    best = _message_at(lines)
    if best is not None:
        return best
    # no `error:` line (Nix crashed or was killed): its last line that is not a warning
    rest = [line.strip() for line in lines if line.strip() and not _SKIP.match(line)]
    return (len(lines) - 1, rest[-1] if rest else "evaluation failed")


def _message_at(lines: list[str]) -> tuple[int, str] | None:
    """(line index, text) of the last `error:` line with a message; None when none has one."""
    best: tuple[int, str] | None = None
    for index, line in enumerate(lines):
        m = _ERROR_LINE.match(line)
        if m is None:
            continue
        text = m[1].strip()
        if not text and index + 1 < len(lines):
            # Nix 2.8 put a bare "error:" line before messages that start on the next line (a
            # writer's mark of lines left out, "...", between them is no message)
            after = next((x for x in lines[index + 1:] if not _ELISION.match(x)), "")
            nxt = after.strip()
            if nxt and not nxt.startswith("…"):
                text = nxt
        if _PRE_HEADER.match(text) and index + 1 < len(lines) and lines[index + 1].strip() \
                and not _ERROR_LINE.match(lines[index + 1]):
            text = lines[index + 1].strip()  # Nix 2.4pre: "error: --- Error --- nix", then it
        if text and not _PRE_HEADER.match(text):
            best = _old_trace_message(lines, index) or (index, text)
    return best


def _old_trace_message(lines: list[str], index: int) -> tuple[int, str] | None:
    """Nix <= 2.3's trace: "error: while evaluating … at …:" and frames of its own lines,
    each ending in a colon; its message is the line after the last (none when cut before it)."""
    text = _ERROR_LINE.match(lines[index])[1].strip()  # type: ignore[index]
    if not (_OLD_FRAME.match(text) and text.endswith(":")):
        return None
    blank = 0
    for at in range(index + 1, len(lines)):
        line = lines[at].strip()
        blank = blank + 1 if not line else 0
        if blank > 1:  # (one blank line: a copy that double-spaced the lines)
            return None
        if not line or (_OLD_FRAME.match(line) and line.endswith(":")):
            continue
        if line.startswith("while ") or _ERROR_LINE.match(line) or _FRAME.match(line):
            return None
        return (at, line)
    return None


def _cut_trace(lines: list[str]) -> str | None:
    """The innermost frame of a trace whose message a copy cut off: an `error:` line (Nix
    2.13+ starts a trace with a bare one) and frames, but no message; None otherwise."""
    frames = [line for line in lines if _FRAME.match(line) or _OLD_FRAME.match(line)]
    if not frames or _message_at(lines) is not None \
            or not any(_ERROR_LINE.match(line) for line in lines):
        return None
    return frames[-1]


# a numbered line of Nix's code frame ("   4| { owner, repo, …"), not its caret line
_NUMBERED_CODE_LINE = re.compile(r"^\s*\d+\|")


def _framed_position(shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """An evaluation error a copy cut above its message: Nix's position of it (`at <file>:L:C:`
    alone on its line, which Nix prints only inside an error) with the code frame Nix prints
    under it (numbered source lines). Nothing else prints that pair; the message is lost, the
    position is the evaluator's (heldout-239's nix-update-304: the excerpt starts at it and a
    tool's Python traceback follows)."""
    texts = [line.text if line.builder is None else "" for line in shaped]
    for at, text in enumerate(texts):
        if not _POSITION_LINE.match(text):
            continue
        below = next((t for t in texts[at + 1:at + 4] if t.strip()), "")
        # (the line it hangs from, the first one less indented above it: a warning's position
        # is no error's, as Lix prints one for a deprecated feature)
        above = next((t for t in reversed(texts[:at])
                      if t.strip() and _indent(t) < _indent(text)), "")
        if _NUMBERED_CODE_LINE.match(below) and not _WARNING_TAG.match(above):
            return Diagnosis(FailureType.EVAL, Kind.ERROR, _one_line(
                f"evaluation failed {text.strip().rstrip(':')} (the log is cut off above "
                "its message)"), log_line=shaped[at].origin + 1, log=tail(texts[at:]))
    return None


def _trace_only(innermost: str, lines: list[str]) -> Diagnosis:
    """A trace without its message: its innermost frame says what Nix was doing."""
    fetching, setup = _FETCHING_FRAME.match(innermost), _BUILD_SETUP_FRAME.match(innermost)
    what = "fetching" if fetching else "setting up a build" if setup else "evaluation"
    return Diagnosis(FailureType.OTHER if fetching or setup else FailureType.EVAL,
                     Kind.DOWNLOAD if fetching else Kind.NIX if setup else Kind.ERROR,
                     _one_line(f"{what} failed (the log holds only its trace, last: "
                               f"{innermost.strip()})"),
                     hint=HINTS[Kind.DOWNLOAD] if fetching else HINTS[Kind.NIX] if setup
                     else None, log=tail(lines))


def _choose_position(positions: list[_Pos], message_at: int, flake: Flake | None,
                     sources: Sequence[SourceTree] = ()) -> _Pos | None:
    """The position that says most: right after the message, else the innermost trace frame.

    With a flake known, a position outside the user's code (nixpkgs, another input) gives way
    to the innermost one inside it, which is where the user can change something. With the
    flake's sources known, the user's code is every workspace repo, each store tree mapped to
    the repo it came from; without them, a file of the flake's repo at the same relative path.
    """
    after = [p for p in positions if p.index >= message_at]
    before = [p for p in positions if p.index < message_at]
    ordered = after[:1] + list(reversed(before)) + after[1:]
    if not ordered:
        return None
    if sources:
        return next((pos for pos in ordered if pos.repo is not None), None)
    if flake is None:
        return ordered[0]
    for pos in ordered:
        if pos.rel is not None and (flake.repo.path / pos.rel).is_file():
            return pos
    return None


def _store_hash(store_path: str) -> str:
    return store_path.removeprefix("/nix/store/").split("-", 1)[0]


# nixpkgs refusing a broken, unfree, insecure or unsupported package: an evaluation error
# (nixpkgs 25.05+ starts with its refusal); the advice after the reason (remediations.nix:
# "You can install it anyway by allowing this package", "a) To temporarily allow unfree
# packages, you can use an environment variable") says the same where a copy kept only that;
# so does check-meta.nix's older advice (before 2021: "a) For `nixos-rebuild` you can set
# { nixpkgs.config.allowUnfree = true; } in configuration.nix to override this. b) For `nix-env`,
# `nix-build`, `nix-shell` or any other Nix command you can add { allowUnfree = true; } to
# ~/.config/nixpkgs/config.nix."), by its sentences, their code marks kept or dropped (a
# configuration setting the option is none)
_REFUSAL = re.compile(
    r"[Rr]efusing to evaluate|You can install it anyway by (?:allowing|whitelisting) this "
    r"package|To temporarily allow (?:all insecure packages|unfree packages|packages that are "
    r"unsupported for this system|packages not built from source)|"
    r"\bFor `?nixos-rebuild`? you can set\b|\bin configuration\.nix to override this\b|"
    r"\bFor `?nix-env`?, `?nix-build`?, `?nix-shell`? or any other Nix command you can add\b")
# nixpkgs' module system's own messages (lib/modules.nix): thrown by the evaluator with "error:"
# before them, and pasted without it too (bare, in inline code, a fence); the option's name is
# quoted as the module system quotes it, `…' (a sentence's `…` is prose about an option)
_MODULE_MESSAGE = re.compile(
    rf"\bA definition for option {_Q}[^'’\n]{{1,1000}}['’] is not of type {_Q}|"
    # (also its option in a writer's code span, the closing quote a backtick, where a sentence
    # double-quotes the message as the error it got: "results in the error \"The option `a.b`
    # does not exist\"", heldout-497 nixos-search-847; unquoted, such a line is prose)
    rf"(?:\bThe option {_Q}[^'’\n]{{1,1000}}['’]|(?<=[\"“])The option `[^`'’\n]{{1,1000}}`) "
    r"(?:is used but not defined|"
    r"was accessed but has no value defined|does not exist|has conflicting definition values|"
    r"is read-only, but it's set multiple times|defined in \S.{0,1000}? does not exist|"
    r"in \S.{0,1000}? is already declared in|can no longer be used since)|"
    # (lib/types.nix's nullOr quoting the option in code marks both sides, "The option `a.b` is
    # defined both null and not null, in `…'"; the module system before 2020 naming the value,
    # "The option value `a.b' in `/etc/nixos/configuration.nix' is not a list.")
    r"\bThe option `[^`\n]{1,1000}` is defined both null and not null\b|"
    rf"\bThe option value {_Q}[^'’\n]{{1,1000}}['’] in {_Q}[^'’\n]{{1,1000}}['’] is not an? \w|"
    # its ends, where a copy cut a message before its first line: the advice after conflicting
    # definitions, the heading of the values listed after "is not of type" (alone on its line)
    r"\bUse `lib\.mkForce value` or `lib\.mkDefault value` to change the priority\b|"
    r"^[^\w`'\n]{0,40}Definition values:\s*$|"
    # and a definition the values list names (lib/options.nix showDefs: "- In `FILE': VALUE",
    # NixOS' quotes, the file a path or "<unknown-file>"), where only the list survived
    r"^[^\w`'\n]{0,40}- In `[/<][^`'\n]{0,1000}'(?::|$)|"
    # and its first line cut before the option's name ended its quote: a dotted option path
    # closed by NixOS' quote without its opening "The option `" ("….flavor' does not exist"; a
    # sentence quotes a whole name, `like this`)
    r"(?:^|(?<=[\s`\"]))[A-Za-z_][\w-]{0,100}(?:\.[\w\"<>*-]{1,100}){1,30}['’] "
    r"(?:does not exist|is used but not defined|was accessed but has no value defined|"
    r"has conflicting definition values)\b|"
    # and any of its throws that opens a line (after indentation, a bullet, markdown's marks):
    # every one names the option first, quoted as NixOS quotes (lib/modules.nix, options.nix:
    # "… in module `…' would be a parent of the following options", "… is defined multiple
    # times while it's expected to be unique", mkRemovedOptionModule's "The option definition
    # `…' … no longer has any effect"); not the rename warnings of mkRenamedOptionModule and
    # mkChangedOptionModule, whose "evaluation warning:" a wrapped copy may have lost
    rf"^[^\w`'\n]{{0,40}}The option (?:definition )?`[^`'’\n]{{1,1000}}' "
    r"(?!(?:defined in [^\n]{0,1000}? )?has been (?:renamed|changed)\b)|"
    # and the throws about a module itself, not an option (lib/modules.nix: unifyModuleSyntax,
    # loadModule, the class check, pushDownProperties' "You're trying to declare …")
    r"^[^\w`'\n]{0,40}(?:Module `[^`'’\n]{1,1000}' has an unsupported attribute `|"
    r"Module imports can't be nested lists\b|You're trying to declare a value of type `|"
    r"The module \S{1,1000} was imported into \S{1,200} instead of \S)")
# the evaluator refusing what its mode or settings forbid (eval.cc, primops, fetchTree: "in pure
# evaluation mode, 'fetchTarball' requires a 'sha256' argument", "access to canonical path '…' is
# forbidden in restricted mode", the import-from-derivation refusal): also pasted without their
# "error:"
# The evaluator's refusal to build while it evaluates (primops.cc, eval.cc: "cannot build '%s'
# during evaluation because the option 'allow-import-from-derivation' is disabled"; Lix the same):
# its head alone names it, as a copy keeps it (cut before "because", its path elided, in a
# sentence's code span: "`.drvPath` fails with `cannot build '…-source.drv^out' during
# evaluation`")
_IFD_REFUSAL = re.compile(r"\bcannot build ['‘][^'’\n]{1,1000}['’] during evaluation\b|"
                          # (Nix 2.3: "attempted to realize '…' during evaluation but
                          # 'allow-import-from-derivation' is false")
                          r"\bduring evaluation but ['‘]allow-import-from-derivation['’] is "
                          r"false\b")
_EVAL_MODE_REFUSAL = re.compile(
    r"\bin pure evaluation mode, ['‘][^'’\n]{1,200}['’] requires\b|"
    r"\bis (?:forbidden|not allowed) in (?:pure|restricted) (?:evaluation )?mode\b|"
    + _IFD_REFUSAL.pattern)
# libstore's InvalidPath ("path '%s' is not valid", store-api.cc, local-store.cc): a store path
# Nix was asked about that the store does not hold; a copy quoting it without "error:" (a
# sentence's code span, a writer who elided the hash, its closing quote lost with it) still names
# Nix's own failure
_INVALID_PATH = re.compile(r"\bpath ['‘]/nix/store/[^\s'’`]{1,512}['’]? is not valid\b")
# a program that crashed: a C assertion (its backquote may be gone: a copy read it as markdown),
# a signal, an uncaught C++ exception, a Rust panic
# an interactive shell's report of the job a signal killed (zsh's own names, fish's): no build
# runs those shells (a builder's shell is bash), so the job is the command the user ran
_JOB_KILLED = (r"\bzsh: (?:segmentation fault|bus error|illegal hardware instruction|abort|"
               r"floating point exception)\b|\bfish: Job \d+, .{1,200} terminated by signal SIG")
# (an assertion's expression is on its line and short: "[^']*" ran from each "Assertion " to the
# text's end, quadratic in a throw's message of them, 512 kB 38 s)
_CRASH = re.compile(r"Assertion [`']?[^'\n]{0,1000}' failed|Segmentation [Ff]ault|core dumped|"
                    r"[NL]ix crashed|unexpected unrecoverable internal error|"
                    r"terminate called after throwing|died with <Signals\.SIG|panicked at|"
                    # a shell's report of a child a signal killed: "script: line 226:  5362
                    # Bus error   nix-build …" (strsignal's words, after the job's pid)
                    r"\bline \d+: +\d+ (?:Bus error|Segmentation fault|Illegal instruction|"
                    r"Aborted|Floating point exception|Killed|Terminated)\b|"
                    # libstore aborting a program that links it uninitialised (nix-serve's Perl,
                    # attic's Rust): globals.cc's assertLibStoreInitialized printError()s this
                    # and abort()s, with no "error:" before it
                    r"must call nix::initNix\(\) before|" + _JOB_KILLED)

# Errors of Nix itself, its store, daemon or configuration, not of the expression: they end an
# evaluation too (a trace is printed around them), but no change to the code fixes them
_NIX_ITSELF = re.compile(
    r"cannot connect to (?:socket|daemon)|could not connect to any \S+ socket|"
    # the daemon going away under the client, or unable to listen (Nix 2.20+'s wording for
    # the end-of-file a crashed daemon leaves; its own log's "unexpected Nix daemon error")
    r"Nix daemon disconnected unexpectedly|unexpected Nix daemon error|cannot bind to socket|"
    r"is not allowed to connect to the Nix daemon|"
    r"cannot open connection to remote store|lacks a valid signature|"
    r"not signed by any of the keys|invalid character in Base64|compressed (?:log )?file|"
    r"No space left on device|database is locked|cannot allocate memory|"
    # the store's database and Nix's caches ("executing SQLite statement '…': unable to open
    # database file (in '/nix/var/nix/db/db.sqlite')", "SQLite database '…' is busy")
    r"\bSQLite (?:database|statement|error)\b|"
    # (strerror's "Read-only file system" as Nix's SysError ends with it, "creating directory
    # '/nix/store/…': Read-only file system", and the lower case a tool's wording has)
    r"Too many open files|unable to start build process|[Rr]ead-only file system|"
    # libstdc++'s std::filesystem error Nix lets through from its own file operations (the
    # optimiser's hard links, a build's renames): "filesystem error: cannot create hard link:
    # <strerror> [path] [path]", with or without the "error: " before it
    r"\bfilesystem error: cannot [a-z ]{1,40}: |"
    # libstore's build users (UserLock): the group Nix is told to take them from is empty
    r"\bbuild users group ['‘][^'’\n]{1,200}['’] has no members|"
    r"unexpected end-of-file|preallocating file|error: interrupted by the user|"
    # (libutil's readLine on the daemon's or the build hook's pipe, closed under it)
    r"unexpected EOF reading a line|"
    r"unable to execute 'ssh'|failed to start SSH connection|Host key verification failed|"
    # a program Nix must run itself not on its PATH (ssh for a remote store or builder, git
    # for a fetcher: libutil's ExecutableLookupError, Nix 2.24+)
    r"Could not find executable ['‘]|"
    r"unable to open SSH connection|experimental Nix feature '[^']*' is disabled|"
    r"syntax error in configuration line|"
    r"SSH to '[^']*' failed|lacks a signature by a trusted key|"
    r"protocol mismatch|cannot connect to '|remote machine failed to import closure|"
    r"failed to add path '[^']*' to remote host|don't know how to open Nix store|"
    r"error reading daemon response|bad machine specification|error parsing derivation|"
    r"has no valid outputs registered|are registered and valid in this store|"
    # libutil's NAR reader refusing what it was given (`nix nar ls` on an export, a cut NAR)
    r"\bbad archive: |doesn't look like a Nix archive|"
    # a signing key of Nix's configuration it cannot read (libutil's signature code)
    r"^(?:secret |public )?key is corrupt|"
    r"pasta (?:exited|killed)|"
    # the build sandbox could not be set up: the machine's kernel or Nix's settings (its
    # cgroups too: the daemon's own, set up before the builder's child starts, so without the
    # "… while setting up the build environment" frame: "cannot determine the cgroups file
    # system", "expected cgroup directory '…'", "creating cgroup '…'")
    r"sandbox network setup|sandboxed build|sandboxing|kernel namespaces|user namespace|"
    # Determinate Nix's WASI builder setting up its sandbox ("cannot add store directory to WASI
    # config", wasi-derivation-builder.cc v3.18+)
    r"\bto WASI config\b|"
    # the namespaces as Lix's sandbox names them ("failed to open userns"), the system paths
    # Darwin's sandbox requires ("getting attributes of required path \"…\""), and what Nix's
    # own build machinery cannot do or needs a setting of Nix's for ("building using a diverted
    # store is not supported …", "'recursive-nix' is not supported yet by external derivation
    # builders", recursive Nix's "unsupported build mode", "feature 'uid-range' requires the
    # setting '…' to be enabled"); Lix's scan of /proc for GC roots ("overly long symlink
    # starting with '…'")
    r"\b(?:user|net)ns\b|\bof required path\b|\bdiverted store\b|"
    r"\bexternal derivation builders?\b|\bunsupported build mode\b|"
    r"\brequires the setting ['‘`][a-z][a-z0-9-]{1,60}['’`]|\boverly long symlink\b|"
    r"(?:mount|network|pid|ipc|uts) namespace|\bcgroups?\b|\bsandbox\b|"
    r"seccomp|unable to make '/' private|cannot pivot old root|setgroups failed|landlock|"
    r"while waiting for the build environment for |"
    # the machine refused Nix (a store, profile or lock file it may not touch), or the store
    # lacks a path it was told is there: store and system errors, never the expression's
    r"Permission denied|Operation not permitted|opening lock file|big-lock|"
    r"^path '[^']*' is not (?:valid|in the Nix store)|don't know how to build these paths|"
    r"the store is not owned by|Input/output error|Resource temporarily unavailable|"
    r"Broken pipe|Connection reset by peer|Disk quota exceeded|Cannot allocate memory|"
    # strerror(3) of the calls only Nix's own work on its store and locks makes (removing,
    # renaming, locking: the GC's "cannot unlink '/nix/store/…': Directory not empty",
    # "acquiring/releasing lock: Bad file descriptor"), never an evaluation's reading a file
    r"Directory not empty|Bad file descriptor|Invalid cross-device link|Stale file handle|"
    r"Device or resource busy|Structure needs cleaning|"
    # a program Nix itself ran for one of its steps (git for a lock file, a post-build hook)
    r"\bprogram ['‘][^'’\n]{1,4096}['’] failed with exit code|"
    r"cloning builder process|unable to fork|cannot fork|(?:user|group) '[^']*' .{0,200}does not "
    r"exist|suspicious ownership or permission|requires non-existent output|"
    r"some outputs of '[^']*' are not valid|"
    # the store's own state, as libstore checks it (local-store.cc, worker.cc, derivation-goal.cc,
    # Nix 2.18-master, Lix): its database's schema or format ("current Nix store schema is
    # version 11, but I only support 10", "Your Nix store has a database in Berkeley DB format",
    # "need to migrate to content-addressed schema, but …"), a path it finds broken while
    # repairing or verifying ("path '…' is corrupted or missing!", "found corrupted or missing
    # path '…' in the output closure of '…'", "… disappeared, but it still has valid
    # referrers!", "some paths in the output closure of … could not be repaired"), a
    # content-addressed realisation it registers, a path too large to copy in (Determinate)
    r"\bNix store (?:(?:ca-)?schema is version|has a database in)|content-addressed schema|"
    r"\bcorrupted or missing\b|still has valid referrers|in the output closure of|"
    r"\bregister(?:ing)? a realisation\b|won't copy large path|"
    # Nix's settings and hooks named as Nix names them ("'build-hook' setting is empty", "check
    # the `allowed-users` setting in the daemon", "unknown pre-build hook command '…'"; not a
    # setting a flake's lock file is refused by, "… but the `allow-dirty` setting is set to
    # false", libflake's), and the daemon refusing a user
    r"['‘`][a-z][a-z0-9-]{1,60}['’`] setting is empty\b|"
    r"\bcheck the ['‘`][a-z][a-z0-9-]{1,60}['’`] setting\b|\bpre-build hook\b|"
    r"access denied by the (?:Nix|Lix) daemon|"
    # the machine's terminal and process table as only Nix's own work reads them (the build's
    # pseudoterminal, `nix ps` parsing /proc/<pid>/stat)
    r"pseudoterminal|Inappropriate ioctl for device|"
    r"\b(?:parse|read|open)\w{0,3} /proc/(?:self|\d+)/|"
    # the store optimiser's hard links between its own directory of links and a store path,
    # either way ("cannot link '/nix/store/.tmp-link-…' to '/nix/store/.links/…': File exists")
    r"\bcannot link ['‘][^'’\n]{0,4096}['’] to ['‘]/nix/store/\.links/|"
    r"\bcannot link ['‘]/nix/store/\.(?:links/|tmp-link)|"
    # the crash handler of Nix, Lix and Determinate Nix (libmain's onTerminate: "Exception:
    # <type>: <what>" before "Stack trace:") names what it died of by its C++ type, whatever
    # that is ("std::__1::system_error: mutex lock failed", "nix::Unsupported: …"): Nix dying
    r"(?:^|\s)Exception: (?:[A-Za-z_]\w{0,100}::)+[A-Za-z_]|" + _CRASH.pattern)
# (searched by its alternatives' literals: a message holds those of few)
_NIX_ITSELF_CHOICE = Choice(_NIX_ITSELF)


# libstore's checks of a derivation's structured attributes as it builds it: "attribute
# 'allowedReferences' of derivation '…' must be a list of strings" (parsed-derivations.cc
# 2.18-2.28), "attribute 'preferLocalBuild' must be a Boolean" (derivation-options.cc 2.29+)
_DRV_OPTION = re.compile(r"attribute ['‘][^'’\n]{1,1000}['’] "
                         r"(?:of derivation ['‘][^'’\n]*['’] |of )?"
                         r"must be an? (?:Boolean|list of strings|string|integer)\b")
# a message whose subject is a command-line flag, or a command the user typed that Nix refuses
# to run as given (the repl's "cannot use ':load-flake' on unlocked flake reference '…' (use
# --impure to override)": the command, not the flake, is what is refused)
_FLAG_SUBJECT = re.compile(r"['‘]?--[a-z][\w-]*['’]? (?:has been|was|is|are) |"
                           r"cannot use ['‘](?:--|:)[a-z][\w-]*['’] ")
# A fetcher's own reading of an input's attributes as a lock file or a flake reference spells
# them, and of a Git repository's history (libfetchers fetchers.cc, git.cc, git-utils.cc,
# Nix 2.18-2.35, Lix 2.90-2.95): "input attribute 'rev' is not a string", "'narHash' attribute
# mismatch in input …", "Failed to retrieve the parent of Git commit '…'. This may be due to an
# incomplete repository history … builtins.fetchGit …" (advice naming a builtin, not the
# evaluator's words), "cannot convert '…' to a Git OID". `flake input attribute` is libflake's.
# And the Git fetcher failing to reach a revision or a reference of the repository it fetches
# (git.cc, git-utils.cc, github.cc, Nix 2.18-2.35; Lix's git.cc and github.cc): "Cannot find Git
# revision '…' in ref '…' of repository '…'!", "Failed to fetch git repository '…'",
# "resolving Git reference '…': …", "checking git reference '…': …", GitLab's "No commits
# returned by GitLab API -- does the (git) ref really exist?", Lix's "in '…', couldn't find ref
# '…'" / "couldn't resolve HEAD ref '…'". The fetcher's own words decide over the evaluator's
# frames around them (the fetchGit call, a derivation's inputs, a truncated trace), as
# "program 'git' failed" and "unable to download" already do (fresh README, the lead's
# conventions of 18:45; heldout-190's purs-nix-64).
_FETCHER_OWN = re.compile(
    r"\bunsupported (?:[\w-]+ )?input attribute ['‘]|(?<!flake )\binput attribute ['‘]|"
    r"['’] attribute mismatch in input ['‘]|attribute to specify input scheme|"
    r"input attribute type in lock file|\bparent of Git commit\b|"
    r"incomplete repository history|to a Git OID\b|"
    r"\bCannot find (?i:git) revision ['‘]|\bFailed to fetch (?i:git) repository ['‘]|"
    r"\b(?:resolving|checking) (?i:git) reference ['‘]|"
    r"does the (?:git )?ref really exist\?|\bcouldn't (?:find|resolve HEAD) ref ['‘]")
_FETCHER_OWN_CHOICE = Choice(_FETCHER_OWN)  # (searched by its alternatives' literals)


# a final (locked) input whose fetched NAR hash differs from its lock: libfetchers' checkLocks
# (fetchers.cc, Nix 2.29+) names the field ("mismatch in field 'narHash' of input '{…}', got
# '{…}'") where it said "NAR hash mismatch in input" of an input not final; another field
# ('rev', 'lastModified') is no hash
_NAR_HASH_FIELD = re.compile(r"\bmismatch in field ['‘]narHash['’] of input\b")
# Nix 2.0-2.3's hash check of a fetched file or an added path with an expected hash, by the store
# path that hash gives (download.cc's downloadCached, primops.cc's builtins.path)
_STORE_PATH_MISMATCH = re.compile(r"\bstore path mismatch in (?:file downloaded|\(possibly "
                                  r"filtered\) path added) from ['‘]")
# a file of a flake Git does not track (libfetchers git.cc 2.29+, master quoting the repository
# in double quotes): the file the user must `git add`, relative to that repository
_UNTRACKED_IN_REPO = re.compile(r"\bPath ['‘](?P<rel>[^'’\n/][^'’\n]{0,4095})['’] in the "
                                r"repository [^\n]{1,4096}? is not tracked by Git\b")
_NOT_IN_STORE = re.compile(r"path ['‘][^'’]*['’] is not in the Nix store")
# the evaluator's position at the end of its message, as Nix <= 2.3 printed it ("…, at /f.nix:4:8")
_OLD_POSITION = re.compile(r",? at (?:/\S{1,4096}|\S{1,4096}\.nix):\d+:\d+$")

# the evaluator's and Nix's messages _eval_kind reads a kind from
_DID_YOU_MEAN = re.compile(r"Did you mean ([^?]+)\?")
_MISSING_ATTRIBUTE = re.compile(r"attribute '[^']*' missing")
_DOWNLOAD_FAILED = re.compile(
    r"unable to download|error: Couldn't resolve host|HTTP error \d+|"
    r"cannot download \S+ from any mirror|is not built with S3 support|"
    r"S3 object ['‘]s3://[^'’\s]+['’] does not exist|"
    # the file transfer's own machinery (filetransfer.cc, Lix 2.91+): its thread shutting down
    # under a request, curl's handle not telling its scheme; the AWS client and credentials it
    # signs S3 requests with (aws-creds.cc, Nix 2.33+: "failed to create AWS client bootstrap")
    r"\bdownload request\b|download thread is shutting down|\bcurl handle\b|"
    r"\bAWS (?:client|credentials?)\b|\bcurl (?:\w+ ){0,2}(?:handle|socket)\b|"
    r"\bS3 (?:URI|URL|bucket)\b")
_DOWNLOAD_FAILED_CHOICE = Choice(_DOWNLOAD_FAILED)  # (searched by its alternatives' literals)
_SUBSTITUTER_FAILED = re.compile(
    r"\bsubstituter\b|binary cache|NAR for '[^']*' fetched from|NAR info file")
_ASSERTION_FAILED = re.compile(r"assertion (?:.{0,1000} )?failed")  # (Nix <= 2.2: no condition)
_TYPE_ERROR = re.compile(
    r"^(?:cannot (?:add (?!path ['‘])|coerce|compare|convert .{0,200} to )|"
    r"value is .{0,200} while .{0,200} was expected|expected a .{0,200} but found|"
    r"[Ee]xpected [^\n]{1,200}? to be an? [\w ]{1,60} but found (?:an? [a-zA-Z]|null\b))")


def _eval_kind(message: str, lines: list[str],
               traced: bool = False) -> tuple[FailureType, Kind, str | None]:
    """(type, kind, hint) for an evaluation error message (`traced`: Nix 2.3-2.12's _TRACE_HINT
    followed it)."""
    trace = "\n".join(lines)
    if "infinite recursion encountered" in trace:
        return FailureType.EVAL, Kind.INFINITE_RECURSION, HINTS[Kind.INFINITE_RECURSION]
    if "does not provide attribute" in message:
        did = _DID_YOU_MEAN.search(trace)
        hint = HINTS[Kind.MISSING_FLAKE_OUTPUT] + (
            f"; did you mean {did[1].strip()}?" if did else "")
        return FailureType.EVAL, Kind.MISSING_FLAKE_OUTPUT, hint
    if _MISSING_ATTRIBUTE.search(message):
        return FailureType.EVAL, Kind.MISSING_ATTRIBUTE, HINTS[Kind.MISSING_ATTRIBUTE]
    frames = [line for line in lines if _FRAME.match(line)]
    if frames and _THROWN.search(frames[-1]):
        # the innermost frame is the `throw`/`abort` call itself: the message is the flake's
        # own text, whatever it names (`throw "No space left on device"`, "… binary cache …"
        # is no failure of Nix's, the machine's or a download)
        return FailureType.EVAL, Kind.THROW, None
    if "hash mismatch" in message or _NAR_HASH_FIELD.search(message) \
            or _STORE_PATH_MISMATCH.search(message):
        return FailureType.HASH_MISMATCH, Kind.HASH_MISMATCH, None
    if "option 'allow-import-from-derivation' is disabled" in message \
            or _IFD_REFUSAL.search(message):
        return FailureType.EVAL, Kind.IMPORT_FROM_DERIVATION, HINTS[Kind.IMPORT_FROM_DERIVATION]
    if _DOWNLOAD_FAILED_CHOICE.found(message):
        return FailureType.OTHER, Kind.DOWNLOAD, HINTS[Kind.DOWNLOAD]
    if _SUBSTITUTER_FAILED.search(message):  # disabled, died, unreachable, corrupt: not the code
        return FailureType.OTHER, Kind.SUBSTITUTION, HINTS[Kind.SUBSTITUTION]
    if frames and _FETCHING_FRAME.match(frames[-1]) and not _MISSING_PATH.search(message):
        # the innermost frame: Nix was fetching a flake input or a source, not evaluating
        # (git failing, a fetcher's own error)
        return FailureType.OTHER, Kind.DOWNLOAD, HINTS[Kind.DOWNLOAD]
    if _NOT_IN_STORE.match(message) and (any(_EVAL_FRAME.search(frame) for frame in frames)
                                         or _OLD_POSITION.search(message)):
        # libstore's toStorePath refusing a path outside the store: Nix's own for its command
        # line (`nix copy ./x`), the expression's under the evaluator's frames
        # (`builtins.storePath`, a string coerced to a store path)
        return FailureType.EVAL, Kind.ERROR, None
    if frames and _LOCK_UPDATE_FRAME.match(frames[-1]) and (
            "/flake.lock'" in message or "/flake.lock’" in message):
        # Nix writing the lock file it updated failed on that file ("opening file
        # '…/flake.lock': Permission denied"): the flake's lock file cannot be written, the
        # evaluation's failure as "cannot write modified lock file" is (round 11's convention)
        return FailureType.EVAL, Kind.ERROR, None
    if _NIX_ITSELF_CHOICE.found(message):
        return FailureType.OTHER, Kind.NIX, HINTS[Kind.NIX]
    if _DRV_OPTION.match(message.strip()):
        # libstore checking a derivation's structured attributes when it builds it
        # (parsed-derivations.cc 2.18-2.28, derivation-options.cc 2.29+): its settings refused
        # after the evaluation, as the store reads them
        return FailureType.OTHER, Kind.ERROR, None
    if _FLAG_SUBJECT.match(message.strip()):
        # Nix's command line about one of its flags ("--write-to has been removed because it
        # was insecure and broken", Lix 2.95), not a removed attribute a `throw` names
        return FailureType.OTHER, Kind.ERROR, None
    if _FETCHER_OWN_CHOICE.found(message):
        # a fetcher refusing an input's attributes as a lock file or a flake reference spells
        # them (libfetchers: "unsupported tarball input attribute 'lastModified'"), often a lock
        # file a newer Nix wrote: Nix's own reading of the input, not the evaluator's
        return FailureType.OTHER, Kind.ERROR, None
    if _ASSERTION_FAILED.search(message) or "condition of the assertion" in trace:
        return FailureType.EVAL, Kind.ASSERT, None
    if message.startswith("undefined variable"):
        return FailureType.EVAL, Kind.UNDEFINED_VARIABLE, None
    if message.startswith("syntax error"):
        return FailureType.EVAL, Kind.SYNTAX, None
    if _TYPE_ERROR.search(message):
        return FailureType.EVAL, Kind.TYPE, None
    # Lix names the frame of a `throw` "… caused by explicit throw"
    if _THROWN.search(trace):
        return FailureType.EVAL, Kind.THROW, None
    if (frames and _BUILD_SETUP_FRAME.match(frames[-1])) or _SANDBOX_PATH.search(message) \
            or _SETUP_FAILED.match(message):  # (Nix <= 2.3: the frame's words on the error line)
        return FailureType.OTHER, Kind.NIX, HINTS[Kind.NIX]  # Nix preparing a build's sandbox
    json = _JSON_LIBRARY.search(message)
    if json is not None and json.start() == 0 \
            and not any(_EVAL_FRAME.search(line) for line in lines):
        # the JSON library's own parse error on Nix's line, no frame of the evaluator's: Nix
        # reading a JSON file of its own (a lock file holding a merge's conflict markers); its
        # "syntax error while parsing …" is no Nix syntax error. `builtins.fromJSON`'s comes
        # under the evaluator's frames
        return FailureType.OTHER, Kind.ERROR, None
    # (the JSON library's words inside Nix's message, "cannot process __json attribute of '…':
    # [json.exception.parse_error.101] … syntax error while parsing …", are no evidence: only
    # what Nix says before them, "Could not parse '…/flake.lock'" is the lock file's)
    if _evaluated(message, lines) if json is None else _evaluated(
            message[:json.start()], [line.split("[json.exception.", 1)[0] for line in lines]):
        return FailureType.EVAL, Kind.ERROR, None
    if _bare_throw(message, lines) or _cut_trace_message(message, lines):
        return FailureType.EVAL, Kind.THROW, None
    if _about_nix_itself(message) or (frames and _about_nix_itself(frames[-1].strip())):
        # no sign of the evaluator, and what it is about is Nix's own machinery (or the
        # innermost frame, libstore's "… while parsing derivation '…'", says it was at it)
        return FailureType.OTHER, Kind.NIX, HINTS[Kind.NIX]
    if traced and _WRITERS_WORD.match(message.strip()) and not _NIX_SENTENCE.search(message):
        # no finer reading, Nix 2.3-2.12's --show-trace hint after it (the error went through
        # the evaluator, its frames hidden), and it opens with a capitalised word, as an
        # expression's `throw` does and none of Nix's own messages there ("failed to extract
        # archive (…)" is a fetcher's under the evaluator): nixpkgs' `throw "Unsupported
        # system"`, poetry2nix's "Missing suitable source/wheel file entry for …"
        return FailureType.EVAL, Kind.THROW, None
    # no sign of the evaluator: Nix's own command line, store, fetcher or daemon said it
    return FailureType.OTHER, Kind.ERROR, None


# Kind `nix` by the subsystem a message is about, not by its wording (issue 26; rounds 172-176 of
# tests/data/fresh): asked only of an error no finer reading claimed and with no sign of the
# evaluator (the last step of _eval_kind), so an evaluation, a build, a download or a tool's own
# error never gets here. Four structural marks of libstore's failures (Nix 2.18-master, Lix,
# Determinate):
# - what it is about is one of Nix's own subsystems, by the noun libstore uses for it: a store
#   named as a store (by kind or URI: "… is not supported for 'dummy://' store"); a store path
#   as the subject the store refuses ("store path '…' starts with illegal character '.'", "path
#   '/nix/store/…' already exists"; not a command line's "output selection on non-derivation
#   store path '…'"); its database and
#   schema (not a Git object database, libfetchers', nor S3's XML schema); its derivation
#   files' ATerm format ('Derive'); the daemon and the trust it gives (its trusted status, "not
#   privileged to"); build users (nixbld, nixbld1…, UIDs/GIDs) and plugins (plugin-files);
#   the jail or chroot a sandbox builds in;
#   SSH (Nix's connection to remote stores and builders: the capitalised name, not an ssh://
#   URL a fetcher clones); the build hook and remote machines or builders (not a deployment
#   tool's "remote host"); realisations; the build results a daemon or builder reports back
#   (BuildResult); the garbage collector (GC); NARs, Nix's archives; the loopback of a sandbox's
#   network; signatures (not Git's commit signatures) and a
#   signing key as the subject ("secret key is not valid", "key generation failed"; not "you
#   must specify a secret key file", nor a key named in quotes); a derived path (the store's
#   DerivedPath, as the worker protocol names it); a sandbox's impure (host) paths;
# - the data it refuses is Nix's own, written by another version of Nix (a schema, a manifest, a
#   format "version N is no longer supported", a daemon "too old");
# - a path of Nix's own state (/nix/var/nix outside the user's profiles, /etc/nix, nix.conf, the
#   store's .links/.trash, a build's chroot or home, /proc, the cgroup file system, a cache
#   directory of Nix's: ~/.cache/nix, /var/cache/nix);
# - a system call's failure about no object of the user's (libutil's SysError: a phrase of
#   what Nix was doing, no quote, no path, then strerror's words): Nix's own process,
#   pipe, lock or sandbox work ("duping over stdin: Bad file descriptor").
_NIX_SUBSYSTEM = re.compile(
    r"\b(?:Nix|Lix|local|remote|binary cache|dummy|daemon|SSH) store\b|"
    r"['‘][a-z][\w+.-]{0,30}://[^'’\s]{0,1000}['’] store\b|\bby store ['‘]|"
    r"^(?:store path ['‘]|path ['‘]/nix/store/)|(?<!object )\bdatabase\b|"
    r"\b(?:store|CA|ca-) ?schema\b|\bschema version\b|"
    r"['‘]Derive['’(]|\bATerm\b|\bparsing derivation ['‘]|"
    r"\b(?:Nix|Lix) daemon\b|\bnix-daemon\b|\bthe daemon\b|\btrusted (?:status|users?)\b|"
    r"\bnot privileged to\b|\bfrom remote\b|"
    r"\bbuild users?\b|\bnixbld\d*\b|\bplugin(?:-files| files?)\b|\b[UG]IDs?\b|"
    r"\b(?:setuid|setgid|setgroups)\b|"
    r"\bjail\b|\bchroot\b|"
    # (not an SSH key: one a flake input's publicKeys hold is the user's, libfetchers')
    r"\bSSH\b(?! keys?\b)|\bbuild hook\b|\bremote (?:machine|builder)s?\b|"
    r"\brealisations?\b|\bbuil[dt] results?\b|\bgarbage collector\b|\bGC\b|\bNAR\b|"
    r"\bloopback\b|\bderived paths?\b|\bimpure (?:host )?paths?\b|"
    # the daemon's record of the builds it runs (Determinate's `nix ps`); a remote builder's
    # speed factor, a column of the builders setting (heldout-205)
    r"\bactive builds?\b|\bspeed factor\b|"
    r"(?<!commit )\bsignatures?\b|^(?:the )?(?:(?:secret|public|signing) )?keys?\b(?! ['‘\"])|"
    r"\b(?:is no longer supported|only supports?|unsupported|too old|too new)\b"
    r"[^\n]{0,80}\bversion\b|"
    r"\bversion\b[^\n]{0,80}\b(?:is no longer supported|is not supported|only supports?|"
    r"is too old|is too new)\b|"
    r"/nix/var/nix/(?!profiles\b)|/etc/nix/|\bnix\.conf\b|/nix/store/\.(?:links|trash)\b|"
    r"\.drv\.chroot\b|/homeless-shelter\b|/proc/|/sys/fs/cgroup\b|/\.?cache/nix/")
_NIX_SUBSYSTEM_CHOICE = Choice(_NIX_SUBSYSTEM)  # (searched by its alternatives' literals)
_STRERROR = (
    r"(?:No such file or directory|Permission denied|Operation not permitted|Invalid argument|"
    r"Bad file descriptor|No space left on device|Not a directory|Is a directory|File exists|"
    r"Too many open files|Resource temporarily unavailable|Function not implemented|"
    r"Operation not supported|No such process|Interrupted system call|Input/output error|"
    r"Read-only file system|Directory not empty|Broken pipe|No child processes|"
    r"Device or resource busy|Cannot allocate memory|Inappropriate ioctl for device|"
    r"Too many links|Text file busy|Invalid cross-device link|No such device|Bad address|"
    r"Value too large for defined data type|Disk quota exceeded|Stale file handle|"
    r"Protocol not supported|Address family not supported by protocol|"
    r"No buffer space available|Operation not supported by device)")
_OWN_SYSCALL = re.compile(r"[A-Za-z][^'\"‘’“”`/\n:]{2,120}(?:: [^'\"‘’“”`/\n:]{1,120})?: "
                          + _STRERROR + r"\s*$")


# - where it is thrown: Nix's serialisers (worker-, serve- and common-protocol, build results)
#   refuse a value read from the other side as a capitalised "Invalid <what>" naming no value
#   of the user's ("Invalid build mode", "Invalid tag 7 for single derived path", "Invalid GC
#   action", "Invalid BuildMode", "Invalid trusted status from remote"); the other messages
#   of Nix, Lix and Determinate that open so quote their value or give it after a colon (Lix's
#   settings, its completions), and libexpr's fromJSON ("Invalid JSON Value") is kept out. The
#   value it read may follow as one unquoted token (the serve protocol's "Invalid derivation
#   output id sha256:…!out")
_SERIALISER_REFUSAL = re.compile(
    r"Invalid (?!JSON\b)[A-Za-z][A-Za-z0-9 ]{2,80}(?: [\w:!+.-]{1,200})?")

# a command-line flag quoted in a message: what the message refuses is then the command line's
# (asked before the subsystem's nouns, which a flag's advice names too: "… with `--store local`")
_FLAG_NAMED = re.compile(r"['‘`]--[a-z][a-z-]{0,60}\b")


def _about_nix_itself(message: str) -> bool:
    """Whether an error no finer reading claimed is about Nix's own machinery (see
    `_NIX_SUBSYSTEM`): its store, daemon, settings, sandbox, users, remote builders."""
    text = message.strip()
    if _FLAG_NAMED.search(text):
        # the command line's: what it refuses is a flag the user gave or must give ("building on
        # an SSH store is incompatible with '--eval-store'", "… try running the command again
        # with `--store local`")
        return False
    head = text.split("\n", 1)[0]
    return bool(_NIX_SUBSYSTEM_CHOICE.found(text) or _OWN_SYSCALL.fullmatch(head)
                or _SERIALISER_REFUSAL.fullmatch(head))


# nlohmann::json's exceptions as Nix prints them ("[json.exception.parse_error.101] parse error at
# line 154, column 1: syntax error while parsing object key - invalid literal; …")
# (also inside Nix's message about what it parsed: "cannot process __json attribute of '…':
# [json.exception.parse_error.101] …")
_JSON_LIBRARY = re.compile(r"(?:^|(?<=: ))\[json\.exception\.[a-z_]+\.\d+\] ")
# the message of a trace as Nix 2.13+ prints it (libutil's showErrorInfo): after the frames,
# at their indentation of seven blanks ("error:", "       … while …", "       error: <message>");
# an error without frames is printed at the line's start
_TRACE_MESSAGE = re.compile(r"^ {7}error: (?=\S)")


def _cut_trace_message(message: str, lines: list[str]) -> bool:
    """Whether an error is the message of a trace whose frames a copy cut: its `error:` line
    indented as only a trace's message is, no frame left above it, and no word of Nix's own
    machinery in it (`_NIX_SENTENCE`). What Nix reports under its own frames (fetching an input,
    setting up a build) names that machinery or is read before this; what is left is the
    evaluation's, read as a bare `throw` is (nixos-anywhere's question whether the hardware
    configuration was generated): where the log keeps a frame elsewhere (a fetcher's, its
    message's block apart), parse_log gives it back to Nix as it does a bare throw's."""
    head = message.strip().split("\n", 1)[0].strip()
    at = next((i for i, line in enumerate(lines) if _TRACE_MESSAGE.match(line)
               and line.lstrip().startswith(f"error: {head}")), None)
    return (at is not None and not any(_FRAME.match(line) for line in lines[:at])
            and _NIX_SENTENCE.search(head) is None)


# A message written as a sentence: a capital first, a full stop last, and nothing Nix's own
# messages name in between (a quoted name, a path, a URL): how nixpkgs' and flakes' `throw`s
# read ("Neither nixpkgs.hostPlatform nor the legacy option nixpkgs.system has been set.").
# Of the ~1,000 error format strings of Nix 2.4 to 2.12 none has that form (every
# `…Error(`/`hintfmt(`/`printError(` literal of src/ at 2.4, 2.8 and 2.12). Nix 2.13 to 2.35,
# Lix 2.9x and Determinate Nix 3.x (which frame every throw) have about fifteen, each about
# Nix's own machinery: builds, derivations, the store, the daemon, the sandbox, cgroups, Nix or
# Lix by name, a C++ name, and "No packages specified." (_NIX_SENTENCE); such a sentence is no
# throw in any version.
_SENTENCE = re.compile(r"^[A-Z][^'‘’\"`/\n]{0,1000}?[a-z0-9)]\.$")
# a capitalised word opening a message (not an acronym: "SQLite", "NAR")
_WRITERS_WORD = re.compile(r"[A-Z][a-z]+\b")
_NIX_SENTENCE = re.compile(r"\b(?:[Bb]uild(?:s|ing)?|[Dd]erivations?|[Ss]tore|[Dd]aemon|"
                           r"[Ss]andbox(?:ing|ed)?|cgroups?|Nix|Lix|specified|still alive|"
                           r"GC roots?|[Ss]tack size|ulimit)\b|::|C\+\+")
# what only Nix 2.13+ and Lix print, which frame every throw ("… while calling the 'throw'
# builtin", "… caused by explicit throw")
_FRAMES_THROWS = re.compile(r"^\s*… |\(stack trace truncated|^\s*Reason: |Cannot build '|"
                            r"Build failed due to failed dependency", re.MULTILINE)


def _bare_throw(message: str, lines: list[str]) -> bool:
    """Whether an error without any sign of the evaluator is a `throw` (or `abort`) as Nix 2.4 to
    2.12 print one: its message alone, no frame, no position, on Nix's own `error: ` line. Only
    a message written as a sentence (`_SENTENCE`) counts, and not where the text shows a Nix
    that frames throws."""
    head = message.strip().split("\n", 1)[0].strip()
    # Nix's own line, "error: " as Nix writes it (a wrapper's "Error: …" is no throw of Nix's)
    at = next((i for i, line in enumerate(lines) if line.lstrip().startswith(f"error: {head}")),
              None)
    if at is None or any(_FRAMES_THROWS.search(line) or _OLD_FRAME.match(line) for line in lines):
        return False
    first = _first_sentence(head, lines[at + 1:at + 12])
    return _SENTENCE.match(first) is not None and not _NIX_SENTENCE.search(first)


def _first_sentence(head: str, after: list[str]) -> str:
    """A message's first sentence: Nix breaks a long message over indented lines, a copy that
    lost the indentation joins them into one, so the sentence, not the line, is what reads alike
    in both (nixpkgs' "Please be informed that this pseudo-package is not the only part of" /
    "Nixpkgs that fails to evaluate. You should …")."""
    text = head
    for line in after:
        if _SENTENCE_END.search(text) or not line.startswith(" ") or not line.strip() \
                or _ERROR_LINE.match(line) or _FRAME.match(line):
            break
        text += " " + line.strip()
    end = _SENTENCE_END.search(text)
    return text[:end.start() + 2] if end else text


# a full stop ending a sentence (not one inside a name: "nixpkgs.hostPlatform")
_SENTENCE_END = re.compile(r"[a-z0-9)]\.(?:\s|$)")


# nixpkgs' throw for an attribute it no longer provides (pkgs/top-level/aliases.nix and the
# package sets' aliases): what became of the package, in that file's own verbs ("has been
# removed", "was abandoned by upstream", "is now maintained out-of-tree", "goes end of life");
# not "replaced by" or "no longer supported", Nix's and Lix's own about their flags
_ALIAS_VERBS = (
    # ("apacheKafka_2_8 through _3_6 have been removed from nixpkgs as outdated", drop-in-26.05)
    # (and 2025's "'lxpanel' has been moved to top-level", "maple-mono-NF had been moved to
    # maple-mono.NF", "mono-SC-NF had been superseded by maple-mono.NF-CN")
    r"(?:ha(?:s|ve|d) been|was) (?:removed|renamed|deprecated|dropped|abandoned|archived|"
    r"discontinued|sunset|merged|redesigned|moved|superseded)\b|"
    r"is now (?:part of|maintained out[- ]of[- ]tree)|"
    r"(?:\bis|goes|reached|past) (?:its )?end of life\b|is not needed anymore|"
    # ("fcitx-engines is deprecated, please use fcitx5 instead.": aliases.nix's present tense)
    r"\bis deprecated\b")
# ... where a copy lost its "error:" (bare in a post's prose, wrapped by it): the throw opens
# with the attribute it names as nixpkgs spells one, quoted ('foo', ‘foo’) or bare in a shape
# no word of a sentence has (a dotted attribute path, a digit, "_" or "-", an inner capital:
# darwin.apple_sdk_11_0, nix_2_25, nixUnstable), lower-case first, never in markdown's code
# marks; "It has been removed", "The package was dropped", "`foo` has been removed" are prose.
# Read only where the line opens a paragraph (_LogReader.text_line): inside one, the line goes
# on with its sentence
# the attribute a throw of aliases.nix opens with, as nixpkgs spells one: quoted, or bare (a
# dotted attribute path at most, no blank)
_ALIAS_SUBJECT = (r"(?:['‘][\w.'+-]{1,200}['’]|[A-Za-z_][\w'+-]{0,200}"
                  r"(?:\.[A-Za-z_][\w'+-]{0,200}){0,20})")
_REMOVAL_THROW = re.compile(
    r" {0,8}(?:> )?(?:['‘][\w.'+-]{1,200}['’]|(?P<bare>[a-z_][\w'+-]{0,200}"
    r"(?:\.[a-zA-Z_][\w'+-]{0,200}){0,20})) (?:" + _ALIAS_VERBS + ")")
_NAME_SHAPE = re.compile(r"[.\d_-]|[a-z][A-Z]")


# ... and nixpkgs' check-meta refusal whose "error:" a copy lost (ofborg's reports print it bare:
# "Package ‘mgba-0.6.1’ in …/default.nix:34 is not supported on ‘x86_64-darwin’, refusing to
# evaluate."), whole on its line, or only the first sentence of its older advice (before 2021),
# the reason above it cut off: opening a paragraph (_LogReader.text_line), it is a failure of
# its own, first where it stands above a build's (ofborg's comment holds each platform's log);
# not where the log read a refusal before it (Nix before 2.4 printed the advice after its
# "error:" line unindented; 21.11+'s advice names `nixos-rebuild` second, "b) For …")
_REFUSAL_ALONE = re.compile(
    r" {0,8}(?:(?P<head>Package ['‘][^'’\n]{1,300}['’] in \S{1,1000} [^\n]{1,1000}?"
    r"refusing to evaluate\.?)|(?P<advice>(?:a\) )?For `nixos-rebuild` you can set)|"
    # (or the head with its reason, as check-meta.nix words each, where a copy cut the line
    # inside its ", refusing to evaluate." after the reason: "… is not supported on
    # ‘aarch64-linux’, refusing")
    r"(?P<reasoned>Package ['‘][^'’\n]{1,300}['’] in \S{1,1000} (?:is not supported on ['‘]|"
    r"is marked as (?:broken|insecure)\b|has an? (?:unfree|blocklisted|blacklisted) license\b|"
    r"is not available on the requested hostPlatform\b|has an invalid meta attrset\b|"
    r"has invalid meta\.outputsToInstall\b|contains elements not built from source\b)"
    r"[^\n]{0,1000}?))\s*$")


# the refusal's head as nixpkgs before 25.05 opened it, its reason on the same line and its
# "refusing to evaluate." after the lines that detail it (24.05-24.11's "… is not available on
# the requested hostPlatform:", then the platforms, then ", refusing to evaluate."): a block a
# copy opened with it, "error:" lost, is that message
_REFUSAL_HEAD = re.compile(
    r"\s{0,8}Package ['‘][^'’\n]{1,300}['’] in \S{1,1000} (?:has|is|contains) ")
# the same refusal's head alone, a copy ending inside its path ("Package ‘x-1.0’ in /var/lib/…")
_REFUSAL_CUT = re.compile(r" {0,8}Package ['‘][^'’\s]{1,300}['’] in /\S{1,1000}\s*$")


def _refusal_alone(line: str) -> str | None:
    """The error line a refusal alone on its line stands for (_REFUSAL_ALONE), if it is one."""
    m = _REFUSAL_ALONE.match(line)
    if m is None:
        return None
    if m["head"] or m["reasoned"]:
        return f"error: {m['head'] or m['reasoned']}"
    return (f"error: nixpkgs refused to evaluate a package (the log keeps only the advice after "
            f"its reason: {_EMPHASIS.sub('', m['advice'])})")


def _removal_throw(line: str) -> bool:
    """Whether a line opens as nixpkgs' removal throw does (_REMOVAL_THROW)."""
    m = _REMOVAL_THROW.match(line)
    return m is not None and (m["bare"] is None or _NAME_SHAPE.search(m["bare"]) is not None)


# nixpkgs' builders refusing their arguments while they are evaluated: the builder naming itself
# first ("buildGoModule: vendorHash is missing", "buildGoModule: Expect vendorHash instead of
# vendorSha256", pkgs/build-support/go/module.nix), or the hash attributes one of which it needs
# ("cargoSha256, cargoHash, cargoVendorDir, or cargoLock must be set", build-rust-package): a
# builder's camel-cased name or attributes, as no message of Nix's opens, and words of refusal
# after it (a writer's "`buildGoModule: use vendorHash = null`" is none)
_CAMEL = r"[a-z]{2,30}[A-Z][A-Za-z0-9]{1,60}"
_NIXPKGS_BUILDER = (
    r"^(?:error: *)?(?:build|fetch|mk|make|write)[A-Z][A-Za-z0-9]{1,60}: [^\n]{0,200}?"
    r"\b(?:is missing|must|[Ee]xpect(?:s|ed)?|requires?|cannot|can't|not|no longer|deprecated|"
    r"removed|invalid|unsupported|only)\b|"
    # (or its name then what it requires: the fetchers' "fetchFromGitHub requires one of either
    # `rev` or `tag` to be provided (not both).", fetchurl's "requires a hash …")
    r"^(?:error: *)?(?:(?:build|fetch|mk|make|write)[A-Z][A-Za-z0-9]{1,60}|"
    r"fetch(?:git|url|zip|svn|hg|patch|cvs|darcs|bzr|fossil|pijul)) requires "
    r"(?:one of\b|either\b|an? \w|`)|"
    r"^(?:error: *)?" + _CAMEL + r"(?:,? (?:or )?" + _CAMEL + r"){0,8} must be "
    r"(?:set|specified|provided)\b|"
    # (and its attributes in code marks: "either `vendorHash` or `vendorSha256` is required",
    # "both `vendorHash` and `vendorSha256` set. only one can be set.", "`goPackagePath` is not
    # needed with `buildGoModule`")
    r"^(?:error: *)?(?:either |both )?`" + _CAMEL + r"`(?: (?:or|and) `" + _CAMEL + r"`)? "
    r"(?:is (?:required|not needed|deprecated)\b|set\. only one\b|must be\b)")


# a package refusing the system it is evaluated for by its `throwSystem` ("envoy-bin is not
# available for x86_64-darwin.", pkgs/by-name/en/envoy-bin), the system as Nix spells one
_NOT_FOR_SYSTEM = (r"\bis not (?:available|supported) (?:for|on) ['‘\"]?(?:x86_64|aarch64|i[3-6]86|"
                   r"armv[5-7]\w{0,4}|riscv(?:32|64)|powerpc64(?:le)?|mips\w{0,10})-"
                   r"(?:linux|darwin|freebsd|netbsd|openbsd|windows|cygwin)\b")


# nixpkgs' own throws whole, in the shapes read from its sources (tests/data/sources/wordings,
# nixpkgs-*): what each opens with and says, as a writer quotes it without Nix's "error:"
# (_quoted_nixpkgs_throw); each in words a sentence about something else has not, or opening
# with the attribute it names
_NIXPKGS_SAYS = (
    # the python and lua package sets' `disabled`; python-aliases' "Please use pkgs.ATTR"
    # (mk-python-derivation 2021-2022 quoted both: "`python3.10-foo-1.0` is not supported for
    # interpreter `python3.10`")
    r"(?!(?:[Tt]his|[Ii]t|[Tt]hat|[Ww]hich|[Ss]omething)\b)"
    r"`?[\w.+-]{1,200}`?(?: is)? not supported for interpreter `?[\w.+-]{1,100}|"
    # the OCaml and Coq package sets' ("merlin 4.7 is not available for OCaml 5.1.0"), a
    # package's throwSystem ("envoy-bin is not available for x86_64-darwin.")
    r"(?!(?:[Tt]his|[Ii]t|[Tt]hat|[Tt]he|[Ww]hich|[Ss]omething)\b)"
    r"[\w.+-]{1,200}(?:(?: [\w.+-]{1,60})? is not available for (?:OCaml|Coq) \d| "
    + _NOT_FOR_SYSTEM.removeprefix(r"\b") + ")|"
    r"Please use pkgs\.[A-Za-z_][\w.-]{0,200}[\s.]*$|"
    # lib: asserts.nix, trivial.nix's checkListOfEnum, modules.nix, systems/parse.nix
    r"(?:each element in )?[\w.-]{1,200} must be one of .{1,2000}?\bbut is: |"
    r"[^:`\n]{1,200}: [^`\n]{1,1000}? unexpected; valid ones: |"
    r"['‘]mkIf['’] called with a non-Boolean condition|"
    r"Target specification with \d+ components? is ambiguous|"
    r"system string has invalid number of hyphen-separated components|"
    # lib/customisation.nix's callPackageWith aborting on a missing argument (2020-2024, before
    # it named itself: "Function called without required argument \"opus\" at …/default.nix:3,
    # did you mean …?"; Nix prints it after "evaluation aborted with the following error
    # message:", a writer quotes the words alone)
    r"Function called without required argument \\?\"[^\"\n]{1,200}\"|"
    # NixOS' nixpkgs module without a platform (nixos/modules/misc/nixpkgs.nix)
    r"Neither nixpkgs\.hostPlatform nor the legacy option nixpkgs\.system has been set\b|"
    # fetchurl without a hash
    r"fetchurl requires a hash for fixed-output derivation\b|"
    # mk-python-derivation's package without `format`/`pyproject` (2024+); a copy may cut it
    # inside the option's name at the line's end, its fixed words before whole
    r"`?[\w.+-]{1,200}`? does not configure a `(?:format`|\w{0,5}$)")
# ... and in a quote, where the writer's marks say it is one: aliases.nix's throws (the
# attribute first, then what became of it), a package's "Unsupported system" and a lib
# function naming itself ("lib.customisation.callPackageWith: Function called without required
# argument …"), whose words a writer's own line may have unquoted (a reference manual's "lib.
# strings.toInt: Parse a string as an int.")
_NIXPKGS_QUOTED = re.compile(
    r"\s{0,8}(?:" + _NIXPKGS_SAYS + r"|lib\.[a-z]\w*\.[A-Za-z]\w*: \S|"
    # (NixOS' top-level.nix: its header and the first assertion's bullet, one line in a quote)
    r"Failed assertions:\s{0,8}- \S|"
    + _NIXPKGS_BUILDER.replace("^(?:error: *)?", "") + "|"
    r"(?:['‘][\w.'+-]{1,200}['’]|(?P<bare>[A-Za-z_][\w'+-]{0,200}"
    r"(?:\.[A-Za-z_][\w'+-]{0,200}){0,20})) (?:" + _ALIAS_VERBS
    + r"|is dead\b|has been replaced (?:with|by)\b|is now known as\b|"
    r"is no longer maintained\b)|"
    r"[Uu]nsupported (?:system|platform|architecture)(?:[:,]? ['‘\"]?[\w.-]{1,100}['’\"]?)?"
    r"\.?\s*$)")
# ... alone on its line (a markdown quote's or list's marks, emphasis around it), nothing after
# the words that end it but the rest of its own message
_NIXPKGS_ALONE = re.compile(r"^[\s>*_`-]{0,12}((?:" + _NIXPKGS_SAYS + r")[^\n]{0,2000})")


def _quoted_nixpkgs_throw(text: str) -> re.Match[str] | None:
    """One of nixpkgs' own throws (_NIXPKGS_SAYS, _NIXPKGS_QUOTED) a writer quoted without
    Nix's "error:": a sentence's code span or double-quoted quote holding it whole (its group 1
    the quote: "I get `cqueues not supported for interpreter lua` on 23.05", "it says \"fcitx-
    engines is deprecated, please use fcitx5 instead.\""), or the line holding it alone (its
    group 1 from the throw's first word on). Not a quote of the attribute alone ("`foo` has been
    removed"), nor the words in a sentence of the writer's own."""
    for quote in (*_CODE_SPAN.finditer(text), *_DOUBLE_QUOTED.finditer(text)):
        m = _NIXPKGS_QUOTED.match(quote[1])
        # (an alias throw's attribute bare: in a code span any lower-case name, the writer's
        # mark says it is quoted; in double quotes, which a sentence's own words stand in as
        # well ("it was removed"), only in a shape no word has)
        if m is not None and (m["bare"] is None or _NAME_SHAPE.search(m["bare"]) or (
                quote[0].startswith("`") and m["bare"][0].islower()
                and m["bare"] not in _PRONOUNS)):
            return quote
    return _NIXPKGS_ALONE.match(text)


_PRONOUNS = frozenset(("it", "this", "that", "which", "there", "what", "everything", "nothing"))


# What only the evaluator says, in the message itself: the errors of the Nix language and its
# builtins, of nixpkgs' module system and meta checks, and of a flake's outputs and lock file
_EVAL_MESSAGE = re.compile(
    r"\battributes? ['‘`\"]|['’`] attribute\b|does not provide attribute|undefined variable|"
    r"infinite recursion|"
    # (what stands between two words is bounded: from each of many starts in a long message,
    # an unbounded `.*` would try the rest of it, and two of them every pair of places)
    r"assertion .{0,1000}failed|syntax error|"
    r"value is .{0,200} while .{0,200} was expected|expected a .{0,200} but (?:found|got)|"
    # (Lix's and libflake's "Expected `repl-overlays` entry … to be a lambda but found a set: …",
    # "expected flake output attribute '…' to be a derivation or path but found …": the value's
    # type as the evaluator's printer names it, not "expected 42 but got 3" nor "expected type
    # 'build' but got '…'")
    r"\b[Ee]xpected [^\n]{1,200}? to be an? [\w ]{1,60} but found (?:an? [a-zA-Z]|null\b)|"
    # (not the store's "cannot add path '…' to the Nix store because …")
    r"cannot (?:coerce|compare|convert .{0,200} to|add (?!path ['‘]).{0,200} to|"
    r"call 'getFlake'|auto-call a function that has an argument without)|"
    # (nixpkgs' lib/customisation.nix callPackageWith quotes the argument in double quotes:
    # "Function called without required argument \"PCSC\" at …/default.nix:5", its abort's
    # words bare where a copy or a wrapper left "evaluation aborted …" off)
    r"called (?:without required argument|with unexpected argument) ['‘\"]|"
    # the heads of the evaluator's named messages (_EVALUATOR_SAYS) that are its own before any
    # cut a copy's end made after them ("error: function 'mkDerivation' called without required
    # arg", "error: value is a set while a str", "error: assertion '(x)' fai"); none of
    # libstore's, libutil's or the command line's is worded so (their sources, 2.18-2.35, Lix)
    r"\b(?:anonymous function|function ['‘][^'’\n]{1,300}['’])(?: at \S{1,1000}:\d+:\d+)? "
    r"called\b|\bvalue is (?:null|an? \w[\w ]{0,40}?|the [^\n]{1,120}?) while\b|"
    r"\bexpected an? (?:set|list|string|integer|float|Boolean|function|path) but\b|"
    r"\bassertion ['‘]|\blist index -?\d{1,20} is\b|"
    r"\bfile ['‘][^'’\n]{1,300}['’] was not found\b|"
    r"\bflake ['‘][^'’\n]{1,300}['’] does not provide\b|\battempt to call something which\b|"
    r"\bcannot (?:auto-call|evaluate) a function that has an argument\b|"
    r"\bthe string ['‘][^'’\n]{0,4096}['’] is not\b|['‘]tail['’] called on\b|"
    r"\bexpression does not evaluate to a\b|"
    # (and a function's call with nothing after the words: a copy's end, or a report's title as
    # a writer put it, "error: Function called without required argument"; not build-remote's
    # usage error "called without required arguments", no function's)
    r"\b[Ff]unction called (?:without required|with unexpected) arguments?[.!]?[ \t]*(?:\n|$)|"
    r"attempt to call something which is not a function|is not a function|"
    r"[Tt]he option (?:definition )?[`'‘]|is not of type|Failed assertions:|"
    r"was not found in the Nix search path|"
    # (the fetchers' primops refusing an argument, fetchTarball's, fetchurl's, fetchGit's: Nix
    # 1.11 "unsupported argument ‘sha256’ to ‘fetchTarball’, at 0x7fd539d06478", no file named)
    r"\bunsupported argument ['‘][^'’\n]{1,200}['’] to ['‘][^'’\n]{1,200}['’]|"
    # (every refusal libexpr makes in pure mode names it: "in pure evaluation mode, 'fetchTarball'
    # requires …", findFile's "cannot look up '<nixgl>' in pure evaluation mode (use '--impure' to
    # override)", also without the position and code frame a copy cut)
    r"is forbidden in (?:pure|restricted) (?:evaluation )?mode|\bin pure evaluation mode\b|"
    r"access to (?:absolute |canonical )?path .{0,1000} is forbidden|" + _REFUSAL.pattern + "|"
    # nixpkgs' meta check before 25.05 named the package first and refused last ("Package ‘…’ in
    # …/default.nix:86 has an unfree license (‘unfree’), refusing to evaluate."): its head also
    # where a copy cut the refusal off. Only as the message's start: 25.05+ prints the same head
    # as an evaluation warning, a line that decides nothing about another error
    r"^(?:error: *)?Package ['‘][^'’\n]{1,300}['’] in \S{1,1000} (?:has|is|contains) |"
    # (and that head where a copy ended inside its position's path, the reason cut off:
    # "error: Package ‘chromium-beta-90.0.4430.51’ in /home/…/networking/browse", heldout-567;
    # _REFUSAL_CUT's shape, read after "error:" as the fallback reads it bare)
    r"^(?:error: *)?Package ['‘][^'’\s]{1,300}['’] in /\S{1,1000}$|"
    r"is not available on the requested hostPlatform|marked (?:as )?broken|"
    # (a named thing: not `nix develop`'s "bash variable is not a string" about its shell)
    r"(?:['’]|\bwhich) is not a (?:derivation|string|store path)\b|flake reference|"
    # nixpkgs' throw for an attribute it no longer provides (_ALIAS_VERBS)
    + _ALIAS_VERBS + "|"
    # and two more of nixpkgs' own throws, in words no message of Nix's has: its python and lua
    # package sets refusing a package for the interpreter (`disabled`, "${name} not supported
    # for interpreter ${python.executable}": "cqueues not supported for interpreter lua"), and
    # an alias naming the attribute to use instead (python-aliases.nix, "Please use
    # pkgs.mailman")
    r"\bnot supported for interpreter \S|\b[Pp]lease use pkgs\.[A-Za-z_]|"
    # (and mk-python-derivation's package without `format`/`pyproject`, 2024+, "${name} does
    # not configure a `format`. To build with setuptools …", also cut inside the option's name)
    r"\bdoes not configure a `(?:format`|\w{0,5}$)|"
    # (the OCaml and Coq package sets' own: "dune 3 is not available for OCaml 4.05.0",
    # "bignums is not available for Coq 8.4")
    r"\bis not available for (?:OCaml|Coq) \d|"
    # and the rest of aliases.nix's verbs, only where the message opens with the attribute it
    # names (_ALIAS_SUBJECT: "ankisyncd is dead, use anki-sync-server instead", "fish-foreign-env
    # has been replaced with fishPlugins.foreign-env", "azureus is now known as vuze"; not Nix's
    # "`nix flake lock --update-input nixpkgs` has been replaced by `nix flake update nixpkgs`")
    r"^(?:error: *)?" + _ALIAS_SUBJECT + r" (?:is dead\b|has been replaced (?:with|by)\b|"
    r"is now known as\b|is no longer maintained\b)|"
    # nixpkgs' lib: asserts.nix's assertOneOf and assertEachOneOf ("sslLibrary must be one of
    # [ … ], but is: \"libressl\""), trivial.nix's checkListOfEnum ("color variants: bright
    # unexpected; valid ones: standard, light, dark"), modules.nix's "‘mkIf’ called with a
    # non-Boolean condition", systems/parse.nix's "Target specification with 3 components is
    # ambiguous" and "system string has invalid number of hyphen-separated components"
    r"\bmust be one of .{1,2000}?\bbut is: |\bunexpected; valid ones: |"
    r"\bcalled with a non-Boolean condition\b|"
    r"\bTarget specification with \d+ components? is ambiguous\b|"
    r"\bhas invalid number of hyphen-separated components\b|"
    # (and fetchurl's refusal of a source without a hash: "fetchurl requires a hash for
    # fixed-output derivation: https://…", pkgs/build-support/fetchurl/default.nix)
    r"\brequires a hash for fixed-output derivation\b|"
    # and nixpkgs' builders checking their arguments (_NIXPKGS_BUILDER)
    + _NIXPKGS_BUILDER + "|"
    # and a package's own refusal of the platform it is evaluated for, the whole message (`throw
    # "Unsupported system: ${stdenv.hostPlatform.system}"`, a binary package choosing its
    # source by system; "Unsupported platform", "unsupported architecture"): no message of
    # Nix's, Lix's or Determinate's is worded so
    r"^(?:error: *)?[Uu]nsupported (?:system|platform|architecture|host ?[Pp]latform)"
    r"(?:[:,]? ['‘\"]?[\w.-]{1,100}['’\"]?)?\.?$|"
    # (its other wording, "envoy-bin is not available for x86_64-darwin.", naming the system as
    # Nix spells one: no message of Nix's says a system is unavailable so)
    + _NOT_FOR_SYSTEM + "|"
    r"evaluation aborted|"
    r"stack overflow|"
    r"max-call-depth|list index .{0,100} is out of bounds|division by zero|"
    r"not allowed to refer to a store path|has a context|does not have attribute|"
    r"lock file|flake input|does not contain a ['‘]flake\.nix['’]|"
    # libflake computing the lock file (flake.cc, lockfile.cc; framed "… while updating the
    # lock file" by newer Nix, bare by older)
    r"follows a non-existent input|circular import of flake|follow cycle detected|"
    # libflake reading a flake reference, its flake.nix and its lock file ("flake URL '…' has an
    # inconsistent 'dir' parameter", "invalid flakeref '…'", "Could not parse '…/flake.lock'",
    # "'self' input attribute not allowed at …", "input attribute path '…' at … must be in the
    # same source tree", "path '…' is not part of a flake", "unable to find a flake before
    # encountering filesystem boundary", "'flake.nix' file of flake '…' escapes from '…'")
    r"\bflake (?:URL|ID|ref)\b|\binvalid flakeref\b|flake\.lock['’]|"
    r"input attributes? (?:path|not allowed)|"
    r"not part of a flake|find a flake before|\bfile of flake\b|"
    # a flake's file Git does not track (libfetchers git.cc 2.29+: "Path '…' in the repository
    # '…' is not tracked by Git. To make it visible to Nix, run: git -C … add …")
    r"is not tracked by Git\b|"
    # Determinate Nix's flake schemas checking a flake's outputs (flake-schemas.cc,
    # installable-flake.cc: "flake output '…' should exist according to its schema, but it
    # doesn't", "Flake '…' does not have any schema that provides a default output for …")
    r"\baccording to its schema\b|\bany schema that provides\b|"
    r"/flake\.nix['’] does not exist|is not a (?:valid )?flake|could not find a flake\.nix file|"
    # (a builtin by its name: not a file's that holds the word, a plugin's
    # "libnix-extra-builtins.so" Nix failed to load)
    r"while evaluating|(?<![\w./-])builtins\.\w+|string ['‘][^'’‘`]*['’] doesn't represent|"
    # a function of nixpkgs' lib throwing names itself ("lib.fileset.unions: …",
    # "lib.customisation.callPackageWith: …")
    r"(?<![\w./-])lib\.[a-z]\w*\.[A-Za-z]\w*: |" + "|".join(
        # the evaluator's own messages with no other word above, read from Nix's libexpr
        # (eval.cc, primops*.cc, get-drvs.cc, attr-path.cc): also frameless, they are its
        (r"['’] is not equal to ", r"attribute names? (?:of attribute set )?['‘]",
         r"is not allowed in pure evaluation mode", r"integer overflow in \w+ ",
         r"expected an? \w+ but found", r"derivation name missing",
         r"invalid derivation (?:output )?name", r"derivation cannot (?:be|have) ",
         r"duplicate derivation output", r"not supported in fixed-output derivations",
         r"(?:does|did) not evaluate to a derivation", r"selected by the selection path",
         r"requires a function", r"start position in ['‘]substring['’]",
         r"(?:has|its) context\b|context of string", r"cannot be appended to a path",
         r"cannot create list of size", r"builtin ['‘][^'’‘`]+['’] not found",
         r"while parsing TOML", r"regular expression ['‘]", r"abort-on-warn",
         r"file names are not allowed to end in", r"may not reference derivations",
         # and Lix's (lix/libexpr) where its wording differs
         r"['’] is not an? (?:Boolean|list|attribute set|integer|float|function)\b",
         r"called on an empty list", r"out of range for Nix integer",
         r"derivation names are not allowed to end in", r"indexed in the selection path",
         r"expected to be a derivation or collection of derivations",
         # the rest of get-drvs.cc (Nix 2.18-2.35, Lix 2.93; its name, drvPath and outPath
         # messages are read above): libexpr reading a value as a package, its outputs and
         # meta.outputsToInstall; nix-env and nix-build print these with no frame above them
         # ("installing 'reaper-7.24'" then "error: this derivation has bad
         # 'meta.outputsToInstall'"). The general words only as the message's start
         r"has bad ['‘]meta\.outputsToInstall['’]",
         r"building more than one derivation output is not supported",
         r"\bCA derivations are not yet supported",
         r"^(?:error: *)?derivation does not have output ['‘]",
         r"^(?:error: *)?output ['‘][^'’\n]{1,200}['’] does not exist",
         r"^(?:error: *)?element is [^\n]{1,200}? where a string was expected")))
# (searched by its alternatives' literals: a message holds those of few)
_EVAL_MESSAGE_CHOICE = Choice(_EVAL_MESSAGE)
# The words after "… " of the frames Nix's store, utility and fetcher libraries add to an error
# they pass on, read from the sources' addTrace calls (src/libstore, src/libutil,
# src/libfetchers of Nix 2.18-2.35 and Determinate Nix, lix/libstore and lix/libutil of Lix);
# libexpr's, libflake's and libcmd's ("while evaluating …", "while checking the …", "while
# parsing the …", "while searching for …") are the evaluator's and are not among them.
_LIBSTORE_FRAMES = (
    r"while (?:reading (?:the (?:response|machine name) from the build hook|key ['‘])|"
    r"waiting for the build environment |processing (?:sandbox path |['‘]sandbox-paths)|"
    r"running (?:the )?(?:post|pre)-build-hook |resolving the ['‘]build-hook|"
    r"parsing (?:attribute [\"'‘]|machine specification |S3 URI|file ['‘][^'’\n]{1,4096}['’] "
    r"as a build trace)|checking derivation (?:['‘]|from JSON)|"
    r"decoding (?:key |ssh public host key |public key ['‘][^'’\n]{1,4096}['’] used for git)|"
    r"splitting NIX_SSHOPTS |resolving possibly-relative url |finishing an S3 multipart|"
    r"making directory \S[^\n]{0,4096}? accessible for deletion|smudging git-lfs file |"
    r"creating (?:file|directory|regular file|symlink|a hard link) |writing \.gitmodules )|"
    r"writing file |during [a-z]+ of ['‘]|in download thread$|reading build trace |"
    r"looking up realisation for |While (?:decoding hash|deleting (?:store path|garbage) )")
_LIBSTORE_FRAME = re.compile(r"^\s*… (?:" + _LIBSTORE_FRAMES + ")")
# A frame of a trace the evaluator printed, and a position in Nix code with its code frame.
# Frames Nix adds outside evaluation (fetching a source, setting up a build) are no sign of it.
_EVAL_FRAME = re.compile(
    # (a frame a copy cut right after its "…" is one too: what it names is gone, and only the
    # frames of Nix's own steps below are not the evaluator's)
    r"^\s*…$|^\s*… (?!while (?:fetching|setting up the build environment|copying|querying|"
    r"downloading|adding|uploading|building|realising (?!the context)|"
    # libstore's goals reading a .drv of the store (derivation-goal.cc, misc.cc, master)
    r"parsing derivation ['‘])|"
    # `nix-prefetch-url`'s and `nix store prefetch-file`'s own frame (prefetch.cc) over the
    # store path name it took from the URL
    r"file name '[^'\n]*' was extracted from URL |"
    # the rest of the frames Nix's libraries outside the evaluator add (addTrace in libstore,
    # libutil, libfetchers of Nix 2.18-2.35, Lix, Determinate): a build hook, the sandbox, a
    # derivation's or path info's fields, machines, SSH, S3, keys, files, a download
    + _LIBSTORE_FRAMES + r")|"
    r"\bat (?:«[^»«]*»|/\S+|\S+\.nix):\d+(?::\d+)?|^\s*\d+\| |"
    r"\(use '--show-trace'|\(stack trace truncated|"
    r"^while (?:evaluating|calling|checking) .*\bat \S+:\d+:\d+")  # Nix <= 2.3


def _evaluated(message: str, lines: list[str]) -> bool:
    """Whether an error text shows the evaluator: its own words in the message, or a trace frame
    or code position outside ci-nix's helper flake (whose frames surround every error of `run`'s
    evaluation, also Nix's own). Without either, the error is Nix's (command line, store,
    fetcher, daemon, configuration). Nix 2.13+ prints a `throw` with its frame; 2.4-2.12 print
    it bare, so such a message is `other` there unless its words are the evaluator's."""
    # (a frame of Nix's own libraries is no evidence by its words either: libstore's "… while
    # parsing attribute \"outputChecks\"" names a derivation's attribute, not the evaluator's)
    own = [line for line in _without_helper_frames(lines)
           if not _SKIP.match(line) and not _LIBSTORE_FRAME.match(line)]
    # the message as Nix wrote it, also where a terminal or pager broke it over lines; each
    # line without its "error:", and the message apart, so that no words join across them
    # ("… syntax" + "error: …" is no "syntax error")
    said = " ".join(" ".join(_ERROR_LINE.sub(r"\1", line) for line in own).split())
    if any(_EVAL_MESSAGE_CHOICE.found(text) or _MISSING_PATH.search(text)
           for text in (" ".join(message.split()), said)):
        return True
    return any(_EVAL_FRAME.search(line) for line in own)


# a message about a file inside a store tree (a flake's source, an input), cut right after
# the path's closing quote inside its next word: of Nix's wordings after "path '…' " (2.18-2.35,
# libutil/libexpr/libfetchers) the evaluator's about such a file that start with "d" read
# "does not exist"; the store's about a store path itself ("does not exist and cannot be
# created", "disappeared") never name a file inside one
_CUT_PATH = re.compile(r"(?:^|\berror: *)path ['‘]/nix/store/[0-9a-z]{32}-[^/'’\s]+/[^'’\n]+['’] "
                       r"(?P<cut>d[a-z ]{0,12})$")
_DOES_NOT_EXIST = "does not exist"


def _cut_path_message(message: str) -> str:
    """A message cut inside the word after a store tree's file, read as the one wording of
    Nix's it can be the start of ("path '/nix/store/…-source/flake.nix' d": does not exist)."""
    said = message.strip()
    m = _CUT_PATH.search(said)
    if m is None or not _DOES_NOT_EXIST.startswith(m["cut"]):
        return message
    return f"{said[:m.start('cut')]}{_DOES_NOT_EXIST} (the log is cut after '{m['cut']}')"

_ASSERTION_CONDITION = re.compile(r"condition of the assertion '(.*)'")


def diagnose_eval(stderr: str, flake: Flake | None = None,
                  sources: Sequence[SourceTree] = ()) -> Diagnosis:
    """An evaluation error (a failed `nix eval` or the eval part of `nix build`).

    sources: the store trees the flake's evaluation reads (`ci_nix.sources`); with them a
    position is placed in the workspace repo it is really in, and one in another repo of the
    workspace is shown as `<repo>/<file>:<line>`.
    """
    lines = strip_noise(stderr)
    while lines and not lines[-1].strip():
        lines.pop()
    if any(line.strip() == "Killed" for line in lines[-3:]) and not any(
            _ERROR_LINE.match(line) for line in lines):
        return Diagnosis(FailureType.OTHER, Kind.OOM, "nix was killed (signal 9) while evaluating",
                         hint=HINTS[Kind.OOM], log=tail(lines))
    innermost = _cut_trace(lines)
    if innermost is not None and (_FETCHING_FRAME.match(innermost)
                                  or _BUILD_SETUP_FRAME.match(innermost)):
        return _trace_only(innermost, lines)  # Nix's own step, not the evaluation
    at, message = _message(lines)
    # a trace's position comes from its frames, as for any trace
    message = (_trace_only(innermost, lines).message if innermost is not None
               else _cut_path_message(message))
    # (Nix 2.3-2.12's hint after the error, which says it went through the evaluator)
    traced = any(_TRACE_HINT.match(line) for line in clean(stderr).splitlines())
    quoting = traced and _quotes_a_build(lines)
    built = None if _thrown(lines) or quoting else _build_diagnosis("\n".join(lines[at:]))
    if built is not None and built.kind != Kind.SUMMARY:
        # a build during evaluation (import-from-derivation, fetchers): same classification
        return replace(built, log=tail(lines))
    if quoting:  # (the thrown text: its first line, an "error:" on a later one its own)
        at = next(at for at, line in enumerate(lines) if _ERROR_LINE.match(line))
        message = "\n".join(line.strip() for line in itertools.takewhile(
            str.strip, lines[at:])).removeprefix("error:").strip()
    kind_type, kind, hint = (FailureType.EVAL, Kind.THROW, None) if quoting \
        else _eval_kind(message, lines, traced=traced)
    if kind == Kind.DOWNLOAD:
        message, hint = _download(message, lines)
    file = line_no = column = None
    missing = _MISSING_PATH.search(message) if kind_type is FailureType.EVAL else None
    if missing is not None:
        source = _SOURCE.match(missing["path"]) or _SOURCE_STANDIN.match(missing["path"])
        if source is not None and source["rel"] and source["rel"] != "/":
            kind, hint = Kind.UNTRACKED_FILE, HINTS[Kind.UNTRACKED_FILE]
            file = source["rel"].lstrip("/")
            if flake is not None and flake.subdir and not (flake.repo.path / file).exists() \
                    and (flake.path / file).parent.exists():
                file = f"{flake.subdir}/{file}"
        elif "does not contain a" in message:
            kind, hint = Kind.UNTRACKED_FILE, HINTS[Kind.UNTRACKED_FILE]
            file = missing["path"].lstrip("/")
        elif missing["path"].startswith("/nix/store/"):
            kind, hint = Kind.MISSING_STORE_PATH, HINTS[Kind.MISSING_STORE_PATH]
    untracked = (_UNTRACKED_IN_REPO.search(message)
                 if kind_type is FailureType.EVAL and missing is None else None)
    if untracked is not None:
        kind, hint, file = Kind.UNTRACKED_FILE, HINTS[Kind.UNTRACKED_FILE], untracked["rel"]
    if kind == Kind.UNTRACKED_FILE and file is not None and flake is not None:
        message, hint = _untracked(flake, file, message)
    if "condition of the assertion" in "\n".join(lines) and "assertion" not in message:
        cond = _ASSERTION_CONDITION.search("\n".join(lines))
        message = f"assertion '{cond[1]}' failed: {message}" if cond else message
    pos = _choose_position(_positions(lines, sources), at, flake, sources)
    repo = None
    if pos is not None and file is None:
        file, line_no, column = pos.rel if pos.rel is not None else pos.path, pos.line, pos.column
        repo = pos.repo
    shown = file
    if repo is not None and flake is not None and repo != flake.repo.name:
        shown = f"{repo}/{file}"  # another repo of the workspace
    where = f" at {shown}:{line_no}:{column}" if line_no is not None else ""
    if where and message.rstrip().endswith(where.removeprefix(" at ")):
        where = ""  # Nix <= 2.3 ends a syntax error's message with its position
    # a fixed-output derivation built while evaluating (import from derivation) whose hash
    # lines a copy cut: the message still names it
    fixed = _FIXED_OUTPUT.search(message) if kind is Kind.HASH_MISMATCH else None
    return Diagnosis(kind_type, kind, _one_line(message + where), file=file, line=line_no,
                     column=column, repo=repo, hint=hint, drv=fixed["drv"] if fixed else None,
                     log=tail(_without_helper_frames(lines)))


_FIXED_OUTPUT = re.compile(rf"fixed-output derivation {_Q}{_DRV}{_QE}")


def _untracked(flake: Flake, file: str, message: str) -> tuple[str, str]:
    """(message, hint) naming the file in the workspace: Nix names only its store copy."""
    path = flake.repo.path / file
    if path.exists():
        return (f"{path} is not tracked by git, so Nix does not see it ({message})",
                f"`git -C {flake.repo.path} add {file}` (or `git add -N` to track it without "
                "staging its content): flakes in a git repository see only tracked files")
    return (f"{path} does not exist in the workspace ({message})",
            "check the path that reads it: a file a flake reads must exist and be tracked by git")


_DOWNLOAD = re.compile(
    rf"unable to download {_Q}(?P<url>[^'’‘`]+){_QE}(?::\s*(?P<reason>[^\n;]*))?")
# what only a binary cache serves: substitutes, not sources
_CACHE_URL = re.compile(r"\.narinfo$|/nar/|/nix-cache-info$|/realisations/|/log/")


# nixpkgs' fetchurl (curl in a builder): "trying URL", "curl: (22) …", "error: cannot download
# NAME from any mirror"
_MIRRORS = re.compile(r"cannot download (?P<name>\S+) from any mirror")
# the same line a copy cut before "from any mirror" (a log's last line)
# ... opening a line, after a heading's, quote's or list's marks (an issue's title)
_MIRRORS_OPENING = re.compile(r"^[\s#>*_`-]{0,12}(?:error: )?cannot download (?P<name>\S+) from "
                              r"any mirror\b")
_MIRRORS_CUT = re.compile(r"^\s*+(?:> )?error: cannot download \S*$")
_TRYING = re.compile(r"^\s*(?:> )?trying (?P<url>\S+://\S+)")
_CURL = re.compile(r"curl: \(\d+\) (?P<reason>.*)$")


# what curl prints while it tries a URL: its progress meter, its errors and retries
# a line of curl's progress meter: "% Total" first ("  0  123M    0 1244k    0 …")
_METER = re.compile(r"^\s*+(?:> )?(?P<percent>\d{1,3})\s++\d[\d.]*+[kMG]?\s++\d")
_CURL_OUTPUT = re.compile(r"^\s*+(?:> )?(?:$|[\d\s%.:kMG-]++$|% Total|Dload|curl: \(\d+\)|"
                          r"Warning: )")


def _fetch_cut_short(lines: list[str]) -> tuple[str, str] | None:
    """(URL, curl's last error) where a builder's log ends inside nixpkgs' fetchurl: its last
    "trying URL" followed by nothing but curl's own output, one error at least (a log tail cut
    before fetchurl's "cannot download … from any mirror", or inside that line's words)."""
    at = next((i for i in range(len(lines) - 1, -1, -1) if _TRYING.search(lines[i])), None)
    if at is None:
        return None
    after = lines[at + 1:]
    if after and _MIRRORS_CUT.match(after[-1]):  # fetchurl's own last word, cut
        after = after[:-1]
    if not all(_CURL_OUTPUT.match(line) for line in after):
        return None
    errors = [m["reason"].strip() for line in after if (m := _CURL.search(line))]
    tried = _TRYING.search(lines[at])
    if tried is None:
        return None
    if errors:
        return tried["url"], errors[-1]
    # no error of curl's: its meter's last line, where the transfer stopped short of the whole
    # (a fetch killed or timed out mid-transfer; a whole transfer reads 100 and goes on)
    meter = next((m for line in reversed(after) if (m := _METER.match(line))), None)
    if meter is None or int(meter["percent"]) >= 100:
        return None
    return tried["url"], f"the transfer stopped at {meter['percent']} % (the log ends inside it)"


def _download(message: str, context: Iterable[str] = ()) -> tuple[str, str]:
    """(one-line message naming the URL, hint) for a failed download.

    context: the lines around the message, where nixpkgs' fetchurl printed the URL it tried.
    """
    m = _DOWNLOAD.search(message)
    if m is None:
        url = reason = None
        if _MIRRORS.search(message):
            for line in context:
                tried, curl = _TRYING.search(line), _CURL.search(line)
                url = tried["url"] if tried else url
                reason = curl["reason"].strip() if curl else reason
        if url is None:
            return message, HINTS[Kind.DOWNLOAD]
        return (f"unable to download {url}" + (f": {reason}" if reason else ""),
                HINTS[Kind.DOWNLOAD])
    reason = (m["reason"] or "").replace(" ()", "").strip()
    text = f"unable to download {m['url']}" + (f": {reason}" if reason else "")
    return text, HINTS[Kind.SUBSTITUTION if _CACHE_URL.search(m["url"]) else Kind.DOWNLOAD]


def with_failed_download(found: Diagnosis, before: Iterable[str]) -> Diagnosis:
    """A substitution failure naming the URL whose download failed just before it."""
    if found.kind != Kind.SUBSTITUTION:
        return found
    for line in reversed([clean(line) for line in before]):
        if _DOWNLOAD.search(line):
            return replace(found, message=_one_line(f"{found.message}: {_download(line)[0]}"))
    return found


# a program in a builder failing to reach the network: DNS first, then connections (not
# "connection refused", which a build's own test servers print when they fail)
_NO_NETWORK = re.compile(
    r"[Cc]ould(?:n't| not) resolve host|Temporary failure in name resolution|"
    r"TemporaryNameServerFailure|Name or service not known|nodename nor servname provided|"
    r"no such host|dial tcp: lookup|getaddrinfo|failed to lookup address information|"
    r"EAI_AGAIN|ENOTFOUND|Network is unreachable|Failed to establish a new connection|"
    r"unable to access '[^']*': Could not|Could not connect to [\w.-]+ port")
_IMAGE_PULL = re.compile(r"docker://|skopeo|container registry|registry-1\.docker\.io")
# curl's report of a server's HTTP error status ("curl: (22) The requested URL returned error:
# 404"): a server was reached
_SERVER_ANSWERED = re.compile(r"\(22\) The requested URL returned error: [1-5]\d\d\b")


def _last(lines: Iterable[str], count: int) -> Sequence[str]:
    """The last `count` of lines, without copying a list whole (a deque cannot be sliced)."""
    return (lines if isinstance(lines, list | tuple) else list(lines))[-count:]


def explained_by_log(found: Diagnosis, log: Iterable[str]) -> Diagnosis:
    """A builder failure explained by the end of its own log.

    A failed download (builtin:fetchurl, nixpkgs' fetchurl) is that download's failure: type
    other, naming the URL. A program that could not reach the network stays a build failure,
    with the hint that the sandbox has no network for a derivation without a fixed output
    (`skopeo copy docker://…` in a runCommand, a `git clone`, a package manager's install)."""
    if found.kind != Kind.BUILDER:
        return found
    # (the tail cleaned, not the whole log: a log holds a derivation's output once, and is
    # asked again for each failure Nix reports of it)
    lines = [clean(line) for line in _last(log, TAIL_LINES)]
    for line in reversed(lines[-8:]):
        fetched = _DOWNLOAD.search(line)
        if fetched is not None and _CACHE_URL.search(fetched["url"]):
            # a binary cache's NAR or narinfo: the substituter's download, Nix's own before the
            # build (2.x's "warning: unable to download '…/nar/….nar.xz': …; retrying"), which
            # a copy left above the builder's report: no builder fetches from a cache
            continue
        if fetched is not None or _MIRRORS.search(line):
            message, hint = _download(line, lines)
            return replace(found, type=FailureType.OTHER, kind=Kind.DOWNLOAD, message=message,
                           hint=hint)
    tried = _fetch_cut_short(lines)
    if tried is not None:
        return replace(found, type=FailureType.OTHER, kind=Kind.DOWNLOAD,
                       message=f"unable to download {tried[0]}: {tried[1]}",
                       hint=HINTS[Kind.DOWNLOAD])
    setup = next((m for line in reversed(lines[-3:]) if (m := _SETUP_FAILED.match(line))), None)
    if setup is not None:
        # Nix <= 2.3 wrote its own failure to set up the build (before the builder ran) to the
        # build's log, as its last line, the builder's exit following: Nix's, not the builder's
        return replace(found, type=FailureType.OTHER, kind=Kind.NIX,
                       message=f"{_what(found.drv)}: {_one_line(setup[0].strip())}", hint=None)
    said = [line for line in lines if line.strip()][-5:]
    timed = next((m for line in reversed(said) if (m := _TIMED_OUT.search(line))), None)
    if timed is not None and found.drv is not None and timed["path"] == found.drv:
        # Nix 2.0-2.3's build hook: the remote Nix's own timeout of this build, its last words
        # in the log Nix quotes (the hook's "build of '…' on '…' failed: " after it says no
        # more; the hook's exit, 1, is the builder's exit code here)
        return replace(_build_diagnosis(timed[0]) or found, remote=True)
    offline = [line for line in lines[-15:] if _NO_NETWORK.search(line)]
    trying = next((m for line in reversed(lines) if (m := _TRYING.search(line))), None) \
        if offline and any(_SERVER_ANSWERED.search(line) for line in lines) else None
    if trying is not None:
        # nixpkgs' fetchurl trying its URLs, a server answering one of them with an HTTP error
        # and a host curl could not resolve among the others ("trying https://…", curl's 404,
        # "trying .tar.gz", "curl: (6) Could not resolve host: .tar.gz", heldout-592
        # nixpkgs-pr-325566, cut before "cannot download … from any mirror"): the network
        # answered, so the URLs failed, the download's failure; where no server answered at all
        # (heldout-43 nixos-wsl-777, "Could not resolve host: github.com" only), the build had
        # no network
        why = next((m["reason"].strip() for line in reversed(lines) if (m := _CURL.search(line))),
                   offline[-1].strip())
        return replace(found, type=FailureType.OTHER, kind=Kind.DOWNLOAD,
                       message=_one_line(f"unable to download {trying['url']}: {why}"),
                       hint=HINTS[Kind.DOWNLOAD])
    if offline:
        image = any(_IMAGE_PULL.search(line) for line in lines)
        return replace(found, kind=Kind.NO_NETWORK,
                       hint=HINTS[Kind.NO_NETWORK] + (_PULL_IMAGE if image else ""))
    return found


# Nix's worker timing a build out (the "timeout" pattern), in a build's own log
_TIMED_OUT = next(pattern for name, pattern in _PATTERNS if name == "timeout")
_FRAME = re.compile(r"^\s*… ")
# the position a frame of a trace (or its message) names, alone on its line: Nix prints it only
# inside an error, so a copy that cut a trace's frames above it left it as the trace's top
_POSITION_LINE = re.compile(r"^\s*at (?:«[^»«\n]{0,300}»|/\S{1,4096}|\S{1,4096}\.nix):\d+:\d+:"
                            r"(?: \(source not available\))?\s*$")
_FETCHING_FRAME = re.compile(r"^\s*… while fetching (?:the input|the source|from) ")
_LOCK_UPDATE_FRAME = re.compile(r"^\s*… while updating the lock file of flake ")
# a path inside a build's sandbox (Nix's `<drv>.chroot` directory): Nix setting up a build
_SANDBOX_PATH = re.compile(r"\.drv\.chroot/")
# Nix <= 2.3's own line in a build's log when it could not set the build up (unframed)
_SETUP_FAILED = re.compile(r"^\s*while setting up the build environment: \S")
# (Nix 2.3's "while setting up the build environment"; 2.18+'s child not coming up)
_BUILD_SETUP_FRAME = re.compile(r"^\s*… while (?:setting up|waiting for) the build environment")
# a frame of Nix <= 2.3's traces: "while evaluating ‘f’ at "…":1:2, called from …:"
_OLD_FRAME = re.compile(r"^while (?:evaluating|calling|checking) .*\bat \S+:\d+:\d+")


def _without_helper_frames(lines: list[str]) -> list[str]:
    """The trace without frames inside ci-nix's helper flake, which only confuse readers."""
    frames: list[list[str]] = [[]]
    for line in lines:
        if _FRAME.match(line) or _ERROR_LINE.match(line) or line.strip().startswith("(stack trace"):
            frames.append([])
        frames[-1].append(line)
    helper = _helper_hashes(lines)

    def ours(frame: list[str]) -> bool:
        hashes = {source["hash"] for line in frame for m in _positions_of(line)
                  if (source := _SOURCE.match(m["qpath"] or m["path"] or "")) is not None}
        return bool(hashes & helper) or any(_HELPER_APPLY in line for line in frame)

    kept = [f for f in frames if not ours(f)
            and not (f and f[0].strip().startswith("(stack trace"))]
    return [line for frame in kept for line in frame]


# Errors of the machine ci-nix runs on, not of the code: no verdict on an attribute can be drawn
# from them. (pattern, what to do). libarchive says "Write failed" when Nix 2.8 unpacks a flake's
# source into a full TMPDIR.
_HOST_PROBLEMS = (
    # (after the ": " of Nix's SysError, "<what>: <strerror>": a message that is the strerror
    # alone is no error of the machine's, but a flake's `throw` as Nix 2.4-2.12 print it)
    (re.compile(r"(?<=: )(?:No space left on device|Disk quota exceeded)|"
                r"failed to extract archive \(Write failed\)"),
     "free space on the disk of TMPDIR ({tmpdir}) and of the Nix store, or point TMPDIR at a "
     "disk with room"),
    (re.compile(r"(?<=: )Read-only file system"),
     "make TMPDIR ({tmpdir}) and the Nix store writable"),
    (re.compile(r"(?<=: )Too many open files"), "raise the open-file limit (ulimit -n)"),
)


# the frame Nix 2.13+ (and Lix) print around a `throw`/`abort`: the message is the expression's
# (Nix 1.x: "error: user-thrown exception: <the throw's message>")
_THROWN = re.compile(r"while calling the '(?:throw|abort)' builtin|caused by explicit throw|"
                     r"user-thrown exception: ")


_INDENTED_ERROR = re.compile(r"\s+error:")  # (a trace's message: Nix indents it under frames)


def _thrown(lines: Sequence[str], quoted: AbstractSet[int] | None = None) -> bool:
    """Whether a trace's innermost frame is a `throw`/`abort` call (Nix 2.13+, Lix): its
    message is the flake's own text, whatever it names (`throw "x\nerror: builder for
    '…-other.drv' failed …"`, which Nix prints as a line of its message, is no build's).
    quoted: as for _build_diagnosis."""
    # (the frames before the message: its own lines may look like frames, and so may a failed
    # build's last lines Nix quotes after "last N log lines:", 2.3's unmarked: a builder's)
    quoted = logshape.quoted_in(lines) if quoted is None else quoted
    message = next((at for at, line in enumerate(lines) if (at and _INDENTED_ERROR.match(line))
                    or at in quoted), len(lines))
    frames = [line for line in lines[:message] if _FRAME.match(line)]
    return bool(frames) and _THROWN.search(frames[-1]) is not None


# Nix's report of a builder's failure, wherever it stands
_BUILDER_FAILED = re.compile(r"builder for ['‘]/nix/store/[^'’\s]+['’] failed|"
                             r"Cannot build ['‘]/nix/store/")


def _quotes_a_build(lines: Sequence[str], quoted: AbstractSet[int] | None = None) -> bool:
    """Whether a frameless error's message names a builder's failure after words of its own
    (further on its first line, or on a later line of it that Nix does not quote from a
    builder's log): where the error went through the evaluator (Nix 2.3-2.12's _TRACE_HINT
    after it), the text of a `throw` as Nix 2.4-2.12 print one, message alone, naming another
    derivation's failure (a test harness quoting what failed); no report of that build, which
    starts its message (a build reached through evaluation: import from derivation), nor
    Nix relaying one (a remote build, a builder it could not use, 2.3's frames before it)."""
    quoted = logshape.quoted_in(lines) if quoted is None else quoted
    first = next((at for at, line in enumerate(lines) if _ERROR_LINE.match(line)), None)
    if first is None:
        return False
    message = re.sub(r"^(?:error:\s?)+", "", lines[first].strip()).strip()
    if _PRE_HEADER.match(message) and first + 1 < len(lines):
        first += 1  # Nix 2.4pre's "error: --- Error --- nix-build": the message on the next line
        message = lines[first].strip()
    if not message or _BUILDER_FAILED.match(message) or message.startswith("while ") \
            or _REMOTE_FAILED.search(message) or _BUILDER_DOWN.search(message):
        return False
    rest = [line for at, line in enumerate(lines[first + 1:], first + 1) if at not in quoted]
    if any(_FRAME.match(line) or line.strip().startswith("while ") for line in rest):
        return False
    return any(_BUILDER_FAILED.search(line) for line in [message, *rest])


def host_problem(stderr: str, tmpdir: str) -> str | None:
    """What to do, when Nix failed because of the machine (a full or read-only disk, too many
    open files) rather than the flake; None for any other error. tmpdir: the TMPDIR Nix had.

    A message the flake threw is the flake's, whatever it says: `throw "No space left on
    device"` fails its attribute, it does not stop the run as the machine's problem."""
    lines = strip_noise(stderr)
    if any(_THROWN.search(line) for line in lines):
        return None
    _, message = _message(lines)
    for pattern, fix in _HOST_PROBLEMS:
        if pattern.search(message):
            return f"{_one_line(message, 200)}: {fix.format(tmpdir=tmpdir)}"
    return None


def eval_failure(stderr: str, flake: Flake | None = None,
                 sources: Sequence[SourceTree] = ()) -> Failure:
    """An evaluation error from a failed `nix eval` (see diagnose_eval for sources)."""
    return diagnose_eval(stderr, flake, sources).failure()


def simple_eval_failure(message: str) -> Failure:
    return Failure(type=FailureType.EVAL, message=_one_line(message), log=message)


# ---------------------------------------------------------------------------------------------
# Whole logs (`ci-nix junit`): plain text and internal-json, from any Nix version, as captured
# (ci_nix.logshape undoes what CI systems and wrapping tools did to the lines first).

# What starts an error report. Nix prints errors at the start of a line, but copies indent
# them, and a fragment may hold only the indented lines of a 2.29+ "Cannot build" block.
# How Nix's failure messages begin (tests/data/sources/README.md lists them by file and
# version): a copy that lost the "error: " before one (cut at it, a tool printing the message
# alone) still starts an error block with it, classified as if the prefix were there.
# nixpkgs' throw for a renamed attribute (pkgs/top-level/aliases.nix and the package sets'
# aliases print it in this one form): its own words, a copy often quotes without "error:"
_ALIAS_THROW = r"['‘][^'’\s]{1,200}['’] has been renamed to/replaced by ['‘]"
_NIX_MESSAGE = re.compile(
    r"^\s*(?:\d+ dependenc(?:y|ies) of derivation '|Build failed due to failed dependency|"
    # nixpkgs' alias throw (_ALIAS_THROW), also as a markdown quote's line
    r"(?:> )?" + _ALIAS_THROW + "|"
    r"build of '/nix/store/|"
    r"build of resolved derivation '|some dependencies of '|dependency '[^']*' of '|"
    r"cannot build missing derivation '|a '[^']*'(?: with features \{[^}]*\})? is required to "
    r"build '|[Uu]nable to build with a primary store|output '/nix/store/[^']*' is not allowed "
    r"to|cycle detected in build of '|(?:closure of )?path '[^']*' is too large at|"
    r"derivation '[^']*' may not be deterministic|illegal path references in fixed-output|"
    r"(?:floating )?content-addressing derivation '|derivation '[^']*' output '[^']*' \(at '|"
    r"suspicious ownership or permission on |output path [\"']?/nix/store/[^\"'\s]*[\"']? "
    r"(?:has illegal "
    r"content|should be a non-executable)|while waiting for the build environment for '|"
    # Nix 1.x's hash mismatch of a fixed output (hash-mismatch-1x), also in a store elsewhere
    r"output path ['‘]/[^'’\s]*['’] (?:should have|has) (?:r:)?\w+ hash ['‘]|"
    r"fixed-output derivations must not reference|fixed output derivation '[^']*' is not "
    r"allowed to refer|the fixed-output derivation '[^']*' must not reference|"
    r"(?:(?:ca )?hash|size) mismatch importing path '|hash mismatch in file downloaded from '|"
    # Nix 1.x-2.3 print a build's own errors without "error: " (DerivationGoal's BuildError),
    # and 1.x its substituter's
    r"derivation contains an illegal reference specifier ['‘]|output ['‘]/nix/store/[^'’]*['’] "
    r"of ['‘][^'’]*['’] differs from|hash mismatch in downloaded path ['‘]|fetching path "
    r"['‘]/nix/store/[^'’]*['’] (?:failed|died)|substitute did not produce path ['‘]|"
    r"NAR hash mismatch in input '|unable to (?:download|upload) '|(?:download|upload) of '[^']*' "
    r"was interrupted|uri \S+ changed (?:ETag|immutable url|final destination) from|"
    r"cannot download '[^']*' because|some substitutes for the outputs of "
    r"derivation '|path '[^']*' is required, but there is no substituter|some references of "
    r"path '|reference '[^']*' of path '[^']*' is not a valid path|substituter '[^']*' is "
    r"disabled|file '[^']*' does not exist in binary cache|'[^']*' does not appear to be a "
    r"binary cache|NAR info file '|NAR for '[^']*' fetched from|cannot add '[^']*' to the "
    r"binary cache|cannot add path '[^']*' because it lacks a signature|cannot substitute path "
    r"'|some outputs of '[^']*' are not valid|cannot open connection to remote store '|failed "
    r"to start SSH (?:master )?connection to '|'nix-store --serve' protocol mismatch|"
    # (2.0's build hook, before 2.1's "cannot build on '…': …", and 1.x's build-remote.pl)
    r"unable to open SSH connection to ['‘]|"
    # (the whole line: a builder's own "cannot connect to 'db': …" is no message of Nix's)
    r"cannot connect to '[^']*'$|failed to add path '[^']*' to remote host|remote machine failed "
    r"to import closure|build hook died unexpectedly|error reading daemon response|could not "
    r"connect to "
    r"any \S+ socket|don't know how to open Nix store|this system does not support the kernel "
    r"namespaces|cannot perform a sandboxed build|unable to start build process|sandbox network "
    r"setup timed out|bad machine specification|error parsing derivation '|Not all outputs of '|"
    r"'[^']*' has no valid outputs registered|pasta (?:exited|killed)|"
    # the daemon's own log (journald, syslog) on a connection it gave up: Nix <= 2.3 printed
    # it without "error: " (nix-daemon.cc's printError("error processing connection: %1%"))
    r"error processing connection: )")
# a markdown code span (bounded: each backtick looks at most that far for its closing one)
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]{1,1000})`")


# a sentence's quote in double quotes (bounded, as a code span: each opening looks that far)
_DOUBLE_QUOTED = re.compile(r'["“]([^"“”\n]{1,1000})["”]')


def _quoted_nix_message(text: str) -> re.Match[str] | None:
    """The code span (or double-quoted quote) of a sentence that holds one of Nix's messages,
    "error:" left out ("Nix reported `failed to start SSH connection to 'host'`.", 'crates fail
    with "Build failed due to failed dependency."'): a writer quoting Nix's words; its group 1
    is what the quote holds."""
    spans = (m for m in _CODE_SPAN.finditer(text) if _NIX_MESSAGE.match(m[1]))
    quoted = (m for m in _DOUBLE_QUOTED.finditer(text) if _NIX_MESSAGE.match(m[1]))
    return next(spans, None) or next(quoted, None)


_LOG_TAIL = re.compile(rf"^\s*(?:{logshape.TAIL_INTRO}|For full logs, run)")
# the end of 2.4+'s builder line, "….drv' failed with exit code N;", its head cut off (a copy's
# elision, a relay): right over "last N log lines:" it is that builder's line all the same
_CUT_BUILDER_END = re.compile(r"\.drv['’]? failed with exit code (\d{1,9});?\s*$")
_BLOCK_START = re.compile(
    r"^\s*(?:error:|builder for '|builder for ‘|builder for /nix/store/|"
    r"cannot build derivation |hash mismatch in "
    r"fixed-output derivation|fixed-output derivation produced path|Killed$|"
    # not Nix's -vvvv "building of '…': woken up", only what ends a build
    r"building of ['‘][^'’‘`]*['’].*(?:timed out|killed after)|"
    r"Cannot build '|Reason: |Required system: |Required features: |specified: |"
    r"Unable to start any build|unable to start any build|"
    r"Failed to find a machine for remote build!|"
    # Nix itself failing an assertion: "nix: src/libstore/….cc:188: …: Assertion `…' failed."
    r"nix(?:-[a-z]+)?: \S+\.cc:\d+: |"
    # a builder's log tail, all that is left of its failure
    + logshape.TAIL_INTRO + r"|For full logs, run|Hint: the failing derivation has|"
    r"(?:\S+ )?timed out after \d+ seconds)|" + _NIX_MESSAGE.pattern)
# Nix <= 2.3 printed traces and the final message unindented; quoted build log lines (`> ...`)
# lose their indentation when pasted into an issue, and so do the lines of a 2.29+ "Cannot
# build" block; a message wrapped by the terminal continues with the quoted store path or
# "but I am a"
_CONTINUATION = re.compile(
    r"^(?:while [a-z]+ing\b|infinite recursion encountered|undefined variable|> |>$|"
    r"['‘`]/nix/store/|but I am a |Reason: |Required system: |Current system: |"
    r"Required features: |Available features: |Output paths:|/nix/store/|"
    + logshape.TAIL_INTRO + r"|For full logs, run|nix log |nix-store -l |Note: |Hint: |wanted: |"
    r"specified: |got:\s|likely URL: |expected path: |got path: |… |at \S+:\d+:\d+:|\d*\||"
    # build-remote's "Failed to find a machine" lines; 2.21-2.29's raw string literals dedented
    r"derivation: |required \(system, features\)|\d+ available machines:|\(systems, |\(\[|"
    r"either (?:increase|set|pass) '--|remote machines may not have|For more information |"
    # Nix 1.x: its substituter's exit, after that substituter's own "could not download ‘…’"
    r"fetching path ['‘]/nix/store/[^'’\s]*['’] (?:failed|died))")
_SKIP = re.compile(r"^\s*(?:error \(ignored\)|warning:)")
# Nix's status lines, which say nothing about why a build failed
_STATUS = re.compile(r"^(?:building '|building path|these |this |  /nix/store/|copying path|"
                     r"querying |fetching |\$ )")
_BUILDING = re.compile(rf"^\s*building {_Q}{_DRV}{_QE}")
# what makes a line an error report, wherever it is: the rule against a silent zero
_ERROR_ANYWHERE = re.compile(
    r"^\s*error:|(?<=[\s`'\"(*_~])error: |Cannot build '|Reason: |builder for \S+ failed|"
    r"hash mismatch|timed out after|cannot build on '|killed after writing more than|"
    r"unable to open SSH connection to ['‘]|"
    r"(?:transient failure|uncaught exception) building ")
# "cannot build on 'ssh://host': <why>": a remote builder Nix could not use
_BUILDER_DOWN = re.compile(r"(?:cannot build on|unable to open SSH connection to) "
                           r"['‘](?P<uri>[^'’‘`]+)['’][:,] (?:error: )?(?P<why>.*)")
# what a sentence about a log adds around Nix's words ("it stops with: Reason: **…**")
_EMPHASIS = re.compile(r"\*\*|__|`|~~")  # (~~: GitHub's strikethrough)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


@dataclass
class _Block:
    lines: list[str]
    origin: int  # the captured log's line it starts at
    before: list[str]  # the plain lines before it (see _LogReader.recent)
    building: str | None  # the derivation Nix said it was building last
    # what Nix said last before it, when that was retrying a download ("unable to download …")
    retried: str | None = None
    # which of its lines are a failed build's lines Nix quotes (`logshape.Line.quoted`); None
    # where its lines are one record's message, decided on them (`logshape.quoted_in`)
    quoted: set[int] | None = None
    # the lines of `before` no `nix build -L` prefix gives to a build (Nix's own, a builder's
    # unprefixed), over as many lines back: another build's `-L` lines, interleaved, are not
    # the failing build's log and push none of these out (see _LogReader.unclaimed)
    unclaimed: list[str] = field(default_factory=list)
    traced: bool = False  # Nix 2.3-2.12's _TRACE_HINT right after it: it went through evaluation
    # the least indentation of its lines after the first (blank ones aside), over the first
    # `_seen` of them: kept as lines come, not computed again over the block for each line
    _least: int | None = None
    _seen: int = 1

    def least_indent_after_first(self) -> int | None:
        for line in self.lines[self._seen:]:
            if line.strip():
                indent = _indent(line)
                self._least = indent if self._least is None else min(self._least, indent)
        self._seen = max(len(self.lines), 1)
        return self._least


@dataclass
class _LogReader:
    """Folds a captured log into error blocks and per-derivation build output."""

    blocks: list[_Block] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    # `nix build -L` output, by the derivation name it is prefixed with
    named_logs: dict[str, list[str]] = field(default_factory=dict)
    parser: nixlog.LogParser = field(default_factory=nixlog.LogParser)
    current: _Block | None = None
    # the plain lines before each block: a builder's output and Nix's retry warnings, which in
    # a text log without `> ` quoting are the only log of a failure
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    unclaimed: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    building: str | None = None
    retried: str | None = None  # see _Block.retried (builders' lines between do not count)
    # internal-json: the derivations whose build activity started, whether the log holds
    # records of activities it does not show the start of (it begins after they started, or a
    # record was cut), and the error records that cannot be Nix's own (`_refuted`)
    started: set[str] = field(default_factory=set)
    partial: bool = False
    refuted: list[logshape.Line] = field(default_factory=list)
    # a trace whose opening bare "error:" a copy cut: its frames (and their positions and code
    # frames) outside any error block, up to the error line that is their message
    orphans: list[str] = field(default_factory=list)
    opens: bool = True  # whether the next plain line opens a paragraph (see _REMOVAL_THROW)
    # the derivation whose "building '…'" line was Nix's last word before the lines that follow,
    # no error block since: what nix-build (and `nix log`) prints after it unprefixed is that
    # builder's own output, whatever it names
    output_of: str | None = None

    def start_block(self, lines: list[str], origin: int, quoted: set[int] | None) -> _Block:
        block = _Block(lines, origin, list(self.recent), self.building, self.retried, quoted,
                       list(self.unclaimed))
        self.blocks.append(block)
        self.recent.clear()
        self.unclaimed.clear()
        self.retried = None
        self.output_of = None
        return block

    def remember(self, line: str) -> None:
        """Keep a plain line no `-L` prefix gives to a build for the next block's `before`."""
        self.recent.append(line)
        self.unclaimed.append(line)

    def text_line(self, line: str, origin: int, tail: bool = False) -> None:
        """Read a plain line of the log (`tail`: one of the builder's lines Nix quotes, as
        `logshape.Line.quoted` says: it starts no failure of its own)."""
        opens, self.opens = self.opens, not line.strip() or line.strip() == ">" \
            or _FENCE_LINE.match(line) is not None
        current = self.current
        if current is not None and not tail and _shallower_error(line, current):
            current = self.current = None
        if current is not None and _TRACE_HINT.match(line):
            current.traced = True
        # (what the block's last line says decides whether a line of Nix's goes on with it only
        # where that last line is Nix's too: after the builder's last line Nix quotes, ending
        # in ":" or ",", a cut "Reason: builder", a bare "error:", Nix's next line is its own,
        # as 2.3 prints it unindented: another derivation's failure was taken into the block)
        said = tail or current is None or current.quoted is None \
            or len(current.lines) - 1 not in current.quoted
        if current is not None and (
                tail or not line.strip() or _CONTINUATION.match(line.lstrip())
                or _indent(line) > _indent(current.lines[0])
                or (said and _goes_on(current.lines, line))):
            if tail and current.quoted is not None:
                current.quoted.add(len(current.lines))
            current.lines.append(line)
            return
        self.current = None
        if tail:  # (the builder's data: it starts no failure, nor a trace, of Nix's)
            if line.strip():
                self.remember(line)
            self.orphans.clear()
            return
        if _SKIP.match(line):
            retry = _RETRYING.match(line)
            self.retried = retry["said"] if retry else None
            if "unable to download" in line:  # a retry: part of the download error that follows
                self.remember(line)
            return
        if _BLOCK_START.match(line):
            orphans, self.orphans = self.orphans, []
            if orphans and _ERROR_LINE.match(line) and line.strip() != "error:":
                # Nix prints its frames only after a bare "error:" and before the message:
                # frames before an error line, no opener seen, are its trace cut at the top
                self.current = self.start_block(["error:", *orphans, line], origin, set())
            else:
                self.current = self.start_block([line], origin, set())
            return
        if opens and _removal_throw(line):
            # nixpkgs' removal throw whose "error:" a copy lost, opening a paragraph (of a
            # markdown quote too: its mark is no part of it)
            self.current = self.start_block([line.lstrip().removeprefix("> ")], origin, set())
            return
        # (the refusal's own line also right after the frames of the trace it ends, Nix before
        # 2.4 printing the message unindented under them)
        refused = _refusal_alone(line) if opens or (
            line.lstrip().startswith("Package ") and (self.orphans or (
                self.recent and _OLD_FRAME.match(self.recent[-1])))) else None
        if refused is not None and not any(_REFUSAL.search("\n".join(block.lines))
                                           for block in self.blocks):
            # nixpkgs' refusal, "error:" lost, the first the log reads (_REFUSAL_ALONE)
            self.orphans.clear()
            self.current = self.start_block([refused], origin, set())
            return
        quoted = line[2:] if line.startswith("> ") else ""
        if _BLOCK_START.match(quoted) and not _CONTINUATION.match(quoted):
            # one line of a paste quoted in markdown, outside any error block: Nix's own line
            # ("> error: cannot download … from any mirror" before the builder's failure)
            self.current = self.start_block([quoted], origin, set())
            return
        head = _nix_head(line) if not line.lstrip().startswith(">") else None
        read = _nix_words_read(line) if head is not None \
            and _WHOLE_SUBJECT.match(line, head.start()) \
            and _HEAD_FAILS.search(line, head.start()) else None
        if read is not None and read[0].type is not FailureType.DEPENDENCY \
                and read[0].kind is not Kind.SUMMARY \
                and self.output_of in (None, read[0].drv):
            # Nix's words saying what failed inside a writer's line, or eaten into by a copy
            # (the general reader, `_read_nix_words`), naming a store path as Nix printed it:
            # an error block from them, so what Nix printed under them (a Reason, the builder's
            # last lines) is theirs; also a header ending a line that other text starts (a code
            # span's "`", a test table's "{`", a list's bullet, a sentence: "error: Cannot build
            # '…'.", "rror: builder for '…' failed with exit code N;"). Not in a line Nix quotes
            # from a builder ("  > …"): what a builder prints is its own, whatever it names. (Nor
            # a dependent's line or a recap: those only stand for what failed where nothing
            # else does, and the fallback reads them. Nor in the lines after Nix's "building
            # '…'", which nix-build and `nix log` print unprefixed, where they name another
            # derivation: a builder's own output, a test echoing Nix's words, which would be
            # read before the build that failed and take Nix's own lines after it as theirs.)
            self.current = self.start_block([read[1]], origin, set())
            return
        if _FRAME.match(line) or _POSITION_LINE.match(line) or (self.orphans and (
                not line.strip() or _FRAME_DETAIL.match(line.lstrip()))):
            self.orphans.append(line)
        else:
            self.orphans.clear()
        building = _BUILDING.match(line)
        if building is not None:
            self.building = self.output_of = building["drv"]
        if line.strip():
            self.retried = None  # Nix went on after its retries
        if line.strip() and not _STATUS.match(line) and not logshape.BAR.search(line):
            self.remember(line)

    def feed(self, line: logshape.Line) -> None:
        if line.builder is not None:
            # Nix writes an error whole: another build's line inside a trace still awaiting
            # its message, or after a line ending in a colon (which text_line reads the next
            # line of as its rest, indented or not), is where a terminal interleaved them, and
            # the error goes on after it
            if self.current is not None and not _awaits_message(self.current.lines) \
                    and not self.current.lines[-1].rstrip().endswith(":"):
                self.current = None
            self.named_logs.setdefault(line.builder, []).append(line.text)
            self.recent.append(line.text)
            # (a builder's frames are its own, a nested Nix's, and never orphans; Nix's own cut
            # trace before it still awaits its message, as a trace block does above)
            return
        event = self.parser.parse(line.text)
        if isinstance(event, nixlog.Unreadable) or (
                isinstance(event, nixlog.ActivityStop) and event.start is None) or (
                isinstance(event, _RESULTS) and event.id not in self.parser.running):
            self.partial = True
        if isinstance(event, nixlog.PlainLine):
            self.text_line(event.text, line.origin, line.quoted)
        elif isinstance(event, nixlog.ActivityStart) and event.drv is not None:
            self.logs.setdefault(event.drv, [])
            self.started.add(event.drv)
            self.building = event.drv
        elif isinstance(event, nixlog.Message) and event.is_error and self._refuted(event):
            self.refuted.append(line)
        elif (isinstance(event, nixlog.BuildLogLine) and event.drv is not None
              and not event.post_build and not event.cut):
            self.logs.setdefault(event.drv, []).append(clean(event.text))
        elif isinstance(event, nixlog.Message) and event.is_error:
            self.current = None
            self.start_block(clean(event.text).splitlines(), line.origin, quoted=None)
        elif isinstance(event, nixlog.Message) and "unable to download" in clean(event.text):
            self.remember(clean(event.text))  # a retry warning
            retry = _RETRYING.match(clean(event.text))
            self.retried = retry["said"] if retry else None

    def _refuted(self, event: nixlog.Message) -> bool:
        """Whether an error record cannot be Nix's report, as `ci-nix run` tells (build.BuildLog
        ._claim): a builder's `@nix {"action":"msg",…}` line is relayed as a record like Nix's,
        only without the `raw_msg` Nix's own carry. One that says a build ran and failed though
        the log shows no start of that build, or that a build never ran after it started, is a
        builder's, speaking for another derivation. Only where the log shows builds, and every
        activity from its start: a piece of a log may begin after the build it names started,
        or hold Nix's error records alone."""
        if event.attested or self.partial or not self.started:
            return False
        error = build_error(event.text)
        if error is None or not error.drv.endswith(".drv"):
            return False
        started = error.drv in self.started
        return (error.ran is True and not started) or (error.ran is False and started)

    def log_of(self, drv: str) -> list[str]:
        """The build output of drv this log holds."""
        return self.logs.get(drv) or self.named_logs.get(_pname(drv)) or []


# records of an activity (which a log holds after that activity's start)
_RESULTS = (nixlog.BuildLogLine, nixlog.PhaseChange, nixlog.Progress, nixlog.SetExpected,
            nixlog.OtherResult)
# what Nix says of a derivation only after its build ran


def _shallower_error(line: str, block: _Block) -> bool:
    """Whether an indented `error:` line starts an error of its own after a block whose lines
    go on deeper: a copy that indented every line after the first (aagl-213's paste glued its
    first to a fence: " error: builder for …" after the first failure's lines at 8), where a
    trace's or a relayed error's message stands as deep as the block's lines, or deeper."""
    lines = block.lines
    if len(lines) < 2 or not line.lstrip().startswith("error:") or _awaits_message(lines):
        return False
    deeper = block.least_indent_after_first()
    return deeper is not None and 0 < _indent(line) < deeper


# what goes with a frame of a trace: its position, its code frame, Nix's note that it cut
# frames
_FRAME_DETAIL = re.compile(r"at \S|\d+\||\||\(stack trace truncated|\(\d+ duplicate frames")
# what ends a trace (a bare "error:", then frames): its message, or Nix saying it cut the trace
# (and the lines of its frames a copy lost the indentation of)
# a line a writer put for lines left out of a paste: "...", "…", "[...]"
_ELISION = logshape.ELISION
_TRACE_END = re.compile(r"error:|\(stack trace truncated|whose name attribute is located at |"
                        r"at \S")


# an error line whose message is another error still to come: a bare "error:", or one that
# wraps the error it relays ("… does not have valid outputs: error:", nix-eval-jobs' and Hydra's)
_AWAITING = re.compile(r"^error:$|\S:\s*error:$")
# an error line that says only where, its message on a later error line after the code frame
# ("error: at /nix/store/…/php.nix:39:36:", "39| …", "error: attribute 'currentSystem' missing"
# in a trace as devenv's Nix 2.21 printed it): no message of its own
_WHERE_ONLY = re.compile(r"^\s*error: at \S+:\d+:\d+:\s*$")
_CODE_FRAME = re.compile(r"^\s*\d*\|")


def _awaits_message(lines: list[str]) -> bool:
    """Whether an error block is a trace (a bare `error:`, or an error relaying the one that
    follows, then frames) or an error that said only where, still without its message: the
    next `error:` line is that message, even where a copy lost its indentation."""
    if (_AWAITING.search(lines[0].strip()) is None and not _WHERE_ONLY.match(lines[0])) \
            or len(lines) >= 400 \
            or any(_ERROR_LINE.match(x) and not _WHERE_ONLY.match(x) for x in lines[1:]):
        return False
    where = [i for i, x in enumerate(lines) if _WHERE_ONLY.match(x)]
    if where:  # only its code frame after it: any other line is a message of sorts
        return all(not x.strip() or _CODE_FRAME.match(x) for x in lines[where[-1] + 1:])
    return _elided_only(lines) or any(x.lstrip().startswith("… ") for x in lines[1:])


def _goes_on(lines: list[str], line: str) -> bool:
    """Whether a line goes on with an error block (lines) by what the block's lines say, also
    where a copy lost the indentation it goes on with."""
    # a message that goes on after a colon ("… failed with exit code 1:") or a comma (a copy
    # wrapping `nix flake check`'s "failed to build attribute '…'," before its "build of '…'
    # failed")
    # (not a position line's colon, "at /path:3:5:", before which the error said its message:
    # Nix's code frame follows it, and an error line after it, where a copy left that out, is
    # an error of its own; a trace's message still follows its last frame's position)
    return (lines[-1].rstrip().endswith((":", ",")) and not (
                _POSITION_LINE.match(lines[-1]) and _ERROR_LINE.match(line)
                and not _awaits_message(lines))
            # a Reason a hard wrap cut inside Nix's fixed words ("Reason: builder")
            or _CUT_REASON.search(lines[-1]) is not None
            # a bare "error:"'s message; after frames, not a wrapper's line after a trace cut
            # short ("Command '[…]' returned non-zero exit status 1.")
            or (_awaits_message(lines) and (
                _elided_only(lines) or _TRACE_END.match(line.lstrip()) is not None
                # a writer's mark of frames left out ("...") in a trace awaiting its message
                or _ELISION.match(line) is not None))
            # Nix 2.4pre: "error: --- Error --- nix", then the message unindented
            or (len(lines) == 1 and _PRE_HEADER.match(
                lines[0].lstrip().removeprefix("error:").lstrip()) is not None)
            # (also where it ends a line: the message after a remote build's "failed: ")
            or (line.strip() != "" and _PRE_HEADER_AFTER.search(lines[-1]) is not None)
            # a removal throw a copy wrapped: its paragraph is its message
            or (line.strip() not in ("", ">") and bool(lines[-1].strip())
                and _removal_throw(lines[0])))


def _elided_only(lines: list[str]) -> bool:
    """Whether an error block is its opening line and nothing after it but a writer's marks
    of lines left out ("error:" then "..."): a mark is no message, what follows it may be."""
    return all(_ELISION.match(x) for x in lines[1:])

_PNAME = re.compile(r"^(.*?)-[^A-Za-z]")


def _pname(drv: str) -> str:
    """hello for /nix/store/<hash>-hello-1.0.drv: the name `nix build -L` prefixes lines with
    (as Nix's DrvName splits it: the version starts at the first dash not followed by a letter)."""
    m = _PNAME.match(drv_name(drv))
    return m[1] if m else drv_name(drv)


# Nix's warning before it tries a download again (older Nix without the inner "error: ")
_RETRYING = re.compile(r"^\s*warning: (?:error: )?(?P<said>unable to download .{0,4096}); "
                       r"retrying in \d+ ms")
# a lock update's frames (libflake; also updating one input, where _LOCK_UPDATE_FRAME, asking
# whether Nix was writing the lock file, takes only the file's), and git's own line saying it
# failed (before Nix's error)
_LOCK_FRAME = re.compile(r"^\s*… while updating the (?:lock file of flake|flake input) ")
_GIT_FATAL = re.compile(r"^\s*fatal: \S")
# the ssh client's own lines (Nix runs ssh for SSH stores, the build hook's machines, copies)
_SSH_CLIENT = re.compile(r"^\s*ssh: ")
_FETCHING = re.compile(r"curl: \(\d+\)|\*\*\* Downloading|unable to download|HTTP error \d+|"
                       r"Couldn't resolve host|Could not resolve host")
_EVALUATOR_SIGN = re.compile(r"^\s*… |\bat (?:«[^»«]*»|\S+):\d+:\d+|^\s*\d+\| |while evaluating|"
                             r"while calling|--show-trace")


def _looks_evaluated(lines: Sequence[str]) -> bool:
    """Whether an error text comes from the evaluator: a trace, a position or a code frame."""
    return any(_EVALUATOR_SIGN.search(line) for line in lines)


def _unclassified(line: str, origin: int | None = None) -> Diagnosis:
    """A failure nothing finer fits: type other, the error line as its message."""
    text = line.strip()
    for prefix in ("error:", "Error:"):
        text = text[len(prefix):].strip() if text.startswith(prefix) else text
    return Diagnosis(FailureType.OTHER, Kind.ERROR, _one_line(text or line), log_line=origin)


# A warning whose message has several lines: Nix (libutil's showErrorInfo, 2.4+) indents each
# line after the first to where the first one's text starts ("evaluation warning: a" then
# "                    error: b" from `builtins.warn "a\nerror: b"`, a `lib.warn` of nixpkgs)
_WARNING_TAG = re.compile(r"^\s*(?:evaluation )?warning: (?=\S)")


def _without_warning_lines(shaped: list[logshape.Line], raw: Sequence[str]
                           ) -> tuple[list[logshape.Line], Sequence[str]]:
    """The lines of a log without the lines of its warnings' messages after their first:
    what a warning says is no error of Nix's, whatever words it holds (a successful run's log
    yields no failure from it). The captured lines that held only such lines are left empty
    in the raw lines returned, which the rule against a silent zero reads too."""
    dropped: list[logshape.Line] = []
    column: int | None = None  # where the text of the warning above starts
    for line in shaped:
        if line.builder is None:
            tag = _WARNING_TAG.match(line.text)
            if tag is not None:
                column = tag.end()
            elif column is not None and line.text.strip() and _indent(line.text) >= column:
                dropped.append(line)
            elif line.text.strip():
                column = None
    return _without(shaped, raw, dropped) if dropped else (shaped, raw)


def _without(shaped: list[logshape.Line], raw: Sequence[str],
             dropped: list[logshape.Line]) -> tuple[list[logshape.Line], Sequence[str]]:
    """The normalised lines without the dropped ones, and the captured lines with those left
    empty that held nothing else (a record's other lines are read as ever)."""
    gone = {id(line) for line in dropped}
    kept = [line for line in shaped if id(line) not in gone]
    emptied = {line.origin for line in dropped} - {line.origin for line in kept}
    return kept, ["" if origin in emptied else text for origin, text in enumerate(raw)]


def _unreasoned(found: Diagnosis) -> bool:
    """Whether a failure is a "Cannot build '…'." whose reason the log leaves out."""
    kind, _, message, _ = DRVLESS["cannot-build-unreasoned"]
    return found.kind is kind and found.message == message.format(drv=short_drv(found.drv or ""))


def parse_log(lines: Iterable[str]) -> list[Diagnosis]:
    """Every failure a captured Nix log reports: one per derivation, evaluation errors after
    (but one printed above every build's failure, which comes first).

    Never none for a log that holds an error line: what nothing finer fits is type other,
    with that line as its message.

    The log is read condensed (`logtext.condensed`: a long run of a builder's plain lines only
    at its ends), as `ci-nix junit` reads a file (`read_log`); each failure's log_line is the
    line of the log as given.
    """
    log = lines if isinstance(lines, CondensedLog) else logtext.condensed(lines)
    found = _parse_condensed(log)
    if not log.elided:
        return found
    return [replace(d, log_line=log.captured_index(d.log_line - 1) + 1) if d.log_line else d
            for d in found]


def _parse_condensed(captured: CondensedLog) -> list[Diagnosis]:
    """parse_log's reading of a condensed log (each log_line a line of it, as kept)."""
    raw: Sequence[str] = captured
    shaped, raw = _without_warning_lines(
        logshape.normalise(raw, captured.elided, captured.widths), raw)
    reader = _LogReader()
    for line in shaped:
        reader.feed(line)
    if reader.refuted:  # a builder's records: neither failures nor lines that say one
        shaped, raw = _without(shaped, raw, reader.refuted)
    by_drv: dict[str, Diagnosis] = {}
    others: list[Diagnosis] = []
    download: Diagnosis | None = None  # the download error of the block just before
    own: Diagnosis | None = None  # an error of Nix's own (no derivation) of the block before
    # what stands for failures only when nothing else in the log does: a builder's log tail
    # outside its error block, nix-build's "build of … failed" recap
    tails: list[Diagnosis] = []
    summaries: list[Diagnosis] = []
    # a "Cannot build" line a copy cut inside its path: which derivation, and why, is lost (its
    # Reason may be a dependency's), so it stands for a failure only when nothing else does
    cut: list[Diagnosis] = []
    thrown: set[str] = set()  # the lines of errors a flake threw: its text, none of Nix's
    # which block each failure came from first, by derivation or (no derivation) as found: a
    # structured record holds a whole stderr on one captured line, whose blocks' order is its
    # lines' order (see _first_in_log)
    block_of: dict[str | Diagnosis, int] = {}
    # (the last block holding text: where an excerpt's cut line stands, `_cut_reading`)
    last = max((index for index, block_ in enumerate(reader.blocks)
                if any(line.strip() for line in block_.lines)), default=-1)
    edge: int | None = None  # (`_right_edge`, where asked)
    for index, block_ in enumerate(reader.blocks):
        block, before = block_.lines, block_.before
        text = "\n".join(block).strip()
        if not text:
            continue
        threw = _thrown(block, block_.quoted) or (
            block_.traced and _quotes_a_build(block, block_.quoted))
        if threw:
            thrown.update(block)
        found = None if threw else _build_diagnosis(text, block_.quoted)
        unread = found is None and not threw
        if found is None:
            # a message of Nix's whose "error: " a copy lost: read as Nix printed it
            # (the first line as indented as Nix printed it: a trace's message is indented)
            removal = _removal_throw(text)
            if removal:  # (one line of nixpkgs', which a copy wrapped: its paragraph joined)
                text = " ".join(line.strip().removeprefix("> ") for line in block
                                if line.strip())
            found = diagnose_eval((f"error: {text}" if (
                _NIX_MESSAGE.match(text) or removal or _REFUSAL_HEAD.match(text))
                                   and not _ERROR_LINE.match(text)
                                   else "\n".join(block).strip("\n").rstrip())
                                  # (the hint after it, which says it went through evaluation)
                                  + ("\n(use '--show-trace' to show detailed location "
                                     "information)" if block_.traced else ""))
            retried = block_.retried if _cut_trace(block) is not None else None
            if retried is not None:
                # a trace cut before its message, right after Nix retried a download: the
                # download is what failed (Nix gives up after its last retry with that error)
                message, hint = _download(retried)
                found = Diagnosis(FailureType.OTHER, Kind.DOWNLOAD, _one_line(
                    f"{message} (retried; the log is cut off before Nix's error)"), hint=hint,
                    log=found.log)
            innermost = _cut_trace(block)
            fatal = next((line.strip() for line in before if _GIT_FATAL.match(line)), None)
            if retried is None and innermost is not None and _LOCK_FRAME.match(innermost) \
                    and fatal is not None:
                # a trace cut in a lock update's frames right after git said it failed: git's
                # fetch of an input is what failed (Nix wraps that failure in those frames)
                found = Diagnosis(FailureType.OTHER, Kind.ERROR, _one_line(
                    f"git failed while Nix updated the lock file: {fatal} (the log is cut off "
                    "before Nix's error)"), log=found.log)
            if found.kind in (Kind.ERROR, Kind.NIX) and not _looks_evaluated(block) \
                    and any(_FETCHING.search(line) and not _SSH_CLIENT.match(line)
                            for line in before):
                # Nix 1.x's substituter piping curl into bzip2: "error: unexpected
                # end-of-file" after curl's own error is a failed download, not evaluation
                # (the ssh client's own line, "ssh: Could not resolve hostname …", is Nix's
                # connection to a remote store or builder failing: no download)
                found = replace(found, type=FailureType.OTHER, kind=Kind.DOWNLOAD,
                                hint=HINTS[Kind.DOWNLOAD])
        ending = _nix_words(block, block_.quoted or set()).rstrip() if unread and (
            found.kind in (Kind.ERROR, Kind.NIX) or found.type is not FailureType.EVAL) \
            and found.drv is None else ""
        if ending and index != last and edge is None:
            edge = _right_edge(shaped)  # (once a text, where a block ends unread)
        if ending and (index == last or len(ending) - ending.rfind("\n") - 1 == edge):
            # the text's last block, which no pattern read, ending in a line of Nix's a copy
            # cut (an excerpt ends mid-line; or a page cut its lines at the copy's right edge):
            # that message's type, where nothing finer was read (the line's words alone, Nix's
            # own failure guessed from them, or that type without the derivation the cut kept)
            cut_reading = _cut_reading(ending)
            if cut_reading is not None and (found.kind in (Kind.ERROR, Kind.NIX)
                                            or found.type is cut_reading.type):
                found = replace(cut_reading, log=found.log)
        found = replace(found, log_line=block_.origin + 1)
        if found.kind == Kind.SUMMARY:
            summaries.append(replace(found, log=tail(before + block)))
            continue
        if found.drv is None and found.message in (DRVLESS["cannot-build-cut"][2],
                                                   DRVLESS["cannot-build-elided-unreasoned"][2]):
            cut.append(replace(found, log=tail(before + block)))
            continue
        if _LOG_TAIL.match(block[0]):
            # a builder's log tail outside its error block: what failed, when nothing else
            # in the log says (with the exit code the end of its builder line, cut above its
            # path, says right over it)
            code = _CUT_BUILDER_END.search(before[-1]) if before else None
            tails.append(replace(found, log=tail(block), exit_code=int(code[1]) if code
                                 and found.exit_code is None else found.exit_code))
            continue
        down = next((m for line in reversed(before) if (m := _BUILDER_DOWN.search(line))), None)
        if down is not None and (found.type is FailureType.PLATFORM and (
                found.drv is None or _NO_MACHINE.search(text)) or (
                (found.type, found.kind) == (FailureType.OTHER, Kind.ERROR)
                and block[0].strip() == "Failed to find a machine for remote build!")):
            # "unable to start any build" or build-remote's "Failed to find a machine" after a
            # remote builder could not be used: that builder is the reason, for the derivation
            # Nix was offloading (so its local refusal of that derivation after is no other);
            # also where a copy kept build-remote's line alone, none of its "derivation: …"
            # lines after it (heldout-529 nixpkgs-pr-146626's journal)
            found = replace(_builder_down(down), log_line=found.log_line, drv=found.drv)
        if found.drv is None and found.kind in (Kind.TIMEOUT, Kind.MAX_SILENT_TIME) \
                and block_.building is not None:
            # Nix 2.34+ names no derivation in a timeout: it is the one it was building
            found = replace(found, drv=block_.building,
                            message=f"{short_drv(block_.building)} {found.message}")
        if found.kind == Kind.BUILDER and download is not None and found.drv is not None:
            # builtin:fetchurl reports the download and then its builder's exit: one failure
            others.remove(download)
            found = replace(download, drv=found.drv, exit_code=found.exit_code)
        if own is not None and found.drv is not None and _unreasoned(found):
            # a "Cannot build '…'." without its Reason right after an error of Nix's own (a
            # remote store it could not open): that error is why, Nix printed it first
            others.remove(own)
            found = replace(own, drv=found.drv)
        download = own = None
        quoted = [m[1] for m in map(_LOG_LINE.match, block[1:]) if m]
        if found.drv is not None:
            # (Nix 2.0-2.3 quote a builder's lines indented by 2, without "> ": those, after
            # what the log said before the block)
            found = explained_by_log(found, reader.log_of(found.drv) or quoted or [
                *block_.unclaimed, *(block[at].strip() for at in sorted(block_.quoted or ()))])
            found = with_failed_download(found, before)
        if found.drv is None:
            if found.kind == Kind.DOWNLOAD:
                message, hint = _download(found.message, before + block)
                download = replace(found, message=_one_line(message), hint=hint,
                                   log=tail(before + block))
                others.append(download)
            else:
                others.append(replace(found, log=found.log if quoted or not before
                                      else tail(before + block)))
                own = others[-1] if found.kind is Kind.NIX else None
            block_of.setdefault(others[-1], index)
            continue
        log = tail(reader.log_of(found.drv) or quoted or before) or found.log
        previous = by_drv.get(found.drv)
        if previous is None or (previous.type is FailureType.DEPENDENCY
                                and found.type is not FailureType.DEPENDENCY):
            by_drv[found.drv] = replace(found, log=log or (previous.log if previous else ""))
            block_of[found.drv] = index
        elif not previous.log and log:
            by_drv[found.drv] = replace(previous, log=log)
    # (also beside other builds' failures: a copy that cut one builder's report above its
    # pointer keeps the others whole, heldout-78's nixpkgs#164420)
    hinted = _named_by_hint(shaped, by_drv, thrown)
    by_drv.update(hinted)
    # a build that failed naming only its output (an output check: Nix names the output path,
    # not its derivation) is what the dependency failures named by derivation are about, where
    # no derivation's own build failed
    by_drv = dict(zip(by_drv, _reasons_apart(list(by_drv.values()), shaped), strict=True))
    unnamed = [d for d in others if d.type is FailureType.BUILD and d.drv is None]
    failed = [d for d in by_drv.values() if d.type is not FailureType.DEPENDENCY] or unnamed
    result = []
    for diag in by_drv.values():
        if diag.type is FailureType.DEPENDENCY and failed:
            culprit = failed[0]
            names = ", ".join(dict.fromkeys(short_drv(d.drv or d.output or "") for d in failed))
            diag = replace(diag, dependency=culprit.drv, exit_code=culprit.exit_code,
                           message=f"dependency failed: {names} ({culprit.message})",
                           # (what stands before Nix's line is other builds' output)
                           log=culprit.log or diag.log)
        result.append(_with_oom_hint(diag))
    # a build named only by its log's pointer comes after what Nix's own failure lines say (a
    # dependency line whose path a copy cut stays, and first)
    pointed = [d for d in result if d.drv in hinted]
    result = [d for d in result if d.drv not in hinted]
    if result:
        # Nix 2.33+ says "Build failed due to failed dependency" naming no derivation: the
        # failures named above already say which
        others = [d for d in others if not (d.type is FailureType.DEPENDENCY and d.drv is None)]
    if failed is unnamed and unnamed:
        # (the culprit first, as a build named by its derivation stands before its dependents;
        # and before the errors that name no derivation, as a named build does: above a build
        # line nix-build printed the builder's own output unprefixed, its "error: …" lines the
        # builder's, heldout-309's nixos-hardware#895)
        result = [*unnamed, *result]
        others = [d for d in others if d not in unnamed]
    crashed = _nix_crashed(shaped, reader.blocks, [*result, *others, *pointed])
    if crashed is not None:
        # Nix dying is a failure of its own also where the log holds error blocks besides (an
        # issue's expected output after it, a trace Nix printed before it died): the first of
        # the failures no derivation names, since nothing Nix said is whole after it (and a
        # structured record's lines, sharing one origin, keep no order to place it by)
        others = [crashed, *others]
    # an evaluation error Nix printed above every build failure the log holds is its first
    # failure: Nix evaluates before it builds, so such a build's report below is a later run's
    # (a README or notes page pasting several), not what the evaluation error came from
    built = min((_first_in_log(d, block_of) for d in result if d.log_line), default=None)
    earlier = [d for d in others if (d.type is FailureType.EVAL or _nix_while_building(d, result))
               and built is not None and d.log_line and _first_in_log(d, block_of) < built]
    others = [d for d in others if d not in earlier]
    said = _said_what(earlier + result + others + pointed)
    if not tails and said and all(d.type is FailureType.DEPENDENCY for d in said):
        # only dependents failed: Nix 2.0-2.3 printed the substitution that failed under them
        # without "error: " (see _SUBSTITUTE_FAILED_BARE), the culprit, first
        substituted = _substitution_failed(shaped)
        said = [substituted, *said] if substituted is not None else said
    substitutions = [d for d in said if (d.type, d.kind) == (FailureType.OTHER, Kind.SUBSTITUTION)]
    if substitutions and said[0] not in substitutions and all(
            d.type is FailureType.DEPENDENCY for d in said if d not in substitutions):
        # only dependents failed beside a substitution Nix said failed (1.x's "could not download
        # '…' from any binary cache", before its dependents' "cannot build derivation"): the
        # substitution, the culprit, first
        said = [*substitutions, *(d for d in said if d not in substitutions)]
    downloads = [d for d in said if (d.type, d.kind) == (FailureType.OTHER, Kind.DOWNLOAD)
                 and d.drv is None]
    if downloads and substitutions and said[0] in substitutions \
            and 0 < (downloads[0].log_line or 0) < (said[0].log_line or 0) and all(
                d in downloads or d in substitutions or d.type is FailureType.DEPENDENCY
                for d in said):
        # a download Nix gave up on ("error: unable to download '…/nar/…'", not a retry's
        # warning), printed before the substitution it failed, only dependents besides: the
        # first failure Nix printed, first (as where the substitution's line names no derivation)
        said = [*downloads, *(d for d in said if d not in downloads)]
    if tails and said and all(d.type is FailureType.DEPENDENCY for d in said):
        # only dependents failed, no build of the log named as failed: the builder's log tail
        # the log holds apart from any error block (a copy cut its "builder for …" header) is
        # that build, the culprit, first as a named one stands before its dependents
        said = [tails[0], *said]
    found_all = said or tails[:1] or cut[:1] or summaries[:1]
    # (nix-eval-jobs' records read also as normalising left them: a wrapper's prefix taken off)
    found_all = _evaluated_per_jobs(found_all, raw, [line.text for line in shaped])
    if not found_all:
        found_all = _cut_at_end(_recapped(_hydras_build(
            _fallback(shaped, raw, reader.named_logs), shaped), shaped, raw), shaped)
        # (the line that said something failed is not Nix dying: a shell's report that it did,
        # before another error the log quotes, is a failure of its own as beside blocks)
        crashed = _nix_crashed(shaped, reader.blocks, found_all)
        found_all = [crashed, *found_all] if crashed is not None else found_all
    elif len(found_all) == 1 and (_cut_head(found_all[0].message)
                                  or _in_review_log(raw, found_all[0].log_line)):
        # Nix's one error line, cut inside its head ("error: build"), or the one "error:" a
        # nixpkgs-review report's package log opens with (the builder's): a recap says what failed
        found_all = _recapped(found_all, shaped, raw)
    if found_all and all(d.type is FailureType.OTHER for d in found_all) \
            and (held := _verdict_block(shaped)) is not None and all(
                _verdict_at(d.log_line, shaped) or d.kind is Kind.ERROR
                and _within(d.log_line, shaped, held) for d in found_all):
        # each error read is a builder's own verdict that looks like a line of Nix's (cargo's
        # "error: could not compile `x`", rustc's "error: aborting due to …"), or a line of the
        # block of a builder's output that holds one: no line of Nix's said what failed, the
        # builder's output did
        found_all = [held[0]]
    found_all = _hydras_eval(found_all, shaped)
    found_all = _died_in_crash(shaped, found_all)
    if any(d.kind is Kind.THROW for d in found_all) \
            and any(_FRAMES_THROWS.search(line.text) for line in shaped):
        # a Nix that frames every throw printed this log: a message without the frame is its own
        found_all = [replace(d, type=FailureType.OTHER, kind=Kind.ERROR)
                     if d.kind is Kind.THROW and not _THROWN.search(d.log) else d
                     for d in found_all]
    return _named_by_plan(found_all, shaped)


# a "builder for" or "Cannot build" line a copy cut inside its store path: what it kept of that
# path (its hash at least begun; "error: builder for '/nix/store/m9mg8cyy03r4lv7d" at the end)
_CUT_DRV_PATH = re.compile(r"^(?:error: )?(?:builder for|Cannot build) ['‘`](?P<kept>/nix/store/"
                       r"[0-9a-df-np-sv-z]{8}[^'’\s]*)$")
_CUT_MESSAGES = (DRVLESS["builder-cut"][2], DRVLESS["cannot-build-cut"][2])
# the same "builder for" line cut before its path's hash ("builder for '/nix", heldout-460
# nixpkgs-37294 after nix-build's keep-failed note): no part of the path left to tell by
_CUT_BEFORE_HASH = re.compile(r"^(?:error: )?builder for ['‘`]"
                              r"(?:/(?:n(?:i(?:x(?:/(?:s(?:t(?:o(?:r(?:e/?)?)?)?)?)?)?)?)?)?)?$")


# Nix 2.x starting a build ("building '/nix/store/…-x.drv'..."; also on a remote machine)
_BUILDING_DRV = re.compile(r"^\s*building ['‘](?P<drv>/nix/store/[^'’\s]+\.drv)['’]")


def _named_by_plan(found: list[Diagnosis], shaped: Sequence[logshape.Line]) -> list[Diagnosis]:
    """A failure Nix named only by its output path (Nix 1.x's hash mismatch of a fixed output,
    "output path ‘…-tipsy-0.1.7’ should have …"), named by its derivation where the log names
    one derivation of that name (nix-build's plan, "these derivations will be built:"); a
    builder's failure whose line a copy cut inside its path, named by the one derivation of the
    log (its plan, its "building '…'" line) whose path begins with what the cut kept; and Nix's
    one error line cut inside a build's head ("error: builde", `_cut_head`), the build of the
    one derivation the log started ("building '…-x.drv'..." and only it)."""
    if len(found) == 1 and (found[0].type, found[0].kind) == (FailureType.OTHER, Kind.ERROR) \
            and _cut_head(found[0].message) and not re.search(
                r"(?i)^(?:error:\s*)?c", found[0].message.strip()):
        if drv := _the_one_started(shaped):
            return [replace(_cut_named(found[0], drv), type=FailureType.BUILD, kind=Kind.BUILDER)]
    if not any(d.drv is None and (d.output and d.type is FailureType.HASH_MISMATCH
                                  or d.message in _CUT_MESSAGES) or _cut_fixed_output(d)
               or _output_as_drv(d) for d in found):
        return found
    kept = [m["kept"] for line in shaped if (m := _CUT_DRV_PATH.match(line.text.strip()))]
    named: list[Diagnosis] = []
    for d in found:
        if _output_as_drv(d) and d.drv is not None:
            # (Nix 2.0's "fixed-output derivation produced path '…' with …", its output path
            # read as the failure's derivation: the derivation of its name the log names,
            # heldout-495 nixpkgs-pr-41649's "building '…-source.drv'...", the path its output)
            if one := _one_drv(shaped, name=_output_name(d.drv)):
                d = replace(d, drv=one, output=d.output or d.drv)
        elif d.drv is None and d.output and d.type is FailureType.HASH_MISMATCH:
            if one := _one_drv(shaped, name=_output_name(d.output)):
                d = replace(d, drv=one)
        elif _cut_fixed_output(d):
            # (a hash mismatch whose derivation's path the copy cut inside its hash: the one
            # derivation of the log whose path begins so, its "building '…'" line's)
            if one := _one_drv(shaped, prefix=str(d.drv)):
                d = replace(d, drv=one)
        elif d.drv is None and d.message in _CUT_MESSAGES and kept:
            one = _one_drv(shaped, prefix=kept[-1])
            if one is not None and any(other.drv == one for other in found):
                continue  # (the same builder's failure again, printed whole above: no other)
            if one is not None:
                d = _cut_named(d, one)
        elif d.drv is None and d.message == DRVLESS["builder-cut"][2] and not kept and any(
                _CUT_BEFORE_HASH.match(line.text.strip()) for line in shaped):
            # (cut before the hash: the build of the one derivation the log started, as a head
            # cut before its path is, above)
            if drv := _the_one_started(shaped):
                d = _cut_named(d, drv)
        named.append(d)
    return named


# a store path a copy cut inside its hash (eight characters of it kept, at least: a prefix no
# other path of one log shares)
_CUT_IN_HASH = re.compile(r"/nix/store/[0-9a-df-np-sv-z]{8,31}")


def _cut_fixed_output(d: Diagnosis) -> bool:
    """Whether a hash mismatch names its derivation by a path the copy cut inside its hash."""
    return d.type is FailureType.HASH_MISMATCH and d.drv is not None \
        and _CUT_IN_HASH.fullmatch(d.drv) is not None


def _output_as_drv(d: Diagnosis) -> bool:
    """Whether a hash mismatch names an output path where its derivation belongs (Nix 2.0's
    "fixed-output derivation produced path '…'", hash-mismatch-old)."""
    return d.type is FailureType.HASH_MISMATCH and d.drv is not None \
        and not d.drv.endswith(".drv") and not _cut_fixed_output(d)


def _one_drv(shaped: Sequence[logshape.Line], *, name: str | None = None, prefix: str = "",
             pname: bool = False) -> str | None:
    """The one derivation the log names (its plan, its "building '…'" lines, any line's path)
    of this name (or, with pname, of this name without its version), its path beginning with
    prefix; None where the log names none such or several."""
    same = {drv for line in shaped for m in _DRV_PATH.finditer(line.text)
            if (drv := m["drv"]).startswith(prefix) and (name is None or drv_name(drv) == name
                                                         or pname and _pname(drv) == name)}
    return same.pop() if len(same) == 1 else None


def _the_one_started(shaped: Sequence[logshape.Line]) -> str | None:
    """The derivation the log started building ("building '…-x.drv'..."), where it started
    that one only."""
    started = {m["drv"] for line in shaped if (m := _BUILDING_DRV.match(line.text))}
    return started.pop() if len(started) == 1 else None


def _cut_named(d: Diagnosis, drv: str) -> Diagnosis:
    """A builder's failure whose line a copy cut, named by the derivation the log shows it was."""
    return replace(d, drv=drv, message=DRVLESS["builder-cut-named"][2].format(drv=short_drv(drv)))


# ---------------------------------------------------------------------------------------------
# A line of Nix's cut at the text's end: a public excerpt (an issue's search result, a CI log
# view) ends mid-line ("Cannot build '/nix", "…': 3 de", "timed out after 1800 s"). Each message
# `_PATTERNS` reads is also read cut: the pattern's own regex turned into one that matches every
# prefix of what it matches (`regex_literal.prefix_form`), so every wording any version prints
# gets it at once.

# (re's own parse of the patterns, as `regex_literal` reads it: the heads below are read off it)
_OP = regex_literal.OP


def _head(pattern: re.Pattern[str]) -> tuple[str, str, str]:
    """The fixed words a pattern's messages open with (what may come before them, an optional
    "error: " or a line's indentation, aside), as a regex: its letters, a choice of letters
    ("dependenc(?:y|ies)"), the count a message opens with ("3 dependencies of derivation ");
    the same as Nix prints it one way ("3 dependency of derivation "), to count its words; and
    its letters up to the first choice (a cheap look)."""
    parsed = regex_literal.parse(pattern)
    items: list[tuple[Any, Any]] = []
    for op, av in parsed:
        if op is _OP.LITERAL or op is _OP.BRANCH and all(
                sub and all(code is _OP.LITERAL for code, _ in sub) for sub in av[1]) or (
                not items and _count(op, av)):
            items.append((op, av))
        elif items or not (op in (_OP.AT, _OP.ASSERT, _OP.ASSERT_NOT)
                           or op in regex_literal.REPEATS and av[0] == 0):
            break
    # (a choice counted by its shortest: "derivation " of "(?:content-addressing derivation|
    # derivation|builder for) " is one word)
    said = "".join(chr(av) if op is _OP.LITERAL else "3" if op is not _OP.BRANCH
                   else min(("".join(chr(code) for _, code in sub) for sub in av[1]), key=len)
                   for op, av in items)
    lead = "".join(chr(av) for op, av in itertools.takewhile(
        lambda item: item[0] is _OP.LITERAL, items))
    return regex_literal.written(items), said, lead


def _count(op: Any, av: Any) -> bool:
    """Whether a parsed item is a count ("\\d+", or that in a group: "(?P<n>\\d+)"), as one of
    Nix's messages opens with one ("3 dependencies of derivation '…' failed to build")."""
    if op is _OP.SUBPATTERN and len(av[3]) == 1:
        op, av = av[3][0]
    return op in regex_literal.REPEATS and av[0] >= 1 and list(av[2]) == [
        (_OP.IN, [(_OP.CATEGORY, _OP.CATEGORY_DIGIT)])]


# What a message cut before the words that decide its type reads as: nothing (a "Cannot build"
# block's Reason says whether it was the build or a dependency, 2.29+'s "Reason:" lines name
# it; nom's line says "exit code" or "hash mismatch" after the name). A "Cannot build '…" cut
# before its Reason is the unreasoned line's, as it was read whole: a build, only where nothing
# else in the log is (parse_log's `cut`).
_CUT_UNREAD = frozenset(("cannot-build", "cannot-build-elided", "cannot-build-loose", "reason",
                         "reason-under", "required", "nom-failed"))
# the type and kind a cut of a pattern's message reads as, by its name's start (DRVLESS's own
# for the names it holds): the type the whole message has, whatever its variable parts say
_CUT_TYPES = (
    (("hash-mismatch", "import-mismatch", "hash-bare"), FailureType.HASH_MISMATCH,
     Kind.HASH_MISMATCH),
    (("builder-", "signal", "no-output", "check-build"), FailureType.BUILD, Kind.BUILDER),
    (("timeout",), FailureType.TIMEOUT, Kind.TIMEOUT),
    (("platform", "no-machine"), FailureType.PLATFORM, Kind.PLATFORM),
    (("feature-unsupported",), FailureType.PLATFORM, Kind.SYSTEM_FEATURE),
    (("dependencies",), FailureType.DEPENDENCY, Kind.DEPENDENCY),
    (("substitution",), FailureType.OTHER, Kind.SUBSTITUTION),
    (("build-summary",), FailureType.BUILD, Kind.SUMMARY),
)


def _cut_type(name: str) -> tuple[FailureType, Kind] | None:
    """The type and kind `name`'s message has however it ends; None for one `_CUT_UNREAD`."""
    if name in _CUT_UNREAD:
        return None
    if name in DRVLESS:
        kind, type_, _, _ = DRVLESS[name]
        return type_, kind
    # (a pattern none of these name is read from no cut: test_diagnose asks each has a type)
    return next(((type_, kind) for starts, type_, kind in _CUT_TYPES if name.startswith(starts)),
                None)


@functools.cache
def _cut_forms() -> list[tuple[str, re.Pattern[str] | None, str, tuple[FailureType, Kind]]]:
    """Each pattern's name, the head a cut must keep (None where none is read from a cut), the
    letters its messages open with (`_head`) and the type its cut reads as (built once, on the
    first text that ends in a line nothing read: few do)."""
    forms = []
    for name, pattern in _PATTERNS:
        type_ = _cut_type(name)
        if type_ is None:
            continue
        head, said, lead = _head(pattern)
        # (a cut keeps the whole head and more, the head two words at least: "builder for '",
        # "cannot build derivation '", "3 dependencies of derivation '"; or, of a head of four
        # words or more, its first three and a letter of the next: "hash mismatch in f", "Build
        # failed due t"; a pattern that opens with fewer fixed words, "a '…' is required", is
        # read from no cut, but its prefix still makes a cut that could be of it ambiguous)
        three = re.match(r"\S+ \S+ \S+ (?=\S)", lead)
        kept = re.compile(head + (f"|{re.escape(three[0])}" if three else "")) \
            if re.match(r"\S+ \S", said) else None
        forms.append((name, kept, lead, type_))
    return forms


@functools.cache
def _cut_heads() -> re.Pattern[str]:
    """The heads a cut must keep (`_cut_forms`), one of which a line that is one opens with."""
    return re.compile("|".join(sorted({head.pattern for _, head, _, _ in _cut_forms() if head})))


@functools.cache
def _cut_form(name: str) -> re.Pattern[str]:
    """The prefix form of the pattern `name` (compiled when a line could be its cut: each
    takes some milliseconds)."""
    return regex_literal.prefix_form(dict(_PATTERNS)[name])


# what may stand before a line of Nix's where a copy keeps it: indentation, a markdown quote,
# list or emphasis marks, Nix's "error: "
_BEFORE_NIX = re.compile(r"^[\s>*_`|-]{0,20}(?:error:\s*)?")
# how many of the text's last lines a message cut at its end may span (a hash mismatch: its
# head, Lix's URL, "specified:", "got:")
_CUT_LINES = 4


def _right_edge(shaped: Sequence[logshape.Line]) -> int:
    """A copy's right edge, where a page cut every long line of a code block at one width: the
    length of the text's longest line, where two lines or more have it; -1 where one has (asked
    only of a text with a block nothing read: counted without a list of every line's width)."""
    edge, times = -1, 0
    for line in shaped:
        width = len(line.text.rstrip())
        if width > edge:
            edge, times = width, 1
        elif width == edge:
            times += 1
    return edge if times >= 2 else -1


def _cut_at_end(found: list[Diagnosis], shaped: Sequence[logshape.Line]) -> list[Diagnosis]:
    """found, or, where it is only the text's last line read as a line nothing finer fits (no
    error block: a line of Nix's without its "error: "), that line's cut (`_cut_reading`)."""
    last = next((line for line in reversed(shaped) if line.text.strip()), None)
    if not found and last is not None and not (last.quoted or last.builder) \
            and len(said := last.text.strip()) >= 3 and "error:".startswith(said) \
            and (drv := _the_one_started(shaped)):
        # (Nix's "error:" itself cut, "err", after the one build the log started: that build's
        # failure, as "error: builde" is, `_named_by_plan`)
        return [Diagnosis(FailureType.BUILD, Kind.BUILDER, DRVLESS["builder-cut-named"][2].format(
            drv=short_drv(drv)), drv=drv, log=said, log_line=last.origin + 1)]
    if len(found) != 1 or found[0].kind not in (Kind.ERROR, Kind.NIX) or found[0].drv:
        return found
    if last is None or last.origin + 1 != found[0].log_line or last.quoted or last.builder:
        return found
    cut = _cut_reading(last.text)
    return found if cut is None else [replace(cut, log=found[0].log, log_line=found[0].log_line)]


def _cut_reading(text: str) -> Diagnosis | None:
    """The failure a message of Nix's cut at the text's end says: a prefix, from a line's start
    (one of the text's last `_CUT_LINES`: Nix's hash mismatch and its hashes) to the text's end,
    of a message `_PATTERNS` reads, that keeps at least its head's first two words ("Cannot
    build '/nix", "…': 3 de", "timed out after 1800 s"), read as that message's type where every
    message it could be a cut of has that type; the derivation named only where the cut left its
    path whole. None for any other text."""
    lines = text.split("\n")[-_CUT_LINES:]
    for start in range(len(lines) - 1, -1, -1):
        found = _cut_of("\n".join(lines[start:]))
        if found is not None:
            return found
    return None


def _cut_of(text: str) -> Diagnosis | None:
    """`_cut_reading` of the text from its first line on (and without the ellipsis a writer, or
    a tool, put where it cut: "timed out after…", "3 dependencies [...]")."""
    kept = _BEFORE_NIX.sub("", text.strip(), count=1)
    if not _cut_heads().match(kept):  # (a cheap look first: most lines open with none)
        return None
    if "_/nix/store/" in kept:  # (Nix 1.x's ‘…’ a copy turned into markdown's underscores)
        kept = _UNDERSCORED.sub(r"'\1'", kept)
    mark = next((mark for mark in _CUT_MARKS if kept.endswith(mark)), None)
    return _cut_kept(kept) or (_cut_kept(kept.removesuffix(mark).rstrip()) if mark else None)


# a derivation between underscores where Nix quoted it ("builder for _/nix/store/…-x.drv_")
_UNDERSCORED = re.compile(r"(?<!\S)_(/nix/store/[^\s'’]{1,300}?\.drv)_(?!\S)")
# an ellipsis after the words a writer or a tool cut (a string's end, not a regex's search: a
# run of blanks before the line's end would be tried from each of its blanks)
_CUT_MARKS = ("[...]", "[…]", "...", "…")


def _cut_kept(kept: str) -> Diagnosis | None:
    """`_cut_of` of the kept words (what stood before them, "error: ", taken off)."""
    readings = []
    for name, head, lead, reads in _cut_forms():
        # (what opens with other letters than the line cannot be its cut: not compiled)
        if kept[:len(lead)] != lead[:len(kept)]:
            continue
        m = _cut_form(name).match(kept)
        if m is not None:
            readings.append((name, head, m, reads))
    read = [(name, m, reads) for name, head, m, reads in readings
            if head and (whole := head.match(kept)) and whole.end() < len(kept)]
    if not read or len({reads[0] for _, _, _, reads in readings}) > 1:
        return None
    name, m, (type_, kind) = read[0]
    groups = {key: value for key, value in m.groupdict().items() if value is not None}
    path = groups.get("drv") or groups.get("path") or ""
    drv = path if path.endswith(".drv") or kind is Kind.HASH_MISMATCH and path else None
    if name.startswith(("builder-", "signal", "no-output")):
        # (the words parse_log's naming of a cut builder line by the log's plan looks for)
        said = DRVLESS["builder-cut-named" if drv else "builder-cut"][2]
        return Diagnosis(type_, kind, said.format(drv=short_drv(drv or "")), drv=drv)
    if name.startswith("cannot-build"):  # (the Reason cut off may be a dependency's: no name)
        return Diagnosis(type_, kind, DRVLESS["cannot-build-cut"][2])
    hint = {Kind.TIMEOUT: _TIMEOUT_HINT, Kind.HASH_MISMATCH: "the fixed-output hash is out of "
            "date: rebuild to see the hash it got, and replace the one in the derivation"}.get(kind)
    # (a hash the cut left whole: Nix 2.0-2.1's got hash before "instead of the expec…")
    algo = f"{groups['algo']}:" if "algo" in groups else ""
    got, specified = (f"{algo}{groups[key]}" if key in groups and kind is Kind.HASH_MISMATCH
                      else None for key in ("got", "specified"))
    if got is not None:
        hint = _hash_hint(specified or "the old hash", got)
    said = _STORE_DIR.sub("", " ".join(kept.split()))
    return Diagnosis(type_, kind, _one_line(f"{said}… (the copy ends inside Nix's line)"),
                     drv=drv, hint=hint or HINTS.get(kind), got=got, specified=specified)


# a store path's directory and hash (or a cut of them), which a message names it without
_STORE_DIR = re.compile(r"/nix/store/(?:[0-9a-z]{32}-|[0-9a-z]{0,32}$)")


# Nix 2.0-2.3's substitution goal printed what failed it without "error: " (printError of the
# exception, build.cc's SubstitutionGoal::finished) after its "copying path '…' from '…'..."
# line: the NAR's archive or its decompression (libutil's archive.cc, compression.cc)
_SUBSTITUTE_FAILED_BARE = re.compile(
    r"^(?:bad archive: \S|error \d+ while decompressing (?:xz|bzip2|brotli|zstd) file|"
    r"error while decompressing (?:xz|bzip2|brotli|zstd) file)")
_COPYING_FROM = re.compile(r"^\s*copying path ['‘]/\S+['’] from ['‘]\S+['’]")


def _substitution_failed(shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """Nix 2.0-2.3's unprefixed line saying a substitution failed, below a path being copied
    (a few of Nix's own lines between: its download's retry warning, other paths' copying)."""
    copying = False
    for at, line in enumerate(shaped):
        text = line.text.strip()
        if _COPYING_FROM.match(text):
            copying = True
        elif copying and _SUBSTITUTE_FAILED_BARE.match(text):
            return Diagnosis(FailureType.OTHER, Kind.SUBSTITUTION, _one_line(
                f"substituting a path failed: {text}"), hint=HINTS[Kind.SUBSTITUTION],
                log=tail([line.text for line in shaped[max(0, at - 5):at + 1]]),
                log_line=line.origin + 1)
    return None


def _first_in_log(found: Diagnosis, block_of: Mapping[str | Diagnosis, int]) -> tuple[int, int]:
    """Where a failure stands in the log: its line, then (on one captured line, a structured
    record holding the whole stderr: json-record, Stackdriver, an escaped field) the order of
    its error block among the record's, which is the order Nix printed them in."""
    return (found.log_line or 0,
            block_of.get(found.drv if found.drv is not None else found, len(block_of)))


# the 2.29+ block's Reason in Nix's words wherever a line quotes it: its own line, a sentence's
# code span or double quotes, a bullet ("… matches the wrong line (`Reason: builder failed with
# exit code 143` — separate line, no drv path)")
_REASON_QUOTED = re.compile(
    r"(?:^|(?<=[\s`'\"“(*_>]))Reason:[ \t]*(?P<reason>(?:builder |\d+ dependenc|required system|"
    r"platform mismatch|missing system features|unmet system|local builds are disabled)"
    r"[^`\"”\n]*)")
_HEADER_DRV = re.compile(rf"Cannot build {_Q}{_DRV}")
# what opens a failure of its own in a line: another header's words, Nix's "error:"
_HEADER_WORDS = re.compile(r"Cannot build ['‘`]|builder for ['‘`]?/nix/store/|\berror:",
                           re.IGNORECASE)


def _reasons_apart(found: list[Diagnosis],
                   shaped: Sequence[logshape.Line]) -> list[Diagnosis]:
    """Each "Cannot build '…'." whose reason the log leaves out, with the Reason a writer quoted
    apart from it (the header fenced, its Reason in the sentence after: "the wrong line
    (`Reason: builder failed with exit code 143` — separate line, no drv path)"): the next line
    after the header that says something failed, where that line gives a Reason with no header
    of its own before it. Any other failure's line first (a header, an error), or a builder's
    output, and the failure stays as the log said it. Each scan ends at the next line saying
    something failed, so the lines are read about once for all the failures."""
    wanted = {(d.log_line or 0) - 1 for d in found if _unreasoned(d)}
    if not wanted:
        return found
    # each header's own line: the first of its origin naming its derivation (one record's lines
    # share one origin), else its origin's first
    header: dict[tuple[int, str | None], int] = {}
    for at, line in enumerate(shaped):
        if line.origin in wanted:
            header.setdefault((line.origin, None), at)
            if (m := _HEADER_DRV.search(line.text)) is not None:
                header.setdefault((line.origin, m["drv"]), at)
    result = []
    for diag in found:
        origin = (diag.log_line or 0) - 1
        start = header.get((origin, diag.drv), header.get((origin, None), -1)) \
            if _unreasoned(diag) else -1
        for line in shaped[start + 1:] if start >= 0 else ():
            text = _says_failed(line)
            if text is None:
                continue
            m = None if _LOG_LINE.match(text) else _REASON_QUOTED.search(text)
            if m is not None and not _HEADER_WORDS.search(text, 0, m.start()):
                reason = _whole_reason(m, text)
                diag = replace(_reason_diagnosis(diag.drv, reason, text),
                               log_line=diag.log_line, log=diag.log)
            break
        result.append(diag)
    return result


def _nix_while_building(found: Diagnosis, builds: list[Diagnosis]) -> bool:
    """Whether an error of Nix's own machinery (kind `nix`) printed above builders' failures is
    Nix's, printed while it built (a recursive-Nix path it could not put into the sandbox,
    heldout-206), rather than a line of a builder's output that a copy shows above its report:
    every failure named by a derivation is a builder's that shows its log, and the line is in
    none of them (a builder's own line is, as its last lines or the lines before Nix's report).
    Putting every error of Nix's own above the builds first instead changed three observed
    samples' first failure to a builder's own line (heldout-62, -177, -190)."""
    said = found.message.strip()[:60]
    return (found.kind is Kind.NIX and bool(said) and bool(builds)
            and all(d.type is FailureType.BUILD and d.log for d in builds)
            and not any(said in d.log for d in builds))


# an error line that is the word alone, its block holding nothing after it: a paragraph's last
# word wrapped onto a line of its own ("… to introduce the syntax\nerror:"), or a copy cut right
# after Nix's bare "error:" (whose trace and message follow it when Nix prints it); or one whose
# message is a frame's words alone ("error: while setting up the build environment"), the error
# it is the context of on the next error line; or Nix 2.4pre's header alone ("error: --- Error
# --- nix"), its message on the next line, which another tool's `-L` line stood in (or a cut)
_BARE_ERROR = re.compile(r"^\s*(?:error:|while [a-z][^:\n]{0,200}|"
                         r"error: -{3} ?\w{0,40} ?-{3,} ?(?:\w[\w-]*)?)\s*$")


def _said_what(found: list[Diagnosis]) -> list[Diagnosis]:
    """The failures that say what failed: a bare `error:` says only that something did (and a
    frame's words alone only where), so it stands for a failure only where no other failure of
    the log says more."""
    said = [d for d in found if not _BARE_ERROR.match(d.message)]
    return said or found


# Nix's own words as it dies (Nix 2.2x's panic, its crash handler, an uncaught exception of its
# own): no builder prints them, unlike a crashed program's report in a build log
_CRASH_HEADER = re.compile(rf"^{logshape.CRASH_HEADER}This is a bug")
_NIX_CRASHED = re.compile(r"unexpected unrecoverable internal error|"
                          rf"{_CRASH_HEADER.pattern}|"
                          r"terminate called after throwing an instance of '?nix::|" + _JOB_KILLED)
_NIX_CRASHED_NEEDS = required_literals(_NIX_CRASHED)  # (each line of a log is looked at)


# the crash handler's line naming what Nix died of, after its "… crashed. This is a bug" header
_EXCEPTION = re.compile(r"^\s*Exception: ")
# the error a crash report goes on with: C++'s "  what():  error: …" (also a bare "error:" before
# a trace), Nix's crash handler's "Exception: nix::…: error: …", an error line
_DIED_OF = re.compile(rf"\bwhat\(\):|{_EXCEPTION.pattern}|(?:^|\s)error:(?:\s|$)")


def _said_at(origin: int, text: str, shaped: Sequence[logshape.Line]) -> int:
    """The index in `shaped` of the line that said something failed (len(shaped) for none):
    by its origin and, since the lines a record held share its origin, by its text too."""
    return next((i for i, line in enumerate(shaped) if line.origin == origin
                 and line.text.strip() == text.strip()), len(shaped))


# the crash words in any case (a failure mark is read so): "a segmentation fault" of a sentence
_CRASH_NAMED = re.compile(_CRASH.pattern, re.IGNORECASE)


def _reported_crash(said: tuple[int, str], shaped: Sequence[logshape.Line]) -> tuple[int, str]:
    """The line that says something failed, or, where it says so only by naming a crash not as
    a program or shell reports one ("… will yield a segmentation fault"), a later line of Nix's
    that reports one in its own case ("Segmentation fault (core dumped)")."""
    origin, text = said
    if _CRASH.search(text) or not _CRASH_NAMED.search(text):
        return said
    at = _said_at(origin, text, shaped)
    return next(((line.origin, line.text) for line in shaped[at + 1:]
                 if line.builder is None and _CRASH.search(line.text)), said)


def _died_of(said: tuple[int, str], shaped: Sequence[logshape.Line]) -> tuple[int, str]:
    """The line that says something failed, or, where that is Nix's crash header, the line
    right after it naming the exception Nix died of (which says what)."""
    origin, text = said
    if not _NIX_CRASHED.search(text):
        return said
    at = _said_at(origin, text, shaped)
    return next(((line.origin, line.text) for line in shaped[at + 1:at + 3]
                 if line.builder is None and _EXCEPTION.match(line.text)), said)


def _died_in_crash(shaped: Sequence[logshape.Line], found: list[Diagnosis]) -> list[Diagnosis]:
    """An error of Nix's that its crash handler then reports it died of is Nix's own failure,
    whatever its wording: "error: interrupted by the user", then "Determinate Nix crashed. This
    is a bug. …" and "Exception: nix::Interrupted: error: interrupted by the user" (Nix let
    it go uncaught). Nix's own lines only: a builder's output holds a nested Nix's."""
    died = [after.text for at, line in enumerate(shaped)
            if line.builder is None and _CRASH_HEADER.match(line.text)
            for after in shaped[at + 1:at + 4]
            if after.builder is None and _EXCEPTION.match(after.text)]
    if not died:
        return found
    return [replace(d, kind=Kind.NIX, hint=HINTS[Kind.NIX])
            if d.type is FailureType.OTHER and d.kind is Kind.ERROR and d.message
            and any(d.message in text for text in died) else d for d in found]


def _nix_crashed(shaped: Sequence[logshape.Line], blocks: Sequence[_Block],
                 found: Sequence[Diagnosis]) -> Diagnosis | None:
    """Nix's first report that it crashed, where the error blocks gave failures that do not say
    it: outside those blocks and builders' output, and not right before the error it died of
    ("what(): error: …", "Exception: …: error: …", which is that failure); None for none.
    (Without failures from blocks, `_fallback` reads the crash.) By the lines' text, not their
    origin: a structured record's lines share one."""
    if not found:
        return None
    inside = {text for block in blocks for text in block.lines}
    for at, line in enumerate(shaped):
        if line.builder is None and line.text not in inside \
                and holds(line.text, _NIX_CRASHED_NEEDS) and _NIX_CRASHED.search(line.text):
            crash = _line_failure(line.text, line.origin)
            if any(d.message == crash.message for d in found) or any(
                    _DIED_OF.search(after.text) for after in shaped[at + 1:at + 3]):
                return None
            return crash
    return None


_FULL_LOG_HINT_SPLIT = re.compile(r"For full logs, run:\s*$")
# that command alone on its line, where a copy kept the line Nix puts it on but not the
# "For full logs, run:" above it (a comment keeping a build's quoted tail and its pointer)
# (a source comment's "#" before both lines kept, where the normaliser left it: under a
# transport's prefix or a fence a comment run is not taken for the capture's own)
_FULL_LOG_COMMAND = re.compile(rf"^\s*(?:#\s*)?nix log {_DRV}\s*$")
_COMMENTED_TAIL_QUOTE = re.compile(r"\s*(?:#\s*)?" + logshape.TAIL_MARK)


_TAIL_QUOTE = re.compile(r"\s*" + logshape.TAIL_MARK)  # (a line Nix quotes of a builder's)


def _named_by_hint(shaped: Sequence[logshape.Line], by_drv: dict[str, Diagnosis],
                   thrown: set[str]) -> dict[str, Diagnosis]:
    """The builds a log names only by Nix's "For full logs, run 'nix log X.drv'", X not among
    the failures read already: Nix prints that pointer under a builder's failure only, so X
    failed even where its "builder for"/"Cannot build" line is lost (the report's lines joined
    into one, the copy cut). Nix's own lines only: a builder printing it is no report of Nix's,
    nor is a line of a message a flake threw (`thrown`: the lines of those errors' blocks)."""
    named: dict[str, Diagnosis] = {}
    for at, line in enumerate(shaped):
        if line.quoted or line.builder is not None or _TAIL_QUOTE.match(line.text) \
                or line.text in thrown:
            continue
        text = _nix_said(line.text)
        if text is None:
            continue
        # Nix 2.24+ puts the command on the line after "For full logs, run:"
        if _FULL_LOG_HINT_SPLIT.search(text) and at + 1 < len(shaped) \
                and shaped[at + 1].builder is None:
            text = f"{text} {shaped[at + 1].text.strip()}"
        lone = _FULL_LOG_COMMAND.match(text)
        if lone is not None and at > 0 and _COMMENTED_TAIL_QUOTE.match(shaped[at - 1].text):
            # right under the builder's last line as Nix quotes it: the pointer's second line
            text = f"For full logs, run: nix log {lone['drv']}"
        for m in _FULL_LOG_HINT.finditer(text):
            drv = m["drv"]
            if drv not in by_drv and drv not in named:
                named[drv] = Diagnosis(
                    FailureType.BUILD, Kind.BUILDER,
                    f"builder for {short_drv(drv)} failed (the log names only its full log)",
                    drv=drv, log_line=line.origin + 1, log=tail([line.text]))
    return named


def _nix_said(text: str) -> str | None:
    """What a normalised line says as Nix's own: the line, or for an internal-json record the
    message of an error record without the builder's lines it quotes; None for any other record
    (a build-log record is what a builder printed: its "For full logs, run 'nix log
    …-other.drv'" named that derivation as failed in a green log)."""
    if not text.startswith(nixlog.PREFIX):
        return text
    event = nixlog.LogParser().parse(text)
    if not isinstance(event, nixlog.Message) or not event.is_error:
        return None
    lines = clean(event.text).split("\n")
    return _nix_words(lines, logshape.quoted_in(lines))


# a record of nix-eval-jobs (Hydra's, nix-fast-build's, buildbot-nix's evaluator): one attribute
# and, where it failed to evaluate, "error" (kept also when a copy cut the record short)
_EVAL_JOBS_ERROR = re.compile(r'\{"attr":"[^"\n]{0,1000}",.{0,4000}?"error":"'
                              r'(?P<error>(?:[^"\\\n]|\\.){1,4000})')


def _evaluated_per_jobs(found: list[Diagnosis], raw: Sequence[str],
                        shown: Sequence[str] = ()) -> list[Diagnosis]:
    """`found`, where nix-eval-jobs records an error as an attribute's evaluation error: Nix's
    message there (`other` for want of a frame, e.g. a bare `throw`) is the evaluation's. The
    records are looked for in the captured lines `raw` and also in `shown` (the lines as
    normalising left them: a wrapper's prefix taken off)."""
    said = [_jobs_error(m) for line in itertools.chain(raw, shown)
            if (m := _EVAL_JOBS_ERROR.search(line))]
    if not said:
        return found
    def by_jobs(d: Diagnosis) -> bool:
        message = " ".join(d.message.split())
        if (d.type, d.kind) != (FailureType.OTHER, Kind.ERROR) or len(message) < 20:
            return False
        # the record on its own line first: asking every record for every failure is
        # quadratic in a nix-eval-jobs log, a record (and often a failure) per attribute
        # (a log line is a captured line's: its record is searched for behind any prefix)
        at = -1 if d.log_line is None else d.log_line - 1
        own = raw[at] if 0 <= at < len(raw) else ""
        record = _EVAL_JOBS_ERROR.search(own)
        return (record is not None and message in _jobs_error(record)) \
            or any(message in error for error in said)
    return [replace(d, type=FailureType.EVAL) if by_jobs(d) else d for d in found]



# Hydra's evaluation errors (hydra-eval-jobset's evaluationErrorMsg: "in job ‘ATTR’:" or "at
# top-level:" over the error nix-eval-jobs recorded for that attribute; buildbot-nix's
# EvalErrorStep the same, "ATTR failed to evaluate:") and nix-eval-jobs' own EvalError for an
# attribute whose outputs it could not query (drv.cc: "derivation 'ATTR' does not have valid
# outputs: …"): that attribute's evaluation failed
_HYDRA_JOB = re.compile(r"^(?:in job ['‘][^'’\n]{1,500}['’]|at top-level|"
                        r"[\w.\"'-]{1,500} failed to evaluate):$")
# (and its worker the kernel killed while it evaluated an attribute, nix-eval-jobs.cc: "while
# reading result for attrPath '…', evaluation worker got killed by SIGKILL, maybe memory limit
# reached?": an evaluation out of memory, `eval` as CONTRACT has it; its other signals, Nix
# crashing, stay as they are)
_NO_VALID_OUTPUTS = re.compile(r"\bderivation ['‘][^'’\n]{1,500}['’] does not have valid outputs\b|"
                               r"\bevaluation worker got killed by SIGKILL, maybe memory limit "
                               r"reached\b")


def _hydras_eval(found: list[Diagnosis], shaped: Sequence[logshape.Line]) -> list[Diagnosis]:
    """`found`, where an error nothing finer fits (`other`, naming no derivation) is an
    attribute's evaluation error by Hydra's or nix-eval-jobs' words (`_HYDRA_JOB` above it,
    `_NO_VALID_OUTPUTS` in it): `eval`, as a nix-eval-jobs record's (`_evaluated_per_jobs`).
    Nix's own errors of a finer kind there (a download, the store) keep theirs."""
    if not any((d.type, d.kind, d.drv) == (FailureType.OTHER, Kind.ERROR, None) for d in found):
        return found
    job = next((line.origin for line in shaped if line.builder is None
                and _HYDRA_JOB.match(line.text.strip())), None)
    return [replace(d, type=FailureType.EVAL)
            if (d.type, d.kind, d.drv) == (FailureType.OTHER, Kind.ERROR, None) and (
                _NO_VALID_OUTPUTS.search(d.message) is not None
                or (job is not None and d.log_line is not None and d.log_line - 1 > job))
            else d for d in found]

def _jobs_error(m: re.Match[str]) -> str:
    """A nix-eval-jobs record's error, its escapes read and its blanks as one."""
    return " ".join(m["error"].replace("\\n", " ").replace('\\"', '"').split())


# the build's child after setting up the sandbox (libstore's "executing '%1%'"): the builder
# program could not be exec'd
_EXEC_FAILED = re.compile(r"^\s*error: executing ['‘](?P<program>[^'’\n]{1,4096})['’]: "
                          r"(?P<why>[^\n]{1,500})")
# a shell's "<script>: line 149: nix-build: command not found"
_SHELL_NOT_FOUND = re.compile(r"(?<!\S)(?P<script>[^\s:]{1,4096}): line \d{1,9}: [^\n:]{1,200}: "
                              r"command not found\s*$")
# a script a build runs: named relative to the build's directory ("./configure", "../libtool",
# "config.status"), or in it; a shell run with `-c` ("bash: line 1: …") is whoever ran it
_BUILDS_SCRIPT = re.compile(r"^(?!/|(?:ba|da|z|k|c|tc)?sh$)")
# a wrapper's verdict on the command it ran, after that command's last line: nixos-rebuild-ng's
# (Python's CalledProcessError: "Command '[…]' returned non-zero exit status 1."), nom's status
# line ("┗━ ∑ ⚠ Exited with 1 errors reported by nix at …")
_WRAPPER_VERDICT = re.compile(r"^Command .{1,4096} returned non-zero exit status -?\d{1,9}\.?\s*$|"
                              r"^[\s\u2500-\u257f]*∑ |"
                              # and its box's headings ("┣━━━ Builds")
                              r"^\s*[\u2500-\u257f]*━━━ ?(?:Builds|Downloads|Uploads)\s*$")
# the first of them where the command it names is one of Nix's (nix, nix-build, nix-store, …)
_NIX_COMMAND_FAILED = re.compile(r"^Command [\['\"(]{1,3}nix(?:-[a-z-]{1,30})?['\"]?[ ,].{0,4096}? "
                                 r"returned non-zero exit status -?\d{1,9}\.?\s*$")
# (and a CI system's own verdict on the run: garnix's build page "status: Failure", Jenkins'
# "Finished: FAILURE")
# (a level also after the tool's own marks and bracketed name: deploy-rs' "🚀 ❌ [deploy]
# [ERROR]", which a copy may have lost its first glyph of)
# a wrapper's error line with nothing after its level word, and how many of the causes after it
# make its message
_BARE_LEVEL = re.compile(r"^\s*(?:Error|ERROR):\s*$")
_MAX_CAUSES = 5
_WRAPPER_ERROR = re.compile(r"^\s*(?:Error:|ERROR\b|"
                            r"(?:[^\w\s\[]{1,8} )?(?:❌ )?(?:\[[\w.-]{1,40}\] )?\[ERROR ?\]|"
                            r"✖|×|\S+ ❌|"
                            r"status: Fail(?:ure|ed)\s*$|Finished: (?:FAILURE|ABORTED)\s*$)")


def _builder_down(m: re.Match[str]) -> Diagnosis:
    return Diagnosis(FailureType.OTHER, Kind.NIX,
                     _one_line(f"remote builder {m['uri']} could not be used: {m['why']}"),
                     hint="the remote builder could not be reached or used: check that `ssh` "
                     "exists for the Nix daemon, root (the daemon's user) accepts the builder's "
                     "host key, and the key has no passphrase (`nix store ping --store URI`)")


# nix-output-monitor's box of the errors Nix reported ("┏━ 1 Errors:", then each error's lines
# behind "┃ "), its heading normalised to "1 Errors:": nom's word that Nix failed, also where a
# copy kept none of the messages' first lines (nom's "⋮" elides a long one's head)
_NOM_ERRORS = re.compile(r"^\s*[1-9]\d{0,5} Errors?:\s*$")
_NOM_BOX_TOP = "┏━"
_NOM_ELIDED = re.compile(r"^[\s⋮]*$")


def _nom_error_box(shaped: Sequence[logshape.Line], raw: Sequence[str]) -> Diagnosis | None:
    """`other` from nom's error box where nothing else in the log says what failed: its
    heading, and the first line the copy kept of what it holds."""
    for at, line in enumerate(shaped):
        if line.builder is None and _NOM_ERRORS.match(line.text) \
                and line.origin < len(raw) and _NOM_BOX_TOP in raw[line.origin]:
            kept = next((later.text.strip() for later in shaped[at + 1:]
                         if later.builder is None and not _NOM_ELIDED.match(later.text)), "")
            count = int(line.text.split()[0])  # (nom writes "1 Errors:")
            return Diagnosis(FailureType.OTHER, Kind.ERROR, _one_line(
                f"nix-output-monitor reported {count} error{'' if count == 1 else 's'} of Nix's"
                + (f"; its box kept: {kept}" if kept else "")),
                log_line=line.origin + 1, log=tail([raw[line.origin]]))
    return None


def _traced_below(found: Diagnosis, shaped: Sequence[logshape.Line], at: int) -> Diagnosis:
    """found, for the error line shaped[at] where nothing finer fits it (`other`), typed by the
    evaluator's trace frames that follow it with no other error line between: they are its
    trace, cut before the message they lead to (Nix before 2.20 printed a message above its
    frames; a report's title or summary line says the message above a pasted trace), so the
    innermost frame says what Nix was doing (`_trace_only`); the message stays the line's."""
    if (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR):
        return found
    frames = []
    for line in shaped[at + 1:]:
        if line.builder is not None:
            continue
        if _FRAME.match(line.text) or _OLD_FRAME.match(line.text):
            frames.append(line.text)
        elif _ERROR_ANYWHERE.search(line.text) and not _NOT_A_FAILURE.match(line.text):
            break
    if not frames:
        return found
    traced = _trace_only(frames[-1], [line.text for line in shaped])
    return replace(found, type=traced.type, kind=traced.kind, hint=traced.hint)


# Nix's progress line about a store path ("building '/nix/store/…drv'...", "copying path '…'
# from '…'...") ended by its "..." and followed, on the same line, by an "error:": lines a copy
# glued together (a code span holding a whole run on one line)
_PROGRESS_THEN_ERROR = re.compile(
    r"['‘]/nix/store/[^'’\s]+['’](?: (?:from|to|on) ['‘][^'’\s]+['’])?\.\.\.\s+(?=error: )")


def _glued_after_progress(text: str) -> str:
    """A line that starts as no failure (a `trace:` or `warning:` line) but holds, after a
    progress line of Nix's glued onto it, an error line of Nix's: that error line, as Nix
    printed it on its own (heldout-325's cardano-explorer-278: "trace: Using index-state: …
    building '…drv'... error: moving build output …" in one code span); text otherwise. A
    warning's own "error:" ("warning: error: unable to download …; retrying") follows no
    progress line and stays the warning's."""
    if not _NOT_A_FAILURE.match(text):
        return text
    glued = _PROGRESS_THEN_ERROR.search(text)
    return text if glued is None else text[glued.end():]


def _after_old_frames(shaped: Sequence[logshape.Line], raw: Sequence[str],
                      last: logshape.Line) -> logshape.Line | None:
    """The message under Nix <= 2.3's last frame ("while evaluating … at …:", ending in a
    colon) of a trace whose "error: " head a copy cut (heldout-324's obelisk-197: frames, then
    "unexpected EOF reading a line"); None when the trace is cut before it (as
    `_old_trace_message` reads a headed one). Nix prints the message at its frames' column: a
    line a relay printed at another (Ansible's YAML "stderr_lines: <omitted>" under its
    "stderr: |-" block, dev-2's nix-561-old-frames relayed) is none of Nix's; nor is one more
    lines follow (Nix's last line: a CI system's own after it)."""
    if not (_OLD_FRAME.match(last.text.strip()) and last.text.rstrip().endswith(":")):
        return None
    blank = 0
    at = next(at for at, line in enumerate(shaped) if line is last)
    for below, line in enumerate(shaped[at + 1:], at + 2):
        text = line.text.strip()
        blank = blank + 1 if not text else 0
        if blank > 1 or line.builder is not None:  # (one blank: a copy double-spaced it)
            return None
        if not text:
            continue
        if text.startswith("while ") or _ERROR_LINE.match(text) or _FRAME.match(text):
            return None
        column = [_indent(raw[o]) if o < len(raw) else 0 for o in (last.origin, line.origin)]
        # (and the log's last words there: a paragraph's end or a fence's; a CI system's own
        # lines after a cut trace, Jenkins' "[Pipeline] }" and the rest, are not)
        after = shaped[below].text.strip() if below < len(shaped) else ""
        return line if column[0] == column[1] and (
            not after or after.startswith(("```", "~~~"))) else None
    return None


def _old_trace(shaped: Sequence[logshape.Line], under: logshape.Line) -> list[str]:
    """The text of Nix <= 2.3's frames right above the message under them (`_after_old_frames`)
    and of that message, a line each."""
    at = next(at for at, line in enumerate(shaped) if line is under)
    start = at
    while start > 0 and (not shaped[start - 1].text.strip()
                         or _OLD_FRAME.match(shaped[start - 1].text.strip())):
        start -= 1
    return [line.text.strip() for line in shaped[start:at + 1] if line.text.strip()]


def _fallback(shaped: Sequence[logshape.Line], raw: Sequence[str],
              named_logs: dict[str, list[str]]) -> list[Diagnosis]:
    """What a log whose errors fit no block says failed: never nothing when it says anything.

    In order: an error line of Nix's (`other`, that line as message); a fetcher's "cannot
    download … from any mirror" in `nix build -L` output, the only trace of a failed download
    in a log cut short; an evaluation trace without its message (`eval`); a line that says
    something failed (see `failure_line`) in words of Nix's that say what (a crash, nixpkgs
    refusing a package, a missing derivation, without `error:`); a wrapper's own error line
    (devenv, nh, colmena, a CI step); last, the line that says something failed, as it is."""
    for at, line in enumerate(shaped):
        text = _glued_after_progress(line.text) if line.builder is None else line.text
        m = _ERROR_ANYWHERE.search(text) if line.builder is None \
            and not _NOT_A_FAILURE.match(text) and not _a_record(text) \
            and not _relays_output(text) else None
        if m is not None and text[:m.start()].strip() and logshape.BAR.search(text):
            continue  # a progress bar showing a builder's last line: the builder's words
        if m is not None:
            whole = text
            if _CUT_REASON.search(whole) and at + 1 < len(shaped) \
                    and shaped[at + 1].builder is None:
                whole += "\n" + shaped[at + 1].text  # the Reason's rest, after a hard wrap
            # (as Nix quoted it where normalising took its quote mark off: every line had it)
            own = f"       > {text.strip()}" if _quoted_by_nix(line, raw) else text
            read = _traced_below(_uncaught_nix(_builders_own(
                _line_failure(whole, line.origin), own, _fenced(raw, line.origin),
                _fence_of_quotes(raw, line.origin)), shaped, at), shaped, at)
            verdict = read.type is FailureType.OTHER \
                and _VERDICT.match(_VERDICT_WRAPPING.sub("", text, count=1).rstrip()) is not None
            if verdict or ((read.type, read.kind) == (FailureType.OTHER, Kind.ERROR)
                           and not _ERROR_LINE.match(text)):
                # the error line is a builder's own verdict (a compiler's "x.c:1:2: error:",
                # cargo's "error: could not compile `x`"), or a line nothing finer fits not
                # headed as Nix's are (a writer's "I get this error:", a title's "Build error:
                # …", a builder's "sphinx-build: error: …"), where a block of a builder's output
                # holds a verdict: no line of Nix's said what failed, that build did (a line of
                # Nix's, "error: program 'git' failed …" over make's "*** [Makefile:14: i3]
                # Error 1", is a Makefile running Nix: heldout-32 ryan4yin-9)
                block = _verdict_block(shaped)
                if block is not None:
                    read = block[0]
            return [read]
    for output in named_logs.values():
        for text in output:
            if _MIRRORS.search(text):
                message, hint = _download(text, output)
                return [Diagnosis(FailureType.OTHER, Kind.DOWNLOAD, _one_line(message),
                                  hint=hint, log=tail(output))]
    for line in shaped:
        m = _MIRRORS_OPENING.match(line.text) if line.builder is None else None
        if m is not None:
            # fetchurl's last words opening a line without Nix's "error:" (an issue's title):
            # that download failed, of the log's one derivation of its name where it names one
            message, hint = _download(m[0].strip(" #>*_`-"), [])
            return [Diagnosis(FailureType.OTHER, Kind.DOWNLOAD, _one_line(message), hint=hint,
                              drv=_one_drv(shaped, name=m["name"]),
                              log_line=line.origin + 1, log=tail([line.text]))]
    for line in shaped:
        exec_failed = _EXEC_FAILED.match(line.text) if line.builder is not None else None
        if exec_failed is not None:
            # Nix's own words from the build's child, printed into the build log: the builder
            # program could not be run, so that build failed ("builder for … failed", which
            # the capture left out, is what Nix says after it)
            return [Diagnosis(FailureType.BUILD, Kind.BUILDER, _one_line(
                f"{line.builder}: its builder could not be run: executing "
                f"{exec_failed['program']}: {exec_failed['why']}"),
                log_line=line.origin + 1, log=tail([line.text]))]
    frames = [line for line in shaped if line.builder is None and (
        _FRAME.match(line.text) or _OLD_FRAME.match(line.text))]
    if frames:  # a trace whose message was cut off: its innermost frame says what Nix did
        under = _after_old_frames(shaped, raw, frames[-1])
        if under is not None:
            # (a copy cut the trace's "error: " head: read as Nix printed it, head and all, so
            # that the trace reads alike with and without it: its message decides where its
            # words are Nix's own, heldout-324's "unexpected EOF reading a line", else the
            # evaluator's frames, as _eval_kind reads a headed one)
            trace = "\n".join(_old_trace(shaped, under))
            return [replace(diagnose_eval(f"error: {trace}"), log_line=under.origin + 1,
                            log=tail([line.text for line in shaped]))]
        return [replace(_trace_only(frames[-1].text, [line.text for line in shaped]),
                        log_line=frames[0].origin + 1)]
    framed = _framed_position(shaped)
    if framed is not None:
        return [framed]
    assertions = _assertions_without_header(shaped, raw)
    if assertions is not None:
        return [assertions]
    installer = _installer_failure(shaped)
    if installer is not None:
        return [installer]
    said = failure_line(shaped, raw)
    said = None if said is None else _reported_crash(said, shaped)
    if said is not None and _announces_a_kept_tail(_died_of(said, shaped), shaped):
        kept = _kept_tail(shaped, raw)
        if kept is not None:
            return [kept]
    found = None if said is None else _line_failure(*_announced(_died_of(said, shaped), shaped))
    if found is not None and said is not None and (
            (found.type, found.kind) == (FailureType.OTHER, Kind.ERROR)
            or (found.kind is Kind.BUILDER and found.drv is None
                and _ENDS_IN_A_PATH.search(said[1]) is not None)):
        found = _read_on_wrapped(said, shaped) or found
    if found is not None and said is not None and found.type is FailureType.OTHER \
            and found.kind is not Kind.ERROR and _verdict_at(said[0] + 1, shaped):
        # the line that says something failed is a builder's own verdict whose words read as
        # Nix's ("make: *** [x] Segmentation fault", "…/stdenv-linux/setup: line 1315: 3888
        # Killed ./Setup build"): that build failed
        found = _builders_verdict(shaped) or found
    if found is not None and (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR):
        return [found]  # Nix's own words say what failed, a wrapper's line only that it did
    finer = None if said is None else _finer_failure_after(said, shaped)
    if finer is not None:
        return [finer]
    if found is not None and said is not None and not _marked_before(shaped, said[0]) \
            and _builders_own(found, said[1], _fenced(raw, said[0]),
                              _fence_of_quotes(raw, said[0])).type is not FailureType.BUILD:
        # a line that says only that something failed (a writer's "I hit the following
        # error:" over a paste), where the log kept a failed build's last lines (Nix's quote of
        # them, a fence of one builder's -L lines): that build failed, as they say
        kept = _kept_tail(shaped, raw)
        if kept is not None:
            return [kept]
    boxed = _nom_error_box(shaped, raw) if found is None else None
    if boxed is not None:
        return [boxed]
    for at, line in enumerate(shaped):
        if line.builder is None and (line.marked or _WRAPPER_ERROR.match(line.text)):
            # a build's own error line about its build directory, quoted under the wrapper's
            # verdict (devenv's "× Command `nix build` failed", colmena's "Failed to build
            # host - Last 20 lines of logs:"), says what failed where the verdict says only that
            # (the lines after it: one record may hold them all, one captured line)
            built = next((found for later in shaped[at + 1:]
                          if later.builder is None and _says_a_failure_at(later.text)
                          and (found := _builders_own(_unclassified(later.text, later.origin + 1),
                                                      later.text)).type is FailureType.BUILD),
                         None)
            if built is None and found is not None and said is not None \
                    and said[0] < line.origin:
                # the build's own line before the verdict (a CI step's, nh's, ending the log
                # after Nix's lines) says what failed just as well
                built = _builders_own(found, said[1])
                built = built if built.type is FailureType.BUILD else None
            if built is None and (found is None or said is None or said[0] >= line.origin):
                # a build's last lines as Nix quoted them, its report cut off above them, where
                # nothing before the wrapper's verdict (nh's, a CI step's) said what failed: that
                # build failed, what the verdict says only of itself
                built = _kept_tail(shaped, raw)
                if built is not None and _by_verdict(built) and built.log_line == line.origin + 1 \
                        and _builders_own(_unclassified(line.text, line.origin + 1),
                                          line.text).type is FailureType.BUILD:
                    built = None  # (the builder's verdict itself, read as its own line as ever)
            if built is None:
                # a builder's verdict anywhere in the log (before the wrapper's, a CI step's
                # "Process completed with exit code 1", nh's "Failed to build configuration")
                # says what failed, the wrapper's only that it did
                builders = _builders_verdict(shaped)
                built = builders if builders is not None and (
                    builders.log_line != line.origin + 1
                    or _builders_own(_unclassified(line.text, line.origin + 1),
                                     line.text).type is not FailureType.BUILD) else None
            told = line.text
            if _BARE_LEVEL.match(told):
                # color-eyre's report (nh, nix-installer): "Error:" alone, what failed in its
                # numbered causes after it (the normaliser took their numbers off), up to a blank
                causes = [later.text.strip() for later in itertools.takewhile(
                    lambda later: later.builder is None and bool(later.text.strip()),
                    shaped[at + 1:at + 1 + _MAX_CAUSES])]
                told = f"{told.strip()} {'; '.join(causes)}" if causes else told
            return [built or _builders_own(_unclassified(told, line.origin + 1), line.text)]
    last = next((line for line in reversed(shaped)
                 if line.text.strip() and not _WRAPPER_VERDICT.search(line.text)
                 and not _WRAPPER_VERDICT.search(raw[line.origin] if line.origin < len(raw)
                                                 else "")), None)
    if found is None and last is not None and last.builder is None \
            and _SHELL_NOT_FOUND.search(last.text):
        # a script's "command not found" is no failure of its own where a build's script
        # printed it (configure scripts print it and go on), but a capture that ends on it
        # ended there: the wrapper died of it
        return [_unclassified(last.text, last.origin + 1)]
    if found is None:
        # a script no build runs (an activation script in the store, a CI step's, `bash -c`)
        # that could not find a command died of it (exit 127) whatever lines follow: the
        # wrapper's own, a journal's (nix-darwin#1412 under any tool)
        died = next((line for line in reversed(shaped) if line.builder is None
                     and (m := _SHELL_NOT_FOUND.search(line.text)) is not None
                     and not (_BUILDS_SCRIPT.match(m["script"])
                              or _BUILD_DIR.search(m["script"]))), None)
        if died is not None:
            return [_unclassified(died.text, died.origin + 1)]
        # a wrapper's verdict on a Nix command it ran, where the copy kept nothing of that
        # command's own (nixos-rebuild-ng's CalledProcessError, "Command 'nix … build …'
        # returned non-zero exit status 1."): that the command failed is all the log says
        ran = next((line for line in shaped if line.builder is None
                    and _NIX_COMMAND_FAILED.match(line.text)), None)
        if ran is not None:
            # (where a builder's verdict is in the log, it says what failed: nixos-rebuild-ng's
            # CalledProcessError after a copy of the builder's output)
            return [_builders_verdict(shaped) or _unclassified(ran.text, ran.origin + 1)]
        kept = _kept_tail(shaped, raw)
        if kept is not None:
            return [kept]
        if last is not None and last.builder is None and _REFUSAL_CUT.match(last.text):
            # nixpkgs' check-meta refusal printed bare (ofborg's partial log), the copy ending
            # inside its path: the log's last line is the refusal's head, its reason cut off
            return [Diagnosis(FailureType.EVAL, Kind.ERROR, _one_line(
                f"{last.text.strip()} … (the log is cut off inside nixpkgs' refusal to evaluate "
                "it)"), log_line=last.origin + 1, log=last.text)]
    return [] if found is None or said is None else [
        _builders_own(found, said[1], _fenced(raw, said[0]), _fence_of_quotes(raw, said[0]))]


def _marked_before(shaped: Sequence[logshape.Line], origin: int) -> bool:
    """Whether a wrapper's own error line (devenv's, colmena's, a CI step's) stands in the log:
    its verdict is read with the lines around it (`_fallback`), not passed over."""
    return any(line.builder is None and (line.marked or _WRAPPER_ERROR.match(line.text))
               for line in shaped)


def _kept_tail(shaped: Sequence[logshape.Line], raw: Sequence[str]) -> Diagnosis | None:
    """A copy that kept only a builder's last lines as Nix quotes them under its report of a
    failed build ("       > …", Nix 2.4+'s own indentation), that report cut off above the
    excerpt: Nix quotes a builder's lines only for a build that failed, so a build failed;
    None where no such line is in the log."""
    kept = [line for line in shaped if line.builder is None and _quoted_by_nix(line, raw)]
    kind, type_, what, advice = DRVLESS["log-tail"]
    if not kept:
        fenced = _fenced_phases(raw)
        if fenced is None:
            printed = _fenced_builder_lines(shaped)
            return _builders_verdict(shaped) if printed is None else Diagnosis(
                type_, kind, what, hint=advice, log_line=printed[0].origin + 1,
                log=tail([line.text for line in printed]))
        return Diagnosis(type_, kind, what, hint=advice, log_line=fenced[0] + 1,
                         log=tail([clean(line) for line in fenced[1]]))
    return Diagnosis(type_, kind, what, hint=advice, log_line=kept[0].origin + 1,
                     log=tail([line.text for line in kept]))


# a line of nixpkgs stdenv's own about its phases (setup.sh: "Running phase: buildPhase" since
# 2022, the older "unpacking sources", "patching sources", "post-installation fixup"; not its
# one-word headers, "building", which a prompt's "> building" reads the same), which only a
# builder prints
_STDENV_PHASE = re.compile(r"^(?:Running phase: \w+Phase|unpacking sources|patching sources|"
                           r"post-installation fixup)\s*$|^unpacking source archive /")


def _fenced_phases(raw: Sequence[str]) -> tuple[int, list[str]] | None:
    """(first line, lines) of a markdown fence holding only lines behind a quote mark, two or
    more, one of them stdenv's line about its phases: Nix's quote of a builder's last lines that
    lost its indentation in the copy, its header cut off (no prompt-style "> command" fence
    holds a phase line); None where the log has no such fence."""
    fences = [at for at, line in enumerate(raw) if _FENCE_LINE.match(line)]
    for start, end in zip(fences[::2], fences[1::2], strict=False):
        held = [line for line in raw[start + 1:end] if line.strip()]
        if len(held) >= 2 and all(_QUOTE_MARKED.match(line) for line in held) and any(
                _STDENV_PHASE.match(_QUOTE_MARKED.sub("", line, count=1).strip())
                for line in held):
            return start + 1, held
    return None


# a markdown fence's line, backticks or tildes (a copy of a terminal's lines in an issue)
_ANY_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[\w+-]*\s*$")
# a writer's mark that lines were left out of a paste ("...", "…", "[...]")
_WRITERS_ELISION = re.compile(r"^\s*\[?(?:\.{3,}|…)\]?\s*$")
# the command that printed a build's lines so (its -L, --print-build-logs), a prompt before it
_PRINTING_COMMAND = re.compile(r"^\S*[$#>❯λ]?\s*\S.*\s(?:-L|--print-build-logs)(?:\s|$)")


def _fenced_builder_lines(shaped: Sequence[logshape.Line]) -> list[logshape.Line] | None:
    """The lines of a markdown fence (closed, or cut by the copy's end) holding only one
    builder's lines as `nix build -L` / `--print-build-logs` prints them ("name> …"; a
    writer's "..." between them): a writer's paste of a failed build's last lines, Nix's report
    after them left out or cut off (a paste is made of a failure; a build's own words are no
    report of Nix's, so nothing else in the log said what failed: `_fallback`); None where the
    log has no such fence. (Read on the normalised lines, a transport's prefixes off.)"""
    fences = [at for at, line in enumerate(shaped)
              if line.builder is None and _ANY_FENCE.match(line.text)]
    fences.append(len(shaped))  # (a fence the copy cut off runs to its end)
    for start, end in zip(fences[::2], fences[1::2], strict=False):
        held = [line for line in shaped[start + 1:end]
                if line.text.strip() or line.builder is not None]
        printed = [line for line in held if line.builder is not None]
        names = {line.builder for line in printed}
        if len(names) != 1:
            continue
        name = f"{names.pop()}>"
        if end == len(shaped) and held and held[-1].builder is None \
                and name.startswith(held[-1].text.strip()):
            held = held[:-1]  # the copy cut the last line inside the builder's name
        first = held.index(printed[0])
        if all(_PRINTING_COMMAND.match(line.text) or _WRITERS_ELISION.match(line.text)
               for line in held[:first]) and all(
                line.builder is not None or _WRITERS_ELISION.match(line.text)
                for line in held[first:]):
            return printed
    return None


# A builder's own verdict that its build failed, as the tools a build runs print it (README's
# "A builder's own verdict"): each a whole line once the copy's wrapping is off it (a markdown
# quote, Nix's "> ", an indentation, a `nix build -L` name), never a word in a sentence; each
# says a step failed, not that errors exist ("-Werror", "0 errors", "checking for strerror...
# yes", a test named test_error, a summary counting no failure say nothing of the kind).
# (name, pattern): the names are what `_builders_verdict` reports and its tests cover.
BUILDERS_VERDICTS: tuple[tuple[str, str], ...] = (
    # make: a recipe failed (not one make was told to ignore, "(ignored)"), or no rule for it
    ("make", r"(?:\S*/)?g?make(?:\[\d{1,5}\])?: \*\*\* (?:\[[^\n]{1,1000}\] (?:Error \d{1,3}|"
             r"Segmentation fault|Killed|Terminated)(?!\d| \(ignored\))|[^\n]{0,1000}\bStop\.)|"
             r"\*\*\* Error code [1-9]|"  # (BSD make's)
             # a makefile's own $(error …): "make-linux.mk:162: *** FATAL: … .  Stop."
             r"[^\s:]{1,1000}:\d{1,7}: \*\*\* [^\n]{1,1000}\bStop\.\s*$"),
    # a compiler's diagnostic at a source position: gcc, clang, javac, swiftc, zig, GHC (also its
    # span "(12,3)-(14,5)" and "[GHC-12345]"), tsc/csc/nim's "(12,3)", a code after "error"
    # (TS2304, CS0103, dotnet's NU1101 naming a project), go's; never a .nix file's (Nix names
    # positions after its message)
    ("compiler", r"[^\s:()]{1,1000}(?<!\.nix)(?::\d{1,7}(?::\d{1,5})?(?:-\d{1,5})?|"
                 r":\(\d{1,7},\d{1,5}\)-\(\d{1,7},\d{1,5}\)|\(\d{1,7}, ?\d{1,5}\))"
                 r"(?::| -)? (?:fatal )?(?:error|Error)(?::| [A-Z]{2,6}\d{2,6}:| \[GHC-\d{1,6}\])"
                 r"(?:\s|$)|\S{1,1000} : error [A-Z]{2,6}\d{2,6}: |"
                 # go's (no "error" word: "./main.go:12:3: undefined: foo", always a column)
                 r"[\w./-]{1,1000}\.go:\d{1,7}:\d{1,5}: \S"),
    # kotlinc ("e: file:///build/A.kt:12:3 Unresolved reference")
    ("kotlinc", r"e: (?:file://)?/\S{1,1000}:\d{1,7}:\d{1,5} \S"),
    # JavaScript's compilers and bundlers: tsc's count, esbuild's, vite's, webpack's, Next's and
    # create-react-app's
    ("javascript", r"Found [1-9]\d{0,5} errors?(?: in \d{1,6} files?)?\.|✘ \[ERROR\] \S|"
                   r"Build failed with [1-9]\d{0,5} errors?|error during build:|"
                   r"webpack(?: [\d.]{1,20})? compiled with [1-9]\d{0,5} errors?|"
                   r"Failed to compile\."),
    # a compiler driver or linker about itself: "gcc: fatal error: no input files",
    # "collect2: error: ld returned 1 exit status", "clang: error: linker command failed",
    # lld's "ld.lld: error: undefined symbol"
    ("driver", r"(?:\S*/)?(?:[\w.-]{0,60}-)?(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+|cpp|ld|"
               r"emcc|em\+\+|ld\.\w{2,5}|lld|ld64\.lld|collect2|rustc|ghc|javac|swiftc)(?:-\d{1,3}(?:\.\d{1,3})*)?"
               r": (?:fatal )?error: \S"),
    # the linker's unresolved symbols and missing libraries
    ("ld", r"\S[^\n]{0,1000}: undefined reference to [`'‘]|"
           r"(?:\S*/)?ld(?:\.\w{2,5})?: cannot find -l\S|"
           r"ld: symbol\(s\) not found for architecture"),
    # rustc and cargo
    ("rustc", r"error\[E\d{4}\]: \S|error: aborting due to (?:\d{1,5} )?previous errors?|"
              r"error: linker [`'][^`'\n]{1,200}[`'] not found"),
    ("cargo", r"error: (?:could not compile|failed to run custom build command for|"
              r"failed to compile|linking with|failed to select a version for|failed to get|"
              r"failed to load source for|failed to download|"
              r"failed to load manifest for(?: workspace member)?|"
              r"no matching (?:package named|version)) [`'\d=]|"
              r"error: test failed, to rerun pass |test result: FAILED\. "),
    # build-system generators and runners
    ("cmake", r"CMake Error(?: at [^\n]{1,1000})?:|-- Configuring incomplete, errors occurred!|"
              r"CMake Generate step failed\."),
    ("scons", r"scons: (?:building terminated because of errors\.|\*\*\* \[[^\n]{1,1000}\] \S)"),
    ("configure", r"configure: error: \S|Project ERROR: \S"),  # (autoconf's, qmake's)
    ("bazel", r"ERROR: (?:/\S{1,1000}|\S{0,1000}BUILD(?:\.bazel)?):\d{1,7}:\d{1,5}: \S"),
    ("zig", r"error: the following (?:build )?command (?:failed|exited with error code)"),
    # meson's (also at a position: "meson.build:95:17: ERROR: …"; not any "ERROR:": git's
    # remote, Jenkins and GitLab's runner print theirs so)
    ("meson", r"(?:[^\s:]{1,1000}:\d{1,7}:\d{1,5}: )ERROR: \S|"
              r"ERROR: (?:Dependency [\"'][^\"'\n]{1,200}[\"'] not found|"
              r"Program [\"'][^\"'\n]{1,200}[\"'] not found|Unknown options?:|"
              r"Problem encountered:|Assert failed:|Could not (?:detect|execute)|"
              r"[\w+# ]{1,40} compiler for the (?:host|build) machine)"),
    # Python's packaging: pip's, pypa build's (its "ERROR " a level the normaliser may take off)
    ("pip", r"ERROR: (?:Could not find a version that satisfies|Failed building wheel|"
            r"No matching distribution found for|Could not build wheels for)|"
            r"error: (?:metadata-generation-failed|invalid command [`']|Setup script exited)|"
            # (not pip's "× … did not run successfully.": devenv's and miette's mark)

            r"(?:ERROR )?Backend subprocess exited when trying to invoke \w"),
    # nixpkgs' setup hooks: cargoSetupHook's and the npm/cargo fetchers' (a hash "is out of
    # date"), noBrokenSymlinks', substitute's
    ("hook", r"ERROR: (?:Missing Cargo\.lock|[\w ]{1,60} is out of date|"
             r"Cargo\.lock is not the same|noBrokenSymlinks: )|"
             r"substitute\w{0,20}\(\)(?: in derivation \S{1,300})?: ERROR: "),
    # other languages' package managers: R's, RubyGems' and Bundler's, go's
    ("packages", r"ERROR: (?:dependenc(?:y|ies) [^\n]{1,500} (?:is|are) not available for package|"
                 r"compilation failed for package|lazy loading failed for package|"
                 r"Failed to build gem native extension\.)|"
                 r"An error occurred while installing [^\n]{1,300}, and Bundler cannot continue\.|"
                 r"go: (?:inconsistent vendoring|updates to go\.mod needed|cannot find main module|"
                 r"\S{1,300}: missing go\.sum entry|\S{1,300}@\S{1,300}: (?:Get|reading|"
                 r"verifying|unrecognized import path))"),
    ("ninja", r"FAILED: \S|ninja: build stopped: subcommand failed\."),
    ("gradle", r"BUILD FAILED\b|Build FAILED\.|FAILURE: Build failed with an exception\.|"
               r"[1-9]\d{0,5} Error\(s\)|"  # (MSBuild's summary)
               r"\* What went wrong:|"
               r"(?:\[(?:ERROR|INFO)\] )?BUILD FAILURE|(?:\[ERROR\] )?Failed to execute goal \S|"
               r"\[error\] \([^)\n]{1,200}\) \S"),
    ("cabal", r"(?:Error: )?cabal(?:-install)?: Failed to build \S|Error: \[Cabal-\d{1,6}\]|"
              r"Setup: Encountered missing (?:or private )?(?:dependencies|packages)"),
    # test runners' failures: pytest, unittest, go test, ctest, jest, automake's and meson's
    # harnesses, hspec, tasty, prove (a count of failures is never 0)
    ("pytest", r"=+ (?:[^=\n]{0,200}\b)?[1-9]\d{0,5} (?:failed|errors?)\b[^=\n]{0,200} in "
               r"[\d.]+s(?: \([^)\n]{0,40}\))? =+|(?:FAILED|ERROR) \S{1,1000}::\S|"
               r"(?:!+ )?Interrupted: [1-9]\d{0,5} errors? during collection|ERROR collecting \S"),
    ("unittest", r"FAILED \((?:failures|errors)=[1-9]"),
    ("go", r"--- FAIL: \S|FAIL(?:\s+\S{1,1000}\s+[\d.]+s)?$"),
    ("ctest", r"The following tests FAILED:|\d{1,3}% tests passed, [1-9]\d{0,5} tests? failed out "
              r"of \d"),
    ("jest", r"Test(?:s| Suites):\s+[1-9]\d{0,5} failed"),
    ("harness", r"(?:# ?)?FAIL:\s+[1-9]\d{0,5}$|FAIL: \S{1,1000}|Fail:\s+[1-9]\d{0,5}|"
                # meson test's line of a test that failed; prove's of a test file, its summary
                r"\d{1,6}/\d{1,6} [^\n]{1,500}\s(?:FAIL|TIMEOUT)\s+[\d.]+s|"
                r"\S{1,500}\s+\(Wstat: \d{1,6} Tests: \d{1,6} Failed: [1-9]|"
                r"Failed [1-9]\d{0,5}/\d{1,6} test programs|"
                r"\d{1,6} examples?, [1-9]\d{0,5} failures?|[1-9]\d{0,5} out of \d{1,6} tests "
                r"failed|Result: FAIL$"),
    # package managers: npm (before 9 "npm ERR!", after "npm error"), pnpm, yarn 1, pip
    ("npm", r"npm (?:ERR!|error) \S|\s?ERR_PNPM_\w+|error Command failed with exit code \d|"
            r"error (?:Couldn't find (?:any versions|package)|An unexpected error occurred)|"
            r"error: subprocess-exited-with-error"),
    # distutils' failed compiler command
    ("distutils", r"error: command '[^'\n]{1,1000}' failed with exit (?:status|code) \d"),
    # a program's uncaught exception: Java's, Elixir's, node's missing module (Python's is a
    # traceback's last line, `_verdict_in`); a program's last words that its child failed (go
    # run's): any program's, so a builder's only in a builder's output (_IN_A_BUILDER)
    ("exception", r"Error: Cannot find module [\"']|exit status [1-9]\d{0,2}$|"
                  r"thread '[^'\n]{1,200}' panicked at \S|"  # (Rust's: a build script's, a test's)
                  r"Exception in thread \"[^\"\n]{1,200}\" [\w.$]{1,300}(?:Exception|Error)\b|"
                  r"\*\* \((?:\w+\.)*\w*(?:Error|Exception)\) \S"),
    # stdenv's own phases failing: a source it cannot unpack, a patch that does not apply,
    # autoPatchelfHook's unsatisfied dependencies
    ("stdenv", r"do not know how to unpack source archive \S|Hunk #\d{1,5} FAILED at \d|"
               # stdenv's setup, a setup hook, the compiler wrapper or the bootstrap shell
               # reporting the child a signal killed (the builder's; an interactive shell's
               # report is Nix dying, no build runs those)
               r"/nix/store/\S{1,300}(?:-stdenv-[^/\s]{1,100}/setup|/nix-support/setup-hook|"
               r"-(?:gcc|clang)-wrapper-[^/\s]{1,100}/bin/\S{1,100}|-bootstrap-tools/bin/sh): line "
               r"\d{1,7}: +\d{1,9} (?:Killed|Aborted|Bus error|Illegal instruction|"
               r"Segmentation fault)|"
               r"\d{1,5} out of \d{1,5} hunks? FAILED|"
               r"auto-patchelf: [1-9]\d{0,5} dependenc(?:y|ies) could not be satisfied|"
               r"(?:error: )?auto-patchelf could not satisfy dependency "),
)
# a command of Nix's as a writer runs it (a prompt, sudo, before it or not): a make whose
# verdict follows it in the block ran that command (`make switch` over nixos-rebuild), no build
_RUNS_NIX = re.compile(r"^[\s>]*(?:\S{0,60}[$#❯λ] ?)?(?:sudo )?(?:nixos-rebuild(?:-ng)?|nix|"
                       r"nix-build|nix-shell|nix-env|darwin-rebuild|home-manager|nh|colmena|"
                       r"deploy|nixos-install|nixos-anywhere|nixops|morph) \S")
# the verdicts any program prints as it dies (a user's tool relaying Nix's error in its
# traceback, heldout-87 nix-heuristic-gc-6): a builder's only where the block is a builder's
# output by its wrapping (`nix build -L`'s name, Nix's quote) or its words (the sandbox's
# build directory, stdenv's phases)
_IN_A_BUILDER = frozenset(("exception", "python"))
_BUILDERS_WORDS = re.compile(r"/build/|/nix-build-|^(?:Running phase: |unpacking sources|"
                             r"patching sources|configuring|building|installing)")
# (each a line's start: what follows it is the verdict's own words)
_VERDICT = re.compile("|".join(f"(?P<v{at}>{pattern})"
                               for at, (_, pattern) in enumerate(BUILDERS_VERDICTS)))
# what a copy wrapped a builder's line in: markdown's or Nix's quote marks, an indentation, a
# `nix build -L` name the normaliser did not take off (inside a quote)
_VERDICT_WRAPPING = re.compile(r"^[\s>]*(?:[\w.+@-]{1,200}> ?(?=\S))?\s*")
# a Python traceback: its header, and the exception it ends in (at the header's indentation)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\s*$")
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w{0,100}\.){0,10}[A-Za-z_]\w{0,100}(?:Error|Exception|"
                             r"Exit|Interrupt|Failure|Failed|Fault|Timeout|NotFound)(?::.*)?$")
# OCaml's position line, and the error it heads (dune's, ocamlfind's: "File "x.ml", line 3,
# characters 4-5:" over the source line, then "Error: …")
_OCAML_POSITION = re.compile(r'File "[^"\n]{1,1000}", lines? \d{1,7}(?:-\d{1,7})?, '
                             r'characters \d{1,5}-\d{1,5}:\s*$')
_OCAML_ERROR = re.compile(r"Error(?: \([^)\n]{1,200}\))?: \S")
# Nix 2.4+'s progress bar showing a build's last line ("[1/0/3 built] building NAME (PHASE):
# LINE"): a copy that ends on it (Nix's report cut off, heldout-184 bun2nix-67) kept that much
_BAR_BUILDING = re.compile(r"\s*\[[^\]\n]{1,200}\] building (?P<name>\S{1,300}) "
                           r"\(\w{1,60}\): (?P<said>[^\n]{1,4096})")
# stdenv's lines about its phases, as a builder prints them (2022's "Running phase: …" and the
# older headers)
_PHASE_LINE = re.compile(r"Running phase: \w+|(?:unpacking sources|patching sources|"
                         r"configuring|building|installing|post-installation fixup)\s*$")
# a builder's last words that say a step failed, where they end what it printed after stdenv's
# phases: a tool's error level first (after its name: "mv: ", "cp: error: "), or a system call's
# failure, a shell's missing command, a program's failed child at its end
_LAST_WORDS = re.compile(r"(?:[\w.+/-]{1,100}: ){0,3}(?:fatal error|error|Error|ERROR|fatal|"
                         r"FATAL|Fatal)(?:\[\w{1,20}\])?:|[^\n]{0,2000}(?:: No such file or "
                         r"directory|: command not found|: Permission denied|: File exists|"
                         r": Read-only file system|: Operation not permitted|: No space left on "
                         r"device|: Not a directory|: Is a directory|failed with exit "
                         r"(?:code|status) \d{1,3}\.?)\s*$")
# a builder that went on after the line (a later phase of stdenv's, a summary of tests that
# all passed): that step did not fail its build
_WENT_ON = re.compile(r"^(?:Running phase: \w+|post-installation fixup|shrinking RPATHs|"
                      r"stripping \(with command|patching script interpreter paths|"
                      r"checking for references to /build/|All \d+ tests? passed|"
                      r"100% tests passed|test result: ok\.|BUILD SUCCESSFUL|OK(?: \(|$)|"
                      r"=+ (?![^=\n]*\b(?:failed|errors?)\b)[^=\n]*\bpassed\b[^=\n]* in [\d.]+s)")
# how many lines a builder prints after the exception its traceback ends in (pytest's short
# summary, a runner's last words), at most, for that exception to be what failed it
_AFTER_EXCEPTION = 3
# a writer presenting what follows as an example, not as what failed: in those words, or as
# what "you" would see, what a build would print (a tutorial's second person and conditional;
# a report says what "I" got, what it printed: not "such as", "an example build log")
_EXAMPLE_LEAD = re.compile(r"(?i)\b(?:for example|for instance|e\.g\.|"
                           r"you(?:'ll| will| might| may| would| should| could| can) (?:see|get)\b|"
                           r"(?:would|will|might|may|could) (?:fail|print|output|show|produce|"
                           r"complain|look)\b)")


def _builders_verdict(shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """`_verdict_block`'s failure."""
    found = _verdict_block(shaped)
    return None if found is None else found[0]


def _verdict_block(shaped: Sequence[logshape.Line]) -> tuple[Diagnosis, int, int] | None:
    """(failure, first line, end) of the first block of a builder's output in a log that holds
    a builder's own verdict that its build failed (`BUILDERS_VERDICTS`, or a Python traceback's
    exception): a build failed, its report of Nix's left out or cut off. A block is a markdown
    fence (closed, or cut by the copy's end) or a run of lines without a blank one (`-L` lines
    count as lines however empty): fenced, quoted, indented, `-L`-prefixed or bare. Not where
    the same builder goes on to a later phase of stdenv's after it, nor in a block a writer's
    line presents as an example. Read only where nothing of Nix's said what failed
    (`_kept_tail`, `_fallback`, `_parse_condensed`)."""
    blocks: list[tuple[int, int, bool]] = []  # (first, end, whether a fence)
    start: int | None = None
    fenced = False
    for at, line in enumerate(shaped):
        if line.builder is None and _ANY_FENCE.match(line.text):
            if start is not None:
                blocks.append((start, at, fenced))
            start, fenced = (at + 1 if not fenced else None), not fenced
        elif fenced:
            continue
        elif line.builder is None and not line.text.strip():
            if start is not None:
                blocks.append((start, at, False))
            start = None
        elif start is None:
            start = at
    if start is not None:
        blocks.append((start, len(shaped), fenced))
    for first, end, fence in blocks:
        # (a fence holding only lines behind the quote mark is Nix's quote of a builder's last
        # lines that lost its indentation, its header cut off: those are a builder's lines, as
        # a stdenv phase line says they are, heldout-390 llama-cpp-pr-380's one line)
        quote = fence and all(_QUOTE_MARKED.match(line.text)
                              for line in shaped[first:end] if line.text.strip())
        found = _verdict_in(shaped, first, end, quote)
        if found is None or _presented_as_example(shaped, first):
            continue
        at, name = found
        verdict = shaped[at]
        kind, type_, _, advice = DRVLESS["log-tail"]
        bar = _BAR_BUILDING.match(verdict.text) if verdict.builder is None else None
        said = bar["said"] if bar is not None \
            else _VERDICT_WRAPPING.sub("", verdict.text, count=1)
        return Diagnosis(type_, kind, _one_line(
            f"{_BY_VERDICT}, {name}'s verdict: {said.strip()})"),
            drv=_named_builder(shaped, verdict.builder), hint=advice,
            log_line=verdict.origin + 1,
            log=tail([line.text for line in shaped[first:end]])), first, end
    return None


# how a failure `_builders_verdict` read begins its message
_BY_VERDICT = "a builder failed (the log holds only its own output"


def _by_verdict(found: Diagnosis) -> bool:
    """Whether a failure is `_builders_verdict`'s reading (what a recap or Hydra's page of the
    log names says more than)."""
    return found.kind is Kind.BUILDER and found.message.startswith(_BY_VERDICT)


def _verdict_words(found: Diagnosis) -> str:
    """The builder's own line a `_builders_verdict` reading quotes in its message."""
    return found.message.split("verdict: ", 1)[-1].removesuffix(")")


def _within(log_line: int | None, shaped: Sequence[logshape.Line],
            block: tuple[Diagnosis, int, int]) -> bool:
    """Whether the line a failure was read at (1-based) is a line of a `_verdict_block` not
    headed as Nix's error lines are ("error: …": a Makefile running Nix prints make's verdict
    under Nix's own error)."""
    return log_line is not None and any(
        line.origin == log_line - 1 and not _ERROR_LINE.match(line.text)
        for line in shaped[block[1]:block[2]])


def _verdict_at(log_line: int | None, shaped: Sequence[logshape.Line]) -> bool:
    """Whether the line a failure was read at (1-based) is a builder's verdict of the table."""
    return log_line is not None and any(
        line.origin == log_line - 1
        and _VERDICT.match(_VERDICT_WRAPPING.sub("", line.text, count=1).rstrip()) is not None
        for line in shaped)


def _verdict_in(shaped: Sequence[logshape.Line], first: int, end: int,
                quote: bool = False) -> tuple[int, str] | None:
    """(index, table name) of the first builder's verdict in shaped[first:end] that its builder
    did not go on after (a later phase of stdenv's, a summary of tests that passed); a Python
    traceback's exception only where its builder printed at most a few lines after it (a test
    suite that passes prints the tracebacks it expects, and goes on), OCaml's "Error:" only after
    its position line; else a builder's last words that say a step failed, after stdenv's phase
    line or in a fence of Nix's quote (quote: the block is a fence holding only lines behind the
    quote mark). None where there is none.
    (Linear: what each builder printed last is counted once, before.)"""
    went_on: dict[str | None, int] = {}  # each builder's last line that shows it went on
    printed: dict[str | None, int] = defaultdict(int)  # and how many lines it printed
    runs_nix = -1  # the last line of the block's own (no -L line) that runs a command of Nix's
    phased: set[str | None] = set()  # the builders that printed a line of stdenv's phases
    last: dict[str | None, int] = {}  # and each builder's last line
    shown: dict[int, str] = {}  # a builder's line Nix's progress bar shows, at the bar's line
    for at in range(first, end):
        line = shaped[at]
        printed[line.builder] += bool(line.text.strip())
        bar = _BAR_BUILDING.match(line.text) if line.builder is None else None
        if bar is not None:
            # (the bar's "building NAME (PHASE): …": that build's last line, in that phase)
            shown[at] = bar["said"]
            phased.add(f"bar {bar['name']}")
            last[f"bar {bar['name']}"] = at
        words = _VERDICT_WRAPPING.sub("", line.text, count=1)
        if _WENT_ON.match(words):
            went_on[line.builder] = at
        if _PHASE_LINE.match(words):
            phased.add(line.builder)
        if line.text.strip():
            last[line.builder] = at
        if line.builder is None and _RUNS_NIX.match(line.text):
            runs_nix = at
    traceback: tuple[str | None, int] | None = None  # (builder, indentation) of a traceback
    positioned: set[str | None] = set()  # the builders that printed OCaml's position line
    builders: bool | None = None  # whether the block's words are a builder's
    for at in range(first, end):
        line = shaped[at]
        printed[line.builder] -= bool(line.text.strip())  # (now: how many after this one)
        words = shown.get(at) or _VERDICT_WRAPPING.sub("", line.text, count=1)
        m = _VERDICT.match(words.rstrip())
        name = None if m is None or m.lastgroup is None \
            else BUILDERS_VERDICTS[int(m.lastgroup[1:])][0]
        unwrapped = line.text.lstrip(" \t>")
        indent = len(unwrapped) - len(unwrapped.lstrip())
        if _TRACEBACK.match(words):
            traceback = (line.builder, indent)
        elif _OCAML_POSITION.match(words):
            positioned.add(line.builder)
        elif name is None and line.builder in positioned and indent == 0 \
                and _OCAML_ERROR.match(words):
            name = "ocaml"
        elif name is None and traceback is not None and traceback[0] == line.builder \
                and indent <= traceback[1] and _EXCEPTION_LINE.match(words) \
                and printed[line.builder] <= _AFTER_EXCEPTION:
            name = "python"
        if name in _IN_A_BUILDER and line.builder is None \
                and not _NIX_TAIL_QUOTE.match(line.text):
            if builders is None:  # (looked for once a block, where it is needed)
                builders = any(
                    _BUILDERS_WORDS.search(_VERDICT_WRAPPING.sub("", other.text, count=1))
                    for other in shaped[first:end])
            name = name if builders else None
        if name == "make" and line.builder is None and runs_nix > -1:
            name = None  # (a Makefile running Nix: `make switch`'s verdict on nixos-rebuild)
        if name is not None and went_on.get(line.builder, -1) < at:
            return at, name
    # stdenv's phases, then the builder's last words saying a step failed ("mv: cannot stat
    # 'main': No such file or directory"), nothing after them: the copy's end is the build's
    return next(((at, "stdenv") for builder, at in sorted(last.items(), key=lambda kv: kv[1])
                 if (builder in phased or quote and builder is None)
                 and went_on.get(builder, -1) < at
                 and _LAST_WORDS.match(shown.get(at)
                                       or _VERDICT_WRAPPING.sub("", shaped[at].text, count=1))),
                None)


def _presented_as_example(shaped: Sequence[logshape.Line], first: int) -> bool:
    """Whether the writer's line right above a block (past blank lines and its fence) presents
    it as an example ("For example, building it prints:")."""
    for line in reversed(shaped[:first]):
        if line.builder is None and line.text.strip() and not _ANY_FENCE.match(line.text):
            return _EXAMPLE_LEAD.search(line.text) is not None
    return False


def _named_builder(shaped: Sequence[logshape.Line], builder: str | None) -> str | None:
    """The derivation a `nix build -L` name stands for: the one derivation of that name the
    log names (its plan, its "building '…'" line); None where it names none or several. A
    builder's lines without a name: the one derivation the log started building, where it
    started one only (nix-build prints a builder's output so)."""
    if builder is None:
        return _the_one_started(shaped)
    return _one_drv(shaped, name=builder, pname=True)


# a builder's line as Nix 2.4+ quotes it after "last N log lines:" (seven spaces, "> "), not a
# markdown quote's ">" at a line's start: the builder's own words wherever the copy left the
# block's header out (nixpkgs#297613, heldout-312: meson's "> meson.build:95:17: ERROR:
# Dependency … not found" under no header); a markdown quote ("> " at the margin, or indented as
# a list's) is a writer's
_NIX_TAIL_QUOTE = re.compile(r"^ {7}" + logshape.TAIL_MARK)
# ... as a captured line holds it, also behind a CI system's or a tool's prefix (a timestamp and
# its blank, nom's "┃ "): seven blanks exactly, the mark, then the builder's words
_NIX_TAIL_CAPTURED = re.compile(r"(?:^|\S ) {7}" + logshape.TAIL_MARK)


def _quoted_by_nix(line: logshape.Line, raw: Sequence[str]) -> bool:
    """Whether a normalised line is a builder's line as Nix quotes it ("       > …"): in its
    text, or in the captured line it came from where normalising took the quote mark off
    (every line of the text had it, read as a whole log's markdown quote; a markdown quote
    stands at most three blanks in, Nix's seven)."""
    if _NIX_TAIL_QUOTE.match(line.text):
        return True
    if line.origin >= len(raw) or not line.text.strip():
        return False
    captured = raw[line.origin]
    m = _NIX_TAIL_CAPTURED.search(captured) if ">" in captured else None
    return m is not None and clean(captured[m.end():]).strip() == line.text.strip()


# a line a hard wrap broke inside a store path ("… builder for '/nix/store/<hash>-" over
# "name.drv' failed with exit code 1 …"): the builder's failure it reads names no derivation
_ENDS_IN_A_PATH = re.compile(r"/nix/store/[^'’`\s]*$")


def _read_on_wrapped(said: tuple[int, str], shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """Nix's words a hard wrap broke inside a writer's line ("… I get builder for" / "'….drv'
    failed with exit code 1 and …"): the line that said something failed, read on with the next
    (no builder's line) by the general reader; None where that reads nothing finer."""
    at = _said_at(*said, shaped)
    following = shaped[at + 1] if at + 1 < len(shaped) else None
    if following is None or following.builder is not None or not following.text.strip():
        return None
    # (a wrap inside a store path breaks no word: its two parts are one again without a blank)
    inside = _ENDS_IN_A_PATH.search(said[1]) is not None
    joined = f"{said[1].rstrip()}{'' if inside else ' '}{following.text.strip()}"
    read = _read_nix_words(joined)
    if inside and (read is None or read.drv is None):
        return None  # (a builder's failure whose derivation the joined path does not name)
    return None if read is None else replace(read, log_line=said[0] + 1,
                                             log=tail([said[1], following.text]))


# home-manager's NixOS and nix-darwin modules put "<user> profile: " before each assertion of a
# user's configuration (nixos/common.nix), which the module system lists as "- <message>" under
# "Failed assertions:"; a copy may keep only the list (a fence opening on its first bullet)
_HM_ASSERTION = re.compile(r"^ {0,8}- [^\s:]{1,64} profile: (?=\S)")
# any assertion's bullet where Nix 2.4+ prints it: indented under "error: " as every line of its
# message is (7 columns; a markdown or YAML list in a paste stands at 0-4, a builder's line
# after Nix's "> ")
_INDENTED_ASSERTION = re.compile(r"^ {7}- (?=\S)")
# and the header the module system prints them under (nixos/modules/system/activation/top-level.nix,
# "Failed assertions:" alone on its line, then "- …"), where a copy kept it without "error:"
_ASSERTIONS_HEADER = re.compile(r"^[\s>*_`]{0,20}Failed assertions:[*_`]*\s*$")
# a markdown fence alone on its line (with a language, an opening one)
_FENCE_LINE = re.compile(r"^ {0,3}`{3,}(?P<language>[\w+-]*)\s*$")


def _assertions_without_header(shaped: Sequence[logshape.Line],
                               raw: Sequence[str]) -> Diagnosis | None:
    """The module system's failed assertions, where a copy kept only their list: its first
    bullet opens what was pasted (the log's first line, or the first in a fence), as the list
    Nix printed under its header does, and is a home-manager user's ("<user> profile: …") or
    stands at the indentation of Nix's message (there also after a fence that may be a closing
    one: a paste between fences of tildes holding its own fences reads as nested); a bullet of
    prose in a markdown list (after a paragraph, a heading, another item) is none. None where
    no such list opens."""
    opened = fenced = True  # (the log's start opens what was pasted; of bare fences, every
    fences = 0              # other one, and one with its language, also inside another's block)
    for at, line in enumerate(shaped):
        if at > 0:
            fence = _FENCE_LINE.match(shaped[at - 1].text)
            fences += fence is not None
            fenced = fence is not None
            opened = fenced and (fences % 2 == 1 or bool(fence and fence["language"]))
        if line.builder is None and _ASSERTIONS_HEADER.match(line.text):
            listed = [later.text.strip() for later in itertools.takewhile(
                lambda later: later.text.strip() and not _FENCE_LINE.match(later.text),
                shaped[at + 1:at + 21])]
            if listed and listed[0].startswith("- "):
                return Diagnosis(FailureType.EVAL, Kind.ERROR, _one_line(
                    f"Failed assertions: {' '.join(listed)}"),
                    log_line=line.origin + 1, log=tail(["Failed assertions:", *listed]))
        if not fenced or line.builder is not None:
            continue
        # (a list of bullets alone: the normaliser may have learnt "- <user> profile: " as a
        # prefix of its lines, which the captured line still shows)
        captured = raw[line.origin] if line.origin < len(raw) else ""
        if _INDENTED_ASSERTION.match(line.text) or opened and (_HM_ASSERTION.match(line.text) or (
                captured.endswith(line.text) and _HM_ASSERTION.match(
                    captured[:len(captured) - len(line.text)] + "x"))):
            bullets = [line.text.strip()]
            for later in shaped[at + 1:at + 20]:
                if not later.text.strip() or _FENCE_LINE.match(later.text):
                    break
                bullets.append(later.text.strip())
            return Diagnosis(FailureType.EVAL, Kind.ERROR, _one_line(
                f"Failed assertions (the log keeps only their list): {' '.join(bullets)}"),
                log_line=line.origin + 1, log=tail(bullets))
    return None


# libstdc++'s report of an exception nothing caught, "terminate called after throwing an
# instance of 'nix::Error'" and then "  what():  error: …": a program linking Nix's libraries
# (the daemon, nix-serve, a tool) died of an error of Nix's own
_UNCAUGHT_NIX = re.compile(r"terminate called after throwing an instance of '?nix::\w")
_WHAT = re.compile(r"\bwhat\(\):\s+(?:error:\s+)?(?P<message>\S.*)")


def _uncaught_nix(found: Diagnosis, shaped: Sequence[logshape.Line], at: int) -> Diagnosis:
    """found, where nothing finer fits the `what():` line (shaped[at]) of an uncaught
    exception of Nix's: Nix's own failure (`other`/`nix`), its message Nix's error after it.
    (By the report's words wherever they stand in their lines: a prefix normalising kept on
    one of them changes nothing.)"""
    what = _WHAT.search(shaped[at].text)
    if found.type is not FailureType.OTHER or found.kind not in (Kind.ERROR, Kind.NIX) \
            or what is None:
        return found
    before = next((line for line in reversed(shaped[max(0, at - 3):at]) if line.text.strip()),
                  None)
    if before is None or not _UNCAUGHT_NIX.search(before.text):
        return found
    return replace(found, kind=Kind.NIX, hint=HINTS[Kind.NIX],
                   message=_one_line(what["message"]))


# Nix's install scripts (scripts/install-multi-user.sh, install-darwin-multi-user.sh) give up
# under a header of their own, "---- oh no! -----…", and then say why; where that is only that
# something went wrong ("Oh no, something went wrong. If you can take all the output…", 2.3's
# "Jeeze, …"), the failed step's own output, the last line before the header, says what
_INSTALLER_GAVE_UP = re.compile(r"^-{4} oh no! -{4,}\s*$")
_INSTALLER_HEADER = re.compile(r"^-{4} .{1,80} -{4,}\s*$")
_SOMETHING_WENT_WRONG = re.compile(r"^(?:Oh no|Jeeze), something went wrong\b")
_INSTALLER_REASON_LINES = 8


def _installer_failure(shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """The failure Nix's install script gave up on, None where it did not: its own reason
    after its "oh no!" header, else the last line the failed step printed before it."""
    at = next((i for i, line in enumerate(shaped) if line.builder is None
               and _INSTALLER_GAVE_UP.match(line.text.strip())), None)
    if at is None:
        return None
    start = next((i for i in range(at + 1, len(shaped)) if shaped[i].text.strip()), None)
    after = shaped[start] if start is not None else None
    if start is not None and after is not None \
            and not _SOMETHING_WENT_WRONG.match(after.text.strip()):
        # (the script's reason is a paragraph it wrapped by hand, up to the blank line it
        # prints after it: "It seems the build group nixbld already exists, but" / "with the
        # UID 957. …")
        reason = [after.text.strip()]
        for line in shaped[start + 1:start + _INSTALLER_REASON_LINES]:
            if not line.text.strip() or line.builder is not None:
                break
            reason.append(line.text.strip())
        return _line_failure(" ".join(reason), after.origin)
    before = next((line for line in reversed(shaped[:at]) if line.text.strip()
                   and not _INSTALLER_HEADER.match(line.text.strip())), None)
    chosen = before or after or shaped[at]
    return _line_failure(chosen.text.strip(), chosen.origin)


# Hydra's log page (hydra's src/root/log.tt) before the derivation's own build log: "Below is
# the build log (raw) of derivation /nix/store/….drv.", "Below are the last lines of …", older
# Hydra's "This is the build log of derivation …"
_HYDRA_LOG_INTRO = re.compile(rf"(?:Below (?:is|are the last lines of) the build log(?: \(raw\))?|"
                              rf"This is the build log) of derivation {_DRV}")


def _hydras_build(found: list[Diagnosis], shaped: Sequence[logshape.Line]) -> list[Diagnosis]:
    """Failures nothing finer fits read from the lines after Hydra's intro to a derivation's
    build log: those lines are that build's own output (Hydra shows no line of Nix's), so an
    error line among them says that build failed (`build`, the derivation Hydra names). The
    page's line only: a builder printing the intro (its `-L` line, a line Nix quotes) names
    nothing (it blamed the derivation it named for any failure after it)."""
    intro = next(((line.origin, m["drv"]) for line in shaped
                  if line.builder is None and not line.quoted
                  and (m := _HYDRA_LOG_INTRO.search(line.text))), None)
    if intro is None:
        return found
    return [replace(d, type=FailureType.BUILD, kind=Kind.BUILDER, drv=intro[1],
                    message=f"{short_drv(intro[1])} failed (Hydra's log of it): "
                            f"{_verdict_words(d) if _by_verdict(d) else d.message}")
            if ((d.type, d.kind) == (FailureType.OTHER, Kind.ERROR) or _by_verdict(d))
            and d.drv is None
            # (at or after its line: a structured record holding the page has one line)
            and d.log_line is not None and d.log_line - 1 >= intro[0] else d for d in found]


# A tool's own recap of what failed, in its words as its sources print them (where a copy kept
# the recap and none of Nix's lines that say what failed, the recap says it, typed as the tool
# types it): (pattern, {the words of its group "status" or "" -> (type, kind)}). A group "drv"
# names the derivation. Each holds only where the line is the tool's own (anchored to its form,
# not a phrase in prose) and is read only where nothing finer fits (see `_recapped`). Not here:
# a wrapper's verdict on the command it ran (colmena's "Failed to build HOST", deploy-rs' "Nix
# build command resulted in a bad exit code", nix-fast-build's "✘  ATTR failed after 3s
# (rc=1)"): that the command failed, `other` (heldout-3 colmena-272, heldout-126 deploy-rs-398),
# as a CI step's.
_AS_BUILD = (FailureType.BUILD, Kind.SUMMARY)
_AS_EVAL = (FailureType.EVAL, Kind.ERROR)
# the statuses Hydra's build steps and build pages both show for a build stopped by a limit or
# a platform (Hydra's BuildStatus/BuildStepStatus, rendered in root/build-common.tt, common.tt)
_HYDRA_LIMITS = {"Timed out": (FailureType.TIMEOUT, Kind.TIMEOUT),
                 "Log limit exceeded": (FailureType.BUILD, Kind.LOG_LIMIT),
                 "Output limit exceeded": (FailureType.BUILD, Kind.OUTPUT_CHECK),
                 "Unsupported system type": (FailureType.PLATFORM, Kind.PLATFORM)}
_RECAPS: tuple[tuple[re.Pattern[str], dict[str, tuple[FailureType, Kind]]], ...] = (
    # nixpkgs-review (nixpkgs_review/report.py, print_number and html_pkgs_section, 2.x-3.x;
    # nix-review's the same): "1 package failed to build:" over the attributes' names, in the
    # terminal, the markdown report's <summary> (":x: 2 packages failed to build:") and the page
    # that renders it ("❌ 2 packages …"); "N tests failed to build:" for NixOS tests; its
    # <details> on one line with it as nixpkgs-review-gha's comments show it ("<details><summary>
    # :x: 1 package failed to build:</summary><ul>"), also after the section before it closed
    # on that line as its newer comments print them, a section's list and <details> each closed
    # where the next opens ("</ul></details><details><summary>:x: 2 packages failed to build:
    # </summary><ul>", heldout-536 nixpkgs-pr-540082); nixpkgs-review-checks' (its script's
    # hydra-check sort, 2021-): "… failed to build and are new build failures:", "… failed to
    # build and already failed to build on hydra master:"
    (re.compile(r"^(?:</ul>\s*)?(?:</details>\s*)?(?:<details>\s*)?(?:<summary>\s*)?"
                r"(?::x:|❌|✖️?)?\s*[1-9]\d{0,5} "
                r"(?:package|test)s? failed to build(?: and are new build failures?| and already "
                r"failed to build on hydra master)?:?(?:\s*</summary>)?(?:\s*<ul>)?$"),
     {"": _AS_BUILD}),
    # ofborg (ofborg/src/tasks/githubcommentposter.rs, its comment "{status} on {system}"
    # before check runs, and BuildStatus's words): nix-build's exit 100, 101, 102
    (re.compile(r"^(?P<status>Failure|Timed out, unknown build status|A fixed output "
                r"derivation's hash was incorrect) on [a-z0-9_]{1,20}-[a-z0-9_]{1,20}\b"),
     {"Failure": _AS_BUILD, "Timed out, unknown build status": (FailureType.TIMEOUT, Kind.TIMEOUT),
      "A fixed output derivation's hash was incorrect": (FailureType.HASH_MISMATCH,
                                                        Kind.HASH_MISMATCH)}),
    # ... its "No attempt on SYSTEM" (BuildStatus::Skipped: tasks/build.rs build_not_attempted,
    # since e857352 of 2018-03-10, where no attribute could be nix-instantiated for SYSTEM; its
    # partial log the last lines of each "Cannot nix-instantiate `ATTR' because:" and the
    # instantiation's errors, nixpkgs' refusals): the attributes failed to evaluate
    (re.compile(r"^No attempt on [a-z0-9_]{1,20}-[a-z0-9_]{1,20}\b|"
                r"^Cannot nix-instantiate `[^`'\n]{1,500}' because:$"), {"": _AS_EVAL}),
    # ... and its evaluation's statuses (ofborg/src/tasks/eval/nixpkgs.rs, over a gist of
    # nix-env's output): the PR's or its target branch's packages failed to evaluate
    # (also after the status's context, as GitHub's checks list shows it: "ofborg-eval — …")
    (re.compile(r"(?:^|\s[—–-]\s)(?:This PR does not cleanly list package outputs after "
                r"merging|The branch this PR will merge in to does not cleanly evaluate|Failed to "
                r"validate package metadata)\b"), {"": _AS_EVAL}),
    # Hydra's build steps table (root/build-common.tt, renderStepStatus): "Build of
    # /nix/store/….drv", its duration and machine, then the step's status
    (re.compile(rf"\bBuild of {_DRV}\s.{{0,300}}?\b(?P<status>Failed|Timed out|Cached failure|"
                r"Log limit exceeded|Output limit exceeded|Non-determinism detected|"
                r"Unsupported system type|Aborted)\b"),
     {"Failed": (FailureType.BUILD, Kind.BUILDER),
      "Cached failure": (FailureType.BUILD, Kind.BUILDER),
      # (Hydra's own failure: "Aborted: unexpected EOF reading a line")
      "Aborted": (FailureType.OTHER, Kind.ERROR),
      "Non-determinism detected": (FailureType.BUILD, Kind.OUTPUT_CHECK),
      **_HYDRA_LIMITS}),
    # Hydra's build page (root/common.tt, renderStatus; its mails' "Dependency failed"): the
    # long texts alone on their line, the short ones after the page's "Status:"
    (re.compile(r"^(?:Status:\s*)?(?P<status>Build returned a non-zero exit code|A dependency "
                r"of the build failed|Build failed with output)\.?$|"
                r"^Status:\s*(?P<short>Dependency failed|Timed out|Log limit exceeded|"
                r"Output limit exceeded|Non-deterministic build|Unsupported system type)$"),
     {"Build returned a non-zero exit code": (FailureType.BUILD, Kind.BUILDER),
      "Build failed with output": (FailureType.BUILD, Kind.BUILDER),
      "A dependency of the build failed": (FailureType.DEPENDENCY, Kind.DEPENDENCY),
      "Dependency failed": (FailureType.DEPENDENCY, Kind.DEPENDENCY),
      "Non-deterministic build": (FailureType.BUILD, Kind.OUTPUT_CHECK),
      **_HYDRA_LIMITS}),
    # Hydra's notification mail (lib/Hydra/Plugin/EmailNotification.pm, CatalystUtils'
    # showStatus: "Failed" for every failure but a dependency's): its body's "The status of Hydra
    # job ‘P:J:JOB’ (on SYSTEM) has changed from "Success" to "Failed"." and its subject
    (re.compile(r"^The status of Hydra job ['‘][^'’\n]{1,500}['’] (?:\(on [\w-]{1,40}\) )?"
                r"(?:has changed from \"[^\"\n]{1,40}\" to|is) \"(?P<status>Failed|Dependency "
                r"failed|Failed with output)\"|^(?:Subject: )?(?P<short>Failed|Dependency failed|"
                r"Failed with output): Hydra job \S"),
     {"Failed": _AS_BUILD, "Failed with output": _AS_BUILD,
      "Dependency failed": (FailureType.DEPENDENCY, Kind.DEPENDENCY)}),
    # nix-fast-build (nix_fast_build/__init__.py's counts by result type, logging's default
    # "ERROR:nix_fast_build:" before them; report.py's CI summary headings; not ci_renderer.py's
    # verdict "✘  ATTR failed after 3s (rc=1)", a CI system's on its build step, see above)
    (re.compile(r"^(?:ERROR:nix_fast_build:)?(?P<status>BUILD|EVAL): \d{1,9} successes, "
                r"[1-9]\d{0,8} failures$|^#{1,4} Failed (?P<short>Builds|Evaluations)$"),
     {"BUILD": _AS_BUILD, "EVAL": _AS_EVAL, "Builds": _AS_BUILD, "Evaluations": _AS_EVAL}),
    # Nix's own progress bar, its last state a copy kept (libmain/progress-bar.cc's
    # renderActivity: " (N failed)" after the builds' count): builds failed; not a transfer's
    # "N copied (M failed)"
    (re.compile(r"^\[(?:\d+/)*\d+ built \([1-9]\d{0,8} failed\)"), {"": _AS_BUILD}),
    # buildbot-nix's scheduler log (buildbot_nix/build_trigger.py): "\t- ATTR failed eval",
    # "\t- skipping ATTR due to cached failure, first failed at …"
    (re.compile(r"^-\s(?:\S{1,500} failed (?P<status>eval)|skipping \S{1,500} due to cached "
                r"failure, first failed at\b)"), {"eval": _AS_EVAL, "": _AS_BUILD}),
    # ... and its build steps' logs (buildbot_nix/nix_error.py): DependencyFailedStep's "ATTR
    # was failed because it depends on a failed build of DEP.", CachedFailureStep's "ATTR was
    # failed because it has failed previously and its failure has been cached."
    (re.compile(r"^\S{1,500} was failed because it (?:(?P<status>depends) on a failed build of "
                r"\S|has failed previously and its failure has been cached\b)"),
     {"depends": (FailureType.DEPENDENCY, Kind.DEPENDENCY), "": _AS_BUILD}),
    # hydra-check (nix-community/hydra-check, its README's examples): a job's builds on Hydra,
    # one a line, "✖ (Dependency failed) NAME [from DATE -] https://hydra.nixos.org/build/N",
    # Hydra's status of each failed build in parentheses after the cross
    (re.compile(r"^✖\s{0,4}\((?P<status>Failed|Failed with output|Cached failure|Dependency "
                r"failed|Timed out|Log limit exceeded|Output limit exceeded|Unsupported system "
                r"type|Aborted)\)\s{1,8}\S"),
     {"Failed": _AS_BUILD, "Failed with output": _AS_BUILD, "Cached failure": _AS_BUILD,
      "Dependency failed": (FailureType.DEPENDENCY, Kind.DEPENDENCY),
      "Aborted": (FailureType.OTHER, Kind.ERROR), **_HYDRA_LIMITS}),
)
# a word every recap of _RECAPS holds (each line of a log nothing else failed in is asked)
_RECAP_WORDS = re.compile(r"[Ff]ail|Timed out|incorrect|exceeded|[Nn]on-(?:zero|determinis)|"
                          r"Unsupported|Aborted|does not cleanly|No attempt|nix-instantiate")
# nix-output-monitor's last line (lib/NOM/Print.hs), which normalising leaves out as nom's status
# line: "┗━ ∑ ⚠ Exited after 2 build failures …", "… Exited with 1 errors reported by nix …"
_NOM_RECAP = re.compile(r"∑ .{0,40}?Exited (?:after [1-9]\d{0,8} (?P<builds>build) failures?|"
                        r"with [1-9]\d{0,8} errors reported by nix)\b")
# nixpkgs-review's heading over the failed builds' log tails in its report where it shows three
# or more (report.py, html_logs_section), a <summary> normalising drops with the markup
_REVIEW_LOGS = re.compile(r"<summary>Error logs: `[\w-]{1,40}`</summary>")
_MARKUP_TAG = re.compile(r"<[^<>\n]{1,100}>")


def _tools_recap(shaped: Sequence[logshape.Line], raw: Sequence[str]) -> Diagnosis | None:
    """The first recap of a tool's own in the log (`_RECAPS`): the failure it says, typed as
    the tool types it, its line the message (with the names a list under it holds: nixpkgs-
    review's); None where the log holds none."""
    for at, line in enumerate(shaped):
        if line.builder is not None or not _RECAP_WORDS.search(line.text):
            continue
        text = line.text.strip()
        if len(text) > 1000:
            continue
        for pattern, types in _RECAPS:
            m = pattern.search(text)
            if m is None:
                continue
            said = next((word for word in m.groups() if word and word in types), "")
            type_, kind = types.get(said, types.get("", _AS_BUILD))
            # (a list's first name or a heading's first item after it: nixpkgs-review's
            # attributes, nix-fast-build's "**ATTR** (duration: 3.10s)")
            named = next((shown for later in shaped[at + 1:at + 4] if later.builder is None
                          and (shown := _MARKUP_TAG.sub("", later.text).strip())), "")
            # (its markup left out, as normalising leaves it out of a page's rendered copy: a
            # <summary> copied from the page's source says what its rendering says)
            said_line = _MARKUP_TAG.sub("", text).strip() or text
            message = f"{said_line} {named.replace('**', '')}" if named and (
                said_line.endswith(":") or said_line.startswith("#")) else said_line
            drv = m.groupdict().get("drv")
            return Diagnosis(type_, kind, _one_line(message), drv=drv,
                             hint=HINTS.get(kind) if kind is not Kind.ERROR else None,
                             log_line=line.origin + 1,
                             log=tail([later.text for later in shaped[at:at + TAIL_LINES]]))
    for origin, captured in enumerate(raw):
        m = _NOM_RECAP.search(captured) if "∑" in captured else None
        if m is not None:
            said = clean(captured).strip()
            return Diagnosis(*(_AS_BUILD if m["builds"] else (FailureType.OTHER, Kind.ERROR)),
                             _one_line(said), log_line=origin + 1, log=said)
        m = _REVIEW_LOGS.search(captured) if "<summary>" in captured else None
        if m is not None:
            return Diagnosis(*_AS_BUILD, _one_line(_MARKUP_TAG.sub("", m[0])),
                             log_line=origin + 1, log=clean(captured).strip())
    return _cut_recap(shaped)


# what may stand before a recap a copy cut: indentation, a markdown quote, list or emphasis marks
_BEFORE_RECAP = re.compile(r"^[\s>*_`|-]{0,20}")


def _cut_recap(shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """A tool's recap (`_RECAPS`) the text's end cut inside ("<summary>1 package failed",
    "4 packages failed to", "Failure on x86_6"): its last line, from its start, a prefix of what
    a recap matches that keeps the recap's own failure word whole (`_RECAP_WORDS`), read as the
    recap's type where every status the kept words leave open has that type (a status word kept
    whole, or the text ending inside it, decides); None for any other text. (The recaps read
    from a line's start only: those a line holds after other words, Hydra's steps table, are
    not read cut.)"""
    last = next((line for line in reversed(shaped) if line.text.strip()), None)
    if last is None or last.builder is not None or last.quoted:
        return None
    line = last.text.strip()
    kept = _BEFORE_RECAP.sub("", line, count=1)
    if not _RECAP_WORDS.search(kept) or len(kept) > 1000:
        return None
    readings: set[tuple[FailureType, Kind]] = set()
    for pattern, types in _RECAPS:
        # (the line as it is, or without the marks before it: buildbot-nix's recap opens
        # with a list's "- " itself)
        if not pattern.pattern.startswith("^") or pattern.search(line) or pattern.search(kept) \
                or not any(regex_literal.prefix_form(pattern).match(text)
                           for text in {line, kept}):
            continue
        # (the statuses the kept words name, whole or cut at their end, else any the recap has)
        named = [types[status] for status in types if status and (status in kept or any(
            kept.endswith(status[:end]) for end in range(1, len(status))))]
        readings.update(named or types.values())
    if len(readings) != 1:
        return None
    type_, kind = readings.pop()
    return Diagnosis(type_, kind, _one_line(
        f"{_MARKUP_TAG.sub('', kept).strip()} … (the text is cut off inside the tool's recap)"),
        hint=HINTS.get(kind) if kind is not Kind.ERROR else None, log_line=last.origin + 1,
        log=tail([last.text]))


# the heads of Nix's failure lines, which a copy may cut inside ("error: build")
_HEADS_CUT = ("build of ", "builder for ", "Cannot build ", "cannot build ")


def _cut_head(text: str) -> bool:
    """Whether an error line of Nix's is cut inside the head of one of its failure lines (its
    message a few letters of "build of '…'", "builder for '…'", …): it says nothing of what
    failed."""
    said = text.strip().removeprefix("error:").strip()
    return len(said) >= 3 and any(head.startswith(said) for head in _HEADS_CUT)


# nixpkgs-review's block over one failed package's log in its report (report.py,
# html_logs_section, 2025-05-08-: "<details>", "<summary>ATTR</summary>", "<pre>" and the last 20
# lines of `nix log DRV^*` escaped, "</pre>", "</details>"): a log line's own (the builder's)
_REVIEW_LOG_NAME = re.compile(r"<summary>[\w.+-]{1,100}</summary>\s*$")
_REVIEW_TAIL = 20


def _in_review_log(raw: Sequence[str], log_line: int | None) -> bool:
    """Whether a report's line is one of a failed package's log in nixpkgs-review's report
    (`_REVIEW_LOG_NAME`: the "<pre>" it stands in, or opens, under the package's <summary>; or,
    the report's head cut away, the "</pre>" it stands over before the next package's block):
    the package's `nix log`, the builder's own lines, where an "error:" is the builder's, not
    Nix's."""
    if log_line is None or not 1 <= log_line <= len(raw):
        return False
    at = log_line - 1
    # (a transport's prefix before each line kept: a CI's timestamps, a pager's marks)
    for opens in range(at, max(-1, at - _REVIEW_TAIL - 1), -1):
        if "</pre>" in raw[opens] and opens < at:
            return False
        if "<pre>" in raw[opens]:
            return any(_REVIEW_LOG_NAME.search(line) for line in raw[max(0, opens - 2):opens])
    return _over_review_log(raw, at)


def _over_review_log(raw: Sequence[str], at: int) -> bool:
    """Whether the captured line at `at` stands in a log block of nixpkgs-review's report that
    the next package's block follows ("</pre>", "</details>", "<details>", "<summary>ATTR
    </summary>", "<pre>…": the chain of failed packages' logs only its report holds), no "<pre>"
    between: a failed package's log whose opening a copy cut away."""
    closes = next((later for later in range(at, min(len(raw), at + _REVIEW_TAIL + 1))
                   if "</pre>" in raw[later] or "<pre>" in raw[later]), None)
    if closes is None or "</pre>" not in raw[closes]:
        return False
    after = [line.strip() for line in raw[closes + 1:closes + 6] if line.strip()][:4]
    return len(after) == 4 and after[0].endswith("</details>") and after[1].endswith(
        "<details>") and bool(_REVIEW_LOG_NAME.search(after[2])) and "<pre>" in after[3]


def _recapped(found: list[Diagnosis], shaped: Sequence[logshape.Line],
              raw: Sequence[str]) -> list[Diagnosis]:
    """found, or a tool's recap in its place (`_tools_recap`) where found is nothing or only a
    line nothing finer fits that is not Nix's own error line (a builder's line, a wrapper's
    verdict: the tool's recap says more of what failed than they do) or is one a copy cut
    inside its head (`_cut_head`)."""
    if len(found) > 1:
        return found
    if found:
        only = found[0]
        in_review_log = _in_review_log(raw, only.log_line)
        said_by_nix = any(_ERROR_LINE.match(line.text) and not _cut_head(line.text)
                          for line in shaped if line.origin + 1 == only.log_line) \
            and not in_review_log
        # (a line of a package's log in nixpkgs-review's report is the builder's, whatever its
        # words seemed to say of Nix: hatch's "OSError: Unable to locate executables directory
        # within: /nix/var/nix/builds…", heldout-484 nixpkgs-pr-466399)
        if not (in_review_log and only.type is FailureType.OTHER) and not _by_verdict(only) and (
                (only.type, only.kind) != (FailureType.OTHER, Kind.ERROR) or said_by_nix):
            return found
        if in_review_log and only.log_line is not None and _over_review_log(
                raw, only.log_line - 1) and _tools_recap(shaped, raw) is None:
            # the report's head and its list of what failed cut away (a continued comment's
            # copy: heldout-526 nixpkgs-pr-550438): a failed package's log, its build failed
            return [replace(only, type=FailureType.BUILD, kind=Kind.BUILDER,
                            hint=HINTS.get(Kind.BUILDER))]
    recap = _tools_recap(shaped, raw)
    refused = None if recap is None else next(
        (line for line in shaped if line.builder is None and _CHECK_META.search(line.text)), None)
    if recap is not None and refused is not None:
        # a line of nixpkgs' refusal to evaluate a package, cut (ofborg's partial log: "… is not
        # supported on ‘aarch64-li"): the tool's recap says only that something failed
        # (ofborg's "Failure" before 2018-03-10 covered evaluation too); the refusal is
        # nixpkgs' throw, eval (20:16)
        return [replace(_unclassified(refused.text.strip(), refused.origin + 1),
                        type=FailureType.EVAL, log=tail([refused.text]))]
    # (a recap saying only that something failed, nom's "Exited with 1 errors reported by nix",
    # stands only where nothing else does: the line that said what is the better message)
    return found if recap is None or (found and (recap.type, recap.kind) == (
        FailureType.OTHER, Kind.ERROR)) else [recap]


# nixpkgs' check-meta refusal's own words (pkgs/stdenv/generic/check-meta.nix), also in a line a
# copy cut: "… is not supported on ‘SYSTEM’", "… is marked as broken", "has an unfree license",
# "is marked as insecure", "refusing to evaluate"
_CHECK_META = re.compile(r"\bis not supported on ['‘`]|\brefusing to evaluate\b|\bis marked as "
                         r"(?:broken|insecure)\b|\bhas an unfree license\b")


# a path in the directory Nix runs a build in: the sandbox's `/build` (sandbox-build-dir), or
# `nix-build-<name>.drv-<n>` under $TMPDIR (no sandbox, macOS's /private/tmp)
_BUILD_DIR = re.compile(r"(?<![\w./-])/build/|(?<![\w-])nix-build-[^/\s'\"]{1,255}?\.drv-\d+/")


def _builders_own(found: Diagnosis, text: str, fenced: bool = False,
                  quotes: bool = False) -> Diagnosis:
    """A failure nothing finer fits whose line is a build's own output: a builder's (or its
    setup hook's) error line about a file in the build directory (omen-space#236, a text fence
    of Nix's log tail without its header: "> ERROR: Missing Cargo.lock from src. Expected to find
    it at: /build/source/Cargo.lock") says that build failed, not Nix: `build`; so does an error
    line indented as Nix quotes a builder's in its block. Nix's own `error:` lines (it names the
    build directory when it cannot set it up) stay as they are. fenced: whether the line
    stands inside a markdown code fence, where "> " is no markdown quote but text; quotes:
    whether that fence holds nothing but such lines (`_fence_of_quotes`)."""
    if fenced and found.type is FailureType.OTHER and found.kind in (Kind.ERROR, Kind.NIX) \
            and (_QUOTED_COMPILER_ERROR.match(text) or (quotes and _QUOTE_MARKED.match(text))):
        # (or any error line of a fence holding only lines behind the mark: Nix's quote of a
        # builder's last lines that lost its indentation in the copy, its header cut off; the
        # text's convention of 23:05, build)
        # a compiler's diagnostic behind the quote mark inside a fence (Nix's "> " that lost
        # its indentation in a copy; at the margin outside one, a writer's markdown quote): the
        # build's own, also where the file it names is in the store (nixpkgs#177508: "> /nix/
        # store/…-lua/src/ngx_http_lua_common.h:27:10: fatal error: pcre.h: No such file or
        # directory", read as Nix's own about its store)
        return replace(found, type=FailureType.BUILD, kind=Kind.BUILDER)
    if (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR) or _ERROR_LINE.match(text) \
            or not (_BUILD_DIR.search(text) or _NIX_TAIL_QUOTE.match(text)):
        return found
    return replace(found, type=FailureType.BUILD, kind=Kind.BUILDER)


# a line behind a quote mark at most three blanks in (markdown's quote; in a fence, text)
_QUOTE_MARKED = re.compile(r"^ {0,3}>(?: |$)")


def _fence_of_quotes(raw: Sequence[str], origin: int) -> bool:
    """Whether the fence the captured line at `origin` stands in (`_fenced`) holds two lines
    or more and every one behind a quote mark: Nix's quote of a builder's lines ("> …") whose
    indentation the copy lost, not a writer's markdown quote (in a fence it is text)."""
    if not _fenced(raw, origin):
        return False
    start = next(at for at in range(origin, -1, -1) if _FENCE_LINE.match(raw[at]))
    end = next((at for at in range(origin + 1, len(raw)) if _FENCE_LINE.match(raw[at])),
               len(raw))
    held = [line for line in raw[start + 1:end] if line.strip()]
    return len(held) >= 2 and all(_QUOTE_MARKED.match(line) for line in held)


def _fenced(raw: Sequence[str], origin: int) -> bool:
    """Whether the captured line at `origin` stands inside a markdown code fence (an odd number
    of fence lines above it, _FENCE_LINE)."""
    return sum(1 for line in itertools.islice(raw, origin) if _FENCE_LINE.match(line)) % 2 == 1


# a compiler's diagnostic as gcc and clang print it ("FILE:LINE[:COLUMN]: [fatal ]error: …"),
# behind a quote mark: no message of Nix's has that form (its positions follow its message,
# "at FILE:LINE:COLUMN"), a builder's log lines as Nix quotes them do
_QUOTED_COMPILER_ERROR = re.compile(r"^\s{0,8}> ?[^\s:]{1,1000}:\d{1,7}(?::\d{1,5})?: "
                                    r"(?:fatal )?error: \S")


# a line that ends on its error mark ("… produce the very confusing error:"): what it announces
# follows, as Nix's own bare "error:" is followed by its trace and message
_ANNOUNCES = re.compile(r"\berror:$", re.IGNORECASE)
# a markdown quote's marks, or a fence alone on its line: no line's words
_QUOTE_OR_FENCE = re.compile(r"^\s*(?:>\s?)+|^\s*`{3}\w*\s*$")


def _announced(said: tuple[int, str], shaped: Sequence[logshape.Line]) -> tuple[str, int]:
    """(text, origin) of the line that says something failed, or, where that line ends on its
    `error:`, of the line after it that says what (a markdown quote's `> ` taken off)."""
    origin, text = said
    if not _ANNOUNCES.search(_EMPHASIS.sub("", text).rstrip()):
        return text, origin
    at = _said_at(origin, text, shaped)
    for line in shaped[at + 1:]:
        if line.builder is not None:
            continue
        shown = _EMPHASIS.sub("", _QUOTE_OR_FENCE.sub("", _after_shared_start(line.text, text)))
        if shown.strip():
            shown = shown.strip()
            return (text if _NOT_A_FAILURE.match(shown) else f"error: {shown}"), line.origin
    return text, origin


def _announces_a_kept_tail(said: tuple[int, str], shaped: Sequence[logshape.Line]) -> bool:
    """Whether the line that says something failed ends on its `error:` and what it announces
    is a builder's line as Nix quotes it ("       > …", a fence between them or not): the
    builder's output under a report a copy cut off, no message of Nix's (heldout-475
    caelestia-shell-586: "… with error:" over ninja's quoted "FAILED: …")."""
    origin, text = said
    if not _ANNOUNCES.search(_EMPHASIS.sub("", text).rstrip()):
        return False
    for line in shaped[_said_at(origin, text, shaped) + 1:]:
        if line.builder is None and _QUOTE_OR_FENCE.sub("", line.text).strip():
            return _NIX_TAIL_QUOTE.match(line.text) is not None
    return False


def _after_shared_start(line: str, announcing: str) -> str:
    """line without the leading words it shares with the announcing line: a tool's prefix
    normalising did not learn from so few lines (`remote: `, a viewer's line number, a
    timestamp: numbers count as the same word), so a prefix alone is no message."""
    words, theirs = line.split(), announcing.split()
    shared = 0
    while shared < min(len(words), len(theirs)) and \
            logshape.numbers_as_zero(words[shared]) == logshape.numbers_as_zero(theirs[shared]):
        shared += 1
    return " ".join(words[shared:]) if shared else line


# a quote a sentence opens right before the "error:" it quotes, and the mark that closes it
_QUOTE_CLOSE = {'"': '"', "`": "`", "“": "”", "«": "»", "„": "“"}
_PRINTED_ERROR = "«error:"  # the value printer's «error: …» (see _line_failure)


def _quoted_error(text: str, at: int) -> str:
    """The message a sentence quotes from its "error:" at `at` on: up to the close of a quote
    opened right before it (the sentence goes on after), as it is inside (a NixOS message quotes
    with `…', which removing markdown's backticks would break); else the rest of the line
    without markdown emphasis."""
    close = _QUOTE_CLOSE.get(text[at - 1]) if at > 0 else None
    end = text.find(close, at) if close is not None else -1
    if end > at:
        return "error:" + text[at + len("error:"):end]
    return _EMPHASIS.sub(_unless_nixos_quote, "error:" + text[at + len("error:"):])


# a backtick opening a quote as NixOS' messages write one ("The option `a.b' does not exist"):
# after a blank, before the text and the apostrophe closing it on the line (not one opening a
# quote of its own: "`function 'anonymous lambda' called …`" is markdown's code span)
_NIXOS_QUOTE = re.compile(r"(?<=\s)`(?=[^\s`'][^`'\n]{0,500}'(?!\w))")


def _unless_nixos_quote(m: re.Match[str]) -> str:
    """Markdown's emphasis and code marks taken away, a NixOS quote's opening backtick kept."""
    return m[0] if _NIXOS_QUOTE.match(m.string, m.start()) else ""


def _finer_failure_after(said: tuple[int, str],
                         shaped: Sequence[logshape.Line]) -> Diagnosis | None:
    """A later line saying something failed in Nix's own words that say what, where the first
    such line said only that something did (a notes page's heading "Agent-error: …", a sentence
    about an error, before the refusal it quotes in double quotes): Nix's words outrank a
    writer's; None where no later line says more. Only lines outside any builder's output, as
    `failure_line` reads them, each read alone (a line announcing the next is followed by it,
    read in turn: no search back for either, so a log of many such lines costs linear time)."""
    # (after it in the shaped lines, not by origin: the lines one record held share one; by
    # origin where the line's text was read with its marks taken off)
    start = _said_at(*said, shaped) + 1
    if start > len(shaped):
        start = next((at for at, line in enumerate(shaped) if line.origin > said[0]), start)
    for at, line in enumerate(shaped[start:], start):
        text = _says_failed(line) or _span_wrapped(line, shaped[at + 1:at + 2])
        if text is None:
            continue
        found = _line_failure(text, line.origin)
        if (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR):
            return found
    return None


# a program's own message that it could not write its output, as gnulib's close_stdout prints it
# at the exit of coreutils, tar, gzip, sed ("tr: write error: Broken pipe", "tar: write error: No
# space left on device") and bash's builtins ("./configure: line 1666: printf: write error: No
# space left on device"): the program's failure (a build's, where it ran in one), whatever the
# strerror; Nix words its own failing write "writing to file: …"
_PROGRAMS_WRITE_ERROR = re.compile(r"(?:^|[\s>])[^\s:]{1,200}: write error: ")


def _line_failure(text: str, origin: int) -> Diagnosis:
    """One line that says something failed, outside any error block: classified where Nix's
    words in it (inside a sentence or markdown) say enough, else `other` with it as message."""

    def placed(found: Diagnosis) -> Diagnosis:  # (every reading names this line, and keeps it)
        return replace(found, log_line=origin + 1, log=tail([text]))

    m = _ERROR_ANYWHERE.search(text) or _says_a_failure_at(text)
    said = _EMPHASIS.sub("", text[m.start():] if m else text)
    found = _build_diagnosis(_EMPHASIS.sub("", text)) or _build_diagnosis(said)
    # Nix's words anywhere else in the line, or as a copy damaged them (the general reader): a
    # sentence's code span that holds Nix's build failure whole, its "error: " left out or in
    # the sentence before it ("I'm getting this error: `build of '…-neuron.drv' failed` when
    # running …", neuron#504: the span alone, the sentence around it the writer's), a header
    # whose first letters a copy ate; a recap too (the span is all the line says of Nix's)
    read = None if found is not None else _read_nix_words(text)
    if read is not None:
        return placed(read)
    printed = text.find(_PRINTED_ERROR)
    if found is None and printed >= 0:
        # Nix's value printer (libexpr print.cc) shows a value whose evaluation threw as
        # «error: MSG» (`nix eval`, the repl, `nix flake show`): the evaluator's failure,
        # whatever its words ("outPath = «error: fetcher called without `hash`»"); finer kinds
        # (a download the evaluation needed) stay
        found = diagnose_eval(_quoted_error(text, printed + 1))
        found = replace(found, type=FailureType.EVAL) if found.kind in (
            Kind.ERROR, Kind.THROW) else found
        return placed(found)
    at = text.lower().find("error:")
    family = False
    # (a program's own "write error" is its failure to write its output, not Nix's: its message
    # is no Nix error's, nor its strerror Nix's store or pipe failing)
    written = _PROGRAMS_WRITE_ERROR.search(text) is not None
    if found is None and at >= 0 and not written and not _CRASH.search(text[:at + len("error")]):
        # (not after a crash banner: "terminating due to unexpected unrecoverable internal
        # error: Unexpected condition in … at <Nix's source>:1205" is Nix dying, whatever its
        # message names; read below as Nix's own)
        found = diagnose_eval(_quoted_error(text, at))
        # the evaluator's own words in the quoted message say `eval` (the evidence rule), as do
        # finer kinds; what nothing fits stays the line as it is
        # (a sentence after "error:" in a line of prose or a wrapper's is no bare throw: that
        # is Nix's own error line alone)
        bare = found.kind is Kind.THROW and not _THROWN.search(text)
        # (kind `nix` by the subsystem family alone is no finer reading than the line's own:
        # the line keeps its words as the message, its kind `nix` below; the crash handler's
        # "Exception: std::system_error: mutex lock failed: …" stays whole)
        family = found.kind is Kind.NIX and not _NIX_ITSELF_CHOICE.found(found.message) \
            and _about_nix_itself(found.message)
        found = found if not bare and not family and (found.type is FailureType.EVAL or (
            found.kind not in (Kind.ERROR, Kind.SUMMARY))) else None
    down = _BUILDER_DOWN.search(said)
    if found is None and down is not None:
        found = _builder_down(down)
    if found is not None and (found.kind != Kind.SUMMARY or (found.type, found.drv) == (
            FailureType.BUILD, None)):  # (a recap naming no store path: all it says, builds failed)
        return placed(found)
    if found is None and at < 0 and _NIX_HINT.search(text):  # Nix's message, "error:" lost
        return placed(diagnose_eval(f"error: {_EMPHASIS.sub('', text).strip()}"))
    refusal = _REFUSAL.search(text) if found is None else None
    if refusal is not None:  # nixpkgs' check-meta throw, its prefix cut
        # (the quote a sentence holds it in, where it is one: "I get `Package ‘x’ in … is marked
        # as broken, refusing to evaluate.` on 23.05"; the sentence around it is the writer's)
        quote = next((q for q in (*_CODE_SPAN.finditer(text), *_DOUBLE_QUOTED.finditer(text))
                      if q.start(1) <= refusal.start() < q.end(1)), None)
        said = _EMPHASIS.sub("", quote[1] if quote is not None else text).strip()
        if not refusal[0].lower().startswith("refusing"):
            said = (f"nixpkgs refused to evaluate a package (the log keeps only the advice after "
                    f"its reason: {said})")
        return placed(diagnose_eval(f"error: {said}"))
    module = _MODULE_MESSAGE.search(text) if found is None and at < 0 else None
    if module is not None:  # the module system's message, "error:" lost: from its first word
        # (the evaluator's, also where only its end survived a copy), to the close of the code
        # span a sentence quoted it in ("I get `The option 'a' does not exist.` after …")
        # (or the double quotes: "results in the error \"The option `a` does not exist\" …")
        opened = text[module.start() - 1] if module.start() > 0 else ""
        close = text.find({"“": "”"}.get(opened, opened), module.end()) \
            if opened in ("`", '"', "“") else -1
        said = text[module.start():close if close > 0 else len(text)].strip()
        return placed(replace(diagnose_eval(f"error: {said}"), type=FailureType.EVAL))
    evaluators = _evaluators_words(text) if found is None and at < 0 else None
    if found is None and at < 0 and (evaluators is not None or _EVAL_ALONE.search(text)):
        # the evaluator's, "error:" lost: its quote, or the line from its first word (a
        # report's title: its markdown heading's marks dropped)
        said = _EMPHASIS.sub("", text if evaluators is None else evaluators[1])
        said = said.strip(" >").lstrip("# \t")
        # (a quote around it is the writer's; one inside it, nixpkgs' "argument \"boost\"")
        said = said[1:-1].strip() if said[:1] == '"' and said[-1:] == '"' else said
        return placed(replace(diagnose_eval(f"error: {said}"), type=FailureType.EVAL))
    refused = _EVAL_MODE_REFUSAL.search(text) if found is None and at < 0 else None
    if refused is not None:  # the evaluator's refusal, "error:" lost: the inline code it is in
        said = text[text.rfind("`", 0, refused.start()) + 1:]
        said = said[:said.find("`")] if "`" in said else said
        return placed(diagnose_eval(f"error: {said}"))
    spoken = _quoted_nix_message(text) if found is None and at < 0 else None
    if spoken is not None:  # Nix's message in a sentence's code span, "error:" lost: the span
        # alone (what stands around it is the writer's), read as Nix printed it
        said = spoken[1].strip()
        return placed(_build_diagnosis(said) or diagnose_eval(f"error: {said}"))
    thrown = _quoted_nixpkgs_throw(text) if found is None and at < 0 else None
    if thrown is not None:  # nixpkgs' own throw a writer quoted, "error:" lost: the quote alone
        # (its words are nixpkgs', thrown while it is evaluated: the 20:16 convention)
        said = _EMPHASIS.sub("", thrown[1]).strip()
        return placed(replace(diagnose_eval(f"error: {said}"), type=FailureType.EVAL))
    invalid = _INVALID_PATH.search(text) if found is None and at < 0 else None
    if invalid is not None:  # the store's InvalidPath, "error:" lost: its words alone (Nix's
        # message ends there; the sentence or code span around it is the writer's), Nix's own
        # store's failure also where the writer lost the path's closing quote
        return placed(replace(diagnose_eval(f"error: {invalid[0]}"), kind=Kind.NIX,
                              hint=HINTS[Kind.NIX]))
    # (an error a sentence quotes is what the quote holds, not the sentence around it; unless
    # the line goes on to say another error: the quote was a cut copy of it, as strace's)
    quoted = _quoted_error(text, at) if at > 0 and text[at - 1] in _QUOTE_CLOSE else text
    quoted = text if "error:" in text[at + len(quoted):].lower() else quoted
    if (_NIX_ITSELF_CHOICE.found(text) or family) and not written:
        # Nix crashed (a C assertion, a signal) or its store failed; or what its error is about
        # is Nix's own machinery (_about_nix_itself)
        return replace(_unclassified(quoted, origin + 1), kind=Kind.NIX, hint=HINTS[Kind.NIX],
                       log=tail([text]))
    return _unclassified(quoted, origin + 1)


# The rule against a silent zero: words that say something failed, in any case, wherever they
# are in a line. A log holding one outside what is not Nix's own report (below) yields at least
# one failure.
# Nix ends an error message with the flag that would avoid or explain it: "(use '--show-trace'
# to …)", "(use '--no-write-lock-file' to ignore)"; a message quoted without its "error:" keeps it
_NIX_HINT = re.compile(r"\(use ['‘`]--[a-z][a-z-]*['’`]")
# a shell script's fatal error (bash, dash: "<script>: line 868: syntax error near unexpected
# token …", "<script>: line 19: x: unbound variable" under `set -u`): a wrapper (nixos-rebuild,
# an install script) that died before Nix said anything
_SHELL_FATAL = (r"(?<!\S)[^\s:]{1,4096}: line \d{1,9}: "
                r"(?:syntax error|[^\s:]{1,200}: unbound variable)")
# an error value a program printed as it died: its type's name (a class or constructor named for
# what it is, `…Error`/`…Exception`, in every language's convention) followed by its contents, as
# a Haskell `show` (`DecodeError {message = …}`), Rust's `{:?}` (`Error { kind: … }`), Node
# (`SystemError [ERR_…]`) or Python/Java/JS (`ValueError:`, `java.io.IOException:`) print it; in
# words of its own, so case-sensitive (a lower-case `error` is a word, `decodeerror` is none)
# (Haskell shows a constructor's positional fields after a blank, `CppStdException "path '…' is
# not valid" (Just "nix::InvalidPath")` — a binding relaying libstore's error —, Python's repr and
# Rust's tuple structs in parentheses, `ValueError('…')`, `Error("…")`; not MSBuild's `Error(s)`)
_ERROR_VALUE = (r"(?-i:\b(?:[A-Z][A-Za-z0-9]{0,60}[a-z0-9])?(?:Error|Exception)"
                r"(?= ?[{\[:\"]|\((?!s\)))|"
                # a constructor named for a step that failed, shown with its contents: Rust's
                # `ShellFailed { shell: Sh, … }` (Determinate's installer), `CommandFailed(…)`,
                # Haskell's `BuildFailure {…}`; its name has more than the word, whose plain
                # `Failed: 0` (a test summary) is no value
                r"\b[A-Z][A-Za-z0-9]{0,60}[a-z0-9](?:Failed|Failure)(?= ?[{(]))")
# a system call's failure on Nix's own state (its database, daemon socket, profiles, GC roots):
# Nix's SysError is "<what>: <strerror>", and a tool relaying it may drop the "error:" before it
# ("error getting status of /nix/var/nix/daemon-socket/socket: Permission denied.")
_ERRNO = (r"(?:Permission denied|Operation not permitted|Connection refused|No such file or "
          r"directory|Read-only file system|No space left on device|Too many open files|"
          r"Input/output error|Resource temporarily unavailable|Disk quota exceeded|Stale file "
          r"handle)")
# (and the store optimiser's hard link from its own directory of links, /nix/store/.links:
# "cannot link '/nix/store/.links/…' to '…': No space left on device", optimise-store.cc)
_NIX_STATE_ERRNO = (r"/nix/var/nix/[^\s'’:]{0,512}+['’]?: " + _ERRNO + "|"
                    r"cannot link ['‘]/nix/store/\.links/[^\s'’]{1,512}['’] to ['‘][^'’\n]{1,4096}"
                    r"['’]: " + _ERRNO)
# the evaluator's message alone on its line (or a markdown heading's), without the "error:" before
# it (a reporter typed it from a screenshot, a tool relaying Nix dropped the prefix, a report's
# title), where its words name nothing of the code's ("infinite recursion encountered", "syntax
# error, unexpected …"): older Nix's ", at <file>:L:C" kept; only as the line's whole text, so a
# sentence naming the error is no failure (the messages that name something, _EVALUATOR_SAYS,
# also open a line or stand quoted)
# a markdown quote's marks before a line's text (at most 3 blanks before them): not Nix's own
# quote of a builder's line ("       > …", 7 blanks), which is the builder's output, whatever
# it says (a test suite printing the evaluator's messages)
_QUOTE_MARKS = r"(?: {0,3}>[ \t>]{0,8})?"
_EVAL_ALONE = re.compile(r"(?m:^" + _QUOTE_MARKS + r"[ \t*_`\"#]*"
                         r"(?:(?:infinite recursion encountered"
                         r"(?:,? at \S{1,1000}:\d+:\d+:?)?|"
                         # (the call's words naming neither the function nor the argument:
                         # nixpkgs' "Function called without required argument" as a report's
                         # title or a copy cut it)
                         r"(?:anonymous )?function called (?:without required|with unexpected) "
                         r"arguments?)[\s*_`\".!]*|"
                         r"syntax error, unexpected [^\n]{1,300})$)", re.IGNORECASE)
# The evaluator's messages that name what they are about, in Nix's quotes or its type names
# (libexpr's eval.cc, primops.cc, eval-inline.hh, attr-path.cc, libflake, libcmd; Nix 1.x-2.3,
# 2.4-2.35 and master, Lix 2.90-2.95, Determinate: tests/data/sources/wordings/README.md,
# "The evaluator's messages without `error:`"): no writer words a sentence so, so the message
# opening a line (after indentation and markdown's marks, whatever follows it), a writer's quote
# of it (a code span, double quotes) and a report's title holding it (a markdown heading) are
# Nix's message whose "error:" a copy lost. A name is a name: no placeholder of a manual's or of
# the sources' ('%s', '%1%', '{}', '…', '...', '<name>').
_NAMED = r"['‘](?!%|\{|…|\.\.\.|<[\w -]{1,20}>['’])[^'’\n]{1,300}['’]"
# a value's type as libexpr's showType names it (eval.cc; Lix the same), and "the built-in
# function 'x'" where the value is a builtin
_SHOWN_TYPE = (r"(?:null|an? (?:integer|Boolean|string|path|set|list|function|float|thunk|"
               r"external value|black hole|function application)\b|"
               r"(?:the|a) (?:partially applied )?built-in function\b)")
_POSITION = r"(?: at \S{1,1000}:\d+:\d+)?"
_EVALUATOR_SAYS = (
    # eval.cc: a variable, an attribute, a call's arguments (Nix <= 2.3 "anonymous function at
    # …:1:1 called …", "function 'f' at …"; Lix 2.93+ "called without required arguments 'a'
    # and 'b'")
    rf"undefined variable {_NAMED}",
    rf"(?:required )?attribute {_NAMED} missing\b",
    rf"(?:anonymous function|function {_NAMED}){_POSITION} called (?:without required|with "
    rf"unexpected) arguments? {_NAMED}",
    # (nixpkgs' lib/customisation.nix callPackageWith, aborting: 'Function called without
    # required argument "boost" at …')
    r"function called without required argument \"[^\"\n]{1,300}\"",
    # (<= 2.3: an attribute defined twice named with both positions, an assertion's condition
    # unquoted or none, a division by zero with its position)
    rf"(?:dynamic )?attribute {_NAMED}{_POSITION} already defined at \S",
    rf"assertion {_NAMED} failed",
    r"assertion (?:\(.{1,1000}?\) )?failed at \S{1,1000}:\d+:\d+",
    r"division by zero, at \S{1,1000}:\d+:\d+",
    r"evaluation aborted with the following error message: ['‘]",
    rf"the string {_NAMED} is not allowed to refer to a store path",
    # the type errors, each value's type as showType names it (<= 2.19 "value is … while … was
    # expected", 2.20+ and Lix "expected … but found …: VALUE"), in Nix's lower case (a
    # writer's sentence opens with "Expected a set but found a list of …")
    rf"(?-i:attempt to call something which is not a function but {_SHOWN_TYPE})",
    rf"(?-i:cannot coerce {_SHOWN_TYPE} to a string)",
    rf"(?-i:value is {_SHOWN_TYPE}.{{0,200}}? while {_SHOWN_TYPE} was expected)",
    rf"(?-i:expected {_SHOWN_TYPE} but found {_SHOWN_TYPE}[^\n:]{{0,200}}:)",
    rf"(?-i:cannot (?:add {_SHOWN_TYPE} to (?:an integer|a float|a path)|compare "
    rf"{_SHOWN_TYPE} with {_SHOWN_TYPE}|convert {_SHOWN_TYPE} to JSON))",
    # (<= 2.3 "without a default value")
    r"cannot (?:auto-call|evaluate) a function that has an argument without a (?:default )?"
    r"value \(['‘]",
    r"list index -?\d{1,20} is out of bounds",
    r"['‘]tail['’] called on an empty list",
    rf"string {_NAMED} doesn't represent an absolute path",
    r"stack overflow(?: \(possible infinite recursion\)|; max-call-depth exceeded)",
    r"expression does not evaluate to a derivation \(or a set or list of those\)",
    # a file of a source tree the evaluation reads (a flake's, an input's: "…-source"), missing
    # (2.20+ "path '…' does not exist", 2.4-2.19 "getting status of '…': No such file or
    # directory")
    r"(?:path ['‘]/nix/store/[0-9a-z]{32}-source/[^'’\n]{1,4096}['’] does not exist\b(?! in )|"
    r"getting status of ['‘]/nix/store/[0-9a-z]{32}-source/[^'’\n]{1,4096}['’]: No such file or "
    r"directory)",
    # attr-path.cc (nix-build -A, nix-instantiate -A), findFile, libflake
    rf"attribute {_NAMED} in selection path {_NAMED} not found",
    rf"file {_NAMED} was not found in the Nix search path",
    rf"flake {_NAMED} does not provide attribute ",
    r"cannot call ['‘]getFlake['’] on unlocked flake reference",
    # libflake computing a flake's lock file, and the command line checking a flake's outputs
    # (flake.cc, lockfile.cc, installable-flake.cc, flake-command's check and app/template
    # checks; 2.4-2.35, Lix): each names the flake, input, file or attribute it is about
    rf"flake {_NAMED} requires lock file changes but they're not allowed",
    rf"input {_NAMED} follows a non-existent input {_NAMED}",
    rf"path {_NAMED} is not part of a flake",
    rf"['‘]flake\.nix['’] file of flake {_NAMED} escapes from",
    rf"lock file contains (?:unlocked input|mutable lock) {_NAMED}",
    rf"cannot update unlocked flake input {_NAMED}",
    rf"found circular import of flake {_NAMED}",
    rf"(?:flake|app|template) {_NAMED} lacks attribute {_NAMED}",
    rf"flake (?:output )?attribute {_NAMED} is not a derivation",
    r"expression does not evaluate to a derivation, so I can't build it",
    r"unable to find a flake before encountering filesystem boundary at ['‘]",
    r"could not parse ['‘][^'’\n]{0,4096}flake\.lock['’]",
)
# words one of which each of _EVALUATOR_SAYS holds (its first letter left off: a title may
# capitalise it): a cheap look before the patterns
_EVALUATOR_WORDS = ("ndefined variable", "issing", "alled with", "lready defined at",
                    "ssertion ", "ivision by zero", "rror message: ",
                    "llowed to refer to a store path", "not a function but", "to a string",
                    "was expected", "but found", "annot add ", "annot compare ", " to JSON",
                    "rgument without a", "out of bounds", "n empty list",
                    "t represent an absolute path", "tack overflow",
                    "oes not evaluate to a derivation", "-source/", "n selection path",
                    "Nix search path", "oes not provide attribute", "getFlake",
                    "lock file", "non-existent input", "part of a flake", "file of flake",
                    "flake input", "mport of flake", "lacks attribute", " is not a derivation",
                    "t build it", "ilesystem boundary", "flake.lock")
_EVALUATOR_SAID = "(?:" + "|".join(_EVALUATOR_SAYS) + ")"
# ... quoted: a code span's or double quotes' whole text
_EVALUATOR_QUOTED = re.compile(r"\s{0,8}" + _EVALUATOR_SAID, re.IGNORECASE)
# ... opening a line (its group 1 from the message on), or in a markdown heading (a report's
# title: "# Upgrade to 24.05: attribute 'x' missing"; "# anonymous function at …:1:1 called with
# unexpected argument 'guile'")
# (also after "error:" eaten to its last letters, "or: ", "r: ", ": "; "rror: " and "ror: "
# are _HEADS' eaten head)
_EVALUATOR_OPENS = re.compile(r"^" + _QUOTE_MARKS + r"[ \t*_`\"-]{0,12}(?:(?:or|r)?: )?("
                              + _EVALUATOR_SAID + r"[^\n]{0,2000})", re.IGNORECASE)
_EVALUATOR_TITLE = re.compile(r"^ {0,3}#{1,6}[ \t][^\n]{0,300}?(" + _EVALUATOR_SAID
                              + r"[^\n]{0,2000})", re.IGNORECASE)


def _evaluators_words(text: str) -> re.Match[str] | None:
    """One of the evaluator's messages that name what they are about (_EVALUATOR_SAYS), its
    "error:" lost: quoted whole in a sentence (its group 1 the quote), opening the line or in a
    report's title (its group 1 from the message on); not the words in a writer's sentence."""
    if not any(word in text for word in _EVALUATOR_WORDS):
        return None
    for quote in (*_CODE_SPAN.finditer(text), *_DOUBLE_QUOTED.finditer(text)):
        if _EVALUATOR_QUOTED.match(quote[1]):
            return quote
    return _EVALUATOR_OPENS.match(text) or _EVALUATOR_TITLE.match(text) or _eaten_opening(text)


# the first words of _EVALUATOR_SAYS' messages, and the line's first letters a copy ate (a
# terminal's selection, a viewer's left edge): "ttribute 'x' missing", "lue is null while a set
# was expected", "unction 'f' called without required argument 'x'"; 3 letters left at least
_EVALUATOR_FIRST = ("undefined", "attribute", "required", "dynamic", "function", "anonymous",
                    "assertion", "division", "evaluation", "value", "expected", "cannot",
                    "attempt", "list", "string", "stack", "expression", "path", "getting",
                    "file", "flake")
_EATEN_OPENING = re.compile(_QUOTE_MARKS + r"[ \t*_`\"-]{0,12}([a-z]{3,12}) ")


def _eaten_opening(text: str) -> re.Match[str] | None:
    """_EVALUATOR_OPENS' reading of a line whose first word a copy ate into, the word put back
    (its group 1 the message, whole)."""
    m = _EATEN_OPENING.match(text)
    if m is None:
        return None
    kept = m[1]
    return next((said for word in _EVALUATOR_FIRST if word.endswith(kept) and word != kept
                 and (said := _EVALUATOR_OPENS.match(word[:-len(kept)] + text[m.start(1):]))),
                None)


# The general reader of Nix's words (issue #26): Nix's own phrases that open a failure message,
# found anywhere in a line (a writer's sentence, a code span, a table cell, a list item, after a
# tool's prefix or glued to other text) and as a copy damaged them (a line's first letters eaten:
# "ilder for", "annot build", "rror: "; a store path whose quote was lost, hash OCR'd or ".drv"
# misread, the line cut). Each head is read with what Nix prints after it, as Nix printed it,
# and classified by the patterns above (_build_diagnosis, diagnose_eval). Against false reds
# (a manual, a changelog, prose explaining an error, Nix's own format strings): a build's head
# counts only with its subject, a store path (what prose about Nix has none of); the evaluator's
# words (no store path to say a run printed them) only with Nix's "error:" before them (read
# as such in `_line_failure`) or alone on their line (`_EVAL_ALONE`): a sentence naming
# "undefined variable 'x'" or "infinite recursion encountered", in a code span too, is a
# manual's or a writer's explanation as often as a report.
_SUBJECT = r"['‘`\"]?/nix/store/"


def _eaten(word: str, keep: int) -> str:
    """A word of Nix's whole, or with up to its first letters but `keep` eaten by a copy."""
    return "|".join(re.escape(word[at:]) for at in range(len(word) - keep + 1))


# (a head's first word as a copy may hold it is group "w_WORD", eaten into, or "g_WORD", whole,
# glued to what stands before it: `_as_nix_printed` puts it back as Nix printed it. A new head
# needs a word of its own in `_HEAD_WORDS`, and one of `_HEAD_FAILS` after its start)
_HEADS = (
    rf"(?:(?<![A-Za-z])(?P<w_builder>{_eaten('builder', 4)})|(?P<g_builder>builder))"
    rf"(?= for {_SUBJECT})",
    # (2.29+ "Cannot build '…'.", older "cannot build derivation '…': N dependencies couldn't be
    # built", "cannot build missing derivation '…'"; the case as the copy holds it)
    rf"(?:(?<![A-Za-z])(?P<w_Cannot>{_eaten('annot', 4)})|(?P<g_Cannot>[Cc]annot))"
    rf"(?= build (?:(?:missing )?derivation )?{_SUBJECT})",
    rf"(?:(?<![A-Za-z])(?P<w_build>{_eaten('uild', 4)})|(?<![A-Za-z-])(?P<g_build>build))"
    rf"(?= of {_SUBJECT})",
    rf"(?:(?<![A-Za-z])(?P<w_hash>{_eaten('ash', 3)})|(?P<g_hash>hash))"
    rf"(?= mismatch in fixed-output derivation {_SUBJECT})",
    rf"(?<!\d)\d{{1,6}} dependenc(?:y|ies) of derivation {_SUBJECT}",
    rf"fixed-output derivation produced path {_SUBJECT}",
    rf"building of ['‘`]/nix/store/[^'’\s]{{1,{_NAME}}}['’][^\n]{{0,{_NEAR}}}? timed out "
    r"after \d",
    r"\ba ['‘][\w.-]{1,60}['’](?: with features \{[^}\n]{0,1000}\})? is required to build "
    + _SUBJECT,
    # Nix's other messages about a store path it names first (substitution, output checks, a
    # build's result, a dependency missing): the same words _PATTERNS reads
    r"(?:some substitutes for the outputs of derivation|cannot substitute path|could not download|"
    r"illegal path references in fixed-output derivation|fixed-output derivations must not "
    r"reference store paths:|build of resolved derivation|failed to obtain derivation of|"
    r"(?:(?:ca )?hash|size) mismatch importing path|suspicious ownership or permission on|some "
    r"dependencies of|some references of path|hash mismatch in downloaded path|substitute did "
    r"not produce path) " + _SUBJECT,
    # (Nix 1.x's substituter process failing; "fetching path ‘…’..." alone is its progress)
    r"fetching path ['‘]/nix/store/[^'’\s]{1,255}['’] (?=failed|died)",
    r"\b(?:(?:closure of )?path|derivation output|output|derivation|dependency) ['‘]/nix/store/"
    r"[^'’\s]{1,255}['’] (?=is required, but there is no substituter|is too large at|is not "
    r"allowed to (?:refer to|have direct)|may not be deterministic|of ['‘]/nix/store/)",
    # (nixpkgs' check-meta names the package and where it is defined, a file and its line)
    r"\bPackage ['‘][^'’\n]{1,300}['’] in \S{1,1000}:\d+ is not available on the requested "
    r"hostPlatform",
    # 2.29+'s "Reason:" eaten into, before one of Nix's reasons (derivation-building-goal.cc)
    r"(?:^|(?<=[\s>`*_|]))(?P<w_Reason>eason|ason)(?=: (?:builder |\d+ dependenc|required "
    r"system|platform mismatch|missing system features|local builds are disabled))",
    # Nix's "error:" with its first letters eaten, opening the line (after markdown's marks)
    r"^[\s>*_`|-]{0,20}(?P<w_error>r?ror)(?=: \S)",
    # Nix 1.x's Perl tools failing to load their Nix::Store binding (perl-store-unloadable)
    r"Can't load '[^'\n]{1,1000}/auto/Nix/Store/Store\.so' (?=for module Nix::Store: )",
    # Nix 1.x's hash mismatch of a fixed output, named by its output path (hash-mismatch-1x),
    # also glued to the end of the builder's last line (no newline before it)
    r"output path " + _SUBJECT + r"[^'’\s]{1,255}['’] (?=(?:should have|has) (?:r:)?\w{1,20} "
    r"hash ['‘])",
)
_NIX_HEAD = re.compile("|".join(f"(?:{pattern})" for pattern in _HEADS))
_NIX_HEAD_CHOICE = Choice(_NIX_HEAD)  # (searched by its alternatives' literals)
# words one of which each of `_HEADS` holds: a cheap look first (a huge log's every line; the
# heads' alternation costs some 20 times as much on a line holding none)
_HEAD_WORDS = re.compile(r"lder for |nnot build |uild of |sh mismatch in fixed-output derivation "
                         r"| dependenc|produced path |building of |is required|substitut|could "
                         r"not download|illegal path references|must not reference|failed to "
                         r"obtain|mismatch importing|mismatch in downloaded|fetching path|"
                         r"suspicious ownership|references of path|is too large at|is not "
                         r"allowed to|may not be deterministic|of ['‘]/nix/store/|not "
                         r"available on the requested|ason: |ror: |output path |Can't load ")
# a head's reading needs no more of the line than Nix's own line can hold: what a writer, or a
# hostile builder, puts after it is not classified again for each head
_SAID_MAX = 1000


def _nix_head(text: str) -> re.Match[str] | None:
    """The first of Nix's heads in a line (`_NIX_HEAD`)."""
    return _NIX_HEAD_CHOICE.search(text) if _HEAD_WORDS.search(text) else None


_HEADS_READ = 8
# a head's subject as Nix printed it, hash and all (after the head's word: no writer's stand-in
# "…-name.drv", "<hash>-name.drv")
_WHOLE_SUBJECT = re.compile(r"[^\n]{0,120}?/nix/store/[0-9a-z]{32}-")
_FAILED_WORD = re.compile(r"\bfailed\b(?::[^\n]*)?")
# the end of a head's subject, a store path in its quotes (and the full stop after it)
_EXIT_CODE_END = re.compile(r"[^\n]{0,600}? failed with exit code \d{1,9}")
_SUBJECT_END = re.compile(r"^[^'’‘`]{0,40}?['‘`]?/nix/store/[^'’\s]{1,255}['’]\.?")


def _as_nix_printed(m: re.Match[str]) -> str:
    """The text from a head as Nix printed it: its first word whole (`_HEADS`' groups "w_WORD",
    the word a copy may have eaten into, and "g_WORD", the word whole), up to the end of the
    code span the head stands in (what follows it is the writer's)."""
    text = m.string
    held = next(((name[2:], m.start(name), value) for name, value in m.groupdict().items()
                 if value is not None), None)
    start = m.start() if held is None else held[1]
    said = text[start:start + _SAID_MAX]
    if held is not None:
        word, _, value = held
        if word == "Cannot" and (value[0] == "c" or said.startswith(
                (f"{value} build derivation", f"{value} build missing"))):
            word = "cannot"  # (before 2.29: "cannot build derivation '…': N dependencies …")
        said = word + said[len(value):]
    if text.count("`", 0, start) % 2 == 1 and "`" in said:
        said = said[:said.index("`")]  # (the code span it stands in ends there)
    return said.strip()


def _read_nix_words(text: str) -> Diagnosis | None:
    """The failure Nix's own words say anywhere in one line (`_NIX_HEAD`), classified as Nix
    printed them: the first head that says more than that something failed; None where no
    head is in the line or none says what failed."""
    read = _nix_words_read(text)
    return None if read is None else read[0]


def _nix_words_read(text: str) -> tuple[Diagnosis, str] | None:
    """`_read_nix_words`' failure and Nix's words it read it from (the head to where Nix's line
    ends)."""
    summary = None
    # (the first few: each is read to the line's end, so a line of many costs no square time)
    for m in itertools.islice(_NIX_HEAD.finditer(text), _HEADS_READ):
        said = _as_nix_printed(m)
        # (as it is; else cut where Nix's line ends, after "failed" or after its subject: what
        # follows in the line is the writer's)
        cuts = (_FAILED_WORD.search(said), _SUBJECT_END.search(said))
        for candidate in dict.fromkeys([said, *(said[:cut.end()] for cut in cuts if cut)]):
            found = _build_diagnosis(candidate) or diagnose_eval(
                candidate if _ERROR_LINE.match(candidate) else f"error: {candidate}")
            if found.kind is Kind.SUMMARY:
                summary = summary or (found, candidate)
            elif (found.type, found.kind) != (FailureType.OTHER, Kind.ERROR):
                return replace(found, log=""), _nix_line_end(candidate)
        cut = _cut_reading(said) if summary is None and text.count("`", 0, m.start()) % 2 == 1 \
            and "`" in text[m.start():m.start() + _SAID_MAX] else None
        if cut is not None:  # (Nix's line cut where the writer's code span ends, as a text's end)
            return cut, said
    return summary


def _nix_line_end(said: str) -> str:
    """Nix's words up to where Nix's line ends: a builder's header ends at its exit code where
    a writer's words follow it ("… failed with exit code 2 when I run it:"; 2.3's "; last N
    log lines:" and 2.4+'s ";" are Nix's own)."""
    end = _EXIT_CODE_END.match(said)
    return said if end is None or said[end.end():].startswith(";") else said[:end.end()]


FAILURE_MARK = re.compile(
    _NIX_HINT.pattern + "|" + _NIX_STATE_ERRNO + "|" + _EVAL_ALONE.pattern + "|"
    r"error\s?:|cannot build|reason:|builder for\b|hash mismatch|timed out|"
    # Nix 1.x's nix-build and nix-shell (Perl) dying after what they ran: "…/nix-shell: failed
    # to build all dependencies", "nix-instantiate killed by signal 9", "…: a single derivation
    # is required"
    r"\bfailed to build all dependencies\b|\bnix-(?:instantiate|store) killed by signal \d|"
    r"\ba single derivation is required\b|"
    + _DISK_SPACE_NOTE.pattern + "|"
    r"failed with exit code|failed to find a machine|required (?:system|features):|"
    # two packages of a user environment or buildEnv with one file: its builder dies of it
    rf"collis?sion between {_Q}?/nix/store/|"
    r"specified:\s*\S+\s+got:|" + _ALIAS_THROW + "|" + _SHELL_FATAL + "|" + _ERROR_VALUE + "|"
    + _REFUSAL.pattern
    + "|" + _MODULE_MESSAGE.pattern + "|" + _EVAL_MODE_REFUSAL.pattern + "|" + _CRASH.pattern
    + "|" + _INVALID_PATH.pattern,
    re.IGNORECASE)


# (its "(?-i:…)" parts fold too: it finds a place before or at FAILURE_MARK's first, never after)
_FAILURE_MARK_FOLDED = ascii_folded(FAILURE_MARK, exact=False)
_FAILURE_MARK_FOLDED_CHOICE = Choice(_FAILURE_MARK_FOLDED)


@logshape.per_line  # (two in five asks are of a line asked before)
def _says_a_failure_at(text: str) -> re.Match[str] | None:
    """Where a line says something failed (`FAILURE_MARK`), or the first of Nix's heads in it
    (`_NIX_HEAD`) where the general reader reads a failure from them: a head alone says none
    ("Successful build of '/nix/store/…'", "copying output '…' of '/nix/store/…'")."""
    if text.isascii():  # (where the fold finds none, none is; else the first is from there on)
        first = _FAILURE_MARK_FOLDED_CHOICE.search(text.lower())
        m = None if first is None else FAILURE_MARK.search(text, first.start())
    else:
        m = FAILURE_MARK.search(text)
    if m is None and (m := _nix_head(text)) is not None \
            and _HEAD_FAILS.search(text, m.start()) is None:
        return None
    return m


# the words of failure Nix's messages under `_HEADS` hold from the head on, one at least (2.3's
# "output '…' of '…' differs from '…' from previous round" too, which no pattern reads): a
# head without any says none, and is not read (a line of a huge log each)
_HEAD_FAILS = re.compile(r"fail|differ|mismatch|\bnot\b|cannot|nnot build|couldn't|missing|invalid|"
                         r"refus|timed out|too large|illegal|suspicious|required|instead|"
                         r"was expected|ror: ", re.IGNORECASE)
# lines that say it and are no failure: Nix's warnings and traces, an error Nix ignored
_NOT_A_FAILURE = re.compile(r"^[\s*_`]*(?:warning|evaluation warning|trace|error \(ignored\))"
                            r"[*_`]*:", re.IGNORECASE)  # (also with markdown's marks)


# the field a tool's error ends on where the child's output it relays follows (logshape puts
# the child's first line, glued after it, on a line of its own)
_RELAY_FIELDS = tuple(f"{key}=" for key in logshape.RELAY_KEYS)


def _relays_output(text: str) -> bool:
    """Whether a tool's line only introduces the output of a child it relays (omnix's "Error:
    Command error: Process exited unsuccessfully. exit_code=Some(1) stderr=", Nix's stderr
    after it): it says that the child failed; what failed, the child's lines say (its own
    "error:" there is no error line of Nix's, but a wrapper's)."""
    return text.rstrip().endswith(_RELAY_FIELDS)


def _a_record(text: str) -> bool:
    """Whether a line is a whole internal-json record (which its reader has read)."""
    return text.startswith(nixlog.PREFIX) and not isinstance(nixlog.LogParser().parse(text),
                                                             nixlog.Unreadable)


def _span_wrapped(line: logshape.Line, following: Sequence[logshape.Line]) -> str | None:
    """A line whose last code span a hard wrap broke (markdown reads its lines joined by a
    blank), one of Nix's messages inside it ("report `failed to" / "start SSH connection to
    …`"): the span, rejoined; None otherwise. The span is what follows the line's last
    backtick and what precedes the next line's first (normalising may have taken a span's mark
    at a line's start, so the marks are not counted)."""
    # (nor an internal-json record's: a build-log record is a builder's line, an error
    # record's message is read whole as Nix's, `_says_failed`)
    if line.builder is not None or not following or following[0].builder is not None \
            or line.text.startswith(nixlog.PREFIX) or following[0].text.startswith(nixlog.PREFIX):
        return None
    before, mark, tail = line.text.rpartition("`")
    head, closes, _ = following[0].text.partition("`")
    if not mark or not closes or not tail.strip() or not head.strip():
        return None
    span = f"{tail.strip()} {head.strip()}"
    # (the span alone, as the writer quoted it: what stands around it is the writer's)
    return f"`{span}`" if _NIX_MESSAGE.match(span) else None


def _says_failed(line: logshape.Line) -> str | None:
    """The text of a normalised line that says something failed; None for a line that does not,
    or is not Nix's own report: a builder's output (`nix build -L`'s `name> `, or a progress bar
    showing a build's last line), a warning, trace or ignored error, an internal-json record
    other than an error message."""
    if line.builder is not None or _NOT_A_FAILURE.match(line.text) \
            or _relays_output(line.text):
        return None
    if line.text.startswith(nixlog.PREFIX):
        event = nixlog.LogParser().parse(line.text)
        if isinstance(event, nixlog.Message) and event.is_error:
            text = clean(event.text)
        elif isinstance(event, nixlog.Unreadable):
            text = line.text  # cut short or garbled: its words are all there is
        else:
            return None
    else:
        text = line.text
    text, m = _failure_mark(text)
    bar = logshape.BAR.search(text)
    if m is None or (bar is not None and bar.start() < m.start()) or _NOT_A_FAILURE.match(text):
        return None
    return text


# markdown's emphasis and code marks, which a page's copy may put inside Nix's words
# ("**error**: …", "`error`: …", "__Error__:")
_MARKUP = re.compile(r"[*_`]+")


def _failure_mark(text: str) -> tuple[str, re.Match[str] | None]:
    """(text, where it says something failed): as it is, else without markdown's marks, which
    split a word from its colon (the text is then returned without them)."""
    m = _says_a_failure_at(text) or _quoted_nix_message(text) or _quoted_nixpkgs_throw(text) \
        or _evaluators_words(text)
    if m is None and _MARKUP.search(text):
        plain = _MARKUP.sub("", text)
        m = _says_a_failure_at(plain)
        text = plain if m is not None else text
    return text, m


def failure_line(shaped: Sequence[logshape.Line], raw: Sequence[str]) -> tuple[int, str] | None:
    """(origin, text) of the first line of a captured log that says something failed.

    Looks at Nix's lines as normalised and, in case normalising lost the words (a record
    field it did not take the message from, a prefix it misread), at each captured line whose
    normalised lines are neither such a report nor what is excluded from it (`_says_failed`)."""
    excluded: set[int] = set()
    # a terminal recording's line comes in the events from the one the line before it ended
    # in: a builder's line is theirs too (its `name> ` may stand in an event before its words)
    recording = logshape.recording_header(raw) is not None
    after = 0
    # the captured lines a line excluded was joined from (a viewer's wrap marks, a mail's soft
    # breaks): up to the next line's, theirs too (a builder's long line a viewer wrapped put its
    # rest, "…-victim-2.0.drv' failed with exit code 2", on a captured line of its own)
    joined: int | None = None
    for at, line in enumerate(shaped):
        if joined is not None and not recording:
            excluded.update(range(joined + 1, line.origin))
        joined = None
        text = _says_failed(line) or _span_wrapped(line, shaped[at + 1:at + 2])
        if text is not None:
            return line.origin, text
        if line.builder is not None or _NOT_A_FAILURE.match(line.text) \
                or line.text.startswith(nixlog.PREFIX) or logshape.BAR.search(line.text) \
                or _relays_output(line.text):
            excluded.update(range(after, line.origin + 1) if recording else (line.origin,))
            joined = line.origin
        after = line.origin
    if joined is not None and not recording:
        excluded.update(range(joined + 1, len(raw)))
    for origin, captured in enumerate(raw):
        if origin in excluded:
            continue
        # every part, also what a carriage return hid on a terminal
        text, m = _failure_mark(clean(captured))
        if m is not None and not _NOT_A_FAILURE.match(text):
            return origin, text.strip()
    return None

_OOM_WORDS = re.compile(r"Killed signal terminated program|Out of memory|out of memory|"
                        r"std::bad_alloc|signal: 9, SIGKILL")


def _with_oom_hint(diag: Diagnosis) -> Diagnosis:
    # compilers killed by the OOM killer often make the builder exit non-zero, not by signal
    if diag.hint is None and _OOM_WORDS.search(diag.log):
        return replace(diag, kind=Kind.OOM, hint=HINTS[Kind.OOM])
    return diag


MAX_LOG_BYTES = 256 * 1024 * 1024  # a captured log read to its end (past it: pass its end)


def read_log(path: Path) -> CondensedLog:
    """A captured log's lines (undecodable bytes replaced; Nix logs are not always UTF-8),
    split at line feeds only, as an editor numbers them: a terminal capture's carriage returns
    (Nix's progress bar redrawn over itself) and a page's line separators stay inside a line,
    where the normaliser reads them as the terminal showed them. Read as it streams in,
    condensed as parse_log reads it (`logtext.condensed`): a huge log is never held whole. A
    file, or a pipe (`<(nix build … 2>&1)`) read to its end however long the build takes:
    OSError when it cannot be opened, ValueError for anything else or past MAX_LOG_BYTES."""
    return logtext.condensed_bytes(files.given_chunks(path, MAX_LOG_BYTES, timeout=math.inf))
