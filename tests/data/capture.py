#!/usr/bin/env python3
"""Re-capture the local part of the diagnosis corpus from real Nix runs.

Each case below is a tiny flake that fails in one known way. For every Nix available
(`nix` = 2.8 from Debian, /work/shared/tools/nix-modern = 2.26) and every mode of the case it
writes tests/data/nix-<version>/<case>.<mode>.log with Nix's stderr, and a sidecar
<case>.<mode>.expected.json with the classification tests/test_diagnose_corpus.py checks.

Modes: `text` = `nix build REF#ATTR 2>&1`, `json` = the same with `--log-format internal-json`,
`helper` = the evaluation error as ci-nix sees it through its own helper flake, `tty` = `nix build`
on a terminal (util-linux `script`), where the progress bar and the error share a line.

    .venv/bin/python tests/data/capture.py [--only CASE]...

Store paths are content-addressed, so a re-capture writes the same paths; `--timeout` cases
depend on the clock only in their duration.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from ci_nix.tools.nix import Nix, parse_worker_line  # noqa: E402 (needs the sys.path insert above)

WORK = Path("/tmp/ci-nix-corpus")  # fixed, so messages that name the flake are stable
NIXES = {"2.8": "nix", "2.26": str(ROOT.parent / "shared" / "tools" / "nix-modern")}
NIX_CONFIG = "substituters =\nsandbox = false\n"
MARK = "@@"  # where in flake.nix the error position must point (removed before writing)

PRELUDE = """{
  outputs = { self }:
    let
      mk = name: text: extra: derivation ({
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" text ];
        PATH = "/usr/bin:/bin";
      } // extra);
    in {
"""
POSTLUDE = """    };
}
"""


@dataclass(frozen=True)
class Case:
    name: str
    body: str  # inserted between PRELUDE and POSTLUDE; may contain MARK
    expected: dict[str, Any]
    modes: tuple[str, ...] = ("text",)
    attr: str = "packages.x86_64-linux.default"
    args: tuple[str, ...] = ()
    extra_files: dict[str, str] = field(default_factory=dict)  # tracked
    untracked: dict[str, str] = field(default_factory=dict)
    # per "VERSION" or "VERSION/MODE": fields that differ (2.8 prints no position for `throw`
    # without the trace)
    by_version: dict[str, dict[str, Any]] = field(default_factory=dict)
    at_mark: bool = False  # expect file/line/col at MARK


EVAL = ("text", "helper")
BUILD = ("text", "json")

CASES = [
    Case("throw", '      packages.x86_64-linux.default = @@throw "the package is marked broken";\n',
         {"type": "eval", "kind": "throw", "message": "the package is marked broken"},
         EVAL, at_mark=True,
         by_version={"2.8/text": {"kind": "error", "file": None, "line": None, "column": None},
                     # the trace of 2.8's worker blames the attribute, not the throw in it
                     "2.8/helper": {"kind": "error", "column": 7}}),
    Case("missing-attribute",
         "      packages.x86_64-linux.default = @@self.packages.x86_64-linux.nope;\n",
         {"type": "eval", "kind": "missing-attribute", "message": "attribute 'nope' missing",
          "hint": "follows"}, EVAL, at_mark=True),
    Case("assert",
         '      packages.x86_64-linux.default = @@assert 1 == 2; mk "a" "true" { };\n',
         {"type": "eval", "kind": "assert", "message": "assertion"}, EVAL, at_mark=True),
    Case("type-error",
         '      packages.x86_64-linux.default = mk "t" "true" { n = 1 + @@"a"; };\n',
         {"type": "eval", "kind": "type", "message": "cannot add a string to an integer"},
         EVAL, at_mark=True),
    Case("infinite-recursion",
         "      packages.x86_64-linux.default = let x = @@x + 1; in x;\n",
         {"type": "eval", "kind": "infinite-recursion", "message": "infinite recursion",
          "hint": "mkIf"}, EVAL, at_mark=True),
    Case("undefined-variable",
         "      packages.x86_64-linux.default = @@nosuchthing;\n",
         {"type": "eval", "kind": "undefined-variable",
          "message": "undefined variable 'nosuchthing'"},
         EVAL, at_mark=True),
    Case("syntax-error", "      packages.x86_64-linux.default = { ;\n",
         {"type": "eval", "kind": "syntax", "message": "syntax error", "file": "flake.nix",
          "line": 12, "column": 41}, ("text",)),
    Case("untracked-file",
         "      packages.x86_64-linux.default = import ./generated.nix;\n",
         {"type": "eval", "kind": "untracked-file", "file": "generated.nix",
          "hint": "git add", "line": None}, EVAL, untracked={"generated.nix": "1\n"}),
    Case("missing-store-path",
         "      packages.x86_64-linux.default = builtins.readFile"
         ' "/nix/store/00000000000000000000000000000000-gone/data";\n',
         {"type": "eval", "kind": "missing-store-path", "hint": "binary cache",
          "message": "/nix/store/00000000000000000000000000000000-gone/data"}, ("text",),
         args=("--impure",)),
    Case("flake-attr-missing", '      packages.x86_64-linux.default = mk "x" "true" { };\n',
         {"type": "eval", "kind": "missing-flake-output", "hint": "nix flake show",
          "message": "does not provide attribute"}, ("text",),
         attr="packages.x86_64-linux.defualt"),
    Case("download",
         '      packages.x86_64-linux.default = builtins.fetchurl "http://127.0.0.1:9/src.tar.gz";\n',
         {"type": "other", "kind": "download", "message": "unable to download"}, ("text",),
         args=("--impure", "--option", "connect-timeout", "2")),
    Case("builder-exit",
         '      packages.x86_64-linux.default = mk "broken-1.0" \'\'\n'
         '        echo "compiling broken-1.0"\n'
         "        echo \"broken.c:3: error: expected ';' before '}' token\" >&2\n"
         "        exit 2\n"
         "      '' { };\n",
         {"type": "build", "kind": "builder", "drv": "broken-1.0.drv", "exit_code": 2,
          "log": "expected ';' before", "count": 1,
          "message": "builder for broken-1.0.drv failed with exit code 2"}, BUILD),
    # builtin:fetchurl: Nix's own download fails in the builder, which then exits 1
    Case("fetchurl",
         '      packages.x86_64-linux.default = derivation {\n'
         '        name = "src.tar.gz"; system = "x86_64-linux"; builder = "builtin:fetchurl";\n'
         '        url = "http://127.0.0.1:9/src.tar.gz";\n'
         '        urls = [ "http://127.0.0.1:9/src.tar.gz" ];\n'
         '        unpack = false; executable = false; outputHashMode = "flat";\n'
         '        outputHashAlgo = "sha256";\n'
         '        outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };\n',
         {"type": "other", "kind": "download", "drv": "src.tar.gz.drv", "count": 1,
          "message": "unable to download http://127.0.0.1:9/src.tar.gz: Co"}, BUILD,
         args=("--option", "connect-timeout", "2")),
    Case("dependency",
         '      packages.x86_64-linux.default = mk "uses-broken-1.0" "cat $dep > $out"\n'
         '        { dep = mk "broken-dep-1.0" "echo dep is broken; exit 3" { }; };\n',
         {"type": "dependency", "kind": "dependency", "drv": "uses-broken-1.0.drv",
          "dependency": "broken-dep-1.0.drv", "exit_code": 3, "count": 2,
          "message": "broken-dep-1.0"}, BUILD),
    Case("hash-mismatch",
         '      packages.x86_64-linux.default = mk "fod-1.0" "echo fixed > $out" {\n'
         '        outputHashMode = "flat"; outputHashAlgo = "sha256";\n'
         '        outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };\n',
         {"type": "hash-mismatch", "kind": "hash-mismatch", "drv": "fod-1.0.drv",
          "specified": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          "got": "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=",
          "hint": "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ="}, BUILD),
    Case("timeout",
         '      packages.x86_64-linux.default = mk "slow-1.0" "echo working; sleep 30" { };\n',
         {"type": "timeout", "kind": "timeout", "drv": "slow-1.0.drv"}, BUILD,
         args=("--option", "timeout", "2")),
    Case("max-silent-time",
         '      packages.x86_64-linux.default = mk "silent-1.0" "echo start; sleep 30" { };\n',
         {"type": "timeout", "kind": "max-silent-time", "drv": "silent-1.0.drv"}, BUILD,
         args=("--option", "max-silent-time", "2")),
    Case("platform",
         '      packages.x86_64-linux.default = mk "arm-only-1.0" "true"'
         ' { system = "aarch64-linux"; };\n',
         {"type": "platform", "kind": "platform", "drv": "arm-only-1.0.drv",
          "hint": "aarch64-linux"}, BUILD),
    Case("system-feature",
         '      packages.x86_64-linux.default = mk "needs-kvm-1.0" "true"\n'
         '        { requiredSystemFeatures = [ "ci-nix-nonexistent" ]; };\n',
         {"type": "platform", "kind": "system-feature", "drv": "needs-kvm-1.0.drv",
          "hint": "ci-nix-nonexistent"}, BUILD),
    Case("signal",
         '      packages.x86_64-linux.default ='
         ' mk "killed-1.0" "echo about to die; kill -9 $$" { };\n',
         {"type": "build", "kind": "oom", "drv": "killed-1.0.drv", "hint": "memory",
          "log": "about to die"}, BUILD),
    # On a terminal the error is drawn over the progress bar (`\r\e[K`), on the line that showed
    # the builder's own "error:" output a moment before.
    Case("progress-bar",
         '      packages.x86_64-linux.default = mk "slow-broken-1.0" \'\'\n'
         '        echo "compiling slow-broken-1.0"; sleep 2\n'
         '        echo "main.c:1: error: boom" >&2\n'
         "        exit 2\n"
         "      '' { };\n",
         {"type": "build", "kind": "builder", "drv": "slow-broken-1.0.drv", "exit_code": 2,
          "log": "main.c:1: error: boom", "count": 1,
          "message": "builder for slow-broken-1.0.drv failed with exit code 2"}, ("tty",)),
    Case("no-output",
         '      packages.x86_64-linux.default = mk "lazy-1.0" "echo did nothing" { };\n',
         {"type": "build", "kind": "no-output", "drv": "lazy-1.0.drv"}, BUILD),
    # wordings tests/data/sources rebuilt from the sources, as these two versions print them
    # (2.26 throws a raw string literal: a bare "error:", then the text indented by 27)
    Case("max-jobs-zero",
         '      packages.x86_64-linux.default = mk "queued-1.0" "true" { };\n',
         {"type": "platform", "kind": "platform"}, BUILD, args=("--option", "max-jobs", "0")),
    Case("log-limit",
         '      packages.x86_64-linux.default = mk "chatty-1.0" "echo a lot of output" { };\n',
         {"type": "build", "kind": "log-limit", "drv": "chatty-1.0.drv"}, BUILD,
         args=("--option", "max-build-log-size", "3")),
    Case("disallowed-references",
         '      packages.x86_64-linux.default = let dep = mk "dep-1.0" "echo > $out" { }; in\n'
         '        mk "refs-1.0" "echo ${dep} > $out" { disallowedReferences = [ dep ]; };\n',
         {"type": "build", "kind": "output-check"}, BUILD),
    Case("fod-references",
         '      packages.x86_64-linux.default = let dep = mk "dep-1.0" "echo > $out" { }; in\n'
         '        mk "source.tar.gz" "echo ${dep} > $out" { outputHashMode = "flat";\n'
         '          outputHashAlgo = "sha256";\n'
         '          outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };\n',
         {"type": "hash-mismatch", "kind": "fod-references"}, BUILD,
         # Nix 2.8 fails an assertion on it (makeFixedOutputPath: references.empty())
         by_version={"2.8": {"type": "other", "kind": "nix"}}),
    # build-remote: no builder has the system ("Failed to find a machine for remote build!",
    # then "Unable to start any build"); the one builder with it cannot be reached
    Case("no-machine",
         '      packages.x86_64-linux.default = mk "remote-1.0" "true" { };\n',
         {"type": "platform", "kind": "platform", "drv": "remote-1.0.drv"}, ("text",),
         args=("--option", "max-jobs", "0", "--option", "builders",
               "ssh://127.0.0.1:1 aarch64-linux")),
    Case("builder-down",
         '      packages.x86_64-linux.default = mk "remote-1.0" "true" { };\n',
         {"type": "other", "kind": "nix"}, ("text",),
         args=("--option", "max-jobs", "0", "--option", "builders",
               "ssh://nobody@127.0.0.1:1 x86_64-linux")),
]


def flake_text(case: Case) -> tuple[str, dict[str, Any]]:
    """flake.nix without the marker, and the position the marker stood at."""
    text = PRELUDE + case.body + POSTLUDE
    where: dict[str, Any] = {}
    if MARK in text:
        before = text[: text.index(MARK)]
        where = {"file": "flake.nix", "line": before.count("\n") + 1,
                 "column": len(before) - (before.rfind("\n") + 1) + 1}
        text = text.replace(MARK, "", 1)
    return text, where


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "c", "GIT_AUTHOR_EMAIL": "c@example.com",
           "GIT_COMMITTER_NAME": "c", "GIT_COMMITTER_EMAIL": "c@example.com"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def make_flake(case: Case) -> tuple[Path, dict[str, Any]]:
    repo = WORK / case.name
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    text, where = flake_text(case)
    (repo / "flake.nix").write_text(text)
    for name, content in case.extra_files.items():
        (repo / name).write_text(content)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "corpus case")
    for name, content in case.untracked.items():
        (repo / name).write_text(content)
    return repo, where


def capture(case: Case, version: str, binary: str, mode: str) -> str:
    repo, _ = make_flake(case)
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    ref = f"git+file://{repo}"
    if mode == "helper":
        os.environ["NIX_CONFIG"] = NIX_CONFIG
        nix = Nix.from_env({"CI_NIX_NIX": binary})
        path = case.attr.split(".")
        # one evaluation worker on the one attribute: what it says besides its own trace lines
        worker = nix.eval_worker(ref, {"systems": ["x86_64-linux"], "outputs": ["packages"],
                                       "tasks": [{"path": path}]})
        text = [line for line in worker.lines() if parse_worker_line(line) is None]
        if worker.wait() != 0:
            return "\n".join(text) + "\n"
        raise SystemExit(f"{case.name}: the helper evaluated without an error")
    argv = [binary, "--extra-experimental-features", "nix-command flakes", "build", "--no-link",
            *case.args, *(("--log-format", "internal-json") if mode == "json" else ()),
            f"{ref}#{case.attr}"]
    if mode == "tty":
        # script(1) gives Nix a terminal; what it drew comes out on script's stdout, with the
        # carriage returns that text mode would turn into line ends
        tty = subprocess.run(["script", "-qec", shlex.join(argv), "/dev/null"], check=False,
                             env=env, capture_output=True, timeout=300)
        if tty.returncode == 0:
            raise SystemExit(f"{case.name} ({version}, {mode}): nix build succeeded")
        return tty.stdout.decode()
    proc = subprocess.run(argv, check=False, env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == 0:
        raise SystemExit(f"{case.name} ({version}, {mode}): nix build succeeded")
    return proc.stderr


def expected(case: Case, version: str, mode: str) -> dict[str, Any]:
    _, where = flake_text(case)
    return {**case.expected, **(where if case.at_mark else {}),
            **case.by_version.get(version, {}), **case.by_version.get(f"{version}/{mode}", {}),
            "nix": version, "mode": mode, "source": "tests/data/capture.py case " + case.name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--nix", action="append", default=[], choices=sorted(NIXES))
    parser.add_argument("--expected-only", action="store_true",
                        help="rewrite the .expected.json sidecars without running Nix")
    args = parser.parse_args()
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        for version, binary in NIXES.items():
            if args.nix and version not in args.nix:
                continue
            out = HERE / f"nix-{version}"
            out.mkdir(exist_ok=True)
            for mode in case.modes:
                stem = out / f"{case.name}.{mode}"
                if not args.expected_only:
                    text = capture(case, version, binary, mode)
                    Path(f"{stem}.log").write_text(text, newline="")
                    print(f"nix {version} {case.name} {mode}: {len(text.splitlines())} lines")
                Path(f"{stem}.expected.json").write_text(
                    json.dumps(expected(case, version, mode), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
