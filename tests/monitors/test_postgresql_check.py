"""PostgreSQL check against the real server on 127.0.0.1:5432 (and a throwaway cluster it stops):
figures match pg_stat_activity, pg_stat_database and pg_database_size read by the test itself.

Other tests use the same server at the same time, so server-wide gauges are compared with the
test's readings just before and after the check, with a small margin; figures of the test's own
database are compared exactly.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError, CheckResult
from tests.middleware_fixtures import ProbeHarness, assert_down_then_recovers, start_postgres_cluster
from tests.middleware_fixtures import harness as harness
from tests.monitors.conftest import run_check
from tests.nginx_fixture import free_port

ADMIN = "postgresql://postgres@127.0.0.1:5432/"


def connect(db: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(ADMIN + db, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"opsdesk_pgmon_{uuid.uuid4().hex[:10]}"
    with connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with connect(name) as conn:
        conn.execute(
            "CREATE TABLE filler AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 5000) g"
        )
    try:
        yield name
    finally:
        with connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def states(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' GROUP BY 1"
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def totals(conn: psycopg.Connection[Any]) -> tuple[float, float, float]:
    row = conn.execute(
        "SELECT sum(s.xact_commit + s.xact_rollback), sum(s.blks_hit), sum(s.blks_read)"
        " FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid"
        " WHERE d.datallowconn AND NOT d.datistemplate"
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), float(row[2])


def series_of(result: CheckResult, name: str, **labels: str) -> float:
    found = [
        s.value
        for s in result.series
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, result.series)
    return found[0]


def test_figures_match_the_servers_own_views_after_load(database: str) -> None:
    config = checks.validate("postgresql", {"host": "127.0.0.1", "long_query_s": 600})
    reader = connect()
    idle = [connect(database) for _ in range(2)]
    in_tx = connect(database)
    in_tx.execute("BEGIN")
    in_tx.execute("SELECT 1")  # now "idle in transaction"
    n = 120
    try:

        async def go() -> dict[str, Any]:
            async with checks.Checker() as checker:
                out: dict[str, Any] = {}
                t0 = time.monotonic()
                out["r1"] = await checker.run(config)
                t1 = time.monotonic()
                out["db1"] = totals(reader)
                with connect(database) as load:  # closing it flushes its statistics at once
                    for i in range(n):
                        load.execute("SELECT count(*) FROM filler WHERE id = %s", (i,))
                out["before"], out["t_before"] = states(reader), totals(reader)
                t2 = time.monotonic()
                out["r2"] = await checker.run(config)
                out["times"] = (time.monotonic() - t0, t2 - t1)
                out["after"], out["t_after"] = states(reader), totals(reader)
                return out

        got = asyncio.run(go())
        size = reader.execute("SELECT pg_database_size(%s)", (database,)).fetchone()
        assert size is not None
    finally:
        for conn in [*idle, in_tx, reader]:
            conn.close()
    r1, r2 = got["r1"], got["r2"]
    assert r1.ok and r2.ok and r2.level == "ok", (r1, r2)
    m1, m2 = r1.metrics, r2.metrics
    # connections by state, against pg_stat_activity just before and after (others come and go)
    for state in ("idle", "idle in transaction", "active"):
        low = min(got["before"].get(state, 0), got["after"].get(state, 0))
        high = max(got["before"].get(state, 0), got["after"].get(state, 0))
        value = series_of(r2, "connections_by_state", state=state)
        assert low - 2 <= value <= high + 2, (state, low, value, high)
    assert series_of(r2, "connections_by_state", state="idle in transaction") >= 1
    assert series_of(r2, "connections_by_state", state="active") >= 1  # the check's own query
    assert m2["connections"] == sum(s.value for s in r2.series if s.name == "connections_by_state")
    # transactions: server-wide between the readings, the test's own database exactly
    assert got["t_before"][0] <= m2["xact_total"] <= got["t_after"][0]
    assert m2["xact_total"] - m1["xact_total"] >= n
    mine = series_of(r2, "database_xact_total", database=database) - series_of(
        r1, "database_xact_total", database=database
    )
    assert n <= mine <= n + 3, mine
    longest, shortest = got["times"]
    delta = m2["xact_total"] - m1["xact_total"]
    assert delta / longest <= m2["tps"] <= delta / shortest
    assert "tps" not in m1
    # cache hit ratio over all databases, against the test's own sums
    for key in ("t_before", "t_after"):
        _, hit, read = got[key]
        assert abs(m2["cache_hit_percent"] - 100.0 * hit / (hit + read)) < 0.5
    # database sizes
    assert series_of(r2, "database_size_bytes", database=database) == float(size[0])
    # no long query at a 600 s threshold; a primary without replicas
    assert m2["long_queries"] == 0
    assert m2["replicas"] == 0 and "replication_lag_s" not in m2


def test_a_long_running_query_is_counted_with_its_duration(database: str) -> None:
    sleeper = connect(database)
    pid = sleeper.info.backend_pid
    done = threading.Event()

    def sleep() -> None:
        try:
            sleeper.execute("SELECT pg_sleep(30)")
        except psycopg.Error:
            pass  # cancelled below
        finally:
            done.set()

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()
    try:
        time.sleep(2.5)
        result = run_check("postgresql", host="127.0.0.1", long_query_s=2)
        assert result.ok, result
        assert result.metrics["long_queries"] >= 1
        assert 2.0 <= result.metrics["longest_query_s"] < 30
        relaxed = run_check("postgresql", host="127.0.0.1", long_query_s=60)
        assert relaxed.metrics["long_queries"] == 0
    finally:
        with connect() as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        done.wait(10)
        sleeper.close()


def test_closed_port_is_critical() -> None:
    port = free_port()
    result = run_check("postgresql", host="127.0.0.1", port=port, timeout_s=2)
    assert result.level == "critical" and result.code == "connect_refused", result
    missing = run_check("postgresql", host="127.0.0.1", database="no_such_db_here", timeout_s=2)
    assert missing.level == "critical" and "no_such_db_here" in missing.message


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"port": 65536}, "port"),
        ({"host": "db host"}, "host"),
        ({"sslmode": "sometimes"}, "sslmode"),
        ({"long_query_s": 0}, "long_query_s"),
        ({"database": ""}, "database"),
    ],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("postgresql", definition)
    assert field in caught.value.as_dict()


def test_stopped_postgresql_turns_the_monitor_down_and_recovers(harness: ProbeHarness) -> None:
    cluster = start_postgres_cluster()
    try:
        monitor = harness.add(
            "postgresql", {"host": "127.0.0.1", "port": cluster.port, "interval_s": 10, "timeout_s": 3}
        )
        assert_down_then_recovers(harness, monitor, cluster.stop, cluster.start)
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(cluster.directory, ignore_errors=True)
