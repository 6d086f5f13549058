"""Initial schema: marketing tables, sync state, REST API clients (issue 2, B18).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22 02:39:48.450567
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("activity_date", sa.String(length=20), nullable=False),
        sa.Column("primary_value_id", sa.BigInteger(), nullable=True),
        sa.Column("primary_value", sa.String(length=2000), nullable=True),
        sa.Column("field_name", sa.String(length=100), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_activities_activity_date", "activities", ["activity_date"], unique=False)
    op.create_index("ix_activities_person_id", "activities", ["person_id", "id"], unique=False)
    op.create_index("ix_activities_type_id", "activities", ["type_id", "id"], unique=False)

    op.create_table(
        "api_access_tokens",
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_access_tokens")),
    )
    op.create_index(
        "ix_api_access_tokens_client_id", "api_access_tokens", ["client_id"], unique=False
    )

    op.create_table(
        "api_clients",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("client_id", name="uq_api_clients_client_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"], unique=False)

    op.create_table(
        "companies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("external_company_id", sa.String(length=255), nullable=True),
        sa.Column("billing_street", sa.Text(), nullable=True),
        sa.Column("billing_city", sa.String(length=255), nullable=True),
        sa.Column("billing_state", sa.String(length=255), nullable=True),
        sa.Column("billing_country", sa.String(length=255), nullable=True),
        sa.Column("billing_postal_code", sa.String(length=255), nullable=True),
        sa.Column("microsoft_billing_address2", sa.String(length=255), nullable=True),
        sa.Column("microsoft_billing_address3", sa.String(length=255), nullable=True),
        sa.Column("main_phone", sa.String(length=255), nullable=True),
        sa.Column("business_type", sa.String(length=255), nullable=True),
        sa.Column("microsoft_account_number", sa.String(length=255), nullable=True),
        sa.Column("microsoft_company_status", sa.String(length=255), nullable=True),
        sa.Column("annual_revenue", sa.Float(), nullable=True),
        sa.Column("company_notes", sa.Text(), nullable=True),
        sa.Column("industry", sa.String(length=255), nullable=True),
        sa.Column("sic_code", sa.String(length=255), nullable=True),
        sa.Column("website", sa.String(length=255), nullable=True),
        sa.Column("number_of_employees", sa.Integer(), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("external_sales_person_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("external_company_id", name="uq_companies_external_company_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "crm_links",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("local_kind", sa.String(length=32), nullable=False),
        sa.Column("local_id", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_links")),
        sa.UniqueConstraint("entity", "crm_id", name="uq_crm_links_entity_crm_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_crm_links_local", "crm_links", ["local_kind", "local_id"], unique=False)

    op.create_table(
        "delta_cursors",
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_delta_cursors")),
    )
    op.create_table(
        "field_definitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("rest_name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("data_type", sa.String(length=20), nullable=False),
        sa.Column("length", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_definitions")),
        sa.UniqueConstraint("object_type", "name_key", name="uq_field_definitions_object_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "field_selection",
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("attribute", sa.String(length=128), nullable=False),
        sa.Column("marketing_field", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("selected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "attribute", name=op.f("pk_field_selection")),
    )
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"], unique=False)

    op.create_table(
        "opportunity_roles",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("marketo_guid", sa.String(length=36), nullable=True),
        sa.Column("external_opportunity_id", sa.String(length=255), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=255), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_roles")),
        sa.UniqueConstraint(
            "external_opportunity_id", "lead_id", "role", name="uq_opportunity_roles_dedupe"
        ),
        sa.UniqueConstraint("marketo_guid", name="uq_opportunity_roles_marketo_guid"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_opportunity_roles_lead_id", "opportunity_roles", ["lead_id"], unique=False)

    op.create_table(
        "sales_persons",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("external_sales_person_id", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_persons")),
        sa.UniqueConstraint(
            "external_sales_person_id", name="uq_sales_persons_external_sales_person_id"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "static_lists",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("program_name", sa.String(length=255), nullable=True),
        sa.Column("workspace_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_static_lists")),
        sa.UniqueConstraint("name", name="uq_static_lists_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "sync_baselines",
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "crm_id", name=op.f("pk_sync_baselines")),
    )
    op.create_table(
        "sync_errors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("local_kind", sa.String(length=32), nullable=True),
        sa.Column("local_id", sa.BigInteger(), nullable=True),
        sa.Column("crm_id", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_errors")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sync_errors_local", "sync_errors", ["local_kind", "local_id"], unique=False)
    op.create_index("ix_sync_errors_open", "sync_errors", ["resolved_at", "entity"], unique=False)

    op.create_table(
        "sync_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("local_id", sa.BigInteger(), nullable=True),
        sa.Column("crm_id", sa.String(length=64), nullable=True),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_history")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sync_history_kind", "sync_history", ["kind", "started_at"], unique=False)
    op.create_index("ix_sync_history_started_at", "sync_history", ["started_at"], unique=False)

    op.create_table(
        "sync_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_lease")),
    )
    op.create_table(
        "sync_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=10), nullable=False),
        sa.Column("changed_fields", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sync_outbox_person_id", "sync_outbox", ["person_id"], unique=False)

    op.create_table(
        "sync_settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sync_settings")),
    )
    op.create_table(
        "teams",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("external_team_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("external_team_id", name="uq_teams_external_team_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "opportunities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("marketo_guid", sa.String(length=36), nullable=True),
        sa.Column("external_opportunity_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("close_date", sa.String(length=10), nullable=True),
        sa.Column("external_company_id", sa.String(length=255), nullable=True),
        sa.Column("external_sales_person_id", sa.String(length=255), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_opportunities_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunities")),
        sa.UniqueConstraint(
            "external_opportunity_id", name="uq_opportunities_external_opportunity_id"
        ),
        sa.UniqueConstraint("marketo_guid", name="uq_opportunities_marketo_guid"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "persons",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("salutation", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("middle_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=255), nullable=True),
        sa.Column("mobile_phone", sa.String(length=255), nullable=True),
        sa.Column("fax", sa.String(length=255), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=255), nullable=True),
        sa.Column("country", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=255), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("website", sa.String(length=255), nullable=True),
        sa.Column("annual_revenue", sa.Float(), nullable=True),
        sa.Column("number_of_employees", sa.Integer(), nullable=True),
        sa.Column("industry", sa.String(length=255), nullable=True),
        sa.Column("lead_source", sa.String(length=255), nullable=True),
        sa.Column("lead_status", sa.String(length=255), nullable=True),
        sa.Column("status_reason", sa.String(length=255), nullable=True),
        sa.Column("person_notes", sa.Text(), nullable=True),
        sa.Column("do_not_call", sa.Boolean(), nullable=True),
        sa.Column("unsubscribed", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.String(length=255), nullable=True),
        sa.Column("lead_score", sa.Integer(), nullable=True),
        sa.Column("relative_score", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("urgency", sa.Integer(), nullable=True),
        sa.Column("microsoft_address2", sa.String(length=255), nullable=True),
        sa.Column("microsoft_address3", sa.String(length=255), nullable=True),
        sa.Column("microsoft_do_not_email", sa.Boolean(), nullable=True),
        sa.Column("microsoft_do_not_fax", sa.Boolean(), nullable=True),
        sa.Column("microsoft_do_not_send_marketing_material", sa.Boolean(), nullable=True),
        sa.Column("microsoft_home_phone", sa.String(length=255), nullable=True),
        sa.Column("microsoft_preferred_method_of_contact", sa.String(length=255), nullable=True),
        sa.Column("microsoft_topic", sa.String(length=255), nullable=True),
        sa.Column("last_interesting_moment_date", sa.String(length=20), nullable=True),
        sa.Column("last_interesting_moment_desc", sa.String(length=2000), nullable=True),
        sa.Column("last_interesting_moment_source", sa.String(length=255), nullable=True),
        sa.Column("last_interesting_moment_type", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.String(length=20), nullable=True),
        sa.Column("crm_type", sa.String(length=20), nullable=True),
        sa.Column("crm_created_at", sa.String(length=20), nullable=True),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=True),
        sa.Column("crm_lead_id", sa.String(length=64), nullable=True),
        sa.Column("crm_contact_id", sa.String(length=64), nullable=True),
        sa.Column("external_company_id", sa.String(length=255), nullable=True),
        sa.Column("external_sales_person_id", sa.String(length=255), nullable=True),
        sa.Column("date_of_birth", sa.String(length=10), nullable=True),
        sa.Column("department", sa.String(length=255), nullable=True),
        sa.Column("do_not_call_reason", sa.String(length=255), nullable=True),
        sa.Column("lead_role", sa.String(length=255), nullable=True),
        sa.Column("unsubscribed_reason", sa.Text(), nullable=True),
        sa.Column("email_invalid", sa.Boolean(), nullable=True),
        sa.Column("email_invalid_cause", sa.String(length=255), nullable=True),
        sa.Column("lead_partition_id", sa.Integer(), nullable=True),
        sa.Column("email_key", sa.String(length=255), nullable=True),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "sales_person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_persons_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sales_person_id"],
            ["sales_persons.id"],
            name=op.f("fk_persons_sales_person_id_sales_persons"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_persons_company_id", "persons", ["company_id"], unique=False)
    op.create_index("ix_persons_crm_contact_id", "persons", ["crm_contact_id"], unique=False)
    op.create_index("ix_persons_crm_lead_id", "persons", ["crm_lead_id"], unique=False)
    op.create_index("ix_persons_email_key", "persons", ["email_key"], unique=False)
    op.create_index("ix_persons_updated_at", "persons", ["updated_at"], unique=False)

    op.create_table(
        "custom_object_rows",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("crm_is_deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_custom_object_rows_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_custom_object_rows_person_id_persons"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_object_rows")),
        sa.UniqueConstraint("entity", "crm_id", name="uq_custom_object_rows_entity_crm_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "list_members",
        sa.Column("list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("added_at", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["static_lists.id"],
            name=op.f("fk_list_members_list_id_static_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_list_members_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "person_id", name=op.f("pk_list_members")),
    )
    op.create_index("ix_list_members_person_id", "list_members", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_list_members_person_id", table_name="list_members")

    op.drop_table("list_members")
    op.drop_table("custom_object_rows")
    op.drop_index("ix_persons_updated_at", table_name="persons")
    op.drop_index("ix_persons_email_key", table_name="persons")
    op.drop_index("ix_persons_crm_lead_id", table_name="persons")
    op.drop_index("ix_persons_crm_contact_id", table_name="persons")
    op.drop_index("ix_persons_company_id", table_name="persons")

    op.drop_table("persons")
    op.drop_table("opportunities")
    op.drop_table("teams")
    op.drop_table("sync_settings")
    op.drop_index("ix_sync_outbox_person_id", table_name="sync_outbox")

    op.drop_table("sync_outbox")
    op.drop_table("sync_lease")
    op.drop_index("ix_sync_history_started_at", table_name="sync_history")
    op.drop_index("ix_sync_history_kind", table_name="sync_history")

    op.drop_table("sync_history")
    op.drop_index("ix_sync_errors_open", table_name="sync_errors")
    op.drop_index("ix_sync_errors_local", table_name="sync_errors")

    op.drop_table("sync_errors")
    op.drop_table("sync_baselines")
    op.drop_table("static_lists")
    op.drop_table("sales_persons")
    op.drop_index("ix_opportunity_roles_lead_id", table_name="opportunity_roles")

    op.drop_table("opportunity_roles")
    op.drop_index("ix_notifications_created_at", table_name="notifications")

    op.drop_table("notifications")
    op.drop_table("field_selection")
    op.drop_table("field_definitions")
    op.drop_table("delta_cursors")
    op.drop_index("ix_crm_links_local", table_name="crm_links")

    op.drop_table("crm_links")
    op.drop_table("companies")
    op.drop_index("ix_audit_log_occurred_at", table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_table("api_clients")
    op.drop_index("ix_api_access_tokens_client_id", table_name="api_access_tokens")

    op.drop_table("api_access_tokens")
    op.drop_index("ix_activities_type_id", table_name="activities")
    op.drop_index("ix_activities_person_id", table_name="activities")
    op.drop_index("ix_activities_activity_date", table_name="activities")

    op.drop_table("activities")
