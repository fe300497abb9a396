"""HTTP client libraries for the probe's HTTP check, compared in one run against a local nginx.

Starts nginx on loopback the way the tests do (tests/nginx_fixture.start_nginx), then runs the
same mix of checks with each client, one after the other in this process, with CHECKS checks and
at most CONCURRENCY in flight:

    60% GET / with a keyword      10% GET /error (500)     5% GET /slow (about 1 s)
     5% GET /nokeyword (keyword missing)    20% GET / over TLS (certificate from a test CA)

Clients:
- aiohttp: the probe's HttpCheck itself (opsdesk.monitors.checks.http), with its trace hooks.
- httpx: the same check written on one shared httpx.AsyncClient with httpcore's trace extension.

Both open a new connection for every check, as the probe does so that connect and TLS times are
measured each run; `--keepalive` adds a round where both reuse pooled connections instead.
Figures: checks per second and CPU seconds per 1,000 checks (this process: client and resolver
threads, not nginx). The probe's target is 20,000 checks a minute interval, 333 per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opsdesk.monitors.checks import Checker, CheckResult, validate
from opsdesk.monitors.checks import certs as tls_certs
from opsdesk.monitors.checks.base import ms
from opsdesk.monitors.checks.http import HttpCheck, HttpConfig, _trace_config, evaluate
from tests.nginx_fixture import NginxServer, start_nginx

TARGET_PER_S = 20_000 / 60


def workload(server: NginxServer, n: int) -> list[HttpConfig]:
    kw = {"keyword": server.keyword, "timeout_s": 5.0}
    pattern: list[dict[str, Any]] = (
        [{"url": server.url("/"), **kw}] * 12
        + [{"url": server.url("/error")}] * 2
        + [{"url": server.url("/slow"), "timeout_s": 5.0}]
        + [{"url": server.url("/nokeyword"), **kw}]
        + [{"url": server.https_ca + "/", "ca_file": server.ca_file, **kw}] * 4
    )
    configs = [validate("http", pattern[i % len(pattern)]) for i in range(n)]
    return [c for c in configs if isinstance(c, HttpConfig)]


# --- the httpx contender ---------------------------------------------------------------------------


class HttpxCheck:
    """The HTTP check on httpx: one AsyncClient, phase times from httpcore's trace extension.

    httpcore reports connect_tcp (which includes name resolution), start_tls and response headers;
    it has no separate DNS event, so dns_ms is not available with this client.
    """

    def __init__(self, ca_file: str, keepalive: bool) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None if keepalive else 0)
        self.client = httpx.AsyncClient(
            verify=tls_certs.client_context(True, ca_file),
            limits=limits,
            headers={"User-Agent": "opsdesk-probe/1"},
            trust_env=False,
            max_redirects=10,
        )

    async def run(self, config: HttpConfig) -> CheckResult:
        start = time.perf_counter()
        marks: dict[str, float] = {}
        totals = {"connect": 0.0, "tls": 0.0}

        async def trace(event: str, _info: dict[str, Any]) -> None:
            now = time.perf_counter()
            if event.endswith(".started"):
                marks[event.removesuffix(".started")] = now
            elif event.endswith(".complete"):
                name = event.removesuffix(".complete")
                if name == "connection.connect_tcp":
                    totals["connect"] += now - marks.get(name, now)
                elif name == "connection.start_tls":
                    totals["tls"] += now - marks.get(name, now)

        headers_at: float | None = None
        try:
            async with asyncio.timeout(config.timeout_s):
                request = self.client.build_request(
                    config.method,
                    config.url,
                    headers=config.headers,
                    content=config.body,
                    extensions={"trace": trace},
                    timeout=config.timeout_s,
                )
                resp = await self.client.send(request, follow_redirects=config.follow_redirects, stream=True)
                try:
                    headers_at = time.perf_counter()
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= config.max_body_bytes:
                            break
                finally:
                    await resp.aclose()
        except TimeoutError:
            return CheckResult.down("timeout", "timed out")
        except httpx.ConnectError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                code, message = tls_certs.verify_error_code(cause)
                return CheckResult.down(code, message)
            return CheckResult.down("connect_error", str(exc))
        except httpx.TooManyRedirects:
            return CheckResult.down("too_many_redirects", "too many redirects")
        except httpx.HTTPError as exc:
            return CheckResult.down("protocol_error", f"{type(exc).__name__}: {exc}")
        end = time.perf_counter()
        body = b"".join(chunks)[: config.max_body_bytes]
        metrics = {
            "connect_ms": ms(totals["connect"]),
            "tls_ms": ms(totals["tls"]),
            "ttfb_ms": ms(headers_at - start),
            "response_ms": ms(end - start),
            "status_code": float(resp.status_code),
            "redirects": float(len(resp.history)),
            "body_bytes": float(len(body)),
        }
        return evaluate(config, resp.status_code, body, resp.encoding or "utf-8", metrics)

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpKeepalive(HttpCheck):
    """The probe's aiohttp check on a pooled, keep-alive session (the probe itself never reuses)."""

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                trace_configs=[_trace_config()],
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._loop = asyncio.get_running_loop()
        return self._session


