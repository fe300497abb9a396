"""Bucketed min/sum/max/last/count of samples, and the merge of such buckets into coarser ones.

The same code builds the stored 5-minute and 1-hour rollups and answers raw reads at any step,
so a rollup read and a raw read of the same aligned range agree exactly. Sums use math.fsum:
correctly rounded, so the sum of short decimals stays a short decimal and encodes compactly.
NaN samples (Prometheus's staleness markers) are left out; a bucket of only NaN has no point.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsdesk.metrics.types import Point


def _sum(values: Sequence[float]) -> float:
    try:
        return math.fsum(values)
    except ValueError:  # inf + -inf
        return math.nan
    except OverflowError:
        return sum(values)


@dataclass
class Buckets:
    """Columns of aggregate buckets, ordered by bucket start t."""

    t: list[int] = field(default_factory=list)
    count: list[int] = field(default_factory=list)
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    sum: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    def append(self, t: int, count: int, lo: float, hi: float, total: float, last: float) -> None:
        self.t.append(t)
        self.count.append(count)
        self.min.append(lo)
        self.max.append(hi)
        self.sum.append(total)
        self.last.append(last)

    def extend(self, other: Buckets) -> None:
        for mine, theirs in zip(self.columns(), other.columns(), strict=True):
            mine.extend(theirs)  # type: ignore[attr-defined]

    def columns(self) -> tuple[list[int], list[int], list[float], list[float], list[float], list[float]]:
        return self.t, self.count, self.min, self.max, self.sum, self.last

    def between(self, start: int, end: int) -> Buckets:
        """The buckets whose start lies in [start, end)."""
        i, j = bisect_left(self.t, start), bisect_left(self.t, end)
        return Buckets(*(c[i:j] for c in self.columns()))  # type: ignore[arg-type]

    def points(self) -> list[Point]:
        return [
            Point(t, lo, total / n, hi, last, n)
            for t, n, lo, hi, total, last in zip(*self.columns(), strict=True)
        ]


def bucket_samples(ts: Sequence[int], vs: Sequence[float], size: int, origin: int = 0) -> Buckets:
    """Aggregate time-ordered samples into buckets [origin + k*size, origin + (k+1)*size)."""
    out = Buckets()
    i, n = 0, len(ts)
    while i < n:
        start = ts[i] - (ts[i] - origin) % size
        j = bisect_left(ts, start + size, i)
        seg = vs[i:j]
        total = _sum(seg)
        if total != total:  # NaN: drop NaN samples, then recompute
            seg = [v for v in seg if v == v]
            if not seg:
                i = j
                continue
            total = _sum(seg)
        out.append(start, len(seg), min(seg), max(seg), total, seg[-1])
        i = j
    return out


def merge_buckets(b: Buckets, size: int, origin: int = 0) -> Buckets:
    """Combine buckets into coarser ones of the given size; a bucket goes where its start lies."""
    out = Buckets()
    i, n = 0, len(b)
    while i < n:
        start = b.t[i] - (b.t[i] - origin) % size
        j = bisect_left(b.t, start + size, i)
        out.append(
            start,
            sum(b.count[i:j]),
            min(b.min[i:j]),
            max(b.max[i:j]),
            _sum(b.sum[i:j]),
            b.last[j - 1],
        )
        i = j
    return out
