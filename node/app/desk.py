"""The case desk: intake and actions as units of work over the store.

Each call is one transaction: validate everything first, then read what is needed,
run the pure lifecycle, and write the new state together with its event (and, at
intake, the idempotency key and the receipt counter). A refused call raises and
leaves the store exactly as it was.

The window where the applicant applied delivers a completed case whoever owns it: it keeps its
own record of the delivery (shown at once) and asks the owner to record it (see "one window
receives, one window delivers" below).

The desk decides nothing about a case itself: a clerk's action, the hand-over that sends a
case up, the take-over that records it arrived, a request refused on the record, and the
steps supervision takes are all decided by the lifecycle's table (``lifecycle.decide``);
the desk writes the verdict (the new state, its events, the messages they cause).

Errors carry a ``kind`` the gRPC layer maps to a status code; their text is one line a
clerk can act on, and ``field``: the path of the request field at fault (``applicant.name``,
``materials[3]``), which the gRPC layer turns into a field violation.

Limits (``node.domain.limits``): every text a request carries is cleaned by its field's rule
(``node.domain.text``) and bounded before any unit of work starts (``checked``,
``checked_list``: supervision and complaints use the same two); required fields that are
empty are refused naming the field. A step that would make the case's encoded size (its
hand-over payload) exceed its budget is refused before anything is written: a step that may
repeat fills a case up to ``RECORD_CASE_BYTES``, a step toward its end up to
``PROGRESS_CASE_BYTES`` (``limits.case_budget``), a refused request the node records up to
``MAX_CASE_BYTES``; the room left is for the alarms and hand-overs a full case still earns.
So a full case can still be decided and closed, and no case grows past what one sync batch
carries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from govnet.federation.authority import check_window_delivery
from govnet.federation.routing import deciding_node
from govnet.federation.tree import Level, parent_id
from govnet.node.app import replication
from govnet.node.app.wakeup import Wakeup
from govnet.node.domain import limits
from govnet.node.domain.applicant import Applicant, ApplicantError
from govnet.node.domain.backdating import backdating_refusal
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.domain.fees import PaymentMethod, check_method, parse_yuan
from govnet.node.domain.lifecycle import (
    FINISHED,
    SYSTEM_ACTOR,
    TERMINAL,
    Action,
    ActionRefused,
    ActParams,
    CaseState,
    Context,
    EventDraft,
    HandOver,
    InvalidParams,
    LifecycleError,
    Moment,
    Note,
    Status,
    SystemAction,
    TakeOver,
    Transition,
    act,
    decide,
    intake,
    may_deliver,
)
from govnet.node.domain.limits import MAX_CASE_BYTES, case_budget, excerpt, limit_of
from govnet.node.domain.messages import TransferMessage, dumps
from govnet.node.domain.notice import NoticeFacts, latest_notice
from govnet.node.domain.people import NO_FACTS, Facts, Op, Person, authorize
from govnet.node.domain.receipt import Receipt, ReceiptError
from govnet.node.domain.text import TextError, clean, clean_all
from govnet.node.store import deliveries, replicas
from govnet.node.store.case_history import state_of, step_times, write_state
from govnet.node.store.cases import (
    CaseRecord,
    StoredEvent,
    append_event,
    find_idempotency,
    find_recent_duplicate,
    get_case,
    insert_case,
    load_case_row,
    record_from_row,
    record_idempotency,
    state_columns,
    update_case,
)
from govnet.node.store.cases import events as case_events
from govnet.node.store.catalog import PublishedCatalog
from govnet.node.store.engine import Store
from govnet.node.store.models import CaseRow
from govnet.node.store.unit import Unit, next_value, utc_text

log = logging.getLogger("govnet.desk")
_REMEMBERED_CASES = 4096  # cases whose history size the desk remembers (most recently acted on)
MAX_KEY_LENGTH = limits.KEY
# A request from another node that is not a lifecycle action: (session, row, params, now).
RequestHandler = Callable[[Unit, CaseRow, dict, datetime], None]


class ErrorKind(StrEnum):
    INVALID = "invalid"  # INVALID_ARGUMENT
    NOT_FOUND = "not_found"  # NOT_FOUND
    PRECONDITION = "precondition"  # FAILED_PRECONDITION
    CONFLICT = "conflict"  # ALREADY_EXISTS
    UNAUTHENTICATED = "unauthenticated"  # UNAUTHENTICATED: no valid token
    DENIED = "denied"  # PERMISSION_DENIED: the person's roles do not allow it (node.domain.people)


class DeskError(Exception):
    def __init__(self, kind: ErrorKind, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def checked(message: str, field: str, value: str, *, required: bool | None = None, what: str = "") -> str:
    """``value`` of ``message.field`` cleaned by its rule and within its limit (``limits.LIMITS``),
    or ``DeskError(INVALID)`` naming the field. ``required``: overrides the table (a field that is
    required only for some actions); ``what``: how an empty required field is asked for."""
    limit = limit_of(message, field)
    try:
        text = clean(value, limit.kind, limit.chars, field)
    except TextError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), field) from None
    if not text and (limit.required if required is None else required):
        raise DeskError(ErrorKind.INVALID, f"{field} is required" + (f": {what}" if what else ""), field)
    return text


def checked_list(message: str, field: str, values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Each entry of a repeated field cleaned and bounded; the error names the entry (``materials[3]``)."""
    limit = limit_of(message, field)
    try:
        return clean_all(tuple(values), limit.kind, limit.chars, limit.entries, field)
    except TextError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), field if exc.index is None else f"{field}[{exc.index}]") from None


