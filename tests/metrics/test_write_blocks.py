"""write_blocks() stores exactly what write() stores, sample by sample: across windows, with
replays, late and repeated samples, and after a reopen (the head log replayed)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from opsdesk.metrics import Block, Matcher, Sample, SeriesKey, SQLiteMetricStore
from opsdesk.metrics.head import WINDOW_MS

T0 = 1_764_400_000_000
STEP = 5 * 60_000  # minutes apart: a few hours cross two window boundaries in 60 ticks


def host_keys(host: int, extra: int = 0) -> list[SeriesKey]:
    names = ["load1", "cpu", "mem", "disk"] + [f"x{i}" for i in range(extra)]
    return [SeriesKey.of(n, asset=str(host), customer="1") for n in names]


def blocks_script(seed: int) -> list[list[Block]]:
    """Groups of blocks as the ingest writer makes them, with the awkward cases mixed in."""
    rnd = random.Random(seed)
    start = T0 // WINDOW_MS * WINDOW_MS + WINDOW_MS - 20 * STEP  # 20 ticks before a boundary
    keys = {h: host_keys(h) for h in range(3)}
    groups: list[list[Block]] = []
    sent: list[Block] = []
    for tick in range(60):
        group: list[Block] = []
        for h in range(3):
            if tick == 30 and h == 1:
                keys[h] = host_keys(h, extra=2)  # a host gains series: a new key list
            block = (keys[h], start + tick * STEP + h, [rnd.uniform(0, 100) for _ in keys[h]])
            group.append(block)
            sent.append(block)
        if rnd.random() < 0.2:
            group.append(rnd.choice(sent))  # a replay: every sample a duplicate
        if rnd.random() < 0.1:
            old = rnd.choice(sent)
            group.append((old[0], old[1] - 7, [v + 1 for v in old[2]]))  # late, between two samples
        if tick == 40:
            twice = [keys[0][0], keys[0][0]]
            group.append((twice, start + tick * STEP + 11, [1.0, 2.0]))  # a series twice in a block
        groups.append(group)
    return groups


def contents(store: SQLiteMetricStore) -> list[tuple[str, list[tuple[int, float, int]]]]:
    out = []
    for r in store.read_range([Matcher.eq("customer", "1")], 0, 2**62, 1):
        out.append((r.series.canonical, [(p.t, p.last, p.count) for p in r.points]))
    return sorted(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_store_what_samples_store(tmp_path: Path, seed: int) -> None:
    by_block = SQLiteMetricStore(str(tmp_path / "blocks.db"))
    by_sample = SQLiteMetricStore(str(tmp_path / "samples.db"))
    for group in blocks_script(seed):
        samples = [Sample(k, t, v) for keys, t, values in group for k, v in zip(keys, values, strict=True)]
        assert by_block.write_blocks(group) == by_sample.write(samples)
    assert by_block._runs, "the block path was never taken"
    want = contents(by_sample)
    assert contents(by_block) == want and len(want) == 14
    assert sum(len(points) for _, points in want) > 60 * 12  # every tick, plus late samples
    by_block.close()
    reopened = SQLiteMetricStore(str(tmp_path / "blocks.db"))
    assert contents(reopened) == want
    reopened.close()
    by_sample.close()


def test_a_block_refuses_a_value_count_that_differs_and_stores_nothing(tmp_path: Path) -> None:
    store = SQLiteMetricStore(str(tmp_path / "m.db"))
    keys = host_keys(1)
    with pytest.raises(ValueError, match="one value per series"):
        store.write_blocks([(keys, T0, [1.0, 2.0, 3.0, 4.0]), (keys, T0 + 15_000, [1.0])])
    assert store.latest([Matcher.eq("asset", "1")]) == []
    store.close()
