"""B41: notifications by e-mail through a real SMTP server on 127.0.0.1, and the daily failure
digest. A mail server that is down loses nothing and never leaks the SMTP password."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sync_harness import engine_client, running_org

from crmsync.emulator.config import default_config
from crmsync.settings import Secret, SmtpSettings, SyncSettings
from crmsync.store.tables import notifications
from crmsync.sync.failures import ErrorReport, record_errors
from crmsync.sync.history import notify
from crmsync.sync.mailer import deliver, raise_failure_digest
from crmsync.sync.runner import SyncRunner, set_enabled
from mail_support import Inbox, free_port

NOW = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)


def _smtp(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        password=Secret("never-in-logs"),
        sender="crmsync@example.com",
        recipients=("ops@example.com", "crm-admin@example.com"),
    )


def _raise(engine: Engine, title: str, *, at: datetime = NOW, key: str | None = None) -> None:
    with engine.begin() as conn:
        notify(
            conn,
            severity="critical",
            kind="test",
            title=title,
            message=f"What happened: {title}.",
            dedupe_key=key or title,
        )
        conn.execute(
            update(notifications).where(notifications.c.title == title).values(created_at=at)
        )


def _emailed(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        rows = conn.execute(select(notifications.c.title, notifications.c.emailed_at)).all()
    return {str(title): emailed is not None for title, emailed in rows}


def test_unsent_notifications_are_mailed_once(
    migrated_engine: Engine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    _raise(migrated_engine, "Field lead.jobtitle was deleted in Dynamics")
    _raise(migrated_engine, "Dynamics sync stopped")

    assert deliver(migrated_engine, _smtp(port), now=NOW) == 2
    assert deliver(migrated_engine, _smtp(port), now=NOW) == 0

    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects == [
        "[crmsync] critical: Field lead.jobtitle was deleted in Dynamics",
        "[crmsync] critical: Dynamics sync stopped",
    ]
    assert inbox.recipients[0] == ["ops@example.com", "crm-admin@example.com"]
    assert inbox.messages[1]["From"] == "crmsync@example.com"
    body = inbox.messages[1].get_payload()
    assert isinstance(body, str) and "What happened: Dynamics sync stopped." in body
    assert set(_emailed(migrated_engine).values()) == {True}


def test_a_mail_server_that_is_down_loses_nothing_and_leaks_nothing(
    migrated_engine: Engine, smtp_server: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp_server
    _raise(migrated_engine, "Initial sync done")
    with caplog.at_level(logging.WARNING):
        assert deliver(migrated_engine, _smtp(free_port()), now=NOW) == 0
    assert _emailed(migrated_engine) == {"Initial sync done": False}
    assert "not sent" in caplog.text and "never-in-logs" not in caplog.text

    assert deliver(migrated_engine, _smtp(port), now=NOW) == 1  # the server is back
    assert [m["Subject"] for m in inbox.messages] == ["[crmsync] critical: Initial sync done"]


def test_nothing_is_mailed_without_smtp_or_from_before_yesterday(
    migrated_engine: Engine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    _raise(migrated_engine, "Old news", at=NOW - timedelta(days=2))
    _raise(migrated_engine, "Fresh news")
    assert deliver(migrated_engine, SmtpSettings(), now=NOW) == 0
    assert deliver(migrated_engine, SmtpSettings(host="127.0.0.1", port=port), now=NOW) == 0
    assert deliver(migrated_engine, _smtp(port), now=NOW) == 1
    assert [m["Subject"] for m in inbox.messages] == ["[crmsync] critical: Fresh news"]
    assert _emailed(migrated_engine) == {"Old news": False, "Fresh news": True}


def _failing(engine: Engine, entity: str, code: str, n: int) -> None:
    with engine.begin() as conn:
        record_errors(
            conn,
            [
                ErrorReport(entity, "to_crm", "update", "person", k, f"{entity}-{k}", code, "x")
                for k in range(n)
            ],
        )


def test_the_failure_digest_is_raised_once_a_day_while_records_fail(
    migrated_engine: Engine,
) -> None:
    with migrated_engine.begin() as conn:
        assert raise_failure_digest(conn, now=NOW) is False  # nothing failing
    _failing(migrated_engine, "lead", "0x80044331", 3)
    _failing(migrated_engine, "contact", "0x80040237", 1)
    with migrated_engine.begin() as conn:
        assert raise_failure_digest(conn, now=NOW) is True
        assert raise_failure_digest(conn, now=NOW + timedelta(hours=5)) is False
        assert raise_failure_digest(conn, now=NOW + timedelta(days=1)) is True
        rows = conn.execute(
            select(notifications.c.title, notifications.c.message).where(
                notifications.c.kind == "failure_digest"
            )
        ).all()
    assert len(rows) == 2
    title, message = rows[0]
    assert title == "4 record(s) failing to sync"
    assert "- 3 lead (to Dynamics), 0x80044331" in message
    assert "- 1 contact (to Dynamics), 0x80040237" in message


def test_the_background_sync_mails_what_it_raises(
    migrated_engine: Engine, smtp_server: tuple[Inbox, int]
) -> None:
    """B41 end to end: `sync run` finishes the initial sync and the admins get the e-mail."""
    inbox, port = smtp_server
    with running_org(default_config(), 3) as org:
        client = engine_client(org.base)
        set_enabled(migrated_engine, True)
        runner = SyncRunner(
            migrated_engine, client, SyncSettings(pause_seconds=0.01), smtp=_smtp(port)
        )
        assert runner.run(threading.Event(), max_cycles=1) == 1
        client.close()
    assert [m["Subject"] for m in inbox.messages] == ["[crmsync] info: Initial sync done"]
