"""``crmsync campaigns``: smart campaigns from the command line.

``create --file F`` saves a definition (TOML or JSON, the shape in ``docs/campaigns.md``);
``update CAMPAIGN --file F`` edits a saved one; ``list`` and ``show`` read them;
``activate`` / ``deactivate`` switch a trigger campaign; ``run`` queues everyone in a batch
campaign's smart list (``--wait`` also runs the flows here); ``schedule`` runs it at a time,
optionally every N days; ``results`` shows what each step did to whom. Campaigns are named
by id or name.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crmsync.cli import database, fail, settings_from
from crmsync.errors import CrmsyncError, InvalidValueError
from crmsync.marketing.campaigns.edits import edit_campaign
from crmsync.marketing.campaigns.schedules import CampaignSchedules
from crmsync.marketing.campaigns.service import CampaignService
from crmsync.marketing.smartlists import SmartListQuery
from crmsync.store.audit import record_audit
from crmsync.sync.campaign_push import campaign_runner

app = typer.Typer(
    help="Smart campaigns: define, edit, switch, run, see results.", no_args_is_help=True
)
_out = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CampaignArgument = Annotated[str, typer.Argument(help="Campaign id or name.")]


def _read_definition(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        raw: object = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = path.suffix[1:] or "JSON"
        raise InvalidValueError(f"{path.name} is not valid {kind}: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidValueError(f"{path.name} must hold one campaign definition (an object)")
    return raw


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="Definition (.toml or .json).")],
    as_json: JsonOption = False,
) -> None:
    """Save a new campaign from a definition file."""
    try:
        with database(settings_from(ctx)) as engine:
            record = CampaignService(engine).create(_read_definition(file))
            with engine.begin() as conn:
                record_audit(conn, "cli", "campaign_created", {"campaign": record.id})
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps(record.as_dict()))
        return
    _out.print(f"campaign {record.id} '{record.definition.name}' created", highlight=False)


@app.command("update")
def update(
    ctx: typer.Context,
    campaign: CampaignArgument,
    file: Annotated[Path, typer.Option("--file", "-f", help="Definition (.toml or .json).")],
    replace: Annotated[
        bool, typer.Option("--replace", help="The file is the whole new definition.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Edit a saved campaign with the parts given in a definition file.

    The file's name, description, qualification, triggers, smartList and flow replace the
    campaign's (with --replace, the file is the whole definition). The type stays, and an
    active campaign stays active: the edit applies to people entering its flow from now on.
    A batch campaign's schedule (runAt, everyDays, until) replaces its runs not started yet;
    an empty schedule drops them, and leaving it out keeps them.
    """
    try:
        with database(settings_from(ctx)) as engine:
            record, changed = edit_campaign(
                engine,
                CampaignService(engine).find(campaign).id,
                _read_definition(file),
                replace=replace,
            )
            if changed:
                with engine.begin() as conn:
                    details = {"campaign": record.id, "changed": changed}
                    record_audit(conn, "cli", "campaign_updated", details)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps({**record.as_dict(), "changed": changed}))
        return
    what = ", ".join(changed) if changed else "nothing (the file matches the saved campaign)"
    _out.print(f"campaign {record.id} '{record.definition.name}' updated: {what}", highlight=False)


