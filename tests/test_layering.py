"""The package layering of DESIGN.md, enforced by reading every import of ``src/crmsync``.

Dependencies point down: ``cli`` / ``web`` → ``sync`` → ``dynamics`` / ``marketing`` → ``store``.
``errors`` and ``settings`` are importable by every package. The Dataverse emulator sits beside
the product and imports nothing of it but its own modules and the dependency-free table of
Dataverse error codes. Only ``dynamics`` speaks HTTP to Dataverse. The pure core of the engine
(``sync.merge``, ``sync.policy``, ``sync.mapping``) imports nothing that does I/O, directly or
through the crmsync modules it imports.

Imports are read with ``ast`` (every ``import`` statement, at module level, inside functions and
under ``TYPE_CHECKING``), so a lazy import cannot hide a dependency. Importing a package also
runs its ``__init__``; these rules look at the modules a module names, not at what the package
``__init__`` files re-export.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# The error-code table shared by the client, the converter and the emulator; either name is
# accepted for it. It must import nothing of crmsync.
ERROR_CODE_TABLES = ("crmsync.dataverse_codes", "crmsync.dynamics.error_codes")

BASE = ("crmsync.errors", "crmsync.settings")

# What each part of crmsync may import of crmsync (a name covers the module and its submodules).
# A package that is not listed here fails the test until it is placed in a layer.
ALLOWED: dict[str, tuple[str, ...]] = {
    "crmsync": (),
    "crmsync.errors": (),
    "crmsync.settings": ("crmsync.errors",),
    "crmsync.dataverse_codes": (),
    "crmsync.dynamics.error_codes": (),
    "crmsync.store": ("crmsync.store", *BASE),
    "crmsync.dynamics": ("crmsync.dynamics", *ERROR_CODE_TABLES, *BASE),
    "crmsync.marketing": ("crmsync.marketing", "crmsync.store", *BASE),
    "crmsync.sync": (
        "crmsync.sync",
        "crmsync.dynamics",
        "crmsync.marketing",
        "crmsync.store",
        *ERROR_CODE_TABLES,
        *BASE,
    ),
    "crmsync.web": (
        "crmsync.web",
        "crmsync.sync",
        "crmsync.dynamics",
        "crmsync.marketing",
        "crmsync.store",
        *BASE,
    ),
    "crmsync.cli": ("crmsync",),  # the top: the commands may use every package
    "crmsync.console": ("crmsync",),  # the console script, beside the commands
    # `sync status` as text, free of the command-line framework so the console script is quick
    "crmsync.status_text": ("crmsync.sync", "crmsync.store", *BASE),
    "crmsync.emulator": ("crmsync.emulator", *ERROR_CODE_TABLES),
}

# Libraries that speak to Dataverse over HTTP: only the Web API client may use them.
WIRE_LIBRARIES = ("httpx", "msal", "requests")
WIRE_OWNERS = ("crmsync.dynamics",)

# The pure core of the engine and what "does I/O" means for it.
PURE_MODULES = ("crmsync.sync.merge", "crmsync.sync.policy", "crmsync.sync.mapping")
IO_IMPORTS = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "sqlite3",
    "httpx",
    "msal",
    "requests",
    "urllib.request",
    "http",
    "socket",
    "ssl",
    "smtplib",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "subprocess",
    "asyncio",
    "crmsync.store",
    "crmsync.dynamics.client",
)

# Violations being removed by work in progress. Keep the rules strict and this set explicit:
# it must shrink to empty, and an entry that no longer occurs fails the test until it is
# deleted. Each entry is (importing module, imported module). Empty: the tree follows every rule.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target, where it was written."""

    module: str
    path: Path
    line: int
    target: str


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken rule, worded so that the failure message says what to change."""

    module: str
    target: str
    where: str
    rule: str

    def __str__(self) -> str:
        if not self.target:
            return f"{self.where}: {self.module} is {self.rule}"
        verb = "calls" if self.target.endswith("()") else "imports"
        return f"{self.where}: {self.module} {verb} {self.target} ({self.rule})"


def module_name(root: Path, path: Path) -> str:
    """Return the dotted name of ``path`` below the source root ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_imports(root: Path, package: str = "crmsync") -> dict[str, list[Import]]:
    """Return every module of ``package`` below ``root`` with the imports it makes."""
    files = sorted((root / package).rglob("*.py"))
    known = {module_name(root, f) for f in files}
    result: dict[str, list[Import]] = {}
    for path in files:
        name = module_name(root, path)
        is_package = path.name == "__init__.py"
        found: list[Import] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, name, is_package, known):
                    found.append(Import(name, path, node.lineno, target))
        result[name] = found
    return result


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    # ``from crmsync.emulator import actions`` imports the module crmsync.emulator.actions.
    submodules = [f"{source}.{alias.name}" for alias in node.names]
    named = [s for s in submodules if s in known]
    return named or [source]


