"""Who is on duty: rotations with hand-offs at a fixed time, and overrides that win over them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from opsdesk.core.db import Base, Timestamped, UTCDateTime


class OnCallSchedule(Timestamped, Base):
    """The provider's duty rota (not a customer's row: one rota serves many customers)."""

    __tablename__ = "oncall_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    members: Mapped[list[int]] = mapped_column(JSON, default=list)  # user ids in rotation order
    rotation_hours: Mapped[float] = mapped_column(Float, default=24.0)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the first hand-off


class OnCallOverride(Timestamped, Base):
    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())


def on_duty_in(schedule: OnCallSchedule, overrides: list[OnCallOverride], at: datetime) -> int | None:
    for o in sorted(overrides, key=lambda o: o.starts_at, reverse=True):  # the newest override wins
        if o.starts_at <= at < o.ends_at:
            return o.user_id
    if not schedule.members or at < schedule.starts_at:
        return schedule.members[0] if schedule.members else None
    shifts = int((at - schedule.starts_at).total_seconds() // (schedule.rotation_hours * 3600))
    return schedule.members[shifts % len(schedule.members)]


def on_duty(session: Session, at: datetime, schedule_name: str | None = None) -> int | None:
    """The user on duty at `at` in the named schedule (default: the first one with members)."""
    query = select(OnCallSchedule).order_by(OnCallSchedule.id)
    if schedule_name:
        query = query.where(OnCallSchedule.name == schedule_name)
    # An empty rota (being set up) puts nobody on duty: the next one does.
    schedule = next((s for s in session.scalars(query) if s.members), None)
    if schedule is None:
        return None
    overrides = list(session.scalars(select(OnCallOverride).where(OnCallOverride.schedule_id == schedule.id)))
    return on_duty_in(schedule, overrides, at)
