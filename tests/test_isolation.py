"""Tenant isolation, tested from outside over HTTP, on every route the app has.

The walk covers every API route of the OpenAPI document and every page route, so a route added
later is covered without touching this file; a path parameter the walk does not know fails it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from opsdesk.audit.models import AuditEntry
from opsdesk.core.runtime import Runtime
from tests.conftest import LiveServer
from tests.world import PASSWORD, Tenant, World

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# What a customer user may change: its own password, language, tokens and session.
SELF_SERVICE = {
    "/login",
    "/logout",
    "/lang",
    "/account/password",
    "/account/tokens",
    "/account/tokens/{token_id}/revoke",
    "/api/v1/me",
    "/api/v1/tokens",
    "/api/v1/tokens/{token_id}",
    # a customer reports an incident and comments on its own incidents (R-INC-4)
    "/api/v1/customers/{customer_id}/incidents",
    "/api/v1/incidents/{incident_id}/comments",
}


def routes(live: LiveServer) -> list[tuple[str, str]]:
    """(method, path template) of every API route (from OpenAPI) and every page route."""
    found: set[tuple[str, str]] = set()
    spec = httpx.get(f"{live.url}/api/v1/openapi.json").json()
    for path, ops in spec["paths"].items():
        found.update((m.upper(), path) for m in ops if m.upper() in ("GET", *UNSAFE))
    app = live.server.config.app
    for route in app.routes:  # pages are not in the OpenAPI document
        for method in getattr(route, "methods", None) or ():
            if method in ("GET", *UNSAFE) and not route.path.startswith("/static"):
                found.add((method, route.path))
    return sorted(found)


def fill(path: str, tenant: Tenant) -> str:
    ids = tenant.ids()

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in ids, f"path parameter {name} of {path}: add it to tests/world.py Tenant.ids()"
        return str(ids[name])

    return re.sub(r"{([^}]+)}", one, path)


def send(client: httpx.Client, method: str, url: str) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if method in UNSAFE:
        kwargs["json"] = {}
    return client.request(method, url, **kwargs)


def audit_count(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


MARKERS_B = (
    "Customer B",
    "web-B",
    "HT-2026-B",
    "Contact B",
    "user-b",
    "s3cret-B",
    "ping-B",
    "upgrade B",
    "Incident B",
)


@pytest.mark.parametrize("who", ["customer_user", "engineer"])
def test_objects_of_another_customer_are_not_found(world: World, live: LiveServer, who: str) -> None:
    username = world.a.username if who == "customer_user" else world.engineer_a
    client = live.login(username, PASSWORD)
    b_token = live.login(world.b.username, PASSWORD).post("/api/v1/tokens", json={"name": "b"}).json()["id"]
    world.b.token = b_token
    checked = 0
    for method, path in routes(live):
        if "{" not in path or path in ("/logout", "/login"):
            continue
        resp = send(client, method, fill(path, world.b))
        assert resp.status_code == 404, f"{who} {method} {path} -> {resp.status_code}: {resp.text[:200]}"
        checked += 1
    assert checked >= 25  # the walk really covered the routes


@pytest.mark.parametrize("who", ["customer_user", "engineer"])
def test_lists_show_nothing_of_another_customer(world: World, live: LiveServer, who: str) -> None:
    username = world.a.username if who == "customer_user" else world.engineer_a
    client = live.login(username, PASSWORD)
    listed = 0
    for method, path in routes(live):
        if method != "GET" or path in ("/logout",):
            continue
        resp = client.get(fill(path, world.a))
        if resp.status_code != 200:
            continue
        listed += 1
        for marker in MARKERS_B:
            assert marker not in resp.text, f"{who} GET {path} shows {marker!r}"
    assert listed >= 10


def test_customer_user_cannot_change_anything(world: World, live: LiveServer, runtime: Runtime) -> None:
    client = live.login(world.a.username, PASSWORD)
    world.a.token = client.post("/api/v1/tokens", json={"name": "mine"}).json()["id"]
    before = audit_count(runtime)
    refused = 0
    for method, path in routes(live):
        if method not in UNSAFE or path in SELF_SERVICE:
            continue
        resp = send(client, method, fill(path, world.a))
        # agent endpoints take agent tokens only: a user's session is not even authenticated there
        expected = 401 if path.startswith("/api/v1/ingest/") else 403
        assert resp.status_code == expected, f"{method} {path} -> {resp.status_code}: {resp.text[:200]}"
        refused += 1
    assert refused >= 15
    assert audit_count(runtime) == before  # nothing was changed behind a refusal
    # and its own data is still readable
    assert client.get(f"/api/v1/assets/{world.a.asset}").json()["name"] == "web-A"


def test_admin_sees_both_customers(world: World, live: LiveServer) -> None:
    client = live.login(world.admin, PASSWORD)
    codes = {c["code"] for c in client.get("/api/v1/customers").json()}
    assert codes == {"A", "B"}
    assert client.get(f"/api/v1/assets/{world.b.asset}").status_code == 200


def test_engineer_writes_only_assigned_customers(world: World, live: LiveServer) -> None:
    client = live.login(world.engineer_a, PASSWORD)
    ok = client.post(f"/api/v1/customers/{world.a.customer}/assets", json={"type": "server", "name": "db-A"})
    assert ok.status_code == 201, ok.text
    moved = client.patch(f"/api/v1/assets/{world.a.asset}", json={"notes": "x"})
    assert moved.status_code == 200
    denied = client.post(f"/api/v1/customers/{world.b.customer}/assets", json={"type": "server", "name": "x"})
    assert denied.status_code == 404
    assert client.post("/api/v1/customers", json={"code": "C", "name": "C"}).status_code == 403
