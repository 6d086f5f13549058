"""Which Dynamics column syncs with which marketing field, which way, and how it converts.

The **default mapping** is Marketo's (``marketo-dynamics-docs.md`` Appendix A), restricted to
the columns that exist in the org's metadata and that the sync user can read (B8, B9): a
secured column the sync user cannot read is never mapped, because its nulls would look like
cleared values. Columns "for internal use" (``createdon``, ``ownerid``, a contact's
``parentcustomerid``, an opportunity's ``customerid``, primary ids) and every column of a
one-way entity (account, systemuser, team, opportunity, custom entities; B2) sync from Dynamics
only, as does any column the sync user may not update.

Custom and other non-default columns get a marketing field whose REST name is derived by
:func:`rest_name_for` (B11): the logical name split at underscores, the first part kept and
every later part capitalised, e.g. ``new_favouritecolour`` → ``newFavouritecolour``,
``mkt_lead_grade`` → ``mktLeadGrade``. A lead column and a contact column with the same logical
name therefore share one person field. A derived name that would clash with a standard
marketing field or another mapped field is prefixed with ``crm`` (``company`` →
``crmCompany``). The admin may instead map a selected column onto an existing marketing field
(:class:`ColumnChoice`, ``websiteurl`` → ``website``), and give it a per-field sync rule
(B46); a *Dynamics → marketing only* rule makes the column sync from Dynamics only.

**Engine columns** (:data:`ENGINE_ATTRIBUTES`) are read with every record whatever the admin
selected, because the engine itself decides with them: a contact's ``originatingleadid`` says
whether a qualified lead's person continues (B30), a lead's ``statecode`` whether it was
qualified (then nothing is written to it, B30), an opportunity's ``customerid`` gives its
company and opportunity role (B6). They are part of :attr:`EntityMapping.attributes` (what to
``$select``) but are never written; ``originatingleadid`` is never a marketing field at all,
even when selected.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from crmsync.dynamics.types import AttributeSchema, AttributeType, CrmValue, EntitySchema
from crmsync.errors import InvalidValueError, ValidationFailedError
from crmsync.sync.convert import (
    SUPPORTED_TYPES,
    ColumnConverter,
    DateOnlyConverter,
    LinkConverter,
    ValueConverter,
)
from crmsync.sync.policy import DEFAULT_FIELD_RULE, TWO_WAY_ENTITIES, FieldRule, SyncRule


class Direction(Enum):
    """Which way a field syncs."""

    BOTH = "both"
    CRM_TO_MARKETING = "crm_to_marketing"


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One Dynamics column ``attribute`` of ``entity`` synced with marketing field ``field``."""

    entity: str
    attribute: str
    field: str
    direction: Direction
    converter: ValueConverter
    rule: FieldRule = DEFAULT_FIELD_RULE

    @property
    def two_way(self) -> bool:
        """Whether marketing-side edits of this field are sent to Dynamics."""
        return self.direction is Direction.BOTH


# How a default entry converts: the column's own type, a date-only value, or a link that only
# counts when it points at one table.
_PLAIN = "plain"
_READ = "read"  # internal: Dynamics → marketing only
_DATE = "date"
_LINK_USER = "link:systemuser"
_LINK_ACCOUNT = "link:account"

