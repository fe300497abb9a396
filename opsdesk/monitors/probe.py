"""The probe role: runs the platform's checks on time, spread over their intervals.

Definitions are reloaded every RELOAD_S seconds, or at once when `poke()` is called after a
change in this process. Each check first runs at a fixed offset within its interval (from its id),
so 20,000 checks at 60 s do not all fire in the same second.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from opsdesk.core.runtime import Runtime
from opsdesk.monitors import secrets
from opsdesk.monitors.checks import CheckConfig, CheckDefinitionError, Checker, CheckResult, registry
from opsdesk.monitors.models import Monitor, Runner
from opsdesk.monitors.results import Outcome, ResultWriter

log = logging.getLogger("opsdesk.probe")
RELOAD_S = 10.0
GOLDEN = 0.6180339887498949


@dataclass(order=True)
class _Due:
    at: float  # monotonic seconds
    monitor_id: int = field(compare=False)
    generation: float = field(compare=False)  # the definition's revision


@dataclass
class _Def:
    type: str
    config: CheckConfig
    generation: float
    running: bool = False


class Probe:
    def __init__(
        self,
        rt: Runtime,
        writer: ResultWriter,
        concurrency: int = 2000,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.rt, self.writer = rt, writer
        self.on_change = on_change  # told the asset id when a check changes state (alerts)
        self.checker = Checker()
        self.semaphore = asyncio.Semaphore(concurrency)
        self._defs: dict[int, _Def] = {}
        self._heap: list[_Due] = []
        self._generation = 0
        self._poked = asyncio.Event()
        self.lags_ms: deque[float] = deque(maxlen=100_000)  # start time minus due time
        self.skipped = 0  # runs not started because the previous one was still going
        self._tasks: set[asyncio.Task[None]] = set()

    def poke(self) -> None:
        self._poked.set()

    def _versions(self) -> dict[int, float]:
        """Id -> definition revision of every enabled platform check: cheap to ask every few seconds.

        Not updated_at: every stored result changes that, and would reschedule the check.
        """
        with self.rt.sessions() as s:
            rows = s.execute(
                select(Monitor.id, Monitor.revision).where(Monitor.enabled, Monitor.runner == Runner.platform)
            ).all()
        return {r.id: float(r.revision) for r in rows}

    def _definitions(self, ids: list[int]) -> dict[int, tuple[str, dict[str, Any]]]:
        out: dict[int, tuple[str, dict[str, Any]]] = {}
        with self.rt.sessions() as s:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for r in s.execute(
                    select(Monitor.id, Monitor.type, Monitor.config).where(Monitor.id.in_(chunk))
                ):
                    out[r.id] = (r.type, r.config)
        return out

    async def reload(self) -> None:
        """Pick up new, changed and removed checks; unchanged ones keep their place in the schedule."""
        versions = await asyncio.to_thread(self._versions)
        for gone in set(self._defs) - set(versions):
            del self._defs[gone]  # its heap entries are skipped when they come up
        changed = [i for i, v in versions.items() if i not in self._defs or self._defs[i].generation != v]
        if not changed:
            return
        rows = await asyncio.to_thread(self._definitions, changed)
        now = time.monotonic()
        for monitor_id, (type_name, raw) in rows.items():
            try:
                if registry.get(type_name).host_local:  # rows written around monitors.service
                    raise CheckDefinitionError(type_name, [("runner", "runs only on an agent on the host")])
                config = secrets.runnable(type_name, raw)
            except (CheckDefinitionError, ValueError) as exc:  # ValueError: a secret the key cannot open
                log.warning("monitor %d not scheduled: %s", monitor_id, exc)
                continue
            version = versions[monitor_id]
            self._defs[monitor_id] = _Def(type_name, config, version)
            offset = (monitor_id * GOLDEN) % 1.0 * config.interval_s
            heapq.heappush(self._heap, _Due(now + offset, monitor_id, version))
            if len(rows) > 1000:
                await asyncio.sleep(0)  # a first load of thousands must not hold up due checks

    async def serve(self) -> None:
        """Run until cancelled."""
        next_reload = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_reload or self._poked.is_set():
                    self._poked.clear()
                    await self.reload()
                    next_reload = now + RELOAD_S
                self._start_due(time.monotonic())
                wait = min(next_reload, self._heap[0].at if self._heap else next_reload) - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._poked.wait(), timeout=min(wait, 1.0))
        finally:
            await self.checker.aclose()

    def _start_due(self, now: float) -> None:
        while self._heap and self._heap[0].at <= now:
            due = heapq.heappop(self._heap)
            d = self._defs.get(due.monitor_id)
            if d is None or d.generation != due.generation:
                continue  # deleted or redefined: a fresh entry exists
            interval = d.config.interval_s
            nxt = due.at + interval
            if nxt <= now:  # fell behind by a whole interval: do not run twice in a row
                nxt = now + interval
            heapq.heappush(self._heap, _Due(nxt, due.monitor_id, due.generation))
            if d.running:
                self.skipped += 1
                continue
            self.lags_ms.append((now - due.at) * 1000)
            d.running = True
            task = asyncio.create_task(self._run(due.monitor_id, d))
            self._tasks.add(task)  # keep a reference until it ends (asyncio holds tasks weakly)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, monitor_id: int, d: _Def) -> None:
        try:
            async with self.semaphore:
                result = await self.checker.run(d.config)
            await self._record(monitor_id, result)
        except Exception:
            log.exception("monitor %d failed to run", monitor_id)
        finally:
            d.running = False

    async def run_now(self, monitor_id: int, config: CheckConfig) -> CheckResult:
        result = await self.checker.run(config)
        await self._record(monitor_id, result)
        return result

    async def record(self, outcome: Outcome) -> None:
        """Store a result (the probe's own, or one an agent sent) and report a change of state."""
        recorded = await asyncio.wrap_future(self.writer.submit(outcome))
        if recorded.changed and recorded.asset_id is not None and self.on_change is not None:
            self.on_change(recorded.asset_id)

    async def _record(self, monitor_id: int, result: CheckResult) -> None:
        await self.record(Outcome(monitor_id, datetime.now(UTC), result))
