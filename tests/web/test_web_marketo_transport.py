"""Transport rules of every call: JSON always, limits, tunnelling (spec marketo-rest §1, §8)."""

from __future__ import annotations

from marketo_harness import MarketoHarness, build_harness
from sqlalchemy import Engine

from crmsync.settings import WebSettings
from crmsync.store.db import open_database
from crmsync.web.api_marketo import MarketoApi


def test_unknown_paths_and_methods_get_json_errors_never_html(marketo: MarketoHarness) -> None:
    """§10.5: unknown path 610, wrong method 605, both as JSON with HTTP 200."""
    unknown = marketo.http.get("/rest/v1/nothing/here.json", headers=marketo.auth)
    assert unknown.status_code == 200
    assert unknown.json()["errors"] == [{"code": "610", "message": "Requested resource not found"}]
    wrong_method = marketo.http.put("/rest/v1/leads/describe.json", headers=marketo.auth)
    assert wrong_method.json()["errors"][0]["code"] == "605"
    outside = marketo.http.get("/favicon.ico")
    assert outside.headers["content-type"].startswith("application/json")
    assert outside.json()["errors"][0]["code"] == "610"


def test_unknown_path_without_a_token_is_still_json(marketo: MarketoHarness) -> None:
    """§9.4: every reply parses as JSON, whatever was wrong with the request."""
    reply = marketo.http.post("/rest/v2/whatever", content=b"\x00\xff")
    assert reply.status_code == 200
    assert reply.json()["success"] is False


