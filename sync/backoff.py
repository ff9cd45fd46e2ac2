"""When to try a link again: full-jitter exponential backoff, capped at minutes.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads out the
retries of many children that lost their parent at the same moment, so they do not
come back as a storm. The cap is minutes, not days: a link that comes back is used
again soon. A parent's retry hint is a floor.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    base_s: float = 0.5
    cap_s: float = 120.0

    def delay(self, failures: int, draw: float, hint_s: float = 0.0) -> float:
        """Seconds to wait after ``failures`` consecutive failures; ``draw`` is uniform in [0, 1)."""
        if failures <= 0:
            return max(0.0, hint_s)
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 30))  # a float power: exact for powers of two
        return max(hint_s, draw * ceiling)
