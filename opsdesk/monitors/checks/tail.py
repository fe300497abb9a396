"""Following a log file across rotation and truncation, losing and repeating no line.

A Tailer keeps the file open between polls, so a file renamed away (logrotate's default) is read
to its end through the open handle before the new file at the path is read from its start. The
old handle is kept one more poll, for what the program writes there before it reopens its log.
A file truncated in place (copytruncate) is noticed when it is shorter than the position read to,
or when its first bytes are no longer the ones seen, for a file that grew past the old position
between two polls; it is then read from its start. A line without its newline yet is held back
until the newline arrives (or the file is retired). Lines longer than `max_line_bytes` are cut
into pieces of that size.

What cannot be seen: a file created and rotated away again entirely between two polls, and with
copytruncate the lines written between the copy and the truncation (the copy holds them).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

HEAD_BYTES = 128  # the first bytes remembered to notice a truncation hidden by new writes


@dataclass
class _Open:
    fd: int
    dev: int
    ino: int
    pos: int = 0
    head: bytes = b""
    pending: bytearray = field(default_factory=bytearray)
    retired_polls: int = 0  # polls since the path stopped naming this file

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Poll:
    lines: list[str]
    bytes_read: int
    missing: str | None = None  # why the path could not be opened, when it could not


class Tailer:
    def __init__(
        self,
        path: Path,
        from_start: bool = False,
        max_line_bytes: int = 64 * 1024,
        max_read_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.from_start = from_start
        self.max_line_bytes = max_line_bytes
        self.max_read_bytes = max_read_bytes
        self._current: _Open | None = None
        self._retired: list[_Open] = []
        self._polled = False

    def poll(self) -> Poll:
        """The complete lines written since the last poll, oldest first."""
        lines: list[str] = []
        budget = [self.max_read_bytes]
        for old in list(self._retired):
            got = self._read(old, lines, budget)
            old.retired_polls += 1
            if got == 0 and old.retired_polls > 1:
                self._finish(old, lines)
                self._retired.remove(old)
        missing: str | None = None
        if self._current is None:
            # Only a file there at the first poll is old news; one appearing later is read whole.
            missing = self._open(start_at_end=not self._polled and not self.from_start)
        if self._current is not None:
            self._check_truncated(self._current, lines)
            self._read(self._current, lines, budget)
            if budget[0] > 0:
                missing = self._follow_rotation(lines, budget)
        self._polled = True
        return Poll(lines, self.max_read_bytes - budget[0], missing)

    def close(self) -> None:
        for item in [*self._retired, *([self._current] if self._current else [])]:
            item.close()
        self._retired, self._current = [], None

    def _open(self, start_at_end: bool) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            return f"cannot open {self.path}: {exc.strerror}"
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            os.close(fd)
            return f"{self.path} is not a regular file"
        self._current = _Open(fd, st.st_dev, st.st_ino)
        if start_at_end:
            self._current.pos = st.st_size
            self._current.head = os.pread(fd, min(HEAD_BYTES, st.st_size), 0)
        return None

    def _check_truncated(self, item: _Open, lines: list[str]) -> None:
        size = os.fstat(item.fd).st_size
        shrunk = size < item.pos
        if not shrunk and item.head and os.pread(item.fd, len(item.head), 0) != item.head:
            shrunk = True  # truncated and written past the old position since the last poll
        if shrunk:
            self._flush_pending(item, lines)
            item.pos, item.head = 0, b""

    def _follow_rotation(self, lines: list[str], budget: list[int]) -> str | None:
        assert self._current is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # renamed away, the new file not created yet: keep reading the old one
        if (st.st_dev, st.st_ino) == (self._current.dev, self._current.ino):
            return None
        self._retired.append(self._current)
        self._current = None
        problem = self._open(start_at_end=False)
        if self._current is not None:
            self._read(self._current, lines, budget)
        return problem

    def _read(self, item: _Open, lines: list[str], budget: list[int]) -> int:
        got = 0
        while budget[0] > 0:
            chunk = os.pread(item.fd, min(1024 * 1024, budget[0]), item.pos)
            if not chunk:
                break
            if item.pos < HEAD_BYTES:
                item.head = (item.head + chunk)[:HEAD_BYTES]
            item.pos += len(chunk)
            got += len(chunk)
            budget[0] -= len(chunk)
            self._split(item, chunk, lines)
        return got

    def _split(self, item: _Open, chunk: bytes, lines: list[str]) -> None:
        item.pending += chunk
        *complete, rest = bytes(item.pending).split(b"\n")
        lines.extend(_text(raw) for raw in complete)
        item.pending = bytearray(rest)
        while len(item.pending) > self.max_line_bytes:
            lines.append(_text(bytes(item.pending[: self.max_line_bytes])))
            del item.pending[: self.max_line_bytes]

    def _flush_pending(self, item: _Open, lines: list[str]) -> None:
        if item.pending:
            lines.append(_text(bytes(item.pending)))
            item.pending.clear()

    def _finish(self, item: _Open, lines: list[str]) -> None:
        """A retired file that stopped growing: its last line is complete even without a newline."""
        self._flush_pending(item, lines)
        item.close()


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", errors="replace")
