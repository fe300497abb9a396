"""Checks the server assigned to this agent, for sites only reachable inside the customer's network.

They run in a thread with an event loop of its own, on their own intervals; results wait in a
list until the next batch takes them. The check code (and its HTTP client) is imported only once
a check is assigned, so an agent without checks stays small.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("opsdesk.agent.checks")

# What the server accepts of one result (opsdesk.ingest.schema.CheckResultIn): a result beyond
# it would make the server refuse the whole batch, host metrics included.
MAX_SERIES = 500
MAX_METRICS = 32
MAX_MESSAGE = 1000
MAX_CODE = 40
MAX_LABEL_VALUE = 256
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")


class AgentChecks:
    def __init__(
        self,
        scripts_dir: Path = Path("/etc/opsdesk/scripts"),
        log_roots: tuple[Path, ...] = (Path("/var/log"),),
    ) -> None:
        self.scripts_dir = scripts_dir
        self.log_roots = log_roots
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

        from opsdesk.monitors.checks import CheckDefinitionError, Checker, local_settings, validate

        local_settings.configure(
            local_settings.LocalSettings(scripts_dir=self.scripts_dir, log_roots=self.log_roots)
        )
        checker = Checker()
        due: dict[int, float] = {}
        running: set[int] = set()
        tasks: set[asyncio.Task[None]] = set()

        async def run_one(monitor_id: int, config: Any) -> None:
            try:
                result = await checker.run(config)
                record = fit_schema({"monitor": monitor_id, "t": int(time.time() * 1000), **result.as_dict()})
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


def fit_schema(record: dict[str, Any]) -> dict[str, Any]:
    """A result the server will accept: figures it cannot store are dropped, text is shortened,
    and a result with more series than one may carry becomes UNKNOWN, saying so."""
    record.pop("state", None)
    record["code"] = str(record["code"])[:MAX_CODE]
    metrics = {k: v for k, v in record["metrics"].items() if _NAME.match(k) and math.isfinite(v)}
    record["metrics"] = dict(list(metrics.items())[:MAX_METRICS])
    series = [
        s
        for s in record["series"]
        if _NAME.match(s[0])
        and math.isfinite(s[2])
        and all(_NAME.match(k) and len(v) <= MAX_LABEL_VALUE for k, v in s[1].items())
    ]
    dropped = len(record["series"]) - len(series)
    if len(series) > MAX_SERIES:
        record.update(
            ok=False,
            status="unknown",
            code="too_many_series",
            message=f"{len(series)} labelled figures, more than the {MAX_SERIES} an agent result may carry "
            "(for a Prometheus scrape: narrow metric_allow)",
        )
        series = []
    elif dropped:
        record["message"] = f"{record['message']} [{dropped} figures not storable, left out]"
    record["series"] = series
    if len(record["message"]) > MAX_MESSAGE:
        record["message"] = record["message"][: MAX_MESSAGE - 1] + "…"
    return record
