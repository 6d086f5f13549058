"""Per-step choices: "if CRM Type is Lead then ... ; default ..." (Marketo's flow step choices).

A step may carry ``choices``: a list of ``{"if": <smart list filter>, "then": {<params>}}``.
For each person the first choice whose filter matches supplies its parameters over the step's
own; when none matches the step's own parameters apply, or with ``"default": "do_nothing"``
the step does nothing for that person. Filters are evaluated in SQL like any smart list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.marketing.smartlists import Filter, SmartList, SmartListQuery

MAX_CHOICES = 20
DO_NOTHING = "do_nothing"
CHOICE_KEYS = frozenset({"choices", "default"})


def choice_filter(raw: object, where: str) -> Filter:
    """The filter of one choice's ``if``; raise :class:`InvalidValueError`."""
    if not isinstance(raw, dict):
        raise InvalidValueError(f"{where}: 'if' must be a filter (field, operator, values)")
    try:
        (parsed,) = SmartList.from_dict({"filters": [raw]}).filters
    except InvalidValueError as exc:
        raise InvalidValueError(f"{where}: {exc.message}") from None
    return parsed


def step_variants(raw: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """Every parameter set the step can run with (for validation): the step's own (unless the
    default is do-nothing) and each choice's. Raises :class:`InvalidValueError`."""
    base = {k: v for k, v in raw.items() if k not in CHOICE_KEYS}
    choices = raw.get("choices")
    default = raw.get("default")
    if default is not None and default != DO_NOTHING:
        raise InvalidValueError(f"{where}: 'default' can only be '{DO_NOTHING}'")
    if choices is None:
        if default is not None:
            raise InvalidValueError(f"{where}: 'default' needs 'choices'")
        return [base]
    if not isinstance(choices, list) or not 0 < len(choices) <= MAX_CHOICES:
        raise InvalidValueError(f"{where}: 'choices' must be a list of 1 to {MAX_CHOICES}")
    variants = [] if default == DO_NOTHING else [base]
    for number, choice in enumerate(choices, start=1):
        here = f"{where}, choice {number}"
        if not isinstance(choice, dict) or not isinstance(choice.get("then"), dict):
            raise InvalidValueError(f"{here}: needs 'if' (a filter) and 'then' (parameters)")
        choice_filter(choice.get("if"), here)
        then = {k: v for k, v in choice["then"].items() if k not in {"type", *CHOICE_KEYS}}
        variants.append({**base, **then})
    return variants


def resolve_params(
    conn: Connection, query: SmartListQuery, params: Mapping[str, Any], person_id: int
) -> dict[str, Any] | None:
    """The parameters the step runs with for ``person_id``; ``None``: do nothing."""
    base = {k: v for k, v in params.items() if k not in CHOICE_KEYS}
    choices = params.get("choices")
    if not choices:
        return base
    for choice in choices:
        chosen = SmartList((choice_filter(choice["if"], "choice"),))
        if query.matching(conn, chosen, [person_id]):
            then = {k: v for k, v in choice["then"].items() if k not in {"type", *CHOICE_KEYS}}
            return {**base, **then}
    return None if params.get("default") == DO_NOTHING else base
