"""What the host is: sent at start, hourly, and whenever it changes."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
from pathlib import Path
from typing import Any

import psutil

from opsdesk.agent import procnet
from opsdesk.agent.system_state import read_users


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        return info.get("PRETTY_NAME") or info.get("NAME", "")
    except OSError:
        return f"{platform.system()} {platform.release()}"


def _listening_ports() -> list[dict[str, Any]]:
    if procnet.available():
        found = {
            (s.proto, s.address, s.port)
            for s in procnet.sockets(("tcp", "tcp6", "udp", "udp6"))
            if s.state in ("listen", "open") and (s.proto.startswith("tcp") or s.port)
        }
        return [{"proto": p, "address": a, "port": n} for p, a, n in sorted(found)]
    ports = set()
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                proto = "tcp6" if conn.family == socket.AF_INET6 else "tcp"
                ports.add((proto, conn.laddr.ip, conn.laddr.port))
    except psutil.AccessDenied:
        return []
    return [{"proto": p, "address": a, "port": n} for p, a, n in sorted(ports)]


def collect_inventory(passwd: Path = Path("/etc/passwd")) -> dict[str, Any]:
    addresses = []
    for nic, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                addresses.append({"interface": nic, "address": addr.address.split("%")[0]})
    users = read_users(passwd)
    return {
        "hostname": socket.gethostname(),
        "os": _os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": psutil.cpu_count() or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "boot_time": int(psutil.boot_time()),
        "addresses": addresses,
        "listening": _listening_ports(),
        "users": [{"name": n, **u} for n, u in sorted(users.items())],
    }


def fingerprint(inventory: dict[str, Any]) -> str:
    stable = {k: v for k, v in inventory.items() if k != "boot_time"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
