#!/usr/bin/env python3
"""Re-capture the internal-json logs tests/test_nixlog.py reads, from real Nix runs.

One flake with two derivations: `dep` prints a few lines, announces a phase the way stdenv does
(an `@nix {"action":"setPhase",...}` line on the builder's stderr) and one line longer than
ci-nix's 64 KiB line limit; `top` depends on it and fails. For each Nix available it writes
nix-<version>.jsonl here with `nix build --keep-going --log-format internal-json`'s stderr.

    .venv/bin/python tests/data/internal-json/capture.py

A nonce in the derivations makes every capture really build (nothing is cached from the last).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
NIXES = {"2.8": "nix", "2.26": str(ROOT.parent / "shared" / "tools" / "nix-modern")}
LONG = 70_000

FLAKE = """{
  outputs = { self }:
    let
      mk = name: text: extra: derivation ({
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" text ];
        PATH = "/usr/bin:/bin";
        nonce = "NONCE";
      } // extra);
    in rec {
      dep = mk "log-dep-1.0" ''
        echo 'first line of dep'
        echo '@nix {"action":"setPhase","phase":"buildPhase"}' >&2
        echo 'second line of dep'
        head -c LONG /dev/zero | tr '\\0' x; echo
        echo 'after the long line'
        echo done > $out
      '' { };
      top = mk "log-top-1.0" ''
        echo "top sees ${dep}"
        echo 'top fails' >&2
        exit 4
      '' { };
    };
}
"""


def main() -> None:
    for version, binary in NIXES.items():
        with tempfile.TemporaryDirectory(prefix="ci-nix-log-") as tmp:
            repo = Path(tmp)
            text = FLAKE.replace("NONCE", str(time.time_ns())).replace("LONG", str(LONG))
            (repo / "flake.nix").write_text(text)
            env = {**os.environ, "NIX_CONFIG": "substituters =\nsandbox = false\n"}
            proc = subprocess.run(
                [binary, "--extra-experimental-features", "nix-command flakes", "build",
                 "--no-link", "--keep-going", "--log-format", "internal-json",
                 f"path:{repo}#top"],
                check=False, env=env, capture_output=True, text=True, timeout=300)
            (HERE / f"nix-{version}.jsonl").write_text(proc.stderr)
            print(version, "exit", proc.returncode, len(proc.stderr.splitlines()), "lines")


if __name__ == "__main__":
    main()
