"""Log monitor: lines matching patterns, counted per run, with the last ones kept as context.

Runs on the agent. Each run reads what was written since the previous run (see tail.py for
rotation and truncation) and counts, per pattern, the lines it matches (a line matching several
patterns counts once in `matches`). The status follows the number of matching lines in the run:
critical from `critical_count`, warning from `warning_count` (1 by default: any match warns).
The message names the counts and ends with the last `context_lines` matching lines seen (across
runs), so an event raised on a match shows what was logged.

The path must lie inside one of the agent's log roots (`--log-root`, /var/log by default): the
server names the file, the host decides what may be read. Two log checks with the same
definition on one agent share their reading position.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from opsdesk.monitors.checks import local_settings
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Series, Status
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.tail import Tailer

MESSAGE_CHARS = 1000
CONTEXT_LINE_CHARS = 200
# A followed file nobody asked about for this long is closed (its check was removed or changed).
FORGET_AFTER_S = 3600.0


class LogConfig(CheckConfig):
    path: str = Field(max_length=4096, description="absolute path of the log file on the host")
    patterns: list[str] = Field(min_length=1, max_length=20, description="regular expressions")
    from_start: bool = False
    warning_count: int | None = Field(1, ge=1)
    critical_count: int | None = Field(None, ge=1)
    context_lines: int = Field(10, ge=0, le=50)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value:
            raise ValueError("an absolute path, e.g. /var/log/nginx/error.log")
        return value

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern or len(pattern) > 256:
                raise ValueError("each pattern must be 1 to 256 characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        if len(set(value)) != len(value):
            raise ValueError("a pattern is listed twice")
        return value

    @field_validator("critical_count")
    @classmethod
    def _thresholds(cls, value: int | None, info: ValidationInfo) -> int | None:
        warning = info.data.get("warning_count")
        if value is not None and warning is not None and warning > value:
            raise ValueError("critical_count cannot be below warning_count")
        return value


@dataclass
class _Watch:
    tailer: Tailer
    patterns: list[re.Pattern[str]]
    context: deque[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    used_at: float = 0.0


def allowed(path: Path, roots: tuple[Path, ...]) -> bool:
    """The path, with links resolved, lies inside one of the roots."""
    real = path.resolve()
    return any(real.is_relative_to(root.resolve()) for root in roots)


@register("log")
class LogCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = LogConfig
    host_local: ClassVar[bool] = True

    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    async def run(self, config: LogConfig) -> CheckResult:
        roots = local_settings.current().log_roots
        path = Path(config.path)
        if not allowed(path, roots):
            where = ", ".join(str(r) for r in roots)
            return CheckResult.at_level(
                "unknown", "log_refused", f"{path} is outside the agent's log directories ({where})"
            )
        watch = self._watch(config)
        return await asyncio.to_thread(self._run, config, watch)

    def _watch(self, config: LogConfig) -> _Watch:
        now = time.monotonic()
        for key, old in list(self._watches.items()):
            if now - old.used_at > max(FORGET_AFTER_S, 3 * config.interval_s) and not old.lock.locked():
                old.tailer.close()
                del self._watches[key]
        key = config.model_dump_json(include={"path", "patterns", "from_start"})
        watch = self._watches.get(key)
        if watch is None:
            watch = _Watch(
                Tailer(Path(config.path), from_start=config.from_start),
                [re.compile(p) for p in config.patterns],
                deque(maxlen=config.context_lines),
            )
            self._watches[key] = watch
        if watch.context.maxlen != config.context_lines:
            watch.context = deque(watch.context, maxlen=config.context_lines)
        watch.used_at = now
        return watch

    def _run(self, config: LogConfig, watch: _Watch) -> CheckResult:
        with watch.lock:
            poll = watch.tailer.poll()
            counts = [0] * len(watch.patterns)
            matched = 0
            for line in poll.lines:
                hit = False
                for i, pattern in enumerate(watch.patterns):
                    if pattern.search(line):
                        counts[i] += 1
                        hit = True
                if hit:
                    matched += 1
                    watch.context.append(line[:CONTEXT_LINE_CHARS])
            context = list(watch.context)
        metrics = {
            "matches": float(matched),
            "lines": float(len(poll.lines)),
            "bytes_read": float(poll.bytes_read),
        }
        series = [
            Series("log_matches", {"pattern": p}, float(n))
            for p, n in zip(config.patterns, counts, strict=True)
        ]
        if poll.missing and not poll.lines:
            return CheckResult.at_level("unknown", "log_unreadable", poll.missing, metrics, series)
        status: Status = "ok"
        if config.critical_count and matched >= config.critical_count:
            status = "critical"
        elif config.warning_count and matched >= config.warning_count:
            status = "warning"
        per_pattern = ", ".join(f"{p}: {n}" for p, n in zip(config.patterns, counts, strict=True) if n)
        message = f"{matched} matching of {len(poll.lines)} new lines in {config.path}"
        if per_pattern:
            message += f" ({per_pattern})"
        message = message[: MESSAGE_CHARS // 2]
        if matched and context:
            head = message + "\nlast matching lines:\n"
            while context and len(head) + len("\n".join(context)) > MESSAGE_CHARS:
                context.pop(0)  # the newest lines matter most
            message = head + "\n".join(context)
        code = "ok" if status == "ok" else "log_matches"
        return CheckResult.at_level(status, code, message, metrics, series)

    async def aclose(self) -> None:
        for watch in self._watches.values():
            watch.tailer.close()
        self._watches = {}
