"""Report pages: the list (staff draft and publish, customers download), one report, the buttons.

Downloads are the API's `/api/v1/reports/{id}/pdf|html` routes; the same session cookie works there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from opsdesk.alerting.models import Incident
from opsdesk.core.db import utcnow
from opsdesk.reports import access, api, service
from opsdesk.reports.models import Report, ReportKind, ReportStatus
from opsdesk.reports.period import BadMonth, parse_month, previous_month
from opsdesk.tenancy.models import Customer
from opsdesk.tenancy.pages import Form, Posted, done, page, translator_for
from opsdesk.web.deps import AnyUser, Ctx, Staff
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
LIST_LIMIT = 200
PORTAL_RECENT = 8


def rows(c: Ctx, request: Request, customer_id: int | None, kind: str) -> list[dict[str, Any]]:
    query = access.readable(c.principal)
    if customer_id:
        query = query.where(Report.customer_id == customer_id)
    if kind in ReportKind.__members__:
        query = query.where(Report.kind == ReportKind(kind))
    reports = c.db.scalars(
        query.order_by(Report.period_start.desc(), Report.id.desc()).limit(LIST_LIMIT)
    ).all()
    names = {x.id: x.name for x in c.db.scalars(select(Customer))}
    t = translator_for(request)
    return [
        {"report": r, "title": service.title(t, r), "customer": names.get(r.customer_id, "")} for r in reports
    ]


def list_page(request: Request, c: Ctx, form: Form | None = None, code: int = 200, customer_id: int = 0,
              kind: str = "") -> Response:  # fmt: skip
    customers = list(c.db.scalars(select(Customer).order_by(Customer.name)))
    year, month = previous_month(utcnow())
    form = form or Form("monthly", {"month": f"{year:04d}-{month:02d}"})
    return page(
        request, "reports.html", code, rows=rows(c, request, customer_id or None, kind), form=form,
        customer_choices=[(str(x.id), x.name) for x in customers], customer_id=customer_id, kind=kind,
        can_draft=c.principal.is_staff and c.principal.can_write,
    )  # fmt: skip


@router.get("/reports")
def reports_list(request: Request, c: AnyUser, customer_id: int = 0, kind: str = "") -> Response:
    return list_page(request, c, customer_id=customer_id, kind=kind)


@router.post("/reports/monthly")
def draft_monthly(request: Request, c: Staff, data: Posted) -> Response:
    c.require_write()
    t = translator_for(request)
    errors: dict[str, str] = {}
    customer_id = int(data["customer_id"]) if data.get("customer_id", "").isdigit() else 0
    customer = c.db.scalars(select(Customer).where(Customer.id == customer_id)).first()
    if customer is None:
        errors["customer_id"] = t("form.err.choice")
    try:
        year, month = parse_month(data.get("month", ""))
    except BadMonth:
        errors["month"] = t("report.err.month")
    if errors or customer is None:
        return list_page(request, c, Form("monthly", dict(data), errors), 422)
    try:
        report = service.monthly(c.db, c.rt.metrics, customer, year, month)
    except service.AlreadyPublished:
        return list_page(request, c, Form("monthly", dict(data), {"month": t("report.err.published")}), 409)
    return done(request, f"/reports/{report.id}", "report.flash.drafted")


@router.get("/reports/{report_id}")
def show_report(request: Request, c: AnyUser, report_id: int) -> Response:
    report = api.get_report(c, report_id)
    return detail(request, c, report)


def detail(request: Request, c: Ctx, report: Report, form: Form | None = None, code: int = 200) -> Response:
    editable = c.principal.is_staff and c.principal.can_write and report.status is ReportStatus.draft
    values = {name: getattr(report, name) for name in service.TEXT_FIELDS}
    customer = c.db.scalars(select(Customer).where(Customer.id == report.customer_id)).first()
    return page(
        request, "report.html", code, report=report, title=service.title(translator_for(request), report),
        customer=customer, editable=editable, form=form or Form("text", values), fields=service.TEXT_FIELDS,
    )  # fmt: skip


@router.post("/reports/{report_id}/edit")
def edit_report(request: Request, c: Staff, report_id: int, data: Posted) -> Response:
    c.require_write()
    report = api.get_report(c, report_id)
    too_long = {n: translator_for(request)("report.err.too_long") for n in service.TEXT_FIELDS
                if len(data.get(n, "")) > 20_000}  # fmt: skip
    if too_long:
        return detail(request, c, report, Form("text", dict(data), too_long), 422)
    with api.frozen_is_conflict():
        service.edit(report, {n: data.get(n, "") for n in service.TEXT_FIELDS})
    return done(request, f"/reports/{report.id}", "flash.saved")


@router.post("/reports/{report_id}/regenerate")
def regenerate(request: Request, c: Staff, report_id: int) -> Response:
    c.require_write()
    with api.frozen_is_conflict():
        service.regenerate(c.db, c.rt.metrics, api.get_report(c, report_id))
    return done(request, f"/reports/{report_id}", "report.flash.regenerated")


@router.post("/reports/{report_id}/publish")
def publish(request: Request, c: Staff, report_id: int) -> Response:
    c.require_write()
    with api.frozen_is_conflict():
        service.publish(api.get_report(c, report_id), c.principal.label)
    return done(request, f"/reports/{report_id}", "report.flash.published")


@router.post("/incidents/{incident_id}/fault-report")
def fault_report(request: Request, c: Staff, incident_id: int) -> Response:
    c.require_write()
    report = service.fault_of(c.db, c.get(Incident, incident_id))
    return done(request, f"/reports/{report.id}", "report.flash.drafted")


@router.get("/portal/reports")
def portal_reports(request: Request, c: AnyUser) -> Response:
    """The portal's latest published reports, loaded into its overview."""
    if c.principal.is_staff:
        return done(request, "/reports")
    return render(request, "_portal_reports.html", rows=rows(c, request, None, "")[:PORTAL_RECENT])
