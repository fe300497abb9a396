"""nginx: its stub_status page (connections, accepted and handled connections, requests).

Active connections: 3
server accepts handled requests
 120 120 345
Reading: 0 Writing: 1 Waiting: 2
"""

from __future__ import annotations

import re
from typing import ClassVar

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import StatusPageConfig, fetch_page

_ACTIVE = re.compile(r"Active connections:\s*(\d+)")
_TOTALS = re.compile(r"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)")
_STATES = re.compile(r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)")
RATES = {"accepts_total": "accepts_per_s", "requests_total": "requests_per_s"}


class NginxConfig(StatusPageConfig):
    """`url` is the location with `stub_status;`, e.g. http://127.0.0.1/nginx_status."""


def parse_stub_status(text: str) -> dict[str, float] | None:
    """The figures of a stub_status page; None when the text is not one."""
    active, totals, states = _ACTIVE.search(text), _TOTALS.search(text), _STATES.search(text)
    if not (active and totals and states):
        return None
    accepts, handled, requests = (float(v) for v in totals.groups())
    return {
        "active_connections": float(active[1]),
        "accepts_total": accepts,
        "handled_total": handled,
        "dropped_total": accepts - handled,  # refused for lack of worker connections
        "requests_total": requests,
        "reading": float(states[1]),
        "writing": float(states[2]),
        "waiting": float(states[3]),
    }


@register("nginx")
class NginxCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = NginxConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: NginxConfig) -> CheckResult:
        page = await fetch_page(config)
        if isinstance(page, CheckResult):
            return page
        figures = parse_stub_status(page.text)
        if figures is None:
            return CheckResult.down("unexpected_response", f"{config.url} is not an nginx stub_status page")
        figures.update(self.rates.rates(config.url, figures, RATES))
        figures["response_ms"] = ms(page.elapsed_s)
        return CheckResult.up(
            f"{figures['active_connections']:g} active connections, {figures['requests_total']:g} requests",
            figures,
        )
