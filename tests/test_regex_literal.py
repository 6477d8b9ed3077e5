"""The characters every match of a pattern holds, the test before diagnose's searches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ci_nix import diagnose
from ci_nix.regex_literal import Choice, holds, required_literal, required_literals

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
    assert [(name, pattern) for name, pattern, _, _ in needing] == diagnose._PATTERNS
    assert sum(bool(needs) for _, _, needs, _ in needing) >= len(needing) - 2
    assert all(needs in "" for _, _, needs, _ in needing if not needs)
    # (a pattern of alternatives: one of the runs each needs, searched where one is)
    assert all(needs and required_literal(pattern) == ""
               and (needs, *more) == required_literals(pattern)
               for _, pattern, needs, more in needing if more)


def test_no_pattern_matches_a_text_without_its_literal() -> None:
    """On the sources' messages of Nix (every wording, one each: short texts): a pattern
    matches no text that lacks its literal, and every match holds it."""
    texts = [p.read_text(errors="replace") for p in
             sorted([*SOURCES.glob("*.log"), *(SOURCES / "wordings").glob("*.log")])]
    assert len(texts) >= 1000
    matched = set()
    for name, pattern, needs, more in diagnose._patterns_needing():
        for text in texts:
            m = pattern.search(text)
            if m is not None:
                matched.add(name)
                assert holds(m[0], (needs, *more)), (name, needs, more, m[0])
    # (the texts hold most of Nix's messages: the check is no empty one)
    assert len(matched) >= 40, sorted(matched)


_CHOICE_TEXTS = ["", "x", "ab", "xxabyy", "a\nb", "cat dog", "catalog", "dog\ncat", "dogs",
                 "the cat's dog", "abc abd", "zzz 12 zz", "Cat"]


@pytest.mark.parametrize("pattern", [
    r"cat|dog",
    r"\bcat\b|dogs?$|ab[cd]",  # (boundaries and ends: the text around the place is the text's)
    r"(?<=a)b|(?<!\w)dog|\d+ z",  # (a look behind sees before the place the search starts)
    r"(?m)^cat|^dog",
    r"(?P<word>cat)|(dog)(?=s)",  # (groups: the pattern's own match)
    r"ab|[0-9]+|x",  # (an alternative needing no literal: searched in every text)
    r"(?i)cat|DOG",
    r"(cat)\1|dog",  # (a back reference: the pattern searched as it is)
    r"catalog",  # (no choice)
    r"c|ca|cat",  # (at one place, the first alternative that matches: the pattern's)
])
def test_a_choice_searched_by_its_alternatives_finds_what_the_pattern_does(pattern: str
                                                                             ) -> None:
    compiled = re.compile(pattern)
    choice = Choice(compiled, after=len(_CHOICE_TEXTS) // 2)  # (whole, then split)
    for text in _CHOICE_TEXTS:
        m, got = compiled.search(text), choice.search(text)
        assert choice.found(text) is (m is not None), (pattern, text)
        assert (m is None) is (got is None), (pattern, text)
        if m is not None and got is not None:
            assert (m.span(), m.groups(), m.groupdict()) == (
                got.span(), got.groups(), got.groupdict()), (pattern, text)


def test_a_choice_is_searched_by_literals_only_where_they_are_read() -> None:
    def needs(pattern: str) -> list[tuple[str, ...]]:
        return [needs for needs, _ in Choice(re.compile(pattern), after=0).parts() or ()]
    assert needs(r"cat|dogs?|ab[cd]|[0-9]+") == [("cat",), ("dog",), ("ab",), ()]
    assert needs(r"ab[cd]|ab[ef]|y") == [("ab",), ("y",)]  # (alike: searched together)
    assert needs(r"(cat)\1|dog") == [()]  # (a back reference: the pattern as it is)
    # searched whole until it searched `after` characters (a text's, and one for each)
    choice = Choice(re.compile(r"cat|dog"), after=6)
    assert [choice.parts("ab"), choice.parts("c"), choice.parts("d") is not None] == [
        None, None, True]


def test_diagnoses_choices_find_what_their_patterns_do_in_the_sources() -> None:
    """The big choices diagnose searches by their alternatives (what Nix itself says, the
    evaluator's messages, the failure marks, Nix's heads), on each line of the sources'
    wordings (each line once: a line of a log is what diagnose searches most)."""
    lines = sorted({line for p in [*SOURCES.glob("*.log"), *(SOURCES / "wordings").glob("*.log")]
                    for line in p.read_text(errors="replace").split("\n")})
    for used, lower, least in ((diagnose._NIX_ITSELF_CHOICE, False, 100),
                               (diagnose._EVAL_MESSAGE_CHOICE, False, 100),
                               (diagnose._NIX_HEAD_CHOICE, False, 100),
                               (diagnose._FAILURE_MARK_FOLDED_CHOICE, True, 100),
                               (diagnose._NIX_SUBSYSTEM_CHOICE, False, 20),
                               (diagnose._FETCHER_OWN_CHOICE, False, 3),
                               (diagnose._DOWNLOAD_FAILED_CHOICE, False, 10)):
        pattern, choice = used.pattern, Choice(used.pattern, after=0)
        assert len(choice.parts() or ()) >= 10  # (split: no pattern searched whole)
        found = 0
        for text in lines:
            text = text.lower() if lower else text
            m, got = pattern.search(text), choice.search(text)
            assert (None if m is None else m.span()) == (None if got is None else got.span())
            found += m is not None
        assert found >= least, (pattern.pattern[:40], found)
