"""Service windows on the mainland-China workday calendar (R-TEN-5).

Statutory holidays and make-up working days come from the maintained `chinese_calendar`
package; we only decide what a window means.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA = ZoneInfo("Asia/Shanghai")
WORKDAY_START = time(9, 0)
WORKDAY_END = time(18, 0)


class ServiceWindow(enum.StrEnum):
    always = "7x24"
    workdays = "workdays"


def is_workday(day: date) -> bool:
    """True on a mainland-China working day, make-up working days included."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # Beyond the library's published years: fall back to Monday-Friday.
        return day.weekday() < 5


def holiday_name(day: date) -> str | None:
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return name if on_holiday and name else None


def in_window(window: ServiceWindow | str, moment: datetime) -> bool:
    """Whether a service with this window is being delivered at `moment` (aware datetime)."""
    if ServiceWindow(window) is ServiceWindow.always:
        return True
    local = moment.astimezone(CHINA)
    return is_workday(local.date()) and WORKDAY_START <= local.time() < WORKDAY_END


def next_open(window: ServiceWindow | str, moment: datetime, horizon_days: int = 30) -> datetime:
    """The first moment at or after `moment` when the window is open."""
    if in_window(window, moment):
        return moment
    local = moment.astimezone(CHINA)
    day = local.date()
    for offset in range(horizon_days + 1):
        candidate = datetime.combine(day.fromordinal(day.toordinal() + offset), WORKDAY_START, CHINA)
        if candidate >= local and is_workday(candidate.date()):
            return candidate.astimezone(moment.tzinfo)
    return moment  # no working day within the horizon: do not hold the message forever
