"""Log monitor: matching lines counted exactly once across rotation and truncation."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import local_settings
from opsdesk.monitors.checks.base import CheckResult
from opsdesk.monitors.checks.logfile import LogCheck
from opsdesk.monitors.checks.tail import Tailer


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "log"
    root.mkdir()
    saved = local_settings.current()
    local_settings.configure(local_settings.LocalSettings(log_roots=(root,)))
    yield root
    local_settings.configure(saved)


class Runner:
    """One LogCheck instance kept across runs, as the agent's Checker keeps it."""

    def __init__(self, **definition: Any) -> None:
        self.check = LogCheck()
        self.config = checks.validate("log", definition)

    def __call__(self) -> CheckResult:
        return asyncio.run(self.check.run(self.config))

    def close(self) -> None:
        asyncio.run(self.check.aclose())


def matches(result: CheckResult) -> dict[str, float]:
    return {s.labels["pattern"]: s.value for s in result.series if s.name == "log_matches"}


class Writer:
    """A program writing its log through an open handle, as daemons do."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: IO[str] = path.open("a")
        self.written: list[str] = []
        self.n = 0

    def lines(self, count: int) -> None:
        for _ in range(count):
            self.n += 1
            line = f"{self.n:06d} {'ERROR disk full' if self.n % 3 == 0 else 'INFO all good'}"
            self.fh.write(line + "\n")
            self.written.append(line)
        self.fh.flush()

    def reopen(self) -> None:
        self.fh.close()
        self.fh = self.path.open("a")

    def close(self) -> None:
        self.fh.close()


def test_counts_new_matching_lines_per_pattern(logs: Path) -> None:
    log = logs / "app.log"
    log.write_text("ERROR old news\n")
    run = Runner(path=str(log), patterns=["ERROR", "timeout"], warning_count=1, critical_count=3)
    first = run()
    assert (first.level, first.metrics["matches"]) == ("ok", 0)  # what was there before is not news
    with log.open("a") as fh:
        fh.write("INFO fine\nERROR db timeout\nWARN slow\n")
    second = run()
    assert second.level == "warning"
    assert matches(second) == {"ERROR": 1, "timeout": 1}
    assert (second.metrics["matches"], second.metrics["lines"]) == (1, 3)  # one line, both patterns
    assert second.message.endswith("last matching lines:\nERROR db timeout")
    with log.open("a") as fh:
        fh.write("ERROR a\nERROR b\nERROR c\n")
    third = run()
    assert third.level == "critical" and third.code == "log_matches"
    assert third.message.splitlines()[-4:] == ["ERROR db timeout", "ERROR a", "ERROR b", "ERROR c"]
    assert run().level == "ok"  # nothing new: back to ok
    run.close()


def test_from_start_reads_what_is_there(logs: Path) -> None:
    log = logs / "app.log"
    log.write_text("ERROR 1\nERROR 2\nINFO 3\n")
    run = Runner(path=str(log), patterns=["ERROR"], from_start=True)
    assert run().metrics["matches"] == 2
    run.close()


def test_partial_line_waits_for_its_newline(logs: Path) -> None:
    log = logs / "app.log"
    log.write_text("")
    run = Runner(path=str(log), patterns=["ERROR disk"])
    run()
    with log.open("a") as fh:
        fh.write("ERROR di")
    assert run().metrics["matches"] == 0
    with log.open("a") as fh:
        fh.write("sk full\n")
    assert run().metrics["matches"] == 1
    run.close()


@pytest.mark.parametrize("seed", range(6))
def test_rotation_and_truncation_lose_no_line_and_repeat_none(logs: Path, seed: int) -> None:
    rng = random.Random(seed)
    log = logs / "app.log"
    writer = Writer(log)
    tailer = Tailer(log, from_start=True)
    run = Runner(path=str(log), patterns=["ERROR"], from_start=True)
    seen: list[str] = []
    counted = 0

    def poll() -> None:
        nonlocal counted
        seen.extend(tailer.poll().lines)
        counted += int(run().metrics["matches"])

    for generation in range(12):
        writer.lines(rng.randint(1, 40))
        poll()
        writer.lines(rng.randint(0, 20))
        if rng.random() < 0.5:
            poll()  # copytruncate loses what was written after the last read; logrotate's rename does not
            shutil.copy(log, logs / f"app.log.{generation}")
            with log.open("r+") as fh:
                fh.truncate(0)
        else:
            os.rename(log, logs / f"app.log.{generation}")
            writer.lines(rng.randint(0, 5))  # still writing to the renamed file
            if rng.random() < 0.5:
                poll()  # a run between the rename and the reopen
            writer.reopen()
        writer.lines(rng.randint(0, 30))
        if rng.random() < 0.5:
            poll()
    poll()
    poll()  # the last renamed file is closed one poll after it stopped growing
    writer.close()
    assert seen == writer.written
    assert counted == sum("ERROR" in line for line in writer.written)
    tailer.close()
    run.close()


def test_truncated_and_regrown_past_the_old_position_is_read_from_the_start(logs: Path) -> None:
    log = logs / "app.log"
    log.write_text("first generation line\n")
    tailer = Tailer(log, from_start=True)
    assert tailer.poll().lines == ["first generation line"]
    with log.open("r+") as fh:
        fh.truncate(0)
    with log.open("a") as fh:
        fh.write("second generation, longer than the first one\n")
    assert tailer.poll().lines == ["second generation, longer than the first one"]
    tailer.close()


def test_missing_file_is_unknown_then_read_whole_when_it_appears(logs: Path) -> None:
    log = logs / "late.log"
    run = Runner(path=str(log), patterns=["ERROR"])
    result = run()
    assert (result.level, result.code) == ("unknown", "log_unreadable")
    assert "No such file" in result.message
    log.write_text("ERROR written before the next run\n")
    assert run().metrics["matches"] == 1
    run.close()


def test_paths_outside_the_log_roots_are_refused(logs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash\n")
    (logs / "sneaky.log").symlink_to(secret)
    for path in (str(secret), str(logs / "sneaky.log"), str(logs / ".." / "shadow")):
        result = Runner(path=path, patterns=[".*"], from_start=True)()
        assert (result.level, result.code) == ("unknown", "log_refused"), path
        assert "root:" not in result.message


def test_a_fifo_is_not_read(logs: Path) -> None:
    fifo = logs / "pipe.log"
    os.mkfifo(fifo)
    result = Runner(path=str(fifo), patterns=["x"])()
    assert result.level == "unknown" and "not a regular file" in result.message


def test_context_keeps_the_newest_lines_within_the_message_bound(logs: Path) -> None:
    log = logs / "app.log"
    log.write_text("")
    run = Runner(path=str(log), patterns=["ERROR"], context_lines=50)
    run()
    with log.open("a") as fh:
        for i in range(100):
            fh.write(f"ERROR number {i:03d} " + "x" * 150 + "\n")
    result = run()
    assert len(result.message) <= 1000
    assert result.message.splitlines()[-1].startswith("ERROR number 099")
    run.close()


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"path": "relative.log", "patterns": ["x"]}, "path"),
        ({"path": "/var/log/x", "patterns": []}, "patterns"),
        ({"path": "/var/log/x", "patterns": ["(unclosed"]}, "patterns"),
        ({"path": "/var/log/x", "patterns": ["a", "a"]}, "patterns"),
        (
            {"path": "/var/log/x", "patterns": ["a"], "warning_count": 5, "critical_count": 2},
            "critical_count",
        ),
    ],
)
def test_bad_definitions(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(checks.CheckDefinitionError) as err:
        checks.validate("log", definition)
    assert field in err.value.as_dict()
