#!/usr/bin/env python3
"""Generate a synthetic ci-nix workspace: N flakes x M attributes, as real git repos.

Each flake is its own repo (f00, f01, ...) listed in the workspace's ci-nix.yaml. Inside a flake,
attributes form short dependency chains; across flakes, flake i takes flake (i-1)//2 as a
git+file input (a binary tree, so locks stay small) and its first package depends on the
input's first package. Builds do a little real work (hash a few thousand lines). A nonce in
every derivation gives fresh store paths per workspace. Broken attributes are placed on chain
ends, so no good attribute depends on a broken one.

Broken kinds: `build` (the builder exits 1), `throw` and `assert` (caught by tryEval),
`missing` (missing attribute), `type` (type error) and `recursion` (infinite recursion) — the
last three abort a whole evaluation, which is what makes ci-nix bisect.

    python3 bench/generate.py DEST [--flakes 20] [--attrs 15] [--broken throw,build,missing]

Heavy hosts (`--hosts N`): instead, one flake `fleet` with N NixOS-like `nixosConfigurations`.
Each host imports a shared file (a table every host reads: the cost every Nix process pays
once, like nixpkgs) and then pays its own memory and CPU (`--host-mb`: about a second for the
default 256 MB of small values that stay reachable from its configuration, as a real host's
evaluated modules do; `--host-work` adds CPU only). `--broken-host missing` makes the second
host read a missing attribute (an error tryEval cannot catch), `--broken-host forever` makes it
never finish.

    python3 bench/generate.py DEST --hosts 8 [--host-mb 256] [--host-work 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROKEN_KINDS = ("build", "throw", "assert", "missing", "type", "recursion")
UNCATCHABLE = ("missing", "type", "recursion")
DEFAULT_BROKEN = ("throw", "build", "missing")

# What each kind's error text contains, so tests can check every failure kept its own message.
ERROR_TEXT = {
    "build": "bench build failure in",
    "throw": "bench: marked broken",
    "assert": "bench-assert",
    "missing": "does-not-exist",
    "type": "cannot add",
    "recursion": "infinite recursion",
}

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}


@dataclass(frozen=True)
class Attr:
    """One generated attribute; `broken` is one of BROKEN_KINDS or None."""

    flake: str
    kind: str  # packages | checks | devShells
    name: str
    system: str
    broken: str | None = None

    @property
    def path(self) -> str:
        """The attribute as `nix build` and ci-nix's reports name it."""
        if self.kind == "nixosConfigurations":
            return f"{self.kind}.{self.name}"
        return f"{self.kind}.{self.system}.{self.name}"


@dataclass(frozen=True)
class Generated:
    """A generated workspace and what a correct CI run must find in it."""

    root: Path
    flakes: tuple[str, ...]
    attrs: tuple[Attr, ...]
    nonce: str
    inputs: Mapping[str, str] = field(default_factory=dict)  # flake -> the flake it takes as input

    @property
    def good(self) -> tuple[Attr, ...]:
        return tuple(a for a in self.attrs if a.broken is None)

    @property
    def broken(self) -> tuple[Attr, ...]:
        return tuple(a for a in self.attrs if a.broken is not None)


def _names(count: int) -> list[tuple[str, str]]:
    """(output kind, name) for each attribute index: mostly packages, some checks, one shell."""
    out = []
    for j in range(count):
        if j == count - 1 and count > 2:
            out.append(("devShells", f"shell{j:02d}"))
        elif j % 5 == 4:
            out.append(("checks", f"check{j:02d}"))
        else:
            out.append(("packages", f"pkg{j:02d}"))
    return out


def _depends_on_previous(j: int) -> bool:
    # chains of four: 0<-1<-2<-3, 4<-5<-6<-7, ...; index 3, 7, 11, ... ends a chain
    return j % 4 != 0


