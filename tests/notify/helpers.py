"""Channels and notices made straight in the store, for tests that exercise the outbox."""

from __future__ import annotations

from typing import Any

from opsdesk.core.runtime import Runtime
from opsdesk.notify.api import checked
from opsdesk.notify.models import Notification, NotifyChannel
from opsdesk.notify.outbox import Links, enqueue
from opsdesk.notify.templates import Notice

HMAC_KEY = "webhook-hmac-key-0123456789"


def links(rt: Runtime) -> Links:
    return Links("http://opsdesk.test", rt.settings.secret("secret_key"))


def make_channel(
    rt: Runtime, customer_id: int | None, kind: str, config: dict[str, Any], language: str = "zh-CN"
) -> int:
    public, secrets = checked(kind, config)
    with rt.sessions.begin() as s:
        ch = NotifyChannel(
            customer_id=customer_id,
            name=f"{kind} channel",
            type=kind,
            config=public,
            secrets=secrets,
            language=language,
        )
        s.add(ch)
        s.flush()
        return ch.id


def webhook(rt: Runtime, customer_id: int | None, url: str) -> int:
    return make_channel(rt, customer_id, "webhook", {"url": url, "secret": HMAC_KEY})


def notice(n: int = 1, event: str = "opened") -> Notice:
    return Notice(event=event, title=f"web-A down #{n}", customer="客户A", severity="P1", incident_id=n)  # type: ignore[arg-type]


def queue(rt: Runtime, channel_id: int, key: str, n: int = 1, **kw: Any) -> list[int]:
    with rt.sessions.begin() as s:
        ch = s.get(NotifyChannel, channel_id)
        assert ch is not None
        return [row.id for row in enqueue(s, ch, notice(n), key, links(rt), **kw)]


def row(rt: Runtime, notification_id: int) -> Notification:
    with rt.sessions() as s:
        found = s.get(Notification, notification_id)
        assert found is not None
        return found
