"""php-fpm: the pool's status page (pm.status_path), read as JSON.

The page is usually served through the web server's FastCGI pass (nginx `fastcgi_pass`), so the
check fetches it over HTTP like a browser; `?json` is added to the URL when missing.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import StatusPageConfig, fetch_page

# status page field -> figure
FIELDS = {
    "start since": "uptime_s",
    "accepted conn": "accepted_conn_total",
    "listen queue": "listen_queue",
    "max listen queue": "max_listen_queue",
    "listen queue len": "listen_queue_len",
    "idle processes": "idle_processes",
    "active processes": "active_processes",
    "total processes": "total_processes",
    "max active processes": "max_active_processes",
    "max children reached": "max_children_reached_total",
    "slow requests": "slow_requests_total",
}
RATES = {"accepted_conn_total": "accepted_conn_per_s", "slow_requests_total": "slow_requests_per_s"}


class PhpFpmConfig(StatusPageConfig):
    """`url` is the pool's status page as served, e.g. http://127.0.0.1/fpm-status."""


def json_url(url: str) -> str:
    parts = urlsplit(url)
    if any(k == "json" for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url
    return urlunsplit(parts._replace(query=f"{parts.query}&json" if parts.query else "json"))


def parse_status(data: dict[str, Any]) -> dict[str, float] | None:
    """The figures of a php-fpm JSON status; None when it is not one."""
    if "accepted conn" not in data or "pool" not in data:
        return None
    out: dict[str, float] = {}
    for key, name in FIELDS.items():
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


@register("php_fpm")
class PhpFpmCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = PhpFpmConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: PhpFpmConfig) -> CheckResult:
        url = json_url(config.url)
        page = await fetch_page(config, url)
        if isinstance(page, CheckResult):
            return page
        try:
            data = json.loads(page.text)
        except ValueError:
            data = None
        figures = parse_status(data) if isinstance(data, dict) else None
        if figures is None:
            return CheckResult.down("unexpected_response", f"{config.url} is not a php-fpm status page")
        figures.update(self.rates.rates(config.url, figures, RATES))
        figures["response_ms"] = ms(page.elapsed_s)
        pool = str(data.get("pool", "")) if isinstance(data, dict) else ""
        message = (
            f"pool {pool}: {figures.get('active_processes', 0):g} active, "
            f"{figures.get('idle_processes', 0):g} idle, listen queue {figures.get('listen_queue', 0):g}"
        )
        return CheckResult.up(message, figures)
