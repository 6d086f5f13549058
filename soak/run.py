"""Run the soak: ``python -m soak.run [--seed S] [--operations N] [--kills K] [--quick] ...``.

For each database (SQLite always; PostgreSQL when ``--postgres URL`` or
``CRMSYNC_TEST_POSTGRES_URL`` gives one, in a schema of its own) it starts an emulator,
``crmsync serve`` and the sync processes (two racing for the lease on PostgreSQL), runs the
seeded workload with faults and kills, brings both sides to quiescence and checks them against
the model. It prints one summary line per database and writes a JSON report; the exit code is
1 when anything did not match (the first mismatches are explained), else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from crmsync.store.db import open_database
from crmsync.store.tables import campaign_events, crm_links, sync_history, sync_outbox
from soak.check import CheckResult, Facts, Mismatch, Observed, compare, observe
from soak.model import Pair, Write
from soak.processes import Emulator, MarketingServer, SoakError, SyncProcesses, Workdir
from soak.sides import DynamicsSide, MarketingSide
from soak.workload import Workload, prepare, seed_pairs

POSTGRES_ENV = "CRMSYNC_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Options:
    """How big a soak to run."""

    seed: int
    operations: int
    kills: int
    leads: int
    fault_every: int


@dataclass
class Outcome:
    """One database's soak: the summary figures, the check, the report entry."""

    label: str
    summary: str
    check: CheckResult
    report: dict[str, Any]
    pairs: list[Pair]
    seen: Observed

    @property
    def passed(self) -> bool:
        """Whether everything matched."""
        return not self.check.mismatches


def postgres_schema_url(base: str) -> str:
    """A new, empty schema in the database of ``base``; the URL selects it."""
    url = make_url(base).set(drivername="postgresql+psycopg")
    name = f"crmsync_soak_{secrets.token_hex(5)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    finally:
        admin.dispose()
    return url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
        hide_password=False
    )


def _cycle_quiet(report: dict[str, Any]) -> bool:
    if report.get("status") != "ok":
        return False
    moved = 0
    for entity in report.get("entities", []):
        moved += sum(int(entity.get(k) or 0) for k in ("created", "updated", "deleted", "failed"))
    push = report.get("push") or {}
    moved += sum(int(push.get(k) or 0) for k in ("created", "updated", "deferred"))
    return moved == 0


def quiesce(work: Workdir, least: int = 2) -> list[dict[str, Any]]:
    """Run ``sync once`` until a cycle moves nothing (at least ``least`` cycles, at most 10);
    return the reports."""
    reports = []
    for _ in range(10):
        done = work.cli("sync", "once", "--json", check=False)
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            report = {"status": "unreadable", "stderr": done.stderr[-2000:]}
        reports.append(report)
        settled = report.get("status") == "ok" if least == 1 else _cycle_quiet(report)
        if len(reports) >= least and settled:
            break
    return reports


def _count(work: Workdir) -> dict[str, int]:
    engine = open_database(work.database_url)
    try:
        with engine.connect() as conn:
            collisions = conn.execute(
                select(func.count())
                .select_from(sync_history)
                .where(sync_history.c.kind == "collision")
            ).scalar_one()
            cycles = conn.execute(
                select(func.count()).select_from(sync_history).where(sync_history.c.kind == "cycle")
            ).scalar_one()
            outbox = conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one()
    finally:
        engine.dispose()
    return {"collisions": int(collisions), "cycles": int(cycles), "outbox": int(outbox)}


def _pending_events(work: Workdir) -> int:
    engine = open_database(work.database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(campaign_events)
                    .where(campaign_events.c.processed_at.is_(None))
                ).scalar_one()
            )
    finally:
        engine.dispose()


def drain_campaigns(work: Workdir, seconds: float = 180.0) -> int:
    """Wait while the running sync processes' campaign runners work off the pending trigger
    events (``sync once`` does not run campaigns); return how many are left."""
    deadline = time.monotonic() + seconds
    left = _pending_events(work)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _pending_events(work)
    return left