def check_submit(cmd: SubmitCommand) -> SubmitCommand:
    """The application with every text cleaned and bounded (the applicant is checked apart)."""
    agent = checked("SubmitCaseRequest", "agent", cmd.agent)
    return replace(
        cmd,
        idempotency_key=checked("SubmitCaseRequest", "idempotency_key", cmd.idempotency_key,
                                what="any unique string per application"),
        item_code=checked("SubmitCaseRequest", "item_code", cmd.item_code, what="the code of the service item"),
        materials=checked_list("SubmitCaseRequest", "materials", cmd.materials),
        agent=agent,
        note=checked("SubmitCaseRequest", "note", cmd.note),
        # A village agent carrying the case (代办) may stand in for the clerk.
        actor=checked("SubmitCaseRequest", "actor", cmd.actor, required=not agent,
                      what="the clerk or agent receiving the case"),
    )


def check_params(action: str, params: ActParams) -> tuple[str, ActParams]:
    """A clerk's action and its parameters, every text cleaned and bounded."""
    m = "ActRequest"
    action = checked(m, "action", action, what="what to do with the case (accept, review, approve …)")
    return action, replace(
        params,
        actor=checked(m, "actor", params.actor, what=f"who does this {action}? the clerk's name or id"),
        reason=checked(m, "reason", params.reason),
        materials=checked_list(m, "materials", params.materials),
        departments=checked_list(m, "departments", params.departments),
        department=checked(m, "department", params.department),
        approver=checked(m, "approver", params.approver),
        # A payment's method and number (``pay``): bounded as PayFeeRequest states them.
        method=checked("PayFeeRequest", "method", params.method, required=False),
        number=checked("PayFeeRequest", "number", params.number, required=False),
    )


