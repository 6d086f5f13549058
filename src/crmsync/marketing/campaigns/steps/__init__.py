"""Flow steps, one function each, looked up by type (see ``STEP_TYPES`` in
:mod:`crmsync.marketing.campaigns.definitions`)."""

from __future__ import annotations

from crmsync.marketing.campaigns.steps.base import StepContext, StepFunction, StepOutcome
from crmsync.marketing.campaigns.steps.marketing import (
    add_to_list,
    change_data_value,
    delete_person,
    remove_from_list,
    request_campaign,
)
from crmsync.marketing.campaigns.steps.microsoft import sync_person_to_microsoft

__all__ = ["STEPS", "StepContext", "StepFunction", "StepOutcome"]

STEPS: dict[str, StepFunction] = {
    "sync_person_to_microsoft": sync_person_to_microsoft,
    "change_data_value": change_data_value,
    "add_to_list": add_to_list,
    "remove_from_list": remove_from_list,
    "request_campaign": request_campaign,
    "delete_person": delete_person,
}
