"""What every channel shares: the message it sends, its errors, config checks and the registry."""

from __future__ import annotations

import builtins
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

C = TypeVar("C", bound=BaseModel)

IDEMPOTENCY_HEADER = "Idempotency-Key"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Alibaba Cloud takes mainland numbers bare and others with their country code (00 or +).
_ALIYUN_PHONE = re.compile(r"^(?:1[3-9]\d{9}|(?:\+|00)[1-9]\d{6,14})$")


@dataclass(frozen=True)
class Message:
    """A rendered notification, stored in the outbox row so every attempt sends the same thing."""

    key: str  # idempotency key: the same on every attempt, for receivers that de-duplicate
    subject: str
    text: str
    link: str = ""  # back to the incident
    ack_url: str = ""  # signed, expiring acknowledge link
    severity: str = ""
    incident_id: int | None = None
    params: dict[str, str] = field(default_factory=dict)  # short values for SMS and voice templates

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(**data)


class DeliveryError(Exception):
    """The receiver did not take the message; `retry` says whether trying again can help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class InvalidChannel(Exception):
    """A channel definition that cannot work, with one message per field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def email_address(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def e164(value: str) -> str:
    if not _E164.match(value):
        raise ValueError(f"{value!r} is not a phone number in E.164 form, e.g. +8613800000000")
    return value


def aliyun_phone(value: str) -> str:
    if not _ALIYUN_PHONE.match(value):
        raise ValueError(
            f"{value!r} is not a phone number: 11 digits for mainland China (13800000000), "
            "else the country code first (+85291234567)"
        )
    return value


def plain_number(value: str) -> str:
    """A number as written in a contact list ("+86 138-0000 0000") as the APIs take it."""
    return re.sub(r"[\s\-().]", "", value)


def raise_for_status(resp: httpx.Response) -> None:
    """Server errors, timeouts and rate limits may pass; other refusals will not."""
    if resp.is_success:
        return
    retry = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
    raise DeliveryError(f"HTTP {resp.status_code}: {resp.text[:300]}", retry=retry)


def json_of(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as exc:
        raise DeliveryError(f"answer is not JSON: {resp.text[:200]}") from exc
    if not isinstance(data, dict):
        raise DeliveryError(f"unexpected answer: {resp.text[:200]}")
    return data


class Channel(ABC, Generic[C]):
    """One kind of channel. Subclasses set the class attributes and implement `send`."""

    type: str
    config_model: builtins.type[C]
    secret_fields: tuple[str, ...] = ()
    medium: str = "im"  # email, im, sms, voice or webhook: what routing chooses by
    per_recipient: bool = False  # calls and texts: one outbox row per number, so each is sent once

    def medium_of(self, config: C) -> str:
        return self.medium

    def recipients(self, config: C) -> list[str]:
        """The channel's own recipient list, used when a notification names none."""
        return list(getattr(config, "to", []) or [])

    @abstractmethod
    async def send(self, config: C, msg: Message, to: list[str], http: httpx.AsyncClient) -> str:
        """Deliver or raise DeliveryError; return the receiver's reference (message id) if any."""


REGISTRY: dict[str, Channel[Any]] = {}


def register(channel: builtins.type[Channel[Any]]) -> builtins.type[Channel[Any]]:
    REGISTRY[channel.type] = channel()
    return channel


def channel_for(kind: str) -> Channel[Any]:
    try:
        return REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        message = f"unknown channel type {kind!r}; one of {known}"
        raise InvalidChannel([{"field": "type", "message": message}]) from None


def parse_config(kind: str, data: dict[str, Any]) -> BaseModel:
    """The typed configuration, or InvalidChannel naming each bad field as `config.<name>`."""
    channel = channel_for(kind)
    try:
        return channel.config_model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            text = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            errors.append({"field": f"config.{where}" if where else "config", "message": _plain(text)})
        raise InvalidChannel(errors) from exc


def _plain(text: str) -> str:
    # pydantic prefixes messages from our validators with "Value error, ".
    return text.removeprefix("Value error, ")


def split_secrets(kind: str, config: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public part for the JSON column, secret part for the encrypted column)."""
    data = config.model_dump(mode="json")
    secret_names = channel_for(kind).secret_fields
    return (
        {k: v for k, v in data.items() if k not in secret_names},
        {k: v for k, v in data.items() if k in secret_names},
    )
