"""The loop that keeps one up-link flowing: exchange, then wait; back off on failure.

The asyncio driver of the up-link's sans-I/O core (``sync.uplink``): each exchange runs
``sync.session.exchange`` with the store's work in worker threads, and one timer is armed
at a time — the flush interval, or the end of the backoff that ``sync.link`` computed.
(The in-process simulation is the other driver: it runs the same exchange directly, when
its scenario says so, on a virtual clock.)

It runs an exchange whenever the link may be tried (see ``sync.link``) and at least once
per flush interval, so new outbox entries leave within one interval and decisions for
the subtree are picked up as soon. It persists the link state after every attempt, so
a restarted node resumes its backoff instead of hammering a parent that is down.
Every error is caught and recorded: the loop only ends when told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from govnet.sync.backoff import BackoffPolicy
from govnet.sync.link import LinkState, failed, may_try, succeeded
from govnet.sync.session import Child, ExchangeResult, exchange, in_thread
from govnet.sync.transport.base import LinkDown, ParentBusy, Refused, Transport

log = logging.getLogger("govnet.sync")


class LinkStateStore(Protocol):
    def load_state(self) -> LinkState: ...

    def save_state(self, state: LinkState) -> None: ...


class Now(Protocol):
    def now(self) -> datetime: ...


class LinkDriver:
    def __init__(
        self,
        child: Child,
        states: LinkStateStore,
        transport: Transport,
        clock: Now,
        *,
        flush_interval_s: float = 0.5,
        digest_interval_s: float = 60.0,
        policy: BackoffPolicy = BackoffPolicy(),
        rng: random.Random | None = None,
        run: Callable[..., Awaitable[Any]] = in_thread,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.child = child
        self.states = states
        self.transport = transport
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.digest_interval_s = digest_interval_s
        self.policy = policy
        self.rng = rng or random.Random()
        self.run_blocking = run
        self.on_refused = on_refused
        self._last_digest: datetime | None = None
        self._wake = asyncio.Event()
        self.exchanges = 0
        # The driver owns the link's state; it is read from the store once and written
        # after every attempt (so a restarted node resumes its backoff).
        self.state: LinkState | None = None

    def wake(self) -> None:
        """Something new waits in the outbox: do not wait for the interval."""
        self._wake.set()

    async def attempt(self) -> ExchangeResult | None:
        """One exchange if the link may be tried now; records the outcome."""
        if self.state is None:
            self.state = await self.run_blocking(self.states.load_state)
        state = self.state
        now = self.clock.now()
        if not may_try(state, now):
            return None
        compare = self._last_digest is None or (now - self._last_digest).total_seconds() >= self.digest_interval_s
        result: ExchangeResult | None = None
        try:
            done = await exchange(self.transport, self.child, self.run_blocking, compare_digests=compare)
        except ParentBusy as exc:
            state = failed(state, self.clock.now(), str(exc), self.rng.random(), self.policy, exc.retry_after_s)
        except Refused as exc:
            log.error("parent refused this node", extra={"link": state.neighbour, "error": str(exc)})
            if self.on_refused:
                self.on_refused(str(exc))
            state = failed(state, self.clock.now(), f"refused: {exc}", self.rng.random(), self.policy)
        except LinkDown as exc:
            state = failed(state, self.clock.now(), str(exc), self.rng.random(), self.policy)
        except Exception as exc:  # a bug or a store failure: record it, keep the loop alive
            log.exception("sync exchange failed", extra={"link": state.neighbour})
            state = failed(state, self.clock.now(), f"{exc.__class__.__name__}: {exc}", self.rng.random(), self.policy)
        else:
            result = done
            state = succeeded(state, self.clock.now())
            self.exchanges += 1
            if done.compared:
                self._last_digest = now
        self.state = state
        await self.run_blocking(self.states.save_state, state)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Exchange at least every flush interval and whenever woken — except while backing
        off, when only the backoff's end (or stop) ends the wait: a wake is a hint that
        there is work, not a reason to knock on a door that just failed."""
        while not stop.is_set():
            await self.attempt()
            assert self.state is not None
            self._wake.clear()
            if self.state.next_attempt is not None:
                wait = max(0.0, (self.state.next_attempt - self.clock.now()).total_seconds())
                waiters = {asyncio.ensure_future(stop.wait())}
            else:
                wait = self.flush_interval_s
                waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            _, pending = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
