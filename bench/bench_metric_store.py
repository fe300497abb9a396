"""Metric store: bytes per sample, bulk write throughput and a 30-day chart query.

Simulates node-exporter-like hosts (49 series each: CPU seconds per CPU and mode, load,
memory, filesystems, disk and network counters, processes) scraped every 15 s with a few ms of
timestamp jitter; counters rise monotonically at the resolution the kernel reports them in,
gauges wander. Prints, each beside a baseline measured in the same run (a row-per-sample SQLite
table keyed by series and time, WITHOUT ROWID, written with executemany):

- disk: file bytes per stored sample after one simulated day (VACUUM, WAL checkpointed),
- write: store-level samples/s, no HTTP and no validation,
- query: p50/p95 of a 30-day chart of one host's CPU (8 series) at a 1 h step.

`--hosts` sets the hosts in the one-day disk set (default 100; 1,000 is the issue's figure and
takes about ten times longer; bytes per sample do not depend on the host count).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from opsdesk.metrics import Matcher, SeriesKey, open_store
from opsdesk.metrics.types import Sample

STEP_MS = 15_000
DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

Update = Callable[[float], float]


def _counter(rnd: random.Random, per_tick: float, quantum: float, burst: float = 0.0) -> Update:
    """A counter rising by about per_tick every scrape, in the kernel's units (quantum)."""
    digits = max(0, -round(__import__("math").log10(quantum))) if quantum < 1 else 0

    def step(v: float) -> float:
        inc = per_tick * rnd.uniform(0.5, 1.5)
        if burst and rnd.random() < 0.05:
            inc *= burst
        nxt = v + round(inc / quantum) * quantum
        return round(nxt, digits) if digits else float(int(nxt))

    return step


def _gauge(rnd: random.Random, lo: float, hi: float, move: float, quantum: float) -> Update:
    """A bounded random walk; most scrapes see a small change, some none."""
    digits = max(0, -round(__import__("math").log10(quantum))) if quantum < 1 else 0

    def step(v: float) -> float:
        if rnd.random() < 0.3:
            return v
        nxt = min(hi, max(lo, v + rnd.gauss(0, move)))
        nxt = round(nxt / quantum) * quantum
        return round(nxt, digits) if digits else float(int(nxt))

    return step


def _const(v: float) -> float:
    return v


