"""Generic webhook: a JSON POST signed with HMAC-SHA256 over the exact body bytes.

Headers: ``X-Opsdesk-Signature: sha256=<hex>``, ``X-Opsdesk-Timestamp: <unix seconds>`` (also
inside the signed body, so a receiver can refuse old replays) and ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Annotated

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels.base import (
    IDEMPOTENCY_HEADER,
    Channel,
    ChannelConfig,
    Message,
    http_url,
    raise_for_status,
    register,
)

SIGNATURE_HEADER = "X-Opsdesk-Signature"
TIMESTAMP_HEADER = "X-Opsdesk-Timestamp"


class WebhookConfig(ChannelConfig):
    url: Annotated[str, AfterValidator(http_url)]
    secret: str = Field(min_length=16, description="HMAC key shared with the receiver")
    timeout: float = Field(10, gt=0, le=60)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(msg: Message, timestamp: int) -> bytes:
    doc = {
        "idempotency_key": msg.key,
        "timestamp": timestamp,
        "subject": msg.subject,
        "text": msg.text,
        "severity": msg.severity,
        "incident_id": msg.incident_id,
        "link": msg.link,
        "ack_url": msg.ack_url,
        "params": msg.params,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@register
class WebhookChannel(Channel[WebhookConfig]):
    type = "webhook"
    config_model = WebhookConfig
    secret_fields = ("secret",)
    medium = "webhook"

    async def send(self, config: WebhookConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        now = int(time.time())
        body = body_of(msg, now)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(config.secret, body),
            TIMESTAMP_HEADER: str(now),
            IDEMPOTENCY_HEADER: msg.key,
        }
        resp = await http.post(config.url, content=body, headers=headers, timeout=config.timeout)
        raise_for_status(resp)
        return ""
