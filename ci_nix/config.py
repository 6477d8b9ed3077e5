"""ci-nix.yaml -> frozen Config, with errors that name the file, the key and the line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ci_nix.errors import ConfigError

CONFIG_NAME = "ci-nix.yaml"
OUTPUT_KINDS = ("packages", "devShells", "nixosConfigurations", "checks")
DEFAULT_IGNORE = ("**/*.md", "docs/**", "LICENSE*")


@dataclass(frozen=True)
class RepoSpec:
    path: Path  # absolute
    name: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class CacheConfig:
    type: str | None = None  # attic | cachix | nix
    server: str | None = None
    name: str | None = None
    token_env: str | None = None
    push: str = "closure"  # closure | outputs | none
    substituter: str | None = None
    required: bool = False
    secret_key_file: str | None = None


@dataclass(frozen=True)
class UpdateConfig:
    inputs: tuple[str, ...] = ()
    branch: str = "ci-nix/flake-update"
    group: bool = True  # one MR for all inputs; False: one per input
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    auto_merge: bool = False
    author: str = "ci-nix <ci-nix@users.noreply.github.com>"
    verify: bool = False  # build with the new locks first; hold back inputs that break things


@dataclass(frozen=True)
class ForgeConfig:
    type: str | None = None  # github | gitlab
    url: str | None = None
    project: str | None = None
    token_env: str | None = None


@dataclass(frozen=True)
class EvalConfig:
    """`eval:` the pool of Nix evaluation workers (--workers, --eval-memory, --eval-timeout)."""

    workers: int | None = None  # None: one per CPU
    memory: int = 4096  # MiB a worker may grow to before it is replaced
    timeout: float = 0  # seconds per attribute; 0: no limit


@dataclass(frozen=True)
class Config:
    """The settings of one workspace. `file` is None when no ci-nix.yaml was found."""

    file: Path | None = None
    repos: tuple[RepoSpec, ...] = ()
    systems: tuple[str, ...] = ()
    outputs: tuple[str, ...] = OUTPUT_KINDS
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    runners: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cache: CacheConfig = CacheConfig()
    update: UpdateConfig = UpdateConfig()
    forge: ForgeConfig = ForgeConfig()
    nix_options: tuple[tuple[str, str], ...] = ()  # `--option NAME VALUE` for every Nix call
    eval: EvalConfig = EvalConfig()

    @property
    def has_repos(self) -> bool:
        return bool(self.repos)


# --- validation against a small schema, with line numbers from the YAML nodes ---------------

_STR, _BOOL, _STRS, _RUNNERS = "a string", "true or false", "a list of strings", "runners"
_NIX_OPTIONS = "nix-options"
_COUNT, _SECONDS = "a whole number of at least 1", "a number of seconds (0 or more)"
_EVAL = {"workers": _COUNT, "memory": _COUNT, "timeout": _SECONDS}

_CACHE = {"type": ("attic", "cachix", "nix"), "server": _STR, "name": _STR, "token-env": _STR,
          "push": ("closure", "outputs", "none"), "substituter": _STR, "required": _BOOL,
          "secret-key-file": _STR}
_UPDATE = {"inputs": _STRS, "branch": _STR, "group": _BOOL, "labels": _STRS,
           "assignees": _STRS, "reviewers": _STRS, "auto-merge": _BOOL, "author": _STR,
           "verify": _BOOL}
_FORGE = {"type": ("github", "gitlab"), "url": _STR, "project": _STR, "token-env": _STR}
_REPO = {"path": _STR, "name": _STR, "url": _STR}
_TOP: dict[str, Any] = {
    "repos": [_REPO], "systems": _STRS, "outputs": [OUTPUT_KINDS], "include": _STRS,
    "exclude": _STRS, "ignore": _STRS, "runners": _RUNNERS, "cache": _CACHE,
    "update": _UPDATE, "forge": _FORGE, "nix-options": _NIX_OPTIONS,
    "eval": _EVAL,
}


class _Checker:
    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.file}:{node.start_mark.line + 1}: {message}")

    def check(self, node: yaml.Node, schema: Any, where: str) -> Any:
        if isinstance(schema, dict):
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(node, f"{where} must be a mapping")
            result = {}
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    # YAML loaders keep the last one silently; a lost `cache:` block is worse.
                    raise self.fail(key_node, f"key '{where.lstrip('.')}.{key}'".replace("'.", "'")
                                    + f" appears twice (first on line {seen[key]}); merge them")
                seen[key] = key_node.start_mark.line + 1
                if key not in schema:
                    known = ", ".join(schema)
                    raise self.fail(key_node, f"unknown key '{where}.{key}'".replace("'.", "'")
                                    + f"; known keys: {known}")
                result[key] = self.check(value_node, schema[key], f"{where}.{key}")
            return result
        if isinstance(schema, list):
            if not isinstance(node, yaml.SequenceNode):
                raise self.fail(node, f"'{where.lstrip('.')}' must be a list")
            return [self.check(item, schema[0], where) for item in node.value]
        if isinstance(schema, tuple):
            value = self.scalar(node, where)
            if value not in schema:
                raise self.fail(node, f"'{where.lstrip('.')}' is {value!r}; expected one of "
                                f"{', '.join(schema)}")
            return value
        if schema == _STR:
            return self.scalar(node, where)
        if schema == _BOOL:
            value = yaml.safe_load(yaml.serialize(node))
            if not isinstance(value, bool):
                raise self.fail(node, f"'{where.lstrip('.')}' must be true or false")
            return value
        if schema == _STRS:
            return self.check(node, [_STR], where)
        if schema == _RUNNERS:
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(node, "'runners' must map a system to a runner label or labels")
            runners = {}
            for key_node, value_node in node.value:
                labels = (self.check(value_node, [_STR], f"runners.{key_node.value}")
                          if isinstance(value_node, yaml.SequenceNode)
                          else [self.scalar(value_node, f"runners.{key_node.value}")])
                runners[key_node.value] = tuple(labels)
            return runners
        if schema == _NIX_OPTIONS:
            return self.nix_options(node)
        if schema in (_COUNT, _SECONDS):
            value = yaml.safe_load(yaml.serialize(node))
            if isinstance(value, bool) or not (
                    isinstance(value, int) and value >= 1 if schema == _COUNT
                    else isinstance(value, int | float) and 0 <= value < float("inf")):
                raise self.fail(node, f"'{where.lstrip('.')}' must be {schema}")
            return value
        raise AssertionError(schema)

    def nix_options(self, node: yaml.Node) -> tuple[tuple[str, str], ...]:
        """`NAME: VALUE` pairs as Nix's `--option` takes them: a list is joined with spaces,
        true/false and numbers are written as nix.conf writes them."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "'nix-options' must map a Nix setting to its value, "
                            "e.g. 'max-jobs: 4'")
        options: list[tuple[str, str]] = []
        for key_node, value_node in node.value:
            name = self.scalar(key_node, "nix-options")
            if name in dict(options):
                raise self.fail(key_node, f"key 'nix-options.{name}' appears twice; merge them")
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            words = []
            for item in items:
                if not isinstance(item, yaml.ScalarNode):
                    raise self.fail(item, f"'nix-options.{name}' must be a string, a number, "
                                    "true/false or a list of those")
                value = yaml.safe_load(yaml.serialize(item))
                words.append("" if value is None else
                             str(value).lower() if isinstance(value, bool) else str(item.value))
            options.append((name, " ".join(words)))
        return tuple(options)

    def scalar(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, f"'{where.lstrip('.')}' must be a string")
        return str(node.value)


