"""The probe never runs host-local check types (script, process, log), even from rows written directly."""

from __future__ import annotations

import asyncio

from opsdesk.core.runtime import Runtime
from opsdesk.monitors.models import Monitor, MonitorState, Runner
from opsdesk.monitors.probe import Probe
from opsdesk.monitors.results import ResultWriter
from tests.world import seed_world


def test_a_platform_row_of_a_host_local_type_is_not_scheduled(sqlite_runtime: Runtime) -> None:
    world = seed_world(sqlite_runtime)
    with sqlite_runtime.sessions.begin() as s:
        rows = [
            Monitor(
                customer_id=world.a.customer, name=name, type=kind, config=config,
                runner=Runner.platform, state=MonitorState.unknown,
            )
            for name, kind, config in (
                ("sneaky script", "script", {"script": "check_disk", "interval_s": 60}),
                ("plain tcp", "tcp", {"host": "127.0.0.1", "port": 9, "interval_s": 60}),
            )
        ]  # fmt: skip
        s.add_all(rows)
        s.flush()
        script_id, tcp_id = rows[0].id, rows[1].id
    writer = ResultWriter(sqlite_runtime)
    try:
        probe = Probe(sqlite_runtime, writer)
        asyncio.run(probe.reload())
        scheduled = set(probe._defs)
    finally:
        writer.close()
    assert tcp_id in scheduled
    assert script_id not in scheduled
