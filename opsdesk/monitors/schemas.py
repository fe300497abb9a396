"""API shapes for monitors and maintenance windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opsdesk.monitors.models import MonitorState, Runner
from opsdesk.monitors.secrets import masked


class MonitorIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=32)
    config: dict[str, Any]
    asset_id: int | None = None
    runner: Runner = Runner.platform
    agent_asset_id: int | None = None  # the agent that runs it, when runner is "agent"
    enabled: bool = True

    @model_validator(mode="after")
    def _agent(self) -> MonitorIn:
        if self.runner is Runner.agent and self.agent_asset_id is None:
            raise ValueError("agent_asset_id: required when runner is agent")
        return self


class MonitorPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    enabled: bool | None = None
    runner: Runner | None = None
    agent_asset_id: int | None = None


class MonitorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    asset_id: int | None
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    runner: Runner
    agent_asset_id: int | None
    state: MonitorState
    state_since: datetime
    last_run_at: datetime | None
    last_result: dict[str, Any] | None

    @field_validator("config")
    @classmethod
    def _mask_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Credentials are stored encrypted and never shown back (monitors/secrets.py).
        return dict(masked(value))


class MonitorEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    from_state: MonitorState
    to_state: MonitorState
    code: str
    message: str


class UptimeOut(BaseModel):
    start: datetime
    end: datetime
    up_seconds: float
    down_seconds: float
    maintenance_seconds: float
    unknown_seconds: float
    uptime_percent: float | None


class MaintenanceIn(BaseModel):
    asset_id: int | None = None
    starts_at: datetime
    ends_at: datetime
    reason: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _order(self) -> MaintenanceIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("give times with a zone, e.g. 2026-11-29T02:00:00+08:00")
        return self


class MaintenanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    asset_id: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str


class RunResultOut(BaseModel):
    ok: bool
    state: str
    code: str
    message: str
    metrics: dict[str, float]
