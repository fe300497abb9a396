"""Collectors agree with psutil's own readings; system-state changes become events."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from opsdesk.agent.collectors import ResourceCollector
from opsdesk.agent.inventory import collect_inventory, fingerprint
from opsdesk.agent.system_state import SystemWatcher, WatchConfig


def by_key(
    samples: list[tuple[str, dict[str, str], float]],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(n, tuple(sorted(labels.items()))): v for n, labels, v in samples}


def test_resources_match_psutil() -> None:
    collector = ResourceCollector()
    first = by_key(collector.collect())
    assert first[("memory_total_bytes", ())] == psutil.virtual_memory().total
    assert first[("cpu_count", ())] == psutil.cpu_count()
    root = psutil.disk_usage("/")
    root_key = next(k for k in first if k[0] == "fs_size_bytes" and ("mount", "/") in k[1])
    assert first[root_key] == root.total
    assert not any(k[0] == "cpu_usage_percent" for k in first)  # rates need two readings
    time.sleep(0.3)
    second = by_key(collector.collect())
    modes = {dict(k[1])["mode"]: v for k, v in second.items() if k[0] == "cpu_usage_percent"}
    assert {"total", "user", "system", "idle"} <= set(modes)
    assert 0.0 <= modes["total"] <= 100.0
    assert abs(sum(v for m, v in modes.items() if m != "total") - 100.0) < 0.5
    nics = {dict(k[1])["interface"] for k in second if k[0] == "net_receive_bytes_per_second"}
    assert nics == set(psutil.net_io_counters(pernic=True))
    states = {dict(k[1])["state"] for k in second if k[0] == "tcp_connections"}
    assert "established" in states and "listen" in states
    load1 = second[("load1", ())]
    assert abs(load1 - os.getloadavg()[0]) < 1.0


def test_top_processes_lists_this_process() -> None:
    top = ResourceCollector().top_processes()
    assert os.getpid() in {p["pid"] for p in top["by_memory"]} or len(top["by_memory"]) == 5
    assert top["by_memory"] == sorted(top["by_memory"], key=lambda p: p["rss_bytes"], reverse=True)


def test_inventory_and_its_fingerprint(tmp_path: Path) -> None:
    inv = collect_inventory()
    assert inv["cpu_count"] == psutil.cpu_count()
    assert inv["memory_bytes"] == psutil.virtual_memory().total
    assert any(a["address"] == "127.0.0.1" for a in inv["addresses"])
    assert any(u["name"] == "root" for u in inv["users"])
    changed = {**inv, "users": [*inv["users"], {"name": "new", "uid": 1234}]}
    assert fingerprint(inv) == fingerprint({**inv, "boot_time": 1}) != fingerprint(changed)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def test_watcher_reports_users_passwords_and_processes(tmp_path: Path) -> None:
    passwd, shadow = tmp_path / "passwd", tmp_path / "shadow"
    _write(passwd, ["root:x:0:0:root:/root:/bin/bash", "app:x:1000:1000::/home/app:/bin/sh"])
    _write(shadow, ["root:$6$aaa:20000:0:99999:7:::", "app:$6$bbb:20000:0:99999:7:::"])
    name = psutil.Process().name()
    watcher = SystemWatcher(WatchConfig(passwd, shadow, [name, "no-such-daemon"]), tmp_path / "state.json")
    assert watcher.check() == []  # the first look is the baseline
    _write(passwd, ["root:x:0:0:root:/root:/bin/bash", "ops:x:1001:1001::/home/ops:/bin/sh"])
    _write(shadow, ["root:$6$zzz:20421:0:99999:7:::", "ops:$6$ccc:20421:0:99999:7:::"])
    kinds = {(e["kind"], e["attrs"].get("user")) for e in watcher.check()}
    assert kinds == {("user_added", "ops"), ("user_removed", "app"), ("password_changed", "root")}
    # state survives a restart of the agent: nothing new is reported
    assert SystemWatcher(WatchConfig(passwd, shadow, [name]), tmp_path / "state.json").check() == []


def test_proc_net_agrees_with_psutil() -> None:
    import socket as socketlib

    from opsdesk.agent import procnet

    server = socketlib.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        mine = [s for s in procnet.sockets() if s.port == port]
        assert mine == [procnet.Socket("tcp", "127.0.0.1", port, "listen")]
        listening = {
            (c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp") if c.status == "LISTEN"
        }
        ours = {(s.address, s.port) for s in procnet.sockets() if s.state == "listen"}
        assert ours == listening
    finally:
        server.close()
