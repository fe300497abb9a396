"""Twilio, for numbers outside mainland China: SMS (Messages) and voice calls (Calls, TwiML <Say>).

REST API 2010-04-01 with HTTP basic auth (Account SID, auth token); the base URL is configurable.
Twilio has no idempotency key for these requests, so a repeat after a crash is a second text.
"""

from __future__ import annotations

from typing import Annotated, Literal
from xml.sax.saxutils import escape

import httpx
from pydantic import AfterValidator, Field

from opsdesk.notify.channels.base import (
    Channel,
    ChannelConfig,
    Message,
    e164,
    http_url,
    json_of,
    plain_number,
    raise_for_status,
    register,
)

Phone = Annotated[str, AfterValidator(e164)]
SMS_MAX = 1600  # Twilio's limit for one message body
VOICES = {"zh-CN": "cmn-CN", "en": "en-US"}


class TwilioConfig(ChannelConfig):
    base_url: Annotated[str, AfterValidator(http_url)] = "https://api.twilio.com"
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=16)
    from_number: Phone
    mode: Literal["sms", "voice"] = "sms"
    voice_language: Literal["zh-CN", "en"] = "en"
    to: list[Phone] = Field(default_factory=list)
    timeout: float = Field(10, gt=0, le=60)


def twiml(text: str, language: str) -> str:
    say = f'<Say language="{VOICES[language]}">{escape(text)}</Say>'
    return f'<Response>{say}<Pause length="1"/>{say}</Response>'


@register
class TwilioChannel(Channel[TwilioConfig]):
    type = "twilio"
    config_model = TwilioConfig
    secret_fields = ("auth_token",)
    medium = "sms"  # or voice, by the config's mode
    per_recipient = True

    def medium_of(self, config: TwilioConfig) -> str:
        return config.mode

    async def send(self, config: TwilioConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        root = f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}"
        receipts = []
        for number in to:
            if config.mode == "sms":
                url, form = f"{root}/Messages.json", {"Body": msg.text[:SMS_MAX]}
            else:
                spoken = msg.params.get("spoken") or msg.subject
                url, form = f"{root}/Calls.json", {"Twiml": twiml(spoken, config.voice_language)}
            form.update(To=plain_number(number), From=config.from_number)
            resp = await http.post(
                url, data=form, auth=(config.account_sid, config.auth_token), timeout=config.timeout
            )
            raise_for_status(resp)
            receipts.append(str(json_of(resp).get("sid", "")))
        return ",".join(receipts)
