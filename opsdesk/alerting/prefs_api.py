"""REST API for a customer's notification preferences: per severity, which of its channels and
whether at any hour (7x24) or inside the contract's service window.

A severity without a preference follows DESIGN.md's table (policy.ROUTES); the table below shows
both, so nobody has to remember the defaults. Admins and the customer's project lead change it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from opsdesk.alerting import access
from opsdesk.alerting.models import NotifyPreference
from opsdesk.alerting.policy import ROUTES
from opsdesk.alerting.problems import FieldProblem
from opsdesk.alerting.rules import Severity
from opsdesk.notify.models import NotifyChannel
from opsdesk.tenancy.models import Customer
from opsdesk.web.deps import Ctx, Staff

router = APIRouter(prefix="/api/v1", tags=["notification preferences"])


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Severity
    channel_ids: Annotated[list[int], Field(max_length=20)] = []  # empty: nobody on the customer's side
    always: bool = False


class PreferenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    severity: Severity
    channel_ids: list[int]
    always: bool


class SeverityRow(BaseModel):
    severity: Severity
    preference: PreferenceOut | None
    default_media: list[str]  # DESIGN.md's table for the customer's side
    default_always: bool


def channels_of(c: Ctx, customer_id: int) -> list[NotifyChannel]:
    query = select(NotifyChannel).where(NotifyChannel.customer_id == customer_id)
    return list(c.db.scalars(query.order_by(NotifyChannel.name)))


def rows(c: Ctx, customer_id: int) -> list[SeverityRow]:
    prefs = {
        p.severity: p
        for p in c.db.scalars(select(NotifyPreference).where(NotifyPreference.customer_id == customer_id))
    }
    return [
        SeverityRow(
            severity=s,
            preference=PreferenceOut.model_validate(prefs[s]) if s in prefs else None,
            default_media=list(ROUTES[s].customer),
            default_always=ROUTES[s].always,
        )
        for s in Severity
    ]


def save(c: Ctx, customer_id: int, body: PreferenceIn) -> NotifyPreference:
    c.get(Customer, customer_id)
    access.require_manage(c, customer_id)
    own = {ch.id for ch in channels_of(c, customer_id)}
    if any(i not in own for i in body.channel_ids):
        raise FieldProblem("channel_ids", "alerting.err.not_channel")
    found = c.db.scalars(
        select(NotifyPreference).where(
            NotifyPreference.customer_id == customer_id, NotifyPreference.severity == body.severity
        )
    ).first()
    row = found or NotifyPreference(customer_id=customer_id, severity=body.severity)
    row.channel_ids = sorted(set(body.channel_ids))
    row.always = body.always
    c.db.add(row)
    c.db.flush()
    return row


def reset(c: Ctx, preference_id: int) -> NotifyPreference:
    return access.delete_managed(c, NotifyPreference, preference_id)


@router.get("/customers/{customer_id}/notify-preferences", response_model=list[SeverityRow])
def list_preferences(c: Staff, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return rows(c, customer_id)


@router.put("/customers/{customer_id}/notify-preferences", response_model=PreferenceOut)
def put_preference(c: Staff, customer_id: int, body: PreferenceIn) -> Any:
    try:
        return save(c, customer_id, body)
    except FieldProblem as problem:
        raise problem.http() from problem


@router.delete("/notify-preferences/{preference_id}", status_code=204)
def delete_preference(c: Staff, preference_id: int) -> None:
    """Back to the default table for this severity."""
    reset(c, preference_id)
