"""Uptime over any period from the state changes, with maintenance counted apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opsdesk.monitors.models import MonitorState


@dataclass(frozen=True)
class Uptime:
    up_s: float
    down_s: float
    maintenance_s: float  # inside a maintenance window, whatever the state
    unknown_s: float  # before the first result
    ratio: float | None  # up / (up + down); None when nothing was measured

    @property
    def percent(self) -> float | None:
        return None if self.ratio is None else round(self.ratio * 100, 3)


def _overlap(a0: datetime, a1: datetime, spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds of [a0, a1) covered by the (merged) spans."""
    total = 0.0
    for s0, s1 in spans:
        lo, hi = max(a0, s0), min(a1, s1)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s0, s1 in sorted(spans):
        if out and s0 <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], s1))
        else:
            out.append((s0, s1))
    return out


def compute(
    state_at_start: MonitorState,
    changes: list[tuple[datetime, MonitorState]],
    maintenance: list[tuple[datetime, datetime]],
    start: datetime,
    end: datetime,
) -> Uptime:
    """`changes` are (time, new state) inside [start, end), in order."""
    windows = _merge(maintenance)
    totals = {state: 0.0 for state in MonitorState}
    maintenance_s = 0.0
    state, at = state_at_start, start
    for when, new in [*changes, (end, state_at_start)]:
        when = min(max(when, start), end)
        if when > at:
            span = (when - at).total_seconds()
            in_maint = _overlap(at, when, windows)
            maintenance_s += in_maint
            # A warning still serves: it counts as up.
            totals[MonitorState.up if state is MonitorState.warning else state] += span - in_maint
        state, at = new, max(at, when)
    measured = totals[MonitorState.up] + totals[MonitorState.down]
    return Uptime(
        up_s=totals[MonitorState.up],
        down_s=totals[MonitorState.down],
        maintenance_s=maintenance_s,
        unknown_s=totals[MonitorState.unknown],
        ratio=totals[MonitorState.up] / measured if measured else None,
    )
