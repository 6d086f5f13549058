"""``crmsync`` loads only the command it runs: ``--help`` and ``sync status`` import neither
the HTTP client, nor the sync engine, nor the web app, and the root help lists every command
with its own one-line help."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from crmsync.cli import commands

HEAVY = ("httpx", "fastapi", "alembic", "crmsync.sync.cycle", "crmsync.web.app", "uvicorn")
_PROBE = """
import json, sys
watched = json.loads(sys.argv[2])
sys.argv = ["crmsync", *json.loads(sys.argv[1])]
from crmsync.console import main
try:
    main()
except SystemExit:
    pass
heavy = [m for m in watched if m in sys.modules]
print("HEAVY=" + json.dumps(heavy))
"""


def _loaded(
    args: list[str], cwd: Path, env: dict[str, str], watched: tuple[str, ...] = HEAVY
) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(watched)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("HEAVY="))
    loaded: list[str] = json.loads(line[len("HEAVY=") :])
    return loaded


@pytest.mark.parametrize("args", [["--help"], ["sync", "status"], []])
def test_help_and_status_load_no_heavy_module(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    from crmsync.store.db import upgrade_database

    upgrade_database(url)
    env = {"CRMSYNC_DATABASE_URL": url, "PATH": "/usr/bin:/bin", "COLUMNS": "100"}
    assert _loaded(args, tmp_path, env) == []


@pytest.mark.parametrize(
    "args",
    [["sync", "status"], ["sync", "status", "--json"], ["-c", "crmsync.toml", "sync", "status"]],
)
def test_sync_status_skips_the_parameter_machinery_and_the_postgresql_dialect(
    args: list[str], tmp_path: Path
) -> None:
    """``sync status`` is answered by the console script without the command-line framework
    (typer, and the pydantic its parameter handling loads) and reads settings without loading
    the PostgreSQL dialect on a SQLite database."""
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    from crmsync.store.db import upgrade_database

    upgrade_database(url)
    (tmp_path / "crmsync.toml").write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    env = {"CRMSYNC_DATABASE_URL": url, "PATH": "/usr/bin:/bin", "COLUMNS": "100"}
    watched = ("typer", "click", "pydantic", "sqlalchemy.dialects.postgresql", *HEAVY)
    assert _loaded(args, tmp_path, env, watched) == []
    done = subprocess.run(
        [str(Path(sys.executable).parent / "crmsync"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    if "--json" in args:
        assert json.loads(done.stdout)["enabled"] is False
    else:
        assert "sync is disabled" in done.stdout


def test_the_root_help_lists_each_command_with_its_own_help() -> None:
    for entry in commands.ENTRIES:
        target = getattr(importlib.import_module(entry.module), entry.attribute)
        if entry.is_group:
            assert isinstance(target, typer.Typer)
            assert target.info.help == entry.help, entry.name
        else:
            first = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
            assert first == entry.help, entry.name


def test_the_invoked_command_is_found_past_the_global_options() -> None:
    assert commands.invoked_command(["-c", "x.toml", "sync", "status"]) == "sync"
    assert commands.invoked_command(["--config", "sync", "db"]) == "db"
    assert commands.invoked_command(["--help"]) is None
