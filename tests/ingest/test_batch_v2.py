"""Version-2 batches (series and values apart): the same samples as version 1, series recognised
from the host's last batch, and every refusal still made when the series are recognised."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from opsdesk.core.config import IngestSettings
from opsdesk.ingest.schema import BatchRejected
from opsdesk.ingest.service import SeriesKeys, parse

LIMITS = IngestSettings()
SAMPLES: list[list[Any]] = [
    ["load1", {}, 0.5],
    ["cpu_usage_percent", {"mode": "user", "core": "0"}, 12.5],
    ["fs_used_percent", {"mount": "/", "device": "/dev/vda", "fstype": "ext4"}, 40.25],
]


def v2(seq: int = 1, samples: list[list[Any]] | None = None, **over: Any) -> bytes:
    rows = SAMPLES if samples is None else samples
    out: dict[str, Any] = {
        "v": 2,
        "seq": seq,
        "instance": "i-1",
        "t": int(time.time() * 1000),
        "interval": 15,
        "agent": {"version": "0.1.0", "hostname": "web-a"},
        "series": [[name, labels] for name, labels, _ in rows],
        "values": [value for _, _, value in rows],
        "events": [],
        "inventory": None,
        "top": None,
        "dropped": 0,
    }
    out.update(over)
    return json.dumps(out).encode()


def as_v1(data: bytes) -> bytes:
    d = json.loads(data)
    d["v"], d["samples"] = 1, [[*s, v] for s, v in zip(d.pop("series"), d.pop("values"), strict=True)]
    return json.dumps(d).encode()


def test_a_version_2_batch_gives_the_samples_of_its_version_1_twin() -> None:
    now = int(time.time() * 1000)
    data = v2(events=[{"t": now, "kind": "reboot", "attrs": {"why": "kernel"}}], top={"cpu": []}, dropped=2)
    new, old = parse(data, LIMITS, now, asset_id=901), parse(as_v1(data), LIMITS, now)
    assert new.v == 2 and old.v == 1
    assert new.model_dump(exclude={"v", "samples"}) == old.model_dump(exclude={"v", "samples"})
    assert new.sample_count == old.sample_count == 3
    keys = SeriesKeys()
    assert keys.block(new, 901, 5) == keys.block(old, 901, 5)
    assert keys.block(new, 901, 5)[1:] == (new.t, [0.5, 12.5, 40.25])


def test_the_same_series_are_recognised_and_new_ones_decoded() -> None:
    now = int(time.time() * 1000)
    first = parse(v2(1), LIMITS, now, asset_id=902).columns()[0]
    again = parse(v2(2, [[n, ls, v + 1] for n, ls, v in SAMPLES]), LIMITS, now, asset_id=902)
    assert again.columns()[0] is first and again.columns()[1] == [1.5, 13.5, 41.25]
    grown = parse(v2(3, [*SAMPLES, ["load5", {}, 0.25]]), LIMITS, now, asset_id=902).columns()[0]
    assert grown is not first and grown.names[-1] == "load5"
    # another host sending the same bytes has its own set; without an asset nothing is remembered
    assert parse(v2(1), LIMITS, now, asset_id=903).columns()[0] is not grown
    assert parse(v2(1), LIMITS, now).columns()[0] is not parse(v2(1), LIMITS, now).columns()[0]
    # keys follow the set: the same objects while it stays, new ones when it changes
    keys = SeriesKeys()
    a = keys.block(parse(v2(4), LIMITS, now, asset_id=904), 904, 5)[0]
    b = keys.block(parse(v2(5), LIMITS, now, asset_id=904), 904, 5)[0]
    assert a is b


REFUSED = [
    (v2(values=[1.0, 2.0]), "values: 2 values for 3 series"),
    (v2(values=[1.0, "x", 2.0]), "Expected `float`, got `str` - at `$.values[1]`"),
    (v2().replace(b"40.25", b"NaN"), "JSON is malformed"),
    (v2().replace(b"40.25", b"1e400"), "values[2]"),
    (v2(samples=[["load1", {}, 1], ["bad name", {}, 1]]), "series[1]: metric name 'bad name' is invalid"),
    (v2(samples=[["x", {"customer": "2"}, 1]]), "series[0]: label name 'customer' is reserved or invalid"),
    (v2(samples=[["x", {f"l{i}": "v" for i in range(17)}, 1]]), "series[0]: 17 labels, at most 16"),
    (v2(samples=[["x", {"mode": "v" * 257}, 1]]), "series: Expected `str` of length <= 256"),
    (v2(series={"x": 1}), "series: Expected `array`, got `object`"),
    (v2(samples=[["x", {}, 1]] * 20_001), "series: 20001 in one batch, at most 20000"),
    (v2(seq=0), "Expected `int` >= 1 - at `$.seq`"),
    (v2(samples=[["x", {}, 1]]).replace(b'"values"', b'"samples"'), "unknown field `samples`"),
    (v2(extra=1), "unknown field `extra`"),
    (v2(t=int(time.time() * 1000) + 36_000_000), "s in the future (at most"),
    (
        v2(check_results=[{"monitor": 0, "t": 1, "ok": True, "code": "x", "message": "y"}]),
        "check_results.0.monitor",
    ),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_malformed_version_2_batches_are_refused_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(BatchRejected) as refused:
        parse(data, LIMITS, int(time.time() * 1000), asset_id=905)
    assert message in str(refused.value)


def test_recognised_series_are_still_held_to_the_limits() -> None:
    now = int(time.time() * 1000)
    wide = [["x", {"a": "1", "b": "2", "c": "3"}, 1.0]]
    parse(v2(1, wide), LIMITS, now, asset_id=906)  # recognised from now on
    with pytest.raises(BatchRejected, match=r"series\[0\]: 3 labels, at most 2"):
        parse(v2(2, wide), LIMITS.model_copy(update={"max_labels": 2}), now, asset_id=906)
    with pytest.raises(BatchRejected, match=r"values: 2 values for 1 series"):
        parse(v2(3, wide, values=[1.0, 2.0]), LIMITS, now, asset_id=906)
    with pytest.raises(BatchRejected, match=r"values\[0\]"):
        parse(v2(4, wide).replace(b"[1.0]", b"[1e400]"), LIMITS, now, asset_id=906)
