"""A pinned third-party client in a virtual environment of its own under ``.venv/conformance``,
built once (under a lock, so parallel test workers wait for one build) and reused after."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import venv
from pathlib import Path


def pinned_python(package: str, *, timeout: float = 900) -> str:
    """The Python of an environment holding exactly ``package`` (``name==version``)."""
    home = Path(sys.prefix) / "conformance" / package.replace("==", "-")
    home.parent.mkdir(parents=True, exist_ok=True)
    python = home / "bin" / "python"
    with (home.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".installed").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(home)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", package],
                check=True,
                timeout=timeout,
                capture_output=True,
            )
            (home / ".installed").write_text(package)
    return str(python)
