"""OData query options as Dataverse accepts them (spec §0, §3): Prefer, $select, $filter, $orderby.

``$filter`` is parsed into a small AST (:class:`Comparison`, :class:`Logical`, :class:`Not`,
:class:`StringFunction`, :class:`InFunction`) that is either compiled to parameterised SQL for a
table (:mod:`crmsync.emulator.query`) or evaluated in Python against metadata documents
(:func:`evaluate`). Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses,
``contains/startswith/endswith``, ``Microsoft.Dynamics.CRM.In``, string/number/GUID/boolean/
null/date-time/enum literals, ``_x_value`` lookups and ``nav/key`` paths.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.dataverse_codes import ODATA_URI_ERROR
from crmsync.emulator.errors import bad_request

# -- Prefer -------------------------------------------------------------------------------

_PREFER_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')


@dataclass(frozen=True, slots=True)
class Preferences:
    """The ``Prefer`` header values Dataverse honours."""

    return_representation: bool = False
    annotations: tuple[str, ...] = ()
    max_page_size: int | None = None
    track_changes: bool = False
    continue_on_error: bool = False

    def wants(self, annotation: str) -> bool:
        """Whether ``odata.include-annotations`` asked for this annotation (wildcards allowed)."""
        return any(fnmatch.fnmatchcase(annotation, pattern) for pattern in self.annotations)

    @property
    def formatted(self) -> bool:
        """Whether formatted values were asked for."""
        return self.wants("OData.Community.Display.V1.FormattedValue")

    @property
    def lookup_details(self) -> tuple[bool, bool]:
        """Whether lookuplogicalname / associatednavigationproperty were asked for."""
        return (
            self.wants("Microsoft.Dynamics.CRM.lookuplogicalname"),
            self.wants("Microsoft.Dynamics.CRM.associatednavigationproperty"),
        )


def parse_prefer(values: list[str]) -> Preferences:
    """Parse every ``Prefer`` header line (comma-separated, quoted annotation lists)."""
    representation = track = continue_on_error = False
    annotations: tuple[str, ...] = ()
    page_size: int | None = None
    for header in values:
        for raw in _PREFER_SPLIT.split(header):
            item = raw.strip()
            key, _, value = item.partition("=")
            key = key.strip().lower()
            value = value.strip().strip('"')
            if key == "return" and value == "representation":
                representation = True
            elif key in ("odata.include-annotations", "include-annotations"):
                annotations = tuple(p.strip() for p in value.split(",") if p.strip())
            elif key in ("odata.maxpagesize", "maxpagesize"):
                try:
                    page_size = int(value)
                except ValueError:
                    raise bad_request(
                        ODATA_URI_ERROR, f"The value '{value}' of odata.maxpagesize is not valid."
                    ) from None
                if page_size <= 0:
                    raise bad_request(
                        ODATA_URI_ERROR, f"The value '{value}' of odata.maxpagesize is not valid."
                    )
            elif key in ("odata.track-changes", "track-changes"):
                track = True
            elif key in ("odata.continue-on-error", "continue-on-error"):
                continue_on_error = value.lower() != "false"
    return Preferences(representation, annotations, page_size, track, continue_on_error)


# -- $filter AST --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Property:
    """A property path: ``lastname``, ``_ownerid_value``, ``RequiredLevel/Value``."""

    path: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal; ``kind`` is string, number, guid, boolean, null, datetime or enum."""

    value: Any
    kind: str


Operand = Property | Literal


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right`` with op in eq ne gt ge lt le."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Logical:
    """``left and|or right``."""

    op: str
    left: FilterNode
    right: FilterNode


@dataclass(frozen=True, slots=True)
class Not:
    """``not expr``."""

    operand: FilterNode


@dataclass(frozen=True, slots=True)
class StringFunction:
    """``contains|startswith|endswith(property, 'text')``."""

    name: str
    prop: Property
    text: str


@dataclass(frozen=True, slots=True)
class InFunction:
    """``Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b'])``."""

    prop: Property
    values: tuple[str, ...]
    negated: bool = False


