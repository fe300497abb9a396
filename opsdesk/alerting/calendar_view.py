"""The duty calendar: who is on call when, shift by shift, over the coming weeks.

Every boundary (a rotation hand-off, an override starting or ending) splits time into shifts;
oncall.on_duty_in names the person of each, so the calendar and the pager always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule, on_duty_in
from opsdesk.core.calendar import CHINA


@dataclass(frozen=True)
class Shift:
    schedule_id: int
    starts_at: datetime
    ends_at: datetime
    user_id: int | None
    override: bool  # an override, not the rotation, puts this person on duty


def _handoffs(schedule: OnCallSchedule, start: datetime, end: datetime) -> list[datetime]:
    step = timedelta(hours=schedule.rotation_hours)
    if step <= timedelta(0):
        return []
    first = schedule.starts_at
    if first < start:
        first += step * int((start - first) / step)
    out = []
    moment = first
    while moment < end:
        if moment > start:
            out.append(moment)
        moment += step
    return out


def shifts(
    schedule: OnCallSchedule, overrides: list[OnCallOverride], start: datetime, end: datetime
) -> list[Shift]:
    cuts = {start, end, *_handoffs(schedule, start, end)}
    for o in overrides:
        cuts.update(t for t in (o.starts_at, o.ends_at) if start < t < end)
    points = sorted(cuts)
    out: list[Shift] = []
    for a, b in pairwise(points):
        user = on_duty_in(schedule, overrides, a)
        by_override = any(o.starts_at <= a < o.ends_at for o in overrides)
        if out and out[-1].user_id == user and out[-1].override == by_override:
            out[-1] = Shift(schedule.id, out[-1].starts_at, b, user, by_override)  # same person carries on
        else:
            out.append(Shift(schedule.id, a, b, user, by_override))
    return out


def by_day(found: list[Shift], first: date, days: int) -> list[tuple[date, list[Shift]]]:
    """Shifts that touch each Beijing calendar day, in order."""
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        lo = datetime.combine(day, datetime.min.time(), CHINA)
        hi = lo + timedelta(days=1)
        out.append((day, [s for s in found if s.starts_at < hi and s.ends_at > lo]))
    return out
