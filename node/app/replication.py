"""How cases travel the tree: what a change sends, and how a node applies what arrives.

Kinds of envelope (each has a typed payload in ``node.domain.messages``; JSON on the wire):

``transfer``  (to the new owner)  the whole case with personal data and all its events.
              Sent when a village agent point forwards a case to the level with authority,
              and when an owner escalates. The sender gives up ownership in the same
              transaction (owner = target, epoch + 1): one owner at a time, even in transit.
``event``     (to the origin)     new events and the state after them, so the applicant
              hears back where they applied. Relays on the way refresh their summary.
``summary``   (up to the city)    the state without personal data; every ancestor keeps
              it, for supervision and tracking.
``request``   (to the owner)      a supplement or a withdrawal made at another node, a rating
              or a delivery made at the window where the applicant applied; the
              owner applies it (or records why it could not) and the result flows back.
``catalog``   (to every descendant) a catalog version.
``complaint`` (to the supervisor and the node complained about) a complaint's newest version
              (see ``node.app.complaints``).
``stats``     (up to the city)    a node's statistics rows and report; every ancestor keeps the
              highest version of each (see ``node.app.statistics_ledger``).
``audit``     (up to the city)    a node's audit chain head; every ancestor checks that it extends
              the one held (see ``node.app.audit``).
``copy``      (to the origin)     the whole case with personal data and all its events, from
              its owner, after the origin came back as a new incarnation (restored from a
              backup, it forgot the cases it took since and their decisions). The origin takes
              it only if it lacks the case or holds fewer of its events: never a regression.
``revocation`` (to every descendant) a CA's revocation list (see ``node.app.revocations``).
``calendar``  (to every descendant) a year's official holiday schedule, published at the city
              (see ``node.app.calendar_years``).
``applicant`` (to the owner)     the applicant sealed to the owner, from the receiving node, when
              the case went without it (``node.app.keyring``: no certificate known then).
``restored``  (to an owner above) a node was restored: send a ``copy`` of every case you own
              that originated in its subtree (the parent of the restored node sends it).
``ancestor_restored`` (to every descendant, hop by hop) the named ancestor was restored: re-send
              what it may have lost (see below).
``custody``   (to the parent)     the whole case, from a node that owns a case it received
              itself (a village's own item, an immediate one): nobody else holds it whole, so
              its parent keeps the newest form (``case_custody``), the applicant sealed to the
              sender, never opened there.

Recovery after a restore (a neighbour seen with a new incarnation, ``node.app.links``):
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
  child's subtree and of every case it keeps in custody for the child that the child
  still owns (as the summaries held say), and a ``restored`` notice to every owner above
  it that its summaries name for cases from that subtree; each does the same for the
  cases it owns. A restored
  origin that had escalated a case after the backup (and so believes it still owns it)
  takes the newer owner's copy and holds it as an earlier owner.
* a child whose parent comes back restored re-sends, besides the cases it handed over, the
  custody of every case it owns that it received itself and its own statistics rows, and
  passes an ``ancestor_restored`` notice down its subtree: every node below re-sends the cases
  it handed over to owners at or above the restored node, and its statistics rows (an
  ancestor keeps its whole subtree's rows; only each node may send its own).

Personal data travels only in ``transfer`` and ``copy``, along the path between the
receiving node and the owner (and in ``custody``, sealed to its own sender), and is stored
only by the origin and the owners: the sender seals it to the target (``node.app.keyring``,
which the node puts in every session's ``info``), relays carry the box, and the target opens
it when it applies the case.

Applying is idempotent: link cursors drop repeats on each hop; the final target keeps the
identity and payload hash of everything it applied, forever (the same identity with
another payload is an alarm and goes to quarantine); events of one case apply in order
(a gap is refused, so the envelope is quarantined rather than merged out of order); a
transfer or event from an owner epoch older than the one known is kept in history,
flagged ``superseded``, and never merged into the state.

Applying a case that arrives is decode → decide → write: the payload is decoded into its
typed message, what this node holds of the case is read (``node.store.replicas``),
``federation.ownership.decide`` says what to do with it, and its verdict is written. The
rules live in that one pure function; this module only carries values between it and the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from govnet.federation.authority import (
    Refusal,
    check_addressed,
    check_ancestor_restored,
    check_custody,
    check_release,
    check_vouched,
)
from govnet.federation.ownership import Arrival, EventRef, Incoming, Verdict, Write, decide
from govnet.federation.routing import Direction, Hop, next_hop, root_of
from govnet.federation.tree import in_subtree, parent_id
from govnet.node.app import audit
from govnet.node.app import statistics_ledger as stats_store
from govnet.node.domain.catalog import Catalog, CatalogError
from govnet.node.domain.limits import catalog_violation
from govnet.node.domain.messages import (
    AncestorRestoredMessage,
    AnyMessage,
    AuditHeadMessage,
    CaseEvent,
    CaseSnapshot,
    CatalogMessage,
    CopyMessage,
    CustodyMessage,
    EventMessage,
    MessageError,
    RequestMessage,
    RestoredMessage,
    StatsMessage,
    SummaryMessage,
    TransferMessage,
    decode_message,
)
from govnet.node.store import audit as audit_chain
from govnet.node.store import custody, replicas
from govnet.node.store import links as link_store
from govnet.node.store.catalog import load_catalog
from govnet.node.store.models import CaseRow
from govnet.node.store.outbox import forward, send, send_encoded
from govnet.node.store.unit import StoreMeta, Unit, utc_text
from govnet.sync.envelope import Envelope

TARGETED = ("transfer", "event", "request", "copy", "restored")  # applied exactly once by one node
URGENT, NORMAL = 2, 0
REQUESTABLE = ("supplement", "withdraw")


class ApplyError(Exception):
    """This envelope cannot be applied; it goes to quarantine with this message."""


class Unauthorized(ApplyError):
    """The payload names what its sender may not speak for (``federation.authority``): the
    envelope is quarantined with the reason, and the refusal counted."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def vouch(origin: str, named: Sequence[str], what: str) -> None:
    """Raise ``Unauthorized`` unless every node in ``named`` lies in ``origin``'s subtree."""
    refusal = check_vouched(origin, named, what)
    if refusal is not None:
        raise Unauthorized(refusal)


