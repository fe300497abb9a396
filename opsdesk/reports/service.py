"""Drafting, editing and publishing reports (who may read them: reports.access)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.alerting.models import Incident
from opsdesk.core.calendar import CHINA
from opsdesk.core.db import utcnow
from opsdesk.metrics.store import MetricStore
from opsdesk.reports.fault import fault_data
from opsdesk.reports.models import Report, ReportKind, ReportStatus
from opsdesk.reports.monthly import monthly_data
from opsdesk.reports.period import month_bounds, month_label
from opsdesk.tenancy.models import Customer
from opsdesk.web import i18n

TEXT_FIELDS = ("summary", "impact", "root_cause", "actions", "follow_up")


class AlreadyPublished(Exception):
    """A published report is what the customer received: it is not regenerated or edited."""


def title(t: i18n.Translate, report: Report) -> str:
    if report.kind is ReportKind.fault:
        incident = report.data.get("incident", {})
        return t("report.name.fault", id=incident.get("id", ""), title=incident.get("title", ""))
    return t("report.name.monthly", month=month_label(report.period_start),
             customer=report.data.get("customer", {}).get("name", ""))  # fmt: skip


def _titled(report: Report, customer: Customer) -> Report:
    report.title = title(i18n.translator(customer.language), report)
    return report


def monthly(session: Session, store: MetricStore, customer: Customer, year: int, month: int) -> Report:
    """The customer's report for the month: a new draft, or its draft gathered again."""
    start, end = month_bounds(year, month)
    report = session.scalars(
        select(Report).where(
            Report.customer_id == customer.id, Report.kind == ReportKind.monthly, Report.period_start == start
        )
    ).first()
    if report is not None and report.status is ReportStatus.published:
        raise AlreadyPublished(f"the {month_label(start)} report of {customer.code} is already published")
    # A month still running is reported up to now: future hours would count as unavailable.
    until = max(start, min(end, utcnow()))
    data = monthly_data(session, store, customer, start, until)  # before adding: queries autoflush
    if report is None:
        report = Report(customer_id=customer.id, kind=ReportKind.monthly, period_start=start, period_end=end)
    report.data = data
    report.generated_at = utcnow()
    session.add(_titled(report, customer))
    session.flush()  # the id and column defaults, for the caller's answer
    return report


def fault(session: Session, incident: Incident) -> Report:
    """The incident's fault report: a new draft, or its draft with the timeline gathered again."""
    report = session.scalars(select(Report).where(Report.incident_id == incident.id)).first()
    if report is not None and report.status is ReportStatus.published:
        raise AlreadyPublished(f"the fault report of incident {incident.id} is already published")
    data = fault_data(session, incident)  # before adding: its queries autoflush
    customer = session.get(Customer, incident.customer_id)
    assert customer is not None  # the incident is visible, so is its customer
    if report is None:
        report = Report(customer_id=incident.customer_id, kind=ReportKind.fault, incident_id=incident.id)
    report.period_start = incident.opened_at
    report.period_end = incident.resolved_at or utcnow()
    report.data = data
    report.generated_at = utcnow()
    session.add(_titled(report, customer))
    session.flush()  # the id and column defaults, for the caller's answer
    return report


def fault_of(session: Session, incident: Incident) -> Report:
    """What "write the fault report" gives: the published report as it is, else a fresh draft."""
    report = session.scalars(select(Report).where(Report.incident_id == incident.id)).first()
    if report is not None and report.status is ReportStatus.published:
        return report
    return fault(session, incident)


def regenerate(session: Session, store: MetricStore, report: Report) -> Report:
    if report.kind is ReportKind.fault:
        incident = session.get(Incident, report.incident_id) if report.incident_id else None
        if incident is None:
            raise LookupError("the incident of this report no longer exists")
        return fault(session, incident)
    customer = session.get(Customer, report.customer_id)
    assert customer is not None
    first = report.period_start.astimezone(CHINA)
    return monthly(session, store, customer, first.year, first.month)


def edit(report: Report, changes: dict[str, Any]) -> Report:
    if report.status is ReportStatus.published:
        raise AlreadyPublished("a published report is not edited; it is what the customer received")
    for name in TEXT_FIELDS:
        if name in changes and changes[name] is not None:
            setattr(report, name, str(changes[name]).strip())
    return report


def publish(report: Report, by: str, at: datetime | None = None) -> Report:
    if report.status is ReportStatus.published:
        raise AlreadyPublished("already published")
    report.status = ReportStatus.published
    report.published_at = at or utcnow()
    report.published_by = by
    return report
