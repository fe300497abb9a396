"""REST API for incidents: list, timeline, acknowledge, assign, comment, resolve; customer reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.alerting import incidents as service
from opsdesk.alerting.models import (
    Alert,
    CauseCategory,
    Incident,
    IncidentEvent,
    IncidentSource,
    IncidentStatus,
)
from opsdesk.alerting.rules import Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.db import utcnow
from opsdesk.tenancy.models import Asset, Customer
from opsdesk.web.deps import AnyUser
from opsdesk.web.guard import self_service

router = APIRouter(prefix="/api/v1", tags=["incidents"])


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    asset_id: int | None
    title: str
    severity: Severity
    status: IncidentStatus
    source: IncidentSource
    cause: CauseCategory
    assignee_id: int | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


class TimelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    actor: str
    body: str
    data: dict[str, Any]
    internal: bool


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_key: str
    asset_id: int | None
    labels: dict[str, str]
    severity: Severity
    state: AlertState
    since: datetime
    value: float | None
    summary: str
    flapping: bool
    incident_id: int | None


class ReportIn(BaseModel):
    """A customer reports an anomaly first (R-INC-4), from the portal or by a staff member."""

    title: str = Field(min_length=3, max_length=300)
    description: str = Field("", max_length=10_000)
    asset_id: int | None = None
    severity: Severity = Severity.p3
    source: IncidentSource = IncidentSource.portal


class UpdateIn(BaseModel):
    status: IncidentStatus | None = None
    assignee_id: int | None = None
    cause: CauseCategory | None = None
    severity: Severity | None = None


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)
    internal: bool = False  # staff-only note, never shown to the customer


@router.get("/incidents", response_model=list[IncidentOut])
def list_incidents(
    c: AnyUser,
    status: list[IncidentStatus] = Query(default=[]),
    customer_id: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    """Incidents the caller may see (scoped), newest first."""
    q = select(Incident).order_by(Incident.opened_at.desc()).limit(limit)
    if status:
        q = q.where(Incident.status.in_(status))
    if customer_id is not None:
        q = q.where(Incident.customer_id == customer_id)
    return c.db.scalars(q)


@router.post("/customers/{customer_id}/incidents", response_model=IncidentOut, status_code=201)
@self_service
def report_incident(c: AnyUser, customer_id: int, body: ReportIn) -> Any:
    c.get(Customer, customer_id)
    if c.principal.is_staff:
        c.require_write()
    elif body.source is not IncidentSource.portal:
        raise HTTPException(422, "source: customers report through the portal")
    if body.asset_id is not None and c.get(Asset, body.asset_id).customer_id != customer_id:
        raise HTTPException(422, "asset_id: no such asset of this customer")
    return service.open_reported(
        c.db,
        customer_id,
        body.title,
        body.description,
        body.severity,
        body.source,
        actor=c.principal.label,
        asset_id=body.asset_id,
    )


@router.get("/incidents/{incident_id}", response_model=IncidentOut)
def get_incident(c: AnyUser, incident_id: int) -> Any:
    return c.get(Incident, incident_id)


@router.get("/incidents/{incident_id}/timeline", response_model=list[TimelineOut])
def get_timeline(c: AnyUser, incident_id: int) -> Any:
    incident = c.get(Incident, incident_id)
    q = select(IncidentEvent).where(IncidentEvent.incident_id == incident.id).order_by(IncidentEvent.at)
    if not c.principal.is_staff:
        q = q.where(IncidentEvent.internal.is_(False))  # internal notes stay with the provider
    return c.db.scalars(q)


@router.get("/incidents/{incident_id}/alerts", response_model=list[AlertOut])
def incident_alerts(c: AnyUser, incident_id: int) -> Any:
    incident = c.get(Incident, incident_id)
    return c.db.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.since))


@router.post("/incidents/{incident_id}/acknowledge", response_model=IncidentOut)
def acknowledge(c: AnyUser, incident_id: int) -> Any:
    incident = c.get(Incident, incident_id)
    c.require_write()
    if incident.status is IncidentStatus.open:
        service.set_status(c.db, incident, IncidentStatus.acknowledged, utcnow(), actor=c.principal.label)
    if incident.assignee_id is None and c.principal.user_id is not None:
        incident.assignee_id = c.principal.user_id
    return incident


@router.patch("/incidents/{incident_id}", response_model=IncidentOut)
def update_incident(c: AnyUser, incident_id: int, body: UpdateIn) -> Any:
    incident = c.get(Incident, incident_id)
    c.require_write()
    now = utcnow()
    if body.assignee_id is not None and body.assignee_id != incident.assignee_id:
        user = c.db.get(User, body.assignee_id)
        if user is None or user.customer_id is not None or not user.is_active:
            raise HTTPException(422, "assignee_id: not an active staff member")
        incident.assignee_id = user.id
        service.timeline(
            c.db, incident, "assigned", now, actor=c.principal.label, body=user.display_name or user.username
        )
    if body.cause is not None and body.cause is not incident.cause:
        before = incident.cause
        incident.cause = body.cause
        service.timeline(
            c.db, incident, "cause", now, actor=c.principal.label, before=before.value, after=body.cause.value
        )
        if body.cause is CauseCategory.customer_application:
            service.announce(c.db, incident, "customer_cause")  # R-INC-5: tell the customer
    if body.severity is not None and body.severity is not incident.severity:
        service.timeline(
            c.db,
            incident,
            "severity",
            now,
            actor=c.principal.label,
            before=incident.severity.value,
            after=body.severity.value,
        )
        incident.severity = body.severity
    if body.status is not None:
        service.set_status(c.db, incident, body.status, now, actor=c.principal.label)
    return incident


@router.post("/incidents/{incident_id}/comments", response_model=TimelineOut, status_code=201)
@self_service
def comment(c: AnyUser, incident_id: int, body: CommentIn) -> Any:
    """Staff add notes (internal or visible); customers add visible comments to their incidents."""
    incident = c.get(Incident, incident_id)
    if c.principal.is_staff:
        c.require_write()
    elif body.internal:
        raise HTTPException(422, "internal: only staff write internal notes")
    event = service.timeline(
        c.db, incident, "comment", utcnow(), actor=c.principal.label, body=body.body, internal=body.internal
    )
    c.db.flush()
    return event


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    c: AnyUser, state: list[AlertState] = Query(default=[AlertState.firing, AlertState.pending])
) -> Any:
    if not c.principal.is_staff:
        raise HTTPException(404, "not found")
    return c.db.scalars(select(Alert).where(Alert.state.in_(state)).order_by(Alert.since.desc()))
