"""What travels in an envelope: one frozen payload type per kind, with its explicit wire form.

An envelope (``sync.envelope``) carries opaque bytes; this module says what they mean. Each
kind has a dataclass with ``encode() -> bytes`` and ``decode(bytes)``; ``decode_message``
picks the class by the envelope's kind. The encoding is JSON, compact, with sorted keys and
UTF-8 text (``ensure_ascii=False``), exactly as nodes have always written it: envelopes
stored in an outbox, an inbox or the quarantine before this module existed decode as they
are, and a node built from this code interoperates with one built before it.

A case travels as ``CaseSnapshot``: an explicit list of fields (``CASE_FIELDS``), not "every
column of the case table". Adding a column to a table therefore does not change the wire;
sending it too is a decision taken here. The personal data (name, ID number, phone) is a
separate part, carried only by the kinds that go along the path between the receiving node
and the owner (``transfer``, ``copy``) and to a self-owning origin's parent (``custody``, sealed
to the origin itself), and there normally *sealed* to the target
(``node.domain.sealed``): the case's ``sealed_applicant`` key holds a box only the target opens,
in place of the three clear fields. Clear fields are still read (from senders before sealing,
and from nodes without a certificate, which cannot be sealed to); which form a node writes is
decided where the envelope is made (``node.app.keyring``), never by a relay.

Decoding is lenient where the past requires it and strict where the meaning requires it:
keys this code does not know are ignored (a newer sender may add some), a field that older
senders did not write gets the value those senders meant (``catalog_issuer``: ""), and a
field the meaning depends on that is missing or of the wrong shape raises ``MessageError``
(the envelope goes to quarantine with that text). Values are carried as they are, not
coerced, so that ``encode(decode(b)) == b`` for every payload this module writes.

Changing the wire is a deliberate, versioned act: ``WIRE_VERSION`` names the current form
(the one ``tests/unit/test_message_encoding.py`` pins byte for byte, a golden value per
kind). Adding, renaming or dropping a field means a new version: decode both forms, write
the new one only once every node of the network reads it, update the golden values, and
say so in the release notes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

from govnet.node.domain.sealed import Sealed, SealError
from govnet.node.domain.statistics import COUNTERS

WIRE_VERSION = 1
T = TypeVar("T")


class MessageError(ValueError):
    """A payload that is not a well-formed message of its kind; the text says what is wrong."""


def dumps(payload: Mapping[str, Any]) -> bytes:
    """The wire's JSON: compact, keys sorted, UTF-8 (Chinese text stays readable)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _loads(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MessageError("not a JSON object")
    return value


