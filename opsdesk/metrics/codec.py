"""Compact column encoding for chunks of samples and rollups, in pure Python.

Each column becomes 64-bit words that are mostly small: integers (timestamps) as deltas or
deltas of deltas, floats as delta-coded decimal mantissas when every value is a short decimal
(as node metrics are: 0.01 s CPU counters, integral byte counts), else as the XOR of each
value's bits with the previous one (Gorilla's idea, without its bit packing). Words are zigzagged
so that small negatives are small, then byte-transposed (all first bytes, then all second
bytes, ...) so that the high zero bytes form long runs that zlib reduces to almost nothing. Every
step is a C-level list, array or bytes operation; a bit-level Gorilla coder in Python would be
many times slower.

Blob layout: version u8, row count u32, int column count u8, float column count u8, one mode byte
per column, then one raw-deflate stream of the columns' words, transposed together.
"""

from __future__ import annotations

import itertools
import operator
import struct
import sys
import zlib
from array import array
from collections.abc import Sequence

VERSION = 1
_HEADER = struct.Struct("<BIBB")
_XOR = 0xFF  # float mode byte: XOR of IEEE bits; other values are decimal digit counts
_MAX_DIGITS = 12
_MANTISSA_LIMIT = 1 << 53  # beyond this a mantissa is no longer exact in a double
_LEVEL = 6


def _deltas(xs: Sequence[int], order: int) -> list[int]:
    out = list(xs)
    for _ in range(order):
        out[1:] = map(operator.sub, out[1:], out[:-1])
    return out


def _undeltas(ds: Sequence[int], order: int) -> list[int]:
    out = list(ds)
    for _ in range(order):
        out = list(itertools.accumulate(out))
    return out


def _zigzag(xs: Sequence[int]) -> list[int]:
    return [(x << 1) ^ (x >> 63) for x in xs]


def _unzigzag(zs: Sequence[int]) -> list[int]:
    return [(z >> 1) ^ -(z & 1) for z in zs]


def _words_to_bytes(words: Sequence[int]) -> bytes:
    arr = array("Q", words)
    if sys.byteorder == "big":
        arr.byteswap()
    raw = arr.tobytes()
    return b"".join(raw[i::8] for i in range(8))


def _bytes_to_words(data: bytes, n: int) -> array[int]:
    raw = bytearray(8 * n)
    for i in range(8):
        raw[i::8] = data[i * n : (i + 1) * n]
    arr = array("Q", raw)
    if sys.byteorder == "big":
        arr.byteswap()
    return arr


def _float_bits(values: Sequence[float]) -> array[int]:
    return array("Q", array("d", values).tobytes())


def decimal_mantissas(values: Sequence[float], digits: int) -> list[int] | None:
    """Integers m with m / 10**digits == value bit for bit, or None if some value is not such."""
    scale = 10.0**digits
    try:
        mantissas = [round(v * scale) for v in values]
    except (ValueError, OverflowError):  # NaN or infinity
        return None
    if not mantissas or max(mantissas) >= _MANTISSA_LIMIT or min(mantissas) <= -_MANTISSA_LIMIT:
        return None
    # Compare the bytes, so that -0.0 and 0.0 differ.
    if array("d", [m / scale for m in mantissas]).tobytes() != array("d", values).tobytes():
        return None
    return mantissas


def _encode_floats(values: Sequence[float], hint: int) -> tuple[int, list[int]]:
    if not values:  # e.g. the rollups of a window of only NaN samples
        return 0, []
    first = (hint,) if 0 <= hint <= _MAX_DIGITS else ()
    for digits in itertools.chain(first, range(_MAX_DIGITS + 1)):
        # A probe on a few values rules most digit counts out cheaply.
        if decimal_mantissas(values[:8], digits) is None:
            continue
        mantissas = decimal_mantissas(values, digits)
        if mantissas is not None:
            return digits, _zigzag(_deltas(mantissas, 1))
    bits = _float_bits(values)
    return _XOR, [bits[0], *map(operator.xor, bits[1:], bits[:-1])]


def _decode_floats(mode: int, words: array[int]) -> list[float]:
    if mode == _XOR:
        bits = array("Q", itertools.accumulate(words, operator.xor))
        return array("d", bits.tobytes()).tolist()
    scale = 10.0**mode
    return [m / scale for m in _undeltas(_unzigzag(words), 1)]


def float_mode(blob: bytes, column: int) -> int:
    """The decimal digit count a float column used (or 255 for XOR): a hint for the next chunk."""
    _, _, n_ints, _ = _HEADER.unpack_from(blob)
    return blob[_HEADER.size + n_ints + column]


def encode(
    ints: Sequence[tuple[Sequence[int], int]],
    floats: Sequence[Sequence[float]],
    hints: Sequence[int] = (),
) -> bytes:
    """Encode equal-length columns: ints as (values, delta order); floats with digit-count hints."""
    n = len(ints[0][0]) if ints else len(floats[0])
    modes = bytearray()
    words: list[int] = []
    for integers, order in ints:
        modes.append(order)
        words += _zigzag(_deltas(integers, order))
    for i, values in enumerate(floats):
        mode, column = _encode_floats(values, hints[i] if i < len(hints) else 0)
        modes.append(mode)
        words += column
    header = _HEADER.pack(VERSION, n, len(ints), len(floats)) + modes
    # One transposition over all columns: fewer steps to undo when reading many small blobs.
    return header + zlib.compress(_words_to_bytes(words), _LEVEL, wbits=-15)


def decode(blob: bytes) -> tuple[list[list[int]], list[list[float]]]:
    version, n, n_ints, n_floats = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"unknown chunk encoding version {version}")
    modes = blob[_HEADER.size : _HEADER.size + n_ints + n_floats]
    words = _bytes_to_words(zlib.decompress(blob[_HEADER.size + len(modes) :], wbits=-15), n * len(modes))
    columns = [words[n * i : n * (i + 1)] for i in range(len(modes))]
    ints = [_undeltas(_unzigzag(columns[i]), modes[i]) for i in range(n_ints)]
    floats = [_decode_floats(modes[n_ints + i], columns[n_ints + i]) for i in range(n_floats)]
    return ints, floats
