"""Alert rules: thresholds on metrics, silence (no data), check state and system-state events.

Default rules ship per asset type (`DEFAULTS`); a customer or a single asset may override a
default's threshold, clear threshold, `for` duration, severity, or switch it off.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsdesk.tenancy.models import AssetType


class Severity(enum.StrEnum):
    p1 = "P1"  # catastrophic: core business unreachable, server down
    p2 = "P2"  # major: middleware down, disk nearly full
    p3 = "P3"  # minor: high load, certificate expiring
    p4 = "P4"  # information: changes, maintenance notices


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
    severity: Severity
    summary_en: str
    summary_zh: str
    for_s: Annotated[float, Field(ge=0, le=86400)] = 0


class ThresholdRule(_Rule):
    kind: Literal["threshold"] = "threshold"
    metric: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    match: dict[str, str] = Field(default_factory=dict)
    aggregate: Literal["avg", "min", "max", "last"] = "avg"
    window_s: Annotated[float, Field(ge=0, le=86400)] = 300
    op: Literal[">", "<"] = ">"
    threshold: float
    clear: float | None = None  # hysteresis: resolve only past this value (default: the threshold)
    group_by: tuple[str, ...] = ()  # one alert per value of these labels, e.g. ("mount",)

    @model_validator(mode="after")
    def _clear_side(self) -> ThresholdRule:
        if self.clear is not None and (
            self.clear > self.threshold if self.op == ">" else self.clear < self.threshold
        ):
            raise ValueError("clear must be on the safe side of threshold (below it for '>', above for '<')")
        return self

    def breached(self, value: float) -> bool:
        return value > self.threshold if self.op == ">" else value < self.threshold

    def cleared(self, value: float) -> bool:
        limit = self.threshold if self.clear is None else self.clear
        return value <= limit if self.op == ">" else value >= limit


class NoDataRule(_Rule):
    kind: Literal["no_data"] = "no_data"  # the host's agent went silent


class MonitorDownRule(_Rule):
    """A monitor on the asset is down. `warning` and `up` clear it; `unknown` (not run yet, or the
    check could not tell) leaves the alert as it is, so a check that cannot reach its target for
    a moment neither fires nor resolves anything."""

    kind: Literal["monitor_down"] = "monitor_down"
    # Type names only (never the check modules): types are added by other packages over time.
    monitor_types: tuple[str, ...] = ()  # empty: every type


class ForecastRule(_Rule):
    """Like Prometheus' predict_linear: a least-squares line through the metric over `window_s`
    fires when it reaches `limit` within `horizon_s`. `value` is the hours left."""

    kind: Literal["forecast"] = "forecast"
    metric: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    match: dict[str, str] = Field(default_factory=dict)
    window_s: Annotated[float, Field(ge=900, le=7 * 86400)] = 6 * 3600
    horizon_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 24 * 3600
    limit: float = 100.0
    group_by: tuple[str, ...] = ()
    # Hysteresis: resolves once the forecast is this much beyond the horizon (or the line is flat).
    clear_factor: Annotated[float, Field(ge=1)] = 1.5


class EventRule(_Rule):
    kind: Literal["event"] = "event"
    events: tuple[str, ...]  # host event kinds, e.g. ("password_changed",)


Rule = Annotated[
    ThresholdRule | NoDataRule | MonitorDownRule | EventRule | ForecastRule, Field(discriminator="kind")
]

P1, P2, P3, P4 = Severity.p1, Severity.p2, Severity.p3, Severity.p4

MIDDLEWARE_TYPES = ("nginx", "php_fpm", "tomcat", "mysql", "postgresql", "redis", "oracle")
# Monitors of these types sit on servers or on database / middleware ("other") assets.
MONITOR_RULES: tuple[Rule, ...] = (
    MonitorDownRule(
        key="middleware_down",
        severity=P2,
        monitor_types=MIDDLEWARE_TYPES,
        summary_en="Middleware down on {asset}",
        summary_zh="{asset} 上的中间件宕机",
    ),
    MonitorDownRule(
        key="process_not_running",
        severity=P2,
        monitor_types=("process",),
        summary_en="A watched process is not running on {asset}",
        summary_zh="{asset} 上被监视的进程未运行",
    ),
    MonitorDownRule(
        key="script_critical",
        severity=P3,
        monitor_types=("script",),
        summary_en="A custom check script reports critical on {asset}",
        summary_zh="{asset} 的自定义检查脚本报告严重",
    ),
    # The log check is down while a watched pattern matched in its last window.
    MonitorDownRule(
        key="log_pattern",
        severity=P3,
        monitor_types=("log",),
        summary_en="A watched log pattern matched on {asset}",
        summary_zh="{asset} 的日志中出现了被监视的内容",
    ),
    MonitorDownRule(
        key="scrape_failed",
        severity=P4,
        monitor_types=("prometheus",),
        summary_en="Prometheus metrics of {asset} could not be scraped",
        summary_zh="无法抓取 {asset} 的 Prometheus 指标",
    ),
)

DEFAULTS: dict[AssetType, tuple[Rule, ...]] = {
    AssetType.server: (
        NoDataRule(
            key="host_down",
            severity=P1,
            for_s=0,
            summary_en="Server {asset} is down (no data from its agent)",
            summary_zh="服务器 {asset} 宕机（agent 无数据）",
        ),
        ThresholdRule(
            key="cpu_high",
            severity=P3,
            metric="cpu_usage_percent",
            match={"mode": "total"},
            threshold=90,
            clear=80,
            for_s=600,
            summary_en="CPU of {asset} above 90% ({value:.0f}%)",
            summary_zh="{asset} CPU 使用率超过 90%（{value:.0f}%）",
        ),
        ThresholdRule(
            key="memory_high",
            severity=P3,
            metric="memory_used_percent",
            threshold=90,
            clear=85,
            for_s=600,
            summary_en="Memory of {asset} above 90% ({value:.0f}%)",
            summary_zh="{asset} 内存使用率超过 90%（{value:.0f}%）",
        ),
        ThresholdRule(
            key="swap_high",
            severity=P3,
            metric="swap_used_percent",
            threshold=80,
            clear=70,
            for_s=900,
            summary_en="Swap of {asset} above 80% ({value:.0f}%)",
            summary_zh="{asset} 交换分区使用率超过 80%（{value:.0f}%）",
        ),
        ThresholdRule(
            key="disk_nearly_full",
            severity=P2,
            metric="fs_used_percent",
            aggregate="last",
            window_s=0,
            threshold=90,
            clear=85,
            group_by=("mount",),
            summary_en="Disk {mount} of {asset} is {value:.0f}% full",
            summary_zh="{asset} 磁盘 {mount} 已使用 {value:.0f}%",
        ),
        ForecastRule(
            key="disk_full_forecast",
            severity=P3,
            metric="fs_used_percent",
            group_by=("mount",),
            for_s=900,
            summary_en="Disk {mount} of {asset} will be full in about {value:.0f} h",
            summary_zh="{asset} 磁盘 {mount} 预计约 {value:.0f} 小时后写满",
        ),
        ThresholdRule(
            key="inodes_nearly_full",
            severity=P2,
            metric="fs_inodes_used_percent",
            aggregate="last",
            window_s=0,
            threshold=90,
            clear=85,
            group_by=("mount",),
            summary_en="Inodes of {mount} on {asset} {value:.0f}% used",
            summary_zh="{asset} 的 {mount} inode 已使用 {value:.0f}%",
        ),
        EventRule(
            key="password_changed",
            severity=P3,
            events=("password_changed",),
            summary_en="A password was changed on {asset}",
            summary_zh="{asset} 上有用户修改了密码",
        ),
        EventRule(
            key="users_changed",
            severity=P3,
            events=("user_added", "user_removed"),
            summary_en="Local users changed on {asset}",
            summary_zh="{asset} 本地用户发生变化",
        ),
        EventRule(
            key="hostname_changed",
            severity=P3,
            events=("hostname_changed",),
            summary_en="The hostname of {asset} changed",
            summary_zh="{asset} 主机名发生变化",
        ),
        EventRule(
            key="process_stopped",
            severity=P2,
            events=("process_stopped",),
            summary_en="A watched process stopped on {asset}",
            summary_zh="{asset} 上被监视的进程已停止",
        ),
        *MONITOR_RULES,
    ),
    AssetType.website: (
        MonitorDownRule(
            key="site_down",
            severity=P1,
            monitor_types=("http",),
            summary_en="{asset} is unreachable",
            summary_zh="{asset} 无法访问",
        ),
        ThresholdRule(
            key="cert_expiring",
            severity=P3,
            metric="check_cert_days_left",
            aggregate="last",
            window_s=0,
            op="<",
            threshold=14,
            clear=20,
            summary_en="The certificate of {asset} expires in {value:.0f} days",
            summary_zh="{asset} 的证书将在 {value:.0f} 天后过期",
        ),
    ),
    AssetType.database: MONITOR_RULES,
    AssetType.cloud_resource: MONITOR_RULES,
    AssetType.other: MONITOR_RULES,
}
