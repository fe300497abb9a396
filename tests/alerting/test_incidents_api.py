"""Incidents over HTTP: customer reports, acknowledge, comments, internal notes, cause."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.world import PASSWORD, World


def test_customer_reports_and_staff_handle(world: World, live: LiveServer) -> None:
    user = live.login(world.a.username, PASSWORD)
    made = user.post(
        f"/api/v1/customers/{world.a.customer}/incidents",
        json={"title": "订单页面打不开", "description": "since 10:05", "asset_id": world.a.asset},
    )
    assert made.status_code == 201, made.text
    incident = made.json()
    assert incident["source"] == "portal" and incident["status"] == "open"
    # the customer cannot report for another customer, nor pretend to be staff
    assert (
        user.post(f"/api/v1/customers/{world.b.customer}/incidents", json={"title": "xxx"}).status_code == 404
    )
    assert (
        user.post(
            f"/api/v1/customers/{world.a.customer}/incidents", json={"title": "xxx", "source": "phone"}
        ).status_code
        == 422
    )
    assert user.post(f"/api/v1/incidents/{incident['id']}/acknowledge").status_code == 403
    eng = live.login(world.engineer_a, PASSWORD)
    acked = eng.post(f"/api/v1/incidents/{incident['id']}/acknowledge")
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert acked.json()["assignee_id"] is not None
    eng.post(
        f"/api/v1/incidents/{incident['id']}/comments",
        json={"body": "looks like their release", "internal": True},
    )
    eng.post(f"/api/v1/incidents/{incident['id']}/comments", json={"body": "We are on it."})
    eng.patch(
        f"/api/v1/incidents/{incident['id']}", json={"cause": "customer_application", "status": "resolved"}
    )
    timeline = eng.get(f"/api/v1/incidents/{incident['id']}/timeline").json()
    staff_view = [e["kind"] for e in timeline if e["kind"] != "notified"]
    assert staff_view == ["reported", "status", "comment", "comment", "cause", "status"]
    # the report was announced to the customer's webhook (world's), the cause too (R-INC-5)
    notices = [e for e in timeline if e["kind"] == "notified"]
    assert len(notices) >= 2 and all(e["data"]["side"] == "customer" for e in notices)
    customer_view = user.get(f"/api/v1/incidents/{incident['id']}/timeline").json()
    assert "looks like their release" not in str(customer_view) and "We are on it." in str(customer_view)
    assert (
        user.post(
            f"/api/v1/incidents/{incident['id']}/comments", json={"body": "thanks", "internal": True}
        ).status_code
        == 422
    )
    assert (
        user.post(f"/api/v1/incidents/{incident['id']}/comments", json={"body": "thanks"}).status_code == 201
    )
    # engineers of other customers see nothing of it
    other = live.login(world.engineer_b, PASSWORD)
    assert other.get(f"/api/v1/incidents/{incident['id']}").status_code == 404
    assert incident["id"] not in [i["id"] for i in other.get("/api/v1/incidents").json()]
