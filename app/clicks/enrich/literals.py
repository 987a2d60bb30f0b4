"""Which literal strings a regular expression cannot match without: the prefilter that
lets a list of thousands of regexes be searched by trying only the few that can match
(the idea of RE2's FilteredRE2).

`required_literals(pattern)` gives a set of lower-case strings such that every match of
the pattern contains at least one of them, or None when no such set is worth having (the
pattern can match without any literal, or only through very short ones). It is sound, not
exact: a literal present does not mean a match, only its absence rules one out.
"""

import re
import string
from collections.abc import Iterable
from functools import cache
from itertools import product

# Python 3.11 exposes the parser of the `re` module as `re._parser` (formerly sre_parse).
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Generic, TypeVar

import ahocorasick_rs

# Beyond these, the strings a sequence can match are not spelt out (they multiply).
_MAX_PRODUCT = 64
# Beyond these, a set of alternatives (a long `A|B|C…` list of models) is not kept.
_MAX_ALTERNATIVES = 2000
# Single characters occur in every User-Agent and filter nothing; two-letter literals
# (`SH-`, `MOT`, `P[GN]-` give `sh`, `mo`, `pg`) still rule out most regexes of a list: a
# new User-Agent tries 13 of the 2,043 device entries, against 33 with three letters.
MIN_LENGTH = 2
# Literals found in this boilerplate filter next to nothing either: a regex is indexed by
# another of its literals when it has one.
_BOILERPLATE = (
    "mozilla/5.0 (linux; u; android 10; k; build/) applewebkit/537.36 (khtml, like gecko) "
    "version/4.0 chrome/120.0.0.0 mobile safari/537.36 (iphone; cpu iphone os 17_5 like mac "
    "os x) (ipad; (windows nt 10.0; win64; x64) (macintosh; intel mac os x 10_15_7) "
    "gecko/20100101 firefox/120.0 (x11; ubuntu; linux x86_64) wv) tablet "
    # Every phone of a few years says one of these: `Android 13; (?:S100|T20|…)` is worth
    # indexing by its models, not by the Android version (measured: that was a third of a
    # new User-Agent's regex searches).
    "android 4.4; android 5.1; android 6.0; android 7.0; android 8.1; android 9; "
    "android 11; android 12; android 13; android 14; android 15; android 16; "
)

Strings = frozenset[str]
T = TypeVar("T")


def required_literals(pattern: str) -> Strings | None:
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except (re.error, OverflowError, RecursionError):
        # Syntax only the `regex` module knows: the pattern is simply always tried.
        return None
    _exact, required = _sequence(list(parsed))
    return required


def _best(*sets: Strings | None) -> Strings | None:
    """Of several requirements that all hold, the most selective: the one whose shortest
    literal is longest (and, among those, the one with fewer alternatives)."""
    usable = [s for s in sets if s and min(map(len, s)) >= MIN_LENGTH]
    if not usable:
        return None
    return max(usable, key=_selectivity)


def _selectivity(literals: Strings) -> tuple[bool, int, int]:
    rare = not any(literal in _BOILERPLATE for literal in literals)
    return rare, min(6, *map(len, literals)), -len(literals)


def _sequence(items: list[tuple[object, object]]) -> tuple[Strings | None, Strings | None]:
    """(exact, required) of a concatenation. `exact` is every string it can match, when
    there are few; `required` as in `required_literals`."""
    run: Strings = frozenset({""})  # the exact strings of the items since the last gap
    candidates: list[Strings | None] = []
    whole_exact: Strings | None = frozenset({""})
    for op, arg in items:
        exact, required = _node(op, arg)
        candidates.append(required)
        if exact is None:  # a gap, unless a repeat there at least once
            # `x{1,n}` is a first copy of x, then maybe more: what comes before it, then a
            # copy, is there (`HT[0-9]{1,2}` needs `ht0` … `ht9`, not the `ht` of KHTML); and
            # what follows comes after a last copy.
            copy = _one_copy(op, arg)
            joined = _concat(run, copy) if copy is not None else None
            candidates.append(joined if joined is not None else run)
            run = copy if copy is not None else frozenset({""})
            whole_exact = None
            continue
        whole_exact = _concat(whole_exact, exact)
        longer = _concat(run, exact)
        if longer is None:  # too many combinations: what was gathered so far still holds
            candidates.append(run)
            longer = exact
        run = longer
    candidates.append(run)
    return whole_exact, _best(*candidates)


def _one_copy(op: object, arg: object) -> Strings | None:
    """The strings one copy of a repeat that is there at least once can match, if few."""
    if op not in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return None
    low, _high, sub = arg  # type: ignore[misc]
    return _sequence(list(sub))[0] if low >= 1 else None


def _concat(left: Strings | None, right: Strings) -> Strings | None:
    if left is None or len(left) * len(right) > _MAX_PRODUCT:
        return None
    return frozenset(a + b for a, b in product(left, right))


