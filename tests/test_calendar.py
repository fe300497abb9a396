"""The mainland-China workday calendar and service windows (R-TEN-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from opsdesk.core.calendar import CHINA, ServiceWindow, holiday_name, in_window, is_workday


@pytest.mark.parametrize(
    ("day", "workday", "holiday"),
    [
        (date(2026, 1, 1), False, "New Year's Day"),  # 元旦
        (date(2026, 1, 4), True, None),  # Sunday made a working day (调休)
        (date(2026, 2, 17), False, "Spring Festival"),  # 春节, Tuesday
        (date(2026, 2, 14), True, None),  # Saturday made a working day
        (date(2026, 4, 6), False, "Tomb-sweeping Day"),  # 清明, Monday
        (date(2026, 5, 1), False, "Labour Day"),
        (date(2026, 6, 19), False, "Dragon Boat Festival"),  # 端午, Friday
        (date(2026, 9, 20), True, None),  # Sunday made a working day
        (date(2026, 10, 1), False, "National Day"),
        (date(2026, 10, 10), True, None),  # Saturday made a working day
        (date(2026, 11, 24), True, None),  # an ordinary Tuesday
        (date(2026, 11, 29), False, None),  # an ordinary Sunday
    ],
)
def test_2026_holidays_and_make_up_days(day: date, workday: bool, holiday: str | None) -> None:
    assert is_workday(day) is workday
    assert holiday_name(day) == holiday


def test_workday_window_follows_the_calendar_and_hours() -> None:
    def at(y: int, m: int, d: int, h: int) -> datetime:
        return datetime(y, m, d, h, tzinfo=CHINA)

    assert in_window(ServiceWindow.workdays, at(2026, 11, 24, 10))
    assert not in_window(ServiceWindow.workdays, at(2026, 11, 24, 20))  # evening
    assert not in_window(ServiceWindow.workdays, at(2026, 10, 1, 10))  # National Day
    assert in_window(ServiceWindow.workdays, at(2026, 10, 10, 10))  # make-up Saturday
    assert in_window(ServiceWindow.always, at(2026, 10, 1, 3))
    # 02:00 UTC is 10:00 in Beijing
    assert in_window(ServiceWindow.workdays, datetime(2026, 11, 24, 2, tzinfo=UTC))


def test_next_open_skips_nights_and_holidays() -> None:
    from opsdesk.core.calendar import next_open

    # 03:00 on National Day (a Thursday): the holiday runs to the 7th; 8 October 09:00 opens
    assert next_open(ServiceWindow.workdays, datetime(2026, 10, 1, 3, tzinfo=CHINA)) == datetime(
        2026, 10, 8, 9, tzinfo=CHINA
    )
    # a Tuesday evening waits for Wednesday morning; an open window is now
    assert next_open(ServiceWindow.workdays, datetime(2026, 11, 24, 20, tzinfo=CHINA)) == datetime(
        2026, 11, 25, 9, tzinfo=CHINA
    )
    now = datetime(2026, 11, 24, 10, tzinfo=CHINA)
    assert next_open(ServiceWindow.workdays, now) == now == next_open(ServiceWindow.always, now)
