"""What a regular expression's own parse tells: the characters every match of it holds (a cheap
test before its search), and a regex matching every prefix of what it matches.

A text without them cannot match, and `literal in text` costs a fraction of a search that
fails (most do: a log's block is read against dozens of Nix's messages). The literals are read
off the pattern's own parse, so a pattern written later has them without anyone stating them;
where none can be read (classes only, a case ignored) there are none and the pattern is always
searched.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

# the parser `re` compiles with (private; its parse is read only here, and any surprise in it
# gives no literal: the pattern is searched as ever)
_sre_parser = importlib.import_module("re._parser")
_constants = importlib.import_module("re._constants")
_SEQUENCES = (_constants.SUBPATTERN, _constants.ATOMIC_GROUP)
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT)
OP = _constants  # (the parse's opcodes, for a reader of `parse`'s items)
REPEATS = _REPEATS


def parse(pattern: re.Pattern[str]) -> Any:
    """The pattern's parse, as re compiles it: a sequence of (opcode, argument) items."""
    return _sre_parser.parse(pattern.pattern, pattern.flags)

Needs = tuple[str, ...]  # every match holds one of these (none: nothing known)


def required_literals(pattern: re.Pattern[str]) -> Needs:
    """Runs of characters one of which every match of pattern holds (one run where the pattern
    is a sequence, one for each alternative of a choice), () where none is known."""
    try:
        parsed = parse(pattern)
        return _best(_needs(parsed, bool(parsed.state.flags & re.IGNORECASE)))
    except Exception:  # noqa: BLE001 (re's private parser changed: no prefilter, no harm)
        return ()


def required_literal(pattern: re.Pattern[str]) -> str:
    """The longest run of characters every match of pattern holds, "" where none is known."""
    needs = required_literals(pattern)
    return needs[0] if len(needs) == 1 else ""


def holds(text: str, needs: Needs) -> bool:
    """Whether text may match a pattern of these needs: it holds one of them (or none is known)."""
    for literal in needs:  # (a loop, not any(): no generator made for each text)
        if literal in text:
            return True
    return not needs


# how many characters a Choice searches whole before it splits (see there)
_SPLIT_AFTER = 20_000


class Choice:
    """A pattern that is a choice of many alternatives (the wordings of a family of messages),
    searched alternative by alternative in a text holding what each needs. re tries each
    alternative at each place of a text, ~80 us for a message against a hundred of them; a
    text holds the literals of few, and `literal in text` costs a fraction of a place tried.
    Alternatives needing the same are searched together, in the pattern's order; one needing
    nothing known is searched in every text; a pattern that is no choice, or one not written
    back (a back reference), is searched as it is. Exact: the pattern matches at a place where
    one of its alternatives does, so a text it matches holds what that alternative needs.

    Split once it searched `after` characters whole (reading and compiling the alternatives
    costs ~20 ms, what the whole searches ~10,000 characters of a text: a process that reads a
    log or two never pays it, one that reads a long line or many splits there)."""

    def __init__(self, pattern: re.Pattern[str], after: int = _SPLIT_AFTER) -> None:
        self.pattern = pattern
        self._parts: tuple[tuple[Needs, re.Pattern[str]], ...] | None = None
        self._looks: tuple[tuple[str, re.Pattern[str]], ...] = ()
        self._always: tuple[re.Pattern[str], ...] = ()
        self._searched, self._after = 0, after

    def _split(self) -> tuple[tuple[Needs, re.Pattern[str]], ...]:
        whole = ((), self.pattern),
        try:
            parsed = parse(self.pattern)
            items = list(parsed)
            if len(items) != 1 or items[0][0] is not _constants.BRANCH:
                return whole
            ignore_case = bool(parsed.state.flags & re.IGNORECASE)
            alike: dict[Needs, list[str]] = {}
            for alternative in items[0][1][1]:
                needs = _best(_needs(alternative, ignore_case))
                alike.setdefault(needs, []).append(_whole(alternative, None))
            return tuple((needs, re.compile("|".join(written), self.pattern.flags))
                         for needs, written in alike.items())
        except Exception:  # noqa: BLE001 (re's private parser changed: searched as it is)
            return whole

    def parts(self, text: str = "") -> tuple[tuple[Needs, re.Pattern[str]], ...] | None:
        """The alternatives searched apart, by what they need (None until split; a text to
        search counts towards the split)."""
        if self._parts is None:
            self._searched += len(text) + 1
            if self._searched > self._after:
                self._parts = self._split()
                # (each literal with its part, looked for in a loop of its own: no call a part)
                self._looks = tuple((literal, part) for needs, part in self._parts
                                    for literal in needs)
                self._always = tuple(part for needs, part in self._parts if not needs)
        return self._parts

    def found(self, text: str) -> bool:
        """Whether the pattern matches somewhere in text (`pattern.search(text)`)."""
        if self.parts(text) is None:
            return self.pattern.search(text) is not None
        for literal, part in self._looks:
            if literal in text and part.search(text) is not None:
                return True
        for part in self._always:
            if part.search(text) is not None:
                return True
        return False

    def search(self, text: str) -> re.Match[str] | None:
        """`pattern.search(text)`'s match: the pattern's own, searched from the first place
        one of the alternatives matches (none matches before it; `Match.pos` is that place)."""
        if self.parts(text) is None:
            return self.pattern.search(text)
        first = -1
        for literal, part in self._looks:
            if literal in text and (m := part.search(text)) is not None \
                    and (first < 0 or m.start() < first):
                first = m.start()
        for part in self._always:
            if (m := part.search(text)) is not None and (first < 0 or m.start() < first):
                first = m.start()
        return None if first < 0 else self.pattern.search(text, first)


