"""Taking an agent batch: decode, validate all of it, then store it once.

Order matters for "exactly once as far as the server can tell": samples go to the metric store
first (which ignores a sample it already has for the same series and time), then the host state
and events are committed with the batch's sequence number (see writer.py). A crash between the
two makes the agent resend; the samples are then duplicates and dropped, the rest is stored.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from opsdesk.core.config import IngestSettings
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.ingest.schema import AgentBatch, BatchRejected, check_limits
from opsdesk.metrics import Sample, SeriesKey


class PayloadTooLarge(BatchRejected):
    pass


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Inflate gzip (or take identity) without ever holding more than `limit` bytes."""
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
        return body
    if encoding != "gzip":
        raise BatchRejected(f"Content-Encoding {encoding!r}: use gzip or identity")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BatchRejected(f"body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body over {limit} bytes")
    return out


def parse(raw: bytes, settings: IngestSettings, now_ms: int) -> AgentBatch:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchRejected(f"body is not JSON: {exc}") from exc
    try:
        batch = AgentBatch.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(batch)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BatchRejected(f"{where}: {err['msg']}{more}") from exc
    check_limits(
        batch,
        now_ms,
        settings.max_samples,
        settings.max_labels,
        settings.max_future_seconds,
        settings.max_past_seconds,
    )
    return batch


@dataclass
class IngestResult:
    seq: int
    duplicate: bool
    samples: int
    events: int

    def reply(self) -> dict[str, Any]:
        return {
            "accepted": self.seq,
            "duplicate": self.duplicate,
            "samples": self.samples,
            "events": self.events,
        }


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_samples(batch: AgentBatch, asset_id: int, customer_id: int) -> list[Sample]:
    base = {"asset": str(asset_id), "customer": str(customer_id)}
    return [
        Sample(SeriesKey({**labels, **base, "__name__": name}), batch.t, value)
        for name, labels, value in batch.samples
    ]


def new_state(
    session: Session, asset_id: int, customer_id: int, batch: AgentBatch, now: datetime
) -> HostState:
    state = HostState(
        customer_id=customer_id,
        asset_id=asset_id,
        instance=batch.instance,
        first_seen_at=now,
        last_seq=0,
        dropped_total=0,
    )
    session.add(state)
    return state


def apply_batch(
    session: Session, state: HostState, asset_id: int, customer_id: int, batch: AgentBatch, now: datetime
) -> tuple[IngestResult, list[Sample]]:
    """Update the host's state and add its events; return the samples to store (none if a replay)."""
    state.last_seen_at = now  # the host is alive even if it repeats itself
    if state.instance == batch.instance and batch.seq <= state.last_seq:
        return IngestResult(batch.seq, True, 0, 0), []
    for event in batch.events:
        session.add(
            HostEvent(
                customer_id=customer_id,
                asset_id=asset_id,
                at=_at(event.t),
                kind=event.kind,
                attrs=event.attrs,
                received_at=now,
            )
        )
    if batch.dropped > state.dropped_total:
        session.add(
            HostEvent(
                customer_id=customer_id,
                asset_id=asset_id,
                at=_at(batch.t),
                kind="agent_buffer_dropped",
                attrs={"batches": batch.dropped - state.dropped_total},
                received_at=now,
            )
        )
    state.instance, state.last_seq = batch.instance, batch.seq
    sample_at = _at(batch.t)
    if state.last_sample_at is None or sample_at > state.last_sample_at:
        state.last_sample_at = sample_at
    state.interval_s = batch.interval
    state.agent_version, state.hostname = batch.agent.version, batch.agent.hostname
    state.dropped_total = max(state.dropped_total, batch.dropped)
    if batch.inventory is not None:
        state.inventory, state.inventory_at = batch.inventory, now
    if batch.top is not None:
        state.top = batch.top
    samples = to_samples(batch, asset_id, customer_id)
    return IngestResult(batch.seq, False, len(samples), len(batch.events)), samples


def gzip_batch(batch: dict[str, Any]) -> bytes:
    """The agent's wire form; used by tests and benchmarks that play an agent."""
    return gzip.compress(json.dumps(batch, separators=(",", ":")).encode(), 6)
