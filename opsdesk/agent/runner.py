"""The agent's loop: collect, watch, spool, send; exactly once as far as the server can tell."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsdesk import __version__
from opsdesk.agent.checks import AgentChecks
from opsdesk.agent.collectors import ResourceCollector
from opsdesk.agent.inventory import collect_inventory, fingerprint
from opsdesk.agent.spool import Spool
from opsdesk.agent.system_state import SystemWatcher, WatchConfig
from opsdesk.agent.transport import Transport

log = logging.getLogger("opsdesk.agent")
INVENTORY_EVERY_S = 3600
INVENTORY_CHECK_S = 60
ASSIGNED_CHECKS_EVERY_S = 60


@dataclass
class AgentConfig:
    server: str
    token: str
    state_dir: Path
    interval: float = 15.0
    buffer_bytes: int = 64 * 1024 * 1024
    watch: WatchConfig = field(default_factory=WatchConfig)
    ca_file: str | None = None
    # Host-local checks: what the host allows, whatever the server asks (see local_settings).
    scripts_dir: Path = Path("/etc/opsdesk/scripts")
    log_roots: tuple[Path, ...] = (Path("/var/log"),)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.spool = Spool(config.state_dir / "spool", config.buffer_bytes)
        self.transport = Transport(config.server, config.token, cafile=config.ca_file)
        self.resources = ResourceCollector()
        self.watcher = SystemWatcher(config.watch, config.state_dir / "system-state.json")
        self.rejected = 0
        self.checks = AgentChecks(config.scripts_dir, config.log_roots)
        self._checks_fetched_at = 0.0
        self._inventory_sent_at = 0.0
        self._inventory_checked_at = 0.0
        self._inventory_print = ""

    def _inventory_due(self, now: float) -> dict[str, Any] | None:
        if now - self._inventory_checked_at < INVENTORY_CHECK_S:
            return None
        self._inventory_checked_at = now
        inventory = collect_inventory(self.config.watch.passwd_file)
        print_ = fingerprint(inventory)
        if print_ != self._inventory_print or now - self._inventory_sent_at >= INVENTORY_EVERY_S:
            self._inventory_print, self._inventory_sent_at = print_, now
            return inventory
        return None

    def _refresh_checks(self, now: float) -> None:
        if now - self._checks_fetched_at < ASSIGNED_CHECKS_EVERY_S:
            return
        assigned = self.transport.fetch_monitors()
        if assigned is not None:  # keep the old list while the server is away
            self._checks_fetched_at = now
            self.checks.assign(assigned)

    def build_batch(self) -> dict[str, Any]:
        now = time.time()
        self._refresh_checks(now)
        samples = self.resources.collect()
        events = self.watcher.check()
        return {
            "v": 2,
            "seq": 0,  # set when spooled
            "instance": self.spool.instance,
            # On a 100 ms grid: scheduling jitter then leaves equal deltas, which the metric store
            # compresses to almost nothing (it measured about 0.75 bytes/sample for jitter).
            "t": round(now * 10) * 100,
            "interval": self.config.interval,
            "agent": {"version": __version__, "hostname": socket.gethostname()},
            # Series and values apart: the series repeat byte for byte, which the server recognises.
            "series": [[name, labels] for name, labels, _ in samples],
            "values": [value for _, _, value in samples],
            "events": events,
            "inventory": self._inventory_due(now),
            "top": self.resources.top_processes(),
            "dropped": self.spool.dropped,
            "check_results": self.checks.drain(),
        }

    def cycle(self) -> int:
        """Collect once, spool the batch, send what is pending; return how many were sent."""
        batch = self.build_batch()
        seq = self.spool.take_seq()
        batch["seq"] = seq
        self.spool.put(seq, gzip.compress(json.dumps(batch, separators=(",", ":")).encode(), 6))
        return self.flush()

    def flush(self) -> int:
        sent = 0
        for seq in self.spool.pending():
            result = self.transport.send(self.spool.read(seq))
            if result.ok:
                self.spool.remove(seq)
                sent += 1
                continue
            if result.retry:
                log.warning(
                    "server unavailable (%s %s); %d batches buffered",
                    result.status,
                    result.detail[:200],
                    len(self.spool.pending()),
                )
                break
            # The server refused this batch for good (malformed, too old...): it would never pass.
            log.error("batch %d refused by the server (%s): %s", seq, result.status, result.detail[:300])
            self.spool.remove(seq)
            self.rejected += 1
        return sent

    def run_forever(self) -> None:
        log.info(
            "opsdesk agent %s: sending to %s every %.0f s",
            __version__,
            self.transport.url,
            self.config.interval,
        )
        next_tick = time.monotonic()
        while True:
            try:
                self.cycle()
            except Exception:  # one bad cycle must not stop monitoring
                log.exception("collection cycle failed")
            next_tick += self.config.interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # we fell behind (suspend, slow disk): skip missed ticks
                next_tick = time.monotonic() + self.config.interval
                delay = self.config.interval
            time.sleep(delay)