def _broken_slots(flakes: int, attrs: int, kinds: Sequence[str]) -> dict[tuple[int, int], str]:
    """Spread broken attributes over different flakes, each on a chain end (a leaf)."""
    leaves = [j for j in range(attrs) if j % 4 == 3 and j != attrs - 1] or [attrs - 1]
    slots: dict[tuple[int, int], str] = {}
    for b, kind in enumerate(kinds):
        flake = ((b + 1) * flakes) // (len(kinds) + 1) % flakes
        j = leaves[b % len(leaves)]
        while (flake, j) in slots:
            flake = (flake + 1) % flakes
        slots[(flake, j)] = kind
    return slots


def _expr(kind: str | None, flake: str, name: str, previous: str | None, upstream: bool) -> str:
    """The Nix expression of one attribute inside `all = system: rec { ... }`."""
    label = f"{flake}-{name}"
    if kind == "throw":
        return f'throw "bench: marked broken ({label})"'
    if kind == "assert":
        # both the old ("assertion ... failed") and new ("... is not equal to ...") texts name it
        return f'assert "{label}" == "bench-assert"; mk "{label}" "" {{ }}'
    if kind == "missing":
        return f"self.packages.${{system}}.does-not-exist-{name}"
    if kind == "type":
        return f'1 + "{label}"'
    if kind == "recursion":
        return "let loop = loop; in loop"
    if kind == "build":
        script = f'echo "bench build failure in {label}" >&2; exit 1'
        return f"mk {json.dumps(label)} {json.dumps(script)} {{ }}"
    deps = []
    if previous is not None:
        deps.append(f"prev = {previous};")
    if upstream:
        deps.append("upstream = dep.packages.${system}.pkg00;")
    # a little real work: hash a few thousand lines, and fold in what this depends on
    script = ('seq 1 3000 | sha256sum > $out; for d in $prev $upstream; do cat $d >> $out; done')
    return f"mk {json.dumps(label)} {json.dumps(script)} {{ {' '.join(deps)} }}"


