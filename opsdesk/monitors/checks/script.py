"""Custom scripts in the Nagios plugin convention (R-MON-4), run by the agent on the host.

The definition names a program by its bare file name, with arguments; the agent looks it up in
its own scripts directory (`--scripts-dir`, see local_settings), so what can run on a customer's
host is decided by whoever administers that host, never by the server. Before running, the file
(and the directory) must be owned by root or by the agent's user and not writable by group or
others, and a symbolic link must not lead out of the directory. The program is executed directly
with its argument list (no shell), in a session of its own, with stdin closed.

Exit code 0/1/2/3 is OK/WARNING/CRITICAL/UNKNOWN; any other code, a signal or a refusal to run is
UNKNOWN. The first output line is the status text and carries the performance data (see
perfdata.py), stored as series perf/perf_warn/perf_crit/perf_min/perf_max. At the timeout the
whole process group is killed and the result is UNKNOWN "killed after N s". Output past
`script_output_bytes` is read and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from opsdesk.monitors.checks import local_settings
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, Status, ms
from opsdesk.monitors.checks.perfdata import parse_output, perf_series
from opsdesk.monitors.checks.registry import register

EXIT_STATUS: dict[int, Status] = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$")
MESSAGE_CHARS = 1000  # what a result message may hold (the agent batch schema's bound)


class ScriptConfig(CheckConfig):
    script: str = Field(description="file name inside the agent's scripts directory")
    args: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("script")
    @classmethod
    def _script(cls, value: str) -> str:
        if "/" in value or "\\" in value or ".." in value or not _SCRIPT_NAME.match(value):
            raise ValueError(
                "a bare file name in the agent's scripts directory (letters, digits, . _ + -; no / or ..)"
            )
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        for arg in value:
            if "\x00" in arg or len(arg) > 1024:
                raise ValueError("each argument must be at most 1024 characters, without NUL")
        return value


class ScriptRefused(Exception):
    """The script may not run; the message says why, for the person reading the result."""


def resolve_script(scripts_dir: Path, name: str) -> Path:
    """The script's real path inside `scripts_dir`, after the ownership and permission checks."""
    try:
        root = scripts_dir.resolve(strict=True)
    except OSError as exc:
        raise ScriptRefused(f"scripts directory {scripts_dir} is not readable: {exc.strerror}") from None
    _trusted(root, "scripts directory")
    candidate = root / name
    try:
        real = candidate.resolve(strict=True)
    except OSError as exc:
        raise ScriptRefused(f"script {name} not found in {root}: {exc.strerror}") from None
    if not real.is_relative_to(root):
        raise ScriptRefused(f"script {name} is a link leading out of {root}")
    for parent in real.parents:  # a link to a subdirectory: each one between must be trusted too
        if parent == root:
            break
        _trusted(parent, "directory")
    st = _trusted(real, "script")
    if not stat.S_ISREG(st.st_mode):
        raise ScriptRefused(f"script {name} is not a regular file")
    if not os.access(real, os.X_OK):
        raise ScriptRefused(f"script {name} is not executable")
    return real


def _trusted(path: Path, what: str) -> os.stat_result:
    st = path.stat()
    if st.st_uid not in (0, os.geteuid()):
        raise ScriptRefused(f"{what} {path} is owned by uid {st.st_uid}, not by root or the agent's user")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ScriptRefused(
            f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
        )
    return st


@register("script")
class ScriptCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = ScriptConfig
    host_local: ClassVar[bool] = True

    async def run(self, config: ScriptConfig) -> CheckResult:
        settings = local_settings.current()
        try:
            path = resolve_script(settings.scripts_dir, config.script)
        except ScriptRefused as exc:
            return CheckResult.at_level("unknown", "script_refused", str(exc))
        start = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(
                str(path),
                *config.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(path.parent),
                env=_environment(),
                start_new_session=True,  # its own process group, so the timeout kills its children too
            )
        except OSError as exc:
            return CheckResult.at_level(
                "unknown", "script_error", f"cannot run {config.script}: {exc.strerror or exc}"
            )
        assert proc.stdout is not None and proc.stderr is not None
        limit = settings.script_output_bytes
        out, err = _Capture(limit), _Capture(limit)
        readers = [
            asyncio.ensure_future(out.drain(proc.stdout)),
            asyncio.ensure_future(err.drain(proc.stderr)),
        ]
        timed_out = False
        try:
            async with asyncio.timeout(config.timeout_s):
                returncode = await _exited(proc)
        except TimeoutError:
            timed_out = True
        finally:
            # Nothing the script started outlives its run (nor a cancelled check): children it
            # left behind would also hold the pipes open.
            _kill_group(proc.pid)
        # A process that left the group (setsid) and kept the pipes is not waited for beyond 0.5 s.
        _done, pending = await asyncio.wait(readers, timeout=0.5)
        for task in pending:
            task.cancel()
        duration = ms(time.perf_counter() - start)
        if timed_out:
            with contextlib.suppress(TimeoutError):  # reaped here, not after the loop is gone
                await asyncio.wait_for(_exited(proc), 0.5)
            return CheckResult.at_level(
                "unknown",
                "script_timeout",
                f"{config.script} killed after {config.timeout_s:g} s without finishing",
                {"duration_ms": duration},
            )
        return _result(config.script, returncode, out, err, duration)


class _Capture:
    """Keeps up to `limit` bytes of a stream, reading (and dropping) the rest until EOF."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.cut = False

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.cut = True
            self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The exit code, as soon as the process has exited: Process.wait also waits for the pipes
    to close, which a child left running in the background would delay to the timeout."""
    while proc.returncode is None:
        await asyncio.sleep(0.05)
    return proc.returncode


def _environment() -> dict[str, str]:
    """The agent's environment without its own settings (the agent token may be among them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, signal.SIGKILL)


def _result(name: str, returncode: int, out: _Capture, err: _Capture, duration_ms: float) -> CheckResult:
    parsed = parse_output(out.text())
    stderr_lines = err.text().strip().splitlines()
    stderr_line = stderr_lines[0][:200] if stderr_lines else ""
    metrics = {"duration_ms": duration_ms, "perfdata_errors": float(len(parsed.errors))}
    if returncode >= 0:
        metrics["exit_code"] = float(returncode)
    status: Status
    if returncode in EXIT_STATUS:
        status = EXIT_STATUS[returncode]
        result_code = "ok" if status == "ok" else f"script_{status}"
        text = parsed.text or f"{name} exited {returncode} without output"
        if not parsed.text and stderr_line:
            text += f" (stderr: {stderr_line})"
    else:
        status, result_code = "unknown", "script_error"
        how = (
            f"was killed by signal {-returncode}"
            if returncode < 0
            else f"exited {returncode}, outside the plugin convention 0-3"
        )
        detail = parsed.text or stderr_line
        text = f"{name} {how}" + (f": {detail}" if detail else "")
    notes: list[str] = []
    if parsed.errors:
        notes.append(f"malformed perfdata: {'; '.join(parsed.errors)}")
    if out.cut or err.cut:
        notes.append(f"output cut at {out.limit} bytes")
    message = text + (" [" + " | ".join(notes) + "]" if notes else "")
    if parsed.long_text:
        message += "\n" + "\n".join(parsed.long_text)
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    return CheckResult.at_level(status, result_code, message, metrics, perf_series(parsed.perfdata))
