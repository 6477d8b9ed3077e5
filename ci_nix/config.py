"""ci-nix.yaml -> frozen Config, with errors that name the file, the key and the line."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import yaml

from ci_nix.closure import Growth
from ci_nix.errors import ConfigError
from ci_nix.schema import (
    BOOL,
    COUNT,
    SECONDS,
    STR,
    STRS,
    Choice,
    DictOf,
    FilePath,
    ListOf,
    OneOf,
    OneOrMany,
    PathOrSwitch,
    Record,
    Schema,
    Where,
    compose,
    pairs,
    setting,
)

CONFIG_NAME = "ci-nix.yaml"
OUTPUT_KINDS = ("packages", "devShells", "nixosConfigurations", "checks")
DEFAULT_IGNORE = ("**/*.md", "docs/**", "LICENSE*")
# forge.timeout / cache.timeout: seconds one forge or cache operation may take in all (attempts
# and the waits between them, a server's Retry-After included)
DEFAULT_TIMEOUT = 60.0


class CacheType(StrEnum):
    ATTIC = "attic"
    CACHIX = "cachix"
    NIX = "nix"  # `nix copy --to` any store URL


class Push(StrEnum):
    """What a build pushes to the cache."""

    CLOSURE = "closure"
    OUTPUTS = "outputs"
    NONE = "none"


class ForgeType(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"


@dataclass(frozen=True)
class RepoSpec:
    # absolute; inside the workspace: a clone or checkout never lands elsewhere on the runner
    path: Path = setting(FilePath(inside=True), required=True)
    name: str | None = setting(STR)
    url: str | None = setting(STR)


@dataclass(frozen=True)
class CacheConfig:
    # trusted=True: where the token and the pushes go, which key signs (ci_nix/trust.py)
    type: CacheType | None = setting(Choice(CacheType), trusted=True)
    server: str | None = setting(STR, trusted=True)
    name: str | None = setting(STR, trusted=True)
    token_env: str | None = setting(STR, trusted=True)
    push: Push = setting(Choice(Push), Push.CLOSURE)
    substituter: str | None = setting(STR, trusted=True)
    required: bool = setting(BOOL, False)
    # relative to ci-nix.yaml (the trusted file's place, not the working directory); its links
    # are kept for the reader, who refuses one inside a checkout (bundle/key.py)
    secret_key_file: Path | None = setting(FilePath(follow=False), trusted=True)
    # seconds asking the cache what it has may take in all (every narinfo, retries included)
    timeout: float = setting(SECONDS, DEFAULT_TIMEOUT)


@dataclass(frozen=True)
class UpdateConfig:
    inputs: tuple[str, ...] = setting(STRS, ())
    branch: str = setting(STR, "ci-nix/flake-update", trusted=True)  # what gets force-pushed
    group: bool = setting(BOOL, True)  # one MR for all inputs; False: one per input
    labels: tuple[str, ...] = setting(STRS, ())
    assignees: tuple[str, ...] = setting(STRS, ())
    reviewers: tuple[str, ...] = setting(STRS, ())
    auto_merge: bool = setting(BOOL, False)
    author: str = setting(STR, "ci-nix <ci-nix@users.noreply.github.com>")
    # build with the new locks first; hold back inputs that break things
    verify: bool = setting(BOOL, False)


UPDATE = Record(UpdateConfig)


@dataclass(frozen=True)
class ForgeConfig:
    # where the forge token goes and what it may write to (ci_nix/trust.py)
    type: ForgeType | None = setting(Choice(ForgeType), trusted=True)
    url: str | None = setting(STR, trusted=True)
    project: str | None = setting(STR, trusted=True)
    token_env: str | None = setting(STR, trusted=True)
    # seconds one forge operation may take in all, retries and Retry-After waits included
    timeout: float = setting(SECONDS, DEFAULT_TIMEOUT)


DEFAULT_EVAL_MEMORY_MIB = 4096  # eval.memory / --eval-memory when neither is given


@dataclass(frozen=True)
class EvalConfig:
    """`eval:` the pool of Nix evaluation workers (--workers, --eval-memory,
    --eval-memory-total, --eval-timeout)."""

    workers: int | None = setting(COUNT)  # None: one per CPU
    # MiB a worker may grow to before it is replaced
    memory: int = setting(COUNT, DEFAULT_EVAL_MEMORY_MIB)
    timeout: float = setting(SECONDS, 0)  # seconds per attribute; 0: no limit
    # MiB all workers together may use; None: half the machine's memory (evaluate.Limits)
    memory_total: int | None = setting(COUNT)
    # the evaluation cache's directory; True: $XDG_CACHE_HOME/ci-nix/eval, False: off.
    # trusted: a pull request may not point it at entries of its own making
    cache: Path | bool = setting(PathOrSwitch(), True, trusted=True)


class ImagePush(StrEnum):
    """When `run` pushes images (`--push-images`/`--no-push-images` override it)."""

    DEFAULT_BRANCH = "default-branch"  # CI on the default branch, never a pull request
    ALWAYS = "always"
    NEVER = "never"


DEFAULT_IMAGE_TAGS = ("{attr}-{short_sha}",)


@dataclass(frozen=True)
class ImagesConfig:
    """`images:` which attributes are container images and where they are pushed."""

    attrs: tuple[str, ...] = setting(STRS, ())  # attribute globs, e.g. packages.*.image
    # trusted=True: where the registry token goes and what it may overwrite (ci_nix/trust.py);
    # `http://HOST` is a registry without TLS (a loopback or in-cluster one)
    registry: str | None = setting(STR, trusted=True)
    repository: str | None = setting(STR, trusted=True)
    # trusted: which tags the token overwrites (a pull request's `latest` or `v1.0`, where it
    # pushes at all: push: always, --push-images); a pull request fills only {attr}, {branch}...
    tags: tuple[str, ...] = setting(STRS, DEFAULT_IMAGE_TAGS, trusted=True)
    token_env: str | None = setting(STR, trusted=True)  # USER:PASSWORD, or a bare token
    # a pull request may not decide to push its own images with the registry token
    push: ImagePush = setting(Choice(ImagePush), ImagePush.DEFAULT_BRANCH, trusted=True)


class Images(Schema[ImagesConfig]):
    """`images:` a list of attribute globs, or the whole mapping."""

    record = Record(ImagesConfig)

    def check(self, node: yaml.Node, at: Where) -> ImagesConfig:
        if isinstance(node, yaml.SequenceNode):
            return ImagesConfig(attrs=STRS.check(node, at))
        return self.record.check(node, at)


class GrowthLimit(Schema[Growth]):
    """`max-closure-growth: 10%` or `50MiB`."""

    def check(self, node: yaml.Node, at: Where) -> Growth:
        text = STR.check(node, at)  # its own error already names file and line
        try:
            return Growth.parse(text, f"'{at.key}'")
        except ConfigError as err:
            raise at.fail(node, str(err)) from None


class NixOptions(Schema[tuple[tuple[str, str], ...]]):
    """`NAME: VALUE` pairs as Nix's `--option` takes them: a list is joined with spaces,
    true/false and numbers are written as nix.conf writes them."""

    def check(self, node: yaml.Node, at: Where) -> tuple[tuple[str, str], ...]:
        if not isinstance(node, yaml.MappingNode):
            raise at.fail(node, f"'{at.key}' must map a Nix setting to its value, "
                          "e.g. 'max-jobs: 4'")
        options: list[tuple[str, str]] = []
        for key_node, value_node in pairs(node, at):
            name = STR.check(key_node, at)
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            words = []
            for item in items:
                if not isinstance(item, yaml.ScalarNode):
                    raise at.fail(item, f"'{at.child(name).key}' must be a string, a number, "
                                  "true/false or a list of those")
                value = yaml.safe_load(yaml.serialize(item))
                words.append("" if value is None else
                             str(value).lower() if isinstance(value, bool) else str(item.value))
            options.append((name, " ".join(words)))
        return tuple(options)


@dataclass(frozen=True)
class Config:
    """The settings of one workspace. `file` is None when no ci-nix.yaml was found."""

    file: Path | None = None
    repos: tuple[RepoSpec, ...] = setting(ListOf(Record(RepoSpec)), ())
    systems: tuple[str, ...] = setting(STRS, ())
    outputs: tuple[str, ...] = setting(ListOf(OneOf(OUTPUT_KINDS)), OUTPUT_KINDS)
    include: tuple[str, ...] = setting(STRS, ())
    exclude: tuple[str, ...] = setting(STRS, ())
    ignore: tuple[str, ...] = setting(STRS, DEFAULT_IGNORE)
    # which machines the matrix jobs (the pull request's code) run on: a self-hosted runner
    # with deploy keys is a privilege (ci_nix/trust.py)
    runners: dict[str, tuple[str, ...]] = setting(
        DictOf(OneOrMany(STR), "map a system to a runner label or labels"), factory=dict,
        trusted=True)
    cache: CacheConfig = setting(Record(CacheConfig), CacheConfig())
    update: UpdateConfig = setting(UPDATE, UpdateConfig())
    forge: ForgeConfig = setting(Record(ForgeConfig), ForgeConfig())
    # `--option NAME VALUE` for every Nix call
    nix_options: tuple[tuple[str, str], ...] = setting(NixOptions(), ())
    eval: EvalConfig = setting(Record(EvalConfig), EvalConfig())
    # inputs as flake.lock has them, never from the workspace's checkouts (--locked)
    locked: bool = setting(BOOL, False)
    images: ImagesConfig = setting(Images(), ImagesConfig())
    # an attribute whose runtime closure grows past this (vs the base) fails (`run`)
    max_closure_growth: Growth | None = setting(GrowthLimit())

    @property
    def has_repos(self) -> bool:
        return bool(self.repos)


def load(file: Path, data: bytes | None = None) -> Config:
    """Read and validate a ci-nix.yaml; `data`: its bytes from elsewhere (a git revision),
    `file` then names them in errors."""
    node = compose(file, data)
    if node is None:
        return Config(file=file)
    return replace(Record(Config).check(node, Where(file)), file=file)


def find(start: Path) -> Path | None:
    """ci-nix.yaml in start or the nearest parent directory that has one."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None