def vouch_case(env: Envelope, case: CaseSnapshot) -> None:
    """Raise ``Unauthorized`` unless the case an envelope carries comes from its sender's
    subtree and goes to a node on its origin's path (``federation.authority``)."""
    what = f"the {env.kind} of case {case.receipt}"
    refusal = check_vouched(env.origin, (case.origin,), what) or check_addressed(env.target, case.origin, what)
    if refusal is not None:
        raise Unauthorized(refusal)


def check_release_in(s: Unit, meta: StoreMeta, catalog: Catalog, local: bool) -> None:
    """Raise ``Unauthorized`` unless ``catalog`` may be published at this node (read in the
    caller's transaction): ``local``: by a client here; else received from the parent."""
    here = meta.node_id
    parent = parent_id(here)
    isolated = local and parent is not None and not link_store.parent_incarnations(s, parent)
    current = load_catalog(s, here)
    inherited = {code: (current.sources[code][0], item.authority_level) for code, item in current.items.items()
                 if current.sources[code][0] != catalog.issuer}
    refusal = check_release(here, catalog.issuer, [(i.code, i.authority_level) for i in catalog.items], inherited,
                            local=local, isolated=isolated)
    if refusal is not None:
        raise Unauthorized(refusal)


class RequestHandler(Protocol):
    """The case desk, as the replicator needs it (to apply requests and record take-overs)."""

    def apply_request(self, s: Unit, row: CaseRow, action: str, params: dict[str, Any], now: datetime,
                      handler: Callable[[Unit, CaseRow, dict[str, Any], datetime], None] | None = None,
                      ) -> None: ...

    def record_take_over(self, s: Unit, row: CaseRow | dict[str, Any], previous_owner: str, now: datetime) -> None: ...


# --- what a change sends (called by the desk inside its transaction) ---


