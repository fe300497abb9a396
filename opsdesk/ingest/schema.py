"""The agent batch format, validated in full before anything is stored.

Version 2 (what `opsdesk agent` sends) gives the series and their values apart:

    {"v": 2, "seq": 17, "instance": "…", "t": 1764400000000, "interval": 15,
     "agent": {"version": "0.1.0", "hostname": "web-1"},
     "series": [["cpu_usage_percent", {"mode": "user"}], ...], "values": [3.2, ...],
     "events": [{"t": 1764400000000, "kind": "hostname_changed", "attrs": {...}}],
     "inventory": {...} | null, "top": {...} | null, "dropped": 0}

A host sends the same series in the same order every interval, so the server recognises the
`series` array byte for byte and decodes and checks only what changed. Version 1 (older agents)
sends `"samples": [["cpu_usage_percent", {"mode": "user"}, 3.2], ...]` instead and is still taken.

Timestamps are milliseconds since the epoch (UTC). The server adds the `asset` and
`customer` labels itself; an agent cannot write into another host's series.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator

NAME_RE = r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$"
RESERVED_LABELS = frozenset({"__name__", "asset", "customer"})
EVENT_KINDS = frozenset(
    {
        "hostname_changed",
        "password_changed",
        "user_added",
        "user_removed",
        "process_started",
        "process_stopped",
        "reboot",
    }
)
_LABEL_NAME = re.compile(NAME_RE)
_MAX_VALID_LABELS = 10_000  # of each of the name sets below
_NAME_OF, _LABELS_OF, _VALUE_OF = itemgetter(0), itemgetter(1), itemgetter(2)


@dataclass(frozen=True, eq=False, slots=True)
class SeriesSet:
    """A batch's series in order: metric names and labels, checked. `raw` is the JSON a version-2
    batch sent them as, which the host's next batch is compared with (b"" for version 1)."""

    names: list[str]
    labels: list[dict[str, str]]
    raw: bytes = b""
    widest: int = 0  # the most labels on one series


MetricName = Annotated[str, StringConstraints(pattern=NAME_RE)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]


class AgentInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Annotated[str, StringConstraints(max_length=32)]
    hostname: Annotated[str, StringConstraints(max_length=255)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: int
    kind: str
    attrs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {v!r}")
        return v


class CheckResultIn(BaseModel):
    """The result of a check the server assigned to this agent (runner "agent")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    monitor: Annotated[int, Field(ge=1)]
    t: int
    ok: bool
    status: Literal["ok", "warning", "critical", "unknown"] | None = None
    code: Annotated[str, StringConstraints(max_length=40)]
    message: Annotated[str, StringConstraints(max_length=1000)]
    metrics: Annotated[
        dict[Annotated[str, StringConstraints(pattern=NAME_RE)], float], Field(max_length=32)
    ] = Field(default_factory=dict)
    series: Annotated[list[tuple[MetricName, dict[MetricName, LabelValue], float]], Field(max_length=500)] = (
        Field(default_factory=list)
    )


class AgentBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    v: Literal[1]
    seq: Annotated[int, Field(ge=1)]
    instance: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    t: int
    interval: Annotated[float, Field(ge=1, le=86400)]
    agent: AgentInfo
    samples: list[tuple[MetricName, dict[str, LabelValue], float]]
    events: Annotated[list[EventIn], Field(max_length=1000)] = Field(default_factory=list)
    inventory: dict[str, Any] | None = None
    top: dict[str, Any] | None = None
    dropped: Annotated[int, Field(ge=0)] = 0
    check_results: Annotated[list[CheckResultIn], Field(max_length=1000)] = Field(default_factory=list)
    # A version-2 batch's series and values (its `samples` stay empty); None for version 1.
    _columns: tuple[SeriesSet, list[float]] | None = PrivateAttr(default=None)

    def columns(self) -> tuple[SeriesSet, list[float]]:
        """The series and their values, whichever version the batch came in."""
        # Read from the private dict itself: pydantic's attribute route for private attributes
        # (__getattr__) cost 3 % of the server's time when it ran several times per batch.
        private = self.__pydantic_private__
        columns: tuple[SeriesSet, list[float]] | None = private["_columns"] if private else None
        if columns is not None:
            return columns
        rows = self.samples
        return SeriesSet(list(map(_NAME_OF, rows)), list(map(_LABELS_OF, rows))), list(map(_VALUE_OF, rows))

    @property
    def sample_count(self) -> int:
        return len(self.columns()[1])


# -- the same format for msgspec: a C decoder that checks a usual batch in a fraction of pydantic's
# time. It accepts only what AgentBatch accepts (strict types, the same bounds); anything it refuses
# goes through AgentBatch, which also writes the message the agent sees (service.parse).

_FINITE = msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)  # no NaN, no inf
_LabelValueM = Annotated[str, msgspec.Meta(max_length=256)]


class AgentInfoM(msgspec.Struct):  # unknown fields ignored, as AgentInfo does
    version: Annotated[str, msgspec.Meta(max_length=32)]
    hostname: Annotated[str, msgspec.Meta(max_length=255)]


class EventInM(msgspec.Struct, forbid_unknown_fields=True):
    t: int
    kind: Literal[tuple(sorted(EVENT_KINDS))]  # type: ignore[valid-type]
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)


class _HeaderM(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields both versions share; `v` is the tag that tells them apart."""

    seq: Annotated[int, msgspec.Meta(ge=1)]
    instance: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    t: int
    interval: Annotated[float, msgspec.Meta(ge=1, le=86400)]
    agent: AgentInfoM
    events: Annotated[list[EventInM], msgspec.Meta(max_length=1000)] = msgspec.field(default_factory=list)
    inventory: dict[str, Any] | None = None
    top: dict[str, Any] | None = None
    dropped: Annotated[int, msgspec.Meta(ge=0)] = 0
    check_results: list[Any] = msgspec.field(default_factory=list)  # rare: left to pydantic


class AgentBatchM(_HeaderM, tag_field="v", tag=1, kw_only=True):
    # Metric names: a pattern per sample tripled msgspec's time; names_known() checks them instead.
    samples: list[tuple[str, dict[str, _LabelValueM], Annotated[float, _FINITE]]]


class AgentBatchM2(_HeaderM, tag_field="v", tag=2, kw_only=True):
    series: msgspec.Raw  # decoded (SERIES_DECODER) only when it differs from the host's last batch
    values: list[Annotated[float, _FINITE]]


SERIES_DECODER = msgspec.json.Decoder(list[tuple[str, dict[str, _LabelValueM]]])


class VersionM(msgspec.Struct):  # what a refused batch says it is, to word the refusal
    v: Any = None


# Metric names already found valid (bounded, as the label names below). fullmatch, not match with
# NAME_RE: Python's $ also matches before a final newline, pydantic's (Rust) regex does not.
_VALID_NAMES: set[str] = set()
_NAME = re.compile(NAME_RE.strip("^$"))


def names_known(names: list[str]) -> bool:
    """Whether every metric name is valid: one set operation in C once a host's names are known."""
    if _VALID_NAMES.issuperset(names):
        return True
    for name in set(names) - _VALID_NAMES:
        if not _NAME.fullmatch(name):
            return False
        if len(_VALID_NAMES) < _MAX_VALID_LABELS:
            _VALID_NAMES.add(name)
    return True


class BatchRejected(ValueError):
    """The batch can never be accepted; the message says why, for the agent's log."""


# Label names already found valid, bounded so that odd agents cannot grow it without limit.
_VALID_LABELS: set[str] = set()


def check_labels(label_sets: list[dict[str, str]], max_labels: int, field: str = "samples") -> None:
    """The first offending sample in order, with its index; remembers the names found valid."""
    for i, labels in enumerate(label_sets):
        if len(labels) > max_labels:
            raise BatchRejected(f"{field}[{i}]: {len(labels)} labels, at most {max_labels}")
        for label in labels:
            if label in RESERVED_LABELS or not _LABEL_NAME.match(label):
                raise BatchRejected(f"{field}[{i}]: label name {label!r} is reserved or invalid")
            if len(_VALID_LABELS) < _MAX_VALID_LABELS:
                _VALID_LABELS.add(label)


def check_limits(
    batch: AgentBatch, now_ms: int, max_samples: int, max_labels: int, max_future_s: int, max_past_s: int
) -> None:
    """What pydantic cannot say alone: counts, label names and the clock."""
    series, values = batch.columns()
    field = "series" if series.raw else "samples"
    if len(values) > max_samples:
        raise BatchRejected(f"{field}: {len(values)} in one batch, at most {max_samples}")
    if series.raw:  # version 2: label names were checked when the series were first decoded
        if series.widest > max_labels:
            check_labels(series.labels, max_labels, field)
    else:
        label_sets = series.labels
        # Hosts send the same few label names every time: set operations in C clear a whole
        # batch, and only a batch with a new name (or too many labels) is checked sample by sample.
        if label_sets and (
            max(map(len, label_sets)) > max_labels
            or not _VALID_LABELS.issuperset(itertools.chain.from_iterable(label_sets))
        ):
            check_labels(label_sets, max_labels)
    stamps = [("t", batch.t)]
    if batch.events or batch.check_results:
        stamps += [(f"events[{i}].t", e.t) for i, e in enumerate(batch.events)]
        stamps += [(f"check_results[{i}].t", r.t) for i, r in enumerate(batch.check_results)]
    for where, t in stamps:
        if t > now_ms + max_future_s * 1000:
            ahead = (t - now_ms) / 1000
            raise BatchRejected(
                f"{where}: {ahead:.0f} s in the future (at most {max_future_s} s); check the host clock (NTP)"
            )
        if t < now_ms - max_past_s * 1000:
            behind = (now_ms - t) / 1000
            raise BatchRejected(f"{where}: {behind:.0f} s in the past (at most {max_past_s} s)")
