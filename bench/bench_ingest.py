"""Ingest throughput: simulated agents posting realistic batches over HTTP to one server process.

Seeds HOSTS server assets with agent tokens, starts `opsdesk server` (one process), and runs
CLIENTS client processes that each play a share of the hosts: a batch per host per "tick" of
~SAMPLES samples (CPU per mode and core, memory, filesystems, disks, NICs, TCP states), gzip
compressed as the agent sends it. The figure is samples stored per second, measured by the
server's answers. The baseline, measured in the same run, is the metric store's own bulk write
of the same samples in-process, with no HTTP and no validation.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from opsdesk.accounts import tokens
from opsdesk.accounts.principal import Role, Scope
from opsdesk.accounts.service import create_user
from opsdesk.core import migrate
from opsdesk.core.config import load_settings
from opsdesk.core.runtime import build_runtime
from opsdesk.ingest.service import gzip_batch
from opsdesk.metrics import Sample, SeriesKey, open_store
from opsdesk.tenancy.models import Asset, AssetType, Customer

OPSDESK = str(Path(sys.executable).with_name("opsdesk"))


def host_samples(i: int, tick: int) -> list[list[Any]]:
    """About 120 samples, shaped like the agent's on a 4-core host with 2 disks and 3 NICs."""
    out: list[list[Any]] = []
    for mode in ("total", "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"):
        out.append(["cpu_usage_percent", {"mode": mode}, (i * 7 + tick) % 100 / 1.7])
    out += [["cpu_core_usage_percent", {"core": str(c)}, (tick + c) % 100 * 0.9] for c in range(4)]
    out += [
        [n, {}, 1.0 + (tick % 10) / 10] for n in ("load1", "load5", "load15", "processes", "uptime_seconds")
    ]
    out += [
        [n, {}, 8e9 - tick * 1000.0]
        for n in ("memory_total_bytes", "memory_available_bytes", "memory_used_bytes")
    ]
    out += [
        [n, {}, 12.5]
        for n in ("memory_used_percent", "swap_total_bytes", "swap_used_bytes", "swap_used_percent")
    ]
    for mount in ("/", "/var", "/data"):
        labels = {"mount": mount, "device": "/dev/vda", "fstype": "ext4"}
        for n in (
            "fs_size_bytes",
            "fs_used_bytes",
            "fs_free_bytes",
            "fs_used_percent",
            "fs_inodes_total",
            "fs_inodes_used",
            "fs_inodes_used_percent",
        ):
            out.append([n, labels, 1e10 + tick])
    for dev in ("vda", "vdb"):
        for n in (
            "disk_read_bytes_per_second",
            "disk_write_bytes_per_second",
            "disk_reads_per_second",
            "disk_writes_per_second",
            "disk_busy_percent",
        ):
            out.append([n, {"device": dev}, float(tick % 50)])
    for nic in ("lo", "eth0", "eth1"):
        for n in (
            "net_receive_bytes_per_second",
            "net_transmit_bytes_per_second",
            "net_receive_packets_per_second",
            "net_transmit_packets_per_second",
            "net_receive_errors",
            "net_transmit_errors",
            "net_receive_drops",
            "net_transmit_drops",
        ):
            out.append([n, {"interface": nic}, float(tick % 1000)])
    states = (
        "established",
        "syn_sent",
        "syn_recv",
        "fin_wait1",
        "fin_wait2",
        "time_wait",
        "close",
        "close_wait",
        "last_ack",
        "listen",
        "closing",
    )
    out += [["tcp_connections", {"state": s}, float(tick % 7)] for s in states]
    return out


def batch(i: int, tick: int, t0: int) -> bytes:
    return gzip_batch(
        {
            "v": 1,
            "seq": tick + 1,
            "instance": f"bench-{i}",
            "t": t0 + tick * 15_000,
            "interval": 15,
            "agent": {"version": "bench", "hostname": f"host-{i}"},
            "samples": host_samples(i, tick),
            "events": [],
            "inventory": None,
            "top": None,
            "dropped": 0,
        }
    )


