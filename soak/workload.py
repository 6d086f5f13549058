"""The random workload: operations on both sides, faults and kills, all drawn from one seed.

Every operation goes through a public interface (:mod:`soak.sides`, the CLI) and, once it is
committed, is recorded in the model (:mod:`soak.model`). Choices that would make the outcome
depend on timing the soak cannot see are avoided rather than guessed: a record is deleted on
a side only while none of its tracked fields was written, a rejected value goes to a record no
one touches afterwards, and a record created on one side is edited on the other only once the
workload has seen it there.

:func:`prepare` sets up, before the initial sync, the parts of the product the workload drives
beyond plain edits: per-field sync rules (B46) on three of the tracked columns, a custom column
on leads and contacts that :meth:`Workload.drop_column` deletes in Dynamics part-way through
the run (B14), and a trigger campaign whose flow is *Sync Person to Microsoft* and *Change Data
Value* for persons the marketers create with its last name (B31, B32).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from soak.model import (
    CAMPAIGN_FIELD,
    CAMPAIGN_LAST_NAME,
    CAMPAIGN_NAME,
    CRM,
    DROPPED,
    MARKETING,
    RULES,
    TRACKED,
    Pair,
    normal,
)
from soak.processes import SoakError, SyncProcesses, Workdir
from soak.sides import DynamicsSide, MarketingSide

ENTITY_SETS = {"lead": "leads", "contact": "contacts"}
FIELD_OF = dict([*TRACKED, DROPPED])
CAMPAIGN_VALUE = "+1 555 0100 200"  # what the campaign's Change Data Value step sets
FAULT_KINDS = (
    "throttle",
    "server_error",
    "latency",
    "dropped_connection",
    "lost_answer",
    "expired_tokens",
    "expired_delta_tokens",
)
# Relative weights; the CLI ones are rarer since each starts a process.
OPERATIONS: tuple[tuple[str, float], ...] = (
    ("marketing_update", 34),
    ("crm_update", 34),
    ("collision", 12),
    ("marketing_create", 3),
    ("crm_create", 3),
    ("sync_person", 1),
    ("campaign_create", 2),
    ("crm_delete", 2),
    ("marketing_delete", 2),
    ("rejected_value", 1),
    ("qualify", 1),
    ("sync_toggle", 0.4),
    ("fields_select", 0.4),
)


@dataclass
class Stats:
    """What the workload did, for the summary line and the report."""

    operations: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # marketing writes the API refused
    column_dropped_at: int | None = None  # the sequence number of the column's deletion
    saved_after_drop: set[str] = field(default_factory=set)  # selections saved after it


class Workload:
    """Draws and performs operations; keeps the model's pairs up to date."""

    def __init__(
        self,
        rng: random.Random,
        pairs: list[Pair],
        dynamics: DynamicsSide,
        marketing: MarketingSide,
        work: Workdir,
        sync: SyncProcesses,
    ) -> None:
        self.rng = rng
        self.pairs = pairs
        self.dynamics = dynamics
        self.marketing = marketing
        self.work = work
        self.sync = sync
        self.seq = 0
        self.stats = Stats()
        self.sync_disabled_until: int | None = None
        self.tag = rng.randrange(1_000_000)

    # -- helpers ---------------------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _value(self, column: str) -> str | None:
        n = self._next()
        blank = 0.25 if RULES.get(column) == "never-blank" else 0.04
        if self.rng.random() < blank:
            return None  # a cleared field
        if column == "telephone1":
            return f"+1 555 {self.tag % 1000:03d} {n:07d}"
        return f"{column[:5]}-{self.tag}-{n}"

    def _column(self, *, crm: bool) -> str:
        """A tracked column to write; the custom one too while Dynamics has it (marketing
        may still write its field after the delete)."""
        columns = [c for c, _ in TRACKED]
        if not crm or self.stats.column_dropped_at is None:
            columns.append(DROPPED[0])
        return self.rng.choice(columns)

    def _new_pair(self, pair: Pair) -> Pair:
        pair.dropped_at = self.stats.column_dropped_at
        self.pairs.append(pair)
        return pair

    def _email(self) -> str:
        return f"soak-{self.tag}-{self._next()}@soak.example"

    def _pick(
        self, *, crm: bool = False, marketing: bool = False, fresh: bool = False
    ) -> Pair | None:
        chosen = [
            p
            for p in self.pairs
            if p.poison is None
            and (not crm or (p.crm_id is not None and not p.crm_deleted and p.entity is not None))
            and (not marketing or (p.person_id is not None and not p.person_deleted))
            and (not fresh or p.untouched)
        ]
        return self.rng.choice(chosen) if chosen else None

    def _learn(self, pair: Pair) -> None:
        """Find what the other side made of a record the workload created (public APIs only)."""
        if pair.person_id is None and pair.crm_id is not None and not pair.person_deleted:
            found = self.marketing.find_by_email(pair.email, ["id"])
            if len(found) == 1:
                pair.person_id = int(found[0]["id"])
                pair.linked_at = self.seq
        if pair.pending_create and pair.person_id is not None and pair.entity is not None:
            key = "crmLeadId" if pair.entity == "lead" else "crmContactId"
            person = self.marketing.get(pair.person_id, [key])
            # Until the new record is made, the field may still name the deleted one. A campaign's
            # step chooses the id itself, so any id it stored is the new record's, once
            # Dynamics has it (the id is stored before the create is sent).
            if person and person.get(key) and pair.expected_crm_id in (None, str(person[key])):
                crm_id = str(person[key])
                entity_set = ENTITY_SETS[pair.entity]
                there = self.dynamics.call(
                    "admin", "GET", f"{entity_set}({crm_id})?$select=fullname"
                )
                if there.status_code == 200:
                    pair.crm_id, pair.pending_create = crm_id, False
                    pair.linked_at = self.seq

    def _marketing_write(self, pair: Pair, column: str, value: str | None) -> None:
        """Update one field through the REST API; only a write the API says it saved is a
        committed change the model must see kept (a refused one is counted with its reason)."""
        assert pair.person_id is not None
        result = self.marketing.sync(
            "updateOnly", "id", [{"id": pair.person_id, FIELD_OF[column]: value}]
        )[0]
        if result.get("status") != "updated":
            reasons = result.get("reasons") or [{}]
            self.stats.refused[
                f"{reasons[0].get('code', '?')} {reasons[0].get('message', '')}"
            ] += 1
            return
        pair.record(self._next(), MARKETING, column, value)

    def _crm_write(self, pair: Pair, column: str, value: str | None) -> None:
        assert pair.crm_id is not None and pair.entity is not None
        who = str(self.rng.randrange(2))
        self.dynamics.update(who, ENTITY_SETS[pair.entity], pair.crm_id, {column: value})
        pair.record(self._next(), CRM, column, value)

    # -- operations ------------------------------------------------------------------------

    def step(self, index: int) -> None:
        """Perform one drawn operation (or note why it was skipped)."""
        if self.sync_disabled_until is not None and index >= self.sync_disabled_until:
            self.work.cli("sync", "enable")
            self.sync_disabled_until = None
        kinds, weights = zip(*OPERATIONS, strict=True)
        kind = self.rng.choices(kinds, weights)[0]
        done = getattr(self, f"_op_{kind}")()
        if done:
            self.stats.operations[kind] += 1
        else:
            self.stats.skipped[kind] += 1

    def _op_marketing_update(self) -> bool:
        pair = self._pick(marketing=True)
        if pair is None:
            return False
        self._learn(pair)
        column = self._column(crm=False)
        self._marketing_write(pair, column, self._value(column))
        return True

    def _op_crm_update(self) -> bool:
        pair = self._pick()
        if pair is None:
            return False
        self._learn(pair)
        if pair.crm_id is None or pair.crm_deleted or pair.entity is None:
            return False
        column = self._column(crm=True)
        self._crm_write(pair, column, self._value(column))
        return True

    def _op_collision(self) -> bool:
        pair = self._pick(crm=True, marketing=True)
        if pair is None:
            return False
        column = self._column(crm=True)
        first, second = self._value(column), self._value(column)
        if self.rng.random() < 0.5:
            self._marketing_write(pair, column, first)
            self._crm_write(pair, column, second)
        else:
            self._crm_write(pair, column, first)
            self._marketing_write(pair, column, second)
        return True

    def _op_marketing_create(self) -> bool:
        email = self._email()
        values: dict[str, str | None] = {
            c: self._value(c) or f"{c[:5]}-{self.tag}" for c, _ in TRACKED
        }
        record: dict[str, Any] = {"email": email, "lastName": f"Soak {self.tag}"}
        record.update({FIELD_OF[c]: v for c, v in values.items()})
        result = self.marketing.sync("createOnly", "email", [record])[0]
        made = self._new_pair(
            Pair(len(self.pairs), "marketing", email, None, None, int(result["id"]), values)
        )
        made.linked_at = None
        return True

    def _op_campaign_create(self) -> bool:
        """A form fill: a marketer creates a person the trigger campaign picks up, which makes
        a Dynamics lead for it and sets a value (B31, B32)."""
        email = self._email()
        values: dict[str, str | None] = {
            c: self._value(c) or f"{c[:5]}-{self.tag}" for c, _ in TRACKED
        }
        record: dict[str, Any] = {"email": email, "lastName": CAMPAIGN_LAST_NAME}
        record.update({FIELD_OF[c]: v for c, v in values.items()})
        result = self.marketing.sync("createOnly", "email", [record])[0]
        pair = self._new_pair(
            Pair(len(self.pairs), "campaign", email, "lead", None, int(result["id"]), values)
        )
        pair.pending_create, pair.campaign_value, pair.linked_at = True, CAMPAIGN_VALUE, None
        return True

    def _op_crm_create(self) -> bool:
        entity = self.rng.choice(("lead", "contact"))
        email = self._email()
        values: dict[str, str | None] = {
            c: self._value(c) or f"{c[:5]}-{self.tag}" for c, _ in TRACKED
        }
        body: dict[str, Any] = {"emailaddress1": email, "lastname": f"Soak {self.tag}", **values}
        crm_id = self.dynamics.create(str(self.rng.randrange(2)), ENTITY_SETS[entity], body)
        made = self._new_pair(Pair(len(self.pairs), "crm", email, entity, crm_id, None, values))
        made.linked_at = None
        return True

    def _op_sync_person(self) -> bool:
        chosen = [
            p
            for p in self.pairs
            if p.person_id is not None
            and not p.person_deleted
            and p.poison is None
            and not p.pending_create
            and (p.entity is None or p.crm_deleted)
        ]
        if not chosen:
            return False
        pair = self.rng.choice(chosen)
        assert pair.person_id is not None
        entity = self.rng.choice(("lead", "contact"))
        shown = self.work.cli("sync", "person", str(pair.person_id), "--as", entity, "--json")
        (asked,) = json.loads(shown.stdout)
        if not asked["queued"]:
            # The sync has not seen the Dynamics delete yet, so the person still has its
            # record as far as crmsync knows: left alone, as the step promises (B31).
            return True
        if pair.crm_id is not None:
            pair.old_crm_ids.append(pair.crm_id)
        pair.entity, pair.crm_id, pair.crm_deleted, pair.pending_create = entity, None, False, True
        pair.linked_at = None
        pair.expected_crm_id = str(asked["crm_id"])
        return True

    def _op_crm_delete(self) -> bool:
        pair = self._pick(crm=True, marketing=True, fresh=True)
        if pair is None or pair.entity is None or pair.crm_id is None:
            return False
        self.dynamics.delete(ENTITY_SETS[pair.entity], pair.crm_id)
        pair.crm_deleted = True
        return True

    def _op_marketing_delete(self) -> bool:
        pair = self._pick(crm=True, marketing=True, fresh=True)
        if pair is None or pair.person_id is None:
            return False
        self.marketing.delete(pair.person_id)
        pair.person_deleted = True
        return True

    def _op_qualify(self) -> bool:
        """A salesperson qualifies a lead into a contact; the person continues as the contact
        (B30). Only leads nobody edited yet, so the contact starts from the agreed values."""
        chosen = [
            p
            for p in self.pairs
            if p.entity == "lead"
            and p.crm_id is not None
            and p.person_id is not None
            and not (p.crm_deleted or p.person_deleted or p.pending_create)
            and p.poison is None
            and p.untouched
        ]
        if not chosen:
            return False
        pair = self.rng.choice(chosen)
        params = {"CreateAccount": False, "CreateContact": True, "CreateOpportunity": False}
        answer = self.dynamics.call(
            str(self.rng.randrange(2)),
            "POST",
            f"leads({pair.crm_id})/Microsoft.Dynamics.CRM.QualifyLead",
            {**params, "Status": 3},
        )
        if answer.status_code != 200:
            return False  # not an open lead: nothing happened
        (contact,) = [c for c in answer.json()["value"] if "contactid" in c]
        assert pair.crm_id is not None
        pair.old_crm_ids.append(pair.crm_id)
        pair.entity, pair.crm_id = "contact", str(contact["contactid"])
        return True

    def _op_rejected_value(self) -> bool:
        pair = self._pick(crm=True, marketing=True, fresh=True)
        if pair is None or pair.person_id is None:
            return False
        value = f"rejected-{self._next()}-" + "x" * 110  # longer than Dynamics' 100 characters
        self.marketing.sync("updateOnly", "id", [{"id": pair.person_id, "title": value}])
        pair.poison = value
        return True

    def _op_sync_toggle(self) -> bool:
        if self.sync_disabled_until is not None:
            return False
        self.work.cli("sync", "disable")
        self.sync_disabled_until = self.seq + self.rng.randrange(5, 40)
        return True

    def _op_fields_select(self) -> bool:
        entity = self.rng.choice(("lead", "contact"))
        self.work.cli("fields", "select", entity)
        if self.stats.column_dropped_at is not None:
            self.stats.saved_after_drop.add(entity)
        return True

    def drop_column(self) -> None:
        """An administrator deletes the custom column in Dynamics from both tables (B14)."""
        for entity in ENTITY_SETS:
            path = (
                f"EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='{DROPPED[0]}')"
            )
            answer = self.dynamics.call("admin", "DELETE", path)
            if answer.status_code != 204:
                raise SoakError(f"delete of {entity}.{DROPPED[0]}: {answer.status_code}")
        self.stats.column_dropped_at = self._next()
        for pair in self.pairs:
            pair.dropped_at = self.stats.column_dropped_at

    # -- faults and kills ------------------------------------------------------------------

    def fault(self) -> str:
        """Switch to a random fault for the next stretch of operations; return its kind."""
        kind = self.rng.choice(FAULT_KINDS)
        knobs: dict[str, Any] = {}
        if kind == "throttle":
            knobs = {"throttle_burst": self.rng.randrange(3, 30), "throttle_retry_after_seconds": 1}
        elif kind == "server_error":
            knobs = {"error_rate": 0.15, "error_status": self.rng.choice([500, 502, 503, 504])}
        elif kind == "latency":
            knobs = {"latency_ms": self.rng.randrange(5, 60)}
        elif kind == "dropped_connection":
            knobs = {"drop_rate": 0.08}
        elif kind == "lost_answer":
            # Only the sync's $batch writes: applied, then the answer is lost. The workload's
            # own requests are single ones, so it always knows whether its write happened.
            knobs = {"lost_answer_rate": 0.3, "path_contains": "$batch"}
        self.dynamics.admin("PUT", "faults", knobs)
        if kind == "expired_tokens":
            self.dynamics.admin("POST", "expire-tokens")
        elif kind == "expired_delta_tokens":
            self.dynamics.admin("POST", "expire-delta-tokens")
        self.stats.faults[kind] += 1
        return kind

    def kill(self) -> None:
        """Stop one sync process with a random signal (mostly SIGKILL) and start another."""
        roll = self.rng.random()
        kind = "sigkill" if roll < 0.8 else ("sigterm" if roll < 0.9 else "sigint")
        # Let the process get into its cycle first: a kill lands at a random point of it.
        time.sleep(self.rng.random() * 0.5)
        self.sync.kill_one(self.rng.randrange(self.sync.count), kind)
        self.stats.kills[kind] += 1

    def clear_faults(self) -> None:
        """No more faults, and an empty service-protection window."""
        self.dynamics.admin("PUT", "faults", {})
        self.dynamics.admin("POST", "reset-limits")


