"""API client store: hashed secrets, token reuse, expiry and pruning (spec marketo-rest §2)."""

from __future__ import annotations

from marketo_harness import FakeClock
from sqlalchemy import Engine, func, select

from crmsync.errors import AuthenticationError
from crmsync.store import tables
from crmsync.store.db import open_database
from crmsync.web.clients import ApiClientStore, hash_secret, verify_secret


def test_secret_hashes_are_salted_and_verified() -> None:
    """The same secret hashes differently each time; only the right secret verifies."""
    first, second = hash_secret("s3cret"), hash_secret("s3cret")
    assert first != second and "s3cret" not in first
    assert verify_secret("s3cret", first) and verify_secret("s3cret", second)
    assert not verify_secret("S3cret", first)
    assert not verify_secret("s3cret", "garbage")
    assert not verify_secret("s3cret", "md5$1$2$3$4$5")


def _token_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tables.api_access_tokens))
        return int(count.scalar_one())


def test_tokens_are_reused_until_expiry_then_pruned_after_a_day(sqlite_database_url: str) -> None:
    """Same token while valid; a new one after expiry; day-old expired hashes are deleted."""
    engine = open_database(sqlite_database_url)
    try:
        clock = FakeClock()
        store = ApiClientStore(engine, token_lifetime_seconds=60, clock=clock)
        created = store.create("pruning")
        secret = created.client_secret.reveal()
        first = store.issue_token(created.client_id, secret)
        clock.advance(30)
        again = store.issue_token(created.client_id, secret)
        assert again.access_token.reveal() == first.access_token.reveal()
        assert again.expires_in == 30
        clock.advance(31)
        assert store.check_token(first.access_token.reveal()).expired
        second = store.issue_token(created.client_id, secret)
        assert second.access_token.reveal() != first.access_token.reveal()
        assert _token_rows(engine) == 2
        clock.advance(2 * 86_400)
        store.issue_token(created.client_id, secret)
        assert _token_rows(engine) == 1
        assert store.check_token(first.access_token.reveal()).client_id is None
        try:
            store.issue_token(created.client_id, secret + "x")
        except AuthenticationError as exc:
            assert secret not in repr(exc)
        else:
            raise AssertionError("a wrong secret was accepted")
    finally:
        engine.dispose()
