"""Process monitor: the named processes are there, as many as expected; their CPU and memory.

Runs on the agent. A process matches by its exact name (as `ps -o comm` and psutil show it; a
name psutil finds cut to 15 characters is completed from the command line) and/or by a regular
expression searched in its command line (arguments joined by spaces). Too few or too many
matching processes is critical.

Figures: `count`, `cpu_percent` (summed over the matching processes; 100 is one core busy, so
it may exceed 100 on several cores) and `rss_bytes` (summed resident memory). CPU needs two
readings: the check keeps each process's psutil handle between runs, and a process seen for the
first time is read twice, 0.5 s apart, in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import ClassVar

import psutil
from pydantic import Field, ValidationInfo, field_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult
from opsdesk.monitors.checks.registry import register

FIRST_SAMPLE_S = 0.5


class ProcessConfig(CheckConfig):
    process_name: str | None = Field(None, min_length=1, max_length=255, description="exact process name")
    # validate_default: the "one of the two" rule runs even when cmdline is left out
    cmdline: str | None = Field(
        None, min_length=1, max_length=256, validate_default=True, description="regex on the command line"
    )
    min_count: int = Field(1, ge=0, le=100_000)
    max_count: int | None = Field(None, ge=0, le=100_000)

    @field_validator("cmdline")
    @classmethod
    def _cmdline(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            # (process_name is missing from info.data when it failed its own validation)
            if "process_name" in info.data and info.data["process_name"] is None:
                raise ValueError("give process_name, cmdline or both")
            return value
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("max_count")
    @classmethod
    def _max(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_count")
        if value is not None and low is not None and value < low:
            raise ValueError("max_count cannot be below min_count")
        return value

    def describe(self) -> str:
        parts = []
        if self.process_name is not None:
            parts.append(f"named {self.process_name}")
        if self.cmdline is not None:
            parts.append(f"with command line matching /{self.cmdline}/")
        return " and ".join(parts)


@register("process")
class ProcessCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = ProcessConfig
    host_local: ClassVar[bool] = True

    def __init__(self) -> None:
        # per definition: pid -> the handle whose cpu_percent() reads since the previous run
        self._known: dict[str, dict[int, psutil.Process]] = {}

    async def run(self, config: ProcessConfig) -> CheckResult:
        return await asyncio.to_thread(self._run, config)

    def _run(self, config: ProcessConfig) -> CheckResult:
        key = config.model_dump_json(include={"process_name", "cmdline"})
        known = self._known.setdefault(key, {})
        found = _matching(config)
        fresh: list[psutil.Process] = []
        current: dict[int, psutil.Process] = {}
        for proc in found:
            old = known.get(proc.pid)
            if old is not None and old == proc:  # same pid and start time: the same process
                current[proc.pid] = old
                continue
            # A handle of our own: process_iter shares its handles, and with them the CPU baseline.
            handle = _handle(proc)
            if handle is not None:
                current[proc.pid] = handle
                fresh.append(handle)
        self._known[key] = current
        if fresh:
            time.sleep(FIRST_SAMPLE_S)
        cpu = rss = 0.0
        count = 0
        for proc in current.values():
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                count += 1
            except psutil.NoSuchProcess:
                continue  # ended while being measured
            except psutil.AccessDenied:
                count += 1  # there, but its figures are not ours to read
        metrics = {"count": float(count), "cpu_percent": round(cpu, 2), "rss_bytes": float(rss)}
        what = config.describe()
        if count == 0 and config.min_count > 0:
            return CheckResult.at_level("critical", "process_missing", f"no process {what}", metrics)
        if count < config.min_count:
            return CheckResult.at_level(
                "critical",
                "process_count",
                f"{count} processes {what}, fewer than {config.min_count}",
                metrics,
            )
        if config.max_count is not None and count > config.max_count:
            return CheckResult.at_level(
                "critical",
                "process_count",
                f"{count} processes {what}, more than {config.max_count}",
                metrics,
            )
        return CheckResult.at_level(
            "ok",
            "ok",
            f"{count} processes {what}, CPU {cpu:.1f} %, memory {rss / 1048576:.1f} MiB",
            metrics,
        )


def _matching(config: ProcessConfig) -> list[psutil.Process]:
    regex = re.compile(config.cmdline) if config.cmdline is not None else None
    out: list[psutil.Process] = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        info = proc.info
        if config.process_name is not None and info.get("name") != config.process_name:
            continue
        if regex is not None and not regex.search(" ".join(info.get("cmdline") or [])):
            continue
        out.append(proc)
    return out


def _handle(proc: psutil.Process) -> psutil.Process | None:
    """A new handle on the same process, its CPU measurement started; None if it is gone."""
    try:
        handle = psutil.Process(proc.pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if handle != proc:
        return None  # the pid was reused in between
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        handle.cpu_percent(None)
    return handle
