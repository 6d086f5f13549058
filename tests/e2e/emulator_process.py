"""Start ``crmsync emulator --port 0 --https --json`` as a subprocess for end-to-end tests."""

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
def emulator_process(work: Path, *args: str) -> Iterator[dict[str, Any]]:
    """Run the emulator over HTTPS on a free port in ``work`` with extra ``args``; yield the
    connection details it prints, and stop it (terminate, then kill) afterwards."""
    stderr = (work / "stderr.txt").open("w")
    process = subprocess.Popen(
        [CRMSYNC, "emulator", "--port", "0", "--https", "--json", *args],
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
