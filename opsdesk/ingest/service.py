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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from typing import Any

import msgspec
from pydantic import ValidationError

from opsdesk.core.config import IngestSettings
from opsdesk.ingest.schema import (
    AgentBatch,
    AgentBatchM,
    AgentInfo,
    BatchRejected,
    EventIn,
    check_limits,
    names_known,
)
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


_DECODER = msgspec.json.Decoder(AgentBatchM)
_NAME_OF, _LABELS_OF, _VALUE = itemgetter(0), itemgetter(1), itemgetter(2)


def _decode_fast(raw: bytes) -> AgentBatch | None:
    """The batch decoded and checked by msgspec (about a third of pydantic's time), or None when
    msgspec refuses it or it carries check results: pydantic then decides, and words any refusal."""
    try:
        m = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if m.check_results or not names_known(list(map(_NAME_OF, m.samples))):
        return None
    # Already valid: construct without validating again (the same values pydantic would hold).
    return AgentBatch.model_construct(
        v=m.v,
        seq=m.seq,
        instance=m.instance,
        t=m.t,
        interval=m.interval,
        agent=AgentInfo.model_construct(version=m.agent.version, hostname=m.agent.hostname),
        samples=m.samples,
        events=[EventIn.model_construct(t=e.t, kind=e.kind, attrs=e.attrs) for e in m.events],
        inventory=m.inventory,
        top=m.top,
        dropped=m.dropped,
        check_results=[],
    )


def parse(raw: bytes, settings: IngestSettings, now_ms: int) -> AgentBatch:
    batch = _decode_fast(raw)
    if batch is None:
        try:
            # pydantic-core parses and validates the bytes in one pass, without Python JSON objects.
            batch = AgentBatch.model_validate_json(raw)
        except ValidationError:
            # Refusals (and JSON only Python reads, such as UTF-16) take the original path, so that
            # agents see the same messages as before.
            batch = _parse_via_python(raw)
    check_limits(
        batch,
        now_ms,
        settings.max_samples,
        settings.max_labels,
        settings.max_future_seconds,
        settings.max_past_seconds,
    )
    return batch


def _parse_via_python(raw: bytes) -> AgentBatch:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchRejected(f"body is not JSON: {exc}") from exc
    try:
        return AgentBatch.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(batch)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BatchRejected(f"{where}: {err['msg']}{more}") from exc


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

    def reply_json(self) -> bytes:
        """reply() as JSON, written directly: it is sent once per batch."""
        duplicate = "true" if self.duplicate else "false"
        return (
            f'{{"accepted":{self.seq},"duplicate":{duplicate},'
            f'"samples":{self.samples},"events":{self.events}}}'
        ).encode()


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


_new = tuple.__new__
Ident = tuple[str, tuple[tuple[str, str], ...]]  # (metric, labels as the agent sent them)


class _AssetKeys(dict[Ident, SeriesKey]):
    """One asset's keys; a miss builds the key, so that a hit costs one C-level lookup.

    `names`, `labels` and `last_keys` remember the last batch: each sample's metric, labels and key, in
    order. A host sends the same series in the same order every time, so two list comparisons in
    C usually replace a lookup per sample (and no tuple is made per sample to look it up).
    """

    def __init__(self, asset_id: int, customer_id: int) -> None:
        super().__init__()
        self.base = {"asset": str(asset_id), "customer": str(customer_id)}
        self.names: list[str] = []
        self.labels: list[dict[str, str]] = []
        self.last_keys: list[SeriesKey] = []

    def __missing__(self, ident: Ident) -> SeriesKey:
        name, labels = ident
        key = self[ident] = SeriesKey({**dict(labels), **self.base, "__name__": name})
        return key


