"""The Dataverse Web API emulator as an ASGI app: :func:`create_emulator_app`.

The data plane (this module and the modules it routes to) answers ``/api/data/v9.x/...``; the
control plane (:mod:`.auth`, :mod:`.protection`, :mod:`.faults`) adds the token endpoint, the
admin API, bearer authentication, service protection and faults around it.

Where the docs are silent (choices the emulator makes; keep in step with docs/emulator.md):

* ``$skip`` is refused with 400 ``0x80060888`` "The query parameter $skip is not supported."
* ``Prefer: odata.maxpagesize`` above 5,000 is capped at 5,000 (the cap is echoed in
  ``Preference-Applied``); with both ``$top`` and ``odata.maxpagesize``, ``$top`` is ignored
  (the 2024 paging page).
* ``$count`` and ``/$count`` are capped at 5,000; ``/$count`` has no byte-order mark.
* String comparisons in ``$filter``/``$orderby`` are case-insensitive; ``ne`` never matches
  null (SQL semantics); lookups order by GUID, not by the related row's name.
* The ``$skiptoken`` is shaped like Dataverse's paging cookie and carries keyset values; paging
  by primary key (the default order) is stable under concurrent writes.
* Change tracking on a table without it, and ``$filter``/``$orderby``/``$expand``/``$top`` with
  ``odata.track-changes``: 400 ``0x80040203`` with the documented message text. An expired delta
  token (older than ``delta_token_max_age_days`` or issued before "expire delta tokens"): 400
  ``0x80044352`` ExpiredVersionStamp.
* A lookup bound to a missing row: 404 ``0x80040217`` "<table> With Id = <id> Does Not Exist".
* Money/decimal/double out of range: 400 ``0x80044330``.
* A statuscode that does not belong to the statecode: 400 ``0x80040203``.
* Field security: a secured column without create permission -> 403 ``0x8004F502``, without
  update permission -> 403 ``0x8004F507``; the configuration grants create and update together.
  Filtering or ordering on a secured column the caller cannot read -> 403 ``0x8004F506``.
* ``CreateMultiple``/``UpdateMultiple``/``UpsertMultiple`` are served for the tables their
  ``sdkmessagefilters`` rows name; ``UpsertMultiple`` answers ``{"Ids": [...]}``.
* Duplicate detection compares ``emailaddress1`` within the same table only.
* ``$batch`` without ``odata.continue-on-error`` stops at the first failure and answers
  ``400``; the multipart body holds the responses of the requests already processed followed
  by the failing one (the documented example shows a batch whose first request fails). A failed
  change set is answered by one error response (OData 4.0 §11.7.4) and rolled back.
* A delete refused by a Restrict relationship answers 400 ``0x80040227``
  (CannotDeleteDueToAssociation, our reading of the error list); cascades need no privilege
  on the related rows.
* List membership: ``lists(<id>)/listlead_association`` (and ``listcontact_``/``listaccount_``)
  with ``$ref`` to add/remove; adding an existing member is a no-op 204; the member's table must
  match the list's ``createdfromcode`` (400 otherwise). ``AddMemberList``,
  ``AddListMembersList`` (all members or none) and ``RemoveMemberList`` are served.
* Deep insert works through single-valued navigation properties, not collections.
* ``$expand`` works on single-valued navigation properties (lookups) and on the
  collection-valued ones of one-to-many relationships (built-in and custom: ``Account_Tasks``,
  ``contact_customer_accounts`` ...), with a nested ``$select`` only; those can also be read
  as collections.
* ``$apply`` (aggregation) is refused with 400. No alternate keys are defined out of the
  box, so ``leads(emailaddress1='...')`` is the documented "key ... is not valid" 400 until
  a key is defined through ``EntityDefinitions(...)/Keys``; a new key is Active at once.
* Every money column's row gets the base currency (US Dollar) when none is bound.
* Metadata changes need no privilege.
* ``$filter`` nests parentheses and ``not`` at most 100 deep, JSON bodies at most 64 deep;
  deeper input, ``$top`` outside Int64, ``NaN``/``Infinity``, a lone UTF-16 surrogate and
  unbalanced parentheses in ``$expand``/``$select`` options answer 400.
* Any unexpected server error answers 500 ``0x80040216`` "An unexpected error occurred." with
  no stack trace.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from crmsync.dataverse_codes import (
    INVALID_AUTH_TICKET,
    ODATA_URI_ERROR,
    PAYLOAD_ERROR,
    UNEXPECTED,
)
from crmsync.emulator import (
    actions,
    bulk,
    changes,
    csdl,
    keys,
    lists,
    metadata_query,
    record_counts,
    records,
    relations,
    writes,
)
from crmsync.emulator.config import EmulatorConfig, EmulatorUser
from crmsync.emulator.context import ApiResponse, RequestContext, RuntimeView, json_response
from crmsync.emulator.errors import (
    EmulatorFault,
    bad_request,
    error_payload,
    method_not_allowed,
    not_found,
    segment_not_found,
)
from crmsync.emulator.faults import control_routes, wrap_with_control
from crmsync.emulator.messages import ensure_sdk_messages
from crmsync.emulator.metadata import Catalog, EntityDef
from crmsync.emulator.metadata_api import MetadataApi
from crmsync.emulator.metadata_changes import create_relationship
from crmsync.emulator.odata import parse_prefer, resolve_aliases
from crmsync.emulator.runtime import EmulatorRuntime
from crmsync.emulator.schema import builtin_entities
from crmsync.emulator.storage import Storage
from crmsync.emulator.validation import parse_guid

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^([A-Za-z_$][A-Za-z0-9_.]*)(?:\((.*)\))?$")
_CONTENT_ID = re.compile(r"^\$(\d+)$")
API_VERSION = re.compile(r"^v9\.[0-2]$")
_NOBODY = str(uuid.UUID(int=0))
_LIST_ACTIONS = {
    "AddMemberList": lists.add_member_list,
    "AddListMembersList": lists.add_list_members_list,
    "RemoveMemberList": lists.remove_member_list,
}


def split_path(path: str) -> list[str]:
    """Split a resource path on ``/`` outside quotes and parentheses."""
    if "'" not in path:  # keys without quoted strings never hold a "/"
        return [s for s in path.split("/") if s]
    segments: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(path):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif char == "/" and depth == 0 and not quoted:
            segments.append(path[start:index])
            start = index + 1
    segments.append(path[start:])
    return [s for s in segments if s]


class DataPlane:
    """Routes one Web API request (top-level or inside ``$batch``) to its handler."""

    def __init__(
        self,
        config: EmulatorConfig,
        storage: Storage,
        runtime: RuntimeView,
    ) -> None:
        self.config = config
        self.storage = storage
        self.catalog = storage.catalog
        self.runtime = runtime

    def context(
        self,
        user: EmulatorUser,
        base_url: str,
        headers: Mapping[str, str],
        prefer: list[str],
        content_ids: dict[str, str] | None = None,
    ) -> RequestContext:
        """A request context (raises a 400 for a malformed ``Prefer``)."""
        return RequestContext(
            storage=self.storage,
            catalog=self.catalog,
            config=self.config,
            runtime=self.runtime,
            user=user,
            base_url=base_url,
            prefs=parse_prefer(prefer),
            headers=headers,
            content_ids=content_ids if content_ids is not None else {},
        )

    def handle(
        self,
        *,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        prefer: list[str],
        body: bytes,
        user: EmulatorUser,
        base_url: str,
        content_ids: dict[str, str] | None = None,
    ) -> ApiResponse:
        """Answer one request; errors become the documented JSON error body, never a trace."""
        details = False
        try:
            ctx = self.context(user, base_url, headers, prefer, content_ids)
            details = ctx.prefs.wants("Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus")
            raw = dict(parse_qsl(query_string, keep_blank_values=True))
            if metadata_query.is_function_path(path):
                _only(method.upper(), "GET")
                return metadata_query.retrieve_metadata_changes(ctx, path, raw)
            if record_counts.is_function_path(path):
                _only(method.upper(), "GET")
                return record_counts.retrieve_total_record_count(ctx, path, raw)
            query = resolve_aliases(raw)
            # Every request is one transaction (a savepoint inside $batch): an error undoes all
            # it wrote, so no record is ever half-written.
            with self.storage.lock, self.storage.transaction():
                return self.route(ctx, method.upper(), path, query, body)
        except EmulatorFault as fault:
            return self.error_response(fault, details=details)
        except Exception:
            log.exception("unexpected error answering %s %s", method, path)
            return self.error_response(
                EmulatorFault(500, UNEXPECTED, "An unexpected error occurred."),
                details=details,
            )

    @staticmethod
    def error_response(fault: EmulatorFault, *, details: bool) -> ApiResponse:
        """The JSON error body with the status the fault carries."""
        response = json_response(fault.status, error_payload(fault, details=details))
        response.headers.append(("REQ_ID", str(uuid.uuid4())))
        return response

    def route(
        self, ctx: RequestContext, method: str, path: str, query: dict[str, str], body: bytes
    ) -> ApiResponse:
        """Dispatch on the resource path."""
        segments = split_path(path)
        if segments and _CONTENT_ID.match(segments[0].split("(")[0]):
            resolved = ctx.content_ids.get(segments[0])
            if resolved is None:
                raise bad_request(
                    PAYLOAD_ERROR,
                    f"Content-ID Reference: '{segments[0]}' does not exist in the batch context.",
                )
            segments = [resolved, *segments[1:]]
        if not segments:
            _only(method, "GET")
            return csdl.service_document(ctx)
        head = segments[0]
        if head == "$metadata" and len(segments) == 1:
            _only(method, "GET")
            return csdl.metadata_document(ctx, query)
        if head in ("WhoAmI", "WhoAmI()"):
            _only(method, "GET")
            return actions.who_am_i(ctx)
        if head in ("RetrieveAvailableLanguages", "RetrieveAvailableLanguages()"):
            _only(method, "GET")
            return actions.retrieve_available_languages(ctx)
        if head == "EntityDefinitions" or head.startswith("EntityDefinitions("):
            api = MetadataApi(ctx)
            if method == "GET":
                return api.get(segments, query)
            if method == "POST":
                return api.post(segments, body)
            if method == "DELETE":
                return api.delete(segments)
            if method == "PUT":
                return api.put(segments, body)
            raise method_not_allowed(
                f"The HTTP method '{method}' is not supported on EntityDefinitions."
            )
        list_action = _LIST_ACTIONS.get(head.removeprefix("Microsoft.Dynamics.CRM."))
        if list_action is not None and len(segments) == 1:
            _only(method, "POST")
            return list_action(ctx, body)
        if head == "RelationshipDefinitions" or head.startswith("RelationshipDefinitions("):
            if method == "GET":
                return MetadataApi(ctx).relationship_definitions(segments, query)
            _only(method, "POST")
            if head != "RelationshipDefinitions":
                raise segment_not_found(head)
            return create_relationship(ctx, body)
        match = _SEGMENT.match(head)
        entity = self.catalog.by_set(match.group(1)) if match else None
        if match is None or entity is None:
            raise segment_not_found(head.split("(")[0])
        if match.group(2) is None:
            return self._collection(ctx, entity, method, segments[1:], query, body)
        record_id, key_body = _address(ctx, entity, match.group(2), creating=method == "PATCH")
        return self._record(ctx, entity, record_id, method, segments[1:], query, body, key_body)

    def _collection(
        self,
        ctx: RequestContext,
        entity: EntityDef,
        method: str,
        rest: list[str],
        query: dict[str, str],
        body: bytes,
    ) -> ApiResponse:
        if not rest:
            if method == "GET":
                if changes.is_tracking_request(ctx, query):
                    return changes.tracked_read(ctx, entity, query)
                return records.list_records(ctx, entity, query)
            if method == "POST":
                return writes.create(ctx, entity, body, query)
            raise method_not_allowed(
                f"The HTTP method '{method}' is not allowed on the collection "
                f"'{entity.entity_set_name}'."
            )
        if rest in (
            ["Microsoft.Dynamics.CRM.CreateMultiple"],
            ["Microsoft.Dynamics.CRM.UpdateMultiple"],
            ["Microsoft.Dynamics.CRM.UpsertMultiple"],
        ):
            _only(method, "POST")
            if rest[0].endswith("CreateMultiple"):
                return bulk.create_multiple(ctx, entity, body)
            if rest[0].endswith("UpsertMultiple"):
                return bulk.upsert_multiple(ctx, entity, body)
            return bulk.update_multiple(ctx, entity, body)
        if rest == ["$count"]:
            _only(method, "GET")
            if "$deltatoken" in query:
                ctx.require(entity, "read")
                total = changes.count_changes(ctx, entity, query["$deltatoken"])
                return ApiResponse(
                    200,
                    [("Content-Type", "text/plain; charset=utf-8"), ("OData-Version", "4.0")],
                    str(total).encode(),
                )
            return records.count_records(ctx, entity, query)
        raise segment_not_found(rest[0])

    def _record(
        self,
        ctx: RequestContext,
        entity: EntityDef,
        record_id: str,
        method: str,
        rest: list[str],
        query: dict[str, str],
        body: bytes,
        key_body: dict[str, Any] | None = None,
    ) -> ApiResponse:
        if not rest:
            if method == "GET":
                return records.retrieve(ctx, entity, record_id, query)
            if method == "PATCH":
                return writes.patch(ctx, entity, record_id, body, query, key_body)
            if method == "DELETE":
                return writes.delete(ctx, entity, record_id)
            raise method_not_allowed(f"The HTTP method '{method}' is not allowed on a record.")
        name = rest[0]
        bare = name[:-2] if name.endswith("()") else name
        if bare == "Microsoft.Dynamics.CRM.QualifyLead" and entity.logical_name == "lead":
            _only(method, "POST")
            return actions.qualify_lead(ctx, record_id, body)
        if (
            bare == "Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
            and entity.logical_name == "systemuser"
        ):
            _only(method, "GET")
            return actions.retrieve_user_privileges(ctx, record_id)
        if (
            bare == "Microsoft.Dynamics.CRM.RetrievePrincipalAttributePrivileges"
            and entity.logical_name == "systemuser"
        ):
            _only(method, "GET")
            return actions.retrieve_attribute_privileges(ctx, record_id)
        if entity.logical_name == "list" and name.split("(")[0] in lists.ASSOCIATIONS:
            if rest[-1] == "$ref" and len(rest) == 2:
                return lists.association_ref(ctx, record_id, name, method, body, query)
            if len(rest) == 1 and "(" not in name:
                _only(method, "GET")
                return lists.members(ctx, record_id, name, query)
            raise segment_not_found("/".join(rest))
        if len(rest) == 1 and relations.is_collection(entity, name, self.catalog):
            _only(method, "GET")
            return relations.related(ctx, entity, record_id, name, query)
        if len(rest) == 2 and rest[1] == "$ref":
            if method == "DELETE":
                return writes.set_reference(ctx, entity, record_id, name, None)
            if method == "PUT":
                return writes.set_reference(ctx, entity, record_id, name, body)
            raise method_not_allowed(f"The HTTP method '{method}' is not allowed on $ref.")
        if len(rest) != 1:
            raise segment_not_found(rest[1])
        if entity.attribute_by_wire_name(name) is None and entity.navigation(name) is None:
            raise segment_not_found(name)
        if method == "GET":
            return records.get_property(ctx, entity, record_id, name)
        if method == "PUT":
            return writes.put_property(ctx, entity, record_id, name, body)
        if method == "DELETE":
            return writes.delete_property(ctx, entity, record_id, name)
        raise method_not_allowed(f"The HTTP method '{method}' is not allowed on a property.")


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise method_not_allowed(f"The HTTP method '{method}' is not allowed here; use {allowed}.")


def _address(
    ctx: RequestContext, entity: EntityDef, key: str, *, creating: bool
) -> tuple[str, dict[str, Any] | None]:
    """The row a key segment names, and for an alternate key the values as a create body.

    An alternate key naming no row is a 404, except for PATCH (upsert), which creates the
    row with a new id and the key values.
    """
    if "=" in key and key.partition("=")[0].strip() != entity.primary_id:
        values = keys.parse_key(entity, key)
        found = keys.find(ctx, entity, values)
        if found is not None:
            return found, keys.as_body(ctx, entity, values)
        if creating:
            return str(uuid.uuid4()), keys.as_body(ctx, entity, values)
        raise not_found(entity.logical_name, key)
    return _record_key(entity, key), None


def _record_key(entity: EntityDef, key: str) -> str:
    """``<guid>`` or ``<primarykey>=<guid>``."""
    value = key
    if "=" in key:
        name, _, value = key.partition("=")
        if name.strip() != entity.primary_id or entity.logical_name in ("systemuser", "team"):
            raise keys.invalid_key(entity)
    record_id = parse_guid(value.strip())
    if record_id is None:
        raise bad_request(
            ODATA_URI_ERROR,
            f"Bad Request - Error in query syntax. '{key}' is not a valid key for "
            f"'{entity.entity_set_name}'.",
        )
    return record_id


def base_url_of(request: Request, version: str) -> str:
    """The service root the client used: scheme, host and ``/api/data/<version>``."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}/api/data/{version}"


