"""REST API for monitors: definitions, run now, state changes, uptime, figures, maintenance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from opsdesk.core.db import utcnow
from opsdesk.metrics import Matcher
from opsdesk.monitors import secrets
from opsdesk.monitors.models import MaintenanceWindow, Monitor, MonitorEvent, Runner
from opsdesk.monitors.schemas import (
    MaintenanceIn,
    MaintenanceOut,
    MonitorEventOut,
    MonitorIn,
    MonitorOut,
    MonitorPatch,
    RunResultOut,
    UptimeOut,
)
from opsdesk.monitors.service import InvalidMonitor, check_definition, uptime
from opsdesk.tenancy.models import Asset, Customer
from opsdesk.web.deps import AnyUser, Ctx

router = APIRouter(prefix="/api/v1", tags=["monitors"])
MAX_POINTS = 11_000


def _invalid(exc: InvalidMonitor) -> HTTPException:
    return HTTPException(422, [{"field": k, "message": v} for k, v in exc.errors.items()])


def poke_probe(request: Request) -> None:
    """After a commit that changed definitions: the probe reloads now, not at its next reload."""
    probe = getattr(request.app.state, "probe", None)
    if probe is not None:
        probe.poke()


@router.get("/customers/{customer_id}/monitors", response_model=list[MonitorOut])
def list_monitors(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(Monitor).where(Monitor.customer_id == customer_id).order_by(Monitor.name))


@router.post("/customers/{customer_id}/monitors", response_model=MonitorOut, status_code=201)
def create_monitor(c: AnyUser, customer_id: int, body: MonitorIn, request: Request) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    try:
        config = check_definition(
            c.db, customer_id, body.type, body.config, body.asset_id, body.runner, body.agent_asset_id
        )
    except InvalidMonitor as exc:
        raise _invalid(exc) from exc
    monitor = Monitor(
        customer_id=customer_id,
        asset_id=body.asset_id,
        name=body.name,
        type=body.type,
        config=config,
        enabled=body.enabled,
        runner=body.runner,
        agent_asset_id=body.agent_asset_id,
    )
    c.db.add(monitor)
    c.db.flush()
    c.db.refresh(monitor)
    request.state.after_commit = poke_probe
    return monitor


@router.get("/monitors/{monitor_id}", response_model=MonitorOut)
def get_monitor(c: AnyUser, monitor_id: int) -> Any:
    return c.get(Monitor, monitor_id)


@router.patch("/monitors/{monitor_id}", response_model=MonitorOut)
def update_monitor(c: AnyUser, monitor_id: int, body: MonitorPatch, request: Request) -> Any:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    runner = body.runner or monitor.runner
    agent = body.agent_asset_id if "agent_asset_id" in body.model_fields_set else monitor.agent_asset_id
    config = body.config if body.config is not None else monitor.config
    try:
        normalised = check_definition(
            c.db, monitor.customer_id, monitor.type, config, monitor.asset_id, runner, agent, monitor.config
        )
    except InvalidMonitor as exc:
        raise _invalid(exc) from exc
    if normalised != monitor.config:
        monitor.config = normalised
    monitor.runner, monitor.agent_asset_id = runner, agent
    if body.name is not None:
        monitor.name = body.name
    if body.enabled is not None:
        monitor.enabled = body.enabled
    request.state.after_commit = poke_probe
    return monitor


@router.delete("/monitors/{monitor_id}", status_code=204)
def delete_monitor(c: AnyUser, monitor_id: int, request: Request) -> None:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    c.db.delete(monitor)
    request.state.after_commit = poke_probe


@router.post("/monitors/{monitor_id}/run", response_model=RunResultOut)
async def run_monitor_now(c: AnyUser, monitor_id: int, request: Request) -> Any:
    """Run the check now on the platform and record its result like a scheduled run."""
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    if monitor.runner is Runner.agent:
        raise HTTPException(409, "this check runs on an agent; it runs there at its next interval")
    try:
        config = secrets.runnable(monitor.type, monitor.config)
    except secrets.SecretUnreadable as exc:
        raise HTTPException(409, str(exc)) from None
    result = await request.app.state.probe.run_now(monitor.id, config)
    return result.as_dict()


@router.get("/monitors/{monitor_id}/events", response_model=list[MonitorEventOut])
def list_monitor_events(c: AnyUser, monitor_id: int, limit: int = Query(100, ge=1, le=1000)) -> Any:
    monitor = c.get(Monitor, monitor_id)
    return c.db.scalars(
        select(MonitorEvent)
        .where(MonitorEvent.monitor_id == monitor.id)
        .order_by(MonitorEvent.at.desc())
        .limit(limit)
    )


def _range(start: datetime | None, end: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    end = end or utcnow()
    start = start or end - default
    if start >= end:
        raise HTTPException(422, "start must be before end")
    return start, end


@router.get("/monitors/{monitor_id}/uptime", response_model=UptimeOut)
def monitor_uptime(
    c: AnyUser, monitor_id: int, start: datetime | None = None, end: datetime | None = None
) -> Any:
    """Uptime over [start, end) (default: the last 30 days); maintenance windows counted apart."""
    monitor = c.get(Monitor, monitor_id)
    start, end = _range(start, end, timedelta(days=30))
    u = uptime(c.db, monitor, start, min(end, utcnow()))
    return UptimeOut(
        start=start,
        end=end,
        up_seconds=u.up_s,
        down_seconds=u.down_s,
        maintenance_seconds=u.maintenance_s,
        unknown_seconds=u.unknown_s,
        uptime_percent=u.percent,
    )


@router.get("/monitors/{monitor_id}/metrics")
async def monitor_metrics(
    c: AnyUser,
    monitor_id: int,
    name: str = Query("response_ms", pattern=r"^[a-z_]+$"),
    start: datetime | None = None,
    end: datetime | None = None,
    step: int | None = Query(None, ge=1),
) -> Any:
    """A figure of the check over time (response_ms, up, cert_days_left, ...): min/avg/max/last per step."""
    monitor = c.get(Monitor, monitor_id)
    start, end = _range(start, end, timedelta(hours=24))
    span = (end - start).total_seconds()
    step = step or max(int(span / 600), 1)
    if span / step > MAX_POINTS:
        raise HTTPException(422, f"range/step gives more than {MAX_POINTS} points; use a larger step")
    matchers = [Matcher.eq("monitor", str(monitor.id)), Matcher.name(f"check_{name}")]
    found = await run_in_threadpool(
        c.rt.metrics.read_range,
        matchers,
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
        step * 1000,
    )
    return [
        {"t": p.t, "min": p.min, "avg": p.avg, "max": p.max, "last": p.last} for r in found for p in r.points
    ]


# -- maintenance windows ------------------------------------------------------------------


@router.get("/customers/{customer_id}/maintenance", response_model=list[MaintenanceOut])
def list_maintenance(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.customer_id == customer_id)
        .order_by(MaintenanceWindow.starts_at.desc())
    )


@router.post("/customers/{customer_id}/maintenance", response_model=MaintenanceOut, status_code=201)
def create_maintenance(c: AnyUser, customer_id: int, body: MaintenanceIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    if body.asset_id is not None and _asset_of(c, body.asset_id).customer_id != customer_id:
        raise HTTPException(422, [{"field": "asset_id", "message": "no such asset of this customer"}])
    window = MaintenanceWindow(customer_id=customer_id, **body.model_dump())
    c.db.add(window)
    c.db.flush()
    return window


@router.delete("/maintenance/{window_id}", status_code=204)
def delete_maintenance(c: AnyUser, window_id: int) -> None:
    window = c.get(MaintenanceWindow, window_id)
    c.require_write()
    c.db.delete(window)


def _asset_of(c: Ctx, asset_id: int) -> Asset:
    try:
        return c.get(Asset, asset_id)
    except HTTPException as exc:
        raise HTTPException(
            422, [{"field": "asset_id", "message": "no such asset of this customer"}]
        ) from exc
