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
from operator import itemgetter
from typing import Annotated, Any

import msgspec
from pydantic import Field, TypeAdapter, ValidationError

from opsdesk.core.config import IngestSettings
from opsdesk.ingest.schema import (
    SERIES_DECODER,
    AgentBatch,
    AgentBatchM,
    AgentBatchM2,
    AgentInfo,
    BatchRejected,
    CheckResultIn,
    EventIn,
    SeriesSet,
    VersionM,
    check_labels,
    check_limits,
    names_known,
)
from opsdesk.metrics import Block, SeriesKey


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


_DECODER = msgspec.json.Decoder(AgentBatchM | AgentBatchM2)
_VERSION = msgspec.json.Decoder(VersionM)
_CHECK_RESULTS = TypeAdapter(Annotated[list[CheckResultIn], Field(max_length=1000)])
_NAME_OF, _LABELS_OF = itemgetter(0), itemgetter(1)


def _decode_fast(raw: bytes, max_labels: int, asset_id: int | None) -> AgentBatch | None:
    """The batch decoded and checked by msgspec (about a third of pydantic's time), or None when
    msgspec refuses a version-1 batch or it carries check results: pydantic then decides, and
    words any refusal. A refused version-2 batch is refused here, in msgspec's words."""
    try:
        m = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if _version(raw) == 2:
            raise BatchRejected(str(exc)) from exc
        return None
    if isinstance(m, AgentBatchM):
        if m.check_results or not names_known(list(map(_NAME_OF, m.samples))):
            return None
        check_results: list[CheckResultIn] = []
    else:
        series = _series_of(m, max_labels, asset_id)
        check_results = _check_results(m.check_results) if m.check_results else []
    # AgentBatch validates version 1 only (a version-2 batch is msgspec's alone), yet keeps its number.
    version: Any = 1 if isinstance(m, AgentBatchM) else 2
    # Already valid: construct without validating again (the same values pydantic would hold).
    batch = AgentBatch.model_construct(
        v=version,
        seq=m.seq,
        instance=m.instance,
        t=m.t,
        interval=m.interval,
        agent=AgentInfo.model_construct(version=m.agent.version, hostname=m.agent.hostname),
        samples=m.samples if isinstance(m, AgentBatchM) else [],
        events=[EventIn.model_construct(t=e.t, kind=e.kind, attrs=e.attrs) for e in m.events],
        inventory=m.inventory,
        top=m.top,
        dropped=m.dropped,
        check_results=check_results,
    )
    if isinstance(m, AgentBatchM2):
        batch._columns = (series, m.values)
    return batch


def _version(raw: bytes) -> object:
    """The `v` a refused batch claims; Python's reader too, for JSON msgspec does not take (NaN)."""
    try:
        return _VERSION.decode(raw).v
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data.get("v") if isinstance(data, dict) else None


# Each host's last version-2 series, by asset id: its next batch usually sends the same bytes.
_last_series: dict[int, SeriesSet] = {}
MAX_REMEMBERED_HOSTS = 100_000


def _series_of(m: AgentBatchM2, max_labels: int, asset_id: int | None) -> SeriesSet:
    sent = bytes(m.series)
    last = _last_series.get(asset_id) if asset_id is not None else None
    if last is not None and last.raw == sent:
        series = last
    else:
        series = _decode_series(sent, max_labels)
        if asset_id is not None:
            if len(_last_series) >= MAX_REMEMBERED_HOSTS:
                _last_series.clear()
            _last_series[asset_id] = series
    if len(m.values) != len(series.names):
        raise BatchRejected(f"values: {len(m.values)} values for {len(series.names)} series")
    return series


