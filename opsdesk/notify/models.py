"""Notification channels and the outbox, both in the state store.

A channel belongs to a customer, or to the provider when ``customer_id`` is empty (the duty
engineers' SMS, the command centre's IM group); provider channels are an admin's to see and
change, because tenant scoping treats an empty owner as nobody's customer.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.core.crypto import EncryptedString
from opsdesk.core.db import Base, Timestamped, UTCDateTime, utcnow
from opsdesk.tenancy.models import TenantOwned, str_enum


class NotifyChannel(TenantOwned, Timestamped, Base):
    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Nullable, unlike other tenant rows: empty means the provider's own channel.
    customer_id: Mapped[int | None] = mapped_column(  # type: ignore[assignment]
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # without the secret fields
    secrets: Mapped[str | None] = mapped_column(EncryptedString(), nullable=True)  # JSON of secret fields
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")  # "zh-CN", "en" or "both"
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class DeliveryState(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt
    sending = "sending"  # claimed by a worker until lease_until
    sent = "sent"
    dead = "dead"  # gave up: shown to staff, can be retried by hand
    cancelled = "cancelled"  # no longer wanted (e.g. the incident was acknowledged)


class Notification(TenantOwned, Timestamped, Base):
    """One message to one channel (and, for calls and texts, one recipient): a row of the outbox."""

    __tablename__ = "notify_outbox"
    __table_args__ = (Index("ix_notify_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(  # type: ignore[assignment]
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, nullable=True
    )
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_channels.id", ondelete="SET NULL"), index=True, nullable=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: the channel's own list
    message: Mapped[dict[str, Any]] = mapped_column(JSON)  # rendered once, identical on every attempt
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState), default=DeliveryState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
