"""Feishu / Lark (飞书) custom bot with signature verification.

Per Feishu's docs the signature is base64(HMAC-SHA256(key="{timestamp_s}\\n{secret}", msg=b"")),
sent in the JSON body with the timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels._bot import check_answer
from opsdesk.notify.channels.base import Channel, ChannelConfig, Message, http_url, register

BUSY = frozenset({9499, 11232})  # too many requests / frequency limited


class FeishuConfig(ChannelConfig):
    base_url: Annotated[str, AfterValidator(http_url)] = "https://open.feishu.cn/open-apis/bot/v2/hook"
    hook_token: str = Field(min_length=8, description="the last part of the bot's webhook URL")
    secret: str = Field(min_length=8, description="the bot's signing secret")


def signature(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@register
class FeishuChannel(Channel[FeishuConfig]):
    type = "feishu"
    config_model = FeishuConfig
    secret_fields = ("hook_token", "secret")

    async def send(self, config: FeishuConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        ts = int(time.time())
        body = {
            "timestamp": str(ts),
            "sign": signature(config.secret, ts),
            "msg_type": "text",
            "content": {"text": msg.text},
        }
        resp = await http.post(f"{config.base_url.rstrip('/')}/{config.hook_token}", json=body)
        check_answer(resp, "code", "msg", BUSY)
        return ""
