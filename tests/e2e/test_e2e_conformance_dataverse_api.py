"""Conformance: the third-party ``dataverse-api`` client's whole flow against the emulator.

``dataverse-api`` (PyPI, a Web API client none of us wrote) sets up a table (reading
``EntityDefinitions`` with ``PrimaryImageAttribute``, ``Keys``, ``sdkmessagefilters`` and the
table's relationships, and ``RetrieveAvailableLanguages``), creates a custom table with its
columns, then creates rows one by one, with ``CreateMultiple`` and through ``$batch``, reads
them in pages, upserts by id and by an alternate key, and deletes rows and the table. It runs
in a virtual environment of its own (made once under ``.venv/conformance/``, pinned version),
against ``crmsync emulator`` started as a real process; it is given only the sign-in details.

What each step must see follows Microsoft's pages the client was written against: "Use bulk
operation messages", "Define alternate keys using the Web API", "Query table definitions using
the Web API", "Execute batch operations using the Web API".
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_process import emulator_process
from pinned_venv import pinned_python

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PACKAGE = "dataverse-api==1.4.3"
FLOW = Path(__file__).with_name("conformance_dataverse_api_flow.py")


def client_python() -> str:
    """The Python of the pinned client's own environment, made once if missing."""
    return pinned_python(PACKAGE)


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulator_process(tmp_path, "--seed", "20", https=False) as details:
        yield details


def test_dataverse_api_client_runs_its_whole_flow(org: dict[str, Any]) -> None:
    """Table set-up, custom table, CRUD in three modes, paging, upserts, batch, deletes."""
    done = subprocess.run(
        [client_python(), str(FLOW), json.dumps(org)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["languages"] == [1033]
    assert seen["lead_schema"] == ["leads", "leadid", None, True, True, []]
    assert seen["account_definition"] == "Account"
    assert seen["create_entity"] == [204]
    assert seen["project_set"] == "new_projects"
    assert seen["create"]["individual"] == [204, 204, 204]
    assert seen["create"]["multiple"] == [200]
    assert all(status < 300 for status in seen["create"]["batch"])
    pages, rows = seen["paged_read"]
    assert rows == 9 and pages == 5
    assert all(status < 300 for status in seen["upsert_by_id"])
    assert seen["define_key"] == 204
    assert seen["alternate_keys"] == {"new_NameKey": ["new_name"]}
    assert all(status < 300 for status in seen["upsert_by_key"])
    after = seen["after_upserts"]
    assert after["individual-0"] == 1 and after["individual-1"] == 2
    assert after["keyed-new"] == 7 and after["multiple-0"] == 8 and after["keyed-batch"] == 9
    assert len(after) == 11
    assert all(status < 300 for status in seen["delete"])
    assert seen["after_deletes"] == [
        "individual-0",
        "individual-1",
        "keyed-batch",
        "keyed-new",
        "multiple-0",
        "multiple-1",
        "multiple-2",
    ]
    assert seen["delete_entity"] == [204]
