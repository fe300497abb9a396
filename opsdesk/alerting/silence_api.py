"""REST API for silences: create, list and expire (staff; a customer user only reads elsewhere)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select

from opsdesk.alerting.models import Silence
from opsdesk.alerting.problems import FieldProblem
from opsdesk.alerting.rules import DEFAULTS
from opsdesk.alerting.silences import MatchOp
from opsdesk.core.db import utcnow
from opsdesk.tenancy.models import Asset, Customer
from opsdesk.web.deps import Staff

router = APIRouter(prefix="/api/v1", tags=["silences"])
MAX_SILENCE = timedelta(days=30)  # a longer one is a maintenance contract change, not a silence
RULE_KEYS = frozenset(rule.key for rules in DEFAULTS.values() for rule in rules)


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=64)]
    op: MatchOp = "="
    value: Annotated[str, Field(max_length=200)]

    @model_validator(mode="after")
    def _regex(self) -> MatcherIn:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return self


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_id: int | None = None
    rule_key: Annotated[str, Field(max_length=64)] = ""
    matchers: Annotated[list[MatcherIn], Field(max_length=20)] = []
    starts_at: datetime | None = None  # default: now
    ends_at: datetime | None = None
    duration_h: Annotated[float | None, Field(gt=0, le=MAX_SILENCE.days * 24)] = None
    comment: Annotated[str, Field(min_length=3, max_length=2000)]

    @field_validator("rule_key")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value and value not in RULE_KEYS:
            raise ValueError("no such rule")
        return value

    @model_validator(mode="after")
    def _period(self) -> SilenceIn:
        if (self.ends_at is None) == (self.duration_h is None):
            raise ValueError("give either ends_at or duration_h")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("give times with a zone, e.g. 2026-11-29T02:00:00+08:00")
        return self

    def period(self, now: datetime) -> tuple[datetime, datetime]:
        starts = self.starts_at or now
        ends = self.ends_at or starts + timedelta(hours=self.duration_h or 0)
        return starts, ends


class SilenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    asset_id: int | None
    rule_key: str
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    active: bool = False


def out(silence: Silence, now: datetime) -> SilenceOut:
    row = SilenceOut.model_validate(silence)
    row.active = silence.starts_at <= now < silence.ends_at
    return row


def create(c: Staff, customer_id: int, body: SilenceIn) -> Silence:
    """Shared by the API and the page: checks that the API schema cannot do alone."""
    c.get(Customer, customer_id)
    c.require_write()
    if body.asset_id is not None and c.get(Asset, body.asset_id).customer_id != customer_id:
        raise FieldProblem("asset_id", "form.err.choice")
    now = utcnow()
    starts, ends = body.period(now)
    if ends <= starts or ends <= now:
        raise FieldProblem("ends_at", "alerting.err.silence_period")
    if ends - starts > MAX_SILENCE:
        raise FieldProblem("ends_at", "alerting.err.silence_too_long")
    silence = Silence(
        customer_id=customer_id,
        asset_id=body.asset_id,
        rule_key=body.rule_key,
        matchers=[m.model_dump() for m in body.matchers],
        starts_at=starts,
        ends_at=ends,
        comment=body.comment,
        created_by=c.principal.label,
        created_by_id=c.principal.user_id,
    )
    c.db.add(silence)
    c.db.flush()
    return silence


def expire(c: Staff, silence_id: int) -> Silence:
    silence = c.get(Silence, silence_id)
    c.require_write()
    now = utcnow()
    if silence.ends_at > now:
        silence.ends_at = now
        silence.starts_at = min(silence.starts_at, now)  # a future one simply never starts
    c.db.flush()
    return silence


def query(state: str, customer_id: int | None = None) -> Any:
    now = utcnow()
    q = select(Silence).order_by(Silence.ends_at.desc(), Silence.id.desc())
    if customer_id is not None:
        q = q.where(Silence.customer_id == customer_id)
    if state == "active":
        q = q.where(Silence.ends_at > now)  # running or still to come
    elif state == "expired":
        q = q.where(Silence.ends_at <= now)
    return q


State = Literal["active", "expired", "all"]


@router.get("/silences", response_model=list[SilenceOut])
def list_all(c: Staff, state: State = "active", limit: int = Query(200, ge=1, le=1000)) -> Any:
    now = utcnow()
    return [out(s, now) for s in c.db.scalars(query(state).limit(limit))]


@router.get("/customers/{customer_id}/silences", response_model=list[SilenceOut])
def list_silences(c: Staff, customer_id: int, state: State = "all") -> Any:
    c.get(Customer, customer_id)
    now = utcnow()
    return [out(s, now) for s in c.db.scalars(query(state, customer_id))]


@router.post("/customers/{customer_id}/silences", response_model=SilenceOut, status_code=201)
def create_silence(c: Staff, customer_id: int, body: SilenceIn) -> Any:
    try:
        return out(create(c, customer_id, body), utcnow())
    except FieldProblem as problem:
        raise problem.http() from problem


@router.post("/silences/{silence_id}/expire", response_model=SilenceOut)
def expire_silence(c: Staff, silence_id: int) -> Any:
    return out(expire(c, silence_id), utcnow())
