"""Fixtures for the check tests: the real nginx, a DNS server on loopback, silent TCP listeners."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckResult
from tests.nginx_fixture import nginx as nginx  # the session fixture, for the tests in this folder

ZONE: dict[tuple[str, str], list[str]] = {
    ("www.test.opsdesk.", "A"): ["192.0.2.10", "192.0.2.11"],
    ("www.test.opsdesk.", "AAAA"): ["2001:db8::10"],
    ("alias.test.opsdesk.", "CNAME"): ["www.test.opsdesk."],
    ("test.opsdesk.", "MX"): ["10 mail.test.opsdesk.", "20 backup.test.opsdesk."],
    ("test.opsdesk.", "TXT"): ['"v=spf1 -all"'],
    ("test.opsdesk.", "NS"): ["ns1.test.opsdesk."],
}
SILENT = "silent.test.opsdesk."  # never answered: lookups of it time out


class DnsServer:
    """A tiny authoritative UDP server on 127.0.0.1 answering from ZONE, in a thread."""

    def __init__(self, zone: dict[tuple[str, str], list[str]]) -> None:
        self.zone = zone
        self.names = {name for name, _ in zone}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, addr)

    def answer(self, data: bytes) -> bytes | None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name == SILENT:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        values = self.zone.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, rdtype, *values))
        elif name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(ZONE).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes one TCP handshake (into the backlog) and then never says anything."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def full_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection attempt hangs until its timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = int(sock.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        yield port
    finally:
        filler.close()
        sock.close()


def run_check(type_name: str, **definition: Any) -> CheckResult:
    """Validate a definition and run it once (with its attempts) on a fresh Checker and event loop."""
    config = checks.validate(type_name, definition)

    async def go() -> CheckResult:
        async with checks.Checker() as checker:
            return await checker.run(config)

    return asyncio.run(go())


def assert_timings(result: CheckResult, parts: tuple[str, ...]) -> None:
    """Each phase is present and non-negative, and none is longer than the total."""
    total = result.metrics["response_ms"]
    assert total > 0
    for part in parts:
        assert part in result.metrics, f"{part} missing from {result.metrics}"
        assert 0 <= result.metrics[part] <= total, f"{part}={result.metrics[part]} total={total}"
