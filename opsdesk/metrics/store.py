"""The metric store interface; callers depend on this and never on a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from opsdesk.metrics.types import Latest, Matcher, Point, Sample, SeriesKey, SeriesResult

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
RESOLUTIONS_MS = (5 * MINUTE_MS, HOUR_MS)  # stored rollups, finest first

# Samples of several series at one time, value i for series i: an agent's batch. The same list of
# keys is passed for each batch of a host while its series stay the same.
Block = tuple[list[SeriesKey], int, list[float]]


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept, in ms."""

    raw_ms: int = 15 * DAY_MS
    rollup_5m_ms: int = 90 * DAY_MS
    rollup_1h_ms: int = 730 * DAY_MS


class MetricStore(ABC):
    """Time series of float samples keyed by labels; timestamps are int ms since the epoch, UTC.

    A sample whose series and timestamp are already stored is a duplicate and is dropped (the
    first value wins), so a re-sent batch is harmless. Samples may arrive in any order.
    """

    @abstractmethod
    def write(self, samples: Iterable[Sample]) -> int:
        """Store a batch durably before returning; returns how many samples were new."""

    def write_blocks(self, blocks: Sequence[Block]) -> int:
        """write() for samples given as blocks, durably and in one go; the same result. A backend
        may store a block faster than its samples one by one."""
        return self.write(
            [Sample(k, t, v) for keys, t, values in blocks for k, v in zip(keys, values, strict=True)]
        )

    @abstractmethod
    def read_range(self, matchers: Sequence[Matcher], start: int, end: int, step: int) -> list[SeriesResult]:
        """Per matching series, a point for each step bucket [start + k*step, ...) of [start, end)
        that holds data: min/avg/max/last/count of its samples.

        Results are exact at every resolution: a backend may answer from rollups whose buckets
        fit the step buckets exactly (the SQLite store reads 1-hour rollups when start and step
        are multiples of an hour, 5-minute ones for multiples of 5 minutes, else raw samples).
        """

    def window(self, matchers: Sequence[Matcher], start: int, end: int) -> list[tuple[SeriesKey, Point]]:
        """Per matching series with samples in [start, end), one point over the whole range: what
        an alert rule reads ("avg of the last 5 minutes"). A backend may answer it faster."""
        return [(r.series, r.points[-1]) for r in self.read_range(matchers, start, end, end - start)]

    @abstractmethod
    def latest(self, matchers: Sequence[Matcher]) -> list[Latest]:
        """The newest sample of every matching series."""

    @abstractmethod
    def series(self, matchers: Sequence[Matcher]) -> list[SeriesKey]:
        """The series matching every matcher, sorted."""

    @abstractmethod
    def apply_retention(self, now: int) -> int:
        """Delete data older than the retention of its resolution; returns the blocks deleted."""

    @abstractmethod
    def close(self) -> None:
        """Persist everything in compact form and release the store."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
