"""Redis: up, memory, clients, operations per second, evictions and replication, from INFO.

On a primary each connected replica gives series replica_lag_bytes (its offset behind ours) and
replica_lag_s (seconds since it last acknowledged); on a replica, whether the link to its primary
is up (a broken link is a warning: the replica serves, but stale data).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import redis.asyncio as aioredis
import redis.exceptions as rexc
from pydantic import Field
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import ServerConfig, unreachable

# INFO field -> figure
FIELDS = {
    "uptime_in_seconds": "uptime_s",
    "used_memory": "used_memory_bytes",
    "used_memory_rss": "used_memory_rss_bytes",
    "used_memory_peak": "used_memory_peak_bytes",
    "maxmemory": "maxmemory_bytes",
    "mem_fragmentation_ratio": "mem_fragmentation_ratio",
    "connected_clients": "connected_clients",
    "blocked_clients": "blocked_clients",
    "rejected_connections": "rejected_connections_total",
    "instantaneous_ops_per_sec": "instantaneous_ops_per_s",
    "total_commands_processed": "commands_total",
    "total_connections_received": "connections_total",
    "evicted_keys": "evicted_keys_total",
    "expired_keys": "expired_keys_total",
    "keyspace_hits": "keyspace_hits_total",
    "keyspace_misses": "keyspace_misses_total",
    "connected_slaves": "connected_replicas",
    "master_repl_offset": "repl_offset",
}
RATES = {
    "commands_total": "ops_per_s",
    "evicted_keys_total": "evicted_keys_per_s",
    "expired_keys_total": "expired_keys_per_s",
    "keyspace_hits_total": "keyspace_hits_per_s",
    "keyspace_misses_total": "keyspace_misses_per_s",
}


class RedisConfig(ServerConfig):
    port: int = Field(6379, ge=1, le=65535)
    user: str | None = Field(None, max_length=128, description="ACL user; empty for the default user")
    tls: bool = False


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def figures_from(info: dict[str, Any]) -> tuple[dict[str, float], list[Series], list[str]]:
    """(figures, replica series, problems) from a parsed INFO reply."""
    out: dict[str, float] = {}
    for key, name in FIELDS.items():
        value = _num(info.get(key))
        if value is not None:
            out[name] = value
    if out.get("maxmemory_bytes"):
        out["memory_percent"] = round(100.0 * out["used_memory_bytes"] / out["maxmemory_bytes"], 3)
    lookups = out.get("keyspace_hits_total", 0.0) + out.get("keyspace_misses_total", 0.0)
    if lookups:
        out["keyspace_hit_percent"] = round(100.0 * out["keyspace_hits_total"] / lookups, 4)
    series: list[Series] = []
    problems: list[str] = []
    role = str(info.get("role", ""))
    out["replica"] = 1.0 if role in ("slave", "replica") else 0.0
    if out["replica"]:
        up = str(info.get("master_link_status", "")) == "up"
        out["master_link_up"] = 1.0 if up else 0.0
        last_io = _num(info.get("master_last_io_seconds_ago"))
        if last_io is not None and last_io >= 0:
            out["master_last_io_s"] = last_io
        offset = _num(info.get("slave_repl_offset"))
        if offset is not None:
            out["replica_offset"] = offset
        if not up:
            where = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
            problems.append(f"replica link to primary {where} is down")
    else:
        master_offset = out.get("repl_offset", 0.0)
        for key, value in info.items():
            if not (key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict)):
                continue
            labels = {"replica": f"{value.get('ip', '?')}:{value.get('port', '?')}"}
            offset = _num(value.get("offset"))
            if offset is not None:
                series.append(Series("replica_lag_bytes", labels, max(master_offset - offset, 0.0)))
            lag = _num(value.get("lag"))
            if lag is not None:
                series.append(Series("replica_lag_s", labels, lag))
            series.append(Series("replica_online", labels, 1.0 if value.get("state") == "online" else 0.0))
    return out, series, problems


@register("redis")
class RedisCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = RedisConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: RedisConfig) -> CheckResult:
        start = time.perf_counter()
        client = aioredis.Redis(
            host=config.host,
            port=config.port,
            username=config.user or None,
            password=config.secret() or None,
            ssl=config.tls,
            socket_timeout=config.timeout_s,
            socket_connect_timeout=config.timeout_s,
            retry=Retry(NoBackoff(), 0),  # one attempt: the runner's attempts setting decides retries
            single_connection_client=True,
        )
        try:
            info: dict[str, Any] = await client.info("all")
        except (rexc.AuthenticationError, rexc.AuthenticationWrongNumberOfArgsError):
            return CheckResult.down("auth_failed", f"{config.target} refused the password")
        except rexc.ResponseError as exc:
            if "NOAUTH" in str(exc) or "NOPERM" in str(exc):
                return CheckResult.down("auth_failed", f"{config.target}: {exc}")
            return CheckResult.down("query_failed", f"{config.target}: {exc}")
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            return unreachable(config.target, exc)
        finally:
            await client.aclose()
        figures, series, problems = figures_from(info)
        figures.update(self.rates.rates(f"{config.target}/{config.user}", figures, RATES))
        figures["response_ms"] = ms(time.perf_counter() - start)
        level: Status = "ok"
        code = "ok"
        message = (
            f"{figures.get('used_memory_bytes', 0) / 1048576:.1f} MiB used, "
            f"{figures.get('connected_clients', 0):g} clients"
        )
        if problems:
            level, code, message = "warning", "replication_stopped", "; ".join(problems)
        return CheckResult.at_level(level, code, message, figures, series)
