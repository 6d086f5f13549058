"""Identity endpoint and access tokens (spec marketo-rest §2, §10.1–2)."""

from __future__ import annotations

from marketo_harness import MarketoHarness
from sqlalchemy import select

from crmsync.store import tables
from crmsync.web.clients import ApiClientStore


def _credentials(harness: MarketoHarness, secret: str | None = None) -> dict[str, str]:
    """The client-credentials grant of the harness's API client (``secret`` to override)."""
    return {
        "grant_type": "client_credentials",
        "client_id": harness.client_id,
        "client_secret": secret or harness.client_secret,
    }


def _identity(harness: MarketoHarness, secret: str | None = None) -> dict[str, object]:
    reply = harness.http.get("/identity/oauth/token", params=_credentials(harness, secret))
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body


def test_identity_returns_the_four_oauth_fields_and_the_same_token_again(
    marketo: MarketoHarness,
) -> None:
    """§2.1: access_token, token_type bearer, expires_in, scope; same token before expiry."""
    marketo.clock.advance(100)
    body = _identity(marketo)
    assert body["access_token"] == marketo.token
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3500
    assert isinstance(body["scope"], str) and body["scope"]


def test_identity_accepts_a_form_post(marketo: MarketoHarness) -> None:
    """§10.1: the POST form body is accepted too."""
    reply = marketo.http.post(
        "/identity/oauth/token",
        data=_credentials(marketo),
    )
    assert reply.status_code == 200
    assert reply.json()["access_token"] == marketo.token


def test_bad_credentials_are_401_with_the_oauth_error_body(marketo: MarketoHarness) -> None:
    """§2.1: 401 ``invalid_client`` with a description the client raises as its message."""
    reply = marketo.http.get(
        "/identity/oauth/token",
        params=_credentials(marketo, "wrong"),
    )
    assert reply.status_code == 401
    assert reply.json() == {
        "error": "invalid_client",
        "error_description": "Bad client credentials",
    }
    unknown = marketo.http.get(
        "/identity/oauth/token",
        params={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
    )
    assert unknown.status_code == 401
    assert unknown.json()["error_description"] == "No client with requested id"


def test_secret_and_token_are_stored_only_as_hashes(marketo: MarketoHarness) -> None:
    """Security: neither the client secret nor the access token is in the database."""
    with marketo.engine.connect() as conn:
        client_rows = conn.execute(select(tables.api_clients)).mappings().all()
        token_rows = conn.execute(select(tables.api_access_tokens)).mappings().all()
    dumped = repr(client_rows) + repr(token_rows)
    assert marketo.client_secret not in dumped
    assert marketo.token not in dumped
    assert len(token_rows) == 1


def test_token_from_header_query_or_form_field(marketo: MarketoHarness) -> None:
    """§2.2 / §10.2: Authorization header, ``access_token`` query parameter or form field."""
    path = "/rest/v1/leads/partitions.json"
    assert marketo.get(path)["success"] is True
    by_query = marketo.http.get(path, params={"access_token": marketo.token}).json()
    assert by_query["success"] is True
    by_form = marketo.http.post(
        "/rest/v1/leads.json",
        data={
            "_method": "GET",
            "access_token": marketo.token,
            "filterType": "email",
            "filterValues": "none@example.com",
        },
    ).json()
    assert by_form == {"requestId": by_form["requestId"], "success": True, "result": []}


def test_missing_or_unknown_token_is_601_and_expired_is_602(marketo_db: MarketoHarness) -> None:
    """§2.3: 601 for a missing/invalid token, 602 once it expired; codes are strings."""
    path = "/rest/v1/leads/partitions.json"
    missing = marketo_db.http.get(path)
    assert missing.status_code == 200
    assert missing.json()["errors"] == [{"code": "601", "message": "Access token invalid"}]
    unknown = marketo_db.http.get(path, headers={"Authorization": "Bearer nope"}).json()
    assert unknown["success"] is False
    assert unknown["errors"][0]["code"] == "601"
    marketo_db.clock.advance(3600)
    expired = marketo_db.get(path)
    assert expired["errors"] == [{"code": "602", "message": "Access token expired"}]
    fresh = _identity(marketo_db)
    assert fresh["access_token"] != marketo_db.token
    assert fresh["expires_in"] == 3600
    reply = marketo_db.http.get(path, headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert reply.json()["success"] is True


def test_revoked_client_loses_its_token_and_its_secret(marketo: MarketoHarness) -> None:
    """A revoked API client can neither call nor obtain a new token."""
    ApiClientStore(marketo.engine).revoke(marketo.client_id)
    assert marketo.get("/rest/v1/leads/partitions.json")["errors"][0]["code"] == "601"
    reply = marketo.http.get(
        "/identity/oauth/token",
        params=_credentials(marketo),
    )
    assert reply.status_code == 401
