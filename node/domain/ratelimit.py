"""Rate limits per peer and per account: one noisy client must not slow the others.

The node counts calls against buckets keyed by ``(kind, key)``: the kind is ``peer`` (the
calling machine, or the node its certificate names) or ``account`` (the person whose
token the call carries), the key says which one. The RPC boundary (``node.rpc.ratelimit``)
asks before a servicer runs; a refused call answers RESOURCE_EXHAUSTED with the time
after which the same call would be admitted, so a refusal costs microseconds and tells the
client exactly how long to wait.

The algorithm is GCRA (the generic cell rate algorithm), a token bucket that keeps one
number per key instead of two: the *theoretical arrival time* (TAT), the moment the key's
bucket would be full again if nothing more came. A call at ``now`` would move it to
``max(tat, now) + 1/rate``; it is admitted when that is no more than ``burst / rate`` ahead
of ``now`` (at most ``burst`` calls at once after a quiet spell, then ``rate`` a second),
and refused otherwise, with ``retry_after = new_tat - now - burst / rate``: exactly when
one call's worth has drained. A refused call moves no bucket, so a client that keeps
hammering is not pushed further back than its own admitted calls put it.

A call is charged to several buckets at once (its peer's and its account's): all are
checked first and only then all are moved, so a call one bucket refuses costs the others
nothing.

Bounded memory. The table holds at most ``capacity`` keys, least recently used first out:
a flood of distinct keys (spoofed tokens, many addresses) cannot grow it. Every call, refused
ones too, marks its keys used, so a client over its limit is not pushed out (and handed a
full bucket) by a flood of new keys. A key pushed out starts again with a full bucket, which is what a key that has been quiet long enough has
anyway; the capacity is set well above the number of machines and people a node serves, so
only a flood of throw-away keys pushes out real ones.

Pure: no clock, no I/O, no locks. ``now`` is seconds on any monotonic scale the caller
keeps to (the adapter uses ``time.monotonic``); the adapter runs on the event loop, so one
table is never used from two threads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PEER, ACCOUNT = "peer", "account"
KINDS = (PEER, ACCOUNT)
# Classes of call, each with its own limits (``RateSettings``): people's and programs' calls
# to the case, catalog, supervision and statistics services; children's sync sessions;
# health checks and reflection.
API, SYNC, META = "api", "sync", "meta"
CLASSES = (API, SYNC, META)
DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True)
class Rate:
    """``per_s`` calls a second on average, ``burst`` at once after a quiet spell; ``per_s`` 0: unlimited."""

    per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_s <= 0


@dataclass(frozen=True)
class RateSettings:
    """``[rate]``: the limits of each class of call, per peer and per account (0 calls a second: no limit).

    Children's sync gets its own, generous class: a child reconnecting after an outage
    pushes its backlog in many batches and must not be throttled into a stall (the parent's
    admission bound, ``sync.admission``, already keeps the work in hand bounded).
    """

    peer_per_s: float = 200.0
    peer_burst: int = 400
    account_per_s: float = 50.0
    account_burst: int = 100
    sync_per_s: float = 1000.0  # per peer (a child node); sync calls carry no account
    sync_burst: int = 2000
    meta_per_s: float = 100.0  # per peer: health checks and reflection
    meta_burst: int = 200
    max_keys: int = DEFAULT_CAPACITY  # peers and accounts remembered at once (least recently used first out)

    def limits(self) -> dict[tuple[str, str], Rate]:
        """The rate of each (class, kind); a pair that is absent is not limited."""
        return {
            (API, PEER): Rate(self.peer_per_s, self.peer_burst),
            (API, ACCOUNT): Rate(self.account_per_s, self.account_burst),
            (SYNC, PEER): Rate(self.sync_per_s, self.sync_burst),
            (META, PEER): Rate(self.meta_per_s, self.meta_burst),
        }


@dataclass(frozen=True)
class Charge:
    """One bucket a call is counted against."""

    kind: str  # PEER or ACCOUNT
    key: str
    rate: Rate


@dataclass(frozen=True)
class Verdict:
    """Whether a call may go on; when refused, which bucket refused it and when to come back."""

    admitted: bool
    retry_after_s: float = 0.0
    refused_by: str = ""  # the kind of the bucket that refused ("" when admitted)


ADMITTED = Verdict(True)


class RateLimiter:
    """GCRA buckets keyed by (kind, key), at most ``capacity`` of them (see the module docstring)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("a rate limiter must remember at least one key")
        self.capacity = capacity
        self._tat: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tat)

    def admit(self, charges: Sequence[Charge], now: float) -> Verdict:
        """Admit a call counted against every bucket in ``charges`` at ``now``, or refuse it.

        Refused: nothing changes; ``retry_after_s`` is the longest wait any refusing bucket
        asks for, ``refused_by`` that bucket's kind."""
        moved: list[tuple[tuple[str, str], float]] = []
        refusal: Verdict | None = None
        for charge in charges:
            if charge.rate.unlimited:
                continue
            slot = (charge.kind, charge.key)
            interval = 1.0 / charge.rate.per_s
            tolerance = max(1, charge.rate.burst) * interval
            new_tat = max(self._tat.get(slot, now), now) + interval
            wait = new_tat - now - tolerance
            if wait > 1e-9:
                if refusal is None or wait > refusal.retry_after_s:
                    refusal = Verdict(False, wait, charge.kind)
                if slot in self._tat:
                    self._tat.move_to_end(slot)  # in use: a flood of new keys must not reset its bucket
            else:
                moved.append((slot, new_tat))
        if refusal is not None:
            return refusal
        for slot, tat in moved:
            self._remember(slot, tat)
        return ADMITTED

    def _remember(self, slot: tuple[str, str], tat: float) -> None:
        self._tat[slot] = tat
        self._tat.move_to_end(slot)
        while len(self._tat) > self.capacity:
            self._tat.popitem(last=False)

    def knows(self, kind: str, key: str) -> bool:
        """Whether the table still holds a bucket for (kind, key) (for tests and status)."""
        return (kind, key) in self._tat


def charges_for(limits: Mapping[tuple[str, str], Rate], call_class: str, peer: str, account: str | None) -> list[Charge]:
    """The buckets a call of ``call_class`` from ``peer`` (and ``account``, when it carries one) counts against."""
    out: list[Charge] = []
    peer_rate = limits.get((call_class, PEER))
    if peer_rate is not None:
        out.append(Charge(PEER, f"{call_class}:{peer}", peer_rate))
    account_rate = limits.get((call_class, ACCOUNT))
    if account is not None and account_rate is not None:
        out.append(Charge(ACCOUNT, f"{call_class}:{account}", account_rate))
    return out
