"""How cases travel the tree: what a change sends, and how a node applies what arrives.

Kinds of envelope (payloads are JSON):

``transfer``  (to the new owner)  the whole case with personal data and all its events.
              Sent when a village agent point forwards a case to the level with authority,
              and when an owner escalates. The sender gives up ownership in the same
              transaction (owner = target, epoch + 1): one owner at a time, even in transit.
``event``     (to the origin)     new events and the state after them, so the applicant
              hears back where they applied. Relays on the way refresh their summary.
``summary``   (up to the city)    the state without personal data; every ancestor keeps
              it, for supervision and tracking.
``request``   (to the owner)      a supplement or a withdrawal made at another node; the
              owner applies it (or records why it could not) and the result flows back.
``catalog``   (to every descendant) a catalog version.
``complaint`` (to the supervisor and the node complained about) a complaint's newest version
              (see ``node.supervision_complaints``).
``stats``     (up to the city)    a node's statistics rows and report; every ancestor keeps the
              highest version of each (see ``node.stats_store``).
``copy``      (to the origin)     the whole case with personal data and all its events, from
              its owner, after the origin came back as a new incarnation (restored from a
              backup, it forgot the cases it took since and their decisions). The origin takes
              it only if it lacks the case or holds fewer of its events: never a regression.
``restored``  (to an owner above) a node was restored: send a ``copy`` of every case you own
              that originated in its subtree (the parent of the restored node sends it).

Recovery after a restore (a neighbour seen with a new incarnation, ``node.sync_node``):
the envelopes the restored node had acknowledged before are gone from the neighbour's
outbox, so their effects are queued again end to end, with fresh identities:

* its children re-send, to each owner, a ``transfer`` marked ``recovery`` of every case
  they handed over. An owner that lacks the case takes it back with all its events (and
  records a take-over only if the copy has none for the owner's epoch); one that holds it
  at a newer epoch, or at the same epoch with as many events, changes nothing; one at the
  same epoch with fewer events takes the missing ones. Relays pass it on like any transfer
  and never take ownership. Owners above the restored node are reached too (cases it
  relayed upward and lost before forwarding them).
* its parent sends a ``copy`` of every case it owns that originated in the restored
  child's subtree, and a ``restored`` notice to every owner above it that its summaries
  name for cases from that subtree; each does the same for the cases it owns. A restored
  origin that had escalated a case after the backup (and so believes it still owns it)
  takes the newer owner's copy and holds it as an earlier owner.

Personal data travels only in ``transfer`` and ``copy``, along the path between the
receiving node and the owner, and is stored only by the origin and the owners.

Applying is idempotent: link cursors drop repeats on each hop; the final target keeps the
identity and payload hash of everything it applied, forever (the same identity with
another payload is an alarm and goes to quarantine); events of one case apply in order
(a gap is refused, so the envelope is quarantined rather than merged out of order); a
transfer or event from an owner epoch older than the one known is kept in history,
flagged ``superseded``, and never merged into the state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from govnet.federation.routing import Direction, next_hop, root_of
from govnet.federation.tree import parent_id
from govnet.node.app import statistics_ledger as stats_store
from govnet.node.store.cases import INSERT_CASE_SQL, INSERT_EVENT_SQL
from govnet.node.store.models import AppliedEnvelope, CaseEventRow, CaseRow, ChildLink
from govnet.node.store.outbox import decode, forward, send
from govnet.node.store.unit import StoreMeta, execute, insert_many, insert_rows, insert_sql, query, utc_text
from govnet.sync.envelope import Envelope

PERSONAL = ("applicant_name", "applicant_id", "applicant_phone")
TARGETED = ("transfer", "event", "request", "copy", "restored")  # applied exactly once by one node
URGENT, NORMAL = 2, 0
REQUESTABLE = ("supplement", "withdraw")


class ApplyError(Exception):
    """This envelope cannot be applied; it goes to quarantine with this message."""


INSERT_APPLIED_SQL = insert_sql(AppliedEnvelope.__table__)  # type: ignore[attr-defined]
_SUMMARY_COLUMNS = ("receipt", "origin", "owner", "owner_epoch", "item_code", "department", "case_type", "status",
                    "due", "submitted_at", "decided_on", "event_count", "state", "updated_at")
# Keep the newest view: a summary replaces the one held only if it has more events.
UPSERT_SUMMARY_SQL = (
    f"INSERT INTO case_summary ({', '.join(_SUMMARY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _SUMMARY_COLUMNS)}) "
    f"ON CONFLICT (receipt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS[1:])
    + " WHERE excluded.event_count > case_summary.event_count"
)


# The columns a copy takes from the owner's state (never the personal data it already has).
_STATE_COLUMNS = tuple(c for c in CaseRow.model_fields if c not in (*PERSONAL, "receipt", "event_count"))
UPDATE_STATE_SQL = (
    "UPDATE case_record SET " + ", ".join(f"{c} = :{c}" for c in (*_STATE_COLUMNS, "event_count"))
    + " WHERE receipt = :receipt"
)


class RequestHandler(Protocol):
    """The case desk, as the replicator needs it (to apply requests and record take-overs)."""

    def apply_request(self, s: Session, row: CaseRow, action: str, params: dict[str, Any], now: datetime,
                      handler: Callable[[Session, CaseRow, dict[str, Any], datetime], None] | None = None,
                      ) -> None: ...

    def record_take_over(self, s: Session, row: CaseRow | dict[str, Any], previous_owner: str, now: datetime) -> None: ...


def _columns(model: type) -> list[str]:
    return list(model.model_fields)  # type: ignore[attr-defined]


def case_dict(row: CaseRow, personal: bool) -> dict[str, Any]:
    out = {k: getattr(row, k) for k in _columns(CaseRow)}
    if not personal:
        for k in PERSONAL:
            out.pop(k)
    return out


def event_dict(ev: CaseEventRow) -> dict[str, Any]:
    return {k: getattr(ev, k) for k in _columns(CaseEventRow) if k != "id"}


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "id"}


def events_of(s: Session, receipt: str, after_seq: int = 0) -> list[CaseEventRow]:
    return list(
        s.exec(
            select(CaseEventRow).where(CaseEventRow.receipt == receipt, CaseEventRow.seq > after_seq)
            .order_by(col(CaseEventRow.seq))
        ).all()
    )


# --- what a change sends (called by the desk inside its transaction) ---


def announce(s: Session, meta: StoreMeta, case: CaseRow | dict[str, Any], new_events: list[dict[str, Any]],
             now: datetime, priority: int) -> None:
    """After the owner changed a case: events to the origin, summary to the ancestors."""
    state = case_dict(case, personal=False) if isinstance(case, CaseRow) else {
        k: v for k, v in case.items() if k not in PERSONAL}
    if state["origin"] != meta.node_id:
        send(s, meta, target=state["origin"], kind="event", case_key=state["receipt"], priority=priority,
             payload={"case": state, "events": [_public(e) for e in new_events]}, now=now)
    if parent_id(meta.node_id) is not None:
        send(s, meta, target=root_of(meta.node_id), kind="summary", case_key=state["receipt"], priority=priority,
             payload={"case": state}, now=now)


def hand_over(s: Session, meta: StoreMeta, row: CaseRow, target: str, now: datetime, priority: int) -> None:
    """Send the whole case to ``target``, which becomes its owner."""
    payload = {"case": case_dict(row, personal=True), "events": [event_dict(e) for e in events_of(s, row.receipt)]}
    send(s, meta, target=target, kind="transfer", case_key=row.receipt, priority=priority, payload=payload, now=now)


def _whole_case(s: Session, row: CaseRow) -> dict[str, Any]:
    return {"case": case_dict(row, personal=True), "events": [event_dict(e) for e in events_of(s, row.receipt)]}


def resend_handed_over(s: Session, meta: StoreMeta, now: datetime) -> int:
    """The parent was restored: re-send every case handed over from here to its owner (above)."""
    sent = 0
    for row in s.exec(select(CaseRow).where(CaseRow.owner != meta.node_id).order_by(col(CaseRow.receipt))).all():
        if next_hop(meta.node_id, row.owner).direction is not Direction.UP:
            continue
        send(s, meta, target=row.owner, kind="transfer", case_key=row.receipt, priority=NORMAL,
             payload={**_whole_case(s, row), "recovery": True}, now=now)
        sent += 1
    return sent


def send_copies(s: Session, meta: StoreMeta, subtree: str, now: datetime) -> int:
    """Send every case owned here that originated in ``subtree`` (a restored node's) back to its origin."""
    sent = 0
    for row in s.exec(select(CaseRow).where(CaseRow.owner == meta.node_id, col(CaseRow.origin).startswith(subtree))
                      .order_by(col(CaseRow.receipt))).all():
        send(s, meta, target=row.origin, kind="copy", case_key=row.receipt, priority=NORMAL,
             payload=_whole_case(s, row), now=now)
        sent += 1
    return sent


def notify_owners_above(s: Session, meta: StoreMeta, child: str, now: datetime) -> int:
    """A child was restored: tell every owner above this node of cases from its subtree (as the
    summaries held here name them) to send their copies too."""
    owners = [o for (o,) in query(s, "SELECT DISTINCT owner FROM case_summary WHERE origin LIKE ? ORDER BY owner",
                                  (child + "%",))]
    told = 0
    for owner in owners:
        if owner and owner != meta.node_id and next_hop(meta.node_id, owner).direction is Direction.UP:
            send(s, meta, target=owner, kind="restored", case_key=f"restored:{child}", priority=NORMAL,
                 payload={"subtree": child}, now=now)
            told += 1
    return told


def request(s: Session, meta: StoreMeta, row: CaseRow, action: str, params: dict[str, Any], now: datetime) -> None:
    send(s, meta, target=row.owner, kind="request", case_key=row.receipt, priority=URGENT,
         payload={"receipt": row.receipt, "action": action, "params": params,
                  "requested_by": meta.node_id, "requested_at": utc_text(now)},
         now=now)


def send_catalog(s: Session, meta: StoreMeta, child: str, version: int, issuer: str,
                 items: list[dict[str, Any]], now: datetime) -> None:
    send(s, meta, target="", kind="catalog", case_key="catalog", priority=URGENT,
         payload={"version": version, "issuer": issuer, "items": items}, now=now, link=child)


def publish_local(s: Session, store: Any, catalog: Any, now: datetime, expected_version: int = 0) -> int:
    """A catalog published at this node: store it and send it to every registered child."""
    version = store.publish_catalog_in(s, catalog, now, expected_version=expected_version)
    items = [i.to_dict() for i in sorted(catalog.items, key=lambda i: i.code)]
    for child in s.exec(select(ChildLink.child_id)).all():
        send_catalog(s, store.meta, child, version, catalog.issuer, items, now)
    return version


# --- applying what arrives ---


class Replicator:
    def __init__(self, meta: StoreMeta, desk: RequestHandler, publish_catalog: Any, *,
                 kinds: Mapping[str, Callable[[Session, dict[str, Any]], None]] | None = None,
                 requests: Mapping[str, Callable[[Session, CaseRow, dict[str, Any], datetime], None]] | None = None,
                 ) -> None:
        self.meta = meta
        self.desk = desk
        # (session, version, issuer, items, now) -> bool: store a catalog version if newer
        self.publish_catalog = publish_catalog
        self.superseded = 0
        # Kinds applied by other parts of the node where they are addressed (``complaint``:
        # node.complaints); relays pass them on like any targeted envelope.
        self.kinds: Mapping[str, Callable[[Session, dict[str, Any]], None]] = kinds or {}
        # Requests that are not lifecycle actions, by action (``evaluate``: node.supervision);
        # the desk applies them, and records a refusal like any other.
        self.requests: Mapping[str, Callable[[Session, CaseRow, dict[str, Any], datetime], None]] = requests or {}

    def process(self, s: Session, env: Envelope, now: datetime) -> None:
        """Apply ``env`` here and/or pass it on. Raises ``ApplyError`` to quarantine it."""
        here = self.meta.node_id
        if env.kind == "catalog":
            self._catalog(s, env, now)
            return
        if env.kind == stats_store.KIND:  # statistics rows: every ancestor keeps them (like summaries)
            self._stats(s, env, now)
            return
        if env.kind in self.kinds:
            self._other_kind(s, env, now)
            return
        if env.kind not in (*TARGETED, "summary"):
            raise ApplyError(f"unknown envelope kind {env.kind!r}")
        try:
            hop = next_hop(here, env.target)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        if env.kind == "summary":
            self._summary(s, decode(env)["case"], now)
            if hop.direction is not Direction.HERE:
                forward(s, self.meta, env)
            return
        if hop.direction is not Direction.HERE:
            payload = decode(env)
            if "case" in payload:  # a relay keeps its view of the case fresh
                self._summary(s, payload["case"], now)
                self._refresh_copy(s, payload, now)
            forward(s, self.meta, env)
            return
        if not self._first_time(s, env, now):
            return
        handler = {"transfer": self._transfer, "event": self._event, "request": self._request,
                   "copy": self._copy, "restored": self._restored}[env.kind]
        handler(s, env, decode(env), now)

    def _other_kind(self, s: Session, env: Envelope, now: datetime) -> None:
        try:
            hop = next_hop(self.meta.node_id, env.target)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        if hop.direction is not Direction.HERE:
            forward(s, self.meta, env)
            return
        if not self._first_time(s, env, now):
            return
        try:
            self.kinds[env.kind](s, decode(env))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApplyError(f"{env.kind}: {exc}") from None

    def _first_time(self, s: Session, env: Envelope, now: datetime) -> bool:
        digest = hashlib.sha256(env.payload).hexdigest()
        seen = query(s, "SELECT payload_hash FROM applied_envelope WHERE origin = ? AND origin_incarnation = ? "
                        "AND origin_seq = ?", env.identity)
        if seen:
            if seen[0][0] != digest:
                raise ApplyError(
                    f"identity conflict: {env.origin}/{env.origin_incarnation}/{env.origin_seq} "
                    "was applied before with a different payload"
                )
            return False
        insert_rows(s, INSERT_APPLIED_SQL, {"origin": env.origin, "origin_incarnation": env.origin_incarnation,
                                            "origin_seq": env.origin_seq, "payload_hash": digest,
                                            "applied_at": utc_text(now)})
        return True

    def _transfer(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        if payload.get("recovery"):
            self._recover(s, env, payload, now)
            return
        incoming = payload["case"]
        known = query(s, "SELECT 1 FROM case_record WHERE receipt = ?", (incoming["receipt"],))
        previous_owner = env.origin
        if not known:
            # The usual case: a case this node has never held. Plain inserts, no ORM.
            columns = {**incoming, "owner": self.meta.node_id}
            insert_rows(s, INSERT_CASE_SQL, columns)
            insert_many(s, INSERT_EVENT_SQL, [{"superseded": False, **ev} for ev in payload["events"]])
            self.desk.record_take_over(s, columns, previous_owner, now)
            return
        row = s.get(CaseRow, incoming["receipt"])
        assert row is not None
        if row.owner_epoch >= incoming["owner_epoch"]:
            self._keep_superseded(s, payload["events"], row)
            return
        # A case this node held before (it owned it once): take the newer epoch's state.
        for k, v in incoming.items():
            setattr(row, k, v)
        row.owner = self.meta.node_id
        s.add(row)
        s.flush()
        have = {e.seq for e in events_of(s, row.receipt)}
        for ev in payload["events"]:
            if ev["seq"] not in have:
                s.add(CaseEventRow(**ev))
        s.flush()
        self.desk.record_take_over(s, row, previous_owner, now)

    def _recover(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        """A case re-sent after this node was restored: take it back if it was lost or is behind."""
        incoming = payload["case"]
        if not self._take_copy(s, payload, owner=self.meta.node_id):
            return
        # The copy holds the events this node wrote while it owned the case, the take-over
        # included, unless that never reached the sender: then it is recorded now, once.
        taken = any(ev["action"] == "take_over" and json.loads(ev["detail"] or "{}").get("epoch")
                    == incoming["owner_epoch"] for ev in payload["events"])
        if not taken:
            row = s.get(CaseRow, incoming["receipt"])
            assert row is not None
            self.desk.record_take_over(s, row, env.origin, now)

    def _copy(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        """The owner's whole case, for an origin restored from a backup: never a regression."""
        self._take_copy(s, payload, owner=payload["case"]["owner"])

    def _restored(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        subtree = payload.get("subtree")
        if not isinstance(subtree, str) or not subtree:
            raise ApplyError("restored: the notice names no subtree")
        send_copies(s, self.meta, subtree, now)

    def _take_copy(self, s: Session, payload: dict[str, Any], owner: str) -> bool:
        """Hold the case as ``payload`` has it, with ``owner``, if this node lacks it or holds an
        older state of it (an older epoch, or fewer events at the same one). Returns whether it did."""
        incoming = {**payload["case"], "owner": owner}
        held = query(s, "SELECT owner_epoch, event_count FROM case_record WHERE receipt = ?", (incoming["receipt"],))
        if not held:
            insert_rows(s, INSERT_CASE_SQL, incoming)
            insert_many(s, INSERT_EVENT_SQL, [{"superseded": False, **ev} for ev in payload["events"]])
            return True
        epoch, count = held[0]
        if (epoch, count) >= (incoming["owner_epoch"], incoming["event_count"]):
            return False
        have = {seq: tuple(identity) for seq, *identity in query(
            s, "SELECT seq, origin, origin_incarnation, origin_seq FROM case_event WHERE receipt = ?",
            (incoming["receipt"],))}
        for ev in payload["events"]:
            # A restored owner that recorded events before the copy came used positions its former
            # self had used: merging would mix two histories, so it is set aside for ops instead.
            mine = have.get(ev["seq"])
            if mine is not None and mine != (ev["origin"], ev["origin_incarnation"], ev["origin_seq"]):
                raise ApplyError(f"case {incoming['receipt']}: event {ev['seq']} here is not the copy's event "
                                 f"{ev['seq']}: the histories differ")
        insert_many(s, INSERT_EVENT_SQL, [{"superseded": False, **ev} for ev in payload["events"]
                                          if ev["seq"] not in have])
        execute(s, UPDATE_STATE_SQL, {**{k: v for k, v in incoming.items() if k in _STATE_COLUMNS},
                                      "event_count": incoming["event_count"], "receipt": incoming["receipt"]})
        return True

    def _event(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        incoming = payload["case"]
        held = query(s, "SELECT owner_epoch, event_count FROM case_record WHERE receipt = ?", (incoming["receipt"],))
        if not held:
            raise ApplyError(f"no case {incoming['receipt']} here to record its events on")
        epoch, count = held[0]
        if incoming["owner_epoch"] < epoch:
            row = s.get(CaseRow, incoming["receipt"])
            assert row is not None
            self._keep_superseded(s, payload["events"], row)
            return
        fresh = []
        for ev in sorted(payload["events"], key=lambda e: e["seq"]):
            if ev["seq"] <= count:
                continue
            if ev["seq"] != count + 1:
                raise ApplyError(f"case {incoming['receipt']}: event {ev['seq']} arrived before event {count + 1}")
            fresh.append({"superseded": False, **ev})
            count = ev["seq"]
        insert_many(s, INSERT_EVENT_SQL, fresh)
        if incoming["event_count"] >= count:
            state = {k: v for k, v in incoming.items() if k in _STATE_COLUMNS}
            execute(s, UPDATE_STATE_SQL, {**state, "event_count": incoming["event_count"], "receipt": incoming["receipt"]})
        elif fresh:
            execute(s, "UPDATE case_record SET event_count = ? WHERE receipt = ?", (count, incoming["receipt"]))

    def _request(self, s: Session, env: Envelope, payload: dict[str, Any], now: datetime) -> None:
        row = s.get(CaseRow, payload["receipt"])
        if row is None:
            raise ApplyError(f"request for case {payload['receipt']}, which this node has never held")
        if row.owner != self.meta.node_id:
            # The case moved on (escalated); the request follows it.
            forward(s, self.meta, Envelope(**{**env.__dict__, "target": row.owner}))
            return
        self.desk.apply_request(s, row, payload["action"], payload["params"], now,
                                self.requests.get(payload["action"]))

    def _summary(self, s: Session, case: dict[str, Any], now: datetime) -> None:
        case = {k: v for k, v in case.items() if k not in PERSONAL}
        values = {c: case.get(c) for c in _SUMMARY_COLUMNS}
        values["state"] = json.dumps(case, ensure_ascii=False, sort_keys=True)
        values["updated_at"] = utc_text(now)
        if not execute(s, UPSERT_SUMMARY_SQL, values):
            return  # what this node holds is as new or newer
        held = query(s, "SELECT owner, event_count FROM case_record WHERE receipt = ?", (case["receipt"],))
        if held and held[0][0] != self.meta.node_id and case["event_count"] > held[0][1]:
            row = s.get(CaseRow, case["receipt"])
            assert row is not None
            # A copy this node holds but does not own (the origin, or an earlier owner): refresh
            # its state; the events themselves come by ``event`` envelopes.
            self._overwrite_state(row, case, keep_count=True)
            s.add(row)

    def _refresh_copy(self, s: Session, payload: dict[str, Any], now: datetime) -> None:
        """An earlier owner relaying a case's later events keeps its own copy complete."""
        if "events" not in payload or not query(s, "SELECT 1 FROM case_record WHERE receipt = ?",
                                                (payload["case"]["receipt"],)):
            return
        row = s.get(CaseRow, payload["case"]["receipt"])
        if row is None or row.owner == self.meta.node_id:
            return
        for ev in sorted(payload["events"], key=lambda e: e["seq"]):
            if ev["seq"] == row.event_count + 1:
                s.add(CaseEventRow(**ev))
                row.event_count = ev["seq"]
        s.add(row)

    def _keep_superseded(self, s: Session, events: list[dict[str, Any]], row: CaseRow) -> None:
        have = {(e.origin, e.origin_incarnation, e.origin_seq) for e in events_of(s, row.receipt)}
        for ev in events:
            if (ev["origin"], ev["origin_incarnation"], ev["origin_seq"]) not in have and ev["seq"] > row.event_count:
                # Out of the normal numbering so it cannot collide; kept for the record.
                s.add(CaseEventRow(**{**ev, "seq": -ev["origin_seq"], "superseded": True}))
                self.superseded += 1

    @staticmethod
    def _overwrite_state(row: CaseRow, case: dict[str, Any], keep_count: bool = False) -> None:
        for k, v in case.items():
            if k in PERSONAL or k == "receipt" or (keep_count and k == "event_count"):
                continue
            setattr(row, k, v)

    def _stats(self, s: Session, env: Envelope, now: datetime) -> None:
        try:
            hop = next_hop(self.meta.node_id, env.target)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        try:
            stats_store.apply_stats(s, decode(env), env.origin, now)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        if hop.direction is not Direction.HERE:
            forward(s, self.meta, env)

    def _catalog(self, s: Session, env: Envelope, now: datetime) -> None:
        payload = decode(env)
        if not self.publish_catalog(s, payload["version"], payload["issuer"], payload["items"], now):
            return
        for child in s.exec(select(ChildLink.child_id)).all():
            send_catalog(s, self.meta, child, payload["version"], payload["issuer"], payload["items"], now)
