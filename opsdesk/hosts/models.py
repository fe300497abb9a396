"""What the platform knows of each agent-monitored host, and its system-state events."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.core.db import Base, UTCDateTime, utcnow
from opsdesk.tenancy.models import TenantOwned


class HostStatus(enum.StrEnum):
    up = "up"
    down = "down"  # no data for `down_after` intervals
    unknown = "unknown"  # never reported


class HostState(TenantOwned, Base):
    __tablename__ = "host_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), unique=True)
    # The agent's install: a new one (state directory wiped) restarts its sequence numbers.
    instance: Mapped[str] = mapped_column(String(64), default="")
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sample_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    interval_s: Mapped[float] = mapped_column(Float, default=15.0)
    agent_version: Mapped[str] = mapped_column(String(32), default="")
    hostname: Mapped[str] = mapped_column(String(255), default="")
    inventory: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    inventory_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    top: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dropped_total: Mapped[int] = mapped_column(Integer, default=0)


class HostEvent(TenantOwned, Base):
    """A system-state change reported by an agent (R-MON-1), or one the platform noticed."""

    __tablename__ = "host_events"
    __table_args__ = (Index("ix_host_events_asset_at", "asset_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
