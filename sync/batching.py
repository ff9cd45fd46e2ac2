"""Choosing the next batch: people first, per-case order always.

After a long outage a village may hold thousands of queued messages. The ones that
matter to people now — cases near or past their deadline, escalations, complaints —
go first; bulk history follows. Messages about the same case (the same ``case_key``)
must still apply in order, so a case is promoted as a whole: its group's priority is
the highest of its members', and a group is always sent as a prefix in link order.
"""

from __future__ import annotations

from collections.abc import Sequence

from govnet.sync.envelope import Envelope

DEFAULT_MAX_COUNT = 200
DEFAULT_MAX_BYTES = 1_000_000


def select_batch(
    pending: Sequence[Envelope], max_count: int = DEFAULT_MAX_COUNT, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Envelope]:
    """The next batch from ``pending`` (in link order), most urgent groups first.

    Returns envelopes in the order they must be applied. Always returns at least one
    envelope when ``pending`` is not empty, even if it alone exceeds ``max_bytes``.
    """
    in_order = sorted(pending, key=lambda e: e.seq)
    if len({env.priority for env in pending}) <= 1:
        # One priority (a backlog, usually): nothing to promote, so the batch is a prefix of
        # the link order, which keeps every case's order too.
        ranked: list[list[Envelope]] = [in_order]
    else:
        groups: dict[str, list[Envelope]] = {}
        for env in in_order:
            groups.setdefault(env.case_key or f"#{env.seq}", []).append(env)
        ranked = sorted(groups.values(), key=lambda g: (-max(e.priority for e in g), g[0].seq))
    batch: list[Envelope] = []
    size = 0
    for group in ranked:
        for env in group:
            if batch and (len(batch) >= max_count or size + env.size() > max_bytes):
                return batch
            batch.append(env)
            size += env.size()
    return batch