@dataclass(frozen=True)
class SubmitCommand:
    idempotency_key: str
    item_code: str
    applicant_name: str
    applicant_id: str
    applicant_phone: str
    materials: tuple[str, ...]
    agent: str = ""
    note: str = ""
    actor: str = ""
    happened_at: datetime | None = None  # a paper application entered later (back-filled)
    person: Person | None = None  # who is at the window (authenticated): checked against the item's department

    def fingerprint(self) -> str:
        """What the idempotency key is bound to: every field but the key itself."""
        body = {
            "item": self.item_code.strip(),
            "name": self.applicant_name.strip(),
            "id": self.applicant_id.strip().upper(),
            "phone": self.applicant_phone.strip(),
            "materials": sorted(m.strip() for m in self.materials),
            "agent": self.agent.strip(),
            "note": self.note.strip(),
            "actor": self.actor.strip(),
            # Only when given, so the keys of every earlier request keep their hash.
            **({"happened_at": utc_text(self.happened_at)} if self.happened_at else {}),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    record: CaseRecord
    replayed: bool
    rating_code: str = ""  # the applicant's one-time rating code, shown once (printed on the receipt)


@dataclass(frozen=True)
class Acted:
    record: CaseRecord
    forwarded_to: str = ""  # set when this node is not the owner and sent the request on


class CaseDesk:
    def __init__(self, store: Store, calendar: WorkCalendar, clock: Clock, duplicate_window_days: int, *,
                 backfill_after: timedelta = timedelta(hours=1), outbox_filled: Wakeup | None = None,
                 rating_codes: Callable[[Unit, str], str] | None = None) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.duplicate_window = timedelta(days=duplicate_window_days)
        # Rung after a committed change (it may have queued messages): the node's link driver
        # listens, so new cases leave at once instead of at the next interval.
        self.after_commit: Callable[[], None] = (outbox_filled or Wakeup()).ring
        # An event entered this long after it happened is flagged ``backfilled`` in its detail
        # (``supervision.backfill_after_s`` in the configuration).
        self.backfill_after = backfill_after
        # (unit, receipt) -> a fresh one-time rating code for the receipt (node.app.accounts), in the intake's unit
        self.rating_codes = rating_codes
        # receipt -> ((event_count, updated_at) of its row, the case's encoded bytes): ``check_size``.
        self._case_bytes: OrderedDict[str, tuple[tuple[int, str], int]] = OrderedDict()

    async def submit(self, cmd: SubmitCommand) -> Submitted:
        """Intake one application: validation here, the unit of work on the store's writer."""
        catalog = self.store.cached_catalog or await asyncio.to_thread(self.store.catalog)
        done = await self.store.run_unit(self._intake_work(cmd, catalog))
        if not done.replayed:
            self.after_commit()
        return done

    def _intake_work(self, cmd: SubmitCommand, catalog: PublishedCatalog | None = None) -> Callable[[Unit], Submitted]:
        """Validate an application (raising ``DeskError``) and return its unit of work."""
        cmd = check_submit(cmd)
        key = cmd.idempotency_key
        try:
            applicant = Applicant.create(cmd.applicant_name, cmd.applicant_id, cmd.applicant_phone,
                                         today=local_date(self.clock.now()))
        except ApplicantError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), f"applicant.{exc.field}") from None
        catalog = catalog or self.store.catalog()
        if not catalog.items:
            raise DeskError(ErrorKind.PRECONDITION, "no catalog is loaded on this node: run 'govnet catalog load FILE' first")
        code = cmd.item_code.strip()
        item = catalog.items.get(code)
        if item is None:
            releases = ", ".join(f"{i} v{v}" for i, v in sorted(catalog.releases.items()))
            raise DeskError(ErrorKind.NOT_FOUND, f"no item {code} in catalog version {catalog.version} "
                            f"(releases here: {releases})", "item_code")
        if cmd.person is not None:
            check_allowed(cmd.person, Op.SUBMIT, Facts(department=item.department))
        check_happened(cmd.happened_at, self.clock.now())
        fingerprint = cmd.fingerprint()
        release = catalog.sources[code]
        return lambda s: self._submit(s, cmd, key, fingerprint, applicant, item, release)

    def _submit(self, s: Unit, cmd: SubmitCommand, key: str, fingerprint: str, applicant: Applicant,
                item: ServiceItem, release: tuple[str, int]) -> Submitted:
        meta = self.store.meta
        now = self.clock.now()
        seen = find_idempotency(s, key)
        if seen is not None:
            seen_hash, seen_receipt = seen
            if seen_hash != fingerprint:
                raise DeskError(
                    ErrorKind.CONFLICT,
                    f"idempotency key {excerpt(key)} was already used for another application "
                    f"(receipt {seen_receipt}); use a new key for a new application",
                    "idempotency_key",
                )
            row = load_case_row(s, seen_receipt)
            assert row is not None
            return Submitted(record_from_row(row), replayed=True)
        receipt = Receipt(meta.node_id, meta.incarnation, next_value(s, "case_seq"))
        happened = cmd.happened_at or now
        try:
            transition = intake(
                receipt=str(receipt),
                item=item,
                node_id=meta.node_id,
                node_level=meta.level,
                now=happened,
                catalog_version=release[1],
                catalog_issuer=release[0],
                materials=cmd.materials,
                agent=cmd.agent.strip(),
                actor=cmd.actor or cmd.agent,
                note=cmd.note,
            )
        except LifecycleError as exc:
            raise _desk_error(exc) from None
        duplicate_of = ""
        if self.duplicate_window:
            duplicate_of = find_recent_duplicate(s, applicant.id_number, item.code, now - self.duplicate_window) or ""
        record = CaseRecord(
            state=transition.case,
            applicant=applicant,
            item_name=item.name,
            department=item.department,
            possible_duplicate=bool(duplicate_of),
            duplicate_of=duplicate_of,
        )
        columns = insert_case(s, record, now)
        event = append_event(s, meta, record.state.receipt, 1, self._flagged(transition.event, happened, now), now,
                             happened=happened)
        record_idempotency(s, key, fingerprint, record.state.receipt, now)
        if meta.level is Level.VILLAGE and item.authority_level is not Level.VILLAGE:
            # A village agent point carries the case (代办) to the level with authority at once.
            row = load_case_row(s, record.state.receipt)
            assert row is not None
            self._hand_over(s, row, record.state, deciding_node(meta.node_id, item.authority_level), now,
                            actor=cmd.agent or cmd.actor, prior_events=[event])
            return Submitted(record_from_row(row), replayed=False, rating_code=self._rating_code(s, record.state.receipt))
        replication.announce(s, meta, columns, [event], now, self._priority(record.state, now))
        return Submitted(record, replayed=False, rating_code=self._rating_code(s, record.state.receipt))

    def _rating_code(self, s: Unit, receipt: str) -> str:
        return self.rating_codes(s, receipt) if self.rating_codes is not None else ""

    async def act(self, receipt_text: str, action: str, params: ActParams,
                  happened_at: datetime | None = None, person: Person | None = None) -> Acted:
        """One action on a case: the unit of work goes straight to the store's writer.

        ``person``: who acts (authenticated): their roles are checked against the case's department
        (``node.domain.people``) and the event records them, whatever ``params.actor`` says."""
        receipt = self._parse_receipt(receipt_text)
        action, params = check_params(action, params)
        check_happened(happened_at, self.clock.now())
        if person is not None:
            params = replace(params, actor=person.actor)
        acted = await self.store.run_unit(lambda s: self._act(s, receipt, action, params, happened_at, person))
        self.after_commit()
        return acted

    def _act(self, s: Unit, receipt: str, action: str, params: ActParams,
             happened_at: datetime | None = None, person: Person | None = None) -> Acted:
        meta = self.store.meta
        now = self.clock.now()
        row = load_case_row(s, receipt)
        if row is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {meta.node_id}", "receipt")
        if person is not None and action in ACTIONS:
            # A joint opinion is given by the reviewing department, every other action by the case's own.
            department = params.department.strip() if action == "opinion" else row.department
            check_allowed(person, action, Facts(department=department))
        if row.owner != meta.node_id and action == Action.DELIVER and row.origin == meta.node_id:
            return self._deliver_at_window(s, row, params, happened_at or now, now)
        if row.owner != meta.node_id:
            if action not in replication.REQUESTABLE:
                raise DeskError(
                    ErrorKind.PRECONDITION,
                    f"case {receipt} is handled by node {row.owner}; only a "
                    f"{' or '.join(replication.REQUESTABLE)} can be requested from here",
                )
            if not params.actor.strip():
                raise DeskError(ErrorKind.INVALID, f"who requests this {action}? give the actor", "actor")
            replication.request(s, meta, row, action, _params_dict(params), now)
            return Acted(record_from_row(row), forwarded_to=row.owner)
        self._apply(s, row, action, params, now, happened_at)
        return Acted(record_from_row(row))

    # --- one window receives, one window delivers (一窗受理、一窗出件) ---
    #
    # The window where the applicant applied (the case's origin) hands the result over whoever
    # owns the case. The owner stays the case's only writer: the origin keeps its own record of
    # the delivery (``window_delivery``: shown at once, also while its link up is down) and
    # queues a ``deliver`` request to the owner in the same transaction; the owner records the
    # delivery as its event when the request arrives (store-and-forward: exactly once, as every
    # targeted envelope) and announces it like any other, so the origin's copy and every
    # ancestor's summary say ``delivered``. Order across links: the origin delivers only a case
    # its copy shows completed, and that state reached it from the owner, which never leaves
    # ``completed`` but by delivering; so the request finds the case completed, or already
    # delivered at the owner's own window (then it is refused on the record). One exception: an
    # owner restored from a backup taken before it completed the case may see the request before
    # the origin's recovery transfer gives the completion back; it refuses it on the record too
    # (visible in the history at both ends), and the window's own record stays. A rating made
    # at the origin after the delivery is queued behind the request on the same outbox, so the
    # owner applies the delivery first.

    def _deliver_at_window(self, s: Unit, row: CaseRow, params: ActParams, happened: datetime,
                           now: datetime) -> Acted:
        meta = self.store.meta
        held = deliveries.delivered_here(s, row.receipt)
        if held is not None:
            raise DeskError(ErrorKind.PRECONDITION, f"case {row.receipt} was already delivered at this window "
                            f"({held.at} by {held.actor})")
        refusal = may_deliver(record_from_row(row).state)
        if refusal is not None:
            raise DeskError(ErrorKind.PRECONDITION, f"{refusal} (as node {meta.node_id} has heard from its owner "
                            f"{row.owner})")
        refused = backdating_refusal(Action.DELIVER.value, happened, step_times(s, row.receipt))
        if refused is not None:
            raise DeskError(ErrorKind.INVALID, refused, "happened_at")
        done = deliveries.record(s, row.receipt, params.actor, happened, now)
        replication.request(s, meta, row, Action.DELIVER.value,
                            {"actor": params.actor, "delivered_at": done.at}, now)
        return Acted(self._seen_here(record_from_row(row), done), forwarded_to=row.owner)

    def deliver_request(self, s: Unit, row: CaseRow, params: dict[str, Any], now: datetime) -> None:
        """A delivery recorded at the window where the applicant applied, arriving at the owner
        (``params["node"]``: the sender, as its envelope says): recorded as the owner's ``deliver``
        event, at the time it happened there; refused on the record from any other node."""
        node = str(params.get("node", ""))
        refusal = check_window_delivery(node, row.origin, row.receipt)
        if refusal is not None:
            raise DeskError(ErrorKind.DENIED, str(refusal))
        actor = str(params.get("actor", "")).strip()
        happened: datetime | None = None
        try:
            happened = datetime.fromisoformat(str(params.get("delivered_at", "")))
        except ValueError:
            happened = None
        if (happened is None or happened.tzinfo is None or happened > now
                or backdating_refusal(Action.DELIVER.value, happened, step_times(s, row.receipt)) is not None):
            happened = None  # a clock that disagrees: the owner records it as of now
        _, checked_params = check_params(Action.DELIVER.value, ActParams(actor=f"{actor}@{node}", at=node))
        self._apply(s, row, Action.DELIVER.value, checked_params, now, happened)

    def seen_here(self, s: Unit, record: CaseRecord) -> CaseRecord:
        """The case as this node shows it: its row, and a delivery made at this window that its
        owner has not recorded yet (read in the caller's session)."""
        return self._seen_here(record, deliveries.delivered_here(s, record.state.receipt))

    @staticmethod
    def _seen_here(record: CaseRecord, delivered: deliveries.Delivered | None) -> CaseRecord:
        if delivered is None:
            return record
        state = record.state
        if state.status is Status.COMPLETED:
            state = replace(state, status=Status.DELIVERED)
        return replace(record, state=state, window_delivery=delivered)

    def _apply(self, s: Unit, row: CaseRow, action: str, params: ActParams, now: datetime,
               happened_at: datetime | None = None) -> None:
        """Run one lifecycle action on an owned case, write it, and send what it causes.

        ``happened_at``: when it really happened, for an action entered later (back-filled);
        the lifecycle runs at that time (its dates count from it), the network records it now."""
        meta = self.store.meta
        record = record_from_row(row)
        happened = happened_at or now
        past = step_times(s, row.receipt)
        if happened_at is not None:
            refusal = backdating_refusal(action, happened_at, past)
            if refusal is not None:
                raise DeskError(ErrorKind.INVALID, refusal, "happened_at")
        item = self._item_at(record.state.catalog_issuer, record.state.catalog_version, record.state.item_code)
        ctx = Context(item=item, node_id=meta.node_id, node_level=meta.level, now=happened, calendar=self.calendar,
                      past=past)
        try:
            transition = act(record.state, action, params, ctx)
        except LifecycleError as exc:
            raise _desk_error(exc) from None
        self.check_size(s, row, record.state, transition, now, case_budget(action))
        update_case(s, row, transition.case, now)
        event = append_event(s, meta, row.receipt, transition.case.event_count,
                             self._flagged(transition.event, happened, now), now, happened=happened)
        # Escalating hands the case up; a step that leaves an escalated case as it is (the green
        # channel at the node it was escalated to) hands nothing over.
        if (transition.case.status is Status.ESCALATED and record.state.status is not Status.ESCALATED
                and parent_id(meta.node_id) is not None):
            self._hand_over(s, row, transition.case, deciding_node(meta.node_id, item.authority_level), now,
                            actor=params.actor, prior_events=[event])
        else:
            replication.announce(s, meta, row, [event], now, self._priority(transition.case, now))

    def _hand_over(self, s: Unit, row: CaseRow, state: CaseState, target: str, now: datetime, *,
                   actor: str, prior_events: list) -> None:
        """Give the case to ``target``: record it, then send the whole case (same transaction)."""
        handed = decide(state, SystemAction.HAND_OVER, HandOver(to=target, actor=actor or SYSTEM_ACTOR),
                        self.moment(now))
        events = self._write(s, row, handed, now)
        s.flush()
        priority = replication.URGENT if state.status is Status.ESCALATED else self._priority(handed.case, now)
        # The events up to the hand-over reach the origin with the transfer itself (it passes there first
        # or starts there); only the ancestors need the summary now.
        replication.announce(s, self.store.meta, row, [*prior_events, *events], now, priority)
        replication.hand_over(s, self.store.meta, row, target, now, priority)

    def apply_request(self, s: Unit, row: CaseRow, action: str, params: dict, now: datetime,
                      handler: RequestHandler | None = None) -> None:
        """A request made at another node, applied here by the owner (or refused, on the record).

        ``handler``: for a request that is not a lifecycle action (a rating: ``node.app.supervision``),
        raising ``DeskError`` to refuse it."""
        try:
            if handler is not None:
                handler(s, row, params, now)
                return
            fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
            # Checked where it was made; checked again here, by this node's limits, before it is applied.
            checked_action, checked_params = check_params(action, ActParams(**fields))
            self._apply(s, row, checked_action, checked_params, now)
        except DeskError as exc:
            refused = Note(actor=params.get("actor", ""), reason=str(exc), detail={"requested": action})
            try:
                self.write_transition(s, row, self.decide(record_from_row(row).state, SystemAction.REQUEST_REFUSED,
                                                          refused, now), now, budget=MAX_CASE_BYTES)
            except DeskError as full:
                # The case cannot hold even the record of the refusal: the request is dropped
                # (it was refused anyway), said in the log, and the case stays within its limit.
                log.warning("request %s on case %s refused and not recorded: %s", action, row.receipt, full)

    def record_take_over(self, s: Unit, row: CaseRow | dict[str, Any], previous_owner: str, now: datetime) -> None:
        """Record that this node now owns the case (``row``: the ORM row, or the columns of
        a row just inserted by plain SQL)."""
        state = state_of(row) if isinstance(row, dict) else record_from_row(row).state
        taken = self.decide(state, SystemAction.TAKE_OVER, TakeOver(previous_owner), now)
        if isinstance(row, dict):
            write_state(s, row, state, taken.case, now)
            events = [append_event(s, self.store.meta, row["receipt"], taken.case.event_count, taken.event, now)]
            replication.announce(s, self.store.meta, row, events, now, self._priority(taken.case, now))
        else:
            self.write_transition(s, row, taken, now)

    def _flagged(self, draft: EventDraft, happened: datetime, now: datetime) -> EventDraft:
        """The event, marked ``backfilled`` when it is recorded long after it happened."""
        if now - happened <= self.backfill_after:
            return draft
        return replace(draft, detail={**draft.detail, "backfilled": True})

    def moment(self, now: datetime) -> Moment:
        """Where and when a system step happens: here, now."""
        meta = self.store.meta
        return Moment(node_id=meta.node_id, node_level=meta.level, now=now, calendar=self.calendar)

    def decide(self, state: CaseState, step: SystemAction, params: Any, now: datetime) -> Transition:
        """A system step on the lifecycle's table, here and now; a refusal is a ``DeskError``
        (``FAILED_PRECONDITION``: the step is not possible for this case now)."""
        try:
            return decide(state, step, params, self.moment(now))
        except LifecycleError as exc:
            raise _desk_error(exc) from None

    def write_transition(self, s: Unit, row: CaseRow, transition: Transition, now: datetime,
                         budget: int | None = None) -> None:
        """A step decided outside a clerk's action (an alarm, a timeout default, a rating…), written and announced.

        ``budget``: refuse the step (``DeskError``, nothing written) if the case would outgrow it —
        ``case_budget(step)`` for a person's step (a rating, an appeal), ``MAX_CASE_BYTES`` for a
        refused request; None for the node's bounded own steps (alarms, timeout agreements),
        which the room above the other budgets is for."""
        if budget is not None:
            self.check_size(s, row, record_from_row(row).state, transition, now, budget)
        events = self._write(s, row, transition, now)
        replication.announce(s, self.store.meta, row, events, now, self._priority(transition.case, now))

    def check_size(self, s: Unit, row: CaseRow, before: CaseState, transition: Transition, now: datetime,
                   budget: int) -> None:
        """Refuse ``transition`` (FAILED_PRECONDITION) if the case it makes would encode, as a hand-over
        carries it, to more than ``budget`` bytes. Computed before anything is written: the case as
        it is now, plus what the new state and the new events add (each event as it will be stored).

        Reading a case's whole history for every action would add a third to an action's cost, so
        the size it reaches is remembered per case, keyed by what its row will say about it (its
        count of events and the instant it was last written): any other change to the case (an
        alarm, a take-over, a rolled-back unit) changes that key and the case is read again."""
        remembered = self._case_bytes.get(row.receipt)
        if remembered is not None and remembered[0] == (row.event_count, row.updated_at):
            now_bytes = remembered[1]
        else:
            now_bytes = len(TransferMessage(*replicas.whole_case(s, row)).encode())
        old, new = state_columns(before, now), state_columns(transition.case, now)
        meta = self.store.meta
        stamp = utc_text(now)
        added = 0
        for i, draft in enumerate(transition.events):
            added += 1 + len(dumps({
                "receipt": row.receipt, "seq": before.event_count + i + 1, "action": draft.action,
                "from_status": draft.from_status, "to_status": draft.to_status, "actor": draft.actor,
                "reason": draft.reason, "detail": json.dumps(dict(draft.detail), ensure_ascii=False, sort_keys=True),
                "happened_at": stamp, "recorded_at": stamp, "origin": meta.node_id,
                "origin_incarnation": meta.incarnation, "origin_seq": 10**15, "superseded": False,
            }))
        size = now_bytes + len(dumps(new)) - len(dumps(old)) + added
        if size > budget:
            step = transition.event.action
            raise DeskError(ErrorKind.PRECONDITION,
                            f"case {row.receipt} is full: with this {step} it would take {limits.count(size)} bytes, "
                            f"and a {step} may fill a case up to {limits.count(budget)} (a case travels whole when it "
                            "is handed over; the rest is kept for deciding and closing it); shorten the text")
        # Newest last, oldest forgotten; each operation alone, so that units on other threads
        # (supervision's) never see the memory half-changed.
        self._case_bytes.pop(row.receipt, None)
        self._case_bytes[row.receipt] = ((transition.case.event_count, stamp), size)
        if len(self._case_bytes) > _REMEMBERED_CASES:
            try:
                self._case_bytes.popitem(last=False)
            except KeyError:
                pass

    def _write(self, s: Unit, row: CaseRow, transition: Transition, now: datetime) -> list[dict[str, Any]]:
        """The verdict on an owned case's row, and its events in order."""
        update_case(s, row, transition.case, now)
        first = transition.case.event_count - len(transition.events) + 1
        return [append_event(s, self.store.meta, row.receipt, first + i, draft, now)
                for i, draft in enumerate(transition.events)]

    def provisional(self, state: CaseState) -> bool:
        """Whether one of the due dates of a case not finished yet lies in a year without its
        official holiday schedule (counted Monday–Friday, it may move when the year is published)."""
        if state.status in FINISHED:
            return False
        return any(d is not None and self.calendar.is_provisional(d)
                   for d in (state.due, state.statutory_due, state.supplement_due, state.issue_due))

    def provisional_due(self, status: str, due: str) -> bool:
        """The same for what a tracking view holds of a case (its status and due date, ISO)."""
        return bool(due) and status not in FINISHED and self.calendar.is_provisional(date.fromisoformat(due))

    def item_at(self, issuer: str, version: int, code: str) -> ServiceItem:
        return self._item_at(issuer, version, code)

    def _priority(self, state: CaseState, now: datetime) -> int:
        """Cases near or past their deadline, escalations and the green channel (绿色通道) travel
        before bulk history."""
        if state.status is Status.ESCALATED:
            return replication.URGENT
        if state.green_channel and state.status not in TERMINAL:
            return replication.URGENT
        if state.due is not None and state.status not in TERMINAL:
            if state.due <= self.calendar.add_working_days(local_date(now), 1):
                return replication.URGENT
        return replication.NORMAL

    def get(self, receipt_text: str) -> tuple[CaseRecord, list[StoredEvent]]:
        receipt = self._parse_receipt(receipt_text)
        with self.store.reading() as s:
            record = get_case(s, receipt)
            if record is None:
                raise DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.store.meta.node_id}", "receipt")
            return self.seen_here(s, record), case_events(s, receipt)

    def parse_receipt(self, text: str) -> str:
        """A receipt as a client typed it, checked (its limit, its form, its check digit)."""
        return self._parse_receipt(text)

    def notice(self, receipt_text: str) -> NoticeFacts:
        """The case's latest one-time notice (一次性告知), as it was given: NOT_FOUND without the
        case, FAILED_PRECONDITION when none was given (blocking)."""
        record, events = self.get(receipt_text)
        st = record.state
        facts = self.latest_notice(record, events)
        if facts is None:
            raise DeskError(ErrorKind.PRECONDITION, f"case {st.receipt} has no one-time notice: it was neither returned "
                            "nor asked to supplement materials")
        return facts

    def latest_notice(self, record: CaseRecord, events: list[StoredEvent]) -> NoticeFacts | None:
        """The facts of the latest one-time notice in ``events`` (the case's history), or None."""
        st = record.state
        history = [(e.action, e.detail, e.reason, datetime.fromisoformat(e.happened_at), e.origin) for e in events]
        return latest_notice(st.receipt, self._item_at(st.catalog_issuer, st.catalog_version, st.item_code), history)

    def _parse_receipt(self, text: str) -> str:
        checked("ActRequest", "receipt", text, what="the case's receipt number")
        try:
            return str(Receipt.parse(text))
        except ReceiptError as exc:
            raise DeskError(ErrorKind.INVALID, str(exc), "receipt") from None

    def _item_at(self, issuer: str, version: int, code: str) -> ServiceItem:
        """The item as it was in the catalog release the case was accepted under."""
        current = self.store.catalog()
        if current.sources.get(code) == (issuer, version):
            return current.items[code]
        item = self.store.catalog_item(issuer, version, code)
        if item is None:
            raise DeskError(ErrorKind.PRECONDITION, f"catalog release {issuer} v{version} has no item {code} here")
        return item


