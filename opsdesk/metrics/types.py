"""Value types of the metric store: series keys, samples, aggregate points and label matchers.

Timestamps are int milliseconds since the Unix epoch (UTC), as in Prometheus remote-write: exact,
cheap to delta-encode, and free of float rounding at bucket boundaries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

NAME = "__name__"


class SeriesKey:
    """A metric name plus labels; immutable, hashable, with one canonical string form.

    The hash is computed once, because the writer looks every sample's key up in a dict; the
    canonical form only when a new series is stored.
    """

    __slots__ = ("_canonical", "_hash", "labels")

    labels: tuple[tuple[str, str], ...]
    _canonical: str | None
    _hash: int

    def __init__(self, labels: Mapping[str, str]) -> None:
        if not labels.get(NAME):
            raise ValueError("a series needs a non-empty __name__ label")
        items = tuple(sorted((str(k), str(v)) for k, v in labels.items() if v != ""))
        object.__setattr__(self, "labels", items)
        object.__setattr__(self, "_canonical", None)  # built when first needed: most keys are lookups
        object.__setattr__(self, "_hash", hash(items))

    @property
    def canonical(self) -> str:
        if self._canonical is None:
            object.__setattr__(self, "_canonical", json.dumps(dict(self.labels), separators=(",", ":")))
        assert self._canonical is not None
        return self._canonical

    @classmethod
    def of(cls, name: str, **labels: str) -> SeriesKey:
        return cls({NAME: name, **labels})

    @classmethod
    def parse(cls, canonical: str) -> SeriesKey:
        return cls(json.loads(canonical))

    @property
    def name(self) -> str:
        return self.get(NAME)

    def get(self, label: str) -> str:
        """The label's value, or "" when absent (Prometheus semantics)."""
        for k, v in self.labels:
            if k == label:
                return v
        return ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SeriesKey is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeriesKey) and self.labels == other.labels

    def __lt__(self, other: SeriesKey) -> bool:
        return self.labels < other.labels

    def __repr__(self) -> str:
        rest = ",".join(f'{k}="{v}"' for k, v in self.labels if k != NAME)
        return f"{self.name}{{{rest}}}"


class Sample(NamedTuple):
    series: SeriesKey
    t: int  # ms since epoch, UTC
    value: float


@dataclass(frozen=True, slots=True)
class Point:
    """Aggregate of the samples in [t, t + step): NaN samples are left out of every field."""

    t: int
    min: float
    avg: float
    max: float
    last: float
    count: int


class SeriesResult(NamedTuple):
    series: SeriesKey
    points: list[Point]


class Latest(NamedTuple):
    series: SeriesKey
    t: int
    value: float


_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_:-]+(\|[A-Za-z0-9_:-]+)*")


class Op(Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class Matcher:
    """A label condition; an absent label matches as "" and regexes must match the whole value."""

    label: str
    value: str
    op: Op = Op.EQ
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    # For "a|b|c" of plain words (how callers ask for a set of ids): the words, so that matching
    # is a set lookup rather than a regex run over every value.
    literals: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op in (Op.RE, Op.NRE):
            if _PLAIN_WORDS.fullmatch(self.value):
                # No regex compiled: the alert engine asks for hundreds of asset ids each pass.
                object.__setattr__(self, "literals", frozenset(self.value.split("|")))
            else:
                object.__setattr__(self, "_regex", re.compile(self.value))

    def matches(self, value: str) -> bool:
        if self.literals is not None:
            return (value in self.literals) == (self.op is Op.RE)
        if self._regex is not None:
            return (self._regex.fullmatch(value) is not None) == (self.op is Op.RE)
        return (value == self.value) == (self.op is Op.EQ)

    @classmethod
    def eq(cls, label: str, value: str) -> Matcher:
        return cls(label, value)

    @classmethod
    def name(cls, metric: str) -> Matcher:
        return cls(NAME, metric)