def read_yaml(file: Path) -> yaml.Node | None:
    """A YAML file's node tree (None when empty), for a checker to validate with line numbers.

    Bytes -> UTF-8 text -> YAML -> plain data: whatever is in the file, the answer is a tree
    that safe_load would accept (string-able keys, known tags) or a one-line ConfigError.
    """
    try:
        data = file.read_bytes()
    except OSError as err:
        raise ConfigError(f"{file}: cannot read: {err.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        number = data[:err.start].count(b"\n") + 1
        raise ConfigError(f"{file}:{number}: not UTF-8 text (byte 0x{data[err.start]:02x}); save "
                          "it as UTF-8") from None
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects control characters here
        node = loader.get_single_node()
        if node is not None:
            # Constructing once finds what the checker must not meet: a list or mapping as a
            # key (`? [a, b]`), unknown tags (`!!python/object`), `!!int abc`.
            loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "unhashable key" in problem:
            problem = "a key must be a plain string, not a list or mapping"
        raise ConfigError(f"{file}{line}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid YAML: nested too deeply") from None
    except Exception as err:  # PyYAML's constructors for explicit tags raise
        # whatever their conversion raises: ValueError for `!!int abc`, AttributeError for an
        # empty `!!timestamp`
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{file}: not valid YAML: {detail}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return node


def load(file: Path) -> Config:
    """Read and validate a ci-nix.yaml."""
    node = read_yaml(file)
    if node is None:
        return Config(file=file)
    data = _Checker(file).check(node, _TOP, "")
    return from_dict(file, data)


def from_dict(file: Path, data: dict[str, Any]) -> Config:
    base = file.parent
    for entry in data.get("repos", []):
        if "path" not in entry:
            raise ConfigError(f"{file}: every entry of 'repos' needs a 'path:'")
    repos = tuple(RepoSpec(path=(base / entry["path"]).resolve(strict=False),
                           name=entry.get("name"), url=entry.get("url"))
                  for entry in data.get("repos", []))

    def section(cls: Any, values: dict[str, Any]) -> Any:
        converted = {key.replace("-", "_"): tuple(v) if isinstance(v, list) else v
                     for key, v in values.items()}
        return cls(**converted)

    return Config(
        file=file,
        repos=repos,
        systems=tuple(data.get("systems", ())),
        outputs=tuple(data.get("outputs", OUTPUT_KINDS)),
        include=tuple(data.get("include", ())),
        exclude=tuple(data.get("exclude", ())),
        ignore=tuple(data.get("ignore", DEFAULT_IGNORE)),
        runners=data.get("runners", {}),
        cache=section(CacheConfig, data.get("cache", {})),
        update=section(UpdateConfig, data.get("update", {})),
        forge=section(ForgeConfig, data.get("forge", {})),
        nix_options=data.get("nix-options", ()),
        eval=section(EvalConfig, data.get("eval", {})),
    )


def find(start: Path) -> Path | None:
    """ci-nix.yaml in start or the nearest parent directory that has one."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None
