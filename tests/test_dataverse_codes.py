"""One table of Dataverse error codes, shared by the client, the converter and the emulator."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from crmsync import dataverse_codes as codes
from crmsync.dynamics.classify import Action, DataverseError, classify_status
from crmsync.errors import ThrottledError, TransientServerError

SRC = Path(__file__).resolve().parents[1] / "src" / "crmsync"
_CODE_LITERAL = re.compile(r"^(0x8[0-9a-fA-F]{7}|-21\d{8})$")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_table_imports_nothing() -> None:
    """The emulator may share it, so it depends on nothing (``__future__`` aside)."""
    assert _imported_modules(SRC / "dataverse_codes.py") == {"__future__"}


def test_no_module_spells_a_dataverse_code_of_its_own() -> None:
    """Every code literal lives in the table; the others name it (so the copies cannot drift)."""
    strays = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.value}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "dataverse_codes.py"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _CODE_LITERAL.match(node.value)
    ]
    assert strays == []


def test_the_emulator_imports_nothing_of_the_product_but_the_code_table() -> None:
    """The emulator sits beside the product: its own faults, config errors and secrets."""
    product = {
        f"{path.relative_to(SRC)}: {module}"
        for path in sorted((SRC / "emulator").rglob("*.py"))
        for module in _imported_modules(path)
        if module.split(".")[0] == "crmsync"
        and not module.startswith("crmsync.emulator")
        and module != "crmsync.dataverse_codes"
    }
    assert product == set()


def test_codes_compare_whatever_their_case() -> None:
    """Live orgs spell codes in either case; the client reads both as the same code."""
    assert codes.same_code("0x8004f502", codes.SECURED_CREATE)
    assert codes.same_code(" 0x80048D19", codes.PAYLOAD_ERROR)
    assert not codes.same_code(None, codes.PAYLOAD_ERROR)
    assert not codes.same_code("0x80048d18", codes.PAYLOAD_ERROR)


def test_the_client_reads_each_throttle_code_as_throttling_even_without_429() -> None:
    """§8: the three service protection codes mean "retry after a pause" whatever the status."""
    for code in (
        codes.THROTTLED_REQUESTS,
        codes.THROTTLED_EXECUTION_TIME,
        codes.THROTTLED_CONCURRENCY,
    ):
        resolution = classify_status(503, DataverseError(code.upper(), "limit"), 7.0)
        assert resolution.action is Action.RETRY
        assert isinstance(resolution.error, ThrottledError)
        assert resolution.retry_after == 7.0


def test_sql_errors_are_transient_in_hex_and_in_decimal() -> None:
    """§7: a deadlock or SQL timeout arrives as hex or as the same number in decimal."""
    assert int(codes.SQL_DEADLOCK, 16) - 2**32 == int(codes.SQL_DEADLOCK_DECIMAL)
    assert int(codes.SQL_TIMEOUT, 16) - 2**32 == int(codes.SQL_TIMEOUT_DECIMAL)
    for code in (codes.SQL_DEADLOCK, codes.SQL_TIMEOUT_DECIMAL):
        resolution = classify_status(400, DataverseError(code, "deadlock"))
        assert resolution.action is Action.RETRY
        assert isinstance(resolution.error, TransientServerError)
