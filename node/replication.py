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

Personal data travels only in ``transfer``, along the path from the receiving node to the
owner, and is stored only by the origin and the owners.

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
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from federation.routing import Direction, next_hop, root_of
from federation.tree import parent_id
from node.models import AppliedEnvelope, CaseEventRow, CaseRow, ChildLink
from node.outbox import decode, forward, send
from node.store import INSERT_CASE_SQL, INSERT_EVENT_SQL, StoreMeta, execute, insert_many, insert_rows, insert_sql, query, utc_text
from sync.envelope import Envelope

PERSONAL = ("applicant_name", "applicant_id", "applicant_phone")
TARGETED = ("transfer", "event", "request")  # applied exactly once by one node
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

    def apply_request(self, s: Session, row: CaseRow, action: str, params: dict[str, Any], now: datetime) -> None: ...

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
    def __init__(self, meta: StoreMeta, desk: RequestHandler, publish_catalog: Any) -> None:
        self.meta = meta
        self.desk = desk
        # (session, version, issuer, items, now) -> bool: store a catalog version if newer
        self.publish_catalog = publish_catalog
        self.superseded = 0

    def process(self, s: Session, env: Envelope, now: datetime) -> None:
        """Apply ``env`` here and/or pass it on. Raises ``ApplyError`` to quarantine it."""
        here = self.meta.node_id
        if env.kind == "catalog":
            self._catalog(s, env, now)
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
        handler = {"transfer": self._transfer, "event": self._event, "request": self._request}[env.kind]
        handler(s, env, decode(env), now)

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
        self.desk.apply_request(s, row, payload["action"], payload["params"], now)

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

    def _catalog(self, s: Session, env: Envelope, now: datetime) -> None:
        payload = decode(env)
        if not self.publish_catalog(s, payload["version"], payload["issuer"], payload["items"], now):
            return
        for child in s.exec(select(ChildLink.child_id)).all():
            send_catalog(s, self.meta, child, payload["version"], payload["issuer"], payload["items"], now)
