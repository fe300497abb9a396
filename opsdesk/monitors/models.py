"""Monitor definitions, their state changes, and maintenance windows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.core.db import Base, Timestamped, UTCDateTime, utcnow
from opsdesk.tenancy.models import TenantOwned, str_enum


class MonitorState(enum.StrEnum):
    up = "up"
    warning = "warning"  # works, but a figure is past its warning level (Nagios WARNING)
    down = "down"
    unknown = "unknown"  # not run yet, or the check could not tell (Nagios UNKNOWN)


class Runner(enum.StrEnum):
    platform = "platform"  # the probe role of the opsdesk server
    agent = "agent"  # an agent inside the customer's network (agent_asset_id)


class Monitor(TenantOwned, Timestamped, Base):
    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # validated by the type's config model
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    runner: Mapped[Runner] = mapped_column(str_enum(Runner), default=Runner.platform)
    agent_asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[MonitorState] = mapped_column(str_enum(MonitorState), default=MonitorState.unknown)
    state_since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Bumped when the definition changes (not when a result is stored), so the probe knows
    # what to reschedule; see monitors.hooks.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class MonitorEvent(TenantOwned, Base):
    """A change of state (up to down, down to up), kept for uptime and for the alert path."""

    __tablename__ = "monitor_events"
    __table_args__ = (Index("ix_monitor_events_monitor_at", "monitor_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_state: Mapped[MonitorState] = mapped_column(str_enum(MonitorState))
    to_state: Mapped[MonitorState] = mapped_column(str_enum(MonitorState))
    code: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class MaintenanceWindow(TenantOwned, Timestamped, Base):
    """Planned work: counted apart in uptime; later, notifications are held back during it."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
