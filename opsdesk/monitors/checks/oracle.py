"""Oracle Database through python-oracledb in thin mode (pure Python, no Oracle client libraries):
sessions, tablespace usage and wait classes.

The monitoring user needs SELECT on v$session, v$parameter, v$system_wait_class,
dba_tablespace_usage_metrics and dba_tablespaces (SELECT_CATALOG_ROLE gives them all).
The SQL and the mapping of its rows to figures are kept in plain functions, testable without a
server; `run` only connects and feeds them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

import oracledb
from pydantic import Field, model_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import ServerConfig, refused, unreachable

SESSIONS_SQL = """
SELECT status, type, COUNT(*) FROM v$session GROUP BY status, type
"""
SESSIONS_MAX_SQL = "SELECT value FROM v$parameter WHERE name = 'sessions'"
TABLESPACES_SQL = """
SELECT m.tablespace_name, m.used_space * t.block_size, m.tablespace_size * t.block_size, m.used_percent
FROM dba_tablespace_usage_metrics m JOIN dba_tablespaces t ON t.tablespace_name = m.tablespace_name
"""
WAITS_SQL = """
SELECT wait_class, total_waits, time_waited_micro FROM v$system_wait_class WHERE wait_class <> 'Idle'
"""
# error codes: ORA-01017 bad login, ORA-28000 locked account; DPY-6005 cannot connect
AUTH_ERRORS = ("ORA-01017", "ORA-28000", "ORA-01005")


class OracleConfig(ServerConfig):
    port: int = Field(1521, ge=1, le=65535)
    service_name: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.$#-]+$")
    sid: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_$#]+$")
    max_tablespace_percent: float = Field(90.0, gt=0, le=100, description="fuller tablespaces are a warning")

    @model_validator(mode="after")
    def _service(self) -> OracleConfig:
        if (self.service_name is None) == (self.sid is None):
            raise ValueError("give either service_name or sid")
        if not self.user or self.password is None:
            raise ValueError("user and password are required for Oracle")
        return self


class Cursor(Protocol):
    """The part of a DB-API cursor the figures need (a fake one in tests)."""

    async def execute(self, statement: str) -> Any: ...

    async def fetchall(self) -> list[Any]: ...


def session_figures(
    rows: Iterable[tuple[Any, ...]], max_sessions: Any
) -> tuple[dict[str, float], list[Series]]:
    """User sessions by status (ACTIVE, INACTIVE, ...) from (status, type, count) rows."""
    by_status: dict[str, float] = {}
    background = 0.0
    for status, kind, count in rows:
        if str(kind).upper() == "BACKGROUND":
            background += float(count)
            continue
        key = str(status).lower()
        by_status[key] = by_status.get(key, 0.0) + float(count)
    out = {
        "sessions": sum(by_status.values()),
        "active_sessions": by_status.get("active", 0.0),
        "background_sessions": background,
    }
    try:
        limit = float(max_sessions)
    except (TypeError, ValueError):
        limit = 0.0
    if limit > 0:
        out["max_sessions"] = limit
        out["sessions_percent"] = round(100.0 * (out["sessions"] + background) / limit, 3)
    series = [Series("sessions_by_status", {"status": s}, n) for s, n in sorted(by_status.items())]
    return out, series


def tablespace_figures(rows: Iterable[tuple[Any, ...]]) -> tuple[dict[str, float], list[Series]]:
    """Usage per tablespace from (name, used bytes, size bytes, used %) rows; the fullest as a figure."""
    series: list[Series] = []
    fullest = 0.0
    count = 0
    for name, used, size, percent in rows:
        labels = {"tablespace": str(name)}
        count += 1
        series.append(Series("tablespace_used_bytes", labels, float(used or 0)))
        series.append(Series("tablespace_size_bytes", labels, float(size or 0)))
        series.append(Series("tablespace_used_percent", labels, round(float(percent or 0), 3)))
        fullest = max(fullest, float(percent or 0))
    return {"tablespaces": float(count), "tablespace_max_used_percent": round(fullest, 3)}, series


def wait_series(rows: Iterable[tuple[Any, ...]]) -> list[Series]:
    """Waits and time waited per wait class (totals since startup) from (class, waits, microseconds) rows."""
    out: list[Series] = []
    for wait_class, waits, micro in rows:
        labels = {"wait_class": str(wait_class)}
        out.append(Series("wait_total", labels, float(waits or 0)))
        out.append(Series("wait_time_s_total", labels, float(micro or 0) / 1e6))
    return out


async def collect(cursor: Cursor) -> tuple[dict[str, float], list[Series]]:
    """Run the queries on `cursor` and map the rows to (figures, series)."""
    await cursor.execute(SESSIONS_SQL)
    sessions = await cursor.fetchall()
    await cursor.execute(SESSIONS_MAX_SQL)
    limit = await cursor.fetchall()
    figures, series = session_figures(sessions, limit[0][0] if limit else None)
    await cursor.execute(TABLESPACES_SQL)
    more, ts_series = tablespace_figures(await cursor.fetchall())
    figures.update(more)
    series.extend(ts_series)
    await cursor.execute(WAITS_SQL)
    series.extend(wait_series(await cursor.fetchall()))
    return figures, series


def evaluate(
    config: OracleConfig, figures: dict[str, float], series: list[Series]
) -> tuple[Status, str, str]:
    """(level, code, message): a tablespace fuller than the limit is a warning."""
    full = [
        s.labels["tablespace"]
        for s in series
        if s.name == "tablespace_used_percent" and s.value > config.max_tablespace_percent
    ]
    if full:
        names = ", ".join(sorted(full))
        return (
            "warning",
            "tablespace_full",
            f"tablespaces over {config.max_tablespace_percent:g} % full: {names}",
        )
    return "ok", "ok", f"{figures['sessions']:g} sessions ({figures['active_sessions']:g} active)"


@register("oracle")
class OracleCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = OracleConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: OracleConfig) -> CheckResult:
        start = time.perf_counter()
        try:
            conn = await oracledb.connect_async(
                user=config.user,
                password=config.secret(),
                host=config.host,
                port=config.port,
                service_name=config.service_name,
                sid=config.sid,
                tcp_connect_timeout=config.timeout_s,
                retry_count=0,
            )
        except oracledb.Error as exc:
            return _failed(config, exc)
        except OSError as exc:
            return unreachable(config.target, exc)
        connect_s = time.perf_counter() - start
        try:
            async with conn:
                conn.call_timeout = int(config.timeout_s * 1000)
                with conn.cursor() as cursor:
                    figures, series = await collect(cursor)
        except oracledb.Error as exc:
            return CheckResult.down("query_failed", f"{config.target}: {str(exc).splitlines()[0]}")
        for item in [s for s in series if s.name == "wait_time_s_total"]:
            # seconds waited per second: the average number of sessions waiting in that class
            per_s = self.rates.rate(f"{config.target}/{config.user}", item.labels["wait_class"], item.value)
            if per_s is not None:
                series.append(Series("wait_sessions", item.labels, round(per_s, 4)))
        figures["connect_ms"] = ms(connect_s)
        figures["response_ms"] = ms(time.perf_counter() - start)
        level, code, message = evaluate(config, figures, series)
        return CheckResult.at_level(level, code, message, figures, series)


def _failed(config: OracleConfig, exc: oracledb.Error) -> CheckResult:
    text = str(exc).strip()
    if any(code in text for code in AUTH_ERRORS):
        return CheckResult.down("auth_failed", f"{config.target} refused the login of {config.user!r}")
    if refused(exc):
        return CheckResult.down("connect_refused", f"connection to {config.target} refused")
    first = text.splitlines()[0] if text else type(exc).__name__
    if "timed out" in text.lower() or "DPY-6000" in text:
        return CheckResult.down("timeout", f"no answer from {config.target}: {first}")
    return CheckResult.down("connect_error", f"cannot connect to {config.target}: {first}")