def _node(op: object, arg: object) -> tuple[Strings | None, Strings | None]:  # noqa: C901
    if op is sre.LITERAL:
        char = _lowered(arg)  # type: ignore[arg-type]
        return (frozenset({char}), None) if char is not None else (None, None)
    if op is sre.IN:
        chars = _class_chars(arg)  # type: ignore[arg-type]
        return (frozenset(chars), None) if chars is not None else (None, None)
    if op is sre.SUBPATTERN:
        _group, _add, _del, sub = arg  # type: ignore[misc]
        return _sequence(list(sub))
    if op is sre.ATOMIC_GROUP:
        return _sequence(list(arg))  # type: ignore[call-overload]
    if op is sre.BRANCH:
        _none, branches = arg  # type: ignore[misc]
        results = [_sequence(list(branch)) for branch in branches]
        exacts = [exact for exact, _ in results]
        exact: Strings | None = None
        if all(e is not None for e in exacts):
            union = frozenset().union(*exacts)  # type: ignore[arg-type]
            exact = union if len(union) <= _MAX_PRODUCT else None
        required = [_best(req, ex) for ex, req in results]
        if any(r is None for r in required):
            return exact, None
        union_required = frozenset().union(*required)  # type: ignore[arg-type]
        if len(union_required) > _MAX_ALTERNATIVES:
            return exact, None
        return exact, union_required
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, sub = arg  # type: ignore[misc]
        exact, required = _sequence(list(sub))
        if low == 0:
            # `x?` is `x` or nothing: still a short list of exact strings.
            return (exact | {""} if exact is not None and high == 1 else None), None
        if low == high == 1:
            return exact, required
        # At least one copy is there: what one copy requires, the repeat requires.
        return None, _best(required, exact)
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return frozenset({""}), None  # zero-width
    return None, None  # ANY, CATEGORY, NOT_LITERAL, GROUPREF, …: no literal to rely on


@cache
def _lowered(code: int) -> str | None:
    """The character as a lower-cased text holds it; None for one that IGNORECASE also
    matches to an ASCII letter it does not lower to (`ſ` matches `s`, `İ` matches `i`)."""
    char = chr(code)
    lowered = char.lower()
    if not char.isascii() and any(
        letter != lowered and re.fullmatch(re.escape(char), letter, re.IGNORECASE)
        for letter in string.ascii_lowercase
    ):
        return None
    return lowered


def _class_chars(items: list[tuple[object, object]]) -> set[str] | None:
    """The characters a small character class matches, lower-cased; None for big or
    negated ones."""
    chars: set[str] = set()
    for op, arg in items:
        if op is sre.LITERAL:
            codes: Iterable[int] = (arg,)  # type: ignore[assignment]
        elif op is sre.RANGE and arg[1] - arg[0] < 10:  # type: ignore[index,operator]
            codes = range(arg[0], arg[1] + 1)  # type: ignore[index]
        else:
            return None  # NEGATE, CATEGORY, a wide range
        for code in codes:
            if (char := _lowered(code)) is None:
                return None
            chars.add(char)
        if len(chars) > 10:
            return None
    return chars


class LiteralIndex:
    """Which of a list of literal sets (`required_literals` of each regex) have a literal in
    a text: one pass of an Aho-Corasick automaton over the lower-cased text."""

    def __init__(self, literal_sets: list[frozenset[str] | None]) -> None:
        self.size = len(literal_sets)
        self.always = frozenset(i for i, s in enumerate(literal_sets) if s is None)
        owners: dict[str, list[int]] = {}
        for position, literals in enumerate(literal_sets):
            for literal in literals or ():
                owners.setdefault(literal, []).append(position)
        self.literals = list(owners)
        self.owners = [owners[literal] for literal in self.literals]
        self.automaton = ahocorasick_rs.AhoCorasick(self.literals) if self.literals else None

    def hits(self, text: str) -> set[int]:
        if not text.isascii():
            # Literals are lower-cased ASCII for the most part; case folding beyond ASCII
            # ("ſ" matches "s") is not worth an index: such a text tries every entry.
            return set(range(self.size))
        found = set(self.always)
        if self.automaton is None:
            return found
        for literal, _start, _end in self.automaton.find_matches_as_indexes(
            text.lower(), overlapping=True
        ):
            found.update(self.owners[literal])
        return found


class FirstMatch(Generic[T]):
    """Regexes tried in order, the first that matches giving its value, each tried only
    where its literals occur: a text of random characters costs one automaton pass, not a
    search per regex."""

    def __init__(self, pairs: Iterable[tuple[re.Pattern[str], T]]) -> None:
        self.pairs = list(pairs)
        self.index = LiteralIndex([required_literals(p.pattern) for p, _ in self.pairs])

    def __call__(self, text: str) -> T | None:
        for position in sorted(self.index.hits(text)):
            pattern, value = self.pairs[position]
            if pattern.search(text):
                return value
        return None