MAX_BACKFILL = timedelta(days=366)


def check_happened(happened_at: datetime | None, now: datetime) -> None:
    """A back-filled time must be aware, not in the future and within the last year."""
    if happened_at is None:
        return
    if happened_at.tzinfo is None:
        raise DeskError(ErrorKind.INVALID, "happened_at needs its time zone (RFC 3339, e.g. 2026-03-09T15:30:00+08:00)",
                        "happened_at")
    if happened_at > now + timedelta(minutes=1):
        raise DeskError(ErrorKind.INVALID, f"happened_at {happened_at.isoformat()} is in the future", "happened_at")
    if now - happened_at > MAX_BACKFILL:
        raise DeskError(ErrorKind.INVALID, f"happened_at {happened_at.isoformat()} is more than a year ago", "happened_at")


def parse_happened(text: str) -> datetime | None:
    """``happened_at`` as it comes over the wire ('' when the event happens now)."""
    text = checked("ActRequest", "happened_at", text)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DeskError(ErrorKind.INVALID, f"happened_at {excerpt(text)} is not an RFC 3339 time "
                        "(e.g. 2026-03-09T15:30:00+08:00)", "happened_at") from None


ACTIONS = frozenset(a.value for a in Action)


def parse_amount(text: str) -> int:
    """An amount of money as a client sends it (yuan, at most two decimals) in whole fen,
    or ``DeskError(INVALID)`` naming ``amount``."""
    text = checked("PayFeeRequest", "amount", text, what="the amount paid, in yuan (e.g. 80.00)")
    try:
        fen = parse_yuan(text)
    except ValueError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), "amount") from None
    if fen == 0:
        raise DeskError(ErrorKind.INVALID, "amount 0: a payment is above 0 (to let a fee go, waive it)", "amount")
    return fen


