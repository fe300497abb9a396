"""ICMP echo check on asyncio and the standard library: packet loss and round-trip times.

It uses an unprivileged ICMP socket (SOCK_DGRAM) where the kernel allows it: on Linux the
process's group must be inside net.ipv4.ping_group_range. Otherwise it falls back to a raw
socket, which needs root or CAP_NET_RAW. IPv4 and IPv6 targets both work.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.tcp import check_host, resolve

_ECHO: dict[int, tuple[int, int]] = {
    socket.AF_INET: (8, 0),
    socket.AF_INET6: (128, 129),
}  # (request, reply) types
_PROTO: dict[int, int] = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}
_HEADER = struct.Struct("!BBHHH")


class PingConfig(CheckConfig):
    host: str
    count: int = Field(3, ge=1, le=20, description="echo requests per run")
    packet_interval_s: float = Field(0.5, ge=0.2, le=5, description="pause between echo requests")
    payload_bytes: int = Field(56, ge=0, le=1400)
    max_loss_percent: float = Field(0, ge=0, lt=100, description="down when more packets are lost")
    max_rtt_ms: float | None = Field(None, gt=0, description="down when the average round trip is longer")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @model_validator(mode="after")
    def _fits_timeout(self) -> Self:
        sending = (self.count - 1) * self.packet_interval_s
        if sending >= self.timeout_s:
            raise ValueError(
                f"count {self.count} at packet_interval_s {self.packet_interval_s:g} takes {sending:g} s "
                f"to send, which does not fit in timeout_s {self.timeout_s:g}"
            )
        return self


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    kind = _ECHO[family][0]
    packet = _HEADER.pack(kind, 0, 0, ident, seq) + payload
    if family == socket.AF_INET:  # the kernel fills in the ICMPv6 checksum itself
        packet = _HEADER.pack(kind, 0, checksum(packet), ident, seq) + payload
    return packet


class PingNotPermitted(OSError):
    pass


def open_icmp_socket(family: int) -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket and whether it is raw; PingNotPermitted if neither kind may be opened."""
    errors: list[str] = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            sock = socket.socket(family, kind, _PROTO[family])
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
                raise
            errors.append(exc.strerror or str(exc))
            continue
        sock.setblocking(False)
        return sock, kind == socket.SOCK_RAW
    raise PingNotPermitted(
        errno.EPERM,
        "ICMP sockets are not permitted for this process: add its group to net.ipv4.ping_group_range "
        f"or grant CAP_NET_RAW ({'; '.join(errors)})",
    )


@dataclass(slots=True)
class _Session:
    sock: socket.socket
    raw: bool
    family: int
    address: str
    ident: int
    sent: dict[int, float] = field(default_factory=dict)
    rtts: dict[int, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def parse(self, data: bytes) -> int | None:
        """The sequence number of an echo reply meant for this session, else None."""
        if self.raw and self.family == socket.AF_INET:
            data = data[(data[0] & 0x0F) * 4 :] if data else data
        if len(data) < _HEADER.size:
            return None
        kind, _code, _sum, ident, seq = _HEADER.unpack_from(data)
        if kind != _ECHO[self.family][1]:
            return None
        if self.raw and ident != self.ident:  # a datagram socket only sees its own replies
            return None
        return seq

    async def receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65535)
            now = time.perf_counter()
            seq = self.parse(data)
            if seq is not None and seq in self.sent and seq not in self.rtts:
                self.rtts[seq] = now - self.sent[seq]
                if len(self.rtts) >= self.expected:
                    self.done.set()


@register("ping")
class PingCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = PingConfig

    def __init__(self) -> None:
        self._next_ident = os.getpid() & 0xFFFF

    def _ident(self) -> int:
        self._next_ident = (self._next_ident + 1) & 0xFFFF
        return self._next_ident

    async def run(self, config: PingConfig) -> CheckResult:
        start = time.perf_counter()
        deadline = start + config.timeout_s
        try:
            async with asyncio.timeout(config.timeout_s):
                family, address = (await resolve(config.host, None))[0]
        except socket.gaierror as exc:
            return CheckResult.down("dns_failed", f"cannot resolve {config.host}: {exc.strerror}")
        except TimeoutError:
            return CheckResult.down("timeout", f"cannot resolve {config.host} within {config.timeout_s:g} s")
        if family not in _ECHO:
            return CheckResult.down("ping_error", f"cannot ping address family {family}")
        try:
            sock, raw = open_icmp_socket(family)
        except PingNotPermitted as exc:
            return CheckResult.down("ping_not_permitted", exc.strerror or str(exc))
        session = _Session(sock, raw, family, address, self._ident(), expected=config.count)
        try:
            await self._exchange(config, session, deadline)
        except OSError as exc:
            return CheckResult.down("ping_error", f"cannot ping {address}: {exc.strerror or exc}")
        finally:
            sock.close()
        return _result(config, session)

    async def _exchange(self, config: PingConfig, session: _Session, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        receiver = asyncio.create_task(session.receive())
        all_back = asyncio.create_task(session.done.wait())
        payload = bytes(i & 0xFF for i in range(config.payload_bytes))
        try:
            for seq in range(config.count):
                if seq:
                    await asyncio.sleep(config.packet_interval_s)
                if receiver.done():
                    break
                packet = echo_request(session.family, session.ident, seq, payload)
                session.sent[seq] = time.perf_counter()
                await loop.sock_sendto(session.sock, packet, (session.address, 0))
            remaining = deadline - time.perf_counter()
            if remaining > 0:
                await asyncio.wait(
                    [receiver, all_back], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            for task in (receiver, all_back):
                task.cancel()
            await asyncio.gather(receiver, all_back, return_exceptions=True)
        error = None if receiver.cancelled() else receiver.exception()
        if error is not None:
            raise error


def _result(config: PingConfig, session: _Session) -> CheckResult:
    sent = len(session.sent)
    received = len(session.rtts)
    loss = round(100.0 * (sent - received) / sent, 2) if sent else 100.0
    metrics: dict[str, float] = {
        "packets_sent": float(sent),
        "packets_received": float(received),
        "loss_percent": loss,
    }
    if received:
        rtts = list(session.rtts.values())
        metrics.update(
            rtt_ms=ms(sum(rtts) / received),
            rtt_min_ms=ms(min(rtts)),
            rtt_max_ms=ms(max(rtts)),
        )
    if received == 0:
        return CheckResult.down(
            "packet_loss", f"no reply from {session.address} to {sent} echo requests", metrics
        )
    if loss > config.max_loss_percent:
        return CheckResult.down("packet_loss", f"{loss:g}% packet loss to {session.address}", metrics)
    if config.max_rtt_ms is not None and metrics["rtt_ms"] > config.max_rtt_ms:
        return CheckResult.down(
            "rtt_high", f"round trip {metrics['rtt_ms']:.1f} ms is over {config.max_rtt_ms:g} ms", metrics
        )
    return CheckResult.up(f"{received}/{sent} replies, average {metrics['rtt_ms']:.2f} ms", metrics)