def _covers(prefixes: Iterable[str], name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer_of(module: str) -> str | None:
    candidates = [layer for layer in ALLOWED if _covers([layer], module)]
    return max(candidates, key=len) if candidates else None


def check_layers(imports: dict[str, list[Import]], root: Path) -> list[Violation]:
    """Every import of crmsync must be allowed for the importing module's layer."""
    found: list[Violation] = []
    for module, statements in imports.items():
        layer = _layer_of(module)
        if layer is None or (layer == "crmsync" and module != "crmsync"):
            found.append(Violation(module, "", _where(root, module), "not placed in a layer"))
            continue
        for imp in statements:
            if _covers(["crmsync"], imp.target) and not _covers(ALLOWED[layer], imp.target):
                rule = f"{layer} may import only {', '.join(ALLOWED[layer]) or 'no crmsync module'}"
                found.append(Violation(module, imp.target, _at(root, imp), rule))
            if _covers(WIRE_LIBRARIES, imp.target) and not _covers(WIRE_OWNERS, module):
                rule = "only crmsync.dynamics speaks HTTP to Dataverse"
                found.append(Violation(module, imp.target, _at(root, imp), rule))
    return found


def check_pure(imports: dict[str, list[Import]], root: Path) -> list[Violation]:
    """The pure modules, and every crmsync module they reach, import nothing that does I/O."""
    found: list[Violation] = []
    for pure in PURE_MODULES:
        seen: set[str] = set()
        pending = [(pure, pure)]
        while pending:
            module, chain = pending.pop()
            if module in seen or module not in imports:
                continue
            seen.add(module)
            rule = f"{pure} must do no I/O" + (f", reached via {chain}" if chain != pure else "")
            for imp in imports[module]:
                if _covers(IO_IMPORTS, imp.target):
                    found.append(Violation(module, imp.target, _at(root, imp), rule))
                elif imp.target in imports:
                    pending.append((imp.target, f"{chain} -> {imp.target}"))
            path = _path_of(root, module)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "open"
                ):
                    where = f"{path.relative_to(root.parent)}:{node.lineno}"
                    found.append(Violation(module, "open()", where, rule))
    return found


def all_violations(root: Path) -> list[Violation]:
    """Return every layering and purity violation of the ``crmsync`` tree below ``root``."""
    imports = read_imports(root)
    return check_layers(imports, root) + check_pure(imports, root)


def _path_of(root: Path, module: str) -> Path:
    base = root.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _where(root: Path, module: str) -> str:
    return str(_path_of(root, module).relative_to(root.parent))


def _at(root: Path, imp: Import) -> str:
    return f"{imp.path.relative_to(root.parent)}:{imp.line}"


def test_dependencies_point_down_and_the_pure_core_does_no_io() -> None:
    unexpected = [v for v in all_violations(SRC) if (v.module, v.target) not in KNOWN_VIOLATIONS]
    assert not unexpected, "layering broken:\n" + "\n".join(map(str, unexpected))


def test_every_known_violation_still_exists_so_the_list_only_shrinks() -> None:
    current = {(v.module, v.target) for v in all_violations(SRC)}
    fixed = sorted(KNOWN_VIOLATIONS - current)
    assert not fixed, f"fixed, delete from KNOWN_VIOLATIONS: {fixed}"


