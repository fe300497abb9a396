"""Up, down or unknown: derived from the last contact, never stored, so it cannot go stale."""

from __future__ import annotations

from datetime import datetime, timedelta

from opsdesk.hosts.models import HostState, HostStatus


def host_status(state: HostState | None, now: datetime, down_after_intervals: int) -> HostStatus:
    if state is None or state.last_seen_at is None:
        return HostStatus.unknown
    silent_for = now - state.last_seen_at
    if silent_for > timedelta(seconds=state.interval_s * down_after_intervals):
        return HostStatus.down
    return HostStatus.up
