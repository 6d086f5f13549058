"""The admin API fuzzed from its own OpenAPI document with schemathesis (a bounded number of
examples per operation): no 5xx, and every answer matches the document (status codes, content
type, body schema)."""

from __future__ import annotations

import dataclasses
from typing import Any

import schemathesis
from admin_harness import ADMIN_EMAIL, build_admin_app
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine
from starlette.routing import Mount
from sync_harness import engine_client, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.errors import TransientServerError
from crmsync.settings import DynamicsSettings
from crmsync.store.db import open_database
from crmsync.web.admin.api import API_PREFIX

EXAMPLES_PER_OPERATION = 25


# A campaign definition is checked against the database (its fields, lists and step rules),
# beyond what a JSON schema can say: a schema-valid one may be refused with 400 and a reason.
# So is a field selection (the columns Dynamics has), a custom entity to enable (a table linked
# to a person or company in Dynamics) and a connection (its URL must be a web address, and it
# is saved only when it connects).
CHECKED_BEYOND_SCHEMA = {
    ("POST", "/campaigns"),
    ("POST", "/custom-entities"),
    ("PUT", "/fields/{entity}"),
    ("PUT", "/setup/connection"),
}


def _offline(settings: DynamicsSettings) -> DynamicsClient:
    """A connection the fuzzer makes up is out of reach at once (it is refused with 409)."""
    raise TransientServerError(f"{settings.url} is out of reach in this test")


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
        with running_org(default_config(), 2) as org:
            _fuzz_api(engine, org.base)
    finally:
        engine.dispose()


def _fuzz_api(engine: Engine, org_base: str) -> None:
    """Fuzz every operation; the Fields endpoints read the emulated org at ``org_base``."""
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
        api.state.admin = dataclasses.replace(
            api.state.admin,
            dynamics_client=lambda: engine_client(org_base),
            client_for=_offline,
        )
        assert len(operations) == 25
        for operation in operations:
            _fuzz(operation, token)
