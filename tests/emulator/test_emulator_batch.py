"""``$batch`` (spec §6): multipart parts, change sets, Content-ID references, continue-on-error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from data_plane_support import API, ORG, Emulator, running_emulator

BATCH = "batch_80dd1615-2a10-428a-bb6f-0e559792721f"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _part(
    request_line: str,
    body: object | None = None,
    *,
    content_id: str | None = None,
    headers: tuple[str, ...] = (),
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{request_line} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += list(headers)
    lines.append("")
    lines.append(json.dumps(body) if body is not None else "")
    return "\r\n".join(lines)


def _batch(parts: list[str], boundary: str = BATCH) -> str:
    return "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"


def _change_set(parts: list[str], boundary: str = "changeset_BBB456") -> str:
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n" + _batch(parts, boundary)


def _send(
    emu: Emulator, body: str, prefer: str | None = None, boundary: str = BATCH
) -> tuple[int, str, str]:
    headers = emu.headers()
    headers["Content-Type"] = f'multipart/mixed; boundary="{boundary}"'
    if prefer:
        headers["Prefer"] = prefer
    response = emu.client.post(f"{API}/$batch", content=body.encode(), headers=headers)
    return response.status_code, response.headers["Content-Type"], response.text


def _statuses(text: str) -> list[int]:
    return [int(code) for code in re.findall(r"^HTTP/1\.1 (\d{3})", text, re.MULTILINE)]


def test_independent_requests_and_a_get(emu: Emulator) -> None:
    """§6: parts run in order; the answer is 200 multipart/mixed with a batchresponse_ boundary."""
    account = emu.create("accounts", {"name": "Contoso"})
    body = _batch(
        [
            _part(
                "POST /api/data/v9.2/tasks",
                {
                    "subject": "Task 1 in batch",
                    "regardingobjectid_account_task@odata.bind": f"accounts({account})",
                },
            ),
            _part(f"GET /api/data/v9.2/accounts({account})/Account_Tasks?$select=subject"),
        ]
    )
    status, content_type, text = _send(emu, body)
    assert status == 200
    assert content_type.startswith("multipart/mixed; boundary=batchresponse_")
    assert _statuses(text) == [204, 200]
    assert re.search(r"^OData-EntityId: " + re.escape(API) + r"/tasks\(", text, re.MULTILINE)
    assert '"subject":"Task 1 in batch"' in text
    assert emu.request("GET", "tasks/$count").text == "1"


def test_change_set_with_content_id_reference(emu: Emulator) -> None:
    """§6: $1 references the row created earlier in the change set (bind and URL)."""
    change_set = _change_set(
        [
            _part(
                f"POST {ORG}/api/data/v9.2/leads",
                {"firstname": "first name", "lastname": "last name"},
                content_id="1",
            ),
            _part(
                f"POST {ORG}/api/data/v9.2/accounts",
                {"name": "IcM Account", "originatingleadid@odata.bind": "$1"},
                content_id="2",
            ),
            _part("PATCH $1", {"jobtitle": "Buyer"}, content_id="3"),
        ]
    )
    status, _, text = _send(emu, _batch([change_set]))
    assert status == 200
    assert "boundary=changesetresponse_" in text
    assert _statuses(text) == [204, 204, 204]
    assert re.findall(r"^Content-ID: (\d)", text, re.MULTILINE) == ["1", "2", "3"]
    account = emu.request("GET", "accounts?$select=name,originatingleadid").json()["value"][0]
    lead = emu.request(
        "GET", f"leads({account['_originatingleadid_value']})?$select=jobtitle"
    ).json()
    assert lead["jobtitle"] == "Buyer"


def test_a_failing_change_set_rolls_back_everything(emu: Emulator) -> None:
    """§6: if any operation in a change set fails, all are rolled back; one error answer."""
    change_set = _change_set(
        [
            _part("POST leads", {"lastname": "Rolled back"}, content_id="1"),
            _part("POST tasks", {"subject": "s" * 201}, content_id="2"),
        ]
    )
    status, _, text = _send(emu, _batch([change_set]))
    assert status == 400
    assert _statuses(text) == [400]
    assert '"code":"0x80044331"' in text
    assert emu.request("GET", "leads/$count").text == "0"


def test_without_continue_on_error_processing_stops_at_the_first_failure(emu: Emulator) -> None:
    """§6: stop at the first failure; top-level 400; later requests never run."""
    body = _batch(
        [
            _part("POST tasks", {"subject": "ok"}),
            _part("POST tasks", {"subject": "s" * 201}),
            _part("POST tasks", {"subject": "never"}),
        ]
    )
    status, _, text = _send(emu, body)
    assert status == 400
    assert _statuses(text)[-1] == 400
    assert emu.request("GET", "tasks?$select=subject").json()["value"][0]["subject"] == "ok"
    assert emu.request("GET", "tasks/$count").text == "1"


def test_continue_on_error_answers_every_request(emu: Emulator) -> None:
    """§6: with odata.continue-on-error, 200 and every request gets its own part, in order."""
    body = _batch(
        [
            _part("POST tasks", {"subject": "one"}),
            _part("POST tasks", {"subject": "s" * 201}),
            _part("POST tasks", {"subject": "three"}),
        ]
    )
    status, _, text = _send(emu, body, prefer="odata.continue-on-error")
    assert status == 200
    assert _statuses(text) == [204, 400, 204]
    assert emu.request("GET", "tasks/$count").text == "2"


def test_inner_headers_apply_to_their_request(emu: Emulator) -> None:
    """§6: inner requests carry their own If-Match / Prefer headers."""
    lead = emu.create("leads", {"lastname": "Etag"})
    body = _batch(
        [
            _part(f"PATCH leads({lead})", {"lastname": "stale"}, headers=('If-Match: W/"1"',)),
            _part(
                f"PATCH leads({lead})?$select=lastname",
                {"lastname": "fresh"},
                headers=("Prefer: return=representation",),
            ),
        ]
    )
    status, _, text = _send(emu, body, prefer="odata.continue-on-error")
    assert status == 200
    assert _statuses(text) == [412, 200]
    assert '"lastname":"fresh"' in text


def test_lf_line_endings_are_accepted(emu: Emulator) -> None:
    """§6: the server is lenient about plain \\n line endings."""
    body = _batch([_part("POST tasks", {"subject": "lf"})]).replace("\r\n", "\n")
    status, _, text = _send(emu, body)
    assert status == 200 and _statuses(text) == [204]


def test_undeclared_content_id_and_get_in_change_set_are_400(emu: Emulator) -> None:
    """§6: an undeclared "$9" -> 400 Content-ID Reference error; GET in a change set -> 400."""
    change_set = _change_set(
        [
            _part(
                "POST accounts", {"name": "x", "originatingleadid@odata.bind": "$9"}, content_id="1"
            )
        ]
    )
    status, _, text = _send(emu, _batch([change_set]))
    assert status == 400
    assert "Content-ID Reference: '$9' does not exist in the batch context." in text
    bad = _change_set([_part("GET accounts")])
    status, _, _ = _send(emu, _batch([bad]))
    assert status == 400


def test_more_than_1000_requests_is_refused(emu: Emulator) -> None:
    """§6: up to 1,000 requests per batch."""
    body = _batch([_part("GET WhoAmI") for _ in range(1001)])
    status, _, _ = _send(emu, body)
    assert status == 400
