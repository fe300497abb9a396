"""Round trips of the column codec: bit-exact for any float, any int timestamp sequence."""

from __future__ import annotations

import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.metrics import codec

timestamps = st.lists(st.integers(min_value=-(2**52), max_value=2**52), min_size=1, max_size=300)
anything = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
decimals = st.builds(lambda m, k: m / 10.0**k, st.integers(-(10**12), 10**12), st.integers(0, 6))


def bits(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_round_trip_is_bit_exact(data: st.DataObject) -> None:
    ts = sorted(data.draw(timestamps))
    vs = data.draw(st.lists(st.one_of(anything, decimals), min_size=len(ts), max_size=len(ts)))
    (ts2,), (vs2,) = codec.decode(codec.encode([(ts, 2)], [vs]))
    assert ts2 == ts
    assert bits(vs2) == bits(vs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=100), st.integers(0, 1))
def test_unsorted_integers_round_trip(xs: list[int], order: int) -> None:
    (back,), _ = codec.decode(codec.encode([(xs, order)], []))
    assert back == xs


def test_special_values_survive() -> None:
    vs = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1e-300, 0.1]
    ts = [1_700_000_000_000 + 15_000 * i + (i % 3) for i in range(len(vs))]
    (_,), (back,) = codec.decode(codec.encode([(ts, 2)], [vs]))
    assert bits(back) == bits(vs)


def test_short_decimals_use_the_decimal_mode_and_compress() -> None:
    ts = [1_700_000_000_000 + 15_000 * i for i in range(480)]
    vs = [round(1234.56 + 4.2 * i + (i % 7) * 0.01, 2) for i in range(480)]
    blob = codec.encode([(ts, 2)], [vs])
    assert codec.float_mode(blob, 0) == 2
    assert len(blob) < 480 * 2  # under 2 bytes a sample for a steady counter
    assert codec.decode(blob)[1][0] == vs


def test_non_decimal_values_fall_back_to_xor() -> None:
    vs = [math.sin(i) for i in range(100)]
    blob = codec.encode([(list(range(100)), 2)], [vs])
    assert codec.float_mode(blob, 0) == 0xFF
    assert codec.decode(blob)[1][0] == vs


def test_a_stale_hint_does_not_change_the_mode() -> None:
    for hint in (0, 3, 0xFF):
        zeros = [0.0] * 20
        blob = codec.encode([(list(range(20)), 2)], [zeros], [hint])
        assert codec.float_mode(blob, 0) != 0xFF
        assert codec.decode(blob)[1][0] == zeros


def test_empty_columns_round_trip() -> None:
    # The rollups of a window whose samples are all NaN have no buckets.
    blob = codec.encode([([], 2), ([], 1)], [[], []])
    assert codec.decode(blob) == ([[], []], [[], []])
