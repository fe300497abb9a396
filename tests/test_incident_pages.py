"""Incident pages over real HTTP: the list, one incident, staff actions, customer reports, walls."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.alerting.incidents import timeline
from opsdesk.alerting.models import Alert, Incident, IncidentSource, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.runtime import Runtime
from tests.conftest import LiveServer
from tests.test_pages import form_post, switch
from tests.world import PASSWORD, World, seed_world

NOTE = "Internal: root password rotated by Zhang, check sudo log"
VISIBLE = "We restarted nginx; please check the shop again."


def open_incident(rt: Runtime, world: World) -> int:
    """An open P2 incident of customer A with a firing alert and a customer notification."""
    at = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
    with rt.sessions.begin() as s:
        incident = Incident(
            customer_id=world.a.customer,
            asset_id=world.a.asset,
            title="web-A disk nearly full",
            severity=Severity.p2,
            status=IncidentStatus.open,
            source=IncidentSource.alert,
            opened_at=at,
        )
        s.add(incident)
        s.flush()
        s.add(
            Alert(
                customer_id=world.a.customer,
                fingerprint=f"disk_full:{world.a.asset}:/",
                rule_key="disk_full",
                asset_id=world.a.asset,
                severity=Severity.p2,
                state=AlertState.firing,
                value=93.5,
                summary="/ is 93.5% full",
                incident_id=incident.id,
            )
        )
        timeline(s, incident, "alert_fired", at, body="/ is 93.5% full", rule="disk_full", value=93.5)
        timeline(
            s, incident, "notified", at, body="hook-A (webhook)", channel=1, side="customer",
            recipients=["ops@a.example.com"],
        )  # fmt: skip
        return incident.id


def user_id(rt: Runtime, username: str) -> int:
    with rt.sessions() as s:
        return s.scalars(select(User.id).where(User.username == username)).one()


def main_of(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def timeline_of(html: str) -> str:
    return html[html.index('<ol class="timeline">') : html.index("</ol>")]


def status_badge(html: str) -> str:
    found = re.search(r'id="incident-status"><span class="badge \w+" data-status="(\w+)">([^<]+)<', html)
    assert found, "no status badge"
    return found.group(2)


def test_staff_acknowledges_assigns_and_writes_notes(
    live: LiveServer, world: World, runtime: Runtime
) -> None:
    incident = open_incident(runtime, world)
    eng = live.login(world.engineer_a, PASSWORD)
    switch(eng, "en")
    listing = eng.get("/incidents")
    assert listing.status_code == 200
    row = re.search(rf'<tr data-incident="{incident}">(.*?)</tr>', listing.text, re.S)
    assert row, "the open incident is listed"
    assert 'class="badge sev sev-p2">P2 Major<' in row.group(1)
    assert "Customer A" in row.group(1) and "web-A" in row.group(1) and "Open" in row.group(1)
    assert "2026-03-01 10:00" in row.group(1)  # Beijing time
    assert "Incident A" not in listing.text  # closed: not among the active ones
    assert "Incident A" in eng.get("/incidents?status=closed").text

    page = eng.get(f"/incidents/{incident}")
    assert page.status_code == 200 and status_badge(page.text) == "Open"
    assert "disk_full" in page.text and "93.50" in page.text and "Firing" in page.text
    assert "Notified customer via hook-A (webhook)" in page.text and "ops@a.example.com" in page.text
    assert f'hx-get="/incidents/{incident}/timeline" hx-trigger="every 15s"' in page.text

    acked = form_post(eng, f"/incidents/{incident}/acknowledge", {})
    assert acked.status_code == 303 and acked.headers["location"] == f"/incidents/{incident}"
    page = eng.get(f"/incidents/{incident}")
    assert status_badge(page.text) == "Acknowledged"
    assert "Status changed: Open → Acknowledged" in timeline_of(page.text)
    assert re.search(r"Assignee</dt><dd>eng-a<", page.text)
    assert 'id="acknowledge"' not in page.text  # done once

    admin_id = user_id(runtime, world.admin)
    assert form_post(eng, f"/incidents/{incident}/update", {"assignee_id": str(admin_id)}).status_code == 303
    assert form_post(eng, f"/incidents/{incident}/update", {"assignee_id": "999999"}).status_code == 422
    note = form_post(eng, f"/incidents/{incident}/comments", {"body": NOTE, "internal": "true"})
    assert note.status_code == 303
    assert form_post(eng, f"/incidents/{incident}/comments", {"body": VISIBLE}).status_code == 303
    blank = form_post(eng, f"/incidents/{incident}/comments", {"body": ""})
    assert blank.status_code == 422 and 'id="comment-body-err"' in blank.text

    events = timeline_of(eng.get(f"/incidents/{incident}/timeline").text)
    assert "Assigned to admin" in events
    internal = re.search(r'<li class="[^"]*tl-internal[^"]*"[^>]*>(.*?)</li>', events, re.S)
    assert internal and NOTE in internal.group(1) and ">internal<" in internal.group(1)
    assert events.index(NOTE) < events.index(VISIBLE)  # newest last

    customer = live.login(world.a.username, PASSWORD)
    switch(customer, "en")
    for path in (f"/incidents/{incident}", f"/incidents/{incident}/timeline"):
        seen = customer.get(path)
        assert seen.status_code == 200
        assert VISIBLE in seen.text and "Status changed: Open → Acknowledged" in seen.text
        assert NOTE not in seen.text and "root password" not in seen.text and ">internal<" not in seen.text
        assert "ops@a.example.com" not in seen.text  # recipients are for staff
    detail = customer.get(f"/incidents/{incident}").text
    assert 'id="acknowledge"' not in detail and "/update" not in detail and 'name="internal"' not in detail
    refused = form_post(customer, f"/incidents/{incident}/comments", {"body": "sneaky", "internal": "true"})
    assert refused.status_code == 422
    assert form_post(customer, f"/incidents/{incident}/acknowledge", {}).status_code in (403, 404)


def test_customer_reports_an_incident_and_sees_it(live: LiveServer, world: World) -> None:
    customer = live.login(world.a.username, PASSWORD)
    switch(customer, "en")
    listing = customer.get("/incidents")
    assert listing.status_code == 200 and 'id="report"' in listing.text
    assert f'<option value="{world.a.asset}" >web-A</option>' in listing.text
    assert 'value="P1"' not in listing.text.split('id="list"')[0]  # P1 is not offered in the form
    assert "Serious: an important function does not work" in listing.text
    assert "Incident B" not in listing.text

    bad = form_post(customer, "/incidents", {"title": "x", "severity": "P1", "asset_id": str(world.b.asset)})
    assert bad.status_code == 422
    for name in ("title", "severity", "asset_id"):
        assert f'id="report-{name}-err"' in bad.text, name

    sent = form_post(
        customer,
        "/incidents",
        {
            "title": "Checkout page shows errors",
            "description": "Since 9:00 every order fails with 502.",
            "asset_id": str(world.a.asset),
            "severity": "P2",
        },
    )
    assert sent.status_code == 303, sent.text
    path = sent.headers["location"]
    page = customer.get(path)
    assert page.status_code == 200
    assert "Checkout page shows errors" in page.text and "Reported in the portal" in page.text
    events = timeline_of(page.text)
    assert "Reported by the customer" in events and "Since 9:00 every order fails with 502." in events
    assert f'href="/assets/{world.a.asset}/host">web-A<' in page.text
    assert "Checkout page shows errors" in customer.get("/incidents").text

    commented = form_post(customer, f"{path}/comments", {"body": "Still failing at 10:30."})
    assert commented.status_code == 303
    assert "Still failing at 10:30." in customer.get(path).text

    portal = customer.get("/portal").text
    assert 'href="/incidents#report"' in portal and 'hx-get="/portal/incidents"' in portal
    assert "Checkout page shows errors" in customer.get("/portal/incidents").text

    eng = live.login(world.engineer_a, PASSWORD)
    assert "Checkout page shows errors" in eng.get("/incidents").text
    assert "Checkout page shows errors" not in live.login(world.engineer_b, PASSWORD).get("/incidents").text


def test_other_customers_incidents_are_not_found(live: LiveServer, world: World) -> None:
    user_a = live.login(world.a.username, PASSWORD)
    for path in (f"/incidents/{world.b.incident}", f"/incidents/{world.b.incident}/timeline"):
        assert user_a.get(path).status_code == 404, path
    assert form_post(user_a, f"/incidents/{world.b.incident}/comments", {"body": "hi"}).status_code == 404
    assert "Incident B" not in user_a.get("/incidents?status=all").text
    assert "Incident A" in user_a.get("/incidents?status=all").text

    eng_b = live.login(world.engineer_b, PASSWORD)
    for path in (f"/incidents/{world.a.incident}", f"/incidents/{world.a.incident}/timeline"):
        assert eng_b.get(path).status_code == 404, path
    assert form_post(eng_b, f"/incidents/{world.a.incident}/acknowledge", {}).status_code == 404
    assert form_post(eng_b, f"/incidents/{world.a.incident}/update", {"status": "open"}).status_code == 404
    every = eng_b.get("/incidents?status=all").text
    assert "Incident B" in every and "Incident A" not in every


def test_cause_severity_and_status_changes_show_in_the_timeline(
    live: LiveServer, world: World, runtime: Runtime
) -> None:
    incident = open_incident(runtime, world)
    eng = live.login(world.engineer_a, PASSWORD)
    switch(eng, "en")
    path = f"/incidents/{incident}"
    assert form_post(eng, f"{path}/update", {"cause": "customer_application"}).status_code == 303
    assert form_post(eng, f"{path}/update", {"severity": "P3"}).status_code == 303
    assert form_post(eng, f"{path}/update", {"cause": "no-such-cause"}).status_code == 422
    events = timeline_of(eng.get(path).text)
    assert "Cause set: Not known yet → Customer&#39;s own application" in events
    assert "Severity changed: P2 Major → P3 Minor" in events

    assert form_post(eng, f"{path}/update", {"status": "resolved"}).status_code == 303
    page = eng.get(path).text
    assert status_badge(page) == "Resolved" and "Reopen" in page and "Close" in page
    assert "web-A disk nearly full" not in main_of(eng.get("/incidents").text)
    assert "web-A disk nearly full" in eng.get("/incidents?status=resolved").text
    assert "web-A disk nearly full" not in eng.get("/incidents?status=all&severity=P1").text

    customer = live.login(world.a.username, PASSWORD)
    switch(customer, "zh-CN")
    seen = timeline_of(customer.get(path).text)
    assert "原因设定：尚未查明 → 客户自身应用" in seen


def test_forms_without_csrf_are_refused(live: LiveServer, world: World, runtime: Runtime) -> None:
    incident = open_incident(runtime, world)
    eng = live.login(world.engineer_a, PASSWORD)
    eng.headers.pop("X-CSRF-Token")
    assert eng.post(f"/incidents/{incident}/acknowledge").status_code == 403
    assert eng.post(f"/incidents/{incident}/comments", data={"body": "x"}).status_code == 403
    customer = live.login(world.a.username, PASSWORD)
    customer.headers.pop("X-CSRF-Token")
    refused = customer.post("/incidents", data={"title": "No token here", "severity": "P3"})
    assert refused.status_code == 403
    with runtime.sessions() as s:
        row = s.get(Incident, incident)
        assert row is not None and row.status is IncidentStatus.open
        assert s.scalars(select(Incident).where(Incident.title == "No token here")).first() is None


def test_both_languages_render(live: LiveServer, world: World, runtime: Runtime) -> None:
    incident = open_incident(runtime, world)
    expected = {
        "en": ("Incidents", "P2 Major", "Acknowledge", "Timeline", "Alert fired: disk_full"),
        "zh-CN": ("故障事件", "P2 严重", "确认接手", "时间线", "告警触发：disk_full"),
    }
    for username in (world.engineer_a, world.a.username):
        client = live.login(username, PASSWORD)
        for lang, words in expected.items():
            switch(client, lang)
            listing, page = client.get("/incidents"), client.get(f"/incidents/{incident}")
            assert listing.status_code == page.status_code == 200
            assert f'<html lang="{lang}"' in page.text
            staff_only = words[2]
            for word in words:
                if word == staff_only and username == world.a.username:
                    assert f'id="acknowledge">{word}<' not in page.text
                    continue
                assert word in page.text or word in listing.text, (lang, word)
            nav = 'href="/incidents" aria-current="page">' + words[0]
            assert nav in listing.text, lang


def test_login_is_required(live: LiveServer) -> None:
    resp = live.client().get("/incidents", headers={"accept": "text/html"})
    assert resp.status_code in (302, 303) and "/login" in resp.headers["location"]


CHROMIUM_ARGS = [  # as in tests/test_pages_browser.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
DOCS_SHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "incident-zh-CN.png"


@pytest.mark.browser
def test_acknowledge_in_a_browser(sqlite_runtime: Runtime) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    world = seed_world(sqlite_runtime)
    incident = open_incident(sqlite_runtime, world)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with LiveServer(sqlite_runtime) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{server.url}/login")
        page.fill("#username", world.engineer_a)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        for lang, (before, after) in (("en", ("Open", "Acknowledged")), ("zh-CN", ("已确认", "已确认"))):
            page.goto(f"{server.url}/incidents/{incident}")
            if page.get_attribute("html", "lang") != lang:
                with page.expect_navigation():
                    page.select_option("#lang-switch", lang)
            status = page.locator("#incident-status .badge")
            assert status.inner_text() == before
            if lang == "en":
                with page.expect_navigation():
                    page.click("#acknowledge")
                assert status.inner_text() == after
                assert page.locator("#timeline-body").get_by_text("Open → Acknowledged").is_visible()
                page.fill("#comment-body", NOTE)
                page.check("#comment-internal")
                with page.expect_navigation():
                    page.click("#timeline button[type=submit]")
                page.fill("#comment-body", VISIBLE)
                with page.expect_navigation():
                    page.click("#timeline button[type=submit]")
            page.screenshot(path=str(SHOTS / f"incident-{lang}.png"), full_page=True)
        browser.close()
    DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHOTS / "incident-zh-CN.png", DOCS_SHOT)
