"""The Microsoft steps' parameters are checked when a campaign is saved (R80-R83): what is
missing or wrong is named, Due In defaults to 5 days, and a batch campaign refuses them."""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.errors import InvalidValueError
from crmsync.marketing.campaigns.definitions import parse_definition


def _trigger(*flow: dict[str, Any], kind: str = "trigger") -> dict[str, Any]:
    definition: dict[str, Any] = {"name": "x", "type": kind, "flow": list(flow)}
    if kind == "trigger":
        definition["triggers"] = [{"type": "person_created"}]
    return definition


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"type": "change_owner_in_microsoft"}, "'owner' is required"),
        ({"type": "create_task_in_microsoft"}, "'subject' is required"),
        ({"type": "create_task_in_microsoft", "subject": "s" * 201}, "longer than 200"),
        ({"type": "create_task_in_microsoft", "subject": "s", "dueIn": -1}, "'dueIn' must be"),
        ({"type": "create_task_in_microsoft", "subject": "s", "dueIn": "5"}, "'dueIn' must be"),
        ({"type": "create_task_in_microsoft", "subject": "s", "status": "Done"}, "'status'"),
        ({"type": "add_to_microsoft_campaign"}, "'campaign' is required"),
        ({"type": "remove_from_microsoft_campaign", "campaign": " "}, "'campaign' is required"),
    ],
)
def test_bad_microsoft_step_parameters_are_named(step: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        parse_definition(_trigger(step))


@pytest.mark.parametrize(
    "step",
    [
        {"type": "change_owner_in_microsoft", "owner": "u"},
        {"type": "create_task_in_microsoft", "subject": "s"},
        {"type": "add_to_microsoft_campaign", "campaign": "c"},
        {"type": "remove_from_microsoft_campaign", "campaign": "c"},
    ],
)
def test_batch_campaigns_refuse_them_as_marketo_does(step: dict[str, Any]) -> None:
    batch = _trigger(step, kind="batch")
    batch["smartList"] = {"filters": [{"field": "email", "operator": "is_not_empty"}]}
    with pytest.raises(InvalidValueError, match="works in trigger campaigns only, as in Marketo"):
        parse_definition(batch)


def test_task_defaults_due_in_five_days_and_not_started() -> None:
    definition = parse_definition(
        _trigger({"type": "create_task_in_microsoft", "subject": "Call", "dueIn": None})
    )
    (step,) = definition.flow
    assert step.params["dueIn"] == 5 and step.params["status"] == "Not Started"
    in_progress = parse_definition(
        _trigger({"type": "create_task_in_microsoft", "subject": "Call", "status": "in progress"})
    )
    assert in_progress.flow[0].params["status"] == "In Progress"


def test_microsoft_campaign_triggers_are_accepted_with_an_optional_campaign() -> None:
    definition = parse_definition(
        {
            "name": "x",
            "triggers": [
                {"type": "added_to_microsoft_campaign", "campaign": "Spring"},
                {"type": "removed_from_microsoft_campaign"},
                {"type": "person_synced_to_microsoft"},
            ],
            "flow": [{"type": "delete_person"}],
        }
    )
    assert [t.type for t in definition.triggers] == [
        "added_to_microsoft_campaign",
        "removed_from_microsoft_campaign",
        "person_synced_to_microsoft",
    ]
    assert definition.triggers[0].params["campaign"] == "Spring"
