"""Up, down or unknown: derived from the last contact, never stored, so it cannot go stale."""

from __future__ import annotations

from datetime import datetime, timedelta

from opsdesk.hosts.models import HostState, HostStatus


def host_status(state: HostState | None, now: datetime, down_after_intervals: int) -> HostStatus:
    if state is None:
        return HostStatus.unknown
    return status_at(state.last_seen_at, state.interval_s, now, down_after_intervals)


def status_at(
    last_seen_at: datetime | None, interval_s: float, now: datetime, down_after_intervals: int
) -> HostStatus:
    """The same rule from bare columns, for lists that do not load whole HostState rows."""
    if last_seen_at is None:
        return HostStatus.unknown
    if now - last_seen_at > timedelta(seconds=interval_s * down_after_intervals):
        return HostStatus.down
    return HostStatus.up
