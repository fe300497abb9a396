"""Agent footprint: RSS and CPU share of a real `opsdesk agent` over MINUTES at a 15 s interval.

A server process receives its batches. The baseline, run beside it for the same time, is a bare
Python interpreter that imports what the agent imports (psutil, json, gzip, urllib) and sleeps:
the least any Python agent could cost.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from opsdesk.accounts import tokens
from opsdesk.accounts.principal import Role, Scope
from opsdesk.accounts.service import create_user
from opsdesk.core import migrate
from opsdesk.core.config import load_settings
from opsdesk.core.runtime import build_runtime
from opsdesk.tenancy.models import Asset, AssetType, Customer

BIN = Path(sys.executable).parent
IDLE = "import gzip, json, urllib.request, psutil, time\nwhile True: time.sleep(15)"


def seed(data_dir: Path, port: int) -> tuple[dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
    env.update(
        OPSDESK_DATA_DIR=str(data_dir), OPSDESK_SERVER__PORT=str(port), OPSDESK_SERVER__ACCESS_LOG="false"
    )
    os.environ.update(env)
    settings = load_settings()
    migrate.upgrade(settings.database_url)
    rt = build_runtime(settings)
    with rt.sessions.begin() as s:
        admin = create_user(s, "admin", "bench-password", Role.admin)
        customer = Customer(code="FP", name="Footprint")
        s.add(customer)
        s.flush()
        asset = Asset(customer_id=customer.id, type=AssetType.server, name="this-host")
        s.add(asset)
        s.flush()
        _, plain = tokens.issue(s, admin, "agent", [Scope.write], asset_id=asset.id)
    rt.close()
    return env, plain


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=15)
    args = ap.parse_args()
    port = 18111
    with tempfile.TemporaryDirectory() as tmp:
        env, token = seed(Path(tmp), port)
        server = subprocess.Popen(
            [str(BIN / "opsdesk"), "server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        agent = subprocess.Popen(
            [
                str(BIN / "opsdesk"),
                "agent",
                "--server",
                url,
                "--token",
                token,
                "--interval",
                str(args.interval),
                "--state-dir",
                f"{tmp}/agent",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        idle = subprocess.Popen([sys.executable, "-c", IDLE])
        procs = {"agent": psutil.Process(agent.pid), "baseline": psutil.Process(idle.pid)}
        time.sleep(2)  # past interpreter start-up, which is not the steady state
        start = time.monotonic()
        cpu0 = {k: cpu_seconds(p) for k, p in procs.items()}
        peak = dict.fromkeys(procs, 0)
        deadline = start + args.minutes * 60
        while time.monotonic() < deadline:
            for k, p in procs.items():
                peak[k] = max(peak[k], p.memory_info().rss)
            time.sleep(1)
        elapsed = time.monotonic() - start
        share = {k: (cpu_seconds(p) - cpu0[k]) / elapsed for k, p in procs.items()}
        agent.send_signal(signal.SIGINT)
        idle.terminate()
        for p in (agent, idle):
            p.wait(10)
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    print(f"agent footprint over {args.minutes:g} min at a {args.interval:g} s interval")
    for k in ("agent", "baseline"):
        print(f"  {k:9s} peak RSS {peak[k] / 2**20:5.1f} MiB   CPU {share[k]:.3%} of one core")
    print(f"  agent / baseline: RSS {peak['agent'] / peak['baseline']:.2f}x")


if __name__ == "__main__":
    main()
