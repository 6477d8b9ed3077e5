"""Which settings Nix's configuration names: its nix.conf files (with their `include`s) and
NIX_CONFIG, read as Nix reads them. `nix show-config` cannot tell: a setting a file sets to its
default value looks the same there as one nobody set (README "Parallel builds")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ci_nix.tools.files import read_linked

_SYSTEM = "System configuration file: "
_USER = "User configuration files: "
_MAX_BYTES = 1024 * 1024  # a nix.conf is a few lines; a bigger one is not read (unknown)
_MAX_FILES = 64  # includes followed, cycles included


class Unknown(Exception):
    """A file Nix reads could not be read here: what it sets is not known."""


def files(version_text: str) -> tuple[Path, ...] | None:
    """The configuration files `nix -v --version` says Nix reads, in Nix's order (the system
    file, then the user files; Nix applies those last to first); None when it does not say."""
    system = user = None
    for line in version_text.splitlines():
        if line.startswith(_SYSTEM):
            system = _unquoted(line.removeprefix(_SYSTEM).strip())
        elif line.startswith(_USER):
            user = line.removeprefix(_USER).strip()
    if not system or user is None:
        return None
    return (Path(system), *(Path(name) for name in user.split(":") if name))


def _unquoted(text: str) -> str:
    """A path as Nix 2.33.0 to 2.34.x print it there, streaming a std::filesystem::path:
    std::quoted, between double quotes with '"' and '\\' escaped by a backslash (2.35 prints it
    plain again); a plain path as it is."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def names(conf_files: Iterable[Path], nix_config: str | None) -> frozenset[str]:
    """The settings the files (a missing one sets nothing, as for Nix) and NIX_CONFIG assign,
    `extra-` dropped. Unknown when a file that exists cannot be read."""
    found: set[str] = set()
    seen: list[Path] = []
    for file in conf_files:
        _read(file, found, seen)
    if nix_config:
        _parse(nix_config, Path.cwd(), found, seen)
    return frozenset(found)


def _read(file: Path, found: set[str], seen: list[Path]) -> None:
    if len(seen) >= _MAX_FILES:
        raise Unknown(f"more than {_MAX_FILES} configuration files (an include cycle?)")
    seen.append(file)
    try:
        # through symlinks (NixOS links /etc/nix/nix.conf to /etc/static), to a regular file
        data = read_linked(file, _MAX_BYTES)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as err:  # a link loop: OSError (ELOOP)
        raise Unknown(f"cannot read {file}: {err}") from err
    _parse(data.decode("utf-8", "replace"), file.parent, found, seen)


def _parse(text: str, directory: Path, found: set[str], seen: list[Path]) -> None:
    """Nix's nix.conf syntax: `name = value`, `#` comments, `include FILE` and `!include FILE`
    (relative to the including file's directory)."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("include", "!include"):
            _read(directory / words[1], found, seen)
        elif len(words) >= 2 and words[1] == "=":
            found.add(words[0].removeprefix("extra-"))