def host_series(host: int, customer: int, seed: int = 0) -> list[tuple[SeriesKey, float, Update]]:
    """The series of one host: (key, first value, update per scrape)."""
    rnd = random.Random(seed * 1_000_003 + host)
    labels = {"host": str(host), "customer": str(customer)}
    out: list[tuple[SeriesKey, float, Update]] = []

    def add(name: str, first: float, update: Update, **extra: str) -> None:
        out.append((SeriesKey({"__name__": name, **labels, **extra}), first, update))

    util = rnd.uniform(0.05, 0.7)
    uptime = rnd.uniform(1, 200) * 86_400
    shares = {"user": 0.65, "system": 0.2, "iowait": 0.05, "irq": 0.01, "softirq": 0.04, "nice": 0.0}
    for cpu in ("0", "1"):
        for mode, share in shares.items():
            first = round(uptime * util * share, 2)
            update = _counter(rnd, 15 * util * share, 0.01) if share else _const
            add("node_cpu_seconds_total", first, update, cpu=cpu, mode=mode)
        add("node_cpu_seconds_total", 0.0, _const, cpu=cpu, mode="steal")
        add("node_cpu_seconds_total", round(uptime * (1 - util), 2), _counter(rnd, 15 * (1 - util), 0.01),
            cpu=cpu, mode="idle")  # fmt: skip
    for name in ("node_load1", "node_load5", "node_load15"):
        add(name, round(2 * util, 2), _gauge(rnd, 0, 8, 0.05, 0.01))
    mem = 4096.0 * rnd.choice((1, 2, 4, 8, 16)) * 262_144
    add("node_memory_MemTotal_bytes", mem, _const)
    for name, share in (("MemFree", 0.2), ("MemAvailable", 0.5), ("Cached", 0.3), ("Buffers", 0.02)):
        add(f"node_memory_{name}_bytes", 4096.0 * int(mem * share / 4096),
            _gauge(rnd, 0, mem, mem * 0.002, 4096))  # fmt: skip
    add("node_memory_SwapFree_bytes", 2.0**31, _const)
    for mount, size in (("/", 50.0 * 2**30), ("/data", 500.0 * 2**30)):
        add("node_filesystem_size_bytes", size, _const, mountpoint=mount)
        add("node_filesystem_avail_bytes", 4096.0 * int(size * 0.6 / 4096),
            _gauge(rnd, 0, size, 4096 * 20, 4096), mountpoint=mount)  # fmt: skip
    dev = {"device": "vda"}
    add("node_disk_read_bytes_total", 512.0 * rnd.randint(1, 10**9), _counter(rnd, 20_000, 512, 50), **dev)
    add("node_disk_written_bytes_total", 512.0 * rnd.randint(1, 10**9), _counter(rnd, 80_000, 512, 20), **dev)
    add("node_disk_reads_completed_total", float(rnd.randint(1, 10**7)), _counter(rnd, 5, 1, 20), **dev)
    add("node_disk_writes_completed_total", float(rnd.randint(1, 10**7)), _counter(rnd, 20, 1, 10), **dev)
    add("node_disk_io_time_seconds_total", round(uptime * 0.01, 3), _counter(rnd, 0.15, 0.001, 10), **dev)
    eth = {"device": "eth0"}
    for d, rate in (("receive", 150_000), ("transmit", 60_000)):
        add(f"node_network_{d}_bytes_total", float(rnd.randint(1, 10**11)), _counter(rnd, rate, 1, 30), **eth)
        add(f"node_network_{d}_packets_total", float(rnd.randint(1, 10**8)), _counter(rnd, rate / 800, 1, 30),
            **eth)  # fmt: skip
        add(f"node_network_{d}_errs_total", 0.0, _const, **eth)
    add("node_procs_running", 1.0, _gauge(rnd, 0, 16, 1, 1))
    add("node_procs_blocked", 0.0, _gauge(rnd, 0, 4, 0.3, 1))
    add("node_context_switches_total", float(rnd.randint(10**6, 10**10)), _counter(rnd, 30_000, 1))
    add("node_intr_total", float(rnd.randint(10**6, 10**10)), _counter(rnd, 20_000, 1))
    add("node_forks_total", float(rnd.randint(10**3, 10**7)), _counter(rnd, 10, 1, 5))
    add("node_boot_time_seconds", float(int(T0 / 1000 - uptime)), _const)
    add("node_entropy_available_bits", 256.0, _const)
    add("node_sockstat_TCP_inuse", 40.0, _gauge(rnd, 0, 2000, 2, 1))
    add("node_filefd_allocated", 3000.0, _gauge(rnd, 100, 100_000, 5, 1))
    return out


