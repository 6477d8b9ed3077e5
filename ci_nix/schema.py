"""YAML config files declared once: each setting is a dataclass field that carries its schema.

    @dataclass(frozen=True)
    class CacheConfig:
        server: str | None = setting(STR, None)
        push: Push = setting(Choice(Push), Push.CLOSURE)

`Record(CacheConfig)` then reads a YAML mapping into a CacheConfig: the YAML key is the field
name with dashes (`token_env` -> `token-env`), unknown and repeated keys are errors, and every
error names the file, the line and the dotted key (`ci-nix.yaml:6: unknown key 'cache.srever';
known keys: ...`). Fields without `setting(...)` are not read from the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from ci_nix.errors import ConfigError
from ci_nix.tools import files

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
_SCHEMA = "ci_nix.schema"
MAX_BYTES = 16 * 1024 * 1024  # a config file read past this is no config


@dataclass(frozen=True)
class Where:
    """The file and the dotted key being read, for error messages."""

    file: Path
    key: str = ""  # "" for the whole file
    entry: bool = False  # one entry of the list at `key`

    def child(self, name: str) -> Where:
        return Where(self.file, f"{self.key}.{name}" if self.key else name)

    def fail(self, node: yaml.Node | int, message: str) -> ConfigError:
        line = node if isinstance(node, int) else node.start_mark.line + 1
        return ConfigError(f"{self.file}:{line}: {message}")


class Schema(Generic[T]):
    """How one YAML node becomes a typed value."""

    def check(self, node: yaml.Node, at: Where) -> T:
        raise NotImplementedError


class Str(Schema[str]):
    def check(self, node: yaml.Node, at: Where) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise at.fail(node, f"'{at.key}' must be a string")
        return str(node.value)


class Bool(Schema[bool]):
    def check(self, node: yaml.Node, at: Where) -> bool:
        value = _plain(node)
        if not isinstance(value, bool):
            raise at.fail(node, f"'{at.key}' must be true or false")
        return value


class Count(Schema[int]):
    def check(self, node: yaml.Node, at: Where) -> int:
        value = _plain(node)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise at.fail(node, f"'{at.key}' must be a whole number of at least 1")
        return value


class Seconds(Schema[float]):
    def check(self, node: yaml.Node, at: Where) -> float:
        value = _plain(node)
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 <= value < float("inf")):
            raise at.fail(node, f"'{at.key}' must be a number of seconds (0 or more)")
        return value


def _plain(node: yaml.Node) -> object:
    """A scalar's value as YAML types it (true, 3, 1.5, "text"); None for lists and mappings."""
    return yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None


STR = Str()
BOOL = Bool()
COUNT = Count()
SECONDS = Seconds()


class Choice(Schema[E]):
    """One of an enum's values, written as the value (`push: outputs`)."""

    def __init__(self, enum: type[E]) -> None:
        self.enum = enum

    def check(self, node: yaml.Node, at: Where) -> E:
        value = STR.check(node, at)
        try:
            return self.enum(value)
        except ValueError:
            raise at.fail(node, f"'{at.key}' is {value!r}; expected one of "
                          f"{', '.join(self.enum)}") from None


class OneOf(Schema[str]):
    """One of a fixed set of strings that are names more than kinds (output types)."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values

    def check(self, node: yaml.Node, at: Where) -> str:
        value = STR.check(node, at)
        if value not in self.values:
            raise at.fail(node, f"'{at.key}' is {value!r}; expected one of "
                          f"{', '.join(self.values)}")
        return value


class ListOf(Schema[tuple[T, ...]]):
    def __init__(self, item: Schema[T]) -> None:
        self.item = item

    def check(self, node: yaml.Node, at: Where) -> tuple[T, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise at.fail(node, f"'{at.key}' must be a list")
        entry = dataclasses.replace(at, entry=True)
        return tuple(self.item.check(item, entry) for item in node.value)


STRS = ListOf(STR)


class OneOrMany(Schema[tuple[T, ...]]):
    """A list, or a single item standing for a list of one."""

    def __init__(self, item: Schema[T]) -> None:
        self.item = item

    def check(self, node: yaml.Node, at: Where) -> tuple[T, ...]:
        if isinstance(node, yaml.SequenceNode):
            return ListOf(self.item).check(node, at)
        return (self.item.check(node, at),)


class DictOf(Schema[dict[str, T]]):
    """A mapping from names the user picks (systems, forge names) to values."""

    def __init__(self, value: Schema[T], what: str) -> None:
        self.value = value
        self.what = what  # "map a system to a runner label or labels"

    def check(self, node: yaml.Node, at: Where) -> dict[str, T]:
        if not isinstance(node, yaml.MappingNode):
            raise at.fail(node, f"'{at.key}' must {self.what}")
        result: dict[str, T] = {}
        for key_node, value_node in pairs(node, at):
            result[key_node.value] = self.value.check(value_node, at.child(key_node.value))
        return result


class FilePath(Schema[Path]):
    """A path, relative to the directory of the file that names it; `inside`: it may not leave
    that directory (`../../..`, an absolute path, a symlink out). `follow=False` keeps the
    links in it (only `..` is taken away), for a reader that judges them (a key file)."""

    def __init__(self, inside: bool = False, follow: bool = True) -> None:
        self.inside = inside
        self.follow = follow

    def check(self, node: yaml.Node, at: Where) -> Path:
        text = STR.check(node, at)
        top = at.file.parent.resolve(strict=False)
        path = ((at.file.parent / text).resolve(strict=False) if self.follow
                else Path(os.path.normpath(top / text)))
        if self.inside and path != top and top not in path.parents:
            raise at.fail(node, f"'{at.key}' is {text!r}, which leaves {top}; give a directory "
                          "in it (relative to this file)")
        return path


class PathOrSwitch(Schema[Path | bool]):
    """A directory (relative to the file that names it), or true/false to keep the default
    one or turn the feature off (`eval.cache`)."""

    def check(self, node: yaml.Node, at: Where) -> Path | bool:
        value = _plain(node)
        if isinstance(value, bool):
            return value
        if not isinstance(value, str) or not value:
            raise at.fail(node, f"'{at.key}' must be a directory or false")
        return FilePath().check(node, at)


@dataclass(frozen=True)
class _Setting:
    schema: Schema[Any]
    key: str | None  # the YAML key, when it is not the field name with dashes
    required: bool
    # decides where a secret goes or what runs with privileges: read from the trusted side
    # (ci_nix/trust.py), never from a pull request's head
    trusted: bool = False


def setting(schema: Schema[T], default: T | None = None, *,
            factory: Callable[[], T] | None = None, key: str | None = None,
            required: bool = False, trusted: bool = False) -> Any:
    """A dataclass field read from YAML with `schema` (the field's default otherwise);
    `trusted`: a pull request's head may not change it (see ci_nix/trust.py)."""
    meta = {_SCHEMA: _Setting(schema, key, required, trusted)}
    if required:
        return dataclasses.field(metadata=meta)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_of(cls: type[Any]) -> dict[str, tuple[str, bool]]:
    """YAML key -> (field name, trusted) of a record's settings, in field order."""
    return {key: (name, spec.trusted) for key, (name, spec) in _settings(cls).items()}


def _settings(cls: type[Any]) -> dict[str, tuple[str, _Setting]]:
    """YAML key -> (field name, setting), in field order."""
    found = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_SCHEMA)
        if isinstance(spec, _Setting):
            found[spec.key or f.name.replace("_", "-")] = (f.name, spec)
    return found


