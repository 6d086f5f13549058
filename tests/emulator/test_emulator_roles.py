"""Revoking and granting a user's table privileges while the emulator runs
(``/_emulator/privileges``), as an administrator editing a security role would: the next
request is refused with the documented 403 ``PrivilegeDenied``, ``RetrieveUserPrivileges``
stops listing the privilege, and granting it again (or resetting) restores both."""

from __future__ import annotations

from typing import Any

from control_plane_support import Api, bearer, full_emulator

from crmsync.emulator.config import EmulatorConfig

PRIVILEGES = "/_emulator/privileges"


def _admin(config: EmulatorConfig) -> dict[str, str]:
    return {"X-Emulator-Key": config.admin_key.reveal()}


def _names(api: Api, config: EmulatorConfig, headers: dict[str, str]) -> set[str]:
    user = api.get("/api/data/v9.2/WhoAmI", headers=headers).json()["UserId"]
    answer = api.get(
        f"/api/data/v9.2/systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges",
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return {p["PrivilegeName"] for p in answer.json()["RolePrivileges"]}


def _create_lead(api: Api, headers: dict[str, str]) -> str:
    created = api.post("/api/data/v9.2/leads", json={"lastname": "Role"}, headers=headers)
    assert created.status_code == 204, created.text
    return str(created.headers["odata-entityid"]).split("/api/data/v9.2/", 1)[1]


def test_a_revoked_privilege_is_refused_and_unlisted_until_granted_again() -> None:
    with full_emulator() as (api, config, _):
        headers = bearer(api.token(config))
        lead = _create_lead(api, headers)
        revoked = api.patch(
            PRIVILEGES, json={"table": "lead", "revoke": ["write"]}, headers=_admin(config)
        )
        assert revoked.status_code == 200
        assert revoked.json()["held"] == ["append", "appendto", "create", "delete", "read"]

        refused = api.patch(f"/api/data/v9.2/{lead}", json={"firstname": "No"}, headers=headers)
        assert refused.status_code == 403
        error: dict[str, Any] = refused.json()["error"]
        assert (
            error["code"] == "0x80040220" and "missing prvWriteLead privilege" in error["message"]
        )
        assert "prvWriteLead" not in _names(api, config, headers)
        assert "prvWriteContact" in _names(api, config, headers)
        assert api.get(f"/api/data/v9.2/{lead}?$select=lastname", headers=headers).is_success
        assert api.get(PRIVILEGES, headers=_admin(config)).json()["changes"] != {}

        api.patch(PRIVILEGES, json={"table": "lead", "grant": ["write"]}, headers=_admin(config))
        done = api.patch(f"/api/data/v9.2/{lead}", json={"firstname": "Yes"}, headers=headers)
        assert done.status_code == 204
        assert "prvWriteLead" in _names(api, config, headers)

        api.patch(PRIVILEGES, json={"table": "lead", "revoke": ["create"]}, headers=_admin(config))
        assert (
            api.post("/api/data/v9.2/leads", json={"lastname": "x"}, headers=headers).status_code
            == 403
        )
        assert api.request("DELETE", PRIVILEGES, headers=_admin(config)).json() == {"changes": {}}
        assert _create_lead(api, headers)


def test_a_salesperson_named_by_upn_loses_only_their_own_privilege() -> None:
    with full_emulator() as (api, config, _):
        app_headers = bearer(api.token(config))
        lead = _create_lead(api, app_headers)
        alex = {
            "Authorization": "Bearer "
            + api.user_token(config, "alex.morgan@contoso.example", "alex-password-1")
        }
        answer = api.patch(
            PRIVILEGES,
            json={"user": "alex.morgan@contoso.example", "table": "lead", "revoke": ["write"]},
            headers=_admin(config),
        )
        assert answer.status_code == 200
        assert (
            api.patch(f"/api/data/v9.2/{lead}", json={"firstname": "A"}, headers=alex).status_code
            == 403
        )
        assert (
            api.patch(
                f"/api/data/v9.2/{lead}", json={"firstname": "B"}, headers=app_headers
            ).status_code
            == 204
        )


def test_bad_privilege_changes_get_a_clear_400_and_change_nothing() -> None:
    with full_emulator() as (api, config, _):
        admin = _admin(config)
        for body, words in (
            ({"table": "lead", "revoke": ["fly"]}, "unknown privilege(s) fly"),
            ({"table": "lead", "revoke": "write"}, "revoke must be a list"),
            ({"revoke": ["write"]}, "table must name a table"),
            ({"user": "nobody@example.com", "table": "lead"}, "names no configured user"),
            ([1, 2], "must be a JSON object"),
        ):
            answer = api.patch(PRIVILEGES, json=body, headers=admin)
            assert answer.status_code == 400 and words in answer.json()["error"]["message"]
        assert api.get(PRIVILEGES, headers=admin).json() == {"changes": {}}
        assert api.patch(PRIVILEGES, json={"table": "lead"}).status_code == 401  # no admin key
