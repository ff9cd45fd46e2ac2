"""How a link looks from the child's side, and how it changes on success and failure.

Pure: every function takes the state and ``now`` and returns the new state. The node
persists ``LinkState`` in its store, so backoff survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from govnet.sync.backoff import BackoffPolicy

OFFLINE_AFTER_FAILURES = 3


class Health(StrEnum):
    NEVER = "never"  # no exchange has succeeded yet
    CONNECTED = "connected"
    RETRYING = "retrying"
    OFFLINE = "offline"
    LAGGING = "lagging"  # shown only: connected, but items wait past the flush interval


@dataclass(frozen=True)
class LinkState:
    neighbour: str
    health: Health = Health.NEVER
    since: datetime | None = None
    failures: int = 0
    next_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str = ""


def succeeded(state: LinkState, now: datetime) -> LinkState:
    """Any contact resets the backoff."""
    since = state.since if state.health is Health.CONNECTED else now
    return replace(state, health=Health.CONNECTED, since=since, failures=0, next_attempt=None,
                   last_success=now)


def failed(state: LinkState, now: datetime, error: str, draw: float, policy: BackoffPolicy,
           hint_s: float = 0.0) -> LinkState:
    failures = state.failures + 1
    health = Health.OFFLINE if failures >= OFFLINE_AFTER_FAILURES else Health.RETRYING
    since = state.since if state.health is health else now
    delay = policy.delay(failures, draw, hint_s)
    return replace(state, health=health, since=since, failures=failures,
                   next_attempt=now + timedelta(seconds=delay), last_error=error)


def may_try(state: LinkState, now: datetime) -> bool:
    return state.next_attempt is None or now >= state.next_attempt


def shown_health(state: LinkState, now: datetime, oldest_waiting: datetime | None,
                 flush_interval: timedelta) -> Health:
    """A link is never shown healthy while items wait past the flush interval."""
    if state.health is Health.CONNECTED and oldest_waiting is not None and now - oldest_waiting > flush_interval:
        return Health.LAGGING
    return state.health
