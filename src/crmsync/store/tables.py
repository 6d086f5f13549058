"""SQLAlchemy Core tables of crmsync: marketing data, sync state and REST API clients.

Marketing object tables have one column per standard field of :mod:`crmsync.store.field_specs`,
named in snake_case and keyed by the REST name, so ``persons.c.firstName`` is the
``first_name`` column and bulk parameter dictionaries use REST names directly. Custom fields
live in the ``custom`` JSON column.

Changing anything here needs a new Alembic revision in ``crmsync/store/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

from crmsync.store.field_specs import (
    COMPANY_FIELDS,
    OPPORTUNITY_FIELDS,
    OPPORTUNITY_ROLE_FIELDS,
    PERSON_FIELDS,
    SALES_PERSON_FIELDS,
    TEAM_FIELDS,
    FieldSpec,
    column_name,
)
from crmsync.store.folded import folded

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT identity on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store an aware datetime as naive UTC (refusing a naive one)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read a stored datetime back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_utc() -> datetime:
    """The current time, timezone-aware: what every :class:`UtcDateTime` column stores."""
    return datetime.now(UTC)


def _sql_type(spec: FieldSpec) -> TypeEngine[Any]:
    if spec.data_type in {"integer", "score"}:
        return Integer()
    if spec.data_type in {"float", "currency", "percent"}:
        return Float()
    if spec.data_type == "boolean":
        return Boolean()
    if spec.data_type == "text":
        return Text()
    if spec.data_type == "date":
        return String(10)
    if spec.data_type == "datetime":
        return String(20)
    return String(spec.length or 255)


def _field_columns(specs: tuple[FieldSpec, ...], skip: frozenset[str]) -> list[Column[Any]]:
    return [
        Column(
            column_name(spec.rest_name),
            _sql_type(spec),
            key=spec.rest_name,
            default=_PYTHON_DEFAULTS.get(
                spec.rest_name, False if spec.data_type == "boolean" else None
            ),
        )
        for spec in specs
        if spec.rest_name not in skip
    ]


# Inserted when a row leaves the field out (booleans default to false, as in Marketo).
_PYTHON_DEFAULTS: dict[str, object] = {"leadPartitionId": 1}


_ID = frozenset({"id"})

companies = Table(
    "companies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(COMPANY_FIELDS, _ID),
    Column("custom", JSON, nullable=True),
    UniqueConstraint("externalCompanyId", name="uq_companies_external_company_id"),
    sqlite_autoincrement=True,
)

sales_persons = Table(
    "sales_persons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(SALES_PERSON_FIELDS, _ID),
    UniqueConstraint("externalSalesPersonId", name="uq_sales_persons_external_sales_person_id"),
    sqlite_autoincrement=True,
)

teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(TEAM_FIELDS, _ID),
    UniqueConstraint("externalTeamId", name="uq_teams_external_team_id"),
    sqlite_autoincrement=True,
)

persons = Table(
    "persons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(PERSON_FIELDS, _ID),
    # lower-cased, trimmed email: the case-insensitive lookup key (spec marketo-rest §4.4)
    Column("email_key", String(255), nullable=True),
    Column("custom", JSON, nullable=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="SET NULL"), nullable=True),
    Column(
        "sales_person_id",
        Id,
        ForeignKey("sales_persons.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Index("ix_persons_email_key", "email_key"),
    Index("ix_persons_crm_lead_id", "crmLeadId"),
    Index("ix_persons_crm_contact_id", "crmContactId"),
    Index("ix_persons_updated_at", "updatedAt"),
    Index("ix_persons_company_id", "company_id"),
    Index("ix_persons_external_company_id", "externalCompanyId"),
    Index("ix_persons_external_sales_person_id", "externalSalesPersonId"),
    sqlite_autoincrement=True,
)
# The admin search by the start of a name or company, any case (crmsync.web.admin.queries).
Index("ix_persons_first_name_lower", func.lower(persons.c.firstName))
Index("ix_persons_last_name_lower", func.lower(persons.c.lastName))
Index("ix_persons_company_lower", func.lower(persons.c.company))

# Smart-list counts from an index (migration 0012): country compared as smart lists compare
# text (see store/folded.py), then lead score and CRM type. On PostgreSQL the migration also
# INCLUDEs the plain column so an index-only scan can serve the count; that option is left out
# here, since naming it would load the PostgreSQL dialect in every command (`sync status`
# included) on SQLite too.
Index(
    "ix_persons_smartlist_country",
    folded(persons.c.country),
    persons.c.leadScore,
    persons.c.crmType,
)
# ... and for the next most common filters (migration 0015, which INCLUDEs the plain text
# columns on PostgreSQL): state and lead status compared as smart lists compare text, and the
# created date (the updated date has ix_persons_updated_at; company name, on PostgreSQL,
# ix_persons_company_lower).
Index("ix_persons_smartlist_state", folded(persons.c.state))
Index("ix_persons_smartlist_lead_status", folded(persons.c.leadStatus))
Index("ix_persons_smartlist_created_at", persons.c.createdAt)

opportunities = Table(
    "opportunities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(OPPORTUNITY_FIELDS, frozenset()),
    Column("custom", JSON, nullable=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="SET NULL"), nullable=True),
    UniqueConstraint("marketoGUID", name="uq_opportunities_marketo_guid"),
    UniqueConstraint("externalOpportunityId", name="uq_opportunities_external_opportunity_id"),
    sqlite_autoincrement=True,
)

opportunity_roles = Table(
    "opportunity_roles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_field_columns(OPPORTUNITY_ROLE_FIELDS, frozenset()),
    UniqueConstraint("marketoGUID", name="uq_opportunity_roles_marketo_guid"),
    UniqueConstraint("externalOpportunityId", "leadId", "role", name="uq_opportunity_roles_dedupe"),
    Index("ix_opportunity_roles_lead_id", "leadId"),
    sqlite_autoincrement=True,
)

custom_object_rows = Table(
    "custom_object_rows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(128), nullable=False),
    Column("crm_id", String(64), nullable=False),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="SET NULL"), nullable=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="SET NULL"), nullable=True),
    Column("values", JSON, nullable=False),
    Column("crm_is_deleted", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # the id the record's own lookup on its path holds (its parent row): when that row moves
    # to another person or company, the records below it are re-linked in one update
    Column("parent_crm_id", String(64), nullable=True),
    UniqueConstraint("entity", "crm_id", name="uq_custom_object_rows_entity_crm_id"),
    Index("ix_custom_object_rows_person_id", "person_id"),
    Index("ix_custom_object_rows_company_id", "company_id"),
    Index("ix_custom_object_rows_entity_parent", "entity", "parent_crm_id"),
    sqlite_autoincrement=True,
)

# Dynamics tables linked to lead, contact or account (one or two levels deep) that the admin
# enabled as custom entities (B45): their records are read one way into custom_object_rows.
# ``path`` is the chain of lookups from the entity up to lead/contact/account, each hop
# {"entity", "attribute", "target"}; ``fields`` the selected columns, each {"name",
# "displayName", "dataType"} (the Marketo data type the REST API describes it with).
custom_entities = Table(
    "custom_entities",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("entity_set", String(128), nullable=False),
    Column("primary_id", String(128), nullable=False),
    Column("path", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=True),
)

# Custom (non-standard) fields of any object: marketing-only ("local") or created in Dynamics
# and selected for sync ("crm"). Field id = CUSTOM_FIELD_ID_BASE + id.
field_definitions = Table(
    "field_definitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("object_type", String(32), nullable=False),
    Column("rest_name", String(100), nullable=False),
    Column("name_key", String(100), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("data_type", String(20), nullable=False),
    Column("length", Integer, nullable=True),
    Column("origin", String(10), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("object_type", "name_key", name="uq_field_definitions_object_name"),
    sqlite_autoincrement=True,
)

static_lists = Table(
    "static_lists",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("program_name", String(255), nullable=True),
    Column("workspace_name", String(255), nullable=False, default="Default"),
    Column("created_at", String(20), nullable=False),
    Column("updated_at", String(20), nullable=False),
    UniqueConstraint("name", name="uq_static_lists_name"),
    sqlite_autoincrement=True,
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", Id, ForeignKey("static_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", String(20), nullable=False),
    Index("ix_list_members_person_id", "person_id"),
)

# The activity log. person_id deliberately has no foreign key: a Delete Lead activity outlives
# its person (deleted leads, spec marketo-rest §5.5). Dates are wire-format UTC text.
activities = Table(
    "activities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, nullable=False),
    Column("type_id", Integer, nullable=False),
    Column("activity_date", String(20), nullable=False),
    Column("primary_value_id", BigInteger, nullable=True),
    Column("primary_value", String(2000), nullable=True),
    Column("field_name", String(100), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("campaign_id", BigInteger, nullable=True),
    Index("ix_activities_person_id", "person_id", "id"),
    Index("ix_activities_type_id", "type_id", "id"),
    Index("ix_activities_activity_date", "activity_date"),
    sqlite_autoincrement=True,
)

# ---- sync state ---------------------------------------------------------------------------

crm_links = Table(
    "crm_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(128), nullable=False),
    Column("crm_id", String(64), nullable=False),
    Column("local_kind", String(32), nullable=False),
    Column("local_id", BigInteger, nullable=False),
    Column("etag", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("entity", "crm_id", name="uq_crm_links_entity_crm_id"),
    Index("ix_crm_links_local", "local_kind", "local_id"),
    sqlite_autoincrement=True,
)

sync_baselines = Table(
    "sync_baselines",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("crm_id", String(64), primary_key=True),
    Column("values", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

delta_cursors = Table(
    "delta_cursors",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("delta_link", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # "delta": delta_link is a finished read's delta link; "initial": the next page of an
    # unfinished initial read (B16).
    Column("phase", String(16), nullable=False, server_default="delta"),
)

sync_outbox = Table(
    "sync_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", BigInteger, nullable=False),
    Column("operation", String(10), nullable=False),  # create | update | delete
    Column("changed_fields", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("source", String(255), nullable=False),
    Index("ix_sync_outbox_person_id", "person_id"),
    sqlite_autoincrement=True,
)

sync_errors = Table(
    "sync_errors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(128), nullable=False),
    Column("direction", String(16), nullable=False),  # to_crm | to_marketing
    Column("operation", String(16), nullable=False),
    Column("local_kind", String(32), nullable=True),
    Column("local_id", BigInteger, nullable=True),
    Column("crm_id", String(64), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Index("ix_sync_errors_open", "resolved_at", "entity"),
    Index("ix_sync_errors_local", "local_kind", "local_id"),
    # the errors page: open errors newest first, read in index order. The migration makes it
    # partial (only open errors) on both databases; only SQLite's option is named here, as
    # naming PostgreSQL's would load its dialect in every command on SQLite.
    Index(
        "ix_sync_errors_open_recent",
        "last_seen",
        "id",
        sqlite_where=text("resolved_at IS NULL"),
    ),
    # the errors page's groups: counts per code and each code's latest message (partial too)
    Index(
        "ix_sync_errors_open_code",
        "error_code",
        "last_seen",
        sqlite_where=text("resolved_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

# How many open errors there are per entity, direction and Dynamics code ("" for none), kept
# in the transaction that opens or closes them (``sync/error_counts.py``): the errors page and
# the overview read their counts here rather than counting ``sync_errors``.
sync_error_counts = Table(
    "sync_error_counts",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("direction", String(16), primary_key=True),
    Column("error_code", String(64), primary_key=True),
    Column("open_count", Integer, nullable=False),
)

sync_history = Table(
    "sync_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # cycle | initial_sync | quick_sync | collision ...
    Column("entity", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("local_id", BigInteger, nullable=True),
    Column("crm_id", String(64), nullable=True),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("details", JSON, nullable=True),
    Index("ix_sync_history_started_at", "started_at"),
    Index("ix_sync_history_kind", "kind", "started_at"),
    sqlite_autoincrement=True,
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("severity", String(16), nullable=False),  # info | warning | critical
    Column("kind", String(64), nullable=False),
    Column("title", String(255), nullable=False),
    Column("message", Text, nullable=False),
    Column("dedupe_key", String(255), nullable=True),
    Column("read_at", UtcDateTime, nullable=True),
    Column("emailed_at", UtcDateTime, nullable=True),
    Index("ix_notifications_created_at", "created_at"),
    Index("ix_notifications_unread", "read_at", "severity"),
    sqlite_autoincrement=True,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("details", JSON, nullable=True),
    Index("ix_audit_log_occurred_at", "occurred_at"),
    sqlite_autoincrement=True,
)

sync_lease = Table(
    "sync_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

sync_settings = Table(
    "sync_settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", JSON, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

field_selection = Table(
    "field_selection",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("attribute", String(128), primary_key=True),
    Column("marketing_field", String(100), nullable=True),
    Column("status", String(16), nullable=False),  # selected | quick_sync | missing | type_changed
    # B46: entity-default | dynamics-wins | marketing-wins | dynamics-to-marketing | ...
    Column("sync_rule", String(32), nullable=False, server_default="entity-default"),
    Column("never_blank", Boolean, nullable=False, server_default=false()),
    Column("selected_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # the column's Dynamics type when it was selected: a different type later is flagged
    Column("attribute_type", String(32), nullable=True),
)

# B12: a quick sync fills newly selected columns of one table from Dynamics, page by page; the
# position (the last Dynamics id done, ids read in ascending order) is stored with each page.
quick_sync_jobs = Table(
    "quick_sync_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity", String(128), nullable=False),
    Column("attributes", JSON, nullable=False),  # the Dynamics columns it fills
    Column("modified_since", UtcDateTime, nullable=True),
    Column("modified_until", UtcDateTime, nullable=True),
    Column("state", String(16), nullable=False),  # queued | running | done | failed
    Column("records_done", Integer, nullable=False, default=0),
    Column("records_filled", Integer, nullable=False, default=0),
    Column("records_total", Integer, nullable=True),
    Column("position", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_quick_sync_jobs_state", "state"),
)

# Writes to Dynamics that wait for an entity as a whole, with the reason (today: the sync
# user lost a privilege those writes need). Its outbox entries stay queued meanwhile; each
# cycle checks whether the privilege is back. Written only by crmsync.sync.write_waits.
write_waits = Table(
    "write_waits",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("reason", String(32), nullable=False),  # permission_lost
    Column("privileges", String(255), nullable=False),  # e.g. "prvWriteLead prvCreateLead"
    Column("error_code", String(32), nullable=True),
    Column("message", Text, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
)

# ---- REST API clients --------------------------------------------------------------------

api_clients = Table(
    "api_clients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("secret_hash", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("client_id", name="uq_api_clients_client_id"),
    sqlite_autoincrement=True,
)

api_access_tokens = Table(
    "api_access_tokens",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_api_access_tokens_client_id", "client_id"),
)

# ---- smart campaigns ---------------------------------------------------------------------

# A campaign definition: smart list, triggers and flow are JSON documents validated by
# crmsync.marketing.campaigns.definitions.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("kind", String(16), nullable=False),  # trigger | batch
    Column("active", Boolean, nullable=False, default=False),
    Column("qualification", String(16), nullable=False),  # once | every_time | every_n_days
    Column("qualification_days", Integer, nullable=True),  # N of every_n_days
    Column("triggers", JSON, nullable=False),
    Column("smart_list", JSON, nullable=False),
    Column("flow", JSON, nullable=False),
    Column("program_name", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("name", name="uq_campaigns_name"),
    sqlite_autoincrement=True,
)

# The durable trigger outbox: one row per (person, campaign) to run, written in the same
# transaction as the change that caused it, claimed by one runner at a time.
campaign_events = Table(
    "campaign_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("details", JSON, nullable=True),
    Column("source_campaign_id", BigInteger, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(255), nullable=True),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("processed_at", UtcDateTime, nullable=True),
    Column("run_after", UtcDateTime, nullable=True),  # a Wait step paused the flow until then
    Index("ix_campaign_events_pending", "processed_at", "id"),
    sqlite_autoincrement=True,
)

# Who has run through a campaign (qualification rules, smart campaign membership).
campaign_members = Table(
    "campaign_members",
    metadata,
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", BigInteger, primary_key=True),
    Column("first_at", UtcDateTime, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
    Column("last_event_id", BigInteger, nullable=False),
    Column("runs", Integer, nullable=False, default=1),
    Index("ix_campaign_members_person_id", "person_id"),
)

# Scheduled runs of batch campaigns (Schedule Campaign): started once, by one runner.
campaign_schedules = Table(
    "campaign_schedules",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("run_at", UtcDateTime, nullable=False),
    Column("tokens", JSON, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("queued", Integer, nullable=True),
    Column("repeat_every_days", Integer, nullable=True),  # recurring: the next run is queued
    Column("repeat_until", UtcDateTime, nullable=True),
    Index("ix_campaign_schedules_due", "started_at", "run_at"),
    sqlite_autoincrement=True,
)

# One result per person per step per event: written with the step's effect, so a step that
# committed is never run again (a retry, a crash, a second runner).
campaign_results = Table(
    "campaign_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, nullable=False),
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", BigInteger, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # done | skipped | failed | refused
    Column("message", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("event_id", "step_index", name="uq_campaign_results_event_step"),
    Index("ix_campaign_results_campaign", "campaign_id", "id"),
)


# Dynamics campaigns read by Campaign Sync (B47, R44), one way, with the two static marketing
# lists crmsync creates for each when a flow step first adds someone (R82).
microsoft_campaigns = Table(
    "microsoft_campaigns",
    metadata,
    Column("crm_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("statecode", Integer, nullable=True),  # 0 Active, 1 Inactive
    Column("statuscode", Integer, nullable=True),
    Column("leads_list_id", String(64), nullable=True),
    Column("contacts_list_id", String(64), nullable=True),
    Column("synced_at", UtcDateTime, nullable=False),
    Index("ix_microsoft_campaigns_name", "name"),
)

# Who crmsync's Add to Microsoft Campaign step put in a Dynamics campaign's list: Remove from
# Microsoft Campaign removes only these (R83).
microsoft_campaign_members = Table(
    "microsoft_campaign_members",
    metadata,
    Column("crm_campaign_id", String(64), primary_key=True),
    Column("person_id", BigInteger, primary_key=True),
    Column("entity", String(16), nullable=False),  # lead | contact
    Column("crm_member_id", String(64), nullable=False),
    Column("list_id", String(64), nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
    Index("ix_microsoft_campaign_members_person_id", "person_id"),
)


# ---- admin UI users, sessions and personal API tokens ------------------------------------

admin_users = Table(
    "admin_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(255), nullable=False),  # lower-cased, trimmed
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("role", String(16), nullable=False),  # admin | viewer
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("last_login_at", UtcDateTime, nullable=True),
    UniqueConstraint("email", name="uq_admin_users_email"),
    sqlite_autoincrement=True,
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie value
    Column("user_id", BigInteger, nullable=False),
    Column("csrf_key", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Index("ix_admin_sessions_user_id", "user_id"),
)

admin_api_tokens = Table(
    "admin_api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False),  # SHA-256 of the bearer token
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("token_hash", name="uq_admin_api_tokens_token_hash"),
    Index("ix_admin_api_tokens_user_id", "user_id"),
    sqlite_autoincrement=True,
)
