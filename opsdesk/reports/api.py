"""REST API for reports: list, read, download (HTML or PDF), draft, edit, publish."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from opsdesk.alerting.models import Incident
from opsdesk.reports import access, render, service
from opsdesk.reports.models import Report, ReportKind, ReportStatus
from opsdesk.reports.period import BadMonth, parse_month
from opsdesk.tenancy.models import Customer
from opsdesk.web import i18n
from opsdesk.web.deps import AnyUser, Ctx, Staff
from opsdesk.web.templating import request_language

router = APIRouter(prefix="/api/v1", tags=["reports"])
Text = Annotated[str | None, Field(max_length=20_000)]
Format = Literal["pdf", "html"]
MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


class ReportOut(BaseModel):
    id: int
    customer_id: int
    kind: ReportKind
    status: ReportStatus
    incident_id: int | None
    period_start: datetime
    period_end: datetime
    title: str
    generated_at: datetime
    published_at: datetime | None


class ReportDetail(ReportOut):
    summary: str
    impact: str
    root_cause: str
    actions: str
    follow_up: str
    data: dict[str, Any]


class MonthlyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    month: Annotated[str, Field(examples=["2026-10"])]


class ReportEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: Text = None
    impact: Text = None
    root_cause: Text = None
    actions: Text = None
    follow_up: Text = None


def get_report(c: Ctx, report_id: int) -> Report:
    """404 for another customer's report and, for a customer's users, for a draft."""
    report = access.find(c.db, c.principal, report_id)
    if report is None:
        raise HTTPException(404, "not found")
    return report


def language(request: Request, lang: str | None) -> str:
    return i18n.normalise(lang) or request_language(request)


def document(request: Request, c: Ctx, report: Report, fmt: Format, lang: str | None) -> Response:
    chosen = language(request, lang)
    settings = c.rt.settings
    if fmt == "pdf":
        body: bytes | str = render.published_pdf(report, chosen, settings)
    else:
        body = render.html(report, chosen, settings)
    disposition = "attachment" if fmt == "pdf" or request.query_params.get("download") else "inline"
    name = render.filename(report, chosen, fmt)
    return Response(
        body, media_type=MEDIA[fmt], headers={"Content-Disposition": f'{disposition}; filename="{name}"'}
    )


@contextmanager
def frozen_is_conflict() -> Iterator[None]:
    """A published report is not changed: 409 with the reason."""
    try:
        yield
    except service.AlreadyPublished as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/reports", response_model=list[ReportOut])
def list_reports(
    c: AnyUser,
    customer_id: int | None = None,
    kind: ReportKind | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    query = access.readable(c.principal)
    if customer_id is not None:
        query = query.where(Report.customer_id == customer_id)
    if kind is not None:
        query = query.where(Report.kind == kind)
    return list(c.db.scalars(query.order_by(Report.period_start.desc(), Report.id.desc()).limit(limit)))


@router.get("/reports/{report_id}", response_model=ReportDetail)
def read_report(c: AnyUser, report_id: int) -> Any:
    return get_report(c, report_id)


@router.get("/reports/{report_id}/pdf", response_class=Response)
def download_pdf(request: Request, c: AnyUser, report_id: int, lang: str | None = None) -> Response:
    """The report as PDF (A4) in `lang` (zh-CN or en; default: the caller's language)."""
    return document(request, c, get_report(c, report_id), "pdf", lang)


@router.get("/reports/{report_id}/html", response_class=Response)
def download_html(request: Request, c: AnyUser, report_id: int, lang: str | None = None) -> Response:
    """The same document as one HTML page."""
    return document(request, c, get_report(c, report_id), "html", lang)


@router.post("/reports/monthly", response_model=ReportDetail, status_code=201)
def draft_monthly(c: Staff, body: MonthlyIn) -> Any:
    c.require_write()
    customer = c.get(Customer, body.customer_id)
    try:
        year, month = parse_month(body.month)
    except BadMonth as exc:
        raise HTTPException(422, str(exc)) from exc
    with frozen_is_conflict():
        return service.monthly(c.db, c.rt.metrics, customer, year, month)


@router.post("/incidents/{incident_id}/fault-report", response_model=ReportDetail, status_code=201)
def draft_fault(c: Staff, incident_id: int) -> Any:
    c.require_write()
    return service.fault_of(c.db, c.get(Incident, incident_id))


@router.patch("/reports/{report_id}", response_model=ReportDetail)
def edit_report(c: Staff, report_id: int, body: ReportEdit) -> Any:
    c.require_write()
    with frozen_is_conflict():
        return service.edit(get_report(c, report_id), body.model_dump(exclude_none=True))


@router.post("/reports/{report_id}/regenerate", response_model=ReportDetail)
def regenerate(c: Staff, report_id: int) -> Any:
    c.require_write()
    with frozen_is_conflict():
        return service.regenerate(c.db, c.rt.metrics, get_report(c, report_id))


@router.post("/reports/{report_id}/publish", response_model=ReportDetail)
def publish(c: Staff, report_id: int) -> Any:
    c.require_write()
    with frozen_is_conflict():
        return service.publish(get_report(c, report_id), c.principal.label)