def scrapes(
    hosts: range, start_ms: int, ticks: int, only: Callable[[SeriesKey], bool] | None = None, seed: int = 0
) -> Iterator[list[Sample]]:
    """One batch per scrape interval: every host's samples at that tick (a few ms of jitter)."""
    rnd = random.Random(seed)
    state: list[tuple[int, list[SeriesKey], list[float], list[Update]]] = []
    for h in hosts:
        series = [s for s in host_series(h, h // 10, seed) if only is None or only(s[0])]
        keys, values, updates = (list(c) for c in zip(*series, strict=True))
        state.append((rnd.randrange(STEP_MS), keys, values, updates))
    for tick in range(ticks):
        batch: list[Sample] = []
        base = start_ms + tick * STEP_MS
        for offset, keys, values, updates in state:
            t = base + offset + rnd.randrange(10)
            for i, key in enumerate(keys):
                v = values[i] = updates[i](values[i])
                batch.append(Sample(key, t, v))
        yield batch


def _file_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("VACUUM")
    db.close()
    return path.stat().st_size


class RowStore:
    """The baseline: one SQLite row per sample, keyed by series and time (so duplicates collapse)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("CREATE TABLE series (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)")
        self.db.execute(
            "CREATE TABLE samples (series_id INTEGER, t INTEGER, value REAL, PRIMARY KEY (series_id, t))"
            " WITHOUT ROWID"
        )
        self.ids: dict[SeriesKey, int] = {}

    def write(self, batch: list[Sample]) -> None:
        ids, db = self.ids, self.db
        db.execute("BEGIN")
        for key in {s.series for s in batch} - ids.keys():
            ids[key] = db.execute("INSERT INTO series (key) VALUES (?)", (key.canonical,)).lastrowid or 0
        db.executemany(
            "INSERT OR IGNORE INTO samples VALUES (?, ?, ?)", [(ids[s.series], s.t, s.value) for s in batch]
        )
        db.execute("COMMIT")

    def chart(self, host: str, start: int, end: int, step: int) -> list[tuple[float, ...]]:
        ids = [i for k, i in self.ids.items() if k.get("host") == host and k.get("cpu") == "0"]
        marks = ",".join("?" * len(ids))
        return self.db.execute(
            f"SELECT series_id, (t - ?) / ? AS b, min(value), avg(value), max(value), count(*) FROM samples"
            f" WHERE series_id IN ({marks}) AND t >= ? AND t < ? GROUP BY series_id, b",
            (start, step, *ids, start, end),
        ).fetchall()


def _timed_writes(
    write: Callable[[list[Sample]], object], batches: Iterator[list[Sample]]
) -> tuple[int, float]:
    n, spent = 0, 0.0
    for batch in batches:
        t0 = time.perf_counter()
        write(batch)
        spent += time.perf_counter() - t0
        n += len(batch)
    return n, spent


def _percentiles(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=20)
    return statistics.median(times) * 1000, q[18] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100, help="hosts in the one-day disk set")
    parser.add_argument("--baseline-hosts", type=int, default=10, help="hosts the row baseline writes")
    parser.add_argument("--chart-hosts", type=int, default=3, help="hosts with 30 days of CPU series")
    args = parser.parse_args()
    day = DAY_MS // STEP_MS
    with tempfile.TemporaryDirectory() as tmp:
        # Disk and write throughput: one day of many hosts.
        path = Path(tmp) / "day.db"
        store = open_store(path)
        n, spent = _timed_writes(store.write, scrapes(range(args.hosts), T0, day))
        t0 = time.perf_counter()
        store.close()
        spent += time.perf_counter() - t0
        store_bps = _file_bytes(path) / n
        store_rate = n / spent

        rows = RowStore(Path(tmp) / "rows.db")
        rn, rspent = _timed_writes(rows.write, scrapes(range(args.baseline_hosts), T0, day))
        rows.db.close()
        rows_bps = _file_bytes(rows.path) / rn
        rows_rate = rn / rspent

        # Query: a 30-day chart of one host's CPU (8 series: cpu 0, every mode) at a 1 h step.
        def is_cpu(k: SeriesKey) -> bool:
            return k.name == "node_cpu_seconds_total"

        start = T0 - 29 * DAY_MS
        chart_path = Path(tmp) / "chart.db"
        store = open_store(chart_path)
        rows = RowStore(Path(tmp) / "chart-rows.db")
        chart_hosts = range(10_000, 10_000 + args.chart_hosts)
        charted = {k for k, _, _ in host_series(10_000, 1_000, seed=1) if is_cpu(k) and k.get("cpu") == "0"}
        pending: list[Sample] = []
        for i, batch in enumerate(scrapes(chart_hosts, start, 30 * day, only=is_cpu, seed=1), 1):
            pending += batch
            if i % 40 == 0 or i == 30 * day:  # 10-minute batches: a backfill, not a live feed
                store.write(pending)
                rows.write([s for s in pending if s.series in charted])
                pending = []
        store.close()
        store = open_store(chart_path)
        matchers = [
            Matcher.name("node_cpu_seconds_total"),
            Matcher.eq("host", "10000"),
            Matcher.eq("cpu", "0"),
        ]
        end = start + 30 * DAY_MS
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            result = store.read_range(matchers, start, end, 3_600_000)
            times.append(time.perf_counter() - t0)
        assert len(result) == 8 and all(len(r.points) == 720 for r in result)
        store.close()
        row_times = []
        for _ in range(10):
            t0 = time.perf_counter()
            got = rows.chart("10000", start, end, 3_600_000)
            row_times.append(time.perf_counter() - t0)
        assert len(got) == 8 * 720
        rows.db.close()

    p50, p95 = _percentiles(times)
    r50, r95 = _percentiles(row_times)
    print(f"one day of node metrics at 15 s: {args.hosts} hosts, {n:,} samples")
    print(f"  disk   store {store_bps:6.2f} B/sample   rows baseline {rows_bps:6.2f} B/sample   "
          f"ratio {store_bps / rows_bps:.3f}  (goal <= 4)")  # fmt: skip
    print(f"  write  store {store_rate:10,.0f} samples/s   rows baseline {rows_rate:10,.0f} samples/s   "
          f"ratio {store_rate / rows_rate:.2f}")  # fmt: skip
    print("30-day chart of one host's CPU (8 series, 1 h step):")
    print(f"  store  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  (goal p95 < 50)")
    print(f"  rows baseline  p50 {r50:7.2f} ms  p95 {r95:7.2f} ms")


if __name__ == "__main__":
    main()
