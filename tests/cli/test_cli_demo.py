"""``crmsync demo --no-serve``: emulator org, marketing database, initial sync, printed guide.

Issue 2 §5 (database, persons, list, API client in ./.demo) and the sync issue's "make demo":
the emulated org is seeded, ``.demo/crmsync.toml`` points at it, the sync is enabled and the
initial sync runs (B16), and a rerun continues with deltas (B17) even when the emulator
listens on another port.
"""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import Table, func, select
from typer.testing import CliRunner

from crmsync.cli import demo
from crmsync.cli.demo_guide import DemoLead, GuideInput, fresh_edits, guide_text
from crmsync.cli.demo_org import DemoOrg
from crmsync.errors import SignInRefusedError
from crmsync.settings import Secret, load_settings
from crmsync.store import tables
from crmsync.store.db import open_database
from crmsync.sync.status import read_status
from crmsync.web.admin.users import AdminUserStore
from crmsync.web.clients import ApiClientStore

runner = CliRunner()
SMALL = ["demo", "--no-serve", "--emulator-port", "0", "--leads", "30", "--persons", "25"]


def _root() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _settings_root(ctx: typer.Context) -> None:
        ctx.obj = None

    root.command("demo")(demo.demo)
    root.command("noop")(lambda: None)
    return root


def _count(url: str, table: Table, **where: str) -> int:
    engine = open_database(url)
    try:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_demo_sets_up_the_org_the_database_and_the_initial_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One command: org seeded, persons loaded, both sides linked by the initial sync (B16);
    the config in .demo points at the org and keeps its secret out of the output."""
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(_root(), SMALL, env={})
    assert first.exit_code == 0, first.output
    url = f"sqlite:///{tmp_path / '.demo' / 'crmsync.db'}"
    assert _count(url, tables.crm_links, entity="lead", local_kind="person") == 30
    assert _count(url, tables.crm_links, entity="contact", local_kind="person") == 30
    assert _count(url, tables.persons) == 25 + 30 + 30
    assert 0 < _count(url, tables.list_members) <= 25
    assert (tmp_path / ".demo" / "dynamics.db").is_file()

    config = tmp_path / ".demo" / "crmsync.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    settings = load_settings(config, environ={})
    assert settings.database.url.endswith("/.demo/crmsync.db")
    assert settings.dynamics.url.startswith("http://127.0.0.1:")
    assert settings.sync.pause_seconds == 5.0
    assert settings.dynamics.client_secret.reveal() not in first.stdout

    for label in ("API URL:", "client secret:", "emulator URL:", "salesperson:", "mc.host"):
        assert label in first.stdout
    assert settings.dynamics.url in first.stdout
    assert "sync cycle ok" in first.stdout
    # B16/B40: a bar per entity against the records Dynamics has, and one for the push.
    bars = {line.split()[1]: line.split()[-2] for line in first.stderr.splitlines() if line}
    assert bars["lead"] == "30/30" and bars["contact"] == "30/30"
    # the push bar counts the queued marketing changes it handled; the summary says what
    # became of them: the loaded persons are marketing-only, so none is created in Dynamics
    assert bars["marketing"] == "25/25"
    summary = " ".join(first.stdout.split())
    assert "to Dynamics: 0 created, 0 updated, 0 failed, 25 skipped (25 marketing-only" in summary
    assert "25 marketing-only" in summary and "60 synced both ways" in summary
    assert "Ctrl-C stops" not in first.stdout
    assert "Nothing is running now (--no-serve)" in first.stdout
    engine = open_database(url)
    try:
        status = read_status(engine)
    finally:
        engine.dispose()
    assert status.enabled
    assert all(status.initial_sync_done.values()) and "lead" in status.initial_sync_done


def test_demo_rerun_keeps_data_and_follows_a_moved_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun (the emulator on a new free port) keeps every person, replaces the API client
    and its cycle is a delta read against the moved org (B17), not a failure or a re-import."""
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(_root(), SMALL, env={})
    assert first.exit_code == 0, first.output
    first_url = load_settings(tmp_path / ".demo" / "crmsync.toml", environ={}).dynamics.url
    second = runner.invoke(_root(), SMALL, env={})
    assert second.exit_code == 0, second.output
    second_url = load_settings(tmp_path / ".demo" / "crmsync.toml", environ={}).dynamics.url
    assert second_url != first_url  # port 0: another free port
    assert "sync cycle ok" in second.stdout
    assert "read nothing from Dynamics" in second.stdout

    url = f"sqlite:///{tmp_path / '.demo' / 'crmsync.db'}"
    assert _count(url, tables.persons) == 25 + 30 + 30
    engine = open_database(url)
    try:
        clients = ApiClientStore(engine).list()
        with engine.connect() as conn:
            links = conn.execute(select(tables.delta_cursors.c.delta_link)).scalars().all()
            emails = set(conn.execute(select(tables.persons.c.email)).scalars())
    finally:
        engine.dispose()
    assert [client.active for client in clients] == [False, True]
    assert clients[1].client_id in second.stdout
    # The admin UI: where to sign in, and a new password each run that signs in (once shown).
    assert "sign in at:     http://127.0.0.1:<port>/admin/" in second.stdout
    passwords = [_admin_password(run.stdout) for run in (first, second)]
    assert passwords[0] != passwords[1]
    engine = open_database(url)
    try:
        users = AdminUserStore(engine)
        assert users.authenticate(demo.DEMO_ADMIN_EMAIL, passwords[1]).role == "admin"
        with pytest.raises(SignInRefusedError):
            users.authenticate(demo.DEMO_ADMIN_EMAIL, passwords[0])
    finally:
        engine.dispose()
    # Portable cursors: stored links name no address, so the moved org needs no fix-up.
    assert links and all(link and not link.startswith(("http:", "https:")) for link in links)
    assert {str(p["email"]) for p in demo.demo_persons(25)} <= emails


