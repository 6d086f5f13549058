"""The advanced filter logic of a smart list: ``1 and (2 or not 3)``.

A small recursive-descent parser (no ``eval``) turns the text into a tree of numbered filter
references; anything else is refused with an :class:`InvalidValueError` that says what was
expected and where. Grammar, loosest first::

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | NUMBER
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from crmsync.errors import InvalidValueError

MAX_LOGIC_LENGTH = 2000
MAX_NESTING = 50
_TOKEN = re.compile(r"\s*(?:(\d+)|(\()|(\))|([A-Za-z]+)|(\S))")


@dataclass(frozen=True, slots=True)
class Ref:
    """Filter number ``index`` (1-based)."""

    index: int


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of ``operand``."""

    operand: Logic


@dataclass(frozen=True, slots=True)
class And:
    """All of ``operands``."""

    operands: tuple[Logic, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``operands``."""

    operands: tuple[Logic, ...]


Logic = Ref | Not | And | Or
T = TypeVar("T")


def _bad(text: str, why: str) -> InvalidValueError:
    return InvalidValueError(f"Invalid filter logic '{text[:100]}': {why}")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # pragma: no cover - the pattern matches any non-space character
            raise _bad(text, f"unexpected text at {position + 1}")
        number, left, right, word, other = match.groups()
        if other is not None:
            raise _bad(text, f"unexpected '{other}' at {match.start(5) + 1}")
        if word is not None and word.lower() not in {"and", "or", "not"}:
            raise _bad(text, f"unknown word '{word[:20]}' (use and, or, not)")
        tokens.append((number or left or right or word).lower())
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, filter_count: int) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.filter_count = filter_count
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _bad(self.text, "it ends too early")
        self.position += 1
        return token

    def expression(self) -> Logic:
        operands = [self.term()]
        while self.peek() == "or":
            self.take()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Logic:
        operands = [self.factor()]
        while self.peek() == "and":
            self.take()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Logic:
        token = self.take()
        if token in {"not", "("}:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise _bad(self.text, f"nested deeper than {MAX_NESTING} levels")
        if token == "not":  # noqa: S105 - a keyword, not a secret
            inner: Logic = Not(self.factor())
            self.depth -= 1
            return inner
        if token == "(":  # noqa: S105
            inner = self.expression()
            self.depth -= 1
            if self.peek() != ")":
                raise _bad(self.text, "a '(' is not closed")
            self.take()
            return inner
        if token.isdigit():
            index = int(token)
            if not 1 <= index <= self.filter_count:
                raise _bad(self.text, f"there is no filter {index} (1 to {self.filter_count})")
            return Ref(index)
        raise _bad(self.text, f"expected a filter number, 'not' or '(' but found '{token}'")


def parse_logic(text: str, filter_count: int) -> Logic:
    """Parse ``text`` for a smart list of ``filter_count`` filters; raise
    :class:`InvalidValueError` with the reason when it is not a valid expression."""
    if len(text) > MAX_LOGIC_LENGTH:
        raise _bad(text, f"longer than {MAX_LOGIC_LENGTH} characters")
    parser = _Parser(text, filter_count)
    if not parser.tokens:
        raise _bad(text, "it is empty")
    tree = parser.expression()
    if parser.peek() is not None:
        raise _bad(text, f"unexpected '{parser.peek()}' after a complete expression")
    return tree


def fold_logic(
    tree: Logic,
    ref: Callable[[int], T],
    negate: Callable[[T], T],
    all_of: Callable[[list[T]], T],
    any_of: Callable[[list[T]], T],
) -> T:
    """Evaluate ``tree`` with the given meanings of a reference, not, and, or."""
    if isinstance(tree, Ref):
        return ref(tree.index)
    if isinstance(tree, Not):
        return negate(fold_logic(tree.operand, ref, negate, all_of, any_of))
    parts = [fold_logic(item, ref, negate, all_of, any_of) for item in tree.operands]
    return all_of(parts) if isinstance(tree, And) else any_of(parts)
