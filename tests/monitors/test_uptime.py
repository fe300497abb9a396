"""Uptime arithmetic: state changes, maintenance counted apart, edges of the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsdesk.monitors.models import MonitorState
from opsdesk.monitors.uptime import compute

T0 = datetime(2026, 11, 1, tzinfo=UTC)
UP, DOWN, UNKNOWN = MonitorState.up, MonitorState.down, MonitorState.unknown


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def test_down_time_and_ratio() -> None:
    u = compute(UP, [(h(10), DOWN), (h(11), UP)], [], h(0), h(24))
    assert (u.up_s, u.down_s) == (23 * 3600, 3600)
    assert u.percent == round(23 / 24 * 100, 3)


def test_maintenance_is_counted_apart() -> None:
    # down from 10:00 to 12:00, but 10:30-11:30 was planned maintenance
    u = compute(UP, [(h(10), DOWN), (h(12), UP)], [(h(10.5), h(11.5)), (h(11), h(11.25))], h(0), h(24))
    assert u.maintenance_s == 3600
    assert u.down_s == 3600
    assert u.up_s == 22 * 3600
    assert u.ratio == 22 / 23


def test_unknown_before_the_first_result_and_clipping() -> None:
    u = compute(UNKNOWN, [(h(6), UP), (h(30), DOWN)], [(h(-5), h(1))], h(0), h(12))
    assert u.unknown_s == 5 * 3600 and u.maintenance_s == 3600
    assert u.up_s == 6 * 3600 and u.down_s == 0
    assert compute(UNKNOWN, [], [], h(0), h(1)).ratio is None
