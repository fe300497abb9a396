"""Monthly report of a large customer: time to gather the figures, to render HTML and to print PDF.

Seeds one customer with HOSTS servers holding a full month (October 2026, Beijing time) of CPU,
memory and two filesystems at one sample per STEP minutes, CHECKS website checks with outages,
and INCIDENTS incidents. Then, ROUNDS times: gathers the month (reports.service.monthly), renders
the HTML and prints the PDF in zh-CN and English.

Baselines measured in the same run: the metric store's own reads that gathering needs (the same
read_range calls with no report code around them), and WeasyPrint printing a one-page fault report.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet
from pypdf import PdfReader

from opsdesk.alerting.models import Incident, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.core import migrate
from opsdesk.core.config import Settings
from opsdesk.core.runtime import build_runtime
from opsdesk.hosts.models import HostState
from opsdesk.metrics import Matcher, Sample, SeriesKey
from opsdesk.metrics.store import DAY_MS, HOUR_MS
from opsdesk.monitors.models import Monitor, MonitorEvent, MonitorState
from opsdesk.reports import render, service
from opsdesk.reports.models import Report
from opsdesk.reports.period import month_bounds
from opsdesk.tenancy.models import Asset, AssetType, Customer

T = TypeVar("T")
START, END = month_bounds(2026, 10)
SERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("cpu_usage_percent", {"mode": "total"}),
    ("memory_used_percent", {}),
    ("fs_used_percent", {"mount": "/"}),
    ("fs_used_percent", {"mount": "/data"}),
)


def timed(fn: Callable[[], T], rounds: int) -> tuple[float, T]:
    """Median seconds of `rounds` calls, and the last call's result."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--step-min", type=int, default=10, help="minutes between samples")
    ap.add_argument("--checks", type=int, default=20)
    ap.add_argument("--incidents", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    url = f"sqlite:///{tmp / 'opsdesk.db'}"
    migrate.upgrade(url)
    security = {"secret_key": "bench", "encryption_key": Fernet.generate_key().decode()}
    rt = build_runtime(Settings(data_dir=tmp, database={"url": url}, security=security))
    with rt.sessions.begin() as s:
        customer = Customer(code="BIG", name="Big Retail 大型零售", language="zh-CN")
        s.add(customer)
        s.flush()
        hosts = [
            Asset(customer_id=customer.id, type=AssetType.server, name=f"app-{n:03d}")
            for n in range(args.hosts)
        ]
        s.add_all(hosts)
        s.flush()
        s.add_all(HostState(customer_id=customer.id, asset_id=h.id, first_seen_at=START - timedelta(days=30),
                            last_seen_at=END, interval_s=15) for h in hosts)  # fmt: skip
        for n in range(args.checks):
            m = Monitor(customer_id=customer.id, name=f"site-{n:02d}", type="http", config={},
                        created_at=START - timedelta(days=30))  # fmt: skip
            s.add(m)
            s.flush()
            down, outage = START + timedelta(hours=rng.uniform(0, 700)), rng.uniform(1, 90)
            s.add_all([
                MonitorEvent(customer_id=customer.id, monitor_id=m.id, at=START - timedelta(days=1),
                             from_state=MonitorState.unknown, to_state=MonitorState.up),
                MonitorEvent(customer_id=customer.id, monitor_id=m.id, at=down,
                             from_state=MonitorState.up, to_state=MonitorState.down),
                MonitorEvent(customer_id=customer.id, monitor_id=m.id, at=down + timedelta(minutes=outage),
                             from_state=MonitorState.down, to_state=MonitorState.up),
            ])  # fmt: skip
        for n in range(args.incidents):
            at = START + timedelta(hours=rng.uniform(0, 740))
            s.add(Incident(customer_id=customer.id, asset_id=hosts[n % len(hosts)].id, title=f"incident {n}",
                           severity=rng.choice(list(Severity)), status=IncidentStatus.resolved, opened_at=at,
                           acknowledged_at=at + timedelta(minutes=rng.uniform(1, 15)),
                           resolved_at=at + timedelta(minutes=rng.uniform(20, 300))))  # fmt: skip
        customer_id, host_ids = customer.id, [h.id for h in hosts]
    start_ms, end_ms = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    step_ms = args.step_min * 60_000
    t0 = time.perf_counter()
    written = 0
    for asset in host_ids:
        batch = []
        for name, labels in SERIES:
            key = SeriesKey({"__name__": name, "asset": str(asset), "customer": str(customer_id), **labels})
            batch += [Sample(key, t, rng.uniform(5, 95)) for t in range(start_ms + 30_000, end_ms, step_ms)]
        written += rt.metrics.write(batch)
    seeded_s = time.perf_counter() - t0

    def store_reads() -> None:  # what gathering needs from the store, and nothing else
        for asset in host_ids:
            for name, labels in SERIES[:3]:
                matchers = [Matcher.eq("asset", str(asset)), Matcher.name(name)]
                rt.metrics.read_range(
                    matchers + [Matcher.eq(k, v) for k, v in labels.items()], start_ms, end_ms, DAY_MS
                )
            rt.metrics.read_range([Matcher.eq("asset", str(asset)), Matcher.name("memory_used_percent")],
                                  start_ms, end_ms, HOUR_MS)  # fmt: skip

    def gather() -> Report:
        with rt.sessions.begin() as s:
            found = s.get(Customer, customer_id)
            assert found is not None
            report = service.monthly(s, rt.metrics, found, 2026, 10)
            s.expunge(report)
            return report

    reads_s, _ = timed(store_reads, args.rounds)
    gather_s, report = timed(gather, args.rounds)
    html_s, html = timed(lambda: render.html(report, "zh-CN", rt.settings), args.rounds)
    pdf_zh_s, pdf_zh = timed(lambda: render.pdf(report, "zh-CN", rt.settings), args.rounds)
    pdf_en_s, pdf_en = timed(lambda: render.pdf(report, "en", rt.settings), args.rounds)
    with rt.sessions.begin() as s:
        incident = s.query(Incident).first()
        assert incident is not None
        fault = service.fault(s, incident)
        s.expunge(fault)
    one_page_s, _ = timed(lambda: render.pdf(fault, "zh-CN", rt.settings), args.rounds)
    pages = len(PdfReader(io.BytesIO(pdf_zh)).pages)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rt.close()
    print(f"medians of {args.rounds} rounds")
    print(f"customer: {args.hosts} servers x {len(SERIES)} series, one sample per {args.step_min} min")
    print(f"  {written:,} samples (seeded in {seeded_s:.1f} s)", end="")
    print(f", {args.checks} checks, {args.incidents} incidents")
    print(f"gather the month: {gather_s * 1000:8.0f} ms")
    print(f"  baseline, the store reads alone: {reads_s * 1000:8.0f} ms")
    print(f"render HTML:      {html_s * 1000:8.0f} ms ({len(html) / 1024:.0f} KiB)")
    print(f"print PDF zh-CN:  {pdf_zh_s * 1000:8.0f} ms ({len(pdf_zh) / 1024:.0f} KiB, {pages} pages)")
    print(f"print PDF en:     {pdf_en_s * 1000:8.0f} ms ({len(pdf_en) / 1024:.0f} KiB)")
    print(f"  baseline: a one-page fault report PDF: {one_page_s * 1000:5.0f} ms")
    print(f"peak RSS:         {rss_mib:8.0f} MiB")


if __name__ == "__main__":
    main()