def prepare(work: Workdir, dynamics: DynamicsSide) -> None:
    """Before the initial sync: the custom column on both tables, the field selections with
    the per-field rules, and the active trigger campaign."""
    column, _ = DROPPED
    for entity in ENTITY_SETS:
        body = {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": column,
            "MaxLength": 100,
            "DisplayName": {"LocalizedLabels": [{"Label": "Soak note", "LanguageCode": 1033}]},
        }
        answer = dynamics.call(
            "admin", "POST", f"EntityDefinitions(LogicalName='{entity}')/Attributes", body
        )
        if answer.status_code != 204:
            raise SoakError(f"new column {entity}.{column}: {answer.status_code} {answer.text}")
        rules = [f"--rule={c}={r}" for c, r in RULES.items()]
        work.cli("fields", "select", entity, "--add", column, *rules)
    definition = {
        "name": CAMPAIGN_NAME,
        "type": "trigger",
        "qualification": "once",
        "active": True,
        "triggers": [{"type": "person_created", "source": "Web service API"}],
        "smartList": {
            "filters": [{"field": "lastName", "operator": "is", "values": [CAMPAIGN_LAST_NAME]}]
        },
        "flow": [
            {"type": "sync_person_to_microsoft", "syncAs": "lead"},
            {"type": "change_data_value", "field": CAMPAIGN_FIELD[1], "value": CAMPAIGN_VALUE},
        ],
    }
    path = work.path / "campaign.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    work.cli("campaigns", "create", "--file", str(path))


def seed_pairs(dynamics: DynamicsSide, links: dict[tuple[str, str], int]) -> list[Pair]:
    """The pairs the initial sync made: each seeded lead and contact with its person."""
    pairs: list[Pair] = []
    columns = [c for c, _ in TRACKED] + ["emailaddress1", DROPPED[0]]
    for entity, entity_set in ENTITY_SETS.items():
        for crm_id, row in sorted(dynamics.read_all(entity_set, columns).items()):
            person_id = links.get((entity, crm_id))
            if person_id is None:
                continue
            initial = {c: normal(row.get(c)) for c in [*(c for c, _ in TRACKED), DROPPED[0]]}
            email = str(row.get("emailaddress1") or "")
            pairs.append(Pair(len(pairs), "seed", email, entity, crm_id, person_id, initial))
    return pairs