def _needs(items: Any, ignore_case: bool) -> list[Needs]:
    """What a parsed sequence needs, each a run or a choice's runs: a literal goes on the run of
    characters the match holds in a row; a group is part of the sequence; anything else (a
    class, an optional part, an assertion) ends the run, a part repeated at least once needs
    what it needs, and a choice one of what each alternative needs (if each needs one)."""
    found: list[Needs] = []
    run: list[str] = []

    def end() -> None:
        if run:
            found.append(("".join(run),))
            run.clear()

    def read(items: Any, ignore_case: bool) -> None:
        for op, av in items:
            if op is _constants.LITERAL and not ignore_case:
                run.append(chr(av))
                continue
            if op in _SEQUENCES:
                body = av[-1] if op is _constants.SUBPATTERN else av
                add, remove = (av[1], av[2]) if op is _constants.SUBPATTERN else (0, 0)
                read(body, (ignore_case or bool(add & re.IGNORECASE))
                     and not remove & re.IGNORECASE)
                continue
            end()
            if op in _REPEATS and av[0] >= 1:
                found.append(_best(_needs(av[2], ignore_case)))
            elif op is _constants.BRANCH:
                each = [_best(_needs(alternative, ignore_case)) for alternative in av[1]]
                if all(each):
                    found.append(_fewest([literal for needs in each for literal in needs]))

    read(items, ignore_case)
    end()
    return found


def _fewest(literals: list[str]) -> Needs:
    """One of literals, without a literal that holds another (that one is in a text whenever
    the longer one is)."""
    unique = list(dict.fromkeys(literals))
    return tuple(literal for literal in unique
                 if not any(other != literal and other in literal for other in unique))


def _best(found: list[Needs]) -> Needs:
    """Of what a sequence needs (all of it), the cheapest test: the fewest runs to look for,
    then the longest (the rarer)."""
    return min((needs for needs in found if needs),
               key=lambda needs: (len(needs), -min(map(len, needs))), default=())


def ascii_folded(pattern: re.Pattern[str], exact: bool = True) -> re.Pattern[str]:
    """A pattern that ignores case, as it reads an ASCII text lowercased: it matches at the same
    places (lowercasing ASCII keeps each character in its place), without re folding the case
    of each character at each place it tries (a third of the cost on a log's lines). For where
    it matches: a match's text is the lowered one (search the pattern itself from there for
    the match). Not `exact`: a part that keeps case ("(?-i:…)") matches any case, so the fold
    matches at every place the pattern does and maybe more (none before the pattern's first).
    ValueError for a pattern whose case is meaning: one that keeps case, or (exact) a part of
    it that does, a range whose ends fold apart ("[A-z]"), a cased character beyond ASCII
    (Kelvin's "\\u212a" folds onto "k")."""
    parsed = parse(pattern)
    if not parsed.state.flags & re.IGNORECASE or not _foldable(parsed, exact):
        raise ValueError(f"no ASCII fold of {pattern.pattern!r}")
    return re.compile(_lowered(pattern.pattern), pattern.flags & ~re.IGNORECASE)


