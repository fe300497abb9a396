"""Report charts drawn with matplotlib as PNG images, embedded in the HTML and the PDF.

PNG at print resolution rather than SVG: WeasyPrint lays out a chart's SVG (every marker and glyph
a path) about 2.5 times slower than it places a bitmap, which for a 100-server month was most of
the PDF's time. Noto Sans CJK (Debian's fonts-noto-cjk) carries both languages.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; before anything imports pyplot

from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from opsdesk.core.calendar import CHINA

FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]
CJK_FONT_FILES = "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc"  # Debian's fonts-noto-cjk


def _know_cjk_fonts() -> None:
    """Make matplotlib see Noto Sans CJK even if its font cache was built before the fonts were
    installed (it never rescans): else every Chinese glyph in a chart is an empty box."""
    if any(f.name == FONTS[0] for f in font_manager.fontManager.ttflist):
        return
    for path in sorted(Path("/").glob(CJK_FONT_FILES.lstrip("/"))):
        font_manager.fontManager.addfont(str(path))


_know_cjk_fonts()
SEVERITY_COLOURS = {"P1": "#b42318", "P2": "#dc6803", "P3": "#c4a000", "P4": "#6172f3"}
PALETTE = ["#1f6feb", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0e9384", "#dd2590", "#667085"]
MAX_LINES = len(PALETTE)
PRINT_DPI = 170  # sharp on A4 at the 180 mm the charts are printed at
Line = tuple[str, list[list[float]]]  # label, [[t_ms, value], ...]


def _figure(height: float = 2.6) -> Figure:
    fig = Figure(figsize=(7.2, height), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def _image(fig: Figure) -> str:
    """A data: URI for an <img>, so the HTML download stays one self-contained file."""
    out = io.BytesIO()
    with matplotlib.rc_context({"font.sans-serif": FONTS, "font.size": 8}):
        fig.savefig(out, format="png", dpi=PRINT_DPI)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _days(t_ms: float) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(CHINA).replace(tzinfo=None)


def _style(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]
    ax.grid(axis="y", color="#e4e7ec", linewidth=0.6)  # type: ignore[attr-defined]


def daily_lines(lines: list[Line], ylabel: str, upper: float | None = 100.0) -> str:
    """One line per host of a daily average; at most MAX_LINES, the highest first."""
    with matplotlib.rc_context({"font.sans-serif": FONTS, "font.size": 8}):
        fig = _figure()
        ax = fig.add_subplot()
        ranked = sorted(lines, key=lambda line: -max((v for _, v in line[1]), default=0))[:MAX_LINES]
        for colour, (label, points) in zip(PALETTE, ranked, strict=False):
            if points:
                days = mdates.date2num([_days(t) for t, _ in points])
                ax.plot(
                    days,
                    [v for _, v in points],
                    label=label,
                    color=colour,
                    linewidth=1.4,
                    marker="o",
                    markersize=2,
                )
        ax.set_ylabel(ylabel)
        if upper is not None:
            ax.set_ylim(0, upper)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        _style(ax)
        if any(points for _, points in ranked):
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
        return _image(fig)


def incidents_by_day(by_day: list[list[object]], days: list[str], ylabel: str) -> str:
    """Stacked bars of incidents opened per day, coloured by severity."""
    with matplotlib.rc_context({"font.sans-serif": FONTS, "font.size": 8}):
        fig = _figure(2.2)
        ax = fig.add_subplot()
        counts = {(str(day), str(sev)): int(str(n)) for day, sev, n in by_day}
        bottom = [0] * len(days)
        for sev, colour in SEVERITY_COLOURS.items():
            heights = [counts.get((d, sev), 0) for d in days]
            ax.bar(range(len(days)), heights, bottom=bottom, color=colour, label=sev, width=0.75)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(range(0, len(days), 3), [d[5:] for d in days[::3]])
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
        return _image(fig)


def availability_bars(rows: list[tuple[str, float]], xlabel: str) -> str:
    """Horizontal bars of availability per host or check, worst at the top."""
    with matplotlib.rc_context({"font.sans-serif": FONTS, "font.size": 8}):
        rows = sorted(rows, key=lambda r: r[1], reverse=True)
        fig = _figure(max(1.2, 0.28 * len(rows) + 0.6))
        ax = fig.add_subplot()
        colours = ["#12b76a" if v >= 99.9 else "#f79009" if v >= 99 else "#d92d20" for _, v in rows]
        ax.barh([name for name, _ in rows], [v for _, v in rows], color=colours, height=0.6)
        low = min((v for _, v in rows), default=100.0)
        ax.set_xlim(max(0.0, min(95.0, low - 1)), 100)
        ax.set_xlabel(xlabel)
        for i, (_, v) in enumerate(rows):
            ax.text(100, i, f" {v:.2f}%", va="center", fontsize=7)
        _style(ax)
        return _image(fig)
