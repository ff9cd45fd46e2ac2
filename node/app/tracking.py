"""Tracking a receipt from any node (办件查询): who answers, and from what.

A receipt is answered by the first node that knows the case, looking up the tree:

* the origin (where the applicant applied) and the owner hold the whole case and its public
  history: full progress (the origin also counts a delivery made at its window that the owner
  has not recorded yet);
* every ancestor of the origin holds the case's summary (the state without personal data and
  without events): progress from the summary;
* a node above the origin that holds nothing of it has not (yet) heard of it: NOT_FOUND;
* any other node knows nothing of it and asks its parent (the parent asks its parent… until a
  node that knows), each hop counted, at most ``MAX_HOPS``, within the caller's deadline; a node
  whose link up is down says so instead. Who asks is ``federation.tracking``'s rule.

This module reads what this node holds and decides what to answer (``Tracker.answer``, the one
path the gRPC ``Track`` and the console's tracking page both take); the asking itself is an
edge's (``node.rpc.cases.ParentTrack`` calls the parent's ``Track``). What the applicant sees is
``node.domain.progress``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from govnet.federation.tracking import MAX_HOPS, asks_parent
from govnet.node.app.desk import CaseDesk, DeskError, ErrorKind
from govnet.node.domain.lifecycle import is_suspended
from govnet.node.domain.progress import CaseFacts, Happened, Progress, not_known, progress
from govnet.node.domain.receipt import Receipt
from govnet.node.store.cases import CaseRecord, StoredEvent, get_case
from govnet.node.store.cases import events as case_events
from govnet.node.store.models import CaseSummary

__all__ = ["HOP_DEADLINE_S", "MAX_HOPS", "AskParent", "Known", "NotKnownAbove", "ParentUnreachable", "Source",
           "Tracker"]
HOP_DEADLINE_S = 3.0  # at most this long for one hop's answer (less when the caller's deadline is nearer)
log = logging.getLogger("govnet.tracking")
T = TypeVar("T")


class NotKnownAbove(Exception):
    """The parent (and whoever it asked) does not know the receipt."""


class ParentUnreachable(Exception):
    """The link up is down: the parent could not be asked."""


class AskParent(Protocol):
    """The parent's public view of a receipt (an edge's client of the parent's ``Track``)."""

    async def progress(self, receipt: str, hops: int, timeout: float) -> Progress:
        """The parent's answer; ``NotKnownAbove`` or ``ParentUnreachable`` when there is none."""
        ...


class Source(StrEnum):
    CASE = "case"  # the origin or the owner (or an earlier owner): the whole case
    SUMMARY = "summary"  # an ancestor: the case's summary
    ABOVE = "above"  # answered by a node above, asked over the link up
    NONE = "none"  # nobody could answer


@dataclass(frozen=True)
class Known:
    """What this node can answer itself."""

    progress: Progress
    source: Source
    status: str
    due: str
    owner: str
    item_name: str
    department: str
    events: tuple[StoredEvent, ...] = ()  # the public history (a case held here)


