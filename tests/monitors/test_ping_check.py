"""The ICMP ping check: loopback for real, loss and packet parsing with crafted data."""

from __future__ import annotations

import socket
import struct

from opsdesk.monitors.checks import validate
from opsdesk.monitors.checks.ping import PingConfig, _result, _Session, checksum, echo_request
from tests.monitors.conftest import run_check


def test_loopback_has_no_loss() -> None:
    result = run_check("ping", host="127.0.0.1", count=3, packet_interval_s=0.2)
    assert (result.ok, result.code) == (True, "ok"), result.message
    m = result.metrics
    assert (m["packets_sent"], m["packets_received"], m["loss_percent"]) == (3, 3, 0)
    assert 0 < m["rtt_min_ms"] <= m["rtt_ms"] <= m["rtt_max_ms"]


def test_loopback_by_name() -> None:
    result = run_check("ping", host="localhost", count=1)
    assert result.code == "ok", result.message
    assert result.metrics["rtt_ms"] > 0


def test_checksum_of_echo_request() -> None:
    packet = echo_request(socket.AF_INET, 0x1234, 7, b"abc")
    assert checksum(packet) == 0  # a packet carrying its checksum sums to zero
    assert packet[0] == 8 and struct.unpack("!HH", packet[4:8]) == (0x1234, 7)


def _session(raw: bool) -> _Session:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.close()
    return _Session(sock, raw, socket.AF_INET, "127.0.0.1", ident=0x1234)


def test_parse_replies() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 5) + b"payload"
    ip_header = bytes([0x45]) + bytes(19)
    assert _session(raw=False).parse(reply) == 5
    assert _session(raw=True).parse(ip_header + reply) == 5
    other = struct.pack("!BBHHH", 0, 0, 0, 0x9999, 5)
    assert _session(raw=True).parse(ip_header + other) is None  # another process's reply
    request = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 5)
    assert _session(raw=True).parse(ip_header + request) is None  # our own request looped back


def _config(**kw: object) -> PingConfig:
    config = validate("ping", {"host": "192.0.2.1", **kw})
    assert isinstance(config, PingConfig)
    return config


def test_loss_and_rtt_thresholds() -> None:
    session = _session(raw=False)
    session.sent = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}
    session.rtts = {0: 0.010, 2: 0.030}
    result = _result(_config(count=4), session)
    assert (result.code, result.metrics["loss_percent"], result.metrics["rtt_ms"]) == ("packet_loss", 50, 20)
    assert _result(_config(count=4, max_loss_percent=50), session).ok
    assert _result(_config(count=4, max_loss_percent=50, max_rtt_ms=15), session).code == "rtt_high"
    session.rtts = {}
    lost = _result(_config(count=4), session)
    assert (lost.code, lost.metrics["loss_percent"]) == ("packet_loss", 100)
    assert "rtt_ms" not in lost.metrics
