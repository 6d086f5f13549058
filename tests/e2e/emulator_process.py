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