_PERSON_COMMON: tuple[tuple[str, str, str], ...] = (
    ("createdon", "crmCreatedAt", _READ),
    ("ownerid", "externalSalesPersonId", _LINK_USER),
    ("salutation", "salutation", _PLAIN),
    ("firstname", "firstName", _PLAIN),
    ("middlename", "middleName", _PLAIN),
    ("lastname", "lastName", _PLAIN),
    ("emailaddress1", "email", _PLAIN),
    ("jobtitle", "title", _PLAIN),
    ("telephone1", "phone", _PLAIN),
    ("mobilephone", "mobilePhone", _PLAIN),
    ("fax", "fax", _PLAIN),
    ("address1_line1", "address", _PLAIN),
    ("address1_line2", "microsoftAddress2", _PLAIN),
    ("address1_line3", "microsoftAddress3", _PLAIN),
    ("address1_city", "city", _PLAIN),
    ("address1_stateorprovince", "state", _PLAIN),
    ("address1_country", "country", _PLAIN),
    ("address1_postalcode", "postalCode", _PLAIN),
    ("statecode", "leadStatus", _PLAIN),
    ("statuscode", "statusReason", _PLAIN),
    ("description", "personNotes", _PLAIN),
    ("donotphone", "doNotCall", _PLAIN),
    ("donotbulkemail", "unsubscribed", _PLAIN),
    ("donotemail", "microsoftDoNotEmail", _PLAIN),
    ("donotfax", "microsoftDoNotFax", _PLAIN),
    ("donotsendmm", "microsoftDoNotSendMarketingMaterial", _PLAIN),
    ("telephone2", "microsoftHomePhone", _PLAIN),
    ("preferredcontactmethodcode", "microsoftPreferredMethodOfContact", _PLAIN),
    ("mkt_lastinterestingmomentdate", "lastInterestingMomentDate", _PLAIN),
    ("mkt_lastinterestingmomentdesc", "lastInterestingMomentDesc", _PLAIN),
    ("mkt_leadinterestingmomentsource", "lastInterestingMomentSource", _PLAIN),
    ("mkt_lastinterestingmomenttype", "lastInterestingMomentType", _PLAIN),
    ("mkt_relativescore", "relativeScore", _PLAIN),
    ("mkt_priority", "priority", _PLAIN),
    ("mkt_urgency", "urgency", _PLAIN),
)

DEFAULT_MAPPING: Mapping[str, tuple[tuple[str, str, str], ...]] = MappingProxyType(
    {
        "lead": (
            ("leadid", "crmLeadId", _READ),
            *_PERSON_COMMON,
            ("leadsourcecode", "leadSource", _PLAIN),
            ("leadqualitycode", "rating", _PLAIN),
            ("subject", "microsoftTopic", _PLAIN),
            ("companyname", "company", _PLAIN),
            ("revenue", "annualRevenue", _PLAIN),
        ),
        "contact": (
            ("contactid", "crmContactId", _READ),
            *_PERSON_COMMON,
            ("parentcustomerid", "externalCompanyId", _LINK_ACCOUNT),
            ("mkt_leadscore", "leadScore", _PLAIN),
        ),
        "account": (
            ("accountid", "externalCompanyId", _READ),
            ("name", "company", _PLAIN),
            ("ownerid", "externalSalesPersonId", _LINK_USER),
            ("address1_line1", "billingStreet", _PLAIN),
            ("address1_line2", "microsoftBillingAddress2", _PLAIN),
            ("address1_line3", "microsoftBillingAddress3", _PLAIN),
            ("address1_city", "billingCity", _PLAIN),
            # Not in Appendix A; the company has a billing state and this is its column.
            ("address1_stateorprovince", "billingState", _PLAIN),
            ("address1_country", "billingCountry", _PLAIN),
            ("address1_postalcode", "billingPostalCode", _PLAIN),
            ("telephone1", "mainPhone", _PLAIN),
            ("businesstypecode", "businessType", _PLAIN),
            ("accountnumber", "microsoftAccountNumber", _PLAIN),
            ("statecode", "microsoftCompanyStatus", _PLAIN),
            ("revenue", "annualRevenue", _PLAIN),
            ("description", "companyNotes", _PLAIN),
            ("industrycode", "industry", _PLAIN),
            ("sic", "sicCode", _PLAIN),
            ("websiteurl", "website", _PLAIN),
            ("numberofemployees", "numberOfEmployees", _PLAIN),
        ),
        "opportunity": (
            ("opportunityid", "externalOpportunityId", _READ),
            ("name", "name", _PLAIN),
            ("description", "description", _PLAIN),
            ("statecode", "stage", _PLAIN),
            ("estimatedvalue", "amount", _PLAIN),
            ("closeprobability", "probability", _PLAIN),
            ("actualclosedate", "closeDate", _DATE),
            # B6: an account customer is the company; a contact customer is resolved to the
            # contact's account (and an opportunity role) by the engine, which can look it up.
            ("customerid", "externalCompanyId", _LINK_ACCOUNT),
            ("ownerid", "externalSalesPersonId", _LINK_USER),
        ),
        # Sales users and teams carry the store's sales-person and team fields.
        "systemuser": (
            ("systemuserid", "externalSalesPersonId", _READ),
            ("internalemailaddress", "email", _PLAIN),
            ("firstname", "firstName", _PLAIN),
            ("lastname", "lastName", _PLAIN),
        ),
        "team": (
            ("teamid", "externalTeamId", _READ),
            ("name", "name", _PLAIN),
        ),
    }
)

