"""Incidents: alerts grouped by customer and asset, a lifecycle, and a timeline of everything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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

OPEN = (IncidentStatus.open, IncidentStatus.acknowledged, IncidentStatus.mitigated)
# Called after an incident opens or changes in a way people must hear about (see notify policy).
IncidentHook = Callable[[Session, Incident, str], None]
_hooks: list[IncidentHook] = []
# Timeline kinds whose body repeats what the translated sentence already says.
SENTENCE_ONLY = frozenset({"suppressed", "silenced", "escalated", "assigned", "notified"})


def on_incident_change(hook: IncidentHook) -> IncidentHook:
    _hooks.append(hook)
    return hook


def announce(session: Session, incident: Incident, what: str) -> None:
    for hook in _hooks:
        hook(session, incident, what)


def timeline(
    session: Session,
    incident: Incident,
    kind: str,
    at: datetime,
    actor: str = "",
    body: str = "",
    internal: bool = False,
    **data: Any,
) -> IncidentEvent:
    event = IncidentEvent(
        customer_id=incident.customer_id,
        incident_id=incident.id,
        at=at,
        kind=kind,
        actor=actor,
        body=body,
        data=data,
        internal=internal,
    )
    session.add(event)
    return event


def alert_fired(session: Session, alert: Alert, at: datetime) -> Incident:
    """Attach the alert to the asset's open incident, or open one."""
    incident = session.scalars(
        select(Incident)
        .where(
            Incident.customer_id == alert.customer_id,
            Incident.asset_id == alert.asset_id,
            Incident.status.in_(OPEN),
        )
        .order_by(Incident.id.desc())
    ).first()
    opened = incident is None
    if incident is None:
        incident = Incident(
            customer_id=alert.customer_id,
            asset_id=alert.asset_id,
            title=alert.summary[:300],
            severity=alert.severity,
            source=IncidentSource.alert,
            opened_at=at,
            status=IncidentStatus.open,
            cause=CauseCategory.unknown,
            escalation_level=0,
        )
        session.add(incident)
        session.flush()
    elif _rank(alert.severity) < _rank(incident.severity):
        incident.severity = alert.severity
    alert.incident_id = incident.id
    timeline(
        session,
        incident,
        "alert_fired",
        at,
        body=alert.summary,
        rule=alert.rule_key,
        severity=alert.severity.value,
        value=alert.value,
    )
    announce(session, incident, "opened" if opened else "alert_added")
    return incident


def alert_resolved(session: Session, alert: Alert, at: datetime) -> None:
    if alert.incident_id is None:
        return
    incident = session.get(Incident, alert.incident_id)
    if incident is None:
        return
    timeline(session, incident, "alert_resolved", at, body=alert.summary, rule=alert.rule_key)
    still = session.scalars(
        select(Alert.id).where(
            Alert.incident_id == incident.id, Alert.state == AlertState.firing, Alert.id != alert.id
        )
    ).first()
    if still is None and incident.status in OPEN:
        set_status(
            session, incident, IncidentStatus.resolved, at, actor="opsdesk", body="all alerts resolved"
        )


def set_status(
    session: Session, incident: Incident, status: IncidentStatus, at: datetime, actor: str, body: str = ""
) -> None:
    if incident.status is status:
        return
    before = incident.status
    incident.status = status
    if status is IncidentStatus.acknowledged and incident.acknowledged_at is None:
        incident.acknowledged_at = at
    if status is IncidentStatus.resolved:
        incident.resolved_at = at
    if status is IncidentStatus.closed:
        incident.closed_at = at
    timeline(session, incident, "status", at, actor=actor, body=body, before=before.value, after=status.value)
    announce(session, incident, status.value)


def _rank(severity: Severity) -> int:
    return int(severity.value[1])


def open_reported(
    session: Session,
    customer_id: int,
    title: str,
    description: str,
    severity: Severity,
    source: IncidentSource,
    actor: str,
    asset_id: int | None = None,
) -> Incident:
    """An incident a customer reported first (R-INC-4: portal, e-mail or phone), announced like any other."""
    now = utcnow()
    incident = Incident(
        customer_id=customer_id,
        asset_id=asset_id,
        title=title,
        severity=severity,
        source=source,
        status=IncidentStatus.open,
        cause=CauseCategory.unknown,
        opened_at=now,
        escalation_level=0,
    )
    session.add(incident)
    session.flush()
    timeline(session, incident, "reported", now, actor=actor, body=description)
    announce(session, incident, "opened")
    return incident