def to_starlette(answer: ApiResponse) -> Response:
    """An :class:`ApiResponse` as a Starlette response."""
    response = Response(content=answer.body, status_code=answer.status)
    for name, value in answer.headers:
        response.headers.append(name, value)
    return response


def data_routes(plane: DataPlane) -> list[BaseRoute]:
    """The ``/api/data/v9.x/...`` routes answering through ``plane``."""
    from crmsync.emulator.batch import run_batch

    async def endpoint(request: Request) -> Response:
        version = request.path_params["version"]
        path = request.path_params.get("path", "")
        if not API_VERSION.match(version):
            answer = plane.error_response(segment_not_found(version), details=False)
            return to_starlette(answer)
        user = request.scope.get("state", {}).get("user")
        if not isinstance(user, EmulatorUser):
            answer = plane.error_response(
                EmulatorFault(
                    401,
                    INVALID_AUTH_TICKET,
                    "The request is not authenticated: no user was resolved from its token.",
                ),
                details=False,
            )
            return to_starlette(answer)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        prefer = request.headers.getlist("prefer")
        base = base_url_of(request, version)
        # The work runs in a worker thread so the event loop stays free for the control plane
        # (tokens, throttling answers, admin API) while a large page or batch is built.
        if path == "$batch":
            if request.method != "POST":
                return to_starlette(
                    plane.error_response(
                        method_not_allowed("$batch accepts POST only."), details=False
                    )
                )
            answer = await run_in_threadpool(
                partial(
                    run_batch,
                    plane,
                    user=user,
                    base_url=base,
                    headers=headers,
                    prefer=prefer,
                    body=body,
                )
            )
        else:
            answer = await run_in_threadpool(
                partial(
                    plane.handle,
                    method=request.method,
                    path=path,
                    query_string=request.url.query,
                    headers=headers,
                    prefer=prefer,
                    body=body,
                    user=user,
                    base_url=base,
                )
            )
        return to_starlette(answer)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return [
        Route("/api/data/{version}/{path:path}", endpoint, methods=methods),
        Route("/api/data/{version}", endpoint, methods=methods),  # the service root, no slash
    ]


