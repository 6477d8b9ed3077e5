"""README.md, the user reference: its code blocks close, and each YAML example parses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def _blocks() -> list[tuple[int, str, str]]:
    """(line, language, text) of each fenced block; AssertionError for one left open."""
    blocks: list[tuple[int, str, str]] = []
    current: tuple[int, str, list[str]] | None = None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        found = FENCE.match(line)
        if found is None:
            if current is not None:
                current[2].append(line)
            continue
        if current is None:
            current = (number, found.group(2), [])
        else:
            assert not found.group(2), f"README.md:{number}: a block opens inside the one " \
                f"opened at line {current[0]} (a missing ```?)"
            blocks.append((current[0], current[1], "\n".join(current[2])))
            current = None
    assert current is None, f"README.md:{current[0]}: a code block is never closed"
    return blocks


def test_every_yaml_example_in_the_readme_parses() -> None:
    examples = [(line, text) for line, language, text in _blocks() if language == "yaml"]
    assert len(examples) > 10
    for line, text in examples:
        try:
            list(yaml.safe_load_all(text))
        except yaml.YAMLError as err:
            raise AssertionError(f"README.md:{line}: the yaml example does not parse: {err}") \
                from None
