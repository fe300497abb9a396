"""Rule overrides, the duty rota and its calendar, notification preferences: API, pages, policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.accounts.principal import Role
from opsdesk.accounts.service import create_user
from opsdesk.alerting.engine import AlertEngine
from opsdesk.alerting.models import Incident, NotifyPreference
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule, on_duty_in
from opsdesk.audit.models import AuditEntry
from opsdesk.core.calendar import CHINA
from opsdesk.core.runtime import Runtime
from opsdesk.metrics import Sample, SeriesKey
from opsdesk.notify.models import Notification
from opsdesk.tenancy.models import StaffAssignment, StaffRole
from tests.conftest import LiveServer
from tests.notify.helpers import make_channel
from tests.world import PASSWORD, World

HTML = {"accept": "text/html"}


def audit(rt: Runtime, entity: str) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.entity == entity))
        return [(a, b) for a, b in rows]


def test_rule_overrides_api_pages_and_roles(world: World, live: LiveServer, runtime: Runtime) -> None:
    url = f"/api/v1/customers/{world.a.customer}/rules"
    eng = live.login(world.engineer_a, PASSWORD)
    rows = {(r["asset_type"], r["key"]): r for r in eng.get(url).json()}
    cpu = rows[("server", "cpu_high")]  # the world's customer override: 95 instead of 90
    assert cpu["default"]["threshold"] == 90 and cpu["default"]["clear"] == 80
    assert cpu["override"]["threshold"] == 95 and cpu["effective"]["threshold"] == 95
    assert cpu["effective"]["clear"] is None  # the default's clear belongs to the default threshold
    assert rows[("server", "disk_full_forecast")]["default"]["threshold"] == 24  # hours ahead
    assert ("database", "middleware_down") in rows
    change = {"rule_key": "memory_high", "threshold": 95, "clear": 90, "severity": "P2"}
    # an engineer looks, the project lead (or an admin) changes
    assert eng.post(f"/api/v1/customers/{world.a.customer}/rule-overrides", json=change).status_code == 403
    with runtime.sessions.begin() as s:
        assignment = s.get(StaffAssignment, world.a.assignment)
        assert assignment is not None
        assignment.role = StaffRole.project_lead
    made = eng.post(f"/api/v1/customers/{world.a.customer}/rule-overrides", json=change)
    assert made.status_code == 200, made.text
    mem = {(r["asset_type"], r["key"]): r for r in eng.get(url).json()}[("server", "memory_high")]
    assert mem["effective"] == {"enabled": True, "severity": "P2", "threshold": 95, "clear": 90, "for_s": 600}
    assert mem["default"]["threshold"] == 90
    # refused with the field named
    for bad, field in (
        ({"rule_key": "memory_high", "threshold": 80, "clear": 90}, "clear"),
        ({"rule_key": "host_down", "threshold": 5}, "threshold"),
        ({"rule_key": "no_such_rule"}, "rule_key"),
        ({"rule_key": "cpu_high", "asset_id": world.b.asset}, "asset_id"),
    ):
        resp = eng.post(f"/api/v1/customers/{world.a.customer}/rule-overrides", json=bad)
        assert resp.status_code in (404, 422) and (resp.status_code == 404 or field in resp.text), (
            bad,
            resp.text,
        )
    # one asset: switched off there only; the engine's view of the asset agrees
    off = {"rule_key": "cpu_high", "asset_id": world.a.asset, "enabled": False}
    assert eng.post(f"/api/v1/customers/{world.a.customer}/rule-overrides", json=off).status_code == 200
    keys = [r["key"] for r in eng.get(f"/api/v1/assets/{world.a.asset}/rules").json()]
    assert "cpu_high" not in keys and "memory_high" in keys
    page = eng.get(f"/customers/{world.a.customer}/rules", headers=HTML)
    assert page.status_code == 200 and "memory_high" in page.text and "web-A" in page.text
    # the page form: a clear on the wrong side comes back next to its field, in the user's language
    form = {"rule_key": "swap_high", "threshold": "70", "clear": "75", "enabled": "true"}
    refused = eng.post(f"/customers/{world.a.customer}/rules", data=form, headers=HTML)
    assert refused.status_code == 422 and 'id="override-clear-err"' in refused.text
    assert "恢复值必须在阈值的安全一侧" in refused.text
    done = eng.post(f"/customers/{world.a.customer}/rules", data={**form, "clear": "60"}, headers=HTML)
    assert done.status_code == 303
    assert ("create", world.engineer_a) in audit(runtime, "rule_overrides")
    override_id = eng.get(url).json()
    swap = next(r for r in override_id if r["key"] == "swap_high")["override"]["id"]
    assert eng.delete(f"/api/v1/rule-overrides/{swap}").status_code == 204
    assert ("delete", world.engineer_a) in audit(runtime, "rule_overrides")


def test_rota_calendar_and_roles(world: World, live: LiveServer, runtime: Runtime) -> None:
    with runtime.sessions.begin() as s:
        create_user(s, "lead", PASSWORD, Role.project_lead)
        names = {world.engineer_a: 0, world.engineer_b: 1}
        people = s.scalars(select(User).where(User.username.in_(list(names)))).all()
        members = [u.id for u in sorted(people, key=lambda u: names[u.username])]
    eng = live.login(world.engineer_a, PASSWORD)
    lead = live.login("lead", PASSWORD)
    today = datetime.now(CHINA).replace(hour=8, minute=0, second=0, microsecond=0)
    assert len(members) == 2
    body = {"name": "primary", "members": members, "rotation_hours": 12, "starts_at": today.isoformat()}
    assert eng.post("/api/v1/oncall/schedules", json=body).status_code == 403  # engineers look only
    bad = lead.post("/api/v1/oncall/schedules", json={**body, "members": [members[0], 99999]})
    assert bad.status_code == 422 and "members" in bad.text
    made = lead.post("/api/v1/oncall/schedules", json=body)
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert ("create", "lead") in audit(runtime, "oncall_schedules")  # the person, not "admin"
    swap = {
        "user_id": members[0],
        "starts_at": (today + timedelta(days=2)).isoformat(),
        "ends_at": (today + timedelta(days=3)).isoformat(),
    }
    added = lead.post(f"/api/v1/oncall/schedules/{schedule['id']}/overrides", json=swap)
    assert added.status_code == 201, added.text
    start = today.astimezone(UTC)
    shifts = eng.get("/api/v1/oncall/calendar", params={"start": start.isoformat(), "days": 14}).json()
    mine = [x for x in shifts if x["schedule_id"] == schedule["id"]]
    # 12 h shifts alternate; the 24 h override covers A's day shift and B's night shift as one
    assert len(mine) == 14 * 2 - 1
    with runtime.sessions() as s:
        rota = s.get(OnCallSchedule, schedule["id"])
        overrides = list(
            s.scalars(select(OnCallOverride).where(OnCallOverride.schedule_id == schedule["id"]))
        )
        assert rota is not None
        for x in mine:  # the calendar and the pager agree, at both ends of every shift
            a = datetime.fromisoformat(x["starts_at"])
            b = datetime.fromisoformat(x["ends_at"])
            assert on_duty_in(rota, overrides, a) == x["user_id"]
            assert on_duty_in(rota, overrides, b - timedelta(seconds=1)) == x["user_id"]
    overridden = [x for x in mine if x["override"]]
    assert len(overridden) == 1 and overridden[0]["user_id"] == members[0]
    assert datetime.fromisoformat(overridden[0]["ends_at"]) - datetime.fromisoformat(
        overridden[0]["starts_at"]
    ) == timedelta(hours=24)
    page = eng.get("/oncall/calendar?weeks=4", headers=HTML)
    assert page.status_code == 200 and page.text.count('<tr id="day-') == 28
    assert world.engineer_b in page.text and "primary" in page.text
    assert eng.get("/oncall", headers=HTML).status_code == 200
    # the page form: an unknown member is named next to the field
    form = {
        "name": "backup",
        "members": "eng-a, nobody",
        "rotation_hours": "24",
        "starts_at": "2026-12-01T09:00",
    }
    refused = lead.post("/oncall/schedules", data=form, headers=HTML)
    assert refused.status_code == 422 and 'id="schedule_new-members-err"' in refused.text
    assert (
        lead.post("/oncall/schedules", data={**form, "members": "eng-b, eng-a"}, headers=HTML).status_code
        == 303
    )
    # editing a rota and adding an override from the page; a bad member and a reversed span are named
    sid = schedule["id"]
    edit = {**form, "name": "primary rota", "members": "eng-a"}
    assert lead.post(f"/oncall/schedules/{sid}", data=edit, headers=HTML).status_code == 303
    bad_edit = lead.post(f"/oncall/schedules/{sid}", data={**edit, "members": "nobody"}, headers=HTML)
    assert bad_edit.status_code == 422 and f'id="schedule_edit_{sid}-members-err"' in bad_edit.text
    swap = {"user_id": str(members[0]), "starts_at": "2026-12-03T09:00", "ends_at": "2026-12-03T21:00"}
    assert lead.post(f"/oncall/schedules/{sid}/overrides", data=swap, headers=HTML).status_code == 303
    backwards = {**swap, "ends_at": "2026-12-03T08:00"}
    refused_override = lead.post(f"/oncall/schedules/{sid}/overrides", data=backwards, headers=HTML)
    assert refused_override.status_code == 422
    with runtime.sessions() as s:
        rota = s.get(OnCallSchedule, sid)
        assert rota is not None and rota.name == "primary rota"
        assert len(s.scalars(select(OnCallOverride).where(OnCallOverride.schedule_id == sid)).all()) == 2
    assert live.login(world.a.username, PASSWORD).get("/api/v1/oncall/schedules").status_code == 404


def test_preferences_replace_the_default_table(world: World, live: LiveServer, runtime: Runtime) -> None:
    email = make_channel(
        runtime,
        world.a.customer,
        "email",
        {"host": "127.0.0.1", "port": 2525, "security": "none", "sender": "noc@x.test", "to": ["a@x.test"]},
    )
    admin = live.login(world.admin, PASSWORD)
    url = f"/api/v1/customers/{world.a.customer}/notify-preferences"
    rows = {r["severity"]: r for r in admin.get(url).json()}
    assert rows["P2"]["preference"] is None and rows["P2"]["default_always"] is True
    assert "webhook" in rows["P2"]["default_media"]
    refused = admin.put(url, json={"severity": "P2", "channel_ids": [world.b.channel]})
    assert refused.status_code == 422 and "channel_ids" in refused.text
    eng = live.login(world.engineer_a, PASSWORD)
    assert eng.put(url, json={"severity": "P2", "channel_ids": [email]}).status_code == 403
    # the page form: P2 by e-mail only, at any hour
    page = admin.get(f"/customers/{world.a.customer}/notify-preferences", headers=HTML)
    assert page.status_code == 200 and "email channel" in page.text
    saved = admin.post(
        f"/customers/{world.a.customer}/notify-preferences",
        data={"severity": "P2", "channel_ids": str(email), "always": "true"},
        headers=HTML,
    )
    assert saved.status_code == 303
    with runtime.sessions() as s:
        pref = s.scalars(select(NotifyPreference).where(NotifyPreference.severity == "P2")).one()
        assert pref.channel_ids == [email] and pref.always

    # the policy follows it: a P2 disk alert reaches the customer by e-mail only, not its webhook
    now = datetime.now(UTC)
    key = SeriesKey(
        {
            "__name__": "fs_used_percent",
            "asset": str(world.a.asset),
            "customer": str(world.a.customer),
            "mount": "/",
        }
    )
    runtime.metrics.write([Sample(key, int(now.timestamp() * 1000), 97.0)])
    assert AlertEngine(runtime).evaluate(now).fired
    with runtime.sessions() as s:
        incident = s.scalars(select(Incident).where(Incident.title.like("Disk%"))).one()
        sent = s.scalars(select(Notification.channel_id).where(Notification.incident_id == incident.id)).all()
    assert email in sent and world.a.channel not in sent
