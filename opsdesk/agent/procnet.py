"""TCP and UDP sockets read straight from /proc/net on Linux.

psutil.net_connections() also maps every socket to its process by scanning /proc/*/fd, which
costs the agent 4 MB and most of its CPU per collection; counting states and listing listening
ports needs none of that.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PROC_NET = Path("/proc/net")
TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
}


class Socket(NamedTuple):
    proto: str  # tcp, tcp6, udp, udp6
    address: str
    port: int
    state: str


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"  # as the kernel tools and psutil write it
    return str(ip)


def sockets(protos: tuple[str, ...] = ("tcp", "tcp6"), root: Path = PROC_NET) -> Iterator[Socket]:
    for proto in protos:
        try:
            lines = (root / proto).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            addr, _, port = fields[1].partition(":")
            state = TCP_STATES.get(fields[3], fields[3]) if proto.startswith("tcp") else "open"
            yield Socket(proto, _address(addr), int(port, 16), state)


def available(root: Path = PROC_NET) -> bool:
    return (root / "tcp").exists()
