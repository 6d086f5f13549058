"""Every ``--help`` page of ``crmsync`` speaks plainly: no behaviour codes such as ``B16``.

The behaviour reference (docs/behaviour.md) numbers the behaviours for contributors; a user
reading ``--help`` should not need it.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from crmsync.cli import app, commands

CODE = re.compile(r"\b[BR][0-9]{1,3}\b")


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    # typer may vendor its own click, so a group is recognised by its interface.
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


def test_no_help_page_cites_a_behaviour_code() -> None:
    """``crmsync --help`` and the help of every group and command are free of codes."""
    root = typer.Typer(help=app.info.help)  # ``crmsync`` as its console script assembles it
    commands.register(root)
    runner = CliRunner()
    paths = _command_paths(typer.main.get_command(root))
    assert ("sync", "person") in paths  # the walk reaches the commands, not only the groups
    cited: dict[str, list[str]] = {}
    for path in paths:
        result = runner.invoke(root, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        codes = CODE.findall(result.output)
        if codes:
            cited[" ".join(path) or "crmsync"] = codes
    assert cited == {}
