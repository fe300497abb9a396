"""Charts carry their Chinese text: Noto Sans CJK is found even when matplotlib's font cache was
built before Debian's fonts-noto-cjk was installed (as on a fresh machine running `make test`)."""

from __future__ import annotations

import warnings

import pytest
from matplotlib import font_manager

from opsdesk.reports import charts

DAY = 86_400_000
T0 = 1_759_248_000_000  # 2025-10-01 00:00 Beijing time


def test_chinese_labels_are_drawn_with_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = font_manager.fontManager
    stale = [f for f in manager.ttflist if "CJK" not in f.name]  # what such a cache lists
    monkeypatch.setattr(manager, "ttflist", stale)
    manager._findfont_cached.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s) DejaVu Sans" fails the test
        with pytest.raises(UserWarning, match="missing from font"):
            charts.availability_bars([("数据库主机", 99.5)], "可用率 (%)")
        charts._know_cjk_fonts()
        manager._findfont_cached.cache_clear()
        images = [
            charts.daily_lines([("数据库主机", [[T0, 12.0], [T0 + DAY, 30.5]])], "CPU 使用率 (%)"),
            charts.incidents_by_day([["2025-10-01", "P2", 1]], ["2025-10-01", "2025-10-02"], "故障数"),
            charts.availability_bars([("数据库主机", 99.5), ("网站主机", 97.25)], "可用率 (%)"),
        ]
    assert all(i.startswith("data:image/png;base64,") for i in images)
    assert any(f.name == "Noto Sans CJK SC" for f in manager.ttflist)
    font_manager.fontManager._findfont_cached.cache_clear()