def announce(s: Unit, meta: StoreMeta, case: CaseRow | dict[str, Any], new_events: Sequence[dict[str, Any]],
             now: datetime, priority: int) -> None:
    """After the owner changed a case: events to the origin, summary to the ancestors.
    ``case``: its row, or the columns of a row just written by plain SQL."""
    state = replicas.snapshot_of(case, personal=False) if isinstance(case, CaseRow) else \
        CaseSnapshot.from_dict(case, personal=False)
    if state.origin != meta.node_id:
        events = tuple(CaseEvent.from_dict(e) for e in new_events)
        send(s, meta, target=state.origin, message=EventMessage(state, events), case_key=state.receipt,
             priority=priority, now=now)
    parent = parent_id(meta.node_id)
    if parent is not None:
        send_summary(s, meta, root_of(meta.node_id), state, priority, now)
        if state.owner == state.origin == meta.node_id:
            keep_in_custody(s, meta, parent, state.receipt, priority, now)


def send_summary(s: Unit, meta: StoreMeta, target: str, case: CaseSnapshot, priority: int, now: datetime) -> None:
    send(s, meta, target=target, message=SummaryMessage(case.public()), case_key=case.receipt, priority=priority,
         now=now)


class Sealer(Protocol):
    """The node's keyring, as replication needs it (``node.app.keyring.Keyring``)."""

    def leaving(self, s: Unit, case: CaseSnapshot, target: str, now: datetime) -> CaseSnapshot: ...

    def for_custody(self, case: CaseSnapshot) -> CaseSnapshot: ...

    def open_case(self, case: CaseSnapshot) -> CaseSnapshot: ...


def _keyring(s: Unit) -> Sealer | None:
    keyring: Sealer | None = s.info.get("keyring")
    return keyring


def _whole_case_for(s: Unit, row: CaseRow, target: str, now: datetime) -> tuple[CaseSnapshot, tuple[CaseEvent, ...]]:
    """The case and its history as they may leave this node for ``target``: the applicant sealed
    to it (or withheld, and owed). A store built without a keyring (no node around it) sends it as held."""
    case, events = replicas.whole_case(s, row)
    keyring = _keyring(s)
    return (keyring.leaving(s, case, target, now) if keyring is not None else case), events


def hand_over(s: Unit, meta: StoreMeta, row: CaseRow, target: str, now: datetime, priority: int) -> None:
    """Send the whole case to ``target``, which becomes its owner."""
    send(s, meta, target=target, message=TransferMessage(*_whole_case_for(s, row, target, now)), case_key=row.receipt,
         priority=priority, now=now)


def keep_in_custody(s: Unit, meta: StoreMeta, parent: str, receipt: str, priority: int, now: datetime) -> None:
    """Send the parent the whole case (a case this node received and owns itself) to keep."""
    row = replicas.case_row(s, receipt)
    assert row is not None
    case, events = replicas.whole_case(s, row)
    keyring = _keyring(s)
    send(s, meta, target=parent, message=CustodyMessage(keyring.for_custody(case) if keyring else case, events),
         case_key=receipt, priority=priority, now=now)


def resend_custody(s: Unit, meta: StoreMeta, now: datetime) -> int:
    """Send the parent (restored) again the custody of every case received and owned here."""
    parent = parent_id(meta.node_id)
    if parent is None:
        return 0
    receipts = replicas.cases_received_and_owned(s, meta.node_id)
    for receipt in receipts:
        keep_in_custody(s, meta, parent, receipt, NORMAL, now)
    return len(receipts)


def send_custody_back(s: Unit, meta: StoreMeta, child: str, now: datetime) -> int:
    """A child was restored: send it a ``copy`` of every case kept in custody for it that it still owns."""
    kept = custody.still_owned_by(s, child)
    for receipt, payload in kept:
        # A copy is written as custody is (one whole-case form): the payload goes back as it came,
        # the applicant still sealed to the child.
        send_encoded(s, meta, target=child, kind=CopyMessage.KIND, payload=payload, case_key=receipt,
                     priority=NORMAL, now=now)
    return len(kept)


