"""Disk-full forecasts: a least-squares line through recent values, like Prometheus' predict_linear.

Pure functions over (epoch seconds, value) pairs, so that they are tested with synthetic series;
the engine feeds them 5-minute averages from the metric store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_POINTS = 4  # fewer buckets than this say nothing about a trend
MIN_SPAN_FRACTION = 0.25  # ...and neither do points bunched in a corner of the window


@dataclass(frozen=True)
class Forecast:
    hours_left: float | None  # None: not rising, the limit is never reached on this trend
    breached: bool
    cleared: bool


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope per second, intercept) of the least-squares line, or None if it is undefined."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var_t
    return slope, mean_v - slope * mean_t


def hours_until(points: Sequence[tuple[float, float]], now: float, limit: float) -> float | None:
    """Hours from `now` until the fitted line reaches `limit`; 0 if it is there already."""
    line = fit_line(points)
    if line is None:
        return None
    slope, intercept = line
    at_now = intercept + slope * now
    if at_now >= limit:
        return 0.0
    if slope <= 0:
        return None
    return (limit - at_now) / slope / 3600


def forecast(
    points: Sequence[tuple[float, float]],
    now: float,
    window_s: float,
    limit: float,
    horizon_s: float,
    clear_factor: float,
) -> Forecast | None:
    """The rule's verdict, or None when there is too little data to judge (the alert keeps its state)."""
    if len(points) < MIN_POINTS:
        return None
    span = max(t for t, _ in points) - min(t for t, _ in points)
    if span < window_s * MIN_SPAN_FRACTION:
        return None
    hours = hours_until(points, now, limit)
    horizon_h = horizon_s / 3600
    breached = hours is not None and hours <= horizon_h
    cleared = hours is None or hours > horizon_h * clear_factor
    return Forecast(hours, breached, cleared)
