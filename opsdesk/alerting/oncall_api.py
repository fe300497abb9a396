"""REST API for the duty rota: schedules (members in rotation order, hand-off), overrides, calendar.

Staff read it; an admin or a project lead changes it. The rota is the provider's, not a
customer's, so customer users never see it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.alerting import access
from opsdesk.alerting.calendar_view import shifts
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule
from opsdesk.alerting.problems import FieldProblem
from opsdesk.core.db import utcnow
from opsdesk.web.deps import Ctx, Staff

router = APIRouter(prefix="/api/v1/oncall", tags=["on-call"])
MAX_CALENDAR_DAYS = 28


def _zoned(*moments: datetime | None) -> None:
    if any(m is not None and m.tzinfo is None for m in moments):
        raise ValueError("give times with a zone, e.g. 2026-11-29T09:00:00+08:00")


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    members: Annotated[list[int], Field(min_length=1, max_length=50)]
    rotation_hours: Annotated[float, Field(ge=1, le=24 * 28)] = 24.0
    starts_at: datetime

    @model_validator(mode="after")
    def _zone(self) -> ScheduleIn:
        _zoned(self.starts_at)
        return self


class SchedulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    members: Annotated[list[int] | None, Field(min_length=1, max_length=50)] = None
    rotation_hours: Annotated[float | None, Field(ge=1, le=24 * 28)] = None
    starts_at: datetime | None = None

    @model_validator(mode="after")
    def _zone(self) -> SchedulePatch:
        _zoned(self.starts_at)
        return self


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    members: list[int]
    rotation_hours: float
    starts_at: datetime


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _period(self) -> OverrideIn:
        _zoned(self.starts_at, self.ends_at)
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    schedule_id: int
    user_id: int
    starts_at: datetime
    ends_at: datetime


class ShiftOut(BaseModel):
    schedule_id: int
    starts_at: datetime
    ends_at: datetime
    user_id: int | None
    user: str
    override: bool


def staff_on_call(c: Ctx) -> dict[int, User]:
    """Active staff: who may be put on the rota."""
    query = select(User).where(User.customer_id.is_(None), User.is_active).order_by(User.username)
    return {u.id: u for u in c.db.scalars(query)}


def _check_people(c: Ctx, field: str, ids: list[int]) -> None:
    people = staff_on_call(c)
    if any(i not in people for i in ids):
        raise FieldProblem(field, "alerting.err.not_staff")
    if len(set(ids)) != len(ids):
        raise FieldProblem(field, "alerting.err.duplicate_member")


def _unique_name(c: Ctx, name: str, own_id: int | None = None) -> None:
    found = c.db.scalars(select(OnCallSchedule.id).where(OnCallSchedule.name == name)).first()
    if found is not None and found != own_id:
        raise FieldProblem("name", "form.err.taken")


def create_schedule(c: Ctx, body: ScheduleIn) -> OnCallSchedule:
    access.require_manage(c)
    _check_people(c, "members", body.members)
    _unique_name(c, body.name)
    schedule = OnCallSchedule(**body.model_dump())
    with access.provider_rows(c):
        c.db.add(schedule)
    return schedule


def update_schedule(c: Ctx, schedule_id: int, body: SchedulePatch) -> OnCallSchedule:
    schedule = c.get(OnCallSchedule, schedule_id)
    access.require_manage(c)
    if body.members is not None:
        _check_people(c, "members", body.members)
    if body.name is not None:
        _unique_name(c, body.name, schedule.id)
    with access.provider_rows(c):
        for key, value in body.model_dump(exclude_none=True).items():
            setattr(schedule, key, value)
    return schedule


def delete_schedule(c: Ctx, schedule_id: int) -> None:
    schedule = c.get(OnCallSchedule, schedule_id)
    with access.provider_rows(c):
        for o in c.db.scalars(select(OnCallOverride).where(OnCallOverride.schedule_id == schedule.id)):
            c.db.delete(o)  # deleted one by one, so that each is in the audit log
        c.db.delete(schedule)


def add_override(c: Ctx, schedule_id: int, body: OverrideIn) -> OnCallOverride:
    schedule = c.get(OnCallSchedule, schedule_id)
    access.require_manage(c)
    _check_people(c, "user_id", [body.user_id])
    row = OnCallOverride(schedule_id=schedule.id, **body.model_dump())
    with access.provider_rows(c):
        c.db.add(row)
    return row


def delete_override(c: Ctx, oncall_override_id: int) -> OnCallOverride:
    row = c.get(OnCallOverride, oncall_override_id)
    with access.provider_rows(c):
        c.db.delete(row)
    return row


def calendar(c: Ctx, start: datetime, days: int) -> list[ShiftOut]:
    end = start + timedelta(days=days)
    people = staff_on_call(c)
    out: list[ShiftOut] = []
    for schedule in c.db.scalars(select(OnCallSchedule).order_by(OnCallSchedule.id)):
        overrides = list(
            c.db.scalars(
                select(OnCallOverride).where(
                    OnCallOverride.schedule_id == schedule.id,
                    OnCallOverride.ends_at > start,
                    OnCallOverride.starts_at < end,
                )
            )
        )
        for s in shifts(schedule, overrides, start, end):
            user = people.get(s.user_id or 0)
            name = (user.display_name or user.username) if user else ""
            out.append(ShiftOut(**s.__dict__, user=name))
    return out


def _fail(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FieldProblem as problem:
        raise problem.http() from problem


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(c: Staff) -> Any:
    return c.db.scalars(select(OnCallSchedule).order_by(OnCallSchedule.id))


@router.post("/schedules", response_model=ScheduleOut, status_code=201)
def post_schedule(c: Staff, body: ScheduleIn) -> Any:
    return _fail(create_schedule, c, body)


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
def get_schedule(c: Staff, schedule_id: int) -> Any:
    return c.get(OnCallSchedule, schedule_id)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut)
def patch_schedule(c: Staff, schedule_id: int, body: SchedulePatch) -> Any:
    return _fail(update_schedule, c, schedule_id, body)


@router.delete("/schedules/{schedule_id}", status_code=204)
def remove_schedule(c: Staff, schedule_id: int) -> None:
    delete_schedule(c, schedule_id)


@router.get("/schedules/{schedule_id}/overrides", response_model=list[OverrideOut])
def list_overrides(c: Staff, schedule_id: int) -> Any:
    schedule = c.get(OnCallSchedule, schedule_id)
    query = select(OnCallOverride).where(OnCallOverride.schedule_id == schedule.id)
    return c.db.scalars(query.order_by(OnCallOverride.starts_at))


@router.post("/schedules/{schedule_id}/overrides", response_model=OverrideOut, status_code=201)
def post_override(c: Staff, schedule_id: int, body: OverrideIn) -> Any:
    return _fail(add_override, c, schedule_id, body)


@router.delete("/overrides/{oncall_override_id}", status_code=204)
def remove_override(c: Staff, oncall_override_id: int) -> None:
    delete_override(c, oncall_override_id)


@router.get("/calendar", response_model=list[ShiftOut])
def get_calendar(
    c: Staff, start: datetime | None = None, days: int = Query(14, ge=1, le=MAX_CALENDAR_DAYS)
) -> Any:
    """Who is on duty, shift by shift, from `start` (default: now) for `days` days."""
    moment = start if start is not None and start.tzinfo else utcnow()
    return calendar(c, moment.astimezone(UTC), days)