def test_body_over_one_megabyte_is_413_and_writes_nothing(marketo_db: MarketoHarness) -> None:
    """§1 / §8: a body over 1 MB is refused with HTTP 413 (as JSON)."""
    big = (
        b'{"input":['
        + b",".join([b'{"email":"x@example.com","title":"' + b"a" * 200 + b'"}'] * 5000)
        + b"]}"
    )
    assert len(big) > 1_048_576
    reply = marketo_db.http.post(
        "/rest/v1/leads.json",
        content=big,
        headers={**marketo_db.auth, "Content-Type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["success"] is False
    found = marketo_db.get(
        "/rest/v1/leads.json", {"filterType": "email", "filterValues": "x@example.com"}
    )
    assert found["result"] == []


def test_uri_over_8_kb_is_414_and_the_post_tunnel_works_instead(marketo: MarketoHarness) -> None:
    """§1: GET URIs over 8 KB are 414; the documented remedy is POST with ``_method=GET``."""
    marketo.post_json("/rest/v1/leads.json", {"input": [{"email": "long@example.com"}]})
    values = ",".join(f"person{i}@example.com" for i in range(290)) + ",long@example.com"
    too_long = marketo.http.get(
        "/rest/v1/leads.json",
        params={"filterType": "email", "filterValues": values * 2},
        headers=marketo.auth,
    )
    assert too_long.status_code == 414
    tunnelled = marketo.http.post(
        "/rest/v1/leads.json",
        data={"_method": "GET", "filterType": "email", "filterValues": values, "fields": "email"},
        headers=marketo.auth,
    ).json()
    assert [item["email"] for item in tunnelled["result"]] == ["long@example.com"]


def test_rate_limit_606_per_client_and_uncounted_errors(marketo: MarketoHarness) -> None:
    """§8 / §10.9: the 101st counted call within 20 s is 606; 605 replies do not count."""
    path = "/rest/v1/leads/partitions.json"
    for _ in range(5):
        marketo.http.put(path, headers=marketo.auth)  # 605: not counted
    for _ in range(100):
        assert marketo.get(path)["success"] is True
    limited = marketo.get(path)
    assert limited["errors"] == [
        {"code": "606", "message": "Max rate limit '100' exceeded with in '20' secs"}
    ]
    marketo.clock.advance(20.5)
    assert marketo.get(path)["success"] is True


def test_concurrency_limit_615(migrated_engine: Engine) -> None:
    """§8: with every slot busy, the next call is refused with 615 and changes nothing."""
    for harness in build_harness(migrated_engine, WebSettings(max_concurrent_calls=2)):
        api: MarketoApi = harness.app.state.marketo
        lead = {"input": [{"email": "c@example.com"}]}
        with api.limits.concurrency.slot(), api.limits.concurrency.slot():
            busy = harness.post_json("/rest/v1/leads.json", lead)
        assert busy["errors"] == [{"code": "615", "message": "Concurrent access limit reached"}]
        again = harness.post_json("/rest/v1/leads.json", lead)
        assert again["result"][0]["status"] == "created"


def test_bad_query_parameters_are_response_level_errors(marketo: MarketoHarness) -> None:
    """§3 [INFERENCE]: problems with query parameters fail the call with their code."""
    cases = [
        {"filterType": "email", "filterValues": "a@b.c", "batchSize": "0"},
        {"filterType": "email", "filterValues": ",".join(str(i) for i in range(301))},
        {"filterType": "id", "filterValues": "abc"},
        {"filterType": "email", "filterValues": "a@b.c", "nextPageToken": "!!"},
    ]
    for query in cases:
        reply = marketo.get("/rest/v1/leads.json", query)
        assert reply["success"] is False, query
        assert reply["errors"][0]["code"] == "1003", query


def test_unexpected_failure_is_611_json_without_details(marketo: MarketoHarness) -> None:
    """§3 611 "System error": a broken database gives a JSON error, never a stack trace."""
    with marketo.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE persons RENAME TO persons_elsewhere")
    reply = marketo.http.post(
        "/rest/v1/leads.json", json={"input": [{"email": "a@example.com"}]}, headers=marketo.auth
    )
    assert reply.status_code == 200
    assert reply.json()["errors"] == [{"code": "611", "message": "System error"}]
    assert "Traceback" not in reply.text and "persons" not in reply.text
    api: MarketoApi = marketo.app.state.marketo
    assert api.limits.rate.calls_in_window(marketo.client_id) == 0


def test_hostile_values_get_marketo_errors_not_system_errors(marketo: MarketoHarness) -> None:
    """Bad input gets its error and changes nothing: no value makes the server fail (611)."""
    huge = "99999999999999999999999"
    calls = [
        ("POST", "/rest/v1/leads.json", {"json": {"action": ["x"], "input": [{"email": "a@b.c"}]}}),
        (
            "POST",
            "/rest/v1/leads.json",
            {
                "content": b'{"input":[{"email":{"x":1}},{"leadScore":1e400},{"leadScore":NaN}]}',
                "headers": {"Content-Type": "application/json"},
            },
        ),
        (
            "POST",
            "/rest/v1/leads.json",
            {"json": {"input": [{"id": int(huge)}], "action": "updateOnly", "lookupField": "id"}},
        ),
        ("GET", f"/rest/v1/lead/{huge}.json", {}),
        ("POST", "/rest/v1/leads/delete.json", {"json": {"input": [{"id": int(huge)}]}}),
        ("POST", f"/rest/v1/lists/{huge}/leads.json", {"json": {"input": [{"id": 1}]}}),
        (
            "GET",
            "/rest/v1/activities/pagingtoken.json",
            {"params": {"sinceDatetime": "9999-12-31T23:59:59-12:00"}},
        ),
        (
            "GET",
            "/rest/v1/leads.json",
            {"params": {"filterType": "email", "filterValues": "a@b.c", "nextPageToken": "zz"}},
        ),
        ("POST", "/rest/asset/v1/staticLists.json", {"data": {"name": "x" * 300}}),
    ]
    for method, path, options in calls:
        headers = {**marketo.auth, **options.pop("headers", {})}
        reply = marketo.http.request(method, path, headers=headers, **options).json()
        codes = [error["code"] for error in reply.get("errors", [])]
        codes += [r["code"] for item in reply.get("result", []) for r in item.get("reasons", [])]
        assert codes, (path, reply)
        assert "611" not in codes, (path, reply)
    assert (
        marketo.get("/rest/v1/leads.json", {"filterType": "id", "filterValues": "1"})["result"]
        == []
    )


def test_large_replies_are_gzipped_when_the_client_accepts_it(marketo: MarketoHarness) -> None:
    """§1 Compression: bodies of 1024 bytes or more are gzipped on request."""
    path = "/rest/v1/leads/describe.json"
    zipped = marketo.http.get(path, headers={**marketo.auth, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json()["success"] is True  # httpx decompresses
    plain = marketo.http.get(path, headers={**marketo.auth, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json()["result"] == zipped.json()["result"]
    small = marketo.http.get(
        "/rest/v1/leads/partitions.json", headers={**marketo.auth, "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers


def test_daily_quota_from_the_settings_answers_607_over_the_api(
    sqlite_database_url: str,
) -> None:
    """§3 / §8: once a client used ``[web] daily_calls`` today, its calls are 607."""
    engine = open_database(sqlite_database_url)
    try:
        for harness in build_harness(engine, WebSettings(daily_calls=2)):
            path = "/rest/v1/leads/partitions.json"
            assert harness.get(path)["success"] is True
            wrong_method = harness.http.put(path, headers=harness.auth).json()
            assert wrong_method["errors"][0]["code"] == "605"  # 605 does not count
            assert harness.get(path)["success"] is True
            refused = harness.get(path)
            assert refused["success"] is False
            assert refused["errors"] == [{"code": "607", "message": "Daily quota reached"}]
            harness.clock.advance(24 * 3600)  # a new day (and a new token: the old expired)
            harness.token = harness.http.get(
                "/identity/oauth/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": harness.client_id,
                    "client_secret": harness.client_secret,
                },
            ).json()["access_token"]
            assert harness.get(path)["success"] is True
    finally:
        engine.dispose()
