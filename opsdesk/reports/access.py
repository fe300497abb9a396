"""Who may read which report: the one rule every report query goes through.

Staff read every report of the customers they look after; a customer's users read only the
published ones. Tenant scoping already keeps other customers' rows out of every query.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from opsdesk.accounts.principal import Principal
from opsdesk.reports.models import Report, ReportStatus


def readable(principal: Principal) -> Select[Report]:
    query = select(Report)
    if not principal.is_staff:
        query = query.where(Report.status == ReportStatus.published)
    return query


def find(session: Session, principal: Principal, report_id: int) -> Report | None:
    return session.scalars(readable(principal).where(Report.id == report_id)).first()


def of_incident(session: Session, principal: Principal, incident_id: int) -> Report | None:
    return session.scalars(readable(principal).where(Report.incident_id == incident_id)).first()
