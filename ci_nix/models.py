"""Frozen values passed between the stages."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ci_nix import flakeref


@dataclass(frozen=True)
class Repo:
    name: str
    path: Path
    url: str | None = None
    # --pin: Nix reads this commit of the checkout, not its work tree (a matrix job evaluates
    # what its plan evaluated)
    rev: str | None = None
    # a shallow clone: Nix 2.8 reads one only when the reference says so (`shallow=1`)
    shallow: bool = False


@dataclass(frozen=True)
class Flake:
    """A flake.nix tracked in a repo. `subdir` is "" for the repo root."""

    repo: Repo
    subdir: str

    @property
    def id(self) -> str:
        return self.repo.name if not self.subdir else f"{self.repo.name}/{self.subdir}"

    @property
    def path(self) -> Path:
        return self.repo.path / self.subdir if self.subdir else self.repo.path

    @functools.cached_property
    def ref(self) -> str:
        """The flake reference Nix evaluates: the git checkout, tracked files only. Kept: it
        resolves the path (a syscall per directory on the way), and the cache's keys, the
        workers and diff's base ask it over a hundred times in a run of 20 flakes."""
        return flakeref.checkout(self.repo.path, self.subdir, self.repo.rev, self.repo.shallow)


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")


def attr_display(path: Sequence[str]) -> str:
    """An attribute path as `nix build` takes it: packages.x86_64-linux."odd name"."""
    parts = []
    for name in path:
        if _PLAIN.match(name):
            parts.append(name)
        else:
            parts.append('"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(parts)


def split_flake_attr(value: str, flake_ids: Collection[str] = ()) -> tuple[str, str] | None:
    """FLAKE#ATTR as (flake id, attribute), or None without a `#`. A flake id may hold a `#`
    (a directory name can): the cut is after the longest known id, else at the first `#`."""
    cuts = [i for i, char in enumerate(value) if char == "#"]
    if not cuts:
        return None
    known = [i for i in cuts if value[:i] in flake_ids]
    cut = max(known) if known else cuts[0]
    return value[:cut], value[cut + 1:]


def parse_attr(text: str) -> tuple[str, ...]:
    """Inverse of attr_display: split on dots outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(parts)


@dataclass(frozen=True)
class Override:
    """--override-input for a downstream flake: its input `input` comes from `ref`.

    A workspace input also says which checkout it is, so every report can say what was built:
    `source` is the workspace flake, `rev` its checkout's commit (`dirty`: with uncommitted
    changes, which Nix reads too) and `locked` the revision flake.lock has."""

    input: str
    ref: str
    source: str | None = None
    rev: str | None = None
    # a shallow clone: Nix 2.8 reads one only when the reference says so (`shallow=1`)
    shallow: bool = False
    dirty: bool = False
    locked: str | None = None
    # flake.lock fetches the input with its git submodules: so must the checkout's reference
    submodules: bool = False

    @property
    def url(self) -> str:
        """The reference Nix is given: `ref`, with `submodules=1` where the lock asks."""
        return flakeref.with_query(self.ref, {"submodules": "1" if self.submodules else None})

    def describe(self) -> str:
        """`pkgs: the workspace's pkgs at 1a2b3c4d5e6f (flake.lock: 0f9e8d7c6b5a)`."""
        if self.source is None:
            return f"{self.input}: {self.ref}"
        at = f" at {self.rev[:12]}" if self.rev else ""
        dirty = " with uncommitted changes" if self.dirty else ""
        lock = f"flake.lock: {self.locked[:12]}" if self.locked else "flake.lock has no rev"
        return f"{self.input}: the workspace's {self.source}{at}{dirty} ({lock})"


@dataclass(frozen=True)
class Target:
    """A flake to evaluate, with why it was picked and the overrides to test it with."""

    flake: Flake
    reasons: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Job:
    """One evaluated attribute: what to build for it."""

    flake: str
    attr: tuple[str, ...]
    system: str
    drv_path: str
    outputs: tuple[tuple[str, str], ...]  # (output name, store path)

    @property
    def name(self) -> str:
        return attr_display(self.attr)

    @property
    def out_paths(self) -> tuple[str, ...]:
        return tuple(path for _, path in self.outputs)


class FailureType(StrEnum):
    EVAL = "eval"
    BUILD = "build"
    DEPENDENCY = "dependency"
    HASH_MISMATCH = "hash-mismatch"
    TIMEOUT = "timeout"
    PLATFORM = "platform"
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    type: FailureType
    message: str  # one line
    log: str = ""  # tail of the relevant log, plain text
    drv: str | None = None
    hint: str | None = None
    file: str | None = None  # relative to `repo` (the failing flake's repo when None)
    line: int | None = None
    column: int | None = None
    repo: str | None = None  # the workspace repo `file` is in, where ci-nix could tell
    # a `dependency` failure: the failed derivation it comes from (its root), so reports can
    # list it under that root's failure instead of repeating the root's log
    cause: str | None = None


@dataclass(frozen=True)
class EvalCost:
    """What evaluating one attribute cost: seconds on its worker, and how far that worker's
    resident memory grew meanwhile (the first attribute on a worker also pays for what every
    attribute shares, e.g. nixpkgs)."""

    seconds: float
    memory_mib: float


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


# The test case name for a flake as a whole: broken beyond listing its attributes, or skipped.
FLAKE_CASE = "flake.nix"


@dataclass(frozen=True)
class Case:
    """One attribute's outcome: a JUnit test case."""

    flake: str
    name: str
    status: Status
    system: str | None = None
    drv_path: str | None = None
    failure: Failure | None = None
    skip_reason: str | None = None
    time: float = 0.0
    machine: str | None = None  # the remote builder that built it (Nix's "building … on …")
    # False: reported, but does not fail the run (a cache push without `cache.required: true`)
    required: bool = True
    output: str = ""  # what else to say about it (JUnit <system-out>), e.g. an update's branch
    eval_cost: EvalCost | None = None  # what evaluating it cost (None: not evaluated here)
    # a container image pushed (or found already pushed): its manifest digest and references
    digest: str | None = None
    images: tuple[str, ...] = ()
    closure_size: int | None = None  # bytes: the runtime closure of what was built


