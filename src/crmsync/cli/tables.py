"""Tabular CLI output that never cuts a value.

Ids, names and messages are printed whole, whatever the terminal's width (80 columns in pipes,
CI and default terminals): a table when every column fits at its natural width, otherwise one
record per line (``header: value`` pairs), which the terminal may wrap but nothing cuts.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["print_records", "table_width"]


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width a rich table of these cells takes with no cell wrapped or cut: each column
    as wide as its widest cell, one space of padding each side, a border between and around."""
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widest = max((len(line) for line in cell.splitlines()), default=0)
            widths[index] = max(widths[index], widest)
    return sum(widths) + 3 * len(widths) + 1


def print_records(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right: frozenset[str] = frozenset(),
) -> None:
    """Print ``rows`` under ``headers`` as a table when it fits the console, else one record
    per line. Columns named in ``right`` are right-aligned in the table."""
    if title:
        console.print(title, highlight=False, markup=False, soft_wrap=True)
    if table_width(headers, rows) <= console.width:
        table = Table()
        for header in headers:
            table.add_column(header, no_wrap=True, justify="right" if header in right else "left")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        return
    for row in rows:
        line = "; ".join(
            f"{header}: {cell}" for header, cell in zip(headers, row, strict=True) if cell != ""
        )
        console.print(Text(line), soft_wrap=True, highlight=False)
