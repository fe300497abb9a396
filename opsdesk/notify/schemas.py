"""Request and response bodies of the notification API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["zh-CN", "en", "both"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=32)
    config: dict[str, Any] = Field(default_factory=dict)
    language: Language = "zh-CN"
    enabled: bool = True


class ChannelPatch(BaseModel):
    """A config given replaces the stored one; a secret left out or sent as the mask is kept."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None
    language: Language | None = None
    enabled: bool | None = None


class ChannelOut(BaseModel):
    id: int
    customer_id: int | None
    name: str
    type: str
    medium: str
    language: str
    enabled: bool
    config: dict[str, Any]  # secrets shown as the mask
    created_at: datetime
    updated_at: datetime


class ChannelTypeOut(BaseModel):
    type: str
    medium: str
    secret_fields: list[str]
    config_schema: dict[str, Any]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    channel_id: int | None
    idempotency_key: str
    incident_id: int | None
    recipients: list[str]
    subject: str
    state: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str
    sent_at: datetime | None
    created_at: datetime


class TestResultOut(BaseModel):
    delivered: bool
    error: str = ""
