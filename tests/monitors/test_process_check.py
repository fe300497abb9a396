"""Process monitor against real processes started by the test."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks.base import CheckResult
from opsdesk.monitors.checks.process import ProcessCheck


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def sleeper(tag: str) -> subprocess.Popen[bytes]:
    """`sleep 300` whose command line starts with `tag` (its argv[0])."""
    return subprocess.Popen([tag, "300"], executable=shutil.which("sleep"))


def run(check: ProcessCheck, **definition: Any) -> CheckResult:
    return asyncio.run(check.run(checks.validate("process", definition)))


def test_count_cpu_and_memory_of_processes_matched_by_command_line(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    tag = f"opsdesk-test-{uuid.uuid4().hex[:12]}"
    check = ProcessCheck()
    for _ in range(3):
        procs.append(sleeper(tag))
    # one busy process, so the CPU figure has something to show
    procs.append(subprocess.Popen(["sh", "-c", "while :; do :; done", tag]))
    result = run(check, cmdline=tag, min_count=4, max_count=4)
    assert result.level == "ok", result.message
    assert result.metrics["count"] == 4
    assert result.metrics["rss_bytes"] > 4 * 100_000
    # the busy loop, measured on the first run (the machine is shared: it may not get a whole core)
    assert 10 < result.metrics["cpu_percent"] <= 400
    time.sleep(1.0)
    again = run(check, cmdline=tag, min_count=4, max_count=4)
    assert 10 < again.metrics["cpu_percent"] <= 400  # measured since the previous run
    procs.append(sleeper(tag))
    too_many = run(check, cmdline=tag, min_count=4, max_count=4)
    assert (too_many.level, too_many.code) == ("critical", "process_count")
    assert "5 processes" in too_many.message and "more than 4" in too_many.message


def test_exact_name(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    name = f"odk{uuid.uuid4().hex[:8]}"  # 11 characters: the kernel keeps at most 15
    binary = tmp_path / name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    binary.chmod(0o755)
    check = ProcessCheck()
    procs.append(subprocess.Popen([str(binary), "300"]))
    result = run(check, process_name=name)
    assert (result.level, result.metrics["count"]) == ("ok", 1)
    assert run(check, process_name=name[:-1]).metrics["count"] == 0  # exact, not a prefix


def test_missing_process_is_critical() -> None:
    result = run(ProcessCheck(), process_name="no-such-process-here")
    assert (result.level, result.code) == ("critical", "process_missing")
    assert result.message == "no process named no-such-process-here"
    assert result.metrics["count"] == 0


def test_fewer_than_expected(procs: list[subprocess.Popen[bytes]]) -> None:
    tag = f"opsdesk-test-{uuid.uuid4().hex[:12]}"
    procs.append(sleeper(tag))
    result = run(ProcessCheck(), cmdline=tag, min_count=2)
    assert result.level == "critical" and "fewer than 2" in result.message


def test_min_count_zero_accepts_none() -> None:
    result = run(ProcessCheck(), process_name="no-such-process-here", min_count=0)
    assert result.level == "ok"


@pytest.mark.parametrize(
    "definition",
    [{}, {"cmdline": "(bad"}, {"process_name": "x", "min_count": 3, "max_count": 2}],
)
def test_bad_definitions(definition: dict[str, Any]) -> None:
    with pytest.raises(checks.CheckDefinitionError):
        checks.validate("process", definition)
