"""Putting envelopes into the outbox, inside the caller's transaction (persist before send).

``send`` starts a new message from this node: it gets this node's identity (origin,
incarnation, one gapless sequence for everything this node starts — so the identity stays
unique wherever the message is forwarded to) and the next position on the link toward
its target. ``forward`` passes on a message another node started, identity unchanged.
A message is a typed payload (``node.domain.messages``): its class names the envelope's kind
and encodes the bytes that travel. Helpers take the session and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, update

from govnet.federation.routing import Direction, next_hop
from govnet.node.domain.messages import Message
from govnet.node.store.models import OutboxRow
from govnet.node.store.unit import StoreMeta, execute, insert_rows, insert_sql, next_value, query, utc_text
from govnet.sync.cursor import Cursor
from govnet.sync.envelope import WITHHELD, Envelope

_OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
_INSERT = insert_sql(_OUTBOX)  # every message passes here: see node.store.unit's hot path


def _append(s: Session, link: str, env: Envelope) -> Envelope:
    placed = env.on_link(next_value(s, f"link:{link}"))
    insert_rows(s, _INSERT, dict(
        link=link, seq=placed.seq, origin=placed.origin, origin_incarnation=placed.origin_incarnation,
        origin_seq=placed.origin_seq, kind=placed.kind, target=placed.target, case_key=placed.case_key,
        priority=placed.priority, payload=placed.payload.decode(), created_at=placed.created_at,
    ))
    return placed


def send(s: Session, meta: StoreMeta, *, target: str, message: Message, case_key: str, priority: int,
         now: datetime, link: str | None = None) -> Envelope:
    """A new message from this node to ``target`` (via ``link`` when given: a broadcast hop)."""
    return send_encoded(s, meta, target=target, kind=message.KIND, payload=message.encode(), case_key=case_key,
                        priority=priority, now=now, link=link)


def send_encoded(s: Session, meta: StoreMeta, *, target: str, kind: str, payload: bytes, case_key: str,
                 priority: int, now: datetime, link: str | None = None) -> Envelope:
    """``send`` for a payload already encoded (``send`` is the way for every kind this node knows)."""
    if link is None:
        hop = next_hop(meta.node_id, target)
        if hop.direction is Direction.HERE:
            raise ValueError("a node does not send messages to itself")
        link = hop.neighbour
    env = Envelope(
        seq=0, origin=meta.node_id, origin_incarnation=meta.incarnation,
        origin_seq=next_value(s, "origin_seq"), kind=kind, target=target, case_key=case_key,
        priority=priority, payload=payload, created_at=utc_text(now),
    )
    return _append(s, link, env)


def forward(s: Session, meta: StoreMeta, env: Envelope, link: str | None = None) -> Envelope:
    """Pass ``env`` one hop further toward its target, keeping its identity."""
    if link is None:
        link = next_hop(meta.node_id, env.target).neighbour
    return _append(s, link, env)


def pending(s: Session, link: str, limit: int | None = None, after: int = 0) -> list[Envelope]:
    """What waits on ``link`` (beyond position ``after``), in link order (plain SQL: it is read
    for every batch)."""
    # The payload is read as the bytes it travels as (not decoded to text and encoded again).
    sql = ("SELECT seq, origin, origin_incarnation, origin_seq, kind, target, case_key, priority, "
           "CAST(payload AS BLOB), created_at FROM outbox WHERE link = ? AND seq > ? ORDER BY seq")
    rows = query(s, sql + " LIMIT ?", (link, after, limit)) if limit else query(s, sql, (link, after))
    return [Envelope(*r) for r in rows]


def replace_with(s: Session, link: str, env: Envelope) -> bool:
    """Put ``env`` (a withheld envelope's marker) in place of what waits at its position on
    ``link``; False when nothing waits there, or a marker already does (two pulls that
    withheld the same envelope at once: the first one's quarantine entry is the one)."""
    done = s.exec(update(OutboxRow).where(col(OutboxRow.link) == link, col(OutboxRow.seq) == env.seq,
                                          col(OutboxRow.kind) != WITHHELD)
                  .values(kind=env.kind, payload=env.payload.decode())).rowcount
    return bool(done)


def drop_acknowledged(s: Session, link: str, cursor: Cursor) -> int:
    """Delete what the receiver's cursor covers; nothing else (plain SQL: it runs for every
    acknowledged batch, on both ends of every link)."""
    removed = execute(s, "DELETE FROM outbox WHERE link = ? AND seq <= ?", (link, cursor.through))
    if cursor.above:
        above = sorted(cursor.above)
        removed += execute(s, f"DELETE FROM outbox WHERE link = ? AND seq IN ({', '.join('?' * len(above))})",
                           (link, *above))
    return removed


# One statement, so the outbox and the counter are read in one snapshot: read apart, a
# position given out in between could be reported settled before it was even sent.
_SETTLED_BELOW = ("SELECT coalesce((SELECT min(seq) FROM outbox WHERE link = ?), "
                  "(SELECT value FROM counter WHERE name = ?) + 1, 1)")


def settled_below(s: Session, link: str) -> int:
    """The lowest position still held on ``link``; one past the last given out when none is.

    Everything below it left the outbox, and only what the receiver acknowledged ever leaves,
    so a receiver that has not been restored from a backup has stored all of it.
    """
    return int(query(s, _SETTLED_BELOW, (link, f"link:{link}"))[0][0])


_DEPTH = "SELECT count(*), min(created_at) FROM outbox WHERE link = ?"


def depth(s: Session, link: str) -> tuple[int, str | None]:
    """How many envelopes wait on ``link`` and when the oldest was created (plain SQL: asked
    for every link at each status report and metrics scrape)."""
    count, oldest = query(s, _DEPTH, (link,))[0]
    return int(count), oldest


def depths(s: Session) -> dict[str, int]:
    """How many envelopes wait on each link that has some, in one statement (a township's
    hundred villages need not be asked one by one)."""
    return {link: int(count) for link, count in query(s, "SELECT link, count(*) FROM outbox GROUP BY link")}