def _links(work: Workdir) -> dict[tuple[str, str], int]:
    engine = open_database(work.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(crm_links.c.entity, crm_links.c.crm_id, crm_links.c.local_id).where(
                    crm_links.c.local_kind == "person"
                )
            ).all()
    finally:
        engine.dispose()
    return {(str(e), str(c)): int(p) for e, c, p in rows}


def run_one(
    options: Options, label: str, database_url: str | None, root: Path, progress: int = 0
) -> Outcome:
    """The soak on one database (``None``: a new SQLite file under ``root``)."""
    started = time.monotonic()
    rng = random.Random(f"{options.seed}-{label}")
    base = root / label
    base.mkdir(parents=True, exist_ok=True)
    emulator = Emulator.start(base, options.leads, options.seed)
    url = database_url or f"sqlite:///{base / 'crmsync.db'}"
    work = Workdir.create(base, url, emulator.details)
    dynamics = DynamicsSide(emulator.details)
    server: MarketingServer | None = None
    sync = SyncProcesses(work, 2 if url.startswith("postgresql") else 1)
    marketing: MarketingSide | None = None
    try:
        work.cli("db", "upgrade")
        prepare(work, dynamics)
        work.cli("sync", "enable")
        initial = quiesce(work, least=1)
        server = MarketingServer.start(work)
        marketing = MarketingSide(server.url, server.client_id, server.client_secret)
        pairs = seed_pairs(dynamics, _links(work))
        workload = Workload(rng, pairs, dynamics, marketing, work, sync)
        kill_at = set(
            rng.sample(range(1, options.operations), min(options.kills, options.operations - 1))
        )
        drop_at = options.operations * 3 // 5  # the custom column goes, part-way through
        sync.start()
        for index in range(options.operations):
            if index % options.fault_every == 0:
                workload.fault()
            if index % 100 == 0:
                # The workload's own traffic must not starve the sync of its request quota.
                dynamics.admin("POST", "reset-limits")
            if progress and index and index % progress == 0:
                done = sum(workload.stats.kills.values())
                print(f"soak {label}: {index} operations, {done} kills", flush=True)
            if index == drop_at:
                workload.drop_column()
            workload.step(index)
            if index in kill_at:
                workload.kill()
        workload.clear_faults()
        if workload.sync_disabled_until is not None:
            work.cli("sync", "enable")
        events_left = drain_campaigns(work)
        sync.stop()
        final = quiesce(work)
        stats = workload.stats
        facts = Facts(stats.column_dropped_at is not None, frozenset(stats.saved_after_drop))
        seen = observe(work, dynamics, facts.column_dropped)
        check = compare(pairs, seen, facts)
        counts = _count(work)
        if events_left:
            check.mismatches.append(
                Mismatch("missing", -1, f"{events_left} campaign events never ran")
            )
        if counts["outbox"]:
            check.mismatches.append(
                Mismatch("lost", -1, f"{counts['outbox']} changes still queued after quiescence")
            )
        ops = sum(stats.operations.values())
        seconds = round(time.monotonic() - started, 1)
        faults = ",".join(f"{k}={v}" for k, v in sorted(stats.faults.items()))
        kills = sum(stats.kills.values())
        summary = (
            f"soak {label}: seed={options.seed} operations={ops} faults[{faults}] "
            f"kills={kills} ({', '.join(f'{k} {v}' for k, v in sorted(stats.kills.items()))}) "
            f"collisions={counts['collisions']} lost={check.count('lost')} "
            f"duplicates={check.count('duplicate')} mismatches={len(check.mismatches)} "
            f"checked_fields={check.checked_fields} seconds={seconds}"
        )
        report = {
            "database": "postgresql" if url.startswith("postgresql") else "sqlite",
            "seed": options.seed,
            "operations": dict(stats.operations),
            "skipped": dict(stats.skipped),
            "refused_marketing_writes": dict(stats.refused),
            "faults": dict(stats.faults),
            "kills": dict(stats.kills),
            "sync_exit_codes": sync.exits,
            "records": len(pairs),
            "facts": {
                "column_dropped": facts.column_dropped,
                "saved_after_drop": sorted(facts.saved_after_drop),
            },
            "engine": counts,
            "dynamics_requests_by_workload": dynamics.requests,
            "emulator": dynamics.admin("GET", "stats"),
            "initial_cycles": initial,
            "final_cycles": final,
            "check": check.as_dict(),
            "model": [dataclasses.asdict(p) for p in pairs],
            "seconds": seconds,
            "summary": summary,
            "workdir": str(base),
        }
        return Outcome(label, summary, check, report, pairs, seen)
    finally:
        sync.stop()
        if marketing is not None:
            marketing.close()
        if server is not None:
            server.stop()
        dynamics.close()
        emulator.stop()