def _decoding(what: str, build: Callable[[], Any]) -> Any:
    """Run ``build``; a missing key or a value of the wrong shape becomes a ``MessageError``."""
    try:
        return build()
    except MessageError:
        raise
    except KeyError as exc:
        raise MessageError(f"{what} lacks {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise MessageError(f"{what}: {exc.__class__.__name__}: {exc}") from None


def _built(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` with exactly ``fields`` (all of its fields).

    Cases and events are built on the hot path (every transfer, event and summary applied or
    relayed): a frozen dataclass's ``__init__`` sets its fields one at a time through
    ``object.__setattr__`` (a case has 35), ten times the cost of filling its dict at once.
    """
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


# --- a case and its events ---

# The case's state as the network sees it. Dates are ISO text, instants RFC 3339 text in UTC,
# lists JSON text: the forms the case table stores, so a copy is stored without conversion.
CASE_FIELDS = (
    "receipt", "item_code", "item_name", "department", "case_type", "status", "origin", "owner", "owner_epoch",
    "agent", "materials", "missing_core", "pending_materials", "requested_materials", "joint", "submitted_at",
    "accepted_on", "decided_on", "due", "statutory_due", "supplement_due", "issue_due", "pause_started",
    "paused_days", "extended", "decision", "decision_reason", "notice", "catalog_version", "catalog_issuer",
    "possible_duplicate", "duplicate_of", "event_count", "updated_at",
    # Fees and the green channel (migration 0016); absent from older senders: their defaults below.
    "fees_due_fen", "fees_paid_fen", "fees_waived", "green_channel",
)
PERSONAL_FIELDS = ("applicant_name", "applicant_id", "applicant_phone")
SEALED_FIELD = "sealed_applicant"  # the wire key of a sealed applicant (``node.domain.sealed``)
# What senders before a field existed meant by its absence.
_CASE_DEFAULTS: dict[str, Any] = {"catalog_issuer": "", "fees_due_fen": 0, "fees_paid_fen": 0, "fees_waived": False,
                                  "green_channel": False}


@dataclass(frozen=True)
class Personal:
    """The applicant's personal data: travels only between the receiving node and the owner."""

    applicant_name: str
    applicant_id: str
    applicant_phone: str

    def plain(self) -> bytes:
        """What is sealed: the three fields as the wire's JSON."""
        return dumps({f: getattr(self, f) for f in PERSONAL_FIELDS})

    @classmethod
    def from_plain(cls, data: bytes) -> Personal:
        body = _loads(data)
        values = [v for v in (body.get(f) for f in PERSONAL_FIELDS) if isinstance(v, str)]
        if len(values) != len(PERSONAL_FIELDS):
            raise MessageError("a sealed applicant opened to something else than name, ID number and phone")
        return cls(*values)


@dataclass(frozen=True)
class CaseSnapshot:
    """A case's state at one moment, in its wire form (``CASE_FIELDS``, plus ``personal``)."""

    receipt: str
    item_code: str
    item_name: str
    department: str
    case_type: str
    status: str
    origin: str
    owner: str
    owner_epoch: int
    agent: str
    materials: str
    missing_core: str
    pending_materials: str
    requested_materials: str
    joint: str
    submitted_at: str
    accepted_on: str | None
    decided_on: str | None
    due: str | None
    statutory_due: str | None
    supplement_due: str | None
    issue_due: str | None
    pause_started: str | None
    paused_days: int
    extended: bool
    decision: str
    decision_reason: str
    notice: str
    catalog_version: int
    catalog_issuer: str
    possible_duplicate: bool
    duplicate_of: str
    event_count: int
    updated_at: str
    fees_due_fen: int = 0
    fees_paid_fen: int = 0
    fees_waived: bool = False
    green_channel: bool = False
    personal: Personal | Sealed | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], personal: bool = True) -> CaseSnapshot:
        """From a mapping that has (at least) the wire's fields: a decoded payload, a case's
        columns. ``personal=False`` leaves the personal data out even when it is there."""

        def build() -> CaseSnapshot:
            try:  # every field there: the usual case, read in one pass (cases are decoded on the hot path)
                state = {f: values[f] for f in CASE_FIELDS}
            except KeyError:
                state = {f: values[f] if f in values or f not in _CASE_DEFAULTS else _CASE_DEFAULTS[f]
                         for f in CASE_FIELDS}
            if not isinstance(state["receipt"], str) or not isinstance(state["owner_epoch"], int):
                raise MessageError("a case needs a receipt (text) and an owner epoch (integer)")
            state["personal"] = None
            if personal and values.get(SEALED_FIELD) is not None:
                try:
                    state["personal"] = Sealed.from_dict(values[SEALED_FIELD])
                except SealError as exc:
                    raise MessageError(str(exc)) from None
            elif personal and PERSONAL_FIELDS[0] in values:
                state["personal"] = Personal(*(values[f] for f in PERSONAL_FIELDS))
            return _built(cls, state)

        built: CaseSnapshot = _decoding("case", build)
        return built

    def with_personal(self, personal: Personal | Sealed | None) -> CaseSnapshot:
        """The same state with ``personal`` in place of what it carries (sealing, opening)."""
        return replace(self, personal=personal)

    def public(self) -> CaseSnapshot:
        """The same state without the personal data (for summaries and for ancestors)."""
        return self if self.personal is None else replace(self, personal=None)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)  # the fields are CASE_FIELDS and ``personal``: one copy, no lookups by name
        del out["personal"]
        if isinstance(self.personal, Sealed):
            out[SEALED_FIELD] = self.personal.to_dict()
        elif self.personal is not None:
            out.update(applicant_name=self.personal.applicant_name, applicant_id=self.personal.applicant_id,
                       applicant_phone=self.personal.applicant_phone)
        return out

    def state(self) -> dict[str, Any]:
        """The fields a holder of a copy takes over from a newer state (not the receipt, not the
        count of events: the events themselves set that)."""
        return {f: getattr(self, f) for f in CASE_FIELDS if f not in ("receipt", "event_count")}


EVENT_FIELDS = ("receipt", "seq", "action", "from_status", "to_status", "actor", "reason", "detail", "happened_at",
                "recorded_at", "origin", "origin_incarnation", "origin_seq", "superseded")


@dataclass(frozen=True)
class CaseEvent:
    """One event of a case's history in its wire form; (origin, origin_incarnation,
    origin_seq) is its global identity, ``seq`` its place in the case's history."""

    receipt: str
    seq: int
    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    detail: str  # JSON text, as stored
    happened_at: str
    recorded_at: str
    origin: str
    origin_incarnation: int
    origin_seq: int
    superseded: bool = False

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CaseEvent:
        def build() -> CaseEvent:
            found = {f: values[f] for f in EVENT_FIELDS if f != "superseded"}
            if not isinstance(found["seq"], int) or not isinstance(found["origin_seq"], int):
                raise MessageError("an event needs integer positions (seq, origin_seq)")
            found["superseded"] = values.get("superseded", False)
            return _built(cls, found)

        built: CaseEvent = _decoding("event", build)
        return built

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # the fields are EVENT_FIELDS

    @property
    def identity(self) -> tuple[str, int, int]:
        return self.origin, self.origin_incarnation, self.origin_seq

    @property
    def take_over_epoch(self) -> int | None:
        """The owner epoch a ``take_over`` event records (None for any other event)."""
        if self.action != "take_over":
            return None
        epoch = json.loads(self.detail or "{}").get("epoch")
        return epoch if isinstance(epoch, int) else None


def _events(values: Any) -> tuple[CaseEvent, ...]:
    if not isinstance(values, list):
        raise MessageError("events: not a list")
    return tuple(CaseEvent.from_dict(v) for v in values)


# --- the kinds ---


class Message(Protocol):
    """What every payload type offers (its kind, and the two directions of its wire form)."""

    KIND: ClassVar[str]

    def encode(self) -> bytes: ...


@dataclass(frozen=True)
class TransferMessage:
    """The whole case, to its new owner (a village carrying it up, an owner escalating it).
    ``recovery``: re-sent after the receiver was restored from a backup."""

    KIND: ClassVar[str] = "transfer"
    case: CaseSnapshot
    events: tuple[CaseEvent, ...]
    recovery: bool = False

    def encode(self) -> bytes:
        body: dict[str, Any] = {"case": self.case.to_dict(), "events": [e.to_dict() for e in self.events]}
        if self.recovery:
            body["recovery"] = True
        return dumps(body)

    @classmethod
    def decode(cls, data: bytes) -> TransferMessage:
        body = _loads(data)
        built: TransferMessage = _decoding(cls.KIND, lambda: cls(
            CaseSnapshot.from_dict(body["case"]), _events(body["events"]), bool(body.get("recovery", False))))
        return built


W = TypeVar("W", bound="_WholeCase")


@dataclass(frozen=True)
class _WholeCase:
    """A case with its whole history, personal data included (normally sealed)."""

    KIND: ClassVar[str]
    case: CaseSnapshot
    events: tuple[CaseEvent, ...]

    def encode(self) -> bytes:
        return dumps({"case": self.case.to_dict(), "events": [e.to_dict() for e in self.events]})

    @classmethod
    def decode(cls: type[W], data: bytes) -> W:
        body = _loads(data)
        built: W = _decoding(cls.KIND, lambda: cls(CaseSnapshot.from_dict(body["case"]), _events(body["events"])))
        return built


@dataclass(frozen=True)
class CopyMessage(_WholeCase):
    """The owner's whole case, back to an origin restored from a backup (or, from custody, to
    the child that owns it)."""

    KIND: ClassVar[str] = "copy"


@dataclass(frozen=True)
class CustodyMessage(_WholeCase):
    """A case its origin owns itself, whole, to the parent that keeps it in custody: the only
    other place a case no one else owns can come back from when its origin is restored from an
    older backup. The applicant is sealed to the origin itself (the parent cannot open it)."""

    KIND: ClassVar[str] = "custody"


@dataclass(frozen=True)
class EventMessage:
    """New events of a case and its state after them (no personal data), to its origin."""

    KIND: ClassVar[str] = "event"
    case: CaseSnapshot
    events: tuple[CaseEvent, ...]

    def encode(self) -> bytes:
        return dumps({"case": self.case.to_dict(), "events": [e.to_dict() for e in self.events]})

    @classmethod
    def decode(cls, data: bytes) -> EventMessage:
        body = _loads(data)
        built: EventMessage = _decoding(cls.KIND, lambda: cls(CaseSnapshot.from_dict(body["case"], personal=False),
                                                              _events(body["events"])))
        return built


@dataclass(frozen=True)
class SummaryMessage:
    """A case's state without personal data, up to every ancestor (supervision, tracking)."""

    KIND: ClassVar[str] = "summary"
    case: CaseSnapshot

    def encode(self) -> bytes:
        return dumps({"case": self.case.public().to_dict()})

    @classmethod
    def decode(cls, data: bytes) -> SummaryMessage:
        body = _loads(data)
        built: SummaryMessage = _decoding(cls.KIND, lambda: cls(CaseSnapshot.from_dict(body["case"], personal=False)))
        return built


@dataclass(frozen=True)
class RequestMessage:
    """An action asked of the owner from another node (a supplement, a withdrawal, a rating)."""

    KIND: ClassVar[str] = "request"
    receipt: str
    action: str
    params: Mapping[str, Any]
    requested_by: str
    requested_at: str

    def encode(self) -> bytes:
        return dumps({"receipt": self.receipt, "action": self.action, "params": dict(self.params),
                      "requested_by": self.requested_by, "requested_at": self.requested_at})

    @classmethod
    def decode(cls, data: bytes) -> RequestMessage:
        body = _loads(data)

        def build() -> RequestMessage:
            if not isinstance(body["params"], dict):
                raise MessageError("params: not an object")
            return cls(body["receipt"], body["action"], body["params"], body["requested_by"], body["requested_at"])

        built: RequestMessage = _decoding(cls.KIND, build)
        return built


@dataclass(frozen=True)
class RestoredMessage:
    """A node was restored from a backup: the owner receiving this sends back copies of the
    cases it owns that originated in ``subtree``."""

    KIND: ClassVar[str] = "restored"
    subtree: str

    def encode(self) -> bytes:
        return dumps({"subtree": self.subtree})

    @classmethod
    def decode(cls, data: bytes) -> RestoredMessage:
        subtree = _loads(data).get("subtree")
        if not isinstance(subtree, str) or not subtree:
            raise MessageError("the notice names no subtree")
        return cls(subtree)


@dataclass(frozen=True)
class AncestorRestoredMessage:
    """An ancestor (``node``) came back restored from an older backup; passed down its subtree
    from the child that saw its new incarnation. Each node re-sends what only it can give back:
    the cases it handed over to owners at or above that ancestor, and its own statistics rows."""

    KIND: ClassVar[str] = "ancestor_restored"
    node: str

    def encode(self) -> bytes:
        return dumps({"node": self.node})

    @classmethod
    def decode(cls, data: bytes) -> AncestorRestoredMessage:
        node = _loads(data).get("node")
        if not isinstance(node, str) or not node:
            raise MessageError("the notice names no node")
        return cls(node)


@dataclass(frozen=True)
class CatalogMessage:
    """A catalog version, down to every descendant. Items are in the catalog's own
    dictionary form (``ServiceItem.to_dict``), which the catalog module keeps stable."""

    KIND: ClassVar[str] = "catalog"
    version: int
    issuer: str
    items: tuple[Mapping[str, Any], ...]

    def encode(self) -> bytes:
        return dumps({"version": self.version, "issuer": self.issuer, "items": [dict(i) for i in self.items]})

    @classmethod
    def decode(cls, data: bytes) -> CatalogMessage:
        body = _loads(data)

        def build() -> CatalogMessage:
            if not isinstance(body["items"], list):
                raise MessageError("items: not a list")
            return cls(body["version"], body["issuer"], tuple(body["items"]))

        built: CatalogMessage = _decoding(cls.KIND, build)
        return built


COMPLAINT_FIELDS = ("complaint_id", "receipt", "about_node", "item_code", "department", "filed_at_node", "supervisor",
                    "text", "filed_at", "filed_on", "due", "status", "resolved_on", "resolution", "resolved_by",
                    "version", "updated_at")


@dataclass(frozen=True)
class ComplaintCopy:
    """A complaint's newest version, as its three keepers hold it (``node.app.complaints``)."""

    complaint_id: str
    receipt: str | None
    about_node: str
    item_code: str | None
    department: str
    filed_at_node: str
    supervisor: str
    text: str
    filed_at: str
    filed_on: str
    due: str
    status: str
    resolved_on: str | None
    resolution: str
    resolved_by: str
    version: int
    updated_at: str

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ComplaintCopy:
        # As before typed payloads: a field a sender left out is read as empty (None).
        found: dict[str, Any] = {f: values.get(f) for f in COMPLAINT_FIELDS}
        return cls(**found)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in COMPLAINT_FIELDS}


@dataclass(frozen=True)
class ComplaintMessage:
    KIND: ClassVar[str] = "complaint"
    complaint: ComplaintCopy

    def encode(self) -> bytes:
        return dumps({"complaint": self.complaint.to_dict()})

    @classmethod
    def decode(cls, data: bytes) -> ComplaintMessage:
        body = _loads(data)

        def build() -> ComplaintMessage:
            if not isinstance(body["complaint"], dict):
                raise MessageError("complaint: not an object")
            return cls(ComplaintCopy.from_dict(body["complaint"]))

        built: ComplaintMessage = _decoding(cls.KIND, build)
        return built


RECTIFICATION_FIELDS = ("receipt", "owner", "item_code", "department", "rating", "opened_at", "due", "closed_on",
                        "updated_at")


@dataclass(frozen=True)
class RectificationMessage:
    """A rectification opened or closed at the owner, to each of its ancestors (they hold no
    events, so they learn of it here; ``node.app.supervision``). ``closed_on`` "": still open."""

    KIND: ClassVar[str] = "rectification"
    receipt: str
    owner: str
    item_code: str
    department: str
    rating: str
    opened_at: str
    due: str
    closed_on: str
    updated_at: str

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    def to_dict(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in RECTIFICATION_FIELDS}

    @classmethod
    def decode(cls, data: bytes) -> RectificationMessage:
        body = _loads(data)

        def build() -> RectificationMessage:
            values = {f: body[f] for f in RECTIFICATION_FIELDS}
            if not all(isinstance(v, str) for v in values.values()):
                raise MessageError("rectification: every field is text")
            return cls(**values)

        built: RectificationMessage = _decoding(cls.KIND, build)
        return built


@dataclass(frozen=True)
class StatsReportPart:
    """A node's latest word: counts complete up to ``as_of`` (RFC 3339); its registered children."""

    node: str
    version: int
    as_of: str
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatsRowPart:
    """One node's counts for one day × item × department, at ``version`` (``COUNTERS``)."""

    node: str
    day: str
    item_code: str
    department: str
    counters: Mapping[str, int]
    version: int
    computed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "day": self.day, "item_code": self.item_code, "department": self.department,
                **{c: self.counters.get(c, 0) for c in COUNTERS}, "version": self.version,
                "computed_at": self.computed_at}


@dataclass(frozen=True)
class StatsMessage:
    """A node's changed statistics rows and its report, up to the city (highest version wins)."""

    KIND: ClassVar[str] = "stats"
    report: StatsReportPart
    rows: tuple[StatsRowPart, ...]

    def encode(self) -> bytes:
        r = self.report
        return dumps({"report": {"node": r.node, "version": r.version, "as_of": r.as_of, "children": list(r.children)},
                      "rows": [row.to_dict() for row in self.rows]})

    @classmethod
    def decode(cls, data: bytes) -> StatsMessage:
        body = _loads(data)

        def build() -> StatsMessage:
            r = body["report"]
            report = StatsReportPart(r["node"], int(r["version"]), r["as_of"], tuple(r.get("children", ())))
            rows = tuple(StatsRowPart(v["node"], v["day"], v["item_code"], v["department"],
                                      {c: int(v.get(c, 0)) for c in COUNTERS}, int(v["version"]),
                                      str(v.get("computed_at", ""))) for v in body.get("rows", []))
            return cls(report, rows)

        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MessageError(f"{exc.__class__.__name__}: {exc}") from None


@dataclass(frozen=True)
class AuditHeadMessage:
    """A node's hash-chain head, up to the city (every ancestor judges and keeps it; see
    ``node.domain.audit``): a node speaks only for its own chain."""

    KIND: ClassVar[str] = "audit"
    node: str
    incarnation: int
    algorithm: str
    count: int
    head: str
    checkpoint_count: int  # the count of the head sent before (0: none)
    checkpoint_hash: str  # the sender's hash at that position now

    def encode(self) -> bytes:
        return dumps(dict(self.__dict__))

    @classmethod
    def decode(cls, data: bytes) -> AuditHeadMessage:
        body = _loads(data)

        def build() -> AuditHeadMessage:
            ints = ("incarnation", "count", "checkpoint_count")
            texts = ("node", "algorithm", "head", "checkpoint_hash")
            if any(not isinstance(body[f], int) or isinstance(body[f], bool) for f in ints):
                raise MessageError(f"{', '.join(ints)} must be integers")
            if any(not isinstance(body[f], str) for f in texts):
                raise MessageError(f"{', '.join(texts)} must be text")
            return cls(body["node"], body["incarnation"], body["algorithm"], body["count"], body["head"],
                       body["checkpoint_count"], body["checkpoint_hash"])

        built: AuditHeadMessage = _decoding(cls.KIND, build)
        return built


@dataclass(frozen=True)
class RevocationMessage:
    """A CA's revocation list, down to every descendant: ``bundle`` is the signed X.509 CRL
    followed by the CA's certificate, in PEM (``ops.pki``); ``issuer`` is the subtree the CA
    speaks for and ``number`` the CRL's number (each node keeps the highest per issuer, and
    checks the signature before it believes either)."""

    KIND: ClassVar[str] = "revocation"
    issuer: str
    number: int
    bundle: str

    def encode(self) -> bytes:
        return dumps({"issuer": self.issuer, "number": self.number, "bundle": self.bundle})

    @classmethod
    def decode(cls, data: bytes) -> RevocationMessage:
        body = _loads(data)

        def build() -> RevocationMessage:
            if not isinstance(body["number"], int) or not isinstance(body["bundle"], str):
                raise MessageError("number must be a whole number and bundle text")
            return cls(str(body["issuer"]), body["number"], body["bundle"])

        built: RevocationMessage = _decoding(cls.KIND, build)
        return built


@dataclass(frozen=True)
class CertificatesMessage:
    """A node's certificate chain and its ancestors', in PEM, down to a child (so it can seal
    applicants to them: ``node.app.keyring``). Each is checked against the city's root before
    it is believed."""

    KIND: ClassVar[str] = "certificates"
    bundle: str

    def encode(self) -> bytes:
        return dumps({"bundle": self.bundle})

    @classmethod
    def decode(cls, data: bytes) -> CertificatesMessage:
        bundle = _loads(data).get("bundle")
        if not isinstance(bundle, str) or not bundle:
            raise MessageError("the bundle is not PEM text")
        return cls(bundle)


@dataclass(frozen=True)
class ApplicantMessage:
    """A case's applicant, sealed to its owner, from the node that received the case: sent when
    the owner could not be given it with the case (its certificate was not known then, or it
    took the case over without it). The owner fills an applicant it lacks; one it holds stays."""

    KIND: ClassVar[str] = "applicant"
    receipt: str
    sealed: Sealed

    def encode(self) -> bytes:
        return dumps({"receipt": self.receipt, SEALED_FIELD: self.sealed.to_dict()})

    @classmethod
    def decode(cls, data: bytes) -> ApplicantMessage:
        body = _loads(data)
        receipt = body.get("receipt")
        if not isinstance(receipt, str) or not receipt:
            raise MessageError("applicant: the receipt is not text")
        try:
            return cls(receipt, Sealed.from_dict(body.get(SEALED_FIELD)))
        except SealError as exc:
            raise MessageError(str(exc)) from None


@dataclass(frozen=True)
class CalendarMessage:
    """A year's official holiday schedule, down to every descendant: ``schedule`` is the TOML of
    the shipped data files (``node.domain.calendar``), ``issuer`` the city that published it.
    Each node checks it (the year's own rules) before it keeps it."""

    KIND: ClassVar[str] = "calendar"
    year: int
    issuer: str
    schedule: str
    published_at: str

    def encode(self) -> bytes:
        return dumps({"year": self.year, "issuer": self.issuer, "schedule": self.schedule,
                      "published_at": self.published_at})

    @classmethod
    def decode(cls, data: bytes) -> CalendarMessage:
        body = _loads(data)

        def build() -> CalendarMessage:
            year, schedule = body["year"], body["schedule"]
            if isinstance(year, bool) or not isinstance(year, int) or not isinstance(schedule, str):
                raise MessageError("year must be a whole number and schedule text")
            return cls(year, str(body["issuer"]), schedule, str(body["published_at"]))

        built: CalendarMessage = _decoding(cls.KIND, build)
        return built


AnyMessage = (TransferMessage | CopyMessage | CustodyMessage | EventMessage | SummaryMessage | RequestMessage
              | RestoredMessage | AncestorRestoredMessage | CatalogMessage | ComplaintMessage | StatsMessage
              | AuditHeadMessage | RevocationMessage | CertificatesMessage | ApplicantMessage | RectificationMessage
              | CalendarMessage)
MESSAGES: dict[str, type[AnyMessage]] = {
    m.KIND: m for m in (TransferMessage, CopyMessage, CustodyMessage, EventMessage, SummaryMessage, RequestMessage,
                        RestoredMessage, AncestorRestoredMessage, CatalogMessage, ComplaintMessage, StatsMessage,
                        AuditHeadMessage, RevocationMessage, CertificatesMessage, ApplicantMessage,
                        RectificationMessage, CalendarMessage)
}


def decode_message(kind: str, data: bytes) -> AnyMessage:
    """The typed payload of an envelope of ``kind``. Raises ``KeyError`` for a kind nobody
    knows and ``MessageError`` for a payload that is not one of its kind."""
    return MESSAGES[kind].decode(data)
