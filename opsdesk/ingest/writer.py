"""Agent batches stored in groups (see opsdesk.core.group_commit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.core.group_commit import GroupCommitter
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostState
from opsdesk.ingest.schema import AgentBatch
from opsdesk.ingest.service import IngestResult, apply_batch, new_state
from opsdesk.metrics import Sample


@dataclass(frozen=True)
class AssetRef:
    id: int
    customer_id: int


Job = tuple[AssetRef, AgentBatch]


def apply_batches(
    session: Session, jobs: list[Job], now: datetime
) -> tuple[list[Sample], list[IngestResult]]:
    ids = {asset.id for asset, _ in jobs}
    states = {s.asset_id: s for s in session.scalars(select(HostState).where(HostState.asset_id.in_(ids)))}
    samples: list[Sample] = []
    results: list[IngestResult] = []
    for asset, batch in jobs:
        state = states.get(asset.id)
        if state is None:
            state = states[asset.id] = new_state(session, asset.id, asset.customer_id, batch, now)
        result, batch_samples = apply_batch(session, state, asset.id, asset.customer_id, batch, now)
        samples.extend(batch_samples)
        results.append(result)
    return samples, results


class IngestWriter(GroupCommitter[Job, IngestResult]):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt, apply_batches, "ingest-writer")
