"""What every check type shares: the result, the common configuration and the check base class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

State = Literal["up", "warning", "down", "unknown"]
# The Nagios plugin levels (exit codes 0..3); plain up/down checks only use "ok" and "critical".
Status = Literal["ok", "warning", "critical", "unknown"]
STATUS_STATES: dict[str, State] = {"ok": "up", "warning": "warning", "critical": "down", "unknown": "unknown"}


@dataclass(frozen=True, slots=True)
class Series:
    """A figure that needs labels of its own, e.g. the size of one database or one perfdata label."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(slots=True)
class CheckResult:
    """The outcome of one check run.

    `code` is the machine reason ("ok", "timeout", "status_mismatch", ...) that pages translate;
    `message` is a short English sentence for logs and for people reading the raw result.
    `metrics` holds the figures measured, in milliseconds, days, percent or plain numbers;
    `series` the figures that carry labels of their own (stored as check_<name>{labels}).
    `status` is the Nagios level; when None it follows `ok` ("ok" or "critical"). A warning
    counts as ok (the service works), unknown as not ok (nothing could be measured).
    """

    ok: bool
    code: str
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    status: Status | None = None

    @property
    def level(self) -> Status:
        if self.status is not None:
            return self.status
        return "ok" if self.ok else "critical"

    @property
    def state(self) -> State:
        return STATUS_STATES[self.level]

    @classmethod
    def up(cls, message: str, metrics: dict[str, float] | None = None) -> CheckResult:
        return cls(ok=True, code="ok", message=message, metrics=dict(metrics or {}))

    @classmethod
    def down(cls, code: str, message: str, metrics: dict[str, float] | None = None) -> CheckResult:
        return cls(ok=False, code=code, message=message, metrics=dict(metrics or {}))

    @classmethod
    def at_level(
        cls,
        status: Status,
        code: str,
        message: str,
        metrics: dict[str, float] | None = None,
        series: list[Series] | None = None,
    ) -> CheckResult:
        return cls(
            ok=status in ("ok", "warning"),
            code=code,
            message=message,
            metrics=dict(metrics or {}),
            series=list(series or []),
            status=status,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "state": self.state,
            "status": self.level,
            "code": self.code,
            "message": self.message,
            "metrics": dict(self.metrics),
            "series": [[s.name, dict(s.labels), s.value] for s in self.series],
        }


class CheckConfig(BaseModel):
    """Fields every check definition has: schedule, time limit and how many attempts make a failure.

    A run makes up to `attempts` attempts and counts as down when `failures_to_alert` of them fail
    (for example 2 of 3); `retry_delay_s` is the pause between attempts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    interval_s: int = Field(60, ge=10, le=86400, description="seconds between two runs")
    timeout_s: float = Field(10.0, ge=0.5, le=60, description="time limit of one attempt, in seconds")
    attempts: int = Field(1, ge=1, le=5, description="attempts per run")
    failures_to_alert: int = Field(1, ge=1, le=5, description="failed attempts that make the run fail")
    retry_delay_s: float = Field(1.0, ge=0, le=30, description="pause between attempts, in seconds")

    @field_validator("failures_to_alert")
    @classmethod
    def _failures(cls, value: int, info: ValidationInfo) -> int:
        attempts = info.data.get("attempts")
        if attempts is not None and value > attempts:
            raise ValueError(f"cannot be more than attempts ({attempts})")
        return value

    @model_validator(mode="after")
    def _fits_interval(self) -> Self:
        worst = self.attempts * self.timeout_s + (self.attempts - 1) * self.retry_delay_s
        if worst > self.interval_s:
            raise ValueError(
                f"{self.attempts} attempts of timeout_s {self.timeout_s:g} s with retry_delay_s "
                f"{self.retry_delay_s:g} s take up to {worst:g} s, longer than interval_s {self.interval_s} s"
            )
        return self


class Check(ABC):
    """One check type. Subclasses set `type_name` and `config_model` and implement `run`.

    An instance may keep resources (an HTTP session, a resolver) between runs; `aclose` frees them.
    `run` must return a result rather than raise, and respect `config.timeout_s`.
    """

    type_name: ClassVar[str]
    config_model: ClassVar[type[CheckConfig]]
    # True for checks that only make sense on the host itself (processes, log files, scripts):
    # they run on an agent, never on the platform's probe.
    host_local: ClassVar[bool] = False

    @abstractmethod
    async def run(self, config: Any) -> CheckResult:
        """Run the check once with a validated configuration of this type's `config_model`."""

    async def aclose(self) -> None:
        """Free what the instance keeps between runs; the default keeps nothing."""
        return None


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded to microseconds."""
    return round(seconds * 1000.0, 3)


def http_url(value: str) -> str:
    """Validate an http(s) URL with a host (a site, a status page, a /metrics endpoint)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if port == 0:
        raise ValueError("URL port must be 1-65535")
    if any(ch.isspace() for ch in value):
        raise ValueError("URL must not contain spaces")
    return value
