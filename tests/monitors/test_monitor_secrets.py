"""Monitor credentials: stored encrypted, never shown back, kept on edits that send the mask, and
still used by the check (a real password-protected redis-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import select, text

from opsdesk.core.runtime import Runtime
from opsdesk.monitors import secrets
from opsdesk.monitors.checks import CheckConfig
from opsdesk.monitors.models import Monitor
from tests.conftest import LiveServer
from tests.middleware_fixtures import RedisServer, start_redis
from tests.test_pages import form_post, switch
from tests.world import PASSWORD, World

SECRET = "Plain-Secret-7c41e"


class _Auth(BaseModel):
    user: str
    password: SecretStr


class _Nested(CheckConfig):
    """A config shaped like another engineer's: a token at the top, a password inside a list."""

    url: str
    token: SecretStr | None = None
    auths: list[_Auth] = Field(default_factory=list)


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis", password=SECRET)
    try:
        yield server
    finally:
        server.stop()


def test_any_secret_field_is_sealed_revealed_masked_and_kept(sqlite_runtime: Runtime) -> None:
    model = _Nested.model_validate(
        {"url": "http://x", "token": "tok-123", "auths": [{"user": "a", "password": "pw-a"}]}
    )
    stored = secrets.seal(model)
    raw = json.dumps(stored)
    assert "tok-123" not in raw and "pw-a" not in raw
    assert secrets.is_sealed(stored["token"]) and secrets.is_sealed(stored["auths"][0]["password"])
    assert secrets.reveal(stored)["auths"][0]["password"] == "pw-a"
    shown = secrets.masked(stored)
    assert shown["token"] == secrets.MASK and shown["auths"][0] == {"user": "a", "password": secrets.MASK}
    # an edit that sends back what it was shown keeps the secrets, and their stored tokens
    again = secrets.restore(shown, stored)
    assert again["token"] == "tok-123" and again["auths"][0]["password"] == "pw-a"
    assert secrets.seal(_Nested.model_validate(again), stored) == stored
    # leaving a secret out keeps it too; a new value replaces it; "" clears it
    kept = secrets.restore({"url": "http://y"}, stored)
    assert kept["token"] == "tok-123"
    changed = secrets.seal(_Nested.model_validate({**again, "token": "tok-456"}), stored)
    assert changed["token"] != stored["token"] and secrets.reveal(changed)["token"] == "tok-456"
    assert secrets.seal(_Nested.model_validate({**again, "token": ""}), stored)["token"] == ""
    # the mask with nothing stored behind it is not a password
    assert secrets.masks_left(_Nested.model_validate({"url": "u", "token": secrets.MASK})) == ["token"]


def test_a_secret_sealed_under_another_key_is_refused_clearly(sqlite_runtime: Runtime) -> None:
    from cryptography.fernet import Fernet

    other_key = Fernet(Fernet.generate_key())
    foreign = {"url": "http://x", "token": {secrets.ENC: other_key.encrypt(b"t").decode()}}
    with pytest.raises(secrets.SecretUnreadable, match="enter it again"):
        secrets.reveal(foreign)
    with pytest.raises(secrets.SecretUnreadable):
        secrets.restore({"url": "http://y"}, foreign)


def _raw_config(rt: Runtime, monitor_id: int) -> str:
    with rt.sessions() as s:
        value = s.execute(text("SELECT config FROM monitors WHERE id = :i"), {"i": monitor_id}).scalar_one()
    return value if isinstance(value, str) else json.dumps(value)


