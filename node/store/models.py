"""The node's tables (SQLModel), as migration 0001 creates them.

Changing a table here means adding an alembic revision under ``node/store/migrations/versions``:
a data directory written by an earlier release is upgraded on start, never recreated.
Lists travel as JSON text columns; dates as ISO ``YYYY-MM-DD`` text and instants as
RFC 3339 text in UTC, so the SQLite file reads the same from any tool.
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Meta(SQLModel, table=True):
    """Facts about this store: node id, level, incarnation, creation time."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class Counter(SQLModel, table=True):
    """Gapless per-store sequences (receipt numbers, event identities)."""

    __tablename__ = "counter"
    name: str = Field(primary_key=True)
    value: int = 0


class CatalogRelease(SQLModel, table=True):
    """One published version of one issuer's catalog (the city's, or a county's own items)."""

    __tablename__ = "catalog_release"
    issuer: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    published_at: str
    item_count: int


class CatalogReleaseItem(SQLModel, table=True):
    __tablename__ = "catalog_release_item"
    __table_args__ = (
        ForeignKeyConstraint(["issuer", "version"], ["catalog_release.issuer", "catalog_release.version"]),
    )
    issuer: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    code: str = Field(primary_key=True)
    department: str
    authority_level: str
    item_type: str
    data: str  # the whole item as JSON (ServiceItem.to_dict)


class CaseRow(SQLModel, table=True):
    __tablename__ = "case_record"
    __table_args__ = (
        Index("ix_case_status_due", "status", "due"),
        Index("ix_case_applicant_item", "applicant_id", "item_code"),
        Index("ix_case_department", "department"),
        Index("ix_case_owner_due", "owner", "due", "receipt"),  # the work queue: most urgent first (migration 0015)
        # the work queue's green-channel cases, found first (migration 0018)
        Index("ix_case_green_owner_due", "owner", "due", "receipt", sqlite_where=text("green_channel = 1")),
    )
    receipt: str = Field(primary_key=True)
    item_code: str
    item_name: str
    department: str
    case_type: str
    status: str
    origin: str
    owner: str
    owner_epoch: int
    agent: str = ""
    applicant_name: str
    applicant_id: str
    applicant_phone: str
    materials: str = "[]"
    missing_core: str = "[]"
    pending_materials: str = "[]"
    requested_materials: str = "[]"
    joint: str = "[]"
    submitted_at: str
    accepted_on: str | None = None
    decided_on: str | None = None
    due: str | None = None
    statutory_due: str | None = None
    supplement_due: str | None = None
    issue_due: str | None = None
    pause_started: str | None = None
    paused_days: int = 0
    extended: bool = False
    decision: str = ""
    decision_reason: str = ""
    notice: str = ""
    catalog_version: int
    catalog_issuer: str = ""  # whose catalog release the item came from (migration 0003)
    possible_duplicate: bool = False
    duplicate_of: str = ""
    event_count: int = 0
    updated_at: str
    fees_due_fen: int = 0  # migration 0016: fees (node.domain.fees), whole fen
    fees_paid_fen: int = 0
    fees_waived: bool = False
    green_channel: bool = False  # 绿色通道