# --- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    checks: int
    wall_s: float
    cpu_s: float
    codes: Counter[str]
    response_ms: list[float]

    @property
    def per_s(self) -> float:
        return self.checks / self.wall_s

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_s / self.checks * 1000

    def p(self, q: float) -> float:
        values = sorted(self.response_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def drive(
    name: str,
    run: Callable[[HttpConfig], Awaitable[CheckResult]],
    configs: list[HttpConfig],
    concurrency: int,
) -> Outcome:
    sem = asyncio.Semaphore(concurrency)
    codes: Counter[str] = Counter()
    times: list[float] = []

    async def one(config: HttpConfig) -> None:
        async with sem:
            result = await run(config)
        codes[result.code] += 1
        if "response_ms" in result.metrics:
            times.append(result.metrics["response_ms"])

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(c) for c in configs))
    return Outcome(name, len(configs), time.perf_counter() - wall0, time.process_time() - cpu0, codes, times)


async def contest(server: NginxServer, n: int, concurrency: int, keepalive: bool) -> list[Outcome]:
    configs = workload(server, n)
    warm = configs[: min(200, n)]
    outcomes: list[Outcome] = []

    checker = Checker()
    httpx_check = HttpxCheck(server.ca_file, keepalive=False)
    contenders: list[tuple[str, Callable[[HttpConfig], Awaitable[CheckResult]], Any]] = [
        ("aiohttp (probe HttpCheck)", checker.run_once, checker),
        ("httpx (AsyncClient, shared)", httpx_check.run, httpx_check),
    ]
    if keepalive:
        ka_aio = AiohttpKeepalive()
        ka_httpx = HttpxCheck(server.ca_file, keepalive=True)
        contenders += [
            ("aiohttp, keep-alive pool", ka_aio.run, ka_aio),
            ("httpx, keep-alive pool", ka_httpx.run, ka_httpx),
        ]
    for name, run, owner in contenders:
        await drive(name, run, warm, concurrency)
        outcomes.append(await drive(name, run, configs, concurrency))
        await owner.aclose()
    return outcomes


def report(outcomes: list[Outcome], n: int, concurrency: int) -> None:
    print(f"HTTP checks against nginx on loopback: {n} checks, {concurrency} in flight, one process")
    print(f"{'client':30} {'checks/s':>9} {'CPU s/1000':>11} {'p50 ms':>8} {'p95 ms':>8}  codes")
    for o in outcomes:
        codes = ", ".join(f"{k}={v}" for k, v in sorted(o.codes.items()))
        print(f"{o.name:30} {o.per_s:9.0f} {o.cpu_per_1000:11.3f} {o.p(0.5):8.1f} {o.p(0.95):8.1f}  {codes}")
    fresh = outcomes[:2]
    best = min(fresh, key=lambda o: o.cpu_per_1000)
    other = max(fresh, key=lambda o: o.cpu_per_1000)
    print(
        f"baseline (faster of the two, per CPU second): {best.name}; {other.name} needs "
        f"{other.cpu_per_1000 / best.cpu_per_1000:.2f}x the CPU per check"
    )
    cores_needed = TARGET_PER_S * best.cpu_per_1000 / 1000
    print(
        f"20,000 checks at 60 s = {TARGET_PER_S:.0f}/s: {best.name} would use {cores_needed:.2f} CPU cores "
        f"for this mix (mean response {statistics.fmean(best.response_ms):.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--keepalive", action="store_true", help="also compare with pooled connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsdesk-bench-nginx-") as tmp:
        server = start_nginx(Path(tmp))
        try:
            outcomes = asyncio.run(contest(server, args.checks, args.concurrency, args.keepalive))
        finally:
            server.stop()
    report(outcomes, args.checks, args.concurrency)
    versions = f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, httpx {httpx.__version__}"
    print(f"({versions}, {os.cpu_count()} CPUs, pid {os.getpid()})")


if __name__ == "__main__":
    main()
