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

No message can stall a link
    Batches are cut by count and by their size on the wire (``Envelope.size``: the
    envelope as protobuf encodes it; ``batching.BATCH_OVERHEAD`` for the rest of the
    request and gRPC's framing), under a byte limit safely below the receiver's gRPC
    message limit (``sync.batch_max_bytes``; by default ``batching.RECEIVE_LIMIT`` less
    ``batching.HEADROOM``) — both ways: the child's pushes, and the parent's answers to
    pulls, which the child also bounds by the bytes it takes (``max_bytes``).

    An envelope that can never fit — alone larger than the limit (data from a release
    without size limits, a bug) — or that the receiver refuses alone (a peer with a smaller
    message limit, a batch it cannot parse) is *withheld* by its sender. The link cursor
    and each case's gapless order must not see a hole that is waited on forever, so the
    position is not skipped: in one transaction the sender keeps the envelope whole in its
    own quarantine (side ``sender``, with its reason and size) and puts, at the same link
    position and with the same identity, target, case key and priority, a *marker*: an
    envelope of kind ``withheld`` whose few-dozen-byte payload says what was withheld and
    why (``envelope.Withheld``, e.g. "withheld by the sender 371102: transfer of
    15,728,784 bytes: 15,728,848 bytes > 8,323,072 (the batch limit)"). The marker travels
    and is acknowledged like any envelope, so the cursor moves past the position. The
    receiver records it in its own quarantine (side ``receiver``, reason ``withheld``) —
    both ends show it — and counts it applied, but neither applies it, nor passes it on,
    nor records its identity as applied. Later envelopes of the same case that needed it
    hit the case's event gap (or find no case) and are quarantined at the receiver by the
    existing rule, with that reason. The operator's way back is at the sender: replaying
    its entry once the envelope fits (after raising the limits) queues it again at a new
    position with its identity unchanged, and it applies at the receiver like any other.

    A batch the receiver refuses (``transport.base.BatchRefused``: RESOURCE_EXHAUSTED
    "larger than max", INVALID_ARGUMENT on a push, or the push stream that either ended)
    is never sent again as it was: nothing in flight was settled, the byte limit drops
    below half the refused batch and one batch flies at a time, until the culprit flies
    alone and is withheld with the receiver's words as its reason. The session opens a new
    stream and carries on within the same exchange (``session.MAX_REFUSALS`` at most).
    The decisions are the up-link core's (``uplink``: events in, ``Withhold`` effects out)
    and ``batching``'s; the gRPC transport only classifies statuses, and the in-memory one
    can play a receiver's message limit (``transport.memory.Faults.receive_limit``).

The driver's contract (what the node layer must do)
    1. Persist before send: an envelope enters the outbox in the same transaction as
       the state change that caused it.
    2. Apply a received batch whole or not at all, and persist the new cursor in that
       same transaction; acknowledge only after it commits.
    3. Drop outbox entries only when the receiver's cursor covers them.
    4. Keep no more batches in flight per link than the up-link's window allows (the
       up-link's policy is ``uplink.UpLinkCore``; its docstring gives its own contract).
    5. Send nothing larger than the byte limit: withhold what never fits (quarantine the
       original and put its marker in its place, in one transaction) before the marker
       is sent; when the receiver refuses a batch, tell the core and send what it chooses
       next, never the refused batch again.
    6. Receiving a ``withheld`` marker, record it in the quarantine and count it applied;
       never apply or forward it, and never record its identity as applied.

Modules: ``envelope`` (the values), ``cursor``, ``batching`` (what goes next),
``backoff`` and ``link`` (when to try again and how a link looks), ``digest``
(detecting silent divergence), ``admission`` (a parent's bound on concurrent batches),
``transport`` (the interface in ``transport.base``, the real one in ``transport.grpc``,
an in-memory one with faults in ``transport.memory``), ``uplink`` (the up-link's policy, a
sans-I/O state machine: events in, effects out), ``session`` (one exchange, driven
over a transport) and ``driver`` (the loop that keeps a link flowing).
"""