class CaseEventRow(SQLModel, table=True):
    """Append-only history. (origin, incarnation, origin_seq) is the event's global identity."""

    __tablename__ = "case_event"
    __table_args__ = (
        UniqueConstraint("receipt", "seq", name="uq_case_event_seq"),
        UniqueConstraint("origin", "origin_incarnation", "origin_seq", name="uq_case_event_identity"),
        # Only rows not chained yet (a replicated batch, sealed in the same unit): stays tiny.
        Index("ix_case_event_unchained", "id", sqlite_where=text("chain_pos IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    receipt: str = Field(foreign_key="case_record.receipt")
    seq: int
    action: str
    from_status: str
    to_status: str
    actor: str
    reason: str = ""
    detail: str = "{}"
    happened_at: str
    recorded_at: str
    origin: str
    origin_incarnation: int
    origin_seq: int
    # Written by an owner whose epoch had already been superseded: kept, flagged, never merged.
    superseded: bool = False
    # The audit chain (migration 0009, node.domain.audit): this event's place in the order this
    # node appended events, and the link hash there. NULL only until the appending unit seals it.
    chain_pos: int | None = None
    chain_hash: str | None = None


class IdempotencyKey(SQLModel, table=True):
    """A client's idempotency key, bound to the hash of the request it came with."""

    __tablename__ = "idempotency_key"
    key: str = Field(primary_key=True)
    request_hash: str
    receipt: str = Field(foreign_key="case_record.receipt")
    created_at: str


# --- sync (migration 0002) ---


class EnvelopeColumns(SQLModel):
    """An envelope as stored (see ``sync.envelope.Envelope``); not a table itself."""

    origin: str
    origin_incarnation: int
    origin_seq: int
    kind: str
    target: str
    case_key: str
    priority: int
    payload: str
    created_at: str


class OutboxRow(EnvelopeColumns, table=True):
    """Envelopes waiting for a neighbour's acknowledgement, per link, in link order."""

    __tablename__ = "outbox"
    link: str = Field(primary_key=True)  # the neighbour's node id
    seq: int = Field(primary_key=True)


class InboundCursor(SQLModel, table=True):
    """What this node has applied of a neighbour's stream (one per neighbour incarnation)."""

    __tablename__ = "inbound_cursor"
    link: str = Field(primary_key=True)
    incarnation: int = Field(primary_key=True)
    through: int = 0
    above: str = "[]"
    updated_at: str


class AppliedEnvelope(SQLModel, table=True):
    """Every envelope this node applied as its final target, kept forever (dedupe, alarms)."""

    __tablename__ = "applied_envelope"
    origin: str = Field(primary_key=True)
    origin_incarnation: int = Field(primary_key=True)
    origin_seq: int = Field(primary_key=True)
    payload_hash: str
    applied_at: str


class LinkStateRow(SQLModel, table=True):
    __tablename__ = "link_state"
    neighbour: str = Field(primary_key=True)
    health: str
    since: str | None = None
    failures: int = 0
    next_attempt: str | None = None
    last_success: str | None = None
    last_error: str = ""


class ChildLink(SQLModel, table=True):
    """A child that has registered with this node (said hello with a valid id and level)."""

    __tablename__ = "child_link"
    child_id: str = Field(primary_key=True)
    level: str
    incarnation: int
    protocol_version: int
    catalog_version: int
    registered_at: str
    last_seen: str


class QuarantineRow(EnvelopeColumns, table=True):
    """An envelope set aside so it does not block its queue (``side``, ``reason``, ``size``:
    migration 0008).

    ``receiver``: it arrived from ``link`` and could not be applied (``reason`` ``apply``), or
    it is the marker of one its sender withheld (``withheld``: the payload is the marker's).
    ``sender``: this node could not send it to ``link`` — larger than the batch limit
    (``too_large``) or refused by the receiver (``refused``); the payload is the whole
    envelope, and a marker went in its place. ``size``: its bytes on the wire.
    """

    __tablename__ = "quarantine"
    id: int | None = Field(default=None, primary_key=True)
    link: str
    seq: int
    error: str
    quarantined_at: str
    replayed_at: str | None = None
    side: str = "receiver"
    reason: str = "apply"
    size: int = 0


class InboxRow(SQLModel, table=True):
    """A batch received and acknowledged, with the envelopes of it not applied yet
    (migrations 0004, 0007).

    A neighbour's batch is acknowledged once it is stored here with the advanced cursor
    (one transaction, one insert). Its envelopes are applied afterwards, in ``id`` order
    and in their order within the batch; ``applied`` counts those done and moves in the
    same transaction as their effects; the row goes once all ``count`` are done.
    """

    __tablename__ = "inbox"
    id: int | None = Field(default=None, primary_key=True)
    link: str
    first_seq: int  # the lowest and highest link positions in the batch (-1: beyond SQLite's integers)
    last_seq: int
    count: int
    applied: int = 0
    envelopes: bytes  # sync_pb2.EnvelopeBatch (sync.transport.wire.encode_envelopes)
    received_at: str


class CaseSummary(SQLModel, table=True):
    """What an ancestor or relay knows of a case: its state without personal data."""

    __tablename__ = "case_summary"
    __table_args__ = (Index("ix_case_summary_origin", "origin"),)
    receipt: str = Field(primary_key=True)
    origin: str
    owner: str
    owner_epoch: int
    item_code: str
    department: str
    case_type: str
    status: str
    due: str | None = None
    submitted_at: str
    decided_on: str | None = None
    event_count: int
    state: str  # the full state snapshot (JSON, no personal data)
    updated_at: str


class CaseCustody(SQLModel, table=True):
    """A case a child owns where it was received (no one else holds it whole), kept here in
    custody (migration 0019): its newest whole form as the child sent it, the applicant sealed
    to the child. Sent back as a ``copy`` when the child comes back restored from a backup."""

    __tablename__ = "case_custody"
    __table_args__ = (Index("ix_case_custody_origin", "origin"),)
    receipt: str = Field(primary_key=True)
    origin: str  # the child that owns it
    owner_epoch: int
    event_count: int
    payload: bytes  # the ``custody`` message, as it arrived
    kept_at: str


# --- supervision (migration 0005) ---


class Complaint(SQLModel, table=True):
    """A complaint about a case or a window, as the supervising level tracks it.

    Kept by the supervisor (which resolves it), by the node complained about (``about_node``:
    its figures count it) and by the node where it was filed. The supervisor's copy is the
    authority; every change raises ``version`` and travels to the other two (highest wins).
    """

    __tablename__ = "complaint"
    __table_args__ = (
        Index("ix_complaint_about_filed", "about_node", "filed_on"),
        Index("ix_complaint_supervisor_status", "supervisor", "status"),
    )
    complaint_id: str = Field(primary_key=True)  # filing node, store incarnation, sequence: 371102001-1-7
    receipt: str | None = None  # the case complained about, if any
    about_node: str
    item_code: str | None = None
    department: str = ""  # the window (department) complained about
    filed_at_node: str
    supervisor: str
    text: str
    filed_at: str  # RFC 3339
    filed_on: str  # ISO date, China time
    due: str
    status: str = "open"  # open | resolved
    resolved_on: str | None = None
    resolution: str = ""
    resolved_by: str = ""
    version: int = 1
    updated_at: str


class Rectification(SQLModel, table=True):
    """A rectification (整改) a dissatisfied rating opened, as the owner and every ancestor see it
    (migration 0014). The owner's history is the authority (``rectify_open`` / ``rectify_close``
    events); this row is what travels up so an ancestor, which holds only summaries, can watch it.
    Closing is final: an ``open`` copy arriving after a ``closed`` one changes nothing."""

    __tablename__ = "rectification"
    receipt: str = Field(primary_key=True)
    owner: str  # the node that handled the case and must rectify
    item_code: str
    department: str
    rating: str
    opened_at: str  # RFC 3339
    due: str  # ISO date
    closed_on: str = ""  # ISO date; "" while open
    updated_at: str


# --- statistics (migration 0006) ---


class StatRow(SQLModel, table=True):
    """One node's counts for one day × item × department (counters: node/statistics.py).

    Written by that node alone; ancestors keep the copy with the highest ``version``."""

    __tablename__ = "stat_row"
    __table_args__ = (Index("ix_stat_row_day", "day"),)
    node: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # ISO date, China time
    item_code: str = Field(primary_key=True)
    department: str = Field(primary_key=True)
    received: int = 0
    accepted: int = 0
    immediate: int = 0
    completed: int = 0
    on_time: int = 0
    overdue: int = 0
    warnings: int = 0
    returned: int = 0
    escalated: int = 0
    supplement_requests: int = 0
    eval_very_satisfied: int = 0
    eval_satisfied: int = 0
    eval_basically_satisfied: int = 0
    eval_dissatisfied: int = 0
    eval_very_dissatisfied: int = 0
    complaints: int = 0
    fees_fen: int = 0
    processing_days: int = 0
    # migration 0016: carriage and kinds at intake, fees collected and waived, green channel
    carried: int = 0
    kind_immediate: int = 0
    kind_promised: int = 0
    kind_joint: int = 0
    kind_escalated: int = 0
    fees_collected_fen: int = 0
    fees_waived_fen: int = 0
    green_channel: int = 0
    version: int
    computed_at: str


class StatReport(SQLModel, table=True):
    """A node's latest statistics report: counts complete up to ``as_of``; its registered children."""

    __tablename__ = "stat_report"
    node: str = Field(primary_key=True)
    version: int
    as_of: str
    children: str = "[]"  # JSON list of node ids
    received_at: str  # when this node stored it


# --- the audit chain (migration 0009) ---


class AuditHead(SQLModel, table=True):
    """This node's chain: its algorithm, length and head (one row, ``id`` 1), and the head it
    last sent up (its count, and the event at that position, to read the hash there again)."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    algorithm: str
    count: int = 0
    head: str
    sent_count: int = 0
    sent_event_id: int = 0  # the case_event row at position sent_count (0: none sent)


class AuditPeerHead(SQLModel, table=True):
    """The latest chain head of a descendant, as this ancestor judged it (node.app.audit)."""

    __tablename__ = "audit_peer_head"
    node: str = Field(primary_key=True)
    incarnation: int
    algorithm: str
    count: int
    head: str
    kept_by_incarnation: int  # this node's incarnation when it stored the head
    origin_seq: int = 0  # the origin sequence of the envelope that carried it (a repeat is ignored)
    received_at: str
    broken: str = ""  # why the chain was found broken ("" while it holds); stays until looked into
    broken_at: str | None = None
    breaks: int = 0  # how many heads did not extend the one held
    restores: int = 0  # how many times a new incarnation re-based it


# --- people (migration 0011) ---


class Account(SQLModel, table=True):
    """A person (or a self-service terminal) who signs in at this node. Never the password:
    its argon2id hash (``node.store.accounts``). Lists are JSON text."""

    __tablename__ = "account"
    login: str = Field(primary_key=True)
    name: str  # display name (王芳)
    roles: str  # JSON list of role names (node.domain.people.Role)
    departments: str = "[]"  # JSON list; ["*"]: a comprehensive window
    backup_for: str = ""  # a backup clerk (AB角): the login of the clerk it stands in for
    absent: bool = False  # marked absent: its backup acts for it
    disabled: bool = False
    password_hash: str
    created_at: str
    changed_at: str


class SessionToken(SQLModel, table=True):
    """A token given out at login: only its SHA-256 is kept; dropped on logout, disable, reset."""

    __tablename__ = "session_token"
    __table_args__ = (Index("ix_session_token_login", "login"),)
    token_hash: str = Field(primary_key=True)
    login: str
    issued_at: str
    expires_at: str


class RatingCode(SQLModel, table=True):
    """The one-time code printed on a receipt for the applicant's rating (kept hashed)."""

    __tablename__ = "rating_code"
    receipt: str = Field(primary_key=True)
    code_hash: str
    issued_at: str
    used_at: str | None = None
    failures: int = 0


class RevocationList(SQLModel, table=True):
    """The newest revocation list of each CA (the city's root, a county's intermediate), as it
    arrived: a signed X.509 CRL followed by its CA's certificate (``node.app.revocations``)."""

    __tablename__ = "revocation_list"
    issuer: str = Field(primary_key=True)  # the subtree the CA speaks for
    number: int  # the CRL number: only a higher one replaces it
    bundle: str  # PEM
    received_at: str


class ApplicantOwed(SQLModel, table=True):
    """A case received here whose owner (as this node knows it) lacks the applicant: it was
    withheld (no certificate to seal it to) or the owner took the case over without it. Sent
    sealed, and the row deleted, once the owner's certificate is known (``node.app.keyring``)."""

    __tablename__ = "applicant_owed"
    receipt: str = Field(primary_key=True)
    recorded_at: str


# --- window deliveries (migration 0013) ---


class WindowDelivery(SQLModel, table=True):
    """A result handed over here, at the window where the applicant applied, of a case owned
    elsewhere (``node.app.desk``): this node's own record, kept apart from the owner's history
    (only the owner writes the case). The owner records the delivery as an event when the
    request it causes arrives; until then this record is what the window shows."""

    __tablename__ = "window_delivery"
    receipt: str = Field(primary_key=True)
    actor: str  # who handed it over (the person signed in)
    delivered_at: str  # when (RFC 3339, UTC)
    recorded_at: str


# --- calendar years (migration 0017) ---


class CalendarYear(SQLModel, table=True):
    """A year's official holiday schedule as the city published it (``node.app.calendar_years``):
    the TOML text of the shipped data files, kept as it arrived. One row per year, never changed."""

    __tablename__ = "calendar_year"
    year: int = Field(primary_key=True)
    issuer: str  # the city that published it
    schedule: str  # TOML, the format of node/domain/data/holidays/YYYY.toml
    published_at: str  # when the city published it
    received_at: str  # when this node stored it
