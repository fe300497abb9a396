"""Alert latency: a sample crossing a threshold (`for` 0) at ingest -> its notice leaving the outbox.

Seeds HOSTS server assets (each with the default server rules: 16 per host, so 16,000 active
rules at 1,000 hosts), one provider webhook channel pointing at a loopback receiver, and starts
`opsdesk server`. Every host first reports normal figures; then, one at a time, a host reports
its /data filesystem 96% full (the `disk_nearly_full` rule, `for` 0). The figure is the time from
sending that batch to the webhook receiving the notice: p50 and p99. The baseline, measured in the
same run, is the time of the same batch's ingest request alone (no alert path).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from opsdesk.accounts import tokens
from opsdesk.accounts.principal import Role, Scope
from opsdesk.accounts.service import create_user
from opsdesk.alerting.rules import DEFAULTS
from opsdesk.core import migrate
from opsdesk.core.config import load_settings
from opsdesk.core.runtime import build_runtime
from opsdesk.ingest.service import gzip_batch
from opsdesk.notify.api import checked
from opsdesk.notify.models import NotifyChannel
from opsdesk.tenancy.models import Asset, AssetType, Customer

OPSDESK = str(Path(sys.executable).with_name("opsdesk"))
arrivals: dict[str, float] = {}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        text = json.dumps(json.loads(body), ensure_ascii=False)
        for word in text.replace('"', " ").split():
            if word.startswith("bench-host-"):
                arrivals.setdefault(word.rstrip(",.:"), time.perf_counter())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def batch(seq: int, used: float) -> bytes:
    return gzip_batch(
        {
            "v": 1,
            "seq": seq,
            "instance": "bench",
            "t": int(time.time() * 1000),
            "interval": 15,
            "agent": {"version": "bench", "hostname": "h"},
            "samples": [
                ["fs_used_percent", {"mount": "/data"}, used],
                ["cpu_usage_percent", {"mode": "total"}, 12.0],
                ["memory_used_percent", {}, 40.0],
            ],
            "events": [],
            "inventory": None,
            "top": None,
            "dropped": 0,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=40)
    args = ap.parse_args()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
        env.update(OPSDESK_DATA_DIR=tmp, OPSDESK_SERVER__PORT="18123", OPSDESK_SERVER__ACCESS_LOG="false")
        os.environ.update(env)
        settings = load_settings()
        migrate.upgrade(settings.database_url)
        rt = build_runtime(settings)
        agents: list[tuple[str, str]] = []
        with rt.sessions.begin() as s:
            admin = create_user(s, "admin", "bench-password", Role.admin)
            customer = Customer(code="LAT", name="Latency")
            s.add(customer)
            s.flush()
            public, secrets = checked("webhook", {"url": hook, "secret": "bench-secret-0123456789"})
            s.add(
                NotifyChannel(
                    customer_id=None,
                    name="duty",
                    type="webhook",
                    config=public,
                    secrets=secrets,
                    language="en",
                )
            )
            for i in range(args.hosts):
                asset = Asset(customer_id=customer.id, type=AssetType.server, name=f"bench-host-{i}")
                s.add(asset)
                s.flush()
                agents.append(
                    (asset.name, tokens.issue(s, admin, asset.name, [Scope.write], asset_id=asset.id)[1])
                )
        rt.close()
        server = subprocess.Popen(
            [OPSDESK, "server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = "http://127.0.0.1:18123"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        http = httpx.Client(base_url=url, timeout=30)

        def post(token: str, body: bytes) -> None:
            headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
            http.post("/api/v1/ingest/agent", content=body, headers=headers).raise_for_status()

        for _name, token in agents:  # every host reports normal figures: the rules are live
            post(token, batch(1, 40.0))
        time.sleep(20)  # let a full sweep of every rule run at least once
        latencies, ingest_only = [], []
        for name, token in agents[: args.trials]:
            start = time.perf_counter()
            post(token, batch(2, 96.0))
            ingest_only.append((time.perf_counter() - start) * 1000)
            deadline = time.monotonic() + 30
            while name not in arrivals and time.monotonic() < deadline:
                time.sleep(0.005)
            if name in arrivals:
                latencies.append((arrivals[name] - start) * 1000)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    receiver.shutdown()
    latencies.sort()
    ingest_only.sort()

    def p(xs: list[float], q: float) -> float:
        return xs[min(int(len(xs) * q), len(xs) - 1)]

    per_host = len(DEFAULTS[AssetType.server])
    print(
        f"alert latency: {args.hosts} hosts x {per_host} default rules"
        f" = {args.hosts * per_host:,} active rules, {args.trials} threshold crossings"
    )
    print(f"  notified {len(latencies)} of {args.trials}")
    print(
        f"  ingest -> notice received: p50 {statistics.median(latencies):.0f} ms, "
        f"p99 {p(latencies, 0.99):.0f} ms"
    )
    print(
        f"  baseline, the ingest request alone: p50 {statistics.median(ingest_only):.1f} ms, "
        f"p99 {p(ingest_only, 0.99):.1f} ms"
    )


if __name__ == "__main__":
    main()
