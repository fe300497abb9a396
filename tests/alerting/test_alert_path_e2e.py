"""The alert path end to end: agent data -> alert -> incident -> outbox -> SMTP and webhook.

Real parts: the server (LiveServer, with its alert, notify and escalation roles), an aiosmtpd
SMTP server, loopback HTTP receivers playing a webhook and Alibaba Cloud's voice API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import httpx
import pytest
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.alerting import policy
from opsdesk.alerting.models import Incident, IncidentEvent, IncidentStatus
from opsdesk.alerting.oncall import OnCallSchedule
from opsdesk.alerting.rules import Severity
from opsdesk.core.calendar import CHINA, ServiceWindow
from opsdesk.core.runtime import Runtime
from opsdesk.ingest.service import gzip_batch
from opsdesk.notify.models import DeliveryState, Notification
from opsdesk.notify.outbox import OutboxWorker
from opsdesk.tenancy.models import Contact, ContractService, ServiceItem
from tests.conftest import LiveServer, csrf_from
from tests.notify.helpers import HMAC_KEY, make_channel, webhook
from tests.notify.receivers import HttpReceiver, smtp_server
from tests.world import PASSWORD, World


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def text_of(envelope) -> str:  # type: ignore[no-untyped-def]
    msg: Message = message_from_bytes(envelope.content)
    parts = [p for p in msg.walk() if p.get_content_type() == "text/plain"] or [msg]
    return "\n".join(str(p.get_payload(decode=True).decode()) for p in parts)  # type: ignore[union-attr]


def disk_batch(seq: int, used: float) -> bytes:
    return gzip_batch(
        {
            "v": 1,
            "seq": seq,
            "instance": "e2e",
            "t": int(time.time() * 1000),
            "interval": 15,
            "agent": {"version": "0.1.0", "hostname": "web-a"},
            "samples": [
                ["fs_used_percent", {"mount": "/data", "device": "/dev/vdb", "fstype": "ext4"}, used]
            ],
            "events": [],
            "inventory": None,
            "top": None,
            "dropped": 0,
        }
    )


def test_disk_nearly_full_to_email_webhook_ack_and_escalation(
    world: World, live: LiveServer, runtime: Runtime
) -> None:
    runtime.settings.server.base_url = live.url  # links in messages point at this server
    controller, mailbox = smtp_server()
    with HttpReceiver() as customer_hook, HttpReceiver() as staff_hook:
        try:
            make_channel(
                runtime,
                world.a.customer,
                "email",
                {
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "security": "none",
                    "sender": "noc@opsdesk.test",
                    "to": ["ops@a.example.cn"],
                },
                language="zh-CN",
            )
            webhook(runtime, world.a.customer, customer_hook.url + "/customer")
            webhook(runtime, None, staff_hook.url + "/duty")
            admin = live.login(world.admin, PASSWORD)
            token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={}).json()["token"]
            agent = httpx.Client(
                base_url=live.url, headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
            )
            assert agent.post("/api/v1/ingest/agent", content=disk_batch(1, 96.4)).status_code == 200

            mail = wait_for(lambda: mailbox.messages, 20, "the e-mail")[0]
            body = text_of(mail)
            assert "ops@a.example.cn" in mail.rcpt_tos
            assert "磁盘" in body or "P2" in body  # Chinese, the customer's language
            incident_id = int(re.search(r"/incidents/(\d+)", body).group(1))  # type: ignore[union-attr]
            assert admin.get(f"/api/v1/incidents/{incident_id}").json()["severity"] == "P2"
            # the link in the message opens the incident: a browser is sent to log in first
            link = re.search(r"https?://[^\s]+/incidents/\d+", body).group(0)  # type: ignore[union-attr]
            assert link.startswith(live.url)
            assert httpx.get(link, headers={"accept": "text/html"}).status_code == 303
            page_html = admin.get(link, headers={"accept": "text/html"})
            assert page_html.status_code == 200 and "/data" in page_html.text

            hook = wait_for(lambda: customer_hook.requests, 20, "the customer's webhook")[0]
            signature = hook.headers["x-opsdesk-signature"]
            expected = hmac.new(HMAC_KEY.encode(), hook.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(signature, f"sha256={expected}")
            payload = json.loads(hook.body)
            assert str(incident_id) in json.dumps(payload)
            duty = wait_for(lambda: staff_hook.requests, 20, "the duty engineers' webhook")[0]
            ack_url = re.search(r"https?://[^\s\"]+/ack\?t=[^\s\"\\]+", duty.body.decode()).group(0)  # type: ignore[union-attr]
            ack_url = ack_url.replace("\\u0026", "&")

            # the acknowledge link: the page shows what it is for; its button acknowledges
            page = httpx.get(ack_url)
            assert page.status_code == 200
            browser = httpx.Client()
            form = browser.get(ack_url)
            token_t = re.search(r'name="t" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            done = browser.post(
                ack_url.split("?")[0], data={"t": token_t, "csrf_token": csrf_from(form.text)}
            )
            assert done.status_code == 200
            assert admin.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "acknowledged"
        finally:
            controller.stop()

    # escalation: an unacknowledged P2 moves to the project lead after 15 minutes (clock injected)
    with runtime.sessions.begin() as s:
        lead = s.scalars(select(User).where(User.username == world.engineer_b)).one()
        lead.phone = "13900000002"
        from opsdesk.tenancy.models import StaffAssignment, StaffRole

        s.add(StaffAssignment(customer_id=world.a.customer, user_id=lead.id, role=StaffRole.project_lead))
        fresh = Incident(
            customer_id=world.a.customer,
            asset_id=world.a.asset,
            title="api slow",
            severity=Severity.p2,
            status=IncidentStatus.open,
            opened_at=datetime.now(UTC),
            escalation_level=0,
        )
        s.add(fresh)
        s.flush()
        fresh_id = fresh.id
    with runtime.sessions() as s:
        assert policy.escalate(s, datetime.now(UTC) + timedelta(minutes=5)) == []
        assert policy.escalate(s, datetime.now(UTC) + timedelta(minutes=16)) == [fresh_id]
        s.commit()
        kinds = [
            e.kind for e in s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == fresh_id))
        ]
        assert "escalated" in kinds
        assert s.get(Incident, fresh_id).escalation_level == 1  # type: ignore[union-attr]


@pytest.fixture
def at_3am_on_national_day(monkeypatch: pytest.MonkeyPatch) -> datetime:
    moment = datetime(2026, 10, 1, 3, 0, tzinfo=CHINA).astimezone(UTC)
    monkeypatch.setattr(policy, "clock", lambda: moment)
    return moment


def test_p1_calls_at_3am_on_a_holiday_and_p3_waits(
    world: World, runtime: Runtime, at_3am_on_national_day: datetime
) -> None:
    now = at_3am_on_national_day
    with HttpReceiver() as aliyun:
        voice = {
            "endpoint": aliyun.url + "/",
            "access_key_id": "LTAI-test",
            "access_key_secret": "secret-key",
            "tts_code": "TTS_1",
        }
        make_channel(runtime, None, "aliyun_voice", voice)
        make_channel(runtime, world.a.customer, "aliyun_voice", voice)
        email = {"host": "127.0.0.1", "port": 2525, "sender": "noc@opsdesk.test", "to": ["ops@a.example.cn"]}
        make_channel(runtime, world.a.customer, "email", email)
        with runtime.sessions.begin() as s:
            eng = s.scalars(select(User).where(User.username == world.engineer_a)).one()
            eng.phone = "13900000001"
            s.add(
                OnCallSchedule(
                    name="duty", members=[eng.id], rotation_hours=24, starts_at=now - timedelta(days=3)
                )
            )
            contact = s.scalars(select(Contact).where(Contact.customer_id == world.a.customer)).first()
            assert contact is not None
            primary_phone = contact.phone
            incident_item = s.scalars(select(ServiceItem).where(ServiceItem.code == "incident")).one()
            s.add(
                ContractService(
                    customer_id=world.a.customer,
                    contract_id=world.a.contract,
                    service_item_id=incident_item.id,
                    window=ServiceWindow.workdays,
                )
            )
            p1 = Incident(
                customer_id=world.a.customer,
                asset_id=world.a.asset,
                title="web-A down",
                severity=Severity.p1,
                status=IncidentStatus.open,
                opened_at=now,
                escalation_level=0,
            )
            p3 = Incident(
                customer_id=world.a.customer,
                asset_id=world.a.asset,
                title="load high",
                severity=Severity.p3,
                status=IncidentStatus.open,
                opened_at=now,
                escalation_level=0,
            )
            s.add_all([p1, p3])
            s.flush()
            policy.on_change(s, p1, "opened")
            policy.on_change(s, p3, "opened")
            p1_id, p3_id = p1.id, p3.id
        with runtime.sessions() as s:
            rows = list(s.scalars(select(Notification)).all())
        calls = [r for r in rows if r.incident_id == p1_id and r.idempotency_key.count("/")]
        assert {r.recipients[0] for r in calls} == {"13900000001", primary_phone}
        assert all(r.next_attempt_at <= now for r in calls)  # 7x24: at once
        waiting = [r for r in rows if r.incident_id == p3_id]
        assert waiting, "the P3 is queued"
        opens = datetime(2026, 10, 8, 9, 0, tzinfo=CHINA)  # the first working morning after the holiday
        assert all(r.next_attempt_at == opens for r in waiting)

        # deliver what is due now: the two calls reach the provider's voice API, the P3 does not
        import asyncio

        async def deliver() -> None:
            worker = OutboxWorker(runtime.sessions, clock=lambda: now)
            try:
                while await worker.run_once():  # what is due now; the P3 is not due until 8 October
                    pass
            finally:
                await worker.aclose()

        asyncio.run(deliver())
        called = {r.form().get("CalledNumber") or r.query.get("CalledNumber") for r in aliyun.requests}
        assert called == {"13900000001", primary_phone}
        with runtime.sessions() as s:
            states = {r.incident_id: r.state for r in s.scalars(select(Notification))}
        assert states[p3_id] is DeliveryState.pending
