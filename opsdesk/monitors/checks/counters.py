"""Per-second rates from server counters, kept between runs by the check instance.

A server reports totals since it started (queries, commits, requests); a rate needs two readings.
`Rates` keeps the last reading of each counter per target: the first run gives no rate, the
next ones the change divided by the time between readings. A counter that went down means the
server restarted: no rate for that run, and counting starts again from the new reading.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

# Readings older than this are forgotten (a target that is no longer checked).
FORGET_S = 6 * 3600.0


class Rates:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, float]] = {}
        self._pruned = time.monotonic()

    def rate(self, target: str, name: str, value: float, now: float | None = None) -> float | None:
        """Change of counter `name` of `target` per second since the last reading, or None."""
        now = time.monotonic() if now is None else now
        key = (target, name)
        previous = self._last.get(key)
        self._last[key] = (now, value)
        self._prune(now)
        if previous is None:
            return None
        elapsed, delta = now - previous[0], value - previous[1]
        if elapsed <= 0 or delta < 0:
            return None
        return delta / elapsed

    def rates(
        self, target: str, counters: Mapping[str, float], names: Mapping[str, str], now: float | None = None
    ) -> dict[str, float]:
        """{rate name: per second} for each counter -> rate name in `names` found in `counters`."""
        now = time.monotonic() if now is None else now
        out: dict[str, float] = {}
        for counter, rate_name in names.items():
            if counter in counters:
                value = self.rate(target, counter, counters[counter], now)
                if value is not None:
                    out[rate_name] = round(value, 3)
        return out

    def _prune(self, now: float) -> None:
        if now - self._pruned < 600:
            return
        self._pruned = now
        self._last = {k: v for k, v in self._last.items() if now - v[0] < FORGET_S}
