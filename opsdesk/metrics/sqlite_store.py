"""The embedded metric store: one SQLite file of compressed chunks, rollups and a head log.

Layout (chosen by measurement, see docs/benchmarks.md):

- chunks: one row per series and 2-hour window, the window's samples encoded by codec.py
  (about 1.8 bytes per sample on node metrics; a row per sample takes about 20);
- rollups: 5-minute buckets per series and 2-hour window, 1-hour buckets per series and day,
  both as min/max/sum/last/count columns encoded the same way, so a 30-day chart reads 30 small
  blobs per series;
- head: the open window of every series lives in memory; each write() appends its samples to
  head_log in the same transaction, so what write() returned for survives a crash and is
  replayed on open. Sealing a window writes its chunk and rollups and lets the log be trimmed.

A sample older than its series' open window is merged into the stored chunk of its window,
whose rollups are then rebuilt. One writer at a time (a lock); reads snapshot the head under
the lock and read the file through a connection of their own thread.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from array import array
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import cast

from opsdesk.metrics import codec
from opsdesk.metrics.aggregate import Buckets, _sum, bucket_samples, merge_buckets
from opsdesk.metrics.head import WINDOW_MS, Head, decode_log, encode_log
from opsdesk.metrics.store import DAY_MS, RESOLUTIONS_MS, Block, MetricStore, Retention
from opsdesk.metrics.types import Latest, Matcher, Op, Point, Sample, SeriesKey, SeriesResult

RES_5M, RES_1H = RESOLUTIONS_MS
FORMAT = "1"
_NO_HEAD = 2**63 - 1
_T, _V = itemgetter(1), itemgetter(2)
_NEWEST = itemgetter(-1)
_new = tuple.__new__
# Remembered runs, about 3 KB each for a 91-series host: one per host, plus stale ones left by hosts
# whose series changed (rebuilt when needed, so dropping them all at the bound is cheap).
MAX_RUNS = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
-- A rowid table: chunks of 1-2 KB would overflow WITHOUT ROWID pages and take 2.6 times the room.
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    count INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS chunks_series ON chunks (series_id, start_ms);
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL, res INTEGER NOT NULL, block INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (series_id, res, block)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head_log (seq INTEGER PRIMARY KEY, max_t INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS head_log_max_t ON head_log (max_t);
"""


Late = dict[tuple[int, int], list[tuple[int, float]]]  # (series id, window) -> samples


def _encode_buckets(b: Buckets) -> bytes:
    return codec.encode([(b.t, 2), (b.count, 1)], [b.min, b.max, b.sum, b.last])


def _decode_buckets(blob: bytes) -> Buckets:
    (t, count), (lo, hi, total, last) = codec.decode(blob)
    return Buckets(t, count, lo, hi, total, last)


def _window(t: int) -> int:
    return t - t % WINDOW_MS


@dataclass(slots=True)
class _Log:
    """The samples a write placed into heads, as the columns of its head_log record."""

    sids: array[int] = field(default_factory=lambda: array("I"))
    ts: array[int] = field(default_factory=lambda: array("q"))
    vs: array[float] = field(default_factory=lambda: array("d"))


@dataclass(frozen=True, slots=True)
class _Run:
    """A block's series as open heads of one window: their time and value arrays, in order."""

    keys: list[SeriesKey]  # held, so that the id it is found by stays this list's
    generation: int
    window: int
    end: int
    ts: list[array[int]]
    vs: list[array[float]]
    sids: array[int]


def _consume(calls: Iterable[object]) -> None:
    deque(calls, maxlen=0)