def _pair_from(data: dict[str, Any]) -> Pair:
    writes = {c: [Write(**w) for w in ws] for c, ws in data.pop("writes").items()}
    return Pair(**data, writes=writes)


def recheck(report_path: Path, label: str, workdir: str) -> int:
    """Check a finished run's final state again (its files kept with ``--workdir``).

    The model comes from the report; the emulator is started again on the run's org file and
    the marketing database is the one named in the run's ``crmsync.toml``.
    """
    report = json.loads(report_path.read_text(encoding="utf-8"))["results"][label]
    pairs = [_pair_from(dict(p)) for p in report["model"]]
    base = Path(report.get("workdir") or Path(workdir) / label)
    config = (base / "crmsync.toml").read_text(encoding="utf-8")
    url = config.split('url = "', 1)[1].split('"', 1)[0]
    emulator = Emulator.start(base, 1, 0)
    dynamics = DynamicsSide(emulator.details)
    try:
        work = Workdir.create(base / "recheck", url, emulator.details)
        known = report.get("facts") or {}
        facts = Facts(
            bool(known.get("column_dropped")), frozenset(known.get("saved_after_drop") or [])
        )
        check = compare(pairs, observe(work, dynamics, facts.column_dropped), facts)
    finally:
        dynamics.close()
        emulator.stop()
    print(
        f"soak {label} recheck: lost={check.count('lost')} duplicates={check.count('duplicate')} "
        f"mismatches={len(check.mismatches)} checked_fields={check.checked_fields}"
    )
    for mismatch in check.mismatches[:10]:
        print("  " + mismatch.explain())
    return 1 if check.mismatches else 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run (default: random)")
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--leads", type=int, default=150, help="seeded leads (and contacts)")
    parser.add_argument("--fault-every", type=int, default=100, help="operations per fault")
    parser.add_argument("--quick", action="store_true", help="300 operations, 5 kills")
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_ENV, ""), help="base URL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--out", default="soak/reports/latest.json", help="JSON report path")
    parser.add_argument("--workdir", default="", help="keep the run's files here")
    parser.add_argument(
        "--recheck", default="", metavar="LABEL", help="check the --out report's run again"
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through run_one, which stops every process it started


def main(argv: list[str] | None = None) -> int:
    """Run the soak on each database; print the summaries; 1 when anything mismatched."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if args.recheck:
        return recheck(Path(args.out), args.recheck, args.workdir)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    operations, kills = (300, 5) if args.quick else (args.operations, args.kills)
    leads = min(args.leads, 40) if args.quick else args.leads
    options = Options(seed, operations, kills, leads, max(10, args.fault_every))
    print(f"soak: seed {seed}, {operations} operations, {kills} kills per database", flush=True)
    targets: list[tuple[str, str | None]] = []
    if not args.no_sqlite:
        targets.append(("sqlite", None))
    if args.postgres:
        targets.append(("postgresql", postgres_schema_url(args.postgres)))
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="crmsync-soak-"))
    outcomes: list[Outcome] = []
    for label, url in targets:
        try:
            outcomes.append(run_one(options, label, url, root, progress=500))
        except SoakError as exc:
            print(f"soak {label}: seed={seed} could not run: {exc}", file=sys.stderr)
            return 1
        print(outcomes[-1].summary, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "started": datetime.now(UTC).isoformat(),
                "seed": seed,
                "results": {o.label: o.report for o in outcomes},
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    print(f"soak: report written to {out} (files in {root})")
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print(f"soak {outcome.label} FAILED, seed {seed}; first mismatches:", file=sys.stderr)
        for mismatch in outcome.check.mismatches[:10]:
            print("  " + mismatch.explain(), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
