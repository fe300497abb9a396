"""Kill the outbox worker (SIGKILL) with 1,000 notifications queued; a new worker finishes the job.

The receiver must see every idempotency key, and after de-duplicating by key exactly 1,000
deliveries; repeats can only be the rows in flight when the worker died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from opsdesk.core.runtime import Runtime
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.notify.outbox import enqueue
from tests.notify.helpers import links, notice, webhook
from tests.notify.receivers import HttpReceiver
from tests.world import World

TOTAL = 1000
CONCURRENCY = 8
LEASE_S = 3
ROOT = Path(__file__).resolve().parents[2]


def config_file(rt: Runtime, tmp_path: Path) -> Path:
    path = tmp_path / "worker.toml"
    path.write_text(
        f'data_dir = "{tmp_path}"\n[database]\nurl = "{rt.settings.database_url}"\n'
        f'[security]\nsecret_key = "{rt.settings.secret("secret_key")}"\n'
        f'encryption_key = "{rt.settings.secret("encryption_key")}"\n'
    )
    return path


def start_worker(config: Path, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "opsdesk.notify", "--config", str(config), "--lease", str(LEASE_S)]
    args += ["--concurrency", str(CONCURRENCY), "--batch", "40", "--poll", "0.1", "--base-backoff", "0.2"]
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})


def states(rt: Runtime, channel_id: int) -> dict[str, int]:
    query = select(Notification.state, func.count()).where(Notification.channel_id == channel_id)
    with rt.sessions() as s:
        rows = s.execute(query.group_by(Notification.state)).all()
    return {DeliveryState(st).value: int(n) for st, n in rows}


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sigkill_mid_way_loses_nothing(runtime: Runtime, world: World, backend: str, tmp_path: Path) -> None:
    # A little latency per request keeps sends in flight, so the kill lands mid-send.
    with HttpReceiver(delay=0.003) as rx:
        hook = webhook(runtime, world.a.customer, f"{rx.url}/hook")
        with runtime.sessions.begin() as s:
            channel = s.get(NotifyChannel, hook)
            assert channel is not None
            for n in range(TOTAL):
                enqueue(s, channel, notice(n), f"crash:{n}", links(runtime))
        expected = {f"crash:{n}" for n in range(TOTAL)}
        config = config_file(runtime, tmp_path)

        first = start_worker(config, tmp_path, "first")
        try:
            wait_for(lambda: rx.count() >= TOTAL // 3, 60, "the first worker to get going")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        seen_at_kill = rx.count()
        at_kill = states(runtime, hook)
        assert 0 < at_kill.get("sent", 0) < TOTAL, at_kill

        # On PostgreSQL two workers share the rest (SKIP LOCKED); on SQLite one worker runs.
        second = [
            start_worker(config, tmp_path, f"second{i}") for i in range(2 if backend == "postgresql" else 1)
        ]
        try:
            wait_for(lambda: states(runtime, hook).get("sent", 0) == TOTAL, 120, "every row to be sent")
        finally:
            for proc in second:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)

    keys = rx.keys()
    counts = Counter(keys)
    duplicates = len(keys) - len(counts)
    print(
        f"\n[{backend}] {TOTAL} queued; killed after the receiver saw {seen_at_kill}; "
        f"at kill: {at_kill}; deliveries {len(keys)}, distinct keys {len(counts)}, duplicates {duplicates}"
    )
    assert set(counts) == expected  # none missing, nothing unexpected
    assert len(counts) == TOTAL
    assert duplicates <= CONCURRENCY  # only rows in flight at the kill can repeat
    assert all(n <= 2 for n in counts.values())
    assert states(runtime, hook) == {"sent": TOTAL}
