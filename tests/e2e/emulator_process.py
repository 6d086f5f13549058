"""Start ``crmsync emulator --port 0 --json`` (over HTTPS unless told otherwise) as a
subprocess for end-to-end tests; :data:`CRMSYNC` is the command the tests run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CRMSYNC = str(Path(sys.executable).parent / "crmsync")


@contextmanager
def emulator_process(work: Path, *args: str, https: bool = True) -> Iterator[dict[str, Any]]:
    """Run the emulator on a free port in ``work`` (over HTTPS, or plain HTTP when ``https``
    is false) with extra ``args``; yield the connection details it prints, and stop it
    (terminate, then kill) afterwards. Its error output goes to ``work/stderr.txt``."""
    stderr = (work / "stderr.txt").open("w")
    scheme = ["--https"] if https else []
    process = subprocess.Popen(
        [CRMSYNC, "emulator", "--port", "0", *scheme, "--json", *args],
        cwd=work,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=10)
            pytest.fail("emulator exited: " + (work / "stderr.txt").read_text())
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        stderr.close()


def configure_crmsync(
    work: Path, org: dict[str, Any], *, dynamics: str = ""
) -> tuple[str, dict[str, str]]:
    """Write ``work/crmsync.toml`` for a migrated SQLite database in ``work`` and the emulated
    ``org`` (``dynamics`` adds lines to its ``[dynamics]`` section; the lease is short so a
    killed holder is soon replaced); return the database URL and the environment to run
    ``crmsync`` with (the client secret given through it, as in production)."""
    from crmsync.store.db import upgrade_database

    url = f"sqlite:///{work / 'crmsync.db'}"
    (work / "crmsync.toml").write_text(
        f'[database]\nurl = "{url}"\n\n[dynamics]\nurl = "{org["base_url"]}"\n'
        f'authority = "{org["base_url"]}"\ntenant = "{org["tenant"]}"\n'
        f'auth_mode = "adfs"\nclient_id = "{org["client_id"]}"\n'
        f"{dynamics}\n[sync]\nlease_seconds = 1.5\n",
        encoding="utf-8",
    )
    env = {**os.environ, "NO_COLOR": "1", "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"]}
    env.pop("CRMSYNC_CONFIG", None)
    upgrade_database(url)
    return url, env
