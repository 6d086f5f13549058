"""``crmsync demo``: the whole product on one machine, in one command.

Everything lives in ``.demo/`` under the working directory. The bundled Dataverse emulator
serves a seeded Dynamics org (``.demo/dynamics.db``) from inside this process; a SQLite
marketing database (``.demo/crmsync.db``) is migrated, a few hundred realistic persons and a
static list are loaded on first use, an API client is created, and ``.demo/crmsync.toml``
points crmsync at the emulator. The sync is enabled and the initial sync runs with a progress
bar (B16); then the sync keeps running in the background (B15, a short pause) while the
Marketo-compatible API and the admin UI are served, and ready-to-paste ``curl`` lines show an
edit on each side arriving on the other. The admin UI's user ``admin@example.com`` gets a new
password at every run, printed once with the URL to sign in at. Ctrl-C (or SIGTERM) stops the
API, the sync and the emulator.

Running it again reuses both databases as they are and replaces the demo API client.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBar
from sqlalchemy import Engine

from crmsync.cli import settings_from
from crmsync.cli.demo_campaign import ensure_demo_campaign
from crmsync.cli.demo_guide import GuideInput, find_demo_lead, guide_text
from crmsync.cli.demo_org import DemoOrg, running_org, write_demo_config
from crmsync.cli.demo_people import DEMO_SEED, demo_persons
from crmsync.cli.serve import run_server
from crmsync.dynamics.factory import build_client
from crmsync.errors import ConfigurationError, CrmsyncError, InputError
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService
from crmsync.settings import Secret, Settings, load_settings
from crmsync.store.db import open_database, upgrade_database
from crmsync.sync.campaign_push import start_campaign_runner
from crmsync.sync.reports import PUSH_ENTITY, CycleReport, Progress
from crmsync.sync.runner import SyncRunner, set_enabled
from crmsync.web.admin.users import AdminUserStore, generate_password
from crmsync.web.app import create_app
from crmsync.web.clients import ApiClientStore, CreatedClient

__all__ = ["DEMO_SEED", "DemoSetup", "demo", "demo_persons", "prepare_demo"]

DEMO_DIRECTORY = ".demo"
DEMO_CLIENT_NAME = "demo"
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_LIST_NAME = "Demo newsletter"
ORG_DATABASE = "dynamics.db"
BATCH = 300

console = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What ``prepare_demo`` made: where the data is and how to call the API."""

    database_url: str
    persons: int
    list_id: int
    client: CreatedClient
    admin_password: Secret  # of DEMO_ADMIN_EMAIL, new at every run, printed once


def _load_persons(engine: Engine, count: int) -> list[int]:
    service = PersonService(engine)
    ids: list[int] = []
    records = demo_persons(count)
    for start in range(0, len(records), BATCH):
        outcomes = service.sync(
            records[start : start + BATCH],
            action="createOrUpdate",
            lookup_field="email",
            source="crmsync demo",
        )
        ids.extend(outcome.id for outcome in outcomes if outcome.id is not None)
    return ids


def _existing_list(lists: ListService) -> int | None:
    found, _ = lists.query(names=[DEMO_LIST_NAME])
    if not found:
        return None
    raw_id = found[0]["id"]
    assert isinstance(raw_id, int)
    return raw_id


def _load_once(engine: Engine, count: int) -> tuple[int, int]:
    """Load the persons and the list on first use; a rerun keeps what is there (and any edits)."""
    lists = ListService(engine)
    existing = _existing_list(lists)
    if existing is not None:
        return 0, existing
    ids = _load_persons(engine, count)
    try:
        list_id = lists.create(DEMO_LIST_NAME, "Persons who asked for the newsletter")
    except InputError:  # created meanwhile by another run
        found = _existing_list(lists)
        if found is None:
            raise
        list_id = found
    lists.add_members(list_id, ids[::7][:BATCH], source="crmsync demo")
    return len(ids), list_id


