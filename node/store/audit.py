"""The audit chain in the store: sealing events into it, reading it back, descendants' heads.

Every event appended at this node enters the chain in the unit of work that appends it
(``node.domain.audit`` says how a link is computed):

* the desk's own events (``cases.append_event``) are linked as they are inserted
  (``link_new``): one read and one write of the one-row ``audit_head``, and a SHA-256 of a
  few hundred bytes, besides the insert that was there before;
* replicated events are inserted by ``replicas`` as the wire gives them, then ``seal``
  links every row not chained yet (a partial index keeps those few rows findable) in the
  order they were inserted.

So the head row always names the chain's last position and hash; a row deleted from the
end of the chain is still seen missing against it. Functions take the caller's session and
never commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from govnet.node.domain.audit import CHAINED_FIELDS, DEFAULT_ALGORITHM, GENESIS, ChainRow, Kept, Recorded, link
from govnet.node.store.unit import Unit, _db, query, utc_text

log = logging.getLogger("govnet.audit")

HEAD_SQL = "SELECT algorithm, count, head FROM audit_head WHERE id = 1"
_SET_HEAD = "UPDATE audit_head SET count = ?, head = ? WHERE id = 1"
_UNCHAINED = f"SELECT id, {', '.join(CHAINED_FIELDS)} FROM case_event WHERE chain_pos IS NULL ORDER BY id"


def recorded(s: Unit) -> Recorded:
    """The chain's algorithm, length and head as the head row records them (in a unit that
    may write: a missing head row is put back, see ``_head``)."""
    return Recorded(*_head(_db(s)))


def _head(db: Any) -> tuple[str, int, str]:
    """The head row's (algorithm, count, head). A head row deleted from the file is put back
    from the chain's last row rather than refusing the event: the chain never blocks intake.
    What the row recorded beyond that is lost (its sent count too), so the node's next head
    does not extend what its ancestors hold, and they raise the alarm."""
    found = db.execute(HEAD_SQL).fetchone()
    if found is not None:
        return str(found[0]), int(found[1]), str(found[2])
    log.error("audit head row missing: rebuilt from the chain's last event")
    last = db.execute("SELECT chain_pos, chain_hash FROM case_event WHERE chain_pos IS NOT NULL "
                      "ORDER BY chain_pos DESC LIMIT 1").fetchone()
    count, head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    db.execute("INSERT INTO audit_head (id, algorithm, count, head, sent_count, sent_event_id) "
               "VALUES (1, ?, ?, ?, 0, 0)", (DEFAULT_ALGORITHM, count, head))
    return DEFAULT_ALGORITHM, count, head


def link_new(s: Unit, row: dict[str, Any]) -> None:
    """Give ``row`` (an event about to be inserted) the next position and its link hash."""
    db = _db(s)
    algorithm, count, head = _head(db)
    row["chain_pos"] = count + 1
    row["chain_hash"] = link(algorithm, head, row)
    db.execute(_SET_HEAD, (count + 1, row["chain_hash"]))


def seal(s: Unit) -> int:
    """Chain every event inserted without a position, in insertion order; returns how many."""
    db = _db(s)
    rows = db.execute(_UNCHAINED).fetchall()
    if not rows:
        return 0
    algorithm, count, head = _head(db)
    updates = []
    for row in rows:
        count += 1
        head = link(algorithm, head, dict(zip(CHAINED_FIELDS, row[1:])))
        updates.append((count, head, row[0]))
    db.executemany("UPDATE case_event SET chain_pos = ?, chain_hash = ? WHERE id = ?", updates)
    db.execute(_SET_HEAD, (count, head))
    return len(rows)


def use_algorithm(s: Unit, algorithm: str) -> str:
    """Make ``algorithm`` the chain's if it has no events yet; returns the chain's algorithm
    (a chain keeps the algorithm it started with: changing it would be a rewrite)."""
    current = recorded(s)
    if current.count == 0 and current.algorithm != algorithm:
        _db(s).execute("UPDATE audit_head SET algorithm = ? WHERE id = 1", (algorithm,))
        return algorithm
    return current.algorithm


def chain_rows(s: Unit) -> list[ChainRow]:
    """Every event with its place and stored hash (for ``verify``), in no particular order."""
    return [ChainRow(r[0], r[1], dict(zip(CHAINED_FIELDS, r[2:])))
            for r in query(s, f"SELECT chain_pos, chain_hash, {', '.join(CHAINED_FIELDS)} FROM case_event")]


# --- the head this node sends up ---


def last_sent(s: Unit) -> tuple[int, str]:
    """(count, this node's hash at that position now) of the head it sent last (position 0,
    the genesis hash, if none or an empty chain). The hash is read again from the event row,
    so a rewritten history shows in it."""
    _head(_db(s))
    sent_count, event_id = query(s, "SELECT sent_count, sent_event_id FROM audit_head WHERE id = 1")[0]
    if not sent_count:
        return 0, GENESIS
    found = query(s, "SELECT chain_hash FROM case_event WHERE id = ? AND chain_pos = ?", (event_id, sent_count))
    return int(sent_count), str(found[0][0]) if found else ""


def mark_sent(s: Unit, count: int) -> None:
    """Record that the head at ``count`` was sent (in the unit that queued it)."""
    found = query(s, "SELECT id, chain_pos FROM case_event ORDER BY id DESC LIMIT 1")  # normally the last
    if found and found[0][1] != count:  # positions not in id order (a reused id): look it up
        found = query(s, "SELECT id, chain_pos FROM case_event WHERE chain_pos = ?", (count,))
    _db(s).execute("UPDATE audit_head SET sent_count = ?, sent_event_id = ? WHERE id = 1",
                   (count, int(found[0][0]) if count and found else 0))


def last_event_id(s: Unit) -> int:
    return int(query(s, "SELECT coalesce(max(id), 0) FROM case_event")[0][0])


# --- descendants' heads, kept by an ancestor ---


def kept(s: Unit, node: str) -> Kept | None:
    rows = query(s, "SELECT incarnation, algorithm, count, head, kept_by_incarnation, origin_seq FROM audit_peer_head "
                    "WHERE node = ?", (node,))
    return Kept(*rows[0]) if rows else None


def keep(s: Unit, node: str, incarnation: int, algorithm: str, count: int, head: str, my_incarnation: int,
         now: datetime, *, origin_seq: int = 0, broken: str = "", restored: bool = False) -> None:
    """Hold this head as ``node``'s latest; ``broken``: why it does not extend the one held
    (the mark stays, the first reason kept, until someone looks into it)."""
    _db(s).execute(
        "INSERT INTO audit_peer_head (node, incarnation, algorithm, count, head, kept_by_incarnation, received_at, "
        "broken, broken_at, breaks, restores, origin_seq) VALUES (:node, :inc, :alg, :count, :head, :mine, :now, "
        ":broken, :broken_at, :breaks, :restores, :seq) ON CONFLICT (node) DO UPDATE SET incarnation = :inc, "
        "algorithm = :alg, count = :count, head = :head, kept_by_incarnation = :mine, received_at = :now, "
        "origin_seq = :seq, "
        "broken = CASE WHEN broken = '' THEN :broken ELSE broken END, "
        "broken_at = coalesce(broken_at, :broken_at), breaks = breaks + :breaks, restores = restores + :restores",
        {"node": node, "inc": incarnation, "alg": algorithm, "count": count, "head": head, "mine": my_incarnation,
         "now": utc_text(now), "broken": broken, "broken_at": utc_text(now) if broken else None,
         "breaks": 1 if broken else 0, "restores": 1 if restored else 0, "seq": origin_seq})


def broken_chains(s: Unit) -> list[tuple[str, str, str]]:
    """(node, why, since) for every descendant whose chain was found broken, by node."""
    return [(str(n), str(w), str(t)) for n, w, t in
            query(s, "SELECT node, broken, broken_at FROM audit_peer_head WHERE broken != '' ORDER BY node")]


def count_broken(s: Unit) -> int:
    return int(query(s, "SELECT count(*) FROM audit_peer_head WHERE broken != ''")[0][0])


def peer_heads(s: Unit) -> list[dict[str, Any]]:
    """Every descendant's kept head, by node (for ``govnet audit heads``)."""
    cols = ("node", "incarnation", "algorithm", "count", "head", "received_at", "broken", "broken_at", "breaks",
            "restores")
    return [dict(zip(cols, r)) for r in query(s, f"SELECT {', '.join(cols)} FROM audit_peer_head ORDER BY node")]

