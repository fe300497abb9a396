"""Disk-full forecast: the least-squares fit on synthetic series, then the rule through the store."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from opsdesk.alerting.engine import AlertEngine
from opsdesk.alerting.forecast import fit_line, forecast, hours_until
from opsdesk.alerting.models import Alert, Incident
from opsdesk.alerting.rules import Severity
from opsdesk.alerting.state import AlertState
from opsdesk.core.runtime import Runtime
from opsdesk.metrics import Sample, SeriesKey
from tests.world import World

HOUR = 3600.0
NOW = 1_800_000_000.0


def series(
    start: float, per_hour: float, hours: float = 6, every_s: float = 300
) -> list[tuple[float, float]]:
    n = int(hours * HOUR / every_s)
    return [(NOW - hours * HOUR + i * every_s, start + per_hour * i * every_s / HOUR) for i in range(n + 1)]


def test_fit_recovers_the_line() -> None:
    slope, intercept = fit_line([(0.0, 1.0), (10.0, 3.0), (20.0, 5.0)]) or (0.0, 0.0)
    assert slope == pytest.approx(0.2) and intercept == pytest.approx(1.0)
    assert fit_line([(5.0, 1.0), (5.0, 2.0)]) is None  # no spread in time: no line
    assert fit_line([(5.0, 1.0)]) is None


def test_rising_disk_is_full_in_the_predicted_hours() -> None:
    points = series(58.0, 6.0)  # 58 % six hours ago, +6 %/h: 94 % now, full in 1 h
    assert hours_until(points, NOW, 100.0) == pytest.approx(1.0, abs=0.01)
    points = series(40.0, 2.0)  # 52 % now, +2 %/h: 24 h left
    assert hours_until(points, NOW, 100.0) == pytest.approx(24.0, abs=0.01)
    verdict = forecast(points, NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5)
    assert verdict is not None and verdict.breached and not verdict.cleared
    verdict = forecast(series(40.0, 1.0), NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5)  # 54 h left
    assert verdict is not None and not verdict.breached and verdict.cleared


def test_flat_falling_and_full_disks() -> None:
    assert hours_until(series(70.0, 0.0), NOW, 100.0) is None
    assert hours_until(series(70.0, -3.0), NOW, 100.0) is None
    assert hours_until(series(99.0, 1.0), NOW, 100.0) == 0.0  # there already
    verdict = forecast(series(70.0, -3.0), NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5)
    assert verdict is not None and verdict.cleared and not verdict.breached


def test_hysteresis_between_horizon_and_clear() -> None:
    # 30 h left: past the 24 h horizon, inside 1.5 x 24 = 36 h: neither fires nor clears
    verdict = forecast(series(100 - 30 * 1.5 - 9, 1.5), NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5)
    assert verdict is not None
    assert verdict.hours_left == pytest.approx(30.0, abs=0.01)
    assert not verdict.breached and not verdict.cleared


def test_noise_does_not_hide_the_trend() -> None:
    rng = random.Random(7)
    points = [(t, v + rng.uniform(-2, 2)) for t, v in series(40.0, 2.0)]
    hours = hours_until(points, NOW, 100.0)
    assert hours is not None and 20 < hours < 28


def test_too_little_data_says_nothing() -> None:
    assert forecast(series(40.0, 10.0, hours=0.25), NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5) is None
    assert forecast(series(40.0, 10.0)[:3], NOW, 6 * HOUR, 100.0, 24 * HOUR, 1.5) is None


def put(rt: Runtime, world: World, at: datetime, value: float, mount: str) -> None:
    key = SeriesKey(
        {
            "__name__": "fs_used_percent",
            "asset": str(world.a.asset),
            "customer": str(world.a.customer),
            "mount": mount,
        }
    )
    rt.metrics.write([Sample(key, int(at.timestamp() * 1000), value)])


def test_engine_fires_disk_full_forecast_from_the_metric_store(runtime: Runtime, world: World) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=6)
    for i in range(0, 6 * 60 + 1, 1):  # a sample a minute: /data +2.5 %/h up to 85 %, / flat at 40 %
        at = start + timedelta(minutes=i)
        put(runtime, world, at, 70.0 + 2.5 * i / 60, "/data")
        put(runtime, world, at, 40.0, "/")
    engine = AlertEngine(runtime)
    assert engine.evaluate(now).fired == []  # pending: `for` is 15 minutes
    for i in range(1, 17):
        put(runtime, world, now + timedelta(minutes=i), 85.0 + 2.5 * i / 60, "/data")
    report = engine.evaluate(now + timedelta(minutes=16))
    assert len(report.fired) == 1 and "disk_full_forecast" in report.fired[0]
    with runtime.sessions() as s:
        alerts = list(s.scalars(select(Alert).where(Alert.rule_key == "disk_full_forecast")))
        assert len(alerts) == 1  # "/" is flat: no forecast alert for it
        alert = alerts[0]
        assert alert.labels == {"mount": "/data"} and alert.severity is Severity.p3
        assert alert.state is AlertState.firing
        assert alert.value is not None and 5.5 < alert.value < 6.5  # (100 - 85.7) / 2.5 ≈ 5.7 h
        assert "/data" in alert.summary and "will be full in about 6 h" in alert.summary
        incident = s.get(Incident, alert.incident_id)
        assert incident is not None and incident.severity is Severity.p3