class SeriesKeys:
    """The SeriesKey of each (metric, labels) an asset sends, built once and then looked up.

    A host repeats the same series every batch: building a key (merging, sorting, hashing its
    labels) was the largest cost per sample, and a key the metric store has seen before is found
    there by identity. Bounded: past MAX entries it starts again.
    """

    MAX = 1_000_000

    def __init__(self) -> None:
        self._by_asset: dict[tuple[int, int], _AssetKeys] = {}
        self._size = 0
        self.built = 0  # keys built since start, never reset (see writer.py, freeze_new_series)

    def samples(self, batch: AgentBatch, asset_id: int, customer_id: int) -> list[Sample]:
        if self._size > self.MAX:
            self._by_asset.clear()
            self._size = 0
        keys = self._by_asset.get((asset_id, customer_id))
        if keys is None:
            keys = self._by_asset[(asset_id, customer_id)] = _AssetKeys(asset_id, customer_id)
        rows = batch.samples
        names, labels = list(map(_NAME_OF, rows)), list(map(_LABELS_OF, rows))
        if names != keys.names or labels != keys.labels:
            before = len(keys)
            keys.last_keys = [keys[(n, tuple(ls.items()))] for n, ls in zip(names, labels, strict=True)]
            keys.names, keys.labels = names, labels
            self._size += len(keys) - before
            self.built += len(keys) - before
        # Samples made in C: tuple.__new__ skips NamedTuple's Python-level constructor.
        return list(map(_new, repeat(Sample), zip(keys.last_keys, repeat(batch.t), map(_VALUE, rows))))


_series_keys = SeriesKeys()


def built_keys() -> int:
    return _series_keys.built


def to_samples(batch: AgentBatch, asset_id: int, customer_id: int) -> list[Sample]:
    return _series_keys.samples(batch, asset_id, customer_id)


@dataclass
class HostRow:
    """What the writer reads of a host's state (never the inventory or top JSON), and what it
    will write back for the group: `changes`, column -> value."""

    id: int | None  # None until the row is inserted
    instance: str
    last_seq: int
    last_sample_at: datetime | None
    dropped_total: int
    changes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, batch: AgentBatch, now: datetime) -> HostRow:
        return cls(None, batch.instance, 0, None, 0, {"first_seen_at": now})


def apply_batch(
    host: HostRow,
    asset_id: int,
    customer_id: int,
    batch: AgentBatch,
    now: datetime,
    events: list[dict[str, Any]],
) -> tuple[IngestResult, list[Sample]]:
    """Note the host's new state and add its events (rows of host_events); return the samples to
    store (none if a replay)."""
    changes = host.changes
    changes["last_seen_at"] = now  # the host is alive even if it repeats itself
    if host.instance == batch.instance and batch.seq <= host.last_seq:
        return IngestResult(batch.seq, True, 0, 0), []
    for event in batch.events:
        events.append(
            {
                "customer_id": customer_id,
                "asset_id": asset_id,
                "at": _at(event.t),
                "kind": event.kind,
                "attrs": event.attrs,
                "received_at": now,
            }
        )
    if batch.dropped > host.dropped_total:
        events.append(
            {
                "customer_id": customer_id,
                "asset_id": asset_id,
                "at": _at(batch.t),
                "kind": "agent_buffer_dropped",
                "attrs": {"batches": batch.dropped - host.dropped_total},
                "received_at": now,
            }
        )
    host.instance, host.last_seq = batch.instance, batch.seq
    sample_at = _at(batch.t)
    if host.last_sample_at is None or sample_at > host.last_sample_at:
        host.last_sample_at = sample_at
    host.dropped_total = max(host.dropped_total, batch.dropped)
    changes.update(
        instance=host.instance,
        last_seq=host.last_seq,
        last_sample_at=host.last_sample_at,
        interval_s=batch.interval,
        agent_version=batch.agent.version,
        hostname=batch.agent.hostname,
        dropped_total=host.dropped_total,
    )
    if batch.inventory is not None:
        changes["inventory"], changes["inventory_at"] = batch.inventory, now
    if batch.top is not None:
        changes["top"] = batch.top
    samples = to_samples(batch, asset_id, customer_id)
    return IngestResult(batch.seq, False, len(samples), len(batch.events)), samples


def gzip_batch(batch: dict[str, Any]) -> bytes:
    """The agent's wire form; used by tests and benchmarks that play an agent."""
    return gzip.compress(json.dumps(batch, separators=(",", ":")).encode(), 6)
