"""Report periods: calendar months in Beijing time, as the contract and the customer count them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from opsdesk.core.calendar import CHINA

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BadMonth(ValueError):
    pass


def parse_month(text: str) -> tuple[int, int]:
    found = MONTH.fullmatch(text.strip())
    if not found:
        raise BadMonth(f"month {text!r}: use YYYY-MM, e.g. 2026-10")
    return int(found.group(1)), int(found.group(2))


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[first day 00:00, next month's first day 00:00) in Beijing time, as UTC datetimes."""
    start = datetime(year, month, 1, tzinfo=CHINA)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CHINA)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_month(now: datetime) -> tuple[int, int]:
    local = now.astimezone(CHINA)
    return (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)


def month_label(start: datetime) -> str:
    return start.astimezone(CHINA).strftime("%Y-%m")


def minutes_between(a: datetime | None, b: datetime | None) -> float | None:
    """Minutes from a to b to one decimal; None while either is unknown (not acknowledged yet)."""
    return None if a is None or b is None else round((b - a).total_seconds() / 60, 1)
