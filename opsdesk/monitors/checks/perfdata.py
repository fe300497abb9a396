"""Nagios plugin output: the status text, long output and performance data, parsed without raising.

Output (Nagios 3 rules)::

    TEXT OUTPUT | PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | PERFDATA
    PERFDATA CONTINUED

The first line's text before `|` is the status text; later lines are long text up to the first
one holding a `|`, whose rest and every following line are more performance data.

Performance data is a space-separated list of `label=value[UOM];[warn];[crit];[min];[max]`:

- a label holding spaces, `=` or quotes is quoted, `'disk /var'=…`, a quote inside doubled (`''`);
- value is a decimal number (exponent allowed) or `U` when the plugin could not measure it;
- warn and crit are ranges: `10` (alert outside 0..10), `10:` (below 10), `~:10` (above 10),
  `10:20` (outside), `@10:20` (inside); min and max are plain numbers; any of them may be empty
  and trailing semicolons may be left out.

Units are normalised so that figures of one kind compare across scripts: `s`, `ms` and `us` become
seconds (uom "s"); `B`, `KB`, `MB`, `GB`, `TB` (also `kB` and `KiB`…`TiB`) become bytes (uom "B"),
a kilobyte being 1024 bytes as in the Nagios plugins; `%` and `c` (a counter) stay as they are.
Another unit is kept as written, its value unscaled. Thresholds, min and max are scaled like the
value. A malformed item is skipped and described in `errors`; parsing never raises.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from opsdesk.monitors.checks.base import Series

# Items beyond this are ignored (and reported): one item makes up to seven series.
MAX_ITEMS = 60
MAX_LABEL_CHARS = 256

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = re.compile(rf"^(?P<num>{_NUM}|U)(?P<uom>[^\s;\d.+\-][^\s;]{{0,15}})?$")
_NUMBER = re.compile(rf"^(?P<num>{_NUM})(?P<uom>[^\s;\d.+\-][^\s;]{{0,15}})?$")
_RANGE = re.compile(rf"^(?P<at>@)?(?:(?P<start>~|{_NUM})?(?P<colon>:))?(?P<end>{_NUM})?$")

_SPACE = re.compile(r"\s")

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_BYTES = {
    "B": 1,
    "KB": 1024,
    "kB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


def normalise_unit(uom: str) -> tuple[str, float]:
    """The unit figures are stored in, and the factor from `uom` to it."""
    if uom in _SECONDS:
        return "s", _SECONDS[uom]
    if uom in _BYTES:
        return "B", float(_BYTES[uom])
    return uom, 1.0


@dataclass(frozen=True, slots=True)
class Range:
    """A threshold range: alert when the value is outside [start, end], or inside it if `inside`.

    `explicit_start` tells `10:20` from `10`, whose start of 0 is implied.
    """

    start: float
    end: float
    inside: bool = False
    explicit_start: bool = False

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def scaled(self, factor: float) -> Range:
        return Range(self.start * factor, self.end * factor, self.inside, self.explicit_start)


@dataclass(frozen=True, slots=True)
class PerfItem:
    """One label's figures, already in the normalised unit; `value` is None for `U` (unknown)."""

    label: str
    value: float | None
    uom: str = ""
    warn: Range | None = None
    crit: Range | None = None
    min: float | None = None
    max: float | None = None


@dataclass(slots=True)
class PluginOutput:
    text: str
    long_text: list[str] = field(default_factory=list)
    perfdata: list[PerfItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Malformed(ValueError):
    pass


def parse_range(text: str) -> Range:
    """A warn or crit field; ValueError when it is not a range."""
    match = _RANGE.match(text)
    if not match or not (match["start"] or match["end"]):
        raise ValueError(f"{text!r} is not a range")
    raw_start, raw_end = match["start"], match["end"]
    start = -math.inf if raw_start == "~" else float(raw_start or 0.0)
    if raw_end is not None:
        end = float(raw_end)
    elif match["colon"]:
        end = math.inf
    else:
        raise ValueError(f"{text!r} is not a range")
    if start > end:
        raise ValueError(f"range {text!r} starts above its end")
    return Range(start, end, bool(match["at"]), bool(raw_start))


def parse_output(output: str) -> PluginOutput:
    """Split plugin output into text, long text and parsed performance data."""
    lines = output.splitlines()
    if not lines:
        return PluginOutput("")
    text, _, perf = lines[0].partition("|")
    perf_parts = [perf]
    long_text: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line)
        elif "|" in line:
            before, _, after = line.partition("|")
            if before.strip():
                long_text.append(before.rstrip())
            perf_parts.append(after)
            in_perf = True
        else:
            long_text.append(line.rstrip())
    items, errors = parse_perfdata(" ".join(perf_parts))
    return PluginOutput(text.strip(), long_text, items, errors)


