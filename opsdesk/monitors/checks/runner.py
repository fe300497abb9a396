"""Runs validated checks: one instance per type, a time limit per attempt, and the retry rule."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from opsdesk.monitors.checks import registry
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult

log = logging.getLogger(__name__)

# Extra time a check gets beyond timeout_s before the runner cuts it off itself.
GRACE_S = 1.0


class Checker:
    """Keeps one instance of each check type (and so its sessions) for the life of a probe.

    `run_once` makes one attempt; `run` applies `attempts` and `failures_to_alert`: the run is
    down once `failures_to_alert` attempts have failed, and up as soon as that can no longer
    happen (a healthy target costs attempts - failures_to_alert + 1 attempts: one for "3 of 3",
    two for "2 of 3"). The result of a run is its last attempt's, with metrics "attempts" and
    "failed_attempts" added.
    """

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def check_for(self, config: CheckConfig) -> Check:
        name = registry.type_of(config)
        check = self._checks.get(name)
        if check is None:
            check = registry.get(name)()
            self._checks[name] = check
        return check

    async def run_once(self, config: CheckConfig) -> CheckResult:
        check = self.check_for(config)
        try:
            async with asyncio.timeout(config.timeout_s + GRACE_S):
                return await check.run(config)
        except TimeoutError:
            return CheckResult.down("timeout", f"no result within {config.timeout_s:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a check must not take the probe down with it
            log.exception("%s check failed unexpectedly", check.type_name)
            return CheckResult.down("check_error", f"check failed unexpectedly: {type(exc).__name__}: {exc}")

    async def run(self, config: CheckConfig) -> CheckResult:
        failures = 0
        result: CheckResult | None = None
        made = 0
        for attempt in range(config.attempts):
            if attempt:
                await asyncio.sleep(config.retry_delay_s)
            result = await self.run_once(config)
            made += 1
            if not result.ok:
                failures += 1
                if failures >= config.failures_to_alert:
                    break
            elif (made - failures) > config.attempts - config.failures_to_alert:
                break
        assert result is not None
        result.metrics["attempts"] = float(made)
        result.metrics["failed_attempts"] = float(failures)
        if (result.ok and failures) or (not result.ok and made > 1):
            result.message = f"{result.message} ({failures} of {made} attempts failed)"
        return result

    async def aclose(self) -> None:
        checks, self._checks = list(self._checks.values()), {}
        for check in checks:
            await check.aclose()

    async def __aenter__(self) -> Checker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
