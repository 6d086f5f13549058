"""The admin API fuzzed from its own OpenAPI document with schemathesis (a bounded number of
examples per operation): no 5xx, and every answer matches the document (status codes, content
type, body schema)."""

from __future__ import annotations

from typing import Any

import schemathesis
from admin_harness import ADMIN_EMAIL, build_admin_app
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.routing import Mount

from crmsync.store.db import open_database
from crmsync.web.admin.api import API_PREFIX

EXAMPLES_PER_OPERATION = 25


# A campaign definition is checked against the database (its fields, lists and step rules),
# beyond what a JSON schema can say: a schema-valid one may be refused with 400 and a reason.
CHECKED_BEYOND_SCHEMA = {("POST", "/campaigns")}


def _fuzz(operation: Any, token: str) -> None:
    excluded = (
        [positive_data_acceptance]
        if (operation.method.upper(), operation.path) in CHECKED_BEYOND_SCHEMA
        else []
    )

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def call(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded
        )

    call()


def test_admin_api_answers_match_its_openapi_document(sqlite_database_url: str) -> None:
    engine = open_database(sqlite_database_url)
    try:
        for admin in build_admin_app(engine):
            api = next(
                route.app
                for route in admin.app.routes
                if isinstance(route, Mount) and route.path == API_PREFIX
            )
            user = admin.users.by_email(ADMIN_EMAIL)
            assert user is not None
            token = admin.users.create_token(user.id, "fuzz", actor="test")
            schema = schemathesis.openapi.from_asgi("/openapi.json", api)
            operations = [result.ok() for result in schema.get_all_operations()]
            assert len(operations) == 19
            for operation in operations:
                _fuzz(operation, token)
    finally:
        engine.dispose()
