"""PostgreSQL: up, connections by state, transactions per second, cache hit ratio, replication lag,
long-running queries and database sizes.

Runs in autocommit, so each statement sees fresh statistics (pg_stat_* views are snapshotted per
transaction). A user with the pg_monitor role sees every session; others see only their own.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import psycopg
from pydantic import Field

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import ServerConfig, unreachable

CONNECTIONS_SQL = """
SELECT coalesce(state, 'unknown') AS state, count(*) AS n
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1
"""
DATABASES_SQL = """
SELECT d.datname, s.xact_commit, s.xact_rollback, s.blks_read, s.blks_hit,
       CASE WHEN has_database_privilege(d.datname, 'CONNECT') THEN pg_database_size(d.datname) END
FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn AND NOT d.datistemplate
"""
LONG_SQL = """
SELECT count(*), coalesce(max(extract(epoch FROM now() - query_start)), 0)
FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND now() - query_start > make_interval(secs => %s)
"""
REPLICA_SQL = """
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END,
       (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')
"""
PRIMARY_SQL = """
SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'),
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0),
       coalesce(extract(epoch FROM replay_lag), 0)
FROM pg_stat_replication
"""
RATES = {"xact_total": "tps", "xact_commit_total": "commits_per_s", "xact_rollback_total": "rollbacks_per_s"}


class PostgresqlConfig(ServerConfig):
    port: int = Field(5432, ge=1, le=65535)
    user: str | None = Field("postgres", max_length=128)
    database: str = Field("postgres", min_length=1, max_length=63)
    sslmode: Literal["disable", "prefer", "require", "verify-full"] = "prefer"
    long_query_s: float = Field(60.0, gt=0, le=86400, description="queries running longer are counted")
    max_replication_lag_s: float = Field(300.0, ge=0, description="a replica further behind is a warning")


def connection_figures(rows: list[tuple[Any, ...]]) -> tuple[dict[str, float], list[Series]]:
    """Connections by state: (state, count) rows."""
    series = [Series("connections_by_state", {"state": str(state)}, float(n)) for state, n in rows]
    return {"connections": float(sum(int(n) for _, n in rows))}, series


def database_figures(rows: list[tuple[Any, ...]]) -> tuple[dict[str, float], list[Series]]:
    """Totals and per-database series from (name, commits, rollbacks, blocks read, blocks hit, size) rows."""
    commits = rollbacks = read = hit = 0.0
    series: list[Series] = []
    for name, xc, xr, br, bh, size in rows:
        commits += float(xc or 0)
        rollbacks += float(xr or 0)
        read += float(br or 0)
        hit += float(bh or 0)
        labels = {"database": str(name)}
        if size is not None:
            series.append(Series("database_size_bytes", labels, float(size)))
        series.append(Series("database_xact_total", labels, float(xc or 0) + float(xr or 0)))
        if (br or 0) + (bh or 0):
            series.append(Series("database_cache_hit_percent", labels, _ratio(float(bh), float(br))))
    out = {
        "xact_commit_total": commits,
        "xact_rollback_total": rollbacks,
        "xact_total": commits + rollbacks,
        "blks_read_total": read,
        "blks_hit_total": hit,
        "databases": float(len(rows)),
    }
    if read + hit:
        out["cache_hit_percent"] = _ratio(hit, read)
    return out, series


def _ratio(hit: float, read: float) -> float:
    return round(100.0 * hit / (hit + read), 4)


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params or None)
        return list(await cur.fetchall())


@register("postgresql")
class PostgresqlCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = PostgresqlConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: PostgresqlConfig) -> CheckResult:
        start = time.perf_counter()
        try:
            conn = await psycopg.AsyncConnection.connect(
                host=config.host,
                port=config.port,
                user=config.user or "",
                password=config.secret() or None,
                dbname=config.database,
                sslmode=config.sslmode,
                connect_timeout=max(1, int(config.timeout_s)),
                application_name="opsdesk-probe",
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            text = str(exc)
            if "password authentication failed" in text or "no password supplied" in text:
                return CheckResult.down(
                    "auth_failed", f"{config.target} refused the login of {config.user!r}"
                )
            return unreachable(config.target, exc)
        connect_s = time.perf_counter() - start
        try:
            async with conn:
                figures, series = connection_figures(await _rows(conn, CONNECTIONS_SQL))
                max_conn = (await _rows(conn, "SELECT current_setting('max_connections')::int"))[0][0]
                dbs, db_series = database_figures(await _rows(conn, DATABASES_SQL))
                ((long_n, longest),) = await _rows(conn, LONG_SQL, config.long_query_s)
                ((in_recovery,),) = await _rows(conn, "SELECT pg_is_in_recovery()")
                replication = await _rows(conn, REPLICA_SQL if in_recovery else PRIMARY_SQL)
        except psycopg.Error as exc:
            return CheckResult.down("query_failed", f"{config.target}: {str(exc).strip()}")
        figures.update(dbs)
        series.extend(db_series)
        figures["max_connections"] = float(max_conn)
        figures["connections_percent"] = round(100.0 * figures["connections"] / float(max_conn), 3)
        figures["long_queries"] = float(long_n)
        figures["longest_query_s"] = round(float(longest), 3)
        figures.update(self.rates.rates(f"{config.target}/{config.user}", figures, RATES))
        level: Status = "ok"
        code, message = (
            "ok",
            f"{figures['connections']:g} connections, {figures['long_queries']:g} long queries",
        )
        if in_recovery:
            lag, streaming = (float(v) for v in replication[0])
            figures.update(replica=1.0, replication_lag_s=round(lag, 3), replication_streaming=streaming)
            if not streaming:
                level, code, message = (
                    "warning",
                    "replication_stopped",
                    "replica is not streaming from its primary",
                )
            elif lag > config.max_replication_lag_s:
                level, code = "warning", "replication_lag"
                message = f"replica {lag:g} s behind (more than {config.max_replication_lag_s:g} s)"
        else:
            figures["replicas"] = float(len(replication))
            for app, addr, lag_bytes, lag_s in replication:
                labels = {"replica": f"{app}@{addr}" if app else str(addr)}
                series.append(Series("replica_lag_bytes", labels, float(lag_bytes)))
                series.append(Series("replica_lag_s", labels, round(float(lag_s), 3)))
        figures["connect_ms"] = ms(connect_s)
        figures["response_ms"] = ms(time.perf_counter() - start)
        return CheckResult.at_level(level, code, message, figures, series)