ENGINE_ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "lead": ("statecode",),
        "contact": ("originatingleadid",),
        "opportunity": ("customerid",),
    }
)
"""Columns the engine reads with every record of an entity, mapped or not (B6, B30)."""

RESERVED_FIELDS = frozenset(
    {name for entries in DEFAULT_MAPPING.values() for _, name, _ in entries}
    | {"id", "createdAt", "updatedAt", "crmType", "crmIsDeleted", "marketoGUID", "leadId"}
    | {"website", "annualRevenue", "numberOfEmployees", "industry", "leadSource", "rating"}
    | {"leadScore", "company", "microsoftTopic", "externalCompanyId", "externalSalesPersonId"}
)
"""Marketing field names a derived custom-field name must not take."""


def rest_name_for(logical_name: str) -> str:
    """The marketing REST name derived from a Dynamics logical name (B11).

    ``new_favouritecolour`` → ``newFavouritecolour``; ``cr5a1_lead_grade`` → ``cr5a1LeadGrade``.
    """
    parts = [part for part in logical_name.strip().lower().split("_") if part]
    if not parts:
        raise InvalidValueError(f"{logical_name!r} is not a column name")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


@dataclass(frozen=True, slots=True)
class FieldRejection:
    """One marketing field whose value Dynamics would reject, with the converter's reason."""

    field: str
    attribute: str
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class CrmWrites:
    """Marketing writes converted field by field (B37, B38).

    ``values`` holds the Dynamics columns that converted, ready to send; ``rejected`` the
    fields that did not, which must stay unsent and out of the baseline so they are retried.
    """

    values: dict[str, CrmValue]
    rejected: tuple[FieldRejection, ...] = ()

    @property
    def rejected_fields(self) -> frozenset[str]:
        """The marketing fields that were not converted."""
        return frozenset(r.field for r in self.rejected)

    @property
    def code(self) -> str | None:
        """The error code of the first rejected field (``None`` when all converted)."""
        return self.rejected[0].code if self.rejected else None

    @property
    def message(self) -> str:
        """A sentence naming every rejected field and why, for the activity log (B37)."""
        if not self.rejected:
            return ""
        names = ", ".join(r.field for r in self.rejected)
        reasons = "; ".join(r.message for r in self.rejected)
        return f"Not sent to Dynamics ({names}): {reasons}"