def ancestor_restored(s: Unit, meta: StoreMeta, restored: str, now: datetime) -> dict[str, int]:
    """``restored`` (the parent, or an ancestor above it) came back from an older backup and
    forgot what it took since; only its subtree can give it back. Re-send every case handed over
    to an owner at or above it, the custody it kept (if it is the parent) and this node's own
    statistics, and pass the notice to the children, who do the same. Returns what was queued."""
    queued = {"cases": resend_handed_over(s, meta, now, at_or_above=restored),
              "custody": resend_custody(s, meta, now) if restored == parent_id(meta.node_id) else 0,
              "statistics": stats_store.resend_all(s, meta, now), "children": 0}
    for child in replicas.child_ids(s):
        send(s, meta, target="", message=AncestorRestoredMessage(restored), case_key=f"restored:{restored}",
             priority=NORMAL, now=now, link=child)
        queued["children"] += 1
    return queued


def resend_handed_over(s: Unit, meta: StoreMeta, now: datetime, at_or_above: str) -> int:
    """Re-send every case handed over from here to an owner above, at or above ``at_or_above``."""
    sent = 0
    for row in replicas.cases_owned_elsewhere(s, meta.node_id):
        if next_hop(meta.node_id, row.owner).direction is not Direction.UP or not in_subtree(at_or_above, row.owner):
            continue
        send(s, meta, target=row.owner, message=TransferMessage(*_whole_case_for(s, row, row.owner, now), recovery=True),
             case_key=row.receipt, priority=NORMAL, now=now)
        sent += 1
    return sent


def send_copies(s: Unit, meta: StoreMeta, subtree: str, now: datetime) -> int:
    """Send every case owned here that originated in ``subtree`` (a restored node's) back to its origin."""
    sent = 0
    for row in replicas.cases_owned_from(s, meta.node_id, subtree):
        send(s, meta, target=row.origin, message=CopyMessage(*_whole_case_for(s, row, row.origin, now)),
             case_key=row.receipt,
             priority=NORMAL, now=now)
        sent += 1
    return sent


def notify_owners_above(s: Unit, meta: StoreMeta, child: str, now: datetime) -> int:
    """A child was restored: tell every owner above this node of cases from its subtree (as the
    summaries held here name them) to send their copies too."""
    told = 0
    for owner in replicas.owners_in_summaries(s, child):
        if owner and owner != meta.node_id and next_hop(meta.node_id, owner).direction is Direction.UP:
            send(s, meta, target=owner, message=RestoredMessage(child), case_key=f"restored:{child}", priority=NORMAL,
                 now=now)
            told += 1
    return told


def request(s: Unit, meta: StoreMeta, row: CaseRow, action: str, params: dict[str, Any], now: datetime) -> None:
    request_to(s, meta, row.receipt, row.owner, action, params, now)


def request_to(s: Unit, meta: StoreMeta, receipt: str, owner: str, action: str, params: dict[str, Any],
               now: datetime) -> None:
    """A request to the owner of a case this node may hold only as a summary (an ancestor's)."""
    send(s, meta, target=owner, message=RequestMessage(receipt, action, params, meta.node_id, utc_text(now)),
         case_key=receipt, priority=URGENT, now=now)


def send_catalog(s: Unit, meta: StoreMeta, child: str, version: int, issuer: str,
                 items: Sequence[dict[str, Any]], now: datetime) -> None:
    send(s, meta, target="", message=CatalogMessage(version, issuer, tuple(items)), case_key="catalog",
         priority=URGENT, now=now, link=child)


def publish_local(s: Unit, store: Any, catalog: Any, now: datetime, expected_version: int = 0) -> int:
    """A catalog published at this node: store it and send it to every registered child.
    A release past the limits (``limits.catalog_violation``: lengths, counts, and a size that fits
    one sync batch) is refused with a ``CatalogError``, and one this node may not publish with
    ``Unauthorized``, before anything is stored."""
    check_release_in(s, store.meta, catalog, local=True)
    items = [i.to_dict() for i in sorted(catalog.items, key=lambda i: i.code)]
    violation = catalog_violation(catalog.issuer, items)
    if violation is not None:
        code, field, message = violation
        raise CatalogError(message, item_code=code or None, field=field)
    version = store.publish_catalog_in(s, catalog, now, expected_version=expected_version)
    for child in replicas.child_ids(s):
        send_catalog(s, store.meta, child, version, catalog.issuer, items, now)
    return int(version)


