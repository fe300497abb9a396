"""The figures of a fault report (R-INC-6): what happened when, to what, and for how long.

The timeline is the incident's public one: internal notes and notification recipients stay with
the provider, because the report is written for the customer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.alerting.incidents import SENTENCE_ONLY
from opsdesk.alerting.models import Alert, Incident, IncidentEvent
from opsdesk.reports.period import minutes_between
from opsdesk.tenancy.models import Asset, Customer

SENTENCE_KEYS = ("rule", "level", "silence", "side", "before", "after")


def public_timeline(session: Session, incident: Incident) -> list[dict[str, Any]]:
    events = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id, IncidentEvent.internal.is_(False))
        .order_by(IncidentEvent.at, IncidentEvent.id)
    )
    return [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "actor": e.actor,
            "body": "" if e.kind in SENTENCE_ONLY else e.body,
            "data": {k: (e.data or {})[k] for k in SENTENCE_KEYS if k in (e.data or {})},
        }
        for e in events
    ]


def fault_data(session: Session, incident: Incident) -> dict[str, Any]:
    customer = session.get(Customer, incident.customer_id)
    asset = session.get(Asset, incident.asset_id) if incident.asset_id else None
    alerts = session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.since))
    return {
        "customer": {"id": incident.customer_id, "code": customer.code if customer else "",
                     "name": customer.name if customer else ""},
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity.value,
            "status": incident.status.value,
            "source": incident.source.value,
            "cause": incident.cause.value,
            "opened_at": incident.opened_at.isoformat(),
            "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "minutes_to_acknowledge": minutes_between(incident.opened_at, incident.acknowledged_at),
            "minutes_to_resolve": minutes_between(incident.opened_at, incident.resolved_at),
        },
        "asset": {"name": asset.name, "type": asset.type.value, "ip": asset.ip} if asset else None,
        "alerts": [
            {"rule": a.rule_key, "severity": a.severity.value, "since": a.since.isoformat(),
             "summary": a.summary, "value": a.value}
            for a in alerts
        ],
        "timeline": public_timeline(session, incident),
    }  # fmt: skip