@dataclass(frozen=True, slots=True)
class EntityMapping:
    """All mapped fields of one Dynamics entity, plus what was left out and why.

    ``missing`` lists selected columns absent from the metadata (deleted in Dynamics, B14);
    ``unreadable`` lists columns the sync user cannot read (B8) or whose type is not synced.
    ``primary_id`` is the entity's key column, whose value a read carries as the record id.
    ``engine_attributes`` are columns read for the engine's own decisions (B6, B30), never
    written.
    """

    entity: str
    two_way: bool
    fields: tuple[FieldMapping, ...]
    missing: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    primary_id: str = ""
    engine_attributes: tuple[str, ...] = ()
    _by_field: Mapping[str, FieldMapping] = field(init=False, repr=False, compare=False)
    _readers: tuple[tuple[str, str, Callable[[CrmValue], object]], ...] = field(
        init=False, repr=False, compare=False
    )
    _columns: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _picked: tuple[tuple[str, ...], Callable[[Mapping[str, CrmValue]], tuple[Any, ...]]] = field(
        init=False, repr=False, compare=False
    )
    _primary_field: str | None = field(init=False, repr=False, compare=False)
    _text_fields: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _converted: tuple[tuple[str, Callable[[CrmValue], object]], ...] = field(
        init=False, repr=False, compare=False
    )
    _field_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _crm_only: frozenset[str] = field(init=False, repr=False, compare=False)
    _rules: Mapping[str, FieldRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_field: dict[str, FieldMapping] = {}
        for mapped in self.fields:
            if mapped.field in by_field:
                raise InvalidValueError(
                    f"{self.entity}: field {mapped.field!r} is mapped from both "
                    f"{by_field[mapped.field].attribute!r} and {mapped.attribute!r}",
                    entity=self.entity,
                )
            by_field[mapped.field] = mapped
        object.__setattr__(self, "_by_field", MappingProxyType(by_field))
        readers = tuple((m.field, m.attribute, _reader_of(m.converter)) for m in self.fields)
        object.__setattr__(self, "_readers", readers)
        object.__setattr__(self, "_columns", tuple((m.field, m.attribute) for m in self.fields))
        # The record id is not among a read's values; every other column is picked in one call.
        primary = next((m.field for m in self.fields if m.attribute == self.primary_id), None)
        object.__setattr__(self, "_primary_field", primary)
        others = [(m.field, m.attribute) for m in self.fields if m.field != primary]
        object.__setattr__(
            self, "_picked", (tuple(n for n, _ in others), _picker([a for _, a in others]))
        )
        text = tuple(m.field for m in self.fields if _reads_text(m.converter))
        object.__setattr__(self, "_text_fields", text)
        converted = tuple((name, read) for name, _, read in readers if name not in text)
        object.__setattr__(self, "_converted", converted)
        object.__setattr__(self, "_field_names", tuple(m.field for m in self.fields))
        crm_only = frozenset(
            m.field for m in self.fields if m.direction is Direction.CRM_TO_MARKETING
        )
        object.__setattr__(self, "_crm_only", crm_only)
        rules = {m.field: m.rule for m in self.fields if not m.rule.is_default}
        object.__setattr__(self, "_rules", MappingProxyType(rules))

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every mapped marketing field, in mapping order (the ``fields`` of a merge)."""
        return self._field_names

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every Dynamics column to ``$select``: the mapped ones, then the engine columns."""
        mapped = self.field_attributes
        return mapped + tuple(a for a in self.engine_attributes if a not in mapped)

    @property
    def wire_dates(self) -> frozenset[str]:
        """The date-time columns whose Dataverse UTC text a read may hand over as it is (a
        read's ``wire_dates``): :meth:`to_marketing` stores such text unchanged, with no
        datetime round trip."""
        return frozenset(
            m.attribute
            for m in self.fields
            if isinstance(m.converter, ColumnConverter) and m.converter.reads_wire_dates
        )

    @property
    def field_attributes(self) -> tuple[str, ...]:
        """Every mapped Dynamics column, in mapping order (the admin's selection, B9)."""
        return tuple(mapped.attribute for mapped in self.fields)

    @property
    def crm_only_fields(self) -> frozenset[str]:
        """Fields that sync from Dynamics only (the merge's ``one_way_fields``)."""
        return self._crm_only

    @property
    def field_rules(self) -> Mapping[str, FieldRule]:
        """The per-field sync rules that differ from the entity's (the merge's ``rules``)."""
        return self._rules

    def for_field(self, name: str) -> FieldMapping:
        """The mapping of marketing field ``name``."""
        try:
            return self._by_field[name]
        except KeyError:
            raise InvalidValueError(
                f"{self.entity}: no mapped field {name!r}", entity=self.entity
            ) from None

    def to_marketing(
        self, values: Mapping[str, CrmValue], record_id: str | None = None
    ) -> dict[str, object]:
        """Convert a Dynamics row's column values to marketing field values.

        Every mapped field is present in the result; a column absent from ``values`` reads as
        empty (Dataverse returns every selected column, nulls included). ``record_id`` fills
        the primary key column (e.g. ``leadid`` → ``crmLeadId``), which a read returns as the
        record's id rather than as a value.
        """
        primary = self._primary_field
        names, pick = self._picked
        result: dict[str, Any] = dict.fromkeys(self._field_names)  # mapping order
        try:
            result.update(zip(names, pick(values), strict=True))
        except KeyError:  # a column left out of the row reads as empty
            get = values.get
            result.update((name, get(attribute)) for name, attribute in self._columns)
        if primary is not None:
            result[primary] = values.get(self.primary_id, record_id)
        get = result.get
        text = self._text_fields
        if text and not _TEXT_CLASSES.issuperset(map(type, map(result.__getitem__, text))):
            # A text column holds something else: convert field by field, in mapping order,
            # so the error names the same field it always does.
            return {name: read(get(name)) for name, _, read in self._readers}
        for name, read in self._converted:
            result[name] = read(result[name])
        return result

    def _writable(self, name: str) -> FieldMapping:
        mapped = self.for_field(name)
        if not mapped.two_way:
            raise InvalidValueError(
                f"{self.entity}: {name!r} syncs from Dynamics only and is never written",
                entity=self.entity,
            )
        return mapped

    def to_crm(self, writes: Mapping[str, object]) -> dict[str, CrmValue]:
        """Convert marketing-keyed writes (a merge's ``crm_writes``) to Dynamics columns.

        Refuses a field that syncs from Dynamics only, so a one-way value can never be sent.
        Raises one :class:`~crmsync.errors.ValidationFailedError` naming every value Dynamics
        would reject (all or nothing; :meth:`convert_writes` converts field by field).
        """
        converted = self.convert_writes(writes)
        if converted.rejected:
            raise ValidationFailedError(converted.message, entity=self.entity, code=converted.code)
        return converted.values

    def convert_writes(self, writes: Mapping[str, object]) -> CrmWrites:
        """Convert marketing-keyed writes field by field (B37, B38).

        A value Dynamics would reject is left out and listed in ``rejected``; every other
        field converts, so one bad value never holds back the rest of the record. A field
        that syncs from Dynamics only raises :class:`~crmsync.errors.InvalidValueError`.
        """
        values: dict[str, CrmValue] = {}
        rejected: list[FieldRejection] = []
        for name, value in writes.items():
            mapped = self._writable(name)
            try:
                values[mapped.attribute] = mapped.converter.to_crm(value)
            except ValidationFailedError as exc:
                rejected.append(FieldRejection(name, mapped.attribute, exc.code, exc.message))
        return CrmWrites(values, tuple(rejected))


_TEXT_CLASSES = frozenset({str, type(None)})
"""The classes a text column's value passes through as is (text or empty)."""


def _picker(keys: list[str]) -> Callable[[Mapping[str, CrmValue]], tuple[Any, ...]]:
    """A function returning the values of ``keys`` in a row as a tuple, in one C call (raises
    ``KeyError`` when one is missing)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    if keys:
        only = keys[0]
        return lambda row: (row[only],)
    return lambda row: ()


def _reads_text(converter: ValueConverter) -> bool:
    return isinstance(converter, ColumnConverter) and converter.reads_text


def _reader_of(converter: ValueConverter) -> Callable[[CrmValue], object]:
    """The cheapest function converting one Dynamics value the way ``converter`` does."""
    if isinstance(converter, ColumnConverter):
        return converter.reader()
    return converter.to_marketing


def readable(attr: AttributeSchema) -> bool:
    """Whether a column can sync: the sync user may read it (field security, B8), Dynamics
    returns it on reads, and its type is one crmsync converts."""
    return attr.can_read and attr.valid_for_read and attr.type in SUPPORTED_TYPES


def _converter(attr: AttributeSchema, kind: str) -> ValueConverter:
    if kind == _DATE:
        return DateOnlyConverter(attr)
    if kind.startswith("link:"):
        return LinkConverter(attr, kind.removeprefix("link:"))
    return ColumnConverter(attr)


@dataclass(frozen=True, slots=True)
class ColumnChoice:
    """What the admin chose for one selected column: an existing marketing ``field`` to map it
    onto (``None``: the default or derived one) and its sync ``rule`` (B46)."""

    attribute: str
    field: str | None = None
    rule: FieldRule = DEFAULT_FIELD_RULE


def _direction(entity_two_way: bool, attr: AttributeSchema, kind: str) -> Direction:
    writable = attr.valid_for_update and attr.can_update and kind == _PLAIN
    # An id alone cannot say which table a multi-table lookup points at, so those only read.
    id_only = attr.type in (
        AttributeType.UNIQUEIDENTIFIER,
        AttributeType.OWNER,
        AttributeType.CUSTOMER,
    ) or (attr.type is AttributeType.LOOKUP and len(attr.targets) != 1)
    if entity_two_way and writable and not id_only:
        return Direction.BOTH
    return Direction.CRM_TO_MARKETING


def _build(
    schema: EntitySchema,
    wanted: Iterable[str],
    choices: Mapping[str, ColumnChoice] = MappingProxyType({}),
) -> EntityMapping:
    """Map the ``wanted`` columns that exist and are readable, as the admin's ``choices``
    (keyed by column) say."""
    entity = schema.logical_name
    two_way = entity in TWO_WAY_ENTITIES
    defaults = {attr: (name, kind) for attr, name, kind in DEFAULT_MAPPING.get(entity, ())}
    taken = {name for name, _ in defaults.values()} | {
        choice.field for choice in choices.values() if choice.field
    }
    fields: list[FieldMapping] = []
    used_fields: dict[str, str] = {}  # marketing field → the column mapped onto it
    missing: list[str] = []
    unreadable: list[str] = []
    engine_only = set(ENGINE_ATTRIBUTES.get(entity, ())) - set(defaults)
    for attribute in wanted:
        if attribute in engine_only:
            continue  # read for the engine's decisions, never a marketing field (B30)
        attr = schema.attributes.get(attribute)
        if attr is None:
            missing.append(attribute)
            continue
        if not readable(attr):
            unreadable.append(attribute)
            continue
        choice = choices.get(attribute)
        if choice is not None and choice.field:
            name = choice.field
            kind = defaults[attribute][1] if attribute in defaults else _PLAIN
        elif attribute in defaults:
            name, kind = defaults[attribute]
        else:
            name, kind = rest_name_for(attribute), _PLAIN
            if name in RESERVED_FIELDS or name in taken or name in used_fields:
                name = "crm" + name[:1].upper() + name[1:]
        if name in used_fields:
            raise InvalidValueError(
                f"{entity}: {used_fields[name]} and {attribute} both map to the marketing "
                f"field {name!r}; map each column onto a field of its own",
                entity=entity,
            )
        used_fields[name] = attribute
        rule = choice.rule if choice is not None else DEFAULT_FIELD_RULE
        direction = _direction(two_way, attr, kind)
        if rule.sync_rule is SyncRule.DYNAMICS_TO_MARKETING:
            direction = Direction.CRM_TO_MARKETING
        fields.append(
            FieldMapping(entity, attribute, name, direction, _converter(attr, kind), rule)
        )
    engine = tuple(
        attribute
        for attribute in ENGINE_ATTRIBUTES.get(entity, ())
        if (attr := schema.attributes.get(attribute)) is not None
        and attr.can_read
        and attr.valid_for_read
    )
    return EntityMapping(
        entity,
        two_way,
        tuple(fields),
        tuple(missing),
        tuple(unreadable),
        schema.primary_id,
        engine,
    )


def default_mapping(schema: EntitySchema) -> EntityMapping:
    """The default mapping of ``schema``'s entity (Appendix A), restricted to readable columns.

    Default columns absent from this org are simply not mapped (they are not reported as
    missing: nobody selected them). An entity with no default mapping (a custom entity) maps
    nothing until columns are selected.
    """
    entries = DEFAULT_MAPPING.get(schema.logical_name, ())
    return _build(schema, [attr for attr, _, _ in entries if attr in schema.attributes])


def default_selection(schema: EntitySchema) -> tuple[str, ...]:
    """The columns selected by default (B9): the default mapping's readable columns."""
    return default_mapping(schema).field_attributes


def mapping_for_selection(
    schema: EntitySchema, selected_attributes: Iterable[str | ColumnChoice]
) -> EntityMapping:
    """The mapping of the admin's selected columns (B9, B11), in selection order.

    Default columns keep their Appendix A field; any other column (custom ones included) gets
    the field :func:`rest_name_for` derives, unless a :class:`ColumnChoice` maps it onto a
    marketing field of the admin's choosing; a choice's rule goes with the field (B46).
    Selected columns that no longer exist are listed in ``missing`` (B14) and unreadable ones
    in ``unreadable`` (B8); neither stops the rest.
    Duplicates in the selection are ignored.
    """
    seen: dict[str, None] = {}
    choices: dict[str, ColumnChoice] = {}
    for selected in selected_attributes:
        if isinstance(selected, ColumnChoice):
            attribute = selected.attribute.strip().lower()
            choices.setdefault(attribute, selected)
        else:
            attribute = selected.strip().lower()
        seen.setdefault(attribute, None)
    return _build(schema, seen, choices)
