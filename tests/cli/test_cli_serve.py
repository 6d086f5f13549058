"""``crmsync serve`` (issue 2 §2, §4): refuses an unmigrated database, naming the fix.

Serving itself is exercised end to end by ``tests/e2e/test_e2e_marketo_client.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_serve_reports_a_port_it_cannot_use(tmp_path: Path, sqlite_database_url: str) -> None:
    """A bad bind address is a one-line error, not a traceback."""
    env = {"CRMSYNC_DATABASE_URL": sqlite_database_url, "PATH": ""}
    result = subprocess.run(
        [CRMSYNC, "serve", "--host", "203.0.113.1", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot listen on 203.0.113.1:0" in result.stderr
    assert "Traceback" not in result.stderr