def _decode_series(sent: bytes, max_labels: int) -> SeriesSet:
    try:
        rows = SERIES_DECODER.decode(sent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BatchRejected(f"series: {exc}") from exc
    names, labels = list(map(_NAME_OF, rows)), list(map(_LABELS_OF, rows))
    if not names_known(names):
        bad = next(i for i, name in enumerate(names) if not names_known([name]))
        raise BatchRejected(f"series[{bad}]: metric name {names[bad]!r} is invalid")
    check_labels(labels, max_labels, "series")
    return SeriesSet(names, labels, sent, max(map(len, labels), default=0))


def _check_results(items: list[Any]) -> list[CheckResultIn]:
    try:
        return _CHECK_RESULTS.validate_python(items)
    except ValidationError as exc:
        raise _rejected(exc, "check_results") from exc


def parse(raw: bytes, settings: IngestSettings, now_ms: int, asset_id: int | None = None) -> AgentBatch:
    """The batch, checked in full; `asset_id` (the token's host) lets a version-2 batch's series
    be recognised from the host's last batch."""
    batch = _decode_fast(raw, settings.max_labels, asset_id)
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
        raise _rejected(exc) from exc


def _rejected(exc: ValidationError, field: str = "") -> BatchRejected:
    """pydantic's first error, with where it is, as the agent's log shows it."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in (field, *err["loc"]) if p != "") or "(batch)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return BatchRejected(f"{where}: {err['msg']}{more}")


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


Ident = tuple[str, tuple[tuple[str, str], ...]]  # (metric, labels as the agent sent them)


class _AssetKeys(dict[Ident, SeriesKey]):
    """One asset's keys; a miss builds the key, so that a hit costs one C-level lookup.

    `names`, `labels` and `last_keys` remember the last batch: each sample's metric, labels and key, in
    order. A host sends the same series in the same order every time, so two list comparisons in
    C usually replace a lookup per sample (and no tuple is made per sample to look it up); for a
    version-2 batch, one identity test (parse() hands on the host's SeriesSet when unchanged).
    """

    def __init__(self, asset_id: int, customer_id: int) -> None:
        super().__init__()
        self.base = {"asset": str(asset_id), "customer": str(customer_id)}
        self.names: list[str] = []
        self.labels: list[dict[str, str]] = []
        self.last_keys: list[SeriesKey] = []
        self.last_set: SeriesSet | None = None  # a version-2 set seen again is the same object

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

    def block(self, batch: AgentBatch, asset_id: int, customer_id: int) -> Block:
        """The batch's samples as a block: the host's list of keys (the same list object while its
        series stay the same), the batch's time and the values."""
        if self._size > self.MAX:
            self._by_asset.clear()
            self._size = 0
        keys = self._by_asset.get((asset_id, customer_id))
        if keys is None:
            keys = self._by_asset[(asset_id, customer_id)] = _AssetKeys(asset_id, customer_id)
        series, values = batch.columns()
        if series is not keys.last_set:
            names, labels = series.names, series.labels
            if names != keys.names or labels != keys.labels:
                before = len(keys)
                keys.last_keys = [keys[(n, tuple(ls.items()))] for n, ls in zip(names, labels, strict=True)]
                keys.names, keys.labels = names, labels
                self._size += len(keys) - before
                self.built += len(keys) - before
            keys.last_set = series
        return keys.last_keys, batch.t, values


_series_keys = SeriesKeys()


def built_keys() -> int:
    return _series_keys.built


def to_block(batch: AgentBatch, asset_id: int, customer_id: int) -> Block:
    return _series_keys.block(batch, asset_id, customer_id)


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
) -> tuple[IngestResult, Block | None]:
    """Note the host's new state and add its events (rows of host_events); return the samples to
    store as a block (None if a replay)."""
    changes = host.changes
    changes["last_seen_at"] = now  # the host is alive even if it repeats itself
    if host.instance == batch.instance and batch.seq <= host.last_seq:
        return IngestResult(batch.seq, True, 0, 0), None
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
    block = to_block(batch, asset_id, customer_id)
    return IngestResult(batch.seq, False, len(block[2]), len(batch.events)), block


def gzip_batch(batch: dict[str, Any]) -> bytes:
    """The agent's wire form; used by tests and benchmarks that play an agent."""
    return gzip.compress(json.dumps(batch, separators=(",", ":")).encode(), 6)
