"""Tomcat: the manager's status in XML (/manager/status?XML=true, a user with role manager-status).

JVM memory comes from <jvm><memory free= total= max=/>; each connector ("http-nio-8080") gives its
threads (<threadInfo>) and request counters (<requestInfo>), reported per connector as series and
summed as plain figures.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, ms
from opsdesk.monitors.checks.counters import Rates
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.servers import StatusPageConfig, fetch_page

THREADS = {
    "maxThreads": "threads_max",
    "currentThreadCount": "threads_current",
    "currentThreadsBusy": "threads_busy",
}
REQUESTS = {
    "requestCount": "requests_total",
    "errorCount": "errors_total",
    "processingTime": "processing_ms_total",
    "bytesSent": "bytes_sent_total",
    "bytesReceived": "bytes_received_total",
}
RATES = {
    "requests_total": "requests_per_s",
    "errors_total": "errors_per_s",
    "bytes_sent_total": "bytes_sent_per_s",
}


class TomcatConfig(StatusPageConfig):
    """`url` is the manager status page, e.g. http://127.0.0.1:8080/manager/status; user and password
    are a Tomcat user with the manager-status role."""


def xml_url(url: str) -> str:
    parts = urlsplit(url)
    if any(k == "XML" for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url
    return urlunsplit(parts._replace(query=f"{parts.query}&XML=true" if parts.query else "XML=true"))


def _number(element: ET.Element, name: str) -> float | None:
    raw = element.get(name)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def parse_status(text: str) -> tuple[dict[str, float], list[Series]] | None:
    """(summed figures, per-connector series) of a manager status XML; None if it is not one."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    memory = root.find("./jvm/memory")
    if root.tag != "status" or memory is None:
        return None
    figures: dict[str, float] = {}
    for attr, name in (("free", "jvm_free_bytes"), ("total", "jvm_total_bytes"), ("max", "jvm_max_bytes")):
        value = _number(memory, attr)
        if value is not None:
            figures[name] = value
    if "jvm_free_bytes" in figures and "jvm_total_bytes" in figures:
        figures["jvm_used_bytes"] = figures["jvm_total_bytes"] - figures["jvm_free_bytes"]
        if figures.get("jvm_max_bytes", 0) > 0:
            figures["jvm_used_percent"] = round(
                100.0 * figures["jvm_used_bytes"] / figures["jvm_max_bytes"], 3
            )
    series: list[Series] = []
    connectors = root.findall("./connector")
    for connector in connectors:
        label = {"connector": (connector.get("name") or "").strip("\"'")}
        for tag, names in (("threadInfo", THREADS), ("requestInfo", REQUESTS)):
            info = connector.find(tag)
            if info is None:
                continue
            for attr, name in names.items():
                value = _number(info, attr)
                if value is None:
                    continue
                series.append(Series(name, label, value))
                figures[name] = figures.get(name, 0.0) + value
    figures["connectors"] = float(len(connectors))
    return figures, series


@register("tomcat")
class TomcatCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = TomcatConfig

    def __init__(self) -> None:
        self.rates = Rates()

    async def run(self, config: TomcatConfig) -> CheckResult:
        page = await fetch_page(config, xml_url(config.url))
        if isinstance(page, CheckResult):
            return page
        parsed = parse_status(page.text)
        if parsed is None:
            return CheckResult.down(
                "unexpected_response", f"{config.url} is not a Tomcat manager status page"
            )
        figures, series = parsed
        figures.update(self.rates.rates(config.url, figures, RATES))
        for item in [s for s in series if s.name in RATES]:
            per_s = self.rates.rate(f"{config.url}#{item.labels['connector']}", item.name, item.value)
            if per_s is not None:
                series.append(Series(RATES[item.name], item.labels, round(per_s, 3)))
        figures["response_ms"] = ms(page.elapsed_s)
        used = figures.get("jvm_used_bytes", 0.0) / 1048576
        message = f"JVM {used:.0f} MiB used, {figures.get('threads_busy', 0):g} busy threads"
        return CheckResult.at_level("ok", "ok", message, figures, series)
