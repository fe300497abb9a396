"""Checks the server assigned to this agent, for sites only reachable inside the customer's network.

They run in a thread with an event loop of its own, on their own intervals; results wait in a
list until the next batch takes them. The check code (and its HTTP client) is imported only once
a check is assigned, so an agent without checks stays small.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("opsdesk.agent.checks")


class AgentChecks:
    def __init__(self) -> None:
        self._defs: dict[int, tuple[str, dict[str, Any]]] = {}
        self._results: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def assign(self, monitors: list[dict[str, Any]]) -> None:
        """Replace the assigned checks with the server's list."""
        with self._lock:
            self._defs = {int(m["id"]): (str(m["type"]), dict(m["config"])) for m in monitors}
        if self._defs and self._thread is None:
            self._thread = threading.Thread(target=self._thread_main, name="checks", daemon=True)
            self._thread.start()

    def _thread_main(self) -> None:
        import asyncio  # here, not at the top: asyncio costs an agent without checks 4 MB

        asyncio.run(self._loop())

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._results = self._results, []
        return out

    async def _loop(self) -> None:
        import asyncio

        from opsdesk.monitors.checks import CheckDefinitionError, Checker, validate

        checker = Checker()
        due: dict[int, float] = {}
        running: set[int] = set()
        tasks: set[asyncio.Task[None]] = set()

        async def run_one(monitor_id: int, config: Any) -> None:
            try:
                result = await checker.run(config)
                record = {"monitor": monitor_id, "t": int(time.time() * 1000), **result.as_dict()}
                record.pop("state", None)
                with self._lock:
                    self._results.append(record)
            finally:
                running.discard(monitor_id)

        while True:
            with self._lock:
                defs = dict(self._defs)
            now = time.monotonic()
            for monitor_id, (type_name, raw) in defs.items():
                if monitor_id in running or due.get(monitor_id, 0.0) > now:
                    continue
                try:
                    config = validate(type_name, raw)
                except CheckDefinitionError as exc:
                    log.warning("assigned check %d is not valid here: %s", monitor_id, exc)
                    due[monitor_id] = now + 300
                    continue
                due[monitor_id] = now + config.interval_s
                running.add(monitor_id)
                task = asyncio.create_task(run_one(monitor_id, config))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(1.0)