def _foldable(items: Any, exact: bool) -> bool:
    """Whether each part of a parsed pattern folds as ASCII does (see ascii_folded)."""
    for op, av in items:
        if op in (_constants.LITERAL, _constants.NOT_LITERAL):
            parts: list[Any] = []
            fine = _plain_case(chr(av))
        elif op is _constants.RANGE:
            low, high = chr(av[0]), chr(av[1])
            parts, fine = [], _plain_case(low) and _plain_case(high) and (
                (low.isascii() and high.isascii() and low.isalpha() and high.isalpha()
                 and low.isupper() == high.isupper())
                or not any(chr(code).isascii() and chr(code).isalpha()
                           for code in range(av[0], av[1] + 1)))
        elif op is _constants.SUBPATTERN:
            parts, fine = [av[3]], not (exact and av[2] & re.IGNORECASE)
        elif op is _constants.BRANCH:
            parts, fine = list(av[1]), True
        elif op is _constants.IN or op is _constants.ATOMIC_GROUP:
            parts, fine = [av], True
        elif op in _REPEATS:
            parts, fine = [av[2]], True
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
            parts, fine = [av[1]], True
        elif op is _constants.GROUPREF_EXISTS:
            parts, fine = [branch for branch in av[1:] if branch is not None], True
        else:
            parts, fine = [], True
        if not fine or not all(_foldable(part, exact) for part in parts):
            return False
    return True


def _plain_case(char: str) -> bool:
    """Whether a character folds as ASCII does: ASCII, or beyond it without a case."""
    return char.isascii() or char.lower() == char.upper()


def _lowered(source: str) -> str:
    """A pattern's source with its letters lowercase, but an escape's (its case is its
    meaning: "\\S", "\\B", "\\N{…}")."""
    out: list[str] = []
    at = 0
    while at < len(source):
        char = source[at]
        if char == "\\":
            end = source.index("}", at) + 1 if source.startswith("N{", at + 1) else at + 2
            out.append(source[at:end])
            at = end
        else:
            out.append(char.lower())
            at += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# A pattern written back from its parse, and its prefix form: a regex matching every prefix of
# what the pattern matches (diagnose reads a line of Nix's a copy cut at the text's end so).

_CATEGORY = {_constants.CATEGORY_DIGIT: r"\d", _constants.CATEGORY_NOT_DIGIT: r"\D",
             _constants.CATEGORY_SPACE: r"\s", _constants.CATEGORY_NOT_SPACE: r"\S",
             _constants.CATEGORY_WORD: r"\w", _constants.CATEGORY_NOT_WORD: r"\W"}
_AT = {_constants.AT_BEGINNING: "^", _constants.AT_BEGINNING_STRING: r"\A",
       _constants.AT_END: "$", _constants.AT_END_STRING: r"\Z",
       _constants.AT_BOUNDARY: r"\b", _constants.AT_NON_BOUNDARY: r"\B"}
_REPEAT_MARK = {_constants.MAX_REPEAT: "", _constants.MIN_REPEAT: "?",
                _constants.POSSESSIVE_REPEAT: "+"}
_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def _in_class(code: int) -> str:
    char = chr(code)
    return "\\" + char if char in "\\]^-[" else char


