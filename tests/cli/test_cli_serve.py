"""``crmsync serve`` (issue 2 §2, §4): refuses an unmigrated database, naming the fix.

Serving itself is exercised end to end by ``tests/e2e/test_e2e_marketo_client.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.cli.serve import run_server
from crmsync.errors import ConfigurationError
from crmsync.settings import Settings
from crmsync.web.app import create_app

CRMSYNC = str(Path(sys.executable).parent / "crmsync")


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    """DESIGN "Migrations": the app refuses to start and says which command to run."""
    env = {"CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "PATH": ""}
    result = subprocess.run(
        [CRMSYNC, "serve", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "run `crmsync db upgrade` first" in " ".join(result.stderr.split())
    assert "serving on" not in result.stdout


def test_serve_reports_an_address_it_cannot_use(sqlite_database_url: str) -> None:
    """A bad bind address is a clear ConfigurationError (one line at the CLI), not a traceback."""
    app = create_app(Settings().with_database(sqlite_database_url))
    try:
        with pytest.raises(ConfigurationError, match=r"cannot listen on 203\.0\.113\.1:0"):
            run_server(app, "203.0.113.1", 0)
    finally:
        app.state.engine.dispose()