def prepare_demo(directory: Path, count: int) -> DemoSetup:
    """Migrate the demo database in ``directory``, load the data once, make a fresh API client."""
    directory.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(directory / 'crmsync.db').resolve()}"
    upgrade_database(database_url)
    engine = open_database(database_url)
    try:
        loaded, list_id = _load_once(engine, count)
        ensure_demo_campaign(engine)  # after loading: the loaded persons do not trigger it
        clients = ApiClientStore(engine)
        for client in clients.list():
            if client.name == DEMO_CLIENT_NAME and client.active:
                clients.revoke(client.client_id)
        created = clients.create(DEMO_CLIENT_NAME)
        admin_password = _demo_admin(engine)
    finally:
        engine.dispose()
    return DemoSetup(database_url, loaded, list_id, created, admin_password)


def _demo_admin(engine: Engine) -> Secret:
    """The demo's admin-UI user, with a new password at every run (shown once)."""
    users = AdminUserStore(engine)
    password = generate_password()
    existing = users.by_email(DEMO_ADMIN_EMAIL)
    if existing is None:
        users.create(DEMO_ADMIN_EMAIL, password, "admin", actor="crmsync demo")
    else:
        users.set_password(existing.id, password, actor="crmsync demo")
        if existing.disabled_at is not None:
            users.enable(existing.id, actor="crmsync demo")
    return Secret(password)


