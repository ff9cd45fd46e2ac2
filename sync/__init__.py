"""Store-and-forward between a node and its neighbours.

What travels
    Envelopes. Each has a global identity (origin node, origin incarnation, origin
    sequence) that relays never change, a target node, a case key (messages with the
    same key must apply in order), a priority, and an opaque payload that only the node
    layer interprets. This package knows envelopes, cursors and links — not cases.

Links and sessions
    Every link joins a child and its parent, and the child opens every exchange
    (it works behind NAT, and nobody waits for a parent to call): ``Hello`` once per
    connection, then it *pushes* its upward outbox in batches, a few in flight, and
    *pulls* what the parent holds for its subtree until nothing is left. Each hop
    numbers what it sends on that link with a gapless link sequence (``Envelope.seq``).

Cursors, not hope
    A receiver applies a batch and, in the same transaction, records the link positions
    it has applied (``Cursor``: everything through N plus a sparse set above N, because
    urgent messages may overtake bulk ones). It answers with that cursor, and the
    sender drops exactly those entries from its outbox — nothing is deleted before the
    receiver has acknowledged it. A resent or duplicated envelope is recognised by the
    cursor and changes nothing; a lost answer just means the same batch is sent again.
    End to end, the node that finally applies an envelope also remembers its identity
    forever, so a copy that arrives days later by another route is still recognised,
    and the same identity with a different payload raises an alarm instead of
    overwriting. Every push and pull also says the sender's lowest position still held
    on the link (``settled_below``): a receiver restored from an older backup, whose
    cursor is behind what its former self acknowledged, moves its cursor up to it
    rather than waiting forever for envelopes the sender has deleted.

Failure
    A failed exchange marks the link ``retrying`` (then ``offline``) and schedules the
    next attempt with full-jitter exponential backoff, capped at minutes and reset by
    any contact (``sync.link``). A parent that admits too many batches at once answers
    RESOURCE_EXHAUSTED with a retry hint and the child waits at least that long. One
    envelope that cannot be applied is quarantined by the receiver — recorded with its
    error for ops to inspect and replay — and counted as applied so it never blocks the
    queue behind it.

The driver's contract (what the node layer must do)
    1. Persist before send: an envelope enters the outbox in the same transaction as
       the state change that caused it.
    2. Apply a received batch whole or not at all, and persist the new cursor in that
       same transaction; acknowledge only after it commits.
    3. Drop outbox entries only when the receiver's cursor covers them.
    4. Keep no more batches in flight per link than the up-link's window allows (the
       up-link's policy is ``uplink.UpLinkCore``; its docstring gives its own contract).

Modules: ``envelope`` (the values), ``cursor``, ``batching`` (what goes next),
``backoff`` and ``link`` (when to try again and how a link looks), ``digest``
(detecting silent divergence), ``admission`` (a parent's bound on concurrent batches),
``transport`` (the interface in ``transport.base``, the real one in ``transport.grpc``,
an in-memory one with faults in ``transport.memory``), ``uplink`` (the up-link's policy, a
sans-I/O state machine: events in, effects out), ``session`` (one exchange, driven
over a transport) and ``driver`` (the loop that keeps a link flowing).
"""
