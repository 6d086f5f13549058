"""Acceptance: marketorestpython recovers from our rate limit and short-lived tokens.

Spec marketo-rest §9.4: the client backs off on 606 and retries *without* its token (it
popped it on the first attempt); the server answers that retry 601, the client re-runs the
method with the token, and the call converges. Tokens that live only seconds make the client
fetch one before each call (``expires_in`` < 60) and re-authenticate on 602.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from marketo_server import RunningServer, marketo_client, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = {
        "CRMSYNC_WEB_CALLS_PER_WINDOW": "3",
        "CRMSYNC_WEB_WINDOW_SECONDS": "1",
        "CRMSYNC_WEB_TOKEN_LIFETIME_SECONDS": "2",
    }
    workdir = tmp_path_factory.mktemp("e2e-limits")
    with running_server(workdir, settings, setup_by_cli=False) as running:
        yield running


def test_client_converges_through_606_and_token_expiry(strict_server: RunningServer) -> None:
    """Ten writes and reads at the client's own pace (5/s) against 3 calls/s all succeed."""
    mc = marketo_client(strict_server)
    ids = []
    for n in range(10):
        result = mc.execute(
            method="create_update_leads",
            leads=[{"email": f"limit{n}@example.com", "firstName": f"L{n}"}],
            action="createOrUpdate",
            lookupField="email",
        )
        assert result is not None and result[0]["status"] == "created"
        ids.append(result[0]["id"])
    found = mc.execute(
        method="get_multiple_leads_by_filter_type",
        filterType="id",
        filterValues=[str(i) for i in ids],
        fields=["firstName"],
    )
    assert sorted(item["firstName"] for item in found) == sorted(f"L{n}" for n in range(10))
