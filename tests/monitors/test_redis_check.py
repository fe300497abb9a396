"""Redis check against real redis-servers the tests start (a password-protected primary and its
replica): figures match INFO read by the test; a stopped server is critical and recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from tests.conftest import LiveServer
from tests.middleware_fixtures import (
    ProbeHarness,
    RedisServer,
    assert_down_then_recovers,
    start_redis,
    start_redis_replica,
)
from tests.middleware_fixtures import harness as harness
from tests.monitors.conftest import run_check
from tests.nginx_fixture import free_port
from tests.world import PASSWORD, World

SECRET = "redis-pw-9f3a1c"


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "primary", password=SECRET)
    try:
        yield server
    finally:
        server.stop()


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, password=server.password)


def definition(server: RedisServer, **over: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": server.port, "password": server.password, **over}


def test_figures_match_info_after_load(primary: RedisServer) -> None:
    config = checks.validate("redis", definition(primary))
    reader = client(primary)
    reader.config_set("maxmemory", str(4 * 1024 * 1024))
    reader.config_set("maxmemory-policy", "allkeys-lru")
    others = [client(primary) for _ in range(3)]
    for other in others:
        other.ping()
    n = 400

    async def go() -> dict[str, Any]:
        async with checks.Checker() as checker:
            t0 = time.monotonic()
            out: dict[str, Any] = {"r1": await checker.run(config)}
            t1 = time.monotonic()
            pipe = reader.pipeline(transaction=False)
            for i in range(n):  # about 10 MB into a 4 MB limit: keys are evicted
                pipe.set(f"k{i}", "v" * 25_000)
            pipe.execute()
            t2 = time.monotonic()
            out["r2"] = await checker.run(config)
            out["info"] = reader.info("all")
            out["times"] = (time.monotonic() - t0, t2 - t1)
            return out

    try:
        got = asyncio.run(go())
    finally:
        for other in others:
            other.close()
    r1, r2, info = got["r1"], got["r2"], got["info"]
    assert r1.ok and r2.ok and r2.level == "ok", (r1, r2)
    m1, m2 = r1.metrics, r2.metrics
    assert m2["evicted_keys_total"] == info["evicted_keys"] > 0
    assert m2["maxmemory_bytes"] == 4 * 1024 * 1024
    assert abs(m2["used_memory_bytes"] - info["used_memory"]) < 256 * 1024
    assert 0 < m2["memory_percent"] <= 110
    # the test's 4 clients and the check's own connection, closed before the test's INFO
    assert m2["connected_clients"] == info["connected_clients"] + 1 == 5
    # commands: the load, plus INFO/CONFIG calls; the test's INFO came after the check's
    assert n <= m2["commands_total"] - m1["commands_total"] <= n + 5
    assert m2["commands_total"] < info["total_commands_processed"] <= m2["commands_total"] + 3
    longest, shortest = got["times"]
    delta = m2["commands_total"] - m1["commands_total"]
    assert delta / longest <= m2["ops_per_s"] <= delta / shortest
    assert "ops_per_s" not in m1 and "instantaneous_ops_per_s" in m2
    assert m2["evicted_keys_per_s"] > 0
    assert m2["replica"] == 0 and m2["connected_replicas"] == 0


def test_replication_from_both_sides(primary: RedisServer, tmp_path: Path) -> None:
    replica = start_redis_replica(tmp_path / "replica", primary)
    try:
        deadline = time.monotonic() + 20
        while redis.Redis(port=replica.port).info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "replica did not connect"
            time.sleep(0.2)
        # the primary lists the replica as online a moment after the replica sees its link up
        while client(primary).info("replication").get("slave0", {}).get("state") != "online":
            assert time.monotonic() < deadline, "primary does not list the replica as online"
            time.sleep(0.2)
        client(primary).set("replicated", "yes")
        on_replica = run_check("redis", host="127.0.0.1", port=replica.port)
        assert on_replica.level == "ok", on_replica
        assert on_replica.metrics["replica"] == 1 and on_replica.metrics["master_link_up"] == 1
        on_primary = run_check("redis", **definition(primary))
        assert on_primary.metrics["connected_replicas"] == 1
        who = f"127.0.0.1:{replica.port}"
        lag = [s for s in on_primary.series if s.name == "replica_lag_bytes" and s.labels["replica"] == who]
        online = [s for s in on_primary.series if s.name == "replica_online" and s.labels["replica"] == who]
        assert len(lag) == 1 and lag[0].value >= 0 and online[0].value == 1
        # the primary goes away: the replica still answers, with a warning about its link
        primary.stop()
        broken = run_check("redis", host="127.0.0.1", port=replica.port)
        assert broken.level == "warning" and broken.code == "replication_stopped", broken
        assert broken.metrics["master_link_up"] == 0
        assert run_check("redis", **definition(primary), timeout_s=2).level == "critical"
    finally:
        replica.stop()


def test_wrong_or_missing_password_is_critical_auth_failed(primary: RedisServer) -> None:
    wrong = run_check("redis", **definition(primary, password="nope"))
    assert wrong.level == "critical" and wrong.code == "auth_failed", wrong
    missing = run_check("redis", host="127.0.0.1", port=primary.port)
    assert missing.level == "critical" and missing.code == "auth_failed", missing
    closed = run_check("redis", host="127.0.0.1", port=free_port(), timeout_s=2)
    assert closed.level == "critical" and closed.code == "connect_refused", closed


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"port": -1}, "port"),
        ({"host": "redis://x"}, "host"),
        ({"tls": "maybe"}, "tls"),
        ({"user": "u" * 200}, "user"),
    ],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("redis", definition)
    assert field in caught.value.as_dict()


def test_stopped_redis_turns_the_monitor_down_and_recovers(
    primary: RedisServer, harness: ProbeHarness
) -> None:
    monitor = harness.add("redis", definition(primary, interval_s=10, timeout_s=2))
    assert_down_then_recovers(harness, monitor, primary.stop, primary.start)


@pytest.mark.parametrize("backend", ["sqlite"])  # the schedule does not depend on the store: once
def test_the_probe_on_its_schedule_sees_redis_stop_and_start(
    world: World, live: LiveServer, primary: RedisServer, backend: str
) -> None:
    """Through the API and the running probe at interval_s=10: down within two intervals, then up."""
    admin = live.login(world.admin, PASSWORD)
    made = admin.post(
        f"/api/v1/customers/{world.a.customer}/monitors",
        json={"name": "cache", "type": "redis", "config": definition(primary, interval_s=10, timeout_s=2)},
    )
    assert made.status_code == 201, made.text
    monitor_id = made.json()["id"]

    def wait_for(state: str, within_s: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < within_s:
            got = admin.get(f"/api/v1/monitors/{monitor_id}").json()
            if got["state"] == state:
                return time.monotonic() - start
            time.sleep(0.5)
        raise AssertionError(f"not {state} within {within_s} s: {got}")

    wait_for("up", 25)  # authenticated with the stored (encrypted) password
    primary.stop()
    wait_for("down", 2 * 10 + 2)
    result = admin.get(f"/api/v1/monitors/{monitor_id}").json()["last_result"]
    assert result["status"] == "critical" and result["code"] == "connect_refused"
    primary.start()
    wait_for("up", 2 * 10 + 2)
