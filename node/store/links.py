"""What a node keeps about its links: the parent's incarnations, the up-link's state, what
waits in the inbox per link, and the rows a subtree's digest is computed from.

The parent's incarnations are rows of its downward stream's cursors (``inbound_cursor``,
one per incarnation, created at zero), so writing down a new incarnation and starting its
stream are one act. The link state (health and backoff) is kept so a restarted node
resumes its backoff instead of hammering a parent that is down. Helpers take the caller's
session and never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from govnet.node.domain.messages import CatalogMessage
from govnet.node.store.models import CaseRow, CaseSummary, CatalogReleaseItem, ChildLink, LinkStateRow
from govnet.node.store.unit import execute, query, utc_text
from govnet.sync.link import Health, LinkState


def parent_incarnations(s: Session, parent: str) -> list[int]:
    """Every incarnation of ``parent`` written down so far."""
    return [int(i) for (i,) in query(s, "SELECT incarnation FROM inbound_cursor WHERE link = ?", (parent,))]


def record_parent_incarnation(s: Session, parent: str, incarnation: int, now: datetime) -> None:
    """Write down ``incarnation`` of ``parent``: its downward stream starts at position zero."""
    execute(s, "INSERT OR IGNORE INTO inbound_cursor (link, incarnation, through, above, updated_at) "
               "VALUES (?, ?, 0, '[]', ?)", (parent, incarnation, utc_text(now)))


# meta: set by a restore from backup (``node.store.backup``), cleared once the node has pulled
# everything its parent had for it and applied it (``node.app.links.UpLink.pulled_all``).
CATCHING_UP = "restored_catching_up"


def catching_up(s: Session) -> bool:
    """Whether this store was restored from a backup and has not caught up with its parent yet."""
    return bool(query(s, "SELECT 1 FROM meta WHERE key = ?", (CATCHING_UP,)))


def caught_up(s: Session) -> None:
    execute(s, "DELETE FROM meta WHERE key = ?", (CATCHING_UP,))


def parse_time(ts: str | None) -> datetime | None:
    """A time as the store writes it (``utc_text``), or None."""
    return datetime.fromisoformat(ts) if ts else None


def load_link_state(s: Session, neighbour: str) -> LinkState:
    row = s.get(LinkStateRow, neighbour)
    if row is None:
        return LinkState(neighbour)
    return LinkState(neighbour, Health(row.health), parse_time(row.since), row.failures, parse_time(row.next_attempt),
                     parse_time(row.last_success), row.last_error)


def save_link_state(s: Session, state: LinkState) -> None:
    row = s.get(LinkStateRow, state.neighbour) or LinkStateRow(neighbour=state.neighbour, health=state.health)
    row.health = state.health.value
    row.since = utc_text(state.since) if state.since else None
    row.failures = state.failures
    row.next_attempt = utc_text(state.next_attempt) if state.next_attempt else None
    row.last_success = utc_text(state.last_success) if state.last_success else None
    row.last_error = state.last_error[:500]
    s.add(row)


def inbox_depths(s: Session) -> dict[str, int]:
    """Per link, the envelopes received and not applied yet."""
    return {link: int(n) for link, n in query(s, "SELECT link, sum(count - applied) FROM inbox GROUP BY link")}


def digest_rows(s: Session, root: str) -> list[tuple[str, str, int]]:
    """(day submitted, receipt, version) of every case that originated at or under ``root``."""
    like = root + "%"
    best: dict[str, tuple[str, int]] = {}
    for receipt, submitted, count in s.exec(
        select(CaseRow.receipt, CaseRow.submitted_at, CaseRow.event_count).where(col(CaseRow.origin).like(like))
    ).all():
        best[receipt] = (submitted[:10], count)
    for receipt, submitted, count in s.exec(
        select(CaseSummary.receipt, CaseSummary.submitted_at, CaseSummary.event_count)
        .where(col(CaseSummary.origin).like(like))
    ).all():
        if receipt not in best or best[receipt][1] < count:
            best[receipt] = (submitted[:10], count)
    return [(day, receipt, count) for receipt, (day, count) in best.items()]


def cases_from(s: Session, root: str) -> list[CaseRow]:
    """The cases this node holds that were applied for under ``root`` (a resync's material)."""
    return list(s.exec(select(CaseRow).where(col(CaseRow.origin).startswith(root))).all())


def summaries_from(s: Session, root: str) -> list[CaseSummary]:
    """The case summaries this node keeps of cases applied for under ``root``."""
    return list(s.exec(select(CaseSummary).where(col(CaseSummary.origin).startswith(root))).all())


def release_items(s: Session, issuer: str, version: int) -> list[dict[str, Any]]:
    """Every item of a catalog release, including those a nearer issuer overrides here."""
    rows = s.exec(select(CatalogReleaseItem).where(CatalogReleaseItem.issuer == issuer,
                                                   CatalogReleaseItem.version == version)
                  .order_by(col(CatalogReleaseItem.code))).all()
    return [json.loads(r.data) for r in rows]


def catalogs_pending(s: Session, child: str) -> set[tuple[str, int]]:
    """The catalog releases already waiting in ``child``'s outbox, as (issuer, version)."""
    # Plain SQL: asked at every hello of every child, mostly to find nothing.
    rows = query(s, "SELECT CAST(payload AS BLOB) FROM outbox WHERE link = ? AND kind = 'catalog'", (child,))
    pending = set()
    for (payload,) in rows:
        release = CatalogMessage.decode(payload)
        pending.add((release.issuer, release.version))
    return pending


def child_links(s: Session) -> list[ChildLink]:
    """This node's children as registered, in id order."""
    return list(s.exec(select(ChildLink).order_by(col(ChildLink.child_id))).all())