def payment(actor: str, amount: str, method: str, number: str) -> ActParams:
    """A payment at the collection point as a client sends it (gRPC ``PayFee``, the console's form),
    checked field by field: the ``pay`` step's parameters, or ``DeskError(INVALID)`` naming the field."""
    m = "PayFeeRequest"
    fen = parse_amount(amount)
    text = checked(m, "method", method, what=f"how it was paid: {', '.join(PaymentMethod)}")
    try:
        chosen = check_method(text)
    except ValueError as exc:
        raise DeskError(ErrorKind.INVALID, str(exc), "method") from None
    number = checked(m, "number", number, what="the collection point's receipt or the transaction number")
    return ActParams(actor=actor, amount_fen=fen, method=chosen.value, number=number)


def check_allowed(person: Person, op: str, facts: Facts = NO_FACTS) -> None:
    """``DeskError`` DENIED naming the role needed, unless ``person`` may do ``op`` (``node.domain.people``)."""
    refusal = authorize(person, op, facts)
    if refusal is not None:
        raise DeskError(ErrorKind.DENIED, str(refusal))


_PAYMENT_PARAMS = ("amount_fen", "method", "number")  # only a payment carries them


def _params_dict(params: ActParams) -> dict:
    # ``at`` is the owner's to fill in (a delivery's window), and ``changed_application`` belongs to a
    # supplement request, which is never requested from another node: neither is sent, so a
    # request's payload stays what nodes of the earlier release expect; nor are the payment's
    # fields unless it is one.
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params).items()
           if k not in ("at", "changed_application")}
    for k in _PAYMENT_PARAMS:
        if not out[k]:
            del out[k]
    return out


def _desk_error(exc: LifecycleError) -> DeskError:
    if isinstance(exc, InvalidParams):
        return DeskError(ErrorKind.INVALID, str(exc))
    assert isinstance(exc, ActionRefused) or isinstance(exc, LifecycleError)
    return DeskError(ErrorKind.PRECONDITION, str(exc))
