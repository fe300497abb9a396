"""Login throttling: too many failures for a username or from an address within a window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from opsdesk.accounts.models import LoginAttempt
from opsdesk.core.db import utcnow


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


def check(
    session: Session,
    username: str,
    address: str,
    max_failures: int,
    window_s: int,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    since = now - timedelta(seconds=window_s)
    # Usernames fail per account; addresses get a wider allowance (offices share one address).
    for column, value, limit in (
        (LoginAttempt.username, username.lower(), max_failures),
        (LoginAttempt.address, address, max_failures * 4),
    ):
        last_success = select(func.max(LoginAttempt.at)).where(column == value, LoginAttempt.success)
        failures, oldest = session.execute(
            select(func.count(), func.min(LoginAttempt.at)).where(
                column == value,
                ~LoginAttempt.success,
                LoginAttempt.at > since,
                or_(
                    last_success.scalar_subquery().is_(None), LoginAttempt.at > last_success.scalar_subquery()
                ),
            )
        ).one()
        if failures >= limit:
            retry = int((oldest + timedelta(seconds=window_s) - now).total_seconds()) + 1
            raise Throttled(max(retry, 1))


def record(session: Session, username: str, address: str, success: bool, now: datetime | None = None) -> None:
    session.add(LoginAttempt(username=username.lower(), address=address, success=success, at=now or utcnow()))