FilterNode = Comparison | Logical | Not | StringFunction | InFunction

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<enum>[A-Za-z_][A-Za-z0-9_.]*'(?:[^']|'')*')
  | (?P<name>[A-Za-z_$@][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),\[\]=])
    """,
    re.VERBOSE,
)
# ODataLib refuses deeper expressions too ("The recursion limit has been exceeded").
MAX_FILTER_DEPTH = 100
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})


def _syntax(message: str) -> Exception:
    return bad_request(ODATA_URI_ERROR, message)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _syntax(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0  # nesting of parentheses and ``not``

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _syntax(f"Expression expected at position {len(self.text)} in '{self.text}'.")
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        _, text = self.take()
        if text != value:
            raise _syntax(f"')' or ',' expected, found '{text}' in '{self.text}'.")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] == word:
            self.index += 1
            return True
        return False

    def parse(self) -> FilterNode:
        node = self.or_expr()
        if self.peek() is not None:
            raise _syntax(f"Syntax error: unexpected '{self.peek()[1]}' in '{self.text}'.")  # type: ignore[index]
        return node

    def or_expr(self) -> FilterNode:
        terms = [self.and_expr()]
        while self.keyword("or"):
            terms.append(self.and_expr())
        return _balanced("or", terms)

    def and_expr(self) -> FilterNode:
        terms = [self.unary()]
        while self.keyword("and"):
            terms.append(self.unary())
        return _balanced("and", terms)

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise _syntax(
                "The recursion limit has been exceeded: the $filter nests parentheses or 'not' "
                f"more than {MAX_FILTER_DEPTH} deep."
            )

    def unary(self) -> FilterNode:
        if self.keyword("not"):
            self._nest()
            operand = self.unary()
            self.depth -= 1
            return Not(operand)
        token = self.peek()
        if token is not None and token[1] == "(":
            self.take()
            self._nest()
            node = self.or_expr()
            self.depth -= 1
            self.expect(")")
            return node
        if token is not None and token[0] == "name":
            following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
            if following is not None and following[1] == "(":
                return self.function()
        left = self.operand()
        _, op = self.take()
        if op not in _COMPARISONS:
            raise _syntax(f"Syntax error: '{op}' is not a comparison operator in '{self.text}'.")
        return Comparison(op, left, self.operand())

    def function(self) -> FilterNode:
        _, name = self.take()
        self.expect("(")
        if name in _STRING_FUNCTIONS:
            prop = self.operand()
            self.expect(",")
            text = self.operand()
            self.expect(")")
            if (
                not isinstance(prop, Property)
                or not isinstance(text, Literal)
                or text.kind != "string"
            ):
                raise _syntax(f"{name} needs a property and a string literal.")
            return StringFunction(name, prop, str(text.value))
        if name in ("Microsoft.Dynamics.CRM.In", "Microsoft.Dynamics.CRM.NotIn"):
            args: dict[str, Any] = {}
            while True:
                _, key = self.take()
                self.expect("=")
                if self.peek() is not None and self.peek()[1] == "[":  # type: ignore[index]
                    self.take()
                    values: list[str] = []
                    while self.peek() is not None and self.peek()[1] != "]":  # type: ignore[index]
                        literal = self.operand()
                        values.append(str(literal.value) if isinstance(literal, Literal) else "")
                        if self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
                            self.take()
                    self.expect("]")
                    args[key] = tuple(values)
                else:
                    literal = self.operand()
                    args[key] = literal.value if isinstance(literal, Literal) else None
                if self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
                    self.take()
                    continue
                self.expect(")")
                break
            if "PropertyName" not in args or "PropertyValues" not in args:
                raise _syntax(f"{name} needs PropertyName and PropertyValues.")
            return InFunction(
                Property(str(args["PropertyName"])), args["PropertyValues"], name.endswith("NotIn")
            )
        raise _syntax(f"An unknown function with name '{name}' was found.")

    def operand(self) -> Operand:
        kind, text = self.take()
        if kind == "string":
            return Literal(text[1:-1].replace("''", "'"), "string")
        if kind == "guid":
            return Literal(text.lower(), "guid")
        if kind == "datetime":
            return Literal(text, "datetime")
        if kind == "number":
            stripped = text.rstrip("mMdDfFlL")
            number: float | int = (
                float(stripped) if any(c in stripped for c in ".eE") else int(stripped)
            )
            return Literal(number, "number")
        if kind == "enum":
            return Literal(text[text.index("'") + 1 : -1], "enum")
        if kind == "name":
            if text in ("true", "false"):
                return Literal(text == "true", "boolean")
            if text == "null":
                return Literal(None, "null")
            return Property(text)
        raise _syntax(f"Syntax error: unexpected '{text}' in '{self.text}'.")


def _balanced(op: str, terms: list[FilterNode]) -> FilterNode:
    """``a op b op c ...`` as a balanced tree (and/or are associative), so a long chain of
    conditions — hundreds of ``leadid eq ...`` joined by ``or`` — stays shallow to walk."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return Logical(op, _balanced(op, terms[:middle]), _balanced(op, terms[middle:]))


