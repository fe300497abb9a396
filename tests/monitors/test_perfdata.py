"""Nagios plugin output and perfdata parsing: every part of the convention, and no crash on junk."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.monitors.checks.perfdata import (
    MAX_ITEMS,
    PerfItem,
    Range,
    parse_output,
    parse_perfdata,
    parse_range,
    perf_series,
)


def one(text: str) -> PerfItem:
    items, errors = parse_perfdata(text)
    assert errors == []
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize(
    ("text", "value", "uom"),
    [
        ("t=5", 5.0, ""),
        ("t=5s", 5.0, "s"),
        ("t=250ms", 0.25, "s"),
        ("t=1500us", 0.0015, "s"),
        ("p=99.5%", 99.5, "%"),
        ("b=12B", 12.0, "B"),
        ("b=2KB", 2048.0, "B"),
        ("b=2kB", 2048.0, "B"),
        ("b=3MB", 3 * 1024**2, "B"),
        ("b=1.5GB", 1.5 * 1024**3, "B"),
        ("b=2TB", 2 * 1024**4, "B"),
        ("b=1GiB", 1024**3, "B"),
        ("n=1234c", 1234.0, "c"),
        ("x=-3.5", -3.5, ""),
        ("x=.5", 0.5, ""),
        ("x=1e3", 1000.0, ""),
        ("x=2.5E-3ms", 2.5e-6, "s"),
        ("temp=21.5C", 21.5, "C"),  # a unit outside the convention is kept as written, unscaled
    ],
)
def test_values_and_units_are_normalised(text: str, value: float, uom: str) -> None:
    item = one(text)
    assert item.value == pytest.approx(value)
    assert item.uom == uom


def test_full_item_with_thresholds_min_and_max_scaled_like_the_value() -> None:
    item = one("/=2643MB;5948;5958;0;5968")
    mb = 1024**2
    assert (item.label, item.value, item.uom) == ("/", 2643 * mb, "B")
    assert item.warn == Range(0, 5948 * mb)
    assert item.crit == Range(0, 5958 * mb)
    assert (item.min, item.max) == (0, 5968 * mb)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", Range(0, 10)),
        ("10:", Range(10, math.inf, explicit_start=True)),
        ("~:10", Range(-math.inf, 10, explicit_start=True)),
        ("10:20", Range(10, 20, explicit_start=True)),
        ("@10:20", Range(10, 20, inside=True, explicit_start=True)),
        ("@5", Range(0, 5, inside=True)),
        ("-5:-1", Range(-5, -1, explicit_start=True)),
        (":7", Range(0, 7)),
    ],
)
def test_ranges(text: str, expected: Range) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["", "@", ":", "20:10", "abc", "1:2:3", "~", "10:x"])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_range(text)


def test_range_alert_semantics() -> None:
    assert parse_range("10").alerts(11) and parse_range("10").alerts(-1) and not parse_range("10").alerts(10)
    assert parse_range("10:").alerts(9) and not parse_range("10:").alerts(1e9)
    assert parse_range("~:10").alerts(11) and not parse_range("~:10").alerts(-1e9)
    assert parse_range("@10:20").alerts(15) and not parse_range("@10:20").alerts(21)


def test_empty_fields_and_missing_trailing_fields() -> None:
    item = one("load=1.5;;;0;")
    assert (item.warn, item.crit, item.min, item.max) == (None, None, 0.0, None)
    item = one("load=1.5;;3")
    assert (item.warn, item.crit) == (None, Range(0, 3))
    item = one("load=1.5;1;2;0;10;;")  # extra empty fields after max are tolerated
    assert item.max == 10


def test_quoted_labels_with_spaces_equals_and_doubled_quotes() -> None:
    items, errors = parse_perfdata("'disk /var'=5% 'it''s = ok'=1 plain=2 '  '=3")
    assert errors == []
    assert [i.label for i in items] == ["disk /var", "it's = ok", "plain", "  "]


def test_unknown_value_u() -> None:
    item = one("x=U;1;2")
    assert item.value is None and item.crit == Range(0, 2)
    assert [s.name for s in perf_series([item])] == ["perf_warn", "perf_crit"]


def test_threshold_may_repeat_the_unit() -> None:
    item = one("used=80%;90%;95%;0%;100%")
    assert (item.warn, item.crit, item.min, item.max) == (Range(0, 90), Range(0, 95), 0.0, 100.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x=abc", "not a number"),
        ("x=", "no value"),
        ("=5", "empty label"),
        ("x=1;a", "not a range"),
        ("x=1;5:1", "starts above its end"),
        ("x=1;;;zero", "min 'zero'"),
        ("x=1;1;2;3;4;5", "more than five"),
        ("x=5ms;1;2;0s", "min '0s'"),  # another unit on min than on the value
        ("justtext", "not label=value"),
        ("'open=5", "unterminated quoted label"),
        ("'q'5", "not followed by '='"),
        ("x=1.2.3", "not a number"),
        ("x=nan", "not a number"),
        ("x=1e999", "not finite"),
    ],
)
def test_malformed_items_are_reported_and_the_rest_kept(text: str, fragment: str) -> None:
    items, errors = parse_perfdata(f"good=1 {text} after=2")
    assert len(errors) == 1 and fragment in errors[0], errors
    labels = [i.label for i in items]
    assert labels[0] == "good"
    if "unterminated" not in fragment:  # an open quote swallows the rest of the line
        assert labels[-1] == "after"


def test_repeated_label_keeps_the_first() -> None:
    items, errors = parse_perfdata("a=1 a=2")
    assert [i.value for i in items] == [1.0] and "repeated" in errors[0]


def test_too_many_items_are_cut_and_reported() -> None:
    items, errors = parse_perfdata(" ".join(f"m{i}=1" for i in range(MAX_ITEMS + 5)))
    assert len(items) == MAX_ITEMS and any("more than" in e for e in errors)


def test_nagios3_multiline_output() -> None:
    out = parse_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n"
        "/boot 68 MB (69%);\n"
        "/home 69357 MB (27%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414\n"
        "/var/log=818MB;970;975;0;980\n"
    )
    assert out.text == "DISK OK - free space: / 3326 MB (56%);"
    assert out.long_text == [
        "/ 15272 MB (77%);",
        "/boot 68 MB (69%);",
        "/home 69357 MB (27%);",
        "/var/log 819 MB (84%);",
    ]
    assert [i.label for i in out.perfdata] == ["/", "/boot", "/home", "/var/log"]
    assert out.errors == []


def test_output_without_perfdata_or_at_all() -> None:
    assert parse_output("PING OK - rta 1ms\n").perfdata == []
    assert parse_output("PING OK - rta 1ms\n").text == "PING OK - rta 1ms"
    empty = parse_output("")
    assert (empty.text, empty.perfdata, empty.errors) == ("", [], [])


def test_series_scheme() -> None:
    items, _ = parse_perfdata("'a b'=5ms;10:;@1:2;0;100 n=3")
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in perf_series(items)}
    lab = (("label", "a b"), ("uom", "s"))
    assert got == {
        ("perf", lab): 0.005,
        ("perf_warn", (("bound", "low"), *lab)): 0.01,
        ("perf_crit", (("bound", "low"), *lab)): 0.001,
        ("perf_crit", (("bound", "high"), *lab)): 0.002,
        ("perf_min", lab): 0.0,
        ("perf_max", lab): 0.1,
        ("perf", (("label", "n"), ("uom", ""))): 3.0,
    }


# -- properties -----------------------------------------------------------------------------------

labels = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
numbers = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
units = st.sampled_from(["", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"])


def quote(label: str) -> str:
    return "'" + label.replace("'", "''") + "'"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, numbers, units), min_size=1, max_size=10, unique_by=lambda t: t[0]))
def test_written_items_parse_back(written: list[tuple[str, float, str]]) -> None:
    text = " ".join(f"{quote(label)}={value!r}{uom};;;" for label, value, uom in written)
    items, errors = parse_perfdata(text)
    assert errors == []
    assert [i.label for i in items] == [label for label, _, _ in written]
    for item, (_, value, uom) in zip(items, written, strict=True):
        factor = {"ms": 1e-3, "us": 1e-6, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}.get(uom, 1)
        assert item.value == pytest.approx(value * factor)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_without_raising(text: str) -> None:
    out = parse_output(text)
    assert isinstance(out.errors, list)
    for series in perf_series(out.perfdata):
        assert math.isfinite(series.value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.:;~@=|' -eEUsmB%\n", max_size=80))
def test_perfdata_shaped_junk_parses_without_raising(text: str) -> None:
    items, errors = parse_perfdata(text)
    assert all(i.label for i in items)
    assert all(isinstance(e, str) for e in errors)
