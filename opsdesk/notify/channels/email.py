"""Email over SMTP (aiosmtplib): plain text, UTF-8, one message to all recipients."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from hashlib import sha256
from typing import Annotated, Literal

import aiosmtplib
import httpx
from pydantic import AfterValidator, Field, model_validator

from opsdesk.notify.channels.base import (
    IDEMPOTENCY_HEADER,
    Channel,
    ChannelConfig,
    DeliveryError,
    Message,
    email_address,
    register,
)

Address = Annotated[str, AfterValidator(email_address)]


class EmailConfig(ChannelConfig):
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: Address
    to: list[Address] = Field(min_length=1)
    timeout: float = Field(20, gt=0, le=120)

    @model_validator(mode="after")
    def _login_pair(self) -> EmailConfig:
        if self.username and not self.password:
            raise ValueError("password: required when a username is given")
        return self


def build(config: EmailConfig, msg: Message, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = msg.subject
    mail["Date"] = formatdate(usegmt=True)
    # The same Message-ID on every attempt lets mail systems drop a repeat after a crash.
    mail["Message-ID"] = f"<{sha256(msg.key.encode()).hexdigest()[:40]}@opsdesk>"
    mail[IDEMPOTENCY_HEADER] = msg.key
    mail.set_content(msg.text, charset="utf-8")
    return mail


@register
class EmailChannel(Channel[EmailConfig]):
    type = "email"
    config_model = EmailConfig
    secret_fields = ("password",)
    medium = "email"

    async def send(self, config: EmailConfig, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        mail = build(config, msg, to)
        try:
            await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password or None,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is "try later" in SMTP; 5xx is a refusal that repeats.
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", retry=exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {exc}") from exc
        return str(mail["Message-ID"])
