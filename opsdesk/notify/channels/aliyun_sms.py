"""Alibaba Cloud SMS (短信服务): SendSms with an approved sign name and template."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels import _aliyun
from opsdesk.notify.channels.base import Channel, Message, aliyun_phone, plain_number, register

Phone = Annotated[str, AfterValidator(aliyun_phone)]
# Message values a template may use, by the same names (each cut to the provider's 35 characters).
TemplateVar = Literal["severity", "customer", "title", "incident", "event"]
VAR_MAX = 35
DEFAULT_VARS: list[TemplateVar] = ["severity", "customer", "title"]


class AliyunSmsConfig(_aliyun.AliyunConfig):
    endpoint: Annotated[str, AfterValidator(_aliyun.http_url)] = "https://dysmsapi.aliyuncs.com/"
    sign_name: str = Field(min_length=1)
    template_code: str = Field(pattern=r"^SMS_\d+$")
    template_params: list[TemplateVar] = Field(default_factory=lambda: list(DEFAULT_VARS))
    to: list[Phone] = Field(default_factory=list)


def template_param(names: list[str], msg: Message) -> str:
    values = {n: msg.params.get(n, "")[:VAR_MAX] for n in names}
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


@register
class AliyunSmsChannel(Channel[AliyunSmsConfig]):
    type = "aliyun_sms"
    config_model = AliyunSmsConfig
    secret_fields = ("access_key_secret",)
    medium = "sms"

    async def send(
        self, config: AliyunSmsConfig, msg: Message, to: list[str], http: httpx.AsyncClient
    ) -> str:
        params = {
            "PhoneNumbers": ",".join(plain_number(n) for n in to),
            "SignName": config.sign_name,
            "TemplateCode": config.template_code,
            "TemplateParam": template_param(list(config.template_params), msg),
            "OutId": _aliyun.out_id(msg.key),
        }
        data = await _aliyun.call(http, config, "SendSms", params)
        return str(data.get("BizId", ""))