class SQLiteMetricStore(MetricStore):
    def __init__(
        self, path: str | Path, retention: Retention | None = None, synchronous: str = "FULL"
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._db = self._connect()
        self._db.executescript(_SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
        elif found[0] != FORMAT:
            raise ValueError(f"{self.path}: metric store format {found[0]}, expected {FORMAT}")
        self._load()

    # -- connections and state -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self._synchronous}")
        return db

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._lock:
                self._readers.append(db)
        return db

    def _load(self) -> None:
        """Rebuild the in-memory state from the file: series, sealed windows, replayed head."""
        self._ids: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._index: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        self._heads: dict[int, Head] = {}
        # The same open heads by key: the writer finds a sample's head in one lookup, not two.
        self._open: dict[SeriesKey, Head] = {}
        # Blocks (write_blocks) by the id of their key list: a host's batches share one list.
        self._runs: dict[int, _Run] = {}
        self._generation = 0
        self._hints: dict[int, int] = {}
        self._clock = 0  # newest window written to, capped by the wall clock
        self._log_floor = 0
        self._sealed_now = False  # set by _seal: the log may then be trimmed
        for sid, key in self._db.execute("SELECT id, key FROM series"):
            self._remember(sid, SeriesKey.parse(key))
        self._sealed: dict[int, int] = dict(
            self._db.execute("SELECT series_id, max(start_ms) FROM chunks GROUP BY series_id")
        )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            late: Late = defaultdict(list)
            for (blob,) in self._db.execute("SELECT data FROM head_log ORDER BY seq").fetchall():
                for sid, t, v in zip(*decode_log(blob), strict=True):
                    self._place(sid, t, v, late)
            self._write_late(late)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _remember(self, sid: int, key: SeriesKey) -> None:
        self._ids[key] = sid
        self._keys[sid] = key
        for label, value in key.labels:
            self._index[label][value].add(sid)

    def _register(self, key: SeriesKey) -> int:
        cur = self._db.execute("INSERT INTO series (key) VALUES (?)", (key.canonical,))
        sid = cur.lastrowid
        assert sid is not None
        self._remember(sid, key)
        return sid

    # -- writing ---------------------------------------------------------------------------

    def write(self, samples: Iterable[Sample]) -> int:
        rows = samples if isinstance(samples, list) else list(samples)
        return self._in_transaction(lambda late, log: self._place_rows(rows, late, log))

    def write_blocks(self, blocks: Sequence[Block]) -> int:
        if any(len(keys) != len(values) for keys, _, values in blocks):
            raise ValueError("a block needs one value per series")

        def place(late: Late, log: _Log) -> None:
            for keys, t, values in blocks:
                if not self._append_block(keys, t, values, log):
                    self._place_rows(list(map(_new, repeat(Sample), zip(keys, repeat(t), values))), late, log)

        return self._in_transaction(place)

    def _in_transaction(self, place: Callable[[Late, _Log], None]) -> int:
        """Place samples into heads (or set late ones aside), then log and commit them at once."""
        with self._lock:
            self._check_open()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._sealed_now = False
                late: Late = defaultdict(list)
                log = _Log()
                place(late, log)
                if log.sids:
                    db.execute(
                        "INSERT INTO head_log (max_t, data) VALUES (?, ?)",
                        (max(log.ts), encode_log(log.sids, log.ts, log.vs)),
                    )
                stored = len(log.sids) + self._write_late(late)
                if self._sealed_now:
                    self._trim_log()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._load()
                raise
            return stored

    def _place_rows(self, rows: list[Sample], late: Late, log: _Log) -> None:
        ids, open_ = self._ids, self._open
        # The loop notes only each sample's series id (-1: not stored, a duplicate or late); the
        # log's time and value columns are then built from the samples in C.
        sids: list[int] = []
        add_id = sids.append
        skipped = False
        for key, t, v in rows:
            head = open_.get(key)
            # The common case, inlined: the next sample of an open window (a head is never empty).
            if head is not None and head.window <= t < head.end and t > head.ts[-1]:
                head.ts.append(t)
                head.vs.append(v)
                add_id(head.sid)
                continue
            sid = ids.get(key)
            if sid is None:
                sid = self._register(key)
            if self._place(sid, t, v, late):
                add_id(sid)
            else:
                add_id(-1)
                skipped = True
        if skipped:
            rows = list(compress(rows, [sid >= 0 for sid in sids]))
            sids = [sid for sid in sids if sid >= 0]
        log.sids.extend(sids)
        log.ts.extend(map(_T, rows))
        log.vs.extend(map(_V, rows))

    def _append_block(self, keys: list[SeriesKey], t: int, values: list[float], log: _Log) -> bool:
        """A block's samples appended to their open heads with C-level calls, when every series
        has one in t's window and t is past its newest sample; else False (nothing done)."""
        run = self._runs.get(id(keys))
        if run is None or run.keys is not keys or run.generation != self._generation:
            run = self._run_of(keys)
            if run is None:
                return False
        if not run.window <= t < run.end or max(map(_NEWEST, run.ts)) >= t:
            return False
        _consume(map(array.append, run.ts, repeat(t)))
        _consume(map(array.append, run.vs, values))
        log.sids.extend(run.sids)
        log.ts.extend(repeat(t, len(keys)))
        log.vs.extend(values)
        return True

    def _run_of(self, keys: list[SeriesKey]) -> _Run | None:
        """The open heads of a block's series, remembered until any head is opened or sealed."""
        heads = [self._open.get(key) for key in keys]
        if not keys or None in heads:
            return None
        opened = cast(list[Head], heads)
        window = opened[0].window
        if any(h.window != window for h in opened) or len({h.sid for h in opened}) != len(opened):
            return None  # windows apart, or a series twice: the sample-by-sample path decides
        if len(self._runs) > MAX_RUNS:
            self._runs.clear()
        run = self._runs[id(keys)] = _Run(
            keys,
            self._generation,
            window,
            window + WINDOW_MS,
            [h.ts for h in opened],
            [h.vs for h in opened],
            array("I", [h.sid for h in opened]),
        )
        return run

    def _place(self, sid: int, t: int, v: float, late: Late) -> bool:
        """Put a sample into its series' head; False if a duplicate or set aside as late."""
        w = _window(t)
        head = self._heads.get(sid)
        if head is not None:
            if w == head.window:
                return head.add(t, v)
            if w < head.window:
                late[(sid, w)].append((t, v))
                return False
            self._seal(sid, head)
        else:
            sealed = self._sealed.get(sid)
            if sealed is not None and w < sealed:
                late[(sid, w)].append((t, v))
                return False
            if sealed == w:
                return self._reopen(sid, w).add(t, v)
        head = self._open_head(sid, Head(w))
        if w > self._clock:
            self._advance_clock(w)
        return head.add(t, v)

    def _advance_clock(self, w: int) -> None:
        """Seal heads two windows behind the newest, so that silent series let the log shrink.

        The wall clock caps the newest window: one host with a clock far ahead must not make
        every other series look silent.
        """
        self._clock = min(w, _window(int(time.time() * 1000)) + WINDOW_MS)
        for sid, head in list(self._heads.items()):
            if head.window < self._clock - WINDOW_MS:
                self._seal(sid, head)

    def _reopen(self, sid: int, w: int) -> Head:
        """Make a sealed window the head again, so that its next samples need no rewrite each."""
        head = Head(w)
        row = self._db.execute(
            "SELECT data FROM chunks WHERE series_id = ? AND start_ms = ?", (sid, w)
        ).fetchone()
        if row is not None:
            (ts,), (vs,) = codec.decode(row[0])
            head.ts.extend(ts)
            head.vs.extend(vs)
        return self._open_head(sid, head)

    def _open_head(self, sid: int, head: Head) -> Head:
        head.sid = sid
        self._heads[sid] = self._open[self._keys[sid]] = head
        self._generation += 1  # remembered runs of heads are out of date
        return head

    def _seal(self, sid: int, head: Head) -> None:
        self._store_window(sid, head.window, head.ts.tolist(), head.vs.tolist())
        del self._heads[sid], self._open[self._keys[sid]]
        self._generation += 1
        self._sealed_now = True

    def _store_window(self, sid: int, w: int, ts: list[int], vs: list[float]) -> None:
        """Write one window's chunk and rebuild the rollups that depend on it."""
        blob = codec.encode([(ts, 2)], [vs], [self._hints.get(sid, 0)])
        self._hints[sid] = codec.float_mode(blob, 0)
        db = self._db
        db.execute(
            "INSERT OR REPLACE INTO chunks (series_id, start_ms, count, data) VALUES (?, ?, ?, ?)",
            (sid, w, len(ts), blob),
        )
        self._sealed[sid] = max(w, self._sealed.get(sid, w))
        fine = bucket_samples(ts, vs, RES_5M)
        db.execute(
            "INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, ?)", (sid, RES_5M, w, _encode_buckets(fine))
        )
        day = w - w % DAY_MS
        row = db.execute(
            "SELECT data FROM rollups WHERE series_id = ? AND res = ? AND block = ?", (sid, RES_1H, day)
        ).fetchone()
        hours = Buckets()
        if row is not None:
            stored = _decode_buckets(row[0])
            hours.extend(stored.between(day, w))
            hours.extend(bucket_samples(ts, vs, RES_1H))
            hours.extend(stored.between(w + WINDOW_MS, day + DAY_MS))
        else:
            hours = bucket_samples(ts, vs, RES_1H)
        db.execute(
            "INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, ?)", (sid, RES_1H, day, _encode_buckets(hours))
        )

    def _write_late(self, late: Late) -> int:
        """Merge late samples into the stored chunks of their windows; returns how many were new."""
        stored = 0
        for (sid, w), items in late.items():
            merged: dict[int, float] = {}
            row = self._db.execute(
                "SELECT data FROM chunks WHERE series_id = ? AND start_ms = ?", (sid, w)
            ).fetchone()
            if row is not None:
                (ts,), (vs,) = codec.decode(row[0])
                merged.update(zip(ts, vs, strict=True))
            before = len(merged)
            for t, v in items:
                merged.setdefault(t, v)
            if len(merged) > before:
                stored += len(merged) - before
                ts = sorted(merged)
                self._store_window(sid, w, ts, [merged[t] for t in ts])
        return stored

    def _trim_log(self) -> None:
        """Drop log records whose samples all lie in sealed windows."""
        floor = min((h.window for h in self._heads.values()), default=_NO_HEAD)
        if floor > self._log_floor:
            self._db.execute("DELETE FROM head_log WHERE max_t < ?", (floor,))
            self._log_floor = floor

    # -- reading ---------------------------------------------------------------------------

    def _match(self, matchers: Sequence[Matcher]) -> list[int]:
        """Series ids matching all matchers; the label index narrows those that exclude ""."""
        hits: list[set[int]] = []
        word_lists: list[tuple[dict[str, set[int]], frozenset[str]]] = []
        for m in matchers:
            if m.matches(""):
                continue
            values = self._index.get(m.label, {})
            hit: set[int]
            if m.op is Op.EQ:  # one lookup, not a test of every value (this runs under the write lock)
                hit = values.get(m.value, set())
            elif m.op is Op.RE and m.literals is not None:  # "1|2|3": a lookup per word, below
                word_lists.append((values, m.literals))
                continue
            else:
                hit = set()
                for value, sids in values.items():
                    if m.matches(value):
                        hit |= sids
            hits.append(hit)
        for values, words in word_lists:
            if hits:
                # Each word's series within the smallest set so far: the alert engine's "these 200
                # assets" would otherwise gather every series of every asset (18,000) per read.
                smallest = min(hits, key=len)
                hits.append(set().union(*(smallest & values[v] for v in words if v in values)))
            else:
                hits.append(set().union(*(values.get(v, ()) for v in words)))
        # Smallest first: each step probes the (shrinking) result into the next set.
        hits.sort(key=len)
        candidates = hits[0].intersection(*hits[1:]) if hits else None
        pool = self._keys.keys() if candidates is None else candidates
        keys = self._keys
        # Candidates already satisfy every matcher the index answered; test only the others.
        rest = [m for m in matchers if m.matches("")]
        found = (
            (sid for sid in pool if all(m.matches(keys[sid].get(m.label)) for m in rest)) if rest else pool
        )
        # Sorted by the keys' label tuples (SeriesKey's order): compared in C, not by __lt__ calls.
        return sorted(found, key=lambda sid: keys[sid].labels)

    def _snapshot(self, matchers: Sequence[Matcher]) -> tuple[list[int], dict[int, Head]]:
        with self._lock:
            self._check_open()
            sids = self._match(matchers)
            heads = {sid: self._heads[sid].copy() for sid in sids if sid in self._heads}
        return sids, heads

    def series(self, matchers: Sequence[Matcher]) -> list[SeriesKey]:
        with self._lock:
            self._check_open()
            return [self._keys[sid] for sid in self._match(matchers)]

    def read_range(self, matchers: Sequence[Matcher], start: int, end: int, step: int) -> list[SeriesResult]:
        if step <= 0:
            raise ValueError("step must be positive")
        # Only a resolution that divides both start and step gives exact buckets.
        res = max((r for r in RESOLUTIONS_MS if step % r == 0 and start % r == 0), default=0)
        heads: dict[int, Head] = {}
        recent: dict[int, tuple[list[int], list[float]]] = {}
        with self._lock:
            self._check_open()
            sids = self._match(matchers)
            for sid in sids:
                head = self._heads.get(sid)
                if head is None:
                    continue
                if not res and _window(start) >= head.window:
                    # The range starts inside the head's window (recent data, as alert rules read
                    # it): the head holds all of it, and no sealed chunk can be newer. Only the
                    # range is copied, not the head.
                    i, j = bisect_left(head.ts, start), bisect_left(head.ts, end)
                    recent[sid] = (head.ts[i:j].tolist(), head.vs[i:j].tolist())
                else:
                    heads[sid] = head.copy()
        out: list[SeriesResult] = []
        if len(recent) == len(sids):  # all from memory: no read transaction
            for sid in sids:
                points = bucket_samples(*recent[sid], step, start)
                if len(points):
                    out.append(SeriesResult(self._keys[sid], points.points()))
            return out
        db = self._reader()
        db.execute("BEGIN")
        try:
            for sid in sids:
                head = heads.get(sid)
                if sid in recent:
                    points = bucket_samples(*recent[sid], step, start)
                elif res:
                    points = self._read_rollups(db, sid, res, head, start, end)
                    if step != res:
                        points = merge_buckets(points, step, start)
                else:
                    ts, vs = self._read_raw(db, sid, head, start, end)
                    points = bucket_samples(ts, vs, step, start)
                if len(points):
                    out.append(SeriesResult(self._keys[sid], points.points()))
        finally:
            db.execute("COMMIT")
        return out

    def window(self, matchers: Sequence[Matcher], start: int, end: int) -> list[tuple[SeriesKey, Point]]:
        """As MetricStore.window; a range inside the open heads is aggregated from memory with C
        builtins (no buckets, no transaction): alert rules read this for every asset they watch."""
        out: list[tuple[SeriesKey, Point]] = []
        with self._lock:
            self._check_open()
            sids = self._match(matchers)
            segments = []
            for sid in sids:
                head = self._heads.get(sid)
                if head is None or _window(start) < head.window:
                    break  # older data may be in the file
                i, j = bisect_left(head.ts, start), bisect_left(head.ts, end)
                segments.append((sid, head.vs[i:j]))
            else:
                for sid, seg in segments:
                    total = _sum(seg) if seg else math.nan
                    if total != total:  # NaN (or no samples): as bucket_samples, leave NaN out
                        seg = array("d", (v for v in seg if v == v))
                        if not seg:
                            continue
                        total = _sum(seg)
                    point = Point(start, min(seg), total / len(seg), max(seg), seg[-1], len(seg))
                    out.append((self._keys[sid], point))
                return out
        return super().window(matchers, start, end)

    def _read_raw(
        self, db: sqlite3.Connection, sid: int, head: Head | None, start: int, end: int
    ) -> tuple[list[int], list[float]]:
        if head is not None and _window(start) >= head.window:
            # The range starts inside the head's window (recent data, as alert rules read it):
            # the head holds all of it, and no sealed chunk can be newer.
            i, j = bisect_left(head.ts, start), bisect_left(head.ts, end)
            return list(head.ts[i:j]), list(head.vs[i:j])
        ts: list[int] = []
        vs: list[float] = []
        rows = db.execute(
            "SELECT start_ms, data FROM chunks WHERE series_id = ? AND start_ms >= ? AND start_ms < ?"
            " ORDER BY start_ms",
            (sid, _window(start), end),
        )
        for w, blob in rows:
            if head is None or w != head.window:  # the head supersedes its sealed copy
                (cts,), (cvs,) = codec.decode(blob)
                ts.extend(cts)
                vs.extend(cvs)
        if head is not None and _window(start) <= head.window < end:
            ts.extend(head.ts)
            vs.extend(head.vs)
        i, j = bisect_left(ts, start), bisect_left(ts, end)
        return ts[i:j], vs[i:j]

    def _read_rollups(
        self, db: sqlite3.Connection, sid: int, res: int, head: Head | None, start: int, end: int
    ) -> Buckets:
        span = WINDOW_MS if res == RES_5M else DAY_MS
        out = Buckets()
        rows = db.execute(
            "SELECT block, data FROM rollups WHERE series_id = ? AND res = ? AND block >= ? AND block < ?"
            " ORDER BY block",
            (sid, res, start - start % span, end),
        )
        for block, blob in rows:
            buckets = _decode_buckets(blob)
            if head is not None and block <= head.window < block + span:
                # The head supersedes what a sealed copy of its window left here.
                kept = buckets.between(block, head.window)
                kept.extend(buckets.between(head.window + WINDOW_MS, block + span))
                buckets = kept
            out.extend(buckets)
        if head is not None:
            out.extend(bucket_samples(head.ts, head.vs, res))
        return out.between(start, end)

    def latest(self, matchers: Sequence[Matcher]) -> list[Latest]:
        with self._lock:  # the newest sample of each head, not a copy of the whole head
            self._check_open()
            sids = self._match(matchers)
            newest = {sid: (h.ts[-1], h.vs[-1]) for sid in sids if (h := self._heads.get(sid)) and h.ts}
        out: list[Latest] = []
        keys = self._keys
        if len(newest) == len(sids):  # all in memory: no transaction needed
            return [Latest(keys[sid], *newest[sid]) for sid in sids]
        db = self._reader()
        db.execute("BEGIN")
        try:
            for sid in sids:
                if sid in newest:
                    out.append(Latest(keys[sid], *newest[sid]))
                    continue
                row = db.execute(
                    "SELECT data FROM chunks WHERE series_id = ? ORDER BY start_ms DESC LIMIT 1", (sid,)
                ).fetchone()
                if row is not None:
                    (ts,), (vs,) = codec.decode(row[0])
                    out.append(Latest(self._keys[sid], ts[-1], vs[-1]))
        finally:
            db.execute("COMMIT")
        return out

    # -- upkeep ----------------------------------------------------------------------------

    def apply_retention(self, now: int) -> int:
        r = self.retention
        deletes = (
            ("DELETE FROM chunks WHERE series_id = ? AND start_ms <= ?", now - r.raw_ms - WINDOW_MS),
            (
                f"DELETE FROM rollups WHERE series_id = ? AND res = {RES_5M} AND block <= ?",
                now - r.rollup_5m_ms - WINDOW_MS,
            ),
            (
                f"DELETE FROM rollups WHERE series_id = ? AND res = {RES_1H} AND block <= ?",
                now - r.rollup_1h_ms - DAY_MS,
            ),
        )
        deleted = 0
        with self._lock:
            self._check_open()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # Per series, so that each delete is a range of the primary key, not a table scan.
                for sid in self._keys:
                    for sql, cutoff in deletes:
                        deleted += db.execute(sql, (sid, cutoff)).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return deleted

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("metric store is closed")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            self._sealed_now = False
            for sid, head in list(self._heads.items()):
                self._seal(sid, head)
            db.execute("DELETE FROM head_log")
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for conn in (*self._readers, db):
                conn.close()
            self._closed = True
