"""Flow steps that change only the marketing database, one function each, looked up by type
(see ``STEP_TYPES`` in :mod:`crmsync.marketing.campaigns.definitions`).

The Microsoft steps need the Dynamics sync, a layer above this package: they live in
:mod:`crmsync.sync.campaign_steps`, and the sync layer hands them to the runner.
"""

from __future__ import annotations

from crmsync.marketing.campaigns.steps.base import (
    ChunkStepFunction,
    StepContext,
    StepFunction,
    StepOutcome,
)
from crmsync.marketing.campaigns.steps.marketing import (
    add_to_list,
    change_data_value,
    delete_person,
    remove_from_list,
    request_campaign,
    wait,
)
from crmsync.marketing.campaigns.steps.marketing_chunks import (
    add_to_lists,
    change_data_values,
    delete_persons,
    remove_from_lists,
    request_campaigns,
)

__all__ = [
    "CHUNK_MARKETING_STEPS",
    "MARKETING_STEPS",
    "StepContext",
    "StepFunction",
    "StepOutcome",
]

MARKETING_STEPS: dict[str, StepFunction] = {
    "change_data_value": change_data_value,
    "add_to_list": add_to_list,
    "remove_from_list": remove_from_list,
    "request_campaign": request_campaign,
    "delete_person": delete_person,
    "wait": wait,
}

CHUNK_MARKETING_STEPS: dict[str, ChunkStepFunction] = {
    "change_data_value": change_data_values,
    "add_to_list": add_to_lists,
    "remove_from_list": remove_from_lists,
    "request_campaign": request_campaigns,
    "delete_person": delete_persons,
}
"""Marketing steps with a chunk form (a batch campaign's many persons at once); Wait has
none, so a flow with a Wait goes person by person."""
