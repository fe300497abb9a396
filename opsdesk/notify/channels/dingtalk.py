"""DingTalk (钉钉) custom robot with the "signed" security setting.

The signature is base64(HMAC-SHA256(key=secret, msg="{timestamp_ms}\\n{secret}")), sent
URL-encoded as the `sign` query parameter next to `timestamp` and `access_token`.
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

BUSY = frozenset({130101})  # send too fast


class DingTalkConfig(ChannelConfig):
    base_url: Annotated[str, AfterValidator(http_url)] = "https://oapi.dingtalk.com/robot/send"
    access_token: str = Field(min_length=8)
    secret: str = Field(min_length=8, description="the robot's signing secret (starts with SEC)")
    at_mobiles: list[str] = Field(default_factory=list)
    at_all: bool = False


def signature(secret: str, timestamp_ms: int) -> str:
    """The base64 signature; httpx URL-encodes it as a query value."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


def payload(config: DingTalkConfig, msg: Message) -> dict[str, object]:
    return {
        "msgtype": "text",
        "text": {"content": msg.text},
        "at": {"atMobiles": config.at_mobiles, "isAtAll": config.at_all},
    }


@register
class DingTalkChannel(Channel[DingTalkConfig]):
    type = "dingtalk"
    config_model = DingTalkConfig
    secret_fields = ("access_token", "secret")

    async def send(self, config: DingTalkConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        ts = int(time.time() * 1000)
        params = {
            "access_token": config.access_token,
            "timestamp": str(ts),
            "sign": signature(config.secret, ts),
        }
        resp = await http.post(config.base_url, params=params, json=payload(config, msg))
        check_answer(resp, "errcode", "errmsg", BUSY)
        return ""
