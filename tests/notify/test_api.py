"""Channels and the outbox through the REST API and the staff pages, on both stores."""

from __future__ import annotations

import asyncio
import re

from opsdesk.core.runtime import Runtime
from opsdesk.notify.models import DeliveryState
from opsdesk.notify.outbox import OutboxWorker, Policy
from tests.conftest import LiveServer
from tests.notify.helpers import HMAC_KEY, queue, row, webhook
from tests.notify.receivers import HttpReceiver
from tests.world import PASSWORD, World


def errors(resp: object) -> dict[str, str]:
    assert resp.status_code == 422, resp.text  # type: ignore[attr-defined]
    return {e["field"]: e["message"] for e in resp.json()["detail"]}  # type: ignore[attr-defined]


def test_channel_crud_keeps_secrets_encrypted_and_masked(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    base = f"/api/v1/customers/{world.a.customer}/channels"
    created = eng.post(
        base,
        json={
            "name": "客户A 钉钉群",
            "type": "dingtalk",
            "language": "both",
            "config": {"access_token": "dt-access-token-1", "secret": "SECsigning-secret-1"},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["config"]["secret"] == "********" and body["config"]["access_token"] == "********"
    assert body["config"]["base_url"] == "https://oapi.dingtalk.com/robot/send" and body["medium"] == "im"
    assert "SECsigning-secret-1" not in eng.get(base).text
    with runtime.engine.connect() as conn:  # encrypted in the store too
        stored = conn.exec_driver_sql(
            f"SELECT secrets, config FROM notify_channels WHERE id = {body['id']}"
        ).one()
    assert "SECsigning-secret-1" not in stored[0] and "SECsigning-secret-1" not in str(stored[1])

    # Sending the masked config back keeps the secrets; a new base_url is taken.
    patched = eng.patch(
        f"/api/v1/channels/{body['id']}",
        json={"config": {**body["config"], "base_url": "https://example.cn/robot/send"}, "enabled": False},
    )
    assert patched.status_code == 200, patched.text
    from opsdesk.notify.models import NotifyChannel
    from opsdesk.notify.outbox import channel_config

    with runtime.sessions() as s:
        ch = s.get(NotifyChannel, body["id"])
        assert ch is not None and not ch.enabled
        cfg = channel_config(ch)
    assert cfg.secret == "SECsigning-secret-1" and cfg.base_url == "https://example.cn/robot/send"  # type: ignore[attr-defined]

    # Other tenants see nothing; the customer's own user reads but cannot change.
    assert live.login(world.engineer_b, PASSWORD).get(f"/api/v1/channels/{body['id']}").status_code == 404
    user = live.login(world.a.username, PASSWORD)
    assert body["id"] in [ch["id"] for ch in user.get(base).json()]
    assert user.delete(f"/api/v1/channels/{body['id']}").status_code == 403
    assert eng.delete(f"/api/v1/channels/{body['id']}").status_code == 204
    assert body["id"] not in [ch["id"] for ch in eng.get(base).json()]


def test_bad_channel_configuration_is_refused_with_field_messages(world: World, live: LiveServer) -> None:
    admin = live.login(world.admin, PASSWORD)
    base = f"/api/v1/customers/{world.a.customer}/channels"

    def post(kind: str, config: dict[str, object]) -> object:
        return admin.post(base, json={"name": "x", "type": kind, "config": config})

    unknown = errors(post("pager", {}))
    assert "unknown channel type 'pager'" in unknown["type"] and "webhook" in unknown["type"]
    missing = errors(post("webhook", {"url": "https://hooks.example.cn/x"}))
    assert missing == {"config.secret": "Field required"}
    bad_url = errors(post("webhook", {"url": "ftp://hooks.example.cn", "secret": HMAC_KEY}))
    assert bad_url["config.url"] == "must be an http:// or https:// URL with a host"
    sms = errors(
        post(
            "aliyun_sms",
            {
                "access_key_id": "LTAI5tTestKeyId",
                "access_key_secret": "secret-123456",
                "sign_name": "运维",
                "template_code": "SMS_1",
                "to": ["13800000000", "12345"],
            },
        )
    )
    assert (
        sms == {"config.to.1": sms["config.to.1"]} and "'12345' is not a phone number" in sms["config.to.1"]
    )
    twilio = errors(
        post(
            "twilio",
            {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 20, "from_number": "15005550006"},
        )
    )
    assert "E.164" in twilio["config.from_number"]
    email = errors(post("email", {"host": "smtp.example.cn", "sender": "noc", "to": [], "username": "noc"}))
    assert set(email) == {"config.sender", "config.to"}
    extra = errors(post("wecom", {"key": "wecom-key-123", "typo": 1}))
    assert extra == {"config.typo": "unknown field"}
    masked = errors(post("webhook", {"url": "https://h.example.cn", "secret": "********"}))
    assert "mask" in masked["config.secret"]


def test_provider_channels_are_for_admins(world: World, live: LiveServer) -> None:
    admin = live.login(world.admin, PASSWORD)
    made = admin.post(
        "/api/v1/notify/channels",
        json={
            "name": "值班短信",
            "type": "webhook",
            "config": {"url": "https://h.example.cn", "secret": HMAC_KEY},
        },
    )
    assert made.status_code == 201 and made.json()["customer_id"] is None
    eng = live.login(world.engineer_a, PASSWORD)
    assert eng.get("/api/v1/notify/channels").status_code == 403
    assert eng.get(f"/api/v1/channels/{made.json()['id']}").status_code == 404
    types = {t["type"]: t for t in eng.get("/api/v1/notify/channel-types").json()}
    assert set(types) >= {
        "email",
        "webhook",
        "wecom",
        "dingtalk",
        "feishu",
        "aliyun_sms",
        "aliyun_voice",
        "twilio",
    }
    assert types["webhook"]["secret_fields"] == ["secret"]


def test_test_send_reports_the_receivers_answer(runtime: Runtime, world: World, live: LiveServer) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    with (
        HttpReceiver(respond=lambda r: (200, "{}")) as ok,
        HttpReceiver(respond=lambda r: (500, "down")) as bad,
    ):
        good = webhook(runtime, world.a.customer, f"{ok.url}/hook")
        broken = webhook(runtime, world.a.customer, f"{bad.url}/hook")
        assert eng.post(f"/api/v1/channels/{good}/test").json() == {"delivered": True, "error": ""}
        failed = eng.post(f"/api/v1/channels/{broken}/test").json()
    assert failed["delivered"] is False and "HTTP 500" in failed["error"]
    assert ok.keys()[0].startswith(f"test:{good}:")


def test_dead_letter_shows_on_the_staff_page_and_can_be_retried(runtime: Runtime, world: World) -> None:
    with HttpReceiver(respond=lambda r: (500, '{"error":"receiver down"}')) as rx:
        hook = webhook(runtime, world.a.customer, f"{rx.url}/hook")
        (nid,) = queue(runtime, hook, "incident:9:opened", n=9, max_attempts=2)
        policy = Policy(max_attempts=2, base_backoff=0.01, poll=0.01)
        asyncio.run(OutboxWorker(runtime.sessions, policy).drain())
        assert rx.count() == 2
    assert row(runtime, nid).state is DeliveryState.dead

    # Started only now, so its own worker had no chance to take the row first.
    with LiveServer(runtime) as live:
        admin = live.login(world.admin, PASSWORD)
        page = admin.get("/notify/outbox", params={"state": "dead"})
        assert page.status_code == 200
        line = re.search(rf'<tr id="notification-{nid}" data-state="dead">.*?</tr>', page.text, re.S)
        assert line is not None
        assert "incident:9:opened" in line.group(0) and "HTTP 500" in line.group(0)
        assert "receiver down" in line.group(0) and f"/notify/outbox/{nid}/retry" in line.group(0)
        assert "死信" in page.text or "Dead letter" in page.text
        listed = admin.get("/api/v1/notify/outbox", params={"state": "dead"}).json()
        mine = [n for n in listed if n["id"] == nid]
        assert len(mine) == 1 and "HTTP 500" in mine[0]["last_error"]
        customer = live.login(world.a.username, PASSWORD)
        assert customer.get("/api/v1/notify/outbox").status_code == 404  # staff only
        assert live.login(world.engineer_b, PASSWORD).get(f"/api/v1/outbox/{nid}").status_code == 404
        retried = admin.post(
            f"/notify/outbox/{nid}/retry", data={"csrf_token": admin.headers["X-CSRF-Token"]}
        )
        assert retried.status_code == 303
        assert row(runtime, nid).attempts in (0, 1)  # queued again (the app's worker may already try)
        assert admin.post(f"/api/v1/outbox/{nid}/retry").status_code in (200, 409)


def test_channel_page_adds_and_refuses_with_field_errors(
    runtime: Runtime, world: World, live: LiveServer
) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    url = f"/customers/{world.a.customer}/channels"
    token = eng.headers["X-CSRF-Token"]
    bad = eng.post(
        url,
        data={
            "csrf_token": token,
            "name": "hook",
            "type": "webhook",
            "language": "en",
            "config": '{"url": "x"}',
        },
    )
    assert bad.status_code == 422
    assert "config.url: must be an http:// or https:// URL" in bad.text and "config.secret" in bad.text
    not_json = eng.post(url, data={"csrf_token": token, "name": "hook", "type": "webhook", "config": "{url"})
    assert not_json.status_code == 422 and ("JSON" in not_json.text)
    good = eng.post(
        url,
        data={
            "csrf_token": token,
            "name": "ops hook",
            "type": "webhook",
            "language": "en",
            "enabled": "true",
            "config": f'{{"url": "https://h.example.cn/x", "secret": "{HMAC_KEY}"}}',
        },
    )
    assert good.status_code == 303
    listing = eng.get(url)
    assert "ops hook" in listing.text and HMAC_KEY not in listing.text
