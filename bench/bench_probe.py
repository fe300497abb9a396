"""The probe at scale: 20,000 HTTP checks at a 60 s interval against a local nginx, one process.

Targets on loopback: 70% a fast page with a keyword, 10% a slow page (about 2 s), 10% a 500, 10%
over TLS. The probe runs in this process with its real scheduler, check code and result writer
(SQLite state store and metric store). Figures: checks completed per second, scheduling lag
(start minus due time) p50 and p99, runs skipped because the previous one was still running, and
CPU used. The baseline is the schedule itself: checks/interval is the rate every check on time
needs. The HTTP client was chosen by bench/bench_http_clients.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opsdesk.core import migrate
from opsdesk.core.config import load_settings
from opsdesk.core.runtime import build_runtime
from opsdesk.monitors.checks import validate
from opsdesk.monitors.models import Monitor, Runner
from opsdesk.monitors.probe import Probe
from opsdesk.monitors.results import ResultWriter
from opsdesk.tenancy.models import Customer
from tests.nginx_fixture import start_nginx


def definitions(n: int, nginx: object, interval: int) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        kind = i % 10
        if kind < 7:
            cfg = {"url": nginx.url("/"), "keyword": nginx.keyword}  # type: ignore[attr-defined]
        elif kind == 7:
            cfg = {"url": nginx.url("/slow"), "timeout_s": 5}  # type: ignore[attr-defined]
        elif kind == 8:
            cfg = {"url": nginx.url("/error")}  # type: ignore[attr-defined]
        else:
            cfg = {"url": nginx.url("/", nginx.https_ca), "ca_file": nginx.ca_file}  # type: ignore[attr-defined]
        cfg["interval_s"] = interval
        out.append(validate("http", cfg).model_dump(mode="json"))
    return out


async def run(probe: Probe, warmup: float, seconds: float) -> None:
    task = asyncio.create_task(probe.serve())
    # The first interval registers every new series in the metric store: measured apart.
    await asyncio.sleep(warmup)
    probe.warmup_lags = sorted(probe.lags_ms)
    probe.lags_ms.clear()
    probe.skipped = 0
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=20_000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--minutes", type=float, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nginx = start_nginx(Path(tmp) / "nginx")
        try:
            os.environ.update(OPSDESK_DATA_DIR=str(Path(tmp) / "data"))
            settings = load_settings()
            migrate.upgrade(settings.database_url)
            rt = build_runtime(settings)
            with rt.sessions.begin() as s:
                customer = Customer(code="PROBE", name="Probe bench")
                s.add(customer)
                s.flush()
                s.execute(
                    insert(Monitor),
                    [
                        {
                            "customer_id": customer.id,
                            "name": f"check {i}",
                            "type": "http",
                            "config": cfg,
                            "runner": Runner.platform,
                            "enabled": True,
                        }
                        for i, cfg in enumerate(definitions(args.checks, nginx, args.interval))
                    ],
                )
            writer = ResultWriter(rt)
            probe = Probe(rt, writer)
            warmup = args.interval + 10
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.monotonic()
            asyncio.run(run(probe, warmup, args.minutes * 60))
            elapsed = time.monotonic() - start
            writer.close()
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            with rt.sessions() as s:
                ran = s.scalar(
                    select(func.count()).select_from(Monitor).where(Monitor.last_run_at.is_not(None))
                )
            rt.close()
        finally:
            nginx.stop()
    lags = sorted(probe.lags_ms)
    started = len(lags)
    first: list[float] = probe.warmup_lags  # type: ignore[attr-defined]
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    need = args.checks / args.interval
    print(
        f"probe: {args.checks} HTTP checks every {args.interval} s against local nginx, {args.minutes:g} min"
    )
    print(f"  needed (baseline: every check on time): {need:,.0f} checks/s")
    print(
        f"  first interval (series created): lag p50 {statistics.median(first):.1f} ms, "
        f"p99 {first[int(len(first) * 0.99)]:.1f} ms"
    )
    print(
        f"  then, for {args.minutes:g} min: started {started / (args.minutes * 60):,.0f} checks/s; "
        f"{ran} of {args.checks} checks have a result"
    )
    print(
        f"  scheduling lag p50 {statistics.median(lags):.1f} ms, p99 {lags[int(len(lags) * 0.99)]:.1f} ms, "
        f"max {lags[-1]:.1f} ms"
    )
    print(f"  skipped (previous run still going): {probe.skipped}")
    print(f"  CPU: {cpu:.1f} s over {elapsed:.0f} s (both phases) = {cpu / elapsed:.0%} of one core")


if __name__ == "__main__":
    main()
