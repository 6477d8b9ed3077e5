"""Nix's remote builders: the `builders` setting and the machines files it names, parsed the way
Nix parses them, so ci-nix knows which systems the configured builders serve."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ci_nix.errors import ConfigError

# Store URIs Nix takes as they are; anything else without `://` is an SSH host (`ssh://` implied).
_KEEP = ("local", "remote", "auto", "/")
_MAX_DEPTH = 8  # `@file` lines inside machines files: Nix follows them; a cycle must stop


@dataclass(frozen=True)
class Machine:
    """One build machine: a line of `builders` or of a machines file."""

    uri: str
    systems: tuple[str, ...]
    ssh_key: str | None = None
    max_jobs: int = 1
    speed_factor: float = 1.0
    supported_features: frozenset[str] = frozenset()
    mandatory_features: frozenset[str] = frozenset()
    public_host_key: str | None = None

    @property
    def enabled(self) -> bool:
        """Nix never sends a build to a machine that may run none."""
        return self.max_jobs > 0


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as err:
        if err.errno == errno.ENOENT:
            return None  # Nix ignores a missing machines file (the default one usually is)
        raise ConfigError(f"cannot read the machines file {path} (Nix's 'builders' setting): "
                          f"{err.strerror}") from None


def parse(text: str, local_system: str,
          read_file: Callable[[str], str | None] = _read, *, _depth: int = 0,
          _source: str = "builders") -> tuple[Machine, ...]:
    """Machines from a `builders` value: lines separated by newlines or `;`, `#` comments,
    `@FILE` lines naming machines files (a missing one is skipped, as Nix does)."""
    machines: list[Machine] = []
    for raw in text.replace(";", "\n").split("\n"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            path = line[1:].strip()
            if _depth >= _MAX_DEPTH:
                raise ConfigError(f"{_source}: machines files include each other ({path})")
            content = read_file(path)
            if content is not None:
                machines += parse(content, local_system, read_file, _depth=_depth + 1,
                                  _source=path)
            continue
        machines.append(_machine(line.split(), local_system, _source))
    return tuple(machines)


def _machine(tokens: list[str], local_system: str, source: str) -> Machine:
    def field(i: int) -> str | None:
        return tokens[i] if len(tokens) > i and tokens[i] not in ("", "-") else None

    def number(i: int, what: str, kind: Callable[[str], float]) -> float | None:
        value = field(i)
        if value is None:
            return None
        try:
            result = kind(value)
        except ValueError:
            result = -1
        if result < 0 or result != result:  # negative or NaN
            raise ConfigError(f"{source}: machine {tokens[0]}: {what} {value!r} is not a "
                              "non-negative number (fields: URI SYSTEMS SSH-KEY MAX-JOBS "
                              "SPEED-FACTOR FEATURES MANDATORY-FEATURES HOST-KEY)")
        return result

    def words(i: int) -> tuple[str, ...]:
        value = field(i)
        return tuple(w for w in value.split(",") if w) if value else ()

    uri = tokens[0]
    if "://" not in uri and not uri.startswith(_KEEP):
        uri = f"ssh://{uri}"
    max_jobs = number(3, "max jobs", int)
    speed = number(4, "speed factor", float)
    return Machine(
        uri=uri, systems=words(1) or (local_system,), ssh_key=field(2),
        max_jobs=1 if max_jobs is None else int(max_jobs),
        speed_factor=1.0 if speed is None else speed,
        supported_features=frozenset(words(5)), mandatory_features=frozenset(words(6)),
        public_host_key=field(7))


def systems(machines: tuple[Machine, ...]) -> frozenset[str]:
    """The systems some enabled machine builds."""
    return frozenset(system for m in machines if m.enabled for system in m.systems)


def serving(machines: tuple[Machine, ...], system: str) -> tuple[Machine, ...]:
    """The enabled machines that build system."""
    return tuple(m for m in machines if m.enabled and system in m.systems)