def client(
    url: str, hosts: list[tuple[int, str]], ticks: int, t0: int, ready: Any, go: Any, out: Any
) -> None:
    # Bodies are built before the clock starts: the figure is the server's, not the clients'.
    bodies = [[(token, batch(i, tick, t0)) for i, token in hosts] for tick in range(ticks)]
    ready.put(1)
    go.wait()
    stored = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for tick_bodies in bodies:
            for token, body in tick_bodies:
                resp = http.post(
                    "/api/v1/ingest/agent",
                    content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
                )
                resp.raise_for_status()
                stored += resp.json()["samples"]
    out.put(stored)


def seed(data_dir: Path, hosts: int) -> tuple[dict[str, str], list[tuple[int, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
    env.update(
        OPSDESK_DATA_DIR=str(data_dir), OPSDESK_SERVER__PORT="18099", OPSDESK_SERVER__ACCESS_LOG="false"
    )
    os.environ.update(env)
    settings = load_settings()
    migrate.upgrade(settings.database_url)
    rt = build_runtime(settings)
    out = []
    with rt.sessions.begin() as s:
        admin = create_user(s, "admin", "bench-password", Role.admin)
        cust = Customer(code="BENCH", name="Bench")
        s.add(cust)
        s.flush()
        for i in range(hosts):
            asset = Asset(customer_id=cust.id, type=AssetType.server, name=f"host-{i}")
            s.add(asset)
            s.flush()
            _, plain = tokens.issue(s, admin, f"agent {i}", [Scope.write], asset_id=asset.id)
            out.append((i, plain))
    rt.close()
    return env, out


def baseline(hosts: int, ticks: int, t0: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/base.db")
        batches = []
        for tick in range(ticks):
            for i in range(hosts):
                base = {"asset": str(i + 1), "customer": "1"}
                batches.append(
                    [
                        Sample(SeriesKey({**lab, **base, "__name__": n}), t0 + tick * 15_000, v)
                        for n, lab, v in host_samples(i, tick)
                    ]
                )
        n = sum(len(b) for b in batches)
        start = time.perf_counter()
        for b in batches:  # one write per batch, as the server does
            store.write(b)
        elapsed = time.perf_counter() - start
        store.close()
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    t0 = int(time.time() * 1000) - args.ticks * 15_000 - 60_000
    with tempfile.TemporaryDirectory() as tmp:
        env, hosts = seed(Path(tmp), args.hosts)
        server = subprocess.Popen(
            [OPSDESK, "server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = "http://127.0.0.1:18099"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        queue: Any = mp.Queue()
        ready: Any = mp.Queue()
        go = mp.Event()
        shares = [hosts[k :: args.clients] for k in range(args.clients)]
        procs = [
            mp.Process(target=client, args=(url, share, args.ticks, t0, ready, go, queue)) for share in shares
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        if os.environ.get("BENCH_PYSPY"):
            subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "-p",
                    str(server.pid),
                    "-d",
                    "8",
                    "-f",
                    "raw",
                    "-o",
                    os.environ["BENCH_PYSPY"],
                ],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        server_cpu = psutil.Process(server.pid).cpu_times()
        start = time.perf_counter()
        go.set()
        stored = sum(queue.get() for _ in procs)
        elapsed = time.perf_counter() - start
        after = psutil.Process(server.pid).cpu_times()
        cpu_share = (after.user + after.system - server_cpu.user - server_cpu.system) / elapsed
        for p in procs:
            p.join()
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    http_rate = stored / elapsed
    base_rate = baseline(args.hosts, args.ticks, t0)
    batches = args.hosts * args.ticks
    print(f"ingest over HTTP: {args.hosts} hosts x {args.ticks} batches, {args.clients} client processes")
    print(f"  end to end:           {http_rate:,.0f} samples/s  ({batches / elapsed:,.0f} batches/s)")
    print(f"  baseline store write: {base_rate:,.0f} samples/s  (in-process, no HTTP, no validation)")
    print(f"  ratio: {http_rate / base_rate:.2f}x baseline; server process used {cpu_share:.0%} of one core")


if __name__ == "__main__":
    main()
