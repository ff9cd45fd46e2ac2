"""A wake-up call between parts of a node that are built before the task they wake.

Some work is done by a background task that otherwise looks only every so often: the
link driver sends what the outbox holds at least once per flush interval, the inbox's
apply task looks every second. A commit that queued something to send (an intake, an
alarm, an applied envelope that relays a message) or a batch just received should not
wait for that interval, so the part that did it rings a ``Wakeup``.

The parts that ring are built first and receive their ``Wakeup`` in their constructor;
the task that answers exists only once the node runs (the process's link driver and
apply task; a simulation runs none and steps the links itself), so it connects to the
``Wakeup`` when it starts. Nothing else about a part changes after it is built.

``ring`` may be called from any thread (commits finish on the store's writer thread and
in worker threads); a listener that must run on an event loop hops there itself.
"""

from __future__ import annotations

from collections.abc import Callable


class Wakeup:
    """Something waits for a background task: wake it now rather than at its next look."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def connect(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` at every ring from now on (the task that does the waiting work)."""
        self._listeners.append(listener)

    def ring(self) -> None:
        for listener in self._listeners:
            listener()
