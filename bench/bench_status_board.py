"""Fleet status board: server-side render time of /board for an admin, 500 hosts.

Seeds CUSTOMERS customers with HOSTS hosts in all (each with a HostState row, most reporting now,
some silent for an hour, some never seen; 18 metric series per host in the metric store, like a
real agent's), 5 monitors per customer (3 site checks, 2 services, some down or warning) and open
incidents of every severity. Then renders the board in-process through Starlette's TestClient,
logged in as an admin: p50 and p95 of ROUNDS renders of the page and of its polled fragment.

Baselines measured in the same run: the existing customer list page (/customers), and the same
board data built the naive way, with one HostState query and three metric reads per host.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from opsdesk.accounts.principal import Role
from opsdesk.accounts.service import create_user
from opsdesk.alerting.models import Incident, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.board.build import HostTile, build_board
from opsdesk.core import migrate
from opsdesk.core.config import Settings
from opsdesk.core.runtime import Runtime, build_runtime
from opsdesk.hosts.models import HostState
from opsdesk.hosts.status import host_status
from opsdesk.metrics import Matcher, Sample, SeriesKey
from opsdesk.monitors.models import Monitor, MonitorState, Runner
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.tenancy.scoping import bind
from opsdesk.web.app import create_app

PASSWORD = "correct-horse-battery"
FS = (("/", "vda1", "ext4"), ("/data", "vdb1", "xfs"))


def csrf_from(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def host_samples(asset: int, customer: int, t: int, rng: random.Random) -> list[Sample]:
    def key(name: str, **labels: str) -> SeriesKey:
        return SeriesKey({"__name__": name, "asset": str(asset), "customer": str(customer), **labels})

    out = [
        Sample(key("cpu_usage_percent", mode=m), t, rng.uniform(0, 100)) for m in ("total", "user", "idle")
    ]
    out += [Sample(key(n), t, rng.uniform(0, 4)) for n in ("load1", "load5", "load15")]
    out += [Sample(key(n), t, rng.uniform(5, 95)) for n in ("memory_used_percent", "swap_used_percent")]
    for mount, device, fstype in FS:
        labels = {"mount": mount, "device": device, "fstype": fstype}
        out += [Sample(key("fs_used_percent", **labels), t, rng.uniform(10, 97))]
        out += [Sample(key("fs_used_bytes", **labels), t, rng.uniform(1e9, 1e11))]
    out += [
        Sample(key(n, interface="eth0"), t, rng.uniform(0, 1e7)) for n in ("net_receive_bytes_per_second",)
    ]
    out += [
        Sample(key(n, interface="eth0"), t, rng.uniform(0, 1e7)) for n in ("net_transmit_bytes_per_second",)
    ]
    out += [Sample(key(n, device="vda"), t, rng.uniform(0, 1e7)) for n in ("disk_read_bytes_per_second",)]
    out += [Sample(key(n, device="vda"), t, rng.uniform(0, 1e7)) for n in ("disk_write_bytes_per_second",)]
    out += [
        Sample(key("tcp_connections", state=s), t, rng.uniform(0, 500)) for s in ("established", "time_wait")
    ]
    return out


def seed(rt: Runtime, customers: int, hosts: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    with rt.sessions.begin() as s:
        create_user(s, "admin", PASSWORD, Role.admin)
        s.execute(
            insert(Customer), [{"code": f"C{i:02d}", "name": f"Customer {i:02d}"} for i in range(customers)]
        )
        cids = list(s.scalars(select(Customer.id).order_by(Customer.id)))
        s.execute(
            insert(Asset),
            [
                {
                    "customer_id": cids[i % customers],
                    "type": AssetType.server,
                    "name": f"host-{i:03d}",
                    "tags": [],
                }
                for i in range(hosts)
            ],
        )
        assets = list(s.execute(select(Asset.id, Asset.customer_id).order_by(Asset.id)))
        states = []
        for n, (aid, cid) in enumerate(assets):
            if n % 50 == 7:
                continue  # never reported: unknown
            silent = timedelta(hours=1) if n % 50 == 13 else timedelta(seconds=rng.uniform(0, 10))
            states.append(
                {"customer_id": cid, "asset_id": aid, "last_seen_at": now - silent, "interval_s": 15.0}
            )
        s.execute(insert(HostState), states)
        states_cycle = [MonitorState.up] * 8 + [MonitorState.down, MonitorState.warning]
        monitors = []
        for cid in cids:
            for j, kind in enumerate(("http", "http", "tls", "redis", "mysql")):
                monitors.append(
                    {
                        "customer_id": cid, "name": f"{kind}-{cid}-{j}", "type": kind, "config": {},
                        "runner": Runner.agent, "state": rng.choice(states_cycle), "enabled": True,
                    }
                )  # fmt: skip
        s.execute(insert(Monitor), monitors)
        severities = list(Severity)
        s.execute(
            insert(Incident),
            [
                {
                    "customer_id": rng.choice(cids), "title": f"incident {k}", "severity": severities[k % 4],
                    "status": IncidentStatus.open, "opened_at": now - timedelta(minutes=k),
                }
                for k in range(40)
            ],
        )  # fmt: skip
    t = int(time.time() * 1000)
    samples = [x for aid, cid in assets for x in host_samples(aid, cid, t, rng)]
    rt.metrics.write(samples)


def naive_tiles(rt: Runtime) -> int:
    """The baseline: the same tiles, one state query and three metric reads per host."""
    now = datetime.now(UTC)
    tiles = []
    with rt.sessions() as s:
        bind(s, None)
        for aid, name in s.execute(select(Asset.id, Asset.name).where(Asset.type == AssetType.server)):
            state = s.scalars(select(HostState).where(HostState.asset_id == aid)).first()
            tile = HostTile(aid, name, host_status(state, now, 3))
            host = Matcher.eq("asset", str(aid))
            cpu = rt.metrics.latest([Matcher.name("cpu_usage_percent"), Matcher.eq("mode", "total"), host])
            mem = rt.metrics.latest([Matcher.name("memory_used_percent"), host])
            disk = rt.metrics.latest([Matcher.name("fs_used_percent"), host])
            tile.cpu = cpu[0].value if cpu else None
            tile.memory = mem[0].value if mem else None
            tile.disk = max((d.value for d in disk), default=None)
            tiles.append(tile)
    return len(tiles)


def board_tiles(rt: Runtime) -> int:
    with rt.sessions() as s:
        bind(s, None)
        board = build_board(s, rt.metrics, 3, datetime.now(UTC))
    return sum(len(c.hosts) for c in board.customers)


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(3):
        fn()  # warm caches and templates
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=20)
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--database-url", default="", help="state store (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        settings = Settings(
            data_dir=Path(tmp),
            database={"url": url},
            security={"secret_key": "bench", "encryption_key": Fernet.generate_key().decode()},
        )
        rt = build_runtime(settings)
        seed(rt, args.customers, args.hosts)
        client = TestClient(create_app(rt), follow_redirects=False)  # no lifespan: no probe, no alert loop
        token = csrf_from(client.get("/login").text)
        login = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
        assert login.status_code == 303, login.text

        def get(path: str) -> Callable[[], object]:
            def fetch() -> object:
                resp = client.get(path)
                assert resp.status_code == 200, (path, resp.status_code)
                return resp

            return fetch

        page = client.get("/board").text
        assert page.count('class="tile tile-') == args.hosts, "every host has a tile"
        assert naive_tiles(rt) == board_tiles(rt) == args.hosts
        rows = [
            ("baseline: customer list page (/customers)", get("/customers")),
            ("baseline: tiles data, one query per host (naive)", lambda: naive_tiles(rt)),
            ("board data only (build_board)", lambda: board_tiles(rt)),
            ("board fragment (/board/live)", get("/board/live")),
            ("board page (/board)", get("/board")),
        ]
        print(
            f"status board: {args.hosts} hosts, {args.customers} customers, admin, "
            f"p50 / p95 of {args.rounds} renders, in-process (TestClient)"
        )
        for name, fn in rows:
            p50, p95 = timed(fn, args.rounds)
            print(f"  {name:<52} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        print(f"  page size {len(page.encode()) / 1024:.0f} KiB")
        rt.close()


if __name__ == "__main__":
    main()