@contextmanager
def _seed_bar(plan: dict[str, int]) -> Iterator[Callable[[str, int], None]]:
    """A progress bar per table while a new org is seeded."""
    with ProgressBar(
        TextColumn("seeding Dynamics {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=_err,
        transient=True,
    ) as bar:
        tasks = {table: bar.add_task(table, total=total) for table, total in plan.items()}

        def advance(table: str, done: int) -> None:
            bar.update(tasks[table], completed=done)

        yield advance


class _ProgressRelay:
    """The runner's progress hook, pointed at the bar during the initial sync only."""

    def __init__(self) -> None:
        self.target: Callable[[Progress], None] | None = None

    def __call__(self, event: Progress) -> None:
        if self.target is not None:
            self.target(event)


def _initial_sync(runner: SyncRunner, relay: _ProgressRelay) -> None:
    """Run one whole cycle (the initial sync on a new database) under a progress bar (B16)."""
    with ProgressBar(
        TextColumn("syncing {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def on_progress(event: Progress) -> None:
            if event.mode == "delta" and event.records == 0:
                return  # a rerun: nothing changed for this entity
            if event.entity not in tasks:
                label = "to Dynamics" if event.entity == PUSH_ENTITY else event.entity
                tasks[event.entity] = bar.add_task(label, total=event.total)
            bar.update(tasks[event.entity], completed=event.records, total=event.total)

        relay.target = on_progress
        try:
            report = runner.once()
        finally:
            relay.target = None
    _print_cycle(report)
    if report.status == "failed":
        raise ConfigurationError(f"the initial sync failed: {report.error}")


def _print_cycle(report: CycleReport) -> None:
    pulled = ", ".join(f"{e.records} {e.entity}" for e in report.entities if e.records)
    push = report.push
    console.print(
        f"sync cycle {report.status} in {report.duration_seconds:.1f} s: read {pulled or 'nothing'}"
        f" from Dynamics; {push.created} created and {push.updated} updated in Dynamics; "
        f"{report.api_calls} Dynamics requests",
        soft_wrap=True,
    )


def _previous_org_url(directory: Path) -> str | None:
    path = directory / "crmsync.toml"
    if not path.is_file():
        return None
    try:
        return load_settings(path, environ={}).dynamics.url or None
    except ConfigurationError:
        return None


def _emulator_port(asked: int | None, directory: Path) -> int | None:
    """The asked port; else the previous run's (its configured Dynamics URL), else default."""
    if asked is not None:
        return asked
    previous = _previous_org_url(directory)
    port = urlsplit(previous).port if previous else None
    return port if port else None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve_and_sync(
    settings: Settings, runner: SyncRunner, port: int | None, guide: Callable[[str], str]
) -> None:
    """Sync in the background while the API is served in the foreground, until interrupted."""
    stop = threading.Event()

    def on_cycle(report: CycleReport) -> None:
        if report.records_synced or report.status != "ok":
            _print_cycle(report)

    def on_idle(message: str) -> None:
        _err.print(f"sync: {message}")

    def loop() -> None:
        try:
            runner.run(stop, on_cycle=on_cycle, on_idle=on_idle)
        except CrmsyncError as exc:  # fatal (B41): the API stays up, the reason is shown
            _err.print(f"[red]the background sync stopped:[/red] {exc.message}")

    worker = threading.Thread(target=loop, name="demo-sync", daemon=True)
    worker.start()
    app = create_app(settings)

    def announce(url: str) -> None:
        console.print(guide(url), soft_wrap=True, markup=False)

    try:
        if port is not None:
            run_server(app, "127.0.0.1", port, on_ready=announce)
        else:
            try:
                run_server(app, "127.0.0.1", settings.web.port, on_ready=announce)
            except ConfigurationError:
                run_server(app, "127.0.0.1", 0, on_ready=announce)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join(60)
    console.print("crmsync demo stopped")


def demo(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="API port on 127.0.0.1 (default: the configured port, or any free one when "
            "it is taken; 0: any free one).",
        ),
    ] = None,
    emulator_port: Annotated[
        int | None,
        typer.Option(
            "--emulator-port",
            help="Dataverse emulator port (default: the previous run's, else 5580, else any "
            "free one; 0: any free one).",
        ),
    ] = None,
    persons: Annotated[
        int, typer.Option("--persons", min=1, help="Marketing persons to load (first run).")
    ] = 400,
    leads: Annotated[
        int,
        typer.Option(
            "--leads", min=1, help="Dynamics leads to seed (first run), with as many contacts."
        ),
    ] = 1000,
    pause: Annotated[
        float, typer.Option("--pause", min=0.1, help="Seconds between background sync cycles.")
    ] = 5.0,
    no_serve: Annotated[
        bool,
        typer.Option("--no-serve", help="Set up and run the initial sync, print, then exit."),
    ] = False,
) -> None:
    """Dynamics emulator + marketing database + two-way sync + Marketo API, in ./.demo."""
    web = settings_from(ctx).web
    directory = Path.cwd() / DEMO_DIRECTORY
    setup = prepare_demo(directory, persons)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if in_main:
        # Ctrl-C works even when started from a script that ignores SIGINT in the background;
        # SIGTERM stops the demo as cleanly as Ctrl-C does.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with running_org(
            directory / ORG_DATABASE,
            _emulator_port(emulator_port, directory),
            leads,
            seed_progress=_seed_bar,
        ) as org:
            config_path = write_demo_config(directory, setup.database_url, org, pause_seconds=pause)
            # The demo's own file decides everything but the web settings (ports, limits).
            settings = replace(load_settings(config_path, environ={}), web=web)
            _run(settings, setup, org, config_path, port, no_serve)
    except KeyboardInterrupt:
        console.print("crmsync demo stopped")
    finally:
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run(
    settings: Settings,
    setup: DemoSetup,
    org: DemoOrg,
    config_path: Path,
    port: int | None,
    no_serve: bool,
) -> None:
    engine = open_database(settings.database.url)
    try:
        set_enabled(engine, True, actor="crmsync demo")
        with build_client(settings.dynamics) as client:
            relay = _ProgressRelay()
            runner = SyncRunner(engine, client, settings.sync, progress=relay, smtp=settings.smtp)
            _initial_sync(runner, relay)
            campaigns = start_campaign_runner(engine, client, settings.sync)
            lead = find_demo_lead(engine)

            def guide(api_url: str) -> str:
                return guide_text(
                    GuideInput(
                        api_url=api_url,
                        client_id=setup.client.client_id,
                        client_secret=setup.client.client_secret.reveal(),
                        list_id=setup.list_id,
                        org=org,
                        lead=lead,
                        config_path=config_path,
                        pause_seconds=settings.sync.pause_seconds,
                        admin_email=DEMO_ADMIN_EMAIL,
                        admin_password=setup.admin_password.reveal(),
                    )
                )

            try:
                if no_serve:
                    console.print(guide("http://127.0.0.1:<port>"), soft_wrap=True, markup=False)
                    return
                _serve_and_sync(settings, runner, port, guide)
            finally:
                campaigns.stop()
    finally:
        engine.dispose()
