"""Message texts: both languages, the incident link, the acknowledge link, template values."""

from __future__ import annotations

from datetime import UTC, datetime

from opsdesk.notify.templates import Notice, render
from opsdesk.web import i18n

NOTICE = Notice(
    event="opened",
    title="数据库主库不可达",
    customer="客户A",
    severity="P1",
    incident_id=12,
    detail="10.0.0.5:3306 refused",
    at=datetime(2026, 11, 29, 1, 2, tzinfo=UTC),
)
LINK = "https://ops.example.cn/incidents/12"


def test_chinese_english_and_both() -> None:
    zh = render(NOTICE, "zh-CN", LINK, "https://ops.example.cn/ack?t=T")
    en = render(NOTICE, "en", LINK, "https://ops.example.cn/ack?t=T")
    both = render(NOTICE, "both", LINK, "https://ops.example.cn/ack?t=T")
    assert zh.subject == "[P1] 客户A 新故障 #12：数据库主库不可达"
    assert en.subject == "[P1] New incident #12 at 客户A: 数据库主库不可达"
    assert both.subject == f"{zh.subject} / {en.subject}"
    assert "查看故障：" + LINK in zh.text and "Open the incident: " + LINK in en.text
    assert "确认接手（链接 24 小时内有效）：https://ops.example.cn/ack?t=T" in zh.text
    assert "2026-11-29 01:02 UTC" in en.text and "10.0.0.5:3306 refused" in en.text
    assert both.text.startswith(zh.text) and both.text.endswith(en.text)
    assert zh.params["severity"] == "P1" and zh.params["incident"] == "#12" and zh.params["event"] == "故障"
    assert "请立即处理" in zh.params["spoken"] and "Please take it now" in en.params["spoken"]


def test_every_event_has_texts_in_both_catalogues() -> None:
    for lang in ("zh-CN", "en"):
        cat = i18n.catalogue(lang)
        for event in ("opened", "update", "resolved", "reminder", "test"):
            for part in ("subject", "body", "spoken", "event"):
                assert f"notify.{part}.{event}" in cat, (lang, part, event)
    resolved = render(Notice(event="resolved", title="ok", incident_id=3), "en", LINK)
    assert "resolved" in resolved.text and "Acknowledge" not in resolved.text
