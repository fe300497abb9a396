"""Ingest throughput: simulated agents posting realistic batches over HTTP to one server process.

Seeds HOSTS server assets with agent tokens, starts `opsdesk server` (one process), and runs
CLIENTS client processes with CONNS keep-alive connections each; each connection plays a share of
the hosts, posting a batch per host per "tick" (91 samples: CPU per mode and core, memory,
filesystems, disks, NICs, TCP states), gzip compressed as the agent sends it, each host's batches
in order. The figure is samples stored per second, measured by the server's answers. The
baselines, measured in the same run, are the metric store's own bulk writes of the same samples
in-process, with no HTTP and no validation: write() with samples, and write_blocks() with a
block per batch, as the server's ingest writer uses it.

--without-alert-loop serves with the alert evaluation loop idle: a diagnostic that sizes the
ingest path alone. BENCH_SERVER="command" runs another server command in its place (say, an older
checkout); BENCH_PYSPY=out.txt [BENCH_PYSPY_AT=seconds] records 8 s of the server with py-spy --gil.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
    for k, mount in enumerate(("/", "/var", "/data")):
        labels = {"mount": mount, "device": "/dev/vda", "fstype": "ext4"}
        used = 4e10 + k * 1e9 + tick * 4096.0
        # Plausible values: a bench that put every disk at 1e10 % full made every host fire
        # disk alerts on every batch, and measured the incident path instead of ingest.
        out += [
            ["fs_size_bytes", labels, 1e11],
            ["fs_used_bytes", labels, used],
            ["fs_free_bytes", labels, 1e11 - used],
            ["fs_used_percent", labels, round(used / 1e9, 2)],
            ["fs_inodes_total", labels, 6_553_600.0],
            ["fs_inodes_used", labels, 120_000.0 + tick],
            ["fs_inodes_used_percent", labels, round((120_000 + tick) / 65_536, 2)],
        ]
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


def batch(i: int, tick: int, t0: int, version: int = 2) -> bytes:
    """A host's batch as the agent sends it (version 2), or as older agents did (version 1)."""
    samples = host_samples(i, tick)
    if version == 2:
        values: dict[str, Any] = {
            "series": [[name, labels] for name, labels, _ in samples],
            "values": [value for _, _, value in samples],
        }
    else:
        values = {"samples": samples}
    return gzip_batch(
        {
            "v": version,
            "seq": tick + 1,
            "instance": f"bench-{i}",
            "t": t0 + tick * 15_000,
            "interval": 15,
            "agent": {"version": "bench", "hostname": f"host-{i}"},
            **values,
            "events": [],
            "inventory": None,
            "top": None,
            "dropped": 0,
        }
    )


