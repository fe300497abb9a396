"""Monitors through the API: validation, run now, the probe's schedule, uptime, homepage checks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import LiveServer
from tests.world import PASSWORD, World


@pytest.fixture
def admin(world: World, live: LiveServer) -> httpx.Client:
    return live.login(world.admin, PASSWORD)


def create(client: httpx.Client, customer: int, **body: object) -> httpx.Response:
    return client.post(f"/api/v1/customers/{customer}/monitors", json=body)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "http", "config": {"url": "ftp://x"}}, "config.url", "http"),
        ({"type": "http", "config": {"url": "http://x", "interval_s": 5}}, "config.interval_s", "10"),
        (
            {"type": "http", "config": {"url": "http://x", "keyword": "(", "keyword_regex": True}},
            "config",
            "regular expression",
        ),
        ({"type": "http", "config": {"url": "http://x", "expected_status": ["abc"]}}, "config", "status"),
        ({"type": "teleport", "config": {}}, "type", "unknown check type"),
        ({"type": "tcp", "config": {"host": "127.0.0.1", "port": 70000}}, "config.port", ""),
    ],
)
def test_invalid_definitions_are_refused_with_clear_messages(
    world: World, admin: httpx.Client, body: dict[str, object], field: str, words: str
) -> None:
    resp = create(admin, world.a.customer, name="bad", **body)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["detail"]
    assert any(e["field"].startswith(field) and words in e["message"] for e in errors), errors


def test_run_now_records_result_event_and_figures(
    world: World, live: LiveServer, admin: httpx.Client
) -> None:
    resp = create(
        admin,
        world.a.customer,
        name="self",
        type="http",
        config={"url": f"{live.url}/healthz", "keyword": '"status":"ok"', "interval_s": 3600},
    )
    assert resp.status_code == 201, resp.text
    monitor = resp.json()
    assert monitor["state"] == "unknown"
    ran = admin.post(f"/api/v1/monitors/{monitor['id']}/run")
    assert ran.status_code == 200, ran.text
    assert ran.json()["ok"] is True and ran.json()["metrics"]["response_ms"] > 0
    after = admin.get(f"/api/v1/monitors/{monitor['id']}").json()
    assert after["state"] == "up" and after["last_result"]["code"] == "ok"
    events = admin.get(f"/api/v1/monitors/{monitor['id']}/events").json()
    assert [(e["from_state"], e["to_state"]) for e in events] == [("unknown", "up")]
    figures = admin.get(f"/api/v1/monitors/{monitor['id']}/metrics", params={"name": "response_ms"}).json()
    assert len(figures) == 1 and figures[0]["last"] == ran.json()["metrics"]["response_ms"]
    # the customer sees its monitor, read-only
    user = live.login(world.a.username, PASSWORD)
    assert user.get(f"/api/v1/monitors/{monitor['id']}").status_code == 200
    assert user.post(f"/api/v1/monitors/{monitor['id']}/run").status_code == 403


def test_the_probe_runs_checks_on_schedule_and_sees_them_fail(
    world: World, live: LiveServer, admin: httpx.Client
) -> None:
    resp = create(
        admin,
        world.a.customer,
        name="down",
        type="tcp",
        config={"host": "127.0.0.1", "port": 9, "interval_s": 10, "timeout_s": 1},
    )
    assert resp.status_code == 201, resp.text
    monitor_id = resp.json()["id"]
    deadline = time.monotonic() + 15
    state = "unknown"
    while time.monotonic() < deadline and state == "unknown":
        time.sleep(0.5)
        state = admin.get(f"/api/v1/monitors/{monitor_id}").json()["state"]
    assert state == "down"
    result = admin.get(f"/api/v1/monitors/{monitor_id}").json()["last_result"]
    assert result["code"] == "connect_refused"


def test_website_assets_get_a_homepage_check(world: World, admin: httpx.Client) -> None:
    made = admin.post(
        f"/api/v1/customers/{world.a.customer}/assets",
        json={"type": "website", "name": "shop", "url": "https://shop.example.com/"},
    )
    assert made.status_code == 201
    monitors = admin.get(f"/api/v1/customers/{world.a.customer}/monitors").json()
    homepage = [m for m in monitors if m["asset_id"] == made.json()["id"]]
    assert len(homepage) == 1 and homepage[0]["type"] == "http"
    assert homepage[0]["config"]["url"] == "https://shop.example.com/"
    # servers get none
    admin.post(f"/api/v1/customers/{world.a.customer}/assets", json={"type": "server", "name": "db9"})
    assert len(admin.get(f"/api/v1/customers/{world.a.customer}/monitors").json()) == len(monitors)


def test_uptime_counts_maintenance_apart(world: World, live: LiveServer, admin: httpx.Client) -> None:
    monitor = create(
        admin,
        world.a.customer,
        name="u",
        type="http",
        config={"url": f"{live.url}/healthz", "interval_s": 3600},
    ).json()
    admin.post(f"/api/v1/monitors/{monitor['id']}/run")
    now = datetime.now(UTC)
    window = admin.post(
        f"/api/v1/customers/{world.a.customer}/maintenance",
        json={
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "reason": "kernel upgrade",
        },
    )
    assert window.status_code == 201, window.text
    up = admin.get(
        f"/api/v1/monitors/{monitor['id']}/uptime",
        params={"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()},
    ).json()
    assert 290 <= up["maintenance_seconds"] <= 310
    assert up["down_seconds"] == 0
    assert up["unknown_seconds"] > 3000  # before the first run
    bad = admin.post(
        f"/api/v1/customers/{world.a.customer}/maintenance",
        json={"starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()},
    )
    assert bad.status_code == 422