def parse_filter(text: str) -> FilterNode:
    """Parse a ``$filter`` expression; a malformed one raises a 400 InputError."""
    return _Parser(text).parse()


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """``a asc, b desc`` -> [("a", False), ("b", True)] (second item: descending)."""
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _syntax(f"Syntax error in $orderby '{text}'.")
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def parse_select(text: str) -> list[str]:
    """``a,b`` -> ["a", "b"]."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise _syntax(f"Syntax error in $select '{text}'.")
    return names


def split_top_level(text: str, separator: str) -> list[str]:
    """Split ``text`` at each ``separator`` outside parentheses, pieces unstripped.

    ``A($select=x,y),B`` split at ``,`` is ``["A($select=x,y)", "B"]``; unbalanced
    parentheses are a 400, as ODataLib refuses them.
    """
    pieces: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text + separator):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char == separator and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    if depth != 0:
        raise _syntax(f"The query option '{text}' has unbalanced parentheses.")
    return pieces


# -- Python evaluation (metadata documents) ------------------------------------------------


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _operand_value(document: Mapping[str, Any], operand: Operand) -> Any:
    if isinstance(operand, Property):
        return _lookup(document, operand.path)
    return operand.value


def _normalise(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def evaluate(node: FilterNode, document: Mapping[str, Any]) -> bool:
    """Whether a JSON document (e.g. an EntityDefinition) satisfies the filter."""
    if isinstance(node, Logical):
        if node.op == "and":
            return evaluate(node.left, document) and evaluate(node.right, document)
        return evaluate(node.left, document) or evaluate(node.right, document)
    if isinstance(node, Not):
        return not evaluate(node.operand, document)
    if isinstance(node, StringFunction):
        value = _lookup(document, node.prop.path)
        if not isinstance(value, str):
            return False
        haystack, needle = value.lower(), node.text.lower()
        if node.name == "contains":
            return needle in haystack
        if node.name == "startswith":
            return haystack.startswith(needle)
        return haystack.endswith(needle)
    if isinstance(node, InFunction):
        value = _normalise(_lookup(document, node.prop.path))
        found = value in {_normalise(v) for v in node.values} or str(value) in node.values
        return found != node.negated
    left = _normalise(_operand_value(document, node.left))
    right = _normalise(_operand_value(document, node.right))
    if node.op == "eq":
        return bool(left == right)
    if node.op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if node.op == "gt":
            return bool(left > right)
        if node.op == "ge":
            return bool(left >= right)
        if node.op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


_ALIAS = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*")


def resolve_aliases(query: Mapping[str, str]) -> dict[str, str]:
    """Substitute parameter aliases (``$filter=name eq @p&@p='x'``) and drop their definitions.

    OData 4.01 URL Conventions §5.1.1.14.1 (Parameter Aliases): an alias without a value is
    null. Only ``$filter`` and ``$orderby`` are rewritten, outside quoted strings.
    """
    aliases = {k: v for k, v in query.items() if k.startswith("@")}
    resolved = {k: v for k, v in query.items() if not k.startswith("@")}
    for option in ("$filter", "$orderby"):
        text = resolved.get(option)
        if text is None or "@" not in text:
            continue
        pieces = text.split("'")
        for index in range(0, len(pieces), 2):  # even pieces are outside quotes
            pieces[index] = _ALIAS.sub(lambda m: aliases.get(m.group(0), "null"), pieces[index])
        resolved[option] = "'".join(pieces)
    return resolved