class Tracker:
    def __init__(self, desk: CaseDesk) -> None:
        self.desk = desk
        self.store = desk.store

    @property
    def here(self) -> str:
        return self.store.meta.node_id

    def may_ask_up(self, receipt: str, hops: int) -> bool:
        """Whether this node asks its parent about a receipt it does not know (``hops``: asked so far).

        Not when the receipt was issued in this node's own subtree (``federation.tracking``)."""
        return asks_parent(self.here, Receipt.parse(receipt).node_id, hops)

    async def answer(self, receipt: str, hops: int, *, found: Callable[[Known], T],
                     ask_parent: Callable[[int], Awaitable[T]] | None, link_down: Callable[[], T]) -> T:
        """The answer to a receipt asked here after ``hops`` hops: ``found`` of what this node holds,
        else the parent's (``ask_parent``, given the hops so far; None at the city), else — the link
        up being down — ``link_down()``. A receipt nobody up the tree knows is NOT_FOUND."""
        if not 0 <= hops <= MAX_HOPS:
            raise DeskError(ErrorKind.INVALID, f"hops {hops} is not from 0 to {MAX_HOPS}", "hops")
        held = await asyncio.to_thread(self.known, receipt)
        if held is not None:
            return found(held)
        missing = DeskError(ErrorKind.NOT_FOUND, f"no case {receipt} on node {self.here} or above it", "receipt")
        if ask_parent is None or not self.may_ask_up(receipt, hops):
            raise missing
        try:
            return await ask_parent(hops + 1)
        except NotKnownAbove:
            raise missing from None
        except ParentUnreachable as exc:
            log.info("track: the parent could not be asked", extra={"receipt": receipt, "error": str(exc)})
            return link_down()

    async def progress(self, receipt: str, parent: AskParent | None) -> Progress:
        """The applicant's view of ``receipt`` from here (the console's tracking page)."""

        async def ask(hops: int) -> Progress:
            assert parent is not None
            return await parent.progress(receipt, hops, HOP_DEADLINE_S)

        return await self.answer(receipt, 0, found=lambda k: k.progress, ask_parent=ask if parent else None,
                                 link_down=lambda: not_known(receipt, link_down=True))

    def known(self, receipt: str) -> Known | None:
        """The answer from what this node holds (blocking: run it in a worker thread), or None."""
        with self.store.reading() as s:
            record = get_case(s, receipt)
            if record is not None:
                seen = self.desk.seen_here(s, record)
                events = case_events(s, receipt)
                return _from_case(seen, events)
            summary = s.get(CaseSummary, receipt)
            return _from_summary(summary) if summary is not None else None


_PUBLIC_STEPS = frozenset({"submit", "accept", "return", "review", "request_supplement", "supplement", "start_joint",
                           "escalate", "extend", "suspend", "resume", "approve", "reject", "complete", "deliver",
                           "withdraw", "deem_accept"})


def _from_case(record: CaseRecord, events: list[StoredEvent]) -> Known:
    st = record.state
    delivered = record.window_delivery
    # A delivery happened at the window that recorded it ("at"), though the owner's event records it.
    history = tuple(Happened(e.action, datetime.fromisoformat(e.happened_at), str(e.detail.get("at") or e.origin))
                    for e in events if e.seq > 0 and e.action in _PUBLIC_STEPS)
    facts = CaseFacts(
        receipt=st.receipt, item_name=record.item_name, department=record.department, status=st.status.value,
        origin=st.origin, owner=st.owner, submitted_at=st.submitted_at, due=st.due, missing_core=st.missing_core,
        requested_materials=st.requested_materials, pending_materials=st.pending_materials,
        suspended=is_suspended(st), decision=st.decision, accepted_on=st.accepted_on, decided_on=st.decided_on,
        delivered_at=datetime.fromisoformat(delivered.at) if delivered is not None else None, history=history,
    )
    public = tuple(e for e in events if e.seq > 0 and e.action in _PUBLIC_STEPS)
    return Known(progress(facts), Source.CASE, st.status.value, st.due.isoformat() if st.due else "", st.owner,
                 record.item_name, record.department, public)


def _from_summary(summary: CaseSummary) -> Known:
    st = json.loads(summary.state)
    suspended = bool(st.get("pause_started")) and st.get("status") in ("under_review", "joint_review")
    facts = CaseFacts(
        receipt=summary.receipt, item_name=str(st.get("item_name", "")), department=summary.department,
        status=summary.status, origin=summary.origin, owner=summary.owner,
        submitted_at=datetime.fromisoformat(summary.submitted_at), due=_date(summary.due),
        missing_core=_list(st.get("missing_core")), requested_materials=_list(st.get("requested_materials")),
        pending_materials=_list(st.get("pending_materials")), suspended=suspended,
        decision=str(st.get("decision", "")), accepted_on=_date(st.get("accepted_on")),
        decided_on=_date(summary.decided_on), from_summary=True,
    )
    return Known(progress(facts), Source.SUMMARY, summary.status, summary.due or "", summary.owner, facts.item_name,
                 summary.department)


def _date(text: object) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


def _list(text: object) -> tuple[str, ...]:
    if not isinstance(text, str) or not text:
        return ()
    values = json.loads(text)
    return tuple(str(v) for v in values) if isinstance(values, list) else ()
