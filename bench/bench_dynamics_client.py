"""Dynamics client throughput against the emulator served over HTTPS on 127.0.0.1.

The emulator runs as its own process (``crmsync emulator --port 0 --https --json --seed N``),
so client and server each have a core; the client connects through ``build_client`` exactly as
to a real org (MSAL client credentials over TLS).

* Read: every lead through ``iter_records`` with ``odata.maxpagesize=5000``; requests must equal
  ``ceil(leads / page size)``; target ≥ 15,000 records/s.
* Write: conditional updates (``If-Match`` ETag) of the leads just read, through
  ``write_batch`` with 500 per ``$batch``; requests must equal ``ceil(updates / batch size)``;
  target ≥ 3,000 records/s.

Full mode reads 100,000 leads and writes 10,000 updates; quick mode 5,000 of each.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.dynamics.types import WriteRequest, WriteStatus
from crmsync.settings import DynamicsSettings, Secret

PAGE_SIZE = 5000
BATCH_SIZE = 500
READ_TARGET = 15_000.0
WRITE_TARGET = 3_000.0
SELECT = [
    "firstname",
    "lastname",
    "emailaddress1",
    "companyname",
    "jobtitle",
    "telephone1",
    "leadsourcecode",
    "statecode",
    "statuscode",
    "donotemail",
    "ownerid",
    "parentaccountid",
    "createdon",
    "modifiedon",
]


def _start_emulator(directory: Path, leads: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    crmsync = str(Path(sys.executable).parent / "crmsync")
    process = subprocess.Popen(
        [
            crmsync,
            "emulator",
            "--port",
            "0",
            "--https",
            "--json",
            "--db",
            str(directory / "org.db"),
            "--seed",
            str(leads),
        ],
        cwd=directory,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError("the emulator did not start")
    return process, json.loads(line)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _client_only(records: int, updates: int) -> dict[str, Any]:
    """The client's own cost: the same reads and writes answered instantly from memory
    (documented response shapes, spec §3 and §6), so only parsing and encoding are timed.
    """
    row = {
        "@odata.etag": 'W/"1000"',
        "firstname": "Ada",
        "lastname": "Lovelace",
        "emailaddress1": "ada@example.com",
        "companyname": "Analytical Engines",
        "jobtitle": "Analyst",
        "telephone1": "+44 20 7946 0000",
        "leadsourcecode": 8,
        "statecode": 0,
        "statuscode": 1,
        "donotemail": False,
        "_ownerid_value": "5ca9d7e0-0000-0000-0000-000000000001",
        "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "systemuser",
        "_parentaccountid_value": None,
        "createdon": "2024-01-02T03:04:05Z",
        "modifiedon": "2024-01-02T03:04:05Z",
    }
    pages = math.ceil(records / PAGE_SIZE)
    base = "https://contoso.crm.dynamics.com/api/data/v9.2/leads"
    bodies = []
    for page in range(pages):
        rows = [
            {**row, "leadid": f"00000000-0000-0000-0000-{page * PAGE_SIZE + n:012d}"}
            for n in range(min(PAGE_SIZE, records - page * PAGE_SIZE))
        ]
        document: dict[str, Any] = {"value": rows}
        if page + 1 < pages:
            document["@odata.nextLink"] = f"{base}?$skiptoken={page + 1}"
        bodies.append(json.dumps(document).encode())
    part = (
        b"--batchresponse_b\r\nContent-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("$batch"):
            count = request.content.count(b"Content-ID: ")
            body = part * count + b"--batchresponse_b--\r\n"
            content_type = "multipart/mixed; boundary=batchresponse_b"
            return httpx.Response(200, headers={"Content-Type": content_type}, content=body)
        page = int(request.url.params.get("$skiptoken", "0"))
        return httpx.Response(200, content=bodies[page])

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with DynamicsClient(http, "https://contoso.crm.dynamics.com", batch_size=BATCH_SIZE) as client:
        started = time.perf_counter()
        read = list(client.iter_records("leads", SELECT))
        read_seconds = time.perf_counter() - started
        writes = [
            WriteRequest.update("lead", r.id, {"jobtitle": "Bench"}, etag=r.etag)
            for r in read[:updates]
        ]
        started = time.perf_counter()
        client.write_batch(writes)
        write_seconds = time.perf_counter() - started
    return {
        "client_only_read_records_per_second": round(len(read) / read_seconds),
        "client_only_write_records_per_second": round(len(writes) / write_seconds),
    }


def run(quick: bool) -> dict[str, Any]:
    """Measure read and write throughput; return figures and whether targets are met."""
    leads = 5_000 if quick else 100_000
    updates = 5_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        process, org = _start_emulator(Path(directory), leads)
        start_seconds = time.perf_counter() - started
        try:
            settings = DynamicsSettings(
                url=org["base_url"],
                authority=org["base_url"],
                tenant=org["tenant"],
                client_id=org["client_id"],
                client_secret=Secret(org["client_secret"]),
                ca_bundle=org["ca_bundle"],
                page_size=PAGE_SIZE,
                batch_size=BATCH_SIZE,
            )
            with build_client(settings) as client:
                client.who_am_i()  # token and connection warm-up, not measured
                client.entity_schema("lead")  # read once and cached, as the sync engine does
                before = client.stats()
                started = time.perf_counter()
                records = list(client.iter_records("leads", SELECT))
                read_seconds = time.perf_counter() - started
                read_requests = client.stats().requests - before.requests

                targets = records[:updates]
                requests = [
                    WriteRequest.update("lead", r.id, {"jobtitle": f"Bench {n}"}, etag=r.etag)
                    for n, r in enumerate(targets)
                ]
                before = client.stats()
                started = time.perf_counter()
                results = client.write_batch(requests)
                write_seconds = time.perf_counter() - started
                after = client.stats()
                write_requests = after.requests - before.requests
        finally:
            started = time.perf_counter()
            _stop(process)
            stop_seconds = time.perf_counter() - started
    written = sum(1 for r in results if r.status is WriteStatus.OK)
    read_rate = len(records) / read_seconds
    write_rate = written / write_seconds
    expected_reads = math.ceil(leads / PAGE_SIZE)
    expected_writes = math.ceil(len(requests) / BATCH_SIZE)
    return {
        **_client_only(leads, updates),
        "emulator_start_seconds": round(start_seconds, 2),
        "emulator_stop_seconds": round(stop_seconds, 2),
        "leads": leads,
        "records_read": len(records),
        "read_seconds": round(read_seconds, 3),
        "read_records_per_second": round(read_rate),
        "read_requests": read_requests,
        "read_requests_expected": expected_reads,
        "updates": len(requests),
        "updates_ok": written,
        "write_seconds": round(write_seconds, 3),
        "write_records_per_second": round(write_rate),
        "write_requests": write_requests,
        "write_requests_expected": expected_writes,
        "retries": after.retries,
        "throttled": after.throttled,
        "target_read_records_per_second": READ_TARGET,
        "target_write_records_per_second": WRITE_TARGET,
        "meets_target": (
            len(records) == leads
            and written == len(requests)
            and read_requests == expected_reads
            and write_requests == expected_writes
            and read_rate >= READ_TARGET
            and write_rate >= WRITE_TARGET
        ),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
