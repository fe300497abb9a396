"""MySQL/MariaDB check against the real MariaDB on 127.0.0.1:3306: its figures match SHOW GLOBAL STATUS
read by the test around each run, after load the test makes (plain queries and slow ones)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.mysql import replication_from
from tests.monitors.conftest import run_check
from tests.nginx_fixture import free_port

ROOT = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def _root() -> pymysql.connections.Connection[Any]:
    return pymysql.connect(**ROOT, autocommit=True)  # type: ignore[arg-type]


def status(conn: pymysql.connections.Connection[Any]) -> dict[str, float]:
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        out: dict[str, float] = {}
        for name, value in cur.fetchall():
            with contextlib.suppress(ValueError):
                out[str(name)] = float(value)
        return out


@pytest.fixture(scope="module")
def login() -> Iterator[dict[str, str]]:
    """A dedicated user and database with a password, dropped afterwards."""
    user = f"opsmon_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    db = f"opsmon_{uuid.uuid4().hex[:8]}"
    conn = _root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO '{user}'@'%'")
        cur.execute(f"GRANT ALL ON {db}.* TO '{user}'@'%'")
    try:
        yield {"user": user, "password": password, "database": db}
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


def test_figures_match_show_global_status_after_load(login: dict[str, str]) -> None:
    config = checks.validate("mysql", {"host": "127.0.0.1", **login})
    reader = _root()  # the test's own view of the server's counters
    n, slow = 200, 3
    extra = [pymysql.connect(**ROOT) for _ in range(3)]  # type: ignore[arg-type]
    try:

        async def go() -> dict[str, Any]:
            async with checks.Checker() as checker:
                out: dict[str, Any] = {"s0": status(reader)}
                t0 = time.monotonic()
                out["r1"] = await checker.run(config)
                t1 = time.monotonic()
                out["s1"] = status(reader)
                load = pymysql.connect(**{**ROOT, "user": login["user"], "password": login["password"]})  # type: ignore[arg-type]
                with load.cursor() as cur:
                    cur.execute(f"USE {login['database']}")
                    for i in range(n):
                        cur.execute("SELECT %s", (i,))
                    cur.execute("SET SESSION long_query_time = 0.05")
                    for _ in range(slow):
                        cur.execute("SELECT SLEEP(0.1)")
                load.close()
                out["s2"] = status(reader)
                t2 = time.monotonic()
                out["r2"] = await checker.run(config)
                out["s3"] = status(reader)
                out["times"] = (time.monotonic() - t0, t2 - t1)
                return out

        got = asyncio.run(go())
    finally:
        for conn in extra:
            conn.close()
        reader.close()
    r1, r2, s0, s1, s2, s3 = got["r1"], got["r2"], got["s0"], got["s1"], got["s2"], got["s3"]
    assert r1.ok and r2.ok and r2.level == "ok", (r1, r2)
    m1, m2 = r1.metrics, r2.metrics
    # counters: each reading lies between the test's readings just before and after it
    for figure, name in (
        ("queries_total", "Queries"),
        ("questions_total", "Questions"),
        ("slow_queries_total", "Slow_queries"),
        ("connections_total", "Connections"),
        ("innodb_buffer_pool_read_requests_total", "Innodb_buffer_pool_read_requests"),
    ):
        assert s0[name] <= m1[figure] <= s1[name], (figure, s0[name], m1[figure], s1[name])
        assert s2[name] <= m2[figure] <= s3[name], (figure, s2[name], m2[figure], s3[name])
    assert m2["queries_total"] - m1["queries_total"] >= n + slow
    assert m2["slow_queries_total"] - m1["slow_queries_total"] >= slow
    longest, shortest = got["times"]
    delta = m2["queries_total"] - m1["queries_total"]
    assert delta / longest <= m2["queries_per_s"] <= delta / shortest
    assert "queries_per_s" not in m1 and "slow_queries_per_s" in m2
    # gauges: the check's own connection is one of them; the three extra ones are open
    assert m2["connections"] >= 4
    assert abs(m2["connections"] - s3["Threads_connected"]) <= 1
    assert 1 <= m2["threads_running"] <= m2["connections"]
    with _root() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@max_connections")
        assert m2["max_connections"] == float(cur.fetchone()[0])
    hit = 100.0 * (1 - s3["Innodb_buffer_pool_reads"] / s3["Innodb_buffer_pool_read_requests"])
    assert abs(m2["innodb_buffer_pool_hit_percent"] - hit) < 0.5
    assert 0 < m2["innodb_buffer_pool_hit_percent"] <= 100
    # a primary: no replication figures at all
    assert not {"replication_lag_s", "replica", "replication_running"} & set(m2)
    assert not [s for s in r2.series if s.name.startswith("replica")]


def test_wrong_password_and_closed_port_are_critical(login: dict[str, str]) -> None:
    bad = run_check("mysql", host="127.0.0.1", user=login["user"], password="wrong", timeout_s=3)
    assert bad.level == "critical" and bad.code == "auth_failed"
    port = free_port()
    closed = run_check("mysql", host="127.0.0.1", port=port, timeout_s=2)
    assert closed.level == "critical" and closed.code == "connect_refused", closed
    assert str(port) in closed.message


def test_replica_status_rows_give_lag_per_channel_and_warn_when_stopped() -> None:
    # the columns of a MariaDB SHOW ALL SLAVES STATUS row that the check reads
    running = {
        "Connection_name": "",
        "Slave_IO_Running": "Yes",
        "Slave_SQL_Running": "Yes",
        "Seconds_Behind_Master": 7,
    }
    stopped = {
        "Connection_name": "eu",
        "Slave_IO_Running": "No",
        "Slave_SQL_Running": "Yes",
        "Seconds_Behind_Master": None,
        "Last_IO_Error": "error connecting to master",
    }
    figures, series, problems = replication_from([running, stopped])
    assert figures == {"replica": 1.0, "replication_running": 0.0, "replication_lag_s": 7.0}
    assert ("replication_lag_s", {"channel": ""}, 7.0) in [(s.name, s.labels, s.value) for s in series]
    assert ("replica_io_running", {"channel": "eu"}, 0.0) in [(s.name, s.labels, s.value) for s in series]
    assert len(problems) == 1 and "eu" in problems[0] and "error connecting" in problems[0]
    assert replication_from([]) == ({}, [], [])
    # MySQL 8 spelling
    figures, _, problems = replication_from(
        [
            {
                "Channel_Name": "",
                "Replica_IO_Running": "Yes",
                "Replica_SQL_Running": "Yes",
                "Seconds_Behind_Source": 0,
            }
        ]
    )
    assert figures["replication_lag_s"] == 0 and not problems


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"host": "http://db"}, "host"),
        ({"host": ""}, "host"),
        ({"max_replication_lag_s": -1}, "max_replication_lag_s"),
        ({"database": "x" * 65}, "database"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("mysql", definition)
    assert field in caught.value.as_dict()