def pairs(node: yaml.MappingNode, at: Where) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    """The key/value nodes of a mapping; a key given twice is an error."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        key = str(key_node.value)
        if key in seen:
            # YAML loaders keep the last one silently; a lost `cache:` block is worse.
            raise at.fail(key_node, f"key '{at.child(key).key}' appears twice "
                          f"(first on line {seen[key]}); merge them")
        seen[key] = key_node.start_mark.line + 1
    return list(node.value)


class Record(Schema[T]):
    """A mapping read into a frozen dataclass whose fields are `setting(...)`s."""

    def __init__(self, cls: type[T], what: str | None = None) -> None:
        self.cls = cls
        self.what = what  # how to say "must be a mapping" here, if not that
        self.settings = _settings(cls)

    def values(self, node: yaml.Node, at: Where) -> dict[str, Any]:
        """Field name -> value for the keys the mapping gives (for layering defaults)."""
        if not isinstance(node, yaml.MappingNode):
            what = self.what or (f"'{at.key}' must be a mapping" if at.key
                                 else "the file must be a mapping of settings")
            raise at.fail(node, what)
        values: dict[str, Any] = {}
        for key_node, value_node in pairs(node, at):
            key = str(key_node.value)
            if key not in self.settings:
                raise at.fail(key_node, f"unknown key '{at.child(key).key}'; known keys: "
                              f"{', '.join(self.settings)}")
            name, spec = self.settings[key]
            values[name] = spec.schema.check(value_node, at.child(key))
        for key, (name, spec) in self.settings.items():
            if spec.required and name not in values:
                where = f"every entry of '{at.key}'" if at.entry else f"'{at.key or at.file}'"
                raise at.fail(node, f"{where} needs a '{key}:'")
        return values

    def build(self, values: Mapping[str, Any]) -> T:
        return self.cls(**values)

    def check(self, node: yaml.Node, at: Where) -> T:
        return self.build(self.values(node, at))


class Fields(Schema[dict[str, Any]]):
    """The fields a mapping sets, by field name, unbuilt: for settings layered over defaults."""

    def __init__(self, record: Record[Any]) -> None:
        self.record = record

    def check(self, node: yaml.Node, at: Where) -> dict[str, Any]:
        return self.record.values(node, at)


@dataclass(frozen=True)
class At(Generic[T]):
    """A value with the line it starts on, for errors found after reading (a dangling name)."""

    value: T
    line: int


class Located(Schema[At[T]]):
    def __init__(self, schema: Schema[T]) -> None:
        self.schema = schema

    def check(self, node: yaml.Node, at: Where) -> At[T]:
        return At(self.schema.check(node, at), node.start_mark.line + 1)


def compose(file: Path, data: bytes | None = None) -> yaml.Node | None:
    """A YAML file's node tree (None when empty), or a one-line ConfigError; `data`: the file's
    bytes when they come from elsewhere (a git revision), `file` then only names them.

    Bytes -> UTF-8 text -> YAML -> plain data: whatever is in the file, the answer is a tree
    that safe_load would accept (string-able keys, known tags) or a one-line ConfigError.
    """
    if data is None:
        try:
            # a pull request's config may be a symlink (to /dev/zero, a FIFO): a file, bounded
            data = files.read_linked(file, MAX_BYTES)
        except OSError as err:
            raise ConfigError(f"{file}: cannot read: {err.strerror}") from None
        except ValueError as err:
            raise ConfigError(f"{file}: {err}; a config is a YAML file") from None
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
