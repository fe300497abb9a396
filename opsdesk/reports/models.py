"""A report is a frozen snapshot of figures plus the engineer's words, drafted then published.

Customers see published reports only; the figures are gathered once (`data`), so a report reads
the same next year even after retention has deleted the raw samples behind it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.core.db import Base, Timestamped, UTCDateTime
from opsdesk.tenancy.models import TenantOwned, str_enum


class ReportKind(enum.StrEnum):
    fault = "fault"  # R-REP-1 / R-INC-6: one per incident
    monthly = "monthly"  # R-REP-2: one per customer and month


class ReportStatus(enum.StrEnum):
    draft = "draft"
    published = "published"


class Report(TenantOwned, Timestamped, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_customer_kind_period", "customer_id", "kind", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReportKind] = mapped_column(str_enum(ReportKind, 16))
    status: Mapped[ReportStatus] = mapped_column(str_enum(ReportStatus, 16), default=ReportStatus.draft)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), unique=True, nullable=True
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    title: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The engineer's words (fault reports; `summary` also opens a monthly report).
    summary: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[str] = mapped_column(Text, default="")
    follow_up: Mapped[str] = mapped_column(Text, default="")
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str] = mapped_column(String(120), default="")