def flake_text(flake: str, attrs: int, systems: Sequence[str], nonce: str,
               broken: Mapping[int, str], dep_url: str | None) -> str:
    """The flake.nix of one generated flake."""
    names = _names(attrs)
    body = "\n".join(
        f"        {name} = "
        + _expr(broken.get(j), flake, name,
                names[j - 1][1] if j > 0 and _depends_on_previous(j) else None,
                j == 0 and dep_url is not None)
        + ";"
        for j, (_, name) in enumerate(names))
    groups = []
    for kind in ("packages", "checks", "devShells"):
        members = " ".join(name for k, name in names if k == kind)
        if members:
            groups.append(f"      {kind} = forAll (system: {{ inherit (all system) {members}; }});")
    inputs = f'  inputs.dep.url = "{dep_url}";\n' if dep_url else ""
    args = "{ self, dep }" if dep_url else "{ self }"
    for_all = ("forAll = f: builtins.listToAttrs "
               "(map (system: { name = system; value = f system; }) systems);")
    return f"""{{
  description = "ci-nix bench flake {flake}";
{inputs}
  outputs = {args}:
    let
      systems = [ {" ".join(json.dumps(s) for s in systems)} ];
      {for_all}
      all = system:
        let
          mk = name: script: extra: derivation ({{
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
            NONCE = "{nonce}";
          }} // extra);
        in rec {{
{body}
        }};
    in
    {{
{chr(10).join(groups)}
    }};
}}
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, **_GIT_ENV})


def _nix(nix: Sequence[str], *args: str) -> None:
    # No cwd: nix-modern bind-mounts its working directory.
    subprocess.run([*nix, "--extra-experimental-features", "nix-command flakes", *args],
                   check=True, capture_output=True, text=True)


def generate(dest: Path, flakes: int = 20, attrs: int = 15,
             broken: Sequence[str] = DEFAULT_BROKEN, *, systems: Sequence[str] = ("x86_64-linux",),
             nonce: str | None = None, config: Mapping[str, Any] | None = None,
             nix: Sequence[str] | None = None) -> Generated:
    """Create the workspace in dest (which must not exist); `config` adds ci-nix.yaml keys.

    `nix` is the argv of the Nix that writes the flake.lock files (default: $CI_NIX_NIX or nix).
    """
    unknown = [kind for kind in broken if kind not in BROKEN_KINDS]
    if unknown:
        raise ValueError(f"unknown broken kind {unknown[0]!r}; known: {', '.join(BROKEN_KINDS)}")
    if flakes < 1 or attrs < 1:
        raise ValueError("flakes and attrs must be at least 1")
    nonce = nonce or uuid.uuid4().hex[:12]
    nix = list(nix or shlex.split(os.environ.get("CI_NIX_NIX", "nix")))
    dest = dest.resolve()
    dest.mkdir(parents=True)
    slots = _broken_slots(flakes, attrs, broken)
    ids = [f"f{i:02d}" for i in range(flakes)]
    inputs = {ids[i]: ids[(i - 1) // 2] for i in range(1, flakes)}
    all_attrs: list[Attr] = []
    for i, flake in enumerate(ids):
        repo = dest / flake
        repo.mkdir()
        dep = inputs.get(flake)
        own_broken = {j: kind for (f, j), kind in slots.items() if f == i}
        (repo / "flake.nix").write_text(flake_text(
            flake, attrs, systems, nonce, own_broken,
            f"git+file://{dest / dep}" if dep else None))
        for j, (kind, name) in enumerate(_names(attrs)):
            for system in systems:
                all_attrs.append(Attr(flake, kind, name, system, own_broken.get(j)))
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"{flake}: generated")
        if dep:
            # inputs come before their users (i-1)//2 < i, so the input's own lock is committed
            _nix(nix, "flake", "lock", f"git+file://{repo}")
            _git(repo, "add", "flake.lock")
            _git(repo, "commit", "-q", "-m", f"{flake}: lock {dep}")
    settings: dict[str, Any] = {"repos": [{"path": flake} for flake in ids], **(config or {})}
    (dest / "ci-nix.yaml").write_text("# generated by bench/generate.py\n"
                                      + json.dumps(settings, indent=2) + "\n")
    return Generated(dest, tuple(ids), tuple(all_attrs), nonce, inputs)


_SHARED_NIX = """# what every host reads: built once per Nix process (imports are cached)
let
  table = builtins.listToAttrs (builtins.genList
    (i: { name = "o${toString i}"; value = i * 3; }) @SHARED@);
in { inherit table; size = builtins.length (builtins.attrNames table); }
"""

_HOST_NIX = """# one NixOS-like host: { config.system.build.toplevel; config.nixpkgs.hostPlatform; }
{ shared, name, nonce, values, work, broken ? null }:
let
  # memory and CPU: many small values (as a module system makes), reachable through `config`
  data = builtins.genList (i: { v = i; n = name; }) values;
  # more CPU: work x 1000 additions, in bounded memory
  spin = builtins.foldl' (a: i: a + builtins.foldl' (b: j: b + j) 0 (builtins.genList (x: x) 1000))
    0 (builtins.genList (x: x) work);
  extra = if broken == "missing" then shared.table.does-not-exist
    else if broken == "forever" then builtins.foldl' (a: i: a + builtins.foldl' (b: j: b + j) 0
      (builtins.genList (x: x) 100000)) 0 (builtins.genList (x: x) 100000)
    else 0;
  toplevel = derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo ${nonce} > $out" ];
    values = builtins.deepSeq data (builtins.length data);
    spin = spin + extra;
    shared = shared.size + shared.table.o7;
  };