def test_api_stores_encrypted_shows_masked_and_the_check_still_authenticates(
    world: World, live: LiveServer, runtime: Runtime, protected: RedisServer
) -> None:
    admin = live.login(world.admin, PASSWORD)
    config = {"host": "127.0.0.1", "port": protected.port, "password": SECRET, "interval_s": 3600}
    made = admin.post(
        f"/api/v1/customers/{world.a.customer}/monitors",
        json={"name": "cache", "type": "redis", "config": config},
    )
    assert made.status_code == 201, made.text
    monitor_id = made.json()["id"]
    assert made.json()["config"]["password"] == secrets.MASK
    raw = _raw_config(runtime, monitor_id)
    assert SECRET not in raw and '"$enc"' in raw
    for body in (
        admin.get(f"/api/v1/monitors/{monitor_id}").text,
        admin.get(f"/api/v1/customers/{world.a.customer}/monitors").text,
        admin.get(f"/monitors/{monitor_id}").text,
    ):
        assert SECRET not in body
    ran = admin.post(f"/api/v1/monitors/{monitor_id}/run")
    assert ran.status_code == 200 and ran.json()["ok"] is True, ran.text
    # an edit that sends the mask back keeps the secret (and the stored row's token)
    shown = admin.get(f"/api/v1/monitors/{monitor_id}").json()["config"]
    edited = admin.patch(f"/api/v1/monitors/{monitor_id}", json={"config": {**shown, "timeout_s": 5}})
    assert edited.status_code == 200, edited.text
    assert json.loads(_raw_config(runtime, monitor_id))["password"] == json.loads(raw)["password"]
    assert admin.post(f"/api/v1/monitors/{monitor_id}/run").json()["ok"] is True
    # a wrong new password is used, and refused by the server
    admin.patch(f"/api/v1/monitors/{monitor_id}", json={"config": {**shown, "password": "wrong"}})
    refused = admin.post(f"/api/v1/monitors/{monitor_id}/run").json()
    assert refused["ok"] is False and refused["code"] == "auth_failed"
    # the mask is not accepted as a password where nothing is stored
    masked = admin.post(
        f"/api/v1/customers/{world.a.customer}/monitors",
        json={"name": "x", "type": "redis", "config": {**config, "password": secrets.MASK}},
    )
    assert masked.status_code == 422
    assert any(e["field"] == "config.password" for e in masked.json()["detail"])


def test_agents_get_the_secret_over_their_own_channel(
    world: World, live: LiveServer, runtime: Runtime
) -> None:
    admin = live.login(world.admin, PASSWORD)
    token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={"name": "db-agent"}).json()[
        "token"
    ]
    made = admin.post(
        f"/api/v1/customers/{world.a.customer}/monitors",
        json={
            "name": "local db",
            "type": "mysql",
            "config": {"host": "127.0.0.1", "user": "monitor", "password": SECRET},
            "runner": "agent",
            "agent_asset_id": world.a.asset,
        },
    )
    assert made.status_code == 201, made.text
    agent = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"})
    assigned = agent.get("/api/v1/ingest/agent/monitors")
    assert assigned.status_code == 200, assigned.text
    mine = [m for m in assigned.json() if m["id"] == made.json()["id"]]
    assert mine and mine[0]["config"]["password"] == SECRET
    assert httpx.get(f"{live.url}/api/v1/ingest/agent/monitors").status_code == 401
    with runtime.sessions() as s:
        stored = s.scalars(select(Monitor.config).where(Monitor.id == made.json()["id"])).one()
    assert secrets.is_sealed(stored["password"])


def test_the_add_check_form_takes_a_password_and_stores_it_encrypted(
    world: World, live: LiveServer, runtime: Runtime, protected: RedisServer
) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    new = admin.get(f"/customers/{world.a.customer}/checks/new?type=redis")
    assert new.status_code == 200
    assert 'name="config.password" type="password"' in new.text
    data = {
        "type": "redis",
        "name": "form redis",
        "runs_on": "platform",
        "enabled": "true",
        "config.host": "127.0.0.1",
        "config.port": str(protected.port),
        "config.password": SECRET,
        "config.interval_s": "3600",
    }
    assert form_post(admin, f"/customers/{world.a.customer}/checks", data).status_code == 303
    with runtime.sessions() as s:
        monitor = s.scalars(select(Monitor).where(Monitor.name == "form redis")).one()
        monitor_id, stored = monitor.id, dict(monitor.config)
    assert SECRET not in json.dumps(stored) and secrets.is_sealed(stored["password"])
    assert admin.post(f"/api/v1/monitors/{monitor_id}/run").json()["ok"] is True


@pytest.mark.parametrize("backend", ["sqlite"])  # the form does not depend on the store
def test_every_middleware_type_has_an_add_form_in_both_languages(
    world: World, live: LiveServer, backend: str
) -> None:
    admin = live.login(world.admin, PASSWORD)
    for lang, caption in (("en", "Password"), ("zh-CN", "密码")):
        switch(admin, lang)
        for kind in ("nginx", "php_fpm", "tomcat", "mysql", "postgresql", "redis", "oracle"):
            page = admin.get(f"/customers/{world.a.customer}/checks/new?type={kind}")
            assert page.status_code == 200, (kind, page.text[:300])
            assert f'<input type="hidden" name="type" value="{kind}">' in page.text
            assert 'name="config.password" type="password"' in page.text
            assert caption in page.text
    # a bad definition through the form is refused next to its field
    data = {"type": "mysql", "name": "db", "runs_on": "platform", "enabled": "true", "config.port": "70000"}
    refused = form_post(admin, f"/customers/{world.a.customer}/checks", data)
    assert refused.status_code == 422 and 'id="check-config.port-err"' in refused.text
