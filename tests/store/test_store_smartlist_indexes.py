"""The smart-list filters on state, lead status and created date are answered from an index
on both databases: the count's query plan names the index built for that filter (migration
0015), so a change to how a filter is compiled that the index no longer serves fails here."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select, text

from crmsync.marketing.smartlists import SmartList, compile_smart_list
from crmsync.store.tables import persons


def _plan(engine: Engine, smart_list: SmartList) -> str:
    with engine.begin() as conn:
        statement = (
            select(func.count()).select_from(persons).where(compile_smart_list(conn, smart_list))
        )
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            return "\n".join(str(r[-1]) for r in rows)
        # an empty test table is cheapest to scan; ask whether an index can serve at all
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize(
    ("item", "index"),
    [
        (
            {"field": "state", "operator": "is", "values": ["CA", "ny"]},
            "ix_persons_smartlist_state",
        ),
        (
            {"field": "leadStatus", "operator": "is", "value": "Nurture"},
            "ix_persons_smartlist_lead_status",
        ),
        (
            {"field": "createdAt", "operator": "gt", "value": "2026-06-01"},
            "ix_persons_smartlist_created_at",
        ),
        (
            {"field": "createdAt", "operator": "between", "values": ["2026-01-01", "2026-02-01"]},
            "ix_persons_smartlist_created_at",
        ),
    ],
)
def test_common_filters_are_served_by_their_index(
    migrated_engine: Engine, item: dict[str, object], index: str
) -> None:
    plan = _plan(migrated_engine, SmartList.from_dict({"filters": [item]}))
    assert index in plan, plan
