"""Silences end to end: agent data -> alert -> incident -> no notification while silenced.

Real parts: the server (LiveServer with its alert and notify roles), the agent's ingest endpoint,
the outbox. After the silence is expired over the API, a new alert notifies again.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import func, select

from opsdesk.alerting.models import Alert, Incident, IncidentEvent, IncidentStatus, Silence
from opsdesk.alerting.silences import label_matches
from opsdesk.audit.models import AuditEntry
from opsdesk.core.runtime import Runtime
from opsdesk.notify.models import Notification
from tests.alerting.test_alert_path_e2e import disk_batch, wait_for
from tests.conftest import LiveServer
from tests.world import PASSWORD, World


def notifications(rt: Runtime, incident_id: int) -> int:
    with rt.sessions() as s:
        query = select(func.count()).select_from(Notification).where(Notification.incident_id == incident_id)
        return int(s.scalar(query) or 0)


def alert_incidents(rt: Runtime, world: World) -> list[Incident]:
    with rt.sessions() as s:
        query = select(Incident).where(Incident.customer_id == world.a.customer, Incident.title.like("Disk%"))
        return list(s.scalars(query.order_by(Incident.id)))


def timeline(rt: Runtime, incident_id: int) -> list[IncidentEvent]:
    with rt.sessions() as s:
        query = select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
        return list(s.scalars(query.order_by(IncidentEvent.id)))


def test_matchers() -> None:
    labels = {"mount": "/data", "monitor": "12"}
    assert label_matches(labels, "mount", "=", "/data")
    assert not label_matches(labels, "mount", "!=", "/data")
    assert label_matches(labels, "monitor", "=~", "1[0-9]")
    assert not label_matches(labels, "monitor", "=~", "1")  # anchored, as in Alertmanager
    assert label_matches(labels, "device", "=", "")  # a missing label is empty
    assert label_matches(labels, "mount", "!~", "/var.*")


def test_silenced_alert_is_recorded_but_not_sent_then_notifies_after_expiry(
    world: World, live: LiveServer, runtime: Runtime
) -> None:
    admin = live.login(world.admin, PASSWORD)
    body: dict[str, Any] = {
        "asset_id": world.a.asset,
        "rule_key": "disk_nearly_full",
        "matchers": [{"name": "mount", "op": "=~", "value": "/data|/srv"}],
        "duration_h": 2,
        "comment": "resizing /data tonight",
    }
    # who may: customers are refused (403), another customer's engineer does not even find it
    assert (
        live.login(world.a.username, PASSWORD)
        .post(f"/api/v1/customers/{world.a.customer}/silences", json=body)
        .status_code
        == 403
    )
    assert (
        live.login(world.engineer_b, PASSWORD)
        .post(f"/api/v1/customers/{world.a.customer}/silences", json=body)
        .status_code
        == 404
    )
    bad = admin.post(f"/api/v1/customers/{world.a.customer}/silences", json={**body, "rule_key": "nope"})
    assert bad.status_code == 422 and "rule_key" in bad.text
    made = live.login(world.engineer_a, PASSWORD).post(
        f"/api/v1/customers/{world.a.customer}/silences", json=body
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["active"] and silence["created_by"] == world.engineer_a
    listed = admin.get(f"/api/v1/customers/{world.a.customer}/silences?state=active").json()
    assert [s["id"] for s in listed] == [silence["id"]]

    token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={}).json()["token"]
    agent = httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    )
    assert agent.post("/api/v1/ingest/agent", content=disk_batch(1, 96.4)).status_code == 200
    first = wait_for(lambda: alert_incidents(runtime, world), 20, "the incident")[0]
    kinds = wait_for(
        lambda: [e.kind for e in timeline(runtime, first.id) if e.kind == "silenced"], 10, "silenced"
    )
    events = timeline(runtime, first.id)
    assert "alert_fired" in [e.kind for e in events] and kinds == ["silenced"]
    note = next(e for e in events if e.kind == "silenced")
    assert note.body == f"silenced by #{silence['id']}" and note.internal
    time.sleep(1.0)  # the notify role runs meanwhile: still nothing may be queued
    assert notifications(runtime, first.id) == 0
    with runtime.sessions() as s:
        alert = s.scalars(select(Alert).where(Alert.rule_key == "disk_nearly_full")).one()
        assert alert.incident_id == first.id and alert.state.value == "firing"
    page = admin.get(f"/incidents/{first.id}", headers={"accept": "text/html"})
    assert f"#{silence['id']}" in page.text

    # the silence ends (expired by hand); the disk recovers, then fills again: a new alert notifies
    expired = admin.post(f"/api/v1/silences/{silence['id']}/expire")
    assert expired.status_code == 200 and not expired.json()["active"]
    assert agent.post("/api/v1/ingest/agent", content=disk_batch(2, 50.0)).status_code == 200
    wait_for(
        lambda: alert_incidents(runtime, world)[0].status is IncidentStatus.resolved, 20, "the resolution"
    )
    assert notifications(runtime, first.id) == 0  # nobody heard it open: nobody hears it is over
    assert agent.post("/api/v1/ingest/agent", content=disk_batch(3, 97.0)).status_code == 200
    second = wait_for(lambda: alert_incidents(runtime, world)[1:], 20, "a second incident")[0]
    assert wait_for(lambda: notifications(runtime, second.id), 20, "a notification") >= 1
    assert "silenced" not in [e.kind for e in timeline(runtime, second.id)]
    with runtime.sessions() as s:  # created and expired by people: both in the audit log
        actions = s.scalars(
            select(AuditEntry.action).where(
                AuditEntry.entity == "silences", AuditEntry.entity_id == silence["id"]
            )
        ).all()
        assert sorted(actions) == ["create", "update"]
        assert s.get(Silence, silence["id"]) is not None


def test_silence_pages(world: World, live: LiveServer) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    html = {"accept": "text/html"}
    page = eng.get(f"/customers/{world.a.customer}/silences", headers=html)
    assert page.status_code == 200 and "silence A" in page.text  # the world's expired one
    form = {
        "asset_id": str(world.a.asset),
        "rule_key": "",
        "duration_h": "0",
        "matchers": "mount",
        "comment": "x",
    }
    refused = eng.post(f"/customers/{world.a.customer}/silences", data=form, headers=html)
    assert refused.status_code == 422
    assert "每行一个匹配条件" in refused.text  # the engineer's language (zh-CN), next to the field
    assert (
        'id="silence_new-duration_h-err"' in refused.text and 'id="silence_new-comment-err"' in refused.text
    )
    form = {**form, "duration_h": "1.5", "matchers": "mount=/data", "comment": "disk swap"}
    made = eng.post(f"/customers/{world.a.customer}/silences", data=form, headers=html)
    assert made.status_code == 303, made.text
    page = eng.get(f"/customers/{world.a.customer}/silences", headers=html)
    assert "disk swap" in page.text and "/silences/" in page.text
    assert eng.get("/silences", headers=html).status_code == 200
    with_id = [s for s in eng.get(f"/api/v1/customers/{world.a.customer}/silences").json() if s["active"]]
    assert eng.post(f"/silences/{with_id[0]['id']}/expire", headers=html).status_code == 303
    assert not [s for s in eng.get(f"/api/v1/customers/{world.a.customer}/silences").json() if s["active"]]
    assert (
        live.login(world.a.username, PASSWORD)
        .get(f"/customers/{world.a.customer}/silences", headers=html)
        .status_code
        == 404
    )
