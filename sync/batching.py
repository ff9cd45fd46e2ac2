"""Choosing the next batch: people first, per-case order always, never more than the receiver takes.

After a long outage a village may hold thousands of queued messages. The ones that
matter to people now — cases near or past their deadline, escalations, complaints —
go first; bulk history follows. Messages about the same case (the same ``case_key``)
must still apply in order, so a case is promoted as a whole: its group's priority is
the highest of its members', and a group is always sent as a prefix in link order.

A batch is cut by count and by its size on the wire (``Envelope.size``: the encoded
envelope), under a byte limit safely below the receiver's gRPC message limit
(``DEFAULT_MAX_BYTES``: ``RECEIVE_LIMIT`` less ``HEADROOM`` for the request's other fields
and gRPC's framing). An envelope that alone exceeds the limit can never be sent: the sender
withholds it (``withhold_oversize``) — it keeps it in its own quarantine and sends, at the
same link position, a small ``withheld`` marker in its place — so it never stalls the link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from govnet.sync.envelope import BATCH_OVERHEAD, Envelope, marker

DEFAULT_MAX_COUNT = 200
# A node's gRPC receive limit (node.process.build.MAX_MESSAGE_BYTES; a test keeps them equal).
RECEIVE_LIMIT = 8 * 1024 * 1024
HEADROOM = 64 * 1024  # well above a request's own fields and gRPC's framing
DEFAULT_MAX_BYTES = RECEIVE_LIMIT - HEADROOM
MIN_MAX_BYTES = 64 * 1024  # below this a configured limit would withhold ordinary cases


@dataclass(frozen=True)
class Withhold:
    """Effect: set ``original`` aside in the sender's quarantine (with ``reason``) and put
    ``marker`` in its place in the outbox, in one transaction, before the marker is sent."""

    original: Envelope
    marker: Envelope
    reason: str
    why: str  # "too_large" (by the sender's own limit) | "refused" (the receiver refused it)


def too_large(env: Envelope, max_bytes: int) -> bool:
    """``env`` alone makes a batch larger than ``max_bytes``: it can never be sent."""
    # A bound first (every envelope of a pull passes here): a varint field takes at most 11
    # bytes, a text one 4 bytes a character plus 6.
    bound = (len(env.payload) + 4 * (len(env.origin) + len(env.kind) + len(env.target) + len(env.case_key)
                                     + len(env.created_at)) + 100)
    return BATCH_OVERHEAD + bound > max_bytes and BATCH_OVERHEAD + env.size() > max_bytes


def withhold(env: Envelope, reason: str, why: str, sender: str = "") -> Withhold:
    return Withhold(env, marker(env, reason, sender), reason, why)


def withhold_oversize(pending: Sequence[Envelope], max_bytes: int, sender: str = ""
                      ) -> tuple[list[Envelope], list[Withhold]]:
    """``pending`` with every envelope that can never fit replaced by its marker, and the
    ``Withhold`` effects that make it so."""
    if all(not too_large(e, max_bytes) for e in pending):
        return list(pending), []
    out: list[Envelope] = []
    effects: list[Withhold] = []
    for env in pending:
        if too_large(env, max_bytes):
            effect = withhold(env, f"{env.size() + BATCH_OVERHEAD:,} bytes > {max_bytes:,} (the batch limit)",
                              "too_large", sender)
            effects.append(effect)
            out.append(effect.marker)
        else:
            out.append(env)
    return out, effects


def select_batch(
    pending: Sequence[Envelope], max_count: int = DEFAULT_MAX_COUNT, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Envelope]:
    """The next batch from ``pending`` (in link order), most urgent groups first.

    Returns envelopes in the order they must be applied, at most ``max_count`` of them and at
    most ``max_bytes`` on the wire (``BATCH_OVERHEAD`` included). Returns at least one envelope
    when ``pending`` is not empty: callers withhold what can never fit first
    (``withhold_oversize``), so a first envelope larger than ``max_bytes`` is one that fits the
    configured limit but not a lowered one (after a refusal): it goes alone, to find out.
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
    size = BATCH_OVERHEAD
    for group in ranked:
        for env in group:
            if batch and len(batch) >= max_count:
                return batch
            size += env.size()
            if batch and size > max_bytes:
                return batch
            batch.append(env)
    return batch
