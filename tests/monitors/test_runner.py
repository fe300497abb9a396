"""The Checker: attempts and failures_to_alert, time limits and checks that misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from opsdesk.monitors.checks import Check, CheckConfig, Checker, CheckResult, Series, registry


class ScriptConfig(CheckConfig):
    script: str  # one letter per attempt: u = up, d = down, x = raises, h = hangs


class ScriptCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = ScriptConfig

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, config: Any) -> CheckResult:
        step = config.script[self.calls]
        self.calls += 1
        if step == "x":
            raise RuntimeError("boom")
        if step == "h":
            await asyncio.sleep(3600)
        return CheckResult.up("fine") if step == "u" else CheckResult.down("status_mismatch", "bad")


@pytest.fixture(autouse=True)
def script_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry._TYPES, "script", ScriptCheck)
    monkeypatch.setattr(ScriptCheck, "type_name", "script", raising=False)
    yield


def run(script: str, attempts: int, failures: int, **extra: Any) -> CheckResult:
    config = registry.validate(
        "script",
        {"script": script, "attempts": attempts, "failures_to_alert": failures, "retry_delay_s": 0, **extra},
    )

    async def go() -> CheckResult:
        async with Checker() as checker:
            return await checker.run(config)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("script", "attempts", "failures", "ok", "made", "failed"),
    [
        ("u", 1, 1, True, 1, 0),
        ("d", 1, 1, False, 1, 1),
        ("uu", 3, 2, True, 2, 0),  # two successes: two failures can no longer happen
        ("duu", 3, 2, True, 3, 1),
        ("dd", 3, 2, False, 2, 2),
        ("udd", 3, 2, False, 3, 2),
        ("dud", 3, 2, False, 3, 2),
        ("u", 3, 3, True, 1, 0),  # only three failures in a row count
        ("ddu", 3, 3, True, 3, 2),
    ],
)
def test_attempts(script: str, attempts: int, failures: int, ok: bool, made: int, failed: int) -> None:
    result = run(script, attempts, failures)
    assert result.ok is ok
    assert (result.metrics["attempts"], result.metrics["failed_attempts"]) == (made, failed)
    if ok and failed:
        assert f"{failed} of {made} attempts failed" in result.message


def test_a_check_that_raises_is_down() -> None:
    result = run("x", 1, 1)
    assert (result.state, result.code) == ("down", "check_error")
    assert "boom" in result.message


def test_a_check_that_hangs_is_cut_off() -> None:
    result = run("hu", 2, 2, timeout_s=0.5)
    assert result.ok  # the hang counted as one failed attempt, the second attempt was up
    assert result.metrics["failed_attempts"] == 1


def test_result_as_dict() -> None:
    result = CheckResult.down("timeout", "slow", {"response_ms": 1.5})
    assert result.as_dict() == {
        "ok": False,
        "state": "down",
        "status": "critical",
        "code": "timeout",
        "message": "slow",
        "metrics": {"response_ms": 1.5},
        "series": [],
    }


def test_result_levels_map_to_states() -> None:
    warn = CheckResult.at_level("warning", "ok", "disk 85%", series=[Series("perf", {"label": "/"}, 85.0)])
    assert (warn.ok, warn.state) == (True, "warning")
    assert warn.as_dict()["series"] == [["perf", {"label": "/"}, 85.0]]
    unknown = CheckResult.at_level("unknown", "timeout", "killed")
    assert (unknown.ok, unknown.state) == (False, "unknown")
    assert CheckResult.up("fine").level == "ok"
