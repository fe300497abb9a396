"""Time-series storage for host metrics behind one interface, MetricStore.

open_store() picks the backend from a URL, so that no caller knows which one is configured.
"""

from __future__ import annotations

from pathlib import Path

from opsdesk.metrics.sqlite_store import SQLiteMetricStore
from opsdesk.metrics.store import Block, MetricStore, Retention
from opsdesk.metrics.types import Latest, Matcher, Op, Point, Sample, SeriesKey, SeriesResult

__all__ = [
    "Block",
    "Latest",
    "Matcher",
    "MetricStore",
    "Op",
    "Point",
    "Retention",
    "SQLiteMetricStore",
    "Sample",
    "SeriesKey",
    "SeriesResult",
    "open_store",
]


def open_store(url_or_path: str | Path, retention: Retention | None = None) -> MetricStore:
    """Open "sqlite:///relative.db", "sqlite:////absolute.db" or a plain file path."""
    target = str(url_or_path)
    if target.startswith("victoriametrics://"):
        raise ValueError("the VictoriaMetrics metric store is not available yet; use sqlite:///path")
    if target.startswith("sqlite:///"):
        target = target.removeprefix("sqlite:///")
    elif "://" in target:
        raise ValueError(f"unsupported metric store URL: {target}")
    if not target or target == ":memory:":
        raise ValueError("the metric store needs a file path")
    return SQLiteMetricStore(target, retention)