def parse_perfdata(text: str) -> tuple[list[PerfItem], list[str]]:
    """The items of a perfdata string, and a message for each malformed one."""
    items: list[PerfItem] = []
    errors: list[str] = []
    seen: set[str] = set()
    for label, raw, problem in _tokens(text):
        if problem is not None:
            errors.append(problem)
            continue
        assert label is not None
        try:
            item = _item(label, raw)
        except _Malformed as exc:
            errors.append(f"{_show(label)}: {exc}")
            continue
        if item.label in seen:
            errors.append(f"{_show(label)}: label repeated, the first one is kept")
            continue
        if len(items) >= MAX_ITEMS:
            errors.append(f"more than {MAX_ITEMS} perfdata items, the rest is ignored")
            break
        seen.add(item.label)
        items.append(item)
    return items, errors


def _show(label: str) -> str:
    return repr(label if len(label) <= 40 else label[:40] + "…")


def _tokens(text: str) -> list[tuple[str | None, str, str | None]]:
    """(label, value part, None) per item, or (None, "", problem) for a piece that is not one."""
    out: list[tuple[str | None, str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "'":
            parts: list[str] = []
            j = i + 1
            while True:
                k = text.find("'", j)
                if k == -1:
                    out.append((None, "", f"unterminated quoted label in {text[i : i + 40]!r}"))
                    return out
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == "'":  # '' is a quote inside the label
                    parts.append("'")
                    j = k + 2
                    continue
                j = k + 1
                break
            label = "".join(parts)
            end = _token_end(text, j)
            if j >= n or text[j] != "=":
                out.append((None, "", f"{_show(label)}: quoted label not followed by '='"))
            else:
                out.append((label, text[j + 1 : end], None))
            i = end
            continue
        end = _token_end(text, i)
        token = text[i:end]
        label, eq, raw = token.partition("=")
        if not eq:
            out.append((None, "", f"{token[:40]!r} is not label=value"))
        else:
            out.append((label, raw, None))
        i = end
    return out


def _token_end(text: str, start: int) -> int:
    match = _SPACE.search(text, start)
    return match.start() if match else len(text)


def _item(label: str, raw: str) -> PerfItem:
    if not label:
        raise _Malformed("empty label")
    if len(label) > MAX_LABEL_CHARS:
        raise _Malformed(f"label longer than {MAX_LABEL_CHARS} characters")
    fields = raw.split(";")
    while len(fields) > 5 and fields[-1] == "":
        fields.pop()
    if len(fields) > 5:
        raise _Malformed(f"{raw[:60]!r} has more than five ';'-separated fields")
    fields += [""] * (5 - len(fields))
    value_text, warn_text, crit_text, min_text, max_text = fields
    match = _VALUE.match(value_text)
    if not match:
        what = "no value" if not value_text else f"value {value_text[:40]!r} is not a number"
        raise _Malformed(what)
    written_uom = match["uom"] or ""
    uom, factor = normalise_unit(written_uom)
    if match["num"] == "U":
        value = None
    else:
        value = float(match["num"])
        if not math.isfinite(value):
            raise _Malformed(f"value {value_text!r} is not finite")
        value *= factor
    try:
        warn = parse_range(_strip_uom(warn_text, written_uom)).scaled(factor) if warn_text else None
        crit = parse_range(_strip_uom(crit_text, written_uom)).scaled(factor) if crit_text else None
    except ValueError as exc:
        raise _Malformed(str(exc)) from None
    low = _number(min_text, written_uom, "min", factor)
    high = _number(max_text, written_uom, "max", factor)
    return PerfItem(label, value, uom, warn, crit, low, high)


def _strip_uom(text: str, uom: str) -> str:
    """Some plugins repeat the unit on thresholds (`80%`); accept that unit, and only that one."""
    return text[: -len(uom)] if uom and text.endswith(uom) else text


def _number(text: str, uom: str, what: str, factor: float) -> float | None:
    if not text:
        return None
    match = _NUMBER.match(text)
    if not match or (match["uom"] or uom) != uom:
        raise _Malformed(f"{what} {text[:40]!r} is not a number")
    return float(match["num"]) * factor


def perf_series(items: list[PerfItem]) -> list[Series]:
    """Items as labelled series (stored as check_<name>):

    - perf{label, uom}: the value (items with value U are left out);
    - perf_warn{label, uom, bound} and perf_crit{…}: the finite ends of the threshold range, bound
      "high" for its end and "low" for a start written out (`10:`, `10:20`, `@10:20`); whether an
      `@` range alerts inside is the plugin's own business: its exit code decides the status;
    - perf_min{label, uom} and perf_max{label, uom} when given.
    """
    out: list[Series] = []
    for item in items:
        labels = {"label": item.label, "uom": item.uom}
        if item.value is not None:
            out.append(Series("perf", labels, item.value))
        for name, threshold in (("perf_warn", item.warn), ("perf_crit", item.crit)):
            if threshold is None:
                continue
            if threshold.explicit_start and math.isfinite(threshold.start):
                out.append(Series(name, {**labels, "bound": "low"}, threshold.start))
            if math.isfinite(threshold.end):
                out.append(Series(name, {**labels, "bound": "high"}, threshold.end))
        if item.min is not None:
            out.append(Series("perf_min", labels, item.min))
        if item.max is not None:
            out.append(Series("perf_max", labels, item.max))
    return out
