"""The emulator as a real HTTPS server: MSAL signs in against it, then the Web API answers.

``crmsync emulator --port 0 --https --json`` runs as a subprocess; its first output line is the
connection details. MSAL's ``ConfidentialClientApplication`` acquires a token over TLS
verified with the printed CA bundle, with instance discovery pointed at the emulator itself
(spec §1a, §1d), and the token is used for ``WhoAmI``; the password grant (§1b) is exercised
with a plain form POST and with MSAL's ``PublicClientApplication`` at the AD FS-style authority.

MSAL detail: its ``verify=`` lands on a ``requests.Session`` whose per-request environment
lookup lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` win over it, so the CA bundle is given
through ``http_client=`` a session with ``trust_env = False``. And MSAL's password grant first
asks ``https://<host>/common/userrealm/...`` with the port dropped; with the authority
``<base>/adfs`` MSAL skips that call, which is how MSAL's password grant reaches the emulator.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
import requests
from emulator_process import emulator_process

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("emulator")
    # a database path relative to the emulator's directory: printed paths must be absolute
    with emulator_process(work, "--db", "org.db", "--seed", "30") as details:
        yield details


@pytest.fixture
def msal_session(running: dict[str, Any]) -> Iterator[requests.Session]:
    """The HTTP session MSAL uses, closed after the test so the server can stop promptly."""
    session = requests.Session()
    session.trust_env = False
    session.verify = running["ca_bundle"]
    yield session
    session.close()


def tls(details: dict[str, Any]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=details["ca_bundle"])


def whoami(details: dict[str, Any], token: str) -> httpx.Response:
    return httpx.get(
        details["web_api_url"] + "WhoAmI",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        verify=tls(details),
        timeout=10,
    )


def test_details_line_describes_an_https_endpoint(running: dict[str, Any]) -> None:
    """--json: base URL with the real port, Web API root, tenant, credentials, CA bundle."""
    assert running["base_url"].startswith("https://127.0.0.1:")
    assert not running["base_url"].endswith(":0")
    assert running["web_api_url"] == running["base_url"] + "/api/data/v9.2/"
    assert Path(running["ca_bundle"]).is_absolute() and Path(running["ca_bundle"]).is_file()
    assert running["client_id"] and running["client_secret"] and running["tenant"]
    assert len(running["users"]) == 2
    assert running["seeded"]["lead"] == 30


def test_msal_confidential_client_gets_a_token_and_whoami_answers(
    running: dict[str, Any], msal_session: requests.Session
) -> None:
    """§1d: MSAL client credentials over HTTPS against the emulator's authority."""
    app = msal.ConfidentialClientApplication(
        running["client_id"],
        authority=running["authority"],
        client_credential=running["client_secret"],
        http_client=msal_session,
        instance_discovery=running["base_url"] + "/common/discovery/instance",
    )
    result = app.acquire_token_for_client(scopes=[running["scope"]])
    assert "access_token" in result, result
    response = whoami(running, result["access_token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["UserId"]
    assert body["OrganizationId"] and body["BusinessUnitId"]


def test_msal_refuses_a_wrong_secret_with_the_aadsts_error(
    running: dict[str, Any], msal_session: requests.Session
) -> None:
    """§1a errors reach MSAL callers as error/error_description."""
    app = msal.ConfidentialClientApplication(
        running["client_id"],
        authority=running["authority"],
        client_credential="not-the-secret",
        http_client=msal_session,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[running["scope"]])
    assert result.get("error") == "invalid_client"
    assert "AADSTS7000215" in result.get("error_description", "")


def test_password_grant_acts_as_a_salesperson(running: dict[str, Any]) -> None:
    """§1b: ROPC at the printed token URL; WhoAmI then names the salesperson."""
    person = running["users"][0]
    response = httpx.post(
        running["token_url"],
        data={
            "grant_type": "password",
            "client_id": running["public_client_id"],
            "username": person["upn"],
            "password": person["password"],
            "scope": running["scope"],
        },
        verify=tls(running),
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert whoami(running, token).json()["UserId"] == person["systemuserid"]


@pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")
def test_msal_password_grant_through_the_adfs_authority(
    running: dict[str, Any], msal_session: requests.Session
) -> None:
    """§1b with MSAL: ROPC, then a silent refresh with the refresh token after revocation."""
    person = running["users"][1]
    app = msal.PublicClientApplication(
        running["public_client_id"],
        authority=running["base_url"] + "/adfs",
        http_client=msal_session,
        instance_discovery=False,
    )
    result = app.acquire_token_by_username_password(
        person["upn"], person["password"], scopes=[running["scope"]]
    )
    assert "access_token" in result, result
    assert whoami(running, result["access_token"]).json()["UserId"] == person["systemuserid"]
    expired = httpx.post(
        running["base_url"] + "/_emulator/expire-tokens",
        headers={"X-Emulator-Key": running["admin_key"]},
        verify=tls(running),
    )
    assert expired.status_code == 200
    assert whoami(running, result["access_token"]).status_code == 401
    account = app.get_accounts(username=person["upn"])[0]
    renewed = app.acquire_token_silent([running["scope"]], account=account, force_refresh=True)
    assert renewed and "access_token" in renewed, renewed
    assert whoami(running, renewed["access_token"]).status_code == 200


def test_dropped_connection_is_seen_by_a_real_client(
    running: dict[str, Any], msal_session: requests.Session
) -> None:
    """Fault knob drop_rate over a real socket: the client sees the peer hang up."""
    admin = {"X-Emulator-Key": running["admin_key"]}
    verify = tls(running)
    faults_url = running["base_url"] + "/_emulator/faults"
    app = msal.ConfidentialClientApplication(
        running["client_id"],
        authority=running["authority"],
        client_credential=running["client_secret"],
        http_client=msal_session,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(scopes=[running["scope"]])["access_token"]
    set_to = httpx.put(faults_url, json={"drop_rate": 1.0}, headers=admin, verify=verify)
    assert set_to.status_code == 200
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            whoami(running, token)
    finally:
        httpx.put(faults_url, json={}, headers=admin, verify=verify)
    assert whoami(running, token).status_code == 200


def app_token(details: dict[str, Any]) -> str:
    response = httpx.post(
        details["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": details["client_id"],
            "client_secret": details["client_secret"],
            "scope": details["scope"],
        },
        verify=tls(details),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_seeded_leads_are_served_by_the_web_api(running: dict[str, Any]) -> None:
    """The rows seeded at start are what the Web API returns (issue 3 'Data')."""
    headers = {"Authorization": f"Bearer {app_token(running)}", "Accept": "application/json"}
    count = httpx.get(running["web_api_url"] + "leads/$count", headers=headers, verify=tls(running))
    assert count.status_code == 200
    assert count.text.strip().lstrip("\ufeff") == "30"
    page = httpx.get(
        running["web_api_url"] + "leads?$select=fullname,companyname,emailaddress1&$top=3",
        headers=headers,
        verify=tls(running),
    ).json()["value"]
    assert len(page) == 3
    assert all(
        row["fullname"] and row["companyname"] and "@" in row["emailaddress1"] for row in page
    )


def test_throttle_burst_over_real_http(running: dict[str, Any]) -> None:
    """429 with Retry-After and the documented code reaches a real client (spec §8)."""
    admin = {"X-Emulator-Key": running["admin_key"]}
    faults_url = running["base_url"] + "/_emulator/faults"
    token = app_token(running)
    httpx.put(
        faults_url,
        json={"throttle_burst": 1, "throttle_retry_after_seconds": 2},
        headers=admin,
        verify=tls(running),
    )
    try:
        refused = whoami(running, token)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "2"
        assert refused.json()["error"]["code"] == "0x80072322"
    finally:
        httpx.put(faults_url, json={}, headers=admin, verify=tls(running))
    assert whoami(running, token).status_code == 200


def test_tokens_are_bound_to_this_org_over_real_https(running: dict[str, Any]) -> None:
    """§1a: the resource is the environment URL. Over real sockets: a token for this server is
    good whether it is reached as 127.0.0.1 or localhost (one host, documented choice); a scope
    for another port is refused with AADSTS500011 and gets no token."""
    base = running["base_url"]
    port = base.rsplit(":", 1)[1]
    form = {
        "grant_type": "client_credentials",
        "client_id": running["client_id"],
        "client_secret": running["client_secret"],
    }
    issued = httpx.post(
        running["token_url"], data={**form, "scope": running["scope"]}, verify=tls(running)
    )
    token = issued.json()["access_token"]
    via_localhost = httpx.get(
        f"https://localhost:{port}/api/data/v9.2/WhoAmI",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        verify=tls(running),
        timeout=10,
    )
    assert via_localhost.status_code == 200, via_localhost.text
    other_port = int(port) + 1 if int(port) < 65535 else int(port) - 1
    refused = httpx.post(
        running["token_url"],
        data={**form, "scope": f"https://127.0.0.1:{other_port}/.default"},
        verify=tls(running),
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_resource"
    assert refused.json()["error_codes"] == [500011]
