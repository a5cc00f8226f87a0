"""A static audit of regular expressions for the shapes that make Python's `re` backtrack
super-linearly (used by tests/test_extract.py on every pattern the extractor compiles).

`re` is a backtracking engine: a match attempt that fails after two greedy quantifiers could
have split one run of characters between them tries every split. The shapes found here:

- two unbounded runs that can share characters, with only optional things between them
  (`\\s*-?\\s*`, `\\s+\\s*`): quadratic in the run's length, per attempt;
- an unbounded repeat of something that itself repeats without bound (`(\\w+\\s?)*`), or that
  can match nothing: exponential.

A run that cannot give characters back (possessive `\\s*+`, or inside an atomic group) is not one
of them. What the audit does not see, a search that starts again at every position of a long
run, is what the adversarial queries in bench/extraction.py measure.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

# Characters the sets of two runs are compared on.
PROBE = [chr(i) for i in range(128)] + list(
    "\u00a0\u2003\u3000\u00e9\u00df\u0663\uff13\u2591\u20ac\u2014\u2013\u2192\u2019\u017f\u0130\u0131\u212a"
)
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
Item = tuple[Any, Any]


def problems(pattern: re.Pattern[str]) -> list[str]:
    """What is wrong with a compiled pattern (nothing: an empty list)."""
    found: list[str] = []
    _walk(list(_parser.parse(pattern.pattern, pattern.flags).data), [], pattern.flags, found)
    return found


def min_width(pattern: re.Pattern[str]) -> int:
    """The fewest characters a match of the pattern takes."""
    width: tuple[int, int] = _parser.parse(pattern.pattern, pattern.flags).getwidth()
    return width[0]


def literals(pattern: re.Pattern[str]) -> list[str]:
    """Every character the pattern spells out (literals, and the ends of ranges)."""
    found: list[str] = []

    def visit(items: list[Item]) -> None:
        for op, av in items:
            if op in (_c.LITERAL, _c.NOT_LITERAL):
                found.append(chr(av))
            elif op is _c.IN:
                for sop, sav in av:
                    if sop is _c.LITERAL:
                        found.append(chr(sav))
                    elif sop is _c.RANGE:
                        found.extend(chr(c) for c in range(sav[0], sav[1] + 1))
            for child in _children(op, av):
                visit(child)

    visit(list(_parser.parse(pattern.pattern, pattern.flags).data))
    return found


def _children(op: Any, av: Any) -> list[list[Item]]:
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return [list(av[2])]
    if op is _c.SUBPATTERN:
        return [list(av[3])]
    if op is _c.ATOMIC_GROUP:
        return [list(av)]
    if op is _c.BRANCH:
        return [list(b) for b in av[1]]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [list(av[1])]
    return []


def _backtracking_run(op: Any, av: Any) -> bool:
    return op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[1] == _c.MAXREPEAT


def _char_set(item: Item, flags: int) -> frozenset[str] | None:
    """The probe characters a one-character item matches; None for anything else."""
    op, av = item
    if op is _c.LITERAL:
        source = re.escape(chr(av))
    elif op is _c.NOT_LITERAL:
        source = "[^" + re.escape(chr(av)) + "]"
    elif op is _c.ANY:
        source = "."
    elif op is _c.IN:
        parts: list[str] = []
        for sop, sav in av:
            if sop is _c.NEGATE:
                parts.insert(0, "^")
            elif sop is _c.LITERAL:
                parts.append(re.escape(chr(sav)))
            elif sop is _c.RANGE:
                parts.append(re.escape(chr(sav[0])) + "-" + re.escape(chr(sav[1])))
            elif sop is _c.CATEGORY:
                parts.append(_CATEGORIES[str(sav)])
            else:
                return frozenset(PROBE)  # unknown: assume it overlaps everything
        source = "[" + "".join(parts) + "]"
    else:
        return None
    compiled = re.compile(source, flags & (re.IGNORECASE | re.DOTALL))
    return frozenset(ch for ch in PROBE if compiled.fullmatch(ch))


def _nullable(items: list[Item]) -> bool:
    return all(_item_nullable(item) for item in items)


def _item_nullable(item: Item) -> bool:
    op, av = item
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT, _c.GROUPREF_EXISTS):
        return True
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return bool(av[0] == 0) or _nullable(list(av[2]))
    if op is _c.BRANCH:
        return any(_nullable(list(b)) for b in av[1])
    if op in (_c.SUBPATTERN, _c.ATOMIC_GROUP):
        return _nullable(_children(op, av)[0])
    return False


def _leading_runs(items: list[Item], flags: int) -> list[frozenset[str]]:
    """Character sets of the unbounded runs a match of `items` may start with."""
    runs: list[frozenset[str]] = []
    for item in items:
        op, av = item
        body = list(av[2]) if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) else None
        if body is not None and av[1] == _c.MAXREPEAT and len(body) == 1:
            chars = _char_set(body[0], flags)
            runs.extend([chars] if chars is not None else _leading_runs(body, flags))
        elif op is not _c.ATOMIC_GROUP and op not in (_c.ASSERT, _c.ASSERT_NOT):
            for child in _children(op, av):
                runs.extend(_leading_runs(child, flags))
        if not _item_nullable(item):
            break
    return runs


def _unbounded_inside(items: list[Item]) -> bool:
    for op, av in items:
        if _backtracking_run(op, av):
            return True
        if op is not _c.ATOMIC_GROUP and any(_unbounded_inside(child) for child in _children(op, av)):
            return True
    return False


def _walk(items: list[Item], follow: list[Item], flags: int, found: list[str]) -> None:
    for index, (op, av) in enumerate(items):
        rest = items[index + 1 :] + follow
        if _backtracking_run(op, av):
            body = list(av[2])
            chars = _char_set(body[0], flags) if len(body) == 1 else None
            if _nullable(body):
                found.append(f"an unbounded repeat of something that can match nothing: {body}")
            elif chars is not None:
                for other in _leading_runs(rest, flags):
                    if chars & other:
                        shared = "".join(sorted(chars & other))[:8]
                        found.append(f"two runs, with only optional things between, share {shared!r}")
            elif _unbounded_inside(body):
                found.append("an unbounded repeat of something that repeats without bound")
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            body = list(av[2])
            # What may follow the body: the body again (another round), then what follows the
            # repeat, unless the repeat is possessive (it gives nothing back to what follows).
            again = body if av[1] > 1 else []
            _walk(body, again + ([] if op is _c.POSSESSIVE_REPEAT else rest), flags, found)
        elif op is _c.SUBPATTERN:
            _walk(list(av[3]), rest, flags, found)
        elif op is _c.BRANCH:
            for branch in av[1]:
                _walk(list(branch), rest, flags, found)
        elif op is _c.ATOMIC_GROUP:
            _walk(list(av), [], flags, found)  # gives nothing back to what follows
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            _walk(list(av[1]), [], flags, found)  # a lookaround is atomic once it has matched
