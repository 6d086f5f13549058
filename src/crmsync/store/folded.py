"""Text compared without regard to case, in the form each database can index.

Smart lists compare text ignoring case. :class:`folded` is that comparison's left side:
``lower(column)`` on PostgreSQL (served by expression indexes on ``lower(...)``) and
``column COLLATE NOCASE`` on SQLite, where an index on the plain column with that collation
answers it and can cover the whole query (SQLite's ``lower()`` folds the same ASCII letters,
so the meaning is the same). The same element declares the index (``tables.py``) and builds
the filter (:mod:`crmsync.marketing.smartlists`), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String


class folded(FunctionElement[str]):
    """``folded(column)``: the column's text as compared ignoring case."""

    type = String()
    inherit_cache = True
    name = "folded"


def _argument(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = list(element.clauses)
    return str(compiler.process(argument, **kw))


@compiles(folded)
def _lower(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({_argument(element, compiler, **kw)})"


@compiles(folded, "sqlite")
def _nocase(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_argument(element, compiler, **kw)} COLLATE NOCASE"