@dataclass(frozen=True)
class FlakeEval:
    """What evaluating one flake gave: jobs to build, cases already decided, evaluation count."""

    target: Target
    jobs: tuple[Job, ...]
    cases: tuple[Case, ...]  # eval failures and skips
    evaluations: int  # Nix processes
    time: float
    attr_evaluations: int = 0  # attributes begun by those processes, retries included
    listed: tuple[str, ...] = ()  # every attribute the flake lists (as `nix build` takes it)
    cached: bool = False  # taken from the evaluation cache (ci_nix/evalcache.py), not evaluated
    # each job's derivation closure (drvPath -> .drv base names), where the evaluation cache
    # knows it (ci_nix/evalcache.py): `diff` then reads no .drv file
    closures: tuple[tuple[str, tuple[str, ...]], ...] = ()
    costs: tuple[tuple[str, EvalCost], ...] = ()  # attribute (as `nix build` takes it) -> cost
    # what the evaluation read of the flake's commit (rev, lastModified, ...; eval.nix): () for
    # nothing, so another commit of the same tree evaluates the same; None when not known
    commit_read: tuple[str, ...] | None = None
    # the commit each Nix process that evaluated it read the flake's source at (None: no
    # commit, a dirty work tree); None when not every process said (eval.nix's "source")
    source_revs: tuple[str | None, ...] | None = None


@dataclass(frozen=True)
class RunReport:
    """Everything a report writer needs; `suites` fixes the order of flakes."""

    suites: tuple[str, ...]
    cases: tuple[Case, ...]
    error: str | None = None  # set when ci-nix could not do its job
    notes: tuple[str, ...] = field(default=())
    # what was compared ("base X (source), head Y") and why each flake was selected
    compared: str | None = None
    selected: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # the workspace repo CI checked out (the primary repo): annotations point only into it
    # when CI's workspace directory is not known
    checkout: str | None = None
    # (repo name, absolute directory) of every workspace repo: where an annotation's file is
    repo_dirs: tuple[tuple[str, str], ...] = ()
    # per flake, the inputs evaluated from workspace checkouts instead of flake.lock
    inputs: tuple[tuple[str, tuple[Override, ...]], ...] = ()
    locked: bool = False  # --locked: every input as flake.lock has it

    @property
    def failed(self) -> list[Case]:
        return [case for case in self.cases if case.status is Status.FAILED]

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return 2
        return 1 if any(case.required for case in self.failed) else 0


@dataclass(frozen=True)
class SourceTree:
    """A store path an evaluation reads Nix files from, and the workspace repo they are from.

    The flake's own source, its inputs as locked and as overridden with workspace checkouts:
    /nix/store/<hash>-source/<rel> is <rel> in `repo`. repo None: outside the workspace
    (nixpkgs, any other input), where no user of this workspace can change anything.
    """

    store_path: str
    repo: str | None
