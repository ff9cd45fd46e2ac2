"""Envelopes set aside in the store because they could not be applied (``quarantine``).

One bad message is quarantined so that it never blocks the queue behind it; the inbox
writes an entry, ops replays it. Functions take the caller's session and never commit.
"""

from __future__ import annotations

from govnet.node.store.unit import Unit, query


def count_quarantined(s: Unit) -> int:
    """Entries still set aside (not replayed yet)."""
    return int(query(s, "SELECT count(*) FROM quarantine WHERE replayed_at IS NULL")[0][0])
