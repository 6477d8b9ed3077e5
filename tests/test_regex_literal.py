"""The characters every match of a pattern holds, the test before diagnose's searches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ci_nix import diagnose
from ci_nix.regex_literal import holds, required_literal, required_literals

SOURCES = Path(__file__).resolve().parent / "data" / "sources"


@pytest.mark.parametrize(("pattern", "literal"), [
    (r"builder for ['‘`]", "builder for "),
    # a group is part of the run; a choice, an optional part, a class end it
    (r"hash (?P<what>mis)match", "hash mismatch"),
    (r"abc(?:d|e)fg", "abc"),
    (r"a(?:bc|bd)", "ab"),  # (re's parser takes a choice's common start out of it)
    (r"ab?cdef", "cdef"),
    (r"x[0-9]yz", "yz"),
    (r"(?:error: )?build of ", "build of "),
    # a part repeated at least once holds its own run; one that may be absent, none
    (r"q(?:abcd)+", "abcd"),
    (r"qrs(?:abcd)*", "qrs"),
    # an assertion holds nothing the match holds
    (r"(?<=Reason: )x", "x"),
    (r"ab\bcd", "ab"),
    # a case ignored: no run (a pattern's or a group's own)
    (r"(?i)error: x", ""),
    (r"(?i:error): x", ": x"),
    (r"(?:Task|Help) +: ", ": "),
    (r"(?:Task|Help)", ""),  # alternatives only: always searched
    ("", ""),
])
def test_the_literal_is_the_longest_run_every_match_holds(pattern: str, literal: str) -> None:
    assert required_literal(re.compile(pattern)) == literal
    assert required_literal(re.compile(pattern, re.IGNORECASE)) == ""


@pytest.mark.parametrize(("pattern", "needs"), [
    (r"abc", ("abc",)),
    # a choice needs one of what each alternative needs (each must need one)
    (r"x?(?:unexpected error|zsh: )", ("unexpected error", "zsh: ")),
    (r"(?:Killed|y)z", ("z",)),  # (a run the whole sequence needs is the cheaper look)
    (r"(?:abc|[0-9])", ()),
    (r"(?:ab: |\]: )", ("ab: ", "]: ")),
    (r"(?:x: |\]x: )", ("x: ",)),  # (a run that holds another is in a text only with it)
    (r"(?:a(?:bc|de)f|gh)", ("a", "gh")),
])
def test_a_choice_needs_one_of_its_alternatives_literals(pattern: str, needs: tuple[str, ...]
                                                         ) -> None:
    assert required_literals(re.compile(pattern)) == needs
    assert required_literal(re.compile(pattern)) == (needs[0] if len(needs) == 1 else "")


def test_a_text_holds_the_needs_where_it_holds_one_of_them() -> None:
    assert holds("x zsh: y", ("unexpected error", "zsh: "))
    assert not holds("x zsh y", ("unexpected error", "zsh: "))
    assert holds("anything", ())  # (nothing known: always searched)


def test_every_pattern_is_searched_only_where_its_literal_is() -> None:
    """Each of _PATTERNS, in order, with its literal; a pattern none is read from is searched
    in every text ("" is in every text), so a pattern added without a thought for it works."""
    needing = diagnose._patterns_needing()
    assert [(name, pattern) for name, pattern, _ in needing] == diagnose._PATTERNS
    assert sum(bool(needs) for _, _, needs in needing) >= len(needing) - 5
    assert all(needs in "" for _, _, needs in needing if not needs)


def test_no_pattern_matches_a_text_without_its_literal() -> None:
    """On the sources' messages of Nix (every wording, one each: short texts): a pattern
    matches no text that lacks its literal, and every match holds it."""
    texts = [p.read_text(errors="replace") for p in
             sorted([*SOURCES.glob("*.log"), *(SOURCES / "wordings").glob("*.log")])]
    assert len(texts) >= 1000
    matched = set()
    for name, pattern, needs in diagnose._patterns_needing():
        for text in texts:
            m = pattern.search(text)
            if m is not None:
                matched.add(name)
                assert needs in m[0], (name, needs, m[0])
    # (the texts hold most of Nix's messages: the check is no empty one)
    assert len(matched) >= 40, sorted(matched)