def _whole(items: Any, names: dict[int, str] | None) -> str:
    """A parsed regex (`re._parser`'s items) written back; group names kept where `names`."""
    out = []
    for op, av in items:
        if op is _constants.LITERAL:
            out.append(re.escape(chr(av)))
        elif op is _constants.NOT_LITERAL:
            out.append(f"[^{_in_class(av)}]")
        elif op is _constants.ANY:
            out.append(".")
        elif op is _constants.IN:
            inside = []
            for kind, value in av:
                if kind is _constants.NEGATE:
                    inside.append("^")
                elif kind is _constants.LITERAL:
                    inside.append(_in_class(value))
                elif kind is _constants.RANGE:
                    inside.append(f"{_in_class(value[0])}-{_in_class(value[1])}")
                else:
                    inside.append(_CATEGORY[value])
            out.append(f"[{''.join(inside)}]")
        elif op in _REPEATS:
            low, high, sub = av
            bound = "*" if (low, high) == (0, _constants.MAXREPEAT) else (
                f"{{{low},}}" if high == _constants.MAXREPEAT else f"{{{low},{high}}}")
            out.append(f"(?:{_whole(sub, names)}){bound}{_REPEAT_MARK[op]}")
        elif op is _constants.SUBPATTERN:
            group, add, remove, sub = av
            flags = "".join(letter for flag, letter in _FLAG_LETTERS if add & flag)
            off = "".join(letter for flag, letter in _FLAG_LETTERS if remove & flag)
            name = names.get(group) if names is not None and group else None
            out.append(f"(?P<{name}>{_whole(sub, names)})" if name else
                       f"(?{flags}{'-' + off if off else ''}:{_whole(sub, names)})")
        elif op is _constants.BRANCH:
            out.append("(?:" + "|".join(_whole(sub, names) for sub in av[1]) + ")")
        elif op is _constants.AT:
            out.append(_AT[av])
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
            direction, sub = av
            sign = ("=" if direction == 1 else "<=") if op is _constants.ASSERT else (
                "!" if direction == 1 else "<!")
            out.append(f"(?{sign}{_whole(sub, names)})")
        elif op is _constants.ATOMIC_GROUP:
            out.append(f"(?>{_whole(av, names)})")
        elif op is _constants.CATEGORY:
            out.append(_CATEGORY[av])
        else:  # (a back reference: no pattern of Nix's messages has one)
            raise ValueError(f"no prefix form for {op}")
    return "".join(out)


def _lookahead(op: Any, av: Any) -> bool:
    return op in (_constants.ASSERT, _constants.ASSERT_NOT) and av[0] == 1


def _prefixes(items: Any, names: dict[int, str] | None) -> str:
    """A regex matching every prefix of what `items` match (the empty one and the whole
    included): each item whole and a prefix of the rest, or a prefix of that item. A lookahead
    looks past the cut: left out. Group names only where the group is whole (`names`)."""
    items = [(op, av) for op, av in items if not _lookahead(op, av)]
    if not items:
        return ""
    op, av = items[0]
    if op is _constants.LITERAL:  # (a run of letters: each of its shorter prefixes, longest first)
        run = 0
        while run < len(items) and items[run][0] is _constants.LITERAL:
            run += 1
        said = "".join(chr(code) for _, code in items[:run])
        rest = _prefixes(items[run:], names)
        shorter = ""
        for char in reversed(said[:-1]):
            shorter = f"(?:{re.escape(char)}{shorter})?"
        return f"(?:{re.escape(said)}{rest}|{shorter})"
    first = _whole([items[0]], names)
    rest = _prefixes(items[1:], names)
    return f"(?:{first}{rest}|{_prefix_of(op, av)})"


def _prefix_of(op: Any, av: Any) -> str:
    """A regex matching every proper prefix of what one item matches (group names left out)."""
    if op in _REPEATS:
        _, high, sub = av
        times = "*" if high == _constants.MAXREPEAT else f"{{0,{max(high - 1, 0)}}}"
        return f"(?:{_whole(sub, None)}){times}{_prefixes(sub, None)}"
    if op is _constants.SUBPATTERN:
        return f"(?:{_prefixes(av[3], None)})"
    if op is _constants.BRANCH:
        return "(?:" + "|".join(_prefixes(sub, None) for sub in av[1]) + ")"
    return ""  # (one character, or what takes none: a proper prefix is the empty one)


@functools.cache
def prefix_form(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A regex matching, from a line's start to its end, a prefix of what `pattern` matches."""
    parsed = parse(pattern)
    names = {group: name for name, group in parsed.state.groupdict.items()}
    return re.compile(rf"(?:{_prefixes(list(parsed), names)})[ \t]*\Z",
                      pattern.flags & ~re.MULTILINE)


def written(items: Any) -> str:
    """A parsed pattern's items (`parse`'s, or some of them) written back as a regex."""
    return _whole(items, None)