@app.command("list")
def list_campaigns(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every campaign: id, name, type, active, steps."""
    try:
        with database(settings_from(ctx)) as engine:
            records, _ = CampaignService(engine).query(limit=10_000)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps([r.as_dict() for r in records]))
        return
    table = Table(title="campaigns")
    for column in ("id", "name", "type", "active", "steps"):
        table.add_column(column)
    for r in records:
        active = "yes" if r.definition.active else ("-" if r.definition.kind == "batch" else "no")
        steps = ", ".join(s.type for s in r.definition.flow)
        table.add_row(str(r.id), r.definition.name, r.definition.kind, active, steps)
    _out.print(table)


@app.command("show")
def show(ctx: typer.Context, campaign: CampaignArgument, as_json: JsonOption = False) -> None:
    """One campaign's definition, with how many persons its smart list holds now."""
    try:
        with database(settings_from(ctx)) as engine:
            record = CampaignService(engine).find(campaign)
            members = SmartListQuery(engine).count(record.definition.smart_list)
            pending = CampaignService(engine).pending(record.id)
    except CrmsyncError as exc:
        raise fail(exc) from None
    shown = {**record.as_dict(), "smartListCount": members, "pendingEvents": pending}
    if not as_json:
        kind = record.definition.kind
        state = (
            ("active" if record.definition.active else "inactive") if kind == "trigger" else kind
        )
        _out.print(
            f"campaign {record.id} '{record.definition.name}' ({kind}, {state}): "
            f"{members} person(s) in its smart list, {pending} event(s) pending",
            highlight=False,
        )
    _out.print_json(json.dumps(shown))


def _switch(ctx: typer.Context, campaign: str, active: bool) -> None:
    try:
        with database(settings_from(ctx)) as engine:
            service = CampaignService(engine)
            record = service.set_active(service.find(campaign).id, active)
            action = "campaign_activated" if active else "campaign_deactivated"
            with engine.begin() as conn:
                record_audit(conn, "cli", action, {"campaign": record.id})
    except CrmsyncError as exc:
        raise fail(exc) from None
    state = "active" if active else "inactive"
    _out.print(f"campaign {record.id} '{record.definition.name}' is {state}", highlight=False)


@app.command("activate")
def activate(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Activate a trigger campaign: its triggers fire from now on."""
    _switch(ctx, campaign, True)


@app.command("deactivate")
def deactivate(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Deactivate a trigger campaign: its triggers stop firing."""
    _switch(ctx, campaign, False)


@app.command("run")
def run(
    ctx: typer.Context,
    campaign: CampaignArgument,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Also run the flows here (without Dynamics pushes)."),
    ] = False,
) -> None:
    """Run a batch campaign now: everyone in its smart list goes through the flow.

    Without ``--wait`` the running ``crmsync sync run`` (or ``serve``) does the work."""
    try:
        with database(settings_from(ctx)) as engine:
            service = CampaignService(engine)
            record = service.find(campaign)
            queued = service.run_batch(record.id)
            with engine.begin() as conn:
                details = {"campaign": record.id, "queued": queued}
                record_audit(conn, "cli", "campaign_run", details)
            handled = campaign_runner(engine).run_pending() if wait else 0
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(f"campaign {record.id}: {queued} person(s) queued", highlight=False)
    if wait:
        _out.print(f"{handled} event(s) run; see 'crmsync campaigns results {record.id}'")


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValueError(f"{option} must be a date-time such as 2027-01-04T08:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    campaign: CampaignArgument,
    at: Annotated[
        str | None, typer.Option("--at", help="When (ISO date-time, UTC unless given).")
    ] = None,
    every_days: Annotated[
        int | None, typer.Option("--every-days", help="Recur every N days.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last recurrence.")] = None,
) -> None:
    """Run a batch campaign at a time (at the earliest in five minutes), optionally recurring.

    The running ``crmsync sync run`` (or ``serve``) starts each run exactly once."""
    try:
        run_at, last = _when(at, "--at"), _when(until, "--until")
        with database(settings_from(ctx)) as engine:
            record = CampaignService(engine).find(campaign)
            CampaignSchedules(engine).schedule(
                record.id, run_at=run_at, every_days=every_days, until=last
            )
            with engine.begin() as conn:
                details = {"campaign": record.id, "runAt": at, "everyDays": every_days}
                record_audit(conn, "cli", "campaign_scheduled", {**details, "until": until})
    except CrmsyncError as exc:
        raise fail(exc) from None
    repeat = f", then every {every_days} day(s)" if every_days else ""
    _out.print(
        f"campaign {record.id} '{record.definition.name}' scheduled{repeat}", highlight=False
    )


@app.command("results")
def results(
    ctx: typer.Context,
    campaign: CampaignArgument,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """What each step did to each person, newest first."""
    try:
        with database(settings_from(ctx)) as engine:
            service = CampaignService(engine)
            rows = service.results(service.find(campaign).id, limit=limit)
    except CrmsyncError as exc:
        raise fail(exc) from None
    if as_json:
        _out.print_json(json.dumps(rows))
        return
    table = Table(title="campaign results")
    for column in ("at", "person", "step", "type", "status", "message"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["at"]),
            str(r["personId"]),
            str(r["step"]),
            str(r["stepType"]),
            str(r["status"]),
            str(r["message"]),
        )
    _out.print(table)
