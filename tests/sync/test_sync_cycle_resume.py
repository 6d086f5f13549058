"""A crashed initial sync resumes where it stopped (B16), and stored links follow the org to
a new address (portable cursors, B17), over real HTTP against the emulator.

The crash is a failure raised from the progress hook after a page was applied, which is what a
killed process leaves behind: the pages applied so far, each committed with the next page's
link. (The SIGKILL variant, with real processes, is in the e2e suite.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select
from sync_harness import Org, engine_client, person_by_crm_id, running_org, serve

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import default_config
from crmsync.emulator.seed import seed_dataset
from crmsync.store.tables import crm_links, delta_cursors, persons
from crmsync.sync.cursors import INITIAL_PHASE, read_cursor, set_cursor
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.reports import Progress

pytestmark = pytest.mark.e2e

LEADS = 45
PAGE = 10


class Crash(Exception):
    """The process stopping after a page was committed."""


@pytest.fixture
def client() -> Iterator[DynamicsClient]:
    with running_org(default_config(), LEADS) as org:
        client = engine_client(org.base, page_size=PAGE)
        yield client
        client.close()


def _crash_after(pages: int) -> Callable[[Progress], None]:
    def hook(event: Progress) -> None:
        if event.pages == pages and not event.done:
            raise Crash

    return hook


def _linked_leads(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        links = conn.execute(
            select(func.count(), func.count(func.distinct(crm_links.c.crm_id))).where(
                crm_links.c.entity == "lead"
            )
        ).one()
        people = conn.execute(select(func.count()).select_from(persons)).scalar_one()
    assert links[0] == links[1] == people  # no record twice, no person without a link
    return int(links[0]), int(people)


def test_initial_read_resumes_after_the_last_committed_page(
    migrated_engine: Engine, client: DynamicsClient
) -> None:
    """B16: after a crash on page 3 of 5 the next cycle reads only the pages not yet applied,
    and every lead ends linked exactly once."""
    crashing = SyncCycle(migrated_engine, client, entities=("lead",), progress=_crash_after(3))
    with pytest.raises(Crash):
        crashing.run()
    with migrated_engine.connect() as conn:
        stored = read_cursor(conn, "lead")
    assert stored is not None and stored.phase == INITIAL_PHASE
    assert _linked_leads(migrated_engine) == (3 * PAGE, 3 * PAGE)

    report = SyncCycle(migrated_engine, client, entities=("lead",)).run()
    (lead,) = report.entities
    assert lead.mode == "initial" and lead.note == "initial read resumed where it stopped"
    assert lead.pages == math.ceil(LEADS / PAGE) - 3
    assert lead.created == LEADS - 3 * PAGE
    assert _linked_leads(migrated_engine) == (LEADS, LEADS)
    with migrated_engine.connect() as conn:
        stored = read_cursor(conn, "lead")
    assert stored is not None and stored.initial_done

    again = SyncCycle(migrated_engine, client, entities=("lead",)).run()
    assert [(e.mode, e.records) for e in again.entities] == [("delta", 0)]


def test_a_refused_page_link_restarts_the_initial_read_and_says_so(
    migrated_engine: Engine, client: DynamicsClient
) -> None:
    """B16: a stored page link Dynamics refuses (here: a damaged paging cookie) starts the
    initial read again; the report says so and nothing is duplicated."""
    crashing = SyncCycle(migrated_engine, client, entities=("lead",), progress=_crash_after(2))
    with pytest.raises(Crash):
        crashing.run()
    with migrated_engine.begin() as conn:
        stored = read_cursor(conn, "lead")
        assert stored is not None
        damaged = stored.link.split("$skiptoken=")[0] + "$skiptoken=not-a-cookie"
        set_cursor(conn, "lead", damaged, phase=INITIAL_PHASE)

    report = SyncCycle(migrated_engine, client, entities=("lead",)).run()
    (lead,) = report.entities
    assert lead.mode == "initial" and lead.error is None
    assert lead.note is not None and "started again" in lead.note
    assert lead.pages == math.ceil(LEADS / PAGE)
    assert lead.created == LEADS - 2 * PAGE and lead.updated == 0
    assert _linked_leads(migrated_engine) == (LEADS, LEADS)
    with migrated_engine.connect() as conn:
        phases = conn.execute(select(delta_cursors.c.phase)).scalars().all()
    assert phases == ["delta"]


def test_a_moved_org_address_is_followed_by_the_next_cycle(migrated_engine: Engine) -> None:
    """Portable cursors (B17): the same org answers on a new address and the old one is gone;
    the next cycle reads the org's changes at the configured address."""
    config = default_config()
    app = create_emulator_app(config)
    seed_dataset(app.state.storage, 12, 5)
    try:
        with serve(app) as old:
            client = engine_client(old, page_size=PAGE)
            try:
                SyncCycle(migrated_engine, client, entities=("lead",)).run()
            finally:
                client.close()
        with serve(app) as moved:
            assert moved != old
            alex = Org(app, moved, config).alex()
            lead_id = alex.first_ids("leads", 1)[0]
            alex.patch("leads", lead_id, {"jobtitle": "Moved org"}).raise_for_status()
            client = engine_client(moved, page_size=PAGE)
            try:
                report = SyncCycle(migrated_engine, client, entities=("lead",)).run()
            finally:
                client.close()
    finally:
        app.state.storage.close()
    (lead,) = report.entities
    assert (lead.mode, lead.error, lead.records, lead.updated) == ("delta", None, 1, 1)
    assert person_by_crm_id(migrated_engine, "lead", lead_id)["title"] == "Moved org"


def test_a_page_link_of_another_field_selection_restarts_the_initial_read(
    migrated_engine: Engine, client: DynamicsClient
) -> None:
    """B16 with B9: a stored page link that selects other columns than the current field
    selection (it changed while the read was stopped) is not resumed — the rest of its records
    would miss the new fields — but the initial read starts again, and says why."""
    crashing = SyncCycle(migrated_engine, client, entities=("lead",), progress=_crash_after(2))
    with pytest.raises(Crash):
        crashing.run()
    with migrated_engine.begin() as conn:
        stored = read_cursor(conn, "lead")
        assert stored is not None and "jobtitle," in stored.link
        set_cursor(conn, "lead", stored.link.replace("jobtitle,", ""), phase=INITIAL_PHASE)

    report = SyncCycle(migrated_engine, client, entities=("lead",)).run()
    (lead,) = report.entities
    assert lead.note is not None and "field selection changed" in lead.note
    assert lead.pages == math.ceil(LEADS / PAGE) and lead.error is None
    assert _linked_leads(migrated_engine) == (LEADS, LEADS)
