"""Prometheus scrape: read an exporter's /metrics page (node_exporter, mysqld_exporter, ...) into the
metric store, for customers who already run exporters. Runs on the platform's probe or on an agent.

Every sample becomes a series named `prom_<its name>` (stored, like every check figure, under
`check_prom_<name>`, with the check's monitor/customer/asset labels), keeping the exporter's own
labels: `node_load1` is found as `check_prom_node_load1{monitor="7"}`, a histogram bucket as
`check_prom_http_request_duration_seconds_bucket{le="0.5",...}`. An exporter label that clashes
with one the platform sets (monitor, customer, asset, type) is kept as `exported_<name>`, as
Prometheus does. Samples are skipped, and counted in `skipped_samples`, when their value is NaN or
infinite, a label value is longer than 256 characters or the name is too long to store; the
`<name>_created` samples of counters, histograms and summaries are left out (they are start times,
not figures). `metric_allow` (a regular expression the whole sample name must match) narrows what
is kept; more samples than `max_samples` after it fail the run rather than store a partial scrape.

The exporter answering with an error or not at all is critical; a page that is not the
exposition format, or too many samples, is unknown.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from typing import ClassVar

import aiohttp
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, http_url, ms
from opsdesk.monitors.checks.registry import register

RESERVED_LABELS = frozenset({"monitor", "customer", "asset", "type"})
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,118}$")  # room for "exported_" within 128
MAX_SERIES_NAME = 128
MAX_LABEL_VALUE = 256
ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
_WITH_CREATED = ("counter", "histogram", "summary", "gaugehistogram")


class PrometheusConfig(CheckConfig):
    url: str
    bearer_token: SecretStr | None = None
    basic_user: str | None = Field(None, max_length=256)
    basic_password: SecretStr | None = Field(None, validate_default=True)  # the auth rule runs always
    metric_allow: str | None = Field(None, max_length=1000, description="regex the sample name must match")
    max_samples: int = Field(5000, ge=1, le=50_000)
    verify_tls: bool = True
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("metric_allow")
    @classmethod
    def _allow(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("basic_password")
    @classmethod
    def _auth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("bearer_token") and (info.data.get("basic_user") or value):
            raise ValueError("use a bearer token or basic auth, not both")
        if value and not info.data.get("basic_user"):
            raise ValueError("basic_password needs basic_user")
        return value


class ScrapeRefused(Exception):
    """The page was read but cannot be stored; the message says why."""


@register("prometheus")
class PrometheusCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = PrometheusConfig

    async def run(self, config: PrometheusConfig) -> CheckResult:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(config.timeout_s):
                status, content_type, body = await _fetch(config)
        except TimeoutError:
            return CheckResult.at_level(
                "critical", "timeout", f"no answer from {config.url} within {config.timeout_s:g} s"
            )
        except aiohttp.ClientConnectorError as exc:
            return CheckResult.at_level("critical", "connect_error", f"cannot connect to {config.url}: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return CheckResult.at_level("critical", "protocol_error", f"scrape of {config.url} failed: {exc}")
        metrics = {"response_ms": ms(time.perf_counter() - start), "body_bytes": float(len(body))}
        if status >= 300:
            metrics["status_code"] = float(status)
            return CheckResult.at_level(
                "critical", "status_mismatch", f"{config.url} answered HTTP {status}", metrics
            )
        if len(body) > config.max_body_bytes:
            return CheckResult.at_level(
                "unknown", "scrape_too_large", f"page larger than {config.max_body_bytes} bytes", metrics
            )
        try:
            series, skipped = samples(body.decode("utf-8", errors="replace"), content_type, config)
        except ScrapeRefused as exc:
            return CheckResult.at_level("unknown", "scrape_refused", str(exc), metrics)
        metrics["samples"] = float(len(series))
        metrics["skipped_samples"] = float(skipped)
        note = f", {skipped} skipped (NaN/Inf or unstorable labels)" if skipped else ""
        return CheckResult.at_level(
            "ok", "ok", f"{len(series)} samples from {config.url}{note}", metrics, series
        )


async def _fetch(config: PrometheusConfig) -> tuple[int, str, bytes]:
    headers = {"Accept": ACCEPT, "User-Agent": "opsdesk-probe/1"}
    if config.bearer_token is not None:
        headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
    elif config.basic_user is not None:
        password = config.basic_password.get_secret_value() if config.basic_password else ""
        pair = f"{config.basic_user}:{password}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
    connector = aiohttp.TCPConnector(ssl=config.verify_tls, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(config.url, headers=headers, allow_redirects=True) as resp,
    ):
        body = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            body += chunk
            if len(body) > config.max_body_bytes:
                break  # read one chunk too many: enough to know it is too large
        return resp.status, resp.headers.get("Content-Type", ""), bytes(body)


def samples(text: str, content_type: str, config: PrometheusConfig) -> tuple[list[Series], int]:
    """The page's samples as series, and how many were skipped; ScrapeRefused when unusable."""
    allow = re.compile(config.metric_allow) if config.metric_allow else None
    parse = openmetrics_families if "openmetrics" in content_type else text_string_to_metric_families
    out: list[Series] = []
    skipped = 0
    with_created: set[str] = set()
    try:
        for family in parse(text):
            if family.type in _WITH_CREATED:
                with_created.add(family.name)
            for sample in family.samples:
                name = sample.name
                if name.endswith("_created") and name.removesuffix("_created") in with_created:
                    continue
                if allow is not None and not allow.fullmatch(name):
                    continue
                labels = _labels(sample.labels)
                value = float(sample.value)
                if labels is None or not math.isfinite(value) or len(name) + 5 > MAX_SERIES_NAME:
                    skipped += 1
                    continue
                out.append(Series(f"prom_{name}", labels, value))
                if len(out) > config.max_samples:
                    raise ScrapeRefused(
                        f"more than {config.max_samples} samples (max_samples); "
                        "narrow them with metric_allow or raise max_samples"
                    )
    except ScrapeRefused:
        raise
    except Exception as exc:  # the parser raises ValueError and friends on a page it cannot read
        raise ScrapeRefused(f"not the Prometheus exposition format: {type(exc).__name__}: {exc}") from None
    return out, skipped


def _labels(raw: dict[str, str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not _NAME.match(key) or key.startswith("__") or len(value) > MAX_LABEL_VALUE:
            return None
        out[f"exported_{key}" if key in RESERVED_LABELS else key] = value
    return out
