"""Fault and monthly reports: the figures, the documents in both languages, who reads which.

Real parts: the metric store and the database (SQLite and PostgreSQL), WeasyPrint printing with
Debian's Noto CJK fonts (the PDFs are read back with pypdf), the server over HTTP.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from statistics import fmean

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from opsdesk.alerting.models import Incident, IncidentEvent, IncidentSource, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.audit.models import AuditEntry
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.metrics.store import HOUR_MS
from opsdesk.metrics.types import Sample, SeriesKey
from opsdesk.monitors.models import Monitor, MonitorEvent, MonitorState
from opsdesk.reports import render, service
from opsdesk.reports.models import Report, ReportStatus
from opsdesk.reports.period import BadMonth, month_bounds, parse_month
from opsdesk.tenancy.models import Asset, AssetType, Customer
from tests.conftest import LiveServer
from tests.world import PASSWORD, World

OCT_START, OCT_END = month_bounds(2026, 10)
DAYS_WITH_DATA = 20


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def fonts(data: bytes) -> set[str]:
    found = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            found.add(str(font.get_object()["/BaseFont"]))
    return found


def seed_october(rt: Runtime, world: World) -> dict[str, object]:
    """A server with 20 of 31 days of data, a website check down for 6 hours, incidents around the month."""
    cid = world.a.customer
    with rt.sessions.begin() as s:
        server = Asset(customer_id=cid, type=AssetType.server, name="srv-oct-A", ip="10.0.9.9")
        s.add(server)
        s.flush()
        s.add(HostState(customer_id=cid, asset_id=server.id, first_seen_at=datetime(2026, 9, 1, tzinfo=UTC),
                        last_seen_at=OCT_START, interval_s=15))  # fmt: skip
        monitor = Monitor(customer_id=cid, name="shop-oct-A", type="http", config={"url": "http://127.0.0.1:9/"},
                          created_at=datetime(2026, 9, 1, tzinfo=UTC))  # fmt: skip
        s.add(monitor)
        s.flush()
        down_at = datetime(2026, 10, 10, tzinfo=UTC)
        s.add_all([
            MonitorEvent(customer_id=cid, monitor_id=monitor.id, at=datetime(2026, 9, 2, tzinfo=UTC),
                         from_state=MonitorState.unknown, to_state=MonitorState.up),
            MonitorEvent(customer_id=cid, monitor_id=monitor.id, at=down_at,
                         from_state=MonitorState.up, to_state=MonitorState.down),
            MonitorEvent(customer_id=cid, monitor_id=monitor.id, at=down_at + timedelta(hours=6),
                         from_state=MonitorState.down, to_state=MonitorState.up),
        ])  # fmt: skip
        opened = [
            (datetime(2026, 10, 3, 2, tzinfo=UTC), Severity.p2, 10, 70),
            (datetime(2026, 10, 15, 8, tzinfo=UTC), Severity.p3, 30, 130),
            (OCT_START - timedelta(hours=1), Severity.p1, 5, 5),  # 2026-09-30 23:00 Beijing: September
            (OCT_END + timedelta(minutes=30), Severity.p1, 5, 5),  # 2026-11-01 00:30 Beijing: November
        ]
        for at, severity, ack, fix in opened:
            s.add(Incident(customer_id=cid, asset_id=server.id, title=f"oct {severity.value} {at:%d}",
                           severity=severity, status=IncidentStatus.resolved, opened_at=at,
                           acknowledged_at=at + timedelta(minutes=ack),
                           resolved_at=at + timedelta(minutes=fix)))  # fmt: skip
        s.add(HostEvent(customer_id=cid, asset_id=server.id, at=datetime(2026, 10, 20, tzinfo=UTC),
                        kind="user_added", attrs={"user": "deploy", "uid": 1001}))  # fmt: skip
        server_id = server.id

    def key(name: str, **labels: str) -> SeriesKey:
        return SeriesKey({"__name__": name, "asset": str(server_id), "customer": str(cid), **labels})

    start_ms = int(OCT_START.timestamp() * 1000)
    samples, cpu = [], []
    for hour in range(DAYS_WITH_DATA * 24):
        t = start_ms + hour * HOUR_MS + 60_000
        day = hour // 24 + 1
        cpu.append(float(day))
        samples += [
            Sample(key("cpu_usage_percent", mode="total"), t, float(day)),
            Sample(key("memory_used_percent"), t, 40.0),
            Sample(key("fs_used_percent", mount="/", device="vda1"), t, 30.0),
            Sample(key("fs_used_percent", mount="/data", device="vdb1"), t, 88.0 if day == 10 else 60.0),
        ]
    rt.metrics.write(samples)
    return {"server": server_id, "monitor": monitor.id, "cpu_avg": round(fmean(cpu), 1)}


def test_month_periods_are_beijing_months() -> None:
    assert month_bounds(2026, 10) == (
        datetime(2026, 9, 30, 16, tzinfo=UTC),
        datetime(2026, 10, 31, 16, tzinfo=UTC),
    )
    assert month_bounds(2026, 12)[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert parse_month("2026-02") == (2026, 2)
    for bad in ("2026-13", "26-10", "2026/10", ""):
        with pytest.raises(BadMonth):
            parse_month(bad)


def test_monthly_figures(runtime: Runtime, world: World) -> None:
    seeded = seed_october(runtime, world)
    with runtime.sessions.begin() as s:
        customer = s.get(Customer, world.a.customer)
        assert customer is not None
        data = service.monthly(s, runtime.metrics, customer, 2026, 10).data
    host = next(h for h in data["hosts"] if h["name"] == "srv-oct-A")
    assert host["availability"] == round(100 * DAYS_WITH_DATA * 24 / (31 * 24), 2)  # 64.52
    assert host["cpu_avg"] == seeded["cpu_avg"] and host["cpu_max"] == DAYS_WITH_DATA
    assert (host["mem_avg"], host["mem_max"]) == (40.0, 40.0)
    assert (host["disk_max"], host["disk_mount"]) == (88.0, "/data")
    assert len(host["daily_cpu"]) == DAYS_WITH_DATA and host["daily_cpu"][9][1] == 10.0
    check = next(c for c in data["checks"] if c["name"] == "shop-oct-A")
    assert check["down_minutes"] == 360.0
    assert check["uptime"] == round(100 * (1 - 6 / (31 * 24)), 3)
    incidents = data["incidents"]
    assert incidents["total"] == 2  # not the one of 30 September nor of 1 November, Beijing time
    assert incidents["by_severity"] == {"P2": 1, "P3": 1}
    assert (incidents["mtta_minutes"], incidents["mttr_minutes"]) == (20.0, 100.0)
    assert data["changes"]["by_kind"] == {"user_added": 1}


def test_monthly_pdf_in_both_languages(runtime: Runtime, world: World, live: LiveServer) -> None:
    seed_october(runtime, world)
    admin = live.login(world.admin, PASSWORD)
    made = admin.post("/api/v1/reports/monthly", json={"customer_id": world.a.customer, "month": "2026-10"})
    assert made.status_code == 201, made.text
    report_id = made.json()["id"]
    zh = admin.get(f"/api/v1/reports/{report_id}/pdf", params={"lang": "zh-CN"})
    en = admin.get(f"/api/v1/reports/{report_id}/pdf", params={"lang": "en"})
    assert zh.headers["content-type"] == "application/pdf"
    assert 'attachment; filename="monthly-report-' in zh.headers["content-disposition"]
    zh_text, en_text = pdf_text(zh.content), pdf_text(en.content)
    assert "月度运维报告" in zh_text and "服务器可用率" in zh_text and "64.52%" in zh_text
    assert "Monthly operations report" in en_text and "Server availability" in en_text and "64.52%" in en_text
    assert "月度运维报告" not in en_text
    assert "srv-oct-A" in zh_text and "shop-oct-A" in en_text
    assert any("Noto-Sans-CJK-SC" in name for name in fonts(zh.content))  # embedded, not substituted
    assert len(PdfReader(io.BytesIO(zh.content)).pages) >= 2
    html = admin.get(f"/api/v1/reports/{report_id}/html", params={"lang": "en"})
    assert (
        html.status_code == 200 and html.text.count('src="data:image/png;base64,') >= 3
    )  # availability, CPU and memory charts
    # bad input is refused with a reason and creates nothing
    for body, code in (({"customer_id": world.a.customer, "month": "2026-13"}, 422),
                       ({"customer_id": world.a.customer}, 422),
                       ({"customer_id": world.b.customer + 1000, "month": "2026-10"}, 404)):  # fmt: skip
        assert admin.post("/api/v1/reports/monthly", json=body).status_code == code
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Report).where(Report.kind == "monthly")) == 1


def test_fault_report_hides_internal_notes_and_freezes_when_published(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    opened = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    with runtime.sessions.begin() as s:
        incident = Incident(customer_id=world.a.customer, asset_id=world.a.asset, title="Nginx 502 on web-A",
                            severity=Severity.p2, status=IncidentStatus.resolved, source=IncidentSource.alert,
                            opened_at=opened, acknowledged_at=opened + timedelta(minutes=4),
                            resolved_at=opened + timedelta(minutes=47))  # fmt: skip
        s.add(incident)
        s.flush()
        a, at = world.a.customer, opened + timedelta(minutes=20)
        s.add_all([
            IncidentEvent(customer_id=a, incident_id=incident.id, at=at, kind="comment", actor="eng-a",
                          body="Restarted php-fpm; 502s stopped."),
            IncidentEvent(customer_id=a, incident_id=incident.id, at=at, kind="comment", actor="eng-a",
                          body="INTERNAL-ONLY: customer's deploy broke it", internal=True),
        ])  # fmt: skip
        incident_id = incident.id
    engineer = live.login(world.engineer_a, PASSWORD)
    customer = live.login(world.a.username, PASSWORD)
    made = engineer.post(f"/api/v1/incidents/{incident_id}/fault-report")
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["status"] == "draft" and report["data"]["incident"]["minutes_to_resolve"] == 47.0
    assert customer.get(f"/api/v1/reports/{report['id']}").status_code == 404  # a draft is the provider's
    assert customer.get(f"/api/v1/reports/{report['id']}/pdf").status_code == 404
    text = {"root_cause": "php-fpm ran out of workers (pm.max_children 5).",
            "follow_up": "Raise pm.max_children to 20 by 2026-11-10."}  # fmt: skip
    assert engineer.patch(f"/api/v1/reports/{report['id']}", json=text).status_code == 200
    assert engineer.post(f"/api/v1/reports/{report['id']}/publish").status_code == 200
    document = customer.get(f"/api/v1/reports/{report['id']}/html", params={"lang": "en"}).text
    pdf = pdf_text(customer.get(f"/api/v1/reports/{report['id']}/pdf", params={"lang": "zh-CN"}).content)
    for shown in (document, pdf):
        assert "Restarted php-fpm" in shown and "pm.max_children 5" in shown
        assert "INTERNAL-ONLY" not in shown
    assert "故障服务报告" in pdf and "47 min" in pdf
    printed = list((runtime.settings.data_dir / "reports").glob(f"report-{report['id']}-*-zh-CN.pdf"))
    assert len(printed) == 1  # published: printed once, later downloads read the file
    again = customer.get(f"/api/v1/reports/{report['id']}/pdf", params={"lang": "zh-CN"}).content
    assert again == printed[0].read_bytes()
    # published: frozen for everyone
    assert engineer.patch(f"/api/v1/reports/{report['id']}", json={"impact": "x"}).status_code == 409
    assert engineer.post(f"/api/v1/reports/{report['id']}/regenerate").status_code == 409
    assert engineer.post(f"/api/v1/reports/{report['id']}/publish").status_code == 409
    assert customer.patch(f"/api/v1/reports/{report['id']}", json={"impact": "x"}).status_code == 403
    with runtime.sessions() as s:
        audited = s.scalars(select(AuditEntry).where(AuditEntry.entity.like("%report%"))).all()
        assert {e.action for e in audited} >= {"create", "update"}
        assert all(e.actor for e in audited)
        stored = s.get(Report, report["id"])
        assert (
            stored is not None and stored.status is ReportStatus.published and stored.published_by == "eng-a"
        )


def test_portal_lists_only_published_reports_of_its_own_customer(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    admin = live.login(world.admin, PASSWORD)
    draft = admin.post(
        "/api/v1/reports/monthly", json={"customer_id": world.a.customer, "month": "2026-10"}
    ).json()
    customer = live.login(world.a.username, PASSWORD)
    listed = customer.get("/api/v1/reports").json()
    assert [r["id"] for r in listed] == [world.a.report]  # its published fault report; not the draft, not B's
    portal = customer.get("/portal/reports").text
    assert f"/api/v1/reports/{world.a.report}/pdf?lang=zh-CN" in portal
    assert f"/reports/{draft['id']}" not in portal and f"/reports/{world.b.report}" not in portal
    page = customer.get("/reports")
    assert page.status_code == 200 and "Incident A" in page.text and "Incident B" not in page.text
    assert customer.get(f"/reports/{world.b.report}").status_code == 404
    assert customer.get(f"/reports/{draft['id']}").status_code == 404
    assert customer.get(f"/reports/{world.a.report}").status_code == 200


def test_incident_page_drafts_and_links_its_fault_report(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    engineer = live.login(world.engineer_a, PASSWORD)
    with runtime.sessions.begin() as s:
        incident = Incident(customer_id=world.a.customer, asset_id=world.a.asset, title="Disk full on web-A",
                            severity=Severity.p2, opened_at=datetime(2026, 11, 20, tzinfo=UTC))  # fmt: skip
        s.add(incident)
        s.flush()
        incident_id = incident.id
    page = engineer.get(f"/incidents/{incident_id}").text
    assert f'action="/incidents/{incident_id}/fault-report"' in page and "fault-report-link" not in page
    made = engineer.post(f"/incidents/{incident_id}/fault-report")
    assert made.status_code == 303 and made.headers["location"].startswith("/reports/")
    report_id = int(made.headers["location"].rsplit("/", 1)[1])
    assert (
        f'href="/reports/{report_id}" id="fault-report-link"'
        in engineer.get(f"/incidents/{incident_id}").text
    )
    shown = engineer.get(f"/reports/{report_id}").text
    assert 'name="root_cause"' in shown and f'action="/reports/{report_id}/publish"' in shown
    customer = live.login(world.a.username, PASSWORD)
    assert "fault-report-link" not in customer.get(f"/incidents/{incident_id}").text  # a draft is not shown
    assert engineer.post(f"/reports/{report_id}/publish").status_code == 303
    assert (
        f'href="/reports/{report_id}" id="fault-report-link"'
        in customer.get(f"/incidents/{incident_id}").text
    )


def test_resolving_an_incident_drafts_its_fault_report(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    with runtime.sessions.begin() as s:
        incident = Incident(customer_id=world.a.customer, asset_id=world.a.asset, title="Redis down on web-A",
                            severity=Severity.p2, opened_at=datetime(2026, 11, 21, tzinfo=UTC))  # fmt: skip
        s.add(incident)
        s.flush()
        incident_id = incident.id
    engineer = live.login(world.engineer_a, PASSWORD)
    assert engineer.get("/api/v1/reports", params={"kind": "fault"}).json() == [
        r for r in engineer.get("/api/v1/reports").json() if r["incident_id"] == world.a.incident
    ]  # only the world's own report so far
    resolved = engineer.patch(f"/api/v1/incidents/{incident_id}", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    drafts = [r for r in engineer.get("/api/v1/reports").json() if r["incident_id"] == incident_id]
    assert len(drafts) == 1 and drafts[0]["status"] == "draft"
    detail = engineer.get(f"/api/v1/reports/{drafts[0]['id']}").json()
    assert detail["data"]["incident"]["status"] == "resolved"
    assert any(
        e["kind"] == "status" and e["data"].get("after") == "resolved" for e in detail["data"]["timeline"]
    )
    # reopened and resolved again: the same draft, refreshed, not a second report
    engineer.patch(f"/api/v1/incidents/{incident_id}", json={"status": "open"})
    engineer.patch(f"/api/v1/incidents/{incident_id}", json={"status": "resolved"})
    again = [r for r in engineer.get("/api/v1/reports").json() if r["incident_id"] == incident_id]
    assert [r["id"] for r in again] == [drafts[0]["id"]] and again[0]["generated_at"] > drafts[0][
        "generated_at"
    ]


def test_availability_chart_draws_the_worst_of_a_large_customer(sqlite_runtime: Runtime) -> None:
    def monthly(hosts: int) -> Report:
        rows = [{"name": f"app-{n:02d}", "availability": 90.0 + n / 10, "daily_cpu": [], "daily_mem": [],
                 "ip": "", "cpu_avg": None, "cpu_max": None, "mem_avg": None, "mem_max": None,
                 "disk_max": None, "disk_mount": ""} for n in range(hosts)]  # fmt: skip
        incidents = {"total": 0, "by_severity": {}, "rows": [], "mtta_minutes": None, "mttr_minutes": None}
        summary = {"hosts": hosts, "checks": 0, "host_availability": 95.0, "check_uptime": None}
        data = {"customer": {"name": "Big", "code": "BIG"}, "hosts": rows, "checks": [],
                "incidents": incidents, "changes": {"rows": [], "total": 0}, "notifications_sent": 0,
                "summary": summary}  # fmt: skip
        return Report(id=1, customer_id=1, kind="monthly", status=ReportStatus.draft, title="", data=data,
                      period_start=OCT_START, period_end=OCT_END, generated_at=OCT_END,
                      summary="")  # fmt: skip

    large = render.html(monthly(25), "en", sqlite_runtime.settings)
    assert "The 20 lowest are drawn" in large and "app-24" in large  # still in the table
    assert "The 20 lowest are drawn" not in render.html(monthly(3), "en", sqlite_runtime.settings)