# --- applying what arrives ---

WholeCase = TransferMessage | CopyMessage | EventMessage
M = TypeVar("M", SummaryMessage, RequestMessage, RestoredMessage, CatalogMessage, CustodyMessage,
            AncestorRestoredMessage)
_ARRIVALS = {"transfer": Arrival.TRANSFER, "copy": Arrival.COPY, "event": Arrival.EVENTS}


def _ref(ev: CaseEvent) -> EventRef:
    return EventRef(ev.seq, ev.origin, ev.origin_incarnation, ev.origin_seq, ev.take_over_epoch)


def _incoming(arrival: Arrival, case: CaseSnapshot, events: Sequence[CaseEvent] = ()) -> Incoming:
    return Incoming(arrival, case.receipt, case.owner, case.owner_epoch, case.event_count,
                    tuple(_ref(e) for e in events))


class Replicator:
    def __init__(self, meta: StoreMeta, desk: RequestHandler, publish_catalog: Any, *,
                 kinds: Mapping[str, Callable[[Unit, Any], None]] | None = None,
                 requests: Mapping[str, Callable[[Unit, CaseRow, dict[str, Any], datetime], None]] | None = None,
                 down: Mapping[str, Callable[[Unit, Any, datetime], None]] | None = None,
                 ) -> None:
        self.meta = meta
        self.desk = desk
        # (session, version, issuer, items, now) -> bool: store a catalog version if newer
        self.publish_catalog = publish_catalog
        self.superseded = 0
        # Kinds applied by other parts of the node where they are addressed (``complaint``:
        # node.app.complaints), given the decoded message; relays pass them on like any
        # targeted envelope.
        self.kinds: Mapping[str, Callable[[Unit, Any], None]] = kinds or {}
        # Requests that are not lifecycle actions, by action (``evaluate``: node.app.supervision);
        # the desk applies them, and records a refusal like any other.
        self.requests: Mapping[str, Callable[[Unit, CaseRow, dict[str, Any], datetime], None]] = requests or {}
        # Kinds every node applies and passes down to its children itself, given the decoded
        # message (``revocation``: node.app.revocations).
        self.down: Mapping[str, Callable[[Unit, Any, datetime], None]] = down or {}

    def process(self, s: Unit, env: Envelope, now: datetime) -> None:
        """Apply ``env`` here and/or pass it on. Raises ``ApplyError`` to quarantine it."""
        if env.kind == CatalogMessage.KIND:
            self._catalog(s, env, now)
            return
        if env.kind == StatsMessage.KIND:  # statistics rows: every ancestor keeps them (like summaries)
            self._stats(s, env, now)
            return
        if env.kind == AuditHeadMessage.KIND:  # chain heads: every ancestor judges and keeps them
            self._audit(s, env, now)
            return
        if env.kind in self.kinds:
            self._other_kind(s, env, now)
            return
        if env.kind == CustodyMessage.KIND:
            self._custody(s, env, now)
            return
        if env.kind == AncestorRestoredMessage.KIND:
            restored = _decode_as(env, AncestorRestoredMessage).node
            refusal = check_ancestor_restored(self.meta.node_id, restored)
            if refusal is not None:
                raise Unauthorized(refusal)
            ancestor_restored(s, self.meta, restored, now)
            return
        if env.kind in self.down:
            try:
                self.down[env.kind](s, _decode(env), now)
            except ValueError as exc:
                raise ApplyError(f"{env.kind}: {exc}") from None
            return
        if env.kind not in (*TARGETED, SummaryMessage.KIND):
            raise ApplyError(f"unknown envelope kind {env.kind!r}")
        hop = self._hop(env)
        if env.kind == SummaryMessage.KIND:
            summary = _decode_as(env, SummaryMessage).case
            vouch_case(env, summary)
            self._summary(s, summary, now)
            if hop.direction is not Direction.HERE:
                forward(s, self.meta, env)
            return
        if hop.direction is not Direction.HERE:
            if env.kind in _ARRIVALS:  # a relay keeps its view of the case fresh
                message = _decode_case(env)
                vouch_case(env, message.case)
                self._summary(s, message.case, now)
                self._apply(s, _incoming(Arrival.RELAYED, message.case, message.events), message, previous_owner="",
                            now=now)
            forward(s, self.meta, env)
            return
        if not self._first_time(s, env, now):
            return
        if env.kind == RequestMessage.KIND:
            asked = _decode_as(env, RequestMessage)
            vouch(env.origin, (asked.requested_by,), f"a request about case {asked.receipt}")
            self._request(s, env, asked, now)
        elif env.kind == RestoredMessage.KIND:
            restored = _decode_as(env, RestoredMessage).subtree
            vouch(env.origin, (restored,), "a restored notice")
            send_copies(s, self.meta, restored, now)
        else:
            message = _opened(s, _decode_case(env))
            vouch_case(env, message.case)
            arrival = _ARRIVALS[env.kind]
            if isinstance(message, TransferMessage) and message.recovery:
                arrival = Arrival.RECOVERY
            self._apply(s, _incoming(arrival, message.case, message.events), message, env.origin, now)

    def _hop(self, env: Envelope) -> Hop:
        try:
            return next_hop(self.meta.node_id, env.target)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None

    def _other_kind(self, s: Unit, env: Envelope, now: datetime) -> None:
        if self._hop(env).direction is not Direction.HERE:
            forward(s, self.meta, env)
            return
        if not self._first_time(s, env, now):
            return
        try:
            self.kinds[env.kind](s, decode_message(env.kind, env.payload))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApplyError(f"{env.kind}: {exc}") from None

    def _first_time(self, s: Unit, env: Envelope, now: datetime) -> bool:
        digest = hashlib.sha256(env.payload).hexdigest()
        seen = replicas.applied_hash(s, env.identity)
        if seen is not None:
            if seen != digest:
                raise ApplyError(
                    f"identity conflict: {env.origin}/{env.origin_incarnation}/{env.origin_seq} "
                    "was applied before with a different payload"
                )
            return False
        replicas.record_applied(s, env.identity, digest, now)
        return True

    def _apply(self, s: Unit, incoming: Incoming, message: WholeCase, previous_owner: str, now: datetime) -> None:
        """Decide what to do with a case that arrived (``federation.ownership``) and write it."""
        history = incoming.arrival is not Arrival.RELAYED
        held = replicas.held_case(s, incoming.receipt, history=history)
        verdict = decide(self.meta.node_id, held, incoming)
        if verdict.refused:
            raise ApplyError(verdict.reason)
        self._write(s, message.case, message.events, verdict, previous_owner, now)

    def _write(self, s: Unit, case: CaseSnapshot, events: Sequence[CaseEvent], verdict: Verdict,
               previous_owner: str, now: datetime) -> None:
        """Write ``verdict`` for ``case``: its row, the events it names, a take-over."""
        by_seq = {e.seq: e for e in events}
        columns: dict[str, Any] | None = None
        if verdict.write is Write.NEW_CASE:
            columns = replicas.insert_case(s, case, verdict.owner)
        elif verdict.write is Write.WHOLE:
            replicas.replace_case(s, case, verdict.owner)
        replicas.add_events(s, [by_seq[seq] for seq in verdict.add])
        if verdict.superseded:
            replicas.keep_superseded(s, [by_seq[seq] for seq in verdict.superseded])
            self.superseded += len(verdict.superseded)
        if verdict.add or verdict.superseded:
            audit_chain.seal(s)  # the replicated events enter this node's audit chain in this unit
        if verdict.write is Write.STATE:
            replicas.write_state(s, case, verdict.owner, verdict.event_count)
        elif verdict.write is Write.STATE_KEEP_COUNT:
            replicas.write_state(s, case, verdict.owner, None)
        elif verdict.write is Write.COUNT:
            replicas.write_event_count(s, case.receipt, verdict.event_count)
        if verdict.take_over:
            # A case just inserted is recorded from its columns (no ORM on the usual path).
            row = columns if columns is not None else replicas.case_row(s, case.receipt)
            assert row is not None
            self.desk.record_take_over(s, row, previous_owner, now)

    def _request(self, s: Unit, env: Envelope, message: RequestMessage, now: datetime) -> None:
        row = replicas.case_row(s, message.receipt)
        if row is None:
            raise ApplyError(f"request for case {message.receipt}, which this node has never held")
        if row.owner != self.meta.node_id:
            # The case moved on (escalated); the request follows it.
            forward(s, self.meta, Envelope(**{**env.__dict__, "target": row.owner}))
            return
        handler = self.requests.get(message.action)
        params = dict(message.params)
        if handler is not None:
            params["node"] = env.origin  # who asks, as the envelope (authenticated by its link) says
        self.desk.apply_request(s, row, message.action, params, now, handler)

    def _summary(self, s: Unit, case: CaseSnapshot, now: datetime) -> None:
        if not replicas.store_summary(s, case, now):
            return  # what this node holds is as new or newer
        held = replicas.held_case(s, case.receipt, history=False)
        verdict = decide(self.meta.node_id, held, _incoming(Arrival.SUMMARY, case))
        self._write(s, case, (), verdict, "", now)

    def _custody(self, s: Unit, env: Envelope, now: datetime) -> None:
        """Keep a child's own case (its newest form); only the child that received and owns it
        may send it, and only to its parent."""
        case = _decode_as(env, CustodyMessage).case
        refusal = check_custody(self.meta.node_id, env.origin, env.target, case.origin, case.owner, case.receipt)
        if refusal is not None:
            raise Unauthorized(refusal)
        custody.keep(s, case.receipt, env.origin, case.owner_epoch, case.event_count, env.payload, now)

    def _stats(self, s: Unit, env: Envelope, now: datetime) -> None:
        hop = self._hop(env)
        try:
            message = StatsMessage.decode(env.payload)
        except MessageError as exc:
            raise ApplyError(f"malformed statistics report from {env.origin}: {exc}") from None
        vouch(env.origin, (message.report.node, *(row.node for row in message.rows)), "statistics")
        try:
            stats_store.apply_stats(s, message, env.origin, now)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        if hop.direction is not Direction.HERE:
            forward(s, self.meta, env)

    def _audit(self, s: Unit, env: Envelope, now: datetime) -> None:
        hop = self._hop(env)
        try:
            audit.apply_head(s, self.meta, AuditHeadMessage.decode(env.payload), env.origin, now, env.origin_seq)
        except (MessageError, ValueError) as exc:
            raise ApplyError(f"audit head from {env.origin}: {exc}") from None
        if hop.direction is not Direction.HERE:
            forward(s, self.meta, env)

    def _catalog(self, s: Unit, env: Envelope, now: datetime) -> None:
        message = _decode_as(env, CatalogMessage)
        items = [dict(i) for i in message.items]
        if not self.publish_catalog(s, message.version, message.issuer, items, now):
            return
        for child in replicas.child_ids(s):
            send_catalog(s, self.meta, child, message.version, message.issuer, items, now)


def _opened(s: Unit, message: WholeCase) -> WholeCase:
    """``message`` with an applicant sealed to this node opened (it is the target)."""
    keyring = _keyring(s)
    if keyring is None or message.case.personal is None or isinstance(message, EventMessage):
        return message
    return replace(message, case=keyring.open_case(message.case))


def _decode(env: Envelope) -> AnyMessage:
    """The typed payload of ``env``; a malformed one is refused."""
    try:
        return decode_message(env.kind, env.payload)
    except MessageError as exc:
        raise ApplyError(f"{env.kind}: {exc}") from None


def _decode_as(env: Envelope, kind: type[M]) -> M:
    message = _decode(env)
    assert isinstance(message, kind)
    return message


def _decode_case(env: Envelope) -> WholeCase:
    """The payload of an envelope that carries a case (``transfer``, ``copy``, ``event``)."""
    message = _decode(env)
    assert isinstance(message, TransferMessage | CopyMessage | EventMessage)
    return message