def create_emulator_app(
    config: EmulatorConfig, db_path: str = ":memory:", *, runtime: EmulatorRuntime | None = None
) -> Starlette:
    """Build the emulator: data plane, control routes, authentication and faults around it.

    ``app.state.storage``, ``app.state.runtime`` and ``app.state.config`` give tests and the
    CLI access to the rows, the mutable runtime and the configuration. Configured users get
    their ``systemuser`` rows on start.
    """
    runtime = runtime or EmulatorRuntime(config)
    catalog = Catalog(builtin_entities(config.change_tracking))
    storage = Storage(db_path, catalog, runtime.clock)
    ensure_users(storage, config)
    ensure_sdk_messages(storage, config.users[0].systemuserid if config.users else _NOBODY)
    plane = DataPlane(config, storage, runtime)
    app = Starlette(
        routes=[*control_routes(config, runtime), *data_routes(plane)],
        middleware=[Middleware(wrap_with_control, config, runtime)],
    )
    app.state.storage = storage
    app.state.runtime = runtime
    app.state.config = config
    return app


def ensure_users(storage: Storage, config: EmulatorConfig) -> None:
    """Insert a ``systemuser`` row for every configured user that has none yet."""
    systemusers = storage.catalog.require("systemuser")
    missing: list[dict[str, Any]] = []
    for user in config.users:
        if storage.exists(systemusers, user.systemuserid):
            continue
        first, _, last = user.fullname.rpartition(" ")
        missing.append(
            {
                "systemuserid": user.systemuserid,
                "firstname": first or None,
                "lastname": last,
                "fullname": user.fullname,
                "domainname": user.upn or f"# {user.fullname}",
                "internalemailaddress": user.upn,
                "applicationid": user.client_id,
                "isdisabled": False,
            }
        )
    if missing:
        creator = config.users[0].systemuserid if config.users else _NOBODY
        storage.insert_many("systemuser", missing, acting_user=creator)
