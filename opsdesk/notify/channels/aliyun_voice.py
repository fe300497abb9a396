"""Alibaba Cloud voice notification (语音服务): SingleCallByTts reads a text template aloud.

One call per number, so each number is its own outbox row and is called once.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels import _aliyun
from opsdesk.notify.channels.base import Channel, Message, aliyun_phone, plain_number, register

Phone = Annotated[str, AfterValidator(aliyun_phone)]
TemplateVar = Literal["severity", "customer", "title", "incident", "event"]
VAR_MAX = 35
DEFAULT_VARS: list[TemplateVar] = ["severity", "customer", "title"]


class AliyunVoiceConfig(_aliyun.AliyunConfig):
    endpoint: Annotated[str, AfterValidator(_aliyun.http_url)] = "https://dyvmsapi.aliyuncs.com/"
    tts_code: str = Field(pattern=r"^TTS_\d+$")
    tts_params: list[TemplateVar] = Field(default_factory=lambda: list(DEFAULT_VARS))
    called_show_number: str = Field("", pattern=r"^\d*$")  # empty: the provider's public number
    play_times: int = Field(2, ge=1, le=3)
    to: list[Phone] = Field(default_factory=list)


@register
class AliyunVoiceChannel(Channel[AliyunVoiceConfig]):
    type = "aliyun_voice"
    config_model = AliyunVoiceConfig
    secret_fields = ("access_key_secret",)
    medium = "voice"
    per_recipient = True

    async def send(
        self, config: AliyunVoiceConfig, msg: Message, to: list[str], http: httpx.AsyncClient
    ) -> str:
        values = {n: msg.params.get(n, "")[:VAR_MAX] for n in config.tts_params}
        receipts = []
        for number in to:
            params = {
                "CalledNumber": plain_number(number),
                "TtsCode": config.tts_code,
                "TtsParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
                "PlayTimes": str(config.play_times),
                "OutId": _aliyun.out_id(msg.key),
            }
            if config.called_show_number:
                params["CalledShowNumber"] = config.called_show_number
            data = await _aliyun.call(http, config, "SingleCallByTts", params)
            receipts.append(str(data.get("CallId", "")))
        return ",".join(receipts)
