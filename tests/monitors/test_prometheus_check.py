"""Prometheus scrape against real exporters on loopback, stored into a real metric store."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, start_http_server

from opsdesk.metrics import Matcher, open_store
from opsdesk.monitors import checks
from opsdesk.monitors.checks.base import CheckResult
from opsdesk.monitors.models import Monitor
from opsdesk.monitors.results import Outcome, samples_for
from tests.conftest import free_port
from tests.monitors.conftest import run_check

NODE_EXPORTER_LIKE = """\
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1.2345678e+10
node_filesystem_avail_bytes{device="/dev/sda2",fstype="ext4",mountpoint="/var"} 9.87e+09
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 123456.78
node_cpu_seconds_total{cpu="0",mode="user"} 2345.5
# HELP weird_values Values the store cannot keep.
# TYPE weird_values gauge
weird_values{kind="nan"} NaN
weird_values{kind="inf"} +Inf
weird_values{kind="ok"} 1
# TYPE clash gauge
clash{customer="evil",monitor="1",asset="9",instance="db1"} 7
# TYPE long_label gauge
long_label{v="%s"} 1
""" % ("x" * 300)


class Exporter(BaseHTTPRequestHandler):
    body = NODE_EXPORTER_LIKE.encode()
    status = 200
    auth: str | None = None

    def do_GET(self) -> None:
        if self.auth is not None and self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fixture_url() -> Iterator[str]:
    yield from serve(Exporter)


def by_key(result: CheckResult) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in result.series}


def test_client_exporter_values_reach_the_metric_store(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    requests = Counter("app_requests", "Requests served.", ["path"], registry=registry)
    queue = Gauge("app_queue_depth", "Jobs waiting.", registry=registry)
    latency = Histogram("app_latency_seconds", "Latency.", buckets=(0.1, 0.5), registry=registry)
    size = Summary("app_payload_bytes", "Payload sizes.", registry=registry)
    requests.labels(path="/a").inc(3)
    requests.labels(path="/b").inc(5)
    queue.set(17.5)
    for seconds in (0.05, 0.3, 0.3, 2.0):
        latency.observe(seconds)
    size.observe(1000)
    size.observe(3000)
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        result = run_check("prometheus", url=f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert result.level == "ok", result.message
    got = by_key(result)
    assert got[("prom_app_requests_total", (("path", "/a"),))] == 3
    assert got[("prom_app_requests_total", (("path", "/b"),))] == 5
    assert got[("prom_app_queue_depth", ())] == 17.5
    assert got[("prom_app_latency_seconds_bucket", (("le", "0.1"),))] == 1
    assert got[("prom_app_latency_seconds_bucket", (("le", "0.5"),))] == 3
    assert got[("prom_app_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert got[("prom_app_latency_seconds_count", ())] == 4
    assert got[("prom_app_latency_seconds_sum", ())] == pytest.approx(2.65)
    assert got[("prom_app_payload_bytes_sum", ())] == 4000
    assert not [name for name, _ in got if name.endswith("_created")]  # start times are not figures

    # into the metric store exactly as the probe's result writer stores them
    monitor = Monitor(id=7, customer_id=3, asset_id=None, type="prometheus")
    store = open_store(f"sqlite:///{tmp_path / 'metrics.db'}")
    try:
        store.write(samples_for(monitor, Outcome(7, datetime.now(UTC), result)))
        [b] = store.latest([Matcher.name("check_prom_app_requests_total"), Matcher.eq("path", "/b")])
        assert b.value == 5 and b.series.get("monitor") == "7" and b.series.get("customer") == "3"
        [q] = store.latest([Matcher.name("check_prom_app_queue_depth"), Matcher.eq("monitor", "7")])
        assert q.value == 17.5
    finally:
        store.close()


def test_node_exporter_fixture(fixture_url: str) -> None:
    result = run_check("prometheus", url=fixture_url)
    assert result.level == "ok"
    got = by_key(result)
    assert got[("prom_node_load1", ())] == 0.42
    fs = (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))
    assert got[("prom_node_filesystem_avail_bytes", fs)] == 12345678000
    assert got[("prom_node_cpu_seconds_total", (("cpu", "0"), ("mode", "user")))] == 2345.5
    # NaN, +Inf and a 300-character label value are skipped and counted
    assert ("prom_weird_values", (("kind", "ok"),)) in got
    assert not [k for k in got if k[0] in ("prom_weird_values",) and k[1] != (("kind", "ok"),)]
    assert not [k for k in got if k[0] == "prom_long_label"]
    assert result.metrics["skipped_samples"] == 3
    # the platform's own labels cannot be forged by an exporter
    clash = dict(next(labels for name, labels in got if name == "prom_clash"))
    assert clash == {
        "exported_customer": "evil",
        "exported_monitor": "1",
        "exported_asset": "9",
        "instance": "db1",
    }
    assert result.metrics["samples"] == len(result.series) == 7


def test_allow_list_and_sample_limit(fixture_url: str) -> None:
    result = run_check("prometheus", url=fixture_url, metric_allow="node_(load1|cpu_.*)")
    assert {s.name for s in result.series} == {"prom_node_load1", "prom_node_cpu_seconds_total"}
    refused = run_check("prometheus", url=fixture_url, max_samples=3)
    assert (refused.level, refused.code) == ("unknown", "scrape_refused")
    assert "more than 3 samples" in refused.message and refused.series == []


class AuthExporter(Exporter):
    auth = "Basic " + base64.b64encode(b"scraper:s3cret").decode()


class BearerExporter(Exporter):
    auth = "Bearer tok-123"


class BrokenExporter(Exporter):
    body = b"this is { not the exposition format\n"


class FailingExporter(Exporter):
    status = 503


@pytest.fixture
def auth_url() -> Iterator[str]:
    yield from serve(AuthExporter)


@pytest.fixture
def bearer_url() -> Iterator[str]:
    yield from serve(BearerExporter)


def test_basic_auth_and_bearer_token(auth_url: str, bearer_url: str) -> None:
    assert run_check("prometheus", url=auth_url).code == "status_mismatch"  # 401 without credentials
    ok = run_check("prometheus", url=auth_url, basic_user="scraper", basic_password="s3cret")
    assert ok.level == "ok" and ok.metrics["samples"] > 0
    assert run_check("prometheus", url=bearer_url, bearer_token="tok-123").level == "ok"
    wrong = run_check("prometheus", url=bearer_url, bearer_token="nope")
    assert (wrong.level, wrong.message) == ("critical", f"{bearer_url} answered HTTP 401")


def test_secrets_are_secret_str() -> None:
    secret = "zq-secret-9"
    config = checks.validate("prometheus", {"url": "http://127.0.0.1:9100/metrics", "bearer_token": secret})
    assert secret not in repr(config) and secret not in config.model_dump_json()


@pytest.mark.parametrize(
    ("handler", "level", "code"),
    [(BrokenExporter, "unknown", "scrape_refused"), (FailingExporter, "critical", "status_mismatch")],
)
def test_broken_and_failing_exporters(handler: type[Exporter], level: str, code: str) -> None:
    for url in serve(handler):
        result = run_check("prometheus", url=url)
        assert (result.level, result.code) == (level, code), result.message


def test_exporter_down_is_critical() -> None:
    result = run_check("prometheus", url=f"http://127.0.0.1:{free_port()}/metrics")
    assert (result.level, result.code) == ("critical", "connect_error")


@pytest.mark.parametrize(
    "definition",
    [
        {"url": "ftp://x/metrics"},
        {"url": "http://x/metrics", "metric_allow": "(bad"},
        {"url": "http://x/metrics", "bearer_token": "a", "basic_user": "u"},
        {"url": "http://x/metrics", "basic_password": "p"},
    ],
)
def test_bad_definitions(definition: dict[str, Any]) -> None:
    with pytest.raises(checks.CheckDefinitionError):
        checks.validate("prometheus", definition)
