"""A parent's bound on batches it works on at once.

When many children reconnect together, a parent that accepted everything would time
out on all of them. It admits a bounded number of batches and tells the rest to come
back later (RESOURCE_EXHAUSTED with a retry hint), growing the hint with the queue.
"""

from __future__ import annotations

import threading


class Busy(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many batches in progress; retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class Admission:
    def __init__(self, limit: int, hint_s: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("admission limit must be at least 1")
        self.limit = limit
        self.hint_s = hint_s
        self._in = 0
        self._refused = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self._in >= self.limit:
                self._refused += 1
                raise Busy(self.hint_s * (1 + min(self._refused, 30) / 10))
            self._in += 1
            self._refused = 0

    def leave(self) -> None:
        with self._lock:
            self._in -= 1

    @property
    def in_progress(self) -> int:
        return self._in
