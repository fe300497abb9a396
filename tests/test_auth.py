"""Accounts and access: argon2 hashes, throttling, sessions, CSRF and API tokens."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, text

from opsdesk.accounts.models import ApiToken, User
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from tests.conftest import LiveServer, csrf_from
from tests.world import PASSWORD, World


def test_passwords_are_argon2id(world: World, runtime: Runtime) -> None:
    with runtime.sessions() as s:
        hashes = list(s.scalars(select(User.password_hash)))
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all(PASSWORD not in h for h in hashes)


def _try_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_repeated_wrong_passwords_are_throttled(world: World, live: LiveServer) -> None:
    client = live.client()
    for _ in range(5):
        assert _try_login(client, world.engineer_a, "wrong-password").status_code == 401
    # the right password no longer helps until the window has passed
    throttled = _try_login(client, world.engineer_a, PASSWORD)
    assert throttled.status_code == 429
    assert "retry" in throttled.text.lower() or "重试" in throttled.text
    # other accounts are not locked out by it
    assert _try_login(live.client(), world.engineer_b, PASSWORD).status_code == 303


def test_tampered_session_cookie_is_refused(world: World, live: LiveServer) -> None:
    client = live.login(world.admin, PASSWORD)
    assert client.get("/api/v1/me").status_code == 200
    cookie = client.cookies["opsdesk_session"]
    payload, rest = cookie.split(".", 1)
    forged = httpx.Client(base_url=live.url)
    # flip one character of the signed payload: the signature no longer matches
    forged.cookies.set(
        "opsdesk_session", payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + rest
    )
    assert forged.get("/api/v1/me").status_code == 401
    page = forged.get("/account", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_csrf_token_is_required_and_checked(world: World, live: LiveServer) -> None:
    client = live.login(world.admin, PASSWORD)
    good = client.headers.pop("X-CSRF-Token")
    url = f"/api/v1/assets/{world.a.asset}"
    assert client.patch(url, json={"notes": "no token"}).status_code == 403
    assert (
        client.patch(url, json={"notes": "bad"}, headers={"X-CSRF-Token": good[:-1] + "x"}).status_code == 403
    )
    assert client.patch(url, json={"notes": "good"}, headers={"X-CSRF-Token": good}).status_code == 200
    # forms: the login form itself refuses a post without the token
    assert live.client().post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 403


def test_api_tokens_are_hashed_scoped_and_revocable(world: World, live: LiveServer, runtime: Runtime) -> None:
    session = live.login(world.engineer_a, PASSWORD)
    read = session.post("/api/v1/tokens", json={"name": "reader"}).json()
    write = session.post("/api/v1/tokens", json={"name": "writer", "scopes": ["read", "write"]}).json()
    with runtime.sessions() as s:
        stored = list(s.scalars(select(ApiToken.token_hash)))
    assert read["token"] not in " ".join(stored) and len(stored) == 2

    def bearer(tok: str) -> httpx.Client:
        return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {tok}"})

    asset = f"/api/v1/assets/{world.a.asset}"
    assert bearer(read["token"]).get(asset).status_code == 200
    assert bearer(read["token"]).patch(asset, json={"notes": "r"}).status_code == 403
    assert bearer(write["token"]).patch(asset, json={"notes": "w"}).status_code == 200
    assert bearer(write["token"]).get(f"/api/v1/assets/{world.b.asset}").status_code == 404
    # the change by a token is audited under the token's name
    audit = live.login(world.admin, PASSWORD).get("/api/v1/audit", params={"entity": "assets"}).json()
    assert audit[0]["actor"] == "eng-a (token writer)" and audit[0]["after"] == {"notes": "w"}
    assert audit[0]["before"] == {"notes": "r"} or audit[0]["before"] == {"notes": ""}
    # revoked and expired tokens stop working
    assert session.delete(f"/api/v1/tokens/{read['id']}").status_code == 204
    assert bearer(read["token"]).get(asset).status_code == 401
    with runtime.sessions.begin() as s:
        row = s.get(ApiToken, write["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert bearer(write["token"]).get(asset).status_code == 401
    assert bearer("odk_not-a-token").get(asset).status_code == 401


def test_customer_users_get_read_tokens_only(world: World, live: LiveServer) -> None:
    client = live.login(world.a.username, PASSWORD)
    assert client.post("/api/v1/tokens", json={"name": "w", "scopes": ["write"]}).status_code == 422
    tok = client.post("/api/v1/tokens", json={"name": "r"}).json()["token"]
    api = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {tok}"})
    assert [c["code"] for c in api.get("/api/v1/customers").json()] == ["A"]


def test_language_choice_is_remembered(world: World, live: LiveServer, runtime: Runtime) -> None:
    client = live.login(world.engineer_a, PASSWORD)
    resp = client.post(
        "/lang", data={"lang": "en", "next": "/account", "csrf_token": client.headers["X-CSRF-Token"]}
    )
    assert resp.status_code == 303 and resp.cookies["lang"] == "en"
    with runtime.sessions() as s:
        assert s.scalars(select(User.language).where(User.username == world.engineer_a)).one() == "en"
    # a new browser without the cookie gets the saved language after logging in
    fresh = live.login(world.engineer_a, PASSWORD)
    assert 'lang="en"' in fresh.get("/account").text


def test_secrets_are_encrypted_at_rest_and_masked(world: World, live: LiveServer, runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        raw = [r[0] for r in conn.execute(text("SELECT secret FROM credentials"))]
    assert raw and all("s3cret" not in value for value in raw)
    client = live.login(world.admin, PASSWORD)
    shown = client.get(f"/api/v1/credentials/{world.a.credential}").json()
    assert shown["secret"] == "********"
    changed = client.patch(f"/api/v1/credentials/{world.a.credential}", json={"secret": "n3w-secret"})
    assert changed.status_code == 200 and "n3w-secret" not in changed.text
    audit = client.get("/api/v1/audit", params={"entity": "credentials"}).text
    assert "n3w-secret" not in audit and "s3cret-A" not in audit and "changed" in audit


def test_health_and_metrics(world: World, live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json()["status"] == "ok"
    live.client().get("/login")
    body = httpx.get(f"{live.url}/metrics").text
    assert "opsdesk_customers 2.0" in body
    assert 'opsdesk_assets{type="server"} 2.0' in body
    assert 'opsdesk_http_requests_total{method="GET",route="/login",status="200"}' in body
