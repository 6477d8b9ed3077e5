"""Counted nouns for messages: "1 attribute", "2 attributes", "1 dependency", "3 dependencies"."""

from __future__ import annotations

_IRREGULAR = {"copy": "copies", "dependency": "dependencies", "entry": "entries"}


def plural(noun: str) -> str:
    """The plural of a lower-case English noun as ci-nix's messages use them."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def count(n: int, noun: str) -> str:
    """`n` and the noun, singular for exactly one: `count(1, "flake")` is "1 flake"."""
    return f"{n} {noun if n == 1 else plural(noun)}"
