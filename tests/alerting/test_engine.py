"""Rules evaluated against real stored data: alerts fire and resolve, incidents open and close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from opsdesk.alerting.engine import AlertEngine
from opsdesk.alerting.models import (
    Alert,
    Incident,
    IncidentEvent,
    IncidentSource,
    IncidentStatus,
    RuleOverride,
)
from opsdesk.alerting.rules import Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.metrics import Sample, SeriesKey
from tests.world import World


def put(rt: Runtime, world: World, at: datetime, name: str, value: float, **labels: str) -> None:
    key = SeriesKey(
        {"__name__": name, "asset": str(world.a.asset), "customer": str(world.a.customer), **labels}
    )
    rt.metrics.write([Sample(key, int(at.timestamp() * 1000), value)])


def alerts(rt: Runtime) -> dict[str, Alert]:
    with rt.sessions() as s:
        return {a.rule_key: a for a in s.scalars(select(Alert))}


def test_disk_nearly_full_fires_opens_incident_and_resolves(runtime: Runtime, world: World) -> None:
    engine = AlertEngine(runtime)
    t0 = datetime.now(UTC).replace(microsecond=0)
    put(runtime, world, t0, "fs_used_percent", 96.5, mount="/data")
    put(runtime, world, t0, "fs_used_percent", 40.0, mount="/")
    report = engine.evaluate(t0 + timedelta(seconds=1))
    assert len(report.fired) == 1 and "disk_nearly_full" in report.fired[0] and "/data" in report.fired[0]
    alert = alerts(runtime)["disk_nearly_full"]
    assert (
        alert.state is AlertState.firing
        and alert.severity is Severity.p2
        and alert.labels == {"mount": "/data"}
    )
    with runtime.sessions() as s:
        incident = s.scalars(select(Incident).where(Incident.source == IncidentSource.alert)).one()
        assert incident.status is IncidentStatus.open and incident.severity is Severity.p2
        assert "96%" in incident.title or "97%" in incident.title
        kinds = [
            e.kind for e in s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id))
        ]
        assert kinds.count("alert_fired") == 1 and "notified" in kinds  # the world has a webhook
    # 87%: between the clear (85) and fire (90) thresholds: still firing (hysteresis)
    put(runtime, world, t0 + timedelta(seconds=15), "fs_used_percent", 87.0, mount="/data")
    assert engine.evaluate(t0 + timedelta(seconds=16)).resolved == []
    put(runtime, world, t0 + timedelta(seconds=30), "fs_used_percent", 70.0, mount="/data")
    # a new engine (a restart) carries on from the stored state
    report = AlertEngine(runtime).evaluate(t0 + timedelta(seconds=31))
    assert len(report.resolved) == 1
    with runtime.sessions() as s:
        incident = s.scalars(select(Incident).where(Incident.source == IncidentSource.alert)).one()
        assert incident.status is IncidentStatus.resolved and incident.resolved_at is not None


def test_for_duration_and_overrides(runtime: Runtime, world: World) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=45)
    for i in range(0, 45 * 60, 15):
        put(runtime, world, t0 + timedelta(seconds=i), "cpu_usage_percent", 97.0, mode="total")
    engine = AlertEngine(runtime)
    first = engine.evaluate(t0 + timedelta(minutes=30))
    assert first.fired == []  # pending: `for` is 10 minutes
    assert alerts(runtime)["cpu_high"].state is AlertState.pending
    assert engine.evaluate(t0 + timedelta(minutes=41)).fired  # 10 minutes later, still high
    # a customer override switches the rule off for this asset: no new cpu alert elsewhere
    with runtime.sessions.begin() as s:
        s.add(
            RuleOverride(
                customer_id=world.a.customer,
                asset_id=world.a.asset,
                rule_key="memory_high",
                threshold=50.0,
                for_s=0,
                severity=Severity.p2,
            )
        )
    put(runtime, world, t0 + timedelta(minutes=41), "memory_used_percent", 60.0)
    report = engine.evaluate(t0 + timedelta(minutes=41, seconds=30))
    assert any(f.startswith("memory_high") for f in report.fired)
    assert alerts(runtime)["memory_high"].severity is Severity.p2


def test_host_down_and_events(runtime: Runtime, world: World) -> None:
    now = datetime.now(UTC)
    with runtime.sessions.begin() as s:
        s.add(
            HostState(
                customer_id=world.a.customer,
                asset_id=world.a.asset,
                instance="x",
                last_seq=1,
                dropped_total=0,
                interval_s=15,
                last_seen_at=now - timedelta(minutes=5),
            )
        )
        s.add(
            HostEvent(
                customer_id=world.a.customer,
                asset_id=world.a.asset,
                at=now,
                kind="password_changed",
                attrs={"user": "root"},
            )
        )
    engine = AlertEngine(runtime)
    fired = engine.evaluate(now).fired
    assert any(f.startswith("host_down") for f in fired)
    assert any(f.startswith("password_changed") for f in fired)
    assert alerts(runtime)["host_down"].severity is Severity.p1
    with runtime.sessions() as s:
        incident = s.scalars(
            select(Incident).where(Incident.source == IncidentSource.alert)
        ).one()  # both alerts in one incident for the asset
        assert incident.severity is Severity.p1
    # the event alert resolves on the next look; the host comes back
    with runtime.sessions.begin() as s:
        state = s.scalars(select(HostState)).one()
        state.last_seen_at = now + timedelta(seconds=20)
    report = engine.evaluate(now + timedelta(seconds=30))
    assert {f.split(":")[0] for f in report.resolved} == {"host_down", "password_changed"}
