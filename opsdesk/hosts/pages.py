"""The host page of a server asset with an agent: status, inventory, processes, events and charts.

Staff and the customer's own users see it (R-MON-8, read-only); the charts are drawn in the
browser by static/charts.js from the host metrics API.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from opsdesk.core.calendar import CHINA
from opsdesk.core.db import utcnow
from opsdesk.hosts.models import HostEvent, HostState, HostStatus
from opsdesk.hosts.status import host_status
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.tenancy.pages import page
from opsdesk.web import i18n
from opsdesk.web.deps import AnyUser, Ctx
from opsdesk.web.templating import render, request_language

router = APIRouter(include_in_schema=False)
# Event kind -> the attributes its sentence names (missing ones are shown empty).
EVENT_PARAMS: dict[str, tuple[str, ...]] = {
    "hostname_changed": ("old", "new"),
    "password_changed": ("user",),
    "user_added": ("user", "uid"),
    "user_removed": ("user",),
    "process_started": ("process", "count"),
    "process_stopped": ("process",),
    "reboot": ("boot_time",),
    "agent_buffer_dropped": ("batches",),
}
NO_LOGIN = ("nologin", "false", "sync", "halt", "shutdown")


@dataclass(frozen=True)
class Query:
    """One metric of a chart; `label` may name series labels in braces, e.g. "{mount}"."""

    name: str
    label: str
    exclude: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Chart:
    id: str
    unit: str  # "%", "B/s" or "" (a plain number)
    queries: tuple[Query, ...]


def charts(t: i18n.Translate) -> list[Chart]:
    read, write = t("host.series.read"), t("host.series.write")
    rx, tx = t("host.series.in"), t("host.series.out")
    return [
        Chart("cpu", "%", (Query("cpu_usage_percent", "{mode}", {"mode": ["idle"]}),)),
        Chart("load", "", tuple(Query(f"load{n}", t("host.series.load", minutes=n)) for n in (1, 5, 15))),
        Chart(
            "memory", "%",
            (Query("memory_used_percent", t("host.series.memory")),
             Query("swap_used_percent", t("host.series.swap"))),
        ),
        Chart("fs", "%", (Query("fs_used_percent", "{mount}"),)),
        Chart(
            "disk", "B/s",
            (Query("disk_read_bytes_per_second", f"{{device}} {read}"),
             Query("disk_write_bytes_per_second", f"{{device}} {write}")),
        ),
        Chart(
            "net", "B/s",
            (Query("net_receive_bytes_per_second", f"{{interface}} {rx}"),
             Query("net_transmit_bytes_per_second", f"{{interface}} {tx}")),
        ),
        Chart("tcp", "", (Query("tcp_connections", "{state}"),)),
    ]  # fmt: skip


def chart_spec(chart: Chart, url: str, min_step: float) -> str:
    queries = [asdict(q) for q in chart.queries]
    return json.dumps({"url": url, "unit": chart.unit, "min_step": min_step, "queries": queries})


def local(value: datetime | None) -> str:
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def server_asset(c: Ctx, asset_id: int) -> Asset:
    asset = c.get(Asset, asset_id)
    if asset.type is not AssetType.server:
        raise HTTPException(404, "not found")
    return asset


def state_of(c: Ctx, asset: Asset) -> tuple[HostState | None, HostStatus]:
    state = c.db.scalars(select(HostState).where(HostState.asset_id == asset.id)).first()
    return state, host_status(state, utcnow(), c.rt.settings.ingest.down_after_intervals)


def hosts_of(c: Ctx, customer_id: int) -> list[dict[str, Any]]:
    """Every server asset of the customer with its agent status and last contact."""
    rows = c.db.execute(
        select(Asset, HostState)
        .outerjoin(HostState, HostState.asset_id == Asset.id)
        .where(Asset.customer_id == customer_id, Asset.type == AssetType.server)
        .order_by(Asset.name)
    ).all()
    now, down_after = utcnow(), c.rt.settings.ingest.down_after_intervals
    return [
        {
            "asset": asset,
            "status": host_status(state, now, down_after),
            "last_seen": local(state.last_seen_at) if state else "",
            "hostname": state.hostname if state else "",
        }
        for asset, state in rows
    ]


def event_text(t: i18n.Translate, event: HostEvent) -> str:
    names = EVENT_PARAMS.get(event.kind)
    attrs = event.attrs or {}
    if names is None:
        return f"{event.kind} {json.dumps(attrs, ensure_ascii=False)}"
    params = {n: attrs.get(n, "") for n in names}
    if event.kind == "reboot" and isinstance(params["boot_time"], int | float):
        params["boot_time"] = local(datetime.fromtimestamp(params["boot_time"], CHINA))
    return t(f"host.event.{event.kind}", **params)


def booted(inventory: dict[str, Any]) -> str:
    value = inventory.get("boot_time")
    return local(datetime.fromtimestamp(value, CHINA)) if isinstance(value, int | float) and value > 0 else ""


def login_users(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """Accounts a person can log in with (a real shell), root first."""
    users = [u for u in inventory.get("users") or [] if isinstance(u, dict)]
    return [u for u in users if not str(u.get("shell", "")).rstrip("/").endswith(NO_LOGIN)]


@router.get("/assets/{asset_id}/host")
def host_page(request: Request, c: AnyUser, asset_id: int) -> Response:
    asset = server_asset(c, asset_id)
    customer = c.get(Customer, asset.customer_id)
    state, status = state_of(c, asset)
    t = i18n.translator(request_language(request))
    events = c.db.scalars(
        select(HostEvent).where(HostEvent.asset_id == asset.id).order_by(HostEvent.at.desc()).limit(50)
    )
    inventory = (state.inventory if state else None) or {}
    url = f"/api/v1/assets/{asset.id}/metrics"
    return page(
        request, "host.html", asset=asset, customer=customer, state=state, health=status,
        inventory=inventory, users=login_users(inventory), top=(state.top if state else None) or {},
        events=[(e, event_text(t, e)) for e in events], local=local, booted=booted(inventory),
        charts=[(ch.id, chart_spec(ch, url, state.interval_s if state else 15)) for ch in charts(t)],
    )  # fmt: skip


@router.get("/assets/{asset_id}/host/status")
def host_status_fragment(request: Request, c: AnyUser, asset_id: int) -> Response:
    asset = server_asset(c, asset_id)
    state, status = state_of(c, asset)
    return render(request, "_host_status.html", asset=asset, state=state, health=status, local=local)