def _plant(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A tiny crmsync tree that respects every rule."""
    root = tmp_path / "src"
    _plant(
        root,
        {
            "crmsync/__init__.py": "",
            "crmsync/errors.py": "",
            "crmsync/settings.py": "from crmsync.errors import X\n",
            "crmsync/store/__init__.py": "",
            "crmsync/store/db.py": "import sqlalchemy\n",
            "crmsync/dynamics/__init__.py": "",
            "crmsync/dynamics/client.py": "import httpx\n",
            "crmsync/dynamics/error_codes.py": "",
            "crmsync/marketing/__init__.py": "",
            "crmsync/marketing/persons.py": "from crmsync.store import db\n",
            "crmsync/sync/__init__.py": "",
            "crmsync/sync/policy.py": "from crmsync.errors import X\n",
            "crmsync/sync/merge.py": "from . import policy\n",
            "crmsync/sync/mapping.py": "from crmsync.sync.convert import f\n",
            "crmsync/sync/convert.py": "import re\n",
            "crmsync/sync/cycle.py": "from crmsync.dynamics.client import C\n",
            "crmsync/web/__init__.py": "",
            "crmsync/web/app.py": "from crmsync.sync import cycle\n",
            "crmsync/cli/__init__.py": "from crmsync.emulator import app\n",
            "crmsync/emulator/__init__.py": "",
            "crmsync/emulator/app.py": "from crmsync.dynamics.error_codes import CODES\n",
        },
    )
    return root


def test_the_checker_accepts_a_tree_that_follows_the_rules(planted: Path) -> None:
    assert [str(v) for v in all_violations(planted)] == []


def test_the_checker_names_module_line_and_import_of_an_upward_import(planted: Path) -> None:
    _plant(planted, {"crmsync/store/db.py": "import sqlalchemy\n\nfrom crmsync.web.app import x\n"})
    assert [str(v) for v in all_violations(planted)] == [
        "src/crmsync/store/db.py:3: crmsync.store.db imports crmsync.web.app "
        "(crmsync.store may import only crmsync.store, crmsync.errors, crmsync.settings)"
    ]


def test_the_checker_catches_a_lazy_import_of_the_product_in_the_emulator(planted: Path) -> None:
    _plant(planted, {"crmsync/emulator/app.py": "def f():\n    from crmsync.errors import E\n"})
    [violation] = all_violations(planted)
    assert (violation.module, violation.target, violation.where) == (
        "crmsync.emulator.app",
        "crmsync.errors",
        "src/crmsync/emulator/app.py:2",
    )


def test_the_checker_catches_http_outside_the_client(planted: Path) -> None:
    _plant(planted, {"crmsync/sync/tracking.py": "import json\nimport httpx\n"})
    [violation] = all_violations(planted)
    assert str(violation) == (
        "src/crmsync/sync/tracking.py:2: crmsync.sync.tracking imports httpx "
        "(only crmsync.dynamics speaks HTTP to Dataverse)"
    )


def test_the_checker_follows_the_pure_core_into_what_it_imports(planted: Path) -> None:
    _plant(planted, {"crmsync/sync/convert.py": "import re\nfrom crmsync.store.db import t\n"})
    assert [str(v) for v in all_violations(planted)] == [
        "src/crmsync/sync/convert.py:2: crmsync.sync.convert imports crmsync.store.db "
        "(crmsync.sync.mapping must do no I/O, reached via "
        "crmsync.sync.mapping -> crmsync.sync.convert)"
    ]


def test_the_checker_catches_a_file_opened_by_the_pure_core(planted: Path) -> None:
    _plant(planted, {"crmsync/sync/merge.py": "def load():\n    return open('x').read()\n"})
    assert [str(v) for v in all_violations(planted)] == [
        "src/crmsync/sync/merge.py:2: crmsync.sync.merge calls open() "
        "(crmsync.sync.merge must do no I/O)"
    ]


def test_the_checker_refuses_a_package_outside_every_layer(planted: Path) -> None:
    _plant(planted, {"crmsync/campaigns/__init__.py": ""})
    assert [str(v) for v in all_violations(planted)] == [
        "src/crmsync/campaigns/__init__.py: crmsync.campaigns is not placed in a layer"
    ]


def test_importing_the_pure_core_loads_no_io_library() -> None:
    """What the pure core's modules import is checked above; this checks what Python really
    loads, packages' ``__init__`` files included, in a fresh interpreter."""
    probe = (
        "import sys\n"
        "import crmsync.sync.merge, crmsync.sync.policy, crmsync.sync.mapping\n"
        "loaded = [m for m in ('httpx', 'sqlalchemy', 'msal', 'socket', 'crmsync.store')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "", f"the pure core loads {done.stdout.strip()}"
