"""Console and portal pages for incidents: the list, one incident with its timeline, and actions.

Staff see the incidents of their customers and act on them; customer users see their own,
report an anomaly first (R-INC-4) and add comments. Every change goes through the REST API's
functions, so the rules (who may do what, what is announced) are the same in both places.
Internal notes are filtered out in the query for customer users and never reach their pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.alerting import api
from opsdesk.alerting.incidents import OPEN, SENTENCE_ONLY
from opsdesk.alerting.models import (
    Alert,
    CauseCategory,
    Incident,
    IncidentEvent,
    IncidentSource,
    IncidentStatus,
)
from opsdesk.alerting.rules import Severity
from opsdesk.monitors.pages import local
from opsdesk.reports.access import of_incident
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.tenancy.pages import Form, Posted, done, page, translator_for, validate
from opsdesk.web import i18n
from opsdesk.web.deps import AnyUser, Ctx, Staff
from opsdesk.web.guard import self_service
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
LIST_LIMIT = 200
PORTAL_RECENT = 5
FILTERS: dict[str, tuple[IncidentStatus, ...]] = {
    "active": OPEN,
    "resolved": (IncidentStatus.resolved,),
    "closed": (IncidentStatus.closed,),
    "all": (),
}
REPORTABLE = (Severity.p2, Severity.p3, Severity.p4)  # P1 is the provider's call
# Status buttons a staff member sees, by the incident's current status.
MOVES: dict[IncidentStatus, tuple[IncidentStatus, ...]] = {
    IncidentStatus.open: (IncidentStatus.mitigated, IncidentStatus.resolved),
    IncidentStatus.acknowledged: (IncidentStatus.mitigated, IncidentStatus.resolved),
    IncidentStatus.mitigated: (IncidentStatus.resolved,),
    IncidentStatus.resolved: (IncidentStatus.closed, IncidentStatus.open),
    IncidentStatus.closed: (IncidentStatus.open,),
}


# -- names shown next to ids -------------------------------------------------------------------


def staff_people(c: Ctx) -> dict[int, User]:
    users = c.db.scalars(select(User).where(User.customer_id.is_(None)).order_by(User.username))
    return {u.id: u for u in users}


def person(user: User | None) -> str:
    return (user.display_name or user.username) if user else ""


def by_id(c: Ctx, model: type[Any], ids: Iterable[int | None]) -> dict[int, Any]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {o.id: o for o in c.db.scalars(select(model).where(model.id.in_(wanted)))}


def asset_link(asset: Asset | None, staff: bool) -> str:
    if asset is None:
        return ""
    if asset.type is AssetType.server:
        return f"/assets/{asset.id}/host"
    return f"/customers/{asset.customer_id}#assets" if staff else "/portal#assets"


# -- the list ------------------------------------------------------------------------------------


def incidents_query(status: str, severity: str, limit: int = LIST_LIMIT) -> Any:
    q = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)
    if FILTERS[status]:
        q = q.where(Incident.status.in_(FILTERS[status]))
    if severity:
        q = q.where(Incident.severity == Severity(severity))
    return q


def list_rows(c: Ctx, incidents: list[Incident]) -> list[dict[str, Any]]:
    customers = by_id(c, Customer, (i.customer_id for i in incidents))
    assets = by_id(c, Asset, (i.asset_id for i in incidents))
    people = staff_people(c)
    return [
        {
            "i": i,
            "customer": customers.get(i.customer_id),
            "asset": assets.get(i.asset_id or 0),
            "assignee": person(people.get(i.assignee_id or 0)),
        }
        for i in incidents
    ]


def report_form(c: Ctx) -> Form:
    return Form("report", {"severity": Severity.p3.value}) if not c.principal.is_staff else Form("report")


def customer_assets(c: Ctx) -> list[Asset]:
    if c.principal.customer_id is None:
        return []
    query = select(Asset).where(Asset.customer_id == c.principal.customer_id).order_by(Asset.name)
    return list(c.db.scalars(query))


def list_page(
    request: Request, c: Ctx, status: str, severity: str, form: Form | None = None, code: int = 200
) -> Response:
    incidents = list(c.db.scalars(incidents_query(status, severity)))
    return page(
        request, "incidents.html", code, rows=list_rows(c, incidents), chosen=status, severity=severity,
        filters=list(FILTERS), severities=[s.value for s in Severity], local=local,
        rf=form or report_form(c), asset_choices=[(str(a.id), a.name) for a in customer_assets(c)],
        reportable=[s.value for s in REPORTABLE],
    )  # fmt: skip


@router.get("/incidents")
def incidents_list(request: Request, c: AnyUser, status: str = "active", severity: str = "") -> Response:
    status = status if status in FILTERS else "active"
    severity = severity if severity in {s.value for s in Severity} else ""
    return list_page(request, c, status, severity)


# -- a customer reports an anomaly (R-INC-4) ---------------------------------------------------


def report_errors(t: i18n.Translate, c: Ctx, data: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if data.get("severity") not in {s.value for s in REPORTABLE}:
        errors["severity"] = t("form.err.choice")
    choices = {str(a.id) for a in customer_assets(c)}
    if data.get("asset_id") and data["asset_id"] not in choices:
        errors["asset_id"] = t("form.err.choice")
    return errors


@router.post("/incidents")
@self_service
def report(request: Request, c: AnyUser, data: Posted) -> Response:
    if c.principal.is_staff or c.principal.customer_id is None:
        raise HTTPException(404, "not found")
    t = translator_for(request)
    fields = {
        "title": data.get("title", ""),
        "description": data.get("description", ""),
        "severity": data.get("severity", ""),
        "source": IncidentSource.portal.value,
        **({"asset_id": data["asset_id"]} if data.get("asset_id") else {}),
    }
    body, errors = validate(request, api.ReportIn, fields)
    errors = {**errors, **report_errors(t, c, data)}
    if body is None or errors:
        return list_page(request, c, "active", "", Form("report", dict(data), errors), 422)
    incident = api.report_incident(c, c.principal.customer_id, body)
    return done(request, f"/incidents/{incident.id}", "incidents.flash.reported")


# -- one incident ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """One timeline row as the page shows it: a sentence in the page language, and details."""

    event: IncidentEvent
    sentence: str
    body: str = ""
    recipients: list[str] = field(default_factory=list)


def _caption(t: i18n.Translate, group: str, value: Any) -> str:
    text = str(value or "")
    key = f"incidents.{group}.{text}"
    found = t(key)
    return text if found == key else found


def sentence(t: i18n.Translate, e: IncidentEvent) -> str:
    d = e.data or {}
    params: dict[str, Any] = {
        "rule": d.get("rule", ""),
        "level": d.get("level", ""),
        "silence": d.get("silence", ""),
        "people": e.body,
        "channel": e.body,
        "person": e.body,
        "side": _caption(t, "side", d.get("side", "customer")),
    }
    group = {"status": "status", "cause": "cause", "severity": "sev"}.get(e.kind)
    if group:
        params.update(before=_caption(t, group, d.get("before")), after=_caption(t, group, d.get("after")))
    key = f"incidents.kind.{e.kind}"
    return t(key, **params) if t(key) != key else e.kind


def entry(t: i18n.Translate, e: IncidentEvent, staff: bool) -> Entry:
    body = "" if e.kind in SENTENCE_ONLY else e.body
    recipients = [str(r) for r in (e.data or {}).get("recipients") or []] if staff else []
    return Entry(e, sentence(t, e), body, recipients if e.kind == "notified" else [])


def timeline_entries(request: Request, c: Ctx, incident: Incident) -> list[Entry]:
    staff = c.principal.is_staff
    q = select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
    if not staff:
        q = q.where(IncidentEvent.internal.is_(False))  # internal notes stay with the provider
    events = c.db.scalars(q.order_by(IncidentEvent.at, IncidentEvent.id))
    t = translator_for(request)
    return [entry(t, e, staff) for e in events if staff or not e.internal]


def incident_alerts(c: Ctx, incident: Incident) -> list[Alert]:
    return list(c.db.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.since)))


def detail_page(
    request: Request, c: Ctx, incident: Incident, form: Form | None = None, code: int = 200
) -> Response:
    customer = c.get(Customer, incident.customer_id)
    asset = c.db.get(Asset, incident.asset_id) if incident.asset_id else None
    people = staff_people(c)
    staff_choices = [(str(u.id), person(u)) for u in people.values() if u.is_active]
    assignee = person(people.get(incident.assignee_id or 0))
    return page(
        request, "incident.html", code, incident=incident, customer=customer, asset=asset,
        asset_href=asset_link(asset, c.principal.is_staff), assignee=assignee,
        alerts=incident_alerts(c, incident), entries=timeline_entries(request, c, incident), local=local,
        can_act=c.principal.is_staff and c.principal.can_write, moves=MOVES[incident.status],
        staff_choices=staff_choices, causes=[x.value for x in CauseCategory],
        severities=[s.value for s in Severity], cf=form or Form("comment"),
        fault_report=of_incident(c.db, c.principal, incident.id),
    )  # fmt: skip


@router.get("/incidents/{incident_id}")
def show_incident(request: Request, c: AnyUser, incident_id: int) -> Response:
    return detail_page(request, c, c.get(Incident, incident_id))


@router.get("/incidents/{incident_id}/timeline")
def timeline_fragment(request: Request, c: AnyUser, incident_id: int) -> Response:
    incident = c.get(Incident, incident_id)
    entries = timeline_entries(request, c, incident)
    return render(request, "_incident_timeline.html", incident=incident, entries=entries, local=local)


# -- acting on an incident -------------------------------------------------------------------------


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(request: Request, c: Staff, incident_id: int) -> Response:
    api.acknowledge(c, incident_id)
    return done(request, f"/incidents/{incident_id}", "incidents.flash.acknowledged")


def update_from(data: dict[str, str], c: Ctx) -> api.UpdateIn | None:
    """The one change a form asks for, or None when a value is not one of the choices offered."""
    try:
        if data.get("assignee_id"):
            assignee = int(data["assignee_id"]) if data["assignee_id"].isdigit() else -1
            people = staff_people(c)
            if assignee not in people or not people[assignee].is_active:
                return None
            return api.UpdateIn(assignee_id=assignee)
        return api.UpdateIn(
            cause=CauseCategory(data["cause"]) if data.get("cause") else None,
            severity=Severity(data["severity"]) if data.get("severity") else None,
            status=IncidentStatus(data["status"]) if data.get("status") else None,
        )
    except ValueError:
        return None


@router.post("/incidents/{incident_id}/update")
def update(request: Request, c: Staff, incident_id: int, data: Posted) -> Response:
    incident = c.get(Incident, incident_id)
    c.require_write()
    change = update_from(data, c)
    if change is None:
        form = Form("comment", errors={"change": translator_for(request)("form.err.choice")})
        return detail_page(request, c, incident, form, 422)
    api.update_incident(c, incident.id, change)
    return done(request, f"/incidents/{incident.id}", "flash.saved")


@router.post("/incidents/{incident_id}/comments")
@self_service
def add_comment(request: Request, c: AnyUser, incident_id: int, data: Posted) -> Response:
    incident = c.get(Incident, incident_id)
    internal = bool(data.get("internal"))  # api.comment refuses it from a customer user
    body, errors = validate(request, api.CommentIn, {"body": data.get("body", ""), "internal": internal})
    if body is None:
        return detail_page(request, c, incident, Form("comment", dict(data), errors), 422)
    api.comment(c, incident.id, body)
    return done(request, f"/incidents/{incident.id}#timeline", "incidents.flash.commented")


# -- the portal's recent incidents -----------------------------------------------------------------


@router.get("/portal/incidents")
def portal_incidents(request: Request, c: AnyUser) -> Response:
    if c.principal.is_staff or c.principal.customer_id is None:
        return RedirectResponse("/incidents", status_code=303)
    incidents = list(c.db.scalars(incidents_query("all", "", PORTAL_RECENT)))
    return render(request, "_portal_incidents.html", rows=list_rows(c, incidents), local=local)
