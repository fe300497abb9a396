"""WeCom (企业微信) group robot: POST {base_url}?key=KEY with a text message."""

from __future__ import annotations

from typing import Annotated

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels._bot import check_answer
from opsdesk.notify.channels.base import Channel, ChannelConfig, Message, http_url, register

BUSY = frozenset({45009})  # api freq out of limit (20 messages a minute per robot)


class WeComConfig(ChannelConfig):
    base_url: Annotated[str, AfterValidator(http_url)] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    key: str = Field(min_length=8, description="the robot's webhook key")
    mention_mobiles: list[str] = Field(default_factory=list, description="mobiles to @; '@all' for everyone")


def payload(config: WeComConfig, msg: Message) -> dict[str, object]:
    text: dict[str, object] = {"content": msg.text}
    if config.mention_mobiles:
        text["mentioned_mobile_list"] = config.mention_mobiles
    return {"msgtype": "text", "text": text}


@register
class WeComChannel(Channel[WeComConfig]):
    type = "wecom"
    config_model = WeComConfig
    secret_fields = ("key",)

    async def send(self, config: WeComConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        resp = await http.post(config.base_url, params={"key": config.key}, json=payload(config, msg))
        check_answer(resp, "errcode", "errmsg", BUSY)
        return ""