in {
  config = {
    nixpkgs.hostPlatform = "x86_64-linux";
    system.build.toplevel = toplevel;
    inherit data;
  };
}
"""


VALUES_PER_MB = 4000  # small attribute sets per MiB of a host's memory (Nix 2.8, measured)
SHARED = 300_000  # entries of the table every host reads (shared.nix)


def generate_fleet(dest: Path, hosts: int = 8, *, host_mb: int = 256, host_work: int = 0,
                   shared: int = SHARED, broken: str | None = None,
                   nonce: str | None = None) -> Generated:
    """One flake `fleet` with `hosts` heavy nixosConfigurations (h00, h01, ...); with
    `broken` (missing | forever), host h01 is broken that way."""
    if broken not in (None, "missing", "forever"):
        raise ValueError(f"unknown broken host kind {broken!r}; known: missing, forever")
    if hosts < 1:
        raise ValueError("hosts must be at least 1")
    nonce = nonce or uuid.uuid4().hex[:12]
    dest = dest.resolve()
    repo = dest / "fleet"
    repo.mkdir(parents=True)
    names = [f"h{i:02d}" for i in range(hosts)]
    bad = names[1] if broken and hosts > 1 else (names[0] if broken else None)
    (repo / "shared.nix").write_text(_SHARED_NIX.replace("@SHARED@", str(shared)))
    (repo / "host.nix").write_text(_HOST_NIX)
    entries = "\n".join(
        f'      {name} = import ./host.nix {{ inherit shared nonce; name = "{name}"; '
        f'values = {host_mb * VALUES_PER_MB}; work = {host_work}; '
        + (f'broken = "{broken}"; ' if name == bad else "") + "};"
        for name in names)
    (repo / "flake.nix").write_text(f"""{{
  description = "ci-nix bench fleet: {hosts} heavy hosts";
  outputs = {{ self }}:
    let
      shared = import ./shared.nix;
      nonce = "{nonce}";
    in {{
    nixosConfigurations = {{
{entries}
    }};
  }};
}}
""")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "fleet: generated")
    (dest / "ci-nix.yaml").write_text("# generated by bench/generate.py\n"
                                      + json.dumps({"repos": [{"path": "fleet"}]}) + "\n")
    attrs = tuple(Attr("fleet", "nixosConfigurations", name, "x86_64-linux",
                       broken if name == bad else None) for name in names)
    return Generated(dest, ("fleet",), attrs, nonce)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="directory to create")
    parser.add_argument("--flakes", type=int, default=20)
    parser.add_argument("--attrs", type=int, default=15, help="attributes per flake and system")
    parser.add_argument("--broken", default=",".join(DEFAULT_BROKEN),
                        help=f"comma-separated kinds ({', '.join(BROKEN_KINDS)}); '' for none")
    parser.add_argument("--system", action="append", dest="systems",
                        help="system to define attributes for (repeatable; default x86_64-linux)")
    parser.add_argument("--nonce")
    parser.add_argument("--hosts", type=int,
                        help="instead: one flake of this many heavy nixosConfigurations")
    parser.add_argument("--host-mb", type=int, default=256, help="memory each host keeps")
    parser.add_argument("--host-work", type=int, default=0, help="extra CPU per host")
    parser.add_argument("--broken-host", choices=("missing", "forever"))
    args = parser.parse_args(argv)
    if args.dest.exists():
        print(f"{args.dest} exists already; pass a new directory", file=sys.stderr)
        return 2
    if args.hosts is not None:
        fleet = generate_fleet(args.dest, args.hosts, host_mb=args.host_mb,
                               host_work=args.host_work, broken=args.broken_host,
                               nonce=args.nonce)
        print(fleet.root)
        return 0
    kinds = [kind for kind in args.broken.split(",") if kind]
    try:
        generated = generate(args.dest, args.flakes, args.attrs, kinds,
                             systems=args.systems or ("x86_64-linux",), nonce=args.nonce)
    except ValueError as err:
        print(f"generate: {err}", file=sys.stderr)
        return 2
    print(generated.root)
    print(f"{len(generated.flakes)} flakes, {len(generated.attrs)} attributes, broken: "
          + ", ".join(f"{a.flake}#{a.path} ({a.broken})" for a in generated.broken),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
