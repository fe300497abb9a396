"""Alerts (one per rule, asset and label group), incidents and their timelines, rule overrides."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.alerting.rules import Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.db import Base, Timestamped, UTCDateTime, utcnow
from opsdesk.tenancy.models import TenantOwned, str_enum
from opsdesk.tenancy.scoping import customer_creatable


class Alert(TenantOwned, Base):
    """The state of one rule on one asset (and label group); survives restarts."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200), unique=True)  # rule:asset:labels
    rule_key: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    monitor_id: Mapped[int | None] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, 4))
    state: Mapped[AlertState] = mapped_column(str_enum(AlertState), default=AlertState.inactive, index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    transitions: Mapped[list[float]] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text, default="")
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    last_eval_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RuleOverride(TenantOwned, Timestamped, Base):
    """A customer's (or one asset's) change to a default rule."""

    __tablename__ = "rule_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    rule_key: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    threshold: Mapped[float | None] = mapped_column(Float)
    clear: Mapped[float | None] = mapped_column(Float)
    for_s: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[Severity | None] = mapped_column(str_enum(Severity, 4))


class IncidentStatus(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    mitigated = "mitigated"
    resolved = "resolved"
    closed = "closed"


class CauseCategory(enum.StrEnum):
    unknown = "unknown"
    system = "system"  # process, hostname, password, resources, middleware, custom monitors
    security = "security"  # virus, trojan, intrusion
    application_unreachable = "application_unreachable"
    server_cloud = "server_cloud"  # down, migrated, RDS failure, cloud upgrade
    customer_application = "customer_application"  # R-INC-5: the customer's own code


class IncidentSource(enum.StrEnum):
    alert = "alert"
    portal = "portal"  # reported by the customer (R-INC-4)
    email = "email"
    phone = "phone"


@customer_creatable  # a customer may report an anomaly first (R-INC-4)
class Incident(TenantOwned, Timestamped, Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_customer_status", "customer_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, 4))
    status: Mapped[IncidentStatus] = mapped_column(str_enum(IncidentStatus), default=IncidentStatus.open)
    source: Mapped[IncidentSource] = mapped_column(str_enum(IncidentSource), default=IncidentSource.alert)
    cause: Mapped[CauseCategory] = mapped_column(str_enum(CauseCategory, 32), default=CauseCategory.unknown)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)


@customer_creatable  # ...and add to its timeline
class IncidentEvent(TenantOwned, Base):
    """The incident's timeline: alerts, notifications, acknowledgements, comments, changes."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident_at", "incident_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))  # alert_fired, alert_resolved, notified, acknowledged, ...
    actor: Mapped[str] = mapped_column(String(120), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)  # staff-only notes, never in the portal


class Silence(TenantOwned, Timestamped, Base):
    """Alertmanager-style: matching alerts still fire and are recorded, nobody is notified.

    Matches alerts of the customer, optionally only one asset, one rule and alerts whose labels
    satisfy every matcher ({"name", "op" (=, !=, =~, !~), "value"}). Expiring sets ends_at.
    """

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_customer_ends", "customer_id", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    rule_key: Mapped[str] = mapped_column(String(64), default="")  # empty: every rule
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120), default="")  # the principal's label
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class NotifyPreference(TenantOwned, Timestamped, Base):
    """A customer's own choice for one severity, in place of DESIGN.md's table for its side.

    Which of its channels hear of an incident of this severity, and whether at any hour (7x24)
    or only inside the contract's service window. Without a row the default table applies.
    """

    __tablename__ = "notify_preferences"
    __table_args__ = (UniqueConstraint("customer_id", "severity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, 4))
    channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # the customer's NotifyChannels
    always: Mapped[bool] = mapped_column(Boolean, default=False)  # 7x24, else the service window
