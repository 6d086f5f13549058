"""Notifications by e-mail, and the daily failure digest (B41).

Every notification is in-app (the ``notifications`` table: ``crmsync notifications``). When
``[smtp]`` names a host and recipients, :func:`deliver` also sends each one not yet sent, one
message per notification, and stamps ``emailed_at``. A mail server that is down or refuses
the message changes nothing: the notification stays unsent and goes with the next delivery,
and the sync never stops for it. Notifications older than :data:`MAIL_WITHIN` when first
seen by a configured mailer stay in-app only, so configuring SMTP does not mail the past.

:func:`raise_failure_digest` raises, once per UTC day and only while records are failing,
one notification that sums the open sync errors up by entity, direction and error code: the
daily digest, delivered like any other notification.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection

from crmsync.settings import SmtpSettings
from crmsync.store.tables import notifications, now_utc
from crmsync.sync.error_counts import open_error_groups
from crmsync.sync.history import notify

log = logging.getLogger(__name__)

MAIL_WITHIN = timedelta(days=1)
SMTP_TIMEOUT_SECONDS = 10.0

Sender = Callable[[SmtpSettings, list[EmailMessage]], None]


def configured(smtp: SmtpSettings) -> bool:
    """Whether e-mail notifications are on: a host and at least one recipient."""
    return bool(smtp.host.strip()) and bool(smtp.recipients)


def send_by_smtp(smtp: SmtpSettings, messages: list[EmailMessage]) -> None:
    """Send ``messages`` over one SMTP connection; STARTTLS when the server offers it, and
    login when a username is configured."""
    with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS) as server:
        server.ehlo()
        if server.has_extn("starttls"):
            server.starttls()
            server.ehlo()
        if smtp.username:
            server.login(smtp.username, smtp.password.reveal())
        for message in messages:
            server.send_message(message)


def deliver(
    engine: Engine,
    smtp: SmtpSettings,
    *,
    now: datetime | None = None,
    send: Sender = send_by_smtp,
) -> int:
    """E-mail the notifications not yet sent (B41); returns how many went. Nothing happens
    unless SMTP is configured; a failure to send is logged and retried next time."""
    if not configured(smtp):
        return 0
    moment = now or now_utc()
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                notifications.c.id,
                notifications.c.created_at,
                notifications.c.severity,
                notifications.c.title,
                notifications.c.message,
            )
            .where(
                notifications.c.emailed_at.is_(None),
                notifications.c.created_at >= moment - MAIL_WITHIN,
            )
            .order_by(notifications.c.id)
        ).all()
    if not rows:
        return 0
    messages = [_message(smtp, row[1], str(row[2]), str(row[3]), str(row[4])) for row in rows]
    try:
        send(smtp, messages)
    except (OSError, smtplib.SMTPException) as exc:
        # The server's own words only: never the settings, which hold the password.
        log.warning(
            "e-mail notifications not sent (%d waiting; retried later): %s: %s",
            len(rows),
            type(exc).__name__,
            exc,
        )
        return 0
    with engine.begin() as conn:
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_([row[0] for row in rows]))
            .values(emailed_at=moment)
        )
    return len(rows)


def _message(
    smtp: SmtpSettings, created: datetime, severity: str, title: str, text: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[crmsync] {severity}: {title}"
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message.set_content(
        f"{text}\n\nRaised {created:%Y-%m-%d %H:%M} UTC. "
        "See it with `crmsync notifications`; failing records with `crmsync sync errors`.\n"
    )
    return message


def raise_failure_digest(conn: Connection, *, now: datetime | None = None) -> bool:
    """Raise today's failure digest if records are failing and none was raised today (B41);
    returns whether one was raised."""
    moment = now or now_utc()
    key = f"failure_digest:{moment:%Y-%m-%d}"
    if conn.execute(
        select(func.count()).select_from(notifications).where(notifications.c.dedupe_key == key)
    ).scalar_one():
        return False  # already raised today: the errors are not counted again
    groups = open_error_groups(conn)
    rows = sorted(
        ((*key, count) for key, count in groups.items()), key=lambda row: (-row[3], row[:3])
    )
    if not rows:
        return False
    total = sum(int(count) for *_, count in rows)
    lines = [
        f"- {count} {entity} ({'to Dynamics' if direction == 'to_crm' else 'from Dynamics'}), "
        f"{code or 'no code'}"
        for entity, direction, code, count in rows
    ]
    notify(
        conn,
        severity="warning",
        kind="failure_digest",
        title=f"{total} record(s) failing to sync",
        message="Records failing to sync, by entity, direction and error code:\n"
        + "\n".join(lines)
        + "\nEach is retried when it changes again, or with `crmsync sync retry`.",
        dedupe_key=key,
    )
    return True
