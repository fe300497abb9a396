"""The figures of a monthly operations report (R-REP-2), gathered once into plain JSON.

Per host: availability from the agent's samples (hours with data against hours in the period),
CPU, memory and fullest-disk averages and peaks, and daily averages for the charts, read from the
1-hour rollups. Per check: uptime from its state changes with maintenance counted apart, and the
mean response time. Incidents: counts by severity and cause, mean time to acknowledge and to
resolve, the list. System changes (P4 events) by kind.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.alerting.models import Incident
from opsdesk.core.calendar import CHINA
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.metrics.store import DAY_MS, HOUR_MS, MetricStore
from opsdesk.metrics.types import Matcher, Point
from opsdesk.monitors.models import Monitor
from opsdesk.monitors.service import uptime
from opsdesk.notify.models import DeliveryState, Notification
from opsdesk.reports.period import minutes_between
from opsdesk.tenancy.models import Asset, AssetType, Customer

EVENT_LIST_LIMIT = 50


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None


def _combine(points: list[Point]) -> tuple[float | None, float | None]:
    """Sample-weighted average and the peak of a series' points."""
    n = sum(p.count for p in points)
    if not n:
        return None, None
    return round(sum(p.avg * p.count for p in points) / n, 1), round(max(p.max for p in points), 1)


def _daily(
    store: MetricStore, asset_id: int, metric: str, match: dict[str, str], start: int, end: int
) -> Any:
    matchers = [Matcher.eq("asset", str(asset_id)), Matcher.name(metric)]
    matchers += [Matcher.eq(k, v) for k, v in match.items()]
    return store.read_range(matchers, start, end, DAY_MS)


