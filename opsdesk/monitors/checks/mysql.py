"""MySQL and MariaDB: up, connections, threads running, queries per second, slow queries, InnoDB
buffer pool hit ratio, and replication lag when the server is a replica.

PyMySQL is synchronous: the queries run in a worker thread, with connect and read time limits of
`timeout_s` so a hung server cannot keep the thread. The check's own statements are counted by
the server like any other (a handful per run).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pymysql
from pydantic import Field

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import ServerConfig, unreachable

# SHOW GLOBAL STATUS name -> figure
STATUS = {
    "Uptime": "uptime_s",
    "Threads_connected": "connections",
    "Threads_running": "threads_running",
    "Max_used_connections": "max_used_connections",
    "Connections": "connections_total",
    "Aborted_connects": "aborted_connects_total",
    "Queries": "queries_total",
    "Questions": "questions_total",
    "Slow_queries": "slow_queries_total",
    "Innodb_buffer_pool_read_requests": "innodb_buffer_pool_read_requests_total",
    "Innodb_buffer_pool_reads": "innodb_buffer_pool_reads_total",
}
RATES = {
    "queries_total": "queries_per_s",
    "questions_total": "questions_per_s",
    "slow_queries_total": "slow_queries_per_s",
    "connections_total": "connections_per_s",
}
ACCESS_DENIED = 1045
CANNOT_CONNECT = (2002, 2003, 2006, 2013)


class MysqlConfig(ServerConfig):
    port: int = Field(3306, ge=1, le=65535)
    user: str | None = Field("root", max_length=128)
    database: str | None = Field(None, max_length=64)
    max_replication_lag_s: float = Field(300.0, ge=0, description="a replica further behind is a warning")


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def figures_from(status: dict[str, str], variables: dict[str, str]) -> dict[str, float]:
    """Figures from SHOW GLOBAL STATUS and SHOW GLOBAL VARIABLES rows (name -> value)."""
    out: dict[str, float] = {}
    for name, figure in STATUS.items():
        value = _num(status.get(name))
        if value is not None:
            out[figure] = value
    max_conn = _num(variables.get("max_connections"))
    if max_conn:
        out["max_connections"] = max_conn
        if "connections" in out:
            out["connections_percent"] = round(100.0 * out["connections"] / max_conn, 3)
    requests = out.get("innodb_buffer_pool_read_requests_total")
    if requests:
        # reads = requests the pool could not serve and that went to disk
        disk = out.get("innodb_buffer_pool_reads_total", 0.0)
        out["innodb_buffer_pool_hit_percent"] = round(100.0 * (1.0 - disk / requests), 4)
    return out


def replication_from(rows: list[dict[str, Any]]) -> tuple[dict[str, float], list[Series], list[str]]:
    """(figures, series per channel, problems) from SHOW REPLICA/SLAVE STATUS rows; nothing on a primary."""
    figures: dict[str, float] = {}
    series: list[Series] = []
    problems: list[str] = []
    worst: float | None = None
    for row in rows:
        channel = str(row.get("Connection_name") or row.get("Channel_Name") or "")
        labels = {"channel": channel}
        io = str(row.get("Replica_IO_Running") or row.get("Slave_IO_Running") or "")
        sql = str(row.get("Replica_SQL_Running") or row.get("Slave_SQL_Running") or "")
        io_ok, sql_ok = io == "Yes", sql == "Yes"
        series.append(Series("replica_io_running", labels, 1.0 if io_ok else 0.0))
        series.append(Series("replica_sql_running", labels, 1.0 if sql_ok else 0.0))
        lag = _num(row.get("Seconds_Behind_Source", row.get("Seconds_Behind_Master")))
        if lag is not None:
            series.append(Series("replication_lag_s", labels, lag))
            worst = lag if worst is None else max(worst, lag)
        if not (io_ok and sql_ok):
            error = row.get("Last_IO_Error") or row.get("Last_SQL_Error") or ""
            problems.append(
                f"replication{' ' + channel if channel else ''} stopped (IO {io or '?'}, SQL {sql or '?'})"
                + (f": {error}" if error else "")
            )
    if rows:
        figures["replica"] = 1.0
        figures["replication_running"] = 0.0 if problems else 1.0
        if worst is not None:
            figures["replication_lag_s"] = worst
    return figures, series, problems


def _query(config: MysqlConfig) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]], float]:
    start = time.perf_counter()
    conn = pymysql.connect(
        host=config.host,
        port=config.port,
        user=config.user or "",
        password=config.secret() or "",
        database=config.database,
        connect_timeout=max(1, int(config.timeout_s)),
        read_timeout=max(1, int(config.timeout_s)),
        write_timeout=max(1, int(config.timeout_s)),
        cursorclass=pymysql.cursors.DictCursor,
    )
    connect_s = time.perf_counter() - start
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS")
            status = {str(r["Variable_name"]): str(r["Value"]) for r in cur.fetchall()}
            cur.execute("SHOW GLOBAL VARIABLES LIKE 'max_connections'")
            variables = {str(r["Variable_name"]): str(r["Value"]) for r in cur.fetchall()}
            replicas: list[dict[str, Any]] = []
            for statement in ("SHOW REPLICA STATUS", "SHOW SLAVE STATUS"):
                try:
                    cur.execute(statement)
                except pymysql.err.ProgrammingError:
                    continue  # older servers know only the second spelling
                except pymysql.err.OperationalError as exc:
                    if exc.args and exc.args[0] in (1227,):  # needs REPLICATION CLIENT: report no replication
                        break
                    raise
                replicas = list(cur.fetchall())
                break
    finally:
        conn.close()
    return status, variables, replicas, connect_s


@register("mysql")
class MysqlCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = MysqlConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: MysqlConfig) -> CheckResult:
        start = time.perf_counter()
        try:
            status, variables, replicas, connect_s = await asyncio.to_thread(_query, config)
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code == ACCESS_DENIED:
                return CheckResult.down(
                    "auth_failed", f"{config.target} refused the login of {config.user!r}"
                )
            if code in CANNOT_CONNECT:
                return unreachable(config.target, exc)
            return CheckResult.down("query_failed", f"{config.target}: {exc.args[-1] if exc.args else exc}")
        except pymysql.err.MySQLError as exc:
            return CheckResult.down("query_failed", f"{config.target}: {exc}")
        except OSError as exc:
            return unreachable(config.target, exc)
        figures = figures_from(status, variables)
        figures.update(self.rates.rates(f"{config.target}/{config.user}", figures, RATES))
        more, series, problems = replication_from(replicas)
        figures.update(more)
        figures["connect_ms"] = ms(connect_s)
        figures["response_ms"] = ms(time.perf_counter() - start)
        level: Status = "ok"
        code = "ok"
        message = (
            f"{figures.get('connections', 0):g} connections, {figures.get('threads_running', 0):g} running"
        )
        lag = figures.get("replication_lag_s")
        if problems:
            level, code, message = "warning", "replication_stopped", "; ".join(problems)
        elif lag is not None and lag > config.max_replication_lag_s:
            level, code = "warning", "replication_lag"
            message = f"replica {lag:g} s behind (more than {config.max_replication_lag_s:g} s)"
        return CheckResult.at_level(level, code, message, figures, series)
