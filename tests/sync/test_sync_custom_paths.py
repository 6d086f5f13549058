"""Which tables are offered as custom entities, on which path (R96, R101, R102)."""

from __future__ import annotations

from crmsync.dynamics.relations import Lookup
from crmsync.sync.custom_paths import nearest_paths


def test_one_level_beats_two_and_contact_beats_lead_and_account() -> None:
    paths = nearest_paths(
        [
            Lookup("contact", "new_project", "new_contactid"),
            Lookup("new_project", "new_visit", "new_projectid"),
            # new_visit also points at an account directly: one level wins
            Lookup("account", "new_visit", "new_accountid"),
            Lookup("lead", "new_ticket", "new_leadid"),
            Lookup("contact", "new_ticket", "new_contactid"),
        ]
    )
    assert paths["new_visit"].describe() == "new_visit.new_accountid → account"
    assert paths["new_visit"].link_kind == "company"
    assert paths["new_ticket"].describe() == "new_ticket.new_contactid → contact"
    assert paths["new_project"].depth == 1


def test_two_levels_deep_at_most_and_never_the_synced_or_list_tables() -> None:
    paths = nearest_paths(
        [
            Lookup("contact", "new_project", "new_contactid"),
            Lookup("new_project", "new_visit", "new_projectid"),
            Lookup("new_visit", "new_note", "new_visitid"),  # three levels: not offered
            Lookup("contact", "listmember", "entityid"),  # R101
            Lookup("account", "opportunity", "parentaccountid"),  # synced already
            Lookup("account", "contact", "parentcustomerid"),
            Lookup("new_project", "new_project", "new_parentid"),  # itself
        ]
    )
    assert set(paths) == {"new_project", "new_visit"}
    assert paths["new_visit"].describe() == (
        "new_visit.new_projectid → new_project.new_contactid → contact"
    )