def host_figures(
    store: MetricStore, asset: Asset, state: HostState | None, start: int, end: int
) -> dict[str, Any]:
    cpu = _daily(store, asset.id, "cpu_usage_percent", {"mode": "total"}, start, end)
    mem = _daily(store, asset.id, "memory_used_percent", {}, start, end)
    disks = _daily(store, asset.id, "fs_used_percent", {}, start, end)
    # Availability: an hour counts as served when the agent sent any memory sample in it.
    hourly = store.read_range(
        [Matcher.eq("asset", str(asset.id)), Matcher.name("memory_used_percent")], start, end, HOUR_MS
    )
    hours_total = (end - start) // HOUR_MS
    first_ms = _ms(state.first_seen_at) if state else end
    hours_watched = max(0, min(hours_total, (end - max(start, first_ms - first_ms % HOUR_MS)) // HOUR_MS))
    hours_up = len(hourly[0].points) if hourly else 0
    cpu_points = cpu[0].points if cpu else []
    mem_points = mem[0].points if mem else []
    cpu_avg, cpu_max = _combine(cpu_points)
    mem_avg, mem_max = _combine(mem_points)
    fullest = max((round(max(p.max for p in s.points), 1) for s in disks if s.points), default=None)
    fullest_mount = max(
        ((max(p.max for p in s.points), s.series.get("mount")) for s in disks if s.points), default=(0, "")
    )[1]
    return {
        "id": asset.id,
        "name": asset.name,
        "ip": asset.ip,
        "hostname": state.hostname if state else "",
        "availability": round(100 * min(hours_up, hours_watched) / hours_watched, 2)
        if hours_watched
        else None,
        "hours_watched": hours_watched,
        "cpu_avg": cpu_avg,
        "cpu_max": cpu_max,
        "mem_avg": mem_avg,
        "mem_max": mem_max,
        "disk_max": fullest,
        "disk_mount": fullest_mount,
        "daily_cpu": [[p.t, round(p.avg, 2)] for p in cpu_points],
        "daily_mem": [[p.t, round(p.avg, 2)] for p in mem_points],
    }


def check_figures(
    session: Session, store: MetricStore, monitor: Monitor, start: datetime, end: datetime
) -> dict[str, Any]:
    up = uptime(session, monitor, start, end)
    response = store.read_range(
        [Matcher.eq("monitor", str(monitor.id)), Matcher.name("check_response_ms")],
        _ms(start),
        _ms(end),
        DAY_MS,
    )
    avg, peak = _combine(response[0].points) if response else (None, None)
    return {
        "id": monitor.id,
        "name": monitor.name,
        "type": monitor.type,
        "uptime": up.percent,
        "down_minutes": round(up.down_s / 60, 1),
        "maintenance_minutes": round(up.maintenance_s / 60, 1),
        "response_avg_ms": avg,
        "response_max_ms": peak,
    }


def incident_figures(incidents: list[Incident], assets: dict[int, Asset]) -> dict[str, Any]:
    ack = [m for i in incidents if (m := minutes_between(i.opened_at, i.acknowledged_at)) is not None]
    fix = [m for i in incidents if (m := minutes_between(i.opened_at, i.resolved_at)) is not None]
    by_day: Counter[tuple[str, str]] = Counter(
        (i.opened_at.astimezone(CHINA).strftime("%Y-%m-%d"), i.severity.value) for i in incidents
    )
    return {
        "total": len(incidents),
        "by_severity": dict(Counter(i.severity.value for i in incidents)),
        "by_cause": dict(Counter(i.cause.value for i in incidents)),
        "by_day": [[day, sev, n] for (day, sev), n in sorted(by_day.items())],
        "mtta_minutes": _mean(ack),
        "mttr_minutes": _mean(fix),
        "open_at_end": sum(1 for i in incidents if i.resolved_at is None),
        "rows": [
            {
                "id": i.id,
                "title": i.title,
                "severity": i.severity.value,
                "status": i.status.value,
                "cause": i.cause.value,
                "asset": assets[i.asset_id].name if i.asset_id in assets else "",
                "opened_at": i.opened_at.isoformat(),
                "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
                "minutes": minutes_between(i.opened_at, i.resolved_at),
            }
            for i in incidents
        ],
    }


def monthly_data(
    session: Session, store: MetricStore, customer: Customer, start: datetime, end: datetime
) -> dict[str, Any]:
    cid = customer.id
    assets = {
        a.id: a for a in session.scalars(select(Asset).where(Asset.customer_id == cid).order_by(Asset.name))
    }
    servers = [a for a in assets.values() if a.type is AssetType.server]
    states = {
        s.asset_id: s
        for s in session.scalars(select(HostState).where(HostState.asset_id.in_([a.id for a in servers])))
    }
    s_ms, e_ms = _ms(start), _ms(end)
    hosts = [host_figures(store, a, states.get(a.id), s_ms, e_ms) for a in servers]
    monitors = session.scalars(
        select(Monitor).where(Monitor.customer_id == cid, Monitor.created_at < end).order_by(Monitor.name)
    ).all()
    checks = [check_figures(session, store, m, start, end) for m in monitors]
    incidents = list(
        session.scalars(
            select(Incident)
            .where(Incident.customer_id == cid, Incident.opened_at >= start, Incident.opened_at < end)
            .order_by(Incident.opened_at)
        )
    )
    events = list(
        session.scalars(
            select(HostEvent)
            .where(HostEvent.customer_id == cid, HostEvent.at >= start, HostEvent.at < end)
            .order_by(HostEvent.at)
        )
    )
    sent = session.scalar(
        select(func.count(Notification.id)).where(
            Notification.customer_id == cid,
            Notification.state == DeliveryState.sent,
            Notification.sent_at >= start,
            Notification.sent_at < end,
        )
    )
    availabilities = [h["availability"] for h in hosts if h["availability"] is not None]
    uptimes = [c["uptime"] for c in checks if c["uptime"] is not None]
    return {
        "customer": {"id": cid, "code": customer.code, "name": customer.name},
        "hosts": hosts,
        "checks": checks,
        "incidents": incident_figures(incidents, assets),
        "changes": {
            "by_kind": dict(Counter(e.kind for e in events)),
            "rows": [
                {
                    "at": e.at.isoformat(),
                    "asset": assets[e.asset_id].name if e.asset_id in assets else "",
                    "kind": e.kind,
                    "attrs": dict(e.attrs or {}),
                }
                for e in events[-EVENT_LIST_LIMIT:]
            ],
            "total": len(events),
        },
        "notifications_sent": int(sent or 0),
        "summary": {
            "hosts": len(hosts),
            "checks": len(checks),
            "host_availability": round(fmean(availabilities), 2) if availabilities else None,
            "check_uptime": round(fmean(uptimes), 3) if uptimes else None,
        },
    }
