"""Default rules for monitors by type name: middleware, process, script, log, Prometheus scrapes.

Monitors are written straight to the store with a type name only, as the rules know them: the
rules must not depend on the check modules being installed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from opsdesk.alerting.engine import AlertEngine
from opsdesk.alerting.models import Alert
from opsdesk.alerting.rules import DEFAULTS, MIDDLEWARE_TYPES, MonitorDownRule, Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.runtime import Runtime
from opsdesk.monitors.models import Monitor, MonitorState
from opsdesk.tenancy.models import Asset, AssetType
from tests.world import World


def add_monitor(rt: Runtime, asset_id: int, customer_id: int, kind: str) -> int:
    with rt.sessions.begin() as s:
        m = Monitor(customer_id=customer_id, asset_id=asset_id, name=f"{kind} check", type=kind, config={})
        s.add(m)
        s.flush()
        return m.id


def set_state(rt: Runtime, monitor_id: int, state: MonitorState) -> None:
    with rt.sessions.begin() as s:
        m = s.get(Monitor, monitor_id)
        assert m is not None
        m.state = state


def alert_of(rt: Runtime, monitor_id: int) -> Alert | None:
    with rt.sessions() as s:
        return s.scalars(select(Alert).where(Alert.monitor_id == monitor_id)).first()


def test_every_listed_type_has_a_rule_on_servers_and_middleware_assets() -> None:
    wanted = {*MIDDLEWARE_TYPES, "process", "script", "log", "prometheus"}
    for asset_type in (AssetType.server, AssetType.database, AssetType.other):
        covered = {t for r in DEFAULTS[asset_type] if isinstance(r, MonitorDownRule) for t in r.monitor_types}
        assert wanted <= covered, asset_type


def test_middleware_down_fires_unknown_keeps_state_warning_clears(runtime: Runtime, world: World) -> None:
    engine = AlertEngine(runtime)
    t0 = datetime.now(UTC)
    nginx = add_monitor(runtime, world.a.asset, world.a.customer, "nginx")
    assert engine.evaluate(t0).fired == []  # unknown (never run): nothing
    set_state(runtime, nginx, MonitorState.down)
    report = engine.evaluate(t0 + timedelta(seconds=10))
    assert any(fp.startswith("middleware_down:") for fp in report.fired)
    alert = alert_of(runtime, nginx)
    assert alert is not None and alert.severity is Severity.p2 and alert.state is AlertState.firing
    # the check cannot tell for a while: the alert neither resolves nor fires again
    set_state(runtime, nginx, MonitorState.unknown)
    for i in range(2, 5):
        report = engine.evaluate(t0 + timedelta(seconds=10 * i))
        assert report.fired == [] and report.resolved == []
    alert = alert_of(runtime, nginx)
    assert alert is not None and alert.state is AlertState.firing and len(alert.transitions) == 1
    # warning: it works (a figure is high): the middleware is up again
    set_state(runtime, nginx, MonitorState.warning)
    assert len(engine.evaluate(t0 + timedelta(seconds=60)).resolved) == 1
    assert (alert_of(runtime, nginx) or Alert()).state is AlertState.resolved


def test_severities_by_type_and_database_assets(runtime: Runtime, world: World) -> None:
    with runtime.sessions.begin() as s:
        db = Asset(customer_id=world.a.customer, type=AssetType.database, name="mysql-A")
        s.add(db)
        s.flush()
        db_id = db.id
    expected = {
        ("mysql", db_id): ("middleware_down", Severity.p2),
        ("process", world.a.asset): ("process_not_running", Severity.p2),
        ("script", world.a.asset): ("script_critical", Severity.p3),
        ("log", world.a.asset): ("log_pattern", Severity.p3),
        ("prometheus", world.a.asset): ("scrape_failed", Severity.p4),
    }
    ids = {}
    for (kind, asset_id), _ in expected.items():
        ids[kind] = add_monitor(runtime, asset_id, world.a.customer, kind)
        set_state(runtime, ids[kind], MonitorState.down)
    AlertEngine(runtime).evaluate(datetime.now(UTC))
    for (kind, _), (rule, severity) in expected.items():
        with runtime.sessions() as s:
            found = list(s.scalars(select(Alert).where(Alert.monitor_id == ids[kind])))
        assert [(a.rule_key, a.severity, a.state) for a in found] == [(rule, severity, AlertState.firing)], (
            kind
        )
