"""The two sides as their users reach them: the Dataverse Web API and the Marketo REST API.

:class:`DynamicsSide` plays salespeople: it signs in as the emulator's ordinary users (password
grant) and creates and edits leads and contacts over HTTP; deletes go through the sync
application user, since salespeople may not delete. Faults the soak injects hit these requests
too; every one of them is refused before the emulator applies it, so a request is simply sent
again until it is answered (the soak never injects lost answers on these paths).

:class:`MarketingSide` plays marketers through ``/rest/v1`` of ``crmsync serve``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from soak.processes import SoakError

TRANSIENT = {401, 408, 429, 500, 502, 503, 504}
API = "/api/data/v9.2/"


class DynamicsSide:
    """Salespeople (and an administrator for deletes) working in the emulator over HTTP."""

    def __init__(self, org: dict[str, Any]) -> None:
        self.org = org
        self.http = httpx.Client(base_url=org["base_url"], timeout=60.0)
        self.tokens: dict[str, str] = {}
        self.requests = 0
        self.refused = 0

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _token(self, who: str) -> str:
        if who not in self.tokens:
            if who == "admin":
                form = {
                    "grant_type": "client_credentials",
                    "client_id": self.org["client_id"],
                    "client_secret": self.org["client_secret"],
                    "scope": self.org["scope"],
                }
            else:
                user = self.org["users"][int(who)]
                form = {
                    "grant_type": "password",
                    "client_id": self.org["public_client_id"],
                    "username": user["upn"],
                    "password": user["password"],
                    "scope": self.org["scope"],
                }
            answer = self.http.post(self.org["token_url"], data=form)
            answer.raise_for_status()
            self.tokens[who] = str(answer.json()["access_token"])
        return self.tokens[who]

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """Send one Web API request as ``who`` (``"0"``/``"1"`` a salesperson, ``"admin"``).

        Refusals that happened before the write (401, 429, 5xx, a dropped connection) are sent
        again; anything else is returned.
        """
        for _ in range(200):
            self.requests += 1
            headers = {"Authorization": f"Bearer {self._token(who)}", "Accept": "application/json"}
            try:
                answer = self.http.request(method, API + path, json=body, headers=headers)
            except httpx.TransportError:
                self.refused += 1
                time.sleep(0.05)
                continue
            if answer.status_code not in TRANSIENT:
                return answer
            self.refused += 1
            if answer.status_code == 401:
                self.tokens.pop(who, None)
            retry_after = float(answer.headers.get("retry-after", "0") or 0)
            time.sleep(min(retry_after, 2.0) if retry_after else 0.05)
        raise SoakError(f"{method} {path} refused 200 times")

    def update(self, who: str, entity_set: str, crm_id: str, values: dict[str, Any]) -> None:
        """PATCH one record (it must exist)."""
        answer = self.call(who, "PATCH", f"{entity_set}({crm_id})", values)
        if answer.status_code != 204:
            raise SoakError(f"update of {entity_set}({crm_id}): {answer.status_code} {answer.text}")

    def create(self, who: str, entity_set: str, values: dict[str, Any]) -> str:
        """POST a record; return its id."""
        answer = self.call(who, "POST", entity_set, values)
        if answer.status_code != 204:
            raise SoakError(f"create in {entity_set}: {answer.status_code} {answer.text}")
        entity_id = answer.headers["OData-EntityId"]
        return entity_id.rsplit("(", 1)[1].rstrip(")")

    def delete(self, entity_set: str, crm_id: str) -> None:
        """DELETE a record as the administrator."""
        answer = self.call("admin", "DELETE", f"{entity_set}({crm_id})")
        if answer.status_code != 204:
            raise SoakError(f"delete of {entity_set}({crm_id}): {answer.status_code} {answer.text}")

    def read_all(self, entity_set: str, columns: list[str]) -> dict[str, dict[str, Any]]:
        """Every record of ``entity_set`` with ``columns``, by id (as the administrator)."""
        key = entity_set[:-1] + "id"
        found: dict[str, dict[str, Any]] = {}
        path: str | None = f"{entity_set}?$select={','.join([key, *columns])}"
        while path is not None:
            answer = self.call("admin", "GET", path)
            if answer.status_code != 200:
                raise SoakError(f"read of {entity_set}: {answer.status_code} {answer.text}")
            page = answer.json()
            for row in page["value"]:
                found[str(row[key])] = {c: row.get(c) for c in columns}
            next_link = page.get("@odata.nextLink")
            path = next_link.split(API, 1)[1] if next_link else None
        return found

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the emulator's admin API (fault knobs, token expiry, statistics)."""
        answer = self.http.request(
            method,
            f"/_emulator/{path}",
            json=body,
            headers={"X-Emulator-Key": self.org["admin_key"]},
        )
        answer.raise_for_status()
        return answer.json()


class MarketingSide:
    """Marketers using the Marketo REST API of ``crmsync serve``."""

    def __init__(self, url: str, client_id: str, client_secret: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60.0)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token = ""
        self.requests = 0

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for _ in range(50):
            if not self.token:
                answer = self.http.get(
                    "/identity/oauth/token",
                    params={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                    },
                )
                answer.raise_for_status()
                self.token = str(answer.json()["access_token"])
            self.requests += 1
            answer = self.http.request(
                method, path, headers={"Authorization": f"Bearer {self.token}"}, **kwargs
            )
            body: dict[str, Any] = answer.json()
            codes = {str(e.get("code")) for e in body.get("errors", [])}
            if codes & {"601", "602"}:
                self.token = ""
                continue
            if codes & {"606", "615"}:
                time.sleep(0.5)
                continue
            if not body.get("success"):
                raise SoakError(f"{method} {path}: {body}")
            return body
        raise SoakError(f"{method} {path} refused 50 times")

    def sync(self, action: str, lookup: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /rest/v1/leads.json``; return the per-record results."""
        body = self._call(
            "POST",
            "/rest/v1/leads.json",
            json={"action": action, "lookupField": lookup, "input": records},
        )
        results: list[dict[str, Any]] = body["result"]
        return results

    def delete(self, person_id: int) -> None:
        """Delete one person (marketing side only)."""
        self._call("POST", "/rest/v1/leads/delete.json", json={"input": [{"id": person_id}]})

    def get(self, person_id: int, fields: list[str]) -> dict[str, Any] | None:
        """One person with ``fields``, or None when there is none."""
        body = self._call(
            "GET",
            "/rest/v1/leads.json",
            params={"filterType": "id", "filterValues": str(person_id), "fields": ",".join(fields)},
        )
        result: list[dict[str, Any]] = body.get("result", [])
        return result[0] if result else None

    def find_by_email(self, email: str, fields: list[str]) -> list[dict[str, Any]]:
        """The persons with this e-mail address."""
        body = self._call(
            "GET",
            "/rest/v1/leads.json",
            params={"filterType": "email", "filterValues": email, "fields": ",".join(fields)},
        )
        result: list[dict[str, Any]] = body.get("result", [])
        return result
