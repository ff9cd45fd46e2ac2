"""Envelopes set aside in the store so that they never block the queue behind them
(``quarantine``), on both sides of a link.

The receiver's side: the inbox writes an entry for an envelope it cannot apply (and for the
marker of one its sender withheld); ops replays it. The sender's side (``withhold``): an
envelope this node cannot send — larger than a batch may be, or refused by the receiver —
is kept whole here while a small marker takes its place in the outbox, in the caller's
transaction. Functions take the caller's session and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from govnet.node.store import outbox
from govnet.node.store.models import QuarantineRow
from govnet.node.store.unit import Unit, query, utc_text
from govnet.sync.batching import Withhold

SENDER, RECEIVER = "sender", "receiver"


def count_quarantined(s: Unit) -> int:
    """Entries still set aside (not replayed yet), both sides."""
    return int(query(s, "SELECT count(*) FROM quarantine WHERE replayed_at IS NULL")[0][0])


def counts(s: Unit) -> dict[tuple[str, str], int]:
    """Entries still set aside, per (side, reason)."""
    return {(side, reason): int(n) for side, reason, n in query(
        s, "SELECT side, reason, count(*) FROM quarantine WHERE replayed_at IS NULL GROUP BY side, reason")}


def per_link(s: Unit) -> dict[tuple[str, str], int]:
    """Entries still set aside, per (link, side)."""
    return {(link, side): int(n) for link, side, n in query(
        s, "SELECT link, side, count(*) FROM quarantine WHERE replayed_at IS NULL GROUP BY link, side")}


def withhold(s: Session, link: str, effect: Withhold, now: datetime) -> None:
    """Keep ``effect.original`` in the sender's quarantine and put its marker in its place in
    ``link``'s outbox (same position). Nothing when that position has left the outbox already
    (acknowledged meanwhile: nothing to withhold)."""
    if not outbox.replace_with(s, link, effect.marker):
        return
    env = effect.original
    s.add(QuarantineRow(link=link, seq=env.seq, origin=env.origin, origin_incarnation=env.origin_incarnation,
                        origin_seq=env.origin_seq, kind=env.kind, target=env.target, case_key=env.case_key,
                        priority=env.priority, payload=env.payload.decode("utf-8", errors="backslashreplace"),
                        created_at=env.created_at, error=effect.reason[:2000], quarantined_at=utc_text(now),
                        side=SENDER, reason=effect.why, size=env.size()))


def sender_item(s: Session, item_id: int) -> QuarantineRow | None:
    """A sender entry still waiting (None: no such entry, another side, or replayed)."""
    row = s.get(QuarantineRow, item_id)
    return row if row is not None and row.side == SENDER and row.replayed_at is None else None


def side_of(s: Session, item_id: int) -> str | None:
    """Which side an entry still waiting is on (None: no such entry waiting)."""
    row = s.get(QuarantineRow, item_id)
    return row.side if row is not None and row.replayed_at is None else None


def mark_replayed(s: Session, row: QuarantineRow, now: datetime) -> None:
    row.replayed_at = utc_text(now)
    s.add(row)
