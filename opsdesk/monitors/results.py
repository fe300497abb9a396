"""Check results: figures into the metric store, state changes into events, in groups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.core.group_commit import GroupCommitter, write_samples
from opsdesk.core.runtime import Runtime
from opsdesk.metrics import Sample, SeriesKey
from opsdesk.monitors.checks.base import CheckResult
from opsdesk.monitors.models import Monitor, MonitorEvent, MonitorState


@dataclass(frozen=True)
class Outcome:
    monitor_id: int
    at: datetime
    result: CheckResult


@dataclass(frozen=True)
class Recorded:
    monitor_id: int
    state: MonitorState
    changed: bool  # the state differs from the one before this result
    asset_id: int | None = None


def samples_for(monitor: Monitor, outcome: Outcome) -> list[Sample]:
    labels = {"monitor": str(monitor.id), "customer": str(monitor.customer_id), "type": monitor.type}
    if monitor.asset_id is not None:
        labels["asset"] = str(monitor.asset_id)
    t = int(outcome.at.timestamp() * 1000)
    out = [Sample(SeriesKey({**labels, "__name__": "check_up"}), t, 1.0 if outcome.result.ok else 0.0)]
    for name, value in outcome.result.metrics.items():
        out.append(Sample(SeriesKey({**labels, "__name__": f"check_{name}"}), t, float(value)))
    for series in outcome.result.series:
        extra = {k: v for k, v in series.labels.items() if k not in labels and k != "__name__"}
        key = SeriesKey({**labels, **extra, "__name__": f"check_{series.name}"})
        out.append(Sample(key, t, float(series.value)))
    return out


def apply_outcomes(
    session: Session, jobs: list[Outcome], now: datetime
) -> tuple[list[Sample], list[Recorded]]:
    ids = {o.monitor_id for o in jobs}
    monitors = {m.id: m for m in session.scalars(select(Monitor).where(Monitor.id.in_(ids)))}
    samples: list[Sample] = []
    recorded: list[Recorded] = []
    for outcome in jobs:
        monitor = monitors.get(outcome.monitor_id)
        if monitor is None:  # deleted while it ran
            recorded.append(Recorded(outcome.monitor_id, MonitorState.unknown, False))
            continue
        new = MonitorState(outcome.result.state)
        changed = new != monitor.state
        if changed:
            session.add(
                MonitorEvent(
                    customer_id=monitor.customer_id,
                    monitor_id=monitor.id,
                    at=outcome.at,
                    from_state=monitor.state,
                    to_state=new,
                    code=outcome.result.code,
                    message=outcome.result.message[:1000],
                )
            )
            monitor.state, monitor.state_since = new, outcome.at
        monitor.last_run_at = outcome.at
        monitor.last_result = outcome.result.as_dict()
        samples.extend(samples_for(monitor, outcome))
        recorded.append(Recorded(monitor.id, new, changed, monitor.asset_id))
    return samples, recorded


class ResultWriter(GroupCommitter[Outcome, Recorded, Sample]):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt, apply_outcomes, "monitor-results", write_samples)
