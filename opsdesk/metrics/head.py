"""The open chunk of a series kept in memory, and the log records that make it durable."""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from opsdesk.metrics.store import HOUR_MS

_COUNT = struct.Struct("<I")
WINDOW_MS = 2 * HOUR_MS  # a chunk: 480 samples at 15 s; whole hours, and divides a day


@dataclass(slots=True)  # slots: the writer reads a head's fields for every sample
class Head:
    """Samples of one series in one chunk window, sorted by time, unique timestamps."""

    window: int
    ts: array[int] = field(default_factory=lambda: array("q"))
    vs: array[float] = field(default_factory=lambda: array("d"))
    end: int = field(init=False)  # window + WINDOW_MS, its first timestamp past the window
    sid: int = field(default=0, compare=False)  # the store's series id, set by the store

    def __post_init__(self) -> None:
        self.end = self.window + WINDOW_MS

    def add(self, t: int, v: float) -> bool:
        """Insert a sample; False if its timestamp is already held (a duplicate)."""
        ts = self.ts
        if not ts or t > ts[-1]:
            ts.append(t)
            self.vs.append(v)
            return True
        i = bisect_left(ts, t)
        if ts[i] == t:
            return False
        ts.insert(i, t)
        self.vs.insert(i, v)
        return True

    def copy(self) -> Head:
        # Without the dataclass __init__: readers copy a head per series they read.
        head = object.__new__(Head)
        head.window, head.end, head.sid = self.window, self.end, self.sid
        head.ts, head.vs = array("q", self.ts), array("d", self.vs)
        return head


def encode_log(ids: array[int], ts: array[int], vs: array[float]) -> bytes:
    """One write batch's head samples as packed little-endian columns."""
    parts: list[array[Any]] = [ids, ts, vs]
    if sys.byteorder == "big":
        parts = [array(a.typecode, a) for a in parts]
        for a in parts:
            a.byteswap()
    return _COUNT.pack(len(ids)) + b"".join(a.tobytes() for a in parts)


def decode_log(blob: bytes) -> tuple[array[int], array[int], array[float]]:
    (n,) = _COUNT.unpack_from(blob)
    ids, ts, vs = array("I"), array("q"), array("d")
    pos = _COUNT.size
    for a in (ids, ts, vs):
        size = n * a.itemsize
        a.frombytes(blob[pos : pos + size])
        if sys.byteorder == "big":
            a.byteswap()
        pos += size
    return ids, ts, vs