class Agent:
    """One keep-alive connection that posts its hosts' batches in order, one request at a time.

    Raw sockets and requests prepared in advance, so that the clients take little of the two
    cores they share with the server (the run prints how much).
    """

    def __init__(self, url: str, requests: list[bytes]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests = requests
        self.next = 0
        self.buf = b""
        self.stored = 0

    def send(self) -> bool:
        if self.next == len(self.requests):
            return False
        self.sock.sendall(self.requests[self.next])
        self.next += 1
        return True

    def receive(self) -> bool:
        """Read what arrived; True once a whole response is in (it is then checked and counted)."""
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        self.buf += data
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        if len(rest) < length:
            return False
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{head.decode()}\n{rest.decode()}")
        self.stored += json.loads(rest[:length])["samples"]
        self.buf = rest[length:]
        return True


def request(token: str, body: bytes) -> bytes:
    head = (
        "POST /api/v1/ingest/agent HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nAuthorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def client(
    url: str,
    hosts: list[tuple[int, str]],
    ticks: int,
    t0: int,
    conns: int,
    version: int,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    # Requests are built before the clock starts: the figure is the server's, not the clients'.
    # Each connection plays some of the hosts, sending each host's batches in order of seq.
    agents = []
    for c in range(conns):
        mine = hosts[c::conns]
        agents.append(
            Agent(
                url,
                [request(token, batch(i, tick, t0, version)) for tick in range(ticks) for i, token in mine],
            )
        )
    ready.put(1)
    go.wait()
    cpu = time.process_time()
    sel = selectors.DefaultSelector()
    for agent in agents:
        if agent.send():
            sel.register(agent.sock, selectors.EVENT_READ, agent)
    while sel.get_map():
        for key, _ in sel.select():
            agent = key.data
            if agent.receive() and not agent.send():
                sel.unregister(agent.sock)
    out.put((sum(a.stored for a in agents), time.process_time() - cpu))
    for agent in agents:
        agent.sock.close()


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


def baseline(hosts: int, ticks: int, t0: int, blocks: bool) -> float:
    """The store alone: each host's batch written as samples (write) or as a block (write_blocks,
    what the server's ingest writer uses), one write per batch."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/base.db")
        keys = [
            [
                SeriesKey({**lab, "asset": str(i + 1), "customer": "1", "__name__": n})
                for n, lab, _ in host_samples(i, 0)
            ]
            for i in range(hosts)
        ]
        writes: list[Any] = []
        for tick in range(ticks):
            for i in range(hosts):
                t, values = t0 + tick * 15_000, [v for _, _, v in host_samples(i, tick)]
                if blocks:
                    writes.append([(keys[i], t, values)])
                else:
                    writes.append([Sample(k, t, v) for k, v in zip(keys[i], values, strict=True)])
        n = hosts * ticks * len(keys[0])
        write = store.write_blocks if blocks else store.write
        start = time.perf_counter()
        for w in writes:
            write(w)
        elapsed = time.perf_counter() - start
        store.close()
    return n / elapsed


def serve_without_alert_loop() -> None:
    """`opsdesk server` with the alert evaluation loop replaced by an idle task (diagnostic only)."""
    import asyncio

    import opsdesk.web.app as web_app
    from opsdesk.cli import main as cli_main

    async def idle(*_args: Any) -> None:
        await asyncio.Event().wait()

    web_app._evaluate_alerts = idle  # type: ignore[assignment]
    sys.argv = ["opsdesk", "server"]
    cli_main()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--conns", type=int, default=8, help="connections (agents in flight) per client")
    ap.add_argument("--batch-version", type=int, choices=(1, 2), default=2, help="1: as older agents send")
    ap.add_argument("--without-alert-loop", action="store_true", help="diagnostic: alert loop idle")
    ap.add_argument("--serve-without-alert-loop", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_without_alert_loop:
        serve_without_alert_loop()
        return
    command = f"{OPSDESK} server"
    if args.without_alert_loop:
        command = f"{sys.executable} {Path(__file__).resolve()} --serve-without-alert-loop"
    t0 = int(time.time() * 1000) - args.ticks * 15_000 - 60_000
    with tempfile.TemporaryDirectory() as tmp:
        env, hosts = seed(Path(tmp), args.hosts)
        log = (Path(tmp) / "server.log").open("wb")  # not a pipe: a full one would stall the server
        server = subprocess.Popen(
            os.environ.get("BENCH_SERVER", command).split(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
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
            mp.Process(
                target=client,
                args=(url, share, args.ticks, t0, args.conns, args.batch_version, ready, go, queue),
            )
            for share in shares
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        if os.environ.get("BENCH_PYSPY"):
            spy = [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(server.pid)]
            spy += ["-d", "8", "--gil", "-f", "raw", "-o", os.environ["BENCH_PYSPY"]]
            at = float(os.environ.get("BENCH_PYSPY_AT", "0"))  # seconds into the run: skip new series
            threading.Timer(at, subprocess.Popen, [spy], {"stderr": subprocess.DEVNULL}).start()
        server_cpu = psutil.Process(server.pid).cpu_times()
        start = time.perf_counter()
        go.set()
        answers = [queue.get() for _ in procs]
        elapsed = time.perf_counter() - start
        stored = sum(n for n, _ in answers)
        client_share = sum(cpu for _, cpu in answers) / elapsed
        after = psutil.Process(server.pid).cpu_times()
        cpu_share = (after.user + after.system - server_cpu.user - server_cpu.system) / elapsed
        for p in procs:
            p.join()
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        log.close()
    http_rate = stored / elapsed
    base_rate = baseline(args.hosts, args.ticks, t0, blocks=False)
    block_rate = baseline(args.hosts, args.ticks, t0, blocks=True)
    batches = args.hosts * args.ticks
    print(
        f"ingest over HTTP: {args.hosts} hosts x {args.ticks} batches, {args.clients} client processes"
        f" x {args.conns} connections, batch format v{args.batch_version}"
        + (" (alert evaluation loop idle)" if args.without_alert_loop else "")
    )
    print(f"  end to end:           {http_rate:,.0f} samples/s  ({batches / elapsed:,.0f} batches/s)")
    print(f"  baseline store write: {base_rate:,.0f} samples/s  (in-process, no HTTP, no validation)")
    print(f"  baseline write_blocks: {block_rate:,.0f} samples/s  (the same, a block per batch)")
    print(f"  ratio: {http_rate / base_rate:.2f}x write, {http_rate / block_rate:.2f}x write_blocks")
    print(f"  CPU: server process {cpu_share:.0%} of one core, clients {client_share:.0%} of one core")


if __name__ == "__main__":
    main()
