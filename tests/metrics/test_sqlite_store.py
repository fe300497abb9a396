"""The embedded metric store against brute-force answers, on real SQLite files."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdesk.metrics import Matcher, MetricStore, Op, Point, Retention, Sample, SeriesKey, open_store
from opsdesk.metrics.sqlite_store import SQLiteMetricStore
from opsdesk.metrics.store import DAY_MS, HOUR_MS

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP = 15_000


def cpu(host: int, mode: str) -> SeriesKey:
    return SeriesKey.of("node_cpu_seconds_total", host=str(host), cpu="0", mode=mode)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "metrics.db"


@pytest.fixture
def store(path: Path) -> Iterator[MetricStore]:
    s = open_store(f"sqlite:///{path}")
    yield s
    s.close()


def walk(key: SeriesKey, start: int, n: int, seed: int, step: int = STEP) -> list[Sample]:
    rnd = random.Random(seed)
    v, out = 100.0, []
    for i in range(n):
        v = round(v + rnd.uniform(-3, 4), 2)
        out.append(Sample(key, start + i * step + rnd.randrange(5), v))
    return out


def brute(samples: list[Sample], start: int, end: int, step: int) -> list[Point]:
    buckets: dict[int, list[Sample]] = {}
    for s in sorted(samples, key=lambda s: s.t):
        if start <= s.t < end and not math.isnan(s.value):
            buckets.setdefault(start + (s.t - start) // step * step, []).append(s)
    return [
        Point(t, min(v), math.fsum(v) / len(v), max(v), v[-1], len(v))
        for t, group in sorted(buckets.items())
        for v in [[s.value for s in group]]
    ]


def close_points(got: list[Point], want: list[Point]) -> None:
    assert [(p.t, p.min, p.max, p.last, p.count) for p in got] == [
        (p.t, p.min, p.max, p.last, p.count) for p in want
    ]
    for g, w in zip(got, want, strict=True):
        assert g.avg == pytest.approx(w.avg, rel=1e-12)


def raw(store: MetricStore, key: SeriesKey, start: int, end: int) -> list[tuple[int, float]]:
    """Every stored sample of a series, read at a 1 ms step."""
    (result,) = store.read_range([Matcher.eq(k, v) for k, v in key.labels], start, end, 1)
    assert result.series == key
    return [(p.t, p.last) for p in result.points]


def test_raw_round_trip_is_exact_across_windows(store: MetricStore) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0 - 3 * HOUR_MS, 2_000, seed=1)  # spans several chunks and the head
    assert store.write(samples) == len(samples)
    assert raw(store, key, T0 - DAY_MS, T0 + DAY_MS) == [(s.t, s.value) for s in samples]


def test_special_float_values_round_trip(store: MetricStore) -> None:
    key = cpu(1, "user")
    values = [math.inf, -math.inf, -0.0, 5e-324, -1.5e308, 0.1 + 0.2, 42.0]
    store.write([Sample(key, T0 + i * STEP, v) for i, v in enumerate(values)])
    (result,) = store.read_range([Matcher.name("node_cpu_seconds_total")], T0, T0 + HOUR_MS, 1)
    assert [math.copysign(1, p.last) for p in result.points] == [math.copysign(1, v) for v in values]
    assert [p.last for p in result.points] == values


@pytest.mark.parametrize("step", [60_000, 7 * 60_000, 45 * 60_000])
def test_raw_steps_match_brute_force(store: MetricStore, step: int) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 1_500, seed=2)
    store.write(samples)
    start, end = T0 + 1_234_567, T0 + 5 * HOUR_MS
    (result,) = store.read_range([Matcher.eq("host", "1")], start, end, step)
    close_points(result.points, brute(samples, start, end, step))


@pytest.mark.parametrize("step", [5 * 60_000, 15 * 60_000, HOUR_MS, 6 * HOUR_MS])
def test_rollup_reads_match_brute_force(path: Path, step: int) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 4 * 5_760, seed=3)  # four days
    store = SQLiteMetricStore(path)
    try:
        store.write(samples)
        start, end = T0 + 2 * HOUR_MS, T0 + 4 * DAY_MS - HOUR_MS
        (result,) = store.read_range([Matcher.eq("host", "1")], start, end, step)
        close_points(result.points, brute(samples, start, end, step))
    finally:
        store.close()


def test_thirty_day_chart_reads_hourly_rollups(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 30 * 288, seed=4, step=5 * 60_000)  # 30 days at 5 min
    store = SQLiteMetricStore(path)
    store.write(samples)
    resolutions: list[int] = []
    real = SQLiteMetricStore._read_rollups

    def spy(self: SQLiteMetricStore, db, sid, res, head, start, end):
        resolutions.append(res)
        return real(self, db, sid, res, head, start, end)

    monkeypatch.setattr(SQLiteMetricStore, "_read_rollups", spy)
    start, end = T0, T0 + 30 * DAY_MS
    for s in (store, SQLiteMetricStore(path)):  # served from the head, then after a reopen
        (result,) = s.read_range([Matcher.eq("host", "1")], start, end, HOUR_MS)
        assert len(result.points) == 720
        close_points(result.points, brute(samples, start, end, HOUR_MS))
        s.close()
    assert resolutions == [HOUR_MS, HOUR_MS]


def test_nan_samples_are_left_out_of_aggregates(store: MetricStore) -> None:
    key = cpu(1, "user")
    store.write([Sample(key, T0, 1.0), Sample(key, T0 + STEP, math.nan), Sample(key, T0 + 2 * STEP, 3.0)])
    store.write([Sample(key, T0 + HOUR_MS, math.nan)])
    (result,) = store.read_range([Matcher.eq("host", "1")], T0, T0 + 2 * HOUR_MS, HOUR_MS)
    assert result.points == [Point(T0, 1.0, 2.0, 3.0, 3.0, 2)]


def test_latest_comes_from_head_and_from_chunks(path: Path) -> None:
    store = SQLiteMetricStore(path)
    store.write(walk(cpu(1, "user"), T0, 1_000, seed=5) + walk(cpu(2, "user"), T0, 10, seed=6))
    store.write([Sample(cpu(1, "user"), T0 + 1_000 * STEP, 7.5)])
    last2 = walk(cpu(2, "user"), T0, 10, seed=6)[-1]
    expected = {(cpu(1, "user"), T0 + 1_000 * STEP, 7.5), (cpu(2, "user"), last2.t, last2.value)}
    assert {tuple(x) for x in store.latest([Matcher.name("node_cpu_seconds_total")])} == expected
    store.close()
    reopened = SQLiteMetricStore(path)
    assert {tuple(x) for x in reopened.latest([Matcher.eq("mode", "user")])} == expected
    assert reopened.latest([Matcher.eq("host", "3")]) == []
    reopened.close()


def test_series_listing_by_matchers(store: MetricStore) -> None:
    keys = [cpu(h, m) for h in (1, 2, 10) for m in ("user", "idle")]
    other = SeriesKey.of("node_load1", host="1")
    store.write([Sample(k, T0, 1.0) for k in [*keys, other]])
    assert store.series([Matcher.eq("host", "1")]) == sorted([cpu(1, "user"), cpu(1, "idle"), other])
    assert store.series([Matcher.name("node_cpu_seconds_total"), Matcher("mode", "idle", Op.NE)]) == sorted(
        cpu(h, "user") for h in (1, 2, 10)
    )
    assert store.series([Matcher("host", "1.*", Op.RE), Matcher.eq("mode", "idle")]) == sorted(
        [cpu(1, "idle"), cpu(10, "idle")]
    )
    assert store.series([Matcher("cpu", "", Op.EQ)]) == [other]  # an absent label equals ""
    assert store.series([Matcher("host", "2", Op.NRE), Matcher.eq("mode", "user")]) == sorted(
        [cpu(1, "user"), cpu(10, "user")]
    )
    assert store.series([Matcher.eq("host", "99")]) == []
    assert len(store.series([])) == 7
    # a set of plain words is looked up word by word, with the regex's meaning
    words = Matcher("host", "1|10|99", Op.RE)
    assert words.literals == {"1", "10", "99"}
    assert store.series([words, Matcher.eq("mode", "user")]) == sorted([cpu(1, "user"), cpu(10, "user")])
    assert store.series([words]) == [k for k in store.series([]) if k.get("host") in {"1", "10"}]
    assert store.series([Matcher("mode", "user|nice", Op.RE), words]) == [cpu(1, "user"), cpu(10, "user")]
    assert store.series([Matcher("host", "1|2", Op.NRE), Matcher.eq("mode", "idle")]) == [cpu(10, "idle")]
    assert Matcher("host", "1.", Op.RE).literals is None  # "." is a wildcard, not a word
    assert store.series([Matcher("host", "1.", Op.RE), Matcher.eq("mode", "idle")]) == [cpu(10, "idle")]


def test_duplicates_are_not_stored_twice(path: Path) -> None:
    key = cpu(1, "user")
    batch = walk(key, T0, 1_000, seed=7)  # sealed chunks and an open head
    store = SQLiteMetricStore(path)
    assert store.write(batch) == 1_000
    assert store.write(batch) == 0
    changed = [s._replace(value=s.value + 1) for s in batch]
    extra = Sample(key, T0 + 7_000, 0.5)  # new, in a sealed window: that window is rewritten
    assert store.write([*changed, extra]) == 1  # the first value wins
    batch = sorted([*batch, extra], key=lambda s: s.t)
    assert raw(store, key, T0, T0 + DAY_MS) == [(s.t, s.value) for s in batch]
    store.close()
    reopened = SQLiteMetricStore(path)
    assert reopened.write(changed) == 0
    assert raw(reopened, key, T0, T0 + DAY_MS) == [(s.t, s.value) for s in batch]
    reopened.close()


def test_late_samples_are_merged_and_rollups_rebuilt(path: Path) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 2_000, seed=8)
    early, late = [s for i, s in enumerate(samples) if i % 10], samples[::10]
    store = SQLiteMetricStore(path)
    store.write(early)
    assert store.write(list(reversed(late))) == len(late)  # older than the head, out of order
    assert raw(store, key, T0, T0 + DAY_MS) == [(s.t, s.value) for s in samples]
    for step in (5 * 60_000, HOUR_MS):
        (result,) = store.read_range([Matcher.eq("host", "1")], T0, T0 + DAY_MS, step)
        close_points(result.points, brute(samples, T0, T0 + DAY_MS, step))
    store.close()
    reopened = SQLiteMetricStore(path)
    assert raw(reopened, key, T0, T0 + DAY_MS) == [(s.t, s.value) for s in samples]
    reopened.close()


def test_writing_on_after_reopen_continues_the_window(path: Path) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 300, seed=9)
    store = SQLiteMetricStore(path)
    store.write(samples[:100])
    store.close()
    store = SQLiteMetricStore(path)
    for i in range(100, 300, 50):
        store.write(samples[i : i + 50])
    assert raw(store, key, T0, T0 + DAY_MS) == [(s.t, s.value) for s in samples]
    (result,) = store.read_range([Matcher.eq("host", "1")], T0, T0 + DAY_MS, HOUR_MS)
    close_points(result.points, brute(samples, T0, T0 + DAY_MS, HOUR_MS))
    store.close()


def test_retention_deletes_old_data_only(path: Path) -> None:
    key = cpu(1, "user")
    samples = walk(key, T0, 20 * 288, seed=10, step=5 * 60_000)  # 20 days
    store = SQLiteMetricStore(
        path, Retention(raw_ms=5 * DAY_MS, rollup_5m_ms=10 * DAY_MS, rollup_1h_ms=15 * DAY_MS)
    )
    store.write(samples)
    now = T0 + 20 * DAY_MS
    assert store.apply_retention(now) > 0
    m = [Matcher.eq("host", "1")]
    assert raw(store, key, T0, now)[0][0] >= now - 5 * DAY_MS - 2 * HOUR_MS
    assert raw(store, key, now - 5 * DAY_MS, now) == [
        (s.t, s.value) for s in samples if s.t >= now - 5 * DAY_MS
    ]
    five = store.read_range(m, T0, now, 5 * 60_000)[0].points
    assert now - 10 * DAY_MS - 2 * HOUR_MS <= five[0].t <= now - 10 * DAY_MS
    hourly = store.read_range(m, T0, now, HOUR_MS)[0].points
    assert hourly[0].t == now - 15 * DAY_MS
    close_points(hourly, brute(samples, now - 15 * DAY_MS, now, HOUR_MS))
    assert store.apply_retention(now) == 0
    store.close()


def test_reopen_after_close_keeps_everything(path: Path) -> None:
    keys = [cpu(h, m) for h in range(3) for m in ("user", "system")]
    samples = [s for i, k in enumerate(keys) for s in walk(k, T0, 700, seed=i)]
    with open_store(path) as store:
        store.write(samples)
    with open_store(path) as store:
        assert sorted(store.series([])) == sorted(keys)
        for k in keys:
            assert raw(store, k, T0, T0 + DAY_MS) == [(s.t, s.value) for s in samples if s.series == k]


def test_a_crash_loses_nothing_that_write_returned_for(path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.metrics.test_sqlite_store import cpu, walk, T0
        from opsdesk.metrics import open_store
        store = open_store({str(path)!r})
        store.write(walk(cpu(1, "user"), T0, 1_000, seed=11))
        store.write(walk(cpu(1, "user"), T0 + 1_000 * 15_000, 10, seed=12))
        os._exit(0)  # no close: the head is only in the log
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    expected = walk(cpu(1, "user"), T0, 1_000, seed=11) + walk(cpu(1, "user"), T0 + 1_000 * STEP, 10, seed=12)
    with open_store(path) as store:
        assert raw(store, cpu(1, "user"), T0, T0 + DAY_MS) == [(s.t, s.value) for s in expected]
        assert store.write(expected) == 0


def test_open_store_urls(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert isinstance(store, SQLiteMetricStore)
    with pytest.raises(ValueError, match="not available yet"):
        open_store("victoriametrics://localhost:8428")
    with pytest.raises(ValueError, match="unsupported"):
        open_store("postgresql://x/y")


def test_reads_from_another_thread_see_committed_data(store: MetricStore) -> None:
    import threading

    store.write(walk(cpu(1, "user"), T0, 600, seed=13))
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(len(raw(store, cpu(1, "user"), T0, T0 + DAY_MS))))
    thread.start()
    thread.join()
    assert found == [600]


def test_window_is_one_point_over_the_range_from_memory_or_file(store: MetricStore) -> None:
    a, b, c = cpu(1, "user"), cpu(2, "user"), cpu(3, "user")
    now = T0 + 5 * HOUR_MS  # c's samples span sealed windows; a's and b's lie in their heads
    samples = walk(a, now - 40 * STEP, 40, 1) + walk(c, now - 2000 * STEP, 2000, 3)
    samples += [Sample(b, now - 3 * STEP, math.nan), Sample(b, now - 2 * STEP, math.nan)]
    store.write(samples)
    on_cpu = [Matcher.name("node_cpu_seconds_total")]
    for start, end, matchers in (
        (now - 20 * STEP, now + 1, [*on_cpu, Matcher("host", "1|2", Op.RE)]),  # heads only
        (now - 20 * STEP, now + 1, on_cpu),
        (now - 3 * HOUR_MS, now + 1, on_cpu),  # from the file
        (now + 1, now + 2, on_cpu),  # no samples
    ):
        got = store.window(matchers, start, end)
        want = [(r.series, r.points[-1]) for r in store.read_range(matchers, start, end, end - start)]
        assert [k for k, _ in got] == [k for k, _ in want]
        for (_, p), (_, q) in zip(got, want, strict=True):
            close_points([p], [q])
        for key, p in got:
            close_points([p], brute([s for s in samples if s.series == key], start, end, end - start))
    assert b not in {k for k, _ in store.window(on_cpu, now - 20 * STEP, now + 1)}  # only NaN: no point