def test_demo_persons_are_deterministic_and_unique() -> None:
    """The same seed gives the same people; every e-mail is distinct and ASCII."""
    people = demo.demo_persons(300)
    assert people == demo.demo_persons(300)
    emails = [str(person["email"]) for person in people]
    assert len(set(emails)) == 300
    assert all(email.isascii() and "@" in email for email in emails)
    assert json.dumps(people)  # plain JSON values only


def _admin_password(stdout: str) -> str:
    return stdout.split("password:       ")[1].split()[0]


def _guide() -> str:
    org = DemoOrg(
        base_url="http://127.0.0.1:5580",
        tenant="tenant-id",
        app_client_id="app-client",
        app_client_secret=Secret("app-secret-never-shown"),
        public_client_id="public-client",
        salesperson_upn="alex.morgan@contoso.example",
        salesperson_name="Alex Morgan",
        salesperson_password=Secret("pa ss'word"),
        seeded={},
        counts={},
    )
    lead = DemoLead(7, "0000-lead", "Ada Lovelace", "ada@example.com", 10)
    return guide_text(
        GuideInput(
            api_url="http://127.0.0.1:8080",
            client_id="cid",
            client_secret="csecret",
            list_id=1,
            org=org,
            lead=lead,
            config_path=Path("/srv/demo/crmsync.toml"),
            pause_seconds=5.0,
        )
    )


def test_guide_lines_are_valid_shell_and_never_show_the_sync_secret() -> None:
    """The printed commands parse as shell (awkward passwords quoted); the app secret stays in
    the config file (DESIGN: secrets never printed except the demo's own test credentials)."""
    text = _guide()
    assert "app-secret-never-shown" not in text
    commands = [line.strip() for line in text.splitlines() if line.startswith("  ")]
    patch = next(line for line in commands if "-X PATCH" in line)
    assert "leads(0000-lead)" in patch and "Chief Demo Officer" in patch
    token = next(line for line in commands if line.startswith("DTOKEN="))
    assert "password=pa ss'word" in shlex.split(token[len("DTOKEN=$(") :].split(" | ")[0])
    sync = next(line for line in commands if "/rest/v1/leads.json" in line)
    body = json.loads(shlex.split(sync)[shlex.split(sync).index("-d") + 1])
    assert body == {
        "action": "updateOnly",
        "lookupField": "id",
        "input": [{"id": 7, "mobilePhone": "+1 555 0100"}],
    }
    shell = [line for line in commands if line.startswith(("curl", "DTOKEN", "TOKEN", "NPT"))]
    assert len(shell) == 10
    signup = next(line for line in commands if "web.signup@example.com" in line and "-d" in line)
    created = json.loads(shlex.split(signup)[shlex.split(signup).index("-d") + 1])
    assert created["input"] == [
        {"email": "web.signup@example.com", "firstName": "Web", "lastName": "Signup"}
    ]
    assert "campaigns results 'Demo: web sign-ups to Dynamics'" in text
    checked = subprocess.run(["bash", "-n", "-c", "\n".join(shell)], capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_each_run_edits_with_new_values() -> None:
    """The guide's edits set values that differ from one run to the next, so a second run's
    edits visibly travel (the same value again would change nothing)."""
    morning = fresh_edits(datetime(2026, 1, 2, 9, 15, 30, tzinfo=UTC))
    later = fresh_edits(datetime(2026, 1, 2, 9, 16, 5, tzinfo=UTC))
    assert morning != later
    assert morning[0] != later[0] and morning[1] != later[1]
