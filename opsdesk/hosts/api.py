"""Host monitoring API: current state of a customer's hosts, a host's series, events, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from opsdesk.accounts import tokens
from opsdesk.accounts.models import User
from opsdesk.accounts.principal import Scope
from opsdesk.core.db import utcnow
from opsdesk.hosts.models import HostEvent, HostState, HostStatus
from opsdesk.hosts.status import host_status
from opsdesk.metrics import Matcher
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.web.deps import AnyUser

router = APIRouter(prefix="/api/v1", tags=["hosts"])
MAX_POINTS = 11_000  # enough for a 30-day chart at ~4 min resolution; bounds the work per request


class HostOut(BaseModel):
    asset_id: int
    name: str
    ip: str
    status: HostStatus
    last_seen_at: datetime | None
    hostname: str
    agent_version: str
    interval_s: float | None


class HostDetail(HostOut):
    inventory: dict[str, Any] | None
    inventory_at: datetime | None
    top: dict[str, Any] | None
    dropped_batches: int


class PointOut(BaseModel):
    t: int
    min: float
    avg: float
    max: float
    last: float


class SeriesOut(BaseModel):
    labels: dict[str, str]
    points: list[PointOut]


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    attrs: dict[str, Any]


class AgentTokenIn(BaseModel):
    name: str = Field("agent", min_length=1, max_length=100)


class AgentTokenOut(BaseModel):
    id: int
    asset_id: int
    token: str


def _host_out(c: AnyUser, asset: Asset, state: HostState | None, now: datetime) -> dict[str, Any]:
    down_after = c.rt.settings.ingest.down_after_intervals
    return {
        "asset_id": asset.id,
        "name": asset.name,
        "ip": asset.ip,
        "status": host_status(state, now, down_after),
        "last_seen_at": state.last_seen_at if state else None,
        "hostname": state.hostname if state else "",
        "agent_version": state.agent_version if state else "",
        "interval_s": state.interval_s if state else None,
    }


@router.get("/customers/{customer_id}/hosts", response_model=list[HostOut])
def list_hosts(c: AnyUser, customer_id: int) -> Any:
    """Current state of every server asset of the customer."""
    c.get(Customer, customer_id)
    rows = c.db.execute(
        select(Asset, HostState)
        .outerjoin(HostState, HostState.asset_id == Asset.id)
        .where(Asset.customer_id == customer_id, Asset.type == AssetType.server)
        .order_by(Asset.name)
    ).all()
    now = utcnow()
    return [_host_out(c, asset, state, now) for asset, state in rows]


@router.get("/assets/{asset_id}/host", response_model=HostDetail)
def get_host(c: AnyUser, asset_id: int) -> Any:
    asset = c.get(Asset, asset_id)
    state = c.db.scalars(select(HostState).where(HostState.asset_id == asset.id)).first()
    out = _host_out(c, asset, state, utcnow())
    return {
        **out,
        "inventory": state.inventory if state else None,
        "inventory_at": state.inventory_at if state else None,
        "top": state.top if state else None,
        "dropped_batches": state.dropped_total if state else 0,
    }


def _ms(value: datetime) -> int:
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)


@router.get("/assets/{asset_id}/series", response_model=list[dict[str, str]])
async def list_series(c: AnyUser, asset_id: int, name: str | None = None) -> Any:
    """The label sets of the host's series (optionally of one metric)."""
    asset = c.get(Asset, asset_id)
    matchers = [Matcher.eq("asset", str(asset.id))] + ([Matcher.name(name)] if name else [])
    store = c.rt.metrics
    keys = await run_in_threadpool(store.series, matchers)
    return [k.as_dict() for k in keys]


@router.get("/assets/{asset_id}/metrics", response_model=list[SeriesOut])
async def query_range(
    c: AnyUser,
    asset_id: int,
    name: str = Query(..., pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$"),
    match: list[str] = Query(default=[], description="label=value, repeatable"),
    start: datetime | None = None,
    end: datetime | None = None,
    step: int | None = Query(None, ge=1, description="seconds; default: the range / 600"),
) -> Any:
    """A host's series over a range at a step, each point with min, avg, max and last."""
    asset = c.get(Asset, asset_id)
    end = end or utcnow()
    start = start or end - timedelta(hours=1)
    if start >= end:
        raise HTTPException(422, "start must be before end")
    span_s = (end - start).total_seconds()
    step = step or max(int(span_s / 600), 1)
    if span_s / step > MAX_POINTS:
        raise HTTPException(422, f"range/step gives more than {MAX_POINTS} points; use a larger step")
    matchers = [Matcher.eq("asset", str(asset.id)), Matcher.name(name)]
    for item in match:
        label, sep, value = item.partition("=")
        if not sep or not label:
            raise HTTPException(422, f"match {item!r}: use label=value")
        matchers.append(Matcher.eq(label, value))
    store = c.rt.metrics
    results = await run_in_threadpool(store.read_range, matchers, _ms(start), _ms(end), step * 1000)
    return [
        {
            "labels": {k: v for k, v in r.series.as_dict().items() if k not in ("asset", "customer")},
            "points": [
                {"t": p.t, "min": p.min, "avg": p.avg, "max": p.max, "last": p.last} for p in r.points
            ],
        }
        for r in results
    ]


@router.get("/assets/{asset_id}/events", response_model=list[EventOut])
def list_events(c: AnyUser, asset_id: int, limit: int = Query(100, ge=1, le=1000)) -> Any:
    asset = c.get(Asset, asset_id)
    return c.db.scalars(
        select(HostEvent).where(HostEvent.asset_id == asset.id).order_by(HostEvent.at.desc()).limit(limit)
    )


@router.post("/assets/{asset_id}/agent-tokens", response_model=AgentTokenOut, status_code=201)
def issue_agent_token(c: AnyUser, asset_id: int, body: AgentTokenIn) -> Any:
    """An agent token bound to this asset (admin). Shown once; revoke with DELETE /tokens/{id}."""
    asset = c.get(Asset, asset_id)
    c.require_admin()
    if asset.type is not AssetType.server:
        raise HTTPException(422, "agents run on server assets")
    user = c.db.get(User, c.principal.user_id)
    if user is None:
        raise HTTPException(403, "tokens are issued by a user")
    row, plain = tokens.issue(c.db, user, body.name, [Scope.write], asset_id=asset.id)
    return {"id": row.id, "asset_id": asset.id, "token": plain}
