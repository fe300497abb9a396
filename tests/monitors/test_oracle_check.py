"""Oracle check: there is no Oracle server here, so these tests cover the definition, a refused
connection through python-oracledb's thin driver, and the SQL-to-figures mapping with a fake cursor
returning rows shaped like Oracle's. The live queries against v$ views are not run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.oracle import (
    SESSIONS_MAX_SQL,
    SESSIONS_SQL,
    TABLESPACES_SQL,
    WAITS_SQL,
    OracleConfig,
    collect,
    evaluate,
)
from tests.monitors.conftest import run_check
from tests.nginx_fixture import free_port

BASE = {"host": "127.0.0.1", "service_name": "FREEPDB1", "user": "opsdesk_mon", "password": "pw"}


class FakeCursor:
    """Answers each statement the check sends with canned rows, and records what it was sent."""

    def __init__(self, answers: dict[str, list[tuple[Any, ...]]]) -> None:
        self.answers = answers
        self.sent: list[str] = []
        self._rows: list[tuple[Any, ...]] = []

    async def execute(self, statement: str) -> None:
        self.sent.append(statement)
        self._rows = self.answers[statement]

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


ANSWERS: dict[str, list[tuple[Any, ...]]] = {
    SESSIONS_SQL: [
        ("ACTIVE", "USER", 3),
        ("INACTIVE", "USER", 12),
        ("ACTIVE", "BACKGROUND", 40),
        ("KILLED", "USER", 1),
    ],
    SESSIONS_MAX_SQL: [("472",)],
    TABLESPACES_SQL: [
        ("SYSTEM", 900 * 8192, 1000 * 8192, 90.0),
        ("USERS", 10 * 8192, 4_194_302 * 8192, 0.000238),
        ("UNDOTBS1", 950 * 8192, 1000 * 8192, 95.0),
    ],
    WAITS_SQL: [("User I/O", 1200, 3_500_000), ("Commit", 80, 250_000), ("Concurrency", 5, 0)],
}


def test_rows_map_to_sessions_tablespaces_and_wait_classes() -> None:
    cursor = FakeCursor(ANSWERS)
    figures, series = asyncio.run(collect(cursor))
    assert cursor.sent == [SESSIONS_SQL, SESSIONS_MAX_SQL, TABLESPACES_SQL, WAITS_SQL]
    assert figures["sessions"] == 16 and figures["active_sessions"] == 3
    assert figures["background_sessions"] == 40 and figures["max_sessions"] == 472
    assert figures["sessions_percent"] == round(100 * 56 / 472, 3)
    assert figures["tablespaces"] == 3 and figures["tablespace_max_used_percent"] == 95.0
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in series}
    assert got[("sessions_by_status", (("status", "inactive"),))] == 12
    assert got[("sessions_by_status", (("status", "killed"),))] == 1
    assert got[("tablespace_used_bytes", (("tablespace", "SYSTEM"),))] == 900 * 8192
    assert got[("tablespace_size_bytes", (("tablespace", "USERS"),))] == 4_194_302 * 8192
    assert got[("wait_time_s_total", (("wait_class", "User I/O"),))] == 3.5
    assert got[("wait_total", (("wait_class", "Commit"),))] == 80
    config = OracleConfig.model_validate(BASE)
    assert evaluate(config, figures, series) == (
        "warning",
        "tablespace_full",
        "tablespaces over 90 % full: UNDOTBS1",
    )
    relaxed = OracleConfig.model_validate({**BASE, "max_tablespace_percent": 99})
    assert evaluate(relaxed, figures, series)[0] == "ok"


def test_the_sql_reads_the_views_named_in_the_issue() -> None:
    assert "v$session" in SESSIONS_SQL
    assert "dba_tablespace_usage_metrics" in TABLESPACES_SQL
    assert "v$system_wait_class" in WAITS_SQL and "'Idle'" in WAITS_SQL


def test_refused_connection_is_critical_with_a_clear_message() -> None:
    port = free_port()
    result = run_check("oracle", **{**BASE, "port": port, "timeout_s": 3})
    assert result.level == "critical" and result.code == "connect_refused", result
    assert result.message == f"connection to 127.0.0.1:{port} refused"


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({**BASE, "port": 0}, "port"),
        ({**BASE, "sid": "ORCL"}, ""),  # service_name and sid both
        ({k: v for k, v in BASE.items() if k != "service_name"}, ""),  # neither
        ({**BASE, "service_name": "bad name;"}, "service_name"),
        ({**BASE, "password": None}, ""),
        ({**BASE, "max_tablespace_percent": 120}, "max_tablespace_percent"),
    ],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("oracle", definition)
    assert field in caught.value.as_dict(), caught.value.as_dict()
